/*
 * fuzz_codec_encode — libFuzzer target for the writers of the worker's
 * outputs: rs_avro_encode_entry() and rs_avro_encode_balance(), the direct
 * writer (rs_avro_direct.c, on in `cache`) against the generic path (Avro
 * C's generic value, `generic`). Built by CMake with RS_FUZZ=ON
 * (tests/fuzz/CMakeLists.txt); from the repository root,
 *
 *   make fuzz                       # every target, FUZZ_SECONDS (30) each
 *   build-fuzz/fuzz_codec_encode -max_total_time=60 -max_len=4096 \
 *     build-fuzz/fuzz-corpus/fuzz_codec_encode tests/fuzz/corpus/fuzz_codec_encode
 *
 * Input: byte 0 picks a journal entry or a balance snapshot and its writer
 * schema (IDS below: our own, a union with the other record first, one with
 * a field revstream does not know, one whose strings may be null first);
 * the rest fills the record field by field (a missing byte reads as 0):
 * strings of any length up to their field (or, for 0xff, the whole field
 * without a NUL), days and months near and far from today or absent,
 * kinds, accounts and scopes out of range, posting and source counts over
 * the limit, amounts anywhere in int64.
 *
 * Property checked (abort() on violation, besides the sanitizers): both
 * writers give the same status, and the same bytes or the same error text.
 * Consecutive inputs share the caches, as the worker's messages do (the
 * direct writer's memo of days and months carries over).
 *
 * Invariants: the caches are built once (LLVMFuzzerInitialize) and reused
 * for every input; each input frees what it allocates.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"

static rs_avro_cache_t *cache, *generic;

/* Writer ids: journal entries 1-4, balances 5-8 (see LLVMFuzzerInitialize). */
#define N_WRITERS 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int ok, const char *what, const char *err)
{
    if (!ok) {
        fprintf(stderr, "fuzz_codec_encode: %s: %s\n", what, err);
        abort();
    }
}

static void free_caches(void)
{
    rs_avro_cache_destroy(cache);
    rs_avro_cache_destroy(generic);
    cache = generic = NULL;
}

/* `s` with its first `from` replaced by `to` (malloc'd). */
static char *subst(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    must(at != NULL, "subst", from);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    must(o != NULL, "subst", "out of memory");
    snprintf(o, n, "%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
    return o;
}

static void add(int32_t id, const char *text)
{
    char err[512];
    must(rs_avro_cache_add(cache, id, text, err, sizeof err) == RS_AVRO_OK, "add", err);
    must(rs_avro_cache_add(generic, id, text, err, sizeof err) == RS_AVRO_OK, "add", err);
}

/* The four writers of record `self` (other: the record it is put in a union
 * with): itself, [other, self], a field it does not know, and `nullable`
 * (a string field) as ["null","string"] made ["string","null"]. */
static void add_writers(int32_t first, const char *self, const char *other, const char *after,
                        const char *nullable)
{
    size_t n = strlen(self) + strlen(other) + 4;
    char *un = malloc(n);
    must(un != NULL, "union", "out of memory");
    snprintf(un, n, "[%s,%s]", other, self);
    char note[128];
    snprintf(note, sizeof note,
             "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},%s", after);
    char *extra = subst(self, after, note);
    char *flip = subst(self, nullable, "[\"string\",\"null\"]");
    add(first, self);
    add(first + 1, un);
    add(first + 2, extra);
    add(first + 3, flip);
    free(un);
    free(extra);
    free(flip);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    (void)argc;
    (void)argv;
    must(rs_avro_cache_new(&cache, err, sizeof err) == RS_AVRO_OK, "cache", err);
    must(rs_avro_cache_new(&generic, err, sizeof err) == RS_AVRO_OK, "cache", err);
    rs_avro_cache_set_direct(generic, 0);
    const char *je = rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY);
    const char *db = rs_avro_schema_json(RS_AVRO_SCHEMA_DEFERRED_BALANCE);
    add_writers(1, je, db, "{\"name\":\"seq\"", "[\"null\",\"string\"]");
    add_writers(1 + N_WRITERS, db, je, "{\"name\":\"scope\"", "[\"null\",\"string\"]");
    atexit(free_caches);
    return 0;
}

typedef struct in {
    const uint8_t *p;
    size_t n;
} in_t;

static uint8_t u8(in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint64_t u64(in_t *in, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | u8(in);
    return v;
}

/* A string into dst[cap]: 0xff fills it without a NUL; else that many
 * bytes (mod cap) from the input. */
static void str(in_t *in, char *dst, size_t cap)
{
    uint8_t len = u8(in);
    if (len == 0xff) {
        memset(dst, 'x', cap);
        return;
    }
    size_t n = len % cap;
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)u8(in);
    dst[n] = '\0';
}

/* A day within ~700 years of 1970, or none. */
static rs_date_t day(in_t *in)
{
    int16_t d = (int16_t)u64(in, 2);
    return d == INT16_MIN ? RS_DATE_NONE : (rs_date_t)d * 8;
}

/* A month of years -2730..2730 (negative ones print as snprintf does), or
 * none; small values repeat so the memo is hit. */
static rs_period_t month(in_t *in)
{
    int16_t p = (int16_t)u64(in, 2);
    return p == INT16_MIN ? RS_PERIOD_NONE : (rs_period_t)p;
}

/* Both writers: the same status, and the same bytes or error text. */
static void same(int32_t id, const rs_entry_t *e, const rs_avro_balance_t *b)
{
    char e1[512], e2[512];
    void *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    int r1, r2;
    if (e != NULL) {
        r1 = rs_avro_encode_entry(cache, id, e, &b1, &l1, e1, sizeof e1);
        r2 = rs_avro_encode_entry(generic, id, e, &b2, &l2, e2, sizeof e2);
    } else {
        r1 = rs_avro_encode_balance(cache, id, b, &b1, &l1, e1, sizeof e1);
        r2 = rs_avro_encode_balance(generic, id, b, &b2, &l2, e2, sizeof e2);
    }
    must(r1 == r2, "status", r1 == RS_AVRO_OK ? e2 : e1);
    if (r1 == RS_AVRO_OK)
        must(l1 == l2 && memcmp(b1, b2, l1) == 0, "bytes", "the writers differ");
    else
        must(strcmp(e1, e2) == 0, "error text", e1);
    free(b1);
    free(b2);
}

static void entry(in_t *in, int32_t id)
{
    static rs_entry_t e; /* large: not on the stack */
    memset(&e, 0, sizeof e);
    str(in, e.entry_id, sizeof e.entry_id);
    e.seq = u64(in, 8);
    e.posted_on = day(in);
    e.period = month(in);
    e.service_period = u8(in) & 1 ? e.period : month(in);
    e.kind = (rs_entry_kind_t)(int8_t)u8(in);
    str(in, e.rule, sizeof e.rule);
    str(in, e.contract_id, sizeof e.contract_id);
    str(in, e.customer_id, sizeof e.customer_id);
    str(in, e.line_id, sizeof e.line_id);
    str(in, e.document_id, sizeof e.document_id);
    str(in, e.product, sizeof e.product);
    str(in, e.currency, sizeof e.currency);
    e.exponent = (int8_t)u8(in);
    e.n_postings = u8(in) % (RS_ENTRY_MAX_POSTINGS + 2);
    for (int i = 0; i < e.n_postings && i < RS_ENTRY_MAX_POSTINGS; i++) {
        e.postings[i].account = (rs_account_t)(int8_t)u8(in);
        e.postings[i].debit = (int64_t)u64(in, 8);
        e.postings[i].credit = (int64_t)u64(in, u8(in) % 9);
        str(in, e.postings[i].code, sizeof e.postings[i].code);
    }
    e.n_sources = u8(in) % (RS_ENTRY_MAX_SOURCES + 2);
    for (int i = 0; i < e.n_sources && i < RS_ENTRY_MAX_SOURCES; i++)
        str(in, e.sources[i], sizeof e.sources[i]);
    e.source_count = (uint32_t)u64(in, 4);
    e.billed = (int64_t)u64(in, 8);
    e.recognized = (int64_t)u64(in, u8(in) % 9);
    e.received = (int64_t)u64(in, 3);
    same(id, &e, NULL);
}

static void balance(in_t *in, int32_t id)
{
    char s[6][64];
    rs_avro_balance_t b;
    memset(&b, 0, sizeof b);
    uint8_t nulls = u8(in); /* bit k: string k is NULL */
    for (int k = 0; k < 6; k++) {
        str(in, s[k], sizeof s[k] - 1);
        s[k][sizeof s[k] - 1] = '\0';
    }
    b.snapshot_key = nulls & 1 ? NULL : s[0];
    b.contract_id = nulls & 2 ? NULL : s[1];
    b.customer_id = nulls & 4 ? NULL : s[2];
    b.line_id = nulls & 8 ? NULL : s[3];
    b.invoice_id = nulls & 16 ? NULL : s[4];
    b.currency = nulls & 32 ? NULL : s[5];
    b.scope = (rs_avro_scope_t)(u8(in) % 5);
    b.exponent = (int8_t)u8(in);
    b.billed = (int64_t)u64(in, 8);
    b.recognized = (int64_t)u64(in, u8(in) % 9);
    b.deferred = (int64_t)u64(in, 2);
    b.unbilled = (int64_t)u64(in, 8);
    b.received = (int64_t)u64(in, 1);
    b.as_of_period = month(in);
    same(id, NULL, &b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_t in = {data, size};
    uint8_t sel = u8(&in);
    int32_t writer = 1 + (sel >> 1) % N_WRITERS;
    if (sel & 1)
        balance(&in, N_WRITERS + writer);
    else
        entry(&in, writer);
    return 0;
}
