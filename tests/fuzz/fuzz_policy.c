/*
 * fuzz_policy — libFuzzer target for the policy file parser
 * (rs_policy_parse, workers/engine/rs_policy.c, over workers/base/rs_props.c).
 *
 * Built by CMake with RS_FUZZ=ON (tests/fuzz/CMakeLists.txt); run by `make
 * fuzz` and, once per seed, by ctest (fuzz_policy_corpus).
 *
 * Seeds (tests/fuzz/corpus/fuzz_policy/): examples/policy.properties and small
 * files with every policy value, account codes per role and per product,
 * comments, bad keys and values.
 *
 * Invariants checked on every input (a violation aborts, which libFuzzer reports):
 *   - parsing never crashes or reads out of bounds (ASan/UBSan);
 *   - a refused file has a message naming a line ("line N");
 *   - an accepted one holds valid enum values and at most
 *     RS_POLICY_MAX_CODES NUL-terminated codes, and rs_policy_account_code
 *     gives a non-empty code for every role, with and without a product;
 *   - parsing is deterministic: the same text over the defaults gives the
 *     same policy and the same message.
 *
 * Ownership: nothing is allocated that outlives the call.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const char *text, rs_policy_t *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    rs_policy_defaults(p);
    memset(err, 0, errlen);
    return rs_policy_parse(p, text, err, errlen);
}

static void check_policy(const rs_policy_t *p)
{
    if (p->cancellation != RS_CANCEL_KEEP_DEFERRED && p->cancellation != RS_CANCEL_FORFEIT)
        abort();
    if (p->bad_debt != RS_BAD_DEBT_ALLOWANCE && p->bad_debt != RS_BAD_DEBT_REVERSE_REVENUE)
        abort();
    if (p->proration != RS_PRORATE_DAYS_IN_MONTH && p->proration != RS_PRORATE_30_360)
        abort();
    if (p->n_codes < 0 || p->n_codes > RS_POLICY_MAX_CODES)
        abort();
    for (int i = 0; i < p->n_codes; i++) {
        const rs_account_code_t *c = &p->codes[i];
        if (memchr(c->code, '\0', sizeof c->code) == NULL ||
            memchr(c->product, '\0', sizeof c->product) == NULL || c->role < 0 ||
            c->role >= RS_ACCT__COUNT)
            abort();
    }
    for (int r = 0; r < RS_ACCT__COUNT; r++) {
        const char *a = rs_policy_account_code(p, (rs_account_t)r, "");
        const char *b = rs_policy_account_code(p, (rs_account_t)r,
                                               p->n_codes > 0 ? p->codes[0].product : "x");
        if (a == NULL || b == NULL || a[0] == '\0' || b[0] == '\0')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    rs_policy_t p1, p2;
    char e1[512], e2[512];

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    int r1 = parse(text, &p1, e1, sizeof e1);
    int r2 = parse(text, &p2, e2, sizeof e2);
    if (r1 != r2 || strcmp(e1, e2) != 0)
        abort();
    if (r1 != 0) {
        if (strstr(e1, "line ") == NULL)
            abort();
    } else {
        check_policy(&p1);
        if (p1.cancellation != p2.cancellation || p1.bad_debt != p2.bad_debt ||
            p1.proration != p2.proration || p1.n_codes != p2.n_codes)
            abort();
        for (int i = 0; i < p1.n_codes; i++)
            if (p1.codes[i].role != p2.codes[i].role ||
                strcmp(p1.codes[i].code, p2.codes[i].code) != 0 ||
                strcmp(p1.codes[i].product, p2.codes[i].product) != 0)
                abort();
    }
    free(text);
    return 0;
}
