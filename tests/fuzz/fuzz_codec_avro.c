/*
 * fuzz_codec_avro — libFuzzer target for rs_avro_decode_event(), the Avro
 * decoder that reads untrusted Kafka values. Built by CMake with RS_FUZZ=ON
 * (tests/fuzz/CMakeLists.txt); from the repository root,
 *
 *   make fuzz                       # every target, FUZZ_SECONDS (30) each
 *   build-fuzz/fuzz_codec_avro -max_total_time=60 -max_len=4096 \
 *     build-fuzz/fuzz-corpus/fuzz_codec_avro tests/fuzz/corpus/fuzz_codec_avro
 *
 * Seeds (tests/fuzz/corpus/fuzz_codec_avro/, written by scripts/fuzz-seeds.sh):
 * the values of `revstream encode` output (an .avrobin record's value minus
 * its 5-byte header), each prefixed with the selector byte of its schema id
 * (the index in IDS below: contracts 0, invoices 1, payments 2, usage 3), and
 * per topic one whole value prefixed with 0x80.
 *
 * Input: byte 0 selects the framing. Below 0x80 it picks a writer schema id
 * from IDS (our topic schemas, a newer and an older producer schema, a union
 * with a foreign record) and the rest is the Avro body; from 0x80 the rest is
 * the whole message, header included, so the framing checks are fuzzed too.
 *
 * Properties checked (abort() on violation, besides the sanitizers):
 *   - the direct reader (rs_avro_read.c, on in `cache`) and the generic
 *     path (`generic`, the direct reader off) give the same status, and the
 *     same event hash or the same error text;
 *   - a decoded event re-encodes with the same id and decodes to the same
 *     rs_event_hash;
 *   - a decoded event printed by the JSON codec decodes back, through the
 *     JSON codec, to the same hash: the two codecs accept the same events.
 *
 * Invariants: the cache is built once (LLVMFuzzerInitialize) and reused for
 * every input, as the worker reuses it; each input frees what it allocates.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_codec.h"

static const char NEWER_USAGE[] =
    "{\"type\":\"record\",\"name\":\"UsageRecorded\",\"namespace\":\"io.revstream\",\"fields\":"
    "["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"type\",\"type\":\"string\"},"
    "{\"name\":\"region\",\"type\":[\"null\",\"string\"],\"default\":null},"
    "{\"name\":\"contract_id\",\"type\":\"string\"},{\"name\":\"occurred_at\",\"type\":"
    "\"string\"},"
    "{\"name\":\"line_id\",\"type\":\"string\"},{\"name\":\"quantity\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":[\"null\",{\"type\":\"map\",\"values\":\"long\"}],\"default\":"
    "null}]}";

/* An older producer: InvoiceLine without the service dates, two records only. */
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

/* A union of a record that is not an event (every scalar kind the size
 * checker knows) and the usage record, appended at run time. */
static const char FOREIGN_UNION[] =
    "[{\"type\":\"record\",\"name\":\"Heartbeat\",\"namespace\":\"io.other\",\"fields\":["
    "{\"name\":\"at\",\"type\":\"long\"},{\"name\":\"f\",\"type\":{\"type\":\"fixed\","
    "\"name\":\"F4\",\"size\":4}},{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\"]}},{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"b\","
    "\"type\":\"boolean\"}]},";

static const int32_t IDS[] = {1, 2, 3, 4, 10, 11, 14};
#define N_IDS (sizeof(IDS) / sizeof(IDS[0]))

static rs_avro_cache_t *cache, *generic;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok, const char *what, const char *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz_codec_avro: %s: %s\n", what, err);
        abort();
    }
}

static void free_cache(void)
{
    rs_avro_cache_destroy(cache);
    rs_avro_cache_destroy(generic);
    cache = generic = NULL;
}

/* Register `text` under `id` in both caches. */
static void add(int32_t id, const char *text, const char *what)
{
    char err[512];
    must(rs_avro_cache_add(cache, id, text, err, sizeof(err)) == RS_AVRO_OK, what, err);
    must(rs_avro_cache_add(generic, id, text, err, sizeof(err)) == RS_AVRO_OK, what, err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    char *foreign = NULL;
    (void)argc;
    (void)argv;
    must(rs_avro_cache_new(&cache, err, sizeof(err)) == RS_AVRO_OK, "cache", err);
    must(rs_avro_cache_new(&generic, err, sizeof(err)) == RS_AVRO_OK, "cache", err);
    rs_avro_cache_set_direct_read(generic, 0);
    for (int k = 0; k < RS_AVRO_SCHEMA__COUNT; k++)
        add(k + 1, rs_avro_schema_json(k), "add");
    add(10, NEWER_USAGE, "newer");
    add(11, OLDER_INVOICES, "older");
    size_t n = strlen(FOREIGN_UNION) + strlen(rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE)) + 2;
    foreign = malloc(n);
    must(foreign != NULL, "foreign", "out of memory");
    snprintf(foreign, n, "%s%s]", FOREIGN_UNION, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE));
    add(14, foreign, "foreign");
    free(foreign);
    atexit(free_cache); /* so LeakSanitizer sees only what decoding loses */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    rs_event_t ev, again, fromjson;
    uint8_t *msg;
    size_t len;
    int32_t id;

    if (size < 1)
        return 0;
    if (data[0] & 0x80) {
        len = size - 1;
        msg = malloc(len ? len : 1);
        if (msg == NULL)
            return 0;
        memcpy(msg, data + 1, len);
        if (rs_avro_peek_id(msg, len, &id) != RS_AVRO_OK)
            id = -1;
    } else {
        id = IDS[data[0] % N_IDS];
        len = 5 + size - 1;
        msg = malloc(len);
        if (msg == NULL)
            return 0;
        msg[0] = 0;
        msg[1] = (uint8_t)((uint32_t)id >> 24);
        msg[2] = (uint8_t)((uint32_t)id >> 16);
        msg[3] = (uint8_t)((uint32_t)id >> 8);
        msg[4] = (uint8_t)id;
        memcpy(msg + 5, data + 1, size - 1);
    }

    int rc = rs_avro_decode_event(cache, msg, len, &ev, err, sizeof(err));
    /* Property 0: the generic path gives the same status and event or error. */
    char gerr[512];
    rs_event_t gev;
    int grc = rs_avro_decode_event(generic, msg, len, &gev, gerr, sizeof(gerr));
    free(msg);
    must(grc == rc, "direct and generic status", rc ? err : gerr);
    if (rc == RS_AVRO_OK)
        must(rs_event_hash(&gev) == rs_event_hash(&ev), "direct and generic event",
             ev.event_id);
    else
        must(strcmp(err, gerr) == 0, "direct and generic error", gerr);
    rs_event_clear(&gev);
    if (rc != RS_AVRO_OK) {
        /* A failed decode leaves the event cleared. */
        must(ev.n_lines == 0 && ev.lines == NULL && ev.bill_lines == NULL, "cleared", err);
        return 0;
    }
    uint64_t h = rs_event_hash(&ev);

    /* Property 1: Avro round trip with the same writer schema. */
    void *buf = NULL;
    size_t blen = 0;
    rc = rs_avro_encode_event(cache, id, &ev, &buf, &blen, err, sizeof(err));
    must(rc == RS_AVRO_OK, "re-encode", err);
    rc = rs_avro_decode_event(cache, buf, blen, &again, err, sizeof(err));
    must(rc == RS_AVRO_OK, "re-decode", err);
    must(rs_event_hash(&again) == h, "avro round trip", "hash differs");
    free(buf);
    rs_event_clear(&again);

    /* Property 2: the JSON codec accepts what the Avro codec accepted. */
    char *json = rs_codec_json_encode(&ev);
    must(json != NULL, "json encode", ev.event_id);
    rc = rs_codec_json_decode(json, strlen(json), &fromjson, err, sizeof(err));
    must(rc == 0, "json decode of an accepted Avro event", err);
    must(rs_event_hash(&fromjson) == h, "json round trip", json);
    free(json);
    rs_event_clear(&fromjson);
    rs_event_clear(&ev);
    return 0;
}
