/*
 * test_bounded — records the worker writes stay bounded, with `revstream
 * worker` as a child process against the embedded broker.
 *
 * What is checked:
 *   - Idempotency without growth: a contract with 6,000 usage events keeps
 *     a small contract record (ids live in the store's seen keys); the
 *     same events sent again at new offsets (so the per-contract offset
 *     guard does not catch them) are ignored as duplicates after a restart,
 *     and after a restore from the changelog into an empty state
 *     directory; a different content under a known id is dead-lettered.
 *   - Parking: with a small kafka.message.max.bytes, a contract whose
 *     record cannot fit parks its input partition (error log naming the
 *     partition and the contract); the other partitions' contracts are
 *     committed, the worker exits 0 when idle, and a restart parks again
 *     instead of failing (no crash loop); nothing of the parked partition
 *     is committed.
 *
 * Every wait has a deadline; each test has its own broker and temp dirs.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_state.h"

/* Runs a worker to its exit; returns its exit code and *log (caller frees). */
static int bounded_run(const kh_worker_t *w, char **log)
{
    char *argv[] = {"revstream", "worker", "--config", (char *)w->cfg, NULL};
    int status = kh_wait_exit(kh_spawn(argv, w->out, w->log, NULL), KH_DEADLINE_S * 2, w->log);
    *log = kh_slurp(w->log);
    cr_assert(WIFEXITED(status), "status %d", status);
    return WEXITSTATUS(status);
}

static void usage_events(kh_events_t *ev, int from, int to, int qty)
{
    for (int i = from; i < to; i++)
        kh_ev_addf(ev,
                   "{\"event_id\":\"u-%d\",\"type\":\"usage.recorded\",\"contract_id\":\"M1\","
                   "\"occurred_at\":\"2026-01-%02dT12:00:00Z\",\"line_id\":\"L1\","
                   "\"quantity\":\"%d\"}",
                   i, 1 + i % 28, qty);
}

/* The size of contract id's record in the store at dir (any partition);
 * 0 if it has none. */
static size_t stored_record(const char *dir, const char *id, int32_t *part)
{
    rs_state_t *st = NULL;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0};
    char err[512];
    size_t size = 0;
    cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
    for (int32_t p = 0; p < KH_NPARTS; p++) {
        void *blob = NULL;
        size_t len = 0;
        int rc = rs_state_get_contract(st, p, id, &blob, &len, err, sizeof err);
        cr_assert_geq(rc, 0, "%s", err);
        if (rc == 0) {
            size = len;
            if (part)
                *part = p;
        }
        rs_state_free(blob);
    }
    rs_state_destroy(st);
    return size;
}

Test(bounded, duplicates_ignored_after_restart_and_restore, .timeout = 300)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    char *log = NULL;
    kh_worker_t a, b;
    kh_events_t ev = {0}, more = {0}, dups = {0}, again = {0};

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_ev_add(&ev, "{\"event_id\":\"book\",\"type\":\"contract.booked\",\"contract_id\":\"M1\","
                   "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
                   "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":"
                   "\"L1\",\"product\":\"API\",\"recognition\":\"usage\",\"start\":"
                   "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":"
                   "\"0.10\"}]}");
    usage_events(&ev, 0, 1000, 1);
    kh_produce_book(bs, &ev);
    kh_worker_init(&a, bs, "g-bounded",
                   "exit.when.idle=true\ninput.format=json\noutput.format=json\n");
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    free(log);
    int32_t part = -1;
    size_t small = stored_record(a.state, "M1", &part);
    cr_assert_gt(small, 0);

    usage_events(&more, 1000, 6000, 1);
    kh_produce_book(bs, &more);
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    free(log);
    size_t big = stored_record(a.state, "M1", NULL);
    cr_assert_eq(big, small, "the record grew from %zu to %zu bytes with 5,000 more events",
                 small, big);

    /* a restart: the same events at new offsets are duplicates */
    usage_events(&dups, 0, 1000, 1);
    kh_produce_book(bs, &dups);
    size_t mark = strlen(log = kh_slurp(a.log));
    free(log);
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "duplicates"), 1000, "%s",
                 log + mark);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "applied"), 0, "%s", log + mark);
    free(log);

    /* a restore from the changelog into an empty state directory */
    usage_events(&again, 3000, 4000, 1);
    usage_events(&again, 5, 6, 9); /* a known id with another content */
    kh_produce_book(bs, &again);
    kh_worker_init(&b, bs, "g-bounded",
                   "exit.when.idle=true\ninput.format=json\noutput.format=json\n");
    cr_assert_eq(bounded_run(&b, &log), 0, "%s", log);
    cr_assert_not_null(strstr(log, "restored partition="), "%s", log);
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "duplicates"), 1000, "%s", log);
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "applied"), 0, "%s", log);
    cr_assert_not_null(strstr(log, "event u-5: event_id: conflicting duplicate"), "%s", log);
    free(log);
    cr_assert_eq(stored_record(b.state, "M1", NULL), small);

    kh_ev_free(&ev);
    kh_ev_free(&more);
    kh_ev_free(&dups);
    kh_ev_free(&again);
    kh_rm_rf(a.dir);
    kh_rm_rf(b.dir);
    rs_mockbroker_destroy(mb);
}

/* The partition of the first record keyed `key` on the contracts topic. */
static int32_t partition_of(const kh_recs_t *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].key != NULL && strcmp(r->v[i].key, key) == 0)
            return r->v[i].partition;
    cr_assert_fail("no record keyed %s", key);
    return -1;
}

Test(bounded, oversize_record_parks_its_partition, .timeout = 300)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], want[128];
    char *log = NULL;
    kh_worker_t w;
    kh_events_t ev = {0};
    enum { SMALL = 12 };

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    for (int i = 0; i < SMALL; i++)
        kh_ev_addf(
            &ev,
            "{\"event_id\":\"b-%d\",\"type\":\"contract.booked\",\"contract_id\":\"S-%d\","
            "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
            "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":"
            "\"L1\",\"product\":\"P\",\"recognition\":\"ratable_monthly\",\"start\":"
            "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1200.00\"}]}",
            i, i);
    /* BIG: 60 lines with long ids, a record of several KB */
    char json[32768];
    int n = snprintf(json, sizeof json,
                     "{\"event_id\":\"b-big\",\"type\":\"contract.booked\",\"contract_id\":"
                     "\"BIG\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
                     "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[");
    for (int l = 0; l < 60; l++)
        n += snprintf(json + n, sizeof json - (size_t)n,
                      "%s{\"line_id\":\"line-%02d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
                      "\"product\":\"P\",\"recognition\":\"ratable_monthly\",\"start\":"
                      "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"100.00\"}",
                      l ? "," : "", l);
    snprintf(json + n, sizeof json - (size_t)n, "]}");
    kh_ev_add(&ev, json);
    kh_produce_book(bs, &ev);

    kh_recs_t recs[1] = {{0}};
    const char *topics[] = {kh_in_topics[0]};
    kh_read_topics(bs, topics, 1, recs);
    int32_t bigp = partition_of(&recs[0], "BIG");

    kh_worker_init(&w, bs, "g-park",
                   "exit.when.idle=true\ninput.format=json\noutput.format=json\nkafka.message."
                   "max.bytes=4000\n");
    for (int run = 0; run < 2; run++) { /* the restart parks again: no crash loop */
        size_t mark = strlen(log = kh_slurp(w.log));
        free(log);
        cr_assert_eq(bounded_run(&w, &log), 0, "run %d:\n%s", run, log);
        snprintf(want, sizeof want, "worker: error partition_parked partition=%d ", (int)bigp);
        cr_assert_not_null(strstr(log + mark, want), "run %d:\n%s", run, log + mark);
        cr_assert_not_null(strstr(log + mark, "limit=4000"), "%s", log + mark);
        free(log);
    }
    /* other partitions committed, the parked one nothing */
    int others = 0;
    for (int i = 0; i < SMALL; i++) {
        char id[16];
        snprintf(id, sizeof id, "S-%d", i);
        int32_t p = partition_of(&recs[0], id);
        size_t size = stored_record(w.state, id, NULL);
        if (p == bigp) {
            cr_assert_eq(size, 0, "%s shares the parked partition but was committed", id);
        } else {
            cr_assert_gt(size, 0, "%s (partition %d) was not committed", id, (int)p);
            others++;
        }
    }
    cr_assert_gt(others, 0);
    cr_assert_eq(stored_record(w.state, "BIG", NULL), 0);
    kh_recs_free(&recs[0]);
    kh_ev_free(&ev);
    kh_rm_rf(w.dir);
    rs_mockbroker_destroy(mb);
}
