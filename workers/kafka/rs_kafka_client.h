/*
 * rs_kafka_client — the one place a librdkafka client configuration is
 * built: the worker's producer, consumer and restore consumer, `revstream
 * produce` and `revstream report` all get their rd_kafka_conf_t here.
 *
 * A conf is, in this order:
 *   1. bootstrap.servers (when the caller names it apart from its
 *      properties; the worker's is one of its kafka.* properties);
 *   2. the caller's fixed settings (what its role needs: partitioner,
 *      group.id, enable.partition.eof, log_level, ...);
 *   3. the passthrough properties (the worker's kafka.* keys, produce's
 *      --kafka KEY=VALUE), last, so they may override the settings (the
 *      worker's config refuses the keys it sets itself, so for it nothing is
 *      overridden), less those of the other role (rs_kafka_role_t);
 *   4. the log and error callbacks and their opaque, when given (otherwise
 *      librdkafka's own logging).
 *
 * Invariants: a refused property leaves nothing behind (the half-built conf
 * is destroyed) and is reported as the key (pointing into the caller's
 * options, so a caller can tell which of its entries it was) plus
 * librdkafka's reason; no value is ever copied into a message here, since it
 * may be a secret. The caller words the error for its own output.
 *
 * Ownership: the conf returned belongs to the caller (rd_kafka_new() takes
 * it); the options are only read during the call.
 */
#ifndef RS_KAFKA_CLIENT_H
#define RS_KAFKA_CLIENT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "rs_config.h"

typedef void (*rs_kafka_log_fn)(const rd_kafka_t *rk, int level, const char *fac,
                                const char *buf);
typedef void (*rs_kafka_error_fn)(rd_kafka_t *rk, int err, const char *reason, void *opaque);

/* Whose conf it is, for the passthrough properties: a consumer is not given
 * librdkafka's producer-only properties nor a producer its consumer-only
 * ones (librdkafka would take them and log a CONFWARN "... will be ignored
 * by this producer instance" at every start). The scope is librdkafka's
 * own, from its property table (rd_kafka_conf_properties_show's C/P
 * column); a property it does not list is given to every client, so an
 * unknown key is still refused. */
typedef enum rs_kafka_role {
    RS_KAFKA_ROLE_ANY = 0, /* every passthrough property */
    RS_KAFKA_ROLE_CONSUMER,
    RS_KAFKA_ROLE_PRODUCER
} rs_kafka_role_t;

typedef struct rs_kafka_client_opts {
    rs_kafka_role_t role;              /* which passthrough properties apply */
    const char *bootstrap;             /* bootstrap.servers; NULL: among props */
    const rs_config_kafka_t *settings; /* up to {NULL, NULL}; may be NULL */
    const rs_config_kafka_t *props;    /* passthrough properties, set last */
    size_t nprops;
    rs_kafka_log_fn log_cb;     /* NULL: librdkafka's logger */
    rs_kafka_error_fn error_cb; /* NULL: none */
    void *opaque;               /* rd_kafka_conf_set_opaque() when not NULL */
} rs_kafka_client_opts_t;

/* Build a conf from opts. Returns 0 with *out set, or -1 with *out NULL,
 * errstr = librdkafka's reason and *bad_key (when bad_key is not NULL) = the
 * refused key as given in opts (NULL: out of memory). */
int rs_kafka_conf_new(rd_kafka_conf_t **out, const rs_kafka_client_opts_t *opts,
                      const char **bad_key, char *errstr, size_t errlen);

/* librdkafka's scope of property `name`: '*' (every client), 'C'
 * (consumers only), 'P' (producers only), or 0 when its table does not
 * list the name. Thread-safe; the table is read on the first call. */
char rs_kafka_property_scope(const char *name);

/* The partition count of `topic` as the cluster's metadata says it (asking
 * for that one topic: a broker with auto-creation on creates it). 0 when the
 * topic is missing or in error, -1 when the metadata request failed. */
int rs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms);

#endif
