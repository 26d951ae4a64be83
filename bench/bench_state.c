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
 * 1200 - 10`). Ownership:
 * everything allocated here is freed before exit.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, clock_gettime */

#include "rs_file.h"
#include "rs_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

int main(int argc, char **argv)
{
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
