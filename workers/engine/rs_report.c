/*
 * rs_report.c — report rows from a journal and the engine's terms.
 *
 * Invariants (see rs_report.h for the contract):
 *   - Only entries with period <= through are read; everything is summed in
 *     int64 minor units per currency, never across currencies.
 *   - Balances and rollforward come from the entries alone, so they equal
 *     what a ledger that imported the same entries would show.
 *   - Every report but the journal is computed from an rs_report_acc_t (sums
 *     per line and period, per currency and period); the journal-based
 *     functions build one from the journal first, so there is one
 *     implementation of the figures. An aggregator told its report's range
 *     (floor, limit) and needs (rs_report_acc_need) keeps less per line and
 *     refuses any report it could not answer exactly (see Folding).
 *   - The projected part of the waterfall (periods after `through`) comes
 *     from each line's R(d): it starts from what was recognized by `through`
 *     and ends at R at the line's last day, so actual + projected equals the
 *     line's scheduled total.
 */
#include "rs_report.h"
#include "rs_hash.h"

#include <stdint.h>
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
/* *dst += v with rs_money_add: a total out of range (many contracts in one
 * currency) sets *ovf and leaves *dst, never wraps. */
static void add_to(rs_money_t *dst, rs_money_t v, int *ovf)
{
    if (rs_money_add(*dst, v, dst) != 0)
        *ovf = 1;
}

static rs_money_t net_debit(const rs_entry_t *e, rs_account_t a)
{
    rs_money_t v = 0;
    for (int i = 0; i < e->n_postings; i++)
        if (e->postings[i].account == a)
            v += e->postings[i].debit - e->postings[i].credit;
    return v;
}

/* ---- the aggregator ---- */

/* Sums of one line's entries, in this order: a line that keeps fewer (see
 * rs_report_acc_need) keeps the first ones. */
enum {
    S_BILLED,
    S_RECOGNIZED, /* the waterfall's projection needs these two */
    S_RECEIVED,
    S_DEFERRED,
    S_UNBILLED, /* the balances need these five */
    S_CREDIT,   /* customer_credit: net credit (owed to the customer) */
    S_WRITTEN,  /* receivables declared uncollectible, still open */
    S__COUNT    /* the exceptions need all */
};
typedef struct line_sums {
    rs_money_t v[S__COUNT];
} line_sums_t;

/* The sums of one line's entries posted in one period. */
typedef struct line_cell {
    rs_period_t period; /* first member: see cell_at() */
    line_sums_t s;
} line_cell_t;

/* One line, in one allocation: its cells, the first nsums sums of the
 * entries at or below the fold floor (see Folding), then its ids
 * "contract\0line\0". For a simple contract's "C-0000001" / "L1" that is 96
 * bytes with glibc's header (balances: 80, waterfall: 48). No hash is kept:
 * the table recomputes it when it grows, and a probe compares the ids. */
typedef struct line_acc {
    line_cell_t *cells; /* the periods above the floor, sorted; NULL if none */
    uint32_t n, cap;
    rs_money_t base[]; /* nsums of them, then the ids */
} line_acc_t;

static inline const char *line_contract(const line_acc_t *l, int nsums)
{
    return (const char *)(l->base + nsums);
}

static inline const char *line_line(const line_acc_t *l, int nsums)
{
    const char *c = line_contract(l, nsums);
    return c + strlen(c) + 1;
}

/* Sums of one currency's entries posted in one period. */
typedef struct cur_cell {
    rs_period_t period; /* first member: see cell_at() */
    int exponent;       /* of the cell's first entry */
    size_t first;       /* 1 + ordinal of the cell's first entry; 0: new cell */
    rs_money_t recognized, deferred_move, billed, released, credits;
} cur_cell_t;

typedef struct cur_acc {
    char currency[4];
    cur_cell_t *cells; /* sorted by period */
    uint32_t n, cap;
} cur_acc_t;

/*
 * Folding (rs_report_acc_set_floor / _set_limit): a line's entries with
 * period <= floor are summed into its `base`, without their period, and its
 * cells only hold the periods above the floor (a cell at or below a raised
 * floor is folded the next time the line gets an entry, and counted with
 * base by the reports either way). Entries with period > limit are not kept
 * per line at all (only in the currency cells). A report then needs floor
 * <= through <= limit, and the schedule (per line and period) needs no
 * fold: the reports refuse otherwise (-1) rather than print wrong figures.
 * A line keeps the first nsums of its sums (rs_report_acc_need): the
 * reports that read more are refused; with none, nothing is kept per line
 * and only the rollforward (currency sums) can be reported.
 */
struct rs_report_acc {
    line_acc_t **slots; /* open addressing; nslots is a power of two */
    size_t nslots, nlines;
    line_acc_t *last; /* the line of the previous entry (entries come in runs) */
    cur_acc_t *curs;
    size_t ncurs;
    size_t count;
    rs_period_t floor, limit; /* RS_PERIOD_NONE: unset */
    int folded;               /* some entry went to a line's base */
    int nsums;                /* sums kept per line (S__COUNT unless told) */
    int failed;
    int overflow; /* a total went out of range (failed is set too) */
};

int rs_report_acc_new(rs_report_acc_t **acc)
{
    rs_report_acc_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -1;
    a->nslots = 1024;
    a->floor = a->limit = RS_PERIOD_NONE;
    a->nsums = S__COUNT;
    a->slots = calloc(a->nslots, sizeof(*a->slots));
    if (a->slots == NULL) {
        free(a);
        return -1;
    }
    *acc = a;
    return 0;
}

void rs_report_acc_free(rs_report_acc_t *acc)
{
    if (acc == NULL)
        return;
    for (size_t i = 0; i < acc->nslots; i++) {
        if (acc->slots[i] != NULL) {
            free(acc->slots[i]->cells);
            free(acc->slots[i]);
        }
    }
    for (size_t i = 0; i < acc->ncurs; i++)
        free(acc->curs[i].cells);
    free(acc->curs);
    free(acc->slots);
    free(acc);
}

int rs_report_acc_overflowed(const rs_report_acc_t *acc)
{
    return acc->overflow;
}

int rs_report_acc_failed(const rs_report_acc_t *acc)
{
    return acc->failed;
}

size_t rs_report_acc_count(const rs_report_acc_t *acc)
{
    return acc->count;
}

static uint64_t line_hash(const char *contract_id, const char *line_id)
{
    /* FNV-1a over "contract\0line" */
    uint64_t h = rs_fnv1a64_update_str(RS_FNV1A64_SHORT_BASIS, contract_id);
    h = rs_fnv1a64_update(h, "", 1);
    return rs_fnv1a64_update_str(h, line_id);
}

/* The slot of (contract_id, line_id): its line, or the empty slot where it
 * would go. */
static size_t line_slot(const rs_report_acc_t *a, uint64_t h, const char *contract_id,
                        const char *line_id)
{
    size_t mask = a->nslots - 1, lc = strlen(contract_id) + 1;
    size_t i = (size_t)h & mask;
    while (a->slots[i] != NULL) {
        const line_acc_t *l = a->slots[i];
        /* strcmp, not memcmp: a shorter stored id must not be read past */
        const char *ids = line_contract(l, a->nsums);
        if (strcmp(ids, contract_id) == 0 && strcmp(ids + lc, line_id) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

static const line_acc_t *acc_line(const rs_report_acc_t *a, const char *contract_id,
                                  const char *line_id)
{
    return a->slots[line_slot(a, line_hash(contract_id, line_id), contract_id, line_id)];
}

/* The line of (contract_id, line_id), added when new; NULL on ENOMEM. */
static line_acc_t *acc_line_add(rs_report_acc_t *a, const char *contract_id,
                                const char *line_id)
{
    uint64_t h = line_hash(contract_id, line_id);
    size_t i = line_slot(a, h, contract_id, line_id);
    if (a->slots[i] != NULL)
        return a->slots[i];
    if (2 * (a->nlines + 1) > a->nslots) { /* keep the load under one half */
        size_t ns = a->nslots * 2;
        line_acc_t **nsl = calloc(ns, sizeof(*nsl));
        if (nsl == NULL)
            return NULL;
        for (size_t k = 0; k < a->nslots; k++) {
            const line_acc_t *l = a->slots[k];
            if (l == NULL)
                continue;
            size_t at = (size_t)line_hash(line_contract(l, a->nsums), line_line(l, a->nsums)) &
                        (ns - 1);
            while (nsl[at] != NULL)
                at = (at + 1) & (ns - 1);
            nsl[at] = a->slots[k];
        }
        free(a->slots);
        a->slots = nsl;
        a->nslots = ns;
        i = line_slot(a, h, contract_id, line_id);
    }
    size_t lc = strlen(contract_id), ll = strlen(line_id);
    size_t nb = (size_t)a->nsums * sizeof(rs_money_t);
    line_acc_t *l = calloc(1, sizeof(*l) + nb + lc + ll + 2);
    if (l == NULL)
        return NULL;
    char *ids = (char *)(l->base + a->nsums);
    memcpy(ids, contract_id, lc + 1);
    memcpy(ids + lc + 1, line_id, ll + 1);
    a->slots[i] = l;
    a->nlines++;
    return l;
}

/* The cell of period p in a period-sorted array of cells of `size` bytes
 * whose first member is their rs_period_t, inserted zeroed when new; NULL on
 * ENOMEM. Entries come mostly in period order: the search starts at the end. */
static void *cell_at(void **cells, uint32_t *n, uint32_t *cap, size_t size, rs_period_t p)
{
    unsigned char *base = *cells;
    size_t i = *n;
    rs_period_t q = 0;
    while (i > 0) {
        memcpy(&q, base + (i - 1) * size, sizeof(q));
        if (q <= p)
            break;
        i--;
    }
    if (i > 0 && q == p)
        return base + (i - 1) * size;
    if (*n == *cap) {
        if (*cap >= UINT32_MAX / 2)
            return NULL;
        uint32_t nc = *cap ? *cap * 2 : 4;
        unsigned char *nb = realloc(base, nc * size);
        if (nb == NULL)
            return NULL;
        base = nb;
        *cells = nb;
        *cap = nc;
    }
    memmove(base + (i + 1) * size, base + i * size, (*n - i) * size);
    memset(base + i * size, 0, size);
    memcpy(base + i * size, &p, sizeof(p));
    (*n)++;
    return base + i * size;
}

static cur_acc_t *acc_cur_add(rs_report_acc_t *a, const char *currency)
{
    for (size_t i = 0; i < a->ncurs; i++)
        if (strcmp(a->curs[i].currency, currency) == 0)
            return &a->curs[i];
    cur_acc_t *nc = realloc(a->curs, (a->ncurs + 1) * sizeof(*nc));
    if (nc == NULL)
        return NULL;
    a->curs = nc;
    cur_acc_t *c = &a->curs[a->ncurs++];
    memset(c, 0, sizeof(*c));
    snprintf(c->currency, sizeof(c->currency), "%s", currency);
    return c;
}

/* d[i] += s[i] for the first n sums (checked: see add_to). */
static void sums_add(rs_money_t *d, const rs_money_t *s, int n, int *ovf)
{
    for (int i = 0; i < n; i++)
        add_to(&d[i], s[i], ovf);
}

/* Fold l's cells with period <= floor into its base (cells are sorted). */
static void line_fold(line_acc_t *l, int nsums, rs_period_t floor, int *ovf)
{
    uint32_t k = 0;
    while (k < l->n && l->cells[k].period <= floor)
        sums_add(l->base, l->cells[k++].s.v, nsums, ovf);
    if (k == 0)
        return;
    l->n -= k;
    if (l->n == 0) {
        free(l->cells);
        l->cells = NULL;
        l->cap = 0;
    } else {
        memmove(l->cells, l->cells + k, l->n * sizeof(*l->cells));
    }
}

void rs_report_acc_set_floor(rs_report_acc_t *acc, rs_period_t floor)
{
    if (floor != RS_PERIOD_NONE && (acc->floor == RS_PERIOD_NONE || floor > acc->floor))
        acc->floor = floor;
}

void rs_report_acc_need(rs_report_acc_t *acc, rs_report_need_t need)
{
    static const int nsums[] = {
        [RS_REPORT_NEED_ALL] = S__COUNT,
        [RS_REPORT_NEED_BALANCES] = S_UNBILLED + 1,
        [RS_REPORT_NEED_WATERFALL] = S_RECOGNIZED + 1,
        [RS_REPORT_NEED_ROLLFORWARD] = 0,
    };
    if (acc->nlines == 0 && acc->count == 0 && need >= RS_REPORT_NEED_ALL &&
        need <= RS_REPORT_NEED_ROLLFORWARD)
        acc->nsums = nsums[need];
}

void rs_report_acc_set_limit(rs_report_acc_t *acc, rs_period_t limit)
{
    if (limit != RS_PERIOD_NONE && (acc->limit == RS_PERIOD_NONE || limit < acc->limit))
        acc->limit = limit;
}

/* The line's sums for entry e: its base (*n = the sums it keeps), or its
 * cell of e's period (*n = all); NULL (no ENOMEM) when e is above the limit
 * or lines keep no sums (*skip set), or on ENOMEM. */
static rs_money_t *line_sums_for(rs_report_acc_t *acc, const rs_entry_t *e, int *n, int *skip,
                                 int *ovf)
{
    if (acc->nsums == 0 || (acc->limit != RS_PERIOD_NONE && e->period > acc->limit)) {
        *skip = 1;
        return NULL;
    }
    line_acc_t *l = acc->last;
    if (l == NULL || strcmp(line_contract(l, acc->nsums), e->contract_id) != 0 ||
        strcmp(line_line(l, acc->nsums), e->line_id) != 0)
        l = acc->last = acc_line_add(acc, e->contract_id, e->line_id);
    if (l == NULL)
        return NULL;
    if (acc->floor != RS_PERIOD_NONE) {
        if (l->n > 0 && l->cells[0].period <= acc->floor) {
            line_fold(l, acc->nsums, acc->floor, ovf);
            acc->folded = 1;
        }
        if (e->period <= acc->floor) {
            acc->folded = 1;
            *n = acc->nsums;
            return l->base;
        }
    }
    line_cell_t *lc = cell_at((void **)&l->cells, &l->n, &l->cap, sizeof(*lc), e->period);
    *n = S__COUNT;
    return lc != NULL ? lc->s.v : NULL;
}

int rs_report_acc_add(rs_report_acc_t *acc, const rs_entry_t *e)
{
    if (acc->failed)
        return -1;
    int skip = 0, ovf = 0, nls = 0;
    rs_money_t *ls = line_sums_for(acc, e, &nls, &skip, &ovf);
    cur_acc_t *c = ls != NULL || skip ? acc_cur_add(acc, e->currency) : NULL;
    cur_cell_t *cc =
        c != NULL ? cell_at((void **)&c->cells, &c->n, &c->cap, sizeof(*cc), e->period) : NULL;
    if (cc == NULL) {
        acc->failed = 1;
        return -1;
    }
    rs_money_t dr = net_debit(e, RS_ACCT_DEFERRED_REVENUE);
    if (ls != NULL) {
        /* written off: the allowance (allowance policy), or the receivable a
         * reverse_revenue write-off took off */
        rs_money_t wo = -net_debit(e, RS_ACCT_ALLOWANCE_DOUBTFUL);
        if (e->kind == RS_ENTRY_WRITE_OFF && strcmp(e->rule, "reverse_revenue") == 0)
            wo -= net_debit(e, RS_ACCT_ACCOUNTS_RECEIVABLE);
        const rs_money_t d[S__COUNT] = {
            [S_BILLED] = e->billed,
            [S_RECOGNIZED] = e->recognized,
            [S_RECEIVED] = e->received,
            [S_DEFERRED] = -dr,
            [S_UNBILLED] = net_debit(e, RS_ACCT_UNBILLED_RECEIVABLE),
            [S_CREDIT] = -net_debit(e, RS_ACCT_CUSTOMER_CREDIT),
            [S_WRITTEN] = wo,
        };
        sums_add(ls, d, nls, &ovf);
    }
    if (cc->first == 0) {
        cc->first = acc->count + 1;
        cc->exponent = e->exponent;
    }
    add_to(&cc->recognized, e->recognized, &ovf);
    add_to(&cc->deferred_move, -dr, &ovf);
    if (e->kind == RS_ENTRY_INVOICE)
        add_to(&cc->billed, -dr, &ovf);
    else if (e->kind == RS_ENTRY_RECOGNITION)
        add_to(&cc->released, dr, &ovf);
    else
        add_to(&cc->credits, dr, &ovf);
    acc->count++;
    if (ovf) {
        acc->failed = acc->overflow = 1;
        return RS_REPORT_ERANGE;
    }
    return 0;
}

void rs_report_acc_sink(void *opaque, const rs_entry_t *e)
{
    /* A sink cannot fail; rs_report_acc_failed() tells. */
    (void)rs_report_acc_add(opaque, e);
}

/* The number of a line's cells with period <= through (cells are sorted). */
static size_t cells_through(const line_acc_t *l, rs_period_t through)
{
    size_t q = 0;
    if (l != NULL)
        while (q < l->n && l->cells[q].period <= through)
            q++;
    return q;
}

/* The sums of a line's entries with period <= through: its base and its
 * cells up to through (zero for a line without entries; the sums the
 * aggregator does not keep read 0). */
static line_sums_t line_through(const rs_report_acc_t *acc, const line_acc_t *l,
                                rs_period_t through, int *ovf)
{
    line_sums_t s = {{0}};
    if (l == NULL)
        return s;
    memcpy(s.v, l->base, (size_t)acc->nsums * sizeof(rs_money_t));
    for (size_t p = 0, q = cells_through(l, through); p < q; p++)
        sums_add(s.v, l->cells[p].s.v, acc->nsums, ovf);
    return s;
}

/* Can the aggregator report as of `through` from lines with `need` sums?
 * (see Folding) */
static int acc_covers(const rs_report_acc_t *acc, rs_period_t through, int need)
{
    return acc->nsums >= need &&
           (acc->floor == RS_PERIOD_NONE || !acc->folded || through >= acc->floor) &&
           (acc->limit == RS_PERIOD_NONE || through <= acc->limit);
}

/* An aggregator of the journal's entries with period <= through. */
static rs_report_acc_t *acc_of_journal(const rs_journal_t *j, rs_period_t through)
{
    rs_report_acc_t *acc = NULL;
    if (rs_report_acc_new(&acc) != 0)
        return NULL;
    for (size_t i = 0; i < j->n; i++) {
        int rc = j->entries[i].period <= through ? rs_report_acc_add(acc, &j->entries[i]) : 0;
        if (rc == RS_REPORT_ERANGE)
            break; /* failed: the reports return RS_REPORT_ERANGE */
        if (rc != 0) {
            rs_report_acc_free(acc);
            return NULL;
        }
    }
    return acc;
}

int rs_report_acc_schedule(const rs_engine_t *eng, const rs_report_acc_t *acc,
                           rs_period_t through, rs_schedule_row_t **rows, size_t *n)
{
    size_t cap = 64, k = 0;
    rs_schedule_row_t *out = NULL;
    int ovf = acc->overflow;
    if (acc->failed || acc->folded || !acc_covers(acc, through, S_RECOGNIZED + 1))
        goto fail; /* per period: a folded aggregator has lost the periods */
    out = malloc(cap * sizeof(*out));
    if (out == NULL)
        goto fail;
    size_t nl = rs_engine_line_count(eng);
    for (size_t li = 0; li < nl; li++) {
        rs_line_view_t v;
        rs_engine_line_get(eng, li, &v);
        const line_acc_t *l = acc_line(acc, v.contract_id, v.line_id);
        size_t q = cells_through(l, through), r = 0;
        rs_period_t first = rs_period_of(v.start);
        if (q > 0 && l->cells[0].period < first)
            first = l->cells[0].period;
        for (rs_period_t per = first; per <= through; per++) {
            rs_money_t rec = 0;
            while (r < q && l->cells[r].period == per)
                add_to(&rec, l->cells[r++].s.v[S_RECOGNIZED], &ovf);
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
    }
    if (ovf)
        goto fail;
    *rows = out;
    *n = k;
    return 0;
fail:
    free(out);
    return ovf ? RS_REPORT_ERANGE : -1;
}

int rs_report_schedule(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                       rs_schedule_row_t **rows, size_t *n)
{
    rs_report_acc_t *acc = acc_of_journal(j, through);
    int rc = acc != NULL ? rs_report_acc_schedule(eng, acc, through, rows, n) : -1;
    rs_report_acc_free(acc);
    return rc;
}

/* ---- books walked one contract at a time ---- */

/* rs_report_each_fn over the contracts of one engine (views: booked ones,
 * in contract_id order). */
static int engine_each(void *opaque, rs_report_contract_fn fn, void *arg)
{
    const rs_engine_t *e = opaque;
    for (size_t i = 0, n = rs_engine_contract_count(e); i < n; i++) {
        rs_contract_view_t cv;
        rs_engine_contract_get(e, i, &cv);
        int rc = fn(arg, e, cv.contract_id);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A contract's line views (sorted by line_id) into *lv, grown as needed:
 * their count, or (size_t)-1 on ENOMEM. */
static size_t contract_lines(const rs_engine_t *e, const char *id, rs_line_view_t **lv,
                             size_t *cap)
{
    for (;;) {
        size_t n = rs_engine_contract_lines(e, id, *lv, *cap);
        if (n <= *cap)
            return n;
        rs_line_view_t *p = realloc(*lv, n * sizeof(*p));
        if (p == NULL)
            return (size_t)-1;
        *lv = p;
        *cap = n;
    }
}

/* Growth by half (at least to need) of an array of rows or bytes. */
static int grow_half(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap + *cap / 2 + 16;
    if (nc < need)
        nc = need;
    void *np = realloc(*p, nc * elem);
    if (np == NULL)
        return -1;
    *p = np;
    *cap = nc;
    return 0;
}

typedef struct bal_ctx {
    const rs_report_acc_t *acc;
    rs_period_t through;
    rs_balance_row_t *rows;
    size_t n, cap;
    int copy;  /* strings into str (their offsets in the rows until the end) */
    char *str; /* the copied strings */
    size_t nstr, capstr;
    rs_line_view_t *lv;
    size_t caplv;
    int ovf;
} bal_ctx_t;

/* Copy s into x->str: its offset, as a pointer until bal_fix; NULL on ENOMEM. */
static const char *bal_str(bal_ctx_t *x, const char *s)
{
    size_t n = strlen(s) + 1;
    if (grow_half((void **)&x->str, &x->capstr, x->nstr + n, 1))
        return NULL;
    memcpy(x->str + x->nstr, s, n);
    x->nstr += n;
    return (const char *)(uintptr_t)(x->nstr - n + 1); /* + 1: never NULL */
}

static const char *bal_fix(const bal_ctx_t *x, const char *off)
{
    return x->str + ((uintptr_t)off - 1);
}

static int bal_contract(void *arg, const rs_engine_t *e, const char *id)
{
    bal_ctx_t *x = arg;
    size_t nl = contract_lines(e, id, &x->lv, &x->caplv);
    if (nl == (size_t)-1 ||
        grow_half((void **)&x->rows, &x->cap, x->n + nl + 1, sizeof(*x->rows)))
        return -1;
    if (nl == 0)
        return 0;
    const char *cid = x->lv[0].contract_id, *cust = x->lv[0].customer_id;
    const char *cur = x->lv[0].currency;
    if (x->copy && ((cid = bal_str(x, cid)) == NULL || (cust = bal_str(x, cust)) == NULL ||
                    (cur = bal_str(x, cur)) == NULL))
        return -1;
    for (size_t k = 0; k < nl; k++) {
        const rs_line_view_t *v = &x->lv[k];
        rs_balance_row_t *b = &x->rows[x->n++];
        b->contract_id = cid;
        b->line_id = x->copy ? bal_str(x, v->line_id) : v->line_id;
        if (b->line_id == NULL)
            return -1;
        b->customer_id = cust;
        b->currency = cur;
        b->exponent = v->exponent;
        line_sums_t t = line_through(x->acc, acc_line(x->acc, v->contract_id, v->line_id),
                                     x->through, &x->ovf);
        b->billed = t.v[S_BILLED];
        b->recognized = t.v[S_RECOGNIZED];
        b->received = t.v[S_RECEIVED];
        b->deferred = t.v[S_DEFERRED];
        b->unbilled = t.v[S_UNBILLED];
    }
    return 0;
}

static int balances(rs_report_each_fn each, void *opaque, int copy, const rs_report_acc_t *acc,
                    rs_period_t through, rs_balance_row_t **rows, size_t *n, char **strings)
{
    bal_ctx_t x;
    memset(&x, 0, sizeof x);
    x.acc = acc;
    x.through = through;
    x.copy = copy;
    if (acc->failed || !acc_covers(acc, through, S_UNBILLED + 1))
        return acc->overflow ? RS_REPORT_ERANGE : -1;
    /* room for a row per line with entries (and, copying, ~32 bytes of
     * strings each) at once: growing a book-sized array by copies would
     * hold the old copies too */
    int rc =
        grow_half((void **)&x.rows, &x.cap, acc->nlines + 1, sizeof(*x.rows)) == 0 &&
                (!copy || grow_half((void **)&x.str, &x.capstr, acc->nlines * 32 + 64, 1) == 0)
            ? each(opaque, bal_contract, &x)
            : -1;
    free(x.lv);
    if (rc != 0 || x.ovf) {
        free(x.rows);
        free(x.str);
        return x.ovf ? RS_REPORT_ERANGE : -1;
    }
    for (size_t i = 0; copy && i < x.n; i++) {
        rs_balance_row_t *b = &x.rows[i];
        b->contract_id = bal_fix(&x, b->contract_id);
        b->line_id = bal_fix(&x, b->line_id);
        b->customer_id = bal_fix(&x, b->customer_id);
        b->currency = bal_fix(&x, b->currency);
    }
    *rows = x.rows;
    *n = x.n;
    if (strings != NULL)
        *strings = x.str;
    return 0;
}

int rs_report_acc_balances(const rs_engine_t *eng, const rs_report_acc_t *acc,
                           rs_period_t through, rs_balance_row_t **rows, size_t *n)
{
    return balances(engine_each, (void *)(uintptr_t)eng, 0, acc, through, rows, n, NULL);
}

int rs_report_acc_balances_each(rs_report_each_fn each, void *opaque,
                                const rs_report_acc_t *acc, rs_period_t through,
                                rs_balance_row_t **rows, size_t *n, char **strings)
{
    *strings = NULL;
    return balances(each, opaque, 1, acc, through, rows, n, strings);
}

int rs_report_balances(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                       rs_balance_row_t **rows, size_t *n)
{
    rs_report_acc_t *acc = acc_of_journal(j, through);
    int rc = acc != NULL ? rs_report_acc_balances(eng, acc, through, rows, n) : -1;
    rs_report_acc_free(acc);
    return rc;
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
    int ovf;            /* a total went out of range */
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

/* Add a currency's cells with period <= through to the book. A series takes
 * the exponent of its currency's first entry, as the journal order gives it. */
static int book_add_cur(book_t *b, const cur_acc_t *c, rs_period_t through)
{
    const cur_cell_t *first = NULL;
    for (size_t i = 0; i < c->n && c->cells[i].period <= through; i++)
        if (first == NULL || c->cells[i].first < first->first)
            first = &c->cells[i];
    if (first == NULL)
        return 0;
    series_t *s = book_series(b, c->currency, first->exponent);
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < c->n && c->cells[i].period <= through; i++) {
        const cur_cell_t *cc = &c->cells[i];
        size_t k = (size_t)(cc->period - b->lo);
        add_to(&s->recognized[k], cc->recognized, &b->ovf);
        add_to(&s->deferred_move[k], cc->deferred_move, &b->ovf);
        add_to(&s->billed[k], cc->billed, &b->ovf);
        add_to(&s->released[k], cc->released, &b->ovf);
        add_to(&s->credits[k], cc->credits, &b->ovf);
        touch(s, cc->period);
    }
    return 0;
}

/* The book's period range from the lines' service (the projection's). */
typedef struct span_ctx {
    book_t *b;
    rs_line_view_t *lv;
    size_t caplv;
} span_ctx_t;

static int span_contract(void *arg, const rs_engine_t *e, const char *id)
{
    span_ctx_t *x = arg;
    size_t nl = contract_lines(e, id, &x->lv, &x->caplv);
    if (nl == (size_t)-1)
        return -1;
    for (size_t k = 0; k < nl; k++) {
        const rs_line_view_t *v = &x->lv[k];
        if (rs_period_of(v->end) > x->b->hi)
            x->b->hi = rs_period_of(v->end);
        if (x->b->lo == RS_PERIOD_NONE || rs_period_of(v->start) < x->b->lo)
            x->b->lo = rs_period_of(v->start);
    }
    return 0;
}

/* Projection: per line, from what it had recognized and billed by
 * `through` to R at its last day. */
typedef struct proj_ctx {
    book_t *b;
    const rs_report_acc_t *acc;
    rs_period_t through;
    rs_line_view_t *lv;
    size_t caplv;
} proj_ctx_t;

static int proj_contract(void *arg, const rs_engine_t *e, const char *id)
{
    proj_ctx_t *x = arg;
    book_t *b = x->b;
    size_t nl = contract_lines(e, id, &x->lv, &x->caplv);
    if (nl == (size_t)-1)
        return -1;
    for (size_t li = 0; li < nl; li++) {
        const rs_line_view_t *v = &x->lv[li];
        line_sums_t t = line_through(x->acc, acc_line(x->acc, v->contract_id, v->line_id),
                                     x->through, &b->ovf);
        rs_money_t billed = t.v[S_BILLED], rec = t.v[S_RECOGNIZED];
        series_t *s = book_series(b, v->currency, v->exponent);
        if (s == NULL)
            return -1;
        rs_money_t cum = rec;
        for (rs_period_t per = x->through + 1; per <= b->hi; per++) {
            rs_money_t r = rs_engine_contract_line_scheduled(e, v->contract_id, v->index,
                                                             rs_period_last_day(per));
            size_t k = (size_t)(per - b->lo);
            if (r != cum) {
                add_to(&s->proj_rec[k], r - cum, &b->ovf);
                cum = r;
            }
            rs_money_t def = billed - cum;
            add_to(&s->proj_def[k], def > 0 ? def : 0, &b->ovf);
            if (per <= rs_period_of(v->end) || def > 0 || r != rec)
                touch(s, per);
        }
    }
    return 0;
}

/* Fill the book from the aggregator (and, when `project`, from the
 * schedule of the lines `each` walks: twice, for the range then the
 * projection). */
static int book_build(book_t *b, rs_report_each_fn each, void *opaque,
                      const rs_report_acc_t *acc, rs_period_t through, int project)
{
    memset(b, 0, sizeof(*b));
    if (acc->failed || (project && !acc_covers(acc, through, S_RECOGNIZED + 1)) ||
        (acc->limit != RS_PERIOD_NONE && through > acc->limit))
        return acc->overflow ? RS_REPORT_ERANGE : -1;
    b->lo = RS_PERIOD_NONE;
    b->hi = through;
    for (size_t c = 0; c < acc->ncurs; c++) {
        const cur_acc_t *ca = &acc->curs[c];
        if (ca->n > 0 && ca->cells[0].period <= through &&
            (b->lo == RS_PERIOD_NONE || ca->cells[0].period < b->lo))
            b->lo = ca->cells[0].period;
    }
    if (project) {
        span_ctx_t x = {b, NULL, 0};
        int rc = each(opaque, span_contract, &x);
        free(x.lv);
        if (rc != 0)
            return -1;
    }
    if (b->lo == RS_PERIOD_NONE || b->lo > through)
        b->lo = b->lo == RS_PERIOD_NONE ? through : b->lo;
    if (b->lo > b->hi)
        b->lo = b->hi;
    for (size_t c = 0; c < acc->ncurs; c++)
        if (book_add_cur(b, &acc->curs[c], through) != 0)
            return -1;
    if (!project)
        return 0;
    proj_ctx_t x = {b, acc, through, NULL, 0};
    int rc = each(opaque, proj_contract, &x);
    free(x.lv);
    return rc != 0 ? -1 : 0;
}

static int cmp_cur(const void *a, const void *b)
{
    return strcmp(((const series_t *)a)->currency, ((const series_t *)b)->currency);
}

int rs_report_acc_waterfall(const rs_engine_t *eng, const rs_report_acc_t *acc,
                            rs_period_t through, rs_waterfall_row_t **rows, size_t *n)
{
    return rs_report_acc_waterfall_each(engine_each, (void *)(uintptr_t)eng, acc, through, rows,
                                        n);
}

int rs_report_acc_waterfall_each(rs_report_each_fn each, void *opaque,
                                 const rs_report_acc_t *acc, rs_period_t through,
                                 rs_waterfall_row_t **rows, size_t *n)
{
    book_t b;
    rs_waterfall_row_t *out = NULL;
    size_t k = 0;
    if (book_build(&b, each, opaque, acc, through, 1))
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
                add_to(&def, s->deferred_move[q - b.lo], &b.ovf);
            rs_waterfall_row_t *w = &out[k++];
            w->period = per;
            memcpy(w->currency, s->currency, sizeof(w->currency));
            w->exponent = s->exponent;
            if (per <= through) {
                w->recognized = s->recognized[per - b.lo];
                w->deferred = def;
                w->projected = 0;
                w->from_deferred = s->released[per - b.lo];
                w->not_via_deferred = w->recognized - w->from_deferred;
            } else {
                w->recognized = s->proj_rec[per - b.lo];
                w->deferred = s->proj_def[per - b.lo];
                w->projected = 1;
                w->from_deferred = w->not_via_deferred = 0;
            }
        }
    }
    if (b.ovf)
        goto fail;
    book_free(&b);
    *rows = out;
    *n = k;
    return 0;
fail:
    book_free(&b);
    free(out);
    return b.ovf || acc->overflow ? RS_REPORT_ERANGE : -1;
}

int rs_report_waterfall(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                        rs_waterfall_row_t **rows, size_t *n)
{
    rs_report_acc_t *acc = acc_of_journal(j, through);
    int rc = acc != NULL ? rs_report_acc_waterfall(eng, acc, through, rows, n) : -1;
    rs_report_acc_free(acc);
    return rc;
}

int rs_report_acc_rollforward(const rs_engine_t *eng, const rs_report_acc_t *acc,
                              rs_period_t through, rs_rollforward_row_t **rows, size_t *n)
{
    book_t b;
    rs_rollforward_row_t *out = NULL;
    size_t k = 0;
    (void)eng; /* the rollforward reads the aggregator's currency sums only */
    if (book_build(&b, NULL, NULL, acc, through, 0))
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
            rs_money_t opening = 0, closing = 0;
            for (rs_period_t q = b.lo; q < per; q++)
                add_to(&opening, s->deferred_move[q - b.lo], &b.ovf);
            add_to(&closing, opening, &b.ovf);
            add_to(&closing, s->deferred_move[per - b.lo], &b.ovf);
            rs_rollforward_row_t *r = &out[k++];
            size_t i = (size_t)(per - b.lo);
            r->period = per;
            r->exponent = s->exponent;
            r->opening = opening;
            r->billed = s->billed[i];
            r->recognized = s->released[i];
            r->credits = s->credits[i];
            r->closing = closing;
            r->revenue = s->recognized[i];
            r->not_via_deferred = r->revenue - r->recognized; /* both within RS_MONEY_MAX */
            memcpy(r->currency, s->currency, sizeof(r->currency));
        }
    }
    if (b.ovf)
        goto fail;
    book_free(&b);
    *rows = out;
    *n = k;
    return 0;
fail:
    book_free(&b);
    free(out);
    return b.ovf || acc->overflow ? RS_REPORT_ERANGE : -1;
}

int rs_report_rollforward(const rs_engine_t *eng, const rs_journal_t *j, rs_period_t through,
                          rs_rollforward_row_t **rows, size_t *n)
{
    rs_report_acc_t *acc = acc_of_journal(j, through);
    int rc = acc != NULL ? rs_report_acc_rollforward(eng, acc, through, rows, n) : -1;
    rs_report_acc_free(acc);
    return rc;
}

/* qsort has no context argument in C11: the journal being sorted. Reports
 * are computed on one thread at a time. */
static const rs_journal_t *sort_j;

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

/* Add to *credit and *written the customer credit and the written-off
 * receivables of a (contract, line) as of the end of `through`: what its
 * entries posted in periods <= through. */
static void balances_through(const rs_report_acc_t *acc, const char *contract, const char *line,
                             rs_period_t through, rs_money_t *credit, rs_money_t *written)
{
    int ovf = 0; /* within range: the engine keeps both below RS_MONEY_MAX */
    line_sums_t t = line_through(acc, acc_line(acc, contract, line), through, &ovf);
    add_to(credit, t.v[S_CREDIT], &ovf);
    add_to(written, t.v[S_WRITTEN], &ovf);
}

int rs_report_acc_exceptions(const rs_engine_t *e, const rs_report_acc_t *acc,
                             rs_period_t through, rs_exception_row_t **rows, size_t *n)
{
    rs_balance_row_t *b = NULL;
    size_t nb = 0, k = 0, cap = 0;
    rs_exception_row_t *out = NULL;
    if (!acc->failed && acc->nsums < S__COUNT)
        return -1; /* customer credit and write-offs are not kept */
    int brc = rs_report_acc_balances(e, acc, through, &b, &nb);
    if (brc != 0)
        return brc;
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
        rs_money_t over = b[i].billed - v.price; /* never released by the schedule */
        if (v.ended_on == RS_DATE_NONE && v.method != RS_METHOD_USAGE && over > 0 &&
            b[i].deferred > 0) {
            rs_money_t other = 0; /* unbilled on the contract's other lines */
            for (size_t o = 0; o < nb; o++)
                if (o != i && strcmp(b[o].contract_id, b[i].contract_id) == 0)
                    other += b[o].unbilled;
            char pb[48], ob[48];
            r.kind = "deferred_after_end";
            r.amount = over < b[i].deferred ? over : b[i].deferred;
            rs_money_format_grouped(v.price, b[i].exponent, pb, sizeof(pb));
            rs_money_format_grouped(other, b[i].exponent, ob, sizeof(ob));
            snprintf(r.detail, sizeof(r.detail),
                     "billed above its price %s; left deferred after "
                     "the service %s %s%s%s%s",
                     pb, v.end < as_of ? "ended" : "ends", rs_date_format(v.end, d, sizeof(d)),
                     other > 0 ? " (other lines hold " : "", other > 0 ? ob : "",
                     other > 0 ? " unbilled)" : "");
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
    /* Customer credit and written-off receivables as of `through`, from the
     * journal (not the engine's balances after every event: a later refund,
     * credit note or recovery must not change what an earlier period
     * shows). Contracts and lines are both sorted by contract_id: li walks
     * the lines along the contracts. */
    size_t li = 0;
    for (size_t i = 0, nc = rs_engine_contract_count(e); i < nc; i++) {
        rs_contract_view_t c;
        rs_engine_contract_get(e, i, &c);
        rs_exception_row_t r = {
            c.contract_id, "", c.customer_id, c.currency, c.exponent, NULL, 0, ""};
        rs_money_t credit = 0, written = 0;
        balances_through(acc, c.contract_id, "", through, &credit, &written);
        while (li < nb && strcmp(b[li].contract_id, c.contract_id) < 0)
            li++;
        for (; li < nb && strcmp(b[li].contract_id, c.contract_id) == 0; li++)
            balances_through(acc, c.contract_id, b[li].line_id, through, &credit, &written);
        if (credit > 0) {
            r.kind = "customer_credit";
            r.amount = credit;
            snprintf(r.detail, sizeof(r.detail), "credit balance owed to customer %s",
                     c.customer_id);
            if (push_exc(&out, &k, &cap, r))
                goto fail;
        }
        if (written > 0) {
            r.kind = "written_off";
            r.amount = written;
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

int rs_report_exceptions(const rs_engine_t *e, const rs_journal_t *j, rs_period_t through,
                         rs_exception_row_t **rows, size_t *n)
{
    rs_report_acc_t *acc = acc_of_journal(j, through);
    int rc = acc != NULL ? rs_report_acc_exceptions(e, acc, through, rows, n) : -1;
    rs_report_acc_free(acc);
    return rc;
}
