/*
 * rs_worker_output.c — everything the worker produces: journal records (the
 * engine's sink), balance snapshots, dead letters and changelog records, the
 * delivery reports that decide whether a batch may commit, and the
 * exactly_once transaction around a batch's outputs.
 *
 * Invariants:
 *   - Outputs are produced with RD_KAFKA_MSG_F_COPY (librdkafka copies them
 *     and their buffers are freed here right after the produce call:
 *     handing them over with RD_KAFKA_MSG_F_FREE measured no faster,
 *     bench_worker_cpu), a record without headers with no header list; the
 *     changelog records, always queued first (lane->clq), with
 *     RD_KAFKA_MSG_F_FREE (librdkafka takes the value and frees it).
 *   - A produce call that fails for any reason but a full queue fails the
 *     worker; a full queue is waited out (polling the producer).
 *   - W3: w->dr_failed counts the failed delivery reports since the last
 *     commit, w->dr_error keeps the first; rs_worker_flush_outputs() fails
 *     the worker when any came back, so nothing is committed after it.
 *   - W6: changelog records go explicitly to partition N (never by key), and
 *     parts[N].cl_next is the next changelog offset the delivery reports
 *     showed. The contracts and final meta records of a batch wait in
 *     lane->clq until its outputs are all delivered.
 *   - W4: the records of a sub-batch come in a fixed order: journal records
 *     in the engine's sink order, dead letters in message order, balance
 *     snapshots in the order contracts were first touched (lane->cm).
 *
 *   - Delivery reports are served by whichever thread polls the producer
 *     (an apply lane waiting on a full queue or a close's flush too): they
 *     update w->dr_failed, w->dr_error and cl_next under w->mu.
 *
 * Ownership: lane->clq owns its keys and values until produced or cleared.
 */
#include "rs_worker_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"

/* ------------------------------------------------------------------------ */
/* producing                                                                */
/* ------------------------------------------------------------------------ */

typedef struct hdr {
    const char *name;
    const char *value;
} hdr_t;

/* Does an output record fit message.max.bytes? If not, the sub-batch's
 * partition is parked (rs_worker_bounds.c), or, outside a sub-batch, the
 * worker fails. The key names the contract (journal, balances) or is
 * short. */
static int output_fits(rs_worker_t *w, int out, const void *key, size_t keylen, size_t len)
{
    static const char *const what[] = {"journal", "balance", "dead_letter"};
    char contract[RS_STATE_MAX_ID_LEN + 1];
    size_t n = keylen < RS_STATE_MAX_ID_LEN ? keylen : RS_STATE_MAX_ID_LEN;
    if (rs_worker_fits(w, -1, what[out], NULL, keylen, len))
        return 1; /* the common case: no name needed */
    if (key != NULL)
        memcpy(contract, key, n);
    contract[key != NULL ? n : 0] = '\0';
    if (rs_worker_fits(w, LANE(w)->cur != NULL ? LANE(w)->cur_n : -1, what[out], contract,
                       keylen, len))
        return 1;
    if (LANE(w)->cur == NULL)
        rs_worker_fail(w, "produce to %s: a %zu-byte record exceeds message.max.bytes (%ld)",
                       rd_kafka_topic_name(w->rkt_out[out]), keylen + len, w->max_msg_bytes);
    return 0;
}

/* Produce one record (copied) with up to 6 headers (none: no header list,
 * the same bytes on the wire as an empty one), waiting while the producer's
 * queue is full. Returns 0 or -1 (failure recorded). */
static int produce(rs_worker_t *w, int out, const void *key, size_t keylen, const void *value,
                   size_t len, const hdr_t *h, int nh)
{
    rd_kafka_headers_t *hs = NULL;
    size_t hlen = 0;

    for (int i = 0; i < nh; i++)
        hlen += strlen(h[i].name) + strlen(h[i].value) + 8;
    if (!output_fits(w, out, key, keylen, len + hlen))
        return LANE(w)->cur != NULL ? 0 : -1; /* parked (the sub-batch stops), or failed */
    for (;;) {
        rd_kafka_resp_err_t err;
        if (nh > 0) {
            hs = rd_kafka_headers_new((size_t)nh);
            for (int i = 0; i < nh; i++)
                rd_kafka_header_add(hs, h[i].name, -1, h[i].value, -1);
            err = rd_kafka_producev(w->producer, RD_KAFKA_V_RKT(w->rkt_out[out]),
                                    RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                    RD_KAFKA_V_KEY((void *)key, keylen),
                                    RD_KAFKA_V_VALUE((void *)value, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END);
        } else {
            err = rd_kafka_producev(w->producer, RD_KAFKA_V_RKT(w->rkt_out[out]),
                                    RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                    RD_KAFKA_V_KEY((void *)key, keylen),
                                    RD_KAFKA_V_VALUE((void *)value, len),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0; /* the headers belong to the message now */
        if (hs != NULL)
            rd_kafka_headers_destroy(hs);
        hs = NULL;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rs_worker_fail(w, "produce to %s: %s", rd_kafka_topic_name(w->rkt_out[out]),
                           rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(w->producer, 100);
    }
}

void rs_worker_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    rs_worker_t *w = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (w->rkt_cl != NULL && w->parts != NULL && m->rkt == w->rkt_cl && m->partition >= 0 &&
            m->partition < w->nparts && m->offset >= 0) {
            /* apply lanes serve delivery reports too (a full queue, a close) */
            pthread_mutex_lock(&w->mu);
            if (m->offset + 1 > w->parts[m->partition].cl_next)
                w->parts[m->partition].cl_next = m->offset + 1;
            pthread_mutex_unlock(&w->mu);
        }
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (w->dr_failed++ == 0)
        snprintf(w->dr_error, sizeof w->dr_error, "%s: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
    pthread_mutex_unlock(&w->mu);
}

/* Produce one changelog record to partition n explicitly (never by key);
 * takes value. 0 or -1 (failure recorded). */
int rs_worker_produce_cl(rs_worker_t *w, int32_t n, const char *key, void *value, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            w->producer, RD_KAFKA_V_RKT(w->rkt_cl), RD_KAFKA_V_PARTITION(n),
            RD_KAFKA_V_KEY((void *)key, strlen(key)), RD_KAFKA_V_VALUE(value, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            w->parts[n].cl_dirty = 1;
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rs_worker_fail(w, "produce to %s[%d]: %s", w->cfg->changelog_topic, (int)n,
                           rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(w->producer, 100);
    }
}

void rs_worker_produce_clq(rs_worker_t *w)
{
    for (size_t i = 0; i < LANE(w)->nclq; i++) {
        /* librdkafka takes the value (freed with free()): no copy of the
         * contract records, the batch's largest */
        if (rs_worker_produce_cl(w, LANE(w)->clq[i].n, LANE(w)->clq[i].key, LANE(w)->clq[i].val,
                                 LANE(w)->clq[i].len) != 0)
            break;
        LANE(w)->clq[i].val = NULL;
    }
    rs_worker_clear_clq(w);
}

/* Queue a changelog record (takes val) until the batch's outputs are
 * delivered. Returns 0 or -1 (failure recorded). */
int rs_worker_queue_cl(rs_worker_t *w, int32_t n, const char *key, void *val, size_t len)
{
    if (LANE(w)->nclq == LANE(w)->capclq) {
        size_t cap = LANE(w)->capclq ? LANE(w)->capclq * 2 : 64;
        clrec_t *q = realloc(LANE(w)->clq, cap * sizeof *q);
        if (q == NULL) {
            free(val);
            rs_worker_fail(w, "out of memory");
            return -1;
        }
        LANE(w)->clq = q;
        LANE(w)->capclq = cap;
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(val);
        rs_worker_fail(w, "out of memory");
        return -1;
    }
    LANE(w)->clq[LANE(w)->nclq++] = (clrec_t){n, k, val, len};
    return 0;
}

void rs_worker_clear_clq(rs_worker_t *w)
{
    for (size_t i = 0; i < LANE(w)->nclq; i++) {
        free(LANE(w)->clq[i].key);
        free(LANE(w)->clq[i].val);
    }
    LANE(w)->nclq = 0;
}

/* ------------------------------------------------------------------------ */
/* delivery and transactions                                                */
/* ------------------------------------------------------------------------ */

/* Wait for every delivery report of what was produced since the last commit. */
int rs_worker_flush_outputs(rs_worker_t *w)
{
    char first[sizeof w->dr_error];
    uint64_t failed;

    while (rd_kafka_outq_len(w->producer) > 0)
        rd_kafka_flush(w->producer, 1000);
    pthread_mutex_lock(&w->mu);
    failed = w->dr_failed;
    memcpy(first, w->dr_error, sizeof first);
    pthread_mutex_unlock(&w->mu);
    if (failed > 0) {
        rs_worker_fail(w, "%llu record(s) not delivered (first: %s); state not committed",
                       (unsigned long long)failed, first);
        return -1;
    }
    return 0;
}

int rs_worker_begin_transaction(rs_worker_t *w)
{
    if (!w->txn || w->txn_open)
        return 0;
    rd_kafka_error_t *kerr = rd_kafka_begin_transaction(w->producer);
    if (kerr != NULL) {
        rs_worker_fail(w, "begin transaction: %s%s", rd_kafka_error_string(kerr),
                       rd_kafka_error_is_fatal(kerr) ? " (fatal)" : "");
        rd_kafka_error_destroy(kerr);
        return -1;
    }
    w->txn_open = 1;
    return 0;
}

/* The error handling of librdkafka's examples/transactions.c: a retriable
 * error retries the same call (until TXN_TIMEOUT_MS has passed in all); an
 * error that requires an abort aborts the transaction; a fatal one (the
 * producer was fenced by another instance with the same transactional.id)
 * is final. In the last two cases the batch's state is not committed and
 * the worker stops (W3): its engines are ahead of the store, and a restart
 * replays the batch from its plan in a new transaction. Returns NULL on
 * success, else the error (the caller destroys it). */
static rd_kafka_error_t *txn_call(rs_worker_t *w, int commit)
{
    uint64_t deadline = rs_worker_now_us() + (uint64_t)TXN_TIMEOUT_MS * 1000u;
    for (int attempt = 1;; attempt++) {
        rd_kafka_error_t *kerr = NULL;
        if (!commit) {
            rd_kafka_consumer_group_metadata_t *gm =
                rd_kafka_consumer_group_metadata(w->consumer);
            kerr = rd_kafka_send_offsets_to_transaction(w->producer, w->commit_offsets, gm,
                                                        TXN_TIMEOUT_MS);
            rd_kafka_consumer_group_metadata_destroy(gm);
        } else {
            kerr = rd_kafka_commit_transaction(w->producer, TXN_TIMEOUT_MS);
        }
        if (kerr == NULL || !rd_kafka_error_is_retriable(kerr) ||
            rs_worker_now_us() >= deadline)
            return kerr;
        char qe[600];
        rs_worker_log("warning transaction_retry call=%s attempt=%d error=%s",
                      commit ? "commit_transaction" : "send_offsets_to_transaction", attempt,
                      rs_worker_quote(qe, sizeof qe, rd_kafka_error_string(kerr)));
        rd_kafka_error_destroy(kerr);
    }
}

int rs_worker_commit_transaction(rs_worker_t *w)
{
    rd_kafka_error_t *kerr = NULL;

    if (!w->txn_open)
        return 0;
    if (w->commit_offsets != NULL && w->commit_offsets->cnt > 0)
        kerr = txn_call(w, 0);
    if (kerr == NULL)
        kerr = txn_call(w, 1);
    if (kerr == NULL) {
        w->txn_open = 0;
        return 0;
    }
    int fatal = rd_kafka_error_is_fatal(kerr);
    int abort = rd_kafka_error_txn_requires_abort(kerr);
    rs_worker_fail(w,
                   "commit transaction: %s (%s); state not committed, the batch is "
                   "replayed from its plan after a restart",
                   rd_kafka_error_string(kerr),
                   fatal   ? "fatal"
                   : abort ? "aborted"
                           : "not retriable");
    rd_kafka_error_destroy(kerr);
    if (!fatal)
        rs_worker_abort_transaction(w); /* a fenced producer cannot abort */
    w->txn_open = 0;
    return -1;
}

/* A failure while a transaction is open (a failed delivery): abort it, so
 * read_committed consumers never see the batch's partial outputs. */
void rs_worker_abort_transaction(rs_worker_t *w)
{
    if (!w->txn_open)
        return;
    rd_kafka_error_t *kerr = rd_kafka_abort_transaction(w->producer, TXN_TIMEOUT_MS);
    if (kerr != NULL) {
        char qe[600];
        rs_worker_log("warning abort_transaction error=%s",
                      rs_worker_quote(qe, sizeof qe, rd_kafka_error_string(kerr)));
        rd_kafka_error_destroy(kerr);
    }
    w->txn_open = 0;
}

/* ------------------------------------------------------------------------ */
/* journal entries (the engine's sink)                                      */
/* ------------------------------------------------------------------------ */

static void touch(rs_worker_t *w, const char *contract_id, rs_period_t p)
{
    centry_t *ce;

    if (contract_id == NULL || contract_id[0] == '\0')
        return;
    ce = rs_worker_cm_get(&LANE(w)->cm, contract_id);
    if (ce == NULL) {
        rs_worker_fail(w, "out of memory");
        return;
    }
    ce->touched = 1;
    if (p != RS_PERIOD_NONE && (ce->as_of == RS_PERIOD_NONE || p > ce->as_of))
        ce->as_of = p;
}

void rs_worker_on_entry(void *opaque, const rs_entry_t *e)
{
    rs_worker_t *w = opaque;
    char err[512];
    void *buf = NULL;
    size_t len = 0;
    char *json = NULL;

    if (rs_worker_failed(w))
        return;
    if (LANE(w)->cur == NULL) {
        rs_worker_fail(w, "entry %s emitted outside a batch", e->entry_id);
        return;
    }
    if (w->cfg->output_format == RS_CONFIG_FORMAT_JSON) {
        json = rs_codec_entry_json(e);
        if (json == NULL) {
            rs_worker_fail(w, "entry %s: cannot encode as JSON", e->entry_id);
            return;
        }
        buf = json;
        len = strlen(json);
    } else if (rs_avro_encode_entry(LANE(w)->cache, w->id_journal, e, &buf, &len, err,
                                    sizeof err) != RS_AVRO_OK) {
        rs_worker_fail(w, "entry %s: %s", e->entry_id, err);
        return;
    }
    hdr_t h[1] = {{"entry_id", e->entry_id}};
    if (produce(w, 0, e->contract_id, strlen(e->contract_id), buf, len, h, 1) == 0) {
        LANE(w)->stats->entries_produced++;
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
        *o++ = (char)(i + 1 < len ? tbl[(v >> 6) & 63] : '=');
        *o++ = (char)(i + 2 < len ? tbl[v & 63] : '=');
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

/* The largest record the producer accepts (its message.max.bytes, which
 * librdkafka checks against key + value + headers + framing). */
static size_t output_limit(rs_worker_t *w)
{
    char v[32];
    size_t vlen = sizeof v;
    long n = 0;
    if (rd_kafka_conf_get(rd_kafka_conf(w->producer), "message.max.bytes", v, &vlen) ==
        RD_KAFKA_CONF_OK)
        n = strtol(v, NULL, 10);
    return n > 0 ? (size_t)n : 1000000u;
}

/* Room kept free under the limit for the record framing (librdkafka's
 * overhead is well under 100 bytes) and the header names. */
#define DLQ_SLACK 1024

/* The encoded dead letter (JSON or Avro) in *buf; 0, or -1 (failure
 * recorded). */
static int encode_dead_letter(rs_worker_t *w, const char *topic, int32_t partition,
                              int64_t offset, const char *error, const void *key, size_t keylen,
                              const void *value, size_t vlen, int64_t ts, void **buf,
                              size_t *len)
{
    char err[512];
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
            rs_worker_fail(w, "dead letter: out of memory");
            return -1;
        }
        *buf = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(o);
        if (*buf == NULL) {
            rs_worker_fail(w, "dead letter: out of memory");
            return -1;
        }
        *len = strlen(*buf);
        return 0;
    }
    rs_avro_deadletter_t d = {topic, partition, offset, error, key, keylen, value, vlen, ts};
    if (rs_avro_encode_deadletter(LANE(w)->cache, w->id_dlq, &d, buf, len, err, sizeof err) !=
        RS_AVRO_OK) {
        rs_worker_fail(w, "dead letter for %s[%d]: %s", topic, (int)partition, err);
        return -1;
    }
    return 0;
}

/* A dead letter on the DLQ topic. offset < 0: a late rejection (no source
 * offset). key/value may be NULL.
 *
 * A dead letter never exceeds the producer's limit (message.max.bytes): a
 * record just under the input limit would otherwise give a dead letter
 * over it (payload + envelope + headers), whose produce fails the worker
 * on every restart. When the whole record does not fit, the value (then,
 * if need be, the key) is cut to what fits, the error text says so, and a
 * "truncated" header says how much was kept and where the original is
 * (source topic, partition and offset, also in the source.* headers). */
static int dead_letter(rs_worker_t *w, int t, int32_t partition, int64_t offset,
                       const char *error, const void *key, size_t keylen, const void *value,
                       size_t vlen, int64_t ts)
{
    char off[32], part[16], note[256], trunc[256] = "", *msg = NULL;
    void *buf = NULL;
    size_t len = 0;
    const char *topic = w->cfg->topics[t];
    int rc = -1;

    snprintf(part, sizeof part, "%d", (int)partition);
    if (offset >= 0)
        snprintf(off, sizeof off, "%lld", (long long)offset);
    else
        snprintf(off, sizeof off, "none");
    size_t limit = output_limit(w), keep = vlen, kkeep = keylen;
    size_t slack = limit / 4 < DLQ_SLACK ? limit / 4 : DLQ_SLACK;
    const char *errtext = error;
    for (int round = 0;; round++) {
        /* headers: the source, the error, and (when cut) the note */
        size_t hdrs = strlen(topic) + strlen(part) + strlen(off) + 2 * strlen(errtext) +
                      (keep < vlen || kkeep < keylen ? strlen(trunc) : 0) + 5;
        if (encode_dead_letter(w, topic, partition, offset, errtext, key, kkeep, value, keep,
                               ts, &buf, &len))
            goto out;
        size_t total = len + kkeep + hdrs + slack;
        if (total <= limit)
            break;
        free(buf);
        buf = NULL;
        if (keep == 0 && kkeep == 0) {
            rs_worker_fail(w, "dead letter for %s[%d]@%s: the error alone is over %zu bytes",
                           topic, (int)partition, off, limit);
            goto out;
        }
        /* cut in proportion to what is over (the encoding expands the
         * bytes by a roughly even factor: base64, JSON escapes), the value
         * first, with a margin; after a few rounds, everything */
        size_t *cut = keep > 0 ? &keep : &kkeep;
        size_t scaled = (size_t)((unsigned long long)*cut * (limit - slack) / total);
        *cut = round < 8 && scaled > scaled / 50 + 64 ? scaled - scaled / 50 - 64 : 0;
        snprintf(note, sizeof note,
                 " (dead letter truncated: value %zu of %zu bytes, key %zu of %zu; the "
                 "original is %s[%s]@%s)",
                 keep, vlen, kkeep, keylen, topic, part, off);
        snprintf(trunc, sizeof trunc,
                 "value %zu of %zu bytes, key %zu of %zu; original %s[%s]@%s", keep, vlen,
                 kkeep, keylen, topic, part, off);
        free(msg);
        size_t mlen = strlen(error) + strlen(note) + 1;
        if ((msg = malloc(mlen)) == NULL) {
            rs_worker_fail(w, "dead letter: out of memory");
            goto out;
        }
        snprintf(msg, mlen, "%s%s", error, note);
        errtext = msg;
    }
    hdr_t h[6] = {{"source.topic", topic}, {"source.partition", part}, {"source.offset", off},
                  {"error", errtext},      {"late", "true"},           {"truncated", trunc}};
    int nh = offset >= 0 ? 4 : 5;
    if (keep < vlen || kkeep < keylen) {
        if (nh == 4)
            h[4] = h[5];
        nh++;
        rs_worker_log("dead_letter_truncated topic=%s partition=%s offset=%s value_bytes=%zu "
                      "kept=%zu key_bytes=%zu key_kept=%zu limit=%zu",
                      topic, part, off, vlen, keep, keylen, kkeep, limit);
    }
    if (produce(w, 2, key, key ? kkeep : 0, buf, len, h, nh) == 0) {
        LANE(w)->stats->dlq++;
        rs_metrics_inc(w->m.dlq);
        rs_metrics_inc(w->m.dead_letters);
        rc = 0;
    }
out:
    free(buf);
    free(msg);
    return rc;
}

void rs_worker_count_rejected(rs_worker_t *w, uint64_t n)
{
    LANE(w)->stats->rejected += n;
    rs_metrics_add(w->m.rejected, (int64_t)n);
}

void rs_worker_dlq_message(rs_worker_t *w, const qitem_t *it, const char *error)
{
    char qe[600];
    int64_t ts = it->m->timestamp;

    rs_worker_log("dead_letter topic=%s partition=%d offset=%lld error=%s",
                  w->cfg->topics[it->topic], (int)it->m->partition, (long long)it->m->offset,
                  rs_worker_quote(qe, sizeof qe, error));
    dead_letter(w, it->topic, it->m->partition, it->m->offset, error, it->m->key,
                it->m->key_len, it->m->payload, it->m->len, ts < 0 ? 0 : ts);
}

void rs_worker_take_late(rs_worker_t *w, rs_engine_t *e)
{
    rs_rejection_t *late = NULL;
    size_t n = rs_engine_take_late_rejections(e, &late);
    char qe[600];

    for (size_t i = 0; i < n && !rs_worker_failed(w); i++) {
        int t = rs_worker_canonical_index(rs_event_topic(late[i].type));
        if (t < 0)
            t = 0;
        rs_worker_log("dead_letter topic=%s partition=%d offset=none late=true error=%s",
                      w->cfg->topics[t], (int)LANE(w)->cur_n,
                      rs_worker_quote(qe, sizeof qe, late[i].reason));
        dead_letter(w, t, LANE(w)->cur_n, -1, late[i].reason, late[i].contract_id,
                    strlen(late[i].contract_id), NULL, 0, 0);
    }
    free(late);
}

/* ------------------------------------------------------------------------ */
/* balance snapshots                                                        */
/* ------------------------------------------------------------------------ */

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
            rs_worker_fail(w, "balance: out of memory");
            return -1;
        }
        buf = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
        json_decref(o);
        if (buf == NULL) {
            rs_worker_fail(w, "balance: out of memory");
            return -1;
        }
        len = strlen(buf);
    } else if (rs_avro_encode_balance(LANE(w)->cache, w->id_balance, b, &buf, &len, err,
                                      sizeof err) != RS_AVRO_OK) {
        rs_worker_fail(w, "balance %s: %s", b->snapshot_key, err);
        return -1;
    }
    int rc = produce(w, 1, b->snapshot_key, strlen(b->snapshot_key), buf, len, NULL, 0);
    free(buf);
    if (rc == 0) {
        LANE(w)->stats->balances_produced++;
        rs_metrics_inc(w->m.balances);
    }
    return rc;
}

/* The snapshots of one touched contract: one per line and one for the
 * contract, from its own line views (O(its lines)). Clears ce->touched, so
 * a contract snapshotted early (a close chunk, before the contract leaves
 * memory) is snapshotted again only if touched again. */
static void produce_contract_balances(rs_worker_t *w, const rs_engine_t *e, centry_t *ce)
{
    rs_line_view_t small[8], *views = small;
    char kbuf[2 * RS_STATE_MAX_ID_LEN + 8];
    size_t n = rs_engine_contract_lines(e, ce->id, small, 8);
    rs_avro_balance_t tot;

    ce->touched = 0;
    if (n > 8) {
        views = malloc(n * sizeof *views);
        if (views == NULL) {
            rs_worker_fail(w, "out of memory");
            return;
        }
        n = rs_engine_contract_lines(e, ce->id, views, n);
    }
    memset(&tot, 0, sizeof tot);
    size_t made = 0; /* line snapshots produced: the contract's follows them */
    for (size_t k = 0; k < n && !rs_worker_failed(w); k++) {
        const rs_line_view_t *v = &views[k];
        size_t il = strlen(ce->id), ll = strlen(v->line_id), klen = il + ll + 8;
        char *key = klen <= sizeof kbuf ? kbuf : malloc(klen); /* a long line id */
        if (key == NULL) {
            rs_worker_fail(w, "out of memory");
            break;
        }
        /* "<contract>/line/<line>" (no snprintf: once per line snapshot) */
        memcpy(key, ce->id, il);
        memcpy(key + il, "/line/", sizeof "/line/"); /* its NUL is overwritten */
        memcpy(key + il + 6, v->line_id, ll + 1);
        rs_avro_balance_t b = {key,         ce->id,        v->customer_id, RS_AVRO_SCOPE_LINE,
                               v->line_id,  NULL,          v->currency,    v->exponent,
                               v->billed,   v->recognized, v->deferred,    v->unbilled,
                               v->received, ce->as_of};
        produce_balance(w, &b);
        if (key != kbuf)
            free(key);
        made++;
        if (k == 0) {
            tot = b;
            tot.snapshot_key = ce->id;
            tot.scope = RS_AVRO_SCOPE_CONTRACT;
            tot.line_id = NULL;
        } else {
            tot.billed += v->billed;
            tot.recognized += v->recognized;
            tot.deferred += v->deferred;
            tot.unbilled += v->unbilled;
            tot.received += v->received;
        }
    }
    if (made > 0 && !rs_worker_failed(w))
        produce_balance(w, &tot);
    if (views != small)
        free(views);
}

/* A snapshot per line and one for the contract, for every contract the
 * sub-batch touched (W4: in the order they were first touched). */
void rs_worker_produce_balances(rs_worker_t *w, const rs_engine_t *e)
{
    for (size_t i = 0; i < LANE(w)->cm.n && !rs_worker_failed(w); i++)
        if (LANE(w)->cm.e[i].touched)
            produce_contract_balances(w, e, &LANE(w)->cm.e[i]);
}

/* The snapshots of the touched contracts among ids (a close chunk's, before
 * they leave memory). */
void rs_worker_produce_balances_of(rs_worker_t *w, const rs_engine_t *e, const char *const *ids,
                                   size_t n)
{
    for (size_t i = 0; i < n && !rs_worker_failed(w); i++) {
        centry_t *ce = rs_worker_cm_find(&LANE(w)->cm, ids[i]);
        if (ce != NULL && ce->touched)
            produce_contract_balances(w, e, ce);
    }
}
