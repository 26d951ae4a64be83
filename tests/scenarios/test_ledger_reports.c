/*
 * test_ledger_reports — the ledger views (rs_report_ledger.h) on the sample
 * book, each summed against the journal it comes from:
 *   - balances by customer and by contract sum to the line balances, which
 *     sum to the journal's billed / recognized / received;
 *   - invoice rows: Σ open = the journal's accounts_receivable balance as of
 *     the date, each row's buckets sum to its open amount, and a known
 *     invoice is aged into the right bucket;
 *   - trial balance: per period and currency Σ debit = Σ credit, Σ balance =
 *     0, and each account's closing balance is its net over the journal;
 *   - RPO: current + non-current = total, Σ total per currency = the
 *     waterfall's projected total, and an annual contract's split is exact.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_report_ledger.h"
#include "rs_test_util.h"

static rs_harness_t h;
static rs_period_t through;

static void setup(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/examples/sample-book.jsonl", RS_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    rs_harness_init(&h, NULL);
    rs_harness_feed(&h, text);
    rs_period_parse("2026-06", &through);
    cr_assert_eq(rs_engine_advance(h.engine, through), 0);
    cr_assert(h.journal.n > 50);
}

static void teardown(void)
{
    rs_harness_free(&h);
}

TestSuite(ledger, .init = setup, .fini = teardown);

/* Net debit of `account` over the journal's entries with posted_on <= on
 * (RS_DATE_NONE: all) and period <= per, in `currency`. */
static rs_money_t journal_net(rs_account_t account, const char *currency, rs_date_t on,
                              rs_period_t per)
{
    rs_money_t v = 0;
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        if (strcmp(e->currency, currency) || (on != RS_DATE_NONE && e->posted_on > on) ||
            e->period > per)
            continue;
        for (int p = 0; p < e->n_postings; p++)
            if (e->postings[p].account == account)
                v += e->postings[p].debit - e->postings[p].credit;
    }
    return v;
}

Test(ledger, balances_by_customer_and_contract_tie_to_the_journal)
{
    rs_balance_row_t *b;
    size_t nb;
    cr_assert_eq(rs_report_balances(h.engine, &h.journal, through, &b, &nb), 0);
    for (int by = RS_GROUP_CUSTOMER; by <= RS_GROUP_CONTRACT; by++) {
        rs_group_row_t *g;
        size_t ng, lines = 0;
        rs_money_t billed = 0, rec = 0, recv = 0, jb = 0, jr = 0, jrecv = 0;
        cr_assert_eq(rs_report_balances_by(b, nb, (rs_group_by_t)by, &g, &ng), 0);
        for (size_t i = 0; i < ng; i++) {
            if (strcmp(g[i].currency, "USD"))
                continue;
            lines += g[i].lines;
            billed += g[i].billed;
            rec += g[i].recognized;
            recv += g[i].received;
            cr_assert(i == 0 || strcmp(g[i - 1].customer_id, g[i].customer_id) <= 0);
        }
        for (size_t i = 0; i < h.journal.n; i++) {
            const rs_entry_t *e = &h.journal.entries[i];
            if (strcmp(e->currency, "USD") || e->period > through)
                continue;
            jb += e->billed;
            jr += e->recognized;
            jrecv += e->received;
        }
        cr_assert_eq(billed, jb);
        cr_assert_eq(rec, jr);
        cr_assert_eq(rec, 8627767); /* 86,277.67: the waterfall's posted total */
        cr_assert_eq(recv, jrecv);
        cr_assert_eq(lines, nb - 1, "every USD line once (C-1007 is the JPY one)");
        if (by == RS_GROUP_CUSTOMER)
            cr_assert_eq(ng, 8, "eight customers in the sample, %zu rows", ng);
        free(g);
    }
    free(b);
}

Test(ledger, invoices_open_amounts_are_the_receivable_balance_and_are_aged)
{
    rs_invoice_row_t *r;
    size_t n;
    rs_date_t as_of = rs_date_from_ymd(2026, 6, 30);
    cr_assert_eq(rs_report_invoices(&h.journal, as_of, &r, &n), 0);
    rs_money_t open = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        rs_money_t sum = r[i].bucket[0] + r[i].bucket[1] + r[i].bucket[2] + r[i].bucket[3];
        cr_assert_eq(sum, r[i].open, "%s", r[i].invoice_id);
        cr_assert_eq(r[i].open, r[i].invoiced - r[i].received + r[i].adjusted);
        if (strcmp(r[i].currency, "USD") == 0)
            open += r[i].open;
        if (strcmp(r[i].invoice_id, "INV-1001") == 0) { /* 12,000 paid in full */
            cr_assert_eq(r[i].invoiced, 1200000);
            cr_assert_eq(r[i].received, 1200000);
            cr_assert_eq(r[i].open, 0);
            cr_assert_eq(r[i].age_days, (int)(as_of - rs_date_from_ymd(2026, 1, 1)));
            found++;
        }
    }
    cr_assert_eq(found, 1);
    cr_assert_eq(open, journal_net(RS_ACCT_ACCOUNTS_RECEIVABLE, "USD", as_of, through));
    free(r);

    /* an open invoice moves from bucket to bucket with the date */
    rs_journal_t j;
    rs_journal_init(&j);
    rs_entry_t e;
    memset(&e, 0, sizeof e);
    strcpy(e.contract_id, "C-X");
    strcpy(e.customer_id, "CUS-X");
    strcpy(e.document_id, "INV-X");
    strcpy(e.currency, "USD");
    e.exponent = 2;
    e.kind = RS_ENTRY_INVOICE;
    e.posted_on = rs_date_from_ymd(2026, 1, 1);
    e.period = rs_period_of(e.posted_on);
    e.n_postings = 2;
    e.postings[0] = (rs_posting_t){.account = RS_ACCT_ACCOUNTS_RECEIVABLE, .debit = 50000};
    e.postings[1] = (rs_posting_t){.account = RS_ACCT_DEFERRED_REVENUE, .credit = 50000};
    e.n_sources = 1;
    strcpy(e.sources[0], "bill-x");
    cr_assert_eq(rs_journal_append(&j, &e), 0);
    static const int days[4] = {30, 31, 90, 91}, bucket[4] = {0, 1, 2, 3};
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(rs_report_invoices(&j, e.posted_on + days[t], &r, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_eq(r[0].bucket[bucket[t]], 50000, "%d days", days[t]);
        free(r);
    }
    rs_journal_free(&j);
}

Test(ledger, trial_balance_balances_every_period_and_ties_to_the_journal)
{
    rs_trial_row_t *t;
    size_t n;
    cr_assert_eq(rs_report_trial_balance(&h.journal, through, &t, &n), 0);
    cr_assert(n > 0);
    for (size_t i = 0; i < n;) {
        size_t k = i;
        rs_money_t dr = 0, cr = 0, bal = 0;
        while (k < n && t[k].period == t[i].period &&
               strcmp(t[k].currency, t[i].currency) == 0) {
            dr += t[k].debit;
            cr += t[k].credit;
            bal += t[k].balance;
            cr_assert_eq(t[k].balance,
                         journal_net(t[k].account, t[k].currency, RS_DATE_NONE, t[k].period));
            k++;
        }
        cr_assert_eq(dr, cr, "period %d %s", (int)t[i].period, t[i].currency);
        cr_assert_eq(bal, 0);
        i = k;
    }
    /* June, USD: revenue closes at -86,277.67 (credit) */
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].period == through && strcmp(t[i].currency, "USD") == 0 &&
            t[i].account == RS_ACCT_REVENUE) {
            cr_assert_eq(t[i].balance, -8627767);
            seen = 1;
        }
    cr_assert(seen);
    free(t);
}

Test(ledger, rpo_splits_current_and_non_current_and_ties_to_the_waterfall)
{
    rs_rpo_row_t *r;
    size_t n;
    rs_waterfall_row_t *w;
    size_t nw;
    cr_assert_eq(rs_harness_apply(
                     &h,
                     "{\"event_id\":\"rpo-1\",\"type\":\"contract.booked\",\"contract_id\":"
                     "\"C-RPO\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":"
                     "\"CUS-RPO\",\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":"
                     "[{\"line_id\":\"L1\",\"product\":\"3 years\",\"recognition\":"
                     "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2028-12-31\","
                     "\"amount\":\"36000.00\"}]}"),
                 RS_APPLY_OK);
    cr_assert_eq(rs_engine_advance(h.engine, through), 0);
    cr_assert_eq(rs_report_rpo(h.engine, &h.journal, through, &r, &n), 0);
    cr_assert_eq(rs_report_waterfall(h.engine, &h.journal, through, &w, &nw), 0);
    rs_money_t usd = 0, proj = 0;
    int c1001 = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(r[i].current + r[i].non_current, r[i].total);
        if (strcmp(r[i].currency, "USD") == 0)
            usd += r[i].total;
        if (strcmp(r[i].contract_id, "C-1001") == 0) { /* 12,000 for 2026: 6 months left */
            cr_assert_eq(r[i].current, 600000);
            cr_assert_eq(r[i].non_current, 0);
            c1001 = 1;
        }
        if (strcmp(r[i].contract_id, "C-RPO") == 0) {
            /* 36,000 over 2026-2028, booked after June was closed: nothing
             * is posted through June (January-June catch up in July), so
             * current = July's catch-up 6,000 + 12 x 1,000 and the 18 months
             * after June 2027 are non-current */
            cr_assert_eq(r[i].current, 1800000);
            cr_assert_eq(r[i].non_current, 1800000);
            c1001++;
        }
    }
    for (size_t i = 0; i < nw; i++)
        if (w[i].projected && strcmp(w[i].currency, "USD") == 0)
            proj += w[i].recognized;
    cr_assert_eq(c1001, 2);
    cr_assert_eq(usd, proj, "RPO %lld, waterfall scheduled %lld", (long long)usd,
                 (long long)proj);
    cr_assert_eq(usd, 7733333 + 3600000);
    free(r);
    free(w);
}

/* An aggregator fed the journal as `rs replay` feeds it (issue 13): the
 * floor rises with the entries' periods (up to the report's period) and the
 * limit is that period. Its balances, waterfall, rollforward and exceptions equal those
 * of an aggregator that kept every (line, period), and it refuses what it
 * can no longer answer: the schedule, and a period outside [floor, limit]. */
Test(ledger, folded_aggregator_reports_equal_the_per_period_ones)
{
    rs_period_t t = through - 2; /* the book has entries after it */
    rs_report_acc_t *all = NULL, *fold = NULL;
    cr_assert_eq(rs_report_acc_new(&all), 0);
    cr_assert_eq(rs_report_acc_new(&fold), 0);
    rs_report_acc_set_limit(fold, t);
    size_t beyond = 0;
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        beyond += e->period > t;
        rs_report_acc_set_floor(fold, e->period < t ? e->period : t);
        cr_assert_eq(rs_report_acc_add(all, e), 0);
        cr_assert_eq(rs_report_acc_add(fold, e), 0);
    }
    cr_assert_eq(rs_report_acc_count(fold), h.journal.n);
    cr_assert(beyond > 0); /* the limit drops some */

    rs_balance_row_t *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    cr_assert_eq(rs_report_acc_balances(h.engine, all, t, &b1, &n1), 0);
    cr_assert_eq(rs_report_acc_balances(h.engine, fold, t, &b2, &n2), 0);
    cr_assert_eq(n1, n2);
    cr_assert(n1 > 3, "%zu lines", n1);
    rs_money_t billed = 0;
    for (size_t i = 0; i < n1; i++) {
        cr_assert_str_eq(b1[i].line_id, b2[i].line_id);
        cr_assert_eq(b1[i].billed, b2[i].billed, "%s/%s", b1[i].contract_id, b1[i].line_id);
        cr_assert_eq(b1[i].recognized, b2[i].recognized);
        cr_assert_eq(b1[i].deferred, b2[i].deferred);
        cr_assert_eq(b1[i].unbilled, b2[i].unbilled);
        cr_assert_eq(b1[i].received, b2[i].received);
        billed += b2[i].billed;
    }
    cr_assert(billed > 0);
    free(b1);
    free(b2);

    rs_waterfall_row_t *w1 = NULL, *w2 = NULL;
    cr_assert_eq(rs_report_acc_waterfall(h.engine, all, t, &w1, &n1), 0);
    cr_assert_eq(rs_report_acc_waterfall(h.engine, fold, t, &w2, &n2), 0);
    cr_assert_eq(n1, n2);
    for (size_t i = 0; i < n1; i++) {
        cr_assert_eq(w1[i].period, w2[i].period);
        cr_assert_str_eq(w1[i].currency, w2[i].currency);
        cr_assert_eq(w1[i].recognized, w2[i].recognized);
        cr_assert_eq(w1[i].deferred, w2[i].deferred);
        cr_assert_eq(w1[i].from_deferred, w2[i].from_deferred);
        cr_assert_eq(w1[i].projected, w2[i].projected);
    }
    free(w1);
    free(w2);

    rs_rollforward_row_t *r1 = NULL, *r2 = NULL;
    cr_assert_eq(rs_report_acc_rollforward(h.engine, all, t, &r1, &n1), 0);
    cr_assert_eq(rs_report_acc_rollforward(h.engine, fold, t, &r2, &n2), 0);
    cr_assert_eq(n1, n2);
    for (size_t i = 0; i < n1; i++) {
        cr_assert_eq(r1[i].opening, r2[i].opening);
        cr_assert_eq(r1[i].closing, r2[i].closing);
        cr_assert_eq(r1[i].billed, r2[i].billed);
        cr_assert_eq(r1[i].credits, r2[i].credits);
    }
    free(r1);
    free(r2);

    rs_exception_row_t *x1 = NULL, *x2 = NULL;
    cr_assert_eq(rs_report_acc_exceptions(h.engine, all, t, &x1, &n1), 0);
    cr_assert_eq(rs_report_acc_exceptions(h.engine, fold, t, &x2, &n2), 0);
    cr_assert_eq(n1, n2);
    for (size_t i = 0; i < n1; i++) {
        cr_assert_str_eq(x1[i].kind, x2[i].kind);
        cr_assert_eq(x1[i].amount, x2[i].amount);
        cr_assert_str_eq(x1[i].detail, x2[i].detail);
    }
    free(x1);
    free(x2);

    /* what a folded aggregator cannot answer */
    rs_schedule_row_t *s = NULL;
    cr_assert_eq(rs_report_acc_schedule(h.engine, all, t, &s, &n1), 0);
    free(s);
    s = NULL;
    cr_assert_neq(rs_report_acc_schedule(h.engine, fold, t, &s, &n2), 0);
    cr_assert_null(s);
    rs_balance_row_t *b = NULL;
    cr_assert_neq(rs_report_acc_balances(h.engine, fold, t - 1, &b, &n2), 0);
    cr_assert_neq(rs_report_acc_balances(h.engine, fold, t + 1, &b, &n2), 0);
    cr_assert_null(b);
    rs_report_acc_free(all);
    rs_report_acc_free(fold);
}

/* An aggregator told which report it is for (rs_report_acc_need) keeps only
 * what that report reads: it gives that report as the full one does and
 * refuses the reports that need more. */
Test(ledger, aggregator_keeps_only_what_its_report_reads)
{
    rs_report_acc_t *all = NULL;
    cr_assert_eq(rs_report_acc_new(&all), 0);
    for (size_t i = 0; i < h.journal.n; i++)
        cr_assert_eq(rs_report_acc_add(all, &h.journal.entries[i]), 0);
    rs_balance_row_t *b1 = NULL;
    rs_waterfall_row_t *w1 = NULL;
    rs_rollforward_row_t *r1 = NULL;
    rs_exception_row_t *x = NULL;
    size_t nb = 0, nw = 0, nr = 0, n2 = 0;
    cr_assert_eq(rs_report_acc_balances(h.engine, all, through, &b1, &nb), 0);
    cr_assert_eq(rs_report_acc_waterfall(h.engine, all, through, &w1, &nw), 0);
    cr_assert_eq(rs_report_acc_rollforward(h.engine, all, through, &r1, &nr), 0);
    cr_assert(nb > 0 && nw > 0 && nr > 0);
    for (int need = RS_REPORT_NEED_BALANCES; need <= RS_REPORT_NEED_ROLLFORWARD; need++) {
        rs_report_acc_t *acc = NULL;
        cr_assert_eq(rs_report_acc_new(&acc), 0);
        rs_report_acc_need(acc, (rs_report_need_t)need);
        for (size_t i = 0; i < h.journal.n; i++)
            cr_assert_eq(rs_report_acc_add(acc, &h.journal.entries[i]), 0);
        rs_rollforward_row_t *r2 = NULL;
        cr_assert_eq(rs_report_acc_rollforward(h.engine, acc, through, &r2, &n2), 0);
        cr_assert_eq(n2, nr);
        for (size_t i = 0; i < nr; i++)
            cr_assert(r2[i].period == r1[i].period && r2[i].closing == r1[i].closing &&
                      r2[i].billed == r1[i].billed && r2[i].revenue == r1[i].revenue);
        free(r2);
        rs_waterfall_row_t *w2 = NULL;
        int wrc = rs_report_acc_waterfall(h.engine, acc, through, &w2, &n2);
        if (need == RS_REPORT_NEED_ROLLFORWARD) {
            cr_assert_neq(wrc, 0);
        } else {
            cr_assert_eq(wrc, 0);
            cr_assert_eq(n2, nw);
            for (size_t i = 0; i < nw; i++)
                cr_assert(w2[i].period == w1[i].period &&
                          w2[i].recognized == w1[i].recognized &&
                          w2[i].deferred == w1[i].deferred);
        }
        free(w2);
        rs_balance_row_t *b2 = NULL;
        int brc = rs_report_acc_balances(h.engine, acc, through, &b2, &n2);
        if (need != RS_REPORT_NEED_BALANCES) {
            cr_assert_neq(brc, 0);
        } else {
            cr_assert_eq(brc, 0);
            cr_assert_eq(n2, nb);
            for (size_t i = 0; i < nb; i++)
                cr_assert(b2[i].billed == b1[i].billed &&
                          b2[i].recognized == b1[i].recognized &&
                          b2[i].deferred == b1[i].deferred &&
                          b2[i].unbilled == b1[i].unbilled && b2[i].received == b1[i].received);
        }
        free(b2);
        cr_assert_neq(rs_report_acc_exceptions(h.engine, acc, through, &x, &n2), 0);
        cr_assert_null(x);
        rs_report_acc_free(acc);
    }
    free(b1);
    free(w1);
    free(r1);
    rs_report_acc_free(all);
}
