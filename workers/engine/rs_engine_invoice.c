/*
 * rs_engine_invoice.c — events on invoices: invoice.issued, invoice.voided,
 * credit_note.issued and invoice.uncollectible (a write-off under either
 * bad-debt policy), and the allowance true-up that follows any change to an
 * uncollectible invoice's open receivable.
 *
 * Invariants:
 *   - Per invoice line, credited <= amount and credit_tax <= tax; the open
 *     receivable (rs_eng_open_ar) is gross less credits and payments, and
 *     never below zero.
 *   - What was paid for an amount a credit note or void takes back becomes
 *     customer credit, never a negative receivable.
 *   - Under the allowance policy, an uncollectible invoice's allowance equals
 *     its open receivable after every event that touches it.
 *   - Invoices and voids of ratable and usage lines are also recorded as
 *     dated billing, so credits compare with what was billed by their date,
 *     not by arrival order.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

/* Record dated billing on a line; if credits or a stop depend on it, the
 * line is rebuilt from the earliest of them. */
static int record_billing(rs_engine_t *e, rs_contract_t *c, int li, rs_date_t on,
                          rs_money_t amount)
{
    rs_line_t *l = &c->lines[li];
    if (rs_eng_growi((void **)&l->bill, &l->capbill, l->nbill + 1, sizeof(rs_billing_t)))
        return -1;
    l->bill[l->nbill].on = on;
    l->bill[l->nbill].amount = amount;
    l->nbill++;
    rs_date_t first = RS_DATE_NONE;
    for (int i = 0; i < l->nchg; i++)
        if (l->chg[i].kind != RS_CH_TERMS && (first == RS_DATE_NONE || l->chg[i].on < first))
            first = l->chg[i].on;
    if (first == RS_DATE_NONE)
        return 0;
    rs_eng_mark_dirty(c, rs_period_of(first));
    return rs_eng_rebuild_line(e, c, l);
}

int rs_eng_apply_invoice(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                         size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    char f[64];
    int k = rs_eng_find_invoice(c, ev->invoice_id);
    if (k >= 0)
        return rs_eng_verr(&v, "invoice_id: invoice %s was already issued by event %s",
                           ev->invoice_id, rs_eng_str(c, c->inv[k].source));
    if (ev->n_bill_lines <= 0)
        return rs_eng_verr(&v, "lines: at least one line is required");
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "issued_on: required");
    rs_inv_line_t *il = calloc((size_t)ev->n_bill_lines, sizeof(*il));
    rs_money_t total = 0; /* gross */
    if (il == NULL)
        return rs_eng_verr(&v, "out of memory");
    for (int i = 0; i < ev->n_bill_lines; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        il[i].line = rs_eng_find_line(c, b->line_id);
        if (il[i].line < 0) {
            free(il);
            return rs_eng_verr(&v, "lines[%d].line_id: contract %s has no line \"%s\"", i,
                               c->contract_id, b->line_id);
        }
        for (int j = 0; j < i; j++)
            if (il[j].line == il[i].line) {
                free(il);
                return rs_eng_verr(&v, "lines[%d].line_id: line \"%s\" is on the invoice twice",
                                   i, b->line_id);
            }
        rs_eng_field(f, sizeof(f), "lines", i, ".amount");
        if (rs_eng_to_minor(&v, f, b->amount, c->exponent, 0, &il[i].amount)) {
            free(il);
            return -1;
        }
        if (b->has_tax) {
            char ft[64];
            rs_eng_field(ft, sizeof(ft), "lines", i, ".tax");
            if (rs_eng_to_minor(&v, ft, b->tax, c->exponent, 0, &il[i].tax)) {
                free(il);
                return -1;
            }
        }
        /* the line's billed total and the invoice's gross total stay in range */
        rs_money_t billed, gross;
        if (rs_eng_check_sum(&v, f, "the line's billed total", c->lines[il[i].line].billed,
                             il[i].amount, &billed) ||
            rs_eng_check_sum(&v, f, "the invoice's total", total, il[i].amount, &gross) ||
            rs_eng_check_sum(&v, f, "the invoice's total", gross, il[i].tax, &total)) {
            free(il);
            return -1;
        }
    }
    rs_eng_str_t id, src;
    if (rs_eng_growi((void **)&c->inv, &c->capinv, c->ninv + 1, sizeof(rs_invoice_t)) ||
        rs_eng_str_put(c, ev->invoice_id, RS_ID_MAX, &id) ||
        rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src)) {
        free(il);
        return rs_eng_verr(&v, "out of memory");
    }
    rs_invoice_t *inv = &c->inv[c->ninv++];
    memset(inv, 0, sizeof(*inv));
    inv->invoice_id = id;
    inv->source = src;
    inv->issued_on = ev->on;
    inv->lines = il;
    inv->nlines = ev->n_bill_lines;
    for (int i = 0; i < inv->nlines; i++) {
        rs_line_t *l = &c->lines[il[i].line];
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, il[i].line, RS_ENTRY_INVOICE, "invoice", ev->on,
                           RS_PERIOD_NONE, ev->invoice_id);
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_dr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, il[i].amount + il[i].tax);
        rs_eng_entry_cr(&x, RS_ACCT_TAX_PAYABLE, il[i].tax);
        rs_eng_post_billing(&x, l, il[i].amount);
        rs_eng_entry_emit(&x);
        if (l->method != RS_METHOD_MILESTONE &&
            record_billing(e, c, il[i].line, ev->on, il[i].amount))
            return rs_eng_verr(&v, "out of memory");
    }
    return 0;
}

/* Open receivable of an invoice line (gross, after credits and payments). */
rs_money_t rs_eng_open_ar(const rs_inv_line_t *il)
{
    rs_money_t o = il->amount + il->tax - il->credited - il->credit_tax - il->paid;
    return o > 0 ? o : 0;
}

/* Under the allowance policy the allowance on an uncollectible invoice is its
 * whole open receivable, whatever happens to it later (a refund re-opens it,
 * a failed payment, a credit note): true it up with one entry per line. */
void rs_eng_allowance_sync(rs_engine_t *e, rs_contract_t *c, rs_invoice_t *inv, rs_date_t on,
                           const char *document, const char *source)
{
    if (!inv->uncollectible || inv->voided || e->policy.bad_debt != RS_BAD_DEBT_ALLOWANCE)
        return;
    for (int i = 0; i < inv->nlines; i++) {
        rs_inv_line_t *il = &inv->lines[i];
        rs_money_t delta = rs_eng_open_ar(il) - il->allowance;
        if (delta == 0)
            continue;
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, il->line,
                           delta > 0 ? RS_ENTRY_WRITE_OFF : RS_ENTRY_RECOVERY, "allowance", on,
                           RS_PERIOD_NONE, document);
        rs_eng_entry_source(&x, source);
        rs_eng_entry_dr(&x, RS_ACCT_BAD_DEBT_EXPENSE, delta);
        rs_eng_entry_cr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, delta);
        il->allowance += delta;
        c->written_off += delta;
        rs_eng_entry_emit(&x);
    }
}

int rs_eng_apply_credit_note(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                             char *errstr, size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    char f[64], a1[48], a2[48];
    rs_invoice_t *inv = &c->inv[rs_eng_find_invoice(c, ev->invoice_id)];
    if (inv->voided)
        return rs_eng_verr(&v, "invoice_id: invoice %s is void",
                           rs_eng_str(c, inv->invoice_id));
    if (rs_eng_doc_seen(c, ev->credit_note_id))
        return rs_eng_verr(&v, "credit_note_id: credit note %s was already issued",
                           ev->credit_note_id);
    if (ev->reason == RS_CREDIT_NONE)
        return rs_eng_verr(&v, "reason: required");
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "issued_on: required");
    if (ev->n_bill_lines <= 0)
        return rs_eng_verr(&v, "lines: at least one line is required");
    int n = ev->n_bill_lines;
    rs_money_t *amt = calloc((size_t)n, sizeof(*amt)), *tax = calloc((size_t)n, sizeof(*tax));
    int *ix = calloc((size_t)n, sizeof(*ix));
    int rc = -1;
    if (amt == NULL || tax == NULL || ix == NULL) {
        rs_eng_verr(&v, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const rs_bill_line_t *b = &ev->bill_lines[i];
        ix[i] = -1;
        for (int k = 0; k < inv->nlines; k++)
            if (strcmp(rs_eng_str(c, c->lines[inv->lines[k].line].line_id), b->line_id) == 0)
                ix[i] = k;
        if (ix[i] < 0) {
            rs_eng_verr(&v, "lines[%d].line_id: invoice %s has no line \"%s\"", i,
                        rs_eng_str(c, inv->invoice_id), b->line_id);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (ix[j] == ix[i]) {
                rs_eng_verr(&v, "lines[%d].line_id: line \"%s\" is on the credit note twice", i,
                            b->line_id);
                goto out;
            }
        rs_eng_field(f, sizeof(f), "lines", i, ".amount");
        if (rs_eng_to_minor(&v, f, b->amount, c->exponent, 0, &amt[i]))
            goto out;
        if (b->has_tax) {
            rs_eng_field(f, sizeof(f), "lines", i, ".tax");
            if (rs_eng_to_minor(&v, f, b->tax, c->exponent, 0, &tax[i]))
                goto out;
        }
        const rs_inv_line_t *il = &inv->lines[ix[i]];
        if (amt[i] > il->amount - il->credited) {
            rs_eng_verr(
                &v, "lines[%d].amount: credits %s, only %s of the invoice line is left", i,
                rs_money_format(amt[i], c->exponent, a1, sizeof(a1)),
                rs_money_format(il->amount - il->credited, c->exponent, a2, sizeof(a2)));
            goto out;
        }
        if (tax[i] > il->tax - il->credit_tax) {
            rs_eng_verr(&v,
                        "lines[%d].tax: credits %s, only %s of the invoice line's tax is left",
                        i, rs_money_format(tax[i], c->exponent, a1, sizeof(a1)),
                        rs_money_format(il->tax - il->credit_tax, c->exponent, a2, sizeof(a2)));
            goto out;
        }
    }
    /* what becomes customer credit (at most the gross credited) stays in range */
    rs_money_t credit = c->customer_credit;
    for (int i = 0; i < n; i++) {
        rs_eng_field(f, sizeof(f), "lines", i, ".amount");
        if (rs_eng_check_sum(&v, f, "the customer credit", credit, amt[i] + tax[i], &credit))
            goto out;
    }
    /* the event's id is the source of the price changes (if any) */
    rs_eng_str_t src = 0;
    int any = 0;
    for (int i = 0; i < n; i++)
        any |= amt[i] != 0;
    if (rs_eng_doc_add(c, ev->credit_note_id) ||
        (any && rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src))) {
        rs_eng_verr(&v, "out of memory");
        goto out;
    }
    rs_treatment_t t =
        ev->reason == RS_CREDIT_DISCOUNT ? RS_TREATMENT_PROSPECTIVE : RS_TREATMENT_CATCH_UP;
    rs_eng_str_t rule = ev->reason == RS_CREDIT_DISCOUNT ? RS_ENG_RULE_CREDIT_DISCOUNT
                                                         : RS_ENG_RULE_CREDIT_TRUE_UP;
    for (int i = 0; i < n; i++) {
        rs_inv_line_t *il = &inv->lines[ix[i]];
        int li = il->line;
        rs_money_t jump = 0;
        int comp = 0;
        if (rs_eng_price_change(e, c, li, -amt[i], ev->on, t, RS_ACCT_REVENUE_CONTRA, rule, src,
                                &jump, &comp)) {
            rs_eng_verr(&v, "out of memory");
            goto out;
        }
        /* taken after the change: it may have moved the contract's lines */
        rs_line_t *l = &c->lines[li];
        rs_money_t gross = amt[i] + tax[i], to_ar = rs_eng_open_ar(il);
        if (to_ar > gross)
            to_ar = gross;
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, li, RS_ENTRY_CREDIT_NOTE,
                           rs_credit_reason_name(ev->reason), ev->on, RS_PERIOD_NONE,
                           ev->credit_note_id);
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_source(&x, rs_eng_str(c, inv->source));
        rs_eng_entry_dr(&x, RS_ACCT_TAX_PAYABLE, tax[i]);
        rs_eng_post_billing(&x, l, -amt[i]);
        if (jump != 0) {
            rs_eng_post_revenue(&x, l, RS_ACCT_REVENUE_CONTRA, jump);
            if (rs_eng_posted_add(l, rs_period_of(ev->on), comp, RS_ACCT_REVENUE_CONTRA,
                                  jump)) {
                rs_eng_verr(&v, "out of memory");
                goto out;
            }
        }
        /* a credit dated before what is already recognized: all revenue
         * recognized above the new schedule goes to revenue_contra here */
        if (t == RS_TREATMENT_CATCH_UP)
            rs_eng_true_up_posted(&x, li, rs_period_of(ev->on), c->horizon);
        rs_eng_entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, to_ar);
        rs_eng_entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, gross - to_ar);
        /* money paid for what is now credited is the customer's, not the line's */
        c->customer_credit += gross - to_ar;
        inv->credit += gross - to_ar;
        il->paid -= gross - to_ar;
        l->received -= gross - to_ar;
        x.en.received = -(gross - to_ar);
        il->credited += amt[i];
        il->credit_tax += tax[i];
        rs_eng_entry_emit(&x);
    }
    rs_eng_allowance_sync(e, c, inv, ev->on, ev->credit_note_id, ev->event_id);
    rc = 0;
out:
    free(amt);
    free(tax);
    free(ix);
    return rc;
}

int rs_eng_apply_void(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev, char *errstr,
                      size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    rs_invoice_t *inv = &c->inv[rs_eng_find_invoice(c, ev->invoice_id)];
    if (inv->voided)
        return rs_eng_verr(&v, "invoice_id: invoice %s is already void",
                           rs_eng_str(c, inv->invoice_id));
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "voided_on: required");
    /* what was paid becomes customer credit: it stays in range */
    rs_money_t credit = c->customer_credit;
    for (int i = 0; i < inv->nlines; i++) {
        const rs_inv_line_t *il = &inv->lines[i];
        rs_money_t paid =
            il->amount - il->credited + il->tax - il->credit_tax - rs_eng_open_ar(il);
        if (rs_eng_check_sum(&v, "invoice_id", "the customer credit", credit, paid, &credit))
            return -1;
    }
    inv->voided = 1;
    for (int i = 0; i < inv->nlines; i++) {
        rs_inv_line_t *il = &inv->lines[i];
        rs_line_t *l = &c->lines[il->line];
        rs_money_t net = il->amount - il->credited, tax = il->tax - il->credit_tax;
        rs_money_t open = rs_eng_open_ar(il), paid_part = net + tax - open;
        rs_entry_ctx_t x;
        rs_eng_entry_begin(&x, e, c, il->line, RS_ENTRY_VOID, "void", ev->on, RS_PERIOD_NONE,
                           rs_eng_str(c, inv->invoice_id));
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_source(&x, rs_eng_str(c, inv->source));
        rs_eng_entry_dr(&x, RS_ACCT_TAX_PAYABLE, tax);
        rs_eng_post_billing(&x, l, -net);
        rs_eng_entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, open);
        rs_eng_entry_cr(&x, RS_ACCT_CUSTOMER_CREDIT, paid_part);
        c->customer_credit += paid_part;
        inv->credit += paid_part;
        il->paid -= paid_part;
        l->received -= paid_part;
        x.en.received = -paid_part;
        if (il->allowance > 0) { /* the doubtful receivable is gone with the invoice */
            rs_eng_entry_dr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, il->allowance);
            rs_eng_entry_cr(&x, RS_ACCT_BAD_DEBT_EXPENSE, il->allowance);
            c->written_off -= il->allowance;
            il->allowance = 0;
        }
        il->credited = il->amount;
        il->credit_tax = il->tax;
        rs_eng_entry_emit(&x);
        if (l->method != RS_METHOD_MILESTONE && record_billing(e, c, il->line, ev->on, -net))
            return rs_eng_verr(&v, "out of memory");
    }
    return 0;
}

int rs_eng_apply_uncollectible(rs_engine_t *e, rs_contract_t *c, const rs_event_t *ev,
                               char *errstr, size_t errlen)
{
    rs_vctx_t v = {ev, errstr, errlen};
    rs_invoice_t *inv = &c->inv[rs_eng_find_invoice(c, ev->invoice_id)];
    if (inv->voided)
        return rs_eng_verr(&v, "invoice_id: invoice %s is void",
                           rs_eng_str(c, inv->invoice_id));
    if (inv->uncollectible)
        return rs_eng_verr(&v, "invoice_id: invoice %s was already declared uncollectible",
                           rs_eng_str(c, inv->invoice_id));
    if (ev->on == RS_DATE_NONE)
        return rs_eng_verr(&v, "declared_on: required");
    /* the contract's written-off total stays in range */
    rs_money_t written = c->written_off;
    for (int i = 0; i < inv->nlines; i++)
        if (rs_eng_check_sum(&v, "invoice_id", "the contract's written-off total", written,
                             rs_eng_open_ar(&inv->lines[i]), &written))
            return -1;
    rs_eng_str_t src = 0; /* the event's id, once a price change needs it */
    inv->uncollectible = 1;
    /* reverse_revenue (ASC 606-10-25-7): collection is no longer probable,
     * so the contract recognizes nothing from the declaration until a
     * payment shows otherwise (rs_eng_apply_payment lifts it) */
    if (e->policy.bad_debt == RS_BAD_DEBT_REVERSE_REVENUE && c->suspended_on == RS_DATE_NONE) {
        int open = 0;
        for (int i = 0; i < inv->nlines; i++)
            open |= rs_eng_open_ar(&inv->lines[i]) > 0;
        if (open) {
            c->suspended_on = ev->on;
            rs_eng_mark_dirty(c, rs_period_of(ev->on));
        }
    }
    for (int i = 0; i < inv->nlines; i++) {
        rs_inv_line_t *il = &inv->lines[i];
        rs_money_t open = rs_eng_open_ar(il);
        if (open <= 0)
            continue;
        rs_entry_ctx_t x;
        if (e->policy.bad_debt == RS_BAD_DEBT_ALLOWANCE) {
            rs_eng_entry_begin(&x, e, c, il->line, RS_ENTRY_WRITE_OFF, "allowance", ev->on,
                               RS_PERIOD_NONE, rs_eng_str(c, inv->invoice_id));
            rs_eng_entry_source(&x, ev->event_id);
            rs_eng_entry_dr(&x, RS_ACCT_BAD_DEBT_EXPENSE, open);
            rs_eng_entry_cr(&x, RS_ACCT_ALLOWANCE_DOUBTFUL, open);
            il->allowance += open;
            c->written_off += open;
            rs_eng_entry_emit(&x);
            continue;
        }
        /* reverse revenue: the open amount is credited (catch-up true-up) */
        rs_money_t gross = il->amount + il->tax - il->credited - il->credit_tax;
        rs_money_t tax_open =
            gross > 0
                ? (rs_money_t)rs_div_round((__int128)open * (il->tax - il->credit_tax), gross)
                : 0;
        rs_money_t net_open = open - tax_open, jump = 0;
        int comp = 0;
        if ((net_open != 0 && src == 0 && rs_eng_str_put(c, ev->event_id, RS_ID_MAX, &src)) ||
            rs_eng_price_change(e, c, il->line, -net_open, ev->on, RS_TREATMENT_CATCH_UP,
                                RS_ACCT_REVENUE_CONTRA, RS_ENG_RULE_WRITE_OFF, src, &jump,
                                &comp))
            return rs_eng_verr(&v, "out of memory");
        rs_line_t *l = &c->lines[il->line];
        rs_eng_entry_begin(&x, e, c, il->line, RS_ENTRY_WRITE_OFF, "reverse_revenue", ev->on,
                           RS_PERIOD_NONE, rs_eng_str(c, inv->invoice_id));
        rs_eng_entry_source(&x, ev->event_id);
        rs_eng_entry_dr(&x, RS_ACCT_TAX_PAYABLE, tax_open);
        rs_eng_post_billing(&x, l, -net_open);
        if (jump != 0) {
            rs_eng_post_revenue(&x, l, RS_ACCT_REVENUE_CONTRA, jump);
            if (rs_eng_posted_add(l, rs_period_of(ev->on), comp, RS_ACCT_REVENUE_CONTRA, jump))
                return rs_eng_verr(&v, "out of memory");
        }
        rs_eng_true_up_posted(&x, il->line, rs_period_of(ev->on), c->horizon);
        rs_eng_entry_cr(&x, RS_ACCT_ACCOUNTS_RECEIVABLE, open);
        il->credited += net_open;
        il->credit_tax += tax_open;
        c->written_off += open;
        rs_eng_entry_emit(&x);
    }
    return 0;
}
