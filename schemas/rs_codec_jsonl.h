/*
 * rs_codec_jsonl — a JSON Lines file of events, read and decoded on a thread
 * of its own, handed over in file order.
 *
 * A replay spends its time in two stages that do not depend on each other
 * until the event is applied: reading and decoding a line (rs_codec_json_
 * decode), and applying the event. The reader runs the first stage on its own
 * thread, a bounded number of lines ahead, so the two overlap on two cores.
 *
 * Invariants:
 *   - Items come out in file order, one per line that is not blank (only
 *     spaces, tabs, CR, LF); blank lines are skipped but counted, so `line`
 *     is the file's line number (from 1). A UTF-8 byte-order mark at the very
 *     start of the input is skipped.
 *   - An item either decoded (rc 0, ev filled) or not (rc -1, errstr holds
 *     the codec's message and text/len the raw line, for the caller's own
 *     diagnostics). The result is exactly what rs_codec_json_decode() gives
 *     for that line on the caller's thread. A decoded item carries its
 *     event's digest (rs_engine_event_digest), computed on the reader's
 *     thread too; it is of the event as decoded (change the event, and the
 *     digest no longer holds).
 *   - At most RS_JSONL_AHEAD items are decoded and not yet handed over:
 *     memory is bounded by that many events and lines, whatever the file.
 *   - A read error ends the items early; rs_codec_jsonl_error() then says
 *     which errno. Running out of memory is reported the same way (ENOMEM).
 *
 * Ownership and threads: the reader borrows `in` (the caller closes it after
 * destroy) and owns its thread, the items and their events. An item is valid
 * until the next rs_codec_jsonl_next() or destroy; the caller may change its
 * event (the reader clears it when it reuses the item). One consumer thread.
 * Destroying a reader that has not reached the end stops its thread first.
 */
#ifndef RS_CODEC_JSONL_H
#define RS_CODEC_JSONL_H

#include <stddef.h>
#include <stdio.h>

#include "rs_engine.h"
#include "rs_event.h"

#define RS_JSONL_AHEAD 1024 /* decoded items in flight, at most */

typedef struct rs_codec_jsonl rs_codec_jsonl_t;

typedef struct rs_codec_jsonl_item {
    long line;
    int rc; /* 0: ev decoded; -1: did not decode (errstr, text) */
    rs_event_t ev;
    rs_event_digest_t digest; /* rc 0: rs_engine_event_digest(&ev), for
                                 rs_engine_apply_digested */
    char errstr[512];
    const char *text; /* rc -1 only: the line as read, len bytes */
    size_t len;
} rs_codec_jsonl_item_t;

/* Start reading `in`. Returns 0, or -1 with errstr. */
int rs_codec_jsonl_new(rs_codec_jsonl_t **out, FILE *in, char *errstr, size_t errlen);
void rs_codec_jsonl_destroy(rs_codec_jsonl_t *r); /* accepts NULL */

/* The next item, or NULL at the end of the input or after an error. */
rs_codec_jsonl_item_t *rs_codec_jsonl_next(rs_codec_jsonl_t *r);

/* The item k (>= 1) after the one next() returned last, if the reader has
 * already handed it over in the same batch; else NULL. For looking ahead
 * (rs_engine_prefetch): next() still returns every item in order. */
rs_codec_jsonl_item_t *rs_codec_jsonl_peek(rs_codec_jsonl_t *r, int k);

/* Lines read so far, blank ones included (all of them once next() gave NULL). */
long rs_codec_jsonl_lines(rs_codec_jsonl_t *r);

/* 0, or the errno that ended the input early (read error, ENOMEM). */
int rs_codec_jsonl_error(rs_codec_jsonl_t *r);

#endif
