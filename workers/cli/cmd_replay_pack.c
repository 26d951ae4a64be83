/*
 * cmd_replay_pack.c — replay's packed contracts (see cmd_replay_pack.h).
 *
 * A simple contract takes ~1,170 bytes live in the engine, in eleven
 * blocks; packed (rs_engine_pack_contract: variable-length integers,
 * repeated strings by reference) ~330 in one. Replay keeps the contracts
 * events are touching live, within a budget, and the rest packed. The
 * month-end close and the reports go over the packed ones one at a time,
 * as the worker's lazy close goes over its RocksDB store (state/rs_pstate.c,
 * C1-C4), so every output is byte for byte the one of an engine holding
 * the whole book.
 *
 * Invariants:
 *   P1  Every contract replay has seen has one entry, for good: live (in
 *       the engine, LIVE set; its block holds its id only), packed (its
 *       block is the packed record) or absent (id only, not in the engine:
 *       an event for it was rejected before the engine created it).
 *       Entries are never removed, so their indices are stable; `index`
 *       hashes ids to them (open addressing, linear probing, <= 70% full).
 *   P2  A block starts with a tag byte (PACK_TAG for a packed record, 0
 *       for an id alone), then the id as the packed form writes a first
 *       string: its length doubled, as a variable-length integer, then its
 *       bytes. So the id of any entry is read without unpacking.
 *   P3  A live contract is the newest state of it. A packed record may be
 *       behind the engine's horizon (a close recognized it without writing
 *       it back): every unpack brings it through the closes it missed
 *       (rs_engine_import_caught_up with the engine's own horizon history,
 *       the entries discarded: they were emitted at those closes). A close
 *       writes a record back (re-packs it) once it would be MAX_LAG closes
 *       behind, as the worker does, so a catch-up stays short. (A record
 *       is never behind a move made before it was written: every sync
 *       brings a booked contract to the engine's horizon at least.) A walk that finds no new
 * move (an advance that did not move the horizon) skips the records the previous walk left
 * behind (F_BEHIND): they were recognized through that very horizon. P4  Every close (the
 * engine's advance hook) recognizes every contract in contract_id order — live ones in place,
 * packed ones unpacked, recognized (their entries to the sink) and dropped again — which is the
 * order and the entries of the plain engine. `order` holds the entries sorted by id up to
 * `nsorted`; entries added since are sorted and merged in before each walk. P5  live_bytes is
 * the sum of the live entries' `bytes`, each the contract's rs_engine_contract_bytes when last
 * counted (after each event for it, and at each close). After an event, contracts are packed
 * while live_bytes > budget, chosen by a clock over the live ones: a contract fetched since the
 * hand last passed it is skipped once. The contract just applied to may be packed too (budget 0
 *       packs every contract after each of its events).
 *   P6  Waiting events inside packed records are counted in `pending` (the
 *       engine counts those of live contracts), so the total is exact.
 */
#include "cmd_replay_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_hash.h"

#define PACK_TAG 0xc1u /* rs_engine_pack_contract's first byte */
#define MAX_LAG 6      /* a record this many closes behind is written back */
#define F_LIVE 1u
#define F_REF 2u
#define F_BEHIND 4u       /* packed, left behind by the walk at walk_moves (P3) */
#define F_DIRTY 8u        /* live, its bytes not counted since its last event (P5) */
#define SETTLE_EVERY 4096 /* events between counts while well below the budget */

typedef struct ent {
    unsigned char *blk; /* P2 */
    uint32_t len;       /* bytes of blk */
    uint32_t bytes;     /* live: its heap when last counted (P5); else 0 */
} ent_t;

struct rs_rpack {
    rs_engine_t *e;
    size_t budget;
    ent_t *ent;
    uint8_t *flags;
    size_t n, cap, capflags;
    uint64_t *index; /* hash << 32 | entry + 1, 0: empty (P1) */
    size_t nindex;   /* a power of two */
    uint32_t *order; /* P4 */
    size_t nsorted;
    uint32_t *live; /* the live entries, for the clock (P5) */
    size_t nlive, caplive, hand;
    size_t live_bytes, packed_bytes, npacked, pending;
    uint32_t cur;    /* the entry fetched last */
    uint32_t *dirty; /* the F_DIRTY entries (P5) */
    size_t ndirty, capdirty, since;
    size_t walk_moves; /* the history's length at the last walk */
    uint64_t packs, unpacks, walked, written;
    char err[512]; /* the advance hook's failure */
};

/* ---- blocks and ids (P2) ---- */

static const char *blk_id(const unsigned char *b, size_t *n)
{
    size_t v = 0, i = 1;
    for (int shift = 0;; shift += 7) {
        v |= (size_t)(b[i] & 0x7f) << shift;
        if (!(b[i++] & 0x80))
            break;
    }
    *n = v / 2;
    return (const char *)b + i;
}

/* The id of entry k, NUL-terminated, in buf (RS_ID_MAX bytes). */
static const char *ent_id(const rs_rpack_t *p, size_t k, char *buf)
{
    size_t n;
    const char *id = blk_id(p->ent[k].blk, &n);
    if (n >= RS_ID_MAX)
        n = RS_ID_MAX - 1;
    memcpy(buf, id, n);
    buf[n] = '\0';
    return buf;
}

/* A block holding the id alone (tag 0), or NULL. */
static unsigned char *id_block(const char *id, size_t n, uint32_t *len)
{
    unsigned char *b = malloc(n + 12);
    if (b == NULL)
        return NULL;
    size_t i = 0, v = n * 2;
    b[i++] = 0;
    while (v >= 0x80) {
        b[i++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    b[i++] = (unsigned char)v;
    memcpy(b + i, id, n);
    *len = (uint32_t)(i + n);
    return b;
}

static int is_packed(const rs_rpack_t *p, size_t k)
{
    return !(p->flags[k] & F_LIVE) && p->ent[k].blk[0] == PACK_TAG;
}

/* ---- the index (P1) ---- */

static void index_put(uint64_t *tab, size_t cap, const ent_t *ent, uint32_t k)
{
    size_t n;
    const char *id = blk_id(ent[k].blk, &n);
    uint64_t h = rs_fnv1a64(id, n);
    size_t i = h & (cap - 1);
    while (tab[i] != 0)
        i = (i + 1) & (cap - 1);
    tab[i] = (h >> 32) << 32 | (k + 1u);
}

/* The entry of an id, or (uint32_t)-1. */
static uint32_t index_find(const rs_rpack_t *p, const char *id, size_t n)
{
    if (p->nindex == 0)
        return UINT32_MAX;
    uint64_t h = rs_fnv1a64(id, n);
    for (size_t i = h & (p->nindex - 1);; i = (i + 1) & (p->nindex - 1)) {
        uint64_t slot = p->index[i];
        if (slot == 0)
            return UINT32_MAX;
        if (slot >> 32 != h >> 32) /* another id: no need to read its block */
            continue;
        uint32_t k = (uint32_t)slot;
        size_t m;
        const char *x = blk_id(p->ent[k - 1].blk, &m);
        if (m == n && memcmp(x, id, n) == 0)
            return k - 1;
    }
}

static int grow(void **a, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap + *cap / 2 + 64;
    if (nc < need)
        nc = need;
    void *np = realloc(*a, nc * elem);
    if (np == NULL)
        return -1;
    *a = np;
    *cap = nc;
    return 0;
}

/* A new live entry for id. Its index, or UINT32_MAX on ENOMEM. */
static uint32_t ent_add(rs_rpack_t *p, const char *id, size_t n)
{
    if (p->n >= UINT32_MAX - 1)
        return UINT32_MAX;
    if ((p->n + 1) * 10 >= p->nindex * 7) {
        size_t nc = p->nindex ? p->nindex * 2 : 1024;
        uint64_t *t = calloc(nc, sizeof(*t));
        if (t == NULL)
            return UINT32_MAX;
        for (size_t k = 0; k < p->n; k++)
            index_put(t, nc, p->ent, (uint32_t)k);
        free(p->index);
        p->index = t;
        p->nindex = nc;
    }
    if (grow((void **)&p->ent, &p->cap, p->n + 1, sizeof(*p->ent)) ||
        grow((void **)&p->flags, &p->capflags, p->n + 1, 1))
        return UINT32_MAX;
    if (grow((void **)&p->live, &p->caplive, p->nlive + 1, sizeof(*p->live)) ||
        grow((void **)&p->dirty, &p->capdirty, p->ndirty + 1, sizeof(*p->dirty)))
        return UINT32_MAX;
    ent_t *x = &p->ent[p->n];
    x->blk = id_block(id, n, &x->len);
    if (x->blk == NULL)
        return UINT32_MAX;
    x->bytes = 0;
    p->flags[p->n] = F_LIVE | F_REF | F_DIRTY;
    p->live[p->nlive++] = (uint32_t)p->n;
    p->dirty[p->ndirty++] = (uint32_t)p->n;
    index_put(p->index, p->nindex, p->ent, (uint32_t)p->n);
    return (uint32_t)p->n++;
}

/* ---- packing and unpacking ---- */

/* Import entry k's packed record into the engine, caught up (P3) through
 * the closes before `below` (RS_PERIOD_NONE: all), recognized through the
 * horizon if `recognize`. The packed record stays. 0, or -1 with errstr. */
static int import(rs_rpack_t *p, size_t k, const char *id, rs_period_t below, int recognize,
                  int *moves, char *errstr, size_t errlen)
{
    size_t before = rs_engine_pending_count(p->e);
    if (rs_engine_import_caught_up(p->e, id, p->ent[k].blk, p->ent[k].len, NULL, below,
                                   recognize, moves, errstr, errlen) < 0)
        return -1;
    /* the record's waiting events are now the engine's to count (P6) */
    p->pending -= rs_engine_pending_count(p->e) - before;
    p->unpacks++;
    return 0;
}

/* Replace entry k's block by b (len bytes), freeing the old one. */
static void set_block(rs_rpack_t *p, size_t k, unsigned char *b, uint32_t len)
{
    if (p->ent[k].blk[0] == PACK_TAG) {
        p->packed_bytes -= p->ent[k].len;
        p->npacked--;
    }
    free(p->ent[k].blk);
    p->ent[k].blk = b;
    p->ent[k].len = len;
    if (b[0] == PACK_TAG) {
        p->packed_bytes += len;
        p->npacked++;
    }
}

/* Pack the engine's contract `id` into entry k (its block) and drop it
 * from the engine. 0, or -1 with errstr. */
static int pack(rs_rpack_t *p, size_t k, const char *id, char *errstr, size_t errlen)
{
    void *buf = NULL;
    size_t len = 0;
    int rc = rs_engine_pack_contract(p->e, id, &buf, &len, errstr, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (len > UINT32_MAX) {
            free(buf);
            snprintf(errstr, errlen, "contract %s: packed record too large", id);
            return -1;
        }
        size_t before = rs_engine_pending_count(p->e);
        rs_engine_forget_contract(p->e, id);
        p->pending += before - rs_engine_pending_count(p->e);
        set_block(p, k, buf, (uint32_t)len);
        p->flags[k] &= (uint8_t)~F_BEHIND;
        p->packs++;
    } /* rc 1: the engine has no such contract: the entry is absent */
    return 0;
}

/* Pack the live entry at the clock's position i (P5). */
static int evict(rs_rpack_t *p, size_t i, char *errstr, size_t errlen)
{
    char idb[RS_ID_MAX];
    uint32_t k = p->live[i];
    size_t bytes = p->ent[k].bytes;
    if (pack(p, k, ent_id(p, k, idb), errstr, errlen) != 0)
        return -1;
    p->live_bytes -= bytes;
    p->flags[k] = 0;
    p->live[i] = p->live[--p->nlive];
    return 0;
}

/* Count entry k's live bytes again (P5). */
static void recount(rs_rpack_t *p, size_t k, const char *id)
{
    size_t b = rs_engine_contract_bytes(p->e, id);
    if (b > UINT32_MAX)
        b = UINT32_MAX;
    p->live_bytes = p->live_bytes - p->ent[k].bytes + b;
    p->ent[k].bytes = (uint32_t)b;
}

int rs_rpack_fetch(rs_rpack_t *p, const char *contract_id, char *errstr, size_t errlen)
{
    size_t n = strlen(contract_id);
    uint32_t k = index_find(p, contract_id, n);
    if (k == UINT32_MAX) { /* new: the engine creates it */
        k = ent_add(p, contract_id, n);
        if (k == UINT32_MAX) {
            snprintf(errstr, errlen, "contract %s: out of memory", contract_id);
            return -1;
        }
        p->cur = k;
        return 0;
    }
    p->cur = k;
    if (!(p->flags[k] & F_DIRTY) && (p->flags[k] & F_LIVE)) {
        if (grow((void **)&p->dirty, &p->capdirty, p->ndirty + 1, sizeof(*p->dirty)))
            goto nomem;
        p->dirty[p->ndirty++] = k;
    }
    p->flags[k] |= F_REF | (p->flags[k] & F_LIVE ? F_DIRTY : 0);
    if (p->flags[k] & F_LIVE)
        return 0;
    if (grow((void **)&p->live, &p->caplive, p->nlive + 1, sizeof(*p->live)) ||
        grow((void **)&p->dirty, &p->capdirty, p->ndirty + 1, sizeof(*p->dirty)))
        goto nomem;
    if (p->ent[k].blk[0] == PACK_TAG) {
        uint32_t len;
        unsigned char *b = id_block(contract_id, n, &len);
        if (b == NULL)
            goto nomem;
        if (import(p, k, contract_id, RS_PERIOD_NONE, 0, NULL, errstr, errlen) != 0) {
            free(b);
            return -1;
        }
        set_block(p, k, b, len);
    }
    p->ent[k].bytes = 0; /* counted by rs_rpack_settle */
    p->flags[k] = F_LIVE | F_REF | F_DIRTY;
    p->live[p->nlive++] = k;
    p->dirty[p->ndirty++] = k;
    return 0;
nomem:
    snprintf(errstr, errlen, "contract %s: out of memory", contract_id);
    return -1;
}

int rs_rpack_settle(rs_rpack_t *p, char *errstr, size_t errlen)
{
    char idb[RS_ID_MAX];
    /* well below the budget, the contracts events changed are counted
     * every SETTLE_EVERY events (once each), not after each event */
    if (p->budget != 0 && ++p->since < SETTLE_EVERY &&
        p->live_bytes < p->budget - p->budget / 8)
        return 0;
    p->since = 0;
    for (size_t i = 0; i < p->ndirty; i++) {
        uint32_t k = p->dirty[i];
        p->flags[k] &= (uint8_t)~F_DIRTY;
        if (p->flags[k] & F_LIVE)
            recount(p, k, ent_id(p, k, idb));
    }
    p->ndirty = 0;
    /* the clock: at most two rounds (the first may only clear F_REF) */
    for (size_t steps = 0;
         p->live_bytes > p->budget && p->nlive > 0 && steps < 2 * p->nlive + 2; steps++) {
        if (p->hand >= p->nlive)
            p->hand = 0;
        uint32_t k = p->live[p->hand];
        if (p->flags[k] & F_REF) {
            p->flags[k] &= (uint8_t)~F_REF;
            p->hand++;
            continue;
        }
        if (evict(p, p->hand, errstr, errlen) != 0)
            return -1;
        steps = 0;
    }
    return 0;
}

/* ---- the walk in contract_id order (P4) ---- */

static const rs_rpack_t *sort_p; /* qsort has no context argument in C11 */

static int cmp_ent(const void *a, const void *b)
{
    size_t na, nb;
    const char *x = blk_id(sort_p->ent[*(const uint32_t *)a].blk, &na);
    const char *y = blk_id(sort_p->ent[*(const uint32_t *)b].blk, &nb);
    int c = memcmp(x, y, na < nb ? na : nb);
    return c != 0 ? c : (na > nb) - (na < nb);
}

/* Sort the entries added since the last walk and merge them in. */
static int order_update(rs_rpack_t *p)
{
    size_t old = p->nsorted, add = p->n - old;
    if (add == 0)
        return 0;
    uint32_t *o = realloc(p->order, (p->n + 1) * sizeof(*o));
    uint32_t *tmp = malloc((add + 1) * sizeof(*tmp));
    if (o == NULL || tmp == NULL) {
        if (o != NULL)
            p->order = o;
        free(tmp);
        return -1;
    }
    p->order = o;
    for (size_t i = 0; i < add; i++)
        tmp[i] = (uint32_t)(old + i);
    sort_p = p;
    qsort(tmp, add, sizeof(*tmp), cmp_ent);
    /* merge from the back: o[0..old) and tmp[0..add) into o[0..n) */
    size_t i = old, j = add, w = p->n;
    while (j > 0) {
        if (i > 0 && cmp_ent(&o[i - 1], &tmp[j - 1]) > 0)
            o[--w] = o[--i];
        else
            o[--w] = tmp[--j];
    }
    free(tmp);
    p->nsorted = p->n;
    return 0;
}

/* The engine's advance hook: every contract through the horizon (P4). */
static int walk(void *opaque, rs_engine_t *e)
{
    rs_rpack_t *p = opaque;
    rs_period_t horizon = rs_engine_horizon(e);
    size_t moves_now = rs_engine_history_length(e);
    int rewalk = moves_now == p->walk_moves; /* the horizon did not move */
    char idb[RS_ID_MAX];
    p->walk_moves = moves_now;
    if (order_update(p) != 0) {
        snprintf(p->err, sizeof p->err, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < p->n; i++) {
        uint32_t k = p->order[i];
        const char *id = ent_id(p, k, idb);
        if (p->flags[k] & F_LIVE) {
            if (rs_engine_recognize_contract(e, id) < 0) {
                snprintf(p->err, sizeof p->err, "contract %s: out of memory recognizing", id);
                return -1;
            }
            if (p->budget == 0 || p->live_bytes >= p->budget - p->budget / 8)
                recount(p, k, id); /* else: counted after its next event */
            continue;
        }
        if (!is_packed(p, k) || (rewalk && (p->flags[k] & F_BEHIND)))
            continue; /* absent, or recognized through this horizon already */
        int moves = 0;
        if (import(p, k, id, horizon, 1, &moves, p->err, sizeof p->err) != 0)
            return -1;
        p->walked++;
        if (moves + 1 >= MAX_LAG) { /* written back: its record is current */
            if (pack(p, k, id, p->err, sizeof p->err) != 0)
                return -1;
            p->written++;
            continue;
        }
        size_t before = rs_engine_pending_count(e);
        rs_engine_forget_contract(e, id); /* left behind: caught up at its next load */
        p->pending += before - rs_engine_pending_count(e);
        p->flags[k] |= F_BEHIND;
    }
    return 0;
}

int rs_rpack_each(void *opaque, rs_report_contract_fn fn, void *arg)
{
    rs_rpack_t *p = opaque;
    char idb[RS_ID_MAX], err[512];
    if (order_update(p) != 0)
        return -1;
    for (size_t i = 0; i < p->n; i++) {
        uint32_t k = p->order[i];
        const char *id = ent_id(p, k, idb);
        int rc;
        if (p->flags[k] & F_LIVE) {
            rc = fn(arg, p->e, id);
        } else if (is_packed(p, k)) {
            if (import(p, k, id, RS_PERIOD_NONE, 0, NULL, err, sizeof err) != 0)
                return -1;
            rc = fn(arg, p->e, id);
            size_t before = rs_engine_pending_count(p->e);
            rs_engine_forget_contract(p->e, id);
            p->pending += before - rs_engine_pending_count(p->e);
        } else {
            continue;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int rs_rpack_unpack_all(rs_rpack_t *p, char *errstr, size_t errlen)
{
    char idb[RS_ID_MAX];
    p->budget = SIZE_MAX; /* nothing is packed again */
    for (size_t k = 0; k < p->n; k++) {
        if (!is_packed(p, k))
            continue;
        if (rs_rpack_fetch(p, ent_id(p, k, idb), errstr, errlen) != 0)
            return -1;
    }
    return 0;
}

/* ---- life ---- */

int rs_rpack_new(rs_rpack_t **out, rs_engine_t *e, size_t budget, char *errstr, size_t errlen)
{
    rs_rpack_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    p->e = e;
    p->budget = budget;
    p->cur = UINT32_MAX;
    rs_engine_set_advance_hook(e, walk, p);
    *out = p;
    return 0;
}

void rs_rpack_destroy(rs_rpack_t *p)
{
    if (p == NULL)
        return;
    rs_engine_set_advance_hook(p->e, NULL, NULL);
    for (size_t k = 0; k < p->n; k++)
        free(p->ent[k].blk);
    free(p->ent);
    free(p->flags);
    free(p->index);
    free(p->order);
    free(p->live);
    free(p->dirty);
    free(p);
}

int rs_rpack_adopt(rs_rpack_t *p, char *errstr, size_t errlen)
{
    char **ids = NULL;
    size_t n = rs_engine_contract_ids(p->e, &ids);
    int rc = 0;
    if (n == (size_t)-1) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        if (index_find(p, ids[i], strlen(ids[i])) == UINT32_MAX &&
            ent_add(p, ids[i], strlen(ids[i])) == UINT32_MAX) {
            snprintf(errstr, errlen, "contract %s: out of memory", ids[i]);
            rc = -1;
        }
    free(ids);
    p->since = SETTLE_EVERY; /* the next rs_rpack_settle counts them */
    return rc;
}

const char *rs_rpack_error(const rs_rpack_t *p)
{
    return p->err;
}

void rs_rpack_get_stats(const rs_rpack_t *p, rs_rpack_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->contracts = p->n;
    out->live = p->nlive;
    out->packed = p->npacked;
    out->live_bytes = p->live_bytes;
    out->packed_bytes = p->packed_bytes;
    out->pending = p->pending;
    out->packs = p->packs;
    out->unpacks = p->unpacks;
    out->walked = p->walked;
    out->written = p->written;
}
