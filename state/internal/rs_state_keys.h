/*
 * rs_state_keys.h — private to rs_state: the key encoders of the store's
 * layout (described at the top of rs_state.c), shared by rs_state.c and
 * the bulk writer (rs_state_bulk.c), so the layout is written in one place.
 * Each encoder writes into k (room for RS_STATE_KEY_MAX bytes; the caller
 * checked the lengths) and returns the key's length.
 */
#ifndef RS_STATE_KEYS_H
#define RS_STATE_KEYS_H

#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rs_bytes.h"
#include "rs_state.h"

enum {
    K_LAYOUT = 0x01,
    K_CONTRACT = 0x10,
    K_INPUT = 0x20,
    K_COFFSET = 0x30,
    K_META = 0x40,
    K_SEEN = 0x50,     /* layout 2: a key per id; migrated at open (rs_state_seen.c) */
    K_SEEN_SET = 0x51, /* layout 3: a contract's seen ids */
};

/* The memtable's insert hints (rs_state_open) are kept per first
 * KEY_HINT_PREFIX bytes of a key: a key kind and partition (0x10, 0x20,
 * 0x51) or the first bytes of a contract id (0x30). Keys shorter than that
 * are inserted without a hint. RocksDB 7.8 (Debian 12's) keeps ONE hint
 * table per memtable for its point keys and its range deletions, which
 * live in two different skiplists: a range deletion whose begin key had a
 * hint would insert with the other skiplist's position and corrupt it
 * (its own assertions catch it: test_state's drop tests). So every range
 * deletion goes through KEY_DELETE_RANGE, whose begin key is shorter than
 * the prefix, checked when compiling. */
#define KEY_HINT_PREFIX 6
#define KEY_HINT_EXTRACTOR "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.6"

/* Stage a range deletion [lo, hi) of fixed-size key arrays into wb. */
#define KEY_DELETE_RANGE(wb, lo, hi)                                                           \
    do {                                                                                       \
        _Static_assert(sizeof(lo) < KEY_HINT_PREFIX,                                           \
                       "a range deletion's begin key is hinted");                              \
        rocksdb_writebatch_delete_range((wb), (const char *)(lo), sizeof(lo),                  \
                                        (const char *)(hi), sizeof(hi));                       \
    } while (0)

/* Longest key: 0x20 BE32 topic or 0x50 BE32 id 0x00 BE64 (0x30 is shorter). */
#define KEY_MAX (5 + RS_STATE_MAX_ID_LEN + RS_STATE_MAX_TOPIC_LEN + 9)

static inline size_t key_partition(unsigned char *k, int kind, uint32_t partition)
{
    k[0] = (unsigned char)kind;
    rs_put_be32(k + 1, partition);
    return 5;
}

static inline size_t key_contract(unsigned char *k, int32_t partition, const char *id,
                                  size_t idlen)
{
    size_t n = key_partition(k, K_CONTRACT, (uint32_t)partition);
    memcpy(k + n, id, idlen);
    return n + idlen;
}

static inline size_t key_input(unsigned char *k, const char *topic, size_t tlen,
                               int32_t partition)
{
    size_t n = key_partition(k, K_INPUT, (uint32_t)partition);
    memcpy(k + n, topic, tlen);
    return n + tlen;
}

/* 0x30 id — one contract's applied offsets. */
static inline size_t key_coffset(unsigned char *k, const char *id, size_t idlen)
{
    k[0] = K_COFFSET;
    memcpy(k + 1, id, idlen);
    return idlen + 1;
}

/* 0x50 BE32(partition) id 0x00 BE64(id hash): one applied event id. */
static inline size_t key_seen(unsigned char *k, int32_t partition, const char *id, size_t idlen,
                              uint64_t id_hash)
{
    size_t n = key_partition(k, K_SEEN, (uint32_t)partition);
    memcpy(k + n, id, idlen);
    k[n + idlen] = 0;
    rs_put_be64(k + n + idlen + 1, id_hash);
    return n + idlen + 9;
}

/* 0x51 BE32(partition) id: one contract's seen ids (rs_state_seen.h). */
static inline size_t key_seen_set(unsigned char *k, int32_t partition, const char *id,
                                  size_t idlen)
{
    size_t n = key_partition(k, K_SEEN_SET, (uint32_t)partition);
    memcpy(k + n, id, idlen);
    return n + idlen;
}

static inline size_t key_meta(unsigned char *k, const char *name, size_t nlen)
{
    k[0] = K_META;
    memcpy(k + 1, name, nlen);
    return nlen + 1;
}

/* What the bulk writer needs of an open store (rs_state_handles). */
typedef struct rs_state_handles {
    rocksdb_t *db;
    const rocksdb_options_t *options;
    const rocksdb_writeoptions_t *wopts_nowal;
    const char *path;
} rs_state_handles_t;

/* The store's handles: 0, or -1 with errstr when it is open read-only. */
int rs_state_handles(rs_state_t *st, rs_state_handles_t *h, const char *op, char *errstr,
                     size_t errlen);

/* What rs_state_seen.c needs of rs_state.c: the read handles; a
 * partition and contract id checked (0, or -1 with "<op>: ..." in msg);
 * a merge staged into a batch (0, or -1 with the batch failed); a staging
 * error remembered (always -1). */
void rs_state_reader(rs_state_t *st, rocksdb_t **db, const rocksdb_readoptions_t **ropts);
int rs_state_check_id(int32_t partition, const char *id, size_t *idlen, const char *op,
                      char *msg, size_t msglen);
int rs_state_batch_merge_key(rs_state_batch_t *b, const unsigned char *k, size_t klen,
                             const unsigned char *v, size_t vlen);
int rs_state_batch_failed(rs_state_batch_t *b, const char *msg);

#endif
