/*
 * rs_engine_pending.c — events that cannot apply yet (I8): what an event
 * waits for (its contract, invoice or line), the contract's queue of
 * waiting events, applying them once what they wait for has arrived, and
 * the pending views.
 *
 * Invariants:
 *   - A waiting event is a deep copy (rs_event_copy), owned by its
 *     contract's queue until it is applied or rejected.
 *   - Waiting events are applied in arrival order. One that fails then is
 *     reported as a late rejection and its id leaves the seen set, so a
 *     corrected event with the same id can come.
 *   - e->stats.pending is the number of waiting events of all contracts.
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

/* Is the event applicable now? Returns NULL, or what it waits for. */
const char *rs_eng_waits_for(const rs_contract_t *c, const rs_event_t *ev, char *buf, size_t n)
{
    if (!c->booked && ev->type != RS_EV_CONTRACT_BOOKED) {
        snprintf(buf, n, "contract %s", c->contract_id);
        return buf;
    }
    if (refers_to_invoice(ev->type) && rs_eng_find_invoice(c, ev->invoice_id) < 0) {
        snprintf(buf, n, "invoice %s", ev->invoice_id);
        return buf;
    }
    /* a line an amendment on the contracts topic has not added yet */
    if ((ev->type == RS_EV_USAGE_RECORDED || ev->type == RS_EV_MILESTONE_COMPLETED) &&
        rs_eng_find_line(c, ev->line_id) < 0) {
        snprintf(buf, n, "line %s", ev->line_id);
        return buf;
    }
    if (ev->type == RS_EV_INVOICE_ISSUED)
        for (int i = 0; i < ev->n_bill_lines; i++)
            if (rs_eng_find_line(c, ev->bill_lines[i].line_id) < 0) {
                snprintf(buf, n, "line %s", ev->bill_lines[i].line_id);
                return buf;
            }
    return NULL;
}

/* Queue an event until what it waits for (`wait`) arrives. */
rs_apply_result_t rs_eng_pending_add(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                                     const char *wait, uint64_t idh, uint64_t ch)
{
    if (rs_eng_grow((void **)&c->pend, &c->cappend, c->npend + 1, sizeof(rs_pending_t)))
        return RS_APPLY_NOMEM;
    rs_pending_t *p = &c->pend[c->npend];
    memset(p, 0, sizeof(*p));
    if (rs_event_copy(&p->ev, ev))
        return RS_APPLY_NOMEM;
    snprintf(p->waiting_for, sizeof(p->waiting_for), "%s", wait);
    c->npend++;
    rs_eng_mark_changed(e, c);
    if (rs_eng_seen_add(&c->seen, &c->nseen, &c->capseen, idh, ch))
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

/* Apply waiting events that have become applicable, in arrival order. */
void rs_eng_drain_pending(rs_engine_t *e, rs_contract_t *c)
{
    int progress = 1;
    while (progress) {
        progress = 0;
        for (size_t i = 0; i < c->npend; i++) {
            char buf[RS_ID_MAX + 16];
            if (rs_eng_waits_for(c, &c->pend[i].ev, buf, sizeof(buf)))
                continue;
            rs_pending_t p = c->pend[i];
            memmove(&c->pend[i], &c->pend[i + 1], (c->npend - i - 1) * sizeof(rs_pending_t));
            c->npend--;
            e->stats.pending--;
            char err[512];
            if (rs_eng_apply_now(e, c, &p.ev, err, sizeof(err)) == 0) {
                e->stats.applied++;
            } else {
                /* forget it, so a corrected event with the same id can come */
                rs_eng_seen_remove(&c->seen, &c->nseen, &c->capseen,
                                   rs_eng_str_hash(p.ev.event_id, 7));
                late_reject(e, &p.ev, err);
            }
            rs_event_clear(&p.ev);
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
            o->event_id = c->pend[i].ev.event_id;
            o->contract_id = c->contract_id;
            o->type = c->pend[i].ev.type;
            o->waiting_for = c->pend[i].waiting_for;
            return;
        }
        i -= c->npend;
    }
}
