/*
 * rs_err.c — see rs_err.h.
 */
#include "rs_err.h"

#include <stdarg.h>
#include <stdio.h>

void rs_errorf(char *errstr, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errstr == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errlen, fmt, ap);
    va_end(ap);
}
