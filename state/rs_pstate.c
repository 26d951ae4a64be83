/*
 * rs_pstate.c — one input partition's engine in the state store. See
 * rs_pstate.h for the layout and the batch-plan protocol.
 *
 * Invariants:
 *   - After rs_pstate_load, the engine holds exactly what the store had for
 *     the partition: its meta record and every contract record, each
 *     brought through the horizon moves it missed (C4). After
 *     rs_pstate_open it holds the meta record only; contracts come and go
 *     under C1-C4 of rs_pstate.h (the second half of this file).
 *   - Idempotency: the engine's applied event ids live in the store's seen
 *     keys (one per contract), not in contract records
 *     (rs_engine_set_seen_store, installed by rs_pstate_load and
 *     rs_pstate_open: pstate_seen_lookup searches the contract's set, read
 *     once and kept with the contract, rs_pstate_seen.c); the ids a batch
 *     adds are staged with its contracts (rs_pstate_stage_seen, there too).
 *   - A plan record is "RSPL", a count, then (topic u8, offset i64) items; an
 *     empty meta value means "no pending plan" (the store has no delete for
 *     meta keys, so committing a batch writes the empty value).
 */
#include "rs_pstate.h"
#include "rs_hash.h"
#include "rs_pstate_seen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_MAGIC 0x4c505352u /* "RSPL" */

/* A contract the cache tracks (in memory). Indices are 1-based; 0 = none. */
typedef struct lru_node {
    char *id;
    size_t bytes;        /* tracked_bytes at the last refresh */
    uint32_t prev, next; /* the LRU list: head most recently used */
    uint32_t hnext;      /* hash chain; the free list when unused */
    int used;            /* in `used` (size to refresh at the next evict) */
} lru_node_t;

typedef struct lru {
    lru_node_t *nodes; /* nodes[0] unused */
    size_t cap;        /* nodes allocated, including nodes[0] */
    uint32_t top;      /* nodes[1..top] were handed out */
    uint32_t free;     /* free list through hnext */
    uint32_t *buckets; /* power of two */
    size_t nbuckets;
    uint32_t head, tail;
    size_t count, bytes, limit;
    uint32_t *used; /* nodes used since the last evict */
    size_t nused, capused;
} lru_t;

struct rs_pstate {
    rs_state_t *st; /* borrowed */
    int32_t partition;
    rs_engine_t *engine;
    size_t loaded;
    rs_plan_item_t *plan;
    size_t nplan;
    char meta_key[32], plan_key[32];
    char seen_err[256]; /* the last seen-store lookup error */
    rs_pseen_t *seen;   /* the seen sets kept (rs_pstate_seen.c) */
    int lazy;           /* rs_pstate_open: the bounded cache and the streaming close */
    lru_t lru;
    rs_pstate_close_hooks_t hooks;
    rs_pstate_cache_stats_t cs;
    char close_err[640]; /* why the last close failed */
    /* every contract of the store is in memory (a close need not read the
     * store): set by a close that kept all it read, cleared by any forget */
    int complete;
    int max_lag; /* C2: write back a record this many closes behind */
};

/* Import one contract record into e and bring it through the horizon
 * moves of `history` (the partition's meta) it missed (lazy close), then,
 * if `recognize`, through the horizon: what every load of a record does
 * (C4). `below` as rs_engine_catch_up_contract; *moves (may be NULL) gets
 * the moves caught up. Returns 1 (recognized, and the recognition changed
 * it), 0, or -1 with errstr. */
static int import_caught_up(rs_engine_t *e, const rs_engine_t *history, const char *id,
                            const void *blob, size_t len, rs_period_t below, int recognize,
                            uint64_t *caught, int *moves, char *errstr, size_t errlen)
{
    int m = 0;
    int rc = rs_engine_import_caught_up(e, id, blob, len, history, below, recognize, &m, errstr,
                                        errlen);
    if (rc < 0)
        return -1;
    if (caught != NULL)
        *caught += m > 0;
    if (moves != NULL)
        *moves = m;
    return rc;
}

typedef struct import_ctx {
    rs_engine_t *e;
    const rs_engine_t *history;
    size_t *count;
    char *errstr;
    size_t errlen;
    int failed;
} import_ctx_t;

static int import_one(void *opaque, const char *contract_id, const void *blob, size_t len)
{
    import_ctx_t *x = opaque;
    if (import_caught_up(x->e, x->history, contract_id, blob, len, RS_PERIOD_NONE, 0, NULL,
                         NULL, x->errstr, x->errlen) != 0) {
        x->failed = 1;
        return 1;
    }
    if (x->count != NULL)
        (*x->count)++;
    return 0;
}

static int import_with_history(rs_state_t *st, int32_t partition, rs_engine_t *e,
                               const rs_engine_t *history, size_t *count, char *errstr,
                               size_t errlen)
{
    import_ctx_t x = {e, history, count, errstr, errlen, 0};
    if (rs_state_foreach_contract(st, partition, import_one, &x, errstr, errlen) < 0 ||
        x.failed)
        return -1;
    return 0;
}

int rs_pstate_import_contracts(rs_state_t *st, int32_t partition, rs_engine_t *e, size_t *count,
                               char *errstr, size_t errlen)
{
    rs_engine_t *history = NULL;
    void *blob = NULL;
    size_t len = 0;
    char key[32];
    int rc = -1;
    /* the partition's horizon history, from its meta record */
    snprintf(key, sizeof key, "engine/%d", (int)partition);
    if (rs_engine_new(&history, NULL, errstr, errlen) != 0)
        goto out;
    int got = rs_state_get_meta(st, key, &blob, &len, errstr, errlen);
    if (got < 0 || (got == 0 && rs_engine_import_meta(history, blob, len, errstr, errlen)))
        goto out;
    rc = import_with_history(st, partition, e, history, count, errstr, errlen);
out:
    rs_state_free(blob);
    rs_engine_destroy(history);
    return rc;
}

int rs_pstate_import_all(rs_state_t *st, rs_engine_t *e, char *errstr, size_t errlen)
{
    int32_t *parts = NULL;
    size_t n = 0;
    int rc = -1;
    if (rs_state_partitions(st, &parts, &n, errstr, errlen))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (rs_pstate_import_contracts(st, parts[i], e, NULL, errstr, errlen))
            goto out;
    rc = 0;
out:
    rs_state_free(parts);
    return rc;
}

static int decode_plan(rs_pstate_t *ps, const unsigned char *p, size_t len, char *errstr,
                       size_t errlen)
{
    if (len == 0)
        return 0;
    if (len < 8)
        goto corrupt;
    uint32_t magic = 0, n = 0;
    for (int i = 0; i < 4; i++) {
        magic |= (uint32_t)p[i] << (8 * i);
        n |= (uint32_t)p[4 + i] << (8 * i);
    }
    if (magic != PLAN_MAGIC || (size_t)n != (len - 8) / 9 || (len - 8) % 9 != 0)
        goto corrupt;
    ps->plan = calloc((size_t)n + 1, sizeof(*ps->plan));
    if (ps->plan == NULL) {
        snprintf(errstr, errlen, "partition %d: out of memory loading its plan", ps->partition);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *q = p + 8 + (size_t)i * 9;
        uint64_t off = 0;
        for (int k = 0; k < 8; k++)
            off |= (uint64_t)q[1 + k] << (8 * k);
        if (q[0] > 3)
            goto corrupt;
        ps->plan[i].topic = q[0];
        ps->plan[i].offset = (int64_t)off;
    }
    ps->nplan = n;
    return 0;
corrupt:
    snprintf(errstr, errlen, "partition %d: corrupt batch plan in the state store",
             ps->partition);
    return -1;
}

/* The engine's seen store: the contract's set, kept (rs_pstate_seen.c). */
static int pstate_seen_lookup(void *opaque, const char *contract_id, uint64_t id_hash,
                              uint64_t *content_hash)
{
    rs_pstate_t *ps = opaque;
    return rs_pseen_lookup(ps->seen, contract_id, id_hash, content_hash, ps->seen_err,
                           sizeof ps->seen_err);
}

const char *rs_pstate_seen_error(const rs_pstate_t *ps)
{
    return ps->seen_err;
}

rs_pseen_t *rs_pstate_seen_map(rs_pstate_t *ps)
{
    return ps->seen;
}

rs_state_t *rs_pstate_store(rs_pstate_t *ps)
{
    return ps->st;
}

static int pstate_load(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                       const rs_policy_t *policy, int lazy, char *errstr, size_t errlen)
{
    rs_pstate_t *ps = calloc(1, sizeof(*ps));
    void *blob = NULL;
    size_t len = 0;
    int rc;
    if (ps == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    ps->st = st;
    ps->partition = partition;
    if ((ps->seen = rs_pseen_new(st, partition)) == NULL) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    snprintf(ps->meta_key, sizeof(ps->meta_key), "engine/%d", (int)partition);
    snprintf(ps->plan_key, sizeof(ps->plan_key), "plan/%d", (int)partition);
    if (rs_engine_new(&ps->engine, policy, errstr, errlen))
        goto fail;
    rc = rs_state_get_meta(st, ps->meta_key, &blob, &len, errstr, errlen);
    if (rc < 0)
        goto fail;
    if (rc == 0 && rs_engine_import_meta(ps->engine, blob, len, errstr, errlen))
        goto fail;
    rs_state_free(blob);
    blob = NULL;
    if (!lazy &&
        import_with_history(st, partition, ps->engine, ps->engine, &ps->loaded, errstr, errlen))
        goto fail;
    rc = rs_state_get_meta(st, ps->plan_key, &blob, &len, errstr, errlen);
    if (rc < 0 || (rc == 0 && decode_plan(ps, blob, len, errstr, errlen)))
        goto fail;
    rs_state_free(blob);
    /* what was loaded is not a change */
    const char *const *ids;
    (void)rs_engine_take_changed(ps->engine, &ids);
    rs_engine_set_seen_store(ps->engine, pstate_seen_lookup, ps);
    *out = ps;
    return 0;
fail:
    rs_state_free(blob);
    rs_pstate_destroy(ps);
    return -1;
}

static void lru_free(lru_t *c);

void rs_pstate_destroy(rs_pstate_t *ps)
{
    if (ps == NULL)
        return;
    lru_free(&ps->lru);
    rs_pseen_free(ps->seen);
    rs_engine_destroy(ps->engine);
    free(ps->plan);
    free(ps);
}

rs_engine_t *rs_pstate_engine(rs_pstate_t *ps)
{
    return ps->engine;
}

int32_t rs_pstate_partition(const rs_pstate_t *ps)
{
    return ps->partition;
}

size_t rs_pstate_loaded_contracts(const rs_pstate_t *ps)
{
    return ps->loaded;
}

int rs_pstate_contract_record(const rs_engine_t *e, const char *contract_id, void **buf,
                              size_t *len, char *errstr, size_t errlen)
{
    return rs_engine_pack_contract(e, contract_id, buf, len, errstr, errlen);
}

int rs_pstate_stage(rs_pstate_t *ps, rs_state_batch_t *b, char *errstr, size_t errlen)
{
    const char *const *ids;
    size_t n = rs_engine_take_changed(ps->engine, &ids);
    void *buf = NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = rs_pstate_contract_record(ps->engine, ids[i], &buf, &len, errstr, errlen);
        if (rc == 1)
            continue; /* forgotten since it changed */
        if (rc < 0)
            return -1;
        rc = rs_state_batch_put_contract(b, ps->partition, ids[i], buf, len);
        free(buf);
        if (rc) {
            snprintf(errstr, errlen, "partition %d: staging contract %s: %s", ps->partition,
                     ids[i], rs_state_batch_error(b));
            return -1;
        }
    }
    if (rs_pstate_stage_seen(ps, b, RS_PERIOD_NONE, NULL, NULL, errstr, errlen))
        return -1;
    if (rs_engine_export_meta(ps->engine, &buf, &len, errstr, errlen))
        return -1;
    int rc = rs_state_batch_put_meta(b, ps->meta_key, buf, len);
    free(buf);
    if (rc) {
        snprintf(errstr, errlen, "partition %d: staging engine meta: %s", ps->partition,
                 rs_state_batch_error(b));
        return -1;
    }
    return 0;
}

int rs_pstate_load(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                   const rs_policy_t *policy, char *errstr, size_t errlen)
{
    return pstate_load(out, st, partition, policy, 0, errstr, errlen);
}

const rs_plan_item_t *rs_pstate_pending_plan(const rs_pstate_t *ps, size_t *n)
{
    *n = ps->nplan;
    return ps->nplan ? ps->plan : NULL;
}

int rs_pstate_stage_plan(rs_pstate_t *ps, rs_state_batch_t *b, const rs_plan_item_t *items,
                         size_t n, char *errstr, size_t errlen)
{
    size_t len = 8 + n * 9;
    unsigned char *p = n > UINT32_MAX ? NULL : malloc(len);
    int rc = -1;
    if (p == NULL) {
        snprintf(errstr, errlen, "partition %d: out of memory saving a plan", ps->partition);
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(PLAN_MAGIC >> (8 * i));
        p[4 + i] = (unsigned char)((uint32_t)n >> (8 * i));
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char *q = p + 8 + i * 9;
        q[0] = items[i].topic;
        for (int k = 0; k < 8; k++)
            q[1 + k] = (unsigned char)((uint64_t)items[i].offset >> (8 * k));
    }
    if (rs_state_batch_put_meta(b, ps->plan_key, p, len)) {
        snprintf(errstr, errlen, "partition %d: staging a plan: %s", ps->partition,
                 rs_state_batch_error(b));
        goto out;
    }
    rc = 0;
out:
    free(p);
    return rc;
}

int rs_pstate_save_plan(rs_pstate_t *ps, const rs_plan_item_t *items, size_t n, char *errstr,
                        size_t errlen)
{
    rs_state_batch_t *b = NULL;
    int rc = -1;
    if (rs_state_batch_new(&b, errstr, errlen) == 0 &&
        rs_pstate_stage_plan(ps, b, items, n, errstr, errlen) == 0)
        rc = rs_state_batch_commit(ps->st, b, errstr, errlen);
    rs_state_batch_destroy(b);
    return rc;
}

int rs_pstate_stage_plan_done(rs_pstate_t *ps, rs_state_batch_t *b)
{
    free(ps->plan);
    ps->plan = NULL;
    ps->nplan = 0;
    return rs_state_batch_put_meta(b, ps->plan_key, "", 0);
}

/* ------------------------------------------------------------------------ */
/* the bounded cache (C1)                                                   */
/* ------------------------------------------------------------------------ */

static void lru_free(lru_t *c)
{
    for (uint32_t i = 1; i <= c->top; i++)
        free(c->nodes[i].id);
    free(c->nodes);
    free(c->buckets);
    free(c->used);
    memset(c, 0, sizeof *c);
}

static uint32_t lru_find(const lru_t *c, const char *id)
{
    if (c->nbuckets == 0)
        return 0;
    uint32_t i = c->buckets[rs_fnv1a32_str(id) & (c->nbuckets - 1)];
    while (i != 0 && strcmp(c->nodes[i].id, id) != 0)
        i = c->nodes[i].hnext;
    return i;
}

static void lru_unlink(lru_t *c, uint32_t i)
{
    lru_node_t *n = &c->nodes[i];
    if (n->prev)
        c->nodes[n->prev].next = n->next;
    else
        c->head = n->next;
    if (n->next)
        c->nodes[n->next].prev = n->prev;
    else
        c->tail = n->prev;
    n->prev = n->next = 0;
}

static void lru_push_head(lru_t *c, uint32_t i)
{
    c->nodes[i].next = c->head;
    c->nodes[i].prev = 0;
    if (c->head)
        c->nodes[c->head].prev = i;
    c->head = i;
    if (c->tail == 0)
        c->tail = i;
}

/* Note node i as used: its size is refreshed at the next evict. */
static int lru_mark_used(lru_t *c, uint32_t i)
{
    if (c->nodes[i].used)
        return 0;
    if (c->nused == c->capused) {
        size_t cap = c->capused ? c->capused * 2 : 256;
        uint32_t *u = realloc(c->used, cap * sizeof *u);
        if (u == NULL)
            return -1;
        c->used = u;
        c->capused = cap;
    }
    c->used[c->nused++] = i;
    c->nodes[i].used = 1;
    return 0;
}

static int lru_rehash(lru_t *c, size_t nb)
{
    uint32_t *b = calloc(nb, sizeof *b);
    if (b == NULL)
        return -1;
    for (uint32_t i = 1; i <= c->top; i++)
        if (c->nodes[i].id != NULL) {
            uint32_t h = rs_fnv1a32_str(c->nodes[i].id) & (uint32_t)(nb - 1);
            c->nodes[i].hnext = b[h];
            b[h] = i;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    return 0;
}

/* Track `id` (not tracked yet) as the most recently used. 0 or -1 ENOMEM. */
static int lru_add(lru_t *c, const char *id, int hot)
{
    uint32_t i = c->free;
    char *copy = strdup(id);
    if (copy == NULL)
        return -1;
    if (i != 0) {
        c->free = c->nodes[i].hnext;
    } else {
        if ((size_t)c->top + 1 >= c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 1024;
            lru_node_t *nn = cap > UINT32_MAX ? NULL : realloc(c->nodes, cap * sizeof *nn);
            if (nn == NULL) {
                free(copy);
                return -1;
            }
            c->nodes = nn;
            c->cap = cap;
        }
        i = ++c->top;
    }
    memset(&c->nodes[i], 0, sizeof c->nodes[i]);
    /* rehash before the node has its id: lru_rehash chains every named node */
    if ((c->count + 1) * 2 > c->nbuckets && lru_rehash(c, c->nbuckets ? c->nbuckets * 2 : 1024))
        goto fail;
    c->nodes[i].id = copy;
    uint32_t h = rs_fnv1a32_str(id) & (uint32_t)(c->nbuckets - 1);
    c->nodes[i].hnext = c->buckets[h];
    c->buckets[h] = i;
    c->count++;
    if (hot) {
        lru_push_head(c, i);
    } else { /* coldest: the first to go */
        c->nodes[i].prev = c->tail;
        if (c->tail)
            c->nodes[c->tail].next = i;
        c->tail = i;
        if (c->head == 0)
            c->head = i;
    }
    return lru_mark_used(c, i);
fail:
    free(copy);
    c->nodes[i].id = NULL;
    c->nodes[i].hnext = c->free;
    c->free = i;
    return -1;
}

static void lru_remove(lru_t *c, uint32_t i)
{
    lru_node_t *n = &c->nodes[i];
    uint32_t *pp = &c->buckets[rs_fnv1a32_str(n->id) & (c->nbuckets - 1)];
    while (*pp != i)
        pp = &c->nodes[*pp].hnext;
    *pp = n->hnext;
    lru_unlink(c, i);
    c->bytes -= n->bytes;
    c->count--;
    free(n->id);
    n->id = NULL;
    n->used = 0;
    n->hnext = c->free;
    c->free = i;
}

static int pstate_walk(void *opaque, rs_engine_t *e);

/* What the cache counts for a contract in memory: the engine's heap for it
 * (rs_engine_contract_bytes, 0 if absent) plus its node here: the node in
 * an array that doubles, its id's copy, its share of the buckets (at least
 * 2 per node, at most 4) and of `used`. */
static size_t tracked_bytes(const rs_engine_t *e, const char *id)
{
    size_t b = rs_engine_contract_bytes(e, id);
    if (b == 0)
        return 0;
    return b + 2 * sizeof(lru_node_t) + rs_engine_alloc_size(strlen(id) + 1) +
           5 * sizeof(uint32_t);
}

int rs_pstate_open(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                   const rs_policy_t *policy, size_t cache_bytes, char *errstr, size_t errlen)
{
    if (pstate_load(out, st, partition, policy, 1, errstr, errlen))
        return -1;
    (*out)->lazy = 1;
    (*out)->max_lag = RS_PSTATE_MAX_LAG;
    (*out)->lru.limit = cache_bytes;
    rs_engine_set_advance_hook((*out)->engine, pstate_walk, *out);
    return 0;
}

void rs_pstate_set_max_lag(rs_pstate_t *ps, int max_lag)
{
    ps->max_lag = max_lag < 1 ? 1 : max_lag;
}

void rs_pstate_set_close_hooks(rs_pstate_t *ps, const rs_pstate_close_hooks_t *h)
{
    ps->hooks = *h;
}

int rs_pstate_fetch(rs_pstate_t *ps, const char *contract_id, char *errstr, size_t errlen)
{
    lru_t *c = &ps->lru;
    uint32_t i = lru_find(c, contract_id);
    /* tracked but not in the engine: an id whose event never created it;
     * ask the store again */
    if (i != 0 && !rs_engine_has_contract(ps->engine, contract_id)) {
        rs_pseen_drop(ps->seen, contract_id);
        lru_remove(c, i);
        i = 0;
    }
    if (i != 0) {
        if (c->head != i) {
            lru_unlink(c, i);
            lru_push_head(c, i);
        }
        if (lru_mark_used(c, i) == 0)
            return 0;
        snprintf(errstr, errlen, "partition %d: out of memory", ps->partition);
        return -1;
    }
    if (!rs_engine_has_contract(ps->engine, contract_id)) {
        void *blob = NULL;
        size_t len = 0;
        int rc = rs_state_get_contract(ps->st, ps->partition, contract_id, &blob, &len, errstr,
                                       errlen);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            rc = import_caught_up(ps->engine, ps->engine, contract_id, blob, len,
                                  RS_PERIOD_NONE, 0, &ps->cs.caught_up, NULL, errstr, errlen);
            rs_state_free(blob);
            if (rc != 0)
                return -1;
            ps->cs.loads++;
        }
    }
    if (lru_add(c, contract_id, 1) == 0)
        return 0;
    snprintf(errstr, errlen, "partition %d: out of memory", ps->partition);
    return -1;
}

size_t rs_pstate_evict(rs_pstate_t *ps)
{
    lru_t *c = &ps->lru;
    size_t gone = 0;
    for (size_t k = 0; k < c->nused; k++) {
        uint32_t i = c->used[k];
        lru_node_t *n = &c->nodes[i];
        if (n->id == NULL || !n->used)
            continue;
        n->used = 0;
        size_t b = tracked_bytes(ps->engine, n->id);
        if (b == 0) { /* the engine never created it (its event was skipped) */
            rs_pseen_drop(ps->seen, n->id);
            lru_remove(c, i);
            continue;
        }
        b += rs_pseen_bytes(ps->seen, n->id); /* its seen set, kept with it */
        c->bytes = c->bytes - n->bytes + b;
        n->bytes = b;
    }
    c->nused = 0;
    while (c->bytes > c->limit && c->tail != 0) {
        uint32_t i = c->tail;
        rs_engine_forget_contract(ps->engine, c->nodes[i].id);
        rs_pseen_drop(ps->seen, c->nodes[i].id);
        lru_remove(c, i);
        gone++;
    }
    ps->cs.evicted += gone;
    if (gone > 0)
        ps->complete = 0;
    return gone;
}

const char *rs_pstate_close_error(const rs_pstate_t *ps)
{
    return ps->close_err;
}

void rs_pstate_cache_stats(const rs_pstate_t *ps, rs_pstate_cache_stats_t *out)
{
    *out = ps->cs;
    out->contracts = ps->lru.count;
    out->bytes = ps->lru.bytes;
    out->limit = ps->lru.limit;
}

void rs_pstate_cache_stats_add(rs_pstate_cache_stats_t *sum, const rs_pstate_t *ps)
{
    rs_pstate_cache_stats_t x;
    rs_pstate_cache_stats(ps, &x);
    sum->contracts += x.contracts;
    sum->bytes += x.bytes;
    sum->limit += x.limit;
    sum->loads += x.loads;
    sum->evicted += x.evicted;
    sum->walked += x.walked;
    sum->chunks += x.chunks;
    sum->caught_up += x.caught_up;
    sum->written += x.written;
}

/* ------------------------------------------------------------------------ */
/* the streaming, lazy close (C2, C3)                                       */
/* ------------------------------------------------------------------------ */

typedef struct walk {
    rs_pstate_t *ps;
    rs_engine_t *e;
    char **mem; /* in memory when the close began, sorted */
    size_t nmem, j;
    char **ids; /* recognized by the close, for the hook (the chunk) */
    void **blobs;
    size_t *lens;
    char *cached; /* cached[i]: ids[i] was in memory: it stays */
    char *write;  /* write[i]: ids[i] is written back (RS_PSTATE_MAX_LAG) */
    size_t n, cap, nwrite;
    size_t kept; /* estimated bytes of contracts read from the store kept */
    int forgot;  /* a contract read from the store left memory again */
    char err[512];
} walk_t;

static void walk_clear(walk_t *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->ids[i]);
        free(x->blobs[i]);
    }
    x->n = x->nwrite = 0;
}

/* Hand the chunk to the hook (C3), commit the records written back (none
 * unless some were RS_PSTATE_MAX_LAG behind), then forget the contracts of
 * it read from the store. */
static int walk_flush_chunk(walk_t *x)
{
    rs_pstate_t *ps = x->ps;
    rs_state_batch_t *b = NULL;
    int rc = -1;

    if (x->n == 0)
        return 0;
    if (x->nwrite > 0 && rs_state_batch_new(&b, x->err, sizeof x->err) != 0)
        goto out;
    for (size_t i = 0; i < x->n; i++) {
        if (!x->write[i])
            continue;
        if (rs_pstate_contract_record(x->e, x->ids[i], &x->blobs[i], &x->lens[i], x->err,
                                      sizeof x->err) != 0)
            goto out;
        rs_state_batch_put_contract(b, ps->partition, x->ids[i], x->blobs[i], x->lens[i]);
    }
    if (ps->hooks.chunk != NULL &&
        ps->hooks.chunk(ps->hooks.opaque, (const char *const *)x->ids, x->blobs, x->lens,
                        x->n) != 0) {
        snprintf(x->err, sizeof x->err, "partition %d: close chunk not delivered",
                 ps->partition);
        goto out;
    }
    if (b != NULL && rs_state_batch_commit(ps->st, b, x->err, sizeof x->err) != 0)
        goto out;
    for (size_t i = x->n; i-- > 0;)
        if (!x->cached[i]) {
            rs_engine_forget_contract(x->e, x->ids[i]);
            x->forgot = 1;
        } else if (x->write[i]) { /* committed: it stays, clean */
            rs_engine_contract_clear_changed(x->e, x->ids[i]);
        }
    ps->cs.chunks++;
    ps->cs.written += x->nwrite;
    rc = 0;
out:
    rs_state_batch_destroy(b);
    walk_clear(x);
    return rc;
}

/* Add a contract the close changed to the chunk; hand the chunk on when
 * full. `cached`: it was in memory (it stays); `write`: its record is
 * written back. 0 or -1. */
static int walk_add_to_chunk(walk_t *x, const char *id, int cached, int write)
{
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        char **ni = realloc(x->ids, cap * sizeof *ni);
        if (ni != NULL)
            x->ids = ni;
        void **nb = ni ? realloc(x->blobs, cap * sizeof *nb) : NULL;
        if (nb != NULL)
            x->blobs = nb;
        size_t *nl = nb ? realloc(x->lens, cap * sizeof *nl) : NULL;
        if (nl != NULL)
            x->lens = nl;
        char *nc = nl ? realloc(x->cached, cap) : NULL;
        if (nc != NULL)
            x->cached = nc;
        char *nw = nc ? realloc(x->write, cap) : NULL;
        if (nw == NULL) {
            snprintf(x->err, sizeof x->err, "out of memory");
            return -1;
        }
        x->write = nw;
        x->cap = cap;
    }
    if ((x->ids[x->n] = strdup(id)) == NULL) {
        snprintf(x->err, sizeof x->err, "out of memory");
        return -1;
    }
    x->blobs[x->n] = NULL;
    x->lens[x->n] = 0;
    x->cached[x->n] = (char)cached;
    x->write[x->n] = (char)write;
    x->nwrite += write != 0;
    x->n++;
    if (x->n >= x->ps->hooks.contracts && walk_flush_chunk(x) != 0)
        return -1;
    return 0;
}

/* Recognize a contract through the horizon. A change the close alone made
 * (the contract was clean) is not written (C2) unless `write`: the
 * contract leaves the changed set. Returns 1 (the close changed it), 0 or
 * -1 (x->err). */
static int walk_recognize(walk_t *x, const char *id, int write)
{
    int rc = rs_engine_walk_contract(x->e, id, write);
    if (rc < 0)
        snprintf(x->err, sizeof x->err, "out of memory recognizing contract %s", id);
    return rc;
}

/* An in-memory contract: recognized; one the batch had not changed joins
 * the chunk (the hook sees it) and stays in memory. How far behind its
 * record is is not known here: it is written back only with max_lag 1. */
static int walk_memory_one(walk_t *x, const char *id)
{
    int chunked = x->ps->hooks.contracts > 0;
    int write = chunked && x->ps->max_lag <= 1 && !x->ps->hooks.keep_written;
    int rc = walk_recognize(x, id, write);
    if (rc == 1 && chunked)
        return walk_add_to_chunk(x, id, 1, write);
    return rc < 0 ? -1 : 0;
}

/* Recognize the in-memory contracts before `id` (all if NULL). */
static int walk_memory_until(walk_t *x, const char *id)
{
    for (; x->j < x->nmem && (id == NULL || strcmp(x->mem[x->j], id) < 0); x->j++)
        if (walk_memory_one(x, x->mem[x->j]) != 0)
            return -1;
    return 0;
}

/* Keep a contract read from the store in memory, coldest. */
static int walk_keep(walk_t *x, const char *id)
{
    if (lru_add(&x->ps->lru, id, 0) == 0)
        return 0;
    snprintf(x->err, sizeof x->err, "out of memory");
    return -1;
}

static int walk_one(void *opaque, const char *id, const void *blob, size_t len)
{
    walk_t *x = opaque;
    rs_pstate_t *ps = x->ps;
    int moves = 0;

    if (walk_memory_until(x, id) != 0)
        return 1;
    if (x->j < x->nmem && strcmp(x->mem[x->j], id) == 0) /* memory is newer */
        return walk_memory_one(x, x->mem[x->j++]) == 0 ? 0 : 1;
    /* the record (of a contract not in memory: not looked up first),
     * through the closes before this one it missed, silently, then through
     * this one; a change is not staged unless it is written back: left
     * behind once more, the record would be RS_PSTATE_MAX_LAG behind */
    int rc = rs_engine_walk_record(x->e, id, blob, len, rs_engine_horizon(x->e),
                                   ps->max_lag - 1, &moves, x->err, sizeof x->err);
    if (rc < 0)
        return 1;
    ps->cs.walked++;
    ps->cs.caught_up += moves > 0;
    int write = moves + 1 >= ps->max_lag;
    if (rc == 0) { /* nothing to post: as it was in the store */
        size_t bytes = tracked_bytes(x->e, id);
        if (ps->lru.bytes + x->kept + bytes <= ps->lru.limit) { /* room: keep it */
            if (walk_keep(x, id) != 0)
                return 1;
            x->kept += bytes;
            return 0;
        }
        rs_engine_forget_contract(x->e, id);
        x->forgot = 1;
        return 0;
    }
    /* no chunks, or no chunk commits: kept (changed if written back)
     * until the batch's commit */
    if (ps->hooks.contracts == 0 || (write && ps->hooks.keep_written))
        return walk_keep(x, id) == 0 ? 0 : 1;
    return walk_add_to_chunk(x, id, 0, write) == 0 ? 0 : 1;
}

/* The engine's advance hook: C2. */
static int pstate_walk(void *opaque, rs_engine_t *e)
{
    rs_pstate_t *ps = opaque;
    walk_t x;
    int rc = -1;

    memset(&x, 0, sizeof x);
    x.ps = ps;
    x.e = e;
    x.nmem = rs_engine_contract_ids(e, &x.mem);
    if (x.nmem == (size_t)-1) {
        x.mem = NULL;
        snprintf(x.err, sizeof x.err, "out of memory");
        goto out;
    }
    /* complete: memory holds the store's every contract, so the close is
     * the plain engine's (no read of the store) */
    if ((!ps->complete && rs_state_foreach_contract(ps->st, ps->partition, walk_one, &x, x.err,
                                                    sizeof x.err) != 0) ||
        walk_memory_until(&x, NULL) != 0)
        goto out;
    if (!x.forgot)
        ps->complete = 1;
    /* The last, partial chunk stays in memory: the batch's own end (its
     * balance snapshots, its delivery, and the commit of those written
     * back, still changed) covers it, and the cache lets it go after the
     * batch's commit. */
    for (size_t i = 0; i < x.n; i++)
        if (!x.cached[i] && walk_keep(&x, x.ids[i]) != 0)
            goto out;
    rc = 0;
out:
    if (rc != 0)
        snprintf(ps->close_err, sizeof ps->close_err, "partition %d: close: %s",
                 (int)ps->partition, x.err);
    walk_clear(&x);
    free(x.ids);
    free(x.blobs);
    free(x.lens);
    free(x.cached);
    free(x.write);
    free(x.mem);
    return rc;
}
