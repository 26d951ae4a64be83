/*
 * rs_intake_common.c — what every intake source shares: files, exact field
 * text, money in a currency's exponent, timestamps, term arithmetic, ids and
 * the checked hand-off of events (rs_intake_internal.h).
 *
 * Invariants:
 *   - Money never passes through floating point here, with one documented
 *     exception at the edge: a JSON real (Salesforce's REST API writes
 *     currency fields as JSON numbers, which jansson holds as a double). Its
 *     decimal text is recovered as the shortest fixed-point text of at most
 *     6 decimals that reads back as the same double and has at most 15
 *     significant digits — every decimal of up to 15 significant digits
 *     survives a double exactly, so that text is the source's own number;
 *     anything needing more digits is refused, never rounded. From that text
 *     on, everything is integer (rs_decimal_parse, rs_decimal_to_minor).
 *   - Dates are UTC calendar dates; no local time zone is consulted.
 *
 * Ownership: see rs_intake_internal.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_hash.h"
#include "rs_intake_internal.h"
#include "rs_money.h"

char *rs_intake_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

json_t *rs_intake_load_json(const char *path, char *errstr, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        snprintf(errstr, errlen, "%s: line %d column %d: %s", path, jerr.line, jerr.column,
                 jerr.text);
    return root;
}

/* The shortest fixed text (<= 6 decimals, <= 15 significant digits) that
 * reads back as x; see the file comment. */
static const char *real_text(double x, char *buf, size_t n)
{
    for (int d = 0; d <= RS_DECIMAL_MAX_SCALE; d++) {
        snprintf(buf, n, "%.*f", d, x);
        if (strtod(buf, NULL) != x)
            continue;
        int sig = 0, lead = 1;
        for (const char *p = buf; *p; p++) {
            if (*p < '0' || *p > '9')
                continue;
            if (lead && *p == '0')
                continue;
            lead = 0;
            sig++;
        }
        return sig <= 15 ? buf : NULL;
    }
    return NULL;
}

const char *rs_intake_field(json_t *rec, const char *name, char *buf, size_t n)
{
    json_t *v = json_object_get(rec, name);
    if (v == NULL || buf == NULL || n == 0)
        return NULL;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0 || json_string_length(v) >= n)
            return NULL;
        memcpy(buf, json_string_value(v), json_string_length(v) + 1);
        return buf;
    }
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v)) {
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
        return buf;
    }
    if (json_is_real(v)) {
        if (real_text(json_real_value(v), buf, n) == NULL) /* fails every decimal parse */
            snprintf(buf, n, "(a JSON number of more than 15 digits)");
        return buf;
    }
    return NULL;
}

const char *rs_intake_field_any(json_t *rec, const char *names, char *buf, size_t n,
                                char *which, size_t wn)
{
    const char *p = names;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        if (name[0] != '\0' && rs_intake_field(rec, name, buf, n) != NULL) {
            if (which != NULL)
                snprintf(which, wn, "%s", name);
            return buf;
        }
        p = comma ? comma + 1 : NULL;
    }
    return NULL;
}

static int currency_exp(const char *currency, char *why, size_t wn)
{
    int e = currency ? rs_currency_exponent(currency) : -1;
    if (e < 0)
        snprintf(why, wn, "unknown currency %s", currency ? currency : "");
    return e;
}

int rs_intake_money(const char *text, const char *currency, char *out, size_t n, char *why,
                    size_t wn)
{
    rs_decimal_t d;
    rs_money_t m;
    char err[128];
    int e = currency_exp(currency, why, wn);
    if (e < 0)
        return -1;
    if (rs_decimal_parse(text, &d, err, sizeof err) != 0) {
        snprintf(why, wn, "%.40s: %s", text, err);
        return -1;
    }
    if (rs_decimal_to_minor(d, e, &m, err, sizeof err) != 0) {
        snprintf(why, wn, "%.40s %s: %s", text, currency, err);
        return -1;
    }
    rs_money_format(m, e, out, n);
    return 0;
}

int rs_intake_minor(int64_t minor, int src_exp, const char *currency, char *out, size_t n,
                    char *why, size_t wn)
{
    int e = currency_exp(currency, why, wn);
    if (e < 0)
        return -1;
    __int128 v = minor;
    if (src_exp > e) {
        __int128 unit = rs_pow10(src_exp - e);
        if (v % unit != 0) {
            snprintf(why, wn, "%lld minor units of %s (%d digits) is no whole %s amount",
                     (long long)minor, currency, src_exp, currency);
            return -1;
        }
        v /= unit;
    } else {
        v *= rs_pow10(e - src_exp);
    }
    rs_money_format((rs_money_t)v, e, out, n);
    return 0;
}

int rs_intake_money_mul(const char *a, const char *b, const char *currency, char *out, size_t n,
                        char *why, size_t wn)
{
    rs_decimal_t x, y;
    char err[128];
    int e = currency_exp(currency, why, wn);
    if (e < 0)
        return -1;
    if (rs_decimal_parse(a, &x, err, sizeof err) || rs_decimal_parse(b, &y, err, sizeof err)) {
        snprintf(why, wn, "%s", err);
        return -1;
    }
    __int128 m = (__int128)x.mantissa * y.mantissa;
    int scale = x.scale + y.scale;
    while (scale > e && m % 10 == 0) {
        m /= 10;
        scale--;
    }
    if (scale > e) {
        snprintf(why, wn, "%s x %s has more minor digits than %s allows", a, b, currency);
        return -1;
    }
    m *= rs_pow10(e - scale);
    if (m > INT64_MAX / 4 || m < -(INT64_MAX / 4)) {
        snprintf(why, wn, "%s x %s out of range", a, b);
        return -1;
    }
    rs_money_format((rs_money_t)m, e, out, n);
    return 0;
}

void rs_intake_unix_rfc3339(int64_t t, char *out, size_t n)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    int y, m, d;
    rs_date_to_ymd((rs_date_t)days, &y, &m, &d);
    snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
}

int rs_intake_timestamp(const char *s, char *out, size_t n)
{
    rs_date_t d;
    char tmp[64];
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len >= sizeof tmp - 2)
        return -1;
    if (rs_date_parse(s, &d) == 0) {
        snprintf(out, n, "%sT00:00:00Z", s);
        return 0;
    }
    memcpy(tmp, s, len + 1);
    /* Salesforce writes "+0000" (no colon): RFC 3339 wants "+00:00". */
    if (len > 5 && (tmp[len - 5] == '+' || tmp[len - 5] == '-') &&
        strchr(tmp + len - 4, ':') == NULL) {
        memmove(tmp + len - 1, tmp + len - 2, 3);
        tmp[len - 2] = ':';
    }
    if (rs_timestamp_parse_date(tmp, &d) != 0)
        return -1;
    snprintf(out, n, "%s", tmp);
    return 0;
}

int rs_intake_date(const char *s, rs_date_t *out)
{
    char ts[64];
    if (s == NULL)
        return -1;
    if (rs_date_parse(s, out) == 0)
        return 0;
    if (rs_intake_timestamp(s, ts, sizeof ts) != 0)
        return -1;
    return rs_timestamp_parse_date(ts, out);
}

rs_date_t rs_intake_term_end(rs_date_t start, int months)
{
    int y, m, d;
    rs_date_to_ymd(start, &y, &m, &d);
    int idx = y * 12 + (m - 1) + months;
    y = idx / 12;
    m = idx % 12 + 1;
    int dim = rs_days_in_month(y, m);
    return rs_date_from_ymd(y, m, d > dim ? dim : d) - 1;
}

int rs_intake_months(const char *s)
{
    char *end = NULL;
    long v;
    if (s == NULL || *s == '\0')
        return -1;
    if (s[0] != 'P') {
        errno = 0;
        v = strtol(s, &end, 10);
        return (errno || *end != '\0' || v <= 0 || v > 1200) ? -1 : (int)v;
    }
    long months = 0;
    const char *p = s + 1;
    if (*p == '\0')
        return -1;
    while (*p) {
        errno = 0;
        v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > 1200)
            return -1;
        if (*end == 'Y')
            months += v * 12;
        else if (*end == 'M')
            months += v;
        else
            return -1; /* weeks and days are no whole term */
        p = end + 1;
    }
    return months > 0 && months <= 1200 ? (int)months : -1;
}

void rs_intake_hash_hex(const char *text, size_t len, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)rs_fnv1a64(text, len));
}

int rs_intake_copy_id(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, s, n + 1);
    return 0;
}

int rs_intake_emit_checked(const rs_event_t *ev, rs_intake_emit_fn emit, void *ctx, FILE *diag,
                           const char *what)
{
    char err[512];
    rs_event_t back;
    char *json = rs_codec_json_encode(ev);
    int rc;
    if (json == NULL) {
        fprintf(diag, "intake: error=encode %s event=%s\n", what, ev->event_id);
        return 1;
    }
    if (rs_codec_json_decode(json, strlen(json), &back, err, sizeof err) != 0) {
        fprintf(diag, "intake: error=invalid %s reason=\"%s\"\n", what, err);
        free(json);
        return 1;
    }
    free(json);
    rc = emit(ctx, &back) != 0 ? -1 : 0;
    rs_event_clear(&back);
    return rc;
}
