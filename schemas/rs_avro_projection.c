/*
 * rs_avro_projection.c — the reader schema for a writer schema, built with
 * jansson over the two schema texts: revstream's event records
 * (rs_avro_reader_text) cut down to the ones the writer has, each record
 * without the optional fields the writer lacks.
 *
 * Why: Avro C 1.11.1 cannot fill reader defaults, so a reader field the
 * writer does not send must not be in the reader at all.
 *
 * Invariants:
 *   - Records match by simple name (the namespace never changes): the result
 *     is the union of our event records the writer has at its top level, in
 *     event-type order, or the one record when the writer is a record;
 *     branch_type[i] is the event type of result branch i.
 *   - Only fields with a default (the optional ones) are dropped, and only
 *     when the writer's record of the same name lacks them; a required field
 *     the writer lacks stays, and resolving the two fails later.
 *   - A named type is defined where it is first used in the result and
 *     referenced by name after that, so the result is a valid schema
 *     whichever records were cut.
 *   - jansson values live only inside rs_avro_projected_reader(); the result
 *     text is malloc'd (json_dumps) and the caller free()s it.
 */
#include "rs_avro.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_avro_internal.h"
#include "rs_codec_fields.h"

static const char *simple_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot ? dot + 1 : n;
}

static int is_named_type(const char *t)
{
    return strcmp(t, "record") == 0 || strcmp(t, "error") == 0 || strcmp(t, "enum") == 0 ||
           strcmp(t, "fixed") == 0;
}

/* Collect every named definition in `node`: defs[simple name] = definition,
 * and for records also fields[simple name] = {field name: true}. */
static int collect(json_t *node, json_t *defs, json_t *fields, int depth)
{
    if (depth > RS_AVRO_MAX_DEPTH)
        return -1;
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (collect(v, defs, fields, depth + 1) < 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    json_t *type = json_object_get(node, "type");
    if (json_is_string(type) && is_named_type(json_string_value(type))) {
        json_t *name = json_object_get(node, "name");
        if (!json_is_string(name))
            return -1;
        const char *sn = simple_name(json_string_value(name));
        if (json_object_set(defs, sn, node) < 0)
            return -1;
        json_t *fl = json_object_get(node, "fields");
        if (json_is_array(fl)) {
            json_t *set = json_object();
            size_t i;
            json_t *f;
            if (set == NULL || json_object_set_new(fields, sn, set) < 0)
                return -1;
            json_array_foreach(fl, i, f)
            {
                json_t *fn = json_object_get(f, "name");
                if (!json_is_string(fn) ||
                    json_object_set(set, json_string_value(fn), json_true()) < 0)
                    return -1;
                if (collect(json_object_get(f, "type"), defs, fields, depth + 1) < 0)
                    return -1;
            }
        }
        return 0;
    }
    if (json_is_object(type) || json_is_array(type))
        return collect(type, defs, fields, depth + 1);
    if (collect(json_object_get(node, "items"), defs, fields, depth + 1) < 0)
        return -1;
    return collect(json_object_get(node, "values"), defs, fields, depth + 1);
}

typedef struct proj {
    json_t *defs;    /* ours: simple name -> definition */
    json_t *defined; /* simple names emitted so far */
    json_t *wfields; /* the writer's: simple record name -> {field: true} */
} proj_t;

/* A copy of our schema `node` in which a named type is defined where it is
 * first used, and each record drops the optional fields (those with a
 * default) that the writer's record of the same name lacks. */
static json_t *project(proj_t *pj, json_t *node, int depth)
{
    if (depth > RS_AVRO_MAX_DEPTH)
        return NULL;
    if (json_is_string(node)) {
        const char *sn = simple_name(json_string_value(node));
        json_t *def = json_object_get(pj->defs, sn);
        if (def != NULL && json_object_get(pj->defined, sn) == NULL)
            return project(pj, def, depth + 1);
        return json_incref(node);
    }
    if (json_is_array(node)) {
        json_t *out = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v)
        {
            if (out == NULL || json_array_append_new(out, project(pj, v, depth + 1)) < 0) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    if (!json_is_object(node))
        return NULL;
    json_t *type = json_object_get(node, "type");
    if (json_is_string(type) && is_named_type(json_string_value(type))) {
        const char *name = json_string_value(json_object_get(node, "name"));
        const char *sn = simple_name(name);
        if (json_object_get(pj->defined, sn) != NULL)
            return json_string(name);
        if (json_object_set(pj->defined, sn, json_true()) < 0)
            return NULL;
    }
    json_t *out = json_copy(node); /* shallow: members replaced below */
    if (out == NULL)
        return NULL;
    if (json_is_object(type) || json_is_array(type)) {
        if (json_object_set_new(out, "type", project(pj, type, depth + 1)) < 0)
            goto fail;
    }
    const char *keys[] = {"items", "values"};
    for (int k = 0; k < 2; k++) {
        json_t *sub = json_object_get(node, keys[k]);
        if (sub != NULL && json_object_set_new(out, keys[k], project(pj, sub, depth + 1)) < 0)
            goto fail;
    }
    json_t *fl = json_object_get(node, "fields");
    if (json_is_array(fl)) {
        const char *sn = simple_name(json_string_value(json_object_get(node, "name")));
        json_t *wset = json_object_get(pj->wfields, sn);
        json_t *nf = json_array();
        size_t i;
        json_t *f;
        if (nf == NULL || json_object_set_new(out, "fields", nf) < 0)
            goto fail;
        json_array_foreach(fl, i, f)
        {
            const char *fname = json_string_value(json_object_get(f, "name"));
            if (wset != NULL && json_object_get(wset, fname) == NULL &&
                json_object_get(f, "default") != NULL)
                continue; /* optional, and this writer never sends it */
            json_t *cf = json_copy(f);
            if (cf == NULL || json_array_append_new(nf, cf) < 0 ||
                json_object_set_new(cf, "type",
                                    project(pj, json_object_get(f, "type"), depth + 1)) < 0)
                goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* The reader for writer schema text `wtext`: the union of our event records
 * the writer has (in event-type order) or, for a writer that is one record,
 * that record. branch_type[i] receives the event type of reader branch i.
 * Returns a malloc'd schema text, or NULL with a reason in why. */
char *rs_avro_projected_reader(const char *wtext, rs_event_type_t branch_type[RS_RK__EVENTS],
                               int *n_branches, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *ours = json_loads(rs_avro_reader_text, 0, &jerr);
    json_t *writer = json_loads(wtext, JSON_DECODE_ANY, &jerr);
    proj_t pj = {json_object(), json_object(), json_object()};
    json_t *wdefs = json_object(), *top = NULL;
    char *text = NULL;

    *n_branches = 0;
    if (ours == NULL || pj.defs == NULL || pj.defined == NULL || pj.wfields == NULL ||
        wdefs == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    if (writer == NULL || collect(writer, wdefs, pj.wfields, 0) < 0) {
        snprintf(why, whylen, "not valid schema JSON");
        goto out;
    }
    json_t *our_fields = json_object();
    int crc = our_fields ? collect(ours, pj.defs, our_fields, 0) : -1;
    json_decref(our_fields);
    if (crc < 0) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    /* Which of our event records does the writer have at its top level? */
    int want[RS_RK__EVENTS] = {0};
    if (json_is_array(writer)) {
        size_t i;
        json_t *b;
        json_array_foreach(writer, i, b)
        {
            const char *n = json_is_string(b) ? json_string_value(b)
                                              : json_string_value(json_object_get(b, "name"));
            int k = n ? rs_codec_record_kind(simple_name(n)) : -1;
            if (k >= 0 && k < RS_RK__EVENTS)
                want[k] = 1;
        }
    } else if (json_is_object(writer)) {
        const char *n = json_string_value(json_object_get(writer, "name"));
        int k = n ? rs_codec_record_kind(simple_name(n)) : -1;
        if (k >= 0 && k < RS_RK__EVENTS)
            want[k] = 1;
    }
    int any = 0;
    for (int k = 0; k < RS_RK__EVENTS; k++)
        any |= want[k];
    if (!any) {
        snprintf(why, whylen,
                 "has none of revstream's event records (io.revstream.ContractBooked, ...)");
        goto out;
    }
    if (json_is_array(writer)) {
        top = json_array();
        for (int k = 0; top != NULL && k < RS_RK__EVENTS; k++) {
            if (!want[k])
                continue;
            json_t *p = project(&pj, json_array_get(ours, (size_t)k), 0);
            if (p == NULL || json_array_append_new(top, p) < 0) {
                json_decref(top);
                top = NULL;
                break;
            }
            branch_type[(*n_branches)++] = (rs_event_type_t)(k + 1);
        }
    } else {
        for (int k = 0; k < RS_RK__EVENTS; k++)
            if (want[k]) {
                top = project(&pj, json_array_get(ours, (size_t)k), 0);
                branch_type[(*n_branches)++] = (rs_event_type_t)(k + 1);
            }
    }
    if (top == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    text = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL)
        snprintf(why, whylen, "out of memory");
out:
    json_decref(top);
    json_decref(ours);
    json_decref(writer);
    json_decref(wdefs);
    json_decref(pj.defs);
    json_decref(pj.defined);
    json_decref(pj.wfields);
    return text;
}
