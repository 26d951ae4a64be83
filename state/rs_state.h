/*
 * rs_state — the worker's durable state store, on RocksDB.
 *
 * What is stored (one RocksDB database, default column family):
 *   - per input partition, the engine state of each contract the partition
 *     owns, as an opaque blob keyed by contract id;
 *   - per (topic, partition), the next input offset to consume;
 *   - per (contract, topic), the highest offset of that topic applied to the
 *     contract (the per-contract replay guard);
 *   - a few named metadata blobs (engine-global state, e.g. closed periods);
 *   - per (partition, contract), the applied event ids of the contract,
 *     each with its content hash and period, in one key written by merges
 *     (state layout 3; layout 2 had a key per id): the engine's
 *     idempotency set kept out of the contract records (rs_pstate installs
 *     it as the engine's seen store). A batch stages one merge per contract
 *     it touched, not one operation per event. A contract's ids are read
 *     whole (one Get, rs_state_get_seen_set): a usage-heavy contract's set
 *     is as large as its ids kept — 20 bytes each, bounded by the
 *     retention (state.seen.retention.months, pruned by one merge per
 *     contract), not by the store.
 *
 * Invariants:
 *   - Nothing is written except through rs_state_batch_commit() (and
 *     rs_state_drop_partition()). A batch is one RocksDB WriteBatch: after a
 *     crash at any point the whole batch is in the store or none of it is. The
 *     caller stages everything a batch of input changes — contracts, contract
 *     offsets, metadata AND the input offsets — in one batch and commits it
 *     only after the batch's outputs were acknowledged.
 *   - With sync on (the default) a commit returns only after the WAL was
 *     fsync'ed, so a committed batch survives a machine crash; with sync off it
 *     survives a process crash (SIGKILL) but maybe not a power cut.
 *   - The key layout (see rs_state.c) carries a layout version; opening a
 *     store written with another layout version, or a RocksDB database that is
 *     not a revstream store, fails with a clear error instead of misreading it.
 *   - Names are C strings without NUL: contract ids 1..RS_STATE_MAX_ID_LEN
 *     bytes, topics 1..RS_STATE_MAX_TOPIC_LEN, metadata names
 *     1..RS_STATE_MAX_META_LEN. Partitions are >= 0; offsets are >= 0.
 *     Contract ids are ordered bytewise (as strcmp orders them).
 *
 * Ownership:
 *   - rs_state_t owns the RocksDB handle and its options; rs_state_destroy()
 *     closes it (accepts NULL). A batch is owned by its creator and is not tied
 *     to a store until it is committed; rs_state_batch_destroy() accepts NULL.
 *   - Every blob or array a read returns is malloc'd for the caller, who frees
 *     it with rs_state_free(). Pointers handed to a foreach callback are valid
 *     only during that call.
 *   - Error messages go into the caller's errstr buffer (always NUL-terminated
 *     when errlen > 0); RocksDB's own malloc'd error strings are copied there
 *     and freed inside this module.
 *
 * Threads: an rs_state_t may be shared by threads for reads, commits and
 * scans (RocksDB serializes writes). A batch must be used by one thread at a
 * time. rs_state_drop_partition() must not race commits to the same partition.
 */
#ifndef RS_STATE_H
#define RS_STATE_H

#include <stddef.h>
#include <stdint.h>

/* The key layout this build reads and writes. 2 (2026-12-06): a contract's
 * applied offsets in one key instead of one per (contract, topic). 3
 * (2026-12-07): a contract's seen ids in one key instead of one per id; a
 * layout-2 store is migrated when it is first opened read-write (a
 * read-only open of one fails, naming the fix). A store of another version
 * is refused at open; it is rebuilt by starting the worker on an empty
 * state directory (a restore from the changelog). */
#define RS_STATE_LAYOUT_VERSION 3u

#define RS_STATE_MAX_ID_LEN 1024   /* contract id, bytes */
#define RS_STATE_MAX_TOPIC_LEN 249 /* Kafka's own limit */
#define RS_STATE_MAX_META_LEN 255  /* metadata name, bytes */

/* Block cache used when rs_state_opts_t.block_cache_bytes is 0. */
#define RS_STATE_DEFAULT_BLOCK_CACHE (32u * 1024u * 1024u)

typedef struct rs_state rs_state_t;
typedef struct rs_state_batch rs_state_batch_t;

/* When a commit reaches the disk. The zero value is the safe default. */
typedef enum rs_state_sync {
    RS_STATE_SYNC_DEFAULT = 0, /* = RS_STATE_SYNC_ON */
    RS_STATE_SYNC_ON = 1,      /* fsync the WAL on every commit */
    RS_STATE_SYNC_OFF = 2      /* write the WAL, let the OS flush it */
} rs_state_sync_t;

/* Options for rs_state_open(). A zero-initialized struct plus a path gives
 * the defaults: fsync each commit, 32 MiB block cache, fail if missing. */
typedef struct rs_state_opts {
    const char *path;         /* database directory (required) */
    int create_if_missing;    /* create an empty store if path has none */
    int read_only;            /* open read-only (commits and drops fail) */
    rs_state_sync_t sync;     /* see rs_state_sync_t */
    size_t block_cache_bytes; /* LRU block cache size; 0 = default */
    size_t memtable_bytes;    /* one memtable (RocksDB's write_buffer_size; at most two
                                 live: the one written and the one flushing); 0 = 64 MiB */
} rs_state_opts_t;

/* A disk fault: the store's filesystem is full (or over quota) or
 * read-only, or the directory is not writable. Nothing was written; the
 * same call succeeds once the fault is gone. */
#define RS_STATE_EDISK (-2)

/* Free space a writable store needs at open (RocksDB writes its manifest,
 * options, WAL and log files there; it aborts on an assertion, with no
 * error, when the disk fills while it opens). */
#define RS_STATE_MIN_FREE_BYTES 16777216ull /* 16 MiB */

/* Can a writable store live in `path` (created if missing)? 0, or
 * RS_STATE_EDISK with the reason in errstr ("no space left: 1.2 MiB free,
 * at least 16 MiB needed", "read-only filesystem", ...): checks the
 * filesystem's free space and writes, syncs and removes a probe file. */
int rs_state_check_dir(const char *path, char *errstr, size_t errlen);

/* Open (or create) the store at opts->path. Returns 0, or -1 with the reason
 * in errstr (missing store, lock held by another process, incompatible
 * layout version, not a revstream store, ...), or RS_STATE_EDISK when a
 * writable store's disk is full or read-only (rs_state_check_dir runs
 * first: RocksDB is not opened on a disk it cannot write). */
int rs_state_open(rs_state_t **out, const rs_state_opts_t *opts, char *errstr, size_t errlen);
/* Close the store. Accepts NULL. */
void rs_state_destroy(rs_state_t *st);

/* Free a blob or array returned by this module. Accepts NULL. */
void rs_state_free(void *p);

/* ---- reads: each returns 0 found, 1 not found, -1 error (errstr) ---- */

/* The blob of `contract_id` in `partition`; *blob is malloc'd (never NULL
 * when found, even for an empty blob); free it with rs_state_free(). */
int rs_state_get_contract(rs_state_t *st, int32_t partition, const char *contract_id,
                          void **blob, size_t *len, char *errstr, size_t errlen);
/* The next offset to consume from (topic, partition). */
int rs_state_get_input_offset(rs_state_t *st, const char *topic, int32_t partition,
                              int64_t *offset, char *errstr, size_t errlen);
/* The highest offset of `topic` applied to `contract_id`. */
int rs_state_get_contract_offset(rs_state_t *st, const char *contract_id, const char *topic,
                                 int64_t *offset, char *errstr, size_t errlen);
/* The highest offsets of several topics applied to `contract_id`, from one
 * point read (its topics share one key): offs[t] for topics[t], -1 where
 * the store has none. 0 found (some topic may still be -1), 1 the contract
 * has no offsets at all (every offs[t] -1), -1 error. */
int rs_state_get_contract_topic_offsets(rs_state_t *st, const char *contract_id,
                                        const char *const *topics, int ntopics, int64_t *offs,
                                        char *errstr, size_t errlen);
/* The metadata blob `name`; *blob as for rs_state_get_contract(). */
int rs_state_get_meta(rs_state_t *st, const char *name, void **blob, size_t *len, char *errstr,
                      size_t errlen);

/* An applied event id of `contract_id` (id_hash as the engine hashes it):
 * *content_hash and, when period is not NULL, *period (the period of the
 * event's date, as staged). Reads the contract's whole set (below): for
 * tests and tools; the worker keeps the set (rs_pstate). */
int rs_state_get_seen(rs_state_t *st, int32_t partition, const char *contract_id,
                      uint64_t id_hash, uint64_t *content_hash, int32_t *period, char *errstr,
                      size_t errlen);

/* ---- seen ids, packed per contract (layout 3) ----
 * A contract's seen ids are one value, its "set": the ids sorted by hash,
 * 20 bytes each (format in state/internal/rs_state_seen.h; opaque here).
 * The store writes it only by merges, so a batch adds ids without reading
 * the set first; a copy of the set in memory is kept exact by applying to
 * it what is staged (rs_state_seen_set_apply gives what the merge will). */

/* Period of an id whose period is unknown (ids moved from old records):
 * never pruned. (The engine's RS_PERIOD_NONE.) */
#define RS_STATE_SEEN_PERIOD_NONE INT32_MIN

/* One id to stage: added (or replaced) with its content hash and period,
 * or, with forget, removed. */
typedef struct rs_state_seen {
    uint64_t id_hash, content_hash;
    int32_t period;
    int forget;
} rs_state_seen_t;

/* The set of `contract_id`: *set malloc'd (free with rs_state_free),
 * *len bytes. 0 found, 1 none (*set NULL, *len 0), -1 error. */
int rs_state_get_seen_set(rs_state_t *st, int32_t partition, const char *contract_id,
                          void **set, size_t *len, char *errstr, size_t errlen);
/* Look an id up in a set (binary search): 1 found (*content_hash and, if
 * not NULL, *period), 0 not. A NULL set is empty. */
int rs_state_seen_set_find(const void *set, size_t len, uint64_t id_hash,
                           uint64_t *content_hash, int32_t *period);
/* The number of ids of a set (0 for NULL; (size_t)-1 if it is corrupt). */
size_t rs_state_seen_set_count(const void *set, size_t len);
/* Apply to a set in memory what rs_state_batch_merge_seen(ids, n) and then,
 * unless through is RS_STATE_SEEN_PERIOD_NONE, rs_state_batch_prune_seen
 * (through) do to the stored one: *set (may be NULL: empty) is replaced
 * by a malloc'd set. 0, or -1 (out of memory or corrupt: *set unchanged). */
int rs_state_seen_set_apply(void **set, size_t *len, const rs_state_seen_t *ids, size_t n,
                            int32_t through);

/* ---- staged batches ---- */

/* A new empty batch. Returns 0, or -1 (out of memory) with errstr. */
int rs_state_batch_new(rs_state_batch_t **out, char *errstr, size_t errlen);
/* Accepts NULL. Destroying an uncommitted batch writes nothing. */
void rs_state_batch_destroy(rs_state_batch_t *b);

/* Stage operations. Each returns 0, or -1 if an argument is invalid (empty,
 * too long, negative partition or offset, NULL blob with len > 0): the batch
 * then remembers the first such error and refuses to commit until it is
 * cleared, so a caller may check only the commit. Later operations on the
 * same key override earlier ones. */
int rs_state_batch_put_contract(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                                const void *blob, size_t len);
/* Delete the contract's blob. Its contract offsets are kept, so replayed old
 * events of the contract are still recognized as applied. */
int rs_state_batch_delete_contract(rs_state_batch_t *b, int32_t partition,
                                   const char *contract_id);
/* `offset` is the NEXT offset to consume from (topic, partition). */
int rs_state_batch_put_input_offset(rs_state_batch_t *b, const char *topic, int32_t partition,
                                    int64_t offset);
int rs_state_batch_put_contract_offset(rs_state_batch_t *b, const char *contract_id,
                                       const char *topic, int64_t offset);
/* Several topics' offsets of one contract in ONE operation (a contract's
 * offsets share one key: one RocksDB operation per contract, not per
 * topic): offsets[t] for topics[t], t < n (n <= 4); a negative offset
 * means "none" and leaves that topic as it is. As with the singular form,
 * each staged topic overrides what the store or the batch held for it. */
int rs_state_batch_put_contract_offsets(rs_state_batch_t *b, const char *contract_id,
                                        const char *const *topics, const int64_t *offsets,
                                        int n);
int rs_state_batch_put_meta(rs_state_batch_t *b, const char *name, const void *blob,
                            size_t len);
/* Seen ids of one contract added, replaced or removed (ids[0..n), in any
 * order, each id at most once) in ONE merge of its set. Seen ids are kept
 * when a contract's blob is deleted (like its contract offsets) and
 * dropped with their partition. n == 0 stages nothing. */
int rs_state_batch_merge_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                              const rs_state_seen_t *ids, size_t n);
/* One merge that drops the contract's ids whose period is known and
 * <= through (retention). */
int rs_state_batch_prune_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                              int32_t through);
/* One id added (a merge of one) and removed. */
int rs_state_batch_put_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                            uint64_t id_hash, uint64_t content_hash, int32_t period);
int rs_state_batch_delete_seen(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                               uint64_t id_hash);

/* Remember the batch as it is now (one save point; setting it again moves
 * it), and drop everything staged after it (0, or -1 with no save point).
 * The worker stages a partition's part of a batch after a save point, so a
 * partition that must be parked leaves nothing in the batch. */
void rs_state_batch_save_point(rs_state_batch_t *b);
int rs_state_batch_rollback(rs_state_batch_t *b);

/* Number of operations staged since creation or the last clear. */
size_t rs_state_batch_count(const rs_state_batch_t *b);
/* Bytes staged (the WriteBatch's size, what the WAL gets). */
size_t rs_state_batch_bytes(const rs_state_batch_t *b);
/* The first staging error since the last clear, or NULL. */
const char *rs_state_batch_error(const rs_state_batch_t *b);
/* Drop everything staged and any staging error. */
void rs_state_batch_clear(rs_state_batch_t *b);

/* Move everything staged in src to the end of dst (src is cleared; a
 * staging error of src becomes dst's): batches staged by different threads
 * are committed in one write. 0, or -1 (dst's error set). */
int rs_state_batch_append(rs_state_batch_t *dst, rs_state_batch_t *src);

/* Apply the batch atomically (one WriteBatch, fsync per opts). On success the
 * batch is cleared, ready for the next one; on failure it is left as it was
 * and nothing was written. An empty batch commits trivially. */
int rs_state_batch_commit(rs_state_t *st, rs_state_batch_t *b, char *errstr, size_t errlen);
/* (rs_state_batch_commit returns RS_STATE_EDISK when RocksDB's error is a
 * full or read-only disk: "No space left", "Read-only file system",
 * "Disk quota exceeded".) */

/* The same without RocksDB's write-ahead log: faster, and NOT durable —
 * a crash loses it unless rs_state_flush() returned after it. Only for
 * writes that a marker committed before them (with the log) makes redone
 * after a crash, e.g. a changelog restore (rs_changelog.h, R2). What a
 * crash keeps of unlogged writes is a prefix of them (memtables are
 * flushed in order). */
int rs_state_batch_commit_unlogged(rs_state_t *st, rs_state_batch_t *b, char *errstr,
                                   size_t errlen);
/* The same, for large bulk writes such as a restore's: a batch of at
 * least RS_STATE_INGEST_MIN (4096) operations is written as one table
 * file ingested into the store (no memtable inserts, no flush later; such
 * a write is durable once it returns); a smaller one, or one that cannot
 * be one file (merges of a key after a put or delete of it), is written
 * as rs_state_batch_commit_unlogged does. So the caller treats it as an
 * unlogged write (a marker, then rs_state_flush). Writes stay in order (a
 * memtable overlapping a file is flushed before it is ingested): a crash
 * keeps a prefix of these and of unlogged writes. */
int rs_state_batch_commit_ingest(rs_state_t *st, rs_state_batch_t *b, char *errstr,
                                 size_t errlen);
/* Write the memtables to SST files and wait (makes unlogged writes
 * durable). 0 or -1 / RS_STATE_EDISK with errstr. */
int rs_state_flush(rs_state_t *st, char *errstr, size_t errlen);

/* ---- scans and maintenance ---- */

/* Called once per contract of a partition; return 0 to go on, non-zero to
 * stop. The pointers are valid only during the call. */
typedef int (*rs_state_contract_cb)(void *opaque, const char *contract_id, const void *blob,
                                    size_t len);

/* Visit the contracts of `partition` in contract-id order, from one
 * consistent snapshot. Returns 0 when all were visited, 1 when the callback
 * stopped the scan, -1 on error. */
int rs_state_foreach_contract(rs_state_t *st, int32_t partition, rs_state_contract_cb cb,
                              void *opaque, char *errstr, size_t errlen);

/* Called once per seen id of a partition (see rs_state_get_seen); return 0
 * to go on, non-zero to stop. contract_id is valid only during the call. */
typedef int (*rs_state_seen_cb)(void *opaque, const char *contract_id, uint64_t id_hash,
                                uint64_t content_hash, int32_t period);
/* Visit the seen ids of `partition` (by contract id, then id hash) from one
 * consistent snapshot. 0 all visited, 1 stopped by the callback, -1 error. */
int rs_state_foreach_seen(rs_state_t *st, int32_t partition, rs_state_seen_cb cb, void *opaque,
                          char *errstr, size_t errlen);

/* The highest applied offsets of many contracts at once (one iterator, one
 * seek per contract: cheaper than n * ntopics point reads, fastest when ids
 * are sorted): offs[i * ntopics + t] for ids[i] and topics[t], -1 where the
 * store has none. Returns 0 or -1 (errstr). */
int rs_state_get_contract_offsets(rs_state_t *st, const char *const *ids, size_t n,
                                  const char *const *topics, int ntopics, int64_t *offs,
                                  char *errstr, size_t errlen);

/* Atomically delete every contract, seen id and input offset of `partition`,
 * plus the contract offsets of the deleted contracts. Returns 0 or -1. */
int rs_state_drop_partition(rs_state_t *st, int32_t partition, char *errstr, size_t errlen);

/* The partitions that have contracts or input offsets, ascending; *parts is
 * malloc'd (NULL when *n is 0); free it with rs_state_free(). Returns 0 or -1. */
int rs_state_partitions(rs_state_t *st, int32_t **parts, size_t *n, char *errstr,
                        size_t errlen);

/* Write a consistent RocksDB checkpoint (SST files hard-linked when on the
 * same filesystem) into `dir`, which must not exist yet. The checkpoint opens
 * with rs_state_open() read-only or read-write. Returns 0 or -1. */
int rs_state_checkpoint(rs_state_t *st, const char *dir, char *errstr, size_t errlen);

/* RocksDB's own figures for metrics (rocksdb_property_int); -1 where the
 * property cannot be read. Cheap (no I/O): call it every few seconds, not
 * per record. Thread-safe like every read. */
typedef struct rs_state_props {
    int64_t sst_bytes;                /* rocksdb.total-sst-files-size */
    int64_t live_data_bytes;          /* rocksdb.estimate-live-data-size */
    int64_t memtable_bytes;           /* rocksdb.cur-size-all-mem-tables */
    int64_t estimated_keys;           /* rocksdb.estimate-num-keys */
    int64_t running_compactions;      /* rocksdb.num-running-compactions */
    int64_t compaction_pending;       /* rocksdb.compaction-pending (0 or 1) */
    int64_t pending_compaction_bytes; /* rocksdb.estimate-pending-compaction-bytes */
} rs_state_props_t;
void rs_state_get_props(rs_state_t *st, rs_state_props_t *out);

/* The RocksDB version the store was built with ("7.8.3"). */
const char *rs_state_rocksdb_version(void);

#endif
