/*
 * rs_report_ledger — the ledger views finance asks for, computed from a
 * journal (and, for RPO, the engine's terms): balances by customer and by
 * contract, balances by invoice with AR aging, a trial balance per period,
 * and remaining performance obligations. Pure: no I/O.
 *
 * Invariants (each is what a test sums against the journal):
 *   - Balances by customer / contract are sums of the per-line balance rows
 *     (rs_report_balances), so they tie to the journal as those do.
 *   - Invoice rows: every entry posted on or before `as_of` that moves
 *     accounts_receivable is attributed to one invoice: an invoice entry to
 *     its document; any other entry to the invoice whose invoice entry lists
 *     one of its source event ids; failing that to a row with an empty
 *     invoice_id for its contract (`unallocated`). So Σ open over the rows =
 *     the accounts_receivable balance of the journal as of `as_of`. Aging
 *     buckets (0-30, 31-60, 61-90, 90+ days from the invoice's posting date
 *     to `as_of`; due dates are not on the stream) hold the open amount.
 *   - Trial balance: per (period, currency, account) the period's debits and
 *     credits and the closing balance (debits - credits since the first
 *     period); per period and currency Σ debit = Σ credit and Σ closing = 0.
 *   - RPO per line: total = what its current terms still recognize after
 *     `through` (R at its last day minus what the journal recognized through
 *     `through`), current = the part in the 12 months after `through`,
 *     non_current = the rest. Σ total per currency = the waterfall's
 *     scheduled (projected) total.
 *   - Rows are sorted by their key fields; amounts are minor units with the
 *     row's exponent; strings point into the journal or engine (valid as
 *     long as those are unchanged). Each function returns a malloc'd array
 *     the caller free()s; 0, or -1 on ENOMEM.
 */
#ifndef RS_REPORT_LEDGER_H
#define RS_REPORT_LEDGER_H

#include "rs_report.h"

typedef enum rs_group_by { RS_GROUP_CUSTOMER = 0, RS_GROUP_CONTRACT } rs_group_by_t;

typedef struct rs_group_row {
    const char *customer_id, *contract_id; /* contract_id "" when by customer */
    const char *currency;
    int exponent;
    size_t lines; /* line rows summed */
    rs_money_t billed, recognized, deferred, unbilled, received;
} rs_group_row_t;
int rs_report_balances_by(const rs_balance_row_t *lines, size_t nlines, rs_group_by_t by,
                          rs_group_row_t **rows, size_t *n);

typedef struct rs_invoice_row {
    const char *invoice_id; /* "" for what could not be attributed */
    const char *contract_id, *customer_id, *currency;
    int exponent;
    rs_date_t issued_on;  /* RS_DATE_NONE for the unallocated row */
    int age_days;         /* as_of - issued_on; 0 for the unallocated row */
    rs_money_t invoiced;  /* receivable debited by the invoice (amount + tax) */
    rs_money_t received;  /* receivable credited by payments, net of reversals */
    rs_money_t adjusted;  /* every other receivable movement (credit notes, voids,
                             write-offs, recoveries) */
    rs_money_t open;      /* invoiced - received + adjusted (signed) */
    rs_money_t bucket[4]; /* open by age: 0-30, 31-60, 61-90, 90+ days */
} rs_invoice_row_t;
/* key: contract_id, invoice_id */
int rs_report_invoices(const rs_journal_t *j, rs_date_t as_of, rs_invoice_row_t **rows,
                       size_t *n);

typedef struct rs_trial_row {
    rs_period_t period;
    char currency[4];
    int exponent;
    rs_account_t account;
    rs_money_t debit, credit; /* movements in the period */
    rs_money_t balance;       /* debits - credits through the period's end */
} rs_trial_row_t;
/* key: period, currency, account; every account with a balance or a
 * movement, in every period from the first through `through`. */
int rs_report_trial_balance(const rs_journal_t *j, rs_period_t through, rs_trial_row_t **rows,
                            size_t *n);

typedef struct rs_rpo_row {
    const char *contract_id, *line_id, *customer_id, *currency;
    int exponent;
    rs_money_t current, non_current, total;
} rs_rpo_row_t;
/* key: contract_id, line_id; lines with nothing left are left out. */
int rs_report_rpo(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                  rs_rpo_row_t **rows, size_t *n);

#endif
