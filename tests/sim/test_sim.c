/*
 * test_sim — seeded simulation of the engine (issue 17): random histories
 * of every event type, checked after every event.
 *
 * A history (one seed) is a random policy (cancellation, bad debt,
 * proration) and 2-5 contracts, each with lines of every recognition method
 * (ratable daily and monthly, point in time, usage, milestones), amendments
 * (prospective and catch-up, lines added and ended), sometimes a
 * cancellation, milestone completions, usage, invoices with tax and service
 * dates, credit notes of every reason, voids, invoices declared
 * uncollectible, payments, refunds and failed payments, and month closes.
 * Each topic keeps its own order (by business date, as a partition would);
 * the topics are interleaved at random, so events arrive late into closed
 * periods and before what they refer to. Some events are delivered twice
 * (duplicates), and some are poison: a copy with bytes flipped, cut short
 * or with garbage inserted, decoded through the JSON codec like any input.
 *
 * After every event (an engine fed through rs_codec_json_decode, entries
 * collected by its sink):
 *   S1 every entry balances (debits = credits, none negative), and so do
 *      the running totals per currency;
 *   S2 no entry is posted in a period that was closed before the event;
 *   S3 every line's deferred and unbilled are >= 0;
 *   S4 no line (but usage) has recognized more than its price: while the
 *      history runs, than the highest price it has had (a catch-up
 *      amendment lowers the price from its effective date on; until then
 *      the old terms' revenue stands); at the end, than its price (not
 *      checked on a contract with an amendment or cancellation effective
 *      after the end, SIM_END: see check_state);
 *   S5 the rollforward ties: per currency, opening + billed - recognized -
 *      credits = closing, and each period opens with the last one's closing;
 *   S6 what a closed period shows (its rollforward rows, every line's
 *      balances as of its end) never changes afterwards (compared after
 *      every 16th input and at the end; S2 is what catches it at once);
 *   S7 a rejected, duplicate or undecodable event posts nothing;
 * and at the end of the history:
 *   S8 replay is byte-identical: the same inputs in the same order into a
 *      fresh engine give the same result and the same number of entries
 *      after every input, and the same journal bytes (rs_codec_entry_json)
 *      at the end, so every prefix is identical; and so does a run whose
 *      whole state is exported and imported into a new engine at 1-3
 *      random points.
 *
 * Seeds: RS_SIM_SEED (first, default 1) and RS_SIM_SEEDS (how many, default
 * SIM_DEFAULT_SEEDS: 5000 optimized, 2000 in a Debug build, 300 under
 * ASan). A failure names its seed, the input index and the command that
 * reproduces it; RS_SIM_DUMP=1 also prints the history, one input a line.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_report.h"
#include "rs_test_util.h"

enum { T_CONTRACTS, T_INVOICES, T_PAYMENTS, T_USAGE, T_COUNT };

#define SIM_END (2029 * 12) /* the history ends: recognized through January 2029 */
/* Seeds per run in the suite (each under a minute on 2 cores): 5000
 * optimized (NDEBUG: the default RelWithDebInfo build and Release), 2000 in
 * a Debug build, 300 under ASan (about 10x slower per seed). */
#if defined(__SANITIZE_ADDRESS__)
#define SIM_DEFAULT_SEEDS 300
#elif defined(NDEBUG)
#define SIM_DEFAULT_SEEDS 5000
#else
#define SIM_DEFAULT_SEEDS 2000
#endif
#define SIM_JSON 2048
#define SIM_MAX_LINES 5
#define SIM_MAX_SNAPS 24

/* ---- the generator ---- */

typedef struct sev {
    int topic;
    rs_date_t on;
    int seq;
    char json[SIM_JSON];
} sev_t;

typedef struct sim {
    uint64_t rng, seed;
    sev_t *ev;
    int n, cap, seq;
    rs_policy_t policy;
} sim_t;

static uint64_t rnd(sim_t *s)
{
    return rs_test_rand(&s->rng);
}

static int pick(sim_t *s, int n)
{
    return n > 0 ? (int)(rnd(s) % (uint64_t)n) : 0;
}

static void emit(sim_t *s, int topic, rs_date_t on, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void emit(sim_t *s, int topic, rs_date_t on, const char *fmt, ...)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 128;
        s->ev = realloc(s->ev, (size_t)s->cap * sizeof *s->ev);
        cr_assert_not_null(s->ev);
    }
    sev_t *e = &s->ev[s->n++];
    e->topic = topic;
    e->on = on;
    e->seq = s->seq++;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(e->json, sizeof e->json, fmt, ap);
    va_end(ap);
    cr_assert_lt(len, SIM_JSON, "generated event too long");
}

typedef struct sline {
    char id[16];
    int method; /* rs_method_t */
    rs_date_t start, end;
    int64_t amount;
    int nms; /* milestones: amounts split evenly, remainder on the last */
} sline_t;

static const char *D(rs_date_t d, char *buf)
{
    return rs_date_format(d, buf, 16);
}

static const char *M(int64_t v, int exp, char *buf)
{
    return rs_money_format(v, exp, buf, 40);
}

static void lines_json(char *out, size_t cap, const sline_t *L, int n, int exp)
{
    size_t o = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < n && o < cap; i++) {
        char a[40], s1[16], s2[16], extra[400] = "";
        if (L[i].method == RS_METHOD_USAGE)
            snprintf(extra, sizeof extra, ",\"unit_price\":\"0.%04d\"", 25 + 37 * i);
        if (L[i].method == RS_METHOD_MILESTONE) {
            size_t eo = (size_t)snprintf(extra, sizeof extra, ",\"milestones\":[");
            int64_t part = L[i].amount / L[i].nms;
            for (int m = 0; m < L[i].nms; m++) {
                char ma[40];
                int64_t v = m == L[i].nms - 1 ? L[i].amount - part * (L[i].nms - 1) : part;
                eo += (size_t)snprintf(extra + eo, sizeof extra - eo,
                                       "%s{\"milestone_id\":\"M%d\",\"amount\":\"%s\"}",
                                       m ? "," : "", m, M(v, exp, ma));
            }
            snprintf(extra + eo, sizeof extra - eo, "]");
        }
        o += (size_t)snprintf(
            out + o, cap - o,
            "%s{\"line_id\":\"%s\",\"product\":\"P%d\",\"recognition\":\"%s\",\"start\":"
            "\"%s\",\"end\":\"%s\",\"amount\":\"%s\"%s}",
            i ? "," : "", L[i].id, L[i].method, rs_method_name((rs_method_t)L[i].method),
            D(L[i].start, s1), D(L[i].end, s2),
            M(L[i].method == RS_METHOD_USAGE ? 0 : L[i].amount, exp, a), extra);
    }
    if (o < cap)
        snprintf(out + o, cap - o, "]");
}

static void gen_line(sim_t *s, sline_t *l, const char *id, rs_date_t from)
{
    snprintf(l->id, sizeof l->id, "%s", id);
    l->method = 1 + pick(s, 5);
    l->start = from + pick(s, 25);
    l->end = l->method == RS_METHOD_POINT_IN_TIME ? l->start : l->start + 20 + pick(s, 420);
    l->amount = 100 * (1 + pick(s, 4000));
    l->nms = 1 + pick(s, 3);
}

/* One contract's events (ci: its number). */
static void gen_contract(sim_t *s, int ci)
{
    int jpy = pick(s, 4) == 0, exp = jpy ? 0 : 2;
    char lj[1500], d1[16], d2[16], a[40], t[40];
    sline_t L[SIM_MAX_LINES];
    int nl = 1 + pick(s, 3);
    rs_date_t b = rs_date_from_ymd(2026, 1 + pick(s, 5), 1 + pick(s, 28));
    for (int i = 0; i < nl; i++) {
        char id[16];
        snprintf(id, sizeof id, "L%d", i);
        gen_line(s, &L[i], id, b);
    }
    lines_json(lj, sizeof lj, L, nl, exp);
    emit(s, T_CONTRACTS, b,
         "{\"event_id\":\"c%d-b\",\"type\":\"contract.booked\",\"contract_id\":\"C%d\","
         "\"occurred_at\":\"%sT08:00:00Z\",\"customer_id\":\"K%d\",\"currency\":\"%s\","
         "\"booked_on\":\"%s\",\"lines\":%s}",
         ci, ci, D(b, d1), ci % 3, jpy ? "JPY" : "USD", d1, lj);
    rs_date_t last = b;
    for (int k = pick(s, 3); k > 0; k--) {
        rs_date_t E = last + 5 + pick(s, 120);
        for (int i = 0; i < nl; i++)
            if (L[i].method == RS_METHOD_RATABLE_DAILY ||
                L[i].method == RS_METHOD_RATABLE_MONTHLY) {
                int how = pick(s, 3);
                if (how == 0)
                    L[i].amount += 100 * pick(s, 2000);
                else if (how == 1)
                    L[i].amount /= 2;
                else
                    L[i].end += pick(s, 90);
            }
        if (nl < SIM_MAX_LINES && pick(s, 3) == 0) {
            char id[16];
            snprintf(id, sizeof id, "N%d", k);
            gen_line(s, &L[nl++], id, E - 5);
        }
        int shown = nl > 1 && pick(s, 4) == 0 ? nl - 1 : nl; /* the last line ends */
        lines_json(lj, sizeof lj, L, shown, exp);
        nl = shown;
        emit(s, T_CONTRACTS, E,
             "{\"event_id\":\"c%d-a%d\",\"type\":\"contract.amended\",\"contract_id\":"
             "\"C%d\",\"occurred_at\":\"%sT08:00:00Z\",\"effective_on\":\"%s\","
             "\"treatment\":\"%s\",\"lines\":%s}",
             ci, k, ci, D(E, d1), d1, pick(s, 2) ? "catch_up" : "prospective", lj);
        last = E;
    }
    if (pick(s, 4) == 0) {
        rs_date_t x = last + 10 + pick(s, 150);
        emit(s, T_CONTRACTS, x,
             "{\"event_id\":\"c%d-x\",\"type\":\"contract.cancelled\",\"contract_id\":"
             "\"C%d\",\"occurred_at\":\"%sT08:00:00Z\",\"effective_on\":\"%s\"}",
             ci, ci, D(x, d1), d1);
    }
    for (int i = 0; i < nl; i++) {
        if (L[i].method == RS_METHOD_MILESTONE)
            for (int m = 0; m < L[i].nms; m++)
                if (pick(s, 3) != 0) {
                    rs_date_t on = L[i].start + pick(s, (int)(L[i].end - L[i].start) + 1);
                    emit(s, T_CONTRACTS, on,
                         "{\"event_id\":\"c%d-%s-m%d\",\"type\":\"milestone.completed\","
                         "\"contract_id\":\"C%d\",\"occurred_at\":\"%sT17:00:00Z\","
                         "\"line_id\":\"%s\",\"milestone_id\":\"M%d\",\"completed_on\":\"%s\"}",
                         ci, L[i].id, m, ci, D(on, d1), L[i].id, m, d1);
                }
        if (L[i].method == RS_METHOD_USAGE)
            for (int u = pick(s, 6); u > 0; u--) {
                rs_date_t on = L[i].start + pick(s, (int)(L[i].end - L[i].start) + 1);
                emit(s, T_USAGE, on,
                     "{\"event_id\":\"c%d-%s-u%d\",\"type\":\"usage.recorded\",\"contract_id\":"
                     "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"line_id\":\"%s\","
                     "\"quantity\":\"%d\"}",
                     ci, L[i].id, u, ci, D(on, d1), L[i].id, 1 + pick(s, 40000));
            }
    }
    static const char *const reasons[] = {"discount", "refund", "cancellation", "error"};
    for (int k = 0, ni = 1 + pick(s, 3); k < ni; k++) {
        /* billed within the line's price (a usage line: any amount), so a
         * valid history never bills more than it sells */
        int li = pick(s, nl);
        rs_date_t on = b + pick(s, 300), doc = on;
        int64_t cap = L[li].method == RS_METHOD_USAGE ? 400000 : L[li].amount / ni;
        int64_t amt = 1 + (int64_t)(rnd(s) % (uint64_t)(cap > 1 ? cap : 1));
        int64_t tax = pick(s, 2) ? amt / 10 : 0;
        char svc[80] = "";
        if (pick(s, 3) == 0)
            snprintf(svc, sizeof svc, ",\"service_start\":\"%s\",\"service_end\":\"%s\"",
                     D(on, d1), D(on + 29, d2));
        emit(s, T_INVOICES, on,
             "{\"event_id\":\"c%d-i%d\",\"type\":\"invoice.issued\",\"contract_id\":\"C%d\","
             "\"occurred_at\":\"%sT09:00:00Z\",\"invoice_id\":\"I%d-%d\",\"issued_on\":\"%s\","
             "\"lines\":[{\"line_id\":\"%s\",\"amount\":\"%s\",\"tax\":\"%s\"%s}]}",
             ci, k, ci, D(on, d1), ci, k, d1, L[li].id, M(amt, exp, a), M(tax, exp, t), svc);
        for (int m = 0, ncn = pick(s, 3); m < ncn; m++) {
            int64_t ca = amt / (2 + m), ct = tax / (2 + m);
            doc += pick(s, 80);
            emit(
                s, T_INVOICES, doc,
                "{\"event_id\":\"c%d-i%d-n%d\",\"type\":\"credit_note.issued\",\"contract_id\":"
                "\"C%d\",\"occurred_at\":\"%sT10:00:00Z\",\"credit_note_id\":\"N%d-%d-%d\","
                "\"invoice_id\":\"I%d-%d\",\"issued_on\":\"%s\",\"reason\":\"%s\",\"lines\":"
                "[{\"line_id\":\"%s\",\"amount\":\"%s\",\"tax\":\"%s\"}]}",
                ci, k, m, ci, D(doc, d1), ci, k, m, ci, k, d1, reasons[pick(s, 4)], L[li].id,
                M(ca, exp, a), M(ct, exp, t));
        }
        int fate = pick(s, 6);
        if (fate == 0) {
            doc += 1 + pick(s, 30);
            emit(s, T_INVOICES, doc,
                 "{\"event_id\":\"c%d-i%d-v\",\"type\":\"invoice.voided\",\"contract_id\":"
                 "\"C%d\",\"occurred_at\":\"%sT11:00:00Z\",\"invoice_id\":\"I%d-%d\","
                 "\"voided_on\":\"%s\"}",
                 ci, k, ci, D(doc, d1), ci, k, d1);
        } else if (fate == 1) {
            doc += 30 + pick(s, 60);
            emit(s, T_INVOICES, doc,
                 "{\"event_id\":\"c%d-i%d-w\",\"type\":\"invoice.uncollectible\","
                 "\"contract_id\":\"C%d\",\"occurred_at\":\"%sT11:00:00Z\",\"invoice_id\":"
                 "\"I%d-%d\",\"declared_on\":\"%s\"}",
                 ci, k, ci, D(doc, d1), ci, k, d1);
        }
        if (pick(s, 4) != 0) {
            rs_date_t pon = on + pick(s, 60);
            int64_t pa = 1 + (int64_t)(rnd(s) % (uint64_t)(amt + tax));
            emit(s, T_PAYMENTS, pon,
                 "{\"event_id\":\"c%d-p%d\",\"type\":\"payment.received\",\"contract_id\":"
                 "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"payment_id\":\"P%d-%d\","
                 "\"invoice_id\":\"I%d-%d\",\"amount\":\"%s\",\"received_on\":\"%s\"}",
                 ci, k, ci, D(pon, d1), ci, k, ci, k, M(pa, exp, a), d1);
            int after = pick(s, 4);
            rs_date_t ron = pon + 1 + pick(s, 40);
            if (after == 0)
                emit(s, T_PAYMENTS, ron,
                     "{\"event_id\":\"c%d-r%d\",\"type\":\"payment.refunded\",\"contract_id\":"
                     "\"C%d\",\"occurred_at\":\"%sT12:00:00Z\",\"refund_id\":\"R%d-%d\","
                     "\"payment_id\":\"P%d-%d\",\"invoice_id\":\"I%d-%d\",\"amount\":\"%s\","
                     "\"refunded_on\":\"%s\"}",
                     ci, k, ci, D(ron, d1), ci, k, ci, k, ci, k,
                     M(1 + (int64_t)(rnd(s) % (uint64_t)pa), exp, a), d1);
            else if (after == 1)
                emit(s, T_PAYMENTS, ron,
                     "{\"event_id\":\"c%d-f%d\",\"type\":\"payment.failed\",\"contract_id\":"
                     "\"C%d\",\"occurred_at\":\"%sT03:00:00Z\",\"payment_id\":\"P%d-%d\","
                     "\"invoice_id\":\"I%d-%d\",\"failed_on\":\"%s\",\"reason\":"
                     "\"card_declined\"}",
                     ci, k, ci, D(ron, d1), ci, k, ci, k, d1);
        }
    }
}

static int cmp_sev(const void *a, const void *b)
{
    const sev_t *x = a, *y = b;
    if (x->on != y->on)
        return x->on < y->on ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* A poison copy of json: bytes flipped, cut short, or garbage inserted. */
static void poison(sim_t *s, const char *json, char *out, size_t cap)
{
    size_t n = strlen(json);
    snprintf(out, cap, "%s", json);
    switch (pick(s, 4)) {
    case 0: /* flip 1-3 bytes */
        for (int k = 1 + pick(s, 3); k > 0; k--)
            out[pick(s, (int)n)] ^= (char)(1 << pick(s, 8));
        break;
    case 1: /* cut short */
        out[pick(s, (int)n)] = '\0';
        break;
    case 2: { /* garbage inserted */
        size_t at = (size_t)pick(s, (int)n);
        static const char *const junk[] = {
            "\xff\xfe", "\"", "}", "\\u0000", "{\"a\":", "99999999999999999999", "-", "\xc3"};
        const char *j = junk[pick(s, 8)];
        size_t jl = strlen(j);
        if (n + jl < cap) {
            memmove(out + at + jl, out + at, n - at + 1);
            memcpy(out + at, j, jl);
        }
        break;
    }
    default: /* a digit changed: a well-formed event with other values */
        for (int tries = 0; tries < 64; tries++) {
            size_t at = (size_t)pick(s, (int)n);
            if (out[at] >= '0' && out[at] <= '9') {
                out[at] = (char)('0' + pick(s, 10));
                break;
            }
        }
    }
}

/* The inputs of one seed, in arrival order: topics interleaved at random,
 * some duplicated, some poisoned. Returns a malloc'd array of strings
 * (caller frees each and the array). */
static char **gen_history(sim_t *s, int *count)
{
    int nc = 2 + pick(s, 4);
    for (int c = 0; c < nc; c++)
        gen_contract(s, c);
    for (int m = 1; m <= 14; m++)
        if (pick(s, 3) == 0) {
            char d[16], per[8];
            rs_date_t at = rs_date_from_ymd(2026 + m / 12, m % 12 + 1, 1 + pick(s, 10));
            rs_period_format(2026 * 12 + m - 1, per, sizeof per);
            emit(s, T_CONTRACTS, at,
                 "{\"event_id\":\"close-%s\",\"type\":\"period.closed\",\"occurred_at\":"
                 "\"%sT00:00:00Z\",\"period\":\"%s\"}",
                 per, D(at, d), per);
        }
    sev_t *topic[T_COUNT];
    int nt[T_COUNT] = {0}, pos[T_COUNT] = {0};
    for (int t = 0; t < T_COUNT; t++) {
        topic[t] = malloc(((size_t)s->n + 1) * sizeof *topic[t]);
        cr_assert_not_null(topic[t]);
        for (int i = 0; i < s->n; i++)
            if (s->ev[i].topic == t)
                topic[t][nt[t]++] = s->ev[i];
        qsort(topic[t], (size_t)nt[t], sizeof *topic[t], cmp_sev);
    }
    char **out = malloc(((size_t)s->n * 2 + 1) * sizeof *out);
    cr_assert_not_null(out);
    int k = 0;
    for (int left = s->n; left > 0;) {
        int t = pick(s, T_COUNT);
        if (pos[t] >= nt[t])
            continue;
        const char *json = topic[t][pos[t]++].json;
        left--;
        int r = pick(s, 100);
        if (r < 5) {
            char *bad = malloc(SIM_JSON + 32);
            cr_assert_not_null(bad);
            poison(s, json, bad, SIM_JSON + 32);
            out[k++] = bad;
        }
        out[k++] = strdup(json);
        if (r >= 5 && r < 12) { /* a redelivery of an earlier input */
            char *again = strdup(out[pick(s, k)]);
            out[k++] = again;
        }
    }
    for (int t = 0; t < T_COUNT; t++)
        free(topic[t]);
    *count = k;
    return out;
}

/* ---- the checked engine ---- */

typedef struct snap {
    rs_period_t period;
    rs_rollforward_row_t *rf;
    size_t nrf;
    rs_balance_row_t *bal;
    size_t nbal;
    char (*key)[2][RS_ID_MAX]; /* row strings point into the engine: copies */
} snap_t;

typedef struct run {
    rs_engine_t *e;
    rs_journal_t j;
    rs_report_acc_t *acc;
    size_t checked;              /* entries already checked by S1 */
    int64_t debit[2], credit[2]; /* running totals: USD, JPY */
    snap_t snap[SIM_MAX_SNAPS];
    int nsnap;
    json_t *maxprice; /* "contract/line" -> the highest price the line had */
    json_t *future;   /* contract ids with terms changed after SIM_END (S4 skips them) */
    int *rc;          /* per input: 0 ok, 1 duplicate, 2 pending, 3 rejected, 9 undecodable */
} run_t;

static void run_sink(void *opaque, const rs_entry_t *e)
{
    run_t *r = opaque;
    rs_journal_sink(&r->j, e);
    rs_report_acc_sink(r->acc, e);
}

static void run_init(run_t *r, const rs_policy_t *p, int n)
{
    char err[256];
    memset(r, 0, sizeof *r);
    cr_assert_eq(rs_engine_new(&r->e, p, err, sizeof err), 0, "%s", err);
    rs_journal_init(&r->j);
    cr_assert_eq(rs_report_acc_new(&r->acc), 0);
    rs_engine_set_sink(r->e, run_sink, r);
    r->maxprice = json_object();
    r->future = json_object();
    r->rc = calloc((size_t)n + 1, sizeof *r->rc);
    cr_assert_not_null(r->rc);
}

static void run_free(run_t *r)
{
    for (int i = 0; i < r->nsnap; i++) {
        free(r->snap[i].rf);
        free(r->snap[i].bal);
        free(r->snap[i].key);
    }
    rs_engine_destroy(r->e);
    rs_journal_free(&r->j);
    rs_report_acc_free(r->acc);
    json_decref(r->maxprice);
    json_decref(r->future);
    free(r->rc);
}

/* A failure: the seed, the input and the command that reproduces it.
 * With RS_SIM_SURVEY=1 it is printed and the run goes on with the next
 * seed (to see every failing seed at once; leaks that seed's memory). */
static jmp_buf g_survey;
static int g_surveying, g_failures;
static int g_s4; /* check S4 (its own test: see sim/no_line_recognized_above_its_price) */

static void sim_fail(uint64_t seed, int i, const char *msg)
{
    char m[1400];
    snprintf(
        m, sizeof m,
        "seed %llu, input %d: %s\nreproduce: RS_SIM_SEED=%llu RS_SIM_SEEDS=1 RS_SIM_DUMP=1 "
        "build/test_sim --filter 'sim/*'",
        (unsigned long long)seed, i, msg, (unsigned long long)seed);
    if (g_surveying) {
        fprintf(stderr, "sim: FAIL %s\n", m);
        g_failures++;
        longjmp(g_survey, 1);
    }
    cr_assert_fail("%s", m);
}

#define SIM_FAIL(seed, i, ...)                                                                 \
    do {                                                                                       \
        char m_[1024];                                                                         \
        snprintf(m_, sizeof m_, __VA_ARGS__);                                                  \
        sim_fail((seed), (i), m_);                                                             \
    } while (0)
#define SIM_CHECK(cond, seed, i, ...)                                                          \
    do {                                                                                       \
        if (!(cond))                                                                           \
            SIM_FAIL(seed, i, __VA_ARGS__);                                                    \
    } while (0)

static rs_period_t latest_closed(const rs_engine_t *e)
{
    for (rs_period_t p = 2028 * 12; p >= 2025 * 12; p--)
        if (rs_engine_period_closed(e, p))
            return p;
    return RS_PERIOD_NONE;
}

static void snapshot(run_t *r, rs_period_t p)
{
    if (r->nsnap >= SIM_MAX_SNAPS)
        return;
    snap_t *s = &r->snap[r->nsnap++];
    s->period = p;
    cr_assert_eq(rs_report_acc_rollforward(r->e, r->acc, p, &s->rf, &s->nrf), 0);
    cr_assert_eq(rs_report_acc_balances(r->e, r->acc, p, &s->bal, &s->nbal), 0);
    s->key = calloc(s->nbal + 1, sizeof *s->key);
    cr_assert_not_null(s->key);
    for (size_t i = 0; i < s->nbal; i++) {
        snprintf(s->key[i][0], RS_ID_MAX, "%s", s->bal[i].contract_id);
        snprintf(s->key[i][1], RS_ID_MAX, "%s", s->bal[i].line_id);
    }
}

/* S1-S6 after input i (closed_before: the latest period closed before it). */
static void check_state(run_t *r, uint64_t seed, int i, rs_period_t closed_before, int final)
{
    for (; r->checked < r->j.n; r->checked++) {
        const rs_entry_t *e = &r->j.entries[r->checked];
        int64_t d = 0, c = 0;
        for (int k = 0; k < e->n_postings; k++) {
            SIM_CHECK(e->postings[k].debit >= 0 && e->postings[k].credit >= 0, seed, i,
                      "S1 entry %s has a negative posting", e->entry_id);
            d += e->postings[k].debit;
            c += e->postings[k].credit;
        }
        SIM_CHECK(d == c, seed, i, "S1 entry %s: debits %lld, credits %lld", e->entry_id,
                  (long long)d, (long long)c);
        int cur = strcmp(e->currency, "JPY") == 0;
        r->debit[cur] += d;
        r->credit[cur] += c;
        SIM_CHECK(closed_before == RS_PERIOD_NONE || e->period > closed_before, seed, i,
                  "S2 entry %s posted in period %d, closed before (latest closed %d)",
                  e->entry_id, e->period, closed_before);
    }
    for (int k = 0; k < 2; k++)
        SIM_CHECK(r->debit[k] == r->credit[k], seed, i, "S1 %s: debits %lld, credits %lld",
                  k ? "JPY" : "USD", (long long)r->debit[k], (long long)r->credit[k]);
    size_t nl = rs_engine_line_count(r->e);
    for (size_t k = 0; k < nl; k++) {
        rs_line_view_t v;
        rs_engine_line_get(r->e, k, &v);
        SIM_CHECK(v.deferred >= 0 && v.unbilled >= 0, seed, i,
                  "S3 %s/%s: deferred %lld, unbilled %lld", v.contract_id, v.line_id,
                  (long long)v.deferred, (long long)v.unbilled);
        if (v.method == RS_METHOD_USAGE || !g_s4)
            continue;
        /* Until an amendment's effective date, what the old terms
         * recognized stands (docs/accounting.md: "From effective_on"; a
         * price below what was recognized is reversed on that date), so
         * while the history runs the bound is the highest price the line
         * has had; once every date has passed (final), its current price.
         * The one exception is narrow: a contract with an amendment or
         * cancellation effective after the history's end (SIM_END, through
         * which the final check is recognized; a poison copy whose year was
         * flipped, "4026-07-04", a valid date and so accepted) is not
         * checked from that event on. The view's price is the price after
         * every dated change, that one included, while recognition never
         * reaches its date: the price in force through the horizon, which
         * S4 would need, is not what the view shows (it can be above every
         * price the view showed: an earlier-dated amendment raising it that
         * arrives after the future one). Their reversal is due on that
         * date, not before. */
        if (json_object_get(r->future, v.contract_id) != NULL)
            continue;
        char key[2 * RS_ID_MAX + 2];
        snprintf(key, sizeof key, "%s/%s", v.contract_id, v.line_id);
        json_t *mp = json_object_get(r->maxprice, key);
        rs_money_t bound = v.price > 0 ? v.price : 0;
        if (!final && mp != NULL && json_integer_value(mp) > bound)
            bound = (rs_money_t)json_integer_value(mp);
        json_object_set_new(r->maxprice, key, json_integer(bound));
        SIM_CHECK(v.recognized <= bound, seed, i,
                  "S4 %s/%s (%s): recognized %lld above its price %lld%s (billed %lld, "
                  "ended %s, policy cancellation=%s)",
                  v.contract_id, v.line_id, rs_method_name(v.method), (long long)v.recognized,
                  (long long)bound, final ? "" : " (the highest it had)", (long long)v.billed,
                  v.ended_on == RS_DATE_NONE ? "no" : "yes",
                  rs_engine_policy(r->e)->cancellation == RS_CANCEL_FORFEIT ? "forfeit"
                                                                            : "keep_deferred");
    }
    rs_rollforward_row_t *rf = NULL;
    size_t nrf = 0;
    cr_assert_eq(rs_report_acc_rollforward(r->e, r->acc, 2030 * 12, &rf, &nrf), 0);
    for (size_t k = 0; k < nrf; k++) {
        const rs_rollforward_row_t *x = &rf[k];
        SIM_CHECK(x->opening + x->billed - x->recognized - x->credits == x->closing, seed, i,
                  "S5 rollforward %d %s: %lld + %lld - %lld - %lld != %lld", x->period,
                  x->currency, (long long)x->opening, (long long)x->billed,
                  (long long)x->recognized, (long long)x->credits, (long long)x->closing);
        if (k > 0 && strcmp(rf[k - 1].currency, x->currency) == 0 &&
            rf[k - 1].period + 1 == x->period)
            SIM_CHECK(rf[k - 1].closing == x->opening, seed, i,
                      "S5 rollforward %s: %d closes at %lld, %d opens at %lld", x->currency,
                      rf[k - 1].period, (long long)rf[k - 1].closing, x->period,
                      (long long)x->opening);
    }
    free(rf);
    for (int k = 0; k < r->nsnap && (final || i % 16 == 0); k++) {
        snap_t *s = &r->snap[k];
        rs_balance_row_t *bal = NULL;
        size_t nbal = 0;
        cr_assert_eq(rs_report_acc_rollforward(r->e, r->acc, s->period, &rf, &nrf), 0);
        SIM_CHECK(nrf == s->nrf, seed, i, "S6 closed %d: %zu rollforward rows, were %zu",
                  s->period, nrf, s->nrf);
        for (size_t q = 0; q < nrf; q++)
            SIM_CHECK(rf[q].period == s->rf[q].period && rf[q].closing == s->rf[q].closing &&
                          rf[q].billed == s->rf[q].billed &&
                          rf[q].recognized == s->rf[q].recognized &&
                          rf[q].credits == s->rf[q].credits,
                      seed, i, "S6 closed %d: rollforward row %d %s changed", s->period,
                      rf[q].period, rf[q].currency);
        free(rf);
        cr_assert_eq(rs_report_acc_balances(r->e, r->acc, s->period, &bal, &nbal), 0);
        for (size_t a = 0; a < s->nbal; a++)
            for (size_t b = 0; b < nbal; b++)
                if (strcmp(s->key[a][0], bal[b].contract_id) == 0 &&
                    strcmp(s->key[a][1], bal[b].line_id) == 0)
                    SIM_CHECK(s->bal[a].billed == bal[b].billed &&
                                  s->bal[a].recognized == bal[b].recognized &&
                                  s->bal[a].deferred == bal[b].deferred &&
                                  s->bal[a].unbilled == bal[b].unbilled &&
                                  s->bal[a].received == bal[b].received,
                              seed, i, "S6 closed %d: balances of %s/%s changed", s->period,
                              bal[b].contract_id, bal[b].line_id);
        free(bal);
    }
}

/* Feed input i; returns its result code (see run_t.rc). */
static int run_feed(run_t *r, const char *json, uint64_t seed, int i, int check)
{
    rs_event_t ev;
    char err[512];
    int rc;
    size_t before = r->j.n;
    rs_period_t closed = check ? latest_closed(r->e) : RS_PERIOD_NONE;

    rs_event_init(&ev);
    if (rs_codec_json_decode(json, strlen(json), &ev, err, sizeof err) != 0) {
        rc = 9;
    } else {
        rc = (int)rs_engine_apply(r->e, &ev, err, sizeof err);
        cr_assert_neq(rc, RS_APPLY_NOMEM);
        rs_rejection_t *late = NULL;
        rs_engine_take_late_rejections(r->e, &late);
        free(late);
    }
    int is_close = rc == RS_APPLY_OK && ev.type == RS_EV_PERIOD_CLOSED;
    /* an amendment or cancellation taking effect after the end of the
     * history (a poison copy with a year flipped: "2526-04-15") */
    if ((rc == RS_APPLY_OK || rc == RS_APPLY_PENDING) &&
        (ev.type == RS_EV_CONTRACT_AMENDED || ev.type == RS_EV_CONTRACT_CANCELLED) &&
        ev.effective_on != RS_DATE_NONE && ev.effective_on > rs_period_last_day(SIM_END))
        json_object_set_new(r->future, ev.contract_id, json_true());
    rs_period_t period = ev.period;
    rs_event_clear(&ev);
    r->rc[i] = rc;
    if (!check)
        return rc;
    if (rc == RS_APPLY_DUPLICATE || rc == 9)
        SIM_CHECK(r->j.n == before, seed, i, "S7 input %s (result %d) posted %zu entries", json,
                  rc, r->j.n - before);
    /* A rejected event may have moved its contract's recognition horizon
     * before it was refused (rs_engine.h: "before an event dated d is
     * applied, its horizon moves"): that recognition is due anyway and
     * replays identically (S8). Anything else is a change. */
    for (size_t k = before; rc == RS_APPLY_REJECTED && k < r->j.n; k++)
        SIM_CHECK(r->j.entries[k].kind == RS_ENTRY_RECOGNITION ||
                      r->j.entries[k].kind == RS_ENTRY_FORFEIT,
                  seed, i, "S7 rejected input %s posted entry %s (%s)", json,
                  r->j.entries[k].entry_id, rs_entry_kind_name(r->j.entries[k].kind));
    check_state(r, seed, i, closed, 0);
    if (is_close)
        snapshot(r, period);
    return rc;
}

/* Export every contract named in the inputs and the meta state of `from`
 * into a fresh engine that continues into the same journal. */
static void move_state(run_t *r, char **in, int n)
{
    char err[256];
    rs_engine_t *to = NULL;
    cr_assert_eq(rs_engine_new(&to, rs_engine_policy(r->e), err, sizeof err), 0);
    rs_engine_set_sink(to, run_sink, r);
    json_t *done = json_object();
    for (int i = 0; i < n; i++) {
        const char *p = strstr(in[i], "\"contract_id\":\"");
        if (p == NULL)
            continue;
        char id[RS_ID_MAX];
        p += 15;
        size_t len = strcspn(p, "\"");
        if (len == 0 || len >= sizeof id)
            continue;
        memcpy(id, p, len);
        id[len] = '\0';
        if (json_object_get(done, id) != NULL)
            continue;
        json_object_set_new(done, id, json_true());
        void *buf = NULL;
        size_t blen = 0;
        int rc = rs_engine_export_contract(r->e, id, &buf, &blen, err, sizeof err);
        cr_assert_neq(rc, -1, "export %s: %s", id, err);
        if (rc == 0)
            cr_assert_eq(rs_engine_import_contract(to, buf, blen, err, sizeof err), 0,
                         "import %s: %s", id, err);
        free(buf);
    }
    json_decref(done);
    void *buf = NULL;
    size_t blen = 0;
    cr_assert_eq(rs_engine_export_meta(r->e, &buf, &blen, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_engine_import_meta(to, buf, blen, err, sizeof err), 0, "%s", err);
    free(buf);
    rs_engine_destroy(r->e);
    r->e = to;
}

/* S8: the journals of a and b are the same bytes. */
static void same_journal(const run_t *a, const run_t *b, uint64_t seed, const char *what)
{
    SIM_CHECK(a->j.n == b->j.n, seed, -1, "S8 %s: %zu entries, the first run %zu", what, b->j.n,
              a->j.n);
    for (size_t k = 0; k < a->j.n; k++) {
        char *x = rs_codec_entry_json(&a->j.entries[k]);
        char *y = rs_codec_entry_json(&b->j.entries[k]);
        cr_assert(x != NULL && y != NULL);
        SIM_CHECK(strcmp(x, y) == 0, seed, -1, "S8 %s: entry %zu differs:\n%s\n%s", what, k, x,
                  y);
        free(x);
        free(y);
    }
}

static void sim_one(uint64_t seed, long *inputs, long *entries, long *poisoned)
{
    sim_t s;
    memset(&s, 0, sizeof s);
    s.seed = seed;
    s.rng = seed * 0x9E3779B97F4A7C15ULL + 0x5EED;
    rs_policy_defaults(&s.policy);
    s.policy.cancellation = pick(&s, 2) ? RS_CANCEL_FORFEIT : RS_CANCEL_KEEP_DEFERRED;
    s.policy.bad_debt = pick(&s, 2) ? RS_BAD_DEBT_REVERSE_REVENUE : RS_BAD_DEBT_ALLOWANCE;
    s.policy.proration = pick(&s, 2) ? RS_PRORATE_30_360 : RS_PRORATE_DAYS_IN_MONTH;
    int n = 0;
    char **in = gen_history(&s, &n);
    if (getenv("RS_SIM_DUMP") != NULL) {
        fprintf(stderr, "# seed %llu policy cancellation=%d bad_debt=%d proration=%d\n",
                (unsigned long long)seed, s.policy.cancellation, s.policy.bad_debt,
                s.policy.proration);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "%d: %s\n", i, in[i]);
    }
    run_t a, b, c;
    run_init(&a, &s.policy, n);
    run_init(&b, &s.policy, n);
    run_init(&c, &s.policy, n);
    int cuts[3] = {pick(&s, n), pick(&s, n), pick(&s, n)}, ncuts = 1 + pick(&s, 3);
    for (int i = 0; i < n; i++) {
        run_feed(&a, in[i], seed, i, 1);
        run_feed(&b, in[i], seed, i, 0);
        for (int k = 0; k < ncuts; k++)
            if (cuts[k] == i)
                move_state(&c, in, n);
        run_feed(&c, in[i], seed, i, 0);
        SIM_CHECK(a.rc[i] == b.rc[i] && a.rc[i] == c.rc[i], seed, i,
                  "S8 input %s: result %d, replay %d, after export/import %d", in[i], a.rc[i],
                  b.rc[i], c.rc[i]);
        /* the same number of entries after every input: with the bytes
         * compared at the end, every prefix of the journal is identical */
        SIM_CHECK(a.j.n == b.j.n && a.j.n == c.j.n, seed, i,
                  "S8 after input %s: %zu entries, replay %zu, after export/import %zu", in[i],
                  a.j.n, b.j.n, c.j.n);
        *poisoned += a.rc[i] == 9;
    }
    /* the end: everything recognized through 2029 */
    rs_period_t closed = latest_closed(a.e);
    cr_assert_eq(rs_engine_advance(a.e, SIM_END), 0);
    check_state(&a, seed, n, closed, 1);
    cr_assert_eq(rs_engine_advance(b.e, SIM_END), 0);
    cr_assert_eq(rs_engine_advance(c.e, SIM_END), 0);
    same_journal(&a, &b, seed, "replay into a fresh engine");
    same_journal(&a, &c, seed, "export/import mid-history");
    *inputs += n;
    *entries += (long)a.j.n;
    run_free(&a);
    run_free(&b);
    run_free(&c);
    for (int i = 0; i < n; i++)
        free(in[i]);
    free(in);
    free(s.ev);
}

static void sim_seeds(const char *what)
{
    const char *v = getenv("RS_SIM_SEED");
    uint64_t first = v != NULL ? strtoull(v, NULL, 10) : 1;
    v = getenv("RS_SIM_SEEDS");
    uint64_t count = v != NULL ? strtoull(v, NULL, 10) : SIM_DEFAULT_SEEDS;
    static long inputs, entries, poisoned;
    g_surveying = getenv("RS_SIM_SURVEY") != NULL;
    g_failures = 0;
    inputs = entries = poisoned = 0;
    for (volatile uint64_t seed = first; seed < first + count; seed++) {
        if (g_surveying && setjmp(g_survey) != 0)
            continue;
        sim_one(seed, &inputs, &entries, &poisoned);
    }
    cr_assert_eq(g_failures, 0, "%d seeds failed (RS_SIM_SURVEY)", g_failures);
    fprintf(stderr,
            "sim: %s: seeds %llu..%llu: %ld inputs (%ld undecodable poison), %ld entries, "
            "every input checked\n",
            what, (unsigned long long)first, (unsigned long long)(first + count - 1), inputs,
            poisoned, entries);
}

/* S1-S3 and S5-S8. */
Test(sim, random_histories_keep_the_invariants, .timeout = 1200)
{
    g_s4 = 0;
    sim_seeds("S1-S3, S5-S8");
}

/* S4 on its own (ctest test_sim_s4): it failed on engine behaviour outside
 * issue 17's listed defects (a credit note after a forfeit, or before an
 * amendment, that reversed nothing: docs/reliability.md "Findings"), now
 * fixed; it stays a test of its own and is not weakened. */
Test(sim, no_line_recognized_above_its_price, .timeout = 1200)
{
    g_s4 = 1;
    sim_seeds("S4");
}
