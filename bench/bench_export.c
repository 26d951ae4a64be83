/*
 * bench_export.c — rs_connect_export throughput per accounting system, on
 * one core, with the plain `csv` format of the same run as the baseline.
 *
 *   bench_export [ENTRIES [RUNS]]     (defaults 200000, 5)
 *
 * Builds ENTRIES synthetic invoice entries of one period in memory (three
 * lines each: Dr accounts_receivable, Cr tax_payable, Cr deferred_revenue;
 * USD, and JPY for freee and MoneyForward, which take JPY only), then, RUNS
 * times per system, exports them into a temp dir and deletes the files. Prints
 * per system the median seconds, entries/s, rows, files, bytes per row and
 * the median's ratio to csv's (after one unmeasured csv run). Shift_JIS
 * (MoneyForward's CP932 default) goes through iconv. Progress goes to
 * stderr.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rs_connect.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static rs_entry_t *book(size_t n, const char *currency)
{
    rs_entry_t *e = calloc(n, sizeof(*e));
    if (e == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        rs_money_t net = 10000 + (rs_money_t)(i % 5000), tax = net / 10;
        snprintf(e[i].contract_id, sizeof e[i].contract_id, "C-%07zu", i / 4);
        e[i].seq = i % 4 + 1;
        snprintf(e[i].entry_id, sizeof e[i].entry_id, "%s#%llu", e[i].contract_id,
                 (unsigned long long)e[i].seq);
        snprintf(e[i].customer_id, sizeof e[i].customer_id, "CUS-%05zu", i % 20000);
        snprintf(e[i].line_id, sizeof e[i].line_id, "L1");
        snprintf(e[i].document_id, sizeof e[i].document_id, "INV-%07zu", i);
        snprintf(e[i].product, sizeof e[i].product, "Subscription, 12 months");
        snprintf(e[i].rule, sizeof e[i].rule, "invoice");
        snprintf(e[i].currency, sizeof e[i].currency, "%s", currency);
        e[i].exponent = rs_currency_exponent(currency);
        e[i].kind = RS_ENTRY_INVOICE;
        e[i].period = 2026 * 12 + 3;
        e[i].service_period = e[i].period;
        e[i].posted_on = rs_period_first_day(e[i].period) + (rs_date_t)(i % 30);
        e[i].n_postings = 3;
        e[i].postings[0] =
            (rs_posting_t){.account = RS_ACCT_ACCOUNTS_RECEIVABLE, .debit = net + tax};
        e[i].postings[1] = (rs_posting_t){.account = RS_ACCT_TAX_PAYABLE, .credit = tax};
        e[i].postings[2] = (rs_posting_t){.account = RS_ACCT_DEFERRED_REVENUE, .credit = net};
        snprintf(e[i].postings[0].code, RS_ACCOUNT_CODE_MAX, "%s",
                 e[i].exponent == 0 ? "売掛金" : "1200");
        snprintf(e[i].postings[1].code, RS_ACCOUNT_CODE_MAX, "%s",
                 e[i].exponent == 0 ? "仮受消費税" : "2200");
        snprintf(e[i].postings[2].code, RS_ACCOUNT_CODE_MAX, "%s",
                 e[i].exponent == 0 ? "前受金" : "2400");
    }
    return e;
}

static long long remove_files(const rs_connect_result_t *r)
{
    long long bytes = 0;
    for (size_t i = 0; i < r->n_files; i++) {
        struct stat st;
        if (stat(r->files[i], &st) == 0)
            bytes += st.st_size;
        unlink(r->files[i]);
    }
    return bytes;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 200000;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (n == 0 || runs <= 0 || runs > 99) {
        fprintf(stderr, "usage: bench_export [ENTRIES [RUNS]]\n");
        return 1;
    }
    char dir[] = "/tmp/bench_export.XXXXXX";
    rs_entry_t *usd = book(n, "USD"), *jpy = book(n, "JPY");
    if (mkdtemp(dir) == NULL || usd == NULL || jpy == NULL) {
        fprintf(stderr, "bench_export: setup failed\n");
        return 1;
    }
    /* csv first: the baseline */
    static const rs_connect_format_t order[] = {RS_CONNECT_CSV,   RS_CONNECT_QUICKBOOKS,
                                                RS_CONNECT_XERO,  RS_CONNECT_NETSUITE,
                                                RS_CONNECT_FREEE, RS_CONNECT_MONEYFORWARD};
    double base = 0;
    {
        /* one unmeasured run first: page in the book and the allocator */
        rs_connect_opts_t o = {0};
        rs_connect_result_t r;
        char err[512];
        o.format = RS_CONNECT_CSV;
        o.period = 2026 * 12 + 3;
        o.out_dir = dir;
        if (rs_connect_export(&o, usd, n, &r, err, sizeof err) == 0) {
            remove_files(&r);
            rs_connect_result_free(&r);
        }
    }
    printf("bench_export: entries=%zu lines=%zu runs=%d\n", n, 3 * n, runs);
    for (size_t f = 0; f < sizeof order / sizeof *order; f++) {
        double t[100];
        rs_connect_result_t r = {0};
        long long bytes = 0;
        int jp = order[f] == RS_CONNECT_FREEE || order[f] == RS_CONNECT_MONEYFORWARD;
        for (int k = 0; k < runs; k++) {
            char err[512];
            rs_connect_opts_t o = {0};
            o.format = order[f];
            o.period = 2026 * 12 + 3;
            o.out_dir = dir;
            double t0 = now();
            if (rs_connect_export(&o, jp ? jpy : usd, n, &r, err, sizeof err) != 0) {
                fprintf(stderr, "bench_export: %s\n", err);
                return 1;
            }
            t[k] = now() - t0;
            bytes = remove_files(&r);
            if (k + 1 < runs)
                rs_connect_result_free(&r);
            fprintf(stderr, "bench_export: %s run %d %.3f s\n",
                    rs_connect_format_name(order[f]), k + 1, t[k]);
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        double med = t[runs / 2];
        if (f == 0)
            base = med;
        printf("%-13s median=%.3f s  %.0f entries/s  rows=%zu files=%zu bytes/row=%.0f  "
               "ratio/csv=%.2f\n",
               rs_connect_format_name(order[f]), med, (double)n / med, r.rows, r.n_files,
               r.rows ? (double)bytes / (double)r.rows : 0.0, med / base);
        rs_connect_result_free(&r);
    }
    rmdir(dir);
    free(usd);
    free(jpy);
    return 0;
}
