/*
 * bench_cache — the worker's state path with a bounded contract cache:
 * peak RSS and time with N contracts in the store, and the streaming
 * month-end close through the store against a raw scan of the same store.
 *
 * Usage:
 *   bench_cache build DIR N [P]   write N contracts into a new store at DIR,
 *                                 through the engine (booked 2026-01, 12
 *                                 months ratable, invoiced), in slices of
 *                                 50,000 so this too stays small; contract
 *                                 i goes to partition i % P (default 1)
 *   bench_cache run DIR [MB [EVENTS [CHUNK [CLOSES [MAX_LAG [THREADS]]]]]]
 *                                 open every partition of the store as the
 *                                 worker does (rs_pstate_open, MB MiB of
 *                                 cache in all, default 128, split evenly),
 *                                 apply EVENTS payments (default 20,000) to
 *                                 random contracts in batches of 1,000
 *                                 (fetch, apply, stage, commit, evict), then
 *                                 CLOSES month-end closes, each partition's
 *                                 in chunks of CHUNK (10,000) through the
 *                                 close hook (what the worker's hook does
 *                                 minus the broker), the partitions closed
 *                                 on THREADS threads (default 1) as the
 *                                 worker's apply lanes close theirs: each
 *                                 thread takes the next partition; then a
 *                                 raw scan of the store (the baseline), on
 *                                 one thread and on THREADS threads. Built
 *                                 with jemalloc, it prints after the events
 *                                 the cache's count against jemalloc's
 *                                 stats.allocated / active (the `heap`
 *                                 line: what the count is calibrated by).
 *   bench_cache eager DIR [EVENTS [CLOSES [THREADS]]]
 *                                 the same with the old worker's way, as the
 *                                 baseline: load the whole partition
 *                                 (rs_pstate_load), apply the same events,
 *                                 close in memory, stage and commit every
 *                                 contract in one write.
 *
 * Prints figures; run each step in its own process (peak RSS is the
 * process's, ru_maxrss). Not a test. Ownership: everything is freed.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "rs_changelog.h"
#include "rs_codec.h"
#include "rs_pstate.h"

#ifndef BENCH_ALLOCATOR
#define BENCH_ALLOCATOR "libc"
#endif

/* The heap as the allocator counts it, to compare with the cache's
 * estimate (rs_engine_contract_bytes): jemalloc's stats.allocated (bytes
 * handed out, in size classes), stats.active (the pages those live in) and
 * stats.resident. All zero without jemalloc. */
typedef struct heap {
    size_t allocated, active, resident;
} heap_t;

#ifdef BENCH_JEMALLOC
#include <jemalloc/jemalloc.h>
static heap_t heap_now(void)
{
    heap_t h = {0, 0, 0};
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    mallctl("epoch", &epoch, &sz, &epoch, sz);
    sz = sizeof(size_t);
    mallctl("stats.allocated", &h.allocated, &sz, NULL, 0);
    mallctl("stats.active", &h.active, &sz, NULL, 0);
    mallctl("stats.resident", &h.resident, &sz, NULL, 0);
    return h;
}
#else
static heap_t heap_now(void)
{
    heap_t h = {0, 0, 0};
    return h;
}
#endif

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

/* CPU seconds of the whole process (RocksDB's background threads too) */
static double proc_cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
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

/* Book and invoice contract i (its two events) in e. */
static void book_contract(rs_engine_t *e, long i)
{
    char json[1024];
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

/* Stage what e holds (its contracts, their offsets, seen ids; its meta if
 * `meta`) into b as partition `part`. `off` numbers the offsets. */
static void stage_built(rs_engine_t *e, rs_state_batch_t *b, int32_t part, long off, int meta)
{
    char err[512], key[32];
    const char *const *ids;
    size_t nc = rs_engine_take_changed(e, &ids);
    for (size_t k = 0; k < nc; k++) {
        void *blob;
        size_t len;
        if (rs_engine_export_contract(e, ids[k], &blob, &len, err, sizeof err) != 0)
            die("export", err);
        rs_state_batch_put_contract(b, part, ids[k], blob, len);
        rs_state_batch_put_contract_offset(b, ids[k], topics[0], off + (long)k);
        rs_state_batch_put_contract_offset(b, ids[k], topics[1], off + (long)k);
        free(blob);
    }
    const rs_seen_id_t *seen;
    size_t ns = rs_engine_take_seen(e, &seen);
    for (size_t k = 0; k < ns; k++)
        rs_state_batch_put_seen(b, part, seen[k].contract_id, seen[k].id_hash,
                                seen[k].content_hash, seen[k].period);
    if (meta) { /* the engine's meta (horizon, closed periods) */
        void *m;
        size_t mlen;
        if (rs_engine_export_meta(e, &m, &mlen, err, sizeof err) != 0)
            die("meta", err);
        snprintf(key, sizeof key, "engine/%d", (int)part);
        rs_state_batch_put_meta(b, key, m, mlen);
        free(m);
    }
}

static int build(const char *dir, long n, int nparts)
{
    rs_state_t *st = open_store(dir, 1);
    char err[512];
    double t0 = now_s();
    for (long lo = 0; lo < n; lo += 50000) {
        rs_state_batch_t *b;
        if (rs_state_batch_new(&b, err, sizeof err) != 0)
            die("new", err);
        for (int p = 0; p < nparts; p++) {
            rs_engine_t *e;
            if (rs_engine_new(&e, NULL, err, sizeof err) != 0)
                die("new", err);
            rs_engine_set_seen_store(e, no_seen, NULL);
            for (long i = lo + (p - lo % nparts + nparts) % nparts; i < n && i < lo + 50000;
                 i += nparts) /* contract i is in partition i % nparts */
                book_contract(e, i);
            stage_built(e, b, p, lo, lo == 0);
            rs_engine_destroy(e);
        }
        if (rs_state_batch_commit(st, b, err, sizeof err) != 0)
            die("commit", err);
        rs_state_batch_destroy(b);
    }
    printf("build contracts=%ld partitions=%d seconds=%.1f peak_rss_mib=%ld\n", n, nparts,
           now_s() - t0, peak_rss_mib());
    rs_state_destroy(st);
    return 0;
}

/* One partition of the run: its state, engine and counts (one thread at a
 * time uses it, as one apply lane uses a partition). */
typedef struct run {
    rs_state_t *st;
    rs_pstate_t *ps;
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

/* Work over the partitions on several threads, each taking the next
 * partition until none is left: what the worker's apply lanes do with a
 * batch's sub-batches (rs_worker_batch.c apply_parallel). */
typedef struct pjob {
    run_t *parts;
    size_t np;
    int scan;            /* 1: a raw scan of each partition; 0: its close */
    rs_period_t through; /* the close's new horizon */
    atomic_size_t next;
    atomic_int failed;
    char err[768];
} pjob_t;

typedef struct pthr {
    pjob_t *j;
    pthread_t th;
    double cpu;   /* this thread's CPU seconds in the job */
    long waits;   /* its voluntary context switches: waits (a lock, I/O) */
    long preempt; /* its involuntary ones: the CPU given to another */
    scan_t sc;
} pthr_t;

static void *pjob_thread(void *arg)
{
    pthr_t *t = arg;
    pjob_t *j = t->j;
    struct rusage u0, u1;
    getrusage(RUSAGE_THREAD, &u0);
    double c0 = cpu_s();
    for (;;) {
        size_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->np || atomic_load(&j->failed))
            break;
        run_t *r = &j->parts[i];
        char err[768];
        int rc = j->scan ? rs_state_foreach_contract(r->st, rs_pstate_partition(r->ps),
                                                     count_scan, &t->sc, err, sizeof err)
                         : rs_engine_advance(r->e, j->through);
        if (rc != 0) {
            if (atomic_exchange(&j->failed, 1) == 0)
                snprintf(j->err, sizeof j->err, "%s",
                         j->scan ? err
                         : rs_pstate_close_error(r->ps)[0] != '\0'
                             ? rs_pstate_close_error(r->ps)
                             : "out of memory");
            break;
        }
    }
    t->cpu = cpu_s() - c0;
    getrusage(RUSAGE_THREAD, &u1);
    t->waits = u1.ru_nvcsw - u0.ru_nvcsw;
    t->preempt = u1.ru_nivcsw - u0.ru_nivcsw;
    return NULL;
}

/* Run j on nthreads threads (this one and nthreads - 1 more). Returns the
 * threads' CPU seconds in all; *sc (may be NULL) gets the scans' sums,
 * *waits and *preempt (may be NULL) the threads' voluntary and
 * involuntary context switches. */
static double pjob_run(pjob_t *j, int nthreads, scan_t *sc, long *waits, long *preempt)
{
    pthr_t t[64];
    int started = 1;
    if (nthreads > 64)
        nthreads = 64;
    atomic_init(&j->next, 0);
    atomic_init(&j->failed, 0);
    memset(t, 0, sizeof t);
    for (int i = 0; i < nthreads; i++)
        t[i].j = j;
    for (int i = 1; i < nthreads; i++, started++)
        if (pthread_create(&t[i].th, NULL, pjob_thread, &t[i]) != 0)
            die("thread", "cannot start");
    pjob_thread(&t[0]);
    double cpu = 0;
    for (int i = 0; i < started; i++) {
        if (i > 0)
            pthread_join(t[i].th, NULL);
        cpu += t[i].cpu;
        if (waits != NULL)
            *waits += t[i].waits;
        if (preempt != NULL)
            *preempt += t[i].preempt;
        if (sc != NULL) {
            sc->n += t[i].sc.n;
            sc->bytes += t[i].sc.bytes;
        }
    }
    if (atomic_load(&j->failed))
        die(j->scan ? "scan" : "close", j->err);
    return cpu;
}

/* Stage every partition into one write and commit it; then the caches
 * give back what is over their bound (the worker's batch end). */
static void commit_all(run_t *parts, size_t np, int eager)
{
    rs_state_batch_t *b;
    char err[768];
    if (rs_state_batch_new(&b, err, sizeof err) != 0)
        die("batch", err);
    for (size_t p = 0; p < np; p++)
        if (rs_pstate_stage(parts[p].ps, b, err, sizeof err) != 0)
            die("stage", err);
    if (rs_state_batch_commit(parts[0].st, b, err, sizeof err) != 0)
        die("commit", err);
    rs_state_batch_destroy(b);
    for (size_t p = 0; !eager && p < np; p++)
        rs_pstate_evict(parts[p].ps);
}

static void sum_stats(const run_t *parts, size_t np, rs_pstate_cache_stats_t *cs, run_t *sum)
{
    memset(cs, 0, sizeof *cs);
    memset(sum, 0, sizeof *sum);
    for (size_t p = 0; p < np; p++) {
        rs_pstate_cache_stats_add(cs, parts[p].ps);
        sum->entries += parts[p].entries;
        sum->chunked += parts[p].chunked;
    }
}

/* A raw scan of every partition on nthreads threads: *secs, *cpu. */
static scan_t raw_scan(run_t *parts, size_t np, int nthreads, double *secs, double *cpu)
{
    pjob_t j = {.parts = parts, .np = np, .scan = 1};
    scan_t sc = {0, 0};
    double t0 = now_s();
    *cpu = pjob_run(&j, nthreads, &sc, NULL, NULL);
    *secs = now_s() - t0;
    return sc;
}

/* mb < 0: the baseline, the old worker's way — every partition loaded
 * whole (rs_pstate_load), the close in memory, every changed contract
 * staged and committed in one write. Contract i is in partition i % P of
 * the store's P partitions (bench_cache build). */
static int run(const char *dir, long mb, long events, long chunk, int closes, int max_lag,
               int nthreads)
{
    int eager = mb < 0;
    char err[768], json[512];
    int32_t *pn = NULL;
    size_t np = 0;
    rs_state_t *st = open_store(dir, 0);
    if (rs_state_partitions(st, &pn, &np, err, sizeof err) != 0 || np == 0)
        die("partitions", np == 0 ? "the store has none" : err);
    run_t *parts = calloc(np, sizeof *parts);
    if (parts == NULL)
        die("run", "out of memory");
    double t0 = now_s();
    size_t loaded = 0;
    for (size_t p = 0; p < np; p++) {
        run_t *r = &parts[p];
        r->st = st;
        if (eager ? rs_pstate_load(&r->ps, st, pn[p], NULL, err, sizeof err) != 0
                  : rs_pstate_open(&r->ps, st, pn[p], NULL, ((size_t)mb << 20) / np, err,
                                   sizeof err) != 0)
            die("open partition", err);
        rs_pstate_close_hooks_t h = {getenv("BENCH_CACHE_NO_HOOK") ? NULL : chunk_hook, r,
                                     (size_t)chunk, 0};
        if (!eager) {
            rs_pstate_set_close_hooks(r->ps, &h);
            rs_pstate_set_max_lag(r->ps, max_lag);
        }
        r->e = rs_pstate_engine(r->ps);
        rs_engine_set_sink(r->e, count_entry, r);
        loaded += rs_pstate_loaded_contracts(r->ps);
    }
    printf("%s partitions=%zu threads=%d seconds=%.3f contracts_loaded=%zu peak_rss_mib=%ld\n",
           eager ? "load (baseline: the whole partition)" : "open", np, nthreads, now_s() - t0,
           loaded, peak_rss_mib());
    /* how many contracts: a raw scan (also the close's baseline, below) */
    double scan1, cscan;
    scan_t sc = raw_scan(parts, np, 1, &scan1, &cscan);
    long ncon = (long)sc.n;
    /* the heap before any contract is in memory (the block cache filled by
     * the scan), less RocksDB's memtables, which the events' commits grow */
    rs_state_props_t pr0, pr1;
    rs_state_get_props(st, &pr0);
    heap_t h0 = heap_now();
    /* events: payments to random contracts, batches of 1,000 */
    uint64_t seed = 12345;
    t0 = now_s();
    for (long done = 0; done < events;) {
        for (int k = 0; k < 1000 && done < events; k++, done++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            long i = (long)((seed >> 33) % (uint64_t)(ncon > 0 ? ncon : 1));
            run_t *r = &parts[(size_t)i % np];
            char id[32];
            snprintf(id, sizeof id, "C%08ld", i);
            if (!eager && rs_pstate_fetch(r->ps, id, err, sizeof err) != 0)
                die("fetch", err);
            snprintf(json, sizeof json,
                     "{\"event_id\":\"p%ld\",\"type\":\"payment.received\",\"contract_id\":"
                     "\"%s\",\"occurred_at\":\"2026-01-28T02:00:00Z\",\"payment_id\":\"P%ld\","
                     "\"invoice_id\":\"I%ld\",\"amount\":\"1.00\",\"received_on\":\"2026-01-"
                     "28\"}",
                     done, id, done, i);
            apply_json(r->e, json);
        }
        commit_all(parts, np, eager);
    }
    double tev = now_s() - t0;
    rs_pstate_cache_stats_t cs;
    run_t sum;
    sum_stats(parts, np, &cs, &sum);
    printf("events n=%ld seconds=%.2f events_per_s=%.0f loads=%llu evicted=%llu cached=%zu "
           "cached_mib=%.1f peak_rss_mib=%ld\n",
           events, tev, events / tev, (unsigned long long)cs.loads,
           (unsigned long long)cs.evicted, cs.contracts, (double)cs.bytes / 1048576.0,
           peak_rss_mib());
    /* the cache's estimate against the allocator's count of the same heap
     * (bench/README.md, "An honest cache bound") */
    rs_state_get_props(st, &pr1);
    heap_t h1 = heap_now();
    if (h1.allocated > 0 && cs.contracts > 0) {
        double mem = (double)(pr1.memtable_bytes - pr0.memtable_bytes);
        double al = (double)h1.allocated - (double)h0.allocated - mem;
        double ac = (double)h1.active - (double)h0.active - mem;
        printf("heap contracts=%zu estimate_mib=%.1f allocated_mib=%.1f active_mib=%.1f "
               "resident_mib=%.1f per_contract estimate=%.0f allocated=%.0f active=%.0f "
               "ratio allocated/estimate=%.3f active/estimate=%.3f\n",
               cs.contracts, (double)cs.bytes / 1048576.0, al / 1048576.0, ac / 1048576.0,
               (double)h1.resident / 1048576.0, (double)cs.bytes / (double)cs.contracts,
               al / (double)cs.contracts, ac / (double)cs.contracts, al / (double)cs.bytes,
               ac / (double)cs.bytes);
    }
    /* the month-end closes through the store: January (every record is at
     * its own horizon), then February and on (after lazy closes, every
     * record untouched since is behind and caught up first; the close that
     * would leave it RS_PSTATE_MAX_LAG behind writes it back) */
    double nc = 0, sum_s = 0, sum_cpu = 0;
    for (int k = 0; k < closes; k++) {
        rs_pstate_cache_stats_t cs0 = cs;
        run_t sum0 = sum;
        pjob_t j = {.parts = parts, .np = np, .through = 2026 * 12 + k};
        t0 = now_s();
        long waits = 0, preempt = 0;
        double p0 = proc_cpu_s();
        double ccl = pjob_run(&j, nthreads, NULL, &waits, &preempt);
        double pcl = proc_cpu_s() - p0;
        double twalk = now_s() - t0, c0 = cpu_s();
        commit_all(parts, np, eager);
        double tclose = now_s() - t0, cclose = ccl + cpu_s() - c0;
        sum_stats(parts, np, &cs, &sum);
        /* baseline: a raw scan of the same store, right after, on one
         * thread and on as many as the close */
        double scan2, scan_t2 = 0, cscan_t = 0;
        sc = raw_scan(parts, np, 1, &scan2, &cscan);
        if (nthreads > 1)
            (void)raw_scan(parts, np, nthreads, &scan_t2, &cscan_t);
        nc = (double)sc.n;
        sum_s += tclose;
        sum_cpu += cclose;
        printf("close%d through=2026-%02d partitions=%zu threads=%d contracts=%.0f walked=%llu "
               "caught_up=%llu written=%llu chunked=%llu chunks=%llu entries=%llu "
               "seconds=%.2f (walk %.2f) cpu_s=%.2f contracts_per_s=%.0f per_cpu_s=%.0f "
               "thread_waits=%ld preempted=%ld process_cpu_s=%.2f\n",
               k + 1, k + 1, np, nthreads, nc, (unsigned long long)(cs.walked - cs0.walked),
               (unsigned long long)(cs.caught_up - cs0.caught_up),
               (unsigned long long)(cs.written - cs0.written),
               (unsigned long long)(sum.chunked - sum0.chunked),
               (unsigned long long)(cs.chunks - cs0.chunks),
               (unsigned long long)(sum.entries - sum0.entries), tclose, twalk, cclose,
               nc / tclose, nc / cclose, waits, preempt, pcl);
        printf("baseline%d raw_scan contracts=%.0f seconds=%.2f (before the events %.2f) "
               "cpu_s=%.2f contracts_per_s=%.0f per_cpu_s=%.0f blob_bytes=%llu "
               "ratio_close_to_scan=%.3f cpu_ratio=%.3f\n",
               k + 1, nc, scan2, scan1, cscan, nc / scan2, nc / cscan,
               (unsigned long long)sc.bytes, (nc / tclose) / (nc / scan2), cscan / cclose);
        if (nthreads > 1)
            printf(
                "baseline%d raw_scan threads=%d seconds=%.2f cpu_s=%.2f contracts_per_s=%.0f "
                "ratio_close_to_scan=%.3f\n",
                k + 1, nthreads, scan_t2, cscan_t, nc / scan_t2, scan_t2 / tclose);
    }
    printf("closes n=%d mean_contracts_per_s=%.0f mean_per_cpu_s=%.0f\n", closes,
           nc * closes / sum_s, nc * closes / sum_cpu);
    printf("peak_rss_mib=%ld cache_mib=%ld max_lag=%d partitions=%zu threads=%d "
           "allocator=%s%s\n",
           peak_rss_mib(), mb, max_lag, np, nthreads, BENCH_ALLOCATOR,
           eager ? " (baseline: no cache, the whole partition in memory)" : "");
    for (size_t p = 0; p < np; p++)
        rs_pstate_destroy(parts[p].ps);
    free(parts);
    rs_state_free(pn);
    rs_state_destroy(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "eager") == 0)
        return run(argv[2], -1, argc > 3 ? atol(argv[3]) : 20000, 0,
                   argc > 4 ? atoi(argv[4]) : 2, 1, argc > 5 ? atoi(argv[5]) : 1);
    if (argc >= 4 && strcmp(argv[1], "build") == 0)
        return build(argv[2], atol(argv[3]), argc > 4 && atoi(argv[4]) > 0 ? atoi(argv[4]) : 1);
    if (argc >= 3 && strcmp(argv[1], "run") == 0)
        return run(argv[2], argc > 3 ? atol(argv[3]) : 128, argc > 4 ? atol(argv[4]) : 20000,
                   argc > 5 ? atol(argv[5]) : 10000, argc > 6 ? atoi(argv[6]) : 2,
                   argc > 7 ? atoi(argv[7]) : RS_PSTATE_MAX_LAG,
                   argc > 8 && atoi(argv[8]) > 0 ? atoi(argv[8]) : 1);
    fprintf(stderr,
            "usage: bench_cache build DIR N [PARTITIONS] | bench_cache run DIR [MB [EVENTS "
            "[CHUNK [CLOSES [MAX_LAG [THREADS]]]]]] | bench_cache eager DIR [EVENTS [CLOSES "
            "[THREADS]]]\n");
    return 2;
}
