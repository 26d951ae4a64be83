/*
 * rs_pgsink_internal.h — what the sink's files share (private to rs_pgsink):
 * the database side. Records are decoded with rs_codec_outputs.h.
 */
#ifndef RS_PGSINK_INTERNAL_H
#define RS_PGSINK_INTERNAL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "rs_codec_outputs.h"
#include "rs_engine.h"

/* ---- the database (rs_pgsink_db.c) ---- */
typedef struct pgs_db {
    PGconn *conn;
} pgs_db_t;

/* Connect; 0 or -1 with errstr (the password of a URL never in it). */
int pgs_db_open(pgs_db_t *db, const char *conninfo, char *errstr, size_t errlen);
void pgs_db_close(pgs_db_t *db);
/* Prepare the statements; fails when the tables are missing (run --init). */
int pgs_db_prepare(pgs_db_t *db, char *errstr, size_t errlen);
int pgs_db_exec(pgs_db_t *db, const char *sql, char *errstr, size_t errlen);
int pgs_db_create_schema(pgs_db_t *db, char *errstr, size_t errlen);
/* The stored next offset of (topic, partition), or -1 when none; -2 on error. */
int64_t pgs_db_offset(pgs_db_t *db, const char *topic, int32_t partition, char *errstr,
                      size_t errlen);
int pgs_db_set_offset(pgs_db_t *db, const char *topic, int32_t partition, int64_t next,
                      char *errstr, size_t errlen);

/* Outcome of an entry insert. */
enum { PGS_INSERTED = 0, PGS_DUPLICATE = 1, PGS_CONFLICT = 2, PGS_DBERROR = -1 };
int pgs_db_entry(pgs_db_t *db, const rs_entry_t *e, const char *topic, int32_t partition,
                 int64_t offset, char *errstr, size_t errlen);
int pgs_db_balance(pgs_db_t *db, const rs_output_balance_t *b, int32_t partition,
                   int64_t offset, char *errstr, size_t errlen);
int pgs_db_balance_delete(pgs_db_t *db, const char *key, size_t klen, char *errstr,
                          size_t errlen);
int pgs_db_deadletter(pgs_db_t *db, const rs_output_deadletter_t *x, int32_t partition,
                      int64_t offset, char *errstr, size_t errlen);
int pgs_db_error_record(pgs_db_t *db, const char *topic, int32_t partition, int64_t offset,
                        const char *error, const void *value, size_t len, char *errstr,
                        size_t errlen);

#endif
