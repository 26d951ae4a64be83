/*
 * rs_engine.c — the recognition engine. Public contract in rs_engine.h.
 *
 * Invariants kept by this file (each is checked by tests/unit or the
 * property tests):
 *
 *   I1  Money is int64 minor units; intermediate products use __int128; the
 *       only rounding is rs_div_round (half away from zero) applied to
 *       cumulative amounts, so every schedule sums exactly to its total.
 *   I2  Per line, R(d) (cumulative revenue through the end of day d under the
 *       current terms) is a pure function of the line's terms and of the
 *       usage/milestones recorded for it. Nothing about R depends on when
 *       events arrived.
 *   I3  posted[] records, per (service period, component), the revenue
 *       already posted. Syncing a line through horizon H posts, for every
 *       service period <= H and component, desired - posted. Component 0 is
 *       the regular schedule; component k > 0 is the dated jump of segment k
 *       (a catch-up or a true-up), which may post to another account.
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
 *       Every entry's debits equal its credits.
 *   I6  An event is validated completely before anything is changed, so a
 *       rejected event leaves no trace (not even in the idempotency set).
 *   I7  Entry ids are "<contract_id>#<seq>" with seq the contract's counter:
 *       the same events in the same order give the same ids.
 *   I8  Events for a contract not yet booked, and payments for an invoice not
 *       yet issued, wait in the contract's pending list in arrival order and
 *       are applied (or rejected, as late rejections) when the reference
 *       arrives.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L_MONTH 377580 /* lcm(28, 29, 30, 31): day weights of ratable_monthly */
#define UNIT_SCALE 12  /* usage exact amounts: 10^-12 of a major unit */

/* ------------------------------------------------------------------ */
/* state                                                                */

typedef struct seg {
    rs_date_t from, to; /* spread window, inclusive; to < from: nothing */
    rs_money_t base;    /* R(from - 1) plus `jump` */
    rs_money_t spread;  /* spread over [from, to] by the line's method */
    rs_money_t jump;    /* discontinuity at `from` (component index + 1) */
    rs_account_t jump_account;
    char jump_rule[16];
    char source[RS_ID_MAX]; /* the event that made this segment */
} seg_t;

typedef struct usage_day {
    rs_date_t day;
    __int128 exact; /* sum of quantity x unit price, 10^-12 major units */
    uint32_t count;
} usage_day_t;

typedef struct posted {
    rs_period_t sp; /* service period */
    int comp;       /* 0 schedule, k > 0 jump of segment k - 1 */
    rs_money_t amount;
} posted_t;

typedef struct milestone {
    char milestone_id[RS_ID_MAX];
    rs_money_t amount; /* allocated */
    rs_date_t completed_on;
    char source[RS_ID_MAX];
} milestone_t;

typedef struct line {
    char line_id[RS_ID_MAX];
    char product[RS_NAME_MAX];
    rs_method_t method;
    rs_date_t start, end;
    rs_money_t amount; /* as booked */
    rs_money_t price;  /* allocated transaction price (usage: minimum) */
    int has_ssp;
    rs_money_t ssp;
    rs_decimal_t unit_price;
    char terms_source[RS_ID_MAX];

    int nseg, capseg;
    seg_t *segs;
    int nms;
    milestone_t *ms;
    size_t nusage, capusage;
    usage_day_t *usage;
    size_t nposted, capposted;
    posted_t *posted;

    rs_money_t billed, recognized, deferred, unbilled, received;
} line_t;

typedef struct inv_line {
    int line; /* index into contract lines */
    rs_money_t amount, tax, paid;
} inv_line_t;

typedef struct invoice {
    char invoice_id[RS_ID_MAX];
    char source[RS_ID_MAX];
    rs_date_t issued_on;
    int nlines;
    inv_line_t *lines;
} invoice_t;

typedef struct pending {
    rs_event_t ev;
    char waiting_for[RS_ID_MAX + 16];
} pending_t;

typedef struct seen {
    uint64_t id_hash, content_hash; /* id_hash 0 = empty slot */
} seen_t;

typedef struct contract {
    char contract_id[RS_ID_MAX];
    char customer_id[RS_ID_MAX];
    char currency[4];
    int exponent;
    int booked;
    char booked_by[RS_ID_MAX];
    rs_date_t booked_on;
    rs_period_t horizon;    /* recognition posted through; RS_PERIOD_NONE */
    rs_period_t frontier;   /* latest period posted to; RS_PERIOD_NONE */
    rs_period_t dirty_from; /* earliest period whose R may have changed */
    uint64_t seq;

    int nlines;
    line_t *lines;
    int ninv;
    size_t capinv;
    invoice_t *inv;
    size_t npend, cappend;
    pending_t *pend;
    size_t nseen, capseen;
    seen_t *seen;
} contract_t;

struct rs_engine {
    rs_policy_t policy;
    contract_t **slots; /* open addressing by contract_id */
    size_t nslots, ncontracts;
    contract_t **sorted; /* cache, rebuilt when dirty */
    int sorted_dirty;
    struct {
        contract_t *c;
        int line;
    } * views;
    size_t nviews;
    int views_dirty;

    rs_period_t *closed;
    size_t nclosed, capclosed;
    seen_t *gseen; /* period.closed events */
    size_t ngseen, capgseen;
    rs_period_t horizon; /* every contract is recognized at least through this */

    rs_entry_sink_fn sink;
    void *sink_opaque;
    rs_engine_stats_t stats;
    rs_rejection_t *late;
    size_t nlate, caplate;
};

/* ------------------------------------------------------------------ */
/* small utilities                                                       */

#define ERR(...)                                                                               \
    do {                                                                                       \
        snprintf(errstr, errlen, __VA_ARGS__);                                                 \
        return -1;                                                                             \
    } while (0)

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

static uint64_t str_hash(const char *s, uint64_t seed)
{
    uint64_t h = seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

static void copy_id(char *dst, const char *src)
{
    snprintf(dst, RS_ID_MAX, "%s", src);
}

/* seen sets: open addressing on id_hash */
static seen_t *seen_find(seen_t *tab, size_t cap, uint64_t idh)
{
    if (cap == 0)
        return NULL;
    for (size_t i = idh & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (tab[i].id_hash == idh || tab[i].id_hash == 0)
            return &tab[i];
    }
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

/* ------------------------------------------------------------------ */
/* lifecycle                                                             */

static void line_free(line_t *l)
{
    free(l->segs);
    free(l->ms);
    free(l->usage);
    free(l->posted);
}

static void contract_free(contract_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nlines; i++)
        line_free(&c->lines[i]);
    free(c->lines);
    for (int i = 0; i < c->ninv; i++)
        free(c->inv[i].lines);
    free(c->inv);
    for (size_t i = 0; i < c->npend; i++)
        rs_event_clear(&c->pend[i].ev);
    free(c->pend);
    free(c->seen);
    free(c);
}

int rs_engine_new(rs_engine_t **out, const rs_policy_t *policy, char *errstr, size_t errlen)
{
    rs_engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        ERR("out of memory");
    if (policy)
        e->policy = *policy;
    else
        rs_policy_defaults(&e->policy);
    if (e->policy.cancellation > RS_CANCEL_FORFEIT ||
        e->policy.bad_debt > RS_BAD_DEBT_REVERSE_REVENUE ||
        e->policy.proration > RS_PRORATE_30_360) {
        free(e);
        ERR("invalid policy");
    }
    e->horizon = RS_PERIOD_NONE;
    *out = e;
    return 0;
}

void rs_engine_destroy(rs_engine_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nslots; i++)
        contract_free(e->slots[i]);
    free(e->slots);
    free(e->sorted);
    free(e->views);
    free(e->closed);
    free(e->gseen);
    free(e->late);
    free(e);
}

void rs_engine_set_sink(rs_engine_t *e, rs_entry_sink_fn fn, void *opaque)
{
    e->sink = fn;
    e->sink_opaque = opaque;
}

static contract_t *contract_find(const rs_engine_t *e, const char *id)
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

static void slot_put(contract_t **slots, size_t nslots, contract_t *c)
{
    uint64_t h = str_hash(c->contract_id, 0xcbf29ce484222325ULL);
    size_t i = h & (nslots - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (nslots - 1);
    slots[i] = c;
}

static contract_t *contract_get_or_create(rs_engine_t *e, const char *id)
{
    contract_t *c = contract_find(e, id);
    if (c)
        return c;
    if ((e->ncontracts + 1) * 10 >= e->nslots * 7) {
        size_t n = e->nslots ? e->nslots * 2 : 64;
        contract_t **ns = calloc(n, sizeof(*ns));
        if (ns == NULL)
            return NULL;
        for (size_t i = 0; i < e->nslots; i++)
            if (e->slots[i])
                slot_put(ns, n, e->slots[i]);
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
    slot_put(e->slots, e->nslots, c);
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
/* periods                                                               */

int rs_engine_period_closed(const rs_engine_t *e, rs_period_t p)
{
    size_t lo = 0, hi = e->nclosed;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->closed[mid] == p)
            return 1;
        if (e->closed[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static rs_period_t first_open(const rs_engine_t *e, rs_period_t p)
{
    while (rs_engine_period_closed(e, p))
        p++;
    return p;
}

/* ------------------------------------------------------------------ */
/* R(d): the cumulative recognition function of a line                   */

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

static rs_money_t seg_spread_at(const rs_engine_t *e, const line_t *l, const seg_t *s,
                                rs_date_t d)
{
    if (s->to < s->from || d < s->from || s->spread == 0)
        return 0;
    if (d >= s->to)
        return s->spread;
    if (l->method == RS_METHOD_RATABLE_MONTHLY) {
        __int128 num = month_units(e, s->from, d), den = month_units(e, s->from, s->to);
        return (rs_money_t)rs_div_round((__int128)s->spread * num, den);
    }
    __int128 elapsed = d - s->from + 1, days = s->to - s->from + 1;
    return (rs_money_t)rs_div_round((__int128)s->spread * elapsed, days);
}

static rs_money_t usage_to_minor(__int128 exact, int exponent)
{
    return (rs_money_t)rs_div_round(exact, rs_pow10(UNIT_SCALE - exponent));
}

static rs_money_t usage_through(const contract_t *c, const line_t *l, rs_date_t d)
{
    __int128 sum = 0;
    for (size_t i = 0; i < l->nusage && l->usage[i].day <= d; i++)
        sum += l->usage[i].exact;
    return usage_to_minor(sum, c->exponent);
}

static rs_money_t line_R(const rs_engine_t *e, const contract_t *c, const line_t *l,
                         rs_date_t d)
{
    switch (l->method) {
    case RS_METHOD_USAGE: {
        rs_money_t u = usage_through(c, l, d);
        if (d >= l->end) {
            rs_money_t total = usage_through(c, l, l->end);
            if (l->price > total)
                u += l->price - total;
        }
        return u;
    }
    case RS_METHOD_MILESTONE: {
        rs_money_t r = 0;
        for (int i = 0; i < l->nms; i++)
            if (l->ms[i].completed_on != RS_DATE_NONE && l->ms[i].completed_on <= d)
                r += l->ms[i].amount;
        return r;
    }
    default: {
        const seg_t *s = NULL;
        for (int i = 0; i < l->nseg && l->segs[i].from <= d; i++)
            s = &l->segs[i];
        if (s == NULL)
            return 0;
        return s->base + seg_spread_at(e, l, s, d);
    }
    }
}

/* ------------------------------------------------------------------ */
/* posting                                                               */

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
        pp = c->frontier;
    rs_date_t lo = rs_period_first_day(pp), hi = rs_period_last_day(pp);
    en->posted_on = natural < lo ? lo : natural > hi ? hi : natural;
    en->period = pp;
    en->service_period = service_period == RS_PERIOD_NONE ? pp : service_period;
    copy_id(en->contract_id, c->contract_id);
    copy_id(en->customer_id, c->customer_id);
    if (line >= 0)
        copy_id(en->line_id, c->lines[line].line_id);
    copy_id(en->document_id, document ? document : "");
    memcpy(en->currency, c->currency, sizeof(en->currency));
    en->exponent = c->exponent;
}

static void entry_dr(entry_ctx_t *x, rs_account_t a, rs_money_t v)
{
    if (v == 0)
        return;
    rs_posting_t *p = &x->en.postings[x->en.n_postings++];
    p->account = a;
    p->debit = v > 0 ? v : 0;
    p->credit = v < 0 ? -v : 0;
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

static void entry_emit(entry_ctx_t *x)
{
    rs_entry_t *en = &x->en;
    if (en->n_postings == 0)
        return;
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

static posted_t *posted_find(line_t *l, rs_period_t sp, int comp)
{
    for (size_t i = 0; i < l->nposted; i++)
        if (l->posted[i].sp == sp && l->posted[i].comp == comp)
            return &l->posted[i];
    return NULL;
}

static int posted_add(line_t *l, rs_period_t sp, int comp, rs_money_t d)
{
    posted_t *p = posted_find(l, sp, comp);
    if (p == NULL) {
        if (grow((void **)&l->posted, &l->capposted, l->nposted + 1, sizeof(posted_t)))
            return -1;
        p = &l->posted[l->nposted++];
        p->sp = sp;
        p->comp = comp;
        p->amount = 0;
    }
    p->amount += d;
    return 0;
}

static rs_date_t line_first_day(const line_t *l)
{
    rs_date_t f = l->start;
    if (l->nseg > 0 && l->segs[0].from < f)
        f = l->segs[0].from;
    for (int i = 0; i < l->nms; i++)
        if (l->ms[i].completed_on != RS_DATE_NONE && l->ms[i].completed_on < f)
            f = l->ms[i].completed_on;
    return f;
}

/* Sources of a recognition entry for service period sp. */
static void recognition_sources(entry_ctx_t *x, const line_t *l, rs_period_t sp, int comp)
{
    if (comp > 0) {
        entry_source(x, l->segs[comp - 1].source);
        return;
    }
    entry_source(x, l->terms_source);
    for (int i = 0; i < l->nseg; i++)
        if (l->segs[i].source[0] && rs_period_of(l->segs[i].from) <= sp)
            entry_source(x, l->segs[i].source);
    for (int i = 0; i < l->nms; i++)
        if (l->ms[i].completed_on != RS_DATE_NONE && rs_period_of(l->ms[i].completed_on) == sp)
            entry_source(x, l->ms[i].source);
    if (l->method == RS_METHOD_USAGE) {
        rs_date_t a = rs_period_first_day(sp), b = rs_period_last_day(sp);
        for (size_t i = 0; i < l->nusage; i++)
            if (l->usage[i].day >= a && l->usage[i].day <= b)
                x->en.source_count += l->usage[i].count;
    }
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

/* Post desired - posted for every component of a line in service period sp.
 * `trigger` is the date of the event that caused the sync (RS_DATE_NONE for
 * the passage of time). */
static int sync_line_period(rs_engine_t *e, contract_t *c, int li, rs_period_t sp,
                            rs_date_t trigger)
{
    line_t *l = &c->lines[li];
    rs_date_t a = rs_period_first_day(sp), b = rs_period_last_day(sp);
    rs_money_t total = line_R(e, c, l, b) - line_R(e, c, l, a - 1);
    for (int comp = 0; comp <= l->nseg; comp++) {
        rs_money_t desired;
        rs_account_t acct = RS_ACCT_REVENUE;
        const char *rule = rs_method_name(l->method);
        if (comp == 0) {
            desired = total;
            for (int k = 0; k < l->nseg; k++)
                if (l->segs[k].jump != 0 && rs_period_of(l->segs[k].from) == sp)
                    desired -= l->segs[k].jump;
        } else {
            const seg_t *s = &l->segs[comp - 1];
            if (s->jump == 0 && posted_find(l, sp, comp) == NULL)
                continue;
            desired = rs_period_of(s->from) == sp ? s->jump : 0;
            acct = s->jump_account;
            rule = s->jump_rule;
        }
        posted_t *p = posted_find(l, sp, comp);
        rs_money_t delta = desired - (p ? p->amount : 0);
        if (delta == 0)
            continue;
        rs_date_t natural = b;
        if (trigger != RS_DATE_NONE && trigger > natural)
            natural = trigger;
        entry_ctx_t x;
        entry_begin(&x, e, c, li, RS_ENTRY_RECOGNITION, rule, natural, sp, NULL);
        recognition_sources(&x, l, sp, comp);
        post_revenue(&x, l, acct, delta);
        if (posted_add(l, sp, comp, delta))
            return -1;
        entry_emit(&x);
    }
    return 0;
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
    rs_period_t first = H + 1;
    if (c->horizon != RS_PERIOD_NONE)
        first = c->horizon + 1;
    if (c->horizon == RS_PERIOD_NONE ||
        (c->dirty_from != RS_PERIOD_NONE && c->dirty_from < first)) {
        rs_period_t lo = H + 1;
        for (int i = 0; i < c->nlines; i++) {
            rs_period_t f = line_first_period(&c->lines[i]);
            if (f < lo)
                lo = f;
        }
        if (c->horizon == RS_PERIOD_NONE || c->dirty_from < lo)
            first = lo;
        else
            first = c->dirty_from;
    }
    for (rs_period_t sp = first; sp <= H; sp++)
        for (int i = 0; i < c->nlines; i++)
            if (sync_line_period(e, c, i, sp, trigger))
                return -1;
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
/* validation helpers                                                    */

typedef struct vctx {
    const rs_event_t *ev;
    char *errstr;
    size_t errlen;
} vctx_t;

#define VERR(v, ...)                                                                           \
    do {                                                                                       \
        int n_ = snprintf((v)->errstr, (v)->errlen, "event %s: ", (v)->ev->event_id);          \
        if (n_ > 0 && (size_t)n_ < (v)->errlen)                                                \
            snprintf((v)->errstr + n_, (v)->errlen - (size_t)n_, __VA_ARGS__);                 \
        return -1;                                                                             \
    } while (0)

static int to_minor(vctx_t *v, const char *field, rs_decimal_t d, int exponent, int min_sign,
                    rs_money_t *out)
{
    char why[128];
    if (rs_decimal_to_minor(d, exponent, out, why, sizeof(why)))
        VERR(v, "%s: %s", field, why);
    if (min_sign > 0 && *out <= 0)
        VERR(v, "%s: must be greater than zero", field);
    if (min_sign == 0 && *out < 0)
        VERR(v, "%s: must not be negative", field);
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

/* Largest-remainder allocation of `total` (>= 0) in proportion to w[] (>= 0,
 * sum > 0); ties go to the earlier index. Returns 0, or -1 on ENOMEM. */
static int allocate(rs_money_t total, const rs_money_t *w, size_t n, rs_money_t *out)
{
    __int128 W = 0;
    for (size_t i = 0; i < n; i++)
        W += w[i];
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

/* ------------------------------------------------------------------ */
/* contract.booked                                                        */

/* Build lines from specs into a fresh array (validated). */
static int build_lines(rs_engine_t *e, vctx_t *v, int exponent, const rs_event_t *ev,
                       line_t **out)
{
    (void)e;
    int n = ev->n_lines;
    line_t *ls = calloc((size_t)n, sizeof(*ls));
    rs_money_t *w = calloc((size_t)n, sizeof(*w)), *alloc = calloc((size_t)n, sizeof(*w));
    int rc = -1, n_take = 0, n_ssp = 0;
    rs_money_t total = 0;
    char f[64];
    if (ls == NULL || w == NULL || alloc == NULL) {
        snprintf(v->errstr, v->errlen, "out of memory");
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
        copy_id(l->terms_source, ev->event_id);
        snprintf(f, sizeof(f), "lines[%d].amount", i);
        if (to_minor(v, f, s->amount, exponent, 0, &l->amount))
            goto out;
        if (l->end < l->start) {
            snprintf(f, sizeof(f), "lines[%d].end", i);
            int n_ =
                snprintf(v->errstr, v->errlen, "event %s: %s: before start", ev->event_id, f);
            (void)n_;
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(ls[j].line_id, l->line_id) == 0) {
                snprintf(v->errstr, v->errlen, "event %s: lines[%d].line_id: duplicate \"%s\"",
                         ev->event_id, i, l->line_id);
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
                snprintf(v->errstr, v->errlen, "event %s: lines[%d].unit_price: required",
                         ev->event_id, i);
                goto out;
            }
            if (s->unit_price.mantissa < 0) {
                snprintf(v->errstr, v->errlen,
                         "event %s: lines[%d].unit_price: must not be negative", ev->event_id,
                         i);
                goto out;
            }
            l->unit_price = s->unit_price;
        } else {
            n_take++;
            total += l->amount;
            if (l->has_ssp)
                n_ssp++;
        }
        if (l->method == RS_METHOD_MILESTONE) {
            if (s->n_milestones <= 0) {
                snprintf(v->errstr, v->errlen, "event %s: lines[%d].milestones: required",
                         ev->event_id, i);
                goto out;
            }
            l->ms = calloc((size_t)s->n_milestones, sizeof(*l->ms));
            if (l->ms == NULL)
                goto out;
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
                char a[40], b[40];
                snprintf(v->errstr, v->errlen,
                         "event %s: lines[%d].milestones: amounts sum to %s, the line's "
                         "amount is %s",
                         ev->event_id, i, rs_money_format(sum, exponent, a, sizeof(a)),
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
                snprintf(v->errstr, v->errlen, "out of memory");
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
    /* The schedule: one segment over the service. */
    for (int i = 0; i < n; i++) {
        line_t *l = &ls[i];
        if (l->method == RS_METHOD_USAGE || l->method == RS_METHOD_MILESTONE)
            continue;
        l->segs = calloc(1, sizeof(seg_t));
        if (l->segs == NULL)
            goto out;
        l->nseg = l->capseg = 1;
        l->segs[0].from = l->start;
        l->segs[0].to = l->method == RS_METHOD_POINT_IN_TIME ? l->start : l->end;
        l->segs[0].spread = l->price;
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

static int apply_booked(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    if (c->booked)
        VERR(&v, "contract_id: contract %s was already booked by event %s", c->contract_id,
             c->booked_by);
    int exponent = rs_currency_exponent(ev->currency);
    if (exponent < 0)
        VERR(&v, "currency: unknown currency \"%s\"", ev->currency);
    if (ev->n_lines <= 0)
        VERR(&v, "lines: at least one line is required");
    line_t *ls = NULL;
    if (build_lines(e, &v, exponent, ev, &ls))
        return -1;
    c->lines = ls;
    c->nlines = ev->n_lines;
    c->booked = 1;
    c->exponent = exponent;
    memcpy(c->currency, ev->currency, sizeof(c->currency));
    copy_id(c->customer_id, ev->customer_id);
    copy_id(c->booked_by, ev->event_id);
    c->booked_on = ev->booked_on;
    e->views_dirty = 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* invoices and payments                                                  */

static int apply_invoice(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    char f[64];
    int k = find_invoice(c, ev->invoice_id);
    if (k >= 0)
        VERR(&v, "invoice_id: invoice %s was already issued by event %s", ev->invoice_id,
             c->inv[k].source);
    if (ev->n_bill_lines <= 0)
        VERR(&v, "lines: at least one line is required");
    inv_line_t *il = calloc((size_t)ev->n_bill_lines, sizeof(*il));
    if (il == NULL)
        VERR(&v, "out of memory");
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        il[i].line = find_line(c, b->line_id);
        if (il[i].line < 0) {
            free(il);
            VERR(&v, "lines[%d].line_id: contract %s has no line \"%s\"", i, c->contract_id,
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
    if (grow((void **)&c->inv, &c->capinv, (size_t)c->ninv + 1, sizeof(invoice_t))) {
        free(il);
        VERR(&v, "out of memory");
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
    }
    return 0;
}

static int apply_payment(rs_engine_t *e, contract_t *c, const rs_event_t *ev, int k,
                         char *errstr, size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    rs_money_t amount;
    if (to_minor(&v, "amount", ev->amount, c->exponent, 1, &amount))
        return -1;
    invoice_t *inv = &c->inv[k];
    int n = inv->nlines;
    rs_money_t *open = calloc((size_t)n + 1, sizeof(*open));
    rs_money_t *alloc = calloc((size_t)n + 1, sizeof(*alloc));
    if (open == NULL || alloc == NULL) {
        free(open);
        free(alloc);
        VERR(&v, "out of memory");
    }
    rs_money_t total_open = 0;
    for (int i = 0; i < n; i++) {
        open[i] = inv->lines[i].amount + inv->lines[i].tax - inv->lines[i].paid;
        if (open[i] < 0)
            open[i] = 0;
        total_open += open[i];
    }
    rs_money_t applied = amount < total_open ? amount : total_open;
    if (applied > 0 && allocate(applied, open, (size_t)n, alloc)) {
        free(open);
        free(alloc);
        VERR(&v, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (alloc[i] == 0)
            continue;
        line_t *l = &c->lines[inv->lines[i].line];
        entry_ctx_t x;
        entry_begin(&x, e, c, inv->lines[i].line, RS_ENTRY_PAYMENT, "payment", ev->on,
                    RS_PERIOD_NONE, ev->payment_id);
        entry_source(&x, ev->event_id);
        entry_source(&x, inv->source);
        entry_dr(&x, RS_ACCT_CASH, alloc[i]);
        entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, alloc[i]);
        inv->lines[i].paid += alloc[i];
        l->received += alloc[i];
        x.en.received = alloc[i];
        entry_emit(&x);
    }
    if (amount > applied) {
        entry_ctx_t x;
        entry_begin(&x, e, c, -1, RS_ENTRY_CUSTOMER_CREDIT, "overpayment", ev->on,
                    RS_PERIOD_NONE, ev->payment_id);
        entry_source(&x, ev->event_id);
        entry_dr(&x, RS_ACCT_CASH, amount - applied);
        entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, amount - applied);
        entry_emit(&x);
    }
    free(open);
    free(alloc);
    return 0;
}

/* ------------------------------------------------------------------ */
/* usage and milestones                                                   */

static int apply_usage(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                       size_t errlen)
{
    (void)e;
    vctx_t v = {ev, errstr, errlen};
    int li = find_line(c, ev->line_id);
    if (li < 0)
        VERR(&v, "line_id: contract %s has no line \"%s\"", c->contract_id, ev->line_id);
    line_t *l = &c->lines[li];
    if (l->method != RS_METHOD_USAGE)
        VERR(&v, "line_id: line %s is recognized %s, not by usage", l->line_id,
             rs_method_name(l->method));
    if (ev->quantity.mantissa < 0)
        VERR(&v, "quantity: must not be negative");
    rs_date_t d = ev->occurred_on;
    if (d < l->start || d > l->end) {
        char a[16], b[16], x[16];
        VERR(&v, "occurred_at: %s is outside the line's service %s..%s",
             rs_date_format(d, x, sizeof(x)), rs_date_format(l->start, a, sizeof(a)),
             rs_date_format(l->end, b, sizeof(b)));
    }
    /* quantity (10^-qs) x price (10^-ps) -> 10^-12 major units */
    __int128 exact = (__int128)ev->quantity.mantissa * l->unit_price.mantissa;
    int scale = ev->quantity.scale + l->unit_price.scale;
    exact *= rs_pow10(UNIT_SCALE - scale);
    mark_dirty(c, rs_period_of(d));
    size_t i = l->nusage;
    while (i > 0 && l->usage[i - 1].day > d)
        i--;
    if (i > 0 && l->usage[i - 1].day == d) {
        l->usage[i - 1].exact += exact;
        l->usage[i - 1].count++;
        return 0;
    }
    if (grow((void **)&l->usage, &l->capusage, l->nusage + 1, sizeof(usage_day_t)))
        VERR(&v, "out of memory");
    memmove(&l->usage[i + 1], &l->usage[i], (l->nusage - i) * sizeof(usage_day_t));
    l->usage[i].day = d;
    l->usage[i].exact = exact;
    l->usage[i].count = 1;
    l->nusage++;
    return 0;
}

static int apply_milestone(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                           size_t errlen)
{
    (void)e;
    vctx_t v = {ev, errstr, errlen};
    int li = find_line(c, ev->line_id);
    if (li < 0)
        VERR(&v, "line_id: contract %s has no line \"%s\"", c->contract_id, ev->line_id);
    line_t *l = &c->lines[li];
    if (l->method != RS_METHOD_MILESTONE)
        VERR(&v, "line_id: line %s is recognized %s, not by milestones", l->line_id,
             rs_method_name(l->method));
    for (int k = 0; k < l->nms; k++) {
        if (strcmp(l->ms[k].milestone_id, ev->milestone_id) != 0)
            continue;
        if (l->ms[k].completed_on != RS_DATE_NONE)
            VERR(&v, "milestone_id: milestone %s was already completed by event %s",
                 ev->milestone_id, l->ms[k].source);
        l->ms[k].completed_on = ev->completed_on;
        copy_id(l->ms[k].source, ev->event_id);
        mark_dirty(c, rs_period_of(ev->completed_on));
        return 0;
    }
    VERR(&v, "milestone_id: line %s has no milestone \"%s\"", l->line_id, ev->milestone_id);
}

/* ------------------------------------------------------------------ */
/* dispatch                                                              */

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

/* Is the event applicable now? Returns NULL, or what it waits for. */
static const char *waits_for(const contract_t *c, const rs_event_t *ev, char *buf, size_t n)
{
    if (!c->booked && ev->type != RS_EV_CONTRACT_BOOKED) {
        snprintf(buf, n, "contract %s", c->contract_id);
        return buf;
    }
    if ((ev->type == RS_EV_PAYMENT_RECEIVED || ev->type == RS_EV_PAYMENT_REFUNDED ||
         ev->type == RS_EV_PAYMENT_FAILED || ev->type == RS_EV_INVOICE_VOIDED ||
         ev->type == RS_EV_INVOICE_UNCOLLECTIBLE || ev->type == RS_EV_CREDIT_NOTE_ISSUED) &&
        find_invoice(c, ev->invoice_id) < 0) {
        snprintf(buf, n, "invoice %s", ev->invoice_id);
        return buf;
    }
    return NULL;
}

static int apply_now(rs_engine_t *e, contract_t *c, const rs_event_t *ev, char *errstr,
                     size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    /* Move the clock first: what was delivered before this event is posted
     * under the terms in force before it. Validation happens in the
     * handlers before any change; time passing is not a change. */
    rs_date_t t = event_clock(ev);
    if (c->booked && t != RS_DATE_NONE) {
        rs_period_t H = rs_period_of(t) - 1;
        if (c->horizon == RS_PERIOD_NONE || H > c->horizon)
            if (sync_contract(e, c, H, RS_DATE_NONE))
                VERR(&v, "out of memory");
    }
    int rc;
    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        rc = apply_booked(e, c, ev, errstr, errlen);
        if (rc == 0 && t != RS_DATE_NONE && sync_contract(e, c, rs_period_of(t) - 1, t))
            VERR(&v, "out of memory");
        return rc;
    case RS_EV_INVOICE_ISSUED:
        rc = apply_invoice(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_RECEIVED:
        rc = apply_payment(e, c, ev, find_invoice(c, ev->invoice_id), errstr, errlen);
        break;
    case RS_EV_USAGE_RECORDED:
        rc = apply_usage(e, c, ev, errstr, errlen);
        break;
    case RS_EV_MILESTONE_COMPLETED:
        rc = apply_milestone(e, c, ev, errstr, errlen);
        break;
    default:
        VERR(&v, "type: %s is not supported by this engine", rs_event_type_name(ev->type));
    }
    if (rc == 0 && sync_contract(e, c, c->horizon, t))
        VERR(&v, "out of memory");
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
            pending_t p = c->pend[i];
            memmove(&c->pend[i], &c->pend[i + 1], (c->npend - i - 1) * sizeof(pending_t));
            c->npend--;
            e->stats.pending--;
            char err[512];
            if (apply_now(e, c, &p.ev, err, sizeof(err)) == 0) {
                e->stats.applied++;
            } else {
                /* forget it, so a corrected event with the same id can come */
                seen_t *s = seen_find(c->seen, c->capseen, str_hash(p.ev.event_id, 7));
                if (s && s->id_hash) {
                    /* tombstone-free removal: rebuild the set */
                    size_t cap = c->capseen;
                    seen_t *old = c->seen;
                    c->seen = NULL;
                    c->nseen = c->capseen = 0;
                    uint64_t drop = s->id_hash;
                    for (size_t j = 0; j < cap; j++)
                        if (old[j].id_hash && old[j].id_hash != drop)
                            seen_add(&c->seen, &c->nseen, &c->capseen, old[j].id_hash,
                                     old[j].content_hash);
                    free(old);
                }
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
    if (e->horizon == RS_PERIOD_NONE || e->horizon < p)
        if (rs_engine_advance(e, p))
            return -1;
    if (grow((void **)&e->closed, &e->capclosed, e->nclosed + 1, sizeof(rs_period_t)))
        return -1;
    size_t i = e->nclosed;
    while (i > 0 && e->closed[i - 1] > p) {
        e->closed[i] = e->closed[i - 1];
        i--;
    }
    e->closed[i] = p;
    e->nclosed++;
    return 0;
}

rs_apply_result_t rs_engine_apply(rs_engine_t *e, const rs_event_t *ev, char *errstr,
                                  size_t errlen)
{
    vctx_t v = {ev, errstr, errlen};
    errstr[0] = '\0';
    if (ev->event_id[0] == '\0') {
        snprintf(errstr, errlen, "event ?: event_id: required");
        goto rejected;
    }
    if (rs_event_type_name(ev->type) == NULL) {
        snprintf(errstr, errlen, "event %s: type: unknown event type", ev->event_id);
        goto rejected;
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
            goto rejected;
        }
        if (ev->period == RS_PERIOD_NONE) {
            snprintf(errstr, errlen, "event %s: period: required", ev->event_id);
            goto rejected;
        }
        if (close_period(e, ev->period) ||
            seen_add(&e->gseen, &e->ngseen, &e->capgseen, idh, ch))
            return RS_APPLY_NOMEM;
        e->stats.applied++;
        return RS_APPLY_OK;
    }

    if (ev->contract_id[0] == '\0') {
        snprintf(errstr, errlen, "event %s: contract_id: required", ev->event_id);
        goto rejected;
    }
    contract_t *c = contract_get_or_create(e, ev->contract_id);
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
        goto rejected;
    }
    char wait[RS_ID_MAX + 16];
    if (waits_for(c, ev, wait, sizeof(wait))) {
        if (grow((void **)&c->pend, &c->cappend, c->npend + 1, sizeof(pending_t)))
            return RS_APPLY_NOMEM;
        pending_t *p = &c->pend[c->npend];
        memset(p, 0, sizeof(*p));
        if (rs_event_copy(&p->ev, ev))
            return RS_APPLY_NOMEM;
        snprintf(p->waiting_for, sizeof(p->waiting_for), "%s", wait);
        c->npend++;
        if (seen_add(&c->seen, &c->nseen, &c->capseen, idh, ch))
            return RS_APPLY_NOMEM;
        e->stats.pending++;
        return RS_APPLY_PENDING;
    }
    if (apply_now(e, c, ev, errstr, errlen))
        goto rejected;
    if (seen_add(&c->seen, &c->nseen, &c->capseen, idh, ch))
        return RS_APPLY_NOMEM;
    e->stats.applied++;
    if (c->npend > 0)
        drain_pending(e, c);
    return RS_APPLY_OK;
rejected:
    (void)v;
    e->stats.rejected++;
    return RS_APPLY_REJECTED;
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
/* views                                                                 */

static int cmp_view(const void *a, const void *b)
{
    const struct {
        contract_t *c;
        int line;
    } *x = a, *y = b;
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
    size_t n = 0;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i] && e->slots[i]->booked)
            n += (size_t)e->slots[i]->nlines;
    void *nv = realloc(e->views, (n + 1) * sizeof(*e->views));
    if (nv == NULL) {
        e->nviews = 0;
        return;
    }
    e->views = nv;
    size_t k = 0;
    for (size_t i = 0; i < e->nslots; i++) {
        contract_t *c = e->slots[i];
        if (c == NULL || !c->booked)
            continue;
        for (int j = 0; j < c->nlines; j++) {
            e->views[k].c = c;
            e->views[k].line = j;
            k++;
        }
    }
    qsort(e->views, k, sizeof(*e->views), cmp_view);
    e->nviews = k;
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
    o->end = l->end;
    o->price = l->price;
    o->billed = l->billed;
    o->recognized = l->recognized;
    o->deferred = l->deferred;
    o->unbilled = l->unbilled;
    o->received = l->received;
}

rs_money_t rs_engine_line_scheduled(const rs_engine_t *e, size_t i, rs_date_t d)
{
    build_views(e);
    const contract_t *c = e->views[i].c;
    return line_R(e, c, &c->lines[e->views[i].line], d);
}

/* Pending views: walk contracts in slot order, sorted by contract id. */
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
