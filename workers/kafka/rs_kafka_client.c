/*
 * rs_kafka_client.c — see rs_kafka_client.h for the order a conf is built
 * in. Every rd_kafka_conf_set() goes through set(), which keeps the refused
 * key and librdkafka's reason and nothing else.
 */
#include "rs_kafka_client.h"
#include "rs_err.h"

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
        if (set(conf, opts->props[i].key, opts->props[i].value, bad_key, errstr, errlen) != 0)
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
