/*
 * rs_kafka_harness — the shared harness of the tests that run `revstream`
 * as child processes against the embedded broker (test_worker, test_scale):
 * temp dirs, generated and sample books, producing them, reading topics
 * back, journal records into entries, spawning and waiting on workers,
 * replay's balances and the comparison with the journal's, log figures.
 *
 * Every helper fails the calling Criterion test (cr_assert) instead of
 * returning an error; every wait has a deadline (KH_DEADLINE_S).
 *
 * Ownership is stated per function in rs_kafka_harness.h.
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 and X/Open: strdup, kill, setenv */

#include "rs_kafka_harness.h"

#include <arpa/inet.h>
#include <avro.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rs_test_util.h"

const char *const kh_in_topics[4] = {"contracts", "invoices", "payments", "usage"};

static int g_dr_errors;

double kh_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kh_rm_rf(const char *dir)
{
    rs_test_rm_rf(dir);
}

void kh_make_dir(char *buf, size_t len)
{
    rs_test_mkdtemp(buf, len, "rs_worker_test");
}

char *kh_slurp(const char *path)
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

void kh_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

static int topic_of(rs_event_type_t t)
{
    const char *name = rs_event_topic(t);
    for (int i = 0; i < 4; i++)
        if (name != NULL && strcmp(name, kh_in_topics[i]) == 0)
            return i;
    cr_assert_fail("event type %d has no topic", (int)t);
    return -1;
}

void kh_ev_add(kh_events_t *l, const char *json)
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
    kh_event_t *r = &l->v[l->n++];
    r->json = strdup(json);
    r->topic = topic_of(ev.type);
    r->is_close = ev.type == RS_EV_PERIOD_CLOSED;
    snprintf(r->contract_id, sizeof r->contract_id, "%s", ev.contract_id);
    rs_event_clear(&ev);
}

void kh_ev_addf(kh_events_t *l, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    kh_ev_add(l, buf);
}

void kh_ev_free(kh_events_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].json);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* A generated book: nc contracts with a ratable line and a usage line, an
 * invoice and a payment each, six months of usage, some amendments and
 * cancellations (whose June usage is then rejected), monthly closes. */
void kh_gen_book(kh_events_t *l, int nc)
{
    for (int i = 0; i < nc; i++) {
        int jpy = i % 5 == 4, day = 1 + i % 27;
        const char *cur = jpy ? "JPY" : "USD";
        long amount = jpy ? 120000 + 1200L * i : 1200 + 12L * i;
        const char *dec = jpy ? "" : ".00";
        kh_ev_addf(
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
            kh_ev_addf(
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
            kh_ev_addf(
                l,
                "{\"event_id\":\"g-cx-%d\",\"type\":\"contract.cancelled\",\"contract_id\":"
                "\"G-%04d\",\"occurred_at\":\"2026-05-10T10:00:00Z\",\"effective_on\":"
                "\"2026-06-01\"}",
                i, i);
        kh_ev_addf(
            l,
            "{\"event_id\":\"g-inv-%d\",\"type\":\"invoice.issued\",\"contract_id\":"
            "\"G-%04d\",\"occurred_at\":\"2026-01-%02dT10:00:00Z\",\"invoice_id\":\"GI-%d\","
            "\"issued_on\":\"2026-01-%02d\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
            "\"%ld%s\"}]}",
            i, i, day, i, day, amount, dec);
        kh_ev_addf(
            l,
            "{\"event_id\":\"g-pay-%d\",\"type\":\"payment.received\",\"contract_id\":"
            "\"G-%04d\",\"occurred_at\":\"2026-02-%02dT10:00:00Z\",\"payment_id\":\"GP-%d\","
            "\"invoice_id\":\"GI-%d\",\"amount\":\"%ld%s\",\"received_on\":\"2026-02-%02d\"}",
            i, i, day, i, i, amount, dec, day);
        for (int m = 1; m <= 6; m++)
            kh_ev_addf(
                l,
                "{\"event_id\":\"g-use-%d-%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                "\"G-%04d\",\"occurred_at\":\"2026-%02d-15T12:00:00Z\",\"line_id\":\"L2\","
                "\"quantity\":\"%d\"}",
                i, m, i, m, 100 + (i * 37 + m * 11) % 900);
    }
    for (int m = 1; m <= 6; m++)
        kh_ev_addf(
            l,
            "{\"event_id\":\"close-2026-%02d\",\"type\":\"period.closed\",\"occurred_at\":"
            "\"2026-%02d-03T00:00:00Z\",\"period\":\"2026-%02d\"}",
            m, m + 1, m);
}

void kh_ev_write(const kh_events_t *l, const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < l->n; i++)
        fprintf(f, "%s\n", l->v[i].json);
    fclose(f);
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        g_dr_errors++;
        fprintf(stderr, "kh: delivery to %s [%d] failed: %s\n", rd_kafka_topic_name(m->rkt),
                (int)m->partition, rd_kafka_err2str(m->err));
    }
    kh_dr_t *d = m->_private;
    if (d != NULL) {
        d->done = 1;
        d->err = m->err;
        d->partition = m->partition;
        d->offset = m->offset;
    }
}

void kh_conf_dr(rd_kafka_conf_t *conf)
{
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
}

rd_kafka_t *kh_new_producer(const char *bs)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err), 0);
    cr_assert_eq(rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err), 0);
    kh_conf_dr(conf);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

rd_kafka_t *kh_new_consumer(const char *bs, const char *group)
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

void kh_flush_ok(rd_kafka_t *p)
{
    cr_assert_eq(rd_kafka_flush(p, KH_DEADLINE_S * 1000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "flush did not finish");
    cr_assert_eq(g_dr_errors, 0, "%d test record(s) not delivered", g_dr_errors);
}

void kh_produce_one(rd_kafka_t *p, const char *topic, int32_t partition, const char *key,
                    const void *value, size_t len, kh_dr_t *d)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY((void *)key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "producev: %s", rd_kafka_err2str(err));
}

/* The record value of an event: its JSON line, or Avro with local id. */
void *kh_event_value(const kh_event_t *r, rs_avro_cache_t *avro, size_t *len)
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
void kh_produce_events(rd_kafka_t *p, const kh_events_t *l, int topic, int closes,
                       rs_avro_cache_t *avro)
{
    for (size_t i = 0; i < l->n; i++) {
        const kh_event_t *r = &l->v[i];
        size_t len = 0;
        if ((topic >= 0 && r->topic != topic) || (closes >= 0 && r->is_close != closes))
            continue;
        void *v = kh_event_value(r, avro, &len);
        if (r->is_close)
            for (int32_t part = 0; part < KH_NPARTS; part++)
                kh_produce_one(p, kh_in_topics[0], part, NULL, v, len, NULL);
        else
            kh_produce_one(p, kh_in_topics[r->topic], RD_KAFKA_PARTITION_UA, r->contract_id, v,
                           len, NULL);
        free(v);
        rd_kafka_poll(p, 0);
    }
    kh_flush_ok(p);
}

static int rec_cmp(const void *a, const void *b)
{
    const kh_rec_t *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void kh_recs_free(kh_recs_t *r)
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

const char *kh_hdr(const kh_rec_t *r, const char *name)
{
    for (int h = 0; h < r->nh; h++)
        if (strcmp(r->hname[h], name) == 0)
            return r->hval[h];
    return NULL;
}

/* Every record of each of `n` topics into out[i], sorted by (partition,
 * offset): one consumer reads them all, from the beginning to the end. */
void kh_read_topics(const char *bs, const char *const *topics, int n, kh_recs_t *out)
{
    rd_kafka_t *c = kh_new_consumer(bs, "rs-test-reader");
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(KH_NPARTS * n);
    int eof = 0;
    double deadline = kh_now_s() + KH_DEADLINE_S;
    /* partitions whose end was reached: librdkafka may report a partition's
     * end again (after a leader moved, it fetches from the new leader), so
     * the ends are counted per partition, not per event */
    char *at_end = calloc((size_t)(KH_NPARTS * n), 1);
    cr_assert_not_null(at_end);

    for (int t = 0; t < n; t++) {
        memset(&out[t], 0, sizeof out[t]);
        for (int32_t p = 0; p < KH_NPARTS; p++)
            rd_kafka_topic_partition_list_add(tp, topics[t], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    cr_assert_eq(rd_kafka_assign(c, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    while (eof < KH_NPARTS * n) {
        cr_assert(kh_now_s() < deadline, "reading the outputs did not reach their end");
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            for (int t = 0; t < n; t++)
                if (strcmp(rd_kafka_topic_name(m->rkt), topics[t]) == 0 && m->partition >= 0 &&
                    m->partition < KH_NPARTS && !at_end[t * KH_NPARTS + m->partition]) {
                    at_end[t * KH_NPARTS + m->partition] = 1;
                    eof++;
                }
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            kh_recs_t *o = NULL;
            for (int t = 0; t < n; t++)
                if (strcmp(rd_kafka_topic_name(m->rkt), topics[t]) == 0)
                    o = &out[t];
            cr_assert_not_null(o);
            if (o->n == o->cap) {
                o->cap = o->cap ? o->cap * 2 : 256;
                o->v = realloc(o->v, o->cap * sizeof *o->v);
                cr_assert_not_null(o->v);
            }
            kh_rec_t *r = &o->v[o->n++];
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
                for (size_t i = 0; r->nh < KH_MAX_HDRS &&
                                   rd_kafka_header_get_all(hs, i, &name, &val, &sz) == 0;
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
    free(at_end);
    rd_kafka_destroy(c);
    for (int t = 0; t < n; t++)
        if (out[t].n > 0) /* an empty topic has no array (qsort wants one) */
            qsort(out[t].v, out[t].n, sizeof *out[t].v, rec_cmp);
}

/* Sum of the high watermarks of topic. */
int64_t kh_topic_size(rd_kafka_t *rk, const char *topic)
{
    int64_t total = 0;
    for (int32_t p = 0; p < KH_NPARTS; p++) {
        int64_t lo = 0, hi = 0;
        cr_assert_eq(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000), 0);
        total += hi;
    }
    return total;
}

rs_period_t kh_period_of(const char *s)
{
    rs_period_t p = 0;
    cr_assert_eq(rs_period_parse(s, &p), 0, "bad period %s", s);
    return p;
}

static void entry_from_json(const kh_rec_t *r, rs_entry_t *e)
{
    char err[256];
    cr_assert_eq(rs_codec_entry_from_json((const char *)r->val, r->vlen, e, err, sizeof err), 0,
                 "journal record: %s", err);
}

void kh_entry_from_avro(rs_entry_reader_t *rd, const kh_rec_t *r, rs_entry_t *e)
{
    char err[256];
    cr_assert_eq(rs_codec_entry_from_avro(rd, r->val, r->vlen, e, err, sizeof err), 0,
                 "journal record: %s", err);
}

/* The journal records as entries; also checks the key and entry_id header. */
void kh_journal_of(const kh_recs_t *recs, int avro, rs_journal_t *j)
{
    rs_entry_reader_t *rd = NULL;
    char err[256];
    if (avro)
        cr_assert_eq(rs_entry_reader_new(&rd, err, sizeof err), 0, "%s", err);
    rs_journal_init(j);
    for (size_t i = 0; i < recs->n; i++) {
        rs_entry_t e;
        if (avro)
            kh_entry_from_avro(rd, &recs->v[i], &e);
        else
            entry_from_json(&recs->v[i], &e);
        cr_assert_not_null(recs->v[i].key);
        cr_assert_str_eq(recs->v[i].key, e.contract_id, "journal key is not the contract_id");
        cr_assert_not_null(kh_hdr(&recs->v[i], "entry_id"));
        cr_assert_str_eq(kh_hdr(&recs->v[i], "entry_id"), e.entry_id);
        cr_assert_eq(rs_journal_append(j, &e), 0);
    }
    rs_entry_reader_destroy(rd);
}

const char *kh_bin(void)
{
    return RS_BINARY_DIR "/revstream";
}

/* Start `revstream ARGS...` with stdout and stderr to files; env "K=V" or NULL. */
pid_t kh_spawn(char *const argv[], const char *out, const char *err, const char *env)
{
    return kh_spawn_bin(kh_bin(), argv, out, err, env);
}

pid_t kh_spawn_bin(const char *bin, char *const argv[], const char *out, const char *err,
                   const char *env)
{
    cr_assert_eq(access(bin, X_OK), 0, "%s is not built", bin);
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
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

/* Wait for pid; kill it and fail after timeout_s. Returns the wait status. */
int kh_wait_exit(pid_t pid, int timeout_s, const char *log)
{
    double deadline = kh_now_s() + timeout_s;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
        if (kh_now_s() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            char *l = kh_slurp(log);
            cr_assert_fail("revstream did not exit within %d s; log:\n%s", timeout_s, l);
        }
        usleep(10 * 1000);
    }
    /* -1 (ECHILD) means the child was already reaped elsewhere: its status
     * is gone, and must not read as a clean exit */
    cr_assert_eq(r, pid, "waiting for pid %d: %s", (int)pid, strerror(errno));
    return status;
}

void kh_assert_exit0(int status, const char *log)
{
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *l = kh_slurp(log);
        cr_assert_fail("revstream worker: status %d (exited %d, signal %d); log:\n%s", status,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                       WIFSIGNALED(status) ? WTERMSIG(status) : 0, l);
    }
}

void kh_worker_init(kh_worker_t *w, const char *bs, const char *group, const char *extra)
{
    char text[4096];
    kh_make_dir(w->dir, sizeof w->dir);
    snprintf(w->cfg, sizeof w->cfg, "%s/worker.properties", w->dir);
    snprintf(w->log, sizeof w->log, "%s/worker.log", w->dir);
    snprintf(w->out, sizeof w->out, "%s/worker.out", w->dir);
    snprintf(w->state, sizeof w->state, "%s/state", w->dir);
    snprintf(text, sizeof text,
             "# test worker\nkafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=%s\n"
             "state.sync=false\n%s" KH_GROUP_TIMEOUTS "%s",
             bs, w->state, group,
             extra != NULL && strstr(extra, "log.format=") != NULL ? "" : "log.format=text\n",
             extra ? extra : "");
    kh_write_file(w->cfg, text);
}

void kh_produce_cli(const char *bs, const kh_events_t *ev, const char *dir, const char *log)
{
    char book[160], out[160];
    snprintf(book, sizeof book, "%s/book.jsonl", dir);
    snprintf(out, sizeof out, "%s/produce.out", dir);
    kh_ev_write(ev, book);
    char *argv[] = {"revstream", "produce", "--bootstrap", (char *)bs, book, NULL};
    kh_assert_exit0(kh_wait_exit(kh_spawn(argv, out, log, NULL), KH_DEADLINE_S, log), log);
}

pid_t kh_worker_start(const kh_worker_t *w, const char *env)
{
    char *argv[] = {"revstream", "worker", "--config", (char *)w->cfg, NULL};
    return kh_spawn(argv, w->out, w->log, env);
}

int kh_worker_stop(pid_t pid, const char *log)
{
    kill(pid, SIGTERM);
    return kh_wait_exit(pid, KH_DEADLINE_S, log);
}

/* `revstream replay` of the events: one report as JSON rows. */
json_t *kh_replay_report(const kh_events_t *events, const char *dir, const char *through,
                         const char *report, const char *policy)
{
    char path[160], out[160], err[160];
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    snprintf(out, sizeof out, "%s/replay-%s.out", dir, report);
    snprintf(err, sizeof err, "%s/replay-%s.err", dir, report);
    kh_ev_write(events, path);
    char *argv[] = {"revstream",     "replay",   path,           "--through",
                    (char *)through, "--report", (char *)report, "--format",
                    "json",          "--policy", (char *)policy, NULL};
    if (policy == NULL)
        argv[9] = NULL;
    int status = kh_wait_exit(kh_spawn(argv, out, err, NULL), KH_DEADLINE_S, err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) <= 2, "replay failed");
    char *text = kh_slurp(out);
    json_error_t jerr;
    json_t *rows = json_loads(text, 0, &jerr);
    cr_assert(json_is_array(rows), "replay output is not a JSON array: %s", jerr.text);
    free(text);
    return rows;
}

json_t *kh_replay_balances(const kh_events_t *events, const char *dir, const char *through)
{
    return kh_replay_report(events, dir, through, "balances", NULL);
}

const char *kh_row_str(json_t *row, const char *k)
{
    const char *s = json_string_value(json_object_get(row, k));
    cr_assert_not_null(s, "replay row has no %s", k);
    return s;
}

/* The balances computed from the worker's journal (with the line list of an
 * engine that replayed the same events) equal replay's, row for row. */
void kh_check_journal_balances(const kh_events_t *events, const rs_journal_t *j, json_t *rows)
{
    rs_harness_t h;
    rs_balance_row_t *b = NULL;
    size_t n = 0;
    char m[5][48];

    rs_harness_init(&h, NULL);
    for (size_t i = 0; i < events->n; i++)
        rs_harness_apply(&h, events->v[i].json);
    cr_assert_eq(rs_report_balances(h.engine, j, kh_period_of("2099-12"), &b, &n), 0);
    cr_assert_eq(n, json_array_size(rows), "%zu balance rows from the journal, replay has %zu",
                 n, json_array_size(rows));
    cr_assert(n > 0);
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(rows, i);
        cr_assert_str_eq(b[i].contract_id, kh_row_str(row, "contract_id"));
        cr_assert_str_eq(b[i].line_id, kh_row_str(row, "line_id"));
        rs_money_format(b[i].billed, b[i].exponent, m[0], 48);
        rs_money_format(b[i].recognized, b[i].exponent, m[1], 48);
        rs_money_format(b[i].deferred, b[i].exponent, m[2], 48);
        rs_money_format(b[i].unbilled, b[i].exponent, m[3], 48);
        rs_money_format(b[i].received, b[i].exponent, m[4], 48);
        static const char *const keys[5] = {"billed", "recognized", "deferred", "unbilled",
                                            "received"};
        for (int k = 0; k < 5; k++)
            cr_assert_str_eq(m[k], kh_row_str(row, keys[k]), "%s/%s %s: journal %s, replay %s",
                             b[i].contract_id, b[i].line_id, keys[k], m[k],
                             kh_row_str(row, keys[k]));
    }
    free(b);
    rs_harness_free(&h);
}

long kh_log_number(const char *log, const char *prefix, const char *key, int first)
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
void kh_replay_totals(const char *log, long *replayed, long *entries)
{
    int pending = 0;
    *replayed = *entries = 0;
    for (const char *line = log; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "worker: plan_replay ", 20) == 0) {
            *replayed += kh_log_number(line, "worker: plan_replay ", "records", 1);
            pending = 1;
        } else if (strncmp(line, "worker: batch ", 14) == 0 && pending) {
            *entries += kh_log_number(line, "worker: batch ", "entries", 1);
            pending = 0;
        }
    }
}

/* The sum of " key=" over every line of log that starts with prefix. */
long kh_log_sum(const char *log, const char *prefix, const char *key)
{
    long sum = 0;
    for (const char *p = strstr(log, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        long v = kh_log_number(p, prefix, key, 1);
        if (v > 0)
            sum += v;
    }
    return sum;
}

/* The journal deduplicated by entry_id (first copy kept, shallow copies:
 * free only uniq->v). Fails if one entry_id has two different contents.
 * Returns the number of duplicates. */
size_t kh_dedup_journal(const kh_recs_t *j, kh_recs_t *uniq)
{
    json_t *seen = json_object();
    memset(uniq, 0, sizeof *uniq);
    uniq->v = calloc(j->n + 1, sizeof *uniq->v);
    cr_assert_not_null(uniq->v);
    for (size_t i = 0; i < j->n; i++) {
        const char *id = kh_hdr(&j->v[i], "entry_id");
        cr_assert_not_null(id);
        json_t *prev = json_object_get(seen, id);
        if (prev != NULL) {
            const kh_rec_t *p = &j->v[json_integer_value(prev)];
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
size_t kh_check_topic_balances(const char *bs, const char *topic, const char *balances_topic,
                               const kh_events_t *events)
{
    const char *const tl[2] = {topic, balances_topic};
    kh_recs_t in[2], uniq;
    rs_journal_t jr;
    char dir[64];

    kh_read_topics(bs, tl, balances_topic != NULL ? 2 : 1, in);
    cr_assert(in[0].n > 0, "no journal on %s", topic);
    size_t dups = kh_dedup_journal(&in[0], &uniq);

    kh_journal_of(&uniq, 0, &jr);
    kh_make_dir(dir, sizeof dir);
    json_t *rows = kh_replay_balances(events, dir, "2026-06");
    kh_check_journal_balances(events, &jr, rows);
    if (balances_topic != NULL) {
        kh_check_snapshots(&in[1], 0, rows);
        kh_recs_free(&in[1]);
    }
    json_decref(rows);
    rs_journal_free(&jr);
    kh_rm_rf(dir);
    free(uniq.v);
    kh_recs_free(&in[0]);
    return dups;
}

void kh_produce_book(const char *bs, const kh_events_t *ev)
{
    rd_kafka_t *p = kh_new_producer(bs);
    kh_produce_events(p, ev, -1, 0, NULL);
    kh_produce_events(p, ev, -1, 1, NULL);
    rd_kafka_destroy(p);
}

/* Wait until `topic` holds at least n records (all partitions). */
void kh_wait_topic_size(const char *bs, const char *topic, int64_t n, pid_t pid,
                        const char *log)
{
    rd_kafka_t *c = kh_new_consumer(bs, "rs-test-size");
    double deadline = kh_now_s() + KH_DEADLINE_S;
    int status;
    while (kh_topic_size(c, topic) < n) {
        cr_assert(waitpid(pid, &status, WNOHANG) == 0, "worker exited early; log:\n%s",
                  kh_slurp(log));
        cr_assert(kh_now_s() < deadline, "%s did not reach %lld records", topic, (long long)n);
        usleep(20 * 1000);
    }
    rd_kafka_destroy(c);
}

/* Wait until the log holds `needle`. */
void kh_wait_log(const char *log, const char *needle, pid_t pid)
{
    double deadline = kh_now_s() + KH_DEADLINE_S;
    int status;
    for (;;) {
        char *l = kh_slurp(log);
        int found = strstr(l, needle) != NULL;
        if (!found) {
            cr_assert(waitpid(pid, &status, WNOHANG) == 0, "worker exited before \"%s\":\n%s",
                      needle, l);
            cr_assert(kh_now_s() < deadline, "no \"%s\" in the log:\n%s", needle, l);
        }
        free(l);
        if (found)
            return;
        usleep(50 * 1000);
    }
}

/* Run the worker to completion (exit.when.idle=true in its config). */
void kh_worker_run_idle(const kh_worker_t *w, const char *env)
{
    pid_t pid = kh_worker_start(w, env);
    kh_assert_exit0(kh_wait_exit(pid, KH_DEADLINE_S, w->log), w->log);
}

/* The sample book. It ends with the close of 2026-06, so every contract is
 * recognized through June in the worker as in `replay --through 2026-06`;
 * with final_close == 0 that last close is left out. */
void kh_load_sample(kh_events_t *l, int final_close)
{
    char *text = kh_slurp(RS_SOURCE_DIR "/examples/sample-book.jsonl");
    char *save = NULL;
    cr_assert_neq(text[0], '\0', "cannot read the sample book");
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strspn(line, " \t\r") != strlen(line) &&
            (final_close || strstr(line, "\"close-2026-06\"") == NULL))
            kh_ev_add(l, line);
    free(text);
    cr_assert(!final_close || strstr(l->v[l->n - 1].json, "\"close-2026-06\"") != NULL,
              "the sample book must end with the close of 2026-06");
}

/* An Avro cache with the input schemas under their local ids (1..4). */
rs_avro_cache_t *kh_input_cache(void)
{
    rs_avro_cache_t *c = NULL;
    char err[512];
    cr_assert_eq(rs_avro_cache_new(&c, err, sizeof err), 0, "%s", err);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(rs_avro_cache_add(c, k + 1, rs_avro_schema_json(k), err, sizeof err), 0,
                     "%s", err);
    return c;
}

static size_t curl_sink(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    char *buf = opaque;
    size_t used = strlen(buf), n = size * nmemb;
    cr_assert(used + n < KH_HTTP_BUF, "HTTP body over %d bytes", KH_HTTP_BUF);
    memcpy(buf + used, ptr, n);
    buf[used + n] = '\0';
    return size * nmemb;
}

/* GET path; buf must hold KH_HTTP_BUF bytes. Returns the HTTP status (0: none). */
long kh_http_get(int port, const char *path, char *buf)
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

int kh_free_port(void)
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

/* Wait until the worker's group has committed offsets at the end of every
 * partition of `topic`; `c` is a consumer handle of the worker's group that
 * never subscribes (it only reads committed offsets). Returns 1, or 0 if
 * the worker exited first (*status). */
int kh_wait_consumed(rd_kafka_t *c, const char *topic, pid_t pid, int *status, const char *log)
{
    int64_t hwm[KH_NPARTS];
    double deadline = kh_now_s() + KH_DEADLINE_S;

    for (int32_t p = 0; p < KH_NPARTS; p++) {
        int64_t lo = 0;
        cr_assert_eq(rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hwm[p], 10000), 0);
    }
    for (;;) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 0;
        if (kh_now_s() >= deadline) {
            char *l = kh_slurp(log);
            cr_assert_fail("the worker did not consume %s within %d s; log:\n%s", topic,
                           KH_DEADLINE_S, l);
        }
        rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(KH_NPARTS);
        for (int32_t p = 0; p < KH_NPARTS; p++)
            rd_kafka_topic_partition_list_add(tp, topic, p);
        int done = rd_kafka_committed(c, tp, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int32_t p = 0; p < KH_NPARTS && done; p++)
            if (hwm[p] > 0 && tp->elems[p].offset < hwm[p])
                done = 0;
        rd_kafka_topic_partition_list_destroy(tp);
        if (done)
            return 1;
        usleep(10 * 1000);
    }
}

/* entry_id -> index of its first record. */
json_t *kh_by_entry_id(const kh_recs_t *j)
{
    json_t *m = json_object();
    for (size_t i = 0; i < j->n; i++) {
        const char *id = kh_hdr(&j->v[i], "entry_id");
        cr_assert_not_null(id);
        if (json_object_get(m, id) == NULL)
            json_object_set_new(m, id, json_integer((json_int_t)i));
    }
    return m;
}

/* ---- Avro outputs and balance snapshots ---- */
void kh_avdec_init(kh_avdec_t *d, rs_avro_schema_kind_t kind)
{
    const char *js = rs_avro_schema_json(kind);
    cr_assert_eq(avro_schema_from_json_length(js, strlen(js), &d->schema), 0, "%s",
                 avro_strerror());
    d->iface = avro_generic_class_from_schema(d->schema);
    cr_assert_not_null(d->iface);
    cr_assert_eq(avro_generic_value_new(d->iface, &d->val), 0);
}

void kh_avdec_free(kh_avdec_t *d)
{
    avro_value_decref(&d->val);
    avro_value_iface_decref(d->iface);
    avro_schema_decref(d->schema);
}

/* Decode a wire-format record written with local schema id `id`. */
avro_value_t *kh_avdec_read(kh_avdec_t *d, const kh_rec_t *r, int32_t id)
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

const char *kh_av_str(avro_value_t *rec, const char *name)
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

int64_t kh_av_long(avro_value_t *rec, const char *name)
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

const void *kh_av_bytes(avro_value_t *rec, const char *name, size_t *len)
{
    avro_value_t f;
    const void *b = NULL;
    av_field(rec, name, &f);
    if (avro_value_get_type(&f) == AVRO_NULL)
        return NULL;
    cr_assert_eq(avro_value_get_bytes(&f, &b, len), 0);
    return b;
}

/* The latest line snapshot per key on the balances topic equals replay's
 * row for every line (and there is one for every line). */
void kh_check_snapshots(const kh_recs_t *bal, int avro, json_t *rows)
{
    kh_avdec_t d;
    if (avro)
        kh_avdec_init(&d, RS_AVRO_SCHEMA_DEFERRED_BALANCE);
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        char key[300];
        const kh_rec_t *last = NULL;
        snprintf(key, sizeof key, "%s/line/%s", kh_row_str(row, "contract_id"),
                 kh_row_str(row, "line_id"));
        for (size_t k = 0; k < bal->n; k++)
            if (bal->v[k].key != NULL && strcmp(bal->v[k].key, key) == 0)
                last = &bal->v[k]; /* one key, one partition: sorted by offset */
        cr_assert_not_null(last, "no balance snapshot for %s", key);
        static const char *const keys[5] = {"billed", "recognized", "deferred", "unbilled",
                                            "received"};
        for (int k = 0; k < 5; k++) {
            char m[48];
            if (avro) {
                avro_value_t *v = kh_avdec_read(&d, last, 6);
                cr_assert_str_eq(kh_av_str(v, "snapshot_key"), key);
                cr_assert_str_eq(kh_av_str(v, "scope"), "line");
                rs_money_format(kh_av_long(v, keys[k]), (int)kh_av_long(v, "exponent"), m,
                                sizeof m);
            } else {
                json_t *o = json_loadb((const char *)last->val, last->vlen, 0, NULL);
                cr_assert_not_null(o);
                cr_assert_str_eq(json_string_value(json_object_get(o, "scope")), "line");
                snprintf(m, sizeof m, "%s", json_string_value(json_object_get(o, keys[k])));
                json_decref(o);
            }
            cr_assert_str_eq(m, kh_row_str(row, keys[k]), "snapshot %s %s: %s, replay %s", key,
                             keys[k], m, kh_row_str(row, keys[k]));
        }
    }
    if (avro)
        kh_avdec_free(&d);
}
