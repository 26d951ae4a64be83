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
 *   - A changelog topic the report cannot read completely is an error, not
 *     a partial report (a missing changelog topic exits 1).
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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
    /* `revstream produce` stamps records with event time, so the closes of
     * the sample apply after what they close, as in replay */
    char book[160], out[160];
    snprintf(book, sizeof book, "%s/book.jsonl", a.dir);
    snprintf(out, sizeof out, "%s/produce.out", a.dir);
    kh_ev_write(&events, book);
    char *prod_argv[] = {"revstream", "produce", "--bootstrap", (char *)bs, book, NULL};
    kh_assert_exit0(kh_wait_exit(kh_spawn(prod_argv, out, a.log, NULL), KH_DEADLINE_S, a.log),
                    a.log);
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
