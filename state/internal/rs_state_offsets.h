/*
 * rs_state_offsets.h — private to rs_state: the values of the 0x30 keys (a
 * contract's applied offsets, state layout 2) and their merge operator.
 *
 * A value (and each merge operand) is a list of entries: u8 topic length,
 * topic, BE64 highest applied offset. The merge keeps, per topic, the entry
 * of the latest operand; a value or operand that does not parse fails the
 * merge (RocksDB reports corruption on the read), never guessed at.
 */
#ifndef RS_STATE_OFFSETS_H
#define RS_STATE_OFFSETS_H

#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_state.h"

/* One entry of a 0x30 value: u8 topic length, topic, BE64 offset. */
#define RS_STATE_OFF_ENTRY_MAX (1 + RS_STATE_MAX_TOPIC_LEN + 8)

/* Append one entry at p (room for RS_STATE_OFF_ENTRY_MAX); its length. */
size_t rs_state_off_entry(unsigned char *p, const char *topic, size_t tlen, int64_t offset);
/* Find topic's offset in a value: 1 found (*offset), 0 absent, -1 corrupt. */
int rs_state_off_find(const unsigned char *v, size_t len, const char *topic, size_t tlen,
                      int64_t *offset);
/* The "rs_offsets" merge operator (the options own it once set). */
rocksdb_mergeoperator_t *rs_state_offsets_merge_operator(void);

#endif
