/*
 * rs_state_bulk — a large unlogged write of the store, staged straight into
 * an array of keys that is sorted and written as table files (the
 * changelog restore's writes, rs_changelog.c).
 *
 * Staging encodes each key with rs_state's own key encoders (the caller
 * does not learn the layout) into the bulk's arena; nothing goes through a
 * RocksDB WriteBatch. rs_state_bulk_commit() sorts the keys (RocksDB's
 * bytewise order; for one key, staging order), keeps one entry per key
 * (the last operation staged: what writing the operations in order would
 * leave; the merges of a key that has only merges concatenated into one
 * operand, which does what they do in order) and writes them as table
 * files ingested into the store, or, for a small write or one a table file
 * cannot hold (a merge staged after a put or delete of its key), as one
 * unlogged WriteBatch in key order.
 *
 * Invariants:
 *   - The result in the store is what staging the same operations in an
 *     rs_state_batch and committing it with rs_state_batch_commit_ingest()
 *     would leave; the write is atomic (one ingest of all its files, or one
 *     WriteBatch). Like that call, it is NOT durable through the WAL: a
 *     write made of table files is durable once it returns, a WriteBatch
 *     only after rs_state_flush(); what a crash keeps of a sequence of
 *     such writes is a prefix of them (an ingest flushes an overlapping
 *     memtable first). So the caller uses it under a marker committed
 *     before (rs_changelog.h, R2).
 *   - Validation is that of the batch functions (partition >= 0, names
 *     1..their maximum bytes, no NULL blob with a length): the first error
 *     is remembered, and the commit refuses a bulk that has one.
 *
 * Ownership: the caller owns the bulk (rs_state_bulk_destroy accepts NULL).
 * Keys, names and small values are copied into the bulk; the blob given to
 * rs_state_bulk_put_contract (and the record given to
 * rs_state_bulk_merge_seen_packed) is BORROWED: it must stay valid and unchanged
 * until the bulk is committed, cleared or destroyed (a restore's blobs live
 * in the consumer's messages, which it keeps until then: no copy).
 * Threads: one thread per bulk at a time (the restore stages a bulk on one
 * thread and commits it on another, one after the other); a commit may
 * start threads of its own for its table files (rs_state_bulk_set_threads)
 * and joins them before it returns.
 */
#ifndef RS_STATE_BULK_H
#define RS_STATE_BULK_H

#include <stddef.h>
#include <stdint.h>

#include "rs_state.h"

typedef struct rs_state_bulk rs_state_bulk_t;

/* A new empty bulk. 0, or -1 (out of memory) with errstr. */
int rs_state_bulk_new(rs_state_bulk_t **out, char *errstr, size_t errlen);
/* Accepts NULL; writes nothing. */
void rs_state_bulk_destroy(rs_state_bulk_t *k);

/* Stage operations, as the rs_state_batch_ functions of the same names do
 * (0, or -1 with the bulk's error set, which the commit reports). The blob
 * is borrowed (see above). */
int rs_state_bulk_put_contract(rs_state_bulk_t *k, int32_t partition, const char *contract_id,
                               const void *blob, size_t len);
int rs_state_bulk_delete_contract(rs_state_bulk_t *k, int32_t partition,
                                  const char *contract_id);
int rs_state_bulk_put_contract_offsets(rs_state_bulk_t *k, const char *contract_id,
                                       const char *const *topics, const int64_t *offsets,
                                       int n);
int rs_state_bulk_put_input_offset(rs_state_bulk_t *k, const char *topic, int32_t partition,
                                   int64_t offset);
int rs_state_bulk_put_meta(rs_state_bulk_t *k, const char *name, const void *blob, size_t len);
int rs_state_bulk_put_seen(rs_state_bulk_t *k, int32_t partition, const char *contract_id,
                           uint64_t id_hash, uint64_t content_hash, int32_t period);
int rs_state_bulk_delete_seen(rs_state_bulk_t *k, int32_t partition, const char *contract_id,
                              uint64_t id_hash);
/* A merge of the contract's seen ids given as one packed record (the
 * changelog's "S/" value: "RSS2", LE32 n, n x 20 bytes; checked, then
 * BORROWED like a contract's blob): one operation for all its ids. */
int rs_state_bulk_merge_seen_packed(rs_state_bulk_t *k, int32_t partition,
                                    const char *contract_id, const void *rec, size_t len);

/* Build a large write's table files on up to `threads` threads (1..
 * RS_STATE_BULK_THREADS_MAX; default 1): as many files of consecutive key
 * ranges, ingested in one call. Worth it only when a core is idle. */
#define RS_STATE_BULK_THREADS_MAX 4
void rs_state_bulk_set_threads(rs_state_bulk_t *k, int threads);

/* Operations staged since creation or the last clear or commit. */
size_t rs_state_bulk_count(const rs_state_bulk_t *k);
/* The first staging error since the last clear, or NULL. */
const char *rs_state_bulk_error(const rs_state_bulk_t *k);
/* Drop everything staged (and the error); releases the borrowed blobs. */
void rs_state_bulk_clear(rs_state_bulk_t *k);

/* What the last successful commit of a bulk did (for logs and benches):
 * operations staged, keys written (one per key, or every operation when
 * written as a batch), table files (0: one WriteBatch), and the time
 * spent sorting, writing the files and ingesting them. */
typedef struct rs_state_bulk_stats {
    size_t ops, keys, files;
    uint64_t sort_us, files_us, ingest_us;
} rs_state_bulk_stats_t;
void rs_state_bulk_last_stats(const rs_state_bulk_t *k, rs_state_bulk_stats_t *out);

/* Write everything staged (see the invariants); an empty bulk commits
 * trivially. On success the bulk is cleared; on failure nothing was written
 * and the bulk is left as it was. 0, -1 or RS_STATE_EDISK (a full or
 * read-only disk) with errstr. */
int rs_state_bulk_commit(rs_state_t *st, rs_state_bulk_t *k, char *errstr, size_t errlen);

#endif
