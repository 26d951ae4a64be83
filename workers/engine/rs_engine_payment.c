/*
 * rs_engine_payment.c — events on payments: payment.received,
 * payment.refunded and payment.failed. They move cash, receivables and
 * customer credit; never revenue.
 *
 * Invariants:
 *   - A payment is split over its invoice's lines in proportion to their
 *     open receivables; what exceeds the open total is customer credit.
 *   - A refund first pays back the customer credit that arose on its invoice,
 *     then re-opens receivables in proportion to what each line was paid; it
 *     never exceeds what is left of its payment.
 *   - A payment fails at most once, never after a refund; the failure
 *     reverses what the payment did to receivables and customer credit.
 *   - Cash received against an allowance for doubtful accounts is a
 *     recovery: the allowance goes down by it.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

/* An invoice of up to this many lines (the usual) is paid without an
 * allocation: its per-line figures live on the stack. */
#define PAY_STACK_LINES 8

int rs_eng_apply_payment(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    rs_money_t amount;
    int k = rs_eng_find_invoice(c, ev->invoice_id);
    if (rs_eng_find_payment(c, ev->payment_id) >= 0)
        return rs_eng_verr(&v, "payment_id: payment %s was already received", ev->payment_id);
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "received_on: required");
    if (rs_eng_to_minor(&v, "amount", ev->amount, c->exponent, 1, &amount))
        return -1;
    rs_invoice_t *inv = &c->inv[k];
    int n = inv->nlines;
    rs_money_t open_s[PAY_STACK_LINES] = {0}, alloc_s[PAY_STACK_LINES] = {0};
    int heap = n + 1 > PAY_STACK_LINES, rc = -1;
    rs_money_t *open = heap ? calloc((size_t)n + 1, sizeof(*open)) : open_s;
    rs_money_t *alloc = heap ? calloc((size_t)n + 1, sizeof(*alloc)) : alloc_s;
    rs_eng_str_t id, src;
    uint32_t mark = c->nstr; /* a rejection below leaves no text behind */
    if (open == NULL || alloc == NULL ||
        rs_eng_growi((void **)&c->pay, &c->cappay, c->npay + 1, sizeof(rs_payment_t)) ||
        rs_eng_str_put(c, ev->payment_id, RS_ID_MAX, &id) ||
        rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src)) {
        rs_eng_verr(&v, "out of memory");
        goto exit;
    }
    rs_money_t total_open = 0;
    for (int i = 0; i < n; i++) {
        open[i] = inv->voided ? 0 : rs_eng_open_ar(&inv->lines[i]);
        total_open += open[i];
    }
    rs_money_t applied = amount < total_open ? amount : total_open;
    if (applied > 0 && rs_eng_allocate(applied, open, (size_t)n, alloc)) {
        rs_eng_verr(&v, "out of memory");
        goto exit;
    }
    /* the lines' received totals and the customer credit stay in range */
    rs_money_t sum;
    for (int i = 0; i < n; i++)
        if (rs_eng_check_sum(&v, "amount", "the line's received total",
                             c->lines[inv->lines[i].line].received, alloc[i], &sum)) {
            c->nstr = mark;
            goto exit;
        }
    if (rs_eng_check_sum(&v, "amount", "the customer credit", c->customer_credit,
                         amount - applied, &sum)) {
        c->nstr = mark;
        goto exit;
    }
    /* a payment lifts a reverse_revenue suspension: the months it held
     * back are recognized now (the sync after this event posts them) */
    if (c->suspended_on != RS_DATE_NONE) {
        rs_eng_mark_dirty(c, rs_period_of(c->suspended_on));
        c->suspended_on = RS_DATE_NONE;
    }
    rs_payment_t *p = &c->pay[c->npay++];
    memset(p, 0, sizeof(*p));
    p->payment_id = id;
    p->source = src;
    p->invoice = k;
    p->amount = amount;
    for (int i = 0; i < n; i++) {
        if (alloc[i] == 0)
            continue;
        rs_inv_line_t *il = &inv->lines[i];
        rs_line_t *l = &c->lines[il->line];
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, il->line, RS_ENTRY_PAYMENT, "payment", ev->on,
                           RS_PERIOD_NONE, ev->payment_id);
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_source(&x, rs_eng_str(c, inv->source));
        rs_eng_entry_dr(&x, RS_ACCT_CASH, alloc[i]);
        rs_eng_entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, alloc[i]);
        il->paid += alloc[i];
        l->received += alloc[i];
        x.en.received = alloc[i];
        rs_money_t rec = alloc[i] < il->allowance ? alloc[i] : il->allowance;
        if (rec > 0) { /* recovery of a written-off receivable */
            x.en.kind = RS_ENTRY_RECOVERY;
            snprintf(x.en.rule, sizeof(x.en.rule), "recovery");
            rs_eng_entry_dr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, rec);
            rs_eng_entry_cr(&x, RS_ACCT_BAD_DEBT_EXPENSE, rec);
            il->allowance -= rec;
            c->written_off -= rec;
        }
        rs_eng_entry_emit(&x);
    }
    if (amount > applied) {
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, -1, RS_ENTRY_CUSTOMER_CREDIT, "overpayment", ev->on,
                           RS_PERIOD_NONE, ev->payment_id);
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_dr(&x, RS_ACCT_CASH, amount - applied);
        rs_eng_entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, amount - applied);
        c->customer_credit += amount - applied;
        inv->credit += amount - applied;
        rs_eng_entry_emit(&x);
    }
    rc = 0;
exit:
    if (heap) {
        free(open);
        free(alloc);
    }
    return rc;
}

/* Shares of `amount` over an invoice's lines in proportion to what each
 * received (paid); out[] has inv->nlines entries. */
static int by_paid(const rs_invoice_t *inv, rs_money_t amount, rs_money_t *out)
{
    rs_money_t *w = calloc((size_t)inv->nlines + 1, sizeof(*w));
    if (w == NULL)
        return -1;
    for (int i = 0; i < inv->nlines; i++)
        w[i] = inv->lines[i].paid;
    int rc = rs_eng_allocate(amount, w, (size_t)inv->nlines, out);
    free(w);
    return rc;
}

/* A refund moves cash, never revenue: it pays back the customer's credit
 * balance first, and what is left re-opens the receivable of the lines the
 * payment was applied to (which the exceptions report shows). The revenue
 * effect of a refund comes from its credit note (reason refund). This keeps
 * the final balances independent of whether the credit note or the refund
 * arrives first. */
int rs_eng_apply_refund(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                        size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    char a1[48], a2[48];
    rs_money_t amount;
    int pi = rs_eng_find_payment(c, ev->payment_id);
    if (pi < 0 ||
        strcmp(rs_eng_str(c, c->inv[c->pay[pi].invoice].invoice_id), ev->invoice_id) != 0)
        return rs_eng_verr(&v, "payment_id: no payment %s was received on invoice %s",
                           ev->payment_id, ev->invoice_id);
    if (rs_eng_doc_seen(c, ev->refund_id))
        return rs_eng_verr(&v, "refund_id: refund %s was already made", ev->refund_id);
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "refunded_on: required");
    if (rs_eng_to_minor(&v, "amount", ev->amount, c->exponent, 1, &amount))
        return -1;
    rs_payment_t *p = &c->pay[pi];
    if (p->failed)
        return rs_eng_verr(&v, "payment_id: payment %s failed", rs_eng_str(c, p->payment_id));
    if (amount > p->amount - p->refunded)
        return rs_eng_verr(
            &v, "amount: refunds %s, only %s of payment %s is left",
            rs_money_format(amount, c->exponent, a1, sizeof(a1)),
            rs_money_format(p->amount - p->refunded, c->exponent, a2, sizeof(a2)),
            rs_eng_str(c, p->payment_id));
    rs_invoice_t *inv = &c->inv[p->invoice];
    rs_money_t paid_total = 0;
    for (int i = 0; i < inv->nlines; i++)
        paid_total += inv->lines[i].paid;
    /* only credit that arose on this invoice: credit from another invoice may
     * arrive later on its own topic, and the result must not depend on it */
    rs_money_t from_cc = amount < inv->credit ? amount : inv->credit;
    rs_money_t rest = amount - from_cc;
    if (rest > paid_total)
        return rs_eng_verr(&v,
                           "amount: refunds %s, more than the credit and what was "
                           "paid on invoice %s",
                           rs_money_format(amount, c->exponent, a1, sizeof(a1)),
                           rs_eng_str(c, inv->invoice_id));
    rs_money_t *share = calloc((size_t)inv->nlines + 1, sizeof(*share));
    if (share == NULL || by_paid(inv, rest, share) || rs_eng_doc_add(c, ev->refund_id)) {
        free(share);
        return rs_eng_verr(&v, "out of memory");
    }
    p->refunded += amount;
    if (from_cc > 0) {
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, -1, RS_ENTRY_REFUND, "credit_refund", ev->on,
                           RS_PERIOD_NONE, ev->refund_id);
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_source(&x, rs_eng_str(c, p->source));
        rs_eng_entry_dr(&x, RS_ACCT_CUSTOMER_CREDIT, from_cc);
        rs_eng_entry_cr(&x, RS_ACCT_CASH, from_cc);
        c->customer_credit -= from_cc;
        inv->credit -= from_cc;
        rs_eng_entry_emit(&x);
    }
    for (int i = 0; i < inv->nlines; i++) {
        if (share[i] == 0)
            continue;
        rs_inv_line_t *il = &inv->lines[i];
        rs_line_t *l = &c->lines[il->line];
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, il->line, RS_ENTRY_REFUND, "refund", ev->on,
                           RS_PERIOD_NONE, ev->refund_id);
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_source(&x, rs_eng_str(c, p->source));
        rs_eng_entry_dr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, share[i]);
        rs_eng_entry_cr(&x, RS_ACCT_CASH, share[i]);
        il->paid -= share[i];
        l->received -= share[i];
        x.en.received = -share[i];
        rs_eng_entry_emit(&x);
    }
    free(share);
    rs_eng_allowance_sync(e, c, inv, ev->on, ev->refund_id, ev->event_id);
    return 0;
}

int rs_eng_apply_payment_failed(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                                char *errstr, size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    int pi = rs_eng_find_payment(c, ev->payment_id);
    if (pi < 0)
        return 0; /* a failed attempt that was never recorded as received */
    rs_payment_t *p = &c->pay[pi];
    if (p->failed)
        return rs_eng_verr(&v, "payment_id: payment %s already failed",
                           rs_eng_str(c, p->payment_id));
    if (p->refunded > 0)
        return rs_eng_verr(&v, "payment_id: payment %s was partly refunded",
                           rs_eng_str(c, p->payment_id));
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "failed_on: required");
    rs_invoice_t *inv = &c->inv[p->invoice];
    rs_money_t paid_total = 0;
    for (int i = 0; i < inv->nlines; i++)
        paid_total += inv->lines[i].paid;
    rs_money_t on_lines = p->amount < paid_total ? p->amount : paid_total;
    rs_money_t from_cc = p->amount - on_lines;
    if (from_cc > inv->credit)
        return rs_eng_verr(&v, "payment_id: the credit from payment %s was already used",
                           rs_eng_str(c, p->payment_id));
    rs_money_t *share = calloc((size_t)inv->nlines + 1, sizeof(*share));
    if (share == NULL || by_paid(inv, on_lines, share)) {
        free(share);
        return rs_eng_verr(&v, "out of memory");
    }
    p->failed = 1;
    for (int i = 0; i < inv->nlines; i++) {
        if (share[i] == 0)
            continue;
        rs_inv_line_t *il = &inv->lines[i];
        rs_line_t *l = &c->lines[il->line];
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, il->line, RS_ENTRY_PAYMENT, "payment_failed", ev->on,
                           RS_PERIOD_NONE, rs_eng_str(c, p->payment_id));
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_source(&x, rs_eng_str(c, p->source));
        rs_eng_entry_dr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, share[i]);
        rs_eng_entry_cr(&x, RS_ACCT_CASH, share[i]);
        il->paid -= share[i];
        l->received -= share[i];
        x.en.received = -share[i];
        rs_eng_entry_emit(&x);
    }
    if (from_cc > 0) {
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, -1, RS_ENTRY_PAYMENT, "payment_failed", ev->on,
                           RS_PERIOD_NONE, rs_eng_str(c, p->payment_id));
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_dr(&x, RS_ACCT_CUSTOMER_CREDIT, from_cc);
        rs_eng_entry_cr(&x, RS_ACCT_CASH, from_cc);
        c->customer_credit -= from_cc;
        inv->credit -= from_cc;
        rs_eng_entry_emit(&x);
    }
    free(share);
    rs_eng_allowance_sync(e, c, inv, ev->on, rs_eng_str(c, p->payment_id), ev->event_id);
    return 0;
}
