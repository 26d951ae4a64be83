/*
 * rs_engine_seen.c — the idempotency set: which event ids a contract has
 * applied or queued, kept either in the contract (no seen store: replay,
 * tests) or in the caller's store (rs_engine_set_seen_store: the worker).
 *
 * Invariants:
 *   - Without a seen store, a contract's ids are its `seen` table (exported
 *     in its record), and nothing here keeps anything else.
 *   - With one, an id is seen iff it is in the contract's `seen` table (ids
 *     its record brought: format of records written without a store), or in
 *     the new list with forget = 0, or (not in the new list) the store's
 *     lookup finds it. The new list holds each (contract, id) at most once,
 *     with its latest state, until rs_engine_take_seen hands it out: so the
 *     engine answers for the ids of the caller's batch not yet committed.
 *   - A contract's `seen` table is emptied (its ids moved to the new list,
 *     period unknown) when the contract first changes with a store set
 *     (rs_eng_seen_migrate, from rs_eng_mark_changed): the record exported
 *     after that change holds no ids, and the caller writes them to its
 *     store in the same write. Under ENOMEM the table stays, which is
 *     still correct (the ids stay in the record).
 *   - The new list's contract ids are copies in `newids` (consecutive ids
 *     of one contract share one copy), so a contract forgotten or evicted
 *     before the take leaves nothing dangling.
 *   - The store is not asked about a contract marked fresh: one the engine
 *     created for an event (rs_eng_contract_get_or_create), not imported,
 *     whose ids have not been taken since. Exact because of the store's
 *     contract (rs_engine_set_seen_store): the caller imports a contract's
 *     record before applying its events, and the store holds ids only of
 *     contracts whose records it holds (ids and records are staged in the
 *     same write, and a record leaves memory only once written). So a
 *     created contract has no record and no stored ids, and its ids so
 *     far are all in the new list; the take, which hands them to the
 *     store, clears the mark of every contract it hands ids of. A contract
 *     created and rejected keeps the mark: it has no ids anywhere.
 *
 * Ownership: the engine owns the list, its index and arena, and the array
 * rs_engine_take_seen returns (valid until the next call that changes the
 * engine).
 */
#include "rs_engine.h"

#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

struct rs_eng_newseen {
    uint64_t idh, ch;
    size_t cid; /* offset of the contract id in e->newids */
    rs_period_t period;
    int forget;
};

void rs_engine_set_seen_store(rs_engine_t *e, rs_seen_lookup_fn lookup, void *opaque)
{
    e->seen_fn = lookup;
    e->seen_opaque = opaque;
}

/* The hash of a contract id the list's index places it by (cid_hash). */
static uint64_t cid_hash(const char *cid)
{
    return rs_eng_str_hash(cid, 11);
}

static size_t idx_slot(uint64_t idh, uint64_t hc, size_t cap)
{
    return (size_t)((idh ^ hc) * 0x9e3779b97f4a7c15ULL >> 17) & (cap - 1);
}

/* The list entry of (c, idh), or NULL; hc = cid_hash(cid). */
static struct rs_eng_newseen *new_find(rs_engine_t *e, const char *cid, uint64_t hc,
                                       uint64_t idh)
{
    if (e->capnewidx == 0)
        return NULL;
    for (size_t i = idx_slot(idh, hc, e->capnewidx);; i = (i + 1) & (e->capnewidx - 1)) {
        uint32_t k = e->newidx[i];
        if (k == 0)
            return NULL;
        struct rs_eng_newseen *s = &e->nseen_v[k - 1];
        if (s->idh == idh && strcmp(e->newids + s->cid, cid) == 0)
            return s;
    }
}

static int idx_grow(rs_engine_t *e)
{
    size_t cap = e->capnewidx ? e->capnewidx * 2 : 256;
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (idx == NULL)
        return -1;
    for (size_t k = 0; k < e->nnew; k++) {
        const struct rs_eng_newseen *s = &e->nseen_v[k];
        size_t i = idx_slot(s->idh, cid_hash(e->newids + s->cid), cap);
        while (idx[i] != 0)
            i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)(k + 1);
    }
    free(e->newidx);
    e->newidx = idx;
    e->capnewidx = cap;
    return 0;
}

/* After a take, the arena backed the array handed out: start afresh. */
static void new_reset_if_taken(rs_engine_t *e)
{
    if (!e->seen_taken)
        return;
    e->seen_taken = 0;
    e->nnewids = 0;
}

/* Add or update (c, idh) in the list. 0, or -1 on ENOMEM. */
static int new_put(rs_engine_t *e, const char *cid, uint64_t idh, uint64_t ch,
                   rs_period_t period, int forget)
{
    new_reset_if_taken(e);
    uint64_t hc = cid_hash(cid); /* once, for the lookup and the insert */
    struct rs_eng_newseen *s = new_find(e, cid, hc, idh);
    if (s != NULL) {
        s->ch = ch;
        s->period = period;
        s->forget = forget;
        return 0;
    }
    /* seen_out grows with the list, so rs_engine_take_seen never allocates */
    if (e->nnew >= UINT32_MAX - 1 ||
        rs_eng_grow((void **)&e->nseen_v, &e->capnew, e->nnew + 1, sizeof(*e->nseen_v)) ||
        rs_eng_grow((void **)&e->seen_out, &e->capseen_out, e->nnew + 1, sizeof(*e->seen_out)))
        return -1;
    if ((e->nnew + 1) * 10 >= e->capnewidx * 7 && idx_grow(e))
        return -1;
    /* the contract id: the previous entry's copy when it is the same */
    size_t off;
    if (e->nnew > 0 && strcmp(e->newids + e->nseen_v[e->nnew - 1].cid, cid) == 0) {
        off = e->nseen_v[e->nnew - 1].cid;
    } else {
        size_t n = strlen(cid) + 1;
        if (rs_eng_grow((void **)&e->newids, &e->capnewids, e->nnewids + n, 1))
            return -1;
        off = e->nnewids;
        memcpy(e->newids + off, cid, n);
        e->nnewids += n;
    }
    s = &e->nseen_v[e->nnew];
    s->idh = idh;
    s->ch = ch;
    s->cid = off;
    s->period = period;
    s->forget = forget;
    size_t i = idx_slot(idh, hc, e->capnewidx);
    while (e->newidx[i] != 0)
        i = (i + 1) & (e->capnewidx - 1);
    e->newidx[i] = (uint32_t)(++e->nnew);
    return 0;
}

int rs_eng_seen_check(rs_engine_t *e, rs_contract_t *c, uint64_t idh, uint64_t *ch)
{
    rs_seen_t *s = rs_eng_seen_find(c->seen, c->capseen, idh);
    if (s && s->id_hash) {
        *ch = s->content_hash;
        return 1;
    }
    if (e->seen_fn == NULL)
        return 0;
    const struct rs_eng_newseen *n = new_find(e, c->contract_id, cid_hash(c->contract_id), idh);
    if (n != NULL) {
        *ch = n->ch;
        return !n->forget;
    }
    if (c->fresh)
        return 0; /* created here since the last take: the store has none */
    e->stats.seen_lookups++;
    int rc = e->seen_fn(e->seen_opaque, c->contract_id, idh, ch);
    return rc < 0 ? -1 : rc == 0;
}

int rs_eng_seen_note(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, uint64_t idh,
                     uint64_t ch)
{
    if (e->seen_fn == NULL) {
        size_t n = c->nseen, cap = c->capseen; /* the contract keeps them in 32 bits */
        if (cap >= UINT32_MAX / 2 || rs_eng_seen_add(&c->seen, &n, &cap, idh, ch))
            return -1;
        c->nseen = (uint32_t)n;
        c->capseen = (uint32_t)cap;
        return 0;
    }
    rs_period_t p =
        ev->occurred_on != RS_DATE_NONE ? rs_period_of(ev->occurred_on) : RS_PERIOD_NONE;
    return new_put(e, c->contract_id, idh, ch, p, 0);
}

void rs_eng_seen_forget(rs_engine_t *e, rs_contract_t *c, uint64_t idh)
{
    rs_seen_t *s = rs_eng_seen_find(c->seen, c->capseen, idh);
    if (s && s->id_hash) {
        size_t n = c->nseen, cap = c->capseen;
        rs_eng_seen_remove(&c->seen, &n, &cap, idh);
        c->nseen = (uint32_t)n;
        c->capseen = (uint32_t)cap;
    }
    if (e->seen_fn != NULL)
        (void)new_put(e, c->contract_id, idh, 0, RS_PERIOD_NONE, 1); /* ENOMEM: kept */
}

void rs_eng_seen_migrate(rs_engine_t *e, rs_contract_t *c)
{
    if (e->seen_fn == NULL || c->nseen == 0)
        return;
    for (size_t i = 0; i < c->capseen; i++)
        if (c->seen[i].id_hash && new_put(e, c->contract_id, c->seen[i].id_hash,
                                          c->seen[i].content_hash, RS_PERIOD_NONE, 0))
            return; /* the table stays: the record keeps the ids */
    free(c->seen);
    c->seen = NULL;
    c->nseen = c->capseen = 0;
}

size_t rs_engine_take_seen(rs_engine_t *e, const rs_seen_id_t **out)
{
    new_reset_if_taken(e);
    *out = NULL;
    if (e->nnew == 0)
        return 0;
    size_t n = e->nnew; /* seen_out holds at least n: new_put grew it */
    for (size_t k = 0; k < n; k++) {
        const struct rs_eng_newseen *s = &e->nseen_v[k];
        rs_seen_id_t *o = &e->seen_out[k];
        if (k == 0 || s->cid != e->nseen_v[k - 1].cid) { /* its ids go to the store */
            rs_contract_t *c = rs_eng_contract_find(e, e->newids + s->cid);
            if (c != NULL)
                c->fresh = 0;
        }
        o->contract_id = e->newids + s->cid;
        o->id_hash = s->idh;
        o->content_hash = s->ch;
        o->period = s->period;
        o->forget = s->forget;
    }
    e->nnew = 0;
    memset(e->newidx, 0, e->capnewidx * sizeof(*e->newidx));
    e->seen_taken = 1;
    *out = e->seen_out;
    return n;
}

size_t rs_eng_seen_bytes(const rs_engine_t *e)
{
    return e->capnew * sizeof(*e->nseen_v) + e->capnewidx * sizeof(*e->newidx) + e->capnewids +
           e->capseen_out * sizeof(*e->seen_out);
}

void rs_eng_seen_free(rs_engine_t *e)
{
    free(e->nseen_v);
    free(e->newidx);
    free(e->newids);
    free(e->seen_out);
}
