/*
 * rs_avro — the Avro side of the codec: Confluent wire-format records in and
 * out of revstream's structs, with Avro C doing the binary encoding.
 *
 * Wire format (Confluent): byte 0 is 0 (the magic byte), bytes 1-4 the writer
 * schema id (big-endian, signed 32-bit), then the Avro binary body encoded
 * with that schema. The schemas and their evolution rules are in
 * schemas/README.md; the texts are compiled in (rs_avro_schema_json()) from
 * schemas/ *.avsc at build time, compact and without their docs.
 *
 * Invariants:
 *   - A cache holds, per writer schema id: the parsed writer schema, a size
 *     checker compiled from it, and, built once on first use and reused for
 *     every later message: the reader schema (revstream's records projected
 *     onto what the writer has), one resolved reader (writer -> reader;
 *     skipped when the two are the same schema), one reader value, and for
 *     encoding one writer value. No interface or value is built per message.
 *   - Before Avro C sees a body, every length, count, union branch and enum
 *     index in it is checked against the bytes actually present (AVRO-4293:
 *     a corrupt length must not become a huge allocation); a message over
 *     RS_AVRO_MAX_MESSAGE bytes, with more than RS_AVRO_MAX_ITEMS array or
 *     map items, or with bytes left over after the body, is corrupt. So Avro
 *     C only decodes well-formed bodies, which keeps it off its error paths
 *     (AVRO-4246); after any failed read the value is reset anyway.
 *   - Decoding checks the event contract exactly as the JSON codec does: the
 *     same rs_money/rs_event parsers, the same message shape
 *     "event <event_id>: <field>: <reason>" (see rs_codec.h). The decoded
 *     event hashes (rs_event_hash) the same as the JSON of the same event.
 *   - Money: inputs carry decimal strings (the event contract's text, scale
 *     kept); outputs carry long minor units + int exponent + currency.
 *   - Error codes: every function returns RS_AVRO_OK (0) or one negative
 *     rs_avro_status_t and fills errstr. RS_AVRO_EUNKNOWN_ID is returned only
 *     when the id is not cached and the lookup hook (if any) could not fetch
 *     it, so a caller can retry it later rather than dead-letter it.
 *
 * Ownership and threads:
 *   - The cache owns every schema, resolver and value it builds and the
 *     schema texts handed to it (copied). Encoders return a malloc'd buffer
 *     the caller free()s. Decoders fill a caller-provided rs_event_t that
 *     must not own anything on entry (rs_event_init()ed or cleared); on
 *     success the caller rs_event_clear()s it, on failure it is left cleared.
 *   - A cache is not thread-safe: use one per thread. Avro C 1.11.1 keeps its
 *     error text in one global buffer (avro_strerror), so the Avro C part of
 *     an error message may be garbled when several threads fail at once.
 */
#ifndef RS_AVRO_H
#define RS_AVRO_H

#include <avro.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_engine.h"
#include "rs_event.h"

#define RS_AVRO_MAGIC 0
#define RS_AVRO_HEADER_SIZE 5
#define RS_AVRO_MAX_MESSAGE (1024 * 1024) /* bytes, header included */
#define RS_AVRO_MAX_ITEMS 10000           /* array + map items in one message */
#define RS_AVRO_MAX_DEPTH 32              /* nesting of the writer schema */

typedef enum rs_avro_status {
    RS_AVRO_OK = 0,
    RS_AVRO_ECORRUPT = -1,    /* framing or body malformed, truncated or oversize */
    RS_AVRO_EUNKNOWN_ID = -2, /* schema id not cached and not found by the lookup hook */
    RS_AVRO_EINVALID = -3,    /* well-formed, but not a valid event of the contract */
    RS_AVRO_ESCHEMA = -4,     /* bad schema text, or a schema that cannot carry our records */
    RS_AVRO_ENOMEM = -5,
} rs_avro_status_t;

/* A short name for a status ("corrupt", "unknown schema id", ...). */
const char *rs_avro_status_name(int status);

/* The compiled-in schemas (the records of schemas/ *.avsc). */
typedef enum rs_avro_schema_kind {
    RS_AVRO_SCHEMA_CONTRACTS = 0, /* union of the `contracts` topic's event records */
    RS_AVRO_SCHEMA_INVOICES,
    RS_AVRO_SCHEMA_PAYMENTS,
    RS_AVRO_SCHEMA_USAGE, /* one record: UsageRecorded */
    RS_AVRO_SCHEMA_JOURNAL_ENTRY,
    RS_AVRO_SCHEMA_DEFERRED_BALANCE,
    RS_AVRO_SCHEMA_DEAD_LETTER,
    RS_AVRO_SCHEMA__COUNT
} rs_avro_schema_kind_t;

/* The schema's JSON text (what is registered), or NULL for a bad kind. */
const char *rs_avro_schema_json(rs_avro_schema_kind_t kind);
/* Its file stem and subject prefix: "contracts", ..., "journal_entry". */
const char *rs_avro_schema_name(rs_avro_schema_kind_t kind);
/* The kind named `name` (a stem as above), or -1. */
int rs_avro_schema_kind_from_name(const char *name);
/* The input schema for an event type's topic (contracts, invoices, ...), or -1. */
int rs_avro_schema_kind_of_event(rs_event_type_t type);

/* Called on a schema id the cache does not have. On success returns 0 and
 * sets *json_text to a malloc'd schema text (the cache free()s it); on
 * failure returns -1 with a reason in errstr. */
typedef int (*rs_avro_lookup_fn)(void *opaque, int32_t id, char **json_text, char *errstr,
                                 size_t errlen);

typedef struct rs_avro_cache rs_avro_cache_t;

int rs_avro_cache_new(rs_avro_cache_t **out, char *errstr, size_t errlen);
void rs_avro_cache_destroy(rs_avro_cache_t *cache); /* accepts NULL */

/* Where unknown ids are looked up (e.g. rs_registry_lookup). fn NULL: none. */
void rs_avro_cache_set_lookup(rs_avro_cache_t *cache, rs_avro_lookup_fn fn, void *opaque);

/* Register a writer schema under `id`. Adding the same id again with a
 * schema that parses equal is a no-op; with a different one it is
 * RS_AVRO_ESCHEMA (registry ids never change meaning). */
int rs_avro_cache_add(rs_avro_cache_t *cache, int32_t id, const char *json_text, char *errstr,
                      size_t errlen);
/* 1 if `id` is cached. */
int rs_avro_cache_has(const rs_avro_cache_t *cache, int32_t id);
/* Journal entries and balance snapshots are written straight into bytes
 * from a plan of the writer schema (on, the default), or through Avro C's
 * generic value (off: the reference the tests compare with). The bytes are
 * the same. */
void rs_avro_cache_set_direct(rs_avro_cache_t *cache, int on);
/* How many messages the direct writer wrote (the rest took the generic path). */
uint64_t rs_avro_cache_direct_writes(const rs_avro_cache_t *cache);
/* Input events are read straight from the bytes by a plan of the writer
 * schema (on, the default), or through Avro C's generic value (off: the
 * reference the tests compare with). The events and errors are the same:
 * the direct reader hands every message it does not accept to the generic
 * path. */
void rs_avro_cache_set_direct_read(rs_avro_cache_t *cache, int on);
/* How many events the direct reader decoded (the rest took the generic path). */
uint64_t rs_avro_cache_direct_reads(const rs_avro_cache_t *cache);

/* Read the Confluent header: returns RS_AVRO_OK with *id set, or
 * RS_AVRO_ECORRUPT (short buffer, wrong magic byte). */
int rs_avro_peek_id(const void *buf, size_t len, int32_t *id);

/* Decode one wire-format event. Fails with ECORRUPT, EUNKNOWN_ID, ESCHEMA,
 * EINVALID or ENOMEM (see rs_avro_status_t). A non-NULL ev is initialized
 * (rs_event_init) before anything else, whatever the result: the caller
 * releases it (rs_event_release) and need not initialize it first. */
int rs_avro_decode_event(rs_avro_cache_t *cache, const void *buf, size_t len, rs_event_t *ev,
                         char *errstr, size_t errlen);

/* Encode an event with the writer schema `schema_id` (which must be cached:
 * the lookup hook is used if not). The schema must have the event's record
 * (by name, e.g. io.revstream.InvoiceIssued) and a field for every value the
 * event carries; fields revstream does not know must be nullable. */
int rs_avro_encode_event(rs_avro_cache_t *cache, int32_t schema_id, const rs_event_t *ev,
                         void **buf, size_t *len, char *errstr, size_t errlen);

/* Encode a journal entry as io.revstream.JournalEntry. */
int rs_avro_encode_entry(rs_avro_cache_t *cache, int32_t schema_id, const rs_entry_t *entry,
                         void **buf, size_t *len, char *errstr, size_t errlen);

typedef enum rs_avro_scope {
    RS_AVRO_SCOPE_CONTRACT = 0,
    RS_AVRO_SCOPE_LINE,
    RS_AVRO_SCOPE_INVOICE,
} rs_avro_scope_t;

/* A deferred-revenue balance snapshot (io.revstream.DeferredBalance). Strings
 * are borrowed; line_id / invoice_id NULL (or "") encode as null. */
typedef struct rs_avro_balance {
    const char *snapshot_key; /* the Kafka key of the snapshot */
    const char *contract_id;
    const char *customer_id;
    rs_avro_scope_t scope;
    const char *line_id;
    const char *invoice_id;
    const char *currency;
    int exponent;
    rs_money_t billed, recognized, deferred, unbilled, received;
    rs_period_t as_of_period;
} rs_avro_balance_t;

int rs_avro_encode_balance(rs_avro_cache_t *cache, int32_t schema_id,
                           const rs_avro_balance_t *b, void **buf, size_t *len, char *errstr,
                           size_t errlen);

/* A record the worker could not use (io.revstream.DeadLetter). key / value
 * NULL encode as null; otherwise their bytes are copied as they were. */
typedef struct rs_avro_deadletter {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *error;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t timestamp_ms; /* the source record's timestamp, ms since the epoch */
} rs_avro_deadletter_t;

int rs_avro_encode_deadletter(rs_avro_cache_t *cache, int32_t schema_id,
                              const rs_avro_deadletter_t *d, void **buf, size_t *len,
                              char *errstr, size_t errlen);

/* A bounds checker compiled once for a schema: rs_avro_checker_check() walks a
 * framed message (header included) and fails, without allocating, unless
 * every length, count and branch fits the bytes present. Run it before
 * handing bytes to Avro C, whose failed decodes can leak (AVRO-4246) and whose
 * corrupt lengths can ask for huge allocations (AVRO-4293). */
typedef struct rs_avro_checker rs_avro_checker_t;
int rs_avro_checker_new(rs_avro_checker_t **out, avro_schema_t schema, char *errstr,
                        size_t errlen);
void rs_avro_checker_destroy(rs_avro_checker_t *c); /* accepts NULL */
int rs_avro_checker_check(const rs_avro_checker_t *c, const void *msg, size_t len, char *why,
                          size_t whylen);

#endif
