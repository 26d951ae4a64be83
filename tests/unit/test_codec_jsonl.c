/*
 * test_codec_jsonl — the JSON Lines reader thread (schemas/rs_codec_jsonl.c):
 * items in file order with the file's line numbers, blank lines skipped, a
 * byte-order mark skipped, lines that do not decode handed over with their
 * text and the codec's message, more lines than the read-ahead, and a reader
 * destroyed before the end of its input.
 *
 * Ownership: each test writes its input to a tmpfile() and closes it after
 * destroying the reader.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_codec_jsonl.h"

static FILE *input(const char *text)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    rewind(f);
    return f;
}

static const char PAID[] =
    "{\"event_id\":\"p-%d\",\"type\":\"payment.failed\",\"contract_id\":\"C-1\","
    "\"occurred_at\":\"2026-02-01T00:00:00Z\",\"payment_id\":\"P-%d\",\"invoice_id\":\"I-1\","
    "\"failed_on\":\"2026-02-01\",\"reason\":\"card_declined\"}";

/* A file of n payment.failed events p-1 .. p-n, one a line. */
static FILE *numbered(int n)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    for (int i = 1; i <= n; i++) {
        fprintf(f, PAID, i, i);
        fputc('\n', f);
    }
    rewind(f);
    return f;
}

Test(codec_jsonl, order_lines_blanks_bom_and_bad_lines)
{
    char line1[512], line4[512];
    snprintf(line1, sizeof line1, PAID, 1, 1);
    snprintf(line4, sizeof line4, PAID, 4, 4);
    char text[2048];
    snprintf(text, sizeof text, "\xEF\xBB\xBF%s\n   \n{not json}\n%s", line1, line4);
    FILE *f = input(text);
    rs_codec_jsonl_t *r = NULL;
    char err[256];
    cr_assert_eq(rs_codec_jsonl_new(&r, f, err, sizeof err), 0, "%s", err);

    rs_codec_jsonl_item_t *it = rs_codec_jsonl_next(r);
    cr_assert_not_null(it);
    cr_assert_eq(it->line, 1);
    cr_assert_eq(it->rc, 0, "%s", it->errstr);
    cr_assert_str_eq(it->ev.event_id, "p-1");

    it = rs_codec_jsonl_next(r);
    cr_assert_not_null(it);
    cr_assert_eq(it->line, 3); /* line 2 is blank */
    cr_assert_eq(it->rc, -1);
    cr_assert_eq(it->len, strlen("{not json}\n"));
    cr_assert_eq(memcmp(it->text, "{not json}\n", it->len), 0);
    char want[512];
    rs_event_t ev;
    cr_assert_eq(rs_codec_json_decode("{not json}\n", 11, &ev, want, sizeof want), -1);
    cr_assert_str_eq(it->errstr, want);

    it = rs_codec_jsonl_next(r);
    cr_assert_not_null(it);
    cr_assert_eq(it->line, 4); /* no newline at the end of the file */
    cr_assert_str_eq(it->ev.event_id, "p-4");
    cr_assert_null(rs_codec_jsonl_next(r));
    cr_assert_null(rs_codec_jsonl_next(r));
    cr_assert_eq(rs_codec_jsonl_lines(r), 4);
    cr_assert_eq(rs_codec_jsonl_error(r), 0);
    rs_codec_jsonl_destroy(r);
    fclose(f);
}

Test(codec_jsonl, more_lines_than_the_read_ahead)
{
    int n = 3 * RS_JSONL_AHEAD + 17;
    FILE *f = numbered(n);
    rs_codec_jsonl_t *r = NULL;
    char err[256];
    cr_assert_eq(rs_codec_jsonl_new(&r, f, err, sizeof err), 0, "%s", err);
    int seen = 0;
    rs_codec_jsonl_item_t *it;
    while ((it = rs_codec_jsonl_next(r)) != NULL) {
        seen++;
        char id[32];
        snprintf(id, sizeof id, "p-%d", seen);
        cr_assert_eq(it->line, seen);
        cr_assert_str_eq(it->ev.event_id, id);
    }
    cr_assert_eq(seen, n);
    cr_assert_eq(rs_codec_jsonl_lines(r), n);
    rs_codec_jsonl_destroy(r);
    fclose(f);
}

Test(codec_jsonl, destroyed_before_the_end)
{
    FILE *f = numbered(4 * RS_JSONL_AHEAD);
    rs_codec_jsonl_t *r = NULL;
    char err[256];
    cr_assert_eq(rs_codec_jsonl_new(&r, f, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(rs_codec_jsonl_next(r));
    rs_codec_jsonl_destroy(r); /* stops the thread; ASan checks nothing leaks */
    fclose(f);
    rs_codec_jsonl_destroy(NULL);
}

Test(codec_jsonl, empty_input)
{
    FILE *f = input("");
    rs_codec_jsonl_t *r = NULL;
    char err[256];
    cr_assert_eq(rs_codec_jsonl_new(&r, f, err, sizeof err), 0, "%s", err);
    cr_assert_null(rs_codec_jsonl_next(r));
    cr_assert_eq(rs_codec_jsonl_lines(r), 0);
    rs_codec_jsonl_destroy(r);
    fclose(f);
}

/* peek(k) is the item next() returns k calls later, or NULL (never another
 * one); next() still returns every item once, in order. Each decoded item
 * carries its event's digest, as rs_engine_event_digest computes it. */
Test(codec_jsonl, peek_looks_ahead_and_items_carry_their_digest)
{
    int n = 2 * RS_JSONL_AHEAD + 5;
    FILE *f = numbered(n);
    rs_codec_jsonl_t *r = NULL;
    char err[256];
    cr_assert_eq(rs_codec_jsonl_new(&r, f, err, sizeof err), 0, "%s", err);
    cr_assert_null(rs_codec_jsonl_peek(r, 1)); /* nothing taken yet */
    long ahead[4] = {0};                       /* the line peek(k) promised for call seen + k */
    int seen = 0, peeked = 0;
    rs_codec_jsonl_item_t *it;
    while ((it = rs_codec_jsonl_next(r)) != NULL) {
        seen++;
        cr_assert_eq(it->line, seen);
        if (ahead[seen % 4] != 0)
            cr_assert_eq(ahead[seen % 4], seen, "peek promised line %ld, got %d",
                         ahead[seen % 4], seen);
        ahead[seen % 4] = 0;
        rs_event_digest_t d;
        rs_engine_event_digest(&it->ev, &d);
        cr_assert_eq(it->digest.id_hash, d.id_hash);
        cr_assert_eq(it->digest.content_hash, d.content_hash);
        cr_assert_eq(it->digest.contract_hash, d.contract_hash);
        cr_assert_null(rs_codec_jsonl_peek(r, 0));
        const rs_codec_jsonl_item_t *p = rs_codec_jsonl_peek(r, 3);
        if (p != NULL) {
            cr_assert_eq(p->line, seen + 3);
            ahead[(seen + 3) % 4] = p->line;
            peeked++;
        }
    }
    cr_assert_eq(seen, n);
    cr_assert_gt(peeked, n / 2); /* within a batch, the items ahead are there */
    cr_assert_null(rs_codec_jsonl_peek(r, 1));
    rs_codec_jsonl_destroy(r);
    fclose(f);
}
