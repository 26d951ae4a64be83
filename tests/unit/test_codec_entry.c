/*
 * test_codec_entry.c — journal entries read back from the journal topic:
 * JSON (rs_codec_entry_from_json) and Avro (rs_codec_entry_from_avro) give
 * back the entries the engine emitted; bad records are errors.
 */
#include <criterion/criterion.h>
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
    }
    cr_assert_eq(a->n_sources, b->n_sources);
    for (int k = 0; k < a->n_sources; k++)
        cr_assert_str_eq(a->sources[k], b->sources[k]);
    cr_assert_eq(a->source_count, b->source_count);
    cr_assert_eq(a->billed, b->billed);
    cr_assert_eq(a->recognized, b->recognized);
    cr_assert_eq(a->received, b->received);
}

Test(codec_entry, json_and_avro_round_trip)
{
    rs_harness_t h;
    char err[512];
    rs_harness_init(&h, NULL);
    cr_assert_eq(rs_harness_feed(&h, book), 0, "%s", h.last_error);
    rs_engine_advance(h.engine, 2026 * 12 + 6);
    cr_assert_geq(h.journal.n, 8);
    rs_avro_cache_t *cache;
    rs_entry_reader_t *rd;
    cr_assert_eq(rs_avro_cache_new(&cache, err, sizeof(err)), RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_add(cache, 5, rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY),
                                   err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);
    cr_assert_eq(rs_entry_reader_new(&rd, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < h.journal.n; i++) {
        const rs_entry_t *e = &h.journal.entries[i];
        rs_entry_t d;
        char *json = rs_codec_entry_json(e);
        cr_assert_eq(rs_codec_entry_from_json(json, strlen(json), &d, err, sizeof(err)), 0,
                     "%s", err);
        same(e, &d);
        free(json);
        void *buf;
        size_t len;
        cr_assert_eq(rs_avro_encode_entry(cache, 5, e, &buf, &len, err, sizeof(err)),
                     RS_AVRO_OK, "%s", err);
        cr_assert_eq(rs_codec_entry_from_avro(rd, buf, len, &d, err, sizeof(err)), 0, "%s",
                     err);
        same(e, &d);
        /* every truncation fails cleanly */
        for (size_t k = 0; k < len; k += 7)
            cr_assert_eq(rs_codec_entry_from_avro(rd, buf, k, &d, err, sizeof(err)), -1);
        free(buf);
    }
    rs_entry_t d;
    cr_assert_eq(rs_codec_entry_from_json("{\"entry_id\":\"x\"}", 16, &d, err, sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "entry x: entry_id: missing or invalid");
    cr_assert_eq(rs_codec_entry_from_json("[1]", 3, &d, err, sizeof(err)), -1);
    rs_entry_reader_destroy(rd);
    rs_avro_cache_destroy(cache);
    rs_harness_free(&h);
}
