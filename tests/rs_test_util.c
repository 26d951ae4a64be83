/*
 * rs_test_util.c — see rs_test_util.h. Test-only code: aborts on misuse.
 */
#define _GNU_SOURCE /* mkdtemp, program_invocation_short_name */
#include "rs_test_util.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_file.h"

void rs_harness_init(rs_harness_t *h, const rs_policy_t *policy)
{
    char err[256];
    memset(h, 0, sizeof(*h));
    if (rs_engine_new(&h->engine, policy, err, sizeof(err))) {
        fprintf(stderr, "rs_engine_new: %s\n", err);
        abort();
    }
    rs_journal_init(&h->journal);
    rs_engine_set_sink(h->engine, rs_journal_sink, &h->journal);
}

void rs_harness_free(rs_harness_t *h)
{
    rs_engine_destroy(h->engine);
    rs_journal_free(&h->journal);
    memset(h, 0, sizeof(*h));
}

int rs_harness_apply(rs_harness_t *h, const char *json)
{
    rs_event_t ev;
    rs_event_init(&ev);
    if (rs_codec_json_decode(json, strlen(json), &ev, h->last_error, sizeof(h->last_error))) {
        h->rejected++;
        return RS_APPLY_REJECTED;
    }
    int rc = rs_engine_apply(h->engine, &ev, h->last_error, sizeof(h->last_error));
    rs_event_clear(&ev);
    if (rc == RS_APPLY_REJECTED)
        h->rejected++;
    rs_rejection_t *late = NULL;
    size_t nl = rs_engine_take_late_rejections(h->engine, &late);
    if (nl > 0) {
        h->rejected += (int)nl;
        snprintf(h->last_error, sizeof(h->last_error), "%s", late[nl - 1].reason);
    }
    free(late);
    return rc;
}

int rs_harness_feed(rs_harness_t *h, const char *jsonl)
{
    int before = h->rejected;
    const char *p = jsonl;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = malloc(len + 1);
        if (line == NULL)
            abort();
        memcpy(line, p, len);
        line[len] = '\0';
        size_t k = strspn(line, " \t\r");
        if (line[k] != '\0')
            rs_harness_apply(h, line);
        free(line);
        p += len;
        if (*p == '\n')
            p++;
    }
    return h->rejected - before;
}

rs_money_t rs_amt(const char *s, int exponent)
{
    rs_decimal_t d;
    rs_money_t v;
    char err[128];
    if (rs_decimal_parse(s, &d, err, sizeof(err)) ||
        rs_decimal_to_minor(d, exponent, &v, err, sizeof(err))) {
        fprintf(stderr, "rs_amt(%s): %s\n", s, err);
        abort();
    }
    return v;
}

rs_money_t rs_minor(const char *s)
{
    const char *dot = strchr(s, '.');
    return rs_amt(s, dot ? (int)strlen(dot + 1) : 0);
}

static rs_period_t period_arg(const char *s)
{
    rs_period_t p;
    if (rs_period_parse(s, &p)) {
        fprintf(stderr, "bad period %s\n", s);
        abort();
    }
    return p;
}

rs_money_t rs_h_recognized(rs_harness_t *h, const char *contract, const char *line,
                           const char *period, const char *through)
{
    rs_schedule_row_t *rows = NULL;
    size_t n = 0;
    rs_period_t p = period_arg(period);
    if (rs_report_schedule(h->engine, &h->journal, period_arg(through), &rows, &n))
        abort();
    rs_money_t sum = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].contract_id, contract) == 0 &&
            (line == NULL || strcmp(rows[i].line_id, line) == 0) && rows[i].period == p)
            sum += rows[i].recognized;
    free(rows);
    return sum;
}

rs_balance_row_t rs_h_balance(rs_harness_t *h, const char *contract, const char *line,
                              const char *through)
{
    rs_balance_row_t *rows = NULL, r;
    size_t n = 0;
    if (rs_report_balances(h->engine, &h->journal, period_arg(through), &rows, &n))
        abort();
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].contract_id, contract) == 0 && strcmp(rows[i].line_id, line) == 0) {
            r = rows[i];
            free(rows);
            return r;
        }
    fprintf(stderr, "no balance row for %s/%s\n", contract, line);
    abort();
}

int rs_h_unbalanced_entries(const rs_harness_t *h)
{
    int bad = 0;
    for (size_t i = 0; i < h->journal.n; i++) {
        const rs_entry_t *e = &h->journal.entries[i];
        rs_money_t d = 0, c = 0;
        for (int k = 0; k < e->n_postings; k++) {
            if (e->postings[k].debit < 0 || e->postings[k].credit < 0)
                bad++;
            d += e->postings[k].debit;
            c += e->postings[k].credit;
        }
        if (d != c)
            bad++;
    }
    return bad;
}

uint64_t rs_test_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* ---- temporary directories ---- */

char rs_test_dir[64];

void rs_test_mkdtemp(char *buf, size_t len, const char *prefix)
{
    int n = snprintf(buf, len, "/tmp/%s.XXXXXX", prefix);
    cr_assert(n > 0 && (size_t)n < len, "temp dir name /tmp/%s.XXXXXX too long", prefix);
    cr_assert_not_null(mkdtemp(buf), "mkdtemp %s: %s", buf, strerror(errno));
}

void rs_test_rm_rf(const char *dir)
{
    const char *keep = getenv("RS_TEST_KEEP");
    if (keep != NULL && strcmp(keep, "1") == 0 && strncmp(dir, "/tmp/rs_", 8) == 0) {
        cr_log_info("kept %s (RS_TEST_KEEP=1)", dir);
        return;
    }
    rs_remove_tree(dir);
}

void rs_test_dir_setup(void)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "rs_%s", program_invocation_short_name);
    rs_test_mkdtemp(rs_test_dir, sizeof rs_test_dir, prefix);
}

void rs_test_dir_teardown(void)
{
    if (rs_test_dir[0] != '\0')
        rs_test_rm_rf(rs_test_dir);
}
