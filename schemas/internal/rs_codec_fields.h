/*
 * rs_codec_fields — the event contract's field rules, written once for both
 * codecs. Internal to schemas/: only rs_codec_json.c, rs_codec_fields.c and
 * the Avro codec's files (rs_avro_*.c, via rs_avro_internal.h) include it.
 *
 * The JSON codec and the Avro codec differ only in how a record is held: a
 * jansson object, or an avro_value_t of the projected reader schema. Each
 * implements an rs_codec_source_t, four accessors (a string field, an array
 * field, an item of an array, a nested record), and rs_codec_decode_event()
 * reads every field through them and applies every rule of the event contract
 * (shared/reference/events.md): required fields, string length limits, date,
 * period, timestamp and decimal syntax, sign rules, enum values, duplicate
 * line and milestone ids, the rules between fields (end not before start, ...)
 * and the message each one gives.
 *
 * Invariants:
 *   - Records and fields are named by number: a record kind (RS_RK_*) and a
 *     slot in it (RS_F_*). rs_codec_field_name[kind][slot] is the field's
 *     name in the contract and in schemas/ *.avsc (error messages use it, the
 *     JSON source looks members up by it, the Avro source maps it to a field
 *     index once per writer schema); rs_codec_record_name[kind] is the Avro
 *     record name (NULL for RS_RK_EVENT, which is no record of its own).
 *   - Event record kind k is event type k + 1 (checked at compile time).
 *   - A source treats absent and null alike (0: absent). The strings it hands
 *     out are NUL-terminated, `n` bytes long, hold no NUL byte and are valid
 *     UTF-8; a string that is not (only possible in Avro) is refused by the
 *     source with the reason in `why`.
 *   - Errors read "event <event_id>: <field>: <reason>" ("event ?" until
 *     event_id has been read), the field with its path ("lines[1].amount",
 *     "source.system"); the message is one line of valid UTF-8 and quoted
 *     input is cut at a character boundary (see rs_codec_fail).
 *
 * Ownership: nodes borrow from the source's tree and live no longer than it.
 * rs_codec_decode_event() copies strings into the event's fixed-size fields
 * and malloc()s its lines, milestones and bill lines, which the event owns
 * (rs_event_clear frees them); on failure the event is left cleared.
 */
#ifndef RS_CODEC_FIELDS_H
#define RS_CODEC_FIELDS_H

#include <stddef.h>

#include "rs_event.h"

/* ------------------------------------------------------------------------ */
/* Records and field slots                                                  */
/* ------------------------------------------------------------------------ */

/* The records revstream knows: the 13 event records (in event-type order),
 * the records nested in them, the output records, and RS_RK_EVENT, the
 * fields every event starts with (a JSON object before its type is read). */
enum {
    RS_RK_CONTRACT_BOOKED = 0,
    RS_RK_CONTRACT_AMENDED,
    RS_RK_CONTRACT_CANCELLED,
    RS_RK_MILESTONE_COMPLETED,
    RS_RK_PERIOD_CLOSED,
    RS_RK_INVOICE_ISSUED,
    RS_RK_INVOICE_VOIDED,
    RS_RK_CREDIT_NOTE_ISSUED,
    RS_RK_INVOICE_UNCOLLECTIBLE,
    RS_RK_PAYMENT_RECEIVED,
    RS_RK_PAYMENT_REFUNDED,
    RS_RK_PAYMENT_FAILED,
    RS_RK_USAGE_RECORDED,
    RS_RK__EVENTS,
    RS_RK_CONTRACT_LINE = RS_RK__EVENTS,
    RS_RK_MILESTONE,
    RS_RK_SOURCE,
    RS_RK_INVOICE_LINE,
    RS_RK_CREDIT_NOTE_LINE,
    RS_RK_JOURNAL_ENTRY,
    RS_RK_JOURNAL_LINE,
    RS_RK_DEFERRED_BALANCE,
    RS_RK_DEAD_LETTER,
    RS_RK_EVENT,
    RS_RK__COUNT
};

/* Field slots. Every event record starts with the envelope slots
 * (PeriodClosed has no contract_id). CreditNoteLine has InvoiceLine's first
 * three fields, so the RS_F_IL_ slots serve both. */
enum { RS_F_EVENT_ID, RS_F_TYPE, RS_F_CONTRACT_ID, RS_F_OCCURRED_AT, RS_F__HEAD };
enum {
    RS_F_CB_CUSTOMER_ID = RS_F__HEAD,
    RS_F_CB_CURRENCY,
    RS_F_CB_BOOKED_ON,
    RS_F_CB_SOURCE,
    RS_F_CB_LINES
};
enum { RS_F_CA_EFFECTIVE_ON = RS_F__HEAD, RS_F_CA_LINES, RS_F_CA_TREATMENT };
enum { RS_F_CC_EFFECTIVE_ON = RS_F__HEAD };
enum { RS_F_MC_LINE_ID = RS_F__HEAD, RS_F_MC_MILESTONE_ID, RS_F_MC_COMPLETED_ON };
enum { RS_F_PC_PERIOD = RS_F__HEAD };
enum { RS_F_II_INVOICE_ID = RS_F__HEAD, RS_F_II_ISSUED_ON, RS_F_II_DUE_ON, RS_F_II_LINES };
enum { RS_F_IV_INVOICE_ID = RS_F__HEAD, RS_F_IV_VOIDED_ON };
enum {
    RS_F_CN_CREDIT_NOTE_ID = RS_F__HEAD,
    RS_F_CN_INVOICE_ID,
    RS_F_CN_ISSUED_ON,
    RS_F_CN_REASON,
    RS_F_CN_LINES
};
enum { RS_F_IU_INVOICE_ID = RS_F__HEAD, RS_F_IU_DECLARED_ON };
enum {
    RS_F_PR_PAYMENT_ID = RS_F__HEAD,
    RS_F_PR_INVOICE_ID,
    RS_F_PR_AMOUNT,
    RS_F_PR_RECEIVED_ON
};
enum {
    RS_F_PD_REFUND_ID = RS_F__HEAD,
    RS_F_PD_PAYMENT_ID,
    RS_F_PD_INVOICE_ID,
    RS_F_PD_AMOUNT,
    RS_F_PD_REFUNDED_ON
};
enum { RS_F_PF_PAYMENT_ID = RS_F__HEAD, RS_F_PF_INVOICE_ID, RS_F_PF_FAILED_ON, RS_F_PF_REASON };
enum { RS_F_UR_LINE_ID = RS_F__HEAD, RS_F_UR_QUANTITY };
enum {
    RS_F_CL_LINE_ID,
    RS_F_CL_PRODUCT,
    RS_F_CL_RECOGNITION,
    RS_F_CL_START,
    RS_F_CL_END,
    RS_F_CL_AMOUNT,
    RS_F_CL_SSP,
    RS_F_CL_UNIT_PRICE,
    RS_F_CL_MILESTONES
};
enum { RS_F_MS_MILESTONE_ID, RS_F_MS_AMOUNT };
enum { RS_F_SR_SYSTEM, RS_F_SR_RECORD_ID };
enum {
    RS_F_IL_LINE_ID,
    RS_F_IL_AMOUNT,
    RS_F_IL_TAX,
    RS_F_IL_SERVICE_START,
    RS_F_IL_SERVICE_END
};
enum {
    RS_F_JE_ENTRY_ID,
    RS_F_JE_SEQ,
    RS_F_JE_POSTED_ON,
    RS_F_JE_PERIOD,
    RS_F_JE_SERVICE_PERIOD,
    RS_F_JE_KIND,
    RS_F_JE_RULE,
    RS_F_JE_CONTRACT_ID,
    RS_F_JE_CUSTOMER_ID,
    RS_F_JE_LINE_ID,
    RS_F_JE_DOCUMENT_ID,
    RS_F_JE_CURRENCY,
    RS_F_JE_EXPONENT,
    RS_F_JE_LINES,
    RS_F_JE_SOURCE_EVENT_IDS,
    RS_F_JE_SOURCE_COUNT,
    RS_F_JE_BILLED,
    RS_F_JE_RECOGNIZED,
    RS_F_JE_RECEIVED
};
enum { RS_F_JL_ACCOUNT, RS_F_JL_DEBIT, RS_F_JL_CREDIT, RS_F_JL_CODE, RS_F_JL_PRODUCT };
enum {
    RS_F_DB_SNAPSHOT_KEY,
    RS_F_DB_CONTRACT_ID,
    RS_F_DB_CUSTOMER_ID,
    RS_F_DB_SCOPE,
    RS_F_DB_LINE_ID,
    RS_F_DB_INVOICE_ID,
    RS_F_DB_CURRENCY,
    RS_F_DB_EXPONENT,
    RS_F_DB_BILLED,
    RS_F_DB_RECOGNIZED,
    RS_F_DB_DEFERRED,
    RS_F_DB_UNBILLED,
    RS_F_DB_RECEIVED,
    RS_F_DB_AS_OF_PERIOD
};
enum {
    RS_F_DL_TOPIC,
    RS_F_DL_PARTITION,
    RS_F_DL_OFFSET,
    RS_F_DL_ERROR,
    RS_F_DL_KEY,
    RS_F_DL_VALUE,
    RS_F_DL_TIMESTAMP
};

#define RS_CODEC_MAX_SLOTS 20

/* Record kind -> Avro record name (NULL for RS_RK_EVENT). */
extern const char *const rs_codec_record_name[RS_RK__COUNT];
/* (kind, slot) -> field name; NULL past a record's last slot. */
extern const char *const rs_codec_field_name[RS_RK__COUNT][RS_CODEC_MAX_SLOTS];

/* The kind of the record named `name` (simple name, e.g. "InvoiceLine"), or -1. */
int rs_codec_record_kind(const char *name);

/* ------------------------------------------------------------------------ */
/* Field sources                                                            */
/* ------------------------------------------------------------------------ */

/* A record or an array in a source's tree. ref is the source's handle: the
 * JSON source keeps a json_t * in ref[0]; the Avro source an avro_value_t
 * (ref[0] its iface, ref[1] its self). */
typedef struct rs_codec_node {
    void *ref[2];
    int rk; /* a record's kind (RS_RK_*); unused for arrays */
} rs_codec_node_t;

/* What an accessor found, besides 1 (found) and 0 (absent or null). */
enum {
    RS_CODEC_EWRONG = -1, /* the field has another type */
    RS_CODEC_EBAD = -2,   /* a string the source refuses; the reason in *why */
};

typedef struct rs_codec_source rs_codec_source_t;

struct rs_codec_source {
    /* Field `slot` of `rec` as a string: 1 (*s, *n bytes), 0, EWRONG or EBAD. */
    int (*string)(const rs_codec_source_t *src, const rs_codec_node_t *rec, int slot,
                  const char **s, size_t *n, const char **why);
    /* Field `slot` of `rec` as an array: 1 (*arr, *n items), 0 or EWRONG. */
    int (*array)(const rs_codec_source_t *src, const rs_codec_node_t *rec, int slot,
                 rs_codec_node_t *arr, size_t *n);
    /* Item i (< n) of `arr` as a record (ref set, rk left to the caller):
     * 0, or EWRONG when the item is not a record / object. */
    int (*item)(const rs_codec_source_t *src, const rs_codec_node_t *arr, size_t i,
                rs_codec_node_t *rec);
    /* Field `slot` of `rec` as a record (ref set): 1, 0 or EWRONG. */
    int (*record)(const rs_codec_source_t *src, const rs_codec_node_t *rec, int slot,
                  rs_codec_node_t *sub);
    const void *ctx; /* the source's own data (Avro: the field index table) */
};

/* ------------------------------------------------------------------------ */
/* Decoding                                                                 */
/* ------------------------------------------------------------------------ */

/* One decode in progress. Start it as {"?", errstr, errlen, 0, src}. */
typedef struct rs_codec_dec {
    const char *event_id; /* "?" until event_id has been read */
    char *errstr;         /* may be NULL (errlen 0): no message */
    size_t errlen;
    int nomem; /* set when the failure was ENOMEM, not the event */
    const rs_codec_source_t *src;
} rs_codec_dec_t;

/* Write "event <id>: <prefix>.<key>: <reason>" (prefix and key may each be
 * NULL) as one line of valid UTF-8: control bytes and bytes that are not
 * UTF-8 become '?', and a character cut short by errlen is dropped.
 * Returns -1. */
int rs_codec_fail(rs_codec_dec_t *d, const char *prefix, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Decode the event in record `root` into `ev`, which must be rs_event_init()ed
 * and own nothing: an optional field that is absent keeps its initial value
 * (RS_DATE_NONE, prospective treatment, ...). root->rk is an event record kind when the record
 * itself says the type (an Avro record: its `type` field must then name the same type), or
 * RS_RK_EVENT when the `type` field decides (a JSON object). Returns 0, or
 * -1 with d->errstr set and ev cleared. */
int rs_codec_decode_event(rs_codec_dec_t *d, const rs_codec_node_t *root, rs_event_t *ev);

/* 1 if the n bytes at s are strict UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF), else 0. */
int rs_codec_utf8_valid(const char *s, size_t n);

#endif
