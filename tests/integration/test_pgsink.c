/*
 * test_pgsink — `revstream sink` against a real PostgreSQL server (Debian's
 * postgresql-15, started by the test on a Unix socket in a temp dir) and the
 * embedded Kafka broker.
 *
 * What is checked:
 *   - The sample book goes through a worker (Avro in and out); the sink,
 *     with small batches, is SIGKILLed as soon as its first batches are
 *     committed (mid-stream: the test asserts that part of the topics was not
 *     yet stored), then restarted to the end. Then:
 *       - the entries table equals the journal topic deduplicated by
 *         entry_id (every id, its content, its lines);
 *       - the entries and their lines equal `revstream replay`'s journal of
 *         the same input entry for entry (`revstream produce` stamps records
 *         with event time, so the worker applies them in the file's order),
 *         and the per-line balances (from the entries, and the latest
 *         snapshots in rs_deferred_balances) equal replay's balances;
 *       - the stored offsets are the topics' ends, and the sample's one bad
 *         event is the one dead letter.
 *   - Idempotency: a redelivered record (same bytes) is a duplicate and
 *     changes nothing; a record with an existing entry_id and different
 *     content is not applied and is recorded in rs_sink_conflicts (and
 *     logged); undecodable bytes land in rs_sink_errors and the sink goes on.
 *
 * The PostgreSQL server runs as `nobody` (runuser) when the test runs as
 * root, since initdb refuses root. Without /usr/lib/postgresql/15/bin the
 * test is skipped with a message saying what to install.
 *
 * Ownership: the test stops its server and removes its temp dirs (kept when
 * RS_TEST_KEEP=1).
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_test_util.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"

static const char *const out_topics[3] = {"revenue.journal", "revenue.deferred-balances",
                                          "revenue.dlq"};

typedef struct pg {
    char dir[64];
    char url[256];
    int port;
} pg_t;

/* Runs a command (as nobody when root); returns its exit status. */
static int run_cmd(const char *cmd)
{
    char full[1024];
    if (geteuid() == 0)
        snprintf(full, sizeof full, "runuser -u nobody -- %s", cmd);
    else
        snprintf(full, sizeof full, "%s", cmd);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void pg_start(pg_t *pg)
{
    char cmd[768];
    if (access(PG_BIN "/initdb", X_OK) != 0)
        cr_skip_test("PostgreSQL 15 server not installed (" PG_BIN "/initdb): "
                     "run scripts/setup-deps.sh (apt-get install postgresql)");
    kh_make_dir(pg->dir, sizeof pg->dir);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (pw == NULL || access("/usr/sbin/runuser", X_OK) != 0)
            cr_skip_test("running as root without a `nobody` user or runuser: initdb refuses "
                         "root");
        cr_assert_eq(chown(pg->dir, pw->pw_uid, pw->pw_gid), 0, "chown: %s", strerror(errno));
    }
    pg->port = kh_free_port();
    snprintf(cmd, sizeof cmd,
             PG_BIN "/initdb -D %s/data -A trust -U postgres --no-sync >%s/initdb.log 2>&1",
             pg->dir, pg->dir);
    cr_assert_eq(run_cmd(cmd), 0, "initdb failed (see %s/initdb.log)", pg->dir);
    snprintf(cmd, sizeof cmd,
             PG_BIN "/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \"-k %s -p %d "
                    "-c listen_addresses= -c fsync=off\" start >/dev/null",
             pg->dir, pg->dir, pg->dir, pg->port);
    cr_assert_eq(run_cmd(cmd), 0, "pg_ctl start failed (see %s/server.log)", pg->dir);
    snprintf(pg->url, sizeof pg->url, "postgresql:///postgres?host=%s&port=%d&user=postgres",
             pg->dir, pg->port);
}

static void pg_stop(pg_t *pg)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, PG_BIN "/pg_ctl -D %s/data -m immediate -w stop >/dev/null",
             pg->dir);
    run_cmd(cmd);
    kh_rm_rf(pg->dir);
}

static PGconn *pg_connect(const pg_t *pg)
{
    PGconn *c = PQconnectdb(pg->url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

/* One query's result (tuples expected); caller PQclear()s. */
static PGresult *q(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    return r;
}

static long q_long(PGconn *c, const char *sql)
{
    PGresult *r = q(c, sql);
    long v = PQgetisnull(r, 0, 0) ? 0 : strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static pid_t sink_start(const char *url, const kh_worker_t *w, const char *extra, int idle)
{
    char *argv[10] = {"revstream",    "sink", "--postgres", (char *)url, "--config",
                      (char *)w->cfg, NULL,   NULL,         NULL,        NULL};
    int k = 6;
    if (extra) {
        argv[k++] = "--batch-records";
        argv[k++] = (char *)extra;
    }
    if (idle)
        argv[k++] = "--exit-when-idle";
    char out[160], log[160];
    snprintf(out, sizeof out, "%s/sink.out", w->dir);
    snprintf(log, sizeof log, "%s/sink.log", w->dir);
    return kh_spawn(argv, out, log, NULL);
}

static void sink_run_idle(const char *url, const kh_worker_t *w, const char *batch)
{
    char log[160];
    snprintf(log, sizeof log, "%s/sink.log", w->dir);
    kh_assert_exit0(kh_wait_exit(sink_start(url, w, batch, 1), KH_DEADLINE_S, log), log);
}
/* `revstream replay --report journal --format json` of the events. */
static json_t *replay_journal(const kh_events_t *ev, const char *dir)
{
    char path[160], out[160], err[160];
    snprintf(path, sizeof path, "%s/events-j.jsonl", dir);
    snprintf(out, sizeof out, "%s/replay-j.out", dir);
    snprintf(err, sizeof err, "%s/replay-j.err", dir);
    kh_ev_write(ev, path);
    char *argv[] = {"revstream", "replay",  path,       "--through", "2026-06",
                    "--report",  "journal", "--format", "json",      NULL};
    int status = kh_wait_exit(kh_spawn(argv, out, err, NULL), KH_DEADLINE_S, err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) <= 2, "replay failed");
    char *text = kh_slurp(out);
    json_t *rows = json_loads(text, 0, NULL);
    free(text);
    cr_assert(json_is_array(rows));
    return rows;
}

/* The entries and lines tables equal the replay journal entry for entry:
 * the same ids, and for each its period, kind, line and postings. */
static void check_entries_vs_replay(PGconn *c, json_t *rj)
{
    PGresult *r =
        q(c, "SELECT e.entry_id, e.period || '|' || e.kind || '|' || e.line_id || '|' "
             "|| string_agg(l.account || ':' || l.debit || ':' || l.credit, ',' "
             "ORDER BY l.line_no) FROM rs_journal_entries e JOIN rs_journal_lines l "
             "USING (entry_id) GROUP BY e.entry_id, e.period, e.kind, e.line_id");
    json_t *db = json_object();
    for (int row = 0; row < PQntuples(r); row++)
        json_object_set_new(db, PQgetvalue(r, row, 0), json_string(PQgetvalue(r, row, 1)));
    PQclear(r);
    cr_assert_eq(json_object_size(db), json_array_size(rj),
                 "%zu entries in the database, replay has %zu", json_object_size(db),
                 json_array_size(rj));
    size_t i, k;
    json_t *e, *l;
    json_array_foreach(rj, i, e)
    {
        char want[2048];
        int n = snprintf(want, sizeof want, "%s|%s|%s|",
                         json_string_value(json_object_get(e, "period")),
                         json_string_value(json_object_get(e, "kind")),
                         json_string_value(json_object_get(e, "line_id")));
        json_array_foreach(json_object_get(e, "lines"), k, l)
        {
            n += snprintf(want + n, sizeof want - (size_t)n, "%s%s:%lld:%lld", k ? "," : "",
                          json_string_value(json_object_get(l, "account")),
                          (long long)rs_minor(json_string_value(json_object_get(l, "debit"))),
                          (long long)rs_minor(json_string_value(json_object_get(l, "credit"))));
        }
        const char *id = json_string_value(json_object_get(e, "entry_id"));
        const char *got = json_string_value(json_object_get(db, id));
        cr_assert_not_null(got, "replay's entry %s is not in the database", id);
        cr_assert_str_eq(got, want, "entry %s: database %s, replay %s", id, got, want);
    }
    json_decref(db);
}

/* The latest snapshot per line, and the sums of the entries per line, equal
 * replay's balance rows. */
static void check_balances_vs_replay(PGconn *c, json_t *rows)
{
    static const char *const keys[5] = {"billed", "recognized", "deferred", "unbilled",
                                        "received"};
    PGresult *snap =
        q(c, "SELECT contract_id, line_id, exponent, billed, recognized, deferred, "
             "unbilled, received FROM rs_deferred_balances WHERE scope = 'line' "
             "ORDER BY contract_id, line_id");
    PGresult *sums = q(c, "SELECT contract_id, line_id, max(exponent), sum(billed), "
                          "sum(recognized), greatest(0, sum(billed) - sum(recognized)), "
                          "greatest(0, sum(recognized) - sum(billed)) FROM rs_journal_entries "
                          "WHERE line_id <> '' GROUP BY 1, 2 ORDER BY 1, 2");
    cr_assert_eq((size_t)PQntuples(snap), json_array_size(rows),
                 "%d line snapshots stored, replay has %zu lines", PQntuples(snap),
                 json_array_size(rows));
    size_t i;
    json_t *row;
    int matched = 0;
    json_array_foreach(rows, i, row)
    {
        const char *cid = kh_row_str(row, "contract_id"), *lid = kh_row_str(row, "line_id");
        cr_assert_str_eq(PQgetvalue(snap, (int)i, 0), cid);
        cr_assert_str_eq(PQgetvalue(snap, (int)i, 1), lid);
        int ex = atoi(PQgetvalue(snap, (int)i, 2));
        for (int k = 0; k < 5; k++) {
            char m[48];
            rs_money_format(strtoll(PQgetvalue(snap, (int)i, 3 + k), NULL, 10), ex, m,
                            sizeof m);
            cr_assert_str_eq(m, kh_row_str(row, keys[k]), "snapshot %s/%s %s: %s, replay %s",
                             cid, lid, keys[k], m, kh_row_str(row, keys[k]));
        }
        for (int s = 0; s < PQntuples(sums); s++) {
            if (strcmp(PQgetvalue(sums, s, 0), cid) || strcmp(PQgetvalue(sums, s, 1), lid))
                continue;
            for (int k = 0; k < 4; k++) {
                char m[48];
                rs_money_format(strtoll(PQgetvalue(sums, s, 3 + k), NULL, 10), ex, m, sizeof m);
                cr_assert_str_eq(m, kh_row_str(row, keys[k]),
                                 "entries of %s/%s %s: %s, replay %s", cid, lid, keys[k], m,
                                 kh_row_str(row, keys[k]));
            }
            matched++;
        }
    }
    cr_assert_eq(matched, PQntuples(sums), "entries name lines replay does not have");
    PQclear(snap);
    PQclear(sums);
}

/* The entries table holds exactly the deduplicated journal topic. */
static void check_entries_vs_topic(PGconn *c, const kh_recs_t *journal)
{
    kh_recs_t uniq;
    rs_journal_t j;
    kh_dedup_journal(journal, &uniq);
    kh_journal_of(&uniq, 1, &j);
    cr_assert_eq(q_long(c, "SELECT count(*) FROM rs_journal_entries"), (long)j.n,
                 "entries stored != distinct entry ids on the topic");
    long postings = 0;
    for (size_t i = 0; i < j.n; i++) {
        char *json = rs_codec_entry_json(&j.entries[i]);
        const char *v[2] = {j.entries[i].entry_id, json};
        PGresult *r = PQexecParams(c,
                                   "SELECT content = $2::jsonb FROM rs_journal_entries "
                                   "WHERE entry_id = $1",
                                   2, NULL, v, NULL, NULL, 0);
        cr_assert_eq(PQntuples(r), 1, "entry %s not stored", j.entries[i].entry_id);
        cr_assert_str_eq(PQgetvalue(r, 0, 0), "t", "entry %s stored with other content",
                         j.entries[i].entry_id);
        PQclear(r);
        free(json);
        postings += j.entries[i].n_postings;
    }
    cr_assert_eq(q_long(c, "SELECT count(*) FROM rs_journal_lines"), postings);
    cr_assert_eq(q_long(c, "SELECT count(*) FROM (SELECT entry_id FROM rs_journal_lines "
                           "GROUP BY 1 HAVING sum(debit) <> sum(credit)) x"),
                 0, "an unbalanced entry");
    rs_journal_free(&j);
    free(uniq.v);
}

Test(pgsink, sigkill_mid_stream_then_tables_equal_replay, .timeout = 240)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512];
    kh_events_t events = {0};
    kh_worker_t w;
    pg_t pg;

    pg_start(&pg);
    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    kh_worker_init(&w, bs, "g-pgsink", "exit.when.idle=true\n");
    /* `revstream produce` stamps each record with its event's occurred_at, so
     * the worker's event-time merge applies the book in replay's order */
    char log[160], out[160];
    snprintf(log, sizeof log, "%s/sink.log", w.dir);
    kh_produce_cli(bs, &events, w.dir, w.log);
    kh_worker_run_idle(&w, NULL);
    rd_kafka_t *p = kh_new_producer(bs);

    char *init_argv[] = {"revstream", "sink", "--postgres", pg.url, "--init", NULL};
    snprintf(out, sizeof out, "%s/init.out", w.dir);
    kh_assert_exit0(kh_wait_exit(kh_spawn(init_argv, out, log, NULL), KH_DEADLINE_S, log), log);

    kh_recs_t outs[3];
    kh_read_topics(bs, out_topics, 3, outs);
    long total = (long)(outs[0].n + outs[1].n + outs[2].n);
    PGconn *c = pg_connect(&pg);

    /* batches of 3 records; SIGKILL once some are committed */
    pid_t ps = sink_start(pg.url, &w, "3", 0);
    long stored = 0;
    double deadline = kh_now_s() + KH_DEADLINE_S;
    while ((stored = q_long(c, "SELECT sum(next_offset) FROM rs_sink_offsets")) == 0 &&
           kh_now_s() < deadline)
        usleep(2000);
    kill(ps, SIGKILL);
    kh_wait_exit(ps, KH_DEADLINE_S, log);
    stored = q_long(c, "SELECT sum(next_offset) FROM rs_sink_offsets");
    cr_assert(stored > 0 && stored < total,
              "the kill was not mid-stream: %ld of %ld records stored", stored, total);

    sink_run_idle(pg.url, &w, "3");
    char *text = kh_slurp(log);
    cr_assert(strstr(text, "resumed_from_database=") != NULL);
    cr_assert_null(strstr(text, "sink: conflict"), "%s", text);
    free(text);

    /* offsets: every partition at its end */
    cr_assert_eq(q_long(c, "SELECT sum(next_offset) FROM rs_sink_offsets"), total);
    check_entries_vs_topic(c, &outs[0]);
    json_t *rj = replay_journal(&events, w.dir);
    check_entries_vs_replay(c, rj);
    json_decref(rj);
    json_t *rows = kh_replay_balances(&events, w.dir, "2026-06");
    check_balances_vs_replay(c, rows);
    json_decref(rows);
    cr_assert_eq(q_long(c, "SELECT count(*) FROM rs_dead_letters WHERE source_topic = "
                           "'payments' AND error LIKE '%3 minor digits%'"),
                 1);
    cr_assert_eq(q_long(c, "SELECT count(*) FROM rs_dead_letters"), (long)outs[2].n);

    /* idempotency: the same record again, a conflicting one, garbage */
    rs_entry_reader_t *rd = NULL;
    rs_entry_t e;
    kh_dr_t d[3] = {{0}};
    cr_assert_eq(rs_entry_reader_new(&rd, err, sizeof err), 0);
    const kh_rec_t *first = &outs[0].v[0];
    kh_entry_from_avro(rd, first, &e);
    kh_produce_one(p, "revenue.journal", first->partition, first->key, first->val, first->vlen,
                   &d[0]);
    e.postings[0].debit += 100;
    e.postings[1].credit += 100;
    char *changed = rs_codec_entry_json(&e);
    kh_produce_one(p, "revenue.journal", first->partition, first->key, changed, strlen(changed),
                   &d[1]);
    kh_produce_one(p, "revenue.deferred-balances", 0, "x", "\x00garbage", 8, &d[2]);
    kh_flush_ok(p);
    sink_run_idle(pg.url, &w, NULL);
    text = kh_slurp(log);
    char needle[200];
    snprintf(needle, sizeof needle, "sink: conflict entry_id=%s ", e.entry_id);
    cr_assert_not_null(strstr(text, needle), "%s", text);
    free(text);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM rs_sink_conflicts WHERE entry_id = '%s' AND "
             "stored <> received",
             e.entry_id);
    cr_assert_eq(q_long(c, sql), 1);
    cr_assert_eq(q_long(c, "SELECT count(*) FROM rs_sink_errors WHERE kafka_topic = "
                           "'revenue.deferred-balances'"),
                 1);
    /* nothing else moved: the tables still tie to replay */
    check_entries_vs_topic(c, &outs[0]);
    cr_assert_eq(q_long(c, "SELECT sum(next_offset) FROM rs_sink_offsets"), total + 3);

    free(changed);
    rs_entry_reader_destroy(rd);
    PQfinish(c);
    for (int i = 0; i < 3; i++)
        kh_recs_free(&outs[i]);
    rd_kafka_destroy(p);
    kh_ev_free(&events);
    rs_mockbroker_destroy(mb);
    pg_stop(&pg);
    kh_rm_rf(w.dir);
}
