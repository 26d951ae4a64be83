/*
 * rs_log — the one log line format of the worker and the code it shares
 * (state store, metrics server, librdkafka's own log through the worker).
 *
 * A message is written the way the code has always phrased it:
 *
 *     "<event> key=value key=\"quoted value\" ..."
 *
 * optionally led by a level word ("warning", "error", "bug", "fault"). It is
 * printed in one of two formats (rs_log_set_format):
 *
 *   json  one JSON object per line:
 *           {"ts":"2026-12-06T17:35:28.123Z","level":"info",
 *            "component":"worker","event":"batch","records":12,...}
 *         ts is RFC 3339 UTC with milliseconds; level is debug, info, warn
 *         or error; every key=value pair becomes a field (a value of only
 *         digits, at most 18, without a leading zero, a JSON number; every
 *         other value a string, quotes and escapes of a quoted value
 *         undone). A field named like one of the four fixed ones gets a "_"
 *         appended. A message that is not all key=value pairs after its
 *         event keeps the rest, verbatim, in "msg".
 *   text  "<component>: <message>" — the lines as they always were, for a
 *         terminal.
 *
 * The default (RS_LOG_AUTO) is json unless stderr is a terminal.
 *
 * Invariants: a line is written with one fputs() on stderr, so lines of
 * different threads never interleave; a line longer than RS_LOG_LINE_MAX is
 * truncated, never split; nothing is allocated. This module prints what it
 * is given: masking secrets is the caller's job (rs_config_describe, the
 * URL masking), and no caller logs a secret.
 *
 * Thread safety: every function may be called from any thread; the format
 * is one atomic int.
 */
#ifndef RS_LOG_H
#define RS_LOG_H

#include <stdarg.h>

#define RS_LOG_LINE_MAX 8192

typedef enum rs_log_level {
    RS_LOG_LEVEL_AUTO = -1, /* from the message's level word; info without one */
    RS_LOG_DEBUG = 0,
    RS_LOG_INFO,
    RS_LOG_WARN,
    RS_LOG_ERROR,
} rs_log_level_t;

typedef enum rs_log_format {
    RS_LOG_AUTO = 0, /* json unless stderr is a terminal */
    RS_LOG_JSON,
    RS_LOG_TEXT,
} rs_log_format_t;

void rs_log_set_format(rs_log_format_t f);
/* The format in effect (AUTO resolved). */
rs_log_format_t rs_log_get_format(void);
/* "json", "text" or "auto" -> *out. 0, or -1 for anything else. */
int rs_log_parse_format(const char *s, rs_log_format_t *out);

/* One line: level (or AUTO), component ("worker", "state", "rdkafka",
 * "metrics"), a printf-style message as described above. */
void rs_logf(rs_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rs_logv(rs_log_level_t level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Format one line into buf (no trailing newline). For tests and callers
 * with their own sink. Returns buf. */
char *rs_log_format_line(char *buf, unsigned long buflen, rs_log_format_t f,
                         rs_log_level_t level, const char *component, const char *msg);

#endif
