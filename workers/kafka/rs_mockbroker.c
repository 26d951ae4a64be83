/*
 * rs_mockbroker.c — start librdkafka's mock cluster and create the topics.
 *
 * Invariants:
 *   - mb->cluster is created on mb->host and destroyed before it (the
 *     cluster does its bookkeeping on the host handle).
 *   - mb->host is a producer that never produces: it exists only to host the
 *     cluster. Its log level is LOG_WARNING (4) and its log callback writes
 *     one key=value line per message on stderr.
 *   - On any failure nothing is left running: the one exit label destroys
 *     whatever was created, in reverse order.
 *
 * Ownership: see rs_mockbroker.h. rd_kafka_new() takes the conf only on
 * success; on failure the conf is still ours to destroy.
 */
#include "rs_mockbroker.h"
#include "rs_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rs_mockbroker_topics[RS_MOCKBROKER_TOPIC_COUNT] = {
    "contracts",       "invoices",
    "payments",        "usage",
    "revenue.journal", "revenue.deferred-balances",
    "revenue.dlq",     "revenue.state-changelog",
};

struct rs_mockbroker {
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *cluster;
    int brokers;
    int partitions;
};

static void host_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    fprintf(stderr, "broker: rdkafka level=%d fac=%s msg=\"%s\"\n", level, fac, buf);
}

int rs_mockbroker_new(rs_mockbroker_t **out, const rs_mockbroker_opts_t *opts, char *errstr,
                      size_t errlen)
{
    rs_mockbroker_t *mb = NULL;
    rd_kafka_conf_t *conf = NULL;
    char kerr[512];
    int brokers = RS_MOCKBROKER_DEFAULT_BROKERS;
    int partitions = RS_MOCKBROKER_DEFAULT_PARTITIONS;
    int replication, i, rc = -1;

    if (out == NULL) {
        rs_errorf(errstr, errlen, "mockbroker: out must not be NULL");
        goto done;
    }
    *out = NULL;
    if (opts != NULL && opts->brokers != 0)
        brokers = opts->brokers;
    if (opts != NULL && opts->partitions != 0)
        partitions = opts->partitions;
    if (brokers < 1 || brokers > RS_MOCKBROKER_MAX_BROKERS) {
        rs_errorf(errstr, errlen, "mockbroker: brokers: %d is out of range 1..%d", brokers,
                  RS_MOCKBROKER_MAX_BROKERS);
        goto done;
    }
    if (partitions < 1 || partitions > RS_MOCKBROKER_MAX_PARTITIONS) {
        rs_errorf(errstr, errlen, "mockbroker: partitions: %d is out of range 1..%d",
                  partitions, RS_MOCKBROKER_MAX_PARTITIONS);
        goto done;
    }
    replication = brokers < 3 ? brokers : 3;

    mb = calloc(1, sizeof *mb);
    if (mb == NULL) {
        rs_errorf(errstr, errlen, "mockbroker: out of memory");
        goto done;
    }
    mb->brokers = brokers;
    mb->partitions = partitions;

    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "4", kerr, sizeof kerr) != RD_KAFKA_CONF_OK ||
        /* the mock's connections take this client's socket settings:
         * without it each response can wait ~40 ms (Nagle against the
         * clients' delayed ACKs), and every delivery round with it */
        rd_kafka_conf_set(conf, "socket.nagle.disable", "true", kerr, sizeof kerr) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "revstream-mockbroker", kerr, sizeof kerr) !=
            RD_KAFKA_CONF_OK) {
        rs_errorf(errstr, errlen, "mockbroker: host config: %s", kerr);
        goto done;
    }
    rd_kafka_conf_set_log_cb(conf, host_log);
    mb->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (mb->host == NULL) {
        rs_errorf(errstr, errlen, "mockbroker: cannot create the host handle: %s", kerr);
        goto done;
    }
    conf = NULL; /* owned by mb->host now */

    mb->cluster = rd_kafka_mock_cluster_new(mb->host, brokers);
    if (mb->cluster == NULL) {
        rs_errorf(errstr, errlen, "mockbroker: cannot start a mock cluster of %d broker(s)",
                  brokers);
        goto done;
    }
    for (i = 0; i < RS_MOCKBROKER_TOPIC_COUNT; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mb->cluster, rs_mockbroker_topics[i], partitions, replication);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rs_errorf(errstr, errlen, "mockbroker: cannot create topic %s: %s",
                      rs_mockbroker_topics[i], rd_kafka_err2str(err));
            goto done;
        }
    }
    *out = mb;
    mb = NULL;
    rc = 0;
done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    rs_mockbroker_destroy(mb);
    return rc;
}

const char *rs_mockbroker_bootstraps(const rs_mockbroker_t *mb)
{
    return rd_kafka_mock_cluster_bootstraps(mb->cluster);
}

rd_kafka_mock_cluster_t *rs_mockbroker_cluster(rs_mockbroker_t *mb)
{
    return mb->cluster;
}

int rs_mockbroker_brokers(const rs_mockbroker_t *mb)
{
    return mb->brokers;
}

int rs_mockbroker_partitions(const rs_mockbroker_t *mb)
{
    return mb->partitions;
}

void rs_mockbroker_destroy(rs_mockbroker_t *mb)
{
    if (mb == NULL)
        return;
    if (mb->cluster != NULL)
        rd_kafka_mock_cluster_destroy(mb->cluster);
    if (mb->host != NULL)
        rd_kafka_destroy(mb->host);
    free(mb);
}
