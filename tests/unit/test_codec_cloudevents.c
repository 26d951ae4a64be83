/*
 * test_codec_cloudevents — structured-mode CloudEvents decoded as
 * usage.recorded by the JSON codec (schemas/rs_codec_cloudevents.c): the
 * mapping of docs/intake.md, stable ids, the errors, and agreement of the
 * fast path with jansson's.
 *
 * Ownership: every decoded event is rs_event_clear()ed.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_event.h"

static const char CE_SUBJECT[] =
    "{\"specversion\":\"1.0\",\"id\":\"rec-000017\",\"source\":\"/meter/eu-1\","
    "\"type\":\"com.acme.api.calls\",\"subject\":\"contracts/C-2001/lines/L3\","
    "\"time\":\"2026-02-14T23:59:00Z\",\"datacontenttype\":\"application/json\","
    "\"data\":{\"quantity\":\"125000\"}}";

static int decode(const char *json, rs_event_t *ev, char *err, size_t errlen)
{
    return rs_codec_json_decode(json, strlen(json), ev, err, errlen);
}

Test(codec_cloudevents, maps_subject_time_and_quantity)
{
    rs_event_t ev;
    char err[256], q[32], day[16];
    cr_assert_eq(decode(CE_SUBJECT, &ev, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ev.type, RS_EV_USAGE_RECORDED);
    cr_assert_str_eq(ev.contract_id, "C-2001");
    cr_assert_str_eq(ev.line_id, "L3");
    cr_assert_str_eq(ev.occurred_at, "2026-02-14T23:59:00Z");
    cr_assert_str_eq(rs_date_format(ev.occurred_on, day, sizeof day), "2026-02-14");
    cr_assert_str_eq(rs_decimal_format(ev.quantity, q, sizeof q), "125000");
    /* FNV-1a 64 of "/meter/eu-1\0rec-000017" */
    cr_assert_str_eq(ev.event_id, "ce-6d2426b11af4168d");
    char *json = rs_codec_json_encode(&ev);
    cr_assert_not_null(json);
    cr_assert_not_null(strstr(json, "\"type\":\"usage.recorded\""), "%s", json);
    free(json);
    rs_event_clear(&ev);
}

Test(codec_cloudevents, same_id_and_source_same_event_id_other_source_other_id)
{
    rs_event_t a, b, c;
    char err[256];
    const char *other_time =
        "{\"specversion\":\"1.0\",\"id\":\"rec-000017\",\"source\":\"/meter/eu-1\","
        "\"type\":\"x\",\"subject\":\"C-2001/L3\",\"time\":\"2026-02-14T23:59:00Z\","
        "\"data\":{\"quantity\":125000}}";
    const char *other_source =
        "{\"specversion\":\"1.0\",\"id\":\"rec-000017\",\"source\":\"/meter/us-1\","
        "\"type\":\"x\",\"subject\":\"C-2001/L3\",\"time\":\"2026-02-14T23:59:00Z\","
        "\"data\":{\"quantity\":\"125000\"}}";
    cr_assert_eq(decode(CE_SUBJECT, &a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(decode(other_time, &b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(decode(other_source, &c, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(a.event_id, b.event_id);
    /* integer quantity 125000 and "125000" are the same content */
    cr_assert_eq(rs_event_hash(&a), rs_event_hash(&b));
    cr_assert_str_neq(a.event_id, c.event_id);
    rs_event_clear(&a);
    rs_event_clear(&b);
    rs_event_clear(&c);
}

Test(codec_cloudevents, data_fields_override_and_replace_the_subject)
{
    rs_event_t ev;
    char err[256], q[32];
    const char *json =
        "{\"specversion\":\"1.0\",\"id\":\"42\",\"source\":\"urn:meter\",\"type\":\"t\","
        "\"data\":{\"contract_id\":\"C-9\",\"line_id\":\"L-usage\",\"quantity\":\"0.000125\","
        "\"occurred_at\":\"2026-03-31T23:30:00-05:00\"}}";
    cr_assert_eq(decode(json, &ev, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(ev.contract_id, "C-9");
    cr_assert_str_eq(ev.line_id, "L-usage");
    cr_assert_str_eq(rs_decimal_format(ev.quantity, q, sizeof q), "0.000125");
    /* the UTC date of 23:30 -05:00 on March 31 is April 1 */
    cr_assert_eq(ev.occurred_on, rs_date_from_ymd(2026, 4, 1));
    rs_event_clear(&ev);
}

Test(codec_cloudevents, errors_name_the_cloudevent_and_attribute)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"specversion\":\"0.3\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"quantity\":\"1\"}}",
         "event ce:a: specversion: must be \"1.0\""},
        {"{\"specversion\":\"1.0\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"quantity\":\"1\"}}",
         "event ce:?: id: missing or empty"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"quantity\":\"1\"}}",
         "event ce:a: source: missing or empty"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"quantity\":1.5}}",
         "event ce:a: data.quantity: a JSON number with a fraction"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{}}",
         "event ce:a: data.quantity: missing"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C-L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"quantity\":\"1\"}}",
         "event ce:a: subject: expected"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"data\":{\"quantity\":\"1\"},"
         "\"time\":\"2026-01-01T00:00:00Z\"}",
         "event ce:a: data.contract_id: missing"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"data\":{\"quantity\":\"1\"}}",
         "event ce:a: time: missing"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"datacontenttype\":\"text/csv\","
         "\"data\":{\"quantity\":\"1\"}}",
         "event ce:a: datacontenttype: must be application/json"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data_base64\":\"AAAA\"}",
         "event ce:a: data_base64:"},
        /* mapped, then refused by the event contract's own rules */
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01\",\"data\":{\"quantity\":\"1\"}}",
         "occurred_at"},
        {"{\"specversion\":\"1.0\",\"id\":\"a\",\"source\":\"s\",\"subject\":\"C/L\","
         "\"time\":\"2026-01-01T00:00:00Z\",\"data\":{\"quantity\":\"-3\"}}",
         "quantity"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rs_event_t ev, ref;
        char err[256], referr[256];
        int rc = decode(cases[i].json, &ev, err, sizeof err);
        cr_assert_eq(rc, -1, "case %zu decoded", i);
        cr_assert_not_null(strstr(err, cases[i].want), "case %zu: %s", i, err);
        /* the jansson-only reference gives the same answer */
        cr_assert_eq(rs_codec_json_decode_jansson(cases[i].json, strlen(cases[i].json), &ref,
                                                  referr, sizeof referr),
                     -1);
        cr_assert_str_eq(err, referr);
    }
}

Test(codec_cloudevents, the_id_in_a_message_is_one_line_of_utf8)
{
    /* 40 x "é" (80 bytes) then a newline: cut at 64 bytes on a character
     * boundary, control characters shown as '?' */
    char json[512], id[128] = "", want[128] = "event ce:";
    for (int i = 0; i < 40; i++)
        strcat(id, "\xc3\xa9");
    snprintf(json, sizeof json, "{\"specversion\":\"1.0\",\"id\":\"a\\nb%s\",\"source\":\"s\"}",
             id);
    rs_event_t ev;
    char err[256];
    cr_assert_eq(decode(json, &ev, err, sizeof err), -1);
    strcat(want, "a?b");
    size_t at = strlen(want); /* 3 + 60 bytes: 30 whole characters, then the cut */
    memcpy(want + at, id, 60);
    want[at + 60] = '\0';
    strcat(want, ": data: missing or not a JSON object");
    cr_assert_str_eq(err, want);
}

Test(codec_cloudevents, native_events_are_unchanged)
{
    /* an object without specversion keeps its native meaning */
    const char *native = "{\"event_id\":\"u1\",\"type\":\"usage.recorded\",\"contract_id\":"
                         "\"C-1\",\"occurred_at\":\"2026-01-02T00:00:00Z\",\"line_id\":\"L3\","
                         "\"quantity\":\"7\"}";
    rs_event_t ev;
    char err[256];
    cr_assert_eq(decode(native, &ev, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(ev.event_id, "u1");
    rs_event_clear(&ev);
}
