/*
 * rs_worker_flow.c — the bound on the worker's own input queues
 * (input.buffer.records).
 *
 * The loop drains the consumer up to four fifths of input.buffer.records
 * new records between batches (librdkafka prefetches as many:
 * rs_worker.c, prefetch_records), and a batch takes at most
 * batch.max.records; what a batch leaves (the event-time merge stops a
 * partition at a topic that ran dry and may bring earlier records) stays
 * queued. Without a bound those leftovers only grow: every drain adds to
 * them, and so does every batch that leaves some. Each queued record is a
 * copy of its bytes (inrec_t, ~50 bytes on top). Measured at 50,000
 * contracts on 32 partitions, before the bound (when a queued record held
 * librdkafka's message and its share of the fetch buffer, ~500 bytes):
 * 171,000 to 503,000 records queued, 90 to 280 MiB (bench/README.md,
 * "Peak RSS"). The larger the bound, the more event time each partition's
 * queues cover, so the longer its sub-batches under a backlog
 * (bench/README.md, "A longer horizon for the merge").
 *
 * Invariants:
 *   - A topic-partition of an ACTIVE, unparked partition whose queue holds
 *     its share of input.buffer.records (divided by the topic-partitions
 *     assigned, at least FLOW_MIN_SHARE) or more is paused at the
 *     consumer; it is resumed once its queue is down to half its share.
 *     librdkafka drops the records it had fetched for a paused
 *     topic-partition and fetches again from the position the worker
 *     consumed to at resume, so nothing is lost or repeated (W1).
 *   - A topic-partition with nothing queued is never paused, so the merge's
 *     wait for a dry topic (rs_worker_consume.c) is never made longer: the
 *     order a sub-batch is taken in does not depend on this bound (W4).
 *   - A REPLAYING partition (its plan needs records that may be behind the
 *     ones queued) is never paused, and one paused before is resumed.
 *   - parts[n].paused[t] is 1 exactly while this file paused (topic t, n)
 *     and has not resumed it; a parked partition's pause is
 *     rs_worker_bounds.c's (never resumed here), and an assignment resumes
 *     every topic-partition it assigns and clears the flags
 *     (rs_worker_flow_assigning), so a pause never outlives the assignment.
 *
 * Ownership: the lists built here are freed here; the flags live in
 * part_t.
 */
#include "rs_worker_internal.h"

#include <string.h>

/* A topic-partition's share never falls below this many records: with
 * thousands of topic-partitions, a smaller share would pause after every
 * fetch. */
#define FLOW_MIN_SHARE 8

/* Pause (op 1) or resume (op 0) the list; flags set for the elements
 * librdkafka took. */
static void apply(rs_worker_t *w, rd_kafka_topic_partition_list_t *l, int op)
{
    if (l == NULL)
        return;
    rd_kafka_resp_err_t err = op ? rd_kafka_pause_partitions(w->consumer, l)
                                 : rd_kafka_resume_partitions(w->consumer, l);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rs_worker_log("warning %s error=%s", op ? "pause" : "resume", rd_kafka_err2str(err));
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        int t = rs_worker_topic_index(w, tp->topic);
        if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && t >= 0 && tp->partition >= 0 &&
            tp->partition < w->nparts) {
            w->parts[tp->partition].paused[t] = (uint8_t)op;
            w->flow_pauses += (uint64_t)op;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void add(rd_kafka_topic_partition_list_t **l, const char *topic, int32_t n)
{
    if (*l == NULL)
        *l = rd_kafka_topic_partition_list_new(16);
    rd_kafka_topic_partition_list_add(*l, topic, n);
}

size_t rs_worker_flow_share(const rs_worker_t *w)
{
    size_t tps = w->n_assigned > 0 ? w->n_assigned : 1;
    size_t share = (size_t)w->cfg->input_buffer_records / tps;
    return share < FLOW_MIN_SHARE ? FLOW_MIN_SHARE : share;
}

void rs_worker_flow_update(rs_worker_t *w)
{
    rd_kafka_topic_partition_list_t *pause = NULL, *resume = NULL;

    if (w->parts == NULL || w->consumer == NULL)
        return;
    size_t hi = rs_worker_flow_share(w), lo = hi / 2;
    for (int32_t n = 0; n < w->nparts; n++) {
        part_t *p = &w->parts[n];
        int hold = p->state == RS_PART_ACTIVE && !p->parked;
        for (int t = 0; t < N_IN; t++) {
            size_t len = p->tq[t].n - p->tq[t].head;
            if (!p->tp_assigned[t] || p->parked) {
                p->paused[t] = 0; /* revoked, or paused by the park */
            } else if (!p->paused[t] && hold && len >= hi) {
                add(&pause, w->cfg->topics[t], n);
            } else if (p->paused[t] && (!hold || len <= lo)) {
                add(&resume, w->cfg->topics[t], n);
            }
        }
    }
    apply(w, pause, 1);
    apply(w, resume, 0);
}

void rs_worker_flow_assigning(rs_worker_t *w, rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_copy(parts);
    if (l != NULL) {
        rd_kafka_resume_partitions(w->consumer, l); /* a pause of a past assignment */
        rd_kafka_topic_partition_list_destroy(l);
    }
    for (int32_t n = 0; w->parts != NULL && n < w->nparts; n++)
        memset(w->parts[n].paused, 0, sizeof w->parts[n].paused);
}
