/*
 * rs_codec_entry.c — journal entries back from JSON: the reverse of
 * rs_codec_entry_json() and of rs_avro_encode_entry(), for tools that read the
 * journal topic (reports, tests) rather than write it.
 *
 * Invariants:
 *   - Accepts exactly the shape rs_codec_entry_json() writes (plus an
 *     optional "product"); decode(encode(e)) gives back every field the JSON
 *     carries, and the entry's sequence number from its id ("C-1#42" -> 42).
 *     A line's "account" is its code, "role" its role, "product" the
 *     entry's product; in the older shape, without "role", "account" is the
 *     role and the line has no code ("").
 *   - Avro records are read with their writer's schema (by the id in the
 *     header: added, looked up through the hook, or without a hook the
 *     compiled-in one), field by name, so every JournalEntry version reads;
 *     the fields a version lacks (code, product: version 2) read as "".
 *   - Amounts are parsed with the entry's currency exponent; an unknown
 *     currency, a bad amount or account, or too many postings or sources is
 *     an error naming the entry and the field.
 *   - Ownership: fills a caller-provided rs_entry_t; keeps nothing. A reader
 *     owns one schema, checker and value per writer id (at most
 *     READER_MAX_IDS + the compiled-in one).
 */
#include <avro.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_codec.h"

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int copy(char *dst, size_t cap, const char *src)
{
    if (src == NULL || strlen(src) >= cap)
        return -1;
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int money(json_t *o, const char *key, int exp, rs_money_t *out)
{
    rs_decimal_t d;
    char why[128];
    const char *s = str(o, key);
    return s == NULL || rs_decimal_parse(s, &d, why, sizeof(why)) ||
                   rs_decimal_to_minor(d, exp, out, why, sizeof(why))
               ? -1
               : 0;
}

static int account_from_name(const char *name, rs_account_t *out)
{
    for (int a = 0; a < RS_ACCT__COUNT; a++)
        if (name && strcmp(rs_account_name((rs_account_t)a), name) == 0) {
            *out = (rs_account_t)a;
            return 0;
        }
    return -1;
}

static int kind_from_name(const char *name, rs_entry_kind_t *out)
{
    for (int k = 0; k < RS_ENTRY__COUNT; k++)
        if (name && strcmp(rs_entry_kind_name((rs_entry_kind_t)k), name) == 0) {
            *out = (rs_entry_kind_t)k;
            return 0;
        }
    return -1;
}

int rs_codec_entry_from_json(const char *json, size_t len, rs_entry_t *e, char *errstr,
                             size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_loadb(json, len, 0, &jerr);
    const char *field = NULL;
    memset(e, 0, sizeof(*e));
    if (!json_is_object(o)) {
        snprintf(errstr, errlen, "entry ?: not a JSON object: %s", jerr.text);
        json_decref(o);
        return -1;
    }
#define NEED(cond, name)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            field = name;                                                                      \
            goto bad;                                                                          \
        }                                                                                      \
    } while (0)
    NEED(copy(e->entry_id, sizeof(e->entry_id), str(o, "entry_id")) == 0, "entry_id");
    const char *hash = strrchr(e->entry_id, '#');
    NEED(hash != NULL && hash[1] != '\0', "entry_id");
    e->seq = strtoull(hash + 1, NULL, 10);
    NEED(str(o, "posted_on") && rs_date_parse(str(o, "posted_on"), &e->posted_on) == 0,
         "posted_on");
    NEED(str(o, "period") && rs_period_parse(str(o, "period"), &e->period) == 0, "period");
    e->service_period = e->period;
    if (str(o, "service_period"))
        NEED(rs_period_parse(str(o, "service_period"), &e->service_period) == 0,
             "service_period");
    NEED(copy(e->contract_id, sizeof(e->contract_id), str(o, "contract_id")) == 0,
         "contract_id");
    NEED(copy(e->customer_id, sizeof(e->customer_id),
              str(o, "customer_id") ? str(o, "customer_id") : "") == 0,
         "customer_id");
    NEED(copy(e->line_id, sizeof(e->line_id), str(o, "line_id") ? str(o, "line_id") : "") == 0,
         "line_id");
    NEED(copy(e->document_id, sizeof(e->document_id),
              str(o, "document_id") ? str(o, "document_id") : "") == 0,
         "document_id");
    NEED(copy(e->product, sizeof(e->product), str(o, "product") ? str(o, "product") : "") == 0,
         "product");
    NEED(kind_from_name(str(o, "kind"), &e->kind) == 0, "kind");
    NEED(copy(e->rule, sizeof(e->rule), str(o, "rule") ? str(o, "rule") : "") == 0, "rule");
    NEED(copy(e->currency, sizeof(e->currency), str(o, "currency")) == 0, "currency");
    e->exponent = rs_currency_exponent(e->currency);
    NEED(e->exponent >= 0, "currency");
    json_t *lines = json_object_get(o, "lines");
    NEED(json_is_array(lines) && json_array_size(lines) <= RS_ENTRY_MAX_POSTINGS, "lines");
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *row = json_array_get(lines, i);
        rs_posting_t *p = &e->postings[i];
        /* "role" when a policy mapped "account" to a code */
        const char *role = str(row, "role") ? str(row, "role") : str(row, "account");
        NEED(json_is_object(row) && account_from_name(role, &p->account) == 0, "lines.account");
        /* without "role" (the older shape) "account" was the role: no code */
        if (str(row, "role") != NULL)
            NEED(copy(p->code, sizeof(p->code), str(row, "account")) == 0, "lines.account");
        if (e->product[0] == '\0' && str(row, "product") != NULL)
            NEED(copy(e->product, sizeof(e->product), str(row, "product")) == 0,
                 "lines.product");
        NEED(money(row, "debit", e->exponent, &p->debit) == 0 && p->debit >= 0, "lines.debit");
        NEED(money(row, "credit", e->exponent, &p->credit) == 0 && p->credit >= 0,
             "lines.credit");
        e->n_postings = (int)i + 1;
    }
    json_t *srcs = json_object_get(o, "source_event_ids");
    NEED(json_is_array(srcs) && json_array_size(srcs) <= RS_ENTRY_MAX_SOURCES,
         "source_event_ids");
    for (size_t i = 0; i < json_array_size(srcs); i++) {
        json_t *v = json_array_get(srcs, i);
        NEED(json_is_string(v) &&
                 copy(e->sources[i], sizeof(e->sources[i]), json_string_value(v)) == 0,
             "source_event_ids");
        e->n_sources = (int)i + 1;
    }
    json_t *sc = json_object_get(o, "source_count");
    e->source_count =
        json_is_integer(sc) ? (uint32_t)json_integer_value(sc) : (uint32_t)e->n_sources;
    NEED(money(o, "billed", e->exponent, &e->billed) == 0, "billed");
    NEED(money(o, "recognized", e->exponent, &e->recognized) == 0, "recognized");
    NEED(money(o, "received", e->exponent, &e->received) == 0, "received");
#undef NEED
    json_decref(o);
    return 0;
bad:
    snprintf(errstr, errlen, "entry %s: %s: missing or invalid",
             e->entry_id[0] ? e->entry_id : "?", field);
    json_decref(o);
    return -1;
}

/* ---- Avro (the worker's default output format) ---- */

#define READER_MAX_IDS 8

/* What the reader holds for one writer schema. Fields are read by name, so
 * any version of JournalEntry reads (the fields a version lacks read as
 * absent). */
typedef struct writer {
    int32_t id; /* -1: the compiled-in schema, for ids nothing else names */
    avro_schema_t schema;
    rs_avro_checker_t *check;
    avro_value_iface_t *iface;
    avro_value_t value;
    int have_value;
} writer_t;

struct rs_entry_reader {
    writer_t w[READER_MAX_IDS + 1]; /* w[0]: the compiled-in schema */
    int n;
    rs_avro_lookup_fn lookup;
    void *lookup_opaque;
};

static void writer_clear(writer_t *w)
{
    if (w->have_value)
        avro_value_decref(&w->value);
    if (w->iface)
        avro_value_iface_decref(w->iface);
    rs_avro_checker_destroy(w->check);
    if (w->schema)
        avro_schema_decref(w->schema);
    memset(w, 0, sizeof(*w));
}

static int writer_init(writer_t *w, int32_t id, const char *json, char *errstr, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    if (json == NULL || avro_schema_from_json_length(json, strlen(json), &w->schema) != 0 ||
        (w->iface = avro_generic_class_from_schema(w->schema)) == NULL ||
        avro_generic_value_new(w->iface, &w->value) != 0) {
        snprintf(errstr, errlen, "JournalEntry schema %d: %s", (int)id, avro_strerror());
        writer_clear(w);
        return -1;
    }
    w->have_value = 1;
    if (rs_avro_checker_new(&w->check, w->schema, errstr, errlen)) {
        writer_clear(w);
        return -1;
    }
    return 0;
}

int rs_entry_reader_new(rs_entry_reader_t **out, char *errstr, size_t errlen)
{
    rs_entry_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    if (writer_init(&r->w[0], -1, rs_avro_schema_json(RS_AVRO_SCHEMA_JOURNAL_ENTRY), errstr,
                    errlen) != 0) {
        free(r);
        return -1;
    }
    r->n = 1;
    *out = r;
    return 0;
}

void rs_entry_reader_set_lookup(rs_entry_reader_t *r, rs_avro_lookup_fn fn, void *opaque)
{
    r->lookup = fn;
    r->lookup_opaque = opaque;
}

int rs_entry_reader_add_schema(rs_entry_reader_t *r, int32_t id, const char *json, char *errstr,
                               size_t errlen)
{
    for (int i = 1; i < r->n; i++)
        if (r->w[i].id == id)
            return 0;
    if (r->n > READER_MAX_IDS) {
        snprintf(errstr, errlen, "JournalEntry schema %d: more than %d writer schemas", (int)id,
                 READER_MAX_IDS);
        return -1;
    }
    if (writer_init(&r->w[r->n], id, json, errstr, errlen) != 0)
        return -1;
    r->n++;
    return 0;
}

void rs_entry_reader_destroy(rs_entry_reader_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n; i++)
        writer_clear(&r->w[i]);
    free(r);
}

/* The writer of schema `id`: one added or looked up, else (no lookup hook)
 * the compiled-in schema. NULL with errstr set when the hook cannot find it. */
static writer_t *writer_for(rs_entry_reader_t *r, int32_t id, char *errstr, size_t errlen)
{
    for (int i = 1; i < r->n; i++)
        if (r->w[i].id == id)
            return &r->w[i];
    if (r->lookup == NULL)
        return &r->w[0];
    char *text = NULL, why[256];
    if (r->lookup(r->lookup_opaque, id, &text, why, sizeof why) != 0) {
        snprintf(errstr, errlen, "entry ?: unknown schema id %d: %s", (int)id, why);
        return NULL;
    }
    int rc = rs_entry_reader_add_schema(r, id, text, why, sizeof why);
    free(text);
    if (rc != 0) {
        snprintf(errstr, errlen, "entry ?: %s", why);
        return NULL;
    }
    return &r->w[r->n - 1];
}

static int av_str(avro_value_t *rec, const char *name, char *dst, size_t cap, int optional)
{
    avro_value_t f, b;
    const char *s = NULL;
    size_t n = 0;
    if (avro_value_get_by_name(rec, name, &f, NULL))
        return -1;
    if (avro_value_get_type(&f) == AVRO_UNION) {
        int disc;
        if (avro_value_get_discriminant(&f, &disc) || avro_value_get_current_branch(&f, &b))
            return -1;
        if (avro_value_get_type(&b) == AVRO_NULL) {
            dst[0] = '\0';
            return optional ? 0 : -1;
        }
        f = b;
    }
    if (avro_value_get_string(&f, &s, &n) || n == 0 || n > cap)
        return -1;
    memcpy(dst, s, n); /* n counts the NUL */
    dst[n - 1] = '\0';
    return 0;
}

/* An optional string a later schema version added: "" when the writer has
 * no such field or wrote null. */
static int av_added_str(avro_value_t *rec, const char *name, char *dst, size_t cap)
{
    avro_value_t f;
    dst[0] = '\0';
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0)
        return 0;
    return av_str(rec, name, dst, cap, 1);
}

static int av_long(avro_value_t *rec, const char *name, int64_t *out)
{
    avro_value_t f;
    return avro_value_get_by_name(rec, name, &f, NULL) || avro_value_get_long(&f, out) ? -1 : 0;
}

int rs_codec_entry_from_avro(rs_entry_reader_t *r, const void *buf, size_t len, rs_entry_t *e,
                             char *errstr, size_t errlen)
{
    const char *field = "record";
    char tmp[RS_NAME_MAX];
    int64_t v;
    memset(e, 0, sizeof(*e));
    if (len < 5 || len > (1u << 20) || ((const unsigned char *)buf)[0] != 0) {
        snprintf(errstr, errlen, "entry ?: not a Confluent-framed Avro record (%zu bytes)",
                 len);
        return -1;
    }
    char why[160];
    int32_t id = 0;
    (void)rs_avro_peek_id(buf, len, &id);
    writer_t *w = writer_for(r, id, errstr, errlen);
    if (w == NULL)
        return -1;
    if (rs_avro_checker_check(w->check, buf, len, why, sizeof(why))) {
        snprintf(errstr, errlen, "entry ?: corrupt JournalEntry: %s", why);
        return -1;
    }
    avro_reader_t rd = avro_reader_memory((const char *)buf + 5, (int64_t)(len - 5));
    avro_value_reset(&w->value);
    int bad = rd == NULL || avro_value_read(rd, &w->value) != 0;
    if (rd)
        avro_reader_free(rd);
    if (bad) {
        snprintf(errstr, errlen, "entry ?: undecodable JournalEntry: %s", avro_strerror());
        return -1;
    }
    avro_value_t *rec = &w->value;
#define NEED(cond, name)                                                                       \
    do {                                                                                       \
        field = name;                                                                          \
        if (!(cond))                                                                           \
            goto fail;                                                                         \
    } while (0)
    NEED(av_str(rec, "entry_id", e->entry_id, sizeof(e->entry_id), 0) == 0, "entry_id");
    NEED(av_long(rec, "seq", &v) == 0 && v >= 0, "seq");
    e->seq = (uint64_t)v;
    NEED(av_str(rec, "posted_on", tmp, sizeof(tmp), 0) == 0 &&
             rs_date_parse(tmp, &e->posted_on) == 0,
         "posted_on");
    NEED(av_str(rec, "period", tmp, sizeof(tmp), 0) == 0 &&
             rs_period_parse(tmp, &e->period) == 0,
         "period");
    NEED(av_str(rec, "service_period", tmp, sizeof(tmp), 0) == 0 &&
             rs_period_parse(tmp, &e->service_period) == 0,
         "service_period");
    NEED(av_str(rec, "kind", tmp, sizeof(tmp), 0) == 0 && kind_from_name(tmp, &e->kind) == 0,
         "kind");
    NEED(av_str(rec, "rule", e->rule, sizeof(e->rule), 1) == 0, "rule");
    NEED(av_str(rec, "contract_id", e->contract_id, sizeof(e->contract_id), 0) == 0,
         "contract_id");
    NEED(av_str(rec, "customer_id", e->customer_id, sizeof(e->customer_id), 1) == 0,
         "customer_id");
    NEED(av_str(rec, "line_id", e->line_id, sizeof(e->line_id), 1) == 0, "line_id");
    NEED(av_str(rec, "document_id", e->document_id, sizeof(e->document_id), 1) == 0,
         "document_id");
    NEED(av_str(rec, "currency", e->currency, sizeof(e->currency), 0) == 0, "currency");
    avro_value_t f, item, x;
    int32_t exp;
    NEED(avro_value_get_by_name(rec, "exponent", &f, NULL) == 0 &&
             avro_value_get_int(&f, &exp) == 0 && exp == rs_currency_exponent(e->currency),
         "exponent");
    e->exponent = exp;
    size_t n = 0;
    NEED(avro_value_get_by_name(rec, "lines", &f, NULL) == 0 &&
             avro_value_get_size(&f, &n) == 0 && n <= RS_ENTRY_MAX_POSTINGS,
         "lines");
    for (size_t i = 0; i < n; i++) {
        rs_posting_t *p = &e->postings[i];
        NEED(avro_value_get_by_index(&f, i, &item, NULL) == 0 &&
                 av_str(&item, "account", tmp, sizeof(tmp), 0) == 0 &&
                 account_from_name(tmp, &p->account) == 0,
             "lines.account");
        NEED(av_long(&item, "debit", &p->debit) == 0 && p->debit >= 0, "lines.debit");
        NEED(av_long(&item, "credit", &p->credit) == 0 && p->credit >= 0, "lines.credit");
        /* added in version 2: absent in older records */
        NEED(av_added_str(&item, "code", p->code, sizeof(p->code)) == 0, "lines.code");
        NEED(av_added_str(&item, "product", tmp, sizeof(tmp)) == 0, "lines.product");
        if (e->product[0] == '\0' && tmp[0] != '\0')
            NEED(copy(e->product, sizeof(e->product), tmp) == 0, "lines.product");
        e->n_postings = (int)i + 1;
    }
    NEED(avro_value_get_by_name(rec, "source_event_ids", &f, NULL) == 0 &&
             avro_value_get_size(&f, &n) == 0 && n <= RS_ENTRY_MAX_SOURCES,
         "source_event_ids");
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t sl;
        NEED(avro_value_get_by_index(&f, i, &x, NULL) == 0 &&
                 avro_value_get_string(&x, &s, &sl) == 0 && sl > 0 && sl <= RS_ID_MAX,
             "source_event_ids");
        memcpy(e->sources[i], s, sl);
        e->sources[i][sl - 1] = '\0';
        e->n_sources = (int)i + 1;
    }
    NEED(av_long(rec, "source_count", &v) == 0 && v >= 0, "source_count");
    e->source_count = (uint32_t)v;
    NEED(av_long(rec, "billed", &e->billed) == 0, "billed");
    NEED(av_long(rec, "recognized", &e->recognized) == 0, "recognized");
    NEED(av_long(rec, "received", &e->received) == 0, "received");
#undef NEED
    return 0;
fail:
    snprintf(errstr, errlen, "entry %s: %s: missing or invalid",
             e->entry_id[0] ? e->entry_id : "?", field);
    return -1;
}
