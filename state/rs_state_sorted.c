/*
 * rs_state_sorted.c — a WriteBatch copied in key order (rs_state_sorted.h).
 *
 * Invariants: the copy holds exactly the operations of the batch (its puts
 * and deletes, from the WriteBatch, and its merges, from the list rs_state
 * keeps of them: RocksDB's C iteration skips merges), ordered by RocksDB's default
 * bytewise key order and, for one key, in staging order (the sort compares
 * the staging index last), so writing it gives the same store as writing
 * the batch. The slices the iteration hands out point into the batch's own
 * buffer, which is not changed while they are used. Each operation keeps
 * its key's first 16 bytes as two integers, which decide most comparisons
 * of the sort (measured: ~10 % off a restore's time).
 * rs_state_sorted_ingest writes the same order as a table file: one entry
 * per key (the last operation, or a key's merges concatenated into one
 * operand when it has only merges; a merge after a put or delete of its
 * key makes the batch go as a write instead).
 *
 * The copy and its operation array live in an rs_state_sorted_t the
 * caller keeps (rs_state keeps one per batch) and are reused: a cleared
 * WriteBatch keeps its buffer's capacity, so a commit as large as an
 * earlier one allocates nothing and touches no new page (measured on the
 * worker's 8 MiB batches: bench/README.md, h17-commit).
 *
 * Ownership: the rs_state_sorted_t owns the copy and the array
 * (rs_state_sorted_release frees them).
 */
#include "rs_state_sorted.h"
#include "rs_bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sorted_op {
    uint64_t p0, p1;   /* the key's first 16 bytes, big-endian, zero-padded */
    const char *k, *v; /* into the batch's own buffer, which is not changed */
    size_t klen, vlen;
    size_t seq; /* staging order */
    int kind;   /* SORTED_PUT, SORTED_DELETE, SORTED_MERGE */
};
typedef struct sorted_op sorted_op_t;

enum { SORTED_PUT, SORTED_DELETE, SORTED_MERGE };

/* The operations being collected: the array is the scratch's (kept
 * between commits: *v and *cap are written back to it). */
typedef struct sorted_ops {
    sorted_op_t *v;
    size_t n, cap;
    int oom;
} sorted_ops_t;

void rs_state_sorted_release(rs_state_sorted_t *s)
{
    if (s == NULL)
        return;
    free(s->ops);
    if (s->wb != NULL)
        rocksdb_writebatch_destroy(s->wb);
    *s = (rs_state_sorted_t){0};
}

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
    unsigned char pre[16] = {0};
    memcpy(pre, k, klen < 16 ? klen : 16);
    o->v[o->n] =
        (sorted_op_t){rs_get_be64(pre), rs_get_be64(pre + 8), k, v, klen, vlen, o->n, kind};
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

/* RocksDB's default (bytewise) key order, then staging order. The
 * prefixes decide most comparisons without reading the keys (a key shorter
 * than 16 bytes is padded with zeros: equal prefixes then fall through to
 * the full comparison, where the shorter key comes first). */
static int cmp_sorted_op(const void *pa, const void *pb)
{
    const sorted_op_t *a = pa, *b = pb;
    if (a->p0 != b->p0)
        return a->p0 < b->p0 ? -1 : 1;
    if (a->p1 != b->p1)
        return a->p1 < b->p1 ? -1 : 1;
    int c = memcmp(a->k, b->k, a->klen < b->klen ? a->klen : b->klen);
    if (c != 0)
        return c;
    if (a->klen != b->klen)
        return a->klen < b->klen ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* wb's operations and the listed merges in key order (then staging
 * order); o->oom when out of memory. */
static void sorted_collect(sorted_ops_t *o, rocksdb_writebatch_t *wb,
                           const unsigned char *merges, size_t mlen)
{
    rocksdb_writebatch_iterate(wb, o, sorted_put, sorted_delete);
    for (size_t at = 0; at < mlen;) {
        size_t klen = rs_get_be32(merges + at), vlen = rs_get_be32(merges + at + 4);
        const char *k = (const char *)merges + at + 8;
        sorted_add(o, k, klen, k + klen, vlen, SORTED_MERGE);
        at += 8 + klen + vlen;
    }
    if (!o->oom && o->n > 1)
        qsort(o->v, o->n, sizeof *o->v, cmp_sorted_op);
}

static int same_key(const sorted_op_t *a, const sorted_op_t *b)
{
    return a->klen == b->klen && memcmp(a->k, b->k, a->klen) == 0;
}

static void copy_op(rocksdb_writebatch_t *out, const sorted_op_t *x)
{
    if (x->kind == SORTED_DELETE)
        rocksdb_writebatch_delete(out, x->k, x->klen);
    else if (x->kind == SORTED_MERGE)
        rocksdb_writebatch_merge(out, x->k, x->klen, x->v, x->vlen);
    else
        rocksdb_writebatch_put(out, x->k, x->klen, x->v, x->vlen);
}

rocksdb_writebatch_t *rs_state_sorted_copy(rs_state_sorted_t *s, rocksdb_writebatch_t *wb,
                                           const unsigned char *merges, size_t mlen)
{
    sorted_ops_t o = {s->ops, 0, s->cap, 0};

    sorted_collect(&o, wb, merges, mlen);
    s->ops = o.v;
    s->cap = o.cap;
    if (o.oom)
        return NULL;
    if (s->wb == NULL)
        s->wb = rocksdb_writebatch_create();
    else
        rocksdb_writebatch_clear(s->wb); /* keeps its buffer */
    for (size_t i = 0; i < o.n; i++)
        copy_op(s->wb, &o.v[i]);
    return s->wb;
}

int rs_state_sorted_ingest(rs_state_sorted_t *s, rocksdb_t *db,
                           const rocksdb_options_t *options, const char *dir, size_t count,
                           rocksdb_writebatch_t *wb, const unsigned char *merges, size_t mlen,
                           char **errptr)
{
    sorted_ops_t o = {s->ops, 0, s->cap, 0};
    rocksdb_options_t *fo = NULL;
    rocksdb_envoptions_t *eo = NULL;
    rocksdb_sstfilewriter_t *w = NULL;
    rocksdb_ingestexternalfileoptions_t *io = NULL;
    char path[4200];
    char *cat = NULL; /* merges of one key, concatenated */
    int rc = 1, opened = 0;

    if (count < RS_STATE_INGEST_MIN)
        return 1;
    sorted_collect(&o, wb, merges, mlen);
    s->ops = o.v;
    s->cap = o.cap;
    if (o.oom || o.n == 0)
        goto out;
    /* One entry per key: the last operation, or the merges of a key that
     * has only merges concatenated into one operand (an operand is a list
     * applied in order, rs_state.c); merges after a put or a delete (an
     * entry cannot hold both): not as a file. */
    size_t n = 0, need = 0;
    for (size_t i = 1; i < o.n; i++)
        if (o.v[i].kind == SORTED_MERGE && same_key(&o.v[i - 1], &o.v[i])) {
            if (o.v[i - 1].kind != SORTED_MERGE)
                goto out;
            need += o.v[i].vlen + o.v[i - 1].vlen;
        }
    if (need > 0 && (cat = malloc(need)) == NULL)
        goto out;
    size_t used = 0;
    int in_cat = 0;
    for (size_t i = 0; i < o.n; i++) {
        if (n == 0 || !same_key(&o.v[n - 1], &o.v[i])) {
            o.v[n++] = o.v[i];
            in_cat = 0;
        } else if (o.v[i].kind != SORTED_MERGE) {
            o.v[n - 1] = o.v[i];
            in_cat = 0;
        } else {
            if (cat == NULL) /* not reached: the count above saw this merge */
                goto out;
            if (!in_cat) {
                memcpy(cat + used, o.v[n - 1].v, o.v[n - 1].vlen);
                o.v[n - 1].v = cat + used;
                used += o.v[n - 1].vlen;
                in_cat = 1;
            }
            memcpy(cat + used, o.v[i].v, o.v[i].vlen);
            used += o.v[i].vlen;
            o.v[n - 1].vlen += o.v[i].vlen;
        }
    }
    snprintf(path, sizeof path, "%s/ingest.sst.tmp", dir);
    fo = rocksdb_options_create_copy((rocksdb_options_t *)options);
    eo = rocksdb_envoptions_create();
    io = rocksdb_ingestexternalfileoptions_create();
    /* written once, read soon, compacted later: compression is compaction's */
    rocksdb_options_set_compression(fo, rocksdb_no_compression);
    w = rocksdb_sstfilewriter_create(eo, fo);
    rc = -1;
    rocksdb_sstfilewriter_open(w, path, errptr);
    opened = *errptr == NULL;
    for (size_t i = 0; *errptr == NULL && i < n; i++) {
        const sorted_op_t *x = &o.v[i];
        if (x->kind == SORTED_DELETE)
            rocksdb_sstfilewriter_delete(w, x->k, x->klen, errptr);
        else if (x->kind == SORTED_MERGE)
            rocksdb_sstfilewriter_merge(w, x->k, x->klen, x->v, x->vlen, errptr);
        else
            rocksdb_sstfilewriter_put(w, x->k, x->klen, x->v, x->vlen, errptr);
    }
    if (*errptr == NULL)
        rocksdb_sstfilewriter_finish(w, errptr);
    if (*errptr != NULL)
        goto out;
    /* moved (linked) into the store; durable once ingested */
    rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
    rocksdb_ingestexternalfileoptions_set_allow_global_seqno(io, 1);
    rocksdb_ingestexternalfileoptions_set_allow_blocking_flush(io, 1);
    const char *files[1] = {path};
    rocksdb_ingest_external_file(db, files, 1, io, errptr);
    if (*errptr == NULL)
        rc = 0;
out:
    if (opened)
        unlink(path);
    if (w != NULL)
        rocksdb_sstfilewriter_destroy(w);
    if (io != NULL)
        rocksdb_ingestexternalfileoptions_destroy(io);
    if (eo != NULL)
        rocksdb_envoptions_destroy(eo);
    if (fo != NULL)
        rocksdb_options_destroy(fo);
    free(cat);
    return rc;
}
