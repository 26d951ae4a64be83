/*
 * rs_intake_billing.c — billing-system events to invoice, payment, refund,
 * void, write-off and credit-note events.
 *
 * The interface: a provider is a name, a reader that turns its files into
 * one ordered list of event objects, and a table of converters, one per
 * provider event type (billing_provider_t). Stripe is the one implemented;
 * Chargebee, Recurly and Zuora fit the same shape (their webhook events are
 * also {id, type, created, content/object} records) and are added by one
 * entry in PROVIDERS with their own table.
 *
 * Stripe (docs/intake.md, "Stripe"):
 *   - Files: JSON Lines of event objects {"id","type","created","data":
 *     {"object": {...}}}, one event object, or list pages {"object": "list",
 *     "data": [...], "has_more"} (the last file must not have has_more:
 *     true). Events are converted in `created` order (ties: file order),
 *     since list pages are newest first.
 *   - Amounts are integer minor units in Stripe's exponent for the currency
 *     (ISO 4217's, except ISK, which Stripe writes with two decimals that
 *     must be 00); they become decimal strings in the ISO exponent exactly.
 *   - Links: an invoice line's contract line comes from, in order, the
 *     line's metadata, its price's metadata (keys link.contract_key /
 *     link.line_key, default revstream_contract_id / revstream_line_id), the
 *     map's price.<price id> or subscription_item.<si id> = CONTRACT/LINE;
 *     the contract also from the invoice's metadata. One invoice, one
 *     contract. Credit-note lines follow their invoice line
 *     (invoice_line_item, as linked by an invoice event seen earlier in the
 *     files) or their own metadata.
 *   - event_id is "stripe-" + the Stripe event id, except refunds: "stripe-"
 *     + the refund id (charge.refunded lists every refund of the charge; each
 *     is one payment.refunded, whichever event carried it).
 *
 * Invariants: a record that cannot be mapped exactly is reported on diag
 * (billing: event=<id> error=... ) and left out; the rest go on.
 * Ownership: all jansson trees are released before return.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rs_intake_internal.h"
#include "rs_money.h"

typedef struct bill_ctx {
    const rs_intake_map_t *map;
    FILE *diag;
    rs_intake_emit_fn emit;
    void *ctx;
    rs_intake_stats_t *st;
    const char *event_id; /* the provider event being converted */
    json_t *invoices;     /* invoice id -> {"contract", "lines": {item id -> line id}} */
} bill_ctx_t;

/* 0 converted, 1 reported and left out, -1 stop. */
typedef int (*billing_convert_fn)(bill_ctx_t *c, json_t *event, json_t *obj);

typedef struct billing_converter {
    const char *type;
    billing_convert_fn fn;
} billing_converter_t;

typedef struct billing_provider {
    const char *name;
    /* All events of the files, in the order to convert; NULL on error. */
    json_t *(*read)(char *const *files, int nfiles, FILE *diag);
    const billing_converter_t *converters; /* NULL-type terminated */
} billing_provider_t;

static int report(bill_ctx_t *c, const char *what, const char *detail)
{
    fprintf(c->diag, "billing: event=%s error=%s reason=\"%s\"\n", c->event_id, what, detail);
    return 1;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* ---- Stripe ---- */

static int stripe_exponent(const char *cur)
{
    return strcmp(cur, "ISK") == 0 ? 2 : rs_currency_exponent(cur);
}

static void upper3(const char *s, char out[4])
{
    memset(out, 0, 4);
    for (int i = 0; s != NULL && i < 3 && s[i] != '\0'; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
}

/* Minor units `v` of object currency `cur` as a decimal in ev's field. */
static int set_amount(bill_ctx_t *c, const char *cur, int64_t v, rs_decimal_t *out,
                      const char *field)
{
    char text[64], why[192], err[128];
    int se = stripe_exponent(cur);
    if (se < 0 || rs_intake_minor(v, se, cur, text, sizeof text, why, sizeof why) != 0) {
        char d[256];
        snprintf(d, sizeof d, "%s: %s", field, se < 0 ? "unknown currency" : why);
        return report(c, "amount", d);
    }
    return rs_decimal_parse(text, out, err, sizeof err) != 0 ? report(c, "amount", err) : 0;
}

static void set_time(const rs_event_t *ev, json_t *event, char *occurred, size_t n)
{
    (void)ev;
    rs_intake_unix_rfc3339((int64_t)json_integer_value(json_object_get(event, "created")),
                           occurred, n);
}

static rs_date_t unix_date(json_t *v)
{
    int64_t t = (int64_t)json_integer_value(v);
    return (rs_date_t)(t >= 0 ? t / 86400 : -((-t + 86399) / 86400));
}

/* The first of status_transitions.<key> and the event's `created`. */
static rs_date_t transition_date(json_t *obj, const char *key, json_t *event)
{
    json_t *v = json_object_get(json_object_get(obj, "status_transitions"), key);
    return unix_date(json_is_integer(v) ? v : json_object_get(event, "created"));
}

static int64_t sum_amounts(json_t *arr, int only_inclusive)
{
    int64_t s = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!only_inclusive || json_is_true(json_object_get(v, "inclusive")))
            s += (int64_t)json_integer_value(json_object_get(v, "amount"));
    }
    return s;
}

/* Contract and line of an invoice line (see the file comment). */
static int link_line(bill_ctx_t *c, json_t *inv, json_t *line, char *contract, char *line_id)
{
    const char *ck = rs_intake_map_get(c->map, "link.contract_key");
    const char *lk = rs_intake_map_get(c->map, "link.line_key");
    json_t *price = json_object_get(line, "price");
    json_t *metas[4] = {
        json_object_get(line, "metadata"), json_object_get(price, "metadata"),
        json_object_get(inv, "metadata"),
        json_object_get(json_object_get(inv, "subscription_details"), "metadata")};
    const char *con = NULL, *lid = NULL, *pair = NULL;
    for (int i = 0; i < 4; i++) {
        if (con == NULL)
            con = str(metas[i], ck);
        if (lid == NULL && i < 2)
            lid = str(metas[i], lk);
    }
    if (lid == NULL && (pair = rs_intake_map_get2(c->map, "price", str(price, "id"))) == NULL)
        pair = rs_intake_map_get2(c->map, "subscription_item", str(line, "subscription_item"));
    if (lid == NULL && pair != NULL && strchr(pair, '/') != NULL) {
        snprintf(contract, RS_ID_MAX, "%.*s", (int)(strchr(pair, '/') - pair), pair);
        snprintf(line_id, RS_ID_MAX, "%s", strchr(pair, '/') + 1);
        return 0;
    }
    if (con == NULL || lid == NULL)
        return -1;
    if (rs_intake_copy_id(contract, RS_ID_MAX, con) ||
        rs_intake_copy_id(line_id, RS_ID_MAX, lid))
        return -1;
    return 0;
}

/* The contract of an invoice object: from a line's link, else remembered. */
static int invoice_contract(bill_ctx_t *c, json_t *inv, const char *inv_id, char *contract)
{
    char line_id[RS_ID_MAX];
    json_t *known = json_object_get(c->invoices, inv_id ? inv_id : "");
    if (known != NULL)
        return rs_intake_copy_id(contract, RS_ID_MAX, str(known, "contract"));
    json_t *line = json_array_get(json_object_get(json_object_get(inv, "lines"), "data"), 0);
    if (line != NULL && link_line(c, inv, line, contract, line_id) == 0)
        return 0;
    const char *meta =
        str(json_object_get(inv, "metadata"), rs_intake_map_get(c->map, "link.contract_key"));
    return rs_intake_copy_id(contract, RS_ID_MAX, meta);
}

static int begin(bill_ctx_t *c, rs_event_t *ev, rs_event_type_t type, json_t *event,
                 const char *id_suffix)
{
    char id[RS_ID_MAX];
    rs_event_init(ev);
    ev->type = type;
    snprintf(id, sizeof id, "stripe-%s", id_suffix ? id_suffix : c->event_id);
    if (rs_intake_copy_id(ev->event_id, sizeof ev->event_id, id) != 0)
        return report(c, "id", "event id too long");
    set_time(ev, event, ev->occurred_at, sizeof ev->occurred_at);
    return 0;
}

static int finish(bill_ctx_t *c, rs_event_t *ev)
{
    int rc = rs_intake_emit_checked(ev, c->emit, c->ctx, c->diag, c->event_id);
    if (rc == 0)
        c->st->emitted++;
    rs_event_clear(ev);
    return rc;
}

static int stripe_invoice_finalized(bill_ctx_t *c, json_t *event, json_t *inv)
{
    rs_event_t ev;
    char cur[4], contract[RS_ID_MAX], line_id[RS_ID_MAX];
    const char *inv_id = str(inv, "id");
    json_t *lines = json_object_get(json_object_get(inv, "lines"), "data"), *line;
    json_t *sums = json_object();
    size_t i;
    int rc;

    if ((rc = begin(c, &ev, RS_EV_INVOICE_ISSUED, event, NULL)) != 0)
        goto exit;
    upper3(str(inv, "currency"), cur);
    rc = 1;
    if (inv_id == NULL || rs_intake_copy_id(ev.invoice_id, sizeof ev.invoice_id, inv_id)) {
        report(c, "invoice", "no invoice id");
        goto exit;
    }
    if (json_object_get(json_object_get(inv, "lines"), "has_more") == json_true()) {
        report(c, "incomplete", "invoice lines has_more: expand all lines in the export");
        goto exit;
    }
    ev.on = transition_date(inv, "finalized_at", event);
    if (json_is_integer(json_object_get(inv, "due_date")))
        ev.due_on = unix_date(json_object_get(inv, "due_date"));
    ev.bill_lines = calloc(json_array_size(lines) + 1, sizeof *ev.bill_lines);
    if (ev.bill_lines == NULL)
        goto exit;
    contract[0] = '\0';
    json_array_foreach(lines, i, line)
    {
        char c2[RS_ID_MAX], d[512];
        if (link_line(c, inv, line, c2, line_id) != 0) {
            snprintf(d, sizeof d,
                     "invoice %s line %s: no contract line (metadata %s/%s, price.%s, "
                     "subscription_item.%s)",
                     inv_id, str(line, "id") ? str(line, "id") : "?",
                     rs_intake_map_get(c->map, "link.contract_key"),
                     rs_intake_map_get(c->map, "link.line_key"),
                     str(json_object_get(line, "price"), "id")
                         ? str(json_object_get(line, "price"), "id")
                         : "?",
                     str(line, "subscription_item") ? str(line, "subscription_item") : "?");
            report(c, "unlinked", d);
            goto exit;
        }
        if (contract[0] != '\0' && strcmp(contract, c2) != 0) {
            snprintf(d, sizeof d, "invoice %s: lines of contracts %s and %s", inv_id, contract,
                     c2);
            report(c, "contracts", d);
            goto exit;
        }
        memcpy(contract, c2, RS_ID_MAX);
        int64_t tax = sum_amounts(json_object_get(line, "tax_amounts"), 0);
        int64_t net = (int64_t)json_integer_value(json_object_get(line, "amount")) -
                      sum_amounts(json_object_get(line, "discount_amounts"), 0) -
                      sum_amounts(json_object_get(line, "tax_amounts"), 1);
        /* one bill line per contract line: proration and repeats add up */
        int k = 0;
        while (k < ev.n_bill_lines && strcmp(ev.bill_lines[k].line_id, line_id) != 0)
            k++;
        rs_bill_line_t *b = &ev.bill_lines[k];
        json_t *prev = json_object_get(sums, line_id);
        if (k == ev.n_bill_lines) {
            ev.n_bill_lines++;
            memcpy(b->line_id, line_id, RS_ID_MAX);
            b->service_start = b->service_end = RS_DATE_NONE;
            json_object_set_new(sums, line_id,
                                json_pack("[I,I]", (json_int_t)net, (json_int_t)tax));
        } else {
            net += (int64_t)json_integer_value(json_array_get(prev, 0));
            tax += (int64_t)json_integer_value(json_array_get(prev, 1));
            json_object_set_new(sums, line_id,
                                json_pack("[I,I]", (json_int_t)net, (json_int_t)tax));
        }
        if (set_amount(c, cur, net, &b->amount, "amount") != 0)
            goto exit;
        b->has_tax = tax != 0;
        if (b->has_tax && set_amount(c, cur, tax, &b->tax, "tax") != 0)
            goto exit;
        json_t *period = json_object_get(line, "period");
        if (json_is_integer(json_object_get(period, "start")) &&
            json_is_integer(json_object_get(period, "end"))) {
            rs_date_t s = unix_date(json_object_get(period, "start"));
            /* Stripe's period end is the exclusive instant; the last day is the day before */
            rs_date_t e = unix_date(json_object_get(period, "end")) - 1;
            if (e >= s) {
                b->service_start = b->service_start == RS_DATE_NONE || s < b->service_start
                                       ? s
                                       : b->service_start;
                b->service_end = e > b->service_end ? e : b->service_end;
            }
        }
        /* remember the link for credit notes */
        json_t *known = json_object_get(c->invoices, inv_id);
        if (known == NULL) {
            known = json_pack("{s:s, s:{}}", "contract", contract, "lines");
            json_object_set_new(c->invoices, inv_id, known);
        }
        if (str(line, "id"))
            json_object_set_new(json_object_get(known, "lines"), str(line, "id"),
                                json_string(line_id));
    }
    if (ev.n_bill_lines == 0) {
        report(c, "lines", "an invoice without lines");
        goto exit;
    }
    memcpy(ev.contract_id, contract, RS_ID_MAX);
    rc = finish(c, &ev);
exit:
    json_decref(sums);
    rs_event_clear(&ev);
    return rc;
}

/* invoice.paid, invoice.voided, invoice.marked_uncollectible */
static int stripe_invoice_state(bill_ctx_t *c, json_t *event, json_t *inv)
{
    rs_event_t ev;
    const char *type = str(event, "type"), *inv_id = str(inv, "id");
    char cur[4];
    int rc;
    rs_event_type_t t = strcmp(type, "invoice.paid") == 0     ? RS_EV_PAYMENT_RECEIVED
                        : strcmp(type, "invoice.voided") == 0 ? RS_EV_INVOICE_VOIDED
                                                              : RS_EV_INVOICE_UNCOLLECTIBLE;
    if ((rc = begin(c, &ev, t, event, NULL)) != 0)
        return rc;
    rc = 1;
    if (inv_id == NULL || rs_intake_copy_id(ev.invoice_id, sizeof ev.invoice_id, inv_id)) {
        report(c, "invoice", "no invoice id");
        goto exit;
    }
    if (invoice_contract(c, inv, inv_id, ev.contract_id) != 0) {
        report(c, "unlinked", "no contract for the invoice (no linked line, no metadata)");
        goto exit;
    }
    if (t == RS_EV_INVOICE_VOIDED) {
        ev.on = transition_date(inv, "voided_at", event);
    } else if (t == RS_EV_INVOICE_UNCOLLECTIBLE) {
        ev.on = transition_date(inv, "marked_uncollectible_at", event);
    } else {
        int64_t paid = (int64_t)json_integer_value(json_object_get(inv, "amount_paid"));
        const char *pay = str(inv, "charge") ? str(inv, "charge") : str(inv, "payment_intent");
        if (paid <= 0) { /* paid from credit balance or a zero invoice: no money moved */
            c->st->ignored++;
            rc = 0;
            goto exit;
        }
        if (pay == NULL || rs_intake_copy_id(ev.payment_id, sizeof ev.payment_id, pay)) {
            report(c, "payment", "invoice.paid without charge or payment_intent");
            goto exit;
        }
        upper3(str(inv, "currency"), cur);
        if (set_amount(c, cur, paid, &ev.amount, "amount_paid") != 0)
            goto exit;
        ev.on = transition_date(inv, "paid_at", event);
    }
    rc = finish(c, &ev);
exit:
    rs_event_clear(&ev);
    return rc;
}

static int stripe_charge_refunded(bill_ctx_t *c, json_t *event, json_t *ch)
{
    const char *inv_id = str(ch, "invoice"), *ch_id = str(ch, "id");
    json_t *refunds = json_object_get(json_object_get(ch, "refunds"), "data"), *r;
    char cur[4], contract[RS_ID_MAX];
    size_t i;
    int rc = 0;
    upper3(str(ch, "currency"), cur);
    const char *meta =
        str(json_object_get(ch, "metadata"), rs_intake_map_get(c->map, "link.contract_key"));
    if (inv_id == NULL || ch_id == NULL)
        return report(c, "invoice",
                      "a refunded charge without invoice: not revenue revstream "
                      "tracks");
    if ((meta == NULL || rs_intake_copy_id(contract, sizeof contract, meta) != 0) &&
        invoice_contract(c, json_null(), inv_id, contract) != 0)
        return report(c, "unlinked", "no contract for the charge's invoice");
    json_t *one = NULL;
    if (json_array_size(refunds) == 0) { /* refunds not expanded: this event's increment */
        int64_t prev = (int64_t)json_integer_value(json_object_get(
            json_object_get(json_object_get(event, "data"), "previous_attributes"),
            "amount_refunded"));
        one = json_pack(
            "[{s:s, s:I, s:O, s:s}]", "id", c->event_id, "amount",
            (json_int_t)(json_integer_value(json_object_get(ch, "amount_refunded")) - prev),
            "created", json_object_get(event, "created"), "status", "succeeded");
        refunds = one;
    }
    json_array_foreach(refunds, i, r)
    {
        rs_event_t ev;
        const char *st = str(r, "status");
        if (st != NULL && strcmp(st, "succeeded") != 0 && strcmp(st, "pending") != 0)
            continue;
        if ((rc = begin(c, &ev, RS_EV_PAYMENT_REFUNDED, event, str(r, "id"))) != 0)
            break;
        rc = 1;
        if (rs_intake_copy_id(ev.refund_id, sizeof ev.refund_id, str(r, "id")) == 0 &&
            rs_intake_copy_id(ev.payment_id, sizeof ev.payment_id, ch_id) == 0 &&
            rs_intake_copy_id(ev.invoice_id, sizeof ev.invoice_id, inv_id) == 0 &&
            set_amount(c, cur, (int64_t)json_integer_value(json_object_get(r, "amount")),
                       &ev.amount, "refunds.amount") == 0) {
            memcpy(ev.contract_id, contract, RS_ID_MAX);
            ev.on = unix_date(json_object_get(r, "created"));
            /* a refund is dated by itself, not by the event that listed it */
            rs_intake_unix_rfc3339((int64_t)json_integer_value(json_object_get(r, "created")),
                                   ev.occurred_at, sizeof ev.occurred_at);
            rc = finish(c, &ev);
        }
        rs_event_clear(&ev);
        if (rc != 0)
            break;
    }
    json_decref(one);
    return rc;
}

static int stripe_credit_note(bill_ctx_t *c, json_t *event, json_t *cn)
{
    rs_event_t ev;
    const char *inv_id = str(cn, "invoice"), *reason = str(cn, "reason");
    json_t *lines = json_object_get(json_object_get(cn, "lines"), "data"), *line;
    json_t *known = json_object_get(c->invoices, inv_id ? inv_id : "");
    char cur[4];
    size_t i;
    int rc;
    if ((rc = begin(c, &ev, RS_EV_CREDIT_NOTE_ISSUED, event, NULL)) != 0)
        return rc;
    rc = 1;
    upper3(str(cn, "currency"), cur);
    if (rs_intake_copy_id(ev.credit_note_id, sizeof ev.credit_note_id, str(cn, "id")) != 0 ||
        inv_id == NULL || rs_intake_copy_id(ev.invoice_id, sizeof ev.invoice_id, inv_id) != 0) {
        report(c, "credit_note", "no credit note or invoice id");
        goto exit;
    }
    if (invoice_contract(c, json_null(), inv_id, ev.contract_id) != 0) {
        report(c, "unlinked", "no contract for the credit note's invoice");
        goto exit;
    }
    const char *ours = rs_intake_map_get2(c->map, "credit_reason", reason ? reason : "none");
    ev.reason = rs_credit_reason_from_name(ours ? ours : "");
    if (ev.reason == RS_CREDIT_NONE) {
        report(c, "reason", "no credit_reason.<reason> in the map");
        goto exit;
    }
    ev.on = unix_date(json_object_get(cn, "created"));
    ev.bill_lines = calloc(json_array_size(lines) + 1, sizeof *ev.bill_lines);
    if (ev.bill_lines == NULL)
        goto exit;
    json_array_foreach(lines, i, line)
    {
        const char *item = str(line, "invoice_line_item");
        const char *lid = str(json_object_get(known, "lines"), item ? item : "");
        if (lid == NULL)
            lid = str(json_object_get(line, "metadata"),
                      rs_intake_map_get(c->map, "link.line_key"));
        rs_bill_line_t *b = &ev.bill_lines[ev.n_bill_lines++];
        b->service_start = b->service_end = RS_DATE_NONE;
        if (rs_intake_copy_id(b->line_id, sizeof b->line_id, lid) != 0) {
            report(c, "unlinked", "a credit-note line whose invoice line was not linked");
            goto exit;
        }
        int64_t net = (int64_t)json_integer_value(json_object_get(line, "amount")) -
                      sum_amounts(json_object_get(line, "discount_amounts"), 0) -
                      sum_amounts(json_object_get(line, "tax_amounts"), 1);
        int64_t tax = sum_amounts(json_object_get(line, "tax_amounts"), 0);
        if (set_amount(c, cur, net, &b->amount, "lines.amount") != 0)
            goto exit;
        b->has_tax = tax != 0;
        if (b->has_tax && set_amount(c, cur, tax, &b->tax, "lines.tax") != 0)
            goto exit;
    }
    rc = finish(c, &ev);
exit:
    rs_event_clear(&ev);
    return rc;
}

static const billing_converter_t STRIPE_CONVERTERS[] = {
    {"invoice.finalized", stripe_invoice_finalized},
    {"invoice.paid", stripe_invoice_state},
    {"invoice.voided", stripe_invoice_state},
    {"invoice.marked_uncollectible", stripe_invoice_state},
    {"charge.refunded", stripe_charge_refunded},
    {"credit_note.created", stripe_credit_note},
    {NULL, NULL}};

/* Events of one file: list page, single event, or JSON Lines. */
static int stripe_read_file(const char *path, json_t *all, FILE *diag, int last)
{
    char err[512];
    json_t *root = rs_intake_load_json(path, err, sizeof err);
    if (root != NULL) {
        json_t *data = json_object_get(root, "data");
        int rc = 0;
        if (json_is_array(data)) {
            json_array_extend(all, data);
            if (last && json_is_true(json_object_get(root, "has_more"))) {
                fprintf(diag,
                        "billing: error=incomplete file=\"%s\" reason=\"the last page "
                        "given has has_more: true\"\n",
                        path);
                rc = 1;
            }
        } else if (str(root, "type") != NULL) {
            json_array_append(all, root);
        } else {
            fprintf(diag,
                    "billing: error=format file=\"%s\" reason=\"not an event, list "
                    "page or JSON Lines of events\"\n",
                    path);
            rc = 1;
        }
        json_decref(root);
        return rc;
    }
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = f ? 0 : 1;
    if (f == NULL)
        fprintf(diag, "billing: error=read file=\"%s\"\n", path);
    while (f != NULL && (n = getline(&line, &cap, f)) >= 0) {
        json_error_t jerr;
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)n)
            continue;
        json_t *ev = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
        if (ev == NULL || str(ev, "type") == NULL) {
            fprintf(diag, "billing: error=format file=\"%s\" line=%ld reason=\"%s\"\n", path,
                    lineno, ev ? "not an event" : jerr.text);
            json_decref(ev);
            rc = 1;
            break;
        }
        json_array_append_new(all, ev);
    }
    free(line);
    if (f)
        fclose(f);
    return rc;
}

static int by_created(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t cx = json_integer_value(json_object_get(x, "created"));
    json_int_t cy = json_integer_value(json_object_get(y, "created"));
    json_int_t ix = json_integer_value(json_object_get(x, "__order"));
    json_int_t iy = json_integer_value(json_object_get(y, "__order"));
    return cx != cy ? (cx < cy ? -1 : 1) : (ix < iy ? -1 : ix > iy);
}

static json_t *stripe_read(char *const *files, int nfiles, FILE *diag)
{
    json_t *all = json_array(), *out = NULL, *ev;
    size_t i;
    for (int f = 0; f < nfiles; f++)
        if (stripe_read_file(files[f], all, diag, f == nfiles - 1) != 0)
            goto exit;
    size_t n = json_array_size(all);
    json_t **v = calloc(n + 1, sizeof *v);
    if (v == NULL)
        goto exit;
    json_array_foreach(all, i, ev)
    {
        if (!json_is_object(ev)) {
            fprintf(diag, "billing: error=format reason=\"a list item that is no object\"\n");
            free(v);
            goto exit;
        }
        json_object_set_new(ev, "__order", json_integer((json_int_t)i));
        v[i] = ev;
    }
    qsort(v, n, sizeof *v, by_created);
    out = json_array();
    for (i = 0; i < n; i++)
        json_array_append(out, v[i]);
    free(v);
exit:
    json_decref(all);
    return out;
}

static const billing_provider_t PROVIDERS[] = {{"stripe", stripe_read, STRIPE_CONVERTERS},
                                               {NULL, NULL, NULL}};

const char *const rs_intake_billing_providers[] = {"stripe", NULL};

int rs_intake_billing(const char *provider, char *const *files, int nfiles,
                      const rs_intake_map_t *map, rs_intake_emit_fn emit, void *ctx, FILE *diag,
                      rs_intake_stats_t *stats)
{
    const billing_provider_t *p = PROVIDERS;
    bill_ctx_t c = {map, diag, emit, ctx, stats, "?", json_object()};
    json_t *events = NULL, *event;
    size_t i;
    int rc = 1;

    memset(stats, 0, sizeof *stats);
    while (p->name != NULL && strcmp(p->name, provider) != 0)
        p++;
    if (p->name == NULL) {
        fprintf(diag, "billing: error=provider provider=\"%s\" reason=\"known: stripe\"\n",
                provider);
        goto exit;
    }
    if ((events = p->read(files, nfiles, diag)) == NULL)
        goto exit;
    rc = 0;
    json_array_foreach(events, i, event)
    {
        const char *type = str(event, "type");
        const billing_converter_t *cv = p->converters;
        json_t *obj = json_object_get(json_object_get(event, "data"), "object");
        c.event_id = str(event, "id") ? str(event, "id") : "?";
        stats->records++;
        while (cv->type != NULL && strcmp(cv->type, type) != 0)
            cv++;
        if (cv->type == NULL) {
            stats->ignored++;
            continue;
        }
        if (!json_is_object(obj) || str(event, "id") == NULL ||
            !json_is_integer(json_object_get(event, "created"))) {
            report(&c, "format", "an event without id, created or data.object");
            stats->incomplete++;
            continue;
        }
        int crc = cv->fn(&c, event, obj);
        if (crc < 0) {
            rc = 1;
            break;
        }
        if (crc > 0)
            stats->incomplete++;
    }
    if (rc == 0 && stats->incomplete > 0)
        rc = 2;
exit:
    json_decref(events);
    json_decref(c.invoices);
    return rc;
}
