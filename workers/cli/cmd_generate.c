/*
 * cmd_generate.c — `revstream generate`: a deterministic, seeded book of
 * realistic events as JSON Lines, for trying the worker at scale and as the
 * benchmarks' input.
 *
 * Invariants:
 *   - The same options give byte-identical output: every random draw comes
 *     from a splitmix64 stream seeded by (--seed, contract index), so a
 *     contract's events do not depend on how many contracts come before it,
 *     and --contracts N is a prefix of --contracts M > N contract by contract.
 *   - Events are written in occurred_at order (ties: contract, then the
 *     event's place in its contract). The book is produced a month at a time:
 *     each month every contract is asked for its events of that month, which
 *     are sorted and written, so memory holds one month, not the book.
 *   - Every event is valid under docs/events.md: `revstream replay` of any
 *     generated book rejects nothing (tests/integration/test_replay_cli.c).
 *     Amounts are whole minor units of the contract's currency; usage is
 *     priced in whole minor units per unit, so invoices equal usage exactly.
 *   - Nothing is dated into a closed period: `period.closed` for month M is
 *     dated the 6th of M+1, after the arrears invoices of the 1st.
 *
 * The mix (per contract, drawn from its own stream): annual upfront (30 %),
 * monthly billed (30 %), platform fee plus metered usage (12 %), SSP bundles
 * of a subscription and onboarding (10 %), milestone projects (6 %) and
 * three-year contracts recognized by day and invoiced yearly (12 %). On top:
 * upgrades (amendments), cancellations, discount credit notes, refunds and
 * unpaid invoices at the rates in gen_contract().
 *
 * Ownership: gen_t owns this month's events (their JSON text); they are freed
 * after the month is written.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_cli.h"
#include "rs_money.h"

typedef struct gen_ev {
    int64_t ts;   /* seconds since 1970 */
    uint64_t seq; /* contract index << 16 | place in the contract */
    char *json;
} gen_ev_t;

typedef struct gen {
    uint64_t seed;
    long contracts;
    int months, usage_per_month;
    int simple;             /* --mix simple */
    rs_period_t first, cur; /* the first month generated; the month being written */
    rs_date_t first_day, last_day;
    gen_ev_t *ev;
    size_t n, cap;
    int oom;
    unsigned place;       /* place of the next event within its contract */
    unsigned long counts; /* events written */
} gen_t;

/* ---- randomness: splitmix64 per contract ---- */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static long rng_range(rng_t *r, long lo, long hi)
{
    return lo + (long)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* True with probability pct/100. */
static int rng_pct(rng_t *r, int pct)
{
    return (int)(rng_next(r) % 100) < pct;
}

/* ---- event output ---- */

static rs_date_t add_months(rs_date_t d, int k)
{
    int y, m, day;
    rs_date_to_ymd(d, &y, &m, &day);
    int idx = y * 12 + (m - 1) + k;
    y = idx / 12;
    m = idx % 12 + 1;
    int dim = rs_days_in_month(y, m);
    return rs_date_from_ymd(y, m, day > dim ? dim : day);
}

static char *fmt_money(int64_t minor, int exponent, char *buf, size_t len)
{
    return rs_money_format(minor, exponent, buf, len);
}

/* Add one event dated (day, secs of day) if it falls in the month being
 * written. fmt continues the JSON object after occurred_at (starting with
 * ",\"..." and without the closing brace). */
__attribute__((format(printf, 7, 8))) static void emit(gen_t *g, long ci, const char *id,
                                                       const char *type, rs_date_t day,
                                                       int secs, const char *fmt, ...)
{
    unsigned place = g->place++;
    if (g->oom || day > g->last_day || rs_period_of(day) != g->cur)
        return;
    char date[16], rest[4096], *json = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof rest) {
        g->oom = 1;
        return;
    }
    rs_date_format(day, date, sizeof date);
    char contract[48] = "";
    if (ci >= 0)
        snprintf(contract, sizeof contract, ",\"contract_id\":\"C-%07ld\"", ci);
    const char *head = "{\"event_id\":\"%s\",\"type\":\"%s\"%s,\"occurred_at\":"
                       "\"%sT%02d:%02d:%02dZ\"%s}";
    int len = snprintf(NULL, 0, head, id, type, contract, date, secs / 3600, secs / 60 % 60,
                       secs % 60, rest);
    if (len < 0 || (json = malloc((size_t)len + 1)) == NULL) {
        g->oom = 1;
        return;
    }
    snprintf(json, (size_t)len + 1, head, id, type, contract, date, secs / 3600, secs / 60 % 60,
             secs % 60, rest);
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4096;
        gen_ev_t *ne = realloc(g->ev, cap * sizeof *ne);
        if (ne == NULL) {
            free(json);
            g->oom = 1;
            return;
        }
        g->ev = ne;
        g->cap = cap;
    }
    g->ev[g->n++] = (gen_ev_t){(int64_t)day * 86400 + secs,
                               ((uint64_t)(ci + 1) << 16) | (place & 0xffff), json};
}

static int ev_cmp(const void *a, const void *b)
{
    const gen_ev_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- one contract ---- */

enum { K_ANNUAL, K_MONTHLY, K_USAGE, K_BUNDLE, K_MILESTONE, K_MULTIYEAR };

static const struct {
    const char *code;
    int exponent;
} currencies[] = {{"USD", 2}, {"EUR", 2}, {"GBP", 2}, {"JPY", 0}};

/* An invoice with one line, and its payment unless it is left unpaid. */
static void invoice_paid(gen_t *g, rng_t *r, long ci, const char *tag, const char *line,
                         rs_date_t on, rs_date_t svc_start, rs_date_t svc_end, int64_t amount,
                         int64_t tax, int exponent, int unpaid)
{
    char id[64], a[40], t[40], total[40], ds[16], de[16], iss[16], due[16], rec[16];
    rs_date_format(on, iss, sizeof iss);
    rs_date_format(on + 30, due, sizeof due);
    rs_date_format(svc_start, ds, sizeof ds);
    rs_date_format(svc_end, de, sizeof de);
    fmt_money(amount, exponent, a, sizeof a);
    fmt_money(tax, exponent, t, sizeof t);
    fmt_money(amount + tax, exponent, total, sizeof total);
    snprintf(id, sizeof id, "inv-%ld-%s", ci, tag);
    emit(g, ci, id, "invoice.issued", on, 9 * 3600 + (int)(ci % 3600),
         ",\"invoice_id\":\"INV-%ld-%s\",\"issued_on\":\"%s\",\"due_on\":\"%s\",\"lines\":[{"
         "\"line_id\":\"%s\",\"amount\":\"%s\",\"tax\":\"%s\",\"service_start\":\"%s\","
         "\"service_end\":\"%s\"}]",
         ci, tag, iss, due, line, a, t, ds, de);
    if (unpaid)
        return;
    rs_date_t paid = on + (rs_date_t)rng_range(r, 2, 40);
    rs_date_format(paid, rec, sizeof rec);
    snprintf(id, sizeof id, "pay-%ld-%s", ci, tag);
    emit(g, ci, id, "payment.received", paid, 14 * 3600 + (int)(ci % 7200),
         ",\"payment_id\":\"PAY-%ld-%s\",\"invoice_id\":\"INV-%ld-%s\",\"amount\":\"%s\","
         "\"received_on\":\"%s\"",
         ci, tag, ci, tag, total, rec);
}

/* A credit note on the contract's first invoice (line L1). `prefix` makes
 * the ids: "CN" gives event cn-<ci> and credit note CN-<ci>. */
static void credit_note(gen_t *g, long ci, const char *prefix, const char *reason, rs_date_t on,
                        int64_t amount, int exponent)
{
    char id[64], d[16], a[40], lower[8];
    size_t k = 0;
    for (; prefix[k] != '\0' && k + 1 < sizeof lower; k++)
        lower[k] = (char)(prefix[k] - 'A' + 'a');
    lower[k] = '\0';
    rs_date_format(on, d, sizeof d);
    fmt_money(amount, exponent, a, sizeof a);
    snprintf(id, sizeof id, "%s-%ld", lower, ci);
    emit(g, ci, id, "credit_note.issued", on, 11 * 3600,
         ",\"credit_note_id\":\"%s-%ld\",\"invoice_id\":\"INV-%ld-1\",\"issued_on\":\"%s\","
         "\"reason\":\"%s\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"%s\"}]",
         prefix, ci, ci, d, reason, a);
}

static void gen_contract(gen_t *g, long ci)
{
    rng_t r = {g->seed * 0x100000001b3ULL + (uint64_t)ci * 0x9e3779b97f4a7c15ULL + 1};
    int roll = (int)rng_range(&r, 0, 99);
    int kind = roll < 30   ? K_ANNUAL
               : roll < 60 ? K_MONTHLY
               : roll < 72 ? K_USAGE
               : roll < 82 ? K_BUNDLE
               : roll < 88 ? K_MILESTONE
                           : K_MULTIYEAR;
    if (g->simple)
        kind = K_ANNUAL;
    int cur = (int)rng_range(&r, 0, 99);
    cur = cur < 70 ? 0 : cur < 85 ? 1 : cur < 93 ? 2 : 3;
    const char *ccy = currencies[cur].code;
    int exp = currencies[cur].exponent;
    const int64_t unit = 100; /* amounts are drawn in units of 100 minor units */
    long span = (long)(g->last_day - g->first_day) * 2 / 3;
    rs_date_t start = g->first_day + (rs_date_t)rng_range(&r, 0, span > 0 ? span : 0);
    int months = kind == K_MULTIYEAR ? 36 : kind == K_MILESTONE ? 6 : 12;
    rs_date_t end = add_months(start, months) - 1;
    int secs = 8 * 3600 + (int)(ci % 3600);
    const char *method = "ratable_monthly";
    int taxed = rng_pct(&r, 40);
    char id[64], s[16], e[16], a[40], b[40], sa[40], sb[40], tag[16];
    rs_date_format(start, s, sizeof s);
    rs_date_format(end, e, sizeof e);
    g->place = 0;

    /* the booking */
    int64_t amount = 0, monthly = 0, fee = 0, a1 = 0, a2 = 0, ms[3] = {0, 0, 0};
    long price = 0;
    static const long usage_prices[] = {5, 10, 25, 100}; /* minor units per unit */
    snprintf(id, sizeof id, "crm-%ld", ci);
    const char *booked_fmt = ",\"customer_id\":\"CUS-%06ld\",\"currency\":\"%s\",\"booked_on\":"
                             "\"%s\",\"source\":{\"system\":\"%s\",\"record_id\":\"deal-%ld\"},"
                             "\"lines\":[%s]";
    char lines[1024];
    switch (kind) {
    case K_ANNUAL:
    case K_MONTHLY:
        monthly = rng_range(&r, 1, 100) * 50 * unit;
        amount = monthly * 12;
        fmt_money(amount, exp, a, sizeof a);
        snprintf(
            lines, sizeof lines,
            "{\"line_id\":\"L1\",\"product\":\"%s\",\"recognition\":\"%s\",\"start\":\"%s\","
            "\"end\":\"%s\",\"amount\":\"%s\"}",
            kind == K_ANNUAL ? "Platform annual subscription" : "Team plan, billed monthly",
            method = rng_pct(&r, 25) ? "ratable_daily" : "ratable_monthly", s, e, a);
        break;
    case K_USAGE:
        fee = rng_range(&r, 1, 20) * 10 * unit * 12; /* a whole number of months */
        price = usage_prices[rng_range(&r, 0, 3)];
        fmt_money(fee, exp, a, sizeof a);
        fmt_money(rng_pct(&r, 30) ? fee : 0, exp, b, sizeof b);
        fmt_money(price, exp, sa, sizeof sa);
        snprintf(lines, sizeof lines,
                 "{\"line_id\":\"L1\",\"product\":\"Platform fee\",\"recognition\":"
                 "\"ratable_monthly\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\"},"
                 "{\"line_id\":\"L2\",\"product\":\"API calls (metered)\",\"recognition\":"
                 "\"usage\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\",\"unit_price\":"
                 "\"%s\"}",
                 s, e, a, s, e, b, sa);
        break;
    case K_BUNDLE: {
        int64_t ssp1 = rng_range(&r, 10, 200) * 100 * unit, ssp2 = ssp1 / 4;
        amount = (ssp1 + ssp2) * rng_range(&r, 70, 95) / 100 / unit * unit;
        a1 = amount * 4 / 5;
        a2 = amount - a1;
        rs_date_t onb = start + 14;
        char o[16];
        rs_date_format(onb, o, sizeof o);
        fmt_money(a1, exp, a, sizeof a);
        fmt_money(a2, exp, b, sizeof b);
        fmt_money(ssp1, exp, sa, sizeof sa);
        fmt_money(ssp2, exp, sb, sizeof sb);
        snprintf(
            lines, sizeof lines,
            "{\"line_id\":\"L1\",\"product\":\"Subscription\",\"recognition\":"
            "\"ratable_monthly\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\",\"ssp\":"
            "\"%s\"},{\"line_id\":\"L2\",\"product\":\"Onboarding\",\"recognition\":"
            "\"point_in_time\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\",\"ssp\":"
            "\"%s\"}",
            s, e, a, sa, o, o, b, sb);
        break;
    }
    case K_MILESTONE: {
        amount = rng_range(&r, 10, 300) * 100 * unit;
        ms[0] = amount / 4;
        ms[1] = amount / 4;
        ms[2] = amount - ms[0] - ms[1];
        char m0[40], m1[40], m2[40];
        fmt_money(amount, exp, a, sizeof a);
        fmt_money(ms[0], exp, m0, sizeof m0);
        fmt_money(ms[1], exp, m1, sizeof m1);
        fmt_money(ms[2], exp, m2, sizeof m2);
        snprintf(
            lines, sizeof lines,
            "{\"line_id\":\"L1\",\"product\":\"Implementation\",\"recognition\":"
            "\"milestone\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\",\"milestones\":"
            "[{\"milestone_id\":\"M1\",\"amount\":\"%s\"},{\"milestone_id\":\"M2\","
            "\"amount\":\"%s\"},{\"milestone_id\":\"M3\",\"amount\":\"%s\"}]}",
            s, e, a, m0, m1, m2);
        break;
    }
    default: /* K_MULTIYEAR */
        amount = rng_range(&r, 3, 100) * 3 * 1000 * unit;
        fmt_money(amount, exp, a, sizeof a);
        snprintf(lines, sizeof lines,
                 "{\"line_id\":\"L1\",\"product\":\"Enterprise agreement, 3 years\","
                 "\"recognition\":\"ratable_daily\",\"start\":\"%s\",\"end\":\"%s\",\"amount\":"
                 "\"%s\"}",
                 s, e, a);
        break;
    }
    emit(g, ci, id, "contract.booked", start, secs, booked_fmt, ci / 2, ccy, s,
         rng_pct(&r, 50) ? "hubspot" : "salesforce", ci, lines);

    /* billing, usage and the lifecycle */
    int amend_at = 0, cancel_at = 0;
    if (g->simple)
        ; /* one line, one invoice, one payment */
    else if ((kind == K_ANNUAL || kind == K_MONTHLY) && rng_pct(&r, 8))
        amend_at = (int)rng_range(&r, 3, 8);
    else if (kind == K_MONTHLY && rng_pct(&r, 4))
        cancel_at = (int)rng_range(&r, 4, 9);
    int unpaid_from = rng_pct(&r, 5) ? (int)rng_range(&r, 1, months - 1) : months;
    switch (kind) {
    case K_ANNUAL: {
        int64_t tax = taxed ? amount * 8 / 100 : 0;
        invoice_paid(g, &r, ci, "1", "L1", start, start, end, amount, tax, exp, 0);
        if (g->simple)
            break;
        if (rng_pct(&r, 5)) { /* a discount on what remains */
            rs_date_t on = start + (rs_date_t)rng_range(&r, 20, 60);
            credit_note(g, ci, "CN", "discount", on, amount / 10, exp);
        } else if (rng_pct(&r, 2)) { /* a partial refund after payment */
            rs_date_t on = start + (rs_date_t)rng_range(&r, 60, 120);
            char d[16];
            credit_note(g, ci, "CNR", "refund", on, amount / 10, exp);
            rs_date_format(on, d, sizeof d);
            fmt_money(amount / 10, exp, a, sizeof a);
            snprintf(id, sizeof id, "ref-%ld", ci);
            emit(g, ci, id, "payment.refunded", on + 1, 10 * 3600,
                 ",\"refund_id\":\"REF-%ld\",\"payment_id\":\"PAY-%ld-1\",\"invoice_id\":"
                 "\"INV-%ld-1\",\"amount\":\"%s\",\"refunded_on\":\"%s\"",
                 ci, ci, ci, a, d);
        }
        break;
    }
    case K_MONTHLY: {
        int64_t rate = monthly;
        for (int k = 0; k < months; k++) {
            if (cancel_at && k >= cancel_at)
                break;
            if (amend_at && k == amend_at)
                rate = monthly * 3 / 2;
            rs_date_t ms_ = add_months(start, k), me = add_months(start, k + 1) - 1;
            snprintf(tag, sizeof tag, "%02d", k + 1);
            invoice_paid(g, &r, ci, tag, "L1", ms_, ms_, me, rate, taxed ? rate * 8 / 100 : 0,
                         exp, k >= unpaid_from);
        }
        break;
    }
    case K_USAGE:
        for (int k = 0; k < months; k++) {
            rs_date_t ms_ = add_months(start, k), me = add_months(start, k + 1) - 1;
            int64_t qty_total = 0;
            for (int u = 0; u < g->usage_per_month; u++) {
                long q = rng_range(&r, 1, 5000);
                rs_date_t on = ms_ + (rs_date_t)rng_range(&r, 0, (long)(me - ms_));
                snprintf(id, sizeof id, "use-%ld-%d-%d", ci, k, u);
                emit(g, ci, id, "usage.recorded", on, (int)rng_range(&r, 0, 86399),
                     ",\"line_id\":\"L2\",\"quantity\":\"%ld\"", q);
                qty_total += q;
            }
            /* the fee in advance, the usage in arrears on the day after */
            snprintf(tag, sizeof tag, "F%02d", k + 1);
            invoice_paid(g, &r, ci, tag, "L1", ms_, ms_, me, fee / 12, 0, exp,
                         k >= unpaid_from);
            snprintf(tag, sizeof tag, "U%02d", k + 1);
            if (qty_total > 0)
                invoice_paid(g, &r, ci, tag, "L2", me + 1, ms_, me, qty_total * price, 0, exp,
                             k >= unpaid_from);
        }
        break;
    case K_BUNDLE:
        invoice_paid(g, &r, ci, "1", "L1", start, start, end, a1, 0, exp, 0);
        invoice_paid(g, &r, ci, "2", "L2", start, start, start + 14, a2, 0, exp, 0);
        break;
    case K_MILESTONE:
        for (int k = 0; k < 3; k++) {
            rs_date_t on = start + 40 + 60 * k;
            char d[16];
            rs_date_format(on, d, sizeof d);
            snprintf(id, sizeof id, "ms-%ld-%d", ci, k + 1);
            emit(g, ci, id, "milestone.completed", on, 17 * 3600,
                 ",\"line_id\":\"L1\",\"milestone_id\":\"M%d\",\"completed_on\":\"%s\"", k + 1,
                 d);
            snprintf(tag, sizeof tag, "M%d", k + 1);
            invoice_paid(g, &r, ci, tag, "L1", on + 1, start, end, ms[k], 0, exp, 0);
        }
        break;
    default: /* K_MULTIYEAR: yearly invoices */
        for (int k = 0; k < 3; k++) {
            rs_date_t ys = add_months(start, 12 * k), ye = add_months(start, 12 * (k + 1)) - 1;
            snprintf(tag, sizeof tag, "Y%d", k + 1);
            invoice_paid(g, &r, ci, tag, "L1", ys, ys, ye, amount / 3, 0, exp, 0);
        }
        break;
    }
    if (amend_at) { /* an upgrade by half from a month boundary, prospective */
        rs_date_t on = add_months(start, amend_at);
        int64_t new_amount = monthly * amend_at + monthly * 3 / 2 * (12 - amend_at);
        char d[16];
        rs_date_format(on, d, sizeof d);
        fmt_money(new_amount, exp, a, sizeof a);
        snprintf(id, sizeof id, "crm-%ld-a1", ci);
        emit(g, ci, id, "contract.amended", on, 8 * 3600,
             ",\"effective_on\":\"%s\",\"treatment\":\"prospective\",\"lines\":[{\"line_id\":"
             "\"L1\",\"product\":\"%s\",\"recognition\":\"%s\",\"start\":\"%s\","
             "\"end\":\"%s\",\"amount\":\"%s\"}]",
             d, kind == K_ANNUAL ? "Platform annual subscription" : "Team plan, billed monthly",
             method, s, e, a);
        if (kind == K_ANNUAL)
            invoice_paid(g, &r, ci, "A1", "L1", on, on, end, new_amount - amount, 0, exp, 0);
    }
    if (cancel_at) {
        rs_date_t on = add_months(start, cancel_at);
        char d[16];
        rs_date_format(on, d, sizeof d);
        snprintf(id, sizeof id, "crm-%ld-x", ci);
        emit(g, ci, id, "contract.cancelled", on, 8 * 3600, ",\"effective_on\":\"%s\"", d);
    }
}

/* Month closes: period M is closed on the 6th of M+1. */
static void gen_closes(gen_t *g)
{
    for (rs_period_t p = g->first; p < g->first + g->months; p++) {
        rs_date_t on = rs_period_first_day(p + 1) + 5;
        char id[32], per[16];
        rs_period_format(p, per, sizeof per);
        snprintf(id, sizeof id, "close-%s", per);
        g->place = 0;
        emit(g, -1, id, "period.closed", on, 18 * 3600, ",\"period\":\"%s\"", per);
    }
}

static void usage(FILE *f, const char *cmd)
{
    fprintf(f,
            "usage: revstream %s [--contracts N] [--seed S] [--start YYYY-MM] [--months M]\n"
            "                 [--usage-per-month U] [--mix realistic|simple] [--out FILE]\n"
            "A deterministic book of realistic events as JSON Lines, in occurred_at order:\n"
            "annual upfront, monthly billed, metered usage, SSP bundles, milestones and\n"
            "three-year contracts, with payments, upgrades, cancellations, credit notes,\n"
            "refunds and month closes. Same options, same bytes.\n"
            "  --contracts N        contracts (default 1000)\n"
            "  --seed S             seed (default 1)\n"
            "  --start YYYY-MM      first month (default 2026-01)\n"
            "  --months M           months of activity (default 12)\n"
            "  --usage-per-month U  usage records per metered contract and month (default 8)\n"
            "  --mix simple         every contract simple: one annual line, one invoice,\n"
            "                       one payment (default realistic: the mix above)\n"
            "  --out FILE           write here instead of stdout\n",
            cmd);
}

int rs_cli_cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {{"contracts", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"start", required_argument, NULL, 'b'},
                                         {"months", required_argument, NULL, 'm'},
                                         {"usage-per-month", required_argument, NULL, 'u'},
                                         {"mix", required_argument, NULL, 'x'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    gen_t g = {.seed = 1, .contracts = 1000, .months = 12, .usage_per_month = 8};
    const char *out = NULL, *start = "2026-01";
    FILE *f = stdout;
    int rc = 1, c;
    char *end;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            g.contracts = strtol(optarg, &end, 10);
            if (*end != '\0' || g.contracts < 1 || g.contracts > 100000000) {
                fprintf(stderr, "generate: --contracts: expected 1..100000000, got \"%s\"\n",
                        optarg);
                return 1;
            }
            break;
        case 's':
            errno = 0;
            g.seed = strtoull(optarg, &end, 10);
            if (*end != '\0' || errno != 0) {
                fprintf(stderr, "generate: --seed: expected an unsigned integer\n");
                return 1;
            }
            break;
        case 'b':
            start = optarg;
            break;
        case 'm':
            g.months = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || g.months < 1 || g.months > 120) {
                fprintf(stderr, "generate: --months: expected 1..120\n");
                return 1;
            }
            break;
        case 'u':
            g.usage_per_month = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || g.usage_per_month < 0 || g.usage_per_month > 100000) {
                fprintf(stderr, "generate: --usage-per-month: expected 0..100000\n");
                return 1;
            }
            break;
        case 'x':
            if (strcmp(optarg, "simple") != 0 && strcmp(optarg, "realistic") != 0) {
                fprintf(stderr, "generate: --mix: expected realistic or simple, got \"%s\"\n",
                        optarg);
                return 1;
            }
            g.simple = strcmp(optarg, "simple") == 0;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            usage(stdout, argv[0]);
            return 0;
        default:
            usage(stderr, argv[0]);
            return 1;
        }
    }
    if (optind != argc) {
        usage(stderr, argv[0]);
        return 1;
    }
    if (rs_period_parse(start, &g.first) != 0) {
        fprintf(stderr, "generate: --start: expected YYYY-MM, got \"%s\"\n", start);
        return 1;
    }
    g.first_day = rs_period_first_day(g.first);
    g.last_day = rs_period_last_day(g.first + g.months - 1);
    if (out != NULL && (f = fopen(out, "w")) == NULL) {
        fprintf(stderr, "generate: %s: %s\n", out, strerror(errno));
        return 1;
    }
    for (g.cur = g.first; g.cur < g.first + g.months; g.cur++) {
        for (long ci = 0; ci < g.contracts && !g.oom; ci++)
            gen_contract(&g, ci);
        gen_closes(&g);
        if (g.oom) {
            fprintf(stderr, "generate: out of memory\n");
            goto done;
        }
        qsort(g.ev, g.n, sizeof *g.ev, ev_cmp);
        for (size_t i = 0; i < g.n; i++) {
            fputs(g.ev[i].json, f);
            fputc('\n', f);
            free(g.ev[i].json);
        }
        g.counts += g.n;
        char per[16];
        fprintf(stderr, "generate: progress month=%s events=%zu total=%lu\n",
                rs_period_format(g.cur, per, sizeof per), g.n, g.counts);
        g.n = 0;
    }
    if (fflush(f) != 0 || ferror(f)) {
        fprintf(stderr, "generate: write: %s\n", strerror(errno));
        goto done;
    }
    fprintf(stderr, "generate: done contracts=%ld events=%lu seed=%" PRIu64 "\n", g.contracts,
            g.counts, g.seed);
    rc = 0;
done:
    for (size_t i = 0; i < g.n; i++)
        free(g.ev[i].json);
    free(g.ev);
    if (f != stdout && fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "generate: %s: %s\n", out, strerror(errno));
        rc = 1;
    }
    return rc;
}
