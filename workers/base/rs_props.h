/*
 * rs_props — the one key=value ("properties") parser: the worker config, the
 * policy file and the local schema id map all read their text through it.
 *
 * Rules (the same for every caller):
 *   - The text is split at '\n'; line numbers start at 1 and count every line,
 *     blank ones included.
 *   - Leading and trailing white space (isspace) is dropped from each line, and
 *     from each key and value.
 *   - A line that is empty, or whose first character is '#', is a comment.
 *     With RS_PROPS_TRAILING_COMMENTS, a '#' anywhere starts a comment that
 *     runs to the end of the line (the policy file and the schema id map; not
 *     the worker config, where a password may contain '#').
 *   - The first '=' splits key from value. A line without '=' is passed to the
 *     callback with value NULL, so the caller words the error for its file.
 *
 * Ownership: the parser works on its own copy of the text; key and value
 * point into that copy and are valid only during the callback.
 */
#ifndef RS_PROPS_H
#define RS_PROPS_H

#include <stddef.h>

#define RS_PROPS_TRAILING_COMMENTS 1u

/* Returned by rs_props_parse when its copy of the text cannot be allocated. */
#define RS_PROPS_ENOMEM (-1)

/* Called once per key=value line (value NULL: the line has no '='). A non-zero
 * return stops the parse, and rs_props_parse returns that value. */
typedef int (*rs_props_fn)(void *ctx, int lineno, char *key, char *value);

/* Parse text; 0 when every line was passed and accepted. */
int rs_props_parse(const char *text, unsigned flags, rs_props_fn fn, void *ctx);

/* The parser's trimming, for other line formats: s without its leading
 * white space (isspace), its trailing white space cut in place. */
char *rs_props_trim(char *s);

#endif
