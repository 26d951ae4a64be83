/*
 * test_format.c — rs_format: every report in table, CSV and JSON, compared
 * byte for byte with what a person (table), a spreadsheet (RFC 4180 CSV) and
 * a program (the JSON shapes of events.md) must get.
 *
 * Invariants of this test:
 *   - Rows are built by hand (no engine), so a change in formatting shows
 *     here and nowhere else. The journal's JSON rows are whatever
 *     rs_codec_entry_json() makes; that is checked structurally.
 *   - Output is captured with open_memstream(); every buffer is freed.
 *
 * rs_format.c belongs to the `revstream` executable, not to a library, so it
 * is compiled into this test directly.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/cli/rs_format.c"

#define PER(y, m) rs_period_of(rs_date_from_ymd((y), (m), 1))

/* ---- capture ---- */

typedef struct cap {
    char *buf;
    size_t len;
    FILE *f;
} cap_t;

static FILE *cap_begin(cap_t *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    cr_assert_not_null(c->f);
    return c->f;
}

/* Close the stream; the caller frees the returned text. */
static char *cap_end(cap_t *c)
{
    cr_assert_eq(fclose(c->f), 0);
    return c->buf;
}

/* Run CALL (which writes to `f`), expect it to return 0 and print EXPECTED. */
#define EXPECT_OUTPUT(CALL, EXPECTED)                                                          \
    do {                                                                                       \
        cap_t cap_;                                                                            \
        FILE *f = cap_begin(&cap_);                                                            \
        cr_assert_eq((CALL), 0, "%s returned non-zero", #CALL);                                \
        char *got_ = cap_end(&cap_);                                                           \
        cr_assert_str_eq(got_, (EXPECTED));                                                    \
        free(got_);                                                                            \
    } while (0)

/* ---- fixtures ---- */

static const rs_balance_row_t BAL[] = {
    {"C-1", "L1", "CUS-1", "USD", 2, 1200000, 300000, 900000, 0, 1200000},
    {"C,\"2\"", "L-2", "CUS-2", "USD", 2, -5000, 12345678, 0, 12350678, 0},
    {"C-3", "L1", "CUS-3", "JPY", 0, 1200000, 100000, 1100000, 0, 0},
    {"C-4", "L1", "CUS-4", "KWD", 3, 1250, 125, 1125, 0, -1},
};

static rs_schedule_row_t SCHED[3];
static rs_waterfall_row_t WF[5];
static rs_rollforward_row_t RF[3];
static rs_entry_t ENT[2];

static void set_sched(rs_schedule_row_t *r, const char *c, const char *l, const char *cur,
                      int x, rs_period_t p, rs_money_t v)
{
    r->contract_id = c;
    r->line_id = l;
    r->currency = cur;
    r->exponent = x;
    r->period = p;
    r->recognized = v;
}

static void set_wf(rs_waterfall_row_t *r, rs_period_t p, const char *cur, int x, rs_money_t rec,
                   rs_money_t def, int projected)
{
    memset(r, 0, sizeof *r);
    r->period = p;
    snprintf(r->currency, sizeof r->currency, "%s", cur);
    r->exponent = x;
    r->recognized = rec;
    r->deferred = def;
    r->projected = projected;
    r->from_deferred = projected ? 0 : rec;
}

static void set_rf(rs_rollforward_row_t *r, rs_period_t p, const char *cur, int x,
                   rs_money_t open, rs_money_t billed, rs_money_t rec, rs_money_t cred)
{
    memset(r, 0, sizeof *r);
    r->period = p;
    snprintf(r->currency, sizeof r->currency, "%s", cur);
    r->exponent = x;
    r->opening = open;
    r->billed = billed;
    r->recognized = rec;
    r->credits = cred;
    r->closing = open + billed - rec - cred;
    r->revenue = rec;
}

static void set_entry(rs_entry_t *e, const char *id, rs_date_t on, rs_entry_kind_t kind,
                      const char *rule, const char *doc)
{
    memset(e, 0, sizeof *e);
    snprintf(e->entry_id, sizeof e->entry_id, "%s", id);
    e->posted_on = on;
    e->period = rs_period_of(on);
    e->service_period = e->period;
    e->kind = kind;
    snprintf(e->rule, sizeof e->rule, "%s", rule);
    strcpy(e->contract_id, "C-1");
    strcpy(e->customer_id, "CUS-1");
    strcpy(e->line_id, "L1");
    strcpy(e->product, "Annual");
    snprintf(e->document_id, sizeof e->document_id, "%s", doc);
    strcpy(e->currency, "USD");
    e->exponent = 2;
}

static void add_posting(rs_entry_t *e, rs_account_t a, rs_money_t dr, rs_money_t cr)
{
    e->postings[e->n_postings++] = (rs_posting_t){.account = a, .debit = dr, .credit = cr};
}

static void add_source(rs_entry_t *e, const char *id)
{
    snprintf(e->sources[e->n_sources++], RS_ID_MAX, "%s", id);
    e->source_count = (uint32_t)e->n_sources;
}

static void fixtures(void)
{
    set_sched(&SCHED[0], "C-J", "L1", "JPY", 0, PER(2026, 4), 100000);
    set_sched(&SCHED[1], "C-K", "L1", "KWD", 3, PER(2026, 4), -1250);
    set_sched(&SCHED[2], "C-K", "L1", "KWD", 3, PER(2026, 5), 1234567);

    set_wf(&WF[0], PER(2026, 1), "JPY", 0, 100000, 1100000, 0);
    set_wf(&WF[1], PER(2026, 1), "USD", 2, 100000, 1100000, 0);
    set_wf(&WF[2], PER(2026, 2), "USD", 2, 100000, 1000000, 0);
    set_wf(&WF[3], PER(2026, 3), "USD", 2, 100000, 900000, 1);
    set_wf(&WF[4], PER(2026, 4), "USD", 2, 99999900, 0, 1);
    /* 420.00 of February's USD revenue was recognized before it was billed */
    WF[2].from_deferred = 58000;
    WF[2].not_via_deferred = 42000;

    set_rf(&RF[0], PER(2026, 1), "USD", 2, 0, 1200000, 100000, 0);
    set_rf(&RF[1], PER(2026, 2), "JPY", 0, 0, 1200000, 100000, 0);
    set_rf(&RF[2], PER(2026, 2), "USD", 2, 1100000, 0, 100000, 6000);
    RF[2].not_via_deferred = 42000;
    RF[2].revenue = 142000;

    set_entry(&ENT[0], "C-1#1", rs_date_from_ymd(2026, 1, 1), RS_ENTRY_INVOICE, "invoice",
              "INV-1");
    add_posting(&ENT[0], RS_ACCT_ACCOUNTS_RECEIVABLE, 1200000, 0);
    add_posting(&ENT[0], RS_ACCT_DEFERRED_REVENUE, 0, 1200000);
    add_source(&ENT[0], "evt-2");
    ENT[0].billed = 1200000;
    set_entry(&ENT[1], "C-1#2", rs_date_from_ymd(2026, 1, 31), RS_ENTRY_RECOGNITION,
              "ratable_monthly", "");
    add_posting(&ENT[1], RS_ACCT_DEFERRED_REVENUE, 100000, 0);
    add_posting(&ENT[1], RS_ACCT_REVENUE, 0, 100000);
    add_source(&ENT[1], "evt-1");
    add_source(&ENT[1], "evt-2");
    ENT[1].recognized = 100000;
}

static const rs_format_rejection_t REJ[] = {
    {3, "evt-3", "invoice.issued",
     "event evt-3: lines[0].amount: has 3 minor digits, the currency allows 2"},
    {7, "", "", "event ?: not JSON: \"x\", line 1"},
};

static const rs_exception_row_t EXC[] = {
    {"C-1", "L1", "CUS-1", "USD", 2, "deferred_after_cancellation", 900000,
     "service ended 2026-03-31; settle with a credit note or refund"},
    {"C-2", "", "CUS-2", "USD", 2, "customer_credit", 1234567,
     "credit balance owed to customer CUS-2"},
    {"C-3", "L1", "CUS-3", "JPY", 0, "unbilled_after_end", 50000,
     "service ended 2026-02-28 and was not fully invoiced"},
    {"C-4", "L2", "CUS-4", "USD", 2, "deferred_after_cancellation", 25050,
     "service ended 2026-05-14; settle with a credit note or refund"},
    {"C-9", "", "", "", 0, "pending", 0, "event e9 (payment.received) waits for contract C-9"},
};

/* account codes: a generic revenue code, a product override, one more role */
static const char POLICY_TEXT[] = "account.revenue = 4000\n"
                                  "account.revenue.Annual = 4100\n"
                                  "account.deferred_revenue = 2400\n";

static rs_policy_t policy_with_codes(void)
{
    rs_policy_t p;
    char err[256];
    rs_policy_defaults(&p);
    cr_assert_eq(rs_policy_parse(&p, POLICY_TEXT, err, sizeof err), 0, "%s", err);
    return p;
}

static const rs_pending_view_t PEND[] = {
    {"evt-9", "C-9", RS_EV_PAYMENT_RECEIVED, "invoice INV-9"},
};

TestSuite(format, .init = fixtures);

/* ---- names ---- */

Test(format, parses_format_names)
{
    rs_format_kind_t k = RS_FORMAT_JSON;
    cr_assert_eq(rs_format_parse("table", &k), 0);
    cr_assert_eq(k, RS_FORMAT_TABLE);
    cr_assert_eq(rs_format_parse("csv", &k), 0);
    cr_assert_eq(k, RS_FORMAT_CSV);
    cr_assert_eq(rs_format_parse("json", &k), 0);
    cr_assert_eq(k, RS_FORMAT_JSON);
    cr_assert_eq(rs_format_parse("JSON", &k), -1);
    cr_assert_eq(rs_format_parse("xml", &k), -1);
    cr_assert_eq(rs_format_parse(NULL, &k), -1);
    cr_assert_str_eq(rs_format_name(RS_FORMAT_CSV), "csv");
}

/* ---- balances: grouping, negatives, JPY (exponent 0), KWD (exponent 3) ---- */

Test(format, balances_table_aligns_groups_and_totals_per_currency)
{
    EXPECT_OUTPUT(
        rs_format_balances(f, RS_FORMAT_TABLE, BAL, 4, PER(2026, 3)),
        "Balances at the end of 2026-03\n"
        "\n"
        "Contract  Line  Customer  Cur     Billed  Recognized   Deferred    Unbilled   "
        "Received\n"
        "--------  ----  --------  ---  ---------  ----------  ---------  ----------  "
        "---------\n"
        "C-1       L1    CUS-1     USD  12,000.00    3,000.00   9,000.00        0.00  "
        "12,000.00\n"
        "C,\"2\"     L-2   CUS-2     USD     -50.00  123,456.78       0.00  123,506.78       "
        "0.00\n"
        "C-3       L1    CUS-3     JPY  1,200,000     100,000  1,100,000           0          "
        "0\n"
        "C-4       L1    CUS-4     KWD      1.250       0.125      1.125       0.000     "
        "-0.001\n"
        "--------  ----  --------  ---  ---------  ----------  ---------  ----------  "
        "---------\n"
        "TOTAL                     JPY  1,200,000     100,000  1,100,000           0          "
        "0\n"
        "TOTAL                     KWD      1.250       0.125      1.125       0.000     "
        "-0.001\n"
        "TOTAL                     USD  11,950.00  126,456.78   9,000.00  123,506.78  "
        "12,000.00\n"
        "\n"
        "Deferred: billed, not yet recognized. Unbilled: recognized, not yet billed.\n");
}

Test(format, balances_csv_quotes_comma_and_quote)
{
    EXPECT_OUTPUT(rs_format_balances(f, RS_FORMAT_CSV, BAL, 4, PER(2026, 3)),
                  "contract_id,line_id,billed,recognized,deferred,unbilled,received,currency,"
                  "customer_id\r\n"
                  "C-1,L1,12000.00,3000.00,9000.00,0.00,12000.00,USD,CUS-1\r\n"
                  "\"C,\"\"2\"\"\",L-2,-50.00,123456.78,0.00,123506.78,0.00,USD,CUS-2\r\n"
                  "C-3,L1,1200000,100000,1100000,0,0,JPY,CUS-3\r\n"
                  "C-4,L1,1.250,0.125,1.125,0.000,-0.001,KWD,CUS-4\r\n");
}

Test(format, balances_json_has_the_events_md_shape)
{
    EXPECT_OUTPUT(
        rs_format_balances(f, RS_FORMAT_JSON, BAL, 4, PER(2026, 3)),
        "[\n"
        "  {\"contract_id\": \"C-1\", \"line_id\": \"L1\", \"billed\": \"12000.00\", "
        "\"recognized\": \"3000.00\", \"deferred\": \"9000.00\", \"unbilled\": \"0.00\", "
        "\"received\": \"12000.00\", \"currency\": \"USD\", \"customer_id\": \"CUS-1\"},\n"
        "  {\"contract_id\": \"C,\\\"2\\\"\", \"line_id\": \"L-2\", \"billed\": \"-50.00\", "
        "\"recognized\": \"123456.78\", \"deferred\": \"0.00\", \"unbilled\": \"123506.78\", "
        "\"received\": \"0.00\", \"currency\": \"USD\", \"customer_id\": \"CUS-2\"},\n"
        "  {\"contract_id\": \"C-3\", \"line_id\": \"L1\", \"billed\": \"1200000\", "
        "\"recognized\": \"100000\", \"deferred\": \"1100000\", \"unbilled\": \"0\", "
        "\"received\": \"0\", \"currency\": \"JPY\", \"customer_id\": \"CUS-3\"},\n"
        "  {\"contract_id\": \"C-4\", \"line_id\": \"L1\", \"billed\": \"1.250\", "
        "\"recognized\": \"0.125\", \"deferred\": \"1.125\", \"unbilled\": \"0.000\", "
        "\"received\": \"-0.001\", \"currency\": \"KWD\", \"customer_id\": \"CUS-4\"}\n"
        "]\n");
}

Test(format, balances_json_key_order_is_contract_then_added_fields)
{
    static const char *const keys[] = {"contract_id", "line_id",  "billed",
                                       "recognized",  "deferred", "unbilled",
                                       "received",    "currency", "customer_id"};
    cap_t c;
    FILE *f = cap_begin(&c);
    cr_assert_eq(rs_format_balances(f, RS_FORMAT_JSON, BAL, 1, PER(2026, 3)), 0);
    char *got = cap_end(&c);
    json_t *root = json_loads(got, 0, NULL);
    cr_assert(json_is_array(root));
    json_t *row = json_array_get(root, 0);
    cr_assert_eq(json_object_size(row), 9);
    size_t i = 0;
    void *it = json_object_iter(row);
    for (; it != NULL; it = json_object_iter_next(row, it), i++) {
        cr_assert_str_eq(json_object_iter_key(it), keys[i]);
        cr_assert(json_is_string(json_object_iter_value(it)), "%s is not a string", keys[i]);
    }
    cr_assert_eq(i, 9);
    json_decref(root);
    free(got);
}

/* ---- schedule ---- */

Test(format, schedule_table)
{
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_TABLE, SCHED, 3, PER(2026, 5)),
                  "Recognition schedule through 2026-05\n"
                  "\n"
                  "Contract  Line  Period   Cur  Recognized\n"
                  "--------  ----  -------  ---  ----------\n"
                  "C-J       L1    2026-04  JPY     100,000\n"
                  "C-K       L1    2026-04  KWD      -1.250\n"
                  "C-K       L1    2026-05  KWD   1,234.567\n"
                  "--------  ----  -------  ---  ----------\n"
                  "TOTAL                    JPY     100,000\n"
                  "TOTAL                    KWD   1,233.317\n");
}

Test(format, schedule_csv)
{
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_CSV, SCHED, 3, PER(2026, 5)),
                  "contract_id,line_id,period,recognized,currency\r\n"
                  "C-J,L1,2026-04,100000,JPY\r\n"
                  "C-K,L1,2026-04,-1.250,KWD\r\n"
                  "C-K,L1,2026-05,1234.567,KWD\r\n");
}

Test(format, schedule_json)
{
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_JSON, SCHED, 3, PER(2026, 5)),
                  "[\n"
                  "  {\"contract_id\": \"C-J\", \"line_id\": \"L1\", \"period\": \"2026-04\", "
                  "\"recognized\": \"100000\", \"currency\": \"JPY\"},\n"
                  "  {\"contract_id\": \"C-K\", \"line_id\": \"L1\", \"period\": \"2026-04\", "
                  "\"recognized\": \"-1.250\", \"currency\": \"KWD\"},\n"
                  "  {\"contract_id\": \"C-K\", \"line_id\": \"L1\", \"period\": \"2026-05\", "
                  "\"recognized\": \"1234.567\", \"currency\": \"KWD\"}\n"
                  "]\n");
}

/* ---- waterfall: a section per currency, projected periods marked ---- */

Test(format, waterfall_table_marks_scheduled_periods_and_totals)
{
    EXPECT_OUTPUT(
        rs_format_waterfall(f, RS_FORMAT_TABLE, WF, 5, PER(2026, 2)),
        "Revenue waterfall, JPY, posted through 2026-02\n"
        "\n"
        "Period   Recognized  From deferred  Not via deferred   Deferred\n"
        "-------  ----------  -------------  ----------------  ---------\n"
        "2026-01     100,000        100,000                 0  1,100,000\n"
        "-------  ----------  -------------  ----------------  ---------\n"
        "TOTAL       100,000        100,000                 0\n"
        "\n"
        "Revenue waterfall, USD, posted through 2026-02\n"
        "\n"
        "Period       Recognized  From deferred  Not via deferred   Deferred\n"
        "---------  ------------  -------------  ----------------  ---------\n"
        "2026-01        1,000.00       1,000.00              0.00  11,000.00\n"
        "2026-02        1,000.00         580.00            420.00  10,000.00\n"
        "2026-03 *      1,000.00                                    9,000.00\n"
        "2026-04 *    999,999.00                                        0.00\n"
        "---------  ------------  -------------  ----------------  ---------\n"
        "Posted         2,000.00       1,580.00            420.00\n"
        "Scheduled  1,000,999.00\n"
        "TOTAL      1,002,999.00\n"
        "\n"
        "* scheduled: what the current contract terms will recognize in that period;\n"
        "  not posted yet.\n"
        "Recognized: all revenue recognized in the period (revenue less revenue_contra)\n"
        "  = From deferred: released from deferred revenue (the rollforward's Recognized)\n"
        "  + Not via deferred: recognized before it was billed (against unbilled\n"
        "    receivable: billed in arrears) and adjustments that release no deferred\n"
        "    revenue; it never enters the rollforward.\n"
        "Deferred: deferred revenue balance at the end of the period.\n");
}

Test(format, waterfall_csv)
{
    EXPECT_OUTPUT(rs_format_waterfall(f, RS_FORMAT_CSV, WF, 5, PER(2026, 2)),
                  "period,recognized,deferred,currency,projected,recognized_from_deferred,"
                  "recognized_not_via_deferred\r\n"
                  "2026-01,100000,1100000,JPY,false,100000,0\r\n"
                  "2026-01,1000.00,11000.00,USD,false,1000.00,0.00\r\n"
                  "2026-02,1000.00,10000.00,USD,false,580.00,420.00\r\n"
                  "2026-03,1000.00,9000.00,USD,true,,\r\n"
                  "2026-04,999999.00,0.00,USD,true,,\r\n");
}

Test(format, waterfall_json_projected_is_boolean)
{
    EXPECT_OUTPUT(
        rs_format_waterfall(f, RS_FORMAT_JSON, WF, 5, PER(2026, 2)),
        "[\n"
        "  {\"period\": \"2026-01\", \"recognized\": \"100000\", \"deferred\": \"1100000\", "
        "\"currency\": \"JPY\", \"projected\": false, \"recognized_from_deferred\": "
        "\"100000\", \"recognized_not_via_deferred\": \"0\"},\n"
        "  {\"period\": \"2026-01\", \"recognized\": \"1000.00\", \"deferred\": \"11000.00\", "
        "\"currency\": \"USD\", \"projected\": false, \"recognized_from_deferred\": "
        "\"1000.00\", \"recognized_not_via_deferred\": \"0.00\"},\n"
        "  {\"period\": \"2026-02\", \"recognized\": \"1000.00\", \"deferred\": \"10000.00\", "
        "\"currency\": \"USD\", \"projected\": false, \"recognized_from_deferred\": "
        "\"580.00\", \"recognized_not_via_deferred\": \"420.00\"},\n"
        "  {\"period\": \"2026-03\", \"recognized\": \"1000.00\", \"deferred\": \"9000.00\", "
        "\"currency\": \"USD\", \"projected\": true},\n"
        "  {\"period\": \"2026-04\", \"recognized\": \"999999.00\", \"deferred\": \"0.00\", "
        "\"currency\": \"USD\", \"projected\": true}\n"
        "]\n");
}

/* ---- rollforward: TOTAL = opening of first, sums, closing of last ---- */

Test(format, rollforward_table_totals_per_currency)
{
    EXPECT_OUTPUT(
        rs_format_rollforward(f, RS_FORMAT_TABLE, RF, 3, PER(2026, 2)),
        "Deferred revenue rollforward, JPY, through 2026-02\n"
        "\n"
        "Period   Opening     Billed  Recognized  Credits    Closing\n"
        "-------  -------  ---------  ----------  -------  ---------\n"
        "2026-02        0  1,200,000     100,000        0  1,100,000\n"
        "-------  -------  ---------  ----------  -------  ---------\n"
        "TOTAL          0  1,200,000     100,000        0  1,100,000\n"
        "\n"
        "Recognized revenue, JPY (ties to the waterfall's Recognized)\n"
        "                                                      Amount\n"
        "---------------------------------------------------  -------\n"
        "  Released from deferred (Recognized above)          100,000\n"
        "+ Not via deferred (billed in arrears, adjustments)        0\n"
        "= Recognized revenue                                 100,000\n"
        "\n"
        "Deferred revenue rollforward, USD, through 2026-02\n"
        "\n"
        "Period     Opening     Billed  Recognized  Credits    Closing\n"
        "-------  ---------  ---------  ----------  -------  ---------\n"
        "2026-01       0.00  12,000.00    1,000.00     0.00  11,000.00\n"
        "2026-02  11,000.00       0.00    1,000.00    60.00   9,940.00\n"
        "-------  ---------  ---------  ----------  -------  ---------\n"
        "TOTAL         0.00  12,000.00    2,000.00    60.00   9,940.00\n"
        "\n"
        "Recognized revenue, USD (ties to the waterfall's Recognized)\n"
        "                                                       Amount\n"
        "---------------------------------------------------  --------\n"
        "  Released from deferred (Recognized above)          2,000.00\n"
        "+ Not via deferred (billed in arrears, adjustments)    420.00\n"
        "= Recognized revenue                                 2,420.00\n"
        "\n"
        "Closing = Opening + Billed - Recognized - Credits (credit notes and voids).\n"
        "Recognized: deferred revenue released to revenue in the period. Revenue\n"
        "recognized before it was billed (unbilled receivable) never enters deferred\n"
        "revenue: it is the \"Not via deferred\" line above.\n");
}

Test(format, rollforward_csv)
{
    EXPECT_OUTPUT(rs_format_rollforward(f, RS_FORMAT_CSV, RF, 3, PER(2026, 2)),
                  "period,opening,billed,recognized,credits,closing,currency,recognized_not_"
                  "via_deferred,revenue_recognized\r\n"
                  "2026-01,0.00,12000.00,1000.00,0.00,11000.00,USD,0.00,1000.00\r\n"
                  "2026-02,0,1200000,100000,0,1100000,JPY,0,100000\r\n"
                  "2026-02,11000.00,0.00,1000.00,60.00,9940.00,USD,420.00,1420.00\r\n");
}

Test(format, rollforward_json)
{
    EXPECT_OUTPUT(
        rs_format_rollforward(f, RS_FORMAT_JSON, RF, 3, PER(2026, 2)),
        "[\n"
        "  {\"period\": \"2026-01\", \"opening\": \"0.00\", \"billed\": \"12000.00\", "
        "\"recognized\": \"1000.00\", \"credits\": \"0.00\", \"closing\": \"11000.00\", "
        "\"currency\": \"USD\", \"recognized_not_via_deferred\": \"0.00\", "
        "\"revenue_recognized\": \"1000.00\"},\n"
        "  {\"period\": \"2026-02\", \"opening\": \"0\", \"billed\": \"1200000\", "
        "\"recognized\": \"100000\", \"credits\": \"0\", \"closing\": \"1100000\", "
        "\"currency\": \"JPY\", \"recognized_not_via_deferred\": \"0\", "
        "\"revenue_recognized\": \"100000\"},\n"
        "  {\"period\": \"2026-02\", \"opening\": \"11000.00\", \"billed\": \"0.00\", "
        "\"recognized\": \"1000.00\", \"credits\": \"60.00\", \"closing\": \"9940.00\", "
        "\"currency\": \"USD\", \"recognized_not_via_deferred\": \"420.00\", "
        "\"revenue_recognized\": \"1420.00\"}\n"
        "]\n");
}

/* ---- journal ---- */

Test(format, journal_table_one_row_per_posting_with_balanced_totals)
{
    EXPECT_OUTPUT(
        rs_format_journal(f, RS_FORMAT_TABLE, ENT, NULL, 2, NULL, PER(2026, 1)),
        "Journal (2 entries) through 2026-01\n"
        "\n"
        "Entry  Posted      Line  Kind         Account              Cur      Debit     Credit\n"
        "-----  ----------  ----  -----------  -------------------  ---  ---------  ---------\n"
        "C-1#1  2026-01-01  L1    invoice      accounts_receivable  USD  12,000.00\n"
        "                                      deferred_revenue     USD             12,000.00\n"
        "C-1#2  2026-01-31  L1    recognition  deferred_revenue     USD   1,000.00\n"
        "                                      revenue              USD              1,000.00\n"
        "-----  ----------  ----  -----------  -------------------  ---  ---------  ---------\n"
        "TOTAL                                                      USD  13,000.00  "
        "13,000.00\n");
}

Test(format, journal_table_prints_only_the_indexed_entries)
{
    size_t idx[] = {1};
    EXPECT_OUTPUT(
        rs_format_journal(f, RS_FORMAT_TABLE, ENT, idx, 1, NULL, PER(2026, 1)),
        "Journal (1 entry) through 2026-01\n"
        "\n"
        "Entry  Posted      Line  Kind         Account           Cur     Debit    Credit\n"
        "-----  ----------  ----  -----------  ----------------  ---  --------  --------\n"
        "C-1#2  2026-01-31  L1    recognition  deferred_revenue  USD  1,000.00\n"
        "                                      revenue           USD            1,000.00\n"
        "-----  ----------  ----  -----------  ----------------  ---  --------  --------\n"
        "TOTAL                                                   USD  1,000.00  1,000.00\n");
}

Test(format, journal_csv_repeats_entry_fields_per_posting)
{
    /* no policy: the account is the role name, and the role follows it */
    EXPECT_OUTPUT(rs_format_journal(f, RS_FORMAT_CSV, ENT, NULL, 2, NULL, PER(2026, 1)),
                  "entry_id,posted_on,period,contract_id,line_id,kind,rule,account,role,debit,"
                  "credit,source_event_ids,currency,customer_id,service_period,document_id\r\n"
                  "C-1#1,2026-01-01,2026-01,C-1,L1,invoice,invoice,accounts_receivable,"
                  "accounts_receivable,12000.00,0.00,evt-2,USD,CUS-1,2026-01,INV-1\r\n"
                  "C-1#1,2026-01-01,2026-01,C-1,L1,invoice,invoice,deferred_revenue,"
                  "deferred_revenue,0.00,12000.00,evt-2,USD,CUS-1,2026-01,INV-1\r\n"
                  "C-1#2,2026-01-31,2026-01,C-1,L1,recognition,ratable_monthly,deferred_"
                  "revenue,deferred_revenue,1000.00,0.00,evt-1 evt-2,USD,CUS-1,2026-01,\r\n"
                  "C-1#2,2026-01-31,2026-01,C-1,L1,recognition,ratable_monthly,revenue,revenue,"
                  "0.00,1000.00,evt-1 evt-2,USD,CUS-1,2026-01,\r\n");
}

Test(format, journal_csv_prints_policy_codes_and_roles)
{
    rs_policy_t p = policy_with_codes();
    EXPECT_OUTPUT(rs_format_journal(f, RS_FORMAT_CSV, ENT, NULL, 2, &p, PER(2026, 1)),
                  "entry_id,posted_on,period,contract_id,line_id,kind,rule,account,role,debit,"
                  "credit,source_event_ids,currency,customer_id,service_period,document_id\r\n"
                  "C-1#1,2026-01-01,2026-01,C-1,L1,invoice,invoice,accounts_receivable,"
                  "accounts_receivable,12000.00,0.00,evt-2,USD,CUS-1,2026-01,INV-1\r\n"
                  "C-1#1,2026-01-01,2026-01,C-1,L1,invoice,invoice,2400,deferred_revenue,0.00,"
                  "12000.00,evt-2,USD,CUS-1,2026-01,INV-1\r\n"
                  "C-1#2,2026-01-31,2026-01,C-1,L1,recognition,ratable_monthly,2400,deferred_"
                  "revenue,1000.00,0.00,evt-1 evt-2,USD,CUS-1,2026-01,\r\n"
                  "C-1#2,2026-01-31,2026-01,C-1,L1,recognition,ratable_monthly,4100,revenue,"
                  "0.00,1000.00,evt-1 evt-2,USD,CUS-1,2026-01,\r\n");
}

Test(format, journal_table_shows_codes_with_their_roles)
{
    /* ENT[1] is for product "Annual" (override 4100); a copy for another
     * product takes the role's code (4000). */
    rs_entry_t ents[3] = {ENT[0], ENT[1], ENT[1]};
    strcpy(ents[2].entry_id, "C-1#3");
    strcpy(ents[2].product, "Other");
    rs_policy_t p = policy_with_codes();
    EXPECT_OUTPUT(
        rs_format_journal(f, RS_FORMAT_TABLE, ents, NULL, 3, &p, PER(2026, 1)),
        "Journal (3 entries) through 2026-01\n"
        "\n"
        "Entry  Posted      Line  Kind         Account              Role                 Cur  "
        "    Debit     Credit\n"
        "-----  ----------  ----  -----------  -------------------  -------------------  ---  "
        "---------  ---------\n"
        "C-1#1  2026-01-01  L1    invoice      accounts_receivable  accounts_receivable  USD  "
        "12,000.00\n"
        "                                      2400                 deferred_revenue     USD  "
        "           12,000.00\n"
        "C-1#2  2026-01-31  L1    recognition  2400                 deferred_revenue     USD  "
        " 1,000.00\n"
        "                                      4100                 revenue              USD  "
        "            1,000.00\n"
        "C-1#3  2026-01-31  L1    recognition  2400                 deferred_revenue     USD  "
        " 1,000.00\n"
        "                                      4000                 revenue              USD  "
        "            1,000.00\n"
        "-----  ----------  ----  -----------  -------------------  -------------------  ---  "
        "---------  ---------\n"
        "TOTAL                                                                           USD  "
        "14,000.00  14,000.00\n"
        "\n"
        "Account: the account code of the policy file; Role: the account's role.\n");
}

Test(format, journal_table_without_codes_has_no_role_column)
{
    /* a policy that sets nothing but the cancellation policy */
    rs_policy_t p;
    char err[256];
    rs_policy_defaults(&p);
    cr_assert_eq(rs_policy_parse(&p, "policy.cancellation = forfeit\n", err, sizeof err), 0);
    size_t idx[] = {1};
    EXPECT_OUTPUT(
        rs_format_journal(f, RS_FORMAT_TABLE, ENT, idx, 1, &p, PER(2026, 1)),
        "Journal (1 entry) through 2026-01\n"
        "\n"
        "Entry  Posted      Line  Kind         Account           Cur     Debit    Credit\n"
        "-----  ----------  ----  -----------  ----------------  ---  --------  --------\n"
        "C-1#2  2026-01-31  L1    recognition  deferred_revenue  USD  1,000.00\n"
        "                                      revenue           USD            1,000.00\n"
        "-----  ----------  ----  -----------  ----------------  ---  --------  --------\n"
        "TOTAL                                                   USD  1,000.00  1,000.00\n");
}

Test(format, journal_json_rows_are_the_codec_entries)
{
    cap_t c;
    FILE *f = cap_begin(&c);
    cr_assert_eq(rs_format_journal(f, RS_FORMAT_JSON, ENT, NULL, 2, NULL, PER(2026, 1)), 0);
    char *got = cap_end(&c);

    /* "[", one entry per line, "]" */
    size_t lines = 0;
    for (const char *p = got; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 4, "got:\n%s", got);
    cr_assert_eq(strncmp(got, "[\n  {", 5), 0);

    json_error_t err;
    json_t *root = json_loads(got, 0, &err);
    cr_assert_not_null(root, "not JSON: %s", err.text);
    cr_assert_eq(json_array_size(root), 2);
    for (size_t i = 0; i < 2; i++) {
        /* the codec's object, keys in its order; the lines as the codec's */
        char *one = rs_codec_entry_json(&ENT[i]);
        json_t *want = json_loads(one, 0, NULL);
        json_t *row = json_array_get(root, i);
        cr_assert_eq(json_object_size(row), json_object_size(want));
        void *a = json_object_iter(row), *b = json_object_iter(want);
        for (; a != NULL;
             a = json_object_iter_next(row, a), b = json_object_iter_next(want, b)) {
            const char *key = json_object_iter_key(a);
            cr_assert_str_eq(key, json_object_iter_key(b));
            if (strcmp(key, "lines") != 0)
                cr_assert(json_equal(json_object_iter_value(a), json_object_iter_value(b)),
                          "entry %zu: %s differs", i, key);
        }
        json_t *lines = json_object_get(row, "lines");
        cr_assert_eq(json_array_size(lines), (size_t)ENT[i].n_postings);
        for (size_t l = 0; l < json_array_size(lines); l++) {
            json_t *got_l = json_array_get(lines, l);
            json_t *want_l = json_array_get(json_object_get(want, "lines"), l);
            static const char *const keys[] = {"account", "role", "product", "debit", "credit"};
            size_t k = 0;
            for (void *it = json_object_iter(got_l); it != NULL;
                 it = json_object_iter_next(got_l, it), k++) {
                cr_assert_lt(k, 5);
                cr_assert_str_eq(json_object_iter_key(it), keys[k]);
            }
            cr_assert_eq(k, 5);
            const char *role = rs_account_name(ENT[i].postings[l].account);
            cr_assert_str_eq(json_string_value(json_object_get(got_l, "account")), role);
            cr_assert_str_eq(json_string_value(json_object_get(got_l, "role")), role);
            cr_assert(
                json_equal(json_object_get(got_l, "debit"), json_object_get(want_l, "debit")));
            cr_assert(json_equal(json_object_get(got_l, "credit"),
                                 json_object_get(want_l, "credit")));
        }
        json_decref(want);
        free(one);
    }
    json_t *e0 = json_array_get(root, 0);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "entry_id")), "C-1#1");
    json_t *l0 = json_array_get(json_object_get(e0, "lines"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(l0, "account")), "accounts_receivable");
    cr_assert_str_eq(json_string_value(json_object_get(l0, "debit")), "12000.00");
    json_decref(root);
    free(got);
}

Test(format, journal_json_lines_carry_code_then_role)
{
    rs_policy_t p = policy_with_codes();
    cap_t c;
    FILE *f = cap_begin(&c);
    cr_assert_eq(rs_format_journal(f, RS_FORMAT_JSON, ENT, NULL, 2, &p, PER(2026, 1)), 0);
    char *got = cap_end(&c);
    /* exact text of the lines arrays: key order account, role, product, debit, credit */
    cr_assert_not_null(strstr(got, "\"lines\": [{\"account\": \"accounts_receivable\", "
                                   "\"role\": \"accounts_receivable\", \"product\": "
                                   "\"Annual\", \"debit\": "
                                   "\"12000.00\", \"credit\": \"0.00\"}, {\"account\": "
                                   "\"2400\", \"role\": \"deferred_revenue\", \"product\": "
                                   "\"Annual\", \"debit\": "
                                   "\"0.00\", \"credit\": \"12000.00\"}], "),
                       "%s", got);
    cr_assert_not_null(strstr(got, "\"lines\": [{\"account\": \"2400\", \"role\": "
                                   "\"deferred_revenue\", \"product\": \"Annual\", "
                                   "\"debit\": \"1000.00\", "
                                   "\"credit\": \"0.00\"}, {\"account\": \"4100\", "
                                   "\"role\": \"revenue\", \"product\": \"Annual\", "
                                   "\"debit\": \"0.00\", "
                                   "\"credit\": \"1000.00\"}], "),
                       "%s", got);
    json_t *root = json_loads(got, 0, NULL);
    cr_assert_eq(json_array_size(root), 2, "%s", got);
    json_decref(root);
    free(got);
}

/* ---- exceptions ---- */

Test(format, exceptions_table_totals_per_kind_and_currency_and_explains_kinds)
{
    EXPECT_OUTPUT(
        rs_format_exceptions(f, RS_FORMAT_TABLE, EXC, 5, PER(2026, 6)),
        "Exceptions to review at the end of 2026-06\n"
        "\n"
        "Contract  Line  Customer  Kind                         Cur     Amount  Detail\n"
        "--------  ----  --------  ---------------------------  ---  ---------  "
        "-------------------------------------------------------------\n"
        "C-1       L1    CUS-1     deferred_after_cancellation  USD   9,000.00  service ended "
        "2026-03-31; settle with a credit note or refund\n"
        "C-2             CUS-2     customer_credit              USD  12,345.67  credit balance "
        "owed to customer CUS-2\n"
        "C-3       L1    CUS-3     unbilled_after_end           JPY     50,000  service ended "
        "2026-02-28 and was not fully invoiced\n"
        "C-4       L2    CUS-4     deferred_after_cancellation  USD     250.50  service ended "
        "2026-05-14; settle with a credit note or refund\n"
        "C-9                       pending                                      event e9 "
        "(payment.received) waits for contract C-9\n"
        "--------  ----  --------  ---------------------------  ---  ---------  "
        "-------------------------------------------------------------\n"
        "TOTAL                     deferred_after_cancellation  USD   9,250.50\n"
        "TOTAL                     unbilled_after_end           JPY     50,000\n"
        "TOTAL                     customer_credit              USD  12,345.67\n"
        "\n"
        "deferred_after_cancellation: billed, not earned, on a line whose service ended\n"
        "  early (cancelled or removed); settle it with a credit note or a refund.\n"
        "unbilled_after_end: earned but never invoiced, and the service has ended.\n"
        "customer_credit: owed to the customer (overpaid, or credited after payment).\n"
        "pending: an event waiting for its contract or invoice; not in the books yet.\n");
}

Test(format, exceptions_csv)
{
    EXPECT_OUTPUT(rs_format_exceptions(f, RS_FORMAT_CSV, EXC, 5, PER(2026, 6)),
                  "contract_id,line_id,customer_id,kind,amount,currency,detail\r\n"
                  "C-1,L1,CUS-1,deferred_after_cancellation,9000.00,USD,service ended "
                  "2026-03-31; settle with a credit note or refund\r\n"
                  "C-2,,CUS-2,customer_credit,12345.67,USD,credit balance owed to customer "
                  "CUS-2\r\n"
                  "C-3,L1,CUS-3,unbilled_after_end,50000,JPY,service ended 2026-02-28 and was "
                  "not fully invoiced\r\n"
                  "C-4,L2,CUS-4,deferred_after_cancellation,250.50,USD,service ended "
                  "2026-05-14; settle with a credit note or refund\r\n"
                  "C-9,,,pending,0,,event e9 (payment.received) waits for contract C-9\r\n");
}

Test(format, exceptions_json_amount_is_a_decimal_string)
{
    EXPECT_OUTPUT(
        rs_format_exceptions(f, RS_FORMAT_JSON, EXC, 5, PER(2026, 6)),
        "[\n"
        "  {\"contract_id\": \"C-1\", \"line_id\": \"L1\", \"customer_id\": \"CUS-1\", "
        "\"kind\": \"deferred_after_cancellation\", \"amount\": \"9000.00\", \"currency\": "
        "\"USD\", \"detail\": \"service ended 2026-03-31; settle with a credit note or "
        "refund\"},\n"
        "  {\"contract_id\": \"C-2\", \"line_id\": \"\", \"customer_id\": \"CUS-2\", "
        "\"kind\": \"customer_credit\", \"amount\": \"12345.67\", \"currency\": \"USD\", "
        "\"detail\": \"credit balance owed to customer CUS-2\"},\n"
        "  {\"contract_id\": \"C-3\", \"line_id\": \"L1\", \"customer_id\": \"CUS-3\", "
        "\"kind\": \"unbilled_after_end\", \"amount\": \"50000\", \"currency\": \"JPY\", "
        "\"detail\": \"service ended 2026-02-28 and was not fully invoiced\"},\n"
        "  {\"contract_id\": \"C-4\", \"line_id\": \"L2\", \"customer_id\": \"CUS-4\", "
        "\"kind\": \"deferred_after_cancellation\", \"amount\": \"250.50\", \"currency\": "
        "\"USD\", \"detail\": \"service ended 2026-05-14; settle with a credit note or "
        "refund\"},\n"
        "  {\"contract_id\": \"C-9\", \"line_id\": \"\", \"customer_id\": \"\", \"kind\": "
        "\"pending\", \"amount\": \"0\", \"currency\": \"\", \"detail\": \"event e9 "
        "(payment.received) waits for contract C-9\"}\n"
        "]\n");
}

Test(format, exceptions_table_of_one_kind_explains_only_that_kind)
{
    EXPECT_OUTPUT(
        rs_format_exceptions(f, RS_FORMAT_TABLE, &EXC[2], 1, PER(2026, 6)),
        "Exceptions to review at the end of 2026-06\n"
        "\n"
        "Contract  Line  Customer  Kind                Cur  Amount  Detail\n"
        "--------  ----  --------  ------------------  ---  ------  "
        "---------------------------------------------------\n"
        "C-3       L1    CUS-3     unbilled_after_end  JPY  50,000  service ended 2026-02-28 "
        "and "
        "was not fully invoiced\n"
        "--------  ----  --------  ------------------  ---  ------  "
        "---------------------------------------------------\n"
        "TOTAL                     unbilled_after_end  JPY  50,000\n"
        "\n"
        "unbilled_after_end: earned but never invoiced, and the service has ended.\n");
}

/* ---- rejected and pending ---- */

Test(format, rejected_table)
{
    EXPECT_OUTPUT(rs_format_rejected(f, RS_FORMAT_TABLE, REJ, 2),
                  "Rejected events (2)\n"
                  "\n"
                  "Line  Event  Type            Reason\n"
                  "----  -----  --------------  "
                  "-----------------------------------------------------------------------\n"
                  "   3  evt-3  invoice.issued  event evt-3: lines[0].amount: has 3 minor "
                  "digits, the currency allows 2\n"
                  "   7  ?      ?               event ?: not JSON: \"x\", line 1\n");
}

Test(format, rejected_csv)
{
    EXPECT_OUTPUT(rs_format_rejected(f, RS_FORMAT_CSV, REJ, 2),
                  "line,event_id,type,reason\r\n"
                  "3,evt-3,invoice.issued,\"event evt-3: lines[0].amount: has 3 minor digits, "
                  "the currency allows 2\"\r\n"
                  "7,,,\"event ?: not JSON: \"\"x\"\", line 1\"\r\n");
}

Test(format, rejected_json)
{
    EXPECT_OUTPUT(
        rs_format_rejected(f, RS_FORMAT_JSON, REJ, 2),
        "[\n"
        "  {\"line\": 3, \"event_id\": \"evt-3\", \"type\": \"invoice.issued\", \"reason\": "
        "\"event evt-3: lines[0].amount: has 3 minor digits, the currency allows 2\"},\n"
        "  {\"line\": 7, \"event_id\": \"\", \"type\": \"\", \"reason\": \"event ?: not JSON: "
        "\\\"x\\\", line 1\"}\n"
        "]\n");
}

Test(format, pending_all_formats)
{
    EXPECT_OUTPUT(rs_format_pending(f, RS_FORMAT_TABLE, PEND, 1),
                  "Events waiting for their contract or invoice (1)\n"
                  "\n"
                  "Event  Contract  Type              Waiting for\n"
                  "-----  --------  ----------------  -------------\n"
                  "evt-9  C-9       payment.received  invoice INV-9\n");
    EXPECT_OUTPUT(rs_format_pending(f, RS_FORMAT_CSV, PEND, 1),
                  "event_id,contract_id,type,waiting_for\r\n"
                  "evt-9,C-9,payment.received,invoice INV-9\r\n");
    EXPECT_OUTPUT(rs_format_pending(f, RS_FORMAT_JSON, PEND, 1),
                  "[\n"
                  "  {\"event_id\": \"evt-9\", \"contract_id\": \"C-9\", \"type\": "
                  "\"payment.received\", \"waiting_for\": \"invoice INV-9\"}\n"
                  "]\n");
}

/* ---- empty reports ---- */

Test(format, empty_reports)
{
    rs_period_t m = PER(2026, 3);
    for (int k = RS_FORMAT_CSV; k <= RS_FORMAT_JSON; k++) {
        const char *empty_json = "[]\n";
        if (k == RS_FORMAT_JSON) {
            EXPECT_OUTPUT(rs_format_schedule(f, k, NULL, 0, m), empty_json);
            EXPECT_OUTPUT(rs_format_balances(f, k, NULL, 0, m), empty_json);
            EXPECT_OUTPUT(rs_format_waterfall(f, k, NULL, 0, m), empty_json);
            EXPECT_OUTPUT(rs_format_rollforward(f, k, NULL, 0, m), empty_json);
            EXPECT_OUTPUT(rs_format_journal(f, k, NULL, NULL, 0, NULL, m), empty_json);
            EXPECT_OUTPUT(rs_format_rejected(f, k, NULL, 0), empty_json);
            EXPECT_OUTPUT(rs_format_pending(f, k, NULL, 0), empty_json);
            EXPECT_OUTPUT(rs_format_exceptions(f, k, NULL, 0, m), empty_json);
        } else {
            EXPECT_OUTPUT(rs_format_waterfall(f, k, NULL, 0, m),
                          "period,recognized,deferred,currency,projected,"
                          "recognized_from_deferred,recognized_not_via_deferred\r\n");
            EXPECT_OUTPUT(rs_format_rejected(f, k, NULL, 0), "line,event_id,type,reason\r\n");
            EXPECT_OUTPUT(rs_format_exceptions(f, k, NULL, 0, m),
                          "contract_id,line_id,customer_id,kind,amount,currency,detail\r\n");
        }
    }
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_TABLE, NULL, 0, RS_PERIOD_NONE),
                  "Recognition schedule\n\nNo lines to report.\n");
    EXPECT_OUTPUT(rs_format_balances(f, RS_FORMAT_TABLE, NULL, 0, m),
                  "Balances at the end of 2026-03\n\nNo contract lines.\n");
    EXPECT_OUTPUT(rs_format_waterfall(f, RS_FORMAT_TABLE, NULL, 0, m),
                  "Revenue waterfall through 2026-03\n\nNo revenue to report.\n");
    EXPECT_OUTPUT(rs_format_rollforward(f, RS_FORMAT_TABLE, NULL, 0, m),
                  "Deferred revenue rollforward through 2026-03\n\nNo deferred revenue "
                  "movements.\n");
    EXPECT_OUTPUT(rs_format_journal(f, RS_FORMAT_TABLE, NULL, NULL, 0, NULL, m),
                  "Journal (0 entries) through 2026-03\n\nNo entries.\n");
    EXPECT_OUTPUT(rs_format_rejected(f, RS_FORMAT_TABLE, NULL, 0),
                  "Rejected events (0)\n\nNo event was rejected.\n");
    EXPECT_OUTPUT(rs_format_pending(f, RS_FORMAT_TABLE, NULL, 0),
                  "Events waiting for their contract or invoice (0)\n\nNo event is waiting.\n");
    EXPECT_OUTPUT(rs_format_exceptions(f, RS_FORMAT_TABLE, NULL, 0, m),
                  "Exceptions to review at the end of 2026-03\n\nNo exceptions.\n");
}

/* ---- hostile ids and extreme amounts ---- */

Test(format, table_neutralises_control_characters_and_has_no_trailing_spaces)
{
    rs_balance_row_t r = BAL[0];
    r.contract_id = "C\x1b[2J";
    r.customer_id = "CUS\n1";
    cap_t c;
    FILE *f = cap_begin(&c);
    cr_assert_eq(rs_format_balances(f, RS_FORMAT_TABLE, &r, 1, PER(2026, 3)), 0);
    char *got = cap_end(&c);
    cr_assert_null(strchr(got, '\x1b'));
    cr_assert_not_null(strstr(got, "C?[2J"));
    cr_assert_not_null(strstr(got, "CUS?1"));
    size_t lines = 0;
    for (const char *p = got; *p; p++) {
        if (*p == '\n') {
            lines++;
            cr_assert(p == got || p[-1] != ' ', "trailing space in:\n%s", got);
        }
    }
    cr_assert_eq(lines, 9, "a newline in an id must not split the row:\n%s", got);
    free(got);
}

Test(format, json_stays_valid_with_invalid_utf8_ids)
{
    rs_balance_row_t r = BAL[0];
    r.contract_id = "C\xff"
                    "1";
    cap_t c;
    FILE *f = cap_begin(&c);
    cr_assert_eq(rs_format_balances(f, RS_FORMAT_JSON, &r, 1, PER(2026, 3)), 0);
    char *got = cap_end(&c);
    json_t *root = json_loads(got, 0, NULL);
    cr_assert_not_null(root, "not JSON:\n%s", got);
    json_t *row = json_array_get(root, 0);
    cr_assert_str_eq(json_string_value(json_object_get(row, "contract_id")), "C?1");
    json_decref(root);
    free(got);
}

Test(format, largest_amounts_and_an_overflowing_total)
{
    rs_schedule_row_t rows[2];
    set_sched(&rows[0], "C-1", "L1", "USD", 2, PER(2026, 1), INT64_MAX);
    set_sched(&rows[1], "C-1", "L1", "USD", 2, PER(2026, 2), 1);
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_CSV, rows, 1, PER(2026, 2)),
                  "contract_id,line_id,period,recognized,currency\r\n"
                  "C-1,L1,2026-01,92233720368547758.07,USD\r\n");
    rows[0].recognized = INT64_MIN + 1;
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_CSV, rows, 1, PER(2026, 2)),
                  "contract_id,line_id,period,recognized,currency\r\n"
                  "C-1,L1,2026-01,-92233720368547758.07,USD\r\n");
    rows[0].recognized = INT64_MAX;
    EXPECT_OUTPUT(rs_format_schedule(f, RS_FORMAT_TABLE, rows, 2, PER(2026, 2)),
                  "Recognition schedule through 2026-02\n"
                  "\n"
                  "Contract  Line  Period   Cur                 Recognized\n"
                  "--------  ----  -------  ---  -------------------------\n"
                  "C-1       L1    2026-01  USD  92,233,720,368,547,758.07\n"
                  "C-1       L1    2026-02  USD                       0.01\n"
                  "--------  ----  -------  ---  -------------------------\n"
                  "TOTAL                    USD                   overflow\n");
}

Test(format, write_errors_are_reported)
{
    FILE *f = fopen("/dev/full", "w");
    if (f == NULL)
        cr_skip_test("no /dev/full here");
    setvbuf(f, NULL, _IONBF, 0);
    cr_assert_eq(rs_format_balances(f, RS_FORMAT_TABLE, BAL, 4, PER(2026, 3)), -1);
    clearerr(f);
    cr_assert_eq(rs_format_balances(f, RS_FORMAT_CSV, BAL, 4, PER(2026, 3)), -1);
    clearerr(f);
    cr_assert_eq(rs_format_balances(f, RS_FORMAT_JSON, BAL, 4, PER(2026, 3)), -1);
    clearerr(f);
    cr_assert_eq(rs_format_exceptions(f, RS_FORMAT_TABLE, EXC, 5, PER(2026, 6)), -1);
    clearerr(f);
    cr_assert_eq(rs_format_exceptions(f, RS_FORMAT_CSV, EXC, 5, PER(2026, 6)), -1);
    clearerr(f);
    cr_assert_eq(rs_format_journal(f, RS_FORMAT_JSON, ENT, NULL, 2, NULL, PER(2026, 1)), -1);
    fclose(f);
}

Test(format, invoices_in_all_three_formats)
{
    rs_invoice_view_t iv[2] = {
        {"C-1", "CUS-1", "INV-1", "USD", 2, 0, 100000, 8000, 10800, 97200, 0, 0, 0, 0},
        {"C-2", "CUS-2", "INV-9", "JPY", 0, 0, 5000, 0, 0, 0, 5000, 5000, 0, 1},
    };
    iv[0].issued_on = rs_date_from_ymd(2026, 1, 1);
    iv[1].issued_on = rs_date_from_ymd(2026, 2, 28);
    EXPECT_OUTPUT(rs_format_invoices(f, RS_FORMAT_JSON, iv, 2),
                  "[\n"
                  "  {\"contract_id\": \"C-1\", \"invoice_id\": \"INV-1\", \"customer_id\": "
                  "\"CUS-1\", \"issued_on\": \"2026-01-01\", \"amount\": \"1000.00\", \"tax\": "
                  "\"80.00\", \"credited\": \"108.00\", \"paid\": \"972.00\", \"open\": "
                  "\"0.00\", \"allowance\": \"0.00\", \"status\": \"settled\", \"currency\": "
                  "\"USD\"},\n"
                  "  {\"contract_id\": \"C-2\", \"invoice_id\": \"INV-9\", \"customer_id\": "
                  "\"CUS-2\", \"issued_on\": \"2026-02-28\", \"amount\": \"5000\", \"tax\": "
                  "\"0\", \"credited\": \"0\", \"paid\": \"0\", \"open\": \"5000\", "
                  "\"allowance\": \"5000\", \"status\": \"uncollectible\", \"currency\": "
                  "\"JPY\"}\n"
                  "]\n");
    EXPECT_OUTPUT(rs_format_invoices(f, RS_FORMAT_CSV, iv, 1),
                  "contract_id,invoice_id,customer_id,issued_on,amount,tax,credited,paid,open,"
                  "allowance,status,currency\r\n"
                  "C-1,INV-1,CUS-1,2026-01-01,1000.00,80.00,108.00,972.00,0.00,0.00,settled,"
                  "USD\r\n");
}
