/*
 * rs_names.c — the names of accounts and entry kinds (the role names of
 * events.md), as the journal and the reports print them. The policy, which
 * maps these roles to account codes, is in rs_policy.c.
 */
#include "rs_engine.h"

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
