/*
 * test_service_links — a worker started as Kubernetes starts it in a
 * namespace that has Services named revstream and revstream-metrics (and
 * the pod does not set enableServiceLinks: false): its environment holds
 * REVSTREAM_SERVICE_HOST, REVSTREAM_PORT_9090_TCP..., and
 * REVSTREAM_METRICS_PORT=tcp://... (which is also the spelling of the real
 * key metrics.port).
 *
 * What is checked, against the embedded broker (rs_mockbroker, in this
 * process), with `revstream worker` as a child process:
 *   - The worker starts, processes the sample book and exits 0 when idle;
 *     the deduplicated journal and the balance snapshots give
 *     `revstream replay`'s balances.
 *   - Its log names every skipped variable on one config_note line and
 *     never prints their values; metrics.port is the file's value, not
 *     the link's; a real REVSTREAM_* setting next to the links applies.
 *   - A misspelt key next to the same links still stops it (exit 1, named).
 *
 * The variables are set in this test's own process (Criterion runs each
 * test in a process of its own), and the child inherits them. No timing is
 * asserted; every wait has a deadline.
 *
 * Ownership: each test frees what it creates; temp dirs are removed at the
 * end of a passing test.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"

static const char *const links[][2] = {
    {"REVSTREAM_SERVICE_HOST", "10.96.12.7"},
    {"REVSTREAM_SERVICE_PORT", "9090"},
    {"REVSTREAM_SERVICE_PORT_METRICS", "9090"},
    {"REVSTREAM_PORT", "tcp://10.96.12.7:9090"},
    {"REVSTREAM_PORT_9090_TCP", "tcp://10.96.12.7:9090"},
    {"REVSTREAM_PORT_9090_TCP_PROTO", "tcp"},
    {"REVSTREAM_PORT_9090_TCP_PORT", "9090"},
    {"REVSTREAM_PORT_9090_TCP_ADDR", "10.96.12.7"},
    {"REVSTREAM_METRICS_SERVICE_HOST", "10.96.12.8"},
    {"REVSTREAM_METRICS_SERVICE_PORT", "9090"},
    {"REVSTREAM_METRICS_PORT", "tcp://10.96.12.8:9090"},
    {"REVSTREAM_METRICS_PORT_9090_TCP", "tcp://10.96.12.8:9090"},
};
#define N_LINKS (sizeof links / sizeof links[0])

static void set_links(void)
{
    for (size_t i = 0; i < N_LINKS; i++)
        cr_assert_eq(setenv(links[i][0], links[i][1], 1), 0);
}

Test(service_links, worker_starts_and_processes, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[256], want[64];
    kh_events_t events = {0};
    kh_worker_t w;
    int port = kh_free_port();

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    kh_produce_book(bs, &events);

    snprintf(extra, sizeof extra,
             "exit.when.idle=true\ninput.format=json\noutput.format=json\nmetrics.port=%d\n",
             port);
    kh_worker_init(&w, bs, "g-links", extra);
    set_links();
    kh_worker_run_idle(&w, "REVSTREAM_BATCH_MAX_RECORDS=50");

    char *log = kh_slurp(w.log);
    const char *note = strstr(log, "ignored_env");
    cr_assert_not_null(note, "%s", log);
    const char *eol = strchr(note, '\n');
    cr_assert_not_null(eol);
    for (size_t i = 0; i < N_LINKS; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", links[i][0], i + 1 < N_LINKS ? "," : "");
        const char *at = strstr(note, name);
        cr_assert(at != NULL && at < eol, "%s not named on the note: %.*s", links[i][0],
                  (int)(eol - note), note);
    }
    cr_assert_null(strstr(log, "10.96.12."), "a link's value was logged:\n%s", log);
    free(log);

    /* the effective config: metrics.port from the file, not the link */
    char *argv[] = {"revstream", "worker", "--config", w.cfg, "--check", NULL};
    int status = kh_wait_exit(kh_spawn(argv, w.out, w.log, "REVSTREAM_BATCH_MAX_RECORDS=50"),
                              KH_DEADLINE_S, w.log);
    kh_assert_exit0(status, w.log);
    char *out = kh_slurp(w.out);
    snprintf(want, sizeof want, " metrics.port=%d ", port);
    cr_assert_not_null(strstr(out, want), "%s", out);
    cr_assert_not_null(strstr(out, " batch.max.records=50 "), "%s", out);
    cr_assert_null(strstr(out, "10.96.12."), "%s", out);
    free(out);

    kh_check_topic_balances(bs, "revenue.journal", "revenue.deferred-balances", &events);

    kh_ev_free(&events);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

Test(service_links, misspelt_key_next_to_links_still_fails, .timeout = 60)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    kh_worker_init(&w, rs_mockbroker_bootstraps(mb), "g-links-typo", "exit.when.idle=true\n");
    set_links();
    int status =
        kh_wait_exit(kh_worker_start(&w, "REVSTREAM_METRIC_PORT=9090"), KH_DEADLINE_S, w.log);
    char *log = kh_slurp(w.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d\n%s", status, log);
    /* the config is not read yet: the log format is auto (JSON off a terminal) */
    cr_assert(strstr(log, "\"error\":\"config\"") != NULL ||
                  strstr(log, "error=config") != NULL,
              "%s", log);
    cr_assert_not_null(strstr(log, "REVSTREAM_METRIC_PORT"), "%s", log);
    free(log);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}
