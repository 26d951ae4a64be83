/*
 * rs_codec_jsonl.c — the JSON Lines reader thread (see rs_codec_jsonl.h).
 *
 * Items live in NCHUNKS chunks of CHUNK items, used round-robin. A chunk is
 * FREE (the reader may fill it) or FULL (handed over; the consumer takes its
 * items in order and gives it back). The reader fills chunk k only after the
 * consumer gave it back, and the consumer takes chunk k only after the reader
 * marked it full, so each chunk has one owner at a time and items move
 * between the threads only under the mutex. The last chunk the reader fills
 * carries `last` (end of input or error).
 *
 * Invariants: chunks are filled and taken in the same cyclic order;
 * `lines` is written by the reader and read under the mutex.
 */
#include "rs_codec_jsonl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "rs_bytes.h"
#include "rs_codec.h"

#define CHUNK 256
#define NCHUNKS (RS_JSONL_AHEAD / CHUNK)

typedef struct chunk {
    rs_codec_jsonl_item_t items[CHUNK];
    char *text[CHUNK]; /* per item: a copy of a line that did not decode */
    size_t textcap[CHUNK];
    int n;    /* items filled */
    int full; /* handed over to the consumer */
    int last; /* no chunk follows */
} chunk_t;

struct rs_codec_jsonl {
    FILE *in;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* a chunk became full or free, or stop was set */
    chunk_t *chunks;     /* NCHUNKS */
    int stop;            /* the consumer is going away */
    int err;             /* errno that ended the input, 0 */
    long lines;          /* lines read, blank ones included */
    /* the consumer's position */
    int cur, pos, done, have; /* have: chunk cur is handed over */
};

static int is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Decode one line into item i of chunk c. 0, or ENOMEM. */
static int fill_item(chunk_t *c, int i, long line, const char *text, size_t len)
{
    rs_codec_jsonl_item_t *it = &c->items[i];
    it->line = line;
    it->text = NULL;
    it->len = 0;
    it->rc = rs_codec_json_decode(text, len, &it->ev, it->errstr, sizeof it->errstr);
    if (it->rc == 0) {
        rs_engine_event_digest(&it->ev, &it->digest);
        return 0;
    }
    if (c->textcap[i] < len + 1) {
        char *nt = realloc(c->text[i], len + 1);
        if (nt == NULL)
            return ENOMEM;
        c->text[i] = nt;
        c->textcap[i] = len + 1;
    }
    memcpy(c->text[i], text, len);
    c->text[i][len] = '\0';
    it->text = c->text[i];
    it->len = len;
    return 0;
}

static void *reader_main(void *arg)
{
    rs_codec_jsonl_t *r = arg;
    char *buf = NULL;
    size_t cap = 0;
    long line = 0;
    int k = 0, err = 0, eof = 0;

    while (!eof && !err) {
        chunk_t *c = &r->chunks[k];
        pthread_mutex_lock(&r->mu);
        while (c->full && !r->stop)
            pthread_cond_wait(&r->cond, &r->mu);
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        for (int i = 0; i < c->n; i++) /* items the consumer is done with */
            rs_event_clear(&c->items[i].ev);
        c->n = 0;
        while (c->n < CHUNK) {
            errno = 0;
            ssize_t len = getline(&buf, &cap, r->in);
            if (len < 0) {
                if (ferror(r->in))
                    err = errno != 0 ? errno : EIO;
                eof = 1;
                break;
            }
            line++;
            const char *text = buf;
            if (line == 1) { /* a byte-order mark is not part of line 1 */
                size_t bom = rs_utf8_bom_len(buf, (size_t)len);
                text += bom;
                len -= (ssize_t)bom;
            }
            if (is_blank(text, (size_t)len))
                continue;
            if ((err = fill_item(c, c->n, line, text, (size_t)len)) != 0) {
                rs_event_clear(&c->items[c->n].ev);
                break;
            }
            c->n++;
        }
        pthread_mutex_lock(&r->mu);
        r->lines = line;
        c->full = 1;
        c->last = eof || err;
        if (err)
            r->err = err;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
        k = (k + 1) % NCHUNKS;
    }
    free(buf);
    return NULL;
}

int rs_codec_jsonl_new(rs_codec_jsonl_t **out, FILE *in, char *errstr, size_t errlen)
{
    rs_codec_jsonl_t *r = calloc(1, sizeof(*r));
    int rc;
    if (r == NULL || (r->chunks = calloc(NCHUNKS, sizeof(chunk_t))) == NULL) {
        snprintf(errstr, errlen, "jsonl reader: out of memory");
        goto fail;
    }
    for (int k = 0; k < NCHUNKS; k++)
        for (int i = 0; i < CHUNK; i++)
            rs_event_init(&r->chunks[k].items[i].ev);
    r->in = in;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    if ((rc = pthread_create(&r->thread, NULL, reader_main, r)) != 0) {
        snprintf(errstr, errlen, "jsonl reader: cannot start its thread: %s", strerror(rc));
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->mu);
        goto fail;
    }
    r->started = 1;
    *out = r;
    return 0;
fail:
    if (r != NULL)
        free(r->chunks);
    free(r);
    return -1;
}

void rs_codec_jsonl_destroy(rs_codec_jsonl_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    for (int k = 0; k < NCHUNKS; k++) {
        for (int i = 0; i < CHUNK; i++) {
            rs_event_clear(&r->chunks[k].items[i].ev);
            free(r->chunks[k].text[i]);
        }
    }
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->mu);
    free(r->chunks);
    free(r);
}

rs_codec_jsonl_item_t *rs_codec_jsonl_next(rs_codec_jsonl_t *r)
{
    for (;;) {
        chunk_t *c = &r->chunks[r->cur];
        if (r->done)
            return NULL;
        if (!r->have) { /* wait for the reader to hand the chunk over */
            pthread_mutex_lock(&r->mu);
            while (!c->full)
                pthread_cond_wait(&r->cond, &r->mu);
            pthread_mutex_unlock(&r->mu);
            r->have = 1;
        }
        if (r->pos < c->n)
            return &c->items[r->pos++];
        /* the chunk is used up: give it back */
        pthread_mutex_lock(&r->mu);
        int last = c->last;
        c->full = 0;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
        r->have = 0;
        r->pos = 0;
        r->cur = (r->cur + 1) % NCHUNKS;
        if (last)
            r->done = 1;
    }
}

rs_codec_jsonl_item_t *rs_codec_jsonl_peek(rs_codec_jsonl_t *r, int k)
{
    const chunk_t *c = &r->chunks[r->cur];
    int i = r->pos - 1 + k; /* pos: the item after the one returned last */
    if (r->done || !r->have || k < 1 || i >= c->n)
        return NULL;
    return &r->chunks[r->cur].items[i];
}

long rs_codec_jsonl_lines(rs_codec_jsonl_t *r)
{
    pthread_mutex_lock(&r->mu);
    long n = r->lines;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int rs_codec_jsonl_error(rs_codec_jsonl_t *r)
{
    pthread_mutex_lock(&r->mu);
    int e = r->err;
    pthread_mutex_unlock(&r->mu);
    return e;
}
