/*
 * rs_registry — where Avro writer schemas come from: a Confluent Schema
 * Registry over HTTP (libcurl + jansson), or a local map of schema files for
 * setups without one.
 *
 * Invariants:
 *   - Registry mode speaks the Confluent REST API with Content-Type
 *     application/vnd.schemaregistry.v1+json: GET /schemas/ids/{id} gives a
 *     schema's text, POST /subjects/{subject}/versions registers one and
 *     gives its id (the same schema again gives the same id). An error reply
 *     {"error_code", "message"} is quoted in errstr.
 *   - Every schema text fetched or registered is cached by id for the life
 *     of the client (ids never change meaning), and every (subject, text)
 *     registered is cached too: each is asked of the server at most once.
 *   - Local mode reads a map file once, at creation. Each line is either
 *     `<name>=<id>` (the schema is <name>.avsc next to the map file, its
 *     subject <name>-value or <name>) or `<id>=<path.avsc>` (path relative to
 *     the map file; subject from the file's stem). `#` starts a comment. A
 *     directory means its ids.properties. Registering a subject the map does
 *     not have is ENOTFOUND: local ids are fixed by the file.
 *   - Credentials (basic auth, from the options or the URL's user:password@)
 *     go only to libcurl; they never appear in errstr, in
 *     rs_registry_describe(), or in any log line. Redirects are not followed.
 *   - Response bodies are capped (RS_REGISTRY_MAX_BODY); only http and https.
 *
 * Ownership and threads: a client owns its curl handle, its cache and the
 * texts in it; rs_registry_get_schema() returns a text borrowed from the
 * cache (valid until destroy). A client is not thread-safe; use one per
 * thread. The process must have called curl_global_init() before creating
 * clients on several threads (libcurl's rule).
 */
#ifndef RS_REGISTRY_H
#define RS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#define RS_REGISTRY_MAX_BODY (8 * 1024 * 1024)
#define RS_REGISTRY_CONTENT_TYPE "application/vnd.schemaregistry.v1+json"

typedef enum rs_registry_status {
    RS_REGISTRY_OK = 0,
    RS_REGISTRY_EIO = -1,       /* transport, HTTP 401/403/5xx, unreadable reply: retry later */
    RS_REGISTRY_ENOTFOUND = -2, /* no such schema id or subject (HTTP 404, or not in the map) */
    RS_REGISTRY_EINVALID =
        -3, /* rejected: invalid or incompatible schema (409, 422), bad argument */
    RS_REGISTRY_ENOMEM = -4,
} rs_registry_status_t;

typedef struct rs_registry_options {
    const char *url;      /* "http://host:8081" (a path prefix is kept); may hold user:pw@ */
    const char *username; /* basic auth; NULL: from the URL, if any */
    const char *password;
    long timeout_ms; /* per request, connection included; <= 0: 10000 */
} rs_registry_options_t;

typedef struct rs_registry rs_registry_t;

/* A client of the registry at opts->url. Makes no request yet. */
int rs_registry_new(rs_registry_t **out, const rs_registry_options_t *opts, char *errstr,
                    size_t errlen);
/* A local map from `path` (a map file, or a directory with ids.properties). */
int rs_registry_new_local(rs_registry_t **out, const char *path, char *errstr, size_t errlen);
void rs_registry_destroy(rs_registry_t *r); /* accepts NULL */

/* "http://host:8081" without credentials, or "local:<path>": for logs. */
const char *rs_registry_describe(const rs_registry_t *r);

/* The schema text of `id` (borrowed from the cache). */
int rs_registry_get_schema(rs_registry_t *r, int32_t id, const char **schema_json, char *errstr,
                           size_t errlen);

/* Register `schema_json` under `subject` ("usage-value") and give its id. */
int rs_registry_register(rs_registry_t *r, const char *subject, const char *schema_json,
                         int32_t *id, char *errstr, size_t errlen);

/* An rs_avro_lookup_fn (rs_avro.h) over rs_registry_get_schema; opaque is
 * the rs_registry_t. Returns 0 with a malloc'd copy, or -1. */
int rs_registry_lookup(void *opaque, int32_t id, char **json_text, char *errstr, size_t errlen);

#endif
