/*
 * rs_state_wal.c — one fsync of the write-ahead log for several commits
 * made without one (rs_state_sync_wal, rs_state.h).
 *
 * The worker writes each apply lane's partitions in a write of its own,
 * the lanes' writes at once (rs_worker_batch.c). RocksDB rarely groups
 * such writes into one (a writer joins a group only if it arrives while
 * the group is formed), so with opts.sync each would fsync the log on its
 * own. Written with rs_state_batch_commit_nosync and then synced here,
 * they cost one fsync, and the batch is as durable when this returns as
 * it was after one synced write.
 *
 * Invariants: a store opened without sync is never synced here (its
 * commits never are); RocksDB's SyncWAL fsyncs every live log file, so
 * every write that returned before the call is durable after it. A
 * failure is reported like a failed commit (RS_STATE_EDISK for a full or
 * read-only disk); the writes themselves are in the log either way.
 *
 * Ownership: RocksDB's error string is copied into errstr and freed here.
 */
#include "rs_err.h"
#include "rs_state.h"
#include "rs_state_dir.h"
#include "rs_state_internal.h"

int rs_state_sync_wal(rs_state_t *st, char *errstr, size_t errlen)
{
    char *err = NULL;
    if (st == NULL) {
        rs_errorf(errstr, errlen, "rs_state_sync_wal: NULL argument");
        return -1;
    }
    if (!st->sync || st->read_only)
        return 0;
    rocksdb_flush_wal(st->db, 1, &err);
    if (err == NULL)
        return 0;
    int disk = rs_state_is_disk_fault(err);
    rs_errorf(errstr, errlen, "rs_state_sync_wal: path=%s: %s", st->path, err);
    rocksdb_free(err);
    return disk ? RS_STATE_EDISK : -1;
}
