/*
 * rs_file.c — see rs_file.h.
 */
#include "rs_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

char *rs_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap);
    while (buf != NULL && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL)
                free(buf);
            buf = nb;
        }
    }
    int err = buf == NULL ? ENOMEM : ferror(f) ? EIO : 0;
    fclose(f);
    if (err != 0) {
        free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}
