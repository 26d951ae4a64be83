/*
 * test_bounded — records the worker writes stay bounded, with `revstream
 * worker` as a child process against the embedded broker.
 *
 * What is checked:
 *   - Idempotency without growth: a contract with 6,000 usage events keeps
 *     a small contract record (ids live in the store's seen keys, and in
 *     the changelog packed many to a record); the
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
#include <unistd.h>

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

/* Usage events <prefix>-<from..to-1> of M1 on day 1 + i % 28 of `month`. */
static void month_events(kh_events_t *ev, const char *prefix, int month, int from, int to,
                         int qty)
{
    for (int i = from; i < to; i++)
        kh_ev_addf(ev,
                   "{\"event_id\":\"%s-%d\",\"type\":\"usage.recorded\",\"contract_id\":\"M1\","
                   "\"occurred_at\":\"2026-%02d-%02dT12:00:00Z\",\"line_id\":\"L1\","
                   "\"quantity\":\"%d\"}",
                   prefix, i, month, 1 + i % 28, qty);
}

static void usage_events(kh_events_t *ev, int from, int to, int qty)
{
    month_events(ev, "u", 1, from, to, qty);
}

/* Contracts M2..M9 (a usage line each) and 20 usage events of each: with
 * M1 they share partitions, so a sub-batch packs the ids of several
 * contracts (the changelog's "S/" records are per contract). */
static void other_books(kh_events_t *ev)
{
    for (int c = 2; c <= 9; c++)
        kh_ev_addf(ev,
                   "{\"event_id\":\"book-%d\",\"type\":\"contract.booked\",\"contract_id\":"
                   "\"M%d\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
                   "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":"
                   "\"L1\",\"product\":\"API\",\"recognition\":\"usage\",\"start\":"
                   "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":"
                   "\"0.10\"}]}",
                   c, c);
}

static void other_usage(kh_events_t *ev)
{
    for (int c = 2; c <= 9; c++)
        for (int i = 0; i < 20; i++)
            kh_ev_addf(ev,
                       "{\"event_id\":\"o%d-%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                       "\"M%d\",\"occurred_at\":\"2026-01-%02dT12:00:00Z\",\"line_id\":\"L1\","
                       "\"quantity\":\"1\"}",
                       c, i, c, 1 + i % 28);
}

/* The size of contract id's record in the store at dir (any partition);
 * 0 if it has none. */
static size_t stored_record(const char *dir, const char *id, int32_t *part)
{
    rs_state_t *st = NULL;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0, 0};
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
    other_books(&ev);
    other_usage(&ev);
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
    other_usage(&again);           /* 160 ids of 8 other contracts */
    kh_produce_book(bs, &again);
    kh_worker_init(&b, bs, "g-bounded",
                   "exit.when.idle=true\ninput.format=json\noutput.format=json\n");
    cr_assert_eq(bounded_run(&b, &log), 0, "%s", log);
    cr_assert_not_null(strstr(log, "restored partition="), "%s", log);
    /* the 6,000 ids came packed ("S/" records of up to 16,384 ids, one or
     * a few per batch), not as 6,000 records */
    long restored = kh_log_sum(log, "worker: restored ", "records");
    cr_assert(restored > 0 && restored < 1000, "%ld changelog records restored", restored);
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "duplicates"), 1000 + 160, "%s", log);
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
    /* a third start, kept running: the gauge shows the parked partition */
    int port = kh_free_port();
    char *cfg = kh_slurp(w.cfg), *at = strstr(cfg, "exit.when.idle=true\n");
    cr_assert_not_null(at);
    char text[4096];
    snprintf(text, sizeof text, "%.*smetrics.port=%d\n%s", (int)(at - cfg), cfg, port,
             at + strlen("exit.when.idle=true\n"));
    free(cfg);
    kh_write_file(w.cfg, text);
    size_t mark = strlen(log = kh_slurp(w.log));
    free(log);
    pid_t pid = kh_worker_start(&w, NULL);
    for (double t0 = kh_now_s();; usleep(100000)) { /* this start's line */
        log = kh_slurp(w.log);
        int seen = strlen(log) > mark && strstr(log + mark, want) != NULL;
        free(log);
        if (seen)
            break;
        cr_assert_lt(kh_now_s() - t0, KH_DEADLINE_S, "no partition_parked line");
    }
    static char body[16384];
    cr_assert_eq(kh_http_get(port, "/metrics", body), 200);
    cr_assert_not_null(strstr(body, "\nrevstream_partitions_parked 1\n"), "%s", body);
    kh_assert_exit0(kh_worker_stop(pid, w.log), w.log);
    log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log + mark, want), "%s", log + mark);
    free(log);
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

static int bounded_count_seen(void *opaque, const char *contract_id, uint64_t id_hash,
                              uint64_t content_hash, int32_t period)
{
    (void)contract_id;
    (void)id_hash;
    (void)content_hash;
    (void)period;
    ++*(int *)opaque;
    return 0;
}

static int stored_seen(const char *dir, int32_t part)
{
    rs_state_t *st = NULL;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    int n = 0;
    cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_foreach_seen(st, part, bounded_count_seen, &n, err, sizeof err), 0,
                 "%s", err);
    rs_state_destroy(st);
    return n;
}

/* state.seen.retention.months=1: closing 2026-02 prunes January's ids (the
 * booking's too) from the store and, by tombstones, from the changelog (a
 * restore holds the same ids); a January event is then dead-lettered, not
 * applied unchecked; February's ids still catch duplicates. */
Test(bounded, retention_prunes_ids_and_refuses_older_events, .timeout = 300)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    char *log = NULL;
    kh_worker_t a, b;
    kh_events_t ev = {0}, late = {0};
    const char *cfg = "exit.when.idle=true\ninput.format=json\noutput.format=json\n"
                      "state.seen.retention.months=1\n";

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_ev_add(&ev, "{\"event_id\":\"book\",\"type\":\"contract.booked\",\"contract_id\":\"M1\","
                   "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
                   "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":"
                   "\"L1\",\"product\":\"API\",\"recognition\":\"usage\",\"start\":"
                   "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":"
                   "\"0.10\"}]}");
    month_events(&ev, "jan", 1, 0, 100, 1);
    month_events(&ev, "feb", 2, 0, 100, 1);
    kh_produce_book(bs, &ev);
    kh_worker_init(&a, bs, "g-retention", cfg);
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    free(log);
    int32_t part = -1;
    cr_assert_gt(stored_record(a.state, "M1", &part), 0);
    cr_assert_eq(stored_seen(a.state, part), 201);
    kh_ev_free(&ev);
    kh_ev_add(&ev, "{\"event_id\":\"close-2026-01\",\"type\":\"period.closed\",\"occurred_at\":"
                   "\"2026-02-01T00:00:00Z\",\"period\":\"2026-01\"}");
    kh_ev_add(&ev, "{\"event_id\":\"close-2026-02\",\"type\":\"period.closed\",\"occurred_at\":"
                   "\"2026-03-01T00:00:00Z\",\"period\":\"2026-02\"}");
    kh_produce_book(bs, &ev);
    size_t mark = strlen(log = kh_slurp(a.log));
    free(log);
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    char want[96];
    snprintf(want, sizeof want, "worker: seen_pruned partition=%d through=2026-01 ids=101 ",
             (int)part);
    cr_assert_not_null(strstr(log + mark, want), "%s", log + mark);
    free(log);
    cr_assert_eq(stored_seen(a.state, part), 100); /* February's */

    month_events(&late, "feb", 2, 5, 6, 1);     /* a duplicate */
    month_events(&late, "jan", 1, 5, 6, 1);     /* pruned: refused */
    month_events(&late, "jan", 1, 500, 501, 1); /* new, but as old: refused */
    month_events(&late, "mar", 3, 0, 1, 1);     /* new */
    kh_produce_book(bs, &late);
    mark = strlen(log = kh_slurp(a.log));
    free(log);
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "duplicates"), 1, "%s", log + mark);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "applied"), 1, "%s", log + mark);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "dlq"), 2, "%s", log + mark);
    cr_assert_not_null(strstr(log + mark,
                              "event jan-5: occurred_at: period 2026-01 is 1 or "
                              "more months before the latest closed period 2026-02"),
                       "%s", log + mark);
    cr_assert_not_null(strstr(log + mark, "state.seen.retention.months=1"), "%s", log + mark);
    free(log);
    cr_assert_eq(stored_seen(a.state, part), 101);

    /* a restore from the changelog holds the same ids */
    kh_worker_init(&b, bs, "g-retention", cfg);
    cr_assert_eq(bounded_run(&b, &log), 0, "%s", log);
    cr_assert_not_null(strstr(log, "restored partition="), "%s", log);
    free(log);
    cr_assert_eq(stored_seen(b.state, part), 101);

    kh_ev_free(&ev);
    kh_ev_free(&late);
    kh_rm_rf(a.dir);
    kh_rm_rf(b.dir);
    rs_mockbroker_destroy(mb);
}
