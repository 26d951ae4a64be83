/*
 * rs_pstate.c — one input partition's engine in the state store. See
 * rs_pstate.h for the layout and the batch-plan protocol.
 *
 * Invariants:
 *   - After rs_pstate_load, the engine holds exactly what the store had for
 *     the partition: its meta record and every contract record.
 *   - Idempotency: the engine's applied event ids live in the store's seen
 *     keys, not in contract records (rs_engine_set_seen_store, installed
 *     by rs_pstate_load: pstate_seen_lookup reads them); the ids a batch
 *     adds are staged with its contracts (rs_pstate_stage_seen).
 *   - A plan record is "RSPL", a count, then (topic u8, offset i64) items; an
 *     empty meta value means "no pending plan" (the store has no delete for
 *     meta keys, so committing a batch writes the empty value).
 */
#include "rs_pstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_MAGIC 0x4c505352u /* "RSPL" */

struct rs_pstate {
    rs_state_t *st; /* borrowed */
    int32_t partition;
    rs_engine_t *engine;
    size_t loaded;
    rs_plan_item_t *plan;
    size_t nplan;
    char meta_key[32], plan_key[32];
    char seen_err[256]; /* the last seen-store lookup error */
};

typedef struct import_ctx {
    rs_engine_t *e;
    size_t *count;
    char *errstr;
    size_t errlen;
    int failed;
} import_ctx_t;

static int import_one(void *opaque, const char *contract_id, const void *blob, size_t len)
{
    import_ctx_t *x = opaque;
    (void)contract_id;
    if (rs_engine_import_contract(x->e, blob, len, x->errstr, x->errlen)) {
        x->failed = 1;
        return 1;
    }
    if (x->count != NULL)
        (*x->count)++;
    return 0;
}

int rs_pstate_import_contracts(rs_state_t *st, int32_t partition, rs_engine_t *e, size_t *count,
                               char *errstr, size_t errlen)
{
    import_ctx_t x = {e, count, errstr, errlen, 0};
    if (rs_state_foreach_contract(st, partition, import_one, &x, errstr, errlen) < 0 ||
        x.failed)
        return -1;
    return 0;
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

/* The engine's seen store: a point lookup of the partition's seen keys. */
static int pstate_seen_lookup(void *opaque, const char *contract_id, uint64_t id_hash,
                              uint64_t *content_hash)
{
    rs_pstate_t *ps = opaque;
    return rs_state_get_seen(ps->st, ps->partition, contract_id, id_hash, content_hash, NULL,
                             ps->seen_err, sizeof ps->seen_err);
}

const char *rs_pstate_seen_error(const rs_pstate_t *ps)
{
    return ps->seen_err;
}

int rs_pstate_stage_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t drop_through,
                         rs_pstate_seen_fn fn, void *opaque, char *errstr, size_t errlen)
{
    const rs_seen_id_t *v = NULL;
    size_t n = rs_engine_take_seen(ps->engine, &v);
    for (size_t i = 0; i < n; i++) {
        if (!v[i].forget && drop_through != RS_PERIOD_NONE && v[i].period != RS_PERIOD_NONE &&
            v[i].period <= drop_through)
            continue;
        int rc =
            v[i].forget
                ? rs_state_batch_delete_seen(b, ps->partition, v[i].contract_id, v[i].id_hash)
                : rs_state_batch_put_seen(b, ps->partition, v[i].contract_id, v[i].id_hash,
                                          v[i].content_hash, v[i].period);
        if (rc) {
            snprintf(errstr, errlen, "partition %d: staging a seen id of contract %s: %s",
                     ps->partition, v[i].contract_id, rs_state_batch_error(b));
            return -1;
        }
        if (fn != NULL && fn(opaque, &v[i]) != 0) {
            snprintf(errstr, errlen, "partition %d: seen id of contract %s not passed on",
                     ps->partition, v[i].contract_id);
            return -1;
        }
    }
    return 0;
}

typedef struct prune_ctx {
    rs_pstate_t *ps;
    rs_state_batch_t *b;
    rs_period_t through;
    size_t max, n;
    rs_pstate_seen_fn fn;
    void *opaque;
    int failed;
} prune_ctx_t;

static int prune_one(void *opaque, const char *contract_id, uint64_t id_hash,
                     uint64_t content_hash, int32_t period)
{
    prune_ctx_t *x = opaque;
    (void)content_hash;
    if (period == RS_PERIOD_NONE || period > x->through)
        return 0;
    rs_seen_id_t id = {contract_id, id_hash, 0, period, 1};
    if (rs_state_batch_delete_seen(x->b, x->ps->partition, contract_id, id_hash) != 0 ||
        (x->fn != NULL && x->fn(x->opaque, &id) != 0)) {
        x->failed = 1;
        return 1;
    }
    return ++x->n >= x->max;
}

int rs_pstate_prune_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t through, size_t max,
                         rs_pstate_seen_fn fn, void *opaque, size_t *pruned, char *errstr,
                         size_t errlen)
{
    prune_ctx_t x = {ps, b, through, max, 0, fn, opaque, 0};
    *pruned = 0;
    if (max == 0)
        return 0;
    if (rs_state_foreach_seen(ps->st, ps->partition, prune_one, &x, errstr, errlen) < 0)
        return -1;
    if (x.failed) {
        snprintf(errstr, errlen, "partition %d: pruning seen ids: %s", ps->partition,
                 rs_state_batch_error(b) ? rs_state_batch_error(b) : "not passed on");
        return -1;
    }
    *pruned = x.n;
    return 0;
}

int rs_pstate_load(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                   const rs_policy_t *policy, char *errstr, size_t errlen)
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
    if (rs_pstate_import_contracts(st, partition, ps->engine, &ps->loaded, errstr, errlen))
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

void rs_pstate_destroy(rs_pstate_t *ps)
{
    if (ps == NULL)
        return;
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

int rs_pstate_stage(rs_pstate_t *ps, rs_state_batch_t *b, char *errstr, size_t errlen)
{
    const char *const *ids;
    size_t n = rs_engine_take_changed(ps->engine, &ids);
    void *buf = NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = rs_engine_export_contract(ps->engine, ids[i], &buf, &len, errstr, errlen);
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
