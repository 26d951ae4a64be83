/*
 * rs_state_sorted.h — private to rs_state: a WriteBatch written in key
 * order.
 *
 * RocksDB inserts a single writer's batch into the memtable's skiplist one
 * key after the other, reusing the search path of the previous key when the
 * next one lies just after it: in key order, an insert searches only the
 * skiplist's lowest levels. The worker stages a batch contract by contract
 * and partition by partition, so rs_state_batch_commit() writes a large
 * batch as a copy sorted by key. The sort is stable (ties by staging
 * order): two operations on one key keep their order, and the store ends
 * up the same.
 */
#ifndef RS_STATE_SORTED_H
#define RS_STATE_SORTED_H

#include <rocksdb/c.h>

/* Below this many operations the copy is not worth it. */
#define RS_STATE_SORTED_WRITE_MIN 256
/* Below this many operations a table file is not worth it (a file, its
 * sync and a manifest update per ingest). */
#define RS_STATE_INGEST_MIN 4096

/* The buffers of the key-ordered copy, kept from one commit to the next
 * (zero-initialized before the first use): the operation array and the
 * copy's WriteBatch, both reused at their grown size. */
struct sorted_op;
typedef struct rs_state_sorted {
    struct sorted_op *ops;
    size_t cap;
    rocksdb_writebatch_t *wb;
} rs_state_sorted_t;

/* Free s's buffers (s is zeroed, usable again). Accepts NULL. */
void rs_state_sorted_release(rs_state_sorted_t *s);

/* A copy in key order of wb's puts and deletes and of the merges listed in
 * merges[0..mlen) (BE32 key length, BE32 operand length, key, operand
 * each, in staging order after wb's other operations: RocksDB's C API
 * cannot iterate a WriteBatch's merges), or NULL when out of memory (the
 * caller then writes wb as it is). The copy is s->wb, valid until s's
 * next use; s owns it. */
rocksdb_writebatch_t *rs_state_sorted_copy(rs_state_sorted_t *s, rocksdb_writebatch_t *wb,
                                           const unsigned char *merges, size_t mlen);

/* The same operations (count of them) written as one table file
 * (SstFileWriter, in key order, uncompressed, one entry per key: the last
 * operation, or the key's merges concatenated) in dir and ingested into db (the file is moved
 * in; durable once ingested; a memtable holding keys in its range is flushed first, so writes
 * stay in order). Returns 0 written, 1 when the batch is not written so (fewer than
 * RS_STATE_INGEST_MIN operations, out of memory, merges of a key after a put or delete of it:
 * the caller writes it as a batch), -1 on a RocksDB error (*errptr, RocksDB's malloc'd string).
 */
int rs_state_sorted_ingest(rs_state_sorted_t *s, rocksdb_t *db,
                           const rocksdb_options_t *options, const char *dir, size_t count,
                           rocksdb_writebatch_t *wb, const unsigned char *merges, size_t mlen,
                           char **errptr);

#endif
