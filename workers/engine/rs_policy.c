/*
 * rs_policy.c — the engine's policy: its defaults, the policy file parser and
 * the account code lookup (declared in rs_engine.h).
 *
 * Invariants:
 *   - The text is split into lines, comments and key = value pairs by
 *     rs_props (RS_PROPS_TRAILING_COMMENTS: a '#' anywhere starts a comment;
 *     lines are counted from 1, blank ones included). This file only
 *     interprets keys and values.
 *   - Every error names its line: "policy line N: expected key = value", or
 *     "policy line N: KEY: <reason>". The parse stops at the first error;
 *     what the lines before it set stays set.
 *   - A policy holds at most RS_POLICY_MAX_CODES account codes. A product's
 *     code for a role beats the role's code, which beats the role's name.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <string.h>

#include "rs_props.h"

/* What rs_policy_parse's callback returns on an error (never RS_PROPS_ENOMEM). */
#define POLICY_ERROR 1

void rs_policy_defaults(rs_policy_t *p)
{
    memset(p, 0, sizeof(*p));
    p->cancellation = RS_CANCEL_KEEP_DEFERRED;
    p->bad_debt = RS_BAD_DEBT_ALLOWANCE;
    p->proration = RS_PRORATE_DAYS_IN_MONTH;
}

static int account_from_name(const char *name, size_t len)
{
    for (int a = 0; a < RS_ACCT__COUNT; a++) {
        const char *n = rs_account_name((rs_account_t)a);
        if (strlen(n) == len && strncmp(n, name, len) == 0)
            return a;
    }
    return -1;
}

typedef struct policy_ctx {
    rs_policy_t *p;
    char *errstr;
    size_t errlen;
} policy_ctx_t;

/* One key = value line of the policy file (rs_props_fn). */
static int policy_line(void *opaque, int lineno, char *key, char *val)
{
    policy_ctx_t *x = opaque;
    rs_policy_t *p = x->p;

    if (val == NULL) {
        snprintf(x->errstr, x->errlen, "policy line %d: expected key = value", lineno);
        return POLICY_ERROR;
    }
    if (strcmp(key, "policy.cancellation") == 0) {
        if (strcmp(val, "keep_deferred") == 0)
            p->cancellation = RS_CANCEL_KEEP_DEFERRED;
        else if (strcmp(val, "forfeit") == 0)
            p->cancellation = RS_CANCEL_FORFEIT;
        else
            goto badval;
    } else if (strcmp(key, "policy.bad_debt") == 0) {
        if (strcmp(val, "allowance") == 0)
            p->bad_debt = RS_BAD_DEBT_ALLOWANCE;
        else if (strcmp(val, "reverse_revenue") == 0)
            p->bad_debt = RS_BAD_DEBT_REVERSE_REVENUE;
        else
            goto badval;
    } else if (strcmp(key, "policy.proration") == 0) {
        if (strcmp(val, "days_in_month") == 0)
            p->proration = RS_PRORATE_DAYS_IN_MONTH;
        else if (strcmp(val, "30_360") == 0)
            p->proration = RS_PRORATE_30_360;
        else
            goto badval;
    } else if (strncmp(key, "account.", 8) == 0) {
        const char *role = key + 8, *dot = strchr(role, '.');
        size_t rlen = dot ? (size_t)(dot - role) : strlen(role);
        int a = account_from_name(role, rlen);
        if (a < 0) {
            snprintf(x->errstr, x->errlen, "policy line %d: %s: unknown account role", lineno,
                     key);
            return POLICY_ERROR;
        }
        if (*val == '\0' || strlen(val) >= RS_ACCOUNT_CODE_MAX ||
            (dot && (strlen(dot + 1) == 0 || strlen(dot + 1) >= RS_NAME_MAX)))
            goto badval;
        if (p->n_codes >= RS_POLICY_MAX_CODES) {
            snprintf(x->errstr, x->errlen, "policy line %d: %s: more than %d account codes",
                     lineno, key, RS_POLICY_MAX_CODES);
            return POLICY_ERROR;
        }
        rs_account_code_t *c = &p->codes[p->n_codes++];
        c->role = (rs_account_t)a;
        snprintf(c->product, sizeof(c->product), "%s", dot ? dot + 1 : "");
        snprintf(c->code, sizeof(c->code), "%s", val);
    } else {
        snprintf(x->errstr, x->errlen, "policy line %d: %s: unknown key", lineno, key);
        return POLICY_ERROR;
    }
    return 0;
badval:
    snprintf(x->errstr, x->errlen, "policy line %d: %s: invalid value \"%s\"", lineno, key,
             val);
    return POLICY_ERROR;
}

int rs_policy_parse(rs_policy_t *p, const char *text, char *errstr, size_t errlen)
{
    policy_ctx_t x = {p, errstr, errlen};
    int rc = rs_props_parse(text, RS_PROPS_TRAILING_COMMENTS, policy_line, &x);
    if (rc == RS_PROPS_ENOMEM)
        snprintf(errstr, errlen, "out of memory");
    return rc == 0 ? 0 : -1;
}

const char *rs_policy_account_code(const rs_policy_t *p, rs_account_t role, const char *product)
{
    const char *generic = NULL;
    for (int i = 0; p && i < p->n_codes; i++) {
        if (p->codes[i].role != role)
            continue;
        if (p->codes[i].product[0] == '\0')
            generic = p->codes[i].code;
        else if (product && strcmp(p->codes[i].product, product) == 0)
            return p->codes[i].code;
    }
    return generic ? generic : rs_account_name(role);
}
