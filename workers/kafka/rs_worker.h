/*
 * rs_worker — the Kafka stream worker: input events from the four input
 * topics in, journal entries, deferred-balance snapshots and dead letters
 * out, engine state in the RocksDB store.
 *
 * Model:
 *   - One engine per input partition number N (rs_pstate_t): partition N of
 *     contracts, invoices, payments and usage is one engine, so the four
 *     topics must be co-partitioned (checked at start) and consumed with the
 *     range assignor, which keeps partition N of every topic on one member.
 *   - The state store, not Kafka's committed offsets, is the source of truth
 *     for where each (topic, partition) resumes: a partition is assigned at
 *     the offset rs_state_get_input_offset() gives (or the beginning).
 *   - Work goes in batches: up to batch.max.records messages or batch.max.ms
 *     after the first one, split by partition number in arrival order.
 *
 * Invariants (the delivery guarantee rests on them):
 *   - Plan before output: a partition's sub-batch order (topic, offset) is
 *     saved, synced, before any of its outputs is produced, and deleted in
 *     the same state write that commits the sub-batch. A plan found when a
 *     partition is assigned is replayed first, exactly: the worker buffers
 *     until every planned message is there and applies those in the planned
 *     order. The engine is deterministic, so the replay produces the same
 *     records with the same ids and bytes.
 *   - Commit after acknowledgement: the state (changed contracts, engine
 *     meta, per-contract applied offsets, next input offsets, plan deletion)
 *     is committed in one rs_state batch only after every produced record's
 *     delivery report came back without error. A delivery failure stops the
 *     worker with an error and nothing committed; the restart replays the
 *     plan. Consumer offsets are committed to Kafka after that, for
 *     monitoring only.
 *   - Hence outputs are delivered at least once; a record produced twice is
 *     byte-identical to the first (same key, entry_id header, value), so
 *     consumers deduplicate journal entries by entry_id.
 *   - State follows its partition (docs/scaling.md): each sub-batch writes
 *     its plan to changelog partition N (delivered before any output), then
 *     its changed contracts and its final meta record once its outputs are
 *     delivered; the state commit records the changelog position. A
 *     partition assigned with local state missing or behind the changelog is
 *     restored from it (rs_changelog_restore) before processing; the worker
 *     is not ready meanwhile. A revoke commits the batch in flight, a lost
 *     assignment discards it (and nothing is applied once librdkafka knows
 *     it is lost, nor for two heartbeat intervals after the process was
 *     found frozen for over half the session timeout); revoked partitions'
 *     local state is dropped after state.revoked.grace.ms.
 *   - An event whose offset is <= the offset of its topic already applied to
 *     its contract (rs_state_get_contract_offset) is skipped.
 *   - Bad input never stops a partition: undecodable bytes, an unknown schema
 *     id, an event on the wrong topic or an event the engine rejects becomes a
 *     dead letter on the DLQ topic (headers source.topic, source.partition,
 *     source.offset, error), and so does a late rejection of an event that
 *     had waited (source.offset "none", header late=true).
 *
 * Threads: one thread runs rs_worker_run(); librdkafka callbacks (rebalance,
 * delivery reports, logs aside) run on it from the poll calls.
 * rs_worker_request_stop() may be called from any thread and from a signal
 * handler. The metrics server has its own thread (rs_metrics).
 *
 * Ownership: the worker borrows the config (it must outlive the worker) and
 * owns the state store, clients, caches, engines and buffered messages;
 * rs_worker_destroy() releases them (accepts NULL).
 */
#ifndef RS_WORKER_H
#define RS_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "rs_config.h"

typedef struct rs_worker rs_worker_t;

typedef struct rs_worker_stats {
    uint64_t batches;          /* committed batches */
    uint64_t records;          /* input records taken through a committed batch */
    uint64_t events_applied;   /* applied by an engine (a waiting one when it applies) */
    uint64_t duplicates;       /* same event_id and content again: ignored */
    uint64_t skipped;          /* offset already applied to the contract: not applied */
    uint64_t rejected;         /* refused by the codec or the engine (late ones too) */
    uint64_t dlq;              /* dead letters produced */
    uint64_t entries_produced; /* journal records produced */
    uint64_t balances_produced;
} rs_worker_stats_t;

/* What rs_worker_new and rs_worker_run return for a disk fault: the state
 * directory's filesystem is full (or over quota) or read-only. Nothing of the
 * batch in flight was committed; a restart once the fault is gone resumes
 * where the worker stopped. */
#define RS_WORKER_EDISK (-2)

/* Build a worker from a loaded config: read the policy file, open the state
 * store, set up schemas, create the clients, check that the topics exist and
 * that the four input topics have the same partition count, and subscribe.
 * Returns 0, or -1 with errstr naming what failed (RS_WORKER_EDISK when the
 * state directory is full or read-only). */
int rs_worker_new(rs_worker_t **out, const rs_config_t *cfg, char *errstr, size_t errlen);

/* Run until a stop request (the current batch is finished and committed, the
 * consumer closed), until idle with exit.when.idle, or until a failure.
 * Returns 0 after a clean stop, -1 on a failure (errstr; the batch in
 * flight was not committed: a restart replays it), RS_WORKER_EDISK when the
 * failure was a state write on a full or read-only disk. */
int rs_worker_run(rs_worker_t *w, char *errstr, size_t errlen);

/* Ask rs_worker_run() to finish its batch and return. Async-signal-safe. */
void rs_worker_request_stop(rs_worker_t *w);

void rs_worker_get_stats(const rs_worker_t *w, rs_worker_stats_t *out);

/* Test-only fault injection (never set in production; `revstream worker`
 * sets it from RS_TEST_KILL_POINT / RS_WORKER_CRASH_AFTER_BATCHES): at
 * `point` of the n-th batch (counting from 1) that reaches it, log
 * "worker: fault point=<name> batch=n ..." and kill the process with
 * SIGKILL. The points, in batch order:
 *   planned     the plans are saved and delivered, nothing applied yet
 *   mid_batch   the first partition's sub-batch is applied and its outputs
 *               produced (maybe partly delivered), the rest not yet applied
 *               (a batch applied on several threads, worker.threads: every
 *               sub-batch applied, nothing delivered yet)
 *   delivered   every output is delivered, the changelog records are not
 *   changelog   the changelog records are delivered, the local state is not
 *               committed (what rs_worker_set_crash_after sets)
 *   state_write during the local state commit: a thread kills the process
 *               after a random delay of 0..delay_us microseconds from the
 *               start of the write (before, during or just after it)
 *   committed   the local state is committed, Kafka's offsets not yet
 * n == 0: never. delay_us only matters for state_write. */
typedef enum rs_kill_point {
    RS_KILL_NONE = 0,
    RS_KILL_PLANNED,
    RS_KILL_MID_BATCH,
    RS_KILL_DELIVERED,
    RS_KILL_CHANGELOG,
    RS_KILL_STATE_WRITE,
    RS_KILL_COMMITTED,
} rs_kill_point_t;

/* The point named `name`, or RS_KILL_NONE. */
rs_kill_point_t rs_kill_point_from_name(const char *name);
const char *rs_kill_point_name(rs_kill_point_t p);
void rs_worker_set_kill_point(rs_worker_t *w, rs_kill_point_t point, uint64_t n,
                              uint64_t delay_us, uint64_t seed);
/* rs_worker_set_kill_point(w, RS_KILL_CHANGELOG, n, 0, 0). */
void rs_worker_set_crash_after(rs_worker_t *w, uint64_t n);

/* Test hooks: while the file stall_file exists (NULL: never) the loop
 * makes no progress, so /healthz turns 503 after health.stall.ms; every
 * partition restore first waits restore_delay_ms (0: none), so /readyz is
 * seen 503 "restoring partition N". stall_file is borrowed. */
void rs_worker_set_test_hooks(rs_worker_t *w, const char *stall_file, long restore_delay_ms);

/* The parked-partitions gauge (revstream_partitions_parked); 0 at start. */
void rs_worker_set_parked_gauge(rs_worker_t *w, int64_t parked);

/* Fault injection for tests: in a streaming month-end close, once n chunks
 * were committed, after the outputs of the next chunk are acknowledged and
 * before it is committed, SIGKILL (a crash in the middle of a close). */
void rs_worker_set_crash_in_close(rs_worker_t *w, uint64_t n);

void rs_worker_destroy(rs_worker_t *w); /* accepts NULL */

#endif
