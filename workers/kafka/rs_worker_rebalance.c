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
 *   - The partitions new to an assignment are RESTORING together: restored
 *     on up to RESTORE_THREADS threads (restore_part runs on them: it
 *     records failures through restore_fail, under restore_mu, and touches
 *     no part_t), made durable by one rs_changelog_restore_finish (one
 *     flush, then their markers cleared), then loaded one by one on the
 *     poll thread. A failure anywhere releases them all (UNASSIGNED).
 *
 * Ownership: the restore consumer's conf is handed to rs_changelog_restore
 * (which takes it); partition lists belong to librdkafka.
 */
#include "rs_worker_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_changelog.h"

/* Restores of one assignment run on up to this many threads (one
 * partition each at a time, one shared store). */
#define RESTORE_THREADS 4

/* rs_worker_fail from a restore thread (the first failure wins). */
static pthread_mutex_t restore_mu = PTHREAD_MUTEX_INITIALIZER;

static void restore_fail(rs_worker_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void restore_fail(rs_worker_t *w, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&restore_mu);
    rs_worker_fail(w, "%s", msg);
    pthread_mutex_unlock(&restore_mu);
}

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
    rs_worker_log("restore partition=%d done=%lld remaining=%lld rate=%lld/s%s", (int)n,
                  (long long)done, (long long)remaining, (long long)rate,
                  finished ? " finished=true" : "");
    rs_metrics_set(w->m.restore_remaining, finished ? 0 : remaining);
    rs_metrics_heartbeat(w->metrics); /* a restore is progress (/healthz) */
}

/* Changelog partition n's watermarks: two consecutive answers of
 * rd_kafka_query_watermark_offsets that agree. librdkafka 2.0.2 does not
 * retry this call when leadership moves (NOT_LEADER), and right after a
 * failed call it has answered low = high (seen in the SIGKILL test with
 * ListOffsets errors: low 34, high 34 for a partition holding records
 * 0..33), which would skip a restore that is needed. Retried for up to
 * METADATA_DEADLINE_MS. Returns 0, or -1 (failure recorded). */
static int changelog_watermarks(rs_worker_t *w, int32_t n, int64_t *lo, int64_t *hi)
{
    uint64_t deadline = rs_worker_now_us() + (uint64_t)METADATA_DEADLINE_MS * 1000u;
    int64_t plo = -1, phi = -1;

    for (;;) {
        int64_t l = -1, h = -1;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            w->producer, w->cfg->changelog_topic, n, &l, &h, 10000);
        const char *why = kerr != RD_KAFKA_RESP_ERR_NO_ERROR   ? rd_kafka_err2str(kerr)
                          : l < 0 || h < l                     ? "invalid answer"
                          : plo >= 0 && (l != plo || h != phi) ? "two answers differ"
                                                               : NULL;
        if (why == NULL && l == plo && h == phi) {
            *lo = l;
            *hi = h;
            return 0;
        }
        if (why == NULL) { /* a first answer: ask again */
            plo = l;
            phi = h;
            continue;
        }
        if (rs_worker_now_us() >= deadline || w->stop) {
            restore_fail(w, "changelog %s[%d]: watermarks: %s", w->cfg->changelog_topic, (int)n,
                         why);
            return -1;
        }
        rs_worker_log(
            "warning changelog_watermarks partition=%d error=\"%s\" low=%lld high=%lld "
            "retrying=true",
            (int)n, why, (long long)l, (long long)h);
        plo = phi = -1;
        usleep(200 * 1000);
    }
}

/* Bring partition n's local state up to its changelog when it is missing or
 * behind (another worker advanced it). *restored is set when it restored
 * (the caller then calls rs_changelog_restore_finish for it: the writes
 * are unlogged and the marker set until then); *records counts the
 * records read. Runs on a restore thread (on_assign). Returns 0 or -1
 * (failure recorded). */
static int restore_part(rs_worker_t *w, int32_t n, int *restored, int64_t *nrecords)
{
    char err[512];
    int64_t pos = -1, lo = 0, hi = 0, records = 0;
    uint64_t t0 = rs_worker_now_us();

    int rc = rs_changelog_get_pos(w->st, n, &pos, err, sizeof err);
    if (rc < 0) {
        restore_fail(w, "state: changelog position of partition %d: %s", (int)n, err);
        return -1;
    }
    int intr = rs_changelog_restore_interrupted(w->st, n, err, sizeof err);
    if (intr < 0) {
        restore_fail(w, "state: restore marker of partition %d: %s", (int)n, err);
        return -1;
    }
    if (changelog_watermarks(w, n, &lo, &hi) != 0)
        return -1;
    if (intr) /* R2: this store crashed in a restore of n; restore it again */
        rs_worker_log("warning restore partition=%d interrupted=true local=%lld high=%lld "
                      "action=restore_again",
                      (int)n, (long long)(rc == 0 ? pos : -1), (long long)hi);
    if (rc == 0 && pos >= hi && !intr) {
        rs_worker_log("restore partition=%d needed=false local=%lld high=%lld", (int)n,
                      (long long)pos, (long long)hi);
        return 0;
    }
    /* Local state and plan of the partition, if any. */
    int has_local = 0, local_plan = 0;
    {
        char key[48];
        void *blob = NULL;
        size_t len = 0;
        int32_t *lp = NULL;
        size_t nl = 0;
        snprintf(key, sizeof key, "plan/%d", (int)n);
        int r = rs_state_get_meta(w->st, key, &blob, &len, err, sizeof err);
        rs_state_free(blob);
        local_plan = r == 0 && len > 0;
        blob = NULL;
        snprintf(key, sizeof key, "engine/%d", (int)n);
        int r2 = rs_state_get_meta(w->st, key, &blob, &len, err, sizeof err);
        rs_state_free(blob);
        if (r < 0 || r2 < 0 || rs_state_partitions(w->st, &lp, &nl, err, sizeof err) != 0) {
            restore_fail(w, "state: partition %d: %s", (int)n, err);
            return -1;
        }
        (void)r2; /* engine meta alone is no state: a drop leaves an empty one */
        /* Nor is a plan alone: a store that saved the plan of its first
         * batch of n and died before committing it holds only that plan,
         * while other members may have restored it from the changelog,
         * replayed it and gone on. Taking it as "state before the
         * changelog" replayed the plan from nothing and applied the
         * partition's records again in another order: one entry_id with
         * two contents (found by test_chaos). It is restored from offset 0
         * instead, with local_plan set (rs_changelog_restore). */
        has_local = 0;
        for (size_t i = 0; i < nl; i++)
            if (lp[i] == n)
                has_local = 1;
        rs_state_free(lp);
    }
    if (rc == 1 && has_local && intr) {
        /* not expected (every restore write sets changelog/N), but state
         * without a position from an interrupted restore is not trusted */
        if (rs_state_drop_partition(w->st, n, err, sizeof err) != 0) {
            restore_fail(w, "state: drop partition %d: %s", (int)n, err);
            return -1;
        }
        has_local = 0;
    }
    if (rc == 1 && has_local) {
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
    if ((rc == 1 && lo > 0) || (rc == 0 && pos < lo)) {
        char need[96];
        if (rc == 1)
            snprintf(need, sizeof need,
                     "the local state is missing (a restore needs offset 0)");
        else
            snprintf(need, sizeof need, "the local state is at offset %lld", (long long)pos);
        rs_metrics_inc(w->m.restore_refused);
        rs_worker_log("error restore_refused partition=%d low=%lld high=%lld local=%s", (int)n,
                      (long long)lo, (long long)hi, rc == 1 ? "missing" : "behind");
        restore_fail(w,
                     "changelog %s[%d] starts at offset %lld but %s: the changelog was "
                     "trimmed or is not compacted (cleanup.policy must be compact, with no "
                     "retention); restore the state directory from a checkpoint or replay "
                     "the inputs into a new changelog",
                     w->cfg->changelog_topic, (int)n, (long long)lo, need);
        return -1;
    }
    int64_t from = rc == 0 ? pos : 0;
    if (from >= hi && !intr) {
        rs_worker_log("restore partition=%d needed=false local=%s low=%lld high=%lld", (int)n,
                      rc == 0 ? "behind" : "missing", (long long)lo, (long long)hi);
        return 0;
    }
    rs_metrics_set_reason(w->metrics, "restoring partition %d", (int)n);
    rs_worker_log("restore partition=%d from=%lld high=%lld local=%s", (int)n, (long long)from,
                  (long long)hi, rc == 0 ? "behind" : "missing");
    /* test hook: the restore has started (logged) and takes this long, so
     * a test that saw the line finds the worker restoring, even when the
     * partitions restore in parallel */
    rs_worker_test_restore_delay(w);
    rs_changelog_restore_args_t a = {0};
    char gid[512];
    /* assign() needs a group id; this one is never joined nor committed to. */
    snprintf(gid, sizeof gid, "%s.changelog-restore", w->cfg->group_id);
    const rs_config_kafka_t settings[] = {{"group.id", gid}, {NULL, NULL}};
    a.conf = rs_worker_kafka_conf(w, settings, err, sizeof err);
    if (a.conf == NULL) {
        restore_fail(w, "changelog restore: %s", err);
        return -1;
    }
    a.topic = w->cfg->changelog_topic;
    a.partition = n;
    a.from = from;
    a.high = hi;
    for (int t = 0; t < N_IN; t++)
        a.input_topics[t] = w->cfg->topics[t];
    a.timeout_ms = RESTORE_TIMEOUT_MS;
    a.progress = on_restore_progress;
    a.local_plan = local_plan;
    a.defer_finish = 1;
    a.opaque = w;
    rs_metrics_set(w->m.restore_remaining, hi > from ? hi - from : 0);
    if (rs_changelog_restore(w->st, &a, &records, err, sizeof err) != 0) {
        restore_fail(w, "%s", err);
        return -1;
    }
    rs_metrics_add(w->m.restored, records);
    rs_worker_log("restored partition=%d records=%lld ms=%llu", (int)n, (long long)records,
                  (unsigned long long)((rs_worker_now_us() - t0) / 1000));
    *restored = 1;
    *nrecords = records;
    return 0;
}

/* The restores of one assignment: partitions taken in turn by
 * RESTORE_THREADS threads. */
typedef struct restore_set {
    rs_worker_t *w;
    const int32_t *parts;
    size_t n, next;
    int *restored;
    int64_t *records;
} restore_set_t;

static void *restore_thread(void *arg)
{
    restore_set_t *rs = arg;
    for (;;) {
        pthread_mutex_lock(&restore_mu);
        size_t i = rs->next++;
        int stop = i >= rs->n || rs_worker_failed(rs->w);
        pthread_mutex_unlock(&restore_mu);
        if (stop || restore_part(rs->w, rs->parts[i], &rs->restored[i], &rs->records[i]) != 0)
            return NULL;
    }
}

/* Restore every partition of `parts` that needs it (RESTORE_THREADS at a
 * time), then make them durable together: one flush, the markers cleared
 * (rs_changelog_restore_finish). Logs `restore_all`. 0 or -1 (failure
 * recorded; partitions restored so far keep their markers, so they are
 * restored again next time). */
static int restore_parts(rs_worker_t *w, const int32_t *parts, size_t n)
{
    char err[512];
    int *restored = calloc(n ? n : 1, sizeof *restored);
    int64_t *records = calloc(n ? n : 1, sizeof *records);
    int32_t *done = calloc(n ? n : 1, sizeof *done);
    restore_set_t rs = {w, parts, n, 0, restored, records};
    pthread_t th[RESTORE_THREADS];
    int nth = 0, rc = -1;
    uint64_t t0 = rs_worker_now_us();

    if (restored == NULL || records == NULL || done == NULL) {
        rs_worker_fail(w, "out of memory");
        goto out;
    }
    for (int i = 0; i + 1 < RESTORE_THREADS && (size_t)i + 1 < n; i++) {
        if (pthread_create(&th[nth], NULL, restore_thread, &rs) != 0)
            break; /* fewer threads: this one works too */
        nth++;
    }
    restore_thread(&rs);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    if (rs_worker_failed(w))
        goto out;
    size_t nd = 0;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (restored[i]) {
            done[nd++] = parts[i];
            total += records[i];
        }
    if (rs_changelog_restore_finish(w->st, done, nd, err, sizeof err) != 0) {
        rs_worker_fail(w, "state: finishing the restore: %s", err);
        goto out;
    }
    if (nd > 0)
        rs_worker_log("restore_all partitions=%zu records=%lld ms=%llu threads=%d", nd,
                      (long long)total, (unsigned long long)((rs_worker_now_us() - t0) / 1000),
                      nth + 1);
    rc = 0;
out:
    free(restored);
    free(records);
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
    if (!rs_worker_failed(w))
        restore_parts(w, fresh, nfresh);
    if (rs_worker_failed(w)) /* nothing of the new partitions is kept */
        for (size_t i = 0; i < nfresh; i++) {
            rs_worker_release_part(&w->parts[fresh[i]]);
            rs_worker_part_set_state(w, fresh[i], RS_PART_UNASSIGNED);
        }
    free(fresh);
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
        tp->offset = rc == 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
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
