/*
 * test_restore — the changelog's start-up and restore preconditions, with
 * `revstream worker` as a child process against the embedded broker.
 *
 * What is checked:
 *   - A changelog trimmed at its start (the mock broker keeps about 5 MB per
 *     partition: large records produced directly to changelog partition 0
 *     push its low watermark past 0) is refused, never restored from the
 *     low watermark: with no local state (the restore needs offset 0) and
 *     with local state at an offset the changelog no longer holds. The
 *     worker exits non-zero with an error naming the changelog partition,
 *     its low watermark and what to do, and logs `restore_refused`.
 *   - A restore interrupted by a crash (its marker left set) is done again
 *     on the next start, and the marker is cleared.
 *   - A changelog with another partition count stops the worker at start,
 *     before it subscribes, with both counts and the fix named: one created
 *     beforehand, and one auto-created by the broker with its default count
 *     (the embedded broker has no CreateTopics, so the worker's creation
 *     with the inputs' count falls back to that; on a real cluster it is
 *     created with CreateTopics, which this broker cannot show).
 *
 * Every wait has a deadline; each test has its own broker and temp dirs.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rs_changelog.h"
#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_state.h"

#define RESTORE_CL "revenue.state-changelog"

/* Runs a worker to its exit; returns its exit code, *log its stderr and
 * stdout (caller frees). */
static int restore_run_worker(const kh_worker_t *w, char **log)
{
    char *argv[] = {"revstream", "worker", "--config", (char *)w->cfg, NULL};
    int status = kh_wait_exit(kh_spawn(argv, w->out, w->log, NULL), KH_DEADLINE_S, w->log);
    char *err = kh_slurp(w->log), *out = kh_slurp(w->out);
    size_t n = strlen(err);
    *log = malloc(n + strlen(out) + 1);
    cr_assert_not_null(*log);
    memcpy(*log, err, n);
    strcpy(*log + n, out);
    free(err);
    free(out);
    cr_assert(WIFEXITED(status), "status %d", status);
    return WEXITSTATUS(status);
}

/* Produces large records to changelog partition 0 until the broker has
 * trimmed its start; returns the low watermark (> 0). */
static int64_t restore_trim_changelog(const char *bs)
{
    enum { RECORD = 700 * 1000 };
    rd_kafka_t *p = kh_new_producer(bs);
    char *v = malloc(RECORD);
    int64_t lo = -1, hi = -1;

    cr_assert_not_null(v);
    memset(v, 'x', RECORD);
    for (int i = 0; i < 10; i++) { /* 7 MB: one record per request */
        kh_produce_one(p, RESTORE_CL, 0, "junk", v, RECORD, NULL);
        kh_flush_ok(p);
    }
    free(v);
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, RESTORE_CL, 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
    cr_assert_gt(lo, 0, "the broker did not trim the changelog (low %lld high %lld)",
                 (long long)lo, (long long)hi);
    return lo;
}

Test(restore, trimmed_changelog_without_local_state_is_refused, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], want[256];
    char *log = NULL;
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    int64_t lo = restore_trim_changelog(bs);

    kh_worker_init(&w, bs, "g-trim-missing", "exit.when.idle=true\n");
    cr_assert_neq(restore_run_worker(&w, &log), 0, "%s", log);
    snprintf(want, sizeof want,
             "changelog " RESTORE_CL "[0] starts at offset %lld but the local state is "
             "missing",
             (long long)lo);
    cr_assert_not_null(strstr(log, want), "want \"%s\" in:\n%s", want, log);
    cr_assert_not_null(strstr(log, "restore the state directory from a checkpoint"), "%s", log);
    cr_assert_not_null(strstr(log, "restore_refused partition=0"), "%s", log);
    cr_assert_null(strstr(log, "restored partition=0"), "%s", log);
    free(log);
    kh_rm_rf(w.dir);
    rs_mockbroker_destroy(mb);
}

Test(restore, trimmed_changelog_behind_local_state_is_refused, .timeout = 180)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], want[256];
    char *log = NULL;
    kh_worker_t a;
    kh_events_t ev = {0};

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&ev, 1);
    kh_produce_book(bs, &ev);

    /* A applies the book: its store is at the end of changelog partition 0 */
    kh_worker_init(&a, bs, "g-trim-behind", "exit.when.idle=true\n");
    cr_assert_eq(restore_run_worker(&a, &log), 0, "%s", log);
    free(log);
    int64_t local = -1, hi = -1;
    rd_kafka_t *p = kh_new_producer(bs);
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, RESTORE_CL, 0, &local, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
    local = hi;
    cr_assert_gt(local, 0);

    /* the changelog moves on (another writer) and loses its start */
    int64_t lo = restore_trim_changelog(bs);
    cr_assert_gt(lo, local);
    cr_assert_neq(restore_run_worker(&a, &log), 0, "%s", log); /* A's store again */
    snprintf(want, sizeof want,
             "changelog " RESTORE_CL "[0] starts at offset %lld but the local state is at "
             "offset %lld",
             (long long)lo, (long long)local);
    cr_assert_not_null(strstr(log, want), "want \"%s\" in:\n%s", want, log);
    cr_assert_not_null(strstr(log, "restore_refused partition=0 low="), "%s", log);
    free(log);
    kh_ev_free(&ev);
    kh_rm_rf(a.dir);
    rs_mockbroker_destroy(mb);
}

/* R2: a store whose restore of partition 0 was interrupted (the marker a
 * restore sets first and clears last, left as a crash would leave it)
 * restores partition 0 again, although its local position is current, and
 * clears the marker. */
Test(restore, interrupted_restore_is_done_again, .timeout = 180)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    char *log = NULL;
    kh_worker_t a;
    kh_events_t ev = {0};

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&ev, 1);
    kh_produce_book(bs, &ev);
    kh_worker_init(&a, bs, "g-interrupted", "exit.when.idle=true\n");
    cr_assert_eq(restore_run_worker(&a, &log), 0, "%s", log);
    free(log);

    rs_state_t *st = NULL;
    rs_state_batch_t *b = NULL;
    rs_state_opts_t so = {a.state, 0, 0, RS_STATE_SYNC_ON, 0, 0};
    const unsigned char zero[8] = {0};
    cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_changelog_restore_interrupted(st, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_put_meta(b, "restoring/0", zero, sizeof zero), 0);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);

    cr_assert_eq(restore_run_worker(&a, &log), 0, "%s", log);
    cr_assert_not_null(strstr(log, "restore partition=0 interrupted=true"), "%s", log);
    cr_assert_not_null(strstr(log, "action=restore_again"), "%s", log);
    cr_assert_not_null(strstr(log, "restored partition=0 "), "%s", log);
    free(log);
    st = NULL;
    cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_changelog_restore_interrupted(st, 0, err, sizeof err), 0, "%s", err);
    rs_state_destroy(st);
    kh_ev_free(&ev);
    kh_rm_rf(a.dir);
    rs_mockbroker_destroy(mb);
}

/* The embedded broker implements no CreateTopics (librdkafka 2.0.2's mock
 * names no controller) and auto-creates a topic named in a metadata request
 * with its default count, 4: as a real cluster with auto.create.topics.enable
 * and num.partitions would. With inputs of 3 partitions, the worker stops at
 * start naming both counts, before it subscribes. */
Test(restore, auto_created_changelog_with_another_count_stops_the_worker, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, 3};
    char err[512];
    char *log = NULL;
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_worker_init(&w, bs, "g-create", "exit.when.idle=true\ntopics.changelog=new-changelog\n");
    cr_assert_eq(restore_run_worker(&w, &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "changelog_create topic=new-changelog error=\"the cluster "
                                   "names no controller\" action=auto_create"),
                       "%s", log);
    cr_assert_not_null(strstr(log, "changelog topic new-changelog has 4 partitions, the input "
                                   "topics 3"),
                       "%s", log);
    cr_assert_null(strstr(log, "assigned topic_partitions"), "%s", log);
    free(log);
    kh_rm_rf(w.dir);
    rs_mockbroker_destroy(mb);
}

Test(restore, changelog_partition_count_mismatch_stops_the_worker, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], want[256];
    char *log = NULL;
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    cr_assert_eq(rd_kafka_mock_topic_create(rs_mockbroker_cluster(mb), "other-changelog",
                                            KH_NPARTS + 2, 1),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    kh_worker_init(&w, bs, "g-mismatch",
                   "exit.when.idle=true\ntopics.changelog=other-changelog\n");
    cr_assert_eq(restore_run_worker(&w, &log), 1, "%s", log);
    snprintf(want, sizeof want,
             "changelog topic other-changelog has %d partitions, the input topics %d",
             KH_NPARTS + 2, KH_NPARTS);
    cr_assert_not_null(strstr(log, want), "want \"%s\" in:\n%s", want, log);
    cr_assert_not_null(strstr(log, "delete it and start the worker again"), "%s", log);
    cr_assert_null(strstr(log, "assigned topic_partitions"), "%s", log);
    free(log);
    kh_rm_rf(w.dir);
    rs_mockbroker_destroy(mb);
}

/* Found by test_chaos: a store that holds only the plan of its first batch
 * (it died after the batch's outputs and changelog records were delivered,
 * before its first local commit) was taken as "state written before the
 * changelog" and the changelog was not read. Meanwhile another member had
 * restored the partitions from the changelog and gone on; the restarted
 * store replayed its plan from nothing and then applied every later record
 * again (in a live stream, in another order: one entry_id with two
 * contents). Now it restores from the changelog like a missing store: it
 * logs "restore partition=N from=0", applies no record the other member
 * applied, and the deduplicated journal still gives replay's balances. */
Test(restore, store_with_only_a_plan_restores_from_the_changelog, .timeout = 180)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    char *log = NULL;
    kh_worker_t x, y;
    kh_events_t ev = {0};

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_gen_book(&ev, 40);
    rd_kafka_t *p = kh_new_producer(bs);
    kh_produce_events(p, &ev, 0, 0, NULL); /* phase 1: the contracts */

    /* X: one batch of everything, killed before its first local commit */
    kh_worker_init(&x, bs, "g-plan-only", "input.format=json\noutput.format=json\n");
    pid_t px = kh_worker_start(&x, "RS_TEST_KILL_POINT=changelog:1");
    int status = kh_wait_exit(px, KH_DEADLINE_S, x.log);
    log = kh_slurp(x.log);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d:\n%s", status,
              log);
    cr_assert_not_null(strstr(log, "worker: fault point=changelog batch=1"), "%s", log);
    size_t mark = strlen(log);
    free(log);

    /* Y (an empty store) restores X's batch from the changelog and applies
     * the rest of the book */
    kh_produce_events(p, &ev, 1, 0, NULL);
    kh_produce_events(p, &ev, 2, 0, NULL);
    kh_produce_events(p, &ev, 3, 0, NULL);
    kh_produce_events(p, &ev, 0, 1, NULL);
    rd_kafka_destroy(p);
    kh_worker_init(&y, bs, "g-plan-only",
                   "input.format=json\noutput.format=json\nexit.when.idle=true\n");
    kh_worker_run_idle(&y, NULL);

    /* X again on its plan-only store: a restore, and nothing to apply */
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "kafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=g-plan-only\n"
             "state.sync=false\nlog.format=text\n" KH_GROUP_TIMEOUTS
             "input.format=json\noutput.format=json\nexit.when.idle=true\n",
             bs, x.state);
    kh_write_file(x.cfg, cfg);
    kh_worker_run_idle(&x, NULL);
    log = kh_slurp(x.log);
    const char *again = log + mark;
    cr_assert_null(strstr(again, "without a changelog position"), "%s", again);
    cr_assert_not_null(strstr(again, "worker: restore partition="), "%s", again);
    cr_assert_not_null(strstr(again, " from=0 "), "%s", again);
    cr_assert_eq(kh_log_sum(again, "worker: batch ", "applied"), 0,
                 "X applied records the other member had applied:\n%s", again);
    free(log);
    size_t dups = kh_check_topic_balances(bs, "revenue.journal", NULL, &ev);
    cr_log_info("plan-only store: %zu duplicates", dups);
    kh_ev_free(&ev);
    kh_rm_rf(x.dir);
    kh_rm_rf(y.dir);
    rs_mockbroker_destroy(mb);
}
