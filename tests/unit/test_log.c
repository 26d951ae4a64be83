/*
 * test_log.c — rs_log's line formats: the JSON fields a message's
 * "event key=value" phrasing becomes, levels, escaping, the text format,
 * and that nothing of a message is lost.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "rs_log.h"

static json_t *json_line(rs_log_level_t level, const char *component, const char *msg)
{
    char line[RS_LOG_LINE_MAX];
    json_error_t jerr;

    rs_log_format_line(line, sizeof line, RS_LOG_JSON, level, component, msg);
    cr_assert_null(strchr(line, '\n'), "%s", line);
    json_t *o = json_loads(line, 0, &jerr);
    cr_assert_not_null(o, "not JSON (%s): %s", jerr.text, line);
    return o;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    cr_assert_not_null(s, "no string field %s", k);
    return s;
}

Test(log, batch_line_becomes_typed_fields)
{
    json_t *o = json_line(RS_LOG_LEVEL_AUTO, "worker",
                          "batch records=12 partitions=4 ms=0 name=\"a \\\"b\\\" \\\\c\" "
                          "rate=1.5 big=12345678901234567890 neg=-3 lead=007");
    const char *ts = str(o, "ts");
    /* 2026-12-06T17:35:28.123Z */
    cr_assert_eq(strlen(ts), 24, "%s", ts);
    cr_assert(ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "%s", ts);
    cr_assert_str_eq(str(o, "level"), "info");
    cr_assert_str_eq(str(o, "component"), "worker");
    cr_assert_str_eq(str(o, "event"), "batch");
    cr_assert_eq(json_integer_value(json_object_get(o, "records")), 12);
    cr_assert_eq(json_integer_value(json_object_get(o, "ms")), 0);
    cr_assert_eq(json_integer_value(json_object_get(o, "neg")), -3);
    cr_assert_str_eq(str(o, "name"), "a \"b\" \\c");
    cr_assert_str_eq(str(o, "rate"), "1.5");
    cr_assert_str_eq(str(o, "big"), "12345678901234567890"); /* too long for a number */
    cr_assert_str_eq(str(o, "lead"), "007");
    cr_assert_null(json_object_get(o, "msg"));
    json_decref(o);
}

Test(log, level_words_and_error_pairs)
{
    json_t *o = json_line(RS_LOG_LEVEL_AUTO, "worker", "warning stalled ms=40 action=hold");
    cr_assert_str_eq(str(o, "level"), "warn");
    cr_assert_str_eq(str(o, "event"), "stalled");
    json_decref(o);
    o = json_line(RS_LOG_LEVEL_AUTO, "worker", "bug illegal_transition from=a to=b");
    cr_assert_str_eq(str(o, "level"), "error");
    cr_assert_str_eq(str(o, "event"), "illegal_transition");
    json_decref(o);
    o = json_line(RS_LOG_LEVEL_AUTO, "worker", "error=run msg=\"state: commit: disk full\"");
    cr_assert_str_eq(str(o, "level"), "error");
    cr_assert_str_eq(str(o, "event"), "error");
    cr_assert_str_eq(str(o, "error"), "run");
    cr_assert_str_eq(str(o, "msg"), "state: commit: disk full");
    json_decref(o);
    /* an explicit level wins; the state store's "event=" style */
    o = json_line(RS_LOG_DEBUG, "state", "event=checkpoint_created dir=/tmp/x");
    cr_assert_str_eq(str(o, "level"), "debug");
    cr_assert_str_eq(str(o, "event"), "checkpoint_created");
    cr_assert_str_eq(str(o, "dir"), "/tmp/x");
    json_decref(o);
}

Test(log, free_text_is_kept_in_msg_and_fixed_names_not_overwritten)
{
    json_t *o = json_line(RS_LOG_INFO, "worker",
                          "topics contracts has 4 partitions, invoices has 4 partitions");
    cr_assert_str_eq(str(o, "event"), "topics");
    cr_assert_str_eq(str(o, "msg"), "contracts has 4 partitions, invoices has 4 partitions");
    json_decref(o);
    o = json_line(RS_LOG_INFO, "rdkafka", "log level=3 ts=x component=y event=z msg=\"a\tb\"");
    cr_assert_str_eq(str(o, "component"), "rdkafka");
    cr_assert_str_eq(str(o, "event"), "log");
    cr_assert_eq(json_integer_value(json_object_get(o, "level_")), 3);
    cr_assert_str_eq(str(o, "ts_"), "x");
    cr_assert_str_eq(str(o, "component_"), "y");
    cr_assert_str_eq(str(o, "event_"), "z");
    cr_assert_str_eq(str(o, "msg"), "a\tb");
    cr_assert_str_eq(str(o, "level"), "info");
    json_decref(o);
    /* control bytes are escaped; an unterminated quote goes to msg whole */
    o = json_line(RS_LOG_INFO, "worker", "x a=1 b=\"open \x01 end");
    cr_assert_eq(json_integer_value(json_object_get(o, "a")), 1);
    cr_assert_str_eq(str(o, "msg"), "b=\"open \x01 end");
    json_decref(o);
}

Test(log, text_format_is_the_old_line)
{
    char line[256];
    rs_log_format_line(line, sizeof line, RS_LOG_TEXT, RS_LOG_WARN, "worker",
                       "warning stalled ms=4");
    cr_assert_str_eq(line, "worker: warning stalled ms=4");
}

Test(log, formats_parse)
{
    rs_log_format_t f;
    cr_assert_eq(rs_log_parse_format("json", &f), 0);
    cr_assert_eq(f, RS_LOG_JSON);
    cr_assert_eq(rs_log_parse_format("text", &f), 0);
    cr_assert_eq(f, RS_LOG_TEXT);
    cr_assert_eq(rs_log_parse_format("auto", &f), 0);
    cr_assert_eq(f, RS_LOG_AUTO);
    cr_assert_eq(rs_log_parse_format("yaml", &f), -1);
}

Test(log, long_lines_are_cut_not_overrun)
{
    char msg[20000], line[300];
    memset(msg, 'x', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    memcpy(msg, "e k=", 4);
    rs_log_format_line(line, sizeof line, RS_LOG_JSON, RS_LOG_INFO, "worker", msg);
    cr_assert_eq(strlen(line), sizeof line - 1);
}
