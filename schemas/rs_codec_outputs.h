/*
 * rs_codec_outputs — readers of the worker's other two outputs: balance
 * snapshots (io.revstream.DeferredBalance) and dead letters
 * (io.revstream.DeadLetter), in either output format the worker writes
 * (Confluent-framed Avro, or the JSON of output.format=json). For the
 * consumers of the output topics (`revstream sink`, `revstream report`);
 * journal entries have rs_codec_entry_from_avro/json.
 *
 * Invariants:
 *   - Avro bodies are checked with rs_avro_checker before Avro C reads them;
 *     one reusable value per schema (no allocation per record).
 *   - JSON amounts are decimal strings with the record's exponent, turned
 *     into minor units exactly (rs_decimal_parse / rs_decimal_to_minor).
 *   - JSON dead letters carry bytes as a string, or as `<name>_base64` when
 *     they were not valid UTF-8; both come back as the original bytes.
 *   - Errors name the record and the field ("balance K: deferred: missing or
 *     invalid").
 *
 * Ownership: a decoded record's strings and bytes point into the reader (its
 * Avro value or JSON document) and stay valid until its next decode. One
 * reader per thread.
 */
#ifndef RS_CODEC_OUTPUTS_H
#define RS_CODEC_OUTPUTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rs_output_balance {
    const char *snapshot_key, *contract_id, *customer_id, *scope, *line_id, *invoice_id;
    const char *currency, *as_of_period;
    int exponent;
    int64_t billed, recognized, deferred, unbilled, received;
} rs_output_balance_t;

typedef struct rs_output_deadletter {
    const char *topic, *error;
    int32_t partition;
    int64_t offset;                   /* -1: a late rejection (no source offset) */
    const unsigned char *key, *value; /* NULL: none */
    size_t key_len, value_len;
    int64_t timestamp_ms;
} rs_output_deadletter_t;

typedef struct rs_output_reader rs_output_reader_t;

int rs_output_reader_new(rs_output_reader_t **out, char *errstr, size_t errlen);
void rs_output_reader_destroy(rs_output_reader_t *d); /* accepts NULL */
/* Avro (Confluent framing) or JSON (the first byte is '{'). 0 or -1. */
int rs_output_balance_decode(rs_output_reader_t *d, const void *buf, size_t len,
                             rs_output_balance_t *b, char *errstr, size_t errlen);
int rs_output_deadletter_decode(rs_output_reader_t *d, const void *buf, size_t len,
                                rs_output_deadletter_t *x, char *errstr, size_t errlen);

#endif
