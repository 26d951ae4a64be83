/*
 * rs_paths.c — the default schema directory: next to the installed binary,
 * else the source tree (see rs_paths.h).
 *
 * Invariants:
 *   - Reads only /proc/self/exe and one access() of ids.properties; writes
 *     nothing but the caller's buffer, which always ends up NUL-terminated.
 *   - The installed path is built by string, not realpath(): the binary's
 *     directory, then RS_SCHEMA_RELDIR with each leading "../" taken off the
 *     directory, so no ".." is left in what is logged.
 */
#include "rs_paths.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef RS_SCHEMA_DIR
#define RS_SCHEMA_DIR "schemas"
#endif
#ifndef RS_SCHEMA_RELDIR
#define RS_SCHEMA_RELDIR "../share/revstream/schemas"
#endif

int rs_paths_installed_schema_dir(char *buf, size_t buflen)
{
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    const char *rel = RS_SCHEMA_RELDIR;
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    char *slash;

    if (buf == NULL || buflen == 0 || n <= 0)
        return -1;
    dir[n] = '\0';
    if ((slash = strrchr(dir, '/')) == NULL)
        return -1;
    *slash = '\0'; /* the binary's directory */
    while (strncmp(rel, "../", 3) == 0) {
        if ((slash = strrchr(dir, '/')) == NULL)
            return -1;
        *slash = '\0';
        rel += 3;
    }
    if (snprintf(probe, sizeof probe, "%s/%s/ids.properties", dir, rel) >= (int)sizeof probe ||
        access(probe, R_OK) != 0)
        return -1;
    if (snprintf(buf, buflen, "%s/%s", dir, rel) >= (int)buflen)
        return -1;
    return 0;
}

char *rs_paths_schema_dir(char *buf, size_t buflen)
{
    if (buf == NULL || buflen == 0)
        return buf;
    if (rs_paths_installed_schema_dir(buf, buflen) != 0)
        snprintf(buf, buflen, "%s", RS_SCHEMA_DIR);
    return buf;
}
