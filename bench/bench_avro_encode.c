/*
 * bench_avro_encode — how fast rs_avro_encode_entry() and
 * rs_avro_encode_balance() write the worker's outputs (Confluent wire
 * format), with the cached writers reused as the worker reuses them, by the
 * direct writer (rs_avro_direct.c, the default) and by the generic path
 * (Avro C's generic value; rs_avro_cache_set_direct(c, 0)) in the same run.
 *
 *   bench_avro_encode [N [WRITER]]   N records per set and writer (default
 *                                    1000000); WRITER direct or generic:
 *                                    that one only (for a profile or
 *                                    callgrind)
 *
 * Three sets of 256 distinct records each, cycled, shaped as the worker's
 * (a generated book's journal: recognition and invoice entries):
 *   recognition  a ratable recognition entry: two postings with account
 *                codes and the product, one source event, no document;
 *   invoice      an invoice entry: three postings (receivable, deferred,
 *                tax), the invoice as document, two source events;
 *   balance      deferred-revenue snapshots, line and contract scope in
 *                turn, as produce_contract_balances writes them.
 * Each record is encoded and its buffer freed, as rs_worker_on_entry does.
 * Before timing, every record's direct bytes are compared with the generic
 * path's (a difference stops the bench). The two writers alternate in ten
 * slices of each set. Prints one key=value line per set and writer on
 * stdout (records, seconds, records_per_s, ns_per_record) and per set the
 * ratio of the two rates (direct / generic). Not a test: nothing fails on a
 * slow machine.
 *
 * Ownership: everything is made and freed in main() through its exit label.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_ab.h"
#include "rs_avro.h"

#define N_RECORDS 256
#define N_SETS 3
#define ID_JOURNAL 7
#define ID_BALANCE 8

typedef struct set {
    rs_entry_t *entries;   /* N_RECORDS, or NULL */
    rs_avro_balance_t *bs; /* N_RECORDS, or NULL */
} set_t;

/* Encode record k of set s: 0, or -1 with the error printed. */
static int encode_one(rs_avro_cache_t *c, const set_t *s, size_t k, void **buf, size_t *len)
{
    char err[512];
    int rc =
        s->entries != NULL
            ? rs_avro_encode_entry(c, ID_JOURNAL, &s->entries[k], buf, len, err, sizeof err)
            : rs_avro_encode_balance(c, ID_BALANCE, &s->bs[k], buf, len, err, sizeof err);
    if (rc != RS_AVRO_OK) {
        fprintf(stderr, "bench_avro_encode: record %zu: %s\n", k, err);
        return -1;
    }
    return 0;
}

/* Encode n records cycling through the set; returns seconds, or -1. */
static double run(rs_avro_cache_t *c, const set_t *s, long n)
{
    uint64_t check = 0;
    double t0 = bench_ab_now_s();
    for (long i = 0; i < n; i++) {
        void *buf;
        size_t len;
        if (encode_one(c, s, (size_t)i % N_RECORDS, &buf, &len) != 0)
            return -1;
        check += len + ((const unsigned char *)buf)[len - 1];
        free(buf);
    }
    double dt = bench_ab_now_s() - t0;
    if (check == 0)
        fprintf(stderr, "bench_avro_encode: unexpected zero checksum\n");
    return dt;
}

typedef struct slice {
    rs_avro_cache_t *c;
    const set_t *set;
    const char *name;
} slice_t;

/* bench_ab's slice: n records by one writer, checked to be that writer. */
static double slice(void *ctx, int direct, long n)
{
    slice_t *sl = ctx;
    rs_avro_cache_set_direct(sl->c, direct);
    uint64_t before = rs_avro_cache_direct_writes(sl->c);
    double dt = run(sl->c, sl->set, n);
    if (dt >= 0 && (rs_avro_cache_direct_writes(sl->c) - before == (uint64_t)n) != direct) {
        fprintf(stderr, "bench_avro_encode: %s: the direct writer was %s\n", sl->name,
                direct ? "not taken" : "taken");
        return -1;
    }
    return dt;
}

static void make_entry(int invoice, int i, rs_entry_t *e)
{
    static const char *const product[] = {"Platform", "Seats", "Support", "API calls"};
    memset(e, 0, sizeof *e);
    snprintf(e->contract_id, sizeof e->contract_id, "C-%06d", 100000 + i * 37);
    snprintf(e->entry_id, sizeof e->entry_id, "%s#%d", e->contract_id, 3 + i % 40);
    e->seq = (uint64_t)(3 + i % 40);
    e->posted_on = rs_date_from_ymd(2026, 1 + i % 12, 28);
    e->period = rs_period_of(e->posted_on);
    e->service_period = e->period;
    snprintf(e->customer_id, sizeof e->customer_id, "CU-%05d", i * 13);
    snprintf(e->line_id, sizeof e->line_id, "L-%d", 1 + i % 3);
    snprintf(e->product, sizeof e->product, "%s", product[i % 4]);
    memcpy(e->currency, i % 5 ? "USD" : "EUR", 4);
    e->exponent = 2;
    rs_money_t amt = 100000 + (rs_money_t)i * 4177;
    if (!invoice) {
        e->kind = RS_ENTRY_RECOGNITION;
        snprintf(e->rule, sizeof e->rule, "ratable_daily");
        e->n_postings = 2;
        e->postings[0] = (rs_posting_t){RS_ACCT_DEFERRED_REVENUE, amt, 0, "2400"};
        e->postings[1] = (rs_posting_t){RS_ACCT_REVENUE, 0, amt, "4000"};
        e->n_sources = 1;
        snprintf(e->sources[0], RS_ID_MAX, "evt-%08d", 2000000 + i * 7919);
        e->source_count = 1;
        e->recognized = amt;
        return;
    }
    e->kind = RS_ENTRY_INVOICE;
    snprintf(e->rule, sizeof e->rule, "invoice");
    snprintf(e->document_id, sizeof e->document_id, "INV-%06d", i);
    rs_money_t tax = amt / 10;
    e->n_postings = 3;
    e->postings[0] = (rs_posting_t){RS_ACCT_ACCOUNTS_RECEIVABLE, amt + tax, 0, "1200"};
    e->postings[1] = (rs_posting_t){RS_ACCT_DEFERRED_REVENUE, 0, amt, "2400"};
    e->postings[2] = (rs_posting_t){RS_ACCT_TAX_PAYABLE, 0, tax, "2200"};
    e->n_sources = 2;
    snprintf(e->sources[0], RS_ID_MAX, "evt-%08d", 3000000 + i * 7919);
    snprintf(e->sources[1], RS_ID_MAX, "evt-%08d", 4000000 + i * 7919);
    e->source_count = 2;
    e->billed = amt;
}

/* Balance i; its strings are in keys[i] (3 x 64 bytes). */
static void make_balance(int i, char (*keys)[64], rs_avro_balance_t *b)
{
    int line = i % 3 != 2;
    snprintf(keys[0], 64, "C-%06d", 100000 + i * 37);
    snprintf(keys[1], 64, "CU-%05d", i * 13);
    snprintf(keys[2], 64, "L-%d", 1 + i % 3);
    memset(b, 0, sizeof *b);
    b->contract_id = keys[0];
    b->customer_id = keys[1];
    b->scope = line ? RS_AVRO_SCOPE_LINE : RS_AVRO_SCOPE_CONTRACT;
    b->line_id = line ? keys[2] : NULL;
    b->currency = "USD";
    b->exponent = 2;
    b->billed = 1200000 + i;
    b->recognized = 300000 + i * 11;
    b->deferred = b->billed - b->recognized;
    b->received = 600000;
    b->as_of_period = rs_period_of(rs_date_from_ymd(2026, 1 + i % 12, 1));
}

int main(int argc, char **argv)
{
    static const char *const set_name[N_SETS] = {"recognition", "invoice", "balance"};
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *only = argc > 2 ? argv[2] : NULL;
    rs_avro_cache_t *c = NULL;
    set_t sets[N_SETS] = {{0}};
    char(*strs)[3][64] = NULL, (*keys)[160] = NULL;
    char err[512];
    int status = 1;

    if (n <= 0) {
        fprintf(stderr, "usage: bench_avro_encode [N [direct|generic]]\n");
        return 1;
    }
    sets[0].entries = calloc(N_RECORDS, sizeof(rs_entry_t));
    sets[1].entries = calloc(N_RECORDS, sizeof(rs_entry_t));
    sets[2].bs = calloc(N_RECORDS, sizeof(rs_avro_balance_t));
    strs = calloc(N_RECORDS, sizeof *strs);
    keys = calloc(N_RECORDS, sizeof *keys);
    if (!sets[0].entries || !sets[1].entries || !sets[2].bs || !strs || !keys) {
        fprintf(stderr, "bench_avro_encode: out of memory\n");
        goto out;
    }
    if (rs_avro_cache_new(&c, err, sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_JOURNAL, rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY), err,
                          sizeof(err)) != RS_AVRO_OK ||
        rs_avro_cache_add(c, ID_BALANCE, rs_avro_schema_json(RS_AVRO_SCHEMA_DEFERRED_BALANCE),
                          err, sizeof(err)) != RS_AVRO_OK) {
        fprintf(stderr, "bench_avro_encode: %s\n", err);
        goto out;
    }
    for (int i = 0; i < N_RECORDS; i++) {
        make_entry(0, i, &sets[0].entries[i]);
        make_entry(1, i, &sets[1].entries[i]);
        make_balance(i, strs[i], &sets[2].bs[i]);
        snprintf(keys[i], sizeof keys[i], "%s/%s%s", strs[i][0],
                 sets[2].bs[i].line_id ? "line/" : "contract",
                 sets[2].bs[i].line_id ? sets[2].bs[i].line_id : "");
        sets[2].bs[i].snapshot_key = keys[i];
    }

    /* The two writers give the same bytes (test_codec_direct proves it on
     * more shapes; this only guards the figures). */
    for (int s = 0; s < N_SETS; s++)
        for (size_t k = 0; k < N_RECORDS; k++) {
            void *b[2] = {NULL, NULL};
            size_t l[2] = {0, 0};
            int same = 0;
            for (int direct = 0; direct < 2; direct++) {
                rs_avro_cache_set_direct(c, direct);
                if (encode_one(c, &sets[s], k, &b[direct], &l[direct]) != 0)
                    break;
            }
            same = b[0] && b[1] && l[0] == l[1] && memcmp(b[0], b[1], l[0]) == 0;
            free(b[0]);
            free(b[1]);
            if (!same) {
                fprintf(stderr, "bench_avro_encode: %s record %zu: the writers differ\n",
                        set_name[s], k);
                goto out;
            }
        }

    for (int s = 0; s < N_SETS; s++) {
        slice_t sl = {c, &sets[s], set_name[s]};
        if (bench_ab("avro_encode", set_name[s], "writer", "", n, only, slice, &sl) != 0)
            goto out;
    }
    status = 0;
out:
    free(sets[0].entries);
    free(sets[1].entries);
    free(sets[2].bs);
    free(strs);
    free(keys);
    rs_avro_cache_destroy(c);
    return status;
}
