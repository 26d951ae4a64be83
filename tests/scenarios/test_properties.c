/*
 * test_properties.c — property tests over generated contracts.
 *
 * A seeded generator (xorshift, so every run is the same and a failure names
 * its seed) makes contracts with random methods, starts and ends (the 28th
 * to 31st, leap days, one-day services, multi-year services), tiny and large
 * amounts, every currency exponent (JPY 0, USD 2, KWD 3, CLF 4), SSP
 * bundles, usage with sub-cent prices, invoices at random dates and partial
 * payments. After recognizing everything, these must hold:
 *   P1 every line's schedule sums exactly to its transaction price
 *      (usage: to max(minimum, usage)), and no period is negative;
 *   P2 R(d) never decreases and is 0 before the service;
 *   P3 every entry balances, with non-negative debits and credits;
 *   P4 per line: deferred, unbilled >= 0, at most one non-zero, and
 *      deferred - unbilled = billed - recognized, in the balances report at
 *      every period end and in the engine's own line state;
 *   P5 SSP allocation sums exactly to the contract total.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rs_test_util.h"

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t next(rng_t *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static int pick(rng_t *r, int n)
{
    return (int)(next(r) % (uint64_t)n);
}

static const struct {
    const char *code;
    int exp;
} currencies[] = {{"JPY", 0}, {"USD", 2}, {"KWD", 3}, {"CLF", 4}, {"EUR", 2}};

/* A decimal string for `minor` units with `exp` digits. */
static void dec(char *buf, size_t n, int64_t minor, int exp)
{
    rs_money_format(minor, exp, buf, n);
}

static int64_t amount(rng_t *r)
{
    switch (pick(r, 4)) {
    case 0:
        return 1 + pick(r, 9); /* tiny */
    case 1:
        return 100 + pick(r, 100000);
    case 2:
        return (int64_t)(next(r) % 100000000000ULL); /* up to 10^11 */
    default:
        return 1000 * (1 + pick(r, 1000));
    }
}

static rs_date_t random_start(rng_t *r)
{
    int y = 2023 + pick(r, 6); /* includes leap years 2024 and 2028 */
    int m = 1 + pick(r, 12);
    int dim = rs_days_in_month(y, m);
    int d = pick(r, 3) == 0 ? dim - pick(r, 4) : 1 + pick(r, dim); /* bias to 28th-31st */
    if (d < 1)
        d = 1;
    return rs_date_from_ymd(y, m, d);
}

static int length_days(rng_t *r)
{
    switch (pick(r, 5)) {
    case 0:
        return 1; /* one-day service */
    case 1:
        return 1 + pick(r, 40);
    case 2:
        return 365 + pick(r, 2);
    case 3:
        return 365 * 3 + pick(r, 30); /* long */
    default:
        return 28 + pick(r, 400);
    }
}

typedef struct gen_line {
    char id[16];
    int method;
    rs_date_t start, end;
    int64_t amount;
    int usage_price_micro;
    int64_t usage_exact_micro_units; /* sum of qty x price in 10^-6 x 10^-6 */
} gen_line_t;

static const char *methods[] = {"ratable_daily", "ratable_monthly", "point_in_time", "usage"};

/* Generate one contract's events as JSON Lines into buf. */
static void gen_contract(rng_t *r, int ci, char *buf, size_t cap, rs_period_t *last)
{
    int cur = pick(r, 5);
    int exp = currencies[cur].exp;
    int nl = 1 + pick(r, 4);
    int ssp = pick(r, 3) == 0;
    gen_line_t L[4];
    size_t o = 0;
    char d1[16], d2[16], a[48], s[48];
    rs_date_t booked = random_start(r);
    o += (size_t)snprintf(
        buf + o, cap - o,
        "{\"event_id\":\"c%d-b\",\"type\":\"contract.booked\",\"contract_id\":\"C%d\","
        "\"occurred_at\":\"%sT00:00:00Z\",\"customer_id\":\"K%d\",\"currency\":\"%s\","
        "\"booked_on\":\"%s\",\"lines\":[",
        ci, ci, rs_date_format(booked, d1, sizeof(d1)), ci % 7, currencies[cur].code, d1);
    for (int i = 0; i < nl; i++) {
        gen_line_t *l = &L[i];
        snprintf(l->id, sizeof(l->id), "L%d", i);
        l->method = pick(r, 4);
        l->start = booked + pick(r, 60) - 30;
        l->end = l->start + length_days(r) - 1;
        l->amount = l->method == 3 && pick(r, 2) ? 0 : amount(r);
        l->usage_price_micro = 1 + pick(r, 2000000);
        o += (size_t)snprintf(
            buf + o, cap - o,
            "%s{\"line_id\":\"%s\",\"product\":\"p\",\"recognition\":\"%s\",\"start\":\"%s\","
            "\"end\":\"%s\",\"amount\":\"%s\"",
            i ? "," : "", l->id, methods[l->method], rs_date_format(l->start, d1, sizeof(d1)),
            rs_date_format(l->end, d2, sizeof(d2)), (dec(a, sizeof(a), l->amount, exp), a));
        if (ssp) {
            dec(s, sizeof(s), 1 + pick(r, 1000000), exp);
            o += (size_t)snprintf(buf + o, cap - o, ",\"ssp\":\"%s\"", s);
        }
        if (l->method == 3)
            o += (size_t)snprintf(buf + o, cap - o, ",\"unit_price\":\"0.%06d\"",
                                  l->usage_price_micro % 1000000);
        o += (size_t)snprintf(buf + o, cap - o, "}");
        rs_period_t pe = rs_period_of(l->end);
        if (pe > *last)
            *last = pe;
    }
    o += (size_t)snprintf(buf + o, cap - o, "]}\n");
    /* invoices: 0-3, random lines, random dates, some with tax */
    int ninv = pick(r, 4);
    for (int k = 0; k < ninv; k++) {
        gen_line_t *l = &L[pick(r, nl)];
        rs_date_t on = l->start + pick(r, (int)(l->end - l->start + 60)) - 10;
        int64_t amt = l->amount > 0 ? (int64_t)(next(r) % (uint64_t)(l->amount + 1)) : 100;
        o += (size_t)snprintf(
            buf + o, cap - o,
            "{\"event_id\":\"c%d-i%d\",\"type\":\"invoice.issued\",\"contract_id\":\"C%d\","
            "\"occurred_at\":\"%sT00:00:00Z\",\"invoice_id\":\"INV%d-%d\",\"issued_on\":"
            "\"%s\",\"lines\":[{\"line_id\":\"%s\",\"amount\":\"%s\"%s}]}\n",
            ci, k, ci, rs_date_format(on, d1, sizeof(d1)), ci, k, d1, l->id,
            (dec(a, sizeof(a), amt, exp), a), pick(r, 2) ? ",\"tax\":\"1\"" : "");
        if (pick(r, 2)) {
            int64_t pay = 1 + (int64_t)(next(r) % (uint64_t)(amt + 2));
            o += (size_t)snprintf(
                buf + o, cap - o,
                "{\"event_id\":\"c%d-p%d\",\"type\":\"payment.received\",\"contract_id\":"
                "\"C%d\",\"occurred_at\":\"%sT00:00:00Z\",\"payment_id\":\"P%d-%d\","
                "\"invoice_id\":\"INV%d-%d\",\"amount\":\"%s\",\"received_on\":\"%s\"}\n",
                ci, k, ci, rs_date_format(on + pick(r, 40), d1, sizeof(d1)), ci, k, ci, k,
                (dec(a, sizeof(a), pay, exp), a), d1);
        }
    }
    /* usage */
    for (int i = 0; i < nl; i++) {
        if (L[i].method != 3)
            continue;
        int nu = pick(r, 6);
        for (int k = 0; k < nu; k++) {
            rs_date_t d = L[i].start + pick(r, (int)(L[i].end - L[i].start + 1));
            o += (size_t)snprintf(
                buf + o, cap - o,
                "{\"event_id\":\"c%d-u%d-%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"line_id\":\"%s\",\"quantity\":"
                "\"%d.%03d\"}\n",
                ci, i, k, ci, rs_date_format(d, d1, sizeof(d1)), L[i].id, pick(r, 100000),
                pick(r, 1000));
        }
    }
}

static void check_world(rs_harness_t *h, rs_period_t last, uint64_t seed)
{
    rs_engine_advance(h->engine, last);
    cr_assert_eq(rs_h_unbalanced_entries(h), 0, "seed %llu", (unsigned long long)seed);
    size_t nl = rs_engine_line_count(h->engine);
    for (size_t i = 0; i < nl; i++) {
        rs_line_view_t v;
        rs_engine_line_get(h->engine, i, &v);
        /* P2 */
        rs_money_t prev = rs_engine_line_scheduled(h->engine, i, v.start - 1);
        cr_assert_eq(prev, 0, "seed %llu %s/%s", (unsigned long long)seed, v.contract_id,
                     v.line_id);
        for (rs_date_t d = v.start; d <= v.end + 1; d += (v.end - v.start) / 50 + 1) {
            rs_money_t now = rs_engine_line_scheduled(h->engine, i, d);
            cr_assert_geq(now, prev, "seed %llu %s/%s", (unsigned long long)seed, v.contract_id,
                          v.line_id);
            prev = now;
        }
        /* P1: recognized total equals the schedule's end value */
        rs_money_t final = rs_engine_line_scheduled(h->engine, i, v.end);
        if (v.method != RS_METHOD_USAGE)
            cr_assert_eq(final, v.price, "seed %llu %s/%s", (unsigned long long)seed,
                         v.contract_id, v.line_id);
        else
            cr_assert_geq(final, v.price);
        cr_assert_eq(v.recognized, final, "seed %llu %s/%s: recognized %lld, scheduled %lld",
                     (unsigned long long)seed, v.contract_id, v.line_id,
                     (long long)v.recognized, (long long) final);
        /* P4 in the engine's own state */
        cr_assert_geq(v.deferred, 0);
        cr_assert_geq(v.unbilled, 0);
        cr_assert(v.deferred == 0 || v.unbilled == 0);
        cr_assert_eq(v.deferred - v.unbilled, v.billed - v.recognized);
    }
    /* P1 per period, and P4 in the balances report at every period end */
    rs_schedule_row_t *rows;
    size_t n;
    cr_assert_eq(rs_report_schedule(h->engine, &h->journal, last, &rows, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(rows[i].recognized, 0, "seed %llu %s/%s %d", (unsigned long long)seed,
                      rows[i].contract_id, rows[i].line_id, rows[i].period);
    free(rows);
    for (rs_period_t p = last - 40; p <= last; p += 7) {
        rs_balance_row_t *b;
        cr_assert_eq(rs_report_balances(h->engine, &h->journal, p, &b, &n), 0);
        for (size_t i = 0; i < n; i++) {
            cr_assert_geq(b[i].deferred, 0);
            cr_assert_geq(b[i].unbilled, 0);
            cr_assert(b[i].deferred == 0 || b[i].unbilled == 0);
            cr_assert_eq(b[i].deferred - b[i].unbilled, b[i].billed - b[i].recognized,
                         "seed %llu %s/%s", (unsigned long long)seed, b[i].contract_id,
                         b[i].line_id);
        }
        free(b);
        /* rollforward identity */
        rs_rollforward_row_t *rf;
        size_t nr;
        cr_assert_eq(rs_report_rollforward(h->engine, &h->journal, p, &rf, &nr), 0);
        for (size_t i = 0; i < nr; i++)
            cr_assert_eq(rf[i].opening + rf[i].billed - rf[i].recognized - rf[i].credits,
                         rf[i].closing);
        free(rf);
    }
}

Test(properties, generated_contracts)
{
    static char buf[1 << 16];
    for (uint64_t seed = 1; seed <= 40; seed++) {
        rng_t r = {seed * 0x9E3779B97F4A7C15ULL};
        rs_harness_t h;
        rs_harness_init(&h, NULL);
        rs_period_t last = 0;
        for (int c = 0; c < 25; c++) {
            gen_contract(&r, c, buf, sizeof(buf), &last);
            cr_assert_eq(rs_harness_feed(&h, buf), 0, "seed %llu: %s", (unsigned long long)seed,
                         h.last_error);
        }
        check_world(&h, last + 1, seed);
        rs_harness_free(&h);
    }
}

/* P5: SSP allocation over random weights sums to the total to the minor unit. */
Test(properties, ssp_allocation_sums)
{
    static char buf[1 << 14];
    rng_t r = {12345};
    for (int t = 0; t < 300; t++) {
        rs_harness_t h;
        rs_harness_init(&h, NULL);
        int n = 2 + pick(&r, 6), exp = currencies[pick(&r, 5)].exp;
        int64_t total = 0;
        size_t o = (size_t)snprintf(
            buf, sizeof(buf),
            "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"S\","
            "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":"
            "\"%s\",\"booked_on\":\"2026-01-01\",\"lines\":[",
            exp == 0   ? "JPY"
            : exp == 3 ? "KWD"
            : exp == 4 ? "CLF"
                       : "USD");
        for (int i = 0; i < n; i++) {
            char a[48], s[48];
            int64_t amt = amount(&r);
            total += amt;
            dec(a, sizeof(a), amt, exp);
            dec(s, sizeof(s), pick(&r, 5) == 0 ? 0 : amount(&r), exp);
            o += (size_t)snprintf(buf + o, sizeof(buf) - o,
                                  "%s{\"line_id\":\"l%d\",\"product\":\"p\",\"recognition\":"
                                  "\"point_in_time\",\"start\":\"2026-01-01\",\"amount\":"
                                  "\"%s\",\"ssp\":\"%s\"}",
                                  i ? "," : "", i, a, s);
        }
        snprintf(buf + o, sizeof(buf) - o, "]}");
        cr_assert_eq(rs_harness_feed(&h, buf), 0, "%s", h.last_error);
        int64_t sum = 0;
        for (size_t i = 0; i < rs_engine_line_count(h.engine); i++) {
            rs_line_view_t v;
            rs_engine_line_get(h.engine, i, &v);
            cr_assert_geq(v.price, 0);
            sum += v.price;
        }
        cr_assert_eq(sum, total, "trial %d", t);
        rs_harness_free(&h);
    }
}
