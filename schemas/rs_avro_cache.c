/*
 * rs_avro_cache.c — the cache of writer schemas by id (rs_avro_cache_t):
 * adding an id, finding it (or asking the lookup hook), and the entry's
 * life. What an entry holds is in rs_avro_internal.h; its decoding side is
 * built in rs_avro_decode.c and its encoding side in rs_avro_encode.c. Also
 * the error helpers every file uses, and rs_avro_status_name().
 *
 * Invariants:
 *   - An id never changes meaning: adding an id again with a schema that
 *     parses equal is a no-op, with another one an error.
 *   - An entry is added whole or not at all: its text copy, parsed writer
 *     schema, scan program and top-level branch kinds are all built before
 *     it is stored.
 *   - c->last remembers the entry found last (consecutive messages mostly
 *     carry one id).
 *
 * Ownership: the cache owns its entries; an entry owns its schema text copy,
 * schemas, ifaces and values (released with avro_value_decref /
 * avro_value_iface_decref / avro_schema_decref in entry_free).
 */
#include "rs_avro.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro_internal.h"
#include "rs_codec_fields.h"

const char *rs_avro_status_name(int status)
{
    switch (status) {
    case RS_AVRO_OK:
        return "ok";
    case RS_AVRO_ECORRUPT:
        return "corrupt";
    case RS_AVRO_EUNKNOWN_ID:
        return "unknown schema id";
    case RS_AVRO_EINVALID:
        return "invalid event";
    case RS_AVRO_ESCHEMA:
        return "schema";
    case RS_AVRO_ENOMEM:
        return "out of memory";
    default:
        return "?";
    }
}

static void entry_free(rs_avro_entry_t *e)
{
    if (e == NULL)
        return;
    if (e->resolver != NULL) {
        avro_value_decref(&e->resolved);
        avro_value_iface_decref(e->resolver);
    }
    if (e->rclass != NULL) {
        if (e->rvalue.self != NULL)
            avro_value_decref(&e->rvalue);
        avro_value_iface_decref(e->rclass);
    }
    if (e->rschema != NULL)
        avro_schema_decref(e->rschema);
    if (e->wclass != NULL) {
        if (e->wvalue.self != NULL)
            avro_value_decref(&e->wvalue);
        avro_value_iface_decref(e->wclass);
    }
    if (e->wschema != NULL)
        avro_schema_decref(e->wschema);
    rs_avro_scan_free(&e->prog);
    free(e->dplans);
    rs_avro_read_plan_free(e->rplan);
    free(e->wbranch_kind);
    free(e->dec_error);
    free(e->enc_error);
    free(e->text);
    free(e);
}

/* Copy avro_strerror() now: it is one global buffer (see rs_avro.h). */
const char *rs_avro_why(void)
{
    const char *s = avro_strerror();
    return (s != NULL && *s != '\0') ? s : "unknown Avro error";
}

int rs_avro_cache_new(rs_avro_cache_t **out, char *errstr, size_t errlen)
{
    static const char empty[1] = {0};
    rs_avro_cache_t *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (c == NULL)
        goto nomem;
    c->reader = avro_reader_memory(empty, 0);
    c->writer = avro_writer_memory(empty, 0);
    c->dmemo.date = RS_DATE_NONE;
    c->dmemo.period[0] = c->dmemo.period[1] = RS_PERIOD_NONE;
    if (c->reader == NULL || c->writer == NULL)
        goto nomem;
    *out = c;
    return RS_AVRO_OK;
nomem:
    rs_avro_cache_destroy(c);
    snprintf(errstr, errlen, "avro cache: out of memory");
    return RS_AVRO_ENOMEM;
}

void rs_avro_cache_destroy(rs_avro_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        entry_free(c->entries[i]);
    free(c->entries);
    if (c->reader != NULL)
        avro_reader_free(c->reader);
    if (c->writer != NULL)
        avro_writer_free(c->writer);
    free(c->dbuf);
    rs_avro_read_state_free(c->rstate);
    free(c);
}

void rs_avro_cache_set_direct(rs_avro_cache_t *c, int on)
{
    c->generic_only = !on;
}

uint64_t rs_avro_cache_direct_writes(const rs_avro_cache_t *c)
{
    return c->direct_writes;
}

void rs_avro_cache_set_direct_read(rs_avro_cache_t *c, int on)
{
    c->generic_read = !on;
}

uint64_t rs_avro_cache_direct_reads(const rs_avro_cache_t *c)
{
    return c->direct_reads;
}

void rs_avro_cache_set_lookup(rs_avro_cache_t *c, rs_avro_lookup_fn fn, void *opaque)
{
    c->lookup = fn;
    c->lookup_opaque = opaque;
}

static rs_avro_entry_t *find(const rs_avro_cache_t *c, int32_t id)
{
    if (c->last != NULL && c->last->id == id)
        return c->last;
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i]->id == id)
            return c->entries[i];
    return NULL;
}

int rs_avro_cache_has(const rs_avro_cache_t *c, int32_t id)
{
    return c != NULL && find(c, id) != NULL;
}

int rs_avro_cache_add(rs_avro_cache_t *c, int32_t id, const char *json_text, char *errstr,
                      size_t errlen)
{
    avro_schema_t s = NULL;
    rs_avro_entry_t *e = NULL;
    const char *why = NULL;
    int rc = RS_AVRO_ESCHEMA;

    if (json_text == NULL) {
        snprintf(errstr, errlen, "schema id %d: no schema text", (int)id);
        return RS_AVRO_ESCHEMA;
    }
    if (avro_schema_from_json_length(json_text, strlen(json_text), &s) != 0) {
        snprintf(errstr, errlen, "schema id %d: not a valid Avro schema: %s", (int)id,
                 rs_avro_why());
        return RS_AVRO_ESCHEMA;
    }
    rs_avro_entry_t *old = find(c, id);
    if (old != NULL) {
        int same = avro_schema_equal(old->wschema, s);
        avro_schema_decref(s);
        if (same)
            return RS_AVRO_OK;
        snprintf(errstr, errlen, "schema id %d is already registered with a different schema",
                 (int)id);
        return RS_AVRO_ESCHEMA;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL || (e->text = strdup(json_text)) == NULL)
        goto nomem;
    e->id = id;
    e->wschema = s;
    s = NULL;
    if (rs_avro_scan_compile(&e->prog, e->wschema, &why) != 0) {
        snprintf(errstr, errlen, "schema id %d: %s", (int)id, why);
        rc = strcmp(why, "out of memory") == 0 ? RS_AVRO_ENOMEM : RS_AVRO_ESCHEMA;
        goto fail;
    }
    if (avro_typeof(e->wschema) == AVRO_UNION) {
        e->n_wbranches = avro_schema_union_size(e->wschema);
        e->wbranch_kind = malloc(e->n_wbranches ? e->n_wbranches : 1);
        if (e->wbranch_kind == NULL)
            goto nomem;
        for (size_t i = 0; i < e->n_wbranches; i++) {
            avro_schema_t b = avro_schema_union_branch(e->wschema, (int)i);
            e->wbranch_kind[i] =
                (int8_t)(is_avro_record(b) ? rs_codec_record_kind(avro_schema_name(b)) : -1);
        }
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        rs_avro_entry_t **ne = realloc(c->entries, cap * sizeof(*ne));
        if (ne == NULL)
            goto nomem;
        c->entries = ne;
        c->cap = cap;
    }
    c->entries[c->n++] = e;
    return RS_AVRO_OK;
nomem:
    snprintf(errstr, errlen, "schema id %d: out of memory", (int)id);
    rc = RS_AVRO_ENOMEM;
fail:
    if (s != NULL)
        avro_schema_decref(s);
    entry_free(e);
    return rc;
}

/* The entry for `id`, asking the lookup hook when it is not cached. */
int rs_avro_entry_get(rs_avro_cache_t *c, int32_t id, rs_avro_entry_t **out, char *errstr,
                      size_t errlen)
{
    rs_avro_entry_t *e = find(c, id);
    if (e == NULL) {
        char *text = NULL;
        char why[256] = "";
        if (c->lookup == NULL) {
            snprintf(errstr, errlen, "avro message: unknown schema id %d", (int)id);
            return RS_AVRO_EUNKNOWN_ID;
        }
        if (c->lookup(c->lookup_opaque, id, &text, why, sizeof(why)) != 0 || text == NULL) {
            free(text);
            snprintf(errstr, errlen, "avro message: unknown schema id %d: %s", (int)id, why);
            return RS_AVRO_EUNKNOWN_ID;
        }
        int rc = rs_avro_cache_add(c, id, text, errstr, errlen);
        free(text);
        if (rc != RS_AVRO_OK)
            return rc;
        e = find(c, id);
    }
    c->last = e;
    *out = e;
    return RS_AVRO_OK;
}

int rs_avro_remember_error(char **slot, int *state, const char *msg)
{
    *state = -1;
    *slot = strdup(msg);
    return *slot == NULL ? RS_AVRO_ENOMEM : RS_AVRO_ESCHEMA;
}
