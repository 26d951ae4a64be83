/*
 * rs_pstate_seen.c — the engine's seen store for one partition: the
 * contracts' seen sets (state layout 3, one key per contract) read once
 * and kept in memory with their contracts, and the staging of what a
 * sub-batch applied (rs_pstate_stage_seen) or retention drops
 * (rs_pstate_prune_seen).
 *
 * Invariants:
 *   - A set in the map equals the store's set of the contract plus every
 *     merge staged for it since (applied to both: rs_state_seen_set_apply
 *     is the store's merge), so a lookup is exact. Staged merges reach the
 *     store with the batch's commit; no lookup of the partition happens
 *     between its staging and that commit (one sub-batch per partition per
 *     batch, and the close looks nothing up). If applying to the copy fails
 *     (out of memory), the copy is dropped and the next lookup reads the
 *     store after the commit.
 *   - A contract's set is read (one Get) at the first lookup of one of its
 *     ids while it is in memory; a contract the engine created since its
 *     ids were last taken is never looked up (the engine's fresh mark), so
 *     a new contract costs no read. A contract with no ids keeps an empty
 *     entry: one Get per stay in memory, not per event.
 *   - Memory: an entry lives while its contract is tracked by the cache
 *     (rs_pstate_evict drops it with the contract and counts its bytes,
 *     rs_pseen_bytes, with the contract's). A set is 20 bytes per id kept
 *     (a usage-heavy contract's is read whole; bounded by the retention).
 *   - Staging: one merge per contract a sub-batch touched (its ids sorted
 *     into one operand), and one prune merge per contract holding ids to
 *     drop; the changelog still gets each id (fn), as before. The merges
 *     are staged in contract id order (strcmp's), each contract's ids in
 *     the order taken: rs_pstate_sort_seen, a stable sort that keys each
 *     id by the 8 bytes after the prefix the sub-batch's contract ids all
 *     share (a radix sort; strings compared only where those are equal),
 *     the order qsort with strcmp gave (glibc's qsort is a merge sort).
 *
 * Ownership: the map owns its entries and sets; the store is borrowed.
 */
#include "rs_pstate_seen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pnode {
    struct pnode *next;
    void *set; /* NULL: no ids */
    size_t len;
    uint32_t hash;
    char id[];
} pnode_t;

struct rs_pseen {
    rs_state_t *st;
    int32_t partition;
    pnode_t **b;
    size_t nb, n;
};

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

rs_pseen_t *rs_pseen_new(rs_state_t *st, int32_t partition)
{
    rs_pseen_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->st = st;
    m->partition = partition;
    return m;
}

void rs_pseen_free(rs_pseen_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nb; i++)
        for (pnode_t *p = m->b[i], *next; p != NULL; p = next) {
            next = p->next;
            free(p->set);
            free(p);
        }
    free(m->b);
    free(m);
}

/* The slot holding the contract's node (or the NULL at its chain's end). */
static pnode_t **find_slot(const rs_pseen_t *m, const char *id, uint32_t h)
{
    pnode_t **pp = &m->b[h & (m->nb - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->id, id) != 0))
        pp = &(*pp)->next;
    return pp;
}

static pnode_t *find(const rs_pseen_t *m, const char *id)
{
    return m->nb == 0 ? NULL : *find_slot(m, id, str_hash(id));
}

static int grow(rs_pseen_t *m)
{
    size_t nb = m->nb ? m->nb * 2 : 256;
    pnode_t **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < m->nb; i++)
        for (pnode_t *p = m->b[i], *next; p != NULL; p = next) {
            next = p->next;
            p->next = b[p->hash & (nb - 1)];
            b[p->hash & (nb - 1)] = p;
        }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int rs_pseen_lookup(rs_pseen_t *m, const char *contract_id, uint64_t id_hash,
                    uint64_t *content_hash, char *errstr, size_t errlen)
{
    pnode_t *p = find(m, contract_id);
    if (p == NULL) { /* first lookup since the contract came: read its set */
        size_t idlen = strlen(contract_id);
        if ((m->n + 1 > m->nb && grow(m) != 0) ||
            (p = calloc(1, sizeof *p + idlen + 1)) == NULL) {
            snprintf(errstr, errlen, "partition %d: out of memory", (int)m->partition);
            return -1;
        }
        if (rs_state_get_seen_set(m->st, m->partition, contract_id, &p->set, &p->len, errstr,
                                  errlen) < 0) {
            free(p);
            return -1;
        }
        memcpy(p->id, contract_id, idlen + 1);
        p->hash = str_hash(contract_id);
        pnode_t **slot = &m->b[p->hash & (m->nb - 1)];
        p->next = *slot;
        *slot = p;
        m->n++;
    }
    return rs_state_seen_set_find(p->set, p->len, id_hash, content_hash, NULL) ? 0 : 1;
}

void rs_pseen_drop(rs_pseen_t *m, const char *contract_id)
{
    if (m == NULL || m->nb == 0)
        return;
    pnode_t **pp = find_slot(m, contract_id, str_hash(contract_id));
    pnode_t *p = *pp;
    if (p == NULL)
        return;
    *pp = p->next;
    free(p->set);
    free(p);
    m->n--;
}

size_t rs_pseen_bytes(const rs_pseen_t *m, const char *contract_id)
{
    const pnode_t *p = m != NULL ? find(m, contract_id) : NULL;
    return p == NULL ? 0 : sizeof *p + strlen(p->id) + 1 + p->len;
}

/* What was staged for the contract, applied to its copy (if kept). */
static void apply_kept(rs_pseen_t *m, const char *contract_id, const rs_state_seen_t *ids,
                       size_t n, int32_t through)
{
    pnode_t *p = find(m, contract_id);
    if (p != NULL && rs_state_seen_set_apply(&p->set, &p->len, ids, n, through) != 0)
        rs_pseen_drop(m, contract_id); /* read again after the commit */
}

/* ---- the order of a sub-batch's ids ---- */

/* An id's sort key: the 8 bytes of its contract id after the prefix all
 * share, big-endian and padded with zeros (so comparing keys as integers
 * is strcmp on those bytes, shorter first), and what follows them. */
typedef struct skey {
    uint64_t key;
    const char *tail; /* after the 8 bytes; NULL: the string ends within them */
    size_t idx;       /* position in the input: ties keep it (stable) */
} skey_t;

static skey_t skey_make(const char *s, size_t off, size_t idx)
{
    const unsigned char *u = (const unsigned char *)s + off;
    uint64_t k = 0;
    int i = 0;
    for (; i < 8 && u[i] != 0; i++)
        k = k << 8 | u[i];
    if (i > 0 && i < 8)
        k <<= 8 * (8 - i);
    return (skey_t){k, i == 8 ? s + off + 8 : NULL, idx};
}

/* Equal keys end at the same byte or both go on (tail set in both): the
 * tails decide then, unless they are one copy. */
static int skey_less(const skey_t *a, const skey_t *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    if (a->tail != NULL && b->tail != NULL && a->tail != b->tail) {
        int c = strcmp(a->tail, b->tail);
        if (c != 0)
            return c < 0;
    }
    return a->idx < b->idx;
}

/* Merge sort of v[0..n) with scratch t (n / 2 + 1 entries). */
static void skey_sort(skey_t *v, skey_t *t, size_t n)
{
    if (n <= 12) {
        for (size_t i = 1; i < n; i++) {
            skey_t x = v[i];
            size_t j = i;
            for (; j > 0 && skey_less(&x, &v[j - 1]); j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    size_t h = n / 2, i = 0, j = h, k = 0;
    skey_sort(v, t, h);
    skey_sort(v + h, t, n - h);
    if (!skey_less(&v[h], &v[h - 1]))
        return; /* already in order */
    memcpy(t, v, h * sizeof *t);
    while (i < h && j < n)
        v[k++] = skey_less(&v[j], &t[i]) ? v[j++] : t[i++];
    while (i < h)
        v[k++] = t[i++];
}

/* LSD radix sort of v[0..n) by key (stable: ties stay in input order), a
 * pass per byte the keys differ in; t is scratch of n entries. Runs of
 * equal keys whose strings go on are then sorted by skey_less. */
static void skey_radix(skey_t *v, skey_t *t, size_t n)
{
    uint64_t diff = 0;
    skey_t *src = v, *dst = t;
    for (size_t i = 1; i < n; i++)
        diff |= v[i].key ^ v[0].key;
    for (int b = 0; b < 64; b += 8) {
        size_t pos[256] = {0}, sum = 0;
        if ((diff >> b & 0xff) == 0)
            continue;
        for (size_t i = 0; i < n; i++)
            pos[src[i].key >> b & 0xff]++;
        for (int d = 0; d < 256; d++) {
            size_t c = pos[d];
            pos[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[pos[src[i].key >> b & 0xff]++] = src[i];
        skey_t *x = src;
        src = dst;
        dst = x;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
    for (size_t i = 0, end; i < n; i = end) {
        int differ = 0;
        for (end = i + 1; end < n && v[end].key == v[i].key; end++)
            differ |= v[end].tail != v[i].tail;
        if (differ && v[i].tail != NULL)
            skey_sort(v + i, t, end - i);
    }
}

int rs_pstate_sort_seen(const rs_seen_id_t **p, size_t n)
{
    if (n < 2)
        return 0;
    skey_t *v = malloc(2 * n * sizeof *v);
    const rs_seen_id_t **in = malloc(n * sizeof *in);
    if (v == NULL || in == NULL) {
        free(v);
        free(in);
        return -1;
    }
    /* the prefix every contract id shares (ids of one contract are often
     * one copy: skipped) */
    const char *first = p[0]->contract_id, *prev = first;
    size_t off = strlen(first);
    for (size_t i = 1; i < n && off > 0; i++) {
        const char *s = p[i]->contract_id;
        if (s == prev)
            continue;
        size_t k = 0;
        while (k < off && s[k] == first[k])
            k++;
        off = k;
        prev = s;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = skey_make(p[i]->contract_id, off, i);
    if (n <= 64)
        skey_sort(v, v + n, n);
    else
        skey_radix(v, v + n, n);
    memcpy(in, p, n * sizeof *in);
    for (size_t i = 0; i < n; i++)
        p[i] = in[v[i].idx];
    free(v);
    free(in);
    return 0;
}

/* ---- staging ---- */

static int same_contract(const rs_seen_id_t *x, const rs_seen_id_t *y)
{
    return x->contract_id == y->contract_id || strcmp(x->contract_id, y->contract_id) == 0;
}

int rs_pstate_stage_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t drop_through,
                         rs_pstate_seen_fn fn, void *opaque, char *errstr, size_t errlen)
{
    rs_pseen_t *m = rs_pstate_seen_map(ps);
    const rs_seen_id_t *v = NULL;
    size_t n = rs_engine_take_seen(rs_pstate_engine(ps), &v), k = 0;
    int32_t part = rs_pstate_partition(ps);
    const rs_seen_id_t **keep = NULL;
    rs_state_seen_t *ids = NULL;
    int rc = -1;

    if (n == 0)
        return 0;
    keep = malloc(n * sizeof *keep);
    ids = malloc(n * sizeof *ids);
    if (keep == NULL || ids == NULL) {
        snprintf(errstr, errlen, "partition %d: out of memory staging seen ids", (int)part);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!v[i].forget && drop_through != RS_PERIOD_NONE && v[i].period != RS_PERIOD_NONE &&
            v[i].period <= drop_through)
            continue; /* already outside the retention */
        if (fn != NULL && fn(opaque, &v[i]) != 0) {
            snprintf(errstr, errlen, "partition %d: seen id of contract %s not passed on",
                     (int)part, v[i].contract_id);
            goto out;
        }
        keep[k++] = &v[i];
    }
    if (rs_pstate_sort_seen(keep, k) != 0) {
        snprintf(errstr, errlen, "partition %d: out of memory staging seen ids", (int)part);
        goto out;
    }
    for (size_t i = 0, end; i < k; i = end) {
        size_t c = 0;
        for (end = i; end < k && same_contract(keep[i], keep[end]); end++, c++)
            ids[c] = (rs_state_seen_t){keep[end]->id_hash, keep[end]->content_hash,
                                       keep[end]->period, keep[end]->forget};
        if (rs_state_batch_merge_seen(b, part, keep[i]->contract_id, ids, c) != 0) {
            snprintf(errstr, errlen, "partition %d: staging the seen ids of contract %s: %s",
                     (int)part, keep[i]->contract_id, rs_state_batch_error(b));
            goto out;
        }
        apply_kept(m, keep[i]->contract_id, ids, c, RS_STATE_SEEN_PERIOD_NONE);
    }
    rc = 0;
out:
    free(keep);
    free(ids);
    return rc;
}

typedef struct prune_ctx {
    rs_pstate_t *ps;
    rs_state_batch_t *b;
    rs_period_t through;
    size_t max, n;
    rs_pstate_seen_fn fn;
    void *opaque;
    int failed;
    char cur[RS_STATE_MAX_ID_LEN + 1]; /* the contract whose prune is staged */
} prune_ctx_t;

static int prune_one(void *opaque, const char *contract_id, uint64_t id_hash,
                     uint64_t content_hash, int32_t period)
{
    prune_ctx_t *x = opaque;
    (void)content_hash;
    if (period == RS_PERIOD_NONE || period > x->through)
        return 0;
    if (strcmp(x->cur, contract_id) != 0) { /* a contract's first id to drop */
        if (x->n >= x->max)
            return 1; /* the rest in a later sub-batch */
        int32_t part = rs_pstate_partition(x->ps);
        if (rs_state_batch_prune_seen(x->b, part, contract_id, x->through) != 0) {
            x->failed = 1;
            return 1;
        }
        apply_kept(rs_pstate_seen_map(x->ps), contract_id, NULL, 0, x->through);
        snprintf(x->cur, sizeof x->cur, "%s", contract_id);
    }
    rs_seen_id_t id = {contract_id, id_hash, 0, period, 1};
    if (x->fn != NULL && x->fn(x->opaque, &id) != 0) {
        x->failed = 1;
        return 1;
    }
    x->n++;
    return 0;
}

int rs_pstate_prune_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t through, size_t max,
                         rs_pstate_seen_fn fn, void *opaque, size_t *pruned, char *errstr,
                         size_t errlen)
{
    prune_ctx_t *x = calloc(1, sizeof *x);
    int rc = -1;
    *pruned = 0;
    if (max == 0) {
        free(x);
        return 0;
    }
    if (x == NULL) {
        snprintf(errstr, errlen, "partition %d: out of memory", (int)rs_pstate_partition(ps));
        return -1;
    }
    *x = (prune_ctx_t){ps, b, through, max, 0, fn, opaque, 0, ""};
    if (rs_state_foreach_seen(rs_pstate_store(ps), rs_pstate_partition(ps), prune_one, x,
                              errstr, errlen) < 0)
        goto out;
    if (x->failed) {
        snprintf(errstr, errlen, "partition %d: pruning seen ids: %s",
                 (int)rs_pstate_partition(ps),
                 rs_state_batch_error(b) ? rs_state_batch_error(b) : "not passed on");
        goto out;
    }
    *pruned = x->n;
    rc = 0;
out:
    free(x);
    return rc;
}
