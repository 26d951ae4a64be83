/*
 * rs_worker_metrics.c — what the worker feeds rs_metrics: the families it
 * registers, librdkafka's statistics (consumer lag, broker states), the
 * per-record counts by topic and event type, event-time freshness, batch
 * phase latencies, RocksDB figures, recognized and deferred totals per
 * currency, and the health the endpoints report (/healthz: the loop's
 * heartbeat; /readyz: running, assigned, cluster reachable).
 *
 * The loop calls, on its own thread only:
 *   rs_worker_metrics_tick()   every iteration (heartbeat; every 250 ms the
 *                              readiness and freshness; every 5 s RocksDB
 *                              and the currency totals)
 *   rs_worker_metrics_event()  once per record a sub-batch handles
 *   rs_worker_metrics_batch()  once per committed batch
 *   rs_worker_on_stats()       librdkafka's stats_cb (served by the
 *                              consumer's poll, so on the loop's thread)
 * and the error callback rs_worker_metrics_cluster_error() (also served by
 * a poll). The HTTP server thread only reads the registry.
 *
 * Invariants:
 *   - No contract, customer or event id is ever a label: labels are topic
 *     names, partition numbers, event type names, outcomes, currencies,
 *     batch phases and build facts, all bounded sets.
 *   - Money is summed in int64 minor units (overflow checked: a total that
 *     would overflow is unset and logged once) and rendered as an exact
 *     decimal with the currency's exponent (rs_metrics_set_decimal); no
 *     floating point touches an amount.
 *   - A per-partition series (lag, freshness) is set only while the
 *     partition is this worker's and unset otherwise, so a revoked
 *     partition's last figure never lingers.
 *   - Lag is the partition's end offset from the statistics (ls_offset,
 *     else hi_offset) minus the next offset in the state store (the source
 *     of truth; Kafka's committed offsets are informational and, with
 *     exactly_once, not what librdkafka's own consumer_lag follows), never
 *     below 0.
 *
 * Ownership: the registry owns every series; wm_part_t arrays are owned by
 * the worker (freed by rs_worker_metrics_free). The test hooks' path is
 * borrowed from the caller (cmd_worker: the environment).
 */
#include "rs_worker_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rs_err.h"
#include "rs_log.h"

#define SLOW_TICK_MS 5000
#define TICK_MS 250

static const char *const outcome_names[RS_WM__OUTCOMES] = {"applied", "waiting", "duplicate",
                                                           "rejected", "skipped"};
static const char *const phase_names[5] = {"plan", "apply", "deliver", "changelog", "commit"};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* set-up                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct mdef {
    rs_metrics_series_t **s;
    const char *name, *help;
    int type; /* 0 counter, 1 gauge, 2 histogram */
} mdef_t;

static int register_defs(rs_worker_t *w, const mdef_t *defs, size_t n, char *errstr,
                         size_t errlen)
{
    char err[512];

    for (size_t i = 0; i < n; i++) {
        int rc = defs[i].type == 0 ? rs_metrics_counter(w->metrics, defs[i].s, defs[i].name,
                                                        defs[i].help, NULL, 0, err, sizeof err)
                 : defs[i].type == 1
                     ? rs_metrics_gauge(w->metrics, defs[i].s, defs[i].name, defs[i].help, NULL,
                                        0, err, sizeof err)
                     : rs_metrics_histogram(w->metrics, defs[i].s, defs[i].name, defs[i].help,
                                            NULL, 0, NULL, 0, err, sizeof err);
        if (rc != 0) {
            rs_errorf(errstr, errlen, "metrics: %s", err);
            return -1;
        }
    }
    return 0;
}

/* A labelled series; failures are programming errors (names are fixed):
 * logged once, and NULL (every update ignores NULL). */
static rs_metrics_series_t *labelled(rs_worker_t *w, int type, const char *name,
                                     const char *help, const rs_metrics_label_t *l, size_t nl)
{
    rs_metrics_series_t *s = NULL;
    char err[512];
    int rc = type == 0 ? rs_metrics_counter(w->metrics, &s, name, help, l, nl, err, sizeof err)
             : type == 1 ? rs_metrics_gauge(w->metrics, &s, name, help, l, nl, err, sizeof err)
                         : rs_metrics_histogram(w->metrics, &s, name, help, l, nl, NULL, 0, err,
                                                sizeof err);
    if (rc != 0) {
        char qb[600];
        rs_worker_log("warning metrics_series error=%s", rs_worker_quote(qb, sizeof qb, err));
        return NULL;
    }
    return s;
}

int rs_worker_metrics_setup(rs_worker_t *w, char *errstr, size_t errlen)
{
    char err[512];
    const mdef_t defs[] = {
        {&w->m.applied, "revstream_events_applied_total",
         "Input events applied by an engine (a waiting event when it applies).", 0},
        {&w->m.duplicates, "revstream_duplicates_total",
         "Input events ignored as duplicates (same event_id and content).", 0},
        {&w->m.skipped, "revstream_skipped_total",
         "Input records skipped: offset already applied to the contract.", 0},
        {&w->m.rejected, "revstream_rejected_total",
         "Input events refused by the codec or the engine.", 0},
        {&w->m.dlq, "revstream_dlq_total", "Dead letters produced.", 0},
        {&w->m.dead_letters, "revstream_dead_letters_total",
         "Dead letters produced (the same count as revstream_dlq_total).", 0},
        {&w->m.entries, "revstream_entries_produced_total", "Journal entries produced.", 0},
        {&w->m.balances, "revstream_balances_produced_total", "Balance snapshots produced.", 0},
        {&w->m.records, "revstream_input_records_total",
         "Input records taken through committed batches.", 0},
        {&w->m.batches, "revstream_batches_total", "Batches committed.", 0},
        {&w->m.pending, "revstream_pending_events",
         "Events waiting for their contract or invoice.", 1},
        {&w->m.batch_seconds, "revstream_batch_seconds",
         "Time to process, deliver and commit one batch.", 2},
        {&w->m.commit_seconds, "revstream_commit_seconds",
         "Time from the end of a batch's apply step to its state commit (delivery rounds, "
         "transaction, store write).",
         2},
        {&w->m.restore_remaining, "revstream_restore_remaining_records",
         "Changelog records still to read by the restore in progress.", 1},
        {&w->m.restored, "revstream_restored_records_total",
         "Changelog records read by restores.", 0},
        {&w->m.restore_refused, "revstream_restore_refused_total",
         "Restores refused because the changelog no longer starts where the local state "
         "needs it to (trimmed or not compacted); the worker fails.",
         0},
        {&w->m.dropped, "revstream_state_dropped_partitions_total",
         "Revoked partitions whose local state was dropped after the grace period.", 0},
        {&w->m.assignments, "revstream_assignments_total",
         "Partition assignments received (one per rebalance that gave this worker any).", 0},
        {&w->m.lost, "revstream_assignments_lost_total",
         "Assignments lost (the group moved on without this worker); their batch was "
         "discarded.",
         0},
        {&w->m.owned, "revstream_assigned_partitions",
         "Input partition numbers this worker owns now.", 1},
        {&w->m.stalls, "revstream_stalls_total",
         "Times the process was found frozen for over half the session timeout (batches "
         "held until the group answered).",
         0},
        {&w->m.parked, "revstream_partitions_parked",
         "Input partitions parked: a record of theirs would exceed the producer's "
         "message.max.bytes; nothing is committed for them (see the partition_parked log).",
         1},
        {&w->m.ready, "revstream_ready", "1 when /readyz answers 200, else 0.", 1},
        {&w->m.cluster_up, "revstream_kafka_cluster_up",
         "1 while a broker of the cluster is up (librdkafka statistics), else 0.", 1},
        {&w->m.stats_errors, "revstream_kafka_stats_errors_total",
         "librdkafka statistics documents that could not be parsed.", 0},
    };

    if (rs_metrics_new(&w->metrics, err, sizeof err) != 0) {
        rs_errorf(errstr, errlen, "metrics: %s", err);
        return -1;
    }
    if (register_defs(w, defs, sizeof defs / sizeof defs[0], errstr, errlen) != 0)
        return -1;
    if (rs_metrics_process_register(w->metrics, NULL, NULL, err, sizeof err) != 0) {
        rs_errorf(errstr, errlen, "metrics: %s", err);
        return -1;
    }
    {
        char kv[32];
        snprintf(kv, sizeof kv, "%s", rd_kafka_version_str());
        const rs_metrics_label_t bl[4] = {{"version", RS_VERSION},
                                          {"commit", RS_GIT_COMMIT},
                                          {"librdkafka", kv},
                                          {"rocksdb", rs_state_rocksdb_version()}};
        rs_metrics_series_t *bi =
            labelled(w, 1, "revstream_build_info",
                     "Build facts as labels; the value is always 1.", bl, 4);
        if (bi == NULL) {
            rs_errorf(errstr, errlen, "metrics: revstream_build_info");
            return -1;
        }
        rs_metrics_set(bi, 1);
    }
    for (int i = 0; i < 5; i++) {
        const rs_metrics_label_t l = {"phase", phase_names[i]};
        w->m.phase[i] = labelled(w, 2, "revstream_batch_phase_seconds",
                                 "Time of each step of a batch: plan, apply, deliver, "
                                 "changelog, commit.",
                                 &l, 1);
    }
    rs_metrics_set(w->m.parked, 0);
    rs_metrics_set(w->m.cluster_up, 1);
    rs_metrics_set_ready(w->metrics, 0);
    rs_metrics_set_reason(w->metrics, "starting");
    /* /healthz judges the loop from its first iteration on (see the tick):
     * start-up (metadata, changelog creation, init_transactions) may take
     * longer than health.stall.ms and is what /readyz "starting" covers. */
    if (w->cfg->metrics_port != 0) {
        if (rs_metrics_server_start(&w->msrv, w->metrics, w->cfg->metrics_bind,
                                    w->cfg->metrics_port, err, sizeof err) != 0) {
            rs_errorf(errstr, errlen, "metrics server on %s:%d: %s", w->cfg->metrics_bind,
                      w->cfg->metrics_port, err);
            return -1;
        }
        rs_worker_log("metrics bind=%s port=%d health_stall_ms=%ld health_lost_ms=%ld",
                      w->cfg->metrics_bind, rs_metrics_server_port(w->msrv),
                      w->cfg->health_stall_ms, w->cfg->health_lost_ms);
    }
    return 0;
}

/* The per-partition arrays, once the partition count is known. 0 or -1. */
static int ensure_parts(rs_worker_t *w)
{
    if (w->m.wp != NULL || w->nparts <= 0)
        return w->m.wp != NULL ? 0 : -1;
    w->m.wp = calloc((size_t)w->nparts, sizeof *w->m.wp);
    return w->m.wp != NULL ? 0 : -1;
}

void rs_worker_metrics_prepare(rs_worker_t *w)
{
    (void)ensure_parts(w);
}

void rs_worker_metrics_free(rs_worker_t *w)
{
    free(w->m.wp);
    w->m.wp = NULL;
    free(w->m.cur);
    w->m.cur = NULL;
    w->m.ncur = 0;
}

void rs_worker_set_parked_gauge(rs_worker_t *w, int64_t parked)
{
    rs_metrics_set(w->m.parked, parked);
}

/* ------------------------------------------------------------------------ */
/* per record                                                               */
/* ------------------------------------------------------------------------ */

rs_wm_outcome_t rs_worker_apply_outcome(int apply_result)
{
    switch ((rs_apply_result_t)apply_result) {
    case RS_APPLY_OK:
        return RS_WM_APPLIED;
    case RS_APPLY_PENDING:
        return RS_WM_WAITING;
    case RS_APPLY_DUPLICATE:
        return RS_WM_DUPLICATE;
    default:
        return RS_WM_REJECTED;
    }
}

void rs_worker_metrics_consumed(rs_worker_t *w, int topic)
{
    if (topic < 0 || topic >= N_IN)
        return;
    if (w->m.consumed[topic] == NULL) {
        const rs_metrics_label_t l = {"topic", w->cfg->topics[topic]};
        w->m.consumed[topic] =
            labelled(w, 0, "revstream_events_consumed_total",
                     "Input records taken from the consumer, by topic.", &l, 1);
    }
    rs_metrics_inc(w->m.consumed[topic]);
}

void rs_worker_metrics_event(rs_worker_t *w, const qitem_t *it, const rs_event_t *ev,
                             rs_wm_outcome_t outcome)
{
    int t = it->topic;
    int type = ev != NULL && (unsigned)ev->type < RS_EV__COUNT ? (int)ev->type : 0;

    if (t < 0 || t >= N_IN || (unsigned)outcome >= RS_WM__OUTCOMES)
        return;
    rs_metrics_series_t *_Atomic *slot = &w->m.ev[t][type][outcome];
    rs_metrics_series_t *s = atomic_load_explicit(slot, memory_order_acquire);
    if (s == NULL) {
        const rs_metrics_label_t l[3] = {
            {"topic", w->cfg->topics[t]},
            {"type",
             type == RS_EV_UNKNOWN ? "unknown" : rs_event_type_name((rs_event_type_t)type)},
            {"outcome", outcome_names[outcome]}};
        pthread_mutex_lock(&w->mu); /* apply lanes: made once */
        s = atomic_load_explicit(slot, memory_order_relaxed);
        if (s == NULL) {
            s = labelled(
                w, 0, "revstream_events_total",
                "Input records handled by a batch, by topic, event type (unknown: not "
                "decodable) and outcome (applied, waiting, duplicate, rejected, skipped).",
                l, 3);
            atomic_store_explicit(slot, s, memory_order_release);
        }
        pthread_mutex_unlock(&w->mu);
    }
    rs_metrics_inc(s);
    if ((outcome == RS_WM_APPLIED || outcome == RS_WM_WAITING) && ev != NULL &&
        ensure_parts(w) == 0) {
        int32_t n = it->m->partition;
        int64_t at = -1;
        if (rs_timestamp_parse_ms(ev->occurred_at, &at) != 0)
            at = it->m->timestamp; /* the producer's stamp */
        if (n >= 0 && n < w->nparts && at > w->m.wp[n].newest_ms)
            w->m.wp[n].newest_ms = at;
    }
}

void rs_worker_metrics_batch(rs_worker_t *w)
{
    for (int i = 0; i < 5; i++)
        rs_metrics_observe(w->m.phase[i], (double)w->phase_us[i] / 1e6);
    rs_metrics_observe(w->m.commit_seconds,
                       (double)(w->phase_us[2] + w->phase_us[3] + w->phase_us[4]) / 1e6);
}

/* ------------------------------------------------------------------------ */
/* librdkafka statistics                                                    */
/* ------------------------------------------------------------------------ */

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* The lag gauge of (topic t, partition n). */
static rs_metrics_series_t *lag_series(rs_worker_t *w, int t, int32_t n)
{
    if (w->m.wp[n].lag[t] == NULL) {
        char pn[16];
        snprintf(pn, sizeof pn, "%d", (int)n);
        const rs_metrics_label_t l[2] = {{"topic", w->cfg->topics[t]}, {"partition", pn}};
        w->m.wp[n].lag[t] = labelled(
            w, 1, "revstream_consumer_lag",
            "Records of the input partition not yet committed to the state store: the end "
            "offset in librdkafka's statistics minus the store's next offset.",
            l, 2);
    }
    return w->m.wp[n].lag[t];
}

/* Broker states: the cluster is up while any broker (nodeid >= 0) is UP. */
static void stats_brokers(rs_worker_t *w, json_t *brokers)
{
    const char *name;
    json_t *b;
    int known = 0, up = 0;

    json_object_foreach(brokers, name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        if (jint(b, "nodeid") < 0 || state == NULL)
            continue;
        known++;
        up += strcmp(state, "UP") == 0;
    }
    if (known == 0)
        return;
    if (up > 0)
        w->m.down_since = 0;
    else if (w->m.down_since == 0)
        w->m.down_since = rs_worker_now_us();
    rs_metrics_set(w->m.cluster_up, up > 0);
}

int rs_worker_on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    rs_worker_t *w = opaque;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    char err[512];

    (void)rk;
    if (root == NULL) {
        rs_metrics_inc(w->m.stats_errors);
        return 0; /* librdkafka frees json */
    }
    stats_brokers(w, json_object_get(root, "brokers"));
    json_t *topics = json_object_get(root, "topics");
    if (ensure_parts(w) != 0 || w->parts == NULL)
        goto out;
    for (int t = 0; t < N_IN; t++) {
        json_t *parts =
            json_object_get(json_object_get(topics, w->cfg->topics[t]), "partitions");
        for (int32_t n = 0; n < w->nparts; n++) {
            char pn[16];
            snprintf(pn, sizeof pn, "%d", (int)n);
            json_t *tp = json_object_get(parts, pn);
            if (!rs_worker_owns(w, n) || !w->parts[n].tp_assigned[t]) {
                rs_metrics_unset(w->m.wp[n].lag[t]);
                continue;
            }
            if (tp == NULL)
                continue;
            int64_t end = jint(tp, "ls_offset");
            if (end < 0)
                end = jint(tp, "hi_offset");
            if (end < 0)
                continue; /* not fetched yet */
            int64_t next = -1;
            int rc =
                rs_state_get_input_offset(w->st, w->cfg->topics[t], n, &next, err, sizeof err);
            if (rc < 0)
                continue;
            if (rc == 1) {
                next = jint(tp, "lo_offset"); /* nothing applied: from the beginning */
                if (next < 0)
                    next = 0;
            }
            rs_metrics_set(lag_series(w, t, n), end > next ? end - next : 0);
        }
    }
out:
    json_decref(root);
    return 0;
}

void rs_worker_metrics_cluster_error(rs_worker_t *w, int err)
{
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && w->m.down_since == 0) {
        w->m.down_since = rs_worker_now_us();
        rs_metrics_set(w->m.cluster_up, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* the loop's tick                                                          */
/* ------------------------------------------------------------------------ */

/* Readiness (W-state RUNNING, an assignment, a reachable cluster). Outside
 * RUNNING the rebalance code owns the reason (starting, waiting for an
 * assignment, restoring, loading) and the worker is not ready. */
static void update_ready(rs_worker_t *w, uint64_t now)
{
    uint64_t lost_us = (uint64_t)w->cfg->health_lost_ms * 1000u;
    int owned = 0, ready = 0;

    for (int32_t n = 0; w->parts != NULL && n < w->nparts; n++)
        owned += rs_worker_owns(w, n);
    if (owned > 0)
        w->m.unassigned_since = 0;
    else if (w->m.unassigned_since == 0)
        w->m.unassigned_since = now;
    if (w->state != RS_WORKER_RUNNING) {
        ready = 0;
    } else if (w->m.down_since != 0 && now - w->m.down_since > lost_us) {
        rs_metrics_set_reason(w->metrics, "kafka cluster unreachable for %llu ms",
                              (unsigned long long)((now - w->m.down_since) / 1000));
    } else if (owned == 0 && now - w->m.unassigned_since > lost_us) {
        rs_metrics_set_reason(w->metrics, "no partition assigned for %llu ms",
                              (unsigned long long)((now - w->m.unassigned_since) / 1000));
    } else {
        ready = 1;
    }
    if (ready != rs_metrics_is_ready(w->metrics)) {
        rs_worker_log("readiness ready=%s", ready ? "true" : "false");
        rs_metrics_set_ready(w->metrics, ready);
    }
    rs_metrics_set(w->m.ready, ready);
}

static void update_freshness(rs_worker_t *w)
{
    int64_t now = wall_ms();

    if (ensure_parts(w) != 0)
        return;
    for (int32_t n = 0; n < w->nparts; n++) {
        wm_part_t *wp = &w->m.wp[n];
        if (!rs_worker_owns(w, n) || wp->newest_ms <= 0) {
            rs_metrics_unset(wp->fresh);
            if (!rs_worker_owns(w, n))
                wp->newest_ms = 0; /* a new owner's events decide */
            continue;
        }
        if (wp->fresh == NULL) {
            char pn[16];
            snprintf(pn, sizeof pn, "%d", (int)n);
            const rs_metrics_label_t l = {"partition", pn};
            wp->fresh = labelled(w, 1, "revstream_event_freshness_seconds",
                                 "Wall clock minus the event time (occurred_at) of the newest "
                                 "event applied on the partition.",
                                 &l, 1);
        }
        rs_metrics_set_decimal(wp->fresh, now > wp->newest_ms ? now - wp->newest_ms : 0, 3);
    }
}

static void update_rocksdb(rs_worker_t *w)
{
    rs_state_props_t pr;
    const struct {
        const char *name, *help;
        size_t off;
    } defs[7] = {
        {"revstream_rocksdb_sst_files_bytes", "rocksdb.total-sst-files-size",
         offsetof(rs_state_props_t, sst_bytes)},
        {"revstream_rocksdb_live_data_bytes", "rocksdb.estimate-live-data-size",
         offsetof(rs_state_props_t, live_data_bytes)},
        {"revstream_rocksdb_memtable_bytes", "rocksdb.cur-size-all-mem-tables",
         offsetof(rs_state_props_t, memtable_bytes)},
        {"revstream_rocksdb_estimated_keys", "rocksdb.estimate-num-keys",
         offsetof(rs_state_props_t, estimated_keys)},
        {"revstream_rocksdb_running_compactions", "rocksdb.num-running-compactions",
         offsetof(rs_state_props_t, running_compactions)},
        {"revstream_rocksdb_compaction_pending", "rocksdb.compaction-pending (0 or 1)",
         offsetof(rs_state_props_t, compaction_pending)},
        {"revstream_rocksdb_pending_compaction_bytes",
         "rocksdb.estimate-pending-compaction-bytes",
         offsetof(rs_state_props_t, pending_compaction_bytes)},
    };

    if (w->st == NULL)
        return;
    rs_state_get_props(w->st, &pr);
    for (int i = 0; i < 7; i++) {
        if (w->m.rocks[i] == NULL)
            w->m.rocks[i] = labelled(w, 1, defs[i].name, defs[i].help, NULL, 0);
        int64_t v = *(const int64_t *)((const char *)&pr + defs[i].off);
        if (v < 0)
            rs_metrics_unset(w->m.rocks[i]);
        else
            rs_metrics_set(w->m.rocks[i], v);
    }
}

/* The totals of one currency. */
static wm_currency_t *currency(rs_worker_t *w, const char *code, int exponent)
{
    for (size_t i = 0; i < w->m.ncur; i++)
        if (strcmp(w->m.cur[i].code, code) == 0)
            return &w->m.cur[i];
    if (w->m.ncur == WM_MAX_CURRENCIES)
        return NULL;
    wm_currency_t *nc = realloc(w->m.cur, (w->m.ncur + 1) * sizeof *nc);
    if (nc == NULL)
        return NULL;
    w->m.cur = nc;
    wm_currency_t *c = &nc[w->m.ncur++];
    memset(c, 0, sizeof *c);
    snprintf(c->code, sizeof c->code, "%s", code);
    c->exponent = exponent;
    const rs_metrics_label_t l = {"currency", c->code};
    c->recognized = labelled(w, 1, "revstream_recognized_amount",
                             "Revenue recognized so far on the partitions this worker owns, "
                             "in the currency's units (exact decimal).",
                             &l, 1);
    c->deferred = labelled(w, 1, "revstream_deferred_amount",
                           "Deferred revenue (billed, not yet recognized) on the partitions "
                           "this worker owns, in the currency's units (exact decimal).",
                           &l, 1);
    return c;
}

static void update_totals(rs_worker_t *w)
{
    for (size_t i = 0; i < w->m.ncur; i++) {
        w->m.cur[i].rec = w->m.cur[i].def = 0;
        w->m.cur[i].overflow = 0;
        w->m.cur[i].seen = 0;
    }
    for (int32_t n = 0; w->parts != NULL && n < w->nparts; n++) {
        if (!rs_worker_owns(w, n))
            continue;
        const rs_engine_t *e = rs_pstate_engine(w->parts[n].ps);
        size_t nl = rs_engine_line_count(e);
        for (size_t i = 0; i < nl; i++) {
            rs_line_view_t v;
            rs_engine_line_get(e, i, &v);
            wm_currency_t *c = currency(w, v.currency, v.exponent);
            if (c == NULL)
                continue;
            c->seen = 1;
            if (__builtin_add_overflow(c->rec, v.recognized, &c->rec) ||
                __builtin_add_overflow(c->def, v.deferred, &c->def))
                c->overflow = 1;
        }
    }
    for (size_t i = 0; i < w->m.ncur; i++) {
        wm_currency_t *c = &w->m.cur[i];
        if (c->overflow) {
            rs_metrics_unset(c->recognized);
            rs_metrics_unset(c->deferred);
            if (!c->overflow_logged)
                rs_worker_log("warning metrics_overflow currency=%s", c->code);
            c->overflow_logged = 1;
            continue;
        }
        rs_metrics_set_decimal(c->recognized, c->seen ? c->rec : 0, c->exponent);
        rs_metrics_set_decimal(c->deferred, c->seen ? c->def : 0, c->exponent);
    }
}

/* Test hook: while the file w->test_stall_file exists the loop makes no
 * progress (no heartbeat), as a hung loop would. */
static void test_stall(rs_worker_t *w)
{
    if (w->test_stall_file == NULL || access(w->test_stall_file, F_OK) != 0)
        return;
    rs_worker_log("fault stall file=%s", w->test_stall_file);
    while (!w->stop && access(w->test_stall_file, F_OK) == 0)
        usleep(20000);
    w->loop_mark = rs_worker_now_us(); /* not a process freeze (W8) */
}

void rs_worker_metrics_tick(rs_worker_t *w)
{
    uint64_t now = rs_worker_now_us();

    if (!w->m.loop_started) {
        w->m.loop_started = 1;
        rs_metrics_heartbeat(w->metrics);
        rs_metrics_set_stale_after(w->metrics, (uint64_t)w->cfg->health_stall_ms);
    }
    test_stall(w);
    rs_metrics_heartbeat(w->metrics);
    if (now - w->m.last_tick < (uint64_t)TICK_MS * 1000u)
        return;
    w->m.last_tick = now;
    update_ready(w, now);
    update_freshness(w);
    if (w->m.last_slow != 0 && now - w->m.last_slow < (uint64_t)SLOW_TICK_MS * 1000u)
        return;
    w->m.last_slow = now;
    update_rocksdb(w);
    update_totals(w);
}

void rs_worker_test_restore_delay(rs_worker_t *w)
{
    for (long ms = 0; ms < w->test_restore_delay_ms && !w->stop; ms += 50) {
        rs_metrics_heartbeat(w->metrics);
        usleep(50000);
    }
}

void rs_worker_set_test_hooks(rs_worker_t *w, const char *stall_file, long restore_delay_ms)
{
    if (w == NULL)
        return;
    w->test_stall_file = stall_file;
    w->test_restore_delay_ms = restore_delay_ms;
}
