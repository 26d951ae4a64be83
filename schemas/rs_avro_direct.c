/*
 * rs_avro_direct.c — the direct writer: journal entries and balance
 * snapshots serialised straight into bytes, from a plan of the writer
 * schema's records compiled once per writer id, instead of through Avro C's
 * generic value (rs_avro_encode.c resets, fills, sizes and writes that value:
 * four walks and a branch search per field, per message; the journal is
 * the worker's largest output).
 *
 * Invariants:
 *   - Byte-identical to the generic path: Avro's binary encoding (zig-zag
 *     varints for int and long, a string as its length then its bytes, a
 *     union as its branch index then the value, an array as one block of
 *     its count then the items then 0, an empty array as 0), the fields in
 *     the writer's order, a writer field revstream does not know as its
 *     (first) null branch, a value of a union field in the first branch of
 *     the value's type, the top-level record in the first writer branch of
 *     its name, as rs_avro_encode.c chooses them. test_codec_direct compares
 *     the two byte for byte.
 *   - It only writes what the generic path writes without an error. A
 *     record shape it does not plan (over 64 fields) makes that kind's plan
 *     "not direct"; a value the writer cannot hold here (a value for a field
 *     the writer lacks, a null without a null branch, a type without a
 *     branch, array items of another record, a slot left unset, a string
 *     not NUL-terminated within its field, a count out of range, a message
 *     over RS_AVRO_MAX_MESSAGE, out of memory) makes the call return 1:
 *     the caller then runs the generic path, which gives the same bytes or
 *     the error it always gave.
 *   - Two ways to the same bytes. When the writer's records are revstream's
 *     slots in slot order (the plans' `inorder`: our own schemas, and a
 *     union holding them), the fields are written as rs_avro_direct_entry
 *     and rs_avro_direct_balance hand them over, in slot order
 *     ("streaming"; a field out of order or left out fails the call).
 *     Otherwise they are collected into slot values and put_record writes
 *     them in the writer's order. test_codec_direct and fuzz_codec_encode
 *     run writers of both kinds.
 *   - Writes need no bounds checks of their own: room for a field's branch
 *     and varint (or a string's length and bytes) is reserved before it is
 *     written, and the scratch never grows past the message limit.
 *   - The cache's memo (rs_avro_dmemo_t) holds the last day and months
 *     formatted, one month per field, so a value's text is never replaced
 *     within its message.
 *
 * Ownership: an entry owns its plans (dplans, freed with it); the cache owns
 * the scratch buffer (dbuf); the message handed out is malloc'd for the
 * caller.
 */
#include <stdlib.h>
#include <string.h>

#include "rs_avro.h"
#include "rs_avro_internal.h"
#include "rs_bytes.h"
#include "rs_codec.h"
#include "rs_codec_fields.h"

/* ------------------------------------------------------------------------ */
/* plans                                                                    */
/* ------------------------------------------------------------------------ */

static avro_schema_t unlink_schema(avro_schema_t s)
{
    while (s != NULL && avro_typeof(s) == AVRO_LINK)
        s = avro_schema_link_target(s);
    return s;
}

/* The value tag a writer type holds, or -1. */
static int tag_of(avro_schema_t s)
{
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return RS_DV_NULL;
    case AVRO_STRING:
        return RS_DV_STR;
    case AVRO_INT64:
        return RS_DV_LONG;
    case AVRO_INT32:
        return RS_DV_INT;
    case AVRO_ARRAY:
        return RS_DV_ARRAY;
    default:
        return -1;
    }
}

/* An array's items: a record kind, RS_DITEM_STRING, or RS_DITEM_OTHER. */
static int item_kind(avro_schema_t arr)
{
    avro_schema_t it = unlink_schema(avro_schema_array_items(arr));
    if (it == NULL)
        return RS_DITEM_OTHER;
    if (avro_typeof(it) == AVRO_STRING)
        return RS_DITEM_STRING;
    if (avro_typeof(it) == AVRO_RECORD) {
        int k = rs_codec_record_kind(avro_schema_name(it));
        return k >= 0 ? k : RS_DITEM_OTHER;
    }
    return RS_DITEM_OTHER;
}

/* The first record named like kind rk reachable in `s` (the record the
 * layout maps), or NULL. */
static avro_schema_t find_record(avro_schema_t s, int rk, int depth)
{
    if (s == NULL || depth > RS_AVRO_MAX_DEPTH)
        return NULL;
    avro_schema_t r = NULL;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        if (strcmp(avro_schema_name(s), rs_codec_record_name[rk]) == 0)
            return s;
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n && r == NULL; i++)
            r = find_record(avro_schema_record_field_get_by_index(s, (int)i), rk, depth + 1);
        return r;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n && r == NULL; i++)
            r = find_record(avro_schema_union_branch(s, (int)i), rk, depth + 1);
        return r;
    }
    case AVRO_ARRAY:
        return find_record(avro_schema_array_items(s), rk, depth + 1);
    case AVRO_MAP:
        return find_record(avro_schema_map_values(s), rk, depth + 1);
    default:
        return NULL;
    }
}

/* Compile the plan of kind rk from the writer schema (state 1), or mark it
 * not direct (state -1). */
static void plan_build(rs_avro_dplan_t *p, avro_schema_t wschema, int rk)
{
    avro_schema_t rec = find_record(wschema, rk, 0);
    p->state = -1;
    memset(p->slot_field, -1, sizeof p->slot_field);
    if (rec == NULL)
        return;
    /* the top level: the record itself, or its first branch of a union */
    p->top_branch = -2;
    if (avro_typeof(wschema) == AVRO_UNION) {
        size_t n = avro_schema_union_size(wschema);
        for (size_t i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(wschema, (int)i);
            if (is_avro_record(b) &&
                strcmp(avro_schema_name(b), rs_codec_record_name[rk]) == 0) {
                p->top_branch = (int)i;
                break;
            }
        }
    } else if (avro_typeof(wschema) == AVRO_RECORD &&
               strcmp(avro_schema_name(wschema), rs_codec_record_name[rk]) == 0) {
        p->top_branch = -1;
    }
    size_t n = avro_schema_record_size(rec);
    if (n > RS_DPLAN_MAX_FIELDS)
        return;
    p->nf = (int)n;
    for (size_t i = 0; i < n; i++) {
        rs_avro_dfield_t *f = &p->f[i];
        const char *name = avro_schema_record_field_name(rec, (int)i);
        avro_schema_t fs = unlink_schema(avro_schema_record_field_get_by_index(rec, (int)i));
        memset(f->br, -1, sizeof f->br);
        f->slot = -1;
        f->is_union = 0;
        f->item = RS_DITEM_OTHER;
        for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[rk][j] != NULL; j++)
            if (strcmp(rs_codec_field_name[rk][j], name) == 0) {
                f->slot = (int8_t)j;
                p->slot_field[j] = (int8_t)i;
                break;
            }
        if (fs == NULL)
            continue;
        if (avro_typeof(fs) == AVRO_UNION) {
            size_t nb = avro_schema_union_size(fs);
            f->is_union = 1;
            for (size_t k = 0; k < nb && k < 127; k++) {
                avro_schema_t b = unlink_schema(avro_schema_union_branch(fs, (int)k));
                int t = b != NULL ? tag_of(b) : -1;
                if (t < 0 || f->br[t] >= 0)
                    continue; /* the generic path takes the first of a type */
                f->br[t] = (int16_t)k;
                if (t == RS_DV_ARRAY)
                    f->item = (int8_t)item_kind(b);
            }
        } else {
            int t = tag_of(fs);
            if (t >= 0)
                f->br[t] = 0;
            if (t == RS_DV_ARRAY)
                f->item = (int8_t)item_kind(fs);
        }
    }
    p->lacks = 0;
    int named = 0;
    for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[rk][j] != NULL; j++, named++)
        if (p->slot_field[j] < 0)
            p->lacks |= (uint32_t)1 << j;
    p->inorder = p->nf == named;
    for (int i = 0; i < p->nf; i++)
        p->inorder &= p->f[i].slot == i;
    p->state = 1;
}

/* The plan of kind rk for entry e, built on first use; NULL when not
 * direct. */
static const rs_avro_dplan_t *plan_of(rs_avro_entry_t *e, int rk)
{
    if (e->dplans == NULL) {
        e->dplans = calloc(RS_RK__COUNT, sizeof *e->dplans);
        if (e->dplans == NULL)
            return NULL;
    }
    rs_avro_dplan_t *p = &e->dplans[rk];
    if (p->state == 0)
        plan_build(p, e->wschema, rk);
    return p->state == 1 ? p : NULL;
}

/* ------------------------------------------------------------------------ */
/* writing                                                                  */
/* ------------------------------------------------------------------------ */

_Static_assert(RS_CODEC_MAX_SLOTS <= 32, "a plan's `lacks` has a bit per slot");

/* The message being written into the cache's scratch c->dbuf: p the next
 * byte, end the end of its capacity. Every write is preceded by reserve()
 * for its most bytes (a varint is at most 10), so the writes need no checks
 * of their own. */
typedef struct out {
    rs_avro_cache_t *c;
    rs_avro_entry_t *e;
    uint8_t *p, *end;
} out_t;

#define VARINT_MAX 10
#define SCRATCH_FIRST 1024 /* bytes: most messages fit */
/* The most a field takes besides a string's bytes: its union branch and its
 * value's (or an array's count) varint. */
#define FIELD_MAX ((size_t)2 * VARINT_MAX)

/* Grow the scratch to hold n more bytes. 0, or 1 (over the message limit,
 * or out of memory: generic). */
static int grow(out_t *o, size_t n)
{
    size_t len = (size_t)(o->p - o->c->dbuf);
    if (n > (size_t)RS_AVRO_MAX_MESSAGE || len + n > (size_t)RS_AVRO_MAX_MESSAGE + FIELD_MAX)
        return 1;
    size_t cap = o->c->dcap ? o->c->dcap : SCRATCH_FIRST;
    while (cap < len + n)
        cap *= 2;
    uint8_t *b = realloc(o->c->dbuf, cap);
    if (b == NULL)
        return 1;
    o->c->dbuf = b;
    o->c->dcap = cap;
    o->p = b + len;
    o->end = b + cap;
    return 0;
}

/* Room for n more bytes. 0, or 1 (generic). */
static inline int reserve(out_t *o, size_t n)
{
    return (size_t)(o->end - o->p) >= n ? 0 : grow(o, n);
}

/* A zig-zag varint at o->p (room reserved). */
static inline void w_varint(out_t *o, int64_t n)
{
    uint64_t z = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    uint8_t *b = o->p;
    while (z >= 0x80) {
        *b++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *b++ = (uint8_t)z;
    o->p = b;
}

/* A string: its length, then its bytes. 0, or 1 (generic). */
static inline int put_bytes(out_t *o, const char *s, size_t n)
{
    if (reserve(o, VARINT_MAX + n))
        return 1;
    w_varint(o, (int64_t)n);
    memcpy(o->p, s, n);
    o->p += n;
    return 0;
}

static int put_record(out_t *o, const rs_avro_dplan_t *p, const rs_avro_dval_t *v);

/* An array into writer field f (its branch written). 0, or 1 (generic). */
static int put_array(out_t *o, const rs_avro_dfield_t *f, const rs_avro_dval_t *v)
{
    if (f->item != v->item)
        return 1;
    if (v->n > 0)
        w_varint(o, (int64_t)v->n); /* room: reserved with the field */
    if (v->item == RS_DITEM_STRING) {
        for (uint32_t i = 0; i < v->n; i++)
            if (v->items[i].tag != RS_DV_STR || put_bytes(o, v->items[i].s, v->items[i].n))
                return 1;
    } else {
        const rs_avro_dplan_t *ip = plan_of(o->e, v->item);
        if (ip == NULL)
            return 1;
        for (uint32_t i = 0; i < v->n; i++)
            if (put_record(o, ip, v->items + (size_t)i * RS_CODEC_MAX_SLOTS))
                return 1;
    }
    if (reserve(o, 1))
        return 1;
    *o->p++ = 0;
    return 0;
}

/* A record of the plan's kind from its slots' values v[RS_CODEC_MAX_SLOTS]. */
static int put_record(out_t *o, const rs_avro_dplan_t *p, const rs_avro_dval_t *v)
{
    static const rs_avro_dval_t null_value = {.tag = RS_DV_NULL};
    /* a value for a field the writer lacks: the generic path's error (a
     * null, or a value a later version added, is left out) */
    for (uint32_t m = p->lacks; m != 0; m &= m - 1) {
        const rs_avro_dval_t *lv = &v[__builtin_ctz(m)];
        if (lv->tag > RS_DV_NULL && !lv->added)
            return 1;
    }
    for (int i = 0; i < p->nf; i++) {
        const rs_avro_dfield_t *f = &p->f[i];
        const rs_avro_dval_t *fv = f->slot < 0 ? &null_value : &v[f->slot];
        if (fv->tag == RS_DV_UNSET || fv->tag >= RS_DV__COUNT)
            return 1;
        int br = f->br[fv->tag];
        if (br < 0 || reserve(o, FIELD_MAX))
            return 1;
        if (f->is_union)
            w_varint(o, br);
        switch (fv->tag) {
        case RS_DV_NULL:
            break;
        case RS_DV_STR:
            if (put_bytes(o, fv->s, fv->n))
                return 1;
            break;
        case RS_DV_LONG:
        case RS_DV_INT:
            w_varint(o, fv->l);
            break;
        default: /* RS_DV_ARRAY */
            if (put_array(o, f, fv))
                return 1;
            break;
        }
    }
    return 0;
}

/* The message's start: header and top-level branch of the plan's record.
 * 0, or 1 (generic). */
static int msg_begin(out_t *o, const rs_avro_dplan_t *p)
{
    rs_avro_cache_t *c = o->c;
    if (c->dbuf == NULL) { /* the scratch's first use (no arithmetic on NULL below) */
        if ((c->dbuf = malloc(SCRATCH_FIRST)) == NULL)
            return 1;
        c->dcap = SCRATCH_FIRST;
    }
    o->p = c->dbuf;
    o->end = c->dbuf + c->dcap;
    if (p->top_branch == -2 || reserve(o, RS_AVRO_HEADER_SIZE + VARINT_MAX))
        return 1;
    o->p[0] = RS_AVRO_MAGIC;
    rs_put_be32(o->p + 1, (uint32_t)o->e->id);
    o->p += RS_AVRO_HEADER_SIZE;
    if (p->top_branch >= 0)
        w_varint(o, p->top_branch);
    return 0;
}

/* The message written: *buf a malloc'd copy. 0, or 1 (generic). */
static int msg_end(out_t *o, void **buf, size_t *len)
{
    size_t n = (size_t)(o->p - o->c->dbuf);
    if (n > (size_t)RS_AVRO_MAX_MESSAGE)
        return 1;
    uint8_t *m = malloc(n + 1);
    if (m == NULL)
        return 1;
    memcpy(m, o->c->dbuf, n);
    o->c->direct_writes++;
    *buf = m;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* records                                                                  */
/* ------------------------------------------------------------------------ */

/* A record handed over field by field, in slot order, by
 * rs_avro_direct_entry and rs_avro_direct_balance. When the writer's
 * records are in order (every plan they use `inorder`) each field is
 * written as it comes: its branch for the value's type, then the value
 * ("streaming"). Otherwise the values are collected into slots (v) and
 * put_record writes them in the writer's order. Either way the same bytes;
 * anything the writer cannot hold sets `fail` (generic). */
typedef struct wr {
    out_t o;
    const rs_avro_dplan_t *p; /* the record being written */
    rs_avro_dval_t *v;        /* collecting: its slots' values; NULL: streaming */
    int next;                 /* streaming: the slot expected next */
    int fail;
    /* the enclosing record while an array's items are written */
    const rs_avro_dplan_t *outer_p;
    rs_avro_dval_t *outer_v, *items;
    int outer_next, item_kind;
    uint32_t n_items;
} wr_t;

/* The per-field writers below: inlined into the record functions, so each
 * field is a few instructions of straight-line code when streaming. */
#define INLINE inline __attribute__((always_inline))

/* A string value of known length (collecting). */
static INLINE void v_strn(rs_avro_dval_t *v, const char *s, size_t n)
{
    v->tag = RS_DV_STR;
    v->s = s;
    v->n = (uint32_t)n;
}

/* Streaming: the branch of field `slot` for a value of tag t. 0, or 1. */
static INLINE int s_field(wr_t *w, int slot, int tag)
{
    const rs_avro_dfield_t *f = &w->p->f[slot];
    int br = f->br[tag];
    if (slot != w->next || br < 0 || reserve(&w->o, FIELD_MAX))
        return 1;
    w->next++;
    if (f->is_union)
        w_varint(&w->o, br);
    return 0;
}

static INLINE void wr_strn(wr_t *w, int slot, const char *s, size_t n)
{
    if (w->v != NULL)
        v_strn(&w->v[slot], s, n);
    else if (w->fail || s_field(w, slot, RS_DV_STR) || put_bytes(&w->o, s, n))
        w->fail = 1;
}

static INLINE void wr_null(wr_t *w, int slot)
{
    if (w->v != NULL)
        w->v[slot].tag = RS_DV_NULL;
    else if (w->fail || s_field(w, slot, RS_DV_NULL))
        w->fail = 1;
}

/* A C string, or null for NULL. */
static INLINE void wr_str(wr_t *w, int slot, const char *s)
{
    if (s == NULL)
        wr_null(w, slot);
    else
        wr_strn(w, slot, s, strlen(s));
}

static INLINE void wr_long(wr_t *w, int slot, int64_t n, int tag)
{
    if (w->v != NULL) {
        w->v[slot].tag = (uint8_t)tag;
        w->v[slot].l = n;
    } else if (w->fail || s_field(w, slot, tag)) {
        w->fail = 1;
    } else {
        w_varint(&w->o, n); /* room: reserved with the field */
    }
}

/* Slot `slot` holds a value a later schema version added (collecting only:
 * a streamed writer has every slot). */
static INLINE void wr_added(wr_t *w, int slot)
{
    if (w->v != NULL)
        w->v[slot].added = 1;
}

/* A fixed-size char field: the generic path's error (fail) when it is not
 * NUL-terminated within cap; "" is null when `opt`. */
static INLINE void wr_field(wr_t *w, int slot, const char *s, size_t cap, int opt)
{
    const char *z = memchr(s, '\0', cap);
    if (z == NULL)
        w->fail = 1;
    else if (opt && z == s)
        wr_null(w, slot);
    else
        wr_strn(w, slot, s, (size_t)(z - s));
}

/* Field `slot`: an array of n items of `kind` (a record kind, or
 * RS_DITEM_STRING); collecting, its values go to items[] (n of them, and
 * RS_CODEC_MAX_SLOTS each for records, cleared here). The items follow
 * (wr_item for a record), then wr_end_array. */
static void wr_array(wr_t *w, int slot, uint32_t n, int kind, rs_avro_dval_t *items)
{
    w->outer_p = w->p;
    w->outer_v = w->v;
    w->outer_next = slot + 1;
    w->items = items;
    w->item_kind = kind;
    w->n_items = n;
    if (w->v != NULL) {
        w->v[slot] =
            (rs_avro_dval_t){.tag = RS_DV_ARRAY, .n = n, .items = items, .item = (int8_t)kind};
        if (kind != RS_DITEM_STRING)
            memset(items, 0, (size_t)n * RS_CODEC_MAX_SLOTS * sizeof *items);
        return;
    }
    if (w->fail || s_field(w, slot, RS_DV_ARRAY) || w->p->f[slot].item != kind) {
        w->fail = 1;
        return;
    }
    if (n > 0)
        w_varint(&w->o, (int64_t)n); /* room: reserved with the field */
    if (kind != RS_DITEM_STRING) {
        w->p = plan_of(w->o.e, kind);
        if (w->p == NULL) { /* inorder when streaming: checked by the caller */
            w->p = w->outer_p;
            w->fail = 1;
        }
    }
    w->next = 0;
}

/* Record item i of the array begun: its fields follow. */
static void wr_item(wr_t *w, uint32_t i)
{
    if (w->outer_v != NULL)
        w->v = w->items + (size_t)i * RS_CODEC_MAX_SLOTS;
    else if (i > 0 && w->next != w->p->nf)
        w->fail = 1; /* the item before left a field out */
    w->next = 0;
}

/* String item i of the array begun. */
static void wr_item_str(wr_t *w, uint32_t i, const char *s, size_t n)
{
    if (w->outer_v != NULL)
        v_strn(&w->items[i], s, n);
    else if (w->fail || put_bytes(&w->o, s, n))
        w->fail = 1;
}

static void wr_end_array(wr_t *w)
{
    if (w->outer_v == NULL && !w->fail) {
        if ((w->item_kind != RS_DITEM_STRING && w->n_items > 0 && w->next != w->p->nf) ||
            reserve(&w->o, 1))
            w->fail = 1;
        else
            *w->o.p++ = 0;
    }
    w->p = w->outer_p;
    w->v = w->outer_v;
    w->next = w->outer_next;
}

/* Start a message of kind rk (array items of kind `item`, or -1): streaming
 * when the plans are in order, else collecting into v. 0, or 1 (generic). */
static int wr_begin(wr_t *w, rs_avro_cache_t *c, rs_avro_entry_t *e, int rk, int item,
                    rs_avro_dval_t *v)
{
    memset(w, 0, sizeof *w);
    w->o.c = c;
    w->o.e = e;
    w->p = plan_of(e, rk);
    const rs_avro_dplan_t *ip = item >= 0 ? plan_of(e, item) : NULL;
    if (w->p == NULL || msg_begin(&w->o, w->p))
        return 1;
    if (w->p->inorder && (item < 0 || (ip != NULL && ip->inorder)))
        return 0;
    memset(v, 0, RS_CODEC_MAX_SLOTS * sizeof *v);
    w->v = v;
    return 0;
}

/* The message ends: 0 with *buf malloc'd, or 1 (generic). */
static int wr_finish(wr_t *w, void **buf, size_t *len)
{
    if (w->fail)
        return 1;
    if (w->v != NULL) {
        if (put_record(&w->o, w->p, w->v))
            return 1;
    } else if (w->next != w->p->nf) {
        return 1; /* a field left out */
    }
    return msg_end(&w->o, buf, len);
}

/* ------------------------------------------------------------------------ */
/* values                                                                   */
/* ------------------------------------------------------------------------ */

/* A day as "YYYY-MM-DD" (null when none), formatted once while it repeats:
 * entries of a batch share their days and months. */
static void wr_date(wr_t *w, int slot, rs_date_t d)
{
    rs_avro_dmemo_t *m = &w->o.c->dmemo;
    if (d == RS_DATE_NONE) {
        wr_null(w, slot);
        return;
    }
    if (d != m->date) {
        rs_date_format(d, m->date_text, sizeof m->date_text);
        m->date_n = (uint32_t)strlen(m->date_text);
        m->date = d;
    }
    wr_strn(w, slot, m->date_text, m->date_n);
}

/* A month as "YYYY-MM" (null when none), as wr_date, in memo slot k (one
 * per field of a message, so the values' texts stay apart). */
static void wr_period(wr_t *w, int k, int slot, rs_period_t p)
{
    rs_avro_dmemo_t *m = &w->o.c->dmemo;
    if (p == RS_PERIOD_NONE) {
        wr_null(w, slot);
        return;
    }
    if (p != m->period[k]) {
        rs_period_format(p, m->period_text[k], sizeof m->period_text[k]);
        m->period_n[k] = (uint32_t)strlen(m->period_text[k]);
        m->period[k] = p;
    }
    wr_strn(w, slot, m->period_text[k], m->period_n[k]);
}

/* The lengths of the kind and account names, once per cache. */
static void names_ready(rs_avro_dmemo_t *m)
{
    if (m->names_ready)
        return;
    for (int k = 0; k < RS_ENTRY__COUNT; k++)
        m->kind_n[k] = (uint8_t)strlen(rs_entry_kind_name((rs_entry_kind_t)k));
    for (int a = 0; a < RS_ACCT__COUNT; a++)
        m->account_n[a] = (uint8_t)strlen(rs_account_name((rs_account_t)a));
    m->names_ready = 1;
}

int rs_avro_direct_entry(rs_avro_cache_t *c, rs_avro_entry_t *ent, const rs_entry_t *e,
                         void **buf, size_t *len)
{
    rs_avro_dval_t v[RS_CODEC_MAX_SLOTS];
    rs_avro_dval_t lines[RS_ENTRY_MAX_POSTINGS][RS_CODEC_MAX_SLOTS];
    rs_avro_dval_t srcs[RS_ENTRY_MAX_SOURCES];
    rs_avro_dmemo_t *m = &c->dmemo;
    wr_t w;

    if (e->n_postings < 0 || e->n_postings > RS_ENTRY_MAX_POSTINGS || e->n_sources < 0 ||
        e->n_sources > RS_ENTRY_MAX_SOURCES ||
        wr_begin(&w, c, ent, RS_RK_JOURNAL_ENTRY, RS_RK_JOURNAL_LINE, v))
        return 1;
    names_ready(m);
    wr_field(&w, RS_F_JE_ENTRY_ID, e->entry_id, sizeof e->entry_id, 0);
    wr_long(&w, RS_F_JE_SEQ, (int64_t)e->seq, RS_DV_LONG);
    wr_date(&w, RS_F_JE_POSTED_ON, e->posted_on);
    wr_period(&w, 0, RS_F_JE_PERIOD, e->period);
    wr_period(&w, 1, RS_F_JE_SERVICE_PERIOD, e->service_period);
    if ((unsigned)e->kind < RS_ENTRY__COUNT)
        wr_strn(&w, RS_F_JE_KIND, rs_entry_kind_name(e->kind), m->kind_n[e->kind]);
    else
        wr_str(&w, RS_F_JE_KIND, rs_entry_kind_name(e->kind));
    wr_field(&w, RS_F_JE_RULE, e->rule, sizeof e->rule, 0);
    wr_field(&w, RS_F_JE_CONTRACT_ID, e->contract_id, sizeof e->contract_id, 0);
    wr_field(&w, RS_F_JE_CUSTOMER_ID, e->customer_id, sizeof e->customer_id, 0);
    wr_field(&w, RS_F_JE_LINE_ID, e->line_id, sizeof e->line_id, 1);
    wr_field(&w, RS_F_JE_DOCUMENT_ID, e->document_id, sizeof e->document_id, 1);
    wr_field(&w, RS_F_JE_CURRENCY, e->currency, sizeof e->currency, 0);
    wr_long(&w, RS_F_JE_EXPONENT, e->exponent, RS_DV_INT);
    wr_array(&w, RS_F_JE_LINES, (uint32_t)e->n_postings, RS_RK_JOURNAL_LINE, &lines[0][0]);
    for (int i = 0; i < e->n_postings; i++) {
        const rs_posting_t *p = &e->postings[i];
        wr_item(&w, (uint32_t)i);
        if ((unsigned)p->account < RS_ACCT__COUNT)
            wr_strn(&w, RS_F_JL_ACCOUNT, rs_account_name(p->account), m->account_n[p->account]);
        else
            wr_str(&w, RS_F_JL_ACCOUNT, rs_account_name(p->account));
        wr_long(&w, RS_F_JL_DEBIT, p->debit, RS_DV_LONG);
        wr_long(&w, RS_F_JL_CREDIT, p->credit, RS_DV_LONG);
        wr_field(&w, RS_F_JL_CODE, p->code, sizeof p->code, 1);
        wr_added(&w, RS_F_JL_CODE);
        wr_field(&w, RS_F_JL_PRODUCT, e->product, sizeof e->product, 1);
        wr_added(&w, RS_F_JL_PRODUCT);
    }
    wr_end_array(&w);
    wr_array(&w, RS_F_JE_SOURCE_EVENT_IDS, (uint32_t)e->n_sources, RS_DITEM_STRING, srcs);
    for (int i = 0; i < e->n_sources; i++) {
        const char *z = memchr(e->sources[i], '\0', RS_ID_MAX);
        if (z == NULL)
            w.fail = 1;
        else
            wr_item_str(&w, (uint32_t)i, e->sources[i], (size_t)(z - e->sources[i]));
    }
    wr_end_array(&w);
    wr_long(&w, RS_F_JE_SOURCE_COUNT, (int64_t)e->source_count, RS_DV_LONG);
    wr_long(&w, RS_F_JE_BILLED, e->billed, RS_DV_LONG);
    wr_long(&w, RS_F_JE_RECOGNIZED, e->recognized, RS_DV_LONG);
    wr_long(&w, RS_F_JE_RECEIVED, e->received, RS_DV_LONG);
    return wr_finish(&w, buf, len);
}

int rs_avro_direct_balance(rs_avro_cache_t *c, rs_avro_entry_t *ent, const rs_avro_balance_t *b,
                           void **buf, size_t *len)
{
    static const char *const scope_name[] = {"contract", "line", "invoice"};
    static const uint8_t scope_n[] = {sizeof "contract" - 1, sizeof "line" - 1,
                                      sizeof "invoice" - 1};
    rs_avro_dval_t v[RS_CODEC_MAX_SLOTS];
    wr_t w;

    if ((int)b->scope < 0 || b->scope > RS_AVRO_SCOPE_INVOICE || b->snapshot_key == NULL ||
        b->contract_id == NULL || b->customer_id == NULL || b->currency == NULL ||
        wr_begin(&w, c, ent, RS_RK_DEFERRED_BALANCE, -1, v))
        return 1;
    wr_str(&w, RS_F_DB_SNAPSHOT_KEY, b->snapshot_key);
    wr_str(&w, RS_F_DB_CONTRACT_ID, b->contract_id);
    wr_str(&w, RS_F_DB_CUSTOMER_ID, b->customer_id);
    wr_strn(&w, RS_F_DB_SCOPE, scope_name[b->scope], scope_n[b->scope]);
    wr_str(&w, RS_F_DB_LINE_ID, b->line_id && b->line_id[0] ? b->line_id : NULL);
    wr_str(&w, RS_F_DB_INVOICE_ID, b->invoice_id && b->invoice_id[0] ? b->invoice_id : NULL);
    wr_str(&w, RS_F_DB_CURRENCY, b->currency);
    wr_long(&w, RS_F_DB_EXPONENT, b->exponent, RS_DV_INT);
    wr_long(&w, RS_F_DB_BILLED, b->billed, RS_DV_LONG);
    wr_long(&w, RS_F_DB_RECOGNIZED, b->recognized, RS_DV_LONG);
    wr_long(&w, RS_F_DB_DEFERRED, b->deferred, RS_DV_LONG);
    wr_long(&w, RS_F_DB_UNBILLED, b->unbilled, RS_DV_LONG);
    wr_long(&w, RS_F_DB_RECEIVED, b->received, RS_DV_LONG);
    wr_period(&w, 0, RS_F_DB_AS_OF_PERIOD, b->as_of_period);
    return wr_finish(&w, buf, len);
}
