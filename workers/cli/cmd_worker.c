/*
 * cmd_worker.c — `revstream worker [--config FILE]`: run the Kafka stream
 * worker (rs_worker) until SIGINT/SIGTERM, or until idle with
 * exit.when.idle=true.
 *
 * Invariants:
 *   - SIGINT, SIGTERM and SIGUSR1 are blocked before any librdkafka thread
 *     exists, so every thread inherits the mask; one helper thread takes
 *     SIGINT/SIGTERM with sigwait() and asks the worker to stop (the worker
 *     then finishes and commits its batch and closes the consumer). SIGUSR1
 *     is only how main() wakes that thread to end it.
 *   - The effective config is logged once, with secrets masked
 *     (rs_config_describe()); nothing else here prints a config value. The
 *     Kubernetes service-link variables the config skipped are named (not
 *     their values) on one config_note line.
 *   - Exit status: 0 clean stop (signal, idle, --check, --help); 1 usage,
 *     config or start-up error (bad key, missing topic, topics not
 *     co-partitioned, ...); 2 failure while running (a record not
 *     delivered, a state write failed): the batch in flight was not
 *     committed and a restart replays it; 3 a disk fault: the state
 *     directory's filesystem is full (or over quota) or read-only, at start
 *     or while running: nothing of the batch in flight was committed, and a
 *     restart once the fault is fixed resumes where the worker stopped.
 *   - Test-only fault injection (tests/integration/test_worker.c and
 *     test_chaos.c set it; never for production): RS_WORKER_CRASH_AFTER_BATCHES=N
 *     makes the worker SIGKILL itself after the N-th batch's outputs are
 *     acknowledged and before its state commit (rs_worker_set_crash_after());
 *     RS_TEST_KILL_POINT=POINT:N[:DELAY_US[:SEED]] at any point of
 *     rs_kill_point_t (planned, mid_batch, delivered, changelog, state_write,
 *     committed) of the N-th batch that reaches it (rs_worker_set_kill_point());
 *     RS_WORKER_CRASH_IN_CLOSE=N in a month-end close, after N chunks were
 *     committed and the next one's outputs acknowledged
 *     (rs_worker_set_crash_in_close());
 *     RS_WORKER_TEST_STALL_FILE=PATH stalls the loop while PATH exists and
 *     RS_WORKER_TEST_RESTORE_DELAY_MS=N slows each partition restore by N ms
 *     (rs_worker_set_test_hooks()). Each is logged when set.
 *   - Log lines go through rs_log (log.format: json, text, or auto = json
 *     unless stderr is a terminal), set right after the config is loaded.
 *
 * Ownership: the command owns the config, the worker and the signal thread
 * for the call and releases them through its one exit label.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rs_cli.h"
#include "rs_config.h"
#include "rs_log.h"
#include "rs_worker.h"

extern char **environ;

static void worker_usage(FILE *f)
{
    fprintf(
        f,
        "usage: revstream worker [--config FILE] [--check]\n"
        "\n"
        "Consume the contracts, invoices, payments and usage topics, run one\n"
        "revenue-recognition engine per input partition, and produce journal entries,\n"
        "deferred-balance snapshots and dead letters. State (engines, offsets) lives in\n"
        "a RocksDB store under state.dir; outputs are delivered at least once with\n"
        "deterministic ids (consumers deduplicate journal entries by entry_id).\n"
        "\n"
        "  --config FILE  properties file (key=value lines, # comments); every key can\n"
        "                 also be set by REVSTREAM_<KEY> (state.dir: REVSTREAM_STATE_DIR,\n"
        "                 kafka.sasl.password: REVSTREAM_KAFKA_SASL_PASSWORD)\n"
        "  --check        load and validate the config, print it (secrets masked), exit\n"
        "  -h, --help     this text\n"
        "\n"
        "Required: kafka.bootstrap.servers, state.dir. See docs/worker.md for every key\n"
        "and examples/worker.properties for a commented file.\n"
        "\n"
        "Exit status: 0 stopped cleanly (SIGINT/SIGTERM, or idle with exit.when.idle=true);\n"
        "1 usage, config or start-up error; 2 failure while running (nothing of the batch\n"
        "in flight was committed; a restart replays it); 3 the state directory's disk is\n"
        "full or read-only (at start or while running; nothing is lost: fix it and\n"
        "restart, the worker resumes where it stopped).\n");
}

#define DISK_HINT                                                                              \
    "the state directory's filesystem is full or read-only: nothing of the batch in "          \
    "flight was committed; free space (or make it writable) and restart: the worker "          \
    "resumes where it stopped"

/* RS_TEST_KILL_POINT=POINT:N[:DELAY_US[:SEED]] (test-only; see the file
 * comment). 0, or -1 after an error line. */
static int set_kill_point(rs_worker_t *w, const char *spec)
{
    char point[32];
    unsigned long long v[3] = {0, 0, 0}; /* N, DELAY_US, SEED */
    int nv = 0, bad = 0;
    if (spec == NULL || spec[0] == '\0')
        return 0;
    size_t plen = strcspn(spec, ":");
    const char *p = spec + plen;
    if (plen == 0 || plen >= sizeof point || *p != ':')
        bad = 1;
    else {
        memcpy(point, spec, plen);
        point[plen] = '\0';
    }
    while (!bad && *p == ':' && nv < 3) {
        char *end = NULL;
        errno = 0;
        v[nv++] = strtoull(p + 1, &end, 10);
        bad = errno != 0 || end == p + 1 || (*end != ':' && *end != '\0');
        p = end;
    }
    if (bad || *p != '\0' || rs_kill_point_from_name(point) == RS_KILL_NONE) {
        rs_logf(RS_LOG_ERROR, "worker",
                "error=usage msg=\"RS_TEST_KILL_POINT: want POINT:N[:DELAY_US[:SEED]] with "
                "POINT one of planned, mid_batch, delivered, changelog, state_write, "
                "committed\"");
        return -1;
    }
    rs_worker_set_kill_point(w, rs_kill_point_from_name(point), v[0], v[1], v[2]);
    rs_logf(RS_LOG_WARN, "worker", "fault_injection point=%s batch=%llu delay_us=%llu", point,
            v[0], v[1]);
    return 0;
}

/* "worker: error=WHAT msg="..."[ hint=...]" with the message escaped so the
 * line stays one key=value record. */
static void log_error(const char *what, const char *msg, const char *hint)
{
    char q[2100];
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)msg; *p && o + 3 < sizeof q; p++) {
        if (*p == '"' || *p == '\\')
            q[o++] = '\\';
        q[o++] = (char)(*p < 0x20 || *p == 0x7f ? '?' : *p);
    }
    q[o] = '\0';
    rs_logf(RS_LOG_ERROR, "worker", "error=%s msg=\"%s\"%s%s%s", what, q,
            hint != NULL ? " hint=\"" : "", hint != NULL ? hint : "", hint != NULL ? "\"" : "");
}

/* One line naming the Kubernetes service-link variables the config skipped
 * (names only; they are not settings). */
static void log_ignored_env(const rs_config_t *cfg)
{
    char names[1024];
    size_t o = 0;
    const char *name;

    for (size_t i = 0; (name = rs_config_ignored_env(cfg, i)) != NULL; i++) {
        int n = snprintf(names + o, sizeof names - o, "%s%s", i > 0 ? "," : "", name);
        if (n < 0 || (size_t)n >= sizeof names - o) {
            names[o] = '\0'; /* the names that fit: the line stays bounded */
            break;
        }
        o += (size_t)n;
    }
    if (o == 0)
        return;
    rs_logf(RS_LOG_INFO, "worker",
            "config_note ignored_env=%s reason=\"Kubernetes service links, not settings (set "
            "enableServiceLinks: false on the pod)\"",
            names);
}

typedef struct sigctx {
    sigset_t set;
    rs_worker_t *w;
} sigctx_t;

/* A fault-injection count from the environment: 1 (set, *n), 0 (unset) or
 * -1 (not a number: logged). */
static int fault_env(const char *name, unsigned long long *n)
{
    const char *v = getenv(name);
    char *end = NULL;
    if (v == NULL || v[0] == '\0')
        return 0;
    *n = strtoull(v, &end, 10);
    if (end == v || *end != '\0') {
        rs_logf(RS_LOG_ERROR, "worker", "error=usage msg=\"%s: not a number\"", name);
        return -1;
    }
    return 1;
}

static void *signal_thread(void *arg)
{
    sigctx_t *ctx = arg;

    for (;;) {
        int sig = 0;
        if (sigwait(&ctx->set, &sig) != 0)
            continue;
        if (sig == SIGUSR1)
            return NULL;
        rs_logf(RS_LOG_INFO, "worker",
                "signal signal=%s action=\"finish the batch, commit, stop\"",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
        rs_worker_request_stop(ctx->w);
    }
}

int rs_cli_cmd_worker(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    rs_config_t *cfg = NULL;
    rs_worker_t *w = NULL;
    sigctx_t ctx;
    sigset_t oldset;
    pthread_t thr;
    char errstr[1024];
    char *desc = NULL;
    int check = 0, masked = 0, thread_started = 0, rc = 1, c;

    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'h':
            worker_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "worker: run 'revstream worker --help' for usage\n");
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "worker: unexpected argument \"%s\"\n", argv[optind]);
        return 1;
    }

    if (rs_config_load(&cfg, path, environ, errstr, sizeof errstr) != 0) {
        log_error("config", errstr, NULL);
        goto done;
    }
    {
        rs_log_format_t lf = RS_LOG_AUTO;
        rs_log_parse_format(cfg->log_format, &lf); /* validated by the config */
        rs_log_set_format(lf);
    }
    log_ignored_env(cfg);
    desc = rs_config_describe(cfg);
    if (desc == NULL) {
        rs_logf(RS_LOG_ERROR, "worker", "error=out_of_memory");
        goto done;
    }
    if (check) {
        printf("%s\n", desc);
        rc = 0;
        goto done;
    }
    rs_logf(RS_LOG_INFO, "worker", "config %s", desc);

    sigemptyset(&ctx.set);
    sigaddset(&ctx.set, SIGINT);
    sigaddset(&ctx.set, SIGTERM);
    sigaddset(&ctx.set, SIGUSR1);
    if (pthread_sigmask(SIG_BLOCK, &ctx.set, &oldset) != 0) {
        rs_logf(RS_LOG_ERROR, "worker", "error=signals msg=\"cannot block signals\"");
        goto done;
    }
    masked = 1;

    int wrc = rs_worker_new(&w, cfg, errstr, sizeof errstr);
    if (wrc != 0) {
        log_error("start", errstr, wrc == RS_WORKER_EDISK ? DISK_HINT : NULL);
        rc = wrc == RS_WORKER_EDISK ? 3 : 1;
        goto done;
    }
    unsigned long long n = 0;
    int fr = fault_env("RS_WORKER_CRASH_AFTER_BATCHES", &n);
    if (fr < 0)
        goto done;
    if (fr > 0) {
        rs_worker_set_crash_after(w, n);
        rs_logf(RS_LOG_WARN, "worker", "fault_injection crash_after_batches=%llu", n);
    }
    /* Test hooks (see rs_worker_set_test_hooks). */
    const char *stall_file = getenv("RS_WORKER_TEST_STALL_FILE");
    const char *restore_delay = getenv("RS_WORKER_TEST_RESTORE_DELAY_MS");
    if ((stall_file != NULL && stall_file[0] != '\0') ||
        (restore_delay != NULL && restore_delay[0] != '\0')) {
        long delay = restore_delay != NULL ? strtol(restore_delay, NULL, 10) : 0;
        rs_worker_set_test_hooks(w, stall_file != NULL && stall_file[0] ? stall_file : NULL,
                                 delay > 0 ? delay : 0);
        rs_logf(RS_LOG_WARN, "worker", "fault_injection stall_file=%s restore_delay_ms=%ld",
                stall_file != NULL && stall_file[0] ? stall_file : "none",
                delay > 0 ? delay : 0);
    }
    if ((fr = fault_env("RS_WORKER_CRASH_IN_CLOSE", &n)) < 0)
        goto done;
    if (fr > 0) {
        rs_worker_set_crash_in_close(w, n);
        rs_logf(RS_LOG_WARN, "worker", "fault_injection crash_in_close_after_chunks=%llu", n);
    }
    if (set_kill_point(w, getenv("RS_TEST_KILL_POINT")) != 0)
        goto done;
    ctx.w = w;
    if (pthread_create(&thr, NULL, signal_thread, &ctx) != 0) {
        rs_logf(RS_LOG_ERROR, "worker", "error=signals msg=\"cannot start the signal thread\"");
        goto done;
    }
    thread_started = 1;

    wrc = rs_worker_run(w, errstr, sizeof errstr);
    if (wrc != 0) {
        log_error("run", errstr,
                  wrc == RS_WORKER_EDISK
                      ? DISK_HINT
                      : "nothing of the batch in flight was committed; a restart replays it");
        rc = wrc == RS_WORKER_EDISK ? 3 : 2;
        goto done;
    }
    rc = 0;
done:
    if (thread_started) {
        pthread_kill(thr, SIGUSR1);
        pthread_join(thr, NULL);
    }
    rs_worker_destroy(w);
    if (masked) {
        /* A signal that came after the thread ended must not kill us now. */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&ctx.set, NULL, &zero) > 0)
            ;
        pthread_sigmask(SIG_SETMASK, &oldset, NULL);
    }
    free(desc);
    rs_config_destroy(cfg);
    return rc;
}
