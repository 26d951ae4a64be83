/*
 * cmd_produce.c — `revstream produce`: put a JSON Lines file of events on
 * the input topics, the way upstream systems would.
 *
 *   revstream produce --bootstrap HOST:PORT [--format avro|json]
 *                     [--schemas DIR] [--rate N] [--kafka KEY=VALUE]...
 *                     [--progress] FILE.jsonl|-
 *
 * Invariants:
 *   - Each event goes to its topic (contracts, invoices, payments, usage),
 *     keyed by contract_id with partitioner murmur2_random, so it lands where
 *     a Java producer would put it; period.closed goes to every partition of
 *     the contracts topic (every worker must see it).
 *   - Avro values use the Confluent wire format with the schema ids of the
 *     local map (DIR/ids.properties, default rs_cli_schema_dir()); JSON
 *     values are the event re-encoded canonically.
 *   - Each record's timestamp is the event's occurred_at (event time), which
 *     is what a worker merges a partition's four topics by.
 *   - --rate N paces the events at N per second from the start (a steady
 *     stream for load and scaling tests, not a burst); 0 means as fast as
 *     the broker takes them.
 *   - --kafka KEY=VALUE sets a librdkafka producer property (after the
 *     defaults above, so it may override them), e.g. security settings; the
 *     conf is built by rs_kafka_conf_new, as the worker's is.
 *   - A line that does not decode is reported (line number, reason) and
 *     skipped; exit 2 if any was. Delivery failures exit 1. Nothing is
 *     reported as produced before the broker acknowledged it.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rs_avro.h"
#include "rs_bytes.h"
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_kafka_client.h"
#include "rs_registry.h"

typedef struct produce_state {
    long delivered, failed;
} produce_state_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    produce_state_t *ps = opaque;
    if (m->err) {
        if (ps->failed++ < 5)
            fprintf(stderr, "produce: error=delivery topic=%s reason=\"%s\"\n",
                    rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    } else {
        ps->delivered++;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: revstream produce --bootstrap HOST:PORT [--format avro|json]\n"
               "                         [--schemas DIR] [--rate N] [--kafka KEY=VALUE]...\n"
               "                         [--progress] FILE.jsonl|-\n"
               "\n"
               "Put JSON Lines events on the input topics (contracts, invoices, payments,\n"
               "usage), keyed by contract_id (murmur2_random); period.closed goes to every\n"
               "partition of contracts. --rate N sends N events per second (0: unpaced).\n"
               "--kafka sets a librdkafka producer property (repeatable).\n"
               "Exit 0 all delivered, 2 some line skipped, 1 error.\n");
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --rate: wait until event number `sent` is due (start + sent / rate),
 * serving delivery reports meanwhile. */
static void pace(rd_kafka_t *rk, int64_t start_us, long sent, long rate)
{
    int64_t due = start_us + (int64_t)sent * 1000000 / rate;
    for (int64_t now = mono_us(); now < due; now = mono_us()) {
        int64_t ms = (due - now + 999) / 1000;
        rd_kafka_poll(rk, ms > 100 ? 100 : (int)ms);
    }
}

/* Send one record, retrying while the local queue is full. */
static int produce_one(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                       const void *val, size_t len, int64_t timestamp_ms)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "produce: error=produce topic=%s reason=\"%s\"\n", topic,
                    rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(rk, 100);
    }
}

int rs_cli_cmd_produce(int argc, char **argv)
{
    const char *bootstrap = NULL, *format = "avro", *schemas = rs_cli_schema_dir();
    int progress = 0, rc = 1;
    long rate = 0;
    enum { MAX_KAFKA_PROPS = 32 };
    const char *kprops[MAX_KAFKA_PROPS];
    char kkeys[MAX_KAFKA_PROPS][256];
    rs_config_kafka_t kpass[MAX_KAFKA_PROPS];
    int nkprops = 0;
    static const struct option opts[] = {{"bootstrap", required_argument, NULL, 'b'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"schemas", required_argument, NULL, 's'},
                                         {"progress", no_argument, NULL, 'p'},
                                         {"rate", required_argument, NULL, 'r'},
                                         {"kafka", required_argument, NULL, 'X'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:f:s:r:X:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 's':
            schemas = optarg;
            break;
        case 'p':
            progress = 1;
            break;
        case 'r': {
            char *end = NULL;
            rate = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || rate < 0 || rate > 10000000) {
                fprintf(stderr,
                        "produce: error=option option=--rate value=\"%s\" "
                        "reason=\"events per second, 0..10000000\"\n",
                        optarg);
                return 1;
            }
            break;
        }
        case 'X':
            if (nkprops == MAX_KAFKA_PROPS || strchr(optarg, '=') == NULL || optarg[0] == '=') {
                fprintf(stderr,
                        "produce: error=option option=--kafka reason=\"KEY=VALUE, at most "
                        "%d\"\n",
                        MAX_KAFKA_PROPS);
                return 1;
            }
            kprops[nkprops++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (bootstrap == NULL || optind + 1 != argc ||
        (strcmp(format, "avro") != 0 && strcmp(format, "json") != 0)) {
        usage(stderr);
        return 1;
    }
    int avro = strcmp(format, "avro") == 0;
    const char *path = argv[optind];
    char err[512];
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    rd_kafka_t *rk = NULL;
    rs_registry_t *reg = NULL;
    rs_avro_cache_t *cache = NULL;
    int32_t ids[4] = {-1, -1, -1, -1};
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, skipped = 0, sent = 0;
    produce_state_t ps = {0, 0};
    static const char *const topic_names[] = {"contracts", "invoices", "payments", "usage"};

    if (in == NULL) {
        fprintf(stderr, "produce: error=open file=\"%s\"\n", path);
        return 1;
    }
    if (avro) {
        if (rs_registry_new_local(&reg, schemas, err, sizeof(err)) != RS_REGISTRY_OK ||
            rs_avro_cache_new(&cache, err, sizeof(err)) != RS_AVRO_OK) {
            fprintf(stderr, "produce: error=schemas reason=\"%s\"\n", err);
            goto out;
        }
        for (int t = 0; t < 4; t++) {
            int kind = rs_avro_schema_kind_from_name(topic_names[t]);
            char subject[64];
            const char *text = NULL;
            snprintf(subject, sizeof(subject), "%s-value", topic_names[t]);
            if (kind < 0 ||
                rs_registry_register(reg, subject, rs_avro_schema_json(kind), &ids[t], err,
                                     sizeof(err)) != RS_REGISTRY_OK ||
                rs_registry_get_schema(reg, ids[t], &text, err, sizeof(err)) !=
                    RS_REGISTRY_OK ||
                rs_avro_cache_add(cache, ids[t], text, err, sizeof(err)) != RS_AVRO_OK) {
                fprintf(stderr, "produce: error=schema topic=%s reason=\"%s\"\n",
                        topic_names[t], err);
                goto out;
            }
        }
    }
    /* --kafka KEY=VALUE: set after the settings, so they may override them */
    for (int i = 0; i < nkprops; i++) {
        size_t klen = (size_t)(strchr(kprops[i], '=') - kprops[i]);
        snprintf(kkeys[i], sizeof(kkeys[i]), "%.*s", (int)klen, kprops[i]);
        kpass[i].key = kkeys[i];
        kpass[i].value = kprops[i] + klen + 1;
    }
    static const rs_config_kafka_t settings[] = {{"partitioner", "murmur2_random"},
                                                 {"enable.idempotence", "true"},
                                                 {"linger.ms", "5"},
                                                 {"log_level", "3"},
                                                 {NULL, NULL}};
    rs_kafka_client_opts_t ko = {0};
    rd_kafka_conf_t *conf = NULL;
    const char *bad = NULL;
    ko.bootstrap = bootstrap;
    ko.role = RS_KAFKA_ROLE_PRODUCER;
    ko.settings = settings;
    ko.props = kpass;
    ko.nprops = (size_t)nkprops;
    ko.opaque = &ps;
    if (rs_kafka_conf_new(&conf, &ko, &bad, err, sizeof(err)) != 0) {
        int passthrough = 0;
        for (int i = 0; i < nkprops; i++)
            passthrough |= bad == kpass[i].key;
        if (passthrough) /* the value is not echoed: it may be a secret */
            fprintf(stderr, "produce: error=config key=%s reason=\"%s\"\n", bad, err);
        else
            fprintf(stderr, "produce: error=config reason=\"%s\"\n", err);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "produce: error=producer reason=\"%s\"\n", err);
        goto out;
    }
    /* period.closed goes to every partition of contracts */
    int contracts_partitions = rs_kafka_partition_count(rk, "contracts", 10000);
    if (contracts_partitions <= 0) {
        fprintf(stderr,
                "produce: error=metadata topic=contracts bootstrap=%s reason=\"no "
                "such topic, or the broker did not answer in 10 s\"\n",
                bootstrap);
        goto out;
    }
    ssize_t n;
    int64_t start_us = mono_us();
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        /* a byte-order mark at the start of the file is not part of line 1 */
        size_t bom = lineno == 1 ? rs_utf8_bom_len(line, (size_t)n) : 0;
        if (bom > 0) {
            memmove(line, line + bom, (size_t)n - bom + 1);
            n -= (ssize_t)bom;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (strspn(line, " \t") == (size_t)n)
            continue;
        rs_event_t ev;
        rs_event_init(&ev);
        if (rs_codec_json_decode(line, (size_t)n, &ev, err, sizeof(err))) {
            fprintf(stderr, "produce: line %ld: %s\n", lineno, err);
            skipped++;
            continue;
        }
        const char *topic = rs_event_topic(ev.type);
        int t = 0;
        while (t < 4 && strcmp(topic_names[t], topic) != 0)
            t++;
        void *val = NULL;
        size_t len = 0;
        char *json = NULL;
        if (avro) {
            if (rs_avro_encode_event(cache, ids[t], &ev, &val, &len, err, sizeof(err)) !=
                RS_AVRO_OK) {
                fprintf(stderr, "produce: line %ld: %s\n", lineno, err);
                skipped++;
                rs_event_clear(&ev);
                continue;
            }
        } else {
            json = rs_codec_json_encode(&ev);
            val = json;
            len = json ? strlen(json) : 0;
        }
        int bad = val == NULL;
        /* the record's timestamp is the event's time: workers merge a
         * partition's topics by it */
        int64_t ts = 0;
        if (rs_timestamp_parse_ms(ev.occurred_at, &ts) || ts < 0)
            ts = 0; /* 0: let the broker stamp it */
        if (!bad && ev.type == RS_EV_PERIOD_CLOSED) {
            for (int32_t p = 0; p < contracts_partitions && !bad; p++)
                bad = produce_one(rk, topic, p, ev.event_id, val, len, ts) != 0;
        } else if (!bad) {
            bad = produce_one(rk, topic, RD_KAFKA_PARTITION_UA, ev.contract_id, val, len, ts) !=
                  0;
        }
        free(avro ? val : json);
        rs_event_clear(&ev);
        if (bad)
            goto out;
        sent++;
        rd_kafka_poll(rk, 0);
        if (rate > 0)
            pace(rk, start_us, sent, rate);
        if (progress && sent % 100000 == 0)
            fprintf(stderr, "produce: progress lines=%ld sent=%ld delivered=%ld\n", lineno,
                    sent, ps.delivered);
    }
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "produce: error=flush reason=\"%d messages not delivered in 60 s\"\n",
                rd_kafka_outq_len(rk));
        goto out;
    }
    if (ps.failed > 0) {
        fprintf(stderr, "produce: error=delivery failed=%ld\n", ps.failed);
        goto out;
    }
    fprintf(stderr, "produce: done lines=%ld events=%ld records=%ld skipped=%ld format=%s\n",
            lineno, sent, ps.delivered, skipped, format);
    rc = skipped ? 2 : 0;
out:
    free(line);
    if (rk)
        rd_kafka_destroy(rk);
    rs_avro_cache_destroy(cache);
    rs_registry_destroy(reg);
    if (in != stdin)
        fclose(in);
    return rc;
}
