/*
 * rs_pstate — one input partition's engine, persisted in the state store.
 *
 * A worker runs one rs_engine_t per input partition number N (partition N of
 * all four input topics): its contracts, closed periods and horizon belong to
 * that partition alone, so a partition's state can move between workers.
 *
 * Layout in rs_state (see state/rs_state.h):
 *   contracts of partition N        contract blobs, packed
 *                                   (rs_pstate_contract_record; stores written
 *                                   before 2026-12-07 hold the fixed-width
 *                                   rs_engine_export_contract form, which
 *                                   import reads too)
 *   meta "engine/N"                 the engine's meta state (rs_engine_export_meta)
 *   meta "plan/N"                   the pending batch plan, if any
 *   seen ids of partition N         applied event ids, one key per contract
 *                                   (rs_state_get_seen_set): the engine's
 *                                   seen store, so contract records hold no
 *                                   per-event ids; a contract's set is read
 *                                   at its first lookup and kept with it
 *                                   (rs_pstate_seen.c)
 *
 * Batch plan: before a batch's outputs are produced, the exact order of its
 * messages is saved (synced). The plan is deleted in the same write batch that
 * commits the batch's state. A plan found at load time means the worker died
 * between producing and committing: the batch must be processed again in
 * exactly that order, which gives byte-identical outputs with the same ids.
 *
 * Ownership: rs_pstate_t owns its engine; the state store is borrowed and
 * must outlive it.
 */
#ifndef RS_PSTATE_H
#define RS_PSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "rs_engine.h"
#include "rs_state.h"

typedef struct rs_pstate rs_pstate_t;

/* One message of a batch plan: which input topic (0 contracts, 1 invoices,
 * 2 payments, 3 usage) and its offset. */
typedef struct rs_plan_item {
    uint8_t topic;
    int64_t offset;
} rs_plan_item_t;

/* Load partition N's engine (meta and every contract, each caught up: C4)
 * from the store, or start an empty one. `policy` may be NULL. Returns 0 or
 * -1 with errstr. */
int rs_pstate_load(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                   const rs_policy_t *policy, char *errstr, size_t errlen);
void rs_pstate_destroy(rs_pstate_t *ps); /* accepts NULL */

rs_engine_t *rs_pstate_engine(rs_pstate_t *ps);
int32_t rs_pstate_partition(const rs_pstate_t *ps);
/* How many contracts the load restored. */
size_t rs_pstate_loaded_contracts(const rs_pstate_t *ps);

/* Import partition N's contract records (not its meta) from the store into
 * `e`, each caught up through the partition's horizon history (C4; read
 * from its meta record), adding how many to *count (when not NULL).
 * Returns 0 or -1 with errstr. */
int rs_pstate_import_contracts(rs_state_t *st, int32_t partition, rs_engine_t *e, size_t *count,
                               char *errstr, size_t errlen);

/* Every partition's contract records in one engine (no meta): what a reader
 * of the whole store, such as `revstream report`, sees. 0 or -1 with errstr. */
int rs_pstate_import_all(rs_state_t *st, rs_engine_t *e, char *errstr, size_t errlen);

/* contract_id's record in the form the store and the changelog hold
 * (packed: rs_engine_pack_contract; import reads the older fixed-width form
 * too). Every writer of contract records goes through it, so the stored
 * form is chosen here once. Returns as rs_engine_pack_contract: 0 (`*buf`
 * malloc'd), 1 if the engine has no such contract, -1 with errstr. */
int rs_pstate_contract_record(const rs_engine_t *e, const char *contract_id, void **buf,
                              size_t *len, char *errstr, size_t errlen);

/* Stage every contract changed since the last stage, the event ids applied
 * since then (rs_pstate_stage_seen) and the engine's meta state, into `b`
 * (the caller commits it with the batch's offsets). */
int rs_pstate_stage(rs_pstate_t *ps, rs_state_batch_t *b, char *errstr, size_t errlen);

/* Stage the event ids the engine applied (or forgot) since the last call
 * into `b`: one merge of each touched contract's seen key (applied to its
 * kept set too); `fn` (may be NULL) is called for each id too (the
 * worker's changelog): non-zero stops with an error. Ids whose period is
 * known and <= drop_through are not kept (retention: already outside the
 * window); RS_PERIOD_NONE keeps all. 0 or -1 with errstr. */
typedef int (*rs_pstate_seen_fn)(void *opaque, const rs_seen_id_t *id);
int rs_pstate_stage_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t drop_through,
                         rs_pstate_seen_fn fn, void *opaque, char *errstr, size_t errlen);
/* Sort p[0..n) by contract id (strcmp's order), the ids of one contract
 * kept in their order in p (a stable sort): the order rs_pstate_stage_seen
 * stages its merges in and the worker packs the changelog's S/ records in.
 * Ids are ordered by the 8 bytes after the prefix all of them share (as one
 * integer), strings compared only where those are equal and go on. 0, or -1
 * when out of memory (p unchanged). */
int rs_pstate_sort_seen(const rs_seen_id_t **p, size_t n);
/* Retention: drop the seen ids of the partition whose event period is
 * known and <= through (ids moved from old records, period unknown, are
 * kept): one prune merge per contract holding such ids (applied to its
 * kept set too), contract after contract until `max` ids are reached (the
 * contract that reaches it is done whole), calling fn for each id (as for
 * rs_pstate_stage_seen, with forget = 1). *pruned gets the number; fewer
 * than max means none is left. 0 or -1 with errstr. */
int rs_pstate_prune_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t through, size_t max,
                         rs_pstate_seen_fn fn, void *opaque, size_t *pruned, char *errstr,
                         size_t errlen);

/* Why the last seen-store lookup failed (rs_engine_apply gave RS_APPLY_EIO). */
const char *rs_pstate_seen_error(const rs_pstate_t *ps);

/* The pending plan found at load (NULL, 0 if none); owned by ps. */
const rs_plan_item_t *rs_pstate_pending_plan(const rs_pstate_t *ps, size_t *n);
/* Save a plan now (one synced write). */
int rs_pstate_save_plan(rs_pstate_t *ps, const rs_plan_item_t *items, size_t n, char *errstr,
                        size_t errlen);
/* Stage the plan's deletion into b (and forget the pending plan). */
int rs_pstate_stage_plan_done(rs_pstate_t *ps, rs_state_batch_t *b);

/* Stage the plan (as rs_pstate_save_plan writes it) into b, so that the
 * plans of every partition of a batch are committed in one write. 0 or -1
 * with errstr. */
int rs_pstate_stage_plan(rs_pstate_t *ps, rs_state_batch_t *b, const rs_plan_item_t *items,
                         size_t n, char *errstr, size_t errlen);

/* ---- the worker's bounded cache and streaming, lazy close ----
 *
 * rs_pstate_open() loads only the meta record and the plan: contracts stay
 * in the store and come into memory when needed (rs_pstate_fetch). What is
 * in memory is bounded by `cache_bytes` (an estimate: the engine's own heap
 * per contract, rs_engine_contract_bytes, every block as the allocator
 * rounds it, plus the cache's own node for it; kept per contract and
 * refreshed for the contracts a batch used):
 *
 *   C1  A contract in memory is the newest state of it: the store's record
 *       brought through the horizon moves it missed (C4), or that plus the
 *       current batch's changes. A contract leaves memory only when clean
 *       (rs_pstate_evict, called after the batch's commit), least recently
 *       fetched first, while the estimate is over the bound.
 *   C2  Every rs_engine_advance() (event-time month end, period.closed) is a
 *       streaming, lazy close: the contracts of the partition in the store
 *       and in memory are recognized through the new horizon in contract_id
 *       order (the order and entries of an engine holding them all). What
 *       the close alone changes is NOT written back: a record stays as it
 *       was, behind the horizon, and the engine's meta (committed with the
 *       batch) records the move in its horizon history. A contract the
 *       batch had changed before the close is written by the batch, as
 *       any. Contracts read from the store that the close changed form
 *       chunks; a full chunk is handed to the close hook (the worker
 *       produces their balance snapshots and delivers what the close
 *       produced so far), then forgotten; the last, partial chunk stays in
 *       memory, clean, until the batch's end. A contract read from the
 *       store that the close did not change stays if the cache has room,
 *       else is forgotten at once. While every contract of the store is in
 *       memory (a close kept all it read and nothing was forgotten since),
 *       a close reads nothing from the store.
 *       Bounded lag: a record the walk reads that this close would leave
 *       RS_PSTATE_MAX_LAG month ends behind is written back (it stays
 *       changed): so a walk catches a record up through at most
 *       RS_PSTATE_MAX_LAG - 1 moves (a contract that stayed in memory
 *       meanwhile may be further behind in the store until then), and a
 *       book of idle contracts writes about 1/RS_PSTATE_MAX_LAG of them
 *       per close instead of all.
 *   C3  A close writes only records written back, in a full chunk's own
 *       commit made after the hook delivered the chunk's outputs and the
 *       records' changelog records: a crash after it replays the batch's
 *       plan from a store where those contracts are already recognized,
 *       which posts nothing for them again (their entries were delivered
 *       with the same ids and bytes). Anything else a close did is in
 *       memory only: a crash leaves the store as it was, and the replay
 *       posts the same entries with the same ids and bytes again.
 *   C4  Every load of a contract record (rs_pstate_fetch, the close's walk,
 *       rs_pstate_load, rs_pstate_import_contracts/_all, hence the CLI's
 *       readers) brings it through the horizon moves of its partition's
 *       history that are past its own horizon, each as that close ran
 *       (rs_engine_catch_up_contract), the entries discarded: they were
 *       emitted at the close. So every reader sees the state of an eager
 *       close, and later entries are those of an eager close, byte for
 *       byte. The history grows by one move per month end (8 bytes).
 */
#define RS_PSTATE_MAX_LAG 6

typedef struct rs_pstate_close_hooks {
    /* Called with a full chunk's contracts (in memory, recognized, in
     * contract_id order) before they leave memory: produce what they owe
     * (balance snapshots), deliver everything produced so far, then the
     * changelog records of those written back: blobs[i] (lens[i] bytes)
     * is the record of ids[i] staged for the chunk's commit, NULL if it
     * is not written. 0, or -1 to fail the close (nothing is committed). */
    int (*chunk)(void *opaque, const char *const *ids, void *const *blobs, const size_t *lens,
                 size_t n);
    void *opaque;
    /* contracts per chunk; 0: no chunks (every contract the close changed
     * stays in memory until the cache lets it go after the commit) */
    size_t contracts;
    /* 1: a chunk commits nothing: a record to write back stays in memory,
     * changed, for the batch's commit (exactly_once, whose outputs may
     * still be aborted); the chunk's other contracts leave as always */
    int keep_written;
} rs_pstate_close_hooks_t;

/* Open partition N lazily (meta and plan only) with a cache of at most
 * about cache_bytes of contracts (0: none is kept between batches) and the streaming close as
 * the engine's advance hook. Returns 0 or -1 with errstr. */
int rs_pstate_open(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                   const rs_policy_t *policy, size_t cache_bytes, char *errstr, size_t errlen);

/* Write back a record a close would leave `max_lag` month ends behind
 * (C2; default RS_PSTATE_MAX_LAG; 1: every record the close changed, the
 * eager streaming close, for comparison). */
void rs_pstate_set_max_lag(rs_pstate_t *ps, int max_lag);

/* Set the close hooks (copied). Without hooks a close keeps every
 * contract it changed in memory (clean) until the cache lets it go. */
void rs_pstate_set_close_hooks(rs_pstate_t *ps, const rs_pstate_close_hooks_t *h);

/* Have `contract_id` in memory for the batch: load it from the store if it
 * is there and not in memory yet, and mark it used. A contract the store
 * does not have is left to the engine (created by its first event).
 * 0, or -1 with errstr (store error, corrupt record). */
int rs_pstate_fetch(rs_pstate_t *ps, const char *contract_id, char *errstr, size_t errlen);

/* After a commit (every contract in memory is clean): refresh the size of
 * the contracts used since the last call and forget the least recently
 * used ones while the estimate is over the bound. Returns how many left. */
size_t rs_pstate_evict(rs_pstate_t *ps);

/* Why the last close (an advance through the hook) failed; "" if none. */
const char *rs_pstate_close_error(const rs_pstate_t *ps);

/* Cache figures for logs, metrics and benchmarks. */
typedef struct rs_pstate_cache_stats {
    size_t contracts;   /* in memory (tracked by the cache) */
    size_t bytes;       /* their estimated heap */
    size_t limit;       /* the bound */
    uint64_t loads;     /* contracts loaded from the store by fetch */
    uint64_t evicted;   /* forgotten by rs_pstate_evict */
    uint64_t walked;    /* contracts loaded from the store by closes */
    uint64_t chunks;    /* chunks handed to the close hook */
    uint64_t caught_up; /* records loaded behind the horizon and caught up (C4) */
    uint64_t written;   /* records written back by chunks (bounded lag) */
} rs_pstate_cache_stats_t;
void rs_pstate_cache_stats(const rs_pstate_t *ps, rs_pstate_cache_stats_t *out);
/* Add ps's figures to *sum (several partitions' totals; limit too). */
void rs_pstate_cache_stats_add(rs_pstate_cache_stats_t *sum, const rs_pstate_t *ps);

#endif
