/*
 * cmd_report.c — `revstream report`: the reports of a running (or stopped)
 * deployment, from what ledger services see.
 *
 *   revstream report --config worker.properties [--report R] [--through YYYY-MM]
 *                    [--as-of YYYY-MM-DD] [--format F] [--policy FILE]
 *   revstream report --state-dir DIR --bootstrap HOST:PORT [--journal-topic T] ...
 *
 * Invariants:
 *   - Posted figures come from the journal topic, read from the beginning to
 *     its end offsets, entries deduplicated by entry_id (outputs are delivered
 *     at least once with deterministic ids); Avro and JSON values are both read.
 *   - Contract terms (the line list, and what the waterfall and RPO project
 *     after --through) come, with --config, from the state changelog topic:
 *     every partition is restored (rs_changelog_restore, as a worker restores
 *     it) into a temporary store that is removed afterwards, so no worker's
 *     local state is needed and every partition of a scaled-out deployment is
 *     seen. A changelog that no longer starts at offset 0 is refused (it
 *     would give incomplete terms). With --state-dir (the old path) they come
 *     from a worker's store, opened read-only. Either way every partition's
 *     contracts are imported into one engine for the views
 *     (rs_pstate_import_all).
 *   - With --config the Kafka settings (SASL/TLS included), topic names and
 *     policy.file are the worker's own; secrets are never printed. The
 *     compacted balances topic is read too: each line's latest snapshot is
 *     checked against its balance from the journal (a summary line on
 *     stderr, `agree=` / `differ=`, and a warning per difference).
 *   - The Kafka consumer's conf comes from rs_kafka_conf_new, as the
 *     worker's and produce's do.
 *   - Same report shapes and formats as `revstream replay`; exit 0 ok, 1
 *     usage, state, broker or decode error.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_changelog.h"
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_codec_outputs.h"
#include "rs_config.h"
#include "rs_engine.h"
#include "rs_file.h"
#include "rs_format.h"
#include "rs_format_html.h"
#include "rs_format_ledger.h"
#include "rs_kafka_client.h"
#include "rs_pstate.h"
#include "rs_report.h"
#include "rs_report_ledger.h"
#include "rs_state.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: revstream report --config worker.properties [--report R]\n"
        "                        [--through YYYY-MM] [--as-of YYYY-MM-DD]\n"
        "                        [--format table|csv|json] [--policy FILE] [--html OUT.html]\n"
        "       revstream report --state-dir DIR --bootstrap HOST:PORT [--journal-topic T] "
        "...\n"
        "\n"
        "Reports of a deployment: posted entries from the journal topic (deduplicated\n"
        "by entry_id); contract terms from the state changelog topic (--config) or a\n"
        "worker's state store (--state-dir, read-only).\n"
        "R: waterfall (default), rollforward, balances, balances-by-customer,\n"
        "   balances-by-contract, balances-by-invoice, ar-aging, trial-balance, rpo,\n"
        "   schedule, journal, exceptions.\n"
        "--as-of (ar-aging, balances-by-invoice): default the last day of --through.\n");
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

/* The librdkafka conf of the worker's config plus `settings`. */
static rd_kafka_conf_t *conf_of(const rs_config_t *cfg, const char *bootstrap,
                                const rs_config_kafka_t *settings)
{
    rs_kafka_client_opts_t ko = {0};
    rd_kafka_conf_t *conf = NULL;
    const char *bad = NULL;
    char err[512];
    ko.bootstrap = bootstrap;
    ko.role = RS_KAFKA_ROLE_CONSUMER;
    ko.settings = settings;
    if (cfg != NULL) {
        ko.props = cfg->kafka;
        ko.nprops = cfg->n_kafka;
    }
    if (rs_kafka_conf_new(&conf, &ko, &bad, err, sizeof(err)) != 0)
        fprintf(stderr, "report: error=config key=%s reason=\"%s\"\n", bad ? bad : "?", err);
    return conf;
}

/* Every partition of the changelog topic restored into a temporary store,
 * then imported into e. */
static int load_changelog(const rs_config_t *cfg, rs_engine_t *e)
{
    char dir[] = "/tmp/revstream-report.XXXXXX", err[512], gid[300];
    const rs_config_kafka_t settings[] = {{"group.id", gid}, {"log_level", "3"}, {NULL, NULL}};
    rs_state_opts_t o = {0};
    rs_state_t *st = NULL;
    rd_kafka_t *rk = NULL;
    int rc = -1, npart = 0;
    int64_t records = 0;
    rs_changelog_restore_part_t *parts = NULL;
    size_t nparts = 0;
    snprintf(gid, sizeof gid, "%s.report", cfg->group_id);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "report: error=tmpdir reason=\"%s\"\n", strerror(errno));
        return -1;
    }
    o.path = dir;
    o.create_if_missing = 1;
    o.sync = RS_STATE_SYNC_OFF;
    rd_kafka_conf_t *conf = conf_of(cfg, NULL, settings);
    if (conf == NULL)
        goto out;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "report: error=consumer reason=\"%s\"\n", err);
        goto out;
    }
    if (rs_state_open(&st, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "report: error=state reason=\"%s\"\n", err);
        goto out;
    }
    npart = rs_kafka_partition_count(rk, cfg->changelog_topic, 10000);
    if (npart <= 0) {
        fprintf(stderr, "report: error=metadata topic=%s reason=\"%s\"\n", cfg->changelog_topic,
                npart == 0 ? "missing" : "no metadata");
        goto out;
    }
    parts = calloc((size_t)npart, sizeof *parts);
    if (parts == NULL) {
        fprintf(stderr, "report: error=out_of_memory\n");
        goto out;
    }
    for (int32_t n = 0; n < npart; n++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, cfg->changelog_topic, n, &lo, &hi, 10000)) {
            fprintf(stderr, "report: error=watermarks topic=%s partition=%d\n",
                    cfg->changelog_topic, (int)n);
            goto out;
        }
        if (lo > 0) {
            fprintf(stderr,
                    "report: error=changelog topic=%s partition=%d low=%lld reason=\"the "
                    "changelog no longer starts at offset 0 (trimmed, or not compacted): the "
                    "contract terms would be incomplete\"\n",
                    cfg->changelog_topic, (int)n, (long long)lo);
            goto out;
        }
        if (hi > 0)
            parts[nparts++] = (rs_changelog_restore_part_t){n, 0, hi, 0, 0, 0};
    }
    if (nparts > 0) { /* every partition at once, one consumer */
        rs_changelog_restore_args_t a = {0};
        a.conf = conf_of(cfg, NULL, settings);
        if (a.conf == NULL)
            goto out;
        a.topic = cfg->changelog_topic;
        a.parts = parts;
        a.nparts = nparts;
        for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
            a.input_topics[t] = cfg->topics[t];
        a.timeout_ms = 120000;
        if (rs_changelog_restore(st, &a, &records, err, sizeof(err)) != 0) {
            fprintf(stderr, "report: error=changelog reason=\"%s\"\n", err);
            goto out;
        }
    }
    if (rs_pstate_import_all(st, e, err, sizeof(err)) != 0) {
        fprintf(stderr, "report: error=state reason=\"%s\"\n", err);
        goto out;
    }
    fprintf(stderr, "report: terms topic=%s partitions=%d records=%lld contracts=%zu\n",
            cfg->changelog_topic, npart, (long long)records, rs_engine_contract_count(e));
    rc = 0;
out:
    free(parts);
    rs_state_destroy(st);
    if (rk)
        rd_kafka_destroy(rk);
    rs_remove_tree(dir); /* the temporary restore store */
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

/* What consume_to_end hands each record to; 0, or -1 to stop (fatal). */
typedef int (*record_fn)(void *opaque, const rd_kafka_message_t *m);

/* Every record of `topic`, from the beginning of each partition to its end
 * offset, to fn. *nparts gets the partition count. 0 or -1. */
static int consume_to_end(const rs_config_t *cfg, const char *bootstrap, const char *topic,
                          record_fn fn, void *opaque, int *nparts)
{
    char err[512];
    static const rs_config_kafka_t settings[] = {
        {"group.id", "revstream-report"}, /* assign() needs one; never joined */
        {"enable.partition.eof", "true"}, /* to know where the topic ends */
        {"enable.auto.commit", "false"},
        {"log_level", "3"},
        {NULL, NULL}};
    rd_kafka_conf_t *conf = conf_of(cfg, bootstrap, settings);
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = -1, npart = 0, eof = 0;
    if (conf == NULL)
        return -1;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "report: error=consumer reason=\"%s\"\n", err);
        return -1;
    }
    npart = rs_kafka_partition_count(rk, topic, 10000);
    if (npart <= 0) {
        fprintf(stderr, "report: error=metadata topic=%s\n", topic);
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
        int stop = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eof++;
        else if (m->err)
            fprintf(stderr, "report: error=consume reason=\"%s\"\n",
                    rd_kafka_message_errstr(m));
        else
            stop = fn(opaque, m) != 0;
        rd_kafka_message_destroy(m);
        if (stop)
            goto out;
    }
    if (eof < npart) {
        fprintf(stderr, "report: error=consume topic=%s reason=\"end not reached in time\"\n",
                topic);
        goto out;
    }
    *nparts = npart;
    rc = 0;
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return rc;
}

typedef struct journal_read {
    rs_journal_t *j;
    rs_entry_reader_t *rd;
    long bad;
} journal_read_t;

static int on_entry(void *opaque, const rd_kafka_message_t *m)
{
    journal_read_t *jr = opaque;
    char err[512];
    rs_entry_t e;
    int r = m->len > 0 && ((const char *)m->payload)[0] == '{'
                ? rs_codec_entry_from_json(m->payload, m->len, &e, err, sizeof(err))
                : rs_codec_entry_from_avro(jr->rd, m->payload, m->len, &e, err, sizeof(err));
    if (r) {
        if (jr->bad++ < 5)
            fprintf(stderr, "report: partition %d offset %lld: %s\n", m->partition,
                    (long long)m->offset, err);
        return 0;
    }
    if (rs_journal_append(jr->j, &e)) {
        fprintf(stderr, "report: error=out of memory\n");
        return -1;
    }
    return 0;
}

/* Read the journal topic from the beginning to its end, one entry per id. */
static int read_journal(const rs_config_t *cfg, const char *bootstrap, const char *topic,
                        rs_journal_t *j)
{
    char err[512];
    journal_read_t jr = {j, NULL, 0};
    int npart = 0;
    if (rs_entry_reader_new(&jr.rd, err, sizeof(err))) {
        fprintf(stderr, "report: error=schema reason=\"%s\"\n", err);
        return -1;
    }
    int rc = consume_to_end(cfg, bootstrap, topic, on_entry, &jr, &npart);
    rs_entry_reader_destroy(jr.rd);
    if (rc)
        return -1;
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
            topic, npart, k, before - k, jr.bad);
    return jr.bad ? -1 : 0;
}

/* The latest line snapshot of each key on the balances topic. */
typedef struct snap {
    char contract_id[RS_ID_MAX], line_id[RS_ID_MAX];
    size_t seq; /* arrival order: a key stays on one partition, read in order */
    rs_money_t v[5];
} snap_t;

typedef struct snaps {
    snap_t *s;
    size_t n, cap;
    rs_output_reader_t *rd;
    long bad;
} snaps_t;

static int on_snapshot(void *opaque, const rd_kafka_message_t *m)
{
    snaps_t *ss = opaque;
    rs_output_balance_t b;
    char err[512];
    if (m->payload == NULL)
        return 0; /* a tombstone: nothing to compare */
    if (rs_output_balance_decode(ss->rd, m->payload, m->len, &b, err, sizeof(err))) {
        if (ss->bad++ < 5)
            fprintf(stderr, "report: warning balances partition=%d offset=%lld: %s\n",
                    m->partition, (long long)m->offset, err);
        return 0;
    }
    if (strcmp(b.scope, "line") != 0 || b.line_id == NULL)
        return 0;
    if (ss->n == ss->cap) {
        size_t nc = ss->cap ? ss->cap * 2 : 64;
        snap_t *ns = realloc(ss->s, nc * sizeof(*ns));
        if (ns == NULL)
            return -1;
        ss->s = ns;
        ss->cap = nc;
    }
    snap_t *x = &ss->s[ss->n];
    snprintf(x->contract_id, sizeof x->contract_id, "%s", b.contract_id);
    snprintf(x->line_id, sizeof x->line_id, "%s", b.line_id);
    x->seq = ss->n++;
    x->v[0] = b.billed;
    x->v[1] = b.recognized;
    x->v[2] = b.deferred;
    x->v[3] = b.unbilled;
    x->v[4] = b.received;
    return 0;
}

static int cmp_snap(const void *a, const void *b)
{
    const snap_t *x = a, *y = b;
    int r = strcmp(x->contract_id, y->contract_id);
    if (r == 0)
        r = strcmp(x->line_id, y->line_id);
    return r ? r : (x->seq > y->seq) - (x->seq < y->seq);
}

/* The compacted balances topic against the journal: each line's latest
 * snapshot should equal its balance from every posted entry. Differences
 * are warnings (a snapshot of a batch still in flight may trail the
 * journal); the summary line says how many agree. 0, or -1 on an error
 * reading the topic. */
static int check_balances_topic(const rs_config_t *cfg, const rs_engine_t *e,
                                const rs_journal_t *j)
{
    static const char *const names[5] = {"billed", "recognized", "deferred", "unbilled",
                                         "received"};
    const char *topic = cfg->topics[RS_CONFIG_TOPIC_BALANCES];
    snaps_t ss = {0};
    char err[512];
    rs_balance_row_t *b = NULL;
    size_t nb = 0, agree = 0, differ = 0, latest = 0;
    int npart = 0, rc = -1;
    if (rs_output_reader_new(&ss.rd, err, sizeof(err))) {
        fprintf(stderr, "report: error=schema reason=\"%s\"\n", err);
        return -1;
    }
    rs_period_t last = 0; /* every posted entry counts */
    for (size_t i = 0; i < j->n; i++)
        if (j->entries[i].period > last)
            last = j->entries[i].period;
    if (consume_to_end(cfg, NULL, topic, on_snapshot, &ss, &npart) ||
        rs_report_balances(e, j, last, &b, &nb))
        goto out;
    if (ss.n > 1)
        qsort(ss.s, ss.n, sizeof(*ss.s), cmp_snap);
    for (size_t i = 0; i < ss.n; i++) {
        if (i + 1 < ss.n && strcmp(ss.s[i].contract_id, ss.s[i + 1].contract_id) == 0 &&
            strcmp(ss.s[i].line_id, ss.s[i + 1].line_id) == 0)
            continue; /* not the latest of its key */
        latest++;
        const rs_balance_row_t *row = NULL;
        for (size_t r = 0; r < nb && row == NULL; r++)
            if (strcmp(b[r].contract_id, ss.s[i].contract_id) == 0 &&
                strcmp(b[r].line_id, ss.s[i].line_id) == 0)
                row = &b[r];
        rs_money_t jv[5] = {0, 0, 0, 0, 0};
        if (row != NULL) {
            jv[0] = row->billed;
            jv[1] = row->recognized;
            jv[2] = row->deferred;
            jv[3] = row->unbilled;
            jv[4] = row->received;
        }
        int k = 0;
        while (k < 5 && jv[k] == ss.s[i].v[k])
            k++;
        if (k == 5) {
            agree++;
        } else if (differ++ < 5) {
            fprintf(stderr,
                    "report: warning balance_differs contract=%s line=%s field=%s topic=%lld "
                    "journal=%lld (minor units)\n",
                    ss.s[i].contract_id, ss.s[i].line_id, names[k], (long long)ss.s[i].v[k],
                    (long long)jv[k]);
        }
    }
    fprintf(stderr,
            "report: balances topic=%s partitions=%d lines=%zu agree=%zu differ=%zu "
            "journal_lines=%zu bad=%ld\n",
            topic, npart, latest, agree, differ, nb, ss.bad);
    rc = 0;
out:
    free(ss.s);
    free(b);
    rs_output_reader_destroy(ss.rd);
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

/* The ledger views (rs_report_ledger.h); -2 when `report` is not one. */
static int ledger_report(const char *report, const rs_engine_t *e, const rs_journal_t *j,
                         rs_period_t through, rs_date_t as_of, rs_format_kind_t fmt,
                         const rs_policy_t *policy)
{
    int r = -1;
    if (strcmp(report, "balances-by-customer") == 0 ||
        strcmp(report, "balances-by-contract") == 0) {
        rs_group_by_t by =
            report[12] == 'c' && report[13] == 'u' ? RS_GROUP_CUSTOMER : RS_GROUP_CONTRACT;
        rs_balance_row_t *b;
        rs_group_row_t *g;
        size_t nb, ng;
        if (rs_report_balances(e, j, through, &b, &nb) == 0) {
            if (rs_report_balances_by(b, nb, by, &g, &ng) == 0) {
                r = rs_format_balances_by(stdout, fmt, g, ng, by, through);
                free(g);
            }
            free(b);
        }
    } else if (strcmp(report, "balances-by-invoice") == 0 || strcmp(report, "ar-aging") == 0) {
        rs_invoice_row_t *rows;
        size_t n;
        if (rs_report_invoices(j, as_of, &rows, &n) == 0) {
            r = rs_format_invoice_balances(stdout, fmt, rows, n, as_of, report[0] == 'a');
            free(rows);
        }
    } else if (strcmp(report, "trial-balance") == 0) {
        rs_trial_row_t *rows;
        size_t n;
        if (rs_report_trial_balance(j, through, &rows, &n) == 0) {
            r = rs_format_trial_balance(stdout, fmt, rows, n, policy, through);
            free(rows);
        }
    } else if (strcmp(report, "rpo") == 0) {
        rs_rpo_row_t *rows;
        size_t n;
        if (rs_report_rpo(e, j, through, &rows, &n) == 0) {
            r = rs_format_rpo(stdout, fmt, rows, n, through);
            free(rows);
        }
    } else {
        r = -2;
    }
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every contract of the journal has its terms in e; otherwise the terms
 * are incomplete (a changelog that misses partitions or records) and the
 * reports would be partial: refuse. 0 or -1. */
static int check_terms(const rs_engine_t *e, const rs_journal_t *j)
{
    size_t nc = rs_engine_contract_count(e), missing = 0;
    const char **ids = malloc((nc + 1) * sizeof(*ids));
    const char *first = NULL;
    if (ids == NULL)
        return -1;
    for (size_t i = 0; i < nc; i++) {
        rs_contract_view_t v;
        rs_engine_contract_get(e, i, &v);
        ids[i] = v.contract_id;
    }
    qsort(ids, nc, sizeof(*ids), cmp_str);
    for (size_t i = 0; i < j->n; i++) {
        const char *id = j->entries[i].contract_id;
        if (bsearch(&id, ids, nc, sizeof(*ids), cmp_str) == NULL) {
            missing++;
            if (first == NULL)
                first = id;
        }
    }
    free(ids);
    if (missing == 0)
        return 0;
    fprintf(stderr,
            "report: error=terms entries_without_terms=%zu first_contract=%s reason=\"the "
            "journal names contracts whose terms are not in the changelog (or state): the "
            "reports would be incomplete\"\n",
            missing, first);
    return -1;
}

/* The HTML page into `path` (written to a temporary file, then renamed). */
static int html_report(const char *path, const rs_engine_t *e, const rs_journal_t *j,
                       rs_period_t through)
{
    rs_html_input_t in = {0};
    rs_waterfall_row_t *wf = NULL;
    rs_rollforward_row_t *rf = NULL;
    rs_balance_row_t *bal = NULL;
    rs_exception_row_t *exc = NULL;
    size_t *idx = NULL;
    char tmp[4096];
    int rc = -1;
    FILE *f = NULL;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    in.through = through;
    if (rs_report_waterfall(e, j, through, &wf, &in.nwf) ||
        rs_report_rollforward(e, j, through, &rf, &in.nrf) ||
        rs_report_balances(e, j, through, &bal, &in.nbal) ||
        rs_report_exceptions(e, j, through, &exc, &in.nexc) ||
        rs_report_journal(j, through, &idx, &in.nidx)) {
        fprintf(stderr, "report: error=out of memory\n");
        goto out;
    }
    in.wf = wf;
    in.rf = rf;
    in.bal = bal;
    in.exc = exc;
    in.entries = j->entries;
    in.idx = idx;
    f = fopen(tmp, "w");
    if (f == NULL || rs_format_html(f, &in) != 0 || fclose(f) != 0) {
        if (f == NULL)
            fprintf(stderr, "report: error=html file=\"%s\" reason=\"%s\"\n", tmp,
                    strerror(errno));
        else
            fprintf(stderr, "report: error=html file=\"%s\" reason=\"write failed\"\n", tmp);
        f = NULL;
        remove(tmp);
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "report: error=html file=\"%s\" reason=\"%s\"\n", path,
                strerror(errno));
        remove(tmp);
        goto out;
    }
    fprintf(stderr, "report: html file=\"%s\" periods=%zu lines=%zu entries=%zu\n", path,
            in.nwf, in.nbal, in.nidx);
    rc = 0;
out:
    free(wf);
    free(rf);
    free(bal);
    free(exc);
    free(idx);
    return rc;
}

static int read_policy(const char *path, rs_policy_t *policy)
{
    char err[512];
    char *text = slurp(path);
    if (text == NULL || rs_policy_parse(policy, text, err, sizeof(err))) {
        fprintf(stderr, "report: error=policy file=\"%s\" reason=\"%s\"\n", path,
                text ? err : "cannot read it");
        free(text);
        return -1;
    }
    free(text);
    return 0;
}

int rs_cli_cmd_report(int argc, char **argv)
{
    const char *dir = NULL, *bootstrap = NULL, *topic = "revenue.journal", *cfg_path = NULL;
    const char *report = "waterfall", *through_s = NULL, *format_s = NULL, *policy_path = NULL;
    const char *as_of_s = NULL, *html = NULL;
    static const struct option opts[] = {{"state-dir", required_argument, NULL, 'd'},
                                         {"html", required_argument, NULL, 'H'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"as-of", required_argument, NULL, 'a'},
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
    while ((c = getopt_long(argc, argv, "d:c:a:b:j:r:t:f:p:H:h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            html = optarg;
            break;
        case 'c':
            cfg_path = optarg;
            break;
        case 'a':
            as_of_s = optarg;
            break;
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
    if ((cfg_path == NULL && (dir == NULL || bootstrap == NULL)) ||
        (cfg_path != NULL && (dir != NULL || bootstrap != NULL)) || optind != argc) {
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
    rs_config_t *cfg = NULL;
    rs_policy_defaults(&policy);
    if (cfg_path != NULL) {
        if (rs_config_load(&cfg, cfg_path, environ, err, sizeof(err))) {
            fprintf(stderr, "report: error=config reason=\"%s\"\n", err);
            return 1;
        }
        topic = cfg->topics[RS_CONFIG_TOPIC_JOURNAL];
        if (policy_path == NULL)
            policy_path = cfg->policy_file;
    }
    if (policy_path && read_policy(policy_path, &policy)) {
        rs_config_destroy(cfg);
        return 1;
    }
    rs_engine_t *e = NULL;
    rs_journal_t j;
    int rc = 1;
    rs_journal_init(&j);
    if (rs_engine_new(&e, &policy, err, sizeof(err))) {
        fprintf(stderr, "report: %s\n", err);
        rs_config_destroy(cfg);
        return 1;
    }
    if (cfg != NULL ? load_changelog(cfg, e) : load_state(dir, e))
        goto out;
    if (read_journal(cfg, bootstrap, topic, &j) || check_terms(e, &j) ||
        (cfg != NULL && check_balances_topic(cfg, e, &j)))
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
    rs_date_t as_of = rs_period_last_day(through);
    if (as_of_s && rs_date_parse(as_of_s, &as_of)) {
        fprintf(stderr, "report: --as-of: expected YYYY-MM-DD\n");
        goto out;
    }
    if (html != NULL) {
        rc = html_report(html, e, &j, through) == 0 ? 0 : 1;
        goto out;
    }
    int r = ledger_report(report, e, &j, through, as_of, fmt, &policy);
    if (r != -2) {
        /* done: one of the ledger views */
    } else if (strcmp(report, "waterfall") == 0) {
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
    rs_config_destroy(cfg);
    return rc;
}
