/*
 * rs_codec_fields.c — the event contract's field rules, once for both codecs.
 * The interface and what a source must guarantee are in rs_codec_fields.h;
 * this comment says how the file keeps it.
 *
 * Invariants:
 *   - Every rule is written here and nowhere else: one reader per kind of
 *     value (string, decimal, array, and read_parsed with a text_rule_t for
 *     texts that must parse: dates, periods, currencies, enumerated values),
 *     BODY (the fields of each event type, in the order they are checked),
 *     decode_array (arrays of records, unique ids), and one function per
 *     record a row of BODY cannot describe: contract lines, milestones and
 *     bill lines (rules between fields).
 *   - Field readers return 1 when the field was read, 0 when an optional
 *     field is absent, -1 (errstr set) on error. Checks run in the contract's
 *     field order and the first broken rule gives the message.
 *   - Sources are read only through rs_codec_source_t. The one rule that
 *     only Avro can break, a record whose `type` names another event type,
 *     is checked here too (rs_codec_decode_event), since only the decoder
 *     knows both the record and the type.
 *   - BODY stores offsets into rs_event_t; its macros check at compile time
 *     that each offset is of a field of the type its rule writes.
 *
 * Ownership: besides the event's arrays (owned by the event, see the header),
 * the only allocation is a jansson object used as a set of ids, freed before
 * the function that made it returns.
 */
#include "rs_codec_fields.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(RS_RK_CONTRACT_BOOKED + 1 == RS_EV_CONTRACT_BOOKED &&
                   RS_RK_PERIOD_CLOSED + 1 == RS_EV_PERIOD_CLOSED &&
                   RS_RK_USAGE_RECORDED + 1 == RS_EV_USAGE_RECORDED &&
                   RS_RK__EVENTS + 1 == RS_EV__COUNT,
               "event record kind k is event type k + 1");

/* ------------------------------------------------------------------------ */
/* Records and fields                                                       */
/* ------------------------------------------------------------------------ */

const char *const rs_codec_record_name[RS_RK__COUNT] = {
    [RS_RK_CONTRACT_BOOKED] = "ContractBooked",
    [RS_RK_CONTRACT_AMENDED] = "ContractAmended",
    [RS_RK_CONTRACT_CANCELLED] = "ContractCancelled",
    [RS_RK_MILESTONE_COMPLETED] = "MilestoneCompleted",
    [RS_RK_PERIOD_CLOSED] = "PeriodClosed",
    [RS_RK_INVOICE_ISSUED] = "InvoiceIssued",
    [RS_RK_INVOICE_VOIDED] = "InvoiceVoided",
    [RS_RK_CREDIT_NOTE_ISSUED] = "CreditNoteIssued",
    [RS_RK_INVOICE_UNCOLLECTIBLE] = "InvoiceUncollectible",
    [RS_RK_PAYMENT_RECEIVED] = "PaymentReceived",
    [RS_RK_PAYMENT_REFUNDED] = "PaymentRefunded",
    [RS_RK_PAYMENT_FAILED] = "PaymentFailed",
    [RS_RK_USAGE_RECORDED] = "UsageRecorded",
    [RS_RK_CONTRACT_LINE] = "ContractLine",
    [RS_RK_MILESTONE] = "Milestone",
    [RS_RK_SOURCE] = "Source",
    [RS_RK_INVOICE_LINE] = "InvoiceLine",
    [RS_RK_CREDIT_NOTE_LINE] = "CreditNoteLine",
    [RS_RK_JOURNAL_ENTRY] = "JournalEntry",
    [RS_RK_JOURNAL_LINE] = "JournalLine",
    [RS_RK_DEFERRED_BALANCE] = "DeferredBalance",
    [RS_RK_DEAD_LETTER] = "DeadLetter",
    [RS_RK_EVENT] = NULL,
};

#define HEAD "event_id", "type", "contract_id", "occurred_at"

const char *const rs_codec_field_name[RS_RK__COUNT][RS_CODEC_MAX_SLOTS] = {
    [RS_RK_CONTRACT_BOOKED] = {HEAD, "customer_id", "currency", "booked_on", "source", "lines"},
    [RS_RK_CONTRACT_AMENDED] = {HEAD, "effective_on", "lines", "treatment"},
    [RS_RK_CONTRACT_CANCELLED] = {HEAD, "effective_on"},
    [RS_RK_MILESTONE_COMPLETED] = {HEAD, "line_id", "milestone_id", "completed_on"},
    [RS_RK_PERIOD_CLOSED] = {HEAD, "period"},
    [RS_RK_INVOICE_ISSUED] = {HEAD, "invoice_id", "issued_on", "due_on", "lines"},
    [RS_RK_INVOICE_VOIDED] = {HEAD, "invoice_id", "voided_on"},
    [RS_RK_CREDIT_NOTE_ISSUED] = {HEAD, "credit_note_id", "invoice_id", "issued_on", "reason",
                                  "lines"},
    [RS_RK_INVOICE_UNCOLLECTIBLE] = {HEAD, "invoice_id", "declared_on"},
    [RS_RK_PAYMENT_RECEIVED] = {HEAD, "payment_id", "invoice_id", "amount", "received_on"},
    [RS_RK_PAYMENT_REFUNDED] = {HEAD, "refund_id", "payment_id", "invoice_id", "amount",
                                "refunded_on"},
    [RS_RK_PAYMENT_FAILED] = {HEAD, "payment_id", "invoice_id", "failed_on", "reason"},
    [RS_RK_USAGE_RECORDED] = {HEAD, "line_id", "quantity"},
    [RS_RK_CONTRACT_LINE] = {"line_id", "product", "recognition", "start", "end", "amount",
                             "ssp", "unit_price", "milestones"},
    [RS_RK_MILESTONE] = {"milestone_id", "amount"},
    [RS_RK_SOURCE] = {"system", "record_id"},
    [RS_RK_INVOICE_LINE] = {"line_id", "amount", "tax", "service_start", "service_end"},
    [RS_RK_CREDIT_NOTE_LINE] = {"line_id", "amount", "tax"},
    [RS_RK_JOURNAL_ENTRY] = {"entry_id", "seq", "posted_on", "period", "service_period", "kind",
                             "rule", "contract_id", "customer_id", "line_id", "document_id",
                             "currency", "exponent", "lines", "source_event_ids",
                             "source_count", "billed", "recognized", "received"},
    [RS_RK_JOURNAL_LINE] = {"account", "debit", "credit", "code", "product"},
    [RS_RK_DEFERRED_BALANCE] = {"snapshot_key", "contract_id", "customer_id", "scope",
                                "line_id", "invoice_id", "currency", "exponent", "billed",
                                "recognized", "deferred", "unbilled", "received",
                                "as_of_period"},
    [RS_RK_DEAD_LETTER] = {"topic", "partition", "offset", "error", "key", "value",
                           "timestamp"},
    [RS_RK_EVENT] = {HEAD},
};

int rs_codec_record_kind(const char *name)
{
    for (int k = 0; name != NULL && k < RS_RK__COUNT; k++)
        if (rs_codec_record_name[k] != NULL && strcmp(name, rs_codec_record_name[k]) == 0)
            return k;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* UTF-8 and error messages                                                 */
/* ------------------------------------------------------------------------ */

/* Longest piece of input quoted in an error message, in bytes. */
#define QUOTE_MAX 64
#define QUOTE_BUF (QUOTE_MAX + 4)

/* Length of the valid UTF-8 character at s (1..4), 0 if it is cut short by
 * the end of the `avail` bytes, -1 if the bytes are not valid UTF-8
 * (RFC 3629: no overlongs, surrogates or code points above U+10FFFF). */
static int utf8_char_len(const unsigned char *s, size_t avail)
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
        if ((size_t)i >= avail)
            return 0;
        if (s[i] < lo || s[i] > hi)
            return -1;
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

/* 1 if none of the n bytes at u has its high bit set: whole words ORed
 * together, the last one overlapping the one before it. */
static int all_ascii(const unsigned char *u, size_t n)
{
    uint64_t acc = 0, w;
    if (n < sizeof(w)) {
        for (size_t i = 0; i < n; i++)
            acc |= u[i];
        return (acc & 0x80) == 0;
    }
    for (size_t i = 0; i + sizeof(w) < n; i += sizeof(w)) {
        memcpy(&w, u + i, sizeof(w));
        acc |= w;
    }
    memcpy(&w, u + n - sizeof(w), sizeof(w));
    acc |= w;
    return (acc & UINT64_C(0x8080808080808080)) == 0;
}

int rs_codec_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (all_ascii(u, n)) /* the common case */
        return 1;
    for (size_t i = 0; i < n;) {
        int len = utf8_char_len(u + i, n - i);
        if (len <= 0)
            return 0;
        i += (size_t)len;
    }
    return 1;
}

/* Make `s` one printable line of valid UTF-8: control bytes and bytes that
 * are not UTF-8 become '?', and a character cut short at the end (by
 * snprintf) is dropped. */
static void tidy_message(char *s)
{
    unsigned char *p = (unsigned char *)s;
    unsigned char *end = p + strlen(s);
    while (p < end) {
        int n = utf8_char_len(p, (size_t)(end - p));
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

int rs_codec_fail(rs_codec_dec_t *d, const char *prefix, const char *key, const char *fmt, ...)
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

static int oom(rs_codec_dec_t *d)
{
    d->nomem = 1;
    return rs_codec_fail(d, NULL, NULL, "out of memory");
}

/* ------------------------------------------------------------------------ */
/* Field readers                                                            */
/* ------------------------------------------------------------------------ */

enum { OPTIONAL = 0, REQUIRED = 1 };

/* Sign rules for decimals. */
enum { DEC_NONNEG, DEC_POSITIVE };

/* Field prefixes: "lines[1073741823]" and
 * "lines[1073741823].milestones[1073741823]" (arrays are capped at
 * INT_MAX / 2 items). */
#define PREFIX_MAX 64

#define FNAME(r, slot) (rs_codec_field_name[(r)->rk][(slot)])

/* A string, possibly empty; `wrong_type` is the reason when it is not one. */
static int get_string(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix, int slot,
                      int required, const char *wrong_type, const char **s, size_t *n)
{
    const char *why = "unusable string";
    int rc = d->src->string(d->src, r, slot, s, n, &why);
    if (rc == 0)
        return required ? rs_codec_fail(d, prefix, FNAME(r, slot), "missing") : 0;
    if (rc == RS_CODEC_EWRONG)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "%s", wrong_type);
    if (rc < 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "%s", why);
    return 1;
}

/* A non-empty string of *n bytes, borrowed from the source. */
static int read_text(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix, int slot,
                     int required, const char **s, size_t *n)
{
    int rc = get_string(d, r, prefix, slot, required, "must be a string", s, n);
    if (rc <= 0)
        return rc;
    if (*n == 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "must not be empty");
    return 1;
}

/* A non-empty string copied into a fixed-size field of `cap` bytes (longer
 * is an error, never a silent truncation). */
static int read_string(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix,
                       int slot, int required, char *dst, size_t cap)
{
    const char *s;
    size_t n;
    int rc = read_text(d, r, prefix, slot, required, &s, &n);
    if (rc <= 0)
        return rc;
    if (n >= cap)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "too long (%zu bytes, at most %zu)", n,
                             cap - 1);
    memcpy(dst, s, n + 1);
    return 1;
}

/* Money, prices and quantities: a string parsed by rs_decimal_parse (never
 * a number, whose value a JSON parser may already have rounded). */
static int read_decimal(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix,
                        int slot, int required, int sign_rule, rs_decimal_t *out)
{
    char why[256];
    const char *s;
    size_t n;
    int rc = get_string(d, r, prefix, slot, required, "must be a decimal string", &s, &n);
    if (rc <= 0)
        return rc;
    if (rs_decimal_parse(s, out, why, sizeof(why)) != 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "%s", why);
    if (sign_rule == DEC_NONNEG && out->mantissa < 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "must not be negative");
    if (sign_rule == DEC_POSITIVE && out->mantissa <= 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "must be greater than zero");
    return 1;
}

/* An array; when required it must also be non-empty. */
static int read_array(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix, int slot,
                      int required, rs_codec_node_t *arr, size_t *n)
{
    int rc = d->src->array(d->src, r, slot, arr, n);
    if (rc == 0)
        return required ? rs_codec_fail(d, prefix, FNAME(r, slot), "missing") : 0;
    if (rc < 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "must be an array");
    if (required && *n == 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "must not be empty");
    if (*n > INT_MAX / 2)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "too many entries");
    return 1;
}

/* Item i of `arr`, which must be a record (of kind rk). */
static int read_item(rs_codec_dec_t *d, const rs_codec_node_t *arr, size_t i, int rk,
                     const char *pfx, rs_codec_node_t *rec)
{
    if (d->src->item(d->src, arr, i, rec) != 0)
        return rs_codec_fail(d, pfx, NULL, "must be an object");
    rec->rk = rk;
    return 0;
}

/* Arrays up to this many items check their ids for duplicates pairwise;
 * longer ones through a jansson object used as a set. */
#define UNIQUE_PAIRWISE 16

/* The error of `id`, read from field `slot` of `rec`, seen before. -1. */
static int duplicate(rs_codec_dec_t *d, const rs_codec_node_t *rec, const char *pfx, int slot,
                     const char *id)
{
    char q[QUOTE_BUF];
    return rs_codec_fail(d, pfx, FNAME(rec, slot), "duplicate %s \"%s\"", FNAME(rec, slot),
                         quote(q, sizeof(q), id));
}

/* `id`, read from field `slot` of `rec`, must not be in `seen` (a jansson
 * object used as a set); it is added. 0, or -1 (duplicate or ENOMEM). */
static int check_unique(rs_codec_dec_t *d, json_t *seen, const rs_codec_node_t *rec,
                        const char *pfx, int slot, const char *id)
{
    if (json_object_get(seen, id) != NULL)
        return duplicate(d, rec, pfx, slot, id);
    return json_object_set_new(seen, id, json_true()) == 0 ? 0 : oom(d);
}

/* Append len bytes of src to dst[*n] within cap - 1 bytes (what does not
 * fit is dropped, as snprintf drops it). */
static void append_cut(char *dst, size_t cap, size_t *n, const char *src, size_t len)
{
    size_t room = cap - 1 - *n;
    if (len > room)
        len = room;
    memcpy(dst + *n, src, len);
    *n += len;
}

/* "<prefix>.<name>[<i>]", or "<name>[<i>]" when prefix is NULL, into
 * dst[cap] (cap > 0) as snprintf writes it, cut to cap - 1 bytes, without
 * its format parsing: an array item's field path, made for every item. */
static void item_prefix(char *dst, size_t cap, const char *prefix, const char *name, size_t i)
{
    char digits[24];
    size_t n = 0, nd = sizeof(digits);
    if (prefix != NULL) {
        append_cut(dst, cap, &n, prefix, strlen(prefix));
        append_cut(dst, cap, &n, ".", 1);
    }
    append_cut(dst, cap, &n, name, strlen(name));
    digits[--nd] = ']';
    do {
        digits[--nd] = (char)('0' + i % 10);
        i /= 10;
    } while (i > 0);
    digits[--nd] = '[';
    append_cut(dst, cap, &n, digits + nd, sizeof(digits) - nd);
    dst[n] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Texts that must parse: dates, periods, currencies, enumerated values     */
/* ------------------------------------------------------------------------ */

/* A parser (0, or -1 when `s` is not a value it knows) and the message for a
 * text it refuses: "<what> \"<text>\"<hint>". */
typedef struct text_rule {
    int (*parse)(const char *s, void *out);
    const char *what;
    const char *hint;
} text_rule_t;

static int parse_date(const char *s, void *out)
{
    return rs_date_parse(s, out);
}

static int parse_period(const char *s, void *out)
{
    return rs_period_parse(s, out);
}

static int parse_currency(const char *s, void *out)
{
    if (rs_currency_exponent(s) < 0)
        return -1;
    memcpy(out, s, 4); /* known codes are 3 letters */
    return 0;
}

static int parse_method(const char *s, void *out)
{
    rs_method_t *m = out;
    *m = rs_method_from_name(s);
    return *m == RS_METHOD_NONE ? -1 : 0;
}

static int parse_treatment(const char *s, void *out)
{
    rs_treatment_t *t = out;
    if (strcmp(s, "prospective") == 0)
        *t = RS_TREATMENT_PROSPECTIVE;
    else if (strcmp(s, "catch_up") == 0)
        *t = RS_TREATMENT_CATCH_UP;
    else
        return -1;
    return 0;
}

static int parse_credit_reason(const char *s, void *out)
{
    rs_credit_reason_t *r = out;
    *r = rs_credit_reason_from_name(s);
    return *r == RS_CREDIT_NONE ? -1 : 0;
}

static const text_rule_t DATE_TEXT = {parse_date, "not a valid YYYY-MM-DD date", ""};
static const text_rule_t PERIOD_TEXT = {parse_period, "not a valid YYYY-MM period", ""};
static const text_rule_t CURRENCY_TEXT = {parse_currency, "unknown ISO 4217 currency", ""};
static const text_rule_t METHOD_TEXT = {
    parse_method, "unknown value",
    " (expected ratable_daily, ratable_monthly, point_in_time, usage or milestone)"};
static const text_rule_t TREATMENT_TEXT = {parse_treatment, "unknown value",
                                           " (expected prospective or catch_up)"};
static const text_rule_t CREDIT_REASON_TEXT = {
    parse_credit_reason, "unknown value",
    " (expected discount, refund, cancellation or error)"};

/* A non-empty text that `t` parses into *out (left as it was when an
 * optional field is absent). */
static int read_parsed(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix,
                       int slot, int required, const text_rule_t *t, void *out)
{
    const char *s;
    size_t n;
    char q[QUOTE_BUF];
    int rc = read_text(d, r, prefix, slot, required, &s, &n);
    if (rc <= 0)
        return rc;
    if (t->parse(s, out) != 0)
        return rs_codec_fail(d, prefix, FNAME(r, slot), "%s \"%s\"%s", t->what,
                             quote(q, sizeof(q), s), t->hint);
    return 1;
}

/* The optional `source` of contract.booked: {system, record_id}. */
static int read_source(rs_codec_dec_t *d, const rs_codec_node_t *r, int slot, rs_event_t *ev)
{
    rs_codec_node_t src;
    const char *pfx = FNAME(r, slot);
    int rc = d->src->record(d->src, r, slot, &src);
    if (rc == 0)
        return 0;
    if (rc < 0)
        return rs_codec_fail(d, NULL, pfx, "must be an object");
    src.rk = RS_RK_SOURCE;
    if (read_string(d, &src, pfx, RS_F_SR_SYSTEM, REQUIRED, ev->source_system,
                    sizeof(ev->source_system)) < 0 ||
        read_string(d, &src, pfx, RS_F_SR_RECORD_ID, REQUIRED, ev->source_record_id,
                    sizeof(ev->source_record_id)) < 0)
        return -1;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Arrays of records: contract lines, milestones, bill lines                */
/* ------------------------------------------------------------------------ */

/* Decodes one record of an array into `item`: 0, or -1 (errstr set). */
typedef int (*item_fn)(rs_codec_dec_t *d, const rs_codec_node_t *rec, const char *pfx,
                       void *item);

/* Allocate the n items of the array of kind-rk records in `owner` (the event;
 * for milestones, the contract line), which owns them from then on
 * (rs_event_clear frees them). Sets *size to an item's size; NULL on ENOMEM. */
static char *alloc_items(void *owner, int rk, size_t n, size_t *size)
{
    rs_event_t *ev = owner;
    rs_line_spec_t *l = owner;
    switch (rk) {
    case RS_RK_MILESTONE:
        *size = sizeof(*l->milestones);
        l->milestones = calloc(n, *size);
        l->n_milestones = l->milestones ? (int)n : 0;
        return (char *)l->milestones;
    case RS_RK_CONTRACT_LINE:
        *size = sizeof(*ev->lines);
        ev->lines = calloc(n, *size);
        ev->n_lines = ev->lines ? (int)n : 0;
        return (char *)ev->lines;
    default: /* invoice and credit note lines */
        *size = sizeof(*ev->bill_lines);
        ev->bill_lines = calloc(n, *size);
        ev->n_bill_lines = ev->bill_lines ? (int)n : 0;
        return (char *)ev->bill_lines;
    }
}

/* Array field `slot` of `r`, its items records of kind rk, each decoded by
 * `one` and named "<prefix>.<field>[i]" in errors. When unique_slot >= 0,
 * the id `one` read from that field (id_off bytes into the item) must not
 * repeat within the array. 1 read, 0 optional and absent, -1 error. */
static int decode_array(rs_codec_dec_t *d, const rs_codec_node_t *r, const char *prefix,
                        int slot, int required, int rk, item_fn one, void *owner,
                        int unique_slot, size_t id_off)
{
    rs_codec_node_t arr;
    size_t n = 0, size = 0;
    json_t *seen = NULL;
    int rc = read_array(d, r, prefix, slot, required, &arr, &n);
    if (rc <= 0 || n == 0)
        return rc;
    rc = -1;
    char *items = alloc_items(owner, rk, n, &size);
    if (items == NULL ||
        (unique_slot >= 0 && n > UNIQUE_PAIRWISE && (seen = json_object()) == NULL)) {
        oom(d);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char pfx[2 * PREFIX_MAX];
        rs_codec_node_t rec;
        char *item = items + i * size;
        item_prefix(pfx, sizeof(pfx), prefix, FNAME(r, slot), i);
        if (read_item(d, &arr, i, rk, pfx, &rec) < 0 || one(d, &rec, pfx, item) < 0)
            goto out;
        if (unique_slot >= 0 && seen == NULL) { /* a short array: compared pairwise */
            for (size_t j = 0; j < i; j++)
                if (strcmp(items + j * size + id_off, item + id_off) == 0) {
                    duplicate(d, &rec, pfx, unique_slot, item + id_off);
                    goto out;
                }
        } else if (seen != NULL &&
                   check_unique(d, seen, &rec, pfx, unique_slot, item + id_off) < 0) {
            goto out;
        }
    }
    rc = 1;
out:
    json_decref(seen);
    return rc;
}

static int decode_milestone(rs_codec_dec_t *d, const rs_codec_node_t *m, const char *pfx,
                            void *item)
{
    rs_milestone_spec_t *ms = item;
    if (read_string(d, m, pfx, RS_F_MS_MILESTONE_ID, REQUIRED, ms->milestone_id,
                    sizeof(ms->milestone_id)) < 0 ||
        read_decimal(d, m, pfx, RS_F_MS_AMOUNT, REQUIRED, DEC_NONNEG, &ms->amount) < 0)
        return -1;
    return 0;
}

/* One contract line (performance obligation). */
static int decode_line(rs_codec_dec_t *d, const rs_codec_node_t *o, const char *pfx, void *item)
{
    rs_line_spec_t *l = item;
    char a[16], b[16];
    if (read_string(d, o, pfx, RS_F_CL_LINE_ID, REQUIRED, l->line_id, sizeof(l->line_id)) < 0 ||
        read_string(d, o, pfx, RS_F_CL_PRODUCT, REQUIRED, l->product, sizeof(l->product)) < 0 ||
        read_parsed(d, o, pfx, RS_F_CL_RECOGNITION, REQUIRED, &METHOD_TEXT, &l->recognition) <
            0 ||
        read_parsed(d, o, pfx, RS_F_CL_START, REQUIRED, &DATE_TEXT, &l->start) < 0)
        return -1;
    /* end may be left out of point_in_time lines: it is then start. */
    int has_end = read_parsed(d, o, pfx, RS_F_CL_END, l->recognition != RS_METHOD_POINT_IN_TIME,
                              &DATE_TEXT, &l->end);
    if (has_end < 0)
        return -1;
    if (has_end == 0)
        l->end = l->start;
    if (l->end < l->start)
        return rs_codec_fail(d, pfx, FNAME(o, RS_F_CL_END), "%s is before start %s",
                             rs_date_format(l->end, a, sizeof(a)),
                             rs_date_format(l->start, b, sizeof(b)));
    if (read_decimal(d, o, pfx, RS_F_CL_AMOUNT, REQUIRED, DEC_NONNEG, &l->amount) < 0)
        return -1;
    int rc = read_decimal(d, o, pfx, RS_F_CL_SSP, OPTIONAL, DEC_NONNEG, &l->ssp);
    if (rc < 0)
        return -1;
    l->has_ssp = rc;
    rc = read_decimal(d, o, pfx, RS_F_CL_UNIT_PRICE, l->recognition == RS_METHOD_USAGE,
                      DEC_NONNEG, &l->unit_price);
    if (rc < 0)
        return -1;
    l->has_unit_price = rc;
    /* milestones: required and non-empty for milestone lines, ids unique. */
    rc = decode_array(d, o, pfx, RS_F_CL_MILESTONES, l->recognition == RS_METHOD_MILESTONE,
                      RS_RK_MILESTONE, decode_milestone, l, RS_F_MS_MILESTONE_ID,
                      offsetof(rs_milestone_spec_t, milestone_id));
    return rc < 0 ? -1 : 0;
}

/* A line of invoice.issued (service dates, amount >= 0) or of
 * credit_note.issued (no service dates, amount > 0): o->rk says which. */
static int decode_bill_line(rs_codec_dec_t *d, const rs_codec_node_t *o, const char *pfx,
                            void *item)
{
    rs_bill_line_t *bl = item;
    int credit = o->rk == RS_RK_CREDIT_NOTE_LINE;
    char a[16], b[16];
    bl->service_start = bl->service_end = RS_DATE_NONE;
    if (read_string(d, o, pfx, RS_F_IL_LINE_ID, REQUIRED, bl->line_id, sizeof(bl->line_id)) <
            0 ||
        read_decimal(d, o, pfx, RS_F_IL_AMOUNT, REQUIRED, credit ? DEC_POSITIVE : DEC_NONNEG,
                     &bl->amount) < 0)
        return -1;
    int rc = read_decimal(d, o, pfx, RS_F_IL_TAX, OPTIONAL, DEC_NONNEG, &bl->tax);
    if (rc < 0)
        return -1;
    bl->has_tax = rc;
    if (credit)
        return 0;
    if (read_parsed(d, o, pfx, RS_F_IL_SERVICE_START, OPTIONAL, &DATE_TEXT,
                    &bl->service_start) < 0 ||
        read_parsed(d, o, pfx, RS_F_IL_SERVICE_END, OPTIONAL, &DATE_TEXT, &bl->service_end) < 0)
        return -1;
    if (bl->service_start != RS_DATE_NONE && bl->service_end != RS_DATE_NONE &&
        bl->service_end < bl->service_start)
        return rs_codec_fail(d, pfx, FNAME(o, RS_F_IL_SERVICE_END),
                             "%s is before service_start %s",
                             rs_date_format(bl->service_end, a, sizeof(a)),
                             rs_date_format(bl->service_start, b, sizeof(b)));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/* What a row of BODY reads into ev (at `offset` unless said otherwise). */
enum rule {
    R_END = 0,
    R_TEXT,          /* required non-empty string into a char array of `size` */
    R_PARSED,        /* required text that `text` parses */
    R_PARSED_OPT,    /* the same, optional: absent keeps rs_event_init's value */
    R_POSITIVE,      /* required decimal > 0 */
    R_NONNEG,        /* required decimal >= 0 */
    R_SOURCE,        /* ev->source_system, ev->source_record_id */
    R_LINES,         /* ev->lines (contract lines) */
    R_INVOICE_LINES, /* ev->bill_lines of invoice.issued */
    R_CREDIT_LINES,  /* ev->bill_lines of credit_note.issued */
};

typedef struct body_field {
    uint8_t rule;
    uint8_t slot;
    uint16_t offset;
    uint16_t size;           /* R_TEXT */
    const text_rule_t *text; /* R_PARSED, R_PARSED_OPT */
} body_field_t;

_Static_assert(sizeof(rs_event_t) <= UINT16_MAX, "BODY offsets fit 16 bits");
_Static_assert(sizeof(((rs_event_t *)0)->currency) == 4, "parse_currency writes 4 bytes");

/* Rows are {rule, slot, offset, size, text}; the macros below fill one for a
 * rule that writes ev->field. EV_AT is offsetof(rs_event_t, field) and fails
 * to compile unless the field has type T. T is a type name in a _Generic
 * association, where C allows no parentheses around it. */
/* NOLINTNEXTLINE(bugprone-macro-parentheses) */
#define EV_AT(field, T) _Generic(((rs_event_t *)0)->field, T : offsetof(rs_event_t, field))
#define TEXT(slot, field)                                                                      \
    R_TEXT, slot, EV_AT(field, char *), sizeof(((rs_event_t *)0)->field), NULL
#define PARSED(slot, field, T, text) R_PARSED, slot, EV_AT(field, T), 0, &text
#define PARSED_OPT(slot, field, T, text) R_PARSED_OPT, slot, EV_AT(field, T), 0, &text
#define DATE(slot, field) PARSED(slot, field, rs_date_t, DATE_TEXT)
#define POSITIVE(slot, field) R_POSITIVE, slot, EV_AT(field, rs_decimal_t), 0, NULL
#define NONNEG(slot, field) R_NONNEG, slot, EV_AT(field, rs_decimal_t), 0, NULL

/* The fields after the envelope, per event type, in the order they are
 * checked (the contract's order). */
static const body_field_t BODY[RS_RK__EVENTS][6] = {
    [RS_RK_CONTRACT_BOOKED] = {{TEXT(RS_F_CB_CUSTOMER_ID, customer_id)},
                               {PARSED(RS_F_CB_CURRENCY, currency, char *, CURRENCY_TEXT)},
                               {DATE(RS_F_CB_BOOKED_ON, booked_on)},
                               {.rule = R_SOURCE, .slot = RS_F_CB_SOURCE},
                               {.rule = R_LINES, .slot = RS_F_CB_LINES}},
    [RS_RK_CONTRACT_AMENDED] = {{DATE(RS_F_CA_EFFECTIVE_ON, effective_on)},
                                {.rule = R_LINES, .slot = RS_F_CA_LINES},
                                {PARSED_OPT(RS_F_CA_TREATMENT, treatment, rs_treatment_t,
                                            TREATMENT_TEXT)}},
    [RS_RK_CONTRACT_CANCELLED] = {{DATE(RS_F_CC_EFFECTIVE_ON, effective_on)}},
    [RS_RK_MILESTONE_COMPLETED] = {{TEXT(RS_F_MC_LINE_ID, line_id)},
                                   {TEXT(RS_F_MC_MILESTONE_ID, milestone_id)},
                                   {DATE(RS_F_MC_COMPLETED_ON, completed_on)}},
    [RS_RK_PERIOD_CLOSED] = {{PARSED(RS_F_PC_PERIOD, period, rs_period_t, PERIOD_TEXT)}},
    [RS_RK_INVOICE_ISSUED] = {{TEXT(RS_F_II_INVOICE_ID, invoice_id)},
                              {DATE(RS_F_II_ISSUED_ON, on)},
                              {PARSED_OPT(RS_F_II_DUE_ON, due_on, rs_date_t, DATE_TEXT)},
                              {.rule = R_INVOICE_LINES, .slot = RS_F_II_LINES}},
    [RS_RK_INVOICE_VOIDED] = {{TEXT(RS_F_IV_INVOICE_ID, invoice_id)},
                              {DATE(RS_F_IV_VOIDED_ON, on)}},
    [RS_RK_CREDIT_NOTE_ISSUED] = {{TEXT(RS_F_CN_CREDIT_NOTE_ID, credit_note_id)},
                                  {TEXT(RS_F_CN_INVOICE_ID, invoice_id)},
                                  {DATE(RS_F_CN_ISSUED_ON, on)},
                                  {PARSED(RS_F_CN_REASON, reason, rs_credit_reason_t,
                                          CREDIT_REASON_TEXT)},
                                  {.rule = R_CREDIT_LINES, .slot = RS_F_CN_LINES}},
    [RS_RK_INVOICE_UNCOLLECTIBLE] = {{TEXT(RS_F_IU_INVOICE_ID, invoice_id)},
                                     {DATE(RS_F_IU_DECLARED_ON, on)}},
    [RS_RK_PAYMENT_RECEIVED] = {{TEXT(RS_F_PR_PAYMENT_ID, payment_id)},
                                {TEXT(RS_F_PR_INVOICE_ID, invoice_id)},
                                {POSITIVE(RS_F_PR_AMOUNT, amount)},
                                {DATE(RS_F_PR_RECEIVED_ON, on)}},
    [RS_RK_PAYMENT_REFUNDED] = {{TEXT(RS_F_PD_REFUND_ID, refund_id)},
                                {TEXT(RS_F_PD_PAYMENT_ID, payment_id)},
                                {TEXT(RS_F_PD_INVOICE_ID, invoice_id)},
                                {POSITIVE(RS_F_PD_AMOUNT, amount)},
                                {DATE(RS_F_PD_REFUNDED_ON, on)}},
    [RS_RK_PAYMENT_FAILED] = {{TEXT(RS_F_PF_PAYMENT_ID, payment_id)},
                              {TEXT(RS_F_PF_INVOICE_ID, invoice_id)},
                              {DATE(RS_F_PF_FAILED_ON, on)},
                              {TEXT(RS_F_PF_REASON, failure_reason)}},
    [RS_RK_USAGE_RECORDED] = {{TEXT(RS_F_UR_LINE_ID, line_id)},
                              {NONNEG(RS_F_UR_QUANTITY, quantity)}},
};

/* The fields of BODY[root->rk] into ev. */
static int decode_body(rs_codec_dec_t *d, const rs_codec_node_t *root, rs_event_t *ev)
{
    char *base = (char *)ev;
    for (const body_field_t *f = BODY[root->rk]; f->rule != R_END; f++) {
        void *at = base + f->offset;
        int rc = -1;
        switch ((enum rule)f->rule) {
        case R_TEXT:
            rc = read_string(d, root, NULL, f->slot, REQUIRED, at, f->size);
            break;
        case R_PARSED:
        case R_PARSED_OPT:
            rc = read_parsed(d, root, NULL, f->slot, f->rule == R_PARSED, f->text, at);
            break;
        case R_POSITIVE:
        case R_NONNEG:
            rc = read_decimal(d, root, NULL, f->slot, REQUIRED,
                              f->rule == R_POSITIVE ? DEC_POSITIVE : DEC_NONNEG, at);
            break;
        case R_SOURCE:
            rc = read_source(d, root, f->slot, ev);
            break;
        case R_LINES: /* line_id unique within the event */
            rc =
                decode_array(d, root, NULL, f->slot, REQUIRED, RS_RK_CONTRACT_LINE, decode_line,
                             ev, RS_F_CL_LINE_ID, offsetof(rs_line_spec_t, line_id));
            break;
        case R_INVOICE_LINES:
        case R_CREDIT_LINES:
            rc = decode_array(d, root, NULL, f->slot, REQUIRED,
                              f->rule == R_CREDIT_LINES ? RS_RK_CREDIT_NOTE_LINE
                                                        : RS_RK_INVOICE_LINE,
                              decode_bill_line, ev, -1, 0);
            break;
        case R_END:
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int rs_codec_decode_event(rs_codec_dec_t *d, const rs_codec_node_t *root, rs_event_t *ev)
{
    rs_codec_node_t rec = *root;
    rs_event_type_t want = root->rk >= 0 && root->rk < RS_RK__EVENTS
                               ? (rs_event_type_t)(root->rk + 1)
                               : RS_EV_UNKNOWN;
    const char *s;
    size_t n;
    char q[QUOTE_BUF];

    if (want == RS_EV_UNKNOWN)
        rec.rk = RS_RK_EVENT;
    if (read_string(d, &rec, NULL, RS_F_EVENT_ID, REQUIRED, ev->event_id,
                    sizeof(ev->event_id)) < 0)
        goto fail;
    d->event_id = ev->event_id;

    if (read_text(d, &rec, NULL, RS_F_TYPE, REQUIRED, &s, &n) < 0)
        goto fail;
    /* When the record says which type to expect, try that name first. */
    ev->type = want != RS_EV_UNKNOWN && strcmp(s, rs_event_type_name(want)) == 0
                   ? want
                   : rs_event_type_from_name(s);
    if (ev->type == RS_EV_UNKNOWN) {
        rs_codec_fail(d, NULL, FNAME(&rec, RS_F_TYPE), "unknown event type \"%s\"",
                      quote(q, sizeof(q), s));
        goto fail;
    }
    if (want != RS_EV_UNKNOWN && ev->type != want) {
        rs_codec_fail(d, NULL, FNAME(&rec, RS_F_TYPE),
                      "\"%s\" does not match the Avro record io.revstream.%s",
                      quote(q, sizeof(q), s), rs_codec_record_name[root->rk]);
        goto fail;
    }
    rec.rk = (int)ev->type - 1;

    /* period.closed is a control event: it has no contract, even if given one. */
    if (ev->type != RS_EV_PERIOD_CLOSED &&
        read_string(d, &rec, NULL, RS_F_CONTRACT_ID, REQUIRED, ev->contract_id,
                    sizeof(ev->contract_id)) < 0)
        goto fail;

    if (read_text(d, &rec, NULL, RS_F_OCCURRED_AT, REQUIRED, &s, &n) < 0)
        goto fail;
    if (rs_timestamp_parse_date(s, &ev->occurred_on) != 0) {
        rs_codec_fail(d, NULL, FNAME(&rec, RS_F_OCCURRED_AT), "not an RFC 3339 timestamp");
        goto fail;
    }
    if (n >= sizeof(ev->occurred_at)) {
        rs_codec_fail(d, NULL, FNAME(&rec, RS_F_OCCURRED_AT),
                      "too long (%zu bytes, at most %zu)", n, sizeof(ev->occurred_at) - 1);
        goto fail;
    }
    memcpy(ev->occurred_at, s, n + 1);

    if (decode_body(d, &rec, ev) < 0)
        goto fail;
    return 0;
fail:
    rs_event_clear(ev);
    return -1;
}
