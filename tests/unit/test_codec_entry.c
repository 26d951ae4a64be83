/*
 * test_codec_entry.c — journal entries read back from the journal topic:
 * JSON (rs_codec_entry_from_json) and Avro (rs_codec_entry_from_avro) give
 * back the entries the engine emitted, their account codes and product
 * included; bad records are errors. JournalEntry version 2 (code and
 * product on each line) and version 1 (schemas/history/journal_entry.v1.avsc)
 * read each other's records.
 */
#include <avro.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_test_util.h"

static const char *book =
    "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"C-1\",\"occurred_at\":"
    "\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"KWD\",\"booked_on\":"
    "\"2026-01-01\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\",\"recognition\":"
    "\"ratable_daily\",\"start\":\"2026-01-01\",\"end\":\"2026-06-30\",\"amount\":\"100.125\"}]"
    "}\n"
    "{\"event_id\":\"i\",\"type\":\"invoice.issued\",\"contract_id\":\"C-1\",\"occurred_at\":"
    "\"2026-02-01T00:00:00Z\",\"invoice_id\":\"I\",\"issued_on\":\"2026-02-01\",\"lines\":[{"
    "\"line_id\":\"L\",\"amount\":\"100.125\",\"tax\":\"5.000\"}]}\n"
    "{\"event_id\":\"cn\",\"type\":\"credit_note.issued\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-03-10T00:00:00Z\",\"credit_note_id\":\"CN\",\"invoice_id\":\"I\","
    "\"issued_on\":\"2026-03-10\",\"reason\":\"error\",\"lines\":[{\"line_id\":\"L\","
    "\"amount\":\"10.000\"}]}\n";

static void same(const rs_entry_t *a, const rs_entry_t *b)
{
    cr_assert_str_eq(a->entry_id, b->entry_id);
    cr_assert_eq(a->seq, b->seq);
    cr_assert_eq(a->posted_on, b->posted_on);
    cr_assert_eq(a->period, b->period);
    cr_assert_eq(a->service_period, b->service_period);
    cr_assert_eq(a->kind, b->kind);
    cr_assert_str_eq(a->rule, b->rule);
    cr_assert_str_eq(a->contract_id, b->contract_id);
    cr_assert_str_eq(a->line_id, b->line_id);
    cr_assert_str_eq(a->document_id, b->document_id);
    cr_assert_str_eq(a->currency, b->currency);
    cr_assert_eq(a->exponent, b->exponent);
    cr_assert_eq(a->n_postings, b->n_postings);
    for (int k = 0; k < a->n_postings; k++) {
        cr_assert_eq(a->postings[k].account, b->postings[k].account);
        cr_assert_eq(a->postings[k].debit, b->postings[k].debit);
        cr_assert_eq(a->postings[k].credit, b->postings[k].credit);
        cr_assert_str_eq(a->postings[k].code, b->postings[k].code);
    }
    cr_assert_str_eq(a->product, b->product);
    cr_assert_eq(a->n_sources, b->n_sources);
    for (int k = 0; k < a->n_sources; k++)
        cr_assert_str_eq(a->sources[k], b->sources[k]);
    cr_assert_eq(a->source_count, b->source_count);
    cr_assert_eq(a->billed, b->billed);
    cr_assert_eq(a->recognized, b->recognized);
    cr_assert_eq(a->received, b->received);
}

/* Every entry of j back from JSON and from Avro (the compiled-in schema)
 * equal to itself; with `truncations`, every cut Avro record fails. */
static void round_trip(const rs_journal_t *j, int truncations)
{
    char err[512];
    rs_avro_cache_t *cache;
    rs_entry_reader_t *rd;
    cr_assert_eq(rs_avro_cache_new(&cache, err, sizeof(err)), RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_add(cache, 8, rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY),
                                   err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);
    cr_assert_eq(rs_entry_reader_new(&rd, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < j->n; i++) {
        const rs_entry_t *e = &j->entries[i];
        rs_entry_t d;
        char *json = rs_codec_entry_json(e);
        cr_assert_eq(rs_codec_entry_from_json(json, strlen(json), &d, err, sizeof(err)), 0,
                     "%s", err);
        same(e, &d);
        free(json);
        void *buf;
        size_t len;
        cr_assert_eq(rs_avro_encode_entry(cache, 8, e, &buf, &len, err, sizeof(err)),
                     RS_AVRO_OK, "%s", err);
        cr_assert_eq(rs_codec_entry_from_avro(rd, buf, len, &d, err, sizeof(err)), 0, "%s",
                     err);
        same(e, &d);
        for (size_t k = 0; truncations && k < len; k += 7)
            cr_assert_eq(rs_codec_entry_from_avro(rd, buf, k, &d, err, sizeof(err)), -1);
        free(buf);
    }
    rs_entry_reader_destroy(rd);
    rs_avro_cache_destroy(cache);
}

Test(codec_entry, json_and_avro_round_trip)
{
    rs_harness_t h;
    char err[512];
    rs_harness_init(&h, NULL);
    cr_assert_eq(rs_harness_feed(&h, book), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 6);
    cr_assert_geq(h.journal.n, 8);
    round_trip(&h.journal, 1);
    rs_entry_t d;
    cr_assert_eq(rs_codec_entry_from_json("{\"entry_id\":\"x\"}", 16, &d, err, sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "entry x: entry_id: missing or invalid");
    cr_assert_eq(rs_codec_entry_from_json("[1]", 3, &d, err, sizeof(err)), -1);
    rs_harness_free(&h);
}

/* A policy with a generic code per role and a product override for revenue. */
static const char *POLICY = "account.accounts_receivable = 1100\n"
                            "account.deferred_revenue = 2400\n"
                            "account.revenue = 4000\n"
                            "account.revenue.P = 4100\n"
                            "account.tax_payable = 2200\n";

static void book_with_policy(rs_harness_t *h)
{
    rs_policy_t pol;
    char err[256];
    rs_policy_defaults(&pol);
    cr_assert_eq(rs_policy_parse(&pol, POLICY, err, sizeof err), 0, "%s", err);
    rs_harness_init(h, &pol);
    cr_assert_eq(rs_harness_feed(h, book), 0, "%s", h->last_error);
    rs_engine_advance(h->engine, 2026 * 12 + 6);
    cr_assert_geq(h->journal.n, 8);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The engine puts the policy's code for (role, product) on every posting,
 * and both codecs carry it and the product through. */
Test(codec_entry, codes_and_product_round_trip)
{
    rs_harness_t h;
    book_with_policy(&h);
    int seen_4100 = 0, seen_cash = 0;
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        for (int k = 0; k < e->n_postings; k++) {
            const rs_posting_t *p = &e->postings[k];
            cr_assert_str_eq(p->code, rs_policy_account_code(rs_engine_policy(h.engine),
                                                             p->account, e->product));
            seen_4100 += strcmp(p->code, "4100") == 0 && p->account == RS_ACCT_REVENUE;
            seen_cash += strcmp(p->code, "revenue_contra") == 0;
        }
    }
    cr_assert_gt(seen_4100, 0, "product P's revenue posts to 4100");
    cr_assert_gt(seen_cash, 0, "a role without a code keeps its name");

    round_trip(&h.journal, 0);
    rs_harness_free(&h);
}

/* Lines of an Avro JournalEntry value: (account, code or NULL) of line k. */
static void line_fields(avro_value_t *rec, size_t k, const char **account, const char **code,
                        int *has_code)
{
    avro_value_t lines, row, f, b;
    size_t n;
    cr_assert_eq(avro_value_get_by_name(rec, "lines", &lines, NULL), 0);
    cr_assert_eq(avro_value_get_by_index(&lines, k, &row, NULL), 0);
    cr_assert_eq(avro_value_get_by_name(&row, "account", &f, NULL), 0);
    cr_assert_eq(avro_value_get_string(&f, account, &n), 0);
    *has_code = avro_value_get_by_name(&row, "code", &f, NULL) == 0;
    *code = NULL;
    if (*has_code && avro_value_get_current_branch(&f, &b) == 0 &&
        avro_value_get_type(&b) == AVRO_STRING)
        cr_assert_eq(avro_value_get_string(&b, code, &n), 0);
}

/* Forward: a consumer still on version 1 reads version-2 records through
 * Avro schema resolution (writer v2 -> reader v1): it sees every v1 field and
 * the role in `account`. Backward: version-1 records (a writer without code
 * and product) read with today's reader, which gives the role and no code. */
Test(codec_entry, v1_and_v2_read_each_other)
{
    rs_harness_t h;
    char err[512];
    book_with_policy(&h);
    const char *v1 = read_text(RS_SCHEMA_DIR "/history/journal_entry.v1.avsc");
    const char *v2 = rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY);
    cr_assert_null(strstr(v1, "\"code\""), "the fixture is version 1");
    rs_avro_cache_t *cache;
    cr_assert_eq(rs_avro_cache_new(&cache, err, sizeof(err)), RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_add(cache, 5, v1, err, sizeof(err)), RS_AVRO_OK, "%s", err);
    cr_assert_eq(rs_avro_cache_add(cache, 8, v2, err, sizeof(err)), RS_AVRO_OK, "%s", err);

    avro_schema_t s1, s2;
    cr_assert_eq(avro_schema_from_json_length(v1, strlen(v1), &s1), 0);
    cr_assert_eq(avro_schema_from_json_length(v2, strlen(v2), &s2), 0);
    avro_value_iface_t *res = avro_resolved_writer_new(s2, s1);
    cr_assert_not_null(res, "v1 reader cannot resolve v2: %s", avro_strerror());
    avro_value_iface_t *c1 = avro_generic_class_from_schema(s1);
    avro_value_t wv, rv;
    cr_assert_eq(avro_resolved_writer_new_value(res, &wv), 0);
    cr_assert_eq(avro_generic_value_new(c1, &rv), 0);
    avro_resolved_writer_set_dest(&wv, &rv);

    /* the reader looks ids up: 5 is version 1, 8 version 2 */
    rs_entry_reader_t *rd;
    cr_assert_eq(rs_entry_reader_new(&rd, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_entry_reader_add_schema(rd, 5, v1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_entry_reader_add_schema(rd, 8, v2, err, sizeof err), 0, "%s", err);
    int coded = 0;
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        void *buf;
        size_t len;
        rs_entry_t d;
        /* v2 record, v1 reader */
        cr_assert_eq(rs_avro_encode_entry(cache, 8, e, &buf, &len, err, sizeof(err)),
                     RS_AVRO_OK, "%s", err);
        avro_reader_t r = avro_reader_memory((const char *)buf + 5, (int64_t)(len - 5));
        avro_value_reset(&rv);
        cr_assert_eq(avro_value_read(r, &wv), 0, "%s", avro_strerror());
        avro_reader_free(r);
        avro_value_t f;
        const char *id, *acct, *code;
        size_t n;
        int has_code;
        cr_assert_eq(avro_value_get_by_name(&rv, "entry_id", &f, NULL), 0);
        cr_assert_eq(avro_value_get_string(&f, &id, &n), 0);
        cr_assert_str_eq(id, e->entry_id);
        for (int k = 0; k < e->n_postings; k++) {
            line_fields(&rv, (size_t)k, &acct, &code, &has_code);
            cr_assert_str_eq(acct, rs_account_name(e->postings[k].account));
            cr_assert_not(has_code, "a v1 reader has no code field");
        }
        /* and today's reader reads the same bytes with the codes */
        cr_assert_eq(rs_codec_entry_from_avro(rd, buf, len, &d, err, sizeof(err)), 0, "%s",
                     err);
        same(e, &d);
        free(buf);

        /* v1 record (written by a v1 writer), today's reader */
        cr_assert_eq(rs_avro_encode_entry(cache, 5, e, &buf, &len, err, sizeof(err)),
                     RS_AVRO_OK, "%s", err);
        cr_assert_eq(rs_codec_entry_from_avro(rd, buf, len, &d, err, sizeof(err)), 0, "%s",
                     err);
        cr_assert_str_eq(d.entry_id, e->entry_id);
        cr_assert_eq(d.n_postings, e->n_postings);
        for (int k = 0; k < e->n_postings; k++) {
            cr_assert_eq(d.postings[k].account, e->postings[k].account);
            cr_assert_eq(d.postings[k].debit, e->postings[k].debit);
            cr_assert_eq(d.postings[k].credit, e->postings[k].credit);
            cr_assert_str_eq(d.postings[k].code, "", "v1 records carry no code");
            coded += strcmp(e->postings[k].code, rs_account_name(e->postings[k].account)) != 0;
        }
        cr_assert_str_eq(d.product, "");
        cr_assert_eq(d.recognized, e->recognized);
        free(buf);
    }
    cr_assert_gt(coded, 0);
    /* without the hook, an id never added is read with the compiled-in v2 */
    rs_entry_reader_t *plain;
    cr_assert_eq(rs_entry_reader_new(&plain, err, sizeof(err)), 0, "%s", err);
    void *buf;
    size_t len;
    rs_entry_t d;
    cr_assert_eq(
        rs_avro_encode_entry(cache, 8, &h.journal.entries[0], &buf, &len, err, sizeof(err)),
        RS_AVRO_OK, "%s", err);
    cr_assert_eq(rs_codec_entry_from_avro(plain, buf, len, &d, err, sizeof(err)), 0, "%s", err);
    same(&h.journal.entries[0], &d);
    free(buf);
    rs_entry_reader_destroy(plain);

    avro_value_decref(&wv);
    avro_value_decref(&rv);
    avro_value_iface_decref(res);
    avro_value_iface_decref(c1);
    avro_schema_decref(s1);
    avro_schema_decref(s2);
    rs_entry_reader_destroy(rd);
    rs_avro_cache_destroy(cache);
    rs_harness_free(&h);
}

/* The older JSON shape ({"account": ROLE}, no "role") reads as the role with
 * no code, so a reader applies its policy instead of taking a role for a
 * code. */
Test(codec_entry, older_json_lines_have_no_code)
{
    static const char *old =
        "{\"entry_id\":\"C-1#1\",\"posted_on\":\"2026-01-01\",\"period\":\"2026-01\","
        "\"contract_id\":\"C-1\",\"customer_id\":\"K\",\"line_id\":\"L\",\"document_id\":\"I\","
        "\"kind\":\"invoice\",\"rule\":\"invoice\",\"currency\":\"USD\",\"lines\":["
        "{\"account\":\"accounts_receivable\",\"debit\":\"10.00\",\"credit\":\"0.00\"},"
        "{\"account\":\"deferred_revenue\",\"debit\":\"0.00\",\"credit\":\"10.00\"}],"
        "\"source_event_ids\":[\"i\"],\"billed\":\"10.00\",\"recognized\":\"0.00\","
        "\"received\":\"0.00\"}";
    rs_entry_t d;
    char err[256];
    cr_assert_eq(rs_codec_entry_from_json(old, strlen(old), &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(d.n_postings, 2);
    cr_assert_eq(d.postings[0].account, RS_ACCT_ACCOUNTS_RECEIVABLE);
    cr_assert_eq(d.postings[0].debit, 1000);
    cr_assert_str_eq(d.postings[0].code, "");
    cr_assert_eq(d.postings[1].account, RS_ACCT_DEFERRED_REVENUE);
    cr_assert_str_eq(d.postings[1].code, "");
}
