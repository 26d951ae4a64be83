/*
 * cmd_export.c — `revstream export`: the journal entries of one accounting
 * period as an accounting system's import files (workers/connect does the
 * formats; this file only finds the entries).
 *
 *   revstream export --to SYSTEM --period YYYY-MM [--summary] [--out DIR]
 *                    (--config worker.properties | --input events.jsonl [--policy F])
 *                    [--currency CUR] [--encoding E] [--tax-rate NAME]
 *                    [--subsidiary NAME] [--max-rows N]
 *
 * Invariants:
 *   - From the journal topic (--config): the worker's own config file (and
 *     its REVSTREAM_* environment), so the brokers, SASL/TLS settings,
 *     topic names, schema registry or local ids, and policy.file are the
 *     worker's; the consumer's conf comes from rs_kafka_conf_new, as the
 *     worker's does. Each partition is read from its beginning to the end
 *     offset it had when the export started (records past it are left for
 *     the next export), entries deduplicated by entry_id (outputs are
 *     delivered at least once). Avro (any JournalEntry version, by the
 *     writer id) and JSON values are both read; an unreadable record stops
 *     the export (exit 1): an export must not silently drop an entry.
 *   - From a replay (--input): the events are applied in file order and
 *     recognition runs through --period, as `revstream replay --through`;
 *     rejected events are counted on stderr (as replay prints them) and do
 *     not stop the export.
 *   - Only entries posted in --period (and --currency) are kept in memory.
 *   - Account codes: what each entry line carries; for lines without one
 *     (records of JournalEntry version 1) the policy's (--policy, else the
 *     config's policy.file).
 *   - stdout: the files written, one path a line. stderr: key=value logs,
 *     "export: progress ..." while reading and writing, "export: done ...".
 *     No secret is ever logged. Exit 0 ok; 1 usage, read or write error.
 */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_config.h"
#include "rs_connect.h"
#include "rs_engine.h"
#include "rs_file.h"
#include "rs_kafka_client.h"
#include "rs_registry.h"
#include "rs_report.h"

extern char **environ;

#define PROGRESS_EVERY 50000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: revstream export --to SYSTEM --period YYYY-MM [--summary] [--out DIR]\n"
            "                        (--config worker.properties |\n"
            "                         --input events.jsonl [--policy FILE])\n"
            "                        [--currency CUR] [--encoding utf-8|utf-8-bom|shift_jis]\n"
            "                        [--tax-rate NAME] [--subsidiary NAME] [--max-rows N]\n"
            "\n"
            "The journal entries posted in one period as import files of an accounting\n"
            "system: one balanced journal per entry (numbered from its entry_id), or with\n"
            "--summary one journal per currency with a line per account.\n"
            "SYSTEM: quickbooks, xero, netsuite, freee, moneyforward, csv.\n"
            "--config reads the worker's journal topic (its brokers, SASL/TLS, registry\n"
            "and policy.file) up to its end offsets; --input replays a JSON Lines file.\n"
            "Files: DIR/SYSTEM-PERIOD[-CUR]-K.csv (K from 1; split at the system's\n"
            "limits); their paths are printed on stdout.\n");
}

typedef struct keep {
    rs_journal_t j;
    rs_period_t period;
    const char *currency;
    int oom; /* an entry could not be kept */
} keep_t;

static int wanted(const keep_t *k, const rs_entry_t *e)
{
    return e->period == k->period &&
           (k->currency == NULL || strcmp(k->currency, e->currency) == 0);
}

static void keep_sink(void *opaque, const rs_entry_t *e)
{
    keep_t *k = opaque;
    if (wanted(k, e) && rs_journal_append(&k->j, e) != 0)
        k->oom = 1;
}

static int load_policy(const char *path, rs_policy_t *p)
{
    char err[512];
    char *text = rs_read_file(path, NULL);
    int rc = text == NULL || rs_policy_parse(p, text, err, sizeof err) != 0 ? -1 : 0;
    if (rc != 0)
        fprintf(stderr, "export: error=policy file=\"%s\" reason=\"%s\"\n", path,
                text ? err : strerror(errno));
    free(text);
    return rc;
}

/* ---- from a replay ---- */

static int from_replay(const char *path, const rs_policy_t *policy, keep_t *k)
{
    char err[512];
    rs_engine_t *e = NULL;
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long n = 0, rejected = 0;
    int rc = -1;
    if (in == NULL) {
        fprintf(stderr, "export: error=input file=\"%s\" reason=\"%s\"\n", path,
                strerror(errno));
        return -1;
    }
    if (rs_engine_new(&e, policy, err, sizeof err) != 0) {
        fprintf(stderr, "export: error=engine reason=\"%s\"\n", err);
        goto out;
    }
    rs_engine_set_sink(e, keep_sink, k);
    while ((len = getline(&line, &cap, in)) != -1) {
        rs_event_t ev;
        n++;
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue;
        rs_event_init(&ev);
        int bad = rs_codec_json_decode(line, (size_t)len, &ev, err, sizeof err) != 0;
        if (!bad) {
            rs_apply_result_t r = rs_engine_apply(e, &ev, err, sizeof err);
            if (r == RS_APPLY_NOMEM) {
                rs_event_clear(&ev);
                fprintf(stderr, "export: error=out_of_memory line=%ld\n", n);
                goto out;
            }
            bad = r == RS_APPLY_REJECTED;
        }
        rs_event_clear(&ev);
        rs_rejection_t *late = NULL;
        size_t nl = rs_engine_take_late_rejections(e, &late);
        for (size_t i = 0; i < nl; i++)
            fprintf(stderr, "export: line %ld: %s\n", n, late[i].reason);
        free(late);
        rejected += (long)nl + bad;
        if (bad)
            fprintf(stderr, "export: line %ld: %s\n", n, err);
        if (n % PROGRESS_EVERY == 0)
            fprintf(stderr, "export: progress stage=replay lines=%ld kept=%zu\n", n, k->j.n);
    }
    if (ferror(in)) {
        fprintf(stderr, "export: error=read file=\"%s\"\n", path);
        goto out;
    }
    if (rs_engine_advance(e, k->period) != 0) {
        fprintf(stderr, "export: error=out_of_memory stage=recognize\n");
        goto out;
    }
    rs_engine_stats_t st;
    rs_engine_get_stats(e, &st);
    if (k->oom) {
        fprintf(stderr, "export: error=out_of_memory stage=journal\n");
        goto out;
    }
    fprintf(stderr, "export: replay lines=%ld rejected=%ld entries=%llu kept=%zu\n", n,
            rejected, (unsigned long long)st.entries, k->j.n);
    rc = 0;
out:
    free(line);
    if (in != stdin)
        fclose(in);
    rs_engine_destroy(e);
    return rc;
}

/* ---- from the journal topic ---- */

typedef struct part {
    int64_t hi; /* end offset when the export started */
    int done;
} part_t;

static int decode_record(rs_entry_reader_t *rd, const rd_kafka_message_t *m, rs_entry_t *e,
                         char *err, size_t errlen)
{
    if (m->len > 0 && ((const char *)m->payload)[0] == '{')
        return rs_codec_entry_from_json(m->payload, m->len, e, err, errlen);
    return rs_codec_entry_from_avro(rd, m->payload, m->len, e, err, errlen);
}

static int cmp_entry_id(const void *a, const void *b)
{
    const rs_entry_t *x = a, *y = b;
    int r = strcmp(x->contract_id, y->contract_id);
    return r != 0 ? r : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Read every partition of topic up to its end offset into k. */
static int consume(rd_kafka_t *rk, rs_entry_reader_t *rd, const char *topic, keep_t *k)
{
    char err[512];
    int npart = rs_kafka_partition_count(rk, topic, 10000);
    if (npart <= 0) {
        fprintf(stderr, "export: error=metadata topic=%s reason=\"%s\"\n", topic,
                npart == 0 ? "no such topic" : "metadata request failed");
        return -1;
    }
    part_t *pt = calloc((size_t)npart, sizeof(*pt));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(npart);
    int rc = -1, left = 0;
    long long total = 0, seen = 0;
    if (pt == NULL || parts == NULL) {
        fprintf(stderr, "export: error=out_of_memory\n");
        goto out;
    }
    for (int p = 0; p < npart; p++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "export: error=watermarks topic=%s partition=%d reason=\"%s\"\n",
                    topic, p, rd_kafka_err2str(e));
            goto out;
        }
        pt[p].hi = hi;
        pt[p].done = hi <= lo;
        left += !pt[p].done;
        total += hi - lo;
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    fprintf(stderr, "export: reading topic=%s partitions=%d records=%lld\n", topic, npart,
            total);
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "export: error=assign topic=%s\n", topic);
        goto out;
    }
    time_t last = time(NULL);
    while (left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL) {
            if (time(NULL) - last > 30) {
                fprintf(stderr,
                        "export: error=consume topic=%s reason=\"no record for 30 s "
                        "before the end offsets\"\n",
                        topic);
                goto out;
            }
            continue;
        }
        last = time(NULL);
        int p = m->partition;
        if (p < 0 || p >= npart || pt[p].done) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || (!m->err && m->offset >= pt[p].hi)) {
            pt[p].done = 1;
            left--;
        } else if (m->err) {
            fprintf(stderr, "export: error=consume partition=%d reason=\"%s\"\n", p,
                    rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        } else {
            rs_entry_t e;
            if (decode_record(rd, m, &e, err, sizeof err) != 0) {
                fprintf(stderr, "export: error=decode partition=%d offset=%lld reason=\"%s\"\n",
                        p, (long long)m->offset, err);
                rd_kafka_message_destroy(m);
                goto out;
            }
            if (wanted(k, &e) && rs_journal_append(&k->j, &e) != 0) {
                fprintf(stderr, "export: error=out_of_memory\n");
                rd_kafka_message_destroy(m);
                goto out;
            }
            if (++seen % PROGRESS_EVERY == 0)
                fprintf(stderr, "export: progress stage=read records=%lld of=%lld kept=%zu\n",
                        seen, total, k->j.n);
            if (m->offset + 1 >= pt[p].hi) {
                pt[p].done = 1;
                left--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    /* at-least-once delivery: one entry per id */
    size_t before = k->j.n, n = 0;
    if (k->j.n > 1)
        qsort(k->j.entries, k->j.n, sizeof(*k->j.entries), cmp_entry_id);
    for (size_t i = 0; i < k->j.n; i++)
        if (n == 0 || strcmp(k->j.entries[n - 1].entry_id, k->j.entries[i].entry_id) != 0)
            k->j.entries[n++] = k->j.entries[i];
    k->j.n = n;
    fprintf(stderr, "export: read topic=%s records=%lld kept=%zu duplicates=%zu\n", topic, seen,
            n, before - n);
    rc = 0;
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    free(pt);
    return rc;
}

static int from_topic(const rs_config_t *cfg, const char *topic, keep_t *k)
{
    static const rs_config_kafka_t settings[] = {
        {"group.id", "revstream-export"}, /* assign() needs one; never joined or committed */
        {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},
        {"log_level", "3"},
        {NULL, NULL}};
    char err[512];
    rs_kafka_client_opts_t ko = {0};
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rs_registry_t *reg = NULL;
    rs_entry_reader_t *rd = NULL;
    const char *bad = NULL;
    int rc = -1;

    ko.role = RS_KAFKA_ROLE_CONSUMER;
    ko.settings = settings;
    ko.props = cfg->kafka; /* bootstrap.servers, SASL, TLS: the worker's */
    ko.nprops = cfg->n_kafka;
    if (rs_kafka_conf_new(&conf, &ko, &bad, err, sizeof err) != 0) {
        fprintf(stderr, "export: error=config key=kafka.%s reason=\"%s\"\n", bad ? bad : "?",
                err);
        return -1;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "export: error=consumer reason=\"%s\"\n", err);
        return -1;
    }
    if (cfg->schema_registry_url != NULL) {
        rs_registry_options_t ro = {cfg->schema_registry_url, cfg->schema_registry_username,
                                    cfg->schema_registry_password, 0};
        if (rs_registry_new(&reg, &ro, err, sizeof err) != RS_REGISTRY_OK)
            reg = NULL;
    } else if (rs_registry_new_local(&reg, cfg->schema_dir, err, sizeof err) !=
               RS_REGISTRY_OK) {
        reg = NULL;
    }
    if (reg == NULL || rs_entry_reader_new(&rd, err, sizeof err) != 0) {
        fprintf(stderr, "export: error=schemas reason=\"%s\"\n", err);
        goto out;
    }
    rs_entry_reader_set_lookup(rd, rs_registry_lookup, reg);
    rc = consume(rk, rd, topic, k);
out:
    rs_entry_reader_destroy(rd);
    rs_registry_destroy(reg);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

/* ---- the command ---- */

static void on_progress(void *opaque, size_t done, size_t total, size_t files)
{
    (void)opaque;
    fprintf(stderr, "export: progress stage=write entries=%zu of=%zu files=%zu\n", done, total,
            files);
}

/* Per currency: the entries' recognized revenue (ties to the waterfall). */
static void log_totals(const keep_t *k)
{
    for (size_t i = 0; i < k->j.n; i++) {
        const char *cur = k->j.entries[i].currency;
        size_t first = 0;
        while (strcmp(k->j.entries[first].currency, cur) != 0)
            first++;
        if (first != i)
            continue;
        rs_money_t rec = 0, billed = 0, received = 0;
        size_t n = 0;
        for (size_t x = i; x < k->j.n; x++)
            if (strcmp(k->j.entries[x].currency, cur) == 0) {
                rec += k->j.entries[x].recognized;
                billed += k->j.entries[x].billed;
                received += k->j.entries[x].received;
                n++;
            }
        char a[48], b[48], c[48];
        int exp = k->j.entries[i].exponent;
        fprintf(stderr,
                "export: totals currency=%s entries=%zu recognized=%s billed=%s "
                "received=%s\n",
                cur, n, rs_money_format(rec, exp, a, sizeof a),
                rs_money_format(billed, exp, b, sizeof b),
                rs_money_format(received, exp, c, sizeof c));
    }
}

int rs_cli_cmd_export(int argc, char **argv)
{
    const char *to = NULL, *period_s = NULL, *out_dir = ".", *config = NULL, *input = NULL;
    const char *policy_path = NULL, *encoding = NULL, *topic = NULL, *max_rows = NULL;
    rs_connect_opts_t o = {0};
    /* the options that take a value, by their index in opts[] */
    const char **value[] = {&to,         &period_s,     &out_dir,    &config,
                            &input,      &policy_path,  &o.currency, &encoding,
                            &o.tax_rate, &o.subsidiary, &max_rows,   &topic};
    static const struct option opts[] = {{"to", required_argument, NULL, 0},
                                         {"period", required_argument, NULL, 1},
                                         {"out", required_argument, NULL, 2},
                                         {"config", required_argument, NULL, 3},
                                         {"input", required_argument, NULL, 4},
                                         {"policy", required_argument, NULL, 5},
                                         {"currency", required_argument, NULL, 6},
                                         {"encoding", required_argument, NULL, 7},
                                         {"tax-rate", required_argument, NULL, 8},
                                         {"subsidiary", required_argument, NULL, 9},
                                         {"max-rows", required_argument, NULL, 10},
                                         {"journal-topic", required_argument, NULL, 11},
                                         {"summary", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "sh", opts, NULL)) != -1) {
        if (c >= 0 && c < (int)(sizeof value / sizeof *value)) {
            *value[c] = optarg;
        } else if (c == 's') {
            o.summary = 1;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 1;
        }
    }
    if (max_rows != NULL) {
        char *end;
        long v = strtol(max_rows, &end, 10);
        if (*end != '\0' || v <= 0) {
            fprintf(stderr, "export: --max-rows: a positive number\n");
            return 1;
        }
        o.max_rows = (size_t)v;
    }
    if (to == NULL || period_s == NULL || optind != argc ||
        (config == NULL) == (input == NULL)) {
        usage(stderr);
        return 1;
    }
    int fmt = rs_connect_format_from_name(to);
    if (fmt < 0) {
        fprintf(stderr, "export: --to: one of quickbooks, xero, netsuite, freee, "
                        "moneyforward, csv\n");
        return 1;
    }
    o.format = (rs_connect_format_t)fmt;
    if (rs_period_parse(period_s, &o.period) != 0) {
        fprintf(stderr, "export: --period: expected YYYY-MM\n");
        return 1;
    }
    if (encoding != NULL) {
        int enc = rs_connect_encoding_from_name(encoding);
        if (enc < 0) {
            fprintf(stderr, "export: --encoding: utf-8, utf-8-bom or shift_jis\n");
            return 1;
        }
        o.encoding = (rs_connect_encoding_t)enc;
    }
    if (o.currency != NULL && rs_currency_exponent(o.currency) < 0) {
        fprintf(stderr, "export: --currency: not an ISO 4217 code\n");
        return 1;
    }

    rs_config_t *cfg = NULL;
    rs_policy_t policy;
    keep_t k;
    char err[512];
    int rc = 1;
    rs_policy_defaults(&policy);
    rs_journal_init(&k.j);
    k.period = o.period;
    k.currency = o.currency;
    k.oom = 0;
    if (config != NULL && rs_config_load(&cfg, config, environ, err, sizeof err) != 0) {
        fprintf(stderr, "export: error=config reason=\"%s\"\n", err);
        goto out;
    }
    if (policy_path == NULL && cfg != NULL)
        policy_path = cfg->policy_file;
    if (policy_path != NULL && load_policy(policy_path, &policy) != 0)
        goto out;
    if (input != NULL
            ? from_replay(input, &policy, &k) != 0
            : from_topic(cfg, topic ? topic : cfg->topics[RS_CONFIG_TOPIC_JOURNAL], &k) != 0)
        goto out;
    log_totals(&k);
    o.out_dir = out_dir;
    o.policy = &policy;
    o.progress = on_progress;
    rs_connect_result_t res;
    if (rs_connect_export(&o, k.j.entries, k.j.n, &res, err, sizeof err) != 0) {
        fprintf(stderr, "export: error=write reason=\"%s\"\n", err);
        goto out;
    }
    for (size_t i = 0; i < res.n_files; i++)
        printf("%s\n", res.files[i]);
    fprintf(stderr,
            "export: done to=%s period=%s summary=%d entries=%zu journals=%zu rows=%zu "
            "files=%zu\n",
            to, period_s, o.summary, res.entries, res.journals, res.rows, res.n_files);
    rs_connect_result_free(&res);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    rs_journal_free(&k.j);
    rs_config_destroy(cfg);
    return rc;
}
