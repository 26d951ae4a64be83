/*
 * rs_state_internal.h — private to rs_state: the store handle and the
 * staging write batch (rs_state.c; rs_state_wal.c syncs the WAL of
 * commits made without a sync).
 *
 * Invariants: wopts writes with the WAL and fsyncs it iff sync;
 * wopts_nosync writes with the WAL and never fsyncs; wopts_nowal writes
 * without the WAL. Every merge a batch stages is both in its WriteBatch
 * and in mg (RocksDB's C API cannot iterate a WriteBatch's merges).
 */
#ifndef RS_STATE_INTERNAL_H
#define RS_STATE_INTERNAL_H

#include <rocksdb/c.h>
#include <stddef.h>

struct rs_state {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_writeoptions_t *wopts_nowal;  /* rs_state_batch_commit_unlogged */
    rocksdb_writeoptions_t *wopts_nosync; /* rs_state_batch_commit_nosync */
    int read_only;
    int sync; /* opts.sync is not RS_STATE_SYNC_OFF: commits fsync the WAL */
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
};

#endif
