/*
 * rs_state_sorted.c — a WriteBatch copied in key order (rs_state_sorted.h).
 *
 * Invariants: the copy holds exactly the operations of the batch (its puts
 * and deletes, from the WriteBatch, and its merges, from the list rs_state
 * keeps of them: RocksDB's C iteration skips merges), ordered by RocksDB's default
 * bytewise key order and, for one key, in staging order (the sort compares
 * the staging index last), so writing it gives the same store as writing
 * the batch. The slices the iteration hands out point into the batch's own
 * buffer, which is not changed while they are used.
 *
 * Ownership: the caller owns the copy (rocksdb_writebatch_destroy).
 */
#include "rs_state_sorted.h"
#include "rs_bytes.h"

#include <stdlib.h>
#include <string.h>

typedef struct sorted_op {
    const char *k, *v; /* into the batch's own buffer, which is not changed */
    size_t klen, vlen;
    size_t seq; /* staging order */
    int kind;   /* SORTED_PUT, SORTED_DELETE, SORTED_MERGE */
} sorted_op_t;

enum { SORTED_PUT, SORTED_DELETE, SORTED_MERGE };

typedef struct sorted_ops {
    sorted_op_t *v;
    size_t n, cap;
    int oom;
} sorted_ops_t;

static void sorted_add(sorted_ops_t *o, const char *k, size_t klen, const char *v, size_t vlen,
                       int kind)
{
    if (o->oom)
        return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 1024;
        sorted_op_t *nv = realloc(o->v, cap * sizeof *nv);
        if (nv == NULL) {
            o->oom = 1;
            return;
        }
        o->v = nv;
        o->cap = cap;
    }
    o->v[o->n] = (sorted_op_t){k, v, klen, vlen, o->n, kind};
    o->n++;
}

static void sorted_put(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    sorted_add(opaque, k, klen, v, vlen, SORTED_PUT);
}

static void sorted_delete(void *opaque, const char *k, size_t klen)
{
    sorted_add(opaque, k, klen, NULL, 0, SORTED_DELETE);
}

/* RocksDB's default (bytewise) key order, then staging order. */
static int cmp_sorted_op(const void *pa, const void *pb)
{
    const sorted_op_t *a = pa, *b = pb;
    int c = memcmp(a->k, b->k, a->klen < b->klen ? a->klen : b->klen);
    if (c != 0)
        return c;
    if (a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

rocksdb_writebatch_t *rs_state_sorted_copy(rocksdb_writebatch_t *wb,
                                           const unsigned char *merges, size_t mlen)
{
    sorted_ops_t o = {0};
    rocksdb_writebatch_t *out = NULL;

    rocksdb_writebatch_iterate(wb, &o, sorted_put, sorted_delete);
    for (size_t at = 0; at < mlen;) {
        size_t klen = rs_get_be32(merges + at), vlen = rs_get_be32(merges + at + 4);
        const char *k = (const char *)merges + at + 8;
        sorted_add(&o, k, klen, k + klen, vlen, SORTED_MERGE);
        at += 8 + klen + vlen;
    }
    if (!o.oom) {
        if (o.n > 1)
            qsort(o.v, o.n, sizeof *o.v, cmp_sorted_op);
        out = rocksdb_writebatch_create();
        for (size_t i = 0; out != NULL && i < o.n; i++) {
            if (o.v[i].kind == SORTED_DELETE)
                rocksdb_writebatch_delete(out, o.v[i].k, o.v[i].klen);
            else if (o.v[i].kind == SORTED_MERGE)
                rocksdb_writebatch_merge(out, o.v[i].k, o.v[i].klen, o.v[i].v, o.v[i].vlen);
            else
                rocksdb_writebatch_put(out, o.v[i].k, o.v[i].klen, o.v[i].v, o.v[i].vlen);
        }
    }
    free(o.v);
    return out;
}
