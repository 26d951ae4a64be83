/*
 * rs_connect_internal.h — what rs_connect.c (journals, files) and
 * rs_connect_formats.c (the columns of each system) share. Private to
 * workers/connect.
 *
 * Invariants: a journal's lines balance before a format sees it; a format's
 * write() appends exactly rows_of() rows (each ended by the format's line
 * end) to the buffer, or fails with errstr naming the journal and field.
 *
 * Ownership: journals and lines borrow their strings from the entries (or
 * the policy) for the duration of one write.
 */
#ifndef RS_CONNECT_INTERNAL_H
#define RS_CONNECT_INTERNAL_H

#include <stddef.h>

#include "rs_connect.h"
#include "rs_strbuf.h"

typedef struct rs_cx_line {
    const char *code;
    rs_account_t role;
    const char *product;  /* "" when none */
    const char *customer; /* "" when none */
    rs_money_t debit, credit;
} rs_cx_line_t;

typedef struct rs_cx_journal {
    char number[80];         /* stable: from entry_id, or RS-<period>-<currency> */
    const rs_entry_t *entry; /* NULL for a summary */
    rs_date_t date;
    rs_period_t period;
    const char *currency;
    int exponent;
    const char *customer; /* the entry's customer; "" for a summary */
    char memo[512];
    rs_cx_line_t *lines;
    size_t n;
} rs_cx_journal_t;

typedef struct rs_cx_format rs_cx_format_t;
struct rs_cx_format {
    const char *name;
    const char *const *columns;     /* header cells, NULL-terminated */
    const char *eol;                /* "\r\n" or "\n" */
    size_t max_rows;                /* data rows per file; 0: no limit */
    size_t max_bytes;               /* bytes per file; 0: no limit */
    size_t max_number;              /* longest journal number the system takes */
    rs_connect_encoding_t encoding; /* the default */
    const char *sjis_name;          /* iconv name of its Shift_JIS */
    const char *currency_only;      /* NULL, or the one currency it takes */
    int names_receivables;          /* summary: A/R lines per customer */
    size_t (*rows_of)(const rs_cx_journal_t *j);
    int (*write)(const rs_cx_format_t *f, const rs_connect_opts_t *o, const rs_cx_journal_t *j,
                 size_t seq, rs_strbuf_t *out, char *errstr, size_t errlen);
};

/* The format's descriptor, or NULL. */
const rs_cx_format_t *rs_cx_format(int format);
/* The header line (UTF-8, with its line end). */
void rs_cx_header(const rs_cx_format_t *f, rs_strbuf_t *out);
/* A stable journal number for an entry: the id itself when it fits in
 * `max` characters, else "RS" + 16 hex digits of its FNV-1a hash. */
void rs_cx_journal_number(const char *entry_id, size_t max, char *out, size_t outlen);

#endif
