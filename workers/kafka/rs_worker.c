/*
 * rs_worker.c — the stream worker's main loop (see rs_worker.h for the
 * model and the guarantees).
 *
 * Invariants kept here:
 *   W1  Every consumed message is owned by exactly one place: the queue of
 *       its partition number (parts[N].q) until a batch takes it, then the
 *       batch until the batch is done with it. Messages of a partition whose
 *       engine is gone (revoked) are destroyed, never processed.
 *   W2  parts[N].ps != NULL exactly while partition number N is assigned to
 *       this worker; its engine's sink is on_entry() with w as opaque, and
 *       w->cur names the partition whose sub-batch is being applied (NULL
 *       outside apply), so an entry is always produced for the partition
 *       whose event caused it.
 *   W3  Outputs of a sub-batch are produced only after its plan was saved
 *       (rs_pstate_save_plan), and w->sb (the state write batch) is committed
 *       only after rd_kafka_flush() returned with zero failed delivery
 *       reports for everything produced since the last commit. After a
 *       failure w->failed is set and nothing is committed again: the
 *       in-memory engines are ahead of the store, so the only way on is a
 *       restart, which replays the plans.
 *   W4  Everything a sub-batch produces is a function of the engine state
 *       before it and the messages in plan order: journal records in the
 *       engine's sink order, dead letters in message order, balance
 *       snapshots in the order contracts were first touched (w->cm keeps
 *       insertion order). No clock, no hash order, no random.
 *   W5  The next input offset staged for (topic, N) is one past the highest
 *       offset of that topic in the sub-batch, and the per-contract applied
 *       offset is the highest offset of that topic applied to the contract.
 *   W6  Changelog partition N gets, per sub-batch of N, the plan record
 *       m/N (flushed before the sub-batch's first output), then c/<id> for
 *       every contract the engine reports changed (rs_engine_take_changed;
 *       the same set is staged locally, here), then
 *       the final m/N (engine meta, all four next input offsets); the c/
 *       and final records are queued (w->clq) and produced only after the
 *       batch's outputs were all delivered, then flushed. parts[N].
 *       cl_next (from delivery reports) is staged as changelog/N with the
 *       state commit. A partition is restored before rs_pstate_load when its
 *       local changelog/N is missing (and no local state) or behind.
 *   W7  Nothing is applied or produced while the assignment is lost
 *       (rd_kafka_assignment_lost): the revoke callback of a lost
 *       assignment discards the queued messages and commits nothing.
 *       Kafka's committed offsets only mirror the store (never ahead of
 *       it); after an assignment or a failed commit they are committed
 *       again from the store.
 *   W8  After the process was frozen for over half the session timeout
 *       (check_stall), no batch is applied until two heartbeat intervals
 *       have passed, so a lost assignment is learnt before queued records
 *       of partitions that may have moved are applied.
 *
 * Ownership: the worker owns the clients, the store, the registry and Avro
 * cache, the engines (through rs_pstate), the queues and the write batch;
 * rs_worker_destroy() frees them in reverse order of creation. Buffers for
 * produced records are copied by librdkafka (RD_KAFKA_MSG_F_COPY) and freed
 * here right after the produce call.
 */
#include "rs_worker.h"
#include "rs_err.h"

#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rs_avro.h"
#include "rs_changelog.h"
#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_metrics.h"
#include "rs_pstate.h"
#include "rs_registry.h"
#include "rs_state.h"

#define N_IN RS_CONFIG_INPUT_TOPICS
#define METADATA_DEADLINE_MS 30000
#define TXN_TIMEOUT_MS 60000
#define REGISTRY_RETRIES 6
#define MAX_POLICY_BYTES (1024 * 1024)
#define RESTORE_TIMEOUT_MS 300000

/* The canonical topic of each input index (rs_event_topic() names). */
static const char *const canonical_in[N_IN] = {"contracts", "invoices", "payments", "usage"};

/* ------------------------------------------------------------------------ */
/* logging                                                                  */
/* ------------------------------------------------------------------------ */

static void wlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One structured line on stderr, written with one call so lines from
 * librdkafka's threads never interleave with it. */
static void wlog(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    int n;

    memcpy(line, "worker: ", 8);
    va_start(ap, fmt);
    n = vsnprintf(line + 8, sizeof line - 9, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    line[len++] = '\n';
    line[len] = '\0';
    fputs(line, stderr);
}

/* s as a quoted log value: '"' and '\' escaped, control bytes as '?'. */
static const char *q(char *buf, size_t buflen, const char *s)
{
    size_t o = 0;

    if (buflen < 3) {
        if (buflen > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && o + 3 < buflen;
         p++) {
        if (*p == '"' || *p == '\\')
            buf[o++] = '\\';
        buf[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char)*p;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------------ */
/* message queues                                                           */
/* ------------------------------------------------------------------------ */

typedef struct qitem {
    rd_kafka_message_t *m;
    uint8_t topic; /* input index */
} qitem_t;

typedef struct msgq {
    qitem_t *v;
    size_t n, cap;
} msgq_t;

static int q_push(msgq_t *q, qitem_t it)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        qitem_t *nv = realloc(q->v, cap * sizeof *nv);
        if (nv == NULL)
            return -1;
        q->v = nv;
        q->cap = cap;
    }
    q->v[q->n++] = it;
    return 0;
}

static void q_clear(msgq_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        rd_kafka_message_destroy(q->v[i].m);
    q->n = 0;
}

static void q_free(msgq_t *q)
{
    q_clear(q);
    free(q->v);
    q->v = NULL;
    q->cap = 0;
}

/* ------------------------------------------------------------------------ */
/* per-sub-batch contract map (insertion-ordered)                           */
/* ------------------------------------------------------------------------ */

#define OFF_UNKNOWN (-2) /* stored offset not read yet */
#define OFF_NONE (-1)

typedef struct centry {
    char *id;
    int64_t applied[N_IN]; /* highest offset applied in this sub-batch, or OFF_NONE */
    int64_t stored[N_IN];  /* from the store, OFF_NONE, or OFF_UNKNOWN */
    rs_period_t as_of;     /* latest period seen for it in this sub-batch */
    int touched;           /* its balances may have changed */
} centry_t;

typedef struct cmap {
    centry_t *e;
    size_t n, cap;
    uint32_t *idx; /* open addressing: entry index + 1, 0 = empty */
    size_t icap;   /* power of two */
} cmap_t;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static void cm_clear(cmap_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].id);
    m->n = 0;
    if (m->idx != NULL)
        memset(m->idx, 0, m->icap * sizeof *m->idx);
}

static void cm_free(cmap_t *m)
{
    cm_clear(m);
    free(m->e);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

static int cm_rehash(cmap_t *m, size_t icap)
{
    uint32_t *idx = calloc(icap, sizeof *idx);
    if (idx == NULL)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t h = hash_str(m->e[i].id) & (icap - 1);
        while (idx[h] != 0)
            h = (h + 1) & (icap - 1);
        idx[h] = (uint32_t)(i + 1);
    }
    free(m->idx);
    m->idx = idx;
    m->icap = icap;
    return 0;
}

/* The entry of `id`, created if absent. NULL on out-of-memory. */
static centry_t *cm_get(cmap_t *m, const char *id)
{
    size_t h;

    if (m->icap == 0 && cm_rehash(m, 64) != 0)
        return NULL;
    h = hash_str(id) & (m->icap - 1);
    while (m->idx[h] != 0) {
        centry_t *e = &m->e[m->idx[h] - 1];
        if (strcmp(e->id, id) == 0)
            return e;
        h = (h + 1) & (m->icap - 1);
    }
    if ((m->n + 1) * 2 > m->icap) {
        if (cm_rehash(m, m->icap * 2) != 0)
            return NULL;
        h = hash_str(id) & (m->icap - 1);
        while (m->idx[h] != 0)
            h = (h + 1) & (m->icap - 1);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        centry_t *ne = realloc(m->e, cap * sizeof *ne);
        if (ne == NULL)
            return NULL;
        m->e = ne;
        m->cap = cap;
    }
    centry_t *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->id = strdup(id);
    if (e->id == NULL)
        return NULL;
    for (int t = 0; t < N_IN; t++) {
        e->applied[t] = OFF_NONE;
        e->stored[t] = OFF_UNKNOWN;
    }
    e->as_of = RS_PERIOD_NONE;
    m->idx[h] = (uint32_t)(m->n + 1);
    m->n++;
    return e;
}

/* ------------------------------------------------------------------------ */
/* the worker                                                               */
/* ------------------------------------------------------------------------ */

typedef struct part {
    rs_pstate_t *ps; /* W2 */
    int tp_assigned[N_IN];
    int eof[N_IN];
    msgq_t q;
    rs_plan_item_t *plan; /* pending plan to replay first (copy), or NULL */
    size_t nplan;
    uint64_t wait_t0;    /* since when a lagging topic held this partition back (us) */
    int cl_dirty;        /* changelog records produced in the current batch */
    int64_t cl_next;     /* next changelog offset, from delivery reports (-1 unknown) */
    uint64_t revoked_at; /* when revoked, for state.revoked.grace.ms (us); 0: not */
} part_t;

typedef struct wmetrics {
    rs_metrics_series_t *applied, *duplicates, *skipped, *rejected, *dlq, *entries, *balances,
        *records, *batches, *pending, *batch_seconds, *restore_remaining, *restored, *dropped,
        *assignments, *lost, *owned, *stalls;
} wmetrics_t;

struct rs_worker {
    const rs_config_t *cfg;
    rs_policy_t policy;
    int has_policy;

    rs_state_t *st;
    rs_state_batch_t *sb;
    rs_registry_t *reg;
    rs_avro_cache_t *cache;
    int32_t id_journal, id_balance, id_dlq;
    int last_lookup_status; /* of the registry, for the retry decision */

    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *rkt_out[3]; /* journal, balances, dlq */
    rd_kafka_topic_t *rkt_cl;     /* the changelog */
    /* changelog records of the batch, produced after its outputs' delivery */
    struct clrec {
        int32_t n;
        char *key;
        void *val;
        size_t len;
    } * clq;
    size_t nclq, capclq;
    int txn; /* exactly_once */
    int txn_open;

    int32_t nparts;
    part_t *parts;
    size_t queued;     /* messages in all queues */
    uint64_t batch_t0; /* when the oldest queued message came (us) */
    int assigned_once; /* the first assignment was handled */
    size_t n_assigned; /* topic-partitions assigned */
    part_t *cur;       /* W2 */
    int32_t cur_n;     /* partition number of cur */
    cmap_t cm;         /* contracts touched by the current sub-batch */
    rd_kafka_topic_partition_list_t *commit_offsets; /* for Kafka, after the state */
    int recommit;            /* commit the store's offsets to Kafka (again) */
    uint64_t recommit_after; /* not before (us): one retry per second */

    /* delivery reports since the last commit */
    uint64_t dr_failed;
    char dr_error[512];

    volatile sig_atomic_t stop;
    int closing; /* being destroyed: process nothing */
    int failed;  /* W3 */
    char errmsg[1024];
    uint64_t crash_after, batches_done;

    /* stall guard (W8) */
    long session_ms, heartbeat_ms; /* the consumer's settings */
    uint64_t loop_mark;            /* last time the loop was known to run (us) */
    uint64_t hold_until;           /* no batch before this (us) */

    rs_worker_stats_t stats;
    rs_metrics_t *metrics;
    rs_metrics_server_t *msrv;
    wmetrics_t m;
};

static void fail(rs_worker_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the first failure; the run loop stops on it (W3). */
static void fail(rs_worker_t *w, const char *fmt, ...)
{
    va_list ap;

    if (w->failed)
        return;
    w->failed = 1;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
}

static int topic_index(const rs_worker_t *w, const char *name)
{
    for (int t = 0; t < N_IN; t++)
        if (strcmp(w->cfg->topics[t], name) == 0)
            return t;
    return -1;
}

static int canonical_index(const char *topic)
{
    for (int t = 0; t < N_IN; t++)
        if (topic != NULL && strcmp(canonical_in[t], topic) == 0)
            return t;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* producing                                                                */
/* ------------------------------------------------------------------------ */

typedef struct hdr {
    const char *name;
    const char *value;
} hdr_t;

/* Produce one record (copied) with up to 6 headers, waiting while the
 * producer's queue is full. Returns 0 or -1 (failure recorded). */
static int produce(rs_worker_t *w, int out, const void *key, size_t keylen, const void *value,
                   size_t len, const hdr_t *h, int nh)
{
    rd_kafka_headers_t *hs = NULL;

    for (;;) {
        rd_kafka_resp_err_t err;
        hs = rd_kafka_headers_new((size_t)nh);
        for (int i = 0; i < nh; i++)
            rd_kafka_header_add(hs, h[i].name, -1, h[i].value, -1);
        err = rd_kafka_producev(
            w->producer, RD_KAFKA_V_RKT(w->rkt_out[out]),
            RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA), RD_KAFKA_V_KEY((void *)key, keylen),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0; /* the headers belong to the message now */
        rd_kafka_headers_destroy(hs);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fail(w, "produce to %s: %s", rd_kafka_topic_name(w->rkt_out[out]),
                 rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(w->producer, 100);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    rs_worker_t *w = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (w->rkt_cl != NULL && w->parts != NULL && m->rkt != NULL &&
            strcmp(rd_kafka_topic_name(m->rkt), w->cfg->changelog_topic) == 0 &&
            m->partition >= 0 && m->partition < w->nparts && m->offset >= 0 &&
            m->offset + 1 > w->parts[m->partition].cl_next)
            w->parts[m->partition].cl_next = m->offset + 1;
        return;
    }
    if (w->dr_failed++ == 0)
        snprintf(w->dr_error, sizeof w->dr_error, "%s: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
}

/* Produce one changelog record to partition n explicitly (never by key). */
static int produce_cl(rs_worker_t *w, int32_t n, const char *key, const void *value, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            w->producer, RD_KAFKA_V_RKT(w->rkt_cl), RD_KAFKA_V_PARTITION(n),
            RD_KAFKA_V_KEY((void *)key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            w->parts[n].cl_dirty = 1;
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fail(w, "produce to %s[%d]: %s", w->cfg->changelog_topic, (int)n,
                 rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(w->producer, 100);
    }
}

/* ------------------------------------------------------------------------ */
/* journal entries (the engine's sink)                                      */
/* ------------------------------------------------------------------------ */

static void touch(rs_worker_t *w, const char *contract_id, rs_period_t p)
{
    centry_t *ce;

    if (contract_id == NULL || contract_id[0] == '\0')
        return;
    ce = cm_get(&w->cm, contract_id);
    if (ce == NULL) {
        fail(w, "out of memory");
        return;
    }
    ce->touched = 1;
    if (p != RS_PERIOD_NONE && (ce->as_of == RS_PERIOD_NONE || p > ce->as_of))
        ce->as_of = p;
}

static void on_entry(void *opaque, const rs_entry_t *e)
{
    rs_worker_t *w = opaque;
    char err[512];
    void *buf = NULL;
    size_t len = 0;
    char *json = NULL;

    if (w->failed)
        return;
    if (w->cur == NULL) {
        fail(w, "entry %s emitted outside a batch", e->entry_id);
        return;
    }
    if (w->cfg->output_format == RS_CONFIG_FORMAT_JSON) {
        json = rs_codec_entry_json(e);
        if (json == NULL) {
            fail(w, "entry %s: cannot encode as JSON", e->entry_id);
            return;
        }
        buf = json;
        len = strlen(json);
    } else if (rs_avro_encode_entry(w->cache, w->id_journal, e, &buf, &len, err, sizeof err) !=
               RS_AVRO_OK) {
        fail(w, "entry %s: %s", e->entry_id, err);
        return;
    }
    hdr_t h[1] = {{"entry_id", e->entry_id}};
    if (produce(w, 0, e->contract_id, strlen(e->contract_id), buf, len, h, 1) == 0) {
        w->stats.entries_produced++;
        rs_metrics_inc(w->m.entries);
    }
    free(buf);
    touch(w, e->contract_id, e->period);
}

/* ------------------------------------------------------------------------ */
/* dead letters                                                             */
/* ------------------------------------------------------------------------ */

static char *base64(const void *data, size_t len)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    char *out = malloc(4 * ((len + 2) / 3) + 1), *o = out;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        *o++ = tbl[(v >> 18) & 63];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Put bytes as "name" (UTF-8 text) or "name_base64"; null when absent. */
static int json_put_bytes(json_t *o, const char *name, const void *data, size_t len)
{
    char b64name[64];
    json_t *v;

    if (data == NULL)
        return json_object_set_new(o, name, json_null());
    v = json_stringn(data, len);
    if (v != NULL)
        return json_object_set_new(o, name, v);
    char *b = base64(data, len);
    if (b == NULL)
        return -1;
    snprintf(b64name, sizeof b64name, "%s_base64", name);
    int rc = json_object_set_new(o, name, json_null()) ||
             json_object_set_new(o, b64name, json_string(b));
    free(b);
    return rc;
}

/* A dead letter on the DLQ topic. offset < 0: a late rejection (no source
 * offset). key/value may be NULL. */
static int dead_letter(rs_worker_t *w, int t, int32_t partition, int64_t offset,
                       const char *error, const void *key, size_t keylen, const void *value,
                       size_t vlen, int64_t ts)
{
    char err[512], off[32], part[16];
    void *buf = NULL;
    size_t len = 0;
    const char *topic = w->cfg->topics[t];
    int rc = -1;

    if (w->cfg->output_format == RS_CONFIG_FORMAT_JSON) {
        json_t *o = json_object();
        if (o == NULL || json_object_set_new(o, "topic", json_string(topic)) ||
            json_object_set_new(o, "partition", json_integer(partition)) ||
            json_object_set_new(o, "offset",
                                offset >= 0 ? json_integer(offset) : json_null()) ||
            json_object_set_new(o, "error", json_string(error)) ||
            json_put_bytes(o, "key", key, keylen) || json_put_bytes(o, "value", value, vlen) ||
            json_object_set_new(o, "timestamp", json_integer(ts))) {
            json_decref(o);
            fail(w, "dead letter: out of memory");
            return -1;
        }
        buf = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(o);
        if (buf == NULL) {
            fail(w, "dead letter: out of memory");
            return -1;
        }
        len = strlen(buf);
    } else {
        rs_avro_deadletter_t d = {topic,  partition, offset, error, key,
                                  keylen, value,     vlen,   ts};
        if (rs_avro_encode_deadletter(w->cache, w->id_dlq, &d, &buf, &len, err, sizeof err) !=
            RS_AVRO_OK) {
            fail(w, "dead letter for %s[%d]: %s", topic, (int)partition, err);
            return -1;
        }
    }
    snprintf(part, sizeof part, "%d", (int)partition);
    if (offset >= 0)
        snprintf(off, sizeof off, "%lld", (long long)offset);
    else
        snprintf(off, sizeof off, "none");
    hdr_t h[5] = {{"source.topic", topic},
                  {"source.partition", part},
                  {"source.offset", off},
                  {"error", error},
                  {"late", "true"}};
    if (produce(w, 2, key, key ? keylen : 0, buf, len, h, offset >= 0 ? 4 : 5) == 0) {
        w->stats.dlq++;
        rs_metrics_inc(w->m.dlq);
        rc = 0;
    }
    free(buf);
    return rc;
}

static void count_rejected(rs_worker_t *w, uint64_t n)
{
    w->stats.rejected += n;
    rs_metrics_add(w->m.rejected, (int64_t)n);
}

static void dlq_message(rs_worker_t *w, const qitem_t *it, const char *error)
{
    char qe[600];
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(it->m, &tt);

    wlog("dead_letter topic=%s partition=%d offset=%lld error=%s", w->cfg->topics[it->topic],
         (int)it->m->partition, (long long)it->m->offset, q(qe, sizeof qe, error));
    dead_letter(w, it->topic, it->m->partition, it->m->offset, error, it->m->key,
                it->m->key_len, it->m->payload, it->m->len, ts < 0 ? 0 : ts);
}

static void take_late(rs_worker_t *w, rs_engine_t *e)
{
    rs_rejection_t *late = NULL;
    size_t n = rs_engine_take_late_rejections(e, &late);
    char qe[600];

    for (size_t i = 0; i < n && !w->failed; i++) {
        int t = canonical_index(rs_event_topic(late[i].type));
        if (t < 0)
            t = 0;
        wlog("dead_letter topic=%s partition=%d offset=none late=true error=%s",
             w->cfg->topics[t], (int)w->cur_n, q(qe, sizeof qe, late[i].reason));
        dead_letter(w, t, w->cur_n, -1, late[i].reason, late[i].contract_id,
                    strlen(late[i].contract_id), NULL, 0, 0);
    }
    free(late);
}

/* ------------------------------------------------------------------------ */
/* decoding and applying                                                    */
/* ------------------------------------------------------------------------ */

/* rs_avro lookup hook over the registry that remembers the registry's
 * status, so a transient failure is retried instead of dead-lettered. */
static int lookup(void *opaque, int32_t id, char **json_text, char *errstr, size_t errlen)
{
    rs_worker_t *w = opaque;
    const char *text = NULL;
    int rc = rs_registry_get_schema(w->reg, id, &text, errstr, errlen);

    w->last_lookup_status = rc;
    if (rc != RS_REGISTRY_OK)
        return -1;
    *json_text = strdup(text);
    if (*json_text == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Decode one message into ev. Returns 0, 1 (bad: errstr says why) or -1
 * (failure recorded: the registry stayed unreachable). */
static int decode(rs_worker_t *w, const rd_kafka_message_t *m, rs_event_t *ev, char *errstr,
                  size_t errlen)
{
    if (m->payload == NULL) {
        rs_errorf(errstr, errlen, "record has no value");
        return 1;
    }
    if (w->cfg->input_format == RS_CONFIG_FORMAT_JSON)
        return rs_codec_json_decode(m->payload, m->len, ev, errstr, errlen) == 0 ? 0 : 1;
    for (int attempt = 0;; attempt++) {
        w->last_lookup_status = RS_REGISTRY_OK;
        int rc = rs_avro_decode_event(w->cache, m->payload, m->len, ev, errstr, errlen);
        if (rc == RS_AVRO_OK)
            return 0;
        if (rc == RS_AVRO_ENOMEM) {
            fail(w, "decode: out of memory");
            return -1;
        }
        if (rc != RS_AVRO_EUNKNOWN_ID || w->last_lookup_status != RS_REGISTRY_EIO)
            return 1;
        if (attempt + 1 >= REGISTRY_RETRIES) {
            fail(w, "schema registry unreachable: %s", errstr);
            return -1;
        }
        char qe[600];
        wlog("warning registry_retry attempt=%d error=%s", attempt + 1,
             q(qe, sizeof qe, errstr));
        sleep(1u << attempt);
    }
}

/* The applied offset of (contract, topic): this sub-batch's, else the
 * store's. Returns 0 or -1 (failure recorded). */
static int applied_offset(rs_worker_t *w, centry_t *ce, int t, int64_t *out)
{
    char err[512];

    if (ce->stored[t] == OFF_UNKNOWN) {
        int64_t off = OFF_NONE;
        int rc = rs_state_get_contract_offset(w->st, ce->id, w->cfg->topics[t], &off, err,
                                              sizeof err);
        if (rc < 0) {
            fail(w, "state: contract %s: %s", ce->id, err);
            return -1;
        }
        ce->stored[t] = rc == 0 ? off : OFF_NONE;
    }
    *out = ce->applied[t] > ce->stored[t] ? ce->applied[t] : ce->stored[t];
    return 0;
}

static void handle_message(rs_worker_t *w, part_t *p, const qitem_t *it)
{
    rs_engine_t *e = rs_pstate_engine(p->ps);
    char err[1024];
    rs_event_t ev;
    int t = it->topic;

    rs_event_init(&ev);
    int d = decode(w, it->m, &ev, err, sizeof err);
    if (d < 0)
        goto out;
    if (d > 0) {
        count_rejected(w, 1);
        dlq_message(w, it, err);
        goto out;
    }
    int home = canonical_index(rs_event_topic(ev.type));
    if (home != t) {
        snprintf(err, sizeof err, "event %s: type: %s belongs on the %s topic, not %s",
                 ev.event_id, rs_event_type_name(ev.type),
                 home >= 0 ? w->cfg->topics[home] : "?", w->cfg->topics[t]);
        count_rejected(w, 1);
        dlq_message(w, it, err);
        goto out;
    }
    centry_t *ce = NULL;
    if (ev.contract_id[0] != '\0') {
        int64_t applied;
        ce = cm_get(&w->cm, ev.contract_id);
        if (ce == NULL) {
            fail(w, "out of memory");
            goto out;
        }
        if (applied_offset(w, ce, t, &applied) != 0)
            goto out;
        if (it->m->offset <= applied) {
            w->stats.skipped++;
            rs_metrics_inc(w->m.skipped);
            goto out;
        }
    }
    rs_apply_result_t res = rs_engine_apply(e, &ev, err, sizeof err);
    /* The sink may have grown the map: look the entry up again. */
    if (ce != NULL && (ce = cm_get(&w->cm, ev.contract_id)) == NULL) {
        fail(w, "out of memory");
        goto out;
    }
    switch (res) {
    case RS_APPLY_OK:
    case RS_APPLY_PENDING:
        if (ce != NULL) {
            ce->touched = 1;
            if (ev.occurred_on != RS_DATE_NONE) {
                rs_period_t per = rs_period_of(ev.occurred_on);
                if (ce->as_of == RS_PERIOD_NONE || per > ce->as_of)
                    ce->as_of = per;
            }
        }
        break;
    case RS_APPLY_DUPLICATE:
        break;
    case RS_APPLY_REJECTED:
        dlq_message(w, it, err);
        break;
    case RS_APPLY_NOMEM:
    default:
        fail(w, "engine: out of memory applying event %s", ev.event_id);
        goto out;
    }
    if (ce != NULL && it->m->offset > ce->applied[t])
        ce->applied[t] = it->m->offset;
    take_late(w, e);
out:
    rs_event_clear(&ev);
}

/* ------------------------------------------------------------------------ */
/* balance snapshots                                                        */
/* ------------------------------------------------------------------------ */

/* The first line view of contract `id` (views are sorted by contract_id,
 * line_id), or count if it has none. */
static size_t first_line(const rs_engine_t *e, const char *id, size_t count)
{
    size_t lo = 0, hi = count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rs_line_view_t v;
        rs_engine_line_get(e, mid, &v);
        if (strcmp(v.contract_id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int produce_balance(rs_worker_t *w, const rs_avro_balance_t *b)
{
    char err[512], per[16];
    void *buf = NULL;
    size_t len = 0;

    rs_period_format(b->as_of_period, per, sizeof per);
    if (w->cfg->output_format == RS_CONFIG_FORMAT_JSON) {
        char m[5][48];
        json_t *o = json_object();
        rs_money_format(b->billed, b->exponent, m[0], sizeof m[0]);
        rs_money_format(b->recognized, b->exponent, m[1], sizeof m[1]);
        rs_money_format(b->deferred, b->exponent, m[2], sizeof m[2]);
        rs_money_format(b->unbilled, b->exponent, m[3], sizeof m[3]);
        rs_money_format(b->received, b->exponent, m[4], sizeof m[4]);
        if (o == NULL || json_object_set_new(o, "snapshot_key", json_string(b->snapshot_key)) ||
            json_object_set_new(o, "contract_id", json_string(b->contract_id)) ||
            json_object_set_new(o, "customer_id", json_string(b->customer_id)) ||
            json_object_set_new(
                o, "scope",
                json_string(b->scope == RS_AVRO_SCOPE_LINE ? "line" : "contract")) ||
            json_object_set_new(o, "line_id",
                                b->line_id ? json_string(b->line_id) : json_null()) ||
            json_object_set_new(o, "invoice_id", json_null()) ||
            json_object_set_new(o, "currency", json_string(b->currency)) ||
            json_object_set_new(o, "exponent", json_integer(b->exponent)) ||
            json_object_set_new(o, "billed", json_string(m[0])) ||
            json_object_set_new(o, "recognized", json_string(m[1])) ||
            json_object_set_new(o, "deferred", json_string(m[2])) ||
            json_object_set_new(o, "unbilled", json_string(m[3])) ||
            json_object_set_new(o, "received", json_string(m[4])) ||
            json_object_set_new(o, "as_of_period", json_string(per))) {
            json_decref(o);
            fail(w, "balance: out of memory");
            return -1;
        }
        buf = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(o);
        if (buf == NULL) {
            fail(w, "balance: out of memory");
            return -1;
        }
        len = strlen(buf);
    } else if (rs_avro_encode_balance(w->cache, w->id_balance, b, &buf, &len, err,
                                      sizeof err) != RS_AVRO_OK) {
        fail(w, "balance %s: %s", b->snapshot_key, err);
        return -1;
    }
    int rc = produce(w, 1, b->snapshot_key, strlen(b->snapshot_key), buf, len, NULL, 0);
    free(buf);
    if (rc == 0) {
        w->stats.balances_produced++;
        rs_metrics_inc(w->m.balances);
    }
    return rc;
}

/* A snapshot per line and one for the contract, for every contract the
 * sub-batch touched (W4: in the order they were first touched). */
static void produce_balances(rs_worker_t *w, const rs_engine_t *e)
{
    size_t count = 0;
    int have_count = 0;

    for (size_t i = 0; i < w->cm.n && !w->failed; i++) {
        const centry_t *ce = &w->cm.e[i];
        rs_avro_balance_t tot;
        size_t k;
        int nlines = 0;

        if (!ce->touched)
            continue;
        if (!have_count) {
            count = rs_engine_line_count(e);
            have_count = 1;
        }
        memset(&tot, 0, sizeof tot);
        for (k = first_line(e, ce->id, count); k < count && !w->failed; k++) {
            rs_line_view_t v;
            rs_engine_line_get(e, k, &v);
            if (strcmp(v.contract_id, ce->id) != 0)
                break;
            size_t klen = strlen(ce->id) + strlen(v.line_id) + 8;
            char *key = malloc(klen);
            if (key == NULL) {
                fail(w, "out of memory");
                return;
            }
            snprintf(key, klen, "%s/line/%s", ce->id, v.line_id);
            rs_avro_balance_t b = {key,        ce->id,       v.customer_id, RS_AVRO_SCOPE_LINE,
                                   v.line_id,  NULL,         v.currency,    v.exponent,
                                   v.billed,   v.recognized, v.deferred,    v.unbilled,
                                   v.received, ce->as_of};
            produce_balance(w, &b);
            free(key);
            if (nlines++ == 0) {
                tot = b;
                tot.snapshot_key = ce->id;
                tot.scope = RS_AVRO_SCOPE_CONTRACT;
                tot.line_id = NULL;
            } else {
                tot.billed += v.billed;
                tot.recognized += v.recognized;
                tot.deferred += v.deferred;
                tot.unbilled += v.unbilled;
                tot.received += v.received;
            }
        }
        if (nlines > 0 && !w->failed)
            produce_balance(w, &tot);
    }
}

/* ------------------------------------------------------------------------ */
/* batches                                                                  */
/* ------------------------------------------------------------------------ */

/* 1 if every assigned topic of p is at its end (nothing more is coming). */
static int all_eof(const part_t *p)
{
    int any = 0;
    for (int t = 0; t < N_IN; t++)
        if (p->tp_assigned[t]) {
            any = 1;
            if (!p->eof[t])
                return 0;
        }
    return any;
}

static int64_t record_time(const qitem_t *it)
{
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(it->m, &type);
    return ts < 0 ? 0 : ts;
}

/* The event-time merge (W4): a partition's four topics are not ordered
 * against each other, so its queued records are taken in record-timestamp
 * order (event time: `revstream produce` stamps each record with the
 * event's occurred_at), ties by topic then offset, keeping every topic's own
 * order. Like Kafka Streams' max.task.idle.ms, records are taken only while
 * every assigned topic of the partition has records queued or is at its end;
 * a topic that lags longer than input.idle.ms no longer holds the others
 * back. The plan records the order taken, so a replay is identical. Returns
 * 1 with a sub-batch, 0 when p waits, -1 on out-of-memory. */
static int merge_sub_batch(rs_worker_t *w, part_t *p, msgq_t *sub)
{
    size_t nq = p->q.n, pos[N_IN], left[N_IN] = {0, 0, 0, 0};
    int lagging = 0;
    for (size_t i = 0; i < nq; i++)
        left[p->q.v[i].topic]++;
    for (int t = 0; t < N_IN; t++)
        if (p->tp_assigned[t] && left[t] == 0 && !p->eof[t])
            lagging = 1;
    uint64_t now = now_us();
    if (lagging) {
        if (p->wait_t0 == 0)
            p->wait_t0 = now;
        if (now - p->wait_t0 < (uint64_t)w->cfg->input_idle_ms * 1000u)
            return 0;
    }
    p->wait_t0 = 0;
    memset(sub, 0, sizeof *sub);
    sub->v = malloc((nq + 1) * sizeof *sub->v);
    char *taken = calloc(nq + 1, 1);
    if (sub->v == NULL || taken == NULL) {
        free(sub->v);
        free(taken);
        sub->v = NULL;
        fail(w, "out of memory");
        return -1;
    }
    sub->cap = nq + 1;
    for (int t = 0; t < N_IN; t++) {
        pos[t] = 0;
        while (pos[t] < nq && p->q.v[pos[t]].topic != t)
            pos[t]++;
    }
    for (;;) {
        int best = -1;
        for (int t = 0; t < N_IN; t++) {
            if (pos[t] >= nq)
                continue;
            if (best < 0 || record_time(&p->q.v[pos[t]]) < record_time(&p->q.v[pos[best]]))
                best = t;
        }
        if (best < 0)
            break;
        size_t j = pos[best];
        sub->v[sub->n++] = p->q.v[j];
        taken[j] = 1;
        left[best]--;
        do
            j++;
        while (j < nq && p->q.v[j].topic != best);
        pos[best] = j;
        /* a topic that ran dry and may still bring records earlier than the
         * others' stops the merge: the rest waits for the next round (a topic
         * waited out as lagging had none, so it never stops it) */
        if (left[best] == 0 && !p->eof[best])
            break;
    }
    size_t k = 0;
    for (size_t j = 0; j < nq; j++)
        if (!taken[j])
            p->q.v[k++] = p->q.v[j];
    p->q.n = k;
    free(taken);
    return sub->n > 0;
}

/* Take p's sub-batch out of its queue into *sub (W1). With a pending plan,
 * the sub-batch is the planned messages in plan order, and only once all of
 * them are there (or nothing more can come: then the missing ones are
 * logged and left out). Returns 1 with a sub-batch, 0 when p must wait, -1
 * on out-of-memory. */
static int take_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub)
{
    if (p->plan == NULL)
        return merge_sub_batch(w, p, sub);
    size_t nq = p->q.n, missing = 0, found = 0;
    char *taken = calloc(nq + 1, 1);
    size_t *order = calloc(p->nplan + 1, sizeof *order);
    size_t pos[N_IN] = {0, 0, 0, 0};
    int rc = -1;

    if (taken == NULL || order == NULL)
        goto done;
    /* Queue messages of one topic arrive in offset order, and so do the
     * plan's items of one topic: walk each topic with one cursor. */
    for (size_t i = 0; i < p->nplan; i++) {
        int t = p->plan[i].topic;
        int64_t off = p->plan[i].offset;
        size_t j = pos[t];
        while (j < nq && (p->q.v[j].topic != t || p->q.v[j].m->offset < off))
            j++;
        if (j < nq && p->q.v[j].m->offset == off) {
            taken[j] = 1;
            order[found++] = j;
            pos[t] = j + 1;
        } else if (j < nq) {
            missing++; /* a later offset is there: this one no longer exists */
            pos[t] = j;
        } else if (all_eof(p)) {
            missing++;
        } else {
            rc = 0; /* not consumed yet */
            goto done;
        }
    }
    if (missing > 0)
        wlog("warning plan_incomplete partition=%d planned=%zu missing=%zu "
             "hint=\"planned input records are gone from the topics; replaying the rest\"",
             (int)n, p->nplan, missing);
    memset(sub, 0, sizeof *sub);
    sub->v = malloc((found + 1) * sizeof *sub->v);
    if (sub->v == NULL)
        goto done;
    sub->cap = found + 1;
    for (size_t i = 0; i < found; i++)
        sub->v[sub->n++] = p->q.v[order[i]];
    size_t k = 0;
    for (size_t j = 0; j < nq; j++)
        if (!taken[j])
            p->q.v[k++] = p->q.v[j];
    p->q.n = k;
    wlog("plan_replay partition=%d records=%zu", (int)n, found);
    rc = 1;
done:
    free(taken);
    free(order);
    if (rc < 0)
        fail(w, "out of memory");
    return rc;
}

static int add_commit_offset(rs_worker_t *w, const char *topic, int32_t partition, int64_t next)
{
    rd_kafka_topic_partition_t *tp;

    if (w->commit_offsets == NULL)
        w->commit_offsets = rd_kafka_topic_partition_list_new(16);
    tp = rd_kafka_topic_partition_list_find(w->commit_offsets, topic, partition);
    if (tp == NULL)
        tp = rd_kafka_topic_partition_list_add(w->commit_offsets, topic, partition);
    tp->offset = next;
    return 0;
}

/* Apply one partition's sub-batch and stage its state (W3, W4, W5). */
static int flush_outputs(rs_worker_t *w);

/* Queue a changelog record (takes val) until the batch's outputs are
 * delivered. Returns 0 or -1 (failure recorded). */
static int queue_cl(rs_worker_t *w, int32_t n, const char *key, void *val, size_t len)
{
    if (w->nclq == w->capclq) {
        size_t cap = w->capclq ? w->capclq * 2 : 64;
        struct clrec *q = realloc(w->clq, cap * sizeof *q);
        if (q == NULL) {
            free(val);
            fail(w, "out of memory");
            return -1;
        }
        w->clq = q;
        w->capclq = cap;
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(val);
        fail(w, "out of memory");
        return -1;
    }
    w->clq[w->nclq++] = (struct clrec){n, k, val, len};
    return 0;
}

static void clear_clq(rs_worker_t *w)
{
    for (size_t i = 0; i < w->nclq; i++) {
        free(w->clq[i].key);
        free(w->clq[i].val);
    }
    w->nclq = 0;
}

static int produce_changelog(rs_worker_t *w, part_t *p, int32_t n, const int64_t next[N_IN]);

static void run_sub_batch(rs_worker_t *w, part_t *p, int32_t n, msgq_t *sub)
{
    char err[512];
    rs_plan_item_t *items = malloc((sub->n + 1) * sizeof *items);
    int64_t next[N_IN] = {-1, -1, -1, -1};

    if (items == NULL) {
        fail(w, "out of memory");
        return;
    }
    for (size_t i = 0; i < sub->n; i++) {
        items[i].topic = sub->v[i].topic;
        items[i].offset = sub->v[i].m->offset;
        if (sub->v[i].m->offset + 1 > next[sub->v[i].topic])
            next[sub->v[i].topic] = sub->v[i].m->offset + 1;
    }
    /* W3: the plan is on disk before anything of this sub-batch is produced. */
    if (rs_pstate_save_plan(p->ps, items, sub->n, err, sizeof err) != 0) {
        free(items);
        fail(w, "state: save plan of partition %d: %s", (int)n, err);
        return;
    }
    {
        /* The changelog gets the plan too, delivered before any output, so a
         * worker restoring from the changelog alone replays this batch in
         * this order. */
        static const int64_t none[N_IN] = {-1, -1, -1, -1};
        char key[48];
        void *v = NULL;
        size_t vlen = 0;
        snprintf(key, sizeof key, "m/%d", (int)n);
        if (rs_changelog_encode_meta(NULL, 0, none, items, sub->n, &v, &vlen) != 0) {
            free(items);
            fail(w, "out of memory");
            return;
        }
        int prc = produce_cl(w, n, key, v, vlen);
        free(v);
        if (prc != 0 || flush_outputs(w) != 0) {
            free(items);
            return;
        }
    }
    free(items);

    if (w->txn && !w->txn_open) {
        rd_kafka_error_t *kerr = rd_kafka_begin_transaction(w->producer);
        if (kerr != NULL) {
            fail(w, "begin transaction: %s", rd_kafka_error_string(kerr));
            rd_kafka_error_destroy(kerr);
            return;
        }
        w->txn_open = 1;
    }

    /* The engine's own counts: an event that waited counts as applied
     * when it applies, as rejected if it fails then. */
    rs_engine_stats_t s0, s1;
    rs_engine_get_stats(rs_pstate_engine(p->ps), &s0);
    cm_clear(&w->cm);
    w->cur = p;
    w->cur_n = n;
    for (size_t i = 0; i < sub->n && !w->failed; i++)
        handle_message(w, p, &sub->v[i]);
    if (!w->failed)
        produce_balances(w, rs_pstate_engine(p->ps));
    w->cur = NULL;
    if (w->failed)
        return;
    rs_engine_get_stats(rs_pstate_engine(p->ps), &s1);
    w->stats.events_applied += s1.applied - s0.applied;
    rs_metrics_add(w->m.applied, (int64_t)(s1.applied - s0.applied));
    w->stats.duplicates += s1.duplicates - s0.duplicates;
    rs_metrics_add(w->m.duplicates, (int64_t)(s1.duplicates - s0.duplicates));
    count_rejected(w, s1.rejected - s0.rejected);

    /* Stage: contracts (here, with their changelog records) + meta,
     * per-contract offsets, input offsets, plan done. */
    if (produce_changelog(w, p, n, next) != 0)
        return;
    if (rs_pstate_stage(p->ps, w->sb, err, sizeof err) != 0) {
        fail(w, "state: stage partition %d: %s", (int)n, err);
        return;
    }
    for (size_t i = 0; i < w->cm.n; i++)
        for (int t = 0; t < N_IN; t++)
            if (w->cm.e[i].applied[t] >= 0)
                rs_state_batch_put_contract_offset(w->sb, w->cm.e[i].id, w->cfg->topics[t],
                                                   w->cm.e[i].applied[t]);
    for (int t = 0; t < N_IN; t++)
        if (next[t] >= 0) {
            rs_state_batch_put_input_offset(w->sb, w->cfg->topics[t], n, next[t]);
            add_commit_offset(w, w->cfg->topics[t], n, next[t]);
        }
    if (rs_pstate_stage_plan_done(p->ps, w->sb) != 0) {
        fail(w, "state: stage the plan's deletion for partition %d", (int)n);
        return;
    }
    free(p->plan);
    p->plan = NULL;
    p->nplan = 0;
    w->stats.records += sub->n;
    rs_metrics_add(w->m.records, (int64_t)sub->n);
}

/* The changelog records of a finished sub-batch, and the staging of its
 * changed contracts: every contract the engine reports changed
 * (rs_engine_take_changed, so rs_pstate_stage then finds none left and
 * stages only the meta) is exported once, staged into w->sb and produced as
 * c/<id> with its four applied offsets; then the final meta record (engine
 * meta, the four next input offsets, no plan). Called before
 * rs_pstate_stage(); the meta exported here is the one it stages. */
static int produce_changelog(rs_worker_t *w, part_t *p, int32_t n, const int64_t next[N_IN])
{
    rs_engine_t *e = rs_pstate_engine(p->ps);
    char err[512], key[RS_STATE_MAX_ID_LEN + 8];
    void *blob = NULL, *v = NULL;
    size_t len = 0, vlen = 0;
    int64_t offs[N_IN];
    const char *const *ids = NULL;
    size_t nids = rs_engine_take_changed(e, &ids);

    for (size_t i = 0; i < nids; i++) {
        centry_t *ce = cm_get(&w->cm, ids[i]);
        if (ce == NULL) {
            fail(w, "out of memory");
            return -1;
        }
        for (int t = 0; t < N_IN; t++)
            if (applied_offset(w, ce, t, &offs[t]) != 0)
                return -1;
        int rc = rs_engine_export_contract(e, ids[i], &blob, &len, err, sizeof err);
        if (rc < 0) {
            fail(w, "changelog: export contract %s: %s", ids[i], err);
            return -1;
        }
        if (rc == 1)
            continue; /* forgotten since it changed: as rs_pstate_stage */
        if (rs_state_batch_put_contract(w->sb, n, ids[i], blob, len) != 0) {
            free(blob);
            fail(w, "state: partition %d: staging contract %s: %s", (int)n, ids[i],
                 rs_state_batch_error(w->sb));
            return -1;
        }
        rc = rs_changelog_encode_contract(offs, 0, blob, len, &v, &vlen);
        free(blob);
        blob = NULL;
        if (rc != 0) {
            fail(w, "out of memory");
            return -1;
        }
        snprintf(key, sizeof key, "c/%s", ids[i]);
        if (queue_cl(w, n, key, v, vlen) != 0)
            return -1;
    }
    for (int t = 0; t < N_IN; t++) {
        offs[t] = next[t];
        if (offs[t] < 0) {
            int rc = rs_state_get_input_offset(w->st, w->cfg->topics[t], n, &offs[t], err,
                                               sizeof err);
            if (rc < 0) {
                fail(w, "state: input offset of %s[%d]: %s", w->cfg->topics[t], (int)n, err);
                return -1;
            }
            if (rc == 1)
                offs[t] = -1;
        }
    }
    if (rs_engine_export_meta(e, &blob, &len, err, sizeof err) != 0) {
        fail(w, "changelog: export meta of partition %d: %s", (int)n, err);
        return -1;
    }
    int rc = rs_changelog_encode_meta(blob, len, offs, NULL, 0, &v, &vlen);
    free(blob);
    if (rc != 0) {
        fail(w, "out of memory");
        return -1;
    }
    snprintf(key, sizeof key, "m/%d", (int)n);
    return queue_cl(w, n, key, v, vlen);
}

/* Wait for every delivery report of what was produced since the last commit. */
static int flush_outputs(rs_worker_t *w)
{
    while (rd_kafka_outq_len(w->producer) > 0)
        rd_kafka_flush(w->producer, 1000);
    if (w->dr_failed > 0) {
        fail(w, "%llu record(s) not delivered (first: %s); state not committed",
             (unsigned long long)w->dr_failed, w->dr_error);
        return -1;
    }
    return 0;
}

static int commit_transaction(rs_worker_t *w)
{
    rd_kafka_error_t *kerr = NULL;
    rd_kafka_consumer_group_metadata_t *gm = NULL;

    if (!w->txn_open)
        return 0;
    if (w->commit_offsets != NULL && w->commit_offsets->cnt > 0) {
        gm = rd_kafka_consumer_group_metadata(w->consumer);
        kerr = rd_kafka_send_offsets_to_transaction(w->producer, w->commit_offsets, gm,
                                                    TXN_TIMEOUT_MS);
        rd_kafka_consumer_group_metadata_destroy(gm);
    }
    if (kerr == NULL)
        kerr = rd_kafka_commit_transaction(w->producer, TXN_TIMEOUT_MS);
    w->txn_open = 0;
    if (kerr != NULL) {
        fail(w, "commit transaction: %s; state not committed", rd_kafka_error_string(kerr));
        rd_kafka_error_destroy(kerr);
        kerr = rd_kafka_abort_transaction(w->producer, TXN_TIMEOUT_MS);
        if (kerr != NULL)
            rd_kafka_error_destroy(kerr);
        return -1;
    }
    return 0;
}

static void update_pending_gauge(rs_worker_t *w)
{
    int64_t pending = 0;
    for (int32_t n = 0; n < w->nparts; n++)
        if (w->parts[n].ps != NULL)
            pending += (int64_t)rs_engine_pending_count(rs_pstate_engine(w->parts[n].ps));
    rs_metrics_set(w->m.pending, pending);
}

/* Run every partition's ready sub-batch, then produce-flush-commit once.
 * Returns 0, or -1 with w->failed set. */
static int process_batch(rs_worker_t *w)
{
    char err[512];
    uint64_t t0 = now_us();
    rs_worker_stats_t before = w->stats;
    size_t records = 0;
    int parts = 0;

    if (w->failed)
        return -1;
    if (w->closing)
        return 0;
    /* The group has moved on without us (the revoke callback, which
     * discards the queues, comes with the next poll): another member may
     * already own these partitions, so nothing is applied or produced. */
    if (rd_kafka_assignment_lost(w->consumer))
        return 0;
    /* W8: after a stall, wait for the group's verdict first */
    if (w->hold_until != 0 && now_us() < w->hold_until)
        return 0;
    for (int32_t n = 0; n < w->nparts && !w->failed; n++) {
        part_t *p = &w->parts[n];
        msgq_t sub = {NULL, 0, 0};
        if (p->ps == NULL || (p->q.n == 0 && !(p->plan != NULL && all_eof(p))))
            continue;
        /* 1 also for a plan none of whose records can come any more. */
        if (take_sub_batch(w, p, n, &sub) > 0) {
            run_sub_batch(w, p, n, &sub);
            records += sub.n;
            parts++;
        }
        q_free(&sub);
    }
    w->queued = 0;
    for (int32_t n = 0; n < w->nparts; n++)
        w->queued += w->parts[n].q.n;
    w->batch_t0 = w->queued > 0 ? now_us() : 0;
    if (w->failed)
        return -1;
    if (parts == 0)
        return 0;

    if (flush_outputs(w) != 0)
        return -1;
    /* Only now the contracts and final meta records: a restore must never
     * see a batch as finished whose outputs may be missing. */
    for (size_t i = 0; i < w->nclq; i++)
        if (produce_cl(w, w->clq[i].n, w->clq[i].key, w->clq[i].val, w->clq[i].len) != 0)
            break;
    clear_clq(w);
    if (w->failed || flush_outputs(w) != 0)
        return -1;
    for (int32_t n = 0; n < w->nparts; n++)
        if (w->parts[n].cl_dirty) {
            w->parts[n].cl_dirty = 0;
            if (w->parts[n].cl_next < 0) {
                fail(w, "changelog %s[%d]: no offset in the delivery reports",
                     w->cfg->changelog_topic, (int)n);
                return -1;
            }
            rs_changelog_stage_pos(w->sb, n, w->parts[n].cl_next);
        }
    w->batches_done++;
    if (w->crash_after > 0 && w->batches_done == w->crash_after) {
        uint64_t journal = w->stats.entries_produced - before.entries_produced;
        wlog("fault crash_after=%llu records=%zu journal=%llu balances=%llu dlq=%llu "
             "action=SIGKILL",
             (unsigned long long)w->crash_after, records, (unsigned long long)journal,
             (unsigned long long)(w->stats.balances_produced - before.balances_produced),
             (unsigned long long)(w->stats.dlq - before.dlq));
        fflush(stderr);
        raise(SIGKILL);
    }
    if (commit_transaction(w) != 0)
        return -1;
    if (rs_state_batch_commit(w->st, w->sb, err, sizeof err) != 0) {
        fail(w, "state: commit: %s", err);
        return -1;
    }
    w->dr_failed = 0;
    if (w->commit_offsets != NULL) {
        /* Informational (the store is the source of truth): async. */
        if (!w->txn)
            rd_kafka_commit(w->consumer, w->commit_offsets, 1);
        rd_kafka_topic_partition_list_destroy(w->commit_offsets);
        w->commit_offsets = NULL;
    }
    w->stats.batches++;
    rs_metrics_inc(w->m.batches);
    update_pending_gauge(w);
    uint64_t us = now_us() - t0;
    rs_metrics_observe(w->m.batch_seconds, (double)us / 1e6);
    wlog("batch records=%zu partitions=%d applied=%llu duplicates=%llu skipped=%llu "
         "dlq=%llu entries=%llu balances=%llu ms=%llu",
         records, parts, (unsigned long long)(w->stats.events_applied - before.events_applied),
         (unsigned long long)(w->stats.duplicates - before.duplicates),
         (unsigned long long)(w->stats.skipped - before.skipped),
         (unsigned long long)(w->stats.dlq - before.dlq),
         (unsigned long long)(w->stats.entries_produced - before.entries_produced),
         (unsigned long long)(w->stats.balances_produced - before.balances_produced),
         (unsigned long long)(us / 1000));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* assignment                                                               */
/* ------------------------------------------------------------------------ */

static void release_part(part_t *p)
{
    q_free(&p->q);
    rs_pstate_destroy(p->ps);
    p->ps = NULL;
    free(p->plan);
    p->plan = NULL;
    p->nplan = 0;
    memset(p->tp_assigned, 0, sizeof p->tp_assigned);
    memset(p->eof, 0, sizeof p->eof);
}

static rd_kafka_conf_t *base_conf(rs_worker_t *w, char *errstr, size_t errlen);
static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                    size_t errlen);

static void on_restore_progress(void *opaque, int32_t n, int64_t done, int64_t remaining,
                                int64_t rate, int finished)
{
    rs_worker_t *w = opaque;
    wlog("restore partition=%d done=%lld remaining=%lld rate=%lld/s%s", (int)n, (long long)done,
         (long long)remaining, (long long)rate, finished ? " finished=true" : "");
    rs_metrics_set(w->m.restore_remaining, finished ? 0 : remaining);
}

/* Changelog partition n's watermarks: two consecutive answers of
 * rd_kafka_query_watermark_offsets that agree. librdkafka 2.0.2 does not
 * retry this call when leadership moves (NOT_LEADER), and right after a
 * failed call it has answered low = high (seen in the SIGKILL test with
 * ListOffsets errors: low 34, high 34 for a partition holding records
 * 0..33), which would skip a restore that is needed. Retried for up to
 * METADATA_DEADLINE_MS. Returns 0, or -1 (failure recorded). */
static int changelog_watermarks(rs_worker_t *w, int32_t n, int64_t *lo, int64_t *hi)
{
    uint64_t deadline = now_us() + (uint64_t)METADATA_DEADLINE_MS * 1000u;
    int64_t plo = -1, phi = -1;

    for (;;) {
        int64_t l = -1, h = -1;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            w->producer, w->cfg->changelog_topic, n, &l, &h, 10000);
        const char *why = kerr != RD_KAFKA_RESP_ERR_NO_ERROR   ? rd_kafka_err2str(kerr)
                          : l < 0 || h < l                     ? "invalid answer"
                          : plo >= 0 && (l != plo || h != phi) ? "two answers differ"
                                                               : NULL;
        if (why == NULL && l == plo && h == phi) {
            *lo = l;
            *hi = h;
            return 0;
        }
        if (why == NULL) { /* a first answer: ask again */
            plo = l;
            phi = h;
            continue;
        }
        if (now_us() >= deadline || w->stop) {
            fail(w, "changelog %s[%d]: watermarks: %s", w->cfg->changelog_topic, (int)n, why);
            return -1;
        }
        wlog("warning changelog_watermarks partition=%d error=\"%s\" low=%lld high=%lld "
             "retrying=true",
             (int)n, why, (long long)l, (long long)h);
        plo = phi = -1;
        usleep(200 * 1000);
    }
}

/* Bring partition n's local state up to its changelog when it is missing or
 * behind (another worker advanced it). Returns 0 or -1 (failure recorded). */
static int restore_part(rs_worker_t *w, int32_t n)
{
    char err[512];
    int64_t pos = -1, lo = 0, hi = 0, records = 0;
    uint64_t t0 = now_us();

    int rc = rs_changelog_get_pos(w->st, n, &pos, err, sizeof err);
    if (rc < 0) {
        fail(w, "state: changelog position of partition %d: %s", (int)n, err);
        return -1;
    }
    if (changelog_watermarks(w, n, &lo, &hi) != 0)
        return -1;
    if (rc == 0 && pos >= hi) {
        wlog("restore partition=%d needed=false local=%lld high=%lld", (int)n, (long long)pos,
             (long long)hi);
        return 0;
    }
    /* Local state and plan of the partition, if any. */
    int has_local = 0, local_plan = 0;
    {
        char key[48];
        void *blob = NULL;
        size_t len = 0;
        int32_t *lp = NULL;
        size_t nl = 0;
        snprintf(key, sizeof key, "plan/%d", (int)n);
        int r = rs_state_get_meta(w->st, key, &blob, &len, err, sizeof err);
        rs_state_free(blob);
        local_plan = r == 0 && len > 0;
        blob = NULL;
        snprintf(key, sizeof key, "engine/%d", (int)n);
        int r2 = rs_state_get_meta(w->st, key, &blob, &len, err, sizeof err);
        rs_state_free(blob);
        if (r < 0 || r2 < 0 || rs_state_partitions(w->st, &lp, &nl, err, sizeof err) != 0) {
            fail(w, "state: partition %d: %s", (int)n, err);
            return -1;
        }
        (void)r2; /* engine meta alone is no state: a drop leaves an empty one */
        has_local = local_plan;
        for (size_t i = 0; i < nl; i++)
            if (lp[i] == n)
                has_local = 1;
        rs_state_free(lp);
    }
    if (rc == 1 && has_local) {
        /* State written before this store knew the changelog: it is the
         * truth for this store (an upgrade); the changelog is not read. */
        wlog("restore partition=%d needed=false reason=\"local state without a changelog "
             "position\" high=%lld",
             (int)n, (long long)hi);
        return 0;
    }
    int64_t from = rc == 0 && pos > lo ? pos : lo;
    if (rc == 0 && pos < lo)
        wlog("warning restore partition=%d local=%lld low=%lld msg=\"changelog records before "
             "the low watermark were deleted (retention is not compaction): state may be "
             "missing\"",
             (int)n, (long long)pos, (long long)lo);
    if (from >= hi) {
        wlog("restore partition=%d needed=false local=%s low=%lld high=%lld", (int)n,
             rc == 0 ? "behind" : "missing", (long long)lo, (long long)hi);
        return 0;
    }
    rs_metrics_set_reason(w->metrics, "restoring partition %d", (int)n);
    wlog("restore partition=%d from=%lld high=%lld local=%s", (int)n, (long long)from,
         (long long)hi, rc == 0 ? "behind" : "missing");
    rs_changelog_restore_args_t a = {0};
    a.conf = base_conf(w, err, sizeof err);
    char gid[512];
    /* assign() needs a group id; this one is never joined nor committed to. */
    snprintf(gid, sizeof gid, "%s.changelog-restore", w->cfg->group_id);
    if (a.conf == NULL || conf_set(a.conf, "group.id", gid, err, sizeof err) != 0) {
        if (a.conf != NULL)
            rd_kafka_conf_destroy(a.conf);
        fail(w, "changelog restore: %s", err);
        return -1;
    }
    a.topic = w->cfg->changelog_topic;
    a.partition = n;
    a.from = from;
    a.high = hi;
    for (int t = 0; t < N_IN; t++)
        a.input_topics[t] = w->cfg->topics[t];
    a.timeout_ms = RESTORE_TIMEOUT_MS;
    a.progress = on_restore_progress;
    a.local_plan = local_plan;
    a.opaque = w;
    rs_metrics_set(w->m.restore_remaining, hi - from);
    if (rs_changelog_restore(w->st, &a, &records, err, sizeof err) != 0) {
        fail(w, "%s", err);
        return -1;
    }
    rs_metrics_add(w->m.restored, records);
    wlog("restored partition=%d records=%lld ms=%llu", (int)n, (long long)records,
         (unsigned long long)((now_us() - t0) / 1000));
    return 0;
}

static int load_part(rs_worker_t *w, int32_t n)
{
    part_t *p = &w->parts[n];
    char err[512];
    uint64_t t0 = now_us();
    const rs_plan_item_t *plan;
    size_t nplan = 0;

    if (p->ps != NULL)
        return 0;
    p->revoked_at = 0;
    p->cl_next = -1;
    if (restore_part(w, n) != 0)
        return -1;
    rs_metrics_set_reason(w->metrics, "loading partition %d", (int)n);
    if (rs_pstate_load(&p->ps, w->st, n, w->has_policy ? &w->policy : NULL, err, sizeof err) !=
        0) {
        p->ps = NULL;
        fail(w, "state: load partition %d: %s", (int)n, err);
        return -1;
    }
    rs_engine_set_sink(rs_pstate_engine(p->ps), on_entry, w);
    plan = rs_pstate_pending_plan(p->ps, &nplan);
    if (plan != NULL && nplan > 0) {
        p->plan = malloc(nplan * sizeof *p->plan);
        if (p->plan == NULL) {
            fail(w, "out of memory");
            return -1;
        }
        memcpy(p->plan, plan, nplan * sizeof *p->plan);
        p->nplan = nplan;
    }
    wlog("partition_loaded partition=%d contracts=%zu pending_plan=%zu ms=%llu", (int)n,
         rs_pstate_loaded_contracts(p->ps), nplan,
         (unsigned long long)((now_us() - t0) / 1000));
    return 0;
}

static void on_assign(rs_worker_t *w, rd_kafka_topic_partition_list_t *parts)
{
    char err[512];

    rs_metrics_set_ready(w->metrics, 0);
    for (int i = 0; i < parts->cnt && !w->failed; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int t = topic_index(w, tp->topic);
        int64_t off = 0;
        if (t < 0 || tp->partition < 0 || tp->partition >= w->nparts) {
            fail(w,
                 "assigned %s[%d], which this worker does not know (did the partition "
                 "count change?)",
                 tp->topic, (int)tp->partition);
            break;
        }
        if (load_part(w, tp->partition) != 0)
            break;
        int rc =
            rs_state_get_input_offset(w->st, tp->topic, tp->partition, &off, err, sizeof err);
        if (rc < 0) {
            fail(w, "state: input offset of %s[%d]: %s", tp->topic, (int)tp->partition, err);
            break;
        }
        tp->offset = rc == 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
        w->parts[tp->partition].tp_assigned[t] = 1;
        w->parts[tp->partition].eof[t] = 0;
    }
    if (w->failed) {
        rd_kafka_assign(w->consumer, NULL);
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(w->consumer, parts);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fail(w, "assign: %s", rd_kafka_err2str(e));
        return;
    }
    w->n_assigned = (size_t)parts->cnt;
    if (!w->assigned_once) {
        /* Local state of partitions this worker did not get: start their grace. */
        int32_t *lp = NULL;
        size_t nl = 0;
        if (rs_state_partitions(w->st, &lp, &nl, err, sizeof err) == 0)
            for (size_t i = 0; i < nl; i++)
                if (lp[i] >= 0 && lp[i] < w->nparts && w->parts[lp[i]].ps == NULL)
                    w->parts[lp[i]].revoked_at = now_us();
        rs_state_free(lp);
    }
    w->assigned_once = 1;
    char list[1024] = "";
    for (int32_t n = 0; n < w->nparts; n++)
        if (w->parts[n].ps != NULL) {
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%d", used ? "," : "", (int)n);
        }
    wlog("assigned topic_partitions=%d partitions=%s", parts->cnt, list[0] ? list : "none");
    {
        int64_t owned = 0;
        for (int32_t n = 0; n < w->nparts; n++)
            owned += w->parts[n].ps != NULL;
        rs_metrics_set(w->m.owned, owned);
        rs_metrics_inc(w->m.assignments);
    }
    w->recommit = 1;         /* the previous owner's last commit may have failed */
    w->loop_mark = now_us(); /* a restore is not a stall */
    rs_metrics_set_ready(w->metrics, 1);
}

/* Drop the local state of partitions revoked more than state.revoked.grace.ms
 * ago and not assigned again: contracts, input and contract offsets (one
 * atomic rs_state_drop_partition), then the plan and the changelog position,
 * so a later assignment restores the partition from the changelog. */
static void drop_expired(rs_worker_t *w)
{
    char err[512], key[48];
    uint64_t now = now_us();

    for (int32_t n = 0; n < w->nparts && !w->failed; n++) {
        part_t *p = &w->parts[n];
        if (p->ps != NULL || p->revoked_at == 0 ||
            now - p->revoked_at < (uint64_t)w->cfg->revoked_grace_ms * 1000u)
            continue;
        p->revoked_at = 0;
        if (rs_state_drop_partition(w->st, n, err, sizeof err) != 0) {
            fail(w, "state: drop partition %d: %s", (int)n, err);
            return;
        }
        /* The engine meta becomes an empty engine's (rs_state has no meta
         * deletion); a restore rewrites it. */
        rs_state_batch_t *b = NULL;
        rs_engine_t *fresh = NULL;
        void *meta = NULL;
        size_t metalen = 0;
        char ekey[48];
        snprintf(key, sizeof key, "plan/%d", (int)n);
        snprintf(ekey, sizeof ekey, "engine/%d", (int)n);
        int rc =
            rs_engine_new(&fresh, w->has_policy ? &w->policy : NULL, err, sizeof err) != 0 ||
            rs_engine_export_meta(fresh, &meta, &metalen, err, sizeof err) != 0 ||
            rs_state_batch_new(&b, err, sizeof err) != 0 ||
            rs_state_batch_put_meta(b, key, "", 0) != 0 ||
            rs_state_batch_put_meta(b, ekey, meta, metalen) != 0 ||
            rs_changelog_stage_clear_pos(b, n) != 0 ||
            rs_state_batch_commit(w->st, b, err, sizeof err) != 0;
        rs_state_batch_destroy(b);
        rs_engine_destroy(fresh);
        free(meta);
        if (rc) {
            fail(w, "state: drop partition %d: %s", (int)n, err);
            return;
        }
        rs_metrics_inc(w->m.dropped);
        wlog("state_dropped partition=%d reason=revoked grace_ms=%ld", (int)n,
             w->cfg->revoked_grace_ms);
    }
}

static void on_revoke(rs_worker_t *w, rd_kafka_topic_partition_list_t *parts)
{
    /* Revoked: finish and commit the batch in flight first (not after a
     * failure). Lost (the group moved on without us): another member may
     * already own the partitions, so discard it, commit nothing; a later
     * owner replays from the store or the changelog. */
    int lost = rd_kafka_assignment_lost(w->consumer);
    if (lost) {
        wlog("assignment_lost topic_partitions=%d action=discard_batch queued=%zu", parts->cnt,
             w->queued);
        rs_metrics_inc(w->m.lost);
    } else if (!w->failed && !w->closing)
        process_batch(w);
    for (int i = 0; i < parts->cnt; i++) {
        int32_t n = parts->elems[i].partition;
        if (n >= 0 && n < w->nparts && w->parts[n].ps != NULL) {
            release_part(&w->parts[n]);
            w->parts[n].revoked_at = now_us();
        }
    }
    w->queued = 0;
    for (int32_t n = 0; n < w->nparts; n++)
        w->queued += w->parts[n].q.n;
    rd_kafka_assign(w->consumer, NULL);
    w->n_assigned = 0;
    rs_metrics_set(w->m.owned, 0);
    w->hold_until = 0; /* the group has spoken */
    w->loop_mark = now_us();
    wlog("revoked topic_partitions=%d", parts->cnt);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    rs_worker_t *w = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(w, parts);
    else
        on_revoke(w, parts);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    rs_worker_t *w = opaque;

    (void)rk;
    (void)offsets;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    w->recommit = 1;
    /* Expected while the group rebalances; anything else is worth a warning. */
    if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
        wlog("kafka_offset_commit deferred=rebalance_in_progress action=retry_from_store");
    else
        wlog("warning kafka_offset_commit error=\"%s\" action=retry_from_store "
             "hint=\"informational only: the state store holds the offsets\"",
             rd_kafka_err2str(err));
}

/* Kafka's committed offsets are informational (lag monitoring, `revstream
 * report`); the state store is the truth. After an assignment, and after a
 * failed commit (typically a rebalance in progress), the store's next
 * offsets of every assigned topic-partition are committed again, so the
 * group's lag does not stay stale when the input stops. The store is
 * committed before Kafka in process_batch, so these offsets are never
 * behind a commit already sent. Asynchronous; failures come back through
 * on_commit. */
static void commit_store_offsets(rs_worker_t *w)
{
    char err[512];
    rd_kafka_topic_partition_list_t *l = NULL;

    w->recommit = 0;
    w->recommit_after = now_us() + 1000000u;
    if (w->txn || w->failed || w->n_assigned == 0)
        return;
    for (int32_t n = 0; n < w->nparts; n++)
        for (int t = 0; t < N_IN; t++) {
            int64_t off = 0;
            if (w->parts[n].ps == NULL || !w->parts[n].tp_assigned[t])
                continue;
            int rc =
                rs_state_get_input_offset(w->st, w->cfg->topics[t], n, &off, err, sizeof err);
            if (rc != 0)
                continue; /* nothing consumed yet (1), or a read error the batch reports */
            if (l == NULL)
                l = rd_kafka_topic_partition_list_new(N_IN * 4);
            rd_kafka_topic_partition_list_add(l, w->cfg->topics[t], n)->offset = off;
        }
    if (l != NULL) {
        rd_kafka_commit(w->consumer, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char qb[1200];
    (void)rk;
    wlog("rdkafka level=%d fac=%s msg=%s", level, fac, q(qb, sizeof qb, buf));
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    rs_worker_t *w = opaque;
    char qb[1200], fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        fail(w, "kafka fatal error: %s", fatal);
        return;
    }
    wlog("warning kafka_error error=%s reason=%s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
         q(qb, sizeof qb, reason));
}

/* ------------------------------------------------------------------------ */
/* setup                                                                    */
/* ------------------------------------------------------------------------ */

static int read_policy(rs_worker_t *w, char *errstr, size_t errlen)
{
    const char *path = w->cfg->policy_file;
    char perr[512];
    char *text = NULL;
    size_t len;
    FILE *f;
    int rc = -1;

    if (path == NULL)
        return 0;
    f = fopen(path, "r");
    if (f == NULL) {
        rs_errorf(errstr, errlen, "policy.file %s: %s", path, strerror(errno));
        return -1;
    }
    text = malloc(MAX_POLICY_BYTES + 1);
    if (text == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        goto done;
    }
    len = fread(text, 1, MAX_POLICY_BYTES + 1, f);
    if (ferror(f) || len > MAX_POLICY_BYTES) {
        rs_errorf(errstr, errlen, "policy.file %s: %s", path,
                  len > MAX_POLICY_BYTES ? "larger than 1 MiB" : "read error");
        goto done;
    }
    text[len] = '\0';
    rs_policy_defaults(&w->policy);
    if (rs_policy_parse(&w->policy, text, perr, sizeof perr) != 0) {
        rs_errorf(errstr, errlen, "policy.file %s: %s", path, perr);
        goto done;
    }
    w->has_policy = 1;
    rc = 0;
done:
    fclose(f);
    free(text);
    return rc;
}

static int setup_schemas(rs_worker_t *w, char *errstr, size_t errlen)
{
    const rs_config_t *c = w->cfg;
    char err[512];
    static const struct {
        rs_avro_schema_kind_t kind;
        int topic;
    } outs[3] = {{RS_AVRO_SCHEMA_JOURNAL_ENTRY, RS_CONFIG_TOPIC_JOURNAL},
                 {RS_AVRO_SCHEMA_DEFERRED_BALANCE, RS_CONFIG_TOPIC_BALANCES},
                 {RS_AVRO_SCHEMA_DEAD_LETTER, RS_CONFIG_TOPIC_DLQ}};
    int32_t *ids[3] = {&w->id_journal, &w->id_balance, &w->id_dlq};

    if (c->input_format == RS_CONFIG_FORMAT_JSON && c->output_format == RS_CONFIG_FORMAT_JSON)
        return 0;
    if (c->schema_registry_url != NULL) {
        rs_registry_options_t ro = {c->schema_registry_url, c->schema_registry_username,
                                    c->schema_registry_password, 0};
        if (rs_registry_new(&w->reg, &ro, err, sizeof err) != RS_REGISTRY_OK) {
            rs_errorf(errstr, errlen, "schema registry: %s", err);
            return -1;
        }
    } else if (rs_registry_new_local(&w->reg, c->schema_dir, err, sizeof err) !=
               RS_REGISTRY_OK) {
        rs_errorf(errstr, errlen, "schema.dir: %s", err);
        return -1;
    }
    if (rs_avro_cache_new(&w->cache, err, sizeof err) != RS_AVRO_OK) {
        rs_errorf(errstr, errlen, "%s", err);
        return -1;
    }
    rs_avro_cache_set_lookup(w->cache, lookup, w);
    if (c->output_format != RS_CONFIG_FORMAT_AVRO)
        return 0;
    for (int i = 0; i < 3; i++) {
        char subject[300];
        const char *text = NULL;
        if (c->schema_registry_url != NULL)
            snprintf(subject, sizeof subject, "%s-value", c->topics[outs[i].topic]);
        else
            snprintf(subject, sizeof subject, "%s-value", rs_avro_schema_name(outs[i].kind));
        if (rs_registry_register(w->reg, subject, rs_avro_schema_json(outs[i].kind), ids[i],
                                 err, sizeof err) != RS_REGISTRY_OK ||
            rs_registry_get_schema(w->reg, *ids[i], &text, err, sizeof err) != RS_REGISTRY_OK ||
            rs_avro_cache_add(w->cache, *ids[i], text, err, sizeof err) != RS_AVRO_OK) {
            rs_errorf(errstr, errlen, "output schema %s: %s", subject, err);
            return -1;
        }
        wlog("schema subject=%s id=%d registry=%s", subject, (int)*ids[i],
             rs_registry_describe(w->reg));
    }
    return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                    size_t errlen)
{
    char kerr[512];
    if (rd_kafka_conf_set(conf, key, value, kerr, sizeof kerr) == RD_KAFKA_CONF_OK)
        return 0;
    if (rs_config_is_secret(key))
        rs_errorf(errstr, errlen, "kafka.%s: librdkafka refuses the value", key);
    else
        rs_errorf(errstr, errlen, "kafka.%s: %s", key, kerr);
    return -1;
}

/* A conf with bootstrap.servers, every kafka.* key and the log callback. */
static rd_kafka_conf_t *base_conf(rs_worker_t *w, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (conf == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < w->cfg->n_kafka; i++)
        if (conf_set(conf, w->cfg->kafka[i].key, w->cfg->kafka[i].value, errstr, errlen) != 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_opaque(conf, w);
    return conf;
}

static int setup_kafka(rs_worker_t *w, char *errstr, size_t errlen)
{
    const rs_config_t *c = w->cfg;
    rd_kafka_conf_t *conf = NULL;
    char kerr[512], txid[512], host[256];

    /* producer */
    if ((conf = base_conf(w, errstr, errlen)) == NULL)
        return -1;
    if (conf_set(conf, "partitioner", "murmur2_random", errstr, errlen) ||
        conf_set(conf, "enable.idempotence", "true", errstr, errlen) ||
        conf_set(conf, "acks", "all", errstr, errlen))
        goto fail;
    if (c->guarantee == RS_CONFIG_EXACTLY_ONCE) {
        if (c->group_instance_id != NULL) {
            snprintf(host, sizeof host, "%s", c->group_instance_id);
        } else if (gethostname(host, sizeof host) != 0) {
            snprintf(host, sizeof host, "unknown-host");
        }
        host[sizeof host - 1] = '\0';
        snprintf(txid, sizeof txid, "%s-%s", c->group_id, host);
        if (conf_set(conf, "transactional.id", txid, errstr, errlen))
            goto fail;
        w->txn = 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (w->producer == NULL) {
        rs_errorf(errstr, errlen, "kafka producer: %s", kerr);
        goto fail;
    }
    conf = NULL;
    for (int i = 0; i < 3; i++) {
        w->rkt_out[i] =
            rd_kafka_topic_new(w->producer, c->topics[RS_CONFIG_TOPIC_JOURNAL + i], NULL);
        if (w->rkt_out[i] == NULL) {
            rs_errorf(errstr, errlen, "kafka topic %s: %s",
                      c->topics[RS_CONFIG_TOPIC_JOURNAL + i],
                      rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }

    w->rkt_cl = rd_kafka_topic_new(w->producer, c->changelog_topic, NULL);
    if (w->rkt_cl == NULL) {
        rs_errorf(errstr, errlen, "kafka topic %s: %s", c->changelog_topic,
                  rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }

    /* consumer */
    if ((conf = base_conf(w, errstr, errlen)) == NULL)
        return -1;
    if (conf_set(conf, "group.id", c->group_id, errstr, errlen) ||
        (c->group_instance_id != NULL &&
         conf_set(conf, "group.instance.id", c->group_instance_id, errstr, errlen)) ||
        conf_set(conf, "partition.assignment.strategy", "range", errstr, errlen) ||
        conf_set(conf, "enable.auto.commit", "false", errstr, errlen) ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr, errlen) ||
        conf_set(conf, "auto.offset.reset", "earliest", errstr, errlen) ||
        conf_set(conf, "enable.partition.eof", "true", errstr, errlen))
        goto fail;
    {
        /* the stall guard needs the group timeouts as librdkafka will use them */
        char v[64];
        size_t vlen = sizeof v;
        w->session_ms =
            rd_kafka_conf_get(conf, "session.timeout.ms", v, &vlen) == RD_KAFKA_CONF_OK
                ? atol(v)
                : 45000;
        vlen = sizeof v;
        w->heartbeat_ms =
            rd_kafka_conf_get(conf, "heartbeat.interval.ms", v, &vlen) == RD_KAFKA_CONF_OK
                ? atol(v)
                : 3000;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr);
    if (w->consumer == NULL) {
        rs_errorf(errstr, errlen, "kafka consumer: %s", kerr);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(w->consumer);
    return 0;
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return -1;
}

/* Partition count of `topic` (0 when missing), or -1 on a metadata error. */
static int partition_count(rs_worker_t *w, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->producer, topic, NULL);
    int cnt = -1;
    if (rkt == NULL)
        return -1;
    /* For one topic: a broker with auto-creation on creates it here. */
    if (rd_kafka_metadata(w->producer, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        cnt = 0;
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            cnt = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return cnt;
}

/* Create the changelog with CreateTopics: nparts partitions, compacted. */
static void create_changelog(rs_worker_t *w)
{
    char err[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(w->cfg->changelog_topic, w->nparts, -1, err, sizeof err);
    rd_kafka_queue_t *rq = rd_kafka_queue_new(w->producer);
    rd_kafka_event_t *ev = NULL;

    if (nt == NULL || rq == NULL)
        goto out;
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_CreateTopics(w->producer, &nt, 1, NULL, rq);
    ev = rd_kafka_queue_poll(rq, 15000);
    if (ev == NULL) {
        wlog("warning changelog_create topic=%s error=timeout", w->cfg->changelog_topic);
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        wlog("warning changelog_create topic=%s error=\"%s\"", w->cfg->changelog_topic,
             rd_kafka_event_error_string(ev));
    else if (n == 1 && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        wlog("warning changelog_create topic=%s error=\"%s\"", w->cfg->changelog_topic,
             rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));
    else
        wlog("changelog_created topic=%s partitions=%d cleanup.policy=compact",
             w->cfg->changelog_topic, (int)w->nparts);
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (rq != NULL)
        rd_kafka_queue_destroy(rq);
    rd_kafka_NewTopic_destroy(nt);
}

/* The changelog exists (created when missing) and is co-partitioned with
 * the inputs. */
static int check_changelog(rs_worker_t *w, char *errstr, size_t errlen)
{
    int cnt = partition_count(w, w->cfg->changelog_topic);
    if (cnt == 0) {
        create_changelog(w);
        for (int i = 0; i < 50 && cnt <= 0; i++) {
            cnt = partition_count(w, w->cfg->changelog_topic);
            if (cnt <= 0)
                usleep(100000);
        }
    }
    if (cnt <= 0) {
        rs_errorf(
            errstr, errlen,
            "kafka: changelog topic %s does not exist and could not be created: create it "
            "with %d partitions and cleanup.policy=compact",
            w->cfg->changelog_topic, (int)w->nparts);
        return -1;
    }
    if (cnt != w->nparts) {
        rs_errorf(
            errstr, errlen,
            "kafka: changelog topic %s has %d partition%s, the input topics %d: it must be "
            "co-partitioned with them",
            w->cfg->changelog_topic, cnt, cnt == 1 ? "" : "s", (int)w->nparts);
        return -1;
    }
    wlog("changelog topic=%s partitions=%d", w->cfg->changelog_topic, cnt);
    return 0;
}

/* Every topic exists; the four inputs have one partition count (-> nparts). */
static int check_topics(rs_worker_t *w, char *errstr, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    uint64_t deadline = now_us() + (uint64_t)METADATA_DEADLINE_MS * 1000u;
    int counts[RS_CONFIG_TOPIC__COUNT];
    char list[2048] = "";
    int missing = 0, differ = 0;

    for (;;) {
        err = rd_kafka_metadata(w->consumer, 1, NULL, &md, 10000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (now_us() >= deadline || w->stop) {
            rs_errorf(errstr, errlen, "kafka: cannot read cluster metadata from %s: %s",
                      rs_config_get(w->cfg, "kafka.bootstrap.servers"), rd_kafka_err2str(err));
            return -1;
        }
        wlog("warning metadata error=\"%s\" retrying=true", rd_kafka_err2str(err));
    }
    for (int i = 0; i < RS_CONFIG_TOPIC__COUNT; i++) {
        counts[i] = -1;
        for (int j = 0; j < md->topic_cnt; j++)
            if (strcmp(md->topics[j].topic, w->cfg->topics[i]) == 0 &&
                md->topics[j].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                counts[i] = md->topics[j].partition_cnt;
        if (counts[i] <= 0)
            missing = 1;
        if (i < N_IN && counts[i] != counts[0])
            differ = 1;
    }
    rd_kafka_metadata_destroy(md);
    for (int i = 0; i < RS_CONFIG_TOPIC__COUNT; i++) {
        size_t used = strlen(list);
        if (counts[i] > 0)
            snprintf(list + used, sizeof list - used, "%s%s has %d partition%s",
                     used ? ", " : "", w->cfg->topics[i], counts[i], counts[i] == 1 ? "" : "s");
        else
            snprintf(list + used, sizeof list - used, "%s%s does not exist", used ? ", " : "",
                     w->cfg->topics[i]);
    }
    if (missing) {
        rs_errorf(errstr, errlen, "kafka: topics missing: %s", list);
        return -1;
    }
    if (differ) {
        rs_errorf(errstr, errlen,
                  "kafka: the input topics are not co-partitioned (partition N of all four "
                  "must hold the same contracts): %s",
                  list);
        return -1;
    }
    w->nparts = counts[0];
    wlog("topics %s", list);
    return check_changelog(w, errstr, errlen);
}

static int setup_metrics(rs_worker_t *w, char *errstr, size_t errlen)
{
    char err[512];
    struct {
        rs_metrics_series_t **s;
        const char *name, *help;
        int type;
    } defs[] = {
        {&w->m.applied, "revstream_events_applied_total",
         "Input events applied by an engine (a waiting event when it applies).", 0},
        {&w->m.duplicates, "revstream_duplicates_total",
         "Input events ignored as duplicates (same event_id and content).", 0},
        {&w->m.skipped, "revstream_skipped_total",
         "Input records skipped: offset already applied to the contract.", 0},
        {&w->m.rejected, "revstream_rejected_total",
         "Input events refused by the codec or the engine.", 0},
        {&w->m.dlq, "revstream_dlq_total", "Dead letters produced.", 0},
        {&w->m.entries, "revstream_entries_produced_total", "Journal entries produced.", 0},
        {&w->m.balances, "revstream_balances_produced_total", "Balance snapshots produced.", 0},
        {&w->m.records, "revstream_input_records_total",
         "Input records taken through committed batches.", 0},
        {&w->m.batches, "revstream_batches_total", "Batches committed.", 0},
        {&w->m.pending, "revstream_pending_events",
         "Events waiting for their contract or invoice.", 1},
        {&w->m.batch_seconds, "revstream_batch_seconds",
         "Time to process, deliver and commit one batch.", 2},
        {&w->m.restore_remaining, "revstream_restore_remaining_records",
         "Changelog records still to read by the restore in progress.", 1},
        {&w->m.restored, "revstream_restored_records_total",
         "Changelog records read by restores.", 0},
        {&w->m.dropped, "revstream_state_dropped_partitions_total",
         "Revoked partitions whose local state was dropped after the grace period.", 0},
        {&w->m.assignments, "revstream_assignments_total",
         "Partition assignments received (one per rebalance that gave this worker any).", 0},
        {&w->m.lost, "revstream_assignments_lost_total",
         "Assignments lost (the group moved on without this worker); their batch was "
         "discarded.",
         0},
        {&w->m.owned, "revstream_assigned_partitions",
         "Input partition numbers this worker owns now.", 1},
        {&w->m.stalls, "revstream_stalls_total",
         "Times the process was found frozen for over half the session timeout (batches "
         "held until the group answered).",
         0},
    };

    if (rs_metrics_new(&w->metrics, err, sizeof err) != 0) {
        rs_errorf(errstr, errlen, "metrics: %s", err);
        return -1;
    }
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        int rc = defs[i].type == 0 ? rs_metrics_counter(w->metrics, defs[i].s, defs[i].name,
                                                        defs[i].help, NULL, 0, err, sizeof err)
                 : defs[i].type == 1
                     ? rs_metrics_gauge(w->metrics, defs[i].s, defs[i].name, defs[i].help, NULL,
                                        0, err, sizeof err)
                     : rs_metrics_histogram(w->metrics, defs[i].s, defs[i].name, defs[i].help,
                                            NULL, 0, NULL, 0, err, sizeof err);
        if (rc != 0) {
            rs_errorf(errstr, errlen, "metrics: %s", err);
            return -1;
        }
    }
    rs_metrics_set_ready(w->metrics, 0);
    rs_metrics_set_reason(w->metrics, "starting");
    if (w->cfg->metrics_port != 0) {
        if (rs_metrics_server_start(&w->msrv, w->metrics, w->cfg->metrics_bind,
                                    w->cfg->metrics_port, err, sizeof err) != 0) {
            rs_errorf(errstr, errlen, "metrics server on %s:%d: %s", w->cfg->metrics_bind,
                      w->cfg->metrics_port, err);
            return -1;
        }
        wlog("metrics bind=%s port=%d", w->cfg->metrics_bind, rs_metrics_server_port(w->msrv));
    }
    return 0;
}

int rs_worker_new(rs_worker_t **out, const rs_config_t *cfg, char *errstr, size_t errlen)
{
    rs_worker_t *w = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;
    char err[512];
    int rc = -1;

    if (out == NULL || cfg == NULL) {
        rs_errorf(errstr, errlen, "worker: out and cfg must not be NULL");
        return -1;
    }
    *out = NULL;
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        return -1;
    }
    w->cfg = cfg;
    if (read_policy(w, errstr, errlen) != 0 || setup_metrics(w, errstr, errlen) != 0)
        goto done;

    rs_state_opts_t so = {cfg->state_dir, 1, 0,
                          cfg->state_sync ? RS_STATE_SYNC_ON : RS_STATE_SYNC_OFF, 0};
    if (rs_state_open(&w->st, &so, err, sizeof err) != 0) {
        rs_errorf(errstr, errlen, "state.dir %s: %s", cfg->state_dir, err);
        goto done;
    }
    if (rs_state_batch_new(&w->sb, err, sizeof err) != 0) {
        rs_errorf(errstr, errlen, "%s", err);
        goto done;
    }
    if (setup_schemas(w, errstr, errlen) != 0 || setup_kafka(w, errstr, errlen) != 0 ||
        check_topics(w, errstr, errlen) != 0)
        goto done;
    w->parts = calloc((size_t)w->nparts, sizeof *w->parts);
    if (w->parts == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        goto done;
    }
    if (w->txn) {
        rd_kafka_error_t *kerr = rd_kafka_init_transactions(w->producer, TXN_TIMEOUT_MS);
        if (kerr != NULL) {
            rs_errorf(errstr, errlen, "kafka: init transactions: %s",
                      rd_kafka_error_string(kerr));
            rd_kafka_error_destroy(kerr);
            goto done;
        }
    }
    sub = rd_kafka_topic_partition_list_new(N_IN);
    for (int t = 0; t < N_IN; t++)
        rd_kafka_topic_partition_list_add(sub, cfg->topics[t], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(w->consumer, sub);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rs_errorf(errstr, errlen, "kafka: subscribe: %s", rd_kafka_err2str(kerr));
        goto done;
    }
    rs_metrics_set_reason(w->metrics, "waiting for a partition assignment");
    *out = w;
    w = NULL;
    rc = 0;
done:
    if (sub != NULL)
        rd_kafka_topic_partition_list_destroy(sub);
    rs_worker_destroy(w);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* running                                                                  */
/* ------------------------------------------------------------------------ */

static int is_idle(const rs_worker_t *w)
{
    if (!w->assigned_once || w->queued > 0)
        return 0;
    for (int32_t n = 0; n < w->nparts; n++) {
        const part_t *p = &w->parts[n];
        if (p->ps == NULL)
            continue;
        if (p->plan != NULL)
            return 0;
        for (int t = 0; t < N_IN; t++)
            if (p->tp_assigned[t] && !p->eof[t])
                return 0;
    }
    return 1;
}

/* A plan whose records cannot come any more (every topic at its end). */
static int stuck_plan(const rs_worker_t *w)
{
    for (int32_t n = 0; n < w->nparts; n++)
        if (w->parts[n].ps != NULL && w->parts[n].plan != NULL && all_eof(&w->parts[n]))
            return 1;
    return 0;
}

static void take_message(rs_worker_t *w, rd_kafka_message_t *m)
{
    int t;
    part_t *p;

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        t = m->rkt ? topic_index(w, rd_kafka_topic_name(m->rkt)) : -1;
        if (t >= 0 && m->partition >= 0 && m->partition < w->nparts)
            w->parts[m->partition].eof[t] = 1;
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        char qb[600];
        wlog("warning consumer_error error=%s msg=%s", rd_kafka_err2name(m->err),
             q(qb, sizeof qb, rd_kafka_message_errstr(m)));
        rd_kafka_message_destroy(m);
        return;
    }
    t = topic_index(w, rd_kafka_topic_name(m->rkt));
    if (t < 0 || m->partition < 0 || m->partition >= w->nparts ||
        w->parts[m->partition].ps == NULL) {
        rd_kafka_message_destroy(m); /* W1: not ours (any more) */
        return;
    }
    p = &w->parts[m->partition];
    p->eof[t] = 0;
    if (q_push(&p->q, (qitem_t){m, (uint8_t)t}) != 0) {
        rd_kafka_message_destroy(m);
        fail(w, "out of memory");
        return;
    }
    if (w->queued++ == 0)
        w->batch_t0 = now_us();
}

/* W8: the stall guard, called after every poll. The loop polls at least
 * every ~100 ms, except in a batch or a rebalance callback (which reset
 * loop_mark). A longer gap means the process itself was frozen (a VM or
 * container pause, SIGSTOP, swap): if it exceeded half the session
 * timeout, the group may have handed our partitions to another member.
 * librdkafka usually reports that at once (its own session check), but
 * not always before this poll returned, and the fetcher may already hold
 * records of partitions that are no longer ours. So no batch is applied
 * until two heartbeat intervals (at least 1 s) have passed: a lost
 * assignment comes first and discards the queue (W7); otherwise the batch
 * goes on. */
static void check_stall(rs_worker_t *w)
{
    uint64_t now = now_us(), gap = now - w->loop_mark;
    w->loop_mark = now;
    if (w->session_ms <= 0 || gap <= (uint64_t)w->session_ms * 500u)
        return;
    long hold_ms = 2 * w->heartbeat_ms > 1000 ? 2 * w->heartbeat_ms : 1000;
    w->hold_until = now + (uint64_t)hold_ms * 1000u;
    rs_metrics_inc(w->m.stalls);
    wlog("warning stalled ms=%llu session_timeout_ms=%ld action=hold_batches hold_ms=%ld "
         "queued=%zu",
         (unsigned long long)(gap / 1000), w->session_ms, hold_ms, w->queued);
}

int rs_worker_run(rs_worker_t *w, char *errstr, size_t errlen)
{
    const uint64_t max_us = (uint64_t)w->cfg->batch_max_ms * 1000u;
    int idle_exit = 0;

    wlog(
        "running group=%s guarantee=%s input=%s output=%s partitions=%d session_timeout_ms=%ld "
        "heartbeat_ms=%ld",
        w->cfg->group_id,
        w->cfg->guarantee == RS_CONFIG_EXACTLY_ONCE ? "exactly_once" : "at_least_once",
        w->cfg->input_format == RS_CONFIG_FORMAT_JSON ? "json" : "avro",
        w->cfg->output_format == RS_CONFIG_FORMAT_JSON ? "json" : "avro", (int)w->nparts,
        w->session_ms, w->heartbeat_ms);
    w->loop_mark = now_us();
    while (!w->stop && !w->failed) {
        if (w->cfg->exit_when_idle && is_idle(w)) {
            idle_exit = 1;
            break;
        }
        int timeout = 100;
        if (w->queued > 0) {
            uint64_t age = now_us() - w->batch_t0;
            timeout = age >= max_us ? 0 : (int)((max_us - age + 999) / 1000);
            if (timeout > 100)
                timeout = 100;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout);
        check_stall(w); /* before this iteration may apply a batch */
        if (m != NULL)
            take_message(w, m);
        rd_kafka_poll(w->producer, 0);
        drop_expired(w);
        if (w->recommit && now_us() >= w->recommit_after)
            commit_store_offsets(w);
        if (w->failed)
            break;
        if ((w->queued > 0 && ((long)w->queued >= w->cfg->batch_max_records ||
                               now_us() - w->batch_t0 >= max_us)) ||
            stuck_plan(w)) {
            process_batch(w);
            w->loop_mark = now_us(); /* a long batch is not a stall */
        }
    }
    if (!w->failed) {
        wlog("stopping reason=%s", idle_exit ? "idle" : "signal");
        process_batch(w);
    }
    rs_metrics_set_ready(w->metrics, 0);
    rs_metrics_set_reason(w->metrics, "stopping");
    /* Leaves the group; the revoke callback commits what is left (W3). */
    rd_kafka_consumer_close(w->consumer);
    if (w->failed) {
        rs_errorf(errstr, errlen, "%s", w->errmsg);
        return -1;
    }
    wlog("stopped batches=%llu records=%llu applied=%llu duplicates=%llu skipped=%llu "
         "rejected=%llu dlq=%llu entries=%llu balances=%llu",
         (unsigned long long)w->stats.batches, (unsigned long long)w->stats.records,
         (unsigned long long)w->stats.events_applied, (unsigned long long)w->stats.duplicates,
         (unsigned long long)w->stats.skipped, (unsigned long long)w->stats.rejected,
         (unsigned long long)w->stats.dlq, (unsigned long long)w->stats.entries_produced,
         (unsigned long long)w->stats.balances_produced);
    return 0;
}

void rs_worker_request_stop(rs_worker_t *w)
{
    if (w != NULL)
        w->stop = 1;
}

void rs_worker_get_stats(const rs_worker_t *w, rs_worker_stats_t *out)
{
    if (w == NULL || out == NULL)
        return;
    *out = w->stats;
}

void rs_worker_set_crash_after(rs_worker_t *w, uint64_t n)
{
    if (w != NULL)
        w->crash_after = n;
}

void rs_worker_destroy(rs_worker_t *w)
{
    if (w == NULL)
        return;
    /* Messages go before their consumer; nothing is processed any more, even
     * if destroying an unclosed consumer runs the revoke callback. */
    w->closing = 1;
    for (int32_t n = 0; w->parts != NULL && n < w->nparts; n++)
        q_free(&w->parts[n].q);
    w->queued = 0;
    if (w->consumer != NULL)
        rd_kafka_destroy(w->consumer);
    if (w->parts != NULL) {
        for (int32_t n = 0; n < w->nparts; n++)
            release_part(&w->parts[n]);
        free(w->parts);
        w->parts = NULL; /* late delivery reports (flush below) must not see it */
    }
    for (int i = 0; i < 3; i++)
        if (w->rkt_out[i] != NULL)
            rd_kafka_topic_destroy(w->rkt_out[i]);
    if (w->rkt_cl != NULL)
        rd_kafka_topic_destroy(w->rkt_cl);
    if (w->producer != NULL) {
        rd_kafka_flush(w->producer, 10000);
        rd_kafka_destroy(w->producer);
    }
    if (w->commit_offsets != NULL)
        rd_kafka_topic_partition_list_destroy(w->commit_offsets);
    cm_free(&w->cm);
    clear_clq(w);
    free(w->clq);
    rs_avro_cache_destroy(w->cache);
    rs_registry_destroy(w->reg);
    rs_state_batch_destroy(w->sb);
    rs_state_destroy(w->st);
    rs_metrics_server_destroy(w->msrv);
    rs_metrics_destroy(w->metrics);
    free(w);
}
