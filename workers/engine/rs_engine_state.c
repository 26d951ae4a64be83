/*
 * rs_engine_state.c — the engine's durable records: one per contract and one
 * for the engine's meta state (see "durable state" in rs_engine.h).
 *
 * Invariants:
 *   - A record is a versioned little-endian binary encoding of exactly the
 *     state in rs_engine_internal.h: import(export(c)) reproduces c field for
 *     field, so an engine restored from its records posts what the original
 *     would have (same entries, same ids).
 *   - Decoding checks every length against the bytes present and every
 *     string against its field's size before copying; a short, long or
 *     corrupt record is an error ("contract record: <what>"), never a crash
 *     or a huge allocation.
 *   - Ownership: export returns a malloc'd buffer; import copies what it
 *     needs and keeps nothing of the caller's buffer.
 *   - The format does not follow the in-memory layout: strings are written
 *     as length and bytes whether the engine holds them in a contract's
 *     arena, interns them or keeps them static, and a waiting event is kept
 *     in memory in the very encoding a record has (rs_eng_pending_pack), so
 *     records are byte for byte what version 1 always wrote. Import rebuilds
 *     the arena from the record's strings only (no dead text survives it).
 *   - Import refuses, besides malformed records, component ids and accounts
 *     the in-memory state cannot hold (see rs_posted_t); the engine never
 *     writes such records.
 *   - A contract whose recognition is suspended (reverse_revenue write-off)
 *     ends its record with the suspension date (4 bytes); a record without
 *     that trailer is one without a suspension, so every record written
 *     before suspensions existed reads the same. The meta record likewise
 *     ends with the horizon history (lazy close) only when it has one.
 *     Derived caches (a usage line's usage sum) are not written: import
 *     recounts them.
 *   - The packed form (rs_engine_pack_contract: the record the worker
 *     stores and changelogs, and replay's form for contracts held in
 *     memory) is the same sequence of fields after one PACK_TAG byte instead of the
 *     magic and version: integers as LEB128 varints (signed ones
 *     zigzag-mapped; a 32-bit one's INT32_MIN, the "none" of dates and
 *     periods, as 0 and the others one above), idempotency hashes fixed 8 bytes, each string as
 * 2n and its n bytes or as 2i+1 for the record's i-th non-empty string (the first STR_REFS are
 * numbered), a waiting event as its length and its fixed-width bytes, a posted cell's period as
 * the difference from the previous cell's and its component and account as one integer (comp *
 * 16 + account), and a suspension trailer as any bytes left. Import tells the forms apart by
 * the first byte and checks the packed one as strictly as a record.
 *   - Both forms are stored formats: stores and changelogs written before
 *     2026-12-07 hold records, later ones packed records (and a store
 *     carried over holds both), so import reads either for good, and a
 *     change to either layout takes a new magic, version or tag byte.
 */
#include <stdlib.h>
#include <string.h>

#include "rs_engine.h"
#include "rs_engine_internal.h"

#include <stdio.h>

#define CONTRACT_MAGIC 0x54435352u /* "RSCT" */
#define META_MAGIC 0x4d455352u     /* "RSEM" */
#define RECORD_VERSION 1u
#define PACK_TAG 0xc1u       /* first byte of a packed contract (a record's is 'R') */
#define MAX_COUNT (1u << 24) /* no array in a record is longer */

/* ---- writer ---- */

#define STR_REFS 32    /* the packed form's numbered strings (w_str) */
#define STR_CLASSES 64 /* classes of them (str_class) */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int err;
    int compact; /* the packed form: variable-length integers */
    /* the packed form's strings so far (w_str): offset and length of each
     * of the first STR_REFS non-empty ones, and for each class (str_class)
     * the set of those in it (bit i: string i), so a lookup compares only
     * the strings that may be equal */
    uint32_t soff[STR_REFS], slen[STR_REFS];
    uint32_t sclass[STR_CLASSES];
    int ns;
} wbuf_t;
_Static_assert(STR_REFS <= 32, "a class is a 32-bit set of numbered strings");

/* w_room's slow path: grow the buffer (or fail). */
static int w_grow(wbuf_t *w, size_t n)
{
    if (w->err)
        return -1;
    size_t nc = w->cap ? w->cap * 2 : 1024;
    while (nc < w->n + n)
        nc *= 2;
    unsigned char *np = realloc(w->p, nc);
    if (np == NULL) {
        w->err = 1;
        return -1;
    }
    w->p = np;
    w->cap = nc;
    return 0;
}

/* Room for n more bytes: 0, or -1 (w->err set) on ENOMEM. Inline: every
 * field of a record asks. */
static inline int w_room(wbuf_t *w, size_t n)
{
    return !w->err && w->n + n <= w->cap ? 0 : w_grow(w, n);
}

static void w_raw(wbuf_t *w, const void *src, size_t n)
{
    if (n == 0 || w_room(w, n))
        return;
    memcpy(w->p + w->n, src, n);
    w->n += n;
}

/* The packed form's integers: 7 bits a byte, low first (LEB128); signed
 * ones zigzag-mapped first, so small magnitudes take one byte. Written in
 * place (a record is mostly these: no copy through a buffer). */
static inline void w_var(wbuf_t *w, uint64_t v)
{
    if (w_room(w, 10))
        return;
    unsigned char *b = w->p + w->n;
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (unsigned char)v;
    w->n += n;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

/* Eight bytes in either form (hashes: a varint would be longer). */
static inline void w_fix64(wbuf_t *w, uint64_t v)
{
    if (w_room(w, 8))
        return;
    unsigned char *b = w->p + w->n;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    w->n += 8;
}

static inline void w_u64(wbuf_t *w, uint64_t v)
{
    if (w->compact)
        w_var(w, v);
    else
        w_fix64(w, v);
}

static inline void w_u32(wbuf_t *w, uint32_t v)
{
    if (w->compact) {
        w_var(w, v);
        return;
    }
    if (w_room(w, 4))
        return;
    unsigned char *b = w->p + w->n;
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    w->n += 4;
}

/* A packed 32-bit integer: 0 for INT32_MIN (RS_DATE_NONE, RS_PERIOD_NONE:
 * five bytes zigzag-mapped), else its zigzag value plus one. */
static inline void w_i32(wbuf_t *w, int32_t v)
{
    if (w->compact)
        w_var(w, v == INT32_MIN ? 0 : zigzag(v) + 1);
    else
        w_u32(w, (uint32_t)v);
}

static inline void w_i64(wbuf_t *w, int64_t v)
{
    if (w->compact)
        w_var(w, zigzag(v));
    else
        w_u64(w, (uint64_t)v);
}

static void w_i128(wbuf_t *w, __int128 v)
{
    w_u64(w, (uint64_t)v);
    w_i64(w, (int64_t)(uint64_t)((unsigned __int128)v >> 64));
}

/* The class of a non-empty string of length n: equal strings have equal
 * classes. Length and last byte: ids of one length mostly differ there
 * (a counter at the end). */
static inline unsigned str_class(const char *s, size_t n)
{
    return (unsigned)((n + (size_t)7 * (unsigned char)s[n - 1]) % STR_CLASSES);
}

static void w_str(wbuf_t *w, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0; /* NULL: written as "" */
    if (!w->compact) {
        w_u32(w, (uint32_t)n);
        w_raw(w, s, n);
        return;
    }
    /* packed: 2n for n bytes that follow, 2i+1 for the record's string i
     * (a contract repeats its event ids as sources). A string is written
     * out once and numbered once, so at most one numbered string equals s:
     * only those of s's class are compared. */
    unsigned cls = n > 0 ? str_class(s, n) : 0;
    uint32_t cand = n > 0 && !w->err ? w->sclass[cls] : 0;
    while (cand != 0) {
        int i = __builtin_ctz(cand);
        cand &= cand - 1;
        if (w->slen[i] == n && memcmp(w->p + w->soff[i], s, n) == 0) {
            w_var(w, (uint64_t)i * 2 + 1);
            return;
        }
    }
    w_var(w, (uint64_t)n * 2);
    if (n > 0 && w->ns < STR_REFS && w->n <= UINT32_MAX && !w->err) {
        w->sclass[cls] |= 1u << w->ns;
        w->soff[w->ns] = (uint32_t)w->n;
        w->slen[w->ns++] = (uint32_t)n;
    }
    w_raw(w, s, n);
}

static void w_dec(wbuf_t *w, rs_decimal_t d)
{
    w_i64(w, d.mantissa);
    w_i32(w, d.scale);
}

/* ---- reader ---- */

typedef struct rbuf {
    const unsigned char *p;
    size_t n, off;
    const char *err; /* first error */
    int own;         /* the engine's own bytes (a waiting event's blob): take
                        decimals as they were written, checked or not */
    int compact;     /* the packed form (see w_var, w_str) */
    size_t soff[STR_REFS], slen[STR_REFS]; /* as wbuf_t's */
    int ns;
} rbuf_t;

static int r_need(rbuf_t *r, size_t n, const char *what)
{
    if (r->err)
        return -1;
    if (n > r->n - r->off) {
        r->err = what;
        return -1;
    }
    return 0;
}

static uint64_t r_var(rbuf_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r_need(r, 1, "truncated"))
            return 0;
        unsigned char b = r->p[r->off++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->err = r->err ? r->err : "bad variable-length integer";
    return 0;
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static uint64_t r_fix64(rbuf_t *r)
{
    if (r_need(r, 8, "truncated"))
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += 8;
    return v;
}

static uint64_t r_u64(rbuf_t *r)
{
    return r->compact ? r_var(r) : r_fix64(r);
}

static uint32_t r_u32(rbuf_t *r)
{
    if (r->compact) {
        uint64_t v = r_var(r);
        if (v > UINT32_MAX && !r->err)
            r->err = "integer out of range";
        return (uint32_t)v;
    }
    if (r_need(r, 4, "truncated"))
        return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[r->off + i] << (8 * i);
    r->off += 4;
    return v;
}

static int32_t r_i32(rbuf_t *r)
{
    if (r->compact) { /* see w_i32 */
        uint64_t u = r_var(r);
        int64_t v = u == 0 ? INT32_MIN : unzigzag(u - 1);
        if ((v < INT32_MIN || v > INT32_MAX) && !r->err)
            r->err = "integer out of range";
        return (int32_t)v;
    }
    return (int32_t)r_u32(r);
}

/* An enum the engine keeps in a byte (0..255), else `what` is the error. */
static uint8_t r_u8(rbuf_t *r, const char *what)
{
    int32_t v = r_i32(r);
    if (!r->err && (v < 0 || v > UINT8_MAX))
        r->err = what;
    return (uint8_t)v;
}

static int64_t r_i64(rbuf_t *r)
{
    return r->compact ? unzigzag(r_var(r)) : (int64_t)r_fix64(r);
}

static __int128 r_i128(rbuf_t *r)
{
    uint64_t lo = r_u64(r), hi = (uint64_t)r_i64(r);
    return (__int128)(((unsigned __int128)hi << 64) | lo);
}

static void r_str(rbuf_t *r, char *dst, size_t size)
{
    if (r->compact) {
        uint64_t v = r_var(r);
        if (r->err)
            return;
        if (v & 1) { /* a string read before */
            if (v / 2 >= (uint64_t)r->ns) {
                r->err = "bad string reference";
                return;
            }
            size_t i = (size_t)(v / 2), n = r->slen[i];
            if (n >= size) {
                r->err = "string longer than its field";
                return;
            }
            memcpy(dst, r->p + r->soff[i], n);
            dst[n] = '\0';
            return;
        }
        if (v / 2 >= size) {
            r->err = "string longer than its field";
            return;
        }
        size_t n = (size_t)(v / 2);
        if (r_need(r, n, "truncated string"))
            return;
        if (n > 0 && r->ns < STR_REFS) {
            r->soff[r->ns] = r->off;
            r->slen[r->ns++] = n;
        }
        memcpy(dst, r->p + r->off, n);
        dst[n] = '\0';
        r->off += n;
        return;
    }
    uint32_t n = r_u32(r);
    if (r->err)
        return;
    if (n >= size) {
        r->err = "string longer than its field";
        return;
    }
    if (r_need(r, n, "truncated string"))
        return;
    memcpy(dst, r->p + r->off, n);
    dst[n] = '\0';
    r->off += n;
}

static rs_decimal_t r_dec(rbuf_t *r)
{
    rs_decimal_t d;
    d.mantissa = r_i64(r);
    d.scale = r_i32(r);
    if (!r->own && (d.scale < 0 || d.scale > 18))
        r->err = r->err ? r->err : "bad decimal scale";
    return d;
}

/* A count, checked against the bytes left (each item takes >= min bytes). */
static uint32_t r_count(rbuf_t *r, size_t min)
{
    uint32_t n = r_u32(r);
    if (r->err)
        return 0;
    if (r->compact && min > 1) /* an item takes a byte at least */
        min = 1;
    if (n > MAX_COUNT || (min && (size_t)n > (r->n - r->off) / min)) {
        r->err = "count larger than the record";
        return 0;
    }
    return n;
}

/* Allocate n items (n may be 0: returns NULL without error). */
static void *r_alloc(rbuf_t *r, size_t n, size_t elem)
{
    if (r->err || n == 0)
        return NULL;
    void *p = calloc(n, elem);
    if (p == NULL)
        r->err = "out of memory";
    return p;
}

/* ---- events (pending ones are part of a contract's state) ---- */

static void w_event(wbuf_t *w, const rs_event_t *ev)
{
    w_i32(w, ev->type);
    w_str(w, ev->event_id);
    w_str(w, ev->contract_id);
    w_str(w, ev->occurred_at);
    w_i32(w, ev->occurred_on);
    w_str(w, ev->customer_id);
    w_str(w, ev->currency);
    w_i32(w, ev->booked_on);
    w_str(w, ev->source_system);
    w_str(w, ev->source_record_id);
    w_i32(w, ev->effective_on);
    w_i32(w, ev->treatment);
    w_u32(w, (uint32_t)ev->n_lines);
    for (int i = 0; i < ev->n_lines; i++) {
        const rs_line_spec_t *l = &ev->lines[i];
        w_str(w, l->line_id);
        w_str(w, l->product);
        w_i32(w, l->recognition);
        w_i32(w, l->start);
        w_i32(w, l->end);
        w_dec(w, l->amount);
        w_i32(w, l->has_ssp);
        w_dec(w, l->ssp);
        w_i32(w, l->has_unit_price);
        w_dec(w, l->unit_price);
        w_u32(w, (uint32_t)l->n_milestones);
        for (int k = 0; k < l->n_milestones; k++) {
            w_str(w, l->milestones[k].milestone_id);
            w_dec(w, l->milestones[k].amount);
        }
    }
    w_str(w, ev->line_id);
    w_str(w, ev->milestone_id);
    w_i32(w, ev->completed_on);
    w_i32(w, ev->period);
    w_str(w, ev->invoice_id);
    w_str(w, ev->credit_note_id);
    w_str(w, ev->payment_id);
    w_str(w, ev->refund_id);
    w_i32(w, ev->on);
    w_i32(w, ev->due_on);
    w_i32(w, ev->reason);
    w_str(w, ev->failure_reason);
    w_dec(w, ev->amount);
    w_u32(w, (uint32_t)ev->n_bill_lines);
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        w_str(w, b->line_id);
        w_dec(w, b->amount);
        w_i32(w, b->has_tax);
        w_dec(w, b->tax);
        w_i32(w, b->service_start);
        w_i32(w, b->service_end);
    }
    w_dec(w, ev->quantity);
}

static void r_event(rbuf_t *r, rs_event_t *ev)
{
    rs_event_init(ev);
    ev->type = (rs_event_type_t)r_i32(r);
    if (!r->err && rs_event_type_name(ev->type) == NULL)
        r->err = "pending event of unknown type";
    r_str(r, ev->event_id, sizeof(ev->event_id));
    r_str(r, ev->contract_id, sizeof(ev->contract_id));
    r_str(r, ev->occurred_at, sizeof(ev->occurred_at));
    ev->occurred_on = r_i32(r);
    r_str(r, ev->customer_id, sizeof(ev->customer_id));
    r_str(r, ev->currency, sizeof(ev->currency));
    ev->booked_on = r_i32(r);
    r_str(r, ev->source_system, sizeof(ev->source_system));
    r_str(r, ev->source_record_id, sizeof(ev->source_record_id));
    ev->effective_on = r_i32(r);
    ev->treatment = (rs_treatment_t)r_i32(r);
    uint32_t nl = r_count(r, 40);
    ev->lines = r_alloc(r, nl, sizeof(*ev->lines));
    for (uint32_t i = 0; i < nl && !r->err; i++) {
        rs_line_spec_t *l = &ev->lines[i];
        ev->n_lines = (int)i + 1;
        r_str(r, l->line_id, sizeof(l->line_id));
        r_str(r, l->product, sizeof(l->product));
        l->recognition = (rs_method_t)r_i32(r);
        l->start = r_i32(r);
        l->end = r_i32(r);
        l->amount = r_dec(r);
        l->has_ssp = r_i32(r);
        l->ssp = r_dec(r);
        l->has_unit_price = r_i32(r);
        l->unit_price = r_dec(r);
        uint32_t nm = r_count(r, 16);
        l->milestones = r_alloc(r, nm, sizeof(*l->milestones));
        for (uint32_t k = 0; k < nm && !r->err; k++) {
            l->n_milestones = (int)k + 1;
            r_str(r, l->milestones[k].milestone_id, sizeof(l->milestones[k].milestone_id));
            l->milestones[k].amount = r_dec(r);
        }
    }
    r_str(r, ev->line_id, sizeof(ev->line_id));
    r_str(r, ev->milestone_id, sizeof(ev->milestone_id));
    ev->completed_on = r_i32(r);
    ev->period = r_i32(r);
    r_str(r, ev->invoice_id, sizeof(ev->invoice_id));
    r_str(r, ev->credit_note_id, sizeof(ev->credit_note_id));
    r_str(r, ev->payment_id, sizeof(ev->payment_id));
    r_str(r, ev->refund_id, sizeof(ev->refund_id));
    ev->on = r_i32(r);
    ev->due_on = r_i32(r);
    ev->reason = (rs_credit_reason_t)r_i32(r);
    r_str(r, ev->failure_reason, sizeof(ev->failure_reason));
    ev->amount = r_dec(r);
    uint32_t nb = r_count(r, 30);
    ev->bill_lines = r_alloc(r, nb, sizeof(*ev->bill_lines));
    for (uint32_t i = 0; i < nb && !r->err; i++) {
        rs_bill_line_t *b = &ev->bill_lines[i];
        ev->n_bill_lines = (int)i + 1;
        r_str(r, b->line_id, sizeof(b->line_id));
        b->amount = r_dec(r);
        b->has_tax = r_i32(r);
        b->tax = r_dec(r);
        b->service_start = r_i32(r);
        b->service_end = r_i32(r);
    }
    ev->quantity = r_dec(r);
}

/* ---- waiting events: the blob of rs_pending_t ---- */

int rs_eng_pending_pack(rs_pending_t *p, const rs_event_t *ev, const char *waiting_for,
                        int hint, const char *hint_id)
{
    size_t nw = strnlen(waiting_for, RS_ID_MAX + 15), ni = strnlen(ev->event_id, RS_ID_MAX - 1);
    size_t nh = strnlen(hint_id, RS_ID_MAX - 1);
    wbuf_t w = {0};
    w_raw(&w, waiting_for, nw);
    w_raw(&w, "", 1);
    w_raw(&w, ev->event_id, ni);
    w_raw(&w, "", 1);
    w_raw(&w, hint_id, nh);
    w_raw(&w, "", 1);
    w_event(&w, ev);
    if (w.err || w.n > UINT32_MAX) {
        free(w.p);
        return -1;
    }
    unsigned char *exact = realloc(w.p, w.n); /* the writer grows by doubling */
    p->blob = (char *)(exact ? exact : w.p);
    p->len = (uint32_t)w.n;
    p->id_off = (uint16_t)(nw + 1);
    p->hint_off = (uint16_t)(nw + 1 + ni + 1);
    p->ev_off = (uint32_t)(nw + 1 + ni + 1 + nh + 1);
    p->hint = (uint8_t)hint;
    p->type = ev->type;
    return 0;
}

int rs_eng_pending_unpack(const rs_pending_t *p, rs_event_t *ev)
{
    rbuf_t r = {
        .p = (const unsigned char *)p->blob + p->ev_off, .n = p->len - p->ev_off, .own = 1};
    r_event(&r, ev);
    if (r.err) {
        rs_event_clear(ev);
        return -1;
    }
    return 0;
}

/* ---- contract strings ---- */

/* A string of at most size - 1 bytes into c's arena. */
static void r_cstr(rbuf_t *r, rs_contract_t *c, size_t size, rs_eng_str_t *out)
{
    char tmp[RS_ID_MAX + 16];
    if (size > sizeof(tmp))
        size = sizeof(tmp);
    r_str(r, tmp, size);
    if (!r->err && rs_eng_str_put(c, tmp, size, out))
        r->err = "out of memory";
}

static void r_rule(rbuf_t *r, rs_contract_t *c, rs_eng_str_t *out)
{
    char tmp[RS_ENG_RULE_MAX];
    r_str(r, tmp, sizeof(tmp));
    if (!r->err && rs_eng_rule_put(c, tmp, out))
        r->err = "out of memory";
}

static void r_product(rbuf_t *r, rs_engine_t *e, const char **out)
{
    char tmp[RS_NAME_MAX];
    r_str(r, tmp, sizeof(tmp));
    if (!r->err && (*out = rs_eng_intern(e, tmp, sizeof(tmp))) == NULL)
        r->err = "out of memory";
}

static rs_account_t r_account(rbuf_t *r)
{
    int32_t a = r_i32(r);
    if (!r->err && (a < 0 || a >= RS_ACCT__COUNT))
        r->err = "bad account";
    return (rs_account_t)a;
}

/* ---- lines ---- */

static void w_line(wbuf_t *w, const rs_contract_t *k, const rs_line_t *l)
{
    w_str(w, rs_eng_str(k, l->line_id));
    w_str(w, l->product);
    w_i32(w, l->method);
    w_i32(w, l->start);
    w_i32(w, l->end);
    w_i32(w, l->ended_on);
    w_i64(w, l->amount);
    w_i64(w, l->price);
    w_i32(w, l->has_ssp);
    w_i64(w, l->ssp);
    w_str(w, rs_eng_str(k, l->terms_source));
    w_i32(w, l->next_comp);
    w_u32(w, (uint32_t)l->nchg);
    for (int i = 0; i < l->nchg; i++) {
        const rs_change_t *c = &l->chg[i];
        w_i32(w, c->id);
        w_i32(w, c->kind);
        w_i32(w, c->booking);
        w_i32(w, c->on);
        w_i32(w, c->treatment);
        w_i32(w, c->method);
        w_i32(w, c->start);
        w_i32(w, c->end);
        w_i64(w, c->amount);
        w_i32(w, c->forfeit);
        w_dec(w, c->unit_price);
        w_i32(w, c->account);
        w_str(w, rs_eng_str(k, c->rule));
        w_str(w, rs_eng_str(k, c->source));
    }
    w_u32(w, (uint32_t)l->nbill);
    for (int i = 0; i < l->nbill; i++) {
        w_i32(w, l->bill[i].on);
        w_i64(w, l->bill[i].amount);
    }
    w_u32(w, (uint32_t)l->nseg);
    for (int i = 0; i < l->nseg; i++) {
        const rs_seg_t *s = &l->segs[i];
        w_i32(w, s->id);
        w_i32(w, s->eff);
        w_i32(w, s->from);
        w_i32(w, s->to);
        w_i32(w, s->method);
        w_i64(w, s->base);
        w_i64(w, s->spread);
        w_i64(w, s->jump);
        w_i32(w, s->jump_account);
        w_str(w, rs_eng_str(k, s->jump_rule));
        w_str(w, rs_eng_str(k, s->source));
    }
    w_u32(w, (uint32_t)l->nadj);
    for (int i = 0; i < l->nadj; i++) {
        const rs_adj_t *a = &l->adj[i];
        w_i32(w, a->id);
        w_i32(w, a->on);
        w_i64(w, a->amount);
        w_i32(w, a->account);
        w_str(w, rs_eng_str(k, a->rule));
        w_str(w, rs_eng_str(k, a->source));
    }
    w_u32(w, (uint32_t)l->nms);
    for (int i = 0; i < l->nms; i++) {
        w_str(w, rs_eng_str(k, l->ms[i].milestone_id));
        w_i64(w, l->ms[i].amount);
        w_i32(w, l->ms[i].completed_on);
        w_str(w, rs_eng_str(k, l->ms[i].source));
    }
    w_u32(w, (uint32_t)l->nuprice);
    for (int i = 0; i < l->nuprice; i++) {
        w_i32(w, l->uprice[i].eff);
        w_dec(w, l->uprice[i].price);
    }
    w_u32(w, (uint32_t)l->nusage);
    for (size_t i = 0; i < l->nusage; i++) {
        w_i32(w, l->usage[i].day);
        w_i128(w, rs_eng_usage_qty(&l->usage[i]));
        w_u32(w, l->usage[i].count);
    }
    w_u32(w, (uint32_t)l->nposted);
    for (size_t i = 0; i < l->nposted; i++) {
        if (w->compact) { /* the period from the previous cell's; comp and account in one */
            w_i32(w, l->posted[i].sp - (i > 0 ? l->posted[i - 1].sp : 0));
            w_u32(w, (uint32_t)l->posted[i].comp << 4 | (uint32_t)l->posted[i].account);
            w_i64(w, l->posted[i].amount);
            continue;
        }
        w_i32(w, l->posted[i].sp);
        w_i32(w, (int32_t)l->posted[i].comp);
        w_i32(w, (int32_t)l->posted[i].account);
        w_i64(w, l->posted[i].amount);
    }
    w_i64(w, l->billed);
    w_i64(w, l->recognized);
    w_i64(w, l->deferred);
    w_i64(w, l->unbilled);
    w_i64(w, l->received);
}

static void r_line(rbuf_t *r, rs_engine_t *e, rs_contract_t *k, rs_line_t *l)
{
    r_cstr(r, k, RS_ID_MAX, &l->line_id);
    r_product(r, e, &l->product);
    l->method = r_u8(r, "bad recognition method");
    l->start = r_i32(r);
    l->end = r_i32(r);
    l->ended_on = r_i32(r);
    l->amount = r_i64(r);
    l->price = r_i64(r);
    l->has_ssp = r_i32(r) != 0;
    l->ssp = r_i64(r);
    r_cstr(r, k, RS_ID_MAX, &l->terms_source);
    l->next_comp = r_i32(r);
    uint32_t n = r_count(r, 60);
    l->chg = r_alloc(r, n, sizeof(*l->chg));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        rs_change_t *c = &l->chg[i];
        l->nchg = l->capchg = (int)i + 1;
        c->id = r_i32(r);
        c->kind = r_u8(r, "bad change kind");
        c->booking = r_i32(r) != 0;
        c->on = r_i32(r);
        c->treatment = r_u8(r, "bad change treatment");
        c->method = r_u8(r, "bad recognition method");
        c->start = r_i32(r);
        c->end = r_i32(r);
        c->amount = r_i64(r);
        c->forfeit = r_i32(r) != 0;
        c->unit_price = r_dec(r);
        c->account = r_account(r);
        r_rule(r, k, &c->rule);
        r_cstr(r, k, RS_ID_MAX, &c->source);
    }
    n = r_count(r, 12);
    l->bill = r_alloc(r, n, sizeof(*l->bill));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        l->nbill = l->capbill = (int)i + 1;
        l->bill[i].on = r_i32(r);
        l->bill[i].amount = r_i64(r);
    }
    n = r_count(r, 60);
    l->segs = r_alloc(r, n, sizeof(*l->segs));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        rs_seg_t *s = &l->segs[i];
        l->nseg = l->capseg = (int)i + 1;
        s->id = r_i32(r);
        s->eff = r_i32(r);
        s->from = r_i32(r);
        s->to = r_i32(r);
        s->method = (rs_method_t)r_i32(r);
        s->base = r_i64(r);
        s->spread = r_i64(r);
        s->jump = r_i64(r);
        s->jump_account = r_account(r);
        r_rule(r, k, &s->jump_rule);
        r_cstr(r, k, RS_ID_MAX, &s->source);
    }
    n = r_count(r, 28);
    l->adj = r_alloc(r, n, sizeof(*l->adj));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        rs_adj_t *a = &l->adj[i];
        l->nadj = l->capadj = (int)i + 1;
        a->id = r_i32(r);
        a->on = r_i32(r);
        a->amount = r_i64(r);
        a->account = r_account(r);
        r_rule(r, k, &a->rule);
        r_cstr(r, k, RS_ID_MAX, &a->source);
    }
    n = r_count(r, 20);
    l->ms = r_alloc(r, n, sizeof(*l->ms));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        l->nms = (int)i + 1;
        r_cstr(r, k, RS_ID_MAX, &l->ms[i].milestone_id);
        l->ms[i].amount = r_i64(r);
        l->ms[i].completed_on = r_i32(r);
        r_cstr(r, k, RS_ID_MAX, &l->ms[i].source);
    }
    n = r_count(r, 16);
    l->uprice = r_alloc(r, n, sizeof(*l->uprice));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        l->nuprice = l->capuprice = (int)i + 1;
        l->uprice[i].eff = r_i32(r);
        l->uprice[i].price = r_dec(r);
    }
    n = r_count(r, 24);
    l->usage = r_alloc(r, n, sizeof(*l->usage));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        l->nusage = l->capusage = i + 1;
        l->usage[i].day = r_i32(r);
        rs_eng_usage_set_qty(&l->usage[i], r_i128(r));
        l->usage[i].count = r_u32(r);
    }
    n = r_count(r, 20);
    l->posted = r_alloc(r, n, sizeof(*l->posted));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        l->nposted = l->capposted = i + 1;
        int32_t comp;
        if (r->compact) { /* see w_line */
            l->posted[i].sp = r_i32(r) + (i > 0 ? l->posted[i - 1].sp : 0);
            uint32_t v = r_u32(r);
            comp = (int32_t)(v >> 4);
            if (!r->err && (v & 15u) >= RS_ACCT__COUNT)
                r->err = "bad account";
            l->posted[i].account = v & 15u;
        } else {
            l->posted[i].sp = r_i32(r);
            comp = r_i32(r);
        }
        if (!r->err && (comp < 0 || comp > RS_ENG_COMP_MAX))
            r->err = "bad component id";
        l->posted[i].comp = r->err ? 0 : comp;
        if (!r->compact)
            l->posted[i].account = (unsigned int)r_account(r) & 15u;
        l->posted[i].amount = r_i64(r);
    }
    l->billed = r_i64(r);
    l->recognized = r_i64(r);
    l->deferred = r_i64(r);
    l->unbilled = r_i64(r);
    l->received = r_i64(r);
}

/* ---- contracts ---- */

/* A contract record (rs_engine_export_contract), or its packed form
 * (rs_engine_pack_contract): PACK_TAG, then the same fields with
 * variable-length integers and repeated strings by reference. */
static int export_contract(const rs_engine_t *e, const char *contract_id, void **buf,
                           size_t *len, int compact, char *errstr, size_t errlen)
{
    const rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL)
        return 1;
    wbuf_t w = {0};
    w.compact = compact;
    if (compact) {
        unsigned char tag = PACK_TAG;
        w_raw(&w, &tag, 1);
    } else {
        w_u32(&w, CONTRACT_MAGIC);
        w_u32(&w, RECORD_VERSION);
    }
    w_str(&w, c->contract_id);
    w_str(&w, rs_eng_str(c, c->customer_id));
    w_str(&w, c->currency);
    w_i32(&w, c->exponent);
    w_i32(&w, c->booked);
    w_str(&w, rs_eng_str(c, c->booked_by));
    w_i32(&w, c->booked_on);
    w_i32(&w, c->cancelled_on);
    w_i32(&w, c->horizon);
    w_i32(&w, c->frontier);
    w_i32(&w, c->dirty_from);
    w_u64(&w, c->seq);
    w_i64(&w, c->customer_credit);
    w_i64(&w, c->written_off);
    w_u32(&w, (uint32_t)c->nlines);
    for (int i = 0; i < c->nlines; i++)
        w_line(&w, c, &c->lines[i]);
    w_u32(&w, (uint32_t)c->ninv);
    for (int i = 0; i < c->ninv; i++) {
        const rs_invoice_t *v = &c->inv[i];
        w_str(&w, rs_eng_str(c, v->invoice_id));
        w_str(&w, rs_eng_str(c, v->source));
        w_i32(&w, v->issued_on);
        w_i32(&w, v->voided);
        w_i32(&w, v->uncollectible);
        w_i64(&w, v->credit);
        w_u32(&w, (uint32_t)v->nlines);
        for (int k = 0; k < v->nlines; k++) {
            const rs_inv_line_t *il = &v->lines[k];
            w_i32(&w, il->line);
            w_i64(&w, il->amount);
            w_i64(&w, il->tax);
            w_i64(&w, il->paid);
            w_i64(&w, il->credited);
            w_i64(&w, il->credit_tax);
            w_i64(&w, il->allowance);
        }
    }
    w_u32(&w, (uint32_t)c->npay);
    for (int i = 0; i < c->npay; i++) {
        w_str(&w, rs_eng_str(c, c->pay[i].payment_id));
        w_str(&w, rs_eng_str(c, c->pay[i].source));
        w_i32(&w, c->pay[i].invoice);
        w_i64(&w, c->pay[i].amount);
        w_i64(&w, c->pay[i].refunded);
        w_i32(&w, c->pay[i].failed);
    }
    w_u32(&w, (uint32_t)c->ndocs);
    for (int i = 0; i < c->ndocs; i++)
        w_str(&w, rs_eng_str(c, c->docs[i]));
    w_u32(&w, (uint32_t)c->npend);
    for (size_t i = 0; i < c->npend; i++) {
        const rs_pending_t *p = &c->pend[i];
        w_str(&w, p->blob); /* waiting_for */
        if (w.compact)      /* the event as the blob holds it, with its length */
            w_u32(&w, p->len - p->ev_off);
        w_raw(&w, p->blob + p->ev_off, p->len - p->ev_off);
    }
    w_u32(&w, (uint32_t)c->nseen);
    for (size_t i = 0; i < c->capseen; i++)
        if (c->seen[i].id_hash) {
            w_fix64(&w, c->seen[i].id_hash);
            w_fix64(&w, c->seen[i].content_hash);
        }
    /* optional trailer: a suspension (so a record without one is byte for
     * byte what version 1 always wrote) */
    if (c->suspended_on != RS_DATE_NONE)
        w_i32(&w, c->suspended_on);
    if (w.err) {
        free(w.p);
        snprintf(errstr, errlen, "contract %s: out of memory exporting", contract_id);
        return -1;
    }
    if (compact) { /* kept: the exact size (the writer grows by doubling) */
        unsigned char *exact = realloc(w.p, w.n);
        if (exact != NULL)
            w.p = exact;
    }
    *buf = w.p;
    *len = w.n;
    return 0;
}

int rs_engine_export_contract(const rs_engine_t *e, const char *contract_id, void **buf,
                              size_t *len, char *errstr, size_t errlen)
{
    return export_contract(e, contract_id, buf, len, 0, errstr, errlen);
}

int rs_engine_pack_contract(const rs_engine_t *e, const char *contract_id, void **buf,
                            size_t *len, char *errstr, size_t errlen)
{
    return export_contract(e, contract_id, buf, len, 1, errstr, errlen);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

/* Everything of a contract record after its id, into c (fresh, empty). */
static void r_contract(rbuf_t *r, rs_engine_t *e, rs_contract_t *c)
{
    r_cstr(r, c, RS_ID_MAX, &c->customer_id);
    r_str(r, c->currency, sizeof(c->currency));
    int32_t exponent = r_i32(r); /* checked below, before it narrows */
    c->booked = r_i32(r) != 0;
    r_cstr(r, c, RS_ID_MAX, &c->booked_by);
    c->booked_on = r_i32(r);
    c->cancelled_on = r_i32(r);
    c->horizon = r_i32(r);
    c->frontier = r_i32(r);
    c->dirty_from = r_i32(r);
    c->seq = r_u64(r);
    c->customer_credit = r_i64(r);
    c->written_off = r_i64(r);
    if (!r->err && (exponent < 0 || exponent > 4))
        r->err = "bad currency exponent";
    c->exponent = (uint8_t)(r->err ? 0 : exponent);
    uint32_t n = r_count(r, 100);
    c->lines = r_alloc(r, n, sizeof(*c->lines));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        c->nlines = c->caplines = (int)i + 1;
        r_line(r, e, c, &c->lines[i]);
        if (!r->err && c->lines[i].method == RS_METHOD_USAGE)
            rs_eng_usage_recount(&c->lines[i]);
    }
    n = r_count(r, 40);
    c->inv = r_alloc(r, n, sizeof(*c->inv));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        rs_invoice_t *v = &c->inv[i];
        c->ninv = c->capinv = (int)i + 1;
        r_cstr(r, c, RS_ID_MAX, &v->invoice_id);
        r_cstr(r, c, RS_ID_MAX, &v->source);
        v->issued_on = r_i32(r);
        v->voided = r_i32(r);
        v->uncollectible = r_i32(r);
        v->credit = r_i64(r);
        uint32_t nl = r_count(r, 52);
        v->lines = r_alloc(r, nl, sizeof(*v->lines));
        for (uint32_t k = 0; k < nl && !r->err; k++) {
            rs_inv_line_t *il = &v->lines[k];
            v->nlines = (int)k + 1;
            il->line = r_i32(r);
            if (!r->err && (il->line < 0 || il->line >= c->nlines))
                r->err = "invoice line names no line";
            il->amount = r_i64(r);
            il->tax = r_i64(r);
            il->paid = r_i64(r);
            il->credited = r_i64(r);
            il->credit_tax = r_i64(r);
            il->allowance = r_i64(r);
        }
    }
    n = r_count(r, 36);
    c->pay = r_alloc(r, n, sizeof(*c->pay));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        rs_payment_t *p = &c->pay[i];
        c->npay = c->cappay = (int)i + 1;
        r_cstr(r, c, RS_ID_MAX, &p->payment_id);
        r_cstr(r, c, RS_ID_MAX, &p->source);
        p->invoice = r_i32(r);
        if (!r->err && (p->invoice < 0 || p->invoice >= c->ninv))
            r->err = "payment names no invoice";
        p->amount = r_i64(r);
        p->refunded = r_i64(r);
        p->failed = r_i32(r);
    }
    n = r_count(r, 4);
    c->docs = r_alloc(r, n, sizeof(*c->docs));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        c->ndocs = c->capdocs = (int)i + 1;
        r_cstr(r, c, RS_ID_MAX, &c->docs[i]);
    }
    n = r_count(r, 100);
    c->pend = r_alloc(r, n, sizeof(*c->pend));
    for (uint32_t i = 0; i < n && !r->err; i++) {
        char wait[RS_ID_MAX + 16];
        rs_event_t ev;
        r_str(r, wait, sizeof(wait));
        if (r->compact) { /* a fixed-width event of the length given */
            uint32_t evlen = r_u32(r);
            rs_event_init(&ev);
            if (!r_need(r, evlen, "truncated pending event")) {
                rbuf_t sub = {.p = r->p + r->off, .n = evlen};
                r_event(&sub, &ev);
                if (sub.err || sub.off != sub.n)
                    r->err = sub.err ? sub.err : "bad pending event";
                r->off += evlen;
            }
        } else {
            r_event(r, &ev);
        }
        if (!r->err) {
            /* kept as it was written; its hint is asked of the restored contract */
            const char *id;
            int hint = rs_eng_wait_kind(c, &ev, &id);
            if (rs_eng_pending_pack(&c->pend[i], &ev, wait, hint, id)) {
                r->err = "out of memory";
            } else {
                c->npend = c->cappend = i + 1;
                c->pend_bytes += c->pend[i].len;
            }
        }
        rs_event_clear(&ev);
    }
    n = r_count(r, 16);
    if (!r->err && n > 0 && rs_eng_seen_cap(n) >= UINT32_MAX / 2)
        r->err = "too many idempotency entries";
    if (!r->err && n > 0) {
        c->capseen = (uint32_t)rs_eng_seen_cap(n);
        c->seen = r_alloc(r, c->capseen, sizeof(*c->seen));
        for (uint32_t i = 0; i < n && !r->err; i++) {
            uint64_t idh = r_fix64(r), ch = r_fix64(r);
            if (idh == 0) {
                r->err = "bad idempotency entry";
                break;
            }
            rs_seen_t *slot = rs_eng_seen_find(c->seen, c->capseen, idh);
            if (slot == NULL) { /* cannot be: the set holds n */
                r->err = "bad idempotency set";
                break;
            }
            if (slot->id_hash == 0)
                c->nseen++;
            slot->id_hash = idh;
            slot->content_hash = ch;
        }
        if (r->err && c->seen == NULL)
            c->capseen = 0;
    }
}

int rs_engine_import_contract(rs_engine_t *e, const void *buf, size_t len, char *errstr,
                              size_t errlen)
{
    rbuf_t r = {.p = buf, .n = len};
    char id[RS_ID_MAX] = "";
    rs_contract_t *c = NULL;
    if (len > 0 && *(const unsigned char *)buf == PACK_TAG) { /* the packed form */
        r.compact = 1;
        r.off = 1;
    } else {
        if (r_u32(&r) != CONTRACT_MAGIC && !r.err)
            r.err = "not a contract record";
        uint32_t version = r_u32(&r);
        if (!r.err && version != RECORD_VERSION)
            r.err = "unknown record version";
    }
    r_str(&r, id, sizeof(id));
    if (!r.err && (c = rs_eng_contract_new(id)) == NULL)
        r.err = "out of memory";
    if (!r.err)
        r_contract(&r, e, c);
    /* the optional suspension trailer */
    if (!r.err && (r.compact ? r.off < r.n : r.n - r.off == 4))
        c->suspended_on = r_i32(&r);
    if (!r.err && r.off != r.n)
        r.err = "trailing bytes";
    if (r.err) {
        snprintf(errstr, errlen, "contract record%s%s: %s", id[0] ? " " : "", id, r.err);
        rs_eng_contract_free(e, c);
        return -1;
    }
    rs_eng_str_shrink(c);
    /* replace whatever the engine had for this contract (rs_engine_walk.c:
     * nothing, the caller knows) */
    if (!e->import_absent)
        rs_engine_forget_contract(e, c->contract_id);
    if (rs_eng_contract_insert(e, c)) {
        snprintf(errstr, errlen, "contract %s: out of memory importing", c->contract_id);
        rs_eng_contract_free(e, c);
        return -1;
    }
    e->stats.pending += c->npend;
    return 0;
}

/* Take c out of the changed set; from the end: a contract taken out right
 * after it changed is last. */
static void unmark_changed(rs_engine_t *e, rs_contract_t *c)
{
    for (size_t k = e->nchanged; c->changed && k-- > 0;)
        if (e->changed[k] == c) {
            e->changed[k] = e->changed[--e->nchanged];
            break;
        }
    c->changed = 0;
}

int rs_engine_contract_is_changed(const rs_engine_t *e, const char *contract_id)
{
    const rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    return c != NULL && c->changed;
}

void rs_engine_contract_clear_changed(rs_engine_t *e, const char *contract_id)
{
    rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c != NULL)
        unmark_changed(e, c);
}

void rs_engine_forget_contract(rs_engine_t *e, const char *contract_id)
{
    if (e->nslots == 0)
        return;
    size_t mask = e->nslots - 1, i;
    rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL)
        return;
    /* its slot: the probe sequence of its hash (O(1), not a table scan) */
    i = rs_eng_str_hash(c->contract_id, RS_ENG_CONTRACT_SEED) & mask;
    while (e->slots[i] != c)
        i = (i + 1) & mask;
    e->slots[i] = NULL;
    /* re-insert the rest of the probe cluster (linear probing deletion) */
    for (size_t j = (i + 1) & mask; e->slots[j] != NULL; j = (j + 1) & mask) {
        rs_contract_t *m = e->slots[j];
        e->slots[j] = NULL;
        rs_eng_slot_put(e->slots, e->nslots, m);
    }
    unmark_changed(e, c);
    e->stats.pending -= c->npend;
    e->ncontracts--;
    e->views_dirty = 1;
    e->sorted_dirty = 1;
    rs_eng_contract_free(e, c);
}

size_t rs_engine_take_changed(rs_engine_t *e, const char *const **ids)
{
    const char **out = realloc(e->changed_ids, (e->nchanged + 1) * sizeof(*out));
    if (out == NULL) {
        *ids = NULL;
        return 0;
    }
    e->changed_ids = out;
    e->capchanged_ids = e->nchanged + 1;
    size_t n = e->nchanged;
    for (size_t i = 0; i < n; i++) {
        out[i] = e->changed[i]->contract_id;
        e->changed[i]->changed = 0;
    }
    e->nchanged = 0;
    *ids = out;
    return n;
}

/* ---- engine meta ---- */

int rs_engine_export_meta(const rs_engine_t *e, void **buf, size_t *len, char *errstr,
                          size_t errlen)
{
    wbuf_t w = {0};
    w_u32(&w, META_MAGIC);
    w_u32(&w, RECORD_VERSION);
    w_i32(&w, e->closed_through);
    w_i32(&w, e->horizon);
    w_u32(&w, (uint32_t)e->ngseen);
    for (size_t i = 0; i < e->capgseen; i++)
        if (e->gseen[i].id_hash) {
            w_u64(&w, e->gseen[i].id_hash);
            w_u64(&w, e->gseen[i].content_hash);
        }
    /* optional trailer: the horizon history (lazy close), so a record
     * without one reads as before */
    if (e->ncloses > 0) {
        w_u32(&w, (uint32_t)e->ncloses);
        for (size_t i = 0; i < e->ncloses; i++) {
            w_i32(&w, e->closes[i].horizon);
            w_i32(&w, e->closes[i].closed_through);
        }
    }
    if (w.err) {
        free(w.p);
        snprintf(errstr, errlen, "engine meta: out of memory exporting");
        return -1;
    }
    *buf = w.p;
    *len = w.n;
    return 0;
}

int rs_engine_import_meta(rs_engine_t *e, const void *buf, size_t len, char *errstr,
                          size_t errlen)
{
    rbuf_t r = {.p = buf, .n = len};
    if (r_u32(&r) != META_MAGIC && !r.err)
        r.err = "not an engine meta record";
    if (r_u32(&r) != RECORD_VERSION && !r.err)
        r.err = "unknown record version";
    rs_period_t closed = r_i32(&r), horizon = r_i32(&r);
    uint32_t n = r_count(&r, 16);
    size_t cap = n ? pow2_at_least((size_t)n * 2) : 0;
    rs_seen_t *tab = r_alloc(&r, cap, sizeof(*tab));
    size_t nseen = 0;
    for (uint32_t i = 0; i < n && !r.err; i++) {
        uint64_t idh = r_u64(&r), ch = r_u64(&r);
        if (idh == 0) {
            r.err = "bad idempotency entry";
            break;
        }
        size_t k = idh & (cap - 1);
        while (tab[k].id_hash != 0 && tab[k].id_hash != idh)
            k = (k + 1) & (cap - 1);
        if (tab[k].id_hash == 0)
            nseen++;
        tab[k].id_hash = idh;
        tab[k].content_hash = ch;
    }
    struct rs_eng_close *closes = NULL;
    size_t ncloses = 0;
    if (!r.err && r.off < r.n) { /* the horizon history */
        ncloses = r_count(&r, 8);
        closes = r_alloc(&r, ncloses, sizeof(*closes));
        for (size_t i = 0; i < ncloses && !r.err; i++) {
            closes[i].horizon = r_i32(&r);
            closes[i].closed_through = r_i32(&r);
            if (!r.err && (closes[i].horizon == RS_PERIOD_NONE ||
                           (i > 0 && closes[i].horizon <= closes[i - 1].horizon)))
                r.err = "horizon history out of order";
        }
        if (!r.err && ncloses > 0 && closes[ncloses - 1].horizon != horizon)
            r.err = "horizon history does not end at the horizon";
    }
    if (!r.err && r.off != r.n)
        r.err = "trailing bytes";
    if (r.err) {
        free(tab);
        free(closes);
        snprintf(errstr, errlen, "engine meta record: %s", r.err);
        return -1;
    }
    free(e->closes);
    e->closes = closes;
    e->ncloses = e->capcloses = ncloses;
    free(e->gseen);
    e->gseen = tab;
    e->ngseen = nseen;
    e->capgseen = cap;
    e->closed_through = closed;
    e->horizon = horizon;
    return 0;
}
