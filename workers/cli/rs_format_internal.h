/*
 * rs_format_internal.h — the table, CSV and JSON helpers of rs_format.c,
 * shared with the other files of the rs_format library (rs_format_ledger.c,
 * rs_format_html.c). Private to the library; see rs_format.c for their
 * invariants (exact overflow-checked totals, tables that own their cells,
 * JSON rows printed one per line).
 */
#ifndef RS_FORMAT_INTERNAL_H
#define RS_FORMAT_INTERNAL_H

#include <jansson.h>
#include <stdio.h>

#include "rs_engine.h"

#define MONEY_BUF 64
#define PERIOD_BUF 16

/* ---- exact totals ---- */
typedef struct sum {
    rs_money_t v;
    int overflow;
} sum_t;

void sum_add(sum_t *s, rs_money_t v);
const char *sum_str(const sum_t *s, int exponent, char *buf); /* buf: MONEY_BUF */

/* ---- tables ---- */
#define TBL_MAX_COLS 12

typedef struct tbl_row {
    char *cells[TBL_MAX_COLS]; /* NULL = empty */
    int rule;                  /* a line of dashes */
} tbl_row_t;

typedef struct tbl {
    int ncols;
    const char *head[TBL_MAX_COLS];
    int right[TBL_MAX_COLS];
    tbl_row_t *rows;
    size_t n, cap;
    int nomem;
} tbl_t;

/* heads[c] starting with '>' makes column c right-aligned. */
void tbl_init(tbl_t *t, int ncols, const char *const *heads);
void tbl_free(tbl_t *t);
void tbl_add(tbl_t *t, const char *const *cells); /* NULL cell = empty */
void tbl_rule(tbl_t *t);
int tbl_print(const tbl_t *t, FILE *f);
void tbl_title(FILE *f, const char *title, const char *prefix, rs_period_t through);

/* ---- CSV and JSON ---- */
void csv_row(FILE *f, int n, const char *const *fields);
typedef struct jw {
    FILE *f;
    size_t i;
    int err;
} jw_t;

void jw_begin(jw_t *w, FILE *f);
void jw_row(jw_t *w, json_t *obj); /* takes obj; NULL: building it failed */
int jw_end(jw_t *w);
json_t *jstr(const char *s);
json_t *jmoney(rs_money_t v, int exponent);
json_t *jperiod(rs_period_t p);
json_t *jdone(json_t *o, int rc);

int finish(FILE *f, int rc);
const char *period_str(rs_period_t p, char *buf); /* buf: PERIOD_BUF */

#endif
