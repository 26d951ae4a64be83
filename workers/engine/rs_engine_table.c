/*
 * rs_engine_table.c — the engine's containers: growable arrays, the contract
 * table, the seen sets of event ids, the sorted-contract cache and the set of
 * contracts changed since rs_engine_take_changed().
 *
 * Invariants:
 *   - rs_eng_grow() never shrinks and zero-fills what it adds, so a new
 *     element reads as all zeros until it is set.
 *   - The contract table and the seen sets use open addressing with linear
 *     probing; their sizes are powers of two and they grow before they are
 *     70% full, so every probe ends at an empty slot. A seen set drops an id
 *     by rebuilding itself; a contract leaves the table only through
 *     rs_engine_forget_contract() (rs_engine_state.c), which re-inserts the
 *     rest of its probe cluster.
 *   - A contract is in the changed set at most once (its `changed` flag).
 *   - After rs_eng_sort_contracts(), e->sorted holds every contract in
 *     contract_id order until something sets sorted_dirty.
 *   - Ownership: the table owns its contracts; rs_eng_contract_free() frees
 *     one with everything it owns.
 */
#include "rs_engine.h"

#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

/* ---- growable arrays and ids ---- */

int rs_eng_grow(void **p, size_t *cap, size_t need, size_t elem)
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
    uint64_t h = seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

/* Copy an id into an RS_ID_MAX field (truncating like snprintf would). */
void rs_eng_copy_id(char *dst, const char *src)
{
    size_t n = strnlen(src, RS_ID_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- seen sets: open addressing on id_hash ---- */

rs_seen_t *rs_eng_seen_find(rs_seen_t *tab, size_t cap, uint64_t idh)
{
    if (cap == 0)
        return NULL;
    for (size_t i = idh & (cap - 1);; i = (i + 1) & (cap - 1))
        if (tab[i].id_hash == idh || tab[i].id_hash == 0)
            return &tab[i];
}

int rs_eng_seen_add(rs_seen_t **tab, size_t *n, size_t *cap, uint64_t idh, uint64_t ch)
{
    if ((*n + 1) * 10 >= *cap * 7) {
        size_t ncap = *cap ? *cap * 2 : 16;
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

void rs_eng_line_free(rs_line_t *l)
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

void rs_eng_contract_free(rs_contract_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nlines; i++)
        rs_eng_line_free(&c->lines[i]);
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

rs_contract_t *rs_eng_contract_find(const rs_engine_t *e, const char *id)
{
    if (e->nslots == 0)
        return NULL;
    uint64_t h = rs_eng_str_hash(id, 0xcbf29ce484222325ULL);
    for (size_t i = h & (e->nslots - 1);; i = (i + 1) & (e->nslots - 1)) {
        if (e->slots[i] == NULL)
            return NULL;
        if (strcmp(e->slots[i]->contract_id, id) == 0)
            return e->slots[i];
    }
}

void rs_eng_slot_put(rs_contract_t **slots, size_t nslots, rs_contract_t *c)
{
    uint64_t h = rs_eng_str_hash(c->contract_id, 0xcbf29ce484222325ULL);
    size_t i = h & (nslots - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (nslots - 1);
    slots[i] = c;
}

rs_contract_t *rs_eng_contract_get_or_create(rs_engine_t *e, const char *id)
{
    rs_contract_t *c = rs_eng_contract_find(e, id);
    if (c)
        return c;
    if ((e->ncontracts + 1) * 10 >= e->nslots * 7) {
        size_t n = e->nslots ? e->nslots * 2 : 64;
        rs_contract_t **ns = calloc(n, sizeof(*ns));
        if (ns == NULL)
            return NULL;
        for (size_t i = 0; i < e->nslots; i++)
            if (e->slots[i])
                rs_eng_slot_put(ns, n, e->slots[i]);
        free(e->slots);
        e->slots = ns;
        e->nslots = n;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    rs_eng_copy_id(c->contract_id, id);
    c->horizon = RS_PERIOD_NONE;
    c->frontier = RS_PERIOD_NONE;
    c->dirty_from = RS_PERIOD_NONE;
    c->booked_on = RS_DATE_NONE;
    c->cancelled_on = RS_DATE_NONE;
    rs_eng_slot_put(e->slots, e->nslots, c);
    e->ncontracts++;
    e->sorted_dirty = 1;
    e->views_dirty = 1;
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
    size_t k = 0;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i])
            s[k++] = e->slots[i];
    qsort(s, k, sizeof(*s), rs_eng_cmp_contract);
    e->sorted_dirty = 0;
    return 0;
}

/* Remember that a contract's state changed (for rs_engine_take_changed). */
void rs_eng_mark_changed(rs_engine_t *e, rs_contract_t *c)
{
    if (c->changed)
        return;
    if (rs_eng_grow((void **)&e->changed, &e->capchanged, e->nchanged + 1,
                    sizeof(rs_contract_t *)))
        return; /* the set is best-effort only under ENOMEM; callers export all */
    e->changed[e->nchanged++] = c;
    c->changed = 1;
}
