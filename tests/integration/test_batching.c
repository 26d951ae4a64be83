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

/* One run of the book through a fresh broker and worker; the journal's
 * records, deduplicated by entry_id, into *uniq (and all of them in *all). */
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

static void run_book(const char *book, const char *extra, const char *tag, kh_recs_t *all,
                     kh_recs_t *uniq, long *batches, long *threads, long *pauses)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], cfg[512];
    kh_worker_t w;

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_worker_init(&w, bs, tag, NULL);
    char *pargv[] = {"revstream", "produce", "--bootstrap", (char *)bs, (char *)book, NULL};
    run_cli(pargv, w.dir, "produce");
    snprintf(cfg, sizeof cfg, "exit.when.idle=true\ninput.idle.ms=60000\n%s", extra);
    kh_worker_init(&w, bs, tag, cfg);
    kh_worker_run_idle(&w, NULL);
    static const char *const journal[1] = {"revenue.journal"};
    kh_read_topics(bs, journal, 1, all);
    kh_dedup_journal(all, uniq);
    char *log = kh_slurp(w.log);
    *batches = kh_log_number(log, "worker: stopped ", "batches", 0);
    cr_assert_not_null(strstr(log, "rejected=0 "), "%s", log);
    if (threads != NULL)
        *threads = max_threads(log);
    if (pauses != NULL)
        *pauses = kh_log_number(log, "worker: stopped ", "pauses", 0);
    free(log);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

/* The book of the two tests below, generated into dir. */
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

Test(batching, journal_does_not_depend_on_batch_size, .timeout = 300)
{
    char dir[64], book[128];
    make_book(dir, sizeof dir, book, sizeof book);

    kh_recs_t all_a, a, all_b, b;
    long batches_a = 0, batches_b = 0;
    run_book(book, "batch.max.records=7\nbatch.max.ms=5\n", "g-small", &all_a, &a, &batches_a,
             NULL, NULL);
    run_book(book, "batch.max.records=100000\nbatch.max.ms=3000\n", "g-large", &all_b, &b,
             &batches_b, NULL, NULL);
    cr_log_info("small batches: %ld batches, %zu entries; large: %ld batches, %zu entries",
                batches_a, a.n, batches_b, b.n);
    /* the settings really cut the book differently */
    cr_assert_gt(batches_a, 20 * batches_b, "%ld batches against %ld", batches_a, batches_b);

    assert_same_journal(&a, &b, "small batches", "large ones");
    kh_recs_free(&all_a);
    kh_recs_free(&all_b);
    kh_rm_rf(dir);
}

/* input.buffer.records: pausing a topic-partition whose queue holds its
 * share, and resuming it at half, changes neither what is applied nor in
 * which order (a topic with nothing queued is never paused, so the
 * event-time merge never waits longer for it). */
Test(batching, journal_does_not_depend_on_input_buffer, .timeout = 300)
{
    char dir[64], book[128];
    make_book(dir, sizeof dir, book, sizeof book);

    kh_recs_t all_a, a, all_b, b;
    long batches_a = 0, batches_b = 0, pauses_a = 0, pauses_b = 0;
    /* 16 topic-partitions: a share of 16 / 16 -> the minimum, 8 records */
    run_book(book, "input.buffer.records=16\nbatch.max.records=50\nbatch.max.ms=5\n",
             "g-paused", &all_a, &a, &batches_a, NULL, &pauses_a);
    run_book(book, "batch.max.records=100000\nbatch.max.ms=3000\n", "g-unpaused", &all_b, &b,
             &batches_b, NULL, &pauses_b);
    cr_log_info("paused: %ld pauses, %ld batches; unpaused: %ld pauses", pauses_a, batches_a,
                pauses_b);
    cr_assert_gt(pauses_a, 10, "%ld pauses", pauses_a);
    cr_assert_eq(pauses_b, 0, "%ld pauses", pauses_b);
    assert_same_journal(&a, &b, "paused input", "unpaused input");
    kh_recs_free(&all_a);
    kh_recs_free(&all_b);
    kh_rm_rf(dir);
}

/* batch.max.staged.kib: a batch's records capped by the state the last
 * batch staged per record (the first by a fixed estimate) cuts the book
 * into many batches, with the same journal as one batch of it all. */
Test(batching, journal_does_not_depend_on_staged_bound, .timeout = 300)
{
    char dir[64], book[128];
    make_book(dir, sizeof dir, book, sizeof book);

    kh_recs_t all_a, a, all_b, b;
    long batches_a = 0, batches_b = 0;
    run_book(book, "batch.max.staged.kib=16\nbatch.max.records=100000\nbatch.max.ms=3000\n",
             "g-staged", &all_a, &a, &batches_a, NULL, NULL);
    run_book(book, "batch.max.staged.kib=0\nbatch.max.records=100000\nbatch.max.ms=3000\n",
             "g-unbounded", &all_b, &b, &batches_b, NULL, NULL);
    cr_log_info("staged bound: %ld batches; unbounded: %ld batches", batches_a, batches_b);
    /* the bound, not batch.max.records or batch.max.ms, cut the book */
    cr_assert_gt(batches_a, 10 * batches_b, "%ld batches against %ld", batches_a, batches_b);
    assert_same_journal(&a, &b, "batches cut by staged state", "one batch");
    kh_recs_free(&all_a);
    kh_recs_free(&all_b);
    kh_rm_rf(dir);
}

/* worker.threads: the sub-batches of a batch applied on one thread or on
 * several at once give the same journal (each partition's work is done by
 * one thread, in the same order). */
Test(batching, journal_does_not_depend_on_threads, .timeout = 300)
{
    char dir[64], book[128];
    make_book(dir, sizeof dir, book, sizeof book);

    kh_recs_t all_a, a, all_b, b;
    long batches_a = 0, batches_b = 0, threads_a = 0, threads_b = 0;
    run_book(book, "worker.threads=1\nbatch.max.records=500\nbatch.max.ms=200\n", "g-one",
             &all_a, &a, &batches_a, &threads_a, NULL);
    run_book(book, "worker.threads=3\nbatch.max.records=500\nbatch.max.ms=200\n", "g-three",
             &all_b, &b, &batches_b, &threads_b, NULL);
    cr_log_info("one thread: %ld batches, %zu entries; three: %ld batches, %zu entries, "
                "up to %ld threads in a batch",
                batches_a, a.n, batches_b, b.n, threads_b);
    /* the second run really applied batches on several threads */
    cr_assert_eq(threads_a, 1);
    cr_assert_gt(threads_b, 1);
    assert_same_journal(&a, &b, "one thread", "three");
    kh_recs_free(&all_a);
    kh_recs_free(&all_b);
    kh_rm_rf(dir);
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
