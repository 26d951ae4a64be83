/*
 * rs_avro_decode.c — a Confluent wire-format message -> rs_event_t: framing
 * checks, the entry's decoding side (built once per writer id), the bounds
 * check, Avro C's read, and the event contract through the Avro field source.
 *
 * Invariants:
 *   - Nothing reaches Avro C before the framing (magic byte, header, size
 *     limit) and the whole body have been checked (rs_avro_scan.c).
 *   - The event contract's rules are not here: decoding hands the reader
 *     value to rs_codec_decode_event() (rs_codec_fields.c) through the Avro
 *     field source below, the same rules and messages the JSON codec uses.
 *     The source adds only what JSON cannot express: strings with NUL bytes
 *     or invalid UTF-8 are refused. Whether `type` names the record's own
 *     type is checked by the shared decoder, which knows both.
 *   - Errors of the wire format read "avro message: <reason>" (no event id is
 *     known yet); errors of the contract read "event <id>: <field>: <reason>".
 *   - After a failed Avro C read the reader value is reset.
 *   - The direct reader (rs_avro_read.c) is tried first, once the entry's
 *     decoding side is ready: it returns the same event or declines, and
 *     every error message comes from the path below.
 */
#include "rs_avro.h"

#include <avro.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro_internal.h"
#include "rs_bytes.h"
#include "rs_codec_fields.h"

/* ------------------------------------------------------------------------ */
/* The decoding side of an entry                                            */
/* ------------------------------------------------------------------------ */

/* Build the decoding side of `e` (once). */
static int prepare_decode(rs_avro_entry_t *e, char *errstr, size_t errlen)
{
    char why[512], msg[768];
    char *rtext = NULL;

    if (e->dec_state == 1)
        return RS_AVRO_OK;
    if (e->dec_state == -1) {
        snprintf(errstr, errlen, "%s", e->dec_error ? e->dec_error : "schema unusable");
        return RS_AVRO_ESCHEMA;
    }
    rtext = rs_avro_projected_reader(e->text, e->branch_type, &e->n_branches, why, sizeof(why));
    if (rtext == NULL)
        goto fail;
    if (avro_schema_from_json_length(rtext, strlen(rtext), &e->rschema) != 0) {
        snprintf(why, sizeof(why), "internal: projected reader: %s", rs_avro_why());
        e->rschema = NULL;
        goto fail;
    }
    e->r_is_union = avro_typeof(e->rschema) == AVRO_UNION;
    e->rclass = avro_generic_class_from_schema(e->rschema);
    if (e->rclass == NULL || avro_generic_value_new(e->rclass, &e->rvalue) != 0) {
        e->rvalue.self = NULL;
        snprintf(why, sizeof(why), "cannot build a reader: %s", rs_avro_why());
        goto fail;
    }
    if (!avro_schema_equal(e->wschema, e->rschema)) {
        e->resolver = avro_resolved_writer_new(e->wschema, e->rschema);
        if (e->resolver == NULL) {
            snprintf(why, sizeof(why), "cannot be read as revstream events: %s", rs_avro_why());
            goto fail;
        }
        if (avro_resolved_writer_new_value(e->resolver, &e->resolved) != 0) {
            avro_value_iface_decref(e->resolver);
            e->resolver = NULL;
            snprintf(why, sizeof(why), "cannot build a resolver: %s", rs_avro_why());
            goto fail;
        }
        avro_resolved_writer_set_dest(&e->resolved, &e->rvalue);
    }
    rs_avro_layout_build(&e->rlay, e->rschema);
    free(rtext);
    e->dec_state = 1;
    return RS_AVRO_OK;
fail:
    free(rtext);
    snprintf(msg, sizeof(msg), "schema id %d: %s", (int)e->id, why);
    snprintf(errstr, errlen, "%s", msg);
    return rs_avro_remember_error(&e->dec_error, &e->dec_state, msg);
}

/* ------------------------------------------------------------------------ */
/* Decoding: the Avro field source                                          */
/* ------------------------------------------------------------------------ */

/* The avro_value_t a node holds (see rs_codec_node_t), and back. */
static avro_value_t node_value(const rs_codec_node_t *n)
{
    avro_value_t v = {n->ref[0], n->ref[1]};
    return v;
}

static void node_set(rs_codec_node_t *n, const avro_value_t *v)
{
    n->ref[0] = v->iface;
    n->ref[1] = v->self;
}

/* The value of field `slot` of record `r`, unwrapped from its union; 0 when
 * the schema lacks the field (src->ctx is the reader's layout) or it is null. */
static int afield(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                  avro_value_t *out)
{
    const rs_avro_layout_t *lay = src->ctx;
    avro_value_t rv = node_value(r);
    int idx = (int)lay->idx[r->rk][slot]; /* signed: -1 is "no such field" */
    if (idx < 0 || avro_value_get_by_index(&rv, (size_t)idx, out, NULL) != 0)
        return 0;
    if (avro_value_get_type(out) == AVRO_UNION) {
        avro_value_t b;
        if (avro_value_get_current_branch(out, &b) != 0)
            return 0;
        *out = b;
    }
    return avro_value_get_type(out) != AVRO_NULL;
}

/* A string, which unlike a JSON string may hold NUL bytes or bytes that are
 * not UTF-8: those are refused here (the field rules need neither). */
static int avro_src_string(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           const char **s, size_t *n, const char **why)
{
    avro_value_t v;
    size_t size = 0;
    if (!afield(src, r, slot, &v))
        return 0;
    if (avro_value_get_type(&v) != AVRO_STRING || avro_value_get_string(&v, s, &size) != 0 ||
        *s == NULL)
        return RS_CODEC_EWRONG;
    *n = size > 0 ? size - 1 : 0; /* Avro C counts the terminating NUL */
    return rs_avro_string_check(*s, *n, why);
}

/* 1 when the n bytes at u are all 0x01..0x7f (ASCII without a NUL; most
 * strings): whole words, the last one overlapping the one before it; a word
 * with a zero byte or a high bit sends the string to the exact checks. */
static int ascii_no_nul(const unsigned char *u, size_t n)
{
    const uint64_t lo = UINT64_C(0x0101010101010101), hi = UINT64_C(0x8080808080808080);
    uint64_t w, bad = 0;
    if (n < sizeof(w)) {
        for (size_t i = 0; i < n; i++)
            if (u[i] == 0 || u[i] >= 0x80)
                return 0;
        return 1;
    }
    for (size_t i = 0; i + sizeof(w) < n; i += sizeof(w)) {
        memcpy(&w, u + i, sizeof(w));
        bad |= ((w - lo) & ~w) | w;
    }
    memcpy(&w, u + n - sizeof(w), sizeof(w));
    bad |= ((w - lo) & ~w) | w;
    return (bad & hi) == 0;
}

int rs_avro_string_check(const char *s, size_t n, const char **why)
{
    if (ascii_no_nul((const unsigned char *)s, n))
        return 1;
    if (memchr(s, '\0', n) != NULL) {
        *why = "must not contain a NUL byte";
        return RS_CODEC_EBAD;
    }
    if (!rs_codec_utf8_valid(s, n)) {
        *why = "must be valid UTF-8";
        return RS_CODEC_EBAD;
    }
    return 1;
}

static int avro_src_array(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                          rs_codec_node_t *arr, size_t *n)
{
    avro_value_t v;
    if (!afield(src, r, slot, &v))
        return 0;
    if (avro_value_get_type(&v) != AVRO_ARRAY || avro_value_get_size(&v, n) != 0)
        return RS_CODEC_EWRONG;
    node_set(arr, &v);
    return 1;
}

static int avro_src_item(const rs_codec_source_t *src, const rs_codec_node_t *arr, size_t i,
                         rs_codec_node_t *rec)
{
    avro_value_t av = node_value(arr), v;
    (void)src;
    if (avro_value_get_by_index(&av, i, &v, NULL) != 0 ||
        avro_value_get_type(&v) != AVRO_RECORD)
        return RS_CODEC_EWRONG;
    node_set(rec, &v);
    return 0;
}

static int avro_src_record(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           rs_codec_node_t *sub)
{
    avro_value_t v;
    if (!afield(src, r, slot, &v))
        return 0;
    if (avro_value_get_type(&v) != AVRO_RECORD)
        return RS_CODEC_EWRONG;
    node_set(sub, &v);
    return 1;
}

int rs_avro_peek_id(const void *buf, size_t len, int32_t *id)
{
    const uint8_t *b = buf;
    if (b == NULL || len < RS_AVRO_HEADER_SIZE || b[0] != RS_AVRO_MAGIC)
        return RS_AVRO_ECORRUPT;
    *id = (int32_t)rs_get_be32(b + 1);
    return RS_AVRO_OK;
}

int rs_avro_decode_event(rs_avro_cache_t *c, const void *buf, size_t len, rs_event_t *ev,
                         char *errstr, size_t errlen)
{
    const uint8_t *msg = buf;
    rs_avro_entry_t *e = NULL;
    int32_t id = 0;
    int64_t top_branch = -1;
    char why[256];
    int rc;

    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    if (ev == NULL) {
        snprintf(errstr, errlen, "avro message: no event to decode into");
        return RS_AVRO_EINVALID;
    }
    rs_event_init(ev);
    if (msg == NULL || len < RS_AVRO_HEADER_SIZE) {
        snprintf(errstr, errlen, "avro message: %zu bytes, shorter than the %d-byte header",
                 msg ? len : 0, RS_AVRO_HEADER_SIZE);
        return RS_AVRO_ECORRUPT;
    }
    if (msg[0] != RS_AVRO_MAGIC) {
        snprintf(errstr, errlen,
                 "avro message: magic byte 0x%02x is not 0 (not Confluent wire format)",
                 msg[0]);
        return RS_AVRO_ECORRUPT;
    }
    if (len > (size_t)RS_AVRO_MAX_MESSAGE) {
        snprintf(errstr, errlen, "avro message: %zu bytes is over the %d-byte limit", len,
                 RS_AVRO_MAX_MESSAGE);
        return RS_AVRO_ECORRUPT;
    }
    rs_avro_peek_id(msg, len, &id);
    if ((rc = rs_avro_entry_get(c, id, &e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if ((rc = prepare_decode(e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    /* The direct reader (rs_avro_read.c) takes what it accepts; anything
     * else, errors included, goes on through Avro C below. */
    if (!c->generic_read && rs_avro_read_direct(c, e, msg, len, ev) == 0)
        return RS_AVRO_OK;
    if (rs_avro_scan_body(&e->prog, msg, len, &top_branch, why, sizeof(why)) != 0) {
        snprintf(errstr, errlen, "avro message: schema id %d: %s", (int)id, why);
        return RS_AVRO_ECORRUPT;
    }
    if (e->n_wbranches > 0 &&
        (top_branch < 0 || (size_t)top_branch >= e->n_wbranches ||
         e->wbranch_kind[top_branch] < 0 || e->wbranch_kind[top_branch] >= RS_RK__EVENTS)) {
        avro_schema_t b = avro_schema_union_branch(e->wschema, (int)top_branch);
        snprintf(errstr, errlen,
                 "avro message: schema id %d: branch %lld (%s) is not a revstream event",
                 (int)id, (long long)top_branch, b ? avro_schema_type_name(b) : "?");
        return RS_AVRO_EINVALID;
    }

    avro_reader_memory_set_source(c->reader, (const char *)msg + RS_AVRO_HEADER_SIZE,
                                  (int64_t)(len - RS_AVRO_HEADER_SIZE));
    if (avro_value_read(c->reader, e->resolver ? &e->resolved : &e->rvalue) != 0) {
        snprintf(errstr, errlen,
                 "avro message: schema id %d: cannot be read as a revstream event: %s", (int)id,
                 rs_avro_why());
        avro_value_reset(&e->rvalue);
        return RS_AVRO_ESCHEMA;
    }

    avro_value_t rv = e->rvalue;
    rs_event_type_t type = e->branch_type[0];
    if (e->r_is_union) {
        int disc = -1;
        if (avro_value_get_discriminant(&e->rvalue, &disc) != 0 || disc < 0 ||
            disc >= e->n_branches || avro_value_get_current_branch(&e->rvalue, &rv) != 0) {
            snprintf(errstr, errlen, "avro message: schema id %d: no union branch", (int)id);
            return RS_AVRO_ECORRUPT;
        }
        type = e->branch_type[disc];
    }
    /* The record says its event type; rs_codec_decode_event checks `type`. */
    rs_codec_node_t root = {{NULL, NULL}, (int)type - 1};
    node_set(&root, &rv);
    const rs_codec_source_t src = {avro_src_string, avro_src_array, avro_src_item,
                                   avro_src_record, &e->rlay};
    rs_codec_dec_t d = {"?", errstr, errlen, 0, &src};
    if (rs_codec_decode_event(&d, &root, ev) != 0)
        return d.nomem ? RS_AVRO_ENOMEM : RS_AVRO_EINVALID;
    return RS_AVRO_OK;
}
