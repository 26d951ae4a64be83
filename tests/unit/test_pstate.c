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
