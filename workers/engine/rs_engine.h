/*
 * rs_engine — the revenue-recognition engine: events in, journal entries out.
 *
 * Pure C: no I/O, no clocks, no Kafka, no RocksDB. The same events in the same
 * order give byte-identical entries with the same ids.
 *
 * Model (the invariants the implementation keeps are in rs_engine.c):
 *   - A contract has lines (performance obligations). Each line has a
 *     cumulative recognition function R(d): revenue earned through the end of
 *     day d under the line's current terms. Period revenue is
 *     R(last day) - R(day before first day); R is rounded cumulatively, so a
 *     line's periods always sum to its transaction price.
 *   - Each contract has a recognition horizon (a period). Recognition is
 *     posted for every period up to the horizon as the difference between what
 *     R says and what was already posted. Before an event dated d is applied
 *     to a contract, its horizon moves to the month before d's month, so an
 *     invoice for services already delivered finds them recognized (unbilled).
 *     rs_engine_advance() and period.closed move every contract's horizon.
 *   - A closed period is never posted to again: a change that belongs to it
 *     posts in the first open period, and the entry keeps the service period.
 *   - Entry ids are "<contract_id>#<seq>", seq counting the contract's entries
 *     from 1.
 *
 * Ownership: the engine owns all contract state. Entries passed to the sink
 * are valid only during the call; copy what you keep. Events passed to
 * rs_engine_apply() are copied when they must wait (the caller keeps its own).
 */
#ifndef RS_ENGINE_H
#define RS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "rs_event.h"
#include "rs_money.h"

typedef enum rs_account {
    RS_ACCT_ACCOUNTS_RECEIVABLE = 0,
    RS_ACCT_CASH,
    RS_ACCT_DEFERRED_REVENUE,
    RS_ACCT_UNBILLED_RECEIVABLE,
    RS_ACCT_REVENUE,
    RS_ACCT_REVENUE_CONTRA,
    RS_ACCT_TAX_PAYABLE,
    RS_ACCT_BAD_DEBT_EXPENSE,
    RS_ACCT_ALLOWANCE_DOUBTFUL,
    RS_ACCT_CUSTOMER_CREDIT,
    RS_ACCT__COUNT
} rs_account_t;

const char *rs_account_name(rs_account_t a); /* the role name of events.md */

typedef enum rs_entry_kind {
    RS_ENTRY_INVOICE = 0,
    RS_ENTRY_RECOGNITION,
    RS_ENTRY_PAYMENT,
    RS_ENTRY_CREDIT_NOTE,
    RS_ENTRY_REFUND,
    RS_ENTRY_VOID,
    RS_ENTRY_WRITE_OFF,
    RS_ENTRY_RECOVERY,
    RS_ENTRY_FORFEIT,
    RS_ENTRY_CUSTOMER_CREDIT,
    RS_ENTRY__COUNT
} rs_entry_kind_t;

const char *rs_entry_kind_name(rs_entry_kind_t k);

#define RS_ENTRY_MAX_POSTINGS 8
#define RS_ENTRY_MAX_SOURCES 8
#define RS_ACCOUNT_CODE_MAX 48

typedef struct rs_posting {
    rs_account_t account;     /* the role */
    rs_money_t debit, credit; /* one of them is zero; both >= 0 */
    /* The account code: the engine's policy's code for the role and the
     * entry's product (rs_policy_account_code), set when the entry is
     * emitted; "" on an entry read from a record that carried no code. */
    char code[RS_ACCOUNT_CODE_MAX];
} rs_posting_t;

typedef struct rs_entry {
    char entry_id[RS_ID_MAX + 24];
    uint64_t seq;               /* per contract, from 1 */
    rs_date_t posted_on;        /* accounting date */
    rs_period_t period;         /* accounting period it is posted in */
    rs_period_t service_period; /* the period the amounts belong to */
    rs_entry_kind_t kind;
    char rule[32]; /* recognition method, "catch_up", "invoice", ... */
    char contract_id[RS_ID_MAX];
    char customer_id[RS_ID_MAX];
    char line_id[RS_ID_MAX];
    char document_id[RS_ID_MAX]; /* invoice, credit note or payment id; may be "" */
    char product[RS_NAME_MAX];   /* the line's product ("" for contract-level) */
    char currency[4];
    int exponent;
    int n_postings;
    rs_posting_t postings[RS_ENTRY_MAX_POSTINGS];
    int n_sources;
    char sources[RS_ENTRY_MAX_SOURCES][RS_ID_MAX];
    uint32_t source_count; /* all source events; > n_sources when listed in part */
    /* Effects on the line's measures, for reports (sums of these by line and
     * period are the balances report). */
    rs_money_t billed;     /* + invoiced (net of tax), - credited */
    rs_money_t recognized; /* net revenue: revenue minus revenue_contra */
    rs_money_t received;   /* + payments, - refunds */
} rs_entry_t;

typedef void (*rs_entry_sink_fn)(void *opaque, const rs_entry_t *entry);

typedef enum rs_cancel_policy {
    RS_CANCEL_KEEP_DEFERRED = 0, /* unearned billed money stays deferred */
    RS_CANCEL_FORFEIT,           /* recognized on the cancellation date */
} rs_cancel_policy_t;

typedef enum rs_bad_debt_policy {
    RS_BAD_DEBT_ALLOWANCE = 0, /* Dr bad_debt_expense, Cr allowance_doubtful */
    RS_BAD_DEBT_REVERSE_REVENUE,
} rs_bad_debt_policy_t;

typedef enum rs_proration {
    RS_PRORATE_DAYS_IN_MONTH = 0, /* ratable_monthly: partial month = days/days-in-month */
    RS_PRORATE_30_360,            /* partial month = days/30, capped at a whole month */
} rs_proration_t;

#define RS_POLICY_MAX_CODES 64

/* An account code for a role, optionally for one product only. */
typedef struct rs_account_code {
    rs_account_t role;
    char product[RS_NAME_MAX]; /* "" for every product */
    char code[RS_ACCOUNT_CODE_MAX];
} rs_account_code_t;

typedef struct rs_policy {
    rs_cancel_policy_t cancellation;
    rs_bad_debt_policy_t bad_debt;
    rs_proration_t proration;
    int n_codes;
    rs_account_code_t codes[RS_POLICY_MAX_CODES];
} rs_policy_t;

/* Defaults: keep_deferred, allowance, days_in_month, account codes = role names. */
void rs_policy_defaults(rs_policy_t *p);

/* Parse a policy file's text (key = value lines; '#' starts a comment that
 * runs to the end of its line) over `p`:
 *   policy.cancellation = keep_deferred | forfeit
 *   policy.bad_debt     = allowance | reverse_revenue
 *   policy.proration    = days_in_month | 30_360
 *   account.<role>            = CODE
 *   account.<role>.<product>  = CODE
 * An unknown key or value is an error naming the line and the key. */
int rs_policy_parse(rs_policy_t *p, const char *text, char *errstr, size_t errlen);

/* The code for a role (and product): the product's override, else the
 * role's code, else the role name. */
const char *rs_policy_account_code(const rs_policy_t *p, rs_account_t role,
                                   const char *product);

typedef struct rs_engine rs_engine_t;

/* Create an engine. `policy` may be NULL for the defaults. Returns 0, or -1
 * with a reason in errstr. */
int rs_engine_new(rs_engine_t **out, const rs_policy_t *policy, char *errstr, size_t errlen);
void rs_engine_destroy(rs_engine_t *e); /* accepts NULL */

/* Where entries go. Without a sink entries are still counted and applied. */
void rs_engine_set_sink(rs_engine_t *e, rs_entry_sink_fn fn, void *opaque);

typedef enum rs_apply_result {
    RS_APPLY_OK = 0,
    RS_APPLY_DUPLICATE, /* same event_id and content seen before: ignored */
    RS_APPLY_PENDING,   /* waits for its contract or invoice */
    RS_APPLY_REJECTED,  /* errstr names the event_id and the field */
    RS_APPLY_NOMEM,
    RS_APPLY_EIO, /* the seen store's lookup failed: nothing changed */
} rs_apply_result_t;

/* Apply one event. On RS_APPLY_REJECTED nothing changed and errstr reads
 * "event <id>: <field>: <reason>". Waiting events that become applicable are
 * applied by this call too; one of them failing is reported through
 * rs_engine_take_late_rejections(). */
rs_apply_result_t rs_engine_apply(rs_engine_t *e, const rs_event_t *ev, char *errstr,
                                  size_t errlen);

/* The two digests the idempotency check keys an event by: its event_id's
 * and its content's (rs_event_hash). A pure function of the event, so a
 * reader may compute it on its own thread, ahead of the engine. */
typedef struct rs_event_digest {
    uint64_t id_hash;
    uint64_t content_hash;
    uint64_t contract_hash; /* of contract_id, where the engine looks it up */
} rs_event_digest_t;

void rs_engine_event_digest(const rs_event_t *ev, rs_event_digest_t *out);

/* rs_engine_apply() with the event's digest already computed
 * (rs_engine_event_digest of this very event; another digest makes the
 * idempotency check and the contract's lookup, by contract_hash, wrong).
 * Same results. */
rs_apply_result_t rs_engine_apply_digested(rs_engine_t *e, const rs_event_t *ev,
                                           const rs_event_digest_t *digest, char *errstr,
                                           size_t errlen);

/* A hint, for a caller that knows the events it will apply next: bring the
 * state event `ev` will touch toward the cache, in three steps taken while
 * other events are applied — stage 3 furthest ahead (where the contract
 * is found), stage 2 a few events ahead (the contract),
 * stage 1 closer (its lines, invoices, seen set), stage 0 next (the lines'
 * schedules and postings). Reads the engine's state only as far as the
 * earlier stages brought it, changes nothing, and is never needed for a
 * result: skipping it or calling it for an event never applied is harmless.
 * Engine thread only (it reads the state that apply changes). */
void rs_engine_prefetch(const rs_engine_t *e, const rs_event_t *ev,
                        const rs_event_digest_t *digest, int stage);

/* Recognize every contract through the end of `through` (period.closed
 * calls it too). With an advance hook set, the engine moves its horizon and
 * leaves the recognizing to the hook. */
int rs_engine_advance(rs_engine_t *e, rs_period_t through);

/* ---- contracts held outside the engine (the worker's bounded cache) ----
 *
 * A caller that keeps only some contracts in memory (the rest in a store)
 * sets an advance hook: rs_engine_advance() then moves the horizon and calls
 * `fn`, which must bring EVERY contract, in memory or not, through
 * rs_engine_horizon() with rs_engine_recognize_contract() — in contract_id
 * order to give the entries in the order the plain engine gives them —
 * and return 0, or -1 (the advance fails). The hook may import and forget
 * contracts. A contract imported later that is behind the horizon is
 * brought through it by its next event (the same entries), but a close
 * (period.closed) must find every contract recognized: the hook is what
 * guarantees that. */
typedef int (*rs_engine_advance_fn)(void *opaque, rs_engine_t *e);
void rs_engine_set_advance_hook(rs_engine_t *e, rs_engine_advance_fn fn, void *opaque);

/* Recognize one contract through the horizon (what rs_engine_advance does
 * for each). Returns 1 if the contract is in the changed set afterwards,
 * 0 if not (or the engine has no such contract), -1 on ENOMEM. */
int rs_engine_recognize_contract(rs_engine_t *e, const char *contract_id);

/* Lazy close: a close may leave a contract's record in the store behind
 * (not written back); the engine keeps every horizon move, with the
 * closed periods of its moment, in its meta record. Bring `contract_id`
 * (just imported from such a record) through the moves of `history`'s
 * meta (NULL: e's own) that are past its own horizon and before `below`
 * (RS_PERIOD_NONE: all), as those rs_engine_advance() calls would have:
 * the same state, its entries not emitted (they were, at the close) and
 * not counted, and the contract not marked changed. Returns how many
 * moves it was brought through (0: absent, not booked or not behind), or
 * -1 on ENOMEM. */
int rs_engine_catch_up_contract(rs_engine_t *e, const char *contract_id,
                                const rs_engine_t *history, rs_period_t below);

/* rs_engine_import_contract of a record of `contract_id`, then
 * rs_engine_catch_up_contract(e, contract_id, history, below) (*moves
 * gets its count when not NULL) and, if `recognize`,
 * rs_engine_recognize_contract: what a store's walk does per record, with
 * one lookup. Returns 1 if the contract is in the changed set after the
 * recognition, 0 if not (or not `recognize`), -1 with errstr. */
int rs_engine_import_caught_up(rs_engine_t *e, const char *contract_id, const void *buf,
                               size_t len, const rs_engine_t *history, rs_period_t below,
                               int recognize, int *moves, char *errstr, size_t errlen);

/* The lazy close's walk (state/rs_pstate.h C2), with one lookup each
 * (rs_engine_walk.c). rs_engine_walk_contract: recognize a contract in
 * memory through the horizon; returns 1 if it was not in the changed set
 * and the recognition changed it (taken out of the set again unless
 * `keep`), 0 if not (or absent), -1 on ENOMEM. rs_engine_walk_record:
 * rs_engine_import_caught_up(e, contract_id, buf, len, NULL, below, 1,
 * moves, ...) of a record of a contract the engine does NOT hold (not
 * looked up first: the caller knows), the change taken out of the changed
 * set unless the record was `keep_moves` or more moves behind. */
int rs_engine_walk_contract(rs_engine_t *e, const char *contract_id, int keep);
int rs_engine_walk_record(rs_engine_t *e, const char *contract_id, const void *buf, size_t len,
                          rs_period_t below, int keep_moves, int *moves, char *errstr,
                          size_t errlen);

/* The moves in e's horizon history (one per rs_engine_advance that moved
 * the horizon): a caller of the hook tells a close that moved it from one
 * that did not. */
size_t rs_engine_history_length(const rs_engine_t *e);
/* Is the contract in the changed set (rs_engine_take_changed)? */
int rs_engine_contract_is_changed(const rs_engine_t *e, const char *contract_id);
/* Take one contract out of the changed set (the caller wrote it to the
 * store). Cheapest for the contract marked last. */
void rs_engine_contract_clear_changed(rs_engine_t *e, const char *contract_id);

/* Is the contract in memory? */
int rs_engine_has_contract(const rs_engine_t *e, const char *contract_id);

/* The heap one contract holds, 0 if absent: every block it owns as the
 * allocator rounds it (rs_engine_alloc_size), plus its share of the
 * engine's per-contract tables (RS_ENGINE_CONTRACT_SHARE: the contract
 * table's slots, at most 70 % full and at least 35 %, and the sorted
 * array). What the bounded cache counts (rs_pstate.h); bench/README.md
 * ("An honest cache bound") compares it with jemalloc's own count.
 * O(the contract's lines and invoices), not O(engine). */
#define RS_ENGINE_CONTRACT_SHARE (5 * sizeof(void *))
size_t rs_engine_contract_bytes(const rs_engine_t *e, const char *contract_id);

/* The bytes a malloc(n) really takes: the larger of glibc's chunk (n plus
 * an 8-byte header, in 16-byte steps, at least 32) and jemalloc's size
 * class (8; multiples of 16 up to 128; then four classes per doubling:
 * 160, 192, 224, 256, 320, ...). 0 for 0 (nothing allocated). Either
 * allocator the program runs on takes at most this for the block itself. */
size_t rs_engine_alloc_size(size_t n);

/* Copies of the ids of the contracts in memory, sorted by contract_id:
 * *ids is one malloc'd block (free() it once). Returns the count, or
 * (size_t)-1 on ENOMEM. */
size_t rs_engine_contract_ids(rs_engine_t *e, char ***ids);

/* The period every contract is recognized through at least (moved by
 * rs_engine_advance and period.closed), or RS_PERIOD_NONE. */
rs_period_t rs_engine_horizon(const rs_engine_t *e);

/* Rejections of events that had waited and failed once their reference came. */
typedef struct rs_rejection {
    char event_id[RS_ID_MAX];
    char contract_id[RS_ID_MAX];
    rs_event_type_t type;
    char reason[512];
} rs_rejection_t;
/* Moves the queued late rejections to the caller (free() the array). */
size_t rs_engine_take_late_rejections(rs_engine_t *e, rs_rejection_t **out);

/* ---- read-only views for reports ----
 *
 * A view's strings point into the engine's memory: they stay valid until the
 * next call that changes the engine (apply, advance, import, forget, ...);
 * copy what must outlive that. */

typedef struct rs_line_view {
    const char *contract_id;
    const char *customer_id;
    const char *line_id;
    const char *product;
    const char *currency;
    int exponent;
    rs_method_t method;
    rs_date_t start, end;  /* current service period */
    rs_money_t price;      /* current transaction price (after SSP allocation) */
    rs_money_t billed;     /* net of credit notes */
    rs_money_t recognized; /* posted so far */
    rs_money_t deferred, unbilled, received;
    rs_date_t ended_on; /* last day of service after a cancellation; else RS_DATE_NONE */
    /* usage lines: the value of usage accepted while the service ran but
     * recorded on days a later cancellation or amendment left outside it
     * (not recognized); 0 otherwise */
    rs_money_t usage_outside;
    int index; /* the line's position in its contract (rs_engine_contract_line_scheduled) */
} rs_line_view_t;

/* Lines of booked contracts, sorted by (contract_id, line_id). */
size_t rs_engine_line_count(const rs_engine_t *e);
void rs_engine_line_get(const rs_engine_t *e, size_t i, rs_line_view_t *out);
/* The views of one booked contract's lines, sorted by line_id, into
 * out[0..max). Returns how many lines it has (more than max: nothing was
 * written, call again with room for them), 0 if it is absent or not booked.
 * O(its lines): for one contract, where the sorted views would sort all. */
size_t rs_engine_contract_lines(const rs_engine_t *e, const char *contract_id,
                                rs_line_view_t *out, size_t max);
/* R(d) of line i: what its current terms recognize through the end of day d. */
rs_money_t rs_engine_line_scheduled(const rs_engine_t *e, size_t i, rs_date_t d);
/* R(d) of a contract's line by its view's `index` (0 if there is none). */
rs_money_t rs_engine_contract_line_scheduled(const rs_engine_t *e, const char *contract_id,
                                             int index, rs_date_t d);

typedef struct rs_pending_view {
    const char *event_id;
    const char *contract_id;
    rs_event_type_t type;
    const char *waiting_for; /* "contract C-1" or "invoice INV-9" */
} rs_pending_view_t;
size_t rs_engine_pending_count(const rs_engine_t *e);
void rs_engine_pending_get(const rs_engine_t *e, size_t i, rs_pending_view_t *out);

/* ---- durable state (the worker's RocksDB store) ----
 *
 * A worker runs one engine per input partition and persists it contract by
 * contract: after a batch, every contract the batch changed is exported and
 * written with the batch's input offsets in one RocksDB write batch. At
 * restart (or when a partition moves) the contracts and the engine's meta
 * state are imported back. The formats are versioned binary records; an
 * unknown version or a corrupt record is an error, never a crash. */

/* The ids of contracts changed since the last call (applied to, posted for,
 * or waited on). The array and strings stay valid until the next call that
 * changes the engine. Clears the set. */
size_t rs_engine_take_changed(rs_engine_t *e, const char *const **ids);
/* A caller that never takes the changed set (replay: nothing to write) can
 * turn its tracking off (8 bytes and more per contract otherwise): the set
 * then stays empty. On by default; set it before the first apply. */
void rs_engine_track_changes(rs_engine_t *e, int on);

/* One contract's complete state: terms, schedule changes, usage, invoices,
 * payments, posted ledger, waiting events and, without a seen store, its
 * idempotency set (with one, the ids are the store's: see below). `*buf`
 * is malloc'd. Returns 0, 1 if the engine has no such contract, -1 on
 * error. */
int rs_engine_export_contract(const rs_engine_t *e, const char *contract_id, void **buf,
                              size_t *len, char *errstr, size_t errlen);

/* The packed form of a contract: the state rs_engine_export_contract
 * writes, in a compact encoding (variable-length integers, a repeated
 * string as a reference to its first occurrence; a simple contract takes
 * ~330 bytes instead of ~815, a realistic one about half its record). The
 * worker stores and changelogs this form (its state write and changelog
 * are mostly contract records); replay holds idle contracts in it. `*buf`
 * is malloc'd, of exactly *len bytes. rs_engine_import_contract (and
 * rs_engine_import_caught_up) read either form, for good: both are stored
 * formats, and a change to either takes a new tag. Returns as
 * rs_engine_export_contract. */
int rs_engine_pack_contract(const rs_engine_t *e, const char *contract_id, void **buf,
                            size_t *len, char *errstr, size_t errlen);

/* Load an exported (or packed) contract, replacing any state the engine
 * had for it. */
int rs_engine_import_contract(rs_engine_t *e, const void *buf, size_t len, char *errstr,
                              size_t errlen);

/* Drop a contract from memory (its partition was revoked). */
void rs_engine_forget_contract(rs_engine_t *e, const char *contract_id);

/* ---- idempotency: where applied event ids are kept ----
 *
 * The engine ignores an event whose event_id it applied (or queued) before:
 * RS_APPLY_DUPLICATE when the content is the same, rejected ("conflicting
 * duplicate") when it differs. It knows an id by a 64-bit hash of the id and
 * one of the content (rs_event_hash). By default it keeps them in each
 * contract (16 bytes per event, inside the contract's record): right for
 * replay and tests, but it grows with every event ever applied.
 *
 * A caller with a durable store sets a seen store instead. Then:
 *   - contracts keep no ids (a record does not grow with events);
 *   - for an id the engine does not know, it calls `lookup` (0 found with
 *     *content_hash set, 1 not found, -1 error: rs_engine_apply returns
 *     RS_APPLY_EIO and changes nothing);
 *   - the ids applied, queued or forgotten (a waiting event that failed
 *     later) since the last rs_engine_take_seen() are handed to it; the
 *     engine itself answers for them until then (the caller's batch is not
 *     committed yet), so the caller stages them with the contracts;
 *   - ids a record still holds (written without a seen store) stay valid
 *     and move to that list when their contract next changes;
 *   - the store holds ids only of contracts whose records the caller holds
 *     (staged in the same write), and the caller imports a contract's
 *     record before applying an event of it: so a contract the engine
 *     creates for an event has no stored ids, and `lookup` is not called
 *     for it until its ids were taken (rs_engine_stats_t.seen_lookups
 *     counts the calls).
 * Set it right after creating or loading the engine, before any apply. */
typedef int (*rs_seen_lookup_fn)(void *opaque, const char *contract_id, uint64_t id_hash,
                                 uint64_t *content_hash);
void rs_engine_set_seen_store(rs_engine_t *e, rs_seen_lookup_fn lookup, void *opaque);

typedef struct rs_seen_id {
    const char *contract_id;
    uint64_t id_hash, content_hash;
    rs_period_t period; /* of the event's occurred_on; RS_PERIOD_NONE if unknown */
    int forget;         /* the id left the set: delete it */
} rs_seen_id_t;
/* The seen-store changes since the last call (each (contract, id) once, its
 * latest state), and clears them. The array and strings stay valid until
 * the next call that changes the engine. */
size_t rs_engine_take_seen(rs_engine_t *e, const rs_seen_id_t **out);

/* Engine-wide state: closed periods, recognition horizon, period.closed
 * ids, and the horizon history (every rs_engine_advance move with the
 * closed periods of its moment: rs_engine_catch_up_contract). */
int rs_engine_export_meta(const rs_engine_t *e, void **buf, size_t *len, char *errstr,
                          size_t errlen);
int rs_engine_import_meta(rs_engine_t *e, const void *buf, size_t len, char *errstr,
                          size_t errlen);

/* Counters for logs and metrics. */
typedef struct rs_engine_stats {
    uint64_t applied, duplicates, rejected, pending, entries, contracts;
    uint64_t seen_lookups; /* calls of the seen store's lookup (rs_engine_set_seen_store) */
} rs_engine_stats_t;
void rs_engine_get_stats(const rs_engine_t *e, rs_engine_stats_t *out);

/* The heap the engine holds, in bytes: the exact sum of the sizes of the
 * allocations it owns (contracts and everything they own, its tables,
 * caches and queued rejections), not counting the allocator's own
 * overhead per block. Walks the whole state (O(state)): for benchmarks,
 * logs and metrics, not for every event. */
size_t rs_engine_memory_bytes(const rs_engine_t *e);

/* The latest closed period (every earlier one is closed too), or
 * RS_PERIOD_NONE. */
rs_period_t rs_engine_closed_through(const rs_engine_t *e);

/* Is period p closed? Closing a period closes every earlier one too. */
int rs_engine_period_closed(const rs_engine_t *e, rs_period_t p);

/* The policy the engine runs with (for account codes on output). */
const rs_policy_t *rs_engine_policy(const rs_engine_t *e);

/* Contract-level facts for reports (exceptions, customer credit). */
typedef struct rs_contract_view {
    const char *contract_id;
    const char *customer_id;
    const char *currency;
    int exponent;
    rs_date_t cancelled_on;     /* RS_DATE_NONE if not cancelled */
    rs_money_t customer_credit; /* credit balance owed to the customer */
    rs_money_t written_off;     /* open AR declared uncollectible */
} rs_contract_view_t;
/* An invoice's receivable (gross amounts: net plus tax). */
typedef struct rs_invoice_view {
    const char *contract_id, *customer_id, *invoice_id, *currency;
    int exponent;
    rs_date_t issued_on;
    rs_money_t amount, tax; /* as issued */
    rs_money_t credited;    /* credit notes and voids, tax included */
    rs_money_t paid;        /* received against it, net of refunds */
    rs_money_t open;        /* still receivable */
    rs_money_t allowance;   /* of the open part, provided for as doubtful */
    int voided, uncollectible;
} rs_invoice_view_t;
/* Invoices of booked contracts, sorted by (contract_id, invoice_id). */
size_t rs_engine_invoice_count(const rs_engine_t *e);
void rs_engine_invoice_get(const rs_engine_t *e, size_t i, rs_invoice_view_t *out);

/* Booked contracts sorted by contract_id. */
size_t rs_engine_contract_count(const rs_engine_t *e);
void rs_engine_contract_get(const rs_engine_t *e, size_t i, rs_contract_view_t *out);

#endif
