/*
 * rs_worker_consume.c — the consuming side of the loop: messages from the
 * consumer go into their partition's queue, and a partition's sub-batch is
 * taken out of it, either in the order of a pending plan (a replay) or by
 * the event-time merge of its four topics.
 *
 * Invariants:
 *   - W1: a consumed message is in exactly one queue, that of its partition
 *     number, and only while the partition is REPLAYING or ACTIVE; a message
 *     of any other partition is destroyed at once. Taking a sub-batch moves
 *     messages from the queue into the sub-batch, keeping each topic's
 *     offset order in both.
 *   - W4: the order a sub-batch is taken in depends only on the queued
 *     records (their timestamps, topics and offsets) and the plan, never on
 *     the clock, except for how long a lagging topic holds the others back.
 *   - A REPLAYING partition's sub-batch is its plan's records in plan order,
 *     taken only once all of them are there or none of the missing ones can
 *     come any more.
 *
 * Ownership: queues own their messages (rd_kafka_message_destroy on free);
 * a sub-batch owns the messages taken into it.
 */
#include "rs_worker_internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* message queues                                                           */
/* ------------------------------------------------------------------------ */

static int q_push(msgq_t *q, qitem_t it)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        qitem_t *nv = realloc(q->v, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        q->v = nv;
        q->cap = cap;
    }
    q->v[q->n++] = it;
    return 0;
}

static void q_clear(msgq_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        rd_kafka_message_destroy(q->v[i].m);
    q->n = 0;
}

void rs_worker_msgq_free(msgq_t *q)
{
    q_clear(q);
    free(q->v);
    q->v = NULL;
    q->cap = 0;
}
/* ------------------------------------------------------------------------ */
/* consuming                                                                */
/* ------------------------------------------------------------------------ */

void rs_worker_take_message(rs_worker_t *w, rd_kafka_message_t *m)
{
    int t;
    part_t *p;

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        t = m->rkt ? rs_worker_topic_index(w, rd_kafka_topic_name(m->rkt)) : -1;
        if (t >= 0 && m->partition >= 0 && m->partition < w->nparts)
            w->parts[m->partition].eof[t] = 1;
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char qb[600];
        rs_worker_log("warning consumer_error error=%s msg=%s", rd_kafka_err2name(m->err),
                      rs_worker_quote(qb, sizeof qb, rd_kafka_message_errstr(m)));
        rd_kafka_message_destroy(m);
        return;
    }
    t = rs_worker_topic_index(w, rd_kafka_topic_name(m->rkt));
    if (t < 0 || m->partition < 0 || m->partition >= w->nparts ||
        !rs_worker_owns(w, m->partition)) {
        rd_kafka_message_destroy(m); /* W1: not ours (any more) */
        return;
    }
    p = &w->parts[m->partition];
    p->eof[t] = 0;
    if (q_push(&p->q, (qitem_t){m, (uint8_t)t}) != 0) {
        rd_kafka_message_destroy(m);
        rs_worker_fail(w, "out of memory");
        return;
    }
    if (w->queued++ == 0)
        w->batch_t0 = rs_worker_now_us();
}

/* ------------------------------------------------------------------------ */
/* taking a sub-batch                                                       */
/* ------------------------------------------------------------------------ */

int rs_worker_all_eof(const part_t *p)
{
    int any = 0;
    for (int t = 0; t < N_IN; t++)
        if (p->tp_assigned[t]) {
            any = 1;
            if (!p->eof[t])
                return 0;
        }
    return any;
}

static int64_t record_time(const qitem_t *it)
{
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(it->m, &type);
    return ts < 0 ? 0 : ts;
}

/* The event-time merge (W4): a partition's four topics are not ordered
 * against each other, so its queued records are taken in record-timestamp
 * order (event time: `revstream produce` stamps each record with the
 * event's occurred_at), ties by topic then offset, keeping every topic's own
 * order. Like Kafka Streams' max.task.idle.ms, records are taken only while
 * every assigned topic of the partition has records queued or is at its end;
 * a topic that lags longer than input.idle.ms no longer holds the others
 * back. The plan records the order taken, so a replay is identical. Returns
 * 1 with a sub-batch, 0 when p waits, -1 on out-of-memory. */
static int merge_sub_batch(rs_worker_t *w, part_t *p, msgq_t *sub)
{
    size_t nq = p->q.n, pos[N_IN], left[N_IN] = {0, 0, 0, 0};
    int lagging = 0;
    for (size_t i = 0; i < nq; i++)
        left[p->q.v[i].topic]++;
    for (int t = 0; t < N_IN; t++)
        if (p->tp_assigned[t] && left[t] == 0 && !p->eof[t])
            lagging = 1;
    uint64_t now = rs_worker_now_us();
    if (lagging) {
        if (p->wait_t0 == 0)
            p->wait_t0 = now;
        if (now - p->wait_t0 < (uint64_t)w->cfg->input_idle_ms * 1000u)
            return 0;
    }
    p->wait_t0 = 0;
    memset(sub, 0, sizeof *sub);
    sub->v = malloc((nq + 1) * sizeof *sub->v);
    char *taken = calloc(nq + 1, 1);
    if (sub->v == NULL || taken == NULL) {
        free(sub->v);
        free(taken);
        sub->v = NULL;
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    sub->cap = nq + 1;
    for (int t = 0; t < N_IN; t++) {
        pos[t] = 0;
        while (pos[t] < nq && p->q.v[pos[t]].topic != t)
            pos[t]++;
    }
    for (;;) {
        int best = -1;
        for (int t = 0; t < N_IN; t++) {
            if (pos[t] >= nq)
                continue;
            if (best < 0 || record_time(&p->q.v[pos[t]]) < record_time(&p->q.v[pos[best]]))
                best = t;
        }
        if (best < 0)
            break;
        size_t j = pos[best];
        sub->v[sub->n++] = p->q.v[j];
        taken[j] = 1;
        left[best]--;
        do
            j++;
        while (j < nq && p->q.v[j].topic != best);
        pos[best] = j;
        /* a topic that ran dry and may still bring records earlier than the
         * others' stops the merge: the rest waits for the next round (a topic
         * waited out as lagging had none, so it never stops it) */
        if (left[best] == 0 && !p->eof[best])
            break;
    }
    size_t k = 0;
    for (size_t j = 0; j < nq; j++)
        if (!taken[j])
            p->q.v[k++] = p->q.v[j];
    p->q.n = k;
    free(taken);
    return sub->n > 0;
}

/* Take p's sub-batch out of its queue into *sub (W1). With a pending plan
 * (REPLAYING), the sub-batch is the planned messages in plan order, and only
 * once all of them are there (or nothing more can come: then the missing
 * ones are logged and left out). Returns 1 with a sub-batch, 0 when p must
 * wait, -1 on out-of-memory. */
int rs_worker_take_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub)
{
    if (p->state != RS_PART_REPLAYING)
        return merge_sub_batch(w, p, sub);
    size_t nq = p->q.n, missing = 0, found = 0;
    char *taken = calloc(nq + 1, 1);
    size_t *order = calloc(p->nplan + 1, sizeof *order);
    size_t pos[N_IN] = {0, 0, 0, 0};
    int rc = -1;

    if (taken == NULL || order == NULL)
        goto done;
    /* Queue messages of one topic arrive in offset order, and so do the
     * plan's items of one topic: walk each topic with one cursor. */
    for (size_t i = 0; i < p->nplan; i++) {
        int t = p->plan[i].topic;
        int64_t off = p->plan[i].offset;
        size_t j = pos[t];
        while (j < nq && (p->q.v[j].topic != t || p->q.v[j].m->offset < off))
            j++;
        if (j < nq && p->q.v[j].m->offset == off) {
            taken[j] = 1;
            order[found++] = j;
            pos[t] = j + 1;
        } else if (j < nq) {
            missing++; /* a later offset is there: this one no longer exists */
            pos[t] = j;
        } else if (rs_worker_all_eof(p)) {
            missing++;
        } else {
            rc = 0; /* not consumed yet */
            goto done;
        }
    }
    if (missing > 0)
        rs_worker_log(
            "warning plan_incomplete partition=%d planned=%zu missing=%zu "
            "hint=\"planned input records are gone from the topics; replaying the rest\"",
            (int)n, p->nplan, missing);
    memset(sub, 0, sizeof *sub);
    sub->v = malloc((found + 1) * sizeof *sub->v);
    if (sub->v == NULL)
        goto done;
    sub->cap = found + 1;
    for (size_t i = 0; i < found; i++)
        sub->v[sub->n++] = p->q.v[order[i]];
    size_t k = 0;
    for (size_t j = 0; j < nq; j++)
        if (!taken[j])
            p->q.v[k++] = p->q.v[j];
    p->q.n = k;
    rs_worker_log("plan_replay partition=%d records=%zu", (int)n, found);
    rc = 1;
done:
    free(taken);
    free(order);
    if (rc < 0)
        rs_worker_fail(w, "out of memory");
    return rc;
}
