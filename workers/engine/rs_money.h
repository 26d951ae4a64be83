/*
 * rs_money — exact money, decimals and calendar dates for the engine.
 *
 * Invariants:
 *   - Money is an int64 count of the currency's minor unit (rs_money_t).
 *     No floating point is used anywhere in this module.
 *   - A decimal string is parsed into an rs_decimal_t (mantissa + scale) with
 *     no loss; converting it to minor units fails, rather than rounds, when it
 *     has more fraction digits than the currency's exponent.
 *   - Rounding (rs_div_round) is half away from zero on 128-bit intermediates.
 *   - Dates are days since 1970-01-01 (proleptic Gregorian); periods are
 *     calendar months numbered year * 12 + (month - 1).
 */
#ifndef RS_MONEY_H
#define RS_MONEY_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t rs_money_t;  /* minor units of the contract currency */
typedef int32_t rs_date_t;   /* days since 1970-01-01 */
typedef int32_t rs_period_t; /* year * 12 + (month - 1) */

#define RS_DATE_NONE INT32_MIN
#define RS_PERIOD_NONE INT32_MIN

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

/* ---- dates and periods ---- */
rs_date_t rs_date_from_ymd(int y, int m, int d);
void rs_date_to_ymd(rs_date_t day, int *y, int *m, int *d);
/* Parse "YYYY-MM-DD" (strictly). Returns 0 or -1. */
int rs_date_parse(const char *s, rs_date_t *out);
/* Parse an RFC 3339 timestamp and return its UTC calendar date. 0 or -1. */
int rs_timestamp_parse_date(const char *s, rs_date_t *out);
/* Parse an RFC 3339 timestamp into milliseconds since 1970-01-01T00:00Z
 * (fractions beyond milliseconds are dropped). 0 or -1. */
int rs_timestamp_parse_ms(const char *s, int64_t *out);
char *rs_date_format(rs_date_t day, char *buf, size_t buflen); /* YYYY-MM-DD */
int rs_days_in_month(int y, int m);

rs_period_t rs_period_of(rs_date_t day);
rs_date_t rs_period_first_day(rs_period_t p);
rs_date_t rs_period_last_day(rs_period_t p);
/* Parse "YYYY-MM". Returns 0 or -1. */
int rs_period_parse(const char *s, rs_period_t *out);
char *rs_period_format(rs_period_t p, char *buf, size_t buflen); /* YYYY-MM */

#endif
