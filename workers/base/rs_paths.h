/*
 * rs_paths — where the program finds the files it ships with.
 *
 * The schema directory (ids.properties and the .avsc files) is, in order:
 *   1. installed: <the binary's directory>/RS_SCHEMA_RELDIR, the binary
 *      being /proc/self/exe (symlinks resolved), RS_SCHEMA_RELDIR being the
 *      install layout's path from bin/ to share/revstream/schemas
 *      ("../share/revstream/schemas" by default), when it holds
 *      ids.properties;
 *   2. otherwise the source tree's schemas/ (RS_SCHEMA_DIR, set by CMake):
 *      a binary run from its build folder.
 * The result is a path without "..": the binary's directory with its last
 * component replaced (/usr/local/bin -> /usr/local/share/revstream/schemas).
 *
 * libc only (rs_base). Thread-safe: no static state; the caller owns buf.
 */
#ifndef RS_PATHS_H
#define RS_PATHS_H

#include <stddef.h>

/* The default schema directory into buf (cut to buflen - 1 bytes; 4096
 * always suffices). Returns buf. */
char *rs_paths_schema_dir(char *buf, size_t buflen);

/* The installed location alone: 0 with buf set when the binary's
 * RS_SCHEMA_RELDIR holds ids.properties, -1 otherwise (a build-folder run,
 * or /proc not mounted). */
int rs_paths_installed_schema_dir(char *buf, size_t buflen);

#endif
