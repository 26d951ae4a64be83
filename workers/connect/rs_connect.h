/*
 * rs_connect — journal entries out as the import files of accounting
 * systems: QuickBooks Online, Xero, NetSuite, freee, MoneyForward クラウド会計,
 * and a plain CSV. The formats and their limits are those of
 * shared/reference/connectors.md; docs/exports.md says what each column
 * holds.
 *
 * Invariants:
 *   - Exact: amounts are the entries' integer minor units, printed with the
 *     currency's exponent; no floating point.
 *   - Every journal written balances (debits = credits), and so does every
 *     file; a journal is never split across files. A journal that does not
 *     balance, an amount a system cannot hold (NetSuite: 2 decimals, 10
 *     integer digits), a currency a JPY-only system cannot take, or a text
 *     that the file's encoding cannot hold is an error naming the entry, and
 *     nothing is left half-written (files are written to a temporary name
 *     and renamed at the end).
 *   - One journal per entry (its number derived from entry_id, so the same
 *     entry always has the same number and a second import of a file is
 *     recognised as the same journals) or, with `summary`, one journal per
 *     period and currency with one line per account (net), A/R lines split
 *     by customer where the system needs a name on them (QuickBooks).
 *   - Deterministic: entries are written in (posted_on, contract_id, seq)
 *     order; the same entries give the same bytes.
 *   - Files: <out_dir>/<format>-<YYYY-MM>.csv, or -<k>.csv (k from 1) when a
 *     system's limit (Xero 300 lines, NetSuite 25,000 rows or 50 MB, or
 *     `max_rows` when lower) splits them.
 *   - Account codes: a posting's own code (what the journal topic carries);
 *     for a posting without one (a version-1 record) the policy's code for
 *     its role and product.
 *
 * Ownership: the caller keeps the entries; rs_connect_export() copies what
 * it needs. The result's file names are malloc'd; rs_connect_result_free()
 * releases them. No global state; not thread-safe per call only in that the
 * progress callback runs on the caller's thread.
 */
#ifndef RS_CONNECT_H
#define RS_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "rs_engine.h"

typedef enum rs_connect_format {
    RS_CONNECT_QUICKBOOKS = 0,
    RS_CONNECT_XERO,
    RS_CONNECT_NETSUITE,
    RS_CONNECT_FREEE,
    RS_CONNECT_MONEYFORWARD,
    RS_CONNECT_CSV,
    RS_CONNECT__COUNT
} rs_connect_format_t;

/* The format named `name` ("quickbooks", ...), or -1. */
int rs_connect_format_from_name(const char *name);
const char *rs_connect_format_name(rs_connect_format_t f);

typedef enum rs_connect_encoding {
    RS_CONNECT_ENC_DEFAULT = 0, /* the system's: UTF-8; MoneyForward CP932 */
    RS_CONNECT_ENC_UTF8,
    RS_CONNECT_ENC_UTF8_BOM,
    RS_CONNECT_ENC_SHIFT_JIS, /* freee: SHIFT_JIS; MoneyForward: CP932 (glibc iconv) */
} rs_connect_encoding_t;

/* "utf-8", "utf-8-bom", "shift_jis" (also "cp932", "sjis"), or -1. */
int rs_connect_encoding_from_name(const char *name);

/* Progress: called every `progress_every` entries and at the end. */
typedef void (*rs_connect_progress_fn)(void *opaque, size_t done, size_t total, size_t files);

typedef struct rs_connect_opts {
    rs_connect_format_t format;
    rs_period_t period;        /* only entries posted in this accounting period */
    const char *currency;      /* NULL: every currency; else only this one */
    int summary;               /* 1: one journal per period and currency */
    const char *out_dir;       /* must exist */
    const rs_policy_t *policy; /* codes for postings without one; NULL: role names */
    rs_connect_encoding_t encoding;
    const char *tax_rate;   /* Xero's TaxRate column; NULL: "Tax Exempt" */
    const char *subsidiary; /* NetSuite OneWorld subsidiary; NULL: empty */
    size_t max_rows;        /* 0: the system's limit; else the lower of the two */
    rs_connect_progress_fn progress;
    void *progress_opaque;
    size_t progress_every; /* 0: 10000 */
} rs_connect_opts_t;

typedef struct rs_connect_result {
    size_t entries;  /* entries of the period (and currency) exported */
    size_t journals; /* journals written */
    size_t rows;     /* data rows written (headers not counted) */
    size_t n_files;
    char **files; /* paths, in order */
} rs_connect_result_t;

/* Export the entries of opts->period. Returns 0, or -1 with errstr set (no
 * file left behind). An empty period writes one file with the header only. */
int rs_connect_export(const rs_connect_opts_t *opts, const rs_entry_t *entries, size_t n,
                      rs_connect_result_t *res, char *errstr, size_t errlen);
void rs_connect_result_free(rs_connect_result_t *res); /* accepts NULL */

#endif
