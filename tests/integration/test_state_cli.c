/*
 * test_state_cli.c — `revstream state partitions|show|checkpoint` against a
 * store written through rs_pstate, as a worker writes it.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rs_pstate.h"
#include "rs_test_util.h"

static char dir[64], out[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rs_statecli_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(out, sizeof(out), "%s-checkpoint", dir);
}

static void teardown(void)
{
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, out);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(state_cli, .init = setup, .fini = teardown);

/* Write two partitions' state the way a worker commits a batch. */
static void make_store(void)
{
    static const char *events[] = {
        "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"C-42\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"customer_id\":\"ACME\",\"currency\":"
        "\"USD\","
        "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"saas\",\"product\":\"SaaS\","
        "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
        "\"amount\":\"12000.00\"}]}",
        "{\"event_id\":\"i\",\"type\":\"invoice.issued\",\"contract_id\":\"C-42\","
        "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"invoice_id\":\"I-1\",\"issued_on\":"
        "\"2026-01-01\",\"lines\":[{\"line_id\":\"saas\",\"amount\":\"12000.00\"}]}",
        "{\"event_id\":\"p\",\"type\":\"payment.received\",\"contract_id\":\"C-9\","
        "\"occurred_at\":\"2026-02-01T00:00:00Z\",\"payment_id\":\"P\",\"invoice_id\":\"I-9\","
        "\"amount\":\"5.00\",\"received_on\":\"2026-02-01\"}",
        "{\"event_id\":\"close\",\"type\":\"period.closed\",\"occurred_at\":"
        "\"2026-04-01T00:00:00Z\",\"period\":\"2026-03\"}",
    };
    rs_state_opts_t o = {0};
    char err[512];
    rs_state_t *st;
    o.path = dir;
    o.create_if_missing = 1;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof(err)), 0, "%s", err);
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 2, NULL, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        rs_event_t ev;
        rs_event_init(&ev);
        cr_assert_eq(rs_codec_json_decode(events[i], strlen(events[i]), &ev, err, sizeof(err)),
                     0);
        int rc = rs_engine_apply(rs_pstate_engine(ps), &ev, err, sizeof(err));
        cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_PENDING, "%s", err);
        rs_event_clear(&ev);
    }
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 2, 17), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "C-42", "contracts", 16), 0);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof(err)), 0, "%s", err);
    rs_state_batch_destroy(b);
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
}

/* Run the binary; return its exit status and stdout (malloc'd). */
static int run(char **output, const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(cmd, sizeof(cmd), "%s/revstream ", RS_BINARY_DIR);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>/dev/null", sizeof(cmd) - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len - 1, p)) > 0)
        len += r;
    buf[len] = '\0';
    int status = pclose(p);
    *output = buf;
    return WEXITSTATUS(status);
}

Test(state_cli, partitions_show_checkpoint)
{
    make_store();
    char *o;
    cr_assert_eq(run(&o, "state partitions --state-dir %s", dir), 0);
    cr_assert(strstr(o, "        2          2  17/-/-/-") != NULL, "%s", o);
    free(o);

    cr_assert_eq(run(&o, "state show --state-dir %s C-42", dir), 0);
    cr_assert(strstr(o, "Contract C-42 (partition 2)") != NULL, "%s", o);
    cr_assert(strstr(o, "customer ACME, currency USD") != NULL, "%s", o);
    /* closed through March: 3 months recognized, 9,000 deferred */
    cr_assert(strstr(o,
                     "saas         ratable_monthly  2026-01-01 2026-12-31      12,000.00      "
                     "12,000.00       3,000.00       9,000.00") != NULL,
              "%s", o);
    cr_assert(strstr(o, "2026-01 1,000.00, 2026-02 1,000.00") != NULL, "%s", o);
    cr_assert(strstr(o, "contracts=16") != NULL, "%s", o);
    free(o);

    cr_assert_eq(run(&o, "state show --state-dir %s C-9", dir), 0);
    cr_assert(strstr(o, "p (payment.received) waits for contract C-9") != NULL, "%s", o);
    free(o);

    cr_assert_eq(run(&o, "state show --state-dir %s NOPE", dir), 2);
    free(o);

    cr_assert_eq(run(&o, "state checkpoint --state-dir %s %s", dir, out), 0);
    free(o);
    struct stat sb;
    cr_assert_eq(stat(out, &sb), 0);
    cr_assert_eq(run(&o, "state show --state-dir %s C-42", out), 0);
    cr_assert(strstr(o, "9,000.00") != NULL, "%s", o);
    free(o);

    cr_assert_eq(run(&o, "state show --state-dir /nonexistent/x C-42"), 1);
    free(o);
    cr_assert_eq(run(&o, "state frobnicate --state-dir %s", dir), 1);
    free(o);
}
