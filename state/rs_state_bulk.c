/*
 * rs_state_bulk.c — a large unlogged write staged into a sorted key array
 * and ingested as table files (rs_state_bulk.h).
 *
 * Invariants:
 *   - Every staged operation is one bulk_op_t, in staging order: its key
 *     (encoded by rs_state_keys.h, the store's one description of the
 *     layout) and copied values live in the arena at offsets (the arena
 *     moves when it grows); a borrowed blob is a pointer the caller keeps
 *     valid until the commit or clear.
 *   - The sort orders bulk_key_t items (the key's first 16 bytes as two
 *     big-endian integers, the operation's index): a stable LSD radix sort
 *     on the 16 bytes (bytes that are the same in every key are skipped),
 *     then, inside each run of equal prefixes, an ordering by the whole key
 *     and the index. So the result is RocksDB's bytewise order, and for one
 *     key, staging order.
 *   - One entry per key: the last operation of the key, or the
 *     concatenation of its merges when it has only merges (an operand of
 *     0x30 or 0x51 keys is a list applied in order; the operand is built
 *     in k->cat as a new op after the staged ones, which stay as staged),
 *     unless a merge follows a put or delete of its key (a table entry
 *     cannot hold both): then every operation is written, in that order,
 *     as one WriteBatch. The same holds for a bulk of fewer than
 *     RS_STATE_INGEST_MIN operations (a file, its sync and a manifest
 *     update are not worth it).
 *   - A large write is up to k->threads table files of consecutive key
 *     ranges (so they do not overlap), built on as many threads (the
 *     commit's own and the ones it starts and joins), and ingested in ONE call:
 *     all or none of them. The files are uncompressed (written once, read
 *     soon; compaction compresses), moved (linked) into the store, and their
 *     temporary names removed on every path.
 *
 * Ownership: the bulk owns its arrays and arena; the commit owns its
 * RocksDB options, writers and thread, all released before it returns.
 */
#include "rs_state_bulk.h"
#include "rs_bytes.h"
#include "rs_err.h"
#include "rs_state_dir.h"
#include "rs_state_keys.h"
#include "rs_state_offsets.h"
#include "rs_state_seen.h"
#include "rs_state_sorted.h"

#include <rocksdb/c.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { B_PUT, B_DELETE, B_MERGE };

typedef struct bulk_op {
    const unsigned char *v; /* a borrowed value, or NULL: at voff in the arena */
    size_t koff, voff;
    uint32_t klen, vlen;
    int kind;
} bulk_op_t;

/* What the sort moves: 24 bytes, the key's prefix and the op's index. */
typedef struct bulk_key {
    uint64_t p0, p1;
    uint32_t i;
} bulk_key_t;

struct rs_state_bulk {
    bulk_op_t *op;
    size_t n, cap;
    unsigned char *ar; /* keys and copied values */
    size_t alen, acap;
    bulk_key_t *key, *tmp; /* the sort's arrays, kcap items each */
    size_t kcap;
    unsigned char *cat; /* merges of one key concatenated (bulk_dedupe) */
    size_t catcap;
    rs_state_bulk_stats_t last; /* of the last commit */
    int threads;                /* rs_state_bulk_set_threads; 0 = 1 */
    int failed;
    char err[320];
};

int rs_state_bulk_new(rs_state_bulk_t **out, char *errstr, size_t errlen)
{
    if (out == NULL) {
        rs_errorf(errstr, errlen, "rs_state_bulk_new: NULL argument");
        return -1;
    }
    *out = calloc(1, sizeof **out);
    if (*out == NULL) {
        rs_errorf(errstr, errlen, "rs_state_bulk_new: out of memory");
        return -1;
    }
    return 0;
}

void rs_state_bulk_destroy(rs_state_bulk_t *k)
{
    if (k == NULL)
        return;
    free(k->op);
    free(k->ar);
    free(k->key);
    free(k->tmp);
    free(k->cat);
    free(k);
}

size_t rs_state_bulk_count(const rs_state_bulk_t *k)
{
    return k ? k->n : 0;
}

void rs_state_bulk_last_stats(const rs_state_bulk_t *k, rs_state_bulk_stats_t *out)
{
    *out = k != NULL ? k->last : (rs_state_bulk_stats_t){0};
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rs_state_bulk_set_threads(rs_state_bulk_t *k, int threads)
{
    if (k != NULL)
        k->threads = threads < 1                           ? 1
                     : threads > RS_STATE_BULK_THREADS_MAX ? RS_STATE_BULK_THREADS_MAX
                                                           : threads;
}

const char *rs_state_bulk_error(const rs_state_bulk_t *k)
{
    return k && k->failed ? k->err : NULL;
}

void rs_state_bulk_clear(rs_state_bulk_t *k)
{
    if (k == NULL)
        return;
    k->n = 0;
    k->alen = 0;
    k->failed = 0;
    k->err[0] = '\0';
}

/* ---- staging ---- */

static int bulk_fail(rs_state_bulk_t *k, const char *op, const char *what)
{
    if (!k->failed) {
        snprintf(k->err, sizeof k->err, "%s: %s", op, what);
        k->failed = 1;
    }
    return -1;
}

/* A name argument's length (1..max bytes), or 0 with the bulk failed. */
static size_t bulk_name(rs_state_bulk_t *k, const char *op, const char *s, size_t max,
                        const char *field)
{
    size_t n = s != NULL ? strnlen(s, max + 1) : 0;
    if (n == 0 || n > max) {
        char what[96];
        snprintf(what, sizeof what, "%s is %s", field,
                 s == NULL ? "NULL"
                 : n == 0  ? "empty"
                           : "too long");
        bulk_fail(k, op, what);
        return 0;
    }
    return n;
}

/* Room for one more operation and `need` arena bytes: where its key goes,
 * or NULL (the bulk failed: out of memory, or failed before). */
static unsigned char *bulk_reserve(rs_state_bulk_t *k, size_t need)
{
    if (k->failed)
        return NULL;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 4096;
        bulk_op_t *op = realloc(k->op, cap * sizeof *op);
        if (op == NULL) {
            bulk_fail(k, "rs_state_bulk", "out of memory");
            return NULL;
        }
        k->op = op;
        k->cap = cap;
    }
    if (k->acap - k->alen < need) {
        size_t cap = k->acap ? k->acap : 65536;
        while (cap - k->alen < need)
            cap *= 2;
        unsigned char *ar = realloc(k->ar, cap);
        if (ar == NULL) {
            bulk_fail(k, "rs_state_bulk", "out of memory");
            return NULL;
        }
        k->ar = ar;
        k->acap = cap;
    }
    return k->ar + k->alen;
}

/* The operation whose key (klen bytes) bulk_reserve's pointer now holds;
 * its value borrowed (not NULL) or copied (vlen bytes of copy). */
static int bulk_push(rs_state_bulk_t *k, int kind, size_t klen, const void *borrowed,
                     const void *copy, size_t vlen)
{
    bulk_op_t *o = &k->op[k->n++];
    *o = (bulk_op_t){borrowed, k->alen, 0, (uint32_t)klen, (uint32_t)vlen, kind};
    k->alen += klen;
    if (borrowed == NULL) {
        o->voff = k->alen;
        if (vlen > 0 && copy != NULL)
            memcpy(k->ar + k->alen, copy, vlen);
        k->alen += vlen;
    }
    return 0;
}

/* Stage a contract's put (blob borrowed) or delete (blob NULL, del). */
static int bulk_contract(rs_state_bulk_t *k, const char *op, int32_t partition, const char *id,
                         const void *blob, size_t len, int del)
{
    size_t idlen = bulk_name(k, op, id, RS_STATE_MAX_ID_LEN, "contract_id");
    if (idlen == 0)
        return -1;
    if (partition < 0)
        return bulk_fail(k, op, "partition is negative");
    if (blob == NULL && len > 0)
        return bulk_fail(k, op, "blob is NULL with a length");
    if (len > UINT32_MAX)
        return bulk_fail(k, op, "blob is too long");
    unsigned char *p = bulk_reserve(k, KEY_MAX);
    if (p == NULL)
        return -1;
    size_t klen = key_contract(p, partition, id, idlen);
    if (del)
        return bulk_push(k, B_DELETE, klen, NULL, NULL, 0);
    return bulk_push(k, B_PUT, klen, len > 0 ? blob : NULL, NULL, len);
}

int rs_state_bulk_put_contract(rs_state_bulk_t *k, int32_t partition, const char *contract_id,
                               const void *blob, size_t len)
{
    if (k == NULL)
        return -1;
    return bulk_contract(k, "rs_state_bulk_put_contract", partition, contract_id, blob, len, 0);
}

int rs_state_bulk_delete_contract(rs_state_bulk_t *k, int32_t partition,
                                  const char *contract_id)
{
    if (k == NULL)
        return -1;
    return bulk_contract(k, "rs_state_bulk_delete_contract", partition, contract_id, NULL, 0,
                         1);
}

int rs_state_bulk_put_contract_offsets(rs_state_bulk_t *k, const char *contract_id,
                                       const char *const *topics, const int64_t *offsets, int n)
{
    static const char op[] = "rs_state_bulk_put_contract_offsets";
    unsigned char v[4 * RS_STATE_OFF_ENTRY_MAX];
    size_t vlen = 0;
    if (k == NULL)
        return -1;
    size_t idlen = bulk_name(k, op, contract_id, RS_STATE_MAX_ID_LEN, "contract_id");
    if (idlen == 0)
        return -1;
    if (n < 0 || n > 4 || (n > 0 && (topics == NULL || offsets == NULL)))
        return bulk_fail(k, op, "0..4 topics, not NULL");
    for (int t = 0; t < n; t++) {
        if (offsets[t] < 0)
            continue; /* none */
        size_t tlen = bulk_name(k, op, topics[t], RS_STATE_MAX_TOPIC_LEN, "topic");
        if (tlen == 0)
            return -1;
        vlen += rs_state_off_entry(v + vlen, topics[t], tlen, offsets[t]);
    }
    if (vlen == 0)
        return 0;
    unsigned char *p = bulk_reserve(k, KEY_MAX + vlen);
    if (p == NULL)
        return -1;
    return bulk_push(k, B_MERGE, key_coffset(p, contract_id, idlen), NULL, v, vlen);
}

int rs_state_bulk_put_input_offset(rs_state_bulk_t *k, const char *topic, int32_t partition,
                                   int64_t offset)
{
    static const char op[] = "rs_state_bulk_put_input_offset";
    unsigned char v[8];
    if (k == NULL)
        return -1;
    size_t tlen = bulk_name(k, op, topic, RS_STATE_MAX_TOPIC_LEN, "topic");
    if (tlen == 0)
        return -1;
    if (partition < 0 || offset < 0)
        return bulk_fail(k, op, "partition or offset is negative");
    unsigned char *p = bulk_reserve(k, KEY_MAX + sizeof v);
    if (p == NULL)
        return -1;
    rs_put_be64(v, (uint64_t)offset);
    return bulk_push(k, B_PUT, key_input(p, topic, tlen, partition), NULL, v, sizeof v);
}

int rs_state_bulk_put_meta(rs_state_bulk_t *k, const char *name, const void *blob, size_t len)
{
    static const char op[] = "rs_state_bulk_put_meta";
    if (k == NULL)
        return -1;
    size_t nlen = bulk_name(k, op, name, RS_STATE_MAX_META_LEN, "name");
    if (nlen == 0)
        return -1;
    if ((blob == NULL && len > 0) || len > UINT32_MAX)
        return bulk_fail(k, op, "blob is NULL with a length, or too long");
    unsigned char *p = bulk_reserve(k, KEY_MAX + len);
    if (p == NULL)
        return -1;
    return bulk_push(k, B_PUT, key_meta(p, name, nlen), NULL, blob, len);
}

/* Stage a merge of the contract's seen set: `rec` (len bytes) borrowed,
 * or the one id (put or delete) copied. */
static int bulk_seen(rs_state_bulk_t *k, const char *op, int32_t partition, const char *id,
                     const void *rec, size_t len, const rs_state_seen_t *one)
{
    size_t idlen = bulk_name(k, op, id, RS_STATE_MAX_ID_LEN, "contract_id");
    if (idlen == 0)
        return -1;
    if (partition < 0)
        return bulk_fail(k, op, "partition is negative");
    if (len > UINT32_MAX)
        return bulk_fail(k, op, "record is too long");
    size_t vlen = 0;
    unsigned char *v = one != NULL ? rs_state_seen_operand(one, 1, &vlen) : NULL;
    if (one != NULL && v == NULL)
        return bulk_fail(k, "rs_state_bulk", "out of memory");
    unsigned char *p = bulk_reserve(k, KEY_MAX + vlen);
    int rc = -1;
    if (p != NULL)
        rc = bulk_push(k, B_MERGE, key_seen_set(p, partition, id, idlen), rec, v,
                       one != NULL ? vlen : len);
    free(v);
    return rc;
}

int rs_state_bulk_put_seen(rs_state_bulk_t *k, int32_t partition, const char *contract_id,
                           uint64_t id_hash, uint64_t content_hash, int32_t period)
{
    rs_state_seen_t one = {id_hash, content_hash, period, 0};
    if (k == NULL)
        return -1;
    return bulk_seen(k, "rs_state_bulk_put_seen", partition, contract_id, NULL, 0, &one);
}

int rs_state_bulk_delete_seen(rs_state_bulk_t *k, int32_t partition, const char *contract_id,
                              uint64_t id_hash)
{
    rs_state_seen_t one = {id_hash, 0, 0, 1};
    if (k == NULL)
        return -1;
    return bulk_seen(k, "rs_state_bulk_delete_seen", partition, contract_id, NULL, 0, &one);
}

int rs_state_bulk_merge_seen_packed(rs_state_bulk_t *k, int32_t partition,
                                    const char *contract_id, const void *rec, size_t len)
{
    static const char op[] = "rs_state_bulk_merge_seen_packed";
    if (k == NULL)
        return -1;
    if (rec == NULL || rs_state_seen_count(rec, len) == (size_t)-1)
        return bulk_fail(k, op, "not a packed seen-id record");
    return bulk_seen(k, op, partition, contract_id, rec, len, NULL);
}

/* ---- the sort ---- */

static const unsigned char *op_key(const rs_state_bulk_t *k, const bulk_key_t *x)
{
    return k->ar + k->op[x->i].koff;
}

static const unsigned char *op_val(const rs_state_bulk_t *k, const bulk_op_t *o)
{
    return o->v != NULL ? o->v : k->ar + o->voff;
}

/* Byte j (0..15) of an item's prefix. */
static unsigned prefix_byte(const bulk_key_t *x, int j)
{
    uint64_t w = j < 8 ? x->p0 : x->p1;
    return (unsigned)(w >> (56 - 8 * (j & 7))) & 0xffu;
}

/* Whole keys, then staging order (the prefixes are equal). */
static int cmp_whole(const rs_state_bulk_t *k, const bulk_key_t *a, const bulk_key_t *b)
{
    uint32_t la = k->op[a->i].klen, lb = k->op[b->i].klen;
    int c = memcmp(op_key(k, a), op_key(k, b), la < lb ? la : lb);
    if (c != 0)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* The bulk the qsort of a long run of equal prefixes compares in. */
static _Thread_local const rs_state_bulk_t *sort_bulk;

static int cmp_whole_q(const void *a, const void *b)
{
    return cmp_whole(sort_bulk, a, b);
}

/* Order a run of equal prefixes by whole key and index. */
static void sort_run(const rs_state_bulk_t *k, bulk_key_t *a, size_t n)
{
    if (n > 16) {
        sort_bulk = k;
        qsort(a, n, sizeof *a, cmp_whole_q);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        bulk_key_t x = a[i];
        size_t j = i;
        for (; j > 0 && cmp_whole(k, &x, &a[j - 1]) < 0; j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

/* k->key[0..n) in key order, then staging order. 0, or -1 out of memory. */
static int bulk_sort(rs_state_bulk_t *k)
{
    size_t n = k->n;
    if (k->kcap < n) {
        free(k->key);
        free(k->tmp);
        k->key = malloc(n * sizeof *k->key);
        k->tmp = malloc(n * sizeof *k->tmp);
        k->kcap = k->key != NULL && k->tmp != NULL ? n : 0;
        if (k->kcap == 0)
            return -1;
    }
    size_t(*cnt)[256] = calloc(16, sizeof *cnt);
    if (cnt == NULL)
        return -1;
    bulk_key_t *a = k->key, *b = k->tmp;
    for (size_t i = 0; i < n; i++) {
        unsigned char pre[16] = {0};
        const bulk_op_t *o = &k->op[i];
        memcpy(pre, k->ar + o->koff, o->klen < 16 ? o->klen : 16);
        a[i] = (bulk_key_t){rs_get_be64(pre), rs_get_be64(pre + 8), (uint32_t)i};
        for (int j = 0; j < 16; j++)
            cnt[j][pre[j]]++;
    }
    for (int j = 15; j >= 0; j--) {
        size_t *c = cnt[j], sum = 0;
        if (c[prefix_byte(&a[0], j)] == n)
            continue; /* the same byte in every key */
        for (int d = 0; d < 256; d++) {
            size_t x = c[d];
            c[d] = sum;
            sum += x;
        }
        for (size_t i = 0; i < n; i++)
            b[c[prefix_byte(&a[i], j)]++] = a[i];
        bulk_key_t *t = a;
        a = b;
        b = t;
    }
    free(cnt);
    k->key = a;
    k->tmp = b;
    for (size_t s = 0, e; s < n; s = e) {
        for (e = s + 1; e < n && a[e].p0 == a[s].p0 && a[e].p1 == a[s].p1; e++)
            ;
        if (e - s > 1)
            sort_run(k, a + s, e - s);
    }
    return 0;
}

static int same_key(const rs_state_bulk_t *k, const bulk_key_t *a, const bulk_key_t *b)
{
    return a->p0 == b->p0 && a->p1 == b->p1 && k->op[a->i].klen == k->op[b->i].klen &&
           memcmp(op_key(k, a), op_key(k, b), k->op[a->i].klen) == 0;
}

/* One item per key: the last operation, or the merges of a key that has
 * only merges, concatenated into one operand (a merge operand of either
 * kind is a list applied in order: 0x30 entries, 0x51 records), kept in
 * k->cat. When a merge follows a put or delete of its key, the items as
 * they are. The count kept; *one_per_key set when it is one per key; -1
 * out of memory. */
static size_t bulk_dedupe(rs_state_bulk_t *k, int *one_per_key)
{
    bulk_key_t *a = k->key;
    size_t need = 0, runs = 0;
    for (size_t i = 1; i < k->n; i++) {
        if (k->op[a[i].i].kind != B_MERGE || !same_key(k, &a[i - 1], &a[i]))
            continue;
        if (k->op[a[i - 1].i].kind != B_MERGE) {
            *one_per_key = 0;
            return k->n;
        }
        int head = i == 1 || !same_key(k, &a[i - 2], &a[i - 1]);
        need += k->op[a[i].i].vlen + (head ? k->op[a[i - 1].i].vlen : 0);
        runs += head;
    }
    /* a run's operand is a new op after the staged ones (k->op[n..]), so
     * the staged ops stay as they were (a failed commit can be retried) */
    if (runs > 0 && k->cap < k->n + runs) {
        bulk_op_t *op = realloc(k->op, (k->n + runs) * sizeof *op);
        if (op == NULL)
            return (size_t)-1;
        k->op = op;
        k->cap = k->n + runs;
    }
    if (need > k->catcap) {
        unsigned char *c = realloc(k->cat, need);
        if (c == NULL)
            return (size_t)-1;
        k->cat = c;
        k->catcap = need;
    }
    size_t m = 0, used = 0, extra = k->n;
    int in_cat = 0; /* a[m - 1] is a run's operand in k->cat */
    for (size_t i = 0; i < k->n; i++) {
        const bulk_op_t *o = &k->op[a[i].i];
        if (m == 0 || !same_key(k, &a[m - 1], &a[i]) || o->kind != B_MERGE) {
            if (m == 0 || !same_key(k, &a[m - 1], &a[i]))
                m++;
            a[m - 1] = a[i];
            in_cat = 0;
            continue;
        }
        if (!in_cat) {
            const bulk_op_t *h = &k->op[a[m - 1].i];
            memcpy(k->cat + used, op_val(k, h), h->vlen);
            k->op[extra] = *h;
            k->op[extra].v = k->cat + used;
            used += h->vlen;
            a[m - 1].i = (uint32_t)extra++;
            in_cat = 1;
        }
        memcpy(k->cat + used, op_val(k, o), o->vlen);
        used += o->vlen;
        k->op[a[m - 1].i].vlen += o->vlen;
    }
    *one_per_key = 1;
    return m;
}

/* ---- the writes ---- */

/* items[0..n) as one unlogged WriteBatch. */
static void bulk_write_batch(const rs_state_handles_t *h, const rs_state_bulk_t *k, size_t n,
                             char **err)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (size_t i = 0; i < n; i++) {
        const bulk_op_t *o = &k->op[k->key[i].i];
        const char *key = (const char *)k->ar + o->koff, *v = (const char *)op_val(k, o);
        if (o->kind == B_DELETE)
            rocksdb_writebatch_delete(wb, key, o->klen);
        else if (o->kind == B_MERGE)
            rocksdb_writebatch_merge(wb, key, o->klen, v, o->vlen);
        else
            rocksdb_writebatch_put(wb, key, o->klen, v, o->vlen);
    }
    rocksdb_write(h->db, h->wopts_nowal, wb, err);
    rocksdb_writebatch_destroy(wb);
}

/* One table file of items [lo, hi) (one per key, in key order). */
typedef struct bulk_file {
    const rs_state_handles_t *h;
    const rs_state_bulk_t *k;
    size_t lo, hi;
    char path[4200];
    int opened;
    char *err;
} bulk_file_t;

static void *bulk_file_write(void *arg)
{
    bulk_file_t *f = arg;
    const rs_state_bulk_t *k = f->k;
    rocksdb_options_t *fo = rocksdb_options_create_copy((rocksdb_options_t *)f->h->options);
    rocksdb_envoptions_t *eo = rocksdb_envoptions_create();
    /* written once, read soon, compacted later: compression is compaction's */
    rocksdb_options_set_compression(fo, rocksdb_no_compression);
    rocksdb_sstfilewriter_t *w = rocksdb_sstfilewriter_create(eo, fo);
    rocksdb_sstfilewriter_open(w, f->path, &f->err);
    f->opened = f->err == NULL;
    for (size_t i = f->lo; f->err == NULL && i < f->hi; i++) {
        const bulk_op_t *o = &k->op[k->key[i].i];
        const char *key = (const char *)k->ar + o->koff, *v = (const char *)op_val(k, o);
        if (o->kind == B_DELETE)
            rocksdb_sstfilewriter_delete(w, key, o->klen, &f->err);
        else if (o->kind == B_MERGE)
            rocksdb_sstfilewriter_merge(w, key, o->klen, v, o->vlen, &f->err);
        else
            rocksdb_sstfilewriter_put(w, key, o->klen, v, o->vlen, &f->err);
    }
    if (f->err == NULL)
        rocksdb_sstfilewriter_finish(w, &f->err);
    rocksdb_sstfilewriter_destroy(w);
    rocksdb_envoptions_destroy(eo);
    rocksdb_options_destroy(fo);
    return NULL;
}

/* items[0..n) (one per key) as up to k->threads files ingested in one
 * call. */
static void bulk_ingest(const rs_state_handles_t *h, rs_state_bulk_t *k, size_t n, char **err)
{
    bulk_file_t f[RS_STATE_BULK_THREADS_MAX];
    pthread_t th[RS_STATE_BULK_THREADS_MAX];
    int started[RS_STATE_BULK_THREADS_MAX] = {0};
    const char *paths[RS_STATE_BULK_THREADS_MAX];
    size_t most = k->threads > 1 ? (size_t)k->threads : 1;
    size_t nf = n / RS_STATE_INGEST_MIN; /* files of at least that many keys */

    nf = nf < 1 ? 1 : nf > most ? most : nf;
    for (size_t i = 0, lo = 0; i < nf; i++) {
        size_t hi = i + 1 == nf ? n : lo + n / nf;
        f[i] = (bulk_file_t){h, k, lo, hi, "", 0, NULL};
        snprintf(f[i].path, sizeof f[i].path, "%s/bulk-%zu.sst.tmp", h->path, i);
        paths[i] = f[i].path;
        lo = hi;
    }
    /* the last file on this thread, the others on their own */
    for (size_t i = 0; i + 1 < nf; i++)
        started[i] = pthread_create(&th[i], NULL, bulk_file_write, &f[i]) == 0;
    for (size_t i = 0; i < nf; i++)
        if (i + 1 == nf || !started[i])
            bulk_file_write(&f[i]);
    for (size_t i = 0; i + 1 < nf; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    for (size_t i = 0; i < nf && *err == NULL; i++)
        if (f[i].err != NULL) {
            *err = f[i].err;
            f[i].err = NULL;
        }
    k->last.files = nf;
    k->last.files_us = now_us();
    if (*err == NULL) {
        rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
        /* moved (linked) into the store; durable once ingested */
        rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
        rocksdb_ingestexternalfileoptions_set_allow_global_seqno(io, 1);
        rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 1);
        rocksdb_ingest_external_file(h->db, paths, nf, io, err);
        rocksdb_ingestexternalfileoptions_destroy(io);
    }
    k->last.ingest_us = now_us();
    for (size_t i = 0; i < nf; i++) {
        if (f[i].opened)
            unlink(f[i].path);
        rocksdb_free(f[i].err);
    }
}

int rs_state_bulk_commit(rs_state_t *st, rs_state_bulk_t *k, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_bulk_commit";
    rs_state_handles_t h;
    char *err = NULL;
    int one_per_key = 0;

    if (st == NULL || k == NULL) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (k->failed) {
        rs_errorf(errstr, errlen, "%s: not committed: %s", op, k->err);
        return -1;
    }
    if (rs_state_handles(st, &h, op, errstr, errlen) != 0)
        return -1;
    k->last = (rs_state_bulk_stats_t){k->n, 0, 0, 0, 0, 0};
    if (k->n == 0)
        return 0;
    uint64_t t0 = now_us();
    if (bulk_sort(k) != 0) {
        rs_errorf(errstr, errlen, "%s: out of memory", op);
        return -1;
    }
    size_t n = bulk_dedupe(k, &one_per_key);
    if (n == (size_t)-1) {
        rs_errorf(errstr, errlen, "%s: out of memory", op);
        return -1;
    }
    uint64_t t1 = now_us();
    k->last.keys = n;
    k->last.sort_us = t1 - t0;
    if (one_per_key && n >= RS_STATE_INGEST_MIN) {
        bulk_ingest(&h, k, n, &err);
        k->last.ingest_us -= k->last.files_us;
        k->last.files_us -= t1;
    } else {
        bulk_write_batch(&h, k, n, &err);
        k->last.ingest_us = now_us() - t1;
    }
    if (err != NULL) {
        int disk = rs_state_is_disk_fault(err);
        rs_errorf(errstr, errlen, "%s: %s", op, err);
        rocksdb_free(err);
        return disk ? RS_STATE_EDISK : -1;
    }
    rs_state_bulk_clear(k);
    return 0;
}
