/*
 * rs_engine_table.c — the engine's containers: growable arrays, the contract
 * table, the seen sets of event ids, the sorted-contract cache and the set of
 * contracts changed since rs_engine_take_changed().
 *
 * Invariants:
 *   - rs_eng_grow() never shrinks and zero-fills what it adds, so a new
 *     element reads as all zeros until it is set. A first allocation holds
 *     exactly what is needed (most contracts have one line, one invoice...)
 *     and each later one grows by half (at least to what is needed): memory
 *     per contract matters more than the copies (issue 13).
 *   - A contract's string arena: offset 0 stands for "" and holds no text;
 *     every string put is NUL-terminated at its offset; nstr <= capstr and
 *     both stay below RS_ENG_STR_STATIC.
 *   - The intern table holds each distinct non-empty string once, with the
 *     number of references to it; the entry is freed when the last one is
 *     dropped.
 *   - The contract table and the seen sets use open addressing with linear
 *     probing; their sizes are powers of two and they grow before they are
 *     70% full (a seen set of at most RS_ENG_SEEN_SMALL slots: before its
 *     last empty slot), so every probe ends at an empty slot. A seen set of
 *     at most RS_ENG_SEEN_LINEAR slots is a plain array instead, scanned
 *     whole, and fills up (three ids in 48 bytes). A seen set drops an id
 *     by rebuilding itself; a contract leaves the table only through
 *     rs_engine_forget_contract() (rs_engine_state.c), which re-inserts the
 *     rest of its probe cluster.
 *   - A contract is in the changed set at most once (its `changed` flag).
 *   - After rs_eng_sort_contracts(), e->sorted holds every contract in
 *     contract_id order until something sets sorted_dirty.
 *   - Ownership: the table owns its contracts; rs_eng_contract_free() frees
 *     one with everything it owns (and drops its references to interned
 *     strings). rs_engine_memory_bytes() counts exactly the blocks the
 *     free functions free, each as the allocator rounds it
 *     (rs_engine_alloc_size), so the two are kept side by side here.
 */
#include "rs_engine.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

/* ---- growable arrays and ids ---- */

int rs_eng_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap + (*cap + 1) / 2 : need;
    if (ncap < need)
        ncap = need;
    void *np = realloc(*p, ncap * elem);
    if (np == NULL)
        return -1;
    memset((char *)np + *cap * elem, 0, (ncap - *cap) * elem);
    *p = np;
    *cap = ncap;
    return 0;
}

int rs_eng_grow32(void **p, uint32_t *cap, size_t need, size_t elem)
{
    size_t c = *cap;
    if (need > UINT32_MAX || rs_eng_grow(p, &c, need, elem))
        return -1;
    *cap = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    return 0;
}

int rs_eng_growi(void **p, int *cap, int need, size_t elem)
{
    size_t c = (size_t)*cap;
    if (rs_eng_grow(p, &c, (size_t)need, elem))
        return -1;
    *cap = (int)c;
    return 0;
}

uint64_t rs_eng_str_hash(const char *s, uint64_t seed)
{
    uint64_t h = rs_fnv1a64_update_str(seed, s);
    return h ? h : 1;
}

/* Copy an id into an RS_ID_MAX field (truncating like snprintf would). */
void rs_eng_copy_id(char *dst, const char *src)
{
    size_t n = strnlen(src, RS_ID_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- contract strings: the arena ---- */

#define RULE(r) [(r) & ~RS_ENG_STR_STATIC]
const char *const rs_eng_rule_names[RS_ENG_RULE_COUNT] = {
    RULE(RS_ENG_RULE_NONE) = "",
    RULE(RS_ENG_RULE_AMENDMENT) = "amendment",
    RULE(RS_ENG_RULE_CATCH_UP) = "catch_up",
    RULE(RS_ENG_RULE_CANCELLATION) = "cancellation",
    RULE(RS_ENG_RULE_CREDIT_DISCOUNT) = "credit_discount",
    RULE(RS_ENG_RULE_CREDIT_TRUE_UP) = "credit_true_up",
    RULE(RS_ENG_RULE_FORFEIT) = "forfeit",
    RULE(RS_ENG_RULE_WRITE_OFF) = "write_off",
};
#undef RULE

int rs_eng_str_put(rs_contract_t *c, const char *s, size_t max, rs_eng_str_t *out)
{
    size_t n = strnlen(s, max - 1);
    if (n == 0) {
        *out = 0;
        return 0;
    }
    size_t at = c->nstr ? c->nstr : 1, need = at + n + 1;
    if (need >= RS_ENG_STR_STATIC)
        return -1;
    if (need > c->capstr) {
        /* s may be one of the contract's own strings: find it again after */
        int inside = c->str && s >= c->str && s < c->str + c->capstr;
        size_t from = inside ? (size_t)(s - c->str) : 0;
        /* from 32, 1.5 times each time, in steps of 16 */
        size_t ncap = c->capstr ? (size_t)c->capstr + c->capstr / 2 : 32;
        if (ncap < need)
            ncap = need;
        ncap = (ncap + 15) & ~(size_t)15;
        if (ncap >= RS_ENG_STR_STATIC)
            ncap = need;
        char *p = realloc(c->str, ncap);
        if (p == NULL)
            return -1;
        p[0] = '\0';
        c->str = p;
        c->capstr = (uint32_t)ncap;
        if (inside)
            s = p + from;
    }
    memcpy(c->str + at, s, n);
    c->str[at + n] = '\0';
    c->nstr = (uint32_t)need;
    *out = (rs_eng_str_t)at;
    return 0;
}

int rs_eng_rule_put(rs_contract_t *c, const char *s, rs_eng_str_t *out)
{
    for (int i = 1; i < RS_ENG_RULE_COUNT; i++)
        if (strcmp(s, rs_eng_rule_names[i]) == 0) {
            *out = RS_ENG_STR_STATIC | (rs_eng_str_t)i;
            return 0;
        }
    return rs_eng_str_put(c, s, RS_ENG_RULE_MAX, out);
}

void rs_eng_str_shrink(rs_contract_t *c)
{
    if (c->nstr == c->capstr)
        return;
    if (c->nstr == 0) {
        free(c->str);
        c->str = NULL;
        c->capstr = 0;
        return;
    }
    char *p = realloc(c->str, c->nstr);
    if (p == NULL)
        return; /* keeping the larger block is fine */
    c->str = p;
    c->capstr = c->nstr;
}

/* ---- the intern table (product names) ---- */

static void itab_put(rs_eng_istr_t **tab, size_t cap, rs_eng_istr_t *x)
{
    size_t i = x->hash & (cap - 1);
    while (tab[i] != NULL)
        i = (i + 1) & (cap - 1);
    tab[i] = x;
}

const char *rs_eng_intern(rs_engine_t *e, const char *s, size_t max)
{
    size_t n = strnlen(s, max - 1);
    if (n == 0)
        return "";
    uint32_t h = rs_fnv1a32(s, n);
    if ((e->nitab + 1) * 10 >= e->capitab * 7) {
        size_t ncap = e->capitab ? e->capitab * 2 : 16;
        rs_eng_istr_t **nt = calloc(ncap, sizeof(*nt));
        if (nt == NULL)
            return NULL;
        for (size_t i = 0; i < e->capitab; i++)
            if (e->itab[i])
                itab_put(nt, ncap, e->itab[i]);
        free(e->itab);
        e->itab = nt;
        e->capitab = ncap;
    }
    size_t i = h & (e->capitab - 1);
    for (; e->itab[i] != NULL; i = (i + 1) & (e->capitab - 1)) {
        rs_eng_istr_t *x = e->itab[i];
        if (x->hash == h && memcmp(x->s, s, n) == 0 && x->s[n] == '\0') {
            x->refs++;
            return x->s;
        }
    }
    rs_eng_istr_t *x = malloc(sizeof(*x) + n + 1);
    if (x == NULL)
        return NULL;
    x->refs = 1;
    x->hash = h;
    memcpy(x->s, s, n);
    x->s[n] = '\0';
    e->itab[i] = x;
    e->nitab++;
    return x->s;
}

void rs_eng_unintern(rs_engine_t *e, const char *s)
{
    if (s == NULL || *s == '\0')
        return;
    rs_eng_istr_t *x = (rs_eng_istr_t *)(void *)(s - offsetof(rs_eng_istr_t, s));
    if (--x->refs > 0)
        return;
    size_t mask = e->capitab - 1, i = x->hash & mask;
    while (e->itab[i] != x)
        i = (i + 1) & mask;
    e->itab[i] = NULL;
    /* re-insert the rest of the probe cluster (linear probing deletion) */
    for (size_t j = (i + 1) & mask; e->itab[j] != NULL; j = (j + 1) & mask) {
        rs_eng_istr_t *m = e->itab[j];
        e->itab[j] = NULL;
        itab_put(e->itab, e->capitab, m);
    }
    e->nitab--;
    free(x);
}

/* ---- seen sets: open addressing on id_hash ---- */

rs_seen_t *rs_eng_seen_find(rs_seen_t *tab, size_t cap, uint64_t idh)
{
    if (cap == 0)
        return NULL;
    if (cap <= RS_ENG_SEEN_LINEAR) { /* a plain array, scanned whole */
        rs_seen_t *empty = NULL;
        for (size_t i = 0; i < cap; i++) {
            if (tab[i].id_hash == idh)
                return &tab[i];
            if (tab[i].id_hash == 0 && empty == NULL)
                empty = &tab[i];
        }
        return empty;
    }
    for (size_t i = idh & (cap - 1);; i = (i + 1) & (cap - 1))
        if (tab[i].id_hash == idh || tab[i].id_hash == 0)
            return &tab[i];
}

/* Is a seen set of capacity cap too full to hold n ids? A plain array (a
 * simple contract has three events) fills up; a small table to all but one
 * slot, a larger one to 70%: every probe still ends at an empty slot. */
static int seen_full(size_t n, size_t cap)
{
    if (cap <= RS_ENG_SEEN_LINEAR)
        return n > cap;
    return cap <= RS_ENG_SEEN_SMALL ? n + 1 > cap : n * 10 >= cap * 7;
}

/* The next capacity: a plain array first, then tables from 8 slots. */
static size_t seen_next_cap(size_t cap)
{
    return cap == 0 ? RS_ENG_SEEN_LINEAR : cap <= RS_ENG_SEEN_LINEAR ? 8 : cap * 2;
}

size_t rs_eng_seen_cap(size_t n)
{
    size_t cap = RS_ENG_SEEN_LINEAR;
    while (seen_full(n, cap))
        cap = seen_next_cap(cap);
    return cap;
}

int rs_eng_seen_add(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh, uint64_t ch)
{
    if (seen_full(*n + 1, *cap)) {
        size_t ncap = seen_next_cap(*cap);
        rs_seen_t *nt = calloc(ncap, sizeof(*nt));
        if (nt == NULL)
            return -1;
        for (size_t i = 0; i < *cap; i++)
            if ((*tab)[i].id_hash)
                *rs_eng_seen_find(nt, ncap, (*tab)[i].id_hash) = (*tab)[i];
        free(*tab);
        *tab = nt;
        *cap = ncap;
    }
    rs_seen_t *s = rs_eng_seen_find(*tab, *cap, idh);
    if (s->id_hash == 0)
        (*n)++;
    s->id_hash = idh;
    s->content_hash = ch;
    return 0;
}

/* Remove an id (rebuilds the table: removals are rare). */
void rs_eng_seen_remove(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh)
{
    rs_seen_t *old = *tab;
    size_t oldcap = *cap;
    *tab = NULL;
    *n = *cap = 0;
    for (size_t j = 0; j < oldcap; j++)
        if (old[j].id_hash && old[j].id_hash != idh)
            rs_eng_seen_add(tab, n, cap, old[j].id_hash, old[j].content_hash);
    free(old);
}

/* ---- contracts ---- */

void rs_eng_line_free(rs_engine_t *e, rs_line_t *l)
{
    rs_eng_unintern(e, l->product);
    l->product = NULL;
    free(l->chg);
    free(l->bill);
    free(l->segs);
    free(l->adj);
    free(l->ms);
    free(l->uprice);
    free(l->usage);
    free(l->posted);
}

void rs_eng_pending_free(rs_pending_t *p)
{
    free(p->blob);
    p->blob = NULL;
}

void rs_eng_contract_free(rs_engine_t *e, rs_contract_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nlines; i++)
        rs_eng_line_free(e, &c->lines[i]);
    free(c->lines);
    for (int i = 0; i < c->ninv; i++)
        free(c->inv[i].lines);
    free(c->inv);
    free(c->pay);
    free(c->docs);
    for (size_t i = 0; i < c->npend; i++)
        rs_eng_pending_free(&c->pend[i]);
    free(c->pend);
    free(c->seen);
    free(c->str);
    free(c);
}

size_t rs_engine_alloc_size(size_t n)
{
    if (n == 0)
        return 0;
    /* glibc: the request plus its 8-byte header in 16-byte steps, >= 32 */
    size_t g = (n + 8 + 15) & ~(size_t)15;
    if (g < 32)
        g = 32;
    /* jemalloc: 8, multiples of 16 up to 128, then four classes per
     * doubling (160, 192, 224, 256, 320, ...; pages above 16 KiB alike) */
    size_t j, p = 128;
    if (n <= 8) {
        j = 8;
    } else if (n <= 128) {
        j = (n + 15) & ~(size_t)15;
    } else {
        while (p * 2 < n) /* p: the largest power of two below n */
            p *= 2;
        j = (n + p / 4 - 1) & ~(p / 4 - 1);
    }
    return g > j ? g : j;
}

#define AZ(n) rs_engine_alloc_size(n)

static size_t line_bytes(const rs_line_t *l)
{
    return AZ((size_t)l->capchg * sizeof(rs_change_t)) +
           AZ((size_t)l->capbill * sizeof(rs_billing_t)) +
           AZ((size_t)l->capseg * sizeof(rs_seg_t)) + AZ((size_t)l->capadj * sizeof(rs_adj_t)) +
           AZ((size_t)l->nms * sizeof(rs_milestone_t)) +
           AZ((size_t)l->capuprice * sizeof(rs_uprice_t)) +
           AZ(l->capusage * sizeof(rs_usage_day_t)) + AZ(l->capposted * sizeof(rs_posted_t));
}

/* What rs_eng_contract_free frees (interned strings are the engine's), each
 * block as the allocator rounds it (rs_engine_alloc_size). */
static size_t contract_bytes(const rs_contract_t *c)
{
    size_t n = AZ(sizeof(*c) + strlen(c->contract_id) + 1) + AZ(c->capstr);
    n += AZ((size_t)c->caplines * sizeof(rs_line_t));
    for (int i = 0; i < c->nlines; i++)
        n += line_bytes(&c->lines[i]);
    n += AZ((size_t)c->capinv * sizeof(rs_invoice_t));
    for (int i = 0; i < c->ninv; i++)
        n += AZ((size_t)c->inv[i].nlines * sizeof(rs_inv_line_t));
    n += AZ((size_t)c->cappay * sizeof(rs_payment_t)) +
         AZ((size_t)c->capdocs * sizeof(rs_eng_str_t));
    n += AZ(c->cappend * sizeof(rs_pending_t));
    for (size_t i = 0; i < c->npend; i++)
        n += AZ(c->pend[i].len);
    return n + AZ(c->capseen * sizeof(rs_seen_t));
}

size_t rs_engine_memory_bytes(const rs_engine_t *e)
{
    size_t n = sizeof(*e) + e->nslots * sizeof(*e->slots);
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i])
            n += contract_bytes(e->slots[i]);
    n += e->capsorted * sizeof(*e->sorted) + e->capviews * sizeof(*e->views) +
         e->capcviews * sizeof(*e->cviews);
    n += e->capgseen * sizeof(rs_seen_t) + e->caplate * sizeof(rs_rejection_t);
    n += e->capcloses * sizeof(*e->closes);
    n += e->capchanged * sizeof(*e->changed) + e->capchanged_ids * sizeof(*e->changed_ids);
    n += e->capitab * sizeof(*e->itab) + rs_eng_seen_bytes(e);
    for (size_t i = 0; i < e->capitab; i++)
        if (e->itab[i])
            n += sizeof(rs_eng_istr_t) + strlen(e->itab[i]->s) + 1;
    return n;
}

size_t rs_engine_contract_bytes(const rs_engine_t *e, const char *contract_id)
{
    const rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    return c != NULL ? contract_bytes(c) + RS_ENGINE_CONTRACT_SHARE : 0;
}

int rs_engine_has_contract(const rs_engine_t *e, const char *contract_id)
{
    return rs_eng_contract_find(e, contract_id) != NULL;
}

size_t rs_engine_contract_ids(rs_engine_t *e, char ***ids)
{
    size_t n = e->ncontracts, bytes = (n + 1) * sizeof(char *);
    if (rs_eng_sort_contracts(e))
        return (size_t)-1;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(e->sorted[i]->contract_id) + 1;
    char **v = malloc(bytes);
    if (v == NULL)
        return (size_t)-1;
    char *p = (char *)(v + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(e->sorted[i]->contract_id) + 1;
        v[i] = memcpy(p, e->sorted[i]->contract_id, len);
        p += len;
    }
    v[n] = NULL;
    *ids = v;
    return n;
}

rs_contract_t *rs_eng_contract_find(const rs_engine_t *e, const char *id)
{
    if (e->nslots == 0)
        return NULL;
    return rs_eng_contract_find_h(e, id, rs_eng_str_hash(id, RS_ENG_CONTRACT_SEED));
}

rs_contract_t *rs_eng_contract_find_h(const rs_engine_t *e, const char *id, uint64_t h)
{
    if (e->nslots == 0)
        return NULL;
    for (size_t i = h & (e->nslots - 1);; i = (i + 1) & (e->nslots - 1)) {
        if (e->slots[i] == NULL)
            return NULL;
        if (strcmp(e->slots[i]->contract_id, id) == 0)
            return e->slots[i];
    }
}

void rs_eng_slot_put(rs_contract_t **slots, size_t nslots, rs_contract_t *c)
{
    uint64_t h = rs_eng_str_hash(c->contract_id, RS_ENG_CONTRACT_SEED);
    size_t i = h & (nslots - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (nslots - 1);
    slots[i] = c;
}

rs_contract_t *rs_eng_contract_new(const char *id)
{
    size_t n = strnlen(id, RS_ID_MAX - 1);
    rs_contract_t *c = calloc(1, sizeof(*c) + n + 1);
    if (c == NULL)
        return NULL;
    memcpy(c->contract_id, id, n);
    c->contract_id[n] = '\0';
    c->horizon = RS_PERIOD_NONE;
    c->frontier = RS_PERIOD_NONE;
    c->dirty_from = RS_PERIOD_NONE;
    c->booked_on = RS_DATE_NONE;
    c->cancelled_on = RS_DATE_NONE;
    c->suspended_on = RS_DATE_NONE;
    return c;
}

int rs_eng_contract_insert(rs_engine_t *e, rs_contract_t *c)
{
    if ((e->ncontracts + 1) * 10 >= e->nslots * 7) {
        size_t n = e->nslots ? e->nslots * 2 : 64;
        rs_contract_t **ns = calloc(n, sizeof(*ns));
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < e->nslots; i++)
            if (e->slots[i])
                rs_eng_slot_put(ns, n, e->slots[i]);
        free(e->slots);
        e->slots = ns;
        e->nslots = n;
    }
    rs_eng_slot_put(e->slots, e->nslots, c);
    e->ncontracts++;
    e->sorted_dirty = 1;
    e->views_dirty = 1;
    return 0;
}

rs_contract_t *rs_eng_contract_get_or_create(rs_engine_t *e, const char *id, uint64_t h)
{
    rs_contract_t *c = rs_eng_contract_find_h(e, id, h);
    if (c)
        return c;
    c = rs_eng_contract_new(id);
    if (c == NULL || rs_eng_contract_insert(e, c)) {
        free(c);
        return NULL;
    }
    c->fresh = 1; /* not imported: the seen store has no ids of it */
    return c;
}

int rs_eng_sort_contracts(rs_engine_t *e)
{
    if (!e->sorted_dirty && e->sorted)
        return 0;
    rs_contract_t **s = realloc(e->sorted, (e->ncontracts + 1) * sizeof(*s));
    if (s == NULL)
        return -1;
    e->sorted = s;
    e->capsorted = e->ncontracts + 1;
    size_t k = 0;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i])
            s[k++] = e->slots[i];
    qsort(s, k, sizeof(*s), rs_eng_cmp_contract);
    e->sorted_dirty = 0;
    return 0;
}

void rs_engine_track_changes(rs_engine_t *e, int on)
{
    e->untracked = !on;
}

/* Remember that a contract's state changed (for rs_engine_take_changed). */
void rs_eng_mark_changed(rs_engine_t *e, rs_contract_t *c)
{
    if (e->untracked) {
        rs_eng_seen_migrate(e, c); /* with a seen store: as below */
        return;
    }
    if (c->changed)
        return;
    if (rs_eng_grow((void **)&e->changed, &e->capchanged, e->nchanged + 1,
                    sizeof(rs_contract_t *)))
        return; /* the set is best-effort only under ENOMEM; callers export all */
    e->changed[e->nchanged++] = c;
    c->changed = 1;
    rs_eng_seen_migrate(e, c); /* with a seen store: the record drops its ids */
}
