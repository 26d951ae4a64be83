/*
 * rs_format_ledger.c — the ledger views in the three formats, through one
 * column-driven printer (fmt_rows): a view describes its columns (JSON key,
 * table heading, kind, whether a TOTAL adds it up) and how to read row i;
 * the printer does the rest, with the helpers of rs_format_internal.h.
 *
 * Invariants: as rs_format.c — exact totals per currency (overflow printed
 * as such), never a total across currencies, amounts with the row's
 * exponent, JSON keys in column order.
 */
#include "rs_format_ledger.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rs_format_internal.h"
#include "rs_money.h"

enum { C_STR, C_CUR, C_MONEY, C_INT, C_PERIOD, C_DATE };

typedef struct col {
    const char *key, *head;
    int kind;
    int total; /* C_MONEY: summed per currency in the table */
} col_t;

#define MAX_COLS 12

typedef struct cellv {
    const char *s;
    rs_money_t m;
    long i; /* C_INT, C_PERIOD, C_DATE (RS_DATE_NONE: empty) */
} cellv_t;

/* Row i's cells; returns the row's exponent. */
typedef int (*row_fn)(const void *rows, size_t i, cellv_t *cells);

typedef struct view {
    const char *title, *prefix; /* "Title" + prefix + the period or date text */
    const char *when;           /* e.g. "2026-06" or "2026-06-30" */
    const col_t *cols;
    int ncols;
    row_fn get;
    const char *empty, *footnote;
} view_t;

static const char *cell_text(const col_t *c, const cellv_t *v, int x, int grouped, char *buf)
{
    switch (c->kind) {
    case C_MONEY:
        return grouped ? rs_money_format_grouped(v->m, x, buf, MONEY_BUF)
                       : rs_money_format(v->m, x, buf, MONEY_BUF);
    case C_INT:
        snprintf(buf, MONEY_BUF, "%ld", v->i);
        return buf;
    case C_PERIOD:
        return period_str((rs_period_t)v->i, buf);
    case C_DATE:
        return v->i == RS_DATE_NONE ? "" : rs_date_format((rs_date_t)v->i, buf, MONEY_BUF);
    default:
        return v->s ? v->s : "";
    }
}

static int fmt_rows(FILE *f, rs_format_kind_t k, const view_t *v, const void *rows, size_t n)
{
    cellv_t cells[MAX_COLS];
    char buf[MAX_COLS][MONEY_BUF];
    const char *txt[MAX_COLS];
    int cur_col = -1;
    for (int c = 0; c < v->ncols; c++)
        if (v->cols[c].kind == C_CUR)
            cur_col = c;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            int x = v->get(rows, i, cells), e = 0;
            json_t *o = json_object();
            for (int c = 0; c < v->ncols; c++) {
                const col_t *col = &v->cols[c];
                json_t *val = col->kind == C_INT ? json_integer(cells[c].i)
                              : col->kind == C_MONEY
                                  ? jmoney(cells[c].m, x)
                                  : jstr(cell_text(col, &cells[c], x, 0, buf[c]));
                e |= json_object_set_new(o, col->key, val);
            }
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        for (int c = 0; c < v->ncols; c++)
            txt[c] = v->cols[c].key;
        csv_row(f, v->ncols, txt);
        for (size_t i = 0; i < n; i++) {
            int x = v->get(rows, i, cells);
            for (int c = 0; c < v->ncols; c++)
                txt[c] = cell_text(&v->cols[c], &cells[c], x, 0, buf[c]);
            csv_row(f, v->ncols, txt);
        }
        return finish(f, 0);
    }
    fprintf(f, "%s%s%s\n\n", v->title, v->when ? v->prefix : "", v->when ? v->when : "");
    if (n == 0) {
        fprintf(f, "%s\n", v->empty);
        return finish(f, 0);
    }
    for (int c = 0; c < v->ncols; c++)
        txt[c] = v->cols[c].head;
    tbl_t t;
    tbl_init(&t, v->ncols, txt);
    /* currencies, in first-seen order, with their exponents */
    const char **curs = malloc(n * sizeof(*curs));
    int *exps = malloc(n * sizeof(*exps));
    size_t ncur = 0;
    if (curs == NULL || exps == NULL)
        t.nomem = 1;
    for (size_t i = 0; i < n; i++) {
        int x = v->get(rows, i, cells);
        for (int c = 0; c < v->ncols; c++)
            txt[c] = cell_text(&v->cols[c], &cells[c], x, 1, buf[c]);
        tbl_add(&t, txt);
        if (cur_col >= 0 && curs != NULL && exps != NULL) {
            size_t q = 0;
            while (q < ncur && strcmp(curs[q], cells[cur_col].s) != 0)
                q++;
            if (q == ncur) {
                curs[ncur] = cells[cur_col].s;
                exps[ncur++] = x;
            }
        }
    }
    if (cur_col >= 0 && !t.nomem) {
        tbl_rule(&t);
        for (size_t q = 0; q < ncur; q++) {
            sum_t s[MAX_COLS];
            memset(s, 0, sizeof s);
            for (size_t i = 0; i < n; i++) {
                v->get(rows, i, cells);
                if (strcmp(cells[cur_col].s, curs[q]) != 0)
                    continue;
                for (int c = 0; c < v->ncols; c++)
                    if (v->cols[c].total)
                        sum_add(&s[c], cells[c].m);
            }
            for (int c = 0; c < v->ncols; c++)
                txt[c] = v->cols[c].total ? sum_str(&s[c], exps[q], buf[c]) : NULL;
            txt[0] = "TOTAL";
            txt[cur_col] = curs[q];
            tbl_add(&t, txt);
        }
    }
    free(curs);
    free(exps);
    int rc = tbl_print(&t, f);
    tbl_free(&t);
    if (rc == 0 && v->footnote)
        fprintf(f, "\n%s\n", v->footnote);
    return finish(f, rc);
}

/* ---- balances by customer / contract ---- */

static const col_t by_cols[] = {
    {"customer_id", "Customer", C_STR, 0}, {"contract_id", "Contract", C_STR, 0},
    {"currency", "Cur", C_CUR, 0},         {"lines", ">Lines", C_INT, 0},
    {"billed", ">Billed", C_MONEY, 1},     {"recognized", ">Recognized", C_MONEY, 1},
    {"deferred", ">Deferred", C_MONEY, 1}, {"unbilled", ">Unbilled", C_MONEY, 1},
    {"received", ">Received", C_MONEY, 1}};

static int by_get(const void *rows, size_t i, cellv_t *c)
{
    const rs_group_row_t *r = (const rs_group_row_t *)rows + i;
    c[0].s = r->customer_id;
    c[1].s = r->contract_id;
    c[2].s = r->currency;
    c[3].i = (long)r->lines;
    c[4].m = r->billed;
    c[5].m = r->recognized;
    c[6].m = r->deferred;
    c[7].m = r->unbilled;
    c[8].m = r->received;
    return r->exponent;
}

/* by customer: the same columns without contract_id */
static int by_cust_get(const void *rows, size_t i, cellv_t *c)
{
    cellv_t all[9];
    int x = by_get(rows, i, all);
    c[0] = all[0];
    memcpy(&c[1], &all[2], 7 * sizeof(*c));
    return x;
}

int rs_format_balances_by(FILE *f, rs_format_kind_t k, const rs_group_row_t *rows, size_t n,
                          rs_group_by_t by, rs_period_t through)
{
    char pb[PERIOD_BUF];
    col_t cust[8];
    cust[0] = by_cols[0];
    memcpy(&cust[1], &by_cols[2], 7 * sizeof(*cust));
    view_t v = {by == RS_GROUP_CUSTOMER ? "Balances by customer" : "Balances by contract",
                " at the end of ",
                period_str(through, pb),
                by == RS_GROUP_CUSTOMER ? cust : by_cols,
                by == RS_GROUP_CUSTOMER ? 8 : 9,
                by == RS_GROUP_CUSTOMER ? by_cust_get : by_get,
                "No contract lines.",
                "Sums of the lines' balances (--report balances); they tie to the journal."};
    return fmt_rows(f, k, &v, rows, n);
}

/* ---- invoices and AR aging ---- */

static const col_t inv_cols[] = {
    {"contract_id", "Contract", C_STR, 0}, {"invoice_id", "Invoice", C_STR, 0},
    {"customer_id", "Customer", C_STR, 0}, {"issued_on", "Issued", C_DATE, 0},
    {"currency", "Cur", C_CUR, 0},         {"invoiced", ">Invoiced", C_MONEY, 1},
    {"received", ">Received", C_MONEY, 1}, {"adjusted", ">Adjusted", C_MONEY, 1},
    {"open", ">Open", C_MONEY, 1}};

static const col_t aging_cols[] = {
    {"contract_id", "Contract", C_STR, 0}, {"invoice_id", "Invoice", C_STR, 0},
    {"customer_id", "Customer", C_STR, 0}, {"issued_on", "Issued", C_DATE, 0},
    {"age_days", ">Days", C_INT, 0},       {"currency", "Cur", C_CUR, 0},
    {"days_0_30", ">0-30", C_MONEY, 1},    {"days_31_60", ">31-60", C_MONEY, 1},
    {"days_61_90", ">61-90", C_MONEY, 1},  {"days_over_90", ">90+", C_MONEY, 1},
    {"open", ">Open", C_MONEY, 1}};

static int inv_get(const void *rows, size_t i, cellv_t *c)
{
    const rs_invoice_row_t *r = (const rs_invoice_row_t *)rows + i;
    c[0].s = r->contract_id;
    c[1].s = r->invoice_id[0] ? r->invoice_id : "(unallocated)";
    c[2].s = r->customer_id;
    c[3].i = r->issued_on;
    c[4].s = r->currency;
    c[5].m = r->invoiced;
    c[6].m = r->received;
    c[7].m = r->adjusted;
    c[8].m = r->open;
    return r->exponent;
}

static int aging_get(const void *rows, size_t i, cellv_t *c)
{
    const rs_invoice_row_t *r = (const rs_invoice_row_t *)rows + i;
    c[0].s = r->contract_id;
    c[1].s = r->invoice_id[0] ? r->invoice_id : "(unallocated)";
    c[2].s = r->customer_id;
    c[3].i = r->issued_on;
    c[4].i = r->age_days;
    c[5].s = r->currency;
    for (int b = 0; b < 4; b++)
        c[6 + b].m = r->bucket[b];
    c[10].m = r->open;
    return r->exponent;
}

int rs_format_invoice_balances(FILE *f, rs_format_kind_t k, const rs_invoice_row_t *rows,
                               size_t n, rs_date_t as_of, int aging)
{
    char db[PERIOD_BUF];
    const rs_invoice_row_t *use = rows;
    rs_invoice_row_t *open = NULL;
    size_t m = n;
    if (aging) { /* only what is still open */
        open = malloc((n + 1) * sizeof(*open));
        if (open == NULL) {
            errno = ENOMEM;
            return -1;
        }
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (rows[i].open != 0)
                open[m++] = rows[i];
        use = open;
    }
    view_t v = {aging ? "Receivables aging" : "Balances by invoice",
                " as of ",
                rs_date_format(as_of, db, sizeof db),
                aging ? aging_cols : inv_cols,
                aging ? 11 : 9,
                aging ? aging_get : inv_get,
                aging ? "Nothing is open." : "No invoices.",
                aging ? "Days: from the invoice's posting date (the stream carries no due "
                        "dates).\nOpen sums to the accounts_receivable balance of the journal."
                      : "Open = Invoiced - Received + Adjusted (credit notes, voids, "
                        "write-offs);\nit sums to the accounts_receivable balance of the "
                        "journal."};
    int rc = fmt_rows(f, k, &v, use, m);
    free(open);
    return rc;
}

/* ---- trial balance ---- */

static const rs_policy_t *g_policy; /* row_fn has no context: set per call */

static const col_t tb_cols[] = {
    {"period", "Period", C_PERIOD, 0},  {"currency", "Cur", C_CUR, 0},
    {"account", "Account", C_STR, 0},   {"role", "Role", C_STR, 0},
    {"debit", ">Debit", C_MONEY, 1},    {"credit", ">Credit", C_MONEY, 1},
    {"balance", ">Balance", C_MONEY, 0}};

static int tb_get(const void *rows, size_t i, cellv_t *c)
{
    const rs_trial_row_t *r = (const rs_trial_row_t *)rows + i;
    c[0].i = r->period;
    c[1].s = r->currency;
    c[2].s = rs_policy_account_code(g_policy, r->account, "");
    c[3].s = rs_account_name(r->account);
    c[4].m = r->debit;
    c[5].m = r->credit;
    c[6].m = r->balance;
    return r->exponent;
}

int rs_format_trial_balance(FILE *f, rs_format_kind_t k, const rs_trial_row_t *rows, size_t n,
                            const rs_policy_t *policy, rs_period_t through)
{
    char pb[PERIOD_BUF];
    g_policy = policy;
    view_t v = {"Trial balance",
                " per period through ",
                period_str(through, pb),
                tb_cols,
                7,
                tb_get,
                "No entries.",
                "Debit, Credit: the period's postings. Balance: debits - credits through the\n"
                "period's end (negative: a credit balance). Each period's debits equal its\n"
                "credits, and its balances sum to zero (TOTAL: the postings of all periods)."};
    return fmt_rows(f, k, &v, rows, n);
}

/* ---- RPO ---- */

static const col_t rpo_cols[] = {{"contract_id", "Contract", C_STR, 0},
                                 {"line_id", "Line", C_STR, 0},
                                 {"customer_id", "Customer", C_STR, 0},
                                 {"currency", "Cur", C_CUR, 0},
                                 {"current", ">Current (12 months)", C_MONEY, 1},
                                 {"non_current", ">Non-current", C_MONEY, 1},
                                 {"total", ">Total", C_MONEY, 1}};

static int rpo_get(const void *rows, size_t i, cellv_t *c)
{
    const rs_rpo_row_t *r = (const rs_rpo_row_t *)rows + i;
    c[0].s = r->contract_id;
    c[1].s = r->line_id;
    c[2].s = r->customer_id;
    c[3].s = r->currency;
    c[4].m = r->current;
    c[5].m = r->non_current;
    c[6].m = r->total;
    return r->exponent;
}

int rs_format_rpo(FILE *f, rs_format_kind_t k, const rs_rpo_row_t *rows, size_t n,
                  rs_period_t through)
{
    char pb[PERIOD_BUF];
    view_t v = {"Remaining performance obligations",
                " after ",
                period_str(through, pb),
                rpo_cols,
                7,
                rpo_get,
                "Nothing left to recognize.",
                "What current terms will still recognize after the period, billed or not:\n"
                "current in the next 12 months, non-current after. Total per currency = the\n"
                "waterfall's Scheduled total."};
    return fmt_rows(f, k, &v, rows, n);
}
