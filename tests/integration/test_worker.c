/*
 * test_worker — `revstream worker` as a child process against the embedded
 * Kafka broker (rs_mockbroker, in this process).
 *
 * What is checked:
 *   - End to end (Avro in and out, all four topics produced at once, so the
 *     topics interleave however the fetches fall): the per-line balances
 *     computed from the journal topic equal `revstream replay`'s balances
 *     for the same events, and so does the latest snapshot per line on the
 *     balances topic. Entries may differ with the interleaving; balances
 *     may not.
 *   - Duplicates and cross-topic reordering (JSON in and out): the same,
 *     with events produced twice and the topics produced in another order.
 *   - Poison messages on every input topic (garbage bytes, an unknown schema
 *     id, a contract violation), and an event on the wrong topic, land on
 *     the DLQ with the source headers and the original bytes, and the rest
 *     is processed.
 *   - Crash recovery: the events are produced in phases, one topic at a
 *     time, each phase consumed before the next is produced, so every
 *     partition sees the same order in every run and the journal of a clean
 *     run is fully determined. A run killed by fault injection right after
 *     a batch's outputs were acknowledged and before its state commit, and
 *     a run SIGKILLed from outside mid-stream, are restarted on the same
 *     state dir; their journals, deduplicated by entry_id, equal the clean
 *     run's byte for byte, and the duplicates are at most one batch's worth
 *     (exactly the crashed batch's journal records for the injected fault).
 *     The clean run also checks SIGTERM (exit 0 after committing) and the
 *     /metrics and /readyz endpoints.
 *   - A record that cannot be delivered stops the worker with exit status 2
 *     and nothing committed; the restart replays the plan and the journal,
 *     deduplicated by entry_id, gives replay's balances.
 *   - A pending plan (seeded in the store as a crash would leave it) is
 *     replayed in the plan's order, not in arrival order: for two plans
 *     whose orders give different journals, the worker's journal is exactly
 *     the engine's for that order.
 *   - Start-up errors: topics that are not co-partitioned (each count
 *     named), a missing topic, a bad config key; --check masks secrets.
 *
 * No timing is asserted. Every wait has a deadline so a broken build fails
 * instead of hanging; children get PR_SET_PDEATHSIG. Each test has its own
 * broker, temp dir and consumer group.
 *
 * Ownership: each test frees what it creates; temp dirs are removed at the
 * end of a passing test (kept on failure for the logs).
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include <arpa/inet.h>
#include <avro.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rs_avro.h"
#include "rs_codec.h"
#include "rs_mockbroker.h"
#include "rs_pstate.h"
#include "rs_report.h"
#include "rs_state.h"
#include "rs_test_util.h"

#define DEADLINE_S 60
#define NPARTS 4
#define GROUP_TIMEOUTS                                                                         \
    "kafka.session.timeout.ms=3000\nkafka.heartbeat.interval.ms=500\nkafka.log_level=3\n"      \
    "kafka.fetch.wait.max.ms=20\n"

static const char *const in_topics[4] = {"contracts", "invoices", "payments", "usage"};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------ */
/* temp dirs and files                                                      */
/* ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_dir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/rs_worker_test.XXXXXX");
    cr_assert_not_null(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    if (f == NULL) {
        s[0] = '\0';
        return s;
    }
    for (;;) {
        if (cap - n < 4096) {
            cap *= 2;
            s = realloc(s, cap);
            cr_assert_not_null(s);
        }
        size_t got = fread(s + n, 1, cap - n - 1, f);
        if (got == 0)
            break;
        n += got;
    }
    fclose(f);
    s[n] = '\0';
    return s;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------------------ */
/* events                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct evrec {
    char *json;
    int topic; /* 0..3 */
    int is_close;
    char contract_id[RS_ID_MAX];
} evrec_t;

typedef struct evlist {
    evrec_t *v;
    size_t n, cap;
} evlist_t;

static int topic_of(rs_event_type_t t)
{
    const char *name = rs_event_topic(t);
    for (int i = 0; i < 4; i++)
        if (name != NULL && strcmp(name, in_topics[i]) == 0)
            return i;
    cr_assert_fail("event type %d has no topic", (int)t);
    return -1;
}

static void ev_add(evlist_t *l, const char *json)
{
    rs_event_t ev;
    char err[512];

    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err), 0,
                 "test event does not decode: %s: %s", err, json);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        cr_assert_not_null(l->v);
    }
    evrec_t *r = &l->v[l->n++];
    r->json = strdup(json);
    r->topic = topic_of(ev.type);
    r->is_close = ev.type == RS_EV_PERIOD_CLOSED;
    snprintf(r->contract_id, sizeof r->contract_id, "%s", ev.contract_id);
    rs_event_clear(&ev);
}

static void ev_addf(evlist_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ev_addf(evlist_t *l, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ev_add(l, buf);
}

static void ev_free(evlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].json);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* The sample book. It ends with the close of 2026-06, so every contract is
 * recognized through June in the worker as in `replay --through 2026-06`;
 * with final_close == 0 that last close is left out. */
static void load_sample(evlist_t *l, int final_close)
{
    char *text = slurp(RS_SOURCE_DIR "/examples/sample-book.jsonl");
    char *save = NULL;
    cr_assert_neq(text[0], '\0', "cannot read the sample book");
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strspn(line, " \t\r") != strlen(line) &&
            (final_close || strstr(line, "\"close-2026-06\"") == NULL))
            ev_add(l, line);
    free(text);
    cr_assert(!final_close || strstr(l->v[l->n - 1].json, "\"close-2026-06\"") != NULL,
              "the sample book must end with the close of 2026-06");
}

/* A generated book: nc contracts with a ratable line and a usage line, an
 * invoice and a payment each, six months of usage, some amendments and
 * cancellations (whose June usage is then rejected), monthly closes. */
static void gen_book(evlist_t *l, int nc)
{
    for (int i = 0; i < nc; i++) {
        int jpy = i % 5 == 4, day = 1 + i % 27;
        const char *cur = jpy ? "JPY" : "USD";
        long amount = jpy ? 120000 + 1200L * i : 1200 + 12L * i;
        const char *dec = jpy ? "" : ".00";
        ev_addf(
            l,
            "{\"event_id\":\"g-bk-%d\",\"type\":\"contract.booked\",\"contract_id\":"
            "\"G-%04d\",\"occurred_at\":\"2026-01-%02dT09:00:00Z\",\"customer_id\":"
            "\"CUS-%04d\",\"currency\":\"%s\",\"booked_on\":\"2026-01-%02d\",\"lines\":["
            "{\"line_id\":\"L1\",\"product\":\"Plan\",\"recognition\":\"ratable_monthly\","
            "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"%ld%s\"},"
            "{\"line_id\":\"L2\",\"product\":\"API\",\"recognition\":\"usage\",\"start\":"
            "\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"0\",\"unit_price\":\"%s\"}]}",
            i, i, day, i, cur, day, amount, dec, jpy ? "2" : "0.05");
        if (i % 7 == 3)
            ev_addf(
                l,
                "{\"event_id\":\"g-am-%d\",\"type\":\"contract.amended\",\"contract_id\":"
                "\"G-%04d\",\"occurred_at\":\"2026-03-20T10:00:00Z\",\"effective_on\":"
                "\"2026-04-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":\"Plan+\","
                "\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":"
                "\"2026-12-31\",\"amount\":\"%ld%s\"},{\"line_id\":\"L2\",\"product\":\"API\","
                "\"recognition\":\"usage\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\","
                "\"amount\":\"0\",\"unit_price\":\"%s\"}]}",
                i, i, amount * 3 / 2, dec, jpy ? "2" : "0.05");
        if (i % 11 == 5)
            ev_addf(l,
                    "{\"event_id\":\"g-cx-%d\",\"type\":\"contract.cancelled\",\"contract_id\":"
                    "\"G-%04d\",\"occurred_at\":\"2026-05-10T10:00:00Z\",\"effective_on\":"
                    "\"2026-06-01\"}",
                    i, i);
        ev_addf(
            l,
            "{\"event_id\":\"g-inv-%d\",\"type\":\"invoice.issued\",\"contract_id\":"
            "\"G-%04d\",\"occurred_at\":\"2026-01-%02dT10:00:00Z\",\"invoice_id\":\"GI-%d\","
            "\"issued_on\":\"2026-01-%02d\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
            "\"%ld%s\"}]}",
            i, i, day, i, day, amount, dec);
        ev_addf(
            l,
            "{\"event_id\":\"g-pay-%d\",\"type\":\"payment.received\",\"contract_id\":"
            "\"G-%04d\",\"occurred_at\":\"2026-02-%02dT10:00:00Z\",\"payment_id\":\"GP-%d\","
            "\"invoice_id\":\"GI-%d\",\"amount\":\"%ld%s\",\"received_on\":\"2026-02-%02d\"}",
            i, i, day, i, i, amount, dec, day);
        for (int m = 1; m <= 6; m++)
            ev_addf(l,
                    "{\"event_id\":\"g-use-%d-%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                    "\"G-%04d\",\"occurred_at\":\"2026-%02d-15T12:00:00Z\",\"line_id\":\"L2\","
                    "\"quantity\":\"%d\"}",
                    i, m, i, m, 100 + (i * 37 + m * 11) % 900);
    }
    for (int m = 1; m <= 6; m++)
        ev_addf(l,
                "{\"event_id\":\"close-2026-%02d\",\"type\":\"period.closed\",\"occurred_at\":"
                "\"2026-%02d-03T00:00:00Z\",\"period\":\"2026-%02d\"}",
                m, m + 1, m);
}

static void ev_write(const evlist_t *l, const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < l->n; i++)
        fprintf(f, "%s\n", l->v[i].json);
    fclose(f);
}

/* ------------------------------------------------------------------------ */
/* producing                                                                */
/* ------------------------------------------------------------------------ */

typedef struct dr {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} dr_t;

static int g_dr_errors;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        g_dr_errors++;
    dr_t *d = m->_private;
    if (d != NULL) {
        d->done = 1;
        d->err = m->err;
        d->partition = m->partition;
        d->offset = m->offset;
    }
}

static rd_kafka_t *new_producer(const char *bs)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err), 0);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

static rd_kafka_t *new_consumer(const char *bs, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", err, sizeof err), 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    return c;
}

static void flush_ok(rd_kafka_t *p)
{
    cr_assert_eq(rd_kafka_flush(p, DEADLINE_S * 1000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "flush did not finish");
    cr_assert_eq(g_dr_errors, 0, "%d test record(s) not delivered", g_dr_errors);
}

static void produce_one(rd_kafka_t *p, const char *topic, int32_t partition, const char *key,
                        const void *value, size_t len, dr_t *d)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "producev: %s", rd_kafka_err2str(err));
}

/* An Avro cache with the input schemas under their local ids (1..4). */
static rs_avro_cache_t *input_cache(void)
{
    rs_avro_cache_t *c = NULL;
    char err[512];
    cr_assert_eq(rs_avro_cache_new(&c, err, sizeof err), 0, "%s", err);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(rs_avro_cache_add(c, k + 1, rs_avro_schema_json(k), err, sizeof err), 0,
                     "%s", err);
    return c;
}

/* The record value of an event: its JSON line, or Avro with local id. */
static void *event_value(const evrec_t *r, rs_avro_cache_t *avro, size_t *len)
{
    if (avro == NULL) {
        *len = strlen(r->json);
        return strdup(r->json);
    }
    rs_event_t ev;
    char err[512];
    void *buf = NULL;
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(r->json, strlen(r->json), &ev, err, sizeof err), 0);
    cr_assert_eq(rs_avro_encode_event(avro, r->topic + 1, &ev, &buf, len, err, sizeof err), 0,
                 "%s", err);
    rs_event_clear(&ev);
    return buf;
}

/* Produce the events of `topic` (-1: all; closes: every partition of
 * contracts, unkeyed) whose close-ness matches `closes` (-1: any). */
static void produce_events(rd_kafka_t *p, const evlist_t *l, int topic, int closes,
                           rs_avro_cache_t *avro)
{
    for (size_t i = 0; i < l->n; i++) {
        const evrec_t *r = &l->v[i];
        size_t len = 0;
        if ((topic >= 0 && r->topic != topic) || (closes >= 0 && r->is_close != closes))
            continue;
        void *v = event_value(r, avro, &len);
        if (r->is_close)
            for (int32_t part = 0; part < NPARTS; part++)
                produce_one(p, in_topics[0], part, NULL, v, len, NULL);
        else
            produce_one(p, in_topics[r->topic], RD_KAFKA_PARTITION_UA, r->contract_id, v, len,
                        NULL);
        free(v);
        rd_kafka_poll(p, 0);
    }
    flush_ok(p);
}

/* ------------------------------------------------------------------------ */
/* reading topics                                                           */
/* ------------------------------------------------------------------------ */

#define MAX_HDRS 8

typedef struct rec {
    int32_t partition;
    int64_t offset;
    char *key; /* NUL-terminated copy, NULL if none */
    size_t klen;
    unsigned char *val;
    size_t vlen;
    int nh;
    char *hname[MAX_HDRS], *hval[MAX_HDRS];
} rec_t;

typedef struct recs {
    rec_t *v;
    size_t n, cap;
} recs_t;

static int rec_cmp(const void *a, const void *b)
{
    const rec_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static void recs_free(recs_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].val);
        for (int h = 0; h < r->v[i].nh; h++) {
            free(r->v[i].hname[h]);
            free(r->v[i].hval[h]);
        }
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

static const char *hdr(const rec_t *r, const char *name)
{
    for (int h = 0; h < r->nh; h++)
        if (strcmp(r->hname[h], name) == 0)
            return r->hval[h];
    return NULL;
}

/* Every record of each of `n` topics into out[i], sorted by (partition,
 * offset): one consumer reads them all, from the beginning to the end. */
static void read_topics(const char *bs, const char *const *topics, int n, recs_t *out)
{
    rd_kafka_t *c = new_consumer(bs, "rs-test-reader");
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(NPARTS * n);
    int eof = 0;
    double deadline = now_s() + DEADLINE_S;

    for (int t = 0; t < n; t++) {
        memset(&out[t], 0, sizeof out[t]);
        for (int32_t p = 0; p < NPARTS; p++)
            rd_kafka_topic_partition_list_add(tp, topics[t], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    cr_assert_eq(rd_kafka_assign(c, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    while (eof < NPARTS * n) {
        cr_assert(now_s() < deadline, "reading the outputs did not reach their end");
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof++;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            recs_t *o = NULL;
            for (int t = 0; t < n; t++)
                if (strcmp(rd_kafka_topic_name(m->rkt), topics[t]) == 0)
                    o = &out[t];
            cr_assert_not_null(o);
            if (o->n == o->cap) {
                o->cap = o->cap ? o->cap * 2 : 256;
                o->v = realloc(o->v, o->cap * sizeof *o->v);
                cr_assert_not_null(o->v);
            }
            rec_t *r = &o->v[o->n++];
            memset(r, 0, sizeof *r);
            r->partition = m->partition;
            r->offset = m->offset;
            if (m->key != NULL) {
                r->key = strndup(m->key, m->key_len);
                r->klen = m->key_len;
            }
            r->vlen = m->len;
            r->val = malloc(m->len + 1);
            memcpy(r->val, m->payload, m->len);
            r->val[m->len] = '\0';
            rd_kafka_headers_t *hs = NULL;
            if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                const char *name;
                const void *val;
                size_t sz;
                for (size_t i = 0;
                     r->nh < MAX_HDRS && rd_kafka_header_get_all(hs, i, &name, &val, &sz) == 0;
                     i++) {
                    r->hname[r->nh] = strdup(name);
                    r->hval[r->nh] = strndup(val, sz);
                    r->nh++;
                }
            }
        } else {
            cr_assert_fail("reading the outputs: %s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_destroy(c);
    for (int t = 0; t < n; t++)
        qsort(out[t].v, out[t].n, sizeof *out[t].v, rec_cmp);
}

static const char *const out_topics[3] = {"revenue.journal", "revenue.deferred-balances",
                                          "revenue.dlq"};

/* Sum of the high watermarks of topic. */
static int64_t topic_size(rd_kafka_t *rk, const char *topic)
{
    int64_t total = 0;
    for (int32_t p = 0; p < NPARTS; p++) {
        int64_t lo = 0, hi = 0;
        cr_assert_eq(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000), 0);
        total += hi;
    }
    return total;
}

/* ------------------------------------------------------------------------ */
/* Avro outputs                                                             */
/* ------------------------------------------------------------------------ */

typedef struct avdec {
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t val;
} avdec_t;

static void avdec_init(avdec_t *d, rs_avro_schema_kind_t kind)
{
    const char *js = rs_avro_schema_json(kind);
    cr_assert_eq(avro_schema_from_json_length(js, strlen(js), &d->schema), 0, "%s",
                 avro_strerror());
    d->iface = avro_generic_class_from_schema(d->schema);
    cr_assert_not_null(d->iface);
    cr_assert_eq(avro_generic_value_new(d->iface, &d->val), 0);
}

static void avdec_free(avdec_t *d)
{
    avro_value_decref(&d->val);
    avro_value_iface_decref(d->iface);
    avro_schema_decref(d->schema);
}

/* Decode a wire-format record written with local schema id `id`. */
static avro_value_t *avdec_read(avdec_t *d, const rec_t *r, int32_t id)
{
    cr_assert(r->vlen > 5 && r->val[0] == 0, "not Confluent wire format");
    int32_t got = (int32_t)((uint32_t)r->val[1] << 24 | (uint32_t)r->val[2] << 16 |
                            (uint32_t)r->val[3] << 8 | r->val[4]);
    cr_assert_eq(got, id, "schema id %d, want %d", got, id);
    avro_reader_t rd = avro_reader_memory((const char *)r->val + 5, (int64_t)r->vlen - 5);
    avro_value_reset(&d->val);
    cr_assert_eq(avro_value_read(rd, &d->val), 0, "%s", avro_strerror());
    avro_reader_free(rd);
    return &d->val;
}

static void av_field(avro_value_t *rec, const char *name, avro_value_t *f)
{
    cr_assert_eq(avro_value_get_by_name(rec, name, f, NULL), 0, "no field %s", name);
    if (avro_value_get_type(f) == AVRO_UNION) {
        avro_value_t b;
        cr_assert_eq(avro_value_get_current_branch(f, &b), 0);
        *f = b;
    }
}

static const char *av_str(avro_value_t *rec, const char *name)
{
    avro_value_t f;
    const char *s = NULL;
    size_t sz = 0;
    av_field(rec, name, &f);
    if (avro_value_get_type(&f) == AVRO_NULL)
        return NULL;
    cr_assert_eq(avro_value_get_string(&f, &s, &sz), 0, "%s is not a string", name);
    return s;
}

static int64_t av_long(avro_value_t *rec, const char *name)
{
    avro_value_t f;
    int64_t v = 0;
    int32_t i = 0;
    av_field(rec, name, &f);
    if (avro_value_get_type(&f) == AVRO_INT32) {
        cr_assert_eq(avro_value_get_int(&f, &i), 0);
        return i;
    }
    cr_assert_eq(avro_value_get_long(&f, &v), 0, "%s is not a long", name);
    return v;
}

static const void *av_bytes(avro_value_t *rec, const char *name, size_t *len)
{
    avro_value_t f;
    const void *b = NULL;
    av_field(rec, name, &f);
    if (avro_value_get_type(&f) == AVRO_NULL)
        return NULL;
    cr_assert_eq(avro_value_get_bytes(&f, &b, len), 0);
    return b;
}

/* ------------------------------------------------------------------------ */
/* journal -> rs_journal_t                                                  */
/* ------------------------------------------------------------------------ */

static rs_period_t period_of(const char *s)
{
    rs_period_t p = 0;
    cr_assert_eq(rs_period_parse(s, &p), 0, "bad period %s", s);
    return p;
}

static void entry_from_json(const rec_t *r, rs_entry_t *e)
{
    char err[256];
    cr_assert_eq(rs_codec_entry_from_json((const char *)r->val, r->vlen, e, err, sizeof err), 0,
                 "journal record: %s", err);
}

static void entry_from_avro(rs_entry_reader_t *rd, const rec_t *r, rs_entry_t *e)
{
    char err[256];
    cr_assert_eq(rs_codec_entry_from_avro(rd, r->val, r->vlen, e, err, sizeof err), 0,
                 "journal record: %s", err);
}

/* The journal records as entries; also checks the key and entry_id header. */
static void journal_of(const recs_t *recs, int avro, rs_journal_t *j)
{
    rs_entry_reader_t *rd = NULL;
    char err[256];
    if (avro)
        cr_assert_eq(rs_entry_reader_new(&rd, err, sizeof err), 0, "%s", err);
    rs_journal_init(j);
    for (size_t i = 0; i < recs->n; i++) {
        rs_entry_t e;
        if (avro)
            entry_from_avro(rd, &recs->v[i], &e);
        else
            entry_from_json(&recs->v[i], &e);
        cr_assert_not_null(recs->v[i].key);
        cr_assert_str_eq(recs->v[i].key, e.contract_id, "journal key is not the contract_id");
        cr_assert_not_null(hdr(&recs->v[i], "entry_id"));
        cr_assert_str_eq(hdr(&recs->v[i], "entry_id"), e.entry_id);
        cr_assert_eq(rs_journal_append(j, &e), 0);
    }
    rs_entry_reader_destroy(rd);
}

/* ------------------------------------------------------------------------ */
/* the revstream binary                                                     */
/* ------------------------------------------------------------------------ */

static const char *bin(void)
{
    return RS_BINARY_DIR "/revstream";
}

/* Start `revstream ARGS...` with stdout and stderr to files; env "K=V" or NULL. */
static pid_t spawn(char *const argv[], const char *out, const char *err, const char *env)
{
    cr_assert_eq(access(bin(), X_OK), 0, "%s is not built", bin());
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        sigset_t none;
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (o >= 0)
            dup2(o, 1);
        if (e >= 0)
            dup2(e, 2);
        if (env != NULL)
            putenv((char *)env);
        execv(bin(), argv);
        _exit(127);
    }
    return pid;
}

/* Wait for pid; kill it and fail after timeout_s. Returns the wait status. */
static int wait_exit(pid_t pid, int timeout_s, const char *log)
{
    double deadline = now_s() + timeout_s;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
        if (now_s() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            char *l = slurp(log);
            cr_assert_fail("revstream did not exit within %d s; log:\n%s", timeout_s, l);
        }
        usleep(10 * 1000);
    }
    return status;
}

static void assert_exit0(int status, const char *log)
{
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *l = slurp(log);
        cr_assert_fail("revstream worker: status %d (exited %d, signal %d); log:\n%s", status,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                       WIFSIGNALED(status) ? WTERMSIG(status) : 0, l);
    }
}

typedef struct wenv {
    char dir[64];
    char cfg[128];
    char log[128];
    char out[128];
    char state[128];
} wenv_t;

static void wenv_init(wenv_t *w, const char *bs, const char *group, const char *extra)
{
    char text[4096];
    make_dir(w->dir, sizeof w->dir);
    snprintf(w->cfg, sizeof w->cfg, "%s/worker.properties", w->dir);
    snprintf(w->log, sizeof w->log, "%s/worker.log", w->dir);
    snprintf(w->out, sizeof w->out, "%s/worker.out", w->dir);
    snprintf(w->state, sizeof w->state, "%s/state", w->dir);
    snprintf(text, sizeof text,
             "# test worker\nkafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=%s\n"
             "state.sync=false\n" GROUP_TIMEOUTS "%s",
             bs, w->state, group, extra ? extra : "");
    write_file(w->cfg, text);
}

static pid_t worker_start(const wenv_t *w, const char *env)
{
    char *argv[] = {"revstream", "worker", "--config", (char *)w->cfg, NULL};
    return spawn(argv, w->out, w->log, env);
}

/* Run the worker to completion (exit.when.idle=true in its config). */
static void worker_run_idle(const wenv_t *w)
{
    pid_t pid = worker_start(w, NULL);
    assert_exit0(wait_exit(pid, DEADLINE_S, w->log), w->log);
}

static int worker_stop(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    return wait_exit(pid, DEADLINE_S, log);
}

/* Wait until the worker's group has committed offsets at the end of every
 * partition of `topic`; `c` is a consumer handle of the worker's group that
 * never subscribes (it only reads committed offsets). Returns 1, or 0 if
 * the worker exited first (*status). */
static int wait_consumed(rd_kafka_t *c, const char *topic, pid_t pid, int *status,
                         const char *log)
{
    int64_t hwm[NPARTS];
    double deadline = now_s() + DEADLINE_S;

    for (int32_t p = 0; p < NPARTS; p++) {
        int64_t lo = 0;
        cr_assert_eq(rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hwm[p], 10000), 0);
    }
    for (;;) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 0;
        if (now_s() >= deadline) {
            char *l = slurp(log);
            cr_assert_fail("the worker did not consume %s within %d s; log:\n%s", topic,
                           DEADLINE_S, l);
        }
        rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(NPARTS);
        for (int32_t p = 0; p < NPARTS; p++)
            rd_kafka_topic_partition_list_add(tp, topic, p);
        int done = rd_kafka_committed(c, tp, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int32_t p = 0; p < NPARTS && done; p++)
            if (hwm[p] > 0 && tp->elems[p].offset < hwm[p])
                done = 0;
        rd_kafka_topic_partition_list_destroy(tp);
        if (done)
            return 1;
        usleep(10 * 1000);
    }
}

/* `revstream replay` balances for the events, as JSON rows. */
static json_t *replay_balances(const evlist_t *events, const char *dir, const char *through)
{
    char path[160], out[160], err[160];
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    snprintf(out, sizeof out, "%s/replay.out", dir);
    snprintf(err, sizeof err, "%s/replay.err", dir);
    ev_write(events, path);
    char *argv[] = {"revstream", "replay",   path,       "--through", (char *)through,
                    "--report",  "balances", "--format", "json",      NULL};
    int status = wait_exit(spawn(argv, out, err, NULL), DEADLINE_S, err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) <= 2, "replay failed");
    char *text = slurp(out);
    json_error_t jerr;
    json_t *rows = json_loads(text, 0, &jerr);
    cr_assert(json_is_array(rows), "replay output is not a JSON array: %s", jerr.text);
    free(text);
    return rows;
}

static const char *row_str(json_t *row, const char *k)
{
    const char *s = json_string_value(json_object_get(row, k));
    cr_assert_not_null(s, "replay row has no %s", k);
    return s;
}

/* The balances computed from the worker's journal (with the line list of an
 * engine that replayed the same events) equal replay's, row for row. */
static void check_journal_balances(const evlist_t *events, const rs_journal_t *j, json_t *rows)
{
    rs_harness_t h;
    rs_balance_row_t *b = NULL;
    size_t n = 0;
    char m[5][48];

    rs_harness_init(&h, NULL);
    for (size_t i = 0; i < events->n; i++)
        rs_harness_apply(&h, events->v[i].json);
    cr_assert_eq(rs_report_balances(h.engine, j, period_of("2099-12"), &b, &n), 0);
    cr_assert_eq(n, json_array_size(rows), "%zu balance rows from the journal, replay has %zu",
                 n, json_array_size(rows));
    cr_assert(n > 0);
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(rows, i);
        cr_assert_str_eq(b[i].contract_id, row_str(row, "contract_id"));
        cr_assert_str_eq(b[i].line_id, row_str(row, "line_id"));
        rs_money_format(b[i].billed, b[i].exponent, m[0], 48);
        rs_money_format(b[i].recognized, b[i].exponent, m[1], 48);
        rs_money_format(b[i].deferred, b[i].exponent, m[2], 48);
        rs_money_format(b[i].unbilled, b[i].exponent, m[3], 48);
        rs_money_format(b[i].received, b[i].exponent, m[4], 48);
        static const char *const keys[5] = {"billed", "recognized", "deferred", "unbilled",
                                            "received"};
        for (int k = 0; k < 5; k++)
            cr_assert_str_eq(m[k], row_str(row, keys[k]), "%s/%s %s: journal %s, replay %s",
                             b[i].contract_id, b[i].line_id, keys[k], m[k],
                             row_str(row, keys[k]));
    }
    free(b);
    rs_harness_free(&h);
}

/* The latest line snapshot per key on the balances topic equals replay's
 * row for every line (and there is one for every line). */
static void check_snapshots(const recs_t *bal, int avro, json_t *rows)
{
    avdec_t d;
    if (avro)
        avdec_init(&d, RS_AVRO_SCHEMA_DEFERRED_BALANCE);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        char key[300];
        const rec_t *last = NULL;
        snprintf(key, sizeof key, "%s/line/%s", row_str(row, "contract_id"),
                 row_str(row, "line_id"));
        for (size_t k = 0; k < bal->n; k++)
            if (bal->v[k].key != NULL && strcmp(bal->v[k].key, key) == 0)
                last = &bal->v[k]; /* one key, one partition: sorted by offset */
        cr_assert_not_null(last, "no balance snapshot for %s", key);
        static const char *const keys[5] = {"billed", "recognized", "deferred", "unbilled",
                                            "received"};
        for (int k = 0; k < 5; k++) {
            char m[48];
            if (avro) {
                avro_value_t *v = avdec_read(&d, last, 6);
                cr_assert_str_eq(av_str(v, "snapshot_key"), key);
                cr_assert_str_eq(av_str(v, "scope"), "line");
                rs_money_format(av_long(v, keys[k]), (int)av_long(v, "exponent"), m, sizeof m);
            } else {
                json_t *o = json_loadb((const char *)last->val, last->vlen, 0, NULL);
                cr_assert_not_null(o);
                cr_assert_str_eq(json_string_value(json_object_get(o, "scope")), "line");
                snprintf(m, sizeof m, "%s", json_string_value(json_object_get(o, keys[k])));
                json_decref(o);
            }
            cr_assert_str_eq(m, row_str(row, keys[k]), "snapshot %s %s: %s, replay %s", key,
                             keys[k], m, row_str(row, keys[k]));
        }
    }
    if (avro)
        avdec_free(&d);
}

static long log_number(const char *log, const char *prefix, const char *key, int first);

/* ------------------------------------------------------------------------ */
/* end to end                                                               */
/* ------------------------------------------------------------------------ */

static void run_sample(int avro, int reorder)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512], extra[256];
    evlist_t events = {0};
    wenv_t w;
    recs_t journal, bal, dlq;
    rs_journal_t j;
    rs_avro_cache_t *cache = avro ? input_cache() : NULL;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    load_sample(&events, 1);
    snprintf(extra, sizeof extra, "exit.when.idle=true\ninput.format=%s\noutput.format=%s\n",
             avro ? "avro" : "json", avro ? "avro" : "json");
    wenv_init(&w, bs, avro ? "g-e2e-avro" : "g-e2e-json", extra);

    rd_kafka_t *p = new_producer(bs);
    if (!reorder) {
        produce_events(p, &events, -1, -1, cache);
    } else {
        /* usage first, contracts last; every payment and usage event twice */
        static const int order[4] = {3, 2, 1, 0};
        for (int k = 0; k < 4; k++) {
            produce_events(p, &events, order[k], -1, cache);
            if (order[k] == 2 || order[k] == 3)
                produce_events(p, &events, order[k], -1, cache);
        }
    }
    rd_kafka_destroy(p);

    worker_run_idle(&w);
    recs_t outs[3];
    read_topics(bs, out_topics, 3, outs);
    journal = outs[0];
    bal = outs[1];
    dlq = outs[2];
    cr_assert(journal.n > 50, "only %zu journal records", journal.n);
    journal_of(&journal, avro, &j);

    /* Each entry once: ids are unique and per contract 1..n without gaps. */
    json_t *seen = json_object();
    for (size_t i = 0; i < j.n; i++) {
        cr_assert_null(json_object_get(seen, j.entries[i].entry_id), "entry %s twice",
                       j.entries[i].entry_id);
        json_object_set_new(seen, j.entries[i].entry_id, json_true());
    }
    for (size_t i = 0; i < j.n; i++) {
        const char *hash = strrchr(j.entries[i].entry_id, '#');
        cr_assert_not_null(hash);
        long seq = strtol(hash + 1, NULL, 10);
        if (seq > 1) {
            char prev[RS_ID_MAX + 24];
            snprintf(prev, sizeof prev, "%s#%ld", j.entries[i].contract_id, seq - 1);
            cr_assert_not_null(json_object_get(seen, prev), "%s has no predecessor",
                               j.entries[i].entry_id);
        }
    }
    json_decref(seen);

    json_t *rows = replay_balances(&events, w.dir, "2026-06");
    check_journal_balances(&events, &j, rows);
    check_snapshots(&bal, avro, rows);

    /* The sample's one bad event is dead-lettered, nothing else. Sent twice
     * (reorder), it is refused twice if its invoice came first; if it came
     * first, it waits, its copy is a duplicate of a waiting event, and it is
     * refused once when the invoice arrives. */
    if (dlq.n < 1 || dlq.n > (reorder ? 2u : 1u))
        for (size_t k = 0; k < dlq.n; k++)
            fprintf(stderr, "dead letter %zu: %s: %s\n", k, hdr(&dlq.v[k], "source.topic"),
                    hdr(&dlq.v[k], "error"));
    cr_assert(dlq.n >= 1 && dlq.n <= (reorder ? 2u : 1u), "%zu dead letters", dlq.n);
    for (size_t k = 0; k < dlq.n; k++) {
        cr_assert_str_eq(hdr(&dlq.v[k], "source.topic"), "payments");
        cr_assert_not_null(strstr(hdr(&dlq.v[k], "error"), "pay-1005-04-raw"));
    }

    char *log = slurp(w.log);
    cr_assert_not_null(strstr(log, "worker: stopping reason=idle"), "%s", log);
    long dups = log_number(log, "worker: stopped ", "duplicates", 0);
    cr_log_info("duplicates=%ld", dups);
    /* the book's own duplicate; with reordering also every second copy of
     * the 20 payments and 11 usage events but the rejected one, unless it
     * waited for its invoice (one dead letter): then its copy is one too */
    cr_assert_eq(dups, reorder ? (dlq.n == 1 ? 32 : 31) : 1, "%s", log);
    free(log);

    json_decref(rows);
    rs_journal_free(&j);
    recs_free(&journal);
    recs_free(&bal);
    recs_free(&dlq);
    ev_free(&events);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    rm_rf(w.dir);
}

Test(worker, end_to_end_avro_balances_equal_replay, .timeout = 120)
{
    run_sample(1, 0);
}

Test(worker, duplicates_and_reordered_topics_json, .timeout = 120)
{
    run_sample(0, 1);
}

/* ------------------------------------------------------------------------ */
/* poison messages                                                          */
/* ------------------------------------------------------------------------ */

typedef struct poison {
    int topic;
    const char *key;
    unsigned char value[512];
    size_t len;
    const char *want_error;
    dr_t dr;
} poison_t;

Test(worker, poison_messages_go_to_the_dlq, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512];
    evlist_t events = {0}, later = {0};
    wenv_t w;
    recs_t dlq, journal;
    rs_avro_cache_t *cache = input_cache();
    poison_t ps[13];
    int np = 0;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    load_sample(&events, 1);
    wenv_init(&w, bs, "g-poison", "exit.when.idle=true\n");

    /* Run 1: the sample book, so every contract below is known. */
    rd_kafka_t *p = new_producer(bs);
    produce_events(p, &events, -1, -1, cache);
    worker_run_idle(&w);

    /* The violations: well-formed events the engine refuses. */
    ev_add(&later, "{\"event_id\":\"bad-bk\",\"type\":\"contract.booked\",\"contract_id\":"
                   "\"C-3001\",\"occurred_at\":\"2026-06-01T09:00:00Z\",\"customer_id\":\"X\","
                   "\"currency\":\"USD\",\"booked_on\":\"2026-06-01\",\"lines\":[{\"line_id\":"
                   "\"L1\",\"product\":\"P\",\"recognition\":\"ratable_daily\",\"start\":"
                   "\"2026-06-01\",\"end\":\"2026-06-30\",\"amount\":\"10.001\"}]}");
    ev_add(&later,
           "{\"event_id\":\"bad-inv\",\"type\":\"invoice.issued\",\"contract_id\":"
           "\"C-1001\",\"occurred_at\":\"2026-06-02T09:00:00Z\",\"invoice_id\":\"BAD-1\","
           "\"issued_on\":\"2026-06-02\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
           "\"1.005\"}]}");
    ev_add(&later,
           "{\"event_id\":\"bad-pay\",\"type\":\"payment.received\",\"contract_id\":"
           "\"C-1001\",\"occurred_at\":\"2026-06-03T09:00:00Z\",\"payment_id\":\"BP-1\","
           "\"invoice_id\":\"INV-1001\",\"amount\":\"0.001\",\"received_on\":"
           "\"2026-06-03\"}");
    ev_add(&later, "{\"event_id\":\"bad-use\",\"type\":\"usage.recorded\",\"contract_id\":"
                   "\"C-1003\",\"occurred_at\":\"2027-03-01T00:00:00Z\",\"line_id\":\"L1\","
                   "\"quantity\":\"5\"}");
    /* And good events after them on every topic: a new contract. */
    evlist_t good = {0};
    ev_add(&good,
           "{\"event_id\":\"ok-bk\",\"type\":\"contract.booked\",\"contract_id\":"
           "\"C-2001\",\"occurred_at\":\"2026-06-01T09:00:00Z\",\"customer_id\":\"CUS-NEW\","
           "\"currency\":\"USD\",\"booked_on\":\"2026-06-01\",\"lines\":[{\"line_id\":"
           "\"L1\",\"product\":\"P\",\"recognition\":\"ratable_daily\",\"start\":"
           "\"2026-06-01\",\"end\":\"2026-06-30\",\"amount\":\"300.00\"},{\"line_id\":"
           "\"L2\",\"product\":\"U\",\"recognition\":\"usage\",\"start\":\"2026-06-01\","
           "\"end\":\"2026-06-30\",\"amount\":\"0\",\"unit_price\":\"0.50\"}]}");
    ev_add(&good,
           "{\"event_id\":\"ok-inv\",\"type\":\"invoice.issued\",\"contract_id\":"
           "\"C-2001\",\"occurred_at\":\"2026-06-01T10:00:00Z\",\"invoice_id\":\"NEW-1\","
           "\"issued_on\":\"2026-06-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
           "\"300.00\"}]}");
    ev_add(&good,
           "{\"event_id\":\"ok-pay\",\"type\":\"payment.received\",\"contract_id\":"
           "\"C-2001\",\"occurred_at\":\"2026-06-05T10:00:00Z\",\"payment_id\":\"NP-1\","
           "\"invoice_id\":\"NEW-1\",\"amount\":\"300.00\",\"received_on\":\"2026-06-05\"}");
    ev_add(&good, "{\"event_id\":\"ok-use\",\"type\":\"usage.recorded\",\"contract_id\":"
                  "\"C-2001\",\"occurred_at\":\"2026-06-10T10:00:00Z\",\"line_id\":\"L2\","
                  "\"quantity\":\"40\"}");

    for (int t = 0; t < 4; t++) {
        const char *key = t == 0 ? "C-3001" : "C-1001";
        /* garbage bytes */
        poison_t *x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = t;
        x->key = key;
        memcpy(x->value, "\x07garbage\xff\xfe", 10);
        x->len = 10;
        x->want_error = "magic byte";
        /* an unknown schema id (999) */
        x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = t;
        x->key = key;
        memcpy(x->value, "\x00\x00\x00\x03\xe7\x02\x04\x06", 8);
        x->len = 8;
        x->want_error = "unknown schema id 999";
        /* the contract violation, properly encoded */
        x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = t;
        x->key = key;
        size_t len = 0;
        void *v = event_value(&later.v[t], cache, &len);
        cr_assert(len <= sizeof x->value);
        memcpy(x->value, v, len);
        x->len = len;
        free(v);
        x->want_error = t == 0   ? "event bad-bk: "
                        : t == 1 ? "event bad-inv: "
                        : t == 2 ? "event bad-pay: "
                                 : "event bad-use: ";
    }
    {
        /* a valid invoice on the payments topic */
        poison_t *x = &ps[np++];
        size_t len = 0;
        memset(x, 0, sizeof *x);
        x->topic = 2;
        x->key = "C-2001";
        void *v = event_value(&good.v[1], cache, &len);
        cr_assert(len <= sizeof x->value);
        memcpy(x->value, v, len);
        x->len = len;
        free(v);
        x->want_error = "event ok-inv: type: invoice.issued belongs on the invoices topic, not "
                        "payments";
    }
    for (int i = 0; i < np; i++)
        produce_one(p, in_topics[ps[i].topic], RD_KAFKA_PARTITION_UA, ps[i].key, ps[i].value,
                    ps[i].len, &ps[i].dr);
    flush_ok(p);
    produce_events(p, &good, -1, -1, cache);
    rd_kafka_destroy(p);

    /* Run 2: restarts from the store, meets the poison, goes on. */
    worker_run_idle(&w);

    recs_t outs[3];
    read_topics(bs, out_topics, 3, outs);
    journal = outs[0];
    recs_free(&outs[1]);
    dlq = outs[2];
    cr_assert_eq(dlq.n, 1 + (size_t)np, "%zu dead letters, want %d", dlq.n, 1 + np);
    avdec_t d;
    avdec_init(&d, RS_AVRO_SCHEMA_DEAD_LETTER);
    for (int i = 0; i < np; i++) {
        const rec_t *r = NULL;
        char part[16], off[32];
        cr_assert(ps[i].dr.done && ps[i].dr.err == 0);
        snprintf(part, sizeof part, "%d", (int)ps[i].dr.partition);
        snprintf(off, sizeof off, "%lld", (long long)ps[i].dr.offset);
        for (size_t k = 0; k < dlq.n; k++)
            if (strcmp(hdr(&dlq.v[k], "source.topic"), in_topics[ps[i].topic]) == 0 &&
                strcmp(hdr(&dlq.v[k], "source.partition"), part) == 0 &&
                strcmp(hdr(&dlq.v[k], "source.offset"), off) == 0)
                r = &dlq.v[k];
        cr_assert_not_null(r, "no dead letter for %s[%s]@%s", in_topics[ps[i].topic], part,
                           off);
        cr_assert_not_null(strstr(hdr(r, "error"), ps[i].want_error), "error header: %s",
                           hdr(r, "error"));
        cr_assert_str_eq(r->key, ps[i].key, "a dead letter keeps the source key");
        /* The value is a DeadLetter record with the original bytes. */
        avro_value_t *v = avdec_read(&d, r, 7);
        size_t blen = 0;
        const void *orig = av_bytes(v, "value", &blen);
        cr_assert_str_eq(av_str(v, "topic"), in_topics[ps[i].topic]);
        cr_assert_eq(av_long(v, "partition"), ps[i].dr.partition);
        cr_assert_eq(av_long(v, "offset"), ps[i].dr.offset);
        cr_assert_not_null(strstr(av_str(v, "error"), ps[i].want_error));
        cr_assert_eq(blen, ps[i].len);
        cr_assert_eq(memcmp(orig, ps[i].value, blen), 0, "dead letter value differs");
        const void *okey = av_bytes(v, "key", &blen);
        cr_assert_eq(blen, strlen(ps[i].key));
        cr_assert_eq(memcmp(okey, ps[i].key, blen), 0);
        cr_assert(av_long(v, "timestamp") > 0);
    }
    avdec_free(&d);

    /* The rest went through: balances with the good events equal replay's
     * (for replay, before the final close, so it recognizes them in June). */
    evlist_t all = {0};
    load_sample(&all, 0);
    for (size_t i = 0; i < good.n; i++)
        ev_add(&all, good.v[i].json);
    ev_add(&all, events.v[events.n - 1].json);
    ev_free(&events);
    events = all;
    rs_journal_t j;
    journal_of(&journal, 1, &j);
    json_t *rows = replay_balances(&events, w.dir, "2026-06");
    check_journal_balances(&events, &j, rows);
    int found = 0;
    for (size_t i = 0; i < j.n; i++)
        found |= strcmp(j.entries[i].contract_id, "C-2001") == 0;
    cr_assert(found, "no entry for the contract booked after the poison");

    char *log = slurp(w.log);
    cr_assert_not_null(strstr(log, "dead_letter topic=usage"), "%s", log);
    free(log);

    json_decref(rows);
    rs_journal_free(&j);
    recs_free(&journal);
    recs_free(&dlq);
    ev_free(&events);
    ev_free(&later);
    ev_free(&good);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    rm_rf(w.dir);
}

/* ------------------------------------------------------------------------ */
/* crash recovery                                                           */
/* ------------------------------------------------------------------------ */

typedef struct run_result {
    recs_t journal, bal, dlq;
    /* the crash run */
    size_t kill_dups;          /* duplicates in the journal after the SIGKILL's recovery */
    long kill_replay_records;  /* records its plan replays took */
    long kill_replay_entries;  /* journal entries of the batches that replayed them */
    long kill_restart_records; /* records that restart took through the killed phase */
    long fault_journal;        /* journal records of the batch the fault killed */
    int fault_replayed;        /* the restart after the fault replayed a plan */
    /* the clean run: /metrics and /readyz before SIGTERM */
    char metrics[16384];
    char readyz[256];
} run_result_t;

static size_t curl_sink(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    char *buf = opaque;
    size_t used = strlen(buf), n = size * nmemb;
    if (used + n >= 16384)
        n = 16384 - used - 1;
    memcpy(buf + used, ptr, n);
    buf[used + n] = '\0';
    return size * nmemb;
}

/* GET path; buf must hold 16384 bytes. Returns the HTTP status (0: none). */
static long http_get(int port, const char *path, char *buf)
{
    char url[128];
    long code = 0;
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    buf[0] = '\0';
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The number after " key=" on the first (or last) line of log that starts
 * with prefix; -1 if none. */
static long log_number(const char *log, const char *prefix, const char *key, int first)
{
    const char *p = log, *hit = NULL;
    while ((p = strstr(p, prefix)) != NULL) {
        hit = p;
        if (first)
            break;
        p++;
    }
    if (hit == NULL)
        return -1;
    const char *eol = strchr(hit, '\n');
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *v = strstr(hit, k);
    if (v == NULL || (eol != NULL && v > eol))
        return -1;
    return strtol(v + strlen(k), NULL, 10);
}

/* Over the log of a restarted worker: the records its plan replays took
 * (*replayed) and the journal entries of the batches that replayed a plan
 * (*entries). */
static void replay_totals(const char *log, long *replayed, long *entries)
{
    int pending = 0;
    *replayed = *entries = 0;
    for (const char *line = log; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "worker: plan_replay ", 20) == 0) {
            *replayed += log_number(line, "worker: plan_replay ", "records", 1);
            pending = 1;
        } else if (strncmp(line, "worker: batch ", 14) == 0 && pending) {
            *entries += log_number(line, "worker: batch ", "entries", 1);
            pending = 0;
        }
    }
}

/* The sum of " key=" over every line of log that starts with prefix. */
static long log_sum(const char *log, const char *prefix, const char *key)
{
    long sum = 0;
    for (const char *p = strstr(log, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        long v = log_number(p, prefix, key, 1);
        if (v > 0)
            sum += v;
    }
    return sum;
}

static void consume_phase(rd_kafka_t *watch, int topic, pid_t pid, const wenv_t *w)
{
    int status = 0;
    if (!wait_consumed(watch, in_topics[topic], pid, &status, w->log)) {
        char *l = slurp(w->log);
        cr_assert_fail("worker exited (status %d) while consuming %s; log:\n%s", status,
                       in_topics[topic], l);
    }
}

static size_t log_size(const wenv_t *w)
{
    char *l = slurp(w->log);
    size_t n = strlen(l);
    free(l);
    return n;
}

/* entry_id -> index of its first record. */
static json_t *by_entry_id(const recs_t *j)
{
    json_t *m = json_object();
    for (size_t i = 0; i < j->n; i++) {
        const char *id = hdr(&j->v[i], "entry_id");
        cr_assert_not_null(id);
        if (json_object_get(m, id) == NULL)
            json_object_set_new(m, id, json_integer((json_int_t)i));
    }
    return m;
}

static size_t journal_dups(const char *bs)
{
    recs_t j;
    read_topics(bs, out_topics, 1, &j);
    json_t *m = by_entry_id(&j);
    size_t dups = j.n - json_object_size(m);
    json_decref(m);
    recs_free(&j);
    return dups;
}

/* Produce the book phase by phase — contracts, invoices, payments, usage,
 * closes — each consumed before the next. With `crash`: SIGKILL the worker
 * while it streams the invoices (once the journal grew), restart it; stop
 * it before the usage phase and restart it with a fault that kills it after
 * its 3rd batch's outputs are acknowledged, before the commit; restart. */
static void phased_run(const evlist_t *events, int crash, run_result_t *res)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512], extra[256];
    const char *group = crash ? "g-crash" : "g-clean";
    int port = free_port(), status = 0;
    wenv_t w;
    rs_avro_cache_t *cache = input_cache();

    memset(res, 0, sizeof *res);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    snprintf(extra, sizeof extra, "batch.max.records=50\nmetrics.port=%d\n", port);
    wenv_init(&w, bs, group, extra);
    rd_kafka_t *p = new_producer(bs);
    rd_kafka_t *watch = new_consumer(bs, group); /* reads the group's committed offsets */

    pid_t pid = worker_start(&w, NULL);
    produce_events(p, events, 0, 0, cache);
    consume_phase(watch, 0, pid, &w);

    if (crash) {
        int64_t before = topic_size(watch, "revenue.journal");
        double deadline = now_s() + DEADLINE_S;
        produce_events(p, events, 1, 0, cache);
        while (topic_size(watch, "revenue.journal") < before + 60) {
            cr_assert(now_s() < deadline, "the journal did not grow");
            usleep(1000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        size_t mark = log_size(&w);
        pid = worker_start(&w, NULL);
        consume_phase(watch, 1, pid, &w);
        char *l = slurp(w.log);
        replay_totals(l + mark, &res->kill_replay_records, &res->kill_replay_entries);
        res->kill_restart_records = log_sum(l + mark, "worker: batch ", "records");
        free(l);
        res->kill_dups = journal_dups(bs);
    } else {
        produce_events(p, events, 1, 0, cache);
        consume_phase(watch, 1, pid, &w);
    }
    produce_events(p, events, 2, 0, cache);
    consume_phase(watch, 2, pid, &w);

    if (crash) {
        assert_exit0(worker_stop(pid, w.log), w.log);
        produce_events(p, events, 3, 0, cache);
        size_t mark = log_size(&w);
        pid = worker_start(&w, "RS_WORKER_CRASH_AFTER_BATCHES=3");
        status = wait_exit(pid, DEADLINE_S, w.log);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the faulty worker should have killed itself (status %d)", status);
        char *l = slurp(w.log);
        res->fault_journal = log_number(l + mark, "worker: fault ", "journal", 1);
        cr_assert(res->fault_journal >= 0, "no fault line in the log:\n%s", l + mark);
        mark = strlen(l);
        free(l);
        pid = worker_start(&w, NULL);
        consume_phase(watch, 3, pid, &w);
        l = slurp(w.log);
        res->fault_replayed = strstr(l + mark, "worker: plan_replay ") != NULL;
        free(l);
    } else {
        produce_events(p, events, 3, 0, cache);
        consume_phase(watch, 3, pid, &w);
    }
    produce_events(p, events, 0, 1, cache); /* the closes */
    consume_phase(watch, 0, pid, &w);

    if (!crash) {
        cr_assert_eq(http_get(port, "/readyz", res->readyz), 200, "%s", res->readyz);
        cr_assert_eq(http_get(port, "/metrics", res->metrics), 200);
    }
    size_t mark = log_size(&w);
    assert_exit0(worker_stop(pid, w.log), w.log);
    char *l = slurp(w.log);
    cr_assert_not_null(strstr(l + mark, "worker: stopping reason=signal"), "%s", l + mark);
    free(l);

    rd_kafka_destroy(watch);
    rd_kafka_destroy(p);
    recs_t outs[3];
    read_topics(bs, out_topics, 3, outs);
    res->journal = outs[0];
    res->bal = outs[1];
    res->dlq = outs[2];
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    rm_rf(w.dir);
}

static void run_result_free(run_result_t *r)
{
    recs_free(&r->journal);
    recs_free(&r->bal);
    recs_free(&r->dlq);
}

/* The crashed run's journal, deduplicated by entry_id, is the clean run's:
 * same ids, same key, same partition, same bytes; every duplicate is
 * byte-identical to the clean run's record. Returns the duplicates. */
static size_t compare_journals(const recs_t *clean, const recs_t *crashed)
{
    json_t *cm = by_entry_id(clean), *xm = by_entry_id(crashed);
    size_t dups = 0;

    cr_assert_eq(json_object_size(cm), clean->n, "the clean run has duplicates");
    for (size_t i = 0; i < crashed->n; i++) {
        const rec_t *r = &crashed->v[i];
        const char *id = hdr(r, "entry_id");
        size_t first = (size_t)json_integer_value(json_object_get(xm, id));
        json_t *ci = json_object_get(cm, id);
        cr_assert_not_null(ci, "entry %s is not in the clean run's journal", id);
        const rec_t *c = &clean->v[json_integer_value(ci)];
        cr_assert_str_eq(r->key, c->key);
        cr_assert(r->vlen == c->vlen && memcmp(r->val, c->val, r->vlen) == 0,
                  "entry %s differs from the clean run's", id);
        cr_assert_eq(r->partition, c->partition);
        if (first != i)
            dups++;
    }
    cr_assert_eq(json_object_size(xm), json_object_size(cm),
                 "%zu distinct entries after the crash, %zu in the clean run",
                 json_object_size(xm), json_object_size(cm));
    json_decref(cm);
    json_decref(xm);
    return dups;
}

/* The latest snapshot per key is the same in both runs. */
static void compare_snapshots(const recs_t *a, const recs_t *b)
{
    json_t *ma = json_object(), *mb = json_object();
    for (size_t i = 0; i < a->n; i++)
        json_object_set_new(ma, a->v[i].key, json_integer((json_int_t)i));
    for (size_t i = 0; i < b->n; i++)
        json_object_set_new(mb, b->v[i].key, json_integer((json_int_t)i));
    cr_assert_eq(json_object_size(ma), json_object_size(mb));
    const char *k;
    json_t *v;
    json_object_foreach(ma, k, v)
    {
        json_t *o = json_object_get(mb, k);
        cr_assert_not_null(o, "no snapshot for %s", k);
        const rec_t *x = &a->v[json_integer_value(v)], *y = &b->v[json_integer_value(o)];
        cr_assert(x->vlen == y->vlen && memcmp(x->val, y->val, x->vlen) == 0,
                  "latest snapshot of %s differs", k);
    }
    json_decref(ma);
    json_decref(mb);
}

/* The dead letters, deduplicated by source and error, are the same. */
static void compare_dlq(const recs_t *a, const recs_t *b)
{
    json_t *ma = json_object(), *mb = json_object();
    char k[512];
    for (size_t i = 0; i < a->n; i++) {
        snprintf(k, sizeof k, "%s|%s|%s|%s", hdr(&a->v[i], "source.topic"),
                 hdr(&a->v[i], "source.partition"), hdr(&a->v[i], "source.offset"),
                 hdr(&a->v[i], "error"));
        json_object_set_new(ma, k, json_true());
    }
    for (size_t i = 0; i < b->n; i++) {
        snprintf(k, sizeof k, "%s|%s|%s|%s", hdr(&b->v[i], "source.topic"),
                 hdr(&b->v[i], "source.partition"), hdr(&b->v[i], "source.offset"),
                 hdr(&b->v[i], "error"));
        cr_assert_not_null(json_object_get(ma, k), "dead letter %s not in the clean run", k);
        json_object_set_new(mb, k, json_true());
    }
    cr_assert_eq(json_object_size(ma), json_object_size(mb));
    json_decref(ma);
    json_decref(mb);
}

Test(worker, crash_recovery_matches_a_clean_run, .timeout = 300)
{
    evlist_t events = {0};
    run_result_t clean, crashed;
    char dir[64];

    gen_book(&events, 300);

    phased_run(&events, 0, &clean);
    cr_assert(clean.journal.n > 3000, "clean run: %zu journal records", clean.journal.n);
    /* the cancelled contracts' June usage is refused */
    cr_assert_eq(clean.dlq.n, 27, "clean run: %zu dead letters", clean.dlq.n);
    /* metrics of the clean run, scraped before SIGTERM */
    cr_assert_str_eq(clean.readyz, "ready\n");
    char want[128];
    size_t nevents = 0, ncloses = 0;
    for (size_t i = 0; i < events.n; i++)
        events.v[i].is_close ? ncloses++ : nevents++;
    snprintf(want, sizeof want, "\nrevstream_events_applied_total %zu\n",
             nevents - 27 + ncloses * NPARTS);
    cr_assert_not_null(strstr(clean.metrics, want), "want %s in:\n%s", want + 1, clean.metrics);
    snprintf(want, sizeof want, "\nrevstream_entries_produced_total %zu\n", clean.journal.n);
    cr_assert_not_null(strstr(clean.metrics, want), "want %s in:\n%s", want + 1, clean.metrics);
    snprintf(want, sizeof want, "\nrevstream_input_records_total %zu\n",
             nevents + ncloses * NPARTS);
    cr_assert_not_null(strstr(clean.metrics, want), "want %s in:\n%s", want + 1, clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "\nrevstream_dlq_total 27\n"), "%s",
                       clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "\nrevstream_rejected_total 27\n"), "%s",
                       clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "\nrevstream_pending_events 0\n"), "%s",
                       clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "revstream_batch_seconds_count"), "%s",
                       clean.metrics);

    /* Balances from the clean journal equal replay's. */
    rs_journal_t j;
    journal_of(&clean.journal, 1, &j);
    make_dir(dir, sizeof dir);
    json_t *rows = replay_balances(&events, dir, "2026-06");
    check_journal_balances(&events, &j, rows);
    check_snapshots(&clean.bal, 1, rows);
    json_decref(rows);
    rs_journal_free(&j);
    rm_rf(dir);

    phased_run(&events, 1, &crashed);
    size_t dups = compare_journals(&clean.journal, &crashed.journal);
    /* SIGKILL from outside while the invoices streamed: the restart had work
     * left; what came twice is at most what the replayed plans produced, and
     * the plans hold at most one batch (50 records). */
    cr_assert(crashed.kill_restart_records > 0, "the kill came after the phase was done");
    cr_assert(crashed.kill_replay_records <= 50, "plans of %ld records replayed",
              crashed.kill_replay_records);
    cr_assert((long)crashed.kill_dups <= crashed.kill_replay_entries,
              "%zu duplicates after the kill, the replaying batches made %ld entries",
              crashed.kill_dups, crashed.kill_replay_entries);
    cr_assert(crashed.kill_dups == 0 || crashed.kill_replay_records > 0,
              "duplicates without a plan replay");
    /* The injected fault died between acknowledgement and commit: exactly
     * that batch's journal records came twice, byte-identical. */
    cr_assert(crashed.fault_journal > 0, "the crashed batch produced no journal record");
    cr_assert(crashed.fault_replayed, "the restart did not replay the plan");
    cr_assert_eq((long)(dups - crashed.kill_dups), crashed.fault_journal,
                 "%zu duplicates after the fault, the crashed batch had %ld",
                 dups - crashed.kill_dups, crashed.fault_journal);
    compare_snapshots(&clean.bal, &crashed.bal);
    compare_dlq(&clean.dlq, &crashed.dlq);
    cr_log_info("crash test: after SIGKILL %zu duplicates (plans replayed %ld records, %ld "
                "entries); after the injected fault %ld duplicates",
                crashed.kill_dups, crashed.kill_replay_records, crashed.kill_replay_entries,
                crashed.fault_journal);

    run_result_free(&clean);
    run_result_free(&crashed);
    ev_free(&events);
}

/* ------------------------------------------------------------------------ */
/* a failed delivery                                                        */
/* ------------------------------------------------------------------------ */

Test(worker, failed_delivery_exits_2_and_the_restart_replays, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512];
    evlist_t events = {0};
    wenv_t w;
    rs_avro_cache_t *cache = input_cache();

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    load_sample(&events, 1);
    wenv_init(&w, bs, "g-fail", "exit.when.idle=true\n");
    rd_kafka_t *p = new_producer(bs);
    produce_events(p, &events, -1, -1, cache);
    rd_kafka_destroy(p);

    /* The next Produce request (the worker's first) fails for good. */
    rd_kafka_mock_push_request_errors(rs_mockbroker_cluster(mb), 0, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    pid_t pid = worker_start(&w, NULL);
    int status = wait_exit(pid, DEADLINE_S, w.log);
    char *log = slurp(w.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %d; log:\n%s", status,
              log);
    cr_assert_not_null(strstr(log, "not delivered"), "%s", log);
    cr_assert_not_null(strstr(log, "worker: error=run"), "%s", log);
    cr_assert_null(strstr(log, "worker: batch "), "a batch was committed:\n%s", log);
    size_t mark = strlen(log);
    free(log);

    /* The restart replays the plan and finishes. */
    worker_run_idle(&w);
    log = slurp(w.log);
    cr_assert_not_null(strstr(log + mark, "worker: plan_replay "), "%s", log + mark);
    free(log);

    recs_t outs[3];
    read_topics(bs, out_topics, 3, outs);
    /* what the failed run delivered comes again, byte-identical */
    json_t *first = by_entry_id(&outs[0]);
    rs_journal_t j;
    rs_journal_init(&j);
    rs_entry_reader_t *rd = NULL;
    char rderr[256];
    cr_assert_eq(rs_entry_reader_new(&rd, rderr, sizeof rderr), 0, "%s", rderr);
    size_t dups = 0;
    for (size_t i = 0; i < outs[0].n; i++) {
        const rec_t *r = &outs[0].v[i];
        size_t f = (size_t)json_integer_value(json_object_get(first, hdr(r, "entry_id")));
        const rec_t *o = &outs[0].v[f];
        cr_assert(r->vlen == o->vlen && memcmp(r->val, o->val, r->vlen) == 0,
                  "entry %s came twice with different bytes", hdr(r, "entry_id"));
        if (f != i) {
            dups++;
            continue;
        }
        rs_entry_t e;
        entry_from_avro(rd, r, &e);
        cr_assert_eq(rs_journal_append(&j, &e), 0);
    }
    rs_entry_reader_destroy(rd);
    cr_log_info("failed delivery: %zu journal records delivered twice", dups);
    json_t *rows = replay_balances(&events, w.dir, "2026-06");
    check_journal_balances(&events, &j, rows);

    json_decref(rows);
    json_decref(first);
    rs_journal_free(&j);
    for (int i = 0; i < 3; i++)
        recs_free(&outs[i]);
    ev_free(&events);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    rm_rf(w.dir);
}

/* ------------------------------------------------------------------------ */
/* a pending plan is replayed in its order                                  */
/* ------------------------------------------------------------------------ */

/* The journal (as JSON records) an engine emits for `order` of the events. */
static void expected_journal(const char *const *jsons, const int *order, int n, char **out,
                             size_t *nout)
{
    rs_harness_t h;
    rs_harness_init(&h, NULL);
    for (int i = 0; i < n; i++)
        cr_assert_eq(rs_harness_apply(&h, jsons[order[i]]), RS_APPLY_OK, "%s", h.last_error);
    cr_assert(h.journal.n <= 16);
    for (size_t i = 0; i < h.journal.n; i++) {
        out[i] = rs_codec_entry_json(&h.journal.entries[i]);
        cr_assert_not_null(out[i]);
    }
    *nout = h.journal.n;
    rs_harness_free(&h);
}

Test(worker, pending_plan_is_replayed_in_plan_order, .timeout = 120)
{
    /* Booked, then (contracts) an amendment dated March and (invoices) an
     * invoice dated February: which of the two comes first changes the
     * entries (recognition moves ahead of billing or not). */
    static const char *const ev[3] = {
        "{\"event_id\":\"pl-bk\",\"type\":\"contract.booked\",\"contract_id\":\"C-PLAN\","
        "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CUS-P\",\"currency\":"
        "\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":"
        "\"Plan\",\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":"
        "\"2026-12-31\",\"amount\":\"1200.00\"}]}",
        "{\"event_id\":\"pl-am\",\"type\":\"contract.amended\",\"contract_id\":\"C-PLAN\","
        "\"occurred_at\":\"2026-03-20T10:00:00Z\",\"effective_on\":\"2026-04-01\",\"lines\":"
        "[{\"line_id\":\"L1\",\"product\":\"Plan\",\"recognition\":\"ratable_monthly\","
        "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1800.00\"}]}",
        "{\"event_id\":\"pl-inv\",\"type\":\"invoice.issued\",\"contract_id\":\"C-PLAN\","
        "\"occurred_at\":\"2026-02-01T10:00:00Z\",\"invoice_id\":\"PI-1\",\"issued_on\":"
        "\"2026-02-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"1200.00\"}]}",
    };
    /* topic index and offset of each event as produced below */
    static const rs_plan_item_t item[3] = {{0, 0}, {0, 1}, {1, 0}};
    static const int orders[2][3] = {{0, 1, 2}, {0, 2, 1}};
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512];
    char *want[2][16];
    size_t nwant[2];
    dr_t d[3];

    for (int o = 0; o < 2; o++)
        expected_journal(ev, orders[o], 3, want[o], &nwant[o]);
    /* the two orders must give different journals, or this proves nothing */
    int differ = nwant[0] != nwant[1];
    for (size_t i = 0; !differ && i < nwant[0]; i++)
        differ = strcmp(want[0][i], want[1][i]) != 0;
    cr_assert(differ, "both orders give the same journal");

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    rd_kafka_mock_cluster_t *cl = rs_mockbroker_cluster(mb);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "plan.journal.0", NPARTS, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "plan.journal.1", NPARTS, 1), 0);
    rd_kafka_t *p = new_producer(bs);
    for (int i = 0; i < 3; i++) {
        memset(&d[i], 0, sizeof d[i]);
        produce_one(p, in_topics[item[i].topic], RD_KAFKA_PARTITION_UA, "C-PLAN", ev[i],
                    strlen(ev[i]), &d[i]);
        flush_ok(p);
        cr_assert_eq(d[i].offset, item[i].offset);
        cr_assert_eq(d[i].partition, d[0].partition);
    }
    rd_kafka_destroy(p);
    int32_t part = d[0].partition;

    for (int o = 0; o < 2; o++) {
        char extra[256], group[32];
        wenv_t w;
        rs_state_t *st = NULL;
        rs_pstate_t *ps = NULL;
        rs_state_opts_t so = {NULL, 1, 0, RS_STATE_SYNC_ON, 0};
        rs_plan_item_t plan[3];

        snprintf(extra, sizeof extra,
                 "exit.when.idle=true\ninput.format=json\noutput.format=json\n"
                 "topics.journal=plan.journal.%d\n",
                 o);
        snprintf(group, sizeof group, "g-plan-%d", o);
        wenv_init(&w, bs, group, extra);
        /* a store whose partition has a pending plan, as after a crash */
        so.path = w.state;
        cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rs_pstate_load(&ps, st, part, NULL, err, sizeof err), 0, "%s", err);
        for (int i = 0; i < 3; i++)
            plan[i] = item[orders[o][i]];
        cr_assert_eq(rs_pstate_save_plan(ps, plan, 3, err, sizeof err), 0, "%s", err);
        rs_pstate_destroy(ps);
        rs_state_destroy(st);

        worker_run_idle(&w);

        char topic[32];
        const char *const tl[1] = {topic};
        recs_t j;
        snprintf(topic, sizeof topic, "plan.journal.%d", o);
        read_topics(bs, tl, 1, &j);
        cr_assert_eq(j.n, nwant[o], "order %d: %zu journal records, want %zu", o, j.n,
                     nwant[o]);
        for (size_t i = 0; i < j.n; i++)
            cr_assert_str_eq((const char *)j.v[i].val, want[o][i], "order %d entry %zu", o, i);
        char *log = slurp(w.log);
        snprintf(err, sizeof err, "worker: plan_replay partition=%d records=3", (int)part);
        cr_assert_not_null(strstr(log, err), "%s", log);
        free(log);
        recs_free(&j);
        rm_rf(w.dir);
    }
    for (int o = 0; o < 2; o++)
        for (size_t i = 0; i < nwant[o]; i++)
            free(want[o][i]);
    rs_mockbroker_destroy(mb);
}

/* ------------------------------------------------------------------------ */
/* start-up errors                                                          */
/* ------------------------------------------------------------------------ */

/* Run the worker on a config; returns its exit code and its stderr. */
static int run_worker_cfg(const char *bs, const char *extra, const char *env, char **log)
{
    wenv_t w;
    wenv_init(&w, bs, "g-err", extra);
    char *argv[] = {"revstream", "worker", "--config", w.cfg, NULL};
    int status = wait_exit(spawn(argv, w.out, w.log, env), DEADLINE_S, w.log);
    *log = slurp(w.log);
    char *out = slurp(w.out);
    size_t n = strlen(*log);
    *log = realloc(*log, n + strlen(out) + 1);
    strcpy(*log + n, out);
    free(out);
    rm_rf(w.dir);
    cr_assert(WIFEXITED(status), "status %d", status);
    return WEXITSTATUS(status);
}

Test(worker, startup_errors, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512];
    char *log = NULL;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    rd_kafka_mock_cluster_t *cl = rs_mockbroker_cluster(mb);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.contracts", 4, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.invoices", 3, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.payments", 4, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.usage", 2, 1), 0);

    /* not co-partitioned: each count named, exit 1 */
    cr_assert_eq(run_worker_cfg(bs,
                                "topics.contracts=cp.contracts\ntopics.invoices=cp.invoices\n"
                                "topics.payments=cp.payments\ntopics.usage=cp.usage\n",
                                NULL, &log),
                 1, "%s", log);
    cr_assert_not_null(strstr(log, "not co-partitioned"), "%s", log);
    cr_assert_not_null(strstr(log, "cp.contracts has 4 partitions, cp.invoices has 3 "
                                   "partitions, cp.payments has 4 partitions, cp.usage has 2 "
                                   "partitions"),
                       "%s", log);
    free(log);

    /* a missing topic */
    cr_assert_eq(run_worker_cfg(bs, "topics.usage=no.such.topic\n", NULL, &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "no.such.topic does not exist"), "%s", log);
    free(log);

    /* a bad key, from the file and from the environment */
    cr_assert_eq(run_worker_cfg(bs, "batch.max.record=5\n", NULL, &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "unknown key \\\"batch.max.record\\\""), "%s", log);
    free(log);
    cr_assert_eq(run_worker_cfg(bs, "", "REVSTREAM_BATCH_MAX_MS=soon", &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "REVSTREAM_BATCH_MAX_MS"), "%s", log);
    free(log);

    /* --check prints the config with secrets masked */
    wenv_t w;
    wenv_init(&w, bs, "g-check", "kafka.sasl.username=alice\n");
    char *argv[] = {"revstream", "worker", "--config", w.cfg, "--check", NULL};
    int status =
        wait_exit(spawn(argv, w.out, w.log, "REVSTREAM_KAFKA_SASL_PASSWORD=very-secret-pw"),
                  DEADLINE_S, w.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *out = slurp(w.out), *errs = slurp(w.log);
    cr_assert_not_null(strstr(out, "kafka.sasl.password=***"), "%s", out);
    cr_assert_not_null(strstr(out, "kafka.sasl.username=alice"), "%s", out);
    cr_assert_null(strstr(out, "very-secret-pw"), "%s", out);
    cr_assert_null(strstr(errs, "very-secret-pw"), "%s", errs);
    free(out);
    free(errs);
    rm_rf(w.dir);

    rs_mockbroker_destroy(mb);
}
