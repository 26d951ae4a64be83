/*
 * rs_avro_encode.c — revstream's values -> Confluent wire-format messages:
 * events (rs_avro_encode_event), journal entries, balance snapshots and dead
 * letters, each written into the entry's one generic value of the writer
 * schema and serialised after the 5-byte header.
 *
 * Invariants:
 *   - The writer schema decides the shape: a field is found through the
 *     entry's layout (never by name per message), a union field gets the
 *     branch of the value's type, and writer fields revstream does not know
 *     are set to null (prepare_encode refuses a writer with such a field
 *     that cannot be null, naming it).
 *   - A value revstream has needs a writer field for it (ESCHEMA naming the
 *     record and field otherwise); an absent value is null, or nothing when
 *     the writer lacks the field. Values a later schema version added
 *     (JournalLine.code, .product) are left out for a writer without them.
 *   - The writer value is reset before every message; the output buffer is
 *     malloc'd whole (header + body) and handed to the caller only on
 *     success. A message over RS_AVRO_MAX_MESSAGE bytes is EINVALID.
 *   - Journal entries and balance snapshots go through rs_avro_direct.c
 *     first (the same bytes without the generic value); this file's path
 *     runs when that one declines (rs_avro_cache_set_direct(c, 0), or a
 *     value or shape it leaves to this path, which gives the error).
 */
#include "rs_avro.h"

#include <avro.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro_internal.h"
#include "rs_bytes.h"
#include "rs_codec.h"
#include "rs_codec_fields.h"

/* ------------------------------------------------------------------------ */
/* The encoding side of an entry                                            */
/* ------------------------------------------------------------------------ */

/* Find (kind -> record schema) in `s`, the records the layout saw. */
static void record_schemas(avro_schema_t s, avro_schema_t out[RS_RK__COUNT], int depth)
{
    if (s == NULL || depth > RS_AVRO_MAX_DEPTH)
        return;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        int k = rs_codec_record_kind(avro_schema_name(s));
        if (k >= 0) {
            if (out[k] != NULL)
                return;
            out[k] = s;
        }
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++)
            record_schemas(avro_schema_record_field_get_by_index(s, (int)i), out, depth + 1);
        break;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n; i++)
            record_schemas(avro_schema_union_branch(s, (int)i), out, depth + 1);
        break;
    }
    case AVRO_ARRAY:
        record_schemas(avro_schema_array_items(s), out, depth + 1);
        break;
    case AVRO_MAP:
        record_schemas(avro_schema_map_values(s), out, depth + 1);
        break;
    default:
        break;
    }
}

/* Does union schema `s` have a null branch? */
static int has_null_branch(avro_schema_t s)
{
    if (avro_typeof(s) != AVRO_UNION)
        return 0;
    size_t n = avro_schema_union_size(s);
    for (size_t i = 0; i < n; i++)
        if (is_avro_null(avro_schema_union_branch(s, (int)i)))
            return 1;
    return 0;
}

static int known_slot(int rk, const char *name)
{
    for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[rk][j] != NULL; j++)
        if (strcmp(rs_codec_field_name[rk][j], name) == 0)
            return 1;
    return 0;
}

/* Build the encoding side of `e` (once): prepare_encode below. */
static int build_encode(rs_avro_entry_t *e, char *errstr, size_t errlen)
{
    char msg[512];
    avro_schema_t recs[RS_RK__COUNT] = {0};

    if (e->enc_state == -1) {
        snprintf(errstr, errlen, "%s", e->enc_error ? e->enc_error : "schema unusable");
        return RS_AVRO_ESCHEMA;
    }
    rs_avro_layout_build(&e->wlay, e->wschema);
    record_schemas(e->wschema, recs, 0);
    for (int k = 0; k < RS_RK__COUNT; k++) {
        if (recs[k] == NULL)
            continue;
        size_t n = avro_schema_record_size(recs[k]);
        for (size_t i = 0; i < n; i++) {
            const char *fname = avro_schema_record_field_name(recs[k], (int)i);
            if (known_slot(k, fname))
                continue;
            if (i >= 64 ||
                !has_null_branch(avro_schema_record_field_get_by_index(recs[k], (int)i))) {
                snprintf(msg, sizeof(msg),
                         "schema id %d: field %s.%s is not one revstream writes and cannot be "
                         "null",
                         (int)e->id, rs_codec_record_name[k], fname);
                goto fail;
            }
            e->nullmask[k] |= (uint64_t)1 << i;
        }
    }
    e->wclass = avro_generic_class_from_schema(e->wschema);
    if (e->wclass == NULL || avro_generic_value_new(e->wclass, &e->wvalue) != 0) {
        e->wvalue.self = NULL;
        snprintf(msg, sizeof(msg), "schema id %d: cannot build a writer: %s", (int)e->id,
                 rs_avro_why());
        goto fail;
    }
    e->enc_state = 1;
    return RS_AVRO_OK;
fail:
    snprintf(errstr, errlen, "%s", msg);
    return rs_avro_remember_error(&e->enc_error, &e->enc_state, msg);
}

/* The encoding side of `e`, built on first use (every message asks). */
static inline int prepare_encode(rs_avro_entry_t *e, char *errstr, size_t errlen)
{
    return e->enc_state == 1 ? RS_AVRO_OK : build_encode(e, errstr, errlen);
}

typedef struct enc {
    rs_avro_entry_t *e;
    char *errstr;
    size_t errlen;
    int status;
} enc_t;

/* A writer record value of a known kind. */
typedef struct wrec {
    avro_value_t v;
    int rk;
} wrec_t;

static void efail_set(enc_t *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record why the encode fails: the message in x->errstr, the status. */
static void efail_set(enc_t *x, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->errstr, x->errlen, fmt, ap);
    va_end(ap);
    x->status = status;
}

/* Fail the encode: record the error; the expression is -1. A macro so that
 * the -1 is visible at the return: the static analyzer does not inline
 * variadic calls, so through an int-returning function it would assume a
 * failed lookup (writer field, union branch, array item) may return >= 0
 * and its caller go on to use the value never written. */
#define EFAIL(x, status, ...) (efail_set((x), (status), __VA_ARGS__), -1)

static const char *type_word(avro_type_t t)
{
    switch (t) {
    case AVRO_STRING:
        return "string";
    case AVRO_BYTES:
        return "bytes";
    case AVRO_INT32:
        return "int";
    case AVRO_INT64:
        return "long";
    case AVRO_NULL:
        return "null";
    case AVRO_ARRAY:
        return "array";
    case AVRO_RECORD:
        return "record";
    default:
        return "value";
    }
}

/* Make `f` hold a value of type t (for records: named rname), choosing the
 * union branch when f is a union. */
static int wselect(enc_t *x, const wrec_t *r, int slot, avro_value_t *f, avro_type_t t,
                   const char *rname, avro_value_t *out)
{
    avro_type_t ft = avro_value_get_type(f);
    if (ft == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(f);
        size_t n = avro_schema_union_size(us);
        for (size_t i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(us, (int)i);
            while (b != NULL && avro_typeof(b) == AVRO_LINK)
                b = avro_schema_link_target(b);
            if (b == NULL || avro_typeof(b) != t ||
                (rname != NULL && strcmp(avro_schema_name(b), rname) != 0))
                continue;
            if (avro_value_set_branch(f, (int)i, out) != 0)
                return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d: %s.%s: %s", (int)x->e->id,
                             rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot],
                             rs_avro_why());
            return 0;
        }
    } else if (ft == t) {
        *out = *f;
        return 0;
    }
    return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d: field %s.%s cannot hold a %s",
                 (int)x->e->id, rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot],
                 type_word(t));
}

/* The writer's field for `slot`: 1 found, 0 the writer lacks it. */
static int wfield(enc_t *x, const wrec_t *r, int slot, avro_value_t *out)
{
    int idx = (int)x->e->wlay.idx[r->rk][slot]; /* signed: -1 is "no such field" */
    return idx >= 0 && avro_value_get_by_index(&r->v, (size_t)idx, out, NULL) == 0;
}

/* A field for a value we have: the writer must have it. */
static int wneed(enc_t *x, const wrec_t *r, int slot, avro_type_t t, const char *rname,
                 avro_value_t *out)
{
    avro_value_t f;
    if (!wfield(x, r, slot, &f))
        return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d: record %s has no field %s",
                     (int)x->e->id, rs_codec_record_name[r->rk],
                     rs_codec_field_name[r->rk][slot]);
    return wselect(x, r, slot, &f, t, rname, out);
}

/* An absent value: null if the writer has the field. */
static int put_null(enc_t *x, const wrec_t *r, int slot)
{
    avro_value_t f, b;
    if (!wfield(x, r, slot, &f))
        return 0;
    if (wselect(x, r, slot, &f, AVRO_NULL, NULL, &b) < 0)
        return -1;
    return avro_value_set_null(&b) == 0 ? 0 : EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
}

/* Start a record: every writer field we do not know becomes null. */
static int rec_begin(enc_t *x, const wrec_t *r)
{
    uint64_t mask = x->e->nullmask[r->rk];
    for (int i = 0; mask != 0 && i < 64; i++) {
        if ((mask & ((uint64_t)1 << i)) == 0)
            continue;
        mask &= ~((uint64_t)1 << i);
        avro_value_t f, b;
        if (avro_value_get_by_index(&r->v, (size_t)i, &f, NULL) != 0)
            continue;
        if (avro_value_get_type(&f) == AVRO_UNION) {
            avro_schema_t us = avro_value_get_schema(&f);
            size_t n = avro_schema_union_size(us);
            for (size_t k = 0; k < n; k++)
                if (is_avro_null(avro_schema_union_branch(us, (int)k))) {
                    if (avro_value_set_branch(&f, (int)k, &b) != 0 ||
                        avro_value_set_null(&b) != 0)
                        return EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
                    break;
                }
        }
    }
    return 0;
}

static int put_str(enc_t *x, const wrec_t *r, int slot, const char *s)
{
    avro_value_t v;
    if (s == NULL)
        return put_null(x, r, slot);
    if (wneed(x, r, slot, AVRO_STRING, NULL, &v) < 0)
        return -1;
    return avro_value_set_string(&v, s) == 0 ? 0 : EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
}

/* A fixed-size char field, NUL-terminated within its size. */
static int put_field(enc_t *x, const wrec_t *r, int slot, const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        return EFAIL(x, RS_AVRO_EINVALID, "%s.%s: not NUL-terminated",
                     rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot]);
    return put_str(x, r, slot, s);
}

#define PUT_FIELD(x, r, slot, field) put_field((x), (r), (slot), (field), sizeof(field))

/* An optional id: "" is null. */
static int put_opt_field(enc_t *x, const wrec_t *r, int slot, const char *s, size_t cap)
{
    if (s[0] == '\0')
        return put_null(x, r, slot);
    return put_field(x, r, slot, s, cap);
}

/* A value added to a record by a later schema version: written when the
 * writer has the field (a string, or null for ""), left out when it has not,
 * so an older writer schema still encodes. */
static int put_added_field(enc_t *x, const wrec_t *r, int slot, const char *s, size_t cap)
{
    avro_value_t f;
    if (!wfield(x, r, slot, &f))
        return 0;
    return put_opt_field(x, r, slot, s, cap);
}

static int put_long(enc_t *x, const wrec_t *r, int slot, int64_t n)
{
    avro_value_t v;
    if (wneed(x, r, slot, AVRO_INT64, NULL, &v) < 0)
        return -1;
    return avro_value_set_long(&v, n) == 0 ? 0 : EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
}

static int put_int(enc_t *x, const wrec_t *r, int slot, int32_t n)
{
    avro_value_t v;
    if (wneed(x, r, slot, AVRO_INT32, NULL, &v) < 0)
        return -1;
    return avro_value_set_int(&v, n) == 0 ? 0 : EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
}

static int put_bytes(enc_t *x, const wrec_t *r, int slot, const void *p, size_t n)
{
    avro_value_t v;
    if (p == NULL)
        return put_null(x, r, slot);
    if (wneed(x, r, slot, AVRO_BYTES, NULL, &v) < 0)
        return -1;
    return avro_value_set_bytes(&v, (void *)p, n) == 0
               ? 0
               : EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
}

static int put_date(enc_t *x, const wrec_t *r, int slot, rs_date_t day)
{
    char buf[32];
    if (day == RS_DATE_NONE)
        return put_null(x, r, slot);
    return put_str(x, r, slot, rs_date_format(day, buf, sizeof(buf)));
}

static int put_period(enc_t *x, const wrec_t *r, int slot, rs_period_t p)
{
    char buf[32];
    if (p == RS_PERIOD_NONE)
        return put_null(x, r, slot);
    return put_str(x, r, slot, rs_period_format(p, buf, sizeof(buf)));
}

static int put_dec(enc_t *x, const wrec_t *r, int slot, rs_decimal_t d)
{
    char buf[48];
    if (rs_decimal_format(d, buf, sizeof(buf)) == NULL)
        return EFAIL(x, RS_AVRO_EINVALID, "%s.%s: decimal scale %d out of range",
                     rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot], d.scale);
    return put_str(x, r, slot, buf);
}

static int put_name(enc_t *x, const wrec_t *r, int slot, const char *name)
{
    if (name == NULL)
        return EFAIL(x, RS_AVRO_EINVALID, "%s.%s: no such value", rs_codec_record_name[r->rk],
                     rs_codec_field_name[r->rk][slot]);
    return put_str(x, r, slot, name);
}

/* Append a record of kind rk to the array in field `slot`. */
static int put_array(enc_t *x, const wrec_t *r, int slot, avro_value_t *arr)
{
    return wneed(x, r, slot, AVRO_ARRAY, NULL, arr);
}

static int append_rec(enc_t *x, avro_value_t *arr, int rk, wrec_t *out)
{
    out->rk = rk;
    if (avro_value_append(arr, &out->v, NULL) != 0)
        return EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
    if (avro_value_get_type(&out->v) != AVRO_RECORD ||
        strcmp(avro_schema_name(avro_value_get_schema(&out->v)), rs_codec_record_name[rk]) != 0)
        return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d: array items are not %s records",
                     (int)x->e->id, rs_codec_record_name[rk]);
    return rec_begin(x, out);
}

/* The top-level record of kind rk in the writer value. */
static int top_record(enc_t *x, int rk, wrec_t *out)
{
    avro_value_t *top = &x->e->wvalue;
    out->rk = rk;
    if (avro_value_get_type(top) == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(top);
        size_t n = avro_schema_union_size(us);
        for (size_t i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(us, (int)i);
            if (is_avro_record(b) &&
                strcmp(avro_schema_name(b), rs_codec_record_name[rk]) == 0) {
                if (avro_value_set_branch(top, (int)i, &out->v) != 0)
                    return EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
                return rec_begin(x, out);
            }
        }
    } else if (avro_value_get_type(top) == AVRO_RECORD &&
               strcmp(avro_schema_name(avro_value_get_schema(top)), rs_codec_record_name[rk]) ==
                   0) {
        out->v = *top;
        return rec_begin(x, out);
    }
    return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d has no record io.revstream.%s",
                 (int)x->e->id, rs_codec_record_name[rk]);
}

/* Serialise the writer value with the Confluent header. */
static int finish(rs_avro_cache_t *c, enc_t *x, void **buf, size_t *len)
{
    size_t size = 0;
    if (avro_value_sizeof(&x->e->wvalue, &size) != 0)
        return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d: cannot encode: %s", (int)x->e->id,
                     rs_avro_why());
    if (size > RS_AVRO_MAX_MESSAGE - RS_AVRO_HEADER_SIZE)
        return EFAIL(x, RS_AVRO_EINVALID, "record of %zu bytes is over the %d-byte limit", size,
                     RS_AVRO_MAX_MESSAGE);
    uint8_t *out = malloc(RS_AVRO_HEADER_SIZE + size + 1);
    if (out == NULL)
        return EFAIL(x, RS_AVRO_ENOMEM, "out of memory");
    out[0] = RS_AVRO_MAGIC;
    rs_put_be32(out + 1, (uint32_t)x->e->id);
    avro_writer_memory_set_dest(c->writer, (const char *)out + RS_AVRO_HEADER_SIZE,
                                (int64_t)size + 1);
    if (avro_value_write(c->writer, &x->e->wvalue) != 0 ||
        (size_t)avro_writer_tell(c->writer) != size) {
        free(out);
        return EFAIL(x, RS_AVRO_ESCHEMA, "schema id %d: cannot encode: %s", (int)x->e->id,
                     rs_avro_why());
    }
    *buf = out;
    *len = RS_AVRO_HEADER_SIZE + size;
    return 0;
}

/* Look up and prepare the writer for `id` (an error is what begin_encode
 * would return), then write directly (rs_avro_direct.c). RS_AVRO_OK with
 * *buf set; *direct = 0 when the generic path must run. */
static int try_direct(rs_avro_cache_t *c, int32_t id, const rs_entry_t *entry,
                      const rs_avro_balance_t *bal, void **buf, size_t *len, int *direct,
                      char *errstr, size_t errlen)
{
    rs_avro_entry_t *ent;
    int rc;
    *direct = 0;
    if (c->generic_only)
        return RS_AVRO_OK;
    if ((rc = rs_avro_entry_get(c, id, &ent, errstr, errlen)) != RS_AVRO_OK ||
        (rc = prepare_encode(ent, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    *direct = (entry != NULL ? rs_avro_direct_entry(c, ent, entry, buf, len)
                             : rs_avro_direct_balance(c, ent, bal, buf, len)) == 0;
    return RS_AVRO_OK;
}

/* Look up and prepare the writer for `id`, and reset its value. */
static int begin_encode(rs_avro_cache_t *c, int32_t id, enc_t *x, char *errstr, size_t errlen)
{
    int rc;
    x->errstr = errstr;
    x->errlen = errlen;
    x->status = RS_AVRO_OK;
    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    if ((rc = rs_avro_entry_get(c, id, &x->e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if ((rc = prepare_encode(x->e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (avro_value_reset(&x->e->wvalue) != 0) {
        snprintf(errstr, errlen, "schema id %d: %s", (int)id, rs_avro_why());
        return RS_AVRO_ESCHEMA;
    }
    return RS_AVRO_OK;
}

static int put_contract_lines(enc_t *x, const wrec_t *r, int slot, const rs_event_t *ev)
{
    avro_value_t arr;
    if (put_array(x, r, slot, &arr) < 0)
        return -1;
    for (int i = 0; i < ev->n_lines; i++) {
        const rs_line_spec_t *l = &ev->lines[i];
        wrec_t o;
        if (append_rec(x, &arr, RS_RK_CONTRACT_LINE, &o) < 0 ||
            PUT_FIELD(x, &o, RS_F_CL_LINE_ID, l->line_id) < 0 ||
            PUT_FIELD(x, &o, RS_F_CL_PRODUCT, l->product) < 0 ||
            put_name(x, &o, RS_F_CL_RECOGNITION, rs_method_name(l->recognition)) < 0 ||
            put_date(x, &o, RS_F_CL_START, l->start) < 0 ||
            put_date(x, &o, RS_F_CL_END, l->end) < 0 ||
            put_dec(x, &o, RS_F_CL_AMOUNT, l->amount) < 0)
            return -1;
        if ((l->has_ssp ? put_dec(x, &o, RS_F_CL_SSP, l->ssp) : put_null(x, &o, RS_F_CL_SSP)) <
                0 ||
            (l->has_unit_price ? put_dec(x, &o, RS_F_CL_UNIT_PRICE, l->unit_price)
                               : put_null(x, &o, RS_F_CL_UNIT_PRICE)) < 0)
            return -1;
        if (l->n_milestones == 0) {
            if (put_null(x, &o, RS_F_CL_MILESTONES) < 0)
                return -1;
            continue;
        }
        avro_value_t ms;
        if (put_array(x, &o, RS_F_CL_MILESTONES, &ms) < 0)
            return -1;
        for (int j = 0; j < l->n_milestones; j++) {
            wrec_t m;
            if (append_rec(x, &ms, RS_RK_MILESTONE, &m) < 0 ||
                PUT_FIELD(x, &m, RS_F_MS_MILESTONE_ID, l->milestones[j].milestone_id) < 0 ||
                put_dec(x, &m, RS_F_MS_AMOUNT, l->milestones[j].amount) < 0)
                return -1;
        }
    }
    return 0;
}

static int put_bill_lines(enc_t *x, const wrec_t *r, int slot, const rs_event_t *ev, int credit)
{
    avro_value_t arr;
    if (put_array(x, r, slot, &arr) < 0)
        return -1;
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        wrec_t o;
        if (append_rec(x, &arr, credit ? RS_RK_CREDIT_NOTE_LINE : RS_RK_INVOICE_LINE, &o) < 0 ||
            PUT_FIELD(x, &o, RS_F_IL_LINE_ID, b->line_id) < 0 ||
            put_dec(x, &o, RS_F_IL_AMOUNT, b->amount) < 0 ||
            (b->has_tax ? put_dec(x, &o, RS_F_IL_TAX, b->tax) : put_null(x, &o, RS_F_IL_TAX)) <
                0)
            return -1;
        if (!credit && (put_date(x, &o, RS_F_IL_SERVICE_START, b->service_start) < 0 ||
                        put_date(x, &o, RS_F_IL_SERVICE_END, b->service_end) < 0))
            return -1;
    }
    return 0;
}

static int encode_body(enc_t *x, const wrec_t *r, const rs_event_t *ev)
{
    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        if (PUT_FIELD(x, r, RS_F_CB_CUSTOMER_ID, ev->customer_id) < 0 ||
            PUT_FIELD(x, r, RS_F_CB_CURRENCY, ev->currency) < 0 ||
            put_date(x, r, RS_F_CB_BOOKED_ON, ev->booked_on) < 0)
            return -1;
        if (ev->source_system[0] != '\0' || ev->source_record_id[0] != '\0') {
            avro_value_t sv;
            wrec_t src = {{0}, RS_RK_SOURCE};
            if (wneed(x, r, RS_F_CB_SOURCE, AVRO_RECORD, rs_codec_record_name[RS_RK_SOURCE],
                      &sv) < 0)
                return -1;
            src.v = sv;
            if (rec_begin(x, &src) < 0 ||
                PUT_FIELD(x, &src, RS_F_SR_SYSTEM, ev->source_system) < 0 ||
                PUT_FIELD(x, &src, RS_F_SR_RECORD_ID, ev->source_record_id) < 0)
                return -1;
        } else if (put_null(x, r, RS_F_CB_SOURCE) < 0) {
            return -1;
        }
        return put_contract_lines(x, r, RS_F_CB_LINES, ev);
    case RS_EV_CONTRACT_AMENDED:
        if (put_date(x, r, RS_F_CA_EFFECTIVE_ON, ev->effective_on) < 0 ||
            put_name(x, r, RS_F_CA_TREATMENT,
                     ev->treatment == RS_TREATMENT_CATCH_UP      ? "catch_up"
                     : ev->treatment == RS_TREATMENT_PROSPECTIVE ? "prospective"
                                                                 : NULL) < 0)
            return -1;
        return put_contract_lines(x, r, RS_F_CA_LINES, ev);
    case RS_EV_CONTRACT_CANCELLED:
        return put_date(x, r, RS_F_CC_EFFECTIVE_ON, ev->effective_on);
    case RS_EV_MILESTONE_COMPLETED:
        if (PUT_FIELD(x, r, RS_F_MC_LINE_ID, ev->line_id) < 0 ||
            PUT_FIELD(x, r, RS_F_MC_MILESTONE_ID, ev->milestone_id) < 0)
            return -1;
        return put_date(x, r, RS_F_MC_COMPLETED_ON, ev->completed_on);
    case RS_EV_PERIOD_CLOSED:
        return put_period(x, r, RS_F_PC_PERIOD, ev->period);
    case RS_EV_INVOICE_ISSUED:
        if (PUT_FIELD(x, r, RS_F_II_INVOICE_ID, ev->invoice_id) < 0 ||
            put_date(x, r, RS_F_II_ISSUED_ON, ev->on) < 0 ||
            put_date(x, r, RS_F_II_DUE_ON, ev->due_on) < 0)
            return -1;
        return put_bill_lines(x, r, RS_F_II_LINES, ev, 0);
    case RS_EV_INVOICE_VOIDED:
        if (PUT_FIELD(x, r, RS_F_IV_INVOICE_ID, ev->invoice_id) < 0)
            return -1;
        return put_date(x, r, RS_F_IV_VOIDED_ON, ev->on);
    case RS_EV_CREDIT_NOTE_ISSUED:
        if (PUT_FIELD(x, r, RS_F_CN_CREDIT_NOTE_ID, ev->credit_note_id) < 0 ||
            PUT_FIELD(x, r, RS_F_CN_INVOICE_ID, ev->invoice_id) < 0 ||
            put_date(x, r, RS_F_CN_ISSUED_ON, ev->on) < 0 ||
            put_name(x, r, RS_F_CN_REASON, rs_credit_reason_name(ev->reason)) < 0)
            return -1;
        return put_bill_lines(x, r, RS_F_CN_LINES, ev, 1);
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        if (PUT_FIELD(x, r, RS_F_IU_INVOICE_ID, ev->invoice_id) < 0)
            return -1;
        return put_date(x, r, RS_F_IU_DECLARED_ON, ev->on);
    case RS_EV_PAYMENT_RECEIVED:
        if (PUT_FIELD(x, r, RS_F_PR_PAYMENT_ID, ev->payment_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PR_INVOICE_ID, ev->invoice_id) < 0 ||
            put_dec(x, r, RS_F_PR_AMOUNT, ev->amount) < 0)
            return -1;
        return put_date(x, r, RS_F_PR_RECEIVED_ON, ev->on);
    case RS_EV_PAYMENT_REFUNDED:
        if (PUT_FIELD(x, r, RS_F_PD_REFUND_ID, ev->refund_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PD_PAYMENT_ID, ev->payment_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PD_INVOICE_ID, ev->invoice_id) < 0 ||
            put_dec(x, r, RS_F_PD_AMOUNT, ev->amount) < 0)
            return -1;
        return put_date(x, r, RS_F_PD_REFUNDED_ON, ev->on);
    case RS_EV_PAYMENT_FAILED:
        if (PUT_FIELD(x, r, RS_F_PF_PAYMENT_ID, ev->payment_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PF_INVOICE_ID, ev->invoice_id) < 0 ||
            put_date(x, r, RS_F_PF_FAILED_ON, ev->on) < 0)
            return -1;
        return PUT_FIELD(x, r, RS_F_PF_REASON, ev->failure_reason);
    case RS_EV_USAGE_RECORDED:
        if (PUT_FIELD(x, r, RS_F_UR_LINE_ID, ev->line_id) < 0)
            return -1;
        return put_dec(x, r, RS_F_UR_QUANTITY, ev->quantity);
    default:
        return EFAIL(x, RS_AVRO_EINVALID, "unknown event type %d", (int)ev->type);
    }
}

int rs_avro_encode_event(rs_avro_cache_t *c, int32_t schema_id, const rs_event_t *ev,
                         void **buf, size_t *len, char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    int rc;

    *buf = NULL;
    *len = 0;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    const char *tname = rs_event_type_name(ev->type);
    if (tname == NULL) {
        snprintf(errstr, errlen, "event %s: type: unknown event type %d", ev->event_id,
                 (int)ev->type);
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, (int)ev->type - 1, &r) < 0 ||
        PUT_FIELD(&x, &r, RS_F_EVENT_ID, ev->event_id) < 0 ||
        put_str(&x, &r, RS_F_TYPE, tname) < 0 ||
        (ev->type == RS_EV_PERIOD_CLOSED
             ? put_null(&x, &r, RS_F_CONTRACT_ID)
             : PUT_FIELD(&x, &r, RS_F_CONTRACT_ID, ev->contract_id)) < 0 ||
        PUT_FIELD(&x, &r, RS_F_OCCURRED_AT, ev->occurred_at) < 0 ||
        encode_body(&x, &r, ev) < 0 || finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

int rs_avro_encode_entry(rs_avro_cache_t *c, int32_t schema_id, const rs_entry_t *e, void **buf,
                         size_t *len, char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    avro_value_t lines, srcs;
    int rc, direct;

    *buf = NULL;
    *len = 0;
    if ((rc = try_direct(c, schema_id, e, NULL, buf, len, &direct, errstr, errlen)) !=
            RS_AVRO_OK ||
        direct)
        return rc;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (e->n_postings < 0 || e->n_postings > RS_ENTRY_MAX_POSTINGS || e->n_sources < 0 ||
        e->n_sources > RS_ENTRY_MAX_SOURCES) {
        snprintf(errstr, errlen, "entry %.*s: bad posting or source count", RS_ID_MAX,
                 e->entry_id);
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, RS_RK_JOURNAL_ENTRY, &r) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_ENTRY_ID, e->entry_id) < 0 ||
        put_long(&x, &r, RS_F_JE_SEQ, (int64_t)e->seq) < 0 ||
        put_date(&x, &r, RS_F_JE_POSTED_ON, e->posted_on) < 0 ||
        put_period(&x, &r, RS_F_JE_PERIOD, e->period) < 0 ||
        put_period(&x, &r, RS_F_JE_SERVICE_PERIOD, e->service_period) < 0 ||
        put_str(&x, &r, RS_F_JE_KIND, rs_entry_kind_name(e->kind)) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_RULE, e->rule) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_CONTRACT_ID, e->contract_id) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_CUSTOMER_ID, e->customer_id) < 0 ||
        put_opt_field(&x, &r, RS_F_JE_LINE_ID, e->line_id, sizeof(e->line_id)) < 0 ||
        put_opt_field(&x, &r, RS_F_JE_DOCUMENT_ID, e->document_id, sizeof(e->document_id)) <
            0 ||
        PUT_FIELD(&x, &r, RS_F_JE_CURRENCY, e->currency) < 0 ||
        put_int(&x, &r, RS_F_JE_EXPONENT, e->exponent) < 0 ||
        put_array(&x, &r, RS_F_JE_LINES, &lines) < 0)
        return x.status;
    for (int i = 0; i < e->n_postings; i++) {
        wrec_t p;
        if (append_rec(&x, &lines, RS_RK_JOURNAL_LINE, &p) < 0 ||
            put_str(&x, &p, RS_F_JL_ACCOUNT, rs_account_name(e->postings[i].account)) < 0 ||
            put_long(&x, &p, RS_F_JL_DEBIT, e->postings[i].debit) < 0 ||
            put_long(&x, &p, RS_F_JL_CREDIT, e->postings[i].credit) < 0 ||
            put_added_field(&x, &p, RS_F_JL_CODE, e->postings[i].code,
                            sizeof(e->postings[i].code)) < 0 ||
            put_added_field(&x, &p, RS_F_JL_PRODUCT, e->product, sizeof(e->product)) < 0)
            return x.status;
    }
    if (put_array(&x, &r, RS_F_JE_SOURCE_EVENT_IDS, &srcs) < 0)
        return x.status;
    for (int i = 0; i < e->n_sources; i++) {
        avro_value_t s;
        if (memchr(e->sources[i], '\0', RS_ID_MAX) == NULL) {
            snprintf(errstr, errlen, "entry %.*s: source %d not NUL-terminated", RS_ID_MAX,
                     e->entry_id, i);
            return RS_AVRO_EINVALID;
        }
        if (avro_value_append(&srcs, &s, NULL) != 0 || avro_value_get_type(&s) != AVRO_STRING ||
            avro_value_set_string(&s, e->sources[i]) != 0) {
            snprintf(errstr, errlen,
                     "schema id %d: source_event_ids must be an array of strings",
                     (int)schema_id);
            return RS_AVRO_ESCHEMA;
        }
    }
    if (put_long(&x, &r, RS_F_JE_SOURCE_COUNT, (int64_t)e->source_count) < 0 ||
        put_long(&x, &r, RS_F_JE_BILLED, e->billed) < 0 ||
        put_long(&x, &r, RS_F_JE_RECOGNIZED, e->recognized) < 0 ||
        put_long(&x, &r, RS_F_JE_RECEIVED, e->received) < 0 || finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

static const char *const SCOPE_NAME[] = {"contract", "line", "invoice"};

int rs_avro_encode_balance(rs_avro_cache_t *c, int32_t schema_id, const rs_avro_balance_t *b,
                           void **buf, size_t *len, char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    int rc, direct;

    *buf = NULL;
    *len = 0;
    if ((rc = try_direct(c, schema_id, NULL, b, buf, len, &direct, errstr, errlen)) !=
            RS_AVRO_OK ||
        direct)
        return rc;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if ((int)b->scope < 0 || b->scope > RS_AVRO_SCOPE_INVOICE || b->snapshot_key == NULL ||
        b->contract_id == NULL || b->customer_id == NULL || b->currency == NULL) {
        snprintf(errstr, errlen,
                 "balance %s: missing key, contract, customer or currency, or bad scope",
                 b->snapshot_key ? b->snapshot_key : "?");
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, RS_RK_DEFERRED_BALANCE, &r) < 0 ||
        put_str(&x, &r, RS_F_DB_SNAPSHOT_KEY, b->snapshot_key) < 0 ||
        put_str(&x, &r, RS_F_DB_CONTRACT_ID, b->contract_id) < 0 ||
        put_str(&x, &r, RS_F_DB_CUSTOMER_ID, b->customer_id) < 0 ||
        put_str(&x, &r, RS_F_DB_SCOPE, SCOPE_NAME[b->scope]) < 0 ||
        put_str(&x, &r, RS_F_DB_LINE_ID, b->line_id && b->line_id[0] ? b->line_id : NULL) < 0 ||
        put_str(&x, &r, RS_F_DB_INVOICE_ID,
                b->invoice_id && b->invoice_id[0] ? b->invoice_id : NULL) < 0 ||
        put_str(&x, &r, RS_F_DB_CURRENCY, b->currency) < 0 ||
        put_int(&x, &r, RS_F_DB_EXPONENT, b->exponent) < 0 ||
        put_long(&x, &r, RS_F_DB_BILLED, b->billed) < 0 ||
        put_long(&x, &r, RS_F_DB_RECOGNIZED, b->recognized) < 0 ||
        put_long(&x, &r, RS_F_DB_DEFERRED, b->deferred) < 0 ||
        put_long(&x, &r, RS_F_DB_UNBILLED, b->unbilled) < 0 ||
        put_long(&x, &r, RS_F_DB_RECEIVED, b->received) < 0 ||
        put_period(&x, &r, RS_F_DB_AS_OF_PERIOD, b->as_of_period) < 0 ||
        finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

int rs_avro_encode_deadletter(rs_avro_cache_t *c, int32_t schema_id,
                              const rs_avro_deadletter_t *d, void **buf, size_t *len,
                              char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    int rc;

    *buf = NULL;
    *len = 0;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (d->topic == NULL || d->error == NULL) {
        snprintf(errstr, errlen, "dead letter: missing topic or error");
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, RS_RK_DEAD_LETTER, &r) < 0 ||
        put_str(&x, &r, RS_F_DL_TOPIC, d->topic) < 0 ||
        put_int(&x, &r, RS_F_DL_PARTITION, d->partition) < 0 ||
        put_long(&x, &r, RS_F_DL_OFFSET, d->offset) < 0 ||
        put_str(&x, &r, RS_F_DL_ERROR, d->error) < 0 ||
        put_bytes(&x, &r, RS_F_DL_KEY, d->key, d->key_len) < 0 ||
        put_bytes(&x, &r, RS_F_DL_VALUE, d->value, d->value_len) < 0 ||
        put_long(&x, &r, RS_F_DL_TIMESTAMP, d->timestamp_ms) < 0 || finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}
