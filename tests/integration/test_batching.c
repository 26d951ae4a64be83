/*
 * test_batching.c — what the worker's output must not depend on, and
 * exactly_once on the embedded broker.
 *
 *   - The journal does not depend on batching: the same generated book
 *     (`revstream generate`, produced by `revstream produce`, which stamps
 *     each record with its event time) run by a worker with tiny batches and
 *     by one with huge batches gives the same deduplicated journal: the same
 *     entry ids with byte-identical records, on the same partitions. Both run
 *     with a long input.idle.ms: waiting out a lagging topic is the one
 *     documented case where the order may differ (docs/worker.md).
 *   - Nor on worker.threads: one thread or three applying a batch's
 *     sub-batches give the same deduplicated journal.
 *   - Nor on input.buffer.records: a worker whose topic-partitions are
 *     paused whenever 8 records of one are queued (and resumed at 4) gives
 *     the same deduplicated journal as one that never pauses.
 *   - Nor on batch.max.staged.kib: batches cut to stage ~16 KiB of state
 *     each give the same deduplicated journal as one huge batch.
 *   - processing.guarantee=exactly_once processes a whole book: every batch,
 *     plans included, in one transaction; the deduplicated journal and the
 *     latest balance snapshots equal `revstream replay`. (The mock broker's
 *     transactions write no markers, so this checks that the worker drives
 *     them correctly, not the broker's isolation.)
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"

static void run_cli(char *const argv[], const char *dir, const char *name)
{
    char out[160], err[160];
    snprintf(out, sizeof out, "%s/%s.out", dir, name);
    snprintf(err, sizeof err, "%s/%s.log", dir, name);
    pid_t pid = kh_spawn(argv, out, err, NULL);
    int status = kh_wait_exit(pid, KH_DEADLINE_S, err);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *log = kh_slurp(err);
        cr_assert_fail("revstream %s failed (status %d):\n%s", argv[1], status, log);
    }
}

/* The most threads any batch of the log was applied on (its batch lines'
 * threads=N), 0 if none says. */
static long max_threads(const char *log)
{
    long most = 0;
    for (const char *p = strstr(log, " threads="); p != NULL; p = strstr(p + 1, " threads=")) {
        long n = strtol(p + 9, NULL, 10);
        most = n > most ? n : most;
    }
    return most;
}

/* What a run's worker log said: its batches, the most threads one batch
 * was applied on, its input pauses. */
typedef struct run_counts {
    long batches, threads, pauses;
} run_counts_t;

/* One run of the book through a fresh broker and worker; the journal's
 * records, deduplicated by entry_id, into *uniq (and all of them in *all). */
static void run_book(const char *book, const char *extra, run_counts_t *n, kh_recs_t *all,
                     kh_recs_t *uniq)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], cfg[512];
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_worker_init(&w, bs, "g-book", NULL);
    char *pargv[] = {"revstream", "produce", "--bootstrap", (char *)bs, (char *)book, NULL};
    run_cli(pargv, w.dir, "produce");
    snprintf(cfg, sizeof cfg, "exit.when.idle=true\ninput.idle.ms=60000\n%s", extra);
    kh_worker_init(&w, bs, "g-book", cfg);
    kh_worker_run_idle(&w, NULL);
    static const char *const journal[1] = {"revenue.journal"};
    kh_read_topics(bs, journal, 1, all);
    kh_dedup_journal(all, uniq);
    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "rejected=0 "), "%s", log);
    n->batches = kh_log_number(log, "worker: stopped ", "batches", 0);
    n->threads = max_threads(log);
    n->pauses = kh_log_number(log, "worker: stopped ", "pauses", 0);
    free(log);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

/* The book of the tests below, generated into dir. */
static void make_book(char *dir, size_t dirlen, char *book, size_t booklen)
{
    kh_make_dir(dir, dirlen);
    snprintf(book, booklen, "%s/book.jsonl", dir);
    char *gargv[] = {"revstream", "generate", "--contracts", "120", "--seed",
                     "11",        "--out",    book,          NULL};
    run_cli(gargv, dir, "generate");
}

/* The same deduplicated entries, byte for byte, on the same partitions, in
 * a and b (what_a, what_b name the runs); frees both. */
static void assert_same_journal(kh_recs_t *a, kh_recs_t *b, const char *what_a,
                                const char *what_b)
{
    cr_assert_gt(a->n, 500, "only %zu entries", a->n);
    cr_assert_eq(a->n, b->n, "%zu entries with %s, %zu with %s", a->n, what_a, b->n, what_b);
    json_t *ids = kh_by_entry_id(b);
    for (size_t i = 0; i < a->n; i++) {
        const char *id = kh_hdr(&a->v[i], "entry_id");
        json_t *k = json_object_get(ids, id);
        cr_assert_not_null(k, "entry %s only with %s", id, what_a);
        const kh_rec_t *r = &b->v[json_integer_value(k)];
        cr_assert_eq(a->v[i].partition, r->partition, "entry %s: partition", id);
        cr_assert(a->v[i].vlen == r->vlen && memcmp(a->v[i].val, r->val, r->vlen) == 0,
                  "entry %s differs between %s and %s", id, what_a, what_b);
    }
    json_decref(ids);
    free(a->v);
    free(b->v);
}

/* The counts of the two runs of a journal_does_not_depend_on_* test. */
typedef struct run_pair {
    run_counts_t a, b;
} run_pair_t;

/* The body of the journal_does_not_depend_on_* tests: the generated book
 * run by a worker with the configuration lines extra_a and by one with
 * extra_b (what_a, what_b name the runs) gives the same deduplicated
 * journal. Returns the runs' counts, with which the caller checks that the
 * settings really ran the book differently. */
static run_pair_t assert_same_journal_under(const char *what_a, const char *extra_a,
                                            const char *what_b, const char *extra_b)
{
    char dir[64], book[128];
    kh_recs_t all_a, uniq_a, all_b, uniq_b;
    run_pair_t n;

    make_book(dir, sizeof dir, book, sizeof book);
    run_book(book, extra_a, &n.a, &all_a, &uniq_a);
    run_book(book, extra_b, &n.b, &all_b, &uniq_b);
    cr_log_info("%s: %ld batches, up to %ld threads, %ld pauses, %zu entries; "
                "%s: %ld batches, up to %ld threads, %ld pauses, %zu entries",
                what_a, n.a.batches, n.a.threads, n.a.pauses, uniq_a.n, what_b, n.b.batches,
                n.b.threads, n.b.pauses, uniq_b.n);
    assert_same_journal(&uniq_a, &uniq_b, what_a, what_b);
    kh_recs_free(&all_a);
    kh_recs_free(&all_b);
    kh_rm_rf(dir);
    return n;
}

Test(batching, journal_does_not_depend_on_batch_size, .timeout = 300)
{
    run_pair_t n = assert_same_journal_under(
        "small batches", "batch.max.records=7\nbatch.max.ms=5\n", "large ones",
        "batch.max.records=100000\nbatch.max.ms=3000\n");
    /* the settings really cut the book differently */
    cr_assert_gt(n.a.batches, 20 * n.b.batches, "%ld batches against %ld", n.a.batches,
                 n.b.batches);
}

/* input.buffer.records: pausing a topic-partition whose queue holds its
 * share, and resuming it at half, changes neither what is applied nor in
 * which order (a topic with nothing queued is never paused, so the
 * event-time merge never waits longer for it). */
Test(batching, journal_does_not_depend_on_input_buffer, .timeout = 300)
{
    /* 16 topic-partitions: a share of 16 / 16 -> the minimum, 8 records */
    run_pair_t n = assert_same_journal_under(
        "paused input", "input.buffer.records=16\nbatch.max.records=50\nbatch.max.ms=5\n",
        "unpaused input", "batch.max.records=100000\nbatch.max.ms=3000\n");
    cr_assert_gt(n.a.pauses, 10, "%ld pauses", n.a.pauses);
    cr_assert_eq(n.b.pauses, 0, "%ld pauses", n.b.pauses);
}

/* batch.max.staged.kib: a batch's records capped by the state the last
 * batch staged per record (the first by a fixed estimate) cuts the book
 * into many batches, with the same journal as one batch of it all. */
Test(batching, journal_does_not_depend_on_staged_bound, .timeout = 300)
{
    run_pair_t n = assert_same_journal_under(
        "batches cut by staged state",
        "batch.max.staged.kib=16\nbatch.max.records=100000\nbatch.max.ms=3000\n", "one batch",
        "batch.max.staged.kib=0\nbatch.max.records=100000\nbatch.max.ms=3000\n");
    /* the bound, not batch.max.records or batch.max.ms, cut the book */
    cr_assert_gt(n.a.batches, 10 * n.b.batches, "%ld batches against %ld", n.a.batches,
                 n.b.batches);
}

/* worker.threads: the sub-batches of a batch applied on one thread or on
 * several at once give the same journal (each partition's work is done by
 * one thread, in the same order). */
Test(batching, journal_does_not_depend_on_threads, .timeout = 300)
{
    run_pair_t n = assert_same_journal_under(
        "one thread", "worker.threads=1\nbatch.max.records=500\nbatch.max.ms=200\n", "three",
        "worker.threads=3\nbatch.max.records=500\nbatch.max.ms=200\n");
    /* the second run really applied batches on several threads */
    cr_assert_eq(n.a.threads, 1);
    cr_assert_gt(n.b.threads, 1);
}

/* exactly_once over the sample book: replay's balances, no duplicate.
 * `state`: more configuration (the cache); `batch`: batch.max.records. */
static void exactly_once_book(const char *state, int batch, int want_chunks)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t events = {0};
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    kh_produce_book(bs, &events);
    char extra[512];
    snprintf(extra, sizeof extra, "%s%d\n%s",
             "exit.when.idle=true\ninput.format=json\noutput.format=json\n"
             "processing.guarantee=exactly_once\ninput.idle.ms=500\nbatch.max.records=",
             batch, state);
    kh_worker_init(&w, bs, "g-eos", extra);
    kh_worker_run_idle(&w, NULL);
    size_t dups =
        kh_check_topic_balances(bs, "revenue.journal", "revenue.deferred-balances", &events);
    char *log = kh_slurp(w.log);
    cr_assert_not_null(strstr(log, "guarantee=exactly_once"), "%s", log);
    long batches = kh_log_number(log, "worker: stopped ", "batches", 0);
    cr_assert_gt(batches, 1, "%s", log);
    cr_assert_null(strstr(log, "Erroneous state"), "%s", log);
    if (want_chunks)
        cr_assert_gt(kh_log_sum(log, "worker: batch ", "close_chunks"), 0,
                     "no close streamed from the store in chunks:\n%s", log);
    cr_log_info("exactly_once: %ld batches, %zu duplicates", batches, dups);
    cr_assert_eq(dups, 0);
    free(log);
    kh_ev_free(&events);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

Test(batching, exactly_once_book_equals_replay, .timeout = 180)
{
    exactly_once_book("", 40, 0);
}

/* No contract cached: the month ends are lazy closes from the store in
 * chunks, inside the batches' transactions (nothing committed by a chunk).
 * Small batches, so that a month end is crossed by a batch that touched
 * few of its partition's contracts (whatever the timing cuts: a batch of
 * 40 could touch every contract a close would stream). */
Test(batching, exactly_once_lazy_closes_without_cache_equal_replay, .timeout = 180)
{
    exactly_once_book("state.cache.mb=0\nstate.close.chunk=3\n", 4, 1);
}
