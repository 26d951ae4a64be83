/*
 * rs_report.c — report rows from a journal and the engine's terms.
 *
 * Invariants (see rs_report.h for the contract):
 *   - Only entries with period <= through are read; everything is summed in
 *     int64 minor units per currency, never across currencies.
 *   - Balances and rollforward come from the journal alone, so they equal
 *     what a ledger that imported the same entries would show.
 *   - The projected part of the waterfall (periods after `through`) comes
 *     from each line's R(d): it starts from what was recognized by `through`
 *     and ends at R at the line's last day, so actual + projected equals the
 *     line's scheduled total.
 */
#include "rs_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_journal_init(rs_journal_t *j)
{
    memset(j, 0, sizeof(*j));
}

void rs_journal_free(rs_journal_t *j)
{
    if (j == NULL)
        return;
    free(j->entries);
    memset(j, 0, sizeof(*j));
}

int rs_journal_append(rs_journal_t *j, const rs_entry_t *e)
{
    if (j->n == j->cap) {
        size_t ncap = j->cap ? j->cap * 2 : 256;
        rs_entry_t *ne = realloc(j->entries, ncap * sizeof(*ne));
        if (ne == NULL)
            return -1;
        j->entries = ne;
        j->cap = ncap;
    }
    j->entries[j->n++] = *e;
    return 0;
}

void rs_journal_sink(void *opaque, const rs_entry_t *e)
{
    /* A sink cannot fail; on ENOMEM the entry is lost from the report, which
     * rs_journal_t users detect by comparing n with the engine's counter. */
    (void)rs_journal_append(opaque, e);
}

/* Net movement of an account in an entry: debit - credit. */
static rs_money_t net_debit(const rs_entry_t *e, rs_account_t a)
{
    rs_money_t v = 0;
    for (int i = 0; i < e->n_postings; i++)
        if (e->postings[i].account == a)
            v += e->postings[i].debit - e->postings[i].credit;
    return v;
}

/* ---- entries grouped by (contract, line) ---- */

/* qsort has no context argument in C11: the journal being sorted. Reports
 * are computed on one thread at a time. */
static const rs_journal_t *sort_j;

static int cmp_entry_line(const void *a, const void *b)
{
    const rs_entry_t *x = &sort_j->entries[*(const size_t *)a];
    const rs_entry_t *y = &sort_j->entries[*(const size_t *)b];
    int r = strcmp(x->contract_id, y->contract_id);
    if (r == 0)
        r = strcmp(x->line_id, y->line_id);
    if (r == 0)
        r = (x->period > y->period) - (x->period < y->period);
    if (r == 0)
        r = (x->seq > y->seq) - (x->seq < y->seq);
    return r;
}

/* Indexes of entries with period <= through, sorted by (contract, line, period). */
static size_t *by_line(const rs_journal_t *j, rs_period_t through, size_t *n)
{
    size_t *idx = malloc((j->n + 1) * sizeof(*idx));
    if (idx == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++)
        if (j->entries[i].period <= through)
            idx[k++] = i;
    sort_j = j;
    qsort(idx, k, sizeof(*idx), cmp_entry_line);
    *n = k;
    return idx;
}

static int line_cmp(const rs_entry_t *e, const rs_line_view_t *v)
{
    int r = strcmp(e->contract_id, v->contract_id);
    return r ? r : strcmp(e->line_id, v->line_id);
}

int rs_report_schedule(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                       rs_schedule_row_t **rows, size_t *n)
{
    size_t ni, cap = 64, k = 0, p = 0;
    size_t *idx = by_line(j, through, &ni);
    rs_schedule_row_t *out = malloc(cap * sizeof(*out));
    if (idx == NULL || out == NULL)
        goto fail;
    size_t nl = rs_engine_line_count(eng);
    for (size_t li = 0; li < nl; li++) {
        rs_line_view_t v;
        rs_engine_line_get(eng, li, &v);
        while (p < ni && line_cmp(&j->entries[idx[p]], &v) < 0)
            p++;
        size_t q = p;
        while (q < ni && line_cmp(&j->entries[idx[q]], &v) == 0)
            q++;
        rs_period_t first = rs_period_of(v.start);
        if (p < q && j->entries[idx[p]].period < first)
            first = j->entries[idx[p]].period;
        size_t r = p;
        for (rs_period_t per = first; per <= through; per++) {
            rs_money_t rec = 0;
            while (r < q && j->entries[idx[r]].period == per)
                rec += j->entries[idx[r++]].recognized;
            if (k == cap) {
                cap *= 2;
                rs_schedule_row_t *no = realloc(out, cap * sizeof(*out));
                if (no == NULL)
                    goto fail;
                out = no;
            }
            out[k++] =
                (rs_schedule_row_t){v.contract_id, v.line_id, v.currency, v.exponent, per, rec};
        }
        p = q;
    }
    free(idx);
    *rows = out;
    *n = k;
    return 0;
fail:
    free(idx);
    free(out);
    return -1;
}

int rs_report_balances(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                       rs_balance_row_t **rows, size_t *n)
{
    size_t ni, p = 0;
    size_t *idx = by_line(j, through, &ni);
    size_t nl = rs_engine_line_count(eng);
    rs_balance_row_t *out = calloc(nl + 1, sizeof(*out));
    if (idx == NULL || out == NULL) {
        free(idx);
        free(out);
        return -1;
    }
    for (size_t li = 0; li < nl; li++) {
        rs_line_view_t v;
        rs_engine_line_get(eng, li, &v);
        rs_balance_row_t *b = &out[li];
        b->contract_id = v.contract_id;
        b->line_id = v.line_id;
        b->customer_id = v.customer_id;
        b->currency = v.currency;
        b->exponent = v.exponent;
        while (p < ni && line_cmp(&j->entries[idx[p]], &v) < 0)
            p++;
        for (; p < ni && line_cmp(&j->entries[idx[p]], &v) == 0; p++) {
            const rs_entry_t *e = &j->entries[idx[p]];
            b->billed += e->billed;
            b->recognized += e->recognized;
            b->received += e->received;
            b->deferred -= net_debit(e, RS_ACCT_DEFERRED_REVENUE);
            b->unbilled += net_debit(e, RS_ACCT_UNBILLED_RECEIVABLE);
        }
    }
    free(idx);
    *rows = out;
    *n = nl;
    return 0;
}

/* ---- per-currency period series ---- */

typedef struct series {
    char currency[4];
    int exponent;
    rs_period_t first, last; /* inclusive range with data */
    rs_money_t *recognized, *deferred_move, *billed, *released, *credits;
    rs_money_t *proj_rec, *proj_def; /* projected (periods > through) */
} series_t;

typedef struct book {
    series_t *s;
    size_t n;
    rs_period_t lo, hi; /* allocation range for every series */
} book_t;

static void book_free(book_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->s[i].recognized);
        free(b->s[i].deferred_move);
        free(b->s[i].billed);
        free(b->s[i].released);
        free(b->s[i].credits);
        free(b->s[i].proj_rec);
        free(b->s[i].proj_def);
    }
    free(b->s);
}

static series_t *book_series(book_t *b, const char *cur, int exponent)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->s[i].currency, cur) == 0)
            return &b->s[i];
    series_t *ns = realloc(b->s, (b->n + 1) * sizeof(*ns));
    if (ns == NULL)
        return NULL;
    b->s = ns;
    series_t *s = &b->s[b->n];
    memset(s, 0, sizeof(*s));
    size_t np = (size_t)b->hi - (size_t)b->lo + 1; /* hi >= lo */
    s->recognized = calloc(np, sizeof(rs_money_t));
    s->deferred_move = calloc(np, sizeof(rs_money_t));
    s->billed = calloc(np, sizeof(rs_money_t));
    s->released = calloc(np, sizeof(rs_money_t));
    s->credits = calloc(np, sizeof(rs_money_t));
    s->proj_rec = calloc(np, sizeof(rs_money_t));
    s->proj_def = calloc(np, sizeof(rs_money_t));
    b->n++;
    if (!s->recognized || !s->deferred_move || !s->billed || !s->released || !s->credits ||
        !s->proj_rec || !s->proj_def)
        return NULL;
    memcpy(s->currency, cur, 4);
    s->exponent = exponent;
    s->first = RS_PERIOD_NONE;
    s->last = RS_PERIOD_NONE;
    return s;
}

static void touch(series_t *s, rs_period_t p)
{
    if (s->first == RS_PERIOD_NONE || p < s->first)
        s->first = p;
    if (s->last == RS_PERIOD_NONE || p > s->last)
        s->last = p;
}

/* Fill the book from the journal (and, when `project`, from the schedule). */
static int book_build(book_t *b, const rs_engine_t *eng, const rs_journal_t *j,
                      rs_period_t through, int project)
{
    memset(b, 0, sizeof(*b));
    b->lo = RS_PERIOD_NONE;
    b->hi = through;
    for (size_t i = 0; i < j->n; i++)
        if (j->entries[i].period <= through &&
            (b->lo == RS_PERIOD_NONE || j->entries[i].period < b->lo))
            b->lo = j->entries[i].period;
    size_t nl = rs_engine_line_count(eng);
    for (size_t li = 0; li < nl; li++) {
        rs_line_view_t v;
        rs_engine_line_get(eng, li, &v);
        if (project && rs_period_of(v.end) > b->hi)
            b->hi = rs_period_of(v.end);
        if (project && (b->lo == RS_PERIOD_NONE || rs_period_of(v.start) < b->lo))
            b->lo = rs_period_of(v.start);
    }
    if (b->lo == RS_PERIOD_NONE || b->lo > through)
        b->lo = b->lo == RS_PERIOD_NONE ? through : b->lo;
    if (b->lo > b->hi)
        b->lo = b->hi;
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        if (e->period > through)
            continue;
        series_t *s = book_series(b, e->currency, e->exponent);
        if (s == NULL)
            return -1;
        size_t k = (size_t)(e->period - b->lo);
        rs_money_t dr = net_debit(e, RS_ACCT_DEFERRED_REVENUE);
        s->recognized[k] += e->recognized;
        s->deferred_move[k] -= dr;
        if (e->kind == RS_ENTRY_INVOICE)
            s->billed[k] -= dr;
        else if (e->kind == RS_ENTRY_RECOGNITION)
            s->released[k] += dr;
        else
            s->credits[k] += dr;
        touch(s, e->period);
    }
    if (!project)
        return 0;
    /* Projection: per line, from what it had recognized and billed by
     * `through` to R at its last day. */
    size_t ni, p = 0;
    size_t *idx = by_line(j, through, &ni);
    if (idx == NULL)
        return -1;
    for (size_t li = 0; li < nl; li++) {
        rs_line_view_t v;
        rs_engine_line_get(eng, li, &v);
        rs_money_t billed = 0, rec = 0;
        while (p < ni && line_cmp(&j->entries[idx[p]], &v) < 0)
            p++;
        for (; p < ni && line_cmp(&j->entries[idx[p]], &v) == 0; p++) {
            billed += j->entries[idx[p]].billed;
            rec += j->entries[idx[p]].recognized;
        }
        series_t *s = book_series(b, v.currency, v.exponent);
        if (s == NULL) {
            free(idx);
            return -1;
        }
        rs_money_t cum = rec;
        for (rs_period_t per = through + 1; per <= b->hi; per++) {
            rs_money_t r = rs_engine_line_scheduled(eng, li, rs_period_last_day(per));
            size_t k = (size_t)(per - b->lo);
            if (r != cum) {
                s->proj_rec[k] += r - cum;
                cum = r;
            }
            rs_money_t def = billed - cum;
            s->proj_def[k] += def > 0 ? def : 0;
            if (per <= rs_period_of(v.end) || def > 0 || r != rec)
                touch(s, per);
        }
    }
    free(idx);
    return 0;
}

static int cmp_cur(const void *a, const void *b)
{
    return strcmp(((const series_t *)a)->currency, ((const series_t *)b)->currency);
}

int rs_report_waterfall(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                        rs_waterfall_row_t **rows, size_t *n)
{
    book_t b;
    rs_waterfall_row_t *out = NULL;
    size_t k = 0;
    if (book_build(&b, eng, j, through, 1))
        goto fail;
    if (b.n > 1)
        qsort(b.s, b.n, sizeof(*b.s), cmp_cur);
    out = malloc(((size_t)(b.hi - b.lo + 1) * (b.n + 1) + 1) * sizeof(*out));
    if (out == NULL)
        goto fail;
    for (rs_period_t per = b.lo; per <= b.hi; per++) {
        for (size_t c = 0; c < b.n; c++) {
            series_t *s = &b.s[c];
            if (s->first == RS_PERIOD_NONE || per < s->first || per > s->last)
                continue;
            rs_money_t def = 0;
            for (rs_period_t q = b.lo; q <= per && q <= through; q++)
                def += s->deferred_move[q - b.lo];
            rs_waterfall_row_t *w = &out[k++];
            w->period = per;
            memcpy(w->currency, s->currency, sizeof(w->currency));
            w->exponent = s->exponent;
            if (per <= through) {
                w->recognized = s->recognized[per - b.lo];
                w->deferred = def;
                w->projected = 0;
            } else {
                w->recognized = s->proj_rec[per - b.lo];
                w->deferred = s->proj_def[per - b.lo];
                w->projected = 1;
            }
        }
    }
    book_free(&b);
    *rows = out;
    *n = k;
    return 0;
fail:
    book_free(&b);
    free(out);
    return -1;
}

int rs_report_rollforward(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                          rs_rollforward_row_t **rows, size_t *n)
{
    book_t b;
    rs_rollforward_row_t *out = NULL;
    size_t k = 0;
    if (book_build(&b, eng, j, through, 0))
        goto fail;
    if (b.n > 1)
        qsort(b.s, b.n, sizeof(*b.s), cmp_cur);
    out = malloc(((size_t)(b.hi - b.lo + 1) * (b.n + 1) + 1) * sizeof(*out));
    if (out == NULL)
        goto fail;
    for (rs_period_t per = b.lo; per <= through; per++) {
        for (size_t c = 0; c < b.n; c++) {
            series_t *s = &b.s[c];
            if (s->first == RS_PERIOD_NONE || per < s->first)
                continue;
            rs_money_t opening = 0;
            for (rs_period_t q = b.lo; q < per; q++)
                opening += s->deferred_move[q - b.lo];
            rs_rollforward_row_t *r = &out[k++];
            size_t i = (size_t)(per - b.lo);
            r->period = per;
            r->exponent = s->exponent;
            r->opening = opening;
            r->billed = s->billed[i];
            r->recognized = s->released[i];
            r->credits = s->credits[i];
            r->closing = opening + s->deferred_move[i];
            memcpy(r->currency, s->currency, sizeof(r->currency));
        }
    }
    book_free(&b);
    *rows = out;
    *n = k;
    return 0;
fail:
    book_free(&b);
    free(out);
    return -1;
}

static int cmp_journal(const void *a, const void *b)
{
    const rs_entry_t *x = &sort_j->entries[*(const size_t *)a];
    const rs_entry_t *y = &sort_j->entries[*(const size_t *)b];
    if (x->period != y->period)
        return x->period < y->period ? -1 : 1;
    int r = strcmp(x->contract_id, y->contract_id);
    if (r)
        return r;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

int rs_report_journal(const rs_journal_t *j, rs_period_t through, size_t **idx, size_t *n)
{
    size_t *out = malloc((j->n + 1) * sizeof(*out));
    if (out == NULL)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++)
        if (j->entries[i].period <= through)
            out[k++] = i;
    sort_j = j;
    qsort(out, k, sizeof(*out), cmp_journal);
    *idx = out;
    *n = k;
    return 0;
}

static int cmp_exception(const void *a, const void *b)
{
    const rs_exception_row_t *x = a, *y = b;
    int r = strcmp(x->contract_id, y->contract_id);
    if (r == 0)
        r = strcmp(x->line_id, y->line_id);
    if (r == 0)
        r = strcmp(x->kind, y->kind);
    if (r == 0)
        r = strcmp(x->detail, y->detail);
    return r;
}

static int push_exc(rs_exception_row_t **out, size_t *n, size_t *cap, rs_exception_row_t r)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        rs_exception_row_t *no = realloc(*out, nc * sizeof(*no));
        if (no == NULL)
            return -1;
        *out = no;
        *cap = nc;
    }
    (*out)[(*n)++] = r;
    return 0;
}

int rs_report_exceptions(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                         rs_exception_row_t **rows, size_t *n)
{
    rs_balance_row_t *b = NULL;
    size_t nb = 0, k = 0, cap = 0;
    rs_exception_row_t *out = NULL;
    if (rs_report_balances(e, j, through, &b, &nb))
        return -1;
    rs_date_t as_of = rs_period_last_day(through);
    char d[16], d2[16];
    for (size_t i = 0; i < nb; i++) {
        rs_line_view_t v;
        rs_engine_line_get(e, i, &v);
        rs_exception_row_t r = {b[i].contract_id,
                                b[i].line_id,
                                b[i].customer_id,
                                b[i].currency,
                                b[i].exponent,
                                NULL,
                                0,
                                ""};
        if (v.ended_on != RS_DATE_NONE && v.ended_on <= as_of && b[i].deferred > 0) {
            r.kind = "deferred_after_cancellation";
            r.amount = b[i].deferred;
            snprintf(r.detail, sizeof(r.detail),
                     "service ended %s; settle with a credit note or refund",
                     rs_date_format(v.ended_on, d, sizeof(d)));
            if (push_exc(&out, &k, &cap, r))
                goto fail;
        }
        if (v.usage_outside != 0) {
            r.kind = "usage_outside_service";
            r.amount = v.usage_outside;
            snprintf(r.detail, sizeof(r.detail),
                     "usage recorded outside the service %s..%s is not recognized",
                     rs_date_format(v.start, d, sizeof(d)),
                     rs_date_format(v.end, d2, sizeof(d2)));
            if (push_exc(&out, &k, &cap, r))
                goto fail;
        }
        if (v.end < as_of && b[i].unbilled > 0) {
            r.kind = "unbilled_after_end";
            r.amount = b[i].unbilled;
            snprintf(r.detail, sizeof(r.detail), "service ended %s and was not fully invoiced",
                     rs_date_format(v.end, d, sizeof(d)));
            if (push_exc(&out, &k, &cap, r))
                goto fail;
        }
    }
    for (size_t i = 0, nc = rs_engine_contract_count(e); i < nc; i++) {
        rs_contract_view_t c;
        rs_engine_contract_get(e, i, &c);
        rs_exception_row_t r = {
            c.contract_id, "", c.customer_id, c.currency, c.exponent, NULL, 0, ""};
        if (c.customer_credit > 0) {
            r.kind = "customer_credit";
            r.amount = c.customer_credit;
            snprintf(r.detail, sizeof(r.detail), "credit balance owed to customer %s",
                     c.customer_id);
            if (push_exc(&out, &k, &cap, r))
                goto fail;
        }
        if (c.written_off > 0) {
            r.kind = "written_off";
            r.amount = c.written_off;
            snprintf(r.detail, sizeof(r.detail), "receivable declared uncollectible");
            if (push_exc(&out, &k, &cap, r))
                goto fail;
        }
    }
    for (size_t i = 0, np = rs_engine_pending_count(e); i < np; i++) {
        rs_pending_view_t p;
        rs_engine_pending_get(e, i, &p);
        rs_exception_row_t r = {p.contract_id, "", "", "", 0, "pending", 0, ""};
        snprintf(r.detail, sizeof(r.detail), "event %s (%s) waits for %s", p.event_id,
                 rs_event_type_name(p.type), p.waiting_for);
        if (push_exc(&out, &k, &cap, r))
            goto fail;
    }
    free(b);
    if (k > 1)
        qsort(out, k, sizeof(*out), cmp_exception);
    *rows = out;
    *n = k;
    return 0;
fail:
    free(b);
    free(out);
    return -1;
}
