/*
 * bench_commit — the worker's batch state write, the way it was (the
 * apply lanes' write batches appended into one, sorted and written by one
 * thread) against the way it is (each lane's batch committed by a thread of
 * its own, so the two key-ordered copies and writes run at once), on the
 * same staged content in the same run.
 *
 * Usage: bench_commit [ROUNDS [CONTRACTS [BLOB_BYTES [SEEN [PARTITIONS]]]]]
 *   defaults: 6 rounds, 6,000 contracts of 1,200 bytes with 10 seen ids
 *   each per round, over 16 partitions (the 20,000-contract book's batches
 *   at batch.max.records=100,000: bench/README.md).
 *
 * Each round stages one batch shaped like the worker's in two lanes
 * (partition p in lane p % 2, as two apply threads share them): per
 * contract its blob, its offsets (a merge) and SEEN seen ids; per
 * partition an input offset and a changelog position. Then, into two fresh
 * stores (sync on, as the worker's default), alternating which goes first:
 *   one:   rs_state_batch_append(lane 0, lane 1) and rs_state_batch_commit
 *          on this thread;
 *   lanes: as the worker's commit_lanes: rs_state_batch_commit_nosync of
 *          lane 1 on a thread of its own while this thread does lane 0's,
 *          then one rs_state_sync_wal.
 * It prints per way the median over rounds of the wall time and of the
 * process CPU time, and the ratio lanes/one of the wall medians. The CPU
 * time does not depend on the machine's load much; the wall time is what
 * the worker's loop waits for, and gains only when a second core is free.
 *
 * Ownership: everything allocated here is freed before exit; the stores
 * live in a mkdtemp dir under /tmp, removed at exit.
 */
#define _XOPEN_SOURCE 700 /* nftw() */

#include "rs_state.h"

#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lane_job {
    rs_state_t *st;
    rs_state_batch_t *b;
    int rc;
    char err[512];
} lane_job_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double now_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Round r's batch, into lanes l[0] and l[1]. */
static void stage(rs_state_batch_t *l[2], int r, int contracts, size_t blob_len, int seen,
                  int parts, unsigned char *blob)
{
    static const char *const topics[] = {"contracts", "invoices", "payments", "usage"};
    for (int i = 0; i < contracts; i++) {
        char id[32];
        unsigned n = ((unsigned)r * (unsigned)contracts + (unsigned)i) * 2654435761u % 100000u;
        int32_t p = (int32_t)(n % (unsigned)parts);
        rs_state_batch_t *b = l[p % 2];
        snprintf(id, sizeof id, "contract-%06u", n);
        for (size_t j = 0; j < blob_len; j++)
            blob[j] = (unsigned char)(n + j + (size_t)r);
        rs_state_batch_put_contract(b, p, id, blob, blob_len);
        const int64_t offs[] = {-1, r, -1, (int64_t)r * contracts + i};
        rs_state_batch_put_contract_offsets(b, id, topics, offs, 4);
        for (int k = 0; k < seen; k++) {
            uint64_t h = ((uint64_t)(r * contracts + i) * 1000003u + (uint64_t)k) *
                         0x9E3779B97F4A7C15ull;
            rs_state_batch_put_seen(b, p, id, h, h ^ 0xabcdefull, 24300 + r);
        }
    }
    for (int32_t p = 0; p < parts; p++) {
        char name[32], pos[8] = {0};
        rs_state_batch_put_input_offset(l[p % 2], "usage", p, (int64_t)(r + 1) * contracts);
        snprintf(name, sizeof name, "changelog/%d", (int)p);
        pos[7] = (char)r;
        rs_state_batch_put_meta(l[p % 2], name, pos, sizeof pos);
    }
}

static void *write_lane(void *arg)
{
    lane_job_t *j = arg;
    j->rc = rs_state_batch_commit_nosync(j->st, j->b, j->err, sizeof j->err) != 0;
    return NULL;
}

/* One round's write, the way `lanes` says; wall and CPU ms into *wall, *cpu. */
static int commit_round(rs_state_t *st, rs_state_batch_t *l[2], int lanes, double *wall,
                        double *cpu)
{
    char err[512] = "";
    double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_PROCESS_CPUTIME_ID);
    int rc = 0;
    if (!lanes) {
        rc = rs_state_batch_append(l[0], l[1]) != 0 ||
             rs_state_batch_commit(st, l[0], err, sizeof err) != 0;
    } else {
        lane_job_t j[2] = {{.st = st, .b = l[0]}, {.st = st, .b = l[1]}};
        pthread_t t;
        int started = pthread_create(&t, NULL, write_lane, &j[1]) == 0;
        write_lane(&j[0]);
        if (started)
            pthread_join(t, NULL);
        else
            write_lane(&j[1]);
        rc = j[0].rc || j[1].rc || rs_state_sync_wal(st, j[0].err, sizeof j[0].err) != 0;
        memcpy(err, j[1].rc ? j[1].err : j[0].err, sizeof err);
    }
    *wall = now_ms(CLOCK_MONOTONIC) - w0;
    *cpu = now_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (rc)
        fprintf(stderr, "bench_commit: %s\n", err[0] ? err : "out of memory");
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 6, contracts = argc > 2 ? atoi(argv[2]) : 6000;
    long blob_len = argc > 3 ? atol(argv[3]) : 1200;
    int seen = argc > 4 ? atoi(argv[4]) : 10, parts = argc > 5 ? atoi(argv[5]) : 16;
    char tmp[] = "/tmp/bench_commit.XXXXXX", path[2][64], err[512] = "";
    rs_state_t *st[2] = {NULL, NULL};
    rs_state_batch_t *l[2] = {NULL, NULL};
    double *wall[2] = {NULL, NULL}, *cpu[2] = {NULL, NULL};
    unsigned char *blob = NULL;
    int rc = 1;

    if (rounds <= 0 || contracts <= 0 || blob_len <= 0 || seen < 0 || parts <= 0) {
        fprintf(stderr, "usage: bench_commit [ROUNDS [CONTRACTS [BLOB_BYTES [SEEN "
                        "[PARTITIONS]]]]]\n");
        return 2;
    }
    if (!mkdtemp(tmp)) {
        perror("bench_commit: mkdtemp");
        return 1;
    }
    blob = malloc((size_t)blob_len);
    for (int w = 0; w < 2; w++) {
        wall[w] = calloc((size_t)rounds, sizeof *wall[w]);
        cpu[w] = calloc((size_t)rounds, sizeof *cpu[w]);
        snprintf(path[w], sizeof path[w], "%s/%s", tmp, w ? "lanes" : "one");
        rs_state_opts_t o = {.path = path[w], .create_if_missing = 1, .sync = RS_STATE_SYNC_ON};
        if (!wall[w] || !cpu[w] || rs_state_open(&st[w], &o, err, sizeof err) != 0 ||
            rs_state_batch_new(&l[w], err, sizeof err) != 0) {
            fprintf(stderr, "bench_commit: %s\n", err[0] ? err : "out of memory");
            goto done;
        }
    }
    if (!blob) {
        fprintf(stderr, "bench_commit: out of memory\n");
        goto done;
    }
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int w = (r + k) % 2; /* which way goes first turns */
            stage(l, r, contracts, (size_t)blob_len, seen, parts, blob);
            if (commit_round(st[w], l, w, &wall[w][r], &cpu[w][r]) != 0)
                goto done;
            rs_state_batch_clear(l[0]);
            rs_state_batch_clear(l[1]);
        }
    }
    double wm[2], cm[2];
    for (int w = 0; w < 2; w++) {
        wm[w] = median(wall[w], rounds);
        cm[w] = median(cpu[w], rounds);
        printf("bench_commit: way=%-5s rounds=%d contracts=%d blob=%ldB seen=%d partitions=%d "
               "wall_ms_median=%.1f cpu_ms_median=%.1f\n",
               w ? "lanes" : "one", rounds, contracts, blob_len, seen, parts, wm[w], cm[w]);
    }
    printf("bench_commit: ratio lanes/one wall=%.3f cpu=%.3f\n", wm[1] / wm[0], cm[1] / cm[0]);
    rc = 0;
done:
    for (int w = 0; w < 2; w++) {
        rs_state_batch_destroy(l[w]);
        rs_state_destroy(st[w]);
        free(wall[w]);
        free(cpu[w]);
    }
    free(blob);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
