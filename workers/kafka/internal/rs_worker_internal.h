/*
 * rs_worker_internal.h — what the files of the stream worker share: the
 * worker struct, its two state machines, and the functions one step of the
 * loop calls in another. Private to rs_kafka (workers/kafka/internal is a
 * PRIVATE include folder). See rs_worker.h for the model and the delivery
 * guarantee, and rs_worker.c for the invariants W1..W8 the files keep.
 *
 * The files, by step of the loop:
 *   rs_worker.c            public API, set-up and tear-down, the main loop
 *   rs_worker_state.c      the state machines below, failures, log lines
 *   rs_worker_consume.c    message queues, consuming, the event-time merge
 *                          and the plan replay order (taking a sub-batch)
 *   rs_worker_batch.c      decoding and applying a sub-batch, staging its
 *                          state, the batch commit (plan -> outputs ->
 *                          changelog -> local commit)
 *   rs_worker_output.c     producing: journal entries, balance snapshots,
 *                          dead letters, changelog records, delivery
 *                          reports, transactions
 *   rs_worker_rebalance.c  assignment and revocation, restore from the
 *                          changelog, dropping revoked state, Kafka offsets
 *   rs_worker_bounds.c     bounded records: the seen ids' changelog
 *                          records, parking a partition whose record
 *                          would exceed message.max.bytes
 *
 * WORKER STATES (rs_worker_state_t, w->state)
 *
 *   STARTING   rs_worker_new() is building the worker; nothing is polled.
 *   JOINING    subscribed; no assignment handled yet.
 *   RESTORING  inside the assign callback: partitions are restored from the
 *              changelog and loaded; the worker is not ready.
 *   RUNNING    an assignment was handled; batches are applied (the
 *              assignment may be empty after a revoke: between_assignments
 *              then says the group's next one has not come yet, and
 *              exit.when.idle waits for it).
 *   STOPPING   the loop ended on a stop request or idle: the last batch is
 *              committed and the consumer closed.
 *   STOPPED    rs_worker_run() returned 0.
 *   FAILED     a failure was recorded (w->errmsg, the first one): nothing is
 *              applied, produced for a batch or committed again (W3).
 *   CLOSING    rs_worker_destroy() runs: nothing is processed.
 *
 *   Allowed transitions (rs_worker_set_state(); anything else is a bug: it
 *   is logged and the worker fails):
 *
 *     STARTING  -> JOINING      subscribed
 *     JOINING   -> RESTORING    the first assignment
 *     RUNNING   -> RESTORING    a later assignment
 *     RESTORING -> RUNNING      the assignment is handled
 *     JOINING   -> STOPPING     stop requested before any assignment
 *     RUNNING   -> STOPPING     stop requested, or idle (exit.when.idle)
 *     STOPPING  -> STOPPED      consumer closed, nothing failed
 *     STARTING, JOINING, RESTORING, RUNNING, STOPPING -> FAILED
 *                               rs_worker_fail()
 *     every state but CLOSING -> CLOSING
 *                               rs_worker_destroy()
 *
 *   An assignment that would come while STOPPING (the consumer's close
 *   revokes, it does not assign) is handled without a state change. A
 *   failure in STOPPED or CLOSING is not recorded: nothing reads it.
 *
 * PARTITION STATES (rs_part_state_t, w->parts[N].state), per input
 * partition number N:
 *
 *   UNASSIGNED  not ours: no engine, no queue, no plan; local state, if
 *               any, is kept.
 *   RESTORING   being restored from the changelog and loaded (inside the
 *               assign callback).
 *   REPLAYING   ours, engine loaded, with a pending plan found at load: the
 *               next sub-batch is exactly the planned records.
 *   ACTIVE      ours, engine loaded, no pending plan.
 *   REVOKED     revoked or lost: engine, queue and plan released; the local
 *               state is kept until state.revoked.grace.ms after revoked_at,
 *               then dropped.
 *
 *   Allowed transitions (rs_worker_part_set_state()):
 *
 *     UNASSIGNED -> RESTORING   assigned
 *     REVOKED    -> RESTORING   assigned again within the grace
 *     RESTORING  -> REPLAYING   loaded with a pending plan
 *     RESTORING  -> ACTIVE      loaded without one
 *     RESTORING  -> UNASSIGNED  restore or load failed (the worker fails)
 *     REPLAYING  -> ACTIVE      the planned sub-batch was staged
 *     REPLAYING, ACTIVE -> REVOKED
 *                               revoked, or lost (the batch is discarded)
 *     UNASSIGNED -> REVOKED     first assignment: local state of a partition
 *                               this worker did not get starts its grace
 *     REVOKED    -> UNASSIGNED  grace over: local state dropped
 *
 *   rs_worker_destroy() releases every partition whatever its state.
 *
 * Invariants tying the partition state to the data:
 *   P1  ps != NULL exactly in REPLAYING and ACTIVE (in RESTORING while
 *       load_part sets it up) — this is W2's "assigned".
 *   P2  plan != NULL exactly in REPLAYING.
 *   P3  revoked_at != 0 exactly in REVOKED.
 *   P4  q holds messages only in REPLAYING and ACTIVE (W1).
 *
 * Flags that stay flags, being no part of the lifecycle: stop (a request,
 * async-signal-safe), txn (configured), txn_open (a transaction is open),
 * has_policy (configured), recommit (Kafka offsets to commit again),
 * between_assignments (revoked, the next assignment not yet handled), and per
 * partition cl_dirty (changelog written in this batch), parked (a record
 * of it would not fit: rs_worker_bounds.c), tp_assigned[] and eof[] (per
 * topic-partition).
 *
 * Ownership: as in rs_worker.c. Every function here runs on the thread of
 * rs_worker_run() (librdkafka calls the callbacks from its poll calls),
 * except during a batch's apply step (step 2-3 of rs_worker_batch.c), when
 * up to worker.threads threads run the sub-batches of different partitions
 * at once. Each thread then works through its own lane (lane_t:
 * rs_worker_lane()) and touches only its partitions' part_t, pstate and
 * engine; what they share is the producer and the store (both thread-safe),
 * the metrics (atomic), and, under w->mu, the failure (w->state is atomic
 * for the checks), the delivery-report tallies, the registry, parking and
 * lazily made metric series. Delivery callbacks may then run on any of
 * them.
 */
#ifndef RS_WORKER_INTERNAL_H
#define RS_WORKER_INTERNAL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_avro.h"
#include "rs_config.h"
#include "rs_engine.h"
#include "rs_kafka_client.h"
#include "rs_metrics.h"
#include "rs_pstate.h"
#include "rs_registry.h"
#include "rs_state.h"
#include "rs_worker.h"

#define N_IN RS_CONFIG_INPUT_TOPICS
#define METADATA_DEADLINE_MS 30000
#define TXN_TIMEOUT_MS 60000
#define REGISTRY_RETRIES 6
#define MAX_POLICY_BYTES (1024 * 1024)
#define RESTORE_TIMEOUT_MS 300000

/* ------------------------------------------------------------------------ */
/* states                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum rs_worker_state {
    RS_WORKER_STARTING = 0,
    RS_WORKER_JOINING,
    RS_WORKER_RESTORING,
    RS_WORKER_RUNNING,
    RS_WORKER_STOPPING,
    RS_WORKER_STOPPED,
    RS_WORKER_FAILED,
    RS_WORKER_CLOSING,
    RS_WORKER__STATES
} rs_worker_state_t;

typedef enum rs_part_state {
    RS_PART_UNASSIGNED = 0, /* calloc'd parts start here */
    RS_PART_RESTORING,
    RS_PART_REPLAYING,
    RS_PART_ACTIVE,
    RS_PART_REVOKED,
    RS_PART__STATES
} rs_part_state_t;

/* ------------------------------------------------------------------------ */
/* message queues (rs_worker_consume.c)                                     */
/* ------------------------------------------------------------------------ */

/* An input record as queued: copied out of librdkafka's message when it is
 * consumed (rs_worker_take_message), which is destroyed at once, so a fetch
 * response's buffer is freed as soon as its records were drained and a
 * queued record holds its own bytes only (~1/3 of what the message and its
 * share of the buffer held). One allocation: payload then key in data. */
typedef struct inrec {
    int64_t offset;
    int64_t timestamp; /* the record's timestamp, ms (-1: none) */
    int32_t partition;
    uint32_t len, key_len;
    const void *payload; /* into data, NULL when the record had none */
    const void *key;     /* into data, NULL when the record had none */
    char data[];
} inrec_t;

typedef struct qitem {
    inrec_t *m;    /* owned by the queue or sub-batch holding the item */
    uint8_t topic; /* input index */
} qitem_t;

/* A FIFO of messages: items v[head..n) are queued (head > 0 after pops;
 * the array is compacted when half of it is popped). */
typedef struct msgq {
    qitem_t *v;
    size_t head, n, cap;
} msgq_t;

/* ------------------------------------------------------------------------ */
/* per-sub-batch contract map, insertion-ordered (rs_worker_batch.c)        */
/* ------------------------------------------------------------------------ */

#define OFF_UNKNOWN (-2) /* stored offset not read yet */
#define OFF_NONE (-1)

typedef struct centry {
    char *id;              /* in the map's id blocks */
    int64_t applied[N_IN]; /* highest offset applied in this sub-batch, or OFF_NONE */
    int64_t stored[N_IN];  /* from the store, OFF_NONE, or OFF_UNKNOWN */
    rs_period_t as_of;     /* latest period seen for it in this sub-batch */
    int touched;           /* its balances may have changed */
    uint32_t hash;         /* of id (the map's) */
} centry_t;

/* Storage of a map's ids: blocks filled in turn, the newest first. */
typedef struct cm_block {
    struct cm_block *next;
    size_t used, cap;
    char b[];
} cm_block_t;

typedef struct cmap {
    centry_t *e;
    cm_block_t *ids; /* the entries' ids (kept until the map is cleared) */
    size_t n, cap;
    uint64_t *idx; /* open addressing: the entry's hash << 32 | (entry index + 1), 0 =
                      empty (a probe compares hashes before it reads an entry) */
    size_t icap;   /* power of two */
    size_t last;   /* entry index + 1 rs_worker_cm_get last returned, 0 = none */
} cmap_t;

/* ------------------------------------------------------------------------ */
/* the worker                                                               */
/* ------------------------------------------------------------------------ */

typedef struct part {
    rs_part_state_t state; /* only through rs_worker_part_set_state() */
    rs_pstate_t *ps;       /* W2, P1 */
    int tp_assigned[N_IN];
    int eof[N_IN];
    /* paused by rs_worker_flow_update (input.buffer.records) */
    uint8_t paused[N_IN];
    msgq_t tq[N_IN];        /* queued messages, one FIFO per input topic (W1) */
    size_t qn;              /* messages in tq[], all topics */
    int64_t next_off[N_IN]; /* one past the last queued offset of each topic; -1 unknown */
    rs_plan_item_t *plan;   /* pending plan to replay first (copy), or NULL (P2) */
    size_t nplan;
    uint64_t wait_t0;    /* since when a lagging topic held this partition back (us) */
    cmap_t offs;         /* per-contract applied offsets known (stored[]): a cache of
                            the store's, updated as batches stage theirs */
    int cl_dirty;        /* changelog records produced in the current batch */
    int64_t cl_next;     /* next changelog offset, from delivery reports (-1 unknown) */
    uint64_t revoked_at; /* when revoked, for state.revoked.grace.ms (us); 0: not (P3) */
    int parked;          /* a record would exceed message.max.bytes (rs_worker_bounds.c) */
    int seen_pruned;     /* seen ids pruned through seen_pruned_through since the load */
    rs_period_t seen_pruned_through;
} part_t;

/* What a handled record came to (revstream_events_total's outcome label). */
typedef enum rs_wm_outcome {
    RS_WM_APPLIED = 0,
    RS_WM_WAITING,
    RS_WM_DUPLICATE,
    RS_WM_REJECTED,
    RS_WM_SKIPPED,
    RS_WM__OUTCOMES
} rs_wm_outcome_t;

/* Per input partition number (rs_worker_metrics.c). */
typedef struct wm_part {
    rs_metrics_series_t *lag[N_IN]; /* revstream_consumer_lag, lazily */
    rs_metrics_series_t *fresh;     /* revstream_event_freshness_seconds, lazily */
    int64_t newest_ms;              /* newest applied event time (Unix ms), 0 none */
} wm_part_t;

#define WM_MAX_CURRENCIES 64

typedef struct wm_currency {
    char code[8];
    int exponent;
    int64_t rec, def; /* minor units, summed per slow tick */
    int seen, overflow, overflow_logged;
    rs_metrics_series_t *recognized, *deferred;
} wm_currency_t;

typedef struct wmetrics {
    rs_metrics_series_t *applied, *duplicates, *skipped, *rejected, *dlq, *entries, *balances,
        *records, *batches, *pending, *batch_seconds, *restore_remaining, *restored, *dropped,
        *assignments, *lost, *owned, *stalls, *restore_refused;
    /* rs_worker_metrics.c */
    rs_metrics_series_t *dead_letters, *commit_seconds, *parked, *ready, *cluster_up,
        *stats_errors, *phase[5], *rocks[7], *consumed[N_IN];
    rs_metrics_series_t *_Atomic ev[N_IN][RS_EV__COUNT][RS_WM__OUTCOMES]; /* lazily, by
                                                                              any lane */
    wm_part_t *wp; /* nparts, once known */
    wm_currency_t *cur;
    size_t ncur;
    uint64_t last_tick, last_slow; /* us */
    uint64_t down_since;           /* all brokers down since (us); 0 up */
    uint64_t unassigned_since;     /* owning no partition since (us); 0 owns some */
    int loop_started;              /* the first tick armed /healthz's stall limit */
} wmetrics_t;

/* A changelog record of the batch, produced after its outputs' delivery. */
typedef struct clrec {
    int32_t n;
    char *key;
    void *val;
    size_t len;
} clrec_t;

/* An apply lane: what one thread applying sub-batches owns
 * (rs_worker_batch.c). w->lane0 is the loop thread's; w->lanes[] are the
 * helpers' (worker.threads - 1), each used by one helper thread during a
 * batch's apply step and merged into lane0 after it (rs_worker_lane()). */
typedef struct lane {
    rs_worker_t *w;
    part_t *cur;   /* W2: the partition whose sub-batch is being applied */
    int32_t cur_n; /* partition number of cur */
    cmap_t cm;     /* contracts touched by the current sub-batch */
    clrec_t *clq;  /* changelog records of the batch (W6) */
    size_t nclq, capclq;
    rs_state_batch_t *sb;     /* the batch's staged state */
    rs_avro_cache_t *cache;   /* Avro codec cache (not thread-safe: one per lane) */
    int last_lookup_status;   /* of the registry, for the retry decision */
    rs_worker_stats_t *stats; /* lane0: &w->stats; helpers: &own, added after the apply */
    rs_worker_stats_t own;
} lane_t;

struct rs_worker {
    const rs_config_t *cfg;
    _Atomic rs_worker_state_t state; /* only through rs_worker_set_state(); atomic: apply
                                        lanes read it while another may fail */
    rs_policy_t policy;
    int has_policy;

    rs_state_t *st;
    rs_registry_t *reg;
    int32_t id_journal, id_balance, id_dlq;
    lane_t lane0;  /* the loop thread's apply lane (its cache: the worker's) */
    lane_t *lanes; /* helper lanes, worker.threads - 1 */
    int nlanes;
    pthread_mutex_t mu; /* what apply lanes share: failure, delivery reports,
                           registry, parking, lazily made metric series */

    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *rkt_out[3]; /* journal, balances, dlq */
    rd_kafka_topic_t *rkt_cl;     /* the changelog */
    int txn;                      /* exactly_once */
    int txn_open;
    long max_msg_bytes; /* the producer's message.max.bytes */

    int32_t nparts;
    part_t *parts;
    size_t queued;            /* messages in all queues */
    size_t fresh;             /* messages queued since the last batch ran */
    int32_t rr;               /* the partition the next batch's budget starts with */
    int more;                 /* the last batch was cut by batch.max.records: more is ready */
    size_t staged_per_record; /* the last batch's staged state bytes per record, 0 before one */
    uint64_t phase_us[5];     /* the current batch: plans, apply, deliver, changelog, commit */
    int batch_threads;        /* threads that applied the current batch */
    uint64_t last_batch_end;  /* when the last batch was committed (us) */
    uint64_t batch_t0;        /* when the oldest message not yet tried in a batch came (us) */
    size_t n_assigned;        /* topic-partitions assigned */
    int between_assignments;  /* revoked, and the group's next assignment not yet handled */
    uint64_t flow_pauses;     /* topic-partitions paused by rs_worker_flow_update */
    rd_kafka_topic_partition_list_t *commit_offsets; /* for Kafka, after the state */
    int recommit;            /* commit the store's offsets to Kafka (again) */
    uint64_t recommit_after; /* not before (us): one retry per second */

    /* delivery reports since the last commit */
    uint64_t dr_failed;
    char dr_error[512];

    volatile sig_atomic_t stop;
    char errmsg[1024];             /* the first failure (FAILED) */
    int disk_fault;                /* a state commit failed with RS_STATE_EDISK */
    uint64_t crash_in_close;       /* fault injection: SIGKILL in a close */
    _Atomic uint64_t close_chunks; /* chunk commits of closes (rs_pstate.h) */
    uint64_t close_chunks_logged;
    /* test-only fault injection (rs_worker_set_kill_point) */
    rs_kill_point_t kill_point;
    uint64_t crash_after, kill_delay_us, kill_seed;
    uint64_t kill_seen; /* batches that reached kill_point */

    /* stall guard (W8) */
    long session_ms, heartbeat_ms; /* the consumer's settings */
    uint64_t loop_mark;            /* last time the loop was known to run (us) */
    uint64_t hold_until;           /* no batch before this (us) */

    /* test hooks (rs_worker_set_test_hooks) */
    const char *test_stall_file;
    long test_restore_delay_ms;

    rs_worker_stats_t stats;
    rs_metrics_t *metrics;
    rs_metrics_server_t *msrv;
    wmetrics_t m;
};

/* ------------------------------------------------------------------------ */
/* rs_worker_state.c: states, failures, log lines, small helpers            */
/* ------------------------------------------------------------------------ */

const char *rs_worker_state_name(rs_worker_state_t s);
const char *rs_worker_part_state_name(rs_part_state_t s);

/* Move the worker to `to`. 0, or -1 on a transition the table above does
 * not allow (logged; the worker fails, unless already STOPPED or CLOSING). */
int rs_worker_set_state(rs_worker_t *w, rs_worker_state_t to);

/* Move partition n to `to`. 0, or -1 on a transition the table above does
 * not allow (logged; the worker fails and the partition keeps its state). */
int rs_worker_part_set_state(rs_worker_t *w, int32_t n, rs_part_state_t to);

/* Record the first failure and move to FAILED; the run loop stops on it
 * (W3). Ignored in STOPPED and CLOSING. */
void rs_worker_fail(rs_worker_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline int rs_worker_failed(const rs_worker_t *w)
{
    return atomic_load_explicit(&((rs_worker_t *)w)->state, memory_order_relaxed) ==
           RS_WORKER_FAILED;
}

/* Partition n is this worker's (REPLAYING or ACTIVE: its engine is loaded). */
static inline int rs_worker_owns(const rs_worker_t *w, int32_t n)
{
    return w->parts[n].state == RS_PART_REPLAYING || w->parts[n].state == RS_PART_ACTIVE;
}

/* One log line on stderr, written with one call: "event key=value ...",
 * led by "warning", "error" or "bug" for those levels (rs_log.h: JSON
 * fields, or "worker: ..." as text). */
void rs_worker_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* s as a quoted log value: '"' and '\' escaped, control bytes as '?'. */
const char *rs_worker_quote(char *buf, size_t buflen, const char *s);

uint64_t rs_worker_now_us(void); /* monotonic */

/* The input index of a configured topic name, or -1. */
int rs_worker_topic_index(const rs_worker_t *w, const char *name);

/* The input index of a canonical topic ("contracts", ... as rs_event_topic()
 * names them), or -1. */
int rs_worker_canonical_index(const char *topic);

/* ------------------------------------------------------------------------ */
/* rs_worker.c                                                              */
/* ------------------------------------------------------------------------ */

/* A conf with `settings` (up to {NULL, NULL}), the kafka.* properties for
 * a client of this role (rs_kafka_role_t) and the worker's log and error
 * callbacks. NULL with errstr ("kafka.KEY: ...", secrets not quoted) on
 * failure. */
rd_kafka_conf_t *rs_worker_kafka_conf(rs_worker_t *w, rs_kafka_role_t role,
                                      const rs_config_kafka_t *settings, char *errstr,
                                      size_t errlen);

/* ------------------------------------------------------------------------ */
/* rs_worker_consume.c                                                      */
/* ------------------------------------------------------------------------ */

void rs_worker_msgq_free(msgq_t *q);

/* Destroy every queued message of p (W1) and reset its queue counts. */
void rs_worker_part_queue_clear(part_t *p);

/* Recount w->queued from the partitions' queues (after a batch or a revoke
 * took messages out); w->fresh never exceeds it. */
void rs_worker_recount_queued(rs_worker_t *w);

/* A message from the consumer: queued on its partition (W1), an EOF noted,
 * or destroyed. */
void rs_worker_take_message(rs_worker_t *w, rd_kafka_message_t *m);

/* 1 if every assigned topic of p is at its end (nothing more is coming). */
int rs_worker_all_eof(const part_t *p);

/* Take p's sub-batch out of its queue into *sub (W1): the planned records
 * in plan order when replaying (all of them, whatever `limit`), else the
 * event-time merge of at most `limit` records. 1 with a sub-batch, 0 when p
 * must wait, -1 on out-of-memory (failure recorded). */
int rs_worker_take_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub, size_t limit);

/* ------------------------------------------------------------------------ */
/* rs_worker_batch.c                                                        */
/* ------------------------------------------------------------------------ */

/* The entry of `id` in the map, created if absent. NULL on out-of-memory. */
centry_t *rs_worker_cm_get(cmap_t *m, const char *id);
/* The entry of `id`, or NULL if it has none. */
centry_t *rs_worker_cm_find(const cmap_t *m, const char *id);
/* Drop the entries for which keep(opaque, entry) is 0 (order kept). 0, or
 * -1 on out-of-memory (the index is lost: the worker must fail). */
int rs_worker_cm_filter(cmap_t *m, int (*keep)(void *opaque, const centry_t *ce), void *opaque);
/* Empty the map (kept allocated for the next sub-batch). */
void rs_worker_cm_clear(cmap_t *m);
void rs_worker_cm_free(cmap_t *m);

/* The calling thread's apply lane: a helper lane while a helper thread
 * applies sub-batches for w, else w->lane0. */
lane_t *rs_worker_lane(rs_worker_t *w);
#define LANE(w) (rs_worker_lane(w))

/* Create the helper lanes (worker.threads - 1), free them. 0, or -1 with
 * errstr. */
int rs_worker_lanes_new(rs_worker_t *w, char *errstr, size_t errlen);
void rs_worker_lane_free(lane_t *l);

/* rs_avro lookup hook over the registry (opaque: a lane). */
int rs_worker_schema_lookup(void *opaque, int32_t id, char **json_text, char *errstr,
                            size_t errlen);

/* Run every partition's ready sub-batch, then deliver, changelog and commit
 * once. 0, or -1 with the worker FAILED. */
int rs_worker_process_batch(rs_worker_t *w);

/* ------------------------------------------------------------------------ */
/* rs_worker_output.c                                                       */
/* ------------------------------------------------------------------------ */

/* librdkafka's delivery report callback (opaque: the worker). */
void rs_worker_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* The engine's sink: one journal record per entry (opaque: the worker). */
void rs_worker_on_entry(void *opaque, const rs_entry_t *e);

/* Queue a changelog record (takes val) until the batch's outputs are
 * delivered. 0 or -1 (failure recorded). */
int rs_worker_queue_cl(rs_worker_t *w, int32_t n, const char *key, void *val, size_t len);
void rs_worker_clear_clq(rs_worker_t *w);
/* Produce every queued changelog record (librdkafka takes their values),
 * then clear the queue. A failure is recorded. */
void rs_worker_produce_clq(rs_worker_t *w);

/* A dead letter for a consumed message, with its log line. */
void rs_worker_dlq_message(rs_worker_t *w, const qitem_t *it, const char *error);

/* Dead letters for the engine's late rejections (the lane's partition). */
void rs_worker_take_late(rs_worker_t *w, rs_engine_t *e);

void rs_worker_count_rejected(rs_worker_t *w, uint64_t n);

/* Balance snapshots of every contract the sub-batch touched (W4). */
void rs_worker_produce_balances(rs_worker_t *w, const rs_engine_t *e);
int rs_worker_produce_cl(rs_worker_t *w, int32_t n, const char *key, void *value, size_t len);
/* Install the streaming close's hooks on partition p's state (rs_pstate.h). */
void rs_worker_set_close_hooks(rs_worker_t *w, part_t *p);
void rs_worker_produce_balances_of(rs_worker_t *w, const rs_engine_t *e, const char *const *ids,
                                   size_t n);

/* Wait for every delivery report since the last commit. 0, or -1 (failure
 * recorded) when any record was not delivered. */
int rs_worker_flush_outputs(rs_worker_t *w);

/* exactly_once: open the batch's transaction if none is. 0 or -1 (failure
 * recorded). */
int rs_worker_begin_transaction(rs_worker_t *w);
/* Commit the open transaction, if any, with the batch's offsets, handling
 * errors as librdkafka's examples/transactions.c does. 0 or -1 (failure
 * recorded). */
int rs_worker_commit_transaction(rs_worker_t *w);
/* Abort the open transaction, if any (after a failure). */
void rs_worker_abort_transaction(rs_worker_t *w);

/* ------------------------------------------------------------------------ */
/* rs_worker_bounds.c                                                       */
/* ------------------------------------------------------------------------ */

/* 1 if a record of keylen + len bytes fits the producer's
 * message.max.bytes; else 0, and partition n (if valid) is parked: logged
 * with `what` and `contract`, paused, its queue dropped. */
int rs_worker_fits(rs_worker_t *w, int32_t n, const char *what, const char *contract,
                   size_t keylen, size_t len);
/* Clear partition n's parked flag (it was revoked). */
void rs_worker_unpark(rs_worker_t *w, int32_t n);

/* rs_worker_flow.c: input.buffer.records. A topic-partition's share of it
 * (records queued before it is paused). */
size_t rs_worker_flow_share(const rs_worker_t *w);
/* Pause the topic-partitions queued to their share, resume those drained
 * to half of it (or no longer ACTIVE). Called by the loop after it drained
 * the consumer and after a batch. */
void rs_worker_flow_update(rs_worker_t *w);
/* Before `parts` is assigned: resume them all (a pause never outlives an
 * assignment) and clear every paused flag. */
void rs_worker_flow_assigning(rs_worker_t *w, rd_kafka_topic_partition_list_t *parts);
/* Stage the seen ids p's engine applied into w->sb and queue their
 * changelog records. 0 or -1 (failure recorded). */
int rs_worker_stage_seen(rs_worker_t *w, part_t *p, int32_t n);
/* Retention (state.seen.retention.months > 0): once the partition's
 * latest closed period moved, stage the deletion of the seen ids whose
 * period is that many months before it (and queue their tombstones),
 * about RS_WORKER_PRUNE_MAX per sub-batch (whole contracts: one prune
 * merge each). 0 or -1 (failure recorded). */
#define RS_WORKER_PRUNE_MAX 100000
int rs_worker_prune_seen(rs_worker_t *w, part_t *p, int32_t n);
/* An event whose id may have been pruned (its period is retention months
 * or more before the latest closed period): 1 with the reason in err, to be
 * dead-lettered; else 0. */
int rs_worker_outside_retention(rs_worker_t *w, const rs_engine_t *e, const rs_event_t *ev,
                                char *err, size_t errlen);
/* Drop the queued changelog records from index `mark` on. */
void rs_worker_drop_clq_from(rs_worker_t *w, size_t mark);

/* ------------------------------------------------------------------------ */
/* rs_worker_rebalance.c                                                    */
/* ------------------------------------------------------------------------ */

/* librdkafka's rebalance and offset-commit callbacks (opaque: the worker). */
void rs_worker_on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque);
void rs_worker_on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *offsets, void *opaque);

/* Commit the store's next offsets to Kafka (informational, W7). */
void rs_worker_commit_store_offsets(rs_worker_t *w);

/* Drop the local state of partitions whose revocation grace is over. */
void rs_worker_drop_expired(rs_worker_t *w);

/* Free p's engine, queue and plan (no state change: the caller's). */
void rs_worker_release_part(part_t *p);

/* ------------------------------------------------------------------------ */
/* rs_worker_metrics.c                                                      */
/* ------------------------------------------------------------------------ */

/* Create the registry, every family, the process metrics, build info and
 * (metrics.port) the server. 0, or -1 with errstr. */
int rs_worker_metrics_setup(rs_worker_t *w, char *errstr, size_t errlen);
void rs_worker_metrics_free(rs_worker_t *w);

/* librdkafka's stats_cb (opaque: the worker): consumer lag, broker states. */
int rs_worker_on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque);
/* An error from librdkafka's error callback (all brokers down). */
void rs_worker_metrics_cluster_error(rs_worker_t *w, int err);

/* Every loop iteration: heartbeat, readiness, freshness, RocksDB figures,
 * currency totals (each at its own interval). */
void rs_worker_metrics_tick(rs_worker_t *w);

/* A record taken from the consumer (topic index). */
void rs_worker_metrics_consumed(rs_worker_t *w, int topic);
/* A record handled by a sub-batch: ev is NULL or its decoded event. */
void rs_worker_metrics_event(rs_worker_t *w, const qitem_t *it, const rs_event_t *ev,
                             rs_wm_outcome_t outcome);
rs_wm_outcome_t rs_worker_apply_outcome(int apply_result);
/* Before apply lanes run: what rs_worker_metrics_event() would make lazily
 * that is not thread-safe (the per-partition array). */
void rs_worker_metrics_prepare(rs_worker_t *w);
/* A committed batch: its phase latencies (w->phase_us). */
void rs_worker_metrics_batch(rs_worker_t *w);

/* Test hook: sleep test_restore_delay_ms (heartbeating) as a restore starts. */
void rs_worker_test_restore_delay(rs_worker_t *w);

#endif
