/*
 * rs_event.c — event lifetime, names and the canonical content digest.
 */
#include "rs_event.h"
#include "rs_hash.h"

#include <stdlib.h>
#include <string.h>

void rs_event_init(rs_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->occurred_on = RS_DATE_NONE;
    ev->booked_on = RS_DATE_NONE;
    ev->effective_on = RS_DATE_NONE;
    ev->completed_on = RS_DATE_NONE;
    ev->period = RS_PERIOD_NONE;
    ev->on = RS_DATE_NONE;
    ev->due_on = RS_DATE_NONE;
}

void rs_event_release(rs_event_t *ev)
{
    if (ev == NULL)
        return;
    for (int i = 0; i < ev->n_lines; i++)
        free(ev->lines[i].milestones);
    free(ev->lines);
    free(ev->bill_lines);
    ev->lines = NULL;
    ev->bill_lines = NULL;
    ev->n_lines = 0;
    ev->n_bill_lines = 0;
}

void rs_event_clear(rs_event_t *ev)
{
    if (ev == NULL)
        return;
    rs_event_release(ev);
    rs_event_init(ev);
}

int rs_event_copy(rs_event_t *dst, const rs_event_t *src)
{
    *dst = *src;
    dst->lines = NULL;
    dst->bill_lines = NULL;
    dst->n_lines = 0;
    dst->n_bill_lines = 0;
    if (src->n_lines > 0) {
        dst->lines = calloc((size_t)src->n_lines, sizeof(*dst->lines));
        if (dst->lines == NULL)
            goto fail;
        for (int i = 0; i < src->n_lines; i++) {
            dst->lines[i] = src->lines[i];
            dst->lines[i].milestones = NULL;
            dst->lines[i].n_milestones = 0;
            dst->n_lines = i + 1;
            int nm = src->lines[i].n_milestones;
            if (nm > 0) {
                dst->lines[i].milestones = malloc((size_t)nm * sizeof(rs_milestone_spec_t));
                if (dst->lines[i].milestones == NULL)
                    goto fail;
                memcpy(dst->lines[i].milestones, src->lines[i].milestones,
                       (size_t)nm * sizeof(rs_milestone_spec_t));
                dst->lines[i].n_milestones = nm;
            }
        }
    }
    if (src->n_bill_lines > 0) {
        dst->bill_lines = malloc((size_t)src->n_bill_lines * sizeof(*dst->bill_lines));
        if (dst->bill_lines == NULL)
            goto fail;
        memcpy(dst->bill_lines, src->bill_lines,
               (size_t)src->n_bill_lines * sizeof(*dst->bill_lines));
        dst->n_bill_lines = src->n_bill_lines;
    }
    return 0;
fail:
    rs_event_clear(dst);
    return -1;
}

/* A 64-bit digest over tagged fields: each field is prefixed by a tag (and
 * strings by their length) so that no two different events feed the same
 * stream; words are mixed FNV-style with an extra shift. */
typedef struct {
    uint64_t h;
} hasher_t;

static void h_mix(hasher_t *h, uint64_t w)
{
    h->h ^= w;
    h->h *= RS_FNV1A64_PRIME;
    h->h ^= h->h >> 29;
}

/* Eight bytes at a time (FNV-style xor-multiply with a final mix per word),
 * then the tail byte by byte. The digest only has to be stable on one build
 * and machine family: it is stored little-endian-independent because each
 * word is the little-endian value of its 8 bytes (one load, swapped on a
 * big-endian machine). */
static void h_bytes(hasher_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w; /* the 8 bytes as a little-endian word */
        memcpy(&w, b + i, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        h_mix(h, w);
    }
    h->h = rs_fnv1a64_update(h->h, b + i, n - i);
}

/* A tagged integer field: the tag and the value are mixed as words. */
static void h_u64(hasher_t *h, char tag, uint64_t v)
{
    h_mix(h, (uint64_t)(unsigned char)tag | 0x100u);
    h_mix(h, v);
}

static void h_str(hasher_t *h, char tag, const char *s)
{
    size_t n = s[0] != '\0' ? strlen(s) : 0; /* most of an event's strings are empty */
    h_u64(h, tag, n);
    h_bytes(h, s, n);
}

/* A decimal hashes by value: "12.50" and "12.5" are the same amount. */
static void h_dec(hasher_t *h, char tag, rs_decimal_t d)
{
    int64_t m = d.mantissa;
    int s = d.scale;
    while (s > 0 && m % 10 == 0) {
        m /= 10;
        s--;
    }
    h_u64(h, tag, (uint64_t)m);
    h_u64(h, tag, (uint64_t)s);
}

uint64_t rs_event_hash(const rs_event_t *ev)
{
    hasher_t h = {RS_FNV1A64_BASIS};
    h_u64(&h, 't', (uint64_t)ev->type);
    h_str(&h, 'e', ev->event_id);
    h_str(&h, 'c', ev->contract_id);
    h_u64(&h, 'o', (uint64_t)(int64_t)ev->occurred_on);
    h_str(&h, 'u', ev->customer_id);
    h_str(&h, 'y', ev->currency);
    h_u64(&h, 'b', (uint64_t)(int64_t)ev->booked_on);
    h_u64(&h, 'f', (uint64_t)(int64_t)ev->effective_on);
    h_u64(&h, 'r', (uint64_t)ev->treatment);
    h_u64(&h, 'n', (uint64_t)ev->n_lines);
    for (int i = 0; i < ev->n_lines; i++) {
        const rs_line_spec_t *l = &ev->lines[i];
        h_str(&h, 'L', l->line_id);
        h_str(&h, 'P', l->product);
        h_u64(&h, 'M', (uint64_t)l->recognition);
        h_u64(&h, 'S', (uint64_t)(int64_t)l->start);
        h_u64(&h, 'E', (uint64_t)(int64_t)l->end);
        h_dec(&h, 'A', l->amount);
        h_u64(&h, 's', (uint64_t)l->has_ssp);
        if (l->has_ssp)
            h_dec(&h, 'p', l->ssp);
        h_u64(&h, 'q', (uint64_t)l->has_unit_price);
        if (l->has_unit_price)
            h_dec(&h, 'U', l->unit_price);
        h_u64(&h, 'm', (uint64_t)l->n_milestones);
        for (int j = 0; j < l->n_milestones; j++) {
            h_str(&h, 'i', l->milestones[j].milestone_id);
            h_dec(&h, 'a', l->milestones[j].amount);
        }
    }
    h_str(&h, 'l', ev->line_id);
    h_str(&h, 'k', ev->milestone_id);
    h_u64(&h, 'C', (uint64_t)(int64_t)ev->completed_on);
    h_u64(&h, 'D', (uint64_t)(int64_t)ev->period);
    h_str(&h, 'I', ev->invoice_id);
    h_str(&h, 'N', ev->credit_note_id);
    h_str(&h, 'Y', ev->payment_id);
    h_str(&h, 'R', ev->refund_id);
    h_u64(&h, 'O', (uint64_t)(int64_t)ev->on);
    h_u64(&h, 'd', (uint64_t)(int64_t)ev->due_on);
    h_u64(&h, 'x', (uint64_t)ev->reason);
    h_str(&h, 'F', ev->failure_reason);
    h_dec(&h, 'G', ev->amount);
    h_u64(&h, 'B', (uint64_t)ev->n_bill_lines);
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        h_str(&h, 'l', b->line_id);
        h_dec(&h, 'a', b->amount);
        h_u64(&h, 'h', (uint64_t)b->has_tax);
        if (b->has_tax)
            h_dec(&h, 'T', b->tax);
        h_u64(&h, '1', (uint64_t)(int64_t)b->service_start);
        h_u64(&h, '2', (uint64_t)(int64_t)b->service_end);
    }
    h_dec(&h, 'Q', ev->quantity);
    return h.h;
}

static const char *const type_names[RS_EV__COUNT] = {
    [RS_EV_CONTRACT_BOOKED] = "contract.booked",
    [RS_EV_CONTRACT_AMENDED] = "contract.amended",
    [RS_EV_CONTRACT_CANCELLED] = "contract.cancelled",
    [RS_EV_MILESTONE_COMPLETED] = "milestone.completed",
    [RS_EV_PERIOD_CLOSED] = "period.closed",
    [RS_EV_INVOICE_ISSUED] = "invoice.issued",
    [RS_EV_INVOICE_VOIDED] = "invoice.voided",
    [RS_EV_CREDIT_NOTE_ISSUED] = "credit_note.issued",
    [RS_EV_INVOICE_UNCOLLECTIBLE] = "invoice.uncollectible",
    [RS_EV_PAYMENT_RECEIVED] = "payment.received",
    [RS_EV_PAYMENT_REFUNDED] = "payment.refunded",
    [RS_EV_PAYMENT_FAILED] = "payment.failed",
    [RS_EV_USAGE_RECORDED] = "usage.recorded",
};

const char *rs_event_type_name(rs_event_type_t t)
{
    if (t <= RS_EV_UNKNOWN || t >= RS_EV__COUNT)
        return NULL;
    return type_names[t];
}

rs_event_type_t rs_event_type_from_name(const char *name)
{
    for (int t = 1; t < RS_EV__COUNT; t++)
        if (name && strcmp(name, type_names[t]) == 0)
            return (rs_event_type_t)t;
    return RS_EV_UNKNOWN;
}

const char *rs_event_topic(rs_event_type_t t)
{
    switch (t) {
    case RS_EV_CONTRACT_BOOKED:
    case RS_EV_CONTRACT_AMENDED:
    case RS_EV_CONTRACT_CANCELLED:
    case RS_EV_MILESTONE_COMPLETED:
    case RS_EV_PERIOD_CLOSED:
        return "contracts";
    case RS_EV_INVOICE_ISSUED:
    case RS_EV_INVOICE_VOIDED:
    case RS_EV_CREDIT_NOTE_ISSUED:
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        return "invoices";
    case RS_EV_PAYMENT_RECEIVED:
    case RS_EV_PAYMENT_REFUNDED:
    case RS_EV_PAYMENT_FAILED:
        return "payments";
    case RS_EV_USAGE_RECORDED:
        return "usage";
    default:
        return NULL;
    }
}

static const char *const method_names[] = {
    [RS_METHOD_NONE] = NULL,
    [RS_METHOD_RATABLE_DAILY] = "ratable_daily",
    [RS_METHOD_RATABLE_MONTHLY] = "ratable_monthly",
    [RS_METHOD_POINT_IN_TIME] = "point_in_time",
    [RS_METHOD_USAGE] = "usage",
    [RS_METHOD_MILESTONE] = "milestone",
};

const char *rs_method_name(rs_method_t m)
{
    if (m <= RS_METHOD_NONE || m > RS_METHOD_MILESTONE)
        return NULL;
    return method_names[m];
}

rs_method_t rs_method_from_name(const char *name)
{
    for (int m = RS_METHOD_RATABLE_DAILY; m <= RS_METHOD_MILESTONE; m++)
        if (name && strcmp(name, method_names[m]) == 0)
            return (rs_method_t)m;
    return RS_METHOD_NONE;
}

static const char *const reason_names[] = {
    [RS_CREDIT_NONE] = NULL,       [RS_CREDIT_DISCOUNT] = "discount",
    [RS_CREDIT_REFUND] = "refund", [RS_CREDIT_CANCELLATION] = "cancellation",
    [RS_CREDIT_ERROR] = "error",
};

const char *rs_credit_reason_name(rs_credit_reason_t r)
{
    if (r <= RS_CREDIT_NONE || r > RS_CREDIT_ERROR)
        return NULL;
    return reason_names[r];
}

rs_credit_reason_t rs_credit_reason_from_name(const char *name)
{
    for (int r = RS_CREDIT_DISCOUNT; r <= RS_CREDIT_ERROR; r++)
        if (name && strcmp(name, reason_names[r]) == 0)
            return (rs_credit_reason_t)r;
    return RS_CREDIT_NONE;
}
