/*
 * bench_engine.c — engine throughput on one core, no I/O.
 *
 *   bench_engine [CONTRACTS [USAGE_PER_CONTRACT [MONTHS]]]
 *
 * Builds a synthetic book in memory (decoded events, so decoding is not
 * measured): per contract a booking with a ratable line and a usage line, an
 * invoice and a payment per month, and USAGE_PER_CONTRACT usage records spread
 * over MONTHS months; a month-end close for every month. Events are applied
 * in date order, the way a partition delivers them. Prints events/s, entries
 * emitted, ns/event, and the same figures for export of every contract's
 * state (what a worker writes per batch); and the engine's memory
 * (rs_engine_memory_bytes) per contract; and digests of every entry emitted
 * and every record exported, which a change to the engine's speed must
 * leave as they were. Progress goes to stderr.
 *
 * `bench_engine 20000 0 1` is a book of simple contracts: a ratable and a
 * usage line, one invoice and one payment each.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rs_engine.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A compact event descriptor (16 bytes): the book is millions of these, and
 * each is turned into the one reused rs_event_t just before it is applied,
 * as a worker decodes each message into one reused event. */
typedef struct desc {
    rs_date_t day;
    uint8_t type, tie;
    uint16_t month;
    int32_t contract;
    int32_t n; /* usage index or quantity seed */
} desc_t;

static int cmp_desc(const void *a, const void *b)
{
    const desc_t *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    if (x->tie != y->tie)
        return x->tie < y->tie ? -1 : 1;
    if (x->contract != y->contract)
        return x->contract < y->contract ? -1 : 1;
    return (x->n > y->n) - (x->n < y->n);
}

static rs_line_spec_t lines[2];
static rs_bill_line_t bill;

/* Fill ev (owning nothing) from a descriptor. */
static void materialize(const desc_t *d, rs_event_t *e, rs_date_t start, int months)
{
    memset(e, 0, offsetof(rs_event_t, lines));
    e->lines = NULL;
    e->n_lines = 0;
    e->bill_lines = NULL;
    e->n_bill_lines = 0;
    e->occurred_on = d->day;
    e->booked_on = e->effective_on = e->completed_on = e->on = e->due_on = RS_DATE_NONE;
    e->period = RS_PERIOD_NONE;
    snprintf(e->contract_id, sizeof(e->contract_id), "C%07d", d->contract);
    switch (d->type) {
    case RS_EV_CONTRACT_BOOKED:
        e->type = RS_EV_CONTRACT_BOOKED;
        snprintf(e->event_id, sizeof(e->event_id), "b%d", d->contract);
        snprintf(e->customer_id, sizeof(e->customer_id), "K%d", d->contract % 1000);
        memcpy(e->currency, "USD", 4);
        e->booked_on = start;
        lines[0].end = lines[1].end = rs_period_last_day(rs_period_of(start) + months - 1);
        lines[0].start = lines[1].start = start;
        lines[0].amount = (rs_decimal_t){120000 + d->contract % 1000, 2};
        e->lines = lines;
        e->n_lines = 2;
        break;
    case RS_EV_INVOICE_ISSUED:
        e->type = RS_EV_INVOICE_ISSUED;
        snprintf(e->event_id, sizeof(e->event_id), "i%d-%d", d->contract, d->month);
        snprintf(e->invoice_id, sizeof(e->invoice_id), "INV%d-%d", d->contract, d->month);
        e->on = d->day;
        e->bill_lines = &bill;
        e->n_bill_lines = 1;
        break;
    case RS_EV_PAYMENT_RECEIVED:
        e->type = RS_EV_PAYMENT_RECEIVED;
        snprintf(e->event_id, sizeof(e->event_id), "p%d-%d", d->contract, d->month);
        snprintf(e->invoice_id, sizeof(e->invoice_id), "INV%d-%d", d->contract, d->month);
        snprintf(e->payment_id, sizeof(e->payment_id), "PAY%d-%d", d->contract, d->month);
        e->on = d->day;
        e->amount = (rs_decimal_t){10000, 2};
        break;
    case RS_EV_USAGE_RECORDED:
        e->type = RS_EV_USAGE_RECORDED;
        snprintf(e->event_id, sizeof(e->event_id), "u%d-%d", d->contract, d->n);
        snprintf(e->line_id, sizeof(e->line_id), "api");
        e->quantity = (rs_decimal_t){(d->n * 7919) % 100000, 0};
        break;
    default:
        e->type = RS_EV_PERIOD_CLOSED;
        e->contract_id[0] = '\0';
        snprintf(e->event_id, sizeof(e->event_id), "close-%d", d->month);
        e->period = rs_period_of(start) + d->month;
    }
}

static unsigned long long entries;
static uint64_t entries_digest = 0xcbf29ce484222325ULL, records_digest = 0xcbf29ce484222325ULL;

/* FNV-1a of n bytes, continuing h: the digests printed show that a change
 * meant to make the engine faster left its output alone. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s, strlen(s) + 1);
}

static void count(void *opaque, const rs_entry_t *e)
{
    (void)opaque;
    entries++;
    uint64_t h = entries_digest;
    h = fnv_str(h, e->entry_id);
    h = fnv_str(h, e->rule);
    h = fnv_str(h, e->line_id);
    h = fnv_str(h, e->document_id);
    int64_t nums[] = {e->posted_on,  e->period,    e->service_period, e->kind,
                      e->n_postings, e->n_sources, e->source_count,   e->billed,
                      e->recognized, e->received};
    h = fnv(h, nums, sizeof(nums));
    for (int i = 0; i < e->n_postings; i++) {
        int64_t p[] = {e->postings[i].account, e->postings[i].debit, e->postings[i].credit};
        h = fnv(h, p, sizeof(p));
        h = fnv_str(h, e->postings[i].code);
    }
    for (int i = 0; i < e->n_sources; i++)
        h = fnv_str(h, e->sources[i]);
    entries_digest = h;
}

int main(int argc, char **argv)
{
    int contracts = argc > 1 ? atoi(argv[1]) : 20000;
    int usage = argc > 2 ? atoi(argv[2]) : 100;
    int months = argc > 3 ? atoi(argv[3]) : 12;
    rs_date_t start = rs_date_from_ymd(2026, 1, 1);
    uint64_t rnd = 88172645463325252ULL;
    size_t cap = (size_t)contracts * (size_t)(1 + 2 * months + usage) + (size_t)months;
    desc_t *D = malloc(cap * sizeof(*D));
    size_t n = 0;
    if (D == NULL || contracts <= 0 || months <= 0 || usage < 0) {
        fprintf(stderr, "bench_engine: bad arguments\n");
        return 1;
    }
    snprintf(lines[0].line_id, RS_ID_MAX, "plan");
    snprintf(lines[0].product, RS_NAME_MAX, "Plan");
    lines[0].recognition = RS_METHOD_RATABLE_DAILY;
    snprintf(lines[1].line_id, RS_ID_MAX, "api");
    snprintf(lines[1].product, RS_NAME_MAX, "API");
    lines[1].recognition = RS_METHOD_USAGE;
    lines[1].amount = (rs_decimal_t){0, 0};
    lines[1].has_unit_price = 1;
    lines[1].unit_price = (rs_decimal_t){125, 6};
    snprintf(bill.line_id, RS_ID_MAX, "plan");
    bill.amount = (rs_decimal_t){10000, 2};
    bill.service_start = bill.service_end = RS_DATE_NONE;

    fprintf(stderr, "bench_engine: building contracts=%d usage_per_contract=%d months=%d\n",
            contracts, usage, months);
    for (int c = 0; c < contracts; c++) {
        D[n++] = (desc_t){start, RS_EV_CONTRACT_BOOKED, 0, 0, c, 0};
        for (int m = 0; m < months; m++) {
            rs_date_t d = rs_period_first_day(rs_period_of(start) + m) + c % 5;
            D[n++] = (desc_t){d, RS_EV_INVOICE_ISSUED, 1, (uint16_t)m, c, 0};
            D[n++] = (desc_t){d + 3, RS_EV_PAYMENT_RECEIVED, 1, (uint16_t)m, c, 0};
        }
        for (int u = 0; u < usage; u++) {
            rnd ^= rnd << 13;
            rnd ^= rnd >> 7;
            rnd ^= rnd << 17;
            D[n++] = (desc_t){
                start + (int)(rnd % (uint64_t)(months * 28)), RS_EV_USAGE_RECORDED, 1, 0, c, u};
        }
    }
    for (int m = 0; m < months; m++)
        D[n++] = (desc_t){rs_period_first_day(rs_period_of(start) + m + 1) + 1,
                          RS_EV_PERIOD_CLOSED,
                          2,
                          (uint16_t)m,
                          -1,
                          0};
    qsort(D, n, sizeof(*D), cmp_desc);

    /* the cost of materializing alone, to subtract */
    rs_event_t ev;
    rs_event_init(&ev);
    double m0 = now();
    for (size_t i = 0; i < n; i++)
        materialize(&D[i], &ev, start, months);
    double m1 = now();

    rs_engine_t *eng;
    char err[512];
    if (rs_engine_new(&eng, NULL, err, sizeof(err))) {
        fprintf(stderr, "bench_engine: %s\n", err);
        return 1;
    }
    rs_engine_set_sink(eng, count, NULL);
    double t0 = now();
    size_t step = n / 10 ? n / 10 : 1;
    for (size_t i = 0; i < n; i++) {
        materialize(&D[i], &ev, start, months);
        int rc = rs_engine_apply(eng, &ev, err, sizeof(err));
        if (rc != RS_APPLY_OK) {
            fprintf(stderr, "bench_engine: event %zu: rc %d: %s\n", i, rc, err);
            return 1;
        }
        if ((i + 1) % step == 0)
            fprintf(stderr, "bench_engine: progress applied=%zu/%zu rate=%.0f/s\n", i + 1, n,
                    (double)(i + 1) / (now() - t0));
    }
    double t1 = now();
    size_t mem = rs_engine_memory_bytes(eng);
    const char *const *ids;
    size_t nchanged = rs_engine_take_changed(eng, &ids);
    size_t bytes = 0;
    double t2 = now();
    for (size_t i = 0; i < nchanged; i++) {
        void *buf;
        size_t len;
        if (rs_engine_export_contract(eng, ids[i], &buf, &len, err, sizeof(err))) {
            fprintf(stderr, "bench_engine: export: %s\n", err);
            return 1;
        }
        bytes += len;
        records_digest = fnv(records_digest, buf, len);
        free(buf);
    }
    double t3 = now();
    for (size_t i = 0; i < nchanged; i++) { /* the packed form too (digest only) */
        void *buf;
        size_t len;
        if (rs_engine_pack_contract(eng, ids[i], &buf, &len, err, sizeof(err))) {
            fprintf(stderr, "bench_engine: pack: %s\n", err);
            return 1;
        }
        records_digest = fnv(records_digest, buf, len);
        free(buf);
    }
    double apply = (t1 - t0) - (m1 - m0);
    printf("engine apply: %zu events in %.3f s = %.0f events/s, %.0f ns/event, %llu entries "
           "(building the events, %.0f ns each, not counted)\n",
           n, apply, (double)n / apply, apply * 1e9 / (double)n, entries,
           (m1 - m0) * 1e9 / (double)n);
    printf("state export: %zu contracts in %.3f s = %.0f contracts/s, %.0f bytes/contract\n",
           nchanged, t3 - t2, (double)nchanged / (t3 - t2),
           nchanged ? (double)bytes / (double)nchanged : 0.0);
    printf("engine memory: %zu bytes held (rs_engine_memory_bytes) = %.0f bytes/contract\n",
           mem, (double)mem / (double)contracts);
    printf("output digests (FNV-1a): entries %016llx, records %016llx\n",
           (unsigned long long)entries_digest, (unsigned long long)records_digest);
    rs_engine_destroy(eng);
    free(D);
    return 0;
}
