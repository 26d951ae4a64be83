/*
 * bench_rss — the real worker's resident memory with up to 1,000,000
 * contracts in state (issue 13: peak RSS <= 512 MiB, and flat in the book
 * once the contract cache is full).
 *
 *   bench_rss [--contracts N] [--partitions P] [--rate R] [--burst B]
 *             [--worker-config KEY=VALUE]... [--bin PATH] [--keep]
 *
 * An embedded broker (`revstream broker`, P partitions, default 32) and one
 * `revstream worker` (Avro in and out, durable state, the defaults but for
 * what --worker-config sets). A book of N simple contracts (default
 * 1,000,000; each booked with one 12-month ratable line, invoiced and
 * paid: three events, event time spread evenly over January and February
 * 2026, so the worker closes January with about half the book in state) is
 * written by this program into `revstream produce --rate R -` (default R =
 * 25,000 events/s): paced input the worker keeps up with, since the broker
 * keeps only ~5 MB per partition (the changelog and the journal the worker
 * writes are trimmed by it at this size; the worker only writes them).
 * Then a backlog burst: B payments (default 200,000) to random contracts,
 * produced at once, unpaced.
 *
 * The worker's VmRSS (/proc/PID/status) is sampled every 0.2 s; the
 * contracts in state are the events the worker's batch log says it
 * applied, over 3. Printed (`bench_rss: key=value` lines): the baseline
 * (the worker assigned, nothing in state), then RSS at N/10, N/4, N/2 and N
 * contracts in state (at 1,000,000: 100k, 250k, 500k, 1M), the peak of the
 * paced part, the burst's peak, ru_maxrss from wait4() at the end, the
 * worker's CPU seconds, and the ratios: RSS at N to RSS at N/4 (flat once
 * the cache is full: ~1.0) and the peak to the 512 MiB target. Every
 * sample goes to DIR/rss.tsv (seconds, VmRSS MiB, events applied, cached
 * contracts; kept with --keep) with the worker's log.
 *
 * If the worker falls behind the paced rate by more than the broker keeps,
 * its input is trimmed and it never applies the whole book: the run stops
 * after a timeout and says so (lower --rate). Not a test: tests/ runs a
 * tiny smoke run of it (bench_rss_smoke).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#define RSS_TARGET_MIB 512.0
#define SPAN_S (59L * 86400L) /* the book's event time: 2026-01-01 .. 2026-02-28 */

typedef struct opts {
    long contracts, rate, burst;
    int partitions, keep;
    const char *bin;
    const char *kv[32];
    int nkv;
} opts_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench_rss: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- what the worker's log says (a thread reads its stderr) ---- */

static atomic_llong applied; /* events applied, over every batch */
static atomic_long cached;   /* contracts in the cache after the last batch */
static atomic_int assigned;  /* the first assignment with partitions */

typedef struct logw {
    int fd;
    FILE *out;
} logw_t;

static long long after(const char *line, const char *key)
{
    const char *p = strstr(line, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : 0;
}

static void *read_log(void *arg)
{
    logw_t *w = arg;
    FILE *in = fdopen(w->fd, "r");
    char *line = NULL;
    size_t cap = 0;
    while (in != NULL && getline(&line, &cap, in) > 0) {
        fputs(line, w->out);
        if (strstr(line, "worker: assigned") && !strstr(line, "partitions=none"))
            atomic_store(&assigned, 1);
        if (strstr(line, "worker: batch ")) {
            atomic_fetch_add(&applied, after(line, " applied="));
            atomic_store(&cached, (long)after(line, " cached="));
        }
    }
    free(line);
    if (in != NULL)
        fclose(in);
    fflush(w->out);
    return NULL;
}

/* Spawn bin argv with stdin from `in` (-1: /dev/null), stdout to /dev/null
 * and stderr to `errfd` (or the file errpath). */
static pid_t spawn_io(const char *bin, char *const argv[], int in, int errfd,
                      const char *errpath)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0)
        posix_spawn_file_actions_adddup2(&fa, in, 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (errfd >= 0)
        posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    else
        posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        die("cannot run %s: %s", bin, strerror(rc));
    return pid;
}

static double vmrss_mib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double kib = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtod(line + 6, NULL);
    if (f != NULL)
        fclose(f);
    return kib / 1024.0;
}

/* ---- the book, written into a producer's stdin ---- */

/* "2026-MM-DDTHH:MM:SSZ" for `s` seconds after 2026-01-01T00:00:00Z (the
 * first three months), and the date alone in day[11]. */
static void stamp(long s, char at[32], char day[16])
{
    static const int mdays[] = {31, 28, 31};
    unsigned long us = (unsigned long)s;
    unsigned d = (unsigned)(us / 86400 % 90), sec = (unsigned)(us % 86400), m = 0;
    while (m < 2 && d >= (unsigned)mdays[m])
        d -= (unsigned)mdays[m++];
    snprintf(day, 16, "2026-%02u-%02u", m + 1, d % 31 + 1);
    snprintf(at, 32, "%sT%02u:%02u:%02uZ", day, sec / 3600, sec / 60 % 60, sec % 60);
}

typedef struct feed {
    int fd;
    long n, burst, contracts;
} feed_t;

static void *write_book(void *arg)
{
    feed_t *f = arg;
    FILE *out = fdopen(f->fd, "w");
    char at[32], day[16];
    uint64_t seed = 42;
    if (out == NULL)
        die("fdopen: %s", strerror(errno));
    for (long i = 0; i < f->n; i++) { /* contract i: booked, invoiced, paid */
        long amount = 1200 + i % 1000;
        stamp(i * (SPAN_S / f->n), at, day);
        fprintf(out,
                "{\"event_id\":\"b%ld\",\"type\":\"contract.booked\",\"contract_id\":"
                "\"C%08ld\",\"occurred_at\":\"%s\",\"customer_id\":\"K%ld\",\"currency\":"
                "\"USD\",\"booked_on\":\"%s\",\"lines\":[{\"line_id\":\"L1\",\"product\":"
                "\"P%ld\",\"recognition\":\"ratable_monthly\",\"start\":\"%s\",\"end\":"
                "\"2026-12-31\",\"amount\":\"%ld.00\"}]}\n",
                i, i, at, i % 5000, day, i % 20, day, amount);
        fprintf(out,
                "{\"event_id\":\"i%ld\",\"type\":\"invoice.issued\",\"contract_id\":"
                "\"C%08ld\",\"occurred_at\":\"%s\",\"invoice_id\":\"I%ld\",\"issued_on\":"
                "\"%s\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"%ld.00\"}]}\n",
                i, i, at, i, day, amount);
        fprintf(out,
                "{\"event_id\":\"p%ld\",\"type\":\"payment.received\",\"contract_id\":"
                "\"C%08ld\",\"occurred_at\":\"%s\",\"payment_id\":\"P%ld\",\"invoice_id\":"
                "\"I%ld\",\"amount\":\"%ld.00\",\"received_on\":\"%s\"}\n",
                i, i, at, i, i, amount, day);
    }
    stamp(SPAN_S, at, day); /* the burst: the book's last second */
    for (long k = 0; k < f->burst; k++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        long i = (long)((seed >> 33) % (uint64_t)f->contracts);
        fprintf(out,
                "{\"event_id\":\"x%ld\",\"type\":\"payment.received\",\"contract_id\":"
                "\"C%08ld\",\"occurred_at\":\"%s\",\"payment_id\":\"X%ld\",\"invoice_id\":"
                "\"I%ld\",\"amount\":\"1.00\",\"received_on\":\"%s\"}\n",
                k, i, at, k, i, day);
    }
    fclose(out);
    return NULL;
}

/* Start `revstream produce` (rate 0: unpaced) and a thread writing n
 * contracts or `burst` payments into it. */
static pid_t produce(const opts_t *o, const char *dir, const char *bootstrap, long rate,
                     feed_t *f, pthread_t *th, const char *tag)
{
    int pfd[2];
    char log[512], r[32];
    snprintf(log, sizeof log, "%s/produce-%s.log", dir, tag);
    snprintf(r, sizeof r, "%ld", rate);
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    char *argv[] = {(char *)o->bin, "produce", "--bootstrap", (char *)bootstrap,
                    "--rate",       r,         "-",           NULL};
    pid_t pid = spawn_io(o->bin, argv, pfd[0], -1, log);
    close(pfd[0]);
    f->fd = pfd[1];
    f->contracts = o->contracts;
    if (pthread_create(th, NULL, write_book, f) != 0)
        die("thread");
    return pid;
}

/* ---- the run ---- */

typedef struct sampler {
    pid_t worker;
    double peak, last, t0;
    FILE *tsv; /* every sample: seconds, VmRSS MiB, events applied, cached */
} sampler_t;

static void sample(sampler_t *s)
{
    s->last = vmrss_mib(s->worker);
    if (s->last > s->peak)
        s->peak = s->last;
    if (s->tsv != NULL)
        fprintf(s->tsv, "%.1f\t%.1f\t%lld\t%ld\n", bp_now_s() - s->t0, s->last,
                (long long)atomic_load(&applied), atomic_load(&cached));
}

/* Sample until the worker applied `target` events or `timeout` s passed;
 * print a line at each checkpoint of contracts in state crossed. 0, or -1
 * on the timeout. */
static int watch_until(sampler_t *s, long long target, double timeout, const long *checks,
                       double *at, int *next, int nchecks)
{
    double end = bp_now_s() + timeout, said = bp_now_s();
    for (;;) {
        sample(s);
        long long a = atomic_load(&applied);
        while (checks != NULL && *next < nchecks && a / 3 >= checks[*next]) {
            printf("bench_rss: at contracts_in_state=%ld rss_mib=%.1f peak_rss_mib=%.1f "
                   "cached=%ld seconds=%.1f\n",
                   checks[*next], s->last, s->peak, atomic_load(&cached), bp_now_s() - s->t0);
            fflush(stdout);
            at[(*next)++] = s->last;
        }
        if (a >= target)
            return 0;
        if (bp_now_s() > end)
            return -1;
        if (bp_now_s() - said > 10) {
            fprintf(stderr, "bench_rss: progress applied=%lld of %lld rss_mib=%.1f\n", a,
                    target, s->last);
            said = bp_now_s();
        }
        usleep(200000);
    }
}

static void run(const opts_t *o, const char *dir)
{
    char bs[512], blog[512], wlog[512], props[512], state[512], parts[16];
    snprintf(bs, sizeof bs, "%s/bootstrap", dir);
    snprintf(blog, sizeof blog, "%s/broker.log", dir);
    snprintf(wlog, sizeof wlog, "%s/worker.log", dir);
    snprintf(props, sizeof props, "%s/worker.properties", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(parts, sizeof parts, "%d", o->partitions);

    char *bargv[] = {
        (char *)o->bin, "broker", "--partitions", parts, "--bootstrap-file", bs, NULL};
    pid_t broker = bp_spawn(o->bin, bargv, NULL, blog);
    char bootstrap[256] = "";
    for (int i = 0; i < 200 && bootstrap[0] == '\0'; i++) {
        char *s = bp_slurp(bs);
        if (s != NULL && s[0] != '\0')
            snprintf(bootstrap, sizeof bootstrap, "%s", strtok(s, "\n"));
        free(s);
        usleep(50000);
    }
    if (bootstrap[0] == '\0')
        die("the broker did not start (see %s)", blog);

    FILE *f = fopen(props, "w");
    if (f == NULL)
        die("%s: %s", props, strerror(errno));
    fprintf(f,
            "kafka.bootstrap.servers=%s\nstate.dir=%s\nexit.when.idle=false\n"
            "kafka.session.timeout.ms=6000\nkafka.heartbeat.interval.ms=500\nlog.format=text\n",
            bootstrap, state);
    for (int i = 0; i < o->nkv; i++)
        fprintf(f, "%s\n", o->kv[i]);
    fclose(f);
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    char *wargv[] = {(char *)o->bin, "worker", "--config", props, NULL};
    char tsv[512];
    snprintf(tsv, sizeof tsv, "%s/rss.tsv", dir);
    sampler_t s = {spawn_io(o->bin, wargv, -1, pfd[1], NULL), 0, 0, bp_now_s(),
                   fopen(tsv, "w")};
    close(pfd[1]);
    logw_t lw = {pfd[0], fopen(wlog, "w")};
    pthread_t lth;
    if (lw.out == NULL || pthread_create(&lth, NULL, read_log, &lw) != 0)
        die("cannot read the worker's log");
    for (int i = 0; i < 600 && !atomic_load(&assigned); i++)
        usleep(100000);
    if (!atomic_load(&assigned))
        die("the worker was not assigned its partitions in 60 s (see %s)", wlog);
    sleep(2);
    sample(&s);
    double baseline = s.last;
    printf("bench_rss: book contracts=%ld partitions=%d rate=%ld burst=%ld\n", o->contracts,
           o->partitions, o->rate, o->burst);
    printf("bench_rss: baseline rss_mib=%.1f (the worker assigned, no contract in state)\n",
           baseline);
    fflush(stdout);

    /* paced: the book */
    long checks[4] = {o->contracts / 10, o->contracts / 4, o->contracts / 2, o->contracts};
    double at_check[4] = {0, 0, 0, 0};
    int next = 0;
    feed_t book = {-1, o->contracts, 0, 0};
    pthread_t pth;
    s.t0 = bp_now_s();
    pid_t prod = produce(o, dir, bootstrap, o->rate, &book, &pth, "book");
    long long target = 3LL * o->contracts;
    double budget = (double)target / (double)o->rate * 2 + 120;
    int late = watch_until(&s, target, budget, checks, at_check, &next, 4) != 0;
    pthread_join(pth, NULL);
    int prc = bp_wait(prod, NULL);
    double paced_peak = s.peak, paced_s = bp_now_s() - s.t0;
    if (late || prc != 0) {
        fprintf(stderr,
                "bench_rss: the worker did not apply the book (produce exit %d, applied %lld "
                "of %lld): it fell behind the paced rate and the broker trimmed its input? "
                "lower --rate (see %s)\n",
                prc, (long long)atomic_load(&applied), target, dir);
    } else {
        printf(
            "bench_rss: paced events=%lld seconds=%.1f events_per_s=%.0f peak_rss_mib=%.1f\n",
            target, paced_s, (double)target / paced_s, paced_peak);
        /* the book in state, no input: what stays */
        for (int i = 0; i < 25; i++, usleep(200000))
            sample(&s);
        printf("bench_rss: settled contracts_in_state=%ld rss_mib=%.1f cached=%ld (5 s idle)\n",
               o->contracts, s.last, atomic_load(&cached));
        /* the backlog burst, with the book in state */
        feed_t burst = {-1, 0, o->burst, 0};
        double t = bp_now_s();
        s.peak = 0;
        prod = produce(o, dir, bootstrap, 0, &burst, &pth, "burst");
        late = watch_until(&s, target + o->burst, (double)o->burst / 1000 + 120, NULL, NULL,
                           &next, 0) != 0;
        pthread_join(pth, NULL);
        prc = bp_wait(prod, NULL);
        printf("bench_rss: burst events=%ld seconds=%.1f peak_rss_mib=%.1f%s\n", o->burst,
               bp_now_s() - t, s.peak, late || prc ? " (not all applied)" : "");
    }
    kill(s.worker, SIGTERM);
    struct rusage ru;
    int wrc = bp_wait(s.worker, &ru);
    pthread_join(lth, NULL);
    fclose(lw.out);
    if (s.tsv != NULL)
        fclose(s.tsv);
    kill(broker, SIGTERM);
    bp_wait(broker, NULL);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double maxrss = (double)ru.ru_maxrss / 1024.0;
    printf("bench_rss: worker exit=%d ru_maxrss_mib=%.1f cpu_seconds=%.1f applied=%lld\n", wrc,
           maxrss, cpu, (long long)atomic_load(&applied));
    printf("bench_rss: ratio rss_at_N/rss_at_N_over_4=%.3f peak/baseline=%.2f "
           "peak/%.0f_MiB=%.3f\n",
           at_check[1] > 0 ? at_check[3] / at_check[1] : 0,
           baseline > 0 ? maxrss / baseline : 0, RSS_TARGET_MIB, maxrss / RSS_TARGET_MIB);
    if (late || prc != 0 || wrc != 0)
        exit(1);
}

int main(int argc, char **argv)
{
    opts_t o = {.contracts = 1000000,
                .rate = 25000,
                .burst = 200000,
                .partitions = 32,
                .bin = RS_BINARY_DIR "/revstream"};
    long parts = 32;
    /* --NAME VALUE for the numbers, then the three others */
    const struct {
        const char *name;
        long *to;
    } num[] = {{"--contracts", &o.contracts},
               {"--partitions", &parts},
               {"--rate", &o.rate},
               {"--burst", &o.burst}};
    for (int a = 1; a < argc; a++) {
        size_t k = 0;
        while (k < sizeof num / sizeof num[0] && strcmp(argv[a], num[k].name) != 0)
            k++;
        if (k < sizeof num / sizeof num[0] && a + 1 < argc)
            *num[k].to = atol(argv[++a]);
        else if (strcmp(argv[a], "--worker-config") == 0 && a + 1 < argc && o.nkv < 32)
            o.kv[o.nkv++] = argv[++a];
        else if (strcmp(argv[a], "--bin") == 0 && a + 1 < argc)
            o.bin = argv[++a];
        else if (strcmp(argv[a], "--keep") == 0)
            o.keep = 1;
        else
            die("bad option %s (see the comment at the top of bench/bench_rss.c)", argv[a]);
    }
    o.partitions = parts > 0 && parts < 100000 ? (int)parts : 0;
    if (o.contracts < 40 || o.partitions < 1 || o.rate < 1 || o.burst < 0)
        die("bad options");
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/bench_rss.XXXXXX", cmd[600];
    if (mkdtemp(dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    printf("bench_rss: dir=%s\n", dir);
    run(&o, dir);
    fflush(stdout);
    if (!o.keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_rss: warning: could not remove %s\n", dir);
    }
    return 0;
}
