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
 *     (rs_config_describe()); nothing else here prints a config value.
 *   - Exit status: 0 clean stop (signal, idle, --check, --help); 1 usage,
 *     config or start-up error (bad key, missing topic, topics not
 *     co-partitioned, ...); 2 failure while running (a record not
 *     delivered, a state write failed): the batch in flight was not
 *     committed and a restart replays it.
 *   - Test-only fault injection (tests/integration/test_worker.c and
 *     test_chaos.c set it; never for production): RS_WORKER_CRASH_AFTER_BATCHES=N
 *     makes the worker SIGKILL itself after the N-th batch's outputs are
 *     acknowledged and before its state commit (rs_worker_set_crash_after());
 *     RS_TEST_KILL_POINT=POINT:N[:DELAY_US[:SEED]] at any point of
 *     rs_kill_point_t (planned, mid_batch, delivered, changelog, state_write,
 *     committed) of the N-th batch that reaches it (rs_worker_set_kill_point()).
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
        "in flight was committed; a restart replays it).\n");
}

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
        fprintf(stderr, "worker: error=usage msg=\"RS_TEST_KILL_POINT: want "
                        "POINT:N[:DELAY_US[:SEED]] with POINT one of planned, mid_batch, "
                        "delivered, changelog, state_write, committed\"\n");
        return -1;
    }
    rs_worker_set_kill_point(w, rs_kill_point_from_name(point), v[0], v[1], v[2]);
    fprintf(stderr, "worker: fault_injection point=%s batch=%llu delay_us=%llu\n", point, v[0],
            v[1]);
    return 0;
}

/* "worker: error=WHAT msg="..."[ hint=...]" with the message escaped so the
 * line stays one key=value record. */
static void log_error(const char *what, const char *msg, const char *hint)
{
    fprintf(stderr, "worker: error=%s msg=\"", what);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', stderr);
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
    }
    fputc('"', stderr);
    if (hint != NULL)
        fprintf(stderr, " hint=\"%s\"", hint);
    fputc('\n', stderr);
}

typedef struct sigctx {
    sigset_t set;
    rs_worker_t *w;
} sigctx_t;

static void *signal_thread(void *arg)
{
    sigctx_t *ctx = arg;

    for (;;) {
        int sig = 0;
        if (sigwait(&ctx->set, &sig) != 0)
            continue;
        if (sig == SIGUSR1)
            return NULL;
        fprintf(stderr, "worker: signal=%s action=\"finish the batch, commit, stop\"\n",
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
    desc = rs_config_describe(cfg);
    if (desc == NULL) {
        fprintf(stderr, "worker: error=out_of_memory\n");
        goto done;
    }
    if (check) {
        printf("%s\n", desc);
        rc = 0;
        goto done;
    }
    fprintf(stderr, "worker: config %s\n", desc);

    sigemptyset(&ctx.set);
    sigaddset(&ctx.set, SIGINT);
    sigaddset(&ctx.set, SIGTERM);
    sigaddset(&ctx.set, SIGUSR1);
    if (pthread_sigmask(SIG_BLOCK, &ctx.set, &oldset) != 0) {
        fprintf(stderr, "worker: error=signals msg=\"cannot block signals\"\n");
        goto done;
    }
    masked = 1;

    if (rs_worker_new(&w, cfg, errstr, sizeof errstr) != 0) {
        log_error("start", errstr, NULL);
        goto done;
    }
    const char *fault = getenv("RS_WORKER_CRASH_AFTER_BATCHES");
    if (fault != NULL && fault[0] != '\0') {
        char *end = NULL;
        unsigned long long n = strtoull(fault, &end, 10);
        if (end == fault || *end != '\0') {
            fprintf(stderr, "worker: error=usage msg=\"RS_WORKER_CRASH_AFTER_BATCHES: not a "
                            "number\"\n");
            goto done;
        }
        rs_worker_set_crash_after(w, n);
        fprintf(stderr, "worker: fault_injection crash_after_batches=%llu\n", n);
    }
    if (set_kill_point(w, getenv("RS_TEST_KILL_POINT")) != 0)
        goto done;
    ctx.w = w;
    if (pthread_create(&thr, NULL, signal_thread, &ctx) != 0) {
        fprintf(stderr, "worker: error=signals msg=\"cannot start the signal thread\"\n");
        goto done;
    }
    thread_started = 1;

    if (rs_worker_run(w, errstr, sizeof errstr) != 0) {
        log_error("run", errstr,
                  "nothing of the batch in flight was committed; a restart replays it");
        rc = 2;
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
