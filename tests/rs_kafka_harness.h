/*
 * rs_kafka_harness — what the tests that run `revstream` child processes
 * against the embedded broker share (test_worker, test_scale).
 *
 * Conventions:
 *   - Every helper fails the calling Criterion test (cr_assert) on error;
 *     none returns an error code.
 *   - Every wait has a deadline of KH_DEADLINE_S seconds (a broken build
 *     fails instead of hanging); children get PR_SET_PDEATHSIG.
 *   - Ownership: returned char * and json_t * belong to the caller (free /
 *     json_decref); kh_events_t and kh_recs_t own their contents and are
 *     freed with kh_ev_free / kh_recs_free; rd_kafka_t handles returned
 *     here belong to the caller (rd_kafka_destroy).
 */
#ifndef RS_KAFKA_HARNESS_H
#define RS_KAFKA_HARNESS_H

#include <avro.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rs_avro.h"
#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_report.h"

#define KH_DEADLINE_S 60
#define KH_NPARTS 4
/* 3 s is the shortest session timeout with which a lone worker joins an
 * empty group of the 2.0.2 mock: the mock answers that first join after
 * 3 s and evicts a member quiet for the session timeout before (see
 * test_chaos.c, slot_init). */
#define KH_GROUP_TIMEOUTS                                                                      \
    "kafka.session.timeout.ms=3000\nkafka.heartbeat.interval.ms=500\nkafka.log_level=3\n"      \
    "kafka.fetch.wait.max.ms=20\n"

/* The input topics, in the order of their schema ids (1..4). */
extern const char *const kh_in_topics[4];

/* ---- temp dirs and files ---- */
double kh_now_s(void); /* monotonic seconds */
/* Removes dir, unless RS_TEST_KEEP=1 (temp dirs kept for inspection):
 * rs_test_rm_rf. */
void kh_rm_rf(const char *dir);
/* A new /tmp/rs_worker_test.XXXXXX dir; buf >= 32 bytes (rs_test_mkdtemp). */
void kh_make_dir(char *buf, size_t len);
char *kh_slurp(const char *path); /* "" if the file is missing; caller frees */
void kh_write_file(const char *path, const char *text);

/* ---- events ---- */
typedef struct kh_event {
    char *json;
    int topic; /* 0..3, an index into kh_in_topics */
    int is_close;
    char contract_id[RS_ID_MAX];
} kh_event_t;

typedef struct kh_events {
    kh_event_t *v;
    size_t n, cap;
} kh_events_t;

/* Appends one event (JSON that must decode). */
void kh_ev_add(kh_events_t *l, const char *json);
void kh_ev_addf(kh_events_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kh_ev_free(kh_events_t *l);
/* JSON Lines, one event per line. */
void kh_ev_write(const kh_events_t *l, const char *path);
/* A generated book: nc contracts (G-0000..) with a ratable and a usage
 * line, an invoice and a payment each, six months of usage, amendments,
 * cancellations, and the closes of 2026-01..2026-06. */
void kh_gen_book(kh_events_t *l, int nc);
/* examples/sample-book.jsonl; final_close == 0 leaves out close-2026-06. */
void kh_load_sample(kh_events_t *l, int final_close);

/* ---- producing ---- */
typedef struct kh_dr {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} kh_dr_t;

/* murmur2_random, idempotent; delivery reports fill a kh_dr_t passed as
 * the message opaque, and any failed delivery fails kh_flush_ok. */
rd_kafka_t *kh_new_producer(const char *bs);
/* Sets the delivery-report callback kh_new_producer uses on a producer
 * configured elsewhere: failures are logged and fail kh_flush_ok. */
void kh_conf_dr(rd_kafka_conf_t *conf);
/* No auto commit, partition EOF on. */
rd_kafka_t *kh_new_consumer(const char *bs, const char *group);
void kh_flush_ok(rd_kafka_t *p);
void kh_produce_one(rd_kafka_t *p, const char *topic, int32_t partition, const char *key,
                    const void *value, size_t len, kh_dr_t *d);
/* An Avro cache with the input schemas under local ids 1..4; caller
 * destroys it with rs_avro_cache_destroy. */
rs_avro_cache_t *kh_input_cache(void);
/* The record value of an event: its JSON, or Avro when avro != NULL.
 * Caller frees. */
void *kh_event_value(const kh_event_t *r, rs_avro_cache_t *avro, size_t *len);
/* Produces the events of `topic` (-1: every topic) whose close-ness
 * matches `closes` (-1: any), keyed by contract; a close goes to every
 * partition of contracts. Flushes. */
void kh_produce_events(rd_kafka_t *p, const kh_events_t *l, int topic, int closes,
                       rs_avro_cache_t *avro);
/* Everything but the closes, then the closes (JSON). */
void kh_produce_book(const char *bs, const kh_events_t *ev);
/* `revstream produce` of the events (Avro, each record stamped with its
 * event's occurred_at, so a worker's event-time merge applies them in file
 * order, as replay does); dir holds the book file, log gets stderr. */
void kh_produce_cli(const char *bs, const kh_events_t *ev, const char *dir, const char *log);

/* ---- reading topics ---- */
#define KH_MAX_HDRS 8

typedef struct kh_rec {
    int32_t partition;
    int64_t offset;
    char *key; /* NUL-terminated copy, NULL if none */
    size_t klen;
    unsigned char *val; /* NUL-terminated copy */
    size_t vlen;
    int nh;
    char *hname[KH_MAX_HDRS], *hval[KH_MAX_HDRS];
} kh_rec_t;

typedef struct kh_recs {
    kh_rec_t *v;
    size_t n, cap;
} kh_recs_t;

void kh_recs_free(kh_recs_t *r);
/* The value of header `name`, or NULL. */
const char *kh_hdr(const kh_rec_t *r, const char *name);
/* Every record of each of the n topics into out[i], sorted by (partition,
 * offset). */
void kh_read_topics(const char *bs, const char *const *topics, int n, kh_recs_t *out);
/* The sum of the high watermarks of the topic's partitions. */
int64_t kh_topic_size(rd_kafka_t *rk, const char *topic);
rs_period_t kh_period_of(const char *s);
/* Journal records (JSON or Avro) into a journal the caller frees with
 * rs_journal_free; checks each key and entry_id header. */
void kh_journal_of(const kh_recs_t *recs, int avro, rs_journal_t *j);
/* One Avro journal record into an entry (fails on a bad record). */
void kh_entry_from_avro(rs_entry_reader_t *rd, const kh_rec_t *r, rs_entry_t *e);
/* entry_id -> index of its first record; caller decrefs. */
json_t *kh_by_entry_id(const kh_recs_t *j);
/* The journal deduplicated by entry_id (first copy kept; uniq->v holds
 * shallow copies: free only uniq->v). Fails if one entry_id has two
 * different contents. Returns the number of duplicates. */
size_t kh_dedup_journal(const kh_recs_t *j, kh_recs_t *uniq);

/* ---- Avro outputs and balance snapshots ---- */
/* A reader of one output schema (rs_avro_schema_kind_t). */
typedef struct kh_avdec {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t val;
} kh_avdec_t;

void kh_avdec_init(kh_avdec_t *d, rs_avro_schema_kind_t kind);
void kh_avdec_free(kh_avdec_t *d);
/* Decodes a Confluent wire-format record written with local schema id
 * `id`; the value belongs to d (valid until the next read). */
avro_value_t *kh_avdec_read(kh_avdec_t *d, const kh_rec_t *r, int32_t id);
/* A field of a record (unions unwrapped): string (NULL for null), long or
 * int, bytes (NULL for null). */
const char *kh_av_str(avro_value_t *rec, const char *name);
int64_t kh_av_long(avro_value_t *rec, const char *name);
const void *kh_av_bytes(avro_value_t *rec, const char *name, size_t *len);
/* The latest line snapshot per key on the balances topic (records sorted
 * by partition and offset, as kh_read_topics gives them) equals replay's
 * row for every line, and every line has one. */
void kh_check_snapshots(const kh_recs_t *bal, int avro, json_t *rows);

/* ---- the revstream binary ---- */
const char *kh_bin(void);
/* Starts `revstream argv...` with stdout to out and stderr appended to err;
 * env is one "K=V" or NULL. */
pid_t kh_spawn(char *const argv[], const char *out, const char *err, const char *env);
/* The same for another program of the build (e.g. build/journal_consumer). */
pid_t kh_spawn_bin(const char *bin, char *const argv[], const char *out, const char *err,
                   const char *env);
/* Waits for pid; kills it and fails after timeout_s. Returns the status.
 * Fails if pid is not an unreaped child (a status already collected by
 * another waitpid cannot be returned). */
int kh_wait_exit(pid_t pid, int timeout_s, const char *log);
void kh_assert_exit0(int status, const char *log);

/* One worker's files: a temp dir with its config, log, stdout, state dir. */
typedef struct kh_worker {
    char dir[64];
    char cfg[128];
    char log[128];
    char out[128];
    char state[128];
} kh_worker_t;

/* New temp dir and config (bootstrap, state dir, group, timeouts, extra).
 * The log is text (log.format=text: the lines the tests read) unless extra
 * sets log.format. */
void kh_worker_init(kh_worker_t *w, const char *bs, const char *group, const char *extra);
pid_t kh_worker_start(const kh_worker_t *w, const char *env);
/* Runs to exit 0 (exit.when.idle=true in its config). */
void kh_worker_run_idle(const kh_worker_t *w, const char *env);
/* SIGTERM and wait; returns the status. */
int kh_worker_stop(pid_t pid, const char *log);
/* Waits until the topic holds at least n records; fails if pid exits. */
void kh_wait_topic_size(const char *bs, const char *topic, int64_t n, pid_t pid,
                        const char *log);
/* Waits until the log holds needle; fails if pid exits first. */
void kh_wait_log(const char *log, const char *needle, pid_t pid);
/* Waits until the group of `c` (a consumer that never subscribes) has
 * committed the end of every partition of topic. Returns 1, or 0 if pid
 * exited first (*status). */
int kh_wait_consumed(rd_kafka_t *c, const char *topic, pid_t pid, int *status, const char *log);

/* ---- replay and comparisons ---- */
/* `revstream replay --report balances --format json` rows; caller decrefs. */
json_t *kh_replay_balances(const kh_events_t *events, const char *dir, const char *through);
/* `revstream replay --report REPORT --format json [--policy POLICY]` rows
 * (policy NULL: none); caller decrefs. */
json_t *kh_replay_report(const kh_events_t *events, const char *dir, const char *through,
                         const char *report, const char *policy);
const char *kh_row_str(json_t *row, const char *k);
/* The balances computed from journal j equal replay's rows, row for row. */
void kh_check_journal_balances(const kh_events_t *events, const rs_journal_t *j, json_t *rows);
/* The deduplicated journal on topic gives replay's balances through
 * 2026-06, and (balances_topic not NULL) so do the latest line snapshots
 * (JSON); returns the number of journal duplicates. */
size_t kh_check_topic_balances(const char *bs, const char *topic, const char *balances_topic,
                               const kh_events_t *events);

/* ---- log figures ---- */
/* The number after " key=" on the first (or last) line starting with
 * prefix; -1 if none. */
long kh_log_number(const char *log, const char *prefix, const char *key, int first);
/* The records replayed from plans and the entries of those batches. */
void kh_replay_totals(const char *log, long *replayed, long *entries);
/* The sum of " key=" over every line that starts with prefix. */
long kh_log_sum(const char *log, const char *prefix, const char *key);

/* ---- HTTP ---- */
#define KH_HTTP_BUF 131072
/* GET path on 127.0.0.1:port; buf holds KH_HTTP_BUF bytes (a longer body
 * fails the test, never truncates silently). Returns the status
 * (0: no answer). */
long kh_http_get(int port, const char *path, char *buf);
int kh_free_port(void);

#endif /* RS_KAFKA_HARNESS_H */
