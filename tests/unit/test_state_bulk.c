/*
 * test_state_bulk.c — rs_state_bulk: a large unlogged write staged into a
 * sorted key array and ingested as table files (the restore's writes).
 *
 * Each test stages real keys and values and reads them back through
 * rs_state's reads and scans: the same store as the same operations
 * committed as a batch, key order whatever the staging order, superseded
 * operations, empty and refused bulks, and a crash (a child that _exits
 * without a flush).
 */
#define _XOPEN_SOURCE 700 /* fork, _exit */
#include "rs_state.h"
#include "rs_state_bulk.h"
#include "rs_test_util.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* one temp dir per test: rs_test_dir */
TestSuite(state_bulk, .init = rs_test_dir_setup, .fini = rs_test_dir_teardown);

static const char *const TOPICS[] = {"contracts", "invoices", "payments", "usage"};

static int open_store(rs_state_t **st, const char *name, int create, char *err, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", rs_test_dir, name);
    rs_state_opts_t o = {.path = path, .create_if_missing = create};
    return rs_state_open(st, &o, err, n);
}

static rs_state_t *store(const char *name, int create)
{
    rs_state_t *st = NULL;
    char err[512] = "";
    cr_assert_eq(open_store(&st, name, create, err, sizeof err), 0, "open %s: %s", name, err);
    return st;
}

static rs_state_bulk_t *new_bulk(void)
{
    rs_state_bulk_t *k = NULL;
    char err[256] = "";
    cr_assert_eq(rs_state_bulk_new(&k, err, sizeof err), 0, "%s", err);
    cr_assert_eq(rs_state_bulk_count(k), 0);
    return k;
}

static void bulk_commit(rs_state_t *st, rs_state_bulk_t *k)
{
    char err[512] = "";
    cr_assert_eq(rs_state_bulk_commit(st, k, err, sizeof err), 0, "bulk commit: %s", err);
    cr_assert_eq(rs_state_bulk_count(k), 0, "the bulk is cleared");
}

/* The contract's blob as a string, "-" when absent. */
static void blob_of(rs_state_t *st, int32_t p, const char *id, char *out, size_t n)
{
    void *blob = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = rs_state_get_contract(st, p, id, &blob, &len, err, sizeof err);
    cr_assert_geq(rc, 0, "%s", err);
    snprintf(out, n, "%.*s", rc == 0 ? (int)len : 1, rc == 0 ? (const char *)blob : "-");
    rs_state_free(blob);
}

static int64_t coffset(rs_state_t *st, const char *id, const char *topic)
{
    int64_t off = -1;
    char err[512] = "";
    int rc = rs_state_get_contract_offset(st, id, topic, &off, err, sizeof err);
    cr_assert_geq(rc, 0, "%s", err);
    return rc == 0 ? off : -1;
}

/* Seen id's content hash, or -1 when absent. */
static int64_t seen(rs_state_t *st, int32_t p, const char *id, uint64_t h, int32_t *period)
{
    uint64_t ch = 0;
    char err[512] = "";
    int rc = rs_state_get_seen(st, p, id, h, &ch, period, err, sizeof err);
    cr_assert_geq(rc, 0, "%s", err);
    return rc == 0 ? (int64_t)ch : -1;
}

/* ---- the same operations as a batch or as a bulk ---- */

/* One operation list staged into a batch (k NULL) or a bulk (b NULL):
 * `n` contracts out of key order over 3 partitions, each with its offsets
 * (one merge), a seen id, a contract put then deleted or put twice, seen
 * ids put then deleted or put twice, a meta and an input offset. The
 * blobs are borrowed by the bulk: they live in blobs[] until the commit. */
static void stage_ops(rs_state_batch_t *b, rs_state_bulk_t *k, int n, char (*blobs)[32])
{
    char id[32];
    for (int i = n - 1; i >= 0; i--) {
        int32_t p = i % 3;
        snprintf(id, sizeof id, "C-%07d", (i * 7919) % n);
        snprintf(blobs[i], 32, "blob-%d", i);
        const int64_t offs[] = {i, -1, 2 * i, -1};
        size_t len = strlen(blobs[i]);
        if (b != NULL) {
            if (i % 10 == 3)
                rs_state_batch_delete_contract(b, p, id);
            else
                rs_state_batch_put_contract(b, p, id, blobs[i], len);
            if (i % 10 == 4) /* put twice: the second one stays */
                rs_state_batch_put_contract(b, p, id, "again", 5);
            rs_state_batch_put_contract_offsets(b, id, TOPICS, offs, 4);
            rs_state_batch_put_seen(b, p, id, 7, 70 + (uint64_t)i, 202601);
            if (i % 7 == 0)
                rs_state_batch_delete_seen(b, p, id, 7);
            if (i % 5 == 0)
                rs_state_batch_put_seen(b, p, id, 7, 5, 202602);
        } else {
            if (i % 10 == 3)
                cr_assert_eq(rs_state_bulk_delete_contract(k, p, id), 0);
            else
                cr_assert_eq(rs_state_bulk_put_contract(k, p, id, blobs[i], len), 0);
            if (i % 10 == 4)
                cr_assert_eq(rs_state_bulk_put_contract(k, p, id, "again", 5), 0);
            cr_assert_eq(rs_state_bulk_put_contract_offsets(k, id, TOPICS, offs, 4), 0);
            cr_assert_eq(rs_state_bulk_put_seen(k, p, id, 7, 70 + (uint64_t)i, 202601), 0);
            if (i % 7 == 0)
                cr_assert_eq(rs_state_bulk_delete_seen(k, p, id, 7), 0);
            if (i % 5 == 0)
                cr_assert_eq(rs_state_bulk_put_seen(k, p, id, 7, 5, 202602), 0);
        }
    }
    if (b != NULL) {
        rs_state_batch_put_meta(b, "changelog/0", "12345678", 8);
        rs_state_batch_put_input_offset(b, "usage", 2, 99);
    } else {
        cr_assert_eq(rs_state_bulk_put_meta(k, "changelog/0", "12345678", 8), 0);
        cr_assert_eq(rs_state_bulk_put_input_offset(k, "usage", 2, 99), 0);
    }
}

/* What the store held before the write: every other contract, with an
 * offset of another topic (merged with the write's) and a seen id. */
static void stage_before(rs_state_t *st, int n)
{
    char id[32], err[512] = "";
    rs_state_batch_t *b = NULL;
    cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
    for (int i = 0; i < n; i += 2) {
        snprintf(id, sizeof id, "C-%07d", (i * 7919) % n);
        rs_state_batch_put_contract(b, i % 3, id, "v1", 2);
        rs_state_batch_put_contract_offset(b, id, "usage", 100 + i);
        rs_state_batch_put_seen(b, i % 3, id, 8, 1, 202512);
    }
    cr_assert_eq(rs_state_batch_commit(st, b, err, sizeof err), 0, "%s", err);
    rs_state_batch_destroy(b);
}

/* st holds exactly what stage_before and stage_ops leave (values
 * asserted, not only compared). */
static void expect_ops(rs_state_t *st, int n)
{
    char id[32], got[64], want[32];
    for (int i = 0; i < n; i++) {
        int32_t p = i % 3, period = 0;
        snprintf(id, sizeof id, "C-%07d", (i * 7919) % n);
        snprintf(want, sizeof want, "%s", i % 10 == 3 ? "-" : i % 10 == 4 ? "again" : "");
        if (want[0] == '\0')
            snprintf(want, sizeof want, "blob-%d", i);
        blob_of(st, p, id, got, sizeof got);
        cr_assert_str_eq(got, want, "%s", id);
        cr_assert_eq(coffset(st, id, "contracts"), i, "%s", id);
        cr_assert_eq(coffset(st, id, "payments"), 2 * i, "%s", id);
        if (strcmp(id, "C-0000001") != 0) /* a_bulk_write_... merges it twice */
            cr_assert_eq(coffset(st, id, "invoices"), -1, "%s", id);
        cr_assert_eq(coffset(st, id, "usage"), i % 2 == 0 ? 100 + i : -1, "%s: merged", id);
        int64_t ch = seen(st, p, id, 7, &period);
        if (i % 5 == 0) {
            cr_assert_eq(ch, 5, "%s", id);
            cr_assert_eq(period, 202602);
        } else if (i % 7 == 0) {
            cr_assert_eq(ch, -1, "%s: deleted in the same write", id);
        } else {
            cr_assert_eq(ch, 70 + i, "%s", id);
            cr_assert_eq(period, 202601);
        }
        cr_assert_eq(seen(st, p, id, 8, NULL), i % 2 == 0 ? 1 : -1, "%s", id);
    }
    void *v = NULL;
    size_t len = 0;
    int64_t off = -1;
    char err[512] = "";
    cr_assert_eq(rs_state_get_meta(st, "changelog/0", &v, &len, err, sizeof err), 0, "%s", err);
    cr_assert(len == 8 && memcmp(v, "12345678", 8) == 0);
    rs_state_free(v);
    cr_assert_eq(rs_state_get_input_offset(st, "usage", 2, &off, err, sizeof err), 0);
    cr_assert_eq(off, 99);
}

/* Contracts of partition p in scan order, one "id=blob;" each. */
static int scan_cb(void *opaque, const char *id, const void *blob, size_t len)
{
    char *s = opaque;
    size_t at = strlen(s);
    snprintf(s + at, 400000 - at, "%s=%.*s;", id, (int)len, (const char *)blob);
    return 0;
}

static char *scan(rs_state_t *st, int32_t p)
{
    char *s = calloc(1, 400000), err[512] = "";
    cr_assert_not_null(s);
    cr_assert_eq(rs_state_foreach_contract(st, p, scan_cb, s, err, sizeof err), 0, "%s", err);
    return s;
}

/* Large (table files), small (one WriteBatch) and a write whose offsets
 * key is merged twice (a file cannot hold it: one WriteBatch): each leaves
 * what the batch leaves, before and after a flush and a reopen. */
Test(state_bulk, a_bulk_write_leaves_what_a_batch_write_leaves)
{
    static const int sizes[] = {3000, 300};
    char(*blobs)[32] = calloc(3000, 32);
    cr_assert_not_null(blobs);
    for (int s = 0; s < 2; s++) {
        for (int twice = 0; twice <= 1; twice++) {
            char name[2][32], err[512] = "";
            int n = sizes[s];
            rs_state_t *st[2];
            for (int bulk = 0; bulk <= 1; bulk++) {
                snprintf(name[bulk], sizeof name[bulk], "db%d%d%d", s, twice, bulk);
                st[bulk] = store(name[bulk], 1);
                stage_before(st[bulk], n);
            }
            rs_state_batch_t *b = NULL;
            cr_assert_eq(rs_state_batch_new(&b, err, sizeof err), 0);
            stage_ops(b, NULL, n, blobs);
            rs_state_bulk_t *k = new_bulk();
            rs_state_bulk_set_threads(k, 2); /* two files on two threads */
            stage_ops(NULL, k, n, blobs);
            if (twice) {
                rs_state_batch_put_contract_offset(b, "C-0000001", "invoices", 41);
                const int64_t o[] = {-1, 41, -1, -1};
                cr_assert_eq(rs_state_bulk_put_contract_offsets(k, "C-0000001", TOPICS, o, 4),
                             0);
            }
            size_t ops = rs_state_bulk_count(k);
            cr_assert_eq(ops, rs_state_batch_count(b));
            if (s == 0)
                cr_assert_gt(rs_state_bulk_count(k), 4096, "large enough for files");
            cr_assert_eq(rs_state_batch_commit(st[0], b, err, sizeof err), 0, "%s", err);
            bulk_commit(st[1], k);
            rs_state_bulk_stats_t ks;
            rs_state_bulk_last_stats(k, &ks);
            /* a key's merges are one operand: files even with C-0000001's two */
            cr_assert_eq(ks.files, s == 1 ? 0 : 2, "table files (0: a batch)");
            cr_assert_eq(ks.ops, ops);
            for (int round = 0; round < 2; round++) {
                for (int bulk = 0; bulk <= 1; bulk++) {
                    expect_ops(st[bulk], n);
                    cr_assert_eq(coffset(st[bulk], "C-0000001", "invoices"), twice ? 41 : -1);
                }
                for (int32_t p = 0; p < 3; p++) {
                    char *x = scan(st[0], p), *y = scan(st[1], p);
                    cr_assert_str_eq(x, y, "partition %d: the same contracts", (int)p);
                    free(x);
                    free(y);
                }
                for (int bulk = 0; bulk <= 1; bulk++) { /* flushed, closed, reopened */
                    cr_assert_eq(rs_state_flush(st[bulk], err, sizeof err), 0, "%s", err);
                    rs_state_destroy(st[bulk]);
                    st[bulk] = store(name[bulk], 0);
                }
            }
            rs_state_batch_destroy(b);
            rs_state_bulk_destroy(k);
            rs_state_destroy(st[0]);
            rs_state_destroy(st[1]);
        }
    }
    free(blobs);
}

/* ---- order ---- */

static int order_cb(void *opaque, const char *id, const void *blob, size_t len)
{
    char(*prev)[256] = opaque;
    cr_assert_lt(strcmp((*prev), id), 0, "scan order: \"%s\" then \"%s\"", *prev, id);
    cr_assert(len == strlen(id) && memcmp(blob, id, len) == 0, "%s: its own blob", id);
    snprintf(*prev, sizeof *prev, "%s", id);
    return 0;
}

/* Ids that are prefixes of each other, that share their first 16 key
 * bytes (a long run of equal sort prefixes), staged in a shuffled order,
 * with seen ids of one contract whose hashes share their high bytes: all
 * are found, and a scan visits the contracts in id order. */
Test(state_bulk, keys_are_sorted_whatever_the_staging_order)
{
    enum { N = 6000 };
    static char ids[N][48];
    int perm[N];
    uint64_t r = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)
            snprintf(ids[i], sizeof ids[i], "tenant-acme-contract-%05d", i);
        else if (i % 3 == 1)
            snprintf(ids[i], sizeof ids[i], "%d", i); /* "1", "10", "100": prefixes */
        else
            snprintf(ids[i], sizeof ids[i], "c%x", i);
        perm[i] = i;
    }
    for (int i = N - 1; i > 0; i--) { /* xorshift shuffle */
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int j = (int)(r % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    rs_state_t *st = store("db", 1);
    rs_state_bulk_t *k = new_bulk();
    for (int i = 0; i < N; i++) {
        const char *id = ids[perm[i]];
        cr_assert_eq(rs_state_bulk_put_contract(k, 5, id, id, strlen(id)), 0);
    }
    for (int i = 0; i < 40; i++) /* high bytes equal, low bytes differ */
        cr_assert_eq(rs_state_bulk_put_seen(k, 5, "tenant-acme-contract-00000",
                                            0xabcd000000000000ull | (uint64_t)(39 - i),
                                            (uint64_t)i, 202601),
                     0);
    bulk_commit(st, k);
    rs_state_bulk_stats_t ks;
    rs_state_bulk_last_stats(k, &ks);
    cr_assert_eq(ks.files, 1, "one table file (one thread by default)");
    cr_assert_eq(ks.keys, N + 1, "one seen key for the contract's 40 ids");
    char prev[256] = "", err[512] = "";
    cr_assert_eq(rs_state_foreach_contract(st, 5, order_cb, &prev, err, sizeof err), 0, "%s",
                 err);
    int count = 0;
    for (int i = 0; i < N; i++) {
        char got[64];
        blob_of(st, 5, ids[i], got, sizeof got);
        cr_assert_str_eq(got, ids[i]);
        count++;
    }
    cr_assert_eq(count, N);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(seen(st, 5, "tenant-acme-contract-00000",
                          0xabcd000000000000ull | (uint64_t)(39 - i), NULL),
                     i);
    rs_state_bulk_destroy(k);
    rs_state_destroy(st);
}

/* ---- superseded operations, empty and refused bulks ---- */

/* Many operations on few keys: the last one of each key stays (5,000
 * operations that are 3 keys: written as a batch), and a bulk that
 * refuses an argument writes nothing. */
Test(state_bulk, the_last_operation_of_a_key_stays)
{
    char err[512] = "", got[64];
    rs_state_t *st = store("db", 1);
    rs_state_bulk_t *k = new_bulk();
    bulk_commit(st, k); /* empty: nothing to do */
    static char vals[5000][16];
    for (int i = 0; i < 5000; i++) {
        snprintf(vals[i], sizeof vals[i], "v%d", i);
        cr_assert_eq(rs_state_bulk_put_contract(k, 0, "A", vals[i], strlen(vals[i])), 0);
        if (i % 2 == 0)
            cr_assert_eq(rs_state_bulk_put_seen(k, 0, "A", 1, (uint64_t)i, 202601), 0);
        else
            cr_assert_eq(rs_state_bulk_delete_seen(k, 0, "A", 1), 0);
    }
    cr_assert_eq(rs_state_bulk_delete_contract(k, 0, "B"), 0);
    cr_assert_eq(rs_state_bulk_put_contract(k, 0, "B", "b", 1), 0);
    bulk_commit(st, k);
    blob_of(st, 0, "A", got, sizeof got);
    cr_assert_str_eq(got, "v4999");
    blob_of(st, 0, "B", got, sizeof got);
    cr_assert_str_eq(got, "b", "a put after a delete");
    cr_assert_eq(seen(st, 0, "A", 1, NULL), -1, "the last operation was a delete");

    /* the same keys again in a large write: deletes over stored keys */
    for (int i = 0; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof id, "X%d", i);
        cr_assert_eq(rs_state_bulk_put_contract(k, 1, id, vals[i], strlen(vals[i])), 0);
    }
    cr_assert_eq(rs_state_bulk_delete_contract(k, 0, "A"), 0);
    cr_assert_eq(rs_state_bulk_put_seen(k, 0, "A", 1, 77, 202603), 0);
    bulk_commit(st, k);
    blob_of(st, 0, "A", got, sizeof got);
    cr_assert_str_eq(got, "-", "deleted by a table file's tombstone");
    cr_assert_eq(seen(st, 0, "A", 1, NULL), 77);
    blob_of(st, 1, "X4321", got, sizeof got);
    cr_assert_str_eq(got, "v4321");

    /* refused: nothing written, the error named */
    cr_assert_eq(rs_state_bulk_put_contract(k, 0, "C", "c", 1), 0);
    cr_assert_eq(rs_state_bulk_put_contract(k, -1, "D", "d", 1), -1);
    cr_assert_eq(rs_state_bulk_put_seen(k, 0, "", 1, 1, 1), -1);
    cr_assert_not_null(rs_state_bulk_error(k));
    cr_assert_neq(rs_state_bulk_commit(st, k, err, sizeof err), 0);
    cr_assert(strstr(err, "partition is negative") != NULL, "%s", err);
    blob_of(st, 0, "C", got, sizeof got);
    cr_assert_str_eq(got, "-");
    rs_state_bulk_clear(k);
    cr_assert_null(rs_state_bulk_error(k));
    bulk_commit(st, k);
    rs_state_bulk_destroy(k);
    rs_state_destroy(st);
}

/* ---- a crash ---- */

/* A child writes a large bulk (table files) and a small one (a WriteBatch
 * without the log), then dies without a flush or a close: the large one is
 * there, the small one is lost — a prefix of the writes, as R2 needs. */
Test(state_bulk, a_crash_keeps_the_ingested_files_and_a_prefix)
{
    char err[512] = "", got[64];
    fflush(NULL);
    pid_t pid = fork(); /* before this process uses RocksDB */
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        static char blobs[3000][32];
        rs_state_t *st = NULL;
        rs_state_bulk_t *k = NULL;
        if (open_store(&st, "db", 1, err, sizeof err) != 0 ||
            rs_state_bulk_new(&k, err, sizeof err) != 0)
            _exit(2);
        stage_before(st, 3000);
        stage_ops(NULL, k, 3000, blobs);
        if (rs_state_bulk_commit(st, k, err, sizeof err) != 0)
            _exit(3);
        rs_state_bulk_put_contract(k, 0, "late", "x", 1);
        if (rs_state_bulk_commit(st, k, err, sizeof err) != 0)
            _exit(4);
        _exit(0);
    }
    int ws = 0;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %d", ws);
    rs_state_t *st = store("db", 0);
    expect_ops(st, 3000);
    blob_of(st, 0, "late", got, sizeof got);
    cr_assert_str_eq(got, "-", "the unlogged small write is lost without a flush");
    rs_state_destroy(st);
}

/* ---- the changelog's packed seen records (layout 3) ---- */

/* A packed "S/" value: "RSS2", LE32 n, n x (LE64 hash, LE64 content,
 * LE32 period), the ids in the order given (not sorted). */
static size_t packed(unsigned char *p, const uint64_t *h, size_t n, uint64_t ch, int32_t period)
{
    memcpy(p, "RSS2", 4);
    for (int b = 0; b < 4; b++)
        p[4 + b] = (unsigned char)((uint32_t)n >> (8 * b));
    for (size_t i = 0; i < n; i++) {
        unsigned char *q = p + 8 + i * 20;
        for (int b = 0; b < 8; b++) {
            q[b] = (unsigned char)(h[i] >> (8 * b));
            q[8 + b] = (unsigned char)((ch + h[i]) >> (8 * b));
        }
        for (int b = 0; b < 4; b++)
            q[16 + b] = (unsigned char)((uint32_t)period >> (8 * b));
    }
    return 8 + n * 20;
}

/* A restore's seen records: several packed records of one contract (ids
 * out of order, one id again in a later record), an "s/" put and an "s/"
 * tombstone between them, staged in changelog order into a small bulk
 * (written as one WriteBatch) and into a large one (table files): both
 * leave one key per contract holding exactly the ids, the later record's
 * content for the repeated id, without the deleted one. A malformed
 * record is refused. */
Test(state_bulk, packed_seen_records_restore_as_one_key_per_contract)
{
    static unsigned char r1[8 + 3 * 20], r2[8 + 2 * 20], r3[8 + 20];
    static const uint64_t h1[] = {900, 5, 77}, h2[] = {77, 1000}, h3[] = {42};
    size_t l1 = packed(r1, h1, 3, 10, 24310), l2 = packed(r2, h2, 2, 20, 24311),
           l3 = packed(r3, h3, 1, 30, 24312);
    static char blobs[5000][16];
    for (int large = 0; large <= 1; large++) {
        char name[16], err[512] = "";
        snprintf(name, sizeof name, "db%d", large);
        rs_state_t *st = store(name, 1);
        rs_state_bulk_t *k = new_bulk();
        cr_assert_eq(rs_state_bulk_merge_seen_packed(k, 3, "K", r1, l1), 0);
        cr_assert_eq(rs_state_bulk_put_seen(k, 3, "K", 6, 66, 24310), 0);
        cr_assert_eq(rs_state_bulk_delete_seen(k, 3, "K", 5), 0);
        cr_assert_eq(rs_state_bulk_merge_seen_packed(k, 3, "K", r2, l2), 0);
        cr_assert_eq(rs_state_bulk_merge_seen_packed(k, 3, "J", r3, l3), 0);
        for (int i = 0; large && i < 5000; i++) {
            char id[16];
            snprintf(id, sizeof id, "X%d", i);
            snprintf(blobs[i], sizeof blobs[i], "v%d", i);
            cr_assert_eq(rs_state_bulk_put_contract(k, 3, id, blobs[i], strlen(blobs[i])), 0);
        }
        bulk_commit(st, k);
        rs_state_bulk_stats_t ks;
        rs_state_bulk_last_stats(k, &ks);
        cr_assert_eq(ks.files, large ? 1 : 0, "files (0: a batch)");
        cr_assert_eq(ks.keys, large ? 5002 : 2, "one key per contract");
        static const struct {
            uint64_t h;
            int64_t ch;
        } want[] = {{900, 910}, {5, -1}, {77, 97}, {1000, 1020}, {6, 66}};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            cr_assert_eq(seen(st, 3, "K", want[i].h, NULL), want[i].ch, "id %llu",
                         (unsigned long long)want[i].h);
        int32_t period = 0;
        cr_assert_eq(seen(st, 3, "J", 42, &period), 72);
        cr_assert_eq(period, 24312);
        void *set = NULL;
        size_t len = 0;
        cr_assert_eq(rs_state_get_seen_set(st, 3, "K", &set, &len, err, sizeof err), 0, "%s",
                     err);
        cr_assert_eq(rs_state_seen_set_count(set, len), 4);
        rs_state_free(set);
        r1[0] = 'X';
        cr_assert_eq(rs_state_bulk_merge_seen_packed(k, 3, "K", r1, l1), -1);
        cr_assert_eq(rs_state_bulk_merge_seen_packed(k, 3, "K", r2, l2 - 1), -1);
        r1[0] = 'R';
        rs_state_bulk_clear(k);
        rs_state_bulk_destroy(k);
        rs_state_destroy(st);
    }
}
