/*
 * rs_json_fast — a thin C view of simdjson's DOM parser, for the JSON codec's
 * fast path (rs_codec_json.c). Internal to schemas/.
 *
 * The JSON codec's contract is jansson's: what jansson (with
 * JSON_REJECT_DUPLICATES) refuses is refused with jansson's message. This
 * parser only takes the documents it can prove jansson would accept the same
 * way, and hands the rest back (rs_jf_parse returns -1) for the codec to parse
 * with jansson. It refuses:
 *   - anything simdjson itself refuses (syntax, invalid UTF-8, depth, number
 *     range, trailing content, unpaired surrogates);
 *   - an object with a duplicate key;
 *   - a string or key holding a NUL byte (jansson refuses \u0000);
 *   - an integer above INT64_MAX (jansson's json_int_t is 64-bit signed).
 * So on success the tree is exactly the one jansson would build, and every
 * string is NUL-terminated UTF-8 without NUL bytes inside.
 *
 * Ownership and threads: each thread has its own parser (thread-local,
 * allocated on first use, freed at thread exit). A value is a 16-byte handle
 * into that parser's document: valid until the same thread's next
 * rs_jf_parse(). Nothing is returned for the caller to free.
 */
#ifndef RS_JSON_FAST_H
#define RS_JSON_FAST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A value of the current document (opaque: simdjson's element). */
typedef struct rs_jf_val {
    void *a, *b;
} rs_jf_val_t;

typedef enum rs_jf_type {
    RS_JF_NULL = 0,
    RS_JF_OBJECT,
    RS_JF_ARRAY,
    RS_JF_STRING,
    RS_JF_OTHER /* number or boolean */
} rs_jf_type_t;

/* Parse `len` bytes (need not be NUL-terminated or padded). Returns 0 with
 * *root set, or -1 when the document must go to jansson (see above). */
int rs_jf_parse(const char *json, size_t len, rs_jf_val_t *root);

rs_jf_type_t rs_jf_type(const rs_jf_val_t *v);

/* Member `key` of object `obj`: 1 with *out set, 0 when absent. */
int rs_jf_member(const rs_jf_val_t *obj, const char *key, rs_jf_val_t *out);

/* A string's bytes (NUL-terminated) and length. */
const char *rs_jf_string(const rs_jf_val_t *v, size_t *n);

/* An array's size, and its item i (< size). */
size_t rs_jf_array_size(const rs_jf_val_t *v);
void rs_jf_array_item(const rs_jf_val_t *v, size_t i, rs_jf_val_t *out);

#ifdef __cplusplus
}
#endif

#endif
