/*
 * test_codec_read.c — the direct reader (rs_avro_read.c) against the
 * generic one (rs_avro_decode.c through Avro C's resolved value): every
 * message gives the same status, and the same event field for field or the
 * same error text, under the current schemas (every event type, optional
 * fields present and absent), an older and a newer producer schema, a
 * writer with fields of every Avro type revstream does not know, another
 * field order and other union shapes, arrays in several blocks (negative
 * counts with byte sizes), a union with a foreign record, and a writer
 * revstream cannot read; then every truncation of every message and random
 * byte flips (fixed seed). The direct reader's counter shows which
 * messages it decoded itself.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_codec.h"
#include "rs_test_util.h"

/* Writer ids: 1..7 the compiled-in schemas, then the variants below. */
enum {
    ID_NEWER_USAGE = 10,
    ID_OLDER_INVOICES,
    ID_WIDE_USAGE,
    ID_VARIANT_BOOKED,
    ID_FOREIGN,
    ID_LONG_QUANTITY,
    ID_BLOCK_INVOICE,
    ID_OTHER_NS_LINE,
};

/* The schemas below, written with single quotes (turned into double
 * quotes when registered). */
static const char NEWER_USAGE[] = /* a newer producer: an added optional field */
    "{'type':'record','name':'UsageRecorded','namespace':'io.revstream','fields':["
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'region','type':['null','string'],'default':null},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'line_id','type':'string'},{'name':'quantity','type':'string'}]}";

static const char OLDER_INVOICES[] = /* an older producer: lines without service dates */
    "[{'type':'record','name':'InvoiceIssued','namespace':'io.revstream','fields':["
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'invoice_id','type':'string'},{'name':'issued_on','type':'string'},"
    "{'name':'lines','type':{'type':'array','items':{'type':'record','name':'InvoiceLine',"
    "'fields':[{'name':'line_id','type':'string'},{'name':'amount','type':'string'},"
    "{'name':'tax','type':['null','string'],'default':null}]}}}]},"
    "{'type':'record','name':'InvoiceVoided','namespace':'io.revstream','fields':["
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'invoice_id','type':'string'},{'name':'voided_on','type':'string'}]}]";

/* Fields of every type revstream does not know, between ours; occurred_at a
 * union whose null branch the reader cannot take. */
static const char WIDE_USAGE[] =
    "{'type':'record','name':'UsageRecorded','namespace':'io.revstream','fields':["
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'x_long','type':'long'},{'name':'contract_id','type':'string'},"
    "{'name':'x_map','type':{'type':'map','values':'long'}},"
    "{'name':'occurred_at','type':['string','null']},"
    "{'name':'x_enum','type':{'type':'enum','name':'XE','symbols':['A','B','C']}},"
    "{'name':'x_fixed','type':{'type':'fixed','name':'XF','size':3}},"
    "{'name':'line_id','type':'string'},"
    "{'name':'x_arr','type':{'type':'array','items':{'type':'record','name':'XR','fields':["
    "{'name':'a','type':'int'},{'name':'b','type':'bytes'}]}}},"
    "{'name':'quantity','type':'string'},{'name':'x_d','type':'double'},"
    "{'name':'x_b','type':'boolean'},{'name':'x_f','type':'float'},"
    "{'name':'x_u','type':['null','long','string']}]}";

/* ContractBooked alone: lines first and in a union, a contract line with
 * `end` a plain string, `ssp` null second and an unknown field, `source`
 * not nullable. */
static const char VARIANT_BOOKED[] =
    "{'type':'record','name':'ContractBooked','namespace':'io.revstream','fields':["
    "{'name':'lines','type':['null',{'type':'array','items':{'type':'record',"
    "'name':'ContractLine','fields':[{'name':'line_id','type':'string'},"
    "{'name':'product','type':'string'},{'name':'recognition','type':'string'},"
    "{'name':'start','type':'string'},{'name':'end','type':'string'},"
    "{'name':'amount','type':'string'},{'name':'ssp','type':['string','null']},"
    "{'name':'unit_price','type':['null','string'],'default':null},"
    "{'name':'note','type':['null','string'],'default':null},"
    "{'name':'milestones','type':['null',{'type':'array','items':{'type':'record',"
    "'name':'Milestone','fields':[{'name':'milestone_id','type':'string'},"
    "{'name':'amount','type':'string'}]}}],'default':null}]}}]},"
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'customer_id','type':'string'},{'name':'currency','type':'string'},"
    "{'name':'booked_on','type':'string'},"
    "{'name':'source','type':{'type':'record','name':'Source','fields':["
    "{'name':'system','type':'string'},{'name':'record_id','type':'string'}]}}]}";

/* A union of a record that is not an event, then the usage record. */
static const char FOREIGN_HEAD[] =
    "[{'type':'record','name':'Heartbeat','namespace':'io.other','fields':["
    "{'name':'at','type':'long'}]},";

/* quantity a long: no reader for it. */
static const char LONG_QUANTITY[] =
    "{'type':'record','name':'UsageRecorded','namespace':'io.revstream','fields':["
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'line_id','type':'string'},{'name':'quantity','type':'long'}]}";

/* InvoiceIssued with its lines first, their fields in another order. */
static const char BLOCK_INVOICE[] =
    "{'type':'record','name':'InvoiceIssued','namespace':'io.revstream','fields':["
    "{'name':'lines','type':{'type':'array','items':{'type':'record','name':'InvoiceLine',"
    "'fields':[{'name':'amount','type':'string'},{'name':'line_id','type':'string'},"
    "{'name':'x','type':['null','long'],'default':null},"
    "{'name':'tax','type':['null','string'],'default':null},"
    "{'name':'service_end','type':['null','string'],'default':null},"
    "{'name':'service_start','type':['null','string'],'default':null}]}}},"
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'invoice_id','type':'string'},{'name':'issued_on','type':'string'},"
    "{'name':'due_on','type':['null','string'],'default':null}]}";

/* InvoiceIssued with its InvoiceLine in another namespace. */
static const char OTHER_NS_LINE[] =
    "{'type':'record','name':'InvoiceIssued','namespace':'io.revstream','fields':["
    "{'name':'event_id','type':'string'},{'name':'type','type':'string'},"
    "{'name':'contract_id','type':'string'},{'name':'occurred_at','type':'string'},"
    "{'name':'invoice_id','type':'string'},{'name':'issued_on','type':'string'},"
    "{'name':'lines','type':{'type':'array','items':{'type':'record','name':'InvoiceLine',"
    "'namespace':'io.other','fields':[{'name':'line_id','type':'string'},"
    "{'name':'amount','type':'string'}]}}}]}";

/* One event of every type, every optional field somewhere. */
static const char *const EVENTS[] = {
    "{\"event_id\":\"E-1\",\"type\":\"contract.booked\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CU-1\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-01-01\",\"source\":{\"system\":\"hubspot\",\"record_id\":\"D-77\"},"
    "\"lines\":[{\"line_id\":\"L-1\",\"product\":\"Platform\",\"recognition\":"
    "\"ratable_daily\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
    "\"12000.00\",\"ssp\":\"15000.00\"},{\"line_id\":\"L-2\",\"product\":\"API\","
    "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
    "\"0\",\"unit_price\":\"0.000125\"},{\"line_id\":\"L-3\",\"product\":\"Onboarding\","
    "\"recognition\":\"milestone\",\"start\":\"2026-01-01\",\"end\":\"2026-03-31\","
    "\"amount\":\"5000.00\",\"milestones\":[{\"milestone_id\":\"M-1\",\"amount\":"
    "\"2000.00\"},{\"milestone_id\":\"M-2\",\"amount\":\"3000.00\"}]},{\"line_id\":\"L-4\","
    "\"product\":\"Setup\",\"recognition\":\"point_in_time\",\"start\":\"2026-01-15\","
    "\"amount\":\"500.00\"}]}",
    "{\"event_id\":\"E-1b\",\"type\":\"contract.booked\",\"contract_id\":\"C-9\","
    "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CU-\xc3\xa9\",\"currency\":"
    "\"JPY\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L-1\",\"product\":"
    "\"P\",\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":"
    "\"2026-12-31\",\"amount\":\"120000\"}]}",
    "{\"event_id\":\"E-2\",\"type\":\"contract.amended\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-06-20T10:00:00-05:00\",\"effective_on\":\"2026-07-01\","
    "\"treatment\":\"catch_up\",\"lines\":[{\"line_id\":\"L-1\",\"product\":\"Platform\","
    "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2027-06-30\","
    "\"amount\":\"18000.00\"}]}",
    "{\"event_id\":\"E-2b\",\"type\":\"contract.amended\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-06-20T10:00:00Z\",\"effective_on\":\"2026-07-01\",\"lines\":["
    "{\"line_id\":\"L-1\",\"product\":\"Platform\",\"recognition\":\"ratable_monthly\","
    "\"start\":\"2026-01-01\",\"end\":\"2027-06-30\",\"amount\":\"18000.00\"}]}",
    "{\"event_id\":\"E-3\",\"type\":\"contract.cancelled\",\"contract_id\":\"C-2\","
    "\"occurred_at\":\"2026-03-01T00:00:00Z\",\"effective_on\":\"2026-03-15\"}",
    "{\"event_id\":\"E-4\",\"type\":\"milestone.completed\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-02-10T12:00:00Z\",\"line_id\":\"L-3\",\"milestone_id\":\"M-1\","
    "\"completed_on\":\"2026-02-10\"}",
    "{\"event_id\":\"P-2026-01\",\"type\":\"period.closed\","
    "\"occurred_at\":\"2026-02-01T00:00:00+01:00\",\"period\":\"2026-01\"}",
    "{\"event_id\":\"E-6\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-1\",\"issued_on\":"
    "\"2026-01-01\",\"due_on\":\"2026-01-31\",\"lines\":[{\"line_id\":\"L-1\",\"amount\":"
    "\"1000.00\",\"tax\":\"80.00\",\"service_start\":\"2026-01-01\",\"service_end\":"
    "\"2026-01-31\"},{\"line_id\":\"L-2\",\"amount\":\"12.50\"}]}",
    "{\"event_id\":\"E-6b\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-01T09:05:00Z\",\"invoice_id\":\"INV-2\",\"issued_on\":"
    "\"2026-02-01\",\"lines\":[{\"line_id\":\"L-1\",\"amount\":\"1000.00\"}]}",
    "{\"event_id\":\"E-7\",\"type\":\"invoice.voided\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-02T09:00:00Z\",\"invoice_id\":\"INV-0\",\"voided_on\":"
    "\"2026-01-02\"}",
    "{\"event_id\":\"E-8\",\"type\":\"credit_note.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-04-01T09:00:00Z\",\"credit_note_id\":\"CN-1\",\"invoice_id\":"
    "\"INV-1\",\"issued_on\":\"2026-04-01\",\"reason\":\"discount\",\"lines\":[{\"line_id\":"
    "\"L-1\",\"amount\":\"60.00\",\"tax\":\"4.80\"},{\"line_id\":\"L-2\",\"amount\":"
    "\"1.00\"}]}",
    "{\"event_id\":\"E-9\",\"type\":\"invoice.uncollectible\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-09-01T09:00:00Z\",\"invoice_id\":\"INV-1\",\"declared_on\":"
    "\"2026-09-01\"}",
    "{\"event_id\":\"E-10\",\"type\":\"payment.received\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-01-10T09:00:00Z\",\"payment_id\":\"PAY-1\",\"invoice_id\":"
    "\"INV-1\",\"amount\":\"1080.00\",\"received_on\":\"2026-01-10\"}",
    "{\"event_id\":\"E-11\",\"type\":\"payment.refunded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-02-01T09:00:00Z\",\"refund_id\":\"R-1\",\"payment_id\":\"PAY-1\","
    "\"invoice_id\":\"INV-1\",\"amount\":\"90.00\",\"refunded_on\":\"2026-02-01\"}",
    "{\"event_id\":\"E-12\",\"type\":\"payment.failed\",\"contract_id\":\"C-3\","
    "\"occurred_at\":\"2026-01-10T09:00:00Z\",\"payment_id\":\"PAY-2\",\"invoice_id\":"
    "\"INV-9\",\"failed_on\":\"2026-01-10\",\"reason\":\"card_declined\"}",
    "{\"event_id\":\"U-000001\",\"type\":\"usage.recorded\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-03-05T10:00:00Z\",\"line_id\":\"L-2\",\"quantity\":\"1500.5\"}",
};
#define N_EVENTS (sizeof(EVENTS) / sizeof(EVENTS[0]))

/* ------------------------------------------------------------------------ */
/* Two caches: the direct reader on (the default) and off                   */
/* ------------------------------------------------------------------------ */

static rs_avro_cache_t *direct, *generic;

/* Register `text` under `id` in both caches; quoted: its single quotes
 * are double quotes. */
static void add_both(int32_t id, const char *text, int quoted)
{
    char err[512];
    char *t = strdup(text);
    for (char *q = t; quoted && *q; q++)
        if (*q == '\'')
            *q = '"';
    text = t;
    cr_assert_eq(rs_avro_cache_add(direct, id, text, err, sizeof err), RS_AVRO_OK, "%d: %s",
                 (int)id, err);
    cr_assert_eq(rs_avro_cache_add(generic, id, text, err, sizeof err), RS_AVRO_OK, "%d: %s",
                 (int)id, err);
    free(t);
}

static void setup(void)
{
    char err[512];
    cr_assert_eq(rs_avro_cache_new(&direct, err, sizeof err), RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_new(&generic, err, sizeof err), RS_AVRO_OK);
    rs_avro_cache_set_direct_read(generic, 0);
    for (int k = 0; k < RS_AVRO_SCHEMA__COUNT; k++)
        add_both(k + 1, rs_avro_schema_json(k), 0);
    add_both(ID_NEWER_USAGE, NEWER_USAGE, 1);
    add_both(ID_OLDER_INVOICES, OLDER_INVOICES, 1);
    add_both(ID_WIDE_USAGE, WIDE_USAGE, 1);
    add_both(ID_VARIANT_BOOKED, VARIANT_BOOKED, 1);
    const char *usage = rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE);
    size_t n = strlen(FOREIGN_HEAD) + strlen(usage) + 2;
    char *foreign = malloc(n);
    snprintf(foreign, n, "%s%s]", FOREIGN_HEAD, usage);
    add_both(ID_FOREIGN, foreign, 1);
    free(foreign);
    add_both(ID_LONG_QUANTITY, LONG_QUANTITY, 1);
    add_both(ID_BLOCK_INVOICE, BLOCK_INVOICE, 1);
    add_both(ID_OTHER_NS_LINE, OTHER_NS_LINE, 1);
}

static void teardown(void)
{
    rs_avro_cache_destroy(direct);
    rs_avro_cache_destroy(generic);
}

TestSuite(codec_read, .init = setup, .fini = teardown);

/* The two events are equal field for field: the struct with its pointers
 * left out, then every line, milestone and bill line. */
static void assert_same_event(const rs_event_t *a, const rs_event_t *b, const char *what)
{
    rs_event_t x = *a, y = *b;
    x.lines = y.lines = NULL;
    x.bill_lines = y.bill_lines = NULL;
    cr_assert_eq(memcmp(&x, &y, sizeof x), 0, "%s: the events differ", what);
    for (int i = 0; i < a->n_lines; i++) {
        rs_line_spec_t l = a->lines[i], m = b->lines[i];
        l.milestones = m.milestones = NULL;
        cr_assert_eq(memcmp(&l, &m, sizeof l), 0, "%s: line %d differs", what, i);
        if (a->lines[i].n_milestones > 0)
            cr_assert_eq(
                memcmp(a->lines[i].milestones, b->lines[i].milestones,
                       (size_t)a->lines[i].n_milestones * sizeof *a->lines[i].milestones),
                0, "%s: the milestones of line %d differ", what, i);
    }
    if (a->n_bill_lines > 0)
        cr_assert_eq(memcmp(a->bill_lines, b->bill_lines,
                            (size_t)a->n_bill_lines * sizeof *a->bill_lines),
                     0, "%s: the bill lines differ", what);
    cr_assert_eq(rs_event_hash(a), rs_event_hash(b));
}

/* Decode msg with both caches: the same status, and the same event or the
 * same error text. Returns the status; *took_direct: the direct reader
 * decoded it itself. */
static int same_decode(const void *msg, size_t len, const char *what, int *took_direct)
{
    char e1[512], e2[512];
    rs_event_t a, b;
    uint64_t before = rs_avro_cache_direct_reads(direct);
    int r1 = rs_avro_decode_event(direct, msg, len, &a, e1, sizeof e1);
    int r2 = rs_avro_decode_event(generic, msg, len, &b, e2, sizeof e2);
    cr_assert_eq(r1, r2, "%s (%zu bytes): %d (%s) against %d (%s)", what, len, r1,
                 r1 ? e1 : "ok", r2, r2 ? e2 : "ok");
    if (r1 == RS_AVRO_OK)
        assert_same_event(&a, &b, what);
    else
        cr_assert_str_eq(e1, e2, "%s (%zu bytes)", what);
    if (took_direct != NULL)
        *took_direct = rs_avro_cache_direct_reads(direct) > before;
    if (getenv("RS_TEST_VERBOSE"))
        fprintf(stderr, "%.60s: %d %s direct=%d\n", what, r1, r1 ? e1 : "",
                (int)(rs_avro_cache_direct_reads(direct) - before));
    cr_assert_eq(rs_avro_cache_direct_reads(generic), 0);
    if (r1 != RS_AVRO_OK) /* a failed decode leaves the event cleared */
        cr_assert(a.lines == NULL && a.bill_lines == NULL && a.n_lines == 0);
    rs_event_clear(&a);
    rs_event_clear(&b);
    return r1;
}

/* ------------------------------------------------------------------------ */
/* Messages: encoded by the codec, or by hand for the shapes it never writes */
/* ------------------------------------------------------------------------ */

typedef struct msg {
    uint8_t b[4096];
    size_t n;
} msg_t;

static void m_raw(msg_t *m, const void *p, size_t n)
{
    cr_assert_leq(m->n + n, sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void m_long(msg_t *m, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    uint8_t t[10];
    size_t n = 0;
    while (z >= 0x80) {
        t[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    t[n++] = (uint8_t)z;
    m_raw(m, t, n);
}

static void m_str(msg_t *m, const char *s)
{
    m_long(m, (int64_t)strlen(s));
    m_raw(m, s, strlen(s));
}

static void m_head(msg_t *m, int32_t id)
{
    uint8_t h[5] = {0, (uint8_t)((uint32_t)id >> 24), (uint8_t)((uint32_t)id >> 16),
                    (uint8_t)((uint32_t)id >> 8), (uint8_t)id};
    m->n = 0;
    m_raw(m, h, 5);
}

static void m_envelope(msg_t *m, const char *id, const char *type)
{
    m_str(m, id);
    m_str(m, type);
    m_str(m, "C-1");
    m_str(m, "2026-03-05T10:00:00Z");
}

/* WIDE_USAGE, in variants: 0 plain; 1 blocks with byte sizes (negative
 * counts) in the map and the array, several blocks; 2 occurred_at null
 * (the reader has no null); 3 a block whose byte size is wrong; 4 a bad
 * quantity; 5 a NUL byte in line_id; 6 contract_id not UTF-8; 7 a byte
 * left over; 8 the string branch of x_u. */
static void wide_usage(msg_t *m, int variant)
{
    m_head(m, ID_WIDE_USAGE);
    m_str(m, "W-1");
    m_str(m, "usage.recorded");
    m_long(m, -123456789012345);
    m_str(m, variant == 6 ? "C-\xff" : "C-1");
    if (variant == 1 || variant == 3) { /* map: 2 entries with a size, then 1 */
        msg_t e = {{0}, 0};
        m_str(&e, "k1");
        m_long(&e, 7);
        m_str(&e, "k2");
        m_long(&e, -8);
        m_long(m, -2);
        m_long(m, (int64_t)e.n + (variant == 3 ? 1 : 0));
        m_raw(m, e.b, e.n);
        m_long(m, 1);
        m_str(m, "k3");
        m_long(m, 1 << 20);
        m_long(m, 0);
    } else {
        m_long(m, 0);
    }
    if (variant == 2) {
        m_long(m, 1);
    } else {
        m_long(m, 0);
        m_str(m, "2026-03-05T10:00:00Z");
    }
    m_long(m, 2); /* x_enum C */
    m_raw(m, "\x01\x02\x03", 3);
    if (variant == 5) {
        m_long(m, 3);
        m_raw(m,
              "L\0"
              "2",
              3);
    } else {
        m_str(m, "L-2");
    }
    if (variant == 1) { /* x_arr: one item with a size, then two */
        msg_t e = {{0}, 0};
        m_long(&e, -5);
        m_str(&e, "by");
        m_long(m, -1);
        m_long(m, (int64_t)e.n);
        m_raw(m, e.b, e.n);
        m_long(m, 2);
        m_long(m, 1);
        m_str(m, "");
        m_long(m, 2147483647);
        m_str(m, "zz");
        m_long(m, 0);
    } else {
        m_long(m, 0);
    }
    m_str(m, variant == 4 ? "1.2.3" : "1500.5");
    m_raw(m, "\0\0\0\0\0\0\xf0\x3f", 8); /* 1.0 */
    m_raw(m, "\x01", 1);
    m_raw(m, "\0\0\x80\x3f", 4);
    if (variant == 8) {
        m_long(m, 2);
        m_str(m, "tag");
    } else {
        m_long(m, 1);
        m_long(m, 42);
    }
    if (variant == 7)
        m_raw(m, "\0", 1);
}

/* BLOCK_INVOICE with n lines cut into blocks of `per` items (a negative
 * count with its byte size when sized); bad: line 2's amount is "x". */
static void block_invoice(msg_t *m, int n, int per, int sized, int bad)
{
    m_head(m, ID_BLOCK_INVOICE);
    for (int i = 0; i < n; i += per) {
        int k = n - i < per ? n - i : per;
        msg_t e = {{0}, 0};
        for (int j = i; j < i + k; j++) {
            char id[16], amt[16];
            snprintf(id, sizeof id, "L-%d", j);
            snprintf(amt, sizeof amt, "%d.25", j * 10);
            m_str(&e, bad && j == 1 ? "x" : amt);
            m_str(&e, id);
            m_long(&e, j % 2); /* x: null, or a long */
            if (j % 2)
                m_long(&e, -j);
            m_long(&e, j % 3 ? 1 : 0); /* tax */
            if (j % 3)
                m_str(&e, "1.00");
            m_long(&e, 1); /* service_end, then service_start */
            m_str(&e, "2026-02-28");
            m_long(&e, j % 2);
            if (j % 2)
                m_str(&e, "2026-02-01");
        }
        m_long(m, sized ? -k : k);
        if (sized)
            m_long(m, (int64_t)e.n);
        m_raw(m, e.b, e.n);
    }
    m_long(m, 0);
    m_envelope(m, "I-1", "invoice.issued");
    m_str(m, "INV-1");
    m_str(m, "2026-02-01");
    m_long(m, 1);
    m_str(m, "2026-03-01");
}

/* The messages every test below uses: each event under each writer that
 * has its record, and the hand-made ones. */
typedef struct corpus {
    msg_t *m;
    const char **what;
    size_t n, cap;
} corpus_t;

static void c_add(corpus_t *c, const void *b, size_t n, const char *what)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->m = realloc(c->m, c->cap * sizeof *c->m);
        c->what = realloc(c->what, c->cap * sizeof *c->what);
    }
    cr_assert_leq(n, sizeof c->m[0].b);
    memcpy(c->m[c->n].b, b, n);
    c->m[c->n].n = n;
    c->what[c->n++] = what;
}

static void c_encoded(corpus_t *c, int32_t id, const rs_event_t *ev, const char *what)
{
    char err[512];
    void *buf = NULL;
    size_t len = 0;
    if (rs_avro_encode_event(generic, id, ev, &buf, &len, err, sizeof err) != RS_AVRO_OK) {
        if (getenv("RS_TEST_VERBOSE"))
            fprintf(stderr, "encode %d: %s\n", (int)id, err);
        return; /* a writer without this record */
    }
    c_add(c, buf, len, what);
    free(buf);
}

static void corpus_build(corpus_t *c)
{
    char err[512];
    static const int32_t writers[] = {1,
                                      2,
                                      3,
                                      4,
                                      ID_NEWER_USAGE,
                                      ID_OLDER_INVOICES,
                                      ID_VARIANT_BOOKED,
                                      ID_FOREIGN,
                                      ID_BLOCK_INVOICE,
                                      ID_OTHER_NS_LINE};
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_EVENTS; i++) {
        rs_event_t ev;
        cr_assert_eq(rs_codec_json_decode(EVENTS[i], strlen(EVENTS[i]), &ev, err, sizeof err),
                     0, "%s", err);
        for (size_t w = 0; w < sizeof writers / sizeof writers[0]; w++)
            c_encoded(c, writers[w], &ev, EVENTS[i]);
        rs_event_clear(&ev);
    }
    msg_t m;
    static const char *const wide[] = {
        "wide plain",     "wide sized blocks", "wide null",
        "wide bad size",  "wide bad quantity", "wide NUL",
        "wide not UTF-8", "wide left over",    "wide x_u string"};
    for (int v = 0; v < 9; v++) {
        wide_usage(&m, v);
        c_add(c, m.b, m.n, wide[v]);
    }
    block_invoice(&m, 5, 5, 0, 0);
    c_add(c, m.b, m.n, "invoice one block");
    block_invoice(&m, 5, 2, 1, 0);
    c_add(c, m.b, m.n, "invoice sized blocks");
    block_invoice(&m, 7, 3, 0, 0);
    c_add(c, m.b, m.n, "invoice three blocks");
    block_invoice(&m, 4, 1, 1, 1);
    c_add(c, m.b, m.n, "invoice bad amount");
    block_invoice(&m, 0, 1, 0, 0);
    c_add(c, m.b, m.n, "invoice no lines");
    /* a foreign record in the union; a writer revstream cannot read */
    m_head(&m, ID_FOREIGN);
    m_long(&m, 0);
    m_long(&m, 1234567);
    c_add(c, m.b, m.n, "foreign branch");
    m_head(&m, ID_LONG_QUANTITY);
    m_envelope(&m, "Q-1", "usage.recorded");
    m_str(&m, "L-1");
    m_long(&m, 12);
    c_add(c, m.b, m.n, "long quantity");
}

static void corpus_free(corpus_t *c)
{
    free(c->m);
    free(c->what);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

Test(codec_read, same_events_under_every_writer)
{
    corpus_t c;
    corpus_build(&c);
    size_t encoded = 0;
    for (int round = 0; round < 2; round++) /* the second round: plans built */
        for (size_t i = 0; i < c.n; i++) {
            int32_t id = (int32_t)((uint32_t)c.m[i].b[1] << 24 | (uint32_t)c.m[i].b[2] << 16 |
                                   (uint32_t)c.m[i].b[3] << 8 | c.m[i].b[4]);
            int d = 0;
            int rc = same_decode(c.m[i].b, c.m[i].n, c.what[i], &d);
            cr_assert(!d || rc == RS_AVRO_OK, "%s: taken directly, yet refused", c.what[i]);
            if (c.what[i][0] != '{') /* the hand-made ones: see the tests below */
                continue;
            encoded += round == 0;
            cr_assert_eq(rc, RS_AVRO_OK, "%s under %d", c.what[i], (int)id);
            /* a nested record of another namespace is left to Avro C */
            cr_assert_eq(d, id != ID_OTHER_NS_LINE, "%s under %d", c.what[i], (int)id);
        }
    /* every event under every writer with its record and fields: 16
     * events under the topic schemas, usage under the newer writer and in
     * the foreign union, E-6b and E-7 under the older invoices, E-1 under
     * the variant booking (E-1b has no source, which it cannot hold), E-6
     * and E-6b with their lines in another order, E-6b with lines of
     * another namespace */
    cr_assert_eq(encoded, 16 + 1 + 1 + 2 + 1 + 2 + 1, "%zu encoded", encoded);
    corpus_free(&c);
}

Test(codec_read, the_switch_turns_the_direct_reader_off)
{
    corpus_t c;
    corpus_build(&c);
    rs_avro_cache_set_direct_read(direct, 0);
    for (size_t i = 0; i < c.n; i++)
        same_decode(c.m[i].b, c.m[i].n, c.what[i], NULL);
    cr_assert_eq(rs_avro_cache_direct_reads(direct), 0);
    rs_avro_cache_set_direct_read(direct, 1);
    same_decode(c.m[0].b, c.m[0].n, c.what[0], NULL);
    cr_assert_eq(rs_avro_cache_direct_reads(direct), 1);
    corpus_free(&c);
}

Test(codec_read, errors_have_the_generic_text)
{
    msg_t m;
    char e[512];
    rs_event_t ev;
    wide_usage(&m, 4);
    cr_assert_eq(same_decode(m.b, m.n, "bad quantity", NULL), RS_AVRO_EINVALID);
    cr_assert_eq(rs_avro_decode_event(direct, m.b, m.n, &ev, e, sizeof e), RS_AVRO_EINVALID);
    cr_assert(strstr(e, "event W-1: quantity: ") == e, "%s", e);
    block_invoice(&m, 4, 1, 1, 1);
    cr_assert_eq(rs_avro_decode_event(direct, m.b, m.n, &ev, e, sizeof e), RS_AVRO_EINVALID);
    cr_assert(strstr(e, "event I-1: lines[1].amount: ") == e, "%s", e);
    wide_usage(&m, 5);
    cr_assert_eq(rs_avro_decode_event(direct, m.b, m.n, &ev, e, sizeof e), RS_AVRO_EINVALID);
    cr_assert_str_eq(e, "event W-1: line_id: must not contain a NUL byte");
    wide_usage(&m, 2);
    cr_assert_eq(same_decode(m.b, m.n, "null occurred_at", NULL), RS_AVRO_ESCHEMA);
    wide_usage(&m, 7);
    cr_assert_eq(same_decode(m.b, m.n, "left over", NULL), RS_AVRO_ECORRUPT);
    /* a block whose byte size is wrong: the direct reader declines it */
    int d = 1;
    wide_usage(&m, 3);
    same_decode(m.b, m.n, "bad size", &d);
    cr_assert_eq(d, 0);
}

Test(codec_read, every_truncation)
{
    corpus_t c;
    corpus_build(&c);
    size_t accepted = 0;
    for (size_t i = 0; i < c.n; i++)
        for (size_t len = 0; len < c.m[i].n; len++) {
            /* a copy of exactly len bytes, so ASan sees a read past it */
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, c.m[i].b, len);
            accepted += same_decode(cut, len, c.what[i], NULL) == RS_AVRO_OK;
            free(cut);
        }
    /* a cut message is no whole event, but for one: "wide left over" cut
     * by its extra byte */
    cr_assert_eq(accepted, 1, "%zu truncations accepted", accepted);
    corpus_free(&c);
}

Test(codec_read, random_byte_flips_as_the_generic_path)
{
    corpus_t c;
    corpus_build(&c);
    uint64_t seed = 0x5eed12;
    size_t ok = 0, taken = 0, tried = 0, ok_of_direct = 0, taken_of_direct = 0;
    /* RS_TEST_FLIPS: more rounds per message (400 by default) */
    int rounds = getenv("RS_TEST_FLIPS") ? atoi(getenv("RS_TEST_FLIPS")) : 400;
    for (size_t i = 0; i < c.n; i++) {
        int direct_whole = 0; /* the message itself was read directly */
        same_decode(c.m[i].b, c.m[i].n, c.what[i], &direct_whole);
        for (int k = 0; k < rounds; k++) {
            uint8_t *m = malloc(c.m[i].n);
            memcpy(m, c.m[i].b, c.m[i].n);
            int flips = 1 + (int)(rs_test_rand(&seed) % 3);
            for (int f = 0; f < flips; f++) {
                size_t at = 5 + (size_t)(rs_test_rand(&seed) % (c.m[i].n - 5));
                uint64_t r = rs_test_rand(&seed);
                if (r & 1)
                    m[at] ^= (uint8_t)(1u << ((r >> 1) % 8));
                else
                    m[at] = (uint8_t)(r >> 8);
            }
            int d = 0, rc = same_decode(m, c.m[i].n, c.what[i], &d);
            ok += rc == RS_AVRO_OK;
            taken += (size_t)d;
            ok_of_direct += direct_whole && rc == RS_AVRO_OK;
            taken_of_direct += direct_whole && d;
            tried++;
            free(m);
        }
    }
    /* flips inside strings keep many messages valid: both paths accepted
     * them, and of the flips of messages the direct reader reads, it read
     * nearly all those accepted itself (the rest: a block's byte size
     * changed, so it declined) */
    cr_assert_gt(ok, tried / 20, "%zu of %zu accepted", ok, tried);
    cr_assert_geq(taken_of_direct * 100, ok_of_direct * 98,
                  "%zu of %zu accepted taken directly", taken_of_direct, ok_of_direct);
    if (getenv("RS_TEST_VERBOSE"))
        fprintf(stderr, "flips: %zu tried, %zu accepted, %zu directly (%zu of %zu)\n", tried,
                ok, taken, taken_of_direct, ok_of_direct);
    corpus_free(&c);
}

/* Duplicate ids in an array: the same message for a short array (compared
 * pairwise) and a long one (through a set), from JSON and from Avro. */
Test(codec_read, duplicate_ids_short_and_long_arrays)
{
    for (int n = 2; n <= 40; n += 38) {
        char json[8192], want[256], err[512];
        size_t at = (size_t)snprintf(json, sizeof json,
                                     "{\"event_id\":\"e-dup\",\"type\":\"contract.booked\","
                                     "\"contract_id\":\"C-1\",\"occurred_at\":"
                                     "\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\","
                                     "\"currency\":\"USD\",\"booked_on\":\"2026-01-01\","
                                     "\"lines\":[");
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(json + at, sizeof json - at,
                                   "%s{\"line_id\":\"L-%d\",\"product\":\"P\",\"recognition\":"
                                   "\"ratable_daily\",\"start\":\"2026-01-01\",\"end\":"
                                   "\"2026-12-31\",\"amount\":\"1.00\"}",
                                   i ? "," : "", i < n - 1 ? i + 1 : n / 2);
        snprintf(json + at, sizeof json - at, "]}");
        snprintf(want, sizeof want,
                 "event e-dup: lines[%d].line_id: duplicate line_id \"L-%d\"", n - 1, n / 2);
        rs_event_t ev;
        cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err), -1);
        cr_assert_str_eq(err, want);
        /* the same event without the duplicate, encoded, then the id changed */
        char *fixed = strdup(json);
        char *last = strstr(fixed, "\"line_id\":\"L-");
        for (int i = 0; i < n - 1; i++)
            last = strstr(last + 1, "\"line_id\":\"L-");
        char keep[32];
        snprintf(keep, sizeof keep, "\"line_id\":\"L-%d\"", n / 2);
        cr_assert_eq(strncmp(last, keep, strlen(keep)), 0);
        last[strlen(keep) - 2] = 'x'; /* L-<n/2> becomes unique */
        cr_assert_eq(rs_codec_json_decode(fixed, strlen(fixed), &ev, err, sizeof err), 0, "%s",
                     err);
        void *buf = NULL;
        size_t len = 0;
        cr_assert_eq(rs_avro_encode_event(generic, 1, &ev, &buf, &len, err, sizeof err),
                     RS_AVRO_OK);
        rs_event_clear(&ev);
        /* its bytes: the id back to the duplicate (no other byte is an 'x':
         * no string has one, every length and count is below 0x78) */
        uint8_t *b = buf;
        for (size_t i = 0; i < len; i++)
            if (b[i] == 'x')
                b[i] = (uint8_t)('0' + (n / 2) % 10);
        int d = 1;
        cr_assert_eq(same_decode(buf, len, "duplicate", &d), RS_AVRO_EINVALID);
        cr_assert_eq(d, 0);
        cr_assert_eq(rs_avro_decode_event(direct, buf, len, &ev, err, sizeof err),
                     RS_AVRO_EINVALID);
        cr_assert_str_eq(err, want);
        free(buf);
        free(fixed);
    }
}

/* Large arrays: 5,000 lines (the scratch grows past what is kept, and is
 * freed and grown again on the next one), and 10,001 (over the item
 * limit: refused with the generic path's error). */
Test(codec_read, large_arrays)
{
    for (int n = 5000; n <= 10001; n += 5001) {
        size_t cap = (size_t)n * 64 + 512, at;
        char *json = malloc(cap), err[512];
        at =
            (size_t)snprintf(json, cap,
                             "{\"event_id\":\"e-big\",\"type\":\"invoice.issued\","
                             "\"contract_id\":\"C-1\",\"occurred_at\":\"2026-01-01T00:00:00Z\","
                             "\"invoice_id\":\"I\",\"issued_on\":\"2026-01-01\",\"lines\":[");
        for (int i = 0; i < n; i++)
            at += (size_t)snprintf(json + at, cap - at,
                                   "%s{\"line_id\":\"L-%d\",\"amount\":\"%d\"}", i ? "," : "",
                                   i, i);
        snprintf(json + at, cap - at, "]}");
        rs_event_t ev;
        cr_assert_eq(rs_codec_json_decode(json, at + 2, &ev, err, sizeof err), 0, "%s", err);
        void *buf = NULL;
        size_t len = 0;
        cr_assert_eq(rs_avro_encode_event(generic, 2, &ev, &buf, &len, err, sizeof err),
                     RS_AVRO_OK, "%s", err);
        rs_event_clear(&ev);
        for (int round = 0; round < 2; round++) {
            int d = 0;
            int rc = same_decode(buf, len, "large", &d);
            cr_assert_eq(rc, n <= 10000 ? RS_AVRO_OK : RS_AVRO_ECORRUPT);
            cr_assert_eq(d, rc == RS_AVRO_OK);
        }
        free(buf);
        free(json);
    }
}
