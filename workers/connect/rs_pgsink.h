/*
 * rs_pgsink — the PostgreSQL sink: the worker's output topics (journal,
 * deferred balances, dead letters) into PostgreSQL tables, for a ledger
 * service or a BI tool to query. `revstream sink` is its command line; the
 * table layout is in docs/sink.md and in rs_pgsink_db.c (the one DDL).
 *
 * Invariants:
 *   - Offsets live in the database (rs_sink_offsets), written in the same
 *     transaction as the rows they cover; on start every partition of the
 *     three topics is assigned at the offset the database holds (or the
 *     beginning). So a crash at any point loses nothing and applies nothing
 *     twice: what the database has is exactly what it committed, and the
 *     records after it are read again. Offsets are committed to Kafka too,
 *     after the database commit, for lag monitoring only.
 *   - Journal entries are idempotent by entry_id (INSERT ... ON CONFLICT DO
 *     NOTHING): the worker delivers at least once with deterministic ids. An
 *     entry_id already present with different content is not applied; it is
 *     recorded in rs_sink_conflicts and logged (`sink: conflict`).
 *   - Balance snapshots are upserted by snapshot key (the topic is
 *     compacted; the latest record per key is the balance; a key always lands
 *     on the same partition, read in offset order); a tombstone deletes.
 *   - Dead letters are idempotent by their source (topic, partition, offset),
 *     or for late rejections (no source offset) by (topic, partition, hash of
 *     key and error).
 *   - A record that cannot be decoded is kept in rs_sink_errors with its
 *     bytes; the sink goes on. A database error rolls the batch back and
 *     stops the sink (exit status 2): a restart resumes from the database.
 *
 * Ownership: rs_pgsink_run() owns every client and connection it opens and
 * closes them before returning; options are only read.
 */
#ifndef RS_PGSINK_H
#define RS_PGSINK_H

#include <signal.h>
#include <stddef.h>

#include "rs_config.h"

typedef struct rs_pgsink_opts {
    const rs_config_t *cfg; /* the worker's config: Kafka settings, topic names */
    const char *conninfo;   /* a libpq connection string or postgresql:// URL */
    const char *group_id;   /* for the informational Kafka commits; NULL: <group.id>.sink */
    long batch_records;     /* records per database transaction (>= 1) */
    long batch_ms;          /* ... or this long after the batch's first record */
    int exit_when_idle;     /* exit 0 once every partition is at its end */
    volatile sig_atomic_t *stop; /* set by a signal handler: finish the batch, exit */
} rs_pgsink_opts_t;

typedef struct rs_pgsink_stats {
    long records, batches, entries, duplicates, conflicts, balances, dead_letters, errors;
} rs_pgsink_stats_t;

/* Create the tables, indexes and views if missing (idempotent). 0 or -1
 * with errstr set. */
int rs_pgsink_init_schema(const char *conninfo, char *errstr, size_t errlen);

/* Consume until stopped (or idle with exit_when_idle). Returns 0 (stopped
 * cleanly), 1 (start-up error: Kafka, schema missing, connection) or 2 (a
 * database error while running; nothing of the batch committed). */
int rs_pgsink_run(const rs_pgsink_opts_t *o, rs_pgsink_stats_t *stats, char *errstr,
                  size_t errlen);

#endif
