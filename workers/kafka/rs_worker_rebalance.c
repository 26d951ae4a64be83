/*
 * rs_worker_rebalance.c — the group's side of the loop: partitions come
 * (assign: restore from the changelog when needed, load the engine and its
 * pending plan, seek to the store's offsets) and go (revoke: commit the
 * batch in flight first; lost: discard it), revoked partitions' local state
 * is dropped after the grace, and Kafka's committed offsets are kept a
 * mirror of the store.
 *
 * Invariants:
 *   - The worker is RESTORING for the whole assign callback (JOINING or
 *     RUNNING before, RUNNING after) and not ready meanwhile (W6: a
 *     partition is restored before rs_pstate_load when its local changelog
 *     position is missing or behind).
 *   - A partition moves UNASSIGNED/REVOKED -> RESTORING -> REPLAYING/ACTIVE
 *     on assignment, REPLAYING/ACTIVE -> REVOKED on revocation (engine,
 *     queue and plan released), REVOKED -> UNASSIGNED when its grace is
 *     over and its local state is dropped (rs_worker_internal.h P1..P4).
 *   - W7: nothing is applied while the assignment is lost; Kafka's
 *     committed offsets are only ever the store's.
 *   - R1: a restore starts only where the changelog is complete for this
 *     store: from offset 0 when the partition has no local state (low
 *     watermark must be 0), from the local position L otherwise (low <= L).
 *     Otherwise the worker fails at assignment naming the partition and the
 *     low watermark (`restore_refused`, revstream_restore_refused_total):
 *     records before the low watermark were deleted (retention, not
 *     compaction, or the mock broker's size limit), and state rebuilt from
 *     the rest would be incomplete without any sign of it.
 *   - R2: a restore interrupted by a crash (rs_changelog_restore_interrupted)
 *     is done again on the next assignment, even if the local position looks
 *     current (rs_changelog.h).
 *   - The partitions new to an assignment are RESTORING together: their
 *     watermarks asked for in one round, the ones that need it restored by
 *     one consumer reading all their changelog partitions
 *     (rs_changelog_restore: one marker commit for all), made durable by
 *     one rs_changelog_restore_finish (one flush, then their markers
 *     cleared), then loaded one by one. All of it runs on the poll thread.
 *     A failure anywhere releases them all (UNASSIGNED).
 *
 * Ownership: the restore consumer's conf is handed to rs_changelog_restore
 * (which takes it); partition lists belong to librdkafka.
 */
#include "rs_worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_changelog.h"

void rs_worker_release_part(part_t *p)
{
    rs_worker_part_queue_clear(p);
    rs_worker_cm_free(&p->offs);
    rs_pstate_destroy(p->ps);
    p->ps = NULL;
    free(p->plan);
    p->plan = NULL;
    p->nplan = 0;
    memset(p->tp_assigned, 0, sizeof p->tp_assigned);
    memset(p->eof, 0, sizeof p->eof);
    p->parked = 0;
    p->seen_pruned = 0;
}

static void on_restore_progress(void *opaque, int32_t n, int64_t done, int64_t remaining,
                                int64_t rate, int finished)
{
    rs_worker_t *w = opaque;
    if (n >= 0)
        rs_worker_log("restore partition=%d done=%lld remaining=%lld rate=%lld/s%s", (int)n,
                      (long long)done, (long long)remaining, (long long)rate,
                      finished ? " finished=true" : "");
    else
        rs_worker_log("restore partitions=all done=%lld remaining=%lld rate=%lld/s",
                      (long long)done, (long long)remaining, (long long)rate);
    rs_metrics_set(w->m.restore_remaining, remaining);
    rs_metrics_heartbeat(w->metrics); /* a restore is progress (/healthz) */
}

/* The watermarks of changelog partitions parts[0..n): two consecutive
 * answers that agree, each one ListOffsets request per leader for the low
 * and one for the high watermarks of all of them (a partition at a time
 * was four round trips each). librdkafka 2.0.2 does not retry these when
 * leadership moves (NOT_LEADER), and right after a failed call it has
 * answered low = high (seen in the SIGKILL test with ListOffsets errors:
 * low 34, high 34 for a partition holding records 0..33), which would skip
 * a restore that is needed. Retried for up to METADATA_DEADLINE_MS, or
 * until the worker is asked to stop (SIGTERM while the group assigns, as
 * leadership moves): then the assignment is given up, not failed.
 * Returns 0, 1 when asked to stop first (nothing recorded), or -1 (failure
 * recorded, naming the partition). */
static int changelog_watermarks(rs_worker_t *w, const int32_t *parts, size_t n, int64_t *lo,
                                int64_t *hi)
{
    uint64_t deadline = rs_worker_now_us() + (uint64_t)METADATA_DEADLINE_MS * 1000u;
    const char *topic = w->cfg->changelog_topic;
    int have_prev = 0, rc = -1;
    rd_kafka_topic_partition_list_t *l[2] = {rd_kafka_topic_partition_list_new((int)n),
                                             rd_kafka_topic_partition_list_new((int)n)};

    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(l[0], topic, parts[i]);
        rd_kafka_topic_partition_list_add(l[1], topic, parts[i]);
    }
    for (;;) {
        const char *why = NULL;
        int32_t bad = n > 0 ? parts[0] : -1;
        int64_t bl = -1, bh = -1;
        for (size_t i = 0; i < n; i++) { /* -2: the low watermark, -1: the high one */
            l[0]->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
            l[1]->elems[i].offset = RD_KAFKA_OFFSET_END;
            l[0]->elems[i].err = l[1]->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        for (int k = 0; k < 2 && why == NULL; k++) {
            rd_kafka_resp_err_t kerr = rd_kafka_offsets_for_times(w->producer, l[k], 10000);
            if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
                why = rd_kafka_err2str(kerr);
        }
        int differ = 0;
        for (size_t i = 0; i < n && why == NULL; i++) {
            const rd_kafka_topic_partition_t *a = &l[0]->elems[i], *b = &l[1]->elems[i];
            bad = a->partition;
            bl = a->offset;
            bh = b->offset;
            why = a->err != RD_KAFKA_RESP_ERR_NO_ERROR   ? rd_kafka_err2str(a->err)
                  : b->err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(b->err)
                  : bl < 0 || bh < bl                    ? "invalid answer"
                                                         : NULL;
            differ |= have_prev && (bl != lo[i] || bh != hi[i]);
        }
        if (why == NULL && have_prev && !differ) {
            rc = 0;
            break;
        }
        if (why == NULL && !have_prev) { /* a first answer: ask again */
            for (size_t i = 0; i < n; i++) {
                lo[i] = l[0]->elems[i].offset;
                hi[i] = l[1]->elems[i].offset;
            }
            have_prev = 1;
            continue;
        }
        if (why == NULL)
            why = "two answers differ";
        if (w->stop) {
            rs_worker_log("changelog_watermarks partition=%d error=\"%s\" retrying=false "
                          "reason=stopping",
                          (int)bad, why);
            rc = 1;
            break;
        }
        if (rs_worker_now_us() >= deadline) {
            rs_worker_fail(w, "changelog %s[%d]: watermarks: %s", topic, (int)bad, why);
            break;
        }
        rs_worker_log(
            "warning changelog_watermarks partition=%d error=\"%s\" low=%lld high=%lld "
            "retrying=true",
            (int)bad, why, (long long)bl, (long long)bh);
        have_prev = 0;
        usleep(200 * 1000);
    }
    rd_kafka_topic_partition_list_destroy(l[0]);
    rd_kafka_topic_partition_list_destroy(l[1]);
    return rc;
}

/* What the store knows of partition n: its changelog position (*has_pos 0
 * none), an interrupted restore (R2), a local plan, local state. 0 or -1
 * (failure recorded). */
typedef struct local_part {
    int32_t n;
    int64_t pos;
    int has_pos, intr, local_plan, has_local;
} local_part_t;

static int local_part(rs_worker_t *w, int32_t n, local_part_t *lp)
{
    char err[512], key[48];
    void *blob = NULL;
    size_t len = 0, nl = 0;
    int32_t *parts = NULL;

    memset(lp, 0, sizeof *lp);
    lp->n = n;
    lp->pos = -1;
    int rc = rs_changelog_get_pos(w->st, n, &lp->pos, err, sizeof err);
    if (rc < 0) {
        rs_worker_fail(w, "state: changelog position of partition %d: %s", (int)n, err);
        return -1;
    }
    lp->has_pos = rc == 0;
    lp->intr = rs_changelog_restore_interrupted(w->st, n, err, sizeof err);
    if (lp->intr < 0) {
        rs_worker_fail(w, "state: restore marker of partition %d: %s", (int)n, err);
        return -1;
    }
    snprintf(key, sizeof key, "plan/%d", (int)n);
    int r = rs_state_get_meta(w->st, key, &blob, &len, err, sizeof err);
    rs_state_free(blob);
    lp->local_plan = r == 0 && len > 0;
    blob = NULL;
    snprintf(key, sizeof key, "engine/%d", (int)n);
    int r2 = rs_state_get_meta(w->st, key, &blob, &len, err, sizeof err);
    rs_state_free(blob);
    if (r < 0 || r2 < 0 || rs_state_partitions(w->st, &parts, &nl, err, sizeof err) != 0) {
        rs_worker_fail(w, "state: partition %d: %s", (int)n, err);
        return -1;
    }
    /* Engine meta alone is no state: a drop leaves an empty one. Nor is a
     * plan alone: a store that saved the plan of its first batch of n and
     * died before committing it holds only that plan, while other members
     * may have restored it from the changelog, replayed it and gone on.
     * Taking it as "state before the changelog" replayed the plan from
     * nothing and applied the partition's records again in another order:
     * one entry_id with two contents (found by test_chaos). It is restored
     * from offset 0 instead, with local_plan set (rs_changelog_restore). */
    for (size_t i = 0; i < nl; i++)
        if (parts[i] == n)
            lp->has_local = 1;
    rs_state_free(parts);
    return 0;
}

/* Decide partition lp->n's restore from its watermarks lo..hi (R1, R2): 1
 * with *from set when it must be restored, 0 when not (logged), -1 when it
 * cannot be (failure recorded, naming the partition). */
static int restore_decide(rs_worker_t *w, local_part_t *lp, int64_t lo, int64_t hi,
                          int64_t *from)
{
    char err[512];
    int32_t n = lp->n;
    if (lp->intr) /* R2: this store crashed in a restore of n; restore it again */
        rs_worker_log("warning restore partition=%d interrupted=true local=%lld high=%lld "
                      "action=restore_again",
                      (int)n, (long long)(lp->has_pos ? lp->pos : -1), (long long)hi);
    if (lp->has_pos && lp->pos >= hi && !lp->intr) {
        rs_worker_log("restore partition=%d needed=false local=%lld high=%lld", (int)n,
                      (long long)lp->pos, (long long)hi);
        return 0;
    }
    if (!lp->has_pos && lp->has_local && lp->intr) {
        /* not expected (every restore write sets changelog/N), but state
         * without a position from an interrupted restore is not trusted */
        if (rs_state_drop_partition(w->st, n, err, sizeof err) != 0) {
            rs_worker_fail(w, "state: drop partition %d: %s", (int)n, err);
            return -1;
        }
        lp->has_local = 0;
    }
    if (!lp->has_pos && lp->has_local) {
        /* State written before this store knew the changelog: it is the
         * truth for this store (an upgrade); the changelog is not read. */
        rs_worker_log(
            "restore partition=%d needed=false reason=\"local state without a changelog "
            "position\" high=%lld",
            (int)n, (long long)hi);
        return 0;
    }
    /* R1: a restore starts where the changelog is complete for this store:
     * from offset 0 without local state, from the local position otherwise.
     * A changelog that no longer holds that offset (low watermark past it:
     * retention or DeleteRecords trimmed it, the mock broker's size limit)
     * would rebuild incomplete state silently, so the worker fails instead. */
    if ((!lp->has_pos && lo > 0) || (lp->has_pos && lp->pos < lo)) {
        char need[96];
        if (!lp->has_pos)
            snprintf(need, sizeof need,
                     "the local state is missing (a restore needs offset 0)");
        else
            snprintf(need, sizeof need, "the local state is at offset %lld",
                     (long long)lp->pos);
        rs_metrics_inc(w->m.restore_refused);
        rs_worker_log("error restore_refused partition=%d low=%lld high=%lld local=%s", (int)n,
                      (long long)lo, (long long)hi, lp->has_pos ? "behind" : "missing");
        rs_worker_fail(w,
                       "changelog %s[%d] starts at offset %lld but %s: the changelog was "
                       "trimmed or is not compacted (cleanup.policy must be compact, with no "
                       "retention); restore the state directory from a checkpoint or replay "
                       "the inputs into a new changelog",
                       w->cfg->changelog_topic, (int)n, (long long)lo, need);
        return -1;
    }
    *from = lp->has_pos ? lp->pos : 0;
    if (*from >= hi && !lp->intr) {
        rs_worker_log("restore partition=%d needed=false local=%s low=%lld high=%lld", (int)n,
                      lp->has_pos ? "behind" : "missing", (long long)lo, (long long)hi);
        return 0;
    }
    if (*from >= hi) {
        /* an interrupted restore with nothing to read: the marker is
         * cleared by the finish, nothing else changes */
        return 2;
    }
    return 1;
}

/* Restore every partition of `parts` that needs it, all at once: the
 * local state of each, the watermarks of all in one round, the decisions
 * (R1, R2), one consumer reading every changelog partition to restore
 * (rs_changelog_restore: one marker commit for all), then one
 * rs_changelog_restore_finish (one flush, the markers cleared). Logs
 * `restore_all`. 0, 1 when the worker was asked to stop before the
 * watermarks were known (nothing restored, nothing recorded), or -1
 * (failure recorded; partitions restored so far keep their markers, so
 * they are restored again next time). */
static int restore_parts(rs_worker_t *w, const int32_t *parts, size_t n)
{
    char err[512];
    local_part_t *lp = calloc(n ? n : 1, sizeof *lp);
    int64_t *lo = calloc(n ? n : 1, sizeof *lo), *hi = calloc(n ? n : 1, sizeof *hi);
    rs_changelog_restore_part_t *todo = calloc(n ? n : 1, sizeof *todo);
    int32_t *done = calloc(n ? n : 1, sizeof *done);
    size_t ntodo = 0, nd = 0;
    int64_t total = 0;
    int rc = -1;
    uint64_t t0 = rs_worker_now_us();

    if (lp == NULL || lo == NULL || hi == NULL || todo == NULL || done == NULL) {
        rs_worker_fail(w, "out of memory");
        goto out;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (local_part(w, parts[i], &lp[i]) != 0)
            goto out;
    int wm = changelog_watermarks(w, parts, n, lo, hi);
    if (wm != 0) {
        rc = wm;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t from = 0;
        int d = restore_decide(w, &lp[i], lo[i], hi[i], &from);
        if (d < 0)
            goto out;
        if (d == 2) { /* R2 with nothing left to read: the marker goes */
            rs_worker_log("restored partition=%d records=0 ms=0", (int)parts[i]);
            done[nd++] = parts[i];
        }
        if (d != 1)
            continue;
        todo[ntodo] =
            (rs_changelog_restore_part_t){parts[i], from, hi[i], lp[i].local_plan, 0, 0};
        ntodo++;
        total += hi[i] - from;
        rs_worker_log("restore partition=%d from=%lld high=%lld local=%s", (int)parts[i],
                      (long long)from, (long long)hi[i], lp[i].has_pos ? "behind" : "missing");
    }
    if (ntodo > 0) {
        rs_metrics_set_reason(w->metrics, "restoring partition %d (%zu partitions)",
                              (int)todo[0].partition, ntodo);
        /* test hook: the restore has started (logged) and takes this long,
         * so a test that saw the line finds the worker restoring */
        rs_worker_test_restore_delay(w);
        rs_changelog_restore_args_t a = {0};
        char gid[512];
        int64_t records = 0;
        /* assign() needs a group id; this one is never joined nor committed to. */
        snprintf(gid, sizeof gid, "%s.changelog-restore", w->cfg->group_id);
        const rs_config_kafka_t settings[] = {{"group.id", gid}, {NULL, NULL}};
        a.conf = rs_worker_kafka_conf(w, RS_KAFKA_ROLE_CONSUMER, settings, err, sizeof err);
        if (a.conf == NULL) {
            rs_worker_fail(w, "changelog restore: %s", err);
            goto out;
        }
        a.topic = w->cfg->changelog_topic;
        a.parts = todo;
        a.nparts = ntodo;
        for (int t = 0; t < N_IN; t++)
            a.input_topics[t] = w->cfg->topics[t];
        a.timeout_ms = RESTORE_TIMEOUT_MS;
        a.progress = on_restore_progress;
        a.defer_finish = 1;
        a.opaque = w;
        rs_metrics_set(w->m.restore_remaining, total);
        if (rs_changelog_restore(w->st, &a, &records, err, sizeof err) != 0) {
            rs_worker_fail(w, "%s", err);
            goto out;
        }
        rs_metrics_add(w->m.restored, records);
        for (size_t i = 0; i < ntodo; i++) {
            rs_worker_log("restored partition=%d records=%lld ms=%llu", (int)todo[i].partition,
                          (long long)todo[i].records, (unsigned long long)todo[i].ms);
            done[nd++] = todo[i].partition;
        }
        total = records;
    }
    if (rs_changelog_restore_finish(w->st, done, nd, err, sizeof err) != 0) {
        rs_worker_fail(w, "state: finishing the restore: %s", err);
        goto out;
    }
    if (ntodo > 0)
        rs_worker_log("restore_all partitions=%zu records=%lld ms=%llu consumers=1", ntodo,
                      (long long)total, (unsigned long long)((rs_worker_now_us() - t0) / 1000));
    rc = 0;
out:
    free(lp);
    free(lo);
    free(hi);
    free(todo);
    free(done);
    return rc;
}

/* Partition n, RESTORING and restored (restore_parts), becomes this
 * worker's: its engine is opened over the store and its pending plan
 * taken. 0 or -1 (failure recorded; the partition released). */
static int load_part(rs_worker_t *w, int32_t n)
{
    part_t *p = &w->parts[n];
    char err[512];
    uint64_t t0 = rs_worker_now_us();
    const rs_plan_item_t *plan;
    size_t nplan = 0;

    if (p->state != RS_PART_RESTORING)
        return 0; /* another topic of partition number n loaded it */
    rs_metrics_set_reason(w->metrics, "loading partition %d", (int)n);
    if (rs_pstate_open(&p->ps, w->st, n, w->has_policy ? &w->policy : NULL,
                       (size_t)w->cfg->state_cache_mb * 1024u * 1024u /
                           (size_t)(w->nparts > 0 ? w->nparts : 1),
                       err, sizeof err) != 0) {
        p->ps = NULL;
        rs_worker_fail(w, "state: load partition %d: %s", (int)n, err);
        goto fail;
    }
    rs_engine_set_sink(rs_pstate_engine(p->ps), rs_worker_on_entry, w);
    rs_worker_set_close_hooks(w, p);
    plan = rs_pstate_pending_plan(p->ps, &nplan);
    if (plan != NULL && nplan > 0) {
        p->plan = malloc(nplan * sizeof *p->plan);
        if (p->plan == NULL) {
            rs_worker_fail(w, "out of memory");
            goto fail;
        }
        memcpy(p->plan, plan, nplan * sizeof *p->plan);
        p->nplan = nplan;
    }
    if (rs_worker_part_set_state(w, n, p->plan != NULL ? RS_PART_REPLAYING : RS_PART_ACTIVE) !=
        0)
        goto fail;
    rs_worker_log("partition_loaded partition=%d contracts=%zu pending_plan=%zu ms=%llu",
                  (int)n, rs_pstate_loaded_contracts(p->ps), nplan,
                  (unsigned long long)((rs_worker_now_us() - t0) / 1000));
    return 0;
fail:
    /* the worker has failed: nothing of the partition is kept */
    rs_worker_release_part(p);
    rs_worker_part_set_state(w, n, RS_PART_UNASSIGNED);
    return -1;
}

static void on_assign(rs_worker_t *w, rd_kafka_topic_partition_list_t *parts)
{
    char err[512];
    /* JOINING: the first assignment. STOPPING (the consumer's close does not
     * assign) or FAILED: handled without a state change. */
    int first = w->state == RS_WORKER_JOINING;

    if ((first || w->state == RS_WORKER_RUNNING) &&
        rs_worker_set_state(w, RS_WORKER_RESTORING) != 0)
        return;
    rs_metrics_set_ready(w->metrics, 0);
    /* the partition numbers new to this worker: RESTORING, restored together */
    int32_t *fresh = malloc(((size_t)parts->cnt + 1) * sizeof *fresh);
    size_t nfresh = 0;
    if (fresh == NULL)
        rs_worker_fail(w, "out of memory");
    for (int i = 0; fresh != NULL && i < parts->cnt && !rs_worker_failed(w); i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int32_t n = tp->partition;
        if (rs_worker_topic_index(w, tp->topic) < 0 || n < 0 || n >= w->nparts) {
            rs_worker_fail(
                w,
                "assigned %s[%d], which this worker does not know (did the partition "
                "count change?)",
                tp->topic, (int)n);
            break;
        }
        if (rs_worker_owns(w, n) || w->parts[n].state == RS_PART_RESTORING)
            continue;
        if (rs_worker_part_set_state(w, n, RS_PART_RESTORING) != 0)
            break;
        w->parts[n].revoked_at = 0;
        w->parts[n].cl_next = -1;
        fresh[nfresh++] = n;
    }
    int restored = rs_worker_failed(w) ? -1 : restore_parts(w, fresh, nfresh);
    if (restored != 0) /* failed, or stopping: nothing of the new partitions is kept */
        for (size_t i = 0; i < nfresh; i++) {
            rs_worker_release_part(&w->parts[fresh[i]]);
            rs_worker_part_set_state(w, fresh[i], RS_PART_UNASSIGNED);
        }
    free(fresh);
    if (restored > 0) {
        /* Asked to stop while the assignment waited: the new partitions
         * are not taken (not assigned to the consumer, nothing loaded or
         * applied); the loop stops, and leaving the group hands them on. */
        rs_worker_log("assignment_given_up topic_partitions=%d reason=stopping", parts->cnt);
        w->between_assignments = 0;
        if (w->state == RS_WORKER_RESTORING)
            rs_worker_set_state(w, RS_WORKER_RUNNING);
        return;
    }
    for (int i = 0; i < parts->cnt && !rs_worker_failed(w); i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int t = rs_worker_topic_index(w, tp->topic);
        int64_t off = 0;
        if (load_part(w, tp->partition) != 0)
            break;
        int rc =
            rs_state_get_input_offset(w->st, tp->topic, tp->partition, &off, err, sizeof err);
        if (rc < 0) {
            rs_worker_fail(w, "state: input offset of %s[%d]: %s", tp->topic,
                           (int)tp->partition, err);
            break;
        }
        /* Nothing stored: offset 0, not RD_KAFKA_OFFSET_BEGINNING. A
         * logical offset is resolved by a ListOffsets request first, and on
         * the embedded broker that request, sent while the fetchers'
         * connections come up, was retried ~500 ms later in most runs (the
         * first record came 500-600 ms after the assignment instead of
         * 7-28 ms). Where the topic's start was deleted, offset 0 is out of
         * range and auto.offset.reset=earliest moves it to the low
         * watermark: the same position (test_bounded). */
        tp->offset = rc == 0 ? off : 0;
        w->parts[tp->partition].tp_assigned[t] = 1;
        w->parts[tp->partition].eof[t] = 0;
    }
    if (rs_worker_failed(w)) {
        for (int32_t n = 0; n < w->nparts; n++) /* restored, never loaded */
            if (w->parts[n].state == RS_PART_RESTORING) {
                rs_worker_release_part(&w->parts[n]);
                rs_worker_part_set_state(w, n, RS_PART_UNASSIGNED);
            }
        rd_kafka_assign(w->consumer, NULL);
        return;
    }
    rs_worker_flow_assigning(w, parts);
    rd_kafka_resp_err_t e = rd_kafka_assign(w->consumer, parts);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rs_worker_fail(w, "assign: %s", rd_kafka_err2str(e));
        return;
    }
    w->n_assigned = (size_t)parts->cnt;
    if (first) {
        /* Local state of partitions this worker did not get: start their grace. */
        int32_t *lp = NULL;
        size_t nl = 0;
        if (rs_state_partitions(w->st, &lp, &nl, err, sizeof err) == 0)
            for (size_t i = 0; i < nl; i++) {
                if (lp[i] < 0 || lp[i] >= w->nparts)
                    continue;
                part_t *p = &w->parts[lp[i]];
                if (p->state == RS_PART_UNASSIGNED)
                    rs_worker_part_set_state(w, lp[i], RS_PART_REVOKED);
                if (p->state == RS_PART_REVOKED)
                    p->revoked_at = rs_worker_now_us();
            }
        rs_state_free(lp);
    }
    char list[1024] = "";
    for (int32_t n = 0; n < w->nparts; n++)
        if (rs_worker_owns(w, n)) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%d", used ? "," : "", (int)n);
        }
    rs_worker_log("assigned topic_partitions=%d partitions=%s", parts->cnt,
                  list[0] ? list : "none");
    {
        int64_t owned = 0;
        for (int32_t n = 0; n < w->nparts; n++)
            owned += rs_worker_owns(w, n);
        rs_metrics_set(w->m.owned, owned);
        rs_metrics_inc(w->m.assignments);
    }
    w->recommit = 1;                   /* the previous owner's last commit may have failed */
    w->loop_mark = rs_worker_now_us(); /* a restore is not a stall */
    w->between_assignments = 0;
    if (w->state == RS_WORKER_RESTORING && rs_worker_set_state(w, RS_WORKER_RUNNING) != 0)
        return;
    rs_metrics_set_ready(w->metrics, 1);
}

/* Drop the local state of partitions revoked more than state.revoked.grace.ms
 * ago and not assigned again: contracts, input and contract offsets (one
 * atomic rs_state_drop_partition), then the plan and the changelog position,
 * so a later assignment restores the partition from the changelog. */
void rs_worker_drop_expired(rs_worker_t *w)
{
    char err[512], key[48];
    uint64_t now = rs_worker_now_us();

    for (int32_t n = 0; n < w->nparts && !rs_worker_failed(w); n++) {
        part_t *p = &w->parts[n];
        if (p->state != RS_PART_REVOKED ||
            now - p->revoked_at < (uint64_t)w->cfg->revoked_grace_ms * 1000u)
            continue;
        p->revoked_at = 0;
        if (rs_worker_part_set_state(w, n, RS_PART_UNASSIGNED) != 0)
            return;
        if (rs_state_drop_partition(w->st, n, err, sizeof err) != 0) {
            rs_worker_fail(w, "state: drop partition %d: %s", (int)n, err);
            return;
        }
        /* The engine meta becomes an empty engine's (rs_state has no meta
         * deletion); a restore rewrites it. */
        rs_state_batch_t *b = NULL;
        rs_engine_t *fresh = NULL;
        void *meta = NULL;
        size_t metalen = 0;
        char ekey[48];
        snprintf(key, sizeof key, "plan/%d", (int)n);
        snprintf(ekey, sizeof ekey, "engine/%d", (int)n);
        int rc =
            rs_engine_new(&fresh, w->has_policy ? &w->policy : NULL, err, sizeof err) != 0 ||
            rs_engine_export_meta(fresh, &meta, &metalen, err, sizeof err) != 0 ||
            rs_state_batch_new(&b, err, sizeof err) != 0 ||
            rs_state_batch_put_meta(b, key, "", 0) != 0 ||
            rs_state_batch_put_meta(b, ekey, meta, metalen) != 0 ||
            rs_changelog_stage_clear_pos(b, n) != 0 ||
            rs_state_batch_commit(w->st, b, err, sizeof err) != 0;
        rs_state_batch_destroy(b);
        rs_engine_destroy(fresh);
        free(meta);
        if (rc) {
            rs_worker_fail(w, "state: drop partition %d: %s", (int)n, err);
            return;
        }
        rs_metrics_inc(w->m.dropped);
        rs_worker_log("state_dropped partition=%d reason=revoked grace_ms=%ld", (int)n,
                      w->cfg->revoked_grace_ms);
    }
}

static void on_revoke(rs_worker_t *w, rd_kafka_topic_partition_list_t *parts)
{
    /* Revoked: finish and commit the batch in flight first (not after a
     * failure). Lost (the group moved on without us): another member may
     * already own the partitions, so discard it, commit nothing; a later
     * owner replays from the store or the changelog. */
    int lost = rd_kafka_assignment_lost(w->consumer);
    if (lost) {
        rs_worker_log("assignment_lost topic_partitions=%d action=discard_batch queued=%zu",
                      parts->cnt, w->queued);
        rs_metrics_inc(w->m.lost);
    } else if (!rs_worker_failed(w) && w->state != RS_WORKER_CLOSING)
        rs_worker_process_batch(w);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t n = parts->elems[i].partition;
        if (n >= 0 && n < w->nparts && rs_worker_owns(w, n)) {
            rs_worker_unpark(w, n);
            rs_worker_release_part(&w->parts[n]);
            rs_worker_part_set_state(w, n, RS_PART_REVOKED);
            w->parts[n].revoked_at = rs_worker_now_us();
        }
    }
    rs_worker_recount_queued(w);
    rd_kafka_assign(w->consumer, NULL);
    w->n_assigned = 0;
    rs_metrics_set(w->m.owned, 0);
    w->hold_until = 0; /* the group has spoken */
    w->loop_mark = rs_worker_now_us();
    /* exit.when.idle: owning nothing now is not being done; the group's
     * next generation assigns again (maybe nothing) */
    w->between_assignments = 1;
    rs_worker_log("revoked topic_partitions=%d", parts->cnt);
}

void rs_worker_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rs_worker_t *w = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(w, parts);
    else
        on_revoke(w, parts);
}

void rs_worker_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    rs_worker_t *w = opaque;

    (void)rk;
    (void)offsets;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    w->recommit = 1;
    /* Expected while the group rebalances; anything else is worth a warning. */
    if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
        rs_worker_log(
            "kafka_offset_commit deferred=rebalance_in_progress action=retry_from_store");
    else
        rs_worker_log("warning kafka_offset_commit error=\"%s\" action=retry_from_store "
                      "hint=\"informational only: the state store holds the offsets\"",
                      rd_kafka_err2str(err));
}

/* Kafka's committed offsets are informational (lag monitoring, `revstream
 * report`); the state store is the truth. After an assignment, and after a
 * failed commit (typically a rebalance in progress), the store's next
 * offsets of every assigned topic-partition are committed again, so the
 * group's lag does not stay stale when the input stops. The store is
 * committed before Kafka in process_batch, so these offsets are never
 * behind a commit already sent. Asynchronous; failures come back through
 * on_commit. */
void rs_worker_commit_store_offsets(rs_worker_t *w)
{
    char err[512];
    rd_kafka_topic_partition_list_t *l = NULL;

    w->recommit = 0;
    w->recommit_after = rs_worker_now_us() + 1000000u;
    if (w->txn || rs_worker_failed(w) || w->n_assigned == 0)
        return;
    for (int32_t n = 0; n < w->nparts; n++)
        for (int t = 0; t < N_IN; t++) {
            int64_t off = 0;
            if (!rs_worker_owns(w, n) || !w->parts[n].tp_assigned[t])
                continue;
            int rc =
                rs_state_get_input_offset(w->st, w->cfg->topics[t], n, &off, err, sizeof err);
            if (rc != 0)
                continue; /* nothing consumed yet (1), or a read error the batch reports */
            if (l == NULL)
                l = rd_kafka_topic_partition_list_new(N_IN * 4);
            rd_kafka_topic_partition_list_add(l, w->cfg->topics[t], n)->offset = off;
        }
    if (l != NULL) {
        rd_kafka_commit(w->consumer, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
    }
}
