/*
 * rs_intake — the intake end: CRM exports (HubSpot, Salesforce) and billing
 * events (Stripe) turned into events of the event contract
 * (shared/reference/events.md). The mappings, with examples, are in
 * docs/intake.md; this header is the API the `crm` and `billing` commands use.
 *
 * Invariants:
 *   - Deterministic: the same input files (and the same --state history) give
 *     the same events, byte for byte, in the same order; event ids come from
 *     the source's ids (plus a content hash where one id can mean several
 *     versions: a deal's amendments), so re-running an intake is idempotent
 *     downstream (same event_id, same content: applied once).
 *   - Money is exact: source decimal strings and integer minor units become
 *     decimal strings in the currency's ISO 4217 exponent through rs_money
 *     (integers only); a value with more minor digits than the currency has
 *     is an error for that record, never rounded.
 *   - Nothing is guessed: a deal missing its term, dates, currency or
 *     customer is reported (deal id and the missing field) and left out; a
 *     billing record whose lines cannot be linked to contract lines is
 *     reported and left out. The rest go on; stats count what was left out.
 *   - Every emitted event is valid for the JSON codec (it is encoded and
 *     decoded again before it is handed out).
 *
 * Ownership: a map and a history are created by their _new/_load function
 * and freed by their _destroy (NULL accepted). Emitted events are borrowed
 * for the duration of the callback. Diagnostics go to the `diag` stream the
 * caller gives (stderr in the commands), one key=value line each.
 */
#ifndef RS_INTAKE_H
#define RS_INTAKE_H

#include <stddef.h>
#include <stdio.h>

#include "rs_event.h"

/* ---- the field mapping (--map FILE, a properties file) ---- */
typedef struct rs_intake_map rs_intake_map_t;

/* The defaults of `system` ("hubspot", "salesforce", "stripe"), then the
 * properties of `path` (NULL: none) over them. Checks recognition methods,
 * SSP decimals and frequencies. 0, or -1 with errstr. */
int rs_intake_map_load(rs_intake_map_t **out, const char *system, const char *path,
                       char *errstr, size_t errlen);
void rs_intake_map_destroy(rs_intake_map_t *m);
/* The value of key, or NULL. */
const char *rs_intake_map_get(const rs_intake_map_t *m, const char *key);

/* ---- output ---- */
/* Called once per event, in output order; non-zero stops the intake. */
typedef int (*rs_intake_emit_fn)(void *ctx, const rs_event_t *ev);

typedef struct rs_intake_stats {
    long records;    /* deals or billing events read */
    long emitted;    /* events handed to emit */
    long booked;     /* new contract.booked */
    long amended;    /* new contract.amended */
    long unchanged;  /* deals seen before with the same lines */
    long not_won;    /* deals skipped: not closed-won */
    long incomplete; /* deals or records left out: a field missing or invalid */
    long ignored;    /* billing events of a type intake does not map */
} rs_intake_stats_t;

/* ---- CRM history (--state FILE): the events emitted before ---- */
typedef struct rs_intake_history rs_intake_history_t;

/* Loads a JSON Lines file of events written by earlier runs; a missing file
 * is an empty history. 0, or -1 with errstr (a line that does not decode). */
int rs_intake_history_load(rs_intake_history_t **out, const char *path, char *errstr,
                           size_t errlen);
void rs_intake_history_destroy(rs_intake_history_t *h);

/* ---- CRM ---- */
/* Reads the export files of `system` ("hubspot" or "salesforce"; JSON pages,
 * or for Salesforce also CSV exports of Opportunity and OpportunityLineItem),
 * and emits, per closed-won deal in the order of the export: the events
 * `history` already holds for it, then a new contract.booked (deal not seen)
 * or contract.amended (lines changed). `fresh` (may be NULL) receives only the
 * new events, to append to the state file. Returns 0 when every deal mapped,
 * 2 when some were reported and left out, 1 on an I/O or format error. */
int rs_intake_crm(const char *system, char *const *files, int nfiles,
                  const rs_intake_map_t *map, const rs_intake_history_t *history,
                  rs_intake_emit_fn emit, void *ctx, rs_intake_emit_fn fresh, void *fresh_ctx,
                  FILE *diag, rs_intake_stats_t *stats);

/* ---- billing ---- */
/* The providers intake knows ("stripe"); NULL-terminated. */
extern const char *const rs_intake_billing_providers[];

/* Reads the event file(s) of `provider` and emits the matching events in
 * the order the provider created them. Returns 0, 2 (some record reported
 * and left out) or 1 (I/O, format or unknown provider). */
int rs_intake_billing(const char *provider, char *const *files, int nfiles,
                      const rs_intake_map_t *map, rs_intake_emit_fn emit, void *ctx, FILE *diag,
                      rs_intake_stats_t *stats);

#endif
