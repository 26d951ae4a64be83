/*
 * rs_engine.c — the recognition engine's entry points: creating an engine,
 * rs_engine_apply() (event checks, idempotency, period.closed, waiting or
 * dispatching to the event handlers, moving the contract's clock),
 * rs_engine_advance(), and the hints that fetch a coming event's state
 * ahead (rs_engine_prefetch: they never change a result). Public contract in rs_engine.h, state
 * in internal/rs_engine_internal.h.
 *
 * The engine is one module in several files, each keeping its share of the
 * invariants below:
 *   rs_engine_table.c     arrays, the contract table, seen sets, changed set
 *   rs_engine_schedule.c  R(d) and the changes that rebuild it      (I1, I2)
 *   rs_engine_posting.c   entries; posting R up to the horizon  (I3 I4 I5 I7)
 *   rs_engine_validate.c  event errors, amounts, lookups, allocation
 *   rs_engine_contract.c  contract, milestone and usage events          (I6)
 *   rs_engine_invoice.c   invoices, voids, credit notes, write-offs     (I6)
 *   rs_engine_payment.c   payments, refunds, failed payments            (I6)
 *   rs_engine_pending.c   events waiting for a reference                (I8)
 *   rs_engine_seen.c      the idempotency set: in contracts or a seen store
 *   rs_engine_views.c     read-only views for reports
 *   rs_engine_state.c     durable records of contracts and engine meta
 *
 * Invariants kept by the engine (the scenario and property tests check each):
 *
 *   I1  Money is int64 minor units; intermediate products use __int128; the
 *       only rounding is rs_div_round (half away from zero) applied to
 *       cumulative amounts, so every schedule sums exactly to its total.
 *       Every amount and every total the engine keeps (a line's price,
 *       billed, received and usage value, a contract's total and customer
 *       credit, an invoice's gross) stays within RS_MONEY_MAX: handlers
 *       check the totals an event would change on temporaries
 *       (rs_eng_check_sum, rs_eng_usage_total) and reject it before
 *       changing anything, so nothing wraps and any two kept values add
 *       within int64.
 *   I2  Per line, R(d) (cumulative revenue through the end of day d under the
 *       current terms) is a pure function of the line's segments,
 *       adjustments, milestones and usage. A change effective from E never
 *       changes R before E (prospective and catch-up alike): a catch-up is a
 *       discontinuity of R at E, not a rewrite of the past.
 *   I3  posted[] records, per (service period, component), the revenue
 *       already posted. Syncing a line posts, for every service period up to
 *       the horizon and every component, desired - posted. Component 0 is the
 *       regular schedule; other components are the jumps of segments and the
 *       adjustments (catch-ups, credit true-ups, forfeits), each posted to its
 *       own account and rule. A credit note posts its jump at once, in the
 *       same entry as its billing effect, and records it as posted.
 *   I4  A posting's natural date is its business date (document date, or the
 *       last day of its service period, or the triggering event's date if
 *       later). It posts in the first open period at or after that date, and
 *       never before the contract's frontier (the latest period it has posted
 *       to). So a closed period never receives a posting, a change never
 *       posts before the period in which it happened, and a contract's
 *       entries are in non-decreasing period order: the balances as of any
 *       period end are those after a prefix of its entries, which I5 keeps
 *       consistent.
 *   I5  Per line at every moment: deferred >= 0, unbilled >= 0, at most one
 *       of them non-zero, and deferred - unbilled = billed - recognized.
 *       Every entry's debits equal its credits; an entry nets each account.
 *   I6  An event is validated completely before anything is changed, so a
 *       rejected event leaves no trace (not even in the idempotency set).
 *       Moving the contract's clock to the event's date first is not a
 *       change: it posts what time alone had already earned.
 *   I7  Entry ids are "<contract_id>#<seq>" with seq the contract's counter:
 *       the same events in the same order give the same ids.
 *   I8  Events for a contract not yet booked, invoice-referencing events for
 *       an invoice not yet issued, and invoices, usage or milestones for a
 *       line no amendment has added yet, wait in the contract's pending list
 *       in arrival order and are applied (or rejected, as late rejections)
 *       when the reference arrives. What waits is visible (pending report).
 *       A contract holds at most RS_ENG_PENDING_MAX_BYTES of waiting events;
 *       one more is rejected (nothing else grows a record per event: usage
 *       is per line and day, ids are in the seen store when one is set).
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>

#include "rs_engine_internal.h"

/* ---- the engine ---- */

int rs_engine_new(rs_engine_t **out, const rs_policy_t *policy, char *errstr, size_t errlen)
{
    rs_engine_t *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    if (policy)
        e->policy = *policy;
    else
        rs_policy_defaults(&e->policy);
    if (e->policy.cancellation > RS_CANCEL_FORFEIT ||
        e->policy.bad_debt > RS_BAD_DEBT_REVERSE_REVENUE ||
        e->policy.proration > RS_PRORATE_30_360 || e->policy.n_codes < 0 ||
        e->policy.n_codes > RS_POLICY_MAX_CODES) {
        free(e);
        snprintf(errstr, errlen, "invalid policy");
        return -1;
    }
    e->horizon = RS_PERIOD_NONE;
    e->closed_through = RS_PERIOD_NONE;
    *out = e;
    return 0;
}

void rs_engine_destroy(rs_engine_t *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nslots; i++)
        rs_eng_contract_free(e, e->slots[i]);
    free(e->slots);
    for (size_t i = 0; i < e->capitab; i++)
        free(e->itab[i]); /* none is left once every contract is freed */
    free(e->itab);
    free(e->sorted);
    free(e->views);
    free(e->cviews);
    free(e->gseen);
    free(e->closes);
    free(e->late);
    free(e->changed);
    free(e->changed_ids);
    rs_eng_seen_free(e);
    free(e);
}

void rs_engine_set_sink(rs_engine_t *e, rs_entry_sink_fn fn, void *opaque)
{
    e->sink = fn;
    e->sink_opaque = opaque;
}

const rs_policy_t *rs_engine_policy(const rs_engine_t *e)
{
    return &e->policy;
}

rs_period_t rs_engine_closed_through(const rs_engine_t *e)
{
    return e->closed_through;
}

/* Closing a period closes every period before it too: books close in order. */
int rs_engine_period_closed(const rs_engine_t *e, rs_period_t p)
{
    return e->closed_through != RS_PERIOD_NONE && p <= e->closed_through;
}

void rs_engine_get_stats(const rs_engine_t *e, rs_engine_stats_t *out)
{
    *out = e->stats;
    out->contracts = e->ncontracts;
}

/* ---- dispatch ---- */

/* The date an event happened, which moves the contract's clock: when it
 * occurred, or its document or completion date if that is later (so a
 * pre-dated invoice still finds the months before it recognized). Effective
 * dates do not move the clock: a future-dated amendment is not the future. */
static rs_date_t event_clock(const rs_event_t *ev)
{
    rs_date_t t = ev->occurred_on;
    if (ev->on != RS_DATE_NONE && (t == RS_DATE_NONE || ev->on > t))
        t = ev->on;
    if (ev->completed_on != RS_DATE_NONE && (t == RS_DATE_NONE || ev->completed_on > t))
        t = ev->completed_on;
    return t;
}

int rs_eng_apply_now(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                     size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    /* Move the clock first: what was delivered before this event is posted
     * under the terms in force before it (I6). */
    rs_date_t t = event_clock(ev);
    if (c->booked && t != RS_DATE_NONE) {
        rs_period_t H = rs_period_of(t) - 1;
        if (c->horizon == RS_PERIOD_NONE || H > c->horizon)
            if (rs_eng_sync_contract(e, c, H, RS_DATE_NONE))
                return rs_eng_verr(&v, "out of memory");
    }
    int rc;
    switch (ev->type) {
    case RS_EV_CONTRACT_BOOKED:
        rc = rs_eng_apply_booked(e, c, ev, errstr, errlen);
        if (rc == 0 && t != RS_DATE_NONE)
            c->horizon = RS_PERIOD_NONE;
        if (rc == 0 &&
            rs_eng_sync_contract(e, c, t != RS_DATE_NONE ? rs_period_of(t) - 1 : e->horizon,
                                 RS_DATE_NONE))
            return rs_eng_verr(&v, "out of memory");
        return rc;
    case RS_EV_CONTRACT_AMENDED:
        rc = rs_eng_apply_amended(e, c, ev, errstr, errlen);
        break;
    case RS_EV_CONTRACT_CANCELLED:
        rc = rs_eng_apply_cancelled(e, c, ev, errstr, errlen);
        break;
    case RS_EV_MILESTONE_COMPLETED:
        rc = rs_eng_apply_milestone(e, c, ev, errstr, errlen);
        break;
    case RS_EV_INVOICE_ISSUED:
        rc = rs_eng_apply_invoice(e, c, ev, errstr, errlen);
        break;
    case RS_EV_INVOICE_VOIDED:
        rc = rs_eng_apply_void(e, c, ev, errstr, errlen);
        break;
    case RS_EV_CREDIT_NOTE_ISSUED:
        rc = rs_eng_apply_credit_note(e, c, ev, errstr, errlen);
        break;
    case RS_EV_INVOICE_UNCOLLECTIBLE:
        rc = rs_eng_apply_uncollectible(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_RECEIVED:
        rc = rs_eng_apply_payment(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_REFUNDED:
        rc = rs_eng_apply_refund(e, c, ev, errstr, errlen);
        break;
    case RS_EV_PAYMENT_FAILED:
        rc = rs_eng_apply_payment_failed(e, c, ev, errstr, errlen);
        break;
    case RS_EV_USAGE_RECORDED:
        rc = rs_eng_apply_usage(e, c, ev, errstr, errlen);
        break;
    default:
        return rs_eng_verr(&v, "type: %s does not apply to a contract",
                           rs_event_type_name(ev->type));
    }
    if (rc == 0 && rs_eng_sync_contract(e, c, c->horizon, t))
        return rs_eng_verr(&v, "out of memory");
    return rc;
}

static int close_period(rs_engine_t *e, rs_period_t p)
{
    if (rs_engine_period_closed(e, p))
        return 0;
    /* everything earned through p is posted before the lock */
    if (e->horizon == RS_PERIOD_NONE || e->horizon < p)
        if (rs_engine_advance(e, p))
            return -1;
    e->closed_through = p;
    return 0;
}

static rs_apply_result_t reject(rs_engine_t *e)
{
    e->stats.rejected++;
    return RS_APPLY_REJECTED;
}

void rs_engine_event_digest(const rs_event_t *ev, rs_event_digest_t *out)
{
    out->id_hash = rs_eng_str_hash(ev->event_id, RS_ENG_EVENT_ID_SEED);
    out->content_hash = rs_event_hash(ev);
    out->contract_hash = rs_eng_str_hash(ev->contract_id, RS_ENG_CONTRACT_SEED);
}

/* ---- prefetching: the engine's time goes to cache misses ----
 *
 * Events come in date order, so each one touches a contract other events
 * left cold: its record, its lines, their schedules and postings, its seen
 * set — chains of pointers, each a miss the engine waits for. Fetching them
 * a few events ahead overlaps those misses with useful work. Pure hints: a
 * prefetch never faults and never changes what the engine computes. */

#define PF(p) __builtin_prefetch((p), 0, 3)

static void pf_span(const void *p, size_t bytes)
{
    const char *q = p;
    if (q == NULL)
        return;
    if (bytes > 1024) /* a lookup reads the head first; the rest is rare */
        bytes = 1024;
    for (size_t o = 0; o < bytes; o += 64)
        PF(q + o);
}

/* The contract record (its id, read by the lookup, is at its end). */
static void pf_contract(const rs_contract_t *c)
{
    pf_span(c, sizeof(*c));
    PF(c->contract_id);
}

/* What the contract record points to (the record is cached by now). */
static void pf_contract_parts(const rs_contract_t *c, uint64_t idh)
{
    pf_span(c->lines, (size_t)c->nlines * sizeof(*c->lines));
    pf_span(c->inv, (size_t)c->ninv * sizeof(*c->inv));
    pf_span(c->pay, (size_t)c->npay * sizeof(*c->pay));
    pf_span(c->str, c->nstr);
    if (c->capseen > RS_ENG_SEEN_LINEAR)
        PF(&c->seen[idh & (c->capseen - 1)]);
    else
        PF(c->seen);
}

/* What the lines point to (the lines are cached by now). */
static void pf_line_parts(const rs_contract_t *c)
{
    int n = c->nlines < 4 ? c->nlines : 4;
    for (int i = 0; i < n; i++) {
        const rs_line_t *l = &c->lines[i];
        pf_span(l->segs, (size_t)l->nseg * sizeof(*l->segs));
        pf_span(l->posted, (size_t)l->nposted * sizeof(*l->posted));
        if (l->nadj > 0)
            PF(l->adj);
        if (l->nbill > 0)
            PF(l->bill);
        if (l->nusage > 0)
            PF(&l->usage[l->nusage - 1]);
    }
}

void rs_engine_prefetch(const rs_engine_t *e, const rs_event_t *ev, const rs_event_digest_t *d,
                        int stage)
{
    if (e->nslots == 0)
        return;
    size_t mask = e->nslots - 1, at = d->contract_hash & mask;
    if (stage >= 3) { /* the table slot the lookup reads first */
        PF(&e->slots[at]);
        return;
    }
    if (stage == 2) { /* the contracts there (ours, or a collision's) */
        for (size_t i = 0; i < 3; i++) {
            const rs_contract_t *c = e->slots[(at + i) & mask];
            if (c == NULL)
                break;
            pf_contract(c);
        }
        return;
    }
    const rs_contract_t *c = rs_eng_contract_find_h(e, ev->contract_id, d->contract_hash);
    if (c == NULL)
        return;
    if (stage == 1) {
        pf_contract_parts(c, d->id_hash);
    } else {
        pf_line_parts(c);
        if (c->capseen > RS_ENG_SEEN_LINEAR)
            PF(&c->seen[d->id_hash & (c->capseen - 1)]);
    }
}

rs_apply_result_t rs_engine_apply(rs_engine_t *e, const rs_event_t *ev, char *errstr,
                                  size_t errlen)
{
    rs_event_digest_t d;
    rs_engine_event_digest(ev, &d);
    return rs_engine_apply_digested(e, ev, &d, errstr, errlen);
}

rs_apply_result_t rs_engine_apply_digested(rs_engine_t *e, const rs_event_t *ev,
                                           const rs_event_digest_t *digest, char *errstr,
                                           size_t errlen)
{
    errstr[0] = '\0';
    if (ev->event_id[0] == '\0') {
        snprintf(errstr, errlen, "event ?: event_id: required");
        return reject(e);
    }
    if (rs_event_type_name(ev->type) == NULL) {
        snprintf(errstr, errlen, "event %s: type: unknown event type", ev->event_id);
        return reject(e);
    }
    uint64_t idh = digest->id_hash, ch = digest->content_hash;

    if (ev->type == RS_EV_PERIOD_CLOSED) {
        rs_seen_t *s = rs_eng_seen_find(e->gseen, e->capgseen, idh);
        if (s && s->id_hash) {
            if (s->content_hash == ch) {
                e->stats.duplicates++;
                return RS_APPLY_DUPLICATE;
            }
            snprintf(errstr, errlen,
                     "event %s: event_id: conflicting duplicate (same id, different content)",
                     ev->event_id);
            return reject(e);
        }
        if (ev->period == RS_PERIOD_NONE) {
            snprintf(errstr, errlen, "event %s: period: required", ev->event_id);
            return reject(e);
        }
        if (close_period(e, ev->period) ||
            rs_eng_seen_add(&e->gseen, &e->ngseen, &e->capgseen, idh, ch))
            return RS_APPLY_NOMEM;
        e->stats.applied++;
        return RS_APPLY_OK;
    }

    if (ev->contract_id[0] == '\0') {
        snprintf(errstr, errlen, "event %s: contract_id: required", ev->event_id);
        return reject(e);
    }
    rs_contract_t *c = rs_eng_contract_get_or_create(e, ev->contract_id, digest->contract_hash);
    if (c == NULL)
        return RS_APPLY_NOMEM;
    uint64_t prev = 0;
    int seen = rs_eng_seen_check(e, c, idh, &prev);
    if (seen < 0) {
        snprintf(errstr, errlen, "event %s: event_id: the seen store failed", ev->event_id);
        return RS_APPLY_EIO;
    }
    if (seen) {
        if (prev == ch) {
            e->stats.duplicates++;
            return RS_APPLY_DUPLICATE;
        }
        snprintf(errstr, errlen,
                 "event %s: event_id: conflicting duplicate (same id, different content)",
                 ev->event_id);
        return reject(e);
    }
    char wait[RS_ID_MAX + 16];
    if (rs_eng_waits_for(c, ev, wait, sizeof(wait)))
        return rs_eng_pending_add(e, c, ev, wait, idh, ch, errstr, errlen);
    if (rs_eng_apply_now(e, c, ev, errstr, errlen))
        return reject(e);
    rs_eng_mark_changed(e, c);
    if (rs_eng_seen_note(e, c, ev, idh, ch))
        return RS_APPLY_NOMEM;
    e->stats.applied++;
    if (c->npend > 0)
        rs_eng_drain_pending(e, c);
    return RS_APPLY_OK;
}

void rs_engine_set_advance_hook(rs_engine_t *e, rs_engine_advance_fn fn, void *opaque)
{
    e->advance_hook = fn;
    e->advance_opaque = opaque;
}

int rs_engine_recognize_contract(rs_engine_t *e, const char *contract_id)
{
    rs_contract_t *c = rs_eng_contract_find(e, contract_id);
    if (c == NULL)
        return 0;
    if (rs_eng_sync_contract(e, c, e->horizon, RS_DATE_NONE))
        return -1;
    return c->changed ? 1 : 0;
}

int rs_engine_advance(rs_engine_t *e, rs_period_t through)
{
    if (e->horizon == RS_PERIOD_NONE || through > e->horizon) {
        /* the history a contract record left behind is caught up through */
        if (rs_eng_grow((void **)&e->closes, &e->capcloses, e->ncloses + 1, sizeof(*e->closes)))
            return -1;
        e->closes[e->ncloses].horizon = through;
        e->closes[e->ncloses++].closed_through = e->closed_through;
        e->horizon = through;
    }
    if (e->advance_hook != NULL)
        return e->advance_hook(e->advance_opaque, e) == 0 ? 0 : -1;
    if (rs_eng_sort_contracts(e))
        return -1;
    size_t n = e->ncontracts;
    for (size_t i = 0; i < n; i++) {
        /* the contracts lie anywhere in memory: fetch ahead (see above) */
        if (i + 8 < n)
            pf_contract(e->sorted[i + 8]);
        if (i + 4 < n)
            pf_contract_parts(e->sorted[i + 4], 0);
        if (i + 2 < n)
            pf_line_parts(e->sorted[i + 2]);
        if (rs_eng_sync_contract(e, e->sorted[i], e->horizon, RS_DATE_NONE))
            return -1;
    }
    return 0;
}

rs_period_t rs_engine_horizon(const rs_engine_t *e)
{
    return e->horizon;
}

size_t rs_engine_take_late_rejections(rs_engine_t *e, rs_rejection_t **out)
{
    size_t n = e->nlate;
    *out = e->late;
    e->late = NULL;
    e->nlate = e->caplate = 0;
    return n;
}
