/*
 * rs_money — exact money and decimals for the engine.
 *
 * Invariants:
 *   - Money is an int64 count of the currency's minor unit (rs_money_t).
 *     No floating point is used anywhere in this module.
 *   - A decimal string is parsed into an rs_decimal_t (mantissa + scale) with
 *     no loss; converting it to minor units fails, rather than rounds, when it
 *     has more fraction digits than the currency's exponent.
 *   - Rounding (rs_div_round) is half away from zero on 128-bit intermediates.
 *   - Every amount, and every balance or total the engine keeps, lies in
 *     [-RS_MONEY_MAX, RS_MONEY_MAX]. Sums and products of money go through
 *     the checked helpers below (rs_money_add, rs_money_sub, rs_money_narrow,
 *     rs_wide_mul, rs_wide_add), which report a result out of that range
 *     instead of wrapping; the engine turns that into a rejection naming the
 *     event and the field (rs_eng_check_sum). Because every kept value is
 *     within RS_MONEY_MAX = INT64_MAX / 4, the sum or difference of any two
 *     (or four) of them fits an int64 even where no check is made.
 *   - Ownership: nothing here allocates; formatting writes into the
 *     caller's buffer and returns it.
 *
 * Dates and periods are in rs_calendar.h, included here so that code using
 * both keeps one include.
 */
#ifndef RS_MONEY_H
#define RS_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "rs_calendar.h"

typedef int64_t rs_money_t; /* minor units of the contract currency */

/* A parsed decimal string: value = mantissa / 10^scale. */
typedef struct rs_decimal {
    int64_t mantissa;
    int scale; /* 0..18 */
} rs_decimal_t;

/* The largest magnitude of any amount, balance or total (minor units):
 * 23,058,430,092,136,939.51 in a 2-digit currency. */
#define RS_MONEY_MAX (INT64_MAX / 4)

/* Checked money arithmetic: 0 with the result in *out, or -1 when the exact
 * result is outside [-RS_MONEY_MAX, RS_MONEY_MAX] (*out is then unchanged).
 * Never wraps. */
int rs_money_add(rs_money_t a, rs_money_t b, rs_money_t *out);
int rs_money_sub(rs_money_t a, rs_money_t b, rs_money_t *out);
/* A 128-bit intermediate (a usage value, a prorated amount) as money. */
int rs_money_narrow(__int128 v, rs_money_t *out);
/* 128-bit intermediates: 0, or -1 when the result does not fit __int128. */
int rs_wide_mul(__int128 a, __int128 b, __int128 *out);
int rs_wide_add(__int128 a, __int128 b, __int128 *out);

/* Largest number of fraction digits accepted in any decimal string. */
#define RS_DECIMAL_MAX_SCALE 6

/* ISO 4217 exponent of `code` (3 upper-case letters), or -1 if unknown. */
int rs_currency_exponent(const char *code);

/* Parse "-12.50", "5000", "0.000125". Returns 0 or -1 with a reason in errstr. */
int rs_decimal_parse(const char *s, rs_decimal_t *out, char *errstr, size_t errlen);

/* The decimal in minor units of a currency with `exponent` digits. Fails if
 * the decimal has more fraction digits than `exponent` or overflows. */
int rs_decimal_to_minor(rs_decimal_t d, int exponent, rs_money_t *out, char *errstr,
                        size_t errlen);

/* Format minor units as a plain decimal string ("-1234.50"). Returns buf. */
char *rs_money_format(rs_money_t v, int exponent, char *buf, size_t buflen);

/* Format with thousands separators for people ("-1,234.50"). Returns buf. */
char *rs_money_format_grouped(rs_money_t v, int exponent, char *buf, size_t buflen);

/* num / den rounded half away from zero; den must be non-zero. */
__int128 rs_div_round(__int128 num, __int128 den);

/* num / den rounded toward negative infinity; den > 0. */
__int128 rs_div_floor(__int128 num, __int128 den);

/* 10^n for 0 <= n <= 36. */
__int128 rs_pow10(int n);

#endif
