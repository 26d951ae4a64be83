/*
 * rs_registry.c — the Schema Registry client and the local schema map. The
 * contract is in rs_registry.h; this comment says how the file keeps it.
 *
 * Invariants:
 *   - r->base is the registry URL with user, password, query and fragment
 *     removed and no trailing '/'; r->describe is the same text (or
 *     "local:<path>"). Only these two ever reach errstr, never r->user or
 *     r->pass, which are handed to libcurl as CURLOPT_USERNAME/PASSWORD.
 *   - One curl easy handle per client, reset before each request (so no
 *     option leaks from one request into the next) but kept, so its
 *     connection is reused.
 *   - The caches are append-only arrays: texts handed out by
 *     rs_registry_get_schema stay valid until destroy.
 *   - Text quoted from a server reply is cut to QUOTE_MAX bytes and control
 *     bytes are replaced, so errstr stays one printable line.
 *   - The local map's text is read by rs_props (workers/base) with trailing
 *     '#' comments; its line numbers count every line, blank ones too.
 *
 * Ownership: the client owns every string in it; jansson values and curl
 * header lists live only inside the function that made them.
 */
#define _GNU_SOURCE /* asprintf */
#include "rs_registry.h"
#include "rs_props.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QUOTE_MAX 200
#define DEFAULT_TIMEOUT_MS 10000

typedef struct schema_ent {
    int32_t id;
    char *text;
} schema_ent_t;

typedef struct subject_ent {
    char *subject; /* registry: the subject; local: the map name */
    char *text;    /* registry: the text registered; local: NULL */
    int32_t id;
} subject_ent_t;

struct rs_registry {
    int local;
    char *describe;
    char *base;
    char *user, *pass;
    long timeout_ms;
    CURL *curl;
    schema_ent_t *schemas;
    size_t n_schemas, cap_schemas;
    subject_ent_t *subjects;
    size_t n_subjects, cap_subjects;
};

/* ------------------------------------------------------------------------ */
/* Caches                                                                   */
/* ------------------------------------------------------------------------ */

static schema_ent_t *find_schema(const rs_registry_t *r, int32_t id)
{
    for (size_t i = 0; i < r->n_schemas; i++)
        if (r->schemas[i].id == id)
            return &r->schemas[i];
    return NULL;
}

/* Takes ownership of text (freed on failure). */
static int add_schema(rs_registry_t *r, int32_t id, char *text)
{
    if (r->n_schemas == r->cap_schemas) {
        size_t cap = r->cap_schemas ? r->cap_schemas * 2 : 8;
        schema_ent_t *n = realloc(r->schemas, cap * sizeof(*n));
        if (n == NULL) {
            free(text);
            return RS_REGISTRY_ENOMEM;
        }
        r->schemas = n;
        r->cap_schemas = cap;
    }
    r->schemas[r->n_schemas].id = id;
    r->schemas[r->n_schemas].text = text;
    r->n_schemas++;
    return RS_REGISTRY_OK;
}

/* Takes ownership of subject and text (freed on failure). */
static int add_subject(rs_registry_t *r, char *subject, char *text, int32_t id)
{
    if (r->n_subjects == r->cap_subjects) {
        size_t cap = r->cap_subjects ? r->cap_subjects * 2 : 8;
        subject_ent_t *n = realloc(r->subjects, cap * sizeof(*n));
        if (n == NULL) {
            free(subject);
            free(text);
            return RS_REGISTRY_ENOMEM;
        }
        r->subjects = n;
        r->cap_subjects = cap;
    }
    r->subjects[r->n_subjects++] = (subject_ent_t){subject, text, id};
    return RS_REGISTRY_OK;
}

void rs_registry_destroy(rs_registry_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_schemas; i++)
        free(r->schemas[i].text);
    for (size_t i = 0; i < r->n_subjects; i++) {
        free(r->subjects[i].subject);
        free(r->subjects[i].text);
    }
    free(r->schemas);
    free(r->subjects);
    if (r->curl != NULL)
        curl_easy_cleanup(r->curl);
    if (r->pass != NULL) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = r->pass;
        while (*p)
            *p++ = 0;
    }
    free(r->user);
    free(r->pass);
    free(r->base);
    free(r->describe);
    free(r);
}

const char *rs_registry_describe(const rs_registry_t *r)
{
    return r ? r->describe : "(none)";
}

/* ------------------------------------------------------------------------ */
/* Registry mode                                                            */
/* ------------------------------------------------------------------------ */

/* *dst = a copy of s, or NULL when s is NULL or empty. -1 on ENOMEM. */
static int dup_or_null(char **dst, const char *s)
{
    *dst = (s != NULL && *s != '\0') ? strdup(s) : NULL;
    return (s != NULL && *s != '\0' && *dst == NULL) ? -1 : 0;
}

int rs_registry_new(rs_registry_t **out, const rs_registry_options_t *opts, char *errstr,
                    size_t errlen)
{
    rs_registry_t *r = NULL;
    CURLU *u = NULL;
    char *scheme = NULL, *user = NULL, *pass = NULL, *clean = NULL;
    int rc = RS_REGISTRY_EINVALID;

    *out = NULL;
    if (opts == NULL || opts->url == NULL || *opts->url == '\0') {
        snprintf(errstr, errlen, "schema registry: no URL");
        return RS_REGISTRY_EINVALID;
    }
    r = calloc(1, sizeof(*r));
    u = curl_url();
    if (r == NULL || u == NULL)
        goto nomem;
    /* Never quote the URL here: it may hold a password. */
    if (curl_url_set(u, CURLUPART_URL, opts->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(errstr, errlen, "schema registry: the URL is not a valid http(s) URL");
        goto fail;
    }
    curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE);
    if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &clean, 0) != CURLUE_OK)
        goto nomem;
    size_t n = strlen(clean);
    while (n > 0 && clean[n - 1] == '/')
        clean[--n] = '\0';
    r->base = strdup(clean);
    r->describe = strdup(clean);
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->curl = curl_easy_init();
    if (r->base == NULL || r->describe == NULL || r->curl == NULL ||
        dup_or_null(&r->user, opts->username ? opts->username : user) != 0 ||
        dup_or_null(&r->pass, opts->username ? opts->password : pass) != 0)
        goto nomem;
    *out = r;
    r = NULL;
    rc = RS_REGISTRY_OK;
    goto done;
nomem:
    snprintf(errstr, errlen, "schema registry: out of memory");
    rc = RS_REGISTRY_ENOMEM;
fail:
done:
    if (pass != NULL) {
        volatile char *p = pass;
        while (*p)
            *p++ = 0;
    }
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(clean);
    curl_url_cleanup(u);
    rs_registry_destroy(r);
    return rc;
}

typedef struct body {
    char *data;
    size_t len, cap;
    int too_big;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    body_t *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > (size_t)RS_REGISTRY_MAX_BODY) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Copy server text into dst as one printable line of at most QUOTE_MAX bytes. */
static void sanitize(char *dst, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i + 1 < cap && i < QUOTE_MAX; i++)
        dst[i] = (char)(((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i]);
    dst[i] = '\0';
}

static int status_for_http(long http)
{
    if (http == 404)
        return RS_REGISTRY_ENOTFOUND;
    if (http == 400 || http == 409 || http == 422)
        return RS_REGISTRY_EINVALID;
    return RS_REGISTRY_EIO;
}

/* "schema registry <base>: <what>: HTTP <n>[, error_code <c>]: <message>" */
static int http_error(const rs_registry_t *r, const char *what, long http, const body_t *b,
                      char *errstr, size_t errlen)
{
    char msg[QUOTE_MAX + 1] = "";
    json_t *j = b->data ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    json_t *code = json_object_get(j, "error_code");
    json_t *text = json_object_get(j, "message");
    if (json_is_string(text))
        sanitize(msg, sizeof(msg), json_string_value(text));
    else if (b->data != NULL && j == NULL)
        sanitize(msg, sizeof(msg), b->data);
    if (json_is_integer(code))
        snprintf(errstr, errlen, "schema registry %s: %s: HTTP %ld, error_code %lld: %s",
                 r->describe, what, http, (long long)json_integer_value(code), msg);
    else
        snprintf(errstr, errlen, "schema registry %s: %s: HTTP %ld%s%s", r->describe, what,
                 http, msg[0] ? ": " : "", msg);
    json_decref(j);
    return status_for_http(http);
}

/* One request. On RS_REGISTRY_OK *http is the status and b the body (any
 * status); transport failures are RS_REGISTRY_EIO. */
static int request(rs_registry_t *r, const char *what, const char *path, const char *post,
                   long *http, body_t *b, char *errstr, size_t errlen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL, *h;
    char *url = NULL;
    int rc = RS_REGISTRY_OK;

    if (asprintf(&url, "%s%s", r->base, path) < 0) {
        url = NULL;
        goto nomem;
    }
    h = curl_slist_append(hdrs, "Accept: " RS_REGISTRY_CONTENT_TYPE
                                ", application/vnd.schemaregistry+json, application/json");
    if (h == NULL)
        goto nomem;
    hdrs = h;
    if (post != NULL) {
        h = curl_slist_append(hdrs, "Content-Type: " RS_REGISTRY_CONTENT_TYPE);
        if (h == NULL)
            goto nomem;
        hdrs = h;
    }
    curl_easy_reset(r->curl);
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "revstream");
    if (r->user != NULL) {
        curl_easy_setopt(r->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(r->curl, CURLOPT_USERNAME, r->user);
        curl_easy_setopt(r->curl, CURLOPT_PASSWORD, r->pass ? r->pass : "");
    }
    if (post != NULL) {
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(post));
    }
    CURLcode cc = curl_easy_perform(r->curl);
    if (cc != CURLE_OK) {
        if (b->too_big)
            snprintf(errstr, errlen, "schema registry %s: %s: reply over %d bytes", r->describe,
                     what, RS_REGISTRY_MAX_BODY);
        else
            snprintf(errstr, errlen, "schema registry %s: %s: %s", r->describe, what,
                     errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = cc == CURLE_OUT_OF_MEMORY ? RS_REGISTRY_ENOMEM : RS_REGISTRY_EIO;
        goto done;
    }
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, http);
    goto done;
nomem:
    snprintf(errstr, errlen, "schema registry %s: %s: out of memory", r->describe, what);
    rc = RS_REGISTRY_ENOMEM;
done:
    /* The handle keeps pointers to these: drop them before freeing. */
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    free(url);
    return rc;
}

int rs_registry_get_schema(rs_registry_t *r, int32_t id, const char **schema_json, char *errstr,
                           size_t errlen)
{
    body_t b = {0};
    json_t *j = NULL;
    char what[64], path[64];
    long http = 0;
    int rc;

    schema_ent_t *hit = find_schema(r, id);
    if (hit != NULL) {
        *schema_json = hit->text;
        return RS_REGISTRY_OK;
    }
    if (r->local) {
        snprintf(errstr, errlen, "schema map %s has no schema id %d", r->describe, (int)id);
        return RS_REGISTRY_ENOTFOUND;
    }
    snprintf(what, sizeof(what), "GET /schemas/ids/%d", (int)id);
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    if ((rc = request(r, what, path, NULL, &http, &b, errstr, errlen)) != RS_REGISTRY_OK)
        goto out;
    if (http != 200) {
        rc = http_error(r, what, http, &b, errstr, errlen);
        goto out;
    }
    j = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    json_t *schema = json_object_get(j, "schema");
    json_t *type = json_object_get(j, "schemaType");
    if (!json_is_string(schema)) {
        snprintf(errstr, errlen, "schema registry %s: %s: reply has no \"schema\" string",
                 r->describe, what);
        rc = RS_REGISTRY_EIO;
        goto out;
    }
    if (type != NULL &&
        !(json_is_string(type) && strcmp(json_string_value(type), "AVRO") == 0)) {
        char t[QUOTE_MAX + 1];
        sanitize(t, sizeof(t), json_is_string(type) ? json_string_value(type) : "?");
        snprintf(errstr, errlen, "schema registry %s: schema id %d is a %s schema, not Avro",
                 r->describe, (int)id, t);
        rc = RS_REGISTRY_EINVALID;
        goto out;
    }
    char *text = strdup(json_string_value(schema));
    if (text == NULL || (rc = add_schema(r, id, text)) != RS_REGISTRY_OK) {
        snprintf(errstr, errlen, "schema registry: out of memory");
        rc = RS_REGISTRY_ENOMEM;
        goto out;
    }
    *schema_json = r->schemas[r->n_schemas - 1].text;
out:
    json_decref(j);
    free(b.data);
    return rc;
}

/* The map entry for `subject`: its name, or its name + "-value". */
static const subject_ent_t *find_local_subject(const rs_registry_t *r, const char *subject)
{
    for (size_t i = 0; i < r->n_subjects; i++) {
        const char *name = r->subjects[i].subject;
        size_t n = strlen(name);
        if (strcmp(subject, name) == 0 ||
            (strncmp(subject, name, n) == 0 && strcmp(subject + n, "-value") == 0))
            return &r->subjects[i];
    }
    return NULL;
}

int rs_registry_register(rs_registry_t *r, const char *subject, const char *schema_json,
                         int32_t *id, char *errstr, size_t errlen)
{
    body_t b = {0};
    json_t *req = NULL, *j = NULL;
    char *post = NULL, *esc = NULL, *path = NULL;
    char what[QUOTE_MAX + 64];
    long http = 0;
    int rc;

    if (subject == NULL || *subject == '\0' || schema_json == NULL) {
        snprintf(errstr, errlen, "schema registry: register needs a subject and a schema");
        return RS_REGISTRY_EINVALID;
    }
    if (r->local) {
        const subject_ent_t *s = find_local_subject(r, subject);
        if (s == NULL) {
            char q[QUOTE_MAX + 1];
            sanitize(q, sizeof(q), subject);
            snprintf(errstr, errlen, "schema map %s has no subject %s", r->describe, q);
            return RS_REGISTRY_ENOTFOUND;
        }
        *id = s->id;
        return RS_REGISTRY_OK;
    }
    for (size_t i = 0; i < r->n_subjects; i++)
        if (strcmp(r->subjects[i].subject, subject) == 0 &&
            strcmp(r->subjects[i].text, schema_json) == 0) {
            *id = r->subjects[i].id;
            return RS_REGISTRY_OK;
        }

    char q[QUOTE_MAX + 1];
    sanitize(q, sizeof(q), subject);
    snprintf(what, sizeof(what), "POST /subjects/%s/versions", q);
    req = json_pack("{s:s}", "schema", schema_json);
    post = req ? json_dumps(req, JSON_COMPACT) : NULL;
    esc = curl_easy_escape(r->curl, subject, 0);
    if (post == NULL || esc == NULL || asprintf(&path, "/subjects/%s/versions", esc) < 0) {
        path = NULL;
        snprintf(errstr, errlen, "schema registry: out of memory (or the schema is not UTF-8)");
        rc = RS_REGISTRY_ENOMEM;
        goto out;
    }
    if ((rc = request(r, what, path, post, &http, &b, errstr, errlen)) != RS_REGISTRY_OK)
        goto out;
    if (http != 200) {
        rc = http_error(r, what, http, &b, errstr, errlen);
        goto out;
    }
    j = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    json_t *jid = json_object_get(j, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > INT32_MAX) {
        snprintf(errstr, errlen, "schema registry %s: %s: reply has no valid \"id\"",
                 r->describe, what);
        rc = RS_REGISTRY_EIO;
        goto out;
    }
    *id = (int32_t)json_integer_value(jid);
    char *s1 = strdup(subject), *t1 = strdup(schema_json);
    if (s1 == NULL || t1 == NULL) {
        free(s1);
        free(t1);
        goto out; /* the id is right; caching it is optional */
    }
    add_subject(r, s1, t1, *id);
    if (find_schema(r, *id) == NULL) {
        char *t2 = strdup(schema_json);
        if (t2 != NULL)
            add_schema(r, *id, t2);
    }
out:
    json_decref(req);
    json_decref(j);
    free(post);
    curl_free(esc);
    free(path);
    free(b.data);
    return rc;
}

int rs_registry_lookup(void *opaque, int32_t id, char **json_text, char *errstr, size_t errlen)
{
    const char *text;
    if (rs_registry_get_schema(opaque, id, &text, errstr, errlen) != RS_REGISTRY_OK)
        return -1;
    *json_text = strdup(text);
    if (*json_text == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Local mode                                                               */
/* ------------------------------------------------------------------------ */

/* A schema id: decimal digits, 0..INT32_MAX. */
static int parse_id(const char *s, int32_t *out)
{
    if (*s == '\0' || strlen(s) > 10)
        return -1;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > INT32_MAX)
        return -1;
    *out = (int32_t)v;
    return 0;
}

static int read_file(const char *path, char **out)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL)
        return -1;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (size_t)RS_REGISTRY_MAX_BODY) {
                errno = EFBIG;
                goto fail;
            }
            char *n = realloc(buf, cap);
            if (n == NULL)
                goto fail;
            buf = n;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) {
            if (ferror(f))
                goto fail;
            break;
        }
    }
    buf[len] = '\0';
    fclose(f);
    *out = buf;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

/* The map file being read (rs_props_fn context). */
typedef struct map_ctx {
    rs_registry_t *r;
    const char *map, *dir;
    char *errstr;
    size_t errlen;
    int rc; /* the failure's status */
} map_ctx_t;

/* rs_props_fn: one line of the map, `<name>=<id>` or `<id>=<path.avsc>`.
 * 0, or 1 with x->rc and errstr set. */
static int map_line(void *opaque, int lineno, char *key, char *val)
{
    map_ctx_t *x = opaque;
    rs_registry_t *r = x->r;
    char *file = NULL, *name = NULL, *schema = NULL;
    int32_t id;
    int rc = 1;

    x->rc = RS_REGISTRY_EINVALID;
    if (val == NULL)
        goto syntax;
    if (parse_id(key, &id) == 0 && *val != '\0') {
        /* <id>=<path.avsc> */
        if (val[0] == '/' ? (file = strdup(val)) == NULL
                          : asprintf(&file, "%s/%s", x->dir, val) < 0) {
            file = NULL;
            goto nomem;
        }
        const char *base = strrchr(val, '/') ? strrchr(val, '/') + 1 : val;
        size_t n = strlen(base);
        if (n > 5 && strcmp(base + n - 5, ".avsc") == 0)
            n -= 5;
        name = strndup(base, n);
    } else if (parse_id(val, &id) == 0 && *key != '\0') {
        /* <name>=<id> */
        if (asprintf(&file, "%s/%s.avsc", x->dir, key) < 0) {
            file = NULL;
            goto nomem;
        }
        name = strdup(key);
    } else {
        goto syntax;
    }
    if (name == NULL)
        goto nomem;
    if (find_schema(r, id) != NULL) {
        snprintf(x->errstr, x->errlen, "schema map %s line %d: schema id %d given twice",
                 x->map, lineno, (int)id);
        goto exit;
    }
    if (read_file(file, &schema) != 0) {
        snprintf(x->errstr, x->errlen, "schema map %s line %d: %s: %s", x->map, lineno, file,
                 strerror(errno));
        x->rc = RS_REGISTRY_EIO;
        goto exit;
    }
    json_t *check = json_loads(schema, JSON_DECODE_ANY, NULL);
    if (check == NULL) {
        snprintf(x->errstr, x->errlen, "schema map %s line %d: %s is not JSON", x->map, lineno,
                 file);
        goto exit;
    }
    json_decref(check);
    int added = add_schema(r, id, schema); /* takes schema */
    schema = NULL;
    if (added != RS_REGISTRY_OK)
        goto nomem;
    added = add_subject(r, name, NULL, id); /* takes name */
    name = NULL;
    if (added != RS_REGISTRY_OK)
        goto nomem;
    rc = 0;
    goto exit;
syntax:
    snprintf(x->errstr, x->errlen,
             "schema map %s line %d: expected <name>=<id> or <id>=<file.avsc>", x->map, lineno);
    goto exit;
nomem:
    snprintf(x->errstr, x->errlen, "schema map: out of memory");
    x->rc = RS_REGISTRY_ENOMEM;
exit:
    free(schema);
    free(name);
    free(file);
    return rc;
}

int rs_registry_new_local(rs_registry_t **out, const char *path, char *errstr, size_t errlen)
{
    rs_registry_t *r = NULL;
    char *map = NULL, *dir = NULL, *text = NULL;
    struct stat st;
    int rc = RS_REGISTRY_EINVALID;

    *out = NULL;
    if (path == NULL || stat(path, &st) != 0) {
        snprintf(errstr, errlen, "schema map %s: %s", path ? path : "(none)",
                 path ? strerror(errno) : "no path");
        return RS_REGISTRY_EIO;
    }
    if (S_ISDIR(st.st_mode)) {
        if (asprintf(&map, "%s/ids.properties", path) < 0)
            map = NULL;
        dir = strdup(path);
    } else {
        map = strdup(path);
        const char *slash = strrchr(path, '/');
        dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    }
    r = calloc(1, sizeof(*r));
    if (map == NULL || dir == NULL || r == NULL)
        goto nomem;
    r->local = 1;
    if (asprintf(&r->describe, "local:%s", map) < 0) {
        r->describe = NULL;
        goto nomem;
    }
    if (read_file(map, &text) != 0) {
        snprintf(errstr, errlen, "schema map %s: %s", map, strerror(errno));
        rc = RS_REGISTRY_EIO;
        goto exit;
    }
    map_ctx_t x = {r, map, dir, errstr, errlen, RS_REGISTRY_OK};
    int prc = rs_props_parse(text, RS_PROPS_TRAILING_COMMENTS, map_line, &x);
    if (prc == RS_PROPS_ENOMEM)
        goto nomem;
    if (prc != 0) {
        rc = x.rc;
        goto exit;
    }
    *out = r;
    r = NULL;
    rc = RS_REGISTRY_OK;
    goto exit;
nomem:
    snprintf(errstr, errlen, "schema map: out of memory");
    rc = RS_REGISTRY_ENOMEM;
exit:
    free(text);
    free(map);
    free(dir);
    rs_registry_destroy(r);
    return rc;
}
