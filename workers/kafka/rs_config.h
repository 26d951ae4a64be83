/*
 * rs_config — the worker's configuration: a key=value properties file, each
 * key overridable by an environment variable.
 *
 * Sources, lowest precedence first:
 *   1. built-in defaults (see docs/worker.md for the table of keys);
 *   2. the properties file: one `key=value` per line, spaces around key and
 *      value trimmed, `#` starts a comment line, blank lines skipped; a key
 *      given twice in the file is an error;
 *   3. environment variables REVSTREAM_<KEY>: the key upper-cased with `.`
 *      and `-` turned into `_` (REVSTREAM_STATE_DIR -> state.dir). For
 *      `kafka.*` keys the `_` map back to `.` (REVSTREAM_KAFKA_SASL_PASSWORD
 *      -> kafka.sasl.password; a librdkafka property spelt with `_`, such as
 *      log_level, is found too).
 *
 * Invariants:
 *   - A loaded config is complete and valid: every key is known, every value
 *     parsed and range-checked, required keys (kafka.bootstrap.servers,
 *     state.dir) are present, the seven topics are distinct legal Kafka topic
 *     names, kafka.* properties are known to librdkafka and accepted by it,
 *     and properties the worker must control itself (enable.auto.commit,
 *     transactional.id, ...) are refused. Otherwise loading fails with one
 *     message that names the key and where it came from ("file F line N" or
 *     "env REVSTREAM_X"); an unknown REVSTREAM_* variable is an error naming
 *     the variable, except a Kubernetes service link (a Service named
 *     revstream or revstream-<x> puts REVSTREAM_SERVICE_HOST,
 *     REVSTREAM_PORT_9090_TCP, ... in every pod of its namespace): a variable
 *     whose name and value both have the form Kubernetes gives them is
 *     skipped and listed by rs_config_ignored_env(), for the caller to log.
 *   - Secrets never leave this module in clear text through rs_config_describe()
 *     or an error message: a key is secret when it contains "password",
 *     "secret", "sasl.jaas", "ssl.key", "ssl_key", "oauthbearer.config",
 *     "private.key", "token", "user.info" or "credentials"
 *     (rs_config_is_secret(); this covers every property librdkafka flags
 *     as sensitive); its value renders as "***". A URL's userinfo (up to
 *     the last '@', so a password holding '/', '#', '?' or '@' is covered)
 *     renders as ***@.
 *
 * Ownership: rs_config_t owns every string it points to; they stay valid
 * until rs_config_destroy() (which accepts NULL). The struct is read-only for
 * callers. Not thread-safe to load; a loaded config may be read from any
 * thread.
 */
#ifndef RS_CONFIG_H
#define RS_CONFIG_H

#include <stddef.h>

typedef enum rs_config_format {
    RS_CONFIG_FORMAT_AVRO = 0, /* Confluent wire format (magic, schema id, Avro body) */
    RS_CONFIG_FORMAT_JSON,     /* one JSON object per record */
} rs_config_format_t;

typedef enum rs_config_guarantee {
    RS_CONFIG_AT_LEAST_ONCE = 0,
    RS_CONFIG_EXACTLY_ONCE, /* also wrap each batch's output in a Kafka transaction */
} rs_config_guarantee_t;

/* The topics, inputs first (their index is the rs_plan_item_t topic). */
typedef enum rs_config_topic {
    RS_CONFIG_TOPIC_CONTRACTS = 0,
    RS_CONFIG_TOPIC_INVOICES,
    RS_CONFIG_TOPIC_PAYMENTS,
    RS_CONFIG_TOPIC_USAGE,
    RS_CONFIG_TOPIC_JOURNAL,
    RS_CONFIG_TOPIC_BALANCES,
    RS_CONFIG_TOPIC_DLQ,
    RS_CONFIG_TOPIC__COUNT
} rs_config_topic_t;
#define RS_CONFIG_INPUT_TOPICS 4

/* One librdkafka property (the key without "kafka."). */
typedef struct rs_config_kafka {
    const char *key;
    const char *value;
} rs_config_kafka_t;

typedef struct rs_config_priv rs_config_priv_t;

typedef struct rs_config {
    const char *group_id;
    const char *group_instance_id; /* NULL when not set */
    const char *topics[RS_CONFIG_TOPIC__COUNT];
    /* The state changelog: compacted, partition N holds input partition N's
     * state (rs_changelog.h). Distinct from the seven topics above. */
    const char *changelog_topic;
    rs_config_format_t input_format, output_format;
    const char *schema_dir;               /* NULL when schema_registry_url is set */
    const char *schema_registry_url;      /* NULL: use schema_dir */
    const char *schema_registry_username; /* NULL when not set */
    const char *schema_registry_password; /* NULL when not set */
    const char *state_dir;
    int state_sync; /* 1: fsync every commit */
    long
        state_cache_mb; /* contracts kept in memory, MiB per worker (0: none between batches) */
    long state_close_chunk; /* contracts per commit of a streaming month-end close */
    long state_memtable_mb; /* RocksDB memtable (write buffer) size; two live at most */
    long worker_threads;    /* threads applying a batch's sub-batches (partitions) at once */
    long batch_max_records;
    long batch_max_ms;
    long batch_max_staged_kib;  /* a batch's staged state write, KiB, as estimated from the
                                   last batch's bytes per record (0: no bound) */
    long input_idle_ms;         /* wait this long for a lagging input topic */
    long input_buffer_records;  /* records queued ahead of batches, all partitions (a
                                   topic-partition over its share is paused) */
    long revoked_grace_ms;      /* drop a revoked partition's local state after this */
    long seen_retention_months; /* 0: applied event ids kept for good; else pruned this
                                   many months after their period closed */
    rs_config_guarantee_t guarantee;
    const char *policy_file; /* NULL when not set */
    int metrics_port;        /* 0: no metrics server */
    const char *metrics_bind;
    int exit_when_idle;
    long health_stall_ms;   /* /healthz fails when the loop made no progress this long; 0 off */
    long health_lost_ms;    /* /readyz fails after this long without assignment or cluster */
    const char *log_format; /* "auto", "json" or "text" */
    size_t n_kafka;
    const rs_config_kafka_t *kafka; /* in key order */
    rs_config_priv_t *priv;
} rs_config_t;

/* Load the config: defaults, then the file at `path` (NULL: none), then the
 * REVSTREAM_* variables of `envp` (a NULL-terminated "NAME=value" array, as
 * `environ`; NULL: none). Returns 0 with *out set, or -1 with errstr set. */
int rs_config_load(rs_config_t **out, const char *path, char *const *envp, char *errstr,
                   size_t errlen);

/* The same, with the file's text given (`name` is used in messages). */
int rs_config_load_text(rs_config_t **out, const char *text, const char *name,
                        char *const *envp, char *errstr, size_t errlen);

void rs_config_destroy(rs_config_t *c); /* accepts NULL */

/* The effective value of `key` ("state.dir", "kafka.acks"), or NULL when it
 * is not set. Secrets in clear: for the program, never for logs. */
const char *rs_config_get(const rs_config_t *c, const char *key);

/* Where the value of `key` came from: "default", "file F line N" or
 * "env REVSTREAM_X"; NULL when the key is not set. */
const char *rs_config_origin(const rs_config_t *c, const char *key);

/* 1 if values of `key` must never be printed. */
int rs_config_is_secret(const char *key);

/* The effective config on one line, "key=value key=value ...", keys sorted,
 * values quoted when they hold a space, '"' or '\\', secrets as ***.
 * malloc'd (free() it); NULL on out-of-memory. */
char *rs_config_describe(const rs_config_t *c);

/* 1 if the environment variable `name` with `value` is a Kubernetes service
 * link (REVSTREAM_SERVICE_HOST=10.0.0.7, REVSTREAM_SERVICE_PORT[_<NAME>]=9090,
 * REVSTREAM_PORT=tcp://10.0.0.7:9090, REVSTREAM_PORT_9090_TCP=tcp://...,
 * REVSTREAM_PORT_9090_TCP_PROTO=tcp, _PORT=9090, _ADDR=10.0.0.7, and the same
 * after REVSTREAM_<X>_ for a Service named revstream-<x>): name and value
 * must both have Kubernetes' form, so no value a real key accepts is
 * ever taken for one. */
int rs_config_is_service_link(const char *name, const char *value);

/* The i-th variable the load skipped as a service link (in environment
 * order), or NULL when i is past the last. Names only: log them, with a note
 * that they are not settings. Valid until rs_config_destroy(). */
const char *rs_config_ignored_env(const rs_config_t *c, size_t i);

/* The environment variable that overrides `key` ("kafka.sasl.password" ->
 * "REVSTREAM_KAFKA_SASL_PASSWORD") into buf. Returns buf. */
char *rs_config_env_name(const char *key, char *buf, size_t buflen);

#endif
