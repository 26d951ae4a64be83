/*
 * bench_ab.h — the direct/generic comparison of the codec benchmarks
 * (bench_avro_decode, bench_avro_encode): per set of records, the two paths
 * alternate in BENCH_AB_ROUNDS slices (the order swapped every round, so a
 * change of load on the machine falls on both), then one key=value line per
 * path and the ratio of their rates.
 *
 * Invariants: a slice is run by the bench's callback, which selects the
 * path, runs n records and checks that the path it asked for was taken;
 * nothing here allocates. Header-only (static): each bench is one file.
 */
#ifndef BENCH_AB_H
#define BENCH_AB_H

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BENCH_AB_ROUNDS 10

/* The monotonic clock, in seconds: what a slice times itself with. */
static double bench_ab_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* n records of the set by the direct path (direct 1) or the generic one:
 * seconds, or -1 (the error printed). */
typedef double (*bench_ab_fn)(void *ctx, int direct, long n);

/* Time both paths over about n records each (only "direct" or "generic":
 * that one alone) and print `bench=NAME set=SET KEY=PATH EXTRA...` lines.
 * 0, or -1 when a slice failed. */
static int bench_ab(const char *name, const char *set, const char *key, const char *extra,
                    long n, const char *only, bench_ab_fn fn, void *ctx)
{
    double secs[2] = {0, 0};
    long per = n / BENCH_AB_ROUNDS > 0 ? n / BENCH_AB_ROUNDS : 1;
    for (int round = 0; round < BENCH_AB_ROUNDS; round++)
        for (int k = 0; k < 2; k++) {
            int direct = (round + k) % 2;
            if (only != NULL && strcmp(only, direct ? "direct" : "generic") != 0)
                continue;
            double dt = fn(ctx, direct, per);
            if (dt < 0)
                return -1;
            secs[direct] += dt;
        }
    long total = per * BENCH_AB_ROUNDS;
    for (int direct = 1; direct >= 0; direct--)
        if (secs[direct] > 0)
            printf("bench=%s set=%s %s=%s %srecords=%ld seconds=%.3f records_per_s=%.0f "
                   "ns_per_record=%.1f\n",
                   name, set, key, direct ? "direct" : "generic", extra, total, secs[direct],
                   (double)total / secs[direct], secs[direct] * 1e9 / (double)total);
    if (only == NULL)
        printf("bench=%s set=%s ratio direct/generic=%.2f\n", name, set, secs[0] / secs[1]);
    return 0;
}

#endif
