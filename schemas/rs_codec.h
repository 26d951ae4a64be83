/*
 * rs_codec — the one codec between the wire (JSON Lines, Avro) and the engine.
 *
 * Invariants:
 *   - Decoding checks the event contract's shape: required fields, types,
 *     dates, decimal syntax, enum values. Errors read
 *     "event <event_id>: <field>: <reason>" ("event ?" when the id itself is
 *     missing); fields are named as in events.md, with array indexes
 *     ("lines[1].amount").
 *   - Unknown fields are ignored. Money must be a JSON string, never a number.
 *   - Whether an amount has too many minor digits for its currency is the
 *     engine's check (the currency may not be known yet).
 *   - Encoding is canonical: fixed field order, amounts as decimal strings
 *     exactly as parsed (same scale), so decode(encode(ev)) hashes the same.
 *   - Ownership: decode fills a caller-provided rs_event_t (rs_event_clear()
 *     it afterwards); encode returns a malloc'd NUL-terminated string.
 */
#ifndef RS_CODEC_H
#define RS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "rs_engine.h"
#include "rs_event.h"

/* Decode one JSON object. Returns 0, or -1 with errstr set (ev cleared).
 * A non-NULL ev is initialized (rs_event_init) before anything else,
 * whatever the result: the caller need not initialize it first.
 * A structured-mode CloudEvent (an object with `specversion`) is decoded as
 * usage.recorded (mapping: rs_codec_cloudevents.c, docs/intake.md).
 * simdjson parses the documents it can prove jansson reads the same way
 * (schemas/internal/rs_json_fast.h); every other document, including every
 * malformed one, goes to rs_codec_json_decode_jansson(), so results and
 * messages are jansson's in every case. */
int rs_codec_json_decode(const char *json, size_t len, rs_event_t *ev, char *errstr,
                         size_t errlen);

/* The same decode through jansson alone: the reference the fast path is
 * tested against (tests/unit/test_codec_json.c, the JSON fuzz target). */
int rs_codec_json_decode_jansson(const char *json, size_t len, rs_event_t *ev, char *errstr,
                                 size_t errlen);

/* Encode an event as one line of JSON (no trailing newline). NULL on ENOMEM. */
char *rs_codec_json_encode(const rs_event_t *ev);

/* Encode a journal entry in the `journal` report shape of events.md (plus
 * the extra fields the project adds). NULL on ENOMEM. */
char *rs_codec_entry_json(const rs_entry_t *entry);

/* Decode a journal entry from the JSON rs_codec_entry_json() writes (for
 * readers of the journal topic). Returns 0, or -1 with errstr naming the
 * entry and the field. Defined in rs_codec_entry.c. */
int rs_codec_entry_from_json(const char *json, size_t len, rs_entry_t *entry, char *errstr,
                             size_t errlen);

/* Decode a journal entry from the Avro JournalEntry record the worker writes
 * (Confluent framing). The record is read with its writer's schema: one
 * added with rs_entry_reader_add_schema, or fetched through the lookup hook
 * (e.g. rs_registry_lookup); without a hook an id not added is read with
 * the compiled-in schema (a reader built with the writer). Keeps one
 * reusable value per writer: one reader per thread. */
typedef struct rs_entry_reader rs_entry_reader_t;
int rs_entry_reader_new(rs_entry_reader_t **out, char *errstr, size_t errlen);
void rs_entry_reader_destroy(rs_entry_reader_t *r); /* accepts NULL */
/* Where unknown writer ids are looked up (see rs_avro_lookup_fn in rs_avro.h). */
void rs_entry_reader_set_lookup(rs_entry_reader_t *r,
                                int (*fn)(void *opaque, int32_t id, char **json_text,
                                          char *errstr, size_t errlen),
                                void *opaque);
/* Read records of writer schema `id` with `json` (a JournalEntry version). */
int rs_entry_reader_add_schema(rs_entry_reader_t *r, int32_t id, const char *json, char *errstr,
                               size_t errlen);
int rs_codec_entry_from_avro(rs_entry_reader_t *r, const void *buf, size_t len,
                             rs_entry_t *entry, char *errstr, size_t errlen);

/* Format a decimal (mantissa/scale) as text, e.g. {1250, 2} -> "12.50". */
char *rs_decimal_format(rs_decimal_t d, char *buf, size_t buflen);

#endif
