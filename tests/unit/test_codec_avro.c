/*
 * test_codec_avro — the Avro codec (schemas/rs_avro.h): the compiled-in
 * schemas against schemas/ *.avsc, round trips of every event type through
 * JSON -> rs_event -> Avro -> rs_event, schema evolution both ways, the
 * wire-format errors (magic, unknown id, truncation at every length, huge
 * length prefixes, oversize, trailing bytes), validation parity with the JSON
 * codec, and the output records read back with Avro C's own generic reader.
 *
 * Invariants: every test builds its own cache and frees everything it makes
 * (the ASan build checks for leaks). Criterion runs each test in its own
 * process, so a test may install an Avro allocator without affecting others.
 */
#define _GNU_SOURCE /* asprintf, memmem */
#include <avro.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_codec.h"

/* Local ids the tests register the compiled-in schemas under. */
enum { ID_CONTRACTS = 1, ID_INVOICES, ID_PAYMENTS, ID_USAGE, ID_ENTRY, ID_BALANCE, ID_DEAD };

static rs_avro_cache_t *new_cache(void)
{
    char err[512];
    rs_avro_cache_t *c = NULL;
    cr_assert_eq(rs_avro_cache_new(&c, err, sizeof(err)), RS_AVRO_OK, "%s", err);
    for (int k = 0; k < RS_AVRO_SCHEMA__COUNT; k++)
        cr_assert_eq(rs_avro_cache_add(c, k + 1, rs_avro_schema_json(k), err, sizeof(err)),
                     RS_AVRO_OK, "%s: %s", rs_avro_schema_name(k), err);
    return c;
}

static int32_t id_for(rs_event_type_t t)
{
    return rs_avro_schema_kind_of_event(t) + 1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* One event of every type, using every optional field somewhere. */
static const char *const EVENTS[] = {
    "{\"event_id\":\"E-1\",\"type\":\"contract.booked\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CU-1\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-01-01\",\"source\":{\"system\":\"hubspot\",\"record_id\":\"D-77\"},"
    "\"lines\":[{\"line_id\":\"L-1\",\"product\":\"Platform\",\"recognition\":\"ratable_"
    "daily\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"12000.00\",\"ssp\":\"15000."
    "00\"},"
    "{\"line_id\":\"L-2\",\"product\":\"API\",\"recognition\":\"usage\",\"start\":\"2026-01-"
    "01\","
    "\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":\"0.000125\"},"
    "{\"line_id\":\"L-3\",\"product\":\"Onboarding\",\"recognition\":\"milestone\","
    "\"start\":\"2026-01-01\",\"end\":\"2026-03-31\",\"amount\":\"5000.00\",\"milestones\":["
    "{\"milestone_id\":\"M-1\",\"amount\":\"2000.00\"},{\"milestone_id\":\"M-2\","
    "\"amount\":\"3000.00\"}]},{\"line_id\":\"L-4\",\"product\":\"Setup\","
    "\"recognition\":\"point_in_time\",\"start\":\"2026-01-15\",\"amount\":\"500.00\"}]}",
    "{\"event_id\":\"E-2\",\"type\":\"contract.amended\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-06-20T10:00:00-05:00\",\"effective_on\":\"2026-07-01\","
    "\"treatment\":\"catch_up\",\"lines\":[{\"line_id\":\"L-1\",\"product\":\"Platform\","
    "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2027-06-30\","
    "\"amount\":\"18000.00\"}]}",
    "{\"event_id\":\"E-3\",\"type\":\"contract.cancelled\",\"contract_id\":\"C-2\","
    "\"occurred_at\":\"2026-03-01T00:00:00Z\",\"effective_on\":\"2026-03-15\"}",
    "{\"event_id\":\"E-4\",\"type\":\"milestone.completed\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-02-10T12:00:00Z\",\"line_id\":\"L-3\",\"milestone_id\":\"M-1\","
    "\"completed_on\":\"2026-02-10\"}",
    "{\"event_id\":\"P-2026-01\",\"type\":\"period.closed\","
    "\"occurred_at\":\"2026-02-01T00:00:00+01:00\",\"period\":\"2026-01\"}",
    "{\"event_id\":\"E-6\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-1\",\"issued_on\":\"2026-01-"
    "01\","
    "\"due_on\":\"2026-01-31\",\"lines\":[{\"line_id\":\"L-1\",\"amount\":\"1000.00\","
    "\"tax\":\"80.00\",\"service_start\":\"2026-01-01\",\"service_end\":\"2026-01-31\"},"
    "{\"line_id\":\"L-2\",\"amount\":\"12.50\"}]}",
    "{\"event_id\":\"E-7\",\"type\":\"invoice.voided\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-02T09:00:00Z\",\"invoice_id\":\"INV-0\",\"voided_on\":\"2026-01-"
    "02\"}",
    "{\"event_id\":\"E-8\",\"type\":\"credit_note.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-04-01T09:00:00Z\",\"credit_note_id\":\"CN-1\",\"invoice_id\":\"INV-"
    "1\","
    "\"issued_on\":\"2026-04-01\",\"reason\":\"discount\",\"lines\":[{\"line_id\":\"L-1\","
    "\"amount\":\"60.00\",\"tax\":\"4.80\"}]}",
    "{\"event_id\":\"E-9\",\"type\":\"invoice.uncollectible\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-09-01T09:00:00Z\",\"invoice_id\":\"INV-1\","
    "\"declared_on\":\"2026-09-01\"}",
    "{\"event_id\":\"E-10\",\"type\":\"payment.received\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-10T09:00:00Z\",\"payment_id\":\"PAY-1\",\"invoice_id\":\"INV-"
    "1\","
    "\"amount\":\"1080.00\",\"received_on\":\"2026-01-10\"}",
    "{\"event_id\":\"E-11\",\"type\":\"payment.refunded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-02-01T09:00:00Z\",\"refund_id\":\"R-1\",\"payment_id\":\"PAY-1\","
    "\"invoice_id\":\"INV-1\",\"amount\":\"90.00\",\"refunded_on\":\"2026-02-01\"}",
    "{\"event_id\":\"E-12\",\"type\":\"payment.failed\",\"contract_id\":\"C-3\","
    "\"occurred_at\":\"2026-01-10T09:00:00Z\",\"payment_id\":\"PAY-2\",\"invoice_id\":\"INV-"
    "9\","
    "\"failed_on\":\"2026-01-10\",\"reason\":\"card_declined\"}",
    "{\"event_id\":\"U-000001\",\"type\":\"usage.recorded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-03-05T10:00:00Z\",\"line_id\":\"L-2\",\"quantity\":\"1500.5\"}",
};
#define N_EVENTS (sizeof(EVENTS) / sizeof(EVENTS[0]))

static void json_event(const char *json, rs_event_t *ev)
{
    char err[512];
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), ev, err, sizeof(err)), 0, "%s", err);
}

static void encode(rs_avro_cache_t *c, int32_t id, const rs_event_t *ev, void **buf,
                   size_t *len)
{
    char err[512];
    cr_assert_eq(rs_avro_encode_event(c, id, ev, buf, len, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
}

/* ---- schemas ---- */

/* The texts compiled in are generated from the .avsc files at build time
 * (schemas/avsc_to_c.cmake drops whitespace and docs): they must parse to
 * the same schemas, so this checks the generator. */
Test(avro_schemas, generated_texts_parse_equal_to_the_avsc_files)
{
    avro_schema_t parsed[RS_AVRO_SCHEMA__COUNT];
    for (int k = 0; k < RS_AVRO_SCHEMA__COUNT; k++) {
        char path[512];
        avro_schema_t mine = NULL, file = NULL;
        snprintf(path, sizeof(path), "%s/schemas/%s.avsc", RS_SOURCE_DIR,
                 rs_avro_schema_name(k));
        char *text = slurp(path);
        const char *ours = rs_avro_schema_json(k);
        cr_assert_eq(avro_schema_from_json_length(ours, strlen(ours), &mine), 0, "%s",
                     avro_strerror());
        cr_assert_eq(avro_schema_from_json_length(text, strlen(text), &file), 0, "%s: %s", path,
                     avro_strerror());
        cr_assert(avro_schema_equal(mine, file), "%s differs from the compiled-in schema",
                  path);
        parsed[k] = mine;
        avro_schema_decref(file);
        free(text);
    }
    /* The comparison can fail: different schemas are not equal. */
    cr_assert_not(
        avro_schema_equal(parsed[RS_AVRO_SCHEMA_CONTRACTS], parsed[RS_AVRO_SCHEMA_INVOICES]));
    for (int k = 0; k < RS_AVRO_SCHEMA__COUNT; k++)
        avro_schema_decref(parsed[k]);
    cr_assert_eq(rs_avro_schema_kind_from_name("usage"), RS_AVRO_SCHEMA_USAGE);
    cr_assert_eq(rs_avro_schema_kind_from_name("nope"), -1);
    cr_assert_eq(rs_avro_schema_kind_of_event(RS_EV_CREDIT_NOTE_ISSUED),
                 RS_AVRO_SCHEMA_INVOICES);
    cr_assert_null(rs_avro_schema_json(RS_AVRO_SCHEMA__COUNT));
}

/* ---- round trips ---- */

Test(avro_codec, round_trip_of_every_event_type)
{
    rs_avro_cache_t *c = new_cache();
    int seen[RS_EV__COUNT] = {0};
    for (size_t i = 0; i < N_EVENTS; i++) {
        rs_event_t a, b;
        void *buf;
        size_t len;
        char err[512];
        json_event(EVENTS[i], &a);
        seen[a.type] = 1;
        int32_t id = id_for(a.type);
        encode(c, id, &a, &buf, &len);
        const uint8_t *u = buf;
        cr_assert_eq(u[0], 0);
        cr_assert_eq(((int32_t)u[1] << 24) | (u[2] << 16) | (u[3] << 8) | u[4], id);
        int32_t peeked = -1;
        cr_assert_eq(rs_avro_peek_id(buf, len, &peeked), RS_AVRO_OK);
        cr_assert_eq(peeked, id);
        cr_assert_eq(rs_avro_decode_event(c, buf, len, &b, err, sizeof(err)), RS_AVRO_OK,
                     "%s: %s", rs_event_type_name(a.type), err);
        cr_assert_eq(b.type, a.type);
        cr_assert_eq(rs_event_hash(&b), rs_event_hash(&a), "%s", rs_event_type_name(a.type));
        /* Same canonical JSON: scales ("12000.00") and optionals survive. */
        char *ja = rs_codec_json_encode(&a), *jb = rs_codec_json_encode(&b);
        cr_assert_str_eq(jb, ja);
        free(ja);
        free(jb);
        free(buf);
        rs_event_clear(&a);
        rs_event_clear(&b);
    }
    for (int t = 1; t < RS_EV__COUNT; t++)
        cr_assert(seen[t], "no round trip for %s", rs_event_type_name(t));
    rs_avro_cache_destroy(c);
}

Test(avro_codec, decoded_fields_have_the_right_values)
{
    rs_avro_cache_t *c = new_cache();
    rs_event_t a, b;
    void *buf;
    size_t len;
    char err[512];
    json_event(EVENTS[0], &a);
    encode(c, ID_CONTRACTS, &a, &buf, &len);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &b, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    cr_assert_str_eq(b.event_id, "E-1");
    cr_assert_str_eq(b.currency, "USD");
    cr_assert_str_eq(b.source_system, "hubspot");
    cr_assert_str_eq(b.source_record_id, "D-77");
    cr_assert_eq(b.n_lines, 4);
    cr_assert_eq(b.lines[0].amount.mantissa, 1200000);
    cr_assert_eq(b.lines[0].amount.scale, 2);
    cr_assert(b.lines[0].has_ssp);
    cr_assert_eq(b.lines[1].unit_price.mantissa, 125);
    cr_assert_eq(b.lines[1].unit_price.scale, 6);
    cr_assert_eq(b.lines[2].n_milestones, 2);
    cr_assert_str_eq(b.lines[2].milestones[1].milestone_id, "M-2");
    cr_assert_eq(b.lines[3].recognition, RS_METHOD_POINT_IN_TIME);
    cr_assert_eq(b.lines[3].end, b.lines[3].start); /* end absent: = start */
    cr_assert_eq(b.booked_on, rs_date_from_ymd(2026, 1, 1));
    free(buf);
    rs_event_clear(&a);
    rs_event_clear(&b);
    rs_avro_cache_destroy(c);
}

Test(avro_codec, reused_readers_stay_correct_across_ids)
{
    rs_avro_cache_t *c = new_cache();
    void *bufs[N_EVENTS];
    size_t lens[N_EVENTS];
    uint64_t hashes[N_EVENTS];
    for (size_t i = 0; i < N_EVENTS; i++) {
        rs_event_t a;
        json_event(EVENTS[i], &a);
        hashes[i] = rs_event_hash(&a);
        encode(c, id_for(a.type), &a, &bufs[i], &lens[i]);
        rs_event_clear(&a);
    }
    /* Interleave ids and types many times over the same cached values. */
    for (int round = 0; round < 50; round++) {
        for (size_t k = 0; k < N_EVENTS; k++) {
            size_t i = (k * 7 + (size_t)round) % N_EVENTS;
            rs_event_t b;
            char err[512];
            cr_assert_eq(rs_avro_decode_event(c, bufs[i], lens[i], &b, err, sizeof(err)),
                         RS_AVRO_OK, "%s", err);
            cr_assert_eq(rs_event_hash(&b), hashes[i]);
            rs_event_clear(&b);
        }
    }
    for (size_t i = 0; i < N_EVENTS; i++)
        free(bufs[i]);
    rs_avro_cache_destroy(c);
}

/* ---- evolution ---- */

/* A newer producer's usage schema: one added optional field, in the middle. */
static const char NEWER_USAGE[] =
    "{\"type\":\"record\",\"name\":\"UsageRecorded\",\"namespace\":\"io.revstream\",\"fields\":"
    "["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"region\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"contract_id\",\"type\":\"string\"},{\"name\":\"occurred_at\",\"type\":"
    "\"string\"},"
    "{\"name\":\"line_id\",\"type\":\"string\"},{\"name\":\"quantity\",\"type\":\"string\"},"
    "{\"name\":\"meter\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Meter\",\"fields\":"
    "["
    "{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"unit\",\"type\":\"string\"}]}],"
    "\"default\":null}]}";

/* Frame an Avro value with the Confluent header. */
static void frame(int32_t id, avro_value_t *v, void **buf, size_t *len)
{
    size_t size = 0;
    cr_assert_eq(avro_value_sizeof(v, &size), 0);
    uint8_t *out = malloc(5 + size);
    out[0] = 0;
    out[1] = (uint8_t)(id >> 24);
    out[2] = (uint8_t)(id >> 16);
    out[3] = (uint8_t)(id >> 8);
    out[4] = (uint8_t)id;
    avro_writer_t w = avro_writer_memory((const char *)out + 5, (int64_t)size);
    cr_assert_eq(avro_value_write(w, v), 0, "%s", avro_strerror());
    avro_writer_free(w);
    *buf = out;
    *len = 5 + size;
}

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f, b;
    cr_assert_eq(avro_value_get_by_name(rec, name, &f, NULL), 0, "no field %s", name);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        if (s == NULL) {
            cr_assert_eq(avro_value_set_branch(&f, 0, &b), 0);
            avro_value_set_null(&b);
            return;
        }
        cr_assert_eq(avro_value_set_branch(&f, 1, &b), 0);
        f = b;
    }
    cr_assert_eq(avro_value_set_string(&f, s), 0);
}

Test(avro_evolution, writer_with_added_optional_fields_decodes)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    avro_schema_t s;
    avro_value_t v, f, b, meter;
    void *buf;
    size_t len;
    rs_event_t ev, want;

    cr_assert_eq(rs_avro_cache_add(c, 10, NEWER_USAGE, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    cr_assert_eq(avro_schema_from_json_length(NEWER_USAGE, strlen(NEWER_USAGE), &s), 0);
    avro_value_iface_t *cls = avro_generic_class_from_schema(s);
    cr_assert_eq(avro_generic_value_new(cls, &v), 0);
    set_str(&v, "event_id", "U-000001");
    set_str(&v, "type", "usage.recorded");
    set_str(&v, "region", "eu-west-1");
    set_str(&v, "contract_id", "C-1");
    set_str(&v, "occurred_at", "2026-03-05T10:00:00Z");
    set_str(&v, "line_id", "L-2");
    set_str(&v, "quantity", "1500.5");
    cr_assert_eq(avro_value_get_by_name(&v, "meter", &f, NULL), 0);
    cr_assert_eq(avro_value_set_branch(&f, 1, &meter), 0);
    cr_assert_eq(avro_value_get_by_name(&meter, "name", &b, NULL), 0);
    avro_value_set_string(&b, "api_calls");
    cr_assert_eq(avro_value_get_by_name(&meter, "unit", &b, NULL), 0);
    avro_value_set_string(&b, "call");
    frame(10, &v, &buf, &len);

    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    json_event(EVENTS[N_EVENTS - 1], &want);
    cr_assert_eq(rs_event_hash(&ev), rs_event_hash(&want));
    cr_assert_str_eq(ev.line_id, "L-2");
    free(buf);

    /* Encoding with the newer schema nulls the fields revstream does not know. */
    encode(c, 10, &want, &buf, &len);
    rs_event_clear(&ev);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    cr_assert_eq(rs_event_hash(&ev), rs_event_hash(&want));
    avro_reader_t r = avro_reader_memory((const char *)buf + 5, (int64_t)len - 5);
    cr_assert_eq(avro_value_read(r, &v), 0);
    cr_assert_eq(avro_value_get_by_name(&v, "region", &f, NULL), 0);
    int disc = -1;
    avro_value_get_discriminant(&f, &disc);
    cr_assert_eq(disc, 0, "region should be null");
    avro_reader_free(r);

    free(buf);
    rs_event_clear(&ev);
    rs_event_clear(&want);
    avro_value_decref(&v);
    avro_value_iface_decref(cls);
    avro_schema_decref(s);
    rs_avro_cache_destroy(c);
}

/* An older producer's invoices schema: InvoiceLine without the optional
 * service dates, and only two of the four invoice records. */
static const char OLDER_INVOICES[] =
    "[{\"type\":\"record\",\"name\":\"InvoiceIssued\",\"namespace\":\"io.revstream\","
    "\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"contract_id\",\"type\":\"string\"},{\"name\":\"occurred_at\",\"type\":"
    "\"string\"},"
    "{\"name\":\"invoice_id\",\"type\":\"string\"},{\"name\":\"issued_on\",\"type\":\"string\"}"
    ","
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
    "\"name\":\"InvoiceLine\",\"fields\":[{\"name\":\"line_id\",\"type\":\"string\"},"
    "{\"name\":\"amount\",\"type\":\"string\"},{\"name\":\"tax\",\"type\":[\"null\",\"string\"]"
    ","
    "\"default\":null}]}}}]},"
    "{\"type\":\"record\",\"name\":\"InvoiceVoided\",\"namespace\":\"io.revstream\",\"fields\":"
    "["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"contract_id\",\"type\":\"string\"},{\"name\":\"occurred_at\",\"type\":"
    "\"string\"},"
    "{\"name\":\"invoice_id\",\"type\":\"string\"},{\"name\":\"voided_on\",\"type\":\"string\"}"
    "]}]";

Test(avro_evolution, writer_without_optional_fields_decodes)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    void *buf;
    size_t len;
    rs_event_t ev, out;
    const char *json =
        "{\"event_id\":\"E-6\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\","
        "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-1\","
        "\"issued_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L-1\",\"amount\":\"1000.00\","
        "\"tax\":\"80.00\"}]}";

    cr_assert_eq(rs_avro_cache_add(c, 11, OLDER_INVOICES, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    json_event(json, &ev);
    encode(c, 11, &ev, &buf, &len);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &out, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    cr_assert_eq(rs_event_hash(&out), rs_event_hash(&ev));
    cr_assert_eq(out.bill_lines[0].service_start, RS_DATE_NONE);
    cr_assert_eq(out.due_on, RS_DATE_NONE);
    free(buf);
    rs_event_clear(&out);
    rs_event_clear(&ev);

    /* The old schema cannot carry a due date: encoding says so. */
    json_event(EVENTS[5], &ev);
    cr_assert_eq(rs_avro_encode_event(c, 11, &ev, &buf, &len, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "no field due_on") != NULL, "%s", err);
    cr_assert_null(buf);
    rs_event_clear(&ev);
    /* ... nor a credit note. */
    json_event(EVENTS[7], &ev);
    cr_assert_eq(rs_avro_encode_event(c, 11, &ev, &buf, &len, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "has no record io.revstream.CreditNoteIssued") != NULL, "%s", err);
    rs_event_clear(&ev);
    rs_avro_cache_destroy(c);
}

Test(avro_evolution, incompatible_writer_is_a_schema_error)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    rs_event_t ev;
    /* quantity became a long: our reader cannot take it. */
    const char *bad =
        "{\"type\":\"record\",\"name\":\"UsageRecorded\",\"namespace\":\"io.revstream\","
        "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\","
        "\"type\":\"string\"},{\"name\":\"contract_id\",\"type\":\"string\"},"
        "{\"name\":\"occurred_at\",\"type\":\"string\"},{\"name\":\"line_id\",\"type\":"
        "\"string\"},"
        "{\"name\":\"quantity\",\"type\":\"long\"}]}";
    const char *foreign = "{\"type\":\"record\",\"name\":\"Foo\",\"fields\":["
                          "{\"name\":\"x\",\"type\":\"string\"}]}";
    uint8_t msg[] = {0, 0, 0, 0, 12, 2, 'a', 2, 'b', 2, 'c', 2, 'd', 2, 'e', 6};
    uint8_t msg2[] = {0, 0, 0, 0, 13, 2, 'a'};

    cr_assert_eq(rs_avro_cache_add(c, 12, bad, err, sizeof(err)), RS_AVRO_OK, "%s", err);
    cr_assert_eq(rs_avro_decode_event(c, msg, sizeof(msg), &ev, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "schema id 12") != NULL, "%s", err);
    /* Remembered: the same answer again, without rebuilding. */
    cr_assert_eq(rs_avro_decode_event(c, msg, sizeof(msg), &ev, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert_eq(rs_avro_cache_add(c, 13, foreign, err, sizeof(err)), RS_AVRO_OK, "%s", err);
    cr_assert_eq(rs_avro_decode_event(c, msg2, sizeof(msg2), &ev, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "none of revstream's event records") != NULL, "%s", err);
    rs_avro_cache_destroy(c);
}

Test(avro_evolution, union_branch_that_is_not_an_event)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    rs_event_t ev;
    char *schema = NULL;
    cr_assert(asprintf(&schema,
                       "[%s,{\"type\":\"record\",\"name\":\"Heartbeat\","
                       "\"namespace\":\"io.other\",\"fields\":[{\"name\":\"at\","
                       "\"type\":\"long\"}]}]",
                       rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE)) > 0);
    cr_assert_eq(rs_avro_cache_add(c, 14, schema, err, sizeof(err)), RS_AVRO_OK, "%s", err);
    uint8_t msg[] = {0, 0, 0, 0, 14, 2 /* branch 1 */, 4 /* at = 2 */};
    cr_assert_eq(rs_avro_decode_event(c, msg, sizeof(msg), &ev, err, sizeof(err)),
                 RS_AVRO_EINVALID);
    cr_assert(strstr(err, "branch 1") && strstr(err, "not a revstream event"), "%s", err);
    /* Branch 0 still decodes (usage, written by our encoder). */
    rs_event_t a;
    void *buf;
    size_t len;
    json_event(EVENTS[N_EVENTS - 1], &a);
    encode(c, 14, &a, &buf, &len);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    cr_assert_eq(rs_event_hash(&ev), rs_event_hash(&a));
    free(buf);
    free(schema);
    rs_event_clear(&a);
    rs_event_clear(&ev);
    rs_avro_cache_destroy(c);
}

/* ---- the wire format ---- */

static void usage_message(rs_avro_cache_t *c, void **buf, size_t *len)
{
    rs_event_t a;
    json_event(EVENTS[N_EVENTS - 1], &a);
    encode(c, ID_USAGE, &a, buf, len);
    rs_event_clear(&a);
}

Test(avro_wire, wrong_magic_byte)
{
    rs_avro_cache_t *c = new_cache();
    void *buf;
    size_t len;
    char err[512];
    rs_event_t ev;
    usage_message(c, &buf, &len);
    ((uint8_t *)buf)[0] = 1;
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_ECORRUPT);
    cr_assert(strstr(err, "magic byte 0x01") != NULL, "%s", err);
    int32_t id;
    cr_assert_eq(rs_avro_peek_id(buf, len, &id), RS_AVRO_ECORRUPT);
    free(buf);
    rs_avro_cache_destroy(c);
}

typedef struct lookup_state {
    int calls;
    int fail;
} lookup_state_t;

static int lookup(void *opaque, int32_t id, char **json_text, char *errstr, size_t errlen)
{
    lookup_state_t *st = opaque;
    st->calls++;
    if (st->fail || id != 77) {
        snprintf(errstr, errlen, "registry says 40403 Schema %d not found", (int)id);
        return -1;
    }
    *json_text = strdup(rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE));
    return 0;
}

Test(avro_wire, unknown_schema_id)
{
    rs_avro_cache_t *c = new_cache();
    void *buf;
    size_t len;
    char err[512];
    rs_event_t ev;
    lookup_state_t st = {0, 0};

    usage_message(c, &buf, &len);
    uint8_t *u = buf;
    u[4] = 77; /* id 77: not cached */
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_EUNKNOWN_ID);
    cr_assert(strstr(err, "unknown schema id 77") != NULL, "%s", err);
    cr_assert_eq(rs_avro_cache_has(c, 77), 0);

    rs_avro_cache_set_lookup(c, lookup, &st);
    st.fail = 1;
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_EUNKNOWN_ID);
    cr_assert(strstr(err, "40403") != NULL, "%s", err);
    st.fail = 0;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_OK, "%s",
                     err);
        cr_assert_str_eq(ev.event_id, "U-000001");
        rs_event_clear(&ev);
    }
    cr_assert_eq(st.calls, 2, "the fetched schema is cached");
    cr_assert_eq(rs_avro_cache_has(c, 77), 1);
    free(buf);
    rs_avro_cache_destroy(c);
}

Test(avro_wire, truncated_at_every_length)
{
    rs_avro_cache_t *c = new_cache();
    for (size_t i = 0; i < N_EVENTS; i++) {
        rs_event_t a, ev;
        void *buf;
        size_t len;
        char err[512];
        json_event(EVENTS[i], &a);
        encode(c, id_for(a.type), &a, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            /* A copy of exactly n bytes, so ASan sees any read past the end. */
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, buf, n);
            int rc = rs_avro_decode_event(c, cut, n, &ev, err, sizeof(err));
            cr_assert_eq(rc, RS_AVRO_ECORRUPT, "%s cut to %zu of %zu bytes: rc %d (%s)",
                         rs_event_type_name(a.type), n, len, rc, err);
            cr_assert_eq(ev.n_lines, 0);
            free(cut);
        }
        /* And the whole message still decodes after all those failures. */
        cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_OK, "%s",
                     err);
        cr_assert_eq(rs_event_hash(&ev), rs_event_hash(&a));
        rs_event_clear(&ev);
        rs_event_clear(&a);
        free(buf);
    }
    rs_avro_cache_destroy(c);
}

/* An Avro allocator that records the largest request (Avro C only). */
static size_t largest_request;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (nsize > largest_request)
        largest_request = nsize;
    return realloc(ptr, nsize);
}

/* Append a zig-zag varint. */
static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t i = 0;
    while (n & ~(uint64_t)0x7f) {
        p[i++] = (uint8_t)((n & 0x7f) | 0x80);
        n >>= 7;
    }
    p[i++] = (uint8_t)n;
    return i;
}

Test(avro_wire, huge_length_prefix_is_rejected_without_allocating_it)
{
    avro_set_allocator(counting_alloc, NULL);
    rs_avro_cache_t *c = new_cache();
    char err[512];
    rs_event_t ev;
    const int64_t lengths[] = {INT64_MAX, (int64_t)1 << 40, 1 << 30, 64, -5};
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        uint8_t msg[64] = {0, 0, 0, 0, ID_USAGE};
        size_t n = 5 + put_varint(msg + 5, lengths[i]);
        memcpy(msg + n, "U-1", 3);
        n += 3;
        largest_request = 0;
        cr_assert_eq(rs_avro_decode_event(c, msg, n, &ev, err, sizeof(err)), RS_AVRO_ECORRUPT);
        cr_assert(strstr(err, "string length") != NULL, "%s", err);
        cr_assert_lt(largest_request, (size_t)RS_AVRO_MAX_MESSAGE, "Avro C asked for %zu bytes",
                     largest_request);
    }
    /* A huge array block count in an invoice's lines. */
    {
        uint8_t msg[128] = {0, 0, 0, 0, ID_INVOICES};
        size_t n = 5;
        n += put_varint(msg + n, 0); /* branch 0: InvoiceIssued */
        const char *strs[] = {"E", "invoice.issued", "C", "2026-01-01T00:00:00Z",
                              "I", "2026-01-01"};
        for (size_t k = 0; k < 6; k++) {
            n += put_varint(msg + n, (int64_t)strlen(strs[k]));
            memcpy(msg + n, strs[k], strlen(strs[k]));
            n += strlen(strs[k]);
        }
        n += put_varint(msg + n, 0); /* due_on: null */
        n += put_varint(msg + n, (int64_t)1 << 50);
        largest_request = 0;
        cr_assert_eq(rs_avro_decode_event(c, msg, n, &ev, err, sizeof(err)), RS_AVRO_ECORRUPT);
        cr_assert(strstr(err, "array or map items") != NULL, "%s", err);
        cr_assert_lt(largest_request, (size_t)RS_AVRO_MAX_MESSAGE);
        /* A negative block count whose byte size is past the end. */
        n -= 8; /* drop the count (1 << 50 takes 8 bytes) */
        n += put_varint(msg + n, -2);
        n += put_varint(msg + n, 1 << 20);
        cr_assert_eq(rs_avro_decode_event(c, msg, n, &ev, err, sizeof(err)), RS_AVRO_ECORRUPT);
        cr_assert(strstr(err, "block size") != NULL, "%s", err);
    }
    rs_avro_cache_destroy(c);
}

Test(avro_wire, oversize_and_trailing_bytes_and_bad_branch)
{
    rs_avro_cache_t *c = new_cache();
    void *buf;
    size_t len;
    char err[512];
    rs_event_t ev;

    uint8_t *big = calloc(1, RS_AVRO_MAX_MESSAGE + 1);
    big[4] = ID_USAGE;
    cr_assert_eq(rs_avro_decode_event(c, big, RS_AVRO_MAX_MESSAGE + 1, &ev, err, sizeof(err)),
                 RS_AVRO_ECORRUPT);
    cr_assert(strstr(err, "over the") != NULL, "%s", err);
    free(big);

    usage_message(c, &buf, &len);
    uint8_t *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0;
    cr_assert_eq(rs_avro_decode_event(c, more, len + 1, &ev, err, sizeof(err)),
                 RS_AVRO_ECORRUPT);
    cr_assert(strstr(err, "1 bytes left over") != NULL, "%s", err);
    free(more);
    free(buf);

    uint8_t bad_branch[] = {0, 0, 0, 0, ID_CONTRACTS, 18 /* branch 9 of 5 */, 0};
    cr_assert_eq(rs_avro_decode_event(c, bad_branch, sizeof(bad_branch), &ev, err, sizeof(err)),
                 RS_AVRO_ECORRUPT);
    cr_assert(strstr(err, "union branch 9") != NULL, "%s", err);

    uint8_t long_varint[16] = {0, 0, 0, 0, ID_USAGE};
    memset(long_varint + 5, 0xff, 11);
    cr_assert_eq(
        rs_avro_decode_event(c, long_varint, sizeof(long_varint), &ev, err, sizeof(err)),
        RS_AVRO_ECORRUPT);
    cr_assert(strstr(err, "longer than 10 bytes") != NULL, "%s", err);
    rs_avro_cache_destroy(c);
}

/* ---- validation: the same rules and messages as the JSON codec ---- */

/* Set Avro value v (of the writer schema) from JSON j: records by field name
 * (absent -> null), unions take null or their first non-null branch that
 * fits, strings and arrays as they are. */
static void from_json(avro_value_t *v, json_t *j)
{
    switch (avro_value_get_type(v)) {
    case AVRO_UNION: {
        avro_schema_t us = avro_value_get_schema(v);
        avro_value_t b;
        if (j == NULL || json_is_null(j)) {
            cr_assert_eq(avro_value_set_branch(v, 0, &b), 0);
            avro_value_set_null(&b);
            return;
        }
        for (size_t i = 0; i < avro_schema_union_size(us); i++) {
            avro_schema_t bs = avro_schema_union_branch(us, (int)i);
            if ((json_is_string(j) && is_avro_string(bs)) ||
                (json_is_array(j) && is_avro_array(bs)) ||
                (json_is_object(j) && is_avro_record(bs))) {
                cr_assert_eq(avro_value_set_branch(v, (int)i, &b), 0);
                from_json(&b, j);
                return;
            }
        }
        cr_assert_fail("no branch for a JSON value");
        return;
    }
    case AVRO_RECORD: {
        size_t n;
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_t f;
            const char *name;
            avro_value_get_by_index(v, i, &f, &name);
            from_json(&f, json_object_get(j, name));
        }
        return;
    }
    case AVRO_ARRAY: {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            avro_value_t child;
            avro_value_append(v, &child, NULL);
            from_json(&child, e);
        }
        return;
    }
    case AVRO_STRING:
        cr_assert(json_is_string(j), "a required string is missing from the test JSON");
        avro_value_set_string_len(v, json_string_value(j), json_string_length(j) + 1);
        return;
    default:
        cr_assert_fail("unexpected Avro type");
    }
}

/* The Avro wire form of JSON event `json` (which may be invalid). */
static void avro_of_json(const char *json, void **buf, size_t *len)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    cr_assert_not_null(j, "%s", jerr.text);
    rs_event_type_t t = rs_event_type_from_name(json_string_value(json_object_get(j, "type")));
    cr_assert_neq(t, RS_EV_UNKNOWN);
    int kind = rs_avro_schema_kind_of_event(t);
    const char *text = rs_avro_schema_json(kind);
    avro_schema_t s;
    avro_value_t v, rec;
    cr_assert_eq(avro_schema_from_json_length(text, strlen(text), &s), 0);
    avro_value_iface_t *cls = avro_generic_class_from_schema(s);
    avro_generic_value_new(cls, &v);
    if (avro_value_get_type(&v) == AVRO_UNION) {
        int branch = -1;
        const char *ename = rs_event_type_name(t);
        for (int k = RS_EV_CONTRACT_BOOKED; k < (int)t; k++)
            if (rs_avro_schema_kind_of_event(k) == kind)
                branch++;
        cr_assert(ename != NULL);
        cr_assert_eq(avro_value_set_branch(&v, branch + 1, &rec), 0);
    } else {
        rec = v;
    }
    from_json(&rec, j);
    frame(kind + 1, &v, buf, len);
    avro_value_decref(&v);
    avro_value_iface_decref(cls);
    avro_schema_decref(s);
    json_decref(j);
}

#define HEAD(id, type, contract)                                                               \
    "{\"event_id\":\"" id "\",\"type\":\"" type "\",\"contract_id\":\"" contract "\","         \
    "\"occurred_at\":\"2026-01-01T00:00:00Z\","
#define LINE(extra)                                                                            \
    "{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"ratable_daily\","                \
    "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"100.00\"" extra "}"
#define BOOKED(lines)                                                                          \
    HEAD("E-1", "contract.booked", "C-1")                                                      \
    "\"customer_id\":\"CU\",\"currency\":\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":"      \
    "[" lines "]}"
#define LONG_ID                                                                                \
    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" \
    "XX"                                                                                       \
    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

/* Events that are valid Avro but break a rule of the contract. */
static const char *const BAD[] = {
    HEAD("", "usage.recorded", "C-1") "\"line_id\":\"L\",\"quantity\":\"1\"}",
    HEAD("E-1", "usage.recorded", "") "\"line_id\":\"L\",\"quantity\":\"1\"}",
    HEAD("E-1", "usage.recorded", "C-1") "\"line_id\":\"L\",\"quantity\":\"1.0000001\"}",
    HEAD("E-1", "usage.recorded", "C-1") "\"line_id\":\"L\",\"quantity\":\"-3\"}",
    HEAD("E-1", "usage.recorded", "C-1") "\"line_id\":\"L\",\"quantity\":\"\"}",
    HEAD("E-1", "usage.recorded", "C-1") "\"line_id\":\"" LONG_ID "\",\"quantity\":\"1\"}",
    "{\"event_id\":\"E-1\",\"type\":\"usage.recorded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"yesterday\",\"line_id\":\"L\",\"quantity\":\"1\"}",
    BOOKED(LINE("")) /* valid: the control */,
    BOOKED(LINE(",\"ssp\":\"-1\"")),
    BOOKED(LINE("") "," LINE("")),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"ratable_weekly\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"" LONG_ID "\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"ratable_daily\","
           "\"start\":\"2026-05-01\",\"end\":\"2026-04-30\",\"amount\":\"1\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"ratable_daily\","
           "\"start\":\"2026-05-01\",\"amount\":\"1\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"\",\"recognition\":\"ratable_daily\","
           "\"start\":\"2026-02-30\",\"end\":\"2026-12-31\",\"amount\":\"1\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"ratable_daily\","
           "\"start\":\"2026-02-30\",\"end\":\"2026-12-31\",\"amount\":\"1\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"usage\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\"}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"milestone\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"10\"}"),
    BOOKED(
        "{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"milestone\","
        "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"10\",\"milestones\":[]}"),
    BOOKED("{\"line_id\":\"L-1\",\"product\":\"P\",\"recognition\":\"milestone\","
           "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"10\",\"milestones\":["
           "{\"milestone_id\":\"M\",\"amount\":\"5\"},{\"milestone_id\":\"M\",\"amount\":\"5\"}"
           "]}"),
    BOOKED(""),
    HEAD("E-1", "contract.booked",
         "C-1") "\"customer_id\":\"CU\",\"currency\":\"XYZ\",\"booked_on\":\"2026-01-01\","
                "\"lines\":[" LINE("") "]}",
    HEAD("E-1", "contract.booked",
         "C-1") "\"customer_id\":\"CU\",\"currency\":\"USD\",\"booked_on\":\"2026-01-01\","
                "\"source\":{\"system\":\"\",\"record_id\":\"r\"},\"lines\":[" LINE("") "]}",
    HEAD("E-1", "contract.amended", "C-1") "\"effective_on\":\"2026-07-01\",\"treatment\":"
                                           "\"sometimes\",\"lines\":[" LINE("") "]}",
    HEAD("E-1", "credit_note.issued",
         "C-1") "\"credit_note_id\":\"CN\",\"invoice_id\":\"I\",\"issued_on\":\"2026-01-01\","
                "\"reason\":\"gift\",\"lines\":[{\"line_id\":\"L\",\"amount\":\"1\"}]}",
    HEAD("E-1", "credit_note.issued",
         "C-1") "\"credit_note_id\":\"CN\",\"invoice_id\":\"I\",\"issued_on\":\"2026-01-01\","
                "\"reason\":\"refund\",\"lines\":[{\"line_id\":\"L\",\"amount\":\"0.00\"}]}",
    HEAD("E-1", "invoice.issued", "C-1") "\"invoice_id\":\"I\",\"issued_on\":\"2026-01-01\","
                                         "\"lines\":[{\"line_id\":\"L\","
                                         "\"amount\":\"1\",\"tax\":\"-1\"}]}",
    HEAD("E-1", "invoice.issued", "C-1") "\"invoice_id\":\"I\",\"issued_on\":\"2026-01-01\","
                                         "\"lines\":[{\"line_id\":\"L\","
                                         "\"amount\":\"1\",\"service_start\":\"2026-02-01\","
                                         "\"service_end\":\"2026-01-31\"}]}",
    HEAD("E-1", "invoice.issued", "C-1") "\"invoice_id\":\"I\",\"issued_on\":\"2026-01-01\","
                                         "\"due_on\":\"01/31/2026\",\"lines\":["
                                         "{\"line_id\":\"L\",\"amount\":\"1\"}]}",
    HEAD("E-1", "payment.received", "C-1") "\"payment_id\":\"P\",\"invoice_id\":\"I\","
                                           "\"amount\":\"0\",\"received_on\":\"2026-01-01\"}",
    HEAD("E-1", "payment.refunded", "C-1") "\"refund_id\":\"R\",\"payment_id\":\"P\",\"invoice_"
                                           "id\":\"I\",\"amount\":\"1,000.00\","
                                           "\"refunded_on\":\"2026-01-01\"}",
    HEAD("E-1", "payment.failed", "C-1") "\"payment_id\":\"P\",\"invoice_id\":\"I\",\"failed_"
                                         "on\":\"2026-01-01\",\"reason\":\"\"}",
    "{\"event_id\":\"E-1\",\"type\":\"period.closed\",\"occurred_at\":\"2026-01-01T00:00:00Z\","
    "\"period\":\"2026-13\"}",
    HEAD("E-1", "milestone.completed",
         "C-1") "\"line_id\":\"L\",\"milestone_id\":\"M\",\"completed_on\":\"2026-1-1\"}",
    HEAD("E-1", "contract.cancelled", "C-1") "\"effective_on\":\"\"}",
    HEAD("E-1", "invoice.voided", "C-1") "\"invoice_id\":\"I\",\"voided_on\":\"2026-00-10\"}",
    HEAD("E-1", "invoice.uncollectible", "C-1") "\"invoice_id\":\"" LONG_ID
                                                "\",\"declared_on\":\"2026-01-10\"}",
};

Test(avro_validation, same_errors_as_the_json_codec)
{
    rs_avro_cache_t *c = new_cache();
    int valid = 0;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        char jerr[512] = "", aerr[512] = "";
        rs_event_t je, ae;
        void *buf;
        size_t len;
        int jrc = rs_codec_json_decode(BAD[i], strlen(BAD[i]), &je, jerr, sizeof(jerr));
        avro_of_json(BAD[i], &buf, &len);
        int arc = rs_avro_decode_event(c, buf, len, &ae, aerr, sizeof(aerr));
        if (jrc == 0) {
            /* The control case: both accept it, with the same content. */
            cr_assert_eq(arc, RS_AVRO_OK, "case %zu: %s", i, aerr);
            cr_assert_eq(rs_event_hash(&ae), rs_event_hash(&je));
            rs_event_clear(&je);
            rs_event_clear(&ae);
            valid++;
        } else {
            cr_assert_eq(arc, RS_AVRO_EINVALID, "case %zu: JSON said \"%s\", Avro rc %d (%s)",
                         i, jerr, arc, aerr);
            cr_assert_str_eq(aerr, jerr, "case %zu", i);
            cr_assert_eq(ae.n_lines, 0);
        }
        free(buf);
    }
    cr_assert_eq(valid, 1, "exactly the control case is valid");
    rs_avro_cache_destroy(c);
}

Test(avro_validation, checks_json_cannot_express)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    rs_event_t ev;
    void *buf;
    size_t len;

    /* `type` names another event than the record. */
    avro_of_json(HEAD("E-1", "usage.recorded", "C-1") "\"line_id\":\"L\",\"quantity\":\"1\"}",
                 &buf, &len);
    uint8_t *u = buf;
    uint8_t *t = memmem(u, len, "usage.recorded", 14);
    cr_assert_not_null(t);
    memcpy(t, "usage.reversed", 14);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_EINVALID);
    cr_assert_str_eq(err, "event E-1: type: unknown event type \"usage.reversed\"");
    memcpy(t, "payment.failed", 14);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_EINVALID);
    cr_assert_str_eq(err, "event E-1: type: \"payment.failed\" does not match the Avro record "
                          "io.revstream.UsageRecorded");
    memcpy(t, "usage.recorded", 14);

    /* A NUL byte inside a string, then bytes that are not UTF-8. */
    uint8_t *l = memmem(u, len, "\002L", 2); /* line_id "L" */
    cr_assert_not_null(l);
    l[1] = 0;
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_EINVALID);
    cr_assert_str_eq(err, "event E-1: line_id: must not contain a NUL byte");
    l[1] = 0xC3;
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_EINVALID);
    cr_assert_str_eq(err, "event E-1: line_id: must be valid UTF-8");
    l[1] = 'L';
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    rs_event_clear(&ev);
    free(buf);
    rs_avro_cache_destroy(c);
}

/* ---- the cache ---- */

Test(avro_cache, add_rules)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    /* The same schema again is fine, another one under the same id is not. */
    cr_assert_eq(rs_avro_cache_add(c, ID_USAGE, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE), err,
                                   sizeof(err)),
                 RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_add(c, ID_USAGE, rs_avro_schema_json(RS_AVRO_SCHEMA_PAYMENTS),
                                   err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "already registered") != NULL, "%s", err);
    cr_assert_eq(rs_avro_cache_add(c, 50, "{\"type\":\"recrod\"}", err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "schema id 50: not a valid Avro schema") != NULL, "%s", err);
    cr_assert_eq(rs_avro_cache_add(c, 51, NULL, err, sizeof(err)), RS_AVRO_ESCHEMA);
    cr_assert_eq(rs_avro_cache_has(c, 50), 0);
    rs_avro_cache_destroy(c);
    rs_avro_cache_destroy(NULL);
}

Test(avro_cache, encoding_needs_known_or_nullable_fields)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    rs_event_t ev;
    void *buf;
    size_t len;
    /* A writer that requires a field revstream does not know. */
    const char *strict =
        "{\"type\":\"record\",\"name\":\"UsageRecorded\",\"namespace\":\"io.revstream\","
        "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\","
        "\"type\":\"string\"},{\"name\":\"contract_id\",\"type\":\"string\"},"
        "{\"name\":\"occurred_at\",\"type\":\"string\"},{\"name\":\"line_id\",\"type\":"
        "\"string\"},"
        "{\"name\":\"quantity\",\"type\":\"string\"},{\"name\":\"tenant\",\"type\":\"string\"}]"
        "}";
    cr_assert_eq(rs_avro_cache_add(c, 60, strict, err, sizeof(err)), RS_AVRO_OK, "%s", err);
    json_event(EVENTS[N_EVENTS - 1], &ev);
    cr_assert_eq(rs_avro_encode_event(c, 60, &ev, &buf, &len, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "UsageRecorded.tenant") != NULL, "%s", err);
    /* An event whose topic schema is another id. */
    cr_assert_eq(rs_avro_encode_event(c, ID_PAYMENTS, &ev, &buf, &len, err, sizeof(err)),
                 RS_AVRO_ESCHEMA);
    cr_assert(strstr(err, "no record io.revstream.UsageRecorded") != NULL, "%s", err);
    cr_assert_eq(rs_avro_encode_event(c, 999, &ev, &buf, &len, err, sizeof(err)),
                 RS_AVRO_EUNKNOWN_ID);
    rs_event_clear(&ev);
    rs_avro_cache_destroy(c);
}

/* ---- outputs, read back with Avro C's generic reader ---- */

typedef struct readback {
    avro_schema_t schema;
    avro_value_iface_t *cls;
    avro_value_t value;
} readback_t;

static void read_back(const char *stem, int32_t id, const void *buf, size_t len, readback_t *rb)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/schemas/%s.avsc", RS_SOURCE_DIR, stem);
    char *text = slurp(path);
    const uint8_t *u = buf;
    cr_assert_eq(u[0], 0);
    cr_assert_eq(((int32_t)u[1] << 24) | (u[2] << 16) | (u[3] << 8) | u[4], id);
    cr_assert_eq(avro_schema_from_json_length(text, strlen(text), &rb->schema), 0);
    rb->cls = avro_generic_class_from_schema(rb->schema);
    avro_generic_value_new(rb->cls, &rb->value);
    avro_reader_t r = avro_reader_memory((const char *)buf + 5, (int64_t)len - 5);
    cr_assert_eq(avro_value_read(r, &rb->value), 0, "%s", avro_strerror());
    size_t size = 0;
    cr_assert_eq(avro_value_sizeof(&rb->value, &size), 0);
    cr_assert_eq(size, len - 5, "the record is %zu bytes, the body %zu", size, len - 5);
    avro_reader_free(r);
    free(text);
}

static void read_back_free(readback_t *rb)
{
    avro_value_decref(&rb->value);
    avro_value_iface_decref(rb->cls);
    avro_schema_decref(rb->schema);
}

static const char *get_s(avro_value_t *rec, const char *name)
{
    avro_value_t f, b;
    const char *s = NULL;
    size_t n;
    cr_assert_eq(avro_value_get_by_name(rec, name, &f, NULL), 0, "no field %s", name);
    if (avro_value_get_type(&f) == AVRO_UNION) {
        avro_value_get_current_branch(&f, &b);
        if (avro_value_get_type(&b) == AVRO_NULL)
            return NULL;
        f = b;
    }
    cr_assert_eq(avro_value_get_string(&f, &s, &n), 0, "%s is not a string", name);
    return s;
}

static int64_t get_l(avro_value_t *rec, const char *name)
{
    avro_value_t f;
    int64_t l = 0;
    int32_t i = 0;
    cr_assert_eq(avro_value_get_by_name(rec, name, &f, NULL), 0, "no field %s", name);
    if (avro_value_get_type(&f) == AVRO_INT32) {
        avro_value_get_int(&f, &i);
        return i;
    }
    cr_assert_eq(avro_value_get_long(&f, &l), 0, "%s is not a long", name);
    return l;
}

Test(avro_outputs, journal_entry)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    void *buf;
    size_t len;
    rs_entry_t e;
    readback_t rb;
    memset(&e, 0, sizeof(e));
    snprintf(e.entry_id, sizeof(e.entry_id), "C-1#7");
    e.seq = 7;
    e.posted_on = rs_date_from_ymd(2026, 1, 31);
    e.period = 2026 * 12 + 0;
    e.service_period = 2025 * 12 + 11;
    e.kind = RS_ENTRY_RECOGNITION;
    snprintf(e.rule, sizeof(e.rule), "ratable_daily");
    snprintf(e.contract_id, sizeof(e.contract_id), "C-1");
    snprintf(e.customer_id, sizeof(e.customer_id), "CU-1");
    snprintf(e.currency, sizeof(e.currency), "KWD");
    e.exponent = 3;
    e.n_postings = 2;
    e.postings[0] =
        (rs_posting_t){.account = RS_ACCT_DEFERRED_REVENUE, .debit = 1000125, .credit = 0};
    e.postings[1] = (rs_posting_t){.account = RS_ACCT_REVENUE, .debit = 0, .credit = 1000125};
    e.n_sources = 2;
    snprintf(e.sources[0], RS_ID_MAX, "E-1");
    snprintf(e.sources[1], RS_ID_MAX, "E-6");
    e.source_count = 3;
    e.recognized = 1000125;

    cr_assert_eq(rs_avro_encode_entry(c, ID_ENTRY, &e, &buf, &len, err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);
    read_back("journal_entry", ID_ENTRY, buf, len, &rb);
    avro_value_t *v = &rb.value;
    cr_assert_str_eq(get_s(v, "entry_id"), "C-1#7");
    cr_assert_eq(get_l(v, "seq"), 7);
    cr_assert_str_eq(get_s(v, "posted_on"), "2026-01-31");
    cr_assert_str_eq(get_s(v, "period"), "2026-01");
    cr_assert_str_eq(get_s(v, "service_period"), "2025-12");
    cr_assert_str_eq(get_s(v, "kind"), "recognition");
    cr_assert_str_eq(get_s(v, "rule"), "ratable_daily");
    cr_assert_str_eq(get_s(v, "customer_id"), "CU-1");
    cr_assert_null(get_s(v, "line_id"), "empty line_id is null");
    cr_assert_null(get_s(v, "document_id"));
    cr_assert_str_eq(get_s(v, "currency"), "KWD");
    cr_assert_eq(get_l(v, "exponent"), 3);
    cr_assert_eq(get_l(v, "recognized"), 1000125);
    cr_assert_eq(get_l(v, "billed"), 0);
    cr_assert_eq(get_l(v, "source_count"), 3);
    avro_value_t lines, row, srcs, s0;
    size_t n;
    avro_value_get_by_name(v, "lines", &lines, NULL);
    avro_value_get_size(&lines, &n);
    cr_assert_eq(n, 2);
    avro_value_get_by_index(&lines, 1, &row, NULL);
    cr_assert_str_eq(get_s(&row, "account"), "revenue");
    cr_assert_eq(get_l(&row, "credit"), 1000125);
    cr_assert_eq(get_l(&row, "debit"), 0);
    avro_value_get_by_name(v, "source_event_ids", &srcs, NULL);
    avro_value_get_size(&srcs, &n);
    cr_assert_eq(n, 2);
    avro_value_get_by_index(&srcs, 1, &s0, NULL);
    const char *s;
    size_t sn;
    avro_value_get_string(&s0, &s, &sn);
    cr_assert_str_eq(s, "E-6");
    read_back_free(&rb);
    free(buf);

    /* A journal entry is not an event: the events decoder refuses the id. */
    rs_event_t ev;
    cr_assert_eq(rs_avro_encode_entry(c, ID_ENTRY, &e, &buf, &len, err, sizeof(err)),
                 RS_AVRO_OK);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &ev, err, sizeof(err)), RS_AVRO_ESCHEMA);
    free(buf);
    rs_avro_cache_destroy(c);
}

Test(avro_outputs, deferred_balance)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    void *buf;
    size_t len;
    readback_t rb;
    rs_avro_balance_t b = {.snapshot_key = "C-1/line/L-1",
                           .contract_id = "C-1",
                           .customer_id = "CU-1",
                           .scope = RS_AVRO_SCOPE_LINE,
                           .line_id = "L-1",
                           .invoice_id = NULL,
                           .currency = "JPY",
                           .exponent = 0,
                           .billed = 120000,
                           .recognized = 30000,
                           .deferred = 90000,
                           .unbilled = 0,
                           .received = 120000,
                           .as_of_period = 2026 * 12 + 2};
    cr_assert_eq(rs_avro_encode_balance(c, ID_BALANCE, &b, &buf, &len, err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);
    read_back("deferred_balance", ID_BALANCE, buf, len, &rb);
    avro_value_t *v = &rb.value;
    cr_assert_str_eq(get_s(v, "snapshot_key"), "C-1/line/L-1");
    cr_assert_str_eq(get_s(v, "scope"), "line");
    cr_assert_str_eq(get_s(v, "line_id"), "L-1");
    cr_assert_null(get_s(v, "invoice_id"));
    cr_assert_str_eq(get_s(v, "currency"), "JPY");
    cr_assert_eq(get_l(v, "exponent"), 0);
    cr_assert_eq(get_l(v, "billed"), 120000);
    cr_assert_eq(get_l(v, "recognized"), 30000);
    cr_assert_eq(get_l(v, "deferred"), 90000);
    cr_assert_eq(get_l(v, "unbilled"), 0);
    cr_assert_eq(get_l(v, "received"), 120000);
    cr_assert_str_eq(get_s(v, "as_of_period"), "2026-03");
    read_back_free(&rb);
    free(buf);
    b.scope = (rs_avro_scope_t)7;
    cr_assert_eq(rs_avro_encode_balance(c, ID_BALANCE, &b, &buf, &len, err, sizeof(err)),
                 RS_AVRO_EINVALID);
    rs_avro_cache_destroy(c);
}

Test(avro_outputs, dead_letter)
{
    rs_avro_cache_t *c = new_cache();
    char err[512];
    void *buf;
    size_t len;
    readback_t rb;
    const uint8_t key[] = {'C', '-', '1'};
    const uint8_t value[] = {0, 0, 0, 0, 4, 0xff, 0x00, 0x7f};
    rs_avro_deadletter_t d = {"usage",
                              3,
                              123456789012LL,
                              "avro message: truncated",
                              key,
                              sizeof(key),
                              value,
                              sizeof(value),
                              1767225600000LL};
    cr_assert_eq(rs_avro_encode_deadletter(c, ID_DEAD, &d, &buf, &len, err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);
    read_back("dead_letter", ID_DEAD, buf, len, &rb);
    avro_value_t *v = &rb.value, f, br;
    cr_assert_str_eq(get_s(v, "topic"), "usage");
    cr_assert_eq(get_l(v, "partition"), 3);
    cr_assert_eq(get_l(v, "offset"), 123456789012LL);
    cr_assert_str_eq(get_s(v, "error"), "avro message: truncated");
    cr_assert_eq(get_l(v, "timestamp"), 1767225600000LL);
    const void *p;
    size_t n;
    avro_value_get_by_name(v, "value", &f, NULL);
    avro_value_get_current_branch(&f, &br);
    cr_assert_eq(avro_value_get_bytes(&br, &p, &n), 0);
    cr_assert_eq(n, sizeof(value));
    cr_assert_eq(memcmp(p, value, n), 0);
    avro_value_get_by_name(v, "key", &f, NULL);
    avro_value_get_current_branch(&f, &br);
    cr_assert_eq(avro_value_get_bytes(&br, &p, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(p, "C-1", 3), 0);
    read_back_free(&rb);
    free(buf);

    /* No key: null. */
    d.key = NULL;
    cr_assert_eq(rs_avro_encode_deadletter(c, ID_DEAD, &d, &buf, &len, err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);
    read_back("dead_letter", ID_DEAD, buf, len, &rb);
    int disc = -1;
    avro_value_get_by_name(&rb.value, "key", &f, NULL);
    avro_value_get_discriminant(&f, &disc);
    cr_assert_eq(disc, 0);
    read_back_free(&rb);
    free(buf);
    rs_avro_cache_destroy(c);
}
