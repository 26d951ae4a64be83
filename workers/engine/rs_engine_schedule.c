/*
 * rs_engine_schedule.c — what a line recognizes: its cumulative recognition
 * function R(d), and the schedule changes (terms, credits, stops, milestone
 * repricing) that rebuild the segments and adjustments R is made of.
 *
 * Invariants (I1 and I2 of rs_engine.c):
 *   - R(d) depends only on the line (segments, adjustments, milestones, unit
 *     prices, usage), the contract's currency exponent and the proration
 *     policy.
 *   - The only rounding is rs_div_round() on cumulative amounts, so every
 *     schedule sums exactly to its total.
 *   - A change effective from E never changes R before E: a catch-up is a
 *     jump of R at E (a segment's jump or an adjustment), not a rewrite of
 *     the past.
 *   - A ratable or usage line is rebuilt from all its dated changes sorted
 *     by (booking first, on, kind, source, id), so the result does not depend
 *     on the order in which they arrived.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

#define L_MONTH 377580 /* lcm(28, 29, 30, 31): day weights of ratable_monthly */
#define UNIT_SCALE 12  /* usage amounts: 10^-12 of a major unit */

/* ---- R(d): the cumulative recognition function of a line ---- */

/* Weight of the days from..to (1-based, within one month of dim days) in
 * units of 1/L_MONTH of a month. A whole month weighs L_MONTH under either
 * policy (L_MONTH is a multiple of every month length). */
static __int128 month_piece(const rs_engine_t *e, int from, int to, int dim)
{
    int days = to - from + 1;
    if (e->policy.proration == RS_PRORATE_30_360)
        return from == 1 && to == dim ? L_MONTH
                                      : (__int128)(days > 30 ? 30 : days) * (L_MONTH / 30);
    return (__int128)days * (L_MONTH / dim);
}

/* Weight of the days [a, d] in units of 1/L_MONTH of a month: the part of
 * a's month, the whole months between, the part of d's month. (R(d) asks
 * for it per period synced, over a whole term: month by month, this was
 * quadratic in a contract's length.) */
static __int128 month_units(const rs_engine_t *e, rs_date_t a, rs_date_t d)
{
    if (a > d)
        return 0;
    int ya, ma, da, yd, md, dd;
    rs_date_to_ymd(a, &ya, &ma, &da);
    rs_date_to_ymd(d, &yd, &md, &dd);
    int pa = ya * 12 + ma - 1, pd = yd * 12 + md - 1;
    int dim_a = rs_days_in_month(ya, ma);
    if (pa == pd)
        return month_piece(e, da, dd, dim_a);
    return month_piece(e, da, dim_a, dim_a) + (__int128)(pd - pa - 1) * L_MONTH +
           month_piece(e, 1, dd, rs_days_in_month(yd, md));
}

/* The share of a segment's spread earned through the end of day d. */
static rs_money_t seg_spread_at(const rs_engine_t *e, const rs_seg_t *s, rs_date_t d)
{
    if (s->to < s->from || d < s->from || s->spread == 0)
        return 0;
    if (d >= s->to)
        return s->spread;
    if (s->method == RS_METHOD_RATABLE_MONTHLY) {
        __int128 num = month_units(e, s->from, d), den = month_units(e, s->from, s->to);
        return (rs_money_t)rs_div_round((__int128)s->spread * num, den);
    }
    __int128 elapsed = d - s->from + 1, days = s->to - s->from + 1;
    return (rs_money_t)rs_div_round((__int128)s->spread * elapsed, days);
}

static rs_money_t seg_value(const rs_engine_t *e, const rs_line_t *l, rs_date_t d)
{
    const rs_seg_t *s = NULL;
    for (int i = 0; i < l->nseg && l->segs[i].eff <= d; i++)
        s = &l->segs[i];
    return s ? s->base + seg_spread_at(e, s, d) : 0;
}

static rs_money_t adj_value(const rs_line_t *l, rs_date_t d)
{
    rs_money_t v = 0;
    for (int i = 0; i < l->nadj; i++)
        if (l->adj[i].on <= d)
            v += l->adj[i].amount;
    return v;
}

static const rs_decimal_t *price_at(const rs_line_t *l, rs_date_t d)
{
    const rs_decimal_t *p = l->nuprice ? &l->uprice[0].price : NULL;
    for (int i = 0; i < l->nuprice && l->uprice[i].eff <= d; i++)
        p = &l->uprice[i].price;
    return p;
}

rs_date_t rs_eng_line_last_day(const rs_line_t *l)
{
    return l->ended_on != RS_DATE_NONE && l->ended_on < l->end ? l->ended_on : l->end;
}

/* Value of the usage recorded on days lo..hi (cumulatively rounded). */
rs_money_t rs_eng_usage_value(const rs_contract_t *c, const rs_line_t *l, rs_date_t lo,
                              rs_date_t hi)
{
    __int128 sum = 0;
    for (size_t i = 0; i < l->nusage && l->usage[i].day <= hi; i++) {
        const rs_decimal_t *p = price_at(l, l->usage[i].day);
        if (p && l->usage[i].day >= lo)
            sum += rs_eng_usage_qty(&l->usage[i]) * p->mantissa * rs_pow10(6 - p->scale);
    }
    return (rs_money_t)rs_div_round(sum, rs_pow10(UNIT_SCALE - c->exponent));
}

/* qty x the unit price in force on day, in 10^-12 units: 0, or -1 past 128 bits. */
static int usage_share(const rs_line_t *l, rs_date_t day, __int128 qty, __int128 *out)
{
    const rs_decimal_t *p = price_at(l, day);
    return rs_wide_mul(qty, p ? p->mantissa * rs_pow10(6 - p->scale) : 0, out);
}

void rs_eng_usage_recount(rs_line_t *l)
{
    __int128 sum = 0, v;
    for (size_t i = 0; i < l->nusage; i++)
        if (usage_share(l, l->usage[i].day, rs_eng_usage_qty(&l->usage[i]), &v) ||
            rs_wide_add(sum, v, &sum)) {
            /* beyond 128 bits: no record the engine accepted gets here; as
             * large as it goes, so any more usage is refused */
            sum = (__int128)(~(unsigned __int128)0 >> 1);
            break;
        }
    rs_eng_usage_set_units(l, sum);
}

int rs_eng_usage_total(const rs_contract_t *c, const rs_line_t *l, rs_date_t d, __int128 qty,
                       const rs_decimal_t *bound, rs_money_t *out, __int128 *units)
{
    __int128 sum = 0, maxp = 0, v;
    if (bound == NULL) {
        if (usage_share(l, d, qty, &v) || rs_wide_add(rs_eng_usage_units(l), v, &sum))
            return -1;
    } else {
        maxp = bound->mantissa * rs_pow10(6 - bound->scale);
        for (int i = 0; i < l->nuprice; i++) {
            __int128 p = l->uprice[i].price.mantissa * rs_pow10(6 - l->uprice[i].price.scale);
            maxp = p > maxp ? p : maxp;
        }
        for (size_t i = 0; i < l->nusage; i++)
            if (rs_wide_mul(rs_eng_usage_qty(&l->usage[i]), maxp, &v) ||
                rs_wide_add(sum, v, &sum))
                return -1;
    }
    if (units != NULL)
        *units = sum;
    return rs_money_narrow(rs_div_round(sum, rs_pow10(UNIT_SCALE - c->exponent)), out);
}

/* Usage recognized through day d: only what was recorded within the line's
 * current service (start..last day). Usage accepted while the service ran
 * and then left outside it by a later cancellation or amendment is not
 * revenue (it is reported, see rs_engine_line_get's usage_outside) — the
 * same outcome as when the cancellation arrives first and the usage is
 * rejected, so the result does not depend on arrival order. */
rs_money_t rs_eng_usage_through(const rs_contract_t *c, const rs_line_t *l, rs_date_t d)
{
    rs_date_t last = rs_eng_line_last_day(l);
    return rs_eng_usage_value(c, l, l->start, d < last ? d : last);
}

/* The sums of qty x price (10^-12 units) of the usage days in [lo, hi[k]]
 * for k < n, in one pass over the days: each is the integer sum
 * rs_eng_usage_value takes (days in order, the price in force each day),
 * rounded alike. */
static void usage_values(const rs_contract_t *c, const rs_line_t *l, rs_date_t lo,
                         const rs_date_t *hi, int n, rs_money_t *out)
{
    __int128 sum[3] = {0, 0, 0};
    int open = n; /* sums still taking days: each stops at its first day past hi[k] */
    int done[3] = {0, 0, 0};
    for (size_t i = 0; i < l->nusage && open > 0; i++) {
        rs_date_t day = l->usage[i].day;
        __int128 v = 0;
        int priced = 0;
        for (int k = 0; k < n; k++) {
            if (done[k])
                continue;
            if (day > hi[k]) {
                done[k] = 1;
                open--;
                continue;
            }
            if (!priced) {
                const rs_decimal_t *p = price_at(l, day);
                if (p != NULL && day >= lo)
                    v = rs_eng_usage_qty(&l->usage[i]) * p->mantissa * rs_pow10(6 - p->scale);
                priced = 1;
            }
            sum[k] += v;
        }
    }
    __int128 unit = rs_pow10(UNIT_SCALE - c->exponent);
    for (int k = 0; k < n; k++)
        out[k] = (rs_money_t)rs_div_round(sum[k], unit);
}

void rs_eng_line_R2(const rs_engine_t *e, const rs_contract_t *c, const rs_line_t *l,
                    rs_date_t x, rs_date_t y, rs_money_t *rx, rs_money_t *ry)
{
    if (l->method == RS_METHOD_USAGE) {
        /* rs_eng_line_R's usage_through(x), usage_through(y) and, from the
         * last day on, the total through it: one pass */
        rs_date_t last = rs_eng_line_last_day(l), hi[3];
        rs_money_t u[3];
        hi[0] = x < last ? x : last;
        hi[1] = y < last ? y : last;
        hi[2] = last;
        /* the total (u[2]) whenever either end is past the last day (x <= y,
         * so y's test alone would do; both keep u[2] set wherever it is read) */
        usage_values(c, l, l->start, hi, x >= last || y >= last ? 3 : 2, u);
        rs_money_t r[2] = {u[0], u[1]};
        rs_date_t d[2] = {x, y};
        for (int k = 0; k < 2; k++) {
            if (d[k] >= last && l->price > u[2])
                r[k] += l->price - u[2];
            r[k] += adj_value(l, d[k]);
        }
        *rx = r[0];
        *ry = r[1];
        return;
    }
    if (l->method == RS_METHOD_MILESTONE) {
        *rx = rs_eng_line_R(e, c, l, x);
        *ry = rs_eng_line_R(e, c, l, y);
        return;
    }
    /* seg_value at x and y: when both fall in one monthly segment's spread,
     * its whole length (month_units(from, to)) is worked out once */
    const rs_seg_t *sx = NULL, *sy = NULL;
    int xopen = 1; /* seg_value(x) stops at the first segment after x */
    for (int i = 0; i < l->nseg && l->segs[i].eff <= y; i++) {
        if (xopen && l->segs[i].eff <= x)
            sx = &l->segs[i];
        else
            xopen = 0;
        sy = &l->segs[i];
    }
    if (sx != NULL && sx == sy && sx->method == RS_METHOD_RATABLE_MONTHLY && sx->spread != 0 &&
        sx->to >= sx->from && x >= sx->from && y < sx->to) {
        __int128 den = month_units(e, sx->from, sx->to);
        *rx = sx->base +
              (rs_money_t)rs_div_round((__int128)sx->spread * month_units(e, sx->from, x), den);
        *ry = sx->base +
              (rs_money_t)rs_div_round((__int128)sx->spread * month_units(e, sx->from, y), den);
    } else {
        *rx = sx ? sx->base + seg_spread_at(e, sx, x) : 0;
        *ry = sy ? sy->base + seg_spread_at(e, sy, y) : 0;
    }
    rs_money_t ax = 0, ay = 0;
    for (int i = 0; i < l->nadj; i++) {
        if (l->adj[i].on <= x)
            ax += l->adj[i].amount;
        if (l->adj[i].on <= y)
            ay += l->adj[i].amount;
    }
    *rx += ax;
    *ry += ay;
}

rs_money_t rs_eng_line_R(const rs_engine_t *e, const rs_contract_t *c, const rs_line_t *l,
                         rs_date_t d)
{
    switch (l->method) {
    case RS_METHOD_USAGE: {
        rs_money_t u = rs_eng_usage_through(c, l, d);
        rs_date_t last = rs_eng_line_last_day(l);
        if (d >= last) {
            rs_money_t total = rs_eng_usage_through(c, l, last);
            if (l->price > total)
                u += l->price - total;
        }
        return u + adj_value(l, d);
    }
    case RS_METHOD_MILESTONE: {
        rs_money_t r = 0;
        for (int i = 0; i < l->nms; i++)
            if (l->ms[i].completed_on != RS_DATE_NONE && l->ms[i].completed_on <= d)
                r += l->ms[i].amount;
        return r + adj_value(l, d);
    }
    default:
        return seg_value(e, l, d) + adj_value(l, d);
    }
}

/* ---- schedule changes ---- */

/* New terms for a ratable / point-in-time line from E. Segments effective
 * on or after E are superseded. Prospective: what is unrecognized at E plus
 * the change is spread over [max(E, start), end]; catch-up: R jumps at E to
 * what the new terms would have recognized by E - 1. A price below what was
 * recognized is a jump down at E either way. Returns the new segment. */
static rs_seg_t *change_terms(rs_engine_t *e, rs_line_t *l, int id, rs_date_t E,
                              rs_treatment_t treatment, rs_method_t method, rs_date_t start,
                              rs_date_t end, rs_money_t price, rs_account_t jump_account,
                              rs_eng_str_t rule, rs_eng_str_t source)
{
    rs_money_t r0 = seg_value(e, l, E - 1);
    int keep = 0;
    while (keep < l->nseg && l->segs[keep].eff < E)
        keep++;
    l->nseg = keep;
    if (rs_eng_growi((void **)&l->segs, &l->capseg, l->nseg + 1, sizeof(rs_seg_t)))
        return NULL;
    rs_seg_t *s = &l->segs[l->nseg++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->eff = E;
    s->method = method;
    s->jump_account = jump_account;
    s->jump_rule = rule;
    s->source = source;
    s->to = method == RS_METHOD_POINT_IN_TIME ? start : end;
    if (treatment == RS_TREATMENT_CATCH_UP) {
        s->from = start;
        s->base = 0;
        s->spread = price;
        s->jump = seg_spread_at(e, s, E - 1) - r0;
    } else {
        s->from = rs_eng_dmax(E, start);
        if (s->to < s->from || price < r0) {
            s->base = price; /* nothing left to spread: the rest, up or down, at E */
            s->spread = 0;
            s->jump = price - r0;
        } else {
            s->base = r0;
            s->spread = price - r0;
        }
    }
    if (s->from > s->to && s->spread != 0) {
        s->base = price;
        s->spread = 0;
        s->jump = price - r0;
    }
    return s;
}

static rs_adj_t *add_adj(rs_line_t *l, int id, rs_date_t on, rs_money_t amount,
                         rs_account_t acct, rs_eng_str_t rule, rs_eng_str_t source)
{
    if (id > RS_ENG_COMP_MAX) /* component ids must fit rs_posted_t */
        return NULL;
    if (rs_eng_growi((void **)&l->adj, &l->capadj, l->nadj + 1, sizeof(rs_adj_t)))
        return NULL;
    rs_adj_t *a = &l->adj[l->nadj++];
    memset(a, 0, sizeof(*a));
    a->id = id;
    a->on = on;
    a->amount = amount;
    a->account = acct;
    a->rule = rule;
    a->source = source;
    return a;
}

/* Reprice a milestone line to `price` from C. What the line keeps of its
 * past is the milestones completed before C plus its adjustments (earlier
 * repricings, a forfeit): prospective keeps it, catch-up scales it by the
 * new price over the old; either way never above the new price (a price
 * below what was recognized is reversed at C), and all of the price when
 * no open milestone is left to carry the rest. The difference is an
 * adjustment at C; the open milestones share the rest, so R ends at the
 * price. Returns the jump (0 if none) and its component via *comp. */
int rs_eng_milestone_reprice(rs_line_t *l, rs_money_t price, rs_date_t C, rs_treatment_t t,
                             rs_account_t acct, rs_eng_str_t rule, rs_eng_str_t source,
                             rs_money_t *jump, int *comp)
{
    rs_money_t kept = 0, open_w = 0;
    *jump = 0;
    *comp = 0;
    for (int k = 0; k < l->nms; k++) {
        if (l->ms[k].completed_on != RS_DATE_NONE && l->ms[k].completed_on < C)
            kept += l->ms[k].amount;
        else
            open_w += l->ms[k].amount;
    }
    for (int i = 0; i < l->nadj; i++)
        kept += l->adj[i].amount;
    rs_money_t target = kept;
    if (open_w <= 0)
        target = price; /* nothing left to deliver: the whole price at C */
    else if (t == RS_TREATMENT_CATCH_UP && kept + open_w > 0)
        target = (rs_money_t)rs_div_round((__int128)price * kept, kept + open_w);
    if (target > price)
        target = price;
    rs_money_t rest = price - target;
    /* spread `rest` over the open milestones in proportion to their amounts */
    __int128 cum = 0;
    rs_money_t prev = 0;
    for (int k = 0; k < l->nms; k++) {
        if (l->ms[k].completed_on != RS_DATE_NONE && l->ms[k].completed_on < C)
            continue;
        cum += l->ms[k].amount;
        rs_money_t now =
            open_w > 0 ? (rs_money_t)rs_div_round((__int128)rest * cum, open_w) : 0;
        l->ms[k].amount = now - prev;
        prev = now;
    }
    if (target != kept) {
        rs_adj_t *a = add_adj(l, ++l->next_comp, C, target - kept, acct, rule, source);
        if (a == NULL)
            return -1;
        *jump = a->amount;
        *comp = a->id;
    }
    l->price = price;
    return 0;
}

/* The price effect of the credits (credit notes, write-offs) a milestone
 * line has had: kept as DELTA changes (only recorded: a milestone line is
 * not rebuilt from its changes), so an amendment's new price carries them
 * over as the rebuild of a ratable line does. */
rs_money_t rs_eng_milestone_credits(const rs_line_t *l)
{
    rs_money_t sum = 0;
    for (int i = 0; i < l->nchg; i++)
        if (l->chg[i].kind == RS_CH_DELTA)
            sum += l->chg[i].amount;
    return sum;
}

static int cmp_change(const rs_contract_t *c, const rs_change_t *x, const rs_change_t *y)
{
    if (x->booking != y->booking)
        return x->booking ? -1 : 1;
    if (x->on != y->on)
        return x->on < y->on ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->source != y->source) {
        int r = strcmp(rs_eng_str(c, x->source), rs_eng_str(c, y->source));
        if (r)
            return r;
    }
    return (x->id > y->id) - (x->id < y->id);
}

/* Sort a line's changes by cmp_change: insertion sort, as the comparison
 * needs the contract (its strings) and the changes are few and, but for the
 * one just added, already in order. (id is unique per line, so the order is
 * total and any correct sort gives the same result.) */
static void sort_changes(const rs_contract_t *c, rs_line_t *l)
{
    for (int i = 1; i < l->nchg; i++) {
        if (cmp_change(c, &l->chg[i - 1], &l->chg[i]) <= 0)
            continue;
        rs_change_t t = l->chg[i];
        int j = i;
        while (j > 0 && cmp_change(c, &l->chg[j - 1], &t) > 0) {
            l->chg[j] = l->chg[j - 1];
            j--;
        }
        l->chg[j] = t;
    }
}

/* What the line had billed by the end of day d (invoices less voids). */
static rs_money_t billing_through(const rs_line_t *l, rs_date_t d)
{
    rs_money_t b = 0;
    for (int i = 0; i < l->nbill; i++)
        if (l->bill[i].on <= d)
            b += l->bill[i].amount;
    return b;
}

/* Rebuild a ratable or usage line's schedule from its changes in date order
 * (see rs_change_t). Terms set the price; a credit first consumes what was
 * billed above the price (after a cancellation, say), then lowers the price,
 * and the lowering carries over later terms; a stop ends the service. All of
 * it is computed from dated records, never from arrival order. */
static int rebuild_terms(rs_engine_t *e, rs_contract_t *c, rs_line_t *l);

int rs_eng_rebuild_line(rs_engine_t *e, rs_contract_t *c, rs_line_t *l)
{
    int rc = rebuild_terms(e, c, l);
    if (rc == 0 && l->method == RS_METHOD_USAGE)
        rs_eng_usage_recount(l); /* the unit prices may have changed */
    return rc;
}

static int rebuild_terms(rs_engine_t *e, rs_contract_t *c, rs_line_t *l)
{
    sort_changes(c, l);
    l->nseg = 0;
    l->nadj = 0;
    l->nuprice = 0;
    l->ended_on = RS_DATE_NONE;
    rs_money_t credits = 0;  /* price effect of credits so far */
    rs_money_t credited = 0; /* billing effect of credits so far (<= 0) */
    int have_terms = 0;      /* a credit before the line's first terms waits in `credits` */
    l->price = 0;
    int usage = l->method == RS_METHOD_USAGE;
    for (int i = 0; i < l->nchg; i++) {
        const rs_change_t *ch = &l->chg[i];
        rs_date_t E = ch->booking ? ch->start : ch->on;
        if (ch->kind == RS_CH_TERMS) {
            have_terms = 1;
            l->method = ch->method;
            l->start = ch->start;
            l->end = ch->end;
            l->ended_on = RS_DATE_NONE;
            if (usage) {
                int keep = 0;
                while (keep < l->nuprice && l->uprice[keep].eff < E)
                    keep++;
                l->nuprice = keep;
                if (rs_eng_growi((void **)&l->uprice, &l->capuprice, keep + 1,
                                 sizeof(rs_uprice_t)))
                    return -1;
                l->uprice[l->nuprice].eff = E;
                l->uprice[l->nuprice].price = ch->unit_price;
                l->nuprice++;
                l->price = ch->amount;
                continue;
            }
            l->price = ch->amount + credits;
            if (change_terms(e, l, ch->id, E, ch->treatment, ch->method, ch->start, ch->end,
                             l->price, RS_ACCT_REVENUE, ch->rule, ch->source) == NULL)
                return -1;
        } else if (ch->kind == RS_CH_DELTA) {
            /* usage revenue has no price to compare with (and what usage has
             * arrived must not matter): a credit reverses its full amount */
            rs_money_t ref = billing_through(l, E) + credited;
            rs_money_t excess = !usage && ref > l->price ? ref - l->price : 0;
            rs_money_t cut = -ch->amount - excess;
            rs_money_t delta = cut > 0 ? -cut : 0;
            credited += ch->amount;
            credits += delta;
            if (!have_terms)
                continue;
            if (usage) {
                if (add_adj(l, ch->id, E, delta, ch->account, ch->rule, ch->source) == NULL)
                    return -1;
                continue;
            }
            l->price += delta;
            if (change_terms(e, l, ch->id, E, ch->treatment, l->method, l->start,
                             rs_eng_line_last_day(l), l->price, ch->account, ch->rule,
                             ch->source) == NULL)
                return -1;
        } else { /* RS_CH_STOP */
            if (l->ended_on != RS_DATE_NONE && l->ended_on < E)
                continue;
            rs_money_t r0 = rs_eng_line_R(e, c, l, E - 1);
            rs_money_t billed = billing_through(l, E - 1) + credited;
            rs_money_t keep = ch->forfeit && billed > r0 ? billed : r0;
            l->ended_on = E - 1;
            if (usage) {
                l->price = 0; /* a minimum commitment is waived with the service */
                if (keep > r0 && add_adj(l, ch->id, E, keep - r0, RS_ACCT_REVENUE,
                                         RS_ENG_RULE_FORFEIT, ch->source) == NULL)
                    return -1;
                continue;
            }
            if (change_terms(e, l, ch->id, E, RS_TREATMENT_PROSPECTIVE, l->method, l->start,
                             E - 1, keep, RS_ACCT_REVENUE,
                             keep > r0 ? RS_ENG_RULE_FORFEIT : RS_ENG_RULE_CANCELLATION,
                             ch->source) == NULL)
                return -1;
            l->price = keep;
        }
    }
    return 0;
}

/* Append a change to a ratable or usage line (the caller rebuilds). */
rs_change_t *rs_eng_add_change(rs_engine_t *e, rs_contract_t *c, int li, rs_change_kind_t kind,
                               rs_date_t on, rs_eng_str_t rule, rs_eng_str_t source)
{
    (void)e;
    rs_line_t *l = &c->lines[li];
    if (l->next_comp >= RS_ENG_COMP_MAX || /* component ids must fit rs_posted_t */
        rs_eng_growi((void **)&l->chg, &l->capchg, l->nchg + 1, sizeof(rs_change_t)))
        return NULL;
    rs_change_t *ch = &l->chg[l->nchg++];
    memset(ch, 0, sizeof(*ch));
    ch->id = ++l->next_comp;
    ch->kind = kind;
    ch->on = on;
    ch->account = RS_ACCT_REVENUE;
    ch->rule = rule;
    ch->source = source;
    return ch;
}

/* The jump of component `id` after a rebuild (segment or adjustment). */
static rs_money_t jump_of(const rs_line_t *l, int id)
{
    for (int i = 0; i < l->nseg; i++)
        if (l->segs[i].id == id)
            return l->segs[i].jump;
    for (int i = 0; i < l->nadj; i++)
        if (l->adj[i].id == id)
            return l->adj[i].amount;
    return 0;
}

/* Change a line's transaction price by delta from C. Returns the jump at C
 * (the immediate revenue effect) and its component. */
int rs_eng_price_change(rs_engine_t *e, rs_contract_t *c, int li, rs_money_t delta, rs_date_t C,
                        rs_treatment_t t, rs_account_t acct, rs_eng_str_t rule,
                        rs_eng_str_t source, rs_money_t *jump, int *comp)
{
    rs_line_t *l = &c->lines[li];
    *jump = 0;
    *comp = 0;
    rs_eng_mark_dirty(c, rs_period_of(C));
    if (delta == 0)
        return 0;
    if (l->method == RS_METHOD_USAGE)
        t = RS_TREATMENT_CATCH_UP; /* usage revenue is not spread: reversed at C */
    /* a milestone line only records it (rs_eng_milestone_credits) */
    rs_change_t *ch = rs_eng_add_change(e, c, li, RS_CH_DELTA, C, rule, source);
    if (ch == NULL)
        return -1;
    ch->treatment = t;
    ch->amount = delta;
    ch->account = acct;
    if (l->method == RS_METHOD_MILESTONE)
        return rs_eng_milestone_reprice(l, l->price + delta, C, t, acct, rule, source, jump,
                                        comp);
    int id = ch->id;
    if (rs_eng_rebuild_line(e, c, l))
        return -1;
    *jump = jump_of(l, id);
    *comp = *jump ? id : 0;
    return 0;
}

/* The service of a line ends the day before E (cancellation, or a line left
 * out of an amendment). Forfeit recognizes what was billed but unearned. */
int rs_eng_stop_line(rs_engine_t *e, rs_contract_t *c, int li, rs_date_t E, int forfeit,
                     rs_eng_str_t source)
{
    rs_line_t *l = &c->lines[li];
    if (l->ended_on != RS_DATE_NONE && l->ended_on < E)
        return 0;
    rs_eng_mark_dirty(c, rs_period_of(E));
    rs_period_t old_end = rs_period_of(rs_eng_line_last_day(l));
    if (old_end < c->dirty_from)
        rs_eng_mark_dirty(c, old_end);
    if (l->method == RS_METHOD_MILESTONE) {
        rs_money_t r0 = rs_eng_line_R(e, c, l, E - 1), keep = r0;
        if (forfeit && l->billed > keep)
            keep = l->billed;
        for (int k = 0; k < l->nms; k++)
            if (l->ms[k].completed_on == RS_DATE_NONE || l->ms[k].completed_on >= E)
                l->ms[k].amount = 0;
        l->ended_on = E - 1;
        if (keep > r0 && add_adj(l, ++l->next_comp, E, keep - r0, RS_ACCT_REVENUE,
                                 RS_ENG_RULE_FORFEIT, source) == NULL)
            return -1;
        l->price = keep;
        return 0;
    }
    rs_change_t *ch =
        rs_eng_add_change(e, c, li, RS_CH_STOP, E, RS_ENG_RULE_CANCELLATION, source);
    if (ch == NULL)
        return -1;
    ch->forfeit = forfeit;
    return rs_eng_rebuild_line(e, c, l);
}
