/*
 * test_codec_json — the JSON codec (schemas/rs_codec_json.c) against the
 * event contract of shared/reference/events.md.
 *
 * Invariants:
 *   - One valid base event per type (BASE_*); failure cases are made by
 *     editing a base with jansson (with_field: remove or replace one field
 *     at a path like "lines[3].milestones[1].amount"), so each case changes
 *     exactly one thing and the expected message names exactly that field.
 *   - Uses only codec, money, event and names functions (no engine).
 *
 * Ownership: every decoded event is rs_event_clear()ed and every string the
 * codec returns is free()d, so the ASan build checks for leaks.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_event.h"
#include "rs_money.h"

/* ---- base events, one per type ---- */

static const char BASE_BOOKED[] =
    "{\"event_id\":\"e-book\",\"type\":\"contract.booked\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T09:30:00Z\",\"customer_id\":\"CU-1\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-01-01\",\"source\":{\"system\":\"hubspot\",\"record_id\":\"deal-77\"}"
    ","
    "\"lines\":["
    "{\"line_id\":\"L1\",\"product\":\"Platform\",\"recognition\":\"ratable_daily\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"12000.00\",\"ssp\":\"15000."
    "00\"},"
    "{\"line_id\":\"L2\",\"product\":\"Onboarding\",\"recognition\":\"point_in_time\","
    "\"start\":\"2026-01-15\",\"amount\":\"2000.00\"},"
    "{\"line_id\":\"L3\",\"product\":\"API calls\",\"recognition\":\"usage\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":\"0."
    "000125\"},"
    "{\"line_id\":\"L4\",\"product\":\"Migration\",\"recognition\":\"milestone\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-06-30\",\"amount\":\"5000.00\",\"milestones\":["
    "{\"milestone_id\":\"M1\",\"amount\":\"2000.00\"},"
    "{\"milestone_id\":\"M2\",\"amount\":\"3000.00\"}]},"
    "{\"line_id\":\"L5\",\"product\":\"Support\",\"recognition\":\"ratable_monthly\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1200\"}]}";

static const char BASE_AMENDED[] =
    "{\"event_id\":\"e-amend\",\"type\":\"contract.amended\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-04-01T00:30:00+02:00\",\"effective_on\":\"2026-04-01\","
    "\"treatment\":\"catch_up\",\"lines\":["
    "{\"line_id\":\"L1\",\"product\":\"Platform\",\"recognition\":\"ratable_daily\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"18000.00\"}]}";

static const char BASE_CANCELLED[] =
    "{\"event_id\":\"e-cancel\",\"type\":\"contract.cancelled\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-07-01T12:00:00Z\",\"effective_on\":\"2026-07-01\"}";

static const char BASE_MILESTONE[] =
    "{\"event_id\":\"e-ms\",\"type\":\"milestone.completed\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-03-10T08:00:00Z\",\"line_id\":\"L4\",\"milestone_id\":\"M1\","
    "\"completed_on\":\"2026-03-10\"}";

static const char BASE_CLOSED[] =
    "{\"event_id\":\"e-close\",\"type\":\"period.closed\","
    "\"occurred_at\":\"2026-02-03T00:00:00Z\",\"period\":\"2026-01\"}";

static const char BASE_INVOICE[] =
    "{\"event_id\":\"e-inv\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T10:00:00Z\",\"invoice_id\":\"INV-1\","
    "\"issued_on\":\"2026-01-01\",\"due_on\":\"2026-01-31\",\"lines\":["
    "{\"line_id\":\"L1\",\"amount\":\"12000.00\",\"tax\":\"960.00\","
    "\"service_start\":\"2026-01-01\",\"service_end\":\"2026-12-31\"},"
    "{\"line_id\":\"L2\",\"amount\":\"2000.00\"}]}";

static const char BASE_VOIDED[] =
    "{\"event_id\":\"e-void\",\"type\":\"invoice.voided\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-05T10:00:00Z\",\"invoice_id\":\"INV-1\",\"voided_on\":\"2026-01-"
    "05\"}";

static const char BASE_CREDIT[] =
    "{\"event_id\":\"e-cn\",\"type\":\"credit_note.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-04-01T10:00:00Z\",\"credit_note_id\":\"CN-1\",\"invoice_id\":\"INV-"
    "1\","
    "\"issued_on\":\"2026-04-01\",\"reason\":\"discount\",\"lines\":["
    "{\"line_id\":\"L1\",\"amount\":\"60.00\",\"tax\":\"4.80\"}]}";

static const char BASE_UNCOLLECTIBLE[] =
    "{\"event_id\":\"e-bad\",\"type\":\"invoice.uncollectible\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-09-01T10:00:00Z\",\"invoice_id\":\"INV-1\","
    "\"declared_on\":\"2026-09-01\"}";

static const char BASE_PAID[] =
    "{\"event_id\":\"e-pay\",\"type\":\"payment.received\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-10T10:00:00Z\",\"payment_id\":\"P-1\",\"invoice_id\":\"INV-1\","
    "\"amount\":\"12960.00\",\"received_on\":\"2026-01-10\"}";

static const char BASE_REFUNDED[] =
    "{\"event_id\":\"e-ref\",\"type\":\"payment.refunded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-02-01T10:00:00Z\",\"refund_id\":\"R-1\",\"payment_id\":\"P-1\","
    "\"invoice_id\":\"INV-1\",\"amount\":\"90\",\"refunded_on\":\"2026-02-01\"}";

static const char BASE_FAILED[] =
    "{\"event_id\":\"e-fail\",\"type\":\"payment.failed\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-10T10:00:00Z\",\"payment_id\":\"P-2\",\"invoice_id\":\"INV-1\","
    "\"failed_on\":\"2026-01-10\",\"reason\":\"card_declined\"}";

static const char BASE_USAGE[] =
    "{\"event_id\":\"e-use\",\"type\":\"usage.recorded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-03-15T23:30:00-05:00\",\"line_id\":\"L3\",\"quantity\":\"10000."
    "5\"}";

static const char *const ALL_BASES[] = {
    BASE_BOOKED,   BASE_AMENDED, BASE_CANCELLED, BASE_MILESTONE,     BASE_CLOSED,
    BASE_INVOICE,  BASE_VOIDED,  BASE_CREDIT,    BASE_UNCOLLECTIBLE, BASE_PAID,
    BASE_REFUNDED, BASE_FAILED,  BASE_USAGE,
};
#define N_BASES (sizeof(ALL_BASES) / sizeof(ALL_BASES[0]))

/* ---- helpers ---- */

static char err[512];

static int decode(const char *json, rs_event_t *ev)
{
    err[0] = '\0';
    return rs_codec_json_decode(json, strlen(json), ev, err, sizeof(err));
}

/* Decode a JSON that must be valid; abort the test otherwise. */
static void decode_ok(const char *json, rs_event_t *ev)
{
    int rc = decode(json, ev);
    cr_assert_eq(rc, 0, "decode failed: %s\ninput: %s", err, json);
}

/* The JSON value under `obj` at one path step ("lines[3]" or "amount"). */
static json_t *step(json_t *obj, const char *seg, size_t len)
{
    char key[64];
    const char *br = memchr(seg, '[', len);
    size_t klen = br ? (size_t)(br - seg) : len;
    cr_assert_lt(klen, sizeof(key));
    memcpy(key, seg, klen);
    key[klen] = '\0';
    json_t *v = json_object_get(obj, key);
    if (br)
        v = json_array_get(v, strtoul(br + 1, NULL, 10));
    return v;
}

/* `json` with the field at `path` replaced by `value` (JSON text), or removed
 * when value is NULL. Returns a malloc'd string. */
static char *with_field(const char *json, const char *path, const char *value)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    cr_assert_not_null(root, "bad base JSON: %s", jerr.text);
    json_t *parent = root;
    const char *seg = path;
    const char *dot;
    while ((dot = strchr(seg, '.')) != NULL) {
        parent = step(parent, seg, (size_t)(dot - seg));
        cr_assert_not_null(parent, "no such path %s", path);
        seg = dot + 1;
    }
    const char *br = strchr(seg, '[');
    if (br) { /* last step is an array element */
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(br - seg), seg);
        json_t *arr = json_object_get(parent, key);
        size_t idx = strtoul(br + 1, NULL, 10);
        cr_assert(json_is_array(arr), "no array at %s", path);
        if (value)
            json_array_set_new(arr, idx, json_loads(value, JSON_DECODE_ANY, &jerr));
        else
            json_array_remove(arr, idx);
    } else if (value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
        cr_assert_not_null(v, "bad value %s: %s", value, jerr.text);
        json_object_set_new(parent, seg, v);
    } else {
        cr_assert_eq(json_object_del(parent, seg), 0, "no field %s to remove", path);
    }
    char *out = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(root);
    return out;
}

/* Decoding `base` edited at `path` must fail with exactly `want`, and leave
 * the event cleared. */
static void expect_error(const char *base, const char *path, const char *value,
                         const char *want)
{
    rs_event_t ev;
    char *json = with_field(base, path, value);
    int rc = decode(json, &ev);
    cr_expect_eq(rc, -1, "accepted %s", json);
    cr_expect_str_eq(err, want, "path %s value %s", path, value ? value : "(removed)");
    cr_expect_eq(ev.type, RS_EV_UNKNOWN);
    cr_expect_eq(ev.n_lines, 0);
    cr_expect_null(ev.lines);
    cr_expect_eq(ev.n_bill_lines, 0);
    cr_expect_null(ev.bill_lines);
    cr_expect_str_eq(ev.event_id, "");
    rs_event_clear(&ev);
    free(json);
}

/* Decoding `base` edited at `path` must succeed; the event is returned. */
static void decode_edited(const char *base, const char *path, const char *value, rs_event_t *ev)
{
    char *json = with_field(base, path, value);
    int rc = decode(json, ev);
    cr_assert_eq(rc, 0, "rejected %s: %s", json, err);
    free(json);
}

#define D(y, m, d) rs_date_from_ymd((y), (m), (d))

static void expect_dec(rs_decimal_t d, int64_t mantissa, int scale, const char *what)
{
    cr_expect_eq(d.mantissa, mantissa, "%s mantissa %lld", what, (long long)d.mantissa);
    cr_expect_eq(d.scale, scale, "%s scale %d", what, d.scale);
}

/* ---- decoding: every type, every field ---- */

Test(codec_json, decodes_contract_booked)
{
    rs_event_t ev;
    decode_ok(BASE_BOOKED, &ev);
    cr_expect_eq(ev.type, RS_EV_CONTRACT_BOOKED);
    cr_expect_str_eq(ev.event_id, "e-book");
    cr_expect_str_eq(ev.contract_id, "C-1");
    cr_expect_str_eq(ev.occurred_at, "2026-01-01T09:30:00Z");
    cr_expect_eq(ev.occurred_on, D(2026, 1, 1));
    cr_expect_str_eq(ev.customer_id, "CU-1");
    cr_expect_str_eq(ev.currency, "USD");
    cr_expect_eq(ev.booked_on, D(2026, 1, 1));
    cr_expect_str_eq(ev.source_system, "hubspot");
    cr_expect_str_eq(ev.source_record_id, "deal-77");
    cr_assert_eq(ev.n_lines, 5);

    const rs_line_spec_t *l = &ev.lines[0];
    cr_expect_str_eq(l->line_id, "L1");
    cr_expect_str_eq(l->product, "Platform");
    cr_expect_eq(l->recognition, RS_METHOD_RATABLE_DAILY);
    cr_expect_eq(l->start, D(2026, 1, 1));
    cr_expect_eq(l->end, D(2026, 12, 31));
    expect_dec(l->amount, 1200000, 2, "L1 amount");
    cr_expect_eq(l->has_ssp, 1);
    expect_dec(l->ssp, 1500000, 2, "L1 ssp");
    cr_expect_eq(l->has_unit_price, 0);
    cr_expect_eq(l->n_milestones, 0);
    cr_expect_null(l->milestones);

    l = &ev.lines[1]; /* point_in_time without end: end defaults to start */
    cr_expect_str_eq(l->line_id, "L2");
    cr_expect_eq(l->recognition, RS_METHOD_POINT_IN_TIME);
    cr_expect_eq(l->start, D(2026, 1, 15));
    cr_expect_eq(l->end, D(2026, 1, 15));
    expect_dec(l->amount, 200000, 2, "L2 amount");
    cr_expect_eq(l->has_ssp, 0);

    l = &ev.lines[2];
    cr_expect_str_eq(l->product, "API calls");
    cr_expect_eq(l->recognition, RS_METHOD_USAGE);
    expect_dec(l->amount, 0, 0, "L3 amount");
    cr_expect_eq(l->has_unit_price, 1);
    expect_dec(l->unit_price, 125, 6, "L3 unit_price");

    l = &ev.lines[3];
    cr_expect_eq(l->recognition, RS_METHOD_MILESTONE);
    cr_expect_eq(l->end, D(2026, 6, 30));
    cr_assert_eq(l->n_milestones, 2);
    cr_expect_str_eq(l->milestones[0].milestone_id, "M1");
    expect_dec(l->milestones[0].amount, 200000, 2, "M1");
    cr_expect_str_eq(l->milestones[1].milestone_id, "M2");
    expect_dec(l->milestones[1].amount, 300000, 2, "M2");

    l = &ev.lines[4];
    cr_expect_eq(l->recognition, RS_METHOD_RATABLE_MONTHLY);
    expect_dec(l->amount, 1200, 0, "L5 amount");

    /* Fields of other types stay at their initial values. */
    cr_expect_eq(ev.effective_on, RS_DATE_NONE);
    cr_expect_eq(ev.on, RS_DATE_NONE);
    cr_expect_eq(ev.period, RS_PERIOD_NONE);
    cr_expect_eq(ev.n_bill_lines, 0);
    rs_event_clear(&ev);
}

/* rs_event_release frees what an event owns (lines with milestones here;
 * ASan's leak check sees anything left) and leaves no owned pointer behind,
 * but does not zero the rest (rs_event_clear does). */
Test(codec_json, release_frees_what_the_event_owns)
{
    rs_event_t ev;
    decode_ok(BASE_BOOKED, &ev);
    cr_assert_eq(ev.n_lines, 5);
    cr_assert_eq(ev.lines[3].n_milestones, 2);
    rs_event_release(&ev);
    cr_assert_null(ev.lines);
    cr_assert_eq(ev.n_lines, 0);
    cr_assert_null(ev.bill_lines);
    cr_assert_eq(ev.n_bill_lines, 0);
    cr_assert_str_eq(ev.contract_id, "C-1", "release is not a re-initialisation");
    rs_event_release(&ev); /* nothing owned any more: a no-op */
    rs_event_release(NULL);
}

Test(codec_json, decodes_contract_amended)
{
    rs_event_t ev;
    decode_ok(BASE_AMENDED, &ev);
    cr_expect_eq(ev.type, RS_EV_CONTRACT_AMENDED);
    cr_expect_str_eq(ev.occurred_at, "2026-04-01T00:30:00+02:00");
    cr_expect_eq(ev.occurred_on, D(2026, 3, 31), "UTC date of a +02:00 timestamp");
    cr_expect_eq(ev.effective_on, D(2026, 4, 1));
    cr_expect_eq(ev.treatment, RS_TREATMENT_CATCH_UP);
    cr_assert_eq(ev.n_lines, 1);
    expect_dec(ev.lines[0].amount, 1800000, 2, "amount");
    rs_event_clear(&ev);

    /* treatment defaults to prospective */
    decode_edited(BASE_AMENDED, "treatment", NULL, &ev);
    cr_expect_eq(ev.treatment, RS_TREATMENT_PROSPECTIVE);
    rs_event_clear(&ev);
    decode_edited(BASE_AMENDED, "treatment", "\"prospective\"", &ev);
    cr_expect_eq(ev.treatment, RS_TREATMENT_PROSPECTIVE);
    rs_event_clear(&ev);
}

Test(codec_json, decodes_contract_cancelled_and_milestone)
{
    rs_event_t ev;
    decode_ok(BASE_CANCELLED, &ev);
    cr_expect_eq(ev.type, RS_EV_CONTRACT_CANCELLED);
    cr_expect_str_eq(ev.event_id, "e-cancel");
    cr_expect_eq(ev.effective_on, D(2026, 7, 1));
    cr_expect_eq(ev.occurred_on, D(2026, 7, 1));
    rs_event_clear(&ev);

    decode_ok(BASE_MILESTONE, &ev);
    cr_expect_eq(ev.type, RS_EV_MILESTONE_COMPLETED);
    cr_expect_str_eq(ev.line_id, "L4");
    cr_expect_str_eq(ev.milestone_id, "M1");
    cr_expect_eq(ev.completed_on, D(2026, 3, 10));
    rs_event_clear(&ev);
}

Test(codec_json, decodes_period_closed_without_contract)
{
    rs_event_t ev;
    decode_ok(BASE_CLOSED, &ev);
    cr_expect_eq(ev.type, RS_EV_PERIOD_CLOSED);
    cr_expect_str_eq(ev.event_id, "e-close");
    cr_expect_str_eq(ev.contract_id, "");
    cr_expect_eq(ev.period, 2026 * 12 + 0);
    rs_event_clear(&ev);

    /* A contract_id on a control event is ignored: it has no contract. */
    decode_edited(BASE_CLOSED, "contract_id", "\"C-9\"", &ev);
    cr_expect_str_eq(ev.contract_id, "");
    rs_event_clear(&ev);
}

Test(codec_json, decodes_invoice_issued)
{
    rs_event_t ev;
    decode_ok(BASE_INVOICE, &ev);
    cr_expect_eq(ev.type, RS_EV_INVOICE_ISSUED);
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    cr_expect_eq(ev.on, D(2026, 1, 1));
    cr_expect_eq(ev.due_on, D(2026, 1, 31));
    cr_assert_eq(ev.n_bill_lines, 2);
    const rs_bill_line_t *b = &ev.bill_lines[0];
    cr_expect_str_eq(b->line_id, "L1");
    expect_dec(b->amount, 1200000, 2, "L1 amount");
    cr_expect_eq(b->has_tax, 1);
    expect_dec(b->tax, 96000, 2, "L1 tax");
    cr_expect_eq(b->service_start, D(2026, 1, 1));
    cr_expect_eq(b->service_end, D(2026, 12, 31));
    b = &ev.bill_lines[1];
    cr_expect_str_eq(b->line_id, "L2");
    expect_dec(b->amount, 200000, 2, "L2 amount");
    cr_expect_eq(b->has_tax, 0);
    cr_expect_eq(b->service_start, RS_DATE_NONE);
    cr_expect_eq(b->service_end, RS_DATE_NONE);
    cr_expect_eq(ev.n_lines, 0);
    rs_event_clear(&ev);

    decode_edited(BASE_INVOICE, "due_on", NULL, &ev);
    cr_expect_eq(ev.due_on, RS_DATE_NONE);
    rs_event_clear(&ev);
    /* JSON null is the same as absent for an optional field. */
    decode_edited(BASE_INVOICE, "due_on", "null", &ev);
    cr_expect_eq(ev.due_on, RS_DATE_NONE);
    rs_event_clear(&ev);
}

Test(codec_json, decodes_invoice_voided_and_uncollectible)
{
    rs_event_t ev;
    decode_ok(BASE_VOIDED, &ev);
    cr_expect_eq(ev.type, RS_EV_INVOICE_VOIDED);
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    cr_expect_eq(ev.on, D(2026, 1, 5));
    rs_event_clear(&ev);

    decode_ok(BASE_UNCOLLECTIBLE, &ev);
    cr_expect_eq(ev.type, RS_EV_INVOICE_UNCOLLECTIBLE);
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    cr_expect_eq(ev.on, D(2026, 9, 1));
    rs_event_clear(&ev);
}

Test(codec_json, decodes_credit_note)
{
    rs_event_t ev;
    decode_ok(BASE_CREDIT, &ev);
    cr_expect_eq(ev.type, RS_EV_CREDIT_NOTE_ISSUED);
    cr_expect_str_eq(ev.credit_note_id, "CN-1");
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    cr_expect_eq(ev.on, D(2026, 4, 1));
    cr_expect_eq(ev.reason, RS_CREDIT_DISCOUNT);
    cr_assert_eq(ev.n_bill_lines, 1);
    cr_expect_str_eq(ev.bill_lines[0].line_id, "L1");
    expect_dec(ev.bill_lines[0].amount, 6000, 2, "amount");
    cr_expect_eq(ev.bill_lines[0].has_tax, 1);
    expect_dec(ev.bill_lines[0].tax, 480, 2, "tax");
    rs_event_clear(&ev);

    static const struct {
        const char *name;
        rs_credit_reason_t r;
    } reasons[] = {{"\"refund\"", RS_CREDIT_REFUND},
                   {"\"cancellation\"", RS_CREDIT_CANCELLATION},
                   {"\"error\"", RS_CREDIT_ERROR}};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        decode_edited(BASE_CREDIT, "reason", reasons[i].name, &ev);
        cr_expect_eq(ev.reason, reasons[i].r, "reason %s", reasons[i].name);
        rs_event_clear(&ev);
    }
}

Test(codec_json, decodes_payments)
{
    rs_event_t ev;
    decode_ok(BASE_PAID, &ev);
    cr_expect_eq(ev.type, RS_EV_PAYMENT_RECEIVED);
    cr_expect_str_eq(ev.payment_id, "P-1");
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    expect_dec(ev.amount, 1296000, 2, "amount");
    cr_expect_eq(ev.on, D(2026, 1, 10));
    rs_event_clear(&ev);

    decode_ok(BASE_REFUNDED, &ev);
    cr_expect_eq(ev.type, RS_EV_PAYMENT_REFUNDED);
    cr_expect_str_eq(ev.refund_id, "R-1");
    cr_expect_str_eq(ev.payment_id, "P-1");
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    expect_dec(ev.amount, 90, 0, "amount");
    cr_expect_eq(ev.on, D(2026, 2, 1));
    rs_event_clear(&ev);

    decode_ok(BASE_FAILED, &ev);
    cr_expect_eq(ev.type, RS_EV_PAYMENT_FAILED);
    cr_expect_str_eq(ev.payment_id, "P-2");
    cr_expect_str_eq(ev.invoice_id, "INV-1");
    cr_expect_eq(ev.on, D(2026, 1, 10));
    cr_expect_str_eq(ev.failure_reason, "card_declined");
    rs_event_clear(&ev);
}

Test(codec_json, decodes_usage_recorded)
{
    rs_event_t ev;
    decode_ok(BASE_USAGE, &ev);
    cr_expect_eq(ev.type, RS_EV_USAGE_RECORDED);
    cr_expect_str_eq(ev.contract_id, "C-1");
    cr_expect_str_eq(ev.line_id, "L3");
    expect_dec(ev.quantity, 100005, 1, "quantity");
    cr_expect_eq(ev.occurred_on, D(2026, 3, 16), "23:30 at -05:00 is the next day in UTC");
    rs_event_clear(&ev);
}

Test(codec_json, reads_only_len_bytes)
{
    /* The buffer holds a valid event followed by garbage outside len. */
    char buf[sizeof(BASE_PAID) + 16];
    memcpy(buf, BASE_PAID, sizeof(BASE_PAID) - 1);
    memcpy(buf + sizeof(BASE_PAID) - 1, "}}garbage", 10);
    rs_event_t ev;
    cr_assert_eq(rs_codec_json_decode(buf, sizeof(BASE_PAID) - 1, &ev, err, sizeof(err)), 0,
                 "%s", err);
    cr_expect_str_eq(ev.payment_id, "P-1");
    rs_event_clear(&ev);
    /* A trailing newline (JSON Lines) is fine. */
    char line[sizeof(BASE_PAID) + 1];
    snprintf(line, sizeof(line), "%s\n", BASE_PAID);
    decode_ok(line, &ev);
    rs_event_clear(&ev);
}

/* ---- required fields ---- */

typedef struct edit_case {
    const char *base;
    const char *path;
    const char *value; /* JSON text; NULL removes the field */
    const char *want;
} edit_case_t;

Test(codec_json, common_required_fields_of_every_type)
{
    char want[256];
    for (size_t i = 0; i < N_BASES; i++) {
        rs_event_t ev;
        decode_ok(ALL_BASES[i], &ev);
        char id[RS_ID_MAX];
        snprintf(id, sizeof(id), "%s", ev.event_id);
        int control = ev.type == RS_EV_PERIOD_CLOSED;
        rs_event_clear(&ev);

        expect_error(ALL_BASES[i], "event_id", NULL, "event ?: event_id: missing");
        snprintf(want, sizeof(want), "event %s: type: missing", id);
        expect_error(ALL_BASES[i], "type", NULL, want);
        snprintf(want, sizeof(want), "event %s: occurred_at: missing", id);
        expect_error(ALL_BASES[i], "occurred_at", NULL, want);
        if (!control) {
            snprintf(want, sizeof(want), "event %s: contract_id: missing", id);
            expect_error(ALL_BASES[i], "contract_id", NULL, want);
        }
    }
}

Test(codec_json, type_specific_required_fields)
{
    static const edit_case_t cases[] = {
        {BASE_BOOKED, "customer_id", NULL, "event e-book: customer_id: missing"},
        {BASE_BOOKED, "currency", NULL, "event e-book: currency: missing"},
        {BASE_BOOKED, "booked_on", NULL, "event e-book: booked_on: missing"},
        {BASE_BOOKED, "lines", NULL, "event e-book: lines: missing"},
        {BASE_BOOKED, "source.system", NULL, "event e-book: source.system: missing"},
        {BASE_BOOKED, "source.record_id", NULL, "event e-book: source.record_id: missing"},
        {BASE_BOOKED, "lines[0].line_id", NULL, "event e-book: lines[0].line_id: missing"},
        {BASE_BOOKED, "lines[4].product", NULL, "event e-book: lines[4].product: missing"},
        {BASE_BOOKED, "lines[1].recognition", NULL,
         "event e-book: lines[1].recognition: missing"},
        {BASE_BOOKED, "lines[1].start", NULL, "event e-book: lines[1].start: missing"},
        {BASE_BOOKED, "lines[0].end", NULL, "event e-book: lines[0].end: missing"},
        {BASE_BOOKED, "lines[0].amount", NULL, "event e-book: lines[0].amount: missing"},
        {BASE_BOOKED, "lines[2].unit_price", NULL,
         "event e-book: lines[2].unit_price: missing"},
        {BASE_BOOKED, "lines[3].milestones", NULL,
         "event e-book: lines[3].milestones: missing"},
        {BASE_BOOKED, "lines[3].milestones", "[]",
         "event e-book: lines[3].milestones: must not be empty"},
        {BASE_BOOKED, "lines[3].milestones[1].milestone_id", NULL,
         "event e-book: lines[3].milestones[1].milestone_id: missing"},
        {BASE_BOOKED, "lines[3].milestones[0].amount", NULL,
         "event e-book: lines[3].milestones[0].amount: missing"},
        {BASE_AMENDED, "effective_on", NULL, "event e-amend: effective_on: missing"},
        {BASE_AMENDED, "lines", NULL, "event e-amend: lines: missing"},
        {BASE_AMENDED, "lines[0].amount", NULL, "event e-amend: lines[0].amount: missing"},
        {BASE_CANCELLED, "effective_on", NULL, "event e-cancel: effective_on: missing"},
        {BASE_MILESTONE, "line_id", NULL, "event e-ms: line_id: missing"},
        {BASE_MILESTONE, "milestone_id", NULL, "event e-ms: milestone_id: missing"},
        {BASE_MILESTONE, "completed_on", NULL, "event e-ms: completed_on: missing"},
        {BASE_CLOSED, "period", NULL, "event e-close: period: missing"},
        {BASE_INVOICE, "invoice_id", NULL, "event e-inv: invoice_id: missing"},
        {BASE_INVOICE, "issued_on", NULL, "event e-inv: issued_on: missing"},
        {BASE_INVOICE, "lines", NULL, "event e-inv: lines: missing"},
        {BASE_INVOICE, "lines", "[]", "event e-inv: lines: must not be empty"},
        {BASE_INVOICE, "lines[1].line_id", NULL, "event e-inv: lines[1].line_id: missing"},
        {BASE_INVOICE, "lines[0].amount", NULL, "event e-inv: lines[0].amount: missing"},
        {BASE_VOIDED, "invoice_id", NULL, "event e-void: invoice_id: missing"},
        {BASE_VOIDED, "voided_on", NULL, "event e-void: voided_on: missing"},
        {BASE_CREDIT, "credit_note_id", NULL, "event e-cn: credit_note_id: missing"},
        {BASE_CREDIT, "invoice_id", NULL, "event e-cn: invoice_id: missing"},
        {BASE_CREDIT, "issued_on", NULL, "event e-cn: issued_on: missing"},
        {BASE_CREDIT, "reason", NULL, "event e-cn: reason: missing"},
        {BASE_CREDIT, "lines", NULL, "event e-cn: lines: missing"},
        {BASE_CREDIT, "lines[0].line_id", NULL, "event e-cn: lines[0].line_id: missing"},
        {BASE_CREDIT, "lines[0].amount", NULL, "event e-cn: lines[0].amount: missing"},
        {BASE_UNCOLLECTIBLE, "invoice_id", NULL, "event e-bad: invoice_id: missing"},
        {BASE_UNCOLLECTIBLE, "declared_on", NULL, "event e-bad: declared_on: missing"},
        {BASE_PAID, "payment_id", NULL, "event e-pay: payment_id: missing"},
        {BASE_PAID, "invoice_id", NULL, "event e-pay: invoice_id: missing"},
        {BASE_PAID, "amount", NULL, "event e-pay: amount: missing"},
        {BASE_PAID, "amount", "null", "event e-pay: amount: missing"},
        {BASE_PAID, "received_on", NULL, "event e-pay: received_on: missing"},
        {BASE_REFUNDED, "refund_id", NULL, "event e-ref: refund_id: missing"},
        {BASE_REFUNDED, "payment_id", NULL, "event e-ref: payment_id: missing"},
        {BASE_REFUNDED, "invoice_id", NULL, "event e-ref: invoice_id: missing"},
        {BASE_REFUNDED, "amount", NULL, "event e-ref: amount: missing"},
        {BASE_REFUNDED, "refunded_on", NULL, "event e-ref: refunded_on: missing"},
        {BASE_FAILED, "payment_id", NULL, "event e-fail: payment_id: missing"},
        {BASE_FAILED, "invoice_id", NULL, "event e-fail: invoice_id: missing"},
        {BASE_FAILED, "failed_on", NULL, "event e-fail: failed_on: missing"},
        {BASE_FAILED, "reason", NULL, "event e-fail: reason: missing"},
        {BASE_USAGE, "line_id", NULL, "event e-use: line_id: missing"},
        {BASE_USAGE, "quantity", NULL, "event e-use: quantity: missing"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].base, cases[i].path, cases[i].value, cases[i].want);
}

Test(codec_json, optional_fields_may_be_absent)
{
    static const struct {
        const char *base, *path;
    } cases[] = {
        {BASE_BOOKED, "source"},
        {BASE_BOOKED, "lines[0].ssp"},
        {BASE_AMENDED, "treatment"},
        {BASE_INVOICE, "due_on"},
        {BASE_INVOICE, "lines[0].tax"},
        {BASE_INVOICE, "lines[0].service_start"},
        {BASE_INVOICE, "lines[0].service_end"},
        {BASE_CREDIT, "lines[0].tax"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rs_event_t ev;
        decode_edited(cases[i].base, cases[i].path, NULL, &ev);
        rs_event_clear(&ev);
    }
    rs_event_t ev;
    /* end is optional only for point_in_time lines */
    char *pit = with_field(BASE_BOOKED, "lines[4].recognition", "\"point_in_time\"");
    decode_edited(pit, "lines[4].end", NULL, &ev);
    cr_expect_eq(ev.lines[4].end, D(2026, 1, 1));
    rs_event_clear(&ev);
    free(pit);
    decode_edited(BASE_BOOKED, "source", NULL, &ev);
    cr_expect_str_eq(ev.source_system, "");
    cr_expect_str_eq(ev.source_record_id, "");
    rs_event_clear(&ev);
    decode_edited(BASE_INVOICE, "lines[0].tax", NULL, &ev);
    cr_expect_eq(ev.bill_lines[0].has_tax, 0);
    rs_event_clear(&ev);
}

/* ---- bad values ---- */

Test(codec_json, money_as_json_number_is_rejected)
{
    static const edit_case_t cases[] = {
        {BASE_PAID, "amount", "12960", "event e-pay: amount: must be a decimal string"},
        {BASE_PAID, "amount", "12960.5", "event e-pay: amount: must be a decimal string"},
        {BASE_REFUNDED, "amount", "90", "event e-ref: amount: must be a decimal string"},
        {BASE_BOOKED, "lines[0].amount", "12000",
         "event e-book: lines[0].amount: must be a decimal string"},
        {BASE_BOOKED, "lines[0].ssp", "1.5",
         "event e-book: lines[0].ssp: must be a decimal string"},
        {BASE_BOOKED, "lines[2].unit_price", "0.000125",
         "event e-book: lines[2].unit_price: must be a decimal string"},
        {BASE_BOOKED, "lines[3].milestones[1].amount", "3000",
         "event e-book: lines[3].milestones[1].amount: must be a decimal string"},
        {BASE_INVOICE, "lines[0].tax", "960",
         "event e-inv: lines[0].tax: must be a decimal string"},
        {BASE_CREDIT, "lines[0].amount", "true",
         "event e-cn: lines[0].amount: must be a decimal string"},
        {BASE_USAGE, "quantity", "5", "event e-use: quantity: must be a decimal string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].base, cases[i].path, cases[i].value, cases[i].want);
}

Test(codec_json, bad_decimals_are_rejected)
{
    static const edit_case_t cases[] = {
        {BASE_INVOICE, "lines[1].amount", "\"12,00\"",
         "event e-inv: lines[1].amount: malformed decimal \"12,00\""},
        {BASE_PAID, "amount", "\"\"", "event e-pay: amount: empty decimal"},
        {BASE_PAID, "amount", "\"1e3\"", "event e-pay: amount: malformed decimal \"1e3\""},
        {BASE_PAID, "amount", "\" 12.00\"",
         "event e-pay: amount: malformed decimal \" 12.00\""},
        {BASE_PAID, "amount", "\"0\"", "event e-pay: amount: must be greater than zero"},
        {BASE_PAID, "amount", "\"-5.00\"", "event e-pay: amount: must be greater than zero"},
        {BASE_REFUNDED, "amount", "\"0.00\"", "event e-ref: amount: must be greater than zero"},
        {BASE_CREDIT, "lines[0].amount", "\"0\"",
         "event e-cn: lines[0].amount: must be greater than zero"},
        {BASE_CREDIT, "lines[0].tax", "\"-0.01\"",
         "event e-cn: lines[0].tax: must not be negative"},
        {BASE_BOOKED, "lines[0].amount", "\"-1.00\"",
         "event e-book: lines[0].amount: must not be negative"},
        {BASE_BOOKED, "lines[0].ssp", "\"-1\"",
         "event e-book: lines[0].ssp: must not be negative"},
        {BASE_BOOKED, "lines[3].milestones[0].amount", "\"-2000.00\"",
         "event e-book: lines[3].milestones[0].amount: must not be negative"},
        {BASE_INVOICE, "lines[0].amount", "\"-1\"",
         "event e-inv: lines[0].amount: must not be negative"},
        {BASE_INVOICE, "lines[0].tax", "\"-1\"",
         "event e-inv: lines[0].tax: must not be negative"},
        {BASE_BOOKED, "lines[2].unit_price", "\"0.0000001\"",
         "event e-book: lines[2].unit_price: decimal \"0.0000001\" has more than 6 fraction "
         "digits"},
        {BASE_USAGE, "quantity", "\"1.1234567\"",
         "event e-use: quantity: decimal \"1.1234567\" has more than 6 fraction digits"},
        {BASE_USAGE, "quantity", "\"-3\"", "event e-use: quantity: must not be negative"},
        {BASE_PAID, "amount", "\"99999999999999999999\"",
         "event e-pay: amount: decimal \"99999999999999999999\" is out of range"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].base, cases[i].path, cases[i].value, cases[i].want);

    /* Zero is a valid price, quantity and invoice amount. */
    rs_event_t ev;
    decode_edited(BASE_USAGE, "quantity", "\"0\"", &ev);
    expect_dec(ev.quantity, 0, 0, "quantity");
    rs_event_clear(&ev);
    decode_edited(BASE_INVOICE, "lines[0].amount", "\"0.00\"", &ev);
    expect_dec(ev.bill_lines[0].amount, 0, 2, "amount");
    rs_event_clear(&ev);
}

Test(codec_json, bad_dates_and_timestamps_are_rejected)
{
    static const edit_case_t cases[] = {
        {BASE_BOOKED, "booked_on", "\"2026-02-30\"",
         "event e-book: booked_on: not a valid YYYY-MM-DD date \"2026-02-30\""},
        {BASE_BOOKED, "lines[0].start", "\"2026-13-01\"",
         "event e-book: lines[0].start: not a valid YYYY-MM-DD date \"2026-13-01\""},
        {BASE_BOOKED, "lines[0].end", "\"2026-12-31T00:00:00Z\"",
         "event e-book: lines[0].end: not a valid YYYY-MM-DD date \"2026-12-31T00:00:00Z\""},
        {BASE_INVOICE, "due_on", "\"2026-2-1\"",
         "event e-inv: due_on: not a valid YYYY-MM-DD date \"2026-2-1\""},
        {BASE_INVOICE, "lines[0].service_start", "\"01/01/2026\"",
         "event e-inv: lines[0].service_start: not a valid YYYY-MM-DD date \"01/01/2026\""},
        {BASE_PAID, "received_on", "20260110", "event e-pay: received_on: must be a string"},
        {BASE_CANCELLED, "effective_on", "\"2025-02-29\"",
         "event e-cancel: effective_on: not a valid YYYY-MM-DD date \"2025-02-29\""},
        {BASE_BOOKED, "occurred_at", "\"2026-01-01\"",
         "event e-book: occurred_at: not an RFC 3339 timestamp"},
        {BASE_BOOKED, "occurred_at", "\"2026-01-01T25:00:00Z\"",
         "event e-book: occurred_at: not an RFC 3339 timestamp"},
        {BASE_BOOKED, "occurred_at", "\"2026-01-01T10:00:00\"",
         "event e-book: occurred_at: not an RFC 3339 timestamp"},
        {BASE_PAID, "occurred_at", "\"2026-02-30T10:00:00Z\"",
         "event e-pay: occurred_at: not an RFC 3339 timestamp"},
        {BASE_PAID, "occurred_at", "1767225600", "event e-pay: occurred_at: must be a string"},
        {BASE_CLOSED, "period", "\"2026-13\"",
         "event e-close: period: not a valid YYYY-MM period \"2026-13\""},
        {BASE_CLOSED, "period", "\"2026-01-01\"",
         "event e-close: period: not a valid YYYY-MM period \"2026-01-01\""},
        /* inclusive periods must not run backwards */
        {BASE_BOOKED, "lines[0].end", "\"2025-12-31\"",
         "event e-book: lines[0].end: 2025-12-31 is before start 2026-01-01"},
        {BASE_INVOICE, "lines[0].service_end", "\"2025-12-31\"",
         "event e-inv: lines[0].service_end: 2025-12-31 is before service_start 2026-01-01"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].base, cases[i].path, cases[i].value, cases[i].want);

    /* Leap day and a one-day line are fine. */
    rs_event_t ev;
    decode_edited(BASE_CANCELLED, "effective_on", "\"2028-02-29\"", &ev);
    cr_expect_eq(ev.effective_on, D(2028, 2, 29));
    rs_event_clear(&ev);
    decode_edited(BASE_BOOKED, "lines[0].end", "\"2026-01-01\"", &ev);
    cr_expect_eq(ev.lines[0].end, ev.lines[0].start);
    rs_event_clear(&ev);
}

Test(codec_json, unknown_enum_values_are_rejected)
{
    static const edit_case_t cases[] = {
        {BASE_BOOKED, "type", "\"contract.signed\"",
         "event e-book: type: unknown event type \"contract.signed\""},
        {BASE_PAID, "type", "\"Payment.Received\"",
         "event e-pay: type: unknown event type \"Payment.Received\""},
        {BASE_BOOKED, "lines[4].recognition", "\"monthly\"",
         "event e-book: lines[4].recognition: unknown value \"monthly\" (expected "
         "ratable_daily, ratable_monthly, point_in_time, usage or milestone)"},
        {BASE_AMENDED, "treatment", "\"retroactive\"",
         "event e-amend: treatment: unknown value \"retroactive\" (expected prospective or "
         "catch_up)"},
        {BASE_CREDIT, "reason", "\"goodwill\"",
         "event e-cn: reason: unknown value \"goodwill\" (expected discount, refund, "
         "cancellation or error)"},
        {BASE_BOOKED, "currency", "\"XYZ\"",
         "event e-book: currency: unknown ISO 4217 currency \"XYZ\""},
        {BASE_BOOKED, "currency", "\"usd\"",
         "event e-book: currency: unknown ISO 4217 currency \"usd\""},
        {BASE_BOOKED, "currency", "\"USDX\"",
         "event e-book: currency: unknown ISO 4217 currency \"USDX\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].base, cases[i].path, cases[i].value, cases[i].want);
}

Test(codec_json, duplicate_ids_are_rejected)
{
    expect_error(BASE_BOOKED, "lines[1].line_id", "\"L1\"",
                 "event e-book: lines[1].line_id: duplicate line_id \"L1\"");
    expect_error(BASE_BOOKED, "lines[4].line_id", "\"L3\"",
                 "event e-book: lines[4].line_id: duplicate line_id \"L3\"");
    expect_error(BASE_BOOKED, "lines[3].milestones[1].milestone_id", "\"M1\"",
                 "event e-book: lines[3].milestones[1].milestone_id: duplicate milestone_id "
                 "\"M1\"");
    /* A duplicate key in one object makes the event ambiguous. */
    rs_event_t ev;
    const char *json = "{\"event_id\":\"e1\",\"event_id\":\"e2\"}";
    cr_expect_eq(decode(json, &ev), -1);
    cr_expect_eq(strncmp(err, "event ?: invalid JSON at column ", 32), 0, "%s", err);
    cr_expect_not_null(strstr(err, "duplicate object key"), "%s", err);
    rs_event_clear(&ev);
}

Test(codec_json, wrong_shapes_are_rejected)
{
    char long_id[300];
    long_id[0] = '"';
    memset(long_id + 1, 'x', 200);
    long_id[201] = '"';
    long_id[202] = '\0';
    char long_ts[80];
    snprintf(long_ts, sizeof(long_ts), "\"2026-01-01T00:00:00.%040dZ\"", 0);

    const edit_case_t cases[] = {
        {BASE_PAID, "event_id", "42", "event ?: event_id: must be a string"},
        {BASE_PAID, "event_id", "\"\"", "event ?: event_id: must not be empty"},
        {BASE_PAID, "event_id", long_id,
         "event ?: event_id: too long (200 bytes, at most 127)"},
        {BASE_PAID, "contract_id", long_id,
         "event e-pay: contract_id: too long (200 bytes, at most 127)"},
        {BASE_BOOKED, "lines[0].product", "\"\"",
         "event e-book: lines[0].product: must not be empty"},
        {BASE_BOOKED, "source", "\"hubspot\"", "event e-book: source: must be an object"},
        {BASE_BOOKED, "source.system", "\"a-source-system-name-that-is-too-long\"",
         "event e-book: source.system: too long (37 bytes, at most 31)"},
        {BASE_BOOKED, "lines", "\"L1\"", "event e-book: lines: must be an array"},
        {BASE_BOOKED, "lines", "[]", "event e-book: lines: must not be empty"},
        {BASE_AMENDED, "lines", "[]", "event e-amend: lines: must not be empty"},
        {BASE_BOOKED, "lines[2]", "5", "event e-book: lines[2]: must be an object"},
        {BASE_BOOKED, "lines[3].milestones", "{}",
         "event e-book: lines[3].milestones: must be an array"},
        {BASE_BOOKED, "lines[3].milestones[0]", "[]",
         "event e-book: lines[3].milestones[0]: must be an object"},
        {BASE_INVOICE, "lines[1]", "\"L2\"", "event e-inv: lines[1]: must be an object"},
        {BASE_USAGE, "line_id", "[\"L3\"]", "event e-use: line_id: must be a string"},
        {BASE_PAID, "type", "7", "event e-pay: type: must be a string"},
        {BASE_PAID, "occurred_at", long_ts,
         "event e-pay: occurred_at: too long (61 bytes, at most 47)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].base, cases[i].path, cases[i].value, cases[i].want);

    /* The longest id that fits is accepted whole. */
    char max_id[RS_ID_MAX + 2];
    max_id[0] = '"';
    memset(max_id + 1, 'y', RS_ID_MAX - 1);
    max_id[RS_ID_MAX] = '"';
    max_id[RS_ID_MAX + 1] = '\0';
    rs_event_t ev;
    decode_edited(BASE_PAID, "payment_id", max_id, &ev);
    cr_expect_eq(strlen(ev.payment_id), RS_ID_MAX - 1);
    rs_event_clear(&ev);
}

Test(codec_json, invalid_json_and_non_objects)
{
    rs_event_t ev;
    cr_expect_eq(decode("{\"event_id\":\"e1\",", &ev), -1);
    cr_expect_eq(strncmp(err, "event ?: invalid JSON at column ", 32), 0, "%s", err);
    rs_event_clear(&ev);

    cr_expect_eq(decode("{\"event_id\": 12,00}", &ev), -1);
    cr_expect_str_eq(err,
                     "event ?: invalid JSON at column 17: string or '}' expected near '0'");
    rs_event_clear(&ev);

    cr_expect_eq(decode("", &ev), -1);
    cr_expect_eq(strncmp(err, "event ?: invalid JSON at column ", 32), 0, "%s", err);
    rs_event_clear(&ev);

    cr_expect_eq(decode("[{\"event_id\":\"e1\"}]", &ev), -1);
    cr_expect_str_eq(err, "event ?: not a JSON object");
    rs_event_clear(&ev);

    cr_expect_eq(decode("{}", &ev), -1);
    cr_expect_str_eq(err, "event ?: event_id: missing");
    rs_event_clear(&ev);

    cr_expect_eq(rs_codec_json_decode(NULL, 0, &ev, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "event ?: no input");
    rs_event_clear(&ev);

    /* No error buffer: still a clean failure. */
    cr_expect_eq(rs_codec_json_decode("{}", 2, &ev, NULL, 0), -1);
    rs_event_clear(&ev);
}

Test(codec_json, failure_after_allocation_clears_the_event)
{
    /* The error is found in the last line, after lines and milestones were
     * allocated: nothing may leak (ASan) and nothing may stay set. */
    expect_error(BASE_BOOKED, "lines[4].amount", "\"x\"",
                 "event e-book: lines[4].amount: malformed decimal \"x\"");
    expect_error(BASE_INVOICE, "lines[1].tax", "\"x\"",
                 "event e-inv: lines[1].tax: malformed decimal \"x\"");
}

Test(codec_json, error_messages_are_one_clean_line)
{
    rs_event_t ev;
    /* Control characters from the input are not echoed. */
    char *json = with_field(BASE_PAID, "type", "\"pay\\nment\\u001b[31m\"");
    cr_expect_eq(decode(json, &ev), -1);
    cr_expect_str_eq(err, "event e-pay: type: unknown event type \"pay?ment?[31m\"");
    free(json);
    rs_event_clear(&ev);

    /* Long input is cut on a character boundary. */
    char value[400] = "\"";
    for (int i = 0; i < 40; i++)
        strcat(value, "\xc3\xa9"); /* é, 2 bytes */
    strcat(value, "\"");
    json = with_field(BASE_PAID, "type", value);
    cr_expect_eq(decode(json, &ev), -1);
    char want[256] = "event e-pay: type: unknown event type \"";
    for (int i = 0; i < 32; i++)
        strcat(want, "\xc3\xa9");
    strcat(want, "...\"");
    cr_expect_str_eq(err, want);
    free(json);
    rs_event_clear(&ev);

    /* A short buffer truncates without leaving half a character: 19 bytes
     * of "event e-éééééé: ..." end inside the sixth é, which is dropped. */
    char small[20];
    json = with_field(BASE_PAID, "amount", "\"?\"");
    char *json2 =
        with_field(json, "event_id", "\"e-\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"");
    cr_expect_eq(rs_codec_json_decode(json2, strlen(json2), &ev, small, sizeof(small)), -1);
    cr_expect_str_eq(small, "event e-\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    free(json);
    free(json2);
    rs_event_clear(&ev);
}

Test(codec_json, unknown_fields_are_ignored)
{
    for (size_t i = 0; i < N_BASES; i++) {
        rs_event_t a, b;
        decode_ok(ALL_BASES[i], &a);
        char *json =
            with_field(ALL_BASES[i], "x_extra", "{\"nested\":[1,2.5,null],\"k\":\"v\"}");
        decode_ok(json, &b);
        cr_expect_eq(rs_event_hash(&a), rs_event_hash(&b), "base %zu", i);
        free(json);
        rs_event_clear(&a);
        rs_event_clear(&b);
    }
    /* also inside lines, milestones and source */
    rs_event_t a, b;
    decode_ok(BASE_BOOKED, &a);
    char *j1 = with_field(BASE_BOOKED, "lines[0].note", "\"hello\"");
    char *j2 = with_field(j1, "lines[3].milestones[0].due", "\"2026-02-01\"");
    char *j3 = with_field(j2, "source.url", "\"https://example.com/deal/77\"");
    decode_ok(j3, &b);
    cr_expect_eq(rs_event_hash(&a), rs_event_hash(&b));
    free(j1);
    free(j2);
    free(j3);
    rs_event_clear(&a);
    rs_event_clear(&b);
}

/* ---- encoding ---- */

Test(codec_json, round_trip_keeps_the_hash_for_every_type)
{
    for (size_t i = 0; i < N_BASES; i++) {
        rs_event_t a, b;
        decode_ok(ALL_BASES[i], &a);
        char *text = rs_codec_json_encode(&a);
        cr_assert_not_null(text, "encode of base %zu failed", i);
        cr_expect_null(strchr(text, '\n'), "one line: %s", text);
        decode_ok(text, &b);
        cr_expect_eq(rs_event_hash(&a), rs_event_hash(&b), "hash differs for %s", text);
        char *again = rs_codec_json_encode(&b);
        cr_assert_not_null(again);
        cr_expect_str_eq(again, text, "encoding is not canonical");
        free(text);
        free(again);
        rs_event_clear(&a);
        rs_event_clear(&b);
    }
}

Test(codec_json, hash_sees_a_changed_field)
{
    /* The round-trip test relies on the hash: make sure it notices a change. */
    rs_event_t a, b;
    decode_ok(BASE_PAID, &a);
    decode_edited(BASE_PAID, "amount", "\"12960.01\"", &b);
    cr_expect_neq(rs_event_hash(&a), rs_event_hash(&b));
    rs_event_clear(&a);
    rs_event_clear(&b);
}

/* The hash is stored (each applied event's content hash, with its seen id),
 * so its values never change: these were made before rs_event.c took
 * rs_fnv1a64 (workers/base/rs_hash.h). */
Test(codec_json, hash_values_are_stable)
{
    static const uint64_t want[N_BASES] = {
        0x5cd690f828a81826ULL, 0xd33cd98cddbeec04ULL, 0x986992722117a307ULL,
        0x4f62fe08944c37adULL, 0x823b1dd7111e37a2ULL, 0x0e31bc6ed285c0a7ULL,
        0xd978eedbfb24f4f1ULL, 0x3e81dc8e82a85a5eULL, 0x4027231fa10518ceULL,
        0xacb3154b91e60ea4ULL, 0x2b3115bd6d784a68ULL, 0x28ba02a243bd3aebULL,
        0x6fdf621e06478a51ULL};
    for (size_t i = 0; i < N_BASES; i++) {
        rs_event_t ev;
        decode_ok(ALL_BASES[i], &ev);
        cr_expect_eq(rs_event_hash(&ev), want[i], "base %zu: %016llx", i,
                     (unsigned long long)rs_event_hash(&ev));
        rs_event_clear(&ev);
    }
}

Test(codec_json, encodes_in_canonical_form)
{
    rs_event_t ev;
    /* Input keys out of order, with extras: output is the canonical order. */
    decode_ok("{\"received_on\":\"2026-01-10\",\"amount\":\"12960.00\",\"x\":1,"
              "\"invoice_id\":\"INV-1\",\"payment_id\":\"P-1\",\"occurred_at\":"
              "\"2026-01-10T10:00:00Z\",\"contract_id\":\"C-1\",\"type\":\"payment.received\","
              "\"event_id\":\"e-pay\"}",
              &ev);
    char *s = rs_codec_json_encode(&ev);
    cr_expect_str_eq(s,
                     "{\"event_id\":\"e-pay\",\"type\":\"payment.received\",\"contract_id\":"
                     "\"C-1\",\"occurred_at\":\"2026-01-10T10:00:00Z\",\"payment_id\":\"P-1\","
                     "\"invoice_id\":\"INV-1\",\"amount\":\"12960.00\",\"received_on\":"
                     "\"2026-01-10\"}");
    free(s);
    rs_event_clear(&ev);

    decode_ok(BASE_CLOSED, &ev);
    s = rs_codec_json_encode(&ev);
    cr_expect_str_eq(s, "{\"event_id\":\"e-close\",\"type\":\"period.closed\",\"occurred_at\":"
                        "\"2026-02-03T00:00:00Z\",\"period\":\"2026-01\"}");
    free(s);
    rs_event_clear(&ev);

    /* point_in_time gets its explicit end; amounts keep their scale. */
    decode_ok(BASE_BOOKED, &ev);
    s = rs_codec_json_encode(&ev);
    cr_expect_str_eq(
        s, "{\"event_id\":\"e-book\",\"type\":\"contract.booked\",\"contract_id\":\"C-1\","
           "\"occurred_at\":\"2026-01-01T09:30:00Z\",\"customer_id\":\"CU-1\",\"currency\":"
           "\"USD\","
           "\"booked_on\":\"2026-01-01\",\"source\":{\"system\":\"hubspot\",\"record_id\":"
           "\"deal-77\"},\"lines\":["
           "{\"line_id\":\"L1\",\"product\":\"Platform\",\"recognition\":\"ratable_daily\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"12000.00\",\"ssp\":"
           "\"15000.00\"},"
           "{\"line_id\":\"L2\",\"product\":\"Onboarding\",\"recognition\":\"point_in_time\","
           "\"start\":\"2026-01-15\",\"end\":\"2026-01-15\",\"amount\":\"2000.00\"},"
           "{\"line_id\":\"L3\",\"product\":\"API calls\",\"recognition\":\"usage\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":"
           "\"0.000125\"},"
           "{\"line_id\":\"L4\",\"product\":\"Migration\",\"recognition\":\"milestone\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-06-30\",\"amount\":\"5000.00\","
           "\"milestones\":[{\"milestone_id\":\"M1\",\"amount\":\"2000.00\"},"
           "{\"milestone_id\":\"M2\",\"amount\":\"3000.00\"}]},"
           "{\"line_id\":\"L5\",\"product\":\"Support\",\"recognition\":\"ratable_monthly\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1200\"}]}");
    free(s);
    rs_event_clear(&ev);

    decode_edited(BASE_AMENDED, "treatment", NULL, &ev);
    s = rs_codec_json_encode(&ev);
    cr_expect_not_null(strstr(s,
                              "\"effective_on\":\"2026-04-01\",\"treatment\":\"prospective\","
                              "\"lines\":["),
                       "%s", s);
    free(s);
    rs_event_clear(&ev);

    decode_ok(BASE_INVOICE, &ev);
    s = rs_codec_json_encode(&ev);
    cr_expect_str_eq(
        s, "{\"event_id\":\"e-inv\",\"type\":\"invoice.issued\",\"contract_id\":"
           "\"C-1\",\"occurred_at\":\"2026-01-01T10:00:00Z\",\"invoice_id\":\"INV-1\","
           "\"issued_on\":\"2026-01-01\",\"due_on\":\"2026-01-31\",\"lines\":["
           "{\"line_id\":\"L1\",\"amount\":\"12000.00\",\"tax\":\"960.00\","
           "\"service_start\":\"2026-01-01\",\"service_end\":\"2026-12-31\"},"
           "{\"line_id\":\"L2\",\"amount\":\"2000.00\"}]}");
    free(s);
    rs_event_clear(&ev);
}

Test(codec_json, encode_refuses_what_it_cannot_represent)
{
    rs_event_t ev;
    rs_event_init(&ev);
    cr_expect_null(rs_codec_json_encode(&ev), "unknown type");
    cr_expect_null(rs_codec_json_encode(NULL));

    decode_ok(BASE_PAID, &ev);
    ev.amount.scale = 40;
    cr_expect_null(rs_codec_json_encode(&ev), "scale out of range");
    rs_event_clear(&ev);

    decode_ok(BASE_PAID, &ev);
    ev.payment_id[0] = (char)0xff; /* not UTF-8 */
    cr_expect_null(rs_codec_json_encode(&ev), "invalid UTF-8");
    rs_event_clear(&ev);

    decode_ok(BASE_CREDIT, &ev);
    ev.reason = RS_CREDIT_NONE;
    cr_expect_null(rs_codec_json_encode(&ev), "no credit reason");
    rs_event_clear(&ev);

    /* Strings that fill their whole field are not over-read. */
    decode_ok(BASE_PAID, &ev);
    memset(ev.payment_id, 'p', sizeof(ev.payment_id));
    char *s = rs_codec_json_encode(&ev);
    cr_assert_not_null(s);
    char want[RS_ID_MAX + 32];
    snprintf(want, sizeof(want), "\"payment_id\":\"%.*s\"", RS_ID_MAX, ev.payment_id);
    cr_expect_not_null(strstr(s, want));
    free(s);
    rs_event_clear(&ev);
}

/* ---- decimals and journal entries ---- */

Test(codec_json, decimal_format)
{
    static const struct {
        int64_t m;
        int scale;
        const char *want;
    } cases[] = {
        {1250, 2, "12.50"},
        {-5, 3, "-0.005"},
        {5000, 0, "5000"},
        {0, 0, "0"},
        {0, 2, "0.00"},
        {125, 6, "0.000125"},
        {-1234550, 2, "-12345.50"},
        {100005, 1, "10000.5"},
        {INT64_MAX, 0, "9223372036854775807"},
        {INT64_MIN, 18, "-9.223372036854775808"},
        {1, 18, "0.000000000000000001"},
    };
    char buf[48];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rs_decimal_t d = {cases[i].m, cases[i].scale};
        cr_expect_str_eq(rs_decimal_format(d, buf, sizeof(buf)), cases[i].want);
    }
    /* A parsed decimal formats back to its text. */
    static const char *const texts[] = {"12000.00", "0.000125", "-0.10", "7", "0.0"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        rs_decimal_t d;
        char why[128];
        cr_assert_eq(rs_decimal_parse(texts[i], &d, why, sizeof(why)), 0);
        cr_expect_str_eq(rs_decimal_format(d, buf, sizeof(buf)), texts[i]);
    }
    rs_decimal_t d = {1250, 2};
    char tiny[5];
    cr_expect_null(rs_decimal_format(d, tiny, sizeof(tiny)), "needs 6 bytes");
    cr_expect_str_eq(tiny, "");
    char fits[6];
    cr_expect_str_eq(rs_decimal_format(d, fits, sizeof(fits)), "12.50");
    d.scale = 19;
    cr_expect_null(rs_decimal_format(d, buf, sizeof(buf)));
    d.scale = -1;
    cr_expect_null(rs_decimal_format(d, buf, sizeof(buf)));
}

static rs_entry_t sample_entry(void)
{
    rs_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.entry_id, sizeof(e.entry_id), "C-1#7");
    e.seq = 7;
    e.posted_on = D(2026, 4, 1);
    e.period = 2026 * 12 + 3;         /* 2026-04 */
    e.service_period = 2026 * 12 + 2; /* 2026-03: late to a closed period */
    e.kind = RS_ENTRY_INVOICE;
    snprintf(e.rule, sizeof(e.rule), "invoice");
    snprintf(e.contract_id, sizeof(e.contract_id), "C-1");
    snprintf(e.customer_id, sizeof(e.customer_id), "CU-1");
    snprintf(e.line_id, sizeof(e.line_id), "L1");
    snprintf(e.document_id, sizeof(e.document_id), "INV-1");
    snprintf(e.currency, sizeof(e.currency), "USD");
    e.exponent = 2;
    e.n_postings = 3;
    e.postings[0] =
        (rs_posting_t){.account = RS_ACCT_ACCOUNTS_RECEIVABLE, .debit = 1296000, .credit = 0};
    e.postings[1] = (rs_posting_t){.account = RS_ACCT_TAX_PAYABLE, .debit = 0, .credit = 96000};
    e.postings[2] =
        (rs_posting_t){.account = RS_ACCT_DEFERRED_REVENUE, .debit = 0, .credit = 1200000};
    e.n_sources = 2;
    snprintf(e.sources[0], sizeof(e.sources[0]), "e-inv");
    snprintf(e.sources[1], sizeof(e.sources[1]), "e-\"q\"");
    e.source_count = 3;
    e.billed = 1200000;
    e.recognized = -5;
    e.received = 0;
    return e;
}

Test(codec_json, entry_json_exact)
{
    rs_entry_t e = sample_entry();
    char *s = rs_codec_entry_json(&e);
    cr_assert_not_null(s);
    cr_expect_str_eq(
        s, "{\"entry_id\":\"C-1#7\",\"posted_on\":\"2026-04-01\",\"period\":\"2026-04\","
           "\"service_period\":\"2026-03\",\"contract_id\":\"C-1\",\"customer_id\":\"CU-1\","
           "\"line_id\":\"L1\",\"document_id\":\"INV-1\",\"kind\":\"invoice\",\"rule\":"
           "\"invoice\",\"currency\":\"USD\",\"lines\":["
           "{\"account\":\"accounts_receivable\",\"role\":\"accounts_receivable\","
           "\"debit\":\"12960.00\",\"credit\":\"0.00\"},"
           "{\"account\":\"tax_payable\",\"role\":\"tax_payable\",\"debit\":\"0.00\","
           "\"credit\":\"960.00\"},"
           "{\"account\":\"deferred_revenue\",\"role\":\"deferred_revenue\",\"debit\":"
           "\"0.00\",\"credit\":\"12000.00\"}],"
           "\"source_event_ids\":[\"e-inv\",\"e-\\\"q\\\"\"],\"source_count\":3,"
           "\"billed\":\"12000.00\",\"recognized\":\"-0.05\",\"received\":\"0.00\"}");
    free(s);

    /* JPY (exponent 0), recognition, no document, no sources listed. */
    e.exponent = 0;
    e.kind = RS_ENTRY_RECOGNITION;
    snprintf(e.rule, sizeof(e.rule), "ratable_daily");
    snprintf(e.currency, sizeof(e.currency), "JPY");
    e.document_id[0] = '\0';
    e.n_postings = 2;
    e.postings[0] =
        (rs_posting_t){.account = RS_ACCT_DEFERRED_REVENUE, .debit = 5000, .credit = 0};
    e.postings[1] = (rs_posting_t){.account = RS_ACCT_REVENUE, .debit = 0, .credit = 5000};
    snprintf(e.postings[1].code, sizeof(e.postings[1].code), "4000");
    snprintf(e.product, sizeof(e.product), "Plan");
    e.n_sources = 0;
    e.source_count = 0;
    e.billed = 0;
    e.recognized = 5000;
    s = rs_codec_entry_json(&e);
    cr_assert_not_null(s);
    cr_expect_str_eq(
        s, "{\"entry_id\":\"C-1#7\",\"posted_on\":\"2026-04-01\",\"period\":\"2026-04\","
           "\"service_period\":\"2026-03\",\"contract_id\":\"C-1\",\"customer_id\":\"CU-1\","
           "\"line_id\":\"L1\",\"document_id\":\"\",\"kind\":\"recognition\",\"rule\":"
           "\"ratable_daily\",\"currency\":\"JPY\",\"lines\":["
           "{\"account\":\"deferred_revenue\",\"role\":\"deferred_revenue\",\"product\":"
           "\"Plan\",\"debit\":\"5000\",\"credit\":\"0\"},"
           "{\"account\":\"4000\",\"role\":\"revenue\",\"product\":\"Plan\","
           "\"debit\":\"0\",\"credit\":\"5000\"}],"
           "\"source_event_ids\":[],\"source_count\":0,"
           "\"billed\":\"0\",\"recognized\":\"5000\",\"received\":\"0\"}");
    free(s);
}

Test(codec_json, entry_json_refuses_bad_counts)
{
    rs_entry_t e = sample_entry();
    e.n_postings = RS_ENTRY_MAX_POSTINGS + 1;
    cr_expect_null(rs_codec_entry_json(&e));
    e = sample_entry();
    e.n_sources = -1;
    cr_expect_null(rs_codec_entry_json(&e));
    e = sample_entry();
    e.exponent = 19;
    cr_expect_null(rs_codec_entry_json(&e));
    cr_expect_null(rs_codec_entry_json(NULL));
}

/* ---- the fast path (simdjson) against the jansson reference ----
 * rs_codec_json_decode must give, for every input, what
 * rs_codec_json_decode_jansson gives: the same result, the same message,
 * the same event. These are the inputs where the two parsers differ on
 * their own (rs_json_fast.h says which the fast path hands to jansson). */
static void same_as_jansson(const char *json, size_t len, int want_rc)
{
    rs_event_t a, b;
    char ea[512], eb[512];
    int ra = rs_codec_json_decode(json, len, &a, ea, sizeof ea);
    int rb = rs_codec_json_decode_jansson(json, len, &b, eb, sizeof eb);
    cr_assert_eq(ra, rb, "fast %d vs jansson %d on %.*s", ra, rb, (int)len, json);
    cr_assert_eq(ra, want_rc, "rc %d on %.*s (%s)", ra, (int)len, json, ea);
    if (ra != 0)
        cr_assert_str_eq(ea, eb);
    else
        cr_assert_eq(rs_event_hash(&a), rs_event_hash(&b));
    rs_event_clear(&a);
    rs_event_clear(&b);
}

static void same_as_jansson_str(const char *json, int want_rc)
{
    same_as_jansson(json, strlen(json), want_rc);
}

Test(codec_json, fast_path_agrees_on_every_event_type)
{
    for (size_t i = 0; i < N_BASES; i++)
        same_as_jansson_str(ALL_BASES[i], 0);
}

Test(codec_json, fast_path_hands_what_jansson_refuses_to_jansson)
{
    /* duplicate key: jansson (JSON_REJECT_DUPLICATES) refuses, simdjson would not */
    same_as_jansson_str("{\"event_id\":\"e1\",\"event_id\":\"e2\",\"type\":\"payment.failed\"}",
                        -1);
    /* a duplicate key nested in a line: "L1" given twice */
    const char *p = strstr(BASE_BOOKED, "{\"line_id\":\"L1\"");
    cr_assert_not_null(p);
    size_t at = (size_t)(p - BASE_BOOKED) + 1, n = strlen(BASE_BOOKED);
    char *twice = malloc(n + 32);
    cr_assert_not_null(twice);
    memcpy(twice, BASE_BOOKED, at);
    strcpy(twice + at, "\"line_id\":\"L9\",");
    strcat(twice, BASE_BOOKED + at);
    same_as_jansson_str(twice, -1);
    free(twice);
    /* \u0000 in a value and in a key */
    same_as_jansson_str("{\"event_id\":\"e\\u0000\",\"type\":\"payment.failed\"}", -1);
    same_as_jansson_str("{\"ev\\u0000\":1,\"event_id\":\"e\",\"type\":\"payment.failed\"}", -1);
    /* integers past INT64_MAX (simdjson keeps them as uint64) and past uint64 */
    same_as_jansson_str("{\"x\":9223372036854775808,\"event_id\":\"e\"}", -1);
    same_as_jansson_str("{\"x\":18446744073709551616,\"event_id\":\"e\"}", -1);
    same_as_jansson_str("{\"x\":1e400,\"event_id\":\"e\"}", -1);
    /* syntax: trailing garbage, truncation, unpaired surrogate, bad UTF-8 */
    same_as_jansson_str("{\"event_id\":\"e\"} x", -1);
    same_as_jansson_str("{\"event_id\":\"e\"", -1);
    same_as_jansson_str("{\"event_id\":\"\\ud800\"}", -1);
    same_as_jansson_str("{\"event_id\":\"\xff\"}", -1);
    same_as_jansson_str("", -1);
    same_as_jansson_str("[1,2]", -1);
    same_as_jansson_str("\"a string\"", -1);
}

Test(codec_json, fast_path_reads_only_len_bytes_and_deep_nesting)
{
    /* the bytes after len are not part of the input */
    size_t n = strlen(BASE_PAID);
    char *buf = malloc(n + 8);
    cr_assert_not_null(buf);
    memcpy(buf, BASE_PAID, n);
    memcpy(buf + n, "garbage", 8);
    same_as_jansson(buf, n, 0);
    free(buf);
    /* nesting deeper than simdjson's default limit (1024), within jansson's (2048) */
    size_t depth = 1500, k = 0;
    char *deep = malloc(2 * depth + 64);
    cr_assert_not_null(deep);
    k += (size_t)sprintf(deep, "{\"x\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    strcpy(deep + k, ",\"event_id\":\"e\",\"type\":\"payment.failed\"}");
    rs_event_t a, b;
    char ea[512], eb[512];
    int ra = rs_codec_json_decode(deep, strlen(deep), &a, ea, sizeof ea);
    int rb = rs_codec_json_decode_jansson(deep, strlen(deep), &b, eb, sizeof eb);
    cr_assert_eq(ra, rb);
    if (ra != 0)
        cr_assert_str_eq(ea, eb);
    rs_event_clear(&a);
    rs_event_clear(&b);
    free(deep);
}
