/*
 * rs_engine_internal.h — the engine's state, and the functions its files
 * share (the rs_eng_ prefix; see rs_engine.c for which file does what).
 * Not a public API: it is the PRIVATE include folder of rs_engine, so nothing
 * outside workers/engine/ can include it.
 *
 * Ownership: a contract owns its lines, invoices, payments, pending events
 * and idempotency set; a line owns its segments, adjustments, milestones,
 * usage days, price history and posted ledger. Everything is plain arrays
 * (no pointers between objects: invoices name lines by index), so a
 * contract serialises as a flat record.
 */
#ifndef RS_ENGINE_INTERNAL_H
#define RS_ENGINE_INTERNAL_H

#include <string.h>

#include "rs_engine.h"

/* A piece of a ratable / point-in-time schedule. For d >= eff (until the next
 * segment's eff), R(d) = base + the share of `spread` that `method` gives
 * the days [from, d] of [from, to]. `jump` is R's discontinuity at eff,
 * posted as its own component `id` to `jump_account`. */
typedef struct rs_seg {
    int id;
    rs_date_t eff, from, to;
    rs_method_t method;
    rs_money_t base, spread, jump;
    rs_account_t jump_account;
    char jump_rule[24];
    char source[RS_ID_MAX];
} rs_seg_t;

/* An additive change of R from `on` (usage and milestone lines). */
typedef struct rs_adj {
    int id;
    rs_date_t on;
    rs_money_t amount;
    rs_account_t account;
    char rule[24];
    char source[RS_ID_MAX];
} rs_adj_t;

/* A dated change of a ratable or usage line's terms. The line's segments,
 * unit-price history and adjustments are rebuilt from its changes sorted by
 * (on, kind, source, id), so the result does not depend on the order in
 * which amendments (contracts topic) and credits (invoices and payments
 * topics) arrived. */
typedef enum rs_change_kind {
    RS_CH_TERMS = 0, /* booking or amendment: method, service, price */
    RS_CH_STOP = 1,  /* service ends the day before `on` */
    RS_CH_DELTA = 2, /* price change: credit note, refund, write-off */
} rs_change_kind_t;

typedef struct rs_change {
    int id; /* the component its jump posts as */
    rs_change_kind_t kind;
    int booking; /* the line's first terms: sorts first, effective at start */
    rs_date_t on;
    rs_treatment_t treatment;
    rs_method_t method;
    rs_date_t start, end;
    rs_money_t amount; /* TERMS: price; DELTA: the credit (negative) */
    int forfeit;
    rs_decimal_t unit_price;
    rs_account_t account;
    char rule[24];
    char source[RS_ID_MAX];
} rs_change_t;

typedef struct rs_usage_day {
    rs_date_t day;
    __int128 qty; /* 10^-6 units */
    uint32_t count;
} rs_usage_day_t;

typedef struct rs_uprice {
    rs_date_t eff;
    rs_decimal_t price; /* per unit, up to 6 decimals */
} rs_uprice_t;

/* Dated billing of a line: + invoice amounts, - voids (credits are changes). */
typedef struct rs_billing {
    rs_date_t on;
    rs_money_t amount;
} rs_billing_t;

typedef struct rs_posted {
    rs_period_t sp; /* service period */
    int comp;       /* 0 the schedule; else a segment's or adjustment's id */
    rs_account_t account;
    rs_money_t amount;
} rs_posted_t;

typedef struct rs_milestone {
    char milestone_id[RS_ID_MAX];
    rs_money_t amount; /* allocated */
    rs_date_t completed_on;
    char source[RS_ID_MAX];
} rs_milestone_t;

typedef struct rs_line {
    char line_id[RS_ID_MAX];
    char product[RS_NAME_MAX];
    rs_method_t method;
    rs_date_t start, end;
    rs_date_t ended_on; /* cancelled / removed: last day of service */
    rs_money_t amount;  /* as booked or amended */
    rs_money_t price;   /* transaction price (usage: the minimum commitment) */
    int has_ssp;
    rs_money_t ssp;
    char terms_source[RS_ID_MAX];
    int next_comp;

    int nchg, capchg;
    rs_change_t *chg;
    int nbill, capbill;
    rs_billing_t *bill;
    int nseg, capseg;
    rs_seg_t *segs;
    int nadj, capadj;
    rs_adj_t *adj;
    int nms;
    rs_milestone_t *ms;
    int nuprice, capuprice;
    rs_uprice_t *uprice;
    size_t nusage, capusage;
    rs_usage_day_t *usage;
    size_t nposted, capposted;
    rs_posted_t *posted;

    rs_money_t billed, recognized, deferred, unbilled, received;
} rs_line_t;

typedef struct rs_inv_line {
    int line; /* index into the contract's lines */
    rs_money_t amount, tax;
    rs_money_t paid;       /* gross received against this line */
    rs_money_t credited;   /* net amount credited */
    rs_money_t credit_tax; /* tax credited */
    rs_money_t allowance;  /* open allowance for doubtful accounts */
} rs_inv_line_t;

typedef struct rs_invoice {
    char invoice_id[RS_ID_MAX];
    char source[RS_ID_MAX];
    rs_date_t issued_on;
    int voided;
    int uncollectible;
    rs_money_t credit; /* customer credit that arose on this invoice */
    int nlines;
    rs_inv_line_t *lines;
} rs_invoice_t;

typedef struct rs_payment {
    char payment_id[RS_ID_MAX];
    char source[RS_ID_MAX];
    int invoice; /* index */
    rs_money_t amount, refunded;
    int failed;
} rs_payment_t;

typedef struct rs_docid {
    char id[RS_ID_MAX]; /* credit note and refund ids already applied */
} rs_docid_t;

typedef struct rs_pending {
    rs_event_t ev;
    char waiting_for[RS_ID_MAX + 16];
} rs_pending_t;

typedef struct rs_seen {
    uint64_t id_hash, content_hash; /* id_hash 0 = empty slot */
} rs_seen_t;

typedef struct rs_contract {
    char contract_id[RS_ID_MAX];
    char customer_id[RS_ID_MAX];
    char currency[4];
    int exponent;
    int booked;
    char booked_by[RS_ID_MAX];
    rs_date_t booked_on;
    rs_date_t cancelled_on;
    rs_period_t horizon;    /* recognition posted through; RS_PERIOD_NONE */
    rs_period_t frontier;   /* latest period posted to; RS_PERIOD_NONE */
    rs_period_t dirty_from; /* earliest period whose R may have changed */
    uint64_t seq;
    rs_money_t customer_credit, written_off;

    int nlines, caplines;
    rs_line_t *lines;
    int ninv, capinv;
    rs_invoice_t *inv;
    int npay, cappay;
    rs_payment_t *pay;
    int ndocs, capdocs;
    rs_docid_t *docs;
    size_t npend, cappend;
    rs_pending_t *pend;
    size_t nseen, capseen;
    rs_seen_t *seen;
    int changed; /* in the engine's changed set */
} rs_contract_t;

/* The engine (rs_engine*.c own the logic, rs_engine_state.c the records). */
struct rs_engine {
    rs_policy_t policy;
    rs_contract_t **slots; /* open addressing by contract_id */
    size_t nslots, ncontracts;
    rs_contract_t **sorted; /* cache, rebuilt when dirty */
    int sorted_dirty;
    struct rs_view {
        rs_contract_t *c;
        int line;
    } * views;
    size_t nviews;
    rs_contract_t **cviews;
    size_t ncviews;
    int views_dirty;

    rs_period_t closed_through; /* every period <= it is closed */
    rs_seen_t *gseen;           /* period.closed events */
    size_t ngseen, capgseen;
    rs_period_t horizon; /* every contract is recognized at least through this */

    rs_entry_sink_fn sink;
    void *sink_opaque;
    rs_engine_stats_t stats;
    rs_rejection_t *late;
    size_t nlate, caplate;
    rs_contract_t **changed; /* contracts changed since rs_engine_take_changed */
    size_t nchanged, capchanged;
    const char **changed_ids;
};

/* An entry being built: rs_eng_entry_begin() fills it, the handler adds
 * postings, sources and measure effects, rs_eng_entry_emit() numbers it and
 * hands it to the sink. */
typedef struct rs_entry_ctx {
    rs_engine_t *e;
    rs_contract_t *c;
    rs_entry_t en;
} rs_entry_ctx_t;

/* The event being validated and where its error goes. */
typedef struct rs_vctx {
    const rs_event_t *ev;
    char *errstr;
    size_t errlen;
} rs_vctx_t;

static inline rs_date_t rs_eng_dmax(rs_date_t a, rs_date_t b)
{
    return a > b ? a : b;
}

/* qsort order of rs_contract_t pointers: by contract_id. Inline, so that each
 * file passing it to qsort has its own copy and no reference to another
 * file's function address. */
static inline int rs_eng_cmp_contract(const void *a, const void *b)
{
    return strcmp((*(rs_contract_t *const *)a)->contract_id,
                  (*(rs_contract_t *const *)b)->contract_id);
}

/* ---- rs_engine_table.c: arrays, contract table, seen sets, changed set ---- */

/* Grow *p (elements of `elem` bytes, capacity *cap) to hold `need`; the new
 * part is zeroed. 0, or -1 on ENOMEM (*p unchanged). */
int rs_eng_grow(void **p, size_t *cap, size_t need, size_t elem);
int rs_eng_growi(void **p, int *cap, int need, size_t elem);
uint64_t rs_eng_str_hash(const char *s, uint64_t seed); /* never 0 */
void rs_eng_copy_id(char *dst, const char *src);        /* into an RS_ID_MAX field */
/* The slot of idh, or the empty slot where it would go; NULL if cap is 0. */
rs_seen_t *rs_eng_seen_find(rs_seen_t *tab, size_t cap, uint64_t idh);
int rs_eng_seen_add(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh, uint64_t ch);
void rs_eng_seen_remove(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh);
void rs_eng_line_free(rs_line_t *l); /* what the line owns, not the line */
void rs_eng_contract_free(rs_contract_t *c);
rs_contract_t *rs_eng_contract_find(const rs_engine_t *e, const char *id);
rs_contract_t *rs_eng_contract_get_or_create(rs_engine_t *e, const char *id);
void rs_eng_slot_put(rs_contract_t **slots, size_t nslots, rs_contract_t *c);
int rs_eng_sort_contracts(rs_engine_t *e); /* refresh e->sorted */
void rs_eng_mark_changed(rs_engine_t *e, rs_contract_t *c);

/* ---- rs_engine_schedule.c: R(d) and schedule changes ---- */

rs_date_t rs_eng_line_last_day(const rs_line_t *l);
rs_money_t rs_eng_usage_value(const rs_contract_t *c, const rs_line_t *l, rs_date_t lo,
                              rs_date_t hi);
rs_money_t rs_eng_usage_through(const rs_contract_t *c, const rs_line_t *l, rs_date_t d);
rs_money_t rs_eng_line_R(const rs_engine_t *e, const rs_contract_t *c, const rs_line_t *l,
                         rs_date_t d);
int rs_eng_milestone_reprice(rs_line_t *l, rs_money_t price, rs_date_t C, rs_treatment_t t,
                             rs_account_t acct, const char *rule, const char *source,
                             rs_money_t *jump, int *comp);
int rs_eng_rebuild_line(rs_engine_t *e, rs_contract_t *c, rs_line_t *l);
rs_change_t *rs_eng_add_change(rs_engine_t *e, rs_contract_t *c, int li, rs_change_kind_t kind,
                               rs_date_t on, const char *rule, const char *source);
int rs_eng_price_change(rs_engine_t *e, rs_contract_t *c, int li, rs_money_t delta, rs_date_t C,
                        rs_treatment_t t, rs_account_t acct, const char *rule,
                        const char *source, rs_money_t *jump, int *comp);
int rs_eng_stop_line(rs_engine_t *e, rs_contract_t *c, int li, rs_date_t E, int forfeit,
                     const char *source);

/* ---- rs_engine_posting.c: entries and recognition sync ---- */

void rs_eng_entry_begin(rs_entry_ctx_t *x, rs_engine_t *e, rs_contract_t *c, int line,
                        rs_entry_kind_t kind, const char *rule, rs_date_t natural,
                        rs_period_t service_period, const char *document);
void rs_eng_entry_dr(rs_entry_ctx_t *x, rs_account_t a, rs_money_t v);
void rs_eng_entry_cr(rs_entry_ctx_t *x, rs_account_t a, rs_money_t v);
void rs_eng_entry_source(rs_entry_ctx_t *x, const char *id);
void rs_eng_entry_emit(rs_entry_ctx_t *x);
void rs_eng_post_revenue(rs_entry_ctx_t *x, rs_line_t *l, rs_account_t acct, rs_money_t d);
void rs_eng_post_billing(rs_entry_ctx_t *x, rs_line_t *l, rs_money_t d);
int rs_eng_posted_add(rs_line_t *l, rs_period_t sp, int comp, rs_account_t acct, rs_money_t d);
int rs_eng_sync_contract(rs_engine_t *e, rs_contract_t *c, rs_period_t H, rs_date_t trigger);
void rs_eng_mark_dirty(rs_contract_t *c, rs_period_t p);

/* ---- rs_engine_validate.c: event errors, amounts, lookups, allocation ---- */

int rs_eng_verr(rs_vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rs_eng_to_minor(rs_vctx_t *v, const char *field, rs_decimal_t d, int exponent, int min_sign,
                    rs_money_t *out);
int rs_eng_find_line(const rs_contract_t *c, const char *id);    /* index or -1 */
int rs_eng_find_invoice(const rs_contract_t *c, const char *id); /* index or -1 */
int rs_eng_find_payment(const rs_contract_t *c, const char *id); /* index or -1 */
int rs_eng_doc_seen(const rs_contract_t *c, const char *id);
int rs_eng_doc_add(rs_contract_t *c, const char *id);
int rs_eng_allocate(rs_money_t total, const rs_money_t *w, size_t n, rs_money_t *out);

/* ---- event handlers: 0, or -1 with "event <id>: ..." in errstr ---- */

/* rs_engine_contract.c */
int rs_eng_apply_booked(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen);
int rs_eng_apply_amended(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen);
int rs_eng_apply_cancelled(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen);
int rs_eng_apply_milestone(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen);
int rs_eng_apply_usage(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                       size_t errlen);
/* rs_engine_invoice.c */
int rs_eng_apply_invoice(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen);
int rs_eng_apply_credit_note(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                             char *errstr, size_t errlen);
int rs_eng_apply_void(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                      size_t errlen);
int rs_eng_apply_uncollectible(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                               char *errstr, size_t errlen);
rs_money_t rs_eng_open_ar(const rs_inv_line_t *il);
void rs_eng_allowance_sync(rs_engine_t *e, rs_contract_t *c, rs_invoice_t *inv, rs_date_t on,
                           const char *document, const char *source);
/* rs_engine_payment.c */
int rs_eng_apply_payment(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen);
int rs_eng_apply_refund(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen);
int rs_eng_apply_payment_failed(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                                char *errstr, size_t errlen);

/* ---- rs_engine_pending.c: waiting events ---- */

const char *rs_eng_waits_for(const rs_contract_t *c, const rs_event_t *ev, char *buf, size_t n);
rs_apply_result_t rs_eng_pending_add(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                                     const char *wait, uint64_t idh, uint64_t ch);
void rs_eng_drain_pending(rs_engine_t *e, rs_contract_t *c);

/* ---- rs_engine.c ---- */

/* Move the contract's clock to the event's date, apply it, sync. */
int rs_eng_apply_now(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                     size_t errlen);

#endif
