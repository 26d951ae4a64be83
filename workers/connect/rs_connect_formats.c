/*
 * rs_connect_formats.c — the columns of each accounting system's journal
 * import (shared/reference/connectors.md; docs/exports.md per column).
 *
 * Invariants:
 *   - One row per posting line (QuickBooks, Xero, NetSuite, csv), or one row
 *     per pair of a debit and a credit line (freee, MoneyForward: a row has a
 *     debit side and a credit side; the i-th debit line shares a row with the
 *     i-th credit line, the other side of a row left empty when one side has
 *     more lines).
 *   - Amounts: positive, in a Debit or a Credit column with the other
 *     empty (QuickBooks, NetSuite, csv: 0.00 in the other); signed (+ debit,
 *     - credit) in Xero's Amount; always with the currency's decimals.
 *   - Dates: QuickBooks and NetSuite MM/DD/YYYY, Xero DD/MM/YYYY, freee and
 *     MoneyForward YYYY/MM/DD, csv YYYY-MM-DD.
 *   - A cell holding a comma, a quote, a CR or LF, or leading or trailing
 *     blanks is quoted, quotes doubled (RFC 4180).
 *
 * Ownership: nothing is kept between calls.
 */
#include <stdio.h>
#include <string.h>

#include "rs_connect_internal.h"

#define MONEY 48

/* ---- cells ---- */

static void cell(rs_strbuf_t *out, const char *s, int first)
{
    if (!first)
        rs_strbuf_putc(out, ',');
    size_t n = strlen(s);
    int quote = n > 0 && (strpbrk(s, ",\"\r\n") != NULL || s[0] == ' ' || s[n - 1] == ' ');
    if (!quote) {
        rs_strbuf_putn(out, s, n);
        return;
    }
    rs_strbuf_putc(out, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            rs_strbuf_putc(out, '"');
        rs_strbuf_putc(out, *p);
    }
    rs_strbuf_putc(out, '"');
}

static void row(const rs_cx_format_t *f, rs_strbuf_t *out, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cell(out, cells[i] ? cells[i] : "", i == 0);
    rs_strbuf_puts(out, f->eol);
}

void rs_cx_header(const rs_cx_format_t *f, rs_strbuf_t *out)
{
    size_t n = 0;
    while (f->columns[n] != NULL)
        n++;
    row(f, out, f->columns, n);
}

/* ---- values ---- */

enum { D_MDY, D_DMY, D_YMD_SLASH, D_ISO };

static const char *date_str(rs_date_t d, int style, char *buf, size_t len)
{
    int y, m, day;
    rs_date_to_ymd(d, &y, &m, &day);
    if (style == D_MDY)
        snprintf(buf, len, "%02d/%02d/%04d", m, day, y);
    else if (style == D_DMY)
        snprintf(buf, len, "%02d/%02d/%04d", day, m, y);
    else if (style == D_YMD_SLASH)
        snprintf(buf, len, "%04d/%02d/%02d", y, m, day);
    else
        snprintf(buf, len, "%04d-%02d-%02d", y, m, day);
    return buf;
}

static const char *amount(rs_money_t v, int exponent, char *buf)
{
    return rs_money_format(v, exponent, buf, MONEY);
}

/* A line's own description: role, and product and customer when known. */
static const char *line_memo(const rs_cx_line_t *l, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", rs_account_name(l->role), l->product[0] ? " | " : "",
             l->product);
    return buf;
}

static size_t one_row_per_line(const rs_cx_journal_t *j)
{
    return j->n;
}

/* freee and MoneyForward: a row pairs the i-th debit and the i-th credit. */
static size_t paired_rows(const rs_cx_journal_t *j)
{
    size_t dr = 0, cr = 0;
    for (size_t i = 0; i < j->n; i++) {
        dr += j->lines[i].debit != 0;
        cr += j->lines[i].credit != 0;
    }
    return dr > cr ? dr : cr;
}

/* The k-th debit (side 0) or credit (side 1) line, or NULL. */
static const rs_cx_line_t *nth_side(const rs_cx_journal_t *j, int side, size_t k)
{
    for (size_t i = 0; i < j->n; i++) {
        rs_money_t v = side == 0 ? j->lines[i].debit : j->lines[i].credit;
        if (v != 0 && k-- == 0)
            return &j->lines[i];
    }
    return NULL;
}

/* ---- QuickBooks Online ---- */

static const char *const QB_COLS[] = {"Journal No.", "Journal Date", "Account Name",
                                      "Description", "Debits",       "Credits",
                                      "Name",        "Currency",     NULL};

static int qb_write(const rs_cx_format_t *f, const rs_connect_opts_t *o,
                    const rs_cx_journal_t *j, size_t seq, rs_strbuf_t *out, char *errstr,
                    size_t errlen)
{
    char date[16], dr[MONEY], cr[MONEY], memo[840], lm[320];
    (void)o, (void)seq, (void)errstr, (void)errlen;
    date_str(j->date, D_MDY, date, sizeof date);
    for (size_t i = 0; i < j->n; i++) {
        const rs_cx_line_t *l = &j->lines[i];
        snprintf(memo, sizeof memo, "%s | %s", j->memo, line_memo(l, lm, sizeof lm));
        const char *c[] = {j->number,
                           date,
                           l->code,
                           memo,
                           l->debit ? amount(l->debit, j->exponent, dr) : "",
                           l->credit ? amount(l->credit, j->exponent, cr) : "",
                           j->entry ? j->customer : l->customer,
                           j->currency};
        row(f, out, c, 8);
    }
    return 0;
}

/* ---- Xero ---- */

static const char *const XERO_COLS[] = {
    "*Narration", "*Date",         "Description",     "*AccountCode",  "*TaxRate",
    "*Amount",    "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2",
    NULL};

static int xero_write(const rs_cx_format_t *f, const rs_connect_opts_t *o,
                      const rs_cx_journal_t *j, size_t seq, rs_strbuf_t *out, char *errstr,
                      size_t errlen)
{
    char date[16], amt[MONEY], lm[320];
    (void)seq, (void)errstr, (void)errlen;
    date_str(j->date, D_DMY, date, sizeof date);
    for (size_t i = 0; i < j->n; i++) {
        const rs_cx_line_t *l = &j->lines[i];
        const char *c[] = {j->memo,
                           date,
                           line_memo(l, lm, sizeof lm),
                           l->code,
                           o->tax_rate ? o->tax_rate : "Tax Exempt",
                           amount(l->debit - l->credit, j->exponent, amt),
                           "",
                           "",
                           "",
                           ""};
        row(f, out, c, 10);
    }
    return 0;
}

/* ---- NetSuite ---- */

static const char *const NS_COLS[] = {
    "External ID",    "Date", "Subsidiary", "Currency", "Exchange Rate",
    "Posting Period", "Memo", "Account",    "Debit",    "Credit",
    "Line Memo",      "Name", NULL};

/* NetSuite takes at most 2 decimals and 10 integer digits. */
static int ns_amount(const rs_cx_journal_t *j, rs_money_t v, char *buf, char *errstr,
                     size_t errlen)
{
    rs_money_t whole = v, frac_cut = 1;
    for (int e = 2; e < j->exponent; e++)
        frac_cut *= 10;
    if (v % frac_cut != 0) {
        snprintf(errstr, errlen, "journal %s: amount %s %s: NetSuite takes at most 2 decimals",
                 j->number, amount(v, j->exponent, buf), j->currency);
        return -1;
    }
    for (int e = 0; e < j->exponent; e++)
        whole /= 10;
    if (whole >= 10000000000LL) {
        snprintf(errstr, errlen, "journal %s: amount %s %s: over NetSuite's 10 digits",
                 j->number, amount(v, j->exponent, buf), j->currency);
        return -1;
    }
    if (j->exponent > 2)
        rs_money_format(v / frac_cut, 2, buf, MONEY);
    else
        amount(v, j->exponent, buf);
    return 0;
}

static int ns_write(const rs_cx_format_t *f, const rs_connect_opts_t *o,
                    const rs_cx_journal_t *j, size_t seq, rs_strbuf_t *out, char *errstr,
                    size_t errlen)
{
    static const char *const MON[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char date[16], dr[MONEY], cr[MONEY], period[16], lm[320];
    (void)seq;
    date_str(j->date, D_MDY, date, sizeof date);
    snprintf(period, sizeof period, "%s %d", MON[j->period % 12], j->period / 12);
    for (size_t i = 0; i < j->n; i++) {
        const rs_cx_line_t *l = &j->lines[i];
        if ((l->debit && ns_amount(j, l->debit, dr, errstr, errlen) != 0) ||
            (l->credit && ns_amount(j, l->credit, cr, errstr, errlen) != 0))
            return -1;
        const char *c[] = {j->number,
                           date,
                           o->subsidiary ? o->subsidiary : "",
                           j->currency,
                           "",
                           period,
                           j->memo,
                           l->code,
                           l->debit ? dr : "",
                           l->credit ? cr : "",
                           line_memo(l, lm, sizeof lm),
                           j->entry ? j->customer : l->customer};
        row(f, out, c, 12);
    }
    return 0;
}

/* ---- freee and MoneyForward: debit and credit sides on one row ---- */

#define TAX_OUT_OF_SCOPE "対象外"

static const char *const FREEE_COLS[] = {"日付",
                                         "伝票番号",
                                         "決算整理仕訳",
                                         "借方勘定科目",
                                         "借方科目コード",
                                         "借方補助科目",
                                         "借方取引先",
                                         "借方取引先コード",
                                         "借方部門",
                                         "借方品目",
                                         "借方メモタグ",
                                         "借方セグメント1",
                                         "借方セグメント2",
                                         "借方セグメント3",
                                         "借方金額",
                                         "借方税区分",
                                         "借方税額",
                                         "貸方勘定科目",
                                         "貸方科目コード",
                                         "貸方補助科目",
                                         "貸方取引先",
                                         "貸方取引先コード",
                                         "貸方部門",
                                         "貸方品目",
                                         "貸方メモタグ",
                                         "貸方セグメント1",
                                         "貸方セグメント2",
                                         "貸方セグメント3",
                                         "貸方金額",
                                         "貸方税区分",
                                         "貸方税額",
                                         "摘要",
                                         NULL};

/* One side of a freee row: 14 cells from 勘定科目 to 税額. */
static void freee_side(const rs_cx_journal_t *j, const rs_cx_line_t *l, int side,
                       const char **c, char *amt)
{
    for (int k = 0; k < 14; k++)
        c[k] = "";
    if (l == NULL)
        return;
    c[0] = l->code;
    c[11] = amount(side == 0 ? l->debit : l->credit, j->exponent, amt);
    c[12] = TAX_OUT_OF_SCOPE;
}

static int freee_write(const rs_cx_format_t *f, const rs_connect_opts_t *o,
                       const rs_cx_journal_t *j, size_t seq, rs_strbuf_t *out, char *errstr,
                       size_t errlen)
{
    char date[16], dr[MONEY], cr[MONEY];
    const char *c[32];
    (void)o, (void)seq, (void)errstr, (void)errlen;
    date_str(j->date, D_YMD_SLASH, date, sizeof date);
    size_t rows = paired_rows(j);
    for (size_t r = 0; r < rows; r++) {
        c[0] = date;
        c[1] = j->number;
        c[2] = "";
        freee_side(j, nth_side(j, 0, r), 0, c + 3, dr);
        freee_side(j, nth_side(j, 1, r), 1, c + 17, cr);
        c[31] = j->memo;
        row(f, out, c, 32);
    }
    return 0;
}

static const char *const MF_COLS[] = {
    "取引No",       "取引日",       "借方勘定科目", "借方補助科目",
    "借方部門",     "借方取引先",   "借方税区分",   "借方インボイス",
    "借方金額(円)", "借方税額",     "貸方勘定科目", "貸方補助科目",
    "貸方部門",     "貸方取引先",   "貸方税区分",   "貸方インボイス",
    "貸方金額(円)", "貸方税額",     "摘要",         "仕訳メモ",
    "タグ",         "MF仕訳タイプ", "決算整理仕訳", "作成日時",
    "作成者",       "最終更新日時", "最終更新者",   NULL};

/* One side of a MoneyForward row: 8 cells from 勘定科目 to 税額. */
static void mf_side(const rs_cx_journal_t *j, const rs_cx_line_t *l, int side, const char **c,
                    char *amt)
{
    for (int k = 0; k < 8; k++)
        c[k] = "";
    if (l == NULL)
        return;
    c[0] = l->code;
    c[4] = TAX_OUT_OF_SCOPE;
    c[6] = amount(side == 0 ? l->debit : l->credit, j->exponent, amt);
}

static int mf_write(const rs_cx_format_t *f, const rs_connect_opts_t *o,
                    const rs_cx_journal_t *j, size_t seq, rs_strbuf_t *out, char *errstr,
                    size_t errlen)
{
    char date[16], no[24], dr[MONEY], cr[MONEY];
    const char *c[27];
    (void)o, (void)errstr, (void)errlen;
    date_str(j->date, D_YMD_SLASH, date, sizeof date);
    snprintf(no, sizeof no, "%zu", seq); /* 取引No: sequential in the file */
    size_t rows = paired_rows(j);
    for (size_t r = 0; r < rows; r++) {
        for (int k = 0; k < 27; k++)
            c[k] = "";
        c[0] = no;
        c[1] = date;
        mf_side(j, nth_side(j, 0, r), 0, c + 2, dr);
        mf_side(j, nth_side(j, 1, r), 1, c + 10, cr);
        c[18] = j->memo;
        c[19] = j->number; /* 仕訳メモ: the stable journal number */
        row(f, out, c, 27);
    }
    return 0;
}

/* ---- plain CSV ---- */

static const char *const CSV_COLS[] = {"journal_no", "date",   "period",      "currency",
                                       "account",    "role",   "product",     "customer_id",
                                       "debit",      "credit", "description", NULL};

static int csv_write(const rs_cx_format_t *f, const rs_connect_opts_t *o,
                     const rs_cx_journal_t *j, size_t seq, rs_strbuf_t *out, char *errstr,
                     size_t errlen)
{
    char date[16], period[16], dr[MONEY], cr[MONEY];
    (void)o, (void)seq, (void)errstr, (void)errlen;
    date_str(j->date, D_ISO, date, sizeof date);
    rs_period_format(j->period, period, sizeof period);
    for (size_t i = 0; i < j->n; i++) {
        const rs_cx_line_t *l = &j->lines[i];
        const char *c[] = {j->number,
                           date,
                           period,
                           j->currency,
                           l->code,
                           rs_account_name(l->role),
                           l->product,
                           j->entry ? j->customer : l->customer,
                           amount(l->debit, j->exponent, dr),
                           amount(l->credit, j->exponent, cr),
                           j->memo};
        row(f, out, c, 11);
    }
    return 0;
}

static const rs_cx_format_t FORMATS[RS_CONNECT__COUNT] = {
    [RS_CONNECT_QUICKBOOKS] = {"quickbooks", QB_COLS, "\r\n", 0, 0, 21, RS_CONNECT_ENC_UTF8,
                               "SHIFT_JIS", NULL, 1, one_row_per_line, qb_write},
    [RS_CONNECT_XERO] = {"xero", XERO_COLS, "\r\n", 300, 0, 64, RS_CONNECT_ENC_UTF8,
                         "SHIFT_JIS", NULL, 0, one_row_per_line, xero_write},
    [RS_CONNECT_NETSUITE] = {"netsuite", NS_COLS, "\r\n", 25000, (size_t)50 * 1000 * 1000, 64,
                             RS_CONNECT_ENC_UTF8, "SHIFT_JIS", NULL, 1, one_row_per_line,
                             ns_write},
    [RS_CONNECT_FREEE] = {"freee", FREEE_COLS, "\r\n", 0, 0, 64, RS_CONNECT_ENC_UTF8,
                          "SHIFT_JIS", "JPY", 0, paired_rows, freee_write},
    [RS_CONNECT_MONEYFORWARD] = {"moneyforward", MF_COLS, "\r\n", 0, 0, 64,
                                 RS_CONNECT_ENC_SHIFT_JIS, "CP932", "JPY", 0, paired_rows,
                                 mf_write},
    [RS_CONNECT_CSV] = {"csv", CSV_COLS, "\n", 0, 0, 256, RS_CONNECT_ENC_UTF8, "SHIFT_JIS",
                        NULL, 0, one_row_per_line, csv_write},
};

const rs_cx_format_t *rs_cx_format(int format)
{
    if (format < 0 || format >= RS_CONNECT__COUNT)
        return NULL;
    return &FORMATS[format];
}
