/*
 * rs_engine.c — the recognition engine. Public contract in rs_engine.h,
 * state in rs_engine_internal.h.
 *
 * Invariants kept by this file (the scenario and property tests check each):
 *
 *   I1  Money is int64 minor units; intermediate products use __int128; the
 *       only rounding is rs_div_round (half away from zero) applied to
 *       cumulative amounts, so every schedule sums exactly to its total.
 *   I2  Per line, R(d) (cumulative revenue through the end of day d under the
 *       current terms) is a pure function of the line's segments,
 *       adjustments, milestones and usage. A change effective from E never
 *       changes R before E (prospective and catch-up alike): a catch-up is a
 *       discontinuity of R at E, not a rewrite of the past.
 *   I3  posted[] records, per (service period, component), the revenue
 *       already posted. Syncing a line posts, for every service period up to
 *       the horizon and every component, desired - posted. Component 0 is the
 *       regular schedule; other components are the jumps of segments and the
 *       adjustments (catch-ups, credit true-ups, forfeits), each posted to its
 *       own account and rule. A credit note posts its jump at once, in the
 *       same entry as its billing effect, and records it as posted.
 *   I4  A posting's natural date is its business date (document date, or the
 *       last day of its service period, or the triggering event's date if
 *       later). It posts in the first open period at or after that date, and
 *       never before the contract's frontier (the latest period it has posted
 *       to). So a closed period never receives a posting, a change never
 *       posts before the period in which it happened, and a contract's
 *       entries are in non-decreasing period order: the balances as of any
 *       period end are those after a prefix of its entries, which I5 keeps
 *       consistent.
 *   I5  Per line at every moment: deferred >= 0, unbilled >= 0, at most one
 *       of them non-zero, and deferred - unbilled = billed - recognized.
 *       Every entry's debits equal its credits; an entry nets each account.
 *   I6  An event is validated completely before anything is changed, so a
 *       rejected event leaves no trace (not even in the idempotency set).
 *       Moving the contract's clock to the event's date first is not a
 *       change: it posts what time alone had already earned.
 *   I7  Entry ids are "<contract_id>#<seq>" with seq the contract's counter:
 *       the same events in the same order give the same ids.
 *   I8  Events for a contract not yet booked, invoice-referencing events for
 *       an invoice not yet issued, and invoices, usage or milestones for a
 *       line no amendment has added yet, wait in the contract's pending list
 *       in arrival order and are applied (or rejected, as late rejections)
 *       when the reference arrives. What waits is visible (pending report).
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

#define L_MONTH 377580 /* lcm(28, 29, 30, 31): day weights of ratable_monthly */
#define UNIT_SCALE 12  /* usage amounts: 10^-12 of a major unit */

typedef rs_seg_t seg_t;
/* struct rs_engine is in rs_engine_internal.h */
typedef rs_adj_t adj_t;
typedef rs_line_t line_t;
typedef rs_invoice_t invoice_t;
typedef rs_contract_t contract_t;
typedef rs_seen_t seen_t;

/* ------------------------------------------------------------------ */
/* small utilities                                                      */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (np == NULL)
        return -1;
    memset((char *)np + *cap * elem, 0, (ncap - *cap) * elem);
    *p = np;
    *cap = ncap;
    return 0;
}

static int growi(void **p, int *cap, int need, size_t elem)
{
    size_t c = (size_t)*cap;
    if (grow(p, &c, (size_t)need, elem))
        return -1;
    *cap = (int)c;
    return 0;
}

static uint64_t str_hash(const char *s, uint64_t seed)
{
    uint64_t h = seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

/* Copy an id into an RS_ID_MAX field (truncating like snprintf would). */
static void copy_id(char *dst, const char *src)
{
    size_t n = strnlen(src, RS_ID_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static rs_date_t dmax(rs_date_t a, rs_date_t b)
{
    return a > b ? a : b;
}

/* seen sets: open addressing on id_hash */
static seen_t *seen_find(seen_t *tab, size_t cap, uint64_t idh)
{
    if (cap == 0)
        return NULL;
    for (size_t i = idh & (cap - 1);; i = (i + 1) & (cap - 1))
        if (tab[i].id_hash == idh || tab[i].id_hash == 0)
            return &tab[i];
}

static int seen_add(seen_t **tab, size_t *n, size_t *cap, uint64_t idh, uint64_t ch)
{
    if ((*n + 1) * 10 >= *cap * 7) {
        size_t ncap = *cap ? *cap * 2 : 16;
        seen_t *nt = calloc(ncap, sizeof(*nt));
        if (nt == NULL)
            return -1;
        for (size_t i = 0; i < *cap; i++)
            if ((*tab)[i].id_hash)
                *seen_find(nt, ncap, (*tab)[i].id_hash) = (*tab)[i];
        free(*tab);
        *tab = nt;
        *cap = ncap;
    }
    seen_t *s = seen_find(*tab, *cap, idh);
    if (s->id_hash == 0)
        (*n)++;
    s->id_hash = idh;
    s->content_hash = ch;
    return 0;
}

/* Remove an id (rebuilds the table: removals are rare). */
static void seen_remove(seen_t **tab, size_t *n, size_t *cap, uint64_t idh)
{
    seen_t *old = *tab;
    size_t oldcap = *cap;
    *tab = NULL;
    *n = *cap = 0;
    for (size_t j = 0; j < oldcap; j++)
        if (old[j].id_hash && old[j].id_hash != idh)
            seen_add(tab, n, cap, old[j].id_hash, old[j].content_hash);
    free(old);
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */

static void line_free(line_t *l)
{
    free(l->chg);
    free(l->bill);
    free(l->segs);
    free(l->adj);
    free(l->ms);
    free(l->uprice);
    free(l->usage);
    free(l->posted);
}

void rs__contract_free(contract_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nlines; i++)
        line_free(&c->lines[i]);
    free(c->lines);
    for (int i = 0; i < c->ninv; i++)
        free(c->inv[i].lines);
    free(c->inv);
    free(c->pay);
    free(c->docs);
    for (size_t i = 0; i < c->npend; i++)
        rs_event_clear(&c->pend[i].ev);
    free(c->pend);
    free(c->seen);
    free(c);
}

int rs_engine_new(rs_engine_t **out, const rs_policy_t *policy, char *errstr, size_t errlen)
{
    rs_engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    if (policy)
        e->policy = *policy;
    else
        rs_policy_defaults(&e->policy);
    if (e->policy.cancellation > RS_CANCEL_FORFEIT ||
        e->policy.bad_debt > RS_BAD_DEBT_REVERSE_REVENUE ||
        e->policy.proration > RS_PRORATE_30_360 || e->policy.n_codes < 0 ||
        e->policy.n_codes > RS_POLICY_MAX_CODES) {
        free(e);
        snprintf(errstr, errlen, "invalid policy");
        return -1;
    }
    e->horizon = RS_PERIOD_NONE;
    e->closed_through = RS_PERIOD_NONE;
    *out = e;
    return 0;
}

void rs_engine_destroy(rs_engine_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nslots; i++)
        rs__contract_free(e->slots[i]);
    free(e->slots);
    free(e->sorted);
    free(e->views);
    free(e->cviews);
    free(e->gseen);
    free(e->late);
    free(e->changed);
    free(e->changed_ids);
    free(e);
}

void rs_engine_set_sink(rs_engine_t *e, rs_entry_sink_fn fn, void *opaque)
{
    e->sink = fn;
    e->sink_opaque = opaque;
}

const rs_policy_t *rs_engine_policy(const rs_engine_t *e)
{
    return &e->policy;
}

contract_t *rs__contract_find(const rs_engine_t *e, const char *id)
{
    if (e->nslots == 0)
        return NULL;
    uint64_t h = str_hash(id, 0xcbf29ce484222325ULL);
    for (size_t i = h & (e->nslots - 1);; i = (i + 1) & (e->nslots - 1)) {
        if (e->slots[i] == NULL)
            return NULL;
        if (strcmp(e->slots[i]->contract_id, id) == 0)
            return e->slots[i];
    }
}

void rs__slot_put(contract_t **slots, size_t nslots, contract_t *c)
{
    uint64_t h = str_hash(c->contract_id, 0xcbf29ce484222325ULL);
    size_t i = h & (nslots - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (nslots - 1);
    slots[i] = c;
}

contract_t *rs__contract_get_or_create(rs_engine_t *e, const char *id)
{
    contract_t *c = rs__contract_find(e, id);
    if (c)
        return c;
    if ((e->ncontracts + 1) * 10 >= e->nslots * 7) {
        size_t n = e->nslots ? e->nslots * 2 : 64;
        contract_t **ns = calloc(n, sizeof(*ns));
        if (ns == NULL)
            return NULL;
        for (size_t i = 0; i < e->nslots; i++)
            if (e->slots[i])
                rs__slot_put(ns, n, e->slots[i]);
        free(e->slots);
        e->slots = ns;
        e->nslots = n;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    copy_id(c->contract_id, id);
    c->horizon = RS_PERIOD_NONE;
    c->frontier = RS_PERIOD_NONE;
    c->dirty_from = RS_PERIOD_NONE;
    c->booked_on = RS_DATE_NONE;
    c->cancelled_on = RS_DATE_NONE;
    rs__slot_put(e->slots, e->nslots, c);
    e->ncontracts++;
    e->sorted_dirty = 1;
    e->views_dirty = 1;
    return c;
}

static int cmp_contract(const void *a, const void *b)
{
    return strcmp((*(contract_t *const *)a)->contract_id,
                  (*(contract_t *const *)b)->contract_id);
}

static int sort_contracts(rs_engine_t *e)
{
    if (!e->sorted_dirty && e->sorted)
        return 0;
    contract_t **s = realloc(e->sorted, (e->ncontracts + 1) * sizeof(*s));
    if (s == NULL)
        return -1;
    e->sorted = s;
    size_t k = 0;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i])
            s[k++] = e->slots[i];
    qsort(s, k, sizeof(*s), cmp_contract);
    e->sorted_dirty = 0;
    return 0;
}

/* ------------------------------------------------------------------ */
/* periods                                                              */

/* Closing a period closes every period before it too: books close in order. */
int rs_engine_period_closed(const rs_engine_t *e, rs_period_t p)
{
    return e->closed_through != RS_PERIOD_NONE && p <= e->closed_through;
}

static rs_period_t first_open(const rs_engine_t *e, rs_period_t p)
{
    return rs_engine_period_closed(e, p) ? e->closed_through + 1 : p;
}

/* ------------------------------------------------------------------ */
/* R(d): the cumulative recognition function of a line                  */

/* Weight of the days [a, d] in units of 1/L_MONTH of a month. */
static __int128 month_units(const rs_engine_t *e, rs_date_t a, rs_date_t d)
{
    __int128 u = 0;
    while (a <= d) {
        int y, m, dd;
        rs_date_to_ymd(a, &y, &m, &dd);
        int dim = rs_days_in_month(y, m);
        rs_date_t month_end = a + (dim - dd);
        rs_date_t stop = d < month_end ? d : month_end;
        int days = stop - a + 1;
        if (e->policy.proration == RS_PRORATE_30_360) {
            int full = (dd == 1 && stop == month_end);
            u += full ? L_MONTH : (__int128)(days > 30 ? 30 : days) * (L_MONTH / 30);
        } else {
            u += (__int128)days * (L_MONTH / dim);
        }
        a = stop + 1;
    }
    return u;
}

/* The share of a segment's spread earned through the end of day d. */
static rs_money_t seg_spread_at(const rs_engine_t *e, const seg_t *s, rs_date_t d)
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

static rs_money_t seg_value(const rs_engine_t *e, const line_t *l, rs_date_t d)
{
    const seg_t *s = NULL;
    for (int i = 0; i < l->nseg && l->segs[i].eff <= d; i++)
        s = &l->segs[i];
    return s ? s->base + seg_spread_at(e, s, d) : 0;
}

static rs_money_t adj_value(const line_t *l, rs_date_t d)
{
    rs_money_t v = 0;
    for (int i = 0; i < l->nadj; i++)
        if (l->adj[i].on <= d)
            v += l->adj[i].amount;
    return v;
}

static const rs_decimal_t *price_at(const line_t *l, rs_date_t d)
{
    const rs_decimal_t *p = l->nuprice ? &l->uprice[0].price : NULL;
    for (int i = 0; i < l->nuprice && l->uprice[i].eff <= d; i++)
        p = &l->uprice[i].price;
    return p;
}

static rs_date_t line_last_day(const line_t *l)
{
    return l->ended_on != RS_DATE_NONE && l->ended_on < l->end ? l->ended_on : l->end;
}

/* Value of the usage recorded on days lo..hi (cumulatively rounded). */
static rs_money_t usage_value(const contract_t *c, const line_t *l, rs_date_t lo, rs_date_t hi)
{
    __int128 sum = 0;
    for (size_t i = 0; i < l->nusage && l->usage[i].day <= hi; i++) {
        const rs_decimal_t *p = price_at(l, l->usage[i].day);
        if (p && l->usage[i].day >= lo)
            sum += l->usage[i].qty * p->mantissa * rs_pow10(6 - p->scale);
    }
    return (rs_money_t)rs_div_round(sum, rs_pow10(UNIT_SCALE - c->exponent));
}

/* Usage recognized through day d: only what was recorded within the line's
 * current service (start..last day). Usage accepted while the service ran
 * and then left outside it by a later cancellation or amendment is not
 * revenue (it is reported, see rs_engine_line_get's usage_outside) — the
 * same outcome as when the cancellation arrives first and the usage is
 * rejected, so the result does not depend on arrival order. */
static rs_money_t usage_through(const contract_t *c, const line_t *l, rs_date_t d)
{
    rs_date_t last = line_last_day(l);
    return usage_value(c, l, l->start, d < last ? d : last);
}

static rs_money_t line_R(const rs_engine_t *e, const contract_t *c, const line_t *l,
                         rs_date_t d)
{
    switch (l->method) {
    case RS_METHOD_USAGE: {
        rs_money_t u = usage_through(c, l, d);
        rs_date_t last = line_last_day(l);
        if (d >= last) {
            rs_money_t total = usage_through(c, l, last);
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

/* ------------------------------------------------------------------ */
/* posting                                                              */

typedef struct entry_ctx {
    rs_engine_t *e;
    contract_t *c;
    rs_entry_t en;
} entry_ctx_t;

static void entry_begin(entry_ctx_t *x, rs_engine_t *e, contract_t *c, int line,
                        rs_entry_kind_t kind, const char *rule, rs_date_t natural,
                        rs_period_t service_period, const char *document)
{
    memset(&x->en, 0, sizeof(x->en));
    x->e = e;
    x->c = c;
    rs_entry_t *en = &x->en;
    en->kind = kind;
    snprintf(en->rule, sizeof(en->rule), "%s", rule);
    rs_period_t pp = first_open(e, rs_period_of(natural));
    if (c->frontier != RS_PERIOD_NONE && pp < c->frontier)
        pp = first_open(e, c->frontier);
    rs_date_t lo = rs_period_first_day(pp), hi = rs_period_last_day(pp);
    en->posted_on = natural < lo ? lo : natural > hi ? hi : natural;
    en->period = pp;
    en->service_period = service_period == RS_PERIOD_NONE ? pp : service_period;
    copy_id(en->contract_id, c->contract_id);
    copy_id(en->customer_id, c->customer_id);
    if (line >= 0) {
        copy_id(en->line_id, c->lines[line].line_id);
        snprintf(en->product, sizeof(en->product), "%s", c->lines[line].product);
    }
    copy_id(en->document_id, document ? document : "");
    memcpy(en->currency, c->currency, sizeof(en->currency));
    en->exponent = c->exponent;
}

/* Debit v (credit when negative), netted with the account's posting so far. */
static void entry_dr(entry_ctx_t *x, rs_account_t a, rs_money_t v)
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

static void entry_cr(entry_ctx_t *x, rs_account_t a, rs_money_t v)
{
    entry_dr(x, a, -v);
}

static void entry_source(entry_ctx_t *x, const char *id)
{
    if (id == NULL || *id == '\0')
        return;
    for (int i = 0; i < x->en.n_sources; i++)
        if (strcmp(x->en.sources[i], id) == 0)
            return;
    x->en.source_count++;
    if (x->en.n_sources < RS_ENTRY_MAX_SOURCES)
        copy_id(x->en.sources[x->en.n_sources++], id);
}

/* Remember that a contract's state changed (for rs_engine_take_changed). */
void rs__mark_changed(rs_engine_t *e, contract_t *c)
{
    if (c->changed)
        return;
    if (grow((void **)&e->changed, &e->capchanged, e->nchanged + 1, sizeof(contract_t *)))
        return; /* the set is best-effort only under ENOMEM; callers export all */
    e->changed[e->nchanged++] = c;
    c->changed = 1;
}

static void entry_emit(entry_ctx_t *x)
{
    rs_entry_t *en = &x->en;
    int k = 0;
    for (int i = 0; i < en->n_postings; i++)
        if (en->postings[i].debit != 0 || en->postings[i].credit != 0)
            en->postings[k++] = en->postings[i];
    en->n_postings = k;
    if (k == 0 && en->billed == 0 && en->recognized == 0 && en->received == 0)
        return;
    rs__mark_changed(x->e, x->c);
    en->seq = ++x->c->seq;
    if (x->c->frontier == RS_PERIOD_NONE || en->period > x->c->frontier)
        x->c->frontier = en->period;
    snprintf(en->entry_id, sizeof(en->entry_id), "%s#%llu", x->c->contract_id,
             (unsigned long long)en->seq);
    x->e->stats.entries++;
    if (x->e->sink)
        x->e->sink(x->e->sink_opaque, en);
}

/* Revenue of d (signed) for a line: Cr `acct`, Dr deferred then unbilled
 * (reversed when negative), keeping I5. */
static void post_revenue(entry_ctx_t *x, line_t *l, rs_account_t acct, rs_money_t d)
{
    if (d > 0) {
        rs_money_t from_def = d < l->deferred ? d : l->deferred;
        entry_dr(x, RS_ACCT_DEFERRED_REVENUE, from_def);
        entry_dr(x, RS_ACCT_UNBILLED_RECEIVABLE, d - from_def);
        entry_cr(x, acct, d);
        l->deferred -= from_def;
        l->unbilled += d - from_def;
    } else if (d < 0) {
        rs_money_t a = -d;
        rs_money_t to_unb = a < l->unbilled ? a : l->unbilled;
        entry_dr(x, acct, a);
        entry_cr(x, RS_ACCT_UNBILLED_RECEIVABLE, to_unb);
        entry_cr(x, RS_ACCT_DEFERRED_REVENUE, a - to_unb);
        l->unbilled -= to_unb;
        l->deferred += a - to_unb;
    }
    l->recognized += d;
    x->en.recognized += d;
}

/* Billing of d (signed) for a line: Cr unbilled then deferred (positive), or
 * Dr deferred then unbilled (negative). The counter-posting is the caller's. */
static void post_billing(entry_ctx_t *x, line_t *l, rs_money_t d)
{
    if (d > 0) {
        rs_money_t to_unb = d < l->unbilled ? d : l->unbilled;
        entry_cr(x, RS_ACCT_UNBILLED_RECEIVABLE, to_unb);
        entry_cr(x, RS_ACCT_DEFERRED_REVENUE, d - to_unb);
        l->unbilled -= to_unb;
        l->deferred += d - to_unb;
    } else if (d < 0) {
        rs_money_t a = -d;
        rs_money_t from_def = a < l->deferred ? a : l->deferred;
        entry_dr(x, RS_ACCT_DEFERRED_REVENUE, from_def);
        entry_dr(x, RS_ACCT_UNBILLED_RECEIVABLE, a - from_def);
        l->deferred -= from_def;
        l->unbilled += a - from_def;
    }
    l->billed += d;
    x->en.billed += d;
}

static rs_posted_t *posted_find(line_t *l, rs_period_t sp, int comp)
{
    for (size_t i = 0; i < l->nposted; i++)
        if (l->posted[i].sp == sp && l->posted[i].comp == comp)
            return &l->posted[i];
    return NULL;
}

static int posted_add(line_t *l, rs_period_t sp, int comp, rs_account_t acct, rs_money_t d)
{
    rs_posted_t *p = posted_find(l, sp, comp);
    if (p == NULL) {
        if (grow((void **)&l->posted, &l->capposted, l->nposted + 1, sizeof(rs_posted_t)))
            return -1;
        p = &l->posted[l->nposted++];
        p->sp = sp;
        p->comp = comp;
        p->account = acct;
        p->amount = 0;
    }
    p->amount += d;
    return 0;
}

static rs_date_t line_first_day(const line_t *l)
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
static rs_period_t line_first_period(const line_t *l)
{
    rs_period_t first = rs_period_of(line_first_day(l));
    for (size_t i = 0; i < l->nposted; i++)
        if (l->posted[i].sp < first)
            first = l->posted[i].sp;
    return first;
}

/* Sources of a schedule entry for service period sp. */
static void schedule_sources(entry_ctx_t *x, const line_t *l, rs_period_t sp)
{
    entry_source(x, l->terms_source);
    rs_date_t a = rs_period_first_day(sp), b = rs_period_last_day(sp);
    for (int i = 0; i < l->nseg; i++)
        if (l->segs[i].source[0] && l->segs[i].eff <= b)
            entry_source(x, l->segs[i].source);
    for (int i = 0; i < l->nms; i++)
        if (l->ms[i].completed_on != RS_DATE_NONE && rs_period_of(l->ms[i].completed_on) == sp)
            entry_source(x, l->ms[i].source);
    if (l->method == RS_METHOD_USAGE)
        for (size_t i = 0; i < l->nusage; i++)
            if (l->usage[i].day >= a && l->usage[i].day <= b)
                x->en.source_count += l->usage[i].count;
}

/* Post desired - posted for one component of a line in service period sp. */
static int post_component(rs_engine_t *e, contract_t *c, int li, rs_period_t sp, int comp,
                          rs_money_t desired, rs_account_t acct, const char *rule,
                          const char *source, rs_date_t natural)
{
    line_t *l = &c->lines[li];
    rs_posted_t *p = posted_find(l, sp, comp);
    rs_money_t delta = desired - (p ? p->amount : 0);
    if (delta == 0)
        return 0;
    if (p)
        acct = p->account;
    entry_ctx_t x;
    entry_begin(&x, e, c, li, RS_ENTRY_RECOGNITION, rule, natural, sp, NULL);
    if (comp == 0)
        schedule_sources(&x, l, sp);
    else
        entry_source(&x, source);
    post_revenue(&x, l, acct, delta);
    if (posted_add(l, sp, comp, acct, delta))
        return -1;
    entry_emit(&x);
    return 0;
}

static int comp_is_current(const line_t *l, int comp, rs_period_t sp)
{
    for (int k = 0; k < l->nseg; k++)
        if (l->segs[k].id == comp && l->segs[k].jump != 0 && rs_period_of(l->segs[k].eff) == sp)
            return 1;
    for (int k = 0; k < l->nadj; k++)
        if (l->adj[k].id == comp && rs_period_of(l->adj[k].on) == sp)
            return 1;
    return 0;
}

/* Post every component of a line in service period sp. `trigger` is the
 * date of the event that caused the sync (RS_DATE_NONE: time passing). */
static int sync_line_period(rs_engine_t *e, contract_t *c, int li, rs_period_t sp,
                            rs_date_t trigger)
{
    line_t *l = &c->lines[li];
    rs_date_t a = rs_period_first_day(sp), b = rs_period_last_day(sp);
    rs_money_t others = 0;
    for (int k = 0; k < l->nseg; k++) {
        const seg_t *s = &l->segs[k];
        if (s->jump == 0 || rs_period_of(s->eff) != sp)
            continue;
        others += s->jump;
        rs_date_t nat = trigger != RS_DATE_NONE ? dmax(trigger, s->eff) : s->eff;
        if (post_component(e, c, li, sp, s->id, s->jump, s->jump_account, s->jump_rule,
                           s->source, nat))
            return -1;
        l = &c->lines[li];
    }
    for (int k = 0; k < l->nadj; k++) {
        const adj_t *d = &l->adj[k];
        if (rs_period_of(d->on) != sp)
            continue;
        others += d->amount;
        rs_date_t nat = trigger != RS_DATE_NONE ? dmax(trigger, d->on) : d->on;
        if (post_component(e, c, li, sp, d->id, d->amount, d->account, d->rule, d->source, nat))
            return -1;
    }
    /* components posted before that no longer exist (superseded) */
    for (size_t i = 0; i < l->nposted; i++) {
        rs_posted_t p = l->posted[i];
        if (p.sp != sp || p.comp == 0 || p.amount == 0 || comp_is_current(l, p.comp, sp))
            continue;
        if (post_component(e, c, li, sp, p.comp, 0, p.account, "superseded", l->terms_source,
                           trigger != RS_DATE_NONE ? dmax(trigger, b) : b))
            return -1;
    }
    rs_money_t total = line_R(e, c, l, b) - line_R(e, c, l, a - 1);
    rs_date_t nat = trigger != RS_DATE_NONE ? dmax(trigger, b) : b;
    return post_component(e, c, li, sp, 0, total - others, RS_ACCT_REVENUE,
                          rs_method_name(l->method), l->terms_source, nat);
}

/* Bring a contract's recognition up to date through horizon H: period by
 * period (outer) so its entries stay in period order (I4). */
static int sync_contract(rs_engine_t *e, contract_t *c, rs_period_t H, rs_date_t trigger)
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
    for (rs_period_t sp = first; sp <= H; sp++)
        for (int i = 0; i < c->nlines; i++)
            if (sync_line_period(e, c, i, sp, trigger))
                return -1;
    if (c->horizon != H)
        rs__mark_changed(e, c);
    c->horizon = H;
    c->dirty_from = RS_PERIOD_NONE;
    return 0;
}

/* R of the contract may have changed from period p on. */
static void mark_dirty(contract_t *c, rs_period_t p)
{
    if (c->dirty_from == RS_PERIOD_NONE || p < c->dirty_from)
        c->dirty_from = p;
}

/* ------------------------------------------------------------------ */
/* validation helpers                                                   */

typedef struct vctx {
    const rs_event_t *ev;
    char *errstr;
    size_t errlen;
} vctx_t;

/* Write "event <id>: <message>" and return -1. */
static int verr(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static int verr(vctx_t *v, const char *fmt, ...)
{
    int n = snprintf(v->errstr, v->errlen, "event %s: ", v->ev->event_id);
    if (n > 0 && (size_t)n < v->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->errstr + n, v->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int to_minor(vctx_t *v, const char *field, rs_decimal_t d, int exponent, int min_sign,
                    rs_money_t *out)
{
    char why[128];
    if (rs_decimal_to_minor(d, exponent, out, why, sizeof(why)))
        return verr(v, "%s: %s", field, why);
    if (min_sign > 0 && *out <= 0)
        return verr(v, "%s: must be greater than zero", field);
    if (min_sign == 0 && *out < 0)
        return verr(v, "%s: must not be negative", field);
    return 0;
}

static int find_line(const contract_t *c, const char *id)
{
    for (int i = 0; i < c->nlines; i++)
        if (strcmp(c->lines[i].line_id, id) == 0)
            return i;
    return -1;
}

static int find_invoice(const contract_t *c, const char *id)
{
    for (int i = 0; i < c->ninv; i++)
        if (strcmp(c->inv[i].invoice_id, id) == 0)
            return i;
    return -1;
}

static int find_payment(const contract_t *c, const char *id)
{
    for (int i = 0; i < c->npay; i++)
        if (strcmp(c->pay[i].payment_id, id) == 0)
            return i;
    return -1;
}

static int doc_seen(const contract_t *c, const char *id)
{
    for (int i = 0; i < c->ndocs; i++)
        if (strcmp(c->docs[i].id, id) == 0)
            return 1;
    return 0;
}

static int doc_add(contract_t *c, const char *id)
{
    if (growi((void **)&c->docs, &c->capdocs, c->ndocs + 1, sizeof(rs_docid_t)))
        return -1;
    copy_id(c->docs[c->ndocs++].id, id);
    return 0;
}

/* Largest-remainder allocation of `total` (>= 0) in proportion to w[] (>= 0,
 * sum > 0); ties go to the earlier index. Returns 0, or -1 on ENOMEM. */
static int allocate(rs_money_t total, const rs_money_t *w, size_t n, rs_money_t *out)
{
    __int128 W = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        W += w[i];
    }
    if (n == 0 || W <= 0)
        return 0;
    __int128 *rem = calloc(n, sizeof(*rem));
    if (rem == NULL)
        return -1;
    rs_money_t given = 0;
    for (size_t i = 0; i < n; i++) {
        __int128 exact = (__int128)total * w[i];
        out[i] = (rs_money_t)(exact / W);
        rem[i] = exact % W;
        given += out[i];
    }
    /* fewer than n units are left: each goes to the largest remainder */
    for (rs_money_t left = total - given; left > 0; left--) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        out[best]++;
        rem[best] = -1;
    }
    free(rem);
    return 0;
}

static int method_family(rs_method_t m)
{
    return m == RS_METHOD_USAGE ? 1 : m == RS_METHOD_MILESTONE ? 2 : 0;
}

/* ------------------------------------------------------------------ */
/* building lines from specs (contract.booked, contract.amended)        */

/* Validate specs and build lines with allocated prices (no schedule yet). */
static int build_lines(vctx_t *v, int exponent, const rs_event_t *ev, line_t **out)
{
    int n = ev->n_lines, rc = -1, n_take = 0, n_ssp = 0;
    line_t *ls = calloc((size_t)n + 1, sizeof(*ls));
    rs_money_t *w = calloc((size_t)n + 1, sizeof(*w));
    rs_money_t *alloc = calloc((size_t)n + 1, sizeof(*alloc));
    rs_money_t total = 0;
    char f[96];
    if (ls == NULL || w == NULL || alloc == NULL) {
        verr(v, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const rs_line_spec_t *s = &ev->lines[i];
        line_t *l = &ls[i];
        copy_id(l->line_id, s->line_id);
        snprintf(l->product, sizeof(l->product), "%s", s->product);
        l->method = s->recognition;
        l->start = s->start;
        l->end = s->end == RS_DATE_NONE ? s->start : s->end;
        l->ended_on = RS_DATE_NONE;
        copy_id(l->terms_source, ev->event_id);
        if (rs_method_name(l->method) == NULL) {
            verr(v, "lines[%d].recognition: unknown method", i);
            goto out;
        }
        snprintf(f, sizeof(f), "lines[%d].amount", i);
        if (to_minor(v, f, s->amount, exponent, 0, &l->amount))
            goto out;
        if (l->start == RS_DATE_NONE) {
            verr(v, "lines[%d].start: required", i);
            goto out;
        }
        if (l->end < l->start) {
            verr(v, "lines[%d].end: before start", i);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(ls[j].line_id, l->line_id) == 0) {
                verr(v, "lines[%d].line_id: duplicate \"%s\"", i, l->line_id);
                goto out;
            }
        if (s->has_ssp) {
            snprintf(f, sizeof(f), "lines[%d].ssp", i);
            if (to_minor(v, f, s->ssp, exponent, 0, &l->ssp))
                goto out;
            l->has_ssp = 1;
        }
        if (l->method == RS_METHOD_USAGE) {
            if (!s->has_unit_price) {
                verr(v, "lines[%d].unit_price: required for usage lines", i);
                goto out;
            }
            if (s->unit_price.mantissa < 0 || s->unit_price.scale > 6) {
                verr(v, "lines[%d].unit_price: must be >= 0 with at most 6 decimals", i);
                goto out;
            }
            l->uprice = calloc(1, sizeof(*l->uprice));
            if (l->uprice == NULL) {
                verr(v, "out of memory");
                goto out;
            }
            l->nuprice = l->capuprice = 1;
            l->uprice[0].eff = l->start;
            l->uprice[0].price = s->unit_price;
        } else {
            n_take++;
            total += l->amount;
            if (l->has_ssp)
                n_ssp++;
        }
        if (l->method == RS_METHOD_MILESTONE) {
            if (s->n_milestones <= 0) {
                verr(v, "lines[%d].milestones: required for milestone lines", i);
                goto out;
            }
            l->ms = calloc((size_t)s->n_milestones, sizeof(*l->ms));
            if (l->ms == NULL) {
                verr(v, "out of memory");
                goto out;
            }
            l->nms = s->n_milestones;
            rs_money_t sum = 0;
            for (int k = 0; k < s->n_milestones; k++) {
                snprintf(f, sizeof(f), "lines[%d].milestones[%d].amount", i, k);
                if (to_minor(v, f, s->milestones[k].amount, exponent, 0, &l->ms[k].amount))
                    goto out;
                copy_id(l->ms[k].milestone_id, s->milestones[k].milestone_id);
                l->ms[k].completed_on = RS_DATE_NONE;
                sum += l->ms[k].amount;
            }
            if (sum != l->amount) {
                char a[48], b[48];
                verr(v, "lines[%d].milestones: amounts sum to %s, the line's amount is %s", i,
                     rs_money_format(sum, exponent, a, sizeof(a)),
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
                sumssp += ls[i].ssp;
            }
        if (sumssp > 0) {
            if (allocate(total, w, (size_t)k, alloc)) {
                verr(v, "out of memory");
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
        line_t *l = &ls[i];
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
            line_free(&ls[i]);
        free(ls);
    }
    free(w);
    free(alloc);
    return rc;
}

/* ------------------------------------------------------------------ */
/* schedule changes                                                     */

/* New terms for a ratable / point-in-time line from E. Segments effective
 * on or after E are superseded. Prospective: what is unrecognized at E plus
 * the change is spread over [max(E, start), end]; catch-up: R jumps at E to
 * what the new terms would have recognized by E - 1. A price below what was
 * recognized is a jump down at E either way. Returns the new segment. */
static seg_t *change_terms(rs_engine_t *e, line_t *l, int id, rs_date_t E,
                           rs_treatment_t treatment, rs_method_t method, rs_date_t start,
                           rs_date_t end, rs_money_t price, rs_account_t jump_account,
                           const char *rule, const char *source)
{
    rs_money_t r0 = seg_value(e, l, E - 1);
    int keep = 0;
    while (keep < l->nseg && l->segs[keep].eff < E)
        keep++;
    l->nseg = keep;
    if (growi((void **)&l->segs, &l->capseg, l->nseg + 1, sizeof(seg_t)))
        return NULL;
    seg_t *s = &l->segs[l->nseg++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->eff = E;
    s->method = method;
    s->jump_account = jump_account;
    snprintf(s->jump_rule, sizeof(s->jump_rule), "%s", rule);
    copy_id(s->source, source);
    s->to = method == RS_METHOD_POINT_IN_TIME ? start : end;
    if (treatment == RS_TREATMENT_CATCH_UP) {
        s->from = start;
        s->base = 0;
        s->spread = price;
        s->jump = seg_spread_at(e, s, E - 1) - r0;
    } else {
        s->from = dmax(E, start);
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

static adj_t *add_adj(line_t *l, int id, rs_date_t on, rs_money_t amount, rs_account_t acct,
                      const char *rule, const char *source)
{
    if (growi((void **)&l->adj, &l->capadj, l->nadj + 1, sizeof(adj_t)))
        return NULL;
    adj_t *a = &l->adj[l->nadj++];
    memset(a, 0, sizeof(*a));
    a->id = id;
    a->on = on;
    a->amount = amount;
    a->account = acct;
    snprintf(a->rule, sizeof(a->rule), "%s", rule);
    copy_id(a->source, source);
    return a;
}

/* Reprice a milestone line to `price` from C: completed milestones keep
 * what they recognized; catch-up books the difference to their new share as
 * an adjustment at C; the uncompleted ones share the rest. Returns the jump
 * (0 if none) and its component via *comp. */
static int milestone_reprice(line_t *l, rs_money_t price, rs_date_t C, rs_treatment_t t,
                             rs_account_t acct, const char *rule, const char *source,
                             rs_money_t *jump, int *comp)
{
    rs_money_t done = 0, open_w = 0, total_w = 0;
    *jump = 0;
    *comp = 0;
    for (int k = 0; k < l->nms; k++) {
        total_w += l->ms[k].amount;
        if (l->ms[k].completed_on != RS_DATE_NONE && l->ms[k].completed_on < C)
            done += l->ms[k].amount;
        else
            open_w += l->ms[k].amount;
    }
    rs_money_t target_done = done;
    if (t == RS_TREATMENT_CATCH_UP && total_w > 0)
        target_done = (rs_money_t)rs_div_round((__int128)price * done, total_w);
    rs_money_t rest = price - target_done;
    if (rest < 0) {
        target_done = price;
        rest = 0;
    }
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
    if (target_done != done) {
        adj_t *a = add_adj(l, ++l->next_comp, C, target_done - done, acct, rule, source);
        if (a == NULL)
            return -1;
        *jump = a->amount;
        *comp = a->id;
    }
    l->price = price;
    return 0;
}

static int cmp_change(const void *a, const void *b)
{
    const rs_change_t *x = a, *y = b;
    if (x->booking != y->booking)
        return x->booking ? -1 : 1;
    if (x->on != y->on)
        return x->on < y->on ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int r = strcmp(x->source, y->source);
    if (r)
        return r;
    return (x->id > y->id) - (x->id < y->id);
}

/* What the line had billed by the end of day d (invoices less voids). */
static rs_money_t billing_through(const line_t *l, rs_date_t d)
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
static int rebuild_line(rs_engine_t *e, contract_t *c, line_t *l)
{
    qsort(l->chg, (size_t)l->nchg, sizeof(rs_change_t), cmp_change);
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
                if (growi((void **)&l->uprice, &l->capuprice, keep + 1, sizeof(rs_uprice_t)))
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
                             line_last_day(l), l->price, ch->account, ch->rule,
                             ch->source) == NULL)
                return -1;
        } else { /* RS_CH_STOP */
            if (l->ended_on != RS_DATE_NONE && l->ended_on < E)
                continue;
            rs_money_t r0 = line_R(e, c, l, E - 1);
            rs_money_t billed = billing_through(l, E - 1) + credited;
            rs_money_t keep = ch->forfeit && billed > r0 ? billed : r0;
            l->ended_on = E - 1;
            if (usage) {
                l->price = 0; /* a minimum commitment is waived with the service */
                if (keep > r0 && add_adj(l, ch->id, E, keep - r0, RS_ACCT_REVENUE, "forfeit",
                                         ch->source) == NULL)
                    return -1;
                continue;
            }
            if (change_terms(e, l, ch->id, E, RS_TREATMENT_PROSPECTIVE, l->method, l->start,
                             E - 1, keep, RS_ACCT_REVENUE,
                             keep > r0 ? "forfeit" : "cancellation", ch->source) == NULL)
                return -1;
            l->price = keep;
        }
    }
    return 0;
}

/* Append a change to a ratable or usage line (the caller rebuilds). */
static rs_change_t *add_change(rs_engine_t *e, contract_t *c, int li, rs_change_kind_t kind,
                               rs_date_t on, const char *rule, const char *source)
{
    (void)e;
    line_t *l = &c->lines[li];
    if (growi((void **)&l->chg, &l->capchg, l->nchg + 1, sizeof(rs_change_t)))
        return NULL;
    rs_change_t *ch = &l->chg[l->nchg++];
    memset(ch, 0, sizeof(*ch));
    ch->id = ++l->next_comp;
    ch->kind = kind;
    ch->on = on;
    ch->account = RS_ACCT_REVENUE;
    snprintf(ch->rule, sizeof(ch->rule), "%s", rule);
    copy_id(ch->source, source);
    return ch;
}

/* The jump of component `id` after a rebuild (segment or adjustment). */
static rs_money_t jump_of(const line_t *l, int id)
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
static int price_change(rs_engine_t *e, contract_t *c, int li, rs_money_t delta, rs_date_t C,
                        rs_treatment_t t, rs_account_t acct, const char *rule,
                        const char *source, rs_money_t *jump, int *comp)
{
    line_t *l = &c->lines[li];
    *jump = 0;
    *comp = 0;
    mark_dirty(c, rs_period_of(C));
    if (delta == 0)
        return 0;
    if (l->method == RS_METHOD_MILESTONE)
        return milestone_reprice(l, l->price + delta, C, t, acct, rule, source, jump, comp);
    if (l->method == RS_METHOD_USAGE)
        t = RS_TREATMENT_CATCH_UP; /* usage revenue is not spread: reversed at C */
    rs_change_t *ch = add_change(e, c, li, RS_CH_DELTA, C, rule, source);
    if (ch == NULL)
        return -1;
    ch->treatment = t;
    ch->amount = delta;
    ch->account = acct;
    int id = ch->id;
    if (rebuild_line(e, c, l))
        return -1;
    *jump = jump_of(l, id);
    *comp = *jump ? id : 0;
    return 0;
}

/* The service of a line ends the day before E (cancellation, or a line left
 * out of an amendment). Forfeit recognizes what was billed but unearned. */
static int stop_line(rs_engine_t *e, contract_t *c, int li, rs_date_t E, int forfeit,
                     const char *source)
{
    line_t *l = &c->lines[li];
    if (l->ended_on != RS_DATE_NONE && l->ended_on < E)
        return 0;
    mark_dirty(c, rs_period_of(E));
    rs_period_t old_end = rs_period_of(line_last_day(l));
    if (old_end < c->dirty_from)
        mark_dirty(c, old_end);
    if (l->method == RS_METHOD_MILESTONE) {
        rs_money_t r0 = line_R(e, c, l, E - 1), keep = r0;
        if (forfeit && l->billed > keep)
            keep = l->billed;
        for (int k = 0; k < l->nms; k++)
            if (l->ms[k].completed_on == RS_DATE_NONE || l->ms[k].completed_on >= E)
                l->ms[k].amount = 0;
        l->ended_on = E - 1;
        if (keep > r0 && add_adj(l, ++l->next_comp, E, keep - r0, RS_ACCT_REVENUE, "forfeit",
                                 source) == NULL)
            return -1;
        l->price = keep;
        return 0;
    }
    rs_change_t *ch = add_change(e, c, li, RS_CH_STOP, E, "cancellation", source);
    if (ch == NULL)
        return -1;
    ch->forfeit = forfeit;
    return rebuild_line(e, c, l);
}

/* ------------------------------------------------------------------ */
/* contract events                                                      */

/* Copy a built line's terms into a TERMS change. */
static void set_terms(rs_change_t *ch, const line_t *n)
{
    ch->method = n->method;
    ch->start = n->start;
    ch->end = n->end;
    ch->amount = n->price;
    if (n->nuprice > 0)
        ch->unit_price = n->uprice[0].price;
}

static int apply_booked(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    if (c->booked)
        return verr(&v, "contract_id: contract %s was already booked by event %s",
                    c->contract_id, c->booked_by);
    int exponent = rs_currency_exponent(ev->currency);
    if (exponent < 0)
        return verr(&v, "currency: unknown currency \"%s\"", ev->currency);
    if (ev->n_lines <= 0)
        return verr(&v, "lines: at least one line is required");
    line_t *ls = NULL;
    if (build_lines(&v, exponent, ev, &ls))
        return -1;
    c->lines = ls;
    c->nlines = c->caplines = ev->n_lines;
    for (int i = 0; i < ev->n_lines; i++) {
        line_t *l = &ls[i];
        if (l->method == RS_METHOD_MILESTONE)
            continue;
        rs_change_t *ch = add_change(e, c, i, RS_CH_TERMS, l->start, "", "");
        if (ch != NULL) {
            set_terms(ch, l);
            ch->booking = 1;
        }
        if (ch == NULL || rebuild_line(e, c, l)) {
            c->lines = NULL;
            c->nlines = c->caplines = 0;
            for (int k = 0; k < ev->n_lines; k++)
                line_free(&ls[k]);
            free(ls);
            return verr(&v, "out of memory");
        }
    }
    c->booked = 1;
    c->exponent = exponent;
    memcpy(c->currency, ev->currency, sizeof(c->currency));
    copy_id(c->customer_id, ev->customer_id);
    copy_id(c->booked_by, ev->event_id);
    c->booked_on = ev->booked_on;
    e->views_dirty = 1;
    return 0;
}

static int apply_amended(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    rs_date_t E = ev->effective_on;
    if (E == RS_DATE_NONE)
        return verr(&v, "effective_on: required");
    if (c->cancelled_on != RS_DATE_NONE && E >= c->cancelled_on) {
        char d[16];
        return verr(&v, "effective_on: contract %s was cancelled from %s", c->contract_id,
                    rs_date_format(c->cancelled_on, d, sizeof(d)));
    }
    if (ev->n_lines <= 0)
        return verr(&v, "lines: the complete set of lines is required");
    line_t *nl = NULL;
    if (build_lines(&v, c->exponent, ev, &nl))
        return -1;
    int rc = -1, nnew = 0;
    for (int i = 0; i < ev->n_lines; i++) {
        int old = find_line(c, nl[i].line_id);
        if (old < 0) {
            nnew++;
            continue;
        }
        if (method_family(c->lines[old].method) != method_family(nl[i].method)) {
            verr(&v, "lines[%d].recognition: line %s cannot change from %s to %s", i,
                 nl[i].line_id, rs_method_name(c->lines[old].method),
                 rs_method_name(nl[i].method));
            goto out;
        }
    }
    if (growi((void **)&c->lines, &c->caplines, c->nlines + nnew, sizeof(line_t))) {
        verr(&v, "out of memory");
        goto out;
    }
    /* From here on nothing can fail validation. */
    mark_dirty(c, rs_period_of(E));
    for (int i = 0; i < ev->n_lines; i++) {
        line_t *n = &nl[i];
        int li = find_line(c, n->line_id), is_new = li < 0;
        if (is_new) { /* a new line: its first terms take the amendment's treatment */
            li = c->nlines++;
            c->lines[li] = *n;
            memset(n, 0, sizeof(*n));
            n = &c->lines[li];
        }
        line_t *l = &c->lines[li];
        rs_period_t old_end = rs_period_of(line_last_day(l));
        if (old_end < c->dirty_from)
            mark_dirty(c, old_end);
        if (rs_period_of(n->end) < c->dirty_from)
            mark_dirty(c, rs_period_of(n->end));
        copy_id(l->terms_source, ev->event_id);
        if (!is_new) { /* an existing line: take the new facts */
            snprintf(l->product, sizeof(l->product), "%s", n->product);
            l->amount = n->amount;
            l->has_ssp = n->has_ssp;
            l->ssp = n->ssp;
        }
        if (l->method != RS_METHOD_MILESTONE) {
            rs_change_t *ch =
                add_change(e, c, li, RS_CH_TERMS, E,
                           ev->treatment == RS_TREATMENT_CATCH_UP ? "catch_up" : "amendment",
                           ev->event_id);
            if (ch == NULL) {
                verr(&v, "out of memory");
                goto out;
            }
            set_terms(ch, n);
            ch->treatment = ev->treatment;
            if (rebuild_line(e, c, l)) {
                verr(&v, "out of memory");
                goto out;
            }
        } else if (!is_new) {
            /* the new milestone list, keeping completions by id */
            for (int k = 0; k < n->nms; k++)
                for (int j = 0; j < l->nms; j++)
                    if (strcmp(n->ms[k].milestone_id, l->ms[j].milestone_id) == 0 &&
                        l->ms[j].completed_on != RS_DATE_NONE) {
                        n->ms[k].completed_on = l->ms[j].completed_on;
                        copy_id(n->ms[k].source, l->ms[j].source);
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
            if (milestone_reprice(l, n->price, E, ev->treatment, RS_ACCT_REVENUE, "catch_up",
                                  ev->event_id, &jump, &comp)) {
                verr(&v, "out of memory");
                goto out;
            }
        }
    }
    /* lines left out end the day before E */
    for (int li = 0; li < c->nlines; li++) {
        int listed = 0;
        for (int i = 0; i < ev->n_lines; i++)
            if (strcmp(ev->lines[i].line_id, c->lines[li].line_id) == 0)
                listed = 1;
        if (!listed && stop_line(e, c, li, E, 0, ev->event_id)) {
            verr(&v, "out of memory");
            goto out;
        }
    }
    e->views_dirty = 1;
    rc = 0;
out:
    for (int i = 0; i < ev->n_lines; i++)
        line_free(&nl[i]);
    free(nl);
    return rc;
}

static int apply_cancelled(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    rs_date_t E = ev->effective_on;
    if (E == RS_DATE_NONE)
        return verr(&v, "effective_on: required");
    if (c->cancelled_on != RS_DATE_NONE) {
        char d[16];
        return verr(&v, "contract_id: contract %s is already cancelled from %s", c->contract_id,
                    rs_date_format(c->cancelled_on, d, sizeof(d)));
    }
    int forfeit = e->policy.cancellation == RS_CANCEL_FORFEIT;
    for (int li = 0; li < c->nlines; li++)
        if (stop_line(e, c, li, E, forfeit, ev->event_id))
            return verr(&v, "out of memory");
    c->cancelled_on = E;
    e->views_dirty = 1;
    return 0;
}

static int apply_milestone(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen)
{
    (void)e;
    vctx_t v = {ev, errstr, errlen};
    char d[16];
    int li = find_line(c, ev->line_id);
    if (li < 0)
        return verr(&v, "line_id: contract %s has no line \"%s\"", c->contract_id, ev->line_id);
    line_t *l = &c->lines[li];
    if (l->method != RS_METHOD_MILESTONE)
        return verr(&v, "line_id: line %s is recognized %s, not by milestones", l->line_id,
                    rs_method_name(l->method));
    if (ev->completed_on == RS_DATE_NONE)
        return verr(&v, "completed_on: required");
    if (l->ended_on != RS_DATE_NONE && ev->completed_on > l->ended_on)
        return verr(&v, "completed_on: line %s ended on %s", l->line_id,
                    rs_date_format(l->ended_on, d, sizeof(d)));
    for (int k = 0; k < l->nms; k++) {
        if (strcmp(l->ms[k].milestone_id, ev->milestone_id) != 0)
            continue;
        if (l->ms[k].completed_on != RS_DATE_NONE)
            return verr(&v, "milestone_id: milestone %s was already completed by event %s",
                        ev->milestone_id, l->ms[k].source);
        l->ms[k].completed_on = ev->completed_on;
        copy_id(l->ms[k].source, ev->event_id);
        mark_dirty(c, rs_period_of(ev->completed_on));
        return 0;
    }
    return verr(&v, "milestone_id: line %s has no milestone \"%s\"", l->line_id,
                ev->milestone_id);
}

/* ------------------------------------------------------------------ */
/* invoices, credit notes, payments                                     */

/* Record dated billing on a line; if credits or a stop depend on it, the
 * line is rebuilt from the earliest of them. */
static int record_billing(rs_engine_t *e, contract_t *c, int li, rs_date_t on,
                          rs_money_t amount)
{
    line_t *l = &c->lines[li];
    if (growi((void **)&l->bill, &l->capbill, l->nbill + 1, sizeof(rs_billing_t)))
        return -1;
    l->bill[l->nbill].on = on;
    l->bill[l->nbill].amount = amount;
    l->nbill++;
    rs_date_t first = RS_DATE_NONE;
    for (int i = 0; i < l->nchg; i++)
        if (l->chg[i].kind != RS_CH_TERMS && (first == RS_DATE_NONE || l->chg[i].on < first))
            first = l->chg[i].on;
    if (first == RS_DATE_NONE)
        return 0;
    mark_dirty(c, rs_period_of(first));
    return rebuild_line(e, c, l);
}

static int apply_invoice(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    char f[64];
    int k = find_invoice(c, ev->invoice_id);
    if (k >= 0)
        return verr(&v, "invoice_id: invoice %s was already issued by event %s", ev->invoice_id,
                    c->inv[k].source);
    if (ev->n_bill_lines <= 0)
        return verr(&v, "lines: at least one line is required");
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "issued_on: required");
    rs_inv_line_t *il = calloc((size_t)ev->n_bill_lines, sizeof(*il));
    if (il == NULL)
        return verr(&v, "out of memory");
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        il[i].line = find_line(c, b->line_id);
        if (il[i].line < 0) {
            free(il);
            return verr(&v, "lines[%d].line_id: contract %s has no line \"%s\"", i,
                        c->contract_id, b->line_id);
        }
        for (int j = 0; j < i; j++)
            if (il[j].line == il[i].line) {
                free(il);
                return verr(&v, "lines[%d].line_id: line \"%s\" is on the invoice twice", i,
                            b->line_id);
            }
        snprintf(f, sizeof(f), "lines[%d].amount", i);
        if (to_minor(&v, f, b->amount, c->exponent, 0, &il[i].amount)) {
            free(il);
            return -1;
        }
        if (b->has_tax) {
            snprintf(f, sizeof(f), "lines[%d].tax", i);
            if (to_minor(&v, f, b->tax, c->exponent, 0, &il[i].tax)) {
                free(il);
                return -1;
            }
        }
    }
    if (growi((void **)&c->inv, &c->capinv, c->ninv + 1, sizeof(invoice_t))) {
        free(il);
        return verr(&v, "out of memory");
    }
    invoice_t *inv = &c->inv[c->ninv++];
    memset(inv, 0, sizeof(*inv));
    copy_id(inv->invoice_id, ev->invoice_id);
    copy_id(inv->source, ev->event_id);
    inv->issued_on = ev->on;
    inv->lines = il;
    inv->nlines = ev->n_bill_lines;
    for (int i = 0; i < inv->nlines; i++) {
        line_t *l = &c->lines[il[i].line];
        entry_ctx_t x;
        entry_begin(&x, e, c, il[i].line, RS_ENTRY_INVOICE, "invoice", ev->on, RS_PERIOD_NONE,
                    ev->invoice_id);
        entry_source(&x, ev->event_id);
        entry_dr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, il[i].amount + il[i].tax);
        entry_cr(&x, RS_ACCT_TAX_PAYABLE, il[i].tax);
        post_billing(&x, l, il[i].amount);
        entry_emit(&x);
        if (l->method != RS_METHOD_MILESTONE &&
            record_billing(e, c, il[i].line, ev->on, il[i].amount))
            return verr(&v, "out of memory");
    }
    return 0;
}

/* Open receivable of an invoice line (gross, after credits and payments). */
static rs_money_t open_ar(const rs_inv_line_t *il)
{
    rs_money_t o = il->amount + il->tax - il->credited - il->credit_tax - il->paid;
    return o > 0 ? o : 0;
}

/* Under the allowance policy the allowance on an uncollectible invoice is its
 * whole open receivable, whatever happens to it later (a refund re-opens it,
 * a failed payment, a credit note): true it up with one entry per line. */
static void allowance_sync(rs_engine_t *e, contract_t *c, invoice_t *inv, rs_date_t on,
                           const char *document, const char *source)
{
    if (!inv->uncollectible || inv->voided || e->policy.bad_debt != RS_BAD_DEBT_ALLOWANCE)
        return;
    for (int i = 0; i < inv->nlines; i++) {
        rs_inv_line_t *il = &inv->lines[i];
        rs_money_t delta = open_ar(il) - il->allowance;
        if (delta == 0)
            continue;
        entry_ctx_t x;
        entry_begin(&x, e, c, il->line, delta > 0 ? RS_ENTRY_WRITE_OFF : RS_ENTRY_RECOVERY,
                    "allowance", on, RS_PERIOD_NONE, document);
        entry_source(&x, source);
        entry_dr(&x, RS_ACCT_BAD_DEBT_EXPENSE, delta);
        entry_cr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, delta);
        il->allowance += delta;
        c->written_off += delta;
        entry_emit(&x);
    }
}

static int apply_credit_note(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                             size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    char f[64], a1[48], a2[48];
    invoice_t *inv = &c->inv[find_invoice(c, ev->invoice_id)];
    if (inv->voided)
        return verr(&v, "invoice_id: invoice %s is void", inv->invoice_id);
    if (doc_seen(c, ev->credit_note_id))
        return verr(&v, "credit_note_id: credit note %s was already issued",
                    ev->credit_note_id);
    if (ev->reason == RS_CREDIT_NONE)
        return verr(&v, "reason: required");
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "issued_on: required");
    if (ev->n_bill_lines <= 0)
        return verr(&v, "lines: at least one line is required");
    int n = ev->n_bill_lines;
    rs_money_t *amt = calloc((size_t)n, sizeof(*amt)), *tax = calloc((size_t)n, sizeof(*tax));
    int *ix = calloc((size_t)n, sizeof(*ix));
    int rc = -1;
    if (amt == NULL || tax == NULL || ix == NULL) {
        verr(&v, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        ix[i] = -1;
        for (int k = 0; k < inv->nlines; k++)
            if (strcmp(c->lines[inv->lines[k].line].line_id, b->line_id) == 0)
                ix[i] = k;
        if (ix[i] < 0) {
            verr(&v, "lines[%d].line_id: invoice %s has no line \"%s\"", i, inv->invoice_id,
                 b->line_id);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (ix[j] == ix[i]) {
                verr(&v, "lines[%d].line_id: line \"%s\" is on the credit note twice", i,
                     b->line_id);
                goto out;
            }
        snprintf(f, sizeof(f), "lines[%d].amount", i);
        if (to_minor(&v, f, b->amount, c->exponent, 0, &amt[i]))
            goto out;
        if (b->has_tax) {
            snprintf(f, sizeof(f), "lines[%d].tax", i);
            if (to_minor(&v, f, b->tax, c->exponent, 0, &tax[i]))
                goto out;
        }
        const rs_inv_line_t *il = &inv->lines[ix[i]];
        if (amt[i] > il->amount - il->credited) {
            verr(&v, "lines[%d].amount: credits %s, only %s of the invoice line is left", i,
                 rs_money_format(amt[i], c->exponent, a1, sizeof(a1)),
                 rs_money_format(il->amount - il->credited, c->exponent, a2, sizeof(a2)));
            goto out;
        }
        if (tax[i] > il->tax - il->credit_tax) {
            verr(&v, "lines[%d].tax: credits %s, only %s of the invoice line's tax is left", i,
                 rs_money_format(tax[i], c->exponent, a1, sizeof(a1)),
                 rs_money_format(il->tax - il->credit_tax, c->exponent, a2, sizeof(a2)));
            goto out;
        }
    }
    if (doc_add(c, ev->credit_note_id)) {
        verr(&v, "out of memory");
        goto out;
    }
    rs_treatment_t t =
        ev->reason == RS_CREDIT_DISCOUNT ? RS_TREATMENT_PROSPECTIVE : RS_TREATMENT_CATCH_UP;
    const char *rule = ev->reason == RS_CREDIT_DISCOUNT ? "credit_discount" : "credit_true_up";
    for (int i = 0; i < n; i++) {
        rs_inv_line_t *il = &inv->lines[ix[i]];
        int li = il->line;
        line_t *l = &c->lines[li];
        rs_money_t jump = 0;
        int comp = 0;
        if (price_change(e, c, li, -amt[i], ev->on, t, RS_ACCT_REVENUE_CONTRA, rule,
                         ev->event_id, &jump, &comp)) {
            verr(&v, "out of memory");
            goto out;
        }
        l = &c->lines[li];
        rs_money_t gross = amt[i] + tax[i], to_ar = open_ar(il);
        if (to_ar > gross)
            to_ar = gross;
        entry_ctx_t x;
        entry_begin(&x, e, c, li, RS_ENTRY_CREDIT_NOTE, rs_credit_reason_name(ev->reason),
                    ev->on, RS_PERIOD_NONE, ev->credit_note_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, inv->source);
        entry_dr(&x, RS_ACCT_TAX_PAYABLE, tax[i]);
        post_billing(&x, l, -amt[i]);
        if (jump != 0) {
            post_revenue(&x, l, RS_ACCT_REVENUE_CONTRA, jump);
            if (posted_add(l, rs_period_of(ev->on), comp, RS_ACCT_REVENUE_CONTRA, jump)) {
                verr(&v, "out of memory");
                goto out;
            }
        }
        entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, to_ar);
        entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, gross - to_ar);
        /* money paid for what is now credited is the customer's, not the line's */
        c->customer_credit += gross - to_ar;
        inv->credit += gross - to_ar;
        il->paid -= gross - to_ar;
        l->received -= gross - to_ar;
        x.en.received = -(gross - to_ar);
        il->credited += amt[i];
        il->credit_tax += tax[i];
        entry_emit(&x);
    }
    allowance_sync(e, c, inv, ev->on, ev->credit_note_id, ev->event_id);
    rc = 0;
out:
    free(amt);
    free(tax);
    free(ix);
    return rc;
}

static int apply_void(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                      size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    invoice_t *inv = &c->inv[find_invoice(c, ev->invoice_id)];
    if (inv->voided)
        return verr(&v, "invoice_id: invoice %s is already void", inv->invoice_id);
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "voided_on: required");
    inv->voided = 1;
    for (int i = 0; i < inv->nlines; i++) {
        rs_inv_line_t *il = &inv->lines[i];
        line_t *l = &c->lines[il->line];
        rs_money_t net = il->amount - il->credited, tax = il->tax - il->credit_tax;
        rs_money_t open = open_ar(il), paid_part = net + tax - open;
        entry_ctx_t x;
        entry_begin(&x, e, c, il->line, RS_ENTRY_VOID, "void", ev->on, RS_PERIOD_NONE,
                    inv->invoice_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, inv->source);
        entry_dr(&x, RS_ACCT_TAX_PAYABLE, tax);
        post_billing(&x, l, -net);
        entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, open);
        entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, paid_part);
        c->customer_credit += paid_part;
        inv->credit += paid_part;
        il->paid -= paid_part;
        l->received -= paid_part;
        x.en.received = -paid_part;
        if (il->allowance > 0) { /* the doubtful receivable is gone with the invoice */
            entry_dr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, il->allowance);
            entry_cr(&x, RS_ACCT_BAD_DEBT_EXPENSE, il->allowance);
            c->written_off -= il->allowance;
            il->allowance = 0;
        }
        il->credited = il->amount;
        il->credit_tax = il->tax;
        entry_emit(&x);
        if (l->method != RS_METHOD_MILESTONE && record_billing(e, c, il->line, ev->on, -net))
            return verr(&v, "out of memory");
    }
    return 0;
}

static int apply_uncollectible(rs_engine_t *e, contract_t *c, const rs_event_t *ev,
                               char *errstr, size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    invoice_t *inv = &c->inv[find_invoice(c, ev->invoice_id)];
    if (inv->voided)
        return verr(&v, "invoice_id: invoice %s is void", inv->invoice_id);
    if (inv->uncollectible)
        return verr(&v, "invoice_id: invoice %s was already declared uncollectible",
                    inv->invoice_id);
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "declared_on: required");
    inv->uncollectible = 1;
    for (int i = 0; i < inv->nlines; i++) {
        rs_inv_line_t *il = &inv->lines[i];
        rs_money_t open = open_ar(il);
        if (open <= 0)
            continue;
        entry_ctx_t x;
        if (e->policy.bad_debt == RS_BAD_DEBT_ALLOWANCE) {
            entry_begin(&x, e, c, il->line, RS_ENTRY_WRITE_OFF, "allowance", ev->on,
                        RS_PERIOD_NONE, inv->invoice_id);
            entry_source(&x, ev->event_id);
            entry_dr(&x, RS_ACCT_BAD_DEBT_EXPENSE, open);
            entry_cr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, open);
            il->allowance += open;
            c->written_off += open;
            entry_emit(&x);
            continue;
        }
        /* reverse revenue: the open amount is credited (catch-up true-up) */
        rs_money_t gross = il->amount + il->tax - il->credited - il->credit_tax;
        rs_money_t tax_open =
            gross > 0
                ? (rs_money_t)rs_div_round((__int128)open * (il->tax - il->credit_tax), gross)
                : 0;
        rs_money_t net_open = open - tax_open, jump = 0;
        int comp = 0;
        if (price_change(e, c, il->line, -net_open, ev->on, RS_TREATMENT_CATCH_UP,
                         RS_ACCT_REVENUE_CONTRA, "write_off", ev->event_id, &jump, &comp))
            return verr(&v, "out of memory");
        line_t *l = &c->lines[il->line];
        entry_begin(&x, e, c, il->line, RS_ENTRY_WRITE_OFF, "reverse_revenue", ev->on,
                    RS_PERIOD_NONE, inv->invoice_id);
        entry_source(&x, ev->event_id);
        entry_dr(&x, RS_ACCT_TAX_PAYABLE, tax_open);
        post_billing(&x, l, -net_open);
        if (jump != 0) {
            post_revenue(&x, l, RS_ACCT_REVENUE_CONTRA, jump);
            if (posted_add(l, rs_period_of(ev->on), comp, RS_ACCT_REVENUE_CONTRA, jump))
                return verr(&v, "out of memory");
        }
        entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, open);
        il->credited += net_open;
        il->credit_tax += tax_open;
        c->written_off += open;
        entry_emit(&x);
    }
    return 0;
}

static int apply_payment(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    rs_money_t amount;
    int k = find_invoice(c, ev->invoice_id);
    if (find_payment(c, ev->payment_id) >= 0)
        return verr(&v, "payment_id: payment %s was already received", ev->payment_id);
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "received_on: required");
    if (to_minor(&v, "amount", ev->amount, c->exponent, 1, &amount))
        return -1;
    invoice_t *inv = &c->inv[k];
    int n = inv->nlines;
    rs_money_t *open = calloc((size_t)n + 1, sizeof(*open));
    rs_money_t *alloc = calloc((size_t)n + 1, sizeof(*alloc));
    if (open == NULL || alloc == NULL ||
        growi((void **)&c->pay, &c->cappay, c->npay + 1, sizeof(rs_payment_t))) {
        free(open);
        free(alloc);
        return verr(&v, "out of memory");
    }
    rs_money_t total_open = 0;
    for (int i = 0; i < n; i++) {
        open[i] = inv->voided ? 0 : open_ar(&inv->lines[i]);
        total_open += open[i];
    }
    rs_money_t applied = amount < total_open ? amount : total_open;
    if (applied > 0 && allocate(applied, open, (size_t)n, alloc)) {
        free(open);
        free(alloc);
        return verr(&v, "out of memory");
    }
    rs_payment_t *p = &c->pay[c->npay++];
    memset(p, 0, sizeof(*p));
    copy_id(p->payment_id, ev->payment_id);
    copy_id(p->source, ev->event_id);
    p->invoice = k;
    p->amount = amount;
    for (int i = 0; i < n; i++) {
        if (alloc[i] == 0)
            continue;
        rs_inv_line_t *il = &inv->lines[i];
        line_t *l = &c->lines[il->line];
        entry_ctx_t x;
        entry_begin(&x, e, c, il->line, RS_ENTRY_PAYMENT, "payment", ev->on, RS_PERIOD_NONE,
                    ev->payment_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, inv->source);
        entry_dr(&x, RS_ACCT_CASH, alloc[i]);
        entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, alloc[i]);
        il->paid += alloc[i];
        l->received += alloc[i];
        x.en.received = alloc[i];
        rs_money_t rec = alloc[i] < il->allowance ? alloc[i] : il->allowance;
        if (rec > 0) { /* recovery of a written-off receivable */
            x.en.kind = RS_ENTRY_RECOVERY;
            snprintf(x.en.rule, sizeof(x.en.rule), "recovery");
            entry_dr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, rec);
            entry_cr(&x, RS_ACCT_BAD_DEBT_EXPENSE, rec);
            il->allowance -= rec;
            c->written_off -= rec;
        }
        entry_emit(&x);
    }
    if (amount > applied) {
        entry_ctx_t x;
        entry_begin(&x, e, c, -1, RS_ENTRY_CUSTOMER_CREDIT, "overpayment", ev->on,
                    RS_PERIOD_NONE, ev->payment_id);
        entry_source(&x, ev->event_id);
        entry_dr(&x, RS_ACCT_CASH, amount - applied);
        entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, amount - applied);
        c->customer_credit += amount - applied;
        inv->credit += amount - applied;
        entry_emit(&x);
    }
    free(open);
    free(alloc);
    return 0;
}

/* Shares of `amount` over an invoice's lines in proportion to what each
 * received (paid); out[] has inv->nlines entries. */
static int by_paid(const invoice_t *inv, rs_money_t amount, rs_money_t *out)
{
    rs_money_t *w = calloc((size_t)inv->nlines + 1, sizeof(*w));
    if (w == NULL)
        return -1;
    for (int i = 0; i < inv->nlines; i++)
        w[i] = inv->lines[i].paid;
    int rc = allocate(amount, w, (size_t)inv->nlines, out);
    free(w);
    return rc;
}

/* A refund moves cash, never revenue: it pays back the customer's credit
 * balance first, and what is left re-opens the receivable of the lines the
 * payment was applied to (which the exceptions report shows). The revenue
 * effect of a refund comes from its credit note (reason refund). This keeps
 * the final balances independent of whether the credit note or the refund
 * arrives first. */
static int apply_refund(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    char a1[48], a2[48];
    rs_money_t amount;
    int pi = find_payment(c, ev->payment_id);
    if (pi < 0 || strcmp(c->inv[c->pay[pi].invoice].invoice_id, ev->invoice_id) != 0)
        return verr(&v, "payment_id: no payment %s was received on invoice %s", ev->payment_id,
                    ev->invoice_id);
    if (doc_seen(c, ev->refund_id))
        return verr(&v, "refund_id: refund %s was already made", ev->refund_id);
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "refunded_on: required");
    if (to_minor(&v, "amount", ev->amount, c->exponent, 1, &amount))
        return -1;
    rs_payment_t *p = &c->pay[pi];
    if (p->failed)
        return verr(&v, "payment_id: payment %s failed", p->payment_id);
    if (amount > p->amount - p->refunded)
        return verr(&v, "amount: refunds %s, only %s of payment %s is left",
                    rs_money_format(amount, c->exponent, a1, sizeof(a1)),
                    rs_money_format(p->amount - p->refunded, c->exponent, a2, sizeof(a2)),
                    p->payment_id);
    invoice_t *inv = &c->inv[p->invoice];
    rs_money_t paid_total = 0;
    for (int i = 0; i < inv->nlines; i++)
        paid_total += inv->lines[i].paid;
    /* only credit that arose on this invoice: credit from another invoice may
     * arrive later on its own topic, and the result must not depend on it */
    rs_money_t from_cc = amount < inv->credit ? amount : inv->credit;
    rs_money_t rest = amount - from_cc;
    if (rest > paid_total)
        return verr(&v,
                    "amount: refunds %s, more than the credit and what was "
                    "paid on invoice %s",
                    rs_money_format(amount, c->exponent, a1, sizeof(a1)), inv->invoice_id);
    rs_money_t *share = calloc((size_t)inv->nlines + 1, sizeof(*share));
    if (share == NULL || by_paid(inv, rest, share) || doc_add(c, ev->refund_id)) {
        free(share);
        return verr(&v, "out of memory");
    }
    p->refunded += amount;
    if (from_cc > 0) {
        entry_ctx_t x;
        entry_begin(&x, e, c, -1, RS_ENTRY_REFUND, "credit_refund", ev->on, RS_PERIOD_NONE,
                    ev->refund_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, p->source);
        entry_dr(&x, RS_ACCT_CUSTOMER_CREDIT, from_cc);
        entry_cr(&x, RS_ACCT_CASH, from_cc);
        c->customer_credit -= from_cc;
        inv->credit -= from_cc;
        entry_emit(&x);
    }
    for (int i = 0; i < inv->nlines; i++) {
        if (share[i] == 0)
            continue;
        rs_inv_line_t *il = &inv->lines[i];
        line_t *l = &c->lines[il->line];
        entry_ctx_t x;
        entry_begin(&x, e, c, il->line, RS_ENTRY_REFUND, "refund", ev->on, RS_PERIOD_NONE,
                    ev->refund_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, p->source);
        entry_dr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, share[i]);
        entry_cr(&x, RS_ACCT_CASH, share[i]);
        il->paid -= share[i];
        l->received -= share[i];
        x.en.received = -share[i];
        entry_emit(&x);
    }
    free(share);
    allowance_sync(e, c, inv, ev->on, ev->refund_id, ev->event_id);
    return 0;
}

static int apply_payment_failed(rs_engine_t *e, contract_t *c, const rs_event_t *ev,
                                char *errstr, size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    int pi = find_payment(c, ev->payment_id);
    if (pi < 0)
        return 0; /* a failed attempt that was never recorded as received */
    rs_payment_t *p = &c->pay[pi];
    if (p->failed)
        return verr(&v, "payment_id: payment %s already failed", p->payment_id);
    if (p->refunded > 0)
        return verr(&v, "payment_id: payment %s was partly refunded", p->payment_id);
    if (ev->on == RS_DATE_NONE)
        return verr(&v, "failed_on: required");
    invoice_t *inv = &c->inv[p->invoice];
    rs_money_t paid_total = 0;
    for (int i = 0; i < inv->nlines; i++)
        paid_total += inv->lines[i].paid;
    rs_money_t on_lines = p->amount < paid_total ? p->amount : paid_total;
    rs_money_t from_cc = p->amount - on_lines;
    if (from_cc > inv->credit)
        return verr(&v, "payment_id: the credit from payment %s was already used",
                    p->payment_id);
    rs_money_t *share = calloc((size_t)inv->nlines + 1, sizeof(*share));
    if (share == NULL || by_paid(inv, on_lines, share)) {
        free(share);
        return verr(&v, "out of memory");
    }
    p->failed = 1;
    for (int i = 0; i < inv->nlines; i++) {
        if (share[i] == 0)
            continue;
        rs_inv_line_t *il = &inv->lines[i];
        line_t *l = &c->lines[il->line];
        entry_ctx_t x;
        entry_begin(&x, e, c, il->line, RS_ENTRY_PAYMENT, "payment_failed", ev->on,
                    RS_PERIOD_NONE, p->payment_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, p->source);
        entry_dr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, share[i]);
        entry_cr(&x, RS_ACCT_CASH, share[i]);
        il->paid -= share[i];
        l->received -= share[i];
        x.en.received = -share[i];
        entry_emit(&x);
    }
    if (from_cc > 0) {
        entry_ctx_t x;
        entry_begin(&x, e, c, -1, RS_ENTRY_PAYMENT, "payment_failed", ev->on, RS_PERIOD_NONE,
                    p->payment_id);
        entry_source(&x, ev->event_id);
        entry_dr(&x, RS_ACCT_CUSTOMER_CREDIT, from_cc);
        entry_cr(&x, RS_ACCT_CASH, from_cc);
        c->customer_credit -= from_cc;
        inv->credit -= from_cc;
        entry_emit(&x);
    }
    free(share);
    allowance_sync(e, c, inv, ev->on, p->payment_id, ev->event_id);
    return 0;
}

/* ------------------------------------------------------------------ */
/* usage                                                                */

static int apply_usage(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                       size_t errlen)
{
    (void)e;
    vctx_t v = {ev, errstr, errlen};
    int li = find_line(c, ev->line_id);
    if (li < 0)
        return verr(&v, "line_id: contract %s has no line \"%s\"", c->contract_id, ev->line_id);
    line_t *l = &c->lines[li];
    if (l->method != RS_METHOD_USAGE)
        return verr(&v, "line_id: line %s is recognized %s, not by usage", l->line_id,
                    rs_method_name(l->method));
    if (ev->quantity.mantissa < 0)
        return verr(&v, "quantity: must not be negative");
    rs_date_t d = ev->occurred_on, last = line_last_day(l);
    if (d < l->start || d > last) {
        char a[16], b[16], x[16];
        return verr(&v, "occurred_at: %s is outside the line's service %s..%s",
                    rs_date_format(d, x, sizeof(x)), rs_date_format(l->start, a, sizeof(a)),
                    rs_date_format(last, b, sizeof(b)));
    }
    __int128 qty = (__int128)ev->quantity.mantissa * rs_pow10(6 - ev->quantity.scale);
    size_t i = l->nusage;
    while (i > 0 && l->usage[i - 1].day > d)
        i--;
    if (i > 0 && l->usage[i - 1].day == d) {
        l->usage[i - 1].qty += qty;
        l->usage[i - 1].count++;
    } else {
        if (grow((void **)&l->usage, &l->capusage, l->nusage + 1, sizeof(rs_usage_day_t)))
            return verr(&v, "out of memory");
        memmove(&l->usage[i + 1], &l->usage[i], (l->nusage - i) * sizeof(rs_usage_day_t));
        l->usage[i].day = d;
        l->usage[i].qty = qty;
        l->usage[i].count = 1;
        l->nusage++;
    }
    mark_dirty(c, rs_period_of(d));
    return 0;
}

/* ------------------------------------------------------------------ */
/* dispatch                                                             */

/* The date an event happened, which moves the contract's clock: when it
 * occurred, or its document or completion date if that is later (so a
 * pre-dated invoice still finds the months before it recognized). Effective
 * dates do not move the clock: a future-dated amendment is not the future. */
static rs_date_t event_clock(const rs_event_t *ev)
{
    rs_date_t t = ev->occurred_on;
    if (ev->on != RS_DATE_NONE && (t == RS_DATE_NONE || ev->on > t))
        t = ev->on;
    if (ev->completed_on != RS_DATE_NONE && (t == RS_DATE_NONE || ev->completed_on > t))
        t = ev->completed_on;
    return t;
}

static int refers_to_invoice(rs_event_type_t t)
{
    return t == RS_EV_PAYMENT_RECEIVED || t == RS_EV_PAYMENT_REFUNDED ||
           t == RS_EV_PAYMENT_FAILED || t == RS_EV_INVOICE_VOIDED ||
           t == RS_EV_INVOICE_UNCOLLECTIBLE || t == RS_EV_CREDIT_NOTE_ISSUED;
}

/* Is the event applicable now? Returns NULL, or what it waits for. */
static const char *waits_for(const contract_t *c, const rs_event_t *ev, char *buf, size_t n)
{
    if (!c->booked && ev->type != RS_EV_CONTRACT_BOOKED) {
        snprintf(buf, n, "contract %s", c->contract_id);
        return buf;
    }
    if (refers_to_invoice(ev->type) && find_invoice(c, ev->invoice_id) < 0) {
        snprintf(buf, n, "invoice %s", ev->invoice_id);
        return buf;
    }
    /* a line an amendment on the contracts topic has not added yet */
    if ((ev->type == RS_EV_USAGE_RECORDED || ev->type == RS_EV_MILESTONE_COMPLETED) &&
        find_line(c, ev->line_id) < 0) {
        snprintf(buf, n, "line %s", ev->line_id);
        return buf;
    }
    if (ev->type == RS_EV_INVOICE_ISSUED)
        for (int i = 0; i < ev->n_bill_lines; i++)
            if (find_line(c, ev->bill_lines[i].line_id) < 0) {
                snprintf(buf, n, "line %s", ev->bill_lines[i].line_id);
                return buf;
            }
    return NULL;
}

static int apply_now(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                     size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    /* Move the clock first: what was delivered before this event is posted
     * under the terms in force before it (I6). */
    rs_date_t t = event_clock(ev);
    if (c->booked && t != RS_DATE_NONE) {
        rs_period_t H = rs_period_of(t) - 1;
        if (c->horizon == RS_PERIOD_NONE || H > c->horizon)
            if (sync_contract(e, c, H, RS_DATE_NONE))
                return verr(&v, "out of memory");
    }
    int rc;
    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        rc = apply_booked(e, c, ev, errstr, errlen);
        if (rc == 0 && t != RS_DATE_NONE)
            c->horizon = RS_PERIOD_NONE;
        if (rc == 0 && sync_contract(e, c, t != RS_DATE_NONE ? rs_period_of(t) - 1 : e->horizon,
                                     RS_DATE_NONE))
            return verr(&v, "out of memory");
        return rc;
    case RS_EV_CONTRACT_AMENDED:
        rc = apply_amended(e, c, ev, errstr, errlen);
        break;
    case RS_EV_CONTRACT_CANCELLED:
        rc = apply_cancelled(e, c, ev, errstr, errlen);
        break;
    case RS_EV_MILESTONE_COMPLETED:
        rc = apply_milestone(e, c, ev, errstr, errlen);
        break;
    case RS_EV_INVOICE_ISSUED:
        rc = apply_invoice(e, c, ev, errstr, errlen);
        break;
    case RS_EV_INVOICE_VOIDED:
        rc = apply_void(e, c, ev, errstr, errlen);
        break;
    case RS_EV_CREDIT_NOTE_ISSUED:
        rc = apply_credit_note(e, c, ev, errstr, errlen);
        break;
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        rc = apply_uncollectible(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_RECEIVED:
        rc = apply_payment(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_REFUNDED:
        rc = apply_refund(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_FAILED:
        rc = apply_payment_failed(e, c, ev, errstr, errlen);
        break;
    case RS_EV_USAGE_RECORDED:
        rc = apply_usage(e, c, ev, errstr, errlen);
        break;
    default:
        return verr(&v, "type: %s does not apply to a contract", rs_event_type_name(ev->type));
    }
    if (rc == 0 && sync_contract(e, c, c->horizon, t))
        return verr(&v, "out of memory");
    return rc;
}

static void late_reject(rs_engine_t *e, const rs_event_t *ev, const char *why)
{
    if (grow((void **)&e->late, &e->caplate, e->nlate + 1, sizeof(rs_rejection_t)))
        return;
    rs_rejection_t *r = &e->late[e->nlate++];
    copy_id(r->event_id, ev->event_id);
    copy_id(r->contract_id, ev->contract_id);
    r->type = ev->type;
    snprintf(r->reason, sizeof(r->reason), "%s", why);
    e->stats.rejected++;
}

/* Apply waiting events that have become applicable, in arrival order. */
static void drain_pending(rs_engine_t *e, contract_t *c)
{
    int progress = 1;
    while (progress) {
        progress = 0;
        for (size_t i = 0; i < c->npend; i++) {
            char buf[RS_ID_MAX + 16];
            if (waits_for(c, &c->pend[i].ev, buf, sizeof(buf)))
                continue;
            rs_pending_t p = c->pend[i];
            memmove(&c->pend[i], &c->pend[i + 1], (c->npend - i - 1) * sizeof(rs_pending_t));
            c->npend--;
            e->stats.pending--;
            char err[512];
            if (apply_now(e, c, &p.ev, err, sizeof(err)) == 0) {
                e->stats.applied++;
            } else {
                /* forget it, so a corrected event with the same id can come */
                seen_remove(&c->seen, &c->nseen, &c->capseen, str_hash(p.ev.event_id, 7));
                late_reject(e, &p.ev, err);
            }
            rs_event_clear(&p.ev);
            progress = 1;
            break;
        }
    }
}

static int close_period(rs_engine_t *e, rs_period_t p)
{
    if (rs_engine_period_closed(e, p))
        return 0;
    /* everything earned through p is posted before the lock */
    if (e->horizon == RS_PERIOD_NONE || e->horizon < p)
        if (rs_engine_advance(e, p))
            return -1;
    e->closed_through = p;
    return 0;
}

static rs_apply_result_t reject(rs_engine_t *e)
{
    e->stats.rejected++;
    return RS_APPLY_REJECTED;
}

rs_apply_result_t rs_engine_apply(rs_engine_t *e, const rs_event_t *ev, char *errstr,
                                  size_t errlen)
{
    errstr[0] = '\0';
    if (ev->event_id[0] == '\0') {
        snprintf(errstr, errlen, "event ?: event_id: required");
        return reject(e);
    }
    if (rs_event_type_name(ev->type) == NULL) {
        snprintf(errstr, errlen, "event %s: type: unknown event type", ev->event_id);
        return reject(e);
    }
    uint64_t idh = str_hash(ev->event_id, 7), ch = rs_event_hash(ev);

    if (ev->type == RS_EV_PERIOD_CLOSED) {
        seen_t *s = seen_find(e->gseen, e->capgseen, idh);
        if (s && s->id_hash) {
            if (s->content_hash == ch) {
                e->stats.duplicates++;
                return RS_APPLY_DUPLICATE;
            }
            snprintf(errstr, errlen,
                     "event %s: event_id: conflicting duplicate (same id, different content)",
                     ev->event_id);
            return reject(e);
        }
        if (ev->period == RS_PERIOD_NONE) {
            snprintf(errstr, errlen, "event %s: period: required", ev->event_id);
            return reject(e);
        }
        if (close_period(e, ev->period) ||
            seen_add(&e->gseen, &e->ngseen, &e->capgseen, idh, ch))
            return RS_APPLY_NOMEM;
        e->stats.applied++;
        return RS_APPLY_OK;
    }

    if (ev->contract_id[0] == '\0') {
        snprintf(errstr, errlen, "event %s: contract_id: required", ev->event_id);
        return reject(e);
    }
    contract_t *c = rs__contract_get_or_create(e, ev->contract_id);
    if (c == NULL)
        return RS_APPLY_NOMEM;
    seen_t *s = seen_find(c->seen, c->capseen, idh);
    if (s && s->id_hash) {
        if (s->content_hash == ch) {
            e->stats.duplicates++;
            return RS_APPLY_DUPLICATE;
        }
        snprintf(errstr, errlen,
                 "event %s: event_id: conflicting duplicate (same id, different content)",
                 ev->event_id);
        return reject(e);
    }
    char wait[RS_ID_MAX + 16];
    if (waits_for(c, ev, wait, sizeof(wait))) {
        if (grow((void **)&c->pend, &c->cappend, c->npend + 1, sizeof(rs_pending_t)))
            return RS_APPLY_NOMEM;
        rs_pending_t *p = &c->pend[c->npend];
        memset(p, 0, sizeof(*p));
        if (rs_event_copy(&p->ev, ev))
            return RS_APPLY_NOMEM;
        snprintf(p->waiting_for, sizeof(p->waiting_for), "%s", wait);
        c->npend++;
        rs__mark_changed(e, c);
        if (seen_add(&c->seen, &c->nseen, &c->capseen, idh, ch))
            return RS_APPLY_NOMEM;
        e->stats.pending++;
        return RS_APPLY_PENDING;
    }
    if (apply_now(e, c, ev, errstr, errlen))
        return reject(e);
    rs__mark_changed(e, c);
    if (seen_add(&c->seen, &c->nseen, &c->capseen, idh, ch))
        return RS_APPLY_NOMEM;
    e->stats.applied++;
    if (c->npend > 0)
        drain_pending(e, c);
    return RS_APPLY_OK;
}

int rs_engine_advance(rs_engine_t *e, rs_period_t through)
{
    if (e->horizon == RS_PERIOD_NONE || through > e->horizon)
        e->horizon = through;
    if (sort_contracts(e))
        return -1;
    for (size_t i = 0; i < e->ncontracts; i++)
        if (sync_contract(e, e->sorted[i], e->horizon, RS_DATE_NONE))
            return -1;
    return 0;
}

size_t rs_engine_take_late_rejections(rs_engine_t *e, rs_rejection_t **out)
{
    size_t n = e->nlate;
    *out = e->late;
    e->late = NULL;
    e->nlate = e->caplate = 0;
    return n;
}

/* ------------------------------------------------------------------ */
/* views                                                                */

static int cmp_view(const void *a, const void *b)
{
    const struct rs_view *x = a, *y = b;
    int r = strcmp(x->c->contract_id, y->c->contract_id);
    if (r)
        return r;
    return strcmp(x->c->lines[x->line].line_id, y->c->lines[y->line].line_id);
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
    if (nv)
        e->views = nv;
    if (ncv)
        e->cviews = ncv;
    if (nv == NULL || ncv == NULL) {
        e->nviews = e->ncviews = 0;
        return;
    }
    size_t k = 0, kc = 0;
    for (size_t i = 0; i < e->nslots; i++) {
        contract_t *c = e->slots[i];
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
    qsort(e->cviews, kc, sizeof(*e->cviews), cmp_contract);
    e->nviews = k;
    e->ncviews = kc;
    e->views_dirty = 0;
}

size_t rs_engine_line_count(const rs_engine_t *e)
{
    build_views(e);
    return e->nviews;
}

void rs_engine_line_get(const rs_engine_t *e, size_t i, rs_line_view_t *o)
{
    build_views(e);
    const contract_t *c = e->views[i].c;
    const line_t *l = &c->lines[e->views[i].line];
    o->contract_id = c->contract_id;
    o->customer_id = c->customer_id;
    o->line_id = l->line_id;
    o->product = l->product;
    o->currency = c->currency;
    o->exponent = c->exponent;
    o->method = l->method;
    o->start = l->start;
    o->end = line_last_day(l);
    o->ended_on = l->ended_on;
    o->price = l->price;
    o->billed = l->billed;
    o->recognized = l->recognized;
    o->deferred = l->deferred;
    o->unbilled = l->unbilled;
    o->received = l->received;
    o->usage_outside = 0;
    if (l->method == RS_METHOD_USAGE && l->nusage > 0) {
        rs_date_t first = l->usage[0].day, lastu = l->usage[l->nusage - 1].day;
        o->usage_outside = usage_value(c, l, first, lastu) -
                           usage_through(c, l, lastu > o->end ? lastu : o->end);
    }
}

rs_money_t rs_engine_line_scheduled(const rs_engine_t *e, size_t i, rs_date_t d)
{
    build_views(e);
    const contract_t *c = e->views[i].c;
    return line_R(e, c, &c->lines[e->views[i].line], d);
}

size_t rs_engine_contract_count(const rs_engine_t *e)
{
    build_views(e);
    return e->ncviews;
}

void rs_engine_contract_get(const rs_engine_t *e, size_t i, rs_contract_view_t *o)
{
    build_views(e);
    const contract_t *c = e->cviews[i];
    o->contract_id = c->contract_id;
    o->customer_id = c->customer_id;
    o->currency = c->currency;
    o->exponent = c->exponent;
    o->cancelled_on = c->cancelled_on;
    o->customer_credit = c->customer_credit;
    o->written_off = c->written_off;
}

size_t rs_engine_pending_count(const rs_engine_t *e)
{
    return (size_t)e->stats.pending;
}

void rs_engine_pending_get(const rs_engine_t *ce, size_t i, rs_pending_view_t *o)
{
    rs_engine_t *e = (rs_engine_t *)ce;
    memset(o, 0, sizeof(*o));
    if (sort_contracts(e))
        return;
    for (size_t k = 0; k < e->ncontracts; k++) {
        contract_t *c = e->sorted[k];
        if (i < c->npend) {
            o->event_id = c->pend[i].ev.event_id;
            o->contract_id = c->contract_id;
            o->type = c->pend[i].ev.type;
            o->waiting_for = c->pend[i].waiting_for;
            return;
        }
        i -= c->npend;
    }
}

void rs_engine_get_stats(const rs_engine_t *e, rs_engine_stats_t *out)
{
    *out = e->stats;
    out->contracts = e->ncontracts;
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
        const contract_t *c = e->cviews[k];
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
            while (k2 > 0 && strcmp(c->inv[idx[k2 - 1]].invoice_id, c->inv[j].invoice_id) > 0) {
                idx[k2] = idx[k2 - 1];
                k2--;
            }
            idx[k2] = j;
        }
        const invoice_t *v = &c->inv[idx[i]];
        free(idx);
        o->contract_id = c->contract_id;
        o->customer_id = c->customer_id;
        o->invoice_id = v->invoice_id;
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
            o->open += open_ar(il);
            o->allowance += il->allowance;
        }
        return;
    }
}
