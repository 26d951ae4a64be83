/*
 * rs_engine_internal.h — the engine's state, and the functions its files
 * share (the rs_eng_ prefix; see rs_engine.c for which file does what).
 * Not a public API: it is the PRIVATE include folder of rs_engine, so nothing
 * outside workers/engine/ can include it.
 *
 * Ownership: a contract owns its lines, invoices, payments, pending events,
 * idempotency set and string arena; a line owns its segments, adjustments,
 * milestones, usage days, price history and posted ledger. Everything is
 * plain arrays (no pointers between objects: invoices name lines by index),
 * so a contract serialises as a flat record.
 *
 * Strings (compact state: a contract costs hundreds of bytes, not the
 * kilobytes fixed-size text fields took):
 *   - A contract's id is stored inline, at the end of its allocation
 *     (contract_id[], a flexible array member): it never changes.
 *   - Every other id of a contract (customer, booking event, line, invoice,
 *     payment, milestone, source event, applied document) is an rs_eng_str_t:
 *     an offset into the contract's string arena `str`, which the contract
 *     owns and frees with itself. Copying a struct or an rs_eng_str_t copies
 *     the reference, never the text, so rebuilding segments from changes
 *     allocates nothing. The arena only grows (a string no longer referenced
 *     stays until the contract is re-imported, which rebuilds the arena from
 *     the live strings); the handlers store ids only after validation, and
 *     roll the arena back when validation fails after building lines, so a
 *     rejected event leaves no text behind.
 *   - Rule names (the `rule` of changes, adjustments and segments) are
 *     rs_eng_str_t too, but the names the engine uses are static
 *     (RS_ENG_RULE_*, RS_ENG_STR_STATIC set): no bytes in the arena.
 *   - Product names repeat across contracts: a line's `product` points at an
 *     entry of the engine's intern table (rs_eng_intern), reference-counted;
 *     a line holds one reference and rs_eng_line_free() drops it.
 *   - rs_eng_str() gives a NUL-terminated view of an rs_eng_str_t. The
 *     pointer is valid until the next rs_eng_str_put() on the same contract
 *     (which may move the arena): resolve strings where they are used, and
 *     never keep one across a put. Views (rs_engine.h) return these pointers
 *     with the lifetime stated there: until the next call that changes the
 *     engine.
 *   - A waiting event is stored packed (the record encoding of
 *     rs_engine_state.c), not as an rs_event_t: see rs_pending_t.
 */
#ifndef RS_ENGINE_INTERNAL_H
#define RS_ENGINE_INTERNAL_H

#include <string.h>

#include "rs_engine.h"
#include "rs_hash.h"

/* A string of a contract: 0 is "", RS_ENG_STR_STATIC | i is the static rule
 * name i, anything else an offset into the contract's arena. */
typedef uint32_t rs_eng_str_t;
#define RS_ENG_STR_STATIC 0x80000000u
#define RS_ENG_RULE_MAX 24 /* rule names: at most 23 characters */

/* The rule names the engine itself uses (static, never in an arena). */
#define RS_ENG_RULE_NONE 0u
#define RS_ENG_RULE_AMENDMENT (RS_ENG_STR_STATIC | 1u)
#define RS_ENG_RULE_CATCH_UP (RS_ENG_STR_STATIC | 2u)
#define RS_ENG_RULE_CANCELLATION (RS_ENG_STR_STATIC | 3u)
#define RS_ENG_RULE_CREDIT_DISCOUNT (RS_ENG_STR_STATIC | 4u)
#define RS_ENG_RULE_CREDIT_TRUE_UP (RS_ENG_STR_STATIC | 5u)
#define RS_ENG_RULE_FORFEIT (RS_ENG_STR_STATIC | 6u)
#define RS_ENG_RULE_WRITE_OFF (RS_ENG_STR_STATIC | 7u)
#define RS_ENG_RULE_COUNT 8
extern const char *const rs_eng_rule_names[RS_ENG_RULE_COUNT];

/* A piece of a ratable / point-in-time schedule. For d >= eff (until the next
 * segment's eff), R(d) = base + the share of `spread` that `method` gives
 * the days [from, d] of [from, to]. `jump` is R's discontinuity at eff,
 * posted as its own component `id` to `jump_account`. */
typedef struct rs_seg {
    int id;
    rs_date_t eff, from, to;
    rs_method_t method;
    rs_account_t jump_account;
    rs_eng_str_t jump_rule;
    rs_eng_str_t source;
    rs_money_t base, spread, jump;
} rs_seg_t;

/* An additive change of R from `on` (usage and milestone lines). */
typedef struct rs_adj {
    int id;
    rs_date_t on;
    rs_account_t account;
    rs_eng_str_t rule;
    rs_eng_str_t source;
    rs_money_t amount;
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

/* 56 bytes: the enums and flags are kept in bytes. */
typedef struct rs_change {
    int id; /* the component its jump posts as */
    rs_date_t on;
    rs_date_t start, end;
    rs_eng_str_t rule;
    rs_eng_str_t source;
    uint8_t kind;      /* rs_change_kind_t */
    uint8_t booking;   /* the line's first terms: sorts first, effective at start */
    uint8_t treatment; /* rs_treatment_t */
    uint8_t method;    /* rs_method_t */
    uint8_t forfeit;
    uint8_t account;   /* rs_account_t */
    rs_money_t amount; /* TERMS: price; DELTA: the credit (negative) */
    rs_decimal_t unit_price;
} rs_change_t;

/* One day of a usage line's usage: 24 bytes (the quantity, 10^-6 units, is
 * a 128-bit sum kept as two words so the struct needs no 16-byte
 * alignment; rs_eng_usage_qty / rs_eng_usage_set_qty read and write it). */
typedef struct rs_usage_day {
    rs_date_t day;
    uint32_t count;
    uint64_t qty_lo;
    int64_t qty_hi;
} rs_usage_day_t;

static inline __int128 rs_eng_usage_qty(const rs_usage_day_t *u)
{
    return (__int128)(((unsigned __int128)(uint64_t)u->qty_hi << 64) | u->qty_lo);
}

static inline void rs_eng_usage_set_qty(rs_usage_day_t *u, __int128 q)
{
    u->qty_lo = (uint64_t)q;
    u->qty_hi = (int64_t)(q >> 64);
}

typedef struct rs_uprice {
    rs_date_t eff;
    rs_decimal_t price; /* per unit, up to 6 decimals */
} rs_uprice_t;

/* Dated billing of a line: + invoice amounts, - voids (credits are changes). */
typedef struct rs_billing {
    rs_date_t on;
    rs_money_t amount;
} rs_billing_t;

/* A line's first posted array holds one cell per month of its service (a
 * year's line: 12 cells, where doubling gave 16), for up to this many. */
#define RS_ENG_POSTED_RESERVE 120

/* Revenue posted for one (service period, component): 16 bytes, one per
 * line and month (and per component with a jump in that month). A
 * component id fits 28 bits (the engine numbers them from 1 per line; a
 * record with a larger one is refused) and an account 4. */
#define RS_ENG_COMP_MAX ((1 << 27) - 1)
typedef struct rs_posted {
    rs_period_t sp;           /* service period */
    signed int comp : 28;     /* 0 the schedule; else a segment's or adjustment's id */
    unsigned int account : 4; /* rs_account_t */
    rs_money_t amount;
} rs_posted_t;

typedef struct rs_milestone {
    rs_eng_str_t milestone_id;
    rs_date_t completed_on;
    rs_eng_str_t source;
    rs_money_t amount; /* allocated */
} rs_milestone_t;

/* A line: 240 bytes (fields ordered so that none pads; narrow counts and
 * flags: memory per contract, issue 13). */
typedef struct rs_line {
    rs_eng_str_t line_id;
    rs_eng_str_t terms_source;
    const char *product; /* interned (rs_eng_intern); never NULL once built */
    rs_date_t start, end;
    rs_date_t ended_on; /* cancelled / removed: last day of service */
    int next_comp;
    uint8_t method; /* rs_method_t */
    uint8_t has_ssp;
    int nms;           /* ms holds exactly nms milestones */
    rs_money_t amount; /* as booked or amended */
    rs_money_t price;  /* transaction price (usage: the minimum commitment) */
    rs_money_t ssp;

    int nchg, capchg;
    rs_change_t *chg;
    int nbill, capbill;
    rs_billing_t *bill;
    int nseg, capseg;
    rs_seg_t *segs;
    int nadj, capadj;
    rs_adj_t *adj;
    rs_milestone_t *ms;
    int nuprice, capuprice;
    rs_uprice_t *uprice;
    uint32_t nusage, capusage; /* usage days: at most one per day */
    rs_usage_day_t *usage;
    uint32_t nposted, capposted;
    rs_posted_t *posted;

    rs_money_t billed, recognized, deferred, unbilled, received;
    /* usage lines: the sum over every usage day of quantity x the unit price
     * in force that day (10^-12 units), cached so that checking a new usage
     * record against RS_MONEY_MAX costs O(1); derived, not in the record:
     * rs_eng_usage_recount() sets it after a rebuild and an import, and
     * rs_eng_apply_usage adds each record's share */
    uint64_t uval_lo;
    int64_t uval_hi;
} rs_line_t;

static inline __int128 rs_eng_usage_units(const rs_line_t *l)
{
    return (__int128)(((unsigned __int128)(uint64_t)l->uval_hi << 64) | l->uval_lo);
}

static inline void rs_eng_usage_set_units(rs_line_t *l, __int128 v)
{
    l->uval_lo = (uint64_t)v;
    l->uval_hi = (int64_t)(v >> 64);
}

typedef struct rs_inv_line {
    int line; /* index into the contract's lines */
    rs_money_t amount, tax;
    rs_money_t paid;       /* gross received against this line */
    rs_money_t credited;   /* net amount credited */
    rs_money_t credit_tax; /* tax credited */
    rs_money_t allowance;  /* open allowance for doubtful accounts */
} rs_inv_line_t;

typedef struct rs_invoice {
    rs_eng_str_t invoice_id;
    rs_eng_str_t source;
    rs_date_t issued_on;
    int voided;
    int uncollectible;
    int nlines;        /* lines holds exactly nlines */
    rs_money_t credit; /* customer credit that arose on this invoice */
    rs_inv_line_t *lines;
} rs_invoice_t;

typedef struct rs_payment {
    rs_eng_str_t payment_id;
    rs_eng_str_t source;
    int invoice; /* index */
    int failed;
    rs_money_t amount, refunded;
} rs_payment_t;

/* A waiting event. `blob` (owned, `len` bytes, never moved) holds
 *   waiting_for "\0" event_id "\0" hint_id "\0" packed event
 * where the packed event is the record encoding of rs_engine_state.c
 * (rs_eng_pending_pack / rs_eng_pending_unpack). The hint is what the event
 * was last found waiting for (kind RS_ENG_WAIT_*, and the id at hint_off):
 * while it still holds the event still waits, so draining need not unpack
 * it. waiting_for is what the pending view shows (as when it was queued). */
enum { RS_ENG_WAIT_NONE = 0, RS_ENG_WAIT_CONTRACT, RS_ENG_WAIT_INVOICE, RS_ENG_WAIT_LINE };
typedef struct rs_pending {
    char *blob;
    uint32_t len, ev_off;
    uint16_t id_off, hint_off;
    uint8_t hint;
    rs_event_type_t type;
} rs_pending_t;

typedef struct rs_seen {
    uint64_t id_hash, content_hash; /* id_hash 0 = empty slot */
} rs_seen_t;
/* A seen set starts as a plain array of RS_ENG_SEEN_LINEAR ids (scanned
 * whole: a simple contract's three events in 48 bytes), then is a table of
 * 8 slots and more: one of up to RS_ENG_SEEN_SMALL slots fills to all but
 * one, a larger one to 70% (rs_engine_table.c). */
#define RS_ENG_SEEN_LINEAR 3
#define RS_ENG_SEEN_SMALL 8

/* A contract: 184 bytes and its id (narrow counts and flags: with an id of
 * up to 15 characters, a 208-byte block with malloc's header). */
typedef struct rs_contract {
    rs_eng_str_t customer_id;
    rs_eng_str_t booked_by;
    char currency[4];
    uint8_t exponent; /* 0..4 (the currency's; checked on import) */
    uint8_t booked;
    uint8_t changed; /* in the engine's changed set */
    /* Created by an event (not imported) since the engine's seen list was
     * last taken with ids of it: the seen store holds none of its ids, so
     * rs_eng_seen_check does not ask it (rs_engine_seen.c). */
    uint8_t fresh;
    rs_date_t booked_on;
    rs_date_t cancelled_on;
    /* reverse_revenue: recognition suspended from this day (a write-off
     * declared collection not probable) until a payment; RS_DATE_NONE */
    rs_date_t suspended_on;
    rs_period_t horizon;    /* recognition posted through; RS_PERIOD_NONE */
    rs_period_t frontier;   /* latest period posted to; RS_PERIOD_NONE */
    rs_period_t dirty_from; /* earliest period whose R may have changed */
    uint32_t npend, cappend;
    uint64_t seq;
    rs_money_t customer_credit, written_off;

    int nlines, caplines;
    rs_line_t *lines;
    int ninv, capinv;
    rs_invoice_t *inv;
    int npay, cappay;
    rs_payment_t *pay;
    int ndocs, capdocs;
    rs_eng_str_t *docs; /* credit note and refund ids already applied */
    rs_pending_t *pend;
    size_t pend_bytes; /* sum of pend[].len (not in the record: recomputed) */
    uint32_t nseen, capseen;
    rs_seen_t *seen;
    char *str; /* the string arena: nstr bytes used of capstr */
    uint32_t nstr, capstr;
    char contract_id[]; /* allocated with the contract (rs_eng_contract_new) */
} rs_contract_t;

/* The text of a contract string (see the file comment for its lifetime). */
static inline const char *rs_eng_str(const rs_contract_t *c, rs_eng_str_t r)
{
    if (r & RS_ENG_STR_STATIC)
        return rs_eng_rule_names[r & ~RS_ENG_STR_STATIC];
    return r ? c->str + r : "";
}

/* An entry of the engine's intern table: `refs` holders point at s. */
typedef struct rs_eng_istr {
    uint32_t refs, hash;
    char s[];
} rs_eng_istr_t;

/* The engine (rs_engine*.c own the logic, rs_engine_state.c the records). */
struct rs_engine {
    rs_policy_t policy;
    rs_contract_t **slots; /* open addressing by contract_id */
    size_t nslots, ncontracts;
    rs_contract_t **sorted; /* cache, rebuilt when dirty */
    size_t capsorted;       /* allocated (cap* fields: for rs_engine_memory_bytes) */
    int sorted_dirty;
    struct rs_view {
        rs_contract_t *c;
        int line;
    } * views;
    size_t nviews, capviews;
    rs_contract_t **cviews;
    size_t ncviews, capcviews;
    int views_dirty;

    rs_period_t closed_through; /* every period <= it is closed */
    rs_seen_t *gseen;           /* period.closed events */
    size_t ngseen, capgseen;
    rs_period_t horizon;               /* every contract is recognized at least through this */
    rs_engine_advance_fn advance_hook; /* contracts outside memory (rs_engine.h) */
    void *advance_opaque;
    /* every horizon move, in order (horizons increasing): what a contract
     * record written before it is caught up through (lazy close) */
    struct rs_eng_close {
        rs_period_t horizon, closed_through; /* closed_through when it moved */
    } * closes;
    size_t ncloses, capcloses;

    rs_entry_sink_fn sink;
    void *sink_opaque;
    rs_engine_stats_t stats;
    rs_rejection_t *late;
    size_t nlate, caplate;
    int untracked;           /* rs_engine_track_changes(e, 0): no changed set */
    rs_contract_t **changed; /* contracts changed since rs_engine_take_changed */
    size_t nchanged, capchanged;
    const char **changed_ids;
    size_t capchanged_ids;
    rs_eng_istr_t **itab; /* intern table (products): open addressing by hash */
    size_t nitab, capitab;

    /* the seen store (rs_engine_seen.c): NULL = ids kept in contracts */
    rs_seen_lookup_fn seen_fn;
    void *seen_opaque;
    struct rs_eng_newseen *nseen_v; /* ids since rs_engine_take_seen */
    size_t nnew, capnew;
    uint32_t *newidx; /* open addressing over nseen_v: index + 1 */
    size_t capnewidx;
    char *newids; /* contract ids of nseen_v (offsets) */
    size_t nnewids, capnewids;
    rs_seen_id_t *seen_out; /* what rs_engine_take_seen handed out */
    size_t capseen_out;
    int seen_taken; /* the arena still backs seen_out */
    /* rs_engine_walk_record: the import replaces nothing */
    int import_absent;
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
int rs_eng_grow32(void **p, uint32_t *cap, size_t need, size_t elem); /* need <= UINT32_MAX */
uint64_t rs_eng_str_hash(const char *s, uint64_t seed);               /* never 0 */
/* The seeds of a contract id's hash (the table's slots) and an event id's
 * (the seen sets): the table, the reader thread's digests and the prefetch
 * hints must all hash alike. */
#define RS_ENG_CONTRACT_SEED RS_FNV1A64_BASIS
#define RS_ENG_EVENT_ID_SEED 7
void rs_eng_copy_id(char *dst, const char *src); /* into an RS_ID_MAX field */

/* Store s (its first max - 1 bytes at most, like snprintf into a field of
 * `max` bytes) in c's arena; *out is its reference ("" costs nothing).
 * 0, or -1 on ENOMEM (*out unchanged). May move the arena. */
int rs_eng_str_put(rs_contract_t *c, const char *s, size_t max, rs_eng_str_t *out);
/* A rule name: a static one (RS_ENG_RULE_*) if s is one, else as above. */
int rs_eng_rule_put(rs_contract_t *c, const char *s, rs_eng_str_t *out);
/* Give the arena back down to what is used (after an import). */
void rs_eng_str_shrink(rs_contract_t *c);

/* The interned copy of s (first max - 1 bytes), with one more reference;
 * NULL on ENOMEM. "" is a static string that needs no reference. Drop each
 * reference with rs_eng_unintern (NULL is ignored). */
const char *rs_eng_intern(rs_engine_t *e, const char *s, size_t max);
void rs_eng_unintern(rs_engine_t *e, const char *s);
/* The slot of idh, or the empty slot where it would go; NULL if cap is 0
 * (or a full plain array does not hold idh). */
rs_seen_t *rs_eng_seen_find(rs_seen_t *tab, size_t cap, uint64_t idh);
/* The capacity a seen set of n ids gets (what growing to n ids gives). */
size_t rs_eng_seen_cap(size_t n);
int rs_eng_seen_add(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh, uint64_t ch);
void rs_eng_seen_remove(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh);
void rs_eng_line_free(rs_engine_t *e, rs_line_t *l); /* what the line owns, not the line */
void rs_eng_pending_free(rs_pending_t *p);           /* its blob */
void rs_eng_contract_free(rs_engine_t *e, rs_contract_t *c);
/* A new, empty contract with this id (not in the table); NULL on ENOMEM. */
rs_contract_t *rs_eng_contract_new(const char *id);
/* Put a contract whose id is not in the table into it. 0, or -1 on ENOMEM. */
int rs_eng_contract_insert(rs_engine_t *e, rs_contract_t *c);
rs_contract_t *rs_eng_contract_find(const rs_engine_t *e, const char *id);
/* The same with the id's hash already known: h = rs_eng_str_hash(id,
 * RS_ENG_CONTRACT_SEED), an event digest's contract_hash. */
rs_contract_t *rs_eng_contract_find_h(const rs_engine_t *e, const char *id, uint64_t h);
rs_contract_t *rs_eng_contract_get_or_create(rs_engine_t *e, const char *id, uint64_t h);
void rs_eng_slot_put(rs_contract_t **slots, size_t nslots, rs_contract_t *c);
int rs_eng_sort_contracts(rs_engine_t *e); /* refresh e->sorted */
void rs_eng_mark_changed(rs_engine_t *e, rs_contract_t *c);

/* ---- rs_engine_seen.c: the idempotency set (contract or seen store) ---- */

/* Has c applied (or queued) the event id idh? 1 yes (*ch its content
 * hash), 0 no, -1 the seen store failed. */
int rs_eng_seen_check(rs_engine_t *e, rs_contract_t *c, uint64_t idh, uint64_t *ch);
/* Remember an applied or queued event. 0, or -1 on ENOMEM. */
int rs_eng_seen_note(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, uint64_t idh,
                     uint64_t ch);
/* Forget an id (a waiting event failed when it applied). */
void rs_eng_seen_forget(rs_engine_t *e, rs_contract_t *c, uint64_t idh);
/* With a seen store: move the ids c's record brought into the list
 * rs_engine_take_seen hands out (best-effort under ENOMEM). */
void rs_eng_seen_migrate(rs_engine_t *e, rs_contract_t *c);
/* What the seen list holds, for rs_engine_memory_bytes, and freeing it. */
size_t rs_eng_seen_bytes(const rs_engine_t *e);
void rs_eng_seen_free(rs_engine_t *e);

/* ---- rs_engine_schedule.c: R(d) and schedule changes ---- */

rs_date_t rs_eng_line_last_day(const rs_line_t *l);
rs_money_t rs_eng_usage_value(const rs_contract_t *c, const rs_line_t *l, rs_date_t lo,
                              rs_date_t hi);
/* The value of all of l's usage with `qty` (10^-6 units) more on day d, at
 * the price in force on each day (O(1), from the cached sum); or, when
 * `bound` is not NULL, an upper bound of it: all the usage at the largest
 * of *bound and the line's prices (O(usage days)). 0 with *out (and the
 * new unrounded sum in *units when not NULL), or -1 when it is beyond
 * RS_MONEY_MAX. Keeping every usage line's value within range (usage and
 * amendment validation) is what lets rs_eng_usage_value narrow its 128-bit
 * sum without a check. */
int rs_eng_usage_total(const rs_contract_t *c, const rs_line_t *l, rs_date_t d, __int128 qty,
                       const rs_decimal_t *bound, rs_money_t *out, __int128 *units);
/* Recompute l's cached usage sum (a usage line's prices or days changed
 * wholesale: rebuild, import). */
void rs_eng_usage_recount(rs_line_t *l);
rs_money_t rs_eng_usage_through(const rs_contract_t *c, const rs_line_t *l, rs_date_t d);
rs_money_t rs_eng_line_R(const rs_engine_t *e, const rs_contract_t *c, const rs_line_t *l,
                         rs_date_t d);
/* R at two days x <= y: exactly rs_eng_line_R(x) and rs_eng_line_R(y), with
 * the work they share done once (a sync asks for R at both ends of every
 * period of every line). */
void rs_eng_line_R2(const rs_engine_t *e, const rs_contract_t *c, const rs_line_t *l,
                    rs_date_t x, rs_date_t y, rs_money_t *rx, rs_money_t *ry);
/* Rules and sources are references into the contract's arena (or static
 * rule names): the schedule functions copy references, never text. */
int rs_eng_milestone_reprice(rs_line_t *l, rs_money_t price, rs_date_t C, rs_treatment_t t,
                             rs_account_t acct, rs_eng_str_t rule, rs_eng_str_t source,
                             rs_money_t *jump, int *comp);
rs_money_t rs_eng_milestone_credits(const rs_line_t *l);
int rs_eng_rebuild_line(rs_engine_t *e, rs_contract_t *c, rs_line_t *l);
rs_change_t *rs_eng_add_change(rs_engine_t *e, rs_contract_t *c, int li, rs_change_kind_t kind,
                               rs_date_t on, rs_eng_str_t rule, rs_eng_str_t source);
int rs_eng_price_change(rs_engine_t *e, rs_contract_t *c, int li, rs_money_t delta, rs_date_t C,
                        rs_treatment_t t, rs_account_t acct, rs_eng_str_t rule,
                        rs_eng_str_t source, rs_money_t *jump, int *comp);
int rs_eng_stop_line(rs_engine_t *e, rs_contract_t *c, int li, rs_date_t E, int forfeit,
                     rs_eng_str_t source);

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
/* A true-up's effect on service already recognized, in the true-up's entry:
 * for each service period from..to, what the line's regular schedule
 * (component 0) now falls short of what was posted for it is posted to
 * revenue_contra in x and recorded as posted (so no later sync posts it
 * again as negative revenue). Credits and reverse_revenue write-offs call
 * it after their price change, with from = the period of their date and
 * to = the contract's horizon. 0 (it allocates nothing). */
int rs_eng_true_up_posted(rs_entry_ctx_t *x, int li, rs_period_t from, rs_period_t to);
int rs_eng_sync_contract(rs_engine_t *e, rs_contract_t *c, rs_period_t H, rs_date_t trigger);
void rs_eng_mark_dirty(rs_contract_t *c, rs_period_t p);

/* ---- rs_engine_validate.c: event errors, amounts, lookups, allocation ---- */

int rs_eng_verr(rs_vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "<pre>[<i>]<post>" into f (cap bytes, truncated like snprintf), returned:
 * the field an error names (lines[2].amount), built without snprintf's
 * cost because handlers build it per line of every event, error or not. */
const char *rs_eng_field(char *f, size_t cap, const char *pre, int i, const char *post);
/* *out = a + b, or -1 with "event <id>: <field>: <what> would be out of
 * range" when the sum is beyond RS_MONEY_MAX (money never wraps). Handlers
 * call it on temporaries while validating, before changing anything. */
int rs_eng_check_sum(rs_vctx_t *v, const char *field, const char *what, rs_money_t a,
                     rs_money_t b, rs_money_t *out);
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
/* document and source may be the contract's strings: it stores none. */
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
/* The same question as a kind (RS_ENG_WAIT_*, NONE if it can apply) and the
 * id waited for (*id points into ev or c). */
int rs_eng_wait_kind(const rs_contract_t *c, const rs_event_t *ev, const char **id);
/* The waiting events of one contract take at most this many bytes (their
 * packed form, about what they take in the contract's record): an event
 * that would pass it is rejected, so waiting events cannot push a record
 * past a message limit however many come before what they wait for. */
#define RS_ENG_PENDING_MAX_BYTES 262144u /* 256 KiB */
/* Queue ev (RS_APPLY_PENDING), or reject it (RS_APPLY_REJECTED, errstr)
 * when the contract's waiting events would pass RS_ENG_PENDING_MAX_BYTES. */
rs_apply_result_t rs_eng_pending_add(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                                     const char *wait, uint64_t idh, uint64_t ch, char *errstr,
                                     size_t errlen);
void rs_eng_drain_pending(rs_engine_t *e, rs_contract_t *c);

/* rs_engine_state.c: a waiting event's blob (see rs_pending_t). pack fills
 * *p (which owns nothing yet) from the event, what it waits for and its
 * hint: 0, or -1 on ENOMEM. unpack decodes the event into ev (rs_event_clear
 * it after): 0, or -1 on ENOMEM. */
int rs_eng_pending_pack(rs_pending_t *p, const rs_event_t *ev, const char *waiting_for,
                        int hint, const char *hint_id);
int rs_eng_pending_unpack(const rs_pending_t *p, rs_event_t *ev);

/* ---- rs_engine.c ---- */

/* Move the contract's clock to the event's date, apply it, sync. */
int rs_eng_apply_now(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                     size_t errlen);

#endif
