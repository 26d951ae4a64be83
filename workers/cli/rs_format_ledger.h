/*
 * rs_format_ledger — print the ledger views (rs_report_ledger.h) as a table,
 * CSV or JSON, with the conventions of rs_format.h: amounts as decimal
 * strings with the row's exponent (grouped in tables), CSV RFC 4180 with a
 * header of the JSON keys, one JSON object per row, tables with a TOTAL row
 * per currency for the amount columns that add up.
 *
 * Ownership: rows are borrowed for the call. Each returns 0, or -1 when
 * writing failed or memory ran out.
 */
#ifndef RS_FORMAT_LEDGER_H
#define RS_FORMAT_LEDGER_H

#include <stdio.h>

#include "rs_format.h"
#include "rs_report_ledger.h"

/* balances by customer (key customer_id) or by contract (customer_id,
 * contract_id) */
int rs_format_balances_by(FILE *f, rs_format_kind_t k, const rs_group_row_t *rows, size_t n,
                          rs_group_by_t by, rs_period_t through);
/* aging = 0: balances by invoice (invoiced, received, adjusted, open);
 * aging = 1: AR aging (open by bucket), invoices with nothing open left out */
int rs_format_invoice_balances(FILE *f, rs_format_kind_t k, const rs_invoice_row_t *rows,
                               size_t n, rs_date_t as_of, int aging);
/* account: the policy's code for the role (policy may be NULL) */
int rs_format_trial_balance(FILE *f, rs_format_kind_t k, const rs_trial_row_t *rows, size_t n,
                            const rs_policy_t *policy, rs_period_t through);
int rs_format_rpo(FILE *f, rs_format_kind_t k, const rs_rpo_row_t *rows, size_t n,
                  rs_period_t through);

#endif
