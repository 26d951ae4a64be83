/*
 * rs_engine_pending.c — events that cannot apply yet (I8): what an event
 * waits for (its contract, invoice or line), the contract's queue of
 * waiting events, applying them once what they wait for has arrived, and
 * the pending views.
 *
 * Invariants:
 *   - A waiting event is stored packed (rs_pending_t: the record encoding,
 *     a few hundred bytes instead of a whole rs_event_t), owned by its
 *     contract's queue until it is applied or rejected.
 *   - A waiting event's hint is a reason it waited for (a contract not
 *     booked, an invoice or a line the contract lacks) that rs_eng_wait_kind
 *     found for the event itself. Contracts are never unbooked and lose no
 *     invoice or line, so while the hint still holds the event still waits
 *     and draining skips it without unpacking it; otherwise it is unpacked
 *     and asked again, and a new reason becomes its hint.
 *   - Waiting events are applied in arrival order. One that fails then is
 *     reported as a late rejection and its id leaves the seen set, so a
 *     corrected event with the same id can come.
 *   - e->stats.pending is the number of waiting events of all contracts;
 *     c->pend_bytes the size of c's waiting blobs, at most
 *     RS_ENG_PENDING_MAX_BYTES (an event that would pass it is rejected,
 *     so the waiting events cannot grow a contract's record without bound).
 */
#include "rs_engine.h"

#include <stdio.h>
#include <string.h>

#include "rs_engine_internal.h"

static int refers_to_invoice(rs_event_type_t t)
{
    return t == RS_EV_PAYMENT_RECEIVED || t == RS_EV_PAYMENT_REFUNDED ||
           t == RS_EV_PAYMENT_FAILED || t == RS_EV_INVOICE_VOIDED ||
           t == RS_EV_INVOICE_UNCOLLECTIBLE || t == RS_EV_CREDIT_NOTE_ISSUED;
}

int rs_eng_wait_kind(const rs_contract_t *c, const rs_event_t *ev, const char **id)
{
    if (!c->booked && ev->type != RS_EV_CONTRACT_BOOKED) {
        *id = c->contract_id;
        return RS_ENG_WAIT_CONTRACT;
    }
    if (refers_to_invoice(ev->type) && rs_eng_find_invoice(c, ev->invoice_id) < 0) {
        *id = ev->invoice_id;
        return RS_ENG_WAIT_INVOICE;
    }
    /* a line an amendment on the contracts topic has not added yet */
    if ((ev->type == RS_EV_USAGE_RECORDED || ev->type == RS_EV_MILESTONE_COMPLETED) &&
        rs_eng_find_line(c, ev->line_id) < 0) {
        *id = ev->line_id;
        return RS_ENG_WAIT_LINE;
    }
    if (ev->type == RS_EV_INVOICE_ISSUED)
        for (int i = 0; i < ev->n_bill_lines; i++)
            if (rs_eng_find_line(c, ev->bill_lines[i].line_id) < 0) {
                *id = ev->bill_lines[i].line_id;
                return RS_ENG_WAIT_LINE;
            }
    *id = "";
    return RS_ENG_WAIT_NONE;
}

/* Is the event applicable now? Returns NULL, or what it waits for. */
const char *rs_eng_waits_for(const rs_contract_t *c, const rs_event_t *ev, char *buf, size_t n)
{
    static const char *const what[] = {"", "contract", "invoice", "line"};
    const char *id;
    int k = rs_eng_wait_kind(c, ev, &id);
    if (k == RS_ENG_WAIT_NONE)
        return NULL;
    snprintf(buf, n, "%s %s", what[k], id);
    return buf;
}

/* Does the pending event's hint still hold (so that it still waits)? */
static int hint_holds(const rs_contract_t *c, const rs_pending_t *p)
{
    const char *id = p->blob + p->hint_off;
    switch (p->hint) {
    case RS_ENG_WAIT_CONTRACT:
        return !c->booked;
    case RS_ENG_WAIT_INVOICE:
        return rs_eng_find_invoice(c, id) < 0;
    case RS_ENG_WAIT_LINE:
        return rs_eng_find_line(c, id) < 0;
    default:
        return 0;
    }
}

/* Queue an event until what it waits for (`wait`) arrives. */
rs_apply_result_t rs_eng_pending_add(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                                     const char *wait, uint64_t idh, uint64_t ch, char *errstr,
                                     size_t errlen)
{
    if (rs_eng_grow32((void **)&c->pend, &c->cappend, c->npend + 1, sizeof(rs_pending_t)))
        return RS_APPLY_NOMEM;
    rs_pending_t *p = &c->pend[c->npend];
    memset(p, 0, sizeof(*p));
    const char *id;
    int hint = rs_eng_wait_kind(c, ev, &id);
    if (rs_eng_pending_pack(p, ev, wait, hint, id))
        return RS_APPLY_NOMEM;
    if (c->pend_bytes + p->len > RS_ENG_PENDING_MAX_BYTES) {
        snprintf(errstr, errlen,
                 "event %s: contract_id: it waits for %s, but %zu events (%zu bytes) already "
                 "wait in contract %s, the most one contract holds (%u bytes); send it again "
                 "once %s has arrived",
                 ev->event_id, wait, (size_t)c->npend, c->pend_bytes, c->contract_id,
                 RS_ENG_PENDING_MAX_BYTES, wait);
        rs_eng_pending_free(p);
        memset(p, 0, sizeof(*p));
        e->stats.rejected++;
        return RS_APPLY_REJECTED;
    }
    c->pend_bytes += p->len;
    c->npend++;
    rs_eng_mark_changed(e, c);
    if (rs_eng_seen_note(e, c, ev, idh, ch))
        return RS_APPLY_NOMEM;
    e->stats.pending++;
    return RS_APPLY_PENDING;
}

static void late_reject(rs_engine_t *e, const rs_event_t *ev, const char *why)
{
    if (rs_eng_grow((void **)&e->late, &e->caplate, e->nlate + 1, sizeof(rs_rejection_t)))
        return;
    rs_rejection_t *r = &e->late[e->nlate++];
    rs_eng_copy_id(r->event_id, ev->event_id);
    rs_eng_copy_id(r->contract_id, ev->contract_id);
    r->type = ev->type;
    snprintf(r->reason, sizeof(r->reason), "%s", why);
    e->stats.rejected++;
}

/* Unpack waiting event i into ev; if it still waits, refresh its hint and
 * return 1 (ev cleared); 0 if it can apply now (ev holds it), -1 on ENOMEM. */
static int pending_check(rs_contract_t *c, size_t i, rs_event_t *ev)
{
    rs_pending_t *p = &c->pend[i];
    if (rs_eng_pending_unpack(p, ev))
        return -1;
    const char *id;
    int hint = rs_eng_wait_kind(c, ev, &id);
    if (hint == RS_ENG_WAIT_NONE)
        return 0;
    rs_pending_t np = {0};
    if (rs_eng_pending_pack(&np, ev, p->blob, hint, id) == 0) {
        c->pend_bytes = c->pend_bytes - p->len + np.len;
        rs_eng_pending_free(p);
        *p = np;
    }
    rs_event_clear(ev);
    return 1;
}

/* Apply waiting events that have become applicable, in arrival order. */
void rs_eng_drain_pending(rs_engine_t *e, rs_contract_t *c)
{
    int progress = 1;
    while (progress) {
        progress = 0;
        for (size_t i = 0; i < c->npend; i++) {
            rs_event_t ev;
            if (hint_holds(c, &c->pend[i]))
                continue;
            int rc = pending_check(c, i, &ev);
            if (rc != 0)
                continue; /* still waits (or no memory to look: it keeps waiting) */
            rs_pending_t p = c->pend[i];
            memmove(&c->pend[i], &c->pend[i + 1], (c->npend - i - 1) * sizeof(rs_pending_t));
            c->npend--;
            c->pend_bytes -= p.len;
            e->stats.pending--;
            rs_eng_pending_free(&p);
            char err[512];
            if (rs_eng_apply_now(e, c, &ev, err, sizeof(err)) == 0) {
                e->stats.applied++;
            } else {
                /* forget it, so a corrected event with the same id can come */
                rs_eng_seen_forget(e, c, rs_eng_str_hash(ev.event_id, RS_ENG_EVENT_ID_SEED));
                late_reject(e, &ev, err);
            }
            rs_event_clear(&ev);
            progress = 1;
            break;
        }
    }
}

size_t rs_engine_pending_count(const rs_engine_t *e)
{
    return (size_t)e->stats.pending;
}

void rs_engine_pending_get(const rs_engine_t *ce, size_t i, rs_pending_view_t *o)
{
    rs_engine_t *e = (rs_engine_t *)ce;
    memset(o, 0, sizeof(*o));
    if (rs_eng_sort_contracts(e))
        return;
    for (size_t k = 0; k < e->ncontracts; k++) {
        rs_contract_t *c = e->sorted[k];
        if (i < c->npend) {
            o->event_id = c->pend[i].blob + c->pend[i].id_off;
            o->contract_id = c->contract_id;
            o->type = c->pend[i].type;
            o->waiting_for = c->pend[i].blob;
            return;
        }
        i -= c->npend;
    }
}
