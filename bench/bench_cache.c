/*
 * bench_cache — the worker's state path with a bounded contract cache:
 * peak RSS and time with N contracts in the store, and the streaming
 * month-end close through the store against a raw scan of the same store.
 *
 * Usage:
 *   bench_cache build DIR N       write N contracts (partition 0) into a new
 *                                 store at DIR, through the engine (booked
 *                                 2026-01, 12 months ratable, invoiced), in
 *                                 slices of 50,000 so this too stays small
 *   bench_cache run DIR [MB [EVENTS [CHUNK]]]
 *                                 open partition 0 as the worker does
 *                                 (rs_pstate_open, a cache of MB MiB, default
 *                                 128), apply EVENTS payments (default 20,000)
 *                                 to random contracts in batches of 1,000
 *                                 (fetch, apply, stage, commit, evict), then
 *                                 the month-end close through 2026-01 in
 *                                 chunks of CHUNK (10,000), each chunk's
 *                                 contracts exported, their offsets read and
 *                                 a changelog record encoded (not produced:
 *                                 no broker) and committed; then a raw scan
 *                                 of the store (the baseline).
 *   bench_cache eager DIR [EVENTS]
 *                                 the same with the old worker's way, as the
 *                                 baseline: load the whole partition
 *                                 (rs_pstate_load), apply the same events,
 *                                 close in memory, stage and commit every
 *                                 contract in one write.
 *
 * Prints figures; run each step in its own process (peak RSS is the
 * process's, ru_maxrss). Not a test. Ownership: everything is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "rs_changelog.h"
#include "rs_codec.h"
#include "rs_pstate.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread (the close's own work, whatever else
 * runs on the machine; RocksDB's background threads are not counted) */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long peak_rss_mib(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024;
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "bench_cache: %s: %s\n", what, err);
    exit(1);
}

static void apply_json(rs_engine_t *e, const char *json)
{
    rs_event_t ev;
    char err[512];
    rs_event_init(&ev);
    if (rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err) != 0)
        die("decode", err);
    int rc = rs_engine_apply(e, &ev, err, sizeof err);
    if (rc != RS_APPLY_OK && rc != RS_APPLY_PENDING && rc != RS_APPLY_DUPLICATE)
        die("apply", err);
    rs_event_clear(&ev);
}

static rs_state_t *open_store(const char *dir, int create)
{
    rs_state_opts_t o = {0};
    rs_state_t *st;
    char err[512];
    o.path = dir;
    o.create_if_missing = create;
    o.sync = RS_STATE_SYNC_OFF;
    if (rs_state_open(&st, &o, err, sizeof err) != 0)
        die("open", err);
    return st;
}

static const char *const topics[4] = {"contracts", "invoices", "payments", "usage"};

/* The build's seen store: every id is new (the worker's records keep no
 * event ids: they go to the store's seen keys, as here). */
static int no_seen(void *opaque, const char *contract_id, uint64_t id_hash,
                   uint64_t *content_hash)
{
    (void)opaque, (void)contract_id, (void)id_hash, (void)content_hash;
    return 1; /* not found: new */
}

static int build(const char *dir, long n)
{
    rs_state_t *st = open_store(dir, 1);
    char err[512], json[1024];
    double t0 = now_s();
    for (long lo = 0; lo < n; lo += 50000) {
        rs_engine_t *e;
        rs_state_batch_t *b;
        const char *const *ids;
        if (rs_engine_new(&e, NULL, err, sizeof err) != 0 ||
            rs_state_batch_new(&b, err, sizeof err) != 0)
            die("new", err);
        rs_engine_set_seen_store(e, no_seen, NULL);
        for (long i = lo; i < n && i < lo + 50000; i++) {
            int d = 1 + (int)(i % 28);
            snprintf(json, sizeof json,
                     "{\"event_id\":\"b%ld\",\"type\":\"contract.booked\",\"contract_id\":"
                     "\"C%08ld\",\"occurred_at\":\"2026-01-%02dT00:00:00Z\",\"customer_id\":"
                     "\"K%ld\",\"currency\":\"USD\",\"booked_on\":\"2026-01-%02d\",\"lines\":[{"
                     "\"line_id\":\"L1\",\"product\":\"P%ld\",\"recognition\":\"ratable_"
                     "monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
                     "\"%ld.00\"}]}",
                     i, i, d, i % 5000, d, i % 20, 1200 + i % 1000);
            apply_json(e, json);
            snprintf(json, sizeof json,
                     "{\"event_id\":\"i%ld\",\"type\":\"invoice.issued\",\"contract_id\":"
                     "\"C%08ld\",\"occurred_at\":\"2026-01-%02dT01:00:00Z\",\"invoice_id\":"
                     "\"I%ld\",\"issued_on\":\"2026-01-%02d\",\"lines\":[{\"line_id\":\"L1\","
                     "\"amount\":\"%ld.00\"}]}",
                     i, i, d, i, d, 1200 + i % 1000);
            apply_json(e, json);
        }
        size_t nc = rs_engine_take_changed(e, &ids);
        for (size_t k = 0; k < nc; k++) {
            void *blob;
            size_t len;
            if (rs_engine_export_contract(e, ids[k], &blob, &len, err, sizeof err) != 0)
                die("export", err);
            rs_state_batch_put_contract(b, 0, ids[k], blob, len);
            rs_state_batch_put_contract_offset(b, ids[k], topics[0], lo + (long)k);
            rs_state_batch_put_contract_offset(b, ids[k], topics[1], lo + (long)k);
            free(blob);
        }
        const rs_seen_id_t *seen;
        size_t ns = rs_engine_take_seen(e, &seen);
        for (size_t k = 0; k < ns; k++)
            rs_state_batch_put_seen(b, 0, seen[k].contract_id, seen[k].id_hash,
                                    seen[k].content_hash, seen[k].period);
        if (lo == 0) { /* the engine's meta (horizon, closed periods) */
            void *m;
            size_t mlen;
            if (rs_engine_export_meta(e, &m, &mlen, err, sizeof err) != 0)
                die("meta", err);
            rs_state_batch_put_meta(b, "engine/0", m, mlen);
            free(m);
        }
        if (rs_state_batch_commit(st, b, err, sizeof err) != 0)
            die("commit", err);
        rs_state_batch_destroy(b);
        rs_engine_destroy(e);
    }
    printf("build contracts=%ld seconds=%.1f peak_rss_mib=%ld\n", n, now_s() - t0,
           peak_rss_mib());
    rs_state_destroy(st);
    return 0;
}

typedef struct run {
    rs_state_t *st;
    rs_engine_t *e;
    uint64_t entries, chunked, views, written;
} run_t;

static void count_entry(void *opaque, const rs_entry_t *en)
{
    (void)en;
    ((run_t *)opaque)->entries++;
}

/* What the worker's close hook does without a broker: the line views of
 * each contract of the chunk (from which it produces balance snapshots);
 * for the records written back, their offsets read and their changelog
 * records encoded. */
static int chunk_hook(void *opaque, const char *const *ids, void *const *blobs,
                      const size_t *lens, size_t n)
{
    run_t *r = opaque;
    rs_line_view_t v[8];
    char err[512];
    const char **wid = malloc((n + 1) * sizeof *wid);
    int64_t *offs = malloc((n + 1) * 4 * sizeof *offs);
    size_t nw = 0;
    int rc = -1;
    if (wid == NULL || offs == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        r->views += rs_engine_contract_lines(r->e, ids[i], v, 8);
        if (blobs[i] != NULL)
            wid[nw++] = ids[i];
    }
    if (nw > 0 &&
        rs_state_get_contract_offsets(r->st, wid, nw, topics, 4, offs, err, sizeof err) != 0)
        goto out;
    for (size_t i = 0, k = 0; i < n; i++) {
        void *cl;
        size_t cllen;
        if (blobs[i] == NULL)
            continue;
        if (rs_changelog_encode_contract(offs + 4 * k++, 0, blobs[i], lens[i], &cl, &cllen) !=
            0)
            goto out;
        free(cl);
    }
    r->written += nw;
    r->chunked += n;
    rc = 0;
out:
    free(wid);
    free(offs);
    return rc;
}

typedef struct scan {
    uint64_t n, bytes;
} scan_t;

static int count_scan(void *opaque, const char *id, const void *blob, size_t len)
{
    scan_t *s = opaque;
    (void)id;
    (void)blob;
    s->n++;
    s->bytes += len;
    return 0;
}

/* mb < 0: the baseline, the old worker's way — the whole partition loaded
 * (rs_pstate_load), the close in memory, every changed contract staged and
 * committed in one write. */
static int run(const char *dir, long mb, long events, long chunk, int closes, int max_lag)
{
    int eager = mb < 0;
    run_t r = {0};
    char err[768], json[512];
    rs_pstate_t *ps;
    r.st = open_store(dir, 0);
    double t0 = now_s();
    if (eager ? rs_pstate_load(&ps, r.st, 0, NULL, err, sizeof err) != 0
              : rs_pstate_open(&ps, r.st, 0, NULL, (size_t)mb << 20, err, sizeof err) != 0)
        die("open partition", err);
    rs_pstate_close_hooks_t h = {getenv("BENCH_CACHE_NO_HOOK") ? NULL : chunk_hook, &r,
                                 (size_t)chunk, 0};
    if (!eager) {
        rs_pstate_set_close_hooks(ps, &h);
        rs_pstate_set_max_lag(ps, max_lag);
    }
    rs_engine_t *e = rs_pstate_engine(ps);
    r.e = e;
    rs_engine_set_sink(e, count_entry, &r);
    printf("%s seconds=%.3f contracts_loaded=%zu peak_rss_mib=%ld\n",
           eager ? "load (baseline: the whole partition)" : "open", now_s() - t0,
           rs_pstate_loaded_contracts(ps), peak_rss_mib());
    /* how many contracts: a raw scan (also the close's baseline, below) */
    scan_t sc = {0, 0};
    t0 = now_s();
    if (rs_state_foreach_contract(r.st, 0, count_scan, &sc, err, sizeof err) != 0)
        die("scan", err);
    double scan1 = now_s() - t0;
    long ncon = (long)sc.n;
    /* events: payments to random contracts, batches of 1,000 */
    uint64_t seed = 12345;
    t0 = now_s();
    for (long done = 0; done < events;) {
        rs_state_batch_t *b;
        if (rs_state_batch_new(&b, err, sizeof err) != 0)
            die("batch", err);
        for (int k = 0; k < 1000 && done < events; k++, done++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            long i = (long)((seed >> 33) % (uint64_t)(ncon > 0 ? ncon : 1));
            char id[32];
            snprintf(id, sizeof id, "C%08ld", i);
            if (!eager && rs_pstate_fetch(ps, id, err, sizeof err) != 0)
                die("fetch", err);
            snprintf(json, sizeof json,
                     "{\"event_id\":\"p%ld\",\"type\":\"payment.received\",\"contract_id\":"
                     "\"%s\",\"occurred_at\":\"2026-01-28T02:00:00Z\",\"payment_id\":\"P%ld\","
                     "\"invoice_id\":\"I%ld\",\"amount\":\"1.00\",\"received_on\":\"2026-01-"
                     "28\"}",
                     done, id, done, i);
            apply_json(e, json);
        }
        if (rs_pstate_stage(ps, b, err, sizeof err) != 0 ||
            rs_state_batch_commit(r.st, b, err, sizeof err) != 0)
            die("commit", err);
        rs_state_batch_destroy(b);
        if (!eager)
            rs_pstate_evict(ps);
    }
    double tev = now_s() - t0;
    rs_pstate_cache_stats_t cs;
    rs_pstate_cache_stats(ps, &cs);
    printf("events n=%ld seconds=%.2f events_per_s=%.0f loads=%llu evicted=%llu cached=%zu "
           "cached_mib=%.1f peak_rss_mib=%ld\n",
           events, tev, events / tev, (unsigned long long)cs.loads,
           (unsigned long long)cs.evicted, cs.contracts, (double)cs.bytes / 1048576.0,
           peak_rss_mib());
    /* the month-end closes through the store: January (every record is at
     * its own horizon), then February and on (after lazy closes, every
     * record untouched since is behind and caught up first; the close that
     * would leave it RS_PSTATE_MAX_LAG behind writes it back) */
    double nc = 0, scan2 = 0, sum_s = 0, sum_cpu = 0;
    for (int k = 0; k < closes; k++) {
        uint64_t entries0 = r.entries, walked0 = cs.walked, chunked0 = r.chunked,
                 chunks0 = cs.chunks, caught0 = cs.caught_up, written0 = cs.written;
        t0 = now_s();
        double c0 = cpu_s();
        if (rs_engine_advance(e, 2026 * 12 + k) != 0)
            die("close", rs_pstate_close_error(ps));
        double twalk = now_s() - t0;
        rs_state_batch_t *b;
        if (rs_state_batch_new(&b, err, sizeof err) != 0 ||
            rs_pstate_stage(ps, b, err, sizeof err) != 0 ||
            rs_state_batch_commit(r.st, b, err, sizeof err) != 0)
            die("commit", err);
        rs_state_batch_destroy(b);
        if (!eager)
            rs_pstate_evict(ps);
        double tclose = now_s() - t0, cclose = cpu_s() - c0;
        rs_pstate_cache_stats(ps, &cs);
        /* baseline: a raw scan of the same store, right after */
        sc.n = sc.bytes = 0;
        t0 = now_s();
        c0 = cpu_s();
        if (rs_state_foreach_contract(r.st, 0, count_scan, &sc, err, sizeof err) != 0)
            die("scan", err);
        scan2 = now_s() - t0;
        double cscan = cpu_s() - c0;
        nc = (double)sc.n;
        sum_s += tclose;
        sum_cpu += cclose;
        printf("close%d through=2026-%02d contracts=%.0f walked=%llu caught_up=%llu "
               "written=%llu chunked=%llu chunks=%llu entries=%llu seconds=%.2f (walk %.2f) "
               "cpu_s=%.2f contracts_per_s=%.0f per_cpu_s=%.0f\n",
               k + 1, k + 1, nc, (unsigned long long)(cs.walked - walked0),
               (unsigned long long)(cs.caught_up - caught0),
               (unsigned long long)(cs.written - written0),
               (unsigned long long)(r.chunked - chunked0),
               (unsigned long long)(cs.chunks - chunks0),
               (unsigned long long)(r.entries - entries0), tclose, twalk, cclose, nc / tclose,
               nc / cclose);
        printf("baseline%d raw_scan contracts=%.0f seconds=%.2f (before the events %.2f) "
               "cpu_s=%.2f contracts_per_s=%.0f per_cpu_s=%.0f blob_bytes=%llu "
               "ratio_close_to_scan=%.3f cpu_ratio=%.3f\n",
               k + 1, nc, scan2, scan1, cscan, nc / scan2, nc / cscan,
               (unsigned long long)sc.bytes, (nc / tclose) / (nc / scan2), cscan / cclose);
    }
    printf("closes n=%d mean_contracts_per_s=%.0f mean_per_cpu_s=%.0f\n", closes,
           nc * closes / sum_s, nc * closes / sum_cpu);
    printf("peak_rss_mib=%ld cache_mib=%ld max_lag=%d%s\n", peak_rss_mib(), mb, max_lag,
           eager ? " (baseline: no cache, the whole partition in memory)" : "");
    rs_pstate_destroy(ps);
    rs_state_destroy(r.st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "eager") == 0)
        return run(argv[2], -1, argc > 3 ? atol(argv[3]) : 20000, 0,
                   argc > 4 ? atoi(argv[4]) : 2, 1);
    if (argc >= 4 && strcmp(argv[1], "build") == 0)
        return build(argv[2], atol(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argc > 3 ? atol(argv[3]) : 128, argc > 4 ? atol(argv[4]) : 20000,
                   argc > 5 ? atol(argv[5]) : 10000, argc > 6 ? atoi(argv[6]) : 2,
                   argc > 7 ? atoi(argv[7]) : RS_PSTATE_MAX_LAG);
    fprintf(stderr, "usage: bench_cache build DIR N | bench_cache run DIR [MB [EVENTS [CHUNK "
                    "[CLOSES [MAX_LAG]]]]] | bench_cache eager DIR [EVENTS [CLOSES]]\n");
    return 2;
}
