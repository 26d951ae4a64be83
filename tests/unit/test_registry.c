/*
 * test_registry — the Schema Registry client (workers/lib/rs_registry.h)
 * against a tiny fake registry served by libmicrohttpd on 127.0.0.1 (an
 * ephemeral port, loopback only), and the local schema map.
 *
 * The fake registry knows: GET /schemas/ids/1 (the usage schema), /2 (a
 * PROTOBUF schema), /8 (a reply over the size cap), anything else 404/40403;
 * POST /subjects/{s}/versions answers 42 for usage-value (only with the
 * right basic-auth header and content type), 409 for incompat-value, 422 for
 * bad-value, 401 without credentials. It counts requests, so the tests can
 * check what the client cached.
 *
 * Invariants: every test starts and stops its own server and frees what it
 * makes; the server thread and the test share `fake_t` under its mutex.
 */
#define _GNU_SOURCE /* asprintf, mkdtemp */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs_avro.h"
#include "rs_registry.h"

#define AUTH_OK "Basic c3ZjOnMzY3JldA==" /* svc:s3cret */
#define SECRET "s3cret"

typedef struct fake {
    struct MHD_Daemon *d;
    unsigned short port;
    pthread_mutex_t mu;
    int gets, posts;
    char content_type[128];
    char *posted_schema;
} fake_t;

typedef struct upload {
    char *data;
    size_t len;
} upload_t;

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(resp, "Content-Type", RS_REGISTRY_CONTENT_TYPE);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result handle_get(fake_t *f, struct MHD_Connection *conn, const char *url)
{
    int id = -1;
    pthread_mutex_lock(&f->mu);
    f->gets++;
    pthread_mutex_unlock(&f->mu);
    if (sscanf(url, "/schemas/ids/%d", &id) != 1)
        return reply(conn, 404, "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    if (id == 1) {
        json_t *j = json_pack("{s:s}", "schema", rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE));
        char *s = json_dumps(j, JSON_COMPACT);
        enum MHD_Result rc = reply(conn, 200, s);
        free(s);
        json_decref(j);
        return rc;
    }
    if (id == 2)
        return reply(conn, 200,
                     "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\"}");
    if (id == 8) {
        size_t n = RS_REGISTRY_MAX_BODY + 1024;
        char *big = malloc(n + 1);
        memset(big, ' ', n);
        big[n] = '\0';
        enum MHD_Result rc = reply(conn, 200, big);
        free(big);
        return rc;
    }
    char body[128];
    snprintf(body, sizeof(body), "{\"error_code\":40403,\"message\":\"Schema %d not found\"}",
             id);
    return reply(conn, 404, body);
}

static enum MHD_Result handle_post(fake_t *f, struct MHD_Connection *conn, const char *url,
                                   const upload_t *up)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    char subject[128] = "";
    pthread_mutex_lock(&f->mu);
    f->posts++;
    snprintf(f->content_type, sizeof(f->content_type), "%s", ct ? ct : "");
    pthread_mutex_unlock(&f->mu);
    if (auth == NULL || strcmp(auth, AUTH_OK) != 0)
        return reply(conn, 401, "{\"error_code\":401,\"message\":\"Unauthorized\"}");
    if (sscanf(url, "/subjects/%127[^/]/versions", subject) != 1)
        return reply(conn, 404, "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}");
    json_t *j = json_loadb(up->data ? up->data : "", up->len, 0, NULL);
    json_t *schema = json_object_get(j, "schema");
    if (!json_is_string(schema)) {
        json_decref(j);
        return reply(conn, 422, "{\"error_code\":42201,\"message\":\"Empty schema\"}");
    }
    pthread_mutex_lock(&f->mu);
    free(f->posted_schema);
    f->posted_schema = strdup(json_string_value(schema));
    pthread_mutex_unlock(&f->mu);
    json_decref(j);
    if (strcmp(subject, "usage-value") == 0)
        return reply(conn, 200, "{\"id\":42}");
    if (strcmp(subject, "incompat-value") == 0)
        return reply(conn, 409,
                     "{\"error_code\":409,\"message\":\"Schema being registered is "
                     "incompatible with an earlier schema\"}");
    return reply(conn, 422, "{\"error_code\":42201,\"message\":\"Invalid schema\\nline 2\"}");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *data_size, void **con_cls)
{
    fake_t *f = cls;
    (void)version;
    upload_t *up = *con_cls;
    if (up == NULL) {
        up = calloc(1, sizeof(*up));
        *con_cls = up;
        return up ? MHD_YES : MHD_NO;
    }
    if (*data_size > 0) {
        char *n = realloc(up->data, up->len + *data_size + 1);
        if (n == NULL)
            return MHD_NO;
        memcpy(n + up->len, data, *data_size);
        up->data = n;
        up->len += *data_size;
        up->data[up->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0)
        return handle_get(f, conn, url);
    if (strcmp(method, "POST") == 0)
        return handle_post(f, conn, url, up);
    return reply(conn, 405, "{\"error_code\":405,\"message\":\"Method Not Allowed\"}");
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload_t *up = *con_cls;
    if (up != NULL) {
        free(up->data);
        free(up);
        *con_cls = NULL;
    }
}

static void fake_start(fake_t *f)
{
    struct sockaddr_in addr;
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = 0; /* ephemeral */
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, f,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    cr_assert_not_null(f->d, "cannot start the fake registry");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    cr_assert_not_null(info);
    f->port = info->port;
    cr_assert_neq(f->port, 0);
}

static void fake_stop(fake_t *f)
{
    MHD_stop_daemon(f->d);
    free(f->posted_schema);
    pthread_mutex_destroy(&f->mu);
}

static int count(fake_t *f, int *field)
{
    pthread_mutex_lock(&f->mu);
    int n = *field;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static rs_registry_t *client(fake_t *f, const char *userinfo)
{
    char url[128], err[512];
    rs_registry_t *r = NULL;
    snprintf(url, sizeof(url), "http://%s127.0.0.1:%u/", userinfo ? userinfo : "",
             (unsigned)f->port);
    rs_registry_options_t o = {.url = url, .timeout_ms = 5000};
    cr_assert_eq(rs_registry_new(&r, &o, err, sizeof(err)), RS_REGISTRY_OK, "%s", err);
    return r;
}

/* ---- registry mode ---- */

Test(registry, get_schema_fetches_once_and_caches)
{
    fake_t f;
    char err[512];
    const char *text = NULL, *again = NULL;
    fake_start(&f);
    rs_registry_t *r = client(&f, NULL);
    cr_assert_eq(rs_registry_get_schema(r, 1, &text, err, sizeof(err)), RS_REGISTRY_OK, "%s",
                 err);
    cr_assert_str_eq(text, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE));
    cr_assert_eq(rs_registry_get_schema(r, 1, &again, err, sizeof(err)), RS_REGISTRY_OK);
    cr_assert_eq(again, text, "served from the cache");
    cr_assert_eq(count(&f, &f.gets), 1);
    rs_registry_destroy(r);
    fake_stop(&f);
}

Test(registry, get_schema_errors)
{
    fake_t f;
    char err[512];
    const char *text = NULL;
    fake_start(&f);
    rs_registry_t *r = client(&f, NULL);
    cr_assert_eq(rs_registry_get_schema(r, 9, &text, err, sizeof(err)), RS_REGISTRY_ENOTFOUND);
    cr_assert(strstr(err, "HTTP 404, error_code 40403: Schema 9 not found") != NULL, "%s", err);
    cr_assert(strstr(err, "GET /schemas/ids/9") != NULL, "%s", err);
    cr_assert_eq(rs_registry_get_schema(r, 2, &text, err, sizeof(err)), RS_REGISTRY_EINVALID);
    cr_assert(strstr(err, "PROTOBUF schema, not Avro") != NULL, "%s", err);
    cr_assert_eq(rs_registry_get_schema(r, 8, &text, err, sizeof(err)), RS_REGISTRY_EIO);
    cr_assert(strstr(err, "reply over") != NULL, "%s", err);
    /* Failures are not cached: asking again asks the server again. */
    int before = count(&f, &f.gets);
    cr_assert_eq(rs_registry_get_schema(r, 9, &text, err, sizeof(err)), RS_REGISTRY_ENOTFOUND);
    cr_assert_eq(count(&f, &f.gets), before + 1);
    rs_registry_destroy(r);
    fake_stop(&f);
}

Test(registry, register_posts_the_schema_with_auth)
{
    fake_t f;
    char err[512];
    int32_t id = -1, id2 = -1;
    const char *text = NULL;
    const char *schema = rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE);
    fake_start(&f);
    rs_registry_t *r = client(&f, "svc:" SECRET "@");
    cr_assert_eq(rs_registry_register(r, "usage-value", schema, &id, err, sizeof(err)),
                 RS_REGISTRY_OK, "%s", err);
    cr_assert_eq(id, 42);
    cr_assert_str_eq(f.content_type, RS_REGISTRY_CONTENT_TYPE);
    cr_assert_str_eq(f.posted_schema, schema, "the body is {\"schema\": <the text>}");
    /* The same subject and text again: cached, no second POST; its text is cached too. */
    cr_assert_eq(rs_registry_register(r, "usage-value", schema, &id2, err, sizeof(err)),
                 RS_REGISTRY_OK);
    cr_assert_eq(id2, 42);
    cr_assert_eq(count(&f, &f.posts), 1);
    cr_assert_eq(rs_registry_get_schema(r, 42, &text, err, sizeof(err)), RS_REGISTRY_OK);
    cr_assert_str_eq(text, schema);
    cr_assert_eq(count(&f, &f.gets), 0);
    cr_assert(strstr(rs_registry_describe(r), SECRET) == NULL, "%s", rs_registry_describe(r));
    cr_assert(strstr(rs_registry_describe(r), "svc") == NULL, "%s", rs_registry_describe(r));
    rs_registry_destroy(r);

    /* Credentials given as options rather than in the URL work the same. */
    char url[128];
    rs_registry_t *r2 = NULL;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)f.port);
    rs_registry_options_t o = {.url = url, .username = "svc", .password = SECRET};
    cr_assert_eq(rs_registry_new(&r2, &o, err, sizeof(err)), RS_REGISTRY_OK, "%s", err);
    cr_assert_eq(rs_registry_register(r2, "usage-value", schema, &id, err, sizeof(err)),
                 RS_REGISTRY_OK, "%s", err);
    cr_assert_eq(id, 42);
    rs_registry_destroy(r2);
    fake_stop(&f);
}

Test(registry, register_errors_never_show_the_password)
{
    fake_t f;
    char err[512];
    int32_t id = -1;
    const char *schema = rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE);
    fake_start(&f);
    rs_registry_t *r = client(&f, "svc:" SECRET "@");
    cr_assert_eq(rs_registry_register(r, "incompat-value", schema, &id, err, sizeof(err)),
                 RS_REGISTRY_EINVALID);
    cr_assert(
        strstr(err, "HTTP 409, error_code 409: Schema being registered is incompatible") !=
            NULL,
        "%s", err);
    cr_assert(strstr(err, SECRET) == NULL, "%s", err);
    cr_assert_eq(rs_registry_register(r, "bad-value", schema, &id, err, sizeof(err)),
                 RS_REGISTRY_EINVALID);
    cr_assert(strstr(err, "error_code 42201: Invalid schema?line 2") != NULL,
              "control bytes from the server are replaced: %s", err);
    cr_assert_eq(rs_registry_register(r, "usage-value", NULL, &id, err, sizeof(err)),
                 RS_REGISTRY_EINVALID);
    rs_registry_destroy(r);

    /* Wrong password: 401, and the password is still not in the message. */
    r = client(&f, "svc:wrong-" SECRET "@");
    cr_assert_eq(rs_registry_register(r, "usage-value", schema, &id, err, sizeof(err)),
                 RS_REGISTRY_EIO);
    cr_assert(strstr(err, "HTTP 401") != NULL, "%s", err);
    cr_assert(strstr(err, SECRET) == NULL, "%s", err);
    rs_registry_destroy(r);
    fake_stop(&f);

    /* Nobody listening (the server is gone): a transport error. */
    char url[128];
    snprintf(url, sizeof(url), "http://svc:%s@127.0.0.1:%u", SECRET, (unsigned)f.port);
    rs_registry_options_t o = {.url = url, .timeout_ms = 2000};
    cr_assert_eq(rs_registry_new(&r, &o, err, sizeof(err)), RS_REGISTRY_OK, "%s", err);
    const char *text;
    cr_assert_eq(rs_registry_get_schema(r, 1, &text, err, sizeof(err)), RS_REGISTRY_EIO);
    cr_assert(strstr(err, "schema registry http://127.0.0.1:") != NULL, "%s", err);
    cr_assert(strstr(err, SECRET) == NULL, "%s", err);
    rs_registry_destroy(r);
}

Test(registry, bad_urls)
{
    char err[512];
    rs_registry_t *r = NULL;
    const char *bad[] = {"ftp://u:" SECRET "@host/", "not a url " SECRET, ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rs_registry_options_t o = {.url = bad[i]};
        cr_assert_eq(rs_registry_new(&r, &o, err, sizeof(err)), RS_REGISTRY_EINVALID, "%s",
                     bad[i]);
        cr_assert_null(r);
        cr_assert(strstr(err, SECRET) == NULL, "%s", err);
    }
    rs_registry_destroy(NULL);
}

Test(registry, lookup_hook_feeds_the_avro_cache)
{
    fake_t f;
    char err[512];
    rs_avro_cache_t *c = NULL;
    rs_event_t ev;
    void *buf;
    size_t len;
    fake_start(&f);
    rs_registry_t *r = client(&f, NULL);
    cr_assert_eq(rs_avro_cache_new(&c, err, sizeof(err)), RS_AVRO_OK);
    /* A producer's message with schema id 1, written by another cache. */
    rs_avro_cache_t *producer = NULL;
    cr_assert_eq(rs_avro_cache_new(&producer, err, sizeof(err)), RS_AVRO_OK);
    cr_assert_eq(rs_avro_cache_add(producer, 1, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE), err,
                                   sizeof(err)),
                 RS_AVRO_OK);
    rs_event_init(&ev);
    ev.type = RS_EV_USAGE_RECORDED;
    snprintf(ev.event_id, sizeof(ev.event_id), "U-9");
    snprintf(ev.contract_id, sizeof(ev.contract_id), "C-1");
    snprintf(ev.occurred_at, sizeof(ev.occurred_at), "2026-03-05T10:00:00Z");
    ev.occurred_on = rs_date_from_ymd(2026, 3, 5);
    snprintf(ev.line_id, sizeof(ev.line_id), "L-2");
    ev.quantity = (rs_decimal_t){125, 1};
    cr_assert_eq(rs_avro_encode_event(producer, 1, &ev, &buf, &len, err, sizeof(err)),
                 RS_AVRO_OK, "%s", err);

    rs_event_t out;
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &out, err, sizeof(err)),
                 RS_AVRO_EUNKNOWN_ID);
    rs_avro_cache_set_lookup(c, rs_registry_lookup, r);
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &out, err, sizeof(err)), RS_AVRO_OK, "%s",
                 err);
    cr_assert_eq(rs_event_hash(&out), rs_event_hash(&ev));
    rs_event_clear(&out);
    cr_assert_eq(count(&f, &f.gets), 1);
    /* An id the registry does not have is "unknown", with its reason. */
    ((uint8_t *)buf)[4] = 9;
    cr_assert_eq(rs_avro_decode_event(c, buf, len, &out, err, sizeof(err)),
                 RS_AVRO_EUNKNOWN_ID);
    cr_assert(strstr(err, "40403") != NULL, "%s", err);
    free(buf);
    rs_avro_cache_destroy(producer);
    rs_avro_cache_destroy(c);
    rs_registry_destroy(r);
    fake_stop(&f);
}

/* ---- local mode ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char *path;
    cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    free(path);
}

static char *temp_dir(void)
{
    char *tmpl = strdup("/tmp/rs_registry_test_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpl));
    return tmpl;
}

static void remove_tree(const char *dir)
{
    char *cmd;
    cr_assert(asprintf(&cmd, "rm -rf '%s'", dir) > 0);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
}

Test(registry_local, map_file_and_directory)
{
    char err[512];
    const char *text;
    int32_t id = -1;
    rs_registry_t *r = NULL;
    char *dir = temp_dir(), *sub, *map;
    cr_assert(asprintf(&sub, "%s/more", dir) > 0);
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_file(dir, "usage.avsc", rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE));
    write_file(dir, "contracts.avsc", rs_avro_schema_json(RS_AVRO_SCHEMA_CONTRACTS));
    write_file(sub, "extra.avsc", rs_avro_schema_json(RS_AVRO_SCHEMA_PAYMENTS));
    write_file(dir, "ids.properties",
               "# local ids\ncontracts = 1\n\nusage=4   # the hot one\n7=more/extra.avsc\n");

    cr_assert_eq(rs_registry_new_local(&r, dir, err, sizeof(err)), RS_REGISTRY_OK, "%s", err);
    cr_assert(strstr(rs_registry_describe(r), "local:") == rs_registry_describe(r));
    cr_assert_eq(rs_registry_get_schema(r, 4, &text, err, sizeof(err)), RS_REGISTRY_OK);
    cr_assert_str_eq(text, rs_avro_schema_json(RS_AVRO_SCHEMA_USAGE));
    cr_assert_eq(rs_registry_get_schema(r, 7, &text, err, sizeof(err)), RS_REGISTRY_OK);
    cr_assert_str_eq(text, rs_avro_schema_json(RS_AVRO_SCHEMA_PAYMENTS));
    cr_assert_eq(rs_registry_register(r, "usage-value", "{}", &id, err, sizeof(err)),
                 RS_REGISTRY_OK);
    cr_assert_eq(id, 4);
    cr_assert_eq(rs_registry_register(r, "contracts", "{}", &id, err, sizeof(err)),
                 RS_REGISTRY_OK);
    cr_assert_eq(id, 1);
    cr_assert_eq(rs_registry_register(r, "extra-value", "{}", &id, err, sizeof(err)),
                 RS_REGISTRY_OK);
    cr_assert_eq(id, 7);
    cr_assert_eq(rs_registry_register(r, "invoices-value", "{}", &id, err, sizeof(err)),
                 RS_REGISTRY_ENOTFOUND);
    cr_assert(strstr(err, "no subject invoices-value") != NULL, "%s", err);
    cr_assert_eq(rs_registry_get_schema(r, 5, &text, err, sizeof(err)), RS_REGISTRY_ENOTFOUND);
    cr_assert(strstr(err, "no schema id 5") != NULL, "%s", err);
    rs_registry_destroy(r);

    /* The map file itself works the same. */
    cr_assert(asprintf(&map, "%s/ids.properties", dir) > 0);
    cr_assert_eq(rs_registry_new_local(&r, map, err, sizeof(err)), RS_REGISTRY_OK, "%s", err);
    cr_assert_eq(rs_registry_get_schema(r, 1, &text, err, sizeof(err)), RS_REGISTRY_OK);
    cr_assert_str_eq(text, rs_avro_schema_json(RS_AVRO_SCHEMA_CONTRACTS));
    rs_registry_destroy(r);

    /* Errors name the file and line. */
    write_file(dir, "ids.properties", "usage=4\noops\n");
    cr_assert_eq(rs_registry_new_local(&r, dir, err, sizeof(err)), RS_REGISTRY_EINVALID);
    cr_assert(strstr(err, "line 2: expected <name>=<id> or <id>=<file.avsc>") != NULL, "%s",
              err);
    cr_assert_null(r);
    write_file(dir, "ids.properties", "usage=4\nmissing=5\n");
    cr_assert_eq(rs_registry_new_local(&r, dir, err, sizeof(err)), RS_REGISTRY_EIO);
    cr_assert(strstr(err, "line 2") && strstr(err, "missing.avsc"), "%s", err);
    write_file(dir, "ids.properties", "usage=4\n4=contracts.avsc\n");
    cr_assert_eq(rs_registry_new_local(&r, dir, err, sizeof(err)), RS_REGISTRY_EINVALID);
    cr_assert(strstr(err, "schema id 4 given twice") != NULL, "%s", err);
    write_file(dir, "broken.avsc", "{\"type\": ");
    write_file(dir, "ids.properties", "broken=3\n");
    cr_assert_eq(rs_registry_new_local(&r, dir, err, sizeof(err)), RS_REGISTRY_EINVALID);
    cr_assert(strstr(err, "is not JSON") != NULL, "%s", err);
    cr_assert_eq(rs_registry_new_local(&r, "/nonexistent/rs", err, sizeof(err)),
                 RS_REGISTRY_EIO);

    remove_tree(dir);
    free(map);
    free(sub);
    free(dir);
}

Test(registry_local, the_repository_schema_directory)
{
    char err[512];
    rs_registry_t *r = NULL;
    rs_avro_cache_t *c = NULL;
    cr_assert_eq(rs_registry_new_local(&r, RS_SOURCE_DIR "/schemas", err, sizeof(err)),
                 RS_REGISTRY_OK, "%s", err);
    cr_assert_eq(rs_avro_cache_new(&c, err, sizeof(err)), RS_AVRO_OK);
    rs_avro_cache_set_lookup(c, rs_registry_lookup, r);
    /* Every compiled-in schema has a subject in ids.properties, and the
     * file behind its id is the same schema (the cache accepts both). */
    for (int k = 0; k < RS_AVRO_SCHEMA__COUNT; k++) {
        char subject[64];
        int32_t id = -1;
        const char *text;
        snprintf(subject, sizeof(subject), "%s-value", rs_avro_schema_name(k));
        cr_assert_eq(
            rs_registry_register(r, subject, rs_avro_schema_json(k), &id, err, sizeof(err)),
            RS_REGISTRY_OK, "%s", err);
        cr_assert_eq(rs_registry_get_schema(r, id, &text, err, sizeof(err)), RS_REGISTRY_OK);
        cr_assert_eq(rs_avro_cache_add(c, id, text, err, sizeof(err)), RS_AVRO_OK, "%s", err);
        cr_assert_eq(rs_avro_cache_add(c, id, rs_avro_schema_json(k), err, sizeof(err)),
                     RS_AVRO_OK, "%s: the file and the compiled-in text differ: %s", subject,
                     err);
    }
    rs_avro_cache_destroy(c);
    rs_registry_destroy(r);
}
