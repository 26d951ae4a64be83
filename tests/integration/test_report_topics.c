/*
 * test_report_topics — `revstream report --config` against a two-worker
 * deployment on the embedded broker, with no worker's local state.
 *
 * What is checked:
 *   - Two workers in one group share the sample book's partitions (each
 *     is assigned two of the four) until the group has committed the end
 *     of every input topic, and are stopped; then both state directories are deleted and
 *     `revstream report --config worker.properties` (the workers' own config
 *     file) reads the journal topic and restores the contract terms from the
 *     changelog topic: its balances equal `revstream replay`'s row for row.
 *   - The ledger views from the topics tie to each other and to the
 *     journal: balances by customer sum to the line balances; the RPO total
 *     per currency equals the waterfall's scheduled total; every trial
 *     balance period balances; the AR aging's open amounts sum to the
 *     balances-by-invoice open total.
 *   - The latest line snapshots on the compacted balances topic agree with
 *     the journal's balances (the report's own cross-check: agree=10).
 *   - A changelog topic the report cannot read completely is an error, not
 *     a partial report (a missing changelog topic exits 1).
 *   - `report --html OUT.html` renders in headless Chromium (Debian's
 *     `chromium`; skipped with a message when it is not installed) with no
 *     script error (the page's own error counter is 0 and its script ran to
 *     the end; no "Uncaught" console message), and its chart has one bar
 *     per waterfall row whose data attributes are the report's figures and
 *     whose height is round(|recognized| * 200 / max |recognized| of its
 *     currency).
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_test_util.h"

/* `revstream report --config cfg --report R --format json --through 2026-06`
 * rows; caller decrefs. */
static json_t *report_json(const kh_worker_t *w, const char *report, int *status)
{
    char out[160], err[160];
    snprintf(out, sizeof out, "%s/report.out", w->dir);
    snprintf(err, sizeof err, "%s/report.err", w->dir);
    char *argv[] = {"revstream", "report",       "--config", (char *)w->cfg,
                    "--report",  (char *)report, "--format", "json",
                    "--through", "2026-06",      NULL};
    *status = kh_wait_exit(kh_spawn(argv, out, err, NULL), KH_DEADLINE_S, err);
    char *text = kh_slurp(out);
    json_t *rows = json_loads(text, 0, NULL);
    free(text);
    return rows;
}

static json_t *report_ok(const kh_worker_t *w, const char *report)
{
    int status;
    char err[160];
    snprintf(err, sizeof err, "%s/report.err", w->dir);
    json_t *rows = report_json(w, report, &status);
    kh_assert_exit0(status, err);
    cr_assert(json_is_array(rows), "report %s: not a JSON array", report);
    return rows;
}

/* Σ key over rows of currency cur. */
static long long sum_of(json_t *rows, const char *cur, const char *key, const char *only_key,
                        int only_true)
{
    long long v = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (strcmp(kh_row_str(r, "currency"), cur))
            continue;
        if (only_key && json_is_true(json_object_get(r, only_key)) != only_true)
            continue;
        v += rs_minor(kh_row_str(r, key));
    }
    return v;
}

Test(report_topics, two_workers_no_local_state_balances_equal_replay, .timeout = 240)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t events = {0};
    kh_worker_t a, b;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    /* both run until every input is consumed, then stop (SIGTERM commits
     * the batch in flight, changelog included) */
    kh_worker_init(&a, bs, "g-report", NULL);
    kh_worker_init(&b, bs, "g-report", NULL);
    /* records stamped with event time: the closes apply after what they
     * close, as in replay */
    kh_produce_cli(bs, &events, a.dir, a.log);
    pid_t pa = kh_worker_start(&a, NULL), pb = kh_worker_start(&b, NULL);
    kh_wait_log(a.log, "worker: assigned topic_partitions=8 ", pa);
    kh_wait_log(b.log, "worker: assigned topic_partitions=8 ", pb);
    rd_kafka_t *c = kh_new_consumer(bs, "g-report"); /* reads the group's commits */
    int st;
    for (int t = 0; t < 4; t++)
        cr_assert(kh_wait_consumed(c, kh_in_topics[t], pa, &st, a.log), "worker A exited");
    rd_kafka_destroy(c);
    kh_assert_exit0(kh_worker_stop(pa, a.log), a.log);
    kh_assert_exit0(kh_worker_stop(pb, b.log), b.log);
    /* no worker's local state: the report must rebuild from the topics */
    kh_rm_rf(a.state);
    kh_rm_rf(b.state);

    json_t *got = report_ok(&a, "balances");
    /* the compacted balances topic agrees with the journal, line by line */
    char rerr[160];
    snprintf(rerr, sizeof rerr, "%s/report.err", a.dir);
    char *rl = kh_slurp(rerr);
    cr_assert_not_null(strstr(rl, "lines=10 agree=10 differ=0"), "%s", rl);
    free(rl);
    json_t *want = kh_replay_balances(&events, a.dir, "2026-06");
    cr_assert_eq(json_array_size(got), json_array_size(want), "%zu rows, replay %zu",
                 json_array_size(got), json_array_size(want));
    static const char *const keys[] = {"contract_id", "line_id",  "billed",
                                       "recognized",  "deferred", "unbilled",
                                       "received",    "currency", "customer_id"};
    for (size_t i = 0; i < json_array_size(want); i++)
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            cr_assert_str_eq(kh_row_str(json_array_get(got, i), keys[k]),
                             kh_row_str(json_array_get(want, i), keys[k]), "row %zu %s", i,
                             keys[k]);

    /* the ledger views tie to each other */
    json_t *cust = report_ok(&a, "balances-by-customer");
    json_t *rpo = report_ok(&a, "rpo");
    json_t *wf = report_ok(&a, "waterfall");
    json_t *tb = report_ok(&a, "trial-balance");
    json_t *inv = report_ok(&a, "balances-by-invoice");
    json_t *aging = report_ok(&a, "ar-aging");
    static const char *const curs[2] = {"USD", "JPY"};
    for (int c = 0; c < 2; c++) {
        for (int k = 2; k <= 6; k++)
            cr_assert_eq(sum_of(cust, curs[c], keys[k], NULL, 0),
                         sum_of(got, curs[c], keys[k], NULL, 0), "%s %s", curs[c], keys[k]);
        cr_assert_eq(sum_of(rpo, curs[c], "total", NULL, 0),
                     sum_of(wf, curs[c], "recognized", "projected", 1), "%s", curs[c]);
        cr_assert_eq(sum_of(aging, curs[c], "open", NULL, 0),
                     sum_of(inv, curs[c], "open", NULL, 0));
    }
    cr_assert_eq(sum_of(rpo, "USD", "total", NULL, 0), 7733333);
    cr_assert_eq(sum_of(cust, "USD", "recognized", NULL, 0), 8627767);
    size_t i;
    json_t *r;
    long long dr = 0, crd = 0;
    json_array_foreach(tb, i, r)
    {
        dr += rs_minor(kh_row_str(r, "debit"));
        crd += rs_minor(kh_row_str(r, "credit"));
    }
    cr_assert_eq(dr, crd, "the trial balance's debits and credits");
    cr_assert(json_array_size(tb) > 10);
    json_decref(got);
    json_decref(want);
    json_decref(cust);
    json_decref(rpo);
    json_decref(wf);
    json_decref(tb);
    json_decref(inv);
    json_decref(aging);

    /* a changelog topic that does not exist: exit 1, no partial report */
    kh_worker_t nc;
    kh_worker_init(&nc, bs, "g-report", "topics.changelog=no.such.changelog\n");
    int status;
    json_t *none = report_json(&nc, "balances", &status);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    json_decref(none);

    kh_ev_free(&events);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(a.dir);
    kh_rm_rf(b.dir);
    kh_rm_rf(nc.dir);
}

/* The value of attribute `name` in the tag starting at `tag`, into buf. */
static const char *attr(const char *tag, const char *name, char *buf, size_t len)
{
    char key[64];
    const char *end = strchr(tag, '>');
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(tag, key);
    cr_assert(p != NULL && (end == NULL || p < end), "no %s in %.80s", name, tag);
    p += strlen(key);
    const char *q = strchr(p, '"');
    snprintf(buf, len, "%.*s", (int)(q - p), p);
    return buf;
}

Test(report_topics, html_page_renders_in_headless_chromium_with_right_bars, .timeout = 240)
{
    if (access("/usr/bin/chromium", X_OK) != 0)
        cr_skip_test("chromium is not installed: run scripts/setup-deps.sh (apt-get install "
                     "chromium)");
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t events = {0};
    kh_worker_t w;
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    kh_worker_init(&w, bs, "g-html", "exit.when.idle=true\n");
    char out[160], html[160], dom[160], cerr[160];
    snprintf(out, sizeof out, "%s/report.out", w.dir);
    snprintf(html, sizeof html, "%s/report.html", w.dir);
    snprintf(dom, sizeof dom, "%s/report.dom", w.dir);
    snprintf(cerr, sizeof cerr, "%s/chromium.err", w.dir);
    kh_produce_cli(bs, &events, w.dir, w.log);
    kh_worker_run_idle(&w, NULL);

    char *html_argv[] = {"revstream", "report", "--config", w.cfg, "--through",
                         "2026-06",   "--html", html,       NULL};
    kh_assert_exit0(kh_wait_exit(kh_spawn(html_argv, out, w.log, NULL), KH_DEADLINE_S, w.log),
                    w.log);
    json_t *wf = report_ok(&w, "waterfall");

    char url[200];
    snprintf(url, sizeof url, "file://%s", html);
    char *chrome_argv[] = {"/usr/bin/chromium",
                           "--headless",
                           "--disable-gpu",
                           "--no-sandbox",
                           "--enable-logging=stderr",
                           "--v=0",
                           "--dump-dom",
                           url,
                           NULL};
    pid_t pc = fork();
    cr_assert(pc >= 0);
    if (pc == 0) {
        freopen(dom, "w", stdout);
        freopen(cerr, "w", stderr);
        execv(chrome_argv[0], chrome_argv);
        _exit(127);
    }
    int status = kh_wait_exit(pc, 120, cerr);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "chromium failed, see %s", cerr);
    char *d = kh_slurp(dom), *ce = kh_slurp(cerr);
    cr_assert_not_null(strstr(d, "data-rendered=\"ok\""), "the page's script did not finish");
    cr_assert_not_null(strstr(d, "data-errors=\"0\""), "script errors on the page");
    cr_assert_null(strstr(ce, "Uncaught"), "console error:\n%s", ce);

    /* one bar per waterfall row, with the row's figures and height */
    size_t nbars = 0, i;
    json_t *row;
    for (const char *p = strstr(d, "<rect class=\"bar"); p;
         p = strstr(p + 1, "<rect class=\"bar"))
        nbars++;
    cr_assert_eq(nbars, json_array_size(wf), "%zu bars, %zu waterfall rows", nbars,
                 json_array_size(wf));
    json_array_foreach(wf, i, row)
    {
        const char *cur = kh_row_str(row, "currency"), *per = kh_row_str(row, "period");
        long long max = 0;
        size_t k;
        json_t *o;
        json_array_foreach(wf, k, o)
        {
            long long v = rs_minor(kh_row_str(o, "recognized"));
            if (strcmp(kh_row_str(o, "currency"), cur) == 0 && llabs(v) > max)
                max = llabs(v);
        }
        long long rec = llabs(rs_minor(kh_row_str(row, "recognized")));
        long want_h = max > 0 ? (long)((rec * 200 + max / 2) / max) : 0;
        int found = 0;
        char b[4][64];
        for (const char *p = strstr(d, "<rect class=\"bar"); p;
             p = strstr(p + 1, "<rect class=\"bar")) {
            if (strcmp(attr(p, "data-period", b[0], 64), per) ||
                strcmp(attr(p, "data-currency", b[1], 64), cur))
                continue;
            cr_assert_str_eq(attr(p, "data-recognized", b[2], 64),
                             kh_row_str(row, "recognized"));
            cr_assert_str_eq(attr(p, "data-deferred", b[2], 64), kh_row_str(row, "deferred"));
            cr_assert_eq(atol(attr(p, "height", b[3], 64)), want_h, "%s %s", cur, per);
            found++;
        }
        cr_assert_eq(found, 1, "bar of %s %s", cur, per);
    }
    /* the drill-down and the exceptions are on the page */
    cr_assert_not_null(strstr(d, "C-1004#"), "the entries of C-1004");
    cr_assert_not_null(strstr(d, "deferred_after_end"));
    free(d);
    free(ce);
    json_decref(wf);
    kh_ev_free(&events);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}
