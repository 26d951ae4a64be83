/*
 * rs_event — one input event of the event contract (shared/reference/events.md),
 * decoded but not yet interpreted.
 *
 * Invariants:
 *   - Codecs (JSON, Avro) fill an rs_event_t; the engine never sees wire bytes.
 *   - Amounts stay decimal (rs_decimal_t) here: their currency is the
 *     contract's, which may not be known yet when an invoice or payment
 *     arrives. The engine converts them to minor units when it applies them.
 *   - Dates are validated calendar dates; RS_DATE_NONE marks an absent
 *     optional date.
 *   - Ownership: an rs_event_t owns its `lines` and `milestones` arrays;
 *     rs_event_clear() frees them. Strings are fixed-size arrays inside the
 *     struct, so an event can be copied with rs_event_copy().
 *   - rs_event_hash() is a digest of every field the contract defines, the
 *     same whichever codec produced the event; it is how a conflicting
 *     duplicate (same event_id, different content) is told from a replay.
 */
#ifndef RS_EVENT_H
#define RS_EVENT_H

#include <stdint.h>

#include "rs_money.h"

#define RS_ID_MAX 128   /* ids: event_id, contract_id, line_id, invoice_id, ... */
#define RS_NAME_MAX 128 /* product names, reasons */

typedef enum rs_event_type {
    RS_EV_UNKNOWN = 0,
    RS_EV_CONTRACT_BOOKED,
    RS_EV_CONTRACT_AMENDED,
    RS_EV_CONTRACT_CANCELLED,
    RS_EV_MILESTONE_COMPLETED,
    RS_EV_PERIOD_CLOSED,
    RS_EV_INVOICE_ISSUED,
    RS_EV_INVOICE_VOIDED,
    RS_EV_CREDIT_NOTE_ISSUED,
    RS_EV_INVOICE_UNCOLLECTIBLE,
    RS_EV_PAYMENT_RECEIVED,
    RS_EV_PAYMENT_REFUNDED,
    RS_EV_PAYMENT_FAILED,
    RS_EV_USAGE_RECORDED,
    RS_EV__COUNT
} rs_event_type_t;

typedef enum rs_method {
    RS_METHOD_NONE = 0,
    RS_METHOD_RATABLE_DAILY,
    RS_METHOD_RATABLE_MONTHLY,
    RS_METHOD_POINT_IN_TIME,
    RS_METHOD_USAGE,
    RS_METHOD_MILESTONE,
} rs_method_t;

typedef enum rs_treatment {
    RS_TREATMENT_PROSPECTIVE = 0,
    RS_TREATMENT_CATCH_UP,
} rs_treatment_t;

typedef enum rs_credit_reason {
    RS_CREDIT_NONE = 0,
    RS_CREDIT_DISCOUNT,
    RS_CREDIT_REFUND,
    RS_CREDIT_CANCELLATION,
    RS_CREDIT_ERROR,
} rs_credit_reason_t;

typedef struct rs_milestone_spec {
    char milestone_id[RS_ID_MAX];
    rs_decimal_t amount;
} rs_milestone_spec_t;

/* A contract line (performance obligation) in contract.booked / amended. */
typedef struct rs_line_spec {
    char line_id[RS_ID_MAX];
    char product[RS_NAME_MAX];
    rs_method_t recognition;
    rs_date_t start, end; /* inclusive */
    rs_decimal_t amount;
    int has_ssp;
    rs_decimal_t ssp;
    int has_unit_price;
    rs_decimal_t unit_price; /* usage lines, up to 6 decimals */
    int n_milestones;
    rs_milestone_spec_t *milestones; /* owned */
} rs_line_spec_t;

/* A line of invoice.issued or credit_note.issued. */
typedef struct rs_bill_line {
    char line_id[RS_ID_MAX];
    rs_decimal_t amount; /* excludes tax */
    int has_tax;
    rs_decimal_t tax;
    rs_date_t service_start, service_end; /* RS_DATE_NONE when absent */
} rs_bill_line_t;

typedef struct rs_event {
    rs_event_type_t type;
    char event_id[RS_ID_MAX];
    char contract_id[RS_ID_MAX]; /* empty for period.closed */
    char occurred_at[48];        /* RFC 3339 text as received */
    rs_date_t occurred_on;       /* UTC date of occurred_at */

    /* contract.booked */
    char customer_id[RS_ID_MAX];
    char currency[4];
    rs_date_t booked_on;
    char source_system[32];
    char source_record_id[RS_ID_MAX];

    /* contract.amended / contract.cancelled */
    rs_date_t effective_on;
    rs_treatment_t treatment;

    /* contract.booked / contract.amended */
    int n_lines;
    rs_line_spec_t *lines; /* owned */

    /* milestone.completed */
    char line_id[RS_ID_MAX]; /* also usage.recorded */
    char milestone_id[RS_ID_MAX];
    rs_date_t completed_on;

    /* period.closed */
    rs_period_t period;

    /* invoices, credit notes, payments */
    char invoice_id[RS_ID_MAX];
    char credit_note_id[RS_ID_MAX];
    char payment_id[RS_ID_MAX];
    char refund_id[RS_ID_MAX];
    rs_date_t on;     /* issued_on / voided_on / declared_on / received_on /
                         refunded_on / failed_on */
    rs_date_t due_on; /* invoice.issued, optional */
    rs_credit_reason_t reason;
    char failure_reason[RS_NAME_MAX]; /* payment.failed */
    rs_decimal_t amount;              /* payments and refunds */
    int n_bill_lines;
    rs_bill_line_t *bill_lines; /* owned: invoice / credit note lines */

    /* usage.recorded */
    rs_decimal_t quantity;
} rs_event_t;

/* Zero an event (all dates RS_DATE_NONE). */
void rs_event_init(rs_event_t *ev);
/* Free what the event owns and re-initialise it. Accepts NULL. */
void rs_event_clear(rs_event_t *ev);
/* Free what the event owns, for an event going out of scope: cheaper than
 * rs_event_clear (no re-initialisation); the event must be initialised
 * again before any other use. Accepts NULL. */
void rs_event_release(rs_event_t *ev);
/* Deep copy; dst must not own anything. Returns 0 or -1 on allocation failure. */
int rs_event_copy(rs_event_t *dst, const rs_event_t *src);

/* Canonical content digest (see the file comment). */
uint64_t rs_event_hash(const rs_event_t *ev);

/* "contract.booked" etc.; NULL for RS_EV_UNKNOWN. */
const char *rs_event_type_name(rs_event_type_t t);
rs_event_type_t rs_event_type_from_name(const char *name);
/* The topic an event type belongs on: "contracts", "invoices", "payments", "usage". */
const char *rs_event_topic(rs_event_type_t t);

const char *rs_method_name(rs_method_t m);
rs_method_t rs_method_from_name(const char *name);
const char *rs_credit_reason_name(rs_credit_reason_t r);
rs_credit_reason_t rs_credit_reason_from_name(const char *name);

#endif
