/*
 * rs_state_seen.c — the seen ids of state layout 3: one key per contract
 * (0x51 BE32(partition) contract_id), written by merges; the merge; the
 * reads; the migration from layout 2 (rs_state_seen.h has the formats).
 *
 * Invariants:
 *   - A 0x51 key is written only by merges (rs_state_batch_merge_seen,
 *     _prune_seen, the bulk writer) and by the migration's puts of whole
 *     values. An operand is records applied in order; the full merge
 *     returns a value (one ADD record, ids sorted by hash, unique), the
 *     same whatever the grouping of the operands (the partial merge
 *     concatenates them), and an id's last record wins: an ADD replaces
 *     its hash and period, a DELETE removes it, a PRUNE drops every id
 *     before it whose period is known and <= its period.
 *   - rs_state_seen_set_apply runs the same merge on a copy in memory, so
 *     a set kept in memory (rs_pstate) and the stored one stay equal when
 *     every staged operand is applied to both.
 *   - Bounded: each operand is what one sub-batch (or one changelog
 *     record) did to one contract; a value is 20 bytes per id kept, read
 *     whole by one Get — a usage-heavy contract's set is as large as its
 *     ids within the retention (state.seen.retention.months; 0 keeps them
 *     all), and the worker keeps it in memory only with its contract.
 *   - The merge's cost: the base (sorted) is taken as it is; the records
 *     between two PRUNEs are gathered, sorted by (hash, order) and merged
 *     into it once: O(n log n) for any number of operands (a restore may
 *     stage thousands of records of one contract).
 *
 * Ownership: merge results, operands and sets are malloc'd for the caller
 * (RocksDB frees merge results through the operator's free).
 */
#include "rs_state_seen.h"
#include "rs_bytes.h"
#include "rs_err.h"
#include "rs_state_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char MAGIC_ADD[4] = {'R', 'S', 'S', '2'};
static const unsigned char MAGIC_DEL[4] = {'R', 'S', 'D', '2'};
static const unsigned char MAGIC_PRUNE[4] = {'R', 'S', 'P', '2'};

/* One id of a merge: a record's order (seq) decides between two of a hash. */
typedef struct sent {
    uint64_t idh, ch;
    int32_t period;
    uint32_t del;
    size_t seq;
} sent_t;

typedef struct svec {
    sent_t *v;
    size_t n, cap;
} svec_t;

static int svec_reserve(svec_t *s, size_t more)
{
    if (s->cap - s->n >= more)
        return 0;
    size_t cap = s->cap ? s->cap : 64;
    while (cap - s->n < more)
        cap *= 2;
    sent_t *v = realloc(s->v, cap * sizeof *v);
    if (v == NULL)
        return -1;
    s->v = v;
    s->cap = cap;
    return 0;
}

static void entry_put(unsigned char *q, uint64_t idh, uint64_t ch, int32_t period)
{
    rs_seen_put_le32(q, (uint32_t)idh);
    rs_seen_put_le32(q + 4, (uint32_t)(idh >> 32));
    rs_seen_put_le32(q + 8, (uint32_t)ch);
    rs_seen_put_le32(q + 12, (uint32_t)(ch >> 32));
    rs_seen_put_le32(q + 16, (uint32_t)period);
}

void rs_state_seen_entry(const unsigned char *set, size_t i, uint64_t *id_hash,
                         uint64_t *content_hash, int32_t *period)
{
    const unsigned char *q = set + RS_SEEN_HDR + i * RS_SEEN_ENTRY;
    *id_hash = rs_seen_get_le64(q);
    *content_hash = rs_seen_get_le64(q + 8);
    *period = (int32_t)rs_seen_get_le32(q + 16);
}

size_t rs_state_seen_count(const unsigned char *set, size_t len)
{
    if (set == NULL || len < RS_SEEN_HDR || memcmp(set, MAGIC_ADD, 4) != 0)
        return (size_t)-1;
    size_t n = rs_seen_get_le32(set + 4);
    return len == RS_SEEN_HDR + n * RS_SEEN_ENTRY ? n : (size_t)-1;
}

static int cmp_sent(const void *pa, const void *pb)
{
    const sent_t *a = pa, *b = pb;
    if (a->idh != b->idh)
        return a->idh < b->idh ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Sort seg by (hash, order), keep each hash's last record, and merge it
 * into acc (sorted, unique, no deletes): seg's record wins; a delete
 * removes. seg is emptied. 0 or -1 (out of memory). */
/* Sort seg by (hash, order) and keep each hash's last record: its count. */
static size_t seg_sort(svec_t *seg)
{
    int sorted = 1;
    for (size_t i = 1; i < seg->n && sorted; i++)
        sorted = cmp_sent(&seg->v[i - 1], &seg->v[i]) < 0;
    if (!sorted)
        qsort(seg->v, seg->n, sizeof *seg->v, cmp_sent);
    size_t m = 0;
    for (size_t i = 0; i < seg->n; i++) {
        if (m > 0 && seg->v[m - 1].idh == seg->v[i].idh)
            m--;
        seg->v[m++] = seg->v[i];
    }
    return m;
}

static int seg_flush(svec_t *acc, svec_t *seg)
{
    if (seg->n == 0)
        return 0;
    size_t m = seg_sort(seg);
    svec_t out = {0};
    if (svec_reserve(&out, acc->n + m) != 0)
        return -1;
    size_t i = 0, j = 0;
    while (i < acc->n || j < m) {
        if (j == m || (i < acc->n && acc->v[i].idh < seg->v[j].idh)) {
            out.v[out.n++] = acc->v[i++];
            continue;
        }
        if (i < acc->n && acc->v[i].idh == seg->v[j].idh)
            i++; /* replaced or removed */
        if (!seg->v[j].del)
            out.v[out.n++] = seg->v[j];
        j++;
    }
    free(acc->v);
    *acc = out;
    seg->n = 0;
    return 0;
}

/* Drop acc's ids whose period is known and <= through. */
static void acc_prune(svec_t *acc, int32_t through)
{
    size_t m = 0;
    for (size_t i = 0; i < acc->n; i++)
        if (acc->v[i].period == RS_STATE_SEEN_PERIOD_NONE || acc->v[i].period > through)
            acc->v[m++] = acc->v[i];
    acc->n = m;
}

/* Apply the records of v[0..len) to (acc, seg); *seq numbers them. 0, or
 * -1 (a record that does not parse, out of memory). `base`: v is a value
 * and acc is empty: taken as acc when sorted and unique. */
static int apply_records(svec_t *acc, svec_t *seg, const unsigned char *v, size_t len,
                         size_t *seq, int base)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < RS_SEEN_HDR)
            return -1;
        const unsigned char *r = v + pos;
        uint32_t n = rs_seen_get_le32(r + 4);
        if (memcmp(r, MAGIC_PRUNE, 4) == 0) {
            if (seg_flush(acc, seg) != 0)
                return -1;
            acc_prune(acc, (int32_t)n);
            pos += RS_SEEN_HDR;
            continue;
        }
        int del = memcmp(r, MAGIC_DEL, 4) == 0;
        size_t width = del ? 8 : RS_SEEN_ENTRY;
        if ((!del && memcmp(r, MAGIC_ADD, 4) != 0) ||
            (len - pos - RS_SEEN_HDR) / width < (size_t)n)
            return -1;
        svec_t *to = base && acc->n == 0 && seg->n == 0 ? acc : seg;
        if (svec_reserve(to, n) != 0)
            return -1;
        (*seq)++;
        for (uint32_t i = 0; i < n; i++) {
            const unsigned char *q = r + RS_SEEN_HDR + (size_t)i * width;
            sent_t *e = &to->v[to->n++];
            e->idh = rs_seen_get_le64(q);
            e->ch = del ? 0 : rs_seen_get_le64(q + 8);
            e->period = del ? 0 : (int32_t)rs_seen_get_le32(q + 16);
            e->del = (uint32_t)del;
            e->seq = *seq;
            /* a base not strictly ascending goes through the sort */
            if (to == acc && i > 0 && acc->v[acc->n - 2].idh >= e->idh) {
                if (svec_reserve(seg, n) != 0)
                    return -1;
                memcpy(seg->v, acc->v, acc->n * sizeof *acc->v);
                seg->n = acc->n;
                acc->n = 0;
                to = seg;
            }
        }
        pos += RS_SEEN_HDR + (size_t)n * width;
    }
    return 0;
}

/* The first index >= lo of a value's ids whose hash is >= h (n ids). */
static size_t lower_bound(const unsigned char *set, size_t lo, size_t n, uint64_t h)
{
    while (lo < n) {
        size_t mid = lo + (n - lo) / 2;
        if (rs_seen_get_le64(set + RS_SEEN_HDR + mid * RS_SEEN_ENTRY) < h)
            lo = mid + 1;
        else
            n = mid;
    }
    return lo;
}

/* The common merge (a kept set and a sub-batch's operand; a stored set
 * and a few operands): a base value and operands of ADD and DELETE
 * records only. The operands' ids are sorted, then the base's runs
 * between them are copied as they are (no decoding of the base): memory
 * is the result, time a copy. NULL with *fallback set when it does not
 * apply (a PRUNE, a base out of order: the general path decides). */
static unsigned char *merge_fast(const unsigned char *base, size_t baselen,
                                 const char *const *ops, const size_t *oplens, int nops,
                                 size_t *outlen, int *fallback)
{
    svec_t acc = {0}, seg = {0};
    size_t seq = 0, nb = rs_state_seen_count(base, baselen);
    unsigned char *out = NULL;
    *fallback = 1;
    if (nb == (size_t)-1)
        return NULL;
    for (int i = 0; i < nops; i++) {
        const unsigned char *v = (const unsigned char *)ops[i];
        for (size_t pos = 0; pos + RS_SEEN_HDR <= oplens[i];) {
            if (memcmp(v + pos, MAGIC_PRUNE, 4) == 0)
                return NULL;
            size_t n = rs_seen_get_le32(v + pos + 4),
                   width = memcmp(v + pos, MAGIC_DEL, 4) == 0 ? 8 : RS_SEEN_ENTRY;
            if ((oplens[i] - pos - RS_SEEN_HDR) / width < n)
                break; /* malformed: the general path says so */
            pos += RS_SEEN_HDR + n * width;
        }
    }
    for (size_t i = 1; i < nb; i++) /* a value is sorted: checked, not trusted */
        if (rs_seen_get_le64(base + RS_SEEN_HDR + (i - 1) * RS_SEEN_ENTRY) >=
            rs_seen_get_le64(base + RS_SEEN_HDR + i * RS_SEEN_ENTRY))
            return NULL;
    *fallback = 0;
    for (int i = 0; i < nops; i++)
        if (apply_records(&acc, &seg, (const unsigned char *)ops[i], oplens[i], &seq, 0) != 0)
            goto done;
    size_t m = seg_sort(&seg), n = 0, at = 0;
    out = malloc(RS_SEEN_HDR + (nb + m) * RS_SEEN_ENTRY);
    if (out == NULL)
        goto done;
    for (size_t j = 0; j <= m; j++) {
        size_t to = j < m ? lower_bound(base, at, nb, seg.v[j].idh) : nb;
        memcpy(out + RS_SEEN_HDR + n * RS_SEEN_ENTRY, base + RS_SEEN_HDR + at * RS_SEEN_ENTRY,
               (to - at) * RS_SEEN_ENTRY);
        n += to - at;
        at = to;
        if (j == m)
            break;
        if (at < nb &&
            rs_seen_get_le64(base + RS_SEEN_HDR + at * RS_SEEN_ENTRY) == seg.v[j].idh)
            at++; /* replaced or removed */
        if (!seg.v[j].del)
            entry_put(out + RS_SEEN_HDR + n++ * RS_SEEN_ENTRY, seg.v[j].idh, seg.v[j].ch,
                      seg.v[j].period);
    }
    memcpy(out, MAGIC_ADD, 4);
    rs_seen_put_le32(out + 4, (uint32_t)n);
    *outlen = RS_SEEN_HDR + n * RS_SEEN_ENTRY;
done:
    free(acc.v);
    free(seg.v);
    return out;
}

unsigned char *rs_state_seen_merge(const unsigned char *base, size_t baselen,
                                   const char *const *ops, const size_t *oplens, int nops,
                                   size_t *outlen)
{
    svec_t acc = {0}, seg = {0};
    size_t seq = 0;
    unsigned char *out = NULL;
    int fallback = 1;
    if (base != NULL) {
        out = merge_fast(base, baselen, ops, oplens, nops, outlen, &fallback);
        if (!fallback)
            return out;
    }
    if (base != NULL && apply_records(&acc, &seg, base, baselen, &seq, 1) != 0)
        goto done;
    for (int i = 0; i < nops; i++)
        if (apply_records(&acc, &seg, (const unsigned char *)ops[i], oplens[i], &seq, 0) != 0)
            goto done;
    if (seg_flush(&acc, &seg) != 0 || acc.n > UINT32_MAX)
        goto done;
    out = malloc(RS_SEEN_HDR + acc.n * RS_SEEN_ENTRY);
    if (out == NULL)
        goto done;
    memcpy(out, MAGIC_ADD, 4);
    rs_seen_put_le32(out + 4, (uint32_t)acc.n);
    for (size_t i = 0; i < acc.n; i++)
        entry_put(out + RS_SEEN_HDR + i * RS_SEEN_ENTRY, acc.v[i].idh, acc.v[i].ch,
                  acc.v[i].period);
    *outlen = RS_SEEN_HDR + acc.n * RS_SEEN_ENTRY;
done:
    free(acc.v);
    free(seg.v);
    return out;
}

unsigned char *rs_state_seen_operand(const rs_state_seen_t *ids, size_t n, size_t *len)
{
    size_t nadd = 0, ndel = 0;
    for (size_t i = 0; i < n; i++)
        ids[i].forget ? ndel++ : nadd++;
    if (nadd > UINT32_MAX || ndel > UINT32_MAX)
        return NULL;
    size_t alen = nadd ? RS_SEEN_HDR + nadd * RS_SEEN_ENTRY : 0,
           dlen = ndel ? RS_SEEN_HDR + ndel * 8 : 0;
    unsigned char *p = malloc(alen + dlen + 1);
    if (p == NULL)
        return NULL;
    unsigned char *a = p + RS_SEEN_HDR, *d = p + alen + RS_SEEN_HDR;
    if (nadd) {
        memcpy(p, MAGIC_ADD, 4);
        rs_seen_put_le32(p + 4, (uint32_t)nadd);
    }
    if (ndel) {
        memcpy(p + alen, MAGIC_DEL, 4);
        rs_seen_put_le32(p + alen + 4, (uint32_t)ndel);
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i].forget) {
            rs_seen_put_le32(d, (uint32_t)ids[i].id_hash);
            rs_seen_put_le32(d + 4, (uint32_t)(ids[i].id_hash >> 32));
            d += 8;
        } else {
            entry_put(a, ids[i].id_hash, ids[i].content_hash, ids[i].period);
            a += RS_SEEN_ENTRY;
        }
    }
    *len = alen + dlen;
    return p;
}

/* ---- the public functions (rs_state.h) ---- */

int rs_state_seen_set_find(const void *set, size_t len, uint64_t id_hash,
                           uint64_t *content_hash, int32_t *period)
{
    size_t n = set != NULL ? rs_state_seen_count(set, len) : 0;
    size_t lo = 0, hi = n == (size_t)-1 ? 0 : n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unsigned char *q = (const unsigned char *)set + RS_SEEN_HDR + mid * RS_SEEN_ENTRY;
        uint64_t h = rs_seen_get_le64(q);
        if (h == id_hash) {
            *content_hash = rs_seen_get_le64(q + 8);
            if (period != NULL)
                *period = (int32_t)rs_seen_get_le32(q + 16);
            return 1;
        }
        if (h < id_hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

size_t rs_state_seen_set_count(const void *set, size_t len)
{
    return set == NULL ? 0 : rs_state_seen_count(set, len);
}

int rs_state_seen_set_apply(void **set, size_t *len, const rs_state_seen_t *ids, size_t n,
                            int32_t through)
{
    size_t oplen = 0, outlen = 0;
    /* the ids' operand, then the prune's, as the batch stages them */
    unsigned char prune[RS_SEEN_HDR];
    memcpy(prune, MAGIC_PRUNE, 4);
    rs_seen_put_le32(prune + 4, (uint32_t)through);
    unsigned char *op = rs_state_seen_operand(ids, n, &oplen);
    if (op == NULL)
        return -1;
    const char *ops[2] = {(const char *)op, (const char *)prune};
    size_t lens[2] = {oplen, sizeof prune};
    unsigned char *v =
        rs_state_seen_merge(*set, *set != NULL ? *len : 0, ops, lens,
                            through != RS_STATE_SEEN_PERIOD_NONE ? 2 : 1, &outlen);
    free(op);
    if (v == NULL)
        return -1;
    free(*set);
    *set = v;
    *len = outlen;
    return 0;
}

int rs_state_get_seen_set(rs_state_t *st, int32_t partition, const char *contract_id,
                          void **set, size_t *len, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_get_seen_set";
    unsigned char k[KEY_MAX];
    size_t idlen = 0, vlen = 0;
    rocksdb_t *db = NULL;
    const rocksdb_readoptions_t *ro = NULL;
    char *err = NULL;
    if (st == NULL || set == NULL || len == NULL) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    *set = NULL;
    *len = 0;
    if (rs_state_check_id(partition, contract_id, &idlen, op, errstr, errlen))
        return -1;
    rs_state_reader(st, &db, &ro);
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(
        db, ro, (const char *)k, key_seen_set(k, partition, contract_id, idlen), &err);
    if (err != NULL || ps == NULL) {
        rocksdb_pinnableslice_destroy(ps);
        if (err == NULL)
            return 1;
        rs_errorf(errstr, errlen, "%s: partition=%d contract_id=%s: %s", op, (int)partition,
                  contract_id, err);
        rocksdb_free(err);
        return -1;
    }
    const unsigned char *v = (const unsigned char *)rocksdb_pinnableslice_value(ps, &vlen);
    int rc = -1;
    if (rs_state_seen_count(v, vlen) == (size_t)-1) {
        rs_errorf(errstr, errlen,
                  "%s: partition=%d contract_id=%s: corrupt seen set (%zu bytes)", op,
                  (int)partition, contract_id, vlen);
    } else if ((*set = malloc(vlen)) == NULL) {
        rs_errorf(errstr, errlen, "%s: out of memory for a %zu-byte seen set", op, vlen);
    } else {
        memcpy(*set, v, vlen);
        *len = vlen;
        rc = 0;
    }
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int rs_state_get_seen(rs_state_t *st, int32_t partition, const char *contract_id,
                      uint64_t id_hash, uint64_t *content_hash, int32_t *period, char *errstr,
                      size_t errlen)
{
    void *set = NULL;
    size_t len = 0;
    if (content_hash == NULL) {
        rs_errorf(errstr, errlen, "rs_state_get_seen: NULL argument");
        return -1;
    }
    int rc = rs_state_get_seen_set(st, partition, contract_id, &set, &len, errstr, errlen);
    if (rc != 0)
        return rc;
    rc = rs_state_seen_set_find(set, len, id_hash, content_hash, period) ? 0 : 1;
    free(set);
    return rc;
}

/* Stage operand v (vlen bytes) on the contract's key. */
static int stage_operand(rs_state_batch_t *b, const char *op, int32_t partition,
                         const char *contract_id, const unsigned char *v, size_t vlen)
{
    unsigned char k[KEY_MAX];
    char msg[256];
    size_t idlen = 0;
    if (rs_state_check_id(partition, contract_id, &idlen, op, msg, sizeof msg))
        return rs_state_batch_failed(b, msg);
    return rs_state_batch_merge_key(b, k, key_seen_set(k, partition, contract_id, idlen), v,
                                    vlen);
}

int rs_state_batch_merge_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                              const rs_state_seen_t *ids, size_t n)
{
    static const char op[] = "rs_state_batch_merge_seen";
    size_t len = 0;
    if (b == NULL)
        return -1;
    if (n > 0 && ids == NULL)
        return rs_state_batch_failed(b, "rs_state_batch_merge_seen: ids is NULL");
    if (n == 0) /* nothing, but the arguments are still checked */
        return stage_operand(b, op, partition, contract_id, NULL, 0) == 0 ? 0 : -1;
    unsigned char *v = rs_state_seen_operand(ids, n, &len);
    if (v == NULL)
        return rs_state_batch_failed(b, "rs_state_batch_merge_seen: out of memory");
    int rc = stage_operand(b, op, partition, contract_id, v, len);
    free(v);
    return rc;
}

int rs_state_batch_prune_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                              int32_t through)
{
    unsigned char v[RS_SEEN_HDR];
    if (b == NULL)
        return -1;
    memcpy(v, MAGIC_PRUNE, 4);
    rs_seen_put_le32(v + 4, (uint32_t)through);
    return stage_operand(b, "rs_state_batch_prune_seen", partition, contract_id, v, sizeof v);
}

int rs_state_batch_put_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                            uint64_t id_hash, uint64_t content_hash, int32_t period)
{
    rs_state_seen_t id = {id_hash, content_hash, period, 0};
    return rs_state_batch_merge_seen(b, partition, contract_id, &id, 1);
}

int rs_state_batch_delete_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                               uint64_t id_hash)
{
    rs_state_seen_t id = {id_hash, 0, 0, 1};
    return rs_state_batch_merge_seen(b, partition, contract_id, &id, 1);
}

/* ---- the migration from layout 2 ---- */

/* Write the value of one contract's ids (acc) under key ck as a put. */
static int migrate_put(rocksdb_writebatch_t *wb, const unsigned char *ck, size_t cklen,
                       svec_t *acc)
{
    size_t len = RS_SEEN_HDR + acc->n * RS_SEEN_ENTRY;
    unsigned char *v = malloc(len);
    if (v == NULL)
        return -1;
    memcpy(v, MAGIC_ADD, 4);
    rs_seen_put_le32(v + 4, (uint32_t)acc->n);
    for (size_t i = 0; i < acc->n; i++)
        entry_put(v + RS_SEEN_HDR + i * RS_SEEN_ENTRY, acc->v[i].idh, acc->v[i].ch,
                  acc->v[i].period);
    rocksdb_writebatch_put(wb, (const char *)ck, cklen, (const char *)v, len);
    free(v);
    acc->n = 0;
    return 0;
}

int rs_state_seen_migrate(rocksdb_t *db, const unsigned char *lkey, size_t lkeylen,
                          const unsigned char *layout, size_t layoutlen, size_t *ids,
                          size_t *contracts, char *errstr, size_t errlen)
{
    static const unsigned char lo[1] = {K_SEEN}, hi[1] = {K_SEEN + 1};
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    unsigned char ck[KEY_MAX];
    size_t cklen = 0;
    svec_t acc = {0};
    char *err = NULL;
    int rc = -1;

    *ids = *contracts = 0;
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof hi);
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
    for (rocksdb_iter_seek(it, (const char *)lo, sizeof lo); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const unsigned char *k = (const unsigned char *)rocksdb_iter_key(it, &klen);
        const unsigned char *v = (const unsigned char *)rocksdb_iter_value(it, &vlen);
        /* 0x50 BE32 id 0x00 BE64 -> BE64 BE32 */
        if (klen < 5 + 1 + 9 || klen - 9 - 5 > RS_STATE_MAX_ID_LEN || k[klen - 9] != 0 ||
            vlen != 12) {
            rs_errorf(errstr, errlen, "state layout 2 -> 3: corrupt seen key (%zu, %zu bytes)",
                      klen, vlen);
            goto done;
        }
        size_t idlen = klen - 9 - 5;
        if (acc.n > 0 && (cklen != klen - 9 || memcmp(ck + 1, k + 1, cklen - 1) != 0)) {
            if (migrate_put(wb, ck, cklen, &acc) != 0)
                goto oom;
            ++*contracts;
        }
        if (acc.n == 0) {
            cklen = 5 + idlen;
            memcpy(ck, k, cklen);
            ck[0] = K_SEEN_SET;
        }
        if (svec_reserve(&acc, 1) != 0)
            goto oom;
        acc.v[acc.n++] = (sent_t){rs_get_be64(k + klen - 8), rs_get_be64(v),
                                  (int32_t)rs_get_be32(v + 8), 0, 0};
        ++*ids;
        size_t wblen = 0;
        (void)rocksdb_writebatch_data(wb, &wblen);
        if (wblen >= ((size_t)8 << 20)) { /* in steps: the ids stay until the last write */
            rocksdb_write(db, wo, wb, &err);
            if (err != NULL)
                goto rocks;
            rocksdb_writebatch_clear(wb);
        }
    }
    rocksdb_iter_get_error(it, &err);
    if (err != NULL)
        goto rocks;
    if (acc.n > 0) {
        if (migrate_put(wb, ck, cklen, &acc) != 0)
            goto oom;
        ++*contracts;
    }
    KEY_DELETE_RANGE(wb, lo, hi);
    rocksdb_writebatch_put(wb, (const char *)lkey, lkeylen, (const char *)layout, layoutlen);
    rocksdb_writeoptions_set_sync(wo, 1);
    rocksdb_write(db, wo, wb, &err);
    if (err != NULL)
        goto rocks;
    rc = 0;
    goto done;
oom:
    rs_errorf(errstr, errlen, "state layout 2 -> 3: out of memory");
    goto done;
rocks:
    rs_errorf(errstr, errlen, "state layout 2 -> 3: %s", err);
    rocksdb_free(err);
done:
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_writebatch_destroy(wb);
    free(acc.v);
    return rc;
}
