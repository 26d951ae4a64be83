/*
 * rs_export_check — reading back the files `revstream export` writes, for
 * the tests (test_export, test_worker_codes): every journal and every file
 * re-balances, and the revenue they carry per currency.
 *
 * Conventions: every helper fails the calling Criterion test on error. The
 * files are read as the accounting system would: in their encoding
 * (Shift_JIS / CP932 converted back with iconv, a UTF-8 BOM skipped), CSV
 * per RFC 4180, rows grouped into journals by the system's key (QuickBooks
 * Journal No., Xero Narration + Date, NetSuite External ID, freee 日付 +
 * 伝票番号, MoneyForward 取引No + 取引日, csv journal_no).
 *
 * Ownership: the caller owns `revenue` (a JSON object: currency -> minor
 * units, added to).
 */
#ifndef RS_EXPORT_CHECK_H
#define RS_EXPORT_CHECK_H

#include <jansson.h>
#include <stddef.h>

#include "rs_engine.h"

/* Checks one file of `format` and adds its revenue (credit - debit of the
 * accounts in revenue_codes, NULL-terminated) per currency to `revenue`.
 * `currency` names the file's currency when the format has no column for it
 * (Xero; freee and MoneyForward are JPY). Returns the journals in the file
 * and sets *rows to its data rows. */
size_t xc_check_file(const char *format, const char *path, const char *currency,
                     const char *const *revenue_codes, json_t *revenue, size_t *rows);

/* The codes of the revenue and revenue_contra roles in a policy file (every
 * product's), NULL-terminated, in a static array. */
const char *const *xc_revenue_codes(const char *policy_path);

/* `revstream export ARGS...` (argv without the program and command); the
 * paths it printed, as a JSON array (caller decrefs). Fails unless exit 0. */
json_t *xc_export(const char *const *args, const char *dir);

/* minor units of a decimal string in a currency of `exponent` digits */
rs_money_t xc_minor(const char *s, int exponent);

#endif
