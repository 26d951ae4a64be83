/*
 * test_lifecycle.c — what happens after the first invoice: amendments,
 * cancellations, credit notes, refunds, failed payments, voids, write-offs,
 * customer credit, milestones, period close and policies. Examples 10, 12
 * and 14 of shared/reference/examples.md with exact amounts.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

TestSuite(lifecycle, .init = setup, .fini = teardown);

#define USD(s) rs_amt(s, 2)
#define P(y, m) ((y)*12 + (m)-1)

/* Apply one event built with printf; expect `want`. */
static void ev(int want, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    int rc = rs_harness_apply(&h, buf);
    cr_assert_eq(rc, want, "rc %d for %s: %s", rc, buf, h.last_error);
}

/* A one-line contract C with line L1, invoiced in full on the start date. */
static void book1(const char *c, const char *method, const char *start, const char *end,
                  const char *amount)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"%s-b\",\"type\":\"contract.booked\",\"contract_id\":\"%s\","
       "\"occurred_at\":\"%sT00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
       "\"booked_on\":\"%s\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"plan\","
       "\"recognition\":\"%s\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\"}]}",
       c, c, start, start, method, start, end, amount);
}

static void invoice(const char *c, const char *inv, const char *on, const char *amount,
                    const char *tax)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"%s-%s\",\"type\":\"invoice.issued\",\"contract_id\":\"%s\","
       "\"occurred_at\":\"%sT00:00:00Z\",\"invoice_id\":\"%s\",\"issued_on\":\"%s\","
       "\"lines\":[{\"line_id\":\"L1\",\"amount\":\"%s\",\"tax\":\"%s\"}]}",
       c, inv, c, on, inv, on, amount, tax);
}

static void pay(const char *c, const char *inv, const char *pid, const char *on,
                const char *amount)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"%s-%s\",\"type\":\"payment.received\",\"contract_id\":\"%s\","
       "\"occurred_at\":\"%sT00:00:00Z\",\"payment_id\":\"%s\",\"invoice_id\":\"%s\","
       "\"amount\":\"%s\",\"received_on\":\"%s\"}",
       c, pid, c, on, pid, inv, amount, on);
}

static void credit(const char *c, const char *inv, const char *cn, const char *on,
                   const char *reason, const char *amount, const char *tax)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"%s-%s\",\"type\":\"credit_note.issued\",\"contract_id\":\"%s\","
       "\"occurred_at\":\"%sT00:00:00Z\",\"credit_note_id\":\"%s\",\"invoice_id\":\"%s\","
       "\"issued_on\":\"%s\",\"reason\":\"%s\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
       "\"%s\",\"tax\":\"%s\"}]}",
       c, cn, c, on, cn, inv, on, reason, amount, tax);
}

static void amend(const char *c, const char *id, const char *on, const char *treatment,
                  const char *lines)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"%s-%s\",\"type\":\"contract.amended\",\"contract_id\":\"%s\","
       "\"occurred_at\":\"%sT00:00:00Z\",\"effective_on\":\"%s\",\"treatment\":\"%s\","
       "\"lines\":%s}",
       c, id, c, on, on, treatment, lines);
}

static void close_period(const char *period, const char *at)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"close-%s\",\"type\":\"period.closed\",\"occurred_at\":"
       "\"%sT00:00:00Z\",\"period\":\"%s\"}",
       period, at, period);
}

static rs_money_t rec(const char *c, const char *line, const char *period, const char *through)
{
    return rs_h_recognized(&h, c, line, period, through);
}

/* The one entry of `kind` for contract c (fails if not exactly one). */
static const rs_entry_t *only_entry(const char *c, rs_entry_kind_t kind)
{
    const rs_entry_t *found = NULL;
    int n = 0;
    for (size_t i = 0; i < h.journal.n; i++)
        if (h.journal.entries[i].kind == kind &&
            strcmp(h.journal.entries[i].contract_id, c) == 0) {
            found = &h.journal.entries[i];
            n++;
        }
    cr_assert_eq(n, 1, "%d entries of kind %s", n, rs_entry_kind_name(kind));
    return found;
}

static rs_money_t posting(const rs_entry_t *e, rs_account_t a)
{
    for (int i = 0; i < e->n_postings; i++)
        if (e->postings[i].account == a)
            return e->postings[i].debit - e->postings[i].credit;
    return 0;
}

/* Example 10: $1,000/month -> $1,500/month from July, prospective. */
Test(lifecycle, ex10_upgrade_mid_year)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "12000.00");
    amend("C", "up", "2026-07-01", "prospective",
          "[{\"line_id\":\"L1\",\"product\":\"plan\",\"recognition\":\"ratable_monthly\","
          "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"15000.00\"}]");
    rs_engine_advance(h.engine, P(2026, 12));
    for (int m = 1; m <= 12; m++) {
        char p[24];
        snprintf(p, sizeof(p), "2026-%02d", m);
        cr_assert_eq(rec("C", "L1", p, "2026-12"), m <= 6 ? USD("1000.00") : USD("1500.00"),
                     "%s", p);
    }
    cr_assert_eq(rs_h_unbalanced_entries(&h), 0);
}

/* Catch-up: $1,200 Jan-Dec raised to $2,400 from April: the three months
 * already passed are caught up in April. */
Test(lifecycle, amendment_catch_up)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00");
    amend("C", "up", "2026-04-01", "catch_up",
          "[{\"line_id\":\"L1\",\"product\":\"plan\",\"recognition\":\"ratable_monthly\","
          "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"2400.00\"}]");
    rs_engine_advance(h.engine, P(2026, 12));
    cr_assert_eq(rec("C", "L1", "2026-03", "2026-12"), USD("100.00"));
    cr_assert_eq(rec("C", "L1", "2026-04", "2026-12"), USD("500.00")); /* 300 + 200 */
    cr_assert_eq(rec("C", "L1", "2026-05", "2026-12"), USD("200.00"));
    int catch_up = 0;
    for (size_t i = 0; i < h.journal.n; i++)
        if (strcmp(h.journal.entries[i].rule, "catch_up") == 0) {
            catch_up++;
            cr_assert_eq(h.journal.entries[i].recognized, USD("300.00"));
            cr_assert_str_eq(h.journal.entries[i].sources[0], "C-up");
        }
    cr_assert_eq(catch_up, 1);
    cr_assert_eq(rs_h_balance(&h, "C", "L1", "2026-12").recognized, USD("2400.00"));
}

/* Several amendments in a row, on the last and the first day of a period,
 * and a downgrade below what was already recognized. */
Test(lifecycle, amendments_in_a_row)
{
    book1("C", "ratable_daily", "2026-01-01", "2026-12-31", "3650.00"); /* 10.00 a day */
    /* effective on the last day of March: 89 days recognized = 890 */
    amend("C", "a1", "2026-03-31", "prospective",
          "[{\"line_id\":\"L1\",\"product\":\"plan\",\"recognition\":\"ratable_daily\","
          "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"4550.00\"}]");
    /* from Mar 31, 276 days share 4550 - 890 = 3660 */
    rs_date_t d = rs_date_from_ymd(2026, 4, 30);
    rs_engine_advance(h.engine, P(2026, 4));
    rs_money_t earned_apr = 89000 + (rs_money_t)rs_div_round((__int128)366000 * 31, 276);
    cr_assert_eq(rs_engine_line_scheduled(h.engine, 0, d), earned_apr);
    cr_assert_eq(rec("C", "L1", "2026-03", "2026-04"),
                 USD("310.00") + (rs_money_t)rs_div_round((__int128)366000, 276) - 1000);
    /* effective on the first day of May: a downgrade to less than earned */
    amend("C", "a2", "2026-05-01", "prospective",
          "[{\"line_id\":\"L1\",\"product\":\"plan\",\"recognition\":\"ratable_daily\","
          "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1000.00\"}]");
    rs_engine_advance(h.engine, P(2026, 12));
    cr_assert_eq(rec("C", "L1", "2026-05", "2026-12"), USD("1000.00") - earned_apr);
    cr_assert_eq(rec("C", "L1", "2026-06", "2026-12"), 0);
    cr_assert_eq(rs_h_balance(&h, "C", "L1", "2026-12").recognized, USD("1000.00"));
}

/* Added and removed lines; an extension. */
Test(lifecycle, amendment_adds_removes_extends)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"C\",\"occurred_at\":"
       "\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\",\"booked_on\":"
       "\"2026-01-01\",\"lines\":[{\"line_id\":\"A\",\"product\":\"a\",\"recognition\":"
       "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-06-30\",\"amount\":"
       "\"600.00\"},{\"line_id\":\"B\",\"product\":\"b\",\"recognition\":\"ratable_monthly\","
       "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1200.00\"}]}");
    /* From April: A extended to December at 100/month more (900 more), B
     * removed, C added for Apr-Jun at 300. */
    amend("C", "x", "2026-04-01", "prospective",
          "[{\"line_id\":\"A\",\"product\":\"a\",\"recognition\":\"ratable_monthly\",\"start\":"
          "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1200.00\"},{\"line_id\":\"C\","
          "\"product\":\"c\",\"recognition\":\"ratable_monthly\",\"start\":\"2026-04-01\","
          "\"end\":\"2026-06-30\",\"amount\":\"300.00\"}]");
    rs_engine_advance(h.engine, P(2026, 12));
    cr_assert_eq(rec("C", "A", "2026-03", "2026-12"), USD("100.00"));
    cr_assert_eq(rec("C", "A", "2026-04", "2026-12"), USD("100.00")); /* 900 over 9 months */
    cr_assert_eq(rec("C", "A", "2026-12", "2026-12"), USD("100.00"));
    cr_assert_eq(rec("C", "B", "2026-03", "2026-12"), USD("100.00"));
    cr_assert_eq(rec("C", "B", "2026-04", "2026-12"), 0);
    cr_assert_eq(rec("C", "C", "2026-04", "2026-12"), USD("100.00"));
    cr_assert_eq(rs_h_balance(&h, "C", "B", "2026-12").recognized, USD("300.00"));
}

/* A backdated amendment into a closed period posts in the first open period,
 * keeps its service period, and the closed periods' reports do not change. */
Test(lifecycle, backdated_into_closed_period)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00");
    invoice("C", "I1", "2026-01-01", "1200.00", "0");
    close_period("2026-01", "2026-02-01");
    close_period("2026-02", "2026-03-01");
    rs_rollforward_row_t *before = NULL, *after = NULL;
    size_t nb, na;
    cr_assert_eq(rs_report_rollforward(h.engine, &h.journal, P(2026, 2), &before, &nb), 0);
    rs_money_t jan = rec("C", "L1", "2026-01", "2026-02");
    amend("C", "back", "2026-02-01", "catch_up",
          "[{\"line_id\":\"L1\",\"product\":\"plan\",\"recognition\":\"ratable_monthly\","
          "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"2400.00\"}]");
    rs_engine_advance(h.engine, P(2026, 3));
    cr_assert_eq(rs_report_rollforward(h.engine, &h.journal, P(2026, 2), &after, &na), 0);
    cr_assert_eq(na, nb);
    for (size_t i = 0; i < nb; i++) {
        cr_assert_eq(before[i].period, after[i].period);
        cr_assert_eq(before[i].opening, after[i].opening);
        cr_assert_eq(before[i].billed, after[i].billed);
        cr_assert_eq(before[i].recognized, after[i].recognized);
        cr_assert_eq(before[i].credits, after[i].credits);
        cr_assert_eq(before[i].closing, after[i].closing);
    }
    cr_assert_eq(rec("C", "L1", "2026-01", "2026-03"), jan);
    /* Feb catch-up (+100) and Feb's extra (+100) post in March, with service
     * period February; March itself recognizes 200. */
    cr_assert_eq(rec("C", "L1", "2026-03", "2026-03"), USD("400.00"));
    int feb_in_march = 0;
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        cr_assert(e->period != P(2026, 1) || e->seq <= 3);
        if (e->period == P(2026, 3) && e->service_period == P(2026, 2))
            feb_in_march++;
    }
    cr_assert_geq(feb_in_march, 1);
    free(before);
    free(after);
}

/* Cancellation with the default policy: billed-but-unearned stays deferred
 * and shows as an exception. */
Test(lifecycle, cancellation_keeps_deferred)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "12000.00");
    invoice("C", "I1", "2026-01-01", "12000.00", "0");
    pay("C", "I1", "P1", "2026-01-05", "12000.00");
    ev(RS_APPLY_OK,
       "{\"event_id\":\"x\",\"type\":\"contract.cancelled\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-04-01T00:00:00Z\",\"effective_on\":\"2026-04-01\"}");
    rs_engine_advance(h.engine, P(2026, 12));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-12");
    cr_assert_eq(b.recognized, USD("3000.00"));
    cr_assert_eq(b.deferred, USD("9000.00"));
    cr_assert_eq(rec("C", "L1", "2026-04", "2026-12"), 0);
    rs_exception_row_t *x = NULL;
    size_t n = 0;
    cr_assert_eq(rs_report_exceptions(h.engine, &h.journal, P(2026, 12), &x, &n), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(x[i].kind, "deferred_after_cancellation") == 0) {
            found = 1;
            cr_assert_eq(x[i].amount, USD("9000.00"));
        }
    cr_assert(found);
    free(x);
    /* the refund credit note clears it: the earned part is untouched */
    credit("C", "I1", "CN1", "2026-04-10", "refund", "9000.00", "0");
    b = rs_h_balance(&h, "C", "L1", "2026-12");
    cr_assert_eq(b.recognized, USD("3000.00"));
    cr_assert_eq(b.deferred, 0);
    cr_assert_eq(b.billed, USD("3000.00"));
}

/* Cancellation with policy forfeit: the unearned part is recognized on the
 * cancellation date. */
Test(lifecycle, cancellation_forfeit_policy)
{
    rs_policy_t pol;
    char err[256];
    rs_policy_defaults(&pol);
    cr_assert_eq(rs_policy_parse(&pol, "policy.cancellation = forfeit\n", err, sizeof(err)), 0,
                 "%s", err);
    rs_harness_free(&h);
    rs_harness_init(&h, &pol);
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "12000.00");
    invoice("C", "I1", "2026-01-01", "12000.00", "0");
    ev(RS_APPLY_OK,
       "{\"event_id\":\"x\",\"type\":\"contract.cancelled\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-04-01T00:00:00Z\",\"effective_on\":\"2026-04-01\"}");
    rs_engine_advance(h.engine, P(2026, 12));
    cr_assert_eq(rec("C", "L1", "2026-04", "2026-12"), USD("9000.00"));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-12");
    cr_assert_eq(b.recognized, USD("12000.00"));
    cr_assert_eq(b.deferred, 0);
    int forfeit = 0;
    for (size_t i = 0; i < h.journal.n; i++)
        forfeit += strcmp(h.journal.entries[i].rule, "forfeit") == 0;
    cr_assert_eq(forfeit, 1);
}

/* Example 12: $600 Jan-Jun, $60 discount credit on Apr 1, spread over what
 * remains: 100, 100, 100, 80, 80, 80. */
Test(lifecycle, ex12_discount_credit_prospective)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-06-30", "600.00");
    invoice("C", "I1", "2026-01-01", "600.00", "0");
    credit("C", "I1", "CN1", "2026-04-01", "discount", "60.00", "0");
    rs_engine_advance(h.engine, P(2026, 6));
    const char *want[] = {"100.00", "100.00", "100.00", "80.00", "80.00", "80.00"};
    for (int m = 1; m <= 6; m++) {
        char p[24];
        snprintf(p, sizeof(p), "2026-%02d", m);
        cr_assert_eq(rec("C", "L1", p, "2026-06"), USD(want[m - 1]), "%s", p);
    }
    const rs_entry_t *cn = only_entry("C", RS_ENTRY_CREDIT_NOTE);
    cr_assert_eq(posting(cn, RS_ACCT_DEFERRED_REVENUE), USD("60.00"));
    cr_assert_eq(posting(cn, RS_ACCT_ACCOUNTS_RECEIVABLE), -USD("60.00"));
    cr_assert_eq(posting(cn, RS_ACCT_REVENUE_CONTRA), 0);
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-06");
    cr_assert_eq(b.billed, USD("540.00"));
    cr_assert_eq(b.recognized, USD("540.00"));
    cr_assert_eq(b.deferred, 0);
}

/* A true-up credit (reason error) before payment: unearned part clears
 * deferred, earned part goes to revenue_contra, in one entry. */
Test(lifecycle, credit_true_up_before_payment)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-06-30", "600.00");
    invoice("C", "I1", "2026-01-01", "600.00", "0");
    credit("C", "I1", "CN1", "2026-04-01", "error", "300.00", "0");
    rs_engine_advance(h.engine, P(2026, 6));
    const rs_entry_t *cn = only_entry("C", RS_ENTRY_CREDIT_NOTE);
    cr_assert_eq(posting(cn, RS_ACCT_DEFERRED_REVENUE), USD("150.00"));
    cr_assert_eq(posting(cn, RS_ACCT_REVENUE_CONTRA), USD("150.00"));
    cr_assert_eq(posting(cn, RS_ACCT_ACCOUNTS_RECEIVABLE), -USD("300.00"));
    cr_assert_eq(cn->period, P(2026, 4));
    cr_assert_eq(rec("C", "L1", "2026-04", "2026-06"), -USD("100.00")); /* -150 + 50 */
    cr_assert_eq(rec("C", "L1", "2026-05", "2026-06"), USD("50.00"));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-06");
    cr_assert_eq(b.recognized, USD("300.00"));
    cr_assert_eq(b.billed, USD("300.00"));
    cr_assert_eq(b.deferred, 0);
}

/* A credit note after payment becomes customer credit; its refund pays the
 * credit back (Dr customer_credit, Cr cash). */
Test(lifecycle, credit_after_payment_and_refund_of_credit)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-06-30", "600.00");
    invoice("C", "I1", "2026-01-01", "600.00", "60.00");
    pay("C", "I1", "P1", "2026-01-02", "660.00");
    credit("C", "I1", "CN1", "2026-02-10", "refund", "100.00", "10.00");
    const rs_entry_t *cn = only_entry("C", RS_ENTRY_CREDIT_NOTE);
    cr_assert_eq(posting(cn, RS_ACCT_CUSTOMER_CREDIT), -USD("110.00"));
    cr_assert_eq(posting(cn, RS_ACCT_TAX_PAYABLE), USD("10.00"));
    rs_contract_view_t cv;
    rs_engine_contract_get(h.engine, 0, &cv);
    cr_assert_eq(cv.customer_credit, USD("110.00"));
    /* the invoice: 660 issued, 110 credited, 550 paid (110 moved to credit) */
    cr_assert_eq(rs_engine_invoice_count(h.engine), 1);
    rs_invoice_view_t iv;
    rs_engine_invoice_get(h.engine, 0, &iv);
    cr_assert_str_eq(iv.invoice_id, "I1");
    cr_assert_eq(iv.amount + iv.tax, USD("660.00"));
    cr_assert_eq(iv.credited, USD("110.00"));
    cr_assert_eq(iv.paid, USD("550.00"));
    cr_assert_eq(iv.open, 0);
    ev(RS_APPLY_OK,
       "{\"event_id\":\"r1\",\"type\":\"payment.refunded\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-02-12T00:00:00Z\",\"refund_id\":\"R1\",\"payment_id\":\"P1\","
       "\"invoice_id\":\"I1\",\"amount\":\"110.00\",\"refunded_on\":\"2026-02-12\"}");
    const rs_entry_t *r = only_entry("C", RS_ENTRY_REFUND);
    cr_assert_eq(posting(r, RS_ACCT_CUSTOMER_CREDIT), USD("110.00"));
    cr_assert_eq(posting(r, RS_ACCT_CASH), -USD("110.00"));
    rs_engine_contract_get(h.engine, 0, &cv);
    cr_assert_eq(cv.customer_credit, 0);
}

/* A partial credit, and one larger than the unrecognized remainder. */
Test(lifecycle, credit_larger_than_unrecognized)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-06-30", "600.00");
    invoice("C", "I1", "2026-01-01", "600.00", "0");
    /* by Apr 1, 300 recognized and 300 unrecognized; credit 500 */
    credit("C", "I1", "CN1", "2026-04-01", "cancellation", "500.00", "0");
    rs_engine_advance(h.engine, P(2026, 6));
    const rs_entry_t *cn = only_entry("C", RS_ENTRY_CREDIT_NOTE);
    /* new price 100: catch-up to 50 by Mar 31, so 250 earned is reversed */
    cr_assert_eq(posting(cn, RS_ACCT_REVENUE_CONTRA), USD("250.00"));
    cr_assert_eq(posting(cn, RS_ACCT_DEFERRED_REVENUE), USD("250.00"));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-06");
    cr_assert_eq(b.recognized, USD("100.00"));
    cr_assert_eq(b.billed, USD("100.00"));
    /* a credit above what is left on the invoice line is rejected */
    ev(RS_APPLY_REJECTED,
       "{\"event_id\":\"C-CN2\",\"type\":\"credit_note.issued\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-05-01T00:00:00Z\",\"credit_note_id\":\"CN2\",\"invoice_id\":"
       "\"I1\",\"issued_on\":\"2026-05-01\",\"reason\":\"error\",\"lines\":[{\"line_id\":"
       "\"L1\",\"amount\":\"100.01\"}]}");
    cr_assert(strstr(h.last_error, "lines[0].amount") != NULL, "%s", h.last_error);
}

/* Example 14: a one-time 90 USD charge paid Jan 1 and refunded Feb 1:
 * January revenue +90; February revenue_contra 90. The refund is a credit
 * note with reason refund (the revenue effect) and the payment's refund (the
 * cash); together: Dr revenue_contra 90, Cr cash 90 in February. */
Test(lifecycle, ex14_refund_of_one_time_charge)
{
    book1("C", "point_in_time", "2026-01-01", "2026-01-01", "90.00");
    invoice("C", "I1", "2026-01-01", "90.00", "0");
    pay("C", "I1", "P1", "2026-01-01", "90.00");
    credit("C", "I1", "CN1", "2026-02-01", "refund", "90.00", "0");
    ev(RS_APPLY_OK,
       "{\"event_id\":\"r1\",\"type\":\"payment.refunded\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-02-01T00:00:00Z\",\"refund_id\":\"R1\",\"payment_id\":\"P1\","
       "\"invoice_id\":\"I1\",\"amount\":\"90.00\",\"refunded_on\":\"2026-02-01\"}");
    rs_engine_advance(h.engine, P(2026, 2));
    cr_assert_eq(rec("C", "L1", "2026-01", "2026-02"), USD("90.00"));
    cr_assert_eq(rec("C", "L1", "2026-02", "2026-02"), -USD("90.00"));
    /* February, all entries together: contra 90 against cash 90 */
    rs_money_t by[RS_ACCT__COUNT] = {0};
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        if (e->period != P(2026, 2))
            continue;
        for (int k = 0; k < e->n_postings; k++)
            by[e->postings[k].account] += e->postings[k].debit - e->postings[k].credit;
    }
    for (int a = 0; a < RS_ACCT__COUNT; a++)
        cr_assert_eq(by[a],
                     a == RS_ACCT_REVENUE_CONTRA ? USD("90.00")
                     : a == RS_ACCT_CASH         ? -USD("90.00")
                                                 : 0,
                     "%s", rs_account_name((rs_account_t)a));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-02");
    cr_assert_eq(b.recognized, 0);
    cr_assert_eq(b.billed, 0);
    cr_assert_eq(b.deferred, 0);
    cr_assert_eq(b.unbilled, 0);
}

/* A refund with no credit balance behind it re-opens the receivable. */
Test(lifecycle, refund_without_credit_reopens_receivable)
{
    book1("C", "point_in_time", "2026-01-01", "2026-01-01", "90.00");
    invoice("C", "I1", "2026-01-01", "90.00", "0");
    pay("C", "I1", "P1", "2026-01-01", "90.00");
    ev(RS_APPLY_OK,
       "{\"event_id\":\"r1\",\"type\":\"payment.refunded\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-02-01T00:00:00Z\",\"refund_id\":\"R1\",\"payment_id\":\"P1\","
       "\"invoice_id\":\"I1\",\"amount\":\"40.00\",\"refunded_on\":\"2026-02-01\"}");
    const rs_entry_t *r = only_entry("C", RS_ENTRY_REFUND);
    cr_assert_eq(posting(r, RS_ACCT_ACCOUNTS_RECEIVABLE), USD("40.00"));
    cr_assert_eq(posting(r, RS_ACCT_CASH), -USD("40.00"));
    cr_assert_eq(r->recognized, 0);
    rs_engine_advance(h.engine, P(2026, 2));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-02");
    cr_assert_eq(b.received, USD("50.00"));
    cr_assert_eq(b.recognized, USD("90.00"));
    /* refunding more than is left of the payment is rejected */
    ev(RS_APPLY_REJECTED,
       "{\"event_id\":\"r2\",\"type\":\"payment.refunded\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-02-02T00:00:00Z\",\"refund_id\":\"R2\",\"payment_id\":\"P1\","
       "\"invoice_id\":\"I1\",\"amount\":\"50.01\",\"refunded_on\":\"2026-02-02\"}");
    cr_assert(strstr(h.last_error, "event r2: amount:") != NULL, "%s", h.last_error);
}

/* A failed payment reverses the payment; a void reverses the invoice. */
Test(lifecycle, payment_failed_and_void)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00");
    invoice("C", "I1", "2026-01-01", "1200.00", "0");
    pay("C", "I1", "P1", "2026-01-03", "1200.00");
    ev(RS_APPLY_OK, "{\"event_id\":\"f\",\"type\":\"payment.failed\",\"contract_id\":\"C\","
                    "\"occurred_at\":\"2026-01-06T00:00:00Z\",\"payment_id\":\"P1\","
                    "\"invoice_id\":\"I1\",\"failed_on\":\"2026-01-06\",\"reason\":"
                    "\"card_declined\"}");
    rs_engine_advance(h.engine, P(2026, 1));
    cr_assert_eq(rs_h_balance(&h, "C", "L1", "2026-01").received, 0);
    ev(RS_APPLY_OK, "{\"event_id\":\"v\",\"type\":\"invoice.voided\",\"contract_id\":\"C\","
                    "\"occurred_at\":\"2026-02-02T00:00:00Z\",\"invoice_id\":\"I1\","
                    "\"voided_on\":\"2026-02-02\"}");
    rs_engine_advance(h.engine, P(2026, 2));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-02");
    cr_assert_eq(b.billed, 0);
    cr_assert_eq(b.recognized, USD("200.00"));
    cr_assert_eq(b.unbilled, USD("200.00")); /* the service goes on, now unbilled */
    cr_assert_eq(b.deferred, 0);
    ev(RS_APPLY_REJECTED,
       "{\"event_id\":\"v2\",\"type\":\"invoice.voided\",\"contract_id\":\"C\","
       "\"occurred_at\":\"2026-02-03T00:00:00Z\",\"invoice_id\":\"I1\",\"voided_on\":"
       "\"2026-02-03\"}");
}

/* Uncollectible with the allowance policy, then recovery when paid. */
Test(lifecycle, write_off_allowance_and_recovery)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00");
    invoice("C", "I1", "2026-01-01", "1200.00", "100.00");
    ev(RS_APPLY_OK, "{\"event_id\":\"u\",\"type\":\"invoice.uncollectible\",\"contract_id\":"
                    "\"C\",\"occurred_at\":\"2026-03-01T00:00:00Z\",\"invoice_id\":\"I1\","
                    "\"declared_on\":\"2026-03-01\"}");
    const rs_entry_t *w = only_entry("C", RS_ENTRY_WRITE_OFF);
    cr_assert_eq(posting(w, RS_ACCT_BAD_DEBT_EXPENSE), USD("1300.00"));
    cr_assert_eq(posting(w, RS_ACCT_ALLOWANCE_DOUBTFUL), -USD("1300.00"));
    cr_assert_eq(w->recognized, 0); /* revenue unchanged */
    pay("C", "I1", "P1", "2026-05-01", "1300.00");
    const rs_entry_t *r = only_entry("C", RS_ENTRY_RECOVERY);
    cr_assert_eq(posting(r, RS_ACCT_CASH), USD("1300.00"));
    cr_assert_eq(posting(r, RS_ACCT_ALLOWANCE_DOUBTFUL), USD("1300.00"));
    cr_assert_eq(posting(r, RS_ACCT_BAD_DEBT_EXPENSE), -USD("1300.00"));
    rs_contract_view_t cv;
    rs_engine_contract_get(h.engine, 0, &cv);
    cr_assert_eq(cv.written_off, 0);
    rs_invoice_view_t iv;
    rs_engine_invoice_get(h.engine, 0, &iv);
    cr_assert_eq(iv.paid, USD("1300.00"));
    cr_assert_eq(iv.open, 0);
    cr_assert_eq(iv.uncollectible, 1);
    cr_assert_eq(iv.allowance, 0);
}

/* Uncollectible with the revenue-reversal policy. */
Test(lifecycle, write_off_reverse_revenue)
{
    rs_policy_t pol;
    char err[256];
    rs_policy_defaults(&pol);
    cr_assert_eq(rs_policy_parse(&pol, "policy.bad_debt=reverse_revenue", err, sizeof(err)), 0);
    rs_harness_free(&h);
    rs_harness_init(&h, &pol);
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00");
    invoice("C", "I1", "2026-01-01", "1200.00", "0");
    ev(RS_APPLY_OK, "{\"event_id\":\"u\",\"type\":\"invoice.uncollectible\",\"contract_id\":"
                    "\"C\",\"occurred_at\":\"2026-04-01T00:00:00Z\",\"invoice_id\":\"I1\","
                    "\"declared_on\":\"2026-04-01\"}");
    rs_engine_advance(h.engine, P(2026, 12));
    const rs_entry_t *w = only_entry("C", RS_ENTRY_WRITE_OFF);
    cr_assert_eq(posting(w, RS_ACCT_REVENUE_CONTRA), USD("300.00"));
    cr_assert_eq(posting(w, RS_ACCT_DEFERRED_REVENUE), USD("900.00"));
    cr_assert_eq(posting(w, RS_ACCT_ACCOUNTS_RECEIVABLE), -USD("1200.00"));
    rs_balance_row_t b = rs_h_balance(&h, "C", "L1", "2026-12");
    cr_assert_eq(b.recognized, 0);
    cr_assert_eq(b.billed, 0);
}

/* Milestones recognize on completion, in the completion's period. */
Test(lifecycle, milestones)
{
    ev(RS_APPLY_OK,
       "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"M\",\"occurred_at\":"
       "\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\",\"booked_on\":"
       "\"2026-01-01\",\"lines\":[{\"line_id\":\"impl\",\"product\":\"Implementation\","
       "\"recognition\":\"milestone\",\"start\":\"2026-01-01\",\"end\":\"2026-06-30\","
       "\"amount\":\"10000.00\",\"milestones\":[{\"milestone_id\":\"design\",\"amount\":"
       "\"4000.00\"},{\"milestone_id\":\"golive\",\"amount\":\"6000.00\"}]}]}");
    ev(RS_APPLY_OK,
       "{\"event_id\":\"m1\",\"type\":\"milestone.completed\",\"contract_id\":\"M\","
       "\"occurred_at\":\"2026-02-14T00:00:00Z\",\"line_id\":\"impl\",\"milestone_id\":"
       "\"design\",\"completed_on\":\"2026-02-14\"}");
    ev(RS_APPLY_REJECTED,
       "{\"event_id\":\"m9\",\"type\":\"milestone.completed\",\"contract_id\":\"M\","
       "\"occurred_at\":\"2026-02-15T00:00:00Z\",\"line_id\":\"impl\",\"milestone_id\":"
       "\"nope\",\"completed_on\":\"2026-02-15\"}");
    rs_engine_advance(h.engine, P(2026, 6));
    cr_assert_eq(rec("M", "impl", "2026-02", "2026-06"), USD("4000.00"));
    cr_assert_eq(rs_h_balance(&h, "M", "impl", "2026-06").recognized, USD("4000.00"));
    ev(RS_APPLY_OK,
       "{\"event_id\":\"m2\",\"type\":\"milestone.completed\",\"contract_id\":\"M\","
       "\"occurred_at\":\"2026-07-01T00:00:00Z\",\"line_id\":\"impl\",\"milestone_id\":"
       "\"golive\",\"completed_on\":\"2026-06-30\"}");
    rs_engine_advance(h.engine, P(2026, 7));
    cr_assert_eq(rs_h_balance(&h, "M", "impl", "2026-07").recognized, USD("10000.00"));
}

/* Closing a period: later events post in the first open period, and the
 * closed period's reports never change. */
Test(lifecycle, period_close_locks)
{
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "1200.00");
    close_period("2026-01", "2026-02-01");
    cr_assert(rs_engine_period_closed(h.engine, P(2026, 1)));
    rs_balance_row_t before = rs_h_balance(&h, "C", "L1", "2026-01");
    /* an invoice dated in January arrives after the close */
    invoice("C", "I1", "2026-01-15", "1200.00", "0");
    rs_balance_row_t after = rs_h_balance(&h, "C", "L1", "2026-01");
    cr_assert_eq(after.billed, before.billed);
    cr_assert_eq(after.unbilled, before.unbilled);
    const rs_entry_t *inv = only_entry("C", RS_ENTRY_INVOICE);
    cr_assert_eq(inv->period, P(2026, 2));
    char d[16];
    cr_assert_str_eq(rs_date_format(inv->posted_on, d, sizeof(d)), "2026-02-01");
    /* the same close twice is a duplicate, not an error */
    ev(RS_APPLY_DUPLICATE, "{\"event_id\":\"close-2026-01\",\"type\":\"period.closed\","
                           "\"occurred_at\":\"2026-02-01T00:00:00Z\",\"period\":\"2026-01\"}");
}

/* Policies: defaults, a full file, and clear errors. */
Test(lifecycle, policy_file)
{
    rs_policy_t p;
    char err[256];
    rs_policy_defaults(&p);
    cr_assert_str_eq(rs_policy_account_code(&p, RS_ACCT_REVENUE, "x"), "revenue");
    const char *text = "# finance policies\n"
                       "policy.cancellation = forfeit   # recognize on cancellation\n"
                       "policy.bad_debt = reverse_revenue\n"
                       "policy.proration = 30_360\n"
                       "account.revenue = 4000\n"
                       "account.revenue.Onboarding = 4100\n"
                       "account.deferred_revenue = 2400\n";
    cr_assert_eq(rs_policy_parse(&p, text, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(p.cancellation, RS_CANCEL_FORFEIT);
    cr_assert_eq(p.bad_debt, RS_BAD_DEBT_REVERSE_REVENUE);
    cr_assert_eq(p.proration, RS_PRORATE_30_360);
    cr_assert_str_eq(rs_policy_account_code(&p, RS_ACCT_REVENUE, "Plan"), "4000");
    cr_assert_str_eq(rs_policy_account_code(&p, RS_ACCT_REVENUE, "Onboarding"), "4100");
    cr_assert_str_eq(rs_policy_account_code(&p, RS_ACCT_CASH, "Plan"), "cash");
    cr_assert_eq(rs_policy_parse(&p, "policy.cancelation = forfeit", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "policy line 1: policy.cancelation: unknown key");
    cr_assert_eq(rs_policy_parse(&p, "\naccount.revenu = 1", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "policy line 2: account.revenu: unknown account role");
    cr_assert_eq(rs_policy_parse(&p, "policy.bad_debt = maybe", err, sizeof(err)), -1);
    cr_assert_str_eq(err, "policy line 1: policy.bad_debt: invalid value \"maybe\"");
}

/* 30/360 proration: a partial month counts its days out of 30. */
Test(lifecycle, proration_30_360)
{
    rs_policy_t pol;
    char err[256];
    rs_policy_defaults(&pol);
    cr_assert_eq(rs_policy_parse(&pol, "policy.proration = 30_360", err, sizeof(err)), 0);
    rs_harness_free(&h);
    rs_harness_init(&h, &pol);
    /* Feb 16 - Mar 15 2026: Feb 13 days of 30, Mar 15 of 30: 13/28 of 280 */
    book1("C", "ratable_monthly", "2026-02-16", "2026-03-15", "280.00");
    rs_engine_advance(h.engine, P(2026, 3));
    cr_assert_eq(rec("C", "L1", "2026-02", "2026-03"), USD("130.00"));
    cr_assert_eq(rec("C", "L1", "2026-03", "2026-03"), USD("150.00"));
}

/* Usage recorded after a cancellation's effective date: rejected when the
 * cancellation came first; when the usage came first it was recognized,
 * and the cancellation reverses it and reports it (usage_outside_service).
 * Either way the line ends with the same balances: arrival order (one
 * topic lagging another) does not change the revenue. */
static void usage_then_cancel(int usage_first, rs_balance_row_t *out, rs_money_t *june,
                              rs_money_t *outside)
{
    static const char *const booked =
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L2\",\"product\":\"api\","
        "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
        "\"amount\":\"0\",\"unit_price\":\"0.05\"}]}";
    static const char *const may =
        "{\"event_id\":\"u5\",\"type\":\"usage.recorded\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-05-15T12:00:00Z\",\"line_id\":\"L2\",\"quantity\":\"400\"}";
    static const char *const jun =
        "{\"event_id\":\"u6\",\"type\":\"usage.recorded\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-06-15T12:00:00Z\",\"line_id\":\"L2\",\"quantity\":\"265\"}";
    static const char *const cancel =
        "{\"event_id\":\"x\",\"type\":\"contract.cancelled\",\"contract_id\":\"U\","
        "\"occurred_at\":\"2026-05-10T10:00:00Z\",\"effective_on\":\"2026-06-01\"}";
    ev(RS_APPLY_OK, "%s", booked);
    ev(RS_APPLY_OK, "%s", may);
    if (usage_first) {
        ev(RS_APPLY_OK, "%s", jun);
        rs_engine_advance(h.engine, P(2026, 6)); /* June's usage is posted */
        cr_assert_eq(rec("U", "L2", "2026-06", "2026-06"), USD("13.25"));
        ev(RS_APPLY_OK, "%s", cancel);
    } else {
        ev(RS_APPLY_OK, "%s", cancel);
        ev(RS_APPLY_REJECTED, "%s", jun);
        cr_assert(strstr(h.last_error, "outside the line's service") != NULL, "%s",
                  h.last_error);
    }
    rs_engine_advance(h.engine, P(2026, 12));
    *out = rs_h_balance(&h, "U", "L2", "2026-12");
    *june = rec("U", "L2", "2026-06", "2026-12");
    rs_exception_row_t *x = NULL;
    size_t n = 0;
    *outside = -1;
    cr_assert_eq(rs_report_exceptions(h.engine, &h.journal, P(2026, 12), &x, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(x[i].kind, "usage_outside_service") == 0)
            *outside = x[i].amount;
    free(x);
    cr_assert_eq(rs_h_unbalanced_entries(&h), 0);
}

Test(lifecycle, usage_after_cancellation_same_balances_in_either_order)
{
    rs_balance_row_t a, b;
    rs_money_t june_a, june_b, out_a, out_b;
    usage_then_cancel(1, &a, &june_a, &out_a);
    rs_harness_free(&h);
    rs_harness_init(&h, NULL);
    usage_then_cancel(0, &b, &june_b, &out_b);
    cr_assert_eq(a.recognized, USD("20.00")); /* May only: 400 x 0.05 */
    cr_assert_eq(b.recognized, USD("20.00"));
    cr_assert_eq(june_a, 0, "June nets to %lld after the reversal", (long long)june_a);
    cr_assert_eq(june_b, 0);
    cr_assert_eq(a.unbilled, b.unbilled);
    cr_assert_eq(a.deferred, b.deferred);
    cr_assert_eq(out_a, USD("13.25"), "usage_outside_service %lld", (long long)out_a);
    cr_assert_eq(out_b, -1, "rejected usage is not an exception row");
}

/* I8's bound: usage for a contract not booked yet waits, up to
 * RS_ENG_PENDING_MAX_BYTES of waiting events per contract (its record
 * stays small); the next one is rejected with the reason and leaves no
 * trace (sent again after the booking, it applies); the waiting ones apply
 * when the contract is booked. */
Test(lifecycle, waiting_events_are_bounded_per_contract)
{
    char ev[320];
    int waiting = 0, rc = RS_APPLY_PENDING;
    while (rc == RS_APPLY_PENDING && waiting < 100000) {
        snprintf(ev, sizeof ev,
                 "{\"event_id\":\"w-%d\",\"type\":\"usage.recorded\",\"contract_id\":\"W\","
                 "\"occurred_at\":\"2026-01-10T00:00:00Z\",\"line_id\":\"L1\",\"quantity\":"
                 "\"2\"}",
                 waiting);
        rc = rs_harness_apply(&h, ev);
        if (rc == RS_APPLY_PENDING)
            waiting++;
    }
    cr_assert_eq(rc, RS_APPLY_REJECTED);
    cr_assert_gt(waiting, 500);
    cr_assert_eq(rs_engine_pending_count(h.engine), (size_t)waiting);
    cr_assert_not_null(strstr(h.last_error, "already wait in contract W, the most one contract "
                                            "holds (262144 bytes)"),
                       "%s", h.last_error);
    void *buf;
    size_t len;
    char err[256];
    cr_assert_eq(rs_engine_export_contract(h.engine, "W", &buf, &len, err, sizeof err), 0);
    free(buf);
    cr_assert_lt(len, 300 * 1024, "%zu bytes", len);
    cr_assert_eq(rs_harness_apply(&h,
                                  "{\"event_id\":\"bw\",\"type\":\"contract.booked\","
                                  "\"contract_id\":\"W\",\"occurred_at\":\"2026-01-01T00:00:"
                                  "00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","
                                  "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":"
                                  "\"L1\",\"product\":\"API\",\"recognition\":\"usage\","
                                  "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
                                  "\"amount\":\"0\",\"unit_price\":\"0.50\"}]}"),
                 RS_APPLY_OK, "%s", h.last_error);
    cr_assert_eq(rs_engine_pending_count(h.engine), 0);
    cr_assert_eq(rs_harness_apply(&h, ev), RS_APPLY_OK, "%s", h.last_error);
    /* every waiting event and the one sent again: 2 units each at 0.50 */
    rs_engine_advance(h.engine, P(2026, 1));
    cr_assert_eq(rs_h_recognized(&h, "W", "L1", "2026-01", "2026-01"),
                 USD("1.00") * (waiting + 1));
}

/* rs_engine_track_changes(e, 0) (replay): the changed set stays empty, and
 * the amounts are the same as with it. */
Test(lifecycle, untracked_changes_leave_the_changed_set_empty)
{
    const char *const *ids = NULL;
    book1("C", "ratable_monthly", "2026-01-01", "2026-12-31", "12000.00");
    cr_assert_eq(rs_engine_take_changed(h.engine, &ids), 1);
    cr_assert_str_eq(ids[0], "C");
    rs_engine_track_changes(h.engine, 0);
    book1("D", "ratable_monthly", "2026-01-01", "2026-12-31", "6000.00");
    rs_engine_advance(h.engine, P(2026, 3));
    cr_assert_eq(rs_engine_take_changed(h.engine, &ids), 0);
    cr_assert_eq(rs_engine_contract_is_changed(h.engine, "D"), 0);
    cr_assert_eq(rec("D", "L1", "2026-03", "2026-03"), USD("500.00"));
    rs_engine_track_changes(h.engine, 1);
    rs_engine_advance(h.engine, P(2026, 4));
    cr_assert_eq(rs_engine_take_changed(h.engine, &ids), 2);
}
