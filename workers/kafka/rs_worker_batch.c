/*
 * rs_worker_batch.c — a batch: each partition's ready sub-batch is planned,
 * decoded and applied to the partition's engine, and its state staged; then
 * the batch is delivered and committed once. The order of one batch is the
 * delivery protocol (rs_worker.h, W3, W6):
 *
 *   1. for every sub-batch of the batch at once: the plans are saved
 *      locally in one (synced) write, then produced to changelog partition
 *      N and delivered in one round, before anything else (with
 *      exactly_once, inside the batch's transaction, opened first);
 *   2. its events are applied: journal records (the engine's sink), dead
 *      letters and balance snapshots are produced;
 *   3. its changed contracts, per-contract offsets, next input offsets and
 *      the plan's deletion are staged in the lane's write batch (lane_t:
 *      rs_worker_lane()); its changelog records (c/<id>, final m/N) are
 *      queued in the lane;
 *   4. once for the batch: every output is delivered (flush, no failed
 *      report), then the queued changelog records are produced and
 *      delivered, then the changelog positions are staged;
 *   5. the transaction (exactly_once) and then the staged state (lane0's
 *      write batch, in one write) are committed; Kafka's consumer offsets
 *      follow, for monitoring only.
 *
 * Steps 2-3 run on worker.threads threads at once when the batch has
 * sub-batches of several partitions (apply_parallel): each thread takes the
 * next partition (the largest sub-batches first) and applies it through its
 * own lane (contract map, changelog queue, staging write batch, Avro cache,
 * counts). The partitions are independent (rs_pstate.h), so a partition's
 * outputs and state are what one thread would make, in the same order.
 * After the threads are joined the helper lanes are merged into lane0
 * (their staged state appended to its write batch, their changelog records
 * to its queue), and the loop's thread alone goes on with steps 4 and 5 and
 * with what changes the worker's own state (Kafka offsets, partition
 * states).
 *
 * Invariants: W3 (nothing is committed after a failure), W4 (a sub-batch's
 * outputs are a function of the engine state before it and the records in
 * plan order), W5 (staged offsets), and a lane's cm holds exactly the
 * contracts its current sub-batch touched, in the order first touched.
 *
 * Ownership: the contract map owns its ids (copied into its id blocks,
 * reused sub-batch after sub-batch; a filter moves the kept ones to new
 * blocks, so a close's chunks do not pile up); a sub-batch's messages are
 * owned by the caller (process_batch) and freed after the batch; a helper
 * thread lives for one batch's apply step and owns nothing after it.
 */
#include "rs_worker_internal.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rs_changelog.h"
#include "rs_codec.h"
#include "rs_err.h"
#include "rs_hash.h"

/* ------------------------------------------------------------------------ */
/* per-sub-batch contract map (insertion-ordered)                           */
/* ------------------------------------------------------------------------ */

/* Drop the ids: every block but the newest is freed, and that one reused
 * (keep = 1) or freed too. */
static void cm_drop_ids(cmap_t *m, int keep)
{
    cm_block_t *b = m->ids, *next;
    if (b == NULL)
        return;
    for (cm_block_t *x = b->next; x != NULL; x = next) {
        next = x->next;
        free(x);
    }
    b->next = NULL;
    b->used = 0;
    if (!keep) {
        free(b);
        m->ids = NULL;
    }
}

/* A copy of id in the map's blocks (no free of its own: one bump per
 * entry, the blocks reused sub-batch after sub-batch). NULL when out of
 * memory. */
static char *cm_copy_id(cmap_t *m, const char *id)
{
    size_t len = strlen(id) + 1;
    cm_block_t *b = m->ids;
    if (b == NULL || b->cap - b->used < len) {
        size_t cap = len > 4000 ? len : 4000;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->next = m->ids;
        b->used = 0;
        b->cap = cap;
        m->ids = b;
    }
    char *c = memcpy(b->b + b->used, id, len);
    b->used += len;
    return c;
}

static void cm_clear(cmap_t *m)
{
    cm_drop_ids(m, 1);
    m->n = 0;
    m->last = 0;
    if (m->idx != NULL)
        memset(m->idx, 0, m->icap * sizeof *m->idx);
}

void rs_worker_cm_clear(cmap_t *m)
{
    cm_clear(m);
}

void rs_worker_cm_free(cmap_t *m)
{
    cm_clear(m);
    cm_drop_ids(m, 0);
    free(m->e);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

/* A slot of the index: the entry's hash above its index + 1. */
#define CM_SLOT(hash, i) ((uint64_t)(hash) << 32 | (uint64_t)((i) + 1))
#define CM_ENTRY(slot) ((size_t)(uint32_t)(slot)-1)

static int cm_rehash(cmap_t *m, size_t icap)
{
    uint64_t *idx = calloc(icap, sizeof *idx);
    if (idx == NULL)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t h = m->e[i].hash & (icap - 1);
        while (idx[h] != 0)
            h = (h + 1) & (icap - 1);
        idx[h] = CM_SLOT(m->e[i].hash, i);
    }
    free(m->idx);
    m->idx = idx;
    m->icap = icap;
    return 0;
}

/* The slot of id (hash h) in the index, or of the empty slot that ends its
 * probe: entries are read only where the hashes are equal. */
static size_t cm_probe(const cmap_t *m, const char *id, uint32_t h)
{
    size_t i = h & (m->icap - 1);
    for (uint64_t s; (s = m->idx[i]) != 0; i = (i + 1) & (m->icap - 1))
        if ((uint32_t)(s >> 32) == h && strcmp(m->e[CM_ENTRY(s)].id, id) == 0)
            break;
    return i;
}

centry_t *rs_worker_cm_find(const cmap_t *m, const char *id)
{
    if (m->icap == 0)
        return NULL;
    uint64_t s = m->idx[cm_probe(m, id, rs_fnv1a32_str(id))];
    return s != 0 ? &m->e[CM_ENTRY(s)] : NULL;
}

int rs_worker_cm_filter(cmap_t *m, int (*keep)(void *opaque, const centry_t *ce), void *opaque)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (keep(opaque, &m->e[i]))
            m->e[k++] = m->e[i];
    int moved = 0;
    if (k < m->n) { /* the kept ids into new blocks, so the map stays bounded */
        cm_block_t *old = m->ids;
        m->ids = NULL;
        for (size_t i = 0; i < k && moved == 0; i++) {
            char *c = cm_copy_id(m, m->e[i].id);
            if (c != NULL)
                m->e[i].id = c;
            else
                moved = -1;
        }
        cm_block_t **tail = &m->ids;
        while (*tail != NULL)
            tail = &(*tail)->next;
        *tail = old; /* until the ids are moved: freed, or kept under the new */
        if (moved == 0) {
            for (cm_block_t *next; old != NULL; old = next) {
                next = old->next;
                free(old);
            }
            *tail = NULL;
        }
    }
    m->n = k;
    m->last = 0;
    if (moved != 0)
        return -1;
    return m->icap == 0 ? 0 : cm_rehash(m, m->icap);
}

/* The entry of `id`, created if absent. NULL on out-of-memory. The entry
 * returned last is tried first: an event's contract is asked for again and
 * again (before and after the engine, by every journal entry it posts). */
centry_t *rs_worker_cm_get(cmap_t *m, const char *id)
{
    if (m->last != 0 && strcmp(m->e[m->last - 1].id, id) == 0)
        return &m->e[m->last - 1];
    if (m->icap == 0 && cm_rehash(m, 64) != 0)
        return NULL;
    uint32_t hash = rs_fnv1a32_str(id);
    size_t h = cm_probe(m, id, hash);
    if (m->idx[h] != 0) {
        m->last = CM_ENTRY(m->idx[h]) + 1;
        return &m->e[m->last - 1];
    }
    if ((m->n + 1) * 2 > m->icap) {
        if (cm_rehash(m, m->icap * 2) != 0)
            return NULL;
        h = cm_probe(m, id, hash);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        centry_t *ne = realloc(m->e, cap * sizeof *ne);
        if (ne == NULL)
            return NULL;
        m->e = ne;
        m->cap = cap;
    }
    centry_t *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->id = cm_copy_id(m, id);
    if (e->id == NULL)
        return NULL;
    for (int t = 0; t < N_IN; t++) {
        e->applied[t] = OFF_NONE;
        e->stored[t] = OFF_UNKNOWN;
    }
    e->as_of = RS_PERIOD_NONE;
    e->hash = hash;
    m->idx[h] = CM_SLOT(hash, m->n);
    m->n++;
    m->last = m->n;
    return e;
}

/* ------------------------------------------------------------------------ */
/* decoding and applying                                                    */
/* ------------------------------------------------------------------------ */

/* rs_avro lookup hook over the registry that remembers the registry's
 * status, so a transient failure is retried instead of dead-lettered. */
int rs_worker_schema_lookup(void *opaque, int32_t id, char **json_text, char *errstr,
                            size_t errlen)
{
    lane_t *l = opaque;
    rs_worker_t *w = l->w;
    const char *text = NULL;

    /* the registry client is shared by the lanes (its cache, its handle) */
    pthread_mutex_lock(&w->mu);
    int rc = rs_registry_get_schema(w->reg, id, &text, errstr, errlen);
    *json_text = rc == RS_REGISTRY_OK ? strdup(text) : NULL;
    pthread_mutex_unlock(&w->mu);
    l->last_lookup_status = rc;
    if (rc != RS_REGISTRY_OK)
        return -1;
    if (*json_text == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Decode one message into ev. Returns 0, 1 (bad: errstr says why) or -1
 * (failure recorded: the registry stayed unreachable). ev is initialized
 * here whatever the result (the decoders initialize it first: rs_avro.h,
 * rs_codec.h), so the caller only releases it. */
static int decode(rs_worker_t *w, const inrec_t *m, rs_event_t *ev, char *errstr, size_t errlen)
{
    if (m->payload == NULL) {
        rs_event_init(ev);
        rs_errorf(errstr, errlen, "record has no value");
        return 1;
    }
    if (w->cfg->input_format == RS_CONFIG_FORMAT_JSON)
        return rs_codec_json_decode(m->payload, m->len, ev, errstr, errlen) == 0 ? 0 : 1;
    for (int attempt = 0;; attempt++) {
        LANE(w)->last_lookup_status = RS_REGISTRY_OK;
        int rc = rs_avro_decode_event(LANE(w)->cache, m->payload, m->len, ev, errstr, errlen);
        if (rc == RS_AVRO_OK)
            return 0;
        if (rc == RS_AVRO_ENOMEM) {
            rs_worker_fail(w, "decode: out of memory");
            return -1;
        }
        if (rc != RS_AVRO_EUNKNOWN_ID || LANE(w)->last_lookup_status != RS_REGISTRY_EIO)
            return 1;
        if (attempt + 1 >= REGISTRY_RETRIES) {
            rs_worker_fail(w, "schema registry unreachable: %s", errstr);
            return -1;
        }
        char qe[600];
        rs_worker_log("warning registry_retry attempt=%d error=%s", attempt + 1,
                      rs_worker_quote(qe, sizeof qe, errstr));
        sleep(1u << attempt);
    }
}

/* "c/<id>" in key (room for RS_STATE_MAX_ID_LEN + 8), the changelog key of a
 * contract record: what snprintf(key, cap, "c/%s", id) writes, without
 * snprintf's cost (once per contract per sub-batch). */
static void contract_cl_key(char *key, size_t cap, const char *id)
{
    size_t l = strlen(id);
    if (l > cap - 3)
        l = cap - 3; /* truncated as snprintf would (ids are checked shorter) */
    key[0] = 'c';
    key[1] = '/';
    memcpy(key + 2, id, l);
    key[2 + l] = '\0';
}

/* The applied offset of (contract, topic): this sub-batch's, else the
 * store's. Returns 0 or -1 (failure recorded). */
static int applied_offset(rs_worker_t *w, part_t *p, centry_t *ce, int t, int64_t *out)
{
    char err[512];

    if (ce->stored[t] == OFF_UNKNOWN) {
        /* the partition's cache first: the store is read once per contract */
        centry_t *known = rs_worker_cm_get(&p->offs, ce->id);
        if (known == NULL) {
            rs_worker_fail(w, "out of memory");
            return -1;
        }
        if (known->stored[t] == OFF_UNKNOWN) {
            /* every input topic's offset at once: they share one key */
            int64_t off[N_IN];
            if (rs_state_get_contract_topic_offsets(w->st, known->id,
                                                    (const char *const *)w->cfg->topics, N_IN,
                                                    off, err, sizeof err) < 0) {
                rs_worker_fail(w, "state: contract %s: %s", known->id, err);
                return -1;
            }
            for (int u = 0; u < N_IN; u++)
                if (known->stored[u] == OFF_UNKNOWN)
                    known->stored[u] = off[u] >= 0 ? off[u] : OFF_NONE;
        }
        ce->stored[t] = known->stored[t];
    }
    *out = ce->applied[t] > ce->stored[t] ? ce->applied[t] : ce->stored[t];
    return 0;
}

/* Event time (W4): once an accepted event's date lies in a later month than
 * the one after the partition's recognition horizon, every contract of the
 * partition is recognized through the month before the event's. Event time
 * is the events' occurred_at (not the record timestamps, which a producer
 * may set to its clock), taken in the merge's order, so recognition is
 * posted at the same points of the same input whatever the batch sizes. */
static int advance_event_time(rs_worker_t *w, rs_engine_t *e, rs_date_t occurred_on)
{
    if (occurred_on == RS_DATE_NONE)
        return 0;
    rs_period_t through = rs_period_of(occurred_on) - 1;
    rs_period_t h = rs_engine_horizon(e);
    if (h != RS_PERIOD_NONE && through <= h)
        return 0;
    if (rs_engine_advance(e, through) != 0) {
        const char *why = rs_pstate_close_error(LANE(w)->cur->ps);
        if (why[0] != '\0')
            rs_worker_fail(w, "state: %s", why);
        else
            rs_worker_fail(w, "engine: out of memory recognizing partition %d",
                           (int)LANE(w)->cur_n);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the bounded contract cache and the streaming close (rs_pstate.h C1-C3)   */
/* ------------------------------------------------------------------------ */

/* Bring the event's contract into memory from the store if it is not
 * (rs_pstate_fetch). 0, or -1 (failure recorded). */
static int fetch_contract(rs_worker_t *w, part_t *p, const char *contract_id)
{
    char err[768];
    if (rs_pstate_fetch(p->ps, contract_id, err, sizeof err) == 0)
        return 0;
    rs_worker_fail(w, "state: contract %s: %s", contract_id, err);
    return -1;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct chunk_ids {
    const char *const *ids;
    size_t n;
} chunk_ids_t;

/* cm entries to keep after a chunk: those of contracts not in it, and
 * those with an offset applied in this sub-batch (a duplicate or rejected
 * event leaves its contract clean; its offset is staged at the end). */
static int not_in_chunk(void *opaque, const centry_t *ce)
{
    const chunk_ids_t *c = opaque;
    for (int t = 0; t < N_IN; t++)
        if (ce->applied[t] >= 0)
            return 1;
    return bsearch(&ce->id, c->ids, c->n, sizeof *c->ids, cmp_id) == NULL;
}

/* The changelog records (c/<id>, with the applied offsets from the store:
 * the batch has not touched them) of the chunk's contracts written back.
 * 0, or -1 (failure recorded). */
static int chunk_changelog(rs_worker_t *w, int32_t pn, const char *const *ids,
                           void *const *blobs, const size_t *lens, size_t n)
{
    char err[512], key[RS_STATE_MAX_ID_LEN + 8];
    const char **wid = malloc((n + 1) * sizeof *wid);
    int64_t *offs = malloc((n + 1) * N_IN * sizeof *offs);
    size_t nw = 0;
    int rc = -1;

    if (wid == NULL || offs == NULL) {
        rs_worker_fail(w, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (blobs[i] != NULL)
            wid[nw++] = ids[i];
    if (nw > 0 &&
        rs_state_get_contract_offsets(w->st, wid, nw, (const char *const *)w->cfg->topics, N_IN,
                                      offs, err, sizeof err) != 0) {
        rs_worker_fail(w, "state: partition %d: %s", (int)pn, err);
        goto out;
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        void *v = NULL;
        size_t vlen = 0;
        if (blobs[i] == NULL)
            continue;
        if (rs_changelog_encode_contract(offs + k++ * N_IN, 0, blobs[i], lens[i], &v, &vlen) !=
            0) {
            rs_worker_fail(w, "out of memory");
            goto out;
        }
        contract_cl_key(key, sizeof key, ids[i]);
        if (rs_worker_produce_cl(w, pn, key, v, vlen) != 0) {
            free(v);
            goto out;
        }
    }
    rc = nw > 0 ? rs_worker_flush_outputs(w) : 0;
out:
    free(wid);
    free(offs);
    return rc;
}

/* The close hook (rs_pstate.h C2, C3): the chunk's contracts leave memory
 * (the close is lazy: their records are written only when RS_PSTATE_MAX_LAG
 * behind), so their balance snapshots are produced now and everything so
 * far is delivered (which also keeps the producer's queue bounded), then
 * the changelog records of those written back; their entries leave the
 * sub-batch's contract map. A crash after this replays the batch's plan
 * and produces the same records again. 0, or -1 (failure recorded). */
static int close_chunk(void *opaque, const char *const *ids, void *const *blobs,
                       const size_t *lens, size_t n)
{
    rs_worker_t *w = opaque;
    part_t *p = LANE(w)->cur;
    int32_t pn = LANE(w)->cur_n;
    chunk_ids_t c = {ids, n};

    if (p == NULL || rs_worker_failed(w))
        return -1;
    rs_worker_produce_balances_of(w, rs_pstate_engine(p->ps), ids, n);
    if (rs_worker_failed(w) || rs_worker_flush_outputs(w) != 0)
        return -1;
    uint64_t chunks = atomic_fetch_add(&w->close_chunks, 1) + 1; /* lanes close at once */
    if (w->crash_in_close > 0 && chunks == w->crash_in_close + 1) {
        rs_worker_log("fault crash_in_close=%llu partition=%d action=SIGKILL",
                      (unsigned long long)w->crash_in_close, (int)pn);
        fflush(stderr);
        raise(SIGKILL);
    }
    if (chunk_changelog(w, pn, ids, blobs, lens, n) != 0)
        return -1;
    if (rs_worker_cm_filter(&LANE(w)->cm, not_in_chunk, &c) != 0) {
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    return 0;
}

void rs_worker_set_close_hooks(rs_worker_t *w, part_t *p)
{
    /* exactly_once: a chunk commit (of records written back) would make
     * state durable whose outputs may still be aborted with the
     * transaction: those stay in memory and the batch commits them */
    rs_pstate_close_hooks_t h = {close_chunk, w, (size_t)w->cfg->state_close_chunk, w->txn};
    rs_pstate_set_close_hooks(p->ps, &h);
}

/* After a commit: the cache gives back what is over its bound (C1), and
 * the per-contract offsets caches are kept to about the contracts a batch
 * can touch: their entries beyond the partitions' cached contracts, summed
 * over the partitions, stay within batch.max.records (a batch touches at
 * most that many contracts in all), so a partition whose excess would pass
 * that sum drops its cache (a cache of the store's: dropping it is safe). */
static size_t evict_after_commit(rs_worker_t *w)
{
    size_t cached = 0, excess_sum = 0;
    for (int32_t n = 0; n < w->nparts; n++) {
        part_t *p = &w->parts[n];
        if (p->ps == NULL)
            continue;
        rs_pstate_evict(p->ps);
        rs_pstate_cache_stats_t cs;
        rs_pstate_cache_stats(p->ps, &cs);
        size_t excess = p->offs.n > cs.contracts ? p->offs.n - cs.contracts : 0;
        if (excess_sum + excess > (size_t)w->cfg->batch_max_records)
            rs_worker_cm_free(&p->offs);
        else
            excess_sum += excess;
        cached += cs.contracts;
    }
    return cached;
}

static void handle_message(rs_worker_t *w, part_t *p, const qitem_t *it)
{
    rs_engine_t *e = rs_pstate_engine(p->ps);
    char err[1024];
    rs_event_t ev;
    int t = it->topic;

    int d = decode(w, it->m, &ev, err, sizeof err); /* initializes ev */
    if (d < 0)
        goto out;
    if (d > 0) {
        rs_worker_metrics_event(w, it, NULL, RS_WM_REJECTED);
        rs_worker_count_rejected(w, 1);
        rs_worker_dlq_message(w, it, err);
        goto out;
    }
    int home = rs_worker_canonical_index(rs_event_topic(ev.type));
    if (home != t) {
        snprintf(err, sizeof err, "event %s: type: %s belongs on the %s topic, not %s",
                 ev.event_id, rs_event_type_name(ev.type),
                 home >= 0 ? w->cfg->topics[home] : "?", w->cfg->topics[t]);
        rs_worker_metrics_event(w, it, &ev, RS_WM_REJECTED);
        rs_worker_count_rejected(w, 1);
        rs_worker_dlq_message(w, it, err);
        goto out;
    }
    centry_t *ce = NULL;
    if (ev.contract_id[0] != '\0') {
        int64_t applied;
        ce = rs_worker_cm_get(&LANE(w)->cm, ev.contract_id);
        if (ce == NULL) {
            rs_worker_fail(w, "out of memory");
            goto out;
        }
        if (applied_offset(w, p, ce, t, &applied) != 0)
            goto out;
        if (it->m->offset <= applied) {
            LANE(w)->stats->skipped++;
            rs_metrics_inc(w->m.skipped);
            rs_worker_metrics_event(w, it, &ev, RS_WM_SKIPPED);
            goto out;
        }
    }
    if (ce != NULL && fetch_contract(w, p, ev.contract_id) != 0)
        goto out;
    rs_apply_result_t res;
    if (rs_worker_outside_retention(w, e, &ev, err, sizeof err)) {
        rs_worker_count_rejected(w, 1); /* not the engine's: not in its counts */
        res = RS_APPLY_REJECTED;
    } else {
        res = rs_engine_apply(e, &ev, err, sizeof err);
    }
    rs_worker_metrics_event(w, it, &ev, rs_worker_apply_outcome(res));
    /* The sink may have grown the map: look the entry up again. */
    if (ce != NULL && (ce = rs_worker_cm_get(&LANE(w)->cm, ev.contract_id)) == NULL) {
        rs_worker_fail(w, "out of memory");
        goto out;
    }
    switch (res) {
    case RS_APPLY_OK:
    case RS_APPLY_PENDING:
        if (advance_event_time(w, e, ev.occurred_on) != 0)
            goto out;
        /* the sink may have grown the map again */
        if (ce != NULL && (ce = rs_worker_cm_get(&LANE(w)->cm, ev.contract_id)) == NULL) {
            rs_worker_fail(w, "out of memory");
            goto out;
        }
        if (ce != NULL) {
            ce->touched = 1;
            if (ev.occurred_on != RS_DATE_NONE) {
                rs_period_t per = rs_period_of(ev.occurred_on);
                if (ce->as_of == RS_PERIOD_NONE || per > ce->as_of)
                    ce->as_of = per;
            }
        }
        break;
    case RS_APPLY_DUPLICATE:
        break;
    case RS_APPLY_REJECTED:
        rs_worker_dlq_message(w, it, err);
        break;
    case RS_APPLY_EIO:
        rs_worker_fail(w, "state: partition %d: seen ids of event %s: %s", (int)LANE(w)->cur_n,
                       ev.event_id, rs_pstate_seen_error(p->ps));
        goto out;
    case RS_APPLY_NOMEM:
    default:
        if (rs_pstate_close_error(p->ps)[0] != '\0') /* period.closed: its close failed */
            rs_worker_fail(w, "state: event %s: %s", ev.event_id, rs_pstate_close_error(p->ps));
        else
            rs_worker_fail(w, "engine: out of memory applying event %s", ev.event_id);
        goto out;
    }
    if (ce != NULL && it->m->offset > ce->applied[t])
        ce->applied[t] = it->m->offset;
    rs_worker_take_late(w, e);
out:
    rs_event_release(&ev); /* ev goes out of scope: no need to zero it again */
}

/* ------------------------------------------------------------------------ */
/* batches                                                                  */
/* ------------------------------------------------------------------------ */

static int add_commit_offset(rs_worker_t *w, const char *topic, int32_t partition, int64_t next)
{
    rd_kafka_topic_partition_t *tp;

    if (w->commit_offsets == NULL)
        w->commit_offsets = rd_kafka_topic_partition_list_new(16);
    tp = rd_kafka_topic_partition_list_find(w->commit_offsets, topic, partition);
    if (tp == NULL)
        tp = rd_kafka_topic_partition_list_add(w->commit_offsets, topic, partition);
    tp->offset = next;
    return 0;
}

/* The changelog records of a finished sub-batch, and the staging of its
 * changed contracts: every contract the engine reports changed
 * (rs_engine_take_changed, so rs_pstate_stage then finds none left and
 * stages only the meta) is exported once, staged into lane->sb and produced as
 * c/<id> with its four applied offsets; then the final meta record (engine
 * meta, the four next input offsets, no plan). Called before
 * rs_pstate_stage(); the meta exported here is the one it stages. The
 * applied event ids go as seen keys and s/ records (rs_worker_stage_seen).
 * Returns 0, 1 when a record would not fit message.max.bytes (partition n
 * is parked: the caller rolls back what was staged), or -1 (failure
 * recorded). */
static int produce_changelog(rs_worker_t *w, part_t *p, int32_t n, const int64_t next[N_IN])
{
    rs_engine_t *e = rs_pstate_engine(p->ps);
    char err[512], key[RS_STATE_MAX_ID_LEN + 8];
    void *blob = NULL, *v = NULL;
    size_t len = 0, vlen = 0;
    int64_t offs[N_IN];
    const char *const *ids = NULL;
    size_t nids = rs_engine_take_changed(e, &ids);

    for (size_t i = 0; i < nids; i++) {
        centry_t *ce = rs_worker_cm_get(&LANE(w)->cm, ids[i]);
        if (ce == NULL) {
            rs_worker_fail(w, "out of memory");
            return -1;
        }
        for (int t = 0; t < N_IN; t++)
            if (applied_offset(w, p, ce, t, &offs[t]) != 0)
                return -1;
        int rc = rs_pstate_contract_record(e, ids[i], &blob, &len, err, sizeof err);
        if (rc < 0) {
            rs_worker_fail(w, "changelog: export contract %s: %s", ids[i], err);
            return -1;
        }
        if (rc == 1)
            continue; /* forgotten since it changed: as rs_pstate_stage */
        if (rs_state_batch_put_contract(LANE(w)->sb, n, ids[i], blob, len) != 0) {
            free(blob);
            rs_worker_fail(w, "state: partition %d: staging contract %s: %s", (int)n, ids[i],
                           rs_state_batch_error(LANE(w)->sb));
            return -1;
        }
        rc = rs_changelog_encode_contract(offs, 0, blob, len, &v, &vlen);
        free(blob);
        blob = NULL;
        if (rc != 0) {
            rs_worker_fail(w, "out of memory");
            return -1;
        }
        contract_cl_key(key, sizeof key, ids[i]);
        if (!rs_worker_fits(w, n, "changelog_contract", ids[i], strlen(key), vlen)) {
            free(v);
            return 1;
        }
        if (rs_worker_queue_cl(w, n, key, v, vlen) != 0)
            return -1;
    }
    for (int t = 0; t < N_IN; t++) {
        offs[t] = next[t];
        if (offs[t] < 0) {
            int rc = rs_state_get_input_offset(w->st, w->cfg->topics[t], n, &offs[t], err,
                                               sizeof err);
            if (rc < 0) {
                rs_worker_fail(w, "state: input offset of %s[%d]: %s", w->cfg->topics[t],
                               (int)n, err);
                return -1;
            }
            if (rc == 1)
                offs[t] = -1;
        }
    }
    if (rs_worker_stage_seen(w, p, n) != 0 || rs_worker_prune_seen(w, p, n) != 0)
        return -1;
    if (rs_engine_export_meta(e, &blob, &len, err, sizeof err) != 0) {
        rs_worker_fail(w, "changelog: export meta of partition %d: %s", (int)n, err);
        return -1;
    }
    int rc = rs_changelog_encode_meta(blob, len, offs, NULL, 0, &v, &vlen);
    free(blob);
    if (rc != 0) {
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    snprintf(key, sizeof key, "m/%d", (int)n);
    if (!rs_worker_fits(w, n, "changelog_meta", NULL, strlen(key), vlen)) {
        free(v);
        return 1;
    }
    return rs_worker_queue_cl(w, n, key, v, vlen);
}

/* The plan of a sub-batch: (topic, offset) in the order taken. NULL on
 * out-of-memory. */
static rs_plan_item_t *plan_items(const msgq_t *sub, int64_t next[N_IN])
{
    rs_plan_item_t *items = malloc((sub->n + 1) * sizeof *items);
    if (items == NULL)
        return NULL;
    for (int t = 0; t < N_IN; t++)
        next[t] = -1;
    for (size_t i = 0; i < sub->n; i++) {
        items[i].topic = sub->v[i].topic;
        items[i].offset = sub->v[i].m->offset;
        if (sub->v[i].m->offset + 1 > next[sub->v[i].topic])
            next[sub->v[i].topic] = sub->v[i].m->offset + 1;
    }
    return items;
}

/* Step 1 for every sub-batch of the batch at once (W3): the plans are
 * committed to the store in one write, then produced to their changelog
 * partitions and delivered in one round, before any output. With
 * exactly_once the transaction is opened first, so the plans are in it.
 * 0, or -1 (failure recorded). */
static int save_plans(rs_worker_t *w, msgq_t *subs, char *taken, int64_t (*next)[N_IN])
{
    static const int64_t none[N_IN] = {-1, -1, -1, -1};
    rs_state_batch_t *pb = NULL;
    char err[512];
    int rc = -1;

    if (rs_worker_begin_transaction(w) != 0)
        return -1;
    if (rs_state_batch_new(&pb, err, sizeof err) != 0) {
        rs_worker_fail(w, "state: %s", err);
        return -1;
    }
    for (int32_t n = 0; n < w->nparts; n++) {
        if (!taken[n])
            continue;
        rs_plan_item_t *items = plan_items(&subs[n], next[n]);
        if (items == NULL) {
            rs_worker_fail(w, "out of memory");
            goto out;
        }
        /* The changelog gets the plan too, delivered before any output, so a
         * worker restoring from the changelog alone replays this batch in
         * this order. */
        char key[48];
        void *v = NULL;
        size_t vlen = 0;
        snprintf(key, sizeof key, "m/%d", (int)n);
        if (rs_changelog_encode_meta(NULL, 0, none, items, subs[n].n, &v, &vlen) != 0) {
            free(items);
            rs_worker_fail(w, "out of memory");
            goto out;
        }
        if (!rs_worker_fits(w, n, "changelog_plan", NULL, strlen(key), vlen)) {
            free(items); /* parked before anything of it was written */
            free(v);
            rs_worker_msgq_free(&subs[n]);
            taken[n] = 0;
            continue;
        }
        int prc = rs_pstate_stage_plan(w->parts[n].ps, pb, items, subs[n].n, err, sizeof err);
        free(items);
        if (prc != 0) {
            free(v);
            rs_worker_fail(w, "state: save plan of partition %d: %s", (int)n, err);
            goto out;
        }
        /* produced after the local commit below: queued until then */
        if (rs_worker_queue_cl(w, n, key, v, vlen) != 0)
            goto out;
    }
    int src = rs_state_batch_commit(w->st, pb, err, sizeof err);
    if (src != 0) {
        w->disk_fault |= src == RS_STATE_EDISK && !rs_worker_failed(w);
        rs_worker_fail(w, "state: save plans: %s", err);
        goto out;
    }
    rs_worker_produce_clq(w);
    if (rs_worker_failed(w))
        goto out;
    if (rs_worker_flush_outputs(w) != 0)
        goto out;
    rc = 0;
out:
    rs_worker_clear_clq(w);
    rs_state_batch_destroy(pb);
    return rc;
}

/* Steps 2 and 3 for one partition's sub-batch: apply it and stage its state
 * (W4, W5) in the calling thread's lane. Its plan was saved and delivered
 * (save_plans). 1 when staged (finish_sub_batch follows on the loop's
 * thread), 0 when parked or failed (failure recorded). */
static int run_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub,
                         const int64_t next[N_IN])
{
    char err[512];
    lane_t *L = LANE(w);
    size_t clq_mark = L->nclq;

    /* The engine's own counts: an event that waited counts as applied
     * when it applies, as rejected if it fails then. */
    rs_engine_t *e = rs_pstate_engine(p->ps);
    rs_engine_stats_t s0, s1;
    rs_engine_get_stats(e, &s0);
    cm_clear(&L->cm);
    L->cur = p;
    L->cur_n = n;
    for (size_t i = 0; i < sub->n && !rs_worker_failed(w) && !p->parked; i++)
        handle_message(w, p, &sub->v[i]);
    if (!rs_worker_failed(w) && !p->parked)
        rs_worker_produce_balances(w, e);
    L->cur = NULL;
    if (rs_worker_failed(w) || p->parked)
        return 0; /* parked: nothing of it staged yet */
    rs_engine_get_stats(e, &s1);
    L->stats->events_applied += s1.applied - s0.applied;
    rs_metrics_add(w->m.applied, (int64_t)(s1.applied - s0.applied));
    L->stats->duplicates += s1.duplicates - s0.duplicates;
    rs_metrics_add(w->m.duplicates, (int64_t)(s1.duplicates - s0.duplicates));
    rs_worker_count_rejected(w, s1.rejected - s0.rejected);

    /* Stage: contracts (here, with their changelog records) + meta,
     * per-contract offsets, input offsets, plan done. A record too large
     * parks the partition: what it staged and queued is dropped. */
    rs_state_batch_save_point(L->sb);
    int pc = produce_changelog(w, p, n, next);
    if (pc == 1) {
        if (rs_state_batch_rollback(L->sb) != 0)
            rs_worker_fail(w, "state: partition %d parked: %s", (int)n,
                           rs_state_batch_error(L->sb));
        rs_worker_drop_clq_from(w, clq_mark);
        return 0;
    }
    if (pc != 0)
        return 0;
    if (rs_pstate_stage(p->ps, L->sb, err, sizeof err) != 0) {
        rs_worker_fail(w, "state: stage partition %d: %s", (int)n, err);
        return 0;
    }
    for (size_t i = 0; i < L->cm.n; i++) {
        /* one operation for the topics applied (layout 2: one key) */
        rs_state_batch_put_contract_offsets(L->sb, L->cm.e[i].id,
                                            (const char *const *)w->cfg->topics,
                                            L->cm.e[i].applied, N_IN);
        for (int t = 0; t < N_IN; t++)
            if (L->cm.e[i].applied[t] >= 0) {
                centry_t *known = rs_worker_cm_get(&p->offs, L->cm.e[i].id);
                if (known == NULL) {
                    rs_worker_fail(w, "out of memory");
                    return 0;
                }
                known->stored[t] = L->cm.e[i].applied[t];
            }
    }
    for (int t = 0; t < N_IN; t++)
        if (next[t] >= 0)
            rs_state_batch_put_input_offset(L->sb, w->cfg->topics[t], n, next[t]);
    if (rs_pstate_stage_plan_done(p->ps, L->sb) != 0) {
        rs_worker_fail(w, "state: stage the plan's deletion for partition %d", (int)n);
        return 0;
    }
    free(p->plan);
    p->plan = NULL;
    p->nplan = 0;
    L->stats->records += sub->n;
    rs_metrics_add(w->m.records, (int64_t)sub->n);
    return 1;
}

/* After a sub-batch was staged, on the loop's thread: its offsets for
 * Kafka, and a replayed partition becomes ACTIVE. 0 or -1 (failure
 * recorded). */
static int finish_sub_batch(rs_worker_t *w, int32_t n, const int64_t next[N_IN])
{
    for (int t = 0; t < N_IN; t++)
        if (next[t] >= 0)
            add_commit_offset(w, w->cfg->topics[t], n, next[t]);
    if (w->parts[n].state == RS_PART_REPLAYING)
        return rs_worker_part_set_state(w, n, RS_PART_ACTIVE);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* apply lanes: the sub-batches of a batch on worker.threads threads        */
/* ------------------------------------------------------------------------ */

/* The lane of the helper thread running, or NULL (the loop's thread). */
static _Thread_local lane_t *tl_lane;

lane_t *rs_worker_lane(rs_worker_t *w)
{
    lane_t *l = tl_lane;
    return l != NULL && l->w == w ? l : &w->lane0;
}

void rs_worker_lane_free(lane_t *l)
{
    if (l == NULL)
        return;
    rs_worker_cm_free(&l->cm);
    for (size_t i = 0; i < l->nclq; i++) {
        free(l->clq[i].key);
        free(l->clq[i].val);
    }
    free(l->clq);
    l->clq = NULL;
    l->nclq = l->capclq = 0;
    rs_avro_cache_destroy(l->cache);
    l->cache = NULL;
    rs_state_batch_destroy(l->sb);
    l->sb = NULL;
}

int rs_worker_lanes_new(rs_worker_t *w, char *errstr, size_t errlen)
{
    int n = (int)w->cfg->worker_threads - 1;

    if (n <= 0)
        return 0;
    w->lanes = calloc((size_t)n, sizeof *w->lanes);
    if (w->lanes == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        return -1;
    }
    w->nlanes = n;
    for (int i = 0; i < n; i++) {
        lane_t *l = &w->lanes[i];
        l->w = w;
        l->stats = &l->own;
        if (rs_state_batch_new(&l->sb, errstr, errlen) != 0)
            return -1;
        if (w->lane0.cache == NULL)
            continue; /* JSON in and out */
        if (rs_avro_cache_new(&l->cache, errstr, errlen) != RS_AVRO_OK)
            return -1;
        /* the output schemas too come through the (shared) registry */
        rs_avro_cache_set_lookup(l->cache, rs_worker_schema_lookup, l);
    }
    return 0;
}

/* Fold a helper lane's batch into lane0 after the apply step: staged
 * state, changelog records (each partition's in its order) and counts.
 * 0, or -1 (failure recorded). */
static int merge_lane(rs_worker_t *w, lane_t *l)
{
    lane_t *l0 = &w->lane0;
    rs_worker_stats_t *a = &w->stats, *b = &l->own;
    int rc = 0;

    a->records += b->records;
    a->events_applied += b->events_applied;
    a->duplicates += b->duplicates;
    a->skipped += b->skipped;
    a->rejected += b->rejected;
    a->dlq += b->dlq;
    a->entries_produced += b->entries_produced;
    a->balances_produced += b->balances_produced;
    memset(b, 0, sizeof *b);
    if (rs_state_batch_append(l0->sb, l->sb) != 0) {
        rs_worker_fail(w, "state: %s", rs_state_batch_error(l0->sb));
        rc = -1;
    }
    if (l->nclq > 0 && l0->nclq + l->nclq > l0->capclq) {
        size_t cap = l0->nclq + l->nclq;
        clrec_t *q = realloc(l0->clq, cap * sizeof *q);
        if (q == NULL) {
            rs_worker_fail(w, "out of memory");
            for (size_t i = 0; i < l->nclq; i++) {
                free(l->clq[i].key);
                free(l->clq[i].val);
            }
            l->nclq = 0;
            return -1;
        }
        l0->clq = q;
        l0->capclq = cap;
    }
    if (l->nclq > 0) /* (clq may be NULL then: never allocated) */
        memcpy(l0->clq + l0->nclq, l->clq, l->nclq * sizeof *l->clq);
    l0->nclq += l->nclq;
    l->nclq = 0;
    return rc;
}

typedef struct apply_job {
    rs_worker_t *w;
    msgq_t *subs;
    int64_t (*next)[N_IN];
    char *staged;
    int32_t *order; /* partitions to run, largest sub-batch first */
    size_t norder;
    atomic_size_t at; /* next index of order to take */
} apply_job_t;

typedef struct apply_arg {
    apply_job_t *job;
    lane_t *lane;
} apply_arg_t;

/* Take the job's sub-batches one by one until none is left (or a failure). */
static void *apply_lane(void *arg)
{
    apply_arg_t *a = arg;
    apply_job_t *j = a->job;

    tl_lane = a->lane;
    for (;;) {
        size_t i = atomic_fetch_add(&j->at, 1);
        if (i >= j->norder || rs_worker_failed(j->w))
            break;
        int32_t n = j->order[i];
        j->staged[n] = (char)run_sub_batch(j->w, &j->w->parts[n], n, &j->subs[n], j->next[n]);
    }
    tl_lane = NULL;
    return NULL;
}

/* order[0..n): largest sub-batch first, then by partition (insertion sort:
 * n is the partition count). */
static void sort_by_size(int32_t *order, size_t n, const msgq_t *subs)
{
    for (size_t i = 1; i < n; i++) {
        int32_t x = order[i];
        size_t k = i;
        while (k > 0 && subs[order[k - 1]].n < subs[x].n) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = x;
    }
}

/* Steps 2-3 for the taken sub-batches on the loop's thread and up to
 * w->nlanes helper threads (worker.threads), each taking the next
 * partition, the largest sub-batches first; then the helper lanes are
 * merged into lane0. Partitions are independent (rs_pstate.h), so each
 * partition's outputs, state and changelog records are what one thread
 * would make, in the same order. 0, or -1 (failure recorded). */
static int apply_parallel(rs_worker_t *w, msgq_t *subs, const char *taken,
                          int64_t (*next)[N_IN], char *staged)
{
    apply_job_t j = {.w = w, .subs = subs, .next = next, .staged = staged};
    pthread_t th[64];
    apply_arg_t args[65];
    int started = 0, nth = w->nlanes < 64 ? w->nlanes : 64, rc = 0;

    j.order = malloc((size_t)w->nparts * sizeof *j.order);
    if (j.order == NULL) {
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    for (int32_t n = 0; n < w->nparts; n++)
        if (taken[n])
            j.order[j.norder++] = n;
    sort_by_size(j.order, j.norder, subs);
    atomic_init(&j.at, 0);
    rs_worker_metrics_prepare(w);
    if ((size_t)nth > j.norder - 1)
        nth = (int)j.norder - 1;
    for (int i = 0; i < nth; i++) {
        args[i] = (apply_arg_t){&j, &w->lanes[i]};
        if (pthread_create(&th[i], NULL, apply_lane, &args[i]) != 0)
            break; /* fewer threads: the others take what is left */
        started++;
    }
    args[64] = (apply_arg_t){&j, &w->lane0};
    apply_lane(&args[64]);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < started; i++)
        rc |= merge_lane(w, &w->lanes[i]);
    free(j.order);
    w->batch_threads = 1 + started;
    return rs_worker_failed(w) || rc != 0 ? -1 : 0;
}

static void update_pending_gauge(rs_worker_t *w)
{
    int64_t pending = 0;
    for (int32_t n = 0; n < w->nparts; n++)
        if (rs_worker_owns(w, n))
            pending += (int64_t)rs_engine_pending_count(rs_pstate_engine(w->parts[n].ps));
    rs_metrics_set(w->m.pending, pending);
}

/* ------------------------------------------------------------------------ */
/* test-only fault injection (rs_worker_set_kill_point)                     */
/* ------------------------------------------------------------------------ */

static void *kill_later(void *arg)
{
    uint64_t us = (uint64_t)(uintptr_t)arg;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    kill(getpid(), SIGKILL);
    return NULL;
}

/* At `point` of the batch that reaches it for the crash_after-th time: log
 * the batch's outputs so far and SIGKILL the process (state_write: start a
 * thread that does it after a random delay, and return). */
static void fault_point(rs_worker_t *w, rs_kill_point_t point, const rs_worker_stats_t *before,
                        size_t records)
{
    if (w->kill_point != point || ++w->kill_seen != w->crash_after)
        return;
    uint64_t delay = 0;
    if (point == RS_KILL_STATE_WRITE && w->kill_delay_us > 0) {
        uint64_t x = w->kill_seed * 6364136223846793005ULL + 1442695040888963407ULL;
        delay = (x >> 17) % (w->kill_delay_us + 1);
    }
    rs_worker_log("fault point=%s batch=%llu crash_after=%llu records=%zu journal=%llu "
                  "balances=%llu dlq=%llu delay_us=%llu action=SIGKILL",
                  rs_kill_point_name(point), (unsigned long long)w->kill_seen,
                  (unsigned long long)w->crash_after, records,
                  (unsigned long long)(w->stats.entries_produced - before->entries_produced),
                  (unsigned long long)(w->stats.balances_produced - before->balances_produced),
                  (unsigned long long)(w->stats.dlq - before->dlq), (unsigned long long)delay);
    fflush(stderr);
    if (point == RS_KILL_STATE_WRITE) {
        pthread_t t;
        if (pthread_create(&t, NULL, kill_later, (void *)(uintptr_t)delay) == 0) {
            pthread_detach(t);
            return;
        }
    }
    kill(getpid(), SIGKILL);
}

/* batch.max.staged.kib: a batch's staged state write (its contracts,
 * seen ids, offsets and meta, held in memory several times over until the
 * commit: the lanes' batches, their merge, the key-ordered copy) grows with
 * the distinct contracts the batch touches, so with the book; its records
 * are capped so that the last batch's bytes per record (before the first
 * batch, STAGED_FIRST_ESTIMATE) would stage at most the setting. An
 * estimate, not a hard bound: a batch whose contracts carry more state per
 * record than the last one's can stage more. The journal does not depend
 * on where batches are cut (test_batching). */
#define STAGED_MIN_RECORDS 16u
#define STAGED_FIRST_ESTIMATE 2048u /* a new contract's record and a seen id */
static size_t staged_budget(const rs_worker_t *w)
{
    size_t budget = (size_t)w->cfg->batch_max_records;
    if (w->cfg->batch_max_staged_kib <= 0)
        return budget;
    size_t per = w->staged_per_record > 0 ? w->staged_per_record : STAGED_FIRST_ESTIMATE;
    size_t cap = ((size_t)w->cfg->batch_max_staged_kib << 10) / per;
    if (cap < STAGED_MIN_RECORDS)
        cap = STAGED_MIN_RECORDS;
    return cap < budget ? cap : budget;
}

static int commit_batch(rs_worker_t *w, const rs_worker_stats_t *before, size_t records,
                        int parts, uint64_t t0);

/* A batch this small runs on the loop's thread alone (starting threads
 * would cost more than it saves). */
#define PARALLEL_MIN_RECORDS 32

/* Take every partition's ready sub-batch, save their plans (step 1), run
 * them (steps 2-3), then deliver and commit once (commit_batch). Returns 0,
 * or -1 with the worker FAILED. */
int rs_worker_process_batch(rs_worker_t *w)
{
    uint64_t t0 = rs_worker_now_us();
    rs_worker_stats_t before = w->stats;
    size_t records = 0;
    int parts = 0, rc = -1;
    msgq_t *subs = NULL;
    int64_t(*next)[N_IN] = NULL;
    char *taken = NULL;  /* taken[n]: partition n has a sub-batch (maybe empty) */
    char *staged = NULL; /* staged[n]: its sub-batch was applied and staged */

    if (rs_worker_failed(w))
        return -1;
    if (w->state == RS_WORKER_CLOSING)
        return 0;
    /* The group has moved on without us (the revoke callback, which
     * discards the queues, comes with the next poll): another member may
     * already own these partitions, so nothing is applied or produced. */
    if (rd_kafka_assignment_lost(w->consumer))
        return 0;
    /* W8: after a stall, wait for the group's verdict first */
    if (w->hold_until != 0 && rs_worker_now_us() < w->hold_until)
        return 0;
    subs = calloc((size_t)w->nparts, sizeof *subs);
    next = calloc((size_t)w->nparts, sizeof *next);
    taken = calloc((size_t)w->nparts, 1);
    if (subs == NULL || next == NULL || taken == NULL) {
        rs_worker_fail(w, "out of memory");
        goto out;
    }
    /* A batch holds at most batch.max.records records (a plan being
     * replayed is taken whole), and fewer when the last batch's staged
     * state per record says this one would stage over batch.max.staged.kib
     * (at least STAGED_MIN_RECORDS); the partition the budget starts with
     * turns from batch to batch, so none waits behind the others. */
    size_t budget = staged_budget(w);
    for (int32_t k = 0; k < w->nparts && !rs_worker_failed(w); k++) {
        int32_t n = (w->rr + k) % w->nparts;
        part_t *p = &w->parts[n];
        if (!rs_worker_owns(w, n) || p->parked ||
            (p->qn == 0 && !(p->state == RS_PART_REPLAYING && rs_worker_all_eof(p))))
            continue;
        if (budget == 0 && p->state != RS_PART_REPLAYING)
            continue;
        /* 1 also for a plan none of whose records can come any more: it
         * runs as an empty sub-batch, which deletes the plan. */
        if (rs_worker_take_sub_batch(w, p, n, &subs[n], budget) > 0) {
            taken[n] = 1;
            records += subs[n].n;
            budget = subs[n].n >= budget ? 0 : budget - subs[n].n;
            parts++;
        } else {
            rs_worker_msgq_free(&subs[n]);
        }
    }
    w->rr = w->nparts > 0 ? (w->rr + 1) % w->nparts : 0;
    /* cut by the budget: what is left may be ready, so the next batch comes
     * at once (a batch that took less than its budget took all that was
     * ready; the rest waits for new records or batch.max.ms) */
    w->more = budget == 0;
    w->fresh = 0;
    rs_worker_recount_queued(w);
    w->batch_t0 = w->queued > 0 ? rs_worker_now_us() : 0;
    if (rs_worker_failed(w))
        goto out;
    if (parts == 0) {
        rc = 0;
        goto out;
    }
    uint64_t t = rs_worker_now_us();
    if (save_plans(w, subs, taken, next) != 0)
        goto out;
    fault_point(w, RS_KILL_PLANNED, &before, records);
    w->phase_us[0] = rs_worker_now_us() - t;
    t += w->phase_us[0];
    staged = calloc((size_t)w->nparts, 1);
    if (staged == NULL) {
        rs_worker_fail(w, "out of memory");
        goto out;
    }
    w->batch_threads = 1;
    if (w->nlanes > 0 && parts > 1 && records >= PARALLEL_MIN_RECORDS) {
        if (apply_parallel(w, subs, taken, next, staged) != 0)
            goto out;
        fault_point(w, RS_KILL_MID_BATCH, &before, records);
    } else {
        int ran = 0;
        for (int32_t n = 0; n < w->nparts && !rs_worker_failed(w); n++)
            if (taken[n]) {
                staged[n] = (char)run_sub_batch(w, &w->parts[n], n, &subs[n], next[n]);
                if (ran++ == 0)
                    fault_point(w, RS_KILL_MID_BATCH, &before, records);
            }
    }
    for (int32_t n = 0; n < w->nparts && !rs_worker_failed(w); n++)
        if (staged[n] && finish_sub_batch(w, n, next[n]) != 0)
            break;
    if (rs_worker_failed(w))
        goto out;
    w->phase_us[1] = rs_worker_now_us() - t;
    rc = commit_batch(w, &before, records, parts, t0);
out:
    if (rs_worker_failed(w))
        rs_worker_abort_transaction(w);
    for (int32_t n = 0; subs != NULL && n < w->nparts; n++)
        rs_worker_msgq_free(&subs[n]);
    free(subs);
    free(next);
    free(taken);
    free(staged);
    return rc;
}

/* Steps 4 and 5: deliver the batch's outputs, then its changelog records,
 * then commit (transaction, store, Kafka offsets) and log it. `before` is
 * the stats before the batch, t0 when it began. 0, or -1 (failure
 * recorded). */
static int commit_batch(rs_worker_t *w, const rs_worker_stats_t *before, size_t records,
                        int parts, uint64_t t0)
{
    char err[512];
    uint64_t t = rs_worker_now_us();

    if (rs_worker_flush_outputs(w) != 0)
        return -1;
    fault_point(w, RS_KILL_DELIVERED, before, records);
    w->phase_us[2] = rs_worker_now_us() - t;
    t += w->phase_us[2];
    /* Only now the contracts and final meta records: a restore must never
     * see a batch as finished whose outputs may be missing. */
    rs_worker_produce_clq(w);
    if (rs_worker_failed(w) || rs_worker_flush_outputs(w) != 0)
        return -1;
    for (int32_t n = 0; n < w->nparts; n++)
        if (w->parts[n].cl_dirty) {
            w->parts[n].cl_dirty = 0;
            if (w->parts[n].cl_next < 0) {
                rs_worker_fail(w, "changelog %s[%d]: no offset in the delivery reports",
                               w->cfg->changelog_topic, (int)n);
                return -1;
            }
            rs_changelog_stage_pos(w->lane0.sb, n, w->parts[n].cl_next);
        }
    w->phase_us[3] = rs_worker_now_us() - t;
    t += w->phase_us[3];
    fault_point(w, RS_KILL_CHANGELOG, before, records);
    if (rs_worker_commit_transaction(w) != 0)
        return -1;
    fault_point(w, RS_KILL_STATE_WRITE, before, records);
    size_t staged_keys = rs_state_batch_count(w->lane0.sb);
    size_t staged_bytes = rs_state_batch_bytes(w->lane0.sb);
    size_t staged_kib = staged_bytes / 1024;
    if (records > 0)
        w->staged_per_record = staged_bytes / records;
    int src = rs_state_batch_commit(w->st, w->lane0.sb, err, sizeof err);
    if (src != 0) {
        w->disk_fault |= src == RS_STATE_EDISK && !rs_worker_failed(w);
        rs_worker_fail(w, "state: commit: %s", err);
        return -1;
    }
    fault_point(w, RS_KILL_COMMITTED, before, records);
    size_t cached = evict_after_commit(w);
    w->phase_us[4] = rs_worker_now_us() - t;
    w->dr_failed = 0;
    if (w->commit_offsets != NULL) {
        /* Informational (the store is the source of truth): async. */
        if (!w->txn)
            rd_kafka_commit(w->consumer, w->commit_offsets, 1);
        rd_kafka_topic_partition_list_destroy(w->commit_offsets);
        w->commit_offsets = NULL;
    }
    w->stats.batches++;
    rs_metrics_inc(w->m.batches);
    update_pending_gauge(w);
    uint64_t us = rs_worker_now_us() - t0;
    rs_metrics_observe(w->m.batch_seconds, (double)us / 1e6);
    rs_worker_metrics_batch(w);
    rs_worker_log(
        "batch records=%zu partitions=%d applied=%llu duplicates=%llu skipped=%llu "
        "dlq=%llu entries=%llu balances=%llu ms=%llu plan_ms=%llu apply_ms=%llu "
        "deliver_ms=%llu changelog_ms=%llu commit_ms=%llu since_last_ms=%llu cached=%zu "
        "close_chunks=%llu staged_keys=%zu staged_kib=%zu threads=%d",
        records, parts, (unsigned long long)(w->stats.events_applied - before->events_applied),
        (unsigned long long)(w->stats.duplicates - before->duplicates),
        (unsigned long long)(w->stats.skipped - before->skipped),
        (unsigned long long)(w->stats.dlq - before->dlq),
        (unsigned long long)(w->stats.entries_produced - before->entries_produced),
        (unsigned long long)(w->stats.balances_produced - before->balances_produced),
        (unsigned long long)(us / 1000), (unsigned long long)(w->phase_us[0] / 1000),
        (unsigned long long)(w->phase_us[1] / 1000),
        (unsigned long long)(w->phase_us[2] / 1000),
        (unsigned long long)(w->phase_us[3] / 1000),
        (unsigned long long)(w->phase_us[4] / 1000),
        (unsigned long long)(w->last_batch_end ? (t0 - w->last_batch_end) / 1000 : 0), cached,
        (unsigned long long)(w->close_chunks - w->close_chunks_logged), staged_keys, staged_kib,
        w->batch_threads);
    w->close_chunks_logged = w->close_chunks;
    w->last_batch_end = rs_worker_now_us();
    return 0;
}
