/*
 * rs_state_batch.h — private to rs_state: what a staging write batch holds
 * (rs_state.c stages and commits it; rs_state_prepare.c sorts it ahead of
 * the commit).
 *
 * Invariants: count is the number of operations staged since the last
 * clear; every merge staged is both in wb and in mg (RocksDB's C API
 * cannot iterate a WriteBatch's merges), so a copy made by iterating wb
 * takes its merges from mg; sorted says wb already holds its operations
 * up to the prepare in key order (rs_state_batch_prepare), the operations
 * staged after it following in staging order, and then no save point
 * reaches back before the prepare.
 */
#ifndef RS_STATE_BATCH_H
#define RS_STATE_BATCH_H

#include <rocksdb/c.h>
#include <stddef.h>

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
    int sorted;         /* wb was made by rs_state_batch_prepare: no copy at the commit */
};

#endif
