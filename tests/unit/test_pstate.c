/*
 * test_pstate.c — a partition's engine survives the state store: what is
 * staged and committed loads back record for record, and the batch plan
 * protocol (save, find at load, clear with the commit) holds.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Usage event id of month m (0 January) number i, on day i % 28 + 1. */
static rs_apply_result_t apply_month(rs_engine_t *e, int m, int i)
{
    char json[320], err[512];
    rs_event_t ev;
    snprintf(json, sizeof json,
             "{\"event_id\":\"m%d-%d\",\"type\":\"usage.recorded\",\"contract_id\":\"M1\","
             "\"occurred_at\":\"2026-%02d-%02dT12:00:00Z\",\"line_id\":\"L1\",\"quantity\":"
             "\"1\"}",
             m, i, m + 1, i % 28 + 1);
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err), 0, "%s", err);
    rs_apply_result_t rc = rs_engine_apply(e, &ev, err, sizeof err);
    rs_event_clear(&ev);
    return rc;
}

/* Retention's edge: pruning through January deletes exactly January's ids
 * (and the booking's, of January too); February's stay duplicates; the
 * count limit stops a pass early and says how many it took. */
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
    /* a limited pass */
    cr_assert_eq(
        rs_pstate_prune_seen(ps, b, 2026 * 12 + 2, 30, NULL, NULL, &pruned, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(pruned, 30);
    rs_state_batch_destroy(b);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}
