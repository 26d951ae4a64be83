/*
 * test_state — the RocksDB state store (state/rs_state.h).
 *
 * Every test works in its own directory under /tmp (rs_test_dir), removed
 * in the suite's fini. Tests that tamper with the database use the RocksDB
 * C API directly and the key layout documented at the top of rs_state.c.
 *
 * The crash test forks a child that commits batches in a loop and reports
 * each acknowledged batch number on a pipe; the parent SIGKILLs it after a
 * random number of reports (seed printed; set RS_TEST_SEED to replay) and
 * checks that every batch is either entirely in the store or entirely absent,
 * and that no acknowledged batch was lost. Ownership: each test frees what
 * it opens; the child never returns into Criterion (it _exit()s or is killed).
 */
#define _XOPEN_SOURCE 700 /* fork, kill, pipe, nanosleep, strdup */

#include "rs_state.h"
#include "rs_test_util.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <rocksdb/c.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* one temp dir per test: rs_test_dir */
TestSuite(state, .init = rs_test_dir_setup, .fini = rs_test_dir_teardown);

/* ---- helpers ---- */

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", rs_test_dir, name);
}

static int try_open(rs_state_t **st, const char *path, int create, int ro, rs_state_sync_t sync,
                    char *err, size_t errlen)
{
    rs_state_opts_t o = {
        .path = path, .create_if_missing = create, .read_only = ro, .sync = sync};
    return rs_state_open(st, &o, err, errlen);
}

static rs_state_t *open_at(const char *path, int create, int ro, rs_state_sync_t sync)
{
    rs_state_t *st = NULL;
    char err[512] = "";
    int rc = try_open(&st, path, create, ro, sync, err, sizeof err);
    cr_assert_eq(rc, 0, "open %s: %s", path, err);
    cr_assert_not_null(st);
    return st;
}

static rs_state_batch_t *new_batch(void)
{
    rs_state_batch_t *b = NULL;
    char err[256] = "";
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0, "batch_new: %s", err);
    cr_assert_not_null(b);
    cr_assert_eq(rs_state_batch_count(b), 0);
    return b;
}

static void commit(rs_state_t *st, rs_state_batch_t *b)
{
    char err[512] = "";
    int rc = rs_state_batch_commit(st, b, err, sizeof err);
    cr_assert_eq(rc, 0, "commit: %s", err);
}

static void put_str(rs_state_batch_t *b, int32_t p, const char *id, const char *blob)
{
    cr_assert_eq(rs_state_batch_put_contract(b, p, id, blob, strlen(blob)), 0,
                 "put_contract %s: %s", id, rs_state_batch_error(b));
}

static void expect_contract(rs_state_t *st, int32_t p, const char *id, const void *want,
                            size_t wantlen)
{
    void *blob = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = rs_state_get_contract(st, p, id, &blob, &len, err, sizeof err);
    cr_assert_eq(rc, 0, "get_contract p=%d id=%s: rc=%d %s", (int)p, id, rc, err);
    cr_assert_not_null(blob);
    cr_assert_eq(len, wantlen, "get_contract p=%d id=%s: len %zu, want %zu", (int)p, id, len,
                 wantlen);
    cr_assert(memcmp(blob, want, wantlen) == 0, "get_contract p=%d id=%s: blob differs", (int)p,
              id);
    rs_state_free(blob);
}

static void expect_contract_str(rs_state_t *st, int32_t p, const char *id, const char *want)
{
    expect_contract(st, p, id, want, strlen(want));
}

static void expect_no_contract(rs_state_t *st, int32_t p, const char *id)
{
    void *blob = (void *)0x1;
    size_t len = 7;
    char err[512] = "";
    int rc = rs_state_get_contract(st, p, id, &blob, &len, err, sizeof err);
    cr_assert_eq(rc, 1, "get_contract p=%d id=%s: rc=%d (want not found) %s", (int)p, id, rc,
                 err);
}

static int64_t input_offset(rs_state_t *st, const char *topic, int32_t p, int want_rc)
{
    int64_t off = -42;
    char err[512] = "";
    int rc = rs_state_get_input_offset(st, topic, p, &off, err, sizeof err);
    cr_assert_eq(rc, want_rc, "get_input_offset %s/%d: rc=%d want %d %s", topic, (int)p, rc,
                 want_rc, err);
    return off;
}

static int64_t contract_offset(rs_state_t *st, const char *id, const char *topic, int want_rc)
{
    int64_t off = -42;
    char err[512] = "";
    int rc = rs_state_get_contract_offset(st, id, topic, &off, err, sizeof err);
    cr_assert_eq(rc, want_rc, "get_contract_offset %s/%s: rc=%d want %d %s", id, topic, rc,
                 want_rc, err);
    return off;
}

/* Collects a partition scan. */
typedef struct scan {
    size_t n;
    char *ids[64];
    char *blobs[64];
    size_t stop_after; /* 0 = never stop */
} scan_t;

static int scan_cb(void *opaque, const char *id, const void *blob, size_t len)
{
    scan_t *s = opaque;
    if (s->n >= 64)
        return 1;
    s->ids[s->n] = strdup(id);
    s->blobs[s->n] = strndup(blob, len);
    s->n++;
    return (s->stop_after && s->n >= s->stop_after) ? 1 : 0;
}

static void scan_free(scan_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->ids[i]);
        free(s->blobs[i]);
    }
    s->n = 0;
}

static int do_scan(rs_state_t *st, int32_t p, scan_t *s)
{
    char err[512] = "";
    int rc = rs_state_foreach_contract(st, p, scan_cb, s, err, sizeof err);
    cr_assert_neq(rc, -1, "foreach p=%d: %s", (int)p, err);
    return rc;
}

static void expect_partitions(rs_state_t *st, const int32_t *want, size_t nwant)
{
    int32_t *parts = NULL;
    size_t n = 99;
    char err[512] = "";
    cr_assert_eq(rs_state_partitions(st, &parts, &n, err, sizeof err), 0, "partitions: %s",
                 err);
    cr_assert_eq(n, nwant, "partitions: got %zu, want %zu", n, nwant);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(parts[i], want[i], "partitions[%zu] = %d, want %d", i, (int)parts[i],
                     (int)want[i]);
    if (nwant == 0)
        cr_assert_null(parts);
    rs_state_free(parts);
}

/* Write one raw key with the RocksDB C API (the store must be closed). */
/* The store's layout key (rs_state.c). */
static const unsigned char LAYOUT_KEY[7] = {0x01, 'l', 'a', 'y', 'o', 'u', 't'};

static void raw_put(const char *path, const void *k, size_t klen, const void *v, size_t vlen)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    char *err = NULL;
    rocksdb_t *db;
    rocksdb_options_set_create_if_missing(o, 1);
    db = rocksdb_open(o, path, &err);
    cr_assert_null(err, "raw open %s: %s", path, err);
    rocksdb_put(db, wo, k, klen, v, vlen, &err);
    cr_assert_null(err, "raw put: %s", err);
    rocksdb_close(db);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
}

/* ---- basic reads and writes ---- */

Test(state, put_get_and_not_found)
{
    char path[128];
    rs_state_t *st;
    rs_state_batch_t *b;
    void *blob = NULL;
    size_t len = 0;
    char err[512] = "";
    size_t biglen = 1u << 20;
    unsigned char *big = malloc(biglen);
    int64_t closed = 24315; /* a period number, as engine-global state */

    cr_assert_not_null(big);
    for (size_t i = 0; i < biglen; i++)
        big[i] = (unsigned char)(i * 131u + 7u);
    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    b = new_batch();
    put_str(b, 3, "C-1", "state-of-C-1");
    cr_assert_eq(rs_state_batch_put_contract(b, 3, "C-big", big, biglen), 0);
    cr_assert_eq(rs_state_batch_put_contract(b, 3, "C-empty", NULL, 0), 0);
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 3, 1001), 0);
    cr_assert_eq(rs_state_batch_put_input_offset(b, "usage", 3, 0), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "C-1", "invoices", 77), 0);
    cr_assert_eq(rs_state_batch_put_meta(b, "closed_periods", &closed, sizeof closed), 0);
    cr_assert_eq(rs_state_batch_count(b), 7);
    commit(st, b);
    cr_assert_eq(rs_state_batch_count(b), 0, "a committed batch is cleared");

    expect_contract_str(st, 3, "C-1", "state-of-C-1");
    expect_contract(st, 3, "C-big", big, biglen);
    expect_contract(st, 3, "C-empty", "", 0);
    expect_no_contract(st, 4, "C-1"); /* right id, wrong partition */
    expect_no_contract(st, 3, "C-2");
    expect_no_contract(st, 3, "C-"); /* a prefix of a stored id */
    cr_assert_eq(input_offset(st, "contracts", 3, 0), 1001);
    cr_assert_eq(input_offset(st, "usage", 3, 0), 0);
    input_offset(st, "contracts", 4, 1);
    input_offset(st, "payments", 3, 1);
    cr_assert_eq(contract_offset(st, "C-1", "invoices", 0), 77);
    contract_offset(st, "C-1", "payments", 1);
    contract_offset(st, "C-2", "invoices", 1);

    cr_assert_eq(rs_state_get_meta(st, "closed_periods", &blob, &len, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(len, sizeof closed);
    cr_assert(memcmp(blob, &closed, sizeof closed) == 0);
    rs_state_free(blob);
    blob = NULL;
    cr_assert_eq(rs_state_get_meta(st, "nope", &blob, &len, err, sizeof err), 1);

    /* Overwrites: the latest commit wins; within a batch the last op wins. */
    put_str(b, 3, "C-1", "v2");
    put_str(b, 3, "C-1", "v3");
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 3, 1500), 0);
    cr_assert_eq(rs_state_batch_delete_contract(b, 3, "C-empty"), 0);
    put_str(b, 3, "C-new", "x");
    cr_assert_eq(rs_state_batch_delete_contract(b, 3, "C-new"), 0);
    commit(st, b);
    expect_contract_str(st, 3, "C-1", "v3");
    expect_no_contract(st, 3, "C-empty");
    expect_no_contract(st, 3, "C-new");
    cr_assert_eq(input_offset(st, "contracts", 3, 0), 1500);

    rs_state_batch_destroy(b);
    rs_state_destroy(st);
    free(big);
}

Test(state, invalid_arguments_are_named_and_never_written)
{
    char path[128], err[512] = "", longid[RS_STATE_MAX_ID_LEN + 2];
    rs_state_t *st;
    rs_state_batch_t *b;
    void *blob = NULL;
    size_t len = 0;
    int64_t off = 0;

    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_OFF);
    b = new_batch();

    put_str(b, 1, "good", "g");
    cr_assert_eq(rs_state_batch_put_contract(b, 1, "", "x", 1), -1);
    cr_assert_not_null(rs_state_batch_error(b));
    cr_assert(strstr(rs_state_batch_error(b), "contract_id is empty") != NULL, "%s",
              rs_state_batch_error(b));
    /* Later errors do not replace the first one. */
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 1, -5), -1);
    cr_assert(strstr(rs_state_batch_error(b), "contract_id is empty") != NULL);
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), -1);
    cr_assert(strstr(err, "batch not committed") && strstr(err, "contract_id is empty"), "%s",
              err);
    expect_no_contract(st, 1, "good"); /* the valid op of the refused batch */

    rs_state_batch_clear(b);
    cr_assert_null(rs_state_batch_error(b));
    cr_assert_eq(rs_state_batch_count(b), 0);

    cr_assert_eq(rs_state_batch_put_contract(b, -1, "c", "x", 1), -1);
    cr_assert(strstr(rs_state_batch_error(b), "partition -1 is negative"), "%s",
              rs_state_batch_error(b));
    rs_state_batch_clear(b);
    cr_assert_eq(rs_state_batch_put_contract(b, 0, longid, "x", 1), -1);
    cr_assert(strstr(rs_state_batch_error(b), "contract_id is longer than 1024"), "%s",
              rs_state_batch_error(b));
    rs_state_batch_clear(b);
    longid[RS_STATE_MAX_ID_LEN] = '\0'; /* exactly the maximum is fine */
    cr_assert_eq(rs_state_batch_put_contract(b, 0, longid, "x", 1), 0);
    cr_assert_eq(rs_state_batch_put_contract(b, 0, "c", NULL, 3), -1);
    cr_assert(strstr(rs_state_batch_error(b), "blob is NULL but len is 3"), "%s",
              rs_state_batch_error(b));
    rs_state_batch_clear(b);
    cr_assert_eq(rs_state_batch_put_input_offset(b, "payments", 2, -1), -1);
    cr_assert(strstr(rs_state_batch_error(b), "rs_state_batch_put_input_offset: offset -1"),
              "%s", rs_state_batch_error(b));
    rs_state_batch_clear(b);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "c", "", 4), -1);
    cr_assert(strstr(rs_state_batch_error(b), "topic is empty"), "%s", rs_state_batch_error(b));
    rs_state_batch_clear(b);
    cr_assert_eq(rs_state_batch_put_meta(b, NULL, "x", 1), -1);
    cr_assert(strstr(rs_state_batch_error(b), "name is NULL"), "%s", rs_state_batch_error(b));
    rs_state_batch_clear(b);
    cr_assert_eq(rs_state_batch_delete_contract(b, 0, NULL), -1);
    cr_assert(strstr(rs_state_batch_error(b), "contract_id is NULL"), "%s",
              rs_state_batch_error(b));
    rs_state_batch_clear(b);

    /* After a clear the batch works again. */
    put_str(b, 1, "good", "g");
    commit(st, b);
    expect_contract_str(st, 1, "good", "g");

    /* Reads validate too. */
    cr_assert_eq(rs_state_get_contract(st, -2, "good", &blob, &len, err, sizeof err), -1);
    cr_assert(strstr(err, "rs_state_get_contract: partition -2 is negative"), "%s", err);
    cr_assert_eq(rs_state_get_input_offset(st, NULL, 1, &off, err, sizeof err), -1);
    cr_assert(strstr(err, "topic is NULL"), "%s", err);
    cr_assert_eq(rs_state_get_contract_offset(st, "", "usage", &off, err, sizeof err), -1);
    cr_assert(strstr(err, "contract_id is empty"), "%s", err);
    cr_assert_eq(rs_state_foreach_contract(st, 0, NULL, NULL, err, sizeof err), -1);
    cr_assert_eq(rs_state_drop_partition(st, -1, err, sizeof err), -1);
    cr_assert(strstr(err, "partition -1 is negative"), "%s", err);

    rs_state_batch_destroy(b);
    rs_state_batch_destroy(NULL);
    rs_state_destroy(st);
    rs_state_destroy(NULL);
}

/* ---- atomicity and durability ---- */

Test(state, uncommitted_batch_leaves_nothing)
{
    char path[128];
    rs_state_t *st;
    rs_state_batch_t *b;

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    b = new_batch();
    put_str(b, 0, "A", "a");
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 0, 10), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "A", "contracts", 9), 0);
    cr_assert_eq(rs_state_batch_put_meta(b, "m", "v", 1), 0);
    /* Staged but not committed: invisible. */
    expect_no_contract(st, 0, "A");
    input_offset(st, "contracts", 0, 1);
    rs_state_batch_destroy(b);
    expect_no_contract(st, 0, "A");
    rs_state_destroy(st);

    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    expect_no_contract(st, 0, "A");
    input_offset(st, "contracts", 0, 1);
    contract_offset(st, "A", "contracts", 1);
    expect_partitions(st, NULL, 0);

    /* A cleared batch commits nothing either. */
    b = new_batch();
    put_str(b, 0, "A", "a");
    rs_state_batch_clear(b);
    commit(st, b);
    expect_no_contract(st, 0, "A");

    /* Committed: everything at once, offsets included. */
    put_str(b, 0, "A", "a");
    put_str(b, 0, "B", "b");
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 0, 10), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "A", "contracts", 9), 0);
    commit(st, b);
    expect_contract_str(st, 0, "A", "a");
    expect_contract_str(st, 0, "B", "b");
    cr_assert_eq(input_offset(st, "contracts", 0, 0), 10);
    cr_assert_eq(contract_offset(st, "A", "contracts", 0), 9);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

static void reopen_keeps_everything(rs_state_sync_t sync)
{
    char path[128], err[512] = "";
    rs_state_t *st;
    rs_state_batch_t *b;
    void *blob = NULL;
    size_t len = 0;
    static const int32_t want_parts[] = {0, 5, 9};

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, sync);
    b = new_batch();
    for (int i = 0; i < 20; i++) {
        char id[16], v[32];
        snprintf(id, sizeof id, "K%02d", i);
        snprintf(v, sizeof v, "value-%d", i * i);
        put_str(b, i % 2 ? 5 : 0, id, v);
        cr_assert_eq(rs_state_batch_put_contract_offset(b, id, "usage", 100 + i), 0);
    }
    cr_assert_eq(rs_state_batch_put_input_offset(b, "usage", 5, 12345678901LL), 0);
    cr_assert_eq(rs_state_batch_put_input_offset(b, "usage", 9, 3), 0);
    cr_assert_eq(rs_state_batch_put_meta(b, "engine", "global", 6), 0);
    commit(st, b);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);

    st = open_at(path, 0, 0, sync);
    for (int i = 0; i < 20; i++) {
        char id[16], v[32];
        snprintf(id, sizeof id, "K%02d", i);
        snprintf(v, sizeof v, "value-%d", i * i);
        expect_contract_str(st, i % 2 ? 5 : 0, id, v);
        expect_no_contract(st, i % 2 ? 0 : 5, id);
        cr_assert_eq(contract_offset(st, id, "usage", 0), 100 + i);
    }
    cr_assert_eq(input_offset(st, "usage", 5, 0), 12345678901LL);
    cr_assert_eq(input_offset(st, "usage", 9, 0), 3);
    cr_assert_eq(rs_state_get_meta(st, "engine", &blob, &len, err, sizeof err), 0);
    cr_assert_eq(len, 6);
    cr_assert(memcmp(blob, "global", 6) == 0);
    rs_state_free(blob);
    expect_partitions(st, want_parts, 3);
    rs_state_destroy(st);
}

Test(state, reopen_keeps_everything_sync_on)
{
    reopen_keeps_everything(RS_STATE_SYNC_ON);
}

Test(state, reopen_keeps_everything_sync_off)
{
    reopen_keeps_everything(RS_STATE_SYNC_OFF);
}

/* ---- scans ---- */

Test(state, partition_scan_is_ordered_and_isolated)
{
    char path[128], err[512] = "";
    rs_state_t *st;
    rs_state_batch_t *b;
    scan_t s = {0};
    /* Inserted out of order; "a" is a prefix of "a b", "aa", "ab", "abc". */
    static const char *p1_ids[] = {"b",  "abc", "a",   "\xc3\xa9t\xc3\xa9",
                                   "ab", "aa",  "a b", "Z"};
    static const char *p1_sorted[] = {"Z",  "a",   "a b", "aa",
                                      "ab", "abc", "b",   "\xc3\xa9t\xc3\xa9"};
    static const int32_t parts[] = {1, 2, 256, 7};
    static const int32_t want_parts[] = {1, 2, 7, 256};

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_OFF);
    expect_partitions(st, NULL, 0);
    b = new_batch();
    for (size_t i = 0; i < sizeof p1_ids / sizeof *p1_ids; i++) {
        char v[64];
        snprintf(v, sizeof v, "p1:%s", p1_ids[i]);
        put_str(b, 1, p1_ids[i], v);
    }
    /* Partition 2 holds ids that extend partition 1's ids. */
    put_str(b, 2, "a", "p2:a");
    put_str(b, 2, "abcd", "p2:abcd");
    /* 256 is 00 00 01 00 big-endian: it must sort after 2, not next to 1. */
    put_str(b, 256, "a", "p256:a");
    /* Partition 7 has only an input offset. */
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", parts[3], 1), 0);
    commit(st, b);

    cr_assert_eq(do_scan(st, 1, &s), 0);
    cr_assert_eq(s.n, 8, "partition 1 has %zu contracts, want 8", s.n);
    for (size_t i = 0; i < s.n; i++) {
        char v[64];
        snprintf(v, sizeof v, "p1:%s", p1_sorted[i]);
        cr_assert_str_eq(s.ids[i], p1_sorted[i], "scan[%zu]", i);
        cr_assert_str_eq(s.blobs[i], v);
    }
    scan_free(&s);

    cr_assert_eq(do_scan(st, 2, &s), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.ids[0], "a");
    cr_assert_str_eq(s.blobs[0], "p2:a");
    cr_assert_str_eq(s.ids[1], "abcd");
    cr_assert_str_eq(s.blobs[1], "p2:abcd");
    scan_free(&s);

    cr_assert_eq(do_scan(st, 256, &s), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.blobs[0], "p256:a");
    scan_free(&s);

    cr_assert_eq(do_scan(st, 0, &s), 0);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(do_scan(st, 7, &s), 0);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(do_scan(st, INT32_MAX, &s), 0);
    cr_assert_eq(s.n, 0);

    /* The callback can stop the scan. */
    s.stop_after = 3;
    cr_assert_eq(do_scan(st, 1, &s), 1);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.ids[2], "a b");
    scan_free(&s);

    expect_partitions(st, want_parts, 4);
    cr_assert_eq(rs_state_foreach_contract(st, -3, scan_cb, &s, err, sizeof err), -1);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

Test(state, highest_partition_number)
{
    char path[128];
    rs_state_t *st;
    rs_state_batch_t *b;
    scan_t s = {0};
    static const int32_t want[] = {0, INT32_MAX};

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_OFF);
    b = new_batch();
    put_str(b, INT32_MAX, "top", "t");
    put_str(b, 0, "zero", "z");
    commit(st, b);
    cr_assert_eq(do_scan(st, INT32_MAX, &s), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.ids[0], "top");
    scan_free(&s);
    expect_partitions(st, want, 2);
    cr_assert_eq(rs_state_drop_partition(st, INT32_MAX, NULL, 0), 0);
    expect_no_contract(st, INT32_MAX, "top");
    expect_contract_str(st, 0, "zero", "z");
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* ---- drop_partition ---- */

Test(state, drop_partition_removes_only_that_partition)
{
    char path[128], err[512] = "";
    rs_state_t *st;
    rs_state_batch_t *b;
    scan_t s = {0};
    void *blob = NULL;
    size_t len = 0;
    static const int32_t before[] = {1, 2, 3};
    static const int32_t after[] = {2, 3};

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    b = new_batch();
    put_str(b, 1, "c1", "one");
    put_str(b, 1, "c10", "ten");
    put_str(b, 2, "c1x", "two"); /* an id extending a dropped one */
    put_str(b, 2, "c2", "two-b");
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "c1", "contracts", 5), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "c1", "usage", 6), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "c10", "usage", 7), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "c1x", "usage", 8), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "c2", "usage", 9), 0);
    for (int32_t p = 1; p <= 3; p++) {
        cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", p, 100 + p), 0);
        cr_assert_eq(rs_state_batch_put_input_offset(b, "usage", p, 200 + p), 0);
    }
    cr_assert_eq(rs_state_batch_put_meta(b, "closed", "2026-01", 7), 0);
    commit(st, b);
    expect_partitions(st, before, 3);

    cr_assert_eq(rs_state_drop_partition(st, 1, err, sizeof err), 0, "%s", err);
    expect_no_contract(st, 1, "c1");
    expect_no_contract(st, 1, "c10");
    input_offset(st, "contracts", 1, 1);
    input_offset(st, "usage", 1, 1);
    contract_offset(st, "c1", "contracts", 1);
    contract_offset(st, "c1", "usage", 1);
    contract_offset(st, "c10", "usage", 1);
    /* Everything else untouched. */
    expect_contract_str(st, 2, "c1x", "two");
    expect_contract_str(st, 2, "c2", "two-b");
    cr_assert_eq(contract_offset(st, "c1x", "usage", 0), 8);
    cr_assert_eq(contract_offset(st, "c2", "usage", 0), 9);
    cr_assert_eq(input_offset(st, "contracts", 2, 0), 102);
    cr_assert_eq(input_offset(st, "usage", 3, 0), 203);
    cr_assert_eq(rs_state_get_meta(st, "closed", &blob, &len, err, sizeof err), 0);
    rs_state_free(blob);
    expect_partitions(st, after, 2);
    cr_assert_eq(do_scan(st, 1, &s), 0);
    cr_assert_eq(s.n, 0);

    /* Dropping again (nothing there) is fine; new writes after the drop show. */
    cr_assert_eq(rs_state_drop_partition(st, 1, err, sizeof err), 0, "%s", err);
    put_str(b, 1, "c1", "back");
    commit(st, b);
    expect_contract_str(st, 1, "c1", "back");
    rs_state_destroy(st);

    /* The drop is durable. */
    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    cr_assert_eq(do_scan(st, 1, &s), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.ids[0], "c1");
    scan_free(&s);
    expect_no_contract(st, 1, "c10");
    input_offset(st, "contracts", 1, 1);
    cr_assert_eq(do_scan(st, 2, &s), 0);
    cr_assert_eq(s.n, 2);
    scan_free(&s);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* ---- checkpoints ---- */

Test(state, checkpoint_is_a_consistent_copy)
{
    char path[128], cpath[128], err[512] = "";
    rs_state_t *st, *cp;
    rs_state_batch_t *b;
    scan_t s = {0};

    path_in(path, sizeof path, "db");
    path_in(cpath, sizeof cpath, "checkpoint");
    st = open_at(path, 1, 0, RS_STATE_SYNC_OFF);
    b = new_batch();
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%03d", i);
        put_str(b, 4, id, "before");
    }
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 4, 50), 0);
    commit(st, b);

    cr_assert_eq(rs_state_checkpoint(st, cpath, err, sizeof err), 0, "%s", err);
    /* The original keeps changing. */
    put_str(b, 4, "c000", "after");
    put_str(b, 4, "c999", "new");
    cr_assert_eq(rs_state_batch_put_input_offset(b, "contracts", 4, 51), 0);
    commit(st, b);
    cr_assert_eq(rs_state_drop_partition(st, 4, err, sizeof err), 0, "%s", err);
    put_str(b, 4, "c001", "after-drop");
    commit(st, b);

    /* A checkpoint into an existing directory is refused. */
    cr_assert_eq(rs_state_checkpoint(st, cpath, err, sizeof err), -1);
    cr_assert(strstr(err, "rs_state_checkpoint: dir=") != NULL, "%s", err);

    /* Read-only open sees the state at checkpoint time. */
    cp = open_at(cpath, 0, 1, RS_STATE_SYNC_DEFAULT);
    cr_assert_eq(do_scan(cp, 4, &s), 0);
    cr_assert_eq(s.n, 50);
    for (size_t i = 0; i < s.n; i++)
        cr_assert_str_eq(s.blobs[i], "before", "%s", s.ids[i]);
    scan_free(&s);
    cr_assert_eq(input_offset(cp, "contracts", 4, 0), 50);
    expect_no_contract(cp, 4, "c999");
    put_str(b, 4, "x", "y");
    cr_assert_eq(rs_state_batch_commit(cp, b, err, sizeof err), -1);
    cr_assert(strstr(err, "read-only") != NULL, "%s", err);
    cr_assert_eq(rs_state_batch_count(b), 1, "a failed commit keeps the batch");
    rs_state_batch_clear(b);
    cr_assert_eq(rs_state_drop_partition(cp, 4, err, sizeof err), -1);
    cr_assert(strstr(err, "read-only") != NULL, "%s", err);
    rs_state_destroy(cp);

    /* Read-write open works too, and is independent of the original. */
    cp = open_at(cpath, 0, 0, RS_STATE_SYNC_DEFAULT);
    expect_contract_str(cp, 4, "c000", "before");
    put_str(b, 4, "c000", "in-copy");
    commit(cp, b);
    expect_contract_str(cp, 4, "c000", "in-copy");
    rs_state_destroy(cp);

    expect_no_contract(st, 4, "c000");
    expect_contract_str(st, 4, "c001", "after-drop");
    cr_assert_eq(do_scan(st, 4, &s), 0);
    cr_assert_eq(s.n, 1);
    scan_free(&s);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* ---- opening: layout version, foreign databases, errors ---- */

Test(state, open_errors_are_clear)
{
    char path[128], err[512] = "";
    rs_state_t *st = (rs_state_t *)0x1, *st2 = NULL;
    rs_state_opts_t o = {0};

    path_in(path, sizeof path, "missing");
    cr_assert_eq(try_open(&st, path, 0, 0, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);
    cr_assert_null(st);
    cr_assert(strstr(err, "rs_state_open: path=") && strstr(err, "missing"), "%s", err);
    cr_assert_eq(try_open(&st, path, 1, 1, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1,
                 "read-only never creates");

    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), -1);
    cr_assert(strstr(err, "opts.path is empty"), "%s", err);
    o.path = path;
    o.sync = (rs_state_sync_t)9;
    cr_assert_eq(rs_state_open(&st, &o, err, sizeof err), -1);
    cr_assert(strstr(err, "opts.sync"), "%s", err);

    /* A store is locked against a second read-write open. */
    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    cr_assert_eq(try_open(&st2, path, 1, 0, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);
    cr_assert_null(st2);
    cr_assert(strstr(err, "rs_state_open: path=") != NULL, "%s", err);
    cr_assert(strstr(err, "lock") != NULL, "%s", err);
    rs_state_destroy(st);
}

Test(state, incompatible_layout_version_is_refused)
{
    char path[128], err[512] = "";
    rs_state_t *st = NULL;
    const unsigned char *key = LAYOUT_KEY;
    static const unsigned char v1[] = {'R', 'S', 'S', 'T', 0, 0, 0, 1};
    static const unsigned char junk[] = {'X', 'X'};

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_destroy(st);
    st = NULL;

    raw_put(path, key, sizeof LAYOUT_KEY, v1, sizeof v1);
    cr_assert_eq(try_open(&st, path, 1, 0, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);
    cr_assert_null(st);
    cr_assert(strstr(err, "layout version 1, this build reads only version 3"), "%s", err);
    cr_assert_eq(try_open(&st, path, 0, 1, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);

    raw_put(path, key, sizeof LAYOUT_KEY, junk, sizeof junk);
    cr_assert_eq(try_open(&st, path, 1, 0, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);
    cr_assert(strstr(err, "malformed layout key"), "%s", err);
}

Test(state, foreign_database_is_refused)
{
    char path[128], err[512] = "";
    rs_state_t *st = NULL;

    path_in(path, sizeof path, "other");
    raw_put(path, "user:1", 6, "alice", 5);
    cr_assert_eq(try_open(&st, path, 1, 0, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);
    cr_assert_null(st);
    cr_assert(strstr(err, "not a revstream state store"), "%s", err);
}

Test(state, corrupt_offset_value_is_an_error)
{
    char path[128], err[512] = "";
    rs_state_t *st;
    int64_t off = 0;
    /* 0x20 BE32(partition 3) "usage" */
    static const unsigned char key[] = {0x20, 0, 0, 0, 3, 'u', 's', 'a', 'g', 'e'};

    path_in(path, sizeof path, "db");
    st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_destroy(st);
    raw_put(path, key, sizeof key, "abc", 3);
    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    cr_assert_eq(rs_state_get_input_offset(st, "usage", 3, &off, err, sizeof err), -1);
    cr_assert(strstr(err, "topic=usage partition=3") && strstr(err, "corrupt offset value"),
              "%s", err);
    rs_state_destroy(st);
    /* a contract's offsets (0x30 id): an entry longer than the value */
    static const unsigned char ckey[] = {0x30, 'C', '-', '7'};
    static const unsigned char cval[] = {5, 'u', 's', 'a'};
    raw_put(path, ckey, sizeof ckey, (const char *)cval, sizeof cval);
    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    static const char *const topics[] = {"usage"};
    int64_t offs[1];
    cr_assert_eq(
        rs_state_get_contract_topic_offsets(st, "C-7", topics, 1, offs, err, sizeof err), -1);
    cr_assert(strstr(err, "contract_id=C-7") && strstr(err, "corrupt offsets value"), "%s",
              err);
    cr_assert_eq(rs_state_get_contract_offset(st, "C-7", "usage", &off, err, sizeof err), -1);
    rs_state_destroy(st);
}

/* ---- crash safety ---- */

#define CRASH_K 40     /* contracts written per batch */
#define CRASH_SHARED 8 /* contracts rewritten by every batch */
#define CRASH_BLOB 512 /* bytes per contract blob */
#define CRASH_PART 3   /* the partition the child writes */
#define CRASH_ROUNDS 6 /* kill/reopen rounds */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void crash_id(char *id, size_t len, int64_t batch, int i)
{
    snprintf(id, len, "b%07" PRId64 "-%02d", batch, i);
}

/* The blob of contract i of a batch: a header then a batch-dependent fill. */
static void crash_blob(unsigned char *blob, int64_t batch, int i)
{
    int n = snprintf((char *)blob, CRASH_BLOB, "batch=%" PRId64 " i=%d;", batch, i);
    for (int j = n; j < CRASH_BLOB; j++)
        blob[j] = (unsigned char)('a' + (batch * 7 + i + j) % 26);
}

/* The child: continue after the stored offset, commit forever, report each
 * acknowledged batch number. Never returns. */
static void crash_child(const char *path, int wfd, rs_state_sync_t sync)
{
    rs_state_t *st = NULL;
    rs_state_batch_t *b = NULL;
    char err[512] = "";
    int64_t next = 0;
    unsigned char blob[CRASH_BLOB];

    if (try_open(&st, path, 1, 0, sync, err, sizeof err) != 0 ||
        rs_state_batch_new(&b, err, sizeof err) != 0) {
        fprintf(stderr, "crash child: %s\n", err);
        _exit(2);
    }
    if (rs_state_get_input_offset(st, "contracts", CRASH_PART, &next, err, sizeof err) < 0)
        _exit(2);
    for (int64_t batch = next + 1;; batch++) {
        char id[32], shared[32];
        for (int i = 0; i < CRASH_K; i++) {
            crash_id(id, sizeof id, batch, i);
            crash_blob(blob, batch, i);
            rs_state_batch_put_contract(b, CRASH_PART, id, blob, sizeof blob);
            rs_state_batch_put_contract_offset(b, id, "usage", batch);
        }
        for (int i = 0; i < CRASH_SHARED; i++) {
            snprintf(id, sizeof id, "shared-%d", i);
            snprintf(shared, sizeof shared, "batch=%" PRId64, batch);
            rs_state_batch_put_contract(b, CRASH_PART, id, shared, strlen(shared));
        }
        rs_state_batch_put_meta(b, "last_batch", &batch, sizeof batch);
        rs_state_batch_put_input_offset(b, "contracts", CRASH_PART, batch);
        if (rs_state_batch_commit(st, b, err, sizeof err) != 0) {
            fprintf(stderr, "crash child: %s\n", err);
            _exit(3);
        }
        if (write(wfd, &batch, sizeof batch) != (ssize_t)sizeof batch)
            _exit(4);
    }
}

typedef struct crash_count {
    size_t n;
} crash_count_t;

static int count_cb(void *opaque, const char *id, const void *blob, size_t len)
{
    (void)id;
    (void)blob;
    (void)len;
    ((crash_count_t *)opaque)->n++;
    return 0;
}

/* Check the store holds batches 1..committed entirely and nothing of later ones. */
static void crash_check(rs_state_t *st, int64_t committed)
{
    unsigned char blob[CRASH_BLOB];
    char id[32], want[32], err[512] = "";
    crash_count_t cnt = {0};
    void *meta = NULL;
    size_t len = 0;
    int64_t last = 0;

    for (int64_t batch = 1; batch <= committed + 1; batch++) {
        for (int i = 0; i < CRASH_K; i++) {
            crash_id(id, sizeof id, batch, i);
            if (batch <= committed) {
                crash_blob(blob, batch, i);
                expect_contract(st, CRASH_PART, id, blob, sizeof blob);
                cr_assert_eq(contract_offset(st, id, "usage", 0), batch);
            } else {
                expect_no_contract(st, CRASH_PART, id);
                contract_offset(st, id, "usage", 1);
            }
        }
    }
    snprintf(want, sizeof want, "batch=%" PRId64, committed);
    for (int i = 0; i < CRASH_SHARED; i++) {
        snprintf(id, sizeof id, "shared-%d", i);
        expect_contract_str(st, CRASH_PART, id, want);
    }
    cr_assert_eq(rs_state_get_meta(st, "last_batch", &meta, &len, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(len, sizeof last);
    memcpy(&last, meta, sizeof last);
    rs_state_free(meta);
    cr_assert_eq(last, committed);
    cr_assert_eq(rs_state_foreach_contract(st, CRASH_PART, count_cb, &cnt, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(cnt.n, (size_t)committed * CRASH_K + CRASH_SHARED,
                 "%zu contracts after %" PRId64 " batches", cnt.n, committed);
}

Test(state, sigkill_mid_commit_keeps_whole_batches, .timeout = 300)
{
    char path[128];
    uint64_t seed;
    const char *env = getenv("RS_TEST_SEED");
    int64_t prev = 0;

    seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    cr_log_info("crash test seed=%" PRIu64 " (set RS_TEST_SEED to replay)", seed);
    path_in(path, sizeof path, "db");

    for (int round = 0; round < CRASH_ROUNDS; round++) {
        rs_state_sync_t sync = round % 2 ? RS_STATE_SYNC_ON : RS_STATE_SYNC_OFF;
        int64_t reports = 1 + (int64_t)(rng_next(&seed) % 120);
        long jitter_ns = (long)(rng_next(&seed) % 3000000);
        int64_t acked = 0, got = 0, batch;
        int fds[2], status = 0;
        pid_t pid;
        rs_state_t *st;
        struct timespec ts = {0, jitter_ns};

        cr_assert_eq(pipe(fds), 0);
        fflush(NULL);
        pid = fork();
        cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
        if (pid == 0) {
            close(fds[0]);
            crash_child(path, fds[1], sync);
        }
        close(fds[1]);
        while (got < reports && read(fds[0], &batch, sizeof batch) == (ssize_t)sizeof batch) {
            acked = batch;
            got++;
        }
        cr_assert_eq(got, reports, "child stopped after %" PRId64 " reports", got);
        nanosleep(&ts, NULL); /* vary where in the next commit the kill lands */
        cr_assert_eq(kill(pid, SIGKILL), 0);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "child ended otherwise (status %d)", status);
        /* Reports written before the kill are still in the pipe. */
        while (read(fds[0], &batch, sizeof batch) == (ssize_t)sizeof batch)
            acked = batch;
        close(fds[0]);

        st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
        {
            int64_t committed = input_offset(st, "contracts", CRASH_PART, 0);
            /* No acknowledged batch is lost; at most the one in flight at the
             * kill is there without its report. */
            cr_assert(committed == acked || committed == acked + 1,
                      "round %d: store has %" PRId64 " batches, child acknowledged %" PRId64,
                      round, committed, acked);
            cr_log_info("round %d sync=%s acked=%" PRId64 " committed=%" PRId64, round,
                        sync == RS_STATE_SYNC_ON ? "on" : "off", acked, committed);
            cr_assert(committed > prev, "round %d made no progress", round);
            crash_check(st, committed);
            prev = committed;
        }
        rs_state_destroy(st);
    }
}

static int collect_seen(void *opaque, const char *contract_id, uint64_t id_hash,
                        uint64_t content_hash, int32_t period)
{
    char *out = opaque;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s:%llx:%llx:%d;", contract_id, (unsigned long long)id_hash,
             (unsigned long long)content_hash, (int)period);
    return 0;
}

/* Seen ids: per partition and contract (a contract id that is a prefix of
 * another stays apart), deleted singly, kept when the contract's blob is
 * deleted, dropped with their partition; a save point rolls back exactly
 * what was staged after it. */
Test(state, seen_ids_and_save_points)
{
    char path[128], err[512] = "", got[512] = "";
    uint64_t ch = 0;
    int32_t period = 0;
    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_batch_t *b = new_batch();
    put_str(b, 2, "a", "A");
    cr_assert_eq(rs_state_batch_put_seen(b, 2, "a", 0x11, 0xaa, 24312), 0);
    cr_assert_eq(rs_state_batch_put_seen(b, 2, "ab", 0x11, 0xbb, 24313), 0);
    cr_assert_eq(rs_state_batch_put_seen(b, 3, "a", 0x11, 0xcc, 24314), 0);
    rs_state_batch_save_point(b);
    cr_assert_eq(rs_state_batch_put_seen(b, 2, "a", 0x22, 0xdd, 24315), 0);
    put_str(b, 2, "later", "L");
    cr_assert_eq(rs_state_batch_count(b), 6);
    cr_assert_eq(rs_state_batch_rollback(b), 0);
    cr_assert_eq(rs_state_batch_count(b), 4);
    cr_assert_eq(rs_state_batch_rollback(b), -1, "one rollback per save point");
    commit(st, b);

    cr_assert_eq(rs_state_get_seen(st, 2, "a", 0x11, &ch, &period, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(ch, 0xaa);
    cr_assert_eq(period, 24312);
    cr_assert_eq(rs_state_get_seen(st, 2, "a", 0x22, &ch, NULL, err, sizeof err), 1);
    cr_assert_eq(rs_state_get_seen(st, 2, "later", 0x11, &ch, NULL, err, sizeof err), 1);
    cr_assert_eq(rs_state_foreach_seen(st, 2, collect_seen, got, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(got, "a:11:aa:24312;ab:11:bb:24313;");

    cr_assert_eq(rs_state_batch_delete_contract(b, 2, "a"), 0);
    cr_assert_eq(rs_state_batch_delete_seen(b, 2, "ab", 0x11), 0);
    commit(st, b);
    cr_assert_eq(rs_state_get_seen(st, 2, "a", 0x11, &ch, NULL, err, sizeof err), 0);
    cr_assert_eq(rs_state_get_seen(st, 2, "ab", 0x11, &ch, NULL, err, sizeof err), 1);
    cr_assert_eq(rs_state_drop_partition(st, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_get_seen(st, 2, "a", 0x11, &ch, NULL, err, sizeof err), 1);
    cr_assert_eq(rs_state_get_seen(st, 3, "a", 0x11, &ch, NULL, err, sizeof err), 0);
    cr_assert_eq(ch, 0xcc);
    cr_assert_eq(rs_state_batch_put_seen(b, -1, "a", 1, 1, 1), -1);
    cr_assert_eq(rs_state_batch_put_seen(b, 1, "", 1, 1, 1), -1);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* ---- layout 2: one offsets key per contract; unlogged writes ---- */

Test(state, contract_offsets_share_one_key_latest_per_topic)
{
    char path[128], err[512] = "";
    static const char *const topics[] = {"contracts", "invoices", "payments", "usage"};
    const int64_t first[] = {5, -1, 7, -1}, second[] = {-1, 11, 9, -1};

    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_batch_t *b = new_batch();
    cr_assert_eq(rs_state_batch_put_contract_offsets(b, "K", topics, first, 4), 0);
    cr_assert_eq(rs_state_batch_count(b), 1, "four topics, one operation");
    commit(st, b);
    /* a later operation overrides per topic, leaves the others */
    cr_assert_eq(rs_state_batch_put_contract_offsets(b, "K", topics, second, 4), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "K", "usage", 3), 0);
    cr_assert_eq(rs_state_batch_put_contract_offset(b, "K", "usage", 2), 0);
    const int64_t none[] = {-1, -1, -1, -1};
    cr_assert_eq(rs_state_batch_put_contract_offsets(b, "K2", topics, none, 4), 0);
    cr_assert_eq(rs_state_batch_count(b), 3, "all -1 stages nothing");
    commit(st, b);
    cr_assert_eq(contract_offset(st, "K", "contracts", 0), 5);
    cr_assert_eq(contract_offset(st, "K", "invoices", 0), 11);
    cr_assert_eq(contract_offset(st, "K", "payments", 0), 9);
    cr_assert_eq(contract_offset(st, "K", "usage", 0), 2, "the last one staged, not the max");
    contract_offset(st, "K2", "usage", 1);
    contract_offset(st, "K", "refunds", 1);

    const char *ids[] = {"K", "K2", "K"};
    int64_t offs[3 * 4];
    cr_assert_eq(rs_state_get_contract_offsets(st, ids, 3, topics, 4, offs, err, sizeof err), 0,
                 "%s", err);
    const int64_t want[] = {5, 11, 9, 2, -1, -1, -1, -1, 5, 11, 9, 2};
    cr_assert_arr_eq(offs, want, sizeof want);
    /* one contract's topics from one point read: the same figures; a topic
     * the key does not hold is -1; a contract without offsets is 1 */
    static const char *const some[] = {"usage", "refunds", "contracts"};
    int64_t one[3] = {42, 42, 42};
    cr_assert_eq(rs_state_get_contract_topic_offsets(st, "K", some, 3, one, err, sizeof err), 0,
                 "%s", err);
    const int64_t want_one[] = {2, -1, 5};
    cr_assert_arr_eq(one, want_one, sizeof want_one);
    int64_t four[4] = {42, 42, 42, 42};
    cr_assert_eq(
        rs_state_get_contract_topic_offsets(st, "K2", topics, 4, four, err, sizeof err), 1);
    cr_assert_arr_eq(four, none, sizeof none);
    static const char *const bad[] = {"usage", ""};
    cr_assert_eq(rs_state_get_contract_topic_offsets(st, "K", bad, 2, one, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "topic") != NULL, "%s", err);
    /* the merged value survives a flush and a reopen */
    cr_assert_eq(rs_state_flush(st, err, sizeof err), 0, "%s", err);
    rs_state_destroy(st);
    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    cr_assert_eq(contract_offset(st, "K", "invoices", 0), 11);
    cr_assert_eq(contract_offset(st, "K", "usage", 0), 2);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* Merges (the offsets key) are not visible to RocksDB's C iteration of a
 * WriteBatch: they must survive a batch appended to another (the worker's
 * threads) and the key-ordered copy of a large batch, with their order. */
Test(state, merges_survive_append_and_the_sorted_write)
{
    char path[128], err[512] = "";
    static const char *const topics[] = {"contracts", "invoices", "payments", "usage"};

    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_batch_t *dst = new_batch(), *src = new_batch();
    char id[32], blob[32];
    /* more than RS_STATE_SORTED_WRITE_MIN operations, staged out of key
     * order, in two batches */
    for (int i = 299; i >= 0; i--) {
        rs_state_batch_t *b = i % 2 ? dst : src;
        snprintf(id, sizeof id, "C%03d", i);
        snprintf(blob, sizeof blob, "blob %d", i);
        cr_assert_eq(rs_state_batch_put_contract(b, 1, id, blob, strlen(blob)), 0);
        const int64_t first[] = {i, -1, 1000 + i, -1}, second[] = {-1, 2 * i, 7, -1};
        cr_assert_eq(rs_state_batch_put_contract_offsets(b, id, topics, first, 4), 0);
        cr_assert_eq(rs_state_batch_put_contract_offsets(b, id, topics, second, 4), 0);
    }
    /* a rolled-back merge leaves nothing behind */
    rs_state_batch_save_point(src);
    cr_assert_eq(rs_state_batch_put_contract_offset(src, "C000", "usage", 99), 0);
    cr_assert_eq(rs_state_batch_rollback(src), 0);
    cr_assert_eq(rs_state_batch_append(dst, src), 0);
    cr_assert_eq(rs_state_batch_count(src), 0);
    cr_assert_eq(rs_state_batch_count(dst), 900);
    commit(st, dst);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "C%03d", i);
        cr_assert_eq(contract_offset(st, id, "contracts", 0), i, "%s", id);
        cr_assert_eq(contract_offset(st, id, "invoices", 0), 2 * i, "%s", id);
        cr_assert_eq(contract_offset(st, id, "payments", 0), 7, "%s: the later merge", id);
    }
    contract_offset(st, "C000", "usage", 1);
    cr_assert_eq(rs_state_flush(st, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(dst);
    rs_state_batch_destroy(src);
    rs_state_destroy(st);
}

/* The id hash of contract i's k-th seen id in one_key_ops. */
static uint64_t one_key_id(int i, int k)
{
    return ((uint64_t)i << 8 | (uint64_t)k) * 0x9E3779B97F4A7C15ull;
}

/* Several operations on one key in one large batch (written as the
 * key-ordered copy, with hinted memtable inserts) give the store that
 * applying them one after the other gives. */
static void one_key_ops(rs_state_batch_t *b, const char *fmt, int n)
{
    char id[32], blob[32];
    for (int i = n - 1; i >= 0; i--) {
        snprintf(id, sizeof id, fmt, i);
        snprintf(blob, sizeof blob, "v1 %d", i);
        cr_assert_eq(rs_state_batch_put_contract(b, 3, id, blob, strlen(blob)), 0);
        const rs_state_seen_t a = {one_key_id(i, 0), 10u + (uint64_t)i, 24300, 0};
        const rs_state_seen_t c = {one_key_id(i, 1), 20u + (uint64_t)i, 24301, 0};
        cr_assert_eq(rs_state_batch_merge_seen(b, 3, id, &a, 1), 0);
        cr_assert_eq(rs_state_batch_put_contract_offset(b, id, "usage", i), 0);
        cr_assert_eq(rs_state_batch_merge_seen(b, 3, id, &c, 1), 0);
        cr_assert_eq(rs_state_batch_put_contract_offset(b, id, "usage", i + 1), 0);
        cr_assert_eq(rs_state_batch_put_contract_offset(b, id, "invoices", 2 * i), 0);
        if (i % 3 == 0)
            cr_assert_eq(rs_state_batch_delete_seen(b, 3, id, one_key_id(i, 0)), 0);
        snprintf(blob, sizeof blob, "v2 %d", i);
        if (i % 5 == 0)
            cr_assert_eq(rs_state_batch_put_contract(b, 3, id, blob, strlen(blob)), 0);
        if (i % 7 == 0)
            cr_assert_eq(rs_state_batch_delete_contract(b, 3, id), 0);
    }
}

static void expect_one_key_ops(rs_state_t *st, const char *fmt, int n)
{
    char id[32], blob[32], err[512] = "";
    for (int i = 0; i < n; i++) {
        uint64_t ch = 0;
        int32_t period = 0;
        snprintf(id, sizeof id, fmt, i);
        snprintf(blob, sizeof blob, "%s %d", i % 5 == 0 ? "v2" : "v1", i);
        if (i % 7 == 0)
            expect_no_contract(st, 3, id);
        else
            expect_contract_str(st, 3, id, blob);
        cr_assert_eq(
            rs_state_get_seen(st, 3, id, one_key_id(i, 0), &ch, &period, err, sizeof err),
            i % 3 == 0 ? 1 : 0, "%s: %s", id, err);
        cr_assert_eq(
            rs_state_get_seen(st, 3, id, one_key_id(i, 1), &ch, &period, err, sizeof err), 0,
            "%s: %s", id, err);
        cr_assert_eq(ch, 20u + (uint64_t)i, "%s", id);
        cr_assert_eq(period, 24301, "%s", id);
        cr_assert_eq(contract_offset(st, id, "usage", 0), i + 1, "%s: the later merge", id);
        cr_assert_eq(contract_offset(st, id, "invoices", 0), 2 * i, "%s", id);
    }
}

/* The copy's buffers, kept by the batch between commits, write nothing
 * stale; a range deletion after hinted inserts (RocksDB 7.8 shares one hint
 * table between the memtable's point keys and its range deletions:
 * KEY_DELETE_RANGE) leaves both skiplists sound (Debian's RocksDB asserts
 * on a corrupt splice: this test crashed with a 1-byte hint prefix). */
Test(state, a_keys_operations_in_a_large_batch_and_the_batch_reused)
{
    char path[128], err[512] = "";

    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_batch_t *b = new_batch(), *other = new_batch();
    one_key_ops(b, "C%03d", 300);
    commit(st, b);
    expect_one_key_ops(st, "C%03d", 300);
    /* the same batch again, smaller, on other keys: nothing of the first
     * commit (kept in its buffers) is written again */
    cr_assert_eq(rs_state_batch_delete_contract(other, 3, "C001"), 0);
    commit(st, other);
    one_key_ops(b, "D%03d", 100);
    commit(st, b);
    expect_no_contract(st, 3, "C001");
    expect_one_key_ops(st, "D%03d", 100);
    /* a range deletion after hinted inserts (KEY_DELETE_RANGE), then the
     * partition written again */
    cr_assert_eq(rs_state_drop_partition(st, 3, err, sizeof err), 0, "%s", err);
    expect_no_contract(st, 3, "D001");
    one_key_ops(b, "E%03d", 300);
    commit(st, b);
    expect_one_key_ops(st, "E%03d", 300);
    cr_assert_eq(rs_state_flush(st, err, sizeof err), 0, "%s", err);
    expect_one_key_ops(st, "E%03d", 300);
    rs_state_batch_destroy(b);
    rs_state_batch_destroy(other);
    rs_state_destroy(st);
}

/* A child commits a logged marker, then an unlogged write, and dies
 * (_exit: no close, no flush); with flush_first it flushes before dying. */
static void unlogged_child(const char *path, int flush_first)
{
    char err[512];
    rs_state_t *st = NULL;
    rs_state_batch_t *b = NULL;
    if (try_open(&st, path, 1, 0, RS_STATE_SYNC_ON, err, sizeof err) != 0 ||
        rs_state_batch_new(&b, err, sizeof err) != 0)
        _exit(2);
    rs_state_batch_put_meta(b, "marker", "1", 1);
    if (rs_state_batch_commit(st, b, err, sizeof err) != 0)
        _exit(3);
    rs_state_batch_put_contract(b, 0, "R", "restored", 8);
    rs_state_batch_put_contract_offset(b, "R", "usage", 4);
    if (rs_state_batch_commit_unlogged(st, b, err, sizeof err) != 0)
        _exit(4);
    if (flush_first && rs_state_flush(st, err, sizeof err) != 0)
        _exit(5);
    _exit(0);
}

Test(state, unlogged_writes_are_lost_in_a_crash_unless_flushed)
{
    char path[2][128], err[512] = "";
    /* both children first: a child forked after this process used RocksDB
     * would inherit its thread pool without the threads (a flush waits) */
    for (int flush_first = 0; flush_first <= 1; flush_first++) {
        path_in(path[flush_first], sizeof path[flush_first], flush_first ? "db1" : "db0");
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
            unlogged_child(path[flush_first], flush_first);
        int ws = 0;
        cr_assert_eq(waitpid(pid, &ws, 0), pid);
        cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %d", ws);
    }
    for (int flush_first = 0; flush_first <= 1; flush_first++) {
        void *blob = NULL;
        size_t len = 0;
        rs_state_t *st = open_at(path[flush_first], 0, 0, RS_STATE_SYNC_DEFAULT);
        cr_assert_eq(rs_state_get_meta(st, "marker", &blob, &len, err, sizeof err), 0,
                     "the logged marker survives: %s", err);
        rs_state_free(blob);
        if (flush_first) {
            expect_contract_str(st, 0, "R", "restored");
            cr_assert_eq(contract_offset(st, "R", "usage", 0), 4);
        } else {
            expect_no_contract(st, 0, "R");
            contract_offset(st, "R", "usage", 1);
        }
        rs_state_destroy(st);
    }
}

/* ---- ingested writes (rs_state_batch_commit_ingest: the restore's) ---- */

/* The operations of ingest_ops, staged in batch b: more than
 * RS_STATE_INGEST_MIN of them, out of key order, with a key put then
 * deleted, a key put twice, deletions and overwrites of keys stored
 * before, one offsets merge per contract; with twice_merged, also two
 * offsets merges of one contract (not one table entry: written as a
 * batch). */
static void ingest_ops(rs_state_batch_t *b, int twice_merged)
{
    static const char *const topics[] = {"contracts", "invoices", "payments", "usage"};
    char id[32], blob[32];
    for (int i = 2999; i >= 0; i--) {
        snprintf(id, sizeof id, "C%04d", i);
        snprintf(blob, sizeof blob, "v2-%d", i);
        const int64_t offs[] = {i, -1, 2 * i, -1};
        if (i % 10 == 3)
            cr_assert_eq(rs_state_batch_delete_contract(b, i % 3, id), 0);
        else
            cr_assert_eq(rs_state_batch_put_contract(b, i % 3, id, blob, strlen(blob)), 0);
        cr_assert_eq(rs_state_batch_put_contract_offsets(b, id, topics, offs, 4), 0);
        cr_assert_eq(rs_state_batch_put_seen(b, i % 3, id, 7, 70 + (uint64_t)i, 202601), 0);
        if (i % 7 == 0) /* put, then deleted in the same write */
            cr_assert_eq(rs_state_batch_delete_seen(b, i % 3, id, 7), 0);
        if (i % 5 == 0) /* put twice: the second one stays */
            cr_assert_eq(rs_state_batch_put_seen(b, i % 3, id, 7, 5, 202602), 0);
    }
    cr_assert_eq(rs_state_batch_put_meta(b, "changelog/0", "12345678", 8), 0);
    if (twice_merged) {
        cr_assert_eq(rs_state_batch_put_contract_offset(b, "C0001", "usage", 40), 0);
        cr_assert_eq(rs_state_batch_put_contract_offset(b, "C0001", "invoices", 41), 0);
    }
}

/* What every store in the ingest tests holds before the ingested write. */
static void ingest_before(rs_state_t *st)
{
    char id[32];
    rs_state_batch_t *b = new_batch();
    for (int i = 0; i < 3000; i += 2) {
        snprintf(id, sizeof id, "C%04d", i);
        cr_assert_eq(rs_state_batch_put_contract(b, i % 3, id, "v1", 2), 0);
        cr_assert_eq(rs_state_batch_put_contract_offset(b, id, "usage", 100 + i), 0);
        cr_assert_eq(rs_state_batch_put_seen(b, i % 3, id, 8, 1, 202512), 0);
    }
    commit(st, b);
    rs_state_batch_destroy(b);
}

/* st holds what ingest_before and ingest_ops leave, whichever way the
 * write was made. */
static void ingest_expect(rs_state_t *st, int twice_merged)
{
    char id[32], blob[32], err[512] = "";
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "C%04d", i);
        snprintf(blob, sizeof blob, "v2-%d", i);
        if (i % 10 == 3)
            expect_no_contract(st, i % 3, id);
        else
            expect_contract_str(st, i % 3, id, blob);
        cr_assert_eq(contract_offset(st, id, "contracts", 0), i);
        cr_assert_eq(contract_offset(st, id, "payments", 0), 2 * i);
        if (i % 2 == 0) /* merged with the value stored before */
            cr_assert_eq(contract_offset(st, id, "usage", 0), 100 + i);
        uint64_t ch = 0;
        int32_t period = 0;
        int rc = rs_state_get_seen(st, i % 3, id, 7, &ch, &period, err, sizeof err);
        if (i % 5 == 0) {
            cr_assert_eq(rc, 0, "C%04d: %s", i, err);
            cr_assert_eq(ch, 5);
            cr_assert_eq(period, 202602);
        } else if (i % 7 == 0)
            cr_assert_eq(rc, 1, "C%04d: deleted in the same write", i);
        else {
            cr_assert_eq(rc, 0, "C%04d: %s", i, err);
            cr_assert_eq(ch, 70 + (uint64_t)i);
        }
        if (i % 2 == 0)
            cr_assert_eq(rs_state_get_seen(st, i % 3, id, 8, &ch, &period, err, sizeof err), 0);
    }
    if (twice_merged) {
        cr_assert_eq(contract_offset(st, "C0001", "usage", 0), 40);
        cr_assert_eq(contract_offset(st, "C0001", "invoices", 0), 41);
    }
    void *v = NULL;
    size_t len = 0;
    cr_assert_eq(rs_state_get_meta(st, "changelog/0", &v, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 8);
    rs_state_free(v);
}

Test(state, ingested_writes_leave_what_a_batch_write_leaves)
{
    char path[128], err[512] = "";
    for (int twice = 0; twice <= 1; twice++) {
        for (int ingest = 0; ingest <= 1; ingest++) {
            char name[32];
            snprintf(name, sizeof name, "db%d%d", twice, ingest);
            path_in(path, sizeof path, name);
            rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
            ingest_before(st);
            rs_state_batch_t *b = new_batch();
            ingest_ops(b, twice);
            cr_assert_gt(rs_state_batch_count(b), 4096);
            int rc = ingest ? rs_state_batch_commit_ingest(st, b, err, sizeof err)
                            : rs_state_batch_commit(st, b, err, sizeof err);
            cr_assert_eq(rc, 0, "%s", err);
            cr_assert_eq(rs_state_batch_count(b), 0, "the batch is cleared");
            ingest_expect(st, twice);
            /* and again after a flush and a reopen */
            cr_assert_eq(rs_state_flush(st, err, sizeof err), 0, "%s", err);
            rs_state_destroy(st);
            st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
            ingest_expect(st, twice);
            rs_state_batch_destroy(b);
            rs_state_destroy(st);
        }
    }
}

/* A child ingests a large write and dies without a flush: the write is
 * there (a table file, not a memtable). */
Test(state, an_ingested_write_survives_a_crash_without_a_flush)
{
    char path[128], err[512];
    path_in(path, sizeof path, "db");
    fflush(NULL);
    pid_t pid = fork(); /* before this process uses RocksDB (see above) */
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        rs_state_t *st = NULL;
        rs_state_batch_t *b = NULL;
        if (try_open(&st, path, 1, 0, RS_STATE_SYNC_ON, err, sizeof err) != 0 ||
            rs_state_batch_new(&b, err, sizeof err) != 0)
            _exit(2);
        ingest_before(st);
        ingest_ops(b, 0);
        if (rs_state_batch_commit_ingest(st, b, err, sizeof err) != 0)
            _exit(4);
        _exit(0);
    }
    int ws = 0;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %d", ws);
    rs_state_t *st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    ingest_expect(st, 0);
    rs_state_destroy(st);
}

/* ---- seen ids packed per contract (layout 3) ---- */

/* The stored set after merges: one key per contract (a partition's scan
 * sees each id once, by contract then hash), the last operation of an id
 * wins (within one merge too), a delete removes, a prune drops exactly
 * the ids whose period is known and at or before its period; applying
 * the same operations to a copy in memory gives the same bytes. */
Test(state, seen_ids_are_one_merged_key_per_contract)
{
    char path[128], err[512] = "";
    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_batch_t *b = new_batch();
    const int32_t none = RS_STATE_SEEN_PERIOD_NONE;
    rs_state_seen_t first[] = {
        {30, 300, 24312, 0}, {10, 100, 24310, 0}, {20, 200, 24311, 0},
        {40, 400, none, 0},  {50, 500, 24313, 0}, {10, 101, 24310, 0}, /* 10 twice: last */
    };
    rs_state_seen_t second[] = {{20, 0, 0, 1}, {60, 600, 24311, 0}, {30, 333, 24314, 0}};
    void *mem = NULL;
    size_t memlen = 0;
    cr_assert_eq(rs_state_batch_merge_seen(b, 4, "K", first, 6), 0);
    cr_assert_eq(rs_state_batch_count(b), 1, "one operation for six ids");
    cr_assert_eq(rs_state_seen_set_apply(&mem, &memlen, first, 6, none), 0);
    commit(st, b);
    cr_assert_eq(rs_state_batch_merge_seen(b, 4, "K", second, 3), 0);
    cr_assert_eq(rs_state_batch_put_seen(b, 4, "J", 7, 70, 24300), 0);
    commit(st, b);
    cr_assert_eq(rs_state_seen_set_apply(&mem, &memlen, second, 3, none), 0);

    uint64_t ch = 0;
    int32_t period = 0;
    cr_assert_eq(rs_state_get_seen(st, 4, "K", 10, &ch, &period, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(ch, 101, "the last of two in one merge");
    cr_assert_eq(rs_state_get_seen(st, 4, "K", 20, &ch, NULL, err, sizeof err), 1, "deleted");
    cr_assert_eq(rs_state_get_seen(st, 4, "K", 30, &ch, &period, err, sizeof err), 0);
    cr_assert_eq(ch, 333);
    cr_assert_eq(period, 24314);
    cr_assert_eq(rs_state_get_seen(st, 3, "K", 30, &ch, NULL, err, sizeof err), 1);
    void *set = NULL;
    size_t len = 0;
    cr_assert_eq(rs_state_get_seen_set(st, 4, "K", &set, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_seen_set_count(set, len), 5);
    cr_assert_eq(len, memlen);
    cr_assert_eq(memcmp(set, mem, len), 0, "the copy in memory is the stored set");
    rs_state_free(set);
    cr_assert_eq(rs_state_get_seen_set(st, 4, "none", &set, &len, err, sizeof err), 1);
    cr_assert_null(set);

    /* prune through 24312: 10 (24310), 60 (24311) go; 30 (24314), 40
     * (unknown), 50 (24313) stay; J's 7 (24300) goes */
    cr_assert_eq(rs_state_batch_prune_seen(b, 4, "K", 24312), 0);
    cr_assert_eq(rs_state_batch_prune_seen(b, 4, "J", 24312), 0);
    commit(st, b);
    cr_assert_eq(rs_state_seen_set_apply(&mem, &memlen, NULL, 0, 24312), 0);
    static const uint64_t kept[] = {30, 40, 50}, gone[] = {10, 20, 60};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(rs_state_get_seen(st, 4, "K", kept[i], &ch, NULL, err, sizeof err), 0,
                     "%llu kept", (unsigned long long)kept[i]);
        cr_assert_eq(rs_state_get_seen(st, 4, "K", gone[i], &ch, NULL, err, sizeof err), 1,
                     "%llu pruned", (unsigned long long)gone[i]);
        cr_assert_eq(rs_state_seen_set_find(mem, memlen, kept[i], &ch, NULL), 1);
        cr_assert_eq(rs_state_seen_set_find(mem, memlen, gone[i], &ch, NULL), 0);
    }
    cr_assert_eq(rs_state_get_seen(st, 4, "J", 7, &ch, NULL, err, sizeof err), 1);
    cr_assert_eq(rs_state_get_seen_set(st, 4, "K", &set, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, memlen);
    cr_assert_eq(memcmp(set, mem, len), 0);
    rs_state_free(set);
    free(mem);

    /* after a flush, a compaction's merge gives the same (reopen reads SSTs) */
    cr_assert_eq(rs_state_flush(st, err, sizeof err), 0, "%s", err);
    rs_state_destroy(st);
    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    cr_assert_eq(rs_state_get_seen(st, 4, "K", 50, &ch, &period, err, sizeof err), 0);
    cr_assert_eq(ch, 500);
    cr_assert_eq(rs_state_batch_merge_seen(b, -1, "K", first, 1), -1);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}

/* A layout-2 store (a key per seen id, 0x50, written here as the old code
 * wrote them) is migrated at its first read-write open: every id is found
 * under its contract's 0x51 key, the 0x50 keys are gone, the layout key
 * says 3; a read-only open of a layout-2 store is refused naming the fix. */
Test(state, layout_2_store_is_migrated_once)
{
    static const unsigned char v2[] = {'R', 'S', 'S', 'T', 0, 0, 0, 2}; /* layout 2 */
    const unsigned char *lkey = LAYOUT_KEY;
    char path[128], err[512] = "";
    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_DEFAULT);
    rs_state_batch_t *b = new_batch();
    cr_assert_eq(rs_state_batch_put_contract(b, 1, "ab", "x", 1), 0);
    commit(st, b);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
    raw_put(path, lkey, sizeof LAYOUT_KEY, v2, sizeof v2);
    /* 0x50 BE32(partition) id 0x00 BE64(hash) -> BE64(content) BE32(period):
     * "a" and "ab" (a prefix) in partition 1, "a" in partition 2 */
    static const struct {
        int32_t p;
        const char *id;
        uint64_t h, ch;
        int32_t period;
    } old[] = {{1, "a", 0x0200000000000001ull, 11, 24310},
               {1, "a", 5, 12, 24311},
               {1, "ab", 5, 13, 24312},
               {2, "a", 5, 14, RS_STATE_SEEN_PERIOD_NONE},
               {1, "a", 0xff00000000000000ull, 15, 24313}};
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        unsigned char k[64], v[12];
        size_t idlen = strlen(old[i].id), n = 0;
        k[n++] = 0x50;
        for (int s = 24; s >= 0; s -= 8)
            k[n++] = (unsigned char)((uint32_t)old[i].p >> s);
        memcpy(k + n, old[i].id, idlen);
        n += idlen;
        k[n++] = 0;
        for (int s = 56; s >= 0; s -= 8)
            k[n++] = (unsigned char)(old[i].h >> s);
        for (int s = 56; s >= 0; s -= 8)
            v[7 - s / 8] = (unsigned char)(old[i].ch >> s);
        for (int s = 24; s >= 0; s -= 8)
            v[11 - s / 8] = (unsigned char)((uint32_t)old[i].period >> s);
        raw_put(path, k, n, v, sizeof v);
    }
    cr_assert_eq(try_open(&st, path, 0, 1, RS_STATE_SYNC_DEFAULT, err, sizeof err), -1);
    cr_assert(strstr(err, "layout version 2") && strstr(err, "migrated when opened read-write"),
              "%s", err);

    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT); /* migrates */
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        uint64_t ch = 0;
        int32_t period = 0;
        cr_assert_eq(
            rs_state_get_seen(st, old[i].p, old[i].id, old[i].h, &ch, &period, err, sizeof err),
            0, "%s", err);
        cr_assert_eq(ch, old[i].ch);
        cr_assert_eq(period, old[i].period);
    }
    char got[512] = "";
    cr_assert_eq(rs_state_foreach_seen(st, 1, collect_seen, got, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(got, "a:5:c:24311;a:200000000000001:b:24310;a:ff00000000000000:f:24313;"
                          "ab:5:d:24312;");
    void *blob = NULL;
    size_t len = 0;
    cr_assert_eq(rs_state_get_contract(st, 1, "ab", &blob, &len, err, sizeof err), 0);
    rs_state_free(blob);
    rs_state_destroy(st);

    /* the 0x50 keys are gone and the layout key says 3 (a raw read) */
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    char *rerr = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only(o, path, 0, &rerr);
    cr_assert_null(rerr, "%s", rerr);
    size_t vlen = 0;
    char *lv = rocksdb_get(db, ro, (const char *)lkey, sizeof LAYOUT_KEY, &vlen, &rerr);
    cr_assert(lv != NULL && vlen == 8 && lv[7] == 3, "layout key");
    rocksdb_free(lv);
    rocksdb_iterator_t *it = rocksdb_create_iterator(db, ro);
    unsigned char lo = 0x50;
    rocksdb_iter_seek(it, (const char *)&lo, 1);
    size_t klen = 0;
    cr_assert(!rocksdb_iter_valid(it) || (unsigned char)rocksdb_iter_key(it, &klen)[0] != 0x50,
              "no 0x50 key left");
    rocksdb_iter_destroy(it);
    rocksdb_close(db);
    rocksdb_readoptions_destroy(ro);
    rocksdb_options_destroy(o);
    /* opened again: layout 3, nothing to migrate, the ids still there */
    st = open_at(path, 0, 0, RS_STATE_SYNC_DEFAULT);
    uint64_t ch = 0;
    cr_assert_eq(rs_state_get_seen(st, 2, "a", 5, &ch, NULL, err, sizeof err), 0);
    cr_assert_eq(ch, 14);
    rs_state_destroy(st);
}

/* Random adds, deletes and prunes of 64 possible ids, 300 rounds: the set
 * kept in memory (rs_state_seen_set_apply: the merge with a base, its
 * fast path) and the stored one (merges read back: operands without a
 * base, the general path; a flush every 50 rounds) equal, byte for byte,
 * a plain model of what each operation means. */
Test(state, seen_sets_follow_a_model)
{
    char path[128], err[512] = "";
    path_in(path, sizeof path, "db");
    rs_state_t *st = open_at(path, 1, 0, RS_STATE_SYNC_OFF);
    rs_state_batch_t *b = new_batch();
    int64_t model_ch[64];
    int32_t model_period[64];
    for (int i = 0; i < 64; i++)
        model_ch[i] = -1;
    void *mem = NULL;
    size_t memlen = 0;
    uint64_t r = 88172645463325252ull;
    for (int round = 0; round < 300; round++) {
        rs_state_seen_t ids[64];
        char used[64] = {0};
        size_t n = 0;
        int32_t through = RS_STATE_SEEN_PERIOD_NONE;
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        size_t want = (size_t)(r % 12);
        for (size_t k = 0; k < want; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            int id = (int)(r % 64);
            if (used[id])
                continue;
            used[id] = 1;
            int forget = r % 5 == 0;
            int32_t period = r % 7 == 0 ? RS_STATE_SEEN_PERIOD_NONE : 24300 + (int32_t)(r % 40);
            ids[n++] = (rs_state_seen_t){(uint64_t)id * 0x9e3779b97f4a7c15ull, r >> 20, period,
                                         forget};
            model_ch[id] = forget ? -1 : (int64_t)(r >> 20);
            model_period[id] = period;
        }
        if (round % 9 == 8) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            through = 24300 + (int32_t)(r % 40);
            for (int i = 0; i < 64; i++)
                if (model_ch[i] >= 0 && model_period[i] != RS_STATE_SEEN_PERIOD_NONE &&
                    model_period[i] <= through)
                    model_ch[i] = -1;
        }
        cr_assert_eq(rs_state_batch_merge_seen(b, 0, "R", ids, n), 0);
        if (through != RS_STATE_SEEN_PERIOD_NONE)
            cr_assert_eq(rs_state_batch_prune_seen(b, 0, "R", through), 0);
        commit(st, b);
        cr_assert_eq(rs_state_seen_set_apply(&mem, &memlen, ids, n, through), 0);
        if (round % 50 == 49)
            cr_assert_eq(rs_state_flush(st, err, sizeof err), 0, "%s", err);
        void *set = NULL;
        size_t len = 0, count = 0;
        cr_assert_geq(rs_state_get_seen_set(st, 0, "R", &set, &len, err, sizeof err), 0);
        for (int i = 0; i < 64; i++) {
            uint64_t ch = 0;
            int32_t period = 0;
            int found = rs_state_seen_set_find(mem, memlen, (uint64_t)i * 0x9e3779b97f4a7c15ull,
                                               &ch, &period);
            cr_assert_eq(found, model_ch[i] >= 0, "round %d id %d", round, i);
            if (found) {
                cr_assert_eq(ch, (uint64_t)model_ch[i]);
                cr_assert_eq(period, model_period[i]);
                count++;
            }
        }
        cr_assert_eq(rs_state_seen_set_count(mem, memlen), count);
        cr_assert_eq(len, memlen, "round %d", round);
        cr_assert_eq(memcmp(set, mem, len), 0, "round %d: stored and kept sets differ", round);
        rs_state_free(set);
    }
    free(mem);
    rs_state_batch_destroy(b);
    rs_state_destroy(st);
}
