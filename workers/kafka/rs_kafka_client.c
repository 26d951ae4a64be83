/*
 * rs_kafka_client.c — see rs_kafka_client.h for the order a conf is built
 * in. Every rd_kafka_conf_set() goes through set(), which keeps the refused
 * key and librdkafka's reason and nothing else.
 */
#include "rs_kafka_client.h"
#include "rs_err.h"
#include "rs_props.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* librdkafka's property table, name and scope, sorted by name; read once.
 * Fixed storage (librdkafka 2.0 lists ~230 properties, names under 48
 * bytes): a row that does not fit is left out, and its property is then
 * given to every client, as before there was a table. */
#define SCOPE_MAX 1024
#define SCOPE_NAME 64

typedef struct scope_row {
    char name[SCOPE_NAME];
    char scope; /* '*', 'C' or 'P' */
} scope_row_t;

static scope_row_t g_scope[SCOPE_MAX];
static size_t g_nscope;
static pthread_once_t g_scope_once = PTHREAD_ONCE_INIT;

static int scope_cmp(const void *a, const void *b)
{
    return strcmp(((const scope_row_t *)a)->name, ((const scope_row_t *)b)->name);
}

/* One row of the table, cut in place: "name | C/P | range | default |
 * ...". Header, ruler and section lines have no scope of one of the three
 * forms. */
static void scope_parse_line(char *line)
{
    char *bar1 = strchr(line, '|'), *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
    if (bar2 == NULL)
        return;
    *bar1 = *bar2 = '\0';
    const char *name = rs_props_trim(line), *scope = rs_props_trim(bar1 + 1);
    size_t nl = strlen(name);
    if (nl == 0 || nl >= SCOPE_NAME || strchr(name, ' ') != NULL || scope[0] == '\0' ||
        scope[1] != '\0' || strchr("*CP", scope[0]) == NULL)
        return;
    for (size_t i = 0; i < g_nscope; i++)
        if (strcmp(g_scope[i].name, name) == 0) {
            /* listed twice (global and topic sections): two scopes mean
             * every client */
            if (g_scope[i].scope != scope[0])
                g_scope[i].scope = '*';
            return;
        }
    if (g_nscope < SCOPE_MAX) {
        memcpy(g_scope[g_nscope].name, name, nl + 1);
        g_scope[g_nscope++].scope = scope[0];
    }
}

static void scope_load(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return; /* no table: every property to every client */
    rd_kafka_conf_properties_show(f);
    if (fclose(f) == 0 && text != NULL) {
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save))
            scope_parse_line(l);
        qsort(g_scope, g_nscope, sizeof g_scope[0], scope_cmp);
    }
    free(text);
}

char rs_kafka_property_scope(const char *name)
{
    scope_row_t key;
    const scope_row_t *row;
    size_t nl = name != NULL ? strlen(name) : SCOPE_NAME;
    if (nl >= SCOPE_NAME)
        return '\0';
    pthread_once(&g_scope_once, scope_load);
    memcpy(key.name, name, nl + 1);
    row = bsearch(&key, g_scope, g_nscope, sizeof g_scope[0], scope_cmp);
    if (row == NULL)
        return '\0';
    return row->scope;
}

/* Whether a passthrough property is for a client of this role. */
static int for_role(rs_kafka_role_t role, const char *key)
{
    char scope;
    if (role == RS_KAFKA_ROLE_ANY)
        return 1;
    scope = rs_kafka_property_scope(key);
    return !((role == RS_KAFKA_ROLE_CONSUMER && scope == 'P') ||
             (role == RS_KAFKA_ROLE_PRODUCER && scope == 'C'));
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *value, const char **bad_key,
               char *errstr, size_t errlen)
{
    if (rd_kafka_conf_set(conf, key, value, errstr, errlen) == RD_KAFKA_CONF_OK)
        return 0;
    if (bad_key != NULL)
        *bad_key = key;
    return -1;
}

int rs_kafka_conf_new(rd_kafka_conf_t **out, const rs_kafka_client_opts_t *opts,
                      const char **bad_key, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf = NULL;
    int rc = -1;

    if (bad_key != NULL)
        *bad_key = NULL;
    *out = NULL;
    conf = rd_kafka_conf_new();
    if (conf == NULL) {
        rs_errorf(errstr, errlen, "out of memory");
        goto exit;
    }
    if (opts->bootstrap != NULL &&
        set(conf, "bootstrap.servers", opts->bootstrap, bad_key, errstr, errlen) != 0)
        goto exit;
    for (size_t i = 0; opts->settings != NULL && opts->settings[i].key != NULL; i++)
        if (set(conf, opts->settings[i].key, opts->settings[i].value, bad_key, errstr,
                errlen) != 0)
            goto exit;
    for (size_t i = 0; i < opts->nprops; i++)
        if (for_role(opts->role, opts->props[i].key) &&
            set(conf, opts->props[i].key, opts->props[i].value, bad_key, errstr, errlen) != 0)
            goto exit;
    if (opts->log_cb != NULL)
        rd_kafka_conf_set_log_cb(conf, opts->log_cb);
    if (opts->error_cb != NULL)
        rd_kafka_conf_set_error_cb(conf, opts->error_cb);
    if (opts->opaque != NULL)
        rd_kafka_conf_set_opaque(conf, opts->opaque);
    *out = conf;
    conf = NULL;
    rc = 0;
exit:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rc;
}

int rs_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int cnt = -1;

    if (rkt == NULL)
        return -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        cnt = 0;
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            cnt = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return cnt;
}
