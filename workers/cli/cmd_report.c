/*
 * cmd_report.c — `revstream report`: the reports of a running (or stopped)
 * worker, from what ledger services see.
 *
 *   revstream report --state-dir DIR --bootstrap HOST:PORT [--journal-topic T]
 *                    [--report R] [--through YYYY-MM] [--format F] [--policy FILE]
 *
 * Invariants:
 *   - Posted figures come from the journal topic, read from the beginning to
 *     its end, entries deduplicated by entry_id (outputs are delivered at
 *     least once with deterministic ids); Avro and JSON values are both read.
 *   - Contract terms (the line list, and what the waterfall projects after
 *     --through) come from the worker's state store, opened read-only: every
 *     partition's contracts are imported into one engine for the views
 *     (rs_pstate_import_all, the engine-in-store bridge).
 *   - The Kafka consumer's conf comes from rs_kafka_conf_new, as the
 *     worker's and produce's do.
 *   - Same report shapes and formats as `revstream replay`; exit 0 ok, 1
 *     usage, state, broker or decode error.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_format.h"
#include "rs_kafka_client.h"
#include "rs_pstate.h"
#include "rs_report.h"
#include "rs_state.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: revstream report --state-dir DIR --bootstrap HOST:PORT\n"
            "                        [--journal-topic T] [--report R] [--through YYYY-MM]\n"
            "                        [--format table|csv|json] [--policy FILE]\n"
            "\n"
            "Reports of a worker: posted entries from the journal topic (deduplicated\n"
            "by entry_id), contract terms from its state store (read-only).\n"
            "R: waterfall (default), rollforward, balances, schedule, journal, exceptions.\n");
}

/* Every partition's contracts from the store (opened read-only) into e. */
static int load_state(const char *dir, rs_engine_t *e)
{
    rs_state_opts_t o = {0};
    rs_state_t *st = NULL;
    char err[512];
    int rc = -1;
    o.path = dir;
    o.read_only = 1;
    if (rs_state_open(&st, &o, err, sizeof(err)) ||
        rs_pstate_import_all(st, e, err, sizeof(err)))
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "report: error=state dir=\"%s\" reason=\"%s\"\n", dir, err);
    rs_state_destroy(st);
    return rc;
}

static int cmp_entry_id(const void *a, const void *b)
{
    const rs_entry_t *x = a, *y = b;
    int r = strcmp(x->contract_id, y->contract_id);
    if (r)
        return r;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Read the journal topic from the beginning to its end. */
static int read_journal(const char *bootstrap, const char *topic, rs_journal_t *j)
{
    char err[512];
    static const rs_config_kafka_t settings[] = {
        {"group.id", "revstream-report"}, /* assign() needs one; never joined */
        {"enable.partition.eof", "true"}, /* to know where the journal ends */
        {"enable.auto.commit", "false"},
        {"log_level", "3"},
        {NULL, NULL}};
    rs_kafka_client_opts_t ko = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rs_entry_reader_t *rd = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = -1, npart = 0, eof = 0;
    long bad = 0;
    ko.bootstrap = bootstrap;
    ko.settings = settings;
    if (rs_kafka_conf_new(&conf, &ko, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "report: error=config reason=\"%s\"\n", err);
        return -1;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "report: error=consumer reason=\"%s\"\n", err);
        return -1;
    }
    if (rs_entry_reader_new(&rd, err, sizeof(err))) {
        fprintf(stderr, "report: error=schema reason=\"%s\"\n", err);
        goto out;
    }
    npart = rs_kafka_partition_count(rk, topic, 10000);
    if (npart <= 0) {
        fprintf(stderr, "report: error=metadata topic=%s bootstrap=%s\n", topic, bootstrap);
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(npart);
    for (int p = 0; p < npart; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, parts)) {
        fprintf(stderr, "report: error=assign topic=%s\n", topic);
        goto out;
    }
    int idle = 0;
    while (eof < npart && idle < 300) { /* 30 s without a message or EOF: give up */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL) {
            idle++;
            continue;
        }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof++;
        } else if (m->err) {
            fprintf(stderr, "report: error=consume reason=\"%s\"\n",
                    rd_kafka_message_errstr(m));
        } else {
            rs_entry_t e;
            int r =
                m->len > 0 && ((const char *)m->payload)[0] == '{'
                    ? rs_codec_entry_from_json(m->payload, m->len, &e, err, sizeof(err))
                    : rs_codec_entry_from_avro(rd, m->payload, m->len, &e, err, sizeof(err));
            if (r) {
                if (bad++ < 5)
                    fprintf(stderr, "report: partition %d offset %lld: %s\n", m->partition,
                            (long long)m->offset, err);
            } else if (rs_journal_append(j, &e)) {
                rd_kafka_message_destroy(m);
                fprintf(stderr, "report: error=out of memory\n");
                goto out;
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (eof < npart) {
        fprintf(stderr, "report: error=consume topic=%s reason=\"end not reached in time\"\n",
                topic);
        goto out;
    }
    /* at-least-once delivery: keep one entry per id */
    size_t before = j->n, k = 0;
    if (j->n > 1)
        qsort(j->entries, j->n, sizeof(*j->entries), cmp_entry_id);
    for (size_t i = 0; i < j->n; i++)
        if (k == 0 || strcmp(j->entries[k - 1].entry_id, j->entries[i].entry_id) != 0)
            j->entries[k++] = j->entries[i];
    j->n = k;
    fprintf(stderr,
            "report: journal topic=%s partitions=%d entries=%zu duplicates=%zu bad=%ld\n",
            topic, npart, k, before - k, bad);
    rc = bad ? -1 : 0;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    rs_entry_reader_destroy(rd);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

int rs_cli_cmd_report(int argc, char **argv)
{
    const char *dir = NULL, *bootstrap = NULL, *topic = "revenue.journal";
    const char *report = "waterfall", *through_s = NULL, *format_s = NULL, *policy_path = NULL;
    static const struct option opts[] = {{"state-dir", required_argument, NULL, 'd'},
                                         {"bootstrap", required_argument, NULL, 'b'},
                                         {"journal-topic", required_argument, NULL, 'j'},
                                         {"report", required_argument, NULL, 'r'},
                                         {"through", required_argument, NULL, 't'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"policy", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:b:j:r:t:f:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'b':
            bootstrap = optarg;
            break;
        case 'j':
            topic = optarg;
            break;
        case 'r':
            report = optarg;
            break;
        case 't':
            through_s = optarg;
            break;
        case 'f':
            format_s = optarg;
            break;
        case 'p':
            policy_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (dir == NULL || bootstrap == NULL || optind != argc) {
        usage(stderr);
        return 1;
    }
    rs_format_kind_t fmt = isatty(STDOUT_FILENO) ? RS_FORMAT_TABLE : RS_FORMAT_JSON;
    if (format_s && rs_format_parse(format_s, &fmt)) {
        fprintf(stderr, "report: --format: table, csv or json\n");
        return 1;
    }
    rs_policy_t policy;
    char err[512];
    rs_policy_defaults(&policy);
    if (policy_path) {
        char *text = slurp(policy_path);
        if (text == NULL || rs_policy_parse(&policy, text, err, sizeof(err))) {
            fprintf(stderr, "report: error=policy file=\"%s\" reason=\"%s\"\n", policy_path,
                    text ? err : "cannot read it");
            free(text);
            return 1;
        }
        free(text);
    }
    rs_engine_t *e = NULL;
    rs_journal_t j;
    int rc = 1;
    rs_journal_init(&j);
    if (rs_engine_new(&e, &policy, err, sizeof(err))) {
        fprintf(stderr, "report: %s\n", err);
        return 1;
    }
    if (load_state(dir, e) || read_journal(bootstrap, topic, &j))
        goto out;
    rs_period_t through = RS_PERIOD_NONE;
    if (through_s && rs_period_parse(through_s, &through)) {
        fprintf(stderr, "report: --through: expected YYYY-MM\n");
        goto out;
    }
    for (size_t i = 0; through_s == NULL && i < j.n; i++)
        if (through == RS_PERIOD_NONE || j.entries[i].period > through)
            through = j.entries[i].period;
    if (through == RS_PERIOD_NONE) {
        fprintf(stderr, "report: the journal is empty and no --through was given\n");
        goto out;
    }
    int r = -1;
    if (strcmp(report, "waterfall") == 0) {
        rs_waterfall_row_t *rows;
        size_t n;
        if (rs_report_waterfall(e, &j, through, &rows, &n) == 0) {
            r = rs_format_waterfall(stdout, fmt, rows, n, through);
            free(rows);
        }
    } else if (strcmp(report, "rollforward") == 0) {
        rs_rollforward_row_t *rows;
        size_t n;
        if (rs_report_rollforward(e, &j, through, &rows, &n) == 0) {
            r = rs_format_rollforward(stdout, fmt, rows, n, through);
            free(rows);
        }
    } else if (strcmp(report, "balances") == 0) {
        rs_balance_row_t *rows;
        size_t n;
        if (rs_report_balances(e, &j, through, &rows, &n) == 0) {
            r = rs_format_balances(stdout, fmt, rows, n, through);
            free(rows);
        }
    } else if (strcmp(report, "schedule") == 0) {
        rs_schedule_row_t *rows;
        size_t n;
        if (rs_report_schedule(e, &j, through, &rows, &n) == 0) {
            r = rs_format_schedule(stdout, fmt, rows, n, through);
            free(rows);
        }
    } else if (strcmp(report, "exceptions") == 0) {
        rs_exception_row_t *rows;
        size_t n;
        if (rs_report_exceptions(e, &j, through, &rows, &n) == 0) {
            r = rs_format_exceptions(stdout, fmt, rows, n, through);
            free(rows);
        }
    } else if (strcmp(report, "journal") == 0) {
        size_t *idx, n;
        if (rs_report_journal(&j, through, &idx, &n) == 0) {
            r = rs_format_journal(stdout, fmt, j.entries, idx, n, &policy, through);
            free(idx);
        }
    } else {
        fprintf(stderr, "report: --report: unknown report \"%s\"\n", report);
        goto out;
    }
    if (r != 0 || fflush(stdout) != 0) {
        fprintf(stderr, "report: error=output report=%s\n", report);
        goto out;
    }
    rc = 0;
out:
    rs_journal_free(&j);
    rs_engine_destroy(e);
    return rc;
}
