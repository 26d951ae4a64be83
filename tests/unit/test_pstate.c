/*
 * test_pstate.c — a partition's engine survives the state store: what is
 * staged and committed loads back record for record, and the batch plan
 * protocol (save, find at load, clear with the commit) holds.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_changelog.h"
#include "rs_hash.h"
#include "rs_pstate.h"
#include "rs_test_util.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rs_pstate_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(pstate, .init = setup, .fini = teardown);

static rs_state_t *open_store(void)
{
    rs_state_opts_t o = {0};
    char err[256];
    rs_state_t *st;
    o.path = dir;
    o.create_if_missing = 1;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof(err)), 0, "%s", err);
    return st;
}

static void apply(rs_engine_t *e, const char *json)
{
    rs_event_t ev;
    char err[512];
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, sizeof(err)), 0, "%s", err);
    int rc = rs_engine_apply(e, &ev, err, sizeof(err));
    cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_PENDING, "%s", err);
    rs_event_clear(&ev);
}

static const char *events[] = {
    "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"C1\",\"occurred_at\":"
    "\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\",\"booked_on\":"
    "\"2026-01-01\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\",\"recognition\":"
    "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
    "\"1200.00\"}]}",
    "{\"event_id\":\"i\",\"type\":\"invoice.issued\",\"contract_id\":\"C1\",\"occurred_at\":"
    "\"2026-03-01T00:00:00Z\",\"invoice_id\":\"I\",\"issued_on\":\"2026-03-01\",\"lines\":[{"
    "\"line_id\":\"L\",\"amount\":\"1200.00\"}]}",
    "{\"event_id\":\"p\",\"type\":\"payment.received\",\"contract_id\":\"C2\",\"occurred_at\":"
    "\"2026-03-02T00:00:00Z\",\"payment_id\":\"P\",\"invoice_id\":\"I9\",\"amount\":\"5.00\","
    "\"received_on\":\"2026-03-02\"}",
    "{\"event_id\":\"close\",\"type\":\"period.closed\",\"occurred_at\":\"2026-04-01T00:00:"
    "00Z\","
    "\"period\":\"2026-03\"}",
};

Test(pstate, commit_and_reload)
{
    char err[256];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 3, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_pstate_loaded_contracts(ps), 0);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        apply(rs_pstate_engine(ps), events[i]);
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof(err)), 0, "%s", err);
    /* nothing changed since: staging again writes only the meta record */
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof(err)), 0);
    cr_assert_eq(rs_state_batch_count(b), 1);
    rs_state_batch_clear(b);

    rs_pstate_t *again;
    cr_assert_eq(rs_pstate_load(&again, st, 3, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_pstate_loaded_contracts(again), 2); /* C1, and C2 waiting */
    const char *ids[] = {"C1", "C2"};
    for (int i = 0; i < 2; i++) {
        void *x, *y;
        size_t nx, ny;
        cr_assert_eq(
            rs_engine_export_contract(rs_pstate_engine(ps), ids[i], &x, &nx, err, sizeof(err)),
            0);
        cr_assert_eq(rs_engine_export_contract(rs_pstate_engine(again), ids[i], &y, &ny, err,
                                               sizeof(err)),
                     0);
        cr_assert_eq(nx, ny);
        cr_assert_eq(memcmp(x, y, nx), 0, "%s differs after reload", ids[i]);
        free(x);
        free(y);
    }
    cr_assert(rs_engine_period_closed(rs_pstate_engine(again), 2026 * 12 + 2));
    cr_assert_eq(rs_engine_pending_count(rs_pstate_engine(again)), 1);
    /* another partition is empty */
    rs_pstate_t *other;
    cr_assert_eq(rs_pstate_load(&other, st, 4, NULL, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_loaded_contracts(other), 0);
    rs_pstate_destroy(other);
    rs_pstate_destroy(again);
    rs_pstate_destroy(ps);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

Test(pstate, batch_plan)
{
    char err[256];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof(err)), 0);
    size_t n;
    cr_assert_null(rs_pstate_pending_plan(ps, &n));
    rs_plan_item_t plan[3] = {{0, 10}, {3, 7}, {1, (int64_t)1 << 40}};
    cr_assert_eq(rs_pstate_save_plan(ps, plan, 3, err, sizeof(err)), 0, "%s", err);
    rs_pstate_destroy(ps);
    /* a crash now: the plan is found at load */
    cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof(err)), 0, "%s", err);
    const rs_plan_item_t *got = rs_pstate_pending_plan(ps, &n);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(got[i].topic, plan[i].topic);
        cr_assert_eq(got[i].offset, plan[i].offset);
    }
    /* committed with the batch: gone */
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_stage_plan_done(ps, b), 0);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof(err)), 0, "%s", err);
    cr_assert_null(rs_pstate_pending_plan(ps, &n));
    rs_pstate_destroy(ps);
    cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof(err)), 0);
    cr_assert_null(rs_pstate_pending_plan(ps, &n));
    cr_assert_eq(n, 0);
    rs_pstate_destroy(ps);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* ---- bounded idempotency: applied event ids in the store's seen keys ---- */

#define USAGE_BOOKED                                                                           \
    "{\"event_id\":\"book\",\"type\":\"contract.booked\",\"contract_id\":\"M1\","              \
    "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\","     \
    "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"API\","         \
    "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"    \
    "\"0\",\"unit_price\":\"0.10\"}]}"

/* Usage event i of M1: on day 1 + i % 28 of January, quantity q. */
static rs_apply_result_t apply_usage(rs_engine_t *e, int i, int q, char *err, size_t errlen)
{
    char json[320];
    rs_event_t ev;
    snprintf(json, sizeof json,
             "{\"event_id\":\"u-%d\",\"type\":\"usage.recorded\",\"contract_id\":\"M1\","
             "\"occurred_at\":\"2026-01-%02dT12:00:00Z\",\"line_id\":\"L1\",\"quantity\":"
             "\"%d\"}",
             i, 1 + i % 28, q);
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, errlen), 0, "%s", err);
    rs_apply_result_t rc = rs_engine_apply(e, &ev, err, errlen);
    rs_event_clear(&ev);
    return rc;
}

static size_t record_size(rs_engine_t *e, const char *id)
{
    void *buf;
    size_t len;
    char err[256];
    cr_assert_eq(rs_engine_export_contract(e, id, &buf, &len, err, sizeof err), 0, "%s", err);
    free(buf);
    return len;
}

static void stage_commit(rs_state_t *st, rs_pstate_t *ps)
{
    rs_state_batch_t *b;
    char err[256];
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(b);
}

/* 20,000 usage events: the contract's record is as large after 20,000 as
 * after 2,000 (usage per line and day, ids in the store), while an engine
 * keeping the ids in the record grows by 16 bytes an event; duplicates are
 * still found in the open batch (the engine's own list), after a commit,
 * and after a reload (a restart). */
Test(pstate, seen_ids_keep_the_record_small)
{
    char err[512];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    rs_engine_t *mem;
    cr_assert_eq(rs_pstate_load(&ps, st, 1, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_engine_new(&mem, NULL, err, sizeof err), 0);
    rs_engine_t *e = rs_pstate_engine(ps);
    apply(e, USAGE_BOOKED);
    apply(mem, USAGE_BOOKED);
    size_t at2k = 0, mem2k = 0;
    for (int i = 0; i < 20000; i++) {
        cr_assert_eq(apply_usage(e, i, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
        cr_assert_eq(apply_usage(mem, i, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
        if (i == 1000) /* in the open batch: the engine answers itself */
            cr_assert_eq(apply_usage(e, 5, 1, err, sizeof err), RS_APPLY_DUPLICATE);
        if (i % 1000 == 999)
            stage_commit(st, ps);
        if (i == 1999) {
            at2k = record_size(e, "M1");
            mem2k = record_size(mem, "M1");
        }
    }
    size_t at20k = record_size(e, "M1"), mem20k = record_size(mem, "M1");
    cr_assert_eq(at20k, at2k, "record grew from %zu to %zu bytes", at2k, at20k);
    cr_assert_lt(at20k, 4096, "%zu bytes", at20k);
    cr_assert_geq(mem20k - mem2k, 18000 * 16, "in-record ids: %zu -> %zu", mem2k, mem20k);
    /* the same amounts either way */
    cr_assert_eq(rs_engine_line_count(e), 1);
    rs_line_view_t a, b;
    rs_engine_line_get(e, 0, &a);
    rs_engine_line_get(mem, 0, &b);
    cr_assert_eq(a.recognized, b.recognized);
    cr_assert_eq(a.unbilled, b.unbilled);
    /* after a commit: found in the store */
    cr_assert_eq(apply_usage(e, 777, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 777, 2, err, sizeof err), RS_APPLY_REJECTED);
    cr_assert_not_null(strstr(err, "event u-777: event_id: conflicting duplicate"), "%s", err);
    rs_pstate_destroy(ps);

    /* a restart: the reloaded engine holds no ids, the store has them */
    cr_assert_eq(rs_pstate_load(&ps, st, 1, NULL, err, sizeof err), 0, "%s", err);
    e = rs_pstate_engine(ps);
    cr_assert_lt(rs_engine_memory_bytes(e), 16384, "%zu", rs_engine_memory_bytes(e));
    cr_assert_eq(apply_usage(e, 19999, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 0, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 20000, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
    /* another partition's store holds none of them */
    rs_pstate_t *other;
    cr_assert_eq(rs_pstate_load(&other, st, 2, NULL, err, sizeof err), 0);
    apply(rs_pstate_engine(other), USAGE_BOOKED);
    cr_assert_eq(apply_usage(rs_pstate_engine(other), 3, 1, err, sizeof err), RS_APPLY_OK);
    rs_pstate_destroy(other);
    rs_pstate_destroy(ps);
    rs_engine_destroy(mem);
    rs_state_destroy(st);
}

/* The seen store is not asked about a contract the engine created in the
 * open batch (it has no record, so no stored ids), and it is asked again
 * once the batch's ids went to the store: a duplicate is found in the open
 * batch, after the commit, after the contract left the cache and came back
 * from the store, after a restart, and for an event that was queued (a
 * contract created by a waiting event). The worker's path: rs_pstate_open,
 * rs_pstate_fetch before every apply, rs_pstate_evict after the commit. */
Test(pstate, created_contracts_skip_the_seen_store_exactly)
{
    char err[512];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    rs_engine_stats_t s;
    cr_assert_eq(rs_pstate_open(&ps, st, 1, NULL, 1, err, sizeof err), 0, "%s", err);
    rs_engine_t *e = rs_pstate_engine(ps);
    cr_assert_eq(rs_pstate_fetch(ps, "M1", err, sizeof err), 0, "%s", err);
    apply(e, USAGE_BOOKED);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(rs_pstate_fetch(ps, "M1", err, sizeof err), 0, "%s", err);
        cr_assert_eq(apply_usage(e, i, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
    }
    cr_assert_eq(apply_usage(e, 5, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    rs_engine_get_stats(e, &s);
    cr_assert_eq(s.seen_lookups, 0, "a created contract: the store was asked %llu times",
                 (unsigned long long)s.seen_lookups);
    stage_commit(st, ps);
    /* its ids are in the store now: asked, and found */
    cr_assert_eq(apply_usage(e, 5, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 6, 2, err, sizeof err), RS_APPLY_REJECTED);
    cr_assert_eq(apply_usage(e, 100, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
    rs_engine_get_stats(e, &s);
    cr_assert_eq(s.seen_lookups, 3);
    stage_commit(st, ps);
    cr_assert_eq(rs_pstate_evict(ps), 1, "a 1-byte cache lets M1 go");
    /* back from the store */
    cr_assert_eq(rs_pstate_fetch(ps, "M1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(apply_usage(e, 7, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 100, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    /* a contract created by an event that waits for its booking */
    rs_event_t ev;
    const char *early = "{\"event_id\":\"w-1\",\"type\":\"usage.recorded\",\"contract_id\":"
                        "\"M2\",\"occurred_at\":\"2026-01-03T12:00:00Z\",\"line_id\":\"L1\","
                        "\"quantity\":\"3\"}";
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(early, strlen(early), &ev, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(rs_pstate_fetch(ps, "M2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_engine_apply(e, &ev, err, sizeof err), RS_APPLY_PENDING, "%s", err);
    cr_assert_eq(rs_engine_apply(e, &ev, err, sizeof err), RS_APPLY_DUPLICATE);
    stage_commit(st, ps);
    rs_pstate_evict(ps);
    rs_pstate_destroy(ps);
    /* a restart */
    cr_assert_eq(rs_pstate_open(&ps, st, 1, NULL, 1, err, sizeof err), 0, "%s", err);
    e = rs_pstate_engine(ps);
    cr_assert_eq(rs_pstate_fetch(ps, "M2", err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_engine_apply(e, &ev, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(rs_pstate_fetch(ps, "M1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(apply_usage(e, 99, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 0, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 101, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
    rs_engine_get_stats(e, &s);
    cr_assert_eq(s.seen_lookups, 4, "imported contracts: every new id asked");
    rs_event_clear(&ev);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}

/* A record written with its ids inside (an engine without a seen store,
 * i.e. the old format) still loads and its ids still count; the first
 * change moves them to the store, so the record shrinks and the ids
 * survive the next reload. */
Test(pstate, old_records_with_ids_inside_still_dedupe)
{
    char err[512];
    rs_state_t *st = open_store();
    rs_engine_t *old;
    cr_assert_eq(rs_engine_new(&old, NULL, err, sizeof err), 0);
    apply(old, USAGE_BOOKED);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(apply_usage(old, i, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
    void *blob;
    size_t len;
    cr_assert_eq(rs_engine_export_contract(old, "M1", &blob, &len, err, sizeof err), 0);
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    cr_assert_eq(rs_state_batch_put_contract(b, 5, "M1", blob, len), 0);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(b);
    free(blob);
    rs_engine_destroy(old);

    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 5, NULL, err, sizeof err), 0, "%s", err);
    rs_engine_t *e = rs_pstate_engine(ps);
    cr_assert_eq(apply_usage(e, 17, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 500, 1, err, sizeof err), RS_APPLY_OK, "%s", err);
    size_t now = record_size(e, "M1");
    cr_assert_leq(now + 200 * 16, len, "record %zu bytes, was %zu", now, len);
    stage_commit(st, ps);
    rs_pstate_destroy(ps);
    cr_assert_eq(rs_pstate_load(&ps, st, 5, NULL, err, sizeof err), 0, "%s", err);
    e = rs_pstate_engine(ps);
    cr_assert_eq(apply_usage(e, 17, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 199, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_usage(e, 500, 1, err, sizeof err), RS_APPLY_DUPLICATE);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}

static int count_seen(void *opaque, const char *contract_id, uint64_t id_hash,
                      uint64_t content_hash, int32_t period)
{
    (void)contract_id;
    (void)id_hash;
    (void)content_hash;
    (void)period;
    ++*(int *)opaque;
    return 0;
}

static int partition_seen(rs_state_t *st, int32_t partition)
{
    char err[256];
    int n = 0;
    cr_assert_eq(rs_state_foreach_seen(st, partition, count_seen, &n, err, sizeof err), 0, "%s",
                 err);
    return n;
}

/* Usage event `id` of contract c on 2026-mm-dd, quantity q. */
static rs_apply_result_t apply_at(rs_engine_t *e, const char *c, const char *id, int mm, int dd,
                                  int q)
{
    char json[400], err[512];
    rs_event_t ev;
    snprintf(json, sizeof json,
             "{\"event_id\":\"%s\",\"type\":\"usage.recorded\",\"contract_id\":\"%s\","
             "\"occurred_at\":\"2026-%02d-%02dT12:00:00Z\",\"line_id\":\"L1\",\"quantity\":"
             "\"%d\"}",
             id, c, mm, dd, q);
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err), 0, "%s", err);
    rs_apply_result_t rc = rs_engine_apply(e, &ev, err, sizeof err);
    rs_event_clear(&ev);
    return rc;
}

static rs_apply_result_t apply_id(rs_engine_t *e, const char *c, const char *id, int mm, int q)
{
    return apply_at(e, c, id, mm, 1, q);
}

/* Usage event id of month m (0 January) number i, on day i % 28 + 1. */
static rs_apply_result_t apply_month(rs_engine_t *e, int m, int i)
{
    char id[32];
    snprintf(id, sizeof id, "m%d-%d", m, i);
    return apply_at(e, "M1", id, m + 1, i % 28 + 1, 1);
}

/* Retention's edge: pruning through January deletes exactly January's ids
 * (and the booking's, of January too); February's stay duplicates; the
 * count limit stops a pass at the end of a contract and says how many it took. */
Test(pstate, prune_seen_ids_by_period)
{
    char err[512];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 7, NULL, err, sizeof err), 0, "%s", err);
    rs_engine_t *e = rs_pstate_engine(ps);
    apply(e, USAGE_BOOKED);
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < 50; i++)
            cr_assert_eq(apply_month(e, m, i), RS_APPLY_OK);
    stage_commit(st, ps);
    cr_assert_eq(partition_seen(st, 7), 151);

    rs_state_batch_t *b;
    size_t pruned = 0;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    cr_assert_eq(
        rs_pstate_prune_seen(ps, b, 2026 * 12 + 0, 1000, NULL, NULL, &pruned, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(pruned, 51); /* January's 50 and the booking */
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(partition_seen(st, 7), 100);
    cr_assert_eq(apply_month(e, 1, 7), RS_APPLY_DUPLICATE);  /* February: kept */
    cr_assert_eq(apply_month(e, 2, 49), RS_APPLY_DUPLICATE); /* March: kept */
    cr_assert_eq(apply_month(e, 0, 7), RS_APPLY_OK);         /* January: forgotten */
    /* a limited pass stops at a contract's end: the contract's 100 ids (one
     * prune merge), none of another contract */
    cr_assert_eq(
        rs_pstate_prune_seen(ps, b, 2026 * 12 + 2, 30, NULL, NULL, &pruned, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(pruned, 100);
    cr_assert_eq(rs_state_batch_count(b), 1, "one prune merge for the contract");
    rs_state_batch_destroy(b);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}

/* ---- the bounded cache and the streaming close (rs_pstate.h C1-C3) ---- */

/* A small book in event-time order: contracts booked over 2026, invoiced
 * when booked, some paid before their invoice (they wait), and two
 * period.closed. Each entry of `out` is one JSON event (malloc'd). */
static size_t book(char ***out)
{
    size_t n = 0, cap = 1024;
    char **v = malloc(cap * sizeof *v);
    cr_assert_not_null(v);
    for (int m = 1; m <= 12; m++) {
        for (int day = 1; day <= 28; day += 3) {
            for (int i = 0; i < 60; i++) {
                char buf[768];
                int bm = 1 + i % 12, bd = 1 + (i * 7) % 27;
                if (m == bm + 2 && i % 3 == 1 && day <= bd && bd < day + 3) {
                    /* a later payment: the contract comes back from the store */
                    snprintf(buf, sizeof buf,
                             "{\"event_id\":\"q%d\",\"type\":\"payment.received\","
                             "\"contract_id\":\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT01:"
                             "00:00Z\",\"payment_id\":\"Q%d\",\"invoice_id\":\"I%d\","
                             "\"amount\":\"50.00\",\"received_on\":\"2026-%02d-%02d\"}",
                             i, i, m, bd, i, i, m, bd);
                    v[n++] = strdup(buf);
                }
                if (m == bm && day <= bd && bd < day + 3) {
                    snprintf(
                        buf, sizeof buf,
                        "{\"event_id\":\"b%d\",\"type\":\"contract.booked\",\"contract_id\":"
                        "\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT00:00:00Z\","
                        "\"customer_id\":\"K%d\",\"currency\":\"USD\",\"booked_on\":\"2026-"
                        "%02d-%02d\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\","
                        "\"recognition\":\"ratable_monthly\",\"start\":\"2026-%02d-01\","
                        "\"end\":\"2027-%02d-%02d\",\"amount\":\"%d.%02d\"}]}",
                        i, i, m, bd, i % 7, m, bd, m, m, 28 - i % 5, 1000 + 37 * i, i % 100);
                    v[n++] = strdup(buf);
                    if (i % 4 == 0) /* paid before its invoice: waits */
                        snprintf(
                            buf, sizeof buf,
                            "{\"event_id\":\"p%d\",\"type\":\"payment.received\","
                            "\"contract_id\":\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT01:"
                            "00:00Z\",\"payment_id\":\"P%d\",\"invoice_id\":\"I%d\","
                            "\"amount\":\"100.00\",\"received_on\":\"2026-%02d-%02d\"}",
                            i, i, m, bd, i, i, m, bd);
                    else
                        snprintf(buf, sizeof buf, "%s", "");
                    if (buf[0] != '\0')
                        v[n++] = strdup(buf);
                    snprintf(
                        buf, sizeof buf,
                        "{\"event_id\":\"i%d\",\"type\":\"invoice.issued\",\"contract_id\":"
                        "\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT02:00:00Z\","
                        "\"invoice_id\":\"I%d\",\"issued_on\":\"2026-%02d-%02d\",\"lines\":"
                        "[{\"line_id\":\"L\",\"amount\":\"%d.%02d\"}]}",
                        i, i, m, bd, i, m, bd, 1000 + 37 * i, i % 100);
                    v[n++] = strdup(buf);
                }
            }
        }
        if (m == 5 || m == 9) {
            char buf[256];
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"close%d\",\"type\":\"period.closed\",\"occurred_at\":"
                     "\"2026-%02d-02T00:00:00Z\",\"period\":\"2026-%02d\"}",
                     m, m, m - 1);
            v[n++] = strdup(buf);
        }
    }
    *out = v;
    return n;
}

typedef struct journal {
    char *text;
    size_t len, cap;
} journal_t;

static void on_entry(void *opaque, const rs_entry_t *en)
{
    journal_t *j = opaque;
    char line[1024];
    int k = snprintf(line, sizeof line, "%s %d %d %d %d %s %s %lld %lld %lld", en->entry_id,
                     (int)en->period, (int)en->service_period, (int)en->posted_on,
                     (int)en->kind, en->rule, en->document_id, (long long)en->billed,
                     (long long)en->recognized, (long long)en->received);
    for (int p = 0; p < en->n_postings; p++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %d:%lld:%lld",
                      (int)en->postings[p].account, (long long)en->postings[p].debit,
                      (long long)en->postings[p].credit);
    if (j->len + (size_t)k + 2 > j->cap) {
        j->cap = (j->cap + (size_t)k + 2) * 2;
        j->text = realloc(j->text, j->cap);
        cr_assert_not_null(j->text);
    }
    memcpy(j->text + j->len, line, (size_t)k);
    j->len += (size_t)k;
    j->text[j->len++] = '\n';
    j->text[j->len] = '\0';
}

static int count_chunk(void *opaque, const char *const *ids, void *const *blobs,
                       const size_t *lens, size_t n)
{
    (void)ids;
    (void)blobs;
    (void)lens;
    *(size_t *)opaque += n;
    return 0;
}

/* Sum the load, eviction, walk and chunk counts of ps into *cs. */
static void add_stats(rs_pstate_cache_stats_t *cs, const rs_pstate_t *ps)
{
    if (cs != NULL && ps != NULL)
        rs_pstate_cache_stats_add(cs, ps);
}

/* Apply the next batch (up to 40) of events [*at, to) of ev to ps as the
 * worker does: fetch (lazy), apply, event-time advance. */
static void apply_batch(rs_pstate_t *ps, char **ev, size_t *at, size_t to, int lazy)
{
    char err[512];
    rs_engine_t *e = rs_pstate_engine(ps);
    for (size_t k = 0; k < 40 && *at < to; k++, (*at)++) {
        rs_event_t x;
        rs_event_init(&x);
        cr_assert_eq(rs_codec_json_decode(ev[*at], strlen(ev[*at]), &x, err, sizeof err), 0,
                     "%s", err);
        if (lazy && x.contract_id[0] != '\0')
            cr_assert_eq(rs_pstate_fetch(ps, x.contract_id, err, sizeof err), 0, "%s", err);
        int rc = rs_engine_apply(e, &x, err, sizeof err);
        cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_PENDING, "%s: %s", ev[*at], err);
        rs_period_t through = rs_period_of(x.occurred_on) - 1;
        rs_period_t hz = rs_engine_horizon(e);
        if (hz == RS_PERIOD_NONE || through > hz)
            cr_assert_eq(rs_engine_advance(e, through), 0, "%s", rs_pstate_close_error(ps));
        rs_event_clear(&x);
    }
}

/* Run events [from, to) of ev through partition 0 of the store at path in
 * batches of 40 events as the worker does (fetch, apply, event-time
 * advance; stage and commit; evict), reopening the partition every few
 * batches (a restart). lazy: rs_pstate_open with cache_bytes and chunks of
 * `chunk` contracts; else rs_pstate_load (the whole partition in memory). */
/* The close hooks' keep_written for run_events (exactly_once's way). */
static int keep_written;

static void run_events(const char *path, char **ev, size_t from, size_t to, int lazy,
                       size_t cache_bytes, size_t chunk, journal_t *j, size_t *chunked,
                       rs_pstate_cache_stats_t *cs)
{
    char err[512];
    rs_state_opts_t o = {0};
    rs_state_t *st;
    rs_pstate_t *ps = NULL;
    rs_pstate_cache_stats_t last;
    o.path = path;
    o.create_if_missing = 1;
    o.sync = RS_STATE_SYNC_OFF;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), 0, "%s", err);
    if (cs != NULL)
        memset(cs, 0, sizeof *cs);
    for (size_t at = from; at < to;) {
        /* a fresh load every few batches: a restart between batches */
        if (ps == NULL || (at / 40) % 5 == 0) {
            add_stats(cs, ps);
            rs_pstate_destroy(ps);
            if (lazy)
                cr_assert_eq(rs_pstate_open(&ps, st, 0, NULL, cache_bytes, err, sizeof err), 0);
            else
                cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof err), 0, "%s", err);
            rs_engine_set_sink(rs_pstate_engine(ps), on_entry, j);
            rs_pstate_close_hooks_t h = {count_chunk, chunked, chunk, keep_written};
            if (lazy)
                rs_pstate_set_close_hooks(ps, &h);
        }
        apply_batch(ps, ev, &at, to, lazy);
        rs_state_batch_t *b;
        cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
        cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
        rs_state_batch_destroy(b);
        if (lazy)
            rs_pstate_evict(ps);
    }
    add_stats(cs, ps);
    if (cs != NULL && ps != NULL)
        rs_pstate_cache_stats(ps, &last), cs->contracts = last.contracts;
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}

static void free_events(char **ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

/* run_events over the whole book(). */
static void run_book(const char *path, int lazy, size_t cache_bytes, size_t chunk, journal_t *j,
                     size_t *chunked, rs_pstate_cache_stats_t *cs)
{
    char **ev;
    size_t n = book(&ev);
    run_events(path, ev, 0, n, lazy, cache_bytes, chunk, j, chunked, cs);
    free_events(ev, n);
}

/* A tiny cache (nothing kept between batches, closes in chunks of 7) and a
 * large one give the journal of the whole book in memory, entry for entry
 * and byte for byte, in the same order. */
Test(pstate, cache_gives_the_same_journal)
{
    char a[96], b[96], c[96];
    journal_t ja = {0}, jb = {0}, jc = {0};
    size_t chb = 0, chc = 0, chx = 0;
    rs_pstate_cache_stats_t sb, sc;
    snprintf(a, sizeof a, "%s/eager", dir);
    snprintf(b, sizeof b, "%s/tiny", dir);
    snprintf(c, sizeof c, "%s/large", dir);
    run_book(a, 0, 0, 0, &ja, &chx, NULL);
    cr_assert_eq(chx, 0);
    run_book(b, 1, 0, 7, &jb, &chb, &sb);
    run_book(c, 1, 64u << 20, 7, &jc, &chc, &sc);
    cr_assert_gt(ja.len, 10000, "the book posts entries");
    cr_assert_str_eq(jb.text, ja.text, "tiny cache: journal differs");
    cr_assert_str_eq(jc.text, ja.text, "large cache: journal differs");
    /* the tiny cache kept nothing, loaded contracts back and closed from
     * the store in chunks; the large one evicted nothing */
    cr_assert_eq(sb.contracts, 0);
    cr_assert_gt(sb.loads, 5, "loads %llu evicted %llu walked %llu chunks %llu",
                 (unsigned long long)sb.loads, (unsigned long long)sb.evicted,
                 (unsigned long long)sb.walked, (unsigned long long)sb.chunks);
    cr_assert_gt(sb.evicted, 50);
    cr_assert_gt(sb.walked, 100);
    cr_assert_gt(chb, 100);
    cr_assert_eq(sc.evicted, 0);
    free(ja.text);
    free(jb.text);
    free(jc.text);
}

/* The allocator's block for a request: the larger of glibc's chunk and
 * jemalloc's size class, exactly (rs_engine.h). */
Test(pstate, alloc_size_is_the_allocators_block)
{
    static const size_t in[] = {0,   1,   8,   24,   25,   100,  128,   129,   160,
                                200, 256, 257, 1000, 1025, 5000, 20000, 16384, 16385};
    static const size_t out[] = {0,   32,  32,  32,   48,   112,  144,   160,   176,
                                 224, 272, 320, 1024, 1280, 5120, 20480, 16400, 20480};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        cr_assert_eq(rs_engine_alloc_size(in[i]), out[i], "alloc_size(%zu) = %zu, not %zu",
                     in[i], rs_engine_alloc_size(in[i]), out[i]);
    /* never below the request, and monotonic */
    for (size_t n = 1, last = 0; n < 70000; n++) {
        size_t a = rs_engine_alloc_size(n);
        cr_assert_geq(a, n + 8, "%zu", n);
        cr_assert_geq(a, last, "%zu", n);
        last = a;
    }
}

/* The cache's count (rs_pstate_cache_stats' bytes) covers every contract
 * the engine holds, each by rs_engine_contract_bytes (the allocator's
 * blocks) plus its node, and after every evict stays within the bound;
 * before the evict, within the bound plus what the batch fetched. */
Test(pstate, cache_bound_holds_by_the_allocators_count)
{
    char err[512], **ev;
    size_t n = book(&ev), limit = 12 * 1024, max_cached = 0;
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_open(&ps, st, 0, NULL, limit, err, sizeof err), 0, "%s", err);
    rs_engine_t *e = rs_pstate_engine(ps);
    for (size_t at = 0; at < n;) {
        apply_batch(ps, ev, &at, n, 1);
        rs_state_batch_t *b;
        cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
        cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
        rs_state_batch_destroy(b);
        rs_pstate_evict(ps);
        /* the engine's contracts against the cache's count */
        char **ids;
        size_t nc = rs_engine_contract_ids(e, &ids), sum = 0;
        cr_assert_neq(nc, (size_t)-1);
        for (size_t i = 0; i < nc; i++) {
            size_t cb = rs_engine_contract_bytes(e, ids[i]);
            /* a contract is at least its own block, its id's and its share */
            cr_assert_geq(
                cb, rs_engine_alloc_size(strlen(ids[i]) + 1) + RS_ENGINE_CONTRACT_SHARE + 64,
                "%s: %zu", ids[i], cb);
            sum += cb + rs_engine_alloc_size(strlen(ids[i]) + 1); /* + the node's id copy */
        }
        free(ids);
        rs_pstate_cache_stats_t cs;
        rs_pstate_cache_stats(ps, &cs);
        cr_assert_eq(cs.contracts, nc, "tracked %zu, in memory %zu", cs.contracts, nc);
        cr_assert_geq(cs.bytes, sum, "count %zu below the contracts' %zu", cs.bytes, sum);
        cr_assert_leq(cs.bytes, limit, "count %zu over the bound %zu", cs.bytes, limit);
        if (nc > max_cached)
            max_cached = nc;
    }
    /* the bound held some contracts, not all 60 */
    cr_assert_gt(max_cached, 2, "%zu", max_cached);
    cr_assert_lt(max_cached, 30, "%zu", max_cached);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
    free_events(ev, n);
}

/* A seen store that has no id: an engine with it keeps applied event ids
 * out of its contract records, as the partition's engine does (their ids
 * are in the store's seen keys), so their records can be compared. */
static int no_seen_ids(void *opaque, const char *contract_id, uint64_t id_hash,
                       uint64_t *content_hash)
{
    (void)opaque;
    (void)contract_id;
    (void)id_hash;
    (void)content_hash;
    return 1;
}

/* A close over a store none of whose contracts is in memory: every one is
 * recognized; full chunks are committed and forgotten at once, the rest
 * with the batch; the store then holds what an engine holding them all
 * would hold. */
Test(pstate, close_with_nothing_cached)
{
    char err[512], **ev;
    size_t n = book(&ev), chunked = 0;
    rs_state_t *st = open_store();
    rs_engine_t *all;
    cr_assert_eq(rs_engine_new(&all, NULL, err, sizeof err), 0);
    rs_engine_set_seen_store(all, no_seen_ids, NULL);
    /* the book up to June into the store, nothing recognized past May */
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 1, NULL, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        rs_event_t x;
        rs_event_init(&x);
        cr_assert_eq(rs_codec_json_decode(ev[i], strlen(ev[i]), &x, err, sizeof err), 0);
        if (x.occurred_on < rs_period_first_day(2026 * 12 + 5)) {
            rs_engine_apply(rs_pstate_engine(ps), &x, err, sizeof err);
            rs_engine_apply(all, &x, err, sizeof err);
        }
        rs_event_clear(&x);
    }
    rs_state_batch_t *b, *b2;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    rs_pstate_destroy(ps);
    /* the close, from the store */
    cr_assert_eq(rs_pstate_open(&ps, st, 1, NULL, 0, err, sizeof err), 0);
    rs_pstate_close_hooks_t h = {count_chunk, &chunked, 16, 0};
    rs_pstate_set_close_hooks(ps, &h);
    journal_t jl = {0}, je = {0};
    rs_engine_set_sink(rs_pstate_engine(ps), on_entry, &jl);
    rs_engine_set_sink(all, on_entry, &je);
    cr_assert_eq(rs_engine_advance(rs_pstate_engine(ps), 2026 * 12 + 10), 0, "%s",
                 rs_pstate_close_error(ps));
    cr_assert_eq(rs_engine_advance(all, 2026 * 12 + 10), 0);
    rs_engine_stats_t s;
    rs_engine_get_stats(rs_pstate_engine(ps), &s);
    /* booked before June: i % 12 < 5, 25 of the 60; one chunk of 16 was
     * committed, the last 9 wait in memory for the batch's commit */
    cr_assert_eq(s.contracts, 9, "%llu contracts in memory", (unsigned long long)s.contracts);
    cr_assert_gt(je.len, 1000);
    cr_assert_str_eq(jl.text, je.text);
    rs_pstate_cache_stats_t cs;
    rs_pstate_cache_stats(ps, &cs);
    cr_assert_eq(cs.walked, 25);
    cr_assert_eq(chunked, 16, "a full chunk was committed on its own");
    cr_assert_eq(cs.chunks, 1);
    cr_assert_eq(rs_state_batch_new(&b2, err, sizeof err), 0);
    cr_assert_eq(rs_pstate_stage(ps, b2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b2, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(b2);
    cr_assert_eq(rs_pstate_evict(ps), 9, "after the commit the cache lets them go");
    rs_engine_get_stats(rs_pstate_engine(ps), &s);
    cr_assert_eq(s.contracts, 0);
    rs_pstate_destroy(ps);
    /* the store now equals the engine that held everything */
    cr_assert_eq(rs_pstate_load(&ps, st, 1, NULL, err, sizeof err), 0);
    for (int i = 0; i < 60; i++) {
        char id[16];
        if (i % 12 >= 5)
            continue;
        void *x, *y;
        size_t nx, ny;
        snprintf(id, sizeof id, "C%03d", i);
        cr_assert_eq(
            rs_engine_export_contract(rs_pstate_engine(ps), id, &x, &nx, err, sizeof err), 0,
            "%s", id);
        cr_assert_eq(rs_engine_export_contract(all, id, &y, &ny, err, sizeof err), 0);
        cr_assert(nx == ny && memcmp(x, y, nx) == 0, "%s differs", id);
        free(x);
        free(y);
    }
    rs_pstate_destroy(ps);
    rs_engine_destroy(all);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
    free(jl.text);
    free(je.text);
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

/* ---- the lazy close (rs_pstate.h C2-C4) ---- */

static const char *occurred_at(const char *json)
{
    const char *p = strstr(json, "\"occurred_at\":\"");
    cr_assert_not_null(p, "%s", json);
    return p + 15;
}

/* book() with more of what a close must get right for contracts it does
 * not write back: cancellations, credit notes, catch-up amendments, and
 * payments that wait over month ends for an invoice issued later; merged
 * in event-time order. */
static size_t book_lazy(char ***out)
{
    char **base, **x = malloc(256 * sizeof *x), buf[768];
    size_t nb = book(&base), nx = 0;
    cr_assert_not_null(x);
    for (int i = 0; i < 60; i++) {
        int bm = 1 + i % 12, bd = 1 + (i * 7) % 27;
        if (i % 10 == 3 && bm + 3 <= 12)
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"x%d\",\"type\":\"contract.cancelled\",\"contract_id\":"
                     "\"C%03d\",\"occurred_at\":\"2026-%02d-10T03:00:00Z\",\"effective_on\":"
                     "\"2026-%02d-15\"}",
                     i, i, bm + 3, bm + 3);
        else if (i % 10 == 5 && bm + 2 <= 12)
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"n%d\",\"type\":\"credit_note.issued\",\"contract_id\":"
                     "\"C%03d\",\"occurred_at\":\"2026-%02d-20T03:00:00Z\",\"credit_note_id\":"
                     "\"N%d\",\"invoice_id\":\"I%d\",\"issued_on\":\"2026-%02d-20\",\"reason\":"
                     "\"error\",\"lines\":[{\"line_id\":\"L\",\"amount\":\"100.00\"}]}",
                     i, i, bm + 2, i, i, bm + 2);
        else if (i % 10 == 7 && bm + 4 <= 12)
            snprintf(
                buf, sizeof buf,
                "{\"event_id\":\"a%d\",\"type\":\"contract.amended\",\"contract_id\":"
                "\"C%03d\",\"occurred_at\":\"2026-%02d-01T03:00:00Z\",\"effective_on\":"
                "\"2026-%02d-01\",\"treatment\":\"catch_up\",\"lines\":[{\"line_id\":\"L\","
                "\"product\":\"P\",\"recognition\":\"ratable_monthly\",\"start\":\"2026-%02d-"
                "01\",\"end\":\"2027-%02d-%02d\",\"amount\":\"2400.00\"}]}",
                i, i, bm + 4, bm + 4, bm, bm, 28 - i % 5);
        else
            buf[0] = '\0';
        if (buf[0] != '\0')
            x[nx++] = strdup(buf);
        if (i % 10 == 9 && bm + 2 <= 12) { /* waits over a month end */
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"w%d\",\"type\":\"payment.received\",\"contract_id\":"
                     "\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT04:00:00Z\",\"payment_id\":"
                     "\"W%d\",\"invoice_id\":\"J%d\",\"amount\":\"30.00\",\"received_on\":"
                     "\"2026-%02d-%02d\"}",
                     i, i, bm + 1, bd, i, i, bm + 1, bd);
            x[nx++] = strdup(buf);
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"j%d\",\"type\":\"invoice.issued\",\"contract_id\":"
                     "\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT04:00:00Z\",\"invoice_id\":"
                     "\"J%d\",\"issued_on\":\"2026-%02d-%02d\",\"lines\":[{\"line_id\":\"L\","
                     "\"amount\":\"30.00\"}]}",
                     i, i, bm + 2, bd, i, bm + 2, bd);
            x[nx++] = strdup(buf);
        }
    }
    /* December closed after its last month end: the records a reader
     * catches up then were behind a close made with August closed */
    x[nx++] = strdup("{\"event_id\":\"close11\",\"type\":\"period.closed\",\"occurred_at\":"
                     "\"2026-12-28T09:00:00Z\",\"period\":\"2026-11\"}");
    /* merge: stable, by occurred_at (ISO text sorts by time) */
    char **v = malloc((nb + nx) * sizeof *v);
    cr_assert_not_null(v);
    size_t n = 0, a = 0;
    for (size_t b = 0; b < nx; b++) {
        size_t best = b;
        for (size_t k = b + 1; k < nx; k++)
            if (strncmp(occurred_at(x[k]), occurred_at(x[best]), 20) < 0)
                best = k;
        char *t = x[b];
        x[b] = x[best];
        x[best] = t;
    }
    for (size_t b = 0; b < nx; b++) {
        while (a < nb && strncmp(occurred_at(base[a]), occurred_at(x[b]), 20) <= 0)
            v[n++] = base[a++];
        v[n++] = x[b];
    }
    while (a < nb)
        v[n++] = base[a++];
    free(base);
    free(x);
    *out = v;
    return n;
}

/* Every contract of the store at path, loaded as the readers load them
 * (C4: rs_pstate_import_all into a reader's engine, or rs_pstate_load with
 * the partition's meta when `own_meta`), exported, as one hex text. */
static char *store_contracts(const char *path, int own_meta)
{
    char err[512];
    rs_state_opts_t o = {0};
    rs_state_t *st;
    rs_engine_t *e = NULL;
    rs_pstate_t *ps = NULL;
    o.path = path;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), 0, "%s", err);
    if (own_meta) {
        cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof err), 0, "%s", err);
    } else {
        cr_assert_eq(rs_engine_new(&e, NULL, err, sizeof err), 0);
        rs_engine_set_seen_store(e, no_seen_ids, NULL);
        cr_assert_eq(rs_pstate_import_all(st, e, err, sizeof err), 0, "%s", err);
    }
    rs_engine_t *from = own_meta ? rs_pstate_engine(ps) : e;
    journal_t t = {0};
    char **ids;
    size_t n = rs_engine_contract_ids(from, &ids);
    cr_assert_gt(n, 50);
    for (size_t i = 0; i < n; i++) {
        void *blob;
        size_t len;
        cr_assert_eq(rs_engine_export_contract(from, ids[i], &blob, &len, err, sizeof err), 0);
        if (t.len + 2 * len + 2 > t.cap) {
            t.cap = (t.cap + 2 * len + 2) * 2;
            t.text = realloc(t.text, t.cap);
            cr_assert_not_null(t.text);
        }
        for (size_t k = 0; k < len; k++)
            t.len += (size_t)sprintf(t.text + t.len, "%02x", ((unsigned char *)blob)[k]);
        t.text[t.len++] = '\n';
        t.text[t.len] = '\0';
        free(blob);
    }
    free(ids);
    rs_engine_destroy(e);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
    return t.text;
}

/* How many raw records of partition 0 are behind: imported without a
 * catch-up, they differ from the caught-up ones. */
static int count_behind(void *opaque, const char *id, const void *blob, size_t len)
{
    size_t *n = opaque;
    char err[256];
    rs_engine_t *e;
    cr_assert_eq(rs_engine_new(&e, NULL, err, sizeof err), 0);
    cr_assert_eq(rs_engine_import_contract(e, blob, len, err, sizeof err), 0, "%s", err);
    rs_engine_advance(e, 2026 * 12 + 10); /* the book's last horizon: 2026-11 */
    rs_engine_stats_t s;
    rs_engine_get_stats(e, &s);
    (void)id;
    *n += s.entries > 0;
    rs_engine_destroy(e);
    return 0;
}

/* Several lazy closes (twelve month ends, two period.closed between them),
 * contracts touched and untouched between them (some long enough to be
 * written back: RS_PSTATE_MAX_LAG), cancelled, credited,
 * amended, with payments waiting over month ends, restarts every few
 * batches, and a restore (the store copied, as a changelog restore writes
 * the same records, and the book finished on the copy): the journal is the
 * plain engine's (what `revstream replay` posts), entry for entry and byte
 * for byte, and every contract as a reader loads it equals the eager
 * store's — while the lazy store's records were left behind. */
Test(pstate, lazy_closes_match_the_eager_close_and_replay)
{
    char **ev, err[512], a[96], b[96], c[96], d[600], x[96];
    size_t n = book_lazy(&ev), ch = 0;
    journal_t jr = {0}, ja = {0}, jb = {0}, jc = {0}, jx = {0};
    rs_pstate_cache_stats_t sb, sc, sd, sx;

    /* replay: one plain engine, every event, the event-time month ends */
    rs_engine_t *r;
    cr_assert_eq(rs_engine_new(&r, NULL, err, sizeof err), 0);
    rs_engine_set_sink(r, on_entry, &jr);
    for (size_t i = 0; i < n; i++) {
        rs_event_t x;
        rs_event_init(&x);
        cr_assert_eq(rs_codec_json_decode(ev[i], strlen(ev[i]), &x, err, sizeof err), 0);
        int rc = rs_engine_apply(r, &x, err, sizeof err);
        cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_PENDING, "%s: %s", ev[i], err);
        rs_period_t through = rs_period_of(x.occurred_on) - 1;
        if (rs_engine_horizon(r) == RS_PERIOD_NONE || through > rs_engine_horizon(r))
            cr_assert_eq(rs_engine_advance(r, through), 0);
        rs_event_clear(&x);
    }
    rs_engine_destroy(r);

    snprintf(a, sizeof a, "%s/eager", dir);
    snprintf(b, sizeof b, "%s/lazy", dir);
    snprintf(c, sizeof c, "%s/restored", dir);
    run_events(a, ev, 0, n, 0, 0, 0, &ja, &ch, NULL);
    run_events(b, ev, 0, n, 1, 0, 7, &jb, &ch, &sb);
    /* half the book, a restore into a new store, the rest there */
    run_events(c, ev, 0, n / 2, 1, 0, 5, &jc, &ch, &sc);
    snprintf(d, sizeof d, "cp -r %s %s.copy && rm -rf %s && mv %s.copy %s", c, c, c, c, c);
    cr_assert_eq(system(d), 0);
    run_events(c, ev, n / 2, n, 1, 64u << 20, 5, &jc, &ch, &sd);
    /* exactly_once's way: no chunk commits, records to write back kept */
    snprintf(x, sizeof x, "%s/keep", dir);
    keep_written = 1;
    run_events(x, ev, 0, n, 1, 0, 7, &jx, &ch, &sx);
    keep_written = 0;

    cr_assert_gt(jr.len, 20000, "the book posts entries");
    cr_assert_str_eq(ja.text, jr.text, "eager store: journal differs from replay");
    cr_assert_str_eq(jb.text, jr.text, "lazy closes: journal differs from replay");
    cr_assert_str_eq(jc.text, jr.text, "lazy closes and a restore: journal differs");
    cr_assert_str_eq(jx.text, jr.text, "no chunk commits: journal differs");
    cr_assert_eq(sx.written, 0, "a chunk committed with keep_written");
    /* the closes were lazy: records were read behind and caught up */
    cr_assert_gt(sb.caught_up, 100, "caught up %llu", (unsigned long long)sb.caught_up);
    cr_assert_gt(sb.walked, 100, "walked %llu", (unsigned long long)sb.walked);
    cr_assert_gt(sd.caught_up, 10);
    /* ... and those idle for RS_PSTATE_MAX_LAG month ends written back */
    cr_assert_gt(sb.written, 10, "written back %llu", (unsigned long long)sb.written);
    /* every contract, as readers load it, is the eager store's */
    for (int own = 0; own < 2; own++) {
        char *ta = store_contracts(a, own), *tb = store_contracts(b, own),
             *tc = store_contracts(c, own), *tx = store_contracts(x, own);
        cr_assert_str_eq(tb, ta, "lazy store: contracts differ from the eager store's (%s)",
                         own ? "rs_pstate_load" : "rs_pstate_import_all");
        cr_assert_str_eq(tc, ta, "restored store: contracts differ from the eager store's");
        cr_assert_str_eq(tx, ta, "no chunk commits: contracts differ from the eager store's");
        free(ta);
        free(tb);
        free(tc);
        free(tx);
    }
    /* ... while the lazy store's own records are behind (not written back):
     * a plain advance of a raw record still posts; none of the eager's */
    size_t behind_a = 0, behind_b = 0;
    rs_state_opts_t o = {0};
    rs_state_t *st;
    o.path = a;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_foreach_contract(st, 0, count_behind, &behind_a, err, sizeof err), 0);
    rs_state_destroy(st);
    o.path = b;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_foreach_contract(st, 0, count_behind, &behind_b, err, sizeof err), 0);
    rs_state_destroy(st);
    cr_assert_eq(behind_a, 0, "%zu eager records behind", behind_a);
    cr_assert_gt(behind_b, 10, "%zu lazy records behind", behind_b);
    free(jr.text);
    free(ja.text);
    free(jb.text);
    free(jc.text);
    free(jx.text);
    free_events(ev, n);
}

/* ---- seen ids packed per contract (state layout 3) ---- */

/* The worker's path (lazy open, fetch, stage, commit, evict): a sub-batch
 * that applied 150 events to 3 contracts stages 3 seen merges; a
 * duplicate inside the sub-batch, after its commit (the set kept and
 * updated), after the contract was evicted and fetched again, and after
 * a restart is found; a prune staged for a contract is applied to its kept
 * set too (a pruned id is new again at once, exactly as after a reload). */
Test(pstate, a_sub_batch_stages_one_seen_merge_per_contract)
{
    static const char *const cs[] = {"M1", "M2", "M3"};
    char err[512], id[32], booked[600];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_open(&ps, st, 2, NULL, 1u << 20, err, sizeof err), 0, "%s", err);
    rs_engine_t *e = rs_pstate_engine(ps);
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(rs_pstate_fetch(ps, cs[c], err, sizeof err), 0, "%s", err);
        snprintf(booked, sizeof booked, "%s", USAGE_BOOKED);
        memcpy(strstr(booked, "\"M1\"") + 1, cs[c], 2);
        memcpy(strstr(booked, "\"book\"") + 1, cs[c], 2); /* event ids differ */
        apply(e, booked);
    }
    stage_commit(st, ps);
    rs_pstate_evict(ps);
    for (int c = 0; c < 3; c++) {
        cr_assert_eq(rs_pstate_fetch(ps, cs[c], err, sizeof err), 0, "%s", err);
        for (int i = 0; i < 50; i++) {
            snprintf(id, sizeof id, "%s-%d", cs[c], i);
            cr_assert_eq(apply_id(e, cs[c], id, 1 + i % 2, 1), RS_APPLY_OK);
        }
        cr_assert_eq(apply_id(e, cs[c], "M1-3", 2, 1),
                     c == 0 ? RS_APPLY_DUPLICATE : RS_APPLY_OK,
                     "a duplicate within the sub-batch");
    }
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    cr_assert_eq(rs_pstate_stage_seen(ps, b, RS_PERIOD_NONE, NULL, NULL, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(rs_state_batch_count(b), 3, "one merge per contract for 152 ids");
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    stage_commit(st, ps);
    rs_pstate_evict(ps);
    /* after the commit: the kept sets hold them */
    cr_assert_eq(apply_id(e, "M2", "M2-7", 2, 1), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_id(e, "M2", "M2-7", 2, 9), RS_APPLY_REJECTED, "conflicting content");
    cr_assert_eq(partition_seen(st, 2), 3 + 150 + 2);
    /* prune January (ids 0, 2, 4... and the bookings): staged and applied
     * to the kept sets */
    size_t pruned = 0;
    cr_assert_eq(
        rs_pstate_prune_seen(ps, b, 2026 * 12 + 0, 1000, NULL, NULL, &pruned, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(pruned, 3 * 26);
    cr_assert_eq(rs_state_batch_count(b), 3, "one prune merge per contract");
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(partition_seen(st, 2), 150 + 2 - 3 * 25);
    cr_assert_eq(apply_id(e, "M3", "M3-4", 1, 1), RS_APPLY_OK, "pruned: new again");
    cr_assert_eq(apply_id(e, "M3", "M3-5", 2, 1), RS_APPLY_DUPLICATE, "February kept");
    stage_commit(st, ps);
    /* evicted (a 1-byte cache) and fetched again: read from the store */
    rs_pstate_destroy(ps);
    cr_assert_eq(rs_pstate_open(&ps, st, 2, NULL, 1, err, sizeof err), 0, "%s", err);
    e = rs_pstate_engine(ps);
    cr_assert_eq(rs_pstate_fetch(ps, "M1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(apply_id(e, "M1", "M1-9", 2, 1), RS_APPLY_DUPLICATE);
    stage_commit(st, ps);
    cr_assert_eq(rs_pstate_evict(ps), 1);
    cr_assert_eq(rs_pstate_fetch(ps, "M1", err, sizeof err), 0, "%s", err);
    cr_assert_eq(apply_id(e, "M1", "M1-11", 2, 1), RS_APPLY_DUPLICATE);
    cr_assert_eq(apply_id(e, "M1", "M1-10", 1, 1), RS_APPLY_OK, "pruned January");
    cr_assert_eq(rs_pstate_fetch(ps, "M3", err, sizeof err), 0, "%s", err);
    cr_assert_eq(apply_id(e, "M3", "M3-4", 1, 1), RS_APPLY_DUPLICATE, "re-applied, kept");
    rs_state_batch_destroy(b);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}

/* The reference order: by contract id (strcmp), ties by position. */
static int cmp_ref(const void *a, const void *b)
{
    const rs_seen_id_t *x = *(const rs_seen_id_t *const *)a,
                       *y = *(const rs_seen_id_t *const *)b;
    int c = strcmp(x->contract_id, y->contract_id);
    return c != 0 ? c : (x->id_hash > y->id_hash) - (x->id_hash < y->id_hash);
}

/* rs_pstate_sort_seen gives strcmp's order, each contract's ids in input
 * order, whatever the ids share: a long common prefix, equal 8-byte keys
 * with different tails, ids that are prefixes of others, bytes over 0x7f,
 * several copies of one id, an empty id. */
Test(pstate, seen_ids_sort_by_contract_stably)
{
    static const char *const shapes[] = {
        "C-%07d",
        "customer-europe-west-contract-%05d",
        "X%d",
        "ab%dcdefghijkl",
        "\xc3\xa9t\xc3\xa9-%d",
        "%d",
    };
    enum { N = 3000 };
    char(*names)[64] = malloc(N * sizeof *names);
    rs_seen_id_t *v = malloc(N * sizeof *v);
    const rs_seen_id_t **got = malloc(N * sizeof *got), **want = malloc(N * sizeof *want);
    cr_assert(names && v && got && want);
    unsigned seed = 12345;
    for (int round = 0; round < 40; round++) {
        int n = round < 10 ? round : 1 + (int)(seed % N), ncontracts = 1 + round * 7;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            int c = (int)((seed >> 8) % (unsigned)ncontracts);
            const char *shape = shapes[(round + (c % 3 == 0 ? c : 0)) % 6];
            if (c == 5)
                names[i][0] = '\0';
            else
                snprintf(names[i], sizeof names[i], shape, c * 37);
            /* ids of one contract: one copy when consecutive, else new */
            v[i].contract_id =
                i > 0 && strcmp(names[i], names[i - 1]) == 0 ? v[i - 1].contract_id : names[i];
            v[i].id_hash = (uint64_t)i; /* the input position */
            got[i] = want[i] = &v[i];
        }
        qsort(want, (size_t)n, sizeof *want, cmp_ref);
        cr_assert_eq(rs_pstate_sort_seen(got, (size_t)n), 0);
        for (int i = 0; i < n; i++)
            cr_assert_eq(got[i], want[i], "round %d: position %d: %s (%llu), want %s (%llu)",
                         round, i, got[i]->contract_id, (unsigned long long)got[i]->id_hash,
                         want[i]->contract_id, (unsigned long long)want[i]->id_hash);
    }
    free(names);
    free(v);
    free(got);
    free(want);
}

/* The changelog's packed seen-id key is "S/<contract>/<digest>", the digest
 * (FNV-1a over the ids' hashes, 16 lowercase hex digits) exactly as
 * snprintf("S/%s/%016llx") wrote it before the key was built by hand; a
 * buffer one byte short of the key and its NUL is refused. */
Test(pstate, changelog_seen_pack_key_is_contract_and_digest)
{
    const rs_seen_id_t ids[] = {{"C-12", 0x0123456789abcdefULL, 7, 300, 0},
                                {"C-12", 0xfedcba9876543210ULL, 8, 301, 0},
                                {"C-12", 0x00000000000000a5ULL, 9, 302, 0}};
    char key[64];
    void *v = NULL;
    size_t vlen = 0;
    for (size_t n = 1; n <= 3; n++) { /* keys of 1, 2 and 3 ids differ */
        uint64_t d = RS_FNV1A64_SHORT_BASIS;
        for (size_t i = 0; i < n; i++)
            d = (d ^ ids[i].id_hash) * RS_FNV1A64_PRIME;
        char w[64];
        snprintf(w, sizeof w, "S/C-12/%016llx", (unsigned long long)d);
        cr_assert_eq(rs_changelog_encode_seen_pack("C-12", ids, n, key, sizeof key, &v, &vlen),
                     0);
        cr_assert_str_eq(key, w);
        cr_assert_eq(vlen, RS_CHANGELOG_SEEN_PACK_HDR + n * RS_CHANGELOG_SEEN_PACK_ID);
        free(v);
    }
    char want[64]; /* the 3-id key: exactly its length and NUL fit */
    snprintf(want, sizeof want, "%s", key);
    size_t need = strlen(want) + 1; /* 4 + 19 + 1 */
    cr_assert_eq(rs_changelog_encode_seen_pack("C-12", ids, 3, key, need, &v, &vlen), 0);
    cr_assert_str_eq(key, want);
    free(v);
    cr_assert_eq(rs_changelog_encode_seen_pack("C-12", ids, 3, key, need - 1, &v, &vlen), -1);
}
