/*
 * rs_pgsink_db.c — the sink's database side: the one DDL (the documented
 * table layout, docs/sink.md), the prepared statements, and the writes of
 * one record each.
 *
 * Invariants:
 *   - Money is bigint minor units with the row's exponent (never float);
 *     the *_amounts views show decimals as numeric for BI tools.
 *   - Every write runs inside the caller's transaction (rs_pgsink.c opens
 *     and commits it together with the offsets).
 *   - An entry insert is ON CONFLICT (entry_id) DO NOTHING; when nothing was
 *     inserted the stored content is compared (jsonb equality) with the
 *     record's: equal is a duplicate, different is a conflict, recorded in
 *     rs_sink_conflicts and never applied.
 *   - Parameters are always passed out of line (PQexecPrepared), never
 *     spliced into SQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_calendar.h"
#include "rs_codec.h"
#include "rs_hash.h"
#include "rs_pgsink_internal.h"

#define SCHEMA_VERSION "1"

static const char *const ddl =
    "CREATE TABLE IF NOT EXISTS rs_sink_meta (key text PRIMARY KEY, value text NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS rs_journal_entries (\n"
    "  entry_id text PRIMARY KEY,\n"
    "  contract_id text NOT NULL, seq bigint NOT NULL, customer_id text NOT NULL,\n"
    "  line_id text NOT NULL, document_id text NOT NULL, product text NOT NULL,\n"
    "  kind text NOT NULL, rule text NOT NULL,\n"
    "  posted_on date NOT NULL, period text NOT NULL, service_period text NOT NULL,\n"
    "  currency text NOT NULL, exponent int NOT NULL,\n"
    "  billed bigint NOT NULL, recognized bigint NOT NULL, received bigint NOT NULL,\n"
    "  source_event_ids text[] NOT NULL, source_count int NOT NULL,\n"
    "  content jsonb NOT NULL,\n"
    "  kafka_partition int NOT NULL, kafka_offset bigint NOT NULL,\n"
    "  inserted_at timestamptz NOT NULL DEFAULT now(),\n"
    "  UNIQUE (contract_id, seq));\n"
    "CREATE INDEX IF NOT EXISTS rs_journal_entries_period ON rs_journal_entries (period);\n"
    "CREATE INDEX IF NOT EXISTS rs_journal_entries_customer ON rs_journal_entries "
    "(customer_id);\n"
    "CREATE TABLE IF NOT EXISTS rs_journal_lines (\n"
    "  entry_id text NOT NULL REFERENCES rs_journal_entries ON DELETE CASCADE,\n"
    "  line_no int NOT NULL, account text NOT NULL,\n"
    "  debit bigint NOT NULL CHECK (debit >= 0), credit bigint NOT NULL CHECK (credit >= 0),\n"
    "  PRIMARY KEY (entry_id, line_no));\n"
    "CREATE INDEX IF NOT EXISTS rs_journal_lines_account ON rs_journal_lines (account);\n"
    "CREATE TABLE IF NOT EXISTS rs_deferred_balances (\n"
    "  snapshot_key text PRIMARY KEY,\n"
    "  contract_id text NOT NULL, customer_id text NOT NULL, scope text NOT NULL,\n"
    "  line_id text, invoice_id text, currency text NOT NULL, exponent int NOT NULL,\n"
    "  billed bigint NOT NULL, recognized bigint NOT NULL, deferred bigint NOT NULL,\n"
    "  unbilled bigint NOT NULL, received bigint NOT NULL, as_of_period text NOT NULL,\n"
    "  kafka_partition int NOT NULL, kafka_offset bigint NOT NULL,\n"
    "  updated_at timestamptz NOT NULL DEFAULT now());\n"
    "CREATE INDEX IF NOT EXISTS rs_deferred_balances_contract ON rs_deferred_balances "
    "(contract_id);\n"
    "CREATE TABLE IF NOT EXISTS rs_dead_letters (\n"
    "  dedup_key text PRIMARY KEY,\n"
    "  source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint,\n"
    "  error text NOT NULL, record_key bytea, record_value bytea,\n"
    "  source_timestamp timestamptz,\n"
    "  kafka_partition int NOT NULL, kafka_offset bigint NOT NULL,\n"
    "  inserted_at timestamptz NOT NULL DEFAULT now());\n"
    "CREATE TABLE IF NOT EXISTS rs_sink_conflicts (\n"
    "  id bigserial PRIMARY KEY, entry_id text NOT NULL, stored jsonb NOT NULL,\n"
    "  received jsonb NOT NULL, kafka_partition int NOT NULL, kafka_offset bigint NOT NULL,\n"
    "  seen_at timestamptz NOT NULL DEFAULT now(), UNIQUE (kafka_partition, kafka_offset));\n"
    "CREATE TABLE IF NOT EXISTS rs_sink_errors (\n"
    "  kafka_topic text NOT NULL, kafka_partition int NOT NULL, kafka_offset bigint NOT NULL,\n"
    "  error text NOT NULL, record_value bytea, seen_at timestamptz NOT NULL DEFAULT now(),\n"
    "  PRIMARY KEY (kafka_topic, kafka_partition, kafka_offset));\n"
    "CREATE TABLE IF NOT EXISTS rs_sink_offsets (\n"
    "  topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL,\n"
    "  updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, partition));\n"
    "CREATE OR REPLACE VIEW rs_journal_line_amounts AS\n"
    "  SELECT e.entry_id, e.period, e.posted_on, e.contract_id, e.customer_id, e.line_id,\n"
    "         e.kind, l.line_no, l.account, e.currency,\n"
    "         l.debit::numeric / 10 ^ e.exponent AS debit,\n"
    "         l.credit::numeric / 10 ^ e.exponent AS credit\n"
    "  FROM rs_journal_entries e JOIN rs_journal_lines l USING (entry_id);\n"
    "CREATE OR REPLACE VIEW rs_deferred_balance_amounts AS\n"
    "  SELECT snapshot_key, contract_id, customer_id, scope, line_id, currency, as_of_period,\n"
    "         billed::numeric / 10 ^ exponent AS billed,\n"
    "         recognized::numeric / 10 ^ exponent AS recognized,\n"
    "         deferred::numeric / 10 ^ exponent AS deferred,\n"
    "         unbilled::numeric / 10 ^ exponent AS unbilled,\n"
    "         received::numeric / 10 ^ exponent AS received\n"
    "  FROM rs_deferred_balances;\n"
    "INSERT INTO rs_sink_meta VALUES ('schema_version', '" SCHEMA_VERSION "')\n"
    "  ON CONFLICT (key) DO NOTHING;\n";

typedef struct stmt {
    const char *name, *sql;
    int nparams;
} stmt_t;

static const stmt_t stmts[] = {
    /* the entry and its lines in one round trip; lines only when the entry
     * was new. Returns one row: entries inserted (0 or 1). */
    {"rs_entry",
     "WITH ins AS (INSERT INTO rs_journal_entries (entry_id, contract_id, seq, customer_id, "
     "line_id, document_id, product, kind, rule, posted_on, period, service_period, currency, "
     "exponent, billed, recognized, received, source_event_ids, source_count, content, "
     "kafka_partition, kafka_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::date, "
     "$11, $12, $13, $14, $15, $16, $17, ARRAY(SELECT jsonb_array_elements_text($18::jsonb)), "
     "$19, $20::jsonb, $21, $22) ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id), "
     "lines AS (INSERT INTO rs_journal_lines (entry_id, line_no, account, debit, credit) "
     "SELECT ins.entry_id, l.line_no, l.account, l.debit, l.credit FROM ins, "
     "jsonb_to_recordset($23::jsonb) AS l(line_no int, account text, debit bigint, "
     "credit bigint) RETURNING 1) "
     "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM lines)",
     23},
    {"rs_entry_same",
     "SELECT content = $2::jsonb, content::text FROM rs_journal_entries "
     "WHERE entry_id = $1",
     2},
    {"rs_conflict",
     "INSERT INTO rs_sink_conflicts (entry_id, stored, received, kafka_partition, "
     "kafka_offset) VALUES ($1, $2::jsonb, $3::jsonb, $4, $5) "
     "ON CONFLICT (kafka_partition, kafka_offset) DO NOTHING",
     5},
    {"rs_balance",
     "INSERT INTO rs_deferred_balances (snapshot_key, contract_id, customer_id, scope, "
     "line_id, "
     "invoice_id, currency, exponent, billed, recognized, deferred, unbilled, received, "
     "as_of_period, kafka_partition, kafka_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
     "$10, $11, $12, $13, $14, $15, $16) ON CONFLICT (snapshot_key) DO UPDATE SET "
     "contract_id = EXCLUDED.contract_id, customer_id = EXCLUDED.customer_id, "
     "scope = EXCLUDED.scope, line_id = EXCLUDED.line_id, invoice_id = EXCLUDED.invoice_id, "
     "currency = EXCLUDED.currency, exponent = EXCLUDED.exponent, billed = EXCLUDED.billed, "
     "recognized = EXCLUDED.recognized, deferred = EXCLUDED.deferred, "
     "unbilled = EXCLUDED.unbilled, received = EXCLUDED.received, "
     "as_of_period = EXCLUDED.as_of_period, kafka_partition = EXCLUDED.kafka_partition, "
     "kafka_offset = EXCLUDED.kafka_offset, updated_at = now()",
     16},
    {"rs_balance_delete", "DELETE FROM rs_deferred_balances WHERE snapshot_key = $1", 1},
    {"rs_dead_letter",
     "INSERT INTO rs_dead_letters (dedup_key, source_topic, source_partition, source_offset, "
     "error, record_key, record_value, source_timestamp, kafka_partition, kafka_offset) "
     "VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8::bigint / 1000.0), $9, $10) "
     "ON CONFLICT (dedup_key) DO NOTHING",
     10},
    {"rs_error",
     "INSERT INTO rs_sink_errors (kafka_topic, kafka_partition, kafka_offset, error, "
     "record_value) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
     5},
    {"rs_offset_get",
     "SELECT next_offset FROM rs_sink_offsets WHERE topic = $1 AND partition = $2", 2},
    {"rs_offset_set",
     "INSERT INTO rs_sink_offsets (topic, partition, next_offset) VALUES ($1, $2, $3) "
     "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, "
     "updated_at = now()",
     3},
};

/* The server's message, one line. */
static void pg_err(PGconn *c, const char *what, char *errstr, size_t errlen)
{
    char msg[400];
    snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "no connection");
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = p[1] ? ' ' : '\0';
    /* a long server message is cut to errlen (the return value says so) */
    if (snprintf(errstr, errlen, "%s: %s", what, msg) < 0 && errlen > 0)
        errstr[0] = '\0';
}

int pgs_db_open(pgs_db_t *db, const char *conninfo, char *errstr, size_t errlen)
{
    db->conn = PQconnectdb(conninfo);
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        /* libpq's message names host and socket, never the password */
        pg_err(db->conn, "connect", errstr, errlen);
        pgs_db_close(db);
        return -1;
    }
    PGresult *r = PQexec(db->conn, "SET client_min_messages = warning");
    PQclear(r);
    return 0;
}

void pgs_db_close(pgs_db_t *db)
{
    if (db->conn)
        PQfinish(db->conn);
    db->conn = NULL;
}

int pgs_db_exec(pgs_db_t *db, const char *sql, char *errstr, size_t errlen)
{
    PGresult *r = PQexec(db->conn, sql);
    int ok =
        r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        pg_err(db->conn, sql[0] == 'C' && sql[1] == 'O' ? "commit" : "statement", errstr,
               errlen);
    PQclear(r);
    return ok ? 0 : -1;
}

int pgs_db_create_schema(pgs_db_t *db, char *errstr, size_t errlen)
{
    if (pgs_db_exec(db, "BEGIN", errstr, errlen))
        return -1;
    if (pgs_db_exec(db, ddl, errstr, errlen)) {
        char ignore[64];
        pgs_db_exec(db, "ROLLBACK", ignore, sizeof ignore);
        return -1;
    }
    return pgs_db_exec(db, "COMMIT", errstr, errlen);
}

int pgs_db_prepare(pgs_db_t *db, char *errstr, size_t errlen)
{
    for (size_t i = 0; i < sizeof stmts / sizeof *stmts; i++) {
        PGresult *r = PQprepare(db->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            char why[400];
            pg_err(db->conn, stmts[i].name, why, sizeof why);
            if (snprintf(errstr, errlen, "%s (did `revstream sink --init` create the tables?)",
                         why) < 0 &&
                errlen > 0)
                errstr[0] = '\0';
            return -1;
        }
    }
    return 0;
}

/* Run a prepared statement; text parameters except those flagged binary
 * (lens[i] then gives the length). Returns the result (caller PQclear()s) or
 * NULL with errstr set. */
static PGresult *run(pgs_db_t *db, const char *name, int n, const char *const *vals,
                     const int *lens, const int *binary, char *errstr, size_t errlen)
{
    PGresult *r = PQexecPrepared(db->conn, name, n, vals, lens, binary, 0);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        pg_err(db->conn, name, errstr, errlen);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Run and discard; the number of rows affected, or -1. */
static long run0(pgs_db_t *db, const char *name, int n, const char *const *vals,
                 const int *lens, const int *binary, char *errstr, size_t errlen)
{
    PGresult *r = run(db, name, n, vals, lens, binary, errstr, errlen);
    if (r == NULL)
        return -1;
    long rows = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rows;
}

int64_t pgs_db_offset(pgs_db_t *db, const char *topic, int32_t partition, char *errstr,
                      size_t errlen)
{
    char p[16];
    snprintf(p, sizeof p, "%d", (int)partition);
    const char *v[2] = {topic, p};
    PGresult *r = run(db, "rs_offset_get", 2, v, NULL, NULL, errstr, errlen);
    if (r == NULL)
        return -2;
    int64_t off = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return off;
}

int pgs_db_set_offset(pgs_db_t *db, const char *topic, int32_t partition, int64_t next,
                      char *errstr, size_t errlen)
{
    char p[16], o[24];
    snprintf(p, sizeof p, "%d", (int)partition);
    snprintf(o, sizeof o, "%" PRId64, next);
    const char *v[3] = {topic, p, o};
    return run0(db, "rs_offset_set", 3, v, NULL, NULL, errstr, errlen) < 0 ? -1 : 0;
}

/* The entry's source ids as a JSON array of strings (ids carry no quotes or
 * backslashes the codec would have let through unescaped: escape anyway). */
static char *sources_json(const rs_entry_t *e)
{
    size_t cap = 4 + (size_t)e->n_sources * (RS_ID_MAX * 2 + 4);
    char *s = malloc(cap), *p = s;
    if (s == NULL)
        return NULL;
    *p++ = '[';
    for (int i = 0; i < e->n_sources; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        for (const char *q = e->sources[i]; *q; q++) {
            if (*q == '"' || *q == '\\')
                *p++ = '\\';
            if ((unsigned char)*q >= 0x20)
                *p++ = *q;
        }
        *p++ = '"';
    }
    *p++ = ']';
    *p = '\0';
    return s;
}

/* The posting lines as a JSON array of {line_no, account, debit, credit}
 * (role names need no escaping). NULL on ENOMEM. */
static char *lines_json(const rs_entry_t *e)
{
    size_t cap = 4 + (size_t)e->n_postings * 128;
    char *s = malloc(cap);
    size_t n = 0;
    if (s == NULL)
        return NULL;
    s[n++] = '[';
    for (int i = 0; i < e->n_postings; i++)
        n += (size_t)snprintf(s + n, cap - n,
                              "%s{\"line_no\":%d,\"account\":\"%s\",\"debit\":%" PRId64
                              ",\"credit\":%" PRId64 "}",
                              i ? "," : "", i + 1, rs_account_name(e->postings[i].account),
                              (int64_t)e->postings[i].debit, (int64_t)e->postings[i].credit);
    snprintf(s + n, cap - n, "]");
    return s;
}

int pgs_db_entry(pgs_db_t *db, const rs_entry_t *e, const char *topic, int32_t partition,
                 int64_t offset, char *errstr, size_t errlen)
{
    char seq[24], posted[16], per[16], sper[16], ex[16], bil[24], rec[24], rcv[24], nsrc[16],
        part[16], off[24];
    char *content = rs_codec_entry_json(e), *src = sources_json(e), *lines = lines_json(e);
    int rc = PGS_DBERROR;
    (void)topic;
    if (content == NULL || src == NULL || lines == NULL) {
        snprintf(errstr, errlen, "out of memory");
        goto out;
    }
    snprintf(seq, sizeof seq, "%" PRIu64, e->seq);
    rs_date_format(e->posted_on, posted, sizeof posted);
    rs_period_format(e->period, per, sizeof per);
    rs_period_format(e->service_period, sper, sizeof sper);
    snprintf(ex, sizeof ex, "%d", e->exponent);
    snprintf(bil, sizeof bil, "%" PRId64, (int64_t)e->billed);
    snprintf(rec, sizeof rec, "%" PRId64, (int64_t)e->recognized);
    snprintf(rcv, sizeof rcv, "%" PRId64, (int64_t)e->received);
    snprintf(nsrc, sizeof nsrc, "%u", (unsigned)e->source_count);
    snprintf(part, sizeof part, "%d", (int)partition);
    snprintf(off, sizeof off, "%" PRId64, offset);
    const char *v[23] = {e->entry_id, e->contract_id,
                         seq,         e->customer_id,
                         e->line_id,  e->document_id,
                         e->product,  rs_entry_kind_name(e->kind),
                         e->rule,     posted,
                         per,         sper,
                         e->currency, ex,
                         bil,         rec,
                         rcv,         src,
                         nsrc,        content,
                         part,        off,
                         lines};
    PGresult *ins = run(db, "rs_entry", 23, v, NULL, NULL, errstr, errlen);
    if (ins == NULL)
        goto out;
    int inserted = PQntuples(ins) == 1 && strcmp(PQgetvalue(ins, 0, 0), "1") == 0;
    PQclear(ins);
    if (inserted) {
        rc = PGS_INSERTED;
        goto out;
    }
    const char *sv[2] = {e->entry_id, content};
    PGresult *r = run(db, "rs_entry_same", 2, sv, NULL, NULL, errstr, errlen);
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
        rc = PGS_DUPLICATE;
    } else {
        const char *cv[5] = {e->entry_id, PQntuples(r) == 1 ? PQgetvalue(r, 0, 1) : "null",
                             content, part, off};
        rc = run0(db, "rs_conflict", 5, cv, NULL, NULL, errstr, errlen) < 0 ? PGS_DBERROR
                                                                            : PGS_CONFLICT;
    }
    PQclear(r);
out:
    free(content);
    free(src);
    free(lines);
    return rc;
}

int pgs_db_balance(pgs_db_t *db, const rs_output_balance_t *b, int32_t partition,
                   int64_t offset, char *errstr, size_t errlen)
{
    char ex[16], m[5][24], part[16], off[24];
    snprintf(ex, sizeof ex, "%d", b->exponent);
    snprintf(m[0], sizeof m[0], "%" PRId64, b->billed);
    snprintf(m[1], sizeof m[1], "%" PRId64, b->recognized);
    snprintf(m[2], sizeof m[2], "%" PRId64, b->deferred);
    snprintf(m[3], sizeof m[3], "%" PRId64, b->unbilled);
    snprintf(m[4], sizeof m[4], "%" PRId64, b->received);
    snprintf(part, sizeof part, "%d", (int)partition);
    snprintf(off, sizeof off, "%" PRId64, offset);
    const char *v[16] = {b->snapshot_key,
                         b->contract_id,
                         b->customer_id,
                         b->scope,
                         b->line_id,
                         b->invoice_id,
                         b->currency,
                         ex,
                         m[0],
                         m[1],
                         m[2],
                         m[3],
                         m[4],
                         b->as_of_period,
                         part,
                         off};
    return run0(db, "rs_balance", 16, v, NULL, NULL, errstr, errlen) < 0 ? -1 : 0;
}

int pgs_db_balance_delete(pgs_db_t *db, const char *key, size_t klen, char *errstr,
                          size_t errlen)
{
    char *k = strndup(key, klen);
    if (k == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    const char *v[1] = {k};
    long n = run0(db, "rs_balance_delete", 1, v, NULL, NULL, errstr, errlen);
    free(k);
    return n < 0 ? -1 : 0;
}

int pgs_db_deadletter(pgs_db_t *db, const rs_output_deadletter_t *x, int32_t partition,
                      int64_t offset, char *errstr, size_t errlen)
{
    char dedup[RS_NAME_MAX * 2], sp[16], so[24], ts[24], part[16], off[24];
    if (x->offset >= 0) {
        snprintf(dedup, sizeof dedup, "%s/%d/%" PRId64, x->topic, (int)x->partition, x->offset);
    } else {
        /* FNV-1a 64 of key NUL error: a late dead letter's identity */
        uint64_t h = rs_fnv1a64_update(RS_FNV1A64_SHORT_BASIS,
                                       x->key ? (const void *)x->key : "", x->key_len);
        h = rs_fnv1a64_update(h, "", 1);
        h = rs_fnv1a64_update_str(h, x->error);
        snprintf(dedup, sizeof dedup, "%s/%d/late/%016" PRIx64, x->topic, (int)x->partition, h);
    }
    snprintf(sp, sizeof sp, "%d", (int)x->partition);
    snprintf(so, sizeof so, "%" PRId64, x->offset);
    snprintf(ts, sizeof ts, "%" PRId64, x->timestamp_ms);
    snprintf(part, sizeof part, "%d", (int)partition);
    snprintf(off, sizeof off, "%" PRId64, offset);
    const char *v[10] = {dedup,
                         x->topic,
                         sp,
                         x->offset >= 0 ? so : NULL,
                         x->error,
                         (const char *)x->key,
                         (const char *)x->value,
                         ts,
                         part,
                         off};
    int lens[10] = {0, 0, 0, 0, 0, (int)x->key_len, (int)x->value_len, 0, 0, 0};
    int bin[10] = {0, 0, 0, 0, 0, 1, 1, 0, 0, 0};
    return run0(db, "rs_dead_letter", 10, v, lens, bin, errstr, errlen) < 0 ? -1 : 0;
}

int pgs_db_error_record(pgs_db_t *db, const char *topic, int32_t partition, int64_t offset,
                        const char *error, const void *value, size_t len, char *errstr,
                        size_t errlen)
{
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", (int)partition);
    snprintf(off, sizeof off, "%" PRId64, offset);
    const char *v[5] = {topic, part, off, error, value};
    int lens[5] = {0, 0, 0, 0, (int)len};
    int bin[5] = {0, 0, 0, 0, 1};
    return run0(db, "rs_error", 5, v, lens, bin, errstr, errlen) < 0 ? -1 : 0;
}
