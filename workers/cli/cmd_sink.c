/*
 * cmd_sink.c — `revstream sink`: the worker's output topics into PostgreSQL
 * (rs_pgsink; tables in docs/sink.md).
 *
 *   revstream sink --postgres URL --config worker.properties [--init]
 *                  [--batch-records N] [--batch-ms MS] [--group G] [--exit-when-idle]
 *
 * Invariants:
 *   - The config is the worker's (same file, same REVSTREAM_* overrides):
 *     Kafka settings (SASL/TLS included) and topic names come from it.
 *   - The connection string may hold a password: it is never printed. Prefer
 *     PGPASSWORD or ~/.pgpass.
 *   - --init creates the tables (idempotent) and, without --config, exits.
 *   - Exit status: 0 stopped (SIGINT/SIGTERM, idle with --exit-when-idle, or
 *     --init alone); 1 usage, config, connection or start-up error; 2 a
 *     database or Kafka failure while running (the batch was rolled back; a
 *     restart resumes from the offsets stored in the database).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_cli.h"
#include "rs_config.h"
#include "rs_pgsink.h"

extern char **environ;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: revstream sink --postgres URL [--config worker.properties] [--init]\n"
               "                      [--batch-records N] [--batch-ms MS] [--group G]\n"
               "                      [--exit-when-idle]\n"
               "\n"
               "Consumes the worker's journal, balances and dead-letter topics into\n"
               "PostgreSQL tables (docs/sink.md). --init creates the tables first.\n"
               "Offsets are stored in the database with the rows; restarts resume there.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int rs_cli_cmd_sink(int argc, char **argv)
{
    const char *url = NULL, *cfg_path = NULL, *group = NULL;
    int init = 0, idle = 0;
    long batch_records = 1000, batch_ms = 200;
    static const struct option opts[] = {{"postgres", required_argument, NULL, 'P'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"init", no_argument, NULL, 'i'},
                                         {"batch-records", required_argument, NULL, 'n'},
                                         {"batch-ms", required_argument, NULL, 'm'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"exit-when-idle", no_argument, NULL, 'x'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "P:c:in:m:g:xh", opts, NULL)) != -1) {
        switch (c) {
        case 'P':
            url = optarg;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 'i':
            init = 1;
            break;
        case 'n':
            if (parse_long(optarg, 1, 1000000, &batch_records)) {
                fprintf(stderr, "sink: --batch-records: 1..1000000\n");
                return 1;
            }
            break;
        case 'm':
            if (parse_long(optarg, 1, 3600000, &batch_ms)) {
                fprintf(stderr, "sink: --batch-ms: 1..3600000\n");
                return 1;
            }
            break;
        case 'g':
            group = optarg;
            break;
        case 'x':
            idle = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (url == NULL || optind != argc || (cfg_path == NULL && !init)) {
        usage(stderr);
        return 1;
    }
    char err[1024];
    if (init) {
        if (rs_pgsink_init_schema(url, err, sizeof err)) {
            fprintf(stderr, "sink: error=init reason=\"%s\"\n", err);
            return 1;
        }
        fprintf(stderr, "sink: schema ready\n");
        if (cfg_path == NULL)
            return 0;
    }
    rs_config_t *cfg = NULL;
    if (rs_config_load(&cfg, cfg_path, environ, err, sizeof err)) {
        fprintf(stderr, "sink: error=config reason=\"%s\"\n", err);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rs_pgsink_opts_t o = {cfg, url, group, batch_records, batch_ms, idle, &g_stop};
    rs_pgsink_stats_t st;
    int rc = rs_pgsink_run(&o, &st, err, sizeof err);
    if (rc)
        fprintf(stderr, "sink: error=%s reason=\"%s\"\n", rc == 1 ? "start" : "run", err);
    fprintf(stderr,
            "sink: stopped records=%ld batches=%ld entries=%ld duplicates=%ld conflicts=%ld "
            "balances=%ld dead_letters=%ld bad=%ld\n",
            st.records, st.batches, st.entries, st.duplicates, st.conflicts, st.balances,
            st.dead_letters, st.errors);
    rs_config_destroy(cfg);
    return rc;
}
