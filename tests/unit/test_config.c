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
    cr_assert_eq(c->batch_max_records, 10000);
    cr_assert_eq(c->batch_max_ms, 100);
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
    cr_assert_eq(strncmp(d, "batch.max.ms=100 batch.max.records=10000 ", 41), 0, "%s", d);
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
