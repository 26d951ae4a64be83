/*
 * rs_intake_internal — what the intake sources share (internal to
 * workers/intake): reading JSON files, reading a record's field as exact
 * text, money in a currency's exponent, timestamps, ids, the mapping's
 * lookups and the checked hand-off of an event.
 *
 * Ownership: functions writing text take a caller buffer; json_t results
 * are new references the caller decrefs.
 */
#ifndef RS_INTAKE_INTERNAL_H
#define RS_INTAKE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "rs_intake.h"

/* Whole file as JSON (NULL with errstr: unreadable or invalid). */
json_t *rs_intake_load_json(const char *path, char *errstr, size_t errlen);
/* Whole file as text (NULL on error); *len set. Caller frees. */
char *rs_intake_slurp(const char *path, size_t *len);

/* Field `name` of object rec as text in buf: a string as is, an integer in
 * decimal, a boolean as true/false, a JSON real as the shortest decimal
 * that reads back as the same double (exact for the decimals of up to 15
 * significant digits a source writes; a real needing more becomes the text
 * "(a JSON number of more than 15 digits)", which no decimal parse accepts,
 * so it is reported as invalid, never rounded). NULL when absent, null or
 * empty. */
const char *rs_intake_field(json_t *rec, const char *name, char *buf, size_t n);
/* The first present of a comma-separated list of field names (*which set to
 * the one found, in a static-free copy: the caller's buffer `which`). */
const char *rs_intake_field_any(json_t *rec, const char *names, char *buf, size_t n,
                                char *which, size_t wn);

/* Decimal text -> the currency's canonical decimal text ("275000" USD ->
 * "275000.00"); -1 with why (too many minor digits, bad syntax, unknown
 * currency). */
int rs_intake_money(const char *text, const char *currency, char *out, size_t n, char *why,
                    size_t wn);
/* Integer minor units of a source whose currency has src_exp digits ->
 * canonical decimal text in the ISO exponent; -1 with why when not exact. */
int rs_intake_minor(int64_t minor, int src_exp, const char *currency, char *out, size_t n,
                    char *why, size_t wn);
/* Multiply two decimal texts exactly into the currency's canonical text. */
int rs_intake_money_mul(const char *a, const char *b, const char *currency, char *out, size_t n,
                        char *why, size_t wn);

/* Unix seconds -> "YYYY-MM-DDTHH:MM:SSZ". */
void rs_intake_unix_rfc3339(int64_t t, char *out, size_t n);
/* "YYYY-MM-DD" or an RFC 3339 timestamp -> its (UTC) date; -1 if neither. */
int rs_intake_date(const char *s, rs_date_t *out);
/* "YYYY-MM-DD" -> "YYYY-MM-DDT00:00:00Z"; an RFC 3339 timestamp as is;
 * HubSpot/Salesforce "...T..:..:..+0000" / ".000+0000" normalised. -1 if
 * neither. */
int rs_intake_timestamp(const char *s, char *out, size_t n);
/* The last day of a term of `months` months from start (start + months, the
 * day clamped to the month's length, minus one day). */
rs_date_t rs_intake_term_end(rs_date_t start, int months);
/* "12", "P12M", "P1Y", "P2Y6M" -> months; -1 if not that. */
int rs_intake_months(const char *s);

/* 16 hex digits of FNV-1a 64 over text. */
void rs_intake_hash_hex(const char *text, size_t len, char out[17]);
/* Copies s into a fixed id field; -1 if it does not fit or is empty. */
int rs_intake_copy_id(char *dst, size_t cap, const char *s);

/* Encodes ev, decodes the text again (the codec's checks), and hands the
 * decoded event to emit. 0; 1 if the event does not decode (reported on
 * diag with `what`); -1 if emit stopped. */
int rs_intake_emit_checked(const rs_event_t *ev, rs_intake_emit_fn emit, void *ctx, FILE *diag,
                           const char *what);

/* The map's raw properties (rs_intake_map.c), for lookups "prefix.key". */
const char *rs_intake_map_get2(const rs_intake_map_t *m, const char *prefix, const char *key);

/* ---- CRM sources: export files -> normalised deals ----
 * Each source appends to `deals` (a JSON array) one object per deal, in
 * export order:
 *   {"id": "<CRM id>", "won": true|false, "updated_at": "<RFC 3339>"|null,
 *    "customer_id": "<from associations>"|null, "fields": {<deal fields>},
 *    "lines": [{"id": "<line item id>", "fields": {<line fields>}}, ...]}
 * A line the deal names but the files do not hold has "missing": true.
 * Field values are as the source wrote them (strings, or JSON numbers and
 * booleans for Salesforce JSON). Returns 0, or 1 with the reason on diag. */
int rs_intake_hubspot_deals(char *const *files, int nfiles, const rs_intake_map_t *map,
                            json_t *deals, FILE *diag);
int rs_intake_salesforce_deals(char *const *files, int nfiles, const rs_intake_map_t *map,
                               json_t *deals, FILE *diag);

#endif
