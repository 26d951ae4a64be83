/*
 * cmd_broker.c — `revstream broker`: run the embedded mock Kafka cluster
 * (rs_mockbroker) until SIGINT or SIGTERM.
 *
 * Invariants:
 *   - SIGINT and SIGTERM are blocked in the calling thread before the
 *     cluster is created, so every librdkafka thread inherits the mask and
 *     the only place they are received is sigwait() here. Shutdown therefore
 *     runs in normal context, never in a signal handler.
 *   - The bootstrap address reaches stdout (one line, flushed) and the
 *     --bootstrap-file only after every topic exists, so whoever reads either
 *     can use the cluster at once. The file appears atomically (written to
 *     "<path>.tmp.<pid>", fsync'ed, renamed): a reader never sees a partial
 *     line. On clean shutdown the file is removed if it still holds our
 *     address, so a later wait does not find a dead broker's address.
 *   - Exit status: 0 after a clean shutdown or --help; 1 on a usage error or
 *     when the cluster or the file cannot be set up.
 *
 * Ownership: the command owns the cluster for its whole run and frees it
 * through the one exit label.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs_cli.h"
#include "rs_mockbroker.h"

static void broker_usage(FILE *f)
{
    fprintf(f,
            "usage: revstream broker [--partitions N] [--brokers N] [--bootstrap-file PATH]\n"
            "\n"
            "Run an embedded Kafka-protocol mock cluster (librdkafka) on 127.0.0.1 with the\n"
            "topics contracts, invoices, payments, usage, revenue.journal,\n"
            "revenue.deferred-balances, revenue.dlq and revenue.state-changelog. Prints the\n"
            "bootstrap address on stdout and runs until SIGINT or SIGTERM. Everything is\n"
            "kept in memory.\n"
            "\n"
            "Give workers kafka.session.timeout.ms of 3000 or more: this broker answers\n"
            "the first join of an empty group after 3 s and drops a member silent for\n"
            "its session timeout, a joining one too, so a lone worker with less never\n"
            "gets partitions.\n"
            "\n"
            "  --partitions N        partitions per topic (default %d, at most %d)\n"
            "  --brokers N           brokers in the cluster (default %d, at most %d);\n"
            "                        replication factor is min(3, N)\n"
            "  --bootstrap-file PATH also write the address to PATH (atomically), and\n"
            "                        remove it on shutdown\n"
            "  -h, --help            this text\n",
            RS_MOCKBROKER_DEFAULT_PARTITIONS, RS_MOCKBROKER_MAX_PARTITIONS,
            RS_MOCKBROKER_DEFAULT_BROKERS, RS_MOCKBROKER_MAX_BROKERS);
}

/* Parse a decimal int in [lo, hi]; -1 if it is not one. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Write "line\n" to path atomically. Returns 0, or -1 with errstr set. */
static int write_file_atomic(const char *path, const char *line, char *errstr, size_t errlen)
{
    char tmp[PATH_MAX];
    size_t len = strlen(line), off = 0;
    int fd = -1, rc = -1, n;

    n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        snprintf(errstr, errlen, "path too long");
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(errstr, errlen, "open temporary file: %s", strerror(errno));
        return -1;
    }
    while (off <= len) {
        /* the line, then its newline */
        const char *p = off < len ? line + off : "\n";
        size_t want = off < len ? len - off : 1;
        ssize_t w = write(fd, p, want);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(errstr, errlen, "write temporary file: %s",
                     w < 0 ? strerror(errno) : "short write");
            goto done;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        snprintf(errstr, errlen, "fsync temporary file: %s", strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(errstr, errlen, "close temporary file: %s", strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(errstr, errlen, "rename temporary file into place: %s", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* Remove path if it still holds exactly "line\n" (another broker may have
 * replaced it since). */
static void remove_if_ours(const char *path, const char *line)
{
    char buf[1024];
    size_t len = strlen(line), n;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (n == len + 1 && memcmp(buf, line, len) == 0 && buf[len] == '\n') {
        if (unlink(path) == 0)
            fprintf(stderr, "broker: removed bootstrap_file=%s\n", path);
    }
}

int rs_cli_cmd_broker(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"brokers", required_argument, NULL, 'b'},
        {"bootstrap-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    rs_mockbroker_opts_t opts = {RS_MOCKBROKER_DEFAULT_BROKERS,
                                 RS_MOCKBROKER_DEFAULT_PARTITIONS};
    rs_mockbroker_t *mb = NULL;
    const char *bootstrap_file = NULL, *bootstraps = NULL;
    char errstr[512], topics[512];
    sigset_t set, oldset;
    int masked = 0, wrote_file = 0, sig = 0, rc = 1, c, i;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_int(optarg, 1, RS_MOCKBROKER_MAX_PARTITIONS, &opts.partitions) != 0) {
                fprintf(stderr, "broker: --partitions: \"%s\" is not a number in 1..%d\n",
                        optarg, RS_MOCKBROKER_MAX_PARTITIONS);
                goto done;
            }
            break;
        case 'b':
            if (parse_int(optarg, 1, RS_MOCKBROKER_MAX_BROKERS, &opts.brokers) != 0) {
                fprintf(stderr, "broker: --brokers: \"%s\" is not a number in 1..%d\n", optarg,
                        RS_MOCKBROKER_MAX_BROKERS);
                goto done;
            }
            break;
        case 'f':
            if (optarg[0] == '\0') {
                fprintf(stderr, "broker: --bootstrap-file: empty path\n");
                goto done;
            }
            bootstrap_file = optarg;
            break;
        case 'h':
            broker_usage(stdout);
            rc = 0;
            goto done;
        default:
            broker_usage(stderr);
            goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "broker: unexpected argument \"%s\"\n", argv[optind]);
        broker_usage(stderr);
        goto done;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set, &oldset) != 0) {
        fprintf(stderr, "broker: error msg=\"cannot block signals\"\n");
        goto done;
    }
    masked = 1;

    if (rs_mockbroker_new(&mb, &opts, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "broker: error msg=\"%s\"\n", errstr);
        goto done;
    }
    bootstraps = rs_mockbroker_bootstraps(mb);

    if (bootstrap_file != NULL) {
        if (write_file_atomic(bootstrap_file, bootstraps, errstr, sizeof errstr) != 0) {
            fprintf(stderr, "broker: error bootstrap_file=%s msg=\"%s\"\n", bootstrap_file,
                    errstr);
            goto done;
        }
        wrote_file = 1;
    }
    if (printf("%s\n", bootstraps) < 0 || fflush(stdout) != 0)
        fprintf(stderr, "broker: warning msg=\"cannot write the bootstrap address to "
                        "stdout\"\n");

    topics[0] = '\0';
    for (i = 0; i < RS_MOCKBROKER_TOPIC_COUNT; i++) {
        size_t used = strlen(topics);
        snprintf(topics + used, sizeof topics - used, "%s%s", i ? "," : "",
                 rs_mockbroker_topics[i]);
    }
    fprintf(stderr, "broker: ready bootstrap=%s brokers=%d partitions=%d topics=%s%s%s\n",
            bootstraps, rs_mockbroker_brokers(mb), rs_mockbroker_partitions(mb), topics,
            wrote_file ? " bootstrap_file=" : "", wrote_file ? bootstrap_file : "");
    fflush(stderr);

    for (;;) {
        int err = sigwait(&set, &sig);
        if (err == 0)
            break;
        if (err != EINTR) {
            fprintf(stderr, "broker: error msg=\"sigwait: %s\"\n", strerror(err));
            goto done;
        }
    }
    fprintf(stderr, "broker: stopping signal=%s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
done:
    if (wrote_file)
        remove_if_ours(bootstrap_file, bootstraps);
    if (mb != NULL) {
        rs_mockbroker_destroy(mb);
        if (rc == 0)
            fprintf(stderr, "broker: stopped\n");
    }
    if (masked)
        pthread_sigmask(SIG_SETMASK, &oldset, NULL);
    return rc;
}
