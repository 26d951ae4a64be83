/*
 * rs_avro_scan.c — the bounds checker that runs before Avro C reads a body: a
 * writer schema compiled into a flat program (nodes with child indexes), and
 * a scanner that walks a body with it. Also the public rs_avro_checker_t,
 * the same checker for other readers of our records (journal entries).
 *
 * Invariants:
 *   - Every varint, string/bytes length, block count and size, union branch,
 *     enum index and fixed size is checked against the bytes actually present
 *     before it is used, so a corrupt length never becomes an allocation in
 *     Avro C (AVRO-4293) and Avro C only sees well-formed bodies (AVRO-4246).
 *   - Limits: nesting deeper than RS_AVRO_MAX_DEPTH, more than
 *     RS_AVRO_MAX_ITEMS array or map items in one message, and bytes left
 *     over after the record are failures; a program has at most
 *     SCAN_MAX_NODES nodes, one per distinct (link-resolved) schema.
 *   - The scanner allocates nothing and reads only msg[0..len). On failure
 *     it writes one reason ("truncated at byte 12", ...) with the byte offset
 *     in the whole message.
 *   - A program borrows the schema it was compiled from (its nodes' memo
 *     keys): the entry or checker holding the program holds the schema.
 */
#include "rs_avro.h"

#include <avro.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro_internal.h"

/* ------------------------------------------------------------------------ */
/* The size checker: a flat program compiled from a writer schema           */
/* ------------------------------------------------------------------------ */

#define SCAN_MAX_NODES 4096

void rs_avro_scan_free(rs_avro_scan_prog_t *p)
{
    free(p->nodes);
    free(p->kids);
    memset(p, 0, sizeof(*p));
}

/* Compile `s`; returns its node index, or -1 (ENOMEM or too large: *why). */
int32_t rs_avro_scan_compile(rs_avro_scan_prog_t *p, avro_schema_t s, const char **why)
{
    while (s != NULL && avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    if (s == NULL) {
        *why = "schema has a dangling reference";
        return -1;
    }
    for (int32_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].schema == s)
            return i;
    if (p->n_nodes == SCAN_MAX_NODES) {
        *why = "schema has too many types";
        return -1;
    }
    if (p->n_nodes == p->cap_nodes) {
        int32_t cap = p->cap_nodes ? p->cap_nodes * 2 : 32;
        rs_avro_snode_t *nn = realloc(p->nodes, (size_t)cap * sizeof(*nn));
        if (nn == NULL) {
            *why = "out of memory";
            return -1;
        }
        p->nodes = nn;
        p->cap_nodes = cap;
    }
    int32_t me = p->n_nodes++;
    rs_avro_snode_t node = {.schema = s, .type = avro_typeof(s), .n = 0, .first = 0, .size = 0};
    p->nodes[me] = node;

    size_t n_children = 0;
    switch (node.type) {
    case AVRO_RECORD:
        n_children = avro_schema_record_size(s);
        break;
    case AVRO_UNION:
        n_children = avro_schema_union_size(s);
        break;
    case AVRO_ARRAY:
    case AVRO_MAP:
        n_children = 1;
        break;
    case AVRO_ENUM:
        p->nodes[me].n = avro_schema_enum_number_of_symbols(s);
        return me;
    case AVRO_FIXED:
        p->nodes[me].size = avro_schema_fixed_size(s);
        return me;
    default:
        return me;
    }
    if (n_children > SCAN_MAX_NODES) {
        *why = "schema has too many types";
        return -1;
    }
    int32_t *tmp = calloc(n_children ? n_children : 1, sizeof(*tmp));
    if (tmp == NULL) {
        *why = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < n_children; i++) {
        avro_schema_t c = node.type == AVRO_RECORD
                              ? avro_schema_record_field_get_by_index(s, (int)i)
                          : node.type == AVRO_UNION ? avro_schema_union_branch(s, (int)i)
                          : node.type == AVRO_ARRAY ? avro_schema_array_items(s)
                                                    : avro_schema_map_values(s);
        tmp[i] = rs_avro_scan_compile(p, c, why);
        if (tmp[i] < 0) {
            free(tmp);
            return -1;
        }
    }
    if (p->n_kids + (int32_t)n_children > p->cap_kids) {
        int32_t cap = p->cap_kids ? p->cap_kids : 64;
        while (cap < p->n_kids + (int32_t)n_children)
            cap *= 2;
        int32_t *nk = realloc(p->kids, (size_t)cap * sizeof(*nk));
        if (nk == NULL) {
            free(tmp);
            *why = "out of memory";
            return -1;
        }
        p->kids = nk;
        p->cap_kids = cap;
    }
    p->nodes[me].first = p->n_kids;
    p->nodes[me].n = (int32_t)n_children;
    if (n_children > 0) /* a record with no fields: p->kids may still be NULL */
        memcpy(p->kids + p->n_kids, tmp, n_children * sizeof(*tmp));
    p->n_kids += (int32_t)n_children;
    free(tmp);
    return me;
}

typedef struct scanner {
    const rs_avro_scan_prog_t *prog;
    const uint8_t *start; /* the whole message, for offsets in errors */
    const uint8_t *p, *end;
    int64_t items;
    char *why;
    size_t whylen;
    int strict; /* a block with a byte size must hold exactly its items */
} scanner_t;

static int scan_fail(scanner_t *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int scan_fail(scanner_t *sc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->why, sc->whylen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A zigzag varint. *out is always written (0 on failure), so no caller
 * reads an unset value whatever the compiler can prove about scan_fail. */
static int scan_varint(scanner_t *sc, int64_t *out)
{
    uint64_t v = 0;
    size_t at = (size_t)(sc->p - sc->start);
    *out = 0;
    for (int i = 0; i < 10; i++) {
        if (sc->p >= sc->end)
            return scan_fail(sc, "truncated at byte %zu", (size_t)(sc->p - sc->start));
        uint8_t b = *sc->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
            return 0;
        }
    }
    return scan_fail(sc, "varint at byte %zu is longer than 10 bytes", at);
}

/* A length (string, bytes, block size) that must fit in what is left. */
static int scan_length(scanner_t *sc, const char *what)
{
    int64_t n;
    size_t at = (size_t)(sc->p - sc->start);
    if (scan_varint(sc, &n) < 0)
        return -1;
    size_t left = (size_t)(sc->end - sc->p);
    if (n < 0)
        return scan_fail(sc, "negative %s length %lld at byte %zu", what, (long long)n, at);
    if ((uint64_t)n > left)
        return scan_fail(sc, "%s length %lld at byte %zu exceeds the %zu bytes left", what,
                         (long long)n, at, left);
    sc->p += n;
    return 0;
}

static int scan_node(scanner_t *sc, int32_t ni, int depth, int64_t *top_branch)
{
    const rs_avro_snode_t *node = &sc->prog->nodes[ni];
    int64_t v;
    size_t at = (size_t)(sc->p - sc->start);

    if (depth > RS_AVRO_MAX_DEPTH)
        return scan_fail(sc, "nested deeper than %d at byte %zu", RS_AVRO_MAX_DEPTH, at);
    switch (node->type) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (sc->p >= sc->end)
            return scan_fail(sc, "truncated at byte %zu", at);
        if (*sc->p > 1)
            return scan_fail(sc, "boolean byte 0x%02x at byte %zu", *sc->p, at);
        sc->p++;
        return 0;
    case AVRO_INT32:
        if (scan_varint(sc, &v) < 0)
            return -1;
        if (v < INT32_MIN || v > INT32_MAX)
            return scan_fail(sc, "int out of range at byte %zu", at);
        return 0;
    case AVRO_INT64:
        return scan_varint(sc, &v);
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        size_t w = node->type == AVRO_FLOAT ? 4 : 8;
        if ((size_t)(sc->end - sc->p) < w)
            return scan_fail(sc, "truncated at byte %zu", at);
        sc->p += w;
        return 0;
    }
    case AVRO_STRING:
        return scan_length(sc, "string");
    case AVRO_BYTES:
        return scan_length(sc, "bytes");
    case AVRO_FIXED:
        if (node->size < 0 || (uint64_t)node->size > (size_t)(sc->end - sc->p))
            return scan_fail(sc, "truncated at byte %zu", at);
        sc->p += node->size;
        return 0;
    case AVRO_ENUM:
        if (scan_varint(sc, &v) < 0)
            return -1;
        if (v < 0 || v >= node->n)
            return scan_fail(sc, "enum index %lld at byte %zu out of range", (long long)v, at);
        return 0;
    case AVRO_UNION:
        if (scan_varint(sc, &v) < 0)
            return -1;
        if (v < 0 || v >= node->n)
            return scan_fail(sc, "union branch %lld at byte %zu out of range (%d branches)",
                             (long long)v, at, (int)node->n);
        if (top_branch != NULL)
            *top_branch = v;
        return scan_node(sc, sc->prog->kids[node->first + v], depth + 1, NULL);
    case AVRO_RECORD:
        for (int32_t i = 0; i < node->n; i++)
            if (scan_node(sc, sc->prog->kids[node->first + i], depth + 1, NULL) < 0)
                return -1;
        return 0;
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            int64_t count, bytes = -1;
            size_t cat = (size_t)(sc->p - sc->start);
            if (scan_varint(sc, &count) < 0)
                return -1;
            if (count == 0)
                return 0;
            if (count < 0) {
                if (count == INT64_MIN)
                    return scan_fail(sc, "bad block count at byte %zu", cat);
                count = -count;
                size_t bat = (size_t)(sc->p - sc->start);
                if (scan_varint(sc, &bytes) < 0)
                    return -1;
                if (bytes < 0 || (uint64_t)bytes > (size_t)(sc->end - sc->p))
                    return scan_fail(sc, "block size %lld at byte %zu exceeds the bytes left",
                                     (long long)bytes, bat);
            }
            if (count > RS_AVRO_MAX_ITEMS - sc->items)
                return scan_fail(sc, "more than %d array or map items (block at byte %zu)",
                                 RS_AVRO_MAX_ITEMS, cat);
            sc->items += count;
            const uint8_t *block = sc->p;
            for (int64_t i = 0; i < count; i++) {
                if (node->type == AVRO_MAP && scan_length(sc, "map key") < 0)
                    return -1;
                if (scan_node(sc, sc->prog->kids[node->first], depth + 1, NULL) < 0)
                    return -1;
            }
            if (sc->strict && bytes >= 0 && sc->p - block != bytes)
                return scan_fail(sc, "block at byte %zu is not its stated size", cat);
        }
    default:
        return scan_fail(sc, "unsupported Avro type %d", node->type);
    }
}

/* Check a whole body (msg[hdr..len)) against the program. */
int rs_avro_scan_body(const rs_avro_scan_prog_t *prog, const uint8_t *msg, size_t len,
                      int64_t *top_branch, char *why, size_t whylen)
{
    scanner_t sc = {prog, msg, msg + RS_AVRO_HEADER_SIZE, msg + len, 0, why, whylen, 0};
    *top_branch = -1;
    if (scan_node(&sc, 0, 0, top_branch) < 0)
        return -1;
    if (sc.p != sc.end)
        return scan_fail(&sc, "%zu bytes left over after the record at byte %zu",
                         (size_t)(sc.end - sc.p), (size_t)(sc.p - sc.start));
    return 0;
}

int rs_avro_scan_skip(const rs_avro_scan_prog_t *prog, int32_t node, const uint8_t *msg,
                      size_t len, size_t *pos, int depth, int64_t *items)
{
    char why[128];
    scanner_t sc = {prog, msg, msg + *pos, msg + len, *items, why, sizeof(why), 1};
    if (scan_node(&sc, node, depth, NULL) < 0)
        return -1;
    *pos = (size_t)(sc.p - msg);
    *items = sc.items;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* A bounds checker for other readers of our records (journal entries)      */
/* ------------------------------------------------------------------------ */

struct rs_avro_checker {
    avro_schema_t schema;
    rs_avro_scan_prog_t prog;
};

int rs_avro_checker_new(rs_avro_checker_t **out, avro_schema_t schema, char *errstr,
                        size_t errlen)
{
    const char *why = NULL;
    rs_avro_checker_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    c->schema = avro_schema_incref(schema);
    if (rs_avro_scan_compile(&c->prog, c->schema, &why) < 0) {
        snprintf(errstr, errlen, "schema: %s", why ? why : "cannot be checked");
        rs_avro_checker_destroy(c);
        return -1;
    }
    *out = c;
    return 0;
}

void rs_avro_checker_destroy(rs_avro_checker_t *c)
{
    if (c == NULL)
        return;
    rs_avro_scan_free(&c->prog);
    if (c->schema)
        avro_schema_decref(c->schema);
    free(c);
}

int rs_avro_checker_check(const rs_avro_checker_t *c, const void *msg, size_t len, char *why,
                          size_t whylen)
{
    int64_t branch;
    if (len < RS_AVRO_HEADER_SIZE || len > (size_t)RS_AVRO_MAX_MESSAGE) {
        snprintf(why, whylen, "a message of %zu bytes", len);
        return -1;
    }
    return rs_avro_scan_body(&c->prog, msg, len, &branch, why, whylen);
}
