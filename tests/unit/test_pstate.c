/*
 * test_pstate.c — a partition's engine survives the state store: what is
 * staged and committed loads back record for record, and the batch plan
 * protocol (save, find at load, clear with the commit) holds.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_pstate.h"
#include "rs_test_util.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/rs_pstate_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(pstate, .init = setup, .fini = teardown);

static rs_state_t *open_store(void)
{
    rs_state_opts_t o = {0};
    char err[256];
    rs_state_t *st;
    o.path = dir;
    o.create_if_missing = 1;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof(err)), 0, "%s", err);
    return st;
}

static void apply(rs_engine_t *e, const char *json)
{
    rs_event_t ev;
    char err[512];
    rs_event_init(&ev);
    cr_assert_eq(rs_codec_json_decode(json, strlen(json), &ev, err, sizeof(err)), 0, "%s", err);
    int rc = rs_engine_apply(e, &ev, err, sizeof(err));
    cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_PENDING, "%s", err);
    rs_event_clear(&ev);
}

static const char *events[] = {
    "{\"event_id\":\"b\",\"type\":\"contract.booked\",\"contract_id\":\"C1\",\"occurred_at\":"
    "\"2026-01-01T00:00:00Z\",\"customer_id\":\"K\",\"currency\":\"USD\",\"booked_on\":"
    "\"2026-01-01\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\",\"recognition\":"
    "\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":"
    "\"1200.00\"}]}",
    "{\"event_id\":\"i\",\"type\":\"invoice.issued\",\"contract_id\":\"C1\",\"occurred_at\":"
    "\"2026-03-01T00:00:00Z\",\"invoice_id\":\"I\",\"issued_on\":\"2026-03-01\",\"lines\":[{"
    "\"line_id\":\"L\",\"amount\":\"1200.00\"}]}",
    "{\"event_id\":\"p\",\"type\":\"payment.received\",\"contract_id\":\"C2\",\"occurred_at\":"
    "\"2026-03-02T00:00:00Z\",\"payment_id\":\"P\",\"invoice_id\":\"I9\",\"amount\":\"5.00\","
    "\"received_on\":\"2026-03-02\"}",
    "{\"event_id\":\"close\",\"type\":\"period.closed\",\"occurred_at\":\"2026-04-01T00:00:"
    "00Z\","
    "\"period\":\"2026-03\"}",
};

Test(pstate, commit_and_reload)
{
    char err[256];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 3, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_pstate_loaded_contracts(ps), 0);
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        apply(rs_pstate_engine(ps), events[i]);
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof(err)), 0, "%s", err);
    /* nothing changed since: staging again writes only the meta record */
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof(err)), 0);
    cr_assert_eq(rs_state_batch_count(b), 1);
    rs_state_batch_clear(b);

    rs_pstate_t *again;
    cr_assert_eq(rs_pstate_load(&again, st, 3, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rs_pstate_loaded_contracts(again), 2); /* C1, and C2 waiting */
    const char *ids[] = {"C1", "C2"};
    for (int i = 0; i < 2; i++) {
        void *x, *y;
        size_t nx, ny;
        cr_assert_eq(
            rs_engine_export_contract(rs_pstate_engine(ps), ids[i], &x, &nx, err, sizeof(err)),
            0);
        cr_assert_eq(rs_engine_export_contract(rs_pstate_engine(again), ids[i], &y, &ny, err,
                                               sizeof(err)),
                     0);
        cr_assert_eq(nx, ny);
        cr_assert_eq(memcmp(x, y, nx), 0, "%s differs after reload", ids[i]);
        free(x);
        free(y);
    }
    cr_assert(rs_engine_period_closed(rs_pstate_engine(again), 2026 * 12 + 2));
    cr_assert_eq(rs_engine_pending_count(rs_pstate_engine(again)), 1);
    /* another partition is empty */
    rs_pstate_t *other;
    cr_assert_eq(rs_pstate_load(&other, st, 4, NULL, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_loaded_contracts(other), 0);
    rs_pstate_destroy(other);
    rs_pstate_destroy(again);
    rs_pstate_destroy(ps);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

Test(pstate, batch_plan)
{
    char err[256];
    rs_state_t *st = open_store();
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof(err)), 0);
    size_t n;
    cr_assert_null(rs_pstate_pending_plan(ps, &n));
    rs_plan_item_t plan[3] = {{0, 10}, {3, 7}, {1, (int64_t)1 << 40}};
    cr_assert_eq(rs_pstate_save_plan(ps, plan, 3, err, sizeof(err)), 0, "%s", err);
    rs_pstate_destroy(ps);
    /* a crash now: the plan is found at load */
    cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof(err)), 0, "%s", err);
    const rs_plan_item_t *got = rs_pstate_pending_plan(ps, &n);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(got[i].topic, plan[i].topic);
        cr_assert_eq(got[i].offset, plan[i].offset);
    }
    /* committed with the batch: gone */
    rs_state_batch_t *b;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof(err)), 0);
    cr_assert_eq(rs_pstate_stage_plan_done(ps, b), 0);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof(err)), 0, "%s", err);
    cr_assert_null(rs_pstate_pending_plan(ps, &n));
    rs_pstate_destroy(ps);
    cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof(err)), 0);
    cr_assert_null(rs_pstate_pending_plan(ps, &n));
    cr_assert_eq(n, 0);
    rs_pstate_destroy(ps);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* ---- the bounded cache and the streaming close (rs_pstate.h C1-C3) ---- */

/* A small book in event-time order: contracts booked over 2026, invoiced
 * when booked, some paid before their invoice (they wait), and two
 * period.closed. Each entry of `out` is one JSON event (malloc'd). */
static size_t book(char ***out)
{
    size_t n = 0, cap = 1024;
    char **v = malloc(cap * sizeof *v);
    cr_assert_not_null(v);
    for (int m = 1; m <= 12; m++) {
        for (int day = 1; day <= 28; day += 3) {
            for (int i = 0; i < 60; i++) {
                char buf[768];
                int bm = 1 + i % 12, bd = 1 + (i * 7) % 27;
                if (m == bm + 2 && i % 3 == 1 && day <= bd && bd < day + 3) {
                    /* a later payment: the contract comes back from the store */
                    snprintf(buf, sizeof buf,
                             "{\"event_id\":\"q%d\",\"type\":\"payment.received\","
                             "\"contract_id\":\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT01:"
                             "00:00Z\",\"payment_id\":\"Q%d\",\"invoice_id\":\"I%d\","
                             "\"amount\":\"50.00\",\"received_on\":\"2026-%02d-%02d\"}",
                             i, i, m, bd, i, i, m, bd);
                    v[n++] = strdup(buf);
                }
                if (m == bm && day <= bd && bd < day + 3) {
                    snprintf(
                        buf, sizeof buf,
                        "{\"event_id\":\"b%d\",\"type\":\"contract.booked\",\"contract_id\":"
                        "\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT00:00:00Z\","
                        "\"customer_id\":\"K%d\",\"currency\":\"USD\",\"booked_on\":\"2026-"
                        "%02d-%02d\",\"lines\":[{\"line_id\":\"L\",\"product\":\"P\","
                        "\"recognition\":\"ratable_monthly\",\"start\":\"2026-%02d-01\","
                        "\"end\":\"2027-%02d-%02d\",\"amount\":\"%d.%02d\"}]}",
                        i, i, m, bd, i % 7, m, bd, m, m, 28 - i % 5, 1000 + 37 * i, i % 100);
                    v[n++] = strdup(buf);
                    if (i % 4 == 0) /* paid before its invoice: waits */
                        snprintf(
                            buf, sizeof buf,
                            "{\"event_id\":\"p%d\",\"type\":\"payment.received\","
                            "\"contract_id\":\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT01:"
                            "00:00Z\",\"payment_id\":\"P%d\",\"invoice_id\":\"I%d\","
                            "\"amount\":\"100.00\",\"received_on\":\"2026-%02d-%02d\"}",
                            i, i, m, bd, i, i, m, bd);
                    else
                        snprintf(buf, sizeof buf, "%s", "");
                    if (buf[0] != '\0')
                        v[n++] = strdup(buf);
                    snprintf(
                        buf, sizeof buf,
                        "{\"event_id\":\"i%d\",\"type\":\"invoice.issued\",\"contract_id\":"
                        "\"C%03d\",\"occurred_at\":\"2026-%02d-%02dT02:00:00Z\","
                        "\"invoice_id\":\"I%d\",\"issued_on\":\"2026-%02d-%02d\",\"lines\":"
                        "[{\"line_id\":\"L\",\"amount\":\"%d.%02d\"}]}",
                        i, i, m, bd, i, m, bd, 1000 + 37 * i, i % 100);
                    v[n++] = strdup(buf);
                }
            }
        }
        if (m == 5 || m == 9) {
            char buf[256];
            snprintf(buf, sizeof buf,
                     "{\"event_id\":\"close%d\",\"type\":\"period.closed\",\"occurred_at\":"
                     "\"2026-%02d-02T00:00:00Z\",\"period\":\"2026-%02d\"}",
                     m, m, m - 1);
            v[n++] = strdup(buf);
        }
    }
    *out = v;
    return n;
}

typedef struct journal {
    char *text;
    size_t len, cap;
} journal_t;

static void on_entry(void *opaque, const rs_entry_t *en)
{
    journal_t *j = opaque;
    char line[1024];
    int k = snprintf(line, sizeof line, "%s %d %d %d %d %s %s %lld %lld %lld", en->entry_id,
                     (int)en->period, (int)en->service_period, (int)en->posted_on,
                     (int)en->kind, en->rule, en->document_id, (long long)en->billed,
                     (long long)en->recognized, (long long)en->received);
    for (int p = 0; p < en->n_postings; p++)
        k += snprintf(line + k, sizeof line - (size_t)k, " %d:%lld:%lld",
                      (int)en->postings[p].account, (long long)en->postings[p].debit,
                      (long long)en->postings[p].credit);
    if (j->len + (size_t)k + 2 > j->cap) {
        j->cap = (j->cap + (size_t)k + 2) * 2;
        j->text = realloc(j->text, j->cap);
        cr_assert_not_null(j->text);
    }
    memcpy(j->text + j->len, line, (size_t)k);
    j->len += (size_t)k;
    j->text[j->len++] = '\n';
    j->text[j->len] = '\0';
}

static int count_chunk(void *opaque, const char *const *ids, void *const *blobs,
                       const size_t *lens, size_t n)
{
    (void)ids;
    (void)blobs;
    (void)lens;
    *(size_t *)opaque += n;
    return 0;
}

/* Sum the load, eviction, walk and chunk counts of ps into *cs. */
static void add_stats(rs_pstate_cache_stats_t *cs, const rs_pstate_t *ps)
{
    rs_pstate_cache_stats_t x;
    if (cs == NULL || ps == NULL)
        return;
    rs_pstate_cache_stats(ps, &x);
    cs->loads += x.loads;
    cs->evicted += x.evicted;
    cs->walked += x.walked;
    cs->chunks += x.chunks;
}

/* Run the book through partition 0 in batches of `batch` events as the
 * worker does (fetch, apply, event-time advance; stage and commit; evict).
 * lazy: rs_pstate_open with cache_bytes and chunks of `chunk` contracts;
 * else rs_pstate_load (the whole partition in memory). */
static void run_book(const char *path, int lazy, size_t cache_bytes, size_t chunk, journal_t *j,
                     size_t *chunked, rs_pstate_cache_stats_t *cs)
{
    char err[512], **ev;
    size_t n = book(&ev);
    rs_state_opts_t o = {0};
    rs_state_t *st;
    rs_pstate_t *ps = NULL;
    rs_pstate_cache_stats_t last;
    o.path = path;
    o.create_if_missing = 1;
    o.sync = RS_STATE_SYNC_OFF;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), 0, "%s", err);
    if (cs != NULL)
        memset(cs, 0, sizeof *cs);
    for (size_t at = 0; at < n;) {
        /* a fresh load every few batches: a restart between batches */
        if (ps == NULL || (at / 40) % 5 == 0) {
            add_stats(cs, ps);
            rs_pstate_destroy(ps);
            if (lazy)
                cr_assert_eq(rs_pstate_open(&ps, st, 0, NULL, cache_bytes, err, sizeof err), 0);
            else
                cr_assert_eq(rs_pstate_load(&ps, st, 0, NULL, err, sizeof err), 0);
            rs_engine_set_sink(rs_pstate_engine(ps), on_entry, j);
            rs_pstate_close_hooks_t h = {count_chunk, chunked, chunk};
            if (lazy)
                rs_pstate_set_close_hooks(ps, &h);
        }
        rs_engine_t *e = rs_pstate_engine(ps);
        for (size_t k = 0; k < 40 && at < n; k++, at++) {
            rs_event_t x;
            rs_event_init(&x);
            cr_assert_eq(rs_codec_json_decode(ev[at], strlen(ev[at]), &x, err, sizeof err), 0,
                         "%s", err);
            if (lazy && x.contract_id[0] != '\0')
                cr_assert_eq(rs_pstate_fetch(ps, x.contract_id, err, sizeof err), 0, "%s", err);
            int rc = rs_engine_apply(e, &x, err, sizeof err);
            cr_assert(rc == RS_APPLY_OK || rc == RS_APPLY_PENDING, "%s: %s", ev[at], err);
            rs_period_t through = rs_period_of(x.occurred_on) - 1;
            rs_period_t hz = rs_engine_horizon(e);
            if (hz == RS_PERIOD_NONE || through > hz)
                cr_assert_eq(rs_engine_advance(e, through), 0, "%s", rs_pstate_close_error(ps));
            rs_event_clear(&x);
        }
        rs_state_batch_t *b;
        cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
        cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
        rs_state_batch_destroy(b);
        if (lazy)
            rs_pstate_evict(ps);
    }
    add_stats(cs, ps);
    if (cs != NULL)
        rs_pstate_cache_stats(ps, &last), cs->contracts = last.contracts;
    rs_pstate_destroy(ps);
    rs_state_destroy(st);
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

/* A tiny cache (nothing kept between batches, closes in chunks of 7) and a
 * large one give the journal of the whole book in memory, entry for entry
 * and byte for byte, in the same order. */
Test(pstate, cache_gives_the_same_journal)
{
    char a[96], b[96], c[96];
    journal_t ja = {0}, jb = {0}, jc = {0};
    size_t chb = 0, chc = 0, chx = 0;
    rs_pstate_cache_stats_t sb, sc;
    snprintf(a, sizeof a, "%s/eager", dir);
    snprintf(b, sizeof b, "%s/tiny", dir);
    snprintf(c, sizeof c, "%s/large", dir);
    run_book(a, 0, 0, 0, &ja, &chx, NULL);
    cr_assert_eq(chx, 0);
    run_book(b, 1, 0, 7, &jb, &chb, &sb);
    run_book(c, 1, 64u << 20, 7, &jc, &chc, &sc);
    cr_assert_gt(ja.len, 10000, "the book posts entries");
    cr_assert_str_eq(jb.text, ja.text, "tiny cache: journal differs");
    cr_assert_str_eq(jc.text, ja.text, "large cache: journal differs");
    /* the tiny cache kept nothing, loaded contracts back and closed from
     * the store in chunks; the large one evicted nothing */
    cr_assert_eq(sb.contracts, 0);
    cr_assert_gt(sb.loads, 5, "loads %llu evicted %llu walked %llu chunks %llu",
                 (unsigned long long)sb.loads, (unsigned long long)sb.evicted,
                 (unsigned long long)sb.walked, (unsigned long long)sb.chunks);
    cr_assert_gt(sb.evicted, 50);
    cr_assert_gt(sb.walked, 100);
    cr_assert_gt(chb, 100);
    cr_assert_eq(sc.evicted, 0);
    free(ja.text);
    free(jb.text);
    free(jc.text);
}

/* A close over a store none of whose contracts is in memory: every one is
 * recognized; full chunks are committed and forgotten at once, the rest
 * with the batch; the store then holds what an engine holding them all
 * would hold. */
Test(pstate, close_with_nothing_cached)
{
    char err[512], **ev;
    size_t n = book(&ev), chunked = 0;
    rs_state_t *st = open_store();
    rs_engine_t *all;
    cr_assert_eq(rs_engine_new(&all, NULL, err, sizeof err), 0);
    /* the book up to June into the store, nothing recognized past May */
    rs_pstate_t *ps;
    cr_assert_eq(rs_pstate_load(&ps, st, 1, NULL, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        rs_event_t x;
        rs_event_init(&x);
        cr_assert_eq(rs_codec_json_decode(ev[i], strlen(ev[i]), &x, err, sizeof err), 0);
        if (x.occurred_on < rs_period_first_day(2026 * 12 + 5)) {
            rs_engine_apply(rs_pstate_engine(ps), &x, err, sizeof err);
            rs_engine_apply(all, &x, err, sizeof err);
        }
        rs_event_clear(&x);
    }
    rs_state_batch_t *b, *b2;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    cr_assert_eq(rs_pstate_stage(ps, b, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    rs_pstate_destroy(ps);
    /* the close, from the store */
    cr_assert_eq(rs_pstate_open(&ps, st, 1, NULL, 0, err, sizeof err), 0);
    rs_pstate_close_hooks_t h = {count_chunk, &chunked, 16};
    rs_pstate_set_close_hooks(ps, &h);
    journal_t jl = {0}, je = {0};
    rs_engine_set_sink(rs_pstate_engine(ps), on_entry, &jl);
    rs_engine_set_sink(all, on_entry, &je);
    cr_assert_eq(rs_engine_advance(rs_pstate_engine(ps), 2026 * 12 + 10), 0, "%s",
                 rs_pstate_close_error(ps));
    cr_assert_eq(rs_engine_advance(all, 2026 * 12 + 10), 0);
    rs_engine_stats_t s;
    rs_engine_get_stats(rs_pstate_engine(ps), &s);
    /* booked before June: i % 12 < 5, 25 of the 60; one chunk of 16 was
     * committed, the last 9 wait in memory for the batch's commit */
    cr_assert_eq(s.contracts, 9, "%llu contracts in memory", (unsigned long long)s.contracts);
    cr_assert_gt(je.len, 1000);
    cr_assert_str_eq(jl.text, je.text);
    rs_pstate_cache_stats_t cs;
    rs_pstate_cache_stats(ps, &cs);
    cr_assert_eq(cs.walked, 25);
    cr_assert_eq(chunked, 16, "a full chunk was committed on its own");
    cr_assert_eq(cs.chunks, 1);
    cr_assert_eq(rs_state_batch_new(&b2, err, sizeof err), 0);
    cr_assert_eq(rs_pstate_stage(ps, b2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_batch_commit(st, b2, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(b2);
    cr_assert_eq(rs_pstate_evict(ps), 9, "after the commit the cache lets them go");
    rs_engine_get_stats(rs_pstate_engine(ps), &s);
    cr_assert_eq(s.contracts, 0);
    rs_pstate_destroy(ps);
    /* the store now equals the engine that held everything */
    cr_assert_eq(rs_pstate_load(&ps, st, 1, NULL, err, sizeof err), 0);
    for (int i = 0; i < 60; i++) {
        char id[16];
        if (i % 12 >= 5)
            continue;
        void *x, *y;
        size_t nx, ny;
        snprintf(id, sizeof id, "C%03d", i);
        cr_assert_eq(
            rs_engine_export_contract(rs_pstate_engine(ps), id, &x, &nx, err, sizeof err), 0,
            "%s", id);
        cr_assert_eq(rs_engine_export_contract(all, id, &y, &ny, err, sizeof err), 0);
        cr_assert(nx == ny && memcmp(x, y, nx) == 0, "%s differs", id);
        free(x);
        free(y);
    }
    rs_pstate_destroy(ps);
    rs_engine_destroy(all);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
    free(jl.text);
    free(je.text);
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}
