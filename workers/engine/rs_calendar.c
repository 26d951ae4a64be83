/*
 * rs_calendar.c — dates and periods: days since 1970-01-01 in the proleptic
 * Gregorian calendar, periods as calendar months, and strict parsing and
 * formatting of both. The public contract is rs_calendar.h.
 *
 * Invariants:
 *   - Day numbers come from arithmetic on the civil calendar (400-year eras),
 *     not from libc time functions, so no time zone or locale can change
 *     them; rs_date_to_ymd() inverts rs_date_from_ymd().
 *   - Parsers accept only the exact shapes YYYY-MM-DD, YYYY-MM and RFC 3339,
 *     with years 1900..9999 and days that exist in their month; anything
 *     else is -1, never a guess.
 *   - A timestamp's calendar date is its UTC date: the offset is applied
 *     first and the day is rounded toward negative infinity.
 *   - rs_period_of remembers, per thread, the days of the last period it
 *     found (lo..hi, the month of a day d: d - (day of month - 1) through
 *     the month's last day), and answers a day within them from memory.
 */
#include "rs_calendar.h"

#include <stdio.h>
#include <string.h>

rs_date_t rs_date_from_ymd(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void rs_date_to_ymd(rs_date_t z, int *y, int *m, int *d)
{
    z += 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int yy = yoe + era * 400;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

int rs_days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

static int parse_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_ymd_prefix(const char *s, int *y, int *m, int *d)
{
    /* left to right, each byte checked before the next is read: a string
     * shorter than 10 fails at its NUL (neither a digit nor '-') */
    if (parse_digits(s, 4, y) || s[4] != '-' || parse_digits(s + 5, 2, m) || s[7] != '-' ||
        parse_digits(s + 8, 2, d))
        return -1;
    if (*y < 1900 || *y > 9999 || *m < 1 || *m > 12 || *d < 1 || *d > rs_days_in_month(*y, *m))
        return -1;
    return 0;
}

int rs_date_parse(const char *s, rs_date_t *out)
{
    int y, m, d;
    if (s == NULL || parse_ymd_prefix(s, &y, &m, &d) || s[10] != '\0')
        return -1;
    *out = rs_date_from_ymd(y, m, d);
    return 0;
}

/* The one RFC 3339 parser: UTC milliseconds since the epoch. */
int rs_timestamp_parse_ms(const char *s, int64_t *out)
{
    int y, mo, d, hh, mm, ss, ms = 0;
    if (s == NULL || parse_ymd_prefix(s, &y, &mo, &d))
        return -1;
    const char *p = s + 10;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    /* left to right, as parse_ymd_prefix: a short string fails at its NUL */
    if (parse_digits(p, 2, &hh) || p[2] != ':' || parse_digits(p + 3, 2, &mm) || p[5] != ':' ||
        parse_digits(p + 6, 2, &ss) || hh > 23 || mm > 59 || ss > 60)
        return -1;
    p += 8;
    if (*p == '.') { /* a fraction: milliseconds kept, the rest dropped */
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        int nd = 0;
        for (; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 3)
                ms = ms * 10 + (*p - '0');
        for (; nd < 3; nd++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, sign = (*p == '-') ? -1 : 1;
        if (parse_digits(p + 1, 2, &oh) || p[3] != ':' || parse_digits(p + 4, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        offset_min = sign * (oh * 60 + om);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    int64_t days = rs_date_from_ymd(y, mo, d);
    int64_t secs =
        days * 86400 + (int64_t)hh * 3600 + (int64_t)mm * 60 + ss - (int64_t)offset_min * 60;
    *out = secs * 1000 + ms;
    return 0;
}

int rs_timestamp_parse_date(const char *s, rs_date_t *out)
{
    int64_t ms;
    if (rs_timestamp_parse_ms(s, &ms))
        return -1;
    *out = (rs_date_t)((ms >= 0 ? ms : ms - 86399999) / 86400000);
    return 0;
}

/* Two digits of n (0..99) at p. */
static void put2(char *p, int n)
{
    p[0] = (char)('0' + n / 10);
    p[1] = (char)('0' + n % 10);
}

/* "YYYY-MM" of year 0..9999 and month 1..12 at buf (8 bytes): what
 * snprintf's "%04d-%02d" gives, without its cost (every journal entry
 * formats three dates). */
static void put_year_month(char *buf, int y, int m)
{
    put2(buf, y / 100);
    put2(buf + 2, y % 100);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '\0';
}

char *rs_date_format(rs_date_t day, char *buf, size_t buflen)
{
    int y, m, d;
    rs_date_to_ymd(day, &y, &m, &d);
    if (y >= 0 && y <= 9999 && buflen >= 11) {
        put_year_month(buf, y, m);
        buf[7] = '-';
        put2(buf + 8, d);
        buf[10] = '\0';
        return buf;
    }
    snprintf(buf, buflen, "%04d-%02d-%02d", y, m, d);
    return buf;
}

/* The last period rs_period_of found on this thread, and its days: events
 * come in date order and an entry asks for its period several times, so
 * the next day asked is mostly in it (a comparison instead of the civil
 * calendar's divisions). Per thread: the worker applies on several. */
static _Thread_local struct {
    rs_date_t lo, hi; /* lo > hi: nothing yet */
    rs_period_t p;
} period_memo = {1, 0, 0};

rs_period_t rs_period_of(rs_date_t day)
{
    if (day >= period_memo.lo && day <= period_memo.hi)
        return period_memo.p;
    int y, m, d;
    rs_date_to_ymd(day, &y, &m, &d);
    rs_period_t p = y * 12 + (m - 1);
    if (y >= 0 && y <= 9999) { /* the civil range: its first and last day exact */
        period_memo.lo = day - (d - 1);
        period_memo.hi = period_memo.lo + rs_days_in_month(y, m) - 1;
        period_memo.p = p;
    }
    return p;
}

rs_date_t rs_period_first_day(rs_period_t p)
{
    return rs_date_from_ymd(p / 12, p % 12 + 1, 1);
}

rs_date_t rs_period_last_day(rs_period_t p)
{
    return rs_period_first_day(p + 1) - 1;
}

int rs_period_parse(const char *s, rs_period_t *out)
{
    int y, m;
    if (s == NULL || strlen(s) != 7 || s[4] != '-' || parse_digits(s, 4, &y) ||
        parse_digits(s + 5, 2, &m) || y < 1900 || m < 1 || m > 12)
        return -1;
    *out = y * 12 + (m - 1);
    return 0;
}

char *rs_period_format(rs_period_t p, char *buf, size_t buflen)
{
    if (p >= 0 && p / 12 <= 9999 && buflen >= 8) {
        put_year_month(buf, p / 12, p % 12 + 1);
        return buf;
    }
    snprintf(buf, buflen, "%04d-%02d", p / 12, p % 12 + 1);
    return buf;
}
