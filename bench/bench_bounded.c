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
 *
 * Usage: bench_bounded [--events N] [--batch N] [--revstream PATH]
 * Figures, not a test: see bench/README.md for the recorded results.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rs_codec.h"
#include "rs_pstate.h"

#ifndef RS_BINARY_DIR
#define RS_BINARY_DIR "."
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

int main(int argc, char **argv)
{
    long events = 1000000, batch = 10000;
    const char *bin = RS_BINARY_DIR "/revstream";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--events") == 0)
            events = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--batch") == 0)
            batch = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--revstream") == 0)
            bin = argv[i + 1];
    }
    char dir[] = "/tmp/bench_bounded_XXXXXX", path[128], file[160], json[512];
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/state", dir);
    snprintf(file, sizeof file, "%s/events.jsonl", dir);

    rs_state_t *st;
    rs_state_opts_t so = {path, 1, 0, RS_STATE_SYNC_OFF, 0};
    rs_pstate_t *ps;
    rs_engine_t *mem;
    char err[512];
    if (rs_state_open(&st, &so, err, sizeof err) != 0 ||
        rs_pstate_load(&ps, st, 0, NULL, err, sizeof err) != 0 ||
        rs_engine_new(&mem, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    FILE *f = fopen(file, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "%s\n", BOOKED);

    /* store: the worker's state path; the baseline engine in step */
    rs_engine_t *e = rs_pstate_engine(ps);
    apply(e, BOOKED);
    apply(mem, BOOKED);
    double t0 = now_s(), t_mem = 0;
    printf("%10s %14s %18s %14s\n", "events", "record_bytes", "in_record_ids_bytes",
           "engine_heap");
    for (long i = 0; i < events; i++) {
        usage_json(json, sizeof json, i);
        fprintf(f, "%s\n", json);
        apply(e, json);
        double tm = now_s();
        apply(mem, json);
        t_mem += now_s() - tm;
        if ((i + 1) % batch == 0 || i + 1 == events)
            commit(st, ps);
        long k = i + 1;
        if (k == 1000 || k == 10000 || k == 100000 || k == events)
            printf("%10ld %14zu %18zu %14zu\n", k, record_size(e), record_size(mem),
                   rs_engine_memory_bytes(e));
    }
    double t_store = now_s() - t0 - t_mem;
    fclose(f);
    rs_engine_destroy(mem);
    printf("store: %ld events in %.2f s (%.0f events/s, batches of %ld, seen ids in "
           "RocksDB); peak RSS %.1f MiB (with the in-record baseline engine)\n",
           events, t_store, (double)events / t_store, batch, peak_rss_mib());

    /* reload (a restart): every 10th event again is a duplicate */
    rs_pstate_destroy(ps);
    t0 = now_s();
    if (rs_pstate_load(&ps, st, 0, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t_load = now_s() - t0;
    e = rs_pstate_engine(ps);
    long dups = 0, tried = 0;
    t0 = now_s();
    for (long i = 0; i < events; i += 10, tried++) {
        usage_json(json, sizeof json, i);
        dups += apply(e, json) == RS_APPLY_DUPLICATE;
    }
    double t_dup = now_s() - t0;
    printf("reload: %.3f s, engine heap %zu bytes; %ld of %ld re-sent events ignored as "
           "duplicates (%.0f lookups/s)\n",
           t_load, rs_engine_memory_bytes(e), dups, tried, (double)tried / t_dup);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);

    /* replay: revstream replay as a child */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        execl(bin, "revstream", "replay", file, "--report", "balances", "--format", "json",
              (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    struct rusage ru;
    t0 = now_s();
    while (wait4(pid, &ws, 0, &ru) < 0)
        ;
    double t_replay = now_s() - t0;
    printf("replay: %ld events in %.2f s (%.0f events/s), exit %d, peak RSS %.1f MiB\n",
           events + 1, t_replay, (double)(events + 1) / t_replay,
           WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, (double)ru.ru_maxrss / 1024.0);

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 1;
    return dups == tried && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : 1;
}
