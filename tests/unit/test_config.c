/*
 * test_config — the worker's configuration (workers/lib/rs_config.h):
 * defaults, the properties file, REVSTREAM_* overrides (kafka.* keys
 * included), errors that name the key and its source, and secrets masked in
 * the log rendering.
 *
 * Environments are passed as explicit arrays, never the process's own, so
 * the tests do not depend on the machine. File tests write into a mkdtemp
 * directory removed at the end of each test.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_config.h"
#include "rs_kafka_client.h"

#define MIN_FILE "kafka.bootstrap.servers=127.0.0.1:9092\nstate.dir=/var/lib/revstream\n"

static rs_config_t *load_ok(const char *text, char *const *envp)
{
    rs_config_t *c = NULL;
    char err[1024] = "";
    cr_assert_eq(rs_config_load_text(&c, text, "test.properties", envp, err, sizeof err), 0,
                 "load failed: %s", err);
    cr_assert_not_null(c);
    return c;
}

/* Load must fail; returns the message (static buffer). */
static const char *load_err(const char *text, char *const *envp)
{
    static char err[1024];
    rs_config_t *c = (rs_config_t *)1;
    err[0] = '\0';
    cr_assert_eq(rs_config_load_text(&c, text, "test.properties", envp, err, sizeof err), -1,
                 "load of \"%s\" should fail", text);
    cr_assert_null(c);
    cr_assert_neq(err[0], '\0');
    return err;
}

#define ASSERT_HAS(hay, needle)                                                                \
    cr_assert_not_null(strstr((hay), (needle)), "expected \"%s\" in: %s", (needle), (hay))

Test(config, defaults)
{
    rs_config_t *c = load_ok(MIN_FILE, NULL);

    cr_assert_str_eq(c->group_id, "revstream");
    cr_assert_null(c->group_instance_id);
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_CONTRACTS], "contracts");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_INVOICES], "invoices");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_PAYMENTS], "payments");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_USAGE], "usage");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_JOURNAL], "revenue.journal");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_BALANCES], "revenue.deferred-balances");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_DLQ], "revenue.dlq");
    cr_assert_eq(c->input_format, RS_CONFIG_FORMAT_AVRO);
    cr_assert_eq(c->output_format, RS_CONFIG_FORMAT_AVRO);
    cr_assert_str_eq(c->schema_dir, RS_SCHEMA_DIR);
    cr_assert_null(c->schema_registry_url);
    cr_assert_str_eq(c->state_dir, "/var/lib/revstream");
    cr_assert_eq(c->state_sync, 1);
    cr_assert_str_eq(c->changelog_topic, "revenue.state-changelog");
    cr_assert_eq(c->revoked_grace_ms, 600000);
    cr_assert_eq(c->state_cache_mb, 96);
    cr_assert_eq(c->state_close_chunk, 10000);
    cr_assert_eq(c->batch_max_records, 100000);
    cr_assert_eq(c->batch_max_ms, 100);
    cr_assert_eq(c->input_buffer_records, 500000);
    cr_assert_eq(c->batch_max_staged_kib, 8192);
    cr_assert_eq(c->state_memtable_mb, 32);
    cr_assert_eq(c->guarantee, RS_CONFIG_AT_LEAST_ONCE);
    cr_assert_null(c->policy_file);
    cr_assert_eq(c->metrics_port, 0);
    cr_assert_str_eq(c->metrics_bind, "127.0.0.1");
    cr_assert_eq(c->exit_when_idle, 0);
    cr_assert_eq(c->n_kafka, 1);
    cr_assert_str_eq(c->kafka[0].key, "bootstrap.servers");
    cr_assert_str_eq(c->kafka[0].value, "127.0.0.1:9092");
    cr_assert_str_eq(rs_config_origin(c, "group.id"), "default");
    cr_assert_str_eq(rs_config_origin(c, "state.dir"), "file test.properties line 2");
    cr_assert_null(rs_config_origin(c, "policy.file"));
    rs_config_destroy(c);
    rs_config_destroy(NULL);
}

Test(config, file_values_comments_and_spaces)
{
    const char *text = "# a comment\n"
                       "   # an indented comment\n"
                       "\n"
                       "kafka.bootstrap.servers = broker-1:9092,broker-2:9092 \r\n"
                       "state.dir=/data/state\n"
                       "group.id =billing\n"
                       "group.instance.id= worker-0\n"
                       "topics.journal=fin.journal\n"
                       "input.format=json\n"
                       "output.format=json\n"
                       "state.sync=false\n"
                       "batch.max.records=500\n"
                       "batch.max.ms=250\n"
                       "input.buffer.records=20000\n"
                       "batch.max.staged.kib=0\n"
                       "state.memtable.mb=8\n"
                       "processing.guarantee=exactly_once\n"
                       "policy.file=/etc/revstream/policy.properties\n"
                       "metrics.port=9464\n"
                       "metrics.bind=::1\n"
                       "exit.when.idle=true\n"
                       "kafka.session.timeout.ms=6000\n"
                       "kafka.client.id=rs=worker\n";
    rs_config_t *c = load_ok(text, NULL);

    cr_assert_str_eq(rs_config_get(c, "kafka.bootstrap.servers"),
                     "broker-1:9092,broker-2:9092");
    cr_assert_str_eq(c->state_dir, "/data/state");
    cr_assert_str_eq(c->group_id, "billing");
    cr_assert_str_eq(c->group_instance_id, "worker-0");
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_JOURNAL], "fin.journal");
    cr_assert_eq(c->input_format, RS_CONFIG_FORMAT_JSON);
    cr_assert_eq(c->output_format, RS_CONFIG_FORMAT_JSON);
    cr_assert_eq(c->state_sync, 0);
    cr_assert_eq(c->batch_max_records, 500);
    cr_assert_eq(c->batch_max_ms, 250);
    cr_assert_eq(c->input_buffer_records, 20000);
    cr_assert_eq(c->batch_max_staged_kib, 0);
    cr_assert_eq(c->state_memtable_mb, 8);
    cr_assert_eq(c->guarantee, RS_CONFIG_EXACTLY_ONCE);
    cr_assert_str_eq(c->policy_file, "/etc/revstream/policy.properties");
    cr_assert_eq(c->metrics_port, 9464);
    cr_assert_str_eq(c->metrics_bind, "::1");
    cr_assert_eq(c->exit_when_idle, 1);
    /* kafka.* in key order; the value keeps its '=' */
    cr_assert_eq(c->n_kafka, 3);
    cr_assert_str_eq(c->kafka[0].key, "bootstrap.servers");
    cr_assert_str_eq(c->kafka[1].key, "client.id");
    cr_assert_str_eq(c->kafka[1].value, "rs=worker");
    cr_assert_str_eq(c->kafka[2].key, "session.timeout.ms");
    cr_assert_str_eq(c->kafka[2].value, "6000");
    cr_assert_str_eq(rs_config_origin(c, "group.id"), "file test.properties line 6");
    rs_config_destroy(c);
}

Test(config, env_overrides_file)
{
    char *env[] = {
        "PATH=/usr/bin",
        "REVSTREAM_STATE_DIR=/from/env",
        "REVSTREAM_BATCH_MAX_RECORDS=42",
        "REVSTREAM_TOPICS_DLQ=fin.dead",
        "REVSTREAM_EXIT_WHEN_IDLE=true",
        "REVSTREAM_KAFKA_SASL_PASSWORD=s3cret-pw",
        "REVSTREAM_KAFKA_SECURITY_PROTOCOL=sasl_ssl",
        "REVSTREAM_KAFKA_LOG_LEVEL=3",
        "REVSTREAM_SCHEMA_REGISTRY_URL=https://sr.example.com",
        "REVSTREAM_SCHEMA_REGISTRY_PASSWORD=reg-pw",
        "OTHER_STATE_DIR=/ignored",
        NULL,
    };
    rs_config_t *c = load_ok(MIN_FILE "batch.max.records=7\n", env);

    cr_assert_str_eq(c->state_dir, "/from/env");
    cr_assert_str_eq(rs_config_origin(c, "state.dir"), "env REVSTREAM_STATE_DIR");
    cr_assert_eq(c->batch_max_records, 42);
    cr_assert_str_eq(c->topics[RS_CONFIG_TOPIC_DLQ], "fin.dead");
    cr_assert_eq(c->exit_when_idle, 1);
    /* kafka.*: '_' back to '.', and log_level keeps its '_' */
    cr_assert_str_eq(rs_config_get(c, "kafka.sasl.password"), "s3cret-pw");
    cr_assert_str_eq(rs_config_origin(c, "kafka.sasl.password"),
                     "env REVSTREAM_KAFKA_SASL_PASSWORD");
    cr_assert_str_eq(rs_config_get(c, "kafka.security.protocol"), "sasl_ssl");
    cr_assert_str_eq(rs_config_get(c, "kafka.log_level"), "3");
    /* the registry replaces the default local schema dir */
    cr_assert_str_eq(c->schema_registry_url, "https://sr.example.com");
    cr_assert_null(c->schema_dir);
    cr_assert_str_eq(c->schema_registry_password, "reg-pw");
    rs_config_destroy(c);
}

Test(config, env_alone_is_enough)
{
    char *env[] = {"REVSTREAM_KAFKA_BOOTSTRAP_SERVERS=k:9092", "REVSTREAM_STATE_DIR=/s", NULL};
    rs_config_t *c = load_ok(NULL, env);
    cr_assert_str_eq(rs_config_get(c, "kafka.bootstrap.servers"), "k:9092");
    cr_assert_str_eq(c->state_dir, "/s");
    rs_config_destroy(c);
}

Test(config, env_name)
{
    char buf[128];
    cr_assert_str_eq(rs_config_env_name("kafka.sasl.password", buf, sizeof buf),
                     "REVSTREAM_KAFKA_SASL_PASSWORD");
    cr_assert_str_eq(rs_config_env_name("schema.registry.url", buf, sizeof buf),
                     "REVSTREAM_SCHEMA_REGISTRY_URL");
    cr_assert_str_eq(rs_config_env_name("topics.dlq-x", buf, sizeof buf),
                     "REVSTREAM_TOPICS_DLQ_X");
}

Test(config, unknown_keys_are_named)
{
    const char *e = load_err(MIN_FILE "batch.max.recrods=5\n", NULL);
    ASSERT_HAS(e, "unknown key \"batch.max.recrods\"");
    ASSERT_HAS(e, "file test.properties line 3");

    char *env[] = {"REVSTREAM_STATE_DIRECTORY=/x", NULL};
    e = load_err(MIN_FILE, env);
    ASSERT_HAS(e, "REVSTREAM_STATE_DIRECTORY");
    ASSERT_HAS(e, "unknown key");

    /* a kafka.* key librdkafka does not know */
    e = load_err(MIN_FILE "kafka.bootstrap.server=x:1\n", NULL);
    ASSERT_HAS(e, "unknown key \"kafka.bootstrap.server\"");
    char *env2[] = {"REVSTREAM_KAFKA_NO_SUCH_THING=1", NULL};
    e = load_err(MIN_FILE, env2);
    ASSERT_HAS(e, "kafka.no.such.thing");
    ASSERT_HAS(e, "env REVSTREAM_KAFKA_NO_SUCH_THING");
}

/* What Kubernetes puts in a pod for Services named revstream (ports 9090
 * "metrics" TCP and 5353 UDP), revstream-metrics and revstream-kafka, with
 * an IPv6 ClusterIP for one. */
static char *k8s_links[] = {
    "REVSTREAM_SERVICE_HOST=10.96.12.7",
    "REVSTREAM_SERVICE_PORT=9090",
    "REVSTREAM_SERVICE_PORT_METRICS=9090",
    "REVSTREAM_SERVICE_PORT_DNS_UDP=5353",
    "REVSTREAM_PORT=tcp://10.96.12.7:9090",
    "REVSTREAM_PORT_9090_TCP=tcp://10.96.12.7:9090",
    "REVSTREAM_PORT_9090_TCP_PROTO=tcp",
    "REVSTREAM_PORT_9090_TCP_PORT=9090",
    "REVSTREAM_PORT_9090_TCP_ADDR=10.96.12.7",
    "REVSTREAM_PORT_5353_UDP=udp://10.96.12.7:5353",
    "REVSTREAM_PORT_5353_UDP_PROTO=udp",
    "REVSTREAM_METRICS_SERVICE_HOST=fd00:10:96::3",
    "REVSTREAM_METRICS_PORT=tcp://[fd00:10:96::3]:9090",
    "REVSTREAM_METRICS_PORT_9090_TCP=tcp://[fd00:10:96::3]:9090",
    "REVSTREAM_METRICS_PORT_9090_TCP_ADDR=fd00:10:96::3",
    "REVSTREAM_KAFKA_SERVICE_HOST=10.96.0.9",
    "REVSTREAM_KAFKA_PORT_9092_SCTP_PORT=9092",
    NULL,
};

Test(config, service_link_patterns)
{
    for (int i = 0; k8s_links[i] != NULL; i++) {
        char name[128];
        const char *eq = strchr(k8s_links[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - k8s_links[i]), k8s_links[i]);
        cr_assert(rs_config_is_service_link(name, eq + 1), "%s is a service link",
                  k8s_links[i]);
    }
    /* a link's name with a value Kubernetes never gives, or a real key */
    static const char *const not_links[][2] = {
        {"REVSTREAM_METRICS_PORT", "9090"}, /* metrics.port */
        {"REVSTREAM_SERVICE_HOST", "revstream.default.svc"},
        {"REVSTREAM_SERVICE_PORT", "0"},
        {"REVSTREAM_SERVICE_PORT", "65536"},
        {"REVSTREAM_SERVICE_PORT", "09090"},
        {"REVSTREAM_SERVICE_PORT_metrics", "9090"},
        {"REVSTREAM_PORT", "10.96.12.7:9090"},
        {"REVSTREAM_PORT", "http://10.96.12.7:9090"},
        {"REVSTREAM_PORT", "tcp://kafka:9090"},
        {"REVSTREAM_PORT_9090_TCP", "tcp://10.96.12.7:9091"},
        {"REVSTREAM_PORT_9090_TCP", "udp://10.96.12.7:9090"},
        {"REVSTREAM_PORT_9090_TCP_PROTO", "TCP"},
        {"REVSTREAM_PORT_9090_TCP_PORT", "9091"},
        {"REVSTREAM_PORT_9090_TCP_ADDR", "localhost"},
        {"REVSTREAM_PORT_9090_HTTP", "tcp://10.96.12.7:9090"},
        {"REVSTREAM_PORT_9090_TCP_HOST", "10.96.12.7"},
        {"REVSTREAM_PORT_X_TCP", "tcp://10.96.12.7:9090"},
        {"REVSTREAM_SERVICE_HOSTS", "10.96.12.7"},
        {"REVSTREAM_METRIC_PORT", "9090"},
        {"REVSTREAM_metrics_SERVICE_HOST", "10.96.12.7"},
        {"REVSTREAM__SERVICE_HOST", "10.96.12.7"},
        {"OTHER_SERVICE_HOST", "10.96.12.7"},
        {"REVSTREAM_STATE_DIR", "/var/lib/revstream"},
    };
    for (size_t i = 0; i < sizeof not_links / sizeof not_links[0]; i++)
        cr_assert_not(rs_config_is_service_link(not_links[i][0], not_links[i][1]),
                      "%s=%s is not a service link", not_links[i][0], not_links[i][1]);
}

Test(config, service_links_are_skipped_and_named)
{
    char *env[32];
    size_t n = 0;

    for (int i = 0; k8s_links[i] != NULL; i++)
        env[n++] = k8s_links[i];
    env[n++] = "REVSTREAM_BATCH_MAX_MS=250"; /* real settings still apply */
    env[n] = NULL;
    rs_config_t *c = load_ok(MIN_FILE "metrics.port=9100\n", env);
    cr_assert_eq(c->batch_max_ms, 250);
    /* REVSTREAM_METRICS_PORT=tcp://... is revstream-metrics' link, not the key */
    cr_assert_eq(c->metrics_port, 9100);
    cr_assert_str_eq(rs_config_origin(c, "metrics.port"), "file test.properties line 3");
    for (size_t i = 0; k8s_links[i] != NULL; i++) {
        const char *name = rs_config_ignored_env(c, i);
        cr_assert_not_null(name, "variable %zu not listed", i);
        cr_assert_eq(strncmp(k8s_links[i], name, strlen(name)), 0);
        cr_assert_eq(k8s_links[i][strlen(name)], '=');
    }
    cr_assert_null(rs_config_ignored_env(c, n - 1));
    /* no link value in the effective config */
    char *desc = rs_config_describe(c);
    cr_assert_null(strstr(desc, "10.96."), "%s", desc);
    free(desc);
    rs_config_destroy(c);

    /* nothing skipped: no list */
    c = load_ok(MIN_FILE, NULL);
    cr_assert_null(rs_config_ignored_env(c, 0));
    rs_config_destroy(c);
    cr_assert_null(rs_config_ignored_env(NULL, 0));
}

Test(config, misspelt_keys_next_to_service_links_are_errors)
{
    static const char *const bad[][2] = {
        {"REVSTREAM_METRIC_PORT=9090", "REVSTREAM_METRIC_PORT"},
        {"REVSTREAM_METRICS_PORT=9o90", "metrics.port"},
        {"REVSTREAM_SERVICE_HOSTS=10.96.12.7", "REVSTREAM_SERVICE_HOSTS"},
        {"REVSTREAM_PORT_9090_TCP=tcp://10.96.12.7:9091", "REVSTREAM_PORT_9090_TCP"},
        {"REVSTREAM_SERVICE_HOST=revstream", "REVSTREAM_SERVICE_HOST"},
        {"REVSTREAM_KAFKA_SERVICE_HOST=kafka", "kafka.service.host"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *env[] = {"REVSTREAM_SERVICE_HOST=10.96.12.7", (char *)bad[i][0], NULL};
        const char *e = load_err(MIN_FILE, env);
        ASSERT_HAS(e, bad[i][1]);
    }
}

Test(config, invalid_values_are_named)
{
    struct {
        const char *line, *want1, *want2;
    } cases[] = {
        {"batch.max.records=0\n", "batch.max.records: \"0\" is not an integer in 1..1000000",
         "line 3"},
        {"batch.max.records=12abc\n", "batch.max.records: \"12abc\"", "line 3"},
        {"batch.max.ms=-5\n", "batch.max.ms: \"-5\" is not an integer", "line 3"},
        {"metrics.port=70000\n", "metrics.port: \"70000\" is not an integer in 0..65535",
         "line 3"},
        {"state.sync=yes\n", "state.sync: \"yes\" is not true or false", "line 3"},
        {"exit.when.idle=1\n", "exit.when.idle: \"1\" is not true or false", "line 3"},
        {"input.format=protobuf\n", "input.format: \"protobuf\" is not avro or json", "line 3"},
        {"processing.guarantee=exactly-once\n",
         "processing.guarantee: \"exactly-once\" is not at_least_once or exactly_once",
         "line 3"},
        {"topics.journal=bad topic!\n", "topics.journal: \"bad topic!\" is not a Kafka topic",
         "line 3"},
        {"metrics.bind=localhost\n", "metrics.bind: \"localhost\" is not a numeric IPv4",
         "line 3"},
        {"group.id=\n", "group.id: must not be empty", "line 3"},
        {"topics.dlq=usage\n", "topics.usage and topics.dlq: both name topic \"usage\"", ""},
        {"topics.changelog=revenue.journal\n",
         "topics.journal and topics.changelog: both name topic \"revenue.journal\"", ""},
        {"topics.changelog=bad topic!\n",
         "topics.changelog: \"bad topic!\" is not a Kafka topic", "line 3"},
        {"state.cache.mb=-1\n", "state.cache.mb: \"-1\" is not an integer in 0..1048576",
         "line 3"},
        {"batch.max.staged.kib=-1\n",
         "batch.max.staged.kib: \"-1\" is not an integer in 0..16777216", "line 3"},
        {"input.buffer.records=15\n",
         "input.buffer.records: \"15\" is not an integer in 16..10000000", "line 3"},
        {"state.memtable.mb=0\n", "state.memtable.mb: \"0\" is not an integer in 1..4096",
         "line 3"},
        {"state.close.chunk=0\n", "state.close.chunk: \"0\" is not an integer in 1..1000000",
         "line 3"},
        {"state.revoked.grace.ms=-1\n",
         "state.revoked.grace.ms: \"-1\" is not an integer in 0..86400000", "line 3"},
        {"kafka.enable.auto.commit=true\n",
         "kafka.enable.auto.commit: the worker sets this librdkafka property itself", "line 3"},
        {"kafka.transactional.id=x\n", "kafka.transactional.id: the worker sets", "line 3"},
        {"kafka.acks=1\n", "kafka.acks: the worker sets", "line 3"},
        {"kafka.session.timeout.ms=soon\n", "kafka.session.timeout.ms:", "line 3"},
        {"schema.registry.url=ftp://sr\n", "schema.registry.url: not an http", "line 3"},
        {"schema.registry.username=bob\n",
         "schema.registry.username: set without schema.registry.url", "line 3"},
        {"schema.dir=/s\nschema.registry.url=http://sr:8081\n",
         "schema.dir (file test.properties line 3) and schema.registry.url (file "
         "test.properties line 4) exclude each other",
         ""},
        {"no equals sign\n", "test.properties line 3: expected key=value", ""},
        {"=value\n", "line 3: empty key", ""},
        {"state.dir=/again\n",
         "line 3: state.dir: set twice (first in file test.properties "
         "line 2)",
         ""},
    };
    char text[512];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, MIN_FILE "%s", cases[i].line);
        const char *e = load_err(text, NULL);
        ASSERT_HAS(e, cases[i].want1);
        ASSERT_HAS(e, cases[i].want2);
    }

    /* An invalid value from the environment names the variable. */
    char *env[] = {"REVSTREAM_BATCH_MAX_MS=fast", NULL};
    const char *e = load_err(MIN_FILE, env);
    ASSERT_HAS(e, "batch.max.ms: \"fast\"");
    ASSERT_HAS(e, "(env REVSTREAM_BATCH_MAX_MS)");
}

Test(config, required_keys)
{
    const char *e = load_err("state.dir=/s\n", NULL);
    ASSERT_HAS(e, "kafka.bootstrap.servers: required");
    e = load_err("kafka.bootstrap.servers=k:1\n", NULL);
    ASSERT_HAS(e, "state.dir: required");
    char *env[] = {"REVSTREAM_STATE_DIR=", NULL};
    e = load_err(MIN_FILE, env); /* an empty override unsets it */
    ASSERT_HAS(e, "state.dir: required");
}

Test(config, secrets_never_rendered)
{
    char *env[] = {
        "REVSTREAM_KAFKA_SASL_PASSWORD=pw-from-env",
        "REVSTREAM_SCHEMA_REGISTRY_PASSWORD=reg-secret-1",
        NULL,
    };
    const char *text = MIN_FILE "kafka.sasl.username=alice\n"
                                "kafka.ssl.keystore.password=store-secret-2\n"
                                "kafka.ssl.key.password=keypw-3\n"
                                "kafka.sasl.jaas.config=jaas-4\n"
                                "schema.registry.url=https://bob:url-pw-5@sr.example.com/sr\n"
                                "schema.registry.username=bob\n";
    rs_config_t *c = NULL;
    char err[1024];

    /* sasl.jaas.config is a Java-only property: librdkafka refuses it, and
     * the error must not quote the secret either. */
    cr_assert_eq(rs_config_load_text(&c, text, "t", env, err, sizeof err), -1);
    ASSERT_HAS(err, "kafka.sasl.jaas.config");
    cr_assert_null(strstr(err, "jaas-4"), "%s", err);

    const char *text2 = MIN_FILE "kafka.sasl.username=alice\n"
                                 "kafka.ssl.keystore.password=store-secret-2\n"
                                 "kafka.ssl.key.password=keypw-3\n"
                                 "schema.registry.url=https://bob:url-pw-5@sr.example.com/sr\n"
                                 "schema.registry.username=bob\n"
                                 "topics.usage=metered usage\n";
    cr_assert_eq(rs_config_load_text(&c, text2, "t", env, err, sizeof err), -1);
    /* (a topic with a space is invalid; fix it and load) */
    const char *text3 = MIN_FILE "kafka.sasl.username=alice\n"
                                 "kafka.ssl.keystore.password=store-secret-2\n"
                                 "kafka.ssl.key.password=keypw-3\n"
                                 "schema.registry.url=https://bob:url-pw-5@sr.example.com/sr\n"
                                 "schema.registry.username=bob\n"
                                 "policy.file=/etc/my policy.properties\n";
    c = load_ok(text3, env);
    char *d = rs_config_describe(c);
    cr_assert_not_null(d);
    static const char *const secrets[] = {"pw-from-env", "reg-secret-1", "store-secret-2",
                                          "keypw-3", "url-pw-5"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        cr_assert_null(strstr(d, secrets[i]), "secret %s rendered: %s", secrets[i], d);
    ASSERT_HAS(d, "kafka.sasl.password=***");
    ASSERT_HAS(d, "schema.registry.password=***");
    ASSERT_HAS(d, "kafka.ssl.keystore.password=***");
    ASSERT_HAS(d, "kafka.ssl.key.password=***");
    ASSERT_HAS(d, "schema.registry.url=https://***@sr.example.com/sr");
    /* what is not secret is shown, quoted when it holds a space */
    ASSERT_HAS(d, "kafka.sasl.username=alice");
    ASSERT_HAS(d, "schema.registry.username=bob");
    ASSERT_HAS(d, "policy.file=\"/etc/my policy.properties\"");
    ASSERT_HAS(d, "state.dir=/var/lib/revstream");
    /* sorted, one line */
    cr_assert_eq(strncmp(d, "batch.max.ms=100 batch.max.records=100000 ", 42), 0, "%s", d);
    cr_assert_null(strchr(d, '\n'));
    free(d);
    /* the program still gets the clear value */
    cr_assert_str_eq(rs_config_get(c, "kafka.sasl.password"), "pw-from-env");
    rs_config_destroy(c);

    /* An invalid secret value is refused without being quoted. */
    const char *e = load_err(MIN_FILE "schema.registry.password=pw-9\n", NULL);
    cr_assert_null(strstr(e, "pw-9"), "%s", e);
    ASSERT_HAS(e, "schema.registry.password");
}

Test(config, is_secret)
{
    cr_assert(rs_config_is_secret("kafka.sasl.password"));
    cr_assert(rs_config_is_secret("schema.registry.password"));
    cr_assert(rs_config_is_secret("kafka.sasl.oauthbearer.client.secret"));
    cr_assert(rs_config_is_secret("kafka.sasl.jaas.config"));
    cr_assert(rs_config_is_secret("kafka.ssl.key.pem"));
    cr_assert(rs_config_is_secret("kafka.ssl.key.location"));
    cr_assert(rs_config_is_secret("KAFKA.SASL.PASSWORD"));
    cr_assert_not(rs_config_is_secret("kafka.sasl.username"));
    cr_assert_not(rs_config_is_secret("state.dir"));
    cr_assert_not(rs_config_is_secret(NULL));
}

Test(config, load_from_file)
{
    char dir[] = "/tmp/rs_config_test.XXXXXX", path[128];
    rs_config_t *c = NULL;
    char err[1024];

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/worker.properties", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(MIN_FILE "group.id=from-file\n", f);
    fclose(f);
    cr_assert_eq(rs_config_load(&c, path, NULL, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(c->group_id, "from-file");
    char want[256];
    snprintf(want, sizeof want, "file %s line 3", path);
    cr_assert_str_eq(rs_config_origin(c, "group.id"), want);
    rs_config_destroy(c);

    /* a missing file is an error naming it */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.properties", dir);
    cr_assert_eq(rs_config_load(&c, missing, NULL, err, sizeof err), -1);
    ASSERT_HAS(err, missing);
    cr_assert_null(c);

    /* a binary file is refused */
    f = fopen(path, "w");
    fwrite("a=b\0c", 1, 5, f);
    fclose(f);
    cr_assert_eq(rs_config_load(&c, path, NULL, err, sizeof err), -1);
    ASSERT_HAS(err, "NUL byte");

    unlink(path);
    rmdir(dir);
}

Test(config, health_and_log_settings)
{
    rs_config_t *c = load_ok(MIN_FILE, NULL);
    cr_assert_eq(c->health_stall_ms, 60000);
    cr_assert_eq(c->health_lost_ms, 30000);
    cr_assert_str_eq(c->log_format, "auto");
    rs_config_destroy(c);
    c = load_ok(MIN_FILE "health.stall.ms=0\nhealth.lost.ms=1500\nlog.format=text\n", NULL);
    cr_assert_eq(c->health_stall_ms, 0);
    cr_assert_eq(c->health_lost_ms, 1500);
    cr_assert_str_eq(c->log_format, "text");
    rs_config_destroy(c);
    cr_assert_not_null(strstr(load_err(MIN_FILE "log.format=yaml\n", NULL), "log.format"));
    cr_assert_not_null(
        strstr(load_err(MIN_FILE "health.stall.ms=-1\n", NULL), "health.stall.ms"));
}

/* Defect 5: kafka.sasl.oauthbearer.config (sensitive to librdkafka) was
 * rendered in clear in the `worker: config` line and `--check` (both print
 * rs_config_describe()), and a URL password holding an unencoded '/', '#'
 * or '?' was not masked. */
Test(defects, secrets_in_config_line)
{
    /* every property librdkafka flags as sensitive, and the registry's */
    static const char *const sensitive[] = {
        "kafka.ssl.key.password",
        "kafka.ssl.key.pem",
        "kafka.ssl_key",
        "kafka.ssl.keystore.password",
        "kafka.sasl.password",
        "kafka.sasl.oauthbearer.config",
        "kafka.sasl.oauthbearer.client.secret",
        "schema.registry.password",
    };
    for (size_t i = 0; i < sizeof sensitive / sizeof sensitive[0]; i++)
        cr_assert(rs_config_is_secret(sensitive[i]), "%s", sensitive[i]);
    cr_assert_not(rs_config_is_secret("kafka.ssl.certificate.pem"));
    cr_assert_not(rs_config_is_secret("kafka.sasl.oauthbearer.method"));

    static const struct {
        const char *url, *secret, *shown;
    } urls[] = {
        {"https://bob:pa/ss@sr.example.com/sr", "pa/ss", "https://***@sr.example.com/sr"},
        {"https://bob:pa#ss@sr.example.com", "pa#ss", "https://***@sr.example.com"},
        {"https://bob:pa?ss@sr.example.com/x", "pa?ss", "https://***@sr.example.com/x"},
        {"http://bob:p@ss@sr.example.com", "p@ss", "http://***@sr.example.com"},
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 MIN_FILE "kafka.sasl.mechanism=OAUTHBEARER\n"
                          "kafka.sasl.oauthbearer.config=principal=svc scope=s secret-oauth-7\n"
                          "schema.registry.url=%s\n",
                 urls[i].url);
        rs_config_t *c = load_ok(text, NULL);
        char *d = rs_config_describe(c);
        cr_assert_not_null(d);
        cr_assert_null(strstr(d, "secret-oauth-7"), "oauthbearer config rendered: %s", d);
        ASSERT_HAS(d, "kafka.sasl.oauthbearer.config=***");
        cr_assert_null(strstr(d, urls[i].secret), "URL password rendered: %s", d);
        char want[256];
        snprintf(want, sizeof want, "schema.registry.url=%s", urls[i].shown);
        ASSERT_HAS(d, want);
        free(d);
        rs_config_destroy(c);
    }
}

/* ------------------------------------------------------------------------ */
/* kafka.* properties by client role (rs_kafka_client.h)                    */
/* ------------------------------------------------------------------------ */

static int g_ignored_warnings; /* CONFWARN "... will be ignored by this ..." */

static void count_ignored(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this") != NULL)
        g_ignored_warnings++;
}

static const rs_config_kafka_t k_mixed[] = {{"bootstrap.servers", "127.0.0.1:1"},
                                            {"session.timeout.ms", "1000"},
                                            {"heartbeat.interval.ms", "200"},
                                            {"linger.ms", "7"},
                                            {"acks", "1"},
                                            {"client.id", "rs-test"}};

static rd_kafka_conf_t *mixed_conf(rs_kafka_role_t role)
{
    rs_kafka_client_opts_t o = {0};
    rd_kafka_conf_t *conf = NULL;
    const char *bad = NULL;
    char err[512];
    o.role = role;
    o.props = k_mixed;
    o.nprops = sizeof k_mixed / sizeof k_mixed[0];
    o.log_cb = count_ignored;
    cr_assert_eq(rs_kafka_conf_new(&conf, &o, &bad, err, sizeof err), 0, "%s: %s",
                 bad ? bad : "?", err);
    return conf;
}

static void expect_prop(rd_kafka_conf_t *conf, const char *key, const char *want)
{
    char v[128];
    size_t n = sizeof v;
    cr_assert_eq(rd_kafka_conf_get(conf, key, v, &n), RD_KAFKA_CONF_OK, "%s", key);
    cr_assert_str_eq(v, want, "%s", key);
}

/* Topic-level properties (acks) live in the default topic conf, which
 * exists only once one of them was set: want NULL means none was. */
static void expect_topic_prop(rd_kafka_conf_t *conf, const char *key, const char *want)
{
    char v[128];
    size_t n = sizeof v;
    rd_kafka_topic_conf_t *tc = rd_kafka_conf_get_default_topic_conf(conf);
    if (want == NULL) {
        cr_assert_null(tc, "%s: a topic property was set", key);
        return;
    }
    cr_assert_not_null(tc, "%s: no topic property was set", key);
    cr_assert_eq(rd_kafka_topic_conf_get(tc, key, v, &n), RD_KAFKA_CONF_OK, "%s", key);
    cr_assert_str_eq(v, want, "%s", key);
}

Test(kafka_role, scope_comes_from_librdkafkas_table)
{
    cr_assert_eq(rs_kafka_property_scope("session.timeout.ms"), 'C');
    cr_assert_eq(rs_kafka_property_scope("max.poll.interval.ms"), 'C');
    cr_assert_eq(rs_kafka_property_scope("linger.ms"), 'P');
    cr_assert_eq(rs_kafka_property_scope("acks"), 'P'); /* a topic-level one */
    cr_assert_eq(rs_kafka_property_scope("bootstrap.servers"), '*');
    cr_assert_eq(rs_kafka_property_scope("sasl.password"), '*');
    cr_assert_eq(rs_kafka_property_scope("no.such.property"), 0);
    cr_assert_eq(rs_kafka_property_scope(""), 0);
    cr_assert_eq(rs_kafka_property_scope(NULL), 0);
}

Test(kafka_role, each_client_gets_the_properties_of_its_role)
{
    rd_kafka_conf_t *p = mixed_conf(RS_KAFKA_ROLE_PRODUCER);
    rd_kafka_conf_t *c = mixed_conf(RS_KAFKA_ROLE_CONSUMER);
    rd_kafka_conf_t *a = mixed_conf(RS_KAFKA_ROLE_ANY);

    /* the producer: its own and the common ones, librdkafka's defaults for
     * the consumer's */
    expect_prop(p, "linger.ms", "7");
    expect_topic_prop(p, "acks", "1");
    expect_prop(p, "client.id", "rs-test");
    expect_prop(p, "session.timeout.ms", "45000");
    expect_prop(p, "heartbeat.interval.ms", "3000");
    /* the consumer: the other way round */
    expect_prop(c, "session.timeout.ms", "1000");
    expect_prop(c, "heartbeat.interval.ms", "200");
    expect_prop(c, "client.id", "rs-test");
    expect_prop(c, "linger.ms", "5");
    expect_topic_prop(c, "acks", NULL);
    /* no role: everything, as before roles */
    expect_prop(a, "session.timeout.ms", "1000");
    expect_prop(a, "linger.ms", "7");
    rd_kafka_conf_destroy(p);
    rd_kafka_conf_destroy(c);
    rd_kafka_conf_destroy(a);
}

/* What the roles are for: librdkafka warns at every start about each
 * property of the other role. A client made with its role logs none; the
 * same properties with no role make the producer warn (so the count can
 * fail). */
Test(kafka_role, no_ignored_property_warnings_at_start)
{
    char err[512];
    const struct {
        rs_kafka_role_t role;
        rd_kafka_type_t type;
        int warnings; /* of the mixed properties: 2 consumer-only for a
                         producer, 2 producer-only for a consumer */
    } cases[] = {{RS_KAFKA_ROLE_PRODUCER, RD_KAFKA_PRODUCER, 0},
                 {RS_KAFKA_ROLE_CONSUMER, RD_KAFKA_CONSUMER, 0},
                 {RS_KAFKA_ROLE_ANY, RD_KAFKA_PRODUCER, 2},
                 {RS_KAFKA_ROLE_ANY, RD_KAFKA_CONSUMER, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rd_kafka_conf_t *conf = mixed_conf(cases[i].role);
        g_ignored_warnings = 0;
        if (cases[i].type == RD_KAFKA_CONSUMER)
            cr_assert_eq(rd_kafka_conf_set(conf, "group.id", "g", err, sizeof err),
                         RD_KAFKA_CONF_OK);
        rd_kafka_t *rk = rd_kafka_new(cases[i].type, conf, err, sizeof err);
        cr_assert_not_null(rk, "%s", err);
        rd_kafka_destroy(rk);
        cr_assert_eq(g_ignored_warnings, cases[i].warnings,
                     "case %zu: %d CONFWARN lines about ignored properties, want %d", i,
                     g_ignored_warnings, cases[i].warnings);
    }
}

Test(kafka_role, an_unknown_property_is_refused_whatever_the_role)
{
    const rs_config_kafka_t props[] = {{"session.timeout.msx", "1000"}};
    const rs_kafka_role_t roles[] = {RS_KAFKA_ROLE_PRODUCER, RS_KAFKA_ROLE_CONSUMER,
                                     RS_KAFKA_ROLE_ANY};
    for (size_t i = 0; i < 3; i++) {
        rs_kafka_client_opts_t o = {0};
        rd_kafka_conf_t *conf = (rd_kafka_conf_t *)1;
        const char *bad = NULL;
        char err[512] = "";
        o.role = roles[i];
        o.props = props;
        o.nprops = 1;
        cr_assert_eq(rs_kafka_conf_new(&conf, &o, &bad, err, sizeof err), -1);
        cr_assert_null(conf);
        cr_assert_eq(bad, props[0].key, "the refused key is the caller's entry");
        cr_assert_neq(err[0], '\0');
    }
}
