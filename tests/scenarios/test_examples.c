/*
 * test_examples.c — the worked examples of shared/reference/examples.md
 * (1-9, 11, 13, 15) as scenarios with exact amounts, plus the known failure
 * modes of other tools that the examples list.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rs_test_util.h"

static rs_harness_t h;

static void setup(void)
{
    rs_harness_init(&h, NULL);
}

static void teardown(void)
{
    rs_harness_free(&h);
}

TestSuite(examples, .init = setup, .fini = teardown);

#define USD(s) rs_amt(s, 2)

/* Book + invoice + payment of one single-line contract. */
static void annual(const char *id, const char *method, const char *start, const char *end,
                   const char *amount, const char *paid_on)
{
    char buf[2048];
    snprintf(
        buf, sizeof(buf),
        "{\"event_id\":\"%s-b\",\"type\":\"contract.booked\",\"contract_id\":\"%s\","
        "\"occurred_at\":\"%sT09:00:00Z\",\"customer_id\":\"cust-%s\",\"currency\":\"USD\","
        "\"booked_on\":\"%s\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"plan\","
        "\"recognition\":\"%s\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\"}]}\n"
        "{\"event_id\":\"%s-i\",\"type\":\"invoice.issued\",\"contract_id\":\"%s\","
        "\"occurred_at\":\"%sT09:00:00Z\",\"invoice_id\":\"INV-%s\",\"issued_on\":\"%s\","
        "\"lines\":[{\"line_id\":\"L1\",\"amount\":\"%s\"}]}\n",
        id, id, start, id, start, method, start, end, amount, id, id, start, id, start, amount);
    cr_assert_eq(rs_harness_feed(&h, buf), 0, "%s", h.last_error);
    if (paid_on) {
        snprintf(buf, sizeof(buf),
                 "{\"event_id\":\"%s-p\",\"type\":\"payment.received\",\"contract_id\":\"%s\","
                 "\"occurred_at\":\"%sT10:00:00Z\",\"payment_id\":\"PAY-%s\",\"invoice_id\":"
                 "\"INV-%s\",\"amount\":\"%s\",\"received_on\":\"%s\"}\n",
                 id, id, paid_on, id, id, amount, paid_on);
        cr_assert_eq(rs_harness_feed(&h, buf), 0, "%s", h.last_error);
    }
}

/* Example 1: $12,000 annual, paid upfront, ratable: $1,000 a month. */
Test(examples, ex1_annual_12000_paid_upfront)
{
    annual("C1", "ratable_monthly", "2026-01-01", "2026-12-31", "12000.00", "2026-01-01");
    rs_engine_advance(h.engine, 2026 * 12 + 11);
    for (int m = 1; m <= 12; m++) {
        char p[24];
        snprintf(p, sizeof(p), "2026-%02d", m);
        cr_assert_eq(rs_h_recognized(&h, "C1", "L1", p, "2026-12"), USD("1000.00"), "%s", p);
    }
    rs_balance_row_t b = rs_h_balance(&h, "C1", "L1", "2026-03");
    cr_assert_eq(b.recognized, USD("3000.00"));
    cr_assert_eq(b.deferred, USD("9000.00"));
    cr_assert_eq(b.unbilled, 0);
    cr_assert_eq(b.billed, USD("12000.00"));
    cr_assert_eq(b.received, USD("12000.00"));
    cr_assert_eq(rs_h_unbalanced_entries(&h), 0);
}

/* Example 2: $24,000 booked and paid Jan 1: deferred +24,000, 2,000 a month. */
Test(examples, ex2_rollforward_24000)
{
    annual("C2", "ratable_monthly", "2026-01-01", "2026-12-31", "24000.00", "2026-01-01");
    rs_engine_advance(h.engine, 2026 * 12 + 1);
    rs_rollforward_row_t *r = NULL;
    size_t n = 0;
    cr_assert_eq(rs_report_rollforward(h.engine, &h.journal, 2026 * 12 + 1, &r, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(r[0].opening, 0);
    cr_assert_eq(r[0].billed, USD("24000.00"));
    cr_assert_eq(r[0].recognized, USD("2000.00"));
    cr_assert_eq(r[0].credits, 0);
    cr_assert_eq(r[0].closing, USD("22000.00"));
    cr_assert_eq(r[1].opening, USD("22000.00"));
    cr_assert_eq(r[1].billed, 0);
    cr_assert_eq(r[1].recognized, USD("2000.00"));
    cr_assert_eq(r[1].closing, USD("20000.00"));
    cr_assert_str_eq(r[0].currency, "USD");
    free(r);
}

/* Example 3: $2,400 for 12 months from Apr 1, monthly method. */
Test(examples, ex3_2400_from_april)
{
    annual("C3", "ratable_monthly", "2026-04-01", "2027-03-31", "2400.00", NULL);
    rs_engine_advance(h.engine, 2026 * 12 + 5);
    rs_balance_row_t b = rs_h_balance(&h, "C3", "L1", "2026-04");
    cr_assert_eq(b.recognized, USD("200.00"));
    cr_assert_eq(b.deferred, USD("2200.00"));
    b = rs_h_balance(&h, "C3", "L1", "2026-06");
    cr_assert_eq(b.recognized, USD("600.00"));
    cr_assert_eq(b.deferred, USD("1800.00"));
    cr_assert_eq(b.received, 0);
}

/* Example 4: $1,200 for Jan-Dec: by month 100 each; by day the days decide. */
Test(examples, ex4_monthly_vs_daily)
{
    annual("M", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00", "2026-01-01");
    annual("D", "ratable_daily", "2026-01-01", "2026-12-31", "1200.00", "2026-01-01");
    rs_engine_advance(h.engine, 2026 * 12 + 11);
    rs_money_t sum = 0;
    for (int m = 1; m <= 12; m++) {
        char p[24];
        snprintf(p, sizeof(p), "2026-%02d", m);
        cr_assert_eq(rs_h_recognized(&h, "M", "L1", p, "2026-12"), USD("100.00"));
        sum += rs_h_recognized(&h, "D", "L1", p, "2026-12");
    }
    /* 120000 cents x 31/365 = 10191.78 -> 101.92; x 59/365 = 19397.26 -> 193.97 */
    cr_assert_eq(rs_h_recognized(&h, "D", "L1", "2026-01", "2026-12"), USD("101.92"));
    cr_assert_eq(rs_h_recognized(&h, "D", "L1", "2026-02", "2026-12"), USD("92.05"));
    cr_assert_eq(sum, USD("1200.00"));
}

/* Example 5: $120,000 = onboarding 20,000 at once + access 100,000 over 12 months. */
Test(examples, ex5_onboarding_plus_access)
{
    const char *ev =
        "{\"event_id\":\"b5\",\"type\":\"contract.booked\",\"contract_id\":\"C5\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K5\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":["
        "{\"line_id\":\"onboarding\",\"product\":\"Onboarding\",\"recognition\":"
        "\"point_in_time\",\"start\":\"2026-01-01\",\"end\":\"2026-01-01\",\"amount\":"
        "\"20000.00\"},"
        "{\"line_id\":\"access\",\"product\":\"Software access\",\"recognition\":"
        "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
        "\"100000.00\"}]}\n"
        "{\"event_id\":\"i5\",\"type\":\"invoice.issued\",\"contract_id\":\"C5\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"invoice_id\":\"INV5\",\"issued_on\":"
        "\"2026-01-01\",\"lines\":[{\"line_id\":\"onboarding\",\"amount\":\"20000.00\"},"
        "{\"line_id\":\"access\",\"amount\":\"100000.00\"}]}\n"
        "{\"event_id\":\"p5\",\"type\":\"payment.received\",\"contract_id\":\"C5\","
        "\"occurred_at\":\"2026-01-02T00:00:00Z\",\"payment_id\":\"PAY5\",\"invoice_id\":"
        "\"INV5\",\"amount\":\"120000.00\",\"received_on\":\"2026-01-02\"}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 2);
    rs_balance_row_t on = rs_h_balance(&h, "C5", "onboarding", "2026-03");
    rs_balance_row_t ac = rs_h_balance(&h, "C5", "access", "2026-03");
    cr_assert_eq(on.recognized + ac.recognized, USD("45000.00"));
    cr_assert_eq(on.deferred + ac.deferred, USD("75000.00"));
    cr_assert_eq(on.received + ac.received, USD("120000.00"));

    rs_waterfall_row_t *w = NULL;
    size_t n = 0;
    cr_assert_eq(rs_report_waterfall(h.engine, &h.journal, 2026 * 12 + 2, &w, &n), 0);
    cr_assert_eq(n, 12);
    cr_assert_eq(w[0].recognized, USD("28333.33"));
    rs_money_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += w[i].recognized;
        if (i > 0)
            cr_assert(w[i].recognized == USD("8333.33") || w[i].recognized == USD("8333.34"),
                      "month %zu: %lld", i + 1, (long long)w[i].recognized);
        cr_assert_eq(w[i].projected, i >= 3);
    }
    cr_assert_eq(total, USD("120000.00"));
    cr_assert_eq(w[2].deferred, USD("75000.00"));
    cr_assert_eq(w[11].deferred, 0);
    free(w);
}

/* Example 6: SSP 18,000 + 6,000 sold together for 20,000 -> 15,000 and 5,000. */
Test(examples, ex6_ssp_allocation)
{
    const char *ev =
        "{\"event_id\":\"b6\",\"type\":\"contract.booked\",\"contract_id\":\"C6\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K6\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":["
        "{\"line_id\":\"sub\",\"product\":\"Subscription\",\"recognition\":"
        "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
        "\"16000.00\",\"ssp\":\"18000.00\"},"
        "{\"line_id\":\"onb\",\"product\":\"Onboarding\",\"recognition\":\"point_in_time\","
        "\"start\":\"2026-01-15\",\"amount\":\"4000.00\",\"ssp\":\"6000.00\"}]}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 11);
    size_t n = rs_engine_line_count(h.engine);
    cr_assert_eq(n, 2);
    rs_line_view_t v;
    rs_engine_line_get(h.engine, 0, &v); /* sorted: onb, sub */
    cr_assert_str_eq(v.line_id, "onb");
    cr_assert_eq(v.price, USD("5000.00"));
    rs_engine_line_get(h.engine, 1, &v);
    cr_assert_eq(v.price, USD("15000.00"));
    cr_assert_eq(rs_h_recognized(&h, "C6", "onb", "2026-01", "2026-12"), USD("5000.00"));
    cr_assert_eq(rs_h_recognized(&h, "C6", "sub", "2026-01", "2026-12"), USD("1250.00"));
    /* Nothing invoiced: all of it is unbilled receivable. */
    rs_balance_row_t b = rs_h_balance(&h, "C6", "sub", "2026-12");
    cr_assert_eq(b.unbilled, USD("15000.00"));
    cr_assert_eq(b.deferred, 0);
}

/* SSP allocation remainder: largest remainder, ties to the earlier line. */
Test(examples, ssp_remainder_to_the_cent)
{
    const char *ev =
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"C\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":["
        "{\"line_id\":\"a\",\"product\":\"A\",\"recognition\":\"point_in_time\",\"start\":"
        "\"2026-01-01\",\"amount\":\"100.00\",\"ssp\":\"1\"},"
        "{\"line_id\":\"b\",\"product\":\"B\",\"recognition\":\"point_in_time\",\"start\":"
        "\"2026-01-01\",\"amount\":\"0\",\"ssp\":\"1\"},"
        "{\"line_id\":\"c\",\"product\":\"C\",\"recognition\":\"point_in_time\",\"start\":"
        "\"2026-01-01\",\"amount\":\"0\",\"ssp\":\"1\"}]}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_line_view_t v;
    rs_money_t want[3] = {3334, 3333, 3333};
    for (size_t i = 0; i < 3; i++) {
        rs_engine_line_get(h.engine, i, &v);
        cr_assert_eq(v.price, want[i], "line %s: %lld", v.line_id, (long long)v.price);
    }
}

/* Example 7: $10,000 = setup 2,000 + software 6,000 + support 2,000, own timelines. */
Test(examples, ex7_three_obligations)
{
    const char *ev =
        "{\"event_id\":\"b7\",\"type\":\"contract.booked\",\"contract_id\":\"C7\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K7\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":["
        "{\"line_id\":\"setup\",\"product\":\"Setup\",\"recognition\":\"point_in_time\","
        "\"start\":\"2026-01-10\",\"amount\":\"2000.00\"},"
        "{\"line_id\":\"software\",\"product\":\"Software\",\"recognition\":"
        "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
        "\"6000.00\"},"
        "{\"line_id\":\"support\",\"product\":\"Support\",\"recognition\":\"ratable_daily\","
        "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"2000.00\"}]}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 11);
    /* Jan: 2000 + 500 + round(200000 x 31/365) = 16986.30 -> 169.86 */
    cr_assert_eq(rs_h_recognized(&h, "C7", NULL, "2026-01", "2026-12"), USD("2669.86"));
    cr_assert_eq(rs_h_recognized(&h, "C7", "setup", "2026-02", "2026-12"), 0);
    rs_money_t total = 0;
    for (int m = 1; m <= 12; m++) {
        char p[24];
        snprintf(p, sizeof(p), "2026-%02d", m);
        total += rs_h_recognized(&h, "C7", NULL, p, "2026-12");
    }
    cr_assert_eq(total, USD("10000.00"));
}

/* Example 8: $0.10 per API call, 10,000 calls in March -> $1,000 in March,
 * one entry per line and period however many usage records. */
Test(examples, ex8_usage)
{
    const char *ev =
        "{\"event_id\":\"b8\",\"type\":\"contract.booked\",\"contract_id\":\"C8\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K8\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"api\",\"product\":\"API\","
        "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
        "\"amount\":\"0\",\"unit_price\":\"0.10\"}]}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    for (int i = 0; i < 40; i++) {
        char u[512];
        snprintf(u, sizeof(u),
                 "{\"event_id\":\"u%d\",\"type\":\"usage.recorded\",\"contract_id\":\"C8\","
                 "\"occurred_at\":\"2026-03-%02dT12:00:00Z\",\"line_id\":\"api\",\"quantity\":"
                 "\"250\"}",
                 i, 1 + i % 28);
        cr_assert_eq(rs_harness_apply(&h, u), RS_APPLY_OK, "%s", h.last_error);
    }
    rs_engine_advance(h.engine, 2026 * 12 + 3);
    cr_assert_eq(rs_h_recognized(&h, "C8", "api", "2026-03", "2026-04"), USD("1000.00"));
    cr_assert_eq(rs_h_recognized(&h, "C8", "api", "2026-04", "2026-04"), 0);
    size_t recog = 0;
    for (size_t i = 0; i < h.journal.n; i++)
        if (h.journal.entries[i].kind == RS_ENTRY_RECOGNITION) {
            recog++;
            cr_assert_eq(h.journal.entries[i].source_count, 41); /* booking + 40 records */
        }
    cr_assert_eq(recog, 1);
}

/* Usage prices with 6 decimals, cumulative rounding across periods. */
Test(examples, usage_sub_cent_prices)
{
    const char *ev =
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"tok\",\"product\":\"Tokens\","
        "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
        "\"amount\":\"0\",\"unit_price\":\"0.000125\"}]}\n"
        "{\"event_id\":\"u1\",\"type\":\"usage.recorded\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-01-05T00:00:00Z\",\"line_id\":\"tok\",\"quantity\":\"100\"}\n"
        "{\"event_id\":\"u2\",\"type\":\"usage.recorded\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-02-05T00:00:00Z\",\"line_id\":\"tok\",\"quantity\":\"100\"}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 1);
    /* 100 x 0.000125 = 0.0125: Jan round(1.25 cents) = 1; cumulative 2.5 -> 3: Feb 2 */
    cr_assert_eq(rs_h_recognized(&h, "U", "tok", "2026-01", "2026-02"), 1);
    cr_assert_eq(rs_h_recognized(&h, "U", "tok", "2026-02", "2026-02"), 2);
}

/* A usage minimum commitment: the shortfall is recognized in the last period. */
Test(examples, usage_minimum_commitment_shortfall)
{
    const char *ev =
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"api\",\"product\":\"API\","
        "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-03-31\","
        "\"amount\":\"500.00\",\"unit_price\":\"1.00\"}]}\n"
        "{\"event_id\":\"u1\",\"type\":\"usage.recorded\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-02-10T00:00:00Z\",\"line_id\":\"api\",\"quantity\":\"120\"}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 3);
    cr_assert_eq(rs_h_recognized(&h, "U", "api", "2026-02", "2026-04"), USD("120.00"));
    cr_assert_eq(rs_h_recognized(&h, "U", "api", "2026-03", "2026-04"), USD("380.00"));
    cr_assert_eq(rs_h_recognized(&h, "U", "api", "2026-04", "2026-04"), 0);
    /* Usage outside the service is rejected, naming the field. */
    int rc = rs_harness_apply(&h, "{\"event_id\":\"u9\",\"type\":\"usage.recorded\","
                                  "\"contract_id\":\"U\",\"occurred_at\":"
                                  "\"2026-04-02T00:00:00Z\",\"line_id\":\"api\","
                                  "\"quantity\":\"1\"}");
    cr_assert_eq(rc, RS_APPLY_REJECTED);
    cr_assert(strstr(h.last_error, "event u9: occurred_at:") != NULL, "%s", h.last_error);
}

/* Example 9: $500 a month billed monthly: no deferred balance at month end. */
Test(examples, ex9_billed_monthly)
{
    char buf[1024];
    cr_assert_eq(
        rs_harness_feed(
            &h,
            "{\"event_id\":\"b9\",\"type\":\"contract.booked\",\"contract_id\":\"C9\","
            "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K9\",\"currency\":"
            "\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":"
            "\"Monthly\",\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":"
            "\"2026-12-31\",\"amount\":\"6000.00\"}]}"),
        0, "%s", h.last_error);
    for (int m = 1; m <= 3; m++) {
        snprintf(buf, sizeof(buf),
                 "{\"event_id\":\"i9-%d\",\"type\":\"invoice.issued\",\"contract_id\":\"C9\","
                 "\"occurred_at\":\"2026-%02d-01T00:00:00Z\",\"invoice_id\":\"INV9-%d\","
                 "\"issued_on\":\"2026-%02d-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
                 "\"500.00\"}]}",
                 m, m, m, m);
        cr_assert_eq(rs_harness_apply(&h, buf), RS_APPLY_OK, "%s", h.last_error);
    }
    rs_engine_advance(h.engine, 2026 * 12 + 2);
    for (int m = 1; m <= 3; m++) {
        char p[24];
        snprintf(p, sizeof(p), "2026-%02d", m);
        rs_balance_row_t b = rs_h_balance(&h, "C9", "L1", p);
        cr_assert_eq(b.deferred, 0, "%s", p);
        cr_assert_eq(b.unbilled, 0, "%s", p);
        cr_assert_eq(b.recognized, USD("500.00") * m);
        cr_assert_eq(rs_h_recognized(&h, "C9", "L1", p, "2026-03"), USD("500.00"));
    }
}

/* Example 11: 31 USD from Jan 15 (Jan 15 - Feb 14) by day: Jan 17, deferred 14. */
Test(examples, ex11_stripe_daily)
{
    annual("C11", "ratable_daily", "2026-01-15", "2026-02-14", "31.00", "2026-01-15");
    rs_engine_advance(h.engine, 2026 * 12 + 1);
    cr_assert_eq(rs_h_recognized(&h, "C11", "L1", "2026-01", "2026-02"), USD("17.00"));
    cr_assert_eq(rs_h_recognized(&h, "C11", "L1", "2026-02", "2026-02"), USD("14.00"));
    rs_balance_row_t b = rs_h_balance(&h, "C11", "L1", "2026-01");
    cr_assert_eq(b.deferred, USD("14.00"));
}

/* Example 13: billed in arrears: recognized usage sits in unbilled until the
 * invoice clears it. */
Test(examples, ex13_billed_in_arrears)
{
    const char *ev =
        "{\"event_id\":\"b13\",\"type\":\"contract.booked\",\"contract_id\":\"C13\","
        "\"occurred_at\":\"2026-03-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-03-01\",\"lines\":[{\"line_id\":\"api\",\"product\":\"API\","
        "\"recognition\":\"usage\",\"start\":\"2026-03-01\",\"end\":\"2026-12-31\","
        "\"amount\":\"0\",\"unit_price\":\"0.10\"}]}\n"
        "{\"event_id\":\"u1\",\"type\":\"usage.recorded\",\"contract_id\":\"C13\","
        "\"occurred_at\":\"2026-03-10T00:00:00Z\",\"line_id\":\"api\",\"quantity\":\"10000\"}\n"
        "{\"event_id\":\"i13\",\"type\":\"invoice.issued\",\"contract_id\":\"C13\","
        "\"occurred_at\":\"2026-04-03T00:00:00Z\",\"invoice_id\":\"INV13\",\"issued_on\":"
        "\"2026-04-03\",\"lines\":[{\"line_id\":\"api\",\"amount\":\"1000.00\",\"tax\":"
        "\"80.00\"}]}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 3);
    rs_balance_row_t b = rs_h_balance(&h, "C13", "api", "2026-03");
    cr_assert_eq(b.unbilled, USD("1000.00"));
    cr_assert_eq(b.deferred, 0);
    cr_assert_eq(b.billed, 0);
    b = rs_h_balance(&h, "C13", "api", "2026-04");
    cr_assert_eq(b.unbilled, 0);
    cr_assert_eq(b.deferred, 0);
    cr_assert_eq(b.billed, USD("1000.00"));
    /* The invoice entry: Dr AR 1080, Cr tax 80, Cr unbilled 1000. */
    int found = 0;
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        if (e->kind != RS_ENTRY_INVOICE)
            continue;
        found = 1;
        for (int k = 0; k < e->n_postings; k++) {
            const rs_posting_t *p = &e->postings[k];
            if (p->account == RS_ACCT_ACCOUNTS_RECEIVABLE)
                cr_assert_eq(p->debit, USD("1080.00"));
            else if (p->account == RS_ACCT_TAX_PAYABLE)
                cr_assert_eq(p->credit, USD("80.00"));
            else if (p->account == RS_ACCT_UNBILLED_RECEIVABLE)
                cr_assert_eq(p->credit, USD("1000.00"));
            else
                cr_assert_fail("unexpected account %s", rs_account_name(p->account));
        }
        cr_assert_eq(e->period, 2026 * 12 + 3);
        cr_assert_str_eq(e->sources[0], "i13");
    }
    cr_assert(found);
}

/* Example 15: 1,200.00 daily over 365 days: every day is cumulatively
 * rounded, so any cut of the periods sums to the total. */
Test(examples, ex15_cumulative_rounding)
{
    annual("C15", "ratable_daily", "2026-01-01", "2026-12-31", "1200.00", NULL);
    rs_date_t start = rs_date_from_ymd(2026, 1, 1);
    for (int d = 0; d < 365; d++) {
        rs_money_t want = (rs_money_t)rs_div_round((__int128)120000 * (d + 1), 365);
        cr_assert_eq(rs_engine_line_scheduled(h.engine, 0, start + d), want, "day %d", d);
    }
    cr_assert_eq(rs_engine_line_scheduled(h.engine, 0, start - 1), 0);
    cr_assert_eq(rs_engine_line_scheduled(h.engine, 0, start + 400), USD("1200.00"));
}

/* Known failure mode: a service starting on the 30th/31st gave no monthly
 * entries. Here Jan 31 - Jan 30 gives an entry every month. */
Test(examples, start_on_the_31st)
{
    annual("C31", "ratable_monthly", "2026-01-31", "2027-01-30", "1200.00", NULL);
    rs_engine_advance(h.engine, 2027 * 12 + 0);
    rs_money_t total = 0;
    for (int k = 0; k < 13; k++) {
        char p[24];
        snprintf(p, sizeof(p), "%04d-%02d", 2026 + k / 12, k % 12 + 1);
        rs_money_t r = rs_h_recognized(&h, "C31", "L1", p, "2027-01");
        cr_assert_gt(r, 0, "%s", p);
        total += r;
    }
    cr_assert_eq(total, USD("1200.00"));
}

/* Known failure mode: a small amount over a long service rounded to 0 every
 * period and was never recognized. */
Test(examples, tiny_amount_long_service)
{
    annual("T", "ratable_daily", "2026-01-01", "2028-12-31", "0.05", NULL);
    rs_engine_advance(h.engine, 2028 * 12 + 11);
    rs_balance_row_t b = rs_h_balance(&h, "T", "L1", "2028-12");
    cr_assert_eq(b.recognized, 5);
    cr_assert_eq(b.deferred, 0);
}

/* Currency exponents: JPY 0, KWD 3; too many minor digits is rejected. */
Test(examples, currency_exponents)
{
    const char *ev =
        "{\"event_id\":\"j\",\"type\":\"contract.booked\",\"contract_id\":\"J\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"JPY\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\","
        "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-03-31\","
        "\"amount\":\"5000\"}]}\n"
        "{\"event_id\":\"k\",\"type\":\"contract.booked\",\"contract_id\":\"W\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"KWD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\","
        "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-03-31\","
        "\"amount\":\"0.125\"}]}\n";
    cr_assert_eq(rs_harness_feed(&h, ev), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 2);
    /* JPY 5000 / 3: 1667, 1666, 1667 (cumulative 1667, 3333, 5000) */
    cr_assert_eq(rs_h_recognized(&h, "J", "L", "2026-01", "2026-03"), 1667);
    cr_assert_eq(rs_h_recognized(&h, "J", "L", "2026-02", "2026-03"), 1666);
    cr_assert_eq(rs_h_recognized(&h, "J", "L", "2026-03", "2026-03"), 1667);
    cr_assert_eq(rs_h_recognized(&h, "W", "L", "2026-01", "2026-03"), 42);
    int rc = rs_harness_apply(
        &h, "{\"event_id\":\"bad\",\"type\":\"invoice.issued\",\"contract_id\":\"J\","
            "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"invoice_id\":\"I\",\"issued_on\":"
            "\"2026-01-01\",\"lines\":[{\"line_id\":\"L\",\"amount\":\"5000.5\"}]}");
    cr_assert_eq(rc, RS_APPLY_REJECTED);
    cr_assert(strstr(h.last_error, "event bad: lines[0].amount:") != NULL, "%s", h.last_error);
}

/* Idempotency: the same event twice is applied once; same id with other
 * content is rejected as a conflicting duplicate. */
Test(examples, duplicates)
{
    annual("D", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00", NULL);
    const char *inv = "{\"event_id\":\"D-i\",\"type\":\"invoice.issued\",\"contract_id\":\"D\","
                      "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"invoice_id\":\"INV-D\","
                      "\"issued_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
                      "\"1200.00\"}]}";
    cr_assert_eq(rs_harness_apply(&h, inv), RS_APPLY_DUPLICATE);
    const char *conflict =
        "{\"event_id\":\"D-i\",\"type\":\"invoice.issued\",\"contract_id\":\"D\","
        "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"invoice_id\":\"INV-D\","
        "\"issued_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"1300.00\"}]}";
    cr_assert_eq(rs_harness_apply(&h, conflict), RS_APPLY_REJECTED);
    cr_assert(strstr(h.last_error, "conflicting duplicate") != NULL, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12);
    cr_assert_eq(rs_h_balance(&h, "D", "L1", "2026-01").billed, USD("1200.00"));
}

/* Events that arrive before their contract or invoice wait, then apply. */
Test(examples, out_of_order_waits)
{
    const char *pay = "{\"event_id\":\"p\",\"type\":\"payment.received\",\"contract_id\":\"O\","
                      "\"occurred_at\":\"2026-01-05T00:00:00Z\",\"payment_id\":\"PAY\","
                      "\"invoice_id\":\"INV\",\"amount\":\"1200.00\",\"received_on\":"
                      "\"2026-01-05\"}";
    const char *inv = "{\"event_id\":\"i\",\"type\":\"invoice.issued\",\"contract_id\":\"O\","
                      "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"invoice_id\":\"INV\","
                      "\"issued_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
                      "\"1200.00\"}]}";
    const char *book =
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"O\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"P\","
        "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
        "\"amount\":\"1200.00\"}]}";
    cr_assert_eq(rs_harness_apply(&h, pay), RS_APPLY_PENDING);
    cr_assert_eq(rs_harness_apply(&h, inv), RS_APPLY_PENDING);
    cr_assert_eq(rs_engine_pending_count(h.engine), 2);
    rs_pending_view_t pv;
    rs_engine_pending_get(h.engine, 0, &pv);
    cr_assert_str_eq(pv.event_id, "p");
    cr_assert_str_eq(pv.waiting_for, "contract O");
    cr_assert_eq(rs_harness_apply(&h, pay), RS_APPLY_DUPLICATE);
    cr_assert_eq(rs_harness_apply(&h, book), RS_APPLY_OK, "%s", h.last_error);
    cr_assert_eq(rs_engine_pending_count(h.engine), 0);
    rs_engine_advance(h.engine, 2026 * 12);
    rs_balance_row_t b = rs_h_balance(&h, "O", "L1", "2026-01");
    cr_assert_eq(b.billed, USD("1200.00"));
    cr_assert_eq(b.received, USD("1200.00"));
    cr_assert_eq(b.recognized, USD("100.00"));
    cr_assert_eq(b.deferred, USD("1100.00"));
    cr_assert_eq(h.rejected, 0);
}

/* The same events give byte-identical entries with the same ids. */
Test(examples, deterministic_ids)
{
    const char *events =
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"X\","
        "\"occurred_at\":\"2026-01-10T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-10\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"P\","
        "\"recognition\":\"ratable_daily\",\"start\":\"2026-01-10\",\"end\":\"2026-11-20\","
        "\"amount\":\"999.99\"}]}\n"
        "{\"event_id\":\"i\",\"type\":\"invoice.issued\",\"contract_id\":\"X\","
        "\"occurred_at\":\"2026-02-10T00:00:00Z\",\"invoice_id\":\"INV\",\"issued_on\":"
        "\"2026-02-10\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"999.99\"}]}\n"
        "{\"event_id\":\"p\",\"type\":\"payment.received\",\"contract_id\":\"X\","
        "\"occurred_at\":\"2026-03-01T00:00:00Z\",\"payment_id\":\"PAY\",\"invoice_id\":"
        "\"INV\",\"amount\":\"500.00\",\"received_on\":\"2026-03-01\"}\n";
    rs_harness_t h2;
    rs_harness_init(&h2, NULL);
    cr_assert_eq(rs_harness_feed(&h, events), 0, "%s", h.last_error);
    cr_assert_eq(rs_harness_feed(&h2, events), 0, "%s", h2.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 11);
    rs_engine_advance(h2.engine, 2026 * 12 + 11);
    cr_assert_eq(h.journal.n, h2.journal.n);
    cr_assert_gt(h.journal.n, 10);
    for (size_t i = 0; i < h.journal.n; i++) {
        char *a = rs_codec_entry_json(&h.journal.entries[i]);
        char *b = rs_codec_entry_json(&h2.journal.entries[i]);
        cr_assert_str_eq(a, b);
        free(a);
        free(b);
    }
    /* Jan recognized before the Feb invoice: it was unbilled, ids count from 1 */
    cr_assert_str_eq(h.journal.entries[0].entry_id, "X#1");
    cr_assert_eq(h.journal.entries[0].kind, RS_ENTRY_RECOGNITION);
    cr_assert_eq(h.journal.entries[1].kind, RS_ENTRY_INVOICE);
    rs_harness_free(&h2);
}

/* RFC 3339 timestamps to UTC: dates for occurred_on, milliseconds for the
 * record timestamps a worker merges topics by. */
Test(examples, timestamps)
{
    int64_t ms;
    rs_date_t d;
    cr_assert_eq(rs_timestamp_parse_ms("1970-01-01T00:00:00Z", &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(rs_timestamp_parse_ms("2026-03-31T23:30:00.25-05:00", &ms), 0);
    cr_assert_eq(
        ms, ((int64_t)rs_date_from_ymd(2026, 4, 1) * 86400 + 4 * 3600 + 30 * 60) * 1000 + 250);
    cr_assert_eq(rs_timestamp_parse_date("2026-03-31T23:30:00-05:00", &d), 0);
    cr_assert_eq(d, rs_date_from_ymd(2026, 4, 1));
    cr_assert_eq(rs_timestamp_parse_ms("2026-01-01T00:00:00.123456Z", &ms), 0);
    cr_assert_eq(ms % 1000, 123);
    cr_assert_eq(rs_timestamp_parse_date("1969-12-31T23:59:59Z", &d), 0);
    cr_assert_eq(d, -1);
    cr_assert_eq(rs_timestamp_parse_ms("2026-01-01T00:00:00", &ms), -1);
    cr_assert_eq(rs_timestamp_parse_ms("2026-01-01T24:00:00Z", &ms), -1);
    cr_assert_eq(rs_timestamp_parse_ms("2026-01-01T00:00:00.Z", &ms), -1);
    /* every prefix of a good one is refused, as is anything longer */
    const char *good = "2026-02-28T23:59:59+01:00";
    char cut[32];
    for (size_t n = 0; n < strlen(good); n++) {
        memcpy(cut, good, n);
        cut[n] = '\0';
        cr_assert_eq(rs_timestamp_parse_ms(cut, &ms), -1, "%s", cut);
    }
    cr_assert_eq(rs_timestamp_parse_ms(good, &ms), 0);
    cr_assert_eq(rs_timestamp_parse_ms("2026-02-28T23:59:59+01:000", &ms), -1);
    /* dates: exactly ten characters, a real day */
    cr_assert_eq(rs_date_parse("2024-02-29", &d), 0);
    cr_assert_eq(d, rs_date_from_ymd(2024, 2, 29));
    cr_assert_eq(rs_date_parse("2026-02-29", &d), -1);
    cr_assert_eq(rs_date_parse("2026-02-2", &d), -1);
    cr_assert_eq(rs_date_parse("2026-02-281", &d), -1);
    cr_assert_eq(rs_date_parse("2026-2-28", &d), -1);
    cr_assert_eq(rs_date_parse("2026/02/28", &d), -1);
    cr_assert_eq(rs_date_parse("", &d), -1);
    cr_assert_eq(rs_date_parse("1899-12-31", &d), -1);
}
