/*
 * rs_state.c — the RocksDB state store (see rs_state.h for the contract).
 *
 * Key layout (layout version 3; one default column family; keys compare
 * bytewise). Each key starts with a one-byte kind, so every kind is one
 * contiguous key range, and partition numbers are fixed-width big-endian so a
 * partition's keys are one contiguous range inside its kind:
 *
 *   0x01 "layout"                      -> "RSST" BE32(layout version)
 *   0x10 BE32(partition) contract_id   -> contract blob (opaque)
 *   0x20 BE32(partition) topic         -> BE64(next input offset)
 *   0x30 contract_id                   -> the contract's applied offsets:
 *                                         entries u8(topic length) topic
 *                                         BE64(highest applied offset), one
 *                                         per topic (layout 1: one key per
 *                                         (contract, topic))
 *   0x40 name                          -> metadata blob (opaque)
 *   0x51 BE32(partition) contract_id   -> the contract's applied event ids
 *                                         (the engine's seen store,
 *                                         rs_pstate): "RSS2" LE32(n), n x
 *                                         (LE64 id hash, LE64 content hash,
 *                                         LE32 period), sorted by id hash;
 *                                         written by merges (rs_state_seen.c).
 *                                         Layout 2 had a key per id, 0x50
 *                                         BE32(partition) contract_id 0x00
 *                                         BE64(id hash) -> BE64(content hash)
 *                                         BE32(period): migrated at the first
 *                                         read-write open (check_layout).
 *
 * Why it holds together:
 *   - Partition N's contracts are exactly [0x10 BE32(N), 0x10 BE32(N+1)):
 *     the partition field has a fixed width, so ids that are prefixes of each
 *     other ("a", "ab") never leak into a neighbouring partition, and inside
 *     the range keys sort by contract id. Partitions are >= 0, so N+1 fits in
 *     32 unsigned bits. The same holds for a partition's input offsets (0x20).
 *     rs_state_drop_partition() therefore needs three DeleteRange calls,
 *     plus a point delete of the 0x30 key of each contract it drops.
 *   - A 0x30 key is written by merges only (rocksdb_writebatch_merge with
 *     this module's merge operator, named "rs_offsets" since layout 2):
 *     each operand is a list of entries, and the merge keeps, per topic,
 *     the entry of the latest operand, exactly as one put per (contract,
 *     topic) did in layout 1. So the worker's commit and the restore stage
 *     ONE operation per contract whatever the number of topics, without
 *     reading the key first. A 0x51 key likewise (the operator dispatches
 *     on the key's kind): one merge per contract a sub-batch touched,
 *     instead of a put per event. A value or operand that does not parse
 *     fails the merge, which RocksDB reports as corruption on the read; it
 *     is never guessed at.
 *   - The layout key is written (with fsync) when a store is created. Opening
 *     a store whose layout key has another version fails; so does opening a
 *     non-empty database that has no layout key (not a revstream store). A
 *     future layout bumps RS_STATE_LAYOUT_VERSION and migrates explicitly.
 *   - Offsets are stored as 8-byte big-endian values of non-negative int64s;
 *     a value of any other length is reported as corruption, never guessed at.
 *   - All writes go through one rocksdb_write() of one WriteBatch, so they are
 *     atomic; RocksDB recovers the WAL in point-in-time mode, so a torn tail
 *     record (a crash mid-write) is dropped whole. A large batch is written
 *     as a copy in key order (rs_state_sorted.c; stable: the operations on
 *     one key keep their order, so the result is the same), whose memtable
 *     inserts are hinted (a skiplist position kept per key prefix,
 *     rs_state_keys.h: an insert searches a few nodes, not the whole list;
 *     no range deletion is hinted, KEY_DELETE_RANGE); the copy's buffers
 *     stay with the batch for its next commit. Batches staged on several
 *     threads are appended to one (rs_state_batch_append) and still
 *     written once.
 *     Large batches can be written as table files and ingested
 *     (rs_state_batch_commit_ingest, rs_state_sorted.c): no memtable; the
 *     restore stages its writes without a batch (rs_state_bulk.c).
 *   - A contract's seen ids are read with one Get of its 0x51 key (the
 *     worker keeps the set with the contract, rs_pstate); the tables have a
 *     full bloom filter and the memtable a whole-key one for the misses (a
 *     contract with no ids); a bloom filter never hides a present key.
 *
 * Ownership: rs_state_t owns the DB, its options, the block cache and the
 * shared read/write options; scans create their own read options (iterator
 * bounds point into the scan's stack). RocksDB's malloc'd error strings are
 * copied into errstr and freed with rocksdb_free() right away; values are
 * read pinned and copied once into a malloc'd buffer the caller owns.
 */
#include "rs_state.h"
#include "rs_bytes.h"
#include "rs_err.h"
#include "rs_log.h"
#include "rs_state_dir.h"
#include "rs_state_keys.h"
#include "rs_state_offsets.h"
#include "rs_state_seen.h"
#include "rs_state_sorted.h"
#include "rs_state_tune.h"

#include <rocksdb/c.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const unsigned char LAYOUT_KEY[] = {K_LAYOUT, 'l', 'a', 'y', 'o', 'u', 't'};
static const char LAYOUT_MAGIC[4] = {'R', 'S', 'S', 'T'};

struct rs_state {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_cache_t *cache;
    rocksdb_env_t *env; /* rs_state_tune_t.bg_nice only; else RocksDB's default */
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_writeoptions_t *wopts_nowal; /* rs_state_batch_commit_unlogged */
    int read_only;
    char *path;
};

struct rs_state_batch {
    rocksdb_writebatch_t *wb;
    size_t count;
    int failed;
    char err[320];
    size_t saved_count; /* count at the save point */
    int saved;          /* a save point is set */
    /* The batch's merges again, in staging order (BE32 klen, BE32 vlen,
     * key, operand each): RocksDB's C API iterates a WriteBatch's puts and
     * deletes only, and silently skips its merges, so the key-ordered copy
     * and rs_state_batch_append() take the merges from here. */
    unsigned char *mg;
    size_t mglen, mgcap;
    size_t saved_mglen; /* mglen at the save point */
    /* The key-ordered copy's buffers (rs_state_sorted.h), kept for the next
     * commit: a batch committed again and again (the worker's) allocates
     * and faults nothing for its copy once it reached its largest size. */
    rs_state_sorted_t sorted;
    int sorted_fresh;  /* rs_state_batch_tune: free them after each commit */
    size_t sorted_min; /* the copy from this many operations (RS_STATE_SORTED_WRITE_MIN) */
};

/* ---- small helpers ---- */

/* Copy "<context>: <rocksdb error>" into errstr and free the RocksDB string. */
static void take_rocks_err(char *errstr, size_t errlen, char *err, const char *context)
{
    rs_errorf(errstr, errlen, "%s: %s", context, err ? err : "unknown RocksDB error");
    rocksdb_free(err);
}

/* One log line of component "state" (rs_log: JSON or text). */
static void state_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rs_logv(RS_LOG_INFO, "state", fmt, ap);
    va_end(ap);
}

/* Validate a name argument; on failure write "<op>: <field> ..." into msg. */
static int check_name(const char *s, size_t max, size_t *len, const char *op, const char *field,
                      char *msg, size_t msglen)
{
    size_t n;
    if (!s) {
        rs_errorf(msg, msglen, "%s: %s is NULL", op, field);
        return -1;
    }
    n = strnlen(s, max + 1);
    if (n == 0) {
        rs_errorf(msg, msglen, "%s: %s is empty", op, field);
        return -1;
    }
    if (n > max) {
        rs_errorf(msg, msglen, "%s: %s is longer than %zu bytes", op, field, max);
        return -1;
    }
    *len = n;
    return 0;
}

static int check_partition(int32_t partition, const char *op, char *msg, size_t msglen)
{
    if (partition < 0) {
        rs_errorf(msg, msglen, "%s: partition %d is negative", op, (int)partition);
        return -1;
    }
    return 0;
}

/* ---- reads ---- */

/* Look a key up pinned. Returns 0 found (*ps set), 1 not found, -1 error. */
static int get_pinned(rs_state_t *st, const unsigned char *k, size_t klen,
                      rocksdb_pinnableslice_t **ps, const char *context, char *errstr,
                      size_t errlen)
{
    char *err = NULL;
    *ps = rocksdb_get_pinned(st->db, st->ropts, (const char *)k, klen, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, context);
        rocksdb_pinnableslice_destroy(*ps);
        *ps = NULL;
        return -1;
    }
    return *ps ? 0 : 1;
}

static int get_blob(rs_state_t *st, const unsigned char *k, size_t klen, void **blob,
                    size_t *len, const char *context, char *errstr, size_t errlen)
{
    rocksdb_pinnableslice_t *ps = NULL;
    const char *v;
    size_t vlen = 0;
    void *copy;
    int rc = get_pinned(st, k, klen, &ps, context, errstr, errlen);
    if (rc != 0)
        return rc;
    v = rocksdb_pinnableslice_value(ps, &vlen);
    copy = malloc(vlen ? vlen : 1);
    if (!copy) {
        rs_errorf(errstr, errlen, "%s: out of memory for a %zu-byte value", context, vlen);
        rc = -1;
        goto done;
    }
    if (vlen)
        memcpy(copy, v, vlen);
    *blob = copy;
    *len = vlen;
done:
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

static int get_offset(rs_state_t *st, const unsigned char *k, size_t klen, int64_t *offset,
                      const char *context, char *errstr, size_t errlen)
{
    rocksdb_pinnableslice_t *ps = NULL;
    const char *v;
    size_t vlen = 0;
    uint64_t u;
    int rc = get_pinned(st, k, klen, &ps, context, errstr, errlen);
    if (rc != 0)
        return rc;
    v = rocksdb_pinnableslice_value(ps, &vlen);
    if (vlen != 8) {
        rs_errorf(errstr, errlen, "%s: corrupt offset value (%zu bytes, expected 8)", context,
                  vlen);
        rc = -1;
        goto done;
    }
    u = rs_get_be64((const unsigned char *)v);
    if (u > (uint64_t)INT64_MAX) {
        rs_errorf(errstr, errlen, "%s: corrupt offset value (negative)", context);
        rc = -1;
        goto done;
    }
    *offset = (int64_t)u;
done:
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int rs_state_get_contract(rs_state_t *st, int32_t partition, const char *contract_id,
                          void **blob, size_t *len, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_get_contract";
    unsigned char k[KEY_MAX];
    char ctx[128 + RS_STATE_MAX_ID_LEN];
    size_t idlen = 0;
    if (!st || !blob || !len) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (check_partition(partition, op, errstr, errlen) ||
        check_name(contract_id, RS_STATE_MAX_ID_LEN, &idlen, op, "contract_id", errstr, errlen))
        return -1;
    snprintf(ctx, sizeof ctx, "%s: partition=%d contract_id=%s", op, (int)partition,
             contract_id);
    return get_blob(st, k, key_contract(k, partition, contract_id, idlen), blob, len, ctx,
                    errstr, errlen);
}

int rs_state_get_input_offset(rs_state_t *st, const char *topic, int32_t partition,
                              int64_t *offset, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_get_input_offset";
    unsigned char k[KEY_MAX];
    char ctx[128 + RS_STATE_MAX_TOPIC_LEN];
    size_t tlen = 0;
    if (!st || !offset) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (check_partition(partition, op, errstr, errlen) ||
        check_name(topic, RS_STATE_MAX_TOPIC_LEN, &tlen, op, "topic", errstr, errlen))
        return -1;
    snprintf(ctx, sizeof ctx, "%s: topic=%s partition=%d", op, topic, (int)partition);
    return get_offset(st, k, key_input(k, topic, tlen, partition), offset, ctx, errstr, errlen);
}

int rs_state_get_contract_topic_offsets(rs_state_t *st, const char *contract_id,
                                        const char *const *topics, int ntopics, int64_t *offs,
                                        char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_get_contract_topic_offsets";
    unsigned char k[KEY_MAX];
    char rerr[512] = ""; /* the error's context is formatted only for an error */
    size_t idlen = 0, vlen = 0, tlen[64];
    rocksdb_pinnableslice_t *ps = NULL;
    if (!st || !topics || !offs || ntopics < 0 || ntopics > 64) {
        rs_errorf(errstr, errlen, "%s: NULL argument or more than 64 topics", op);
        return -1;
    }
    if (check_name(contract_id, RS_STATE_MAX_ID_LEN, &idlen, op, "contract_id", errstr, errlen))
        return -1;
    for (int t = 0; t < ntopics; t++) {
        offs[t] = -1;
        if (check_name(topics[t], RS_STATE_MAX_TOPIC_LEN, &tlen[t], op, "topic", errstr,
                       errlen))
            return -1;
    }
    int rc =
        get_pinned(st, k, key_coffset(k, contract_id, idlen), &ps, "read", rerr, sizeof rerr);
    const unsigned char *v = NULL;
    if (rc == 0) /* the value first: its length is set by this call */
        v = (const unsigned char *)rocksdb_pinnableslice_value(ps, &vlen);
    for (int t = 0; rc == 0 && t < ntopics; t++)
        if (rs_state_off_find(v, vlen, topics[t], tlen[t], &offs[t]) < 0) {
            snprintf(rerr, sizeof rerr, "corrupt offsets value (%zu bytes)", vlen);
            rc = -1;
        }
    if (rc < 0)
        rs_errorf(errstr, errlen, "%s: contract_id=%s: %s", op, contract_id, rerr);
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int rs_state_get_meta(rs_state_t *st, const char *name, void **blob, size_t *len, char *errstr,
                      size_t errlen)
{
    static const char op[] = "rs_state_get_meta";
    unsigned char k[KEY_MAX];
    char ctx[128 + RS_STATE_MAX_META_LEN];
    size_t nlen = 0;
    if (!st || !blob || !len) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (check_name(name, RS_STATE_MAX_META_LEN, &nlen, op, "name", errstr, errlen))
        return -1;
    snprintf(ctx, sizeof ctx, "%s: name=%s", op, name);
    return get_blob(st, k, key_meta(k, name, nlen), blob, len, ctx, errstr, errlen);
}

void rs_state_free(void *p)
{
    free(p);
}

/* ---- open / close ---- */

/* Check (or, for a new empty store, write) the layout key. */
static int check_layout(rs_state_t *st, char *errstr, size_t errlen)
{
    rocksdb_pinnableslice_t *ps = NULL;
    rocksdb_iterator_t *it = NULL;
    rocksdb_writeoptions_t *wo = NULL;
    char *err = NULL;
    char ctx[64 + 4096];
    unsigned char val[8];
    int rc = -1, found;

    snprintf(ctx, sizeof ctx, "rs_state_open: path=%s", st->path);
    found = get_pinned(st, LAYOUT_KEY, sizeof LAYOUT_KEY, &ps, ctx, errstr, errlen);
    if (found < 0)
        goto done;
    if (found == 0) {
        size_t vlen = 0;
        const unsigned char *v = (const unsigned char *)rocksdb_pinnableslice_value(ps, &vlen);
        uint32_t version;
        if (vlen != 8 || memcmp(v, LAYOUT_MAGIC, 4) != 0) {
            rs_errorf(errstr, errlen,
                      "%s: malformed layout key (%zu bytes); not a revstream state store", ctx,
                      vlen);
            goto done;
        }
        version = rs_get_be32(v + 4);
        if (version == 2 && !st->read_only) { /* seen ids packed per contract: migrate */
            size_t ids = 0, contracts = 0;
            memcpy(val, LAYOUT_MAGIC, 4);
            rs_put_be32(val + 4, RS_STATE_LAYOUT_VERSION);
            if (rs_state_seen_migrate(st->db, LAYOUT_KEY, sizeof LAYOUT_KEY, val, sizeof val,
                                      &ids, &contracts, errstr, errlen) != 0)
                goto done;
            state_log("event=store_migrated path=%s layout=2->%u seen_ids=%zu contracts=%zu",
                      st->path, (unsigned)RS_STATE_LAYOUT_VERSION, ids, contracts);
            version = RS_STATE_LAYOUT_VERSION;
        }
        if (version != RS_STATE_LAYOUT_VERSION) {
            rs_errorf(errstr, errlen,
                      "%s: store has state layout version %u, this build reads only version "
                      "%u%s",
                      ctx, (unsigned)version, (unsigned)RS_STATE_LAYOUT_VERSION,
                      version == 2 ? " (a layout-2 store is migrated when opened read-write: "
                                     "start the worker on it once)"
                                   : " (no migration: move the state directory away and start "
                                     "the worker on an empty one, which restores its "
                                     "partitions from the changelog)");
            goto done;
        }
        rc = 0;
        goto done;
    }

    /* No layout key: only an empty database may become a store. */
    it = rocksdb_create_iterator(st->db, st->ropts);
    rocksdb_iter_seek_to_first(it);
    if (rocksdb_iter_valid(it)) {
        rs_errorf(
            errstr, errlen,
            "%s: database has data but no revstream layout key; not a revstream state store",
            ctx);
        goto done;
    }
    rocksdb_iter_get_error(it, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, ctx);
        goto done;
    }
    if (st->read_only) {
        rc = 0; /* an empty store, nothing to write */
        goto done;
    }
    memcpy(val, LAYOUT_MAGIC, 4);
    rs_put_be32(val + 4, RS_STATE_LAYOUT_VERSION);
    wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    rocksdb_put(st->db, wo, (const char *)LAYOUT_KEY, sizeof LAYOUT_KEY, (const char *)val,
                sizeof val, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, ctx);
        goto done;
    }
    state_log("event=store_initialized path=%s layout=%u", st->path,
              (unsigned)RS_STATE_LAYOUT_VERSION);
    rc = 0;
done:
    if (wo)
        rocksdb_writeoptions_destroy(wo);
    if (it)
        rocksdb_iter_destroy(it);
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int rs_state_open(rs_state_t **out, const rs_state_opts_t *opts, char *errstr, size_t errlen)
{
    const rs_state_tune_t t = RS_STATE_TUNE_DEFAULT;
    return rs_state_open_tuned(out, opts, &t, errstr, errlen);
}

int rs_state_open_tuned(rs_state_t **out, const rs_state_opts_t *opts, const rs_state_tune_t *t,
                        char *errstr, size_t errlen)
{
    rs_state_t *st = NULL;
    rocksdb_block_based_table_options_t *bbo = NULL;
    char *err = NULL;
    char ctx[64 + 4096];
    size_t cache_bytes;
    int rc = -1;

    if (out)
        *out = NULL;
    if (!out || !opts) {
        rs_errorf(errstr, errlen, "rs_state_open: NULL argument");
        goto done;
    }
    if (!opts->path || !*opts->path) {
        rs_errorf(errstr, errlen, "rs_state_open: opts.path is empty");
        goto done;
    }
    if (strlen(opts->path) >= 4096) {
        rs_errorf(errstr, errlen, "rs_state_open: opts.path is longer than 4095 bytes");
        goto done;
    }
    if (opts->sync != RS_STATE_SYNC_DEFAULT && opts->sync != RS_STATE_SYNC_ON &&
        opts->sync != RS_STATE_SYNC_OFF) {
        rs_errorf(errstr, errlen, "rs_state_open: opts.sync has unknown value %d",
                  (int)opts->sync);
        goto done;
    }
    st = calloc(1, sizeof *st);
    if (!st || !(st->path = strdup(opts->path))) {
        rs_errorf(errstr, errlen, "rs_state_open: out of memory");
        goto done;
    }
    st->read_only = opts->read_only != 0;
    snprintf(ctx, sizeof ctx, "rs_state_open: path=%s", st->path);
    if (!st->read_only && (rc = rs_state_check_dir(st->path, errstr, errlen)) != 0)
        goto done;
    rc = -1;

    st->options = rocksdb_options_create();
    if (t->insert_hint) {
        /* Memtable inserts of one key prefix (rs_state_keys.h: kind and partition)
         * continue from where the last insert of that prefix left the skiplist (a
         * splice per prefix, fixed up from the lowest level that brackets the key):
         * the key-ordered copy's inserts then search only a few nodes, where a plain
         * insert searches from the top level whenever keys already in the memtable
         * lie between two inserted ones (the worker rewrites contracts the memtable
         * holds). Set by name: the C API has no setter for it. Range deletions must
         * not be hinted (KEY_DELETE_RANGE). */
        rocksdb_options_t *hinted = rocksdb_options_create();
        rocksdb_get_options_from_string(st->options, KEY_HINT_EXTRACTOR, hinted, &err);
        rocksdb_options_destroy(st->options);
        st->options = hinted;
        if (err) {
            take_rocks_err(errstr, errlen, err, ctx);
            goto done;
        }
    }
    rocksdb_options_set_merge_operator(st->options, rs_state_offsets_merge_operator());
    rocksdb_options_set_create_if_missing(st->options,
                                          (opts->create_if_missing && !st->read_only) ? 1 : 0);
    rocksdb_options_increase_parallelism(st->options, 2);
    rocksdb_options_set_wal_recovery_mode(st->options, 2 /* kPointInTimeRecovery */);
    rocksdb_options_set_keep_log_file_num(st->options, 4);
    rocksdb_options_set_max_log_file_size(st->options, (size_t)8 * 1024 * 1024);
    if (opts->memtable_bytes)
        rocksdb_options_set_write_buffer_size(st->options, opts->memtable_bytes);
    /* Point reads (contracts, seen sets) that miss: a bloom filter over the memtable's
     * whole keys answers most without a skiplist search (the tables have theirs,
     * below); it has no false negatives: a present key is always found. */
    if (t->memtable_bloom) {
        rocksdb_options_set_memtable_prefix_bloom_size_ratio(st->options, 0.1);
        rocksdb_options_set_memtable_whole_key_filtering(st->options, 1);
    }

    cache_bytes = opts->block_cache_bytes ? opts->block_cache_bytes
                                          : (size_t)RS_STATE_DEFAULT_BLOCK_CACHE;
    st->cache = rocksdb_cache_create_lru(cache_bytes);
    bbo = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(bbo, st->cache);
    /* The table options take ownership of the filter policy. */
    rocksdb_block_based_options_set_filter_policy(bbo,
                                                  rocksdb_filterpolicy_create_bloom_full(10));
    /* LZ4 in 16 KiB blocks: the close's scans run twice snappy's 4 KiB (per file) */
    rocksdb_block_based_options_set_block_size(bbo, (size_t)16 * 1024);
    rocksdb_options_set_compression(st->options, rocksdb_lz4_compression);
    if (t->l0_plain) {
        int levels[7] = {rocksdb_no_compression};
        for (int i = 1; i < 7; i++)
            levels[i] = rocksdb_lz4_compression;
        rocksdb_options_set_compression_per_level(st->options, levels, 7);
    }
    /* Compact level 0 into level 1 every 8 flushes, not 4: each such compaction
     * rewrites level 1 (the worker's contracts are spread over the whole key range),
     * so half as many rewrites; a point read checks the bloom filters of up to 8
     * level-0 files (bench_state worker: background CPU x0.71, reads x1.05). */
    if (t->l0_trigger > 0)
        rocksdb_options_set_level0_file_num_compaction_trigger(st->options, t->l0_trigger);
    if (t->bg_nice) {
        st->env = rocksdb_create_default_env();
        rocksdb_env_lower_thread_pool_cpu_priority(st->env);
        rocksdb_env_lower_high_priority_thread_pool_cpu_priority(st->env);
        rocksdb_options_set_env(st->options, st->env);
    }
    rocksdb_options_set_block_based_table_factory(st->options, bbo);

    st->ropts = rocksdb_readoptions_create();
    st->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(st->wopts, opts->sync == RS_STATE_SYNC_OFF ? 0 : 1);
    st->wopts_nowal = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(st->wopts_nowal, 1);

    if (st->read_only)
        st->db = rocksdb_open_for_read_only(st->options, st->path, 0, &err);
    else
        st->db = rocksdb_open(st->options, st->path, &err);
    if (err || !st->db) {
        take_rocks_err(errstr, errlen, err, ctx);
        goto done;
    }
    if (check_layout(st, errstr, errlen) != 0)
        goto done;
    *out = st;
    st = NULL;
    rc = 0;
done:
    if (bbo)
        rocksdb_block_based_options_destroy(bbo);
    rs_state_destroy(st);
    return rc;
}

void rs_state_destroy(rs_state_t *st)
{
    if (!st)
        return;
    if (st->db)
        rocksdb_close(st->db);
    if (st->ropts)
        rocksdb_readoptions_destroy(st->ropts);
    if (st->wopts)
        rocksdb_writeoptions_destroy(st->wopts);
    if (st->wopts_nowal)
        rocksdb_writeoptions_destroy(st->wopts_nowal);
    if (st->options)
        rocksdb_options_destroy(st->options);
    if (st->cache)
        rocksdb_cache_destroy(st->cache);
    if (st->env)
        rocksdb_env_destroy(st->env);
    free(st->path);
    free(st);
}

/* ---- batches ---- */

int rs_state_batch_new(rs_state_batch_t **out, char *errstr, size_t errlen)
{
    rs_state_batch_t *b = NULL;
    int rc = -1;
    if (!out) {
        rs_errorf(errstr, errlen, "rs_state_batch_new: NULL argument");
        goto done;
    }
    *out = NULL;
    b = calloc(1, sizeof *b);
    if (!b) {
        rs_errorf(errstr, errlen, "rs_state_batch_new: out of memory");
        goto done;
    }
    b->wb = rocksdb_writebatch_create();
    b->sorted_min = RS_STATE_SORTED_WRITE_MIN;
    *out = b;
    b = NULL;
    rc = 0;
done:
    rs_state_batch_destroy(b);
    return rc;
}

void rs_state_batch_destroy(rs_state_batch_t *b)
{
    if (!b)
        return;
    if (b->wb)
        rocksdb_writebatch_destroy(b->wb);
    rs_state_sorted_release(&b->sorted);
    free(b->mg);
    free(b);
}

void rs_state_batch_tune(rs_state_batch_t *b, size_t sorted_min, int fresh)
{
    b->sorted_min = sorted_min > 0 ? sorted_min : SIZE_MAX;
    b->sorted_fresh = fresh != 0;
}

/* Remember the first staging error; always returns -1. */
static int batch_fail(rs_state_batch_t *b, const char *msg);

/* Stage a merge: into the WriteBatch and the batch's own list of merges
 * (struct rs_state_batch). 0, or -1 (the batch failed: out of memory). */
static int batch_merge(rs_state_batch_t *b, const unsigned char *k, size_t klen,
                       const unsigned char *v, size_t vlen)
{
    size_t need = 8 + klen + vlen;
    if (b->mgcap - b->mglen < need) {
        size_t cap = b->mgcap ? b->mgcap : 4096;
        while (cap - b->mglen < need)
            cap *= 2;
        unsigned char *nm = realloc(b->mg, cap);
        if (nm == NULL)
            return batch_fail(b, "rs_state_batch: out of memory");
        b->mg = nm;
        b->mgcap = cap;
    }
    unsigned char *o = b->mg + b->mglen;
    rs_put_be32(o, (uint32_t)klen);
    rs_put_be32(o + 4, (uint32_t)vlen);
    memcpy(o + 8, k, klen);
    memcpy(o + 8 + klen, v, vlen);
    b->mglen += need;
    rocksdb_writebatch_merge(b->wb, (const char *)k, klen, (const char *)v, vlen);
    b->count++;
    return 0;
}
static int batch_fail(rs_state_batch_t *b, const char *msg)
{
    if (!b->failed) {
        snprintf(b->err, sizeof b->err, "%s", msg);
        b->failed = 1;
    }
    return -1;
}

static int check_blob(const void *blob, size_t len, const char *op, char *msg, size_t msglen)
{
    if (!blob && len > 0) {
        rs_errorf(msg, msglen, "%s: blob is NULL but len is %zu", op, len);
        return -1;
    }
    return 0;
}

static int check_offset(int64_t offset, const char *op, char *msg, size_t msglen)
{
    if (offset < 0) {
        rs_errorf(msg, msglen, "%s: offset %lld is negative", op, (long long)offset);
        return -1;
    }
    return 0;
}

int rs_state_batch_put_contract(rs_state_batch_t *b, int32_t partition, const char *contract_id,
                                const void *blob, size_t len)
{
    static const char op[] = "rs_state_batch_put_contract";
    unsigned char k[KEY_MAX];
    char msg[256];
    size_t idlen = 0;
    if (!b)
        return -1;
    if (check_partition(partition, op, msg, sizeof msg) ||
        check_name(contract_id, RS_STATE_MAX_ID_LEN, &idlen, op, "contract_id", msg,
                   sizeof msg) ||
        check_blob(blob, len, op, msg, sizeof msg))
        return batch_fail(b, msg);
    rocksdb_writebatch_put(b->wb, (const char *)k,
                           key_contract(k, partition, contract_id, idlen),
                           blob ? (const char *)blob : "", len);
    b->count++;
    return 0;
}

int rs_state_batch_delete_contract(rs_state_batch_t *b, int32_t partition,
                                   const char *contract_id)
{
    static const char op[] = "rs_state_batch_delete_contract";
    unsigned char k[KEY_MAX];
    char msg[256];
    size_t idlen = 0;
    if (!b)
        return -1;
    if (check_partition(partition, op, msg, sizeof msg) ||
        check_name(contract_id, RS_STATE_MAX_ID_LEN, &idlen, op, "contract_id", msg,
                   sizeof msg))
        return batch_fail(b, msg);
    rocksdb_writebatch_delete(b->wb, (const char *)k,
                              key_contract(k, partition, contract_id, idlen));
    b->count++;
    return 0;
}

int rs_state_batch_put_input_offset(rs_state_batch_t *b, const char *topic, int32_t partition,
                                    int64_t offset)
{
    static const char op[] = "rs_state_batch_put_input_offset";
    unsigned char k[KEY_MAX], v[8];
    char msg[256];
    size_t tlen = 0;
    if (!b)
        return -1;
    if (check_partition(partition, op, msg, sizeof msg) ||
        check_name(topic, RS_STATE_MAX_TOPIC_LEN, &tlen, op, "topic", msg, sizeof msg) ||
        check_offset(offset, op, msg, sizeof msg))
        return batch_fail(b, msg);
    rs_put_be64(v, (uint64_t)offset);
    rocksdb_writebatch_put(b->wb, (const char *)k, key_input(k, topic, tlen, partition),
                           (const char *)v, sizeof v);
    b->count++;
    return 0;
}

int rs_state_batch_put_contract_offset(rs_state_batch_t *b, const char *contract_id,
                                       const char *topic, int64_t offset)
{
    char msg[256];
    if (!b)
        return -1;
    if (check_offset(offset, "rs_state_batch_put_contract_offset", msg, sizeof msg))
        return batch_fail(b, msg);
    return rs_state_batch_put_contract_offsets(b, contract_id, &topic, &offset, 1);
}

int rs_state_batch_put_contract_offsets(rs_state_batch_t *b, const char *contract_id,
                                        const char *const *topics, const int64_t *offsets,
                                        int n)
{
    static const char op[] = "rs_state_batch_put_contract_offsets";
    unsigned char k[KEY_MAX], v[4 * RS_STATE_OFF_ENTRY_MAX];
    char msg[256];
    size_t idlen = 0, vlen = 0;
    if (!b)
        return -1;
    if (check_name(contract_id, RS_STATE_MAX_ID_LEN, &idlen, op, "contract_id", msg,
                   sizeof msg))
        return batch_fail(b, msg);
    if (n < 0 || n > 4 || (n > 0 && (!topics || !offsets))) {
        rs_errorf(msg, sizeof msg, "%s: %d topics (0..4, not NULL)", op, n);
        return batch_fail(b, msg);
    }
    for (int t = 0; t < n; t++) {
        size_t tlen = 0;
        if (offsets[t] < 0)
            continue; /* none */
        if (check_name(topics[t], RS_STATE_MAX_TOPIC_LEN, &tlen, op, "topic", msg, sizeof msg))
            return batch_fail(b, msg);
        vlen += rs_state_off_entry(v + vlen, topics[t], tlen, offsets[t]);
    }
    if (vlen == 0)
        return 0;
    return batch_merge(b, k, key_coffset(k, contract_id, idlen), v, vlen);
}

int rs_state_batch_put_meta(rs_state_batch_t *b, const char *name, const void *blob, size_t len)
{
    static const char op[] = "rs_state_batch_put_meta";
    unsigned char k[KEY_MAX];
    char msg[256];
    size_t nlen = 0;
    if (!b)
        return -1;
    if (check_name(name, RS_STATE_MAX_META_LEN, &nlen, op, "name", msg, sizeof msg) ||
        check_blob(blob, len, op, msg, sizeof msg))
        return batch_fail(b, msg);
    rocksdb_writebatch_put(b->wb, (const char *)k, key_meta(k, name, nlen),
                           blob ? (const char *)blob : "", len);
    b->count++;
    return 0;
}

int rs_state_batch_merge_key(rs_state_batch_t *b, const unsigned char *k, size_t klen,
                             const unsigned char *v, size_t vlen)
{
    return vlen == 0 ? 0 : batch_merge(b, k, klen, v, vlen);
}

int rs_state_batch_failed(rs_state_batch_t *b, const char *msg)
{
    return batch_fail(b, msg);
}

int rs_state_check_id(int32_t partition, const char *id, size_t *idlen, const char *op,
                      char *msg, size_t msglen)
{
    return check_partition(partition, op, msg, msglen) ||
                   check_name(id, RS_STATE_MAX_ID_LEN, idlen, op, "contract_id", msg, msglen)
               ? -1
               : 0;
}

void rs_state_reader(rs_state_t *st, rocksdb_t **db, const rocksdb_readoptions_t **ropts)
{
    *db = st->db;
    *ropts = st->ropts;
}

void rs_state_batch_save_point(rs_state_batch_t *b)
{
    if (!b)
        return;
    if (b->saved) {
        char *err = NULL;
        rocksdb_writebatch_pop_save_point(b->wb, &err);
        rocksdb_free(err);
    }
    rocksdb_writebatch_set_save_point(b->wb);
    b->saved_count = b->count;
    b->saved_mglen = b->mglen;
    b->saved = 1;
}

int rs_state_batch_rollback(rs_state_batch_t *b)
{
    char *err = NULL;
    if (!b || !b->saved)
        return -1;
    rocksdb_writebatch_rollback_to_save_point(b->wb, &err);
    b->saved = 0;
    if (err) {
        rocksdb_free(err);
        return batch_fail(b, "rs_state_batch_rollback: rollback to the save point failed");
    }
    b->count = b->saved_count;
    b->mglen = b->saved_mglen;
    return 0;
}

size_t rs_state_batch_count(const rs_state_batch_t *b)
{
    return b ? b->count : 0;
}

size_t rs_state_batch_bytes(const rs_state_batch_t *b)
{
    size_t size = 0;
    if (b)
        (void)rocksdb_writebatch_data(b->wb, &size);
    return size;
}

const char *rs_state_batch_error(const rs_state_batch_t *b)
{
    return (b && b->failed) ? b->err : NULL;
}

void rs_state_batch_clear(rs_state_batch_t *b)
{
    if (!b)
        return;
    rocksdb_writebatch_clear(b->wb);
    b->count = 0;
    b->mglen = 0;
    b->saved = 0;
    b->failed = 0;
    b->err[0] = '\0';
}

static int check_writable(rs_state_t *st, const char *op, char *errstr, size_t errlen)
{
    if (st->read_only) {
        rs_errorf(errstr, errlen, "%s: store path=%s is open read-only", op, st->path);
        return -1;
    }
    return 0;
}

int rs_state_handles(rs_state_t *st, rs_state_handles_t *h, const char *op, char *errstr,
                     size_t errlen)
{
    if (check_writable(st, op, errstr, errlen))
        return -1;
    *h = (rs_state_handles_t){st->db, st->options, st->wopts_nowal, st->path};
    return 0;
}

static void append_put(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    rocksdb_writebatch_put(opaque, k, klen, v, vlen);
}

static void append_delete(void *opaque, const char *k, size_t klen)
{
    rocksdb_writebatch_delete(opaque, k, klen);
}

int rs_state_batch_append(rs_state_batch_t *dst, rs_state_batch_t *src)
{
    if (!dst || !src)
        return -1;
    if (src->failed) {
        if (!dst->failed)
            batch_fail(dst, src->err);
        rs_state_batch_clear(src);
        return -1;
    }
    /* The iteration copies the puts and deletes (and skips the merges,
     * which are only ever staged on 0x30 and 0x51 keys: no put or delete
     * of such a key is staged, so merges and the other operations never share a
     * key and their relative order does not matter); the merges follow,
     * in their order, from src's list. */
    rocksdb_writebatch_iterate(src->wb, dst->wb, append_put, append_delete);
    dst->count += src->count;
    for (size_t at = 0; at < src->mglen;) {
        size_t klen = rs_get_be32(src->mg + at), vlen = rs_get_be32(src->mg + at + 4);
        if (batch_merge(dst, src->mg + at + 8, klen, src->mg + at + 8 + klen, vlen) != 0) {
            rs_state_batch_clear(src);
            return -1;
        }
        dst->count--; /* counted with src->count */
        at += 8 + klen + vlen;
    }
    rs_state_batch_clear(src);
    return 0;
}

static int batch_write(rs_state_t *st, rs_state_batch_t *b, const rocksdb_writeoptions_t *wo,
                       const char *op, char *errstr, size_t errlen)
{
    char *err = NULL;
    if (!st || !b) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (b->failed) {
        rs_errorf(errstr, errlen, "%s: batch not committed: %s", op, b->err);
        return -1;
    }
    if (check_writable(st, op, errstr, errlen))
        return -1;
    if (b->count == 0)
        return 0;
    int ing = wo != NULL ? 1 /* else rs_state_batch_commit_ingest: a file if it pays */
                         : rs_state_sorted_ingest(&b->sorted, st->db, st->options, st->path,
                                                  b->count, b->wb, b->mg, b->mglen, &err);
    rocksdb_writebatch_t *sorted =
        ing == 1 && b->count >= b->sorted_min
            ? rs_state_sorted_copy(&b->sorted, b->wb, b->mg, b->mglen)
            : NULL;
    if (ing == 1)
        rocksdb_write(st->db, wo ? wo : st->wopts_nowal, sorted ? sorted : b->wb, &err);
    if (b->sorted_fresh)
        rs_state_sorted_release(&b->sorted);
    if (err) {
        int disk = rs_state_is_disk_fault(err);
        take_rocks_err(errstr, errlen, err, op);
        return disk ? RS_STATE_EDISK : -1;
    }
    rs_state_batch_clear(b);
    return 0;
}

int rs_state_batch_commit(rs_state_t *st, rs_state_batch_t *b, char *errstr, size_t errlen)
{
    return batch_write(st, b, st ? st->wopts : NULL, "rs_state_batch_commit", errstr, errlen);
}

int rs_state_batch_commit_unlogged(rs_state_t *st, rs_state_batch_t *b, char *errstr,
                                   size_t errlen)
{
    return batch_write(st, b, st ? st->wopts_nowal : NULL, "rs_state_batch_commit_unlogged",
                       errstr, errlen);
}

int rs_state_batch_commit_ingest(rs_state_t *st, rs_state_batch_t *b, char *errstr, size_t n)
{
    return batch_write(st, b, NULL, "rs_state_batch_commit_ingest", errstr, n);
}

int rs_state_flush(rs_state_t *st, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_flush";
    char *err = NULL;
    if (!st) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (check_writable(st, op, errstr, errlen))
        return -1;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(st->db, fo, &err);
    rocksdb_flushoptions_destroy(fo);
    if (err) {
        int disk = rs_state_is_disk_fault(err);
        take_rocks_err(errstr, errlen, err, op);
        return disk ? RS_STATE_EDISK : -1;
    }
    return 0;
}

/* ---- scans and maintenance ---- */

/* An iterator over [lo, hi) (bounds must outlive it), reading `snap` or the
 * latest state when NULL. */
/* `scan`: a whole-range pass that reads each block once: large reads
 * (readahead), and the block cache is left to the point reads. */
static rocksdb_iterator_t *range_iter_scan(rs_state_t *st, rocksdb_readoptions_t **ro,
                                           const unsigned char *lo, size_t lolen,
                                           const unsigned char *hi, size_t hilen,
                                           const rocksdb_snapshot_t *snap, int scan)
{
    *ro = rocksdb_readoptions_create();
    if (scan) {
        rocksdb_readoptions_set_fill_cache(*ro, 0);
        rocksdb_readoptions_set_readahead_size(*ro, 2u << 20);
    }
    if (lo)
        rocksdb_readoptions_set_iterate_lower_bound(*ro, (const char *)lo, lolen);
    if (hi)
        rocksdb_readoptions_set_iterate_upper_bound(*ro, (const char *)hi, hilen);
    if (snap)
        rocksdb_readoptions_set_snapshot(*ro, snap);
    return rocksdb_create_iterator(st->db, *ro);
}

static rocksdb_iterator_t *range_iter(rs_state_t *st, rocksdb_readoptions_t **ro,
                                      const unsigned char *lo, size_t lolen,
                                      const unsigned char *hi, size_t hilen,
                                      const rocksdb_snapshot_t *snap)
{
    return range_iter_scan(st, ro, lo, lolen, hi, hilen, snap, 0);
}

static int iter_status(rocksdb_iterator_t *it, const char *context, char *errstr, size_t errlen)
{
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, context);
        return -1;
    }
    return 0;
}

/* Extract the contract id of a 0x10 key into id (RS_STATE_MAX_ID_LEN + 1). */
static int contract_key_id(const char *key, size_t klen, char *id, size_t *idlen,
                           const char *context, char *errstr, size_t errlen)
{
    size_t n = klen > 5 ? klen - 5 : 0;
    if (klen <= 5 || n > RS_STATE_MAX_ID_LEN || memchr(key + 5, 0, n)) {
        rs_errorf(errstr, errlen, "%s: corrupt contract key (%zu bytes)", context, klen);
        return -1;
    }
    memcpy(id, key + 5, n);
    id[n] = '\0';
    *idlen = n;
    return 0;
}

/* One record of a partition scan: 0 go on, 1 stop (the caller's callback
 * said so), -1 error (errstr set; ctx names the scan). */
typedef int (*scan_visit_fn)(void *opaque, const char *key, size_t klen, const char *val,
                             size_t vlen, const char *ctx, char *errstr, size_t errlen);

/* Visit the keys of kind `kind` of `partition` in key order from one
 * consistent snapshot: what rs_state_foreach_contract and
 * rs_state_foreach_seen share. Returns 0, 1 (stopped) or -1. */
static int scan_partition(rs_state_t *st, int32_t partition, unsigned char kind, const char *op,
                          int has_cb, scan_visit_fn visit, void *opaque, char *errstr,
                          size_t errlen)
{
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    unsigned char lo[5], hi[5];
    char ctx[96];
    int rc = -1;

    if (!st || !has_cb) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (check_partition(partition, op, errstr, errlen))
        return -1;
    snprintf(ctx, sizeof ctx, "%s: partition=%d", op, (int)partition);
    key_partition(lo, kind, (uint32_t)partition);
    key_partition(hi, kind, (uint32_t)partition + 1u);
    it = range_iter_scan(st, &ro, lo, sizeof lo, hi, sizeof hi, NULL, 1);
    for (rocksdb_iter_seek(it, (const char *)lo, sizeof lo); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const char *key = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        int v = visit(opaque, key, klen, val, vlen, ctx, errstr, errlen);
        if (v != 0) {
            rc = v > 0 ? 1 : -1;
            goto done;
        }
    }
    if (iter_status(it, ctx, errstr, errlen))
        goto done;
    rc = 0;
done:
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

typedef struct contract_scan {
    rs_state_contract_cb cb;
    void *opaque;
} contract_scan_t;

static int visit_contract(void *opaque, const char *key, size_t klen, const char *val,
                          size_t vlen, const char *ctx, char *errstr, size_t errlen)
{
    contract_scan_t *x = opaque;
    char id[RS_STATE_MAX_ID_LEN + 1];
    size_t idlen = 0;
    if (contract_key_id(key, klen, id, &idlen, ctx, errstr, errlen))
        return -1;
    return x->cb(x->opaque, id, val, vlen) != 0 ? 1 : 0;
}

int rs_state_foreach_contract(rs_state_t *st, int32_t partition, rs_state_contract_cb cb,
                              void *opaque, char *errstr, size_t errlen)
{
    contract_scan_t x = {cb, opaque};
    return scan_partition(st, partition, K_CONTRACT, "rs_state_foreach_contract", cb != NULL,
                          visit_contract, &x, errstr, errlen);
}

typedef struct seen_scan {
    rs_state_seen_cb cb;
    void *opaque;
} seen_scan_t;

/* A contract's set (0x51 key: the id as in a 0x10 key): every id. */
static int visit_seen(void *opaque, const char *k, size_t klen, const char *v, size_t vlen,
                      const char *ctx, char *errstr, size_t errlen)
{
    seen_scan_t *x = opaque;
    const unsigned char *set = (const unsigned char *)v;
    char id[RS_STATE_MAX_ID_LEN + 1];
    size_t idlen = 0, n = rs_state_seen_count(set, vlen);
    if (contract_key_id(k, klen, id, &idlen, ctx, errstr, errlen))
        return -1;
    if (n == (size_t)-1) {
        rs_errorf(errstr, errlen, "%s: contract_id=%s: corrupt seen set (%zu bytes)", ctx, id,
                  vlen);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t idh = 0, ch = 0;
        int32_t period = 0;
        rs_state_seen_entry(set, i, &idh, &ch, &period);
        if (x->cb(x->opaque, id, idh, ch, period) != 0)
            return 1;
    }
    return 0;
}

int rs_state_foreach_seen(rs_state_t *st, int32_t partition, rs_state_seen_cb cb, void *opaque,
                          char *errstr, size_t errlen)
{
    seen_scan_t x = {cb, opaque};
    return scan_partition(st, partition, K_SEEN_SET, "rs_state_foreach_seen", cb != NULL,
                          visit_seen, &x, errstr, errlen);
}

int rs_state_get_contract_offsets(rs_state_t *st, const char *const *ids, size_t n,
                                  const char *const *topics, int ntopics, int64_t *offs,
                                  char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_get_contract_offsets";
    static const unsigned char lo[1] = {K_COFFSET}, hi[1] = {K_COFFSET + 1};
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    unsigned char k[KEY_MAX];
    int rc = -1;

    if (!st || (n > 0 && (!ids || !offs)) || ntopics < 0 || (ntopics > 0 && !topics)) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    for (size_t i = 0; i < n * (size_t)ntopics; i++)
        offs[i] = -1;
    it = range_iter(st, &ro, lo, sizeof lo, hi, sizeof hi, NULL);
    for (size_t i = 0; i < n; i++) {
        size_t idlen = 0, klen = 0, vlen = 0;
        if (check_name(ids[i], RS_STATE_MAX_ID_LEN, &idlen, op, "contract_id", errstr, errlen))
            goto done;
        size_t want = key_coffset(k, ids[i], idlen);
        /* one seek per contract (fastest when ids are sorted) */
        rocksdb_iter_seek(it, (const char *)k, want);
        if (!rocksdb_iter_valid(it)) {
            if (iter_status(it, op, errstr, errlen))
                goto done;
            continue;
        }
        const char *key = rocksdb_iter_key(it, &klen);
        if (klen != want || memcmp(key, k, want) != 0)
            continue;
        const unsigned char *v = (const unsigned char *)rocksdb_iter_value(it, &vlen);
        for (int t = 0; t < ntopics; t++) {
            int64_t off = -1;
            if (rs_state_off_find(v, vlen, topics[t], strlen(topics[t]), &off) < 0) {
                rs_errorf(errstr, errlen, "%s: contract_id=%s: corrupt offsets value", op,
                          ids[i]);
                goto done;
            }
            offs[i * (size_t)ntopics + (size_t)t] = off;
        }
    }
    if (iter_status(it, op, errstr, errlen))
        goto done;
    rc = 0;
done:
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

int rs_state_drop_partition(rs_state_t *st, int32_t partition, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_drop_partition";
    const rocksdb_snapshot_t *snap = NULL;
    rocksdb_readoptions_t *cro = NULL;
    rocksdb_iterator_t *cit = NULL;
    rocksdb_writebatch_t *wb = NULL;
    unsigned char clo[5], chi[5], ilo[5], ihi[5], slo[5], shi[5];
    unsigned char okey[RS_STATE_MAX_ID_LEN + 1];
    char id[RS_STATE_MAX_ID_LEN + 1];
    char ctx[96];
    char *err = NULL;
    size_t contracts = 0, offsets = 0;
    int rc = -1;

    if (!st) {
        rs_errorf(errstr, errlen, "%s: NULL argument", op);
        return -1;
    }
    if (check_partition(partition, op, errstr, errlen) ||
        check_writable(st, op, errstr, errlen))
        return -1;
    snprintf(ctx, sizeof ctx, "%s: partition=%d", op, (int)partition);
    key_partition(clo, K_CONTRACT, (uint32_t)partition);
    key_partition(chi, K_CONTRACT, (uint32_t)partition + 1u);
    key_partition(ilo, K_INPUT, (uint32_t)partition);
    key_partition(ihi, K_INPUT, (uint32_t)partition + 1u);
    key_partition(slo, K_SEEN_SET, (uint32_t)partition);
    key_partition(shi, K_SEEN_SET, (uint32_t)partition + 1u);

    wb = rocksdb_writebatch_create();
    snap = rocksdb_create_snapshot(st->db);
    cit = range_iter(st, &cro, clo, sizeof clo, chi, sizeof chi, snap);
    /* Point-delete the offsets key of each contract in the partition. */
    for (rocksdb_iter_seek(cit, (const char *)clo, sizeof clo); rocksdb_iter_valid(cit);
         rocksdb_iter_next(cit)) {
        size_t klen = 0, idlen = 0;
        const char *key = rocksdb_iter_key(cit, &klen);
        if (contract_key_id(key, klen, id, &idlen, ctx, errstr, errlen))
            goto done;
        contracts++;
        rocksdb_writebatch_delete(wb, (const char *)okey, key_coffset(okey, id, idlen));
        offsets++;
    }
    if (iter_status(cit, ctx, errstr, errlen))
        goto done;
    KEY_DELETE_RANGE(wb, clo, chi);
    KEY_DELETE_RANGE(wb, ilo, ihi);
    KEY_DELETE_RANGE(wb, slo, shi);
    rocksdb_write(st->db, st->wopts, wb, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, ctx);
        goto done;
    }
    state_log("event=partition_dropped partition=%d contracts=%zu contract_offsets=%zu",
              (int)partition, contracts, offsets);
    rc = 0;
done:
    if (cit)
        rocksdb_iter_destroy(cit);
    if (cro)
        rocksdb_readoptions_destroy(cro);
    if (snap)
        rocksdb_release_snapshot(st->db, snap);
    if (wb)
        rocksdb_writebatch_destroy(wb);
    return rc;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Append the distinct partitions of key kind `kind` (0x10 or 0x20) by
 * skip-scanning: one seek per partition, however many keys it has. */
static int scan_partitions(rs_state_t *st, int kind, int32_t **arr, size_t *n, size_t *cap,
                           char *errstr, size_t errlen)
{
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_iterator_t *it = NULL;
    unsigned char lo[1] = {(unsigned char)kind}, hi[1] = {(unsigned char)(kind + 1)};
    unsigned char seek[5];
    uint32_t next = 0;
    int rc = -1;

    it = range_iter(st, &ro, lo, sizeof lo, hi, sizeof hi, NULL);
    for (;;) {
        size_t klen = 0;
        const unsigned char *key;
        uint32_t p;
        key_partition(seek, kind, next);
        rocksdb_iter_seek(it, (const char *)seek, sizeof seek);
        if (!rocksdb_iter_valid(it))
            break;
        key = (const unsigned char *)rocksdb_iter_key(it, &klen);
        if (klen < 5 || (p = rs_get_be32(key + 1)) > (uint32_t)INT32_MAX) {
            rs_errorf(errstr, errlen,
                      "rs_state_partitions: corrupt key (kind 0x%02x, %zu bytes)", kind, klen);
            goto done;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 16;
            int32_t *na = realloc(*arr, ncap * sizeof *na);
            if (!na) {
                rs_errorf(errstr, errlen, "rs_state_partitions: out of memory");
                goto done;
            }
            *arr = na;
            *cap = ncap;
        }
        (*arr)[(*n)++] = (int32_t)p;
        if (p == (uint32_t)INT32_MAX)
            break;
        next = p + 1;
    }
    if (iter_status(it, "rs_state_partitions", errstr, errlen))
        goto done;
    rc = 0;
done:
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

int rs_state_partitions(rs_state_t *st, int32_t **parts, size_t *n, char *errstr, size_t errlen)
{
    int32_t *arr = NULL;
    size_t cnt = 0, cap = 0, u = 0;
    int rc = -1;

    if (!st || !parts || !n) {
        rs_errorf(errstr, errlen, "rs_state_partitions: NULL argument");
        return -1;
    }
    *parts = NULL;
    *n = 0;
    if (scan_partitions(st, K_CONTRACT, &arr, &cnt, &cap, errstr, errlen) ||
        scan_partitions(st, K_INPUT, &arr, &cnt, &cap, errstr, errlen))
        goto done;
    if (cnt > 0) {
        qsort(arr, cnt, sizeof *arr, cmp_i32);
        for (size_t i = 0; i < cnt; i++)
            if (u == 0 || arr[u - 1] != arr[i])
                arr[u++] = arr[i];
        *parts = arr;
        *n = u;
        arr = NULL;
    }
    rc = 0;
done:
    free(arr);
    return rc;
}

int rs_state_checkpoint(rs_state_t *st, const char *dir, char *errstr, size_t errlen)
{
    static const char op[] = "rs_state_checkpoint";
    rocksdb_checkpoint_t *cp = NULL;
    char ctx[64 + 4096];
    char *err = NULL;
    int rc = -1;

    if (!st || !dir || !*dir) {
        rs_errorf(errstr, errlen, "%s: %s", op, !st ? "NULL store" : "dir is empty");
        return -1;
    }
    snprintf(ctx, sizeof ctx, "%s: dir=%s", op, dir);
    cp = rocksdb_checkpoint_object_create(st->db, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, ctx);
        goto done;
    }
    /* log_size_for_flush = 0: always flush the memtable first, so the data
     * is in (hard-linked) SST files rather than in copied WAL. */
    rocksdb_checkpoint_create(cp, dir, 0, &err);
    if (err) {
        take_rocks_err(errstr, errlen, err, ctx);
        goto done;
    }
    state_log("event=checkpoint_created dir=%s", dir);
    rc = 0;
done:
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    return rc;
}

void rs_state_get_props(rs_state_t *st, rs_state_props_t *out)
{
    static const char *const names[] = {
        "rocksdb.total-sst-files-size",
        "rocksdb.estimate-live-data-size",
        "rocksdb.cur-size-all-mem-tables",
        "rocksdb.estimate-num-keys",
        "rocksdb.num-running-compactions",
        "rocksdb.compaction-pending",
        "rocksdb.estimate-pending-compaction-bytes",
    };
    int64_t *fields[] = {&out->sst_bytes,
                         &out->live_data_bytes,
                         &out->memtable_bytes,
                         &out->estimated_keys,
                         &out->running_compactions,
                         &out->compaction_pending,
                         &out->pending_compaction_bytes};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        uint64_t v = 0;
        *fields[i] = st != NULL && st->db != NULL &&
                             rocksdb_property_int(st->db, names[i], &v) == 0 && v <= INT64_MAX
                         ? (int64_t)v
                         : -1;
    }
}
