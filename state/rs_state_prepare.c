/*
 * rs_state_prepare.c — a staging write batch put in key order ahead of its
 * commit (rs_state_batch_prepare, rs_state.h).
 *
 * rs_state_batch_commit() writes a large batch as a copy in key order
 * (rs_state_sorted.c), which makes the memtable inserts cheaper. That copy
 * (a sort and a copy of every operation) is pure CPU work on the batch
 * alone: a thread that has finished staging can make it early, while the
 * commit still waits for something else (the worker's apply lanes do it
 * when their last sub-batch is staged, rs_worker_batch.c), and the commit
 * then only writes.
 *
 * Invariants: the prepared WriteBatch holds exactly the operations staged
 * before the prepare, stably in key order (so writing it gives the store
 * writing them as staged gives); operations staged after it follow in
 * staging order, and operations on one key keep their order, so the store
 * after the commit is the same as without the prepare. The batch's own
 * list of merges (mg) is kept: RocksDB's C API iterates a WriteBatch
 * without its merges, so rs_state_batch_append() and a later copy still
 * take them from there. A save point set before the prepare is dropped (it
 * pointed into the old WriteBatch): rs_state_batch_rollback() then fails.
 *
 * Ownership: the batch owns the new WriteBatch; the old one is destroyed.
 */
#include "rs_state.h"
#include "rs_state_batch.h"
#include "rs_state_sorted.h"

int rs_state_batch_prepare(rs_state_batch_t *b)
{
    if (b == NULL || b->failed || b->sorted || b->count < RS_STATE_SORTED_WRITE_MIN)
        return 0;
    rocksdb_writebatch_t *s = rs_state_sorted_copy(b->wb, b->mg, b->mglen);
    if (s == NULL)
        return -1; /* out of memory: the batch is as it was */
    rocksdb_writebatch_destroy(b->wb);
    b->wb = s;
    b->sorted = 1;
    b->saved = 0;
    return 0;
}
