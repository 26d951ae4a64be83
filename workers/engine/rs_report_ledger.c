/*
 * rs_report_ledger.c — balances by customer / contract, invoices and AR
 * aging, trial balance, RPO (see rs_report_ledger.h for the invariants).
 *
 * Everything is int64 minor units per currency; nothing is summed across
 * currencies. Attribution of receivable movements to invoices goes through
 * the source event ids the engine lists on each entry (the invoice's own
 * event id is on the invoice entry and on the entries that settle it).
 */
#include "rs_report_ledger.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- balances by customer / contract ---- */

static rs_group_by_t g_by; /* qsort context (reports run on one thread) */

static int grp_key_cmp(const rs_balance_row_t *x, const rs_balance_row_t *y)
{
    int r = strcmp(x->customer_id, y->customer_id);
    if (r == 0 && g_by == RS_GROUP_CONTRACT)
        r = strcmp(x->contract_id, y->contract_id);
    if (r == 0)
        r = strcmp(x->currency, y->currency);
    return r;
}

static int grp_idx_cmp(const void *a, const void *b)
{
    const rs_balance_row_t *const *x = a, *const *y = b;
    return grp_key_cmp(*x, *y);
}

int rs_report_balances_by(const rs_balance_row_t *lines, size_t nlines, rs_group_by_t by,
                          rs_group_row_t **rows, size_t *n)
{
    const rs_balance_row_t **idx = malloc((nlines + 1) * sizeof(*idx));
    rs_group_row_t *out = malloc((nlines + 1) * sizeof(*out));
    size_t k = 0;
    if (idx == NULL || out == NULL) {
        free(idx);
        free(out);
        return -1;
    }
    for (size_t i = 0; i < nlines; i++)
        idx[i] = &lines[i];
    g_by = by;
    qsort(idx, nlines, sizeof(*idx), grp_idx_cmp);
    for (size_t i = 0; i < nlines; i++) {
        const rs_balance_row_t *l = idx[i];
        if (k == 0 || grp_key_cmp(idx[i - 1], l) != 0) {
            rs_group_row_t *g = &out[k++];
            memset(g, 0, sizeof(*g));
            g->customer_id = l->customer_id;
            g->contract_id = by == RS_GROUP_CONTRACT ? l->contract_id : "";
            g->currency = l->currency;
            g->exponent = l->exponent;
        }
        rs_group_row_t *g = &out[k - 1];
        g->lines++;
        g->billed += l->billed;
        g->recognized += l->recognized;
        g->deferred += l->deferred;
        g->unbilled += l->unbilled;
        g->received += l->received;
    }
    free(idx);
    *rows = out;
    *n = k;
    return 0;
}

/* ---- invoices and AR aging ---- */

static rs_money_t ar_net(const rs_entry_t *e)
{
    rs_money_t v = 0;
    for (int i = 0; i < e->n_postings; i++)
        if (e->postings[i].account == RS_ACCT_ACCOUNTS_RECEIVABLE)
            v += e->postings[i].debit - e->postings[i].credit;
    return v;
}

typedef struct src_ref {
    const char *contract_id, *event_id;
    size_t inv; /* index into the invoice rows */
} src_ref_t;

static int src_cmp(const void *a, const void *b)
{
    const src_ref_t *x = a, *y = b;
    int r = strcmp(x->contract_id, y->contract_id);
    return r ? r : strcmp(x->event_id, y->event_id);
}

static int inv_cmp(const void *a, const void *b)
{
    const rs_invoice_row_t *x = a, *y = b;
    int r = strcmp(x->contract_id, y->contract_id);
    return r ? r : strcmp(x->invoice_id, y->invoice_id);
}

/* The row of (contract, invoice) among out[0..k), or k. */
static size_t inv_find(const rs_invoice_row_t *out, size_t k, const char *contract,
                       const char *invoice)
{
    for (size_t i = k; i > 0; i--)
        if (strcmp(out[i - 1].invoice_id, invoice) == 0 &&
            strcmp(out[i - 1].contract_id, contract) == 0)
            return i - 1;
    return k;
}

static void inv_new(rs_invoice_row_t *r, const rs_entry_t *e, const char *invoice)
{
    memset(r, 0, sizeof(*r));
    r->invoice_id = invoice;
    r->contract_id = e->contract_id;
    r->customer_id = e->customer_id;
    r->currency = e->currency;
    r->exponent = e->exponent;
    r->issued_on = RS_DATE_NONE;
}

int rs_report_invoices(const rs_journal_t *j, rs_date_t as_of, rs_invoice_row_t **rows,
                       size_t *n)
{
    /* at most one row per entry (invoices + one unallocated per contract) */
    rs_invoice_row_t *out = calloc(j->n + 1, sizeof(*out));
    src_ref_t *refs = malloc((j->n * RS_ENTRY_MAX_SOURCES + 1) * sizeof(*refs));
    size_t k = 0, nrefs = 0;
    if (out == NULL || refs == NULL) {
        free(out);
        free(refs);
        return -1;
    }
    /* pass 1: invoices, and the source ids that name them */
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        if (e->kind != RS_ENTRY_INVOICE || e->posted_on > as_of)
            continue;
        size_t r = inv_find(out, k, e->contract_id, e->document_id);
        if (r == k)
            inv_new(&out[k++], e, e->document_id);
        if (out[r].issued_on == RS_DATE_NONE || e->posted_on < out[r].issued_on)
            out[r].issued_on = e->posted_on;
        for (int s = 0; s < e->n_sources; s++)
            refs[nrefs++] = (src_ref_t){e->contract_id, e->sources[s], r};
    }
    qsort(refs, nrefs, sizeof(*refs), src_cmp);
    /* pass 2: every receivable movement */
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        rs_money_t v = ar_net(e);
        if (e->posted_on > as_of || v == 0)
            continue;
        size_t r = k;
        if (e->kind == RS_ENTRY_INVOICE) {
            r = inv_find(out, k, e->contract_id, e->document_id);
            if (r == k) /* not reached: pass 1 made every invoice's row */
                inv_new(&out[k++], e, e->document_id);
        } else {
            for (int s = 0; s < e->n_sources && r == k; s++) {
                src_ref_t key = {e->contract_id, e->sources[s], 0};
                src_ref_t *hit = bsearch(&key, refs, nrefs, sizeof(*refs), src_cmp);
                if (hit != NULL)
                    r = hit->inv;
            }
            if (r == k) {
                r = inv_find(out, k, e->contract_id, "");
                if (r == k)
                    inv_new(&out[k++], e, "");
            }
        }
        rs_invoice_row_t *x = &out[r];
        if (e->kind == RS_ENTRY_INVOICE)
            x->invoiced += v;
        else if (e->kind == RS_ENTRY_PAYMENT || e->kind == RS_ENTRY_REFUND)
            x->received -= v;
        else
            x->adjusted += v;
        x->open += v;
    }
    for (size_t i = 0; i < k; i++) {
        rs_invoice_row_t *x = &out[i];
        int age = x->issued_on == RS_DATE_NONE ? 0 : (int)(as_of - x->issued_on);
        x->age_days = age;
        x->bucket[age <= 30 ? 0 : age <= 60 ? 1 : age <= 90 ? 2 : 3] = x->open;
    }
    free(refs);
    if (k > 1)
        qsort(out, k, sizeof(*out), inv_cmp);
    *rows = out;
    *n = k;
    return 0;
}

/* ---- trial balance ---- */

int rs_report_trial_balance(const rs_journal_t *j, rs_period_t through, rs_trial_row_t **rows,
                            size_t *n)
{
    char(*curs)[4] = NULL;
    int *exps = NULL;
    size_t nc = 0;
    rs_period_t lo = RS_PERIOD_NONE;
    rs_money_t *dr = NULL, *cr = NULL;
    rs_trial_row_t *out = NULL;
    size_t k = 0;
    int rc = -1;

    curs = malloc((j->n + 1) * sizeof(*curs));
    exps = malloc((j->n + 1) * sizeof(*exps));
    if (curs == NULL || exps == NULL)
        goto out;
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        if (e->period > through)
            continue;
        if (lo == RS_PERIOD_NONE || e->period < lo)
            lo = e->period;
        size_t c = 0;
        while (c < nc && strcmp(curs[c], e->currency) != 0)
            c++;
        if (c == nc) {
            memcpy(curs[nc], e->currency, 4);
            exps[nc++] = e->exponent;
        }
    }
    /* currencies in code order */
    for (size_t a = 1; a < nc; a++)
        for (size_t b = a; b > 0 && strcmp(curs[b - 1], curs[b]) > 0; b--) {
            char t[4];
            int x = exps[b];
            memcpy(t, curs[b], 4);
            memcpy(curs[b], curs[b - 1], 4);
            memcpy(curs[b - 1], t, 4);
            exps[b] = exps[b - 1];
            exps[b - 1] = x;
        }
    size_t np = lo == RS_PERIOD_NONE ? 0 : (size_t)(through - lo + 1);
    size_t cells = nc * np * RS_ACCT__COUNT;
    dr = calloc(cells + 1, sizeof(*dr));
    cr = calloc(cells + 1, sizeof(*cr));
    out = malloc((cells + 1) * sizeof(*out));
    if (dr == NULL || cr == NULL || out == NULL)
        goto out;
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        if (e->period > through)
            continue;
        size_t c = 0;
        while (strcmp(curs[c], e->currency) != 0)
            c++;
        for (int p = 0; p < e->n_postings; p++) {
            size_t at = (c * np + (size_t)(e->period - lo)) * RS_ACCT__COUNT +
                        (size_t)e->postings[p].account;
            dr[at] += e->postings[p].debit;
            cr[at] += e->postings[p].credit;
        }
    }
    for (size_t p = 0; p < np; p++)
        for (size_t c = 0; c < nc; c++)
            for (int a = 0; a < RS_ACCT__COUNT; a++) {
                rs_money_t bal = 0;
                for (size_t q = 0; q <= p; q++) {
                    size_t at = (c * np + q) * RS_ACCT__COUNT + (size_t)a;
                    bal += dr[at] - cr[at];
                }
                size_t at = (c * np + p) * RS_ACCT__COUNT + (size_t)a;
                if (bal == 0 && dr[at] == 0 && cr[at] == 0)
                    continue;
                rs_trial_row_t *t = &out[k++];
                t->period = lo + (rs_period_t)p;
                memcpy(t->currency, curs[c], 4);
                t->exponent = exps[c];
                t->account = (rs_account_t)a;
                t->debit = dr[at];
                t->credit = cr[at];
                t->balance = bal;
            }
    *rows = out;
    *n = k;
    out = NULL;
    rc = 0;
out:
    free(curs);
    free(exps);
    free(dr);
    free(cr);
    free(out);
    return rc;
}

/* ---- remaining performance obligations ---- */

int rs_report_rpo(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                  rs_rpo_row_t **rows, size_t *n)
{
    rs_balance_row_t *b = NULL;
    size_t nb = 0, k = 0;
    if (rs_report_balances(e, j, through, &b, &nb))
        return -1;
    rs_rpo_row_t *out = malloc((nb + 1) * sizeof(*out));
    if (out == NULL) {
        free(b);
        return -1;
    }
    for (size_t i = 0; i < nb; i++) {
        rs_line_view_t v;
        rs_engine_line_get(e, i, &v);
        rs_period_t last = rs_period_of(v.end);
        if (last <= through)
            last = through + 1;
        rs_period_t cur = through + 12 < last ? through + 12 : last;
        rs_money_t rec = b[i].recognized;
        rs_money_t total = rs_engine_line_scheduled(e, i, rs_period_last_day(last)) - rec;
        rs_money_t current = rs_engine_line_scheduled(e, i, rs_period_last_day(cur)) - rec;
        if (total == 0 && current == 0)
            continue;
        out[k++] =
            (rs_rpo_row_t){b[i].contract_id, b[i].line_id, b[i].customer_id, b[i].currency,
                           b[i].exponent,    current,      total - current,  total};
    }
    free(b);
    *rows = out;
    *n = k;
    return 0;
}
