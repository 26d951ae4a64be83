/*
 * rs_avro_read.c — the direct reader: an input event decoded straight from
 * its bytes by a read plan of the writer schema, compiled once per writer
 * id, instead of through Avro C's generic value (rs_avro_decode.c scans the
 * body, has Avro C read it into a resolved value, then walks that value
 * field by field). The event contract is still applied by
 * rs_codec_decode_event through a field source (below), so the rules and
 * the fields they fill are the same code for both paths.
 *
 * Invariants:
 *   - The plan resolves the writer against the projected reader the generic
 *     path uses (entry->rschema): records match by name and namespace, a
 *     writer field the reader lacks is skipped, a writer field the reader
 *     has fills its slot, and a writer value (or union branch) the reader's
 *     field cannot take (a null for a required field, a type other than
 *     string, a record or an array of records of the reader's name) is a
 *     FAIL op. A reader field the writer lacks, or a shape the plan cannot
 *     hold, makes the entry's plan "not direct" (every message generic).
 *   - Every read is bounds-checked against the message: a varint of at most
 *     10 bytes, a length within the bytes left, a union branch within its
 *     union; skipped values go through the scanner's own checks
 *     (rs_avro_scan_skip). The scanner's limits hold as they do before Avro
 *     C reads a body: nesting up to RS_AVRO_MAX_DEPTH, at most
 *     RS_AVRO_MAX_ITEMS array and map items per message, no bytes left
 *     over. A block with a byte size (a negative count) must hold exactly
 *     its items. Nothing past len is ever read.
 *   - It accepts only what the generic path accepts, with the same event:
 *     on anything it does not accept (a FAIL op, a malformed or truncated
 *     body, a limit, a string with a NUL byte or not UTF-8, a broken rule
 *     of the event contract, out of memory) it returns 1 with the event
 *     cleared and the caller runs the generic path, which produces the
 *     error and its text. Errors are rare; this keeps their text exact.
 *     test_codec_read compares the two paths event for event, on every
 *     truncation and on random byte flips.
 *
 * Ownership: an entry owns its read plan (rplan); the cache owns the
 * scratch (rstate: the decoded records, array segments and string copies,
 * reused for every message and bounded by the message limits). The field
 * source's nodes point into the scratch and live until the next decode.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_avro_internal.h"
#include "rs_codec_fields.h"

/* ------------------------------------------------------------------------ */
/* The read plan                                                            */
/* ------------------------------------------------------------------------ */

/* What reading one writer value does. */
enum {
    RO_FAIL = 0, /* the reader cannot take it: generic */
    RO_NULL,
    RO_STRING,
    RO_RECORD, /* a: the record plan */
    RO_ARRAY,  /* a: the op of its items (a record, or a union of them) */
    RO_UNION,  /* a: the op of branch 0, then n - 1 more */
    RO_SKIP,   /* a field the reader lacks: a = the scanner's node */
};

typedef struct rop {
    uint8_t op;
    int32_t a, n;
} rop_t;

/* One writer field: its slot in the record's kind (-1: skipped) and op. */
typedef struct rfield {
    int32_t slot, op;
} rfield_t;

/* A writer record read into a reader record of kind rk. */
typedef struct rrec {
    avro_schema_t w; /* memo key (borrowed from the entry's writer schema) */
    int rk;
    int32_t first, nf; /* its fields in plan->fields */
} rrec_t;

struct rs_avro_rplan {
    int state; /* 1 ready, -1 not direct */
    rop_t *ops;
    int32_t n_ops, cap_ops;
    rrec_t *recs;
    int32_t n_recs, cap_recs;
    rfield_t *fields;
    int32_t n_fields, cap_fields;
    int32_t *top; /* writer top-level branch -> record plan, -1 none */
    int32_t n_top;
    int top_union; /* the writer is a union */
};

/* What a reader field takes. */
typedef struct expect {
    int null_ok, string_ok;
    avro_schema_t rec;     /* a record of this name */
    avro_schema_t arr_rec; /* an array of records of this name */
} expect_t;

void rs_avro_read_plan_free(struct rs_avro_rplan *p)
{
    if (p == NULL)
        return;
    free(p->ops);
    free(p->recs);
    free(p->fields);
    free(p->top);
    free(p);
}

static avro_schema_t unlink_schema(avro_schema_t s)
{
    while (s != NULL && avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    return s;
}

/* Room for `need` items in *arr of *cap. 0, or -1 (out of memory or over
 * the plan's limit). */
static int grow(void **arr, int32_t *cap, int32_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    if (need > 1 << 20)
        return -1;
    int32_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *n = realloc(*arr, (size_t)c * size);
    if (n == NULL)
        return -1;
    *arr = n;
    *cap = c;
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Two records of the same full name. */
static int same_record(avro_schema_t w, avro_schema_t r)
{
    return w != NULL && r != NULL && is_avro_record(w) && is_avro_record(r) &&
           strcmp(avro_schema_name(w), avro_schema_name(r)) == 0 &&
           str_eq(avro_schema_namespace(w), avro_schema_namespace(r));
}

static void expect_add(expect_t *x, avro_schema_t t)
{
    t = unlink_schema(t);
    if (t == NULL)
        return;
    switch (avro_typeof(t)) {
    case AVRO_NULL:
        x->null_ok = 1;
        break;
    case AVRO_STRING:
        x->string_ok = 1;
        break;
    case AVRO_RECORD:
        if (x->rec == NULL)
            x->rec = t;
        break;
    case AVRO_ARRAY: {
        avro_schema_t it = unlink_schema(avro_schema_array_items(t));
        if (x->arr_rec == NULL && it != NULL && is_avro_record(it))
            x->arr_rec = it;
        break;
    }
    default:
        break;
    }
}

/* What reader field type `t` takes. */
static expect_t expect_of(avro_schema_t t)
{
    expect_t x = {0, 0, NULL, NULL};
    t = unlink_schema(t);
    if (t != NULL && avro_typeof(t) == AVRO_UNION) {
        size_t n = avro_schema_union_size(t);
        for (size_t i = 0; i < n; i++)
            expect_add(&x, avro_schema_union_branch(t, (int)i));
    } else {
        expect_add(&x, t);
    }
    return x;
}

typedef struct compiler {
    struct rs_avro_rplan *p;
    rs_avro_entry_t *e;
    int failed; /* out of memory, or a shape the plan cannot hold */
} compiler_t;

static int32_t new_op(compiler_t *cc, int op, int32_t a, int32_t n)
{
    struct rs_avro_rplan *p = cc->p;
    if (grow((void **)&p->ops, &p->cap_ops, p->n_ops + 1, sizeof *p->ops) != 0) {
        cc->failed = 1;
        return 0;
    }
    p->ops[p->n_ops] = (rop_t){(uint8_t)op, a, n};
    return p->n_ops++;
}

/* The scanner's node for writer schema w (the skip of a field). */
static int32_t scan_node_of(compiler_t *cc, avro_schema_t w)
{
    const rs_avro_scan_prog_t *prog = &cc->e->prog;
    for (int32_t i = 0; i < prog->n_nodes; i++)
        if (prog->nodes[i].schema == w)
            return i;
    cc->failed = 1;
    return 0;
}

static int32_t compile_record(compiler_t *cc, avro_schema_t w, avro_schema_t r, int depth);

/* The op reading writer value w into a reader field that takes x. */
static int32_t compile_value(compiler_t *cc, avro_schema_t w, const expect_t *x, int depth)
{
    w = unlink_schema(w);
    if (w == NULL || depth > RS_AVRO_MAX_DEPTH) {
        cc->failed = 1;
        return 0;
    }
    switch (avro_typeof(w)) {
    case AVRO_NULL:
        return new_op(cc, x->null_ok ? RO_NULL : RO_FAIL, 0, 0);
    case AVRO_STRING:
        return new_op(cc, x->string_ok ? RO_STRING : RO_FAIL, 0, 0);
    case AVRO_RECORD:
        if (!same_record(w, x->rec))
            return new_op(cc, RO_FAIL, 0, 0);
        return new_op(cc, RO_RECORD, compile_record(cc, w, x->rec, depth + 1), 0);
    case AVRO_ARRAY: {
        if (x->arr_rec == NULL)
            return new_op(cc, RO_FAIL, 0, 0);
        expect_t ix = {0, 0, x->arr_rec, NULL};
        int32_t it = compile_value(cc, avro_schema_array_items(w), &ix, depth + 1);
        return new_op(cc, RO_ARRAY, it, 0);
    }
    case AVRO_UNION: {
        int32_t n = (int32_t)avro_schema_union_size(w), first = cc->p->n_ops;
        for (int32_t i = 0; i < n; i++) /* the branches' ops, filled below */
            new_op(cc, RO_FAIL, 0, 0);
        for (int32_t i = 0; i < n && !cc->failed; i++) {
            avro_schema_t b = unlink_schema(avro_schema_union_branch(w, (int)i));
            if (b != NULL && avro_typeof(b) == AVRO_UNION) {
                cc->failed = 1;
                break;
            }
            int32_t op = compile_value(cc, b, x, depth + 1);
            if (!cc->failed)
                cc->p->ops[first + i] = cc->p->ops[op];
        }
        return new_op(cc, RO_UNION, first, n);
    }
    default: /* promotions and other types: left to Avro C */
        return new_op(cc, RO_FAIL, 0, 0);
    }
}

/* The plan of writer record w read as reader record r (memoised by w). */
static int32_t compile_record(compiler_t *cc, avro_schema_t w, avro_schema_t r, int depth)
{
    struct rs_avro_rplan *p = cc->p;
    for (int32_t i = 0; i < p->n_recs; i++)
        if (p->recs[i].w == w)
            return i;
    int rk = rs_codec_record_kind(avro_schema_name(r));
    size_t nf = avro_schema_record_size(w), nr = avro_schema_record_size(r);
    if (rk < 0 || depth > RS_AVRO_MAX_DEPTH || nf > 4096 ||
        grow((void **)&p->recs, &p->cap_recs, p->n_recs + 1, sizeof *p->recs) != 0) {
        cc->failed = 1;
        return 0;
    }
    /* a reader field the writer lacks: Avro C fills no defaults (the
     * projection dropped the optional ones), so the generic path fails */
    for (size_t i = 0; i < nr; i++)
        if (avro_schema_record_field_get(w, avro_schema_record_field_name(r, (int)i)) == NULL) {
            cc->failed = 1;
            return 0;
        }
    int32_t me = p->n_recs++, first = p->n_fields;
    p->recs[me] = (rrec_t){w, rk, first, (int32_t)nf};
    if (grow((void **)&p->fields, &p->cap_fields, first + (int32_t)nf, sizeof *p->fields) !=
        0) {
        cc->failed = 1;
        return 0;
    }
    p->n_fields += (int32_t)nf;
    for (size_t i = 0; i < nf && !cc->failed; i++) {
        const char *name = avro_schema_record_field_name(w, (int)i);
        avro_schema_t wf = avro_schema_record_field_get_by_index(w, (int)i);
        avro_schema_t rf = avro_schema_record_field_get(r, name);
        int32_t slot = -1, op;
        for (int j = 0; rf != NULL && j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[rk][j]; j++)
            if (strcmp(rs_codec_field_name[rk][j], name) == 0) {
                slot = j;
                break;
            }
        if (slot < 0) {
            op = new_op(cc, RO_SKIP, scan_node_of(cc, unlink_schema(wf)), 0);
        } else {
            expect_t x = expect_of(rf);
            op = compile_value(cc, wf, &x, depth + 1);
        }
        p->fields[first + (int32_t)i] = (rfield_t){slot, op};
    }
    return me;
}

/* The reader's top-level record of kind rk (the projected reader is one
 * event record or a union of them). */
static avro_schema_t reader_record(avro_schema_t rs, int rk)
{
    const char *name = rs_codec_record_name[rk];
    if (avro_typeof(rs) == AVRO_UNION) {
        size_t n = avro_schema_union_size(rs);
        for (size_t i = 0; i < n; i++) {
            avro_schema_t b = unlink_schema(avro_schema_union_branch(rs, (int)i));
            if (b != NULL && is_avro_record(b) && strcmp(avro_schema_name(b), name) == 0)
                return b;
        }
        return NULL;
    }
    return is_avro_record(rs) && strcmp(avro_schema_name(rs), name) == 0 ? rs : NULL;
}

/* The top-level record plan for writer record w, or -1 (no event of ours:
 * the generic path says so). */
static int32_t compile_top(compiler_t *cc, avro_schema_t w)
{
    w = unlink_schema(w);
    if (w == NULL || !is_avro_record(w))
        return -1;
    int rk = rs_codec_record_kind(avro_schema_name(w));
    if (rk < 0 || rk >= RS_RK__EVENTS)
        return -1;
    avro_schema_t r = reader_record(cc->e->rschema, rk);
    if (!same_record(w, r))
        return -1;
    return compile_record(cc, w, r, 1);
}

static struct rs_avro_rplan *plan_build(rs_avro_entry_t *e)
{
    struct rs_avro_rplan *p = calloc(1, sizeof *p);
    compiler_t cc = {p, e, 0};
    if (p == NULL)
        return NULL;
    avro_schema_t w = unlink_schema(e->wschema);
    p->top_union = w != NULL && avro_typeof(w) == AVRO_UNION;
    p->n_top = p->top_union ? (int32_t)avro_schema_union_size(w) : 1;
    p->top = malloc((size_t)(p->n_top ? p->n_top : 1) * sizeof *p->top);
    if (p->top == NULL || p->n_top > 4096) {
        cc.failed = 1;
        p->n_top = 0;
    }
    for (int32_t i = 0; i < p->n_top && !cc.failed; i++)
        p->top[i] = compile_top(&cc, p->top_union ? avro_schema_union_branch(w, (int)i) : w);
    p->state = cc.failed ? -1 : 1;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */
/* ------------------------------------------------------------------------ */

/* A decoded value of a slot. */
enum { RV_ABSENT = 0, RV_NULL, RV_STR, RV_REC, RV_ARR };

typedef struct rval {
    uint8_t tag;
    uint32_t n;  /* STR: bytes; ARR: items */
    uint32_t at; /* STR: offset in chars; REC: record; ARR: its first segment */
} rval_t;

/* One block of an array's items: records first..first+count-1. */
typedef struct rseg {
    uint32_t first, count;
    int32_t next;
} rseg_t;

struct rs_avro_rstate {
    rval_t *recs; /* RS_CODEC_MAX_SLOTS values per record */
    int32_t n_recs, cap_recs;
    rseg_t *segs;
    int32_t n_segs, cap_segs;
    char *chars; /* the strings, each NUL-terminated */
    size_t n_chars, cap_chars;
};

void rs_avro_read_state_free(struct rs_avro_rstate *s)
{
    if (s == NULL)
        return;
    free(s->recs);
    free(s->segs);
    free(s->chars);
    free(s);
}

typedef struct reader {
    const struct rs_avro_rplan *p;
    const rs_avro_scan_prog_t *prog;
    struct rs_avro_rstate *s;
    const uint8_t *msg;
    size_t pos, len;
    int64_t items;
} reader_t;

static inline int rd_varint(reader_t *r, int64_t *out)
{
    uint64_t v = 0;
    if (r->pos < r->len && r->msg[r->pos] < 0x80) { /* one byte: most lengths and branches */
        v = r->msg[r->pos++];
        *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
        return 0;
    }
    for (int i = 0; i < 10; i++) {
        if (r->pos >= r->len)
            return -1;
        uint8_t b = r->msg[r->pos++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
            return 0;
        }
    }
    return -1;
}

/* `count` new records, all slots absent: the index of the first, or -1. */
static int32_t new_records(reader_t *r, int64_t count)
{
    struct rs_avro_rstate *s = r->s;
    int32_t first = s->n_recs;
    if (count > RS_AVRO_MAX_ITEMS + RS_AVRO_MAX_DEPTH ||
        grow((void **)&s->recs, &s->cap_recs, (first + (int32_t)count) * RS_CODEC_MAX_SLOTS,
             sizeof *s->recs) != 0)
        return -1;
    memset(s->recs + (size_t)first * RS_CODEC_MAX_SLOTS, 0,
           (size_t)count * RS_CODEC_MAX_SLOTS * sizeof *s->recs);
    s->n_recs += (int32_t)count;
    return first;
}

static int rd_record(reader_t *r, int32_t plan, int32_t into, int depth);

/* A string into the scratch's chars, NUL-terminated. */
static inline int rd_string(reader_t *r, rval_t *out)
{
    struct rs_avro_rstate *s = r->s;
    int64_t v;
    if (rd_varint(r, &v) != 0 || v < 0 || (uint64_t)v > r->len - r->pos)
        return -1;
    /* room: chars holds at most the body's bytes plus one NUL a string */
    memcpy(s->chars + s->n_chars, r->msg + r->pos, (size_t)v);
    s->chars[s->n_chars + (size_t)v] = '\0';
    out->tag = RV_STR;
    out->n = (uint32_t)v;
    out->at = (uint32_t)s->n_chars;
    s->n_chars += (size_t)v + 1;
    r->pos += (size_t)v;
    return 0;
}

/* Read one value by op `opi` into *out. A record goes into record `into`
 * (an array's reserved item), or a new one when into < 0. */
static int rd_value(reader_t *r, int32_t opi, int depth, rval_t *out, int32_t into)
{
    const rop_t *op = &r->p->ops[opi];
    int64_t v;
    if (depth > RS_AVRO_MAX_DEPTH)
        return -1;
    switch (op->op) {
    case RO_NULL:
        out->tag = RV_NULL;
        return 0;
    case RO_STRING:
        return rd_string(r, out);
    case RO_RECORD:
        if (into < 0 && (into = new_records(r, 1)) < 0)
            return -1;
        out->tag = RV_REC;
        out->at = (uint32_t)into;
        return rd_record(r, op->a, into, depth);
    case RO_UNION:
        if (rd_varint(r, &v) != 0 || v < 0 || v >= op->n)
            return -1;
        return rd_value(r, op->a + (int32_t)v, depth + 1, out, into);
    case RO_ARRAY: {
        int32_t last = -1;
        out->tag = RV_ARR;
        out->n = 0;
        out->at = UINT32_MAX;
        for (;;) {
            int64_t count, bytes = -1;
            if (rd_varint(r, &count) != 0)
                return -1;
            if (count == 0)
                return 0;
            if (count < 0) {
                if (count == INT64_MIN || rd_varint(r, &bytes) != 0 || bytes < 0 ||
                    (uint64_t)bytes > r->len - r->pos)
                    return -1;
                count = -count;
            }
            if (count > RS_AVRO_MAX_ITEMS - r->items)
                return -1;
            r->items += count;
            size_t block = r->pos;
            int32_t first = new_records(r, count);
            if (first < 0 || grow((void **)&r->s->segs, &r->s->cap_segs, r->s->n_segs + 1,
                                  sizeof *r->s->segs) != 0)
                return -1;
            int32_t seg = r->s->n_segs++;
            r->s->segs[seg] = (rseg_t){(uint32_t)first, (uint32_t)count, -1};
            if (last >= 0)
                r->s->segs[last].next = seg;
            else
                out->at = (uint32_t)seg;
            last = seg;
            out->n += (uint32_t)count;
            for (int32_t i = 0; i < (int32_t)count; i++) {
                rval_t item = {RV_ABSENT, 0, 0};
                if (rd_value(r, op->a, depth + 1, &item, first + i) != 0 || item.tag != RV_REC)
                    return -1;
            }
            if (bytes >= 0 && r->pos - block != (uint64_t)bytes)
                return -1;
        }
    }
    case RO_SKIP:
        return rs_avro_scan_skip(r->prog, op->a, r->msg, r->len, &r->pos, depth, &r->items);
    default:
        return -1;
    }
}

/* Record plan `plan` into record `into`. */
static int rd_record(reader_t *r, int32_t plan, int32_t into, int depth)
{
    const rrec_t *rec = &r->p->recs[plan];
    const rfield_t *fields = r->p->fields + rec->first;
    const rop_t *ops = r->p->ops;
    for (int32_t i = 0; i < rec->nf; i++) {
        const rfield_t *f = &fields[i];
        const rop_t *op = &ops[f->op];
        rval_t v = {RV_ABSENT, 0, 0};
        int64_t b;
        /* the common fields here (a string, or a union's null or string
         * branch), the rest through rd_value: the same checks either way */
        if (op->op == RO_UNION && depth + 2 <= RS_AVRO_MAX_DEPTH) {
            if (rd_varint(r, &b) != 0 || b < 0 || b >= op->n)
                return -1;
            op = &ops[op->a + (int32_t)b];
            if (op->op == RO_NULL) {
                v.tag = RV_NULL;
            } else if (op->op == RO_STRING) {
                if (rd_string(r, &v) != 0)
                    return -1;
            } else if (rd_value(r, (int32_t)(op - ops), depth + 2, &v, -1) != 0) {
                return -1;
            }
        } else if (op->op == RO_STRING && depth + 1 <= RS_AVRO_MAX_DEPTH) {
            if (rd_string(r, &v) != 0)
                return -1;
        } else if (rd_value(r, f->op, depth + 1, &v, -1) != 0) {
            return -1;
        }
        if (f->slot >= 0) /* an index: the records may have moved */
            r->s->recs[(size_t)into * RS_CODEC_MAX_SLOTS + (size_t)f->slot] = v;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The field source over the decoded records                                */
/* ------------------------------------------------------------------------ */

/* A node: ref[0] the state, ref[1] a record index or an array's segment. */
static const rval_t *slot_of(const rs_codec_node_t *n, int slot)
{
    const struct rs_avro_rstate *s = n->ref[0];
    return &s->recs[(uintptr_t)n->ref[1] * RS_CODEC_MAX_SLOTS + (size_t)slot];
}

/* Slot `slot` of `rec` when it holds a value of tag `tag`: 1 with *out
 * pointing at it (an array's first segment, a record) and *n its items, 0
 * when absent or null, or EWRONG. */
static int slot_node(const rs_codec_node_t *rec, int slot, int tag, rs_codec_node_t *out,
                     size_t *n)
{
    const rval_t *v = slot_of(rec, slot);
    if (v->tag == RV_ABSENT || v->tag == RV_NULL)
        return 0;
    if (v->tag != tag)
        return RS_CODEC_EWRONG;
    out->ref[0] = rec->ref[0];
    out->ref[1] = (void *)(uintptr_t)v->at;
    *n = v->n;
    return 1;
}

static int src_string(const rs_codec_source_t *src, const rs_codec_node_t *rec, int slot,
                      const char **str, size_t *n, const char **why)
{
    const struct rs_avro_rstate *s = src->ctx;
    rs_codec_node_t at;
    int rc = slot_node(rec, slot, RV_STR, &at, n);
    if (rc <= 0)
        return rc;
    *str = s->chars + (uintptr_t)at.ref[1];
    return rs_avro_string_check(*str, *n, why);
}

static int src_array(const rs_codec_source_t *src, const rs_codec_node_t *rec, int slot,
                     rs_codec_node_t *arr, size_t *n)
{
    (void)src;
    return slot_node(rec, slot, RV_ARR, arr, n);
}

static int src_item(const rs_codec_source_t *src, const rs_codec_node_t *arr, size_t i,
                    rs_codec_node_t *rec)
{
    const struct rs_avro_rstate *s = src->ctx;
    uint32_t seg = (uint32_t)(uintptr_t)arr->ref[1];
    while (seg != UINT32_MAX && i >= s->segs[seg].count) {
        i -= s->segs[seg].count;
        seg = (uint32_t)s->segs[seg].next;
    }
    if (seg == UINT32_MAX)
        return RS_CODEC_EWRONG;
    rec->ref[0] = arr->ref[0];
    rec->ref[1] = (void *)(uintptr_t)(s->segs[seg].first + i);
    return 0;
}

static int src_record(const rs_codec_source_t *src, const rs_codec_node_t *rec, int slot,
                      rs_codec_node_t *sub)
{
    size_t n;
    (void)src;
    return slot_node(rec, slot, RV_REC, sub, &n);
}

/* ------------------------------------------------------------------------ */
/* The entry point                                                          */
/* ------------------------------------------------------------------------ */

/* Scratch past these sizes (a message with thousands of items) is freed
 * after its message, so one large message does not pin it. */
#define KEEP_RVALS (4096 * RS_CODEC_MAX_SLOTS)
#define KEEP_CHARS ((size_t)256 * 1024)

static void trim(struct rs_avro_rstate *s)
{
    if (s->cap_recs > KEEP_RVALS) {
        free(s->recs);
        s->recs = NULL;
        s->cap_recs = 0;
    }
    if (s->cap_chars > KEEP_CHARS) {
        free(s->chars);
        s->chars = NULL;
        s->cap_chars = 0;
    }
}

/* Read the body into the scratch: the root record's index (*rk its kind),
 * or -1. */
static int32_t read_body(reader_t *r, int *rk)
{
    int32_t plan = -1;
    int depth = 0;
    if (r->p->top_union) {
        int64_t branch;
        if (rd_varint(r, &branch) != 0 || branch < 0 || branch >= r->p->n_top)
            return -1;
        plan = r->p->top[branch];
        depth = 1;
    } else if (r->p->n_top == 1) {
        plan = r->p->top[0];
    }
    int32_t root = plan >= 0 ? new_records(r, 1) : -1;
    if (root < 0 || rd_record(r, plan, root, depth) != 0 || r->pos != r->len)
        return -1;
    *rk = r->p->recs[plan].rk;
    return root;
}

int rs_avro_read_direct(rs_avro_cache_t *c, rs_avro_entry_t *e, const uint8_t *msg, size_t len,
                        rs_event_t *ev)
{
    if (e->rplan == NULL && (e->rplan = plan_build(e)) == NULL)
        return 1;
    if (e->rplan->state != 1)
        return 1;
    if (c->rstate == NULL && (c->rstate = calloc(1, sizeof *c->rstate)) == NULL)
        return 1;
    struct rs_avro_rstate *s = c->rstate;
    /* every string fits: its bytes are in the body, one NUL each */
    size_t need = 2 * len + 1;
    if (need > s->cap_chars) {
        char *nc = realloc(s->chars, need);
        if (nc == NULL)
            return 1;
        s->chars = nc;
        s->cap_chars = need;
    }
    s->n_recs = s->n_segs = 0;
    s->n_chars = 0;

    int rc = 1, rk = -1;
    reader_t r = {e->rplan, &e->prog, s, msg, RS_AVRO_HEADER_SIZE, len, 0};
    int32_t root_rec = read_body(&r, &rk);
    if (root_rec >= 0) {
        const rs_codec_source_t src = {src_string, src_array, src_item, src_record, s};
        rs_codec_node_t root = {{s, (void *)(uintptr_t)root_rec}, rk};
        rs_codec_dec_t d = {"?", NULL, 0, 0, &src};
        rc = rs_codec_decode_event(&d, &root, ev) != 0; /* on failure ev is cleared */
    }
    trim(s);
    c->direct_reads += rc == 0;
    return rc;
}
