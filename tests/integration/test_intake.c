/*
 * test_intake — `revstream crm` and `revstream billing` (workers/intake)
 * against the golden exports of tests/golden/intake/, and the round trip:
 * a HubSpot export, a Stripe event file and CloudEvents usage through the
 * worker on the embedded broker, compared with `revstream replay`.
 *
 * Invariants:
 *   - Golden: the exact events (expected*.jsonl, reviewed line by line) and
 *     the exact report lines on stderr (expected*.stderr), and the exit
 *     status (2 when a deal or record was reported).
 *   - Re-running an intake on the same export gives the same bytes.
 *   - Round trip: the worker's journal gives replay's balances and schedule
 *     row for row, its balance snapshots equal replay's, and each contract's
 *     recognized total is the deal amount of the HubSpot export, less its
 *     credit notes, plus its usage.
 *
 * Ownership: temp dirs are removed (kh_rm_rf) unless RS_TEST_KEEP=1.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_money.h"
#include "rs_test_util.h"

#define GOLD RS_SOURCE_DIR "/tests/golden/intake/"

/* Runs revstream with argv (argv[0] "revstream"), stdout to dir/name.out,
 * stderr to dir/name.err; returns the exit status. */
static int run(char *const argv[], const char *dir, const char *name)
{
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/%s.out", dir, name);
    snprintf(err, sizeof err, "%s/%s.err", dir, name);
    int status = kh_wait_exit(kh_spawn(argv, out, err, NULL), KH_DEADLINE_S, err);
    cr_assert(WIFEXITED(status), "revstream %s did not exit", argv[1]);
    return WEXITSTATUS(status);
}

/* The lines of text that start with prefix, joined. Caller frees. */
static char *lines_with(const char *text, const char *prefix)
{
    size_t cap = strlen(text) + 1, n = 0;
    char *out = calloc(1, cap);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p + 1) : strlen(p);
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    return out;
}

static void assert_file_eq(const char *dir, const char *name, const char *ext,
                           const char *expected_path, const char *prefix)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    char *got = kh_slurp(path), *want = kh_slurp(expected_path);
    char *gotf = prefix ? lines_with(got, prefix) : strdup(got);
    cr_assert(want[0] != '\0', "%s is empty or missing", expected_path);
    cr_assert_str_eq(gotf, want, "%s differs from %s:\n--- got\n%s--- want\n%s", path,
                     expected_path, gotf, want);
    free(got);
    free(want);
    free(gotf);
}

/* Runs argv as `name`, expects exit status `want`, stdout equal to the
 * golden out and (err not NULL) the stderr lines starting with prefix equal
 * to the golden err. */
static void golden(char *const argv[], const char *dir, const char *name, int want,
                   const char *out, const char *err, const char *prefix)
{
    cr_assert_eq(run(argv, dir, name), want, "revstream %s: exit status", name);
    assert_file_eq(dir, name, "out", out, NULL);
    if (err != NULL)
        assert_file_eq(dir, name, "err", err, prefix);
}

Test(intake_golden, hubspot_pages_multi_currency_missing_term_and_amendment)
{
    char dir[64], state[128];
    kh_make_dir(dir, sizeof dir);
    snprintf(state, sizeof state, "%s/state.jsonl", dir);
    char *run1[] = {"revstream",
                    "crm",
                    "hubspot",
                    GOLD "hubspot/deals-1.json",
                    GOLD "hubspot/deals-2.json",
                    GOLD "hubspot/line-items.json",
                    "--map",
                    GOLD "hubspot/map.properties",
                    "--state",
                    state,
                    NULL};
    /* deal 9005 has no term: reported, left out, exit 2; the rest booked */
    golden(run1, dir, "run1", 2, GOLD "hubspot/expected-run1.jsonl",
           GOLD "hubspot/expected-run1.stderr", "crm: deal=");
    char errpath[128];
    snprintf(errpath, sizeof errpath, "%s/run1.err", dir);
    char *log = kh_slurp(errpath);
    cr_assert_not_null(strstr(log, "deals=5 emitted=3 booked=3 amended=0 unchanged=0 "
                                   "not_won=1 incomplete=1"),
                       "%s", log);
    free(log);

    /* the changed export: 9001 amended, 9002 unchanged, 9005 (term now given)
     * booked; the history is repeated, so the output stands alone */
    char *run2[] = {"revstream", "crm",
                    "hubspot",   GOLD "hubspot/deals-amended.json",
                    "--map",     GOLD "hubspot/map.properties",
                    "--state",   state,
                    NULL};
    golden(run2, dir, "run2", 0, GOLD "hubspot/expected-run2.jsonl", NULL, NULL);

    /* again: same bytes (same ids), nothing new in the state */
    char *before = kh_slurp(state);
    golden(run2, dir, "run3", 0, GOLD "hubspot/expected-run2.jsonl", NULL, NULL);
    char *after = kh_slurp(state);
    cr_assert_str_eq(before, after);
    /* 3 bookings of run 1, then the amendment of 9001 and the booking of 9005 */
    size_t lines = 0;
    for (const char *p = after; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 5u);
    free(before);
    free(after);

    /* without a state, the same export books again under the same ids */
    char *run4[] = {"revstream",
                    "crm",
                    "hubspot",
                    GOLD "hubspot/deals-1.json",
                    GOLD "hubspot/deals-2.json",
                    GOLD "hubspot/line-items.json",
                    "--map",
                    GOLD "hubspot/map.properties",
                    NULL};
    golden(run4, dir, "run4", 2, GOLD "hubspot/expected-run1.jsonl", NULL, NULL);
    kh_rm_rf(dir);
}

Test(intake_golden, hubspot_cut_short_export_is_an_error)
{
    char dir[64];
    kh_make_dir(dir, sizeof dir);
    /* page 1 says a page follows, and none is given */
    char *argv[] = {"revstream", "crm", "hubspot", GOLD "hubspot/deals-1.json", NULL};
    cr_assert_eq(run(argv, dir, "cut"), 1);
    char path[128];
    snprintf(path, sizeof path, "%s/cut.err", dir);
    char *log = kh_slurp(path);
    cr_assert_not_null(strstr(log, "error=incomplete"), "%s", log);
    cr_assert_not_null(strstr(log, "after=\"9003\""), "%s", log);
    free(log);
    kh_rm_rf(dir);
}

Test(intake_golden, salesforce_json_pages_csv_and_an_amendment)
{
    char dir[64], state[128], state_csv[128];
    kh_make_dir(dir, sizeof dir);
    snprintf(state, sizeof state, "%s/state.jsonl", dir);
    snprintf(state_csv, sizeof state_csv, "%s/state-csv.jsonl", dir);
    char *json[] = {"revstream",
                    "crm",
                    "salesforce",
                    GOLD "salesforce/query-1.json",
                    GOLD "salesforce/query-2.json",
                    "--map",
                    GOLD "salesforce/map.properties",
                    "--state",
                    state,
                    NULL};
    char *csv[] = {"revstream",
                   "crm",
                   "salesforce",
                   GOLD "salesforce/Opportunity.csv",
                   GOLD "salesforce/OpportunityLineItem.csv",
                   "--map",
                   GOLD "salesforce/map.properties",
                   "--state",
                   state_csv,
                   NULL};
    /* Nakatomi's line has no term: reported; the lost deal (IsWon false,
     * whatever its stage name says) is skipped; CSV gives the same bytes */
    golden(json, dir, "json", 2, GOLD "salesforce/expected.jsonl",
           GOLD "salesforce/expected.stderr", "crm: deal=");
    golden(csv, dir, "csv", 2, GOLD "salesforce/expected.jsonl",
           GOLD "salesforce/expected.stderr", "crm: deal=");
    char *a = kh_slurp(state), *b = kh_slurp(state_csv);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    /* Stark's platform line went up and an onboarding line came (modified
     * 2026-05-03): amended from that day; Wayne unchanged */
    char *run2[] = {"revstream",
                    "crm",
                    "salesforce",
                    GOLD "salesforce/query-1-amended.json",
                    GOLD "salesforce/query-2.json",
                    "--map",
                    GOLD "salesforce/map.properties",
                    "--state",
                    state,
                    NULL};
    golden(run2, dir, "run2", 2, GOLD "salesforce/expected-run2.jsonl",
           GOLD "salesforce/expected.stderr", "crm: deal=");
    kh_rm_rf(dir);
}

Test(intake_golden, stripe_events_and_list_page)
{
    char dir[64];
    kh_make_dir(dir, sizeof dir);
    char *argv[] = {"revstream",
                    "billing",
                    "stripe",
                    GOLD "stripe/events.jsonl",
                    GOLD "stripe/events-page.json",
                    "--map",
                    GOLD "stripe/map.properties",
                    NULL};
    /* in_9999's line links to no contract line: reported, exit 2 */
    golden(argv, dir, "stripe", 2, GOLD "stripe/expected.jsonl", GOLD "stripe/expected.stderr",
           "billing: event=");
    kh_rm_rf(dir);
}

Test(intake_golden, stripe_currency_exponents_are_exact)
{
    char dir[64], path[128];
    kh_make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/isk.jsonl", dir);
    /* ISK: Stripe writes two decimals that must be 00; KWD has three; an ISK
     * amount with real decimals cannot be booked exactly and is reported */
    kh_write_file(
        path,
        "{\"id\":\"evt_k\",\"type\":\"invoice.finalized\",\"created\":1767225600,\"data\":{"
        "\"object\":{\"id\":\"in_k\",\"currency\":\"kwd\",\"lines\":{\"data\":[{\"id\":\"il_"
        "k\",\"amount\":1250125,\"metadata\":{\"revstream_contract_id\":\"C-K\",\"revstream_"
        "line_id\":\"L1\"}}]}}}}\n"
        "{\"id\":\"evt_i\",\"type\":\"invoice.finalized\",\"created\":1767225601,\"data\":{"
        "\"object\":{\"id\":\"in_i\",\"currency\":\"isk\",\"lines\":{\"data\":[{\"id\":\"il_"
        "i\",\"amount\":990000,\"metadata\":{\"revstream_contract_id\":\"C-I\",\"revstream_"
        "line_id\":\"L1\"}}]}}}}\n"
        "{\"id\":\"evt_j\",\"type\":\"invoice.finalized\",\"created\":1767225602,\"data\":{"
        "\"object\":{\"id\":\"in_j\",\"currency\":\"isk\",\"lines\":{\"data\":[{\"id\":\"il_"
        "j\",\"amount\":990050,\"metadata\":{\"revstream_contract_id\":\"C-I\",\"revstream_"
        "line_id\":\"L1\"}}]}}}}\n");
    char *argv[] = {"revstream", "billing", "stripe", path, NULL};
    cr_assert_eq(run(argv, dir, "cur"), 2);
    snprintf(path, sizeof path, "%s/cur.out", dir);
    char *out = kh_slurp(path);
    cr_assert_not_null(strstr(out, "\"invoice_id\":\"in_k\",\"issued_on\":\"2026-01-01\","
                                   "\"lines\":[{\"line_id\":\"L1\",\"amount\":\"1250.125\"}]"),
                       "%s", out);
    cr_assert_not_null(strstr(out, "\"lines\":[{\"line_id\":\"L1\",\"amount\":\"9900\"}]"),
                       "%s", out);
    cr_assert_null(strstr(out, "in_j"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/cur.err", dir);
    char *log = kh_slurp(path);
    cr_assert_not_null(strstr(log, "billing: event=evt_j error=amount"), "%s", log);
    free(log);
    kh_rm_rf(dir);
}

/* Writes text to dir/name and returns the path (static buffer per slot). */
static const char *put(const char *dir, const char *name, const char *text, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", dir, name);
    kh_write_file(buf, text);
    return buf;
}

/* The stderr of run `name` in dir. Caller frees. */
static char *err_of(const char *dir, const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s.err", dir, name);
    return kh_slurp(path);
}

Test(intake_errors, each_missing_or_inexact_field_is_named_and_the_rest_go_on)
{
    char dir[64], f1[128], f2[128];
    kh_make_dir(dir, sizeof dir);
    /* D1 names a line item no file holds; D2 has no currency anywhere; D3
     * has no company and a USD amount with three decimals; D4 is fine */
    put(dir, "deals.json",
        "{\"results\":["
        "{\"id\":\"D1\",\"properties\":{\"dealstage\":\"closedwon\",\"closedate\":\"2026-01-"
        "01\","
        "\"deal_currency_code\":\"USD\"},\"associations\":{\"companies\":{\"results\":[{\"id\":"
        "\"C\"}]},\"line items\":{\"results\":[{\"id\":\"L404\"}]}}},"
        "{\"id\":\"D2\",\"properties\":{\"dealstage\":\"closedwon\",\"closedate\":\"2026-01-"
        "01\"},"
        "\"associations\":{\"companies\":{\"results\":[{\"id\":\"C\"}]},\"line items\":{"
        "\"results\":[{\"id\":\"L1\"}]}}},"
        "{\"id\":\"D3\",\"properties\":{\"dealstage\":\"closedwon\",\"closedate\":\"2026-01-"
        "01\","
        "\"deal_currency_code\":\"USD\"},\"associations\":{\"line "
        "items\":{\"results\":[{\"id\":"
        "\"L2\"}]}}},"
        "{\"id\":\"D4\",\"properties\":{\"dealstage\":\"closedwon\",\"closedate\":\"2026-01-"
        "01\","
        "\"deal_currency_code\":\"USD\"},\"associations\":{\"companies\":{\"results\":[{\"id\":"
        "\"C\"}]},\"line items\":{\"results\":[{\"id\":\"L1\"}]}}}]}",
        f1, sizeof f1);
    put(dir, "items.json",
        "{\"results\":["
        "{\"id\":\"L1\",\"properties\":{\"name\":\"P\",\"amount\":\"100\","
        "\"hs_recurring_billing_start_date\":\"2026-01-01\",\"hs_term_in_months\":\"1\"}},"
        "{\"id\":\"L2\",\"properties\":{\"name\":\"P\",\"amount\":\"100.125\","
        "\"hs_recurring_billing_start_date\":\"2026-01-01\",\"hs_term_in_months\":\"1\"}}]}",
        f2, sizeof f2);
    char *argv[] = {"revstream", "crm", "hubspot", f1, f2, NULL};
    cr_assert_eq(run(argv, dir, "hs"), 2);
    char *log = err_of(dir, "hs");
    static const char *const want[] = {
        "crm: deal=D1 line=L404 error=missing field=line_item",
        "crm: deal=D2 error=missing field=currency",
        "crm: deal=D3 error=missing field=customer_id tried=\"associations.companies\"",
        "crm: deal=D3 line=L2 error=invalid field=amount reason=\"100.125 USD: has 3 "
        "minor digits, the currency allows 2\"",
        "deals=4 emitted=1 booked=1 amended=0 unchanged=0 not_won=0 incomplete=3"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(strstr(log, want[i]), "missing \"%s\" in:\n%s", want[i], log);
    free(log);
    snprintf(f1, sizeof f1, "%s/hs.out", dir);
    log = kh_slurp(f1);
    cr_assert_not_null(strstr(log, "\"event_id\":\"hubspot-D4\""), "%s", log);
    cr_assert_not_null(strstr(log, "\"end\":\"2026-01-31\",\"amount\":\"100.00\""), "%s", log);
    free(log);

    /* Salesforce: a JSON number that needs 16 digits is refused, not rounded */
    put(dir, "sf.json",
        "{\"done\":true,\"records\":[{\"attributes\":{\"type\":\"Opportunity\"},\"Id\":\"O1\","
        "\"IsWon\":true,\"CloseDate\":\"2026-01-01\",\"CurrencyIsoCode\":\"USD\",\"AccountId\":"
        "\"A\",\"OpportunityLineItems\":{\"done\":true,\"records\":[{\"attributes\":{\"type\":"
        "\"OpportunityLineItem\"},\"Id\":\"I1\",\"Name\":\"P\",\"TotalPrice\":"
        "12345678901234.56,\"ServiceDate\":\"2026-01-01\",\"SBQQ__SubscriptionTerm__c\":12}]}}]"
        "}",
        f1, sizeof f1);
    char *sf[] = {"revstream", "crm", "salesforce", f1, NULL};
    cr_assert_eq(run(sf, dir, "sf"), 2);
    log = err_of(dir, "sf");
    cr_assert_not_null(strstr(log, "crm: deal=O1 line=I1 error=invalid field=amount "
                                   "reason=\"(a JSON number of more than 15 digits): "),
                       "%s", log);
    free(log);

    /* the map refuses a method a CRM line cannot carry, naming file and line */
    put(dir, "bad.properties", "# map\nrecognition.sku.X = milestone\n", f2, sizeof f2);
    char *bad[] = {"revstream", "crm", "hubspot", f1, "--map", f2, NULL};
    cr_assert_eq(run(bad, dir, "map"), 1);
    log = err_of(dir, "map");
    cr_assert_not_null(strstr(log, "bad.properties:2: recognition.sku.X: expected "
                                   "ratable_daily, ratable_monthly, point_in_time or usage"),
                       "%s", log);
    free(log);

    /* Stripe: one invoice with lines of two contracts is reported */
    put(dir, "two.jsonl",
        "{\"id\":\"evt_2\",\"type\":\"invoice.finalized\",\"created\":1767225600,\"data\":{"
        "\"object\":{\"id\":\"in_2\",\"currency\":\"usd\",\"lines\":{\"data\":["
        "{\"id\":\"a\",\"amount\":100,\"metadata\":{\"revstream_contract_id\":\"C1\","
        "\"revstream_line_id\":\"L1\"}},"
        "{\"id\":\"b\",\"amount\":100,\"metadata\":{\"revstream_contract_id\":\"C2\","
        "\"revstream_line_id\":\"L1\"}}]}}}}\n",
        f1, sizeof f1);
    char *two[] = {"revstream", "billing", "stripe", f1, NULL};
    cr_assert_eq(run(two, dir, "two"), 2);
    log = err_of(dir, "two");
    cr_assert_not_null(strstr(log,
                              "billing: event=evt_2 error=contracts reason=\"invoice in_2: "
                              "lines of contracts C1 and C2\""),
                       "%s", log);
    free(log);
    kh_rm_rf(dir);
}

/* ------------------------------------------------------------------------ */
/* round trip                                                               */
/* ------------------------------------------------------------------------ */

/* Appends every line of file to events. */
static void add_lines(kh_events_t *ev, const char *path)
{
    char *text = kh_slurp(path);
    for (char *p = text, *eol; *p; p = eol + 1) {
        eol = strchr(p, '\n');
        cr_assert_not_null(eol);
        *eol = '\0';
        if (*p)
            kh_ev_add(ev, p);
    }
    free(text);
}

static const char *const CE_USAGE[2] = {
    "{\"specversion\":\"1.0\",\"id\":\"u-0001\",\"source\":\"/meter/api\",\"type\":"
    "\"com.example.api.calls\",\"subject\":\"contracts/9001/lines/7003\",\"time\":"
    "\"2026-02-14T23:59:00Z\",\"datacontenttype\":\"application/json\",\"data\":{"
    "\"quantity\":\"125000\"}}",
    "{\"specversion\":\"1.0\",\"id\":\"u-0002\",\"source\":\"/meter/api\",\"type\":"
    "\"com.example.api.calls\",\"subject\":\"9001/7003\",\"time\":\"2026-03-03T10:00:00Z\","
    "\"data\":{\"quantity\":250000}}"};

typedef struct timed {
    int64_t ms;
    size_t i;
    kh_event_t ev;
} timed_t;

static int by_time(const void *a, const void *b)
{
    const timed_t *x = a, *y = b;
    return x->ms != y->ms ? (x->ms < y->ms ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

/* Sorts the events by occurred_at (stable): the order the worker applies
 * them in, since it merges a partition's topics by event time. */
static void sort_by_time(kh_events_t *l)
{
    timed_t *t = calloc(l->n, sizeof *t);
    for (size_t i = 0; i < l->n; i++) {
        rs_event_t ev;
        char err[256];
        cr_assert_eq(
            rs_codec_json_decode(l->v[i].json, strlen(l->v[i].json), &ev, err, sizeof err), 0,
            "%s", err);
        cr_assert_eq(rs_timestamp_parse_ms(ev.occurred_at, &t[i].ms), 0);
        rs_event_clear(&ev);
        t[i].i = i;
        t[i].ev = l->v[i];
    }
    qsort(t, l->n, sizeof *t, by_time);
    for (size_t i = 0; i < l->n; i++)
        l->v[i] = t[i].ev;
    free(t);
}

/* `replay --report schedule` of the events through `through`. */
static json_t *replay_schedule(const kh_events_t *events, const char *dir, const char *through)
{
    char path[160], name[32] = "schedule";
    snprintf(path, sizeof path, "%s/all.jsonl", dir);
    kh_ev_write(events, path);
    char *argv[] = {"revstream", "replay",   path,       "--through", (char *)through,
                    "--report",  "schedule", "--format", "json",      NULL};
    cr_assert_leq(run(argv, dir, name), 2);
    snprintf(path, sizeof path, "%s/schedule.out", dir);
    char *text = kh_slurp(path);
    json_t *rows = json_loads(text, 0, NULL);
    cr_assert(json_is_array(rows), "%s", text);
    free(text);
    return rows;
}

/* HubSpot's deal amount (properties.amount) of the export that last named
 * the deal, in minor units. */
static rs_money_t deal_amount(const char *id, int exponent)
{
    static const char *const files[3] = {GOLD "hubspot/deals-amended.json",
                                         GOLD "hubspot/deals-1.json",
                                         GOLD "hubspot/deals-2.json"};
    for (int f = 0; f < 3; f++) {
        json_t *root = json_load_file(files[f], 0, NULL), *d;
        size_t i;
        json_array_foreach(json_object_get(root, "results"), i, d)
        {
            if (strcmp(json_string_value(json_object_get(d, "id")), id) == 0) {
                rs_money_t v = rs_amt(json_string_value(json_object_get(
                                          json_object_get(d, "properties"), "amount")),
                                      exponent);
                json_decref(root);
                return v;
            }
        }
        json_decref(root);
    }
    cr_assert_fail("deal %s not in the export", id);
    return 0;
}

Test(intake_roundtrip, hubspot_and_stripe_through_the_worker_equal_replay, .timeout = 180)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], state[160], extra[256];
    kh_events_t events = {0}, closes = {0};
    kh_worker_t w;
    rs_journal_t j;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    snprintf(
        extra, sizeof extra,
        "exit.when.idle=true\ninput.idle.ms=60000\ninput.format=json\noutput.format=json\n");
    kh_worker_init(&w, bs, "g-intake", extra);
    snprintf(state, sizeof state, "%s/crm-state.jsonl", w.dir);

    /* the intake commands produce straight to the input topics */
    char *crm1[] = {"revstream",
                    "crm",
                    "hubspot",
                    GOLD "hubspot/deals-1.json",
                    GOLD "hubspot/deals-2.json",
                    GOLD "hubspot/line-items.json",
                    "--map",
                    GOLD "hubspot/map.properties",
                    "--state",
                    state,
                    "--produce",
                    "--config",
                    w.cfg,
                    NULL};
    char *crm2[] = {"revstream", "crm",
                    "hubspot",   GOLD "hubspot/deals-amended.json",
                    "--map",     GOLD "hubspot/map.properties",
                    "--state",   state,
                    "--produce", "--config",
                    w.cfg,       NULL};
    char *bill[] = {"revstream",
                    "billing",
                    "stripe",
                    GOLD "stripe/events.jsonl",
                    GOLD "stripe/events-page.json",
                    "--map",
                    GOLD "stripe/map.properties",
                    "--produce",
                    "--config",
                    w.cfg,
                    NULL};
    cr_assert_eq(run(crm1, w.dir, "crm1"), 2); /* 9005 without its term */
    cr_assert_eq(run(crm2, w.dir, "crm2"), 0);
    cr_assert_eq(run(bill, w.dir, "bill"), 2); /* in_9999 unlinked */

    /* the same events for replay: what the commands wrote, in that order */
    add_lines(&events, GOLD "hubspot/expected-run1.jsonl");
    add_lines(&events, GOLD "hubspot/expected-run2.jsonl");
    add_lines(&events, GOLD "stripe/expected.jsonl");

    /* usage as CloudEvents, raw on the usage topic (the worker's JSON
     * input), stamped with their event time as a metering pipeline does */
    rd_kafka_t *p = kh_new_producer(bs);
    for (int i = 0; i < 2; i++) {
        json_t *ce = json_loads(CE_USAGE[i], 0, NULL);
        int64_t ts = 0;
        cr_assert_eq(rs_timestamp_parse_ms(json_string_value(json_object_get(ce, "time")), &ts),
                     0);
        json_decref(ce);
        kh_ev_add(&events, CE_USAGE[i]);
        cr_assert_eq(
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC("usage"), RD_KAFKA_V_KEY("9001", 4),
                              RD_KAFKA_V_VALUE((void *)CE_USAGE[i], strlen(CE_USAGE[i])),
                              RD_KAFKA_V_TIMESTAMP(ts),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    kh_flush_ok(p);
    /* close 2026-01 .. 2027-03 (every service of the book is over) after
     * every event: the worker merges its topics by event time, and replay
     * reads the file in order, so both apply the closes last */
    for (int m = 0; m < 15; m++) {
        int y = 2026 + m / 12, mo_ = m % 12 + 1;
        kh_ev_addf(&closes,
                   "{\"event_id\":\"close-%04d-%02d\",\"type\":\"period.closed\","
                   "\"occurred_at\":\"2027-04-02T00:%02d:00Z\",\"period\":\"%04d-%02d\"}",
                   y, mo_, m, y, mo_);
        kh_ev_add(&events, closes.v[closes.n - 1].json);
    }
    /* each close to every partition of contracts, stamped with its event
     * time (after every event of the book, whatever the clock says) */
    for (size_t c = 0; c < closes.n; c++) {
        for (int32_t part = 0; part < KH_NPARTS; part++) {
            const char *v = closes.v[c].json;
            cr_assert_eq(
                rd_kafka_producev(p, RD_KAFKA_V_TOPIC("contracts"), RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_VALUE((void *)v, strlen(v)),
                                  RD_KAFKA_V_TIMESTAMP(1806624000000 + (int64_t)c * 60000),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    }
    kh_flush_ok(p);
    rd_kafka_destroy(p);
    sort_by_time(&events);

    kh_worker_run_idle(&w, NULL);
    static const char *const outs[3] = {"revenue.journal", "revenue.deferred-balances",
                                        "revenue.dlq"};
    kh_recs_t rec[3];
    kh_read_topics(bs, outs, 3, rec);
    cr_assert_eq(rec[2].n, 0u, "%zu dead letters: %s", rec[2].n,
                 rec[2].n ? kh_hdr(&rec[2].v[0], "error") : "");
    kh_journal_of(&rec[0], 0, &j);

    /* balances: journal and snapshots equal replay, line for line */
    json_t *rows = kh_replay_balances(&events, w.dir, "2027-03");
    kh_check_journal_balances(&events, &j, rows);
    kh_check_snapshots(&rec[1], 0, rows);

    /* schedule: the worker's journal gives replay's schedule row for row */
    rs_harness_t h;
    rs_schedule_row_t *s = NULL;
    size_t n = 0;
    rs_harness_init(&h, NULL);
    for (size_t i = 0; i < events.n; i++)
        rs_harness_apply(&h, events.v[i].json);
    cr_assert_eq(rs_report_schedule(h.engine, &j, kh_period_of("2027-03"), &s, &n), 0);
    json_t *sched = replay_schedule(&events, w.dir, "2027-03");
    cr_assert_eq(n, json_array_size(sched), "%zu schedule rows from the journal, replay %zu", n,
                 json_array_size(sched));
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(sched, i);
        char m[48], per[16];
        cr_assert_str_eq(s[i].contract_id, kh_row_str(row, "contract_id"));
        cr_assert_str_eq(s[i].line_id, kh_row_str(row, "line_id"));
        cr_assert_str_eq(rs_period_format(s[i].period, per, sizeof per),
                         kh_row_str(row, "period"));
        cr_assert_str_eq(rs_money_format(s[i].recognized, s[i].exponent, m, sizeof m),
                         kh_row_str(row, "recognized"), "%s/%s %s: journal %s, replay %s",
                         s[i].contract_id, s[i].line_id, per, m, kh_row_str(row, "recognized"));
    }
    free(s);
    json_decref(sched);

    /* ties: recognized per contract = the deal amount - credit notes + usage
     * (9001: 19840.00 - 900.00 discount + 375000 calls x 0.002 = 19690.00) */
    static const struct {
        const char *contract;
        int exponent;
        const char *credits, *usage, *want;
    } ties[4] = {{"9001", 2, "900.00", "750.00", "19690.00"},
                 {"9002", 2, "0", "0", "12000.00"},
                 {"9004", 0, "0", "0", "1740000"},
                 {"9005", 2, "0", "0", "6000.00"}};
    for (int t = 0; t < 4; t++) {
        rs_money_t rec_total = 0;
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            if (strcmp(kh_row_str(row, "contract_id"), ties[t].contract) == 0)
                rec_total += rs_amt(kh_row_str(row, "recognized"), ties[t].exponent);
        }
        rs_money_t want = deal_amount(ties[t].contract, ties[t].exponent) -
                          rs_amt(ties[t].credits, ties[t].exponent) +
                          rs_amt(ties[t].usage, ties[t].exponent);
        cr_assert_eq(rec_total, want, "contract %s: recognized %lld, deal ties to %lld",
                     ties[t].contract, (long long)rec_total, (long long)want);
        cr_assert_eq(want, rs_amt(ties[t].want, ties[t].exponent));
    }

    rs_harness_free(&h);
    json_decref(rows);
    rs_journal_free(&j);
    for (int k = 0; k < 3; k++)
        kh_recs_free(&rec[k]);
    kh_ev_free(&events);
    kh_ev_free(&closes);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}
