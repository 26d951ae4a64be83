/*
 * bench_bounded — one contract with a very busy usage line (default
 * 1,000,000 usage events, one a minute from 2026-01-01: about 23 months):
 *
 *   store:  the events applied through rs_pstate over a RocksDB store as
 *           the worker applies them (batches of --batch events, each staged
 *           and committed in one write: contracts, seen ids, meta); prints
 *           the contract record's size as it grows, the time, the engine's
 *           heap and the process's peak RSS. Baseline in the same run: an
 *           engine that keeps the ids in the record (no seen store), whose
 *           record size is printed at the same points.
 *   reload: the partition loaded back from the store (a restart) and every
 *           10th event applied again: all must come back as duplicates.
 *   replay: `revstream replay` of the same events (a JSON Lines file), as
 *           a child: time and peak RSS (wait4), exit status 0.
 *   worker: (--rate R > 0) the same file through `revstream worker` (JSON
 *           in and out) against `revstream broker` (one partition), fed by
 *           `revstream produce --rate R` (paced, because the embedded
 *           broker keeps only ~100,000 records per partition: the worker
 *           must keep up); the worker is stopped (SIGTERM) once its batch
 *           lines account for every record; prints its time, applied /
 *           duplicates / dlq counts, peak RSS (wait4) and the contract's
 *           record size in its store. Then, for up to 150,000 events, a
 *           second worker restores the partition from the changelog into an
 *           empty state directory: records, rate, the restored record.
 *   copy:   (--copy-at F, the default F = 0.9 above 150,000 events, whose
 *           changelog the broker no longer keeps whole) the restore an
 *           operator does when the changelog's start is gone: the first
 *           worker is stopped gracefully after F of the input, its store
 *           copied with `revstream state checkpoint`, and restarted on its
 *           own store for the rest (with --copy-live it runs through and
 *           the copy is taken next to it, read-only, once its batches saw F
 *           of the input). Prints the changelog's low watermark against the
 *           copy's position (R1: a restore from the copy needs position >=
 *           low), shows a worker with an empty state directory refused
 *           (restore_refused), then a second worker (the first one's group,
 *           state directory = the copy) restores the tail after the copy's
 *           position: records, ids, time (restore_all), peak RSS; it must
 *           apply nothing and end with the first worker's record (byte for
 *           byte) and seen ids (count and digest). Last, every 1,000th
 *           event is sent again: all must be duplicates.
 *
 * Usage: bench_bounded [--events N] [--batch N] [--rate R] [--copy-at F]
 *                      [--copy-live] [--revstream PATH]
 * Figures, not a test: see bench/README.md for the recorded results.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_proc.h"
#include "rs_changelog.h"
#include "rs_codec.h"
#include "rs_pstate.h"

#ifndef RS_BINARY_DIR
#define RS_BINARY_DIR "."
#endif

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static const char BOOKED[] =
    "{\"event_id\":\"book\",\"type\":\"contract.booked\",\"contract_id\":\"METER-1\","
    "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"API calls\","
    "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2027-12-31\",\"amount\":"
    "\"0\",\"unit_price\":\"0.001\"}]}";

/* Usage event i: minute i after 2026-01-01T00:00Z. */
static int usage_json(char *buf, size_t n, long i)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long day = i / 1440, min = i % 1440;
    int y = 2026, m = 0;
    while (day >= mdays[m]) {
        day -= mdays[m];
        if (++m == 12) {
            m = 0;
            y++;
        }
    }
    return snprintf(
        buf, n,
        "{\"event_id\":\"use-%ld\",\"type\":\"usage.recorded\",\"contract_id\":"
        "\"METER-1\",\"occurred_at\":\"%04d-%02d-%02ldT%02ld:%02ld:00Z\",\"line_id\":"
        "\"L1\",\"quantity\":\"%ld\"}",
        i, y, m + 1, day + 1, min / 60, min % 60, 1 + i % 7);
}

static rs_apply_result_t apply(rs_engine_t *e, const char *json)
{
    rs_event_t ev;
    char err[512];
    rs_event_init(&ev);
    if (rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err) != 0) {
        fprintf(stderr, "decode: %s\n", err);
        exit(1);
    }
    rs_apply_result_t rc = rs_engine_apply(e, &ev, err, sizeof err);
    if (rc == RS_APPLY_REJECTED || rc == RS_APPLY_NOMEM || rc == RS_APPLY_EIO) {
        fprintf(stderr, "apply: %s\n", err);
        exit(1);
    }
    rs_event_clear(&ev);
    return rc;
}

static size_t record_size(rs_engine_t *e)
{
    void *buf;
    size_t len;
    char err[256];
    if (rs_engine_export_contract(e, "METER-1", &buf, &len, err, sizeof err) != 0)
        return 0;
    free(buf);
    return len;
}

static void commit(rs_state_t *st, rs_pstate_t *ps)
{
    rs_state_batch_t *b;
    char err[512];
    if (rs_state_batch_new(&b, err, sizeof err) != 0 ||
        rs_pstate_stage(ps, b, err, sizeof err) != 0 ||
        rs_state_batch_commit(st, b, err, sizeof err) != 0) {
        fprintf(stderr, "commit: %s\n", err);
        exit(1);
    }
    rs_state_batch_destroy(b);
}

/* The sum of " key=N" over the log's lines that start with prefix. */
static long log_sum(const char *log, const char *prefix, const char *key)
{
    char pat[64];
    long sum = 0;
    snprintf(pat, sizeof pat, " %s=", key);
    for (const char *l = log; l != NULL && *l;
         l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, prefix, strlen(prefix)) != 0)
            continue;
        const char *end = strchr(l, '\n'), *k = strstr(l, pat);
        if (k != NULL && (end == NULL || k < end))
            sum += strtol(k + strlen(pat), NULL, 10);
    }
    return sum;
}

/* Writes a worker's config to path (JSON in and out, text log, short
 * session timeouts; exit.when.idle when idle_exit). 0 or -1. */
static int worker_cfg(const char *path, const char *bs, const char *state, const char *group,
                      int idle_exit)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "kafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=%s\n"
            "input.format=json\noutput.format=json\nstate.sync=false\n%s"
            "log.format=text\n"
            "kafka.session.timeout.ms=6000\nkafka.heartbeat.interval.ms=1000\n",
            bs, state, group, idle_exit ? "exit.when.idle=true\n" : "");
    return fclose(f) == 0 ? 0 : -1;
}

/* A worker run to its exit (exit.when.idle) and what its log says. */
typedef struct worker_exit {
    int rc;
    struct rusage ru;
    long restored, read_ms, all_ms; /* its restore: records, ms to read, restore_all ms */
    long applied, duplicates;
    int behind, refused; /* restored from a local position; restore_refused */
} worker_exit_t;

static void worker_to_exit(const char *bin, const char *cfg, const char *log, worker_exit_t *x)
{
    char *argv[] = {(char *)bin, "worker", "--config", (char *)cfg, NULL};
    x->rc = bp_wait(bp_spawn(bin, argv, "/dev/null", log), &x->ru);
    char *text = bp_slurp(log);
    x->restored = log_sum(text, "worker: restored ", "records");
    x->read_ms = log_sum(text, "worker: restored ", "ms");
    x->all_ms = log_sum(text, "worker: restore_all ", "ms"); /* with watermarks, flush */
    x->applied = log_sum(text, "worker: batch ", "applied");
    x->duplicates = log_sum(text, "worker: batch ", "duplicates");
    x->behind = text != NULL && strstr(text, "local=behind") != NULL;
    x->refused = text != NULL && strstr(text, "restore_refused partition=0 ") != NULL;
    free(text);
}

/* 150,000 usage events and the booking: their changelog (~3 MB of packed
 * seen ids, 20 bytes each, plus the contract and meta records) still fits
 * what the embedded broker keeps of a partition (~5 MB); 1,000,000 ids are
 * 20 MB however they are packed. */
#define RESTORE_MAX_RECORDS 150001

/* After the worker phase, while the broker still runs: a second worker
 * with an empty state directory restores the partition from the changelog
 * (one c/ record per batch, the event ids packed in S/ records of up to
 * 16,384), if the changelog can still be whole on the embedded broker
 * (~5 MB per partition: up to ~150,000 events here); prints the records,
 * the ids (events) restored per second and the restored record's size. 0
 * on success or when skipped. */
static int restore_phase(const char *bin, const char *dir, const char *bs, long records)
{
    char cfg[160], log[160], state[160];
    if (records > RESTORE_MAX_RECORDS) {
        printf("restore: skipped (%ld events: more than the embedded broker keeps of one "
               "changelog partition; --copy-at F restores from a copy and the tail)\n",
               records);
        return 0;
    }
    snprintf(cfg, sizeof cfg, "%s/restore.properties", dir);
    snprintf(log, sizeof log, "%s/restore.log", dir);
    snprintf(state, sizeof state, "%s/restore-state", dir);
    if (worker_cfg(cfg, bs, state, "bench-bounded-restore", 1) != 0)
        return 1;
    worker_exit_t x;
    worker_to_exit(bin, cfg, log, &x);
    long n = x.restored, ms = x.read_ms;
    size_t rec = 0;
    rs_state_t *st;
    rs_state_opts_t so = {state, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    void *blob = NULL;
    if (rs_state_open(&st, &so, err, sizeof err) == 0) {
        if (rs_state_get_contract(st, 0, "METER-1", &blob, &rec, err, sizeof err) != 0)
            rec = 0;
        rs_state_free(blob);
        rs_state_destroy(st);
    }
    printf("restore: %ld changelog records (%ld event ids) in %ld ms (%.0f records/s, %.0f "
           "ids/s), then applied %ld, exit %d, peak RSS %.1f MiB, record %zu bytes\n",
           n, records, ms, ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0,
           ms > 0 ? (double)records * 1000.0 / (double)ms : 0.0, x.applied, x.rc,
           (double)x.ru.ru_maxrss / 1024.0, rec);
    return x.rc == 0 && n > 0 && x.applied == 0 && rec > 0 ? 0 : 1;
}

/* Writes every step-th event of [from, to) of the usage line as JSON Lines
 * to path, after the booking when booked. 0 or -1. */
static int write_events(const char *path, int booked, long from, long to, long step)
{
    char json[512];
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    if (booked)
        fprintf(f, "%s\n", BOOKED);
    for (long i = from; i < to; i += step) {
        usage_json(json, sizeof json, i);
        fprintf(f, "%s\n", json);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* A copy of the first worker's store (`revstream state checkpoint`): taken
 * while the worker runs (the command opens the store read-only next to
 * it) once its batch lines account for `at` records, or, with `at` 0,
 * right away (after a graceful stop). */
typedef struct live_copy {
    const char *bin, *state, *copy;
    long at;
    long seen; /* out: the records its batches had seen at the copy */
    int done, rc;
    double ms;
} live_copy_t;

/* Takes cp's copy if the worker's log shows cp->at records (once). */
static void live_copy_check(live_copy_t *cp, const char *log)
{
    if (cp == NULL || cp->done)
        return;
    char *text = bp_slurp(log);
    long seen = log_sum(text, "worker: batch ", "records");
    free(text);
    if (seen < cp->at)
        return;
    char *cargv[] = {(char *)cp->bin,   "state",          "checkpoint", "--state-dir",
                     (char *)cp->state, (char *)cp->copy, NULL};
    double t0 = bp_now_s();
    cp->rc = bp_wait(bp_spawn(cp->bin, cargv, "/dev/null", "/dev/null"), &(struct rusage){0});
    cp->ms = (bp_now_s() - t0) * 1000.0;
    cp->seen = seen;
    cp->done = 1;
}

/* One run of the first worker (config cfg, log log): started, fed `file`
 * (`records` records) by `revstream produce --rate R` once it is assigned,
 * stopped (SIGTERM, a graceful stop: its store at a batch boundary) once
 * its batch lines account for every record or after 30 s without
 * progress. Returns its exit status; *ru its rusage; adds the records its
 * batches saw to *done and the seconds from the first produce to the last
 * record to *t_work, the producer's seconds to *t_prod. */
static int worker_run(const char *bin, const char *bs, const char *cfg, const char *log,
                      const char *plog, const char *file, long records, long rate,
                      live_copy_t *cp, struct rusage *ru, long *done, double *t_work,
                      double *t_prod, int *prc)
{
    char rates[32];
    snprintf(rates, sizeof rates, "%ld", rate);
    char *wargv[] = {(char *)bin, "worker", "--config", (char *)cfg, NULL};
    pid_t worker = bp_spawn(bin, wargv, "/dev/null", log);
    char *pargv[] = {(char *)bin, "produce", "--bootstrap", (char *)bs,   "--format",
                     "json",      "--rate",  rates,         (char *)file, NULL};
    /* the broker keeps ~5 MB per partition: produce once the worker reads */
    for (int i = 0; i < 600; i++) {
        char *text = bp_slurp(log);
        int ready = text != NULL && strstr(text, "worker: assigned ") != NULL;
        free(text);
        if (ready)
            break;
        usleep(100000);
    }
    double t0 = bp_now_s();
    pid_t producer = bp_spawn(bin, pargv, "/dev/null", plog);
    for (;;) { /* the producer's run, watching for the live copy's point */
        int ws;
        pid_t r = waitpid(producer, &ws, cp != NULL ? WNOHANG : 0);
        if (r == producer) {
            *prc |= WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
            break;
        }
        if (r < 0 && errno != EINTR) {
            *prc |= 1;
            break;
        }
        live_copy_check(cp, log);
        usleep(50000);
    }
    *t_prod += bp_now_s() - t0;
    long seen = 0, last = -1;
    for (int idle = 0; idle < 30 && seen < records;) { /* until 30 s without progress */
        live_copy_check(cp, log);
        char *text = bp_slurp(log);
        seen = log_sum(text, "worker: batch ", "records");
        free(text);
        idle = seen == last ? idle + 1 : 0;
        last = seen;
        if (seen < records)
            sleep(1);
    }
    *t_work += bp_now_s() - t0;
    *done += seen;
    kill(worker, SIGTERM);
    return bp_wait(worker, ru);
}

/* The local changelog position of partition 0 in the store at dir, or -1. */
static int64_t store_pos(const char *dir)
{
    rs_state_t *st;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    int64_t pos = -1;
    if (rs_state_open(&st, &so, err, sizeof err) != 0)
        return -1;
    if (rs_changelog_get_pos(st, 0, &pos, err, sizeof err) != 0)
        pos = -1;
    rs_state_destroy(st);
    return pos;
}

/* What a store holds of the contract: its record (malloc'd, *len) and its
 * seen ids (count, and an order-independent digest of id and content
 * hashes). 0 or -1. */
typedef struct store_view {
    void *rec;
    size_t len;
    long ids;
    uint64_t digest;
} store_view_t;

static int view_seen(void *opaque, const char *id, uint64_t h, uint64_t ch, int32_t period)
{
    store_view_t *v = opaque;
    (void)id;
    v->ids++;
    v->digest += (h * 0x9e3779b97f4a7c15ull) ^ (ch + (uint64_t)(uint32_t)period);
    return 0;
}

static int store_view(const char *dir, store_view_t *v)
{
    rs_state_t *st;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    memset(v, 0, sizeof *v);
    if (rs_state_open(&st, &so, err, sizeof err) != 0)
        return -1;
    void *blob = NULL;
    int rc = rs_state_get_contract(st, 0, "METER-1", &blob, &v->len, err, sizeof err) == 0 &&
                     rs_state_foreach_seen(st, 0, view_seen, v, err, sizeof err) == 0
                 ? 0
                 : -1;
    if (rc == 0 && (v->rec = malloc(v->len ? v->len : 1)) != NULL)
        memcpy(v->rec, blob, v->len);
    rs_state_free(blob);
    rs_state_destroy(st);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", dir, err);
    return rc == 0 && v->rec != NULL ? 0 : -1;
}

/* The changelog partition's low and high watermarks (-1 on error). */
static void changelog_watermarks(const char *bs, int64_t *lo, int64_t *hi)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    *lo = *hi = -1;
    if (rd_kafka_conf_set(c, "bootstrap.servers", bs, err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (rk == NULL)
        return;
    if (rd_kafka_query_watermark_offsets(rk, "revenue.state-changelog", 0, lo, hi, 10000) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        *lo = *hi = -1;
    rd_kafka_destroy(rk);
}

/* After the worker phase with a copy (see the file comment), the broker
 * still running: the second worker restores the copy plus the changelog's
 * tail, must end with the first worker's record (byte-equal) and seen ids
 * and apply nothing; then a sample of old event ids sent again must all be
 * duplicates. 0 on success. */
static int copy_restore_phase(const char *bin, const char *dir, const char *bs, long records,
                              const char *w1state, const char *copy, int64_t copy_pos)
{
    char cfg[160], log[160], log2[160], plog[160], probe[160];
    snprintf(cfg, sizeof cfg, "%s/restore.properties", dir);
    snprintf(log, sizeof log, "%s/restore.log", dir);
    snprintf(log2, sizeof log2, "%s/probe-worker.log", dir);
    snprintf(plog, sizeof plog, "%s/probe-produce.log", dir);
    snprintf(probe, sizeof probe, "%s/probe.jsonl", dir);
    int64_t lo, hi;
    changelog_watermarks(bs, &lo, &hi);
    printf("changelog: low watermark %lld, the copy's position %lld, high %lld: the copy is "
           "%s (R1: position >= low watermark); tail %lld records\n",
           (long long)lo, (long long)copy_pos, (long long)hi,
           lo >= 0 && copy_pos >= lo ? "restorable" : "NOT restorable",
           (long long)(hi - copy_pos));
    /* an empty state directory (another group): refused by R1 when the
     * broker trimmed the changelog's start (below ~150,000 events it did
     * not: the changelog is whole and such a restore is not the point) */
    worker_exit_t e = {0};
    if (lo > 0) {
        char ecfg[160], elog[160], estate[160];
        snprintf(ecfg, sizeof ecfg, "%s/empty.properties", dir);
        snprintf(elog, sizeof elog, "%s/empty.log", dir);
        snprintf(estate, sizeof estate, "%s/empty-state", dir);
        if (worker_cfg(ecfg, bs, estate, "bench-bounded-empty", 1) != 0)
            return 1;
        worker_to_exit(bin, ecfg, elog, &e);
        printf("restore into an empty state directory: %s, exit %d\n",
               e.refused ? "refused (restore_refused partition=0: the changelog's start is "
                           "trimmed)"
                         : "not refused",
               e.rc);
    } else {
        printf("restore into an empty state directory: not run (the changelog is whole)\n");
    }
    store_view_t pre;
    if (store_view(copy, &pre) != 0)
        return 1;
    free(pre.rec);

    /* the first worker's group: it is stopped, this one takes its place */
    if (worker_cfg(cfg, bs, copy, "bench-bounded", 1) != 0)
        return 1;
    worker_exit_t x, y;
    worker_to_exit(bin, cfg, log, &x);
    long n = x.restored, ms = x.all_ms;
    store_view_t a, b;
    int va = store_view(w1state, &a), vb = store_view(copy, &b);
    int same = va == 0 && vb == 0 && a.len == b.len && memcmp(a.rec, b.rec, a.len) == 0 &&
               a.ids == b.ids && a.digest == b.digest;
    long ids = b.ids - pre.ids;
    printf("restore from the copy: %ld changelog records (the tail after offset %lld) in %ld "
           "ms (read in %ld ms; %.0f records/s), %ld event ids restored (%.0f ids/s; the copy "
           "held %ld), %ld in the store as in the first worker's (%ld), record %zu bytes, same "
           "record and seen ids as the first worker: %s; applied %ld, exit %d, peak RSS %.1f "
           "MiB\n",
           n, (long long)copy_pos, ms, x.read_ms,
           ms > 0 ? (double)n * 1000.0 / (double)ms : 0.0, ids,
           ms > 0 ? (double)ids * 1000.0 / (double)ms : 0.0, pre.ids, b.ids, a.ids, b.len,
           same ? "yes" : "NO", x.applied, x.rc, (double)x.ru.ru_maxrss / 1024.0);

    /* the duplicate probe: every 1,000th event again, at new offsets */
    long sent = (records - 1 + 999) / 1000;
    if (write_events(probe, 0, 0, records - 1, 1000) != 0)
        return 1;
    char *pargv[] = {(char *)bin, "produce", "--bootstrap", (char *)bs,
                     "--format",  "json",    probe,         NULL};
    int prc = bp_wait(bp_spawn(bin, pargv, "/dev/null", plog), &(struct rusage){0});
    worker_to_exit(bin, cfg, log2, &y);
    store_view_t c;
    int vc = store_view(copy, &c);
    int still = vc == 0 && va == 0 && c.len == a.len && memcmp(c.rec, a.rec, a.len) == 0;
    printf("duplicate probe: %ld of %ld old event ids sent again ignored as duplicates, "
           "applied %ld, record unchanged: %s, exit %d\n",
           y.duplicates, sent, y.applied, still ? "yes" : "NO", prc | y.rc);
    free(a.rec);
    free(b.rec);
    free(c.rec);
    /* a copy at the changelog's end (a live copy after the last batch) has
     * no tail to restore */
    int tail_ok = hi == copy_pos || (x.behind && n > 0);
    return (lo == 0 || (e.refused && e.rc != 0)) && x.rc == 0 && tail_ok && x.applied == 0 &&
                   same && lo >= 0 && copy_pos >= lo && y.duplicates == sent &&
                   y.applied == 0 && still && prc == 0 && y.rc == 0
               ? 0
               : 1;
}

/* The worker phase (see the file comment). copy_at in (0, 1): the first
 * worker is stopped after that share of the input, its store copied, and
 * restarted on its own store for the rest (copy_live: copied next to it
 * once it has seen that share); a second worker restores the copy and the
 * tail. 0 on success. */
static int worker_phase(const char *bin, const char *dir, const char *file, long records,
                        long rate, double copy_at, int copy_live)
{
    char bsf[160], blog[160], wcfg[160], wlog[160], wlog2[160], plog[160], state[160],
        copy[160], head[160], tail[160];
    snprintf(bsf, sizeof bsf, "%s/bootstrap", dir);
    snprintf(blog, sizeof blog, "%s/broker.log", dir);
    snprintf(wcfg, sizeof wcfg, "%s/worker.properties", dir);
    snprintf(wlog, sizeof wlog, "%s/worker.log", dir);
    snprintf(wlog2, sizeof wlog2, "%s/worker-after-copy.log", dir);
    snprintf(plog, sizeof plog, "%s/produce.log", dir);
    snprintf(state, sizeof state, "%s/worker-state", dir);
    snprintf(copy, sizeof copy, "%s/copy-state", dir);
    snprintf(head, sizeof head, "%s/head.jsonl", dir);
    snprintf(tail, sizeof tail, "%s/tail.jsonl", dir);
    char *bargv[] = {(char *)bin, "broker", "--partitions", "1", "--bootstrap-file", bsf, NULL};
    pid_t broker = bp_spawn(bin, bargv, "/dev/null", blog);
    char *bs = NULL;
    for (int i = 0; i < 200 && (bs == NULL || bs[0] == '\0'); i++) {
        free(bs);
        usleep(50000);
        bs = bp_slurp(bsf);
    }
    if (bs == NULL || bs[0] == '\0') {
        fprintf(stderr, "the broker did not start (%s)\n", blog);
        return 1;
    }
    strtok(bs, "\n");
    if (worker_cfg(wcfg, bs, state, "bench-bounded", 0) != 0)
        return 1;
    struct rusage ru, ru2 = {0};
    long done = 0, split = records;
    double t_work = 0, t_prod = 0;
    int prc = 0, wrc, rrc;
    int64_t copy_pos = -1;
    int copying = copy_at > 0 && copy_at < 1;
    live_copy_t cp = {bin, state, copy, 0, 0, 0, 0, 0};
    if (copying && !copy_live) {
        /* the booking and the first events, a graceful stop, the copy,
         * then the rest on the worker's own store */
        split = (long)((double)records * copy_at);
        if (write_events(head, 1, 0, split - 1, 1) != 0 ||
            write_events(tail, 0, split - 1, records - 1, 1) != 0)
            return 1;
        wrc = worker_run(bin, bs, wcfg, wlog, plog, head, split, rate, NULL, &ru, &done,
                         &t_work, &t_prod, &prc);
        live_copy_check(&cp, wlog); /* at 0: now */
        wrc |= worker_run(bin, bs, wcfg, wlog2, plog, tail, records - split, rate, NULL, &ru2,
                          &done, &t_work, &t_prod, &prc);
        if (ru2.ru_maxrss > ru.ru_maxrss)
            ru.ru_maxrss = ru2.ru_maxrss;
    } else {
        cp.at = (long)((double)records * copy_at); /* copy_live: while it runs */
        wrc = worker_run(bin, bs, wcfg, wlog, plog, file, records, rate, copying ? &cp : NULL,
                         &ru, &done, &t_work, &t_prod, &prc);
    }
    if (copying) {
        copy_pos = store_pos(copy);
        printf("copy: `revstream state checkpoint` of the %s worker's store when its batches "
               "had seen %ld of %ld records, in %.0f ms, exit %d, its changelog position "
               "%lld\n",
               copy_live ? "running" : "stopped", cp.seen, records, cp.ms, cp.rc,
               (long long)copy_pos);
        wrc |= cp.rc != 0 || !cp.done;
        rrc = copy_restore_phase(bin, dir, bs, records, state, copy, copy_pos);
    } else {
        rrc = restore_phase(bin, dir, bs, records);
    }
    kill(broker, SIGTERM);
    bp_wait(broker, &(struct rusage){0});
    char *log = bp_slurp(wlog), *log2 = split < records ? bp_slurp(wlog2) : NULL;
    long applied = log_sum(log, "worker: batch ", "applied") +
                   log_sum(log2, "worker: batch ", "applied"),
         dups = log_sum(log, "worker: batch ", "duplicates") +
                log_sum(log2, "worker: batch ", "duplicates"),
         dlq = log_sum(log, "worker: batch ", "dlq") + log_sum(log2, "worker: batch ", "dlq");
    int parked = (log != NULL && strstr(log, "partition_parked") != NULL) ||
                 (log2 != NULL && strstr(log2, "partition_parked") != NULL);
    free(log);
    free(log2);

    size_t rec = 0;
    rs_state_t *st;
    rs_state_opts_t so = {state, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    void *blob = NULL;
    if (rs_state_open(&st, &so, err, sizeof err) == 0) {
        if (rs_state_get_contract(st, 0, "METER-1", &blob, &rec, err, sizeof err) != 0)
            rec = 0;
        rs_state_free(blob);
        rs_state_destroy(st);
    }
    printf("worker: %ld of %ld records in %.2f s (%.0f records/s; produced at %ld/s in "
           "%.2f s, exit %d), applied %ld, duplicates %ld, dlq %ld, parked %s, exit %d, "
           "peak RSS %.1f MiB, record %zu bytes%s\n",
           done, records, t_work, (double)done / t_work, rate, t_prod, prc, applied, dups, dlq,
           parked ? "yes" : "no", wrc, (double)ru.ru_maxrss / 1024.0, rec,
           split < records ? " (two runs: stopped for the copy and restarted)" : "");
    free(bs);
    return done == records && applied == records && dlq == 0 && !parked && wrc == 0 && rrc == 0
               ? 0
               : 1;
}

/* revstream replay of file as a child; prints its figures. 0 on exit 0. */
static int replay_phase(const char *bin, const char *dir, const char *file, long records)
{
    char out[160], log[160];
    snprintf(out, sizeof out, "%s/replay.out", dir);
    snprintf(log, sizeof log, "%s/replay.log", dir);
    char *argv[] = {(char *)bin, "replay",   (char *)file, "--report",
                    "balances",  "--format", "json",       NULL};
    struct rusage ru;
    double t0 = bp_now_s();
    int rc = bp_wait(bp_spawn(bin, argv, out, log), &ru);
    double t = bp_now_s() - t0;
    printf("replay: %ld events in %.2f s (%.0f events/s), exit %d, peak RSS %.1f MiB\n",
           records, t, (double)records / t, rc, (double)ru.ru_maxrss / 1024.0);
    return rc;
}

int main(int argc, char **argv)
{
    long events = 1000000, batch = 10000, rate = 0;
    double copy_at = -1; /* auto: 0.9 above RESTORE_MAX_RECORDS, else none */
    int copy_live = 0;
    const char *bin = RS_BINARY_DIR "/revstream";
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--copy-live") == 0) {
            copy_live = 1;
            i--;
        } else if (i + 1 == argc)
            break;
        else if (strcmp(argv[i], "--events") == 0)
            events = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--copy-at") == 0)
            copy_at = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--revstream") == 0)
            bin = argv[i + 1];
    }
    if (copy_at < 0)
        copy_at = events + 1 > RESTORE_MAX_RECORDS ? 0.9 : 0;
    char dir[] = "/tmp/bench_bounded_XXXXXX", path[128], file[160], json[512];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/state", dir);
    snprintf(file, sizeof file, "%s/events.jsonl", dir);

    /* the events file first, and the children (replay, worker) while this
     * process is still small: Linux carries a process's peak RSS across
     * exec, so a child spawned later would report this one's */
    if (write_events(file, 1, 0, events, 1) != 0)
        return 1;
    fflush(stdout);
    int rrc = replay_phase(bin, dir, file, events + 1);
    int wrc = rate > 0 ? worker_phase(bin, dir, file, events + 1, rate, copy_at, copy_live) : 0;
    printf("(this process before the store phase: peak RSS %.1f MiB)\n", peak_rss_mib());

    rs_state_t *st;
    rs_state_opts_t so = {path, 1, 0, RS_STATE_SYNC_OFF, 0, 0};
    rs_pstate_t *ps;
    rs_engine_t *mem;
    char err[512];
    if (rs_state_open(&st, &so, err, sizeof err) != 0 ||
        rs_pstate_load(&ps, st, 0, NULL, err, sizeof err) != 0 ||
        rs_engine_new(&mem, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    /* store: the worker's state path; the baseline engine in step */
    rs_engine_t *e = rs_pstate_engine(ps);
    apply(e, BOOKED);
    apply(mem, BOOKED);
    double t0 = bp_now_s(), t_mem = 0;
    printf("%10s %14s %18s %14s\n", "events", "record_bytes", "in_record_ids_bytes",
           "engine_heap");
    for (long i = 0; i < events; i++) {
        usage_json(json, sizeof json, i);
        apply(e, json);
        double tm = bp_now_s();
        apply(mem, json);
        t_mem += bp_now_s() - tm;
        if ((i + 1) % batch == 0 || i + 1 == events)
            commit(st, ps);
        long k = i + 1;
        if (k == 1000 || k == 10000 || k == 100000 || k == events)
            printf("%10ld %14zu %18zu %14zu\n", k, record_size(e), record_size(mem),
                   rs_engine_memory_bytes(e));
    }
    double t_store = bp_now_s() - t0 - t_mem;
    rs_engine_destroy(mem);
    printf("store: %ld events in %.2f s (%.0f events/s, batches of %ld, seen ids in "
           "RocksDB); peak RSS %.1f MiB (with the in-record baseline engine)\n",
           events, t_store, (double)events / t_store, batch, peak_rss_mib());

    /* reload (a restart): every 10th event again is a duplicate */
    rs_pstate_destroy(ps);
    t0 = bp_now_s();
    if (rs_pstate_load(&ps, st, 0, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t_load = bp_now_s() - t0;
    e = rs_pstate_engine(ps);
    long dups = 0, tried = 0;
    t0 = bp_now_s();
    for (long i = 0; i < events; i += 10, tried++) {
        usage_json(json, sizeof json, i);
        dups += apply(e, json) == RS_APPLY_DUPLICATE;
    }
    double t_dup = bp_now_s() - t0;
    printf("reload: %.3f s, engine heap %zu bytes; %ld of %ld re-sent events ignored as "
           "duplicates (%.0f lookups/s)\n",
           t_load, rs_engine_memory_bytes(e), dups, tried, (double)tried / t_dup);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return dups == tried && rrc == 0 && wrc == 0 ? 0 : 1;
}
