/*
 * bench_restore — the changelog restore of `revstream worker` against a raw
 * read of the same changelog, in the same run.
 *
 *   bench_restore [--contracts N] [--partitions P] [--seed S] [--runs K]
 *                 [--worker-config KEY=VALUE]... [--bin PATH] [--compare-bin PATH]
 *                 [--keep]
 *
 * A book of N generated contracts (`revstream generate`, default 20,000) is
 * put on an embedded broker (`revstream broker`, P partitions, default 64:
 * the broker keeps ~5 MB of each partition's log, and the 20,000-contract
 * book's changelog is ~14 MB per partition at 16 partitions)
 * by `revstream produce` (Avro). A first worker (fresh state dir,
 * exit.when.idle) processes it and so writes the changelog. Then, K times
 * (default 5), alternating:
 *   - raw: a bare librdkafka consumer reads every record of the changelog
 *     (all P partitions, from offset 0, until EOF): records/s from the
 *     assignment to the last EOF;
 *   - restore: a worker with an empty state dir and a new group restores
 *     every partition from the changelog (and then finds nothing to
 *     consume and exits): records/s from its `restored partition=N
 *     records=…` lines and its `restore_all … ms=…` line (the wall time of
 *     the restores of one assignment; before that line existed, the sum of
 *     the per-partition times).
 * With --compare-bin, each run also restores with that other build (same
 * changelog, right after): its rate and restore / compare are printed.
 * It prints each run, the medians and the ratio restore / raw. Packed
 * seen-id records ("S/", many ids each) are also counted as the records
 * they replace (one per id: `unpacked_records`), and `unpacked_rate` is
 * that count over the restore's time, comparable with figures measured
 * before the packing (same book, same state). It checks
 * that every restore read as many records as the raw read and that the
 * restored stores hold the first worker's contracts and seen ids (counts
 * per partition).
 * Figures go to stdout as `bench_restore: key=value` lines; logs stay in
 * the work dir with --keep. Not a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_proc.h"
#include "rs_state.h"

#ifndef RS_BINARY_DIR
#define RS_BINARY_DIR "."
#endif

#define CHANGELOG "revenue.state-changelog"
#define MAX_RUNS 15

typedef struct opts {
    long contracts, seed;
    int partitions, runs, keep;
    const char *bin, *cmp_bin;
    const char *worker_kv[32];
    int n_worker_kv;
} opts_t;

/* The broker this run started (0 none): stopped by die() too. */
static pid_t the_broker;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_restore: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (the_broker > 0) {
        kill(the_broker, SIGTERM);
        bp_wait(the_broker, NULL);
    }
    exit(1);
}

/* The sum of " key=N" over the log's lines that contain tag. */
static long long log_sum(const char *log, const char *tag, const char *key)
{
    char pat[64];
    long long sum = 0;
    snprintf(pat, sizeof pat, " %s=", key);
    for (const char *p = log ? strstr(log, tag) : NULL; p; p = strstr(p + 1, tag)) {
        const char *nl = strchr(p, '\n'), *k = strstr(p, pat);
        if (k != NULL && (nl == NULL || k < nl))
            sum += strtoll(k + strlen(pat), NULL, 10);
    }
    return sum;
}

/* The restore's wall time in a worker's log: its `restore_all … ms=` line,
 * or for builds without that line the per-partition times (one after
 * another) summed. */
static long long restore_ms(const char *log)
{
    long long ms = log_sum(log, "worker: restore_all ", "ms");
    return ms > 0 ? ms : log_sum(log, "worker: restored partition=", "ms");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void broker_start(const opts_t *o, const char *dir, pid_t *pid, char *bs, size_t bslen)
{
    char file[512], log[512], parts[16];
    snprintf(file, sizeof file, "%s/bootstrap", dir);
    snprintf(log, sizeof log, "%s/broker.log", dir);
    snprintf(parts, sizeof parts, "%d", o->partitions);
    char *argv[] = {(char *)o->bin, "broker", "--partitions", parts, "--bootstrap-file",
                    file,           NULL};
    *pid = the_broker = bp_spawn(o->bin, argv, NULL, log);
    for (int i = 0; i < 200; i++) {
        char *s = bp_slurp(file);
        if (s != NULL && s[0] != '\0') {
            snprintf(bs, bslen, "%s", strtok(s, "\n"));
            free(s);
            return;
        }
        free(s);
        usleep(50000);
    }
    die("the broker did not start (see %s)", log);
}

/* Run a worker with state dir <dir>/state-<tag>, group <tag>, until it
 * exits (exit.when.idle); its log in *log (caller frees). Returns its exit
 * status. */
static int run_worker(const opts_t *o, const char *bin, const char *dir, const char *tag,
                      const char *bs, const char *extra, char **log)
{
    char props[512], logf[512], state[512];
    snprintf(props, sizeof props, "%s/worker-%s.properties", dir, tag);
    snprintf(logf, sizeof logf, "%s/worker-%s.log", dir, tag);
    snprintf(state, sizeof state, "%s/state-%s", dir, tag);
    FILE *f = fopen(props, "w");
    if (f == NULL)
        die("%s: %s", props, strerror(errno));
    fprintf(f,
            "kafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=bench-restore-%s\n"
            "exit.when.idle=true\nkafka.session.timeout.ms=6000\n"
            "kafka.heartbeat.interval.ms=500\nlog.format=text\n",
            bs, state, tag);
    fputs(extra, f);
    for (int i = 0; i < o->n_worker_kv; i++)
        fprintf(f, "%s\n", o->worker_kv[i]);
    fclose(f);
    char *argv[] = {(char *)bin, "worker", "--config", props, NULL};
    int rc = bp_wait(bp_spawn(bin, argv, NULL, logf), NULL);
    *log = bp_slurp(logf);
    return rc;
}

/* Read all of the changelog once; records/s from the assignment to the last
 * EOF. *count gets the records read. */
static double raw_read(const opts_t *o, const char *bs, long *count, long *logical)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    /* the restore consumer's own fetch settings (rs_changelog_restore) */
    if (rd_kafka_conf_set(c, "bootstrap.servers", bs, err, sizeof err) ||
        rd_kafka_conf_set(c, "group.id", "bench-restore-raw", err, sizeof err) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(c, "max.partition.fetch.bytes", "16777216", err, sizeof err) ||
        rd_kafka_conf_set(c, "fetch.max.bytes", "67108864", err, sizeof err) ||
        rd_kafka_conf_set(c, "queued.min.messages", "200000", err, sizeof err) ||
        rd_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof err))
        die("consumer config: %s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (rk == NULL)
        die("consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(o->partitions);
    for (int p = 0; p < o->partitions; p++) {
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, CHANGELOG, p, &lo, &hi, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("watermarks of %s[%d]: %s", CHANGELOG, p, rd_kafka_err2str(e));
        if (lo != 0)
            die("%s[%d] starts at offset %lld: the broker trimmed it (more partitions or "
                "fewer contracts)",
                CHANGELOG, p, (long long)lo);
        rd_kafka_topic_partition_list_add(l, CHANGELOG, p)->offset = 0;
    }
    double t0 = bp_now_s(), t1 = t0, deadline = t0 + 300;
    if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("assign failed");
    rd_kafka_topic_partition_list_destroy(l);
    long n = 0, ids = 0;
    int eofs = 0;
    while (eofs < o->partitions && bp_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eofs++;
        else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n++;
            /* a packed seen-id record ("S/", "RSS2" u32 count) stands for
             * count records of the unpacked format */
            const unsigned char *v = m->payload;
            if (m->key_len > 0 && ((const char *)m->key)[0] == 'S' && m->len >= 8 && v)
                ids += (long)((uint32_t)v[4] | (uint32_t)v[5] << 8 | (uint32_t)v[6] << 16 |
                              (uint32_t)v[7] << 24) -
                       1;
        } else
            die("raw read: %s", rd_kafka_message_errstr(m));
        t1 = bp_now_s();
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk, NULL);
    rd_kafka_destroy(rk);
    *count = n;
    *logical = n + ids;
    return t1 > t0 ? (double)n / (t1 - t0) : 0;
}

typedef struct count_ctx {
    long n;
} count_ctx_t;

static int count_seen(void *opaque, const char *id, uint64_t h, uint64_t ch, int32_t period)
{
    (void)id;
    (void)h;
    (void)ch;
    (void)period;
    ((count_ctx_t *)opaque)->n++;
    return 0;
}

static int count_one(void *opaque, const char *id, const void *blob, size_t len)
{
    (void)id;
    (void)blob;
    (void)len;
    ((count_ctx_t *)opaque)->n++;
    return 0;
}

/* Contracts of each partition in the store at <dir>/state-<tag>, summed
 * (per[p]), and its seen ids (per[partitions + p]); -1 when this build
 * cannot read the store (--bin of another layout). */
static long stored_contracts(const opts_t *o, const char *dir, const char *tag, long *per)
{
    char path[512], err[512];
    rs_state_t *st = NULL;
    snprintf(path, sizeof path, "%s/state-%s", dir, tag);
    rs_state_opts_t so = {path, 0, 1, RS_STATE_SYNC_ON, 0, 0};
    if (rs_state_open(&st, &so, err, sizeof err) != 0) {
        fprintf(stderr, "bench_restore: contracts not counted: %s\n", err);
        return -1;
    }
    long sum = 0;
    for (int p = 0; p < o->partitions; p++) {
        count_ctx_t x = {0};
        if (rs_state_foreach_contract(st, p, count_one, &x, err, sizeof err) < 0)
            die("%s", err);
        per[p] = x.n;
        sum += x.n;
        count_ctx_t y = {0};
        if (rs_state_foreach_seen(st, p, count_seen, &y, err, sizeof err) < 0)
            die("%s", err);
        per[o->partitions + p] = y.n;
    }
    rs_state_destroy(st);
    return sum;
}

int main(int argc, char **argv)
{
    opts_t o = {20000, 7, 64, 5, 0, RS_BINARY_DIR "/revstream", NULL, {0}, 0};
    static const struct option lopts[] = {{"contracts", required_argument, 0, 'n'},
                                          {"partitions", required_argument, 0, 'p'},
                                          {"seed", required_argument, 0, 's'},
                                          {"runs", required_argument, 0, 'r'},
                                          {"worker-config", required_argument, 0, 'w'},
                                          {"bin", required_argument, 0, 'b'},
                                          {"compare-bin", required_argument, 0, 'c'},
                                          {"keep", no_argument, 0, 'k'},
                                          {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
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
            o.runs = atoi(optarg);
            break;
        case 'w':
            if (o.n_worker_kv == 32)
                die("too many --worker-config");
            o.worker_kv[o.n_worker_kv++] = optarg;
            break;
        case 'b':
            o.bin = optarg;
            break;
        case 'c':
            o.cmp_bin = optarg;
            break;
        case 'k':
            o.keep = 1;
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of bench/bench_restore.c\n");
            return 1;
        }
    }
    if (o.contracts < 1 || o.partitions < 1 || o.partitions > 64 || o.runs < 1 ||
        o.runs > MAX_RUNS)
        die("bad options");

    char dir[] = "/tmp/bench_restore.XXXXXX", book[600], cmd[700], n[32], s[32], bs[256];
    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(book, sizeof book, "%s/book.jsonl", dir);
    snprintf(n, sizeof n, "%ld", o.contracts);
    snprintf(s, sizeof s, "%ld", o.seed);
    char *gargv[] = {(char *)o.bin, "generate", "--contracts", n, "--seed", s,
                     "--out",       book,       NULL};
    if (bp_wait(bp_spawn(o.bin, gargv, NULL, NULL), NULL) != 0)
        die("generate failed");
    printf("bench_restore: dir=%s contracts=%ld partitions=%d\n", dir, o.contracts,
           o.partitions);
    pid_t broker;
    broker_start(&o, dir, &broker, bs, sizeof bs);
    char prodlog[600];
    snprintf(prodlog, sizeof prodlog, "%s/produce.log", dir);
    char *pargv[] = {(char *)o.bin, "produce", "--bootstrap", bs, book, NULL};
    if (bp_wait(bp_spawn(o.bin, pargv, NULL, prodlog), NULL) != 0)
        die("produce failed (see %s)", prodlog);

    char *log = NULL;
    double t = bp_now_s();
    /* big batches: fewer changelog records, so the broker keeps them all
     * whatever the machine's speed (month closes still write every
     * contract once a month) */
    int rc = run_worker(&o, o.bin, dir, "fill", bs,
                        "batch.max.records=100000\nbatch.max.ms=2000\n", &log);
    if (rc != 0)
        die("the first worker exited %d (see %s/worker-fill.log)", rc, dir);
    printf("bench_restore: fill records=%lld seconds=%.1f\n",
           log_sum(log, "worker: batch ", "records"), bp_now_s() - t);
    free(log);
    long *want = calloc(2 * (size_t)o.partitions, sizeof *want),
         *got = calloc(2 * (size_t)o.partitions, sizeof *got);
    if (want == NULL || got == NULL)
        die("out of memory");
    long contracts = stored_contracts(&o, dir, "fill", want);

    double raw[MAX_RUNS], rest[MAX_RUNS], ratio[MAX_RUNS], cmp[MAX_RUNS];
    long raw_n = 0, logical = 0;
    double lrate[MAX_RUNS];
    int ok = 1;
    for (int i = 0; i < o.runs; i++) {
        raw[i] = raw_read(&o, bs, &raw_n, &logical);
        char tag[32];
        snprintf(tag, sizeof tag, "restore%d", i + 1);
        rc = run_worker(&o, o.bin, dir, tag, bs, "", &log);
        long long recs = log_sum(log, "worker: restored partition=", "records");
        long long parts = 0;
        for (const char *p = log ? strstr(log, "worker: restored partition=") : NULL; p;
             p = strstr(p + 1, "worker: restored partition="))
            parts++;
        long long ms = restore_ms(log);
        long long applied = log_sum(log, "worker: batch ", "applied");
        free(log);
        long restored = stored_contracts(&o, dir, tag, got);
        int same = restored == contracts &&
                   memcmp(want, got, 2 * (size_t)o.partitions * sizeof *want) == 0;
        const char *same_s = restored < 0 ? "unchecked" : same ? "yes" : "NO";
        same = same || restored < 0;
        rest[i] = ms > 0 ? (double)recs * 1000.0 / (double)ms : 0;
        lrate[i] = ms > 0 ? (double)logical * 1000.0 / (double)ms : 0;
        ratio[i] = raw[i] > 0 ? rest[i] / raw[i] : 0;
        printf("bench_restore: run=%d raw_records=%ld raw_rate=%.0f restore_records=%lld "
               "partitions=%lld ms=%lld restore_rate=%.0f ratio=%.2f unpacked_records=%ld "
               "unpacked_rate=%.0f applied_after=%lld contracts=%ld "
               "same_contracts_and_seen_ids=%s exit=%d\n",
               i + 1, raw_n, raw[i], recs, parts, ms, rest[i], ratio[i], logical, lrate[i],
               applied, restored, same_s, rc);
        fflush(stdout);
        if (rc != 0 || recs != raw_n || !same || applied != 0)
            ok = 0;
        if (o.cmp_bin != NULL) { /* the other build, same changelog, same run */
            char ctag[32];
            snprintf(ctag, sizeof ctag, "compare%d", i + 1);
            int crc = run_worker(&o, o.cmp_bin, dir, ctag, bs, "", &log);
            long long cms = restore_ms(log),
                      crecs = log_sum(log, "worker: restored partition=", "records");
            free(log);
            cmp[i] = cms > 0 ? (double)crecs * 1000.0 / (double)cms : 0;
            printf("bench_restore: run=%d compare_bin=%s records=%lld ms=%lld rate=%.0f "
                   "ratio=%.2f restore_over_compare=%.2f exit=%d\n",
                   i + 1, o.cmp_bin, crecs, cms, cmp[i], raw[i] > 0 ? cmp[i] / raw[i] : 0,
                   cmp[i] > 0 ? rest[i] / cmp[i] : 0, crc);
            fflush(stdout);
            if (crc != 0 || crecs != raw_n)
                ok = 0;
        }
        if (!o.keep) {
            snprintf(cmd, sizeof cmd, "rm -rf '%s/state-%s' '%s/state-compare%d'", dir, tag,
                     dir, i + 1);
            if (system(cmd) != 0)
                fprintf(stderr, "bench_restore: warning: could not remove a state dir\n");
        }
    }
    if (o.cmp_bin != NULL)
        printf("bench_restore: compare_median=%.0f\n", median(cmp, o.runs));
    double mraw = median(raw, o.runs), mrest = median(rest, o.runs),
           mratio = median(ratio, o.runs), mlrate = median(lrate, o.runs);
    printf("bench_restore: changelog_records=%ld unpacked_records=%ld contracts=%ld "
           "raw_median=%.0f restore_median=%.0f ratio_median=%.2f unpacked_rate_median=%.0f "
           "runs=%d%s\n",
           raw_n, logical, contracts, mraw, mrest, mratio, mlrate, o.runs,
           ok ? "" : " CHECK_FAILED");
    kill(broker, SIGTERM);
    bp_wait(broker, NULL);
    free(want);
    free(got);
    if (!o.keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_restore: warning: could not remove %s\n", dir);
    }
    return ok ? 0 : 1;
}
