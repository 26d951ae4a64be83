/*
 * rs_state_seen.h — private to rs_state: the packed seen ids of state
 * layout 3 (one key per contract, 0x51 BE32(partition) contract_id),
 * their merge, and the migration from layout 2's key per id (0x50).
 *
 * Records (little-endian, as the changelog's packed "S/" record, so a
 * restore stages that record's bytes as they are):
 *   ADD    "RSS2" LE32(n) n x (LE64 id hash, LE64 content hash, LE32 period)
 *   DELETE "RSD2" LE32(n) n x LE64 id hash
 *   PRUNE  "RSP2" LE32(through): drop every id whose period is known (not
 *          RS_STATE_SEEN_PERIOD_NONE) and <= through
 * A merge operand is one or more records, applied in order (so two
 * operands concatenated are one operand: partial merges and the bulk
 * writer concatenate). A value is one ADD record whose ids are sorted by
 * id hash (ascending, unsigned) and unique: what the full merge returns,
 * and itself a valid operand. Anything that does not parse fails the
 * merge (RocksDB reports corruption on the read); nothing is guessed.
 */
#ifndef RS_STATE_SEEN_H
#define RS_STATE_SEEN_H

#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_state.h"

#define RS_SEEN_HDR 8    /* magic, LE32 count or period */
#define RS_SEEN_ENTRY 20 /* an ADD record's id */

static inline void rs_seen_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t rs_seen_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rs_seen_get_le64(const unsigned char *p)
{
    return (uint64_t)rs_seen_get_le32(p) | (uint64_t)rs_seen_get_le32(p + 4) << 32;
}

/* The full merge: base (a value, or NULL) then the operands, in order.
 * A malloc'd value (*outlen bytes), or NULL (corrupt, out of memory). */
unsigned char *rs_state_seen_merge(const unsigned char *base, size_t baselen,
                                   const char *const *ops, const size_t *oplens, int nops,
                                   size_t *outlen);

/* An operand of ids (adds, then deletes for those with forget) into a
 * malloc'd buffer; NULL when out of memory. */
unsigned char *rs_state_seen_operand(const rs_state_seen_t *ids, size_t n, size_t *len);

/* A value's i-th id (the caller checked i against its count). */
void rs_state_seen_entry(const unsigned char *set, size_t i, uint64_t *id_hash,
                         uint64_t *content_hash, int32_t *period);
/* A value's id count, or (size_t)-1 when it is not a value. */
size_t rs_state_seen_count(const unsigned char *set, size_t len);

/* Layout 2 -> 3: rewrite every 0x50 key into its contract's 0x51 key,
 * then delete the 0x50 range and write `layout` (layoutlen bytes under
 * LAYOUT_KEY lkey) in one synced write. Idempotent: a crash before that
 * last write leaves layout 2 and the 0x50 keys, and the next open redoes
 * it (puts, not merges). *ids and *contracts get the counts. 0 or -1. */
int rs_state_seen_migrate(rocksdb_t *db, const unsigned char *lkey, size_t lkeylen,
                          const unsigned char *layout, size_t layoutlen, size_t *ids,
                          size_t *contracts, char *errstr, size_t errlen);

#endif
