/*
 * test_chaos — the fault suite's kill test (issue 17): `revstream worker`
 * child processes on one consumer group against the embedded broker, with
 * input flowing, SIGKILLed over and over at random points timed from their
 * batches, sometimes losing their state directory, while request errors
 * are injected and partition leaders move. Then the outputs must be what a
 * single clean `revstream replay` of the same input gives.
 *
 * The run (one seed: RS_CHAOS_SEED, default from the clock, printed first
 * with the command that repeats the schedule):
 *   - RS_CHAOS_WORKERS (default 3) worker slots, one group, 3 brokers, 4
 *     partitions; a generated book of RS_CHAOS_CONTRACTS contracts (default
 *     120) produced in chunks, one chunk per kill, so input keeps arriving
 *     while workers die and come back; the month closes at the end.
 *   - RS_CHAOS_KILLS (default 50; 30 in an ASan build) kills. Each picks a slot at random:
 *       * a slot started with the test-only hook RS_TEST_KILL_POINT armed
 *         (half of the starts) kills itself at that point of its 1st-3rd
 *         batch: planned (plans saved and delivered, nothing applied),
 *         mid_batch (one partition applied and produced), delivered
 *         (outputs acknowledged, changelog not), changelog (changelog
 *         acknowledged, local commit not), state_write (during the local
 *         commit, after a random 0-3 ms), committed (local commit done,
 *         Kafka offsets not);
 *       * otherwise it is SIGKILLed from here, 0-25 ms after its next 0-2
 *         "worker: batch" log lines (0: at once, wherever it is: starting,
 *         restoring, mid-batch).
 *     After a kill the slot's state directory is deleted one time in four
 *     (the next start restores its partitions from the changelog); the slot
 *     is restarted at once.
 *   - Each kill also moves the leaders of one topic (inputs, outputs and
 *     changelog in turn) and pushes retriable errors onto Produce, Fetch,
 *     ListOffsets and OffsetCommit requests.
 *   - At the end the faults stop, the input is made whole (an input record
 *     the embedded broker lost after acknowledging it, seen once in CI on
 *     2026-12-07, is produced again and counted: make_input_whole), the
 *     live slots get SIGTERM, and one worker (exit.when.idle) finishes the
 *     input.
 *
 * Checked: the input topics hold every event once; the journal,
 * deduplicated by entry_id, has no entry_id with two contents, no gap in
 * any contract's sequence (nothing missing), and gives exactly `revstream
 * replay`'s balances for every line (a live stream may split entries
 * differently; balances may not differ); the latest balance snapshot of
 * every line equals replay's; every dead letter is a usage event of a
 * cancelled contract (the only events of the book the engine refuses; how
 * many depends on arrival order, issue 17 defect 8, so their number is not
 * checked). Duplicates are counted and printed (entry_id and copies).
 *
 * No timing is asserted. Every wait has a deadline; children get
 * PR_SET_PDEATHSIG. The longer run is scripts/chaos.sh (docs/reliability.md).
 *
 * Ownership: the test frees what it creates; temp dirs are removed at the
 * end of a passing run (kept on failure for the logs).
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"

#define CHAOS_GROUP "g-chaos"
/* The suite's bounded run: 50 kills (about 2 minutes here); under ASan,
 * where every worker runs several times slower, 30. */
#if defined(__SANITIZE_ADDRESS__)
#define CHAOS_DEFAULT_KILLS 30
#else
#define CHAOS_DEFAULT_KILLS 50
#endif
#define CHAOS_MAX_SLOTS 3
#define CHAOS_NPOINTS 6

/* Kafka protocol API keys (the public protocol) used for fault injection. */
enum { API_PRODUCE = 0, API_FETCH = 1, API_LIST_OFFSETS = 2, API_OFFSET_COMMIT = 8 };

static const char *const point_names[CHAOS_NPOINTS] = {"planned",   "mid_batch",   "delivered",
                                                       "changelog", "state_write", "committed"};

typedef struct slot {
    kh_worker_t w;
    pid_t pid;
    size_t mark;   /* log size at this process's start */
    int armed;     /* index into point_names, or -1 */
    char env[128]; /* RS_TEST_KILL_POINT=... while armed */
} slot_t;

typedef struct chaos {
    uint64_t rng;
    rs_mockbroker_t *mb;
    rd_kafka_mock_cluster_t *cl;
    const char *bs;
    slot_t slot[CHAOS_MAX_SLOTS];
    int nslots;
    /* counts for the report */
    int kills_external, kills_hook[CHAOS_NPOINTS], hook_timeouts, deleted, starts;
    int leader_moves, errors;
    /* the input: produced at a steady pace by chaos_pump while waiting */
    rd_kafka_t *prod;
    const kh_events_t *ev;
    size_t next;      /* the next event to produce */
    double t0, per;   /* start, seconds per event */
    long kill, kills; /* the kill under way, of how many */
} chaos_t;

static uint64_t rnd(chaos_t *c, uint64_t n)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return n ? c->rng % n : 0;
}

/* A positive number from the environment; unset, empty, not a number or
 * not positive: def. */
static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    char *end = NULL;
    if (v == NULL || *v == '\0')
        return def;
    long n = strtol(v, &end, 10);
    return *end == '\0' && n > 0 ? n : def;
}

static size_t file_size(const char *path)
{
    char *l = kh_slurp(path);
    size_t n = strlen(l);
    free(l);
    return n;
}

/* The worker config of every slot: JSON, small batches, one request in
 * flight per connection (the 2.0.2 mock appends past a failed produce
 * request otherwise; see test_scale's leader_moves_and_request_errors).
 * max.poll.interval.ms sets librdkafka's JoinGroup request timeout (it plus
 * 3 s). The 2.0.2 mock holds a join for up to 3 s (an empty group's first
 * join); a join that times out on a loaded machine is sent again on a new
 * connection, and when that reaches the mock before the old connection's
 * close, the mock aborts the whole test process (rdkafka_mock_cgrp.c:
 * `!member->resp`). 6 s leaves the join 9 s.
 *
 * The slots' 1 s session timeout moves a killed worker's partitions fast
 * (a slot that finds the group empty waits for another to join with it;
 * the kill loop's 8 s deadlines do not depend on its batches).
 * The finishing worker (exit_when_idle) takes 6 s: it joins alone, and
 * once the group has gone empty the 2.0.2 mock answers a first join only
 * after 3 s, while its session timer (every 1 s) evicts a member that has
 * been quiet for session.timeout.ms, a joining member included. With 1 s
 * such a lone joiner is evicted before the election every time, its join
 * never answered and sent again after 9 s into an empty group again: the
 * worker never got an assignment (CI, 2026-12-07, seed 680288; the mock's debug
 * log shows "Empty -> Joining", "Member ... session timed out", "Joining
 * -> Empty: no members joined", over and over). */
static void slot_init(chaos_t *c, slot_t *s, int exit_when_idle)
{
    char text[2048];
    kh_worker_init(&s->w, c->bs, CHAOS_GROUP, NULL);
    snprintf(text, sizeof text,
             "kafka.bootstrap.servers=%s\nstate.dir=%s\ngroup.id=" CHAOS_GROUP "\n"
             "state.sync=false\nlog.format=text\nkafka.session.timeout.ms=%d\n"
             "kafka.heartbeat.interval.ms=200\nkafka.log_level=3\n"
             "kafka.fetch.wait.max.ms=20\nkafka.max.poll.interval.ms=6000\n"
             "kafka.max.in.flight.requests.per.connection=1\n"
             "input.format=json\noutput.format=json\nbatch.max.records=8\nbatch.max.ms=20\n"
             "%s",
             c->bs, s->w.state, exit_when_idle ? 6000 : 1000,
             exit_when_idle ? "exit.when.idle=true\n" : "");
    kh_write_file(s->w.cfg, text);
    s->pid = -1;
    s->armed = -1;
}

static void chaos_pump(chaos_t *c);

/* Start the slot's worker; half the time armed with a kill point. */
static void slot_start(chaos_t *c, slot_t *s)
{
    s->mark = file_size(s->w.log);
    s->armed = -1;
    if (rnd(c, 2) == 0) {
        s->armed = (int)rnd(c, CHAOS_NPOINTS);
        snprintf(s->env, sizeof s->env, "RS_TEST_KILL_POINT=%s:%d:3000:%llu",
                 point_names[s->armed], 1 + (int)rnd(c, 3),
                 (unsigned long long)rnd(c, 1u << 30));
    }
    s->pid = kh_worker_start(&s->w, s->armed >= 0 ? s->env : NULL);
    c->starts++;
}

/* The "worker: batch " lines this process logged. */
static int slot_batches(const slot_t *s)
{
    char *l = kh_slurp(s->w.log);
    int n = 0;
    for (const char *p = strstr(l + s->mark, "worker: batch "); p != NULL;
         p = strstr(p + 1, "worker: batch "))
        n++;
    free(l);
    return n;
}

/* The process exited: it must have been killed by SIGKILL (never a clean
 * or failed exit while faults are only retriable ones). */
static void slot_reaped(const slot_t *s, int status)
{
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
        char *l = kh_slurp(s->w.log);
        cr_assert_fail("worker %s exited with status %d (exit %d, signal %d), not killed; "
                       "log since its start:\n%s",
                       s->w.dir, status, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                       WIFSIGNALED(status) ? WTERMSIG(status) : 0, l + s->mark);
    }
}

/* One kill of slot s: an armed worker is waited for (it kills itself; after
 * 8 s without reaching its point it is killed from here), an unarmed one
 * is killed from here after 0-2 of its batches and 0-25 ms. */
static void slot_kill(chaos_t *c, slot_t *s)
{
    int status = 0;
    if (s->armed >= 0) {
        double deadline = kh_now_s() + 8;
        pid_t r;
        while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && kh_now_s() < deadline) {
            chaos_pump(c);
            usleep(5 * 1000);
        }
        if (r == s->pid) {
            slot_reaped(s, status);
            char *l = kh_slurp(s->w.log);
            cr_assert_not_null(strstr(l + s->mark, "worker: fault point="),
                               "armed worker died without its fault line:\n%s", l + s->mark);
            free(l);
            c->kills_hook[s->armed]++;
            s->pid = -1;
            return;
        }
        c->hook_timeouts++;
    } else {
        int want = slot_batches(s) + (int)rnd(c, 3);
        double deadline = kh_now_s() + 8;
        while (slot_batches(s) < want && kh_now_s() < deadline) {
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                slot_reaped(s, status);
                cr_assert_fail("unreachable");
            }
            chaos_pump(c);
            usleep(2 * 1000);
        }
        usleep((useconds_t)rnd(c, 25000));
    }
    kill(s->pid, SIGKILL);
    cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
    slot_reaped(s, status);
    c->kills_external++;
    s->pid = -1;
}

/* Leader moves for one topic and a round of retriable request errors. */
static void chaos_faults(chaos_t *c, int step)
{
    const char *topic = rs_mockbroker_topics[step % RS_MOCKBROKER_TOPIC_COUNT];
    for (int32_t p = 0; p < KH_NPARTS; p++, c->leader_moves++)
        rd_kafka_mock_partition_set_leader(c->cl, topic, p, 1 + (int32_t)rnd(c, 3));
    rd_kafka_mock_push_request_errors(c->cl, API_PRODUCE, 2,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    rd_kafka_mock_push_request_errors(c->cl, API_FETCH, 2,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR__TRANSPORT);
    rd_kafka_mock_push_request_errors(c->cl, API_LIST_OFFSETS, 1,
                                      RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE);
    rd_kafka_mock_push_request_errors(c->cl, API_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    c->errors += 6;
}

static void chaos_clear_faults(chaos_t *c)
{
    rd_kafka_mock_clear_request_errors(c->cl, API_PRODUCE);
    rd_kafka_mock_clear_request_errors(c->cl, API_FETCH);
    rd_kafka_mock_clear_request_errors(c->cl, API_LIST_OFFSETS);
    rd_kafka_mock_clear_request_errors(c->cl, API_OFFSET_COMMIT);
}

/* A producer that keeps one request in flight (see slot_init). */
static rd_kafka_t *chaos_producer(const char *bs)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const kv[][2] = {{"partitioner", "murmur2_random"},
                                        {"enable.idempotence", "true"},
                                        {"max.in.flight.requests.per.connection", "1"},
                                        {"log_level", "3"},
                                        {"linger.ms", "1"}};
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bs, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        cr_assert_eq(rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof err), 0, "%s",
                     err);
    kh_conf_dr(conf);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    return p;
}

/* Events [lo, hi) of the book that are not closes, keyed by contract. */
static void produce_range(rd_kafka_t *p, const kh_events_t *ev, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi && i < ev->n; i++) {
        const kh_event_t *e = &ev->v[i];
        if (e->is_close)
            continue;
        kh_produce_one(p, kh_in_topics[e->topic], RD_KAFKA_PARTITION_UA, e->contract_id,
                       e->json, strlen(e->json), NULL);
        rd_kafka_poll(p, 0);
    }
}

/* The input as the broker holds it, once the faults stopped: every event
 * not found there (its JSON is its record's value) is produced again.
 * Rarely (seen once in CI on 2026-12-07, not again with the same seed) the
 * embedded broker held one input record fewer than the test's idempotent
 * producer had been told was delivered, under the injected Produce errors
 * and leader moves. The input is the test's, not the workers', so it is
 * made whole and the count printed; the checks then hold the workers to
 * the whole book. Returns the number produced again. */
static size_t make_input_whole(const char *bs, rd_kafka_t *p, const kh_events_t *ev)
{
    kh_recs_t in[4];
    size_t again = 0;
    kh_read_topics(bs, kh_in_topics, 4, in);
    char *found[4];
    for (int t = 0; t < 4; t++) {
        found[t] = calloc(in[t].n + 1, 1);
        cr_assert_not_null(found[t]);
    }
    for (size_t i = 0; i < ev->n; i++) {
        const kh_event_t *e = &ev->v[i];
        if (e->is_close)
            continue;
        const kh_recs_t *r = &in[e->topic];
        size_t k = 0;
        while (k < r->n &&
               (found[e->topic][k] || strcmp((const char *)r->v[k].val, e->json) != 0))
            k++;
        if (k < r->n) {
            found[e->topic][k] = 1;
            continue;
        }
        fprintf(stderr, "chaos: %s lost an acknowledged record; produced again: %s\n",
                kh_in_topics[e->topic], e->json);
        kh_produce_one(p, kh_in_topics[e->topic], RD_KAFKA_PARTITION_UA, e->contract_id,
                       e->json, strlen(e->json), NULL);
        again++;
    }
    kh_flush_ok(p);
    for (int t = 0; t < 4; t++) {
        free(found[t]);
        kh_recs_free(&in[t]);
    }
    return again;
}

/* Produce the events due by now (the book spread evenly over the kill
 * phase). */
static void chaos_pump(chaos_t *c)
{
    size_t due = (size_t)((kh_now_s() - c->t0) / c->per) + 1;
    size_t share = c->ev->n * (size_t)(c->kill + 2) / (size_t)c->kills;
    if (due > share)
        due = share; /* keep some input for every kill */
    if (due > c->ev->n)
        due = c->ev->n;
    if (due > c->next) {
        produce_range(c->prod, c->ev, c->next, due);
        c->next = due;
    }
    rd_kafka_poll(c->prod, 0);
}

/* Journal checks on the deduplicated records: per contract the entry
 * sequence is 1..n without a gap. Prints every duplicated entry_id. */
static void check_sequences(const kh_recs_t *all, const kh_recs_t *uniq)
{
    json_t *max = json_object(), *copies = json_object();
    size_t n_ids = 0;
    for (size_t i = 0; i < uniq->n; i++) {
        const char *id = kh_hdr(&uniq->v[i], "entry_id");
        const char *hash = strrchr(id, '#');
        cr_assert_not_null(hash, "entry_id %s has no #seq", id);
        char contract[RS_ID_MAX];
        snprintf(contract, sizeof contract, "%.*s", (int)(hash - id), id);
        long seq = strtol(hash + 1, NULL, 10);
        json_t *m = json_object_get(max, contract);
        if (m == NULL || json_integer_value(m) < seq)
            json_object_set_new(max, contract, json_integer(seq));
        n_ids++;
    }
    const char *k;
    json_t *v;
    size_t expect = 0;
    json_object_foreach(max, k, v) expect += (size_t)json_integer_value(v);
    cr_assert_eq(n_ids, expect,
                 "%zu distinct entry ids, but the contracts' highest sequence numbers add up "
                 "to %zu: entries are missing",
                 n_ids, expect);
    for (size_t i = 0; i < all->n; i++) {
        const char *id = kh_hdr(&all->v[i], "entry_id");
        json_t *n = json_object_get(copies, id);
        json_object_set_new(copies, id, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    size_t printed = 0;
    json_object_foreach(copies, k, v) if (json_integer_value(v) > 1 && printed++ < 500)
        fprintf(stderr, "chaos: duplicate entry_id=%s copies=%lld\n", k,
                (long long)json_integer_value(v));
    json_decref(max);
    json_decref(copies);
}

/* Every dead letter is a usage event of a contract the book cancels. */
static void check_dead_letters(const kh_recs_t *dlq, const kh_events_t *ev)
{
    for (size_t i = 0; i < dlq->n; i++) {
        const kh_rec_t *r = &dlq->v[i];
        cr_assert_str_eq(kh_hdr(r, "source.topic"), "usage", "dead letter: %s",
                         kh_hdr(r, "error"));
        int cancelled = 0;
        for (size_t k = 0; k < ev->n && !cancelled; k++)
            cancelled = r->key != NULL && strcmp(ev->v[k].contract_id, r->key) == 0 &&
                        strstr(ev->v[k].json, "\"contract.cancelled\"") != NULL;
        cr_assert(cancelled, "dead letter of %s, which is not cancelled: %s",
                  r->key ? r->key : "(no key)", kh_hdr(r, "error"));
    }
}

Test(chaos, sigkill_restore_errors_and_leader_moves_equal_replay, .timeout = 1800)
{
    chaos_t c;
    char err[512];
    kh_events_t ev = {0};
    memset(&c, 0, sizeof c);

    uint64_t seed = (uint64_t)env_long("RS_CHAOS_SEED", 0);
    if (seed == 0)
        seed = (uint64_t)time(NULL) % 1000000 + 1;
    long kills = env_long("RS_CHAOS_KILLS", CHAOS_DEFAULT_KILLS);
    long contracts = env_long("RS_CHAOS_CONTRACTS", 120);
    c.nslots = (int)env_long("RS_CHAOS_WORKERS", 3);
    int verbose = env_long("RS_CHAOS_VERBOSE", 0) > 0;
    cr_assert(c.nslots >= 1 && c.nslots <= CHAOS_MAX_SLOTS, "RS_CHAOS_WORKERS: 1..%d",
              CHAOS_MAX_SLOTS);
    c.rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    fprintf(stderr,
            "chaos: seed=%llu kills=%ld workers=%d contracts=%ld; repeat this schedule with: "
            "RS_CHAOS_SEED=%llu RS_CHAOS_KILLS=%ld RS_CHAOS_WORKERS=%d RS_CHAOS_CONTRACTS=%ld "
            "build/test_chaos --filter 'chaos/*'\n",
            (unsigned long long)seed, kills, c.nslots, contracts, (unsigned long long)seed,
            kills, c.nslots, contracts);

    rs_mockbroker_opts_t mo = {3, KH_NPARTS};
    cr_assert_eq(rs_mockbroker_new(&c.mb, &mo, err, sizeof err), 0, "%s", err);
    c.bs = rs_mockbroker_bootstraps(c.mb);
    c.cl = rs_mockbroker_cluster(c.mb);
    kh_gen_book(&ev, (int)contracts);
    c.prod = chaos_producer(c.bs);
    c.ev = &ev;
    c.t0 = kh_now_s();
    /* the book spread over RS_CHAOS_PACE_MS (default 800) per kill at most, and
     * never more than one kill ahead */
    c.per = (double)kills * (double)env_long("RS_CHAOS_PACE_MS", 800) / 1000.0 / (double)ev.n;
    double t0 = c.t0;
    for (int i = 0; i < c.nslots; i++) {
        slot_init(&c, &c.slot[i], 0);
        slot_start(&c, &c.slot[i]);
        fprintf(stderr, "chaos: worker slot %d in %s\n", i, c.slot[i].w.dir);
    }
    c.kills = kills;
    for (long k = 0; k < kills; k++) {
        c.kill = k;
        chaos_pump(&c);
        chaos_faults(&c, (int)k);
        /* an armed worker that already killed itself counts as this kill */
        slot_t *s = &c.slot[rnd(&c, (uint64_t)c.nslots)];
        for (int i = 0; i < c.nslots; i++) {
            int status;
            if (c.slot[i].pid > 0 &&
                waitpid(c.slot[i].pid, &status, WNOHANG) == c.slot[i].pid) {
                slot_reaped(&c.slot[i], status);
                cr_assert_geq(c.slot[i].armed, 0, "an unarmed worker died");
                c.slot[i].pid = 0; /* reaped: counted below */
                s = &c.slot[i];
                break;
            }
        }
        if (s->pid == 0) {
            c.kills_hook[s->armed]++;
            s->pid = -1;
        } else {
            slot_kill(&c, s);
        }
        int del = rnd(&c, 4) == 0;
        if (del) {
            kh_rm_rf(s->w.state);
            c.deleted++;
        }
        if (verbose)
            fprintf(stderr, "chaos: t=%.1fs kill %ld slot %d%s%s, %zu/%zu events produced\n",
                    kh_now_s() - t0, k + 1, (int)(s - c.slot),
                    s->armed >= 0 ? " by its hook at " : " from outside",
                    s->armed >= 0 ? point_names[s->armed] : "", c.next, ev.n);
        slot_start(&c, s);
    }
    rd_kafka_t *prod = c.prod;
    produce_range(prod, &ev, c.next, ev.n);
    kh_flush_ok(prod);
    chaos_clear_faults(&c);
    double t_kills = kh_now_s() - t0;
    size_t input_again = make_input_whole(c.bs, prod, &ev);

    /* the closes, then the end: SIGTERM the live slots (an armed one may
     * still kill itself on the way out), one worker finishes the input */
    kh_produce_events(prod, &ev, 0, 1, NULL);
    rd_kafka_destroy(prod);
    for (int i = 0; i < c.nslots; i++) {
        int status = 0;
        kill(c.slot[i].pid, SIGTERM);
        status = kh_wait_exit(c.slot[i].pid, KH_DEADLINE_S, c.slot[i].w.log);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) {
            /* a worker started just before has not blocked SIGTERM yet
             * (cmd_worker.c does that first thing): then it dies of it,
             * before it ran anything */
            char *l = kh_slurp(c.slot[i].w.log);
            cr_assert_null(strstr(l + c.slot[i].mark, "worker: running"),
                           "a running worker died of SIGTERM:\n%s", l + c.slot[i].mark);
            free(l);
        } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            slot_reaped(&c.slot[i], status);
        }
    }
    slot_t fin;
    slot_init(&c, &fin, 1);
    kh_rm_rf(fin.w.state);
    kh_worker_run_idle(&fin.w, NULL);

    /* the input survived the faults: every event once */
    kh_recs_t in[4];
    kh_read_topics(c.bs, kh_in_topics, 4, in);
    for (int t = 0; t < 4; t++) {
        size_t expect = 0;
        for (size_t i = 0; i < ev.n; i++)
            expect += ev.v[i].is_close ? (t == 0 ? KH_NPARTS : 0) : ev.v[i].topic == t;
        if (in[t].n != expect) { /* where the records are missing, before failing */
            rd_kafka_t *probe = kh_new_consumer(c.bs, "rs-test-probe");
            for (int32_t p = 0; p < KH_NPARTS; p++) {
                int64_t lo = 0, hi = 0;
                size_t got = 0;
                rd_kafka_query_watermark_offsets(probe, kh_in_topics[t], p, &lo, &hi, 10000);
                for (size_t i = 0; i < in[t].n; i++)
                    got += in[t].v[i].partition == p;
                fprintf(stderr, "chaos: %s [%d] watermarks %lld..%lld, %zu records read\n",
                        kh_in_topics[t], (int)p, (long long)lo, (long long)hi, got);
            }
            rd_kafka_destroy(probe);
        }
        cr_assert_eq(in[t].n, expect, "%s holds %zu records, %zu were produced",
                     kh_in_topics[t], in[t].n, expect);
        kh_recs_free(&in[t]);
    }

    static const char *const outs_t[3] = {"revenue.journal", "revenue.deferred-balances",
                                          "revenue.dlq"};
    kh_recs_t outs[3], uniq;
    rs_journal_t j;
    char dir[64];
    kh_read_topics(c.bs, outs_t, 3, outs);
    size_t dups = kh_dedup_journal(&outs[0], &uniq); /* fails on two contents */
    check_sequences(&outs[0], &uniq);
    kh_journal_of(&uniq, 0, &j);
    kh_make_dir(dir, sizeof dir);
    json_t *rows = kh_replay_balances(&ev, dir, "2026-06");
    kh_check_journal_balances(&ev, &j, rows);
    kh_check_snapshots(&outs[1], 0, rows);
    check_dead_letters(&outs[2], &ev);

    long restored = 0;
    for (int i = 0; i < c.nslots; i++) {
        char *l = kh_slurp(c.slot[i].w.log);
        restored += kh_log_sum(l, "worker: restored ", "records");
        free(l);
    }
    int hook = 0;
    for (int p = 0; p < CHAOS_NPOINTS; p++)
        hook += c.kills_hook[p];
    fprintf(stderr,
            "chaos: seed=%llu kills=%d (external %d, hook %d: planned %d mid_batch %d "
            "delivered %d changelog %d state_write %d committed %d; armed but not reached "
            "%d) state_dirs_deleted=%d starts=%d restored_records=%ld leader_moves=%d "
            "injected_errors=%d journal_records=%zu distinct_entries=%zu duplicates=%zu "
            "dead_letters=%zu input_produced_again=%zu kill_phase_s=%.0f\n",
            (unsigned long long)seed, c.kills_external + hook, c.kills_external, hook,
            c.kills_hook[0], c.kills_hook[1], c.kills_hook[2], c.kills_hook[3], c.kills_hook[4],
            c.kills_hook[5], c.hook_timeouts, c.deleted, c.starts, restored, c.leader_moves,
            c.errors, outs[0].n, uniq.n, dups, outs[2].n, input_again, t_kills);
    cr_assert_geq(c.kills_external + hook, kills);

    json_decref(rows);
    rs_journal_free(&j);
    free(uniq.v);
    for (int t = 0; t < 3; t++)
        kh_recs_free(&outs[t]);
    kh_rm_rf(dir);
    for (int i = 0; i < c.nslots; i++)
        kh_rm_rf(c.slot[i].w.dir);
    kh_rm_rf(fin.w.dir);
    kh_ev_free(&ev);
    rs_mockbroker_destroy(c.mb);
}
