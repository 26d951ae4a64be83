/*
 * test_history_properties.c — property tests over random event histories.
 *
 * A seeded generator writes, per contract, a booking with 1-3 lines (ratable
 * by day or month, point in time, usage), amendments (up, down, extended,
 * lines added or removed, prospective or catch-up), sometimes a cancellation,
 * invoices with tax, credit notes of every reason, voids, payments, refunds,
 * invoices declared uncollectible, usage, and month closes. Each topic keeps
 * its own order (as a Kafka partition does); the topics are interleaved
 * twice: in business-date order, and at random, with duplicates replayed.
 * For every history:
 *   H1 every entry balances;
 *   H2 no line recognizes more than its transaction price, and a ratable
 *      line that has ended recognized exactly its price;
 *   H3 deferred and unbilled are never negative, as of every period end;
 *   H4 a closed period's rollforward and balances never change afterwards;
 *   H5 the final balances of every line (billed, recognized, deferred,
 *      unbilled, received), customer credit and write-offs are the same
 *      whatever the cross-topic arrival order;
 *   H6 nothing is rejected (the histories are valid in any order), except
 *      usage dated after a cancellation that arrived before it.
 * Reproducing: SEED=n starts at seed n, SEEDS=m stops after seed m (default
 * 1..60), DUMP=1 writes the failing history to /tmp/hist_dump.jsonl (replay
 * it with `revstream replay`) and prints the contract's journal.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_hash.h"
#include "rs_test_util.h"

#define PACKED_DIGEST 0x0bc80d8dccef8054ULL

enum { T_CONTRACTS, T_INVOICES, T_PAYMENTS, T_USAGE, T_COUNT };

typedef struct gev {
    int topic;
    rs_date_t on;
    int seq;
    char json[1536];
} gev_t;

typedef struct hist {
    gev_t *ev;
    int n, cap;
    int seq;
} hist_t;

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t next(rng_t *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static int pick(rng_t *r, int n)
{
    return (int)(next(r) % (uint64_t)n);
}

static void add(hist_t *h, int topic, rs_date_t on, const char *fmt, ...)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->ev = realloc(h->ev, (size_t)h->cap * sizeof(gev_t));
        cr_assert_not_null(h->ev);
    }
    gev_t *g = &h->ev[h->n++];
    g->topic = topic;
    g->on = on;
    g->seq = h->seq++;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(g->json, sizeof(g->json), fmt, ap);
    va_end(ap);
    cr_assert_lt(len, (int)sizeof(g->json));
}

static char *D(rs_date_t d, char *buf)
{
    return rs_date_format(d, buf, 16);
}

typedef struct gline {
    char id[16];
    int method; /* 0 daily, 1 monthly, 2 point, 3 usage */
    rs_date_t start, end;
    int64_t amount; /* minor units */
} gline_t;

static const char *method_name[] = {"ratable_daily", "ratable_monthly", "point_in_time",
                                    "usage"};

static int lines_json(char *buf, size_t cap, const gline_t *L, int n, int exp)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < n; i++) {
        char a[40], s[16], e[16];
        rs_money_format(L[i].amount, exp, a, sizeof(a));
        o += (size_t)snprintf(
            buf + o, cap - o,
            "%s{\"line_id\":\"%s\",\"product\":\"p%d\",\"recognition\":\"%s\","
            "\"start\":\"%s\",\"end\":\"%s\",\"amount\":\"%s\"%s}",
            i ? "," : "", L[i].id, L[i].method, method_name[L[i].method], D(L[i].start, s),
            D(L[i].end, e), a, L[i].method == 3 ? ",\"unit_price\":\"0.0125\"" : "");
    }
    o += (size_t)snprintf(buf + o, cap - o, "]");
    return (int)o;
}

/* One contract's history. */
static void gen_contract(rng_t *r, hist_t *h, int ci)
{
    int jpy = pick(r, 4) == 0, exp = jpy ? 0 : 2;
    const char *cur = jpy ? "JPY" : "USD";
    gline_t L[4];
    int nl = 1 + pick(r, 3), has_usage = 0;
    rs_date_t b = rs_date_from_ymd(2026, 1 + pick(r, 6), 1 + pick(r, 28));
    for (int i = 0; i < nl; i++) {
        snprintf(L[i].id, sizeof(L[i].id), "L%d", i);
        L[i].method = pick(r, 4);
        L[i].start = b + pick(r, 20);
        L[i].end = L[i].start + (L[i].method == 2 ? 0 : 30 + pick(r, 400));
        L[i].amount = L[i].method == 3 ? 0 : 100 * (1 + pick(r, 5000));
        has_usage |= L[i].method == 3;
    }
    char lj[1200], d1[16];
    lines_json(lj, sizeof(lj), L, nl, exp);
    add(h, T_CONTRACTS, b,
        "{\"event_id\":\"c%d-b\",\"type\":\"contract.booked\",\"contract_id\":\"C%d\","
        "\"occurred_at\":\"%sT08:00:00Z\",\"customer_id\":\"K\",\"currency\":\"%s\","
        "\"booked_on\":\"%s\",\"lines\":%s}",
        ci, ci, D(b, d1), cur, d1, lj);
    rs_date_t last_contract = b;
    /* amendments */
    int na = pick(r, 3);
    for (int k = 0; k < na; k++) {
        rs_date_t E = last_contract + 5 + pick(r, 120);
        for (int i = 0; i < nl; i++) {
            if (L[i].method == 3 || L[i].method == 2)
                continue;
            switch (pick(r, 3)) {
            case 0:
                L[i].amount += 100 * pick(r, 3000);
                break;
            case 1:
                L[i].amount = L[i].amount / 2;
                break;
            default:
                L[i].end += pick(r, 90);
            }
        }
        if (nl < 4 && pick(r, 3) == 0) { /* add a line */
            snprintf(L[nl].id, sizeof(L[nl].id), "N%d", k);
            L[nl].method = pick(r, 2);
            L[nl].start = E + pick(r, 10) - 5;
            L[nl].end = L[nl].start + 60 + pick(r, 200);
            L[nl].amount = 100 * (1 + pick(r, 3000));
            nl++;
        }
        int drop = -1;
        if (nl > 1 && pick(r, 4) == 0 && L[nl - 1].method != 3)
            drop = nl - 1; /* remove the last (non-usage) line */
        lines_json(lj, sizeof(lj), L, drop >= 0 ? nl - 1 : nl, exp);
        if (drop >= 0)
            nl--;
        add(h, T_CONTRACTS, E,
            "{\"event_id\":\"c%d-a%d\",\"type\":\"contract.amended\",\"contract_id\":\"C%d\","
            "\"occurred_at\":\"%sT08:00:00Z\",\"effective_on\":\"%s\",\"treatment\":\"%s\","
            "\"lines\":%s}",
            ci, k, ci, D(E, d1), d1, pick(r, 2) ? "catch_up" : "prospective", lj);
        last_contract = E;
    }
    rs_date_t cancel = RS_DATE_NONE;
    (void)has_usage; /* usage lines are cancelled too: usage after the date is out */
    if (pick(r, 4) == 0) {
        cancel = last_contract + 10 + pick(r, 120);
        add(h, T_CONTRACTS, cancel,
            "{\"event_id\":\"c%d-x\",\"type\":\"contract.cancelled\",\"contract_id\":\"C%d\","
            "\"occurred_at\":\"%sT08:00:00Z\",\"effective_on\":\"%s\"}",
            ci, ci, D(cancel, d1), d1);
    }
    /* usage: inside the original service of usage lines (never shortened) */
    for (int i = 0; i < nl; i++) {
        if (L[i].method != 3)
            continue;
        int nu = pick(r, 8);
        for (int k = 0; k < nu; k++) {
            rs_date_t d = L[i].start + pick(r, (int)(L[i].end - L[i].start + 1));
            add(h, T_USAGE, d,
                "{\"event_id\":\"c%d-u%d-%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"line_id\":\"%s\",\"quantity\":"
                "\"%d\"}",
                ci, i, k, ci, D(d, d1), L[i].id, 1 + pick(r, 50000));
        }
    }
    /* invoices, credit notes, voids, write-offs; payments and refunds */
    int ni = 1 + pick(r, 3);
    for (int k = 0; k < ni; k++) {
        int li = pick(r, nl);
        rs_date_t on = b + pick(r, 300);
        int64_t amt = 100 + pick(r, 500000), tax = pick(r, 2) ? amt / 10 : 0;
        char a[40], t[40];
        rs_money_format(amt, exp, a, sizeof(a));
        rs_money_format(tax, exp, t, sizeof(t));
        add(h, T_INVOICES, on,
            "{\"event_id\":\"c%d-i%d\",\"type\":\"invoice.issued\",\"contract_id\":\"C%d\","
            "\"occurred_at\":\"%sT09:00:00Z\",\"invoice_id\":\"I%d-%d\",\"issued_on\":\"%s\","
            "\"lines\":[{\"line_id\":\"%s\",\"amount\":\"%s\",\"tax\":\"%s\"}]}",
            ci, k, ci, D(on, d1), ci, k, d1, L[li].id, a, t);
        rs_date_t inv_last = on;
        int ncn = pick(r, 3);
        static const char *reasons[] = {"discount", "refund", "cancellation", "error"};
        for (int m = 0; m < ncn; m++) {
            rs_date_t con = inv_last + pick(r, 90);
            int64_t ca = amt / 2 / (m + 1), ct = tax / 2 / (m + 1);
            if (ca <= 0)
                continue;
            rs_money_format(ca, exp, a, sizeof(a));
            rs_money_format(ct, exp, t, sizeof(t));
            add(h, T_INVOICES, con,
                "{\"event_id\":\"c%d-i%d-cn%d\",\"type\":\"credit_note.issued\",\"contract_"
                "id\":"
                "\"C%d\",\"occurred_at\":\"%sT10:00:00Z\",\"credit_note_id\":\"CN%d-%d-%d\","
                "\"invoice_id\":\"I%d-%d\",\"issued_on\":\"%s\",\"reason\":\"%s\",\"lines\":"
                "[{\"line_id\":\"%s\",\"amount\":\"%s\",\"tax\":\"%s\"}]}",
                ci, k, m, ci, D(con, d1), ci, k, m, ci, k, d1, reasons[pick(r, 4)], L[li].id, a,
                t);
            inv_last = con;
        }
        int fate = pick(r, 6);
        if (fate == 0) {
            rs_date_t von = inv_last + 1 + pick(r, 30);
            add(h, T_INVOICES, von,
                "{\"event_id\":\"c%d-i%d-v\",\"type\":\"invoice.voided\",\"contract_id\":\"C%"
                "d\","
                "\"occurred_at\":\"%sT11:00:00Z\",\"invoice_id\":\"I%d-%d\",\"voided_on\":"
                "\"%s\"}",
                ci, k, ci, D(von, d1), ci, k, d1);
        } else if (fate == 1) {
            rs_date_t uon = inv_last + 30 + pick(r, 60);
            add(h, T_INVOICES, uon,
                "{\"event_id\":\"c%d-i%d-w\",\"type\":\"invoice.uncollectible\",\"contract_"
                "id\":"
                "\"C%d\",\"occurred_at\":\"%sT11:00:00Z\",\"invoice_id\":\"I%d-%d\","
                "\"declared_on\":\"%s\"}",
                ci, k, ci, D(uon, d1), ci, k, d1);
        }
        if (pick(r, 3) != 0) {
            rs_date_t pon = on + pick(r, 60);
            int64_t pa = 1 + (int64_t)(next(r) % (uint64_t)(amt + tax));
            rs_money_format(pa, exp, a, sizeof(a));
            add(h, T_PAYMENTS, pon,
                "{\"event_id\":\"c%d-p%d\",\"type\":\"payment.received\",\"contract_id\":"
                "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"payment_id\":\"P%d-%d\","
                "\"invoice_id\":\"I%d-%d\",\"amount\":\"%s\",\"received_on\":\"%s\"}",
                ci, k, ci, D(pon, d1), ci, k, ci, k, a, d1);
            if (pick(r, 3) == 0) {
                int64_t ra = 1 + (int64_t)(next(r) % (uint64_t)pa);
                rs_money_format(ra, exp, a, sizeof(a));
                rs_date_t ron = pon + 1 + pick(r, 40);
                add(h, T_PAYMENTS, ron,
                    "{\"event_id\":\"c%d-r%d\",\"type\":\"payment.refunded\",\"contract_id\":"
                    "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"refund_id\":\"R%d-%d\","
                    "\"payment_id\":\"P%d-%d\",\"invoice_id\":\"I%d-%d\",\"amount\":\"%s\","
                    "\"refunded_on\":\"%s\"}",
                    ci, k, ci, D(ron, d1), ci, k, ci, k, ci, k, a, d1);
            }
        }
    }
    (void)cancel;
}

/* Stable order by (date, generation sequence) inside one topic. */
static int cmp_gev(const void *a, const void *b)
{
    const gev_t *x = a, *y = b;
    if (x->on != y->on)
        return x->on < y->on ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

typedef struct snap {
    rs_period_t period;
    rs_rollforward_row_t *rf;
    size_t nrf;
    rs_balance_row_t *bal;
    size_t nbal;
    char (*ids)[2][RS_ID_MAX]; /* row strings point into the engine: keep copies */
} snap_t;

typedef struct run {
    rs_harness_t h;
    snap_t snaps[32];
    int nsnaps;
} run_t;

static void run_feed(run_t *R, const gev_t *g, uint64_t seed)
{
    int before = R->h.rejected;
    int rc = rs_harness_apply(&R->h, g->json);
    /* H6: the one rejection a valid history may have, in some orders: usage
     * dated on or after a cancellation that arrived first (when it arrives
     * after the usage, the usage is reversed instead: H5 checks both give
     * the same balances) */
    if (R->h.rejected > before)
        cr_assert(strstr(R->h.last_error, "occurred_at:") != NULL &&
                      strstr(R->h.last_error, "outside the line's service") != NULL,
                  "seed %llu: rejected: %s\n%s", (unsigned long long)seed, R->h.last_error,
                  g->json);
    cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_DUPLICATE || rc == RS_APPLY_PENDING ||
                  (rc == RS_APPLY_REJECTED && R->h.rejected > before),
              "seed %llu: rc %d: %s\n%s", (unsigned long long)seed, rc, R->h.last_error,
              g->json);
    const char *p = strstr(g->json, "\"period.closed\"");
    if (p && R->nsnaps < 32) {
        snap_t *s = &R->snaps[R->nsnaps++];
        const char *per = strstr(g->json, "\"period\":\"") + 10;
        char buf[8];
        memcpy(buf, per, 7);
        buf[7] = '\0';
        cr_assert_eq(rs_period_parse(buf, &s->period), 0);
        cr_assert_eq(
            rs_report_rollforward(R->h.engine, &R->h.journal, s->period, &s->rf, &s->nrf), 0);
        cr_assert_eq(
            rs_report_balances(R->h.engine, &R->h.journal, s->period, &s->bal, &s->nbal), 0);
        s->ids = calloc(s->nbal + 1, sizeof(*s->ids));
        for (size_t i = 0; i < s->nbal; i++) {
            snprintf(s->ids[i][0], RS_ID_MAX, "%s", s->bal[i].contract_id);
            snprintf(s->ids[i][1], RS_ID_MAX, "%s", s->bal[i].line_id);
        }
    }
}

/* H1-H4 on a finished run. */
static void check_run(run_t *R, rs_period_t H, uint64_t seed)
{
    rs_harness_t *h = &R->h;
    cr_assert_eq(rs_h_unbalanced_entries(h), 0, "seed %llu", (unsigned long long)seed);
    size_t nl = rs_engine_line_count(h->engine);
    for (size_t i = 0; i < nl; i++) {
        rs_line_view_t v;
        rs_engine_line_get(h->engine, i, &v);
        if (v.method == RS_METHOD_USAGE)
            continue;
        cr_assert_leq(v.recognized, v.price > 0 ? v.price : 0, "seed %llu %s/%s",
                      (unsigned long long)seed, v.contract_id, v.line_id);
        if (rs_period_of(v.end) < H && v.recognized != v.price && getenv("DUMP"))
            fprintf(stderr, "H2 %s/%s start %d end %d\n", v.contract_id, v.line_id, v.start,
                    v.end);
        if (rs_period_of(v.end) < H)
            cr_assert_eq(v.recognized, v.price, "seed %llu %s/%s: recognized %lld price %lld",
                         (unsigned long long)seed, v.contract_id, v.line_id,
                         (long long)v.recognized, (long long)v.price);
    }
    for (rs_period_t p = 2026 * 12; p <= H; p++) {
        rs_balance_row_t *b;
        size_t n;
        cr_assert_eq(rs_report_balances(h->engine, &h->journal, p, &b, &n), 0);
        for (size_t i = 0; i < n; i++) {
            cr_assert_geq(b[i].deferred, 0, "seed %llu", (unsigned long long)seed);
            cr_assert_geq(b[i].unbilled, 0, "seed %llu", (unsigned long long)seed);
            cr_assert_eq(b[i].deferred - b[i].unbilled, b[i].billed - b[i].recognized);
        }
        free(b);
    }
    for (int k = 0; k < R->nsnaps; k++) {
        snap_t *s = &R->snaps[k];
        rs_rollforward_row_t *rf;
        rs_balance_row_t *bal;
        size_t nrf, nbal;
        cr_assert_eq(rs_report_rollforward(h->engine, &h->journal, s->period, &rf, &nrf), 0);
        cr_assert_eq(rs_report_balances(h->engine, &h->journal, s->period, &bal, &nbal), 0);
        cr_assert_eq(nrf, s->nrf, "seed %llu", (unsigned long long)seed);
        for (size_t i = 0; i < nrf; i++)
            cr_assert(
                rf[i].period == s->rf[i].period && rf[i].closing == s->rf[i].closing &&
                    rf[i].billed == s->rf[i].billed &&
                    rf[i].recognized == s->rf[i].recognized &&
                    rf[i].credits == s->rf[i].credits,
                "seed %llu: closed %d: row %zu period %d %s: closing %lld vs %lld, billed "
                "%lld vs %lld, rec %lld vs %lld, credits %lld vs %lld",
                (unsigned long long)seed, s->period, i, rf[i].period, rf[i].currency,
                (long long)rf[i].closing, (long long)s->rf[i].closing, (long long)rf[i].billed,
                (long long)s->rf[i].billed, (long long)rf[i].recognized,
                (long long)s->rf[i].recognized, (long long)rf[i].credits,
                (long long)s->rf[i].credits);
        /* lines booked after the close have no rows then; compare the rest */
        for (size_t i = 0; i < s->nbal; i++)
            for (size_t j = 0; j < nbal; j++)
                if (strcmp(s->ids[i][0], bal[j].contract_id) == 0 &&
                    strcmp(s->ids[i][1], bal[j].line_id) == 0)
                    cr_assert(s->bal[i].billed == bal[j].billed &&
                                  s->bal[i].recognized == bal[j].recognized &&
                                  s->bal[i].deferred == bal[j].deferred &&
                                  s->bal[i].received == bal[j].received,
                              "seed %llu: closed balances of %s/%s changed",
                              (unsigned long long)seed, bal[j].contract_id, bal[j].line_id);
        free(rf);
        free(bal);
        free(s->rf);
        free(s->bal);
        free(s->ids);
    }
}

Test(history, arrival_order_does_not_change_final_balances)
{
    for (uint64_t seed = getenv("SEED") ? strtoull(getenv("SEED"), 0, 10) : 1;
         seed <= (getenv("SEEDS") ? strtoull(getenv("SEEDS"), 0, 10) : 60); seed++) {
        rng_t r = {seed * 0x9E3779B97F4A7C15ULL + 17};
        hist_t h = {0};
        int nc = 3 + pick(&r, 6);
        for (int c = 0; c < nc; c++)
            gen_contract(&r, &h, c);
        /* month closes, on the contracts topic */
        for (int m = 1; m <= 12; m++)
            if (pick(&r, 3) == 0) {
                char d[16];
                rs_date_t at = rs_date_from_ymd(m == 12 ? 2027 : 2026, m % 12 + 1, 2);
                add(&h, T_CONTRACTS, at,
                    "{\"event_id\":\"close-%d\",\"type\":\"period.closed\",\"occurred_at\":"
                    "\"%sT00:00:00Z\",\"period\":\"2026-%02d\"}",
                    m, D(at, d), m);
            }
        /* per-topic sequences in business order */
        gev_t *topic[T_COUNT];
        int nt[T_COUNT] = {0};
        for (int t = 0; t < T_COUNT; t++) {
            topic[t] = malloc(((size_t)h.n + 1) * sizeof(gev_t));
            for (int i = 0; i < h.n; i++)
                if (h.ev[i].topic == t)
                    topic[t][nt[t]++] = h.ev[i];
            qsort(topic[t], (size_t)nt[t], sizeof(gev_t), cmp_gev);
        }
        rs_period_t H = 2029 * 12;
        run_t *A = calloc(1, sizeof(*A)), *B = calloc(1, sizeof(*B));
        rs_harness_init(&A->h, NULL);
        rs_harness_init(&B->h, NULL);
        /* A: everything in business-date order */
        gev_t *all = malloc(((size_t)h.n + 1) * sizeof(gev_t));
        memcpy(all, h.ev, (size_t)h.n * sizeof(gev_t));
        qsort(all, (size_t)h.n, sizeof(gev_t), cmp_gev);
        if (getenv("DUMP")) {
            FILE *f = fopen("/tmp/hist_dump.jsonl", "w");
            for (int i = 0; f && i < h.n; i++)
                fprintf(f, "%s\n", all[i].json);
            if (f)
                fclose(f);
        }
        for (int i = 0; i < h.n; i++)
            run_feed(A, &all[i], seed);
        /* B: random interleaving of the topics, with duplicates replayed */
        int pos[T_COUNT] = {0}, left = h.n;
        while (left > 0) {
            int t = pick(&r, T_COUNT);
            if (pos[t] >= nt[t])
                continue;
            const gev_t *g = &topic[t][pos[t]++];
            run_feed(B, g, seed);
            if (pick(&r, 10) == 0)
                run_feed(B, g, seed); /* a redelivered duplicate */
            left--;
        }
        rs_engine_advance(A->h.engine, H);
        rs_engine_advance(B->h.engine, H);
        check_run(A, H, seed);
        check_run(B, H, seed);
        /* H5 */
        rs_balance_row_t *ba, *bb;
        size_t na, nb;
        cr_assert_eq(rs_report_balances(A->h.engine, &A->h.journal, H, &ba, &na), 0);
        cr_assert_eq(rs_report_balances(B->h.engine, &B->h.journal, H, &bb, &nb), 0);
        cr_assert_eq(na, nb, "seed %llu", (unsigned long long)seed);
        for (size_t i = 0; i < na; i++) {
            cr_assert_str_eq(ba[i].line_id, bb[i].line_id);
            if ((ba[i].received != bb[i].received || ba[i].recognized != bb[i].recognized) &&
                getenv("DUMP")) {
                char needle[64];
                snprintf(needle, sizeof(needle), "\"contract_id\":\"%s\"", ba[i].contract_id);
                fprintf(stderr, "--- A order\n");
                for (int k = 0; k < h.n; k++)
                    if (strstr(all[k].json, needle))
                        fprintf(stderr, "%s\n", all[k].json);
                fprintf(stderr, "--- B journal\n");
                for (size_t k = 0; k < B->h.journal.n; k++)
                    if (strcmp(B->h.journal.entries[k].contract_id, ba[i].contract_id) == 0) {
                        char *j = rs_codec_entry_json(&B->h.journal.entries[k]);
                        fprintf(stderr, "%s\n", j);
                        free(j);
                    }
            }
            cr_assert(ba[i].billed == bb[i].billed && ba[i].recognized == bb[i].recognized &&
                          ba[i].deferred == bb[i].deferred &&
                          ba[i].unbilled == bb[i].unbilled && ba[i].received == bb[i].received,
                      "seed %llu %s/%s: A billed %lld rec %lld def %lld unb %lld rcv %lld; B "
                      "billed %lld rec %lld def %lld unb %lld rcv %lld",
                      (unsigned long long)seed, ba[i].contract_id, ba[i].line_id,
                      (long long)ba[i].billed, (long long)ba[i].recognized,
                      (long long)ba[i].deferred, (long long)ba[i].unbilled,
                      (long long)ba[i].received, (long long)bb[i].billed,
                      (long long)bb[i].recognized, (long long)bb[i].deferred,
                      (long long)bb[i].unbilled, (long long)bb[i].received);
        }
        for (size_t i = 0; i < rs_engine_contract_count(A->h.engine); i++) {
            rs_contract_view_t ca, cb;
            rs_engine_contract_get(A->h.engine, i, &ca);
            rs_engine_contract_get(B->h.engine, i, &cb);
            cr_assert_eq(ca.customer_credit, cb.customer_credit,
                         "seed %llu %s: cc %lld vs %lld", (unsigned long long)seed,
                         ca.contract_id, (long long)ca.customer_credit,
                         (long long)cb.customer_credit);
            cr_assert_eq(ca.written_off, cb.written_off,
                         "seed %llu %s: written off %lld vs %lld", (unsigned long long)seed,
                         ca.contract_id, (long long)ca.written_off, (long long)cb.written_off);
        }
        free(ba);
        free(bb);
        rs_harness_free(&A->h);
        rs_harness_free(&B->h);
        free(A);
        free(B);
        free(all);
        for (int t = 0; t < T_COUNT; t++)
            free(topic[t]);
        free(h.ev);
    }
}

/* Export every changed contract and the meta state of `from`, import them
 * into a fresh engine that writes to `to`'s journal. */
static void move_state(rs_harness_t *from, rs_harness_t *to)
{
    char err[256];
    const char *const *ids;
    size_t n = rs_engine_take_changed(from->engine, &ids);
    void *buf;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(
            rs_engine_export_contract(from->engine, ids[i], &buf, &len, err, sizeof(err)), 0,
            "%s", err);
        cr_assert_eq(rs_engine_import_contract(to->engine, buf, len, err, sizeof(err)), 0, "%s",
                     err);
        free(buf);
    }
    cr_assert_eq(rs_engine_export_meta(from->engine, &buf, &len, err, sizeof(err)), 0);
    cr_assert_eq(rs_engine_import_meta(to->engine, buf, len, err, sizeof(err)), 0, "%s", err);
    free(buf);
}

/* A restored engine carries on exactly as the original: same entries, same
 * ids, byte for byte (what a worker restart relies on). */
Test(history, export_import_continues_identically)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        rng_t r = {seed * 0x2545F4914F6CDD1DULL + 3};
        hist_t h = {0};
        int nc = 2 + pick(&r, 5);
        for (int c = 0; c < nc; c++)
            gen_contract(&r, &h, c);
        for (int m = 1; m <= 12; m += 1 + pick(&r, 4)) {
            char d[16];
            rs_date_t at = rs_date_from_ymd(m == 12 ? 2027 : 2026, m % 12 + 1, 2);
            add(&h, T_CONTRACTS, at,
                "{\"event_id\":\"close-%d\",\"type\":\"period.closed\",\"occurred_at\":"
                "\"%sT00:00:00Z\",\"period\":\"2026-%02d\"}",
                m, D(at, d), m);
        }
        qsort(h.ev, (size_t)h.n, sizeof(gev_t), cmp_gev);
        int cut = pick(&r, h.n + 1);
        rs_harness_t X, Y, Z;
        rs_harness_init(&X, NULL);
        rs_harness_init(&Y, NULL);
        rs_harness_init(&Z, NULL);
        for (int i = 0; i < h.n; i++)
            rs_harness_apply(&X, h.ev[i].json);
        for (int i = 0; i < cut; i++)
            rs_harness_apply(&Y, h.ev[i].json);
        move_state(&Y, &Z);
        for (int i = cut; i < h.n; i++)
            rs_harness_apply(&Z, h.ev[i].json);
        rs_engine_advance(X.engine, 2029 * 12);
        rs_engine_advance(Z.engine, 2029 * 12);
        cr_assert_eq(X.journal.n, Y.journal.n + Z.journal.n, "seed %llu",
                     (unsigned long long)seed);
        for (size_t i = 0; i < X.journal.n; i++) {
            const rs_entry_t *b =
                i < Y.journal.n ? &Y.journal.entries[i] : &Z.journal.entries[i - Y.journal.n];
            char *ja = rs_codec_entry_json(&X.journal.entries[i]);
            char *jb = rs_codec_entry_json(b);
            cr_assert_str_eq(ja, jb, "seed %llu entry %zu", (unsigned long long)seed, i);
            /* and the journal topic's JSON decodes back to the same entry */
            rs_entry_t d;
            char err[256];
            const rs_entry_t *x = &X.journal.entries[i];
            cr_assert_eq(rs_codec_entry_from_json(ja, strlen(ja), &d, err, sizeof(err)), 0,
                         "%s", err);
            cr_assert(d.seq == x->seq && d.period == x->period &&
                          d.service_period == x->service_period &&
                          d.posted_on == x->posted_on && d.kind == x->kind &&
                          d.n_postings == x->n_postings && d.billed == x->billed &&
                          d.recognized == x->recognized && d.received == x->received &&
                          d.source_count == x->source_count &&
                          strcmp(d.line_id, x->line_id) == 0 && strcmp(d.rule, x->rule) == 0,
                      "seed %llu entry %s", (unsigned long long)seed, x->entry_id);
            for (int k = 0; k < d.n_postings; k++)
                cr_assert(d.postings[k].account == x->postings[k].account &&
                          d.postings[k].debit == x->postings[k].debit &&
                          d.postings[k].credit == x->postings[k].credit);
            free(ja);
            free(jb);
        }
        rs_harness_free(&X);
        rs_harness_free(&Y);
        rs_harness_free(&Z);
        free(h.ev);
    }
}

/* Every truncation and a few corruptions of a record are errors, not crashes. */
Test(history, corrupt_records_are_rejected)
{
    rng_t r = {99};
    hist_t h = {0};
    for (int c = 0; c < 3; c++)
        gen_contract(&r, &h, c);
    rs_harness_t X;
    rs_harness_init(&X, NULL);
    for (int i = 0; i < h.n; i++)
        rs_harness_apply(&X, h.ev[i].json);
    char err[256];
    void *buf;
    size_t len;
    cr_assert_eq(rs_engine_export_contract(X.engine, "C0", &buf, &len, err, sizeof(err)), 0);
    cr_assert_eq(rs_engine_export_contract(X.engine, "nope", &buf, &len, err, sizeof(err)) == 1,
                 1);
    rs_engine_t *e;
    cr_assert_eq(rs_engine_new(&e, NULL, err, sizeof(err)), 0);
    for (size_t k = 0; k < len; k++)
        cr_assert_eq(rs_engine_import_contract(e, buf, k, err, sizeof(err)), -1, "prefix %zu",
                     k);
    unsigned char *bad = malloc(len + 1);
    memcpy(bad, buf, len);
    bad[len] = 0;
    cr_assert_eq(rs_engine_import_contract(e, bad, len + 1, err, sizeof(err)), -1);
    cr_assert(strstr(err, "trailing bytes") != NULL, "%s", err);
    bad[4] = 9; /* version */
    cr_assert_eq(rs_engine_import_contract(e, bad, len, err, sizeof(err)), -1);
    cr_assert(strstr(err, "version") != NULL, "%s", err);
    cr_assert_eq(rs_engine_import_contract(e, buf, len, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_engine_import_contract(e, buf, len, err, sizeof(err)), 0, "re-import: %s",
                 err);
    rs_engine_stats_t st;
    rs_engine_get_stats(e, &st);
    cr_assert_eq(st.contracts, 1);
    rs_engine_forget_contract(e, "C0");
    rs_engine_get_stats(e, &st);
    cr_assert_eq(st.contracts, 0);
    free(bad);
    free(buf);
    rs_engine_destroy(e);
    rs_harness_free(&X);
    free(h.ev);
}

/* The book of the packed-form tests for one seed: 2-5 contracts C0.. of
 * random histories, applied to X (initialized here). Returns how many. */
static int seeded_book(uint64_t seed, hist_t *h, rs_harness_t *X)
{
    rng_t r = {seed * 0x9E3779B97F4A7C15ULL + 11};
    int nc = 2 + pick(&r, 4);
    for (int c = 0; c < nc; c++)
        gen_contract(&r, h, c);
    rs_harness_init(X, NULL);
    for (int i = 0; i < h->n; i++)
        rs_harness_apply(X, h->ev[i].json);
    return nc;
}

/* The packed form is a stored format (stores and changelogs hold it): the
 * bytes the same contracts pack to do not change with how the writer finds
 * a string it wrote before. The digest (FNV-1a 64 over each packed
 * contract's length and bytes, 20 seeds' books) is the one the writer's
 * linear scan of its strings produced on 2026-12-08, before the scan went
 * by class. */
Test(history, packed_form_bytes_are_stable)
{
    uint64_t digest = RS_FNV1A64_BASIS;
    size_t contracts = 0, bytes = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        hist_t h = {0};
        rs_harness_t X;
        int nc = seeded_book(seed, &h, &X);
        char err[256], id[16];
        for (int c = 0; c < nc; c++) {
            void *packed;
            size_t npacked;
            snprintf(id, sizeof id, "C%d", c);
            if (rs_engine_pack_contract(X.engine, id, &packed, &npacked, err, sizeof(err)) != 0)
                continue; /* a contract none of whose events applied */
            uint64_t n64 = npacked;
            digest = rs_fnv1a64_update(digest, &n64, sizeof n64);
            digest = rs_fnv1a64_update(digest, packed, npacked);
            contracts++;
            bytes += npacked;
            free(packed);
        }
        rs_harness_free(&X);
        free(h.ev);
    }
    cr_assert_gt(contracts, 40);
    cr_assert_eq(digest, PACKED_DIGEST, "digest 0x%016llx over %zu contracts, %zu bytes",
                 (unsigned long long)digest, contracts, bytes);
}

/* The packed form (rs_engine_pack_contract) holds exactly the record's
 * state: a contract imported from it exports the very record one imported
 * from its record does; it is smaller; and every truncation of it is an
 * error, not a crash. */
Test(history, packed_form_round_trips_exactly)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        hist_t h = {0};
        rs_harness_t X;
        int nc = seeded_book(seed, &h, &X);
        rs_engine_t *e;
        char err[256], id[16];
        cr_assert_eq(rs_engine_new(&e, NULL, err, sizeof(err)), 0);
        for (int c = 0; c < nc; c++) {
            void *rec, *packed, *again;
            size_t nrec, npacked, nagain;
            snprintf(id, sizeof id, "C%d", c);
            if (rs_engine_export_contract(X.engine, id, &rec, &nrec, err, sizeof(err)) != 0)
                continue; /* a contract none of whose events applied */
            /* the record as an imported contract writes it (a set's slots
             * may come in another order than the original's) */
            cr_assert_eq(rs_engine_import_contract(e, rec, nrec, err, sizeof(err)), 0, "%s",
                         err);
            free(rec);
            cr_assert_eq(rs_engine_export_contract(e, id, &rec, &nrec, err, sizeof(err)), 0);
            cr_assert_eq(
                rs_engine_pack_contract(X.engine, id, &packed, &npacked, err, sizeof(err)), 0,
                "%s", err);
            cr_assert_lt(npacked, nrec, "seed %llu %s", (unsigned long long)seed, id);
            for (size_t k = 0; k < npacked; k++)
                cr_assert_eq(rs_engine_import_contract(e, packed, k, err, sizeof(err)), -1,
                             "seed %llu %s: prefix %zu of %zu", (unsigned long long)seed, id, k,
                             npacked);
            cr_assert_eq(rs_engine_import_contract(e, packed, npacked, err, sizeof(err)), 0,
                         "seed %llu %s: %s", (unsigned long long)seed, id, err);
            cr_assert_eq(rs_engine_export_contract(e, id, &again, &nagain, err, sizeof(err)),
                         0);
            cr_assert_eq(nagain, nrec, "seed %llu %s", (unsigned long long)seed, id);
            cr_assert_eq(memcmp(again, rec, nrec), 0, "seed %llu %s", (unsigned long long)seed,
                         id);
            free(rec);
            free(packed);
            free(again);
        }
        rs_engine_destroy(e);
        rs_harness_free(&X);
        free(h.ev);
    }
}
