/*
 * rs_calendar — calendar dates and accounting periods for the engine.
 *
 * Invariants:
 *   - A date (rs_date_t) is a day number: days since 1970-01-01 in the
 *     proleptic Gregorian calendar. A period (rs_period_t) is a calendar
 *     month numbered year * 12 + (month - 1). RS_DATE_NONE and
 *     RS_PERIOD_NONE mark an absent value and are never a real day or month.
 *   - Parsing is strict (see each function) and never depends on the local
 *     time zone or locale.
 *   - Ownership: nothing here allocates; formatting writes into the caller's
 *     buffer and returns it.
 */
#ifndef RS_CALENDAR_H
#define RS_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

typedef int32_t rs_date_t;   /* days since 1970-01-01 */
typedef int32_t rs_period_t; /* year * 12 + (month - 1) */

#define RS_DATE_NONE INT32_MIN
#define RS_PERIOD_NONE INT32_MIN

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
