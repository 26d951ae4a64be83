/*
 * test_codec_direct.c — the direct writer (rs_avro_direct.c) against the
 * generic one (rs_avro_encode.c through Avro C's generic value): the same
 * journal entries and balance snapshots give the same bytes, or the same
 * error, under the current schemas, JournalEntry version 1, a writer that
 * is a union, a writer with a field revstream does not know, a union whose
 * null branch comes second, and writers that cannot hold a value.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_test_util.h"

/* Two lines (one with a product), an invoice, a payment, a credit note. */
static const char *book =
    "{\"event_id\":\"d-b\",\"type\":\"contract.booked\",\"contract_id\":\"D-7\","
    "\"occurred_at\":\"2026-01-05T00:00:00Z\",\"customer_id\":\"CU\",\"currency\":\"USD\","
    "\"booked_on\":\"2026-01-05\",\"lines\":[{\"line_id\":\"A\",\"product\":\"P\","
    "\"recognition\":\"ratable_daily\",\"start\":\"2026-01-05\",\"end\":\"2026-12-31\","
    "\"amount\":\"1200.00\"},{\"line_id\":\"B\",\"product\":\"Q\",\"recognition\":"
    "\"ratable_daily\",\"start\":\"2026-02-01\",\"end\":\"2026-04-30\",\"amount\":\"90.00\"}]}"
    "\n"
    "{\"event_id\":\"d-i\",\"type\":\"invoice.issued\",\"contract_id\":\"D-7\",\"occurred_at\":"
    "\"2026-01-06T00:00:00Z\",\"invoice_id\":\"INV\",\"issued_on\":\"2026-01-06\",\"lines\":"
    "[{\"line_id\":\"A\",\"amount\":\"1200.00\",\"tax\":\"96.00\"},{\"line_id\":\"B\","
    "\"amount\":\"90.00\"}]}\n"
    "{\"event_id\":\"d-p\",\"type\":\"payment.received\",\"contract_id\":\"D-7\",\"occurred_"
    "at\":"
    "\"2026-02-11T00:00:00Z\",\"payment_id\":\"PM\",\"invoice_id\":\"INV\",\"received_on\":"
    "\"2026-02-11\",\"amount\":\"500.00\"}\n"
    "{\"event_id\":\"d-cn\",\"type\":\"credit_note.issued\",\"contract_id\":\"D-7\","
    "\"occurred_at\":\"2026-03-10T00:00:00Z\",\"credit_note_id\":\"CN\",\"invoice_id\":\"INV\","
    "\"issued_on\":\"2026-03-10\",\"reason\":\"error\",\"lines\":[{\"line_id\":\"B\","
    "\"amount\":\"30.00\"}]}\n";

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* Replace the first `from` in s by `to` (a new string). */
static char *subst(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    cr_assert_not_null(at, "%s not in the schema", from);
    size_t a = (size_t)(at - s), n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    memcpy(o, s, a);
    strcpy(o + a, to);
    strcat(o, at + strlen(from));
    return o;
}

typedef struct pair {
    rs_avro_cache_t *direct, *generic;
} pair_t;

static void pair_new(pair_t *p)
{
    char err[256];
    cr_assert_eq(rs_avro_cache_new(&p->direct, err, sizeof err), RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_new(&p->generic, err, sizeof err), RS_AVRO_OK);
    rs_avro_cache_set_direct(p->generic, 0);
}

static void pair_add(pair_t *p, int32_t id, const char *text)
{
    char err[512];
    cr_assert_eq(rs_avro_cache_add(p->direct, id, text, err, sizeof err), RS_AVRO_OK, "%s",
                 err);
    cr_assert_eq(rs_avro_cache_add(p->generic, id, text, err, sizeof err), RS_AVRO_OK, "%s",
                 err);
}

static void pair_free(pair_t *p)
{
    rs_avro_cache_destroy(p->direct);
    rs_avro_cache_destroy(p->generic);
}

typedef int (*encode_fn)(rs_avro_cache_t *c, int32_t id, const void *v, void **buf, size_t *len,
                         char *errstr, size_t errlen);

static int encode_entry(rs_avro_cache_t *c, int32_t id, const void *v, void **buf, size_t *len,
                        char *errstr, size_t errlen)
{
    return rs_avro_encode_entry(c, id, v, buf, len, errstr, errlen);
}

static int encode_balance(rs_avro_cache_t *c, int32_t id, const void *v, void **buf,
                          size_t *len, char *errstr, size_t errlen)
{
    return rs_avro_encode_balance(c, id, v, buf, len, errstr, errlen);
}

/* Both writers give the same status, and the same bytes or error. Returns
 * the status. */
static int same(pair_t *p, int32_t id, encode_fn enc, const void *v)
{
    char e1[512], e2[512];
    void *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    int r1 = enc(p->direct, id, v, &b1, &l1, e1, sizeof e1);
    int r2 = enc(p->generic, id, v, &b2, &l2, e2, sizeof e2);
    cr_assert_eq(r1, r2, "schema %d: %d (%s) against %d (%s)", (int)id, r1, e1, r2, e2);
    if (r1 == RS_AVRO_OK) {
        cr_assert_eq(l1, l2, "schema %d: %zu bytes against %zu", (int)id, l1, l2);
        cr_assert_eq(memcmp(b1, b2, l1), 0, "schema %d: the bytes differ", (int)id);
    } else {
        cr_assert_str_eq(e1, e2);
    }
    free(b1);
    free(b2);
    return r1;
}

static int same_entry(pair_t *p, int32_t id, const rs_entry_t *e)
{
    return same(p, id, encode_entry, e);
}

static int same_balance(pair_t *p, int32_t id, const rs_avro_balance_t *b)
{
    return same(p, id, encode_balance, b);
}

/* The book's entries, and variants of them that reach every value shape:
 * no line or document, 0..8 postings and sources, extreme amounts and
 * sequence numbers, no periods, codes without a product. */
static size_t variants(const rs_journal_t *j, rs_entry_t **out)
{
    size_t n = 0, cap = j->n * 8;
    rs_entry_t *v = calloc(cap, sizeof *v);
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        v[n++] = *e;
        rs_entry_t x = *e;
        x.line_id[0] = '\0';
        x.document_id[0] = '\0';
        x.product[0] = '\0';
        x.n_sources = 0;
        x.seq = (uint64_t)INT64_MAX;
        x.billed = INT64_MIN;
        x.recognized = -1;
        x.received = 63;
        v[n++] = x;
        x = *e;
        x.n_postings = 0;
        x.period = RS_PERIOD_NONE;
        x.service_period = RS_PERIOD_NONE;
        x.posted_on = RS_DATE_NONE;
        x.exponent = -64;
        v[n++] = x;
        x = *e;
        x.n_postings = RS_ENTRY_MAX_POSTINGS;
        x.n_sources = RS_ENTRY_MAX_SOURCES;
        for (int k = 0; k < RS_ENTRY_MAX_POSTINGS; k++) {
            x.postings[k] = e->postings[k % (e->n_postings > 0 ? e->n_postings : 1)];
            x.postings[k].debit = (int64_t)k * 1000003 - 64;
            x.postings[k].credit = k == 3 ? INT64_MAX : 64 << k;
            if (k % 2)
                x.postings[k].code[0] = '\0';
        }
        for (int k = 0; k < RS_ENTRY_MAX_SOURCES; k++)
            snprintf(x.sources[k], sizeof x.sources[k], "src-%d-%.40s", k, e->entry_id);
        x.source_count = UINT32_MAX;
        v[n++] = x;
    }
    *out = v;
    return n;
}

static void journal_of_book(rs_harness_t *h)
{
    rs_policy_t pol;
    char err[256];
    rs_policy_defaults(&pol);
    cr_assert_eq(rs_policy_parse(&pol, "account.revenue = 4000\naccount.revenue.Q = 4200\n",
                                 err, sizeof err),
                 0, "%s", err);
    rs_harness_init(h, &pol);
    cr_assert_eq(rs_harness_feed(h, book), 0, "%s", h->last_error);
    rs_engine_advance(h->engine, 2026 * 12 + 6);
    cr_assert_geq(h->journal.n, 8);
}

Test(codec_direct, entries_byte_identical_under_every_writer)
{
    rs_harness_t h;
    pair_t p;
    rs_entry_t *v;
    journal_of_book(&h);
    size_t n = variants(&h.journal, &v);

    const char *v2 = rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY);
    char *v1 = read_text(RS_SCHEMA_DIR "/history/journal_entry.v1.avsc");
    /* a union writer: the entry is its second branch */
    const char *bal = rs_avro_schema_json(RS_AVRO_SCHEMA_DEFERRED_BALANCE);
    size_t ul = strlen(v2) + strlen(bal) + 8;
    char *un = malloc(ul);
    snprintf(un, ul, "[%s,%s]", bal, v2);
    /* a field revstream does not know (nullable), another order, a code
     * that is a plain string, a customer_id that may be null first */
    char *extra = subst(v2, "{\"name\":\"seq\"",
                        "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"
                        "{\"name\":\"seq\"");
    char *nonnull = subst(v2, "\"name\":\"line_id\",\"type\":[\"null\",\"string\"]",
                          "\"name\":\"line_id\",\"type\":\"string\"");
    char *strfirst = subst(v2, "\"name\":\"customer_id\",\"type\":\"string\"",
                           "\"name\":\"customer_id\",\"type\":[\"string\",\"null\"]");
    char *nodoc = subst(v2, "{\"name\":\"rule\",\"type\":\"string\"},", "");
    pair_new(&p);
    pair_add(&p, 1, v2);
    pair_add(&p, 2, v1);
    pair_add(&p, 3, un);
    pair_add(&p, 4, extra);
    pair_add(&p, 5, nonnull);
    pair_add(&p, 6, strfirst);
    pair_add(&p, 7, nodoc);
    int ok[8] = {0}, bad[8] = {0};
    for (int round = 0; round < 2; round++) /* the second round: plans built */
        for (size_t i = 0; i < n; i++)
            for (int32_t id = 1; id <= 7; id++) {
                if (same_entry(&p, id, &v[i]) == RS_AVRO_OK)
                    ok[id]++;
                else
                    bad[id]++;
            }
    /* the variants without periods (one in four) are refused: the periods
     * are strings, not null */
    for (int32_t id = 1; id <= 6; id++)
        if (id != 5)
            cr_assert_eq((size_t)bad[id], 2 * h.journal.n, "schema %d: %d refused", (int)id,
                         bad[id]);
    cr_assert_gt((size_t)bad[5], 2 * h.journal.n, "a non-null line_id refuses no line");
    cr_assert_gt(ok[5], 0);
    cr_assert_eq((size_t)bad[7], 2 * n, "a writer without rule refuses every entry");
    /* every entry encoded was written directly; the generic cache none */
    int all_ok = 0;
    for (int32_t id = 1; id <= 7; id++)
        all_ok += ok[id];
    cr_assert_eq(rs_avro_cache_direct_writes(p.direct), (uint64_t)all_ok);
    cr_assert_eq(rs_avro_cache_direct_writes(p.generic), 0);
    /* an unknown schema id: the same error */
    cr_assert_neq(same_entry(&p, 99, &v[0]), RS_AVRO_OK);
    /* a field not NUL-terminated: the generic error */
    rs_entry_t x = v[0];
    memset(x.rule, 'r', sizeof x.rule);
    cr_assert_eq(same_entry(&p, 1, &x), RS_AVRO_EINVALID);
    x = v[0];
    x.n_postings = RS_ENTRY_MAX_POSTINGS + 1;
    cr_assert_eq(same_entry(&p, 1, &x), RS_AVRO_EINVALID);
    pair_free(&p);
    free(v);
    free(v1);
    free(un);
    free(extra);
    free(nonnull);
    free(strfirst);
    free(nodoc);
    rs_harness_free(&h);
}

Test(codec_direct, balances_byte_identical)
{
    pair_t p;
    const char *bal = rs_avro_schema_json(RS_AVRO_SCHEMA_DEFERRED_BALANCE);
    const char *je = rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY);
    size_t ul = strlen(je) + strlen(bal) + 8;
    char *un = malloc(ul);
    snprintf(un, ul, "[%s,%s]", je, bal);
    pair_new(&p);
    pair_add(&p, 1, bal);
    pair_add(&p, 2, un);
    pair_add(&p, 3, je); /* no balance record: the generic error */
    /* every amount extreme, the line scope first */
    rs_avro_balance_t b = {.billed = 100125, .recognized = -5, .deferred = INT64_MAX};
    b.unbilled = INT64_MIN;
    b.received = 0;
    b.as_of_period = 2026 * 12 + 5;
    b.snapshot_key = "C-1/L";
    b.contract_id = "C-1";
    b.customer_id = "K";
    b.scope = RS_AVRO_SCOPE_LINE;
    b.line_id = "L";
    b.currency = "KWD";
    b.exponent = 3;
    for (int32_t id = 1; id <= 2; id++) {
        cr_assert_eq(same_balance(&p, id, &b), RS_AVRO_OK);
        rs_avro_balance_t c = b;
        c.scope = RS_AVRO_SCOPE_INVOICE;
        c.line_id = "";
        c.invoice_id = "I-9";
        cr_assert_eq(same_balance(&p, id, &c), RS_AVRO_OK);
        c.as_of_period = RS_PERIOD_NONE; /* a string in the schema: not null */
        cr_assert_eq(same_balance(&p, id, &c), RS_AVRO_ESCHEMA);
        c.as_of_period = b.as_of_period;
        c.scope = RS_AVRO_SCOPE_CONTRACT;
        c.invoice_id = NULL;
        cr_assert_eq(same_balance(&p, id, &c), RS_AVRO_OK);
        c.currency = NULL;
        cr_assert_eq(same_balance(&p, id, &c), RS_AVRO_EINVALID);
    }
    cr_assert_eq(same_balance(&p, 3, &b), RS_AVRO_ESCHEMA);
    cr_assert_eq(rs_avro_cache_direct_writes(p.direct), 6);
    pair_free(&p);
    free(un);
}

/* The dates and periods the writers put in every entry are formatted
 * without snprintf: the same text as "%04d-%02d-%02d" / "%04d-%02d", for
 * every day of years 0..9999, for periods on either side, and truncated
 * the same way in a short buffer. */
Test(codec_direct, dates_and_periods_format_as_snprintf)
{
    char a[32], b[32];
    rs_date_t lo = rs_date_from_ymd(-3, 1, 1), hi = rs_date_from_ymd(10001, 12, 31);
    for (rs_date_t d = lo; d <= hi; d++) {
        int y, m, dd;
        rs_date_to_ymd(d, &y, &m, &dd);
        snprintf(b, sizeof b, "%04d-%02d-%02d", y, m, dd);
        cr_assert_str_eq(rs_date_format(d, a, sizeof a), b);
    }
    for (rs_period_t p = -60; p <= 10002 * 12; p++) {
        snprintf(b, sizeof b, "%04d-%02d", p / 12, p % 12 + 1);
        cr_assert_str_eq(rs_period_format(p, a, sizeof a), b);
    }
    cr_assert_str_eq(rs_date_format(rs_date_from_ymd(2026, 3, 9), a, 8), "2026-03");
    cr_assert_str_eq(rs_period_format(2026 * 12 + 2, a, 6), "2026-");
}

/* The direct writer keeps the last day and months it formatted (one memo
 * per field that holds a month, the balance's month in the entry period's
 * memo): entries and balances whose days and months repeat, swap between
 * fields, differ by years or are absent, interleaved, each give the
 * generic path's bytes, and the message after a repeat carries its own
 * month, not the memo's. */
Test(codec_direct, day_and_month_memo_never_stale)
{
    rs_harness_t h;
    pair_t p;
    journal_of_book(&h);
    pair_new(&p);
    pair_add(&p, 1, rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY));
    pair_add(&p, 2, rs_avro_schema_json(RS_AVRO_SCHEMA_DEFERRED_BALANCE));
    const rs_period_t months[] = {2026 * 12,     2026 * 12 + 1,  2026 * 12, 2031 * 12,
                                  2026 * 12 + 1, 10000 * 12 + 3, 2026 * 12};
    const size_t nm = sizeof months / sizeof months[0];
    rs_avro_balance_t b = {.snapshot_key = "C-1/contract",
                           .contract_id = "C-1",
                           .customer_id = "K",
                           .scope = RS_AVRO_SCOPE_CONTRACT,
                           .currency = "USD",
                           .exponent = 2,
                           .billed = 100};
    int written = 0;
    for (size_t i = 0; i < 3 * nm; i++) {
        rs_entry_t e = h.journal.entries[i % h.journal.n];
        e.period = months[i % nm];
        e.service_period = months[(i * 3 + 1) % nm];
        e.posted_on = i % 5 == 4 ? rs_date_from_ymd(12000, 1, 1)
                                 : rs_period_first_day(months[(i / 2) % nm]) + (int)(i % 3);
        cr_assert_eq(same_entry(&p, 1, &e), RS_AVRO_OK, "entry %zu", i);
        b.as_of_period = months[(i + 2) % nm];
        cr_assert_eq(same_balance(&p, 2, &b), RS_AVRO_OK, "balance %zu", i);
        written += 2;
    }
    cr_assert_eq(rs_avro_cache_direct_writes(p.direct), (uint64_t)written);
    pair_free(&p);
    rs_harness_free(&h);
}
