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
 *   - A changelog the broker trimmed (a large record written by many
 *     batches fills the embedded broker's ~5 MB): a worker with an empty
 *     state directory is refused naming partition 0 and the low watermark;
 *     the restore itself asked to start below the low watermark fails
 *     naming the partition (never a silent jump); a copy of the store
 *     (`revstream state checkpoint`, its changelog position at or past the
 *     low watermark, shown by `state partitions`) restores the tail after
 *     its position and ends with the writer's records byte for byte and
 *     its seen ids, nothing applied again, old ids sent again duplicates.
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

#include "rs_changelog.h"
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

/* Runs w again to its exit 0; this run's batch lines must count `dups`
 * duplicates and `applied` applied events. */
static void bounded_rerun(const kh_worker_t *w, long dups, long applied)
{
    char *log = kh_slurp(w->log);
    size_t mark = strlen(log);
    free(log);
    cr_assert_eq(bounded_run(w, &log), 0, "%s", log);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "duplicates"), dups, "%s",
                 log + mark);
    cr_assert_eq(kh_log_sum(log + mark, "worker: batch ", "applied"), applied, "%s",
                 log + mark);
    free(log);
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

/* M1's booking: one usage line for 2026. */
static void book_m1(kh_events_t *ev)
{
    kh_ev_add(ev, "{\"event_id\":\"book\",\"type\":\"contract.booked\",\"contract_id\":\"M1\","
                  "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
                  "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":"
                  "\"L1\",\"product\":\"API\",\"recognition\":\"usage\",\"start\":"
                  "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":"
                  "\"0.10\"}]}");
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

/* The size of contract id's record in the store at dir (any partition),
 * as the fixed-width record rs_engine_export_contract makes of it (a
 * measure of its content: the packed form the worker stores, checked here
 * by its first byte, writes numbers in as many bytes as their magnitude
 * needs, so a growing amount adds a byte now and then); 0 if it has none. */
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
            cr_assert_gt(len, 0);
            cr_assert_eq(*(const unsigned char *)blob, 0xc1, /* rs_engine_pack_contract's tag */
                         "%s's record is not in the packed form", id);
            rs_engine_t *e = NULL;
            void *rec = NULL;
            cr_assert_eq(rs_engine_new(&e, NULL, err, sizeof err), 0, "%s", err);
            cr_assert_eq(rs_engine_import_contract(e, blob, len, err, sizeof err), 0, "%s",
                         err);
            cr_assert_eq(rs_engine_export_contract(e, id, &rec, &size, err, sizeof err), 0,
                         "%s", err);
            free(rec);
            rs_engine_destroy(e);
            cr_assert_lt(len, size, "packed %zu bytes, the record %zu", len, size);
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
    book_m1(&ev);
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
    book_m1(&ev);
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

/* Contract id's record in the store at dir (partition 0), malloc'd; *len
 * its size. Fails the test if there is none. */
static void *stored_blob(const char *dir, const char *id, size_t *len)
{
    rs_state_t *st = NULL;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    void *blob = NULL, *copy = NULL;
    cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_get_contract(st, 0, id, &blob, len, err, sizeof err), 0,
                 "%s in %s: %s", id, dir, err);
    copy = malloc(*len ? *len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, blob, *len);
    rs_state_free(blob);
    rs_state_destroy(st);
    return copy;
}

/* The local changelog position of partition 0 in the store at dir. */
static int64_t stored_pos(const char *dir)
{
    rs_state_t *st = NULL;
    rs_state_opts_t so = {dir, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    char err[512];
    int64_t pos = -1;
    cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_changelog_get_pos(st, 0, &pos, err, sizeof err), 0, "%s", err);
    rs_state_destroy(st);
    return pos;
}

/* Asserts that contract id's record is byte-equal in the stores at a and b. */
static void assert_same_record(const char *a, const char *b, const char *id)
{
    size_t na = 0, nb = 0;
    void *ra = stored_blob(a, id, &na), *rb = stored_blob(b, id, &nb);
    cr_assert(na == nb && memcmp(ra, rb, na) == 0, "%s: %zu bytes in %s, %zu in %s", id, na, a,
              nb, b);
    free(ra);
    free(rb);
}

/* A fresh store starts each input at offset 0 (rs_worker_rebalance.c): on
 * an input whose start the broker deleted (the embedded broker keeps ~5 MB
 * per partition) that is out of range, and the worker must go on from the
 * low watermark, applying exactly the records the topic still holds. */
Test(bounded, fresh_store_starts_at_a_trimmed_inputs_low_watermark, .timeout = 300)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, 1};
    char err[512];
    char *log = NULL;
    kh_worker_t a;
    kh_events_t ev = {0};
    int64_t lo = -1, hi = -1, clo = -1, chi = -1;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    book_m1(&ev);
    month_events(&ev, "usage-event-with-a-longer-id-to-fill-the-log-sooner", 1, 0, 36000, 1);
    kh_produce_book(bs, &ev);
    rd_kafka_t *p = kh_new_producer(bs);
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, "usage", 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, "contracts", 0, &clo, &chi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
    cr_assert_gt(lo, 0, "the broker kept all %lld usage records: nothing was trimmed",
                 (long long)hi);
    cr_assert_eq(hi, 36000);
    cr_assert_eq(chi - clo, 1);

    kh_worker_init(&a, bs, "g-trimmed-input",
                   "exit.when.idle=true\ninput.format=json\noutput.format=json\n");
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    long want = (long)(hi - lo) + 1;
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "records"), want, "%s", log);
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "applied"), want, "%s", log);
    /* librdkafka moves an out-of-range start to the low watermark quietly */
    cr_assert_null(strstr(log, "consumer_error"), "%s", log);
    free(log);
    kh_ev_free(&ev);
    kh_rm_rf(a.dir);
    rs_mockbroker_destroy(mb);
}

#define RESTORE_CL "revenue.state-changelog"
#define BIG_LINES 2000 /* BIG: a large record, written by every batch touching it */

/* A changelog trimmed at the broker (its start deleted: the embedded broker
 * keeps ~5 MB per partition) is restored the way an operator does it: from
 * a consistent copy of a store (`revstream state checkpoint`, taken while
 * the changelog still held the copy's position) plus the changelog's tail
 * after the copy's position (R1: allowed when the position is at or past
 * the low watermark). One partition, so M1 (a usage line, small record)
 * and BIG (2,000 lines: a large record, written by every batch that
 * touches it, to fill the changelog quickly) share it.
 *   1. worker A: M1's first 1,500 usage events and 30 of BIG's, in batches
 *      of at most 50 records (so 30 batches write BIG's record): more
 *      changelog than the broker keeps; it trims the start (in runs: low
 *      watermark 126 of 184 records).
 *   2. a copy of A's store (A stopped; its position P is still at the
 *      broker: the trimming came before it).
 *   3. A goes on (its own store): M1's usage events 1,500..2,999.
 *   4. worker C, empty state directory: refused, naming partition 0 and
 *      the low watermark (never a restore from the trimmed start).
 *   5. worker B, state directory = the copy, same group: restores the tail
 *      P..end, applies nothing again, and holds A's records byte for byte
 *      and A's seen ids; old event ids sent again are duplicates. */
Test(bounded, trimmed_changelog_restores_from_a_copy_and_its_tail, .timeout = 300)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, 1};
    char err[512], want[256];
    char *log = NULL;
    kh_worker_t a, b, c;
    kh_events_t ev = {0}, tail = {0}, probe = {0};
    const char *cfg = "exit.when.idle=true\ninput.format=json\noutput.format=json\n"
                      "batch.max.records=50\n";

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    book_m1(&ev);
    {
        size_t cap = 256 + (size_t)BIG_LINES * 200;
        char *json = malloc(cap);
        cr_assert_not_null(json);
        int n =
            snprintf(json, cap,
                     "{\"event_id\":\"book-big\",\"type\":\"contract.booked\",\"contract_id\":"
                     "\"BIG\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":"
                     "\"K\",\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[");
        for (int l = 0; l < BIG_LINES; l++)
            n += snprintf(json + n, cap - (size_t)n,
                          "%s{\"line_id\":\"line-%04d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
                          "\"product\":\"P\",\"recognition\":\"usage\",\"start\":"
                          "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\","
                          "\"unit_price\":\"0.10\"}",
                          l ? "," : "", l);
        snprintf(json + n, cap - (size_t)n, "]}");
        kh_ev_add(&ev, json);
        free(json);
    }
    for (int r = 0; r < 30; r++) { /* one BIG event in every 50 records */
        kh_ev_addf(&ev,
                   "{\"event_id\":\"big-%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                   "\"BIG\",\"occurred_at\":\"2026-01-%02dT12:00:00Z\",\"line_id\":"
                   "\"line-%04d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"quantity\":\"1\"}",
                   r, 1 + r % 28, r);
        usage_events(&ev, r * 49, r * 49 + 49, 1);
    }
    usage_events(&ev, 1470, 1500, 1);
    kh_produce_book(bs, &ev);
    kh_worker_init(&a, bs, "g-copy", cfg);
    cr_assert_eq(bounded_run(&a, &log), 0, "%s", log);
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "applied"), 1532, "%s", log);
    free(log);

    /* 2. the copy, while the broker still holds its position */
    int64_t lo = -1, hi = -1, copy_pos = stored_pos(a.state);
    rd_kafka_t *p = kh_new_producer(bs);
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, RESTORE_CL, 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_gt(lo, 0, "the broker did not trim the changelog (low %lld high %lld)",
                 (long long)lo, (long long)hi);
    cr_assert(lo <= copy_pos && copy_pos == hi, "low %lld, copy at %lld, high %lld",
              (long long)lo, (long long)copy_pos, (long long)hi);
    kh_worker_init(&b, bs, "g-copy", cfg);
    char *cargv[] = {"revstream", "state", "checkpoint", "--state-dir", a.state, b.state, NULL};
    kh_assert_exit0(kh_wait_exit(kh_spawn(cargv, b.out, b.log, NULL), KH_DEADLINE_S, b.log),
                    b.log);
    /* the copy's changelog position, as an operator reads it */
    char *pargv[] = {"revstream", "state", "partitions", "--state-dir", b.state, NULL};
    kh_assert_exit0(kh_wait_exit(kh_spawn(pargv, b.out, b.log, NULL), KH_DEADLINE_S, b.log),
                    b.log);
    snprintf(want, sizeof want, "  %9lld  no\n", (long long)copy_pos);
    log = kh_slurp(b.out);
    cr_assert_not_null(strstr(log, want), "want \"%s\" in:\n%s", want, log);
    free(log);

    /* 3. A goes on from its own store: no restore, the tail */
    usage_events(&tail, 1500, 3000, 1);
    kh_produce_book(bs, &tail);
    bounded_rerun(&a, 0, 1500); /* from its own store: nothing to restore */
    log = kh_slurp(a.log);
    cr_assert_eq(strstr(log, "restored partition="), NULL, "%s", log);
    free(log);
    cr_assert_eq(rd_kafka_query_watermark_offsets(p, RESTORE_CL, 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert(lo > 0 && lo <= copy_pos && copy_pos < hi, "low %lld, copy at %lld, high %lld",
              (long long)lo, (long long)copy_pos, (long long)hi);

    /* 4. an empty state directory: refused, naming the partition */
    kh_worker_init(&c, bs, "g-copy-empty", cfg);
    cr_assert_neq(bounded_run(&c, &log), 0, "%s", log);
    snprintf(want, sizeof want,
             "changelog " RESTORE_CL "[0] starts at offset %lld but the local state is "
             "missing",
             (long long)lo);
    cr_assert_not_null(strstr(log, want), "want \"%s\" in:\n%s", want, log);
    cr_assert_not_null(strstr(log, "restore_refused partition=0"), "%s", log);
    free(log);
    /* the restore itself, asked to start below the low watermark (as one
     * racing the broker's trimming would be: the watermarks were read, then
     * the start was deleted), fails naming the partition; it never resets
     * to another offset and reports success */
    {
        char scratch[160];
        rs_state_t *st = NULL;
        snprintf(scratch, sizeof scratch, "%s/scratch", c.dir);
        rs_state_opts_t so = {scratch, 1, 0, RS_STATE_SYNC_OFF, 0, 0};
        cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
        rs_changelog_restore_part_t part = {0, lo - 1, hi, 0, 0, 0};
        rs_changelog_restore_args_t ra = {0};
        ra.conf = rd_kafka_conf_new();
        cr_assert_eq(rd_kafka_conf_set(ra.conf, "bootstrap.servers", bs, err, sizeof err),
                     RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_conf_set(ra.conf, "group.id", "g-copy-direct", err, sizeof err),
                     RD_KAFKA_CONF_OK);
        ra.topic = RESTORE_CL;
        ra.parts = &part;
        ra.nparts = 1;
        for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
            ra.input_topics[t] = kh_in_topics[t];
        ra.timeout_ms = 10000;
        int64_t n = 0;
        err[0] = '\0';
        cr_assert_eq(rs_changelog_restore(st, &ra, &n, err, sizeof err), -1,
                     "restored %lld records from below the low watermark", (long long)n);
        cr_assert_not_null(strstr(err, RESTORE_CL "[0]"), "%s", err);
        rs_state_destroy(st);
    }

    /* 5. the copy and the tail: A's state, nothing applied again */
    cr_assert_eq(bounded_run(&b, &log), 0, "%s", log);
    snprintf(want, sizeof want, "worker: restore partition=0 from=%lld high=%lld local=behind",
             (long long)copy_pos, (long long)hi);
    cr_assert_not_null(strstr(log, want), "want \"%s\" in:\n%s", want, log);
    cr_assert_not_null(strstr(log, "worker: restored partition=0 "), "%s", log);
    cr_assert_eq(kh_log_sum(log, "worker: batch ", "applied"), 0, "%s", log);
    free(log);
    cr_assert_eq(stored_pos(b.state), hi);
    assert_same_record(a.state, b.state, "M1");
    assert_same_record(a.state, b.state, "BIG");
    cr_assert_eq(stored_seen(b.state, 0), stored_seen(a.state, 0));
    cr_assert_eq(stored_seen(b.state, 0), 3032);

    /* old ids again, from before and after the copy: duplicates */
    usage_events(&probe, 0, 3000, 1);
    kh_events_t sample = {0};
    for (size_t i = 0; i < probe.n; i += 30)
        kh_ev_add(&sample, probe.v[i].json);
    kh_produce_book(bs, &sample);
    bounded_rerun(&b, 100, 0);
    assert_same_record(a.state, b.state, "M1");

    rd_kafka_destroy(p);
    kh_ev_free(&ev);
    kh_ev_free(&tail);
    kh_ev_free(&probe);
    kh_ev_free(&sample);
    kh_rm_rf(a.dir);
    kh_rm_rf(b.dir);
    kh_rm_rf(c.dir);
    rs_mockbroker_destroy(mb);
}
