/*
 * test_mockbroker.c — the embedded broker (rs_mockbroker) in-process, and
 * `revstream broker` as a child process that this test talks Kafka to.
 *
 * Invariants checked: all seven topics exist with the requested partition
 * count and replication min(3, brokers); a keyed message produced with
 * partitioner=murmur2_random lands on the partition Kafka's Java client
 * would pick (murmur2 computed independently here, checked against Kafka's
 * own test vectors) and is consumed back from it; the cluster handle works
 * for fault injection; the CLI writes its address atomically to the
 * bootstrap file and stdout, serves clients from another process (produce,
 * fetch, committed offsets), exits 0 on SIGTERM and removes the file.
 *
 * No timing is asserted. Waits have generous deadlines only so a broken
 * build fails instead of hanging. The child gets PR_SET_PDEATHSIG so a
 * failed assertion here never leaves a broker running.
 *
 * Ownership: each test creates and destroys its own cluster, clients,
 * child process and temporary directory.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rs_mockbroker.h"

#define DEADLINE_S 60

/* ---------- Kafka's murmur2 (org.apache.kafka.common.utils.Utils) ---------- */

static int32_t murmur2(const void *data, size_t len)
{
    const unsigned char *p = data;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t i, n4 = len / 4;

    for (i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)p[i * 4] | (uint32_t)p[i * 4 + 1] << 8 |
                     (uint32_t)p[i * 4 + 2] << 16 | (uint32_t)p[i * 4 + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)p[(len & ~(size_t)3) + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[(len & ~(size_t)3) + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)p[len & ~(size_t)3];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

/* The Java client's partition for a non-null key. */
static int32_t java_partition(const char *key, int32_t partitions)
{
    return (int32_t)(((uint32_t)murmur2(key, strlen(key)) & 0x7fffffffu) %
                     (uint32_t)partitions);
}

Test(murmur2, matches_kafka_test_vectors)
{
    /* From Kafka's UtilsTest.testMurmur2. */
    cr_assert_eq(murmur2("21", 2), -973932308);
    cr_assert_eq(murmur2("foobar", 6), -790332482);
    cr_assert_eq(murmur2("a-little-bit-long-string", 24), -985981536);
    cr_assert_eq(murmur2("a-little-bit-longer-string", 26), -1486304829);
    cr_assert_eq(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 48), -58897971);
    cr_assert_eq(murmur2("abc", 3), 479470107);
}

/* ---------- client helpers ---------- */

typedef struct delivery {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} delivery_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    delivery_t *d = m->_private;

    (void)rk;
    (void)opaque;
    d->done = 1;
    d->err = m->err;
    d->partition = m->partition;
    d->offset = m->offset;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *bootstraps, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

#define SET(k, v) cr_assert_eq(rd_kafka_conf_set(conf, (k), (v), err, sizeof err), 0, "%s", err)
    SET("bootstrap.servers", bootstraps);
    SET("log_level", "4");
    if (type == RD_KAFKA_PRODUCER) {
        SET("partitioner", "murmur2_random");
        SET("linger.ms", "0");
    } else {
        SET("group.id", group ? group : "rs-test");
        SET("enable.auto.commit", "false");
        SET("auto.offset.reset", "earliest");
    }
#undef SET
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    cr_assert_not_null(rk, "rd_kafka_new: %s", err);
    return rk;
}

static delivery_t produce(rd_kafka_t *p, const char *topic, const char *key, const char *value)
{
    delivery_t d = {0, RD_KAFKA_RESP_ERR_NO_ERROR, -1, -1};
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);

    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "producev: %s", rd_kafka_err2str(err));
    cr_assert_eq(rd_kafka_flush(p, DEADLINE_S * 1000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "flush did not finish");
    cr_assert(d.done, "no delivery report");
    return d;
}

/* Read one message from topic/partition from the beginning. */
static void consume_one(rd_kafka_t *c, const char *topic, int32_t partition, const char *key,
                        const char *value)
{
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_message_t *m = NULL;
    time_t deadline = time(NULL) + DEADLINE_S;

    rd_kafka_topic_partition_list_add(tp, topic, partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(c, tp), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(tp);
    while (time(NULL) < deadline) {
        m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        rd_kafka_message_destroy(m);
        m = NULL;
    }
    cr_assert_not_null(m, "no message from %s[%d]", topic, partition);
    cr_assert_str_eq(rd_kafka_topic_name(m->rkt), topic);
    cr_assert_eq(m->partition, partition);
    cr_assert_eq(m->offset, 0);
    cr_assert_eq(m->key_len, strlen(key));
    cr_assert_eq(memcmp(m->key, key, m->key_len), 0);
    cr_assert_eq(m->len, strlen(value));
    cr_assert_eq(memcmp(m->payload, value, m->len), 0);
    rd_kafka_message_destroy(m);
    rd_kafka_assign(c, NULL);
}

/* High watermark of topic/partition. */
static int64_t high_watermark(rd_kafka_t *rk, const char *topic, int32_t partition)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, DEADLINE_S * 1000);

    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "watermarks %s[%d]: %s", topic, partition,
                 rd_kafka_err2str(err));
    return hi;
}

static void check_topics(rd_kafka_t *rk, int partitions, int replication, int brokers)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, DEADLINE_S * 1000);

    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "metadata: %s", rd_kafka_err2str(err));
    cr_assert_eq(md->broker_cnt, brokers);
    for (int i = 0; i < RS_MOCKBROKER_TOPIC_COUNT; i++) {
        const struct rd_kafka_metadata_topic *t = NULL;
        for (int j = 0; j < md->topic_cnt; j++)
            if (strcmp(md->topics[j].topic, rs_mockbroker_topics[i]) == 0)
                t = &md->topics[j];
        cr_assert_not_null(t, "topic %s missing", rs_mockbroker_topics[i]);
        cr_assert_eq(t->err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s: %s", t->topic,
                     rd_kafka_err2str(t->err));
        cr_assert_eq(t->partition_cnt, partitions, "%s has %d partitions", t->topic,
                     t->partition_cnt);
        for (int p = 0; p < t->partition_cnt; p++) {
            cr_assert_eq(t->partitions[p].replica_cnt, replication, "%s[%d] replicas %d",
                         t->topic, p, t->partitions[p].replica_cnt);
            cr_assert(t->partitions[p].leader >= 1 && t->partitions[p].leader <= brokers);
        }
    }
    rd_kafka_metadata_destroy(md);
}

/* ---------- in-process ---------- */

Test(mockbroker, topics_exist_with_partitions)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t opts = {.brokers = 1, .partitions = 3};
    char err[512] = "";

    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), 0, "%s", err);
    cr_assert_eq(strncmp(rs_mockbroker_bootstraps(mb), "127.0.0.1:", 10), 0, "%s",
                 rs_mockbroker_bootstraps(mb));
    cr_assert_not_null(rs_mockbroker_cluster(mb));
    cr_assert_eq(rs_mockbroker_partitions(mb), 3);
    cr_assert_eq(rs_mockbroker_brokers(mb), 1);

    rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, rs_mockbroker_bootstraps(mb), NULL);
    check_topics(c, 3, 1, 1);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rs_mockbroker_destroy(mb);
}

Test(mockbroker, defaults_and_replication)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t opts = {.brokers = 4, .partitions = 0};
    char err[512] = "";

    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), 0, "%s", err);
    rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, rs_mockbroker_bootstraps(mb), NULL);
    /* default 4 partitions; replication capped at 3 */
    check_topics(c, RS_MOCKBROKER_DEFAULT_PARTITIONS, 3, 4);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rs_mockbroker_destroy(mb);

    /* opts NULL: one broker, four partitions */
    cr_assert_eq(rs_mockbroker_new(&mb, NULL, err, sizeof err), 0, "%s", err);
    c = new_client(RD_KAFKA_CONSUMER, rs_mockbroker_bootstraps(mb), NULL);
    check_topics(c, 4, 1, 1);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rs_mockbroker_destroy(mb);
}

Test(mockbroker, bad_options)
{
    rs_mockbroker_t *mb = (rs_mockbroker_t *)1;
    rs_mockbroker_opts_t opts = {.brokers = -1, .partitions = 3};
    char err[512] = "";

    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), -1);
    cr_assert_null(mb);
    cr_assert_not_null(strstr(err, "brokers: -1 is out of range"), "%s", err);

    opts.brokers = 1;
    opts.partitions = RS_MOCKBROKER_MAX_PARTITIONS + 1;
    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "partitions: 1025 is out of range"), "%s", err);

    opts.partitions = 1;
    opts.brokers = RS_MOCKBROKER_MAX_BROKERS + 1;
    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "brokers: 17"), "%s", err);

    rs_mockbroker_destroy(NULL);
}

Test(mockbroker, keyed_message_lands_on_murmur2_partition)
{
    static const char *const keys[] = {"contract-42", "21", "foobar", "abc", "C-0001"};
    const int nkeys = (int)(sizeof keys / sizeof keys[0]);
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t opts = {.brokers = 1, .partitions = 3};
    int64_t expect[3] = {0, 0, 0};
    char err[512] = "";

    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), 0, "%s", err);
    rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, rs_mockbroker_bootstraps(mb), NULL);
    rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, rs_mockbroker_bootstraps(mb), NULL);

    for (int i = 0; i < nkeys; i++) {
        delivery_t d = produce(p, "contracts", keys[i], "v");
        int32_t want = java_partition(keys[i], 3);
        cr_assert_eq(d.err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(d.err));
        cr_assert_eq(d.partition, want, "key %s: partition %d, murmur2 says %d", keys[i],
                     d.partition, want);
        cr_assert_eq(d.offset, expect[want]);
        expect[want]++;
    }
    /* Nothing landed anywhere else. */
    for (int32_t part = 0; part < 3; part++)
        cr_assert_eq(high_watermark(c, "contracts", part), expect[part], "partition %d", part);

    /* And it reads back from that partition. */
    delivery_t d = produce(p, "invoices", "contract-42", "{\"event_id\":\"e1\"}");
    cr_assert_eq(d.partition, java_partition("contract-42", 3));
    consume_one(c, "invoices", d.partition, "contract-42", "{\"event_id\":\"e1\"}");

    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    rs_mockbroker_destroy(mb);
}

Test(mockbroker, cluster_handle_injects_faults)
{
    rs_mockbroker_t *mb = NULL;
    rs_mockbroker_opts_t opts = {.brokers = 1, .partitions = 3};
    char err[512] = "";

    cr_assert_eq(rs_mockbroker_new(&mb, &opts, err, sizeof err), 0, "%s", err);
    rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, rs_mockbroker_bootstraps(mb), NULL);
    /* Warm up the connection and metadata, then fail the next Produce
     * request (ApiKey 0) with a permanent error. */
    cr_assert_eq(produce(p, "payments", "k", "1").err, RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_mock_push_request_errors(rs_mockbroker_cluster(mb), 0, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    delivery_t d = produce(p, "payments", "k", "2");
    cr_assert_eq(d.err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "got %s",
                 rd_kafka_err2str(d.err));
    /* The error was used up: the next one goes through. */
    d = produce(p, "payments", "k", "3");
    cr_assert_eq(d.err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(d.err));
    cr_assert_eq(d.offset, 1);
    rd_kafka_destroy(p);
    rs_mockbroker_destroy(mb);
}

/* ---------- the `revstream broker` child process ---------- */

typedef struct child {
    pid_t pid;
    FILE *out; /* its stdout */
    char dir[64];
    char bootstrap_file[128];
    char log_file[128];
} child_t;

static const char *revstream_path(void)
{
    return RS_BINARY_DIR "/revstream";
}

/* Start `revstream broker <args...> --bootstrap-file DIR/bootstrap`, stderr
 * to DIR/stderr.log. */
static void child_start(child_t *ch, char *const extra[], int nextra)
{
    int pipefd[2];
    char *argv[16];
    int argc = 0;

    memset(ch, 0, sizeof *ch);
    snprintf(ch->dir, sizeof ch->dir, "/tmp/rs_mockbroker_XXXXXX");
    cr_assert_not_null(mkdtemp(ch->dir), "mkdtemp: %s", strerror(errno));
    snprintf(ch->bootstrap_file, sizeof ch->bootstrap_file, "%s/bootstrap", ch->dir);
    snprintf(ch->log_file, sizeof ch->log_file, "%s/stderr.log", ch->dir);
    cr_assert_eq(access(revstream_path(), X_OK), 0,
                 "%s is not built (does the revstream executable link yet?)", revstream_path());

    argv[argc++] = "revstream";
    argv[argc++] = "broker";
    for (int i = 0; i < nextra; i++)
        argv[argc++] = extra[i];
    argv[argc++] = "--bootstrap-file";
    argv[argc++] = ch->bootstrap_file;
    argv[argc] = NULL;

    cr_assert_eq(pipe(pipefd), 0);
    fflush(NULL);
    ch->pid = fork();
    cr_assert(ch->pid >= 0, "fork: %s", strerror(errno));
    if (ch->pid == 0) {
        sigset_t none;
        int fd = open(ch->log_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        dup2(pipefd[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(revstream_path(), argv);
        _exit(127);
    }
    close(pipefd[1]);
    ch->out = fdopen(pipefd[0], "r");
    cr_assert_not_null(ch->out);
}

/* Wait for the bootstrap file; returns its one line (no newline). */
static void child_wait_file(child_t *ch, char *line, size_t linelen)
{
    time_t deadline = time(NULL) + DEADLINE_S;
    FILE *f = NULL;
    int status;

    while ((f = fopen(ch->bootstrap_file, "r")) == NULL) {
        cr_assert_eq(waitpid(ch->pid, &status, WNOHANG), 0,
                     "revstream broker exited before writing %s", ch->bootstrap_file);
        cr_assert(time(NULL) < deadline, "no %s after %d s", ch->bootstrap_file, DEADLINE_S);
        usleep(20 * 1000);
    }
    cr_assert_not_null(fgets(line, (int)linelen, f));
    fclose(f);
    size_t n = strlen(line);
    cr_assert(n > 1 && line[n - 1] == '\n', "bootstrap file not one full line: \"%s\"", line);
    line[n - 1] = '\0';
}

/* SIGTERM, then wait; returns the wait status. */
static int child_stop(child_t *ch, int sig)
{
    time_t deadline = time(NULL) + DEADLINE_S;
    int status = 0;
    pid_t r;

    kill(ch->pid, sig);
    while ((r = waitpid(ch->pid, &status, WNOHANG)) == 0) {
        if (time(NULL) >= deadline) {
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, &status, 0);
            cr_assert_fail("revstream broker did not stop within %d s of the signal",
                           DEADLINE_S);
        }
        usleep(20 * 1000);
    }
    cr_assert_eq(r, ch->pid);
    return status;
}

/* The file's text (up to len - 1 bytes) in buf; "" if it cannot be read. */
static char *slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    if (f != NULL) {
        n = fread(buf, 1, len - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static void child_cleanup(child_t *ch)
{
    if (ch->out != NULL)
        fclose(ch->out);
    unlink(ch->bootstrap_file);
    unlink(ch->log_file);
    rmdir(ch->dir);
}

Test(broker_cli, serves_other_processes_and_stops_on_sigterm)
{
    child_t ch;
    char *extra[] = {"--partitions", "3"};
    char from_file[256], from_stdout[256];

    child_start(&ch, extra, 2);
    child_wait_file(&ch, from_file, sizeof from_file);
    cr_assert_eq(strncmp(from_file, "127.0.0.1:", 10), 0, "%s", from_file);
    /* stdout carries the same address, one line. */
    cr_assert_not_null(fgets(from_stdout, sizeof from_stdout, ch.out));
    cr_assert_str_eq(strtok(from_stdout, "\n"), from_file);

    rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, from_file, NULL);
    rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, from_file, "rs-test-cli");
    check_topics(c, 3, 1, 1);

    delivery_t d = produce(p, "usage", "contract-7", "u1");
    cr_assert_eq(d.err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(d.err));
    cr_assert_eq(d.partition, java_partition("contract-7", 3));
    consume_one(c, "usage", d.partition, "contract-7", "u1");

    /* Committed offsets live in the broker process: a second client sees them. */
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, "usage", d.partition)->offset = 1;
    cr_assert_eq(rd_kafka_commit(c, tp, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(tp);
    rd_kafka_t *c2 = new_client(RD_KAFKA_CONSUMER, from_file, "rs-test-cli");
    tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, "usage", d.partition);
    cr_assert_eq(rd_kafka_committed(c2, tp, DEADLINE_S * 1000), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(tp->elems[0].offset, 1);
    rd_kafka_topic_partition_list_destroy(tp);

    rd_kafka_destroy(c2);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);

    int status = child_stop(&ch, SIGTERM);
    cr_assert(WIFEXITED(status), "revstream broker did not exit normally (status %d)", status);
    cr_assert_eq(WEXITSTATUS(status), 0);
    cr_assert_neq(access(ch.bootstrap_file, F_OK), 0, "bootstrap file left behind");

    static char log[16384];
    slurp(ch.log_file, log, sizeof log);
    char want[512];
    snprintf(want, sizeof want,
             "broker: ready bootstrap=%s brokers=1 partitions=3 topics=contracts,invoices,"
             "payments,usage,revenue.journal,revenue.deferred-balances,revenue.dlq",
             from_file);
    cr_assert_not_null(strstr(log, want), "stderr:\n%s", log);
    cr_assert_not_null(strstr(log, "broker: stopping signal=SIGTERM\n"), "stderr:\n%s", log);
    cr_assert_not_null(strstr(log, "broker: stopped\n"), "stderr:\n%s", log);
    child_cleanup(&ch);
}

Test(broker_cli, sigint_also_stops_cleanly)
{
    child_t ch;
    char line[256];

    child_start(&ch, NULL, 0);
    child_wait_file(&ch, line, sizeof line);
    int status = child_stop(&ch, SIGINT);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    char log[16384];
    cr_assert_not_null(strstr(slurp(ch.log_file, log, sizeof log), "signal=SIGINT"), "%s", log);
    child_cleanup(&ch);
}

/* Run `revstream broker ARGS` to completion; returns the exit status and
 * fills out/err with what it printed. */
static int run_cli(char *const args[], int nargs, char *out, size_t outlen, char *err,
                   size_t errlen)
{
    char dir[] = "/tmp/rs_mockbroker_XXXXXX", opath[64], epath[64];
    char *argv[16];
    int argc = 0, status = 0;

    cr_assert_eq(access(revstream_path(), X_OK), 0, "%s is not built", revstream_path());
    cr_assert_not_null(mkdtemp(dir));
    snprintf(opath, sizeof opath, "%s/out", dir);
    snprintf(epath, sizeof epath, "%s/err", dir);
    argv[argc++] = "revstream";
    argv[argc++] = "broker";
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int o = open(opath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(epath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(o, 1);
        dup2(e, 2);
        execv(revstream_path(), argv);
        _exit(127);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    slurp(opath, out, outlen);
    slurp(epath, err, errlen);
    unlink(opath);
    unlink(epath);
    rmdir(dir);
    cr_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

Test(broker_cli, usage_errors_and_help)
{
    char out[4096], err[4096];
    char *bad_parts[] = {"--partitions", "abc"};
    char *zero_brokers[] = {"--brokers", "0"};
    char *stray[] = {"extra"};
    char *unwritable[] = {"--bootstrap-file", "/nonexistent-dir/bootstrap"};
    char *help[] = {"--help"};

    cr_assert_eq(run_cli(bad_parts, 2, out, sizeof out, err, sizeof err), 1);
    cr_assert_not_null(strstr(err, "broker: --partitions: \"abc\" is not a number in 1..1024"),
                       "%s", err);
    cr_assert_str_eq(out, "");

    cr_assert_eq(run_cli(zero_brokers, 2, out, sizeof out, err, sizeof err), 1);
    cr_assert_not_null(strstr(err, "--brokers: \"0\""), "%s", err);

    cr_assert_eq(run_cli(stray, 1, out, sizeof out, err, sizeof err), 1);
    cr_assert_not_null(strstr(err, "unexpected argument \"extra\""), "%s", err);

    /* A bootstrap file that cannot be written: error, nothing on stdout. */
    cr_assert_eq(run_cli(unwritable, 2, out, sizeof out, err, sizeof err), 1);
    cr_assert_not_null(strstr(err, "bootstrap_file=/nonexistent-dir/bootstrap"), "%s", err);
    cr_assert_str_eq(out, "");

    cr_assert_eq(run_cli(help, 1, out, sizeof out, err, sizeof err), 0);
    cr_assert_not_null(strstr(out, "usage: revstream broker"), "%s", out);
}
