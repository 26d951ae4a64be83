/*
 * rs_format — print report rows (rs_report.h) as a table, CSV or JSON.
 *
 * Invariants:
 *   - Pure formatting: rows in, text out on a FILE *. No engine calls, no
 *     computation of figures beyond the sums of a table's TOTAL rows, which
 *     are exact int64 sums of minor units in one currency. No floating point.
 *   - Amounts are printed with the row's own exponent: plain decimals
 *     ("-1234.50", rs_money_format) in CSV and JSON, grouped ("-1,234.50",
 *     rs_money_format_grouped) in tables.
 *   - JSON: one array per report, one object per row on its own line. Keys
 *     are the names of events.md in its order, then the fields the project
 *     adds (currency; customer_id for balances; projected for waterfall).
 *     Amounts are JSON strings, never numbers. An empty report is "[]".
 *   - CSV: RFC 4180 — a header row with the JSON key names, CRLF line ends,
 *     a field quoted when it holds a comma, a quote, CR or LF (quotes doubled).
 *     The journal is one row per posting line, the entry's fields repeated.
 *   - Journal accounts: in every format a posting's `account` is the policy's
 *     code for its role and the entry's product (rs_policy_account_code; with
 *     no policy, or no code for the role, the role name). CSV and JSON also
 *     carry `role`, the role name, right after `account`; the table shows a
 *     Role column only when some code differs from its role name.
 *   - Table: for people. A title line, aligned columns (amounts right-aligned),
 *     totals per currency where a sum means something; control characters in
 *     ids are shown as '?'. Never mixes currencies in one total.
 *   - Rows are printed in the order given (reports sort them).
 *
 * Ownership: the functions borrow rows and entries for the duration of the
 * call and keep nothing. They return 0, or -1 when writing failed or memory
 * ran out (then errno = ENOMEM; after a write error errno is unreliable).
 */
#ifndef RS_FORMAT_H
#define RS_FORMAT_H

#include <stddef.h>
#include <stdio.h>

#include "rs_engine.h"
#include "rs_report.h"

typedef enum rs_format_kind {
    RS_FORMAT_TABLE = 0,
    RS_FORMAT_CSV,
    RS_FORMAT_JSON,
} rs_format_kind_t;

/* "table", "csv", "json" -> kind. Returns 0, or -1 for an unknown name. */
int rs_format_parse(const char *name, rs_format_kind_t *out);
const char *rs_format_name(rs_format_kind_t k);

/* A refused input event, for the `rejected` report. */
typedef struct rs_format_rejection {
    long line;            /* 1-based line of the input; 0 when unknown */
    const char *event_id; /* "" when the event had none */
    const char *type;     /* event type as given; "" when unknown */
    const char *reason;   /* the error message */
} rs_format_rejection_t;

/* `through` is the report's "as of" period, used in table titles only;
 * RS_PERIOD_NONE leaves it out. */
int rs_format_schedule(FILE *f, rs_format_kind_t k, const rs_schedule_row_t *rows, size_t n,
                       rs_period_t through);
int rs_format_balances(FILE *f, rs_format_kind_t k, const rs_balance_row_t *rows, size_t n,
                       rs_period_t through);
int rs_format_waterfall(FILE *f, rs_format_kind_t k, const rs_waterfall_row_t *rows, size_t n,
                        rs_period_t through);
int rs_format_rollforward(FILE *f, rs_format_kind_t k, const rs_rollforward_row_t *rows,
                          size_t n, rs_period_t through);
/* The entries entries[idx[0]], ..., entries[idx[n-1]] (idx NULL: entries[0..n-1]).
 * JSON rows are rs_codec_entry_json() objects whose `lines` carry the account
 * code and the role (see above). `policy` gives the account codes; NULL means
 * the defaults (codes are the role names). */
int rs_format_journal(FILE *f, rs_format_kind_t k, const rs_entry_t *entries, const size_t *idx,
                      size_t n, const rs_policy_t *policy, rs_period_t through);
/* The entry of rank i (0 <= i < n) in the order to print, or NULL with errno
 * set when it cannot be had. The pointer stays valid until the next call. */
typedef const rs_entry_t *(*rs_format_entry_fn)(void *opaque, size_t i);
/* rs_format_journal with the entries from `get` (each asked for in rank
 * order; the table asks more than once). Output is the same bytes. */
int rs_format_journal_each(FILE *f, rs_format_kind_t k, rs_format_entry_fn get, void *opaque,
                           size_t n, const rs_policy_t *policy, rs_period_t through);
/* Exceptions (rs_report_exceptions rows). JSON/CSV keys: contract_id,
 * line_id, customer_id, kind, amount, currency, detail. The table adds a
 * TOTAL per kind and currency (rows without a currency, like `pending`, have
 * no amount) and explains the kinds it shows. */
int rs_format_exceptions(FILE *f, rs_format_kind_t k, const rs_exception_row_t *rows, size_t n,
                         rs_period_t through);
int rs_format_rejected(FILE *f, rs_format_kind_t k, const rs_format_rejection_t *rows,
                       size_t n);
/* Receivables per invoice (gross: amount plus tax), as of every event applied. */
int rs_format_invoices(FILE *f, rs_format_kind_t k, const rs_invoice_view_t *rows, size_t n);
int rs_format_pending(FILE *f, rs_format_kind_t k, const rs_pending_view_t *rows, size_t n);

#endif
