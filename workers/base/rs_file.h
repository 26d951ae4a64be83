/*
 * rs_file — reading a whole file (policy files, configs) into memory.
 *
 * Invariants: the text returned is the file's bytes plus a NUL; a file of
 * any size is read whole; on failure NULL with errno set (ENOMEM, or what
 * fopen/fread said).
 *
 * Ownership: the caller free()s the text.
 */
#ifndef RS_FILE_H
#define RS_FILE_H

#include <stddef.h>

/* The contents of `path` (len: its length without the NUL, may be NULL). */
char *rs_read_file(const char *path, size_t *len);

#endif
