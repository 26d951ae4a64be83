/*
 * rs_engine_views.c — read-only views of lines, contracts and invoices for
 * reports (see "read-only views" in rs_engine.h).
 *
 * Invariants:
 *   - The views are a cache over the engine state, rebuilt when views_dirty
 *     is set; rebuilding them changes no state, which is why a function
 *     taking a const engine may rebuild them.
 *   - Only booked contracts are visible. Lines sort by (contract_id,
 *     line_id), contracts by contract_id, a contract's invoices by
 *     invoice_id.
 *   - A view's strings point into the engine: they stay valid until the next
 *     call that changes the engine.
 */
#include "rs_engine.h"

#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

static int cmp_view(const void *a, const void *b)
{
    const struct rs_view *x = a, *y = b;
    int r = strcmp(x->c->contract_id, y->c->contract_id);
    if (r)
        return r;
    return strcmp(rs_eng_str(x->c, x->c->lines[x->line].line_id),
                  rs_eng_str(y->c, y->c->lines[y->line].line_id));
}

/* Views are a cache over const state; rebuilding it is not a state change. */
static void build_views(const rs_engine_t *ce)
{
    rs_engine_t *e = (rs_engine_t *)ce;
    if (!e->views_dirty && e->views)
        return;
    size_t n = 0, nc = 0;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i] && e->slots[i]->booked) {
            n += (size_t)e->slots[i]->nlines;
            nc++;
        }
    void *nv = realloc(e->views, (n + 1) * sizeof(*e->views));
    void *ncv = nv ? realloc(e->cviews, (nc + 1) * sizeof(*e->cviews)) : NULL;
    if (nv) {
        e->views = nv;
        e->capviews = n + 1;
    }
    if (ncv) {
        e->cviews = ncv;
        e->capcviews = nc + 1;
    }
    if (nv == NULL || ncv == NULL) {
        e->nviews = e->ncviews = 0;
        return;
    }
    size_t k = 0, kc = 0;
    for (size_t i = 0; i < e->nslots; i++) {
        rs_contract_t *c = e->slots[i];
        if (c == NULL || !c->booked)
            continue;
        e->cviews[kc++] = c;
        for (int j = 0; j < c->nlines; j++) {
            e->views[k].c = c;
            e->views[k].line = j;
            k++;
        }
    }
    qsort(e->views, k, sizeof(*e->views), cmp_view);
    qsort(e->cviews, kc, sizeof(*e->cviews), rs_eng_cmp_contract);
    e->nviews = k;
    e->ncviews = kc;
    e->views_dirty = 0;
}

size_t rs_engine_line_count(const rs_engine_t *e)
{
    build_views(e);
    return e->nviews;
}

static void fill_line_view(const rs_contract_t *c, int line, rs_line_view_t *o)
{
    const rs_line_t *l = &c->lines[line];
    o->contract_id = c->contract_id;
    o->customer_id = rs_eng_str(c, c->customer_id);
    o->line_id = rs_eng_str(c, l->line_id);
    o->product = l->product;
    o->currency = c->currency;
    o->exponent = c->exponent;
    o->method = l->method;
    o->start = l->start;
    o->end = rs_eng_line_last_day(l);
    o->ended_on = l->ended_on;
    o->price = l->price;
    o->billed = l->billed;
    o->recognized = l->recognized;
    o->deferred = l->deferred;
    o->unbilled = l->unbilled;
    o->received = l->received;
    o->usage_outside = 0;
    o->index = line;
    if (l->method == RS_METHOD_USAGE && l->nusage > 0) {
        rs_date_t first = l->usage[0].day, lastu = l->usage[l->nusage - 1].day;
        o->usage_outside = rs_eng_usage_value(c, l, first, lastu) -
                           rs_eng_usage_through(c, l, lastu > o->end ? lastu : o->end);
    }
}

void rs_engine_line_get(const rs_engine_t *e, size_t i, rs_line_view_t *o)
{
    build_views(e);
    fill_line_view(e->views[i].c, e->views[i].line, o);
}

size_t rs_engine_contract_lines(const rs_engine_t *e, const char *contract_id,
                                rs_line_view_t *out, size_t max)
{
    const rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL || !c->booked)
        return 0;
    size_t n = (size_t)c->nlines;
    if (n > max)
        return n;
    /* insertion sort by line_id: a contract has a handful of lines */
    for (size_t k = 0; k < n; k++) {
        rs_line_view_t v;
        fill_line_view(c, (int)k, &v);
        size_t at = k;
        while (at > 0 && strcmp(out[at - 1].line_id, v.line_id) > 0) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = v;
    }
    return n;
}

rs_money_t rs_engine_line_scheduled(const rs_engine_t *e, size_t i, rs_date_t d)
{
    build_views(e);
    const rs_contract_t *c = e->views[i].c;
    return rs_eng_line_R(e, c, &c->lines[e->views[i].line], d);
}

rs_money_t rs_engine_contract_line_scheduled(const rs_engine_t *e, const char *contract_id,
                                             int index, rs_date_t d)
{
    const rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL || index < 0 || index >= c->nlines)
        return 0;
    return rs_eng_line_R(e, c, &c->lines[index], d);
}

size_t rs_engine_contract_count(const rs_engine_t *e)
{
    build_views(e);
    return e->ncviews;
}

void rs_engine_contract_get(const rs_engine_t *e, size_t i, rs_contract_view_t *o)
{
    build_views(e);
    const rs_contract_t *c = e->cviews[i];
    o->contract_id = c->contract_id;
    o->customer_id = rs_eng_str(c, c->customer_id);
    o->currency = c->currency;
    o->exponent = c->exponent;
    o->cancelled_on = c->cancelled_on;
    o->customer_credit = c->customer_credit;
    o->written_off = c->written_off;
}

/* Invoices: contracts in id order, each contract's invoices by id. */
size_t rs_engine_invoice_count(const rs_engine_t *e)
{
    build_views(e);
    size_t n = 0;
    for (size_t i = 0; i < e->ncviews; i++)
        n += (size_t)e->cviews[i]->ninv;
    return n;
}

void rs_engine_invoice_get(const rs_engine_t *e, size_t i, rs_invoice_view_t *o)
{
    build_views(e);
    memset(o, 0, sizeof(*o));
    for (size_t k = 0; k < e->ncviews; k++) {
        const rs_contract_t *c = e->cviews[k];
        if (i >= (size_t)c->ninv) {
            i -= (size_t)c->ninv;
            continue;
        }
        /* the i-th invoice of c in id order */
        int *idx = malloc((size_t)c->ninv * sizeof(*idx));
        if (idx == NULL)
            return;
        for (int j = 0; j < c->ninv; j++) { /* insertion sort: a contract has few */
            int k2 = j;
            while (k2 > 0 && strcmp(rs_eng_str(c, c->inv[idx[k2 - 1]].invoice_id),
                                    rs_eng_str(c, c->inv[j].invoice_id)) > 0) {
                idx[k2] = idx[k2 - 1];
                k2--;
            }
            idx[k2] = j;
        }
        const rs_invoice_t *v = &c->inv[idx[i]];
        free(idx);
        o->contract_id = c->contract_id;
        o->customer_id = rs_eng_str(c, c->customer_id);
        o->invoice_id = rs_eng_str(c, v->invoice_id);
        o->currency = c->currency;
        o->exponent = c->exponent;
        o->issued_on = v->issued_on;
        o->voided = v->voided;
        o->uncollectible = v->uncollectible;
        for (int j = 0; j < v->nlines; j++) {
            const rs_inv_line_t *il = &v->lines[j];
            o->amount += il->amount;
            o->tax += il->tax;
            o->credited += il->credited + il->credit_tax;
            o->paid += il->paid;
            o->open += rs_eng_open_ar(il);
            o->allowance += il->allowance;
        }
        return;
    }
}
