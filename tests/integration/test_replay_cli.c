/*
 * test_replay_cli.c — the built `revstream` binary, run as a user would:
 * `revstream replay FILE` on temporary JSON Lines files, its exit status,
 * stdout (the report) and stderr (rejections, logs).
 *
 * Invariants of this test:
 *   - The binary is RS_BINARY_DIR "/revstream"; it is spawned with
 *     posix_spawn, stdin/stdout/stderr redirected to files in a fresh
 *     temporary directory that each test's fini removes.
 *   - Reports are read with --format json and parsed with jansson, so the
 *     assertions are about values, not layout (rs_format has its own test).
 *   - No timing: nothing here waits for anything but the child's exit.
 *   - Two tests look past values: replay's peak RSS (ru_maxrss of the child,
 *     from wait4) against the number of entries, skipped under ASan; and the
 *     bytes of `--report journal` against the kept-journal path of the
 *     library (rs_journal_t, rs_report_journal, rs_format_journal).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_format.h"
#include "rs_report.h"
#include "rs_test_util.h"

extern char **environ;

#define BIN RS_BINARY_DIR "/revstream"

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rs_replay_cli_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (d == NULL)
        return;
    struct dirent *de;
    char path[512];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(replay_cli, .init = make_tmpdir, .fini = remove_tmpdir);

static char *tmp_path(const char *name)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static const char *write_file(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, 1);
    cr_assert_eq(fclose(f), 0);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cr_assert_not_null(m);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    return buf;
}

typedef struct run {
    int status; /* exit status, or -1 if killed by a signal */
    char *out, *err;
} run_t;

/* Run BIN with args (NULL-terminated), stdin from `in` (NULL: /dev/null);
 * the child's resource usage in *ru when ru is not NULL. */
static void run_cli_ru(run_t *r, const char *in, const char *const *args, struct rusage *ru);

/* Run BIN with args (NULL-terminated), stdin from `in` (NULL: /dev/null). */
static void run_cli(run_t *r, const char *in, const char *const *args)
{
    run_cli_ru(r, in, args, NULL);
}

static void run_cli_ru(run_t *r, const char *in, const char *const *args, struct rusage *ru)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)BIN;
    for (; args[argc - 1] != NULL; argc++) {
        cr_assert_lt(argc, 31);
        argv[argc] = (char *)args[argc - 1];
    }
    argv[argc] = NULL;

    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
    posix_spawn_file_actions_t fa;
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 0, in != NULL ? in : "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rc = posix_spawn(&pid, BIN, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s", BIN, strerror(rc));
    int ws;
    struct rusage usage;
    cr_assert_eq(wait4(pid, &ws, 0, &usage), pid);
    if (ru != NULL)
        *ru = usage;
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
    r->out = slurp(out_path);
    r->err = slurp(err_path);
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* The one balances row of (contract, line) in a JSON report. */
static json_t *find_row(json_t *rows, const char *contract, const char *line)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "contract_id")), contract) == 0 &&
            strcmp(json_string_value(json_object_get(row, "line_id")), line) == 0)
            return row;
    }
    cr_assert_fail("no row for %s/%s", contract, line);
    return NULL;
}

static const char *field(json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    cr_assert(json_is_string(v), "field %s is not a string", key);
    return json_string_value(v);
}

static json_t *parse_report(const run_t *r)
{
    json_error_t err;
    json_t *root = json_loads(r->out, 0, &err);
    cr_assert_not_null(root, "stdout is not JSON (%s):\n%s\nstderr:\n%s", err.text, r->out,
                       r->err);
    cr_assert(json_is_array(root));
    return root;
}

/* $12,000 for 2026, invoiced Jan 1 and paid Jan 10. */
#define BOOKED                                                                                 \
    "{\"event_id\":\"e1\",\"type\":\"contract.booked\",\"contract_id\":\"C-1\","               \
    "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CUS-1\",\"currency\":\"USD\"," \
    "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"Annual\","      \
    "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","     \
    "\"amount\":\"12000.00\"}]}\n"
#define INVOICED                                                                               \
    "{\"event_id\":\"e2\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\","                \
    "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-1\","                       \
    "\"issued_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"12000.00\"}]}\n"
#define PAID(ID, AMOUNT)                                                                       \
    "{\"event_id\":\"" ID "\",\"type\":\"payment.received\",\"contract_id\":\"C-1\","          \
    "\"occurred_at\":\"2026-01-10T09:00:00Z\",\"payment_id\":\"P-" ID "\","                    \
    "\"invoice_id\":\"INV-1\",\"amount\":\"" AMOUNT "\",\"received_on\":\"2026-01-10\"}\n"

#define ANNUAL BOOKED INVOICED PAID("e3", "12000.00")
static const char annual[] = ANNUAL;

static void assert_annual_through_march(const run_t *r)
{
    json_t *rows = parse_report(r);
    cr_assert_eq(json_array_size(rows), 1, "%s", r->out);
    json_t *row = find_row(rows, "C-1", "L1");
    cr_assert_str_eq(field(row, "billed"), "12000.00");
    cr_assert_str_eq(field(row, "recognized"), "3000.00");
    cr_assert_str_eq(field(row, "deferred"), "9000.00");
    cr_assert_str_eq(field(row, "unbilled"), "0.00");
    cr_assert_str_eq(field(row, "received"), "12000.00");
    cr_assert_str_eq(field(row, "currency"), "USD");
    cr_assert_str_eq(field(row, "customer_id"), "CUS-1");
    json_decref(rows);
}

Test(replay_cli, annual_contract_balances_through_march)
{
    const char *in = write_file("in.jsonl", annual);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    assert_annual_through_march(&r);
    cr_assert_null(strstr(r.err, "replay: line "), "unexpected rejection:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: done lines=3 events=3 applied=3"), "%s", r.err);
    run_free(&r);
}

Test(replay_cli, dash_reads_stdin)
{
    const char *in = write_file("in.jsonl", annual);
    run_t r;
    run_cli(&r, in,
            (const char *[]){"replay", "-", "--through=2026-03", "--format=json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    assert_annual_through_march(&r);
    run_free(&r);
}

Test(replay_cli, defaults_json_balances_through_the_latest_event)
{
    /* stdout is a file, not a terminal: JSON; report: balances; through:
     * the month of the latest event (January). */
    const char *in = write_file("in.jsonl", annual);
    run_t r;
    run_cli(&r, NULL, (const char *[]){"replay", in, NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    json_t *rows = parse_report(&r);
    json_t *row = find_row(rows, "C-1", "L1");
    cr_assert_str_eq(field(row, "recognized"), "1000.00");
    cr_assert_str_eq(field(row, "deferred"), "11000.00");
    cr_assert_not_null(strstr(r.err, "through=2026-01"), "%s", r.err);
    json_decref(rows);
    run_free(&r);
}

Test(replay_cli, bad_lines_are_reported_with_line_and_event_and_exit_2)
{
    /* line 3: an amount with 3 decimals in USD (the engine refuses it);
     * line 4: blank; line 5: an invoice without invoice_id (the codec refuses
     * it); line 6: not JSON. The report is still printed. */
    const char *in = write_file(
        "in.jsonl",
        BOOKED INVOICED PAID(
            "e-bad", "12000.001") "\n"
                                  "{\"event_id\":\"e-noinv\",\"type\":\"invoice.issued\","
                                  "\"contract_id\":\"C-1\","
                                  "\"occurred_at\":\"2026-02-01T00:00:00Z\",\"issued_on\":"
                                  "\"2026-02-01\","
                                  "\"lines\":[{\"line_id\":\"L1\",\"amount\":\"1.00\"}]}\n"
                                  "this is not json\n" PAID("e3", "12000.00"));
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "json", NULL});
    cr_assert_eq(r.status, 2, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: line 3: event e-bad: amount"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: line 5: event e-noinv: invoice_id"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: line 6: "), "%s", r.err);
    cr_assert_null(strstr(r.err, "replay: line 4:"), "%s", r.err);
    cr_assert_null(strstr(r.err, "replay: line 7:"), "%s", r.err);
    assert_annual_through_march(&r); /* the good payment on line 7 counts */
    run_free(&r);

    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "rejected", "--format", "json", NULL});
    cr_assert_eq(r.status, 2);
    json_t *rows = parse_report(&r);
    cr_assert_eq(json_array_size(rows), 3, "%s", r.out);
    json_t *x = json_array_get(rows, 0);
    cr_assert_eq(json_integer_value(json_object_get(x, "line")), 3);
    cr_assert_str_eq(field(x, "event_id"), "e-bad");
    cr_assert_str_eq(field(x, "type"), "payment.received");
    cr_assert_not_null(strstr(field(x, "reason"), "amount"));
    x = json_array_get(rows, 1);
    cr_assert_eq(json_integer_value(json_object_get(x, "line")), 5);
    cr_assert_str_eq(field(x, "event_id"), "e-noinv");
    cr_assert_str_eq(field(x, "type"), "invoice.issued");
    x = json_array_get(rows, 2);
    cr_assert_eq(json_integer_value(json_object_get(x, "line")), 6);
    cr_assert_str_eq(field(x, "event_id"), "");
    json_decref(rows);
    run_free(&r);
}

Test(replay_cli, a_waiting_event_rejected_later_keeps_its_own_line)
{
    /* The payment (line 1) waits for its contract and invoice; when the
     * invoice (line 3) arrives the payment is applied and refused. */
    const char *in = write_file("in.jsonl", PAID("e-early", "12000.001") BOOKED INVOICED);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "rejected", "--format", "json", NULL});
    cr_assert_eq(r.status, 2, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: line 1: event e-early: amount"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "when line 3 arrived"), "%s", r.err);
    json_t *rows = parse_report(&r);
    cr_assert_eq(json_array_size(rows), 1, "%s", r.out);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(rows, 0), "line")), 1);
    cr_assert_str_eq(field(json_array_get(rows, 0), "event_id"), "e-early");
    json_decref(rows);
    run_free(&r);
}

Test(replay_cli, pending_report_lists_what_still_waits)
{
    const char *in = write_file(
        "in.jsonl",
        ANNUAL "{\"event_id\":\"e9\",\"type\":\"payment.received\",\"contract_id\":\"C-9\","
               "\"occurred_at\":\"2026-01-12T00:00:00Z\",\"payment_id\":\"P-9\",\"invoice_id\":"
               "\"INV-9\",\"amount\":\"10.00\",\"received_on\":\"2026-01-12\"}\n");
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "pending", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "waiting is not rejected; stderr:\n%s", r.err);
    json_t *rows = parse_report(&r);
    cr_assert_eq(json_array_size(rows), 1, "%s", r.out);
    json_t *x = json_array_get(rows, 0);
    cr_assert_str_eq(field(x, "event_id"), "e9");
    cr_assert_str_eq(field(x, "contract_id"), "C-9");
    cr_assert_str_eq(field(x, "type"), "payment.received");
    cr_assert_not_null(strstr(field(x, "waiting_for"), "C-9"));
    cr_assert_not_null(strstr(r.err, "pending=1"), "%s", r.err);
    json_decref(rows);
    run_free(&r);
}

Test(replay_cli, duplicate_event_is_applied_once)
{
    const char *in =
        write_file("in.jsonl", BOOKED INVOICED PAID("e3", "12000.00") PAID("e3", "12000.00"));
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    assert_annual_through_march(&r); /* received 12000.00, not 24000.00 */
    cr_assert_not_null(strstr(r.err, "duplicates=1"), "%s", r.err);
    run_free(&r);
}

Test(replay_cli, reads_lines_of_any_length)
{
    /* A 3 MB unknown field on the booking: ignored, the line still applies. */
    size_t pad = 3u << 20;
    const char *head = "{\"note\":\"";
    size_t len = strlen(head) + pad + 2 + strlen(BOOKED) + strlen(annual);
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    char *p = text;
    p += sprintf(p, "%s", head);
    memset(p, 'x', pad);
    p += pad;
    p += sprintf(p, "\",%s", BOOKED + 1); /* splice into the booking object */
    sprintf(p, "%s", annual + strlen(BOOKED));
    const char *in = write_file("in.jsonl", text);
    free(text);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%.2000s", r.err);
    assert_annual_through_march(&r);
    run_free(&r);
}

Test(replay_cli, progress_logs_every_100k_lines)
{
    /* 250,003 lines: the three events, then blank lines (counted, skipped). */
    size_t blanks = 250000;
    size_t len = strlen(annual) + blanks;
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    memcpy(text, annual, strlen(annual));
    memset(text + strlen(annual), '\n', blanks);
    text[len] = '\0';
    const char *in = write_file("in.jsonl", text);
    free(text);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--progress", "--through", "2026-03", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: progress lines=100000 rate="), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: progress lines=200000 rate="), "%s", r.err);
    cr_assert_null(strstr(r.err, "lines=300000"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: done lines=250003 events=3 "), "%s", r.err);
    assert_annual_through_march(&r);
    run_free(&r);

    /* without --progress (and stderr not a terminal): no progress lines */
    run_cli(&r, NULL, (const char *[]){"replay", in, "--through", "2026-03", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_null(strstr(r.err, "progress"), "%s", r.err);
    run_free(&r);
}

Test(replay_cli, csv_and_table_formats)
{
    const char *in = write_file("in.jsonl", annual);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "csv", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(
        r.out, "contract_id,line_id,billed,recognized,deferred,unbilled,received,currency,"
               "customer_id\r\n"
               "C-1,L1,12000.00,3000.00,9000.00,0.00,12000.00,USD,CUS-1\r\n");
    run_free(&r);
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "table",
                             "--report", "waterfall", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "Revenue waterfall, USD, posted through 2026-03\n"), "%s",
                       r.out);
    cr_assert_not_null(
        strstr(r.out, "2026-03      1,000.00       1,000.00              0.00   9,000.00\n"),
        "%s", r.out);
    cr_assert_not_null(
        strstr(r.out, "2026-04 *    1,000.00                                    8,000.00\n"),
        "%s", r.out);
    cr_assert_not_null(strstr(r.out, "TOTAL       12,000.00\n"), "%s", r.out);
    run_free(&r);
}

Test(replay_cli, usage_and_io_errors_exit_1)
{
    const char *in = write_file("in.jsonl", annual);
    const char *const *cases[] = {
        (const char *[]){"replay", NULL},
        (const char *[]){"replay", "/nonexistent/dir/events.jsonl", NULL},
        (const char *[]){"replay", in, "--through", "2026-13", NULL},
        (const char *[]){"replay", in, "--through", "March", NULL},
        (const char *[]){"replay", in, "--report", "profit", NULL},
        (const char *[]){"replay", in, "--format", "xml", NULL},
        (const char *[]){"replay", in, "--bogus", NULL},
        (const char *[]){"replay", in, in, NULL},
        (const char *[]){"replay", in, "--policy", NULL},
        (const char *[]){"replay", in, "--policy", "/nonexistent/dir/policy.properties", NULL},
        (const char *[]){"no-such-command", NULL},
        (const char *[]){NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_t r;
        run_cli(&r, NULL, cases[i]);
        cr_assert_eq(r.status, 1, "case %zu: status %d, stderr:\n%s", i, r.status, r.err);
        cr_assert_str_eq(r.out, "", "case %zu printed a report", i);
        cr_assert_neq(r.err[0], '\0', "case %zu gave no error message", i);
        run_free(&r);
    }
}

Test(replay_cli, error_messages_name_the_problem)
{
    run_t r;
    run_cli(&r, NULL, (const char *[]){"replay", "/nonexistent/dir/events.jsonl", NULL});
    cr_assert_not_null(strstr(r.err, "/nonexistent/dir/events.jsonl"), "%s", r.err);
    run_free(&r);
    run_cli(&r, NULL, (const char *[]){"frobnicate", NULL});
    cr_assert_not_null(strstr(r.err, "unknown command \"frobnicate\""), "%s", r.err);
    run_free(&r);
}

Test(replay_cli, version_and_help)
{
    run_t r;
    run_cli(&r, NULL, (const char *[]){"--version", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, "revstream 0.1.0\n");
    run_free(&r);

    run_cli(&r, NULL, (const char *[]){"help", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "\n  replay "), "%s", r.out);
    run_free(&r);

    run_cli(&r, NULL, (const char *[]){"--help", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "usage: revstream <command>"), "%s", r.out);
    run_free(&r);

    run_cli(&r, NULL, (const char *[]){"help", "replay", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "usage: revstream replay FILE.jsonl"), "%s", r.out);
    run_free(&r);

    run_cli(&r, NULL, (const char *[]){"replay", "--help", NULL});
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(strstr(r.out, "--report R"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "--policy FILE"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "exceptions"), "%s", r.out);
    run_free(&r);
}

/* a variable, not a macro: a path among string literals reads as a missing comma */
static const char SAMPLE[] = RS_SOURCE_DIR "/examples/sample-book.jsonl";

Test(replay_cli, sample_book_has_exactly_its_one_intentional_rejection)
{
    run_t r;
    run_cli(
        &r, NULL,
        (const char *[]){"replay", SAMPLE, "--report", "rejected", "--format", "json", NULL});
    cr_assert_eq(r.status, 2, "stderr:\n%s", r.err);
    json_t *rows = parse_report(&r);
    cr_assert_eq(json_array_size(rows), 1, "%s", r.out);
    json_t *x = json_array_get(rows, 0);
    cr_assert_eq(json_integer_value(json_object_get(x, "line")), 43);
    cr_assert_str_eq(field(x, "event_id"), "pay-1005-04-raw");
    cr_assert_not_null(strstr(r.err, "duplicates=1 rejected=1 pending=1"), "%s", r.err);
    json_decref(rows);
    run_free(&r);
}

/* recognized of (contract, line, period) in a schedule report */
static const char *sched(json_t *rows, const char *contract, const char *line,
                         const char *period)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (strcmp(field(row, "contract_id"), contract) == 0 &&
            strcmp(field(row, "line_id"), line) == 0 &&
            strcmp(field(row, "period"), period) == 0)
            return field(row, "recognized");
    }
    cr_assert_fail("no schedule row %s/%s/%s", contract, line, period);
    return NULL;
}

Test(replay_cli, sample_book_figures_match_its_readme)
{
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", SAMPLE, "--through", "2026-06", "--report", "schedule",
                             "--format", "json", NULL});
    cr_assert_eq(r.status, 2, "stderr:\n%s", r.err);
    json_t *s = parse_report(&r);
    cr_assert_str_eq(sched(s, "C-1001", "L1", "2026-06"), "1000.00");
    cr_assert_str_eq(sched(s, "C-1002", "L1", "2026-02"), "20000.00");
    cr_assert_str_eq(sched(s, "C-1002", "L2", "2026-02"), "8333.33");
    cr_assert_str_eq(sched(s, "C-1003", "L1", "2026-03"), "1000.00"); /* 10,000 calls */
    cr_assert_str_eq(sched(s, "C-1004", "L2", "2026-03"), "5000.00"); /* SSP allocation */
    cr_assert_str_eq(sched(s, "C-1004", "L1", "2026-03"), "1250.00"); /* 15,000 / 12 */
    cr_assert_str_eq(sched(s, "C-1005", "L1", "2026-04"), "500.00");
    cr_assert_str_eq(sched(s, "C-1006", "L1", "2026-01"), "17.00");
    cr_assert_str_eq(sched(s, "C-1006", "L1", "2026-02"), "14.00");
    cr_assert_str_eq(sched(s, "C-1007", "L1", "2026-05"), "100000"); /* JPY */
    cr_assert_str_eq(sched(s, "C-1008", "L1", "2026-03"), "100.00");
    cr_assert_str_eq(sched(s, "C-1008", "L1", "2026-04"), "80.00"); /* after the discount */
    json_decref(s);
    run_free(&r);

    run_cli(
        &r, NULL,
        (const char *[]){"replay", SAMPLE, "--through", "2026-06", "--format", "json", NULL});
    json_t *b = parse_report(&r);
    json_t *row = find_row(b, "C-1001", "L1");
    cr_assert_str_eq(field(row, "recognized"), "6000.00");
    cr_assert_str_eq(field(row, "deferred"), "6000.00");
    row = find_row(b, "C-1003", "L1");
    cr_assert_str_eq(field(row, "unbilled"), "1140.00"); /* June usage, invoiced in July */
    row = find_row(b, "C-1005", "L1");
    cr_assert_str_eq(field(row, "deferred"), "0.00");
    row = find_row(b, "C-1001", "L1");
    cr_assert_str_eq(field(row, "received"), "12000.00"); /* the duplicate counted once */
    json_decref(b);
    run_free(&r);
}
static json_t *sample_report(const char *report)
{
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", SAMPLE, "--through", "2026-06", "--report", report,
                             "--format", "json", NULL});
    cr_assert_eq(r.status, 2, "stderr:\n%s", r.err);
    json_t *rows = parse_report(&r);
    run_free(&r);
    return rows;
}

/* Finance clarity: the waterfall's Recognized = from deferred + not via
 * deferred, from deferred is the rollforward's Recognized, period by
 * period; the sample's 8,040.00 of USD revenue recognized before billing is
 * the "not via deferred" part, and equals the journal's recognition debits to
 * unbilled_receivable. */
Test(replay_cli, sample_waterfall_and_rollforward_tie_visibly)
{
    json_t *wf = sample_report("waterfall"), *rf = sample_report("rollforward");
    json_t *jr = sample_report("journal");
    size_t i, k, matched = 0;
    json_t *w, *f;
    long long notvia_usd = 0, unbilled_dr_usd = 0;
    json_array_foreach(wf, i, w)
    {
        if (json_is_true(json_object_get(w, "projected"))) {
            cr_assert_null(json_object_get(w, "recognized_from_deferred"));
            continue;
        }
        long long rec = rs_minor(field(w, "recognized")),
                  fromd = rs_minor(field(w, "recognized_from_deferred")),
                  notvia = rs_minor(field(w, "recognized_not_via_deferred"));
        cr_assert_eq(rec, fromd + notvia, "%s", field(w, "period"));
        json_array_foreach(rf, k, f)
        {
            if (strcmp(field(f, "period"), field(w, "period")) ||
                strcmp(field(f, "currency"), field(w, "currency")))
                continue;
            cr_assert_eq(rs_minor(field(f, "recognized")), fromd, "%s", field(w, "period"));
            cr_assert_eq(rs_minor(field(f, "recognized_not_via_deferred")), notvia);
            cr_assert_eq(rs_minor(field(f, "revenue_recognized")), rec);
            matched++;
        }
        if (strcmp(field(w, "currency"), "USD") == 0)
            notvia_usd += notvia;
    }
    cr_assert_eq(matched, json_array_size(rf), "every rollforward row has its waterfall row");
    json_t *e, *l;
    json_array_foreach(jr, i, e)
    {
        if (strcmp(field(e, "kind"), "recognition") || strcmp(field(e, "currency"), "USD"))
            continue;
        json_array_foreach(json_object_get(e, "lines"), k, l)
        {
            if (strcmp(field(l, "account"), "unbilled_receivable") == 0)
                unbilled_dr_usd += rs_minor(field(l, "debit")) - rs_minor(field(l, "credit"));
        }
    }
    cr_assert_eq(notvia_usd, 804000);
    cr_assert_eq(unbilled_dr_usd, notvia_usd);
    json_decref(wf);
    json_decref(rf);
    json_decref(jr);

    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", SAMPLE, "--through", "2026-06", "--report",
                             "rollforward", "--format", "table", NULL});
    cr_assert_not_null(strstr(r.out, "+ Not via deferred (billed in arrears, adjustments)   "
                                     "8,040.00\n= Recognized revenue"),
                       "%s", r.out);
    cr_assert_not_null(strstr(r.out, "= Recognized revenue                                 "
                                     "86,277.67"),
                       "%s", r.out);
    run_free(&r);
}

/* C-1004 L1 is billed 18,000.00 against an SSP-allocated price of 15,000.00:
 * 3,000.00 stays deferred after its service ends, and the exceptions say so
 * (the waterfall's projected deferred ends at exactly that). */
Test(replay_cli, sample_deferred_left_after_service_end_is_an_exception)
{
    json_t *x = sample_report("exceptions");
    size_t i;
    json_t *row;
    int found = 0;
    json_array_foreach(x, i, row)
    {
        if (strcmp(field(row, "kind"), "deferred_after_end"))
            continue;
        cr_assert_str_eq(field(row, "contract_id"), "C-1004");
        cr_assert_str_eq(field(row, "line_id"), "L1");
        cr_assert_str_eq(field(row, "amount"), "3000.00");
        cr_assert_not_null(strstr(field(row, "detail"), "2027-02-28"));
        found++;
    }
    cr_assert_eq(found, 1);
    json_decref(x);
    json_t *wf = sample_report("waterfall");
    json_t *last = NULL;
    json_array_foreach(wf, i, row)
    {
        if (strcmp(field(row, "currency"), "USD") == 0)
            last = row;
    }
    cr_assert_str_eq(field(last, "deferred"), "3000.00");
    json_decref(wf);
}

/* ---- --policy and --report exceptions ---- */

/* C-1 (above) cancelled from April 1: nine of its twelve prepaid months are
 * never delivered. */
#define CANCELLED                                                                              \
    "{\"event_id\":\"e4\",\"type\":\"contract.cancelled\",\"contract_id\":\"C-1\","            \
    "\"occurred_at\":\"2026-04-01T09:00:00Z\",\"effective_on\":\"2026-04-01\"}\n"
/* C-2: $500 onboarding delivered on Jan 15. */
#define ONBOARDING                                                                             \
    "{\"event_id\":\"e5\",\"type\":\"contract.booked\",\"contract_id\":\"C-2\","               \
    "\"occurred_at\":\"2026-01-15T09:00:00Z\",\"customer_id\":\"CUS-2\",\"currency\":\"USD\"," \
    "\"booked_on\":\"2026-01-15\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"Onboarding\","  \
    "\"recognition\":\"point_in_time\",\"start\":\"2026-01-15\",\"end\":\"2026-01-15\","       \
    "\"amount\":\"500.00\"}]}\n"

/* The posting lines of the journal entry (contract, kind) posted in period. */
static json_t *entry_lines(json_t *journal, const char *contract, const char *kind,
                           const char *period)
{
    size_t i;
    json_t *e;
    json_array_foreach(journal, i, e)
    {
        if (strcmp(field(e, "contract_id"), contract) == 0 &&
            strcmp(field(e, "kind"), kind) == 0 && strcmp(field(e, "period"), period) == 0)
            return json_object_get(e, "lines");
    }
    cr_assert_fail("no %s entry of %s in %s", kind, contract, period);
    return NULL;
}

static void assert_posting(json_t *lines, size_t i, const char *account, const char *role,
                           const char *debit, const char *credit)
{
    json_t *l = json_array_get(lines, i);
    cr_assert_not_null(l, "no posting line %zu", i);
    cr_assert_str_eq(field(l, "account"), account);
    cr_assert_str_eq(field(l, "role"), role);
    cr_assert_str_eq(field(l, "debit"), debit);
    cr_assert_str_eq(field(l, "credit"), credit);
}

Test(replay_cli, policy_file_sets_journal_account_codes)
{
    const char *in = write_file("in.jsonl", ANNUAL ONBOARDING);
    const char *pol = write_file("policy.properties", "# chart of accounts\n"
                                                      "account.accounts_receivable = 1200\n"
                                                      "account.deferred_revenue    = 2400\n"
                                                      "account.revenue             = 4000\n"
                                                      "account.revenue.Onboarding  = 4100\n");
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--policy", pol, "--report", "journal", "--through",
                             "2026-01", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    json_t *j = parse_report(&r);
    json_t *inv = entry_lines(j, "C-1", "invoice", "2026-01");
    assert_posting(inv, 0, "1200", "accounts_receivable", "12000.00", "0.00");
    assert_posting(inv, 1, "2400", "deferred_revenue", "0.00", "12000.00");
    json_t *pay = entry_lines(j, "C-1", "payment", "2026-01");
    assert_posting(pay, 0, "cash", "cash", "12000.00", "0.00"); /* no code for cash */
    assert_posting(pay, 1, "1200", "accounts_receivable", "0.00", "12000.00");
    json_t *rec = entry_lines(j, "C-1", "recognition", "2026-01");
    assert_posting(rec, 0, "2400", "deferred_revenue", "1000.00", "0.00");
    assert_posting(rec, 1, "4000", "revenue", "0.00", "1000.00");
    /* the Onboarding product has its own revenue code; unbilled has none */
    json_t *onb = entry_lines(j, "C-2", "recognition", "2026-01");
    assert_posting(onb, 0, "unbilled_receivable", "unbilled_receivable", "500.00", "0.00");
    assert_posting(onb, 1, "4100", "revenue", "0.00", "500.00");
    json_decref(j);
    cr_assert_not_null(strstr(r.err, "replay: policy file=\""), "%s", r.err);
    run_free(&r);

    /* without --policy the account is the role name */
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "journal", "--through", "2026-01",
                             "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    j = parse_report(&r);
    rec = entry_lines(j, "C-1", "recognition", "2026-01");
    assert_posting(rec, 1, "revenue", "revenue", "0.00", "1000.00");
    json_decref(j);
    run_free(&r);

    /* CSV: account code, then role */
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--policy", pol, "--report", "journal", "--through",
                             "2026-01", "--format", "csv", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.out, ",kind,rule,account,role,debit,credit,"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, ",recognition,ratable_monthly,4000,revenue,0.00,1000.00,"),
                       "%s", r.out);
    cr_assert_not_null(strstr(r.out, ",recognition,point_in_time,4100,revenue,0.00,500.00,"),
                       "%s", r.out);
    run_free(&r);
}

Test(replay_cli, forfeit_policy_recognizes_what_a_cancellation_leaves_deferred)
{
    const char *in = write_file("in.jsonl", ANNUAL CANCELLED);
    const char *pol = write_file("policy.properties", "policy.cancellation = forfeit\n");
    run_t r;

    /* default keep_deferred: the nine undelivered months stay deferred */
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-06", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    json_t *rows = parse_report(&r);
    json_t *row = find_row(rows, "C-1", "L1");
    cr_assert_str_eq(field(row, "recognized"), "3000.00");
    cr_assert_str_eq(field(row, "deferred"), "9000.00");
    json_decref(rows);
    run_free(&r);

    /* forfeit: recognized on the cancellation date */
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--policy", pol, "--through", "2026-06", "--format",
                             "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    rows = parse_report(&r);
    row = find_row(rows, "C-1", "L1");
    cr_assert_str_eq(field(row, "billed"), "12000.00");
    cr_assert_str_eq(field(row, "recognized"), "12000.00");
    cr_assert_str_eq(field(row, "deferred"), "0.00");
    cr_assert_str_eq(field(row, "received"), "12000.00");
    json_decref(rows);
    cr_assert_not_null(strstr(r.err, "cancellation=forfeit"), "%s", r.err);
    run_free(&r);
}

Test(replay_cli, bad_policy_file_exits_1_naming_file_line_and_key)
{
    const char *in = write_file("in.jsonl", annual);
    const char *pol = write_file("bad.properties", "# a typo on line 3\n"
                                                   "policy.cancellation = forfeit\n"
                                                   "account.revenu = 4000\n");
    run_t r;
    run_cli(&r, NULL, (const char *[]){"replay", in, "--policy", pol, NULL});
    cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
    cr_assert_str_eq(r.out, "", "a report was printed");
    cr_assert_not_null(strstr(r.err, "replay: error=policy"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, pol), "the file is not named:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "policy line 3: account.revenu: unknown account role"),
                       "%s", r.err);
    cr_assert_null(strstr(r.err, "replay: done"), "events were replayed:\n%s", r.err);
    run_free(&r);

    /* an unknown value of a known key */
    pol = write_file("bad2.properties", "\n\npolicy.proration = 31_365\n");
    run_cli(&r, NULL, (const char *[]){"replay", in, "--policy", pol, NULL});
    cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_not_null(strstr(r.err, "policy line 3: policy.proration: invalid value"), "%s",
                       r.err);
    run_free(&r);
}

Test(replay_cli, missing_policy_file_exits_1_naming_it)
{
    const char *in = write_file("in.jsonl", annual);
    const char *pol = tmp_path("no-such-policy.properties");
    run_t r;
    run_cli(&r, NULL, (const char *[]){"replay", in, "--policy", pol, NULL});
    cr_assert_eq(r.status, 1, "stderr:\n%s", r.err);
    cr_assert_str_eq(r.out, "");
    cr_assert_not_null(strstr(r.err, "replay: error=policy"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, pol), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "No such file or directory"), "%s", r.err);
    run_free(&r);
}

Test(replay_cli, policy_file_of_any_size_is_read_whole)
{
    /* 200,000 comment lines (about 6 MB), then the one setting */
    size_t n = 200000;
    const char *comment = "# padding padding padding padding\n";
    const char *last = "policy.cancellation = forfeit\n";
    size_t len = n * strlen(comment) + strlen(last);
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    char *p = text;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s", comment);
    sprintf(p, "%s", last);
    const char *pol = write_file("big.properties", text);
    free(text);
    const char *in = write_file("in.jsonl", ANNUAL CANCELLED);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--policy", pol, "--through", "2026-06", "--format",
                             "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%.2000s", r.err);
    json_t *rows = parse_report(&r);
    cr_assert_str_eq(field(find_row(rows, "C-1", "L1"), "deferred"), "0.00");
    json_decref(rows);
    run_free(&r);
}

Test(replay_cli, exceptions_report_shows_deferred_after_cancellation)
{
    const char *in = write_file("in.jsonl", ANNUAL CANCELLED);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "exceptions", "--through", "2026-06",
                             "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    json_t *rows = parse_report(&r);
    cr_assert_eq(json_array_size(rows), 1, "%s", r.out);
    json_t *x = json_array_get(rows, 0);
    cr_assert_str_eq(field(x, "contract_id"), "C-1");
    cr_assert_str_eq(field(x, "line_id"), "L1");
    cr_assert_str_eq(field(x, "customer_id"), "CUS-1");
    cr_assert_str_eq(field(x, "kind"), "deferred_after_cancellation");
    cr_assert_str_eq(field(x, "amount"), "9000.00");
    cr_assert_str_eq(field(x, "currency"), "USD");
    cr_assert_not_null(strstr(field(x, "detail"), "2026-03-31"), "%s", r.out);
    json_decref(rows);
    run_free(&r);

    /* the table, for people */
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "exceptions", "--through", "2026-06",
                             "--format", "table", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.out, "Exceptions to review at the end of 2026-06\n"), "%s",
                       r.out);
    cr_assert_not_null(strstr(r.out, "C-1       L1    CUS-1     deferred_after_cancellation  "
                                     "USD  9,000.00  service ended 2026-03-31"),
                       "%s", r.out);
    run_free(&r);

    /* under forfeit nothing is left deferred: no exception */
    const char *pol = write_file("policy.properties", "policy.cancellation = forfeit\n");
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--policy", pol, "--report", "exceptions",
                             "--through", "2026-06", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_str_eq(r.out, "[]\n");
    run_free(&r);
}

Test(replay_cli, exceptions_report_lists_waiting_events)
{
    const char *in = write_file(
        "in.jsonl",
        ANNUAL "{\"event_id\":\"e9\",\"type\":\"payment.received\",\"contract_id\":\"C-9\","
               "\"occurred_at\":\"2026-01-12T00:00:00Z\",\"payment_id\":\"P-9\",\"invoice_id\":"
               "\"INV-9\",\"amount\":\"10.00\",\"received_on\":\"2026-01-12\"}\n");
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "exceptions", "--format", "csv", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_str_eq(r.out, "contract_id,line_id,customer_id,kind,amount,currency,detail\r\n"
                            "C-9,,,pending,0,,event e9 (payment.received) waits for contract "
                            "C-9\r\n");
    run_free(&r);
}

static const char EXAMPLE_POLICY[] = RS_SOURCE_DIR "/examples/policy.properties";

Test(replay_cli, example_policy_file_is_valid_and_codes_the_sample_book)
{
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", SAMPLE, "--policy", EXAMPLE_POLICY, "--report",
                             "journal", "--through", "2026-02", "--format", "json", NULL});
    cr_assert_eq(r.status, 2, "only the sample's one bad event; stderr:\n%s", r.err);
    cr_assert_null(strstr(r.err, "error=policy"), "%s", r.err);
    json_t *j = parse_report(&r);
    /* C-1002: onboarding (product "Onboarding", 4100) and software access
     * (the generic revenue code) recognized in February */
    size_t i, onboarding = 0, software = 0;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        if (strcmp(field(e, "contract_id"), "C-1002") != 0 ||
            strcmp(field(e, "kind"), "recognition") != 0)
            continue;
        size_t k;
        json_t *l;
        json_array_foreach(json_object_get(e, "lines"), k, l)
        {
            if (strcmp(field(l, "role"), "revenue") != 0)
                continue;
            if (strcmp(field(e, "line_id"), "L1") == 0) {
                cr_assert_str_eq(field(l, "account"), "4100");
                cr_assert_str_eq(field(l, "credit"), "20000.00");
                onboarding++;
            } else {
                cr_assert_str_eq(field(l, "account"), "4000");
                software++;
            }
        }
    }
    cr_assert_eq(onboarding, 1, "%s", r.out);
    cr_assert_eq(software, 1, "%s", r.out);
    json_decref(j);
    run_free(&r);
}

#define EVENTS_DOC RS_SOURCE_DIR "/docs/events.md"

Test(replay_cli, events_doc_example_history_replays_cleanly)
{
    /* docs/events.md ends with its examples as one JSON Lines history: it
     * must be accepted whole, and give the figures the page quotes. */
    char *doc = slurp(EVENTS_DOC);
    const char *fence = "```json\n", *block = NULL;
    for (const char *p = strstr(doc, fence); p != NULL; p = strstr(p + 1, fence))
        block = p + strlen(fence);
    cr_assert_not_null(block, "no json block in %s", EVENTS_DOC);
    char *end = strstr(block, "```");
    cr_assert_not_null(end);
    *end = '\0';
    const char *in = write_file("history.jsonl", block);
    free(doc);

    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "exceptions", "--through", "2026-12",
                             "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "replay: done lines=19 events=19 applied=19 duplicates=0 "
                                     "rejected=0 pending=0"),
                       "%s", r.err);
    json_t *rows = parse_report(&r);
    size_t i, found = 0;
    json_t *x;
    json_array_foreach(rows, i, x)
    {
        if (strcmp(field(x, "kind"), "deferred_after_cancellation") != 0)
            continue;
        cr_assert_str_eq(field(x, "contract_id"), "C-2002");
        cr_assert_str_eq(field(x, "amount"), "9000.00");
        found++;
    }
    cr_assert_eq(found, 1, "%s", r.out);
    json_decref(rows);
    run_free(&r);

    /* 125,000 API calls at 0.002 in February */
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--report", "schedule", "--through", "2026-02",
                             "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    json_t *s = parse_report(&r);
    cr_assert_str_eq(sched(s, "C-2001", "L3", "2026-02"), "250.00");
    json_decref(s);
    run_free(&r);
}

/* The lines of text that mention needle, in order. */
static char *lines_with(const char *text, const char *needle)
{
    size_t cap = strlen(text) + 1, n = 0;
    char *out = calloc(1, cap);
    cr_assert_not_null(out);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        char *line = strndup(p, len);
        if (strstr(line, needle) != NULL) {
            memcpy(out + n, line, len);
            n += len;
        }
        free(line);
        p += len;
    }
    return out;
}

Test(replay_cli, generated_book_is_deterministic_and_replays_cleanly)
{
    run_t a, b, c, small;
    const char *args[] = {"generate", "--contracts", "300", "--seed", "5", NULL};
    run_cli(&a, NULL, args);
    run_cli(&b, NULL, args);
    cr_assert_eq(a.status, 0, "%s", a.err);
    cr_assert_str_eq(a.out, b.out, "the same seed must give the same bytes");
    run_cli(&c, NULL, (const char *[]){"generate", "--contracts", "300", "--seed", "6", NULL});
    cr_assert_str_neq(a.out, c.out);
    /* a contract's events do not depend on how many contracts are generated */
    run_cli(&small, NULL,
            (const char *[]){"generate", "--contracts", "50", "--seed", "5", NULL});
    char *x = lines_with(a.out, "\"C-0000042\""), *y = lines_with(small.out, "\"C-0000042\"");
    cr_assert_gt(strlen(x), 0);
    cr_assert_str_eq(x, y);
    free(x);
    free(y);

    /* every kind of event, in occurred_at order */
    const char *types[] = {"contract.booked",     "contract.amended",   "contract.cancelled",
                           "invoice.issued",      "payment.received",   "usage.recorded",
                           "milestone.completed", "credit_note.issued", "period.closed"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"type\":\"%s\"", types[i]);
        cr_assert_not_null(strstr(a.out, needle), "no %s in the generated book", types[i]);
    }
    char prev[32] = "";
    for (const char *p = strstr(a.out, "\"occurred_at\":\""); p != NULL;
         p = strstr(p + 1, "\"occurred_at\":\"")) {
        char ts[32];
        snprintf(ts, sizeof ts, "%.20s", p + 15);
        cr_assert_geq(strcmp(ts, prev), 0, "%s after %s", ts, prev);
        memcpy(prev, ts, sizeof prev);
    }

    /* and the engine takes all of it */
    const char *book = write_file("generated.jsonl", a.out);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", book, "--report", "balances", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "rejected=0 pending=0"), "%s", r.err);
    run_free(&r);
    run_free(&a);
    run_free(&b);
    run_free(&c);
    run_free(&small);
}

/* The number N of "entries=N" in replay's done log. */
static long done_entries(const char *err)
{
    const char *p = strstr(err, " entries=");
    cr_assert_not_null(p, "%s", err);
    return strtol(p + 9, NULL, 10);
}

/* Replay memory is the engine's state, not the journal: from a book of 1,000
 * contracts to one of 6,000 the peak RSS grows by less than half an entry
 * (sizeof(rs_entry_t), > 2 KB) per extra entry, for the reports of the books
 * (summed as entries come) and for the journal (spooled to a file). A replay
 * that kept the journal grows by at least a whole entry per entry. */
/* AddressSanitizer's quarantine and shadow memory make RSS grow with every
 * allocation and free: the figures mean nothing in such a build. */
#if defined(__SANITIZE_ADDRESS__)
#define RS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RS_TEST_ASAN 1
#endif
#endif

Test(replay_cli, replay_memory_does_not_grow_with_the_journal)
{
#ifdef RS_TEST_ASAN
    cr_skip_test("RSS is not the program's memory under AddressSanitizer");
#endif
    const char *reports[][4] = {
        {"balances", "json"}, {"waterfall", "json"}, {"journal", "csv"}};
    const char *books[2];
    run_t g;
    run_cli(&g, NULL, (const char *[]){"generate", "--contracts", "1000", "--seed", "3", NULL});
    cr_assert_eq(g.status, 0, "%s", g.err);
    books[0] = write_file("small.jsonl", g.out);
    run_free(&g);
    run_cli(&g, NULL, (const char *[]){"generate", "--contracts", "6000", "--seed", "3", NULL});
    cr_assert_eq(g.status, 0, "%s", g.err);
    books[1] = write_file("large.jsonl", g.out);
    run_free(&g);
    for (size_t k = 0; k < sizeof reports / sizeof *reports; k++) {
        long rss[2], entries[2];
        for (int b = 0; b < 2; b++) {
            run_t r;
            struct rusage ru;
            run_cli_ru(&r, NULL,
                       (const char *[]){"replay", books[b], "--report", reports[k][0],
                                        "--format", reports[k][1], NULL},
                       &ru);
            cr_assert_eq(r.status, 0, "%s", r.err);
            cr_assert_gt(strlen(r.out), 0);
            rss[b] = ru.ru_maxrss; /* KB */
            entries[b] = done_entries(r.err);
            run_free(&r);
        }
        cr_assert_gt(entries[1], 5 * entries[0], "%ld vs %ld entries", entries[1], entries[0]);
        double per_entry =
            (double)(rss[1] - rss[0]) * 1024.0 / (double)(entries[1] - entries[0]);
        cr_assert_lt(per_entry, (double)sizeof(rs_entry_t) / 2,
                     "--report %s: %.0f bytes of RSS per entry (%ld KB for %ld entries, %ld KB "
                     "for %ld)",
                     reports[k][0], per_entry, rss[0], entries[0], rss[1], entries[1]);
    }
}

/* The journal the way replay printed it when it kept every entry: the same
 * events through an engine whose sink is an rs_journal_t, rs_report_journal
 * and rs_format_journal. The book must replay cleanly (no rejection). */
static void keep_book(const char *book, rs_engine_t **out, rs_journal_t *j,
                      rs_period_t *through)
{
    rs_engine_t *eng = NULL;
    char errstr[512];
    rs_journal_init(j);
    cr_assert_eq(rs_engine_new(&eng, NULL, errstr, sizeof errstr), 0, "%s", errstr);
    rs_engine_set_sink(eng, rs_journal_sink, j);
    rs_period_t latest = RS_PERIOD_NONE;
    for (const char *p = book; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        rs_event_t ev;
        rs_event_init(&ev);
        cr_assert_eq(rs_codec_json_decode(p, len, &ev, errstr, sizeof errstr), 0, "%s", errstr);
        rs_apply_result_t res = rs_engine_apply(eng, &ev, errstr, sizeof errstr);
        cr_assert(res == RS_APPLY_OK || res == RS_APPLY_DUPLICATE || res == RS_APPLY_PENDING,
                  "%s", errstr);
        rs_period_t per = rs_period_of(ev.occurred_on);
        if (latest == RS_PERIOD_NONE || per > latest)
            latest = per;
        rs_event_clear(&ev);
        p += len;
    }
    cr_assert_eq(rs_engine_advance(eng, latest), 0);
    *out = eng;
    *through = latest;
}

static char *kept_journal(const char *book, rs_format_kind_t k)
{
    rs_engine_t *eng = NULL;
    rs_journal_t j;
    rs_period_t latest;
    keep_book(book, &eng, &j, &latest);
    size_t *idx = NULL, n = 0;
    cr_assert_eq(rs_report_journal(&j, latest, &idx, &n), 0);
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    cr_assert_not_null(f);
    cr_assert_eq(rs_format_journal(f, k, j.entries, idx, n, rs_engine_policy(eng), latest), 0);
    cr_assert_eq(fclose(f), 0);
    free(idx);
    rs_journal_free(&j);
    rs_engine_destroy(eng);
    return buf;
}

/* `--report journal` streams entries through a spool file: its bytes equal
 * the journal of the kept-journal path, in every format. */
Test(replay_cli, streamed_journal_equals_the_kept_journal)
{
    run_t g;
    run_cli(&g, NULL, (const char *[]){"generate", "--contracts", "300", "--seed", "7", NULL});
    cr_assert_eq(g.status, 0, "%s", g.err);
    const char *book = write_file("book.jsonl", g.out);
    const struct {
        const char *name;
        rs_format_kind_t kind;
    } formats[] = {
        {"json", RS_FORMAT_JSON}, {"csv", RS_FORMAT_CSV}, {"table", RS_FORMAT_TABLE}};
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        run_t r;
        run_cli(&r, NULL,
                (const char *[]){"replay", book, "--report", "journal", "--format",
                                 formats[i].name, NULL});
        cr_assert_eq(r.status, 0, "%s", r.err);
        char *want = kept_journal(g.out, formats[i].kind);
        cr_assert_gt(strlen(want), 1000);
        cr_assert(strcmp(r.out, want) == 0, "--format %s: the streamed journal differs",
                  formats[i].name);
        free(want);
        run_free(&r);
    }
    run_free(&g);
}

/* The reports of the books come from an aggregator that sums the entries on
 * a thread of its own (cmd_replay_acc.c): balances, waterfall and
 * rollforward equal those of the kept journal, on a book whose entries fill
 * the aggregator's batches many times over while the default --through
 * rises month by month. */
Test(replay_cli, threaded_aggregator_equals_the_kept_journal)
{
    run_t g;
    run_cli(&g, NULL, (const char *[]){"generate", "--contracts", "1000", "--seed", "9", NULL});
    cr_assert_eq(g.status, 0, "%s", g.err);
    const char *book = write_file("book.jsonl", g.out);
    rs_engine_t *eng = NULL;
    rs_journal_t j;
    rs_period_t latest;
    keep_book(g.out, &eng, &j, &latest);
    cr_assert_gt(j.n, 8 * 64 * 1024 / 100, "the book must fill the batches: %zu entries", j.n);
    for (int rep = 0; rep < 3; rep++) {
        static const char *const names[] = {"balances", "waterfall", "rollforward"};
        char *want = NULL;
        size_t size = 0, n = 0;
        FILE *f = open_memstream(&want, &size);
        cr_assert_not_null(f);
        if (rep == 0) {
            rs_balance_row_t *rows = NULL;
            cr_assert_eq(rs_report_balances(eng, &j, latest, &rows, &n), 0);
            cr_assert_eq(rs_format_balances(f, RS_FORMAT_CSV, rows, n, latest), 0);
            free(rows);
        } else if (rep == 1) {
            rs_waterfall_row_t *rows = NULL;
            cr_assert_eq(rs_report_waterfall(eng, &j, latest, &rows, &n), 0);
            cr_assert_eq(rs_format_waterfall(f, RS_FORMAT_CSV, rows, n, latest), 0);
            free(rows);
        } else {
            rs_rollforward_row_t *rows = NULL;
            cr_assert_eq(rs_report_rollforward(eng, &j, latest, &rows, &n), 0);
            cr_assert_eq(rs_format_rollforward(f, RS_FORMAT_CSV, rows, n, latest), 0);
            free(rows);
        }
        cr_assert_eq(fclose(f), 0);
        cr_assert_gt(n, 0);
        run_t r;
        run_cli(
            &r, NULL,
            (const char *[]){"replay", book, "--report", names[rep], "--format", "csv", NULL});
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert(strcmp(r.out, want) == 0, "--report %s differs from the kept journal's",
                  names[rep]);
        free(want);
        run_free(&r);
    }
    rs_journal_free(&j);
    rs_engine_destroy(eng);
    run_free(&g);
}

/* ---- defects of issue 17 that the CLI shows ---- */

/* Defect 7: a UTF-8 byte-order mark at the start of a JSON Lines file made
 * its first event rejected. replay and encode skip it (produce reads its
 * file the same way). */
Test(defects, jsonl_bom, .init = make_tmpdir, .fini = remove_tmpdir)
{
    char text[sizeof annual + 3];
    snprintf(text, sizeof text, "\xEF\xBB\xBF%s", annual);
    const char *in = write_file("bom.jsonl", text);
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", in, "--through", "2026-03", "--format", "json", NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    assert_annual_through_march(&r);
    cr_assert_not_null(strstr(r.err, "replay: done lines=3 events=3 applied=3"), "%s", r.err);
    run_free(&r);

    const char *out_dir = tmp_path("");
    run_cli(
        &r, NULL,
        (const char *[]){"encode", "--schemas", RS_SCHEMA_DIR, "--out-dir", out_dir, in, NULL});
    cr_assert_eq(r.status, 0, "stderr:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "lines=3 written=3 rejected=0"), "%s", r.err);
    run_free(&r);
}

/* ---- packed contracts (--memory-mb) ---- */

/* A book where a contract is booked late (its event dated before the
 * last close) and packed before the next close; a duplicate and an event
 * that waits for its contract. With --through 2026-04 the final advance
 * does not move the horizon, so it must not recognize again the records
 * the last close left behind. */
static const char LATE_BOOK[] =
    "{\"event_id\":\"b-A\",\"type\":\"contract.booked\",\"contract_id\":\"C-A\","
    "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CUS-1\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"P\","
    "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
    "\"amount\":\"12000.00\"}]}\n"
    "{\"event_id\":\"i-A\",\"type\":\"invoice.issued\",\"contract_id\":\"C-A\","
    "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-A\",\"issued_on\":"
    "\"2026-01-01\",\"due_on\":\"2026-01-31\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
    "\"12000.00\",\"service_start\":\"2026-01-01\",\"service_end\":\"2026-12-31\"}]}\n"
    "{\"event_id\":\"p-C\",\"type\":\"payment.received\",\"contract_id\":\"C-C\","
    "\"occurred_at\":\"2026-02-05T08:00:00Z\",\"payment_id\":\"PAY-C\",\"invoice_id\":"
    "\"INV-C\",\"amount\":\"100.00\",\"received_on\":\"2026-02-05\"}\n"
    "{\"event_id\":\"close-2026-03\",\"type\":\"period.closed\",\"occurred_at\":"
    "\"2026-04-02T18:00:00Z\",\"period\":\"2026-03\"}\n"
    "{\"event_id\":\"b-B\",\"type\":\"contract.booked\",\"contract_id\":\"C-B\","
    "\"occurred_at\":\"2026-02-15T09:00:00Z\",\"customer_id\":\"CUS-2\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-02-15\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"P\","
    "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
    "\"amount\":\"2400.00\"}]}\n"
    "{\"event_id\":\"i-A\",\"type\":\"invoice.issued\",\"contract_id\":\"C-A\","
    "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-A\",\"issued_on\":"
    "\"2026-01-01\",\"due_on\":\"2026-01-31\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
    "\"12000.00\",\"service_start\":\"2026-01-01\",\"service_end\":\"2026-12-31\"}]}\n"
    "{\"event_id\":\"close-2026-04\",\"type\":\"period.closed\",\"occurred_at\":"
    "\"2026-05-02T18:00:00Z\",\"period\":\"2026-04\"}\n";

/* Replay `book` with --memory-mb `mb` and the extra args; stdout and
 * status must be those of --memory-mb unlimited. Returns the packed run's
 * count of packed contracts ("packed=N" in its memory log). */
static long assert_packed_equals_live(const char *book, const char *report, const char *mb,
                                      const char *through)
{
    run_t live, packed;
    const char *a[] = {"replay",      book,        "--report",
                       report,        "--format",  "json",
                       "--memory-mb", "unlimited", through ? "--through" : NULL,
                       through,       NULL};
    run_cli(&live, NULL, a);
    a[7] = mb;
    run_cli(&packed, NULL, a);
    cr_assert(live.status == 0 || live.status == 2, "%s", live.err);
    cr_assert_gt(strlen(live.out), 2, "report %s is empty", report);
    cr_assert_eq(packed.status, live.status, "%s: %s", report, packed.err);
    cr_assert_str_eq(packed.out, live.out, "report %s differs with --memory-mb %s", report, mb);
    cr_assert_null(strstr(live.err, "replay: memory"), "unlimited packs nothing");
    const char *m = strstr(packed.err, "replay: memory ");
    cr_assert_not_null(m, "%s", packed.err);
    const char *p = strstr(m, " packs=");
    cr_assert_not_null(p);
    long packs = strtol(p + 7, NULL, 10);
    /* the done line's counts are those of the live run too */
    const char *dl = strstr(live.err, "replay: done"), *dp = strstr(packed.err, "replay: done");
    cr_assert(dl != NULL && dp != NULL);
    cr_assert_str_eq(dp, dl);
    run_free(&live);
    run_free(&packed);
    return packs;
}

static const char *const PACK_REPORTS[] = {"balances", "waterfall",  "rollforward", "journal",
                                           "schedule", "exceptions", "invoices",    "pending",
                                           "rejected", NULL};

Test(replay_cli, packed_book_reports_equal_the_live_book)
{
    run_t g;
    run_cli(&g, NULL, (const char *[]){"generate", "--contracts", "500", "--seed", "9", NULL});
    cr_assert_eq(g.status, 0, "%s", g.err);
    const char *book = write_file("packed.jsonl", g.out);
    run_free(&g);
    for (int i = 0; PACK_REPORTS[i] != NULL; i++) {
        /* 0: every contract packed after each of its events */
        cr_assert_gt(assert_packed_equals_live(book, PACK_REPORTS[i], "0", NULL), 500);
        cr_assert_gt(assert_packed_equals_live(SAMPLE, PACK_REPORTS[i], "0", NULL), 0);
    }
    /* 1 MiB: part of the book live, the clock choosing what to pack */
    cr_assert_gt(assert_packed_equals_live(book, "balances", "1", NULL), 0);
    cr_assert_gt(assert_packed_equals_live(book, "waterfall", "1", "2027-03"), 0);
}

Test(replay_cli, packed_late_booking_and_repeated_close_post_as_live)
{
    const char *book = write_file("late.jsonl", LATE_BOOK);
    for (int i = 0; PACK_REPORTS[i] != NULL; i++) {
        assert_packed_equals_live(book, PACK_REPORTS[i], "0", NULL);
        /* the final advance finds the horizon where the last close left it */
        assert_packed_equals_live(book, PACK_REPORTS[i], "0", "2026-04");
    }
    /* C-B's months before the close it was booked after are recognized */
    run_t r;
    run_cli(&r, NULL,
            (const char *[]){"replay", book, "--report", "balances", "--format", "json",
                             "--memory-mb", "0", "--through", "2026-04", NULL});
    json_t *rows = parse_report(&r);
    json_t *b = find_row(rows, "C-B", "L1");
    cr_assert_not_null(b);
    cr_assert_str_eq(field(b, "recognized"), "800.00"); /* 4 of 12 months of 2400.00 */
    json_decref(rows);
    run_free(&r);
}

Test(replay_cli, memory_mb_option_is_checked)
{
    run_t r;
    run_cli(&r, NULL, (const char *[]){"replay", SAMPLE, "--memory-mb", "lots", NULL});
    cr_assert_eq(r.status, 1);
    cr_assert_not_null(strstr(r.err, "--memory-mb: \"lots\" is not a number"), "%s", r.err);
    run_free(&r);
}
