/*
 * rs_err — the error-buffer convention every module uses: functions that can
 * fail take `char *errstr, size_t errlen` and write one line saying what went
 * wrong. rs_errorf() is that write (a NULL or empty buffer is ignored).
 */
#ifndef RS_ERR_H
#define RS_ERR_H

#include <stddef.h>

void rs_errorf(char *errstr, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
