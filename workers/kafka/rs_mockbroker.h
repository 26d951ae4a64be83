/*
 * rs_mockbroker — an embedded Kafka-protocol cluster (librdkafka's mock
 * cluster) with revstream's topics already created, for tests, the demo and
 * `revstream broker`.
 *
 * Invariants:
 *   - After rs_mockbroker_new() returns 0, every topic of
 *     rs_mockbroker_topics exists with opts->partitions partitions and
 *     replication min(3, brokers), and the cluster listens on 127.0.0.1
 *     (rs_mockbroker_bootstraps()). Other processes may connect to it.
 *   - The cluster keeps everything in memory; it is gone after destroy.
 *   - Its transactions are not real (see platform.md): nothing may rely on
 *     them for exactly-once.
 *
 * Ownership: the handle owns the cluster and the host rd_kafka_t it needs
 * (a producer handle that logs warnings and worse as structured lines on
 * stderr). The bootstrap string and the cluster pointer belong to the
 * handle and are valid until rs_mockbroker_destroy().
 *
 * Thread safety: create and destroy from one thread. The cluster pointer
 * may be used for fault injection (rd_kafka_mock_*) from any thread, which
 * librdkafka allows.
 */
#ifndef RS_MOCKBROKER_H
#define RS_MOCKBROKER_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* The topics created: inputs, then outputs, then the worker's changelog
 * (created here so that it has the inputs' partition count: the mock would
 * auto-create it with its default count on first use). */
#define RS_MOCKBROKER_TOPIC_COUNT 8
extern const char *const rs_mockbroker_topics[RS_MOCKBROKER_TOPIC_COUNT];

#define RS_MOCKBROKER_DEFAULT_BROKERS 1
#define RS_MOCKBROKER_DEFAULT_PARTITIONS 4
#define RS_MOCKBROKER_MAX_BROKERS 16
#define RS_MOCKBROKER_MAX_PARTITIONS 1024

typedef struct rs_mockbroker rs_mockbroker_t;

typedef struct rs_mockbroker_opts {
    int brokers;    /* 0 means RS_MOCKBROKER_DEFAULT_BROKERS */
    int partitions; /* per topic; 0 means RS_MOCKBROKER_DEFAULT_PARTITIONS */
} rs_mockbroker_opts_t;

/* Start a cluster. opts may be NULL (all defaults). Returns 0 with *out set,
 * or -1 with errstr set (bad option, librdkafka failure). */
int rs_mockbroker_new(rs_mockbroker_t **out, const rs_mockbroker_opts_t *opts, char *errstr,
                      size_t errlen);

/* "127.0.0.1:port[,127.0.0.1:port...]" for bootstrap.servers. */
const char *rs_mockbroker_bootstraps(const rs_mockbroker_t *mb);

/* The cluster, for fault injection (rd_kafka_mock_broker_set_down(), ...). */
rd_kafka_mock_cluster_t *rs_mockbroker_cluster(rs_mockbroker_t *mb);

/* Number of brokers / partitions per topic actually used. */
int rs_mockbroker_brokers(const rs_mockbroker_t *mb);
int rs_mockbroker_partitions(const rs_mockbroker_t *mb);

/* Stop the cluster and free everything. Accepts NULL. */
void rs_mockbroker_destroy(rs_mockbroker_t *mb);

#endif
