/*
 * test_worker_codes — `revstream worker` with `policy.file` puts the
 * policy's account codes on the journal topic, as `revstream replay
 * --policy` prints them.
 *
 * What is checked, for Avro and for JSON output (the sample book, all four
 * topics produced at once, examples/policy.properties with its per-product
 * override account.revenue.Onboarding = 4100):
 *   - every posting line on the topic carries its role, its code and the
 *     entry's product, and the code is rs_policy_account_code(policy, role,
 *     product) (so Onboarding revenue is 4100, other revenue 4000);
 *   - the journal on the topic and `replay --policy ... --report journal`
 *     agree per account code and currency: the net (debit - credit) of
 *     every code is the same (entries may differ with the interleaving of
 *     the topics; what each code holds at the end may not);
 *   - every entry of the topic that replay also has (same entry_id, same
 *     role and amounts) prints the same account codes.
 *   - examples/consumer/journal_consumer (the example of docs/consumers.md)
 *     reads the topic (Avro or JSON) in its consumer group and posts every
 *     entry once, each balanced.
 *   - The round trip of issue 15: `revstream export --config` with the
 *     worker's own config file reads the journal topic (Avro or JSON) and writes the files
 *     of every system for every month 2026-01..2026-06 (per entry, and a
 *     summary); every file re-balances and the revenue accounts in them
 *     net, per currency, to that month's recognized figure of the waterfall
 *     of the topic's journal (rs_report_waterfall, what `revstream report`
 *     prints from the topic; replay's waterfall can put some of it in
 *     another month when the topics arrive interleaved, so the test only
 *     logs how many months agree with replay's).
 *
 * Ownership: each test frees what it creates; temp dirs are removed at the
 * end of a passing test.
 */
#define _POSIX_C_SOURCE 200809L

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rs_export_check.h"
#include "rs_kafka_harness.h"
#include "rs_mockbroker.h"
#include "rs_report.h"
#include "rs_test_util.h"

#define POLICY_FILE RS_SOURCE_DIR "/examples/policy.properties"

static rs_money_t minor(const char *s, int exponent)
{
    rs_decimal_t d;
    rs_money_t m;
    char why[128];
    cr_assert_eq(rs_decimal_parse(s, &d, why, sizeof why), 0, "%s: %s", s, why);
    cr_assert_eq(rs_decimal_to_minor(d, exponent, &m, why, sizeof why), 0, "%s: %s", s, why);
    return m;
}

/* net[code/currency] += debit - credit */
static void add_net(json_t *net, const char *code, const char *currency, rs_money_t v)
{
    char key[96];
    snprintf(key, sizeof key, "%s/%s", code, currency);
    json_t *cur = json_object_get(net, key);
    json_object_set_new(net, key, json_integer((cur ? json_integer_value(cur) : 0) + v));
}

/* The worker's journal through `revstream export --config` for every
 * system and month: files balance, revenue ties to the topic's entries. */
static void export_round_trip(const kh_worker_t *w, const rs_journal_t *j,
                              const kh_events_t *events)
{
    static const char *const SYSTEMS[] = {"quickbooks", "xero",         "netsuite",
                                          "freee",      "moneyforward", "csv"};
    static const char *const CURS[] = {"USD", "JPY"};
    const char *const *codes = xc_revenue_codes(POLICY_FILE);
    json_t *wf = kh_replay_report(events, w->dir, "2026-06", "waterfall", POLICY_FILE);
    size_t files = 0, same_as_replay = 0;
    /* the waterfall of the topic's journal (what `revstream report` prints
     * from it), with the line views of an engine that saw the same events */
    rs_harness_t h;
    rs_waterfall_row_t *topic_wf = NULL;
    size_t n_wf = 0;
    rs_harness_init(&h, NULL);
    for (size_t i = 0; i < events->n; i++)
        rs_harness_apply(&h, events->v[i].json);
    cr_assert_eq(rs_report_waterfall(h.engine, j, kh_period_of("2026-06"), &topic_wf, &n_wf),
                 0);
    for (int m = 1; m <= 6; m++) {
        char period[8];
        snprintf(period, sizeof period, "2026-%02d", m);
        for (size_t s = 0; s < sizeof SYSTEMS / sizeof *SYSTEMS; s++)
            for (int c = 0; c < 2; c++) {
                int jpy_only =
                    strcmp(SYSTEMS[s], "freee") == 0 || strcmp(SYSTEMS[s], "moneyforward") == 0;
                if (jpy_only && c == 0)
                    continue;
                int summary = strcmp(SYSTEMS[s], "csv") == 0 && m % 2 == 0;
                const char *a[] = {"--to",
                                   SYSTEMS[s],
                                   "--period",
                                   period,
                                   "--currency",
                                   CURS[c],
                                   "--config",
                                   w->cfg,
                                   "--out",
                                   w->dir,
                                   summary ? "--summary" : NULL,
                                   NULL};
                json_t *out = xc_export(a, w->dir);
                json_t *rev = json_object();
                for (size_t i = 0; i < json_array_size(out); i++) {
                    size_t rows;
                    const char *path = json_string_value(json_array_get(out, i));
                    xc_check_file(SYSTEMS[s], path, CURS[c], codes, rev, &rows);
                    unlink(path);
                    files++;
                }
                rs_money_t want = 0, replay = 0, posted = 0;
                for (size_t i = 0; i < j->n; i++)
                    if (kh_period_of(period) == j->entries[i].period &&
                        strcmp(j->entries[i].currency, CURS[c]) == 0)
                        posted += j->entries[i].recognized;
                for (size_t r = 0; r < n_wf; r++)
                    if (topic_wf[r].period == kh_period_of(period) && !topic_wf[r].projected &&
                        strcmp(topic_wf[r].currency, CURS[c]) == 0)
                        want = topic_wf[r].recognized;
                cr_assert_eq(want, posted, "%s %s: the waterfall is what the entries post",
                             period, CURS[c]);
                for (size_t r = 0; r < json_array_size(wf); r++) {
                    json_t *row = json_array_get(wf, r);
                    if (strcmp(kh_row_str(row, "period"), period) == 0 &&
                        strcmp(kh_row_str(row, "currency"), CURS[c]) == 0)
                        replay = xc_minor(kh_row_str(row, "recognized"),
                                          rs_currency_exponent(CURS[c]));
                }
                json_t *got = json_object_get(rev, CURS[c]);
                cr_assert_eq(got ? json_integer_value(got) : 0, want,
                             "%s %s %s: files %lld, waterfall %lld", SYSTEMS[s], period,
                             CURS[c], got ? (long long)json_integer_value(got) : 0LL,
                             (long long)want);
                same_as_replay += want == replay;
                json_decref(rev);
                json_decref(out);
            }
    }
    cr_log_info("export round trip: %zu files; %zu of 48 month/system/currency totals equal "
                "replay's waterfall",
                files, same_as_replay);
    cr_assert_geq(files, 48);
    free(topic_wf);
    rs_harness_free(&h);
    json_decref(wf);
}

/* examples/consumer/journal_consumer reads the topic: every entry once,
 * each balanced, with its codes. */
static void example_consumer(const kh_worker_t *w, const char *bs, const rs_journal_t *j)
{
    char out[160], err[160];
    snprintf(out, sizeof out, "%s/consumer.out", w->dir);
    snprintf(err, sizeof err, "%s/consumer.err", w->dir);
    char *argv[] = {"journal_consumer", "--bootstrap", (char *)bs, "--exit-at-end", NULL};
    int status =
        kh_wait_exit(kh_spawn_bin(RS_BINARY_DIR "/journal_consumer", argv, out, err, NULL),
                     KH_DEADLINE_S, err);
    char *log = kh_slurp(err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "journal_consumer: %s", log);
    char *text = kh_slurp(out);
    size_t entries = 0;
    for (const char *p = text; (p = strstr(p, "entry ")) != NULL; p++) {
        cr_assert(p == text || p[-1] == '\n');
        const char *eol = strchr(p, '\n');
        cr_assert_not_null(strstr(p, "balanced=yes"), "%.*s", (int)(eol - p), p);
        cr_assert(strstr(p, "balanced=yes") < eol, "%.*s", (int)(eol - p), p);
        entries++;
    }
    cr_assert_eq(entries, j->n, "the consumer posted %zu entries, the topic has %zu", entries,
                 j->n);
    cr_assert_not_null(strstr(text, " 4100 "), "Onboarding revenue's code is printed");
    free(text);
    free(log);
}

static void run(int avro)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t mo = {1, KH_NPARTS};
    char err[512], extra[512];
    kh_events_t events = {0};
    kh_worker_t w;
    rs_journal_t j;
    rs_avro_cache_t *cache = avro ? kh_input_cache() : NULL;
    static const char *const topics[1] = {"revenue.journal"};

    cr_assert_eq(rs_mockbroker_new(&mb, &mo, err, sizeof err), 0, "%s", err);
    const char *bs = rs_mockbroker_bootstraps(mb);
    kh_load_sample(&events, 1);
    snprintf(extra, sizeof extra,
             "exit.when.idle=true\ninput.format=%s\noutput.format=%s\npolicy.file=%s\n",
             avro ? "avro" : "json", avro ? "avro" : "json", POLICY_FILE);
    kh_worker_init(&w, bs, avro ? "g-codes-avro" : "g-codes-json", extra);
    rd_kafka_t *p = kh_new_producer(bs);
    kh_produce_events(p, &events, -1, -1, cache);
    rd_kafka_destroy(p);
    kh_worker_run_idle(&w, NULL);

    kh_recs_t journal;
    kh_read_topics(bs, topics, 1, &journal);
    cr_assert(journal.n > 50, "only %zu journal records", journal.n);
    kh_journal_of(&journal, avro, &j);

    rs_policy_t pol;
    rs_policy_defaults(&pol);
    char *ptext = kh_slurp(POLICY_FILE);
    cr_assert_eq(rs_policy_parse(&pol, ptext, err, sizeof err), 0, "%s", err);
    free(ptext);

    /* 1. every line carries role, code and product; the code is the policy's */
    json_t *net_topic = json_object(), *by_id = json_object();
    int onboarding = 0, other_revenue = 0;
    for (size_t i = 0; i < j.n; i++) {
        const rs_entry_t *e = &j.entries[i];
        for (int k = 0; k < e->n_postings; k++) {
            const rs_posting_t *q = &e->postings[k];
            cr_assert_str_eq(q->code, rs_policy_account_code(&pol, q->account, e->product),
                             "%s line %d (%s, product \"%s\")", e->entry_id, k,
                             rs_account_name(q->account), e->product);
            if (q->account == RS_ACCT_REVENUE && strcmp(e->product, "Onboarding") == 0)
                onboarding += strcmp(q->code, "4100") == 0;
            else if (q->account == RS_ACCT_REVENUE)
                other_revenue += strcmp(q->code, "4000") == 0;
            add_net(net_topic, q->code, e->currency, q->debit - q->credit);
        }
        if (e->line_id[0] != '\0')
            cr_assert_neq(e->product[0], '\0', "%s: a line's entry names its product",
                          e->entry_id);
        json_object_set_new(by_id, e->entry_id, json_integer((json_int_t)i));
    }
    cr_assert_gt(onboarding, 0, "Onboarding revenue posts to 4100");
    cr_assert_gt(other_revenue, 0, "other revenue posts to 4000");

    /* 2. the same net per code as replay --policy; 3. shared entries, same codes */
    json_t *rows = kh_replay_report(&events, w.dir, "2026-06", "journal", POLICY_FILE);
    json_t *net_replay = json_object();
    size_t shared = 0, compared = 0;
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        const char *cur = kh_row_str(row, "currency");
        int exp = rs_currency_exponent(cur);
        json_t *lines = json_object_get(row, "lines");
        for (size_t k = 0; k < json_array_size(lines); k++) {
            json_t *l = json_array_get(lines, k);
            add_net(net_replay, kh_row_str(l, "account"), cur,
                    minor(kh_row_str(l, "debit"), exp) - minor(kh_row_str(l, "credit"), exp));
        }
        json_t *at = json_object_get(by_id, kh_row_str(row, "entry_id"));
        if (at == NULL)
            continue;
        const rs_entry_t *e = &j.entries[json_integer_value(at)];
        int same = (size_t)e->n_postings == json_array_size(lines);
        for (int k = 0; same && k < e->n_postings; k++) {
            json_t *l = json_array_get(lines, (size_t)k);
            same =
                strcmp(kh_row_str(l, "role"), rs_account_name(e->postings[k].account)) == 0 &&
                minor(kh_row_str(l, "debit"), e->exponent) == e->postings[k].debit &&
                minor(kh_row_str(l, "credit"), e->exponent) == e->postings[k].credit;
        }
        shared++;
        if (!same)
            continue;
        compared++;
        for (int k = 0; k < e->n_postings; k++)
            cr_assert_str_eq(e->postings[k].code,
                             kh_row_str(json_array_get(lines, (size_t)k), "account"),
                             "%s line %d", e->entry_id, k);
    }
    cr_log_info("entries: topic %zu, replay %zu, same id %zu, same postings %zu", j.n,
                json_array_size(rows), shared, compared);
    cr_assert_gt(compared, 0, "no entry of the topic has replay's postings");
    const char *key;
    json_t *v;
    json_object_foreach(net_replay, key, v)
    {
        json_t *t = json_object_get(net_topic, key);
        cr_assert_eq(t ? json_integer_value(t) : 0, json_integer_value(v),
                     "net of %s: topic %lld, replay %lld", key,
                     t ? (long long)json_integer_value(t) : 0LL,
                     (long long)json_integer_value(v));
    }
    json_object_foreach(net_topic, key, v)
        cr_assert(json_integer_value(v) == 0 || json_object_get(net_replay, key) != NULL,
                  "%s only on the topic", key);
    cr_assert_not_null(json_object_get(net_replay, "4100/USD"));

    export_round_trip(&w, &j, &events);
    example_consumer(&w, bs, &j);

    json_decref(rows);
    json_decref(net_replay);
    json_decref(net_topic);
    json_decref(by_id);
    rs_journal_free(&j);
    kh_recs_free(&journal);
    kh_ev_free(&events);
    rs_avro_cache_destroy(cache);
    rs_mockbroker_destroy(mb);
    kh_rm_rf(w.dir);
}

Test(worker_codes, avro_journal_carries_the_policy_codes, .timeout = 120)
{
    run(1);
}

Test(worker_codes, json_journal_carries_the_policy_codes, .timeout = 120)
{
    run(0);
}
