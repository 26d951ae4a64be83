/*
 * rs_money.c — see rs_money.h for the invariants this file keeps.
 */
#include "rs_money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ISO 4217 active codes and their minor-unit exponents. */
static const struct {
    const char code[4];
    int exponent;
} currencies[] = {
    {"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2}, {"ARS", 2},
    {"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2}, {"BDT", 2}, {"BGN", 2},
    {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2}, {"BOB", 2}, {"BRL", 2}, {"BSD", 2},
    {"BTN", 2}, {"BWP", 2}, {"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHF", 2},
    {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CRC", 2}, {"CUP", 2}, {"CVE", 2},
    {"CZK", 2}, {"DJF", 0}, {"DKK", 2}, {"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2},
    {"ETB", 2}, {"EUR", 2}, {"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2},
    {"GIP", 2}, {"GMD", 2}, {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2},
    {"HTG", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3}, {"IRR", 2},
    {"ISK", 0}, {"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KGS", 2}, {"KHR", 2},
    {"KMF", 0}, {"KPW", 2}, {"KRW", 0}, {"KWD", 3}, {"KYD", 2}, {"KZT", 2}, {"LAK", 2},
    {"LBP", 2}, {"LKR", 2}, {"LRD", 2}, {"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2},
    {"MGA", 2}, {"MKD", 2}, {"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2},
    {"MVR", 2}, {"MWK", 2}, {"MXN", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2}, {"NGN", 2},
    {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3}, {"PAB", 2}, {"PEN", 2},
    {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"PYG", 0}, {"QAR", 2}, {"RON", 2},
    {"RSD", 2}, {"RUB", 2}, {"RWF", 0}, {"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2},
    {"SEK", 2}, {"SGD", 2}, {"SHP", 2}, {"SLE", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2},
    {"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2}, {"TMT", 2},
    {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2}, {"TZS", 2}, {"UAH", 2},
    {"UGX", 0}, {"USD", 2}, {"UYI", 0}, {"UYU", 2}, {"UYW", 4}, {"UZS", 2}, {"VES", 2},
    {"VND", 0}, {"VUV", 0}, {"WST", 2}, {"XAF", 0}, {"XCD", 2}, {"XOF", 0}, {"XPF", 0},
    {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWL", 2},
};

int rs_currency_exponent(const char *code)
{
    if (code == NULL || strlen(code) != 3)
        return -1;
    size_t lo = 0, hi = sizeof(currencies) / sizeof(currencies[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(code, currencies[mid].code);
        if (c == 0)
            return currencies[mid].exponent;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

int rs_money_narrow(__int128 v, rs_money_t *out)
{
    if (v > RS_MONEY_MAX || v < -RS_MONEY_MAX)
        return -1;
    *out = (rs_money_t)v;
    return 0;
}

int rs_money_add(rs_money_t a, rs_money_t b, rs_money_t *out)
{
    return rs_money_narrow((__int128)a + b, out);
}

int rs_money_sub(rs_money_t a, rs_money_t b, rs_money_t *out)
{
    return rs_money_narrow((__int128)a - b, out);
}

/* By hand, not __builtin_mul_overflow: on __int128 clang calls
 * __muloti4, which libgcc (what the fuzz and tidy builds link) lacks. */
#define WIDE_MAX ((unsigned __int128)(~(unsigned __int128)0 >> 1)) /* 2^127 - 1 */

int rs_wide_mul(__int128 a, __int128 b, __int128 *out)
{
    unsigned __int128 ua = a < 0 ? -(unsigned __int128)a : (unsigned __int128)a;
    unsigned __int128 ub = b < 0 ? -(unsigned __int128)b : (unsigned __int128)b;
    int neg = (a < 0) != (b < 0);
    /* both under 2^63: the product is under 2^126 (no division needed) */
    if ((ua | ub) >> 63 != 0 && ua != 0 && ub > (WIDE_MAX + 1) / ua)
        return -1;
    unsigned __int128 p = ua * ub;
    if (p > WIDE_MAX + (neg ? 1 : 0))
        return -1;
    *out = neg ? (__int128)(0 - p) : (__int128)p;
    return 0;
}

int rs_wide_add(__int128 a, __int128 b, __int128 *out)
{
    if ((b > 0 && a > (__int128)(WIDE_MAX - (unsigned __int128)b)) ||
        (b < 0 && a < -(__int128)WIDE_MAX - 1 - b))
        return -1;
    *out = a + b;
    return 0;
}

/* 10^0 .. 10^18 (every power an amount's scale or a currency's exponent
 * asks for: R(d) asks per usage day), read instead of multiplied out. */
/* clang-format off */
static const int64_t pow10_small[19] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
    10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
    1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000};
/* clang-format on */

__int128 rs_pow10(int n)
{
    if (n <= 0)
        return 1;
    if (n < 19)
        return pow10_small[n];
    __int128 r = 1;
    while (n-- > 0)
        r *= 10;
    return r;
}

/* Operands within +-2^62: the 64-bit division gives the same quotient and
 * remainder as the 128-bit one (both truncate), at a fraction of its cost
 * (a schedule's cumulative amounts are almost always this small). */
#define DIV64_LIMIT ((__int128)1 << 62)

__int128 rs_div_round(__int128 num, __int128 den)
{
    if (den < 0) {
        num = -num;
        den = -den;
    }
    __int128 q, r;
    /* (den > 0 here: a zero divisor is the caller's error, as before) */
    if (num > -DIV64_LIMIT && num < DIV64_LIMIT && den < DIV64_LIMIT) {
        q = (int64_t)num / (int64_t)den;
        r = (int64_t)num % (int64_t)den;
    } else {
        q = num / den;
        r = num % den;
    }
    if (r < 0)
        r = -r;
    if (2 * r >= den)
        q += (num < 0) ? -1 : 1;
    return q;
}

__int128 rs_div_floor(__int128 num, __int128 den)
{
    __int128 q = num / den;
    if ((num % den) != 0 && num < 0)
        q -= 1;
    return q;
}

int rs_decimal_parse(const char *s, rs_decimal_t *out, char *errstr, size_t errlen)
{
    const char *p = s;
    int neg = 0, digits = 0, scale = 0, seen_point = 0;
    __int128 m = 0;

    if (s == NULL || *s == '\0') {
        snprintf(errstr, errlen, "empty decimal");
        return -1;
    }
    if (*p == '-' || *p == '+') {
        neg = (*p == '-');
        p++;
    }
    for (; *p; p++) {
        if (*p == '.') {
            if (seen_point || digits == 0) {
                snprintf(errstr, errlen, "malformed decimal \"%s\"", s);
                return -1;
            }
            seen_point = 1;
            continue;
        }
        if (*p < '0' || *p > '9') {
            snprintf(errstr, errlen, "malformed decimal \"%s\"", s);
            return -1;
        }
        m = m * 10 + (*p - '0');
        digits++;
        if (seen_point)
            scale++;
        if (m > INT64_MAX || digits > 30) {
            snprintf(errstr, errlen, "decimal \"%s\" is out of range", s);
            return -1;
        }
    }
    if (digits == 0 || (seen_point && scale == 0)) {
        snprintf(errstr, errlen, "malformed decimal \"%s\"", s);
        return -1;
    }
    if (scale > RS_DECIMAL_MAX_SCALE) {
        snprintf(errstr, errlen, "decimal \"%s\" has more than %d fraction digits", s,
                 RS_DECIMAL_MAX_SCALE);
        return -1;
    }
    out->mantissa = (int64_t)(neg ? -m : m);
    out->scale = scale;
    return 0;
}

int rs_decimal_to_minor(rs_decimal_t d, int exponent, rs_money_t *out, char *errstr,
                        size_t errlen)
{
    int scale = d.scale;
    __int128 m = d.mantissa;
    /* Trailing zeros beyond the exponent are harmless ("12.500" USD). */
    while (scale > exponent && m % 10 == 0) {
        m /= 10;
        scale--;
    }
    if (scale > exponent) {
        snprintf(errstr, errlen, "has %d minor digits, the currency allows %d", d.scale,
                 exponent);
        return -1;
    }
    m *= rs_pow10(exponent - scale);
    if (m > RS_MONEY_MAX || m < -RS_MONEY_MAX) {
        snprintf(errstr, errlen, "amount out of range");
        return -1;
    }
    *out = (rs_money_t)m;
    return 0;
}

char *rs_money_format(rs_money_t v, int exponent, char *buf, size_t buflen)
{
    __int128 a = v;
    int neg = a < 0;
    if (neg)
        a = -a;
    __int128 unit = rs_pow10(exponent);
    unsigned long long whole = (unsigned long long)(a / unit);
    unsigned long long frac = (unsigned long long)(a % unit);
    if (exponent == 0)
        snprintf(buf, buflen, "%s%llu", neg ? "-" : "", whole);
    else
        snprintf(buf, buflen, "%s%llu.%0*llu", neg ? "-" : "", whole, exponent, frac);
    return buf;
}

char *rs_money_format_grouped(rs_money_t v, int exponent, char *buf, size_t buflen)
{
    char plain[64], grouped[96];
    rs_money_format(v, exponent, plain, sizeof(plain));
    const char *p = plain;
    size_t o = 0;
    if (*p == '-')
        grouped[o++] = *p++;
    size_t intlen = strcspn(p, ".");
    for (size_t i = 0; i < intlen; i++) {
        grouped[o++] = p[i];
        size_t left = intlen - i - 1;
        if (left > 0 && left % 3 == 0)
            grouped[o++] = ',';
    }
    snprintf(grouped + o, sizeof(grouped) - o, "%s", p + intlen);
    snprintf(buf, buflen, "%s", grouped);
    return buf;
}
