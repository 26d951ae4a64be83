/*
 * journal_consumer.c — an example ledger-service consumer of the journal
 * topic (docs/consumers.md walks through it). Built by CMake with the rest
 * (build/journal_consumer), so it cannot rot.
 *
 *   journal_consumer --bootstrap HOST:PORT [--topic revenue.journal]
 *                    [--group ledger-example] [--exit-at-end]
 *
 * What it shows:
 *   - a consumer group on the journal topic, offsets committed only after
 *     an entry was handled (at-least-once: after a crash it sees some
 *     entries again);
 *   - decoding Avro (Confluent framing, any JournalEntry version) or JSON
 *     values with the codec (rs_codec.h);
 *   - idempotency by entry_id: an entry seen before is skipped (a real
 *     service keeps entry_id as a unique key in its database, in the same
 *     transaction as the entry's lines);
 *   - checking that every entry balances before posting it, and printing
 *     its lines with role, account code and product.
 *
 * Invariants: one line of output per new entry, "entry ID PERIOD CURRENCY
 * balanced=yes lines=N", then one line per posting; exit 0 at the end
 * (--exit-at-end: every assigned partition reached its end), 1 on error.
 *
 * Ownership: everything is freed before exit.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* A tiny set of the entry ids handled (a database's unique key). */
typedef struct seen {
    char **ids;
    size_t n, cap;
} seen_t;

static int seen_add(seen_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        char **ids = realloc(s->ids, cap * sizeof(*ids));
        if (ids == NULL)
            return -1;
        s->ids = ids;
        s->cap = cap;
    }
    if ((s->ids[s->n] = strdup(id)) == NULL)
        return -1;
    s->n++;
    return 1;
}

/* Print an entry that balances; -1 if it does not. */
static int post(const rs_entry_t *e)
{
    rs_money_t dr = 0, cr = 0;
    char period[16], a[48], b[48];
    for (int i = 0; i < e->n_postings; i++) {
        dr += e->postings[i].debit;
        cr += e->postings[i].credit;
    }
    rs_period_format(e->period, period, sizeof period);
    printf("entry %s %s %s balanced=%s lines=%d\n", e->entry_id, period, e->currency,
           dr == cr ? "yes" : "no", e->n_postings);
    for (int i = 0; i < e->n_postings; i++) {
        const rs_posting_t *p = &e->postings[i];
        printf("  %-22s %-10s %12s %12s  %s\n", rs_account_name(p->account),
               p->code[0] ? p->code : "-", rs_money_format(p->debit, e->exponent, a, sizeof a),
               rs_money_format(p->credit, e->exponent, b, sizeof b), e->product);
    }
    return dr == cr ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = "revenue.journal", *group = "ledger-example";
    int exit_at_end = 0, c, rc = 1;
    static const struct option opts[] = {{"bootstrap", required_argument, NULL, 'b'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"group", required_argument, NULL, 'g'},
                                         {"exit-at-end", no_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    while ((c = getopt_long(argc, argv, "b:t:g:e", opts, NULL)) != -1) {
        if (c == 'b')
            bootstrap = optarg;
        else if (c == 't')
            topic = optarg;
        else if (c == 'g')
            group = optarg;
        else if (c == 'e')
            exit_at_end = 1;
        else
            return 1;
    }
    if (bootstrap == NULL) {
        fprintf(stderr, "usage: journal_consumer --bootstrap HOST:PORT [--topic T] "
                        "[--group G] [--exit-at-end]\n");
        return 1;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof err) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err)) {
        fprintf(stderr, "journal_consumer: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "journal_consumer: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rs_entry_reader_t *rd = NULL;
    seen_t seen = {0};
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    if (rs_entry_reader_new(&rd, err, sizeof err) != 0 || rd_kafka_subscribe(rk, subs) != 0) {
        fprintf(stderr, "journal_consumer: %s\n", rd ? "subscribe failed" : err);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int at_end = 0, idle = 0;
    long dup = 0;
    while (!stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            /* --exit-at-end: every assigned partition reached its end */
            rd_kafka_topic_partition_list_t *as = NULL;
            if (exit_at_end && rd_kafka_assignment(rk, &as) == 0) {
                int n = as->cnt;
                rd_kafka_topic_partition_list_destroy(as);
                if (n > 0 && at_end >= n && ++idle > 5)
                    break;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            at_end++;
        } else if (m->err) {
            fprintf(stderr, "journal_consumer: %s\n", rd_kafka_message_errstr(m));
        } else {
            rs_entry_t e;
            int r = m->len > 0 && ((const char *)m->payload)[0] == '{'
                        ? rs_codec_entry_from_json(m->payload, m->len, &e, err, sizeof err)
                        : rs_codec_entry_from_avro(rd, m->payload, m->len, &e, err, sizeof err);
            if (r != 0) {
                /* a real service would park it (its own dead-letter table) */
                fprintf(stderr, "journal_consumer: partition %d offset %lld: %s\n",
                        m->partition, (long long)m->offset, err);
            } else {
                int isnew = seen_add(&seen, e.entry_id);
                if (isnew < 0 || (isnew == 1 && post(&e) != 0)) {
                    fprintf(stderr, "journal_consumer: entry %s not posted\n", e.entry_id);
                    rd_kafka_message_destroy(m);
                    goto out;
                }
                dup += isnew == 0;
            }
            /* handled: only now may the offset move past it */
            rd_kafka_commit_message(rk, m, 0);
        }
        rd_kafka_message_destroy(m);
    }
    fprintf(stderr, "journal_consumer: entries=%zu duplicates=%ld\n", seen.n, dup);
    rc = 0;
out:
    rd_kafka_consumer_close(rk);
    rd_kafka_topic_partition_list_destroy(subs);
    rd_kafka_destroy(rk);
    rs_entry_reader_destroy(rd);
    for (size_t i = 0; i < seen.n; i++)
        free(seen.ids[i]);
    free(seen.ids);
    return rc;
}
