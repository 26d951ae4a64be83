/*
 * bench_avro_decode — how fast rs_avro_decode_event() turns small usage
 * records (Confluent wire format) into validated rs_event_t, with the cached
 * readers reused as the worker reuses them.
 *
 *   bench_avro_decode [N]     N records per path (default 2000000)
 *
 * Two paths are timed over the same 256 distinct messages, cycled:
 *   direct    writer schema = revstream's usage schema: Avro C reads straight
 *             into the cached reader value (no resolver);
 *   resolved  a newer producer schema with one extra optional field: read
 *             through the cached resolver (writer -> reader).
 * Each record is size-checked, decoded by Avro C, validated as the JSON codec
 * validates, and cleared. Prints one key=value line per path on stdout:
 * records, seconds, records_per_s, ns_per_record. Not a test: nothing fails
 * on a slow machine (timings are not asserted anywhere).
 *
 * Ownership: everything is made and freed in main() through its exit label.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rs_avro.h"

#define N_MESSAGES 256
#define ID_USAGE 4
#define ID_NEWER 40

/* The usage record with an added optional field, as a newer producer has it. */
static const char NEWER_USAGE[] =
    "{\"type\":\"record\",\"name\":\"UsageRecorded\",\"namespace\":\"io.revstream\",\"fields\":"
    "["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"contract_id\",\"type\":\"string\"},{\"name\":\"occurred_at\",\"type\":"
    "\"string\"},"
    "{\"name\":\"line_id\",\"type\":\"string\"},{\"name\":\"quantity\",\"type\":\"string\"},"
    "{\"name\":\"region\",\"type\":[\"null\",\"string\"],\"default\":null}]}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decode n records cycling through msgs; returns seconds, or -1 on error. */
static double run(rs_avro_cache_t *c, void **msgs, size_t *lens, long n)
{
    char err[512];
    rs_event_t ev;
    uint64_t check = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        size_t k = (size_t)i % N_MESSAGES;
        if (rs_avro_decode_event(c, msgs[k], lens[k], &ev, err, sizeof(err)) != RS_AVRO_OK) {
            fprintf(stderr, "bench_avro_decode: record %ld: %s\n", i, err);
            return -1;
        }
        check += (uint64_t)ev.quantity.mantissa; /* keep the work observable */
        rs_event_clear(&ev);
    }
    double dt = now_s() - t0;
    if (check == 0)
        fprintf(stderr, "bench_avro_decode: unexpected zero checksum\n");
    return dt;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    rs_avro_cache_t *c = NULL;
    void *direct[N_MESSAGES] = {0}, *resolved[N_MESSAGES] = {0};
    size_t dlen[N_MESSAGES], rlen[N_MESSAGES];
    char err[512];
    int status = 1;

    if (n <= 0) {
        fprintf(stderr, "usage: bench_avro_decode [N]\n");
        return 1;
    }
    if (rs_avro_cache_new(&c, err, sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_USAGE, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE), err,
                          sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_NEWER, NEWER_USAGE, err, sizeof(err)) != RS_AVRO_OK) {
        fprintf(stderr, "bench_avro_decode: %s\n", err);
        goto out;
    }
    for (int i = 0; i < N_MESSAGES; i++) {
        rs_event_t ev;
        rs_event_init(&ev);
        ev.type = RS_EV_USAGE_RECORDED;
        snprintf(ev.event_id, sizeof(ev.event_id), "usage-%08d", 1000000 + i * 7919);
        snprintf(ev.contract_id, sizeof(ev.contract_id), "C-%05d", i % 97);
        snprintf(ev.occurred_at, sizeof(ev.occurred_at), "2026-03-%02dT%02d:%02d:00Z",
                 1 + i % 28, i % 24, i % 60);
        ev.occurred_on = rs_date_from_ymd(2026, 3, 1 + i % 28);
        snprintf(ev.line_id, sizeof(ev.line_id), "L-%d", 1 + i % 3);
        ev.quantity = (rs_decimal_t){1 + i * 37, i % 3};
        if (rs_avro_encode_event(c, ID_USAGE, &ev, &direct[i], &dlen[i], err, sizeof(err)) !=
                RS_AVRO_OK ||
            rs_avro_encode_event(c, ID_NEWER, &ev, &resolved[i], &rlen[i], err, sizeof(err)) !=
                RS_AVRO_OK) {
            fprintf(stderr, "bench_avro_decode: %s\n", err);
            goto out;
        }
    }

    /* Warm up both paths (builds the cached readers), then time them. */
    if (run(c, direct, dlen, N_MESSAGES) < 0 || run(c, resolved, rlen, N_MESSAGES) < 0)
        goto out;
    const char *names[2] = {"direct", "resolved"};
    void **sets[2] = {direct, resolved};
    size_t *lens[2] = {dlen, rlen};
    for (int p = 0; p < 2; p++) {
        double dt = run(c, sets[p], lens[p], n);
        if (dt < 0)
            goto out;
        printf("bench=avro_decode path=%s record_bytes=%zu records=%ld seconds=%.3f "
               "records_per_s=%.0f ns_per_record=%.1f\n",
               names[p], lens[p][0], n, dt, (double)n / dt, dt * 1e9 / (double)n);
    }
    status = 0;
out:
    for (int i = 0; i < N_MESSAGES; i++) {
        free(direct[i]);
        free(resolved[i]);
    }
    rs_avro_cache_destroy(c);
    return status;
}
