/*
 * rs_format.c — see rs_format.h for what each format promises.
 *
 * Invariants kept here:
 *   - Every figure printed is an rs_money_t formatted by rs_money_format or
 *     rs_money_format_grouped with the row's exponent. TOTAL rows are
 *     computed per currency with overflow-checked int64 additions; a total
 *     that would overflow prints as "overflow" instead of a wrong number.
 *   - A table (tbl_t) owns copies of its cells; tbl_free() releases them.
 *     Out of memory while building marks the table failed; tbl_print() then
 *     prints nothing and returns -1 with errno = ENOMEM.
 *   - Table cells never hold control characters (replaced by '?'), and no
 *     printed line ends in spaces. Widths count UTF-8 code points.
 *   - JSON strings that are not valid UTF-8 are printed with the offending
 *     bytes replaced by '?', so the output is always valid JSON. Rows are
 *     dumped with JSON_PRESERVE_ORDER: key order is part of the contract.
 *   - Journal JSON rows are rs_codec_entry_json() output, parsed and
 *     re-dumped; only each posting line is rebuilt (account code, role, then
 *     the codec's keys), so the codec stays the one owner of the entry shape.
 *     Account codes come from rs_policy_account_code() on every path.
 *   - Every public function returns 0, or -1 when memory ran out or the
 *     stream reports an error (ferror); errno is ENOMEM only for the former.
 */
#include "rs_format.h"
#include "rs_format_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_money.h"

int rs_format_parse(const char *name, rs_format_kind_t *out)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "table") == 0)
        *out = RS_FORMAT_TABLE;
    else if (strcmp(name, "csv") == 0)
        *out = RS_FORMAT_CSV;
    else if (strcmp(name, "json") == 0)
        *out = RS_FORMAT_JSON;
    else
        return -1;
    return 0;
}

const char *rs_format_name(rs_format_kind_t k)
{
    switch (k) {
    case RS_FORMAT_TABLE:
        return "table";
    case RS_FORMAT_CSV:
        return "csv";
    case RS_FORMAT_JSON:
        return "json";
    }
    return "?";
}

/* rc, or -1 if the stream has seen a write error (errno is then whatever
 * the failing write left, which later library calls may have reset). */
int finish(FILE *f, int rc)
{
    if (rc == 0 && ferror(f))
        return -1;
    return rc;
}

const char *period_str(rs_period_t p, char *buf)
{
    return rs_period_format(p, buf, PERIOD_BUF);
}

/* ---- exact totals ---- */

void sum_add(sum_t *s, rs_money_t v)
{
    if (!s->overflow && __builtin_add_overflow(s->v, v, &s->v))
        s->overflow = 1;
}

const char *sum_str(const sum_t *s, int exponent, char *buf)
{
    if (s->overflow) {
        snprintf(buf, MONEY_BUF, "overflow");
        return buf;
    }
    return rs_money_format_grouped(s->v, exponent, buf, MONEY_BUF);
}

/* The distinct currencies of a row array, sorted by code. `get` returns row
 * i's currency code and exponent, so one helper serves every row type. */
typedef struct cur {
    const char *code;
    int exponent;
} cur_t;

typedef const char *(*cur_get_fn)(const void *rows, size_t i, int *exponent);

static int cur_cmp(const void *a, const void *b)
{
    return strcmp(((const cur_t *)a)->code, ((const cur_t *)b)->code);
}

static int currencies_of(const void *rows, size_t n, cur_get_fn get, cur_t **out, size_t *nout)
{
    cur_t *set = NULL;
    size_t ns = 0;
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    set = malloc(n * sizeof *set);
    if (set == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        cur_t c;
        c.code = get(rows, i, &c.exponent);
        size_t k;
        for (k = 0; k < ns; k++)
            if (strcmp(set[k].code, c.code) == 0)
                break;
        if (k == ns)
            set[ns++] = c;
    }
    qsort(set, ns, sizeof *set, cur_cmp);
    *out = set;
    *nout = ns;
    return 0;
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "";
}

static const char *cur_schedule(const void *rows, size_t i, int *exponent)
{
    const rs_schedule_row_t *r = (const rs_schedule_row_t *)rows + i;
    *exponent = r->exponent;
    return nz(r->currency);
}

static const char *cur_balance(const void *rows, size_t i, int *exponent)
{
    const rs_balance_row_t *r = (const rs_balance_row_t *)rows + i;
    *exponent = r->exponent;
    return nz(r->currency);
}

static const char *cur_waterfall(const void *rows, size_t i, int *exponent)
{
    const rs_waterfall_row_t *r = (const rs_waterfall_row_t *)rows + i;
    *exponent = r->exponent;
    return nz(r->currency);
}

static const char *cur_rollforward(const void *rows, size_t i, int *exponent)
{
    const rs_rollforward_row_t *r = (const rs_rollforward_row_t *)rows + i;
    *exponent = r->exponent;
    return nz(r->currency);
}

/* ---- tables ---- */

/* heads[c] starting with '>' makes column c right-aligned. */
void tbl_init(tbl_t *t, int ncols, const char *const *heads)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    for (int c = 0; c < ncols; c++) {
        t->right[c] = heads[c][0] == '>';
        t->head[c] = heads[c] + t->right[c];
    }
}

void tbl_free(tbl_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        for (int c = 0; c < t->ncols; c++)
            free(t->rows[i].cells[c]);
    free(t->rows);
    t->rows = NULL;
    t->n = t->cap = 0;
}

static tbl_row_t *tbl_new_row(tbl_t *t)
{
    if (t->nomem)
        return NULL;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        tbl_row_t *r = realloc(t->rows, cap * sizeof *r);
        if (r == NULL) {
            t->nomem = 1;
            return NULL;
        }
        t->rows = r;
        t->cap = cap;
    }
    tbl_row_t *row = &t->rows[t->n++];
    memset(row, 0, sizeof *row);
    return row;
}

/* A copy of s with control characters replaced by '?'. */
static char *cell_dup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        return NULL;
    for (unsigned char *p = (unsigned char *)d; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    return d;
}

/* Add a row of t->ncols cells; NULL or "" is an empty cell. */
void tbl_add(tbl_t *t, const char *const *cells)
{
    tbl_row_t *row = tbl_new_row(t);
    if (row == NULL)
        return;
    for (int c = 0; c < t->ncols; c++) {
        if (cells[c] == NULL || cells[c][0] == '\0')
            continue;
        row->cells[c] = cell_dup(cells[c]);
        if (row->cells[c] == NULL)
            t->nomem = 1;
    }
}

void tbl_rule(tbl_t *t)
{
    tbl_row_t *row = tbl_new_row(t);
    if (row != NULL)
        row->rule = 1;
}

/* Display width: UTF-8 code points. */
static size_t dwidth(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w++;
    return w;
}

static void pad(FILE *f, size_t k)
{
    while (k-- > 0)
        fputc(' ', f);
}

static void tbl_print_cells(const tbl_t *t, FILE *f, const size_t *w, char *const *cells)
{
    int last = -1;
    for (int c = 0; c < t->ncols; c++)
        if (cells[c] != NULL && cells[c][0] != '\0')
            last = c;
    for (int c = 0; c <= last; c++) {
        const char *s = cells[c] != NULL ? cells[c] : "";
        size_t gap = w[c] - dwidth(s);
        if (c > 0)
            fputs("  ", f);
        if (t->right[c]) {
            pad(f, gap);
            fputs(s, f);
        } else {
            fputs(s, f);
            if (c < last)
                pad(f, gap);
        }
    }
    fputc('\n', f);
}

static void tbl_print_rule(const tbl_t *t, FILE *f, const size_t *w)
{
    for (int c = 0; c < t->ncols; c++) {
        if (c > 0)
            fputs("  ", f);
        for (size_t k = 0; k < w[c]; k++)
            fputc('-', f);
    }
    fputc('\n', f);
}

int tbl_print(const tbl_t *t, FILE *f)
{
    size_t w[TBL_MAX_COLS];
    if (t->nomem) {
        errno = ENOMEM;
        return -1;
    }
    for (int c = 0; c < t->ncols; c++)
        w[c] = dwidth(t->head[c]);
    for (size_t i = 0; i < t->n; i++)
        for (int c = 0; c < t->ncols; c++)
            if (t->rows[i].cells[c] != NULL && dwidth(t->rows[i].cells[c]) > w[c])
                w[c] = dwidth(t->rows[i].cells[c]);

    tbl_print_cells(t, f, w, (char *const *)t->head);
    tbl_print_rule(t, f, w);
    for (size_t i = 0; i < t->n; i++) {
        if (t->rows[i].rule)
            tbl_print_rule(t, f, w);
        else
            tbl_print_cells(t, f, w, t->rows[i].cells);
    }
    return 0;
}

/* "Title through 2026-03" (or just "Title"), then a blank line. */
void tbl_title(FILE *f, const char *title, const char *prefix, rs_period_t through)
{
    char pb[PERIOD_BUF];
    if (through == RS_PERIOD_NONE)
        fprintf(f, "%s\n\n", title);
    else
        fprintf(f, "%s%s%s\n\n", title, prefix, period_str(through, pb));
}

/* ---- CSV (RFC 4180) ---- */

static void csv_field(FILE *f, const char *s)
{
    if (s == NULL)
        s = "";
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

void csv_row(FILE *f, int n, const char *const *fields)
{
    for (int i = 0; i < n; i++) {
        if (i > 0)
            fputc(',', f);
        csv_field(f, fields[i]);
    }
    fputs("\r\n", f);
}

/* ---- JSON: "[", one object per line, "]" ---- */

void jw_begin(jw_t *w, FILE *f)
{
    w->f = f;
    w->i = 0;
    w->err = 0;
}

/* Print one row and release it. NULL means building it failed (ENOMEM). */
void jw_row(jw_t *w, json_t *obj)
{
    char *s = NULL;
    if (obj != NULL)
        s = json_dumps(obj, JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (s == NULL) {
        if (!w->err)
            errno = ENOMEM;
        w->err = 1;
        return;
    }
    fprintf(w->f, "%s  %s", w->i == 0 ? "[\n" : ",\n", s);
    free(s);
    w->i++;
}

int jw_end(jw_t *w)
{
    fputs(w->i == 0 ? "[]\n" : "\n]\n", w->f);
    return w->err ? -1 : 0;
}

/* A JSON string; bytes that are not valid UTF-8 become '?'. */
json_t *jstr(const char *s)
{
    if (s == NULL)
        s = "";
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char *copy = strdup(s);
    if (copy == NULL)
        return NULL;
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

json_t *jmoney(rs_money_t v, int exponent)
{
    char buf[MONEY_BUF];
    return json_string(rs_money_format(v, exponent, buf, sizeof buf));
}

json_t *jperiod(rs_period_t p)
{
    char buf[PERIOD_BUF];
    return json_string(period_str(p, buf));
}

/* The object, or NULL (and the object released) if any set failed. */
json_t *jdone(json_t *o, int rc)
{
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- schedule ---- */

int rs_format_schedule(FILE *f, rs_format_kind_t k, const rs_schedule_row_t *rows, size_t n,
                       rs_period_t through)
{
    char pb[PERIOD_BUF], mb[MONEY_BUF];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_schedule_row_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "contract_id", jstr(r->contract_id));
            e |= json_object_set_new(o, "line_id", jstr(r->line_id));
            e |= json_object_set_new(o, "period", jperiod(r->period));
            e |= json_object_set_new(o, "recognized", jmoney(r->recognized, r->exponent));
            e |= json_object_set_new(o, "currency", jstr(r->currency));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 5,
                (const char *[]){"contract_id", "line_id", "period", "recognized", "currency"});
        for (size_t i = 0; i < n; i++) {
            const rs_schedule_row_t *r = &rows[i];
            csv_row(f, 5,
                    (const char *[]){r->contract_id, r->line_id, period_str(r->period, pb),
                                     rs_money_format(r->recognized, r->exponent, mb, sizeof mb),
                                     r->currency});
        }
        return finish(f, 0);
    }

    tbl_title(f, "Recognition schedule", " through ", through);
    if (n == 0) {
        fputs("No lines to report.\n", f);
        return finish(f, 0);
    }
    tbl_t t;
    tbl_init(&t, 5, (const char *[]){"Contract", "Line", "Period", "Cur", ">Recognized"});
    for (size_t i = 0; i < n; i++) {
        const rs_schedule_row_t *r = &rows[i];
        tbl_add(&t, (const char *[]){
                        r->contract_id, r->line_id, period_str(r->period, pb), r->currency,
                        rs_money_format_grouped(r->recognized, r->exponent, mb, sizeof mb)});
    }
    cur_t *cs = NULL;
    size_t nc = 0;
    if (currencies_of(rows, n, cur_schedule, &cs, &nc) != 0) {
        t.nomem = 1;
    } else {
        tbl_rule(&t);
        for (size_t c = 0; c < nc; c++) {
            sum_t s = {0, 0};
            for (size_t i = 0; i < n; i++)
                if (strcmp(nz(rows[i].currency), cs[c].code) == 0)
                    sum_add(&s, rows[i].recognized);
            tbl_add(&t, (const char *[]){"TOTAL", NULL, NULL, cs[c].code,
                                         sum_str(&s, cs[c].exponent, mb)});
        }
    }
    rc = tbl_print(&t, f);
    tbl_free(&t);
    free(cs);
    return finish(f, rc);
}

/* ---- balances ---- */

int rs_format_balances(FILE *f, rs_format_kind_t k, const rs_balance_row_t *rows, size_t n,
                       rs_period_t through)
{
    char m[5][MONEY_BUF];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_balance_row_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "contract_id", jstr(r->contract_id));
            e |= json_object_set_new(o, "line_id", jstr(r->line_id));
            e |= json_object_set_new(o, "billed", jmoney(r->billed, r->exponent));
            e |= json_object_set_new(o, "recognized", jmoney(r->recognized, r->exponent));
            e |= json_object_set_new(o, "deferred", jmoney(r->deferred, r->exponent));
            e |= json_object_set_new(o, "unbilled", jmoney(r->unbilled, r->exponent));
            e |= json_object_set_new(o, "received", jmoney(r->received, r->exponent));
            e |= json_object_set_new(o, "currency", jstr(r->currency));
            e |= json_object_set_new(o, "customer_id", jstr(r->customer_id));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 9,
                (const char *[]){"contract_id", "line_id", "billed", "recognized", "deferred",
                                 "unbilled", "received", "currency", "customer_id"});
        for (size_t i = 0; i < n; i++) {
            const rs_balance_row_t *r = &rows[i];
            int x = r->exponent;
            csv_row(f, 9,
                    (const char *[]){r->contract_id, r->line_id,
                                     rs_money_format(r->billed, x, m[0], MONEY_BUF),
                                     rs_money_format(r->recognized, x, m[1], MONEY_BUF),
                                     rs_money_format(r->deferred, x, m[2], MONEY_BUF),
                                     rs_money_format(r->unbilled, x, m[3], MONEY_BUF),
                                     rs_money_format(r->received, x, m[4], MONEY_BUF),
                                     r->currency, r->customer_id});
        }
        return finish(f, 0);
    }

    tbl_title(f, "Balances", " at the end of ", through);
    if (n == 0) {
        fputs("No contract lines.\n", f);
        return finish(f, 0);
    }
    tbl_t t;
    tbl_init(&t, 9,
             (const char *[]){"Contract", "Line", "Customer", "Cur", ">Billed", ">Recognized",
                              ">Deferred", ">Unbilled", ">Received"});
    for (size_t i = 0; i < n; i++) {
        const rs_balance_row_t *r = &rows[i];
        int x = r->exponent;
        tbl_add(&t, (const char *[]){r->contract_id, r->line_id, r->customer_id, r->currency,
                                     rs_money_format_grouped(r->billed, x, m[0], MONEY_BUF),
                                     rs_money_format_grouped(r->recognized, x, m[1], MONEY_BUF),
                                     rs_money_format_grouped(r->deferred, x, m[2], MONEY_BUF),
                                     rs_money_format_grouped(r->unbilled, x, m[3], MONEY_BUF),
                                     rs_money_format_grouped(r->received, x, m[4], MONEY_BUF)});
    }
    cur_t *cs = NULL;
    size_t nc = 0;
    if (currencies_of(rows, n, cur_balance, &cs, &nc) != 0) {
        t.nomem = 1;
    } else {
        tbl_rule(&t);
        for (size_t c = 0; c < nc; c++) {
            sum_t s[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
            for (size_t i = 0; i < n; i++) {
                if (strcmp(nz(rows[i].currency), cs[c].code) != 0)
                    continue;
                sum_add(&s[0], rows[i].billed);
                sum_add(&s[1], rows[i].recognized);
                sum_add(&s[2], rows[i].deferred);
                sum_add(&s[3], rows[i].unbilled);
                sum_add(&s[4], rows[i].received);
            }
            int x = cs[c].exponent;
            tbl_add(&t,
                    (const char *[]){"TOTAL", NULL, NULL, cs[c].code, sum_str(&s[0], x, m[0]),
                                     sum_str(&s[1], x, m[1]), sum_str(&s[2], x, m[2]),
                                     sum_str(&s[3], x, m[3]), sum_str(&s[4], x, m[4])});
        }
    }
    rc = tbl_print(&t, f);
    tbl_free(&t);
    free(cs);
    if (rc == 0)
        fputs("\nDeferred: billed, not yet recognized. Unbilled: recognized, not yet billed.\n",
              f);
    return finish(f, rc);
}

/* ---- waterfall ---- */

int rs_format_waterfall(FILE *f, rs_format_kind_t k, const rs_waterfall_row_t *rows, size_t n,
                        rs_period_t through)
{
    char pb[PERIOD_BUF], label[PERIOD_BUF + 4], m[4][MONEY_BUF];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_waterfall_row_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "period", jperiod(r->period));
            e |= json_object_set_new(o, "recognized", jmoney(r->recognized, r->exponent));
            e |= json_object_set_new(o, "deferred", jmoney(r->deferred, r->exponent));
            e |= json_object_set_new(o, "currency", jstr(r->currency));
            e |= json_object_set_new(o, "projected", json_boolean(r->projected));
            if (!r->projected) {
                e |= json_object_set_new(o, "recognized_from_deferred",
                                         jmoney(r->from_deferred, r->exponent));
                e |= json_object_set_new(o, "recognized_not_via_deferred",
                                         jmoney(r->not_via_deferred, r->exponent));
            }
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 7,
                (const char *[]){"period", "recognized", "deferred", "currency", "projected",
                                 "recognized_from_deferred", "recognized_not_via_deferred"});
        for (size_t i = 0; i < n; i++) {
            const rs_waterfall_row_t *r = &rows[i];
            int x = r->exponent, p = r->projected;
            csv_row(f, 7,
                    (const char *[]){
                        period_str(r->period, pb),
                        rs_money_format(r->recognized, x, m[0], MONEY_BUF),
                        rs_money_format(r->deferred, x, m[1], MONEY_BUF), r->currency,
                        p ? "true" : "false",
                        p ? "" : rs_money_format(r->from_deferred, x, m[2], MONEY_BUF),
                        p ? "" : rs_money_format(r->not_via_deferred, x, m[3], MONEY_BUF)});
        }
        return finish(f, 0);
    }

    if (n == 0) {
        tbl_title(f, "Revenue waterfall", " through ", through);
        fputs("No revenue to report.\n", f);
        return finish(f, 0);
    }
    cur_t *cs = NULL;
    size_t nc = 0;
    if (currencies_of(rows, n, cur_waterfall, &cs, &nc) != 0) {
        errno = ENOMEM;
        return -1;
    }
    int any_projected = 0;
    for (size_t c = 0; c < nc && rc == 0; c++) {
        char title[64];
        snprintf(title, sizeof title, "Revenue waterfall, %s", cs[c].code);
        if (c > 0)
            fputc('\n', f);
        tbl_title(f, title, ", posted through ", through);

        tbl_t t;
        tbl_init(&t, 5,
                 (const char *[]){"Period", ">Recognized", ">From deferred",
                                  ">Not via deferred", ">Deferred"});
        sum_t posted = {0, 0}, scheduled = {0, 0}, total = {0, 0}, fromd = {0, 0},
              notvia = {0, 0};
        int has_posted = 0, has_scheduled = 0;
        for (size_t i = 0; i < n; i++) {
            const rs_waterfall_row_t *r = &rows[i];
            if (strcmp(nz(r->currency), cs[c].code) != 0)
                continue;
            snprintf(label, sizeof label, "%s%s", period_str(r->period, pb),
                     r->projected ? " *" : "");
            int x = r->exponent, p = r->projected;
            tbl_add(
                &t,
                (const char *[]){
                    label, rs_money_format_grouped(r->recognized, x, m[0], MONEY_BUF),
                    p ? NULL : rs_money_format_grouped(r->from_deferred, x, m[1], MONEY_BUF),
                    p ? NULL : rs_money_format_grouped(r->not_via_deferred, x, m[2], MONEY_BUF),
                    rs_money_format_grouped(r->deferred, x, m[3], MONEY_BUF)});
            sum_add(r->projected ? &scheduled : &posted, r->recognized);
            if (!p) {
                sum_add(&fromd, r->from_deferred);
                sum_add(&notvia, r->not_via_deferred);
            }
            sum_add(&total, r->recognized);
            if (r->projected)
                has_scheduled = 1;
            else
                has_posted = 1;
        }
        int x = cs[c].exponent;
        tbl_rule(&t);
        if (has_posted && has_scheduled) {
            tbl_add(&t, (const char *[]){"Posted", sum_str(&posted, x, m[0]),
                                         sum_str(&fromd, x, m[1]), sum_str(&notvia, x, m[2]),
                                         NULL});
            tbl_add(&t, (const char *[]){"Scheduled", sum_str(&scheduled, x, m[0]), NULL, NULL,
                                         NULL});
        }
        tbl_add(&t, (const char *[]){"TOTAL", sum_str(&total, x, m[0]),
                                     has_scheduled ? NULL : sum_str(&fromd, x, m[1]),
                                     has_scheduled ? NULL : sum_str(&notvia, x, m[2]), NULL});
        any_projected |= has_scheduled;
        rc = tbl_print(&t, f);
        tbl_free(&t);
    }
    free(cs);
    if (rc == 0) {
        fputc('\n', f);
        if (any_projected)
            fputs(
                "* scheduled: what the current contract terms will recognize in that period;\n"
                "  not posted yet.\n",
                f);
        fputs("Recognized: all revenue recognized in the period (revenue less revenue_contra)\n"
              "  = From deferred: released from deferred revenue (the rollforward's "
              "Recognized)\n"
              "  + Not via deferred: recognized before it was billed (against unbilled\n"
              "    receivable: billed in arrears) and adjustments that release no deferred\n"
              "    revenue; it never enters the rollforward.\n"
              "Deferred: deferred revenue balance at the end of the period.\n",
              f);
    }
    return finish(f, rc);
}

/* ---- rollforward ---- */

int rs_format_rollforward(FILE *f, rs_format_kind_t k, const rs_rollforward_row_t *rows,
                          size_t n, rs_period_t through)
{
    char pb[PERIOD_BUF], m[7][MONEY_BUF];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_rollforward_row_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "period", jperiod(r->period));
            e |= json_object_set_new(o, "opening", jmoney(r->opening, r->exponent));
            e |= json_object_set_new(o, "billed", jmoney(r->billed, r->exponent));
            e |= json_object_set_new(o, "recognized", jmoney(r->recognized, r->exponent));
            e |= json_object_set_new(o, "credits", jmoney(r->credits, r->exponent));
            e |= json_object_set_new(o, "closing", jmoney(r->closing, r->exponent));
            e |= json_object_set_new(o, "currency", jstr(r->currency));
            e |= json_object_set_new(o, "recognized_not_via_deferred",
                                     jmoney(r->not_via_deferred, r->exponent));
            e |= json_object_set_new(o, "revenue_recognized", jmoney(r->revenue, r->exponent));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 9,
                (const char *[]){"period", "opening", "billed", "recognized", "credits",
                                 "closing", "currency", "recognized_not_via_deferred",
                                 "revenue_recognized"});
        for (size_t i = 0; i < n; i++) {
            const rs_rollforward_row_t *r = &rows[i];
            int x = r->exponent;
            csv_row(f, 9,
                    (const char *[]){period_str(r->period, pb),
                                     rs_money_format(r->opening, x, m[0], MONEY_BUF),
                                     rs_money_format(r->billed, x, m[1], MONEY_BUF),
                                     rs_money_format(r->recognized, x, m[2], MONEY_BUF),
                                     rs_money_format(r->credits, x, m[3], MONEY_BUF),
                                     rs_money_format(r->closing, x, m[4], MONEY_BUF),
                                     r->currency,
                                     rs_money_format(r->not_via_deferred, x, m[5], MONEY_BUF),
                                     rs_money_format(r->revenue, x, m[6], MONEY_BUF)});
        }
        return finish(f, 0);
    }

    if (n == 0) {
        tbl_title(f, "Deferred revenue rollforward", " through ", through);
        fputs("No deferred revenue movements.\n", f);
        return finish(f, 0);
    }
    cur_t *cs = NULL;
    size_t nc = 0;
    if (currencies_of(rows, n, cur_rollforward, &cs, &nc) != 0) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t c = 0; c < nc && rc == 0; c++) {
        char title[64];
        snprintf(title, sizeof title, "Deferred revenue rollforward, %s", cs[c].code);
        if (c > 0)
            fputc('\n', f);
        tbl_title(f, title, ", through ", through);

        tbl_t t;
        tbl_init(&t, 6,
                 (const char *[]){"Period", ">Opening", ">Billed", ">Recognized", ">Credits",
                                  ">Closing"});
        sum_t billed = {0, 0}, recognized = {0, 0}, credits = {0, 0}, notvia = {0, 0},
              revenue = {0, 0};
        const rs_rollforward_row_t *first = NULL, *last = NULL;
        for (size_t i = 0; i < n; i++) {
            const rs_rollforward_row_t *r = &rows[i];
            if (strcmp(nz(r->currency), cs[c].code) != 0)
                continue;
            int x = r->exponent;
            tbl_add(&t,
                    (const char *[]){period_str(r->period, pb),
                                     rs_money_format_grouped(r->opening, x, m[0], MONEY_BUF),
                                     rs_money_format_grouped(r->billed, x, m[1], MONEY_BUF),
                                     rs_money_format_grouped(r->recognized, x, m[2], MONEY_BUF),
                                     rs_money_format_grouped(r->credits, x, m[3], MONEY_BUF),
                                     rs_money_format_grouped(r->closing, x, m[4], MONEY_BUF)});
            sum_add(&billed, r->billed);
            sum_add(&recognized, r->recognized);
            sum_add(&credits, r->credits);
            sum_add(&notvia, r->not_via_deferred);
            sum_add(&revenue, r->revenue);
            if (first == NULL)
                first = r;
            last = r;
        }
        if (first != NULL) { /* always: cs holds only the currencies of rows */
            int x = cs[c].exponent;
            tbl_rule(&t);
            tbl_add(&t,
                    (const char *[]){
                        "TOTAL", rs_money_format_grouped(first->opening, x, m[0], MONEY_BUF),
                        sum_str(&billed, x, m[1]), sum_str(&recognized, x, m[2]),
                        sum_str(&credits, x, m[3]),
                        rs_money_format_grouped(last->closing, x, m[4], MONEY_BUF)});
        }
        rc = tbl_print(&t, f);
        tbl_free(&t);
        if (rc == 0 && first != NULL) { /* the tie to the waterfall */
            int x = cs[c].exponent;
            tbl_t tie;
            fprintf(f, "\nRecognized revenue, %s (ties to the waterfall's Recognized)\n",
                    cs[c].code);
            tbl_init(&tie, 2, (const char *[]){"", ">Amount"});
            tbl_add(&tie, (const char *[]){"  Released from deferred (Recognized above)",
                                           sum_str(&recognized, x, m[0])});
            tbl_add(&tie,
                    (const char *[]){"+ Not via deferred (billed in arrears, adjustments)",
                                     sum_str(&notvia, x, m[1])});
            tbl_add(&tie, (const char *[]){"= Recognized revenue", sum_str(&revenue, x, m[2])});
            rc = tbl_print(&tie, f);
            tbl_free(&tie);
        }
    }
    free(cs);
    if (rc == 0)
        fputs("\nClosing = Opening + Billed - Recognized - Credits (credit notes and voids).\n"
              "Recognized: deferred revenue released to revenue in the period. Revenue\n"
              "recognized before it was billed (unbilled receivable) never enters deferred\n"
              "revenue: it is the \"Not via deferred\" line above.\n",
              f);
    return finish(f, rc);
}

/* ---- journal ---- */

/* The account code a posting line prints (never NULL). */
static const char *acct_code(const rs_policy_t *policy, const rs_entry_t *e, rs_account_t role)
{
    return rs_policy_account_code(policy, role, e->product);
}

/* The codec's JSON object of an entry with each posting line rebuilt as
 * account (the code), role (the role name), then the codec's other keys in
 * their order (debit, credit). NULL when memory ran out or the codec refused
 * the entry. */
static json_t *journal_json(const rs_entry_t *e, const rs_policy_t *policy)
{
    char *s = rs_codec_entry_json(e);
    json_t *o = s != NULL ? json_loads(s, 0, NULL) : NULL;
    free(s);
    json_t *lines = json_object_get(o, "lines");
    if (!json_is_array(lines) || json_array_size(lines) != (size_t)e->n_postings)
        goto fail;
    for (int p = 0; p < e->n_postings; p++) {
        const rs_posting_t *q = &e->postings[p];
        json_t *old = json_array_get(lines, (size_t)p);
        json_t *row = json_object();
        int rc = 0;
        rc |= json_object_set_new(row, "account", jstr(acct_code(policy, e, q->account)));
        rc |= json_object_set_new(row, "role", jstr(rs_account_name(q->account)));
        const char *key;
        json_t *value;
        json_object_foreach(old, key, value)
        {
            if (strcmp(key, "account") != 0 && strcmp(key, "role") != 0)
                rc |= json_object_set(row, key, value);
        }
        /* json_array_set_new releases row even when it fails */
        if (json_array_set_new(lines, (size_t)p, row) != 0 || rc != 0)
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* Does some posting of the listed entries have a code other than its role's
 * name? Then the table shows the role too. */
static int journal_has_codes(rs_format_entry_fn get, void *opaque, size_t n,
                             const rs_policy_t *policy)
{
    for (size_t i = 0; i < n; i++) {
        const rs_entry_t *e = get(opaque, i);
        if (e == NULL)
            return -1;
        for (int p = 0; p < e->n_postings; p++) {
            rs_account_t a = e->postings[p].account;
            if (strcmp(acct_code(policy, e, a), rs_account_name(a)) != 0)
                return 1;
        }
    }
    return 0;
}

#define JOURNAL_COLS 9

/* Add a journal table row of JOURNAL_COLS cells, leaving out the Role
 * column (index 5) when the table has none. */
static void journal_tbl_add(tbl_t *t, int show_role, const char *const *cells)
{
    const char *row[JOURNAL_COLS];
    int k = 0;
    for (int c = 0; c < JOURNAL_COLS; c++)
        if (c != 5 || show_role)
            row[k++] = cells[c];
    tbl_add(t, row);
}

/* The entries of rs_format_journal(): an array and an optional index. */
typedef struct journal_arr {
    const rs_entry_t *entries;
    const size_t *idx;
} journal_arr_t;

static const rs_entry_t *journal_arr_get(void *opaque, size_t i)
{
    const journal_arr_t *a = opaque;
    return &a->entries[a->idx != NULL ? a->idx[i] : i];
}

int rs_format_journal(FILE *f, rs_format_kind_t k, const rs_entry_t *entries, const size_t *idx,
                      size_t n, const rs_policy_t *policy, rs_period_t through)
{
    journal_arr_t a = {entries, idx};
    return rs_format_journal_each(f, k, journal_arr_get, &a, n, policy, through);
}

int rs_format_journal_each(FILE *f, rs_format_kind_t k, rs_format_entry_fn get, void *opaque,
                           size_t n, const rs_policy_t *policy, rs_period_t through)
{
    char posted[16], pb[PERIOD_BUF], sp[PERIOD_BUF], m[2][MONEY_BUF];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_entry_t *e = get(opaque, i);
            if (e == NULL) {
                (void)jw_end(&w);
                return -1;
            }
            jw_row(&w, journal_json(e, policy));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 16,
                (const char *[]){"entry_id", "posted_on", "period", "contract_id", "line_id",
                                 "kind", "rule", "account", "role", "debit", "credit",
                                 "source_event_ids", "currency", "customer_id",
                                 "service_period", "document_id"});
        for (size_t i = 0; i < n && rc == 0; i++) {
            const rs_entry_t *e = get(opaque, i);
            if (e == NULL) {
                rc = -1;
                break;
            }
            size_t len = 1;
            for (int s = 0; s < e->n_sources; s++)
                len += strlen(e->sources[s]) + 1;
            char *sources = malloc(len);
            if (sources == NULL) {
                errno = ENOMEM;
                rc = -1;
                break;
            }
            size_t at = 0; /* the ids joined by spaces; len counted each plus one */
            for (int s = 0; s < e->n_sources; s++) {
                size_t n = strlen(e->sources[s]);
                if (s > 0)
                    sources[at++] = ' ';
                memcpy(sources + at, e->sources[s], n);
                at += n;
            }
            sources[at] = '\0';
            rs_date_format(e->posted_on, posted, sizeof posted);
            period_str(e->period, pb);
            period_str(e->service_period, sp);
            for (int p = 0; p < e->n_postings; p++) {
                const rs_posting_t *q = &e->postings[p];
                csv_row(f, 16,
                        (const char *[]){
                            e->entry_id, posted, pb, e->contract_id, e->line_id,
                            rs_entry_kind_name(e->kind), e->rule,
                            acct_code(policy, e, q->account), rs_account_name(q->account),
                            rs_money_format(q->debit, e->exponent, m[0], MONEY_BUF),
                            rs_money_format(q->credit, e->exponent, m[1], MONEY_BUF), sources,
                            e->currency, e->customer_id, sp, e->document_id});
            }
            free(sources);
        }
        return finish(f, rc);
    }

    char title[64];
    snprintf(title, sizeof title, "Journal (%zu %s)", n, n == 1 ? "entry" : "entries");
    tbl_title(f, title, " through ", through);
    if (n == 0) {
        fputs("No entries.\n", f);
        return finish(f, 0);
    }
    int show_role = journal_has_codes(get, opaque, n, policy);
    if (show_role < 0)
        return -1;
    const char *heads[JOURNAL_COLS] = {"Entry", "Posted", "Line",   "Kind",   "Account",
                                       "Role",  "Cur",    ">Debit", ">Credit"};
    const char *used[JOURNAL_COLS];
    int ncols = 0;
    for (int c = 0; c < JOURNAL_COLS; c++)
        if (c != 5 || show_role)
            used[ncols++] = heads[c];
    tbl_t t;
    tbl_init(&t, ncols, used);
    /* Currencies of the listed entries, for the TOTAL rows (codes copied:
     * `get` may reuse its entry). */
    cur_t *cs = malloc(n * sizeof *cs);
    char(*codes)[4] = malloc(n * sizeof *codes);
    size_t nc = 0;
    if (cs == NULL || codes == NULL) {
        free(cs);
        cs = NULL;
        t.nomem = 1;
    }
    for (size_t i = 0; i < n && cs != NULL; i++) {
        const rs_entry_t *e = get(opaque, i);
        if (e == NULL) {
            rc = -1;
            break;
        }
        rs_date_format(e->posted_on, posted, sizeof posted);
        for (int p = 0; p < e->n_postings; p++) {
            const rs_posting_t *q = &e->postings[p];
            const char *debit =
                q->debit != 0 ? rs_money_format_grouped(q->debit, e->exponent, m[0], MONEY_BUF)
                              : NULL;
            const char *credit =
                q->credit != 0
                    ? rs_money_format_grouped(q->credit, e->exponent, m[1], MONEY_BUF)
                    : NULL;
            const char *code = acct_code(policy, e, q->account);
            const char *role = rs_account_name(q->account);
            if (p == 0)
                journal_tbl_add(&t, show_role,
                                (const char *[]){e->entry_id, posted, e->line_id,
                                                 rs_entry_kind_name(e->kind), code, role,
                                                 e->currency, debit, credit});
            else
                journal_tbl_add(&t, show_role,
                                (const char *[]){NULL, NULL, NULL, NULL, code, role,
                                                 e->currency, debit, credit});
        }
        size_t c;
        for (c = 0; c < nc; c++)
            if (strcmp(cs[c].code, e->currency) == 0)
                break;
        if (c == nc) {
            memcpy(codes[nc], e->currency, sizeof codes[nc]);
            codes[nc][3] = '\0';
            cs[nc].code = codes[nc];
            cs[nc].exponent = e->exponent;
            nc++;
        }
    }
    if (cs != NULL && rc == 0) {
        qsort(cs, nc, sizeof *cs, cur_cmp);
        tbl_rule(&t);
        for (size_t c = 0; c < nc; c++) {
            sum_t dr = {0, 0}, cr = {0, 0};
            for (size_t i = 0; i < n && rc == 0; i++) {
                const rs_entry_t *e = get(opaque, i);
                if (e == NULL) {
                    rc = -1;
                    break;
                }
                if (strcmp(e->currency, cs[c].code) != 0)
                    continue;
                for (int p = 0; p < e->n_postings; p++) {
                    sum_add(&dr, e->postings[p].debit);
                    sum_add(&cr, e->postings[p].credit);
                }
            }
            journal_tbl_add(&t, show_role,
                            (const char *[]){"TOTAL", NULL, NULL, NULL, NULL, NULL, cs[c].code,
                                             sum_str(&dr, cs[c].exponent, m[0]),
                                             sum_str(&cr, cs[c].exponent, m[1])});
        }
    }
    if (rc == 0)
        rc = tbl_print(&t, f);
    tbl_free(&t);
    free(cs);
    free(codes);
    if (rc == 0 && show_role)
        fputs("\nAccount: the account code of the policy file; Role: the account's role.\n", f);
    return finish(f, rc);
}

/* ---- exceptions ---- */

/* The kinds rs_report_exceptions makes, in the order the table totals and
 * explains them (each explanation fits 80 columns with its "kind: " prefix);
 * a kind not listed here is printed as given, totalled after these. */
static const struct {
    const char *kind, *meaning;
} exception_kinds[] = {
    {"deferred_after_cancellation", "billed, not earned, on a line whose service ended\n"
                                    "  early (cancelled or removed); settle it with a credit "
                                    "note or a refund."},
    {"unbilled_after_end", "earned but never invoiced, and the service has ended."},
    {"deferred_after_end", "billed above the line's allocated price: no schedule releases\n"
                           "  it, so it stays deferred after the service ends (often the\n"
                           "  mirror of unbilled on another line of the same contract)."},
    {"customer_credit", "owed to the customer (overpaid, or credited after payment)."},
    {"written_off", "receivables declared uncollectible that are still open."},
    {"pending", "an event waiting for its contract or invoice; not in the books yet."},
};
#define N_EXCEPTION_KINDS (sizeof exception_kinds / sizeof exception_kinds[0])

static size_t exception_rank(const char *kind)
{
    for (size_t i = 0; i < N_EXCEPTION_KINDS; i++)
        if (strcmp(kind, exception_kinds[i].kind) == 0)
            return i;
    return N_EXCEPTION_KINDS;
}

/* One TOTAL row of the exceptions table: a kind in one currency. */
typedef struct exc_total {
    const char *kind, *currency;
    int exponent;
    sum_t sum;
} exc_total_t;

static int exc_total_cmp(const void *a, const void *b)
{
    const exc_total_t *x = a, *y = b;
    size_t rx = exception_rank(x->kind), ry = exception_rank(y->kind);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    int c = strcmp(x->kind, y->kind);
    return c != 0 ? c : strcmp(x->currency, y->currency);
}

int rs_format_exceptions(FILE *f, rs_format_kind_t k, const rs_exception_row_t *rows, size_t n,
                         rs_period_t through)
{
    char mb[MONEY_BUF];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_exception_row_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "contract_id", jstr(r->contract_id));
            e |= json_object_set_new(o, "line_id", jstr(r->line_id));
            e |= json_object_set_new(o, "customer_id", jstr(r->customer_id));
            e |= json_object_set_new(o, "kind", jstr(r->kind));
            e |= json_object_set_new(o, "amount", jmoney(r->amount, r->exponent));
            e |= json_object_set_new(o, "currency", jstr(r->currency));
            e |= json_object_set_new(o, "detail", jstr(r->detail));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 7,
                (const char *[]){"contract_id", "line_id", "customer_id", "kind", "amount",
                                 "currency", "detail"});
        for (size_t i = 0; i < n; i++) {
            const rs_exception_row_t *r = &rows[i];
            csv_row(f, 7,
                    (const char *[]){r->contract_id, r->line_id, r->customer_id, r->kind,
                                     rs_money_format(r->amount, r->exponent, mb, MONEY_BUF),
                                     r->currency, r->detail});
        }
        return finish(f, 0);
    }

    tbl_title(f, "Exceptions to review", " at the end of ", through);
    if (n == 0) {
        fputs("No exceptions.\n", f);
        return finish(f, 0);
    }
    tbl_t t;
    tbl_init(
        &t, 7,
        (const char *[]){"Contract", "Line", "Customer", "Kind", "Cur", ">Amount", "Detail"});
    exc_total_t *tot = malloc(n * sizeof *tot);
    size_t nt = 0;
    if (tot == NULL)
        t.nomem = 1;
    for (size_t i = 0; i < n; i++) {
        const rs_exception_row_t *r = &rows[i];
        const char *cur = nz(r->currency), *kind = nz(r->kind);
        /* a row without a currency (an event still waiting) has no amount */
        int money = cur[0] != '\0';
        tbl_add(&t, (const char *[]){
                        r->contract_id, r->line_id, r->customer_id, kind, cur,
                        money ? rs_money_format_grouped(r->amount, r->exponent, mb, MONEY_BUF)
                              : NULL,
                        r->detail});
        if (!money || tot == NULL)
            continue;
        size_t c;
        for (c = 0; c < nt; c++)
            if (strcmp(tot[c].kind, kind) == 0 && strcmp(tot[c].currency, cur) == 0)
                break;
        if (c == nt) {
            tot[nt].kind = kind;
            tot[nt].currency = cur;
            tot[nt].exponent = r->exponent;
            tot[nt].sum = (sum_t){0, 0};
            nt++;
        }
        sum_add(&tot[c].sum, r->amount);
    }
    if (nt > 0) {
        qsort(tot, nt, sizeof *tot, exc_total_cmp);
        tbl_rule(&t);
        for (size_t c = 0; c < nt; c++)
            tbl_add(&t, (const char *[]){"TOTAL", NULL, NULL, tot[c].kind, tot[c].currency,
                                         sum_str(&tot[c].sum, tot[c].exponent, mb), NULL});
    }
    rc = tbl_print(&t, f);
    tbl_free(&t);
    free(tot);
    if (rc == 0) {
        /* explain the kinds present, in their fixed order */
        int first = 1;
        for (size_t x = 0; x < N_EXCEPTION_KINDS; x++) {
            size_t i;
            for (i = 0; i < n; i++)
                if (strcmp(nz(rows[i].kind), exception_kinds[x].kind) == 0)
                    break;
            if (i == n)
                continue;
            fprintf(f, "%s%s: %s\n", first ? "\n" : "", exception_kinds[x].kind,
                    exception_kinds[x].meaning);
            first = 0;
        }
    }
    return finish(f, rc);
}

/* ---- rejected events ---- */

int rs_format_rejected(FILE *f, rs_format_kind_t k, const rs_format_rejection_t *rows, size_t n)
{
    char lb[32];
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_format_rejection_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "line", json_integer(r->line));
            e |= json_object_set_new(o, "event_id", jstr(r->event_id));
            e |= json_object_set_new(o, "type", jstr(r->type));
            e |= json_object_set_new(o, "reason", jstr(r->reason));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 4, (const char *[]){"line", "event_id", "type", "reason"});
        for (size_t i = 0; i < n; i++) {
            snprintf(lb, sizeof lb, "%ld", rows[i].line);
            csv_row(f, 4, (const char *[]){lb, rows[i].event_id, rows[i].type, rows[i].reason});
        }
        return finish(f, 0);
    }

    fprintf(f, "Rejected events (%zu)\n\n", n);
    if (n == 0) {
        fputs("No event was rejected.\n", f);
        return finish(f, 0);
    }
    tbl_t t;
    tbl_init(&t, 4, (const char *[]){">Line", "Event", "Type", "Reason"});
    for (size_t i = 0; i < n; i++) {
        snprintf(lb, sizeof lb, "%ld", rows[i].line);
        tbl_add(&t,
                (const char *[]){rows[i].line > 0 ? lb : "?",
                                 nz(rows[i].event_id)[0] ? rows[i].event_id : "?",
                                 nz(rows[i].type)[0] ? rows[i].type : "?", nz(rows[i].reason)});
    }
    rc = tbl_print(&t, f);
    tbl_free(&t);
    return finish(f, rc);
}

/* ---- pending events ---- */

int rs_format_pending(FILE *f, rs_format_kind_t k, const rs_pending_view_t *rows, size_t n)
{
    int rc = 0;

    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_pending_view_t *r = &rows[i];
            const char *type = rs_event_type_name(r->type);
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "event_id", jstr(r->event_id));
            e |= json_object_set_new(o, "contract_id", jstr(r->contract_id));
            e |= json_object_set_new(o, "type", jstr(type != NULL ? type : ""));
            e |= json_object_set_new(o, "waiting_for", jstr(r->waiting_for));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 4, (const char *[]){"event_id", "contract_id", "type", "waiting_for"});
        for (size_t i = 0; i < n; i++) {
            const char *type = rs_event_type_name(rows[i].type);
            csv_row(f, 4,
                    (const char *[]){rows[i].event_id, rows[i].contract_id,
                                     type != NULL ? type : "", rows[i].waiting_for});
        }
        return finish(f, 0);
    }

    fprintf(f, "Events waiting for their contract or invoice (%zu)\n\n", n);
    if (n == 0) {
        fputs("No event is waiting.\n", f);
        return finish(f, 0);
    }
    tbl_t t;
    tbl_init(&t, 4, (const char *[]){"Event", "Contract", "Type", "Waiting for"});
    for (size_t i = 0; i < n; i++) {
        const char *type = rs_event_type_name(rows[i].type);
        tbl_add(&t, (const char *[]){rows[i].event_id, rows[i].contract_id,
                                     type != NULL ? type : "?", rows[i].waiting_for});
    }
    rc = tbl_print(&t, f);
    tbl_free(&t);
    return finish(f, rc);
}

static const char *invoice_status(const rs_invoice_view_t *r)
{
    return r->voided          ? "void"
           : r->uncollectible ? "uncollectible"
           : r->open > 0      ? "open"
                              : "settled";
}

int rs_format_invoices(FILE *f, rs_format_kind_t k, const rs_invoice_view_t *rows, size_t n)
{
    char mb[7][MONEY_BUF], db[16];
    static const char *const heads[] = {"contract_id", "invoice_id", "customer_id", "issued_on",
                                        "amount",      "tax",        "credited",    "paid",
                                        "open",        "allowance",  "status",      "currency"};
    if (k == RS_FORMAT_JSON) {
        jw_t w;
        jw_begin(&w, f);
        for (size_t i = 0; i < n; i++) {
            const rs_invoice_view_t *r = &rows[i];
            json_t *o = json_object();
            int e = 0;
            e |= json_object_set_new(o, "contract_id", jstr(r->contract_id));
            e |= json_object_set_new(o, "invoice_id", jstr(r->invoice_id));
            e |= json_object_set_new(o, "customer_id", jstr(r->customer_id));
            e |= json_object_set_new(o, "issued_on",
                                     jstr(rs_date_format(r->issued_on, db, sizeof db)));
            e |= json_object_set_new(o, "amount", jmoney(r->amount, r->exponent));
            e |= json_object_set_new(o, "tax", jmoney(r->tax, r->exponent));
            e |= json_object_set_new(o, "credited", jmoney(r->credited, r->exponent));
            e |= json_object_set_new(o, "paid", jmoney(r->paid, r->exponent));
            e |= json_object_set_new(o, "open", jmoney(r->open, r->exponent));
            e |= json_object_set_new(o, "allowance", jmoney(r->allowance, r->exponent));
            e |= json_object_set_new(o, "status", jstr(invoice_status(r)));
            e |= json_object_set_new(o, "currency", jstr(r->currency));
            jw_row(&w, jdone(o, e));
        }
        return finish(f, jw_end(&w));
    }
    if (k == RS_FORMAT_CSV) {
        csv_row(f, 12, heads);
        for (size_t i = 0; i < n; i++) {
            const rs_invoice_view_t *r = &rows[i];
            csv_row(
                f, 12,
                (const char *[]){r->contract_id, r->invoice_id, r->customer_id,
                                 rs_date_format(r->issued_on, db, sizeof db),
                                 rs_money_format(r->amount, r->exponent, mb[0], MONEY_BUF),
                                 rs_money_format(r->tax, r->exponent, mb[1], MONEY_BUF),
                                 rs_money_format(r->credited, r->exponent, mb[2], MONEY_BUF),
                                 rs_money_format(r->paid, r->exponent, mb[3], MONEY_BUF),
                                 rs_money_format(r->open, r->exponent, mb[4], MONEY_BUF),
                                 rs_money_format(r->allowance, r->exponent, mb[5], MONEY_BUF),
                                 invoice_status(r), r->currency});
        }
        return finish(f, 0);
    }
    fputs("Receivables by invoice (every event applied)\n\n", f);
    if (n == 0) {
        fputs("No invoices.\n", f);
        return finish(f, 0);
    }
    tbl_t t;
    tbl_init(&t, 11,
             (const char *[]){"Contract", "Invoice", "Customer", "Issued", "Cur", ">Amount",
                              ">Tax", ">Credited", ">Paid", ">Open", "Status"});
    for (size_t i = 0; i < n; i++) {
        const rs_invoice_view_t *r = &rows[i];
        tbl_add(&t, (const char *[]){
                        r->contract_id, r->invoice_id, r->customer_id,
                        rs_date_format(r->issued_on, db, sizeof db), r->currency,
                        rs_money_format_grouped(r->amount, r->exponent, mb[0], MONEY_BUF),
                        rs_money_format_grouped(r->tax, r->exponent, mb[1], MONEY_BUF),
                        rs_money_format_grouped(r->credited, r->exponent, mb[2], MONEY_BUF),
                        rs_money_format_grouped(r->paid, r->exponent, mb[3], MONEY_BUF),
                        rs_money_format_grouped(r->open, r->exponent, mb[4], MONEY_BUF),
                        invoice_status(r)});
    }
    int rc = tbl_print(&t, f);
    tbl_free(&t);
    return finish(f, rc);
}
