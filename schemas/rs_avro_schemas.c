/*
 * rs_avro_schemas.c — the schemas compiled into the Avro codec: their texts,
 * names and kinds (rs_avro.h), the reader union every writer is read into,
 * and the field index tables (layouts) of a parsed schema.
 *
 * Invariants:
 *   - The texts are schemas/ *.avsc themselves, made compact and without the
 *     docs at build time (avsc_to_c.cmake -> rs_avro_schema_texts.h): there
 *     is no second copy to keep equal. rs_avro_schema_json() returns them as
 *     they are; they are what revstream registers.
 *   - rs_avro_reader_text is the union of every event record in event-type
 *     order: record kind k (RS_RK_*) is its branch k, event type k + 1.
 *   - A layout holds, per record kind revstream knows, the index of each of
 *     its field slots in one schema (-1: the schema lacks the field); each
 *     record schema is walked once however often it is referenced.
 */
#include "rs_avro.h"

#include <avro.h>
#include <stdint.h>
#include <string.h>

#include "rs_avro_internal.h"
#include "rs_avro_schema_texts.h" /* generated from the .avsc files */
#include "rs_codec_fields.h"

/* ------------------------------------------------------------------------ */
/* Schema texts                                                             */
/* ------------------------------------------------------------------------ */

static const char *const SCHEMA_TEXT[RS_AVRO_SCHEMA__COUNT] = {
    [RS_AVRO_SCHEMA_CONTRACTS] = RS_AVSC_CONTRACTS,
    [RS_AVRO_SCHEMA_INVOICES] = RS_AVSC_INVOICES,
    [RS_AVRO_SCHEMA_PAYMENTS] = RS_AVSC_PAYMENTS,
    [RS_AVRO_SCHEMA_USAGE] = RS_AVSC_USAGE,
    [RS_AVRO_SCHEMA_JOURNAL_ENTRY] = RS_AVSC_JOURNAL_ENTRY,
    [RS_AVRO_SCHEMA_DEFERRED_BALANCE] = RS_AVSC_DEFERRED_BALANCE,
    [RS_AVRO_SCHEMA_DEAD_LETTER] = RS_AVSC_DEAD_LETTER,
};

static const char *const SCHEMA_NAME[RS_AVRO_SCHEMA__COUNT] = {
    [RS_AVRO_SCHEMA_CONTRACTS] = "contracts",
    [RS_AVRO_SCHEMA_INVOICES] = "invoices",
    [RS_AVRO_SCHEMA_PAYMENTS] = "payments",
    [RS_AVRO_SCHEMA_USAGE] = "usage",
    [RS_AVRO_SCHEMA_JOURNAL_ENTRY] = "journal_entry",
    [RS_AVRO_SCHEMA_DEFERRED_BALANCE] = "deferred_balance",
    [RS_AVRO_SCHEMA_DEAD_LETTER] = "dead_letter",
};

/* Every event record, branch i being event type i + 1. */
const char rs_avro_reader_text[] = "[" RS_AVSC_CONTRACTS_BRANCHES "," RS_AVSC_INVOICES_BRANCHES
                                   "," RS_AVSC_PAYMENTS_BRANCHES "," RS_AVSC_USAGE_BRANCHES "]";

const char *rs_avro_schema_json(rs_avro_schema_kind_t kind)
{
    if ((int)kind < 0 || kind >= RS_AVRO_SCHEMA__COUNT)
        return NULL;
    return SCHEMA_TEXT[kind];
}

const char *rs_avro_schema_name(rs_avro_schema_kind_t kind)
{
    if ((int)kind < 0 || kind >= RS_AVRO_SCHEMA__COUNT)
        return NULL;
    return SCHEMA_NAME[kind];
}

int rs_avro_schema_kind_from_name(const char *name)
{
    for (int k = 0; name != NULL && k < RS_AVRO_SCHEMA__COUNT; k++)
        if (strcmp(name, SCHEMA_NAME[k]) == 0)
            return k;
    return -1;
}

int rs_avro_schema_kind_of_event(rs_event_type_t type)
{
    const char *topic = rs_event_topic(type);
    return topic ? rs_avro_schema_kind_from_name(topic) : -1;
}

/* ------------------------------------------------------------------------ */
/* Field index tables (records and slots: rs_codec_fields.h)                */
/* ------------------------------------------------------------------------ */

#define WALK_MAX_RECORDS 256

typedef struct walk {
    rs_avro_layout_t *lay;
    avro_schema_t visited[WALK_MAX_RECORDS];
    int n_visited;
} walk_t;

/* Fill the layout from every record reachable in `s`. Each record schema is
 * walked once (named types may be referenced many times); links, which only
 * point back at a record being walked, are not followed. */
static void layout_walk(walk_t *w, avro_schema_t s, int depth)
{
    rs_avro_layout_t *lay = w->lay;
    if (s == NULL || depth > RS_AVRO_MAX_DEPTH)
        return;
    switch (avro_typeof(s)) {
    case AVRO_RECORD: {
        for (int i = 0; i < w->n_visited; i++)
            if (w->visited[i] == s)
                return;
        if (w->n_visited == WALK_MAX_RECORDS)
            return;
        w->visited[w->n_visited++] = s;
        int k = rs_codec_record_kind(avro_schema_name(s));
        if (k >= 0 && !lay->seen[k]) {
            lay->seen[k] = 1;
            for (int j = 0; j < RS_CODEC_MAX_SLOTS && rs_codec_field_name[k][j] != NULL; j++) {
                int i = avro_schema_record_field_get_index(s, rs_codec_field_name[k][j]);
                lay->idx[k][j] = (int8_t)(i >= 0 && i < 127 ? i : -1);
            }
        }
        size_t n = avro_schema_record_size(s);
        for (size_t i = 0; i < n; i++)
            layout_walk(w, avro_schema_record_field_get_by_index(s, (int)i), depth + 1);
        break;
    }
    case AVRO_UNION: {
        size_t n = avro_schema_union_size(s);
        for (size_t i = 0; i < n; i++)
            layout_walk(w, avro_schema_union_branch(s, (int)i), depth + 1);
        break;
    }
    case AVRO_ARRAY:
        layout_walk(w, avro_schema_array_items(s), depth + 1);
        break;
    case AVRO_MAP:
        layout_walk(w, avro_schema_map_values(s), depth + 1);
        break;
    default:
        break;
    }
}

void rs_avro_layout_build(rs_avro_layout_t *lay, avro_schema_t s)
{
    memset(lay->idx, -1, sizeof(lay->idx));
    memset(lay->seen, 0, sizeof(lay->seen));
    walk_t w = {.lay = lay, .n_visited = 0};
    layout_walk(&w, s, 0);
}
