/*
 * rs_engine_internal.h — the engine's state, shared by rs_engine.c (the
 * logic) and rs_engine_state.c (serialising a contract for the state store).
 * Not a public API: nothing outside workers/engine/ includes it.
 *
 * Ownership: a contract owns its lines, invoices, payments, pending events
 * and idempotency set; a line owns its segments, adjustments, milestones,
 * usage days, price history and posted ledger. Everything is plain arrays
 * (no pointers between objects: invoices name lines by index), so a
 * contract serialises as a flat record.
 */
#ifndef RS_ENGINE_INTERNAL_H
#define RS_ENGINE_INTERNAL_H

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

/* The engine (rs_engine.c owns the logic, rs_engine_state.c the records). */
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

/* Internal helpers shared between rs_engine.c and rs_engine_state.c. */
rs_contract_t *rs__contract_find(const rs_engine_t *e, const char *id);
rs_contract_t *rs__contract_get_or_create(rs_engine_t *e, const char *id);
void rs__slot_put(rs_contract_t **slots, size_t nslots, rs_contract_t *c);
void rs__contract_free(rs_contract_t *c);
void rs__mark_changed(rs_engine_t *e, rs_contract_t *c);

#endif
