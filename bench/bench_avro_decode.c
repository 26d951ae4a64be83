/*
 * bench_avro_decode — how fast rs_avro_decode_event() turns input records
 * (Confluent wire format) into validated rs_event_t, with the cached
 * readers reused as the worker reuses them, by the direct reader
 * (rs_avro_read.c, the default) and by the generic path (Avro C's resolved
 * value; rs_avro_cache_set_direct_read(c, 0)) in the same run.
 *
 *   bench_avro_decode [N [READER]]   N records per set and reader (default
 *                                    1000000); READER direct or generic:
 *                                    that one only (for a profile)
 *
 * Four sets of 256 distinct messages each, cycled:
 *   usage     usage.recorded, writer = revstream's usage schema;
 *   newer     the same events under a newer producer schema with one extra
 *             optional field (the generic path reads through a resolver);
 *   booked    contract.booked with three lines (one with two milestones)
 *             and a source;
 *   invoice   invoice.issued with two lines, one with tax and service dates.
 * Each record is decoded, validated as the JSON codec validates, and
 * cleared; the two readers alternate in ten slices of each set. Prints one key=value line per
 * set and reader on stdout (records, seconds, records_per_s, ns_per_record) and per set the
 * ratio of the two rates (direct / generic). Not a test: nothing fails on a slow machine.
 *
 * Ownership: everything is made and freed in main() through its exit label.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ab.h"
#include "rs_avro.h"

#define N_MESSAGES 256
#define N_SETS 4
#define ID_USAGE 4
#define ID_CONTRACTS 1
#define ID_INVOICES 2
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

/* Decode n records cycling through msgs; returns seconds, or -1 on error. */
static double run(rs_avro_cache_t *c, void **msgs, size_t *lens, long n)
{
    char err[512];
    rs_event_t ev;
    uint64_t check = 0;
    double t0 = bench_ab_now_s();
    for (long i = 0; i < n; i++) {
        size_t k = (size_t)i % N_MESSAGES;
        if (rs_avro_decode_event(c, msgs[k], lens[k], &ev, err, sizeof(err)) != RS_AVRO_OK) {
            fprintf(stderr, "bench_avro_decode: record %ld: %s\n", i, err);
            return -1;
        }
        check += (uint64_t)ev.quantity.mantissa + (uint64_t)(ev.n_lines + ev.n_bill_lines);
        rs_event_clear(&ev);
    }
    double dt = bench_ab_now_s() - t0;
    if (check == 0)
        fprintf(stderr, "bench_avro_decode: unexpected zero checksum\n");
    return dt;
}

typedef struct slice {
    rs_avro_cache_t *c;
    void **msgs;
    size_t *lens;
    const char *name;
} slice_t;

/* bench_ab's slice: n records by one reader, checked to be that reader. */
static double slice(void *ctx, int direct, long n)
{
    slice_t *sl = ctx;
    rs_avro_cache_set_direct_read(sl->c, direct);
    uint64_t before = rs_avro_cache_direct_reads(sl->c);
    double dt = run(sl->c, sl->msgs, sl->lens, n);
    if (dt >= 0 && (rs_avro_cache_direct_reads(sl->c) - before == (uint64_t)n) != direct) {
        fprintf(stderr, "bench_avro_decode: %s: the direct reader was %s\n", sl->name,
                direct ? "not taken" : "taken");
        return -1;
    }
    return dt;
}

/* Event i of set `set` into *ev (rs_event_init'ed here). */
static void make_event(int set, int i, rs_event_t *ev)
{
    rs_event_init(ev);
    snprintf(ev->contract_id, sizeof(ev->contract_id), "C-%05d", i % 97);
    snprintf(ev->occurred_at, sizeof(ev->occurred_at), "2026-03-%02dT%02d:%02d:00Z", 1 + i % 28,
             i % 24, i % 60);
    ev->occurred_on = rs_date_from_ymd(2026, 3, 1 + i % 28);
    if (set < 2) {
        ev->type = RS_EV_USAGE_RECORDED;
        snprintf(ev->event_id, sizeof(ev->event_id), "usage-%08d", 1000000 + i * 7919);
        snprintf(ev->line_id, sizeof(ev->line_id), "L-%d", 1 + i % 3);
        ev->quantity = (rs_decimal_t){1 + i * 37, i % 3};
        return;
    }
    static rs_milestone_spec_t ms[2] = {{"M-1", {200000, 2}}, {"M-2", {300000, 2}}};
    static rs_line_spec_t lines[3];
    static rs_bill_line_t bl[2];
    snprintf(ev->event_id, sizeof(ev->event_id), "evt-%08d", 2000000 + i * 7919);
    if (set == 2) {
        ev->type = RS_EV_CONTRACT_BOOKED;
        snprintf(ev->customer_id, sizeof(ev->customer_id), "CU-%04d", i);
        memcpy(ev->currency, "USD", 4);
        ev->booked_on = ev->occurred_on;
        snprintf(ev->source_system, sizeof(ev->source_system), "hubspot");
        snprintf(ev->source_record_id, sizeof(ev->source_record_id), "D-%d", i);
        for (int k = 0; k < 3; k++) {
            rs_line_spec_t *l = &lines[k];
            memset(l, 0, sizeof(*l));
            snprintf(l->line_id, sizeof(l->line_id), "L-%d", k + 1);
            snprintf(l->product, sizeof(l->product), "Product %d", k);
            l->recognition = k == 2 ? RS_METHOD_MILESTONE : RS_METHOD_RATABLE_DAILY;
            l->start = ev->occurred_on;
            l->end = ev->occurred_on + 364;
            l->amount = (rs_decimal_t){1200000 + i, 2};
            l->has_ssp = k == 0;
            l->ssp = (rs_decimal_t){1500000, 2};
            if (k == 2) {
                l->n_milestones = 2;
                l->milestones = ms;
                l->amount = (rs_decimal_t){500000, 2};
            }
        }
        ev->n_lines = 3;
        ev->lines = lines; /* borrowed: the caller does not clear it */
        return;
    }
    ev->type = RS_EV_INVOICE_ISSUED;
    snprintf(ev->invoice_id, sizeof(ev->invoice_id), "INV-%06d", i);
    ev->on = ev->occurred_on;
    ev->due_on = ev->occurred_on + 30;
    for (int k = 0; k < 2; k++) {
        memset(&bl[k], 0, sizeof(bl[k]));
        snprintf(bl[k].line_id, sizeof(bl[k].line_id), "L-%d", k + 1);
        bl[k].amount = (rs_decimal_t){100000 + i, 2};
        bl[k].has_tax = k == 0;
        bl[k].tax = (rs_decimal_t){8000, 2};
        bl[k].service_start = k == 0 ? ev->occurred_on : RS_DATE_NONE;
        bl[k].service_end = k == 0 ? ev->occurred_on + 30 : RS_DATE_NONE;
    }
    ev->n_bill_lines = 2;
    ev->bill_lines = bl; /* borrowed */
}

int main(int argc, char **argv)
{
    static const char *const set_name[N_SETS] = {"usage", "newer", "booked", "invoice"};
    static const int32_t set_id[N_SETS] = {ID_USAGE, ID_NEWER, ID_CONTRACTS, ID_INVOICES};
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *only = argc > 2 ? argv[2] : NULL;
    rs_avro_cache_t *c = NULL;
    void *msgs[N_SETS][N_MESSAGES] = {{0}};
    size_t lens[N_SETS][N_MESSAGES];
    char err[512];
    int status = 1;

    if (n <= 0) {
        fprintf(stderr, "usage: bench_avro_decode [N]\n");
        return 1;
    }
    if (rs_avro_cache_new(&c, err, sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_USAGE, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE), err,
                          sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_CONTRACTS, rs_avro_schema_json(RS_AVRO_SCHEMA_CONTRACTS), err,
                          sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_INVOICES, rs_avro_schema_json(RS_AVRO_SCHEMA_INVOICES), err,
                          sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_NEWER, NEWER_USAGE, err, sizeof(err)) != RS_AVRO_OK) {
        fprintf(stderr, "bench_avro_decode: %s\n", err);
        goto out;
    }
    for (int s = 0; s < N_SETS; s++)
        for (int i = 0; i < N_MESSAGES; i++) {
            rs_event_t ev;
            make_event(s, i, &ev);
            if (rs_avro_encode_event(c, set_id[s], &ev, &msgs[s][i], &lens[s][i], err,
                                     sizeof(err)) != RS_AVRO_OK) {
                fprintf(stderr, "bench_avro_decode: %s: %s\n", set_name[s], err);
                goto out;
            }
        }

    for (int s = 0; s < N_SETS; s++) {
        slice_t sl = {c, msgs[s], lens[s], set_name[s]};
        char extra[64];
        for (int direct = 0; direct < 2; direct++) { /* warm up: caches, plans */
            rs_avro_cache_set_direct_read(c, direct);
            if (run(c, msgs[s], lens[s], N_MESSAGES) < 0)
                goto out;
        }
        snprintf(extra, sizeof extra, "record_bytes=%zu ", lens[s][0]);
        if (bench_ab("avro_decode", set_name[s], "reader", extra, n, only, slice, &sl) != 0)
            goto out;
    }
    status = 0;
out:
    for (int s = 0; s < N_SETS; s++)
        for (int i = 0; i < N_MESSAGES; i++)
            free(msgs[s][i]);
    rs_avro_cache_destroy(c);
    return status;
}
