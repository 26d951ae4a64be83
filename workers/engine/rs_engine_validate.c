/*
 * rs_engine_validate.c — what the event handlers validate with: the
 * "event <id>: <field>: <reason>" error, amounts in minor units, lookups of
 * a contract's lines, invoices, payments and applied document ids, and the
 * largest-remainder allocation of an amount over weights.
 *
 * Invariants:
 *   - Only rs_eng_doc_add() changes state; handlers call it after their
 *     validation has passed (I6).
 *   - rs_eng_allocate() returns shares that sum exactly to the total, ties
 *     going to the earlier index: the same inputs give the same split.
 */
#include "rs_engine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_engine_internal.h"

/* Write "event <id>: <message>" and return -1. */
int rs_eng_verr(rs_vctx_t *v, const char *fmt, ...)
{
    int n = snprintf(v->errstr, v->errlen, "event %s: ", v->ev->event_id);
    if (n > 0 && (size_t)n < v->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->errstr + n, v->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *rs_eng_field(char *f, size_t cap, const char *pre, int i, const char *post)
{
    char digits[12];
    int nd = 0;
    unsigned int u = i < 0 ? 0u - (unsigned int)i : (unsigned int)i;
    do {
        digits[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (i < 0)
        digits[nd++] = '-';
    size_t n = 0;
    for (const char *p = pre; *p && n + 1 < cap; p++)
        f[n++] = *p;
    if (n + 1 < cap)
        f[n++] = '[';
    while (nd > 0 && n + 1 < cap)
        f[n++] = digits[--nd];
    if (n + 1 < cap)
        f[n++] = ']';
    for (const char *p = post; *p && n + 1 < cap; p++)
        f[n++] = *p;
    f[n] = '\0';
    return f;
}

int rs_eng_check_sum(rs_vctx_t *v, const char *field, const char *what, rs_money_t a,
                     rs_money_t b, rs_money_t *out)
{
    if (rs_money_add(a, b, out) == 0)
        return 0;
    char lim[48];
    return rs_eng_verr(v, "%s: %s would be out of range (beyond %s minor units)", field, what,
                       rs_money_format(RS_MONEY_MAX, 0, lim, sizeof(lim)));
}

int rs_eng_to_minor(rs_vctx_t *v, const char *field, rs_decimal_t d, int exponent, int min_sign,
                    rs_money_t *out)
{
    char why[128];
    if (rs_decimal_to_minor(d, exponent, out, why, sizeof(why)))
        return rs_eng_verr(v, "%s: %s", field, why);
    if (min_sign > 0 && *out <= 0)
        return rs_eng_verr(v, "%s: must be greater than zero", field);
    if (min_sign == 0 && *out < 0)
        return rs_eng_verr(v, "%s: must not be negative", field);
    return 0;
}

int rs_eng_find_line(const rs_contract_t *c, const char *id)
{
    for (int i = 0; i < c->nlines; i++)
        if (strcmp(rs_eng_str(c, c->lines[i].line_id), id) == 0)
            return i;
    return -1;
}

/* Invoices and payments are looked up newest first: events mostly name a
 * recent one (a payment, its invoice of the month). The index is the same
 * either way: a contract's invoice ids are distinct, and so are its payment
 * ids (rs_eng_apply_invoice and rs_eng_apply_payment refuse an id the
 * contract has; records hold only what they accepted). */
int rs_eng_find_invoice(const rs_contract_t *c, const char *id)
{
    for (int i = c->ninv - 1; i >= 0; i--)
        if (strcmp(rs_eng_str(c, c->inv[i].invoice_id), id) == 0)
            return i;
    return -1;
}

int rs_eng_find_payment(const rs_contract_t *c, const char *id)
{
    for (int i = c->npay - 1; i >= 0; i--)
        if (strcmp(rs_eng_str(c, c->pay[i].payment_id), id) == 0)
            return i;
    return -1;
}

int rs_eng_doc_seen(const rs_contract_t *c, const char *id)
{
    for (int i = 0; i < c->ndocs; i++)
        if (strcmp(rs_eng_str(c, c->docs[i]), id) == 0)
            return 1;
    return 0;
}

int rs_eng_doc_add(rs_contract_t *c, const char *id)
{
    rs_eng_str_t ref;
    if (rs_eng_growi((void **)&c->docs, &c->capdocs, c->ndocs + 1, sizeof(rs_eng_str_t)) ||
        rs_eng_str_put(c, id, RS_ID_MAX, &ref))
        return -1;
    c->docs[c->ndocs++] = ref;
    return 0;
}

/* Largest-remainder allocation of `total` (>= 0) in proportion to w[] (>= 0,
 * sum > 0); ties go to the earlier index. Returns 0, or -1 on ENOMEM. */
int rs_eng_allocate(rs_money_t total, const rs_money_t *w, size_t n, rs_money_t *out)
{
    __int128 W = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = 0;
        W += w[i];
    }
    if (n == 0 || W <= 0)
        return 0;
    __int128 rem_s[8]; /* a few weights (an invoice's lines): no allocation */
    __int128 *rem = n <= 8 ? rem_s : calloc(n, sizeof(*rem));
    if (rem == NULL)
        return -1;
    rs_money_t given = 0;
    for (size_t i = 0; i < n; i++) {
        __int128 exact = (__int128)total * w[i];
        out[i] = (rs_money_t)(exact / W);
        rem[i] = exact % W;
        given += out[i];
    }
    /* fewer than n units are left: each goes to the largest remainder */
    for (rs_money_t left = total - given; left > 0; left--) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        out[best]++;
        rem[best] = -1;
    }
    if (rem != rem_s)
        free(rem);
    return 0;
}
