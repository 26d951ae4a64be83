/*
 * rs_props — see rs_props.h for the rules. One pass over a private copy of the
 * text; lines are cut in place.
 */
#include "rs_props.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

char *rs_props_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int rs_props_parse(const char *text, unsigned flags, rs_props_fn fn, void *ctx)
{
    char *copy = strdup(text != NULL ? text : "");
    char *next = copy;
    int lineno = 0, rc = 0;

    if (copy == NULL)
        return RS_PROPS_ENOMEM;
    while (next != NULL && rc == 0) {
        char *line = next;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        if (flags & RS_PROPS_TRAILING_COMMENTS) {
            char *hash = strchr(line, '#');
            if (hash != NULL)
                *hash = '\0';
        }
        line = rs_props_trim(line);
        if (*line == '\0' || *line == '#')
            continue;
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            rc = fn(ctx, lineno, line, NULL);
            continue;
        }
        *eq = '\0';
        rc = fn(ctx, lineno, rs_props_trim(line), rs_props_trim(eq + 1));
    }
    free(copy);
    return rc;
}
