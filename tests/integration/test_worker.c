/*
 * test_worker — `revstream worker` as a child process against the embedded
 * Kafka broker (rs_mockbroker, in this process).
 *
 * What is checked:
 *   - End to end (Avro in and out, all four topics produced at once, so the
 *     topics interleave however the fetches fall): the per-line balances
 *     computed from the journal topic equal `revstream replay`'s balances
 *     for the same events, and so does the latest snapshot per line on the
 *     balances topic. Entries may differ with the interleaving; balances
 *     may not.
 *   - Duplicates and cross-topic reordering (JSON in and out): the same,
 *     with events produced twice and the topics produced in another order.
 *   - Poison messages on every input topic (garbage bytes, an unknown schema
 *     id, a contract violation), and an event on the wrong topic, land on
 *     the DLQ with the source headers and the original bytes, and the rest
 *     is processed.
 *   - Crash recovery: the events are produced in phases, one topic at a
 *     time, each phase consumed before the next is produced, so every
 *     partition sees the same order in every run and the journal of a clean
 *     run is fully determined. A run killed by fault injection right after
 *     a batch's outputs were acknowledged and before its state commit, and
 *     a run SIGKILLed from outside mid-stream, are restarted on the same
 *     state dir; their journals, deduplicated by entry_id, equal the clean
 *     run's byte for byte, and the duplicates are at most one batch's worth
 *     (exactly the crashed batch's journal records for the injected fault).
 *     The clean run also checks SIGTERM (exit 0 after committing) and the
 *     /metrics and /readyz endpoints.
 *   - A record that cannot be delivered stops the worker with exit status 2
 *     and nothing committed; the restart replays the plan and the journal,
 *     deduplicated by entry_id, gives replay's balances.
 *   - A pending plan (seeded in the store as a crash would leave it) is
 *     replayed in the plan's order, not in arrival order: for two plans
 *     whose orders give different journals, the worker's journal is exactly
 *     the engine's for that order.
 *   - Start-up errors: topics that are not co-partitioned (each count
 *     named), a missing topic, a bad config key; --check masks secrets.
 *
 * No timing is asserted. Every wait has a deadline so a broken build fails
 * instead of hanging; children get PR_SET_PDEATHSIG. Each test has its own
 * broker, temp dir and consumer group.
 *
 * Ownership: each test frees what it creates; temp dirs are removed at the
 * end of a passing test (kept on failure for the logs).
 */
#define _POSIX_C_SOURCE 200809L

#include <avro.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_pstate.h"
#include "rs_test_util.h"

/* ------------------------------------------------------------------------ */
/* reading topics                                                           */
/* ------------------------------------------------------------------------ */

static const char *const out_topics[3] = {"revenue.journal", "revenue.deferred-balances",
                                          "revenue.dlq"};

/* ------------------------------------------------------------------------ */
/* end to end                                                               */
/* ------------------------------------------------------------------------ */

static void run_sample(int avro, int reorder)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[256];
    kh_events_t events = {0};
    kh_worker_t w;
    kh_recs_t journal, bal, dlq;
    rs_journal_t j;
    rs_avro_cache_t *cache = avro ? kh_input_cache() : NULL;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    snprintf(extra, sizeof extra, "exit.when.idle=true\ninput.format=%s\noutput.format=%s\n",
             avro ? "avro" : "json", avro ? "avro" : "json");
    kh_worker_init(&w, bs, avro ? "g-e2e-avro" : "g-e2e-json", extra);

    rd_kafka_t *p = kh_new_producer(bs);
    if (!reorder) {
        kh_produce_events(p, &events, -1, -1, cache);
    } else {
        /* usage first, contracts last; every payment and usage event twice */
        static const int order[4] = {3, 2, 1, 0};
        for (int k = 0; k < 4; k++) {
            kh_produce_events(p, &events, order[k], -1, cache);
            if (order[k] == 2 || order[k] == 3)
                kh_produce_events(p, &events, order[k], -1, cache);
        }
    }
    rd_kafka_destroy(p);

    kh_worker_run_idle(&w, NULL);
    kh_recs_t outs[3];
    kh_read_topics(bs, out_topics, 3, outs);
    journal = outs[0];
    bal = outs[1];
    dlq = outs[2];
    cr_assert(journal.n > 50, "only %zu journal records", journal.n);
    kh_journal_of(&journal, avro, &j);

    /* Each entry once: ids are unique and per contract 1..n without gaps. */
    json_t *seen = json_object();
    for (size_t i = 0; i < j.n; i++) {
        cr_assert_null(json_object_get(seen, j.entries[i].entry_id), "entry %s twice",
                       j.entries[i].entry_id);
        json_object_set_new(seen, j.entries[i].entry_id, json_true());
    }
    for (size_t i = 0; i < j.n; i++) {
        const char *hash = strrchr(j.entries[i].entry_id, '#');
        cr_assert_not_null(hash);
        long seq = strtol(hash + 1, NULL, 10);
        if (seq > 1) {
            char prev[RS_ID_MAX + 24];
            snprintf(prev, sizeof prev, "%s#%ld", j.entries[i].contract_id, seq - 1);
            cr_assert_not_null(json_object_get(seen, prev), "%s has no predecessor",
                               j.entries[i].entry_id);
        }
    }
    json_decref(seen);

    json_t *rows = kh_replay_balances(&events, w.dir, "2026-06");
    kh_check_journal_balances(&events, &j, rows);
    kh_check_snapshots(&bal, avro, rows);

    /* The sample's one bad event is dead-lettered, nothing else. Sent twice
     * (reorder), it is refused twice if its invoice came first; if it came
     * first, it waits, its copy is a duplicate of a waiting event, and it is
     * refused once when the invoice arrives. */
    if (dlq.n < 1 || dlq.n > (reorder ? 2u : 1u))
        for (size_t k = 0; k < dlq.n; k++)
            fprintf(stderr, "dead letter %zu: %s: %s\n", k, kh_hdr(&dlq.v[k], "source.topic"),
                    kh_hdr(&dlq.v[k], "error"));
    cr_assert(dlq.n >= 1 && dlq.n <= (reorder ? 2u : 1u), "%zu dead letters", dlq.n);
    for (size_t k = 0; k < dlq.n; k++) {
        cr_assert_str_eq(kh_hdr(&dlq.v[k], "source.topic"), "payments");
        cr_assert_not_null(strstr(kh_hdr(&dlq.v[k], "error"), "pay-1005-04-raw"));
    }

    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "worker: stopping reason=idle"), "%s", log);
    long dups = kh_log_number(log, "worker: stopped ", "duplicates", 0);
    cr_log_info("duplicates=%ld", dups);
    /* the book's own duplicate; with reordering also every second copy of
     * the 20 payments and 11 usage events but the rejected one, unless it
     * waited for its invoice (one dead letter): then its copy is one too */
    cr_assert_eq(dups, reorder ? (dlq.n == 1 ? 32 : 31) : 1, "%s", log);
    free(log);

    json_decref(rows);
    rs_journal_free(&j);
    kh_recs_free(&journal);
    kh_recs_free(&bal);
    kh_recs_free(&dlq);
    kh_ev_free(&events);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

Test(worker, end_to_end_avro_balances_equal_replay, .timeout = 120)
{
    run_sample(1, 0);
}

Test(worker, duplicates_and_reordered_topics_json, .timeout = 120)
{
    run_sample(0, 1);
}

/* ------------------------------------------------------------------------ */
/* poison messages                                                          */
/* ------------------------------------------------------------------------ */

typedef struct poison {
    int topic;
    const char *key;
    unsigned char value[512];
    size_t len;
    int null_value; /* produced with no value at all (a tombstone) */
    const char *want_error;
    kh_dr_t dr;
} poison_t;

Test(worker, poison_messages_go_to_the_dlq, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t events = {0}, later = {0};
    kh_worker_t w;
    kh_recs_t dlq, journal;
    rs_avro_cache_t *cache = kh_input_cache();
    poison_t ps[14];
    int np = 0;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    kh_worker_init(&w, bs, "g-poison", "exit.when.idle=true\n");

    /* Run 1: the sample book, so every contract below is known. */
    rd_kafka_t *p = kh_new_producer(bs);
    kh_produce_events(p, &events, -1, -1, cache);
    kh_worker_run_idle(&w, NULL);

    /* The violations: well-formed events the engine refuses. */
    kh_ev_add(&later,
              "{\"event_id\":\"bad-bk\",\"type\":\"contract.booked\",\"contract_id\":"
              "\"C-3001\",\"occurred_at\":\"2026-06-01T09:00:00Z\",\"customer_id\":\"X\","
              "\"currency\":\"USD\",\"booked_on\":\"2026-06-01\",\"lines\":[{\"line_id\":"
              "\"L1\",\"product\":\"P\",\"recognition\":\"ratable_daily\",\"start\":"
              "\"2026-06-01\",\"end\":\"2026-06-30\",\"amount\":\"10.001\"}]}");
    kh_ev_add(&later,
              "{\"event_id\":\"bad-inv\",\"type\":\"invoice.issued\",\"contract_id\":"
              "\"C-1001\",\"occurred_at\":\"2026-06-02T09:00:00Z\",\"invoice_id\":\"BAD-1\","
              "\"issued_on\":\"2026-06-02\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
              "\"1.005\"}]}");
    kh_ev_add(&later,
              "{\"event_id\":\"bad-pay\",\"type\":\"payment.received\",\"contract_id\":"
              "\"C-1001\",\"occurred_at\":\"2026-06-03T09:00:00Z\",\"payment_id\":\"BP-1\","
              "\"invoice_id\":\"INV-1001\",\"amount\":\"0.001\",\"received_on\":"
              "\"2026-06-03\"}");
    kh_ev_add(&later, "{\"event_id\":\"bad-use\",\"type\":\"usage.recorded\",\"contract_id\":"
                      "\"C-1003\",\"occurred_at\":\"2027-03-01T00:00:00Z\",\"line_id\":\"L1\","
                      "\"quantity\":\"5\"}");
    /* And good events after them on every topic: a new contract. */
    kh_events_t good = {0};
    kh_ev_add(&good,
              "{\"event_id\":\"ok-bk\",\"type\":\"contract.booked\",\"contract_id\":"
              "\"C-2001\",\"occurred_at\":\"2026-06-01T09:00:00Z\",\"customer_id\":\"CUS-NEW\","
              "\"currency\":\"USD\",\"booked_on\":\"2026-06-01\",\"lines\":[{\"line_id\":"
              "\"L1\",\"product\":\"P\",\"recognition\":\"ratable_daily\",\"start\":"
              "\"2026-06-01\",\"end\":\"2026-06-30\",\"amount\":\"300.00\"},{\"line_id\":"
              "\"L2\",\"product\":\"U\",\"recognition\":\"usage\",\"start\":\"2026-06-01\","
              "\"end\":\"2026-06-30\",\"amount\":\"0\",\"unit_price\":\"0.50\"}]}");
    kh_ev_add(&good,
              "{\"event_id\":\"ok-inv\",\"type\":\"invoice.issued\",\"contract_id\":"
              "\"C-2001\",\"occurred_at\":\"2026-06-01T10:00:00Z\",\"invoice_id\":\"NEW-1\","
              "\"issued_on\":\"2026-06-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
              "\"300.00\"}]}");
    kh_ev_add(&good,
              "{\"event_id\":\"ok-pay\",\"type\":\"payment.received\",\"contract_id\":"
              "\"C-2001\",\"occurred_at\":\"2026-06-05T10:00:00Z\",\"payment_id\":\"NP-1\","
              "\"invoice_id\":\"NEW-1\",\"amount\":\"300.00\",\"received_on\":\"2026-06-05\"}");
    kh_ev_add(&good, "{\"event_id\":\"ok-use\",\"type\":\"usage.recorded\",\"contract_id\":"
                     "\"C-2001\",\"occurred_at\":\"2026-06-10T10:00:00Z\",\"line_id\":\"L2\","
                     "\"quantity\":\"40\"}");

    for (int t = 0; t < 4; t++) {
        const char *key = t == 0 ? "C-3001" : "C-1001";
        /* garbage bytes */
        poison_t *x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = t;
        x->key = key;
        memcpy(x->value, "\x07garbage\xff\xfe", 10);
        x->len = 10;
        x->want_error = "magic byte";
        /* an unknown schema id (999) */
        x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = t;
        x->key = key;
        memcpy(x->value, "\x00\x00\x00\x03\xe7\x02\x04\x06", 8);
        x->len = 8;
        x->want_error = "unknown schema id 999";
        /* the contract violation, properly encoded */
        x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = t;
        x->key = key;
        size_t len = 0;
        void *v = kh_event_value(&later.v[t], cache, &len);
        cr_assert(len <= sizeof x->value);
        memcpy(x->value, v, len);
        x->len = len;
        free(v);
        x->want_error = t == 0   ? "event bad-bk: "
                        : t == 1 ? "event bad-inv: "
                        : t == 2 ? "event bad-pay: "
                                 : "event bad-use: ";
    }
    {
        /* a valid invoice on the payments topic */
        poison_t *x = &ps[np++];
        size_t len = 0;
        memset(x, 0, sizeof *x);
        x->topic = 2;
        x->key = "C-2001";
        void *v = kh_event_value(&good.v[1], cache, &len);
        cr_assert(len <= sizeof x->value);
        memcpy(x->value, v, len);
        x->len = len;
        free(v);
        x->want_error = "event ok-inv: type: invoice.issued belongs on the invoices topic, not "
                        "payments";
    }
    {
        /* a tombstone: a key and no value (as a compacted topic may hold) */
        poison_t *x = &ps[np++];
        memset(x, 0, sizeof *x);
        x->topic = 3;
        x->key = "C-1003";
        x->null_value = 1;
        x->want_error = "record has no value";
    }
    for (int i = 0; i < np; i++)
        kh_produce_one(p, kh_in_topics[ps[i].topic], RD_KAFKA_PARTITION_UA, ps[i].key,
                       ps[i].null_value ? NULL : ps[i].value, ps[i].len, &ps[i].dr);
    kh_flush_ok(p);
    kh_produce_events(p, &good, -1, -1, cache);
    rd_kafka_destroy(p);

    /* Run 2: restarts from the store, meets the poison, goes on. */
    kh_worker_run_idle(&w, NULL);

    kh_recs_t outs[3];
    kh_read_topics(bs, out_topics, 3, outs);
    journal = outs[0];
    kh_recs_free(&outs[1]);
    dlq = outs[2];
    cr_assert_eq(dlq.n, 1 + (size_t)np, "%zu dead letters, want %d", dlq.n, 1 + np);
    kh_avdec_t d;
    kh_avdec_init(&d, RS_AVRO_SCHEMA_DEAD_LETTER);
    for (int i = 0; i < np; i++) {
        const kh_rec_t *r = NULL;
        char part[16], off[32];
        cr_assert(ps[i].dr.done && ps[i].dr.err == 0);
        snprintf(part, sizeof part, "%d", (int)ps[i].dr.partition);
        snprintf(off, sizeof off, "%lld", (long long)ps[i].dr.offset);
        for (size_t k = 0; k < dlq.n; k++)
            if (strcmp(kh_hdr(&dlq.v[k], "source.topic"), kh_in_topics[ps[i].topic]) == 0 &&
                strcmp(kh_hdr(&dlq.v[k], "source.partition"), part) == 0 &&
                strcmp(kh_hdr(&dlq.v[k], "source.offset"), off) == 0)
                r = &dlq.v[k];
        cr_assert_not_null(r, "no dead letter for %s[%s]@%s", kh_in_topics[ps[i].topic], part,
                           off);
        cr_assert_not_null(strstr(kh_hdr(r, "error"), ps[i].want_error), "error header: %s",
                           kh_hdr(r, "error"));
        cr_assert_str_eq(r->key, ps[i].key, "a dead letter keeps the source key");
        /* The value is a DeadLetter record with the original bytes. */
        avro_value_t *v = kh_avdec_read(&d, r, 7);
        size_t blen = 0;
        const void *orig = kh_av_bytes(v, "value", &blen);
        cr_assert_str_eq(kh_av_str(v, "topic"), kh_in_topics[ps[i].topic]);
        cr_assert_eq(kh_av_long(v, "partition"), ps[i].dr.partition);
        cr_assert_eq(kh_av_long(v, "offset"), ps[i].dr.offset);
        cr_assert_not_null(strstr(kh_av_str(v, "error"), ps[i].want_error));
        cr_assert_eq(blen, ps[i].len);
        cr_assert(blen == 0 || memcmp(orig, ps[i].value, blen) == 0,
                  "dead letter value differs");
        const void *okey = kh_av_bytes(v, "key", &blen);
        cr_assert_eq(blen, strlen(ps[i].key));
        cr_assert_eq(memcmp(okey, ps[i].key, blen), 0);
        cr_assert(kh_av_long(v, "timestamp") > 0);
    }
    kh_avdec_free(&d);

    /* The rest went through: balances with the good events equal replay's
     * (for replay, before the final close, so it recognizes them in June). */
    kh_events_t all = {0};
    kh_load_sample(&all, 0);
    for (size_t i = 0; i < good.n; i++)
        kh_ev_add(&all, good.v[i].json);
    kh_ev_add(&all, events.v[events.n - 1].json);
    kh_ev_free(&events);
    events = all;
    rs_journal_t j;
    kh_journal_of(&journal, 1, &j);
    json_t *rows = kh_replay_balances(&events, w.dir, "2026-06");
    kh_check_journal_balances(&events, &j, rows);
    int found = 0;
    for (size_t i = 0; i < j.n; i++)
        found |= strcmp(j.entries[i].contract_id, "C-2001") == 0;
    cr_assert(found, "no entry for the contract booked after the poison");

    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "dead_letter topic=usage"), "%s", log);
    free(log);

    json_decref(rows);
    rs_journal_free(&j);
    kh_recs_free(&journal);
    kh_recs_free(&dlq);
    kh_ev_free(&events);
    kh_ev_free(&later);
    kh_ev_free(&good);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

/* Defect 3: a bad record just under the 1 MB message limit was a poison
 * pill: its dead letter (payload + envelope + headers) was over the limit,
 * the DLQ produce failed, the worker exited 2, and every restart did the
 * same. Now the dead letter is cut to fit, says so, and the worker goes on;
 * in Avro and in JSON output (whose escapes expand the bytes). */
static void dlq_limit_run(int json)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t good = {0};
    kh_worker_t w;
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_worker_init(&w, bs, "g-dlq-limit",
                   json ? "exit.when.idle=true\ninput.format=json\noutput.format=json\n"
                        : "exit.when.idle=true\n");

    /* 999,800 bytes that are no event (control bytes: JSON escapes each one
     * as 6), then a good contract on the same partition */
    size_t vlen = 999800;
    unsigned char *bad = malloc(vlen);
    cr_assert_not_null(bad);
    for (size_t i = 0; i < vlen; i++)
        bad[i] = (unsigned char)(i % 7 == 0 ? 0x01 : 'x');
    bad[0] = 0x07;
    kh_ev_add(&good,
              "{\"event_id\":\"ok-bk\",\"type\":\"contract.booked\",\"contract_id\":"
              "\"C-1\",\"occurred_at\":\"2026-06-01T09:00:00Z\",\"customer_id\":\"K\","
              "\"currency\":\"USD\",\"booked_on\":\"2026-06-01\",\"lines\":[{\"line_id\":"
              "\"L1\",\"product\":\"P\",\"recognition\":\"ratable_daily\",\"start\":"
              "\"2026-06-01\",\"end\":\"2026-06-30\",\"amount\":\"300.00\"}]}");
    kh_ev_add(&good, "{\"event_id\":\"ok-inv\",\"type\":\"invoice.issued\",\"contract_id\":"
                     "\"C-1\",\"occurred_at\":\"2026-06-01T10:00:00Z\",\"invoice_id\":\"I-1\","
                     "\"issued_on\":\"2026-06-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":"
                     "\"300.00\"}]}");
    rs_avro_cache_t *cache = json ? NULL : kh_input_cache();
    rd_kafka_t *p = kh_new_producer(bs);
    kh_dr_t dr = {0};
    kh_produce_one(p, "contracts", 0, "C-1", bad, vlen, &dr);
    kh_flush_ok(p);
    kh_produce_events(p, &good, -1, -1, cache);
    rd_kafka_destroy(p);

    kh_worker_run_idle(&w, NULL); /* exit 0: before the fix, exit 2 */

    kh_recs_t outs[3];
    kh_read_topics(bs, out_topics, 3, outs);
    cr_assert_eq(outs[2].n, 1, "%zu dead letters", outs[2].n);
    const kh_rec_t *r = &outs[2].v[0];
    size_t hdrs = 0;
    for (int i = 0; i < r->nh; i++)
        hdrs += strlen(r->hname[i]) + strlen(r->hval[i]);
    cr_assert_leq(r->vlen + r->klen + hdrs, 1000000u, "dead letter of %zu bytes",
                  r->vlen + r->klen + hdrs);
    char off[32];
    snprintf(off, sizeof off, "%lld", (long long)dr.offset);
    cr_assert_str_eq(kh_hdr(r, "source.topic"), "contracts");
    cr_assert_str_eq(kh_hdr(r, "source.offset"), off);
    const char *t = kh_hdr(r, "truncated");
    cr_assert_not_null(t, "no truncated header");
    char want[128];
    snprintf(want, sizeof want, "of %zu bytes", vlen);
    cr_assert_not_null(strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "original contracts[0]@%s", off);
    cr_assert_not_null(strstr(t, want), "%s", t);
    cr_assert_not_null(strstr(kh_hdr(r, "error"), "dead letter truncated"), "%s",
                       kh_hdr(r, "error"));
    /* what is kept is the start of the original */
    size_t blen = 0;
    const unsigned char *kept = NULL;
    kh_avdec_t d;
    json_t *o = NULL;
    if (json) {
        o = json_loadb((const char *)r->val, r->vlen, 0, NULL);
        cr_assert_not_null(o, "a JSON dead letter");
        json_t *b64 = json_object_get(o, "value_base64");
        cr_assert(json_is_string(b64) || json_is_string(json_object_get(o, "value")));
        kept = (const unsigned char *)json_string_value(json_object_get(o, "value"));
        if (kept != NULL) {
            blen = json_string_length(json_object_get(o, "value"));
            cr_assert_gt(blen, 100000u);
            cr_assert_eq(memcmp(kept, bad, blen), 0);
        }
    } else {
        kh_avdec_init(&d, RS_AVRO_SCHEMA_DEAD_LETTER);
        avro_value_t *v = kh_avdec_read(&d, r, 7);
        kept = kh_av_bytes(v, "value", &blen);
        cr_assert_gt(blen, 900000u);
        cr_assert_lt(blen, vlen);
        cr_assert_eq(memcmp(kept, bad, blen), 0);
        kh_avdec_free(&d);
    }
    json_decref(o);
    /* the good contract after it was applied */
    cr_assert_gt(outs[0].n, 0u, "no journal after the poison pill");
    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "dead_letter_truncated topic=contracts"), "%s", log);
    free(log);
    for (int i = 0; i < 3; i++)
        kh_recs_free(&outs[i]);
    free(bad);
    kh_ev_free(&good);
    if (cache)
        rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

/* Defect 7 for `revstream produce`: a byte-order mark at the start of the
 * file made its first event skipped (exit 2). */
Test(defects, jsonl_bom_produce, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], dir[64], path[128], out[128], log[128];
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bom.jsonl", dir);
    snprintf(out, sizeof out, "%s/produce.out", dir);
    snprintf(log, sizeof log, "%s/produce.log", dir);
    kh_events_t ev = {0};
    kh_load_sample(&ev, 1);
    kh_ev_write(&ev, path);
    char *text = kh_slurp(path);
    size_t n = strlen(text) + 4;
    char *bom = malloc(n);
    cr_assert_not_null(bom);
    snprintf(bom, n, "\xEF\xBB\xBF%s", text);
    kh_write_file(path, bom);
    char *argv[] = {"revstream", "produce", "--bootstrap", (char *)bs,
                    "--format",  "json",    path,          NULL};
    kh_assert_exit0(kh_wait_exit(kh_spawn(argv, out, log, NULL), KH_DEADLINE_S, log), log);
    char *l = kh_slurp(log);
    char want[96];
    snprintf(want, sizeof want, "events=%zu", ev.n);
    cr_assert_not_null(strstr(l, want), "%s", l);
    cr_assert_not_null(strstr(l, "skipped=0"), "%s", l);
    free(l);
    free(bom);
    free(text);
    kh_ev_free(&ev);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(dir);
}

Test(defects, dlq_record_over_limit, .timeout = 120)
{
    dlq_limit_run(0);
    dlq_limit_run(1);
}

/* ------------------------------------------------------------------------ */
/* crash recovery                                                           */
/* ------------------------------------------------------------------------ */

typedef struct run_result {
    kh_recs_t journal, bal, dlq;
    /* the crash run */
    size_t kill_dups;          /* duplicates in the journal after the SIGKILL's recovery */
    long kill_replay_records;  /* records its plan replays took */
    long kill_replay_entries;  /* journal entries of the batches that replayed them */
    long kill_restart_records; /* records that restart took through the killed phase */
    long fault_journal;        /* journal records of the batch the fault killed */
    int fault_replayed;        /* the restart after the fault replayed a plan */
    /* the clean run: /metrics and /readyz before SIGTERM */
    char metrics[KH_HTTP_BUF];
    char readyz[256];
} run_result_t;

static void consume_phase(rd_kafka_t *watch, int topic, pid_t pid, const kh_worker_t *w)
{
    int status = 0;
    if (!kh_wait_consumed(watch, kh_in_topics[topic], pid, &status, w->log)) {
        char *l = kh_slurp(w->log);
        cr_assert_fail("worker exited (status %d) while consuming %s; log:\n%s", status,
                       kh_in_topics[topic], l);
    }
}

static size_t log_size(const kh_worker_t *w)
{
    char *l = kh_slurp(w->log);
    size_t n = strlen(l);
    free(l);
    return n;
}

static size_t journal_dups(const char *bs)
{
    kh_recs_t j;
    kh_read_topics(bs, out_topics, 1, &j);
    json_t *m = kh_by_entry_id(&j);
    size_t dups = j.n - json_object_size(m);
    json_decref(m);
    kh_recs_free(&j);
    return dups;
}

/* The end of a run: the outputs read into res, everything released. */
static void finish_run(rd_kafka_t *watch, rd_kafka_t *p, const char *bs, run_result_t *res,
                       rs_avro_cache_t *cache, rs_mockbroker_t *mb, const kh_worker_t *w)
{
    rd_kafka_destroy(watch);
    rd_kafka_destroy(p);
    kh_recs_t outs[3];
    kh_read_topics(bs, out_topics, 3, outs);
    res->journal = outs[0];
    res->bal = outs[1];
    res->dlq = outs[2];
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w->dir);
}

/* Produce the book phase by phase — contracts, invoices, payments, usage,
 * closes — each consumed before the next. With `crash`: SIGKILL the worker
 * while it streams the invoices (once the journal grew), restart it; stop
 * it before the usage phase and restart it with a fault that kills it after
 * its 3rd batch's outputs are acknowledged, before the commit; restart. */
static void phased_run(const kh_events_t *events, int crash, run_result_t *res)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[256];
    const char *group = crash ? "g-crash" : "g-clean";
    int port = kh_free_port(), status = 0;
    kh_worker_t w;
    rs_avro_cache_t *cache = kh_input_cache();

    memset(res, 0, sizeof *res);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    snprintf(extra, sizeof extra, "batch.max.records=50\nmetrics.port=%d\n", port);
    kh_worker_init(&w, bs, group, extra);
    rd_kafka_t *p = kh_new_producer(bs);
    rd_kafka_t *watch = kh_new_consumer(bs, group); /* reads the group's committed offsets */

    pid_t pid = kh_worker_start(&w, NULL);
    kh_produce_events(p, events, 0, 0, cache);
    consume_phase(watch, 0, pid, &w);

    if (crash) {
        int64_t before = kh_topic_size(watch, "revenue.journal");
        double deadline = kh_now_s() + KH_DEADLINE_S;
        kh_produce_events(p, events, 1, 0, cache);
        while (kh_topic_size(watch, "revenue.journal") < before + 60) {
            cr_assert(kh_now_s() < deadline, "the journal did not grow");
            usleep(1000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        size_t mark = log_size(&w);
        pid = kh_worker_start(&w, NULL);
        consume_phase(watch, 1, pid, &w);
        char *l = kh_slurp(w.log);
        kh_replay_totals(l + mark, &res->kill_replay_records, &res->kill_replay_entries);
        res->kill_restart_records = kh_log_sum(l + mark, "worker: batch ", "records");
        free(l);
        res->kill_dups = journal_dups(bs);
    } else {
        kh_produce_events(p, events, 1, 0, cache);
        consume_phase(watch, 1, pid, &w);
    }
    kh_produce_events(p, events, 2, 0, cache);
    consume_phase(watch, 2, pid, &w);

    if (crash) {
        kh_assert_exit0(kh_worker_stop(pid, w.log), w.log);
        kh_produce_events(p, events, 3, 0, cache);
        size_t mark = log_size(&w);
        pid = kh_worker_start(&w, "RS_WORKER_CRASH_AFTER_BATCHES=3");
        status = kh_wait_exit(pid, KH_DEADLINE_S, w.log);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the faulty worker should have killed itself (status %d)", status);
        char *l = kh_slurp(w.log);
        res->fault_journal = kh_log_number(l + mark, "worker: fault ", "journal", 1);
        cr_assert(res->fault_journal >= 0, "no fault line in the log:\n%s", l + mark);
        mark = strlen(l);
        free(l);
        pid = kh_worker_start(&w, NULL);
        consume_phase(watch, 3, pid, &w);
        l = kh_slurp(w.log);
        res->fault_replayed = strstr(l + mark, "worker: plan_replay ") != NULL;
        free(l);
    } else {
        kh_produce_events(p, events, 3, 0, cache);
        consume_phase(watch, 3, pid, &w);
    }
    kh_produce_events(p, events, 0, 1, cache); /* the closes */
    consume_phase(watch, 0, pid, &w);

    if (!crash) {
        cr_assert_eq(kh_http_get(port, "/readyz", res->readyz), 200, "%s", res->readyz);
        cr_assert_eq(kh_http_get(port, "/metrics", res->metrics), 200);
    }
    size_t mark = log_size(&w);
    kh_assert_exit0(kh_worker_stop(pid, w.log), w.log);
    char *l = kh_slurp(w.log);
    cr_assert_not_null(strstr(l + mark, "worker: stopping reason=signal"), "%s", l + mark);
    free(l);

    finish_run(watch, p, bs, res, cache, mb, &w);
}

static void run_result_free(run_result_t *r)
{
    kh_recs_free(&r->journal);
    kh_recs_free(&r->bal);
    kh_recs_free(&r->dlq);
}

/* The crashed run's journal, deduplicated by entry_id, is the clean run's:
 * same ids, same key, same partition, same bytes; every duplicate is
 * byte-identical to the clean run's record. Returns the duplicates. */
static size_t compare_journals(const kh_recs_t *clean, const kh_recs_t *crashed)
{
    json_t *cm = kh_by_entry_id(clean), *xm = kh_by_entry_id(crashed);
    size_t dups = 0;

    cr_assert_eq(json_object_size(cm), clean->n, "the clean run has duplicates");
    for (size_t i = 0; i < crashed->n; i++) {
        const kh_rec_t *r = &crashed->v[i];
        const char *id = kh_hdr(r, "entry_id");
        size_t first = (size_t)json_integer_value(json_object_get(xm, id));
        json_t *ci = json_object_get(cm, id);
        cr_assert_not_null(ci, "entry %s is not in the clean run's journal", id);
        const kh_rec_t *c = &clean->v[json_integer_value(ci)];
        cr_assert_str_eq(r->key, c->key);
        cr_assert(r->vlen == c->vlen && memcmp(r->val, c->val, r->vlen) == 0,
                  "entry %s differs from the clean run's", id);
        cr_assert_eq(r->partition, c->partition);
        if (first != i)
            dups++;
    }
    cr_assert_eq(json_object_size(xm), json_object_size(cm),
                 "%zu distinct entries after the crash, %zu in the clean run",
                 json_object_size(xm), json_object_size(cm));
    json_decref(cm);
    json_decref(xm);
    return dups;
}

/* The latest snapshot per key is the same in both runs. */
static void compare_snapshots(const kh_recs_t *a, const kh_recs_t *b)
{
    json_t *ma = json_object(), *mb = json_object();
    for (size_t i = 0; i < a->n; i++)
        json_object_set_new(ma, a->v[i].key, json_integer((json_int_t)i));
    for (size_t i = 0; i < b->n; i++)
        json_object_set_new(mb, b->v[i].key, json_integer((json_int_t)i));
    cr_assert_eq(json_object_size(ma), json_object_size(mb));
    const char *k;
    json_t *v;
    json_object_foreach(ma, k, v)
    {
        json_t *o = json_object_get(mb, k);
        cr_assert_not_null(o, "no snapshot for %s", k);
        const kh_rec_t *x = &a->v[json_integer_value(v)], *y = &b->v[json_integer_value(o)];
        cr_assert(x->vlen == y->vlen && memcmp(x->val, y->val, x->vlen) == 0,
                  "latest snapshot of %s differs", k);
    }
    json_decref(ma);
    json_decref(mb);
}

/* The dead letters, deduplicated by source and error, are the same. */
static void compare_dlq(const kh_recs_t *a, const kh_recs_t *b)
{
    json_t *ma = json_object(), *mb = json_object();
    char k[512];
    for (size_t i = 0; i < a->n; i++) {
        snprintf(k, sizeof k, "%s|%s|%s|%s", kh_hdr(&a->v[i], "source.topic"),
                 kh_hdr(&a->v[i], "source.partition"), kh_hdr(&a->v[i], "source.offset"),
                 kh_hdr(&a->v[i], "error"));
        json_object_set_new(ma, k, json_true());
    }
    for (size_t i = 0; i < b->n; i++) {
        snprintf(k, sizeof k, "%s|%s|%s|%s", kh_hdr(&b->v[i], "source.topic"),
                 kh_hdr(&b->v[i], "source.partition"), kh_hdr(&b->v[i], "source.offset"),
                 kh_hdr(&b->v[i], "error"));
        cr_assert_not_null(json_object_get(ma, k), "dead letter %s not in the clean run", k);
        json_object_set_new(mb, k, json_true());
    }
    cr_assert_eq(json_object_size(ma), json_object_size(mb));
    json_decref(ma);
    json_decref(mb);
}

Test(worker, crash_recovery_matches_a_clean_run, .timeout = 300)
{
    kh_events_t events = {0};
    run_result_t clean, crashed;
    char dir[64];

    kh_gen_book(&events, 300);

    phased_run(&events, 0, &clean);
    cr_assert(clean.journal.n > 3000, "clean run: %zu journal records", clean.journal.n);
    /* the cancelled contracts' June usage is refused */
    cr_assert_eq(clean.dlq.n, 27, "clean run: %zu dead letters", clean.dlq.n);
    /* metrics of the clean run, scraped before SIGTERM */
    cr_assert_str_eq(clean.readyz, "ready\n");
    char want[128];
    size_t nevents = 0, ncloses = 0;
    for (size_t i = 0; i < events.n; i++)
        events.v[i].is_close ? ncloses++ : nevents++;
    snprintf(want, sizeof want, "\nrevstream_events_applied_total %zu\n",
             nevents - 27 + ncloses * KH_NPARTS);
    cr_assert_not_null(strstr(clean.metrics, want), "want %s in:\n%s", want + 1, clean.metrics);
    snprintf(want, sizeof want, "\nrevstream_entries_produced_total %zu\n", clean.journal.n);
    cr_assert_not_null(strstr(clean.metrics, want), "want %s in:\n%s", want + 1, clean.metrics);
    snprintf(want, sizeof want, "\nrevstream_input_records_total %zu\n",
             nevents + ncloses * KH_NPARTS);
    cr_assert_not_null(strstr(clean.metrics, want), "want %s in:\n%s", want + 1, clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "\nrevstream_dlq_total 27\n"), "%s",
                       clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "\nrevstream_rejected_total 27\n"), "%s",
                       clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "\nrevstream_pending_events 0\n"), "%s",
                       clean.metrics);
    cr_assert_not_null(strstr(clean.metrics, "revstream_batch_seconds_count"), "%s",
                       clean.metrics);

    /* Balances from the clean journal equal replay's. */
    rs_journal_t j;
    kh_journal_of(&clean.journal, 1, &j);
    kh_make_dir(dir, sizeof dir);
    json_t *rows = kh_replay_balances(&events, dir, "2026-06");
    kh_check_journal_balances(&events, &j, rows);
    kh_check_snapshots(&clean.bal, 1, rows);
    json_decref(rows);
    rs_journal_free(&j);
    kh_rm_rf(dir);

    phased_run(&events, 1, &crashed);
    size_t dups = compare_journals(&clean.journal, &crashed.journal);
    /* SIGKILL from outside while the invoices streamed: the restart had work
     * left; what came twice is at most what the replayed plans produced, and
     * the plans hold at most one batch (50 records). */
    cr_assert(crashed.kill_restart_records > 0, "the kill came after the phase was done");
    cr_assert(crashed.kill_replay_records <= 50, "plans of %ld records replayed",
              crashed.kill_replay_records);
    cr_assert((long)crashed.kill_dups <= crashed.kill_replay_entries,
              "%zu duplicates after the kill, the replaying batches made %ld entries",
              crashed.kill_dups, crashed.kill_replay_entries);
    cr_assert(crashed.kill_dups == 0 || crashed.kill_replay_records > 0,
              "duplicates without a plan replay");
    /* The injected fault died between acknowledgement and commit: exactly
     * that batch's journal records came twice, byte-identical. */
    cr_assert(crashed.fault_journal > 0, "the crashed batch produced no journal record");
    cr_assert(crashed.fault_replayed, "the restart did not replay the plan");
    cr_assert_eq((long)(dups - crashed.kill_dups), crashed.fault_journal,
                 "%zu duplicates after the fault, the crashed batch had %ld",
                 dups - crashed.kill_dups, crashed.fault_journal);
    compare_snapshots(&clean.bal, &crashed.bal);
    compare_dlq(&clean.dlq, &crashed.dlq);
    cr_log_info("crash test: after SIGKILL %zu duplicates (plans replayed %ld records, %ld "
                "entries); after the injected fault %ld duplicates",
                crashed.kill_dups, crashed.kill_replay_records, crashed.kill_replay_entries,
                crashed.fault_journal);

    run_result_free(&clean);
    run_result_free(&crashed);
    kh_ev_free(&events);
}

/* ------------------------------------------------------------------------ */
/* the bounded cache: a crash in the middle of a streaming close            */
/* ------------------------------------------------------------------------ */

/* The book phase by phase with no contract kept in memory between batches
 * (state.cache.mb=0: every event loads its contract from the store, every
 * month end walks the store) and closes committed 5 contracts at a time.
 * The first worker kills itself in the first close that commits more than
 * one chunk, after the first chunk was committed and the second one's
 * outputs acknowledged; a restart replays the batch. */
static void close_crash_run(const kh_events_t *events, run_result_t *res, long *chunks)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[256];
    int status = 0;
    kh_worker_t w;
    rs_avro_cache_t *cache = kh_input_cache();

    memset(res, 0, sizeof *res);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    snprintf(extra, sizeof extra,
             "batch.max.records=50\nstate.cache.mb=0\nstate.close.chunk=5\n");
    kh_worker_init(&w, bs, "g-close", extra);
    rd_kafka_t *p = kh_new_producer(bs);
    rd_kafka_t *watch = kh_new_consumer(bs, "g-close");

    pid_t pid = kh_worker_start(&w, "RS_WORKER_CRASH_IN_CLOSE=1");
    int crashed = 0;
    char *l;
    for (int t = 0; t < 4; t++) {
        kh_produce_events(p, events, t, 0, cache);
        if (crashed) {
            consume_phase(watch, t, pid, &w);
            continue;
        }
        if (kh_wait_consumed(watch, kh_in_topics[t], pid, &status, w.log))
            continue;
        /* the worker died in this phase: by the fault, in a close */
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the worker should have killed itself in a close (status %d)", status);
        l = kh_slurp(w.log);
        cr_assert_not_null(strstr(l, "worker: fault crash_in_close=1 "), "%s", l);
        size_t mark = strlen(l);
        free(l);
        crashed = 1;
        pid = kh_worker_start(&w, NULL);
        consume_phase(watch, t, pid, &w);
        l = kh_slurp(w.log);
        res->fault_replayed = strstr(l + mark, "worker: plan_replay ") != NULL;
        free(l);
    }
    cr_assert(crashed, "no close committed two chunks: the fault never came");
    kh_produce_events(p, events, 0, 1, cache); /* the closes */
    consume_phase(watch, 0, pid, &w);
    kh_assert_exit0(kh_worker_stop(pid, w.log), w.log);
    l = kh_slurp(w.log);
    *chunks = kh_log_sum(l, "worker: batch ", "close_chunks");
    free(l);

    finish_run(watch, p, bs, res, cache, mb, &w);
}

/* No contract cached, every close streamed from the store in chunks, and a
 * crash between two chunks of a close: the deduplicated journal, the latest
 * balance snapshots and the dead letters equal those of a clean run with
 * the default cache (which holds this whole book), byte for byte. */
Test(worker, crash_in_a_streaming_close_matches_a_clean_run, .timeout = 300)
{
    kh_events_t events = {0};
    run_result_t clean, crashed;
    long chunks = 0;

    kh_gen_book(&events, 300);
    phased_run(&events, 0, &clean);
    close_crash_run(&events, &crashed, &chunks);
    size_t dups = compare_journals(&clean.journal, &crashed.journal);
    cr_assert(crashed.fault_replayed, "the restart did not replay the plan");
    cr_assert(dups > 0, "the chunk delivered before the crash came again on replay");
    cr_assert(chunks > 10, "%ld close chunks committed", chunks);
    compare_snapshots(&clean.bal, &crashed.bal);
    compare_dlq(&clean.dlq, &crashed.dlq);
    cr_log_info("close crash test: %zu duplicates, %ld chunks", dups, chunks);
    run_result_free(&clean);
    run_result_free(&crashed);
    kh_ev_free(&events);
}

/* ------------------------------------------------------------------------ */
/* a failed delivery                                                        */
/* ------------------------------------------------------------------------ */

Test(worker, failed_delivery_exits_2_and_the_restart_replays, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t events = {0};
    kh_worker_t w;
    rs_avro_cache_t *cache = kh_input_cache();

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    kh_worker_init(&w, bs, "g-fail", "exit.when.idle=true\n");
    rd_kafka_t *p = kh_new_producer(bs);
    kh_produce_events(p, &events, -1, -1, cache);
    rd_kafka_destroy(p);

    /* The next Produce request (the worker's first) fails for good. */
    rd_kafka_mock_push_request_errors(rs_mockbroker_cluster(mb), 0, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    pid_t pid = kh_worker_start(&w, NULL);
    int status = kh_wait_exit(pid, KH_DEADLINE_S, w.log);
    char *log = kh_slurp(w.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %d; log:\n%s", status,
              log);
    cr_assert_not_null(strstr(log, "not delivered"), "%s", log);
    cr_assert_not_null(strstr(log, "worker: error=run"), "%s", log);
    cr_assert_null(strstr(log, "worker: batch "), "a batch was committed:\n%s", log);
    size_t mark = strlen(log);
    free(log);

    /* The restart replays the plan and finishes. */
    kh_worker_run_idle(&w, NULL);
    log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log + mark, "worker: plan_replay "), "%s", log + mark);
    free(log);

    kh_recs_t outs[3];
    kh_read_topics(bs, out_topics, 3, outs);
    /* what the failed run delivered comes again, byte-identical */
    json_t *first = kh_by_entry_id(&outs[0]);
    rs_journal_t j;
    rs_journal_init(&j);
    rs_entry_reader_t *rd = NULL;
    char rderr[256];
    cr_assert_eq(rs_entry_reader_new(&rd, rderr, sizeof rderr), 0, "%s", rderr);
    size_t dups = 0;
    for (size_t i = 0; i < outs[0].n; i++) {
        const kh_rec_t *r = &outs[0].v[i];
        size_t f = (size_t)json_integer_value(json_object_get(first, kh_hdr(r, "entry_id")));
        const kh_rec_t *o = &outs[0].v[f];
        cr_assert(r->vlen == o->vlen && memcmp(r->val, o->val, r->vlen) == 0,
                  "entry %s came twice with different bytes", kh_hdr(r, "entry_id"));
        if (f != i) {
            dups++;
            continue;
        }
        rs_entry_t e;
        kh_entry_from_avro(rd, r, &e);
        cr_assert_eq(rs_journal_append(&j, &e), 0);
    }
    rs_entry_reader_destroy(rd);
    cr_log_info("failed delivery: %zu journal records delivered twice", dups);
    json_t *rows = kh_replay_balances(&events, w.dir, "2026-06");
    kh_check_journal_balances(&events, &j, rows);

    json_decref(rows);
    json_decref(first);
    rs_journal_free(&j);
    for (int i = 0; i < 3; i++)
        kh_recs_free(&outs[i]);
    kh_ev_free(&events);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

/* ------------------------------------------------------------------------ */
/* SIGTERM while an assignment waits for the changelog's watermarks         */
/* ------------------------------------------------------------------------ */

/* As leadership moves, ListOffsets answers fail and the worker retries the
 * changelog's watermarks before it restores and takes new partitions. A
 * SIGTERM then (a rolling restart during a rebalance) gives the assignment
 * up and stops cleanly: exit 0, nothing failed (test_chaos found a worker
 * that exited 2 here). */
Test(worker, sigterm_while_the_assignment_waits_exits_0, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_worker_t w;
    rd_kafka_resp_err_t errs[400];

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    kh_worker_init(&w, rs_mockbroker_bootstraps(mb), "g-term-assign", NULL);
    pid_t pid = kh_worker_start(&w, NULL);
    /* the group's first join takes ~3 s on the mock: the assignment comes
     * after these errors are queued */
    kh_wait_log(w.log, "worker: running", pid);
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++)
        errs[i] = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
    rd_kafka_mock_push_request_errors_array(rs_mockbroker_cluster(mb), 2 /* ListOffsets */,
                                            sizeof errs / sizeof *errs, errs);
    kh_wait_log(w.log, "worker: warning changelog_watermarks", pid);
    kill(pid, SIGTERM);
    kh_assert_exit0(kh_wait_exit(pid, KH_DEADLINE_S, w.log), w.log);
    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "worker: assignment_given_up"), "%s", log);
    cr_assert_null(strstr(log, "worker: error="), "%s", log);
    cr_assert_null(strstr(log, "worker: assigned "), "partitions were taken:\n%s", log);
    free(log);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

/* ------------------------------------------------------------------------ */
/* a pending plan is replayed in its order                                  */
/* ------------------------------------------------------------------------ */

/* The journal (as JSON records) an engine emits for `order` of the events. */
static void expected_journal(const char *const *jsons, const int *order, int n, char **out,
                             size_t *nout)
{
    rs_harness_t h;
    rs_harness_init(&h, NULL);
    for (int i = 0; i < n; i++)
        cr_assert_eq(rs_harness_apply(&h, jsons[order[i]]), RS_APPLY_OK, "%s", h.last_error);
    cr_assert(h.journal.n <= 16);
    for (size_t i = 0; i < h.journal.n; i++) {
        out[i] = rs_codec_entry_json(&h.journal.entries[i]);
        cr_assert_not_null(out[i]);
    }
    *nout = h.journal.n;
    rs_harness_free(&h);
}

Test(worker, pending_plan_is_replayed_in_plan_order, .timeout = 120)
{
    /* Booked, then (contracts) an amendment dated March and (invoices) an
     * invoice dated February: which of the two comes first changes the
     * entries (recognition moves ahead of billing or not). */
    static const char *const ev[3] = {
        "{\"event_id\":\"pl-bk\",\"type\":\"contract.booked\",\"contract_id\":\"C-PLAN\","
        "\"occurred_at\":\"2026-01-01T09:00:00Z\",\"customer_id\":\"CUS-P\",\"currency\":"
        "\"USD\",\"booked_on\":\"2026-01-01\",\"lines\":[{\"line_id\":\"L1\",\"product\":"
        "\"Plan\",\"recognition\":\"ratable_monthly\",\"start\":\"2026-01-01\",\"end\":"
        "\"2026-12-31\",\"amount\":\"1200.00\"}]}",
        "{\"event_id\":\"pl-am\",\"type\":\"contract.amended\",\"contract_id\":\"C-PLAN\","
        "\"occurred_at\":\"2026-03-20T10:00:00Z\",\"effective_on\":\"2026-04-01\",\"lines\":"
        "[{\"line_id\":\"L1\",\"product\":\"Plan\",\"recognition\":\"ratable_monthly\","
        "\"start\":\"2026-01-01\",\"end\":\"2026-12-31\",\"amount\":\"1800.00\"}]}",
        "{\"event_id\":\"pl-inv\",\"type\":\"invoice.issued\",\"contract_id\":\"C-PLAN\","
        "\"occurred_at\":\"2026-02-01T10:00:00Z\",\"invoice_id\":\"PI-1\",\"issued_on\":"
        "\"2026-02-01\",\"lines\":[{\"line_id\":\"L1\",\"amount\":\"1200.00\"}]}",
    };
    /* topic index and offset of each event as produced below */
    static const rs_plan_item_t item[3] = {{0, 0}, {0, 1}, {1, 0}};
    static const int orders[2][3] = {{0, 1, 2}, {0, 2, 1}};
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    char *want[2][16];
    size_t nwant[2];
    kh_dr_t d[3];

    for (int o = 0; o < 2; o++)
        expected_journal(ev, orders[o], 3, want[o], &nwant[o]);
    /* the two orders must give different journals, or this proves nothing */
    int differ = nwant[0] != nwant[1];
    for (size_t i = 0; !differ && i < nwant[0]; i++)
        differ = strcmp(want[0][i], want[1][i]) != 0;
    cr_assert(differ, "both orders give the same journal");

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    rd_kafka_mock_cluster_t *cl = rs_mockbroker_cluster(mb);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "plan.journal.0", KH_NPARTS, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "plan.journal.1", KH_NPARTS, 1), 0);
    /* each order's worker has its own changelog: a changelog belongs to one
     * group's state (a plan-only store restores from it, and would find the
     * other order's plan there) */
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "plan.changelog.0", KH_NPARTS, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "plan.changelog.1", KH_NPARTS, 1), 0);
    rd_kafka_t *p = kh_new_producer(bs);
    for (int i = 0; i < 3; i++) {
        memset(&d[i], 0, sizeof d[i]);
        kh_produce_one(p, kh_in_topics[item[i].topic], RD_KAFKA_PARTITION_UA, "C-PLAN", ev[i],
                       strlen(ev[i]), &d[i]);
        kh_flush_ok(p);
        cr_assert_eq(d[i].offset, item[i].offset);
        cr_assert_eq(d[i].partition, d[0].partition);
    }
    rd_kafka_destroy(p);
    int32_t part = d[0].partition;

    for (int o = 0; o < 2; o++) {
        char extra[256], group[32];
        kh_worker_t w;
        rs_state_t *st = NULL;
        rs_pstate_t *ps = NULL;
        rs_state_opts_t so = {NULL, 1, 0, RS_STATE_SYNC_ON, 0, 0};
        rs_plan_item_t plan[3];

        snprintf(extra, sizeof extra,
                 "exit.when.idle=true\ninput.format=json\noutput.format=json\n"
                 "topics.journal=plan.journal.%d\ntopics.changelog=plan.changelog.%d\n",
                 o, o);
        snprintf(group, sizeof group, "g-plan-%d", o);
        kh_worker_init(&w, bs, group, extra);
        /* a store whose partition has a pending plan, as after a crash */
        so.path = w.state;
        cr_assert_eq(rs_state_open(&st, &so, err, sizeof err), 0, "%s", err);
        cr_assert_eq(rs_pstate_load(&ps, st, part, NULL, err, sizeof err), 0, "%s", err);
        for (int i = 0; i < 3; i++)
            plan[i] = item[orders[o][i]];
        cr_assert_eq(rs_pstate_save_plan(ps, plan, 3, err, sizeof err), 0, "%s", err);
        rs_pstate_destroy(ps);
        rs_state_destroy(st);

        kh_worker_run_idle(&w, NULL);

        char topic[32];
        const char *const tl[1] = {topic};
        kh_recs_t j;
        snprintf(topic, sizeof topic, "plan.journal.%d", o);
        kh_read_topics(bs, tl, 1, &j);
        cr_assert_eq(j.n, nwant[o], "order %d: %zu journal records, want %zu", o, j.n,
                     nwant[o]);
        for (size_t i = 0; i < j.n; i++)
            cr_assert_str_eq((const char *)j.v[i].val, want[o][i], "order %d entry %zu", o, i);
        char *log = kh_slurp(w.log);
        snprintf(err, sizeof err, "worker: plan_replay partition=%d records=3", (int)part);
        cr_assert_not_null(strstr(log, err), "%s", log);
        free(log);
        kh_recs_free(&j);
        kh_rm_rf(w.dir);
    }
    for (int o = 0; o < 2; o++)
        for (size_t i = 0; i < nwant[o]; i++)
            free(want[o][i]);
    rs_mockbroker_destroy(mb);
}

/* ------------------------------------------------------------------------ */
/* start-up errors                                                          */
/* ------------------------------------------------------------------------ */

/* Run the worker on a config; returns its exit code and its stderr. */
static int run_worker_cfg(const char *bs, const char *extra, const char *env, char **log)
{
    kh_worker_t w;
    kh_worker_init(&w, bs, "g-err", extra);
    char *argv[] = {"revstream", "worker", "--config", w.cfg, NULL};
    int status = kh_wait_exit(kh_spawn(argv, w.out, w.log, env), KH_DEADLINE_S, w.log);
    *log = kh_slurp(w.log);
    char *out = kh_slurp(w.out);
    size_t n = strlen(*log);
    *log = realloc(*log, n + strlen(out) + 1);
    strcpy(*log + n, out);
    free(out);
    kh_rm_rf(w.dir);
    cr_assert(WIFEXITED(status), "status %d", status);
    return WEXITSTATUS(status);
}

Test(worker, startup_errors, .timeout = 120)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    char *log = NULL;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    rd_kafka_mock_cluster_t *cl = rs_mockbroker_cluster(mb);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.contracts", 4, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.invoices", 3, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.payments", 4, 1), 0);
    cr_assert_eq(rd_kafka_mock_topic_create(cl, "cp.usage", 2, 1), 0);

    /* not co-partitioned: each count named, exit 1 */
    cr_assert_eq(run_worker_cfg(bs,
                                "topics.contracts=cp.contracts\ntopics.invoices=cp.invoices\n"
                                "topics.payments=cp.payments\ntopics.usage=cp.usage\n",
                                NULL, &log),
                 1, "%s", log);
    cr_assert_not_null(strstr(log, "not co-partitioned"), "%s", log);
    cr_assert_not_null(strstr(log, "cp.contracts has 4 partitions, cp.invoices has 3 "
                                   "partitions, cp.payments has 4 partitions, cp.usage has 2 "
                                   "partitions"),
                       "%s", log);
    free(log);

    /* a missing topic */
    cr_assert_eq(run_worker_cfg(bs, "topics.usage=no.such.topic\n", NULL, &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "no.such.topic does not exist"), "%s", log);
    free(log);

    /* a bad key, from the file and from the environment */
    cr_assert_eq(run_worker_cfg(bs, "batch.max.record=5\n", NULL, &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "unknown key \\\"batch.max.record\\\""), "%s", log);
    free(log);
    cr_assert_eq(run_worker_cfg(bs, "", "REVSTREAM_BATCH_MAX_MS=soon", &log), 1, "%s", log);
    cr_assert_not_null(strstr(log, "REVSTREAM_BATCH_MAX_MS"), "%s", log);
    free(log);

    /* --check prints the config with secrets masked */
    kh_worker_t w;
    kh_worker_init(&w, bs, "g-check", "kafka.sasl.username=alice\n");
    char *argv[] = {"revstream", "worker", "--config", w.cfg, "--check", NULL};
    int status = kh_wait_exit(
        kh_spawn(argv, w.out, w.log, "REVSTREAM_KAFKA_SASL_PASSWORD=very-secret-pw"),
        KH_DEADLINE_S, w.log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *out = kh_slurp(w.out), *errs = kh_slurp(w.log);
    cr_assert_not_null(strstr(out, "kafka.sasl.password=***"), "%s", out);
    cr_assert_not_null(strstr(out, "kafka.sasl.username=alice"), "%s", out);
    cr_assert_null(strstr(out, "very-secret-pw"), "%s", out);
    cr_assert_null(strstr(errs, "very-secret-pw"), "%s", errs);
    free(out);
    free(errs);
    kh_rm_rf(w.dir);

    rs_mockbroker_destroy(mb);
}
