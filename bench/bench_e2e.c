/*
 * bench_e2e — the worker end to end against its baseline, in the same run.
 *
 *   bench_e2e [--contracts N] [--partitions P] [--seed S] [--raw-runs K]
 *             [--worker-config KEY=VALUE]... [--rate R --seconds T] [--no-throughput]
 *             [--bin PATH] [--keep]
 *
 * Throughput: a book of N generated contracts (`revstream generate`) is put
 * on an embedded broker (`revstream broker`, P partitions) by `revstream
 * produce` (Avro). Then, from the same broker:
 *   - raw: a bare librdkafka consumer reads every input message (all
 *     partitions of the four topics, from the beginning, until EOF), timed
 *     from its assignment to its last EOF — K runs (5 by default), the
 *     median is the baseline. Each run starts as the worker does: its
 *     client is connected and has the topics' metadata before its clock
 *     starts, and it is assigned offset 0. One more run as it was measured
 *     before 2026-12-07 evening (cold: a new client assigned the logical
 *     beginning, whose first fetch comes ~0.5 s after the assignment on
 *     this broker whatever the book's size) is printed apart, with the
 *     ratio to it;
 *   - worker: `revstream worker` (Avro in and out, durable state, fresh state
 *     dir, exit.when.idle) processes the same messages; its rate is records /
 *     seconds from its first assignment to its "stopping reason=idle" line
 *     (every partition at its end, as the raw consumer's last EOF, and every
 *     record applied, delivered and committed; the consumer group's first
 *     join, ~3 s on the mock, is not counted; the time to its exit, which
 *     adds leaving the group and closing the store, and the wall time are
 *     printed too), and its peak RSS and CPU time (user + sys) are taken from
 *     wait4(); the sums of its batch log's phase times and staged state
 *     are printed too (where a batch's time goes).
 * It prints both rates and their ratio, and the worker's events per CPU
 * second (steadier than its rate when other programs load the machine).
 *
 * Latency (--rate R --seconds T): a fresh broker and a running worker; the
 * book is produced at R events/s for T seconds. The bench reads the inputs
 * and the journal as a downstream consumer would and, for every invoice and
 * payment (the events that post an entry of their own at once), takes the
 * time from the event's arrival to the arrival of the first entry that
 * names it. It prints p50, p90, p99 and max.
 *
 * Figures go to stdout as `bench_e2e: key=value` lines; the spawned
 * programs' logs go to files in the work dir (kept with --keep).
 * Not a test: tests/integration runs a tiny smoke run of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_proc.h"
#include "rs_avro.h"
#include "rs_codec.h"
#include "rs_hash.h"
#include "rs_registry.h"

static const char *const inputs[] = {"contracts", "invoices", "payments", "usage"};

typedef struct opts {
    long contracts, seed, rate, seconds;
    int partitions, raw_runs, throughput, keep;
    const char *bin;
    const char *worker_kv[32];
    int n_worker_kv;
} opts_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_e2e: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* bench_proc.h's child helpers, ending the benchmark where they fail. */
static int wait_exit(pid_t pid, struct rusage *ru)
{
    int rc = bp_wait(pid, ru);
    if (rc < 0)
        die("wait: %s", strerror(errno));
    return rc;
}

/* The file's text; NULL when it does not exist. */
static char *slurp(const char *path)
{
    char *buf = bp_slurp(path);
    if (buf == NULL && access(path, F_OK) == 0)
        die("read %s", path);
    return buf;
}

/* The value of `key` on lines of `text` tagged `line_tag`: the last one, or
 * with sum set the sum over all of them (the batch log's phase times). -1
 * (last) or 0 (sum) when no line has it. */
static long long field_of(const char *text, const char *line_tag, const char *key, int sum)
{
    long long v = sum ? 0 : -1;
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    for (const char *p = text ? strstr(text, line_tag) : NULL; p; p = strstr(p + 1, line_tag)) {
        const char *nl = strchr(p, '\n');
        const char *k = strstr(p, pat);
        if (k != NULL && (nl == NULL || k < nl))
            v = (sum ? v : 0) + strtoll(k + strlen(pat), NULL, 10);
    }
    return v;
}

typedef struct broker {
    pid_t pid;
    char bootstrap[256];
} broker_t;

static void broker_start(broker_t *b, const opts_t *o, const char *dir, const char *tag)
{
    char bs[512], log[512], parts[16];
    snprintf(bs, sizeof bs, "%s/bootstrap-%s", dir, tag);
    snprintf(log, sizeof log, "%s/broker-%s.log", dir, tag);
    snprintf(parts, sizeof parts, "%d", o->partitions);
    unlink(bs);
    char *argv[] = {
        (char *)o->bin, "broker", "--partitions", parts, "--bootstrap-file", bs, NULL};
    b->pid = bp_spawn(o->bin, argv, NULL, log);
    for (int i = 0; i < 200; i++) {
        char *s = slurp(bs);
        if (s != NULL && s[0] != '\0') {
            snprintf(b->bootstrap, sizeof b->bootstrap, "%s", strtok(s, "\n"));
            free(s);
            return;
        }
        free(s);
        usleep(50000);
    }
    die("the broker did not start (see %s)", log);
}

static void broker_stop(broker_t *b)
{
    kill(b->pid, SIGTERM);
    wait_exit(b->pid, NULL);
}

/* ---- the bare consumer ---- */

static rd_kafka_t *raw_consumer(const char *bootstrap, const char *extra_group)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err) ||
        rd_kafka_conf_set(c, "group.id", extra_group, err, sizeof err) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof err))
        die("consumer config: %s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (rk == NULL)
        die("consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void assign_all(rd_kafka_t *rk, const char *const *topics, int n_topics, int partitions,
                       int64_t offset)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(n_topics * partitions);
    for (int t = 0; t < n_topics; t++)
        for (int p = 0; p < partitions; p++)
            rd_kafka_topic_partition_list_add(l, topics[t], p)->offset = offset;
    if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("assign failed");
    rd_kafka_topic_partition_list_destroy(l);
}

/* Read every input message once; messages/s from the assignment to the last
 * EOF (librdkafka prefetches, so timing from the first message would flatter
 * it). Warm (the baseline) starts as the worker does: its client is
 * connected and has the topics' metadata before the clock starts (the
 * worker's group join, left out of its time, did that for it), and it is
 * assigned offset 0 (the worker's start without stored offsets; a logical
 * offset costs a ListOffsets request, which on this broker is retried
 * ~500 ms later in most runs: rs_worker_rebalance.c). Cold is how it was
 * measured before 2026-12-07 evening: a new client assigned
 * RD_KAFKA_OFFSET_BEGINNING, so ~0.5 s of the run, whatever the book's
 * size, is spent before the first fetch. *first_s: the assignment to the
 * first message. */
static double raw_rate(const opts_t *o, const char *bootstrap, int warm, long *count,
                       double *first_s)
{
    rd_kafka_t *rk = raw_consumer(bootstrap, "bench-raw");
    int need = 4 * o->partitions, eofs = 0;
    long n = 0;
    if (warm) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("raw consumer: metadata: %s", rd_kafka_err2str(err));
        rd_kafka_metadata_destroy(md);
    }
    double t0 = bp_now_s(), t1 = 0, tf = 0;
    assign_all(rk, inputs, 4, o->partitions, warm ? 0 : RD_KAFKA_OFFSET_BEGINNING);
    double deadline = bp_now_s() + 600;
    while (eofs < need && bp_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eofs++;
        else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && n++ == 0)
            tf = bp_now_s();
        t1 = bp_now_s();
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *count = n;
    *first_s = tf > t0 ? tf - t0 : 0;
    return n > 1 && t1 > t0 ? (double)n / (t1 - t0) : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the worker, its stderr watched for its first assignment ---- */

typedef struct watched {
    int fd;
    FILE *log;
    double assigned_at; /* first "worker: assigned" with partitions, 0 until then */
    double idle_at;     /* "worker: stopping reason=idle", 0 until then */
    double spawned_at;  /* each log line is prefixed with its time since then */
    pthread_mutex_t mu;
} watched_t;

static void *watch(void *arg)
{
    watched_t *w = arg;
    FILE *in = fdopen(w->fd, "r");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, in) > 0) {
        fprintf(w->log, "t=%.3f %s", bp_now_s() - w->spawned_at, line);
        if (strstr(line, "worker: assigned") && !strstr(line, "partitions=none")) {
            pthread_mutex_lock(&w->mu);
            if (w->assigned_at == 0)
                w->assigned_at = bp_now_s();
            pthread_mutex_unlock(&w->mu);
        }
        if (strstr(line, "worker: stopping reason=idle")) {
            pthread_mutex_lock(&w->mu);
            w->idle_at = bp_now_s();
            pthread_mutex_unlock(&w->mu);
        }
    }
    free(line);
    fclose(in);
    fflush(w->log);
    return NULL;
}

static pid_t worker_start(const opts_t *o, const char *dir, const char *tag,
                          const char *bootstrap, int exit_idle, watched_t *w, pthread_t *th)
{
    char props[512], log[512], state[512];
    snprintf(props, sizeof props, "%s/worker-%s.properties", dir, tag);
    snprintf(log, sizeof log, "%s/worker-%s.log", dir, tag);
    snprintf(state, sizeof state, "%s/state-%s", dir, tag);
    FILE *f = fopen(props, "w");
    if (f == NULL)
        die("%s: %s", props, strerror(errno));
    fprintf(f,
            "kafka.bootstrap.servers=%s\nstate.dir=%s\nexit.when.idle=%s\n"
            "kafka.session.timeout.ms=6000\nkafka.heartbeat.interval.ms=500\nlog.format=text\n",
            bootstrap, state, exit_idle ? "true" : "false");
    for (int i = 0; i < o->n_worker_kv; i++)
        fprintf(f, "%s\n", o->worker_kv[i]);
    fclose(f);

    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    char *argv[] = {(char *)o->bin, "worker", "--config", props, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, o->bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("cannot run %s: %s", o->bin, strerror(rc));
    close(pfd[1]);
    w->fd = pfd[0];
    w->log = fopen(log, "w");
    w->assigned_at = 0;
    w->idle_at = 0;
    w->spawned_at = bp_now_s();
    pthread_mutex_init(&w->mu, NULL);
    if (w->log == NULL || pthread_create(th, NULL, watch, w) != 0)
        die("cannot watch the worker");
    return pid;
}

/* ---- latency ---- */

typedef struct idmap {
    char **key;
    double *at;
    size_t cap, n;
} idmap_t;

static size_t idmap_slot(const idmap_t *m, const char *k)
{
    size_t i = (size_t)rs_fnv1a64_update_str(RS_FNV1A64_SHORT_BASIS, k) & (m->cap - 1);
    while (m->key[i] != NULL && strcmp(m->key[i], k) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void idmap_put(idmap_t *m, const char *k, double at)
{
    if ((m->n + 1) * 2 > m->cap) {
        idmap_t g = {calloc(m->cap ? m->cap * 2 : 1024, sizeof(char *)),
                     calloc(m->cap ? m->cap * 2 : 1024, sizeof(double)),
                     m->cap ? m->cap * 2 : 1024, 0};
        if (g.key == NULL || g.at == NULL)
            die("out of memory");
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i] != NULL) {
                size_t s = idmap_slot(&g, m->key[i]);
                g.key[s] = m->key[i];
                g.at[s] = m->at[i];
                g.n++;
            }
        free(m->key);
        free(m->at);
        *m = g;
    }
    size_t s = idmap_slot(m, k);
    if (m->key[s] == NULL) {
        m->key[s] = strdup(k);
        m->at[s] = at;
        m->n++;
    }
}

static double idmap_take(idmap_t *m, const char *k)
{
    if (m->cap == 0)
        return -1;
    size_t s = idmap_slot(m, k);
    if (m->key[s] == NULL || m->at[s] < 0)
        return -1;
    double at = m->at[s];
    m->at[s] = -1; /* measured once: the first entry that names it */
    return at;
}

static void latency(const opts_t *o, const char *dir, const char *book)
{
    broker_t b;
    watched_t w;
    pthread_t th;
    char err[512], prodlog[512], rate[32];
    broker_start(&b, o, dir, "latency");
    pid_t worker = worker_start(o, dir, "latency", b.bootstrap, 0, &w, &th);
    for (int i = 0; i < 600 && w.assigned_at == 0; i++)
        usleep(50000);
    if (w.assigned_at == 0)
        die("the worker was not assigned its partitions in 30 s");

    /* decoders for what a downstream consumer reads */
    rs_registry_t *reg = NULL;
    rs_avro_cache_t *cache = NULL;
    rs_entry_reader_t *er = NULL;
    if (rs_registry_new_local(&reg, RS_SCHEMA_DIR, err, sizeof err) != 0 ||
        rs_avro_cache_new(&cache, err, sizeof err) != 0 ||
        rs_entry_reader_new(&er, err, sizeof err) != 0)
        die("decoders: %s", err);
    rs_avro_cache_set_lookup(cache, rs_registry_lookup, reg);

    rd_kafka_t *rk = raw_consumer(b.bootstrap, "bench-latency");
    const char *const all[] = {"contracts", "invoices", "payments", "usage", "revenue.journal"};
    assign_all(rk, all, 5, o->partitions, 0);

    snprintf(prodlog, sizeof prodlog, "%s/produce-latency.log", dir);
    snprintf(rate, sizeof rate, "%ld", o->rate);
    char *pargv[] = {(char *)o->bin, "produce", "--bootstrap", b.bootstrap,
                     "--rate",       rate,      (char *)book,  NULL};
    pid_t prod = bp_spawn(o->bin, pargv, NULL, prodlog);

    idmap_t ids = {0};
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    long inputs_seen = 0;
    int prod_done = 0;
    double quiet_since = 0, end = bp_now_s() + (double)o->seconds + 120;
    rs_event_t *ev = malloc(sizeof *ev);
    rs_entry_t *entry = malloc(sizeof *entry);
    if (lat == NULL || ev == NULL || entry == NULL)
        die("out of memory");
    while (bp_now_s() < end) {
        if (!prod_done) {
            int ws;
            if (waitpid(prod, &ws, WNOHANG) == prod) {
                prod_done = 1;
                quiet_since = bp_now_s();
            }
        } else if (bp_now_s() - quiet_since > 5) {
            break; /* five quiet seconds after the last input */
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 50);
        if (m == NULL)
            continue;
        double at = bp_now_s();
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *topic = rd_kafka_topic_name(m->rkt);
            if (strcmp(topic, "revenue.journal") == 0) {
                if (rs_codec_entry_from_avro(er, m->payload, m->len, entry, err, sizeof err) ==
                    0) {
                    for (int i = 0; i < entry->n_sources; i++) {
                        double t = idmap_take(&ids, entry->sources[i]);
                        if (t < 0)
                            continue;
                        if (n == cap && (lat = realloc(lat, (cap *= 2) * sizeof *lat)) == NULL)
                            die("out of memory");
                        lat[n++] = at - t;
                    }
                }
                if (prod_done)
                    quiet_since = at;
            } else {
                rs_event_init(ev);
                if (rs_avro_decode_event(cache, m->payload, m->len, ev, err, sizeof err) == 0) {
                    /* measured: the events that post an entry of their own
                     * at once (an invoice, a payment); recognition and usage
                     * post when event time passes the month end */
                    if (ev->type == RS_EV_INVOICE_ISSUED || ev->type == RS_EV_PAYMENT_RECEIVED)
                        idmap_put(&ids, ev->event_id, at);
                    inputs_seen++;
                }
                rs_event_clear(ev);
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (!prod_done) {
        kill(prod, SIGTERM);
        wait_exit(prod, NULL);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    kill(worker, SIGTERM);
    int wrc = wait_exit(worker, NULL);
    pthread_join(th, NULL);
    fclose(w.log);
    broker_stop(&b);
    qsort(lat, n, sizeof *lat, cmp_double);
    printf("bench_e2e: latency rate=%ld seconds=%ld inputs=%ld measured=%zu worker_exit=%d\n",
           o->rate, o->seconds, inputs_seen, n, wrc);
    if (n > 0)
        printf("bench_e2e: latency_ms p50=%.1f p90=%.1f p99=%.1f max=%.1f\n", lat[n / 2] * 1000,
               lat[n * 9 / 10] * 1000, lat[n * 99 / 100] * 1000, lat[n - 1] * 1000);
    for (size_t i = 0; i < ids.cap; i++)
        free(ids.key[i]);
    free(ids.key);
    free(ids.at);
    free(lat);
    free(ev);
    free(entry);
    rs_entry_reader_destroy(er);
    rs_avro_cache_destroy(cache);
    rs_registry_destroy(reg);
}

/* ---- throughput ---- */

static void throughput(const opts_t *o, const char *dir, const char *book)
{
    broker_t b;
    char prodlog[512];
    broker_start(&b, o, dir, "throughput");
    snprintf(prodlog, sizeof prodlog, "%s/produce.log", dir);
    char *pargv[] = {(char *)o->bin, "produce", "--bootstrap", b.bootstrap, (char *)book, NULL};
    double t = bp_now_s();
    if (wait_exit(bp_spawn(o->bin, pargv, NULL, prodlog), NULL) != 0)
        die("produce failed (see %s)", prodlog);
    fprintf(stderr, "bench_e2e: progress produced book in %.1f s\n", bp_now_s() - t);

    double rates[16], raw_broker_cpu[16], first_s = 0, cold_first_s = 0;
    long count = 0;
    double cold = raw_rate(o, b.bootstrap, 0, &count, &cold_first_s);
    fprintf(stderr, "bench_e2e: progress raw run=cold messages=%ld rate=%.0f/s\n", count, cold);
    for (int i = 0; i < o->raw_runs; i++) {
        double c0 = bp_cpu_s(b.pid);
        rates[i] = raw_rate(o, b.bootstrap, 1, &count, &first_s);
        raw_broker_cpu[i] = bp_cpu_s(b.pid) - c0;
        fprintf(
            stderr,
            "bench_e2e: progress raw run=%d messages=%ld rate=%.0f/s first_message_s=%.3f\n",
            i + 1, count, rates[i], first_s);
    }
    qsort(rates, (size_t)o->raw_runs, sizeof *rates, cmp_double);
    qsort(raw_broker_cpu, (size_t)o->raw_runs, sizeof *raw_broker_cpu, cmp_double);
    double raw = rates[o->raw_runs / 2];

    watched_t w;
    pthread_t th;
    struct rusage ru;
    double t0 = bp_now_s(), bc0 = bp_cpu_s(b.pid);
    pid_t pid = worker_start(o, dir, "throughput", b.bootstrap, 1, &w, &th);
    int rc = wait_exit(pid, &ru);
    double t1 = bp_now_s(), broker_cpu = bp_cpu_s(b.pid) - bc0;
    pthread_join(th, NULL);
    fclose(w.log);
    char log[512];
    snprintf(log, sizeof log, "%s/worker-throughput.log", dir);
    char *text = slurp(log);
    long long records = field_of(text, "worker: stopped", "records", 0);
    long long batches = field_of(text, "worker: stopped", "batches", 0);
    static const char *const phases[] = {"plan_ms",      "apply_ms",  "deliver_ms",
                                         "changelog_ms", "commit_ms", "staged_kib",
                                         "staged_keys"};
    long long phase[7];
    for (int i = 0; i < 7; i++)
        phase[i] = field_of(text, "worker: batch ", phases[i], 1);
    free(text);
    broker_stop(&b);
    if (rc != 0 || records <= 0 || w.assigned_at == 0)
        die("the worker failed (exit %d, records %lld; see %s)", rc, records, log);
    /* Done when the worker reports itself idle: every partition at its end
     * (the raw consumer's last EOF), every record applied, its outputs and
     * changelog delivered and its state committed. Leaving the group and
     * closing the store come after and are printed apart (exit_seconds). */
    double done = w.idle_at > 0 ? w.idle_at : t1;
    double worker = (double)records / (done - w.assigned_at);
    printf("bench_e2e: book contracts=%ld partitions=%d messages=%ld\n", o->contracts,
           o->partitions, count);
    printf("bench_e2e: raw_consumer median_rate=%.0f/s runs=%d warm=1\n", raw, o->raw_runs);
    printf("bench_e2e: raw_consumer cold rate=%.0f/s first_message_s=%.3f\n", cold,
           cold_first_s);
    printf("bench_e2e: worker rate=%.0f/s records=%lld batches=%lld records_per_batch=%.1f "
           "seconds=%.2f exit_seconds=%.2f wall_seconds=%.2f peak_rss_mib=%.1f\n",
           worker, records, batches, batches > 0 ? (double)records / (double)batches : 0,
           done - w.assigned_at, t1 - w.assigned_at, t1 - t0, (double)ru.ru_maxrss / 1024.0);
    /* CPU time is steadier than the rate when other programs load the
     * machine: events per CPU second of the worker */
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("bench_e2e: worker cpu_seconds=%.2f records_per_cpu_second=%.0f\n", cpu,
           cpu > 0 ? (double)records / cpu : 0);
    printf("bench_e2e: worker phases_ms plan=%lld apply=%lld deliver=%lld changelog=%lld "
           "commit=%lld staged_mib=%.1f staged_keys=%lld\n",
           phase[0], phase[1], phase[2], phase[3], phase[4], (double)phase[5] / 1024.0,
           phase[6]);
    /* Both share the machine's cores with the broker: what it spent serving
     * each (the worker's run includes its outputs and changelog) */
    printf("bench_e2e: broker cpu_seconds raw_median=%.2f worker_run=%.2f\n",
           raw_broker_cpu[o->raw_runs / 2], broker_cpu);
    printf("bench_e2e: ratio worker/raw=%.3f worker/raw_cold=%.3f\n",
           raw > 0 ? worker / raw : 0, cold > 0 ? worker / cold : 0);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"contracts", required_argument, NULL, 'n'},
                                       {"partitions", required_argument, NULL, 'p'},
                                       {"seed", required_argument, NULL, 's'},
                                       {"raw-runs", required_argument, NULL, 'r'},
                                       {"worker-config", required_argument, NULL, 'w'},
                                       {"rate", required_argument, NULL, 'R'},
                                       {"seconds", required_argument, NULL, 'T'},
                                       {"no-throughput", no_argument, NULL, 'N'},
                                       {"bin", required_argument, NULL, 'b'},
                                       {"keep", no_argument, NULL, 'k'},
                                       {NULL, 0, NULL, 0}};
    opts_t o = {.contracts = 2000,
                .seed = 1,
                .partitions = 16,
                .raw_runs = 5,
                .throughput = 1,
                .bin = RS_BINARY_DIR "/revstream"};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.contracts = atol(optarg);
            break;
        case 'p':
            o.partitions = atoi(optarg);
            break;
        case 's':
            o.seed = atol(optarg);
            break;
        case 'r':
            o.raw_runs = atoi(optarg);
            break;
        case 'w':
            if (o.n_worker_kv == 32)
                die("too many --worker-config");
            o.worker_kv[o.n_worker_kv++] = optarg;
            break;
        case 'R':
            o.rate = atol(optarg);
            break;
        case 'T':
            o.seconds = atol(optarg);
            break;
        case 'N':
            o.throughput = 0;
            break;
        case 'b':
            o.bin = optarg;
            break;
        case 'k':
            o.keep = 1;
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of bench/bench_e2e.c\n");
            return 1;
        }
    }
    if (o.contracts < 1 || o.partitions < 1 || o.raw_runs < 1 || o.raw_runs > 15 ||
        (o.rate > 0) != (o.seconds > 0))
        die("bad options (--rate and --seconds go together)");

    char dir[] = "/tmp/bench_e2e.XXXXXX", book[600], cmd[2048];
    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(book, sizeof book, "%s/book.jsonl", dir);
    char n[32], s[32];
    snprintf(n, sizeof n, "%ld", o.contracts);
    snprintf(s, sizeof s, "%ld", o.seed);
    char *gargv[] = {(char *)o.bin, "generate", "--contracts", n, "--seed", s,
                     "--out",       book,       NULL};
    if (wait_exit(bp_spawn(o.bin, gargv, NULL, NULL), NULL) != 0)
        die("generate failed");
    printf("bench_e2e: dir=%s\n", dir);
    if (o.throughput)
        throughput(&o, dir, book);
    if (o.rate > 0) {
        /* a book of rate x seconds events: the first lines of a generated one */
        char part[600];
        snprintf(part, sizeof part, "%s/latency.jsonl", dir);
        snprintf(cmd, sizeof cmd, "head -n %ld '%s' > '%s'", o.rate * o.seconds, book, part);
        if (system(cmd) != 0)
            die("cannot cut the latency book");
        latency(&o, dir, part);
    }
    fflush(stdout);
    if (!o.keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_e2e: warning: could not remove %s\n", dir);
    }
    return 0;
}
