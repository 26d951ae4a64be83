/*
 * test_scale — state that follows its partitions: the changelog, its
 * restore, and workers that come and go (issue 5). `revstream worker` runs
 * as child processes against the embedded broker (rs_mockbroker) in this
 * process, JSON in and out.
 *
 * What is checked:
 *   - Kill and restore: a worker is SIGKILLed mid-stream and its state
 *     directory deleted; a new worker with an empty state directory restores
 *     the partitions from the changelog (log lines "restore partition=N ...
 *     finished=true", metric revstream_restored_records_total > 0) and
 *     finishes the input. The journal, deduplicated by entry_id, gives
 *     exactly the balances of `revstream replay` (a single clean run) on the
 *     same events; no entry_id appears with two different contents; the
 *     duplicates are at most the entries of the batches replayed from a plan.
 *   - Workers come and go (1 -> 2 -> 1 -> 1) on one group: restores from the
 *     changelog (local=missing), a revoke that commits, and the grace-period
 *     drop; the deduplicated journal gives replay's balances.
 *   - Grace period: with state.revoked.grace.ms short, revoked partitions'
 *     local state is dropped ("state_dropped partition=N").
 *
 * No timing is asserted. Every wait has a deadline; children get
 * PR_SET_PDEATHSIG. Each test has its own broker, temp dirs and groups.
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

/* Measurement mode (docs/scaling.md): RS_SCALE_CONTRACTS=n sizes the book
 * of the come-and-go test and raises batch.max.records for its workers. */
static const char *g_env;

static pid_t worker_start(const wenv_t *w, const char *env)
{
    char *argv[] = {"revstream", "worker", "--config", (char *)w->cfg, NULL};
    return spawn(argv, w->out, w->log, env);
}

/* Run the worker to completion (exit.when.idle=true in its config). */
static void worker_run_idle(const wenv_t *w)
{
    pid_t pid = worker_start(w, g_env);
    assert_exit0(wait_exit(pid, DEADLINE_S, w->log), w->log);
}

static int worker_stop(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    return wait_exit(pid, DEADLINE_S, log);
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

/* ------------------------------------------------------------------------ */
/* scale tests                                                              */
/* ------------------------------------------------------------------------ */

#define SCALE_EXTRA                                                                            \
    "input.format=json\noutput.format=json\nbatch.max.records=20\nbatch.max.ms=20\n"           \
    "kafka.max.poll.interval.ms=10000\n"

/* The journal deduplicated by entry_id (first copy kept, shallow copies:
 * free only uniq->v). Fails if one entry_id has two different contents.
 * Returns the number of duplicates. */
static size_t dedup_journal(const recs_t *j, recs_t *uniq)
{
    json_t *seen = json_object();
    memset(uniq, 0, sizeof *uniq);
    uniq->v = calloc(j->n + 1, sizeof *uniq->v);
    cr_assert_not_null(uniq->v);
    for (size_t i = 0; i < j->n; i++) {
        const char *id = hdr(&j->v[i], "entry_id");
        cr_assert_not_null(id);
        json_t *prev = json_object_get(seen, id);
        if (prev != NULL) {
            const rec_t *p = &j->v[json_integer_value(prev)];
            cr_assert(p->vlen == j->v[i].vlen && memcmp(p->val, j->v[i].val, p->vlen) == 0,
                      "entry %s appears with two different contents:\n%s\n%s", id, p->val,
                      j->v[i].val);
            continue;
        }
        json_object_set_new(seen, id, json_integer((json_int_t)i));
        uniq->v[uniq->n++] = j->v[i];
    }
    json_decref(seen);
    return j->n - uniq->n;
}

/* The deduplicated journal on `topic` gives replay's balances; returns the
 * number of duplicates. */
static size_t check_topic_balances(const char *bs, const char *topic, const evlist_t *events)
{
    const char *const tl[1] = {topic};
    recs_t j, uniq;
    rs_journal_t jr;
    char dir[64];

    read_topics(bs, tl, 1, &j);
    cr_assert(j.n > 0, "no journal on %s", topic);
    size_t dups = dedup_journal(&j, &uniq);

    journal_of(&uniq, 0, &jr);
    make_dir(dir, sizeof dir);
    json_t *rows = replay_balances(events, dir, "2026-06");
    check_journal_balances(events, &jr, rows);
    json_decref(rows);
    rs_journal_free(&jr);
    rm_rf(dir);
    free(uniq.v);
    recs_free(&j);
    return dups;
}

static void produce_book(const char *bs, const evlist_t *ev)
{
    rd_kafka_t *p = new_producer(bs);
    produce_events(p, ev, -1, 0, NULL);
    produce_events(p, ev, -1, 1, NULL);
    rd_kafka_destroy(p);
}

/* Wait until `topic` holds at least n records (all partitions). */
static void wait_topic_size(const char *bs, const char *topic, int64_t n, pid_t pid,
                            const char *log)
{
    rd_kafka_t *c = new_consumer(bs, "rs-test-size");
    double deadline = now_s() + DEADLINE_S;
    int status;
    while (topic_size(c, topic) < n) {
        cr_assert(waitpid(pid, &status, WNOHANG) == 0, "worker exited early; log:\n%s",
                  slurp(log));
        cr_assert(now_s() < deadline, "%s did not reach %lld records", topic, (long long)n);
        usleep(20 * 1000);
    }
    rd_kafka_destroy(c);
}

/* Wait until the log holds `needle`. */
static void wait_log(const char *log, const char *needle, pid_t pid)
{
    double deadline = now_s() + DEADLINE_S;
    int status;
    for (;;) {
        char *l = slurp(log);
        int found = strstr(l, needle) != NULL;
        if (!found) {
            cr_assert(waitpid(pid, &status, WNOHANG) == 0, "worker exited before \"%s\":\n%s",
                      needle, l);
            cr_assert(now_s() < deadline, "no \"%s\" in the log:\n%s", needle, l);
        }
        free(l);
        if (found)
            return;
        usleep(50 * 1000);
    }
}

Test(scale, sigkill_and_deleted_state_restore_from_changelog, .timeout = 180)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512];
    evlist_t ev = {0};
    wenv_t a, b;
    int status;

    gen_book(&ev, 80);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    rd_kafka_mock_cluster_t *cl = rs_mockbroker_cluster(mb);
    /* the changelog is created by the worker (auto-created on this broker) */
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "kill.journal", NPARTS, 1), 0);
    produce_book(bs, &ev);

    const char *extra = SCALE_EXTRA "topics.journal=kill.journal\n"
                                    "topics.changelog=kill.changelog\n";
    wenv_init(&a, bs, "g-kill", extra);
    pid_t pa = worker_start(&a, NULL);
    wait_topic_size(bs, "kill.journal", 200, pa, a.log);
    kill(pa, SIGKILL);
    waitpid(pa, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    rm_rf(a.state);

    char extra_b[512];
    snprintf(extra_b, sizeof extra_b, "%sexit.when.idle=true\n", extra);
    wenv_init(&b, bs, "g-kill", extra_b);
    worker_run_idle(&b);

    char *log = slurp(b.log);
    cr_assert_not_null(strstr(log, "worker: restore partition="), "no restore:\n%s", log);
    cr_assert_not_null(strstr(log, "local=missing"), "%s", log);
    cr_assert_not_null(strstr(log, "finished=true"), "%s", log);
    long restored = log_sum(log, "worker: restored ", "records");
    cr_assert(restored > 0, "nothing restored:\n%s", log);
    long replayed = 0, replay_entries = 0;
    replay_totals(log, &replayed, &replay_entries);

    size_t dups = check_topic_balances(bs, "kill.journal", &ev);
    cr_assert((long)dups <= replay_entries,
              "%zu duplicates, but the replayed plans (%ld records) made only %ld entries",
              dups, replayed, replay_entries);
    cr_log_info("kill+restore: restored %ld changelog records, %zu duplicates, plans replayed "
                "%ld records / %ld entries",
                restored, dups, replayed, replay_entries);
    free(log);
    rm_rf(a.dir);
    rm_rf(b.dir);
    ev_free(&ev);
    rs_mockbroker_destroy(mb);
}

/* Scale 1 -> 2 -> 1 -> 1 on one group, with a short grace period:
 *   X runs the first half of the input alone and exits;
 *   Y (X's state dir, grace 100 ms) and Z (empty state dir, exits when
 *   idle) share the second half: Z restores its partitions from the
 *   changelog; Y drops the local state of the partitions Z took once the
 *   grace period is over;
 *   Y is stopped (SIGTERM: commits its batch on revoke) and F, on an empty
 *   state dir, restores everything and finishes.
 * The deduplicated journal gives replay's balances. */
Test(scale, workers_come_and_go_revoked_state_dropped_after_grace, .timeout = 180)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, NPARTS};
    char err[512], extra_idle[512], extra_y[512];
    evlist_t ev = {0};
    wenv_t x, y, z, f;

    const char *nc = getenv("RS_SCALE_CONTRACTS");
    gen_book(&ev, nc != NULL && atoi(nc) > 0 ? atoi(nc) : 40);
    g_env = nc != NULL ? "REVSTREAM_BATCH_MAX_RECORDS=2000" : NULL;
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    cr_assert_eq(rd_kafka_mock_topic_create(rs_mockbroker_cluster(mb), "go.journal", NPARTS, 1),
                 0);
    const char *extra =
        SCALE_EXTRA "topics.journal=go.journal\ntopics.changelog=go.changelog\n";
    snprintf(extra_idle, sizeof extra_idle, "%sexit.when.idle=true\n", extra);
    snprintf(extra_y, sizeof extra_y, "%sstate.revoked.grace.ms=100\n", extra);

    rd_kafka_t *p = new_producer(bs);
    produce_events(p, &ev, 0, 0, NULL);
    produce_events(p, &ev, 1, 0, NULL);
    wenv_init(&x, bs, "g-go", extra_idle);
    worker_run_idle(&x);

    produce_events(p, &ev, 2, 0, NULL);
    produce_events(p, &ev, 3, 0, NULL);
    produce_events(p, &ev, -1, 1, NULL);
    rd_kafka_destroy(p);

    wenv_init(&y, bs, "g-go", extra_y);
    /* Y works on X's state directory */
    rm_rf(y.state);
    cr_assert_eq(rename(x.state, y.state), 0, "%s", strerror(errno));
    pid_t py = worker_start(&y, g_env);
    wait_log(y.log, "worker: assigned ", py);
    wenv_init(&z, bs, "g-go", extra_idle);
    pid_t pz = worker_start(&z, g_env);
    assert_exit0(wait_exit(pz, DEADLINE_S, z.log), z.log);
    wait_log(y.log, "worker: state_dropped partition=", py);
    int status = worker_stop(py, y.log);
    assert_exit0(status, y.log);

    wenv_init(&f, bs, "g-go", extra_idle);
    worker_run_idle(&f);

    char *zl = slurp(z.log), *yl = slurp(y.log), *fl = slurp(f.log);
    cr_assert_not_null(strstr(zl, "local=missing"), "Z did not restore:\n%s", zl);
    cr_assert_not_null(strstr(fl, "local=missing"), "F did not restore:\n%s", fl);
    cr_assert_not_null(strstr(yl, "worker: revoked topic_partitions="), "%s", yl);
    cr_assert_not_null(strstr(yl, "grace_ms=100"), "%s", yl);
    long replayed = 0, entries = 0, r, e;
    const char *logs[3] = {yl, zl, fl};
    for (int i = 0; i < 3; i++) {
        replay_totals(logs[i], &r, &e);
        replayed += r;
        entries += e;
    }
    size_t dups = check_topic_balances(bs, "go.journal", &ev);
    cr_assert((long)dups <= entries, "%zu duplicates, replayed plans made %ld entries", dups,
              entries);
    cr_log_info("come and go: %zu duplicates, plans replayed %ld records / %ld entries", dups,
                replayed, entries);
    /* restore figures (docs/scaling.md) */
    cr_log_info("final restore: %ld changelog records in %ld ms (all partitions)",
                log_sum(fl, "worker: restored ", "records"),
                log_sum(fl, "worker: restored ", "ms"));
    free(zl);
    free(yl);
    free(fl);
    rm_rf(x.dir);
    rm_rf(y.dir);
    rm_rf(z.dir);
    rm_rf(f.dir);
    ev_free(&ev);
    rs_mockbroker_destroy(mb);
}
