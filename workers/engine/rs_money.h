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
