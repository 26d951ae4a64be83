/*
 * rs_format_html — `revstream report --html`: one self-contained HTML page
 * (inline CSS, SVG and a few lines of JS; nothing fetched at view time) with
 * the waterfall chart, the rollforward, balances by customer with
 * drill-down to contracts, their lines and entries, and the exceptions.
 *
 * Invariants:
 *   - Every figure on the page is a report row's amount formatted with
 *     rs_money_format_grouped; the chart's bar heights are integer pixels,
 *     height = round(|recognized| * 200 / max |recognized| of the currency)
 *     in int64 arithmetic (no floating point), and each bar carries its
 *     figures as data attributes (data-period, data-currency,
 *     data-recognized, data-deferred, data-projected) so a test can check
 *     the drawing against the report.
 *   - One <rect class="bar"> per waterfall row (period and currency).
 *   - All text is HTML-escaped. The page's script records any error it sees
 *     in <body data-errors> and marks <body data-rendered="ok"> when done.
 *
 * Ownership: everything is borrowed for the call. Returns 0, or -1 when
 * writing failed or memory ran out.
 */
#ifndef RS_FORMAT_HTML_H
#define RS_FORMAT_HTML_H

#include <stdio.h>

#include "rs_format.h"

typedef struct rs_html_input {
    rs_period_t through;
    const rs_waterfall_row_t *wf;
    size_t nwf;
    const rs_rollforward_row_t *rf;
    size_t nrf;
    const rs_balance_row_t *bal; /* per line, sorted by contract, line */
    size_t nbal;
    const rs_entry_t *entries; /* the journal's entries ... */
    const size_t *idx;         /* ... in this order (rs_report_journal) */
    size_t nidx;
    const rs_exception_row_t *exc;
    size_t nexc;
} rs_html_input_t;

int rs_format_html(FILE *f, const rs_html_input_t *in);

#endif
