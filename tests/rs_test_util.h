/*
 * rs_test_util — helpers shared by the tests: run JSON Lines through an
 * engine and look up amounts in its reports; a temporary directory per
 * test.
 */
#ifndef RS_TEST_UTIL_H
#define RS_TEST_UTIL_H

#include <stddef.h>

#include "rs_codec.h"
#include "rs_engine.h"
#include "rs_report.h"

typedef struct rs_harness {
    rs_engine_t *engine;
    rs_journal_t journal;
    int rejected;         /* events rejected so far */
    char last_error[512]; /* the last rejection's message */
} rs_harness_t;

/* A harness with default policies (policy may be NULL). Aborts on failure. */
void rs_harness_init(rs_harness_t *h, const rs_policy_t *policy);
void rs_harness_free(rs_harness_t *h);
/* Apply every line of `jsonl` (blank lines skipped). Returns how many were
 * rejected by this call. */
int rs_harness_feed(rs_harness_t *h, const char *jsonl);
/* Feed one event; returns its rs_apply_result_t (decode errors count as rejected). */
int rs_harness_apply(rs_harness_t *h, const char *json);
/* Parse an amount into minor units with `exponent` digits ("1000.00" -> 100000). */
rs_money_t rs_amt(const char *s, int exponent);
/* A report's decimal string in minor units of its own scale ("12.50" ->
 * 1250, "1200000" -> 1200000): the exponent is the digits it shows. */
rs_money_t rs_minor(const char *s);
/* Recognized for (contract, line, period "YYYY-MM") from the schedule report
 * through `through`. line NULL sums the contract's lines. */
rs_money_t rs_h_recognized(rs_harness_t *h, const char *contract, const char *line,
                           const char *period, const char *through);
/* One balances row (through `through`); aborts if absent. */
rs_balance_row_t rs_h_balance(rs_harness_t *h, const char *contract, const char *line,
                              const char *through);
/* A seeded pseudo-random sequence for property tests (xorshift64; *state
 * must not be 0): the next value. */
uint64_t rs_test_rand(uint64_t *state);
/* Check every entry of the journal balances; returns the number that do not. */
int rs_h_unbalanced_entries(const rs_harness_t *h);

/* ---- temporary directories ----
 * A suite whose every test works in its own empty directory:
 *   TestSuite(name, .init = rs_test_dir_setup, .fini = rs_test_dir_teardown);
 * rs_test_dir is then that directory (/tmp/rs_<program>.XXXXXX), removed
 * with everything under it after the test. (Criterion runs each test in its
 * own process, so each test has its own.) */
extern char rs_test_dir[64];
void rs_test_dir_setup(void);
void rs_test_dir_teardown(void);
/* A new empty directory /tmp/<prefix>.XXXXXX into buf (asserts that it
 * fits and was made). */
void rs_test_mkdtemp(char *buf, size_t len, const char *prefix);
/* Remove dir and everything under it, unless RS_TEST_KEEP=1 and dir is
 * under /tmp/rs_ (kept for inspection; logged). */
void rs_test_rm_rf(const char *dir);

#endif
