/*
 * rs_intake_crm.c — normalised CRM deals (rs_intake_internal.h) to
 * contract.booked / contract.amended, and the --state history.
 *
 * Invariants:
 *   - A deal is booked when closed-won (the source decides: HubSpot's stage
 *     list or hs_is_closed_won, Salesforce's IsWon) and every line maps.
 *     Anything missing (customer, currency, close date, a line's start, term
 *     or end, amount, product) is reported on diag as
 *       crm: deal=<id> [line=<id>] error=missing field=<what> tried="<names>"
 *     or error=invalid with the reason; the deal is counted incomplete and
 *     left out whole (a partial contract would be wrong revenue).
 *   - "Seen before" is the history (--state FILE): the JSON Lines log of the
 *     events earlier runs emitted. A deal with a contract.booked there is
 *     seen; its current lines are those of its last booked/amended event.
 *     Per deal the output repeats the deal's history, then adds at most one
 *     new event: contract.booked "<system>-<deal id>" (not seen) or
 *     contract.amended "<system>-<deal id>-a-<16 hex>" (lines changed; the
 *     hex is FNV-1a 64 of the event's canonical JSON without its id, so the
 *     same change is the same id on every run). Unchanged deals add nothing.
 *     The same export with the same history gives the same output.
 *   - Amendments: effective_on is the deal field the map names
 *     (deal.effective_on), else the UTC date of the deal's last update;
 *     treatment from amend.treatment. A line left out of the export ends the
 *     day before effective_on (the event contract's rule).
 *
 * Ownership: the history owns its events (rs_event_clear on destroy).
 */
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_intake_internal.h"
#include "rs_money.h"

/* ---- history ---- */

typedef struct hist_contract {
    char contract_id[RS_ID_MAX];
    rs_event_t *ev;
    size_t n, cap;
} hist_contract_t;

struct rs_intake_history {
    hist_contract_t *c;
    size_t n, cap;
    json_t *index; /* contract_id -> index into c */
};

static hist_contract_t *hist_find(const rs_intake_history_t *h, const char *contract_id)
{
    json_t *i = h != NULL ? json_object_get(h->index, contract_id) : NULL;
    return i != NULL ? &h->c[json_integer_value(i)] : NULL;
}

static int hist_add(rs_intake_history_t *h, const rs_event_t *ev)
{
    hist_contract_t *c = hist_find(h, ev->contract_id);
    if (c == NULL) {
        if (h->n == h->cap) {
            size_t ncap = h->cap ? h->cap * 2 : 16;
            hist_contract_t *nc = realloc(h->c, ncap * sizeof *nc);
            if (nc == NULL)
                return -1;
            h->c = nc;
            h->cap = ncap;
        }
        if (json_object_set_new(h->index, ev->contract_id, json_integer((json_int_t)h->n)) != 0)
            return -1;
        c = &h->c[h->n++];
        memset(c, 0, sizeof *c);
        memcpy(c->contract_id, ev->contract_id, sizeof c->contract_id);
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4;
        rs_event_t *ne = realloc(c->ev, ncap * sizeof *ne);
        if (ne == NULL)
            return -1;
        c->ev = ne;
        c->cap = ncap;
    }
    if (rs_event_copy(&c->ev[c->n], ev) != 0)
        return -1;
    c->n++;
    return 0;
}

int rs_intake_history_load(rs_intake_history_t **out, const char *path, char *errstr,
                           size_t errlen)
{
    rs_intake_history_t *h = calloc(1, sizeof *h);
    FILE *f = NULL;
    char *line = NULL, err[512];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = -1;
    *out = NULL;
    if (h == NULL || (h->index = json_object()) == NULL) {
        free(h);
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    f = path ? fopen(path, "r") : NULL;
    while (f != NULL && (len = getline(&line, &cap, f)) >= 0) {
        rs_event_t ev;
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (rs_codec_json_decode(line, (size_t)len, &ev, err, sizeof err) != 0) {
            snprintf(errstr, errlen, "%s:%ld: %s", path, lineno, err);
            goto exit;
        }
        int arc = (ev.type == RS_EV_CONTRACT_BOOKED || ev.type == RS_EV_CONTRACT_AMENDED)
                      ? hist_add(h, &ev)
                      : 0;
        rs_event_clear(&ev);
        if (arc != 0) {
            snprintf(errstr, errlen, "out of memory");
            goto exit;
        }
    }
    *out = h;
    h = NULL;
    rc = 0;
exit:
    free(line);
    if (f)
        fclose(f);
    rs_intake_history_destroy(h);
    return rc;
}

void rs_intake_history_destroy(rs_intake_history_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++) {
        for (size_t k = 0; k < h->c[i].n; k++)
            rs_event_clear(&h->c[i].ev[k]);
        free(h->c[i].ev);
    }
    free(h->c);
    json_decref(h->index);
    free(h);
}

/* ---- one deal ---- */

typedef struct deal_ctx {
    const char *system;
    const rs_intake_map_t *map;
    const char *deal_id;
    FILE *diag;
} deal_ctx_t;

static int missing(const deal_ctx_t *d, const char *line_id, const char *field,
                   const char *tried)
{
    fprintf(d->diag, "crm: deal=%s%s%s error=missing field=%s tried=\"%s\"\n", d->deal_id,
            line_id ? " line=" : "", line_id ? line_id : "", field, tried ? tried : "");
    return -1;
}

static int invalid(const deal_ctx_t *d, const char *line_id, const char *field, const char *why)
{
    fprintf(d->diag, "crm: deal=%s%s%s error=invalid field=%s reason=\"%s\"\n", d->deal_id,
            line_id ? " line=" : "", line_id ? line_id : "", field, why);
    return -1;
}

static const char *mapped(const deal_ctx_t *d, const char *key)
{
    const char *v = rs_intake_map_get(d->map, key);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The line's field named by map key `key` into buf (NULL if the map names
 * none or the line has none of them). */
static const char *lfield(const deal_ctx_t *d, json_t *fields, const char *key, char *buf,
                          size_t n)
{
    const char *names = mapped(d, key);
    return names ? rs_intake_field_any(fields, names, buf, n, NULL, 0) : NULL;
}

static int parse_dec(const char *text, rs_decimal_t *out)
{
    char err[128];
    return rs_decimal_parse(text, out, err, sizeof err);
}

/* The line's end date from end, term or payments x frequency. */
static int line_end(const deal_ctx_t *d, json_t *f, const char *lid, rs_date_t start,
                    rs_date_t *end)
{
    char buf[128], tried[512];
    const char *s;
    int months;
    if ((s = lfield(d, f, "line.end", buf, sizeof buf)) != NULL) {
        if (rs_intake_date(s, end) != 0 || *end < start)
            return invalid(d, lid, "end", "not a date on or after the start");
        return 0;
    }
    if ((s = lfield(d, f, "line.term", buf, sizeof buf)) != NULL) {
        if ((months = rs_intake_months(s)) < 0)
            return invalid(d, lid, "term", "not a number of months or an ISO 8601 period");
        *end = rs_intake_term_end(start, months);
        return 0;
    }
    const char *pay = lfield(d, f, "line.payments", buf, sizeof buf);
    int npay = pay ? rs_intake_months(pay) : -1;
    char fbuf[64];
    const char *freq = lfield(d, f, "line.frequency", fbuf, sizeof fbuf);
    const char *fm = freq ? rs_intake_map_get2(d->map, "frequency", freq) : NULL;
    if (npay > 0 && fm != NULL) {
        *end = rs_intake_term_end(start, npay * rs_intake_months(fm));
        return 0;
    }
    snprintf(tried, sizeof tried, "%s%s%s%s%s%s%s",
             mapped(d, "line.end") ? mapped(d, "line.end") : "",
             mapped(d, "line.term") ? "," : "",
             mapped(d, "line.term") ? mapped(d, "line.term") : "",
             mapped(d, "line.payments") ? "," : "",
             mapped(d, "line.payments") ? mapped(d, "line.payments") : "",
             mapped(d, "line.frequency") ? "*" : "",
             mapped(d, "line.frequency") ? mapped(d, "line.frequency") : "");
    return missing(d, lid, "term", tried);
}

static int build_line(const deal_ctx_t *d, json_t *line, const char *currency,
                      rs_date_t close_date, rs_line_spec_t *out)
{
    json_t *f = json_object_get(line, "fields");
    const char *lid = json_string_value(json_object_get(line, "id"));
    char sku[128], pid[128], buf[128], money[64], why[256];
    const char *s, *method_name;

    if (json_is_true(json_object_get(line, "missing")))
        return missing(d, lid, "line_item", "the files given");
    if (rs_intake_copy_id(out->line_id, sizeof out->line_id, lid) != 0)
        return invalid(d, lid, "line_id", "empty or longer than 127 bytes");
    if ((s = lfield(d, f, "line.product", buf, sizeof buf)) == NULL)
        return missing(d, lid, "product", mapped(d, "line.product"));
    snprintf(out->product, sizeof out->product, "%s", s);
    const char *sk = lfield(d, f, "line.sku", sku, sizeof sku);
    const char *pr = lfield(d, f, "line.product_id", pid, sizeof pid);
    method_name = rs_intake_map_get2(d->map, "recognition.sku", sk);
    if (method_name == NULL)
        method_name = rs_intake_map_get2(d->map, "recognition.product", pr);
    if (method_name == NULL)
        method_name = rs_intake_map_get(d->map, "recognition.default");
    out->recognition = rs_method_from_name(method_name ? method_name : "");

    if ((s = lfield(d, f, "line.start", buf, sizeof buf)) != NULL) {
        if (rs_intake_date(s, &out->start) != 0)
            return invalid(d, lid, "start", "not a date");
    } else if (out->recognition == RS_METHOD_POINT_IN_TIME &&
               mapped(d, "point_in_time.start")) {
        out->start = close_date;
    } else {
        return missing(d, lid, "start", mapped(d, "line.start"));
    }
    if (out->recognition == RS_METHOD_POINT_IN_TIME)
        out->end = out->start;
    else if (line_end(d, f, lid, out->start, &out->end) != 0)
        return -1;

    if (out->recognition == RS_METHOD_USAGE) {
        if ((s = lfield(d, f, "line.unit_price", buf, sizeof buf)) == NULL)
            return missing(d, lid, "unit_price", mapped(d, "line.unit_price"));
        if (parse_dec(s, &out->unit_price) != 0 || out->unit_price.mantissa < 0)
            return invalid(d, lid, "unit_price", "not a decimal >= 0 of up to 6 decimals");
        out->has_unit_price = 1;
        parse_dec("0", &out->amount);
        return 0;
    }
    if ((s = lfield(d, f, "line.amount", buf, sizeof buf)) == NULL)
        return missing(d, lid, "amount", mapped(d, "line.amount"));
    if (rs_intake_money(s, currency, money, sizeof money, why, sizeof why) != 0)
        return invalid(d, lid, "amount", why);
    parse_dec(money, &out->amount);
    if (out->amount.mantissa < 0)
        return invalid(d, lid, "amount", "negative");

    const char *ssp = rs_intake_map_get2(d->map, "ssp.sku", sk);
    if (ssp == NULL)
        ssp = rs_intake_map_get2(d->map, "ssp.product", pr);
    if (ssp != NULL) {
        char qbuf[64];
        const char *q = lfield(d, f, "line.quantity", qbuf, sizeof qbuf);
        if (q == NULL)
            return missing(d, lid, "quantity", mapped(d, "line.quantity"));
        if (rs_intake_money_mul(ssp, q, currency, money, sizeof money, why, sizeof why) != 0)
            return invalid(d, lid, "ssp", why);
        parse_dec(money, &out->ssp);
        out->has_ssp = 1;
    }
    return 0;
}

/* The deal's currency: the deal field, else the lines' (all the same),
 * else currency.default. */
static int deal_currency(const deal_ctx_t *d, json_t *deal, char cur[4])
{
    char buf[64], tried[256];
    const char *s =
        lfield(d, json_object_get(deal, "fields"), "deal.currency", buf, sizeof buf);
    size_t i;
    json_t *line;
    if (s == NULL) {
        json_array_foreach(json_object_get(deal, "lines"), i, line)
        {
            char lb[64];
            const char *ls =
                lfield(d, json_object_get(line, "fields"), "line.currency", lb, sizeof lb);
            if (ls != NULL && s != NULL && strcmp(ls, s) != 0)
                return invalid(d, NULL, "currency", "line items in more than one currency");
            if (ls != NULL && s == NULL)
                s = memcpy(buf, lb, strlen(lb) + 1);
        }
    }
    if (s == NULL)
        s = mapped(d, "currency.default");
    if (s == NULL) {
        snprintf(tried, sizeof tried, "%s,%s,currency.default",
                 mapped(d, "deal.currency") ? mapped(d, "deal.currency") : "",
                 mapped(d, "line.currency") ? mapped(d, "line.currency") : "");
        return missing(d, NULL, "currency", tried);
    }
    if (strlen(s) != 3 || rs_currency_exponent(s) < 0)
        return invalid(d, NULL, "currency", "not an ISO 4217 code revstream knows");
    memcpy(cur, s, 4);
    return 0;
}

/* The contract.booked event of a deal (event_id not set). 0 or -1. */
static int build_booking(const deal_ctx_t *d, json_t *deal, rs_event_t *ev)
{
    json_t *fields = json_object_get(deal, "fields"), *lines = json_object_get(deal, "lines");
    char buf[128], ts[48];
    const char *s;
    int bad = 0;

    ev->type = RS_EV_CONTRACT_BOOKED;
    snprintf(buf, sizeof buf, "%s%s",
             rs_intake_map_get(d->map, "contract_id.prefix")
                 ? rs_intake_map_get(d->map, "contract_id.prefix")
                 : "",
             d->deal_id);
    if (rs_intake_copy_id(ev->contract_id, sizeof ev->contract_id, buf) != 0)
        return invalid(d, NULL, "contract_id", "longer than 127 bytes");
    snprintf(ev->source_system, sizeof ev->source_system, "%s", d->system);
    snprintf(ev->source_record_id, sizeof ev->source_record_id, "%s", d->deal_id);

    s = lfield(d, fields, "deal.customer_id", buf, sizeof buf);
    if (s == NULL)
        s = json_string_value(json_object_get(deal, "customer_id"));
    if (s == NULL)
        bad |= missing(d, NULL, "customer_id",
                       mapped(d, "deal.customer_id") ? mapped(d, "deal.customer_id")
                                                     : "associations.companies");
    else if (rs_intake_copy_id(ev->customer_id, sizeof ev->customer_id, s) != 0)
        bad |= invalid(d, NULL, "customer_id", "longer than 127 bytes");

    if ((s = lfield(d, fields, "deal.close_date", buf, sizeof buf)) == NULL)
        bad |= missing(d, NULL, "close_date", mapped(d, "deal.close_date"));
    else if (rs_intake_timestamp(s, ts, sizeof ts) != 0 || rs_intake_date(s, &ev->booked_on))
        bad |= invalid(d, NULL, "close_date", "not a date or RFC 3339 timestamp");
    else
        snprintf(ev->occurred_at, sizeof ev->occurred_at, "%s", ts);

    if (json_array_size(lines) == 0)
        bad |= missing(d, NULL, "lines", "associated line items");
    /* the lines are checked (and reported) whenever their currency is known */
    if (deal_currency(d, deal, ev->currency) != 0 || json_array_size(lines) == 0)
        return -1;
    ev->lines = calloc(json_array_size(lines), sizeof *ev->lines);
    if (ev->lines == NULL)
        return invalid(d, NULL, "lines", "out of memory");
    for (size_t i = 0; i < json_array_size(lines); i++) {
        rs_line_spec_t *l = &ev->lines[ev->n_lines++];
        l->start = l->end = RS_DATE_NONE;
        bad |= build_line(d, json_array_get(lines, i), ev->currency, ev->booked_on, l);
    }
    return bad ? -1 : 0;
}

static int dec_eq(rs_decimal_t a, rs_decimal_t b)
{
    return a.mantissa == b.mantissa && a.scale == b.scale;
}

static int line_eq(const rs_line_spec_t *a, const rs_line_spec_t *b)
{
    return strcmp(a->product, b->product) == 0 && a->recognition == b->recognition &&
           a->start == b->start && a->end == b->end && dec_eq(a->amount, b->amount) &&
           a->has_ssp == b->has_ssp && (!a->has_ssp || dec_eq(a->ssp, b->ssp)) &&
           a->has_unit_price == b->has_unit_price &&
           (!a->has_unit_price || dec_eq(a->unit_price, b->unit_price));
}

/* The same set of lines (by line_id, in any order)? */
static int lines_eq(const rs_event_t *a, const rs_event_t *b)
{
    if (a->n_lines != b->n_lines)
        return 0;
    for (int i = 0; i < a->n_lines; i++) {
        int found = 0;
        for (int k = 0; k < b->n_lines && !found; k++)
            found = strcmp(a->lines[i].line_id, b->lines[k].line_id) == 0 &&
                    line_eq(&a->lines[i], &b->lines[k]);
        if (!found)
            return 0;
    }
    return 1;
}

/* Turns the booking into the amendment of a seen deal. 0 or -1. */
static int make_amendment(const deal_ctx_t *d, json_t *deal, rs_event_t *ev)
{
    char buf[128], ts[48];
    const char *upd = json_string_value(json_object_get(deal, "updated_at"));
    const char *s =
        lfield(d, json_object_get(deal, "fields"), "deal.effective_on", buf, sizeof buf);
    ev->type = RS_EV_CONTRACT_AMENDED;
    if (s == NULL)
        s = upd;
    if (s == NULL)
        return missing(d, NULL, "effective_on",
                       mapped(d, "deal.effective_on") ? mapped(d, "deal.effective_on")
                                                      : "updatedAt");
    if (rs_intake_date(s, &ev->effective_on) != 0)
        return invalid(d, NULL, "effective_on", "not a date or RFC 3339 timestamp");
    if (upd == NULL || rs_intake_timestamp(upd, ts, sizeof ts) != 0)
        snprintf(ts, sizeof ts, "%sT00:00:00Z",
                 rs_date_format(ev->effective_on, buf, sizeof buf));
    snprintf(ev->occurred_at, sizeof ev->occurred_at, "%s", ts);
    const char *t = rs_intake_map_get(d->map, "amend.treatment");
    ev->treatment =
        t && strcmp(t, "catch_up") == 0 ? RS_TREATMENT_CATCH_UP : RS_TREATMENT_PROSPECTIVE;
    char *json = rs_codec_json_encode(ev);
    if (json == NULL)
        return invalid(d, NULL, "lines", "cannot encode");
    rs_intake_hash_hex(json, strlen(json), ts);
    free(json);
    snprintf(buf, sizeof buf, "%s-%s-a-%s", d->system, d->deal_id, ts);
    if (rs_intake_copy_id(ev->event_id, sizeof ev->event_id, buf) != 0)
        return invalid(d, NULL, "event_id", "longer than 127 bytes");
    return 0;
}

int rs_intake_crm(const char *system, char *const *files, int nfiles,
                  const rs_intake_map_t *map, const rs_intake_history_t *history,
                  rs_intake_emit_fn emit, void *ctx, rs_intake_emit_fn fresh, void *fresh_ctx,
                  FILE *diag, rs_intake_stats_t *stats)
{
    json_t *deals = json_array(), *deal;
    size_t i;
    int rc;

    memset(stats, 0, sizeof *stats);
    if (deals == NULL)
        return 1;
    if (strcmp(system, "hubspot") == 0)
        rc = rs_intake_hubspot_deals(files, nfiles, map, deals, diag);
    else if (strcmp(system, "salesforce") == 0)
        rc = rs_intake_salesforce_deals(files, nfiles, map, deals, diag);
    else {
        fprintf(diag, "crm: error=system system=\"%s\" reason=\"hubspot or salesforce\"\n",
                system);
        rc = 1;
    }
    json_array_foreach(deals, i, deal)
    {
        if (rc != 0)
            break;
        deal_ctx_t d = {system, map, json_string_value(json_object_get(deal, "id")), diag};
        rs_event_t ev;
        stats->records++;
        if (!json_is_true(json_object_get(deal, "won"))) {
            stats->not_won++;
            continue;
        }
        rs_event_init(&ev);
        if (build_booking(&d, deal, &ev) != 0) {
            stats->incomplete++;
            rs_event_clear(&ev);
            continue;
        }
        const hist_contract_t *seen = hist_find(history, ev.contract_id);
        const rs_event_t *last = NULL;
        for (size_t k = 0; seen != NULL && k < seen->n; k++) {
            last = &seen->ev[k];
            if (rs_intake_emit_checked(last, emit, ctx, diag, "history") < 0)
                rc = 1;
            else
                stats->emitted++;
        }
        int is_new = 0;
        if (seen == NULL || seen->n == 0) {
            snprintf(ev.event_id, sizeof ev.event_id, "%s-%s", system, d.deal_id);
            is_new = 1;
            stats->booked++;
        } else if (lines_eq(last, &ev)) {
            stats->unchanged++;
        } else if (make_amendment(&d, deal, &ev) == 0) {
            is_new = 1;
            stats->amended++;
        } else {
            stats->incomplete++;
        }
        if (is_new && rc == 0) {
            int erc = rs_intake_emit_checked(&ev, emit, ctx, diag, "deal");
            if (erc == 0 && fresh != NULL && fresh(fresh_ctx, &ev) != 0)
                erc = -1;
            if (erc < 0)
                rc = 1;
            else if (erc > 0)
                stats->incomplete++;
            else
                stats->emitted++;
        }
        rs_event_clear(&ev);
    }
    json_decref(deals);
    if (rc == 0 && stats->incomplete > 0)
        rc = 2;
    return rc;
}
