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
 * Ownership: queues own their records (inrec_t, copied out of librdkafka's
 * messages, which are destroyed when consumed; free() on free);
 * a sub-batch owns the records taken into it.
 */
#include "rs_worker_internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* message queues                                                           */
/* ------------------------------------------------------------------------ */

static size_t q_len(const msgq_t *q)
{
    return q->n - q->head;
}

static int q_push(msgq_t *q, qitem_t it)
{
    if (q->n == q->cap && q->head > 0) {
        memmove(q->v, q->v + q->head, q_len(q) * sizeof *q->v);
        q->n -= q->head;
        q->head = 0;
    }
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

static qitem_t q_pop(msgq_t *q)
{
    qitem_t it = q->v[q->head++];
    if (q->head == q->n)
        q->head = q->n = 0;
    return it;
}

static void q_clear(msgq_t *q)
{
    for (size_t i = q->head; i < q->n; i++)
        free(q->v[i].m);
    q->head = q->n = 0;
}

void rs_worker_msgq_free(msgq_t *q)
{
    q_clear(q);
    free(q->v);
    q->v = NULL;
    q->cap = 0;
}

void rs_worker_part_queue_clear(part_t *p)
{
    for (int t = 0; t < N_IN; t++) {
        rs_worker_msgq_free(&p->tq[t]);
        p->next_off[t] = -1;
    }
    p->qn = 0;
}

void rs_worker_recount_queued(rs_worker_t *w)
{
    w->queued = 0;
    for (int32_t n = 0; n < w->nparts; n++)
        w->queued += w->parts[n].qn;
    if (w->fresh > w->queued)
        w->fresh = w->queued;
}

/* ------------------------------------------------------------------------ */
/* consuming                                                                */
/* ------------------------------------------------------------------------ */

/* m's record in one allocation of its own (inrec_t), or NULL. */
static inrec_t *copy_record(const rd_kafka_message_t *m)
{
    rd_kafka_timestamp_type_t type;
    size_t len = m->payload != NULL ? m->len : 0, klen = m->key != NULL ? m->key_len : 0;
    inrec_t *r = malloc(sizeof *r + len + klen);
    if (r == NULL)
        return NULL;
    r->offset = m->offset;
    r->timestamp = rd_kafka_message_timestamp(m, &type);
    r->partition = m->partition;
    r->len = (uint32_t)len;
    r->key_len = (uint32_t)klen;
    r->payload = m->payload != NULL ? memcpy(r->data, m->payload, len) : NULL;
    r->key = m->key != NULL ? memcpy(r->data + len, m->key, klen) : NULL;
    return r;
}

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
        !rs_worker_owns(w, m->partition) || w->parts[m->partition].parked) {
        rd_kafka_message_destroy(m); /* W1: not ours (any more), or parked */
        return;
    }
    p = &w->parts[m->partition];
    p->eof[t] = 0;
    p->next_off[t] = m->offset + 1;
    inrec_t *r = copy_record(m);
    rd_kafka_message_destroy(m);
    if (r == NULL || q_push(&p->tq[t], (qitem_t){r, (uint8_t)t}) != 0) {
        free(r);
        rs_worker_fail(w, "out of memory");
        return;
    }
    p->qn++;
    rs_worker_metrics_consumed(w, t);
    if (w->fresh++ == 0)
        w->batch_t0 = rs_worker_now_us();
    w->queued++;
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
    return it->m->timestamp < 0 ? 0 : it->m->timestamp;
}

/* Whether topic t of partition n may still bring records that are not
 * queued yet: it is assigned, not at its end, and the consumer has not
 * reached the partition's high watermark as of its last fetch (librdkafka's
 * cached watermark: no request). A topic that is caught up holds nothing
 * back, as Kafka Streams does not wait for a partition with no lag. */
static int may_bring_more(rs_worker_t *w, const part_t *p, int32_t n, int t)
{
    int64_t lo = -1, hi = -1;

    if (!p->tp_assigned[t] || p->eof[t])
        return 0;
    if (p->next_off[t] >= 0 &&
        rd_kafka_get_watermark_offsets(w->consumer, w->cfg->topics[t], n, &lo, &hi) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi >= 0 && p->next_off[t] >= hi)
        return 0;
    return 1;
}

/* The event-time merge (W4): a partition's four topics are not ordered
 * against each other, so its queued records are taken in record-timestamp
 * order (event time: `revstream produce` stamps each record with the
 * event's occurred_at), ties by topic then offset, keeping every topic's own
 * order. Records are taken only while every topic that may still bring
 * records (may_bring_more) has some queued; like Kafka Streams'
 * max.task.idle.ms, a topic that holds the others back for longer than
 * input.idle.ms no longer does. So, as long as the input is backlogged, the
 * order taken is the sort of the partition's records by (timestamp, topic,
 * offset), whatever the batch sizes. At most `limit` records are taken. The
 * plan records the order taken, so a replay is identical. Per-topic FIFOs
 * make a step O(topics). Returns 1 with a sub-batch, 0 when p waits, -1 on
 * out-of-memory. */
static int merge_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub, size_t limit)
{
    int waited[N_IN] = {0, 0, 0, 0}, lagging = 0;
    for (int t = 0; t < N_IN; t++)
        if (q_len(&p->tq[t]) == 0 && may_bring_more(w, p, n, t))
            waited[t] = lagging = 1;
    uint64_t now = rs_worker_now_us();
    if (lagging) {
        if (p->wait_t0 == 0)
            p->wait_t0 = now;
        if (now - p->wait_t0 < (uint64_t)w->cfg->input_idle_ms * 1000u)
            return 0;
    }
    p->wait_t0 = 0;
    memset(sub, 0, sizeof *sub);
    sub->v = malloc((p->qn + 1) * sizeof *sub->v);
    if (sub->v == NULL) {
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    sub->cap = p->qn + 1;
    while (sub->n < limit) {
        int best = -1;
        for (int t = 0; t < N_IN; t++) {
            if (q_len(&p->tq[t]) == 0)
                continue;
            if (best < 0 || record_time(&p->tq[t].v[p->tq[t].head]) <
                                record_time(&p->tq[best].v[p->tq[best].head]))
                best = t;
        }
        if (best < 0)
            break;
        sub->v[sub->n++] = q_pop(&p->tq[best]);
        p->qn--;
        /* a topic that ran dry and may still bring records earlier than the
         * others' stops the merge: the rest waits for the next round (a topic
         * waited out as lagging had none, so it never stops it) */
        if (q_len(&p->tq[best]) == 0 && !waited[best] && may_bring_more(w, p, n, best))
            break;
    }
    return sub->n > 0;
}

/* Take p's sub-batch out of its queue into *sub (W1). With a pending plan
 * (REPLAYING), the sub-batch is the planned messages in plan order, and only
 * once all of them are there (or nothing more can come: then the missing
 * ones are logged and left out). Returns 1 with a sub-batch, 0 when p must
 * wait, -1 on out-of-memory. */
int rs_worker_take_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub, size_t limit)
{
    if (p->state != RS_PART_REPLAYING)
        return merge_sub_batch(w, p, n, sub, limit);
    size_t missing = 0, found = 0, pos[N_IN];

    /* First check that every planned record is there (or can no longer
     * come): queue messages of one topic are in offset order, and so are
     * the plan's items of one topic, so one cursor per topic walks both. */
    for (int t = 0; t < N_IN; t++)
        pos[t] = p->tq[t].head;
    for (size_t i = 0; i < p->nplan; i++) {
        int t = p->plan[i].topic;
        int64_t off = p->plan[i].offset;
        const msgq_t *q = &p->tq[t];
        size_t j = pos[t];
        while (j < q->n && q->v[j].m->offset < off)
            j++;
        if (j < q->n && q->v[j].m->offset == off) {
            found++;
            pos[t] = j + 1;
        } else if (j < q->n) {
            missing++; /* a later offset is there: this one no longer exists */
            pos[t] = j;
        } else if (rs_worker_all_eof(p)) {
            missing++;
        } else {
            return 0; /* not consumed yet */
        }
    }
    if (missing > 0)
        rs_worker_log(
            "warning plan_incomplete partition=%d planned=%zu missing=%zu "
            "hint=\"planned input records are gone from the topics; replaying the rest\"",
            (int)n, p->nplan, missing);
    memset(sub, 0, sizeof *sub);
    sub->v = malloc((found + 1) * sizeof *sub->v);
    if (sub->v == NULL) {
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    sub->cap = found + 1;
    /* Then take them out in plan order (slots emptied, then each queue
     * compacted): a record the plan does not name stays queued. */
    for (int t = 0; t < N_IN; t++)
        pos[t] = p->tq[t].head;
    for (size_t i = 0; i < p->nplan; i++) {
        msgq_t *q = &p->tq[p->plan[i].topic];
        size_t j = pos[p->plan[i].topic];
        while (j < q->n && q->v[j].m->offset < p->plan[i].offset)
            j++;
        if (j < q->n && q->v[j].m->offset == p->plan[i].offset) {
            sub->v[sub->n++] = q->v[j];
            q->v[j].m = NULL;
            p->qn--;
            j++;
        }
        pos[p->plan[i].topic] = j;
    }
    for (int t = 0; t < N_IN; t++) {
        msgq_t *q = &p->tq[t];
        size_t k = 0;
        for (size_t j = q->head; j < q->n; j++)
            if (q->v[j].m != NULL)
                q->v[k++] = q->v[j];
        q->head = 0;
        q->n = k;
    }
    rs_worker_log("plan_replay partition=%d records=%zu", (int)n, sub->n);
    return 1;
}
