/*
 * rs_file — reading a whole file (policy files, configs) into memory, and
 * removing a directory tree (temporary stores of commands, tests and
 * benchmarks).
 *
 * Invariants: the text returned is the file's bytes plus a NUL; a file of
 * any size is read whole; on failure NULL with errno set (ENOMEM, or what
 * fopen/fread said). rs_remove_tree never follows a symbolic link: a link
 * inside the tree is removed, not what it points to.
 *
 * Ownership: the caller free()s the text.
 */
#ifndef RS_FILE_H
#define RS_FILE_H

#include <stddef.h>

/* The contents of `path` (len: its length without the NUL, may be NULL). */
char *rs_read_file(const char *path, size_t *len);

/* Remove path and, if it is a directory, everything under it (depth first).
 * 0, or -1 with errno set at the first entry that could not be removed (a
 * missing path is -1 with ENOENT). */
int rs_remove_tree(const char *path);

#endif
