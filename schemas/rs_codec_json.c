/*
 * rs_codec_json.c — the JSON Lines codec: one JSON object <-> one rs_event_t,
 * the `journal` row of a journal entry, and decimal formatting.
 *
 * Parsing and printing JSON is jansson's job; this file only maps the event
 * contract (shared/reference/events.md) onto rs_event_t and back.
 *
 * Invariants:
 *   - Decoding either fills the whole event and returns 0, or returns -1 with
 *     the event cleared (rs_event_clear) and errstr set. It never reads the
 *     event's previous contents: the caller passes an event that owns nothing
 *     (fresh, initialised or cleared).
 *   - errstr always reads "event <event_id>: <field>: <reason>", with
 *     "event ?" until event_id itself has been checked. Fields carry their
 *     path as in events.md with 0-based indexes: "lines[1].milestones[0].amount",
 *     "source.system". The message is one line of valid UTF-8: control bytes
 *     become '?', quoted input is cut at a character boundary, and a message
 *     cut short by errlen loses a trailing partial character.
 *   - JSON null counts as absent. Required strings must be non-empty and fit
 *     their fixed-size field (longer is an error, never a silent truncation).
 *     Money, prices and quantities must be JSON strings parsed by
 *     rs_decimal_parse (a JSON number is an error). Duplicate keys in one
 *     object are rejected (the event would be ambiguous).
 *   - Whether an amount fits its currency's minor unit, and whether milestones
 *     sum to their line, are the engine's checks, not the codec's.
 *   - Encoding is canonical: a fixed key order per type, only the keys of the
 *     event's type, absent optionals left out, dates as YYYY-MM-DD, decimals
 *     with the scale they were parsed with. decode(encode(ev)) has the same
 *     rs_event_hash as ev, and encode(decode(encode(ev))) == encode(ev).
 *
 * Ownership: decode fills a caller-owned rs_event_t whose line, milestone and
 * bill-line arrays it malloc()s (rs_event_clear frees them). Encoders return
 * a malloc()ed NUL-terminated string the caller free()s; they return NULL on
 * ENOMEM, and also when the event cannot be represented (an unknown type or
 * enum value, a string that is not valid UTF-8, a decimal scale outside
 * 0..18). No jansson value outlives the call that made it.
 */
#include "rs_codec.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Error messages                                                           */
/* ------------------------------------------------------------------------ */

/* Longest piece of input quoted in an error message, in bytes. */
#define QUOTE_MAX 64

/* Length of the valid UTF-8 character at s (1..4), 0 if s ends inside a
 * character, -1 if the bytes are not valid UTF-8 (RFC 3629: no overlongs,
 * surrogates or code points above U+10FFFF). */
static int utf8_char_len(const unsigned char *s)
{
    unsigned char lo = 0x80, hi = 0xBF;
    int len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4;
    else
        return -1;
    if (s[0] == 0xE0)
        lo = 0xA0;
    else if (s[0] == 0xED)
        hi = 0x9F;
    else if (s[0] == 0xF0)
        lo = 0x90;
    else if (s[0] == 0xF4)
        hi = 0x8F;
    for (int i = 1; i < len; i++) {
        if (s[i] == '\0')
            return 0;
        if (s[i] < lo || s[i] > hi)
            return -1;
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

/* Make `s` one printable line of valid UTF-8: control bytes and bytes that
 * are not UTF-8 become '?', and a character cut short at the end (by
 * snprintf) is dropped. */
static void tidy_message(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        int n = utf8_char_len(p);
        if (n == 0) {
            *p = '\0';
            break;
        }
        if (n < 0 || *p < 0x20 || *p == 0x7f) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* Copy at most QUOTE_MAX bytes of `s` (valid UTF-8) into dst, cutting on a
 * character boundary and marking the cut with "...". Returns dst. */
static const char *quote(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n <= QUOTE_MAX && n < cap) {
        memcpy(dst, s, n + 1);
        return dst;
    }
    size_t cut = QUOTE_MAX < cap - 4 ? QUOTE_MAX : cap - 4;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    memcpy(dst, s, cut);
    memcpy(dst + cut, "...", 4);
    return dst;
}

typedef struct decoder {
    const char *event_id; /* "?" until event_id has been checked */
    char *errstr;
    size_t errlen;
} decoder_t;

/* Write "event <id>: <prefix>.<key>: <reason>" into errstr; returns -1.
 * prefix and key may each be NULL. */
static int fail(decoder_t *d, const char *prefix, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(decoder_t *d, const char *prefix, const char *key, const char *fmt, ...)
{
    char reason[320];
    va_list ap;

    if (d->errstr == NULL || d->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    tidy_message(reason);
    if (prefix && key)
        snprintf(d->errstr, d->errlen, "event %s: %s.%s: %s", d->event_id, prefix, key, reason);
    else if (prefix || key)
        snprintf(d->errstr, d->errlen, "event %s: %s: %s", d->event_id, prefix ? prefix : key,
                 reason);
    else
        snprintf(d->errstr, d->errlen, "event %s: %s", d->event_id, reason);
    tidy_message(d->errstr);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Field readers. Each returns 1 when the field was read, 0 when an         */
/* optional field is absent, -1 (errstr set) on error.                      */
/* ------------------------------------------------------------------------ */

enum { OPTIONAL = 0, REQUIRED = 1 };

/* Sign rules for decimals. */
enum { DEC_ANY = 0, DEC_NONNEG, DEC_POSITIVE };

/* The member `key` of obj; JSON null counts as absent. */
static json_t *member(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* A non-empty string, borrowed from the JSON tree. */
static int read_text(decoder_t *d, const json_t *obj, const char *prefix, const char *key,
                     int required, const char **out)
{
    json_t *v = member(obj, key);
    if (v == NULL)
        return required ? fail(d, prefix, key, "missing") : 0;
    if (!json_is_string(v))
        return fail(d, prefix, key, "must be a string");
    if (json_string_length(v) == 0)
        return fail(d, prefix, key, "must not be empty");
    *out = json_string_value(v);
    return 1;
}

/* A non-empty string copied into a fixed-size field of `cap` bytes. */
static int read_string(decoder_t *d, const json_t *obj, const char *prefix, const char *key,
                       int required, char *dst, size_t cap)
{
    const char *s;
    int rc = read_text(d, obj, prefix, key, required, &s);
    if (rc <= 0)
        return rc;
    size_t n = strlen(s); /* jansson rejects \u0000, so this is the full length */
    if (n >= cap)
        return fail(d, prefix, key, "too long (%zu bytes, at most %zu)", n, cap - 1);
    memcpy(dst, s, n + 1);
    return 1;
}

static int read_date(decoder_t *d, const json_t *obj, const char *prefix, const char *key,
                     int required, rs_date_t *out)
{
    const char *s;
    char q[QUOTE_MAX + 4];
    int rc = read_text(d, obj, prefix, key, required, &s);
    if (rc <= 0)
        return rc;
    if (rs_date_parse(s, out) != 0)
        return fail(d, prefix, key, "not a valid YYYY-MM-DD date \"%s\"",
                    quote(q, sizeof(q), s));
    return 1;
}

static int read_decimal(decoder_t *d, const json_t *obj, const char *prefix, const char *key,
                        int required, int sign_rule, rs_decimal_t *out)
{
    char why[256];
    json_t *v = member(obj, key);
    if (v == NULL)
        return required ? fail(d, prefix, key, "missing") : 0;
    if (!json_is_string(v))
        return fail(d, prefix, key, "must be a decimal string");
    if (rs_decimal_parse(json_string_value(v), out, why, sizeof(why)) != 0)
        return fail(d, prefix, key, "%s", why);
    if (sign_rule == DEC_NONNEG && out->mantissa < 0)
        return fail(d, prefix, key, "must not be negative");
    if (sign_rule == DEC_POSITIVE && out->mantissa <= 0)
        return fail(d, prefix, key, "must be greater than zero");
    return 1;
}

/* An array; when required it must also be non-empty. */
static int read_array(decoder_t *d, const json_t *obj, const char *prefix, const char *key,
                      int required, json_t **out)
{
    json_t *v = member(obj, key);
    if (v == NULL)
        return required ? fail(d, prefix, key, "missing") : 0;
    if (!json_is_array(v))
        return fail(d, prefix, key, "must be an array");
    if (required && json_array_size(v) == 0)
        return fail(d, prefix, key, "must not be empty");
    if (json_array_size(v) > INT_MAX / 2)
        return fail(d, prefix, key, "too many entries");
    *out = v;
    return 1;
}

/* `seen` is a JSON object used as a set of ids. Returns 1 if id was already
 * in it, 0 if it was added, -1 on ENOMEM. */
static int seen_before(json_t *seen, const char *id)
{
    if (json_object_get(seen, id) != NULL)
        return 1;
    return json_object_set_new(seen, id, json_true()) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Enums                                                                    */
/* ------------------------------------------------------------------------ */

static int read_method(decoder_t *d, const json_t *obj, const char *prefix, rs_method_t *out)
{
    const char *s;
    char q[QUOTE_MAX + 4];
    if (read_text(d, obj, prefix, "recognition", REQUIRED, &s) < 0)
        return -1;
    *out = rs_method_from_name(s);
    if (*out == RS_METHOD_NONE)
        return fail(d, prefix, "recognition",
                    "unknown value \"%s\" (expected ratable_daily, ratable_monthly, "
                    "point_in_time, usage or milestone)",
                    quote(q, sizeof(q), s));
    return 1;
}

static int read_treatment(decoder_t *d, const json_t *obj, rs_treatment_t *out)
{
    const char *s;
    char q[QUOTE_MAX + 4];
    int rc = read_text(d, obj, NULL, "treatment", OPTIONAL, &s);
    *out = RS_TREATMENT_PROSPECTIVE;
    if (rc <= 0)
        return rc;
    if (strcmp(s, "prospective") == 0)
        *out = RS_TREATMENT_PROSPECTIVE;
    else if (strcmp(s, "catch_up") == 0)
        *out = RS_TREATMENT_CATCH_UP;
    else
        return fail(d, NULL, "treatment",
                    "unknown value \"%s\" (expected prospective or catch_up)",
                    quote(q, sizeof(q), s));
    return 1;
}

static int read_credit_reason(decoder_t *d, const json_t *obj, rs_credit_reason_t *out)
{
    const char *s;
    char q[QUOTE_MAX + 4];
    if (read_text(d, obj, NULL, "reason", REQUIRED, &s) < 0)
        return -1;
    *out = rs_credit_reason_from_name(s);
    if (*out == RS_CREDIT_NONE)
        return fail(d, NULL, "reason",
                    "unknown value \"%s\" (expected discount, refund, cancellation or error)",
                    quote(q, sizeof(q), s));
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Lines                                                                    */
/* ------------------------------------------------------------------------ */

/* Field prefixes: "lines[2147483647]" and
 * "lines[2147483647].milestones[2147483647]" (array sizes are capped at
 * INT_MAX / 2, so indexes fit an int). */
#define LINE_PREFIX_MAX 32
#define PREFIX_MAX 64

static int decode_milestones(decoder_t *d, const json_t *line, const char *lpfx,
                             rs_line_spec_t *l)
{
    json_t *arr = NULL, *seen = NULL;
    int rc =
        read_array(d, line, lpfx, "milestones", l->recognition == RS_METHOD_MILESTONE, &arr);
    if (rc <= 0)
        return rc;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 1;
    rc = -1;
    seen = json_object();
    l->milestones = calloc(n, sizeof(*l->milestones));
    if (seen == NULL || l->milestones == NULL) {
        fail(d, NULL, NULL, "out of memory");
        goto out;
    }
    l->n_milestones = (int)n;
    for (size_t i = 0; i < n; i++) {
        char pfx[PREFIX_MAX], q[QUOTE_MAX + 4];
        json_t *m = json_array_get(arr, i);
        rs_milestone_spec_t *ms = &l->milestones[i];
        snprintf(pfx, sizeof(pfx), "%s.milestones[%d]", lpfx, (int)i);
        if (!json_is_object(m)) {
            fail(d, pfx, NULL, "must be an object");
            goto out;
        }
        if (read_string(d, m, pfx, "milestone_id", REQUIRED, ms->milestone_id,
                        sizeof(ms->milestone_id)) < 0 ||
            read_decimal(d, m, pfx, "amount", REQUIRED, DEC_NONNEG, &ms->amount) < 0)
            goto out;
        int dup = seen_before(seen, ms->milestone_id);
        if (dup != 0) {
            if (dup < 0)
                fail(d, NULL, NULL, "out of memory");
            else
                fail(d, pfx, "milestone_id", "duplicate milestone_id \"%s\"",
                     quote(q, sizeof(q), ms->milestone_id));
            goto out;
        }
    }
    rc = 1;
out:
    json_decref(seen);
    return rc;
}

static int decode_line(decoder_t *d, const json_t *o, const char *pfx, rs_line_spec_t *l)
{
    char a[16], b[16];
    if (!json_is_object(o))
        return fail(d, pfx, NULL, "must be an object");
    if (read_string(d, o, pfx, "line_id", REQUIRED, l->line_id, sizeof(l->line_id)) < 0 ||
        read_string(d, o, pfx, "product", REQUIRED, l->product, sizeof(l->product)) < 0 ||
        read_method(d, o, pfx, &l->recognition) < 0 ||
        read_date(d, o, pfx, "start", REQUIRED, &l->start) < 0)
        return -1;
    int has_end =
        read_date(d, o, pfx, "end", l->recognition != RS_METHOD_POINT_IN_TIME, &l->end);
    if (has_end < 0)
        return -1;
    if (has_end == 0)
        l->end = l->start;
    if (l->end < l->start)
        return fail(d, pfx, "end", "%s is before start %s",
                    rs_date_format(l->end, a, sizeof(a)),
                    rs_date_format(l->start, b, sizeof(b)));
    if (read_decimal(d, o, pfx, "amount", REQUIRED, DEC_NONNEG, &l->amount) < 0)
        return -1;
    int rc = read_decimal(d, o, pfx, "ssp", OPTIONAL, DEC_NONNEG, &l->ssp);
    if (rc < 0)
        return -1;
    l->has_ssp = rc;
    rc = read_decimal(d, o, pfx, "unit_price", l->recognition == RS_METHOD_USAGE, DEC_NONNEG,
                      &l->unit_price);
    if (rc < 0)
        return -1;
    l->has_unit_price = rc;
    return decode_milestones(d, o, pfx, l);
}

/* `lines` of contract.booked / contract.amended. */
static int decode_lines(decoder_t *d, const json_t *root, rs_event_t *ev)
{
    json_t *arr = NULL, *seen = NULL;
    int rc = -1;
    if (read_array(d, root, NULL, "lines", REQUIRED, &arr) < 0)
        return -1;
    size_t n = json_array_size(arr);
    seen = json_object();
    ev->lines = calloc(n, sizeof(*ev->lines));
    if (seen == NULL || ev->lines == NULL) {
        fail(d, NULL, NULL, "out of memory");
        goto out;
    }
    ev->n_lines = (int)n;
    for (size_t i = 0; i < n; i++) {
        char pfx[LINE_PREFIX_MAX], q[QUOTE_MAX + 4];
        rs_line_spec_t *l = &ev->lines[i];
        snprintf(pfx, sizeof(pfx), "lines[%d]", (int)i);
        if (decode_line(d, json_array_get(arr, i), pfx, l) < 0)
            goto out;
        int dup = seen_before(seen, l->line_id);
        if (dup != 0) {
            if (dup < 0)
                fail(d, NULL, NULL, "out of memory");
            else
                fail(d, pfx, "line_id", "duplicate line_id \"%s\"",
                     quote(q, sizeof(q), l->line_id));
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(seen);
    return rc;
}

/* `lines` of invoice.issued (service dates, amount >= 0) or of
 * credit_note.issued (no service dates, amount > 0). */
static int decode_bill_lines(decoder_t *d, const json_t *root, rs_event_t *ev, int credit)
{
    json_t *arr = NULL;
    if (read_array(d, root, NULL, "lines", REQUIRED, &arr) < 0)
        return -1;
    size_t n = json_array_size(arr);
    ev->bill_lines = calloc(n, sizeof(*ev->bill_lines));
    if (ev->bill_lines == NULL)
        return fail(d, NULL, NULL, "out of memory");
    ev->n_bill_lines = (int)n;
    for (size_t i = 0; i < n; i++) {
        char pfx[LINE_PREFIX_MAX], a[16], b[16];
        const json_t *o = json_array_get(arr, i);
        rs_bill_line_t *bl = &ev->bill_lines[i];
        bl->service_start = bl->service_end = RS_DATE_NONE;
        snprintf(pfx, sizeof(pfx), "lines[%d]", (int)i);
        if (!json_is_object(o))
            return fail(d, pfx, NULL, "must be an object");
        if (read_string(d, o, pfx, "line_id", REQUIRED, bl->line_id, sizeof(bl->line_id)) < 0 ||
            read_decimal(d, o, pfx, "amount", REQUIRED, credit ? DEC_POSITIVE : DEC_NONNEG,
                         &bl->amount) < 0)
            return -1;
        int rc = read_decimal(d, o, pfx, "tax", OPTIONAL, DEC_NONNEG, &bl->tax);
        if (rc < 0)
            return -1;
        bl->has_tax = rc;
        if (credit)
            continue;
        if (read_date(d, o, pfx, "service_start", OPTIONAL, &bl->service_start) < 0 ||
            read_date(d, o, pfx, "service_end", OPTIONAL, &bl->service_end) < 0)
            return -1;
        if (bl->service_start != RS_DATE_NONE && bl->service_end != RS_DATE_NONE &&
            bl->service_end < bl->service_start)
            return fail(d, pfx, "service_end", "%s is before service_start %s",
                        rs_date_format(bl->service_end, a, sizeof(a)),
                        rs_date_format(bl->service_start, b, sizeof(b)));
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

static int decode_booked(decoder_t *d, const json_t *root, rs_event_t *ev)
{
    const char *cur;
    char q[QUOTE_MAX + 4];
    if (read_string(d, root, NULL, "customer_id", REQUIRED, ev->customer_id,
                    sizeof(ev->customer_id)) < 0 ||
        read_text(d, root, NULL, "currency", REQUIRED, &cur) < 0)
        return -1;
    if (rs_currency_exponent(cur) < 0)
        return fail(d, NULL, "currency", "unknown ISO 4217 currency \"%s\"",
                    quote(q, sizeof(q), cur));
    memcpy(ev->currency, cur, 4); /* known codes are 3 letters */
    if (read_date(d, root, NULL, "booked_on", REQUIRED, &ev->booked_on) < 0)
        return -1;
    json_t *src = member(root, "source");
    if (src != NULL) {
        if (!json_is_object(src))
            return fail(d, NULL, "source", "must be an object");
        if (read_string(d, src, "source", "system", REQUIRED, ev->source_system,
                        sizeof(ev->source_system)) < 0 ||
            read_string(d, src, "source", "record_id", REQUIRED, ev->source_record_id,
                        sizeof(ev->source_record_id)) < 0)
            return -1;
    }
    return decode_lines(d, root, ev);
}

static int decode_body(decoder_t *d, const json_t *root, rs_event_t *ev)
{
    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        return decode_booked(d, root, ev);
    case RS_EV_CONTRACT_AMENDED:
        if (read_date(d, root, NULL, "effective_on", REQUIRED, &ev->effective_on) < 0 ||
            decode_lines(d, root, ev) < 0)
            return -1;
        return read_treatment(d, root, &ev->treatment) < 0 ? -1 : 0;
    case RS_EV_CONTRACT_CANCELLED:
        return read_date(d, root, NULL, "effective_on", REQUIRED, &ev->effective_on) < 0 ? -1
                                                                                         : 0;
    case RS_EV_MILESTONE_COMPLETED:
        if (read_string(d, root, NULL, "line_id", REQUIRED, ev->line_id, sizeof(ev->line_id)) <
                0 ||
            read_string(d, root, NULL, "milestone_id", REQUIRED, ev->milestone_id,
                        sizeof(ev->milestone_id)) < 0 ||
            read_date(d, root, NULL, "completed_on", REQUIRED, &ev->completed_on) < 0)
            return -1;
        return 0;
    case RS_EV_PERIOD_CLOSED: {
        const char *s;
        char q[QUOTE_MAX + 4];
        if (read_text(d, root, NULL, "period", REQUIRED, &s) < 0)
            return -1;
        if (rs_period_parse(s, &ev->period) != 0)
            return fail(d, NULL, "period", "not a valid YYYY-MM period \"%s\"",
                        quote(q, sizeof(q), s));
        return 0;
    }
    case RS_EV_INVOICE_ISSUED:
        if (read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_date(d, root, NULL, "issued_on", REQUIRED, &ev->on) < 0 ||
            read_date(d, root, NULL, "due_on", OPTIONAL, &ev->due_on) < 0)
            return -1;
        return decode_bill_lines(d, root, ev, 0);
    case RS_EV_INVOICE_VOIDED:
        if (read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_date(d, root, NULL, "voided_on", REQUIRED, &ev->on) < 0)
            return -1;
        return 0;
    case RS_EV_CREDIT_NOTE_ISSUED:
        if (read_string(d, root, NULL, "credit_note_id", REQUIRED, ev->credit_note_id,
                        sizeof(ev->credit_note_id)) < 0 ||
            read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_date(d, root, NULL, "issued_on", REQUIRED, &ev->on) < 0 ||
            read_credit_reason(d, root, &ev->reason) < 0)
            return -1;
        return decode_bill_lines(d, root, ev, 1);
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        if (read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_date(d, root, NULL, "declared_on", REQUIRED, &ev->on) < 0)
            return -1;
        return 0;
    case RS_EV_PAYMENT_RECEIVED:
        if (read_string(d, root, NULL, "payment_id", REQUIRED, ev->payment_id,
                        sizeof(ev->payment_id)) < 0 ||
            read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_decimal(d, root, NULL, "amount", REQUIRED, DEC_POSITIVE, &ev->amount) < 0 ||
            read_date(d, root, NULL, "received_on", REQUIRED, &ev->on) < 0)
            return -1;
        return 0;
    case RS_EV_PAYMENT_REFUNDED:
        if (read_string(d, root, NULL, "refund_id", REQUIRED, ev->refund_id,
                        sizeof(ev->refund_id)) < 0 ||
            read_string(d, root, NULL, "payment_id", REQUIRED, ev->payment_id,
                        sizeof(ev->payment_id)) < 0 ||
            read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_decimal(d, root, NULL, "amount", REQUIRED, DEC_POSITIVE, &ev->amount) < 0 ||
            read_date(d, root, NULL, "refunded_on", REQUIRED, &ev->on) < 0)
            return -1;
        return 0;
    case RS_EV_PAYMENT_FAILED:
        if (read_string(d, root, NULL, "payment_id", REQUIRED, ev->payment_id,
                        sizeof(ev->payment_id)) < 0 ||
            read_string(d, root, NULL, "invoice_id", REQUIRED, ev->invoice_id,
                        sizeof(ev->invoice_id)) < 0 ||
            read_date(d, root, NULL, "failed_on", REQUIRED, &ev->on) < 0 ||
            read_string(d, root, NULL, "reason", REQUIRED, ev->failure_reason,
                        sizeof(ev->failure_reason)) < 0)
            return -1;
        return 0;
    case RS_EV_USAGE_RECORDED:
        if (read_string(d, root, NULL, "line_id", REQUIRED, ev->line_id, sizeof(ev->line_id)) <
                0 ||
            read_decimal(d, root, NULL, "quantity", REQUIRED, DEC_NONNEG, &ev->quantity) < 0)
            return -1;
        return 0;
    default:
        return fail(d, NULL, "type", "unsupported event type");
    }
}

int rs_codec_json_decode(const char *json, size_t len, rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    decoder_t d = {"?", errstr, errlen};
    json_t *root = NULL;
    json_error_t jerr;
    const char *s;
    char q[QUOTE_MAX + 4];
    int rc = -1;

    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    if (ev == NULL)
        return fail(&d, NULL, NULL, "no event to decode into");
    rs_event_init(ev);
    if (json == NULL) {
        fail(&d, NULL, NULL, "no input");
        goto out;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fail(&d, NULL, NULL, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        fail(&d, NULL, NULL, "not a JSON object");
        goto out;
    }

    if (read_string(&d, root, NULL, "event_id", REQUIRED, ev->event_id, sizeof(ev->event_id)) <
        0)
        goto out;
    d.event_id = ev->event_id;

    if (read_text(&d, root, NULL, "type", REQUIRED, &s) < 0)
        goto out;
    ev->type = rs_event_type_from_name(s);
    if (ev->type == RS_EV_UNKNOWN) {
        fail(&d, NULL, "type", "unknown event type \"%s\"", quote(q, sizeof(q), s));
        goto out;
    }
    /* period.closed is a control event: it has no contract, even if given one. */
    if (ev->type != RS_EV_PERIOD_CLOSED &&
        read_string(&d, root, NULL, "contract_id", REQUIRED, ev->contract_id,
                    sizeof(ev->contract_id)) < 0)
        goto out;

    if (read_text(&d, root, NULL, "occurred_at", REQUIRED, &s) < 0)
        goto out;
    if (rs_timestamp_parse_date(s, &ev->occurred_on) != 0) {
        fail(&d, NULL, "occurred_at", "not an RFC 3339 timestamp");
        goto out;
    }
    if (strlen(s) >= sizeof(ev->occurred_at)) {
        fail(&d, NULL, "occurred_at", "too long (%zu bytes, at most %zu)", strlen(s),
             sizeof(ev->occurred_at) - 1);
        goto out;
    }
    memcpy(ev->occurred_at, s, strlen(s) + 1);

    if (decode_body(&d, root, ev) < 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
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
        rc |= json_object_set_new(row, "account", json_string(rs_account_name(p->account)));
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
