/*
 * bench_worker_cpu — the worker's own CPU around the engine, per event and
 * per touched contract (issue 12), each part against its previous code
 * (kept here as the baseline) in the same run:
 *
 *   sort      a sub-batch's seen ids by contract id, twice as the worker
 *             does (the store's merges, rs_pstate_stage_seen; the
 *             changelog's S/ records, rs_worker_bounds.c): qsort with
 *             strcmp against rs_pstate_sort_seen; the orders are checked
 *             equal.
 *   cm        the contract map of a sub-batch (rs_worker_cm_get): per
 *             event a lookup before the engine, the partition's offsets
 *             cache, two after it and one per journal entry; every tenth
 *             sub-batch a month-end walk touching every contract.
 *   produce   journal-shaped records (key, ~300-byte value, one header)
 *             to an embedded broker (librdkafka's mock cluster): the value
 *             copied (RD_KAFKA_MSG_F_COPY, then freed) against handed over
 *             (RD_KAFKA_MSG_F_FREE). CPU time of the producing thread.
 *
 * Usage: bench_worker_cpu [ROUNDS [CONTRACTS [IDS]]]
 *   defaults: 7 rounds (the median is printed), 1250 contracts (a 20,000
 *   book's partition of 16), 2,000 ids per sub-batch.
 *
 * Prints figures (median ns per item, the ratio new/old). Not a test.
 * Ownership: everything is freed.
 */
#define _GNU_SOURCE /* CLOCK_THREAD_CPUTIME_ID */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rs_hash.h"
#include "rs_pstate.h"
#include "rs_worker_internal.h"

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The whole process's (librdkafka's threads and the mock broker's too). */
static double proc_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static unsigned long long rng = 88172645463325252ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

static void report(const char *what, const char *unit, double old_ns, double new_ns)
{
    printf("bench_worker_cpu: %-32s old=%.1f ns/%s new=%.1f ns/%s ratio_new_old=%.3f\n", what,
           old_ns, unit, new_ns, unit, new_ns / old_ns);
}

/* ---- sort: the previous code ---- */

static int old_cmp_ptr(const void *a, const void *b) /* rs_pstate_seen.c's */
{
    const rs_seen_id_t *x = *(const rs_seen_id_t *const *)a,
                       *y = *(const rs_seen_id_t *const *)b;
    return x->contract_id == y->contract_id ? 0 : strcmp(x->contract_id, y->contract_id);
}

static int old_cmp_val(const void *a, const void *b) /* rs_worker_bounds.c's */
{
    return strcmp(((const rs_seen_id_t *)a)->contract_id,
                  ((const rs_seen_id_t *)b)->contract_id);
}

static int bench_sort(int rounds, int contracts, int n)
{
    char(*names)[16] = malloc((size_t)contracts * sizeof *names);
    rs_seen_id_t *v = malloc((size_t)n * sizeof *v), *vals = malloc((size_t)n * sizeof *vals);
    const rs_seen_id_t **a = malloc((size_t)n * sizeof *a), **b = malloc((size_t)n * sizeof *b);
    double *to = malloc((size_t)rounds * sizeof *to), *tn = malloc((size_t)rounds * sizeof *tn);
    if (!names || !v || !vals || !a || !b || !to || !tn)
        return -1;
    for (int c = 0; c < contracts; c++) /* a partition's contracts of a 16-way book */
        snprintf(names[c], sizeof names[c], "C-%07d", c * 16 + 3);
    /* events in a sub-batch: a contract's ids come in runs of 1-3 (one
     * engine copy per run) */
    for (int i = 0; i < n;) {
        int c = (int)(next_rand() % (unsigned)contracts), run = 1 + (int)(next_rand() % 3);
        for (int k = 0; k < run && i < n; k++, i++)
            v[i] = (rs_seen_id_t){names[c], (uint64_t)i, (uint64_t)next_rand(), 100, 0};
    }
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = cpu_ns();
        for (int i = 0; i < n; i++)
            a[i] = &v[i];
        qsort(a, (size_t)n, sizeof *a, old_cmp_ptr);
        memcpy(vals, v, (size_t)n * sizeof *vals);
        qsort(vals, (size_t)n, sizeof *vals, old_cmp_val);
        double t1 = cpu_ns();
        for (int i = 0; i < n; i++)
            b[i] = &v[i];
        if (rs_pstate_sort_seen(b, (size_t)n) != 0)
            return -1;
        const rs_seen_id_t **c = malloc((size_t)n * sizeof *c);
        rs_seen_id_t *sorted = malloc((size_t)n * sizeof *sorted);
        if (c == NULL || sorted == NULL)
            return -1;
        for (int i = 0; i < n; i++)
            c[i] = &v[i];
        if (rs_pstate_sort_seen(c, (size_t)n) != 0)
            return -1;
        for (int i = 0; i < n; i++)
            sorted[i] = *c[i];
        double t2 = cpu_ns();
        for (int i = 0; i < n; i++)
            bad += a[i] != b[i] || vals[i].id_hash != sorted[i].id_hash;
        free(c);
        free(sorted);
        to[r] = (t1 - t0) / n;
        tn[r] = (t2 - t1) / n;
    }
    printf("bench_worker_cpu: sort ids=%d contracts=%d orders_equal=%s\n", n, contracts,
           bad == 0 ? "yes" : "NO");
    report("sort", "id", median(to, rounds), median(tn, rounds));
    free(names);
    free(v);
    free(vals);
    free(a);
    free(b);
    free(to);
    free(tn);
    return bad == 0 ? 0 : -1;
}

/* ---- cm: the previous code ---- */

typedef struct old_centry {
    char *id;
    int64_t applied[N_IN], stored[N_IN];
    rs_period_t as_of;
    int touched;
} old_centry_t;

typedef struct old_cmap {
    old_centry_t *e;
    size_t n, cap;
    uint32_t *idx;
    size_t icap, last;
} old_cmap_t;

static void old_cm_free(old_cmap_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].id);
    free(m->e);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

static void old_cm_clear(old_cmap_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].id);
    m->n = 0;
    m->last = 0;
    if (m->idx != NULL)
        memset(m->idx, 0, m->icap * sizeof *m->idx);
}

static int old_cm_rehash(old_cmap_t *m, size_t icap)
{
    uint32_t *idx = calloc(icap, sizeof *idx);
    if (idx == NULL)
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t h = rs_fnv1a32_str(m->e[i].id) & (icap - 1);
        while (idx[h] != 0)
            h = (h + 1) & (icap - 1);
        idx[h] = (uint32_t)(i + 1);
    }
    free(m->idx);
    m->idx = idx;
    m->icap = icap;
    return 0;
}

static old_centry_t *old_cm_get(old_cmap_t *m, const char *id)
{
    size_t h;
    if (m->last != 0 && strcmp(m->e[m->last - 1].id, id) == 0)
        return &m->e[m->last - 1];
    if (m->icap == 0 && old_cm_rehash(m, 64) != 0)
        return NULL;
    h = rs_fnv1a32_str(id) & (m->icap - 1);
    while (m->idx[h] != 0) {
        old_centry_t *e = &m->e[m->idx[h] - 1];
        if (strcmp(e->id, id) == 0) {
            m->last = m->idx[h];
            return e;
        }
        h = (h + 1) & (m->icap - 1);
    }
    if ((m->n + 1) * 2 > m->icap) {
        if (old_cm_rehash(m, m->icap * 2) != 0)
            return NULL;
        h = rs_fnv1a32_str(id) & (m->icap - 1);
        while (m->idx[h] != 0)
            h = (h + 1) & (m->icap - 1);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        old_centry_t *ne = realloc(m->e, cap * sizeof *ne);
        if (ne == NULL)
            return NULL;
        m->e = ne;
        m->cap = cap;
    }
    old_centry_t *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->id = strdup(id);
    if (e->id == NULL)
        return NULL;
    for (int t = 0; t < N_IN; t++) {
        e->applied[t] = OFF_NONE;
        e->stored[t] = OFF_UNKNOWN;
    }
    e->as_of = RS_PERIOD_NONE;
    m->idx[h] = (uint32_t)(m->n + 1);
    m->n++;
    m->last = m->n;
    return e;
}

/* What the engine does between two events' lookups, for the caches: a
 * walk over 1 MiB (a line in 256). */
enum { POLLUTE = 1 << 20 };
static unsigned char *junk;
static uint64_t sink; /* what the walks read: kept out of the checksums */
static uint64_t pollute(int i)
{
    uint64_t x = 0;
    for (size_t k = (size_t)(i % 256) * 64; k < POLLUTE; k += 256 * 64)
        x += junk[k]++;
    return x;
}

/* Only the walks: the baseline subtracted from both maps' times. */
#define NO_GET(m, id) ((void)(id), &dummy)
#define NO_CLEAR(m) ((void)0)

/* The lookups of `subs` sub-batches of n events (the same sequence for
 * both maps); returns a checksum of what was found. */
#define CM_RUN(GET, CLEAR, cm, offs)                                                           \
    do {                                                                                       \
        for (int s = 0; s < subs; s++) {                                                       \
            for (int i = 0; i < n; i++) {                                                      \
                const char *id = names[seq[s * n + i]];                                        \
                sink += pollute(i);                                                            \
                sum += (uintptr_t)GET(&cm, id)->touched;                                       \
                sum += (uintptr_t)GET(&offs, id)->stored[0];                                   \
                GET(&cm, id)->touched = 1;                                                     \
                GET(&cm, id)->as_of = 1;                                                       \
                GET(&cm, names[seq[s * n + (i * 7) % n]])->touched = 1; /* an entry */         \
            }                                                                                  \
            if (s % 10 == 9) /* a month-end walk: an entry for every contract */               \
                for (int c = 0; c < contracts; c++)                                            \
                    GET(&cm, names[c])->touched = 1;                                           \
            sum += cm.n;                                                                       \
            CLEAR(&cm);                                                                        \
        }                                                                                      \
    } while (0)

static int bench_cm(int rounds, int contracts, int n)
{
    enum { SUBS = 40 };
    int subs = SUBS;
    char(*names)[16] = malloc((size_t)contracts * sizeof *names);
    int *seq = malloc((size_t)SUBS * (size_t)n * sizeof *seq);
    double *to = malloc((size_t)rounds * sizeof *to), *tn = malloc((size_t)rounds * sizeof *tn);
    if (!names || !seq || !to || !tn)
        return -1;
    for (int c = 0; c < contracts; c++)
        snprintf(names[c], sizeof names[c], "C-%07d", c * 16 + 3);
    for (int i = 0; i < SUBS * n; i++)
        seq[i] = (int)(next_rand() % (unsigned)contracts);
    uint64_t so = 0, sn = 0;
    junk = calloc(POLLUTE, 1);
    double *tb = malloc((size_t)rounds * sizeof *tb);
    if (junk == NULL || tb == NULL)
        return -1;
    for (int r = 0; r < rounds; r++) {
        old_cmap_t ocm = {0}, ooffs = {0};
        cmap_t cm = {0}, offs = {0};
        centry_t dummy = {0};
        struct {
            size_t n;
        } none = {0};
        uint64_t sum = 0;
        double tz = cpu_ns();
        CM_RUN(NO_GET, NO_CLEAR, none, none);
        double t0 = cpu_ns();
        tb[r] = (t0 - tz) / (SUBS * (double)n);
        sum = 0;
        CM_RUN(old_cm_get, old_cm_clear, ocm, ooffs);
        double t1 = cpu_ns();
        so = sum;
        sum = 0;
        CM_RUN(rs_worker_cm_get, rs_worker_cm_clear, cm, offs);
        double t2 = cpu_ns();
        sn = sum;
        old_cm_free(&ocm);
        old_cm_free(&ooffs);
        rs_worker_cm_free(&cm);
        rs_worker_cm_free(&offs);
        to[r] = (t1 - t0) / (SUBS * (double)n) - tb[r];
        tn[r] = (t2 - t1) / (SUBS * (double)n) - tb[r];
    }
    printf("bench_worker_cpu: cm events=%d per sub-batch, %d sub-batches, contracts=%d "
           "results_equal=%s\n",
           n, SUBS, contracts, so == sn ? "yes" : "NO");
    printf("bench_worker_cpu: cm the cache walk alone (subtracted)=%.1f ns/event\n",
           median(tb, rounds));
    report("cm", "event", median(to, rounds), median(tn, rounds));
    free(junk);
    free(tb);
    if (sink == 1) /* keep the walks */
        printf("\n");
    free(names);
    free(seq);
    free(to);
    free(tn);
    return so == sn ? 0 : -1;
}

/* ---- produce ---- */

/* Modes: 0 journal-shaped, value copied; 1 the same, value handed over;
 * 2 balance-shaped (no header), an empty header list; 3 no header list;
 * 4 journal-shaped, the header given to producev (RD_KAFKA_V_HEADER). */
static int produce_n(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int n, int mode)
{
    char key[16], eid[40];
    for (int i = 0; i < n; i++) {
        size_t len = 280 + (size_t)(i % 40);
        char *buf = malloc(len); /* as rs_avro_encode_entry gives it */
        if (buf == NULL)
            return -1;
        memset(buf, 'a' + i % 26, len);
        snprintf(key, sizeof key, "C-%07d", i % 20000);
        snprintf(eid, sizeof eid, "je-%d-%d", i % 20000, i);
        rd_kafka_headers_t *hs = NULL;
        if (mode == 4) {
            rd_kafka_resp_err_t e4 = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER("entry_id", eid, -1), RD_KAFKA_V_END);
            free(buf);
            if (e4 == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 10);
                i--;
            } else if (e4 != RD_KAFKA_RESP_ERR_NO_ERROR) {
                return -1;
            }
            continue;
        }
        if (mode < 3)
            hs = rd_kafka_headers_new(mode < 2 ? 1 : 0);
        if (mode < 2)
            rd_kafka_header_add(hs, "entry_id", -1, eid, -1);
        rd_kafka_resp_err_t err;
        int flags = mode == 1 ? RD_KAFKA_MSG_F_FREE : RD_KAFKA_MSG_F_COPY;
        if (hs != NULL)
            err = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_HEADERS(hs), RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, len),
                RD_KAFKA_V_MSGFLAGS(flags), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (hs != NULL)
                rd_kafka_headers_destroy(hs);
            free(buf);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                return -1;
            rd_kafka_poll(rk, 10);
            i--;
            continue;
        }
        if (mode != 1)
            free(buf);
    }
    return 0;
}

static int bench_produce(int rounds, int n)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "bench_worker_cpu: producer: %s\n", err);
        return -1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "journal", NULL);
    enum { MODES = 5 };
    double *th = malloc((size_t)rounds * MODES * sizeof *th),
           *pr = malloc((size_t)rounds * MODES * sizeof *pr);
    int rc = th && pr ? 0 : -1;
    produce_n(rk, rkt, 1000, 0); /* metadata, connections */
    rd_kafka_flush(rk, 10000);
    for (int r = 0; r < rounds && rc == 0; r++) {
        for (int k = 0; k < MODES && rc == 0; k++) {
            int mode = (k + r) % MODES; /* rotate which goes first */
            double t0 = cpu_ns(), p0 = proc_ns();
            rc = produce_n(rk, rkt, n, mode);
            double t1 = cpu_ns();
            rd_kafka_flush(rk, 30000);
            double p1 = proc_ns();
            th[mode * rounds + r] = (t1 - t0) / n;
            pr[mode * rounds + r] = (p1 - p0) / n;
        }
    }
    if (rc == 0) {
        printf("bench_worker_cpu: produce records=%d per round; thread: the producing "
               "thread's CPU, process: with librdkafka's threads and the mock broker, "
               "through the flush\n",
               n);
        report("journal thread copy/free", "record", median(th, rounds),
               median(th + rounds, rounds));
        report("journal process copy/free", "record", median(pr, rounds),
               median(pr + rounds, rounds));
        report("journal thread list/V_HEADER", "record", median(th, rounds),
               median(th + 4 * rounds, rounds));
        report("journal process list/V_HEADER", "record", median(pr, rounds),
               median(pr + 4 * rounds, rounds));
        report("balance thread empty-list/none", "record", median(th + 2 * rounds, rounds),
               median(th + 3 * rounds, rounds));
        report("balance process empty-list/none", "record", median(pr + 2 * rounds, rounds),
               median(pr + 3 * rounds, rounds));
    }
    free(th);
    free(pr);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7, contracts = argc > 2 ? atoi(argv[2]) : 1250,
        ids = argc > 3 ? atoi(argv[3]) : 2000;
    if (rounds < 1 || contracts < 1 || ids < 1) {
        fprintf(stderr, "usage: bench_worker_cpu [ROUNDS [CONTRACTS [IDS]]]\n");
        return 2;
    }
    if (bench_sort(rounds, contracts, ids) != 0 || bench_cm(rounds, contracts, ids) != 0 ||
        bench_produce(rounds, 100000) != 0)
        return 1;
    return 0;
}
