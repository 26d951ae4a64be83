/*
 * rs_config.c — load, merge and validate the worker's configuration (see
 * rs_config.h for the sources and their precedence).
 *
 * Invariants:
 *   - Every effective setting is one entry {key, value, origin} in
 *     priv->e; a key appears at most once (a later source replaces the
 *     value and origin of an earlier one). Keys with a default get an entry
 *     with origin "default" before the file is read.
 *   - Validation runs once, after all sources are merged, over the entries
 *     in key order, so the first error reported does not depend on the order
 *     of the file. Then the typed fields of rs_config_t are filled; they
 *     point into the entries (or at static strings), never elsewhere.
 *   - A REVSTREAM_* variable is a setting, a Kubernetes service link (name
 *     and value both in Kubernetes' form; skipped, its name kept in
 *     priv->ignored for the caller's log), or an error. The link test comes
 *     first, and no value a real key accepts has a link's form.
 *   - No message built here quotes the value of a secret key, and
 *     rs_config_describe() masks secrets and URL credentials.
 *
 * The file's text is split into key=value lines by rs_props (workers/base,
 * '#' comment lines only: a value such as a password may hold a '#');
 * rs_config_describe() builds its line in an rs_strbuf.
 *
 * Ownership: priv owns the entries and their strings and the kafka array;
 * rs_config_destroy() frees them all. A half-built config is freed through
 * the same function on every error path.
 */
#include "rs_config.h"
#include "rs_err.h"
#include "rs_paths.h"
#include "rs_props.h"
#include "rs_strbuf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV_PREFIX "REVSTREAM_"
#define KAFKA_PREFIX "kafka."
#define MAX_FILE_BYTES (4 * 1024 * 1024)
#define MAX_TOPIC_LEN 249
#define MAX_KEY_LEN 256 /* a file key must be shorter */

typedef struct entry {
    char *key;
    char *value;
    char *origin;
} entry_t;

struct rs_config_priv {
    entry_t *e;
    size_t n, cap;
    rs_config_kafka_t *kafka;
    char **ignored; /* names of the service-link variables skipped */
    size_t n_ignored;
};

typedef enum ktype { K_STR = 0, K_BOOL, K_INT, K_ENUM, K_TOPIC, K_ADDR } ktype_t;

typedef struct keyspec {
    const char *key;
    ktype_t type;
    const char *def; /* NULL: no default */
    long lo, hi;     /* K_INT range */
    const char *const *choices;
} keyspec_t;

static const char *const formats[] = {"avro", "json", NULL};
static const char *const guarantees[] = {"at_least_once", "exactly_once", NULL};
static const char *const log_formats[] = {"auto", "json", "text", NULL};

/* The keys outside kafka.*, sorted by key. */
static const keyspec_t specs[] = {
    {"batch.max.ms", K_INT, "100", 1, 3600000, NULL},
    {"input.idle.ms", K_INT, "500", 0, 3600000, NULL},
    {"batch.max.records", K_INT, "100000", 1, 1000000, NULL},
    {"batch.max.staged.kib", K_INT, "8192", 0, 16777216, NULL},
    {"exit.when.idle", K_BOOL, "false", 0, 0, NULL},
    {"group.id", K_STR, "revstream", 0, 0, NULL},
    {"group.instance.id", K_STR, NULL, 0, 0, NULL},
    {"health.lost.ms", K_INT, "30000", 0, 3600000, NULL},
    {"health.stall.ms", K_INT, "60000", 0, 3600000, NULL},
    {"input.buffer.records", K_INT, "500000", 16, 10000000, NULL},
    {"input.format", K_ENUM, "avro", 0, 0, formats},
    {"log.format", K_ENUM, "auto", 0, 0, log_formats},
    {"metrics.bind", K_ADDR, "127.0.0.1", 0, 0, NULL},
    {"metrics.port", K_INT, "0", 0, 65535, NULL},
    {"output.format", K_ENUM, "avro", 0, 0, formats},
    {"policy.file", K_STR, NULL, 0, 0, NULL},
    {"processing.guarantee", K_ENUM, "at_least_once", 0, 0, guarantees},
    {"schema.dir", K_STR, NULL, 0, 0, NULL}, /* default set after the merge */
    {"schema.registry.password", K_STR, NULL, 0, 0, NULL},
    {"schema.registry.url", K_STR, NULL, 0, 0, NULL},
    {"schema.registry.username", K_STR, NULL, 0, 0, NULL},
    {"state.cache.mb", K_INT, "96", 0, 1048576, NULL},
    {"state.close.chunk", K_INT, "10000", 1, 1000000, NULL},
    {"state.dir", K_STR, NULL, 0, 0, NULL},
    {"state.memtable.mb", K_INT, "32", 1, 4096, NULL},
    {"state.revoked.grace.ms", K_INT, "600000", 0, 86400000, NULL},
    {"state.seen.retention.months", K_INT, "0", 0, 1200, NULL},
    {"state.sync", K_BOOL, "true", 0, 0, NULL},
    {"topics.balances", K_TOPIC, "revenue.deferred-balances", 0, 0, NULL},
    {"topics.changelog", K_TOPIC, "revenue.state-changelog", 0, 0, NULL},
    {"topics.contracts", K_TOPIC, "contracts", 0, 0, NULL},
    {"topics.dlq", K_TOPIC, "revenue.dlq", 0, 0, NULL},
    {"topics.invoices", K_TOPIC, "invoices", 0, 0, NULL},
    {"topics.journal", K_TOPIC, "revenue.journal", 0, 0, NULL},
    {"topics.payments", K_TOPIC, "payments", 0, 0, NULL},
    {"topics.usage", K_TOPIC, "usage", 0, 0, NULL},
    {"worker.threads", K_INT, "2", 1, 64, NULL},
};
#define N_SPECS (sizeof specs / sizeof specs[0])

/* Index = rs_config_topic_t. */
static const char *const topic_keys[RS_CONFIG_TOPIC__COUNT] = {
    "topics.contracts", "topics.invoices", "topics.payments", "topics.usage",
    "topics.journal",   "topics.balances", "topics.dlq",
};

/* librdkafka properties the worker sets itself: its guarantees rest on them. */
static const char *const reserved_kafka[] = {
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "partition.assignment.strategy",
    "partitioner",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "transactional.id",
    "auto.offset.reset",
    NULL,
};

/* Keys whose value is a secret. A key is secret when it contains one of
 * `marks`, or when it is (after "kafka.") one of the properties librdkafka
 * itself flags as sensitive (_RK_SENSITIVE in its rdkafka_conf.c; see
 * CONFIGURATION.md in librdkafka-dev): ssl.key.password, ssl.key.pem,
 * ssl_key, ssl.keystore.password, sasl.password, sasl.oauthbearer.config,
 * sasl.oauthbearer.client.secret — "password", "secret", "ssl.key",
 * "ssl_key" and "oauthbearer.config" cover them, and the marks cover
 * whatever a later librdkafka adds under the same words (private keys,
 * tokens, JAAS configs, a registry's basic-auth user info). */
int rs_config_is_secret(const char *key)
{
    static const char *const marks[] = {
        "password",    "secret", "sasl.jaas", "ssl.key",     "ssl_key", "oauthbearer.config",
        "private.key", "token",  "user.info", "credentials", NULL};
    char low[256];
    size_t i;

    if (key == NULL)
        return 0;
    for (i = 0; key[i] != '\0' && i < sizeof low - 1; i++)
        low[i] = (char)tolower((unsigned char)key[i]);
    low[i] = '\0';
    for (i = 0; marks[i] != NULL; i++)
        if (strstr(low, marks[i]) != NULL)
            return 1;
    return 0;
}

char *rs_config_env_name(const char *key, char *buf, size_t buflen)
{
    size_t o = 0, plen = strlen(ENV_PREFIX);

    if (buf == NULL || buflen == 0)
        return buf;
    buf[0] = '\0';
    if (buflen <= plen)
        return buf;
    memcpy(buf, ENV_PREFIX, plen);
    o = plen;
    for (const char *p = key; *p != '\0' && o < buflen - 1; p++)
        buf[o++] = (char)((*p == '.' || *p == '-') ? '_' : toupper((unsigned char)*p));
    buf[o] = '\0';
    return buf;
}

static const keyspec_t *find_spec(const char *key)
{
    for (size_t i = 0; i < N_SPECS; i++)
        if (strcmp(specs[i].key, key) == 0)
            return &specs[i];
    return NULL;
}

static entry_t *find_entry(const rs_config_priv_t *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->e[i].key, key) == 0)
            return &p->e[i];
    return NULL;
}

/* Set key = value from origin (replacing an earlier source). 0 or -1 (ENOMEM). */
static int put(rs_config_priv_t *p, const char *key, size_t keylen, const char *value,
               size_t vallen, const char *origin)
{
    char *k = strndup(key, keylen), *v = strndup(value, vallen), *o = strdup(origin);
    entry_t *e;

    if (k == NULL || v == NULL || o == NULL)
        goto nomem;
    e = find_entry(p, k);
    if (e != NULL) {
        free(e->value);
        free(e->origin);
        free(k);
        e->value = v;
        e->origin = o;
        return 0;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        entry_t *ne = realloc(p->e, cap * sizeof *ne);
        if (ne == NULL)
            goto nomem;
        p->e = ne;
        p->cap = cap;
    }
    p->e[p->n++] = (entry_t){k, v, o};
    return 0;
nomem:
    free(k);
    free(v);
    free(o);
    return -1;
}

typedef struct parse_ctx {
    rs_config_priv_t *p;
    const char *name;
    char *errstr;
    size_t errlen;
} parse_ctx_t;

/* rs_props_fn: one key=value line of the file. 1 with errstr on an error. */
static int parse_line(void *opaque, int lineno, char *key, char *value)
{
    parse_ctx_t *x = opaque;
    char origin[512];
    size_t klen = strlen(key);

    if (value == NULL) {
        rs_errorf(x->errstr, x->errlen, "%s line %ld: expected key=value", x->name,
                  (long)lineno);
        return 1;
    }
    if (klen == 0) {
        rs_errorf(x->errstr, x->errlen, "%s line %ld: empty key before '='", x->name,
                  (long)lineno);
        return 1;
    }
    if (klen >= MAX_KEY_LEN) {
        rs_errorf(x->errstr, x->errlen, "%s line %ld: key too long", x->name, (long)lineno);
        return 1;
    }
    entry_t *old = find_entry(x->p, key);
    if (old != NULL && strncmp(old->origin, "file ", 5) == 0) {
        rs_errorf(x->errstr, x->errlen, "%s line %ld: %s: set twice (first in %s)", x->name,
                  (long)lineno, key, old->origin);
        return 1;
    }
    snprintf(origin, sizeof origin, "file %s line %ld", x->name, (long)lineno);
    if (put(x->p, key, klen, value, strlen(value), origin) != 0) {
        rs_errorf(x->errstr, x->errlen, "out of memory");
        return 1;
    }
    return 0;
}

/* Parse the properties text into p (rs_props rules, '#' comment lines only:
 * a value may hold a '#'). */
static int parse_text(rs_config_priv_t *p, const char *text, const char *name, char *errstr,
                      size_t errlen)
{
    parse_ctx_t x = {p, name, errstr, errlen};
    int rc = rs_props_parse(text, 0, parse_line, &x);

    if (rc == RS_PROPS_ENOMEM)
        rs_errorf(errstr, errlen, "out of memory");
    return rc == 0 ? 0 : -1;
}

/* The kafka.* key an env suffix (after REVSTREAM_KAFKA_) names: '_' as '.',
 * unless only the '_' spelling is a librdkafka property (log_level). */
static int kafka_key_from_env(rd_kafka_conf_t *scratch, const char *suffix, char *buf,
                              size_t buflen)
{
    size_t plen = strlen(KAFKA_PREFIX), n = strlen(suffix), i;
    size_t sz = 0;

    if (plen + n + 1 > buflen)
        return -1;
    memcpy(buf, KAFKA_PREFIX, plen);
    for (i = 0; i < n; i++)
        buf[plen + i] = (char)(suffix[i] == '_' ? '.' : tolower((unsigned char)suffix[i]));
    buf[plen + n] = '\0';
    if (rd_kafka_conf_get(scratch, buf + plen, NULL, &sz) != RD_KAFKA_CONF_UNKNOWN)
        return 0;
    for (i = 0; i < n; i++)
        buf[plen + i] = (char)tolower((unsigned char)suffix[i]);
    if (rd_kafka_conf_get(scratch, buf + plen, NULL, &sz) != RD_KAFKA_CONF_UNKNOWN)
        return 0;
    /* Unknown either way: keep the dotted spelling; validation names it. */
    for (i = 0; i < n; i++)
        if (buf[plen + i] == '_')
            buf[plen + i] = '.';
    return 0;
}

/* ---- Kubernetes service links ------------------------------------------
 * For every Service of its namespace Kubernetes gives a pod (unless the pod
 * sets enableServiceLinks: false) <SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT,
 * <SVC>_SERVICE_PORT_<PORTNAME>, <SVC>_PORT and, per port,
 * <SVC>_PORT_<n>_<PROTO> with its _PROTO, _PORT and _ADDR, where <SVC> is
 * the Service name upper-cased with '-' as '_'. A Service named revstream or
 * revstream-<x> makes them REVSTREAM_*. A variable is taken for one only
 * when both its name and its value have the form Kubernetes gives them, so a
 * misspelt key (REVSTREAM_METRIC_PORT=9090) stays an error, and no value a
 * real key accepts is ever ignored (REVSTREAM_METRICS_PORT=9090 is
 * metrics.port; REVSTREAM_METRICS_PORT=tcp://10.0.0.7:9090 is the link of a
 * Service named revstream-metrics). */

/* s is [A-Z0-9_]+ over n bytes. */
static int upper_word(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

/* The decimal port 1..65535 over n bytes, or -1. */
static long port_of(const char *s, size_t n)
{
    long v = 0;

    if (n == 0 || n > 5 || s[0] == '0')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 65535 ? v : -1;
}

static int ip_addr(const char *s, size_t n)
{
    char buf[64];
    unsigned char addr[16];

    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

/* "tcp", "udp" or "sctp" as the length of the protocol at s (upper or lower
 * case as asked), or 0. */
static size_t proto_len(const char *s, int upper)
{
    static const char *const lower[] = {"tcp", "udp", "sctp", NULL};
    static const char *const cap[] = {"TCP", "UDP", "SCTP", NULL};
    const char *const *list = upper ? cap : lower;

    for (int i = 0; list[i] != NULL; i++) {
        size_t n = strlen(list[i]);
        if (strncmp(s, list[i], n) == 0)
            return n;
    }
    return 0;
}

/* value is <proto>://<ip>:<port> (IPv6 in brackets); want_proto (lower
 * case, NULL: any) and want_port (-1: any) must match. */
static int link_url(const char *v, const char *want_proto, long want_port)
{
    size_t pl = proto_len(v, 0), hl;
    const char *host, *colon;

    if (pl == 0 || strncmp(v + pl, "://", 3) != 0)
        return 0;
    if (want_proto != NULL && (strlen(want_proto) != pl || strncmp(v, want_proto, pl) != 0))
        return 0;
    host = v + pl + 3;
    colon = strrchr(host, ':');
    if (colon == NULL)
        return 0;
    hl = (size_t)(colon - host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    long port = port_of(colon + 1, strlen(colon + 1));
    return ip_addr(host, hl) && port > 0 && (want_port < 0 || port == want_port);
}

/* The part of a name after <SVC>_: 1 when it and the value have the form of
 * a service link (see above). */
static int link_suffix(const char *s, const char *v)
{
    if (strcmp(s, "SERVICE_HOST") == 0)
        return ip_addr(v, strlen(v));
    if (strcmp(s, "SERVICE_PORT") == 0 ||
        (strncmp(s, "SERVICE_PORT_", 13) == 0 && upper_word(s + 13, strlen(s + 13))))
        return port_of(v, strlen(v)) > 0;
    if (strcmp(s, "PORT") == 0)
        return link_url(v, NULL, -1);
    if (strncmp(s, "PORT_", 5) != 0)
        return 0;
    /* PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR] */
    const char *n = s + 5, *u = strchr(n, '_');
    char proto[8];
    size_t pl;
    long port;

    if (u == NULL || (port = port_of(n, (size_t)(u - n))) < 0 ||
        (pl = proto_len(u + 1, 1)) == 0)
        return 0;
    for (size_t i = 0; i < pl; i++)
        proto[i] = (char)tolower((unsigned char)u[1 + i]);
    proto[pl] = '\0';
    const char *rest = u + 1 + pl;
    if (*rest == '\0')
        return link_url(v, proto, port);
    if (strcmp(rest, "_PROTO") == 0)
        return strcmp(v, proto) == 0;
    if (strcmp(rest, "_PORT") == 0)
        return port_of(v, strlen(v)) == port;
    if (strcmp(rest, "_ADDR") == 0)
        return ip_addr(v, strlen(v));
    return 0;
}

int rs_config_is_service_link(const char *name, const char *value)
{
    const size_t plen = strlen(ENV_PREFIX);
    const char *rest;

    if (name == NULL || value == NULL || strncmp(name, ENV_PREFIX, plen) != 0)
        return 0;
    rest = name + plen;
    /* <SVC> is REVSTREAM or REVSTREAM_<X>: try every '_' as the end of <X>. */
    if (link_suffix(rest, value))
        return 1;
    for (const char *u = strchr(rest, '_'); u != NULL; u = strchr(u + 1, '_'))
        if (upper_word(rest, (size_t)(u - rest)) && link_suffix(u + 1, value))
            return 1;
    return 0;
}

static int note_ignored(rs_config_priv_t *p, const char *name)
{
    char **ni = realloc(p->ignored, (p->n_ignored + 1) * sizeof *ni);

    if (ni == NULL)
        return -1;
    p->ignored = ni;
    if ((ni[p->n_ignored] = strdup(name)) == NULL)
        return -1;
    p->n_ignored++;
    return 0;
}

const char *rs_config_ignored_env(const rs_config_t *c, size_t i)
{
    if (c == NULL || c->priv == NULL || i >= c->priv->n_ignored)
        return NULL;
    return c->priv->ignored[i];
}

static int apply_env(rs_config_priv_t *p, char *const *envp, rd_kafka_conf_t *scratch,
                     char *errstr, size_t errlen)
{
    const size_t plen = strlen(ENV_PREFIX);

    if (envp == NULL)
        return 0;
    for (char *const *ep = envp; *ep != NULL; ep++) {
        const char *var = *ep, *eq = strchr(var, '=');
        char name[256], key[256], origin[300];
        size_t nlen;

        if (eq == NULL || strncmp(var, ENV_PREFIX, plen) != 0)
            continue;
        nlen = (size_t)(eq - var);
        if (nlen >= sizeof name) {
            rs_errorf(errstr, errlen, "environment variable %.64s...: name too long", var);
            return -1;
        }
        memcpy(name, var, nlen);
        name[nlen] = '\0';
        key[0] = '\0';
        if (rs_config_is_service_link(name, eq + 1)) {
            if (note_ignored(p, name) != 0) {
                rs_errorf(errstr, errlen, "out of memory");
                return -1;
            }
            continue;
        }
        if (strncmp(name + plen, "KAFKA_", 6) == 0 && name[plen + 6] != '\0') {
            if (kafka_key_from_env(scratch, name + plen + 6, key, sizeof key) != 0) {
                rs_errorf(errstr, errlen, "%s: name too long", name);
                return -1;
            }
        } else {
            char env[256];
            for (size_t i = 0; i < N_SPECS; i++)
                if (strcmp(rs_config_env_name(specs[i].key, env, sizeof env), name) == 0)
                    snprintf(key, sizeof key, "%s", specs[i].key);
            if (key[0] == '\0') {
                rs_errorf(errstr, errlen,
                          "unknown key (env %s): no configuration key maps to this variable",
                          name);
                return -1;
            }
        }
        snprintf(origin, sizeof origin, "env %s", name);
        if (put(p, key, strlen(key), eq + 1, strlen(eq + 1), origin) != 0) {
            rs_errorf(errstr, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int valid_topic(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_TOPIC_LEN || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* A URL with its user:password@ replaced by ***@. The userinfo ends at the
 * LAST '@' of the URL: a password may hold an unencoded '/', '#', '?' or
 * '@' (a URL parser would end the authority at the first of those and leave
 * the rest of the password in the "path"), so everything between "://" and
 * the last '@' is withheld. A path holding an '@' is withheld too: masking
 * too much is harmless, too little is not. */
static void put_url(rs_strbuf_t *b, const char *url)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strrchr(host, '@');

    if (at == NULL) {
        rs_strbuf_puts(b, url);
        return;
    }
    rs_strbuf_putn(b, url, (size_t)(host - url));
    rs_strbuf_puts(b, "***");
    rs_strbuf_puts(b, at);
}

/* The value as it may appear in a message: quoted (a URL without its
 * credentials), or withheld for secrets. */
static const char *shown(const entry_t *e, char *buf, size_t buflen)
{
    if (rs_config_is_secret(e->key)) {
        snprintf(buf, buflen, "the value");
    } else if (strstr(e->key, "url") != NULL) {
        rs_strbuf_t u = {0};
        put_url(&u, e->value);
        char *url = rs_strbuf_take(&u);
        snprintf(buf, buflen, "\"%.200s\"", url != NULL ? url : "(a URL)");
        free(url);
    } else {
        snprintf(buf, buflen, "\"%.200s\"", e->value);
    }
    return buf;
}

static int check_spec(const keyspec_t *s, const entry_t *e, char *errstr, size_t errlen)
{
    char v[256];
    long n;

    switch (s->type) {
    case K_STR:
        return 0;
    case K_BOOL:
        if (strcmp(e->value, "true") == 0 || strcmp(e->value, "false") == 0)
            return 0;
        rs_errorf(errstr, errlen, "%s: %s is not true or false (%s)", e->key, shown(e, v, 256),
                  e->origin);
        return -1;
    case K_INT:
        if (parse_long(e->value, s->lo, s->hi, &n) == 0)
            return 0;
        rs_errorf(errstr, errlen, "%s: %s is not an integer in %ld..%ld (%s)", e->key,
                  shown(e, v, 256), s->lo, s->hi, e->origin);
        return -1;
    case K_ENUM: {
        char list[128] = "";
        for (int i = 0; s->choices[i] != NULL; i++) {
            if (strcmp(e->value, s->choices[i]) == 0)
                return 0;
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", i ? " or " : "", s->choices[i]);
        }
        rs_errorf(errstr, errlen, "%s: %s is not %s (%s)", e->key, shown(e, v, 256), list,
                  e->origin);
        return -1;
    }
    case K_TOPIC:
        if (valid_topic(e->value))
            return 0;
        rs_errorf(errstr, errlen,
                  "%s: %s is not a Kafka topic name (1..249 of [a-zA-Z0-9._-]) (%s)", e->key,
                  shown(e, v, 256), e->origin);
        return -1;
    case K_ADDR: {
        unsigned char addr[16];
        if (inet_pton(AF_INET, e->value, addr) == 1 || inet_pton(AF_INET6, e->value, addr) == 1)
            return 0;
        rs_errorf(errstr, errlen, "%s: %s is not a numeric IPv4 or IPv6 address (%s)", e->key,
                  shown(e, v, 256), e->origin);
        return -1;
    }
    }
    return 0;
}

static int check_kafka(rd_kafka_conf_t *scratch, const entry_t *e, char *errstr, size_t errlen)
{
    const char *prop = e->key + strlen(KAFKA_PREFIX);
    char kerr[512];

    if (prop[0] == '\0') {
        rs_errorf(errstr, errlen, "%s: empty librdkafka property name (%s)", e->key, e->origin);
        return -1;
    }
    for (int i = 0; reserved_kafka[i] != NULL; i++)
        if (strcmp(prop, reserved_kafka[i]) == 0) {
            rs_errorf(errstr, errlen,
                      "%s: the worker sets this librdkafka property itself; remove it (%s)",
                      e->key, e->origin);
            return -1;
        }
    switch (rd_kafka_conf_set(scratch, prop, e->value, kerr, sizeof kerr)) {
    case RD_KAFKA_CONF_OK:
        return 0;
    case RD_KAFKA_CONF_UNKNOWN:
        rs_errorf(errstr, errlen,
                  "unknown key \"%s\": \"%s\" is not a librdkafka property (%s)", e->key, prop,
                  e->origin);
        return -1;
    default:
        if (rs_config_is_secret(e->key))
            rs_errorf(errstr, errlen, "%s: librdkafka refuses the value (%s)", e->key,
                      e->origin);
        else
            rs_errorf(errstr, errlen, "%s: %s (%s)", e->key, kerr, e->origin);
        return -1;
    }
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->key, ((const entry_t *)b)->key);
}

static const char *value_or_null(const rs_config_priv_t *p, const char *key)
{
    const entry_t *e = find_entry(p, key);
    return e != NULL && e->value[0] != '\0' ? e->value : NULL;
}

/* Validate the merged entries and fill the typed fields. */
static int finish(rs_config_t *c, rd_kafka_conf_t *scratch, char *errstr, size_t errlen)
{
    rs_config_priv_t *p = c->priv;
    size_t nk = 0;
    const entry_t *reg, *dir;

    qsort(p->e, p->n, sizeof *p->e, entry_cmp);
    for (size_t i = 0; i < p->n; i++) {
        const entry_t *e = &p->e[i];
        if (strncmp(e->key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0) {
            if (check_kafka(scratch, e, errstr, errlen) != 0)
                return -1;
            nk++;
            continue;
        }
        const keyspec_t *s = find_spec(e->key);
        if (s == NULL) {
            rs_errorf(errstr, errlen, "unknown key \"%s\" (%s)", e->key, e->origin);
            return -1;
        }
        if (e->value[0] == '\0' && s->def != NULL) {
            rs_errorf(errstr, errlen, "%s: must not be empty (%s)", e->key, e->origin);
            return -1;
        }
        if (e->value[0] != '\0' && check_spec(s, e, errstr, errlen) != 0)
            return -1;
    }

    if (value_or_null(p, "kafka.bootstrap.servers") == NULL) {
        rs_errorf(errstr, errlen,
                  "kafka.bootstrap.servers: required (set it in the file or "
                  "REVSTREAM_KAFKA_BOOTSTRAP_SERVERS)");
        return -1;
    }
    if (value_or_null(p, "state.dir") == NULL) {
        rs_errorf(errstr, errlen,
                  "state.dir: required (set it in the file or REVSTREAM_STATE_DIR)");
        return -1;
    }
    reg = find_entry(p, "schema.registry.url");
    dir = find_entry(p, "schema.dir");
    if (reg != NULL && reg->value[0] != '\0' && dir != NULL && dir->value[0] != '\0') {
        rs_errorf(errstr, errlen,
                  "schema.dir (%s) and schema.registry.url (%s) exclude each other: set one",
                  dir->origin, reg->origin);
        return -1;
    }
    if (reg == NULL || reg->value[0] == '\0') {
        static const char *const cred[] = {"schema.registry.username",
                                           "schema.registry.password", NULL};
        for (int i = 0; cred[i] != NULL; i++) {
            const entry_t *e = find_entry(p, cred[i]);
            if (e != NULL && e->value[0] != '\0') {
                rs_errorf(errstr, errlen, "%s: set without schema.registry.url (%s)", e->key,
                          e->origin);
                return -1;
            }
        }
        if (dir == NULL || dir->value[0] == '\0') {
            char def[4096];
            rs_paths_schema_dir(def, sizeof def);
            if (put(p, "schema.dir", strlen("schema.dir"), def, strlen(def), "default") != 0) {
                rs_errorf(errstr, errlen, "out of memory");
                return -1;
            }
            qsort(p->e, p->n, sizeof *p->e, entry_cmp);
        }
    } else if (strncmp(reg->value, "http://", 7) != 0 &&
               strncmp(reg->value, "https://", 8) != 0) {
        rs_errorf(errstr, errlen, "schema.registry.url: not an http:// or https:// URL (%s)",
                  reg->origin);
        return -1;
    }

    /* Typed fields. Pointers into entries are stable from here on. */
    for (int t = 0; t < RS_CONFIG_TOPIC__COUNT; t++) {
        c->topics[t] = value_or_null(p, topic_keys[t]);
        for (int u = 0; u < t; u++)
            if (strcmp(c->topics[t], c->topics[u]) == 0) {
                rs_errorf(errstr, errlen,
                          "%s and %s: both name topic \"%s\"; topics must differ",
                          topic_keys[u], topic_keys[t], c->topics[t]);
                return -1;
            }
    }
    c->changelog_topic = value_or_null(p, "topics.changelog");
    for (int t = 0; t < RS_CONFIG_TOPIC__COUNT; t++)
        if (strcmp(c->changelog_topic, c->topics[t]) == 0) {
            rs_errorf(errstr, errlen,
                      "%s and topics.changelog: both name topic \"%s\"; topics must differ",
                      topic_keys[t], c->topics[t]);
            return -1;
        }
    c->group_id = value_or_null(p, "group.id");
    c->group_instance_id = value_or_null(p, "group.instance.id");
    c->input_format = strcmp(value_or_null(p, "input.format"), "json") == 0
                          ? RS_CONFIG_FORMAT_JSON
                          : RS_CONFIG_FORMAT_AVRO;
    c->output_format = strcmp(value_or_null(p, "output.format"), "json") == 0
                           ? RS_CONFIG_FORMAT_JSON
                           : RS_CONFIG_FORMAT_AVRO;
    c->schema_registry_url = value_or_null(p, "schema.registry.url");
    c->schema_dir = c->schema_registry_url ? NULL : value_or_null(p, "schema.dir");
    c->schema_registry_username = value_or_null(p, "schema.registry.username");
    c->schema_registry_password = value_or_null(p, "schema.registry.password");
    c->state_dir = value_or_null(p, "state.dir");
    c->state_sync = strcmp(value_or_null(p, "state.sync"), "true") == 0;
    parse_long(value_or_null(p, "batch.max.records"), 1, 1000000, &c->batch_max_records);
    parse_long(value_or_null(p, "batch.max.ms"), 1, 3600000, &c->batch_max_ms);
    parse_long(value_or_null(p, "batch.max.staged.kib"), 0, 16777216, &c->batch_max_staged_kib);
    parse_long(value_or_null(p, "input.idle.ms"), 0, 3600000, &c->input_idle_ms);
    parse_long(value_or_null(p, "input.buffer.records"), 16, 10000000,
               &c->input_buffer_records);
    parse_long(value_or_null(p, "state.revoked.grace.ms"), 0, 86400000, &c->revoked_grace_ms);
    parse_long(value_or_null(p, "state.seen.retention.months"), 0, 1200,
               &c->seen_retention_months);
    parse_long(value_or_null(p, "state.cache.mb"), 0, 1048576, &c->state_cache_mb);
    parse_long(value_or_null(p, "state.close.chunk"), 1, 1000000, &c->state_close_chunk);
    parse_long(value_or_null(p, "state.memtable.mb"), 1, 4096, &c->state_memtable_mb);
    parse_long(value_or_null(p, "worker.threads"), 1, 64, &c->worker_threads);
    c->guarantee = strcmp(value_or_null(p, "processing.guarantee"), "exactly_once") == 0
                       ? RS_CONFIG_EXACTLY_ONCE
                       : RS_CONFIG_AT_LEAST_ONCE;
    c->policy_file = value_or_null(p, "policy.file");
    long port = 0;
    parse_long(value_or_null(p, "metrics.port"), 0, 65535, &port);
    c->metrics_port = (int)port;
    c->metrics_bind = value_or_null(p, "metrics.bind");
    c->exit_when_idle = strcmp(value_or_null(p, "exit.when.idle"), "true") == 0;
    parse_long(value_or_null(p, "health.stall.ms"), 0, 3600000, &c->health_stall_ms);
    parse_long(value_or_null(p, "health.lost.ms"), 0, 3600000, &c->health_lost_ms);
    c->log_format = value_or_null(p, "log.format");

    p->kafka = calloc(nk + 1, sizeof *p->kafka);
    if (p->kafka == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        return -1;
    }
    nk = 0;
    for (size_t i = 0; i < p->n; i++)
        if (strncmp(p->e[i].key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)) == 0 &&
            p->e[i].value[0] != '\0') {
            p->kafka[nk].key = p->e[i].key + strlen(KAFKA_PREFIX);
            p->kafka[nk].value = p->e[i].value;
            nk++;
        }
    c->n_kafka = nk;
    c->kafka = p->kafka;
    return 0;
}

int rs_config_load_text(rs_config_t **out, const char *text, const char *name,
                        char *const *envp, char *errstr, size_t errlen)
{
    rs_config_t *c = NULL;
    rd_kafka_conf_t *scratch = NULL;
    int rc = -1;

    if (out == NULL) {
        rs_errorf(errstr, errlen, "config: out must not be NULL");
        return -1;
    }
    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->priv = calloc(1, sizeof *c->priv)) == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < N_SPECS; i++)
        if (specs[i].def != NULL && put(c->priv, specs[i].key, strlen(specs[i].key),
                                        specs[i].def, strlen(specs[i].def), "default") != 0) {
            rs_errorf(errstr, errlen, "out of memory");
            goto done;
        }
    scratch = rd_kafka_conf_new();
    if (scratch == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        goto done;
    }
    if (text != NULL &&
        parse_text(c->priv, text, name != NULL ? name : "config", errstr, errlen) != 0)
        goto done;
    if (apply_env(c->priv, envp, scratch, errstr, errlen) != 0)
        goto done;
    if (finish(c, scratch, errstr, errlen) != 0)
        goto done;
    *out = c;
    c = NULL;
    rc = 0;
done:
    if (scratch != NULL)
        rd_kafka_conf_destroy(scratch);
    rs_config_destroy(c);
    return rc;
}

int rs_config_load(rs_config_t **out, const char *path, char *const *envp, char *errstr,
                   size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = NULL;
    int rc = -1;

    if (out == NULL) {
        rs_errorf(errstr, errlen, "config: out must not be NULL");
        return -1;
    }
    *out = NULL;
    if (path != NULL) {
        f = fopen(path, "r");
        if (f == NULL) {
            rs_errorf(errstr, errlen, "config file %s: %s", path, strerror(errno));
            goto done;
        }
        text = malloc(MAX_FILE_BYTES + 1);
        if (text == NULL) {
            rs_errorf(errstr, errlen, "out of memory");
            goto done;
        }
        len = fread(text, 1, MAX_FILE_BYTES + 1, f);
        if (ferror(f)) {
            rs_errorf(errstr, errlen, "config file %s: read error", path);
            goto done;
        }
        if (len > (size_t)MAX_FILE_BYTES) {
            rs_errorf(errstr, errlen, "config file %s: larger than %d bytes", path,
                      MAX_FILE_BYTES);
            goto done;
        }
        text[len] = '\0';
        if (memchr(text, '\0', len) != NULL) {
            rs_errorf(errstr, errlen, "config file %s: not a text file (it holds a NUL byte)",
                      path);
            goto done;
        }
    }
    rc = rs_config_load_text(out, text, path, envp, errstr, errlen);
done:
    if (f != NULL)
        fclose(f);
    free(text);
    return rc;
}

void rs_config_destroy(rs_config_t *c)
{
    if (c == NULL)
        return;
    if (c->priv != NULL) {
        for (size_t i = 0; i < c->priv->n; i++) {
            free(c->priv->e[i].key);
            free(c->priv->e[i].value);
            free(c->priv->e[i].origin);
        }
        free(c->priv->e);
        free(c->priv->kafka);
        for (size_t i = 0; i < c->priv->n_ignored; i++)
            free(c->priv->ignored[i]);
        free(c->priv->ignored);
        free(c->priv);
    }
    free(c);
}

const char *rs_config_get(const rs_config_t *c, const char *key)
{
    if (c == NULL || key == NULL)
        return NULL;
    return value_or_null(c->priv, key);
}

const char *rs_config_origin(const rs_config_t *c, const char *key)
{
    const entry_t *e;

    if (c == NULL || key == NULL)
        return NULL;
    e = find_entry(c->priv, key);
    return e != NULL && e->value[0] != '\0' ? e->origin : NULL;
}

static void put_value(rs_strbuf_t *b, const char *v)
{
    int quote = v[0] == '\0' || strpbrk(v, " \t\"\\=") != NULL;

    if (!quote) {
        rs_strbuf_puts(b, v);
        return;
    }
    rs_strbuf_puts(b, "\"");
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            rs_strbuf_putn(b, "\\", 1);
        if ((unsigned char)*p < 0x20)
            rs_strbuf_putn(b, "?", 1);
        else
            rs_strbuf_putn(b, p, 1);
    }
    rs_strbuf_puts(b, "\"");
}

char *rs_config_describe(const rs_config_t *c)
{
    rs_strbuf_t b = {0};

    if (c == NULL)
        return NULL;
    for (size_t i = 0; i < c->priv->n; i++) {
        const entry_t *e = &c->priv->e[i];
        if (e->value[0] == '\0')
            continue;
        if (b.len > 0)
            rs_strbuf_putc(&b, ' ');
        rs_strbuf_puts(&b, e->key);
        rs_strbuf_putc(&b, '=');
        if (rs_config_is_secret(e->key)) {
            rs_strbuf_puts(&b, "***");
        } else if (strstr(e->key, "url") != NULL) {
            rs_strbuf_t u = {0};
            put_url(&u, e->value);
            char *url = rs_strbuf_take(&u);
            if (url == NULL)
                b.oom = 1;
            else
                put_value(&b, url);
            free(url);
        } else {
            put_value(&b, e->value);
        }
    }
    return rs_strbuf_take(&b); /* NULL on out-of-memory */
}
