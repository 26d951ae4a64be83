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
 *
 * Usage: bench_bounded [--events N] [--batch N] [--rate R] [--revstream PATH]
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
               "changelog partition)\n",
               records);
        return 0;
    }
    snprintf(cfg, sizeof cfg, "%s/restore.properties", dir);
    snprintf(log, sizeof log, "%s/restore.log", dir);
    snprintf(state, sizeof state, "%s/restore-state", dir);
    FILE *f = fopen(cfg, "w");
    if (f == NULL)
        return 1;
    fprintf(f,
            "kafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=bench-bounded-restore\n"
            "input.format=json\noutput.format=json\nstate.sync=false\nexit.when.idle=true\n"
            "log.format=text\n"
            "kafka.session.timeout.ms=6000\nkafka.heartbeat.interval.ms=1000\n",
            bs, state);
    fclose(f);
    char *argv[] = {(char *)bin, "worker", "--config", cfg, NULL};
    struct rusage ru;
    int rc = bp_wait(bp_spawn(bin, argv, "/dev/null", log), &ru);
    char *text = bp_slurp(log);
    long n = log_sum(text, "worker: restored ", "records"),
         ms = log_sum(text, "worker: restored ", "ms"),
         applied = log_sum(text, "worker: batch ", "applied");
    free(text);
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
           ms > 0 ? (double)records * 1000.0 / (double)ms : 0.0, applied, rc,
           (double)ru.ru_maxrss / 1024.0, rec);
    return rc == 0 && n > 0 && applied == 0 && rec > 0 ? 0 : 1;
}

/* The worker phase (see the file comment). 0 on success. */
static int worker_phase(const char *bin, const char *dir, const char *file, long records,
                        long rate)
{
    char bsf[160], blog[160], wcfg[160], wlog[160], plog[160], state[160], rates[32];
    snprintf(bsf, sizeof bsf, "%s/bootstrap", dir);
    snprintf(blog, sizeof blog, "%s/broker.log", dir);
    snprintf(wcfg, sizeof wcfg, "%s/worker.properties", dir);
    snprintf(wlog, sizeof wlog, "%s/worker.log", dir);
    snprintf(plog, sizeof plog, "%s/produce.log", dir);
    snprintf(state, sizeof state, "%s/worker-state", dir);
    snprintf(rates, sizeof rates, "%ld", rate);
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
    FILE *f = fopen(wcfg, "w");
    if (f == NULL)
        return 1;
    fprintf(f,
            "kafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=bench-bounded\n"
            "input.format=json\noutput.format=json\nstate.sync=false\nlog.format=text\n"
            "kafka.session.timeout.ms=6000\nkafka.heartbeat.interval.ms=1000\n",
            bs, state);
    fclose(f);
    char *wargv[] = {(char *)bin, "worker", "--config", wcfg, NULL};
    pid_t worker = bp_spawn(bin, wargv, "/dev/null", wlog);
    char *pargv[] = {(char *)bin, "produce", "--bootstrap", bs,           "--format",
                     "json",      "--rate",  rates,         (char *)file, NULL};
    /* the broker keeps ~5 MB per partition: produce once the worker reads */
    for (int i = 0; i < 600; i++) {
        char *log = bp_slurp(wlog);
        int ready = log != NULL && strstr(log, "worker: assigned ") != NULL;
        free(log);
        if (ready)
            break;
        usleep(100000);
    }
    double t0 = bp_now_s();
    pid_t producer = bp_spawn(bin, pargv, "/dev/null", plog);
    int prc = bp_wait(producer, &(struct rusage){0});
    double t_prod = bp_now_s() - t0;
    long done = 0, last = -1;
    for (int idle = 0; idle < 30 && done < records;) { /* until 30 s without progress */
        char *log = bp_slurp(wlog);
        done = log_sum(log, "worker: batch ", "records");
        free(log);
        idle = done == last ? idle + 1 : 0;
        last = done;
        if (done < records)
            sleep(1);
    }
    double t_work = bp_now_s() - t0;
    kill(worker, SIGTERM);
    struct rusage ru;
    int wrc = bp_wait(worker, &ru);
    int rrc = restore_phase(bin, dir, bs, records);
    kill(broker, SIGTERM);
    bp_wait(broker, &(struct rusage){0});
    char *log = bp_slurp(wlog);
    long applied = log_sum(log, "worker: batch ", "applied"),
         dups = log_sum(log, "worker: batch ", "duplicates"),
         dlq = log_sum(log, "worker: batch ", "dlq");
    int parked = log != NULL && strstr(log, "partition_parked") != NULL;
    free(log);

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
           "peak RSS %.1f MiB, record %zu bytes\n",
           done, records, t_work, (double)done / t_work, rate, t_prod, prc, applied, dups, dlq,
           parked ? "yes" : "no", wrc, (double)ru.ru_maxrss / 1024.0, rec);
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
    const char *bin = RS_BINARY_DIR "/revstream";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--events") == 0)
            events = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--rate") == 0)
            rate = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--revstream") == 0)
            bin = argv[i + 1];
    }
    char dir[] = "/tmp/bench_bounded_XXXXXX", path[128], file[160], json[512];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/state", dir);
    snprintf(file, sizeof file, "%s/events.jsonl", dir);

    /* the events file first, and the children (replay, worker) while this
     * process is still small: Linux carries a process's peak RSS across
     * exec, so a child spawned later would report this one's */
    FILE *f = fopen(file, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "%s\n", BOOKED);
    for (long i = 0; i < events; i++) {
        usage_json(json, sizeof json, i);
        fprintf(f, "%s\n", json);
    }
    if (fclose(f) != 0)
        return 1;
    fflush(stdout);
    int rrc = replay_phase(bin, dir, file, events + 1);
    int wrc = rate > 0 ? worker_phase(bin, dir, file, events + 1, rate) : 0;
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
