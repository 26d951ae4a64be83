/*
 * test_observability — the worker's /metrics, /healthz and /readyz as a
 * platform scrapes them, with `revstream worker` as a child process
 * against the embedded broker (rs_mockbroker, in this process).
 *
 * What is checked:
 *   - counters: revstream_events_consumed_total{topic} equals the records
 *     produced to each topic, and revstream_events_total{topic,type,
 *     outcome} summed over outcomes equals the records of each (topic,
 *     event type) of the book; the totals per currency
 *     (revstream_recognized_amount, revstream_deferred_amount: exact
 *     decimals) equal the sums of `revstream replay`'s balance rows;
 *   - lag: revstream_consumer_lag is above 0 while records wait for their
 *     batch (batch.max.ms=5000 holds them) and falls to 0 for all sixteen
 *     topic-partitions once caught up;
 *   - build info, process metrics and RocksDB figures are exposed;
 *   - /healthz is 200, turns 503 while the loop is stalled (the
 *     RS_WORKER_TEST_STALL_FILE hook), 200 again after;
 *   - /readyz is 200 while running, 503 once the broker is down for longer
 *     than health.lost.ms, and 200 again after it comes back;
 *   - /readyz is 503 "restoring partition N" while a worker with no local
 *     state restores from the changelog (slowed by the
 *     RS_WORKER_TEST_RESTORE_DELAY_MS hook), 200 after.
 *
 * Every wait has a deadline; each test has its own broker, port (the
 * kh_free_port pattern) and temp dirs.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rs_calendar.h"
#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"

#define OBS_CONTRACTS 12

/* GET /metrics (or another path) into a fresh buffer of KH_HTTP_BUF. */
static long obs_get(int port, const char *path, char **body)
{
    *body = calloc(1, KH_HTTP_BUF);
    cr_assert_not_null(*body);
    return kh_http_get(port, path, *body);
}

/* The value of the series line "<series> <value>" as minor units with
 * `scale` decimals ("12.5" at scale 2 -> 1250); -1 if absent. */
static long long obs_value(const char *text, const char *series, int scale)
{
    char pat[512];
    snprintf(pat, sizeof pat, "\n%s ", series);
    const char *p = strstr(text, pat);
    if (p == NULL)
        return -1;
    p += strlen(pat);
    long long v = 0;
    int neg = *p == '-', frac = -1;
    if (neg)
        p++;
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') {
            frac = 0;
            continue;
        }
        if (frac >= 0 && frac == scale)
            continue; /* more decimals than asked: cut (not expected) */
        v = v * 10 + (*p - '0');
        if (frac >= 0)
            frac++;
    }
    for (frac = frac < 0 ? 0 : frac; frac < scale; frac++)
        v *= 10;
    return neg ? -v : v;
}

/* A decimal string of a replay row ("1,234.50" never: JSON rows are plain)
 * as minor units at `scale`. */
static long long obs_units(const char *s, int scale)
{
    char line[128];
    snprintf(line, sizeof line, "\nx %s\n", s);
    return obs_value(line, "x", scale);
}

static int obs_scale_of(const char *s)
{
    const char *dot = strchr(s, '.');
    return dot ? (int)strlen(dot + 1) : 0;
}

/* Waits until GET path answers `status`; returns the body (caller frees). */
static char *obs_wait_status(int port, const char *path, long status, pid_t pid,
                             const char *log)
{
    double deadline = kh_now_s() + KH_DEADLINE_S;
    for (;;) {
        char *body;
        long got = obs_get(port, path, &body);
        if (got == status)
            return body;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char *l = kh_slurp(log);
            cr_assert_fail("worker exited (%d) waiting for %s %ld; log:\n%s", st, path, status,
                           l);
        }
        cr_assert(kh_now_s() < deadline, "%s stayed %ld (%s), want %ld", path, got, body,
                  status);
        free(body);
        usleep(50000);
    }
}

typedef struct obs_count {
    char topic[32], type[48];
    long n;
} obs_count_t;

/* Records per (topic, type) as kh_produce_events sends them (a close to
 * every partition of contracts). */
static size_t obs_book_counts(const kh_events_t *ev, obs_count_t *c, size_t max,
                              long per_topic[4])
{
    size_t n = 0;
    memset(per_topic, 0, 4 * sizeof per_topic[0]);
    for (size_t i = 0; i < ev->n; i++) {
        json_t *o = json_loads(ev->v[i].json, 0, NULL);
        cr_assert_not_null(o);
        const char *type = json_string_value(json_object_get(o, "type"));
        cr_assert_not_null(type);
        const char *topic = kh_in_topics[ev->v[i].topic];
        long copies = ev->v[i].is_close ? KH_NPARTS : 1;
        per_topic[ev->v[i].topic] += copies;
        size_t k = 0;
        while (k < n && !(strcmp(c[k].topic, topic) == 0 && strcmp(c[k].type, type) == 0))
            k++;
        if (k == n) {
            cr_assert(n < max);
            snprintf(c[k].topic, sizeof c[k].topic, "%s", topic);
            snprintf(c[k].type, sizeof c[k].type, "%s", type);
            c[k].n = 0;
            n++;
        }
        c[k].n += copies;
        json_decref(o);
    }
    return n;
}

/* The sum of every outcome of revstream_events_total for (topic, type). */
static long long obs_outcomes(const char *text, const char *topic, const char *type)
{
    static const char *const outcomes[] = {"applied", "waiting", "duplicate", "rejected",
                                           "skipped"};
    long long sum = 0;
    for (int i = 0; i < 5; i++) {
        char s[256];
        int w = snprintf(s, sizeof s,
                         "revstream_events_total{outcome=\"%s\",topic=\"%s\",type=\"%s\"}",
                         outcomes[i], topic, type);
        cr_assert(w > 0 && (size_t)w < sizeof s, "series name too long");
        long long v = obs_value(text, s, 0);
        if (v > 0)
            sum += v;
    }
    return sum;
}

/* *max: the largest lag series of the 4 x KH_NPARTS input partitions (-1
 * if none). Returns 1 if all are present. */
static int obs_lags(const char *text, long long *max)
{
    int all = 1;
    *max = -1;
    for (int t = 0; t < 4; t++)
        for (int p = 0; p < KH_NPARTS; p++) {
            char s[160];
            snprintf(s, sizeof s, "revstream_consumer_lag{partition=\"%d\",topic=\"%s\"}", p,
                     kh_in_topics[t]);
            long long v = obs_value(text, s, 0);
            if (v < 0)
                all = 0;
            else if (v > *max)
                *max = v;
        }
    return all;
}

Test(observability, metrics_equal_what_was_processed_and_health_follows_the_loop,
     .timeout = 240)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[512], stall[160], env[200];
    kh_events_t ev = {0};
    kh_worker_t w;
    obs_count_t counts[64];
    long per_topic[4];
    int port = kh_free_port();

    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    snprintf(extra, sizeof extra,
             "metrics.port=%d\nkafka.statistics.interval.ms=200\nhealth.lost.ms=1500\n"
             "health.stall.ms=1000\nbatch.max.ms=5000\n",
             port);
    kh_worker_init(&w, bs, "g-obs", extra);
    snprintf(stall, sizeof stall, "%s/stall", w.dir);
    snprintf(env, sizeof env, "RS_WORKER_TEST_STALL_FILE=%s", stall);
    kh_gen_book(&ev, OBS_CONTRACTS);
    size_t nc = obs_book_counts(&ev, counts, 64, per_topic);

    pid_t pid = kh_worker_start(&w, env);
    free(obs_wait_status(port, "/readyz", 200, pid, w.log)); /* assigned, nothing to do */
    char *h = obs_wait_status(port, "/healthz", 200, pid, w.log);
    cr_assert_str_eq(h, "ok\n");
    free(h);

    /* The contracts first: they wait up to batch.max.ms (5 s) for their
     * batch, and the lag is seen above 0 meanwhile; then the rest. */
    rd_kafka_t *prod = kh_new_producer(bs);
    rs_avro_cache_t *cache = kh_input_cache();
    double t_prod = kh_now_s();
    kh_produce_events(prod, &ev, 0, 0, cache);
    long long first_lag = -1;
    char *m = NULL;
    double deadline = t_prod + 5;
    while (first_lag <= 0 && kh_now_s() < deadline) {
        free(m);
        cr_assert_eq(obs_get(port, "/metrics", &m), 200);
        obs_lags(m, &first_lag);
        if (first_lag <= 0)
            usleep(20000);
    }
    cr_assert_gt(first_lag, 0, "the lag was never seen above 0 (%.2f s after producing)",
                 kh_now_s() - t_prod);
    cr_log_info("lag %lld seen %.2f s after producing the contracts", first_lag,
                kh_now_s() - t_prod);
    kh_produce_events(prod, &ev, 1, -1, cache);
    kh_produce_events(prod, &ev, 2, -1, cache);
    kh_produce_events(prod, &ev, 3, -1, cache);
    kh_produce_events(prod, &ev, 0, 1, cache); /* the closes */
    long long max = -1, seen_max = first_lag;
    deadline = kh_now_s() + KH_DEADLINE_S;
    for (;;) {
        cr_assert(kh_now_s() < deadline, "lag never fell to 0 (max %lld):\n%s", max,
                  m ? m : "");
        free(m);
        cr_assert_eq(obs_get(port, "/metrics", &m), 200);
        int all = obs_lags(m, &max);
        if (max > seen_max)
            seen_max = max;
        long long consumed = 0;
        for (int t = 0; t < 4; t++) {
            char s[96];
            snprintf(s, sizeof s, "revstream_events_consumed_total{topic=\"%s\"}",
                     kh_in_topics[t]);
            consumed += obs_value(m, s, 0) == per_topic[t];
        }
        /* freshness follows the loop's 250 ms tick after the batch; every
         * partition has applied events (the closes go to each) */
        int fresh = 0;
        for (int p = 0; p < KH_NPARTS; p++) {
            char s[96];
            snprintf(s, sizeof s, "revstream_event_freshness_seconds{partition=\"%d\"}", p);
            fresh += obs_value(m, s, 3) > 0;
        }
        if (all && max == 0 && consumed == 4 && fresh == KH_NPARTS &&
            obs_value(m, "revstream_pending_events", 0) == 0)
            break;
        usleep(50000);
    }
    cr_assert_gt(seen_max, 0, "the lag was never seen above 0");
    cr_log_info("lag: max seen %lld, then 0 on all %d topic-partitions", seen_max,
                4 * KH_NPARTS);
    /* The batch that took the last records committed before the lag fell. */
    long long records = obs_value(m, "revstream_input_records_total", 0);
    long total = per_topic[0] + per_topic[1] + per_topic[2] + per_topic[3];
    cr_assert_eq(records, total, "input records %lld, produced %ld", records, total);
    for (size_t i = 0; i < nc; i++)
        cr_assert_eq(obs_outcomes(m, counts[i].topic, counts[i].type), counts[i].n,
                     "%s %s: %lld handled, %ld produced\n%s", counts[i].topic, counts[i].type,
                     obs_outcomes(m, counts[i].topic, counts[i].type), counts[i].n, m);
    cr_assert_eq(obs_value(m, "revstream_dead_letters_total", 0),
                 obs_value(m, "revstream_dlq_total", 0));
    cr_assert_eq(obs_value(m, "revstream_partitions_parked", 0), 0);
    cr_assert_eq(obs_value(m, "revstream_ready", 0), 1);
    cr_assert_not_null(strstr(m, "\nrevstream_build_info{commit=\""), "%s", m);
    cr_assert_not_null(strstr(m, ",librdkafka=\"2."), "%s", m);
    cr_assert_gt(obs_value(m, "process_resident_memory_bytes", 0), 1 << 20);
    cr_assert_gt(obs_value(m, "process_open_fds", 0), 3);
    cr_assert_gt(obs_value(m, "process_cpu_seconds_total", 2), 0);
    cr_assert_geq(obs_value(m, "revstream_rocksdb_estimated_keys", 0), 0, "%s", m);
    cr_assert_geq(obs_value(m, "revstream_rocksdb_running_compactions", 0), 0);
    cr_assert_not_null(strstr(m, "revstream_batch_phase_seconds_count{phase=\"commit\"}"));
    cr_assert_gt(obs_value(m, "revstream_commit_seconds_count", 0), 0);
    /* freshness: at least the wall clock minus the book's newest occurred_at */
    int64_t newest = 0;
    for (size_t i = 0; i < ev.n; i++) {
        json_t *o = json_loads(ev.v[i].json, 0, NULL);
        int64_t at = 0;
        cr_assert_eq(
            rs_timestamp_parse_ms(json_string_value(json_object_get(o, "occurred_at")), &at),
            0);
        if (at > newest)
            newest = at;
        json_decref(o);
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long floor_ms = (long long)now.tv_sec * 1000 - newest - 2000;
    for (int p = 0; p < KH_NPARTS; p++) {
        char s[96];
        snprintf(s, sizeof s, "revstream_event_freshness_seconds{partition=\"%d\"}", p);
        cr_assert_geq(obs_value(m, s, 3), floor_ms, "%s", s);
    }

    /* Totals per currency against replay's balance rows (through 2026-06,
     * the book's last close: what the worker has recognized). The gauges
     * follow the loop's slow tick (5 s). */
    char rdir[64];
    kh_make_dir(rdir, sizeof rdir);
    json_t *rows = kh_replay_balances(&ev, rdir, "2026-06");
    const char *curs[2] = {"USD", "JPY"};
    for (int c = 0; c < 2; c++) {
        long long rec = 0, def = 0;
        int scale = -1;
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            if (strcmp(kh_row_str(row, "currency"), curs[c]) != 0)
                continue;
            scale = obs_scale_of(kh_row_str(row, "recognized"));
            rec += obs_units(kh_row_str(row, "recognized"), scale);
            def += obs_units(kh_row_str(row, "deferred"), scale);
        }
        cr_assert_geq(scale, 0, "no %s rows", curs[c]);
        char sr[96], sd[96];
        snprintf(sr, sizeof sr, "revstream_recognized_amount{currency=\"%s\"}", curs[c]);
        snprintf(sd, sizeof sd, "revstream_deferred_amount{currency=\"%s\"}", curs[c]);
        deadline = kh_now_s() + 20;
        while (obs_value(m, sr, scale) != rec || obs_value(m, sd, scale) != def) {
            cr_assert(kh_now_s() < deadline,
                      "%s: want recognized %lld deferred %lld (scale %d):\n%s", curs[c], rec,
                      def, scale, m);
            free(m);
            usleep(200000);
            cr_assert_eq(obs_get(port, "/metrics", &m), 200);
        }
        cr_assert_gt(rec, 0);
        cr_log_info("%s recognized %lld deferred %lld (minor units, scale %d)", curs[c], rec,
                    def, scale);
    }
    json_decref(rows);
    kh_rm_rf(rdir);
    free(m);

    /* /healthz: 503 while the loop is stalled, 200 after. /metrics still answers. */
    kh_write_file(stall, "x");
    h = obs_wait_status(port, "/healthz", 503, pid, w.log);
    cr_assert_eq(strncmp(h, "stalled: no progress for ", 25), 0, "%s", h);
    free(h);
    cr_assert_eq(obs_get(port, "/metrics", &m), 200);
    free(m);
    cr_assert_eq(unlink(stall), 0);
    free(obs_wait_status(port, "/healthz", 200, pid, w.log));
    free(obs_wait_status(port, "/readyz", 200, pid, w.log));

    /* The broker goes away: /readyz 503 after health.lost.ms; back: 200. */
    rd_kafka_mock_cluster_t *mc = rs_mockbroker_cluster(mb);
    double down_at = kh_now_s();
    cr_assert_eq(rd_kafka_mock_broker_set_down(mc, 1), 0);
    char *r = obs_wait_status(port, "/readyz", 503, pid, w.log);
    double took = kh_now_s() - down_at;
    cr_log_info("/readyz 503 %.1f s after the broker went down: %s", took, r);
    cr_assert(took >= 1.4, "503 after %.2f s, before health.lost.ms", took);
    cr_assert(strstr(r, "kafka cluster unreachable") != NULL ||
                  strstr(r, "no partition assigned") != NULL,
              "%s", r);
    free(r);
    free(obs_wait_status(port, "/healthz", 200, pid, w.log)); /* the loop still runs */
    cr_assert_eq(rd_kafka_mock_broker_set_up(mc, 1), 0);
    free(obs_wait_status(port, "/readyz", 200, pid, w.log));

    kh_assert_exit0(kh_worker_stop(pid, w.log), w.log);
    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "worker: readiness ready=false"), "%s", log);
    free(log);
    rd_kafka_destroy(prod);
    rs_avro_cache_destroy(cache);
    kh_ev_free(&ev);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
    curl_global_cleanup();
}

Test(observability, readyz_is_503_while_restoring, .timeout = 240)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[256];
    kh_events_t ev = {0};
    kh_worker_t a, b;
    int port = kh_free_port();

    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_gen_book(&ev, OBS_CONTRACTS);
    kh_produce_book(bs, &ev);
    /* A fills the changelog and exits idle. */
    kh_worker_init(&a, bs, "g-restore", "exit.when.idle=true\n");
    kh_worker_run_idle(&a, NULL);
    /* B has no local state: it restores all four partitions, 1.5 s each. */
    snprintf(extra, sizeof extra, "metrics.port=%d\nlog.format=json\n", port);
    kh_worker_init(&b, bs, "g-restore", extra);
    pid_t pid = kh_worker_start(&b, "RS_WORKER_TEST_RESTORE_DELAY_MS=1500");
    kh_wait_log(b.log, "\"event\":\"restore\"", pid);
    char *r = NULL;
    long st = obs_get(port, "/readyz", &r);
    cr_assert_eq(st, 503, "%s", r);
    cr_assert_not_null(strstr(r, "restoring partition "), "%s", r);
    cr_log_info("/readyz during the restore: %ld %s", st, r);
    free(r);
    char *h = NULL;
    cr_assert_eq(obs_get(port, "/healthz", &h), 200, "%s", h); /* restoring is progress */
    free(h);
    free(obs_wait_status(port, "/readyz", 200, pid, b.log));
    char *m = NULL;
    cr_assert_eq(obs_get(port, "/metrics", &m), 200);
    cr_assert_gt(obs_value(m, "revstream_restored_records_total", 0), 0, "%s", m);
    cr_assert_eq(obs_value(m, "revstream_restore_remaining_records", 0), 0, "%s", m);
    free(m);
    kh_assert_exit0(kh_worker_stop(pid, b.log), b.log);

    /* B logged JSON lines: each one parses and has the fixed fields. */
    char *log = kh_slurp(b.log);
    size_t lines = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        cr_assert_not_null(o, "not a JSON line (%s): %s", jerr.text, line);
        cr_assert(json_is_string(json_object_get(o, "ts")) &&
                      json_is_string(json_object_get(o, "level")) &&
                      json_is_string(json_object_get(o, "component")) &&
                      json_is_string(json_object_get(o, "event")),
                  "%s", line);
        json_decref(o);
        lines++;
    }
    cr_assert_gt(lines, 10);
    free(log);
    kh_ev_free(&ev);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(a.dir);
    kh_rm_rf(b.dir);
    curl_global_cleanup();
}
