/*
 * rs_log.c — formatting and writing log lines (see rs_log.h for the
 * formats).
 *
 * Invariants:
 *   - Output goes through an out_t that never writes past its buffer and
 *     always leaves it NUL-terminated; a JSON line that had to be cut is
 *     closed with "\"}" only when there is room, so a truncated line is the
 *     only kind that may not parse (lines are far below RS_LOG_LINE_MAX).
 *   - The parser reads the message once, left to right: level word, event,
 *     then key=value pairs; the first thing that is not a pair ends the
 *     pairs and the rest goes to "msg" verbatim, so no text is ever lost.
 *
 * Ownership: nothing is allocated.
 */
#include "rs_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_format = RS_LOG_AUTO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void rs_log_set_format(rs_log_format_t f)
{
    atomic_store(&log_format, (int)f);
}

rs_log_format_t rs_log_get_format(void)
{
    int f = atomic_load(&log_format);

    if (f == RS_LOG_AUTO)
        return isatty(2) ? RS_LOG_TEXT : RS_LOG_JSON;
    return (rs_log_format_t)f;
}

int rs_log_parse_format(const char *s, rs_log_format_t *out)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "json") == 0)
        *out = RS_LOG_JSON;
    else if (strcmp(s, "text") == 0)
        *out = RS_LOG_TEXT;
    else if (strcmp(s, "auto") == 0)
        *out = RS_LOG_AUTO;
    else
        return -1;
    return 0;
}

/* ---------- bounded output ---------- */

typedef struct out {
    char *b;
    size_t cap, len; /* len < cap; b[len] == '\0' */
} out_t;

static void put_n(out_t *o, const char *s, size_t n)
{
    if (o->len + n >= o->cap)
        n = o->cap - 1 - o->len;
    memcpy(o->b + o->len, s, n);
    o->len += n;
    o->b[o->len] = '\0';
}

static void put_s(out_t *o, const char *s)
{
    put_n(o, s, strlen(s));
}

/* s[0..n) as the inside of a JSON string. */
static void put_json_chars(out_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put_n(o, esc, 2);
        } else if (c == '\n') {
            put_s(o, "\\n");
        } else if (c == '\t') {
            put_s(o, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put_s(o, esc);
        } else {
            put_n(o, (const char *)&c, 1);
        }
    }
}

static void put_json_str(out_t *o, const char *s, size_t n)
{
    put_s(o, "\"");
    put_json_chars(o, s, n);
    put_s(o, "\"");
}

/* ---------- parsing the message ---------- */

static int is_key_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* An unquoted value that reads as a JSON integer: -?[1-9][0-9]{0,17} or 0. */
static int is_json_int(const char *v, size_t n)
{
    size_t i = 0;

    if (n > 0 && v[0] == '-')
        i = 1;
    if (i == n || n - i > 18 || (v[i] == '0' && n - i > 1))
        return 0;
    for (; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return !(n == 2 && v[0] == '-' && v[1] == '0');
}

/* Length of the word at p (up to a space or the end). */
static size_t word_len(const char *p)
{
    size_t n = 0;

    while (p[n] != '\0' && p[n] != ' ')
        n++;
    return n;
}

static int word_is(const char *p, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(p, w, n) == 0;
}

static void put_key(out_t *o, const char *k, size_t n)
{
    static const char *const fixed[] = {"ts", "level", "component", "event"};

    put_s(o, ",\"");
    put_json_chars(o, k, n);
    for (size_t i = 0; i < 4; i++)
        if (word_is(k, n, fixed[i]))
            put_s(o, "_");
    put_s(o, "\":");
}

/* The key=value pairs of p as JSON fields; the first thing that is not a
 * pair, and everything after it, becomes "msg". */
static void put_pairs(out_t *o, const char *p)
{
    for (;;) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return;
        size_t k = 0;
        while (is_key_char((unsigned char)p[k]))
            k++;
        if (k == 0 || p[k] != '=')
            break;
        const char *v = p + k + 1;
        if (*v == '"') {
            /* a quoted value: up to the next unescaped quote */
            size_t j = 1;
            while (v[j] != '\0' && v[j] != '"')
                j += (v[j] == '\\' && v[j + 1] != '\0') ? 2 : 1;
            if (v[j] != '"' || (v[j + 1] != '\0' && v[j + 1] != ' '))
                break; /* unterminated, or text glued to it: not a pair */
            put_key(o, p, k);
            put_s(o, "\"");
            for (size_t i = 1; i < j; i++) {
                if (v[i] == '\\' && (v[i + 1] == '"' || v[i + 1] == '\\'))
                    i++;
                put_json_chars(o, v + i, 1);
            }
            put_s(o, "\"");
            p = v + j + 1;
        } else {
            size_t n = word_len(v);
            put_key(o, p, k);
            if (is_json_int(v, n))
                put_n(o, v, n);
            else
                put_json_str(o, v, n);
            p = v + n;
        }
    }
    put_s(o, ",\"msg\":");
    put_json_str(o, p, strlen(p));
}

static void put_ts(out_t *o)
{
    struct timespec ts;
    struct tm tm;
    char buf[80];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (ts.tv_nsec / 1000000L) % 1000);
    put_s(o, buf);
}

char *rs_log_format_line(char *buf, unsigned long buflen, rs_log_format_t f,
                         rs_log_level_t level, const char *component, const char *msg)
{
    out_t o = {buf, buflen, 0};
    const char *p = msg != NULL ? msg : "";
    size_t n;

    if (buf == NULL || buflen == 0)
        return buf;
    buf[0] = '\0';
    if (f == RS_LOG_AUTO)
        f = rs_log_get_format();
    if (f == RS_LOG_TEXT) {
        put_s(&o, component);
        put_s(&o, ": ");
        put_s(&o, p);
        return buf;
    }
    while (*p == ' ')
        p++;
    /* the level word */
    n = word_len(p);
    rs_log_level_t word = RS_LOG_LEVEL_AUTO;
    if (word_is(p, n, "warning") || word_is(p, n, "fault"))
        word = RS_LOG_WARN;
    else if (word_is(p, n, "error") || word_is(p, n, "bug") ||
             (n > 6 && strncmp(p, "error=", 6) == 0)) /* "error=run ...": the pair stays */
        word = RS_LOG_ERROR;
    if (word != RS_LOG_LEVEL_AUTO && p[n - 1] != '=' && memchr(p, '=', n) == NULL) {
        p += n;
        while (*p == ' ')
            p++;
    }
    if (level == RS_LOG_LEVEL_AUTO)
        level = word != RS_LOG_LEVEL_AUTO ? word : RS_LOG_INFO;
    if ((int)level < RS_LOG_DEBUG || (int)level > RS_LOG_ERROR)
        level = RS_LOG_INFO;
    put_s(&o, "{\"ts\":\"");
    put_ts(&o);
    put_s(&o, "\",\"level\":\"");
    put_s(&o, level_names[level]);
    put_s(&o, "\",\"component\":");
    put_json_str(&o, component, strlen(component));
    put_s(&o, ",\"event\":");
    /* the event: a bare first word; "event=X" (the state store's style);
     * else "error" for an "error=..." message, "log" otherwise */
    n = word_len(p);
    size_t k = 0;
    while (k < n && is_key_char((unsigned char)p[k]))
        k++;
    if (n > 0 && k == n) {
        put_json_str(&o, p, n);
        p += n;
    } else if (n > 6 && strncmp(p, "event=", 6) == 0 && p[6] != '"') {
        put_json_str(&o, p + 6, n - 6);
        p += n;
    } else {
        put_s(&o,
              word == RS_LOG_ERROR && strncmp(p, "error=", 6) == 0 ? "\"error\"" : "\"log\"");
    }
    put_pairs(&o, p);
    if (o.len + 2 < o.cap)
        put_s(&o, "}");
    return buf;
}

void rs_logv(rs_log_level_t level, const char *component, const char *fmt, va_list ap)
{
    char msg[RS_LOG_LINE_MAX], line[RS_LOG_LINE_MAX + 1];

    vsnprintf(msg, sizeof msg, fmt, ap);
    rs_log_format_line(line, sizeof line - 1, RS_LOG_AUTO, level, component, msg);
    size_t len = strlen(line);
    line[len++] = '\n';
    line[len] = '\0';
    fputs(line, stderr);
}

void rs_logf(rs_log_level_t level, const char *component, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rs_logv(level, component, fmt, ap);
    va_end(ap);
}
