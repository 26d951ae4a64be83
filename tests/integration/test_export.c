/*
 * test_export — `revstream export` and rs_connect.
 *
 * What is checked:
 *   - Golden files: the sample book (examples/sample-book.jsonl, the book
 *     scripts/demo runs) replayed and exported for April 2026 to every
 *     system, per entry and as a summary, equals tests/golden/export/ byte
 *     for byte (freee and MoneyForward with the Japanese account names of
 *     tests/golden/export/policy-ja.properties, in each of their encodings;
 *     Xero split by --max-rows). RS_UPDATE_GOLDEN=1 rewrites them (review
 *     the diff line by line against shared/reference/connectors.md).
 *   - Every file of every system, for every month 2026-01..2026-06, per
 *     entry and summary, re-balances (debits = credits per journal and per
 *     file, read back as the system reads it), and its revenue accounts
 *     (revenue and revenue_contra codes) net per currency to the
 *     waterfall's recognized figure for that month.
 *   - The limits (rs_connect directly): Xero's 300 lines and NetSuite's
 *     25,000 rows split files without splitting a journal; journal numbers
 *     are the entry ids, or a stable hash when too long (QuickBooks 21);
 *     NetSuite refuses a third decimal and an 11-digit amount; freee and
 *     MoneyForward refuse a currency other than JPY; a character Shift_JIS
 *     cannot hold is an error; and a failed export leaves no file behind.
 *   - freee and MoneyForward rows pair the i-th debit with the i-th credit
 *     (an invoice with tax: two rows, the second with no debit side).
 *   - --config: the worker's kafka.* SASL settings reach librdkafka through
 *     the worker's code, and the password never reaches the log.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_connect.h"
#include "rs_export_check.h"
#include "rs_kafka_harness.h"

#define BOOK RS_SOURCE_DIR "/examples/sample-book.jsonl"
#define POLICY RS_SOURCE_DIR "/examples/policy.properties"
#define POLICY_JA RS_SOURCE_DIR "/tests/golden/export/policy-ja.properties"
#define GOLDEN RS_SOURCE_DIR "/tests/golden/export"

static const char *const SYSTEMS[] = {"quickbooks", "xero",         "netsuite",
                                      "freee",      "moneyforward", "csv"};

static const char *base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Export with args into a fresh dir; compare every file with its golden:
 * the file's name, or with `tag` <stem>.<tag>.csv. */
static void golden_tagged(const char *const *args, const char *const *want, const char *tag)
{
    char dir[64];
    const char *a[32];
    size_t n = 0;
    kh_make_dir(dir, sizeof dir);
    for (; args[n] != NULL; n++)
        a[n] = args[n];
    a[n++] = "--input";
    a[n++] = BOOK;
    a[n++] = "--out";
    a[n++] = dir;
    a[n] = NULL;
    json_t *files = xc_export(a, dir);
    size_t nw = 0;
    while (want[nw] != NULL)
        nw++;
    cr_assert_eq(json_array_size(files), nw, "%zu files", json_array_size(files));
    int update = getenv("RS_UPDATE_GOLDEN") != NULL;
    for (size_t i = 0; i < nw; i++) {
        const char *got = json_string_value(json_array_get(files, i));
        cr_assert_str_eq(base(got), want[i]);
        char gpath[512];
        if (tag != NULL)
            snprintf(gpath, sizeof gpath, "%s/%.*s.%s.csv", GOLDEN, (int)(strlen(want[i]) - 4),
                     want[i], tag);
        else
            snprintf(gpath, sizeof gpath, "%s/%s", GOLDEN, want[i]);
        char *g = kh_slurp(got);
        if (update) {
            kh_write_file(gpath, g);
        } else {
            char *w = kh_slurp(gpath);
            cr_assert_neq(w[0], '\0', "no golden file %s (RS_UPDATE_GOLDEN=1 writes it)",
                          gpath);
            cr_assert_str_eq(g, w, "%s differs from %s", got, gpath);
            free(w);
        }
        free(g);
    }
    json_decref(files);
    kh_rm_rf(dir);
}

static void golden(const char *const *args, const char *const *want)
{
    golden_tagged(args, want, NULL);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(export, golden_quickbooks)
{
    golden(ARGS("--to", "quickbooks", "--period", "2026-04", "--policy", POLICY),
           ARGS("quickbooks-2026-04-1.csv"));
    golden(ARGS("--to", "quickbooks", "--period", "2026-04", "--policy", POLICY, "--summary",
                "--currency", "USD"),
           ARGS("quickbooks-2026-04-USD-1.csv"));
}

Test(export, golden_xero)
{
    golden(ARGS("--to", "xero", "--period", "2026-04", "--policy", POLICY, "--currency", "USD",
                "--max-rows", "8", "--tax-rate", "Tax Exempt"),
           ARGS("xero-2026-04-USD-1.csv", "xero-2026-04-USD-2.csv", "xero-2026-04-USD-3.csv"));
}

Test(export, golden_netsuite)
{
    golden(ARGS("--to", "netsuite", "--period", "2026-04", "--policy", POLICY, "--subsidiary",
                "Revstream Inc."),
           ARGS("netsuite-2026-04-1.csv"));
}

Test(export, golden_freee)
{
    golden(ARGS("--to", "freee", "--period", "2026-04", "--policy", POLICY_JA, "--currency",
                "JPY"),
           ARGS("freee-2026-04-JPY-1.csv"));
    /* the same rows in Shift_JIS: kept under another name */
    char dir[64];
    kh_make_dir(dir, sizeof dir);
    json_t *f = xc_export(ARGS("--to", "freee", "--period", "2026-04", "--policy", POLICY_JA,
                               "--currency", "JPY", "--encoding", "shift_jis", "--input", BOOK,
                               "--out", dir),
                          dir);
    char *sjis = kh_slurp(json_string_value(json_array_get(f, 0)));
    char *want = kh_slurp(GOLDEN "/freee-2026-04-JPY-1.sjis.csv");
    if (getenv("RS_UPDATE_GOLDEN") != NULL)
        kh_write_file(GOLDEN "/freee-2026-04-JPY-1.sjis.csv", sjis);
    else
        cr_assert_str_eq(sjis, want);
    /* 売掛金 in Shift_JIS is 94 84 8A 7C 8B E0 */
    cr_assert_not_null(strstr(sjis, "\x94\x84\x8A\x7C\x8B\xE0"));
    free(sjis);
    free(want);
    json_decref(f);
    kh_rm_rf(dir);
}

Test(export, golden_moneyforward)
{
    golden(ARGS("--to", "moneyforward", "--period", "2026-04", "--policy", POLICY_JA,
                "--currency", "JPY"),
           ARGS("moneyforward-2026-04-JPY-1.csv"));
    char dir[64];
    kh_make_dir(dir, sizeof dir);
    json_t *f = xc_export(ARGS("--to", "moneyforward", "--period", "2026-04", "--policy",
                               POLICY_JA, "--currency", "JPY", "--encoding", "utf-8-bom",
                               "--input", BOOK, "--out", dir),
                          dir);
    char *bom = kh_slurp(json_string_value(json_array_get(f, 0)));
    cr_assert_eq(memcmp(bom, "\xEF\xBB\xBF\xE5\x8F\x96\xE5\xBC\x95No,", 12), 0,
                 "UTF-8 with BOM, 取引No first");
    free(bom);
    json_decref(f);
    kh_rm_rf(dir);
}

Test(export, golden_csv)
{
    golden(ARGS("--to", "csv", "--period", "2026-04", "--policy", POLICY),
           ARGS("csv-2026-04-1.csv"));
    golden_tagged(ARGS("--to", "csv", "--period", "2026-04", "--policy", POLICY, "--summary"),
                  ARGS("csv-2026-04-1.csv"), "summary");
}

/* ---- every month, every system: balance and the waterfall ---- */

Test(export, every_file_balances_and_ties_to_the_waterfall, .timeout = 300)
{
    char dir[64];
    kh_make_dir(dir, sizeof dir);
    kh_events_t ev = {0};
    kh_load_sample(&ev, 1);
    json_t *wf = kh_replay_report(&ev, dir, "2026-06", "waterfall", POLICY);
    kh_ev_free(&ev);
    const char *const *codes = xc_revenue_codes(POLICY);
    static const char *const CURS[] = {"USD", "JPY"};
    size_t checked = 0;
    for (int m = 1; m <= 6; m++) {
        char period[8];
        snprintf(period, sizeof period, "2026-%02d", m);
        for (size_t s = 0; s < sizeof SYSTEMS / sizeof *SYSTEMS; s++)
            for (int summary = 0; summary < 2; summary++)
                for (int c = 0; c < 2; c++) {
                    int jpy_only = strcmp(SYSTEMS[s], "freee") == 0 ||
                                   strcmp(SYSTEMS[s], "moneyforward") == 0;
                    if (jpy_only && c == 0)
                        continue;
                    const char *a[] = {"--to",
                                       SYSTEMS[s],
                                       "--period",
                                       period,
                                       "--policy",
                                       POLICY,
                                       "--currency",
                                       CURS[c],
                                       "--input",
                                       BOOK,
                                       "--out",
                                       dir,
                                       summary ? "--summary" : NULL,
                                       NULL};
                    json_t *files = xc_export(a, dir);
                    json_t *rev = json_object();
                    for (size_t i = 0; i < json_array_size(files); i++) {
                        size_t rows;
                        const char *path = json_string_value(json_array_get(files, i));
                        xc_check_file(SYSTEMS[s], path, CURS[c], codes, rev, &rows);
                        unlink(path);
                        checked++;
                    }
                    rs_money_t want = 0;
                    for (size_t r = 0; r < json_array_size(wf); r++) {
                        json_t *row = json_array_get(wf, r);
                        if (strcmp(kh_row_str(row, "period"), period) == 0 &&
                            strcmp(kh_row_str(row, "currency"), CURS[c]) == 0)
                            want = xc_minor(kh_row_str(row, "recognized"),
                                            rs_currency_exponent(CURS[c]));
                    }
                    json_t *got = json_object_get(rev, CURS[c]);
                    cr_assert_eq(got ? json_integer_value(got) : 0, want,
                                 "%s %s %s%s: revenue %lld, waterfall %lld", SYSTEMS[s], period,
                                 CURS[c], summary ? " summary" : "",
                                 got ? (long long)json_integer_value(got) : 0LL,
                                 (long long)want);
                    json_decref(rev);
                    json_decref(files);
                }
    }
    cr_log_info("%zu files checked", checked);
    cr_assert_geq(checked, 6 * (4 * 2 * 2 + 2 * 2));
    json_decref(wf);
    kh_rm_rf(dir);
}

/* ---- limits, through rs_connect ---- */

/* n two-line USD entries in 2026-04: Dr accounts_receivable, Cr revenue. */
static rs_entry_t *entries(size_t n, const char *currency, rs_money_t amount)
{
    rs_entry_t *e = calloc(n, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        snprintf(e[i].contract_id, sizeof e[i].contract_id, "C-%05zu", i % 97);
        e[i].seq = i / 97 + 1;
        snprintf(e[i].entry_id, sizeof e[i].entry_id, "%s#%llu", e[i].contract_id,
                 (unsigned long long)e[i].seq);
        e[i].period = 2026 * 12 + 3;
        e[i].service_period = e[i].period;
        e[i].posted_on = rs_period_first_day(e[i].period) + (rs_date_t)(i % 30);
        e[i].kind = RS_ENTRY_INVOICE;
        snprintf(e[i].rule, sizeof e[i].rule, "invoice");
        snprintf(e[i].customer_id, sizeof e[i].customer_id, "CUS-%zu", i % 13);
        snprintf(e[i].currency, sizeof e[i].currency, "%s", currency);
        e[i].exponent = rs_currency_exponent(currency);
        e[i].n_postings = 2;
        e[i].postings[0] = (rs_posting_t){.account = RS_ACCT_ACCOUNTS_RECEIVABLE,
                                          .debit = amount + (rs_money_t)i};
        e[i].postings[1] =
            (rs_posting_t){.account = RS_ACCT_REVENUE, .credit = amount + (rs_money_t)i};
    }
    return e;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *x; (x = readdir(d)) != NULL;)
        n += x->d_name[0] != '.';
    closedir(d);
    return n;
}

static void split_case(rs_connect_format_t f, size_t n, size_t limit, size_t want_files)
{
    char dir[64], err[512];
    kh_make_dir(dir, sizeof dir);
    rs_entry_t *e = entries(n, "USD", 10000);
    rs_connect_opts_t o = {0};
    rs_connect_result_t res;
    o.format = f;
    o.period = 2026 * 12 + 3;
    o.out_dir = dir;
    cr_assert_eq(rs_connect_export(&o, e, n, &res, err, sizeof err), 0, "%s", err);
    cr_assert_eq(res.n_files, want_files);
    cr_assert_eq(res.journals, n);
    cr_assert_eq(res.rows, 2 * n);
    static const char *const codes[] = {"revenue", NULL};
    json_t *rev = json_object();
    size_t journals = 0, rows_total = 0;
    for (size_t i = 0; i < res.n_files; i++) {
        size_t rows;
        journals +=
            xc_check_file(rs_connect_format_name(f), res.files[i], "USD", codes, rev, &rows);
        cr_assert_leq(rows, limit, "%s: %zu rows", res.files[i], rows);
        rows_total += rows;
    }
    /* no journal split across files: each file's journals add up to n */
    cr_assert_eq(journals, n);
    cr_assert_eq(rows_total, 2 * n);
    rs_money_t want = 0;
    for (size_t i = 0; i < n; i++)
        want += e[i].postings[1].credit;
    cr_assert_eq(json_integer_value(json_object_get(rev, "USD")), want);
    json_decref(rev);
    rs_connect_result_free(&res);
    free(e);
    kh_rm_rf(dir);
}

Test(export, xero_300_lines_a_file)
{
    /* 151 journals of 2 lines: 150 fit in 300 lines, the 151st opens file 2 */
    split_case(RS_CONNECT_XERO, 151, 300, 2);
    split_case(RS_CONNECT_XERO, 150, 300, 1);
}

Test(export, netsuite_25000_rows_a_file, .timeout = 120)
{
    split_case(RS_CONNECT_NETSUITE, 12501, 25000, 2);
}

Test(export, journal_numbers_are_stable)
{
    char dir[64], err[512];
    kh_make_dir(dir, sizeof dir);
    rs_entry_t *e = entries(2, "USD", 100);
    snprintf(e[1].contract_id, sizeof e[1].contract_id, "CONTRACT-WITH-A-LONG-ID");
    snprintf(e[1].entry_id, sizeof e[1].entry_id, "CONTRACT-WITH-A-LONG-ID#1");
    rs_connect_opts_t o = {0};
    rs_connect_result_t res;
    o.format = RS_CONNECT_QUICKBOOKS;
    o.period = 2026 * 12 + 3;
    o.out_dir = dir;
    char *first = NULL;
    for (int run = 0; run < 2; run++) {
        cr_assert_eq(rs_connect_export(&o, e, 2, &res, err, sizeof err), 0, "%s", err);
        char *text = kh_slurp(res.files[0]);
        cr_assert_not_null(strstr(text, "\r\nC-00000#1,"), "%s", text);
        /* 25 characters is over QuickBooks' 21: RS + 16 hex digits */
        const char *h = strstr(text, "\r\nRS");
        cr_assert_not_null(h, "%s", text);
        cr_assert_eq(strspn(h + 4, "0123456789abcdef"), 16);
        /* and the same number in every release: FNV-1a 64 of the entry id
         * from the short basis (rs_hash.h) */
        cr_assert_eq(strncmp(h + 2, "RSacd331f8116f1177,", 19), 0, "%.40s", h + 2);
        if (run == 0)
            first = text;
        else
            cr_assert_str_eq(text, first, "the same entries give the same file");
        if (run == 1)
            free(text);
        rs_connect_result_free(&res);
    }
    free(first);
    free(e);
    kh_rm_rf(dir);
}

static void refused(rs_connect_opts_t *o, rs_entry_t *e, size_t n, const char *needle)
{
    char dir[64], err[512];
    rs_connect_result_t res;
    kh_make_dir(dir, sizeof dir);
    o->period = 2026 * 12 + 3;
    o->out_dir = dir;
    cr_assert_eq(rs_connect_export(o, e, n, &res, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, needle), "%s", err);
    cr_assert_eq(count_files(dir), 0, "a failed export leaves no file");
    cr_assert_eq(res.n_files, 0);
    kh_rm_rf(dir);
}

Test(export, limits_are_errors_naming_the_entry)
{
    rs_connect_opts_t o = {0};
    /* NetSuite: 2 decimals at most, 10 integer digits */
    rs_entry_t *kwd = entries(3, "KWD", 1000);
    o.format = RS_CONNECT_NETSUITE;
    refused(&o, kwd, 3, "NetSuite takes at most 2 decimals");
    free(kwd);
    rs_entry_t *big = entries(1, "USD", 1000000000000LL); /* 10,000,000,000.00 */
    refused(&o, big, 1, "over NetSuite's 10 digits");
    free(big);
    /* freee and MoneyForward: JPY only */
    rs_entry_t *usd = entries(2, "USD", 100);
    o.format = RS_CONNECT_FREEE;
    refused(&o, usd, 2, "entry C-00000#1: currency USD: freee takes JPY only");
    o.format = RS_CONNECT_MONEYFORWARD;
    refused(&o, usd, 2, "moneyforward takes JPY only");
    free(usd);
    /* Shift_JIS cannot hold every character: named, nothing written */
    rs_entry_t *jpy = entries(2, "JPY", 100);
    snprintf(jpy[1].postings[0].code, sizeof jpy[1].postings[0].code, "売掛金\xF0\x9F\x99\x82");
    o.format = RS_CONNECT_MONEYFORWARD;
    refused(&o, jpy, 2, "cannot be written in CP932");
    o.format = RS_CONNECT_FREEE;
    o.encoding = RS_CONNECT_ENC_SHIFT_JIS;
    refused(&o, jpy, 2, "cannot be written in SHIFT_JIS");
    /* and in UTF-8 it can */
    char dir[64], err[512];
    rs_connect_result_t res;
    kh_make_dir(dir, sizeof dir);
    o.encoding = RS_CONNECT_ENC_UTF8;
    o.out_dir = dir;
    cr_assert_eq(rs_connect_export(&o, jpy, 2, &res, err, sizeof err), 0, "%s", err);
    rs_connect_result_free(&res);
    kh_rm_rf(dir);
    free(jpy);
    /* an entry that does not balance is never written */
    rs_entry_t *bad = entries(2, "USD", 100);
    bad[1].postings[1].credit -= 1;
    o.format = RS_CONNECT_CSV;
    o.encoding = RS_CONNECT_ENC_DEFAULT;
    refused(&o, bad, 2, "debits and credits differ");
    free(bad);
}

/* --config is the worker's config: its kafka.* settings (SASL, TLS) go to
 * the consumer through the worker's code (librdkafka sees the SASL
 * mechanism), and no secret's value is ever logged. */
Test(export, config_errors_name_the_key_not_the_secret)
{
    char dir[64], cfg[128], out[160], err[160];
    kh_make_dir(dir, sizeof dir);
    snprintf(cfg, sizeof cfg, "%s/worker.properties", dir);
    snprintf(out, sizeof out, "%s/export.out", dir);
    snprintf(err, sizeof err, "%s/export.err", dir);
    char text[512];
    snprintf(text, sizeof text,
             "kafka.bootstrap.servers=127.0.0.1:1\nstate.dir=%s/state\n"
             "kafka.security.protocol=SASL_PLAINTEXT\nkafka.sasl.mechanisms=BOGUS\n"
             "kafka.sasl.username=ledger\nkafka.sasl.password=hunter2-secret\n",
             dir);
    kh_write_file(cfg, text);
    char *argv[] = {"revstream", "export", "--to",  "csv", "--period", "2026-04",
                    "--config",  cfg,      "--out", dir,   NULL};
    int status = kh_wait_exit(kh_spawn(argv, out, err, NULL), KH_DEADLINE_S, err);
    char *log = kh_slurp(err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s", log);
    cr_assert_not_null(strstr(log, "SASL mechanism: BOGUS"), "%s", log);
    cr_assert_null(strstr(log, "hunter2"), "a secret in the log: %s", log);
    cr_assert_eq(count_files(dir), 3, "only the config, stdout and stderr: no export file");
    free(log);
    kh_rm_rf(dir);
}

/* freee and MoneyForward pair the i-th debit with the i-th credit on a row:
 * an invoice with tax (one debit, two credits) is two rows, the second with
 * an empty debit side, and still one balanced journal. */
Test(export, japanese_rows_pair_debits_and_credits)
{
    static const char *const want[] = {
        /* freee: 日付, 伝票番号, ..., 借方勘定科目 (4th) ... 貸方金額 (29th) */
        "2026/04/01,C-00000#1,,売掛金,,,,,,,,,,,1100,対象外,,仮受消費税,,,,,,,,,,,100,対象外,,"
        "C-00000#1 invoice invoice C-00000\r\n"
        "2026/04/01,C-00000#1,,,,,,,,,,,,,,,,前受金,,,,,,,,,,,1000,対象外,,"
        "C-00000#1 invoice invoice C-00000\r\n",
        "1,2026/04/01,売掛金,,,,対象外,,1100,,仮受消費税,,,,対象外,,100,,"
        "C-00000#1 invoice invoice C-00000,C-00000#1,,,,,,,\r\n"
        "1,2026/04/01,,,,,,,,,前受金,,,,対象外,,1000,,"
        "C-00000#1 invoice invoice C-00000,C-00000#1,,,,,,,\r\n"};
    rs_entry_t *e = entries(1, "JPY", 1100);
    e[0].n_postings = 3;
    e[0].postings[1] = (rs_posting_t){.account = RS_ACCT_TAX_PAYABLE, .credit = 100};
    e[0].postings[2] = (rs_posting_t){.account = RS_ACCT_DEFERRED_REVENUE, .credit = 1000};
    snprintf(e[0].postings[0].code, RS_ACCOUNT_CODE_MAX, "売掛金");
    snprintf(e[0].postings[1].code, RS_ACCOUNT_CODE_MAX, "仮受消費税");
    snprintf(e[0].postings[2].code, RS_ACCOUNT_CODE_MAX, "前受金");
    static const rs_connect_format_t fmts[] = {RS_CONNECT_FREEE, RS_CONNECT_MONEYFORWARD};
    static const char *const codes[] = {"売上高", NULL};
    for (int k = 0; k < 2; k++) {
        char dir[64], err[512];
        rs_connect_opts_t o = {0};
        rs_connect_result_t res;
        kh_make_dir(dir, sizeof dir);
        o.format = fmts[k];
        o.period = 2026 * 12 + 3;
        o.out_dir = dir;
        o.encoding = RS_CONNECT_ENC_UTF8;
        cr_assert_eq(rs_connect_export(&o, e, 1, &res, err, sizeof err), 0, "%s", err);
        cr_assert_eq(res.rows, 2);
        char *text = kh_slurp(res.files[0]);
        const char *body = strstr(text, "\r\n") + 2;
        cr_assert_str_eq(body, want[k]);
        json_t *rev = json_object();
        size_t rows;
        cr_assert_eq(xc_check_file(rs_connect_format_name(fmts[k]), res.files[0], "JPY", codes,
                                   rev, &rows),
                     1);
        cr_assert_eq(rows, 2);
        json_decref(rev);
        free(text);
        rs_connect_result_free(&res);
        kh_rm_rf(dir);
    }
    free(e);
}
