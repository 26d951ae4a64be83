/*
 * rs_engine_contract.c — events of the contracts and usage topics:
 * contract.booked, contract.amended, contract.cancelled, milestone.completed
 * and usage.recorded; and building lines from an event's specs (validation,
 * relative-SSP allocation, milestone amounts).
 *
 * Invariants:
 *   - Each handler validates the whole event before it changes anything; past
 *     that point it can fail only for lack of memory (I6).
 *   - A line keeps its method family (ratable or point in time, usage,
 *     milestone) for life. Terms change through dated changes
 *     (rs_engine_schedule.c); a line an amendment leaves out stops the day
 *     before the amendment takes effect.
 *   - A line's usage is one record per day, sorted by day.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

static int method_family(rs_method_t m)
{
    return m == RS_METHOD_USAGE ? 1 : m == RS_METHOD_MILESTONE ? 2 : 0;
}

/* ---- building lines from specs (contract.booked, contract.amended) ---- */

/* A line's id in c's arena: the reference of the contract's line of that id
 * if it has one (an amendment), else a new string. */
static int line_id_ref(rs_contract_t *c, const char *id, rs_eng_str_t *out)
{
    int old = rs_eng_find_line(c, id);
    if (old >= 0) {
        *out = c->lines[old].line_id;
        return 0;
    }
    return rs_eng_str_put(c, id, RS_ID_MAX, out);
}

/* A milestone id: the reference the contract's line `old` has for it, if
 * any, else a new string. */
static int milestone_id_ref(rs_contract_t *c, int old, const char *id, rs_eng_str_t *out)
{
    for (int k = 0; old >= 0 && k < c->lines[old].nms; k++)
        if (strcmp(rs_eng_str(c, c->lines[old].ms[k].milestone_id), id) == 0) {
            *out = c->lines[old].ms[k].milestone_id;
            return 0;
        }
    return rs_eng_str_put(c, id, RS_ID_MAX, out);
}

/* Validate specs and build lines with allocated prices (no schedule yet).
 * Their strings go to c's arena (terms_source is `src`, the event's id) and
 * their products to the intern table; on failure the caller rolls the
 * arena back. */
static int build_lines(rs_engine_t *e, rs_contract_t *c, rs_vctx_t *v, int exponent,
                       const rs_event_t *ev, rs_eng_str_t src, rs_line_t **out)
{
    int n = ev->n_lines, rc = -1, n_take = 0, n_ssp = 0;
    rs_line_t *ls = calloc((size_t)n, sizeof(*ls)); /* n >= 1: the callers check */
    rs_money_t *w = calloc((size_t)n + 1, sizeof(*w));
    rs_money_t *alloc = calloc((size_t)n + 1, sizeof(*alloc));
    rs_money_t total = 0;
    char f[96];
    if (ls == NULL || w == NULL || alloc == NULL) {
        rs_eng_verr(v, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const rs_line_spec_t *s = &ev->lines[i];
        rs_line_t *l = &ls[i];
        l->product = rs_eng_intern(e, s->product, RS_NAME_MAX);
        if (l->product == NULL || line_id_ref(c, s->line_id, &l->line_id)) {
            rs_eng_verr(v, "out of memory");
            goto out;
        }
        l->method = s->recognition;
        l->start = s->start;
        l->end = s->end == RS_DATE_NONE ? s->start : s->end;
        l->ended_on = RS_DATE_NONE;
        l->terms_source = src;
        if (rs_method_name(l->method) == NULL) {
            rs_eng_verr(v, "lines[%d].recognition: unknown method", i);
            goto out;
        }
        rs_eng_field(f, sizeof(f), "lines", i, ".amount");
        if (rs_eng_to_minor(v, f, s->amount, exponent, 0, &l->amount))
            goto out;
        if (l->start == RS_DATE_NONE) {
            rs_eng_verr(v, "lines[%d].start: required", i);
            goto out;
        }
        if (l->end < l->start) {
            rs_eng_verr(v, "lines[%d].end: before start", i);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(rs_eng_str(c, ls[j].line_id), rs_eng_str(c, l->line_id)) == 0) {
                rs_eng_verr(v, "lines[%d].line_id: duplicate \"%s\"", i,
                            rs_eng_str(c, l->line_id));
                goto out;
            }
        if (s->has_ssp) {
            rs_eng_field(f, sizeof(f), "lines", i, ".ssp");
            if (rs_eng_to_minor(v, f, s->ssp, exponent, 0, &l->ssp))
                goto out;
            l->has_ssp = 1;
        }
        if (l->method == RS_METHOD_USAGE) {
            if (!s->has_unit_price) {
                rs_eng_verr(v, "lines[%d].unit_price: required for usage lines", i);
                goto out;
            }
            if (s->unit_price.mantissa < 0 || s->unit_price.scale > 6) {
                rs_eng_verr(v, "lines[%d].unit_price: must be >= 0 with at most 6 decimals", i);
                goto out;
            }
            l->uprice = calloc(1, sizeof(*l->uprice));
            if (l->uprice == NULL) {
                rs_eng_verr(v, "out of memory");
                goto out;
            }
            l->nuprice = l->capuprice = 1;
            l->uprice[0].eff = l->start;
            l->uprice[0].price = s->unit_price;
        } else {
            n_take++;
            rs_eng_field(f, sizeof(f), "lines", i, ".amount");
            if (rs_eng_check_sum(v, f, "the contract's total", total, l->amount, &total))
                goto out;
            if (l->has_ssp)
                n_ssp++;
        }
        if (l->method == RS_METHOD_MILESTONE) {
            if (s->n_milestones <= 0) {
                rs_eng_verr(v, "lines[%d].milestones: required for milestone lines", i);
                goto out;
            }
            l->ms = calloc((size_t)s->n_milestones, sizeof(*l->ms));
            if (l->ms == NULL) {
                rs_eng_verr(v, "out of memory");
                goto out;
            }
            l->nms = s->n_milestones;
            rs_money_t sum = 0;
            int old = rs_eng_find_line(c, s->line_id);
            for (int k = 0; k < s->n_milestones; k++) {
                snprintf(f, sizeof(f), "lines[%d].milestones[%d].amount", i, k);
                if (rs_eng_to_minor(v, f, s->milestones[k].amount, exponent, 0,
                                    &l->ms[k].amount))
                    goto out;
                if (milestone_id_ref(c, old, s->milestones[k].milestone_id,
                                     &l->ms[k].milestone_id)) {
                    rs_eng_verr(v, "out of memory");
                    goto out;
                }
                l->ms[k].completed_on = RS_DATE_NONE;
                if (rs_eng_check_sum(v, f, "the milestones' sum", sum, l->ms[k].amount, &sum))
                    goto out;
            }
            if (sum != l->amount) {
                char a[48], b[48];
                rs_eng_verr(v,
                            "lines[%d].milestones: amounts sum to %s, the line's amount is %s",
                            i, rs_money_format(sum, exponent, a, sizeof(a)),
                            rs_money_format(l->amount, exponent, b, sizeof(b)));
                goto out;
            }
        }
        l->price = l->amount;
    }
    /* ASC 606 step 4: relative-SSP allocation when every taking-part line has one. */
    if (n_take > 0 && n_ssp == n_take) {
        int k = 0;
        rs_money_t sumssp = 0;
        for (int i = 0; i < n; i++)
            if (ls[i].method != RS_METHOD_USAGE) {
                w[k++] = ls[i].ssp;
                rs_eng_field(f, sizeof(f), "lines", i, ".ssp");
                if (rs_eng_check_sum(v, f, "the sum of the lines' SSPs", sumssp, ls[i].ssp,
                                     &sumssp))
                    goto out;
            }
        if (sumssp > 0) {
            if (rs_eng_allocate(total, w, (size_t)k, alloc)) {
                rs_eng_verr(v, "out of memory");
                goto out;
            }
            k = 0;
            for (int i = 0; i < n; i++)
                if (ls[i].method != RS_METHOD_USAGE)
                    ls[i].price = alloc[k++];
        }
    }
    /* Milestone amounts follow the allocated price, cumulatively rounded. */
    for (int i = 0; i < n; i++) {
        rs_line_t *l = &ls[i];
        if (l->method != RS_METHOD_MILESTONE || l->price == l->amount || l->amount == 0)
            continue;
        __int128 cum = 0;
        rs_money_t prev = 0;
        for (int k = 0; k < l->nms; k++) {
            cum += l->ms[k].amount;
            rs_money_t now = (rs_money_t)rs_div_round((__int128)l->price * cum, l->amount);
            l->ms[k].amount = now - prev;
            prev = now;
        }
    }
    *out = ls;
    ls = NULL;
    rc = 0;
out:
    if (ls) {
        for (int i = 0; i < n; i++)
            rs_eng_line_free(e, &ls[i]);
        free(ls);
    }
    free(w);
    free(alloc);
    return rc;
}

/* ---- contract events ---- */

/* Copy a built line's terms into a TERMS change. */
static void set_terms(rs_change_t *ch, const rs_line_t *n)
{
    ch->method = n->method;
    ch->start = n->start;
    ch->end = n->end;
    ch->amount = n->price;
    if (n->nuprice > 0)
        ch->unit_price = n->uprice[0].price;
}

int rs_eng_apply_booked(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    if (c->booked)
        return rs_eng_verr(&v, "contract_id: contract %s was already booked by event %s",
                           c->contract_id, rs_eng_str(c, c->booked_by));
    int exponent = rs_currency_exponent(ev->currency);
    if (exponent < 0)
        return rs_eng_verr(&v, "currency: unknown currency \"%s\"", ev->currency);
    if (ev->n_lines <= 0)
        return rs_eng_verr(&v, "lines: at least one line is required");
    /* the booking event's id is booked_by and every line's terms_source */
    uint32_t mark = c->nstr;
    rs_eng_str_t src, cust;
    if (rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src) ||
        rs_eng_str_put(c, ev->customer_id, RS_ID_MAX, &cust)) {
        c->nstr = mark;
        return rs_eng_verr(&v, "out of memory");
    }
    rs_line_t *ls = NULL;
    if (build_lines(e, c, &v, exponent, ev, src, &ls)) {
        c->nstr = mark; /* a rejected event leaves no text behind */
        return -1;
    }
    c->lines = ls;
    c->nlines = c->caplines = ev->n_lines;
    for (int i = 0; i < ev->n_lines; i++) {
        rs_line_t *l = &ls[i];
        if (l->method == RS_METHOD_MILESTONE)
            continue;
        rs_change_t *ch =
            rs_eng_add_change(e, c, i, RS_CH_TERMS, l->start, RS_ENG_RULE_NONE, 0);
        if (ch != NULL) {
            set_terms(ch, l);
            ch->booking = 1;
        }
        if (ch == NULL || rs_eng_rebuild_line(e, c, l)) {
            c->lines = NULL;
            c->nlines = c->caplines = 0;
            for (int k = 0; k < ev->n_lines; k++)
                rs_eng_line_free(e, &ls[k]);
            free(ls);
            return rs_eng_verr(&v, "out of memory");
        }
    }
    c->booked = 1;
    c->exponent = (uint8_t)exponent;
    memcpy(c->currency, ev->currency, sizeof(c->currency));
    c->customer_id = cust;
    c->booked_by = src;
    c->booked_on = ev->booked_on;
    e->views_dirty = 1;
    return 0;
}

int rs_eng_apply_amended(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    rs_date_t E = ev->effective_on;
    if (E == RS_DATE_NONE)
        return rs_eng_verr(&v, "effective_on: required");
    if (c->cancelled_on != RS_DATE_NONE && E >= c->cancelled_on) {
        char d[16];
        return rs_eng_verr(&v, "effective_on: contract %s was cancelled from %s",
                           c->contract_id, rs_date_format(c->cancelled_on, d, sizeof(d)));
    }
    if (ev->n_lines <= 0)
        return rs_eng_verr(&v, "lines: the complete set of lines is required");
    /* the amendment's id: every line's terms_source and its changes' source */
    uint32_t mark = c->nstr;
    rs_eng_str_t src;
    if (rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src))
        return rs_eng_verr(&v, "out of memory");
    rs_line_t *nl = NULL;
    if (build_lines(e, c, &v, c->exponent, ev, src, &nl)) {
        c->nstr = mark; /* a rejected event leaves no text behind */
        return -1;
    }
    int rc = -1, nnew = 0, validated = 0;
    for (int i = 0; i < ev->n_lines; i++) {
        int old = rs_eng_find_line(c, rs_eng_str(c, nl[i].line_id));
        if (old < 0) {
            nnew++;
            continue;
        }
        if (method_family(c->lines[old].method) != method_family(nl[i].method)) {
            rs_eng_verr(&v, "lines[%d].recognition: line %s cannot change from %s to %s", i,
                        rs_eng_str(c, nl[i].line_id), rs_method_name(c->lines[old].method),
                        rs_method_name(nl[i].method));
            goto out;
        }
        rs_money_t bound;
        if (nl[i].method == RS_METHOD_USAGE && nl[i].nuprice > 0 &&
            rs_eng_usage_total(c, &c->lines[old], RS_DATE_NONE, 0, &nl[i].uprice[0].price,
                               &bound, NULL)) {
            rs_eng_verr(&v,
                        "lines[%d].unit_price: the usage recorded on line %s would be worth "
                        "more than the largest amount",
                        i, rs_eng_str(c, nl[i].line_id));
            goto out;
        }
    }
    if (rs_eng_growi((void **)&c->lines, &c->caplines, c->nlines + nnew, sizeof(rs_line_t))) {
        rs_eng_verr(&v, "out of memory");
        goto out;
    }
    /* From here on nothing can fail validation. */
    validated = 1;
    rs_eng_mark_dirty(c, rs_period_of(E));
    rs_eng_str_t rule =
        ev->treatment == RS_TREATMENT_CATCH_UP ? RS_ENG_RULE_CATCH_UP : RS_ENG_RULE_AMENDMENT;
    for (int i = 0; i < ev->n_lines; i++) {
        rs_line_t *n = &nl[i];
        int li = rs_eng_find_line(c, rs_eng_str(c, n->line_id)), is_new = li < 0;
        if (is_new) { /* a new line: its first terms take the amendment's treatment */
            li = c->nlines++;
            c->lines[li] = *n;
            memset(n, 0, sizeof(*n));
            n = &c->lines[li];
        }
        rs_line_t *l = &c->lines[li];
        rs_period_t old_end = rs_period_of(rs_eng_line_last_day(l));
        if (old_end < c->dirty_from)
            rs_eng_mark_dirty(c, old_end);
        if (rs_period_of(n->end) < c->dirty_from)
            rs_eng_mark_dirty(c, rs_period_of(n->end));
        l->terms_source = src;
        if (!is_new) { /* an existing line: take the new facts (n frees the old product) */
            const char *product = l->product;
            l->product = n->product;
            n->product = product;
            l->amount = n->amount;
            l->has_ssp = n->has_ssp;
            l->ssp = n->ssp;
        }
        if (l->method != RS_METHOD_MILESTONE) {
            rs_change_t *ch = rs_eng_add_change(e, c, li, RS_CH_TERMS, E, rule, src);
            if (ch == NULL) {
                rs_eng_verr(&v, "out of memory");
                goto out;
            }
            set_terms(ch, n);
            ch->treatment = ev->treatment;
            if (rs_eng_rebuild_line(e, c, l)) {
                rs_eng_verr(&v, "out of memory");
                goto out;
            }
        } else if (!is_new) {
            /* the new milestone list, keeping completions by id */
            for (int k = 0; k < n->nms; k++)
                for (int j = 0; j < l->nms; j++)
                    if (strcmp(rs_eng_str(c, n->ms[k].milestone_id),
                               rs_eng_str(c, l->ms[j].milestone_id)) == 0 &&
                        l->ms[j].completed_on != RS_DATE_NONE) {
                        n->ms[k].completed_on = l->ms[j].completed_on;
                        n->ms[k].source = l->ms[j].source;
                        if (l->ms[j].completed_on < E)
                            n->ms[k].amount = l->ms[j].amount; /* the past stays */
                    }
            rs_milestone_t *tmp = l->ms;
            l->ms = n->ms;
            l->nms = n->nms;
            n->ms = tmp;
            n->nms = 0;
            l->start = n->start;
            l->end = n->end;
            rs_money_t jump;
            int comp;
            /* the credits the line has had lower the new terms too */
            rs_money_t price = n->price + rs_eng_milestone_credits(l);
            if (rs_eng_milestone_reprice(l, price, E, ev->treatment, RS_ACCT_REVENUE,
                                         RS_ENG_RULE_CATCH_UP, src, &jump, &comp)) {
                rs_eng_verr(&v, "out of memory");
                goto out;
            }
        }
    }
    /* lines left out end the day before E */
    for (int li = 0; li < c->nlines; li++) {
        int listed = 0;
        for (int i = 0; i < ev->n_lines; i++)
            if (strcmp(ev->lines[i].line_id, rs_eng_str(c, c->lines[li].line_id)) == 0)
                listed = 1;
        if (!listed && rs_eng_stop_line(e, c, li, E, 0, src)) {
            rs_eng_verr(&v, "out of memory");
            goto out;
        }
    }
    e->views_dirty = 1;
    rc = 0;
out:
    for (int i = 0; i < ev->n_lines; i++)
        rs_eng_line_free(e, &nl[i]);
    free(nl);
    if (rc && !validated)
        c->nstr = mark;
    return rc;
}

int rs_eng_apply_cancelled(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    rs_date_t E = ev->effective_on;
    if (E == RS_DATE_NONE)
        return rs_eng_verr(&v, "effective_on: required");
    if (c->cancelled_on != RS_DATE_NONE) {
        char d[16];
        return rs_eng_verr(&v, "contract_id: contract %s is already cancelled from %s",
                           c->contract_id, rs_date_format(c->cancelled_on, d, sizeof(d)));
    }
    int forfeit = e->policy.cancellation == RS_CANCEL_FORFEIT;
    rs_eng_str_t src;
    if (rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src))
        return rs_eng_verr(&v, "out of memory");
    for (int li = 0; li < c->nlines; li++)
        if (rs_eng_stop_line(e, c, li, E, forfeit, src))
            return rs_eng_verr(&v, "out of memory");
    c->cancelled_on = E;
    e->views_dirty = 1;
    return 0;
}

int rs_eng_apply_milestone(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen)
{
    (void)e;
    rs_vctx_t v = {ev, errstr, errlen};
    char d[16];
    int li = rs_eng_find_line(c, ev->line_id);
    if (li < 0)
        return rs_eng_verr(&v, "line_id: contract %s has no line \"%s\"", c->contract_id,
                           ev->line_id);
    rs_line_t *l = &c->lines[li];
    if (l->method != RS_METHOD_MILESTONE)
        return rs_eng_verr(&v, "line_id: line %s is recognized %s, not by milestones",
                           rs_eng_str(c, l->line_id), rs_method_name(l->method));
    if (ev->completed_on == RS_DATE_NONE)
        return rs_eng_verr(&v, "completed_on: required");
    if (l->ended_on != RS_DATE_NONE && ev->completed_on > l->ended_on)
        return rs_eng_verr(&v, "completed_on: line %s ended on %s", rs_eng_str(c, l->line_id),
                           rs_date_format(l->ended_on, d, sizeof(d)));
    for (int k = 0; k < l->nms; k++) {
        if (strcmp(rs_eng_str(c, l->ms[k].milestone_id), ev->milestone_id) != 0)
            continue;
        if (l->ms[k].completed_on != RS_DATE_NONE)
            return rs_eng_verr(&v,
                               "milestone_id: milestone %s was already completed by event %s",
                               ev->milestone_id, rs_eng_str(c, l->ms[k].source));
        if (rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &l->ms[k].source))
            return rs_eng_verr(&v, "out of memory");
        l->ms[k].completed_on = ev->completed_on;
        rs_eng_mark_dirty(c, rs_period_of(ev->completed_on));
        return 0;
    }
    return rs_eng_verr(&v, "milestone_id: line %s has no milestone \"%s\"",
                       rs_eng_str(c, l->line_id), ev->milestone_id);
}

/* ---- usage ---- */

int rs_eng_apply_usage(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                       size_t errlen)
{
    (void)e;
    rs_vctx_t v = {ev, errstr, errlen};
    int li = rs_eng_find_line(c, ev->line_id);
    if (li < 0)
        return rs_eng_verr(&v, "line_id: contract %s has no line \"%s\"", c->contract_id,
                           ev->line_id);
    rs_line_t *l = &c->lines[li];
    if (l->method != RS_METHOD_USAGE)
        return rs_eng_verr(&v, "line_id: line %s is recognized %s, not by usage",
                           rs_eng_str(c, l->line_id), rs_method_name(l->method));
    if (ev->quantity.mantissa < 0)
        return rs_eng_verr(&v, "quantity: must not be negative");
    rs_date_t d = ev->occurred_on, last = rs_eng_line_last_day(l);
    if (d < l->start || d > last) {
        char a[16], b[16], x[16];
        return rs_eng_verr(&v, "occurred_at: %s is outside the line's service %s..%s",
                           rs_date_format(d, x, sizeof(x)),
                           rs_date_format(l->start, a, sizeof(a)),
                           rs_date_format(last, b, sizeof(b)));
    }
    __int128 qty = (__int128)ev->quantity.mantissa * rs_pow10(6 - ev->quantity.scale);
    rs_money_t value;
    __int128 units;
    if (rs_eng_usage_total(c, l, d, qty, NULL, &value, &units)) {
        char lim[48];
        return rs_eng_verr(&v,
                           "quantity: the value of line %s's usage would be out of range "
                           "(beyond %s minor units)",
                           rs_eng_str(c, l->line_id),
                           rs_money_format(RS_MONEY_MAX, 0, lim, sizeof(lim)));
    }
    size_t i = l->nusage;
    while (i > 0 && l->usage[i - 1].day > d)
        i--;
    if (i > 0 && l->usage[i - 1].day == d) {
        rs_eng_usage_set_qty(&l->usage[i - 1], rs_eng_usage_qty(&l->usage[i - 1]) + qty);
        l->usage[i - 1].count++;
    } else {
        if (rs_eng_grow32((void **)&l->usage, &l->capusage, l->nusage + 1,
                          sizeof(rs_usage_day_t)))
            return rs_eng_verr(&v, "out of memory");
        memmove(&l->usage[i + 1], &l->usage[i], (l->nusage - i) * sizeof(rs_usage_day_t));
        l->usage[i].day = d;
        rs_eng_usage_set_qty(&l->usage[i], qty);
        l->usage[i].count = 1;
        l->nusage++;
    }
    rs_eng_usage_set_units(l, units);
    rs_eng_mark_dirty(c, rs_period_of(d));
    return 0;
}
