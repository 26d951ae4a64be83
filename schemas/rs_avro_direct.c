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
    for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[rk][j] != NULL; j++)
        if (p->slot_field[j] < 0)
            p->lacks |= (uint32_t)1 << j;
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
#define FIELD_MAX (2 * VARINT_MAX)

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

/* The message of kind rk: header, top-level branch, record. 0 with *buf
 * malloc'd, or 1 (generic). */
static int put_message(rs_avro_cache_t *c, rs_avro_entry_t *e, int rk, const rs_avro_dval_t *v,
                       void **buf, size_t *len)
{
    const rs_avro_dplan_t *p = plan_of(e, rk);
    if (c->dbuf == NULL) { /* the scratch's first use (no arithmetic on NULL below) */
        if ((c->dbuf = malloc(SCRATCH_FIRST)) == NULL)
            return 1;
        c->dcap = SCRATCH_FIRST;
    }
    out_t o = {c, e, c->dbuf, c->dbuf + c->dcap};
    if (p == NULL || p->top_branch == -2 || reserve(&o, RS_AVRO_HEADER_SIZE + VARINT_MAX))
        return 1;
    o.p[0] = RS_AVRO_MAGIC;
    rs_put_be32(o.p + 1, (uint32_t)e->id);
    o.p += RS_AVRO_HEADER_SIZE;
    if (p->top_branch >= 0)
        w_varint(&o, p->top_branch);
    if (put_record(&o, p, v))
        return 1;
    size_t n = (size_t)(o.p - c->dbuf);
    if (n > (size_t)RS_AVRO_MAX_MESSAGE)
        return 1;
    uint8_t *m = malloc(n + 1);
    if (m == NULL)
        return 1;
    memcpy(m, c->dbuf, n);
    c->direct_writes++;
    *buf = m;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* values                                                                   */
/* ------------------------------------------------------------------------ */

static void v_str(rs_avro_dval_t *v, const char *s)
{
    if (s == NULL) {
        v->tag = RS_DV_NULL;
        return;
    }
    v->tag = RS_DV_STR;
    v->s = s;
    v->n = (uint32_t)strlen(s);
}

/* A fixed-size char field: 1 when not NUL-terminated within cap. */
static int v_field(rs_avro_dval_t *v, const char *s, size_t cap)
{
    const char *z = memchr(s, '\0', cap);
    if (z == NULL)
        return 1;
    v->tag = RS_DV_STR;
    v->s = s;
    v->n = (uint32_t)(z - s);
    return 0;
}

/* An optional id: "" is null. */
static int v_opt_field(rs_avro_dval_t *v, const char *s, size_t cap)
{
    if (s[0] == '\0') {
        v->tag = RS_DV_NULL;
        return 0;
    }
    return v_field(v, s, cap);
}

static void v_long(rs_avro_dval_t *v, int64_t n, int tag)
{
    v->tag = (uint8_t)tag;
    v->l = n;
}

/* A string of known length. */
static void v_strn(rs_avro_dval_t *v, const char *s, size_t n)
{
    v->tag = RS_DV_STR;
    v->s = s;
    v->n = (uint32_t)n;
}

/* A day as "YYYY-MM-DD" (null when none), formatted once while it repeats:
 * entries of a batch share their days and months. */
static void v_date(rs_avro_dmemo_t *m, rs_avro_dval_t *v, rs_date_t d)
{
    if (d == RS_DATE_NONE) {
        v->tag = RS_DV_NULL;
        return;
    }
    if (d != m->date) {
        rs_date_format(d, m->date_text, sizeof m->date_text);
        m->date_n = (uint32_t)strlen(m->date_text);
        m->date = d;
    }
    v_strn(v, m->date_text, m->date_n);
}

/* A month as "YYYY-MM" (null when none), as v_date, in memo slot k (one
 * per field of a message, so the values' texts stay apart). */
static void v_period(rs_avro_dmemo_t *m, int k, rs_avro_dval_t *v, rs_period_t p)
{
    if (p == RS_PERIOD_NONE) {
        v->tag = RS_DV_NULL;
        return;
    }
    if (p != m->period[k]) {
        rs_period_format(p, m->period_text[k], sizeof m->period_text[k]);
        m->period_n[k] = (uint32_t)strlen(m->period_text[k]);
        m->period[k] = p;
    }
    v_strn(v, m->period_text[k], m->period_n[k]);
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

    if (e->n_postings < 0 || e->n_postings > RS_ENTRY_MAX_POSTINGS || e->n_sources < 0 ||
        e->n_sources > RS_ENTRY_MAX_SOURCES)
        return 1;
    names_ready(m);
    memset(v, 0, sizeof v);
    if (v_field(&v[RS_F_JE_ENTRY_ID], e->entry_id, sizeof e->entry_id))
        return 1;
    v_long(&v[RS_F_JE_SEQ], (int64_t)e->seq, RS_DV_LONG);
    v_date(m, &v[RS_F_JE_POSTED_ON], e->posted_on);
    v_period(m, 0, &v[RS_F_JE_PERIOD], e->period);
    v_period(m, 1, &v[RS_F_JE_SERVICE_PERIOD], e->service_period);
    if ((unsigned)e->kind < RS_ENTRY__COUNT)
        v_strn(&v[RS_F_JE_KIND], rs_entry_kind_name(e->kind), m->kind_n[e->kind]);
    else
        v_str(&v[RS_F_JE_KIND], rs_entry_kind_name(e->kind));
    if (v_field(&v[RS_F_JE_RULE], e->rule, sizeof e->rule) ||
        v_field(&v[RS_F_JE_CONTRACT_ID], e->contract_id, sizeof e->contract_id) ||
        v_field(&v[RS_F_JE_CUSTOMER_ID], e->customer_id, sizeof e->customer_id) ||
        v_opt_field(&v[RS_F_JE_LINE_ID], e->line_id, sizeof e->line_id) ||
        v_opt_field(&v[RS_F_JE_DOCUMENT_ID], e->document_id, sizeof e->document_id) ||
        v_field(&v[RS_F_JE_CURRENCY], e->currency, sizeof e->currency))
        return 1;
    v_long(&v[RS_F_JE_EXPONENT], e->exponent, RS_DV_INT);
    /* the product is the same in every line: measured once */
    rs_avro_dval_t product = {.tag = RS_DV_NULL};
    if (e->n_postings > 0 && v_opt_field(&product, e->product, sizeof e->product))
        return 1;
    product.added = 1;
    memset(lines, 0, (size_t)e->n_postings * sizeof lines[0]);
    for (int i = 0; i < e->n_postings; i++) {
        rs_avro_dval_t *l = lines[i];
        rs_account_t a = e->postings[i].account;
        if ((unsigned)a < RS_ACCT__COUNT)
            v_strn(&l[RS_F_JL_ACCOUNT], rs_account_name(a), m->account_n[a]);
        else
            v_str(&l[RS_F_JL_ACCOUNT], rs_account_name(a));
        v_long(&l[RS_F_JL_DEBIT], e->postings[i].debit, RS_DV_LONG);
        v_long(&l[RS_F_JL_CREDIT], e->postings[i].credit, RS_DV_LONG);
        if (v_opt_field(&l[RS_F_JL_CODE], e->postings[i].code, sizeof e->postings[i].code))
            return 1;
        l[RS_F_JL_CODE].added = 1;
        l[RS_F_JL_PRODUCT] = product;
    }
    v[RS_F_JE_LINES] = (rs_avro_dval_t){.tag = RS_DV_ARRAY,
                                        .n = (uint32_t)e->n_postings,
                                        .items = &lines[0][0],
                                        .item = RS_RK_JOURNAL_LINE};
    for (int i = 0; i < e->n_sources; i++)
        if (v_field(&srcs[i], e->sources[i], RS_ID_MAX))
            return 1;
    v[RS_F_JE_SOURCE_EVENT_IDS] = (rs_avro_dval_t){.tag = RS_DV_ARRAY,
                                                   .n = (uint32_t)e->n_sources,
                                                   .items = srcs,
                                                   .item = RS_DITEM_STRING};
    v_long(&v[RS_F_JE_SOURCE_COUNT], (int64_t)e->source_count, RS_DV_LONG);
    v_long(&v[RS_F_JE_BILLED], e->billed, RS_DV_LONG);
    v_long(&v[RS_F_JE_RECOGNIZED], e->recognized, RS_DV_LONG);
    v_long(&v[RS_F_JE_RECEIVED], e->received, RS_DV_LONG);
    return put_message(c, ent, RS_RK_JOURNAL_ENTRY, v, buf, len);
}

int rs_avro_direct_balance(rs_avro_cache_t *c, rs_avro_entry_t *ent, const rs_avro_balance_t *b,
                           void **buf, size_t *len)
{
    static const char *const scope_name[] = {"contract", "line", "invoice"};
    static const uint8_t scope_n[] = {sizeof "contract" - 1, sizeof "line" - 1,
                                      sizeof "invoice" - 1};
    rs_avro_dval_t v[RS_CODEC_MAX_SLOTS];

    if ((int)b->scope < 0 || b->scope > RS_AVRO_SCOPE_INVOICE || b->snapshot_key == NULL ||
        b->contract_id == NULL || b->customer_id == NULL || b->currency == NULL)
        return 1;
    memset(v, 0, sizeof v);
    v_str(&v[RS_F_DB_SNAPSHOT_KEY], b->snapshot_key);
    v_str(&v[RS_F_DB_CONTRACT_ID], b->contract_id);
    v_str(&v[RS_F_DB_CUSTOMER_ID], b->customer_id);
    v_strn(&v[RS_F_DB_SCOPE], scope_name[b->scope], scope_n[b->scope]);
    v_str(&v[RS_F_DB_LINE_ID], b->line_id && b->line_id[0] ? b->line_id : NULL);
    v_str(&v[RS_F_DB_INVOICE_ID], b->invoice_id && b->invoice_id[0] ? b->invoice_id : NULL);
    v_str(&v[RS_F_DB_CURRENCY], b->currency);
    v_long(&v[RS_F_DB_EXPONENT], b->exponent, RS_DV_INT);
    v_long(&v[RS_F_DB_BILLED], b->billed, RS_DV_LONG);
    v_long(&v[RS_F_DB_RECOGNIZED], b->recognized, RS_DV_LONG);
    v_long(&v[RS_F_DB_DEFERRED], b->deferred, RS_DV_LONG);
    v_long(&v[RS_F_DB_UNBILLED], b->unbilled, RS_DV_LONG);
    v_long(&v[RS_F_DB_RECEIVED], b->received, RS_DV_LONG);
    v_period(&c->dmemo, 0, &v[RS_F_DB_AS_OF_PERIOD], b->as_of_period);
    return put_message(c, ent, RS_RK_DEFERRED_BALANCE, v, buf, len);
}
