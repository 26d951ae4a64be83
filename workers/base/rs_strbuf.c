/* rs_strbuf — see rs_strbuf.h. Capacity doubles from 256 bytes. */
#include "rs_strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(rs_strbuf_t *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *ns = realloc(b->s, cap);
    if (ns == NULL) {
        b->oom = 1;
        return -1;
    }
    b->s = ns;
    b->cap = cap;
    return 0;
}

void rs_strbuf_putn(rs_strbuf_t *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void rs_strbuf_puts(rs_strbuf_t *b, const char *s)
{
    rs_strbuf_putn(b, s, strlen(s));
}

void rs_strbuf_putc(rs_strbuf_t *b, char c)
{
    rs_strbuf_putn(b, &c, 1);
}

void rs_strbuf_printf(rs_strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        rs_strbuf_putn(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *rs_strbuf_take(rs_strbuf_t *b)
{
    char *s = b->oom ? NULL : (b->s != NULL ? b->s : strdup(""));
    if (b->oom)
        free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
    return s;
}

void rs_strbuf_free(rs_strbuf_t *b)
{
    if (b == NULL)
        return;
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
