/*
 * rs_format_html.c — the HTML report page (see rs_format_html.h).
 *
 * Layout: a header; per currency a section with the SVG waterfall chart
 * (bars: recognized per period, the part not via deferred drawn on top in
 * its own colour, projected periods hatched lighter; a line: the deferred
 * balance) and the rollforward table with its tie to the waterfall; then
 * balances by customer as nested <details> (customer > contract > lines and
 * entries); then the exceptions. No external resource of any kind.
 */
#include "rs_format_html.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_format_internal.h"
#include "rs_money.h"

#define CHART_H 200 /* bar area height, px */
#define BAR_W 28
#define BAR_GAP 10

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
        }
    }
}

static const char *money(rs_money_t v, int x, char *buf)
{
    return rs_money_format_grouped(v, x, buf, MONEY_BUF);
}

static rs_money_t mabs(rs_money_t v)
{
    return v < 0 ? -v : v;
}

/* Integer pixel height of v against max (both >= 0), rounded. */
static long px(rs_money_t v, rs_money_t max)
{
    if (max <= 0)
        return 0;
    return (long)((v * CHART_H + max / 2) / max);
}

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}"
    "h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 10px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}th{border-bottom:1px solid #999}"
    "tr.total td{border-top:1px solid #999;font-weight:600}"
    ".note{color:#555;font-size:12px;max-width:760px}"
    "svg .bar{fill:#3b6ea8}svg .bar.projected{fill:#a9c2e0}svg .arrears{fill:#e39b3a}"
    "svg .deferred{fill:none;stroke:#2a9d5b;stroke-width:2}svg .dpt{fill:#2a9d5b}"
    "svg text{font-size:10px;fill:#444}details{margin:2px 0 2px 14px}"
    "summary{cursor:pointer}.legend span{display:inline-block;width:12px;height:12px;"
    "margin:0 4px 0 12px;vertical-align:middle}";

static const char js[] =
    "(function(){var errs=0;window.addEventListener('error',function(){errs++;"
    "document.body.setAttribute('data-errors',String(errs));});"
    "document.querySelectorAll('rect.bar').forEach(function(b){b.addEventListener('mouseover',"
    "function(){var c=document.getElementById('tip-'+b.getAttribute('data-currency'));"
    "if(c)c.textContent=b.getAttribute('data-period')+': recognized '+"
    "b.getAttribute('data-recognized')+', deferred '+b.getAttribute('data-deferred');});});"
    "document.body.setAttribute('data-errors',String(errs));"
    "document.body.setAttribute('data-rendered','ok');})();";

static void chart(FILE *f, const rs_html_input_t *in, const char *cur)
{
    char b1[MONEY_BUF], b2[MONEY_BUF], b3[MONEY_BUF], pb[PERIOD_BUF];
    rs_money_t max = 0, dmax = 0;
    size_t nb = 0;
    int cx = 0;
    for (size_t i = 0; i < in->nwf; i++) {
        const rs_waterfall_row_t *w = &in->wf[i];
        if (strcmp(w->currency, cur) != 0)
            continue;
        cx = w->exponent;
        if (mabs(w->recognized) > max)
            max = mabs(w->recognized);
        if (mabs(w->deferred) > dmax)
            dmax = mabs(w->deferred);
        nb++;
    }
    long width = (long)nb * (BAR_W + BAR_GAP) + 60, top = 20, base = top + CHART_H;
    fprintf(f,
            "<svg class=\"waterfall\" data-currency=\"%s\" width=\"%ld\" height=\"%ld\" "
            "viewBox=\"0 0 %ld %ld\" role=\"img\">\n",
            cur, width, base + 40, width, base + 40);
    fprintf(f, "<line x1=\"40\" y1=\"%ld\" x2=\"%ld\" y2=\"%ld\" stroke=\"#999\"/>\n", base,
            width, base);
    size_t k = 0;
    char points[8192];
    size_t pl = 0;
    points[0] = '\0';
    for (size_t i = 0; i < in->nwf; i++) {
        const rs_waterfall_row_t *w = &in->wf[i];
        if (strcmp(w->currency, cur) != 0)
            continue;
        long x = 44 + (long)k * (BAR_W + BAR_GAP), h = px(mabs(w->recognized), max);
        period_str(w->period, pb);
        fprintf(f,
                "<rect class=\"bar%s\" x=\"%ld\" y=\"%ld\" width=\"%d\" height=\"%ld\" "
                "data-period=\"%s\" data-currency=\"%s\" data-recognized=\"%s\" "
                "data-deferred=\"%s\" data-projected=\"%s\"><title>%s recognized %s%s</title>"
                "</rect>\n",
                w->projected ? " projected" : "", x, base - h, BAR_W, h, pb, cur,
                rs_money_format(w->recognized, w->exponent, b1, sizeof b1),
                rs_money_format(w->deferred, w->exponent, b2, sizeof b2),
                w->projected ? "true" : "false", pb, money(w->recognized, w->exponent, b3),
                w->projected ? " (scheduled)" : "");
        if (!w->projected && w->not_via_deferred > 0 && max > 0) {
            long ha = px(w->not_via_deferred, max);
            fprintf(f,
                    "<rect class=\"arrears\" x=\"%ld\" y=\"%ld\" width=\"%d\" height=\"%ld\">"
                    "<title>%s not via deferred %s</title></rect>\n",
                    x, base - h, BAR_W, ha, pb, money(w->not_via_deferred, w->exponent, b1));
        }
        long dy = base - px(mabs(w->deferred), dmax);
        if (pl + 32 < sizeof points)
            pl += (size_t)snprintf(points + pl, sizeof points - pl, "%ld,%ld ", x + BAR_W / 2,
                                   dy);
        fprintf(f, "<circle class=\"dpt\" cx=\"%ld\" cy=\"%ld\" r=\"2.5\"/>\n", x + BAR_W / 2,
                dy);
        if (k % 2 == 0)
            fprintf(f, "<text x=\"%ld\" y=\"%ld\" transform=\"rotate(45 %ld %ld)\">%s</text>\n",
                    x, base + 12, x, base + 12, pb);
        k++;
    }
    fprintf(f, "<polyline class=\"deferred\" points=\"%s\"/>\n", points);
    fprintf(f, "<text x=\"2\" y=\"%ld\">%s</text>\n</svg>\n", top - 6, money(max, cx, b1));
    fprintf(f,
            "<div class=\"legend\"><span style=\"background:#3b6ea8\"></span>recognized"
            "<span style=\"background:#e39b3a\"></span>of which not via deferred (billed in "
            "arrears)<span style=\"background:#a9c2e0\"></span>scheduled"
            "<span style=\"background:#2a9d5b\"></span>deferred balance (own scale, max %s)"
            "</div><div class=\"note\" id=\"tip-%s\">Point at a bar for its figures.</div>\n",
            money(dmax, cx, b2), cur);
}

static void rollforward(FILE *f, const rs_html_input_t *in, const char *cur)
{
    char m[7][MONEY_BUF], pb[PERIOD_BUF];
    sum_t rel = {0, 0}, nv = {0, 0}, rev = {0, 0};
    int x = 0, any = 0;
    fputs("<table class=\"rollforward\"><tr><th>Period</th><th>Opening</th><th>Billed</th>"
          "<th>Recognized (released)</th><th>Credits</th><th>Closing</th>"
          "<th>Not via deferred</th><th>Revenue recognized</th></tr>\n",
          f);
    for (size_t i = 0; i < in->nrf; i++) {
        const rs_rollforward_row_t *r = &in->rf[i];
        if (strcmp(r->currency, cur) != 0)
            continue;
        x = r->exponent;
        any = 1;
        fprintf(f,
                "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                "<td>%s</td><td>%s</td></tr>\n",
                period_str(r->period, pb), money(r->opening, x, m[0]),
                money(r->billed, x, m[1]), money(r->recognized, x, m[2]),
                money(r->credits, x, m[3]), money(r->closing, x, m[4]),
                money(r->not_via_deferred, x, m[5]), money(r->revenue, x, m[6]));
        sum_add(&rel, r->recognized);
        sum_add(&nv, r->not_via_deferred);
        sum_add(&rev, r->revenue);
    }
    if (any)
        fprintf(f,
                "<tr class=\"total\"><td>TOTAL</td><td></td><td></td><td>%s</td><td></td>"
                "<td></td><td>%s</td><td>%s</td></tr>\n",
                sum_str(&rel, x, m[0]), sum_str(&nv, x, m[1]), sum_str(&rev, x, m[2]));
    fputs("</table><p class=\"note\">Closing = Opening + Billed &minus; Recognized &minus; "
          "Credits. Recognized (released) is deferred revenue released to revenue; revenue "
          "recognized before it was billed (billed in arrears) never enters deferred revenue "
          "and is the Not via deferred column. Released + Not via deferred = the waterfall's "
          "recognized revenue.</p>\n",
          f);
}

static void entries_of(FILE *f, const rs_html_input_t *in, const char *contract)
{
    char m[2][MONEY_BUF], pb[PERIOD_BUF], db[PERIOD_BUF];
    fputs("<table class=\"entries\"><tr><th>Entry</th><th>Posted</th><th>Period</th>"
          "<th>Kind</th><th>Line</th><th>Account</th><th>Debit</th><th>Credit</th></tr>\n",
          f);
    for (size_t i = 0; i < in->nidx; i++) {
        const rs_entry_t *e = &in->entries[in->idx[i]];
        if (strcmp(e->contract_id, contract) != 0)
            continue;
        for (int p = 0; p < e->n_postings; p++) {
            fputs("<tr><td>", f);
            if (p == 0)
                esc(f, e->entry_id);
            fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td><td>",
                    p ? "" : rs_date_format(e->posted_on, db, sizeof db),
                    p ? "" : period_str(e->period, pb), p ? "" : rs_entry_kind_name(e->kind));
            if (p == 0)
                esc(f, e->line_id);
            fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                    rs_account_name(e->postings[p].account),
                    money(e->postings[p].debit, e->exponent, m[0]),
                    money(e->postings[p].credit, e->exponent, m[1]));
        }
    }
    fputs("</table>\n", f);
}

static void line_row(FILE *f, const rs_balance_row_t *b)
{
    char m[5][MONEY_BUF];
    int x = b->exponent;
    fputs("<tr><td>", f);
    esc(f, b->line_id);
    fprintf(f, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
            b->currency, money(b->billed, x, m[0]), money(b->recognized, x, m[1]),
            money(b->deferred, x, m[2]), money(b->unbilled, x, m[3]),
            money(b->received, x, m[4]));
}

static const char bal_head[] = "<th>Cur</th><th>Billed</th><th>Recognized</th><th>Deferred</th>"
                               "<th>Unbilled</th><th>Received</th>";

static int cmp_bal_ptr(const void *a, const void *b)
{
    const rs_balance_row_t *x = *(const rs_balance_row_t *const *)a;
    const rs_balance_row_t *y = *(const rs_balance_row_t *const *)b;
    int r = strcmp(x->customer_id, y->customer_id);
    if (r == 0)
        r = strcmp(x->contract_id, y->contract_id);
    return r ? r : strcmp(x->line_id, y->line_id);
}

static int customers(FILE *f, const rs_html_input_t *in)
{
    const rs_balance_row_t **o = malloc((in->nbal + 1) * sizeof(*o));
    char m[5][MONEY_BUF];
    if (o == NULL)
        return -1;
    for (size_t i = 0; i < in->nbal; i++)
        o[i] = &in->bal[i];
    qsort(o, in->nbal, sizeof(*o), cmp_bal_ptr);
    for (size_t i = 0; i < in->nbal;) {
        size_t j = i;
        /* one customer (and currency): its totals in the summary */
        rs_money_t t[5] = {0, 0, 0, 0, 0};
        while (j < in->nbal && strcmp(o[j]->customer_id, o[i]->customer_id) == 0 &&
               strcmp(o[j]->currency, o[i]->currency) == 0) {
            t[0] += o[j]->billed;
            t[1] += o[j]->recognized;
            t[2] += o[j]->deferred;
            t[3] += o[j]->unbilled;
            t[4] += o[j]->received;
            j++;
        }
        int x = o[i]->exponent;
        fputs("<details class=\"customer\"><summary><b>", f);
        esc(f, o[i]->customer_id);
        fprintf(f,
                "</b> %s &mdash; billed %s, recognized %s, deferred %s, unbilled %s, "
                "received %s</summary>\n",
                o[i]->currency, money(t[0], x, m[0]), money(t[1], x, m[1]),
                money(t[2], x, m[2]), money(t[3], x, m[3]), money(t[4], x, m[4]));
        for (size_t c = i; c < j;) {
            size_t d = c;
            while (d < j && strcmp(o[d]->contract_id, o[c]->contract_id) == 0)
                d++;
            fputs("<details class=\"contract\"><summary>Contract ", f);
            esc(f, o[c]->contract_id);
            fprintf(
                f, " (%zu line%s)</summary>\n<table class=\"lines\"><tr><th>Line</th>%s</tr>\n",
                d - c, d - c == 1 ? "" : "s", bal_head);
            for (size_t l = c; l < d; l++)
                line_row(f, o[l]);
            fputs("</table>\n", f);
            entries_of(f, in, o[c]->contract_id);
            fputs("</details>\n", f);
            c = d;
        }
        fputs("</details>\n", f);
        i = j;
    }
    free(o);
    return 0;
}

static void exceptions(FILE *f, const rs_html_input_t *in)
{
    char m[MONEY_BUF];
    if (in->nexc == 0) {
        fputs("<p>No exceptions.</p>\n", f);
        return;
    }
    fputs("<table class=\"exceptions\"><tr><th>Contract</th><th>Line</th><th>Customer</th>"
          "<th>Kind</th><th>Cur</th><th>Amount</th><th style=\"text-align:left\">Detail</th>"
          "</tr>\n",
          f);
    for (size_t i = 0; i < in->nexc; i++) {
        const rs_exception_row_t *r = &in->exc[i];
        const char *cells[4] = {r->contract_id, r->line_id, r->customer_id, r->kind};
        fputs("<tr>", f);
        for (int c = 0; c < 4; c++) {
            fputs("<td>", f);
            esc(f, cells[c]);
            fputs("</td>", f);
        }
        fprintf(f, "<td>%s</td><td>%s</td><td style=\"text-align:left\">", r->currency,
                r->currency[0] ? money(r->amount, r->exponent, m) : "");
        esc(f, r->detail);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

int rs_format_html(FILE *f, const rs_html_input_t *in)
{
    char pb[PERIOD_BUF];
    const char *curs[16];
    size_t nc = 0;
    for (size_t i = 0; i < in->nwf && nc < 16; i++) {
        size_t c = 0;
        while (c < nc && strcmp(curs[c], in->wf[i].currency) != 0)
            c++;
        if (c == nc)
            curs[nc++] = in->wf[i].currency;
    }
    period_str(in->through, pb);
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>revstream report through %s</title><style>%s</style></head>\n<body>\n"
            "<h1>Revenue report, posted through %s</h1>\n",
            pb, css, pb);
    for (size_t c = 0; c < nc; c++) {
        fprintf(f, "<h2>Revenue waterfall, %s</h2>\n", curs[c]);
        chart(f, in, curs[c]);
        fputs("<p class=\"note\">Recognized: all revenue recognized in the month (revenue less "
              "revenue_contra); the orange part was recognized before it was billed (billed "
              "in arrears) and never passed through deferred revenue. Lighter bars are "
              "scheduled by current terms, not posted yet.</p>\n",
              f);
        fprintf(f, "<h2>Deferred revenue rollforward, %s</h2>\n", curs[c]);
        rollforward(f, in, curs[c]);
    }
    fputs("<h2>Balances by customer</h2>\n<p class=\"note\">Open a customer for its "
          "contracts, a contract for its lines and journal entries.</p>\n",
          f);
    if (customers(f, in) != 0)
        return -1;
    fputs("<h2>Exceptions</h2>\n", f);
    exceptions(f, in);
    fprintf(f, "<script>%s</script>\n</body></html>\n", js);
    return finish(f, 0);
}
