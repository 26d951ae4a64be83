/*
 * rs_strbuf — a growable NUL-terminated string for building text (metrics
 * pages, config dumps, log lines).
 *
 * Invariants: s is NULL until the first append, then always NUL-terminated;
 * len excludes the NUL. An allocation failure sets oom and turns every later
 * append into a no-op, so a caller checks oom once at the end.
 *
 * Ownership: the buffer owns s; rs_strbuf_free releases it (a zeroed buffer is
 * valid and empty), rs_strbuf_take hands it to the caller.
 */
#ifndef RS_STRBUF_H
#define RS_STRBUF_H

#include <stddef.h>

typedef struct rs_strbuf {
    char *s;
    size_t len, cap;
    int oom;
} rs_strbuf_t;

void rs_strbuf_putn(rs_strbuf_t *b, const char *s, size_t n);
void rs_strbuf_puts(rs_strbuf_t *b, const char *s);
void rs_strbuf_putc(rs_strbuf_t *b, char c);
void rs_strbuf_printf(rs_strbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The string (never NULL once taken: "" for an empty buffer), or NULL on oom;
 * the buffer is empty afterwards. */
char *rs_strbuf_take(rs_strbuf_t *b);
void rs_strbuf_free(rs_strbuf_t *b);

#endif
