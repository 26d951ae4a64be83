/*
 * rs_worker.c — the stream worker's main loop (see rs_worker.h for the
 * model and the guarantees).
 *
 * Invariants kept here:
 *   W1  Every consumed message is owned by exactly one place: the queue of
 *       its partition number (parts[N].tq[topic]) until a batch takes it, then the
 *       batch until the batch is done with it. Messages of a partition whose
 *       engine is gone (revoked) are destroyed, never processed.
 *   W2  parts[N].ps != NULL (the partition is REPLAYING or ACTIVE) exactly
 *       while partition number N is assigned to this worker; its engine's
 *       sink is rs_worker_on_entry() with w as opaque, and the applying
 *       thread's lane's cur (rs_worker_lane()) names the partition whose
 *       sub-batch is being applied (NULL outside apply), so an entry is
 *       always produced for the partition whose event caused it.
 *   W3  Outputs of a batch are produced only after its plans were saved
 *       (rs_pstate_stage_plan, one synced write) and delivered, and the
 *       batch's state write (the lanes' staging write batches appended
 *       into one, rs_state_batch_append) is committed only after
 *       rd_kafka_flush() returned with zero failed delivery reports for
 *       everything produced since the last commit. After a failure the
 *       worker is FAILED and nothing is committed again: the in-memory
 *       engines are ahead of the store, so the only way on is a restart,
 *       which replays the plans.
 *   W4  Everything a sub-batch produces is a function of the engine state
 *       before it and the messages in plan order: journal records in the
 *       engine's sink order, dead letters in message order, balance
 *       snapshots in the order contracts were first touched (the lane's
 *       contract map keeps insertion order). No clock, no hash order, no
 *       random.
 *   W5  The next input offset staged for (topic, N) is one past the
 *       highest offset of that topic in the sub-batch, and the per-contract
 *       applied offset is the highest offset of that topic applied to the
 *       contract.
 *   W6  Changelog partition N gets, per sub-batch of N, the plan record
 *       m/N (delivered, with the batch's other plans, before its first
 *       output), then c/<id> for every contract the engine reports changed
 *       (rs_engine_take_changed; the same set is staged locally, here),
 *       then the final m/N (engine meta, all four next input offsets); the
 *       c/ and final records are queued (the lane's changelog queue) and
 *       produced only after the batch's outputs were all delivered, then
 *       flushed. parts[N].cl_next (from delivery reports) is staged as
 *       changelog/N with the state commit. A partition is restored before
 *       rs_pstate_load when its local changelog/N is missing (and no local
 *       state) or behind.
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
 *   W9  A partition's engine holds only part of its contracts (rs_pstate.h
 *       C1-C4): an event's contract is fetched from the store (and caught
 *       up through the month ends its record missed) before it is
 *       applied; contracts leave memory only after a commit
 *       (state.cache.mb); a month-end close streams the store lazily (what
 *       it alone changed is not written back) and may commit chunks of
 *       records it writes back, 6 month ends behind (their snapshots,
 *       outputs and changelog records delivered first), which a replay of
 *       the batch's plan then finds recognized. With exactly_once no chunk
 *       is committed before the batch.
 *
 * States: the worker's lifecycle is one state (STARTING, JOINING,
 * RESTORING, RUNNING, STOPPING, STOPPED, FAILED, CLOSING) and each input
 * partition number's another (UNASSIGNED, RESTORING, REPLAYING, ACTIVE,
 * REVOKED), each changed only through its transition function; the states,
 * their allowed transitions and how they tie to the data are listed at the
 * top of internal/rs_worker_internal.h.
 *
 * Files: this one holds the public API, set-up and tear-down and the main
 * loop; the steps of the loop are in rs_worker_consume.c (queues, the
 * event-time merge), rs_worker_batch.c (apply, stage, commit),
 * rs_worker_output.c (produce, delivery, dead letters, transactions) and
 * rs_worker_rebalance.c (assign, revoke, restore, drop); the state machines
 * are in rs_worker_state.c.
 *
 * Ownership: the worker owns the clients, the store, the registry and Avro
 * cache, the engines (through rs_pstate), the queues and the write batch;
 * rs_worker_destroy() frees them in reverse order of creation. Buffers for
 * produced records are copied by librdkafka (RD_KAFKA_MSG_F_COPY) and freed
 * here right after the produce call.
 */
#include "rs_worker.h"
#include "rs_err.h"
#include "rs_kafka_client.h"
#include "rs_log.h"
#include "rs_worker_internal.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How many records librdkafka prefetches (queued.min.messages, all
 * partitions together) and how many new ones the loop drains from it before
 * a batch: four fifths of input.buffer.records, and at least a batch. With
 * a prefetch of one batch over many topic-partitions, a drained topic's
 * next records came only after the next batch, and the event-time merge
 * stopped there (bench/README.md, "A longer horizon for the merge"). */
static long prefetch_records(const rs_config_t *c)
{
    long n = c->input_buffer_records / 5 * 4;
    return n > c->batch_max_records ? n : c->batch_max_records;
}

/* ------------------------------------------------------------------------ */
/* librdkafka's log and error callbacks                                     */
/* ------------------------------------------------------------------------ */

/* librdkafka's log (syslog levels) as component "rdkafka": 0-3 error,
 * 4 warn, 5-6 info, 7 debug. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char qb[1200], qf[64];
    (void)rk;
    rs_logf(level <= 3   ? RS_LOG_ERROR
            : level == 4 ? RS_LOG_WARN
            : level <= 6 ? RS_LOG_INFO
                         : RS_LOG_DEBUG,
            "rdkafka", "log syslog_level=%d fac=%s msg=%s", level,
            rs_worker_quote(qf, sizeof qf, fac), rs_worker_quote(qb, sizeof qb, buf));
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    rs_worker_t *w = opaque;
    char qb[1200], fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        rs_worker_fail(w, "kafka fatal error: %s", fatal);
        return;
    }
    pthread_mutex_lock(&w->mu); /* the producer's errors may come on an apply lane */
    rs_worker_metrics_cluster_error(w, err);
    pthread_mutex_unlock(&w->mu);
    rs_worker_log("warning kafka_error error=%s reason=%s",
                  rd_kafka_err2name((rd_kafka_resp_err_t)err),
                  rs_worker_quote(qb, sizeof qb, reason));
}

/* ------------------------------------------------------------------------ */
/* setup                                                                    */
/* ------------------------------------------------------------------------ */

/* The value of integer setting `name` in conf, or dflt when it cannot be read
 * or is not a whole number in range (librdkafka validates integer settings
 * when they are set, so only a setting it does not know falls back). */
static long conf_long(const rd_kafka_conf_t *conf, const char *name, long dflt)
{
    char v[64], *end;
    size_t vlen = sizeof v;
    if (rd_kafka_conf_get(conf, name, v, &vlen) != RD_KAFKA_CONF_OK)
        return dflt;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0)
        return dflt;
    return n;
}

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
    if (ferror(f) || len > (size_t)MAX_POLICY_BYTES) {
        rs_errorf(errstr, errlen, "policy.file %s: %s", path,
                  len > (size_t)MAX_POLICY_BYTES ? "larger than 1 MiB" : "read error");
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
    if (rs_avro_cache_new(&w->lane0.cache, err, sizeof err) != RS_AVRO_OK) {
        rs_errorf(errstr, errlen, "%s", err);
        return -1;
    }
    rs_avro_cache_set_lookup(w->lane0.cache, rs_worker_schema_lookup, &w->lane0);
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
            rs_avro_cache_add(w->lane0.cache, *ids[i], text, err, sizeof err) != RS_AVRO_OK) {
            rs_errorf(errstr, errlen, "output schema %s: %s", subject, err);
            return -1;
        }
        rs_worker_log("schema subject=%s id=%d registry=%s", subject, (int)*ids[i],
                      rs_registry_describe(w->reg));
    }
    return 0;
}

rd_kafka_conf_t *rs_worker_kafka_conf(rs_worker_t *w, rs_kafka_role_t role,
                                      const rs_config_kafka_t *settings, char *errstr,
                                      size_t errlen)
{
    rs_kafka_client_opts_t o = {0};
    rd_kafka_conf_t *conf = NULL;
    const char *bad = NULL;
    char kerr[512];

    o.role = role;
    o.settings = settings;
    o.props = w->cfg->kafka; /* bootstrap.servers is one of them */
    o.nprops = w->cfg->n_kafka;
    o.log_cb = on_kafka_log;
    o.error_cb = on_kafka_error;
    o.opaque = w;
    if (rs_kafka_conf_new(&conf, &o, &bad, kerr, sizeof kerr) == 0)
        return conf;
    if (bad == NULL)
        rs_errorf(errstr, errlen, "%s", kerr);
    else if (rs_config_is_secret(bad))
        rs_errorf(errstr, errlen, "kafka.%s: librdkafka refuses the value", bad);
    else
        rs_errorf(errstr, errlen, "kafka.%s: %s", bad, kerr);
    return NULL;
}

static int setup_kafka(rs_worker_t *w, char *errstr, size_t errlen)
{
    const rs_config_t *c = w->cfg;
    rd_kafka_conf_t *conf = NULL;
    char kerr[512], txid[512], host[256];
    /* Tuning defaults (docs/worker.md, "Throughput"; kafka.* overrides
     * them): Nagle off, since a batch waits for its delivery reports and a
     * delayed ACK would add ~40 ms to each round; a short fetch wait so a
     * caught-up worker sees new records within tens of ms. */
    rs_config_kafka_t producer[] = {{"socket.nagle.disable", "true"},
                                    {"linger.ms", "5"},
                                    {"partitioner", "murmur2_random"},
                                    {"enable.idempotence", "true"},
                                    {"acks", "all"},
                                    {NULL, NULL}, /* transactional.id (exactly_once) */
                                    {NULL, NULL}};
    rs_config_kafka_t consumer[13];
    char prefetch[24];
    int nc = 0;

    /* producer */
    if (c->guarantee == RS_CONFIG_EXACTLY_ONCE) {
        if (c->group_instance_id != NULL) {
            snprintf(host, sizeof host, "%s", c->group_instance_id);
        } else if (gethostname(host, sizeof host) != 0) {
            snprintf(host, sizeof host, "unknown-host");
        }
        host[sizeof host - 1] = '\0';
        snprintf(txid, sizeof txid, "%s-%s", c->group_id, host);
        producer[5] = (rs_config_kafka_t){"transactional.id", txid};
        w->txn = 1;
    }
    if ((conf = rs_worker_kafka_conf(w, RS_KAFKA_ROLE_PRODUCER, producer, errstr, errlen)) ==
        NULL)
        return -1;
    w->max_msg_bytes = conf_long(conf, "message.max.bytes", 1000000);
    rd_kafka_conf_set_dr_msg_cb(conf, rs_worker_on_delivery);
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

    /* The changelog's topic object comes in check_changelog, after the topic
     * was created or checked: a producer's metadata request for a missing
     * topic may have the broker auto-create it with its default count. */

    /* consumer */
    consumer[nc++] = (rs_config_kafka_t){"socket.nagle.disable", "true"};
    consumer[nc++] = (rs_config_kafka_t){"fetch.wait.max.ms", "50"};
    consumer[nc++] = (rs_config_kafka_t){"group.id", c->group_id};
    if (c->group_instance_id != NULL)
        consumer[nc++] = (rs_config_kafka_t){"group.instance.id", c->group_instance_id};
    consumer[nc++] = (rs_config_kafka_t){"partition.assignment.strategy", "range"};
    consumer[nc++] = (rs_config_kafka_t){"enable.auto.commit", "false"};
    consumer[nc++] = (rs_config_kafka_t){"enable.auto.offset.store", "false"};
    consumer[nc++] = (rs_config_kafka_t){"auto.offset.reset", "earliest"};
    consumer[nc++] = (rs_config_kafka_t){"enable.partition.eof", "true"};
    consumer[nc++] = (rs_config_kafka_t){"statistics.interval.ms", "5000"}; /* lag, brokers */
    /* librdkafka's prefetch, all partitions together (the consumer's queue,
     * which every partition's feeds): prefetch_records (docs/worker.md,
     * Memory) */
    snprintf(prefetch, sizeof prefetch, "%ld", prefetch_records(c));
    consumer[nc++] = (rs_config_kafka_t){"queued.min.messages", prefetch};
    consumer[nc] = (rs_config_kafka_t){NULL, NULL};
    if ((conf = rs_worker_kafka_conf(w, RS_KAFKA_ROLE_CONSUMER, consumer, errstr, errlen)) ==
        NULL)
        return -1;
    /* the stall guard needs the group timeouts as librdkafka will use them */
    w->session_ms = conf_long(conf, "session.timeout.ms", 45000);
    w->heartbeat_ms = conf_long(conf, "heartbeat.interval.ms", 3000);
    rd_kafka_conf_set_rebalance_cb(conf, rs_worker_on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, rs_worker_on_commit);
    rd_kafka_conf_set_stats_cb(conf, rs_worker_on_stats);
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

/* 1 if the cluster names a controller among its brokers (CreateTopics goes
 * to it). The embedded broker (librdkafka 2.0.2's mock) names none and does
 * not implement CreateTopics; asking it would only wait for the timeout. */
static int controller_known(rs_worker_t *w)
{
    const struct rd_kafka_metadata *md = NULL;
    int32_t id = rd_kafka_controllerid(w->producer, 5000);
    int found = 0;

    if (id < 0 ||
        rd_kafka_metadata(w->consumer, 0, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    for (int i = 0; i < md->broker_cnt; i++)
        if (md->brokers[i].id == id)
            found = 1;
    rd_kafka_metadata_destroy(md);
    return found;
}

/* Create the changelog with CreateTopics: nparts partitions, compacted.
 * Returns 0 (created, or it exists already) or -1 (not created, logged). */
static int create_changelog(rs_worker_t *w)
{
    char err[512];
    int rc = -1;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *rq = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;

    if (!controller_known(w)) {
        rs_worker_log("warning changelog_create topic=%s error=\"the cluster names no "
                      "controller\" action=auto_create",
                      w->cfg->changelog_topic);
        goto out;
    }
    nt = rd_kafka_NewTopic_new(w->cfg->changelog_topic, w->nparts, -1, err, sizeof err);
    rq = rd_kafka_queue_new(w->producer);
    if (nt == NULL || rq == NULL)
        goto out;
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    opts = rd_kafka_AdminOptions_new(w->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (opts == NULL ||
        rd_kafka_AdminOptions_set_request_timeout(opts, 10000, err, sizeof err) != 0)
        goto out;
    rd_kafka_CreateTopics(w->producer, &nt, 1, opts, rq);
    ev = rd_kafka_queue_poll(rq, 15000);
    if (ev == NULL) {
        rs_worker_log("warning changelog_create topic=%s error=timeout",
                      w->cfg->changelog_topic);
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rs_worker_log("warning changelog_create topic=%s error=\"%s\"", w->cfg->changelog_topic,
                      rd_kafka_event_error_string(ev));
    else if (n == 1 &&
             rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        rc = 0; /* another worker created it meanwhile */
    else if (n == 1 && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        rs_worker_log("warning changelog_create topic=%s error=\"%s\"", w->cfg->changelog_topic,
                      rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));
    else {
        rc = 0;
        rs_worker_log("changelog_created topic=%s partitions=%d cleanup.policy=compact",
                      w->cfg->changelog_topic, (int)w->nparts);
    }
out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (rq != NULL)
        rd_kafka_queue_destroy(rq);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* The partition count of `topic` from the cluster's full topic list: 0 if
 * it does not exist, -1 if the metadata cannot be read. A metadata request
 * naming a missing topic may make the broker auto-create it with its
 * default count (auto.create.topics.enable; the mock broker does), which
 * would pre-empt the changelog's creation with the inputs' count. */
static int listed_partition_count(rs_worker_t *w, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    int cnt = -1;

    if (rd_kafka_metadata(w->consumer, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    cnt = 0;
    for (int j = 0; j < md->topic_cnt; j++)
        if (strcmp(md->topics[j].topic, topic) == 0 &&
            md->topics[j].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            cnt = md->topics[j].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return cnt;
}

/* The changelog exists (created when missing, with CreateTopics: the input
 * partition count, cleanup.policy=compact) and is co-partitioned with the
 * inputs; all before the consumer subscribes. No request names the topic
 * before it exists (listed_partition_count), and the producer's topic object
 * comes last, so no broker auto-creates it with another count first. */
static int check_changelog(rs_worker_t *w, char *errstr, size_t errlen)
{
    const char *cl = w->cfg->changelog_topic;
    int cnt = listed_partition_count(w, cl);
    if (cnt == 0) {
        /* Not created: a broker that auto-creates topics does it now, with
         * its default count (checked below). */
        if (create_changelog(w) != 0)
            rs_kafka_partition_count(w->producer, cl, 10000);
        for (int i = 0; i < 50 && cnt <= 0; i++) {
            cnt = listed_partition_count(w, cl);
            if (cnt <= 0)
                usleep(100000);
        }
    }
    if (cnt <= 0) {
        rs_errorf(
            errstr, errlen,
            "kafka: changelog topic %s does not exist and could not be created: create it "
            "with %d partitions and cleanup.policy=compact",
            cl, (int)w->nparts);
        return -1;
    }
    if (cnt != w->nparts) {
        rs_worker_log("error changelog_partitions topic=%s partitions=%d inputs=%d", cl, cnt,
                      (int)w->nparts);
        rs_errorf(errstr, errlen,
                  "kafka: changelog topic %s has %d partition%s, the input topics %d: it must "
                  "be co-partitioned with them (changelog partition N holds input partition "
                  "N's state). If it holds no state yet, delete it and start the worker again "
                  "(it creates it with %d partitions and cleanup.policy=compact); otherwise "
                  "set topics.changelog to a topic with %d partitions and let the workers "
                  "rebuild the state from the inputs",
                  cl, cnt, cnt == 1 ? "" : "s", (int)w->nparts, (int)w->nparts, (int)w->nparts);
        return -1;
    }
    w->rkt_cl = rd_kafka_topic_new(w->producer, cl, NULL);
    if (w->rkt_cl == NULL) {
        rs_errorf(errstr, errlen, "kafka topic %s: %s", cl,
                  rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    rs_worker_log("changelog topic=%s partitions=%d", cl, cnt);
    return 0;
}

/* Every topic exists; the four inputs have one partition count (-> nparts). */
static int check_topics(rs_worker_t *w, char *errstr, size_t errlen)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    uint64_t deadline = rs_worker_now_us() + (uint64_t)METADATA_DEADLINE_MS * 1000u;
    int counts[RS_CONFIG_TOPIC__COUNT];
    char list[2048] = "";
    int missing = 0, differ = 0;

    for (;;) {
        err = rd_kafka_metadata(w->consumer, 1, NULL, &md, 10000);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        if (rs_worker_now_us() >= deadline || w->stop) {
            rs_errorf(errstr, errlen, "kafka: cannot read cluster metadata from %s: %s",
                      rs_config_get(w->cfg, "kafka.bootstrap.servers"), rd_kafka_err2str(err));
            return -1;
        }
        rs_worker_log("warning metadata error=\"%s\" retrying=true", rd_kafka_err2str(err));
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
    rs_worker_log("topics %s", list);
    return check_changelog(w, errstr, errlen);
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
    w->lane0.w = w;
    w->lane0.stats = &w->stats;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        rs_errorf(errstr, errlen, "cannot create a mutex");
        return -1;
    }
    if (read_policy(w, errstr, errlen) != 0 || rs_worker_metrics_setup(w, errstr, errlen) != 0)
        goto done;

    rs_state_opts_t so = {.path = cfg->state_dir,
                          .create_if_missing = 1,
                          .sync = cfg->state_sync ? RS_STATE_SYNC_ON : RS_STATE_SYNC_OFF,
                          .memtable_bytes = (size_t)cfg->state_memtable_mb * 1024u * 1024u};
    int src = rs_state_open(&w->st, &so, err, sizeof err);
    if (src != 0) {
        rs_errorf(errstr, errlen, "state.dir %s: %s", cfg->state_dir, err);
        rc = src == RS_STATE_EDISK ? RS_WORKER_EDISK : -1;
        goto done;
    }
    if (rs_state_batch_new(&w->lane0.sb, err, sizeof err) != 0) {
        rs_errorf(errstr, errlen, "%s", err);
        goto done;
    }
    if (setup_schemas(w, errstr, errlen) != 0 || rs_worker_lanes_new(w, errstr, errlen) != 0 ||
        setup_kafka(w, errstr, errlen) != 0 || check_topics(w, errstr, errlen) != 0)
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
    /* A failure an error callback recorded meanwhile stays: the run reports it. */
    if (!rs_worker_failed(w) && rs_worker_set_state(w, RS_WORKER_JOINING) != 0) {
        rs_errorf(errstr, errlen, "%s", w->errmsg);
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

/* exit.when.idle: an assignment was handled (RUNNING) and no revoke came
 * after it (between a revoke and the group's next assignment the worker
 * owns nothing, which says nothing about the input: with the range
 * assignor every rebalance revokes everything first), nothing is queued,
 * no plan waits, and every assigned topic-partition is at its end. An
 * assignment of nothing (more members than partitions) is idle at once. */
static int is_idle(const rs_worker_t *w)
{
    if (w->state != RS_WORKER_RUNNING || w->between_assignments || w->queued > 0)
        return 0;
    for (int32_t n = 0; n < w->nparts; n++) {
        const part_t *p = &w->parts[n];
        if (!rs_worker_owns(w, n) || p->parked)
            continue; /* a parked partition takes nothing more */
        if (p->state == RS_PART_REPLAYING)
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
        if (w->parts[n].state == RS_PART_REPLAYING && !w->parts[n].parked &&
            rs_worker_all_eof(&w->parts[n]))
            return 1;
    return 0;
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
    uint64_t now = rs_worker_now_us(), gap = now - w->loop_mark;
    w->loop_mark = now;
    if (w->session_ms <= 0 || gap <= (uint64_t)w->session_ms * 500u)
        return;
    long hold_ms = 2 * w->heartbeat_ms > 1000 ? 2 * w->heartbeat_ms : 1000;
    w->hold_until = now + (uint64_t)hold_ms * 1000u;
    rs_metrics_inc(w->m.stalls);
    rs_worker_log(
        "warning stalled ms=%llu session_timeout_ms=%ld action=hold_batches hold_ms=%ld "
        "queued=%zu",
        (unsigned long long)(gap / 1000), w->session_ms, hold_ms, w->queued);
}

int rs_worker_run(rs_worker_t *w, char *errstr, size_t errlen)
{
    const uint64_t max_us = (uint64_t)w->cfg->batch_max_ms * 1000u;
    const long drain_max = prefetch_records(w->cfg);
    int idle_exit = 0;

    rs_worker_log(
        "running group=%s guarantee=%s input=%s output=%s partitions=%d session_timeout_ms=%ld "
        "heartbeat_ms=%ld",
        w->cfg->group_id,
        w->cfg->guarantee == RS_CONFIG_EXACTLY_ONCE ? "exactly_once" : "at_least_once",
        w->cfg->input_format == RS_CONFIG_FORMAT_JSON ? "json" : "avro",
        w->cfg->output_format == RS_CONFIG_FORMAT_JSON ? "json" : "avro", (int)w->nparts,
        w->session_ms, w->heartbeat_ms);
    w->loop_mark = rs_worker_now_us();
    while (!w->stop && !rs_worker_failed(w)) {
        if (w->cfg->exit_when_idle && is_idle(w)) {
            idle_exit = 1;
            break;
        }
        int timeout = 100;
        if (w->more && w->queued > 0) {
            timeout = 0; /* a batch is due at once: do not wait for records */
        } else if (w->queued > 0) {
            uint64_t age = rs_worker_now_us() - w->batch_t0;
            timeout = age >= max_us ? 0 : (int)((max_us - age + 999) / 1000);
            if (timeout > 100)
                timeout = 100;
        }
        rs_worker_metrics_tick(w); /* heartbeat (/healthz), readiness, gauges */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, timeout);
        check_stall(w); /* before this iteration may apply a batch */
        /* Drain what the consumer has fetched, up to prefetch_records new
         * records: a batch is cut by batch.max.records and batch.max.ms
         * only, never by how the fetches happened to arrive, and the more a
         * partition's queues hold, the more event time its next sub-batch
         * covers (bench/README.md, "A longer horizon for the merge"). */
        while (m != NULL) {
            rs_worker_take_message(w, m);
            if ((long)w->fresh >= drain_max || rs_worker_failed(w))
                break;
            m = rd_kafka_consumer_poll(w->consumer, 0);
        }
        rs_worker_flow_update(w); /* input.buffer.records */
        rd_kafka_poll(w->producer, 0);
        rs_worker_drop_expired(w);
        if (w->recommit && rs_worker_now_us() >= w->recommit_after)
            rs_worker_commit_store_offsets(w);
        if (rs_worker_failed(w))
            break;
        /* A batch when a batch's worth of new records came, when the last
         * batch was cut by batch.max.records (more may be ready), or when the
         * oldest record not yet tried in a batch is batch.max.ms old (records
         * a sub-batch left for a lagging topic are tried again then, not
         * after every poll). */
        if ((long)w->fresh >= w->cfg->batch_max_records || (w->more && w->queued > 0) ||
            (w->queued > 0 && rs_worker_now_us() - w->batch_t0 >= max_us) || stuck_plan(w)) {
            rs_worker_process_batch(w);
            rs_worker_flow_update(w);
            w->loop_mark = rs_worker_now_us(); /* a long batch is not a stall */
        }
    }
    if (!rs_worker_failed(w) && rs_worker_set_state(w, RS_WORKER_STOPPING) == 0) {
        rs_worker_log("stopping reason=%s", idle_exit ? "idle" : "signal");
        rs_worker_process_batch(w);
    }
    rs_metrics_set_ready(w->metrics, 0);
    rs_metrics_set_reason(w->metrics, "stopping");
    /* Leaves the group; the revoke callback commits what is left (W3). */
    rd_kafka_consumer_close(w->consumer);
    if (rs_worker_failed(w) || rs_worker_set_state(w, RS_WORKER_STOPPED) != 0) {
        rs_errorf(errstr, errlen, "%s", w->errmsg);
        return w->disk_fault ? RS_WORKER_EDISK : -1;
    }
    rs_worker_log(
        "stopped batches=%llu records=%llu applied=%llu duplicates=%llu skipped=%llu "
        "rejected=%llu dlq=%llu entries=%llu balances=%llu pauses=%llu",
        (unsigned long long)w->stats.batches, (unsigned long long)w->stats.records,
        (unsigned long long)w->stats.events_applied, (unsigned long long)w->stats.duplicates,
        (unsigned long long)w->stats.skipped, (unsigned long long)w->stats.rejected,
        (unsigned long long)w->stats.dlq, (unsigned long long)w->stats.entries_produced,
        (unsigned long long)w->stats.balances_produced, (unsigned long long)w->flow_pauses);
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

static const char *const kill_point_names[] = {
    "none", "planned", "mid_batch", "delivered", "changelog", "state_write", "committed"};

rs_kill_point_t rs_kill_point_from_name(const char *name)
{
    for (int i = 1; i < (int)(sizeof kill_point_names / sizeof *kill_point_names); i++)
        if (strcmp(name, kill_point_names[i]) == 0)
            return (rs_kill_point_t)i;
    return RS_KILL_NONE;
}

const char *rs_kill_point_name(rs_kill_point_t p)
{
    return p >= RS_KILL_NONE && p <= RS_KILL_COMMITTED ? kill_point_names[p] : "none";
}

void rs_worker_set_kill_point(rs_worker_t *w, rs_kill_point_t point, uint64_t n,
                              uint64_t delay_us, uint64_t seed)
{
    if (w == NULL)
        return;
    w->kill_point = n > 0 ? point : RS_KILL_NONE;
    w->crash_after = n;
    w->kill_delay_us = delay_us;
    w->kill_seed = seed;
    w->kill_seen = 0;
}

void rs_worker_set_crash_after(rs_worker_t *w, uint64_t n)
{
    rs_worker_set_kill_point(w, RS_KILL_CHANGELOG, n, 0, 0);
}

void rs_worker_set_crash_in_close(rs_worker_t *w, uint64_t n)
{
    if (w != NULL)
        w->crash_in_close = n;
}

void rs_worker_destroy(rs_worker_t *w)
{
    if (w == NULL)
        return;
    /* Messages go before their consumer; nothing is processed any more, even
     * if destroying an unclosed consumer runs the revoke callback. */
    rs_worker_set_state(w, RS_WORKER_CLOSING);
    for (int32_t n = 0; w->parts != NULL && n < w->nparts; n++)
        rs_worker_part_queue_clear(&w->parts[n]);
    w->queued = 0;
    if (w->consumer != NULL)
        rd_kafka_destroy(w->consumer);
    if (w->parts != NULL) {
        for (int32_t n = 0; n < w->nparts; n++)
            rs_worker_release_part(&w->parts[n]);
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
    for (int i = 0; w->lanes != NULL && i < w->nlanes; i++)
        rs_worker_lane_free(&w->lanes[i]);
    free(w->lanes);
    rs_worker_lane_free(&w->lane0);
    rs_registry_destroy(w->reg);
    rs_state_destroy(w->st);
    rs_metrics_server_destroy(w->msrv);
    rs_worker_metrics_free(w);
    rs_metrics_destroy(w->metrics);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
