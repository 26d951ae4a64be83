/*
 * rs_pgsink.c — the sink's loop: assign every partition of the three output
 * topics at the offsets the database holds, read records into a batch, and
 * apply the batch in one database transaction together with the next
 * offsets (see rs_pgsink.h for the invariants).
 *
 * Why offsets in the database rather than only in Kafka after the commit:
 * with Kafka commits alone, a crash between the database commit and the
 * Kafka commit re-reads the batch; entries would be deduplicated by entry_id,
 * but balance snapshots could be applied over newer ones and the
 * informational counters would double. With the offsets in the same
 * transaction, the database is always exactly "everything before
 * next_offset", whatever kills the sink. The Kafka commit that follows each
 * database commit exists only so lag monitoring sees the sink's group.
 *
 * Logs: `sink: key=value` lines on stderr; connection strings and secrets
 * never appear in them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "rs_codec.h"
#include "rs_kafka_client.h"
#include "rs_pgsink.h"
#include "rs_pgsink_internal.h"

enum { T_JOURNAL = 0, T_BALANCES, T_DLQ, T_COUNT };

typedef struct part_state {
    int topic;
    int32_t partition;
    int eof;
    int64_t next; /* next offset to store after this batch; -1: unchanged */
} part_state_t;

typedef struct sink {
    const rs_pgsink_opts_t *o;
    const char *topics[T_COUNT];
    int nparts[T_COUNT];
    part_state_t *parts; /* T_COUNT blocks of nparts[t] */
    size_t nall, neof;
    rd_kafka_t *rk;
    pgs_db_t db;
    rs_output_reader_t *dec;
    rs_entry_reader_t *er;
    rd_kafka_message_t **batch;
    size_t nbatch;
    rs_pgsink_stats_t *st;
} sink_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int rs_pgsink_init_schema(const char *conninfo, char *errstr, size_t errlen)
{
    pgs_db_t db = {0};
    if (pgs_db_open(&db, conninfo, errstr, errlen))
        return -1;
    int rc = pgs_db_create_schema(&db, errstr, errlen);
    pgs_db_close(&db);
    return rc;
}

static part_state_t *part_of(sink_t *s, const char *topic, int32_t partition)
{
    size_t base = 0;
    for (int t = 0; t < T_COUNT; t++) {
        if (strcmp(s->topics[t], topic) == 0)
            return partition >= 0 && partition < s->nparts[t] ? &s->parts[base + partition]
                                                              : NULL;
        base += (size_t)s->nparts[t];
    }
    return NULL;
}

/* One record into the database (inside the open transaction). 0, or -1 on
 * a database error. Decode errors are stored in rs_sink_errors. */
static int apply_one(sink_t *s, const rd_kafka_message_t *m, int t, char *errstr, size_t errlen)
{
    char err[512];
    const char *topic = s->topics[t];
    int r = 0;
    if (t == T_JOURNAL) {
        rs_entry_t e;
        if (m->payload == NULL || m->len == 0) {
            snprintf(err, sizeof err, "entry ?: empty record");
            r = 1;
        } else if (((const char *)m->payload)[0] == '{'
                       ? rs_codec_entry_from_json(m->payload, m->len, &e, err, sizeof err)
                       : rs_codec_entry_from_avro(s->er, m->payload, m->len, &e, err,
                                                  sizeof err)) {
            r = 1;
        } else {
            int k = pgs_db_entry(&s->db, &e, topic, m->partition, m->offset, errstr, errlen);
            if (k == PGS_DBERROR)
                return -1;
            if (k == PGS_INSERTED)
                s->st->entries++;
            else if (k == PGS_DUPLICATE)
                s->st->duplicates++;
            else {
                s->st->conflicts++;
                fprintf(stderr,
                        "sink: conflict entry_id=%s partition=%d offset=%" PRId64
                        " reason=\"an entry with this id and different content is stored; "
                        "kept the stored one (see rs_sink_conflicts)\"\n",
                        e.entry_id, (int)m->partition, m->offset);
            }
            return 0;
        }
    } else if (t == T_BALANCES) {
        rs_output_balance_t b;
        if (m->payload == NULL) { /* tombstone */
            s->st->balances++;
            return m->key ? pgs_db_balance_delete(&s->db, m->key, m->key_len, errstr, errlen)
                          : 0;
        }
        if (rs_output_balance_decode(s->dec, m->payload, m->len, &b, err, sizeof err)) {
            r = 1;
        } else {
            s->st->balances++;
            return pgs_db_balance(&s->db, &b, m->partition, m->offset, errstr, errlen);
        }
    } else {
        rs_output_deadletter_t x;
        if (m->payload == NULL ||
            rs_output_deadletter_decode(s->dec, m->payload, m->len, &x, err, sizeof err)) {
            if (m->payload == NULL)
                snprintf(err, sizeof err, "dead letter: empty record");
            r = 1;
        } else {
            s->st->dead_letters++;
            return pgs_db_deadletter(&s->db, &x, m->partition, m->offset, errstr, errlen);
        }
    }
    if (r) {
        s->st->errors++;
        fprintf(stderr,
                "sink: bad_record topic=%s partition=%d offset=%" PRId64 " error=\"%s\"\n",
                topic, (int)m->partition, m->offset, err);
        return pgs_db_error_record(&s->db, topic, m->partition, m->offset, err, m->payload,
                                   m->payload ? m->len : 0, errstr, errlen);
    }
    return 0;
}

/* The batch in one transaction with its offsets, then the Kafka commit. */
static int flush(sink_t *s, char *errstr, size_t errlen)
{
    char ignore[256];
    double t0 = now_ms();
    long e0 = s->st->entries, d0 = s->st->duplicates, c0 = s->st->conflicts,
         b0 = s->st->balances, x0 = s->st->dead_letters, r0 = s->st->errors;
    rd_kafka_topic_partition_list_t *commit = NULL;
    int rc = -1;

    part_state_t *parts = s->parts;
    if (s->nbatch == 0 || parts == NULL) /* parts: set whenever records come */
        return 0;
    for (size_t i = 0; i < s->nall; i++)
        parts[i].next = -1;
    if (pgs_db_exec(&s->db, "BEGIN", errstr, errlen))
        goto out;
    for (size_t i = 0; i < s->nbatch; i++) {
        rd_kafka_message_t *m = s->batch[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        part_state_t *p = part_of(s, topic, m->partition);
        if (p == NULL)
            continue;
        if (apply_one(s, m, p->topic, errstr, errlen))
            goto rollback;
        p->next = m->offset + 1;
    }
    commit = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < s->nall; i++) {
        part_state_t *p = &parts[i];
        if (p->next < 0)
            continue;
        if (pgs_db_set_offset(&s->db, s->topics[p->topic], p->partition, p->next, errstr,
                              errlen))
            goto rollback;
        rd_kafka_topic_partition_list_add(commit, s->topics[p->topic], p->partition)->offset =
            p->next;
    }
    if (pgs_db_exec(&s->db, "COMMIT", errstr, errlen))
        goto out;
    /* informational: lag monitoring of the sink's group */
    if (commit->cnt > 0)
        rd_kafka_commit(s->rk, commit, 1);
    s->st->batches++;
    s->st->records += (long)s->nbatch;
    fprintf(stderr,
            "sink: batch records=%zu entries=%ld duplicates=%ld conflicts=%ld balances=%ld "
            "dead_letters=%ld bad=%ld ms=%.1f\n",
            s->nbatch, s->st->entries - e0, s->st->duplicates - d0, s->st->conflicts - c0,
            s->st->balances - b0, s->st->dead_letters - x0, s->st->errors - r0, now_ms() - t0);
    rc = 0;
    goto out;
rollback:
    pgs_db_exec(&s->db, "ROLLBACK", ignore, sizeof ignore);
out:
    if (commit)
        rd_kafka_topic_partition_list_destroy(commit);
    for (size_t i = 0; i < s->nbatch; i++)
        rd_kafka_message_destroy(s->batch[i]);
    s->nbatch = 0;
    return rc;
}

/* Consumer, topics, partitions at the database's offsets. 0 or -1. */
static int start(sink_t *s, char *errstr, size_t errlen)
{
    const rs_config_t *cfg = s->o->cfg;
    char group[256], err[512];
    const char *bad = NULL;
    snprintf(group, sizeof group, "%s.sink", cfg->group_id);
    const rs_config_kafka_t settings[] = {
        {"group.id", s->o->group_id ? s->o->group_id : group}, /* commits only; never joined */
        {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {NULL, NULL}};
    rs_kafka_client_opts_t ko = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    int rc = -1;

    ko.role = RS_KAFKA_ROLE_CONSUMER;
    ko.settings = settings;
    ko.props = cfg->kafka;
    ko.nprops = cfg->n_kafka;
    if (rs_kafka_conf_new(&conf, &ko, &bad, err, sizeof err)) {
        snprintf(errstr, errlen, "kafka config %s: %s", bad ? bad : "?", err);
        return -1;
    }
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (s->rk == NULL) {
        snprintf(errstr, errlen, "consumer: %s", err);
        return -1;
    }
    s->topics[T_JOURNAL] = cfg->topics[RS_CONFIG_TOPIC_JOURNAL];
    s->topics[T_BALANCES] = cfg->topics[RS_CONFIG_TOPIC_BALANCES];
    s->topics[T_DLQ] = cfg->topics[RS_CONFIG_TOPIC_DLQ];
    for (int t = 0; t < T_COUNT; t++) {
        s->nparts[t] = rs_kafka_partition_count(s->rk, s->topics[t], 10000);
        if (s->nparts[t] <= 0) {
            snprintf(errstr, errlen, "topic %s: %s", s->topics[t],
                     s->nparts[t] == 0 ? "missing" : "no metadata (is the cluster reachable?)");
            return -1;
        }
        s->nall += (size_t)s->nparts[t];
    }
    s->parts = calloc(s->nall, sizeof(*s->parts));
    list = rd_kafka_topic_partition_list_new((int)s->nall);
    if (s->parts == NULL || list == NULL) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    size_t k = 0;
    long from_db = 0;
    for (int t = 0; t < T_COUNT; t++)
        for (int32_t p = 0; p < s->nparts[t]; p++, k++) {
            int64_t off = pgs_db_offset(&s->db, s->topics[t], p, errstr, errlen);
            if (off == -2)
                goto out;
            s->parts[k].topic = t;
            s->parts[k].partition = p;
            from_db += off >= 0;
            rd_kafka_topic_partition_list_add(list, s->topics[t], p)->offset =
                off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
        }
    if (rd_kafka_assign(s->rk, list)) {
        snprintf(errstr, errlen, "assign failed");
        goto out;
    }
    fprintf(stderr,
            "sink: started journal=%s balances=%s dlq=%s partitions=%zu "
            "resumed_from_database=%ld\n",
            s->topics[T_JOURNAL], s->topics[T_BALANCES], s->topics[T_DLQ], s->nall, from_db);
    rc = 0;
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

int rs_pgsink_run(const rs_pgsink_opts_t *o, rs_pgsink_stats_t *stats, char *errstr,
                  size_t errlen)
{
    sink_t s;
    int rc = 1;
    double first = 0;
    memset(&s, 0, sizeof s);
    memset(stats, 0, sizeof(*stats));
    s.o = o;
    s.st = stats;
    long cap = o->batch_records > 0 ? o->batch_records : 1;
    s.batch = calloc((size_t)cap, sizeof(*s.batch));
    if (s.batch == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return 1;
    }
    if (pgs_db_open(&s.db, o->conninfo, errstr, errlen) ||
        pgs_db_prepare(&s.db, errstr, errlen) || rs_output_reader_new(&s.dec, errstr, errlen) ||
        rs_entry_reader_new(&s.er, errstr, errlen) || start(&s, errstr, errlen))
        goto out;
    rc = 2;
    for (;;) {
        int stopping = o->stop && *o->stop;
        if (!stopping && s.nbatch < (size_t)cap) {
            int wait = 100;
            if (s.nbatch > 0) {
                double left = first + (double)o->batch_ms - now_ms();
                wait = left <= 0 ? 0 : (int)left;
            }
            rd_kafka_message_t *m = rd_kafka_consumer_poll(s.rk, wait);
            if (m != NULL) {
                part_state_t *p =
                    m->rkt ? part_of(&s, rd_kafka_topic_name(m->rkt), m->partition) : NULL;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                    if (p && !p->eof) {
                        p->eof = 1;
                        s.neof++;
                    }
                    rd_kafka_message_destroy(m);
                } else if (m->err) {
                    fprintf(stderr, "sink: kafka_error error=\"%s\"\n",
                            rd_kafka_message_errstr(m));
                    int fatal = m->err == RD_KAFKA_RESP_ERR__FATAL;
                    rd_kafka_message_destroy(m);
                    if (fatal) {
                        snprintf(errstr, errlen, "kafka fatal error");
                        goto out;
                    }
                } else {
                    if (p && p->eof) {
                        p->eof = 0;
                        s.neof--;
                    }
                    if (s.nbatch == 0)
                        first = now_ms();
                    s.batch[s.nbatch++] = m;
                }
            }
        }
        int all_eof = s.neof == s.nall;
        if (s.nbatch > 0 && (stopping || s.nbatch >= (size_t)cap || all_eof ||
                             now_ms() - first >= (double)o->batch_ms)) {
            if (flush(&s, errstr, errlen))
                goto out;
        }
        if (stopping || (o->exit_when_idle && all_eof && s.nbatch == 0))
            break;
    }
    rc = 0;
out:
    for (size_t i = 0; i < s.nbatch; i++)
        rd_kafka_message_destroy(s.batch[i]);
    free(s.batch);
    if (s.rk) {
        rd_kafka_consumer_close(s.rk);
        rd_kafka_destroy(s.rk);
    }
    rs_entry_reader_destroy(s.er);
    rs_output_reader_destroy(s.dec);
    pgs_db_close(&s.db);
    free(s.parts);
    return rc;
}
