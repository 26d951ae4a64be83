/*
 * test_intake_common — the exact helpers every intake source relies on
 * (workers/intake/rs_intake_common.c): term arithmetic, ISO 8601 terms,
 * money in a currency's exponent from text, minor units and products, JSON
 * numbers read back as their decimal text, timestamps, the hex FNV-1a 64 of
 * a text.
 *
 * Ownership: every jansson value is released.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "rs_intake_internal.h"

static const char *day(rs_date_t d)
{
    static char buf[16];
    return rs_date_format(d, buf, sizeof buf);
}

Test(intake_common, term_end_is_start_plus_months_minus_one_day)
{
    cr_assert_str_eq(day(rs_intake_term_end(rs_date_from_ymd(2026, 1, 1), 12)), "2026-12-31");
    cr_assert_str_eq(day(rs_intake_term_end(rs_date_from_ymd(2026, 2, 1), 12)), "2027-01-31");
    /* the day is clamped to the month's length first */
    cr_assert_str_eq(day(rs_intake_term_end(rs_date_from_ymd(2026, 1, 31), 1)), "2026-02-27");
    cr_assert_str_eq(day(rs_intake_term_end(rs_date_from_ymd(2027, 11, 15), 3)), "2028-02-14");
}

Test(intake_common, terms_in_months_or_iso_8601)
{
    cr_assert_eq(rs_intake_months("12"), 12);
    cr_assert_eq(rs_intake_months("P12M"), 12);
    cr_assert_eq(rs_intake_months("P1Y"), 12);
    cr_assert_eq(rs_intake_months("P2Y6M"), 30);
    static const char *const bad[] = {"",      "0",    "-3",  "P",   "P3W",
                                      "P1Y2D", "12.5", "P12", "1201"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(rs_intake_months(bad[i]), -1, "\"%s\"", bad[i]);
}

Test(intake_common, money_is_exact_in_the_currency_exponent)
{
    char out[64], why[256];
    cr_assert_eq(rs_intake_money("275000", "USD", out, sizeof out, why, sizeof why), 0);
    cr_assert_str_eq(out, "275000.00");
    cr_assert_eq(rs_intake_money("1440000.000", "JPY", out, sizeof out, why, sizeof why), 0);
    cr_assert_str_eq(out, "1440000");
    cr_assert_eq(rs_intake_money("0.125", "KWD", out, sizeof out, why, sizeof why), 0);
    cr_assert_str_eq(out, "0.125");
    cr_assert_eq(rs_intake_money("100.125", "USD", out, sizeof out, why, sizeof why), -1);
    cr_assert_not_null(strstr(why, "has 3 minor digits, the currency allows 2"), "%s", why);
    cr_assert_eq(rs_intake_money("1,000", "USD", out, sizeof out, why, sizeof why), -1);
    cr_assert_eq(rs_intake_money("1", "XXQ", out, sizeof out, why, sizeof why), -1);
    cr_assert_str_eq(why, "unknown currency XXQ");

    /* Stripe minor units: ISO exponent, ISK from Stripe's two decimals */
    cr_assert_eq(rs_intake_minor(1200000, 2, "USD", out, sizeof out, why, sizeof why), 0);
    cr_assert_str_eq(out, "12000.00");
    cr_assert_eq(rs_intake_minor(500, 0, "JPY", out, sizeof out, why, sizeof why), 0);
    cr_assert_str_eq(out, "500");
    cr_assert_eq(rs_intake_minor(990000, 2, "ISK", out, sizeof out, why, sizeof why), 0);
    cr_assert_str_eq(out, "9900");
    cr_assert_eq(rs_intake_minor(990050, 2, "ISK", out, sizeof out, why, sizeof why), -1);

    /* unit SSP x quantity */
    cr_assert_eq(rs_intake_money_mul("1250.00", "2", "EUR", out, sizeof out, why, sizeof why),
                 0);
    cr_assert_str_eq(out, "2500.00");
    cr_assert_eq(rs_intake_money_mul("10.005", "2", "USD", out, sizeof out, why, sizeof why),
                 0);
    cr_assert_str_eq(out, "20.01");
    cr_assert_eq(rs_intake_money_mul("10.005", "3", "USD", out, sizeof out, why, sizeof why),
                 -1);
}

Test(intake_common, json_numbers_read_back_as_their_decimal_text)
{
    json_t *o = json_loads("{\"a\":9999.99,\"b\":0.0015,\"c\":12.0,\"d\":275000,\"e\":true,"
                           "\"f\":12345678901234.56,\"g\":\"\",\"h\":null,\"i\":0.1}",
                           0, NULL);
    char buf[64];
    cr_assert_not_null(o);
    cr_assert_str_eq(rs_intake_field(o, "a", buf, sizeof buf), "9999.99");
    cr_assert_str_eq(rs_intake_field(o, "b", buf, sizeof buf), "0.0015");
    cr_assert_str_eq(rs_intake_field(o, "c", buf, sizeof buf), "12");
    cr_assert_str_eq(rs_intake_field(o, "d", buf, sizeof buf), "275000");
    cr_assert_str_eq(rs_intake_field(o, "e", buf, sizeof buf), "true");
    cr_assert_str_eq(rs_intake_field(o, "i", buf, sizeof buf), "0.1");
    /* 16 significant digits: no exact decimal is known, and none is made up */
    cr_assert_str_eq(rs_intake_field(o, "f", buf, sizeof buf),
                     "(a JSON number of more than 15 digits)");
    cr_assert_null(rs_intake_field(o, "g", buf, sizeof buf));
    cr_assert_null(rs_intake_field(o, "h", buf, sizeof buf));
    cr_assert_null(rs_intake_field(o, "zz", buf, sizeof buf));
    char which[32];
    cr_assert_str_eq(rs_intake_field_any(o, "zz,g,b,a", buf, sizeof buf, which, sizeof which),
                     "0.0015");
    cr_assert_str_eq(which, "b");
    json_decref(o);
}

Test(intake_common, timestamps_and_dates)
{
    char ts[64];
    rs_date_t d;
    cr_assert_eq(rs_intake_timestamp("2026-01-15", ts, sizeof ts), 0);
    cr_assert_str_eq(ts, "2026-01-15T00:00:00Z");
    cr_assert_eq(rs_intake_timestamp("2026-01-15T18:02:11.000+0000", ts, sizeof ts), 0);
    cr_assert_str_eq(ts, "2026-01-15T18:02:11.000+00:00");
    cr_assert_eq(rs_intake_date("2026-03-31T23:30:00-05:00", &d), 0);
    cr_assert_str_eq(day(d), "2026-04-01");
    cr_assert_eq(rs_intake_date("31/03/2026", &d), -1);
    rs_intake_unix_rfc3339(1767632400, ts, sizeof ts);
    cr_assert_str_eq(ts, "2026-01-05T17:00:00Z");
}

/* 16 hex digits of FNV-1a 64 (ids derived from a record's text keep their
 * values). */
Test(intake_common, hash_hex_is_fnv1a64)
{
    char h[17];
    rs_intake_hash_hex("", 0, h);
    cr_assert_str_eq(h, "cbf29ce484222325");
    rs_intake_hash_hex("a", 1, h);
    cr_assert_str_eq(h, "af63dc4c8601ec8c");
    rs_intake_hash_hex("foobar", 6, h);
    cr_assert_str_eq(h, "85944171f73967e8");
}
