/*
 * rs_connect.c — choosing the entries of a period, turning them into
 * journals (one per entry, or one summary per currency), and writing the
 * files: splitting at a system's limits, checking balance, encoding, and
 * renaming into place only when everything was written. The columns of each
 * system are in rs_connect_formats.c.
 *
 * Invariants (see rs_connect.h for the contract):
 *   - A journal is checked to balance before any of its rows is written;
 *     each file's debits and credits are summed as its rows are written and
 *     checked equal before it is closed.
 *   - Files are written as <name>.tmp and renamed only after the last one
 *     closed without error; on error every file of the call is removed.
 *   - The rows of a journal are formatted into one buffer first, so a file
 *     is split before a journal that would cross a row or byte limit.
 *
 * Ownership: the index of selected entries, the summary items and the
 * journal buffers are owned by the call and freed before it returns.
 */
#include "rs_connect.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rs_connect_internal.h"
#include "rs_hash.h"

static const char *const FORMAT_NAME[RS_CONNECT__COUNT] = {
    "quickbooks", "xero", "netsuite", "freee", "moneyforward", "csv"};

int rs_connect_format_from_name(const char *name)
{
    for (int f = 0; name != NULL && f < RS_CONNECT__COUNT; f++)
        if (strcmp(FORMAT_NAME[f], name) == 0)
            return f;
    return -1;
}

const char *rs_connect_format_name(rs_connect_format_t f)
{
    return (int)f >= 0 && f < RS_CONNECT__COUNT ? FORMAT_NAME[f] : NULL;
}

int rs_connect_encoding_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "utf8") == 0)
        return RS_CONNECT_ENC_UTF8;
    if (strcasecmp(name, "utf-8-bom") == 0 || strcasecmp(name, "utf8-bom") == 0)
        return RS_CONNECT_ENC_UTF8_BOM;
    if (strcasecmp(name, "shift_jis") == 0 || strcasecmp(name, "sjis") == 0 ||
        strcasecmp(name, "cp932") == 0)
        return RS_CONNECT_ENC_SHIFT_JIS;
    return -1;
}

void rs_connect_result_free(rs_connect_result_t *res)
{
    if (res == NULL)
        return;
    for (size_t i = 0; i < res->n_files; i++)
        free(res->files[i]);
    free(res->files);
    memset(res, 0, sizeof(*res));
}

/* ------------------------------------------------------------------------ */
/* journal numbers                                                          */
/* ------------------------------------------------------------------------ */

void rs_cx_journal_number(const char *entry_id, size_t max, char *out, size_t outlen)
{
    if (strlen(entry_id) <= max && strlen(entry_id) < outlen) {
        memcpy(out, entry_id, strlen(entry_id) + 1);
        return;
    }
    /* FNV-1a 64 of the id: the same id always gives the same number */
    uint64_t h = rs_fnv1a64_update_str(RS_FNV1A64_SHORT_BASIS, entry_id);
    snprintf(out, outlen, "RS%016llx", (unsigned long long)h);
}

/* ------------------------------------------------------------------------ */
/* selecting and ordering the entries                                       */
/* ------------------------------------------------------------------------ */

static int cmp_entry(const void *a, const void *b)
{
    const rs_entry_t *x = *(const rs_entry_t *const *)a, *y = *(const rs_entry_t *const *)b;
    if (x->posted_on != y->posted_on)
        return x->posted_on < y->posted_on ? -1 : 1;
    int r = strcmp(x->contract_id, y->contract_id);
    if (r != 0)
        return r;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The code a posting goes to (never NULL). */
static const char *code_of(const rs_connect_opts_t *o, const rs_entry_t *e,
                           const rs_posting_t *p)
{
    if (p->code[0] != '\0' && memchr(p->code, '\0', sizeof(p->code)) != NULL)
        return p->code;
    return rs_policy_account_code(o->policy, p->account, e->product);
}

/* ------------------------------------------------------------------------ */
/* journals                                                                 */
/* ------------------------------------------------------------------------ */

static int journal_balances(const rs_cx_journal_t *j, rs_money_t *total)
{
    rs_money_t dr = 0, cr = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (j->lines[i].debit < 0 || j->lines[i].credit < 0)
            return 0;
        dr += j->lines[i].debit;
        cr += j->lines[i].credit;
    }
    *total = dr;
    return dr == cr;
}

static void entry_journal(const rs_connect_opts_t *o, const rs_cx_format_t *f,
                          const rs_entry_t *e, rs_cx_line_t *lines, rs_cx_journal_t *j)
{
    memset(j, 0, sizeof(*j));
    rs_cx_journal_number(e->entry_id, f->max_number, j->number, sizeof(j->number));
    j->entry = e;
    j->date = e->posted_on;
    j->period = e->period;
    j->currency = e->currency;
    j->exponent = e->exponent;
    j->customer = e->customer_id;
    int n = snprintf(j->memo, sizeof(j->memo), "%s %s %s %s%s%s", e->entry_id,
                     rs_entry_kind_name(e->kind), e->rule, e->contract_id,
                     e->line_id[0] ? "/" : "", e->line_id);
    if (e->document_id[0] != '\0' && n > 0 && (size_t)n < sizeof(j->memo))
        snprintf(j->memo + n, sizeof(j->memo) - (size_t)n, " %s", e->document_id);
    j->lines = lines;
    j->n = (size_t)e->n_postings;
    for (int i = 0; i < e->n_postings; i++) {
        const rs_posting_t *p = &e->postings[i];
        lines[i].code = code_of(o, e, p);
        lines[i].role = p->account;
        lines[i].product = e->product;
        lines[i].customer = e->customer_id;
        lines[i].debit = p->debit;
        lines[i].credit = p->credit;
    }
}

/* One posting in a summary: sorted by (currency, code, customer). */
typedef struct sitem {
    const char *currency;
    const char *code;
    const char *customer; /* "" unless the system names A/R lines */
    rs_account_t role;
    int exponent;
    rs_money_t net; /* debit - credit */
} sitem_t;

static int cmp_sitem(const void *a, const void *b)
{
    const sitem_t *x = a, *y = b;
    int r = strcmp(x->currency, y->currency);
    if (r == 0)
        r = strcmp(x->code, y->code);
    if (r == 0)
        r = strcmp(x->customer, y->customer);
    return r;
}

/* ------------------------------------------------------------------------ */
/* files                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct writer {
    const rs_connect_opts_t *o;
    const rs_cx_format_t *f;
    rs_connect_result_t *res;
    char **tmp; /* temp paths, parallel to res->files */
    FILE *fp;
    iconv_t cd; /* (iconv_t)-1: UTF-8 */
    size_t rows, bytes;
    rs_money_t dr, cr; /* the open file's totals, per currency mixed: checked per file */
    char *errstr;
    size_t errlen;
    rs_strbuf_t buf;
    size_t seq; /* journals written to the open file, for sequential numbers */
} writer_t;

static int fail(writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(writer_t *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errstr, w->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Write UTF-8 text to the open file in the file's encoding. */
static int put_encoded(writer_t *w, const char *s, size_t n)
{
    if (w->cd == (iconv_t)-1) {
        if (fwrite(s, 1, n, w->fp) != n)
            return fail(w, "%s: %s", w->tmp[w->res->n_files - 1], strerror(errno));
        w->bytes += n;
        return 0;
    }
    char out[4096];
    char *in = (char *)s;
    size_t left = n;
    (void)iconv(w->cd, NULL, NULL, NULL, NULL);
    while (left > 0) {
        char *op = out;
        size_t room = sizeof(out);
        size_t r = iconv(w->cd, &in, &left, &op, &room);
        size_t got = sizeof(out) - room;
        if (got > 0 && fwrite(out, 1, got, w->fp) != got)
            return fail(w, "%s: %s", w->tmp[w->res->n_files - 1], strerror(errno));
        w->bytes += got;
        if (r == (size_t)-1 && errno != E2BIG) {
            /* name the character that has no Shift_JIS form */
            size_t k = 1;
            while (k < left && k < 4 && (((unsigned char)in[k]) & 0xC0) == 0x80)
                k++;
            return fail(w, "%s: \"%.*s\" cannot be written in %s (use --encoding utf-8)",
                        w->f->name, (int)k, in, w->f->sjis_name);
        }
    }
    return 0;
}

static int close_file(writer_t *w)
{
    if (w->fp == NULL)
        return 0;
    int rc = 0;
    if (w->dr != w->cr)
        rc = fail(w, "%s: the file does not balance", w->tmp[w->res->n_files - 1]);
    if (fclose(w->fp) != 0 && rc == 0)
        rc = fail(w, "%s: %s", w->tmp[w->res->n_files - 1], strerror(errno));
    w->fp = NULL;
    if (w->cd != (iconv_t)-1)
        iconv_close(w->cd);
    w->cd = (iconv_t)-1;
    return rc;
}

static int open_file(writer_t *w)
{
    char name[512], period[16];
    size_t k = w->res->n_files + 1;
    rs_period_format(w->o->period, period, sizeof(period));
    /* a file's name: <format>-<period>[-<currency>].csv, -<k> once split */
    snprintf(name, sizeof(name), "%s/%s-%s%s%s-%zu.csv", w->o->out_dir, w->f->name, period,
             w->o->currency ? "-" : "", w->o->currency ? w->o->currency : "", k);
    char **files = realloc(w->res->files, k * sizeof(char *));
    if (files == NULL)
        return fail(w, "out of memory");
    w->res->files = files;
    char **tmp = realloc(w->tmp, k * sizeof(char *));
    if (tmp == NULL)
        return fail(w, "out of memory");
    w->tmp = tmp;
    size_t len = strlen(name) + 8;
    w->res->files[k - 1] = strdup(name);
    w->tmp[k - 1] = malloc(len);
    if (w->res->files[k - 1] == NULL || w->tmp[k - 1] == NULL) {
        free(w->res->files[k - 1]);
        free(w->tmp[k - 1]);
        return fail(w, "out of memory");
    }
    snprintf(w->tmp[k - 1], len, "%s.tmp", name);
    w->res->n_files = k;
    w->fp = fopen(w->tmp[k - 1], "wb");
    if (w->fp == NULL)
        return fail(w, "%s: %s", w->tmp[k - 1], strerror(errno));
    w->rows = w->bytes = 0;
    w->dr = w->cr = 0;
    w->seq = 0;
    rs_connect_encoding_t enc = w->o->encoding;
    if (enc == RS_CONNECT_ENC_DEFAULT)
        enc = w->f->encoding;
    if (enc == RS_CONNECT_ENC_SHIFT_JIS) {
        w->cd = iconv_open(w->f->sjis_name, "UTF-8");
        if (w->cd == (iconv_t)-1)
            return fail(w, "iconv %s: %s", w->f->sjis_name, strerror(errno));
    } else if (enc == RS_CONNECT_ENC_UTF8_BOM) {
        if (put_encoded(w, "\xEF\xBB\xBF", 3) != 0)
            return -1;
    }
    rs_strbuf_t h = {0};
    rs_cx_header(w->f, &h);
    if (h.oom) {
        rs_strbuf_free(&h);
        return fail(w, "out of memory");
    }
    int rc = put_encoded(w, h.s, h.len);
    rs_strbuf_free(&h);
    return rc;
}

/* Format and write one journal, opening a new file when a limit needs it. */
static int write_journal(writer_t *w, const rs_cx_journal_t *j)
{
    rs_money_t total;
    if (!journal_balances(j, &total))
        return fail(w, "journal %s: debits and credits differ", j->number);
    size_t rows = w->f->rows_of(j);
    size_t max_rows = w->f->max_rows;
    if (w->o->max_rows > 0 && (max_rows == 0 || w->o->max_rows < max_rows))
        max_rows = w->o->max_rows;
    if (max_rows > 0 && rows > max_rows)
        return fail(w, "journal %s: %zu rows, over %s's %zu a file", j->number, rows,
                    w->f->name, max_rows);
    int again = 0;
    for (;;) {
        w->buf.len = 0;
        if (w->buf.s != NULL)
            w->buf.s[0] = '\0';
        if (w->f->write(w->f, w->o, j, w->seq + 1, &w->buf, w->errstr, w->errlen) != 0)
            return -1;
        if (w->buf.oom)
            return fail(w, "out of memory");
        int full = w->fp == NULL || (max_rows > 0 && w->rows + rows > max_rows) ||
                   (w->f->max_bytes > 0 && w->bytes + w->buf.len > w->f->max_bytes);
        if (!full || (again && w->rows == 0))
            break;
        if (close_file(w) != 0 || open_file(w) != 0)
            return -1;
        again = 1; /* numbering may restart in the new file: format again */
    }
    if (put_encoded(w, w->buf.s, w->buf.len) != 0)
        return -1;
    w->rows += rows;
    w->seq++;
    w->dr += total;
    w->cr += total;
    w->res->rows += rows;
    w->res->journals++;
    return 0;
}

/* Remove what the call wrote (on failure) or move it into place. */
static int finish(writer_t *w, int ok)
{
    if (close_file(w) != 0)
        ok = 0;
    for (size_t i = 0; i < w->res->n_files; i++) {
        if (ok && rename(w->tmp[i], w->res->files[i]) != 0) {
            fail(w, "%s: %s", w->res->files[i], strerror(errno));
            ok = 0;
            for (size_t k = 0; k < i; k++)
                unlink(w->res->files[k]);
        }
        if (!ok)
            unlink(w->tmp[i]);
        free(w->tmp[i]);
    }
    free(w->tmp);
    rs_strbuf_free(&w->buf);
    if (!ok)
        rs_connect_result_free(w->res);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* the export                                                               */
/* ------------------------------------------------------------------------ */

static int export_entries(writer_t *w, const rs_entry_t *const *sel, size_t n)
{
    rs_cx_line_t lines[RS_ENTRY_MAX_POSTINGS];
    size_t every = w->o->progress_every ? w->o->progress_every : 10000;
    for (size_t i = 0; i < n; i++) {
        rs_cx_journal_t j;
        entry_journal(w->o, w->f, sel[i], lines, &j);
        if (write_journal(w, &j) != 0)
            return -1;
        if (w->o->progress && (i + 1) % every == 0)
            w->o->progress(w->o->progress_opaque, i + 1, n, w->res->n_files);
    }
    return 0;
}

static int export_summary(writer_t *w, const rs_entry_t *const *sel, size_t n)
{
    size_t np = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        np += (size_t)sel[i]->n_postings;
    sitem_t *it = calloc(np ? np : 1, sizeof(*it));
    rs_cx_line_t *lines = calloc(np ? np : 1, sizeof(*lines));
    int rc = -1;
    if (it == NULL || lines == NULL) {
        fail(w, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < sel[i]->n_postings; p++) {
            const rs_posting_t *q = &sel[i]->postings[p];
            sitem_t *s = &it[k++];
            s->currency = sel[i]->currency;
            s->exponent = sel[i]->exponent;
            s->code = code_of(w->o, sel[i], q);
            s->role = q->account;
            s->customer = w->f->names_receivables && q->account == RS_ACCT_ACCOUNTS_RECEIVABLE
                              ? sel[i]->customer_id
                              : "";
            s->net = q->debit - q->credit;
        }
    qsort(it, np, sizeof(*it), cmp_sitem);
    for (size_t a = 0; a < np;) {
        /* one journal per currency */
        size_t b = a, nl = 0;
        while (b < np && strcmp(it[b].currency, it[a].currency) == 0)
            b++;
        for (size_t x = a; x < b;) {
            size_t y = x;
            rs_money_t net = 0;
            while (y < b && cmp_sitem(&it[x], &it[y]) == 0)
                net += it[y++].net;
            if (net != 0) {
                rs_cx_line_t *l = &lines[nl++];
                l->code = it[x].code;
                l->role = it[x].role;
                l->product = "";
                l->customer = it[x].customer;
                l->debit = net > 0 ? net : 0;
                l->credit = net < 0 ? -net : 0;
            }
            x = y;
        }
        rs_cx_journal_t j;
        char period[16];
        memset(&j, 0, sizeof(j));
        rs_period_format(w->o->period, period, sizeof(period));
        snprintf(j.number, sizeof(j.number), "RS-%s-%s", period, it[a].currency);
        j.date = rs_period_last_day(w->o->period);
        j.period = w->o->period;
        j.currency = it[a].currency;
        j.exponent = it[a].exponent;
        j.customer = "";
        size_t entries = 0;
        for (size_t i = 0; i < n; i++)
            entries += strcmp(sel[i]->currency, it[a].currency) == 0;
        snprintf(j.memo, sizeof(j.memo), "revstream summary %s %s (%zu entries)", period,
                 it[a].currency, entries);
        j.lines = lines;
        j.n = nl;
        if (nl > 0 && write_journal(w, &j) != 0)
            goto out;
        a = b;
    }
    rc = 0;
out:
    free(it);
    free(lines);
    return rc;
}

int rs_connect_export(const rs_connect_opts_t *o, const rs_entry_t *entries, size_t n,
                      rs_connect_result_t *res, char *errstr, size_t errlen)
{
    writer_t w;
    memset(res, 0, sizeof(*res));
    memset(&w, 0, sizeof(w));
    w.o = o;
    w.res = res;
    w.cd = (iconv_t)-1;
    w.errstr = errstr;
    w.errlen = errlen;
    w.f = rs_cx_format((int)o->format);
    if (w.f == NULL || o->out_dir == NULL) {
        snprintf(errstr, errlen, "export: no such format, or no output folder");
        return -1;
    }
    const rs_entry_t **sel = malloc((n ? n : 1) * sizeof(*sel));
    if (sel == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    int ok = 0;
    for (size_t i = 0; i < n; i++) {
        const rs_entry_t *e = &entries[i];
        if (e->period != o->period || (o->currency && strcmp(o->currency, e->currency) != 0))
            continue;
        if (w.f->currency_only != NULL && strcmp(e->currency, w.f->currency_only) != 0) {
            fail(&w, "entry %s: currency %s: %s takes %s only (use --currency %s)", e->entry_id,
                 e->currency, w.f->name, w.f->currency_only, w.f->currency_only);
            goto out;
        }
        sel[k++] = e;
    }
    qsort(sel, k, sizeof(*sel), cmp_entry);
    res->entries = k;
    if (open_file(&w) != 0)
        goto out;
    if ((o->summary ? export_summary(&w, sel, k) : export_entries(&w, sel, k)) != 0)
        goto out;
    ok = 1;
out:
    free(sel);
    if (finish(&w, ok) != 0)
        return -1;
    if (o->progress)
        o->progress(o->progress_opaque, k, k, res->n_files);
    return 0;
}
