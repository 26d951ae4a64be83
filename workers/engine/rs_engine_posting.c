/*
 * rs_engine_posting.c — journal entries: building one (postings netted per
 * account, its sources, the period it posts in), emitting it to the sink,
 * and bringing a contract's recognition up to its horizon by posting what R
 * says less what was already posted.
 *
 * Invariants (I3, I4, I5 and I7 of rs_engine.c):
 *   - A line's posted[] holds, per (service period, component), the revenue
 *     posted; a sync posts desired - posted and records it, so a second sync
 *     with nothing changed posts nothing.
 *   - A revenue_contra component (a credit's or write-off's catch-up) is
 *     posted when it arises, even in a month after the horizon, and every
 *     sync of a changed contract keeps such components equal to the
 *     schedule's (sync_ahead); other components wait for the horizon.
 *   - An entry posts in the first open period at or after its natural date,
 *     never before the contract's frontier, and its posted_on lies in that
 *     period.
 *   - rs_eng_post_revenue() and rs_eng_post_billing() keep, per line,
 *     deferred >= 0, unbilled >= 0, at most one of them non-zero, and
 *     deferred - unbilled = billed - recognized.
 *   - A sync leaves out a line that cannot post in the periods it covers
 *     (line_may_post) and asks R for both ends of a period at once
 *     (rs_eng_line_R2): the same entries, in the same order. Built with
 *     -DRS_ENG_SELFCHECK, every left-out line is synced anyway and R2 is
 *     checked against R, aborting on any difference (bench/README.md,
 *     h17-engine: how the scenario and simulation tests were run so).
 *   - An entry without a non-zero posting or a measure effect is dropped;
 *     every other one takes the contract's next seq and the id
 *     "<contract_id>#<seq>", and each of its postings the policy's account
 *     code for its role and the entry's product.
 */
#include "rs_engine.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

/* Copy src into a field of cap bytes, truncated like snprintf("%s") (the
 * entry's text fields are filled per entry: this is on replay's hot path). */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "<id>#<seq>" into a field of cap bytes, truncated like snprintf. */
static void format_entry_id(char *dst, size_t cap, const char *id, unsigned long long seq)
{
    char digits[24];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq != 0);
    size_t n = strnlen(id, cap - 1);
    memcpy(dst, id, n);
    if (n < cap - 1)
        dst[n++] = '#';
    while (nd > 0 && n < cap - 1)
        dst[n++] = digits[--nd];
    dst[n] = '\0';
}

/* The first open period at or after p. */
static rs_period_t first_open(const rs_engine_t *e, rs_period_t p)
{
    return rs_engine_period_closed(e, p) ? e->closed_through + 1 : p;
}

void rs_eng_entry_begin(rs_entry_ctx_t *x, rs_engine_t *e, rs_contract_t *c, int line,
                        rs_entry_kind_t kind, const char *rule, rs_date_t natural,
                        rs_period_t service_period, const char *document)
{
    x->e = e;
    x->c = c;
    rs_entry_t *en = &x->en;
    rs_period_t pp = first_open(e, rs_period_of(natural));
    if (c->frontier != RS_PERIOD_NONE && pp < c->frontier)
        pp = first_open(e, c->frontier);
    if (e->sink == NULL) { /* nobody reads it: only what emitting it changes */
        en->kind = kind;
        en->period = pp;
        en->n_postings = en->n_sources = 0;
        en->source_count = 0;
        en->billed = en->recognized = en->received = 0;
        en->product[0] = '\0';
        return;
    }
    /* all but the source ids (1 KiB of the entry's 2.4): a source is read
     * only below n_sources, and rs_eng_entry_source writes each whole */
    memset(en, 0, offsetof(rs_entry_t, sources));
    memset(&en->source_count, 0, sizeof(*en) - offsetof(rs_entry_t, source_count));
    en->kind = kind;
    copy_text(en->rule, sizeof(en->rule), rule);
    rs_date_t lo = rs_period_first_day(pp), hi = rs_period_last_day(pp);
    en->posted_on = natural < lo ? lo : natural > hi ? hi : natural;
    en->period = pp;
    en->service_period = service_period == RS_PERIOD_NONE ? pp : service_period;
    rs_eng_copy_id(en->contract_id, c->contract_id);
    rs_eng_copy_id(en->customer_id, rs_eng_str(c, c->customer_id));
    if (line >= 0) {
        rs_eng_copy_id(en->line_id, rs_eng_str(c, c->lines[line].line_id));
        copy_text(en->product, sizeof(en->product), c->lines[line].product);
    }
    rs_eng_copy_id(en->document_id, document ? document : "");
    memcpy(en->currency, c->currency, sizeof(en->currency));
    en->exponent = c->exponent;
}

/* Debit v (credit when negative), netted with the account's posting so far. */
void rs_eng_entry_dr(rs_entry_ctx_t *x, rs_account_t a, rs_money_t v)
{
    if (v == 0)
        return;
    rs_entry_t *en = &x->en;
    rs_posting_t *p = NULL;
    for (int i = 0; i < en->n_postings; i++)
        if (en->postings[i].account == a)
            p = &en->postings[i];
    if (p == NULL) {
        p = &en->postings[en->n_postings++];
        p->account = a;
        p->debit = p->credit = 0;
    }
    rs_money_t net = p->debit - p->credit + v;
    p->debit = net > 0 ? net : 0;
    p->credit = net < 0 ? -net : 0;
}

void rs_eng_entry_cr(rs_entry_ctx_t *x, rs_account_t a, rs_money_t v)
{
    rs_eng_entry_dr(x, a, -v);
}

void rs_eng_entry_source(rs_entry_ctx_t *x, const char *id)
{
    if (id == NULL || *id == '\0' || x->e->sink == NULL)
        return;
    for (int i = 0; i < x->en.n_sources; i++)
        if (strcmp(x->en.sources[i], id) == 0)
            return;
    x->en.source_count++;
    if (x->en.n_sources < RS_ENTRY_MAX_SOURCES)
        rs_eng_copy_id(x->en.sources[x->en.n_sources++], id);
}

void rs_eng_entry_emit(rs_entry_ctx_t *x)
{
    rs_entry_t *en = &x->en;
    int k = 0;
    for (int i = 0; i < en->n_postings; i++)
        if (en->postings[i].debit != 0 || en->postings[i].credit != 0)
            en->postings[k++] = en->postings[i];
    en->n_postings = k;
    if (k == 0 && en->billed == 0 && en->recognized == 0 && en->received == 0)
        return;
    rs_eng_mark_changed(x->e, x->c);
    en->seq = ++x->c->seq;
    if (x->c->frontier == RS_PERIOD_NONE || en->period > x->c->frontier)
        x->c->frontier = en->period;
    x->e->stats.entries++;
    if (x->e->sink == NULL) /* nobody reads it: its state effects are above */
        return;
    for (int i = 0; i < k; i++) /* the codes are the policy's, as every report prints them */
        copy_text(en->postings[i].code, sizeof(en->postings[i].code),
                  rs_policy_account_code(&x->e->policy, en->postings[i].account, en->product));
    format_entry_id(en->entry_id, sizeof(en->entry_id), x->c->contract_id,
                    (unsigned long long)en->seq);
    x->e->sink(x->e->sink_opaque, en);
}

/* Revenue of d (signed) for a line: Cr `acct`, Dr deferred then unbilled
 * (reversed when negative), keeping I5. */
void rs_eng_post_revenue(rs_entry_ctx_t *x, rs_line_t *l, rs_account_t acct, rs_money_t d)
{
    if (d > 0) {
        rs_money_t from_def = d < l->deferred ? d : l->deferred;
        rs_eng_entry_dr(x, RS_ACCT_DEFERRED_REVENUE, from_def);
        rs_eng_entry_dr(x, RS_ACCT_UNBILLED_RECEIVABLE, d - from_def);
        rs_eng_entry_cr(x, acct, d);
        l->deferred -= from_def;
        l->unbilled += d - from_def;
    } else if (d < 0) {
        rs_money_t a = -d;
        rs_money_t to_unb = a < l->unbilled ? a : l->unbilled;
        rs_eng_entry_dr(x, acct, a);
        rs_eng_entry_cr(x, RS_ACCT_UNBILLED_RECEIVABLE, to_unb);
        rs_eng_entry_cr(x, RS_ACCT_DEFERRED_REVENUE, a - to_unb);
        l->unbilled -= to_unb;
        l->deferred += a - to_unb;
    }
    l->recognized += d;
    x->en.recognized += d;
}

/* Billing of d (signed) for a line: Cr unbilled then deferred (positive), or
 * Dr deferred then unbilled (negative). The counter-posting is the caller's. */
void rs_eng_post_billing(rs_entry_ctx_t *x, rs_line_t *l, rs_money_t d)
{
    if (d > 0) {
        rs_money_t to_unb = d < l->unbilled ? d : l->unbilled;
        rs_eng_entry_cr(x, RS_ACCT_UNBILLED_RECEIVABLE, to_unb);
        rs_eng_entry_cr(x, RS_ACCT_DEFERRED_REVENUE, d - to_unb);
        l->unbilled -= to_unb;
        l->deferred += d - to_unb;
    } else if (d < 0) {
        rs_money_t a = -d;
        rs_money_t from_def = a < l->deferred ? a : l->deferred;
        rs_eng_entry_dr(x, RS_ACCT_DEFERRED_REVENUE, from_def);
        rs_eng_entry_dr(x, RS_ACCT_UNBILLED_RECEIVABLE, a - from_def);
        l->deferred -= from_def;
        l->unbilled += a - from_def;
    }
    l->billed += d;
    x->en.billed += d;
}

static rs_posted_t *posted_find(rs_line_t *l, rs_period_t sp, int comp)
{
    for (size_t i = 0; i < l->nposted; i++)
        if (l->posted[i].sp == sp && l->posted[i].comp == comp)
            return &l->posted[i];
    return NULL;
}

/* rs_eng_posted_add with the cell already looked up (p: posted_find's answer). */
static int posted_add_at(rs_line_t *l, rs_posted_t *p, rs_period_t sp, int comp,
                         rs_account_t acct, rs_money_t d)
{
    if (p == NULL) {
        if (comp < 0 || comp > RS_ENG_COMP_MAX || (unsigned int)acct >= RS_ACCT__COUNT)
            return -1; /* does not fit rs_posted_t (never so for the engine's own) */
        /* first: room for one cell per month of service (the usual count),
         * so a year's line takes 12 cells, not a doubling's 16 */
        size_t need = l->nposted + 1;
        if (l->capposted == 0 && l->start != RS_DATE_NONE && l->end != RS_DATE_NONE &&
            l->start <= l->end) {
            rs_period_t a = rs_period_of(l->start), z = rs_period_of(rs_eng_line_last_day(l));
            if (z >= a && z - a < RS_ENG_POSTED_RESERVE)
                need = (size_t)(z - a) + 1;
        }
        if (rs_eng_grow32((void **)&l->posted, &l->capposted, need, sizeof(rs_posted_t)))
            return -1;
        p = &l->posted[l->nposted++];
        p->sp = sp;
        p->comp = comp;
        p->account = (unsigned int)acct;
        p->amount = 0;
    }
    p->amount += d;
    return 0;
}

int rs_eng_posted_add(rs_line_t *l, rs_period_t sp, int comp, rs_account_t acct, rs_money_t d)
{
    return posted_add_at(l, posted_find(l, sp, comp), sp, comp, acct, d);
}

static rs_date_t line_first_day(const rs_line_t *l)
{
    rs_date_t f = l->start;
    for (int i = 0; i < l->nseg; i++)
        if (l->segs[i].from < f)
            f = l->segs[i].from;
    for (int i = 0; i < l->nms; i++)
        if (l->ms[i].completed_on != RS_DATE_NONE && l->ms[i].completed_on < f)
            f = l->ms[i].completed_on;
    for (int i = 0; i < l->nadj; i++)
        if (l->adj[i].on < f)
            f = l->adj[i].on;
    return f;
}

/* The first service period a line has anything in (schedule or postings). */
static rs_period_t line_first_period(const rs_line_t *l)
{
    rs_period_t first = rs_period_of(line_first_day(l));
    for (size_t i = 0; i < l->nposted; i++)
        if (l->posted[i].sp < first)
            first = l->posted[i].sp;
    return first;
}

/* The days of one service period: a date d is in it iff a <= d <= b (what
 * rs_period_of(d) == sp says, without converting d to a calendar date: the
 * sync asks it for every segment, adjustment and posted cell of a line). */
typedef struct sp_days {
    rs_period_t sp;
    rs_date_t a, b;
} sp_days_t;

static sp_days_t sp_days(rs_period_t sp)
{
    sp_days_t p = {sp, rs_period_first_day(sp), 0};
    p.b = rs_period_first_day(sp + 1) - 1; /* rs_period_last_day */
    return p;
}

static int in_sp(const sp_days_t *p, rs_date_t d)
{
    return d >= p->a && d <= p->b;
}

/* Sources of a schedule entry for service period p. */
static void schedule_sources(rs_entry_ctx_t *x, const rs_line_t *l, const sp_days_t *p)
{
    const rs_contract_t *c = x->c;
    if (x->e->sink == NULL) /* nobody reads the entry */
        return;
    rs_eng_entry_source(x, rs_eng_str(c, l->terms_source));
    rs_date_t a = p->a, b = p->b;
    for (int i = 0; i < l->nseg; i++)
        if (l->segs[i].source != 0 && l->segs[i].eff <= b)
            rs_eng_entry_source(x, rs_eng_str(c, l->segs[i].source));
    for (int i = 0; i < l->nms; i++)
        if (l->ms[i].completed_on != RS_DATE_NONE && in_sp(p, l->ms[i].completed_on))
            rs_eng_entry_source(x, rs_eng_str(c, l->ms[i].source));
    if (l->method == RS_METHOD_USAGE)
        for (size_t i = 0; i < l->nusage; i++)
            if (l->usage[i].day >= a && l->usage[i].day <= b)
                x->en.source_count += l->usage[i].count;
}

/* Post desired - posted for one component of a line in service period sp. */
static int post_component(rs_engine_t *e, rs_contract_t *c, int li, const sp_days_t *sd,
                          int comp, rs_money_t desired, rs_account_t acct, const char *rule,
                          const char *source, rs_date_t natural)
{
    rs_line_t *l = &c->lines[li];
    rs_period_t sp = sd->sp;
    rs_posted_t *p = posted_find(l, sp, comp);
    rs_money_t delta = desired - (p ? p->amount : 0);
    if (delta == 0)
        return 0;
    if (p)
        acct = (rs_account_t)p->account;
    rs_entry_ctx_t x;
    rs_eng_entry_begin(&x, e, c, li, RS_ENTRY_RECOGNITION, rule, natural, sp, NULL);
    if (comp == 0)
        schedule_sources(&x, l, sd);
    else
        rs_eng_entry_source(&x, source);
    rs_eng_post_revenue(&x, l, acct, delta);
    if (posted_add_at(l, p, sp, comp, acct, delta))
        return -1;
    rs_eng_entry_emit(&x);
    return 0;
}

static int comp_is_current(const rs_line_t *l, int comp, const sp_days_t *sd)
{
    for (int k = 0; k < l->nseg; k++)
        if (l->segs[k].id == comp && l->segs[k].jump != 0 && in_sp(sd, l->segs[k].eff))
            return 1;
    for (int k = 0; k < l->nadj; k++)
        if (l->adj[k].id == comp && in_sp(sd, l->adj[k].on))
            return 1;
    return 0;
}

/* What component 0 (the regular schedule) of a line is to have posted for
 * service period sp: the period's R less the jumps and adjustments dated in
 * it, which post as their own components.
 *
 * While the contract's recognition is suspended (c->suspended_on = S, a
 * reverse_revenue write-off), the schedule stops: R is held at R(S - 1),
 * and jumps and adjustments dated S or later (the write-off's own true-up,
 * later credits) still post as their own components but are not part of
 * the frozen schedule. When the suspension is lifted, R is whole again and
 * the sync posts what the suspended months earned. */
static rs_money_t comp0_desired(const rs_engine_t *e, const rs_contract_t *c,
                                const rs_line_t *l, const sp_days_t *sd)
{
    rs_date_t a = sd->a, b = sd->b;
    rs_date_t S = c->suspended_on;
    rs_money_t others = 0;
    for (int k = 0; k < l->nseg; k++)
        if (l->segs[k].jump != 0 && in_sp(sd, l->segs[k].eff) &&
            (S == RS_DATE_NONE || l->segs[k].eff < S))
            others += l->segs[k].jump;
    for (int k = 0; k < l->nadj; k++)
        if (in_sp(sd, l->adj[k].on) && (S == RS_DATE_NONE || l->adj[k].on < S))
            others += l->adj[k].amount;
    if (S != RS_DATE_NONE) {
        if (b >= S)
            b = S - 1;
        if (a - 1 > b)
            a = b + 1;
    }
    rs_money_t ra, rb;
    if (a - 1 <= b) {
        rs_eng_line_R2(e, c, l, a - 1, b, &ra, &rb);
#ifdef RS_ENG_SELFCHECK
        if (ra != rs_eng_line_R(e, c, l, a - 1) || rb != rs_eng_line_R(e, c, l, b))
            abort();
#endif
    } else {
        ra = rs_eng_line_R(e, c, l, a - 1);
        rb = rs_eng_line_R(e, c, l, b);
    }
    return rb - ra - others;
}

int rs_eng_true_up_posted(rs_entry_ctx_t *x, int li, rs_period_t from, rs_period_t to)
{
    rs_contract_t *c = x->c;
    rs_line_t *l = &c->lines[li];
    rs_money_t sum = 0;
    if (to == RS_PERIOD_NONE)
        return 0;
    for (rs_period_t sp = from; sp <= to; sp++) {
        rs_posted_t *p = posted_find(l, sp, 0);
        if (p == NULL)
            continue;
        sp_days_t sd = sp_days(sp);
        rs_money_t d = comp0_desired(x->e, c, l, &sd) - p->amount;
        if (d >= 0)
            continue;
        p->amount += d; /* now posted, to revenue_contra in x */
        sum += d;
    }
    if (sum != 0)
        rs_eng_post_revenue(x, l, RS_ACCT_REVENUE_CONTRA, sum);
    return 0;
}

/* Post every component of a line in service period sp. `trigger` is the
 * date of the event that caused the sync (RS_DATE_NONE: time passing). */
static int sync_line_period(rs_engine_t *e, rs_contract_t *c, int li, const sp_days_t *sd,
                            rs_date_t trigger)
{
    rs_line_t *l = &c->lines[li];
    rs_period_t sp = sd->sp;
    rs_date_t b = sd->b;
    for (int k = 0; k < l->nseg; k++) {
        const rs_seg_t *s = &l->segs[k];
        if (s->jump == 0 || !in_sp(sd, s->eff))
            continue;
        rs_date_t nat = trigger != RS_DATE_NONE ? rs_eng_dmax(trigger, s->eff) : s->eff;
        if (post_component(e, c, li, sd, s->id, s->jump, s->jump_account,
                           rs_eng_str(c, s->jump_rule), rs_eng_str(c, s->source), nat))
            return -1;
        l = &c->lines[li];
    }
    for (int k = 0; k < l->nadj; k++) {
        const rs_adj_t *d = &l->adj[k];
        if (!in_sp(sd, d->on))
            continue;
        rs_date_t nat = trigger != RS_DATE_NONE ? rs_eng_dmax(trigger, d->on) : d->on;
        if (post_component(e, c, li, sd, d->id, d->amount, d->account, rs_eng_str(c, d->rule),
                           rs_eng_str(c, d->source), nat))
            return -1;
    }
    /* components posted before that no longer exist (superseded) */
    for (size_t i = 0; i < l->nposted; i++) {
        rs_posted_t p = l->posted[i];
        if (p.sp != sp || p.comp == 0 || p.amount == 0 || comp_is_current(l, p.comp, sd))
            continue;
        if (post_component(e, c, li, sd, p.comp, 0, (rs_account_t)p.account, "superseded",
                           rs_eng_str(c, l->terms_source),
                           trigger != RS_DATE_NONE ? rs_eng_dmax(trigger, b) : b))
            return -1;
    }
    rs_date_t nat = trigger != RS_DATE_NONE ? rs_eng_dmax(trigger, b) : b;
    return post_component(e, c, li, sd, 0, comp0_desired(e, c, l, sd), RS_ACCT_REVENUE,
                          rs_method_name(l->method), rs_eng_str(c, l->terms_source), nat);
}

/* Can a sync of any service period from the one starting on day a post
 * anything for line l? 0 when it cannot: no segment, adjustment or
 * milestone is dated on or after a, nothing is posted for a period from
 * a's on, and R(d) is the same for every d >= a - 1. Then every component
 * sync_line_period would post is desired - posted = 0 - 0 (a jump or an
 * adjustment posts only in its own period; component 0 is R(b) - R(a - 1)
 * less those, also when a suspension clamps a and b, as both stay at or
 * after a - 1), so skipping the line posts exactly what syncing it would:
 * nothing. R is constant from the latest of
 *   - every segment's eff, from and to (seg_value takes the last segment
 *     from the latest eff on, and its share of spread is whole from to on,
 *     or 0 throughout when to < from),
 *   - every adjustment's day (adj_value),
 *   - every completed milestone's day (milestone lines),
 *   - a usage line's last day of service (usage counts through it; the
 *     minimum commitment's true-up is fixed from it on).
 * A false 1 only costs the full sync; the test is a few comparisons for a
 * line in service (its segment's `to` is ahead) and one pass over the
 * posted cells for a finished one. */
static int line_may_post(const rs_line_t *l, rs_date_t a, rs_period_t first)
{
    for (int k = 0; k < l->nseg; k++)
        if (l->segs[k].eff >= a || l->segs[k].from >= a || l->segs[k].to >= a)
            return 1;
    for (int k = 0; k < l->nadj; k++)
        if (l->adj[k].on >= a)
            return 1;
    for (int k = 0; k < l->nms; k++)
        if (l->ms[k].completed_on != RS_DATE_NONE && l->ms[k].completed_on >= a)
            return 1;
    if (l->method == RS_METHOD_USAGE && rs_eng_line_last_day(l) >= a)
        return 1;
    for (size_t i = 0; i < l->nposted; i++)
        if (l->posted[i].sp >= first)
            return 1;
    return 0;
}

/* What component `comp` (a jump or an adjustment) now is in service period
 * sp: its amount, rule, source and date; amount 0 and rule "superseded"
 * when it no longer exists there. */
static rs_money_t comp_now(const rs_contract_t *c, const rs_line_t *l, int comp,
                           const sp_days_t *sd, const char **rule, const char **source,
                           rs_date_t *on)
{
    *rule = "superseded";
    *source = rs_eng_str(c, l->terms_source);
    *on = sd->b;
    for (int k = 0; k < l->nseg; k++)
        if (l->segs[k].id == comp && in_sp(sd, l->segs[k].eff)) {
            *rule = rs_eng_str(c, l->segs[k].jump_rule);
            *source = rs_eng_str(c, l->segs[k].source);
            *on = l->segs[k].eff;
            return l->segs[k].jump;
        }
    for (int k = 0; k < l->nadj; k++)
        if (l->adj[k].id == comp && in_sp(sd, l->adj[k].on)) {
            *rule = rs_eng_str(c, l->adj[k].rule);
            *source = rs_eng_str(c, l->adj[k].source);
            *on = l->adj[k].on;
            return l->adj[k].amount;
        }
    return 0;
}

/* Price changes dated after the horizon H: a credit note (or write-off)
 * posts its catch-up at once, in its own month, to revenue_contra, even
 * when time has not reached that month. A change that arrives later and is
 * dated before it (an amendment, another credit) rebuilds the line and
 * changes that catch-up (or makes one of a credit that had none): it is
 * brought to its new amount now, not when time reaches its month, or the
 * line would meanwhile keep the regular revenue of the new terms with the
 * reversal computed under the old ones — more than its price. Components of
 * terms and stops (revenue, not revenue_contra) still wait for time. */
static int sync_ahead(rs_engine_t *e, rs_contract_t *c, int li, rs_period_t H,
                      rs_date_t trigger)
{
    const char *rule, *source;
    rs_date_t on;
    for (size_t i = 0; i < c->lines[li].nposted; i++) {
        rs_posted_t p = c->lines[li].posted[i];
        if (p.sp <= H || p.comp == 0)
            continue;
        sp_days_t sd = sp_days(p.sp);
        rs_money_t want = comp_now(c, &c->lines[li], p.comp, &sd, &rule, &source, &on);
        if (want != p.amount &&
            post_component(e, c, li, &sd, p.comp, want, (rs_account_t)p.account, rule, source,
                           trigger != RS_DATE_NONE ? rs_eng_dmax(trigger, on) : on))
            return -1;
    }
    int n = c->lines[li].nseg + c->lines[li].nadj;
    for (int k = 0; k < n; k++) {
        const rs_line_t *l = &c->lines[li];
        int seg = k < l->nseg, comp = seg ? l->segs[k].id : l->adj[k - l->nseg].id;
        rs_account_t acct = seg ? l->segs[k].jump_account : l->adj[k - l->nseg].account;
        rs_date_t d = seg ? l->segs[k].eff : l->adj[k - l->nseg].on;
        rs_period_t sp = rs_period_of(d);
        if (sp <= H || acct != RS_ACCT_REVENUE_CONTRA || posted_find(c->lines + li, sp, comp))
            continue;
        sp_days_t sd = sp_days(sp);
        rs_money_t want = comp_now(c, l, comp, &sd, &rule, &source, &on);
        if (want != 0 &&
            post_component(e, c, li, &sd, comp, want, acct, rule, source,
                           trigger != RS_DATE_NONE ? rs_eng_dmax(trigger, on) : on))
            return -1;
    }
    return 0;
}

/* Bring a contract's recognition up to date through horizon H: period by
 * period (outer) so its entries stay in period order (I4). */
int rs_eng_sync_contract(rs_engine_t *e, rs_contract_t *c, rs_period_t H, rs_date_t trigger)
{
    if (!c->booked)
        return 0;
    if (e->horizon != RS_PERIOD_NONE && (H == RS_PERIOD_NONE || H < e->horizon))
        H = e->horizon;
    if (c->horizon != RS_PERIOD_NONE && (H == RS_PERIOD_NONE || H < c->horizon))
        H = c->horizon;
    if (H == RS_PERIOD_NONE)
        return 0;
    /* Only periods whose R may have changed (dirty_from on) or that time has
     * newly reached (after the old horizon) can need a posting. */
    rs_period_t first = c->horizon != RS_PERIOD_NONE ? c->horizon + 1 : H + 1;
    if (c->horizon == RS_PERIOD_NONE ||
        (c->dirty_from != RS_PERIOD_NONE && c->dirty_from < first)) {
        rs_period_t lo = H + 1;
        for (int i = 0; i < c->nlines; i++) {
            rs_period_t f = line_first_period(&c->lines[i]);
            if (f < lo)
                lo = f;
        }
        first = (c->horizon == RS_PERIOD_NONE || c->dirty_from < lo) ? lo : c->dirty_from;
    }
    if (first <= H) {
        /* lines that cannot post from `first` on are left out (line_may_post):
         * the others post exactly what they did, in the same order */
        int nl = c->nlines;
        uint64_t live = nl >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << nl) - 1;
        if (nl <= 64) {
            rs_date_t a = rs_period_first_day(first);
            for (int i = 0; i < nl; i++)
                if (!line_may_post(&c->lines[i], a, first))
                    live &= ~((uint64_t)1 << i);
        }
#ifdef RS_ENG_SELFCHECK
        for (rs_period_t sp = first; sp <= H; sp++) {
#else
        for (rs_period_t sp = first; sp <= H && live != 0; sp++) {
#endif
            sp_days_t sd = sp_days(sp);
            for (int i = 0; i < c->nlines; i++) {
#ifdef RS_ENG_SELFCHECK
                if (!(i >= 64 || (live >> i & 1))) {
                    uint64_t before = e->stats.entries, seq = c->seq;
                    rs_money_t rec = c->lines[i].recognized;
                    uint32_t np = c->lines[i].nposted;
                    if (sync_line_period(e, c, i, &sd, trigger) || e->stats.entries != before ||
                        c->seq != seq || c->lines[i].recognized != rec ||
                        c->lines[i].nposted != np)
                        abort();
                    continue;
                }
#endif
                if ((i >= 64 || (live >> i & 1)) && sync_line_period(e, c, i, &sd, trigger))
                    return -1;
            }
        }
    }
    if (c->dirty_from != RS_PERIOD_NONE)
        for (int i = 0; i < c->nlines; i++)
            if (sync_ahead(e, c, i, H, trigger))
                return -1;
    if (c->horizon != H)
        rs_eng_mark_changed(e, c);
    c->horizon = H;
    c->dirty_from = RS_PERIOD_NONE;
    return 0;
}

/* Lazy close (rs_engine.h): the horizon moves the contract's record
 * missed, replayed as rs_engine_advance() would have run them then — each
 * with its own horizon and closed periods, so the entries (discarded) and
 * the state are those of the eager close. A booked contract at rest has no
 * dirty_from (every change ends with a sync), so a move at or before its
 * own horizon would have posted nothing and is skipped. */
static int catch_up(rs_engine_t *e, rs_contract_t *c, const rs_engine_t *h, rs_period_t below)
{
    if (!c->booked || h->ncloses == 0)
        return 0;
    size_t lo = 0, hi = h->ncloses; /* the first move past the contract's horizon */
    while (c->horizon != RS_PERIOD_NONE && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->closes[mid].horizon <= c->horizon)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == h->ncloses || (below != RS_PERIOD_NONE && h->closes[lo].horizon >= below))
        return 0;
    int was = c->changed, rc = 0;
    rs_period_t horizon = e->horizon, closed = e->closed_through;
    rs_entry_sink_fn sink = e->sink;
    uint64_t entries = e->stats.entries;
    e->sink = NULL;
    for (size_t k = lo; k < h->ncloses; k++) {
        rs_period_t H = h->closes[k].horizon;
        if (below != RS_PERIOD_NONE && H >= below)
            break;
        e->horizon = H;
        e->closed_through = h->closes[k].closed_through;
        if (rs_eng_sync_contract(e, c, H, RS_DATE_NONE)) {
            rc = -1;
            break;
        }
        rc++;
    }
    e->horizon = horizon;
    e->closed_through = closed;
    e->sink = sink;
    e->stats.entries = entries;
    if (!was && c->changed) { /* marked last, by this catch-up */
        if (e->nchanged > 0 && e->changed[e->nchanged - 1] == c) {
            e->nchanged--;
            c->changed = 0;
        } else {
            rs_engine_contract_clear_changed(e, c->contract_id);
        }
    }
    return rc;
}

int rs_engine_catch_up_contract(rs_engine_t *e, const char *contract_id,
                                const rs_engine_t *history, rs_period_t below)
{
    rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    return c == NULL ? 0 : catch_up(e, c, history != NULL ? history : e, below);
}

int rs_engine_import_caught_up(rs_engine_t *e, const char *contract_id, const void *buf,
                               size_t len, const rs_engine_t *history, rs_period_t below,
                               int recognize, int *moves, char *errstr, size_t errlen)
{
    if (rs_engine_import_contract(e, buf, len, errstr, errlen) != 0)
        return -1;
    rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL) {
        snprintf(errstr, errlen, "contract %s: its record names another contract", contract_id);
        return -1;
    }
    int m = catch_up(e, c, history != NULL ? history : e, below);
    if (m < 0 || (recognize && rs_eng_sync_contract(e, c, e->horizon, RS_DATE_NONE))) {
        snprintf(errstr, errlen, "contract %s: out of memory recognizing", contract_id);
        return -1;
    }
    if (moves != NULL)
        *moves = m;
    return recognize && c->changed ? 1 : 0;
}

/* R of the contract may have changed from period p on. */
void rs_eng_mark_dirty(rs_contract_t *c, rs_period_t p)
{
    if (c->dirty_from == RS_PERIOD_NONE || p < c->dirty_from)
        c->dirty_from = p;
}

size_t rs_engine_history_length(const rs_engine_t *e)
{
    return e->ncloses;
}
