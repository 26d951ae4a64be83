/*
 * rs_changelog — the state store's changelog topic: record formats and the
 * restore of one partition's state from it into the local store.
 *
 * Layout: changelog partition N holds input partition N's state, written
 * explicitly to partition N (never by key hash). Keys and values:
 *   "c/<contract_id>"  a contract: flags, its four applied offsets
 *                      (contracts, invoices, payments, usage; -1 none) and the
 *                      contract blob (rs_pstate_contract_record: packed;
 *                      older changelogs hold the fixed-width
 *                      rs_engine_export_contract form); flag DELETED
 *                      means the engine forgot the contract.
 *   "s/<contract_id>/<16 hex digits>"
 *                      an applied event id of the contract (the hash the
 *                      engine keeps, rs_engine_take_seen): the content hash
 *                      and the event's period; a tombstone (no value) when
 *                      the engine forgot the id. Restored into the store's
 *                      seen keys, so duplicates are still ignored after a
 *                      restore, while contract records hold no ids.
 *   "S/<contract_id>/<16 hex digits>"
 *                      many applied event ids of the contract in one record
 *                      (the worker packs a sub-batch's ids per contract, up
 *                      to RS_CHANGELOG_SEEN_PACK_MAX and within the
 *                      producer's message limit): 20 bytes per id instead
 *                      of a record each; the hex digits are a digest of the
 *                      ids, so two records of a contract never share a key
 *                      (compaction keeps both). Forgotten and pruned ids
 *                      still go as "s/" tombstones, applied in changelog
 *                      order after the ids they delete.
 *   "m/<N>"            the partition's meta record, written twice per batch:
 *                      first with the batch plan only (before any output of
 *                      the batch is produced), then, after the batch's
 *                      contracts, with the engine meta (rs_engine_export_meta)
 *                      and the four next input offsets (-1 none) and no plan.
 * All integers are little-endian; every value starts with a 4-byte magic.
 *
 * Invariants of a restore (rs_changelog_restore):
 *   - Records take effect in changelog order, in groups: the contracts read
 *     since the last meta record are committed together with the next meta
 *     record that carries meta ("final"), in one rs_state batch that also
 *     sets the local meta "changelog/N" to that record's offset + 1. A meta
 *     record with a plan discards the contracts read before it (they belong
 *     to a batch whose final record never came) and commits the plan
 *     ("plan/N") with "changelog/N". Contracts after the last meta record are
 *     discarded for the same reason. Hence the local store is always at a
 *     batch boundary of the changelog, possibly with a plan to replay.
 *   - Seen-id records belong to their batch as contracts do: staged with
 *     its final record, discarded with an unfinished batch. An "S/"
 *     record's value is the store's own operand format (state layout 3:
 *     one key per contract, rs_state_seen.h): staged as one merge of the
 *     contract's seen key, borrowed; "s/" records as merges of one id;
 *     the merges of one contract in a write are one operand, in changelog
 *     order.
 *   - The plan is stored in rs_pstate's own plan format (shared magic
 *     "RSPL"), so rs_pstate_load() sees it as a local pending plan.
 *   - Speed: the contracts of a group are kept (as the consumer's messages)
 *     until the group's final record, then join a window of finished
 *     groups' records, one per changelog key (a later record of a key
 *     supersedes the earlier one; a contract's applied offsets merge per
 *     topic), written with the meta records' net effect in one RocksDB
 *     write of up to RS_CHANGELOG_RESTORE_BATCH_OPS / 2 keys or 16 MiB of
 *     records, in changelog order, staged straight into a sorted key
 *     array (rs_state_bulk: no WriteBatch; contract blobs borrowed from
 *     the window's messages, which are kept until the write). A write that
 *     large is table files ingested into the store (no memtable inserts,
 *     no flush of them at the end; measured 2-3x less time than memtable
 *     writes and the final flush). A full window is written on a thread
 *     of the restore while the records that follow join a second window
 *     (one write in flight at a time, each started after the previous one
 *     returned: the writes reach the store in order). The result is what
 *     applying every record in order would leave; a write may end inside
 *     a finished group (its records are beyond the written "changelog/N":
 *     a crash restores them again, R2).
 *   - R2, crash safety: before the first restored record is written, the
 *     marker "restoring/N" is set in a (logged) commit of its own. The
 *     restored writes go WITHOUT RocksDB's write-ahead log (ingested
 *     files, or an unlogged WriteBatch for small or odd ones:
 *     rs_state_bulk_commit); rs_changelog_restore_finish()
 *     flushes the memtables to SST files (waiting) and only then clears
 *     the marker in a logged commit. A crash in between leaves the marker
 *     set: rs_changelog_restore_interrupted() reports the partition as not
 *     restored and the worker restores it again. (Each write is atomic and
 *     memtables reach the disk in order, a memtable overlapping a file
 *     being flushed before it is ingested, so what a crash keeps of the
 *     restore's writes is a prefix of them, i.e. a group boundary with its
 *     matching "changelog/N", or nothing; the marker makes the restart
 *     restore anyway.) The partitions of one restore are read by one
 *     consumer (all assigned at once, each record routed to its partition,
 *     each partition done at its own high watermark), their markers set in
 *     one commit, and finished together: one flush for all.
 *   - The window holds finished groups of any of the partitions (keyed by
 *     partition and changelog key); a write stages each partition's meta
 *     records' net effect with them, so every partition's "changelog/N"
 *     stays at a batch boundary of its own changelog.
 *   - R1 holds inside the restore too: the caller checks `from` against the
 *     low watermark, and an offset deleted after that check (a restore
 *     racing retention or the broker's trimming) fails the restore naming
 *     the partition (auto.offset.reset=error), never a silent jump.
 *
 * Ownership: encode functions return malloc'd buffers (free()). The restore
 * takes ownership of the rd_kafka_conf_t it is given (also on failure) and
 * borrows the store.
 */
#ifndef RS_CHANGELOG_H
#define RS_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "rs_pstate.h"
#include "rs_state.h"

#define RS_CHANGELOG_TOPICS 4 /* the input topics, in rs_config_topic_t order */

/* Local meta key holding the next changelog offset of partition n. */
void rs_changelog_pos_key(char *buf, size_t buflen, int32_t partition);

/* The local changelog position of `partition`: 0 found (*next set), 1 none
 * (never written, or cleared by rs_changelog_stage_clear_pos), -1 error. */
int rs_changelog_get_pos(rs_state_t *st, int32_t partition, int64_t *next, char *errstr,
                         size_t errlen);
int rs_changelog_stage_pos(rs_state_batch_t *b, int32_t partition, int64_t next);
int rs_changelog_stage_clear_pos(rs_state_batch_t *b, int32_t partition);

/* Contract record. blob NULL / len 0 with deleted=1 for a forgotten one.
 * Returns 0 or -1 (out of memory). */
int rs_changelog_encode_contract(const int64_t applied[RS_CHANGELOG_TOPICS], int deleted,
                                 const void *blob, size_t len, void **out, size_t *outlen);

/* Seen-id record: key into key[keylen] (RS_CHANGELOG_SEEN_KEY_MAX bytes
 * suffice) and, unless id->forget (a tombstone: *out NULL, *outlen 0), a
 * malloc'd value. Returns 0 or -1 (out of memory, or an id too long). */
#define RS_CHANGELOG_SEEN_KEY_MAX (2 + RS_STATE_MAX_ID_LEN + 1 + 16 + 1)
int rs_changelog_encode_seen(const rs_seen_id_t *id, char *key, size_t keylen, void **out,
                             size_t *outlen);

/* Packed seen-id record of `n` ids of one contract (none a forget; n <=
 * RS_CHANGELOG_SEEN_PACK_MAX): key into key[keylen]
 * (RS_CHANGELOG_SEEN_KEY_MAX bytes suffice), malloc'd value of
 * RS_CHANGELOG_SEEN_PACK_HDR + n * RS_CHANGELOG_SEEN_PACK_ID bytes.
 * Returns 0 or -1 (out of memory, bad arguments). */
#define RS_CHANGELOG_SEEN_PACK_MAX 16384
#define RS_CHANGELOG_SEEN_PACK_HDR 8 /* magic, count */
#define RS_CHANGELOG_SEEN_PACK_ID 20 /* id hash, content hash, period */
int rs_changelog_encode_seen_pack(const char *contract_id, const rs_seen_id_t *ids, size_t n,
                                  char *key, size_t keylen, void **out, size_t *outlen);

/* Meta record: meta may be NULL (plan record); plan may be NULL / 0. */
int rs_changelog_encode_meta(const void *meta, size_t metalen,
                             const int64_t next[RS_CHANGELOG_TOPICS],
                             const rs_plan_item_t *plan, size_t nplan, void **out,
                             size_t *outlen);

/* Progress of a restore: called at least every 2 s with partition -1 (all
 * of them) and once per partition when it is read to its end (finished 1).
 * done counts that partition's records (all records read, for -1);
 * remaining is what is left to read of all partitions. */
typedef void (*rs_changelog_progress_cb)(void *opaque, int32_t partition, int64_t done,
                                         int64_t remaining, int64_t rate_per_s, int finished);

/* One changelog partition of a restore. */
typedef struct rs_changelog_restore_part {
    int32_t partition; /* N (distinct within one restore) */
    int64_t from;      /* first offset to read */
    int64_t high;      /* read up to (excluding) this offset; > from */
    /* The local store has a pending plan (this store's worker died between
     * producing a batch and committing it). If the changelog from `from`
     * holds exactly that batch (its plan record at `from`, its final record
     * at high - 1) and nothing after it, nothing is restored: the worker
     * replays the local plan, which re-emits the same records. */
    int local_plan;
    int64_t records; /* out: records read */
    uint64_t ms;     /* out: ms from the start until it was read to its end */
} rs_changelog_restore_part_t;

typedef struct rs_changelog_restore_args {
    rd_kafka_conf_t *conf;              /* taken: bootstrap etc.; no group */
    const char *topic;                  /* the changelog topic */
    rs_changelog_restore_part_t *parts; /* the partitions, read together */
    size_t nparts;
    const char *input_topics[RS_CHANGELOG_TOPICS]; /* names of the input topics */
    long timeout_ms; /* give up when no record came for this long */
    /* Leave the markers set and the writes unflushed: the caller calls
     * rs_changelog_restore_finish() for these partitions (with others: one
     * flush for all) after a successful restore. */
    int defer_finish;
    rs_changelog_progress_cb progress; /* may be NULL */
    void *opaque;
} rs_changelog_restore_args_t;

/* Operations per RocksDB write of a restore (a group is never split). */
#define RS_CHANGELOG_RESTORE_BATCH_OPS 131072 /* 65,536 keys: 16 MiB limits first */

/* 1 if a restore of `partition` began and did not finish (R2), 0 if not,
 * -1 error (errstr). */
int rs_changelog_restore_interrupted(rs_state_t *st, int32_t partition, char *errstr,
                                     size_t errlen);

/* Make the restores of `partitions` durable (one flush of the store) and
 * clear their markers (one logged commit). 0 or -1 with errstr. */
int rs_changelog_restore_finish(rs_state_t *st, const int32_t *partitions, size_t n,
                                char *errstr, size_t errlen);

/* Read the changelog partitions a->parts (each from its `from` to its
 * `high`) into the local store (see the invariants above), with one
 * consumer: *records gets the number of records read, each part its own.
 * Returns 0, or -1 with errstr naming the partition and offset (a corrupt
 * record, a Kafka error, the timeout). */
int rs_changelog_restore(rs_state_t *st, rs_changelog_restore_args_t *a, int64_t *records,
                         char *errstr, size_t errlen);

#endif
