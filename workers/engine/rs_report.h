/*
 * rs_report — the report rows of events.md, computed from a journal (the
 * entries an engine emitted) and the engine's current terms. Pure: no I/O.
 * Formatting (table, csv, json) is the CLI's job.
 *
 * Invariants:
 *   - Reports are "as of the end of `through`": only entries whose accounting
 *     period is <= through count. Periods are accounting periods (the period an
 *     entry is posted in), so a closed period's figures never change.
 *   - Rows are sorted by their key fields (see each function).
 *   - Amounts are minor units of the row's currency; `exponent` says how to
 *     print them. Totals never mix currencies: waterfall and rollforward rows
 *     carry a currency.
 *   - Ownership: each function returns a malloc'd array the caller free()s.
 *     The rows' strings point into the engine (and, for rs_report_journal,
 *     the journal): they stay
 *     valid until the next rs_engine_apply() or rs_engine_advance().
 */
#ifndef RS_REPORT_H
#define RS_REPORT_H

#include <stddef.h>

#include "rs_engine.h"

/* A growable array of entries (what a sink collects). */
typedef struct rs_journal {
    rs_entry_t *entries;
    size_t n, cap;
} rs_journal_t;

void rs_journal_init(rs_journal_t *j);
void rs_journal_free(rs_journal_t *j);                       /* accepts NULL */
int rs_journal_append(rs_journal_t *j, const rs_entry_t *e); /* 0 or -1 ENOMEM */
/* An rs_entry_sink_fn that appends to the rs_journal_t in `opaque`. */
void rs_journal_sink(void *opaque, const rs_entry_t *e);

/*
 * An aggregator of entries: what the reports need, summed as the entries come
 * (per line and accounting period, per currency and period), so a stream of
 * entries can be reported without keeping it. Its size grows with the number
 * of (line, period) and (currency, period) pairs, never with the number of
 * entries; with a floor (rs_report_acc_set_floor), with the number of lines
 * (about 110 bytes each) and of (line, period) pairs above the floor. The
 * rs_report_acc_* reports equal the journal-based ones for the same entries
 * (the journal-based ones are built on it).
 */
typedef struct rs_report_acc rs_report_acc_t;

/* 0, or -1 (ENOMEM). */
/* What a report function or rs_report_acc_add returns when a total (one
 * currency over many contracts, say) is out of range (beyond RS_MONEY_MAX,
 * rs_money.h): totals are summed with checked arithmetic and never wrap. */
#define RS_REPORT_ERANGE (-2)

int rs_report_acc_new(rs_report_acc_t **acc);
void rs_report_acc_free(rs_report_acc_t *acc); /* accepts NULL */
/* Add one entry. Returns 0, or -1 on ENOMEM, or RS_REPORT_ERANGE when a
 * total goes out of range (the aggregator is then failed:
 * rs_report_acc_failed() says so and the reports refuse it, returning
 * RS_REPORT_ERANGE after an overflow). */
int rs_report_acc_add(rs_report_acc_t *acc, const rs_entry_t *e);
/* An rs_entry_sink_fn that adds to the rs_report_acc_t in `opaque`. */
void rs_report_acc_sink(void *opaque, const rs_entry_t *e);
/* Did an add run out of memory (or out of range)? */
int rs_report_acc_failed(const rs_report_acc_t *acc);
/* Did a total go out of range? */
int rs_report_acc_overflowed(const rs_report_acc_t *acc);
/* Entries added. */
size_t rs_report_acc_count(const rs_report_acc_t *acc);

/* Memory for a book of many contracts: a caller that knows which periods
 * its report can ask for lets the aggregator drop what it cannot need.
 *   set_floor(p): the report will be as of p or later. Each line's entries
 *     with period <= p are summed without their period (one cell per line,
 *     however many periods); raising the floor folds more the next time a
 *     line gets an entry. Lower values than the current floor are ignored.
 *   set_limit(p): the report will be as of p or earlier: entries with period
 *     > p are not kept per line (the currency sums keep them). Higher values
 *     than the current limit are ignored.
 * A report outside [floor, limit] is refused (-1), and so is the schedule
 * (per line and period) once anything was folded. Set them before adding
 * entries (the floor may rise as entries come). */
void rs_report_acc_set_floor(rs_report_acc_t *acc, rs_period_t floor);
void rs_report_acc_set_limit(rs_report_acc_t *acc, rs_period_t limit);
/* Which report the aggregator is for, so it keeps per line only what that
 * report reads: ALL (the default) every sum; BALANCES billed, recognized,
 * received, deferred and unbilled (no customer credit or write-offs: the
 * exceptions are refused); WATERFALL billed and recognized (the balances
 * are refused too); ROLLFORWARD nothing per line (only the rollforward,
 * from the currency sums, can be reported). Call it before the first entry
 * (ignored after). */
typedef enum rs_report_need {
    RS_REPORT_NEED_ALL = 0,
    RS_REPORT_NEED_BALANCES,
    RS_REPORT_NEED_WATERFALL,
    RS_REPORT_NEED_ROLLFORWARD,
} rs_report_need_t;
void rs_report_acc_need(rs_report_acc_t *acc, rs_report_need_t need);

typedef struct rs_schedule_row {
    const char *contract_id, *line_id, *currency;
    int exponent;
    rs_period_t period;
    rs_money_t recognized;
} rs_schedule_row_t;
/* Every period from each line's start period through `through` (key:
 * contract_id, line_id, period). */
int rs_report_schedule(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                       rs_schedule_row_t **rows, size_t *n);

typedef struct rs_balance_row {
    const char *contract_id, *line_id, *customer_id, *currency;
    int exponent;
    rs_money_t billed, recognized, deferred, unbilled, received;
} rs_balance_row_t;
/* One row per line (key: contract_id, line_id), as of the end of `through`. */
int rs_report_balances(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                       rs_balance_row_t **rows, size_t *n);

typedef struct rs_waterfall_row {
    rs_period_t period;
    char currency[4];
    int exponent;
    rs_money_t recognized; /* posted (<= through) or scheduled (> through) */
    rs_money_t deferred;   /* deferred_revenue balance at the period's end */
    int projected;         /* 1 for periods after `through` */
    /* Posted rows: recognized = from_deferred + not_via_deferred.
     * from_deferred: released from deferred_revenue by recognition entries
     * (the rollforward's `recognized`); not_via_deferred: everything else
     * recognized, i.e. revenue recognized before it was billed (against
     * unbilled_receivable: billed in arrears) and revenue adjustments that
     * release no deferred revenue. Both 0 on projected rows. */
    rs_money_t from_deferred, not_via_deferred;
} rs_waterfall_row_t;
/* Totals per period (key: period, currency), from the first period with
 * activity through the last period any line still has revenue to recognize. */
int rs_report_waterfall(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                        rs_waterfall_row_t **rows, size_t *n);

typedef struct rs_rollforward_row {
    rs_period_t period;
    char currency[4];
    int exponent;
    rs_money_t opening, billed, recognized, credits, closing;
    /* Not movements of deferred revenue, shown so the rollforward ties to
     * the waterfall: revenue = recognized + not_via_deferred is the
     * period's recognized revenue (the waterfall's `recognized`). */
    rs_money_t not_via_deferred, revenue;
} rs_rollforward_row_t;
/* deferred_revenue movements per period (key: period, currency) through
 * `through`: opening + billed - recognized - credits = closing. */
int rs_report_rollforward(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                          rs_rollforward_row_t **rows, size_t *n);

typedef struct rs_exception_row {
    const char *contract_id, *line_id, *customer_id, *currency;
    int exponent;
    const char *kind; /* see rs_report_exceptions */
    rs_money_t amount;
    char detail[192];
} rs_exception_row_t;
/* What finance must look at, as of the end of `through` (key: contract_id,
 * line_id, kind):
 *   deferred_after_cancellation  billed but unearned money on a line whose
 *                                service ended early (cancelled or removed)
 *   deferred_after_end           a line billed above its (allocated) price:
 *                                deferred revenue that its service has left,
 *                                or (service still running) will leave, since
 *                                no schedule will release it
 *   unbilled_after_end           earned but never invoiced after the service
 *   usage_outside_service        usage accepted, then left outside the line's
 *                                service by a later cancellation or amendment
 *                                (not recognized; as rejected usage would be)
 *   customer_credit              a credit balance owed to the customer at the
 *                                end of `through` (the journal's
 *                                customer_credit postings through it)
 *   written_off                  receivables declared uncollectible, still open
 *                                at the end of `through` (from the journal)
 *   pending                      events still waiting for a contract/invoice */
int rs_report_exceptions(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                         rs_exception_row_t **rows, size_t *n);

/* The same reports from an aggregator (rows as above; they return -1 for a
 * failed aggregator). */
int rs_report_acc_schedule(const rs_engine_t *e, const rs_report_acc_t *acc,
                           rs_period_t through, rs_schedule_row_t **rows, size_t *n);
int rs_report_acc_balances(const rs_engine_t *e, const rs_report_acc_t *acc,
                           rs_period_t through, rs_balance_row_t **rows, size_t *n);
int rs_report_acc_waterfall(const rs_engine_t *e, const rs_report_acc_t *acc,
                            rs_period_t through, rs_waterfall_row_t **rows, size_t *n);
int rs_report_acc_rollforward(const rs_engine_t *e, const rs_report_acc_t *acc,
                              rs_period_t through, rs_rollforward_row_t **rows, size_t *n);
int rs_report_acc_exceptions(const rs_engine_t *e, const rs_report_acc_t *acc,
                             rs_period_t through, rs_exception_row_t **rows, size_t *n);

/* Books whose contracts are not all in one engine at once (replay's packed
 * contracts). `each` calls fn(arg, e, contract_id) for every booked
 * contract, in contract_id order, with an engine `e` that holds it while
 * the call lasts; it stops at the first non-zero return and returns it.
 * fn reads the contract through rs_engine_contract_lines and
 * rs_engine_contract_line_scheduled. */
typedef int (*rs_report_contract_fn)(void *arg, const rs_engine_t *e, const char *contract_id);
typedef int (*rs_report_each_fn)(void *opaque, rs_report_contract_fn fn, void *arg);
/* The balances and the waterfall of such a book: the same rows as
 * rs_report_acc_balances / _waterfall of an engine holding it whole. The
 * balance rows' strings are copies in *strings (malloc'd: free() it after
 * the rows). The waterfall walks the book twice (its range, then the
 * projection). */
int rs_report_acc_balances_each(rs_report_each_fn each, void *opaque,
                                const rs_report_acc_t *acc, rs_period_t through,
                                rs_balance_row_t **rows, size_t *n, char **strings);
int rs_report_acc_waterfall_each(rs_report_each_fn each, void *opaque,
                                 const rs_report_acc_t *acc, rs_period_t through,
                                 rs_waterfall_row_t **rows, size_t *n);

/* Indexes of the journal's entries with period <= through, sorted by
 * (period, contract_id, seq). */
int rs_report_journal(const rs_journal_t *j, rs_period_t through, size_t **idx, size_t *n);

#endif
