/*
 * rs_codec_cloudevents.c — usage as CloudEvents: a structured-mode CloudEvent
 * (JSON, specversion 1.0) turned into the native usage.recorded object, which
 * the JSON codec then decodes like any other event (docs/intake.md, "Usage").
 *
 * Mapping (the whole of it):
 *   event_id    "ce-" + 16 hex digits of FNV-1a 64 over source, NUL, id: the
 *               same CloudEvent (same source and id) always gets the same id,
 *               so a re-sent record is a duplicate downstream; two sources may
 *               reuse an id without colliding.
 *   type        usage.recorded (the CloudEvent's own `type` is not read: any
 *               metering type is usage).
 *   contract_id data.contract_id, else the subject's contract part.
 *   line_id     data.line_id, else the subject's line part.
 *               subject: "contracts/<contract>/lines/<line>" or
 *               "<contract>/<line>".
 *   quantity    data.quantity: a decimal string, or a JSON integer (a JSON
 *               number with a fraction or exponent is refused: floating point
 *               never carries a quantity).
 *   occurred_at `time`, else data.occurred_at.
 * Checks: specversion "1.0"; id and source non-empty strings; datacontenttype
 * absent or application/json (parameters allowed); data an object (data_base64
 * is refused). Errors read "event ce:<id>: <attribute>: <reason>" so the
 * operator can find the record at its source.
 *
 * Invariants: no state, no allocation beyond the returned jansson object; the
 * input object is not modified.
 * Ownership: rs_codec_cloudevent_to_native returns a new reference the caller
 * decrefs, or NULL with errstr set.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rs_codec_cloudevents.h"
#include "rs_hash.h"

static const char *str_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* The CloudEvent id for messages: at most 64 bytes cut at a UTF-8
 * character boundary, control characters as '?' (one line of valid UTF-8,
 * like every codec message). */
static void label_of(const char *id, char *out, size_t n)
{
    size_t len = id ? strlen(id) : 0, k = 0;
    if (id == NULL) {
        snprintf(out, n, "?");
        return;
    }
    if (len > 64) {
        len = 64;
        while (len > 0 && ((unsigned char)id[len] & 0xC0) == 0x80)
            len--;
    }
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        unsigned char c = (unsigned char)id[i];
        out[k++] = id[i];
        if (c < 0x20 || c == 0x7f)
            out[k - 1] = '?';
    }
    out[k] = '\0';
}

/* Splits subject into contract and line ("contracts/C/lines/L" or "C/L"). */
static int split_subject(const char *subject, char *contract, size_t clen, char *line,
                         size_t llen)
{
    const char *s = subject;
    if (strncmp(s, "contracts/", 10) == 0) {
        const char *mid = strstr(s + 10, "/lines/");
        if (mid == NULL || mid == s + 10 || mid[7] == '\0' || strchr(mid + 7, '/'))
            return -1;
        snprintf(contract, clen, "%.*s", (int)(mid - (s + 10)), s + 10);
        snprintf(line, llen, "%s", mid + 7);
        return 0;
    }
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash == s || slash[1] == '\0' || strchr(slash + 1, '/'))
        return -1;
    snprintf(contract, clen, "%.*s", (int)(slash - s), s);
    snprintf(line, llen, "%s", slash + 1);
    return 0;
}

json_t *rs_codec_cloudevent_to_native(json_t *ce, char *errstr, size_t errlen)
{
    char contract[256] = "", line[256] = "", event_id[32], qty[32];
    const char *id = str_member(ce, "id"), *source = str_member(ce, "source");
    const char *sv = str_member(ce, "specversion"), *subject = str_member(ce, "subject");
    const char *dct = str_member(ce, "datacontenttype"), *time = str_member(ce, "time");
    char label[72];
    json_t *data = json_object_get(ce, "data"), *out = NULL, *q;

    label_of(id, label, sizeof label);
#define CE_FAIL(...)                                                                           \
    do {                                                                                       \
        char why_[192];                                                                        \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                              \
        snprintf(errstr, errlen, "event ce:%s: %s", label, why_);                              \
        return NULL;                                                                           \
    } while (0)

    if (sv == NULL || strcmp(sv, "1.0") != 0)
        CE_FAIL("specversion: must be \"1.0\"");
    if (id == NULL)
        CE_FAIL("id: missing or empty");
    if (source == NULL)
        CE_FAIL("source: missing or empty");
    if (json_object_get(ce, "data_base64") != NULL)
        CE_FAIL("data_base64: binary data is not usage; send data as a JSON object");
    if (dct != NULL && strncmp(dct, "application/json", 16) != 0)
        CE_FAIL("datacontenttype: must be application/json");
    if (dct != NULL && dct[16] != '\0' && dct[16] != ';' && dct[16] != ' ')
        CE_FAIL("datacontenttype: must be application/json");
    if (!json_is_object(data))
        CE_FAIL("data: missing or not a JSON object");
    if (subject != NULL &&
        split_subject(subject, contract, sizeof contract, line, sizeof line) != 0)
        CE_FAIL("subject: expected \"contracts/<contract>/lines/<line>\" or "
                "\"<contract>/<line>\"");
    if (str_member(data, "contract_id"))
        snprintf(contract, sizeof contract, "%s", str_member(data, "contract_id"));
    if (str_member(data, "line_id"))
        snprintf(line, sizeof line, "%s", str_member(data, "line_id"));
    if (contract[0] == '\0')
        CE_FAIL("data.contract_id: missing (and no subject)");
    if (line[0] == '\0')
        CE_FAIL("data.line_id: missing (and no subject)");
    if (time == NULL)
        time = str_member(data, "occurred_at");
    if (time == NULL)
        CE_FAIL("time: missing (and no data.occurred_at)");
    q = json_object_get(data, "quantity");
    if (json_is_integer(q))
        snprintf(qty, sizeof qty, "%lld", (long long)json_integer_value(q));
    else if (json_is_string(q))
        snprintf(qty, sizeof qty, "%.31s", json_string_value(q));
    else if (json_is_real(q))
        CE_FAIL("data.quantity: a JSON number with a fraction; send it as a decimal string");
    else
        CE_FAIL("data.quantity: missing");
    uint64_t h = rs_fnv1a64_update_str(RS_FNV1A64_BASIS, source);
    h = rs_fnv1a64_update(h, "", 1);
    h = rs_fnv1a64_update_str(h, id);
    snprintf(event_id, sizeof event_id, "ce-%016llx", (unsigned long long)h);
#undef CE_FAIL

    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", event_id, "type",
                    "usage.recorded", "contract_id", contract, "occurred_at", time, "line_id",
                    line, "quantity", json_is_string(q) ? json_string_value(q) : qty);
    if (out == NULL)
        snprintf(errstr, errlen, "event ce:%s: out of memory", label);
    return out;
}
