/*
 * rs_pstate — one input partition's engine, persisted in the state store.
 *
 * A worker runs one rs_engine_t per input partition number N (partition N of
 * all four input topics): its contracts, closed periods and horizon belong to
 * that partition alone, so a partition's state can move between workers.
 *
 * Layout in rs_state (see state/rs_state.h):
 *   contracts of partition N        contract blobs (rs_engine_export_contract)
 *   meta "engine/N"                 the engine's meta state (rs_engine_export_meta)
 *   meta "plan/N"                   the pending batch plan, if any
 *   seen ids of partition N         applied event ids (rs_state_get_seen):
 *                                   the engine's seen store, so contract
 *                                   records hold no per-event ids
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

/* Load partition N's engine (meta and every contract) from the store, or
 * start an empty one. `policy` may be NULL. Returns 0 or -1 with errstr. */
int rs_pstate_load(rs_pstate_t **out, rs_state_t *st, int32_t partition,
                   const rs_policy_t *policy, char *errstr, size_t errlen);
void rs_pstate_destroy(rs_pstate_t *ps); /* accepts NULL */

rs_engine_t *rs_pstate_engine(rs_pstate_t *ps);
int32_t rs_pstate_partition(const rs_pstate_t *ps);
/* How many contracts the load restored. */
size_t rs_pstate_loaded_contracts(const rs_pstate_t *ps);

/* Import partition N's contract records (not its meta) from the store into
 * `e`, adding how many to *count (when not NULL). Returns 0 or -1 with
 * errstr. */
int rs_pstate_import_contracts(rs_state_t *st, int32_t partition, rs_engine_t *e, size_t *count,
                               char *errstr, size_t errlen);

/* Every partition's contract records in one engine (no meta): what a reader
 * of the whole store, such as `revstream report`, sees. 0 or -1 with errstr. */
int rs_pstate_import_all(rs_state_t *st, rs_engine_t *e, char *errstr, size_t errlen);

/* Stage every contract changed since the last stage, the event ids applied
 * since then (rs_pstate_stage_seen) and the engine's meta state, into `b`
 * (the caller commits it with the batch's offsets). */
int rs_pstate_stage(rs_pstate_t *ps, rs_state_batch_t *b, char *errstr, size_t errlen);

/* Stage the event ids the engine applied (or forgot) since the last call
 * into `b` as seen keys; `fn` (may be NULL) is called for each too (the
 * worker's changelog): non-zero stops with an error. Ids whose period is
 * known and <= drop_through are not kept (retention: already outside the
 * window); RS_PERIOD_NONE keeps all. 0 or -1 with errstr. */
typedef int (*rs_pstate_seen_fn)(void *opaque, const rs_seen_id_t *id);
int rs_pstate_stage_seen(rs_pstate_t *ps, rs_state_batch_t *b, rs_period_t drop_through,
                         rs_pstate_seen_fn fn, void *opaque, char *errstr, size_t errlen);
/* Retention: stage the deletion of at most `max` seen ids of the partition
 * whose event period is known and <= through (ids moved from old records,
 * period unknown, are kept), calling fn for each (as for
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

#endif
