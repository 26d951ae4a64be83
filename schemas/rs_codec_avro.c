/*
 * rs_codec_avro.c — Confluent wire-format Avro records <-> revstream structs.
 * The interface and its contract are in rs_avro.h; this comment says how the
 * file keeps it.
 *
 * Invariants:
 *   - The schema texts are schemas/ *.avsc themselves, made compact and
 *     without the docs at build time (avsc_to_c.cmake): no second copy.
 *     READER_TEXT, the union of all event records in event-type order, is
 *     what every writer schema is read into.
 *   - Per writer id (struct entry), built once and kept until the cache is
 *     destroyed:
 *       scan      a flat program compiled from the writer schema that walks a
 *                 body and checks every varint, length, count, branch and
 *                 enum index against the bytes present, before Avro C reads
 *                 it (so no corrupt length reaches avro_malloc);
 *       decoding  (on first decode) the projected reader: READER_TEXT cut to
 *                 the writer's records and stripped of optional fields the
 *                 writer lacks (Avro C 1.11.1 cannot fill reader defaults);
 *                 the resolver writer -> projected reader, or none when the
 *                 two parse equal (the fast path for our own schemas); the
 *                 reader value; and the field index table `layout`;
 *       encoding  (on first encode) a generic value of the writer schema,
 *                 its layout, and which of its fields revstream must null.
 *     A failure to build either side is remembered (ESCHEMA with the same
 *     message every time); it is not retried per message.
 *   - Field access never goes by name at run time: every record revstream
 *     knows has a kind (RS_RK_*) and a fixed list of field slots
 *     (rs_codec_fields.h); `layout` maps (kind, slot) to the field's index in
 *     that id's schema, -1 when the schema lacks the field.
 *   - The event contract's rules are not here: decoding hands the reader
 *     value to rs_codec_decode_event() (rs_codec_fields.c) through the Avro
 *     field source below, the same rules and messages the JSON codec uses.
 *     The source adds only what JSON cannot express: strings with NUL bytes
 *     or invalid UTF-8 are refused. Whether `type` names the record's own
 *     type is checked by the shared decoder, which knows both.
 *   - Errors of the wire format read "avro message: <reason>" (no event id is
 *     known yet); errors of the contract read "event <id>: <field>: <reason>".
 *
 * Ownership: the cache owns its entries; an entry owns its schema text copy,
 * schemas, ifaces and values (released with avro_value_decref /
 * avro_value_iface_decref / avro_schema_decref in entry_free). jansson
 * values live only inside the function that made them.
 */
#include "rs_avro.h"

#include <avro.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro_schema_texts.h" /* generated from the .avsc files */
#include "rs_codec.h"
#include "rs_codec_fields.h"

/* ------------------------------------------------------------------------ */
/* Schema texts                                                             */
/* ------------------------------------------------------------------------ */

static const char *const SCHEMA_TEXT[RS_AVRO_SCHEMA__COUNT] = {
    [RS_AVRO_SCHEMA_CONTRACTS] = RS_AVSC_CONTRACTS,
    [RS_AVRO_SCHEMA_INVOICES] = RS_AVSC_INVOICES,
    [RS_AVRO_SCHEMA_PAYMENTS] = RS_AVSC_PAYMENTS,
    [RS_AVRO_SCHEMA_USAGE] = RS_AVSC_USAGE,
    [RS_AVRO_SCHEMA_JOURNAL_ENTRY] = RS_AVSC_JOURNAL_ENTRY,
    [RS_AVRO_SCHEMA_DEFERRED_BALANCE] = RS_AVSC_DEFERRED_BALANCE,
    [RS_AVRO_SCHEMA_DEAD_LETTER] = RS_AVSC_DEAD_LETTER,
};

static const char *const SCHEMA_NAME[RS_AVRO_SCHEMA__COUNT] = {
    [RS_AVRO_SCHEMA_CONTRACTS] = "contracts",
    [RS_AVRO_SCHEMA_INVOICES] = "invoices",
    [RS_AVRO_SCHEMA_PAYMENTS] = "payments",
    [RS_AVRO_SCHEMA_USAGE] = "usage",
    [RS_AVRO_SCHEMA_JOURNAL_ENTRY] = "journal_entry",
    [RS_AVRO_SCHEMA_DEFERRED_BALANCE] = "deferred_balance",
    [RS_AVRO_SCHEMA_DEAD_LETTER] = "dead_letter",
};

/* Every event record, branch i being event type i + 1. */
static const char READER_TEXT[] = "[" RS_AVSC_CONTRACTS_BRANCHES "," RS_AVSC_INVOICES_BRANCHES
                                  "," RS_AVSC_PAYMENTS_BRANCHES "," RS_AVSC_USAGE_BRANCHES "]";

const char *rs_avro_schema_json(rs_avro_schema_kind_t kind)
{
    if ((int)kind < 0 || kind >= RS_AVRO_SCHEMA__COUNT)
        return NULL;
    return SCHEMA_TEXT[kind];
}

const char *rs_avro_schema_name(rs_avro_schema_kind_t kind)
{
    if ((int)kind < 0 || kind >= RS_AVRO_SCHEMA__COUNT)
        return NULL;
    return SCHEMA_NAME[kind];
}

int rs_avro_schema_kind_from_name(const char *name)
{
    for (int k = 0; name != NULL && k < RS_AVRO_SCHEMA__COUNT; k++)
        if (strcmp(name, SCHEMA_NAME[k]) == 0)
            return k;
    return -1;
}

int rs_avro_schema_kind_of_event(rs_event_type_t type)
{
    const char *topic = rs_event_topic(type);
    return topic ? rs_avro_schema_kind_from_name(topic) : -1;
}

const char *rs_avro_status_name(int status)
{
    switch (status) {
    case RS_AVRO_OK:
        return "ok";
    case RS_AVRO_ECORRUPT:
        return "corrupt";
    case RS_AVRO_EUNKNOWN_ID:
        return "unknown schema id";
    case RS_AVRO_EINVALID:
        return "invalid event";
    case RS_AVRO_ESCHEMA:
        return "schema";
    case RS_AVRO_ENOMEM:
        return "out of memory";
    default:
        return "?";
    }
}

/* ------------------------------------------------------------------------ */
/* Field index tables (records and slots: rs_codec_fields.h)                */
/* ------------------------------------------------------------------------ */

/* Event record kind k (RS_RK_*) is branch k of READER_TEXT: both follow the
 * event-type order. */

/* (kind, slot) -> field index in one schema; -1 when absent. */
typedef struct layout {
    int8_t idx[RS_RK__COUNT][RS_CODEC_MAX_SLOTS];
    uint8_t seen[RS_RK__COUNT]; /* the schema has this record */
} layout_t;

#define WALK_MAX_RECORDS 256

typedef struct walk {
    layout_t *lay;
    avro_schema_t visited[WALK_MAX_RECORDS];
    int n_visited;
} walk_t;

/* Fill the layout from every record reachable in `s`. Each record schema is
 * walked once (named types may be referenced many times); links, which only
 * point back at a record being walked, are not followed. */
static void layout_walk(walk_t *w, avro_schema_t s, int depth)
{
    layout_t *lay = w->lay;
    if (s == NULL || depth > RS_AVRO_MAX_DEPTH)
        return;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        for (int i = 0; i < w->n_visited; i++)
            if (w->visited[i] == s)
                return;
        if (w->n_visited == WALK_MAX_RECORDS)
            return;
        w->visited[w->n_visited++] = s;
        int k = rs_codec_record_kind(avro_schema_name(s));
        if (k >= 0 && !lay->seen[k]) {
            lay->seen[k] = 1;
            for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[k][j] != NULL; j++) {
                int i = avro_schema_record_field_get_index(s, rs_codec_field_name[k][j]);
                lay->idx[k][j] = (int8_t)(i >= 0 && i < 127 ? i : -1);
            }
        }
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++)
            layout_walk(w, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
        break;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n; i++)
            layout_walk(w, avro_schema_union_branch(s, (int)i), depth + 1);
        break;
    }
    case AVRO_ARRAY:
        layout_walk(w, avro_schema_array_items(s), depth + 1);
        break;
    case AVRO_MAP:
        layout_walk(w, avro_schema_map_values(s), depth + 1);
        break;
    default:
        break;
    }
}

static void layout_build(layout_t *lay, avro_schema_t s)
{
    memset(lay->idx, -1, sizeof(lay->idx));
    memset(lay->seen, 0, sizeof(lay->seen));
    walk_t w = {.lay = lay, .n_visited = 0};
    layout_walk(&w, s, 0);
}

/* ------------------------------------------------------------------------ */
/* The size checker: a flat program compiled from a writer schema           */
/* ------------------------------------------------------------------------ */

#define SCAN_MAX_NODES 4096

typedef struct snode {
    avro_schema_t schema; /* borrowed from the entry's writer schema (memo key) */
    int type;             /* avro_type_t */
    int32_t n;            /* record fields, union branches, enum symbols; 1 for array/map */
    int32_t first;        /* first child in prog->kids */
    int64_t size;         /* fixed: byte size */
} snode_t;

typedef struct scan_prog {
    snode_t *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *kids;
    int32_t n_kids, cap_kids;
} scan_prog_t;

static void prog_free(scan_prog_t *p)
{
    free(p->nodes);
    free(p->kids);
    memset(p, 0, sizeof(*p));
}

/* Compile `s`; returns its node index, or -1 (ENOMEM or too large: *why). */
static int32_t prog_compile(scan_prog_t *p, avro_schema_t s, const char **why)
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
        snode_t *nn = realloc(p->nodes, (size_t)cap * sizeof(*nn));
        if (nn == NULL) {
            *why = "out of memory";
            return -1;
        }
        p->nodes = nn;
        p->cap_nodes = cap;
    }
    int32_t me = p->n_nodes++;
    snode_t node = {.schema = s, .type = avro_typeof(s), .n = 0, .first = 0, .size = 0};
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
        tmp[i] = prog_compile(p, c, why);
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
    memcpy(p->kids + p->n_kids, tmp, n_children * sizeof(*tmp));
    p->n_kids += (int32_t)n_children;
    free(tmp);
    return me;
}

typedef struct scanner {
    const scan_prog_t *prog;
    const uint8_t *start; /* the whole message, for offsets in errors */
    const uint8_t *p, *end;
    int64_t items;
    char *why;
    size_t whylen;
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

static int scan_varint(scanner_t *sc, int64_t *out)
{
    uint64_t v = 0;
    size_t at = (size_t)(sc->p - sc->start);
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
    const snode_t *node = &sc->prog->nodes[ni];
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
            int64_t count;
            size_t cat = (size_t)(sc->p - sc->start);
            if (scan_varint(sc, &count) < 0)
                return -1;
            if (count == 0)
                return 0;
            if (count < 0) {
                if (count == INT64_MIN)
                    return scan_fail(sc, "bad block count at byte %zu", cat);
                count = -count;
                int64_t bytes;
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
            for (int64_t i = 0; i < count; i++) {
                if (node->type == AVRO_MAP && scan_length(sc, "map key") < 0)
                    return -1;
                if (scan_node(sc, sc->prog->kids[node->first], depth + 1, NULL) < 0)
                    return -1;
            }
        }
    default:
        return scan_fail(sc, "unsupported Avro type %d", node->type);
    }
}

/* Check a whole body (msg[hdr..len)) against the program. */
static int scan_body(const scan_prog_t *prog, const uint8_t *msg, size_t len,
                     int64_t *top_branch, char *why, size_t whylen)
{
    scanner_t sc = {prog, msg, msg + RS_AVRO_HEADER_SIZE, msg + len, 0, why, whylen};
    *top_branch = -1;
    if (scan_node(&sc, 0, 0, top_branch) < 0)
        return -1;
    if (sc.p != sc.end)
        return scan_fail(&sc, "%zu bytes left over after the record at byte %zu",
                         (size_t)(sc.end - sc.p), (size_t)(sc.p - sc.start));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The projected reader (jansson over the schema texts)                     */
/* ------------------------------------------------------------------------ */

static const char *simple_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot ? dot + 1 : n;
}

static int is_named_type(const char *t)
{
    return strcmp(t, "record") == 0 || strcmp(t, "error") == 0 || strcmp(t, "enum") == 0 ||
           strcmp(t, "fixed") == 0;
}

/* Collect every named definition in `node`: defs[simple name] = definition,
 * and for records also fields[simple name] = {field name: true}. */
static int collect(json_t *node, json_t *defs, json_t *fields, int depth)
{
    if (depth > RS_AVRO_MAX_DEPTH)
        return -1;
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (collect(v, defs, fields, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    json_t *type = json_object_get(node, "type");
    if (json_is_string(type) && is_named_type(json_string_value(type))) {
        json_t *name = json_object_get(node, "name");
        if (!json_is_string(name))
            return -1;
        const char *sn = simple_name(json_string_value(name));
        if (json_object_set(defs, sn, node) < 0)
            return -1;
        json_t *fl = json_object_get(node, "fields");
        if (json_is_array(fl)) {
            json_t *set = json_object();
            size_t i;
            json_t *f;
            if (set == NULL || json_object_set_new(fields, sn, set) < 0)
                return -1;
            json_array_foreach(fl, i, f)
            {
                json_t *fn = json_object_get(f, "name");
                if (!json_is_string(fn) ||
                    json_object_set(set, json_string_value(fn), json_true()) < 0)
                    return -1;
                if (collect(json_object_get(f, "type"), defs, fields, depth + 1) < 0)
                    return -1;
            }
        }
        return 0;
    }
    if (json_is_object(type) || json_is_array(type))
        return collect(type, defs, fields, depth + 1);
    if (collect(json_object_get(node, "items"), defs, fields, depth + 1) < 0)
        return -1;
    return collect(json_object_get(node, "values"), defs, fields, depth + 1);
}

typedef struct proj {
    json_t *defs;    /* ours: simple name -> definition */
    json_t *defined; /* simple names emitted so far */
    json_t *wfields; /* the writer's: simple record name -> {field: true} */
} proj_t;

/* A copy of our schema `node` in which a named type is defined where it is
 * first used, and each record drops the optional fields (those with a
 * default) that the writer's record of the same name lacks. */
static json_t *project(proj_t *pj, json_t *node, int depth)
{
    if (depth > RS_AVRO_MAX_DEPTH)
        return NULL;
    if (json_is_string(node)) {
        const char *sn = simple_name(json_string_value(node));
        json_t *def = json_object_get(pj->defs, sn);
        if (def != NULL && json_object_get(pj->defined, sn) == NULL)
            return project(pj, def, depth + 1);
        return json_incref(node);
    }
    if (json_is_array(node)) {
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (out == NULL || json_array_append_new(out, project(pj, v, depth + 1)) < 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (!json_is_object(node))
        return NULL;
    json_t *type = json_object_get(node, "type");
    if (json_is_string(type) && is_named_type(json_string_value(type))) {
        const char *name = json_string_value(json_object_get(node, "name"));
        const char *sn = simple_name(name);
        if (json_object_get(pj->defined, sn) != NULL)
            return json_string(name);
        if (json_object_set(pj->defined, sn, json_true()) < 0)
            return NULL;
    }
    json_t *out = json_copy(node); /* shallow: members replaced below */
    if (out == NULL)
        return NULL;
    if (json_is_object(type) || json_is_array(type)) {
        if (json_object_set_new(out, "type", project(pj, type, depth + 1)) < 0)
            goto fail;
    }
    const char *keys[] = {"items", "values"};
    for (int k = 0; k < 2; k++) {
        json_t *sub = json_object_get(node, keys[k]);
        if (sub != NULL && json_object_set_new(out, keys[k], project(pj, sub, depth + 1)) < 0)
            goto fail;
    }
    json_t *fl = json_object_get(node, "fields");
    if (json_is_array(fl)) {
        const char *sn = simple_name(json_string_value(json_object_get(node, "name")));
        json_t *wset = json_object_get(pj->wfields, sn);
        json_t *nf = json_array();
        size_t i;
        json_t *f;
        if (nf == NULL || json_object_set_new(out, "fields", nf) < 0)
            goto fail;
        json_array_foreach(fl, i, f)
        {
            const char *fname = json_string_value(json_object_get(f, "name"));
            if (wset != NULL && json_object_get(wset, fname) == NULL &&
                json_object_get(f, "default") != NULL)
                continue; /* optional, and this writer never sends it */
            json_t *cf = json_copy(f);
            if (cf == NULL || json_array_append_new(nf, cf) < 0 ||
                json_object_set_new(cf, "type",
                                    project(pj, json_object_get(f, "type"), depth + 1)) < 0)
                goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* The reader for writer schema text `wtext`: the union of our event records
 * the writer has (in event-type order) or, for a writer that is one record,
 * that record. branch_type[i] receives the event type of reader branch i.
 * Returns a malloc'd schema text, or NULL with a reason in why. */
static char *projected_reader(const char *wtext, rs_event_type_t branch_type[RS_RK__EVENTS],
                              int *n_branches, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *ours = json_loads(READER_TEXT, 0, &jerr);
    json_t *writer = json_loads(wtext, JSON_DECODE_ANY, &jerr);
    proj_t pj = {json_object(), json_object(), json_object()};
    json_t *wdefs = json_object(), *top = NULL;
    char *text = NULL;

    *n_branches = 0;
    if (ours == NULL || pj.defs == NULL || pj.defined == NULL || pj.wfields == NULL ||
        wdefs == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if (writer == NULL || collect(writer, wdefs, pj.wfields, 0) < 0) {
        snprintf(why, whylen, "not valid schema JSON");
        goto out;
    }
    json_t *our_fields = json_object();
    int crc = our_fields ? collect(ours, pj.defs, our_fields, 0) : -1;
    json_decref(our_fields);
    if (crc < 0) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    /* Which of our event records does the writer have at its top level? */
    int want[RS_RK__EVENTS] = {0};
    if (json_is_array(writer)) {
        size_t i;
        json_t *b;
        json_array_foreach(writer, i, b)
        {
            const char *n = json_is_string(b) ? json_string_value(b)
                                              : json_string_value(json_object_get(b, "name"));
            int k = n ? rs_codec_record_kind(simple_name(n)) : -1;
            if (k >= 0 && k < RS_RK__EVENTS)
                want[k] = 1;
        }
    } else if (json_is_object(writer)) {
        const char *n = json_string_value(json_object_get(writer, "name"));
        int k = n ? rs_codec_record_kind(simple_name(n)) : -1;
        if (k >= 0 && k < RS_RK__EVENTS)
            want[k] = 1;
    }
    int any = 0;
    for (int k = 0; k < RS_RK__EVENTS; k++)
        any |= want[k];
    if (!any) {
        snprintf(why, whylen,
                 "has none of revstream's event records (io.revstream.ContractBooked, ...)");
        goto out;
    }
    if (json_is_array(writer)) {
        top = json_array();
        for (int k = 0; top != NULL && k < RS_RK__EVENTS; k++) {
            if (!want[k])
                continue;
            json_t *p = project(&pj, json_array_get(ours, (size_t)k), 0);
            if (p == NULL || json_array_append_new(top, p) < 0) {
                json_decref(top);
                top = NULL;
                break;
            }
            branch_type[(*n_branches)++] = (rs_event_type_t)(k + 1);
        }
    } else {
        for (int k = 0; k < RS_RK__EVENTS; k++)
            if (want[k]) {
                top = project(&pj, json_array_get(ours, (size_t)k), 0);
                branch_type[(*n_branches)++] = (rs_event_type_t)(k + 1);
            }
    }
    if (top == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    text = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        snprintf(why, whylen, "out of memory");
out:
    json_decref(top);
    json_decref(ours);
    json_decref(writer);
    json_decref(wdefs);
    json_decref(pj.defs);
    json_decref(pj.defined);
    json_decref(pj.wfields);
    return text;
}

/* ------------------------------------------------------------------------ */
/* The cache                                                                */
/* ------------------------------------------------------------------------ */

typedef struct entry {
    int32_t id;
    char *text; /* the writer schema as registered */
    avro_schema_t wschema;
    scan_prog_t prog;
    int8_t *wbranch_kind; /* writer top-level union branch -> RS_RK_ or -1 */
    size_t n_wbranches;   /* 0 when the writer is not a union */

    /* decoding: dec_state 0 = not built, 1 = ready, -1 = failed (dec_error) */
    int dec_state;
    char *dec_error;
    avro_schema_t rschema;
    avro_value_iface_t *rclass;
    avro_value_t rvalue;
    avro_value_iface_t *resolver; /* NULL: the writer is the reader */
    avro_value_t resolved;
    rs_event_type_t branch_type[RS_RK__EVENTS];
    int n_branches;
    int r_is_union;
    layout_t rlay;

    /* encoding: the same states */
    int enc_state;
    char *enc_error;
    avro_value_iface_t *wclass;
    avro_value_t wvalue;
    layout_t wlay;
    uint64_t nullmask[RS_RK__COUNT]; /* writer fields unknown to us, set to null */
} entry_t;

struct rs_avro_cache {
    entry_t **entries;
    size_t n, cap;
    entry_t *last;
    rs_avro_lookup_fn lookup;
    void *lookup_opaque;
    avro_reader_t reader;
    avro_writer_t writer;
};

static void entry_free(entry_t *e)
{
    if (e == NULL)
        return;
    if (e->resolver != NULL) {
        avro_value_decref(&e->resolved);
        avro_value_iface_decref(e->resolver);
    }
    if (e->rclass != NULL) {
        if (e->rvalue.self != NULL)
            avro_value_decref(&e->rvalue);
        avro_value_iface_decref(e->rclass);
    }
    if (e->rschema != NULL)
        avro_schema_decref(e->rschema);
    if (e->wclass != NULL) {
        if (e->wvalue.self != NULL)
            avro_value_decref(&e->wvalue);
        avro_value_iface_decref(e->wclass);
    }
    if (e->wschema != NULL)
        avro_schema_decref(e->wschema);
    prog_free(&e->prog);
    free(e->wbranch_kind);
    free(e->dec_error);
    free(e->enc_error);
    free(e->text);
    free(e);
}

/* Copy avro_strerror() now: it is one global buffer (see rs_avro.h). */
static const char *avro_why(void)
{
    const char *s = avro_strerror();
    return (s != NULL && *s != '\0') ? s : "unknown Avro error";
}

int rs_avro_cache_new(rs_avro_cache_t **out, char *errstr, size_t errlen)
{
    static const char empty[1] = {0};
    rs_avro_cache_t *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (c == NULL)
        goto nomem;
    c->reader = avro_reader_memory(empty, 0);
    c->writer = avro_writer_memory(empty, 0);
    if (c->reader == NULL || c->writer == NULL)
        goto nomem;
    *out = c;
    return RS_AVRO_OK;
nomem:
    rs_avro_cache_destroy(c);
    snprintf(errstr, errlen, "avro cache: out of memory");
    return RS_AVRO_ENOMEM;
}

void rs_avro_cache_destroy(rs_avro_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(c->entries[i]);
    free(c->entries);
    if (c->reader != NULL)
        avro_reader_free(c->reader);
    if (c->writer != NULL)
        avro_writer_free(c->writer);
    free(c);
}

void rs_avro_cache_set_lookup(rs_avro_cache_t *c, rs_avro_lookup_fn fn, void *opaque)
{
    c->lookup = fn;
    c->lookup_opaque = opaque;
}

static entry_t *find(const rs_avro_cache_t *c, int32_t id)
{
    if (c->last != NULL && c->last->id == id)
        return c->last;
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i]->id == id)
            return c->entries[i];
    return NULL;
}

int rs_avro_cache_has(const rs_avro_cache_t *c, int32_t id)
{
    return c != NULL && find(c, id) != NULL;
}

int rs_avro_cache_add(rs_avro_cache_t *c, int32_t id, const char *json_text, char *errstr,
                      size_t errlen)
{
    avro_schema_t s = NULL;
    entry_t *e = NULL;
    const char *why = NULL;
    int rc = RS_AVRO_ESCHEMA;

    if (json_text == NULL) {
        snprintf(errstr, errlen, "schema id %d: no schema text", (int)id);
        return RS_AVRO_ESCHEMA;
    }
    if (avro_schema_from_json_length(json_text, strlen(json_text), &s) != 0) {
        snprintf(errstr, errlen, "schema id %d: not a valid Avro schema: %s", (int)id,
                 avro_why());
        return RS_AVRO_ESCHEMA;
    }
    entry_t *old = find(c, id);
    if (old != NULL) {
        int same = avro_schema_equal(old->wschema, s);
        avro_schema_decref(s);
        if (same)
            return RS_AVRO_OK;
        snprintf(errstr, errlen, "schema id %d is already registered with a different schema",
                 (int)id);
        return RS_AVRO_ESCHEMA;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->text = strdup(json_text)) == NULL)
        goto nomem;
    e->id = id;
    e->wschema = s;
    s = NULL;
    if (prog_compile(&e->prog, e->wschema, &why) != 0) {
        snprintf(errstr, errlen, "schema id %d: %s", (int)id, why);
        rc = strcmp(why, "out of memory") == 0 ? RS_AVRO_ENOMEM : RS_AVRO_ESCHEMA;
        goto fail;
    }
    if (avro_typeof(e->wschema) == AVRO_UNION) {
        e->n_wbranches = avro_schema_union_size(e->wschema);
        e->wbranch_kind = malloc(e->n_wbranches ? e->n_wbranches : 1);
        if (e->wbranch_kind == NULL)
            goto nomem;
        for (size_t i = 0; i < e->n_wbranches; i++) {
            avro_schema_t b = avro_schema_union_branch(e->wschema, (int)i);
            e->wbranch_kind[i] =
                (int8_t)(is_avro_record(b) ? rs_codec_record_kind(avro_schema_name(b)) : -1);
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        entry_t **ne = realloc(c->entries, cap * sizeof(*ne));
        if (ne == NULL)
            goto nomem;
        c->entries = ne;
        c->cap = cap;
    }
    c->entries[c->n++] = e;
    return RS_AVRO_OK;
nomem:
    snprintf(errstr, errlen, "schema id %d: out of memory", (int)id);
    rc = RS_AVRO_ENOMEM;
fail:
    if (s != NULL)
        avro_schema_decref(s);
    entry_free(e);
    return rc;
}

/* The entry for `id`, asking the lookup hook when it is not cached. */
static int get_entry(rs_avro_cache_t *c, int32_t id, entry_t **out, char *errstr, size_t errlen)
{
    entry_t *e = find(c, id);
    if (e == NULL) {
        char *text = NULL;
        char why[256] = "";
        if (c->lookup == NULL) {
            snprintf(errstr, errlen, "avro message: unknown schema id %d", (int)id);
            return RS_AVRO_EUNKNOWN_ID;
        }
        if (c->lookup(c->lookup_opaque, id, &text, why, sizeof(why)) != 0 || text == NULL) {
            free(text);
            snprintf(errstr, errlen, "avro message: unknown schema id %d: %s", (int)id, why);
            return RS_AVRO_EUNKNOWN_ID;
        }
        int rc = rs_avro_cache_add(c, id, text, errstr, errlen);
        free(text);
        if (rc != RS_AVRO_OK)
            return rc;
        e = find(c, id);
    }
    c->last = e;
    *out = e;
    return RS_AVRO_OK;
}

static int remember_error(char **slot, int *state, const char *msg)
{
    *state = -1;
    *slot = strdup(msg);
    return *slot == NULL ? RS_AVRO_ENOMEM : RS_AVRO_ESCHEMA;
}

/* Build the decoding side of `e` (once). */
static int prepare_decode(entry_t *e, char *errstr, size_t errlen)
{
    char why[512], msg[768];
    char *rtext = NULL;

    if (e->dec_state == 1)
        return RS_AVRO_OK;
    if (e->dec_state == -1) {
        snprintf(errstr, errlen, "%s", e->dec_error ? e->dec_error : "schema unusable");
        return RS_AVRO_ESCHEMA;
    }
    rtext = projected_reader(e->text, e->branch_type, &e->n_branches, why, sizeof(why));
    if (rtext == NULL)
        goto fail;
    if (avro_schema_from_json_length(rtext, strlen(rtext), &e->rschema) != 0) {
        snprintf(why, sizeof(why), "internal: projected reader: %s", avro_why());
        e->rschema = NULL;
        goto fail;
    }
    e->r_is_union = avro_typeof(e->rschema) == AVRO_UNION;
    e->rclass = avro_generic_class_from_schema(e->rschema);
    if (e->rclass == NULL || avro_generic_value_new(e->rclass, &e->rvalue) != 0) {
        e->rvalue.self = NULL;
        snprintf(why, sizeof(why), "cannot build a reader: %s", avro_why());
        goto fail;
    }
    if (!avro_schema_equal(e->wschema, e->rschema)) {
        e->resolver = avro_resolved_writer_new(e->wschema, e->rschema);
        if (e->resolver == NULL) {
            snprintf(why, sizeof(why), "cannot be read as revstream events: %s", avro_why());
            goto fail;
        }
        if (avro_resolved_writer_new_value(e->resolver, &e->resolved) != 0) {
            avro_value_iface_decref(e->resolver);
            e->resolver = NULL;
            snprintf(why, sizeof(why), "cannot build a resolver: %s", avro_why());
            goto fail;
        }
        avro_resolved_writer_set_dest(&e->resolved, &e->rvalue);
    }
    layout_build(&e->rlay, e->rschema);
    free(rtext);
    e->dec_state = 1;
    return RS_AVRO_OK;
fail:
    free(rtext);
    snprintf(msg, sizeof(msg), "schema id %d: %s", (int)e->id, why);
    snprintf(errstr, errlen, "%s", msg);
    return remember_error(&e->dec_error, &e->dec_state, msg);
}

/* ------------------------------------------------------------------------ */
/* Decoding: the Avro field source                                          */
/* ------------------------------------------------------------------------ */

/* The avro_value_t a node holds (see rs_codec_node_t), and back. */
static avro_value_t node_value(const rs_codec_node_t *n)
{
    avro_value_t v = {n->ref[0], n->ref[1]};
    return v;
}

static void node_set(rs_codec_node_t *n, const avro_value_t *v)
{
    n->ref[0] = v->iface;
    n->ref[1] = v->self;
}

/* The value of field `slot` of record `r`, unwrapped from its union; 0 when
 * the schema lacks the field (src->ctx is the reader's layout) or it is null. */
static int afield(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                  avro_value_t *out)
{
    const layout_t *lay = src->ctx;
    avro_value_t rv = node_value(r);
    int idx = lay->idx[r->rk][slot];
    if (idx < 0 || avro_value_get_by_index(&rv, (size_t)idx, out, NULL) != 0)
        return 0;
    if (avro_value_get_type(out) == AVRO_UNION) {
        avro_value_t b;
        if (avro_value_get_current_branch(out, &b) != 0)
            return 0;
        *out = b;
    }
    return avro_value_get_type(out) != AVRO_NULL;
}

/* A string, which unlike a JSON string may hold NUL bytes or bytes that are
 * not UTF-8: those are refused here (the field rules need neither). */
static int avro_src_string(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           const char **s, size_t *n, const char **why)
{
    avro_value_t v;
    size_t size = 0;
    if (!afield(src, r, slot, &v))
        return 0;
    if (avro_value_get_type(&v) != AVRO_STRING || avro_value_get_string(&v, s, &size) != 0 ||
        *s == NULL)
        return RS_CODEC_EWRONG;
    *n = size > 0 ? size - 1 : 0; /* Avro C counts the terminating NUL */
    if (memchr(*s, '\0', *n) != NULL) {
        *why = "must not contain a NUL byte";
        return RS_CODEC_EBAD;
    }
    if (!rs_codec_utf8_valid(*s, *n)) {
        *why = "must be valid UTF-8";
        return RS_CODEC_EBAD;
    }
    return 1;
}

static int avro_src_array(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                          rs_codec_node_t *arr, size_t *n)
{
    avro_value_t v;
    if (!afield(src, r, slot, &v))
        return 0;
    if (avro_value_get_type(&v) != AVRO_ARRAY || avro_value_get_size(&v, n) != 0)
        return RS_CODEC_EWRONG;
    node_set(arr, &v);
    return 1;
}

static int avro_src_item(const rs_codec_source_t *src, const rs_codec_node_t *arr, size_t i,
                         rs_codec_node_t *rec)
{
    avro_value_t av = node_value(arr), v;
    (void)src;
    if (avro_value_get_by_index(&av, i, &v, NULL) != 0 ||
        avro_value_get_type(&v) != AVRO_RECORD)
        return RS_CODEC_EWRONG;
    node_set(rec, &v);
    return 0;
}

static int avro_src_record(const rs_codec_source_t *src, const rs_codec_node_t *r, int slot,
                           rs_codec_node_t *sub)
{
    avro_value_t v;
    if (!afield(src, r, slot, &v))
        return 0;
    if (avro_value_get_type(&v) != AVRO_RECORD)
        return RS_CODEC_EWRONG;
    node_set(sub, &v);
    return 1;
}

int rs_avro_peek_id(const void *buf, size_t len, int32_t *id)
{
    const uint8_t *b = buf;
    if (b == NULL || len < RS_AVRO_HEADER_SIZE || b[0] != RS_AVRO_MAGIC)
        return RS_AVRO_ECORRUPT;
    *id = (int32_t)(((uint32_t)b[1] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 8) |
                    (uint32_t)b[4]);
    return RS_AVRO_OK;
}

int rs_avro_decode_event(rs_avro_cache_t *c, const void *buf, size_t len, rs_event_t *ev,
                         char *errstr, size_t errlen)
{
    const uint8_t *msg = buf;
    entry_t *e = NULL;
    int32_t id = 0;
    int64_t top_branch = -1;
    char why[256];
    int rc;

    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    if (ev == NULL) {
        snprintf(errstr, errlen, "avro message: no event to decode into");
        return RS_AVRO_EINVALID;
    }
    rs_event_init(ev);
    if (msg == NULL || len < RS_AVRO_HEADER_SIZE) {
        snprintf(errstr, errlen, "avro message: %zu bytes, shorter than the %d-byte header",
                 msg ? len : 0, RS_AVRO_HEADER_SIZE);
        return RS_AVRO_ECORRUPT;
    }
    if (msg[0] != RS_AVRO_MAGIC) {
        snprintf(errstr, errlen,
                 "avro message: magic byte 0x%02x is not 0 (not Confluent wire format)",
                 msg[0]);
        return RS_AVRO_ECORRUPT;
    }
    if (len > RS_AVRO_MAX_MESSAGE) {
        snprintf(errstr, errlen, "avro message: %zu bytes is over the %d-byte limit", len,
                 RS_AVRO_MAX_MESSAGE);
        return RS_AVRO_ECORRUPT;
    }
    rs_avro_peek_id(msg, len, &id);
    if ((rc = get_entry(c, id, &e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if ((rc = prepare_decode(e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (scan_body(&e->prog, msg, len, &top_branch, why, sizeof(why)) != 0) {
        snprintf(errstr, errlen, "avro message: schema id %d: %s", (int)id, why);
        return RS_AVRO_ECORRUPT;
    }
    if (e->n_wbranches > 0 &&
        (top_branch < 0 || (size_t)top_branch >= e->n_wbranches ||
         e->wbranch_kind[top_branch] < 0 || e->wbranch_kind[top_branch] >= RS_RK__EVENTS)) {
        avro_schema_t b = avro_schema_union_branch(e->wschema, (int)top_branch);
        snprintf(errstr, errlen,
                 "avro message: schema id %d: branch %lld (%s) is not a revstream event",
                 (int)id, (long long)top_branch, b ? avro_schema_type_name(b) : "?");
        return RS_AVRO_EINVALID;
    }

    avro_reader_memory_set_source(c->reader, (const char *)msg + RS_AVRO_HEADER_SIZE,
                                  (int64_t)(len - RS_AVRO_HEADER_SIZE));
    if (avro_value_read(c->reader, e->resolver ? &e->resolved : &e->rvalue) != 0) {
        snprintf(errstr, errlen,
                 "avro message: schema id %d: cannot be read as a revstream event: %s", (int)id,
                 avro_why());
        avro_value_reset(&e->rvalue);
        return RS_AVRO_ESCHEMA;
    }

    avro_value_t rv = e->rvalue;
    rs_event_type_t type = e->branch_type[0];
    if (e->r_is_union) {
        int disc = -1;
        if (avro_value_get_discriminant(&e->rvalue, &disc) != 0 || disc < 0 ||
            disc >= e->n_branches || avro_value_get_current_branch(&e->rvalue, &rv) != 0) {
            snprintf(errstr, errlen, "avro message: schema id %d: no union branch", (int)id);
            return RS_AVRO_ECORRUPT;
        }
        type = e->branch_type[disc];
    }
    /* The record says its event type; rs_codec_decode_event checks `type`. */
    rs_codec_node_t root = {{NULL, NULL}, (int)type - 1};
    node_set(&root, &rv);
    const rs_codec_source_t src = {avro_src_string, avro_src_array, avro_src_item,
                                   avro_src_record, &e->rlay};
    rs_codec_dec_t d = {"?", errstr, errlen, 0, &src};
    if (rs_codec_decode_event(&d, &root, ev) != 0)
        return d.nomem ? RS_AVRO_ENOMEM : RS_AVRO_EINVALID;
    return RS_AVRO_OK;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                 */
/* ------------------------------------------------------------------------ */

/* Find (kind -> record schema) in `s`, the records the layout saw. */
static void record_schemas(avro_schema_t s, avro_schema_t out[RS_RK__COUNT], int depth)
{
    if (s == NULL || depth > RS_AVRO_MAX_DEPTH)
        return;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        int k = rs_codec_record_kind(avro_schema_name(s));
        if (k >= 0) {
            if (out[k] != NULL)
                return;
            out[k] = s;
        }
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++)
            record_schemas(avro_schema_record_field_get_by_index(s, (int)i), out, depth + 1);
        break;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n; i++)
            record_schemas(avro_schema_union_branch(s, (int)i), out, depth + 1);
        break;
    }
    case AVRO_ARRAY:
        record_schemas(avro_schema_array_items(s), out, depth + 1);
        break;
    case AVRO_MAP:
        record_schemas(avro_schema_map_values(s), out, depth + 1);
        break;
    default:
        break;
    }
}

/* Does union schema `s` have a null branch? */
static int has_null_branch(avro_schema_t s)
{
    if (avro_typeof(s) != AVRO_UNION)
        return 0;
    size_t n = avro_schema_union_size(s);
    for (size_t i = 0; i < n; i++)
        if (is_avro_null(avro_schema_union_branch(s, (int)i)))
            return 1;
    return 0;
}

static int known_slot(int rk, const char *name)
{
    for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[rk][j] != NULL; j++)
        if (strcmp(rs_codec_field_name[rk][j], name) == 0)
            return 1;
    return 0;
}

/* Build the encoding side of `e` (once). */
static int prepare_encode(entry_t *e, char *errstr, size_t errlen)
{
    char msg[512];
    avro_schema_t recs[RS_RK__COUNT] = {0};

    if (e->enc_state == 1)
        return RS_AVRO_OK;
    if (e->enc_state == -1) {
        snprintf(errstr, errlen, "%s", e->enc_error ? e->enc_error : "schema unusable");
        return RS_AVRO_ESCHEMA;
    }
    layout_build(&e->wlay, e->wschema);
    record_schemas(e->wschema, recs, 0);
    for (int k = 0; k < RS_RK__COUNT; k++) {
        if (recs[k] == NULL)
            continue;
        size_t n = avro_schema_record_size(recs[k]);
        for (size_t i = 0; i < n; i++) {
            const char *fname = avro_schema_record_field_name(recs[k], (int)i);
            if (known_slot(k, fname))
                continue;
            if (i >= 64 ||
                !has_null_branch(avro_schema_record_field_get_by_index(recs[k], (int)i))) {
                snprintf(msg, sizeof(msg),
                         "schema id %d: field %s.%s is not one revstream writes and cannot be "
                         "null",
                         (int)e->id, rs_codec_record_name[k], fname);
                goto fail;
            }
            e->nullmask[k] |= (uint64_t)1 << i;
        }
    }
    e->wclass = avro_generic_class_from_schema(e->wschema);
    if (e->wclass == NULL || avro_generic_value_new(e->wclass, &e->wvalue) != 0) {
        e->wvalue.self = NULL;
        snprintf(msg, sizeof(msg), "schema id %d: cannot build a writer: %s", (int)e->id,
                 avro_why());
        goto fail;
    }
    e->enc_state = 1;
    return RS_AVRO_OK;
fail:
    snprintf(errstr, errlen, "%s", msg);
    return remember_error(&e->enc_error, &e->enc_state, msg);
}

typedef struct enc {
    entry_t *e;
    char *errstr;
    size_t errlen;
    int status;
} enc_t;

/* A writer record value of a known kind. */
typedef struct wrec {
    avro_value_t v;
    int rk;
} wrec_t;

static int efail(enc_t *x, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int efail(enc_t *x, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->errstr, x->errlen, fmt, ap);
    va_end(ap);
    x->status = status;
    return -1;
}

static const char *type_word(avro_type_t t)
{
    switch (t) {
    case AVRO_STRING:
        return "string";
    case AVRO_BYTES:
        return "bytes";
    case AVRO_INT32:
        return "int";
    case AVRO_INT64:
        return "long";
    case AVRO_NULL:
        return "null";
    case AVRO_ARRAY:
        return "array";
    case AVRO_RECORD:
        return "record";
    default:
        return "value";
    }
}

/* Make `f` hold a value of type t (for records: named rname), choosing the
 * union branch when f is a union. */
static int wselect(enc_t *x, const wrec_t *r, int slot, avro_value_t *f, avro_type_t t,
                   const char *rname, avro_value_t *out)
{
    avro_type_t ft = avro_value_get_type(f);
    if (ft == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(f);
        size_t n = avro_schema_union_size(us);
        for (size_t i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(us, (int)i);
            while (b != NULL && avro_typeof(b) == AVRO_LINK)
                b = avro_schema_link_target(b);
            if (b == NULL || avro_typeof(b) != t ||
                (rname != NULL && strcmp(avro_schema_name(b), rname) != 0))
                continue;
            if (avro_value_set_branch(f, (int)i, out) != 0)
                return efail(x, RS_AVRO_ESCHEMA, "schema id %d: %s.%s: %s", (int)x->e->id,
                             rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot],
                             avro_why());
            return 0;
        }
    } else if (ft == t) {
        *out = *f;
        return 0;
    }
    return efail(x, RS_AVRO_ESCHEMA, "schema id %d: field %s.%s cannot hold a %s",
                 (int)x->e->id, rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot],
                 type_word(t));
}

/* The writer's field for `slot`: 1 found, 0 the writer lacks it. */
static int wfield(enc_t *x, const wrec_t *r, int slot, avro_value_t *out)
{
    int idx = x->e->wlay.idx[r->rk][slot];
    return idx >= 0 && avro_value_get_by_index(&r->v, (size_t)idx, out, NULL) == 0;
}

/* A field for a value we have: the writer must have it. */
static int wneed(enc_t *x, const wrec_t *r, int slot, avro_type_t t, const char *rname,
                 avro_value_t *out)
{
    avro_value_t f;
    if (!wfield(x, r, slot, &f))
        return efail(x, RS_AVRO_ESCHEMA, "schema id %d: record %s has no field %s",
                     (int)x->e->id, rs_codec_record_name[r->rk],
                     rs_codec_field_name[r->rk][slot]);
    return wselect(x, r, slot, &f, t, rname, out);
}

/* An absent value: null if the writer has the field. */
static int put_null(enc_t *x, const wrec_t *r, int slot)
{
    avro_value_t f, b;
    if (!wfield(x, r, slot, &f))
        return 0;
    if (wselect(x, r, slot, &f, AVRO_NULL, NULL, &b) < 0)
        return -1;
    return avro_value_set_null(&b) == 0 ? 0 : efail(x, RS_AVRO_ENOMEM, "out of memory");
}

/* Start a record: every writer field we do not know becomes null. */
static int rec_begin(enc_t *x, const wrec_t *r)
{
    uint64_t mask = x->e->nullmask[r->rk];
    for (int i = 0; mask != 0 && i < 64; i++) {
        if ((mask & ((uint64_t)1 << i)) == 0)
            continue;
        mask &= ~((uint64_t)1 << i);
        avro_value_t f, b;
        if (avro_value_get_by_index(&r->v, (size_t)i, &f, NULL) != 0)
            continue;
        if (avro_value_get_type(&f) == AVRO_UNION) {
            avro_schema_t us = avro_value_get_schema(&f);
            size_t n = avro_schema_union_size(us);
            for (size_t k = 0; k < n; k++)
                if (is_avro_null(avro_schema_union_branch(us, (int)k))) {
                    if (avro_value_set_branch(&f, (int)k, &b) != 0 ||
                        avro_value_set_null(&b) != 0)
                        return efail(x, RS_AVRO_ENOMEM, "out of memory");
                    break;
                }
        }
    }
    return 0;
}

static int put_str(enc_t *x, const wrec_t *r, int slot, const char *s)
{
    avro_value_t v;
    if (s == NULL)
        return put_null(x, r, slot);
    if (wneed(x, r, slot, AVRO_STRING, NULL, &v) < 0)
        return -1;
    return avro_value_set_string(&v, s) == 0 ? 0 : efail(x, RS_AVRO_ENOMEM, "out of memory");
}

/* A fixed-size char field, NUL-terminated within its size. */
static int put_field(enc_t *x, const wrec_t *r, int slot, const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        return efail(x, RS_AVRO_EINVALID, "%s.%s: not NUL-terminated",
                     rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot]);
    return put_str(x, r, slot, s);
}

#define PUT_FIELD(x, r, slot, field) put_field((x), (r), (slot), (field), sizeof(field))

/* An optional id: "" is null. */
static int put_opt_field(enc_t *x, const wrec_t *r, int slot, const char *s, size_t cap)
{
    if (s[0] == '\0')
        return put_null(x, r, slot);
    return put_field(x, r, slot, s, cap);
}

static int put_long(enc_t *x, const wrec_t *r, int slot, int64_t n)
{
    avro_value_t v;
    if (wneed(x, r, slot, AVRO_INT64, NULL, &v) < 0)
        return -1;
    return avro_value_set_long(&v, n) == 0 ? 0 : efail(x, RS_AVRO_ENOMEM, "out of memory");
}

static int put_int(enc_t *x, const wrec_t *r, int slot, int32_t n)
{
    avro_value_t v;
    if (wneed(x, r, slot, AVRO_INT32, NULL, &v) < 0)
        return -1;
    return avro_value_set_int(&v, n) == 0 ? 0 : efail(x, RS_AVRO_ENOMEM, "out of memory");
}

static int put_bytes(enc_t *x, const wrec_t *r, int slot, const void *p, size_t n)
{
    avro_value_t v;
    if (p == NULL)
        return put_null(x, r, slot);
    if (wneed(x, r, slot, AVRO_BYTES, NULL, &v) < 0)
        return -1;
    return avro_value_set_bytes(&v, (void *)p, n) == 0
               ? 0
               : efail(x, RS_AVRO_ENOMEM, "out of memory");
}

static int put_date(enc_t *x, const wrec_t *r, int slot, rs_date_t day)
{
    char buf[32];
    if (day == RS_DATE_NONE)
        return put_null(x, r, slot);
    return put_str(x, r, slot, rs_date_format(day, buf, sizeof(buf)));
}

static int put_period(enc_t *x, const wrec_t *r, int slot, rs_period_t p)
{
    char buf[32];
    if (p == RS_PERIOD_NONE)
        return put_null(x, r, slot);
    return put_str(x, r, slot, rs_period_format(p, buf, sizeof(buf)));
}

static int put_dec(enc_t *x, const wrec_t *r, int slot, rs_decimal_t d)
{
    char buf[48];
    if (rs_decimal_format(d, buf, sizeof(buf)) == NULL)
        return efail(x, RS_AVRO_EINVALID, "%s.%s: decimal scale %d out of range",
                     rs_codec_record_name[r->rk], rs_codec_field_name[r->rk][slot], d.scale);
    return put_str(x, r, slot, buf);
}

static int put_name(enc_t *x, const wrec_t *r, int slot, const char *name)
{
    if (name == NULL)
        return efail(x, RS_AVRO_EINVALID, "%s.%s: no such value", rs_codec_record_name[r->rk],
                     rs_codec_field_name[r->rk][slot]);
    return put_str(x, r, slot, name);
}

/* Append a record of kind rk to the array in field `slot`. */
static int put_array(enc_t *x, const wrec_t *r, int slot, avro_value_t *arr)
{
    return wneed(x, r, slot, AVRO_ARRAY, NULL, arr);
}

static int append_rec(enc_t *x, avro_value_t *arr, int rk, wrec_t *out)
{
    out->rk = rk;
    if (avro_value_append(arr, &out->v, NULL) != 0)
        return efail(x, RS_AVRO_ENOMEM, "out of memory");
    if (avro_value_get_type(&out->v) != AVRO_RECORD ||
        strcmp(avro_schema_name(avro_value_get_schema(&out->v)), rs_codec_record_name[rk]) != 0)
        return efail(x, RS_AVRO_ESCHEMA, "schema id %d: array items are not %s records",
                     (int)x->e->id, rs_codec_record_name[rk]);
    return rec_begin(x, out);
}

/* The top-level record of kind rk in the writer value. */
static int top_record(enc_t *x, int rk, wrec_t *out)
{
    avro_value_t *top = &x->e->wvalue;
    out->rk = rk;
    if (avro_value_get_type(top) == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(top);
        size_t n = avro_schema_union_size(us);
        for (size_t i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(us, (int)i);
            if (is_avro_record(b) &&
                strcmp(avro_schema_name(b), rs_codec_record_name[rk]) == 0) {
                if (avro_value_set_branch(top, (int)i, &out->v) != 0)
                    return efail(x, RS_AVRO_ENOMEM, "out of memory");
                return rec_begin(x, out);
            }
        }
    } else if (avro_value_get_type(top) == AVRO_RECORD &&
               strcmp(avro_schema_name(avro_value_get_schema(top)), rs_codec_record_name[rk]) ==
                   0) {
        out->v = *top;
        return rec_begin(x, out);
    }
    return efail(x, RS_AVRO_ESCHEMA, "schema id %d has no record io.revstream.%s",
                 (int)x->e->id, rs_codec_record_name[rk]);
}

/* Serialise the writer value with the Confluent header. */
static int finish(rs_avro_cache_t *c, enc_t *x, void **buf, size_t *len)
{
    size_t size = 0;
    if (avro_value_sizeof(&x->e->wvalue, &size) != 0)
        return efail(x, RS_AVRO_ESCHEMA, "schema id %d: cannot encode: %s", (int)x->e->id,
                     avro_why());
    if (size > RS_AVRO_MAX_MESSAGE - RS_AVRO_HEADER_SIZE)
        return efail(x, RS_AVRO_EINVALID, "record of %zu bytes is over the %d-byte limit", size,
                     RS_AVRO_MAX_MESSAGE);
    uint8_t *out = malloc(RS_AVRO_HEADER_SIZE + size + 1);
    if (out == NULL)
        return efail(x, RS_AVRO_ENOMEM, "out of memory");
    uint32_t id = (uint32_t)x->e->id;
    out[0] = RS_AVRO_MAGIC;
    out[1] = (uint8_t)(id >> 24);
    out[2] = (uint8_t)(id >> 16);
    out[3] = (uint8_t)(id >> 8);
    out[4] = (uint8_t)id;
    avro_writer_memory_set_dest(c->writer, (const char *)out + RS_AVRO_HEADER_SIZE,
                                (int64_t)size + 1);
    if (avro_value_write(c->writer, &x->e->wvalue) != 0 ||
        (size_t)avro_writer_tell(c->writer) != size) {
        free(out);
        return efail(x, RS_AVRO_ESCHEMA, "schema id %d: cannot encode: %s", (int)x->e->id,
                     avro_why());
    }
    *buf = out;
    *len = RS_AVRO_HEADER_SIZE + size;
    return 0;
}

/* Look up and prepare the writer for `id`, and reset its value. */
static int begin_encode(rs_avro_cache_t *c, int32_t id, enc_t *x, char *errstr, size_t errlen)
{
    int rc;
    x->errstr = errstr;
    x->errlen = errlen;
    x->status = RS_AVRO_OK;
    if (errstr != NULL && errlen > 0)
        errstr[0] = '\0';
    if ((rc = get_entry(c, id, &x->e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if ((rc = prepare_encode(x->e, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (avro_value_reset(&x->e->wvalue) != 0) {
        snprintf(errstr, errlen, "schema id %d: %s", (int)id, avro_why());
        return RS_AVRO_ESCHEMA;
    }
    return RS_AVRO_OK;
}

static int put_contract_lines(enc_t *x, const wrec_t *r, int slot, const rs_event_t *ev)
{
    avro_value_t arr;
    if (put_array(x, r, slot, &arr) < 0)
        return -1;
    for (int i = 0; i < ev->n_lines; i++) {
        const rs_line_spec_t *l = &ev->lines[i];
        wrec_t o;
        if (append_rec(x, &arr, RS_RK_CONTRACT_LINE, &o) < 0 ||
            PUT_FIELD(x, &o, RS_F_CL_LINE_ID, l->line_id) < 0 ||
            PUT_FIELD(x, &o, RS_F_CL_PRODUCT, l->product) < 0 ||
            put_name(x, &o, RS_F_CL_RECOGNITION, rs_method_name(l->recognition)) < 0 ||
            put_date(x, &o, RS_F_CL_START, l->start) < 0 ||
            put_date(x, &o, RS_F_CL_END, l->end) < 0 ||
            put_dec(x, &o, RS_F_CL_AMOUNT, l->amount) < 0)
            return -1;
        if ((l->has_ssp ? put_dec(x, &o, RS_F_CL_SSP, l->ssp) : put_null(x, &o, RS_F_CL_SSP)) <
                0 ||
            (l->has_unit_price ? put_dec(x, &o, RS_F_CL_UNIT_PRICE, l->unit_price)
                               : put_null(x, &o, RS_F_CL_UNIT_PRICE)) < 0)
            return -1;
        if (l->n_milestones == 0) {
            if (put_null(x, &o, RS_F_CL_MILESTONES) < 0)
                return -1;
            continue;
        }
        avro_value_t ms;
        if (put_array(x, &o, RS_F_CL_MILESTONES, &ms) < 0)
            return -1;
        for (int j = 0; j < l->n_milestones; j++) {
            wrec_t m;
            if (append_rec(x, &ms, RS_RK_MILESTONE, &m) < 0 ||
                PUT_FIELD(x, &m, RS_F_MS_MILESTONE_ID, l->milestones[j].milestone_id) < 0 ||
                put_dec(x, &m, RS_F_MS_AMOUNT, l->milestones[j].amount) < 0)
                return -1;
        }
    }
    return 0;
}

static int put_bill_lines(enc_t *x, const wrec_t *r, int slot, const rs_event_t *ev, int credit)
{
    avro_value_t arr;
    if (put_array(x, r, slot, &arr) < 0)
        return -1;
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        wrec_t o;
        if (append_rec(x, &arr, credit ? RS_RK_CREDIT_NOTE_LINE : RS_RK_INVOICE_LINE, &o) < 0 ||
            PUT_FIELD(x, &o, RS_F_IL_LINE_ID, b->line_id) < 0 ||
            put_dec(x, &o, RS_F_IL_AMOUNT, b->amount) < 0 ||
            (b->has_tax ? put_dec(x, &o, RS_F_IL_TAX, b->tax) : put_null(x, &o, RS_F_IL_TAX)) <
                0)
            return -1;
        if (!credit && (put_date(x, &o, RS_F_IL_SERVICE_START, b->service_start) < 0 ||
                        put_date(x, &o, RS_F_IL_SERVICE_END, b->service_end) < 0))
            return -1;
    }
    return 0;
}

static int encode_body(enc_t *x, const wrec_t *r, const rs_event_t *ev)
{
    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        if (PUT_FIELD(x, r, RS_F_CB_CUSTOMER_ID, ev->customer_id) < 0 ||
            PUT_FIELD(x, r, RS_F_CB_CURRENCY, ev->currency) < 0 ||
            put_date(x, r, RS_F_CB_BOOKED_ON, ev->booked_on) < 0)
            return -1;
        if (ev->source_system[0] != '\0' || ev->source_record_id[0] != '\0') {
            avro_value_t sv;
            wrec_t src = {{0}, RS_RK_SOURCE};
            if (wneed(x, r, RS_F_CB_SOURCE, AVRO_RECORD, rs_codec_record_name[RS_RK_SOURCE],
                      &sv) < 0)
                return -1;
            src.v = sv;
            if (rec_begin(x, &src) < 0 ||
                PUT_FIELD(x, &src, RS_F_SR_SYSTEM, ev->source_system) < 0 ||
                PUT_FIELD(x, &src, RS_F_SR_RECORD_ID, ev->source_record_id) < 0)
                return -1;
        } else if (put_null(x, r, RS_F_CB_SOURCE) < 0) {
            return -1;
        }
        return put_contract_lines(x, r, RS_F_CB_LINES, ev);
    case RS_EV_CONTRACT_AMENDED:
        if (put_date(x, r, RS_F_CA_EFFECTIVE_ON, ev->effective_on) < 0 ||
            put_name(x, r, RS_F_CA_TREATMENT,
                     ev->treatment == RS_TREATMENT_CATCH_UP      ? "catch_up"
                     : ev->treatment == RS_TREATMENT_PROSPECTIVE ? "prospective"
                                                                 : NULL) < 0)
            return -1;
        return put_contract_lines(x, r, RS_F_CA_LINES, ev);
    case RS_EV_CONTRACT_CANCELLED:
        return put_date(x, r, RS_F_CC_EFFECTIVE_ON, ev->effective_on);
    case RS_EV_MILESTONE_COMPLETED:
        if (PUT_FIELD(x, r, RS_F_MC_LINE_ID, ev->line_id) < 0 ||
            PUT_FIELD(x, r, RS_F_MC_MILESTONE_ID, ev->milestone_id) < 0)
            return -1;
        return put_date(x, r, RS_F_MC_COMPLETED_ON, ev->completed_on);
    case RS_EV_PERIOD_CLOSED:
        return put_period(x, r, RS_F_PC_PERIOD, ev->period);
    case RS_EV_INVOICE_ISSUED:
        if (PUT_FIELD(x, r, RS_F_II_INVOICE_ID, ev->invoice_id) < 0 ||
            put_date(x, r, RS_F_II_ISSUED_ON, ev->on) < 0 ||
            put_date(x, r, RS_F_II_DUE_ON, ev->due_on) < 0)
            return -1;
        return put_bill_lines(x, r, RS_F_II_LINES, ev, 0);
    case RS_EV_INVOICE_VOIDED:
        if (PUT_FIELD(x, r, RS_F_IV_INVOICE_ID, ev->invoice_id) < 0)
            return -1;
        return put_date(x, r, RS_F_IV_VOIDED_ON, ev->on);
    case RS_EV_CREDIT_NOTE_ISSUED:
        if (PUT_FIELD(x, r, RS_F_CN_CREDIT_NOTE_ID, ev->credit_note_id) < 0 ||
            PUT_FIELD(x, r, RS_F_CN_INVOICE_ID, ev->invoice_id) < 0 ||
            put_date(x, r, RS_F_CN_ISSUED_ON, ev->on) < 0 ||
            put_name(x, r, RS_F_CN_REASON, rs_credit_reason_name(ev->reason)) < 0)
            return -1;
        return put_bill_lines(x, r, RS_F_CN_LINES, ev, 1);
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        if (PUT_FIELD(x, r, RS_F_IU_INVOICE_ID, ev->invoice_id) < 0)
            return -1;
        return put_date(x, r, RS_F_IU_DECLARED_ON, ev->on);
    case RS_EV_PAYMENT_RECEIVED:
        if (PUT_FIELD(x, r, RS_F_PR_PAYMENT_ID, ev->payment_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PR_INVOICE_ID, ev->invoice_id) < 0 ||
            put_dec(x, r, RS_F_PR_AMOUNT, ev->amount) < 0)
            return -1;
        return put_date(x, r, RS_F_PR_RECEIVED_ON, ev->on);
    case RS_EV_PAYMENT_REFUNDED:
        if (PUT_FIELD(x, r, RS_F_PD_REFUND_ID, ev->refund_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PD_PAYMENT_ID, ev->payment_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PD_INVOICE_ID, ev->invoice_id) < 0 ||
            put_dec(x, r, RS_F_PD_AMOUNT, ev->amount) < 0)
            return -1;
        return put_date(x, r, RS_F_PD_REFUNDED_ON, ev->on);
    case RS_EV_PAYMENT_FAILED:
        if (PUT_FIELD(x, r, RS_F_PF_PAYMENT_ID, ev->payment_id) < 0 ||
            PUT_FIELD(x, r, RS_F_PF_INVOICE_ID, ev->invoice_id) < 0 ||
            put_date(x, r, RS_F_PF_FAILED_ON, ev->on) < 0)
            return -1;
        return PUT_FIELD(x, r, RS_F_PF_REASON, ev->failure_reason);
    case RS_EV_USAGE_RECORDED:
        if (PUT_FIELD(x, r, RS_F_UR_LINE_ID, ev->line_id) < 0)
            return -1;
        return put_dec(x, r, RS_F_UR_QUANTITY, ev->quantity);
    default:
        return efail(x, RS_AVRO_EINVALID, "unknown event type %d", (int)ev->type);
    }
}

int rs_avro_encode_event(rs_avro_cache_t *c, int32_t schema_id, const rs_event_t *ev,
                         void **buf, size_t *len, char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    int rc;

    *buf = NULL;
    *len = 0;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    const char *tname = rs_event_type_name(ev->type);
    if (tname == NULL) {
        snprintf(errstr, errlen, "event %s: type: unknown event type %d", ev->event_id,
                 (int)ev->type);
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, (int)ev->type - 1, &r) < 0 ||
        PUT_FIELD(&x, &r, RS_F_EVENT_ID, ev->event_id) < 0 ||
        put_str(&x, &r, RS_F_TYPE, tname) < 0 ||
        (ev->type == RS_EV_PERIOD_CLOSED
             ? put_null(&x, &r, RS_F_CONTRACT_ID)
             : PUT_FIELD(&x, &r, RS_F_CONTRACT_ID, ev->contract_id)) < 0 ||
        PUT_FIELD(&x, &r, RS_F_OCCURRED_AT, ev->occurred_at) < 0 ||
        encode_body(&x, &r, ev) < 0 || finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

int rs_avro_encode_entry(rs_avro_cache_t *c, int32_t schema_id, const rs_entry_t *e, void **buf,
                         size_t *len, char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    avro_value_t lines, srcs;
    int rc;

    *buf = NULL;
    *len = 0;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (e->n_postings < 0 || e->n_postings > RS_ENTRY_MAX_POSTINGS || e->n_sources < 0 ||
        e->n_sources > RS_ENTRY_MAX_SOURCES) {
        snprintf(errstr, errlen, "entry %.*s: bad posting or source count", RS_ID_MAX,
                 e->entry_id);
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, RS_RK_JOURNAL_ENTRY, &r) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_ENTRY_ID, e->entry_id) < 0 ||
        put_long(&x, &r, RS_F_JE_SEQ, (int64_t)e->seq) < 0 ||
        put_date(&x, &r, RS_F_JE_POSTED_ON, e->posted_on) < 0 ||
        put_period(&x, &r, RS_F_JE_PERIOD, e->period) < 0 ||
        put_period(&x, &r, RS_F_JE_SERVICE_PERIOD, e->service_period) < 0 ||
        put_str(&x, &r, RS_F_JE_KIND, rs_entry_kind_name(e->kind)) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_RULE, e->rule) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_CONTRACT_ID, e->contract_id) < 0 ||
        PUT_FIELD(&x, &r, RS_F_JE_CUSTOMER_ID, e->customer_id) < 0 ||
        put_opt_field(&x, &r, RS_F_JE_LINE_ID, e->line_id, sizeof(e->line_id)) < 0 ||
        put_opt_field(&x, &r, RS_F_JE_DOCUMENT_ID, e->document_id, sizeof(e->document_id)) <
            0 ||
        PUT_FIELD(&x, &r, RS_F_JE_CURRENCY, e->currency) < 0 ||
        put_int(&x, &r, RS_F_JE_EXPONENT, e->exponent) < 0 ||
        put_array(&x, &r, RS_F_JE_LINES, &lines) < 0)
        return x.status;
    for (int i = 0; i < e->n_postings; i++) {
        wrec_t p;
        if (append_rec(&x, &lines, RS_RK_JOURNAL_LINE, &p) < 0 ||
            put_str(&x, &p, RS_F_JL_ACCOUNT, rs_account_name(e->postings[i].account)) < 0 ||
            put_long(&x, &p, RS_F_JL_DEBIT, e->postings[i].debit) < 0 ||
            put_long(&x, &p, RS_F_JL_CREDIT, e->postings[i].credit) < 0)
            return x.status;
    }
    if (put_array(&x, &r, RS_F_JE_SOURCE_EVENT_IDS, &srcs) < 0)
        return x.status;
    for (int i = 0; i < e->n_sources; i++) {
        avro_value_t s;
        if (memchr(e->sources[i], '\0', RS_ID_MAX) == NULL) {
            snprintf(errstr, errlen, "entry %.*s: source %d not NUL-terminated", RS_ID_MAX,
                     e->entry_id, i);
            return RS_AVRO_EINVALID;
        }
        if (avro_value_append(&srcs, &s, NULL) != 0 || avro_value_get_type(&s) != AVRO_STRING ||
            avro_value_set_string(&s, e->sources[i]) != 0) {
            snprintf(errstr, errlen,
                     "schema id %d: source_event_ids must be an array of strings",
                     (int)schema_id);
            return RS_AVRO_ESCHEMA;
        }
    }
    if (put_long(&x, &r, RS_F_JE_SOURCE_COUNT, (int64_t)e->source_count) < 0 ||
        put_long(&x, &r, RS_F_JE_BILLED, e->billed) < 0 ||
        put_long(&x, &r, RS_F_JE_RECOGNIZED, e->recognized) < 0 ||
        put_long(&x, &r, RS_F_JE_RECEIVED, e->received) < 0 || finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

static const char *const SCOPE_NAME[] = {"contract", "line", "invoice"};

int rs_avro_encode_balance(rs_avro_cache_t *c, int32_t schema_id, const rs_avro_balance_t *b,
                           void **buf, size_t *len, char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    int rc;

    *buf = NULL;
    *len = 0;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if ((int)b->scope < 0 || b->scope > RS_AVRO_SCOPE_INVOICE || b->snapshot_key == NULL ||
        b->contract_id == NULL || b->customer_id == NULL || b->currency == NULL) {
        snprintf(errstr, errlen,
                 "balance %s: missing key, contract, customer or currency, or bad scope",
                 b->snapshot_key ? b->snapshot_key : "?");
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, RS_RK_DEFERRED_BALANCE, &r) < 0 ||
        put_str(&x, &r, RS_F_DB_SNAPSHOT_KEY, b->snapshot_key) < 0 ||
        put_str(&x, &r, RS_F_DB_CONTRACT_ID, b->contract_id) < 0 ||
        put_str(&x, &r, RS_F_DB_CUSTOMER_ID, b->customer_id) < 0 ||
        put_str(&x, &r, RS_F_DB_SCOPE, SCOPE_NAME[b->scope]) < 0 ||
        put_str(&x, &r, RS_F_DB_LINE_ID, b->line_id && b->line_id[0] ? b->line_id : NULL) < 0 ||
        put_str(&x, &r, RS_F_DB_INVOICE_ID,
                b->invoice_id && b->invoice_id[0] ? b->invoice_id : NULL) < 0 ||
        put_str(&x, &r, RS_F_DB_CURRENCY, b->currency) < 0 ||
        put_int(&x, &r, RS_F_DB_EXPONENT, b->exponent) < 0 ||
        put_long(&x, &r, RS_F_DB_BILLED, b->billed) < 0 ||
        put_long(&x, &r, RS_F_DB_RECOGNIZED, b->recognized) < 0 ||
        put_long(&x, &r, RS_F_DB_DEFERRED, b->deferred) < 0 ||
        put_long(&x, &r, RS_F_DB_UNBILLED, b->unbilled) < 0 ||
        put_long(&x, &r, RS_F_DB_RECEIVED, b->received) < 0 ||
        put_period(&x, &r, RS_F_DB_AS_OF_PERIOD, b->as_of_period) < 0 ||
        finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

int rs_avro_encode_deadletter(rs_avro_cache_t *c, int32_t schema_id,
                              const rs_avro_deadletter_t *d, void **buf, size_t *len,
                              char *errstr, size_t errlen)
{
    enc_t x;
    wrec_t r;
    int rc;

    *buf = NULL;
    *len = 0;
    if ((rc = begin_encode(c, schema_id, &x, errstr, errlen)) != RS_AVRO_OK)
        return rc;
    if (d->topic == NULL || d->error == NULL) {
        snprintf(errstr, errlen, "dead letter: missing topic or error");
        return RS_AVRO_EINVALID;
    }
    if (top_record(&x, RS_RK_DEAD_LETTER, &r) < 0 ||
        put_str(&x, &r, RS_F_DL_TOPIC, d->topic) < 0 ||
        put_int(&x, &r, RS_F_DL_PARTITION, d->partition) < 0 ||
        put_long(&x, &r, RS_F_DL_OFFSET, d->offset) < 0 ||
        put_str(&x, &r, RS_F_DL_ERROR, d->error) < 0 ||
        put_bytes(&x, &r, RS_F_DL_KEY, d->key, d->key_len) < 0 ||
        put_bytes(&x, &r, RS_F_DL_VALUE, d->value, d->value_len) < 0 ||
        put_long(&x, &r, RS_F_DL_TIMESTAMP, d->timestamp_ms) < 0 || finish(c, &x, buf, len) < 0)
        return x.status;
    return RS_AVRO_OK;
}

/* ------------------------------------------------------------------------ */
/* A bounds checker for other readers of our records (journal entries)      */
/* ------------------------------------------------------------------------ */

struct rs_avro_checker {
    avro_schema_t schema;
    scan_prog_t prog;
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
    if (prog_compile(&c->prog, c->schema, &why) < 0) {
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
    prog_free(&c->prog);
    if (c->schema)
        avro_schema_decref(c->schema);
    free(c);
}

int rs_avro_checker_check(const rs_avro_checker_t *c, const void *msg, size_t len, char *why,
                          size_t whylen)
{
    int64_t branch;
    if (len < RS_AVRO_HEADER_SIZE || len > RS_AVRO_MAX_MESSAGE) {
        snprintf(why, whylen, "a message of %zu bytes", len);
        return -1;
    }
    return scan_body(&c->prog, msg, len, &branch, why, whylen);
}
