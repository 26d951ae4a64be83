/*
 * bench_state — commit throughput and latency of the RocksDB state store.
 *
 * Usage: bench_state [COMMITS [CONTRACTS_PER_BATCH [BLOB_BYTES [DIR [SEEN]]]]]
 *   defaults: 200 commits, 1000 contracts, 512-byte blobs, a mkdtemp dir
 *   under /tmp (removed at exit; a given DIR is used as is and kept; "-"
 *   for the default), no seen ids.
 *
 * Each commit is one batch shaped like the worker's: CONTRACTS_PER_BATCH
 * contract blobs (ids spread over a pool of 100k contracts, so later batches
 * overwrite), one contract offset per contract, and the input offset. The run
 * is made twice, with sync on (fsync per commit) and off, each into a fresh
 * store; it prints commits/s, contract writes/s and p50/p99 commit latency.
 * Timing covers only rs_state_batch_commit(); staging is excluded.
 *
 * With SEEN > 0 each contract of a batch also gets SEEN applied event ids
 * (rs_state_batch_put_seen, as the worker stages one per applied event),
 * and the sync-on run is made twice, without and with them, each into a
 * fresh store: the first is the same-run baseline, and the difference is
 * what the worker's one-key-per-event seen ids cost its state write (the
 * worker's 20,000-contract book with 100,000-record batches stages ~6,000
 * contracts of ~1.2 KB and ~10 ids each per batch: `bench_state 20 6000
 * 1200 - 10`).
 *
 * bench_state worker [COMMITS [ROUNDS [CONTRACTS_PER_BATCH [BLOB_BYTES [VARIANTS]]]]]
 *   defaults: 30 commits, 3 rounds, 4400 contracts, 1510-byte blobs: the
 *   worker's batches on the 50,000-contract book (bench_e2e --contracts
 *   50000 --partitions 32, counted in its commits: ~4,400 contract blobs
 *   of ~1.5 KB, ~4,230 seen-set merges of ~180 bytes and as many offsets
 *   merges of ~50 bytes, one of each per contract; ~7.4 MiB). Each batch
 *   is staged as the worker stages it: two lanes (rs_state_batch_append
 *   into the first, the worker's lane0), 32 partitions split between
 *   them, per partition its contracts' blobs, then a seen-set merge (8
 *   ids) and an offsets merge (2 topics) per contract, its engine meta
 *   and its input offset; a contract first touched, and one in ten of the
 *   others, is read first (its blob and seen set: the worker's store
 *   reads, misses at first, then contracts its cache let go). Ids are
 *   drawn from a pool of 50,000. Each variant of the store's write path (rs_state_tune.h) runs
 *   COMMITS commits into a fresh store (sync on), ROUNDS times, the
 *   variants interleaved; the first, "main", is the write path before
 *   h17-commit (the baseline). Printed per variant, medians over rounds:
 *   commit ms (sum over the commits, calling thread's wall time), the
 *   calling thread's CPU ms in the commits, RocksDB's background CPU ms
 *   (the process's CPU minus the calling thread's, measured after the
 *   last flush and compaction ended), the calling thread's CPU ms in the
 *   reads, and the ratios to "main".
 *   VARIANTS, a comma-separated list of variant names, runs only those
 *   (after "main", always run); "-" for a default.
 *
 * Ownership: everything allocated here is freed before exit.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, clock_gettime */

#include "rs_file.h"
#include "rs_state.h"
/* private to rs_state: the write-path variants, for the worker mode */
#include "../state/internal/rs_state_tune.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *sorted, size_t n, int p)
{
    size_t i = (n * (size_t)p + 99) / 100; /* nearest rank */
    return sorted[i == 0 ? 0 : i - 1];
}

static int run(const char *path, rs_state_sync_t sync, int commits, int per_batch,
               size_t blob_len, int seen)
{
    rs_state_opts_t o = {.path = path, .create_if_missing = 1, .sync = sync};
    rs_state_t *st = NULL;
    rs_state_batch_t *b = NULL;
    int64_t *lat = NULL, total = 0;
    unsigned char *blob = NULL;
    char err[512] = "";
    int rc = 1;

    lat = calloc((size_t)commits, sizeof *lat);
    blob = malloc(blob_len);
    if (!lat || !blob) {
        fprintf(stderr, "bench_state: out of memory\n");
        goto done;
    }
    if (rs_state_open(&st, &o, err, sizeof err) || rs_state_batch_new(&b, err, sizeof err)) {
        fprintf(stderr, "bench_state: %s\n", err);
        goto done;
    }
    for (int c = 0; c < commits; c++) {
        int64_t t0;
        for (int i = 0; i < per_batch; i++) {
            char id[32];
            unsigned n =
                ((unsigned)c * (unsigned)per_batch + (unsigned)i) * 2654435761u % 100000u;
            snprintf(id, sizeof id, "contract-%06u", n);
            for (size_t j = 0; j < blob_len; j++)
                blob[j] = (unsigned char)(n + j + (size_t)c);
            rs_state_batch_put_contract(b, 0, id, blob, blob_len);
            rs_state_batch_put_contract_offset(b, id, "usage", (int64_t)c * per_batch + i);
            for (int k = 0; k < seen; k++) {
                uint64_t h = ((uint64_t)(c * per_batch + i) * 1000003u + (uint64_t)k) *
                             0x9E3779B97F4A7C15ull;
                rs_state_batch_put_seen(b, 0, id, h, h ^ 0xabcdefull, 24300 + c);
            }
        }
        rs_state_batch_put_input_offset(b, "usage", 0, (int64_t)(c + 1) * per_batch);
        t0 = now_ns();
        if (rs_state_batch_commit(st, b, err, sizeof err)) {
            fprintf(stderr, "bench_state: %s\n", err);
            goto done;
        }
        lat[c] = now_ns() - t0;
        total += lat[c];
    }
    qsort(lat, (size_t)commits, sizeof *lat, cmp_i64);
    printf(
        "sync=%-3s commits=%d contracts/batch=%d blob=%zuB seen/contract=%d  commits/s=%.0f  "
        "contract-writes/s=%.0f  p50=%.2fms  p99=%.2fms  total=%.0fms\n",
        sync == RS_STATE_SYNC_OFF ? "off" : "on", commits, per_batch, blob_len, seen,
        commits / (total / 1e9), (double)commits * per_batch / (total / 1e9),
        pct(lat, (size_t)commits, 50) / 1e6, pct(lat, (size_t)commits, 99) / 1e6,
        (double)total / 1e6);
    rc = 0;
done:
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
    free(blob);
    free(lat);
    return rc;
}

/* ---- worker mode ---- */

typedef struct variant {
    const char *name;
    rs_state_tune_t tune;
    size_t memtable_mb; /* 0: the worker's default (32) */
    size_t sorted_min;  /* 0: no key-ordered copy */
    int fresh;          /* the copy's buffers freed after each commit */
} variant_t;

enum { W_POOL = 50000, W_PARTS = 32, W_FIG = 5, W_SEEN = 8 };

static const variant_t variants[] = {
    {"main", {.memtable_bloom = 1}, 0, 256, 1},
    {"reuse", {.memtable_bloom = 1}, 0, 256, 0},
    {"reuse+hint", {.memtable_bloom = 1, .insert_hint = 1}, 0, 256, 0},
    {"new", RS_STATE_TUNE_DEFAULT, 0, 256, 0}, /* reuse+hint+l0x8: the default */
    {"unsorted", {.memtable_bloom = 1}, 0, 0, 0},
    {"unsorted+hint", {.memtable_bloom = 1, .insert_hint = 1}, 0, 0, 0},
    {"new+l0-plain",
     {.l0_plain = 1, .memtable_bloom = 1, .insert_hint = 1, .l0_trigger = 8},
     0,
     256,
     0},
    {"new+no-bloom", {.memtable_bloom = 0, .insert_hint = 1, .l0_trigger = 8}, 0, 256, 0},
    {"new+bg-nice",
     {.memtable_bloom = 1, .bg_nice = 1, .insert_hint = 1, .l0_trigger = 8},
     0,
     256,
     0},
    {"new+mem64", RS_STATE_TUNE_DEFAULT, 64, 256, 0},
    {"new+mem16", RS_STATE_TUNE_DEFAULT, 16, 256, 0},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* Wait until no flush or compaction runs or is pending. */
static void settle(rs_state_t *st)
{
    char err[256];
    rs_state_flush(st, err, sizeof err);
    for (int i = 0; i < 6000; i++) {
        rs_state_props_t p;
        rs_state_get_props(st, &p);
        if (p.running_compactions <= 0 && p.compaction_pending <= 0)
            return;
        usleep(10000);
    }
}

static int64_t cpu_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One partition's share of a batch staged into b (the batch's contracts
 * whose id % W_PARTS == part); reads first-touched contracts. */
static int stage_part(rs_state_t *st, rs_state_batch_t *b, int part, int c, int per_batch,
                      unsigned char *blob, size_t blob_len, unsigned char *touched,
                      int64_t *read_ns)
{
    char id[32], err[256];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < per_batch; i++) {
            unsigned n =
                ((unsigned)c * (unsigned)per_batch + (unsigned)i) * 2654435761u % W_POOL;
            if ((int)(n % W_PARTS) != part)
                continue;
            snprintf(id, sizeof id, "C-%07u", n);
            if (pass == 0) {
                if (!touched[n] || n % 10 == (unsigned)c % 10) { /* first, or one in 10 again */
                    void *v = NULL;
                    size_t len = 0;
                    int64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
                    touched[n] = 1;
                    if (rs_state_get_contract(st, part, id, &v, &len, err, sizeof err) < 0)
                        return -1;
                    rs_state_free(v);
                    v = NULL;
                    if (rs_state_get_seen_set(st, part, id, &v, &len, err, sizeof err) < 0)
                        return -1;
                    rs_state_free(v);
                    *read_ns += cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
                }
                for (size_t j = 0; j < blob_len; j++)
                    blob[j] = (unsigned char)(n + j + (size_t)c);
                rs_state_batch_put_contract(b, part, id, blob, blob_len);
            } else { /* the contract's applied ids and offsets: one merge each */
                rs_state_seen_t ids[W_SEEN];
                for (int k = 0; k < W_SEEN; k++) {
                    uint64_t h = ((uint64_t)(c * per_batch + i) * 1000003u + (uint64_t)k) *
                                 0x9E3779B97F4A7C15ull;
                    ids[k] = (rs_state_seen_t){h, h ^ 0xabcdefull, 24300 + c, 0};
                }
                rs_state_batch_merge_seen(b, part, id, ids, W_SEEN);
                const char *topics[2] = {"usage", "invoices"};
                int64_t offs[2] = {(int64_t)c * per_batch + i, (int64_t)c};
                rs_state_batch_put_contract_offsets(b, id, topics, offs, 2);
            }
        }
    char meta[32];
    snprintf(meta, sizeof meta, "engine/%d", part);
    rs_state_batch_put_meta(b, meta, blob, 64);
    rs_state_batch_put_input_offset(b, "usage", part, (int64_t)(c + 1) * per_batch);
    return 0;
}

/* One variant's run; fig: commit ms, commit CPU ms, background CPU ms,
 * read ms, staged MiB a batch. */
static int run_worker(const char *path, const variant_t *v, int commits, int per_batch,
                      size_t blob_len, double fig[W_FIG])
{
    rs_state_opts_t o = {.path = path,
                         .create_if_missing = 1,
                         .sync = RS_STATE_SYNC_ON,
                         /* the worker's state.memtable.mb: 32 */
                         .memtable_bytes = (v->memtable_mb ? v->memtable_mb : 32) << 20};
    rs_state_t *st = NULL;
    rs_state_batch_t *lane[2] = {NULL, NULL};
    unsigned char *blob = malloc(blob_len > 64 ? blob_len : 64);
    unsigned char *touched = calloc(W_POOL, 1);
    int64_t wall = 0, cpu = 0, reads = 0, p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID), t_all = 0;
    size_t bytes = 0;
    char err[512] = "";
    int rc = 1;

    if (!blob || !touched) {
        fprintf(stderr, "bench_state: out of memory\n");
        goto done;
    }
    int64_t m0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    if (rs_state_open_tuned(&st, &o, &v->tune, err, sizeof err) ||
        rs_state_batch_new(&lane[0], err, sizeof err) ||
        rs_state_batch_new(&lane[1], err, sizeof err)) {
        fprintf(stderr, "bench_state: %s\n", err);
        goto done;
    }
    rs_state_batch_tune(lane[0], v->sorted_min, v->fresh);
    for (int c = 0; c < commits; c++) {
        for (int part = 0; part < W_PARTS; part++)
            if (stage_part(st, lane[part % 2], part, c, per_batch, blob, blob_len, touched,
                           &reads) != 0) {
                fprintf(stderr, "bench_state: a read failed\n");
                goto done;
            }
        int64_t t0 = now_ns(), c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
        if (rs_state_batch_append(lane[0], lane[1]) != 0) {
            fprintf(stderr, "bench_state: append: %s\n", rs_state_batch_error(lane[0]));
            goto done;
        }
        bytes += rs_state_batch_bytes(lane[0]);
        if (rs_state_batch_commit(st, lane[0], err, sizeof err)) {
            fprintf(stderr, "bench_state: %s\n", err);
            goto done;
        }
        cpu += cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
        wall += now_ns() - t0;
    }
    settle(st);
    t_all = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - m0;
    fig[0] = (double)wall / 1e6;
    fig[1] = (double)cpu / 1e6;
    fig[2] = (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - p0 - t_all) / 1e6;
    fig[3] = (double)reads / 1e6;
    fig[4] = (double)bytes / commits / 1048576.0;
    rc = 0;
done:
    rs_state_batch_destroy(lane[0]);
    rs_state_batch_destroy(lane[1]);
    rs_state_destroy(st);
    free(blob);
    free(touched);
    return rc;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Is variant i in the comma-separated list (NULL: all; "main" always)? */
static int picked(const char *only, size_t i)
{
    size_t n = strlen(variants[i].name);
    if (only == NULL || strcmp(only, "-") == 0 || i == 0)
        return 1;
    for (const char *p = only; (p = strstr(p, variants[i].name)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static int worker_mode(int argc, char **argv)
{
    int commits = argc > 2 && strcmp(argv[2], "-") != 0 ? atoi(argv[2]) : 30;
    int rounds = argc > 3 && strcmp(argv[3], "-") != 0 ? atoi(argv[3]) : 3;
    int per_batch = argc > 4 && strcmp(argv[4], "-") != 0 ? atoi(argv[4]) : 4400;
    long blob_len = argc > 5 && strcmp(argv[5], "-") != 0 ? atol(argv[5]) : 1510;
    const char *only = argc > 6 ? argv[6] : NULL;
    char tmp[] = "/tmp/bench_state.XXXXXX";
    double(*fig)[16][W_FIG] = NULL;
    int rc = 1;

    if (commits <= 0 || rounds <= 0 || rounds > 16 || per_batch <= 0 || blob_len <= 0) {
        fprintf(stderr, "usage: bench_state worker [COMMITS [ROUNDS (1..16) "
                        "[CONTRACTS_PER_BATCH [BLOB_BYTES]]]]\n");
        return 2;
    }
    if (!mkdtemp(tmp)) {
        perror("bench_state: mkdtemp");
        return 1;
    }
    fig = calloc(N_VARIANTS, sizeof *fig);
    if (fig == NULL)
        goto done;
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < N_VARIANTS; i++) {
            char path[4200];
            if (!picked(only, i))
                continue;
            snprintf(path, sizeof path, "%s/v%zu-r%d", tmp, i, r);
            if (run_worker(path, &variants[i], commits, per_batch, (size_t)blob_len,
                           fig[i][r]) != 0)
                goto done;
            rs_remove_tree(path);
        }
    printf("bench_state worker: commits=%d rounds=%d contracts/batch=%d blob=%ldB "
           "staged=%.2fMiB/batch (medians over rounds; ratio = variant / main)\n",
           commits, rounds, per_batch, blob_len, fig[0][0][4]);
    double base[W_FIG] = {0};
    for (size_t i = 0; i < N_VARIANTS; i++) {
        double med[W_FIG];
        if (!picked(only, i))
            continue;
        for (int f = 0; f < W_FIG; f++) {
            double col[16];
            for (int r = 0; r < rounds; r++)
                col[r] = fig[i][r][f];
            qsort(col, (size_t)rounds, sizeof col[0], cmp_dbl);
            med[f] = col[rounds / 2];
            if (i == 0)
                base[f] = med[f];
        }
        printf("  %-16s commit=%7.1fms (x%.2f)  commit_cpu=%7.1fms (x%.2f)  "
               "background_cpu=%7.1fms (x%.2f)  read_cpu=%6.1fms (x%.2f)\n",
               variants[i].name, med[0], med[0] / base[0], med[1], med[1] / base[1], med[2],
               med[2] / base[2], med[3], med[3] / base[3]);
    }
    rc = 0;
done:
    free(fig);
    rs_remove_tree(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "worker") == 0)
        return worker_mode(argc, argv);

    int commits = argc > 1 ? atoi(argv[1]) : 200;
    int per_batch = argc > 2 ? atoi(argv[2]) : 1000;
    long blob_len = argc > 3 ? atol(argv[3]) : 512;
    char tmp[] = "/tmp/bench_state.XXXXXX";
    const char *base = argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : NULL;
    int seen = argc > 5 ? atoi(argv[5]) : 0;
    char on[4200], off[4200];
    int rc = 1;

    if (commits <= 0 || per_batch <= 0 || blob_len <= 0 || seen < 0) {
        fprintf(stderr, "usage: bench_state [COMMITS [CONTRACTS_PER_BATCH [BLOB_BYTES [DIR "
                        "[SEEN]]]]]\n");
        return 2;
    }
    if (!base && !(base = mkdtemp(tmp))) {
        perror("bench_state: mkdtemp");
        return 1;
    }
    snprintf(on, sizeof on, "%s/sync-on", base);
    snprintf(off, sizeof off, "%s/sync-off", base);
    if (seen > 0) { /* the baseline without seen ids, then with them */
        char with[4200];
        snprintf(with, sizeof with, "%s/sync-on-seen", base);
        if (run(on, RS_STATE_SYNC_ON, commits, per_batch, (size_t)blob_len, 0) == 0 &&
            run(with, RS_STATE_SYNC_ON, commits, per_batch, (size_t)blob_len, seen) == 0)
            rc = 0;
    } else if (run(on, RS_STATE_SYNC_ON, commits, per_batch, (size_t)blob_len, 0) == 0 &&
               run(off, RS_STATE_SYNC_OFF, commits, per_batch, (size_t)blob_len, 0) == 0) {
        rc = 0;
    }
    if (base == tmp)
        rs_remove_tree(tmp);
    return rc;
}
