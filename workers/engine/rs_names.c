/*
 * rs_names.c — names of accounts and entry kinds, and policy defaults.
 */
#include "rs_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const account_names[RS_ACCT__COUNT] = {
    [RS_ACCT_ACCOUNTS_RECEIVABLE] = "accounts_receivable",
    [RS_ACCT_CASH] = "cash",
    [RS_ACCT_DEFERRED_REVENUE] = "deferred_revenue",
    [RS_ACCT_UNBILLED_RECEIVABLE] = "unbilled_receivable",
    [RS_ACCT_REVENUE] = "revenue",
    [RS_ACCT_REVENUE_CONTRA] = "revenue_contra",
    [RS_ACCT_TAX_PAYABLE] = "tax_payable",
    [RS_ACCT_BAD_DEBT_EXPENSE] = "bad_debt_expense",
    [RS_ACCT_ALLOWANCE_DOUBTFUL] = "allowance_doubtful",
    [RS_ACCT_CUSTOMER_CREDIT] = "customer_credit",
};

const char *rs_account_name(rs_account_t a)
{
    if ((int)a < 0 || a >= RS_ACCT__COUNT)
        return "?";
    return account_names[a];
}

static const char *const kind_names[RS_ENTRY__COUNT] = {
    [RS_ENTRY_INVOICE] = "invoice",     [RS_ENTRY_RECOGNITION] = "recognition",
    [RS_ENTRY_PAYMENT] = "payment",     [RS_ENTRY_CREDIT_NOTE] = "credit_note",
    [RS_ENTRY_REFUND] = "refund",       [RS_ENTRY_VOID] = "void",
    [RS_ENTRY_WRITE_OFF] = "write_off", [RS_ENTRY_RECOVERY] = "recovery",
    [RS_ENTRY_FORFEIT] = "forfeit",     [RS_ENTRY_CUSTOMER_CREDIT] = "customer_credit",
};

const char *rs_entry_kind_name(rs_entry_kind_t k)
{
    if ((int)k < 0 || k >= RS_ENTRY__COUNT)
        return "?";
    return kind_names[k];
}

void rs_policy_defaults(rs_policy_t *p)
{
    memset(p, 0, sizeof(*p));
    p->cancellation = RS_CANCEL_KEEP_DEFERRED;
    p->bad_debt = RS_BAD_DEBT_ALLOWANCE;
    p->proration = RS_PRORATE_DAYS_IN_MONTH;
}

static int account_from_name(const char *name, size_t len)
{
    for (int a = 0; a < RS_ACCT__COUNT; a++)
        if (strlen(account_names[a]) == len && strncmp(account_names[a], name, len) == 0)
            return a;
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

int rs_policy_parse(rs_policy_t *p, const char *text, char *errstr, size_t errlen)
{
    int lineno = 0, rc = -1;
    char *copy = strdup(text), *next = copy;
    if (copy == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    while (next != NULL) {
        char *ln = next;
        next = strchr(ln, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        char *hash = strchr(ln, '#'); /* a comment runs to the end of the line */
        if (hash)
            *hash = '\0';
        char *s = trim(ln);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(errstr, errlen, "policy line %d: expected key = value", lineno);
            goto out;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
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
                snprintf(errstr, errlen, "policy line %d: %s: unknown account role", lineno,
                         key);
                goto out;
            }
            if (*val == '\0' || strlen(val) >= RS_ACCOUNT_CODE_MAX ||
                (dot && (strlen(dot + 1) == 0 || strlen(dot + 1) >= RS_NAME_MAX)))
                goto badval;
            if (p->n_codes >= RS_POLICY_MAX_CODES) {
                snprintf(errstr, errlen, "policy line %d: %s: more than %d account codes",
                         lineno, key, RS_POLICY_MAX_CODES);
                goto out;
            }
            rs_account_code_t *c = &p->codes[p->n_codes++];
            c->role = (rs_account_t)a;
            snprintf(c->product, sizeof(c->product), "%s", dot ? dot + 1 : "");
            snprintf(c->code, sizeof(c->code), "%s", val);
        } else {
            snprintf(errstr, errlen, "policy line %d: %s: unknown key", lineno, key);
            goto out;
        }
        continue;
    badval:
        snprintf(errstr, errlen, "policy line %d: %s: invalid value \"%s\"", lineno, key, val);
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
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
