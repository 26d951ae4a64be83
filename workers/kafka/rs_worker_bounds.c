/*
 * rs_worker_bounds.c — what keeps every record the worker writes bounded:
 *
 *   - Seen ids. The engine's applied event ids live in the store's seen
 *     keys, one per contract (state layout 3; rs_pstate installs them as
 *     the engine's seen store), not in contract records, so no record
 *     grows with the events ever applied. rs_worker_stage_seen() stages
 *     the ids a sub-batch applied into its lane's batch (lane->sb: one
 *     merge per contract) and queues them in the changelog packed per
 *     contract ("S/<contract>/<digest>", up to RS_CHANGELOG_SEEN_PACK_MAX
 *     ids and always within the producer's message limit: 20 bytes per
 *     id), a forgotten id as a "s/<contract>/<hash>" tombstone, so a
 *     restore rebuilds them.
 *   - Retention (state.seen.retention.months = R > 0). Seen ids are pruned
 *     R months after their period closes: once the partition's latest
 *     closed period C moves, ids with a period <= C - R are deleted (one
 *     prune merge per contract; each id tombstoned in the changelog),
 *     about RS_WORKER_PRUNE_MAX per sub-batch, whole contracts (the rest
 *     in the next ones). An event of such a period could repeat a pruned
 *     id unnoticed, so it is dead-lettered instead
 *     (rs_worker_outside_retention), never applied unchecked. Ids moved
 *     from old records (period unknown) are kept. R = 0 keeps every id.
 *   - Parking. Before a record is produced (changelog, plan, journal,
 *     balance, dead letter), rs_worker_fits() compares its size with the
 *     producer's message.max.bytes (w->max_msg_bytes). A record that does
 *     not fit would fail the produce and, the worker exiting and replaying
 *     the same plan at restart, crash-loop. Instead its input partition is
 *     parked: an error log naming the partition, contract, record and size,
 *     the revstream_partitions_parked gauge, its four topic-partitions
 *     paused and its queue dropped. The sub-batch stages nothing (the
 *     caller rolls lane->sb back to its save point and drops the partition's
 *     queued changelog records), so nothing is committed for it: its plan
 *     stays pending locally (and in the changelog), and a restart replays
 *     it and parks again. The other partitions keep going.
 *
 * Invariants:
 *   - parts[n].parked is set only here, cleared with the partition's
 *     release (revocation), and a parked partition takes no sub-batch,
 *     queues no message, counts as idle and commits nothing.
 *   - The gauge is the number of parked partitions.
 *   - Outputs of a parked sub-batch produced before the oversize record was
 *     found were produced (at-least-once; with exactly_once they go out
 *     with the batch's transaction): the replay after the fix re-emits
 *     them with the same ids (W4).
 *
 * Ownership: nothing is kept; changelog values are handed to the queue.
 */
#include "rs_worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_changelog.h"

/* librdkafka adds its own framing to key + value: a margin above its
 * largest per-record overhead, so a record that passes here is never
 * refused as too large by the producer. */
#define RECORD_OVERHEAD 512

static void update_parked_gauge(rs_worker_t *w)
{
    int64_t n = 0;
    for (int32_t i = 0; i < w->nparts; i++)
        n += w->parts[i].parked != 0;
    rs_metrics_set(w->m.parked, n);
}

static void park(rs_worker_t *w, int32_t n, const char *what, const char *contract,
                 size_t bytes)
{
    part_t *p = &w->parts[n];
    char qc[600];

    /* an apply lane parks its own partition; the queue count and the gauge
     * are the worker's */
    pthread_mutex_lock(&w->mu);
    if (p->parked) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    p->parked = 1;
    rs_worker_log("error partition_parked partition=%d contract=%s record=%s bytes=%zu "
                  "limit=%ld reason=\"the record exceeds the producer's message.max.bytes; "
                  "nothing is committed for the partition until it is fixed (raise "
                  "kafka.message.max.bytes and the topic's max.message.bytes) and the "
                  "worker restarted\"",
                  (int)n, rs_worker_quote(qc, sizeof qc, contract ? contract : ""), what, bytes,
                  w->max_msg_bytes);
    rd_kafka_topic_partition_list_t *tpl = rd_kafka_topic_partition_list_new(N_IN);
    for (int t = 0; t < N_IN; t++)
        if (p->tp_assigned[t])
            rd_kafka_topic_partition_list_add(tpl, w->cfg->topics[t], n);
    if (tpl->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_pause_partitions(w->consumer, tpl);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rs_worker_log("warning pause partition=%d error=%s", (int)n, rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(tpl);
    rs_worker_part_queue_clear(p);
    rs_worker_recount_queued(w);
    update_parked_gauge(w);
    pthread_mutex_unlock(&w->mu);
}

int rs_worker_fits(rs_worker_t *w, int32_t n, const char *what, const char *contract,
                   size_t keylen, size_t len)
{
    size_t bytes = keylen + len;
    if (w->max_msg_bytes <= 0 || bytes + RECORD_OVERHEAD <= (size_t)w->max_msg_bytes)
        return 1;
    if (n >= 0 && n < w->nparts)
        park(w, n, what, contract, bytes);
    return 0;
}

void rs_worker_unpark(rs_worker_t *w, int32_t n)
{
    if (!w->parts[n].parked)
        return;
    w->parts[n].parked = 0;
    rs_worker_log("partition_unparked partition=%d reason=revoked", (int)n);
    update_parked_gauge(w);
}

typedef struct seen_ctx {
    rs_worker_t *w;
    int32_t n;
    int packing;       /* applied ids go to put (rs_worker_stage_seen) */
    rs_seen_id_t *put; /* applied ids, packed after the staging */
    size_t nput, cap;
} seen_ctx_t;

static int queue_seen(void *opaque, const rs_seen_id_t *id)
{
    seen_ctx_t *x = opaque;
    char key[RS_CHANGELOG_SEEN_KEY_MAX];
    void *v = NULL;
    size_t vlen = 0;

    if (!id->forget && x->packing) { /* packed by queue_packed */
        if (x->nput == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 256;
            rs_seen_id_t *v2 = realloc(x->put, cap * sizeof *v2);
            if (v2 == NULL) {
                rs_worker_fail(x->w, "out of memory");
                return -1;
            }
            x->put = v2;
            x->cap = cap;
        }
        x->put[x->nput++] = *id;
        return 0;
    }
    if (rs_changelog_encode_seen(id, key, sizeof key, &v, &vlen) != 0) {
        rs_worker_fail(x->w, "changelog: encoding a seen id of contract %s", id->contract_id);
        return -1;
    }
    return rs_worker_queue_cl(x->w, x->n, key, v, vlen);
}

/* With retention, the period through which ids are no longer kept. */
static rs_period_t retention_through(const rs_worker_t *w, const rs_engine_t *e)
{
    long months = w->cfg->seen_retention_months;
    rs_period_t closed = rs_engine_closed_through(e);
    if (months <= 0 || closed == RS_PERIOD_NONE)
        return RS_PERIOD_NONE;
    return closed - (rs_period_t)months;
}

/* Queue x's applied ids as packed records: per contract (by contract id,
 * each contract's ids in the order applied: rs_pstate_sort_seen, the
 * store's order), in chunks that fit the producer's message limit. 0 or -1
 * (failure recorded). */
static int queue_packed(seen_ctx_t *x)
{
    rs_worker_t *w = x->w;
    char key[RS_CHANGELOG_SEEN_KEY_MAX];
    const rs_seen_id_t **by = NULL;
    rs_seen_id_t *put = NULL;
    int rc = -1;

    if (x->nput == 0)
        return 0;
    by = malloc(x->nput * sizeof *by);
    put = malloc(x->nput * sizeof *put);
    if (by == NULL || put == NULL) {
        rs_worker_fail(w, "out of memory");
        goto exit;
    }
    for (size_t i = 0; i < x->nput; i++)
        by[i] = &x->put[i];
    if (rs_pstate_sort_seen(by, x->nput) != 0) {
        rs_worker_fail(w, "out of memory");
        goto exit;
    }
    for (size_t i = 0; i < x->nput; i++)
        put[i] = *by[i];
    /* ids per record: the most that fit message.max.bytes */
    size_t per = RS_CHANGELOG_SEEN_PACK_MAX,
           fixed = RECORD_OVERHEAD + sizeof key + RS_CHANGELOG_SEEN_PACK_HDR;
    if (w->max_msg_bytes > 0) {
        size_t room = (size_t)w->max_msg_bytes > fixed ? (size_t)w->max_msg_bytes - fixed : 0;
        if (room / RS_CHANGELOG_SEEN_PACK_ID < per)
            per = room / RS_CHANGELOG_SEEN_PACK_ID;
    }
    if (per == 0)
        per = 1; /* a limit below one id's record: as small as it gets */
    for (size_t i = 0; i < x->nput;) {
        const char *id = put[i].contract_id;
        size_t end = i + 1;
        while (end < x->nput &&
               (put[end].contract_id == id || strcmp(put[end].contract_id, id) == 0))
            end++;
        for (size_t k = 0; i < end; i += k) {
            k = end - i < per ? end - i : per;
            void *v = NULL;
            size_t vlen = 0;
            if (rs_changelog_encode_seen_pack(id, put + i, k, key, sizeof key, &v, &vlen) !=
                0) {
                rs_worker_fail(w, "changelog: encoding the seen ids of contract %s", id);
                goto exit;
            }
            if (rs_worker_queue_cl(w, x->n, key, v, vlen) != 0)
                goto exit;
        }
    }
    rc = 0;
exit:
    free(by);
    free(put);
    return rc;
}

int rs_worker_stage_seen(rs_worker_t *w, part_t *p, int32_t n)
{
    char err[512];
    seen_ctx_t x = {w, n, 1, NULL, 0, 0};
    /* ids of this sub-batch already outside the window (a close in it
     * moved it past them) are not kept: the prune reads the store only */
    rs_period_t drop = retention_through(w, rs_pstate_engine(p->ps));
    int rc = rs_pstate_stage_seen(p->ps, LANE(w)->sb, drop, queue_seen, &x, err, sizeof err);
    if (rc != 0 && !rs_worker_failed(w))
        rs_worker_fail(w, "state: %s", err);
    if (rc == 0)
        rc = queue_packed(&x);
    free(x.put);
    return rc;
}

int rs_worker_prune_seen(rs_worker_t *w, part_t *p, int32_t n)
{
    rs_period_t through = retention_through(w, rs_pstate_engine(p->ps));
    char err[512];
    size_t pruned = 0;
    seen_ctx_t x = {w, n, 0, NULL, 0, 0};

    if (through == RS_PERIOD_NONE)
        return 0;
    if (p->seen_pruned && through <= p->seen_pruned_through)
        return 0;
    if (rs_pstate_prune_seen(p->ps, LANE(w)->sb, through, RS_WORKER_PRUNE_MAX, queue_seen, &x,
                             &pruned, err, sizeof err) != 0) {
        if (!rs_worker_failed(w))
            rs_worker_fail(w, "state: %s", err);
        return -1;
    }
    if (pruned < RS_WORKER_PRUNE_MAX) { /* none left: done until the next close */
        p->seen_pruned = 1;
        p->seen_pruned_through = through;
    }
    if (pruned > 0)
        rs_worker_log("seen_pruned partition=%d through=%04d-%02d ids=%zu more=%s", (int)n,
                      (int)(through / 12), (int)(through % 12) + 1, pruned,
                      pruned < RS_WORKER_PRUNE_MAX ? "false" : "true");
    return 0;
}

int rs_worker_outside_retention(rs_worker_t *w, const rs_engine_t *e, const rs_event_t *ev,
                                char *err, size_t errlen)
{
    long months = w->cfg->seen_retention_months;
    rs_period_t closed = rs_engine_closed_through(e), through = retention_through(w, e);
    if (through == RS_PERIOD_NONE || ev->type == RS_EV_PERIOD_CLOSED ||
        ev->occurred_on == RS_DATE_NONE)
        return 0;
    rs_period_t per = rs_period_of(ev->occurred_on);
    if (per > through)
        return 0;
    snprintf(err, errlen,
             "event %s: occurred_at: period %04d-%02d is %ld or more months before the latest "
             "closed period %04d-%02d, so its event_id can no longer be checked for duplicates "
             "(state.seen.retention.months=%ld)",
             ev->event_id, (int)(per / 12), (int)(per % 12) + 1, months, (int)(closed / 12),
             (int)(closed % 12) + 1, months);
    return 1;
}

void rs_worker_drop_clq_from(rs_worker_t *w, size_t mark)
{
    for (size_t i = mark; i < LANE(w)->nclq; i++) {
        free(LANE(w)->clq[i].key);
        free(LANE(w)->clq[i].val);
    }
    if (mark < LANE(w)->nclq)
        LANE(w)->nclq = mark;
}
