/*
 * cmd_replay_acc.c — replay's report aggregator on a thread of its own (see
 * cmd_replay_acc.h).
 *
 * The producer writes records into batches, used round-robin like the
 * JSON Lines reader's chunks: a batch is FREE (the producer may fill it) or
 * FULL (handed over; the aggregator takes its records in order and gives it
 * back). Each batch has one owner at a time and changes hands only under
 * the mutex; the last batch handed over carries `last`. A record is a
 * header (op, the entry's numbers, string lengths), the postings, then the
 * strings, padded to 8 bytes; an entry always fits in an empty batch.
 */
#include "cmd_replay_acc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_ADD = 1, OP_FLOOR };

typedef struct rec {
    int32_t op, kind, exponent, n_postings;
    int32_t period;
    uint16_t lc, ll, lr; /* contract_id, line_id, rule: bytes without the NUL */
    char currency[4];
    rs_money_t billed, recognized, received;
} rec_t;

typedef struct rec_posting {
    int64_t account;
    rs_money_t debit, credit;
} rec_posting_t;

typedef struct batch {
    unsigned char *buf; /* RS_REPLAY_ACC_BATCH bytes */
    size_t used;
    int full, last;
} batch_t;

struct rs_replay_acc {
    rs_report_acc_t *acc;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* a batch became full or free */
    batch_t batches[RS_REPLAY_ACC_BATCHES];
    int cur;      /* the producer's batch */
    int finished; /* finish() ran */
    int result;   /* the first failing add's result; read after the join */
};

#define PAD8(n) (((n) + 7u) & ~(size_t)7u)

/* Bytes of e's record. */
static size_t rec_size(const rs_entry_t *e, size_t lc, size_t ll, size_t lr)
{
    return PAD8(sizeof(rec_t) + (size_t)e->n_postings * sizeof(rec_posting_t) + lc + ll + lr);
}

/* Rebuild entry `en` from the record at p (en's other fields are unused by
 * rs_report_acc_add). Returns the record's size. */
static size_t rec_read(const unsigned char *p, rs_entry_t *en, int *op)
{
    rec_t h;
    memcpy(&h, p, sizeof h);
    *op = h.op;
    if (h.op == OP_FLOOR) {
        en->period = h.period;
        return PAD8(sizeof h);
    }
    en->kind = (rs_entry_kind_t)h.kind;
    en->exponent = h.exponent;
    en->n_postings = h.n_postings;
    en->period = h.period;
    memcpy(en->currency, h.currency, sizeof en->currency);
    en->billed = h.billed;
    en->recognized = h.recognized;
    en->received = h.received;
    const unsigned char *q = p + sizeof h;
    for (int i = 0; i < h.n_postings; i++, q += sizeof(rec_posting_t)) {
        rec_posting_t rp;
        memcpy(&rp, q, sizeof rp);
        en->postings[i].account = (rs_account_t)rp.account;
        en->postings[i].debit = rp.debit;
        en->postings[i].credit = rp.credit;
    }
    memcpy(en->contract_id, q, h.lc);
    en->contract_id[h.lc] = '\0';
    q += h.lc;
    memcpy(en->line_id, q, h.ll);
    en->line_id[h.ll] = '\0';
    q += h.ll;
    memcpy(en->rule, q, h.lr);
    en->rule[h.lr] = '\0';
    q += h.lr;
    return PAD8((size_t)(q - p));
}

static void *acc_main(void *arg)
{
    rs_replay_acc_t *q = arg;
    rs_entry_t *en = calloc(1, sizeof *en);
    int k = 0, last = 0;
    if (en == NULL)
        q->result = -1;
    while (!last) {
        batch_t *b = &q->batches[k];
        pthread_mutex_lock(&q->mu);
        while (!b->full)
            pthread_cond_wait(&q->cond, &q->mu);
        pthread_mutex_unlock(&q->mu);
        for (size_t at = 0; at < b->used && en != NULL;) {
            int op;
            at += rec_read(b->buf + at, en, &op);
            if (op == OP_FLOOR)
                rs_report_acc_set_floor(q->acc, en->period);
            else if (q->result == 0)
                q->result = rs_report_acc_add(q->acc, en);
        }
        pthread_mutex_lock(&q->mu);
        last = b->last;
        b->full = 0;
        b->used = 0;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->mu);
        k = (k + 1) % RS_REPLAY_ACC_BATCHES;
    }
    free(en);
    return NULL;
}

int rs_replay_acc_new(rs_replay_acc_t **out, rs_report_acc_t *acc, char *errstr, size_t errlen)
{
    rs_replay_acc_t *q = calloc(1, sizeof *q);
    int rc;
    if (q == NULL)
        goto nomem;
    for (int k = 0; k < RS_REPLAY_ACC_BATCHES; k++)
        if ((q->batches[k].buf = malloc(RS_REPLAY_ACC_BATCH)) == NULL)
            goto nomem;
    q->acc = acc;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    if ((rc = pthread_create(&q->thread, NULL, acc_main, q)) != 0) {
        snprintf(errstr, errlen, "report aggregator: cannot start its thread: %s",
                 strerror(rc));
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->mu);
        goto fail;
    }
    *out = q;
    return 0;
nomem:
    snprintf(errstr, errlen, "report aggregator: out of memory");
fail:
    if (q != NULL)
        for (int k = 0; k < RS_REPLAY_ACC_BATCHES; k++)
            free(q->batches[k].buf);
    free(q);
    return -1;
}

/* Hand the producer's batch over (last: no batch follows) and wait until
 * the next one is free. */
static void hand_over(rs_replay_acc_t *q, int last)
{
    batch_t *b = &q->batches[q->cur];
    pthread_mutex_lock(&q->mu);
    b->full = 1;
    b->last = last;
    pthread_cond_broadcast(&q->cond);
    q->cur = (q->cur + 1) % RS_REPLAY_ACC_BATCHES;
    while (!last && q->batches[q->cur].full)
        pthread_cond_wait(&q->cond, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

/* Room for n bytes in the producer's batch: its free space, or NULL. */
static unsigned char *room(rs_replay_acc_t *q, size_t n)
{
    if (n > RS_REPLAY_ACC_BATCH || q->finished)
        return NULL;
    if (RS_REPLAY_ACC_BATCH - q->batches[q->cur].used < n)
        hand_over(q, 0);
    batch_t *b = &q->batches[q->cur];
    unsigned char *p = b->buf + b->used;
    b->used += n;
    return p;
}

int rs_replay_acc_add(rs_replay_acc_t *q, const rs_entry_t *e)
{
    size_t lc = strnlen(e->contract_id, sizeof e->contract_id - 1);
    size_t ll = strnlen(e->line_id, sizeof e->line_id - 1);
    size_t lr = strnlen(e->rule, sizeof e->rule - 1);
    int np = e->n_postings < 0 ? 0 : e->n_postings;
    unsigned char *p = room(q, rec_size(e, lc, ll, lr));
    if (p == NULL)
        return -1;
    rec_t h = {
        .op = OP_ADD,
        .kind = (int32_t)e->kind,
        .exponent = e->exponent,
        .n_postings = np,
        .period = e->period,
        .lc = (uint16_t)lc,
        .ll = (uint16_t)ll,
        .lr = (uint16_t)lr,
        .billed = e->billed,
        .recognized = e->recognized,
        .received = e->received,
    };
    memcpy(h.currency, e->currency, sizeof h.currency);
    memcpy(p, &h, sizeof h);
    unsigned char *w = p + sizeof h;
    for (int i = 0; i < np; i++, w += sizeof(rec_posting_t)) {
        rec_posting_t rp = {e->postings[i].account, e->postings[i].debit,
                            e->postings[i].credit};
        memcpy(w, &rp, sizeof rp);
    }
    memcpy(w, e->contract_id, lc);
    memcpy(w + lc, e->line_id, ll);
    memcpy(w + lc + ll, e->rule, lr);
    return 0;
}

int rs_replay_acc_floor(rs_replay_acc_t *q, rs_period_t floor)
{
    unsigned char *p = room(q, PAD8(sizeof(rec_t)));
    if (p == NULL)
        return -1;
    rec_t h = {.op = OP_FLOOR, .period = floor};
    memcpy(p, &h, sizeof h);
    return 0;
}

int rs_replay_acc_finish(rs_replay_acc_t *q)
{
    if (!q->finished) {
        hand_over(q, 1);
        pthread_join(q->thread, NULL);
        q->finished = 1;
    }
    return q->result;
}

void rs_replay_acc_destroy(rs_replay_acc_t *q)
{
    if (q == NULL)
        return;
    (void)rs_replay_acc_finish(q);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    for (int k = 0; k < RS_REPLAY_ACC_BATCHES; k++)
        free(q->batches[k].buf);
    free(q);
}
