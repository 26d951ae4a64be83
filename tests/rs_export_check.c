/*
 * rs_export_check.c — see rs_export_check.h. Test-only code.
 */
#include "rs_export_check.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "rs_kafka_harness.h"

rs_money_t xc_minor(const char *s, int exponent)
{
    rs_decimal_t d;
    rs_money_t m;
    char why[128];
    cr_assert_eq(rs_decimal_parse(s, &d, why, sizeof why), 0, "amount \"%s\": %s", s, why);
    cr_assert_eq(rs_decimal_to_minor(d, exponent, &m, why, sizeof why), 0, "amount %s: %s", s,
                 why);
    return m;
}

/* The file as UTF-8 (a BOM dropped; Shift_JIS/CP932 converted). */
static char *read_utf8(const char *path, const char *format)
{
    char *raw = kh_slurp(path);
    size_t n = strlen(raw);
    int mf = strcmp(format, "moneyforward") == 0, freee = strcmp(format, "freee") == 0;
    if (n >= 3 && memcmp(raw, "\xEF\xBB\xBF", 3) == 0) {
        memmove(raw, raw + 3, n - 2);
        return raw;
    }
    /* a Japanese header that is not UTF-8 is Shift_JIS */
    if ((mf || freee) && !(n >= 3 && (unsigned char)raw[0] >= 0xE0)) {
        iconv_t cd = iconv_open("UTF-8", mf ? "CP932" : "SHIFT_JIS");
        cr_assert_neq(cd, (iconv_t)-1);
        size_t cap = n * 2 + 16, left = n, room = cap;
        char *out = malloc(cap), *in = raw, *op = out;
        cr_assert_neq(iconv(cd, &in, &left, &op, &room), (size_t)-1, "%s: not %s", path,
                      mf ? "CP932" : "Shift_JIS");
        *op = '\0';
        iconv_close(cd);
        free(raw);
        return out;
    }
    return raw;
}

/* Split one CSV record (RFC 4180) starting at *p into cells; returns the
 * number of cells (0 at the end of the text). Cells are malloc'd. */
static size_t csv_record(const char **p, char **cells, size_t max)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '\0')
        return 0;
    for (;;) {
        char buf[2048];
        size_t k = 0;
        if (*s == '"') {
            s++;
            while (*s && !(*s == '"' && s[1] != '"')) {
                if (*s == '"')
                    s++;
                buf[k++] = *s++;
            }
            cr_assert_eq(*s, '"', "unterminated quote");
            s++;
        } else {
            while (*s && *s != ',' && *s != '\r' && *s != '\n')
                buf[k++] = *s++;
        }
        buf[k] = '\0';
        cr_assert_lt(n, max);
        cells[n++] = strdup(buf);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

/* Where each format keeps a row's fields. side 1 is the credit side of a
 * paired row (freee, MoneyForward); -1: no such column. */
typedef struct layout {
    const char *name;
    int key1, key2;                   /* journal key columns */
    int code[2], debit[2], credit[2]; /* [side] */
    int amount;                       /* Xero: signed */
    int currency;
    size_t ncols;
} layout_t;

static const layout_t LAYOUTS[] = {
    {"quickbooks", 0, -1, {2, -1}, {4, -1}, {5, -1}, -1, 7, 8},
    {"xero", 0, 1, {3, -1}, {-1, -1}, {-1, -1}, 5, -1, 10},
    {"netsuite", 0, -1, {7, -1}, {8, -1}, {9, -1}, -1, 3, 12},
    {"freee", 0, 1, {3, 17}, {14, -1}, {-1, 28}, -1, -1, 32},
    {"moneyforward", 0, 1, {2, 10}, {8, -1}, {-1, 16}, -1, -1, 27},
    {"csv", 0, -1, {4, -1}, {8, -1}, {9, -1}, -1, 3, 11},
};

static int is_revenue(const char *code, const char *const *codes)
{
    for (; *codes; codes++)
        if (strcmp(*codes, code) == 0)
            return 1;
    return 0;
}

static void add(json_t *o, const char *key, rs_money_t v)
{
    json_t *cur = json_object_get(o, key);
    json_object_set_new(o, key, json_integer((cur ? json_integer_value(cur) : 0) + v));
}

size_t xc_check_file(const char *format, const char *path, const char *currency,
                     const char *const *revenue_codes, json_t *revenue, size_t *rows)
{
    const layout_t *L = NULL;
    for (size_t i = 0; i < sizeof LAYOUTS / sizeof *LAYOUTS; i++)
        if (strcmp(LAYOUTS[i].name, format) == 0)
            L = &LAYOUTS[i];
    cr_assert_not_null(L, "format %s", format);
    char *text = read_utf8(path, format);
    const char *p = text;
    char *cells[64];
    size_t n = csv_record(&p, cells, 64);
    cr_assert_eq(n, L->ncols, "%s: header has %zu columns", path, n);
    for (size_t i = 0; i < n; i++)
        free(cells[i]);
    /* per journal: debits - credits; per file per currency too */
    json_t *journals = json_object(), *file = json_object();
    *rows = 0;
    while ((n = csv_record(&p, cells, 64)) > 0) {
        cr_assert_eq(n, L->ncols, "%s row %zu: %zu columns", path, *rows + 1, n);
        (*rows)++;
        char key[600];
        snprintf(key, sizeof key, "%s\x1f%s", cells[L->key1],
                 L->key2 >= 0 ? cells[L->key2] : "");
        const char *cur = L->currency >= 0 ? cells[L->currency] : currency;
        int exp = rs_currency_exponent(cur);
        cr_assert_geq(exp, 0, "%s: currency %s", path, cur);
        for (int side = 0; side < 2; side++) {
            if (L->code[side] < 0 || cells[L->code[side]][0] == '\0')
                continue;
            rs_money_t net;
            if (L->amount >= 0) {
                net = xc_minor(cells[L->amount], exp);
            } else {
                const char *d = L->debit[side] >= 0 ? cells[L->debit[side]] : "";
                const char *c = L->credit[side] >= 0 ? cells[L->credit[side]] : "";
                rs_money_t dv = d[0] ? xc_minor(d, exp) : 0, cv = c[0] ? xc_minor(c, exp) : 0;
                cr_assert(dv >= 0 && cv >= 0, "%s: negative amount", path);
                cr_assert(dv == 0 || cv == 0, "%s: a debit and a credit on one line", path);
                net = dv - cv;
            }
            add(journals, key, net);
            add(file, cur, net);
            if (is_revenue(cells[L->code[side]], revenue_codes))
                add(revenue, cur, -net);
        }
        for (size_t i = 0; i < n; i++)
            free(cells[i]);
    }
    const char *k;
    json_t *v;
    json_object_foreach(journals, k, v)
        cr_assert_eq(json_integer_value(v), 0, "%s: journal %.*s does not balance (%lld)", path,
                     (int)strcspn(k, "\x1f"), k, (long long)json_integer_value(v));
    json_object_foreach(file, k, v)
        cr_assert_eq(json_integer_value(v), 0, "%s: %s does not balance", path, k);
    size_t nj = json_object_size(journals);
    json_decref(journals);
    json_decref(file);
    free(text);
    return nj;
}

const char *const *xc_revenue_codes(const char *policy_path)
{
    static char codes[2 * RS_POLICY_MAX_CODES + 2][RS_ACCOUNT_CODE_MAX];
    static const char *out[2 * RS_POLICY_MAX_CODES + 3];
    rs_policy_t pol;
    char err[256];
    size_t n = 0;
    rs_policy_defaults(&pol);
    char *text = kh_slurp(policy_path);
    cr_assert_eq(rs_policy_parse(&pol, text, err, sizeof err), 0, "%s", err);
    free(text);
    for (int i = 0; i < pol.n_codes; i++)
        if (pol.codes[i].role == RS_ACCT_REVENUE || pol.codes[i].role == RS_ACCT_REVENUE_CONTRA)
            snprintf(codes[n++], RS_ACCOUNT_CODE_MAX, "%s", pol.codes[i].code);
    snprintf(codes[n++], RS_ACCOUNT_CODE_MAX, "%s",
             rs_policy_account_code(&pol, RS_ACCT_REVENUE, ""));
    snprintf(codes[n++], RS_ACCOUNT_CODE_MAX, "%s",
             rs_policy_account_code(&pol, RS_ACCT_REVENUE_CONTRA, ""));
    for (size_t i = 0; i < n; i++)
        out[i] = codes[i];
    out[n] = NULL;
    return out;
}

json_t *xc_export(const char *const *args, const char *dir)
{
    char *argv[40], out[160], err[160];
    size_t n = 0;
    argv[n++] = "revstream";
    argv[n++] = "export";
    for (; args[n - 2] != NULL; n++) {
        cr_assert_lt(n, 38);
        argv[n] = (char *)args[n - 2];
    }
    argv[n] = NULL;
    snprintf(out, sizeof out, "%s/export.out", dir);
    snprintf(err, sizeof err, "%s/export.err", dir);
    int status = kh_wait_exit(kh_spawn(argv, out, err, NULL), KH_DEADLINE_S, err);
    char *log = kh_slurp(err);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "export failed: %s", log);
    free(log);
    char *text = kh_slurp(out);
    json_t *files = json_array();
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
        json_array_append_new(files, json_string(line));
    free(text);
    return files;
}
