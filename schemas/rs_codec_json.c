/*
 * rs_codec_json.c — the JSON Lines codec: one JSON object <-> one rs_event_t,
 * the `journal` row of a journal entry, and decimal formatting.
 *
 * Parsing and printing JSON is jansson's job; the event contract's rules are
 * rs_codec_fields.c's (shared with the Avro codec). Decoding here is only
 * the JSON field source: how a member is found in a jansson object.
 *
 * Invariants:
 *   - Decoding either fills the whole event and returns 0, or returns -1 with
 *     the event cleared (rs_event_clear) and errstr set. It never reads the
 *     event's previous contents: the caller passes an event that owns nothing
 *     (fresh, initialised or cleared).
 *   - errstr always reads "event <event_id>: <field>: <reason>", with
 *     "event ?" until event_id itself has been checked (rs_codec_fail).
 *   - JSON null counts as absent. Money, prices and quantities must be JSON
 *     strings (a JSON number is an error). Duplicate keys in one object are
 *     rejected (the event would be ambiguous). jansson rejects \u0000 and
 *     invalid UTF-8, so every string handed to the field rules is NUL-free
 *     UTF-8, as rs_codec_fields.h requires.
 *   - An object with a `specversion` member is a structured-mode CloudEvent:
 *     rs_codec_cloudevents.c maps it to the native usage.recorded object
 *     first (jansson path only), and that object is decoded as usual.
 *   - Encoding is canonical: a fixed key order per type, only the keys of the
 *     event's type, absent optionals left out, dates as YYYY-MM-DD, decimals
 *     with the scale they were parsed with. decode(encode(ev)) has the same
 *     rs_event_hash as ev, and encode(decode(encode(ev))) == encode(ev).
 *
 * Ownership: decode fills a caller-owned rs_event_t whose line, milestone and
 * bill-line arrays are malloc()ed (rs_event_clear frees them). Encoders return
 * a malloc()ed NUL-terminated string the caller free()s; they return NULL on
 * ENOMEM, and also when the event cannot be represented (an unknown type or
 * enum value, a string that is not valid UTF-8, a decimal scale outside
 * 0..18). No jansson value outlives the call that made it.
 */
#include "rs_codec.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec_cloudevents.h"
#include "rs_codec_fields.h"
#include "rs_json_fast.h"

/* ------------------------------------------------------------------------ */
/* Decoding: the JSON field source                                          */
/* ------------------------------------------------------------------------ */

/* The member of record `r` for `slot`; JSON null counts as absent. */
static json_t *member(const rs_codec_node_t *r, int slot)
{
    json_t *v = json_object_get(r->ref[0], rs_codec_field_name[r->rk][slot]);
    return json_is_null(v) ? NULL : v;
}

static int json_src_string(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           const char **s, size_t *n, const char **why)
{
    (void)src;
    (void)why;
    json_t *v = member(r, slot);
    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return RS_CODEC_EWRONG;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 1;
}

static int json_src_array(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                          rs_codec_node_t *arr, size_t *n)
{
    (void)src;
    json_t *v = member(r, slot);
    if (v == NULL)
        return 0;
    if (!json_is_array(v))
        return RS_CODEC_EWRONG;
    arr->ref[0] = v;
    *n = json_array_size(v);
    return 1;
}

static int json_src_item(const rs_codec_source_t *src, const rs_codec_node_t *arr, size_t i,
                         rs_codec_node_t *rec)
{
    (void)src;
    json_t *v = json_array_get(arr->ref[0], i);
    if (!json_is_object(v))
        return RS_CODEC_EWRONG;
    rec->ref[0] = v;
    return 0;
}

static int json_src_record(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           rs_codec_node_t *sub)
{
    (void)src;
    json_t *v = member(r, slot);
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return RS_CODEC_EWRONG;
    sub->ref[0] = v;
    return 1;
}

static const rs_codec_source_t JSON_SOURCE = {json_src_string, json_src_array, json_src_item,
                                              json_src_record, NULL};

int rs_codec_json_decode_jansson(const char *json, size_t len, rs_event_t *ev, char *errstr,
                                 size_t errlen)
{
    rs_codec_dec_t d = {"?", errstr, errlen, 0, &JSON_SOURCE};
    rs_codec_node_t rec = {{NULL, NULL}, RS_RK_EVENT}; /* its `type` says which event */
    json_t *root = NULL;
    json_error_t jerr;
    int rc = -1;

    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    if (ev == NULL)
        return rs_codec_fail(&d, NULL, NULL, "no event to decode into");
    rs_event_init(ev);
    if (json == NULL) {
        rs_codec_fail(&d, NULL, NULL, "no input");
        goto out;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rs_codec_fail(&d, NULL, NULL, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rs_codec_fail(&d, NULL, NULL, "not a JSON object");
        goto out;
    }
    if (json_object_get(root, "specversion") != NULL) { /* a CloudEvent: usage */
        json_t *native = rs_codec_cloudevent_to_native(root, errstr, errlen);
        json_decref(root);
        root = native;
        if (root == NULL)
            goto out;
    }
    rec.ref[0] = root;
    rc = rs_codec_decode_event(&d, &rec, ev);
out:
    json_decref(root);
    if (rc != 0)
        rs_event_clear(ev);
    return rc;
}

/* ---- the fast path: simdjson (rs_json_fast.h), same tree as jansson ---- */

static rs_jf_val_t fast_val(const rs_codec_node_t *n)
{
    rs_jf_val_t v = {n->ref[0], n->ref[1]};
    return v;
}

static void fast_set(rs_codec_node_t *n, rs_jf_val_t v)
{
    n->ref[0] = v.a;
    n->ref[1] = v.b;
}

/* The member of record `r` for `slot`: 1 (*out), or 0 (absent or null). */
static int fast_member(const rs_codec_node_t *r, int slot, rs_jf_val_t *out)
{
    rs_jf_val_t obj = fast_val(r);
    return rs_jf_member(&obj, rs_codec_field_name[r->rk][slot], out) &&
           rs_jf_type(out) != RS_JF_NULL;
}

static int fast_src_string(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           const char **s, size_t *n, const char **why)
{
    (void)src;
    (void)why;
    rs_jf_val_t v;
    if (!fast_member(r, slot, &v))
        return 0;
    if (rs_jf_type(&v) != RS_JF_STRING)
        return RS_CODEC_EWRONG;
    *s = rs_jf_string(&v, n);
    return 1;
}

static int fast_src_array(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                          rs_codec_node_t *arr, size_t *n)
{
    (void)src;
    rs_jf_val_t v;
    if (!fast_member(r, slot, &v))
        return 0;
    if (rs_jf_type(&v) != RS_JF_ARRAY)
        return RS_CODEC_EWRONG;
    fast_set(arr, v);
    *n = rs_jf_array_size(&v);
    return 1;
}

static int fast_src_item(const rs_codec_source_t *src, const rs_codec_node_t *arr, size_t i,
                         rs_codec_node_t *rec)
{
    (void)src;
    rs_jf_val_t a = fast_val(arr), v;
    rs_jf_array_item(&a, i, &v);
    if (rs_jf_type(&v) != RS_JF_OBJECT)
        return RS_CODEC_EWRONG;
    fast_set(rec, v);
    return 0;
}

static int fast_src_record(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           rs_codec_node_t *sub)
{
    (void)src;
    rs_jf_val_t v;
    if (!fast_member(r, slot, &v))
        return 0;
    if (rs_jf_type(&v) != RS_JF_OBJECT)
        return RS_CODEC_EWRONG;
    fast_set(sub, v);
    return 1;
}

static const rs_codec_source_t FAST_SOURCE = {fast_src_string, fast_src_array, fast_src_item,
                                              fast_src_record, NULL};

int rs_codec_json_decode(const char *json, size_t len, rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    rs_codec_dec_t d = {"?", errstr, errlen, 0, &FAST_SOURCE};
    rs_codec_node_t rec = {{NULL, NULL}, RS_RK_EVENT};
    rs_jf_val_t root, sv;
    int rc;

    /* CloudEvents (specversion) are mapped on jansson's tree
     * (rs_codec_cloudevents.c): the fast path only takes native events. */
    if (ev == NULL || json == NULL || rs_jf_parse(json, len, &root) != 0 ||
        rs_jf_type(&root) != RS_JF_OBJECT || rs_jf_member(&root, "specversion", &sv))
        return rs_codec_json_decode_jansson(json, len, ev, errstr, errlen);
    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    rs_event_init(ev);
    fast_set(&rec, root);
    rc = rs_codec_decode_event(&d, &rec, ev);
    if (rc != 0)
        rs_event_clear(ev);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */
/* ------------------------------------------------------------------------ */

/* Each put_* returns 0, or -1 when the value could not be made (ENOMEM,
 * invalid UTF-8, unrepresentable value); jansson's json_object_set_new
 * takes ownership of the value, or fails on a NULL one. */

static int put_str(json_t *o, const char *key, const char *s, size_t cap)
{
    return json_object_set_new(o, key, s ? json_stringn(s, strnlen(s, cap)) : NULL);
}

#define PUT_FIELD(o, key, field) put_str((o), (key), (field), sizeof(field))

static int put_date(json_t *o, const char *key, rs_date_t day)
{
    char buf[32];
    if (day == RS_DATE_NONE)
        return 0;
    return json_object_set_new(o, key, json_string(rs_date_format(day, buf, sizeof(buf))));
}

static int put_period(json_t *o, const char *key, rs_period_t p)
{
    char buf[32];
    if (p == RS_PERIOD_NONE)
        return 0;
    return json_object_set_new(o, key, json_string(rs_period_format(p, buf, sizeof(buf))));
}

static int put_dec(json_t *o, const char *key, rs_decimal_t v)
{
    char buf[48];
    const char *s = rs_decimal_format(v, buf, sizeof(buf));
    return json_object_set_new(o, key, s ? json_string(s) : NULL);
}

static json_t *encode_line(const rs_line_spec_t *l)
{
    json_t *o = json_object();
    int rc = 0;
    if (o == NULL)
        return NULL;
    rc |= PUT_FIELD(o, "line_id", l->line_id);
    rc |= PUT_FIELD(o, "product", l->product);
    rc |= json_object_set_new(o, "recognition", json_string(rs_method_name(l->recognition)));
    rc |= put_date(o, "start", l->start);
    rc |= put_date(o, "end", l->end);
    rc |= put_dec(o, "amount", l->amount);
    if (l->has_ssp)
        rc |= put_dec(o, "ssp", l->ssp);
    if (l->has_unit_price)
        rc |= put_dec(o, "unit_price", l->unit_price);
    if (l->n_milestones > 0) {
        json_t *arr = json_array();
        rc |= json_object_set_new(o, "milestones", arr);
        for (int i = 0; rc == 0 && i < l->n_milestones; i++) {
            json_t *m = json_object();
            rc |= json_array_append_new(arr, m);
            if (rc == 0) {
                rc |= PUT_FIELD(m, "milestone_id", l->milestones[i].milestone_id);
                rc |= put_dec(m, "amount", l->milestones[i].amount);
            }
        }
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *encode_bill_line(const rs_bill_line_t *b, int credit)
{
    json_t *o = json_object();
    int rc = 0;
    if (o == NULL)
        return NULL;
    rc |= PUT_FIELD(o, "line_id", b->line_id);
    rc |= put_dec(o, "amount", b->amount);
    if (b->has_tax)
        rc |= put_dec(o, "tax", b->tax);
    if (!credit) {
        rc |= put_date(o, "service_start", b->service_start);
        rc |= put_date(o, "service_end", b->service_end);
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Appends the event's `lines` (contract lines or bill lines). */
static int put_lines(json_t *o, const rs_event_t *ev)
{
    json_t *arr = json_array();
    int rc = json_object_set_new(o, "lines", arr);
    int credit = ev->type == RS_EV_CREDIT_NOTE_ISSUED;
    if (ev->type == RS_EV_CONTRACT_BOOKED || ev->type == RS_EV_CONTRACT_AMENDED) {
        for (int i = 0; rc == 0 && i < ev->n_lines; i++)
            rc = json_array_append_new(arr, encode_line(&ev->lines[i]));
    } else {
        for (int i = 0; rc == 0 && i < ev->n_bill_lines; i++)
            rc = json_array_append_new(arr, encode_bill_line(&ev->bill_lines[i], credit));
    }
    return rc;
}

char *rs_codec_json_encode(const rs_event_t *ev)
{
    json_t *o = NULL;
    char *out = NULL;
    int rc = 0;

    if (ev == NULL || rs_event_type_name(ev->type) == NULL)
        return NULL;
    o = json_object();
    if (o == NULL)
        goto out;
    rc |= PUT_FIELD(o, "event_id", ev->event_id);
    rc |= json_object_set_new(o, "type", json_string(rs_event_type_name(ev->type)));
    if (ev->type != RS_EV_PERIOD_CLOSED)
        rc |= PUT_FIELD(o, "contract_id", ev->contract_id);
    rc |= PUT_FIELD(o, "occurred_at", ev->occurred_at);

    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        rc |= PUT_FIELD(o, "customer_id", ev->customer_id);
        rc |= PUT_FIELD(o, "currency", ev->currency);
        rc |= put_date(o, "booked_on", ev->booked_on);
        if (ev->source_system[0] != '\0' || ev->source_record_id[0] != '\0') {
            json_t *src = json_object();
            rc |= json_object_set_new(o, "source", src);
            if (rc == 0) {
                rc |= PUT_FIELD(src, "system", ev->source_system);
                rc |= PUT_FIELD(src, "record_id", ev->source_record_id);
            }
        }
        rc |= put_lines(o, ev);
        break;
    case RS_EV_CONTRACT_AMENDED:
        rc |= put_date(o, "effective_on", ev->effective_on);
        rc |= json_object_set_new(
            o, "treatment",
            json_string(ev->treatment == RS_TREATMENT_CATCH_UP      ? "catch_up"
                        : ev->treatment == RS_TREATMENT_PROSPECTIVE ? "prospective"
                                                                    : NULL));
        rc |= put_lines(o, ev);
        break;
    case RS_EV_CONTRACT_CANCELLED:
        rc |= put_date(o, "effective_on", ev->effective_on);
        break;
    case RS_EV_MILESTONE_COMPLETED:
        rc |= PUT_FIELD(o, "line_id", ev->line_id);
        rc |= PUT_FIELD(o, "milestone_id", ev->milestone_id);
        rc |= put_date(o, "completed_on", ev->completed_on);
        break;
    case RS_EV_PERIOD_CLOSED:
        rc |= put_period(o, "period", ev->period);
        break;
    case RS_EV_INVOICE_ISSUED:
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_date(o, "issued_on", ev->on);
        rc |= put_date(o, "due_on", ev->due_on);
        rc |= put_lines(o, ev);
        break;
    case RS_EV_INVOICE_VOIDED:
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_date(o, "voided_on", ev->on);
        break;
    case RS_EV_CREDIT_NOTE_ISSUED:
        rc |= PUT_FIELD(o, "credit_note_id", ev->credit_note_id);
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_date(o, "issued_on", ev->on);
        rc |= json_object_set_new(o, "reason", json_string(rs_credit_reason_name(ev->reason)));
        rc |= put_lines(o, ev);
        break;
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_date(o, "declared_on", ev->on);
        break;
    case RS_EV_PAYMENT_RECEIVED:
        rc |= PUT_FIELD(o, "payment_id", ev->payment_id);
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_dec(o, "amount", ev->amount);
        rc |= put_date(o, "received_on", ev->on);
        break;
    case RS_EV_PAYMENT_REFUNDED:
        rc |= PUT_FIELD(o, "refund_id", ev->refund_id);
        rc |= PUT_FIELD(o, "payment_id", ev->payment_id);
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_dec(o, "amount", ev->amount);
        rc |= put_date(o, "refunded_on", ev->on);
        break;
    case RS_EV_PAYMENT_FAILED:
        rc |= PUT_FIELD(o, "payment_id", ev->payment_id);
        rc |= PUT_FIELD(o, "invoice_id", ev->invoice_id);
        rc |= put_date(o, "failed_on", ev->on);
        rc |= PUT_FIELD(o, "reason", ev->failure_reason);
        break;
    case RS_EV_USAGE_RECORDED:
        rc |= PUT_FIELD(o, "line_id", ev->line_id);
        rc |= put_dec(o, "quantity", ev->quantity);
        break;
    default:
        rc = -1;
        break;
    }
    if (rc == 0)
        out = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
out:
    json_decref(o);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Journal entries                                                          */
/* ------------------------------------------------------------------------ */

static int put_money(json_t *o, const char *key, rs_money_t v, int exponent)
{
    char buf[48];
    return json_object_set_new(o, key,
                               json_string(rs_money_format(v, exponent, buf, sizeof(buf))));
}

char *rs_codec_entry_json(const rs_entry_t *e)
{
    json_t *o = NULL, *lines = NULL, *srcs = NULL;
    char *out = NULL;
    int rc = 0;

    if (e == NULL || e->exponent < 0 || e->exponent > 18 || e->n_postings < 0 ||
        e->n_postings > RS_ENTRY_MAX_POSTINGS || e->n_sources < 0 ||
        e->n_sources > RS_ENTRY_MAX_SOURCES)
        return NULL;
    o = json_object();
    if (o == NULL)
        goto out;
    rc |= PUT_FIELD(o, "entry_id", e->entry_id);
    rc |= put_date(o, "posted_on", e->posted_on);
    rc |= put_period(o, "period", e->period);
    rc |= put_period(o, "service_period", e->service_period);
    rc |= PUT_FIELD(o, "contract_id", e->contract_id);
    rc |= PUT_FIELD(o, "customer_id", e->customer_id);
    rc |= PUT_FIELD(o, "line_id", e->line_id);
    rc |= PUT_FIELD(o, "document_id", e->document_id);
    rc |= json_object_set_new(o, "kind", json_string(rs_entry_kind_name(e->kind)));
    rc |= PUT_FIELD(o, "rule", e->rule);
    rc |= PUT_FIELD(o, "currency", e->currency);

    lines = json_array();
    rc |= json_object_set_new(o, "lines", lines);
    for (int i = 0; rc == 0 && i < e->n_postings; i++) {
        const rs_posting_t *p = &e->postings[i];
        json_t *row = json_object();
        rc |= json_array_append_new(lines, row);
        if (rc != 0)
            break;
        /* account: the code (the role name without one), as replay prints it */
        rc |= json_object_set_new(
            row, "account",
            json_string(p->code[0] != '\0' && memchr(p->code, '\0', sizeof(p->code)) != NULL
                            ? p->code
                            : rs_account_name(p->account)));
        rc |= json_object_set_new(row, "role", json_string(rs_account_name(p->account)));
        if (e->product[0] != '\0')
            rc |= PUT_FIELD(row, "product", e->product);
        rc |= put_money(row, "debit", p->debit, e->exponent);
        rc |= put_money(row, "credit", p->credit, e->exponent);
    }

    srcs = json_array();
    rc |= json_object_set_new(o, "source_event_ids", srcs);
    for (int i = 0; rc == 0 && i < e->n_sources; i++)
        rc |= json_array_append_new(
            srcs, json_stringn(e->sources[i], strnlen(e->sources[i], RS_ID_MAX)));
    rc |= json_object_set_new(o, "source_count", json_integer((json_int_t)e->source_count));
    rc |= put_money(o, "billed", e->billed, e->exponent);
    rc |= put_money(o, "recognized", e->recognized, e->exponent);
    rc |= put_money(o, "received", e->received, e->exponent);
    if (rc == 0)
        out = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
out:
    json_decref(o);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Decimals                                                                 */
/* ------------------------------------------------------------------------ */

/* Returns buf, or NULL (buf set to "" when it has room) if the scale is
 * outside 0..18 or buf is too small. */
char *rs_decimal_format(rs_decimal_t d, char *buf, size_t buflen)
{
    char digits[24], tmp[48];
    size_t o = 0;

    if (buf == NULL || buflen == 0)
        return NULL;
    buf[0] = '\0';
    if (d.scale < 0 || d.scale > 18)
        return NULL;
    /* |mantissa| without overflow for INT64_MIN. */
    uint64_t mag = d.mantissa < 0 ? (uint64_t)0 - (uint64_t)d.mantissa : (uint64_t)d.mantissa;
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)mag);
    int scale = d.scale;

    if (d.mantissa < 0)
        tmp[o++] = '-';
    if (n > scale) {
        memcpy(tmp + o, digits, (size_t)(n - scale));
        o += (size_t)(n - scale);
    } else {
        tmp[o++] = '0';
    }
    if (scale > 0) {
        tmp[o++] = '.';
        for (int i = n; i < scale; i++)
            tmp[o++] = '0';
        int frac = n < scale ? n : scale;
        memcpy(tmp + o, digits + (n - frac), (size_t)frac);
        o += (size_t)frac;
    }
    if (o + 1 > buflen)
        return NULL;
    memcpy(buf, tmp, o);
    buf[o] = '\0';
    return buf;
}
