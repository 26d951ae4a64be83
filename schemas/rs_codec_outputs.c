/*
 * rs_codec_outputs.c — the readers of balance snapshots and dead letters
 * (see rs_codec_outputs.h for the invariants).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_codec_outputs.h"
#include "rs_money.h"

typedef struct avro_reader_one {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    int have_value;
    rs_avro_checker_t *check;
} avro_reader_one_t;

struct rs_output_reader {
    avro_reader_one_t bal, dlq;
    json_t *doc;              /* the last JSON record */
    unsigned char *key, *val; /* base64-decoded bytes of the last JSON dead letter */
};

static int one_init(avro_reader_one_t *r, rs_avro_schema_kind_t kind, char *errstr,
                    size_t errlen)
{
    const char *json = rs_avro_schema_json(kind);
    if (json == NULL || avro_schema_from_json_length(json, strlen(json), &r->schema) != 0 ||
        (r->iface = avro_generic_class_from_schema(r->schema)) == NULL ||
        avro_generic_value_new(r->iface, &r->value) != 0) {
        snprintf(errstr, errlen, "%s schema: %s", rs_avro_schema_name(kind), avro_strerror());
        return -1;
    }
    r->have_value = 1;
    return rs_avro_checker_new(&r->check, r->schema, errstr, errlen);
}

static void one_free(avro_reader_one_t *r)
{
    if (r->have_value)
        avro_value_decref(&r->value);
    if (r->iface)
        avro_value_iface_decref(r->iface);
    if (r->schema)
        avro_schema_decref(r->schema);
    rs_avro_checker_destroy(r->check);
}

int rs_output_reader_new(rs_output_reader_t **out, char *errstr, size_t errlen)
{
    rs_output_reader_t *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (d == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    if (one_init(&d->bal, RS_AVRO_SCHEMA_DEFERRED_BALANCE, errstr, errlen) ||
        one_init(&d->dlq, RS_AVRO_SCHEMA_DEAD_LETTER, errstr, errlen)) {
        rs_output_reader_destroy(d);
        return -1;
    }
    *out = d;
    return 0;
}

static void reset_json(rs_output_reader_t *d)
{
    json_decref(d->doc);
    d->doc = NULL;
    free(d->key);
    free(d->val);
    d->key = d->val = NULL;
}

void rs_output_reader_destroy(rs_output_reader_t *d)
{
    if (d == NULL)
        return;
    one_free(&d->bal);
    one_free(&d->dlq);
    reset_json(d);
    free(d);
}

/* Check and read a framed Avro body into r->value. */
static int out_avro_read(avro_reader_one_t *r, const char *what, const void *buf, size_t len,
                         char *errstr, size_t errlen)
{
    char why[160];
    if (len < RS_AVRO_HEADER_SIZE || ((const unsigned char *)buf)[0] != RS_AVRO_MAGIC) {
        snprintf(errstr, errlen, "%s: not a Confluent-framed Avro record (%zu bytes)", what,
                 len);
        return -1;
    }
    if (rs_avro_checker_check(r->check, buf, len, why, sizeof why)) {
        snprintf(errstr, errlen, "%s: corrupt record: %s", what, why);
        return -1;
    }
    avro_reader_t rd = avro_reader_memory((const char *)buf + RS_AVRO_HEADER_SIZE,
                                          (int64_t)(len - RS_AVRO_HEADER_SIZE));
    avro_value_reset(&r->value);
    int bad = rd == NULL || avro_value_read(rd, &r->value) != 0;
    if (rd)
        avro_reader_free(rd);
    if (bad) {
        snprintf(errstr, errlen, "%s: undecodable record: %s", what, avro_strerror());
        return -1;
    }
    return 0;
}

/* A field, unions unwrapped; 0 or -1. */
static int av_field(avro_value_t *rec, const char *name, avro_value_t *f)
{
    if (avro_value_get_by_name(rec, name, f, NULL) != 0)
        return -1;
    if (avro_value_get_type(f) == AVRO_UNION) {
        avro_value_t b;
        if (avro_value_get_current_branch(f, &b) != 0)
            return -1;
        *f = b;
    }
    return 0;
}

/* String field (NULL for null). 0 or -1. */
static int av_str(avro_value_t *rec, const char *name, const char **out)
{
    avro_value_t f;
    size_t sz;
    *out = NULL;
    if (av_field(rec, name, &f))
        return -1;
    if (avro_value_get_type(&f) == AVRO_NULL)
        return 0;
    return avro_value_get_string(&f, out, &sz) ? -1 : 0;
}

static int av_long(avro_value_t *rec, const char *name, int64_t *out)
{
    avro_value_t f;
    int32_t i;
    if (av_field(rec, name, &f))
        return -1;
    if (avro_value_get_type(&f) == AVRO_INT32) {
        if (avro_value_get_int(&f, &i))
            return -1;
        *out = i;
        return 0;
    }
    return avro_value_get_long(&f, out) ? -1 : 0;
}

static int av_bytes(avro_value_t *rec, const char *name, const unsigned char **out, size_t *len)
{
    avro_value_t f;
    const void *p = NULL;
    *out = NULL;
    *len = 0;
    if (av_field(rec, name, &f))
        return -1;
    if (avro_value_get_type(&f) == AVRO_NULL)
        return 0;
    if (avro_value_get_bytes(&f, &p, len))
        return -1;
    *out = p;
    return 0;
}

/* A JSON string member (NULL for null or missing when optional). */
static int js_str(json_t *o, const char *name, int optional, const char **out)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return optional ? 0 : -1;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

static int js_money(json_t *o, const char *name, int exponent, int64_t *out)
{
    const char *s;
    rs_decimal_t d;
    char err[128];
    if (js_str(o, name, 0, &s) || rs_decimal_parse(s, &d, err, sizeof err) ||
        rs_decimal_to_minor(d, exponent, out, err, sizeof err))
        return -1;
    return 0;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 (padding optional) into a malloc'd buffer; NULL if bad. */
static unsigned char *b64decode(const char *s, size_t *len)
{
    size_t n = strlen(s), k = 0;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    unsigned acc = 0;
    int bits = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *len = k;
    return out;
}

/* Bytes member `name` or `name_base64`. */
static int js_bytes(rs_output_reader_t *d, json_t *o, const char *name, unsigned char **own,
                    const unsigned char **out, size_t *len)
{
    char b64name[32];
    const char *s;
    *out = NULL;
    *len = 0;
    if (js_str(o, name, 1, &s))
        return -1;
    if (s) {
        *out = (const unsigned char *)s;
        *len = json_string_length(json_object_get(o, name));
        return 0;
    }
    snprintf(b64name, sizeof b64name, "%s_base64", name);
    if (js_str(o, b64name, 1, &s))
        return -1;
    if (s == NULL)
        return 0;
    (void)d;
    *own = b64decode(s, len);
    *out = *own;
    return *own ? 0 : -1;
}

static int json_doc(rs_output_reader_t *d, const void *buf, size_t len, const char *what,
                    char *errstr, size_t errlen)
{
    json_error_t je;
    reset_json(d);
    d->doc = json_loadb(buf, len, 0, &je);
    if (d->doc == NULL || !json_is_object(d->doc)) {
        snprintf(errstr, errlen, "%s: bad JSON: %s", what, d->doc ? "not an object" : je.text);
        return -1;
    }
    return 0;
}

int rs_output_balance_decode(rs_output_reader_t *d, const void *buf, size_t len,
                             rs_output_balance_t *b, char *errstr, size_t errlen)
{
    const char *f = "snapshot_key";
    memset(b, 0, sizeof(*b));
    if (len > 0 && ((const char *)buf)[0] == '{') {
        json_t *o;
        json_t *ex;
        if (json_doc(d, buf, len, "balance", errstr, errlen))
            return -1;
        o = d->doc;
        ex = json_object_get(o, "exponent");
        if (js_str(o, f, 0, &b->snapshot_key) ||
            js_str(o, f = "contract_id", 0, &b->contract_id) ||
            js_str(o, f = "customer_id", 0, &b->customer_id) ||
            js_str(o, f = "scope", 0, &b->scope) || js_str(o, f = "line_id", 1, &b->line_id) ||
            js_str(o, f = "invoice_id", 1, &b->invoice_id) ||
            js_str(o, f = "currency", 0, &b->currency) ||
            js_str(o, f = "as_of_period", 0, &b->as_of_period) ||
            (f = "exponent", !json_is_integer(ex)) ||
            (b->exponent = (int)json_integer_value(ex), 0) ||
            js_money(o, f = "billed", b->exponent, &b->billed) ||
            js_money(o, f = "recognized", b->exponent, &b->recognized) ||
            js_money(o, f = "deferred", b->exponent, &b->deferred) ||
            js_money(o, f = "unbilled", b->exponent, &b->unbilled) ||
            js_money(o, f = "received", b->exponent, &b->received))
            goto bad;
        return 0;
    }
    if (out_avro_read(&d->bal, "balance", buf, len, errstr, errlen))
        return -1;
    avro_value_t *r = &d->bal.value;
    int64_t ex = 0;
    if (av_str(r, f, &b->snapshot_key) || av_str(r, f = "contract_id", &b->contract_id) ||
        av_str(r, f = "customer_id", &b->customer_id) || av_str(r, f = "scope", &b->scope) ||
        av_str(r, f = "line_id", &b->line_id) || av_str(r, f = "invoice_id", &b->invoice_id) ||
        av_str(r, f = "currency", &b->currency) ||
        av_str(r, f = "as_of_period", &b->as_of_period) || av_long(r, f = "exponent", &ex) ||
        av_long(r, f = "billed", &b->billed) || av_long(r, f = "recognized", &b->recognized) ||
        av_long(r, f = "deferred", &b->deferred) || av_long(r, f = "unbilled", &b->unbilled) ||
        av_long(r, f = "received", &b->received) || b->snapshot_key == NULL)
        goto bad;
    b->exponent = (int)ex;
    return 0;
bad:
    snprintf(errstr, errlen, "balance %s: %s: missing or invalid",
             b->snapshot_key ? b->snapshot_key : "?", f);
    return -1;
}

int rs_output_deadletter_decode(rs_output_reader_t *d, const void *buf, size_t len,
                                rs_output_deadletter_t *x, char *errstr, size_t errlen)
{
    const char *f = "topic";
    memset(x, 0, sizeof(*x));
    if (len > 0 && ((const char *)buf)[0] == '{') {
        json_t *o, *p, *off, *ts;
        if (json_doc(d, buf, len, "dead letter", errstr, errlen))
            return -1;
        o = d->doc;
        p = json_object_get(o, "partition");
        off = json_object_get(o, "offset");
        ts = json_object_get(o, "timestamp");
        if (js_str(o, f, 0, &x->topic) || js_str(o, f = "error", 0, &x->error) ||
            (f = "partition", !json_is_integer(p)) ||
            (f = "offset", !(json_is_integer(off) || json_is_null(off))) ||
            js_bytes(d, o, f = "key", &d->key, &x->key, &x->key_len) ||
            js_bytes(d, o, f = "value", &d->val, &x->value, &x->value_len))
            goto bad;
        x->partition = (int32_t)json_integer_value(p);
        x->offset = json_is_integer(off) ? json_integer_value(off) : -1;
        x->timestamp_ms = json_is_integer(ts) ? json_integer_value(ts) : 0;
        return 0;
    }
    if (out_avro_read(&d->dlq, "dead letter", buf, len, errstr, errlen))
        return -1;
    avro_value_t *r = &d->dlq.value;
    int64_t part = 0;
    if (av_str(r, f, &x->topic) || av_str(r, f = "error", &x->error) ||
        av_long(r, f = "partition", &part) || av_long(r, f = "offset", &x->offset) ||
        av_bytes(r, f = "key", &x->key, &x->key_len) ||
        av_bytes(r, f = "value", &x->value, &x->value_len) ||
        av_long(r, f = "timestamp", &x->timestamp_ms) || x->topic == NULL || x->error == NULL)
        goto bad;
    x->partition = (int32_t)part;
    if (x->offset < 0)
        x->offset = -1;
    return 0;
bad:
    snprintf(errstr, errlen, "dead letter: %s: missing or invalid", f);
    return -1;
}
