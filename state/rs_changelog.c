/*
 * rs_changelog.c — changelog record formats and the restore (see
 * rs_changelog.h for the layout and the restore's invariants).
 *
 * Value formats (little-endian):
 *   contract: "RSC1" u8 flags(1 = deleted) i64[4] applied, blob (rest)
 *   meta:     "RSM1" u8 flags(1 = has meta, 2 = has plan) i64[4] next,
 *             u32 metalen, meta, plan in rs_pstate's format (rest)
 *
 * Ownership: the restore owns its consumer, its markers' batch, its two
 * windows and bulks and its writer thread; on every path through its one
 * exit label it joins the thread (a write in flight borrows a window's
 * messages) and frees the rest.
 */
#include "rs_changelog.h"
#include "rs_hash.h"
#include "rs_log.h"
#include "rs_state_bulk.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The 4 magic bytes that open a value (no NUL: not C strings). */
static const unsigned char C_MAGIC[4] = {'R', 'S', 'C', '1'};
static const unsigned char M_MAGIC[4] = {'R', 'S', 'M', '1'};
static const unsigned char S_MAGIC[4] = {'R', 'S', 'S', '1'};
static const unsigned char P_MAGIC[4] = {'R', 'S', 'S', '2'}; /* packed seen ids */
#define S_LEN (4 + 8 + 4)                                     /* magic, content hash, period */
#define PLAN_MAGIC 0x4c505352u /* "RSPL", rs_pstate's plan format */
#define F_DELETED 1
#define F_META 1
#define F_PLAN 2
#define HDR (4 + 1 + 8 * RS_CHANGELOG_TOPICS)

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void)
{
    return now_us() / 1000u;
}

static void put64(unsigned char *p, int64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)((uint64_t)v >> (8 * k));
}

static int64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return (int64_t)v;
}

void rs_changelog_pos_key(char *buf, size_t buflen, int32_t partition)
{
    snprintf(buf, buflen, "changelog/%d", (int)partition);
}

int rs_changelog_get_pos(rs_state_t *st, int32_t partition, int64_t *next, char *errstr,
                         size_t errlen)
{
    char key[48];
    void *blob = NULL;
    size_t len = 0;
    rs_changelog_pos_key(key, sizeof key, partition);
    int rc = rs_state_get_meta(st, key, &blob, &len, errstr, errlen);
    if (rc == 0 && len != 8)
        rc = 1; /* cleared */
    if (rc == 0)
        *next = get64(blob);
    rs_state_free(blob);
    return rc;
}

int rs_changelog_stage_pos(rs_state_batch_t *b, int32_t partition, int64_t next)
{
    char key[48];
    unsigned char v[8];
    rs_changelog_pos_key(key, sizeof key, partition);
    put64(v, next);
    return rs_state_batch_put_meta(b, key, v, sizeof v);
}

int rs_changelog_stage_clear_pos(rs_state_batch_t *b, int32_t partition)
{
    char key[48];
    rs_changelog_pos_key(key, sizeof key, partition);
    return rs_state_batch_put_meta(b, key, "", 0);
}

int rs_changelog_encode_contract(const int64_t applied[RS_CHANGELOG_TOPICS], int deleted,
                                 const void *blob, size_t len, void **out, size_t *outlen)
{
    unsigned char *p = malloc(HDR + len + 1);
    if (p == NULL)
        return -1;
    memcpy(p, C_MAGIC, sizeof C_MAGIC);
    p[4] = deleted ? F_DELETED : 0;
    for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
        put64(p + 5 + 8 * (size_t)t, applied[t]);
    if (len > 0)
        memcpy(p + HDR, blob, len);
    *out = p;
    *outlen = HDR + len;
    return 0;
}

int rs_changelog_encode_seen(const rs_seen_id_t *id, char *key, size_t keylen, void **out,
                             size_t *outlen)
{
    int n =
        snprintf(key, keylen, "s/%s/%016llx", id->contract_id, (unsigned long long)id->id_hash);
    if (n < 0 || (size_t)n >= keylen)
        return -1;
    *out = NULL;
    *outlen = 0;
    if (id->forget)
        return 0;
    unsigned char *p = malloc(S_LEN);
    if (p == NULL)
        return -1;
    memcpy(p, S_MAGIC, sizeof S_MAGIC);
    put64(p + 4, (int64_t)id->content_hash);
    for (int i = 0; i < 4; i++)
        p[12 + i] = (unsigned char)((uint32_t)id->period >> (8 * i));
    *out = p;
    *outlen = S_LEN;
    return 0;
}

int rs_changelog_encode_seen_pack(const char *contract_id, const rs_seen_id_t *ids, size_t n,
                                  char *key, size_t keylen, void **out, size_t *outlen)
{
    uint64_t digest = RS_FNV1A64_SHORT_BASIS; /* stored in the key: keep it */
    if (n == 0 || n > RS_CHANGELOG_SEEN_PACK_MAX)
        return -1;
    unsigned char *p = malloc(RS_CHANGELOG_SEEN_PACK_HDR + n * RS_CHANGELOG_SEEN_PACK_ID);
    if (p == NULL)
        return -1;
    memcpy(p, P_MAGIC, sizeof P_MAGIC);
    for (int i = 0; i < 4; i++)
        p[4 + i] = (unsigned char)((uint32_t)n >> (8 * i));
    for (size_t i = 0; i < n; i++) {
        unsigned char *q = p + RS_CHANGELOG_SEEN_PACK_HDR + i * RS_CHANGELOG_SEEN_PACK_ID;
        put64(q, (int64_t)ids[i].id_hash);
        put64(q + 8, (int64_t)ids[i].content_hash);
        for (int k = 0; k < 4; k++)
            q[16 + k] = (unsigned char)((uint32_t)ids[i].period >> (8 * k));
        digest = (digest ^ ids[i].id_hash) * RS_FNV1A64_PRIME;
    }
    /* "S/<contract>/<digest as 16 hex digits>" (no snprintf: once per
     * contract per sub-batch) */
    size_t cl = strlen(contract_id);
    if (cl + 20 > keylen) {
        free(p);
        return -1;
    }
    key[0] = 'S';
    key[1] = '/';
    memcpy(key + 2, contract_id, cl);
    key[2 + cl] = '/';
    for (int d = 0; d < 16; d++)
        key[3 + cl + d] = "0123456789abcdef"[(digest >> (60 - 4 * d)) & 0xf];
    key[19 + cl] = '\0';
    *out = p;
    *outlen = RS_CHANGELOG_SEEN_PACK_HDR + n * RS_CHANGELOG_SEEN_PACK_ID;
    return 0;
}

/* A packed seen-id record's contract id (from its key) and id count; 0 or
 * -1 when corrupt. */
static int decode_seen_pack(const rd_kafka_message_t *m, char *id, size_t *n)
{
    const char *k = m->key;
    const unsigned char *v = m->payload;
    if (k == NULL || m->key_len < 2 + 1 + 1 + 16 || k[0] != 'S' || k[1] != '/' ||
        k[m->key_len - 17] != '/' || v == NULL || m->len < RS_CHANGELOG_SEEN_PACK_HDR ||
        memcmp(v, P_MAGIC, sizeof P_MAGIC) != 0)
        return -1;
    size_t idlen = m->key_len - 2 - 17;
    if (idlen == 0 || idlen > RS_STATE_MAX_ID_LEN || memchr(k + 2, 0, idlen) != NULL)
        return -1;
    uint32_t cnt = 0;
    for (int i = 0; i < 4; i++)
        cnt |= (uint32_t)v[4 + i] << (8 * i);
    if (cnt == 0 || cnt > RS_CHANGELOG_SEEN_PACK_MAX ||
        m->len != RS_CHANGELOG_SEEN_PACK_HDR + (size_t)cnt * RS_CHANGELOG_SEEN_PACK_ID)
        return -1;
    memcpy(id, k + 2, idlen);
    id[idlen] = '\0';
    *n = cnt;
    return 0;
}

/* A seen-id record's contract id and id hash (from its key) and, unless it
 * is a tombstone (*put = 0), content hash and period. 0, or -1 corrupt. */
static int decode_seen(const rd_kafka_message_t *m, char *id, uint64_t *idh, int *put,
                       uint64_t *ch, int32_t *period)
{
    const char *k = m->key;
    if (k == NULL || m->key_len < 2 + 1 + 1 + 16 || k[0] != 's' || k[1] != '/' ||
        k[m->key_len - 17] != '/')
        return -1;
    size_t idlen = m->key_len - 2 - 17;
    if (idlen == 0 || idlen > RS_STATE_MAX_ID_LEN || memchr(k + 2, 0, idlen) != NULL)
        return -1;
    uint64_t h = 0;
    for (size_t i = m->key_len - 16; i < m->key_len; i++) {
        char c = k[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        h = h << 4 | (uint64_t)d;
    }
    memcpy(id, k + 2, idlen);
    id[idlen] = '\0';
    *idh = h;
    *put = m->payload != NULL;
    if (!*put)
        return 0;
    const unsigned char *v = m->payload;
    if (m->len != S_LEN || memcmp(v, S_MAGIC, sizeof S_MAGIC) != 0)
        return -1;
    *ch = (uint64_t)get64(v + 4);
    uint32_t p = 0;
    for (int i = 0; i < 4; i++)
        p |= (uint32_t)v[12 + i] << (8 * i);
    *period = (int32_t)p;
    return 0;
}

int rs_changelog_encode_meta(const void *meta, size_t metalen,
                             const int64_t next[RS_CHANGELOG_TOPICS],
                             const rs_plan_item_t *plan, size_t nplan, void **out,
                             size_t *outlen)
{
    size_t planlen = plan != NULL && nplan > 0 ? 8 + nplan * 9 : 0;
    size_t len = HDR + 4 + metalen + planlen;
    unsigned char *p;
    if (metalen > UINT32_MAX || nplan > UINT32_MAX || (p = malloc(len + 1)) == NULL)
        return -1;
    memcpy(p, M_MAGIC, sizeof M_MAGIC);
    p[4] = (unsigned char)((meta != NULL ? F_META : 0) | (planlen > 0 ? F_PLAN : 0));
    for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
        put64(p + 5 + 8 * (size_t)t, next[t]);
    for (int i = 0; i < 4; i++)
        p[HDR + i] = (unsigned char)((uint32_t)metalen >> (8 * i));
    if (metalen > 0)
        memcpy(p + HDR + 4, meta, metalen);
    unsigned char *q = p + HDR + 4 + metalen;
    if (planlen > 0) {
        for (int i = 0; i < 4; i++) {
            q[i] = (unsigned char)(PLAN_MAGIC >> (8 * i));
            q[4 + i] = (unsigned char)((uint32_t)nplan >> (8 * i));
        }
        for (size_t i = 0; i < nplan; i++) {
            q[8 + i * 9] = plan[i].topic;
            put64(q + 8 + i * 9 + 1, plan[i].offset);
        }
    }
    *out = p;
    *outlen = len;
    return 0;
}

/* Stage a contract or seen-id record (checked by contract_ok) into b; a
 * contract's applied offsets are `offs` (its own merged with those of the
 * records it superseded, see restore_win_t). A contract's blob is borrowed
 * from m, which the window keeps until the write. */
static void stage_record(rs_state_bulk_t *b, const rs_changelog_restore_args_t *a,
                         const rd_kafka_message_t *m, const int64_t offs[RS_CHANGELOG_TOPICS])
{
    const unsigned char *v = m->payload;
    const char *k = m->key;
    char id[RS_STATE_MAX_ID_LEN + 1];

    if (k[0] == 'S') { /* the record is the store's operand: one merge, borrowed */
        size_t n = 0;
        decode_seen_pack(m, id, &n);
        rs_state_bulk_merge_seen_packed(b, m->partition, id, v, m->len);
        return;
    }
    if (k[0] == 's') {
        uint64_t idh = 0, ch = 0;
        int32_t period = 0;
        int put = 0;
        decode_seen(m, id, &idh, &put, &ch, &period);
        if (put)
            rs_state_bulk_put_seen(b, m->partition, id, idh, ch, period);
        else
            rs_state_bulk_delete_seen(b, m->partition, id, idh);
        return;
    }
    size_t idlen = m->key_len - 2;
    memcpy(id, k + 2, idlen);
    id[idlen] = '\0';
    if (v[4] & F_DELETED)
        rs_state_bulk_delete_contract(b, m->partition, id);
    else
        rs_state_bulk_put_contract(b, m->partition, id, v + HDR, m->len - HDR);
    /* one operation for the four (layout 2): -1 entries are skipped */
    rs_state_bulk_put_contract_offsets(b, id, a->input_topics, offs, RS_CHANGELOG_TOPICS);
}

/* A meta record's flags, or -1 when it is corrupt. */
static int meta_flags(const rd_kafka_message_t *m)
{
    const unsigned char *v = m->payload;
    const char *k = m->key;
    if (k == NULL || m->key_len < 3 || k[0] != 'm' || k[1] != '/' || v == NULL ||
        m->len < HDR + 4 || memcmp(v, M_MAGIC, sizeof M_MAGIC) != 0)
        return -1;
    uint32_t metalen = 0;
    for (int i = 0; i < 4; i++)
        metalen |= (uint32_t)v[HDR + i] << (8 * i);
    if ((size_t)metalen > m->len - HDR - 4)
        return -1;
    if ((v[4] & F_PLAN) && m->len - HDR - 4 - metalen < 8)
        return -1;
    return v[4];
}

/* The net effect of the meta records read since the last write: the last
 * one sets plan/N (its plan, or none) and changelog/N; the last one with
 * meta sets engine/N; each input offset is the last one given (a final
 * record gives only the topics its batch consumed). The two messages are
 * kept (they may be the same). */
typedef struct meta_state {
    rd_kafka_message_t *last, *last_meta;
    int64_t next[RS_CHANGELOG_TOPICS];
} meta_state_t;

static void meta_clear(meta_state_t *ms)
{
    if (ms->last_meta != NULL && ms->last_meta != ms->last)
        rd_kafka_message_destroy(ms->last_meta);
    if (ms->last != NULL)
        rd_kafka_message_destroy(ms->last);
    ms->last = ms->last_meta = NULL;
    for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
        ms->next[t] = -1;
}

/* Take meta record m (checked by meta_flags) into ms; ms owns it. */
static void meta_note(meta_state_t *ms, rd_kafka_message_t *m)
{
    const unsigned char *v = m->payload;
    if (ms->last != NULL && ms->last != ms->last_meta)
        rd_kafka_message_destroy(ms->last);
    ms->last = m;
    if (v[4] & F_META) {
        if (ms->last_meta != NULL)
            rd_kafka_message_destroy(ms->last_meta);
        ms->last_meta = m;
        for (int t = 0; t < RS_CHANGELOG_TOPICS; t++) {
            int64_t off = get64(v + 5 + 8 * (size_t)t);
            if (off >= 0)
                ms->next[t] = off;
        }
    }
}

static void meta_stage(rs_state_bulk_t *b, const rs_changelog_restore_args_t *a,
                       const meta_state_t *ms)
{
    char key[48];
    unsigned char pos[8];
    if (ms->last == NULL)
        return;
    const unsigned char *v = ms->last->payload;
    uint32_t metalen = 0;
    for (int i = 0; i < 4; i++)
        metalen |= (uint32_t)v[HDR + i] << (8 * i);
    int32_t n = ms->last->partition;
    snprintf(key, sizeof key, "plan/%d", (int)n);
    if (v[4] & F_PLAN)
        rs_state_bulk_put_meta(b, key, v + HDR + 4 + metalen,
                               ms->last->len - HDR - 4 - metalen);
    else
        rs_state_bulk_put_meta(b, key, "", 0);
    if (ms->last_meta != NULL) {
        v = ms->last_meta->payload;
        metalen = 0;
        for (int i = 0; i < 4; i++)
            metalen |= (uint32_t)v[HDR + i] << (8 * i);
        snprintf(key, sizeof key, "engine/%d", (int)n);
        rs_state_bulk_put_meta(b, key, v + HDR + 4, metalen);
    }
    for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
        if (ms->next[t] >= 0)
            rs_state_bulk_put_input_offset(b, a->input_topics[t], n, ms->next[t]);
    rs_changelog_pos_key(key, sizeof key, n); /* as rs_changelog_stage_pos */
    put64(pos, ms->last->offset + 1);
    rs_state_bulk_put_meta(b, key, pos, sizeof pos);
}

static void restoring_key(char *buf, size_t buflen, int32_t partition)
{
    snprintf(buf, buflen, "restoring/%d", (int)partition);
}

int rs_changelog_restore_interrupted(rs_state_t *st, int32_t partition, char *errstr,
                                     size_t errlen)
{
    char key[48];
    void *blob = NULL;
    size_t len = 0;
    restoring_key(key, sizeof key, partition);
    int rc = rs_state_get_meta(st, key, &blob, &len, errstr, errlen);
    rs_state_free(blob);
    return rc < 0 ? -1 : rc == 0 && len > 0;
}

/* Set the restore markers of all of a->parts (each holds its `from`), in
 * one ordinary (logged) commit. */
static int mark_restoring(rs_state_t *st, rs_state_batch_t *b,
                          const rs_changelog_restore_args_t *a, char *errstr, size_t errlen)
{
    char key[48];
    unsigned char v[8];
    rs_state_batch_clear(b);
    for (size_t i = 0; i < a->nparts; i++) {
        restoring_key(key, sizeof key, a->parts[i].partition);
        put64(v, a->parts[i].from);
        if (rs_state_batch_put_meta(b, key, v, sizeof v) != 0) {
            snprintf(errstr, errlen, "changelog restore: %s", rs_state_batch_error(b));
            return -1;
        }
    }
    return rs_state_batch_commit(st, b, errstr, errlen);
}

int rs_changelog_restore_finish(rs_state_t *st, const int32_t *partitions, size_t n,
                                char *errstr, size_t errlen)
{
    rs_state_batch_t *b = NULL;
    char key[48];
    int rc = -1;
    if (n == 0)
        return 0;
    /* the unlogged restore writes reach the SST files first */
    if (rs_state_flush(st, errstr, errlen) != 0 || rs_state_batch_new(&b, errstr, errlen) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        restoring_key(key, sizeof key, partitions[i]);
        if (rs_state_batch_put_meta(b, key, "", 0) != 0) {
            snprintf(errstr, errlen, "changelog restore: %s", rs_state_batch_error(b));
            goto out;
        }
    }
    rc = rs_state_batch_commit(st, b, errstr, errlen);
out:
    rs_state_batch_destroy(b);
    return rc;
}

/* A contract (or seen-id) record's key and magic are sound (checked as it is read, though
 * it is staged only with its batch's final record). */
static int contract_ok(const rd_kafka_message_t *m)
{
    const char *k = m->key;
    if (k[0] == 'S') {
        char id[RS_STATE_MAX_ID_LEN + 1];
        size_t n = 0;
        return decode_seen_pack(m, id, &n) == 0;
    }
    if (k[0] == 's') {
        char id[RS_STATE_MAX_ID_LEN + 1];
        uint64_t idh, ch;
        int32_t period;
        int put;
        return decode_seen(m, id, &idh, &put, &ch, &period) == 0;
    }
    return k != NULL && m->key_len >= 3 && k[1] == '/' &&
           m->key_len - 2 <= RS_STATE_MAX_ID_LEN && memchr(k + 2, 0, m->key_len - 2) == NULL &&
           m->payload != NULL && m->len >= HDR &&
           memcmp(m->payload, C_MAGIC, sizeof C_MAGIC) == 0;
}

/* The contracts and seen ids read since the last meta record (messages
 * kept, not copied). */
typedef struct pending {
    rd_kafka_message_t **v;
    size_t n, cap;
} pending_t;

static void pending_drop(pending_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i] != NULL) /* NULL: moved to the window */
            rd_kafka_message_destroy(p->v[i]);
    p->n = 0;
}

/* The records of finished groups not written yet, one per changelog key:
 * a later record of a key supersedes the earlier one entirely, except for
 * a contract's applied offsets, merged per topic as the store's merge does
 * (rs_state.c). All of them are staged into one atomic write with the net
 * effect of the meta records (meta_state_t), which is what writing every
 * record in order would leave, so a contract that changed in many batches
 * (every month end writes every contract) costs one put, not one per batch.
 * Open addressing on the key; bounded by entries and bytes. */
typedef struct win_entry {
    rd_kafka_message_t *m;
    int64_t offs[RS_CHANGELOG_TOPICS];
} win_entry_t;

typedef struct restore_win {
    win_entry_t *e;
    size_t n, cap;  /* entries held, at most */
    uint32_t *slot; /* index + 1 into e, 0 empty; nslot a power of 2 >= 2 cap */
    size_t nslot, bytes;
} restore_win_t;

#define WIN_ENTRIES (RS_CHANGELOG_RESTORE_BATCH_OPS / 2) /* a contract is 2 operations */
#define WIN_BYTES ((size_t)16 * 1024 * 1024)

static int win_init(restore_win_t *w)
{
    w->cap = WIN_ENTRIES;
    for (w->nslot = 1; w->nslot < 2 * w->cap; w->nslot <<= 1)
        ;
    w->e = malloc(w->cap * sizeof *w->e);
    w->slot = calloc(w->nslot, sizeof *w->slot);
    return w->e != NULL && w->slot != NULL ? 0 : -1;
}

static void win_clear(restore_win_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        rd_kafka_message_destroy(w->e[i].m);
    if (w->n > 0)
        memset(w->slot, 0, w->nslot * sizeof *w->slot);
    w->n = 0;
    w->bytes = 0;
}

static void win_free(restore_win_t *w)
{
    if (w->e != NULL)
        win_clear(w);
    free(w->e);
    free(w->slot);
}

static int win_full(const restore_win_t *w)
{
    return w->n >= w->cap || w->bytes >= WIN_BYTES;
}

/* Take record m (checked by contract_ok) into the window; it owns it.
 * The caller keeps the window below win_full. */
static void win_add(restore_win_t *w, rd_kafka_message_t *m)
{
    const unsigned char *k = m->key, *v = m->payload;
    uint64_t h =
        rs_fnv1a64_update((RS_FNV1A64_SHORT_BASIS ^ (uint32_t)m->partition) * RS_FNV1A64_PRIME,
                          m->key, m->key_len);
    size_t i = (size_t)(h ^ (h >> 29)) & (w->nslot - 1);
    win_entry_t *e = NULL;
    for (; w->slot[i] != 0; i = (i + 1) & (w->nslot - 1)) {
        win_entry_t *x = &w->e[w->slot[i] - 1];
        if (x->m->partition == m->partition && x->m->key_len == m->key_len &&
            memcmp(x->m->key, k, m->key_len) == 0) {
            e = x;
            break;
        }
    }
    if (e == NULL) {
        e = &w->e[w->n++];
        w->slot[i] = (uint32_t)w->n;
        for (int t = 0; t < RS_CHANGELOG_TOPICS; t++)
            e->offs[t] = -1;
    } else {
        w->bytes -= e->m->len + e->m->key_len;
        rd_kafka_message_destroy(e->m);
    }
    e->m = m;
    w->bytes += m->len + m->key_len;
    if (k[0] == 'c')
        for (int t = 0; t < RS_CHANGELOG_TOPICS; t++) {
            int64_t off = get64(v + 5 + 8 * (size_t)t);
            if (off >= 0)
                e->offs[t] = off;
        }
}

/* One partition of a restore: its group in progress and the net effect
 * of its meta records not written yet. */
typedef struct part_ctx {
    rs_changelog_restore_part_t *p;
    pending_t pend;
    meta_state_t ms;
    int64_t next, groups;
    int plan_at_from, done;
} part_ctx_t;

/* Window entries in partition, then changelog order. */
static int cmp_entry_offset(const void *x, const void *y)
{
    const rd_kafka_message_t *a = ((const win_entry_t *)x)->m, *b = ((const win_entry_t *)y)->m;
    if (a->partition != b->partition)
        return a->partition < b->partition ? -1 : 1;
    return (a->offset > b->offset) - (a->offset < b->offset);
}

/* The restore's writes: records join the current window; a full window is
 * staged into its bulk and written while records join the other window
 * (RS_CHANGELOG_RESTORE_PIPELINE; else written at once). One write is in
 * flight at a time and the next one starts after it returned, so the
 * writes reach the store in order (a crash keeps a prefix of them, R2).
 * The window of a write in flight is not touched until it is joined: the
 * bulk borrows its messages' blobs. */
#ifndef RS_CHANGELOG_RESTORE_PIPELINE
#define RS_CHANGELOG_RESTORE_PIPELINE 1
#endif
#ifndef RS_CHANGELOG_RESTORE_LAST_THREADS
#define RS_CHANGELOG_RESTORE_LAST_THREADS 2
#endif

typedef struct restore_writer {
    rs_state_t *st;
    restore_win_t win[2];
    rs_state_bulk_t *bulk[2];
    int cur;  /* the window records join */
    int busy; /* win[!cur] is being written: 1 by th, 2 was on this thread */
    pthread_t th;
    uint64_t stage_us; /* of the write in flight */
    int rc;            /* of the last write */
    char err[512];
} restore_writer_t;

/* Write bulk[!cur] (window win[!cur]) and log what it took. */
static void *writer_run(void *arg)
{
    restore_writer_t *wr = arg;
    int i = !wr->cur;
    rs_state_bulk_stats_t s;
    wr->rc = rs_state_bulk_commit(wr->st, wr->bulk[i], wr->err, sizeof wr->err);
    rs_state_bulk_last_stats(wr->bulk[i], &s);
    if (wr->rc == 0)
        rs_logf(RS_LOG_DEBUG, "state",
                "restore_write records=%zu ops=%zu keys=%zu files=%zu stage_us=%llu "
                "sort_us=%llu files_us=%llu ingest_us=%llu",
                wr->win[i].n, s.ops, s.keys, s.files, (unsigned long long)wr->stage_us,
                (unsigned long long)s.sort_us, (unsigned long long)s.files_us,
                (unsigned long long)s.ingest_us);
    return NULL;
}

/* Wait for the write in flight, if any, and empty its window and bulk.
 * 0, or its error (errstr). */
static int writer_join(restore_writer_t *wr, char *errstr, size_t errlen)
{
    if (!wr->busy)
        return 0;
    if (wr->busy == 1)
        pthread_join(wr->th, NULL);
    wr->busy = 0;
    rs_state_bulk_clear(wr->bulk[!wr->cur]);
    win_clear(&wr->win[!wr->cur]);
    if (wr->rc != 0) {
        snprintf(errstr, errlen, "%s", wr->err);
        return -1;
    }
    return 0;
}

/* Stage the current window and every partition's meta records' effect
 * into one unlogged bulk write (rs_state_bulk: sorted keys, table files)
 * and start it (after the one in flight returned; `wait`: and wait for
 * it); records then join the other window. 0 or -1 (errstr). */
static int win_write(restore_writer_t *wr, const rs_changelog_restore_args_t *a, part_ctx_t *pc,
                     int wait, char *errstr, size_t errlen)
{
    uint64_t t0 = now_us();
    restore_win_t *w = &wr->win[wr->cur];
    rs_state_bulk_t *b = wr->bulk[wr->cur];
    /* in changelog order: an "s/" tombstone deletes an id an earlier "S/"
     * record put (different record keys, one store key) */
    qsort(w->e, w->n, sizeof *w->e, cmp_entry_offset);
    for (size_t i = 0; i < w->n; i++)
        stage_record(b, a, w->e[i].m, w->e[i].offs);
    for (size_t i = 0; i < a->nparts; i++) {
        meta_stage(b, a, &pc[i].ms);
        meta_clear(&pc[i].ms);
    }
    uint64_t staged = now_us() - t0;
    if (writer_join(wr, errstr, errlen) != 0)
        return -1;
    wr->stage_us = staged;
    /* the last write has the cores to itself: two files on two threads */
    rs_state_bulk_set_threads(b, wait ? RS_CHANGELOG_RESTORE_LAST_THREADS : 1);
    wr->cur = !wr->cur; /* the other window is empty now */
    wr->busy = 2;       /* written on this thread */
    if (RS_CHANGELOG_RESTORE_PIPELINE && !wait &&
        pthread_create(&wr->th, NULL, writer_run, wr) == 0) {
        wr->busy = 1;
        return 0;
    }
    writer_run(wr);
    return writer_join(wr, errstr, errlen);
}

/* Partition c is read to its end: its unfinished group is dropped, its
 * fetching paused. */
static void part_done(rd_kafka_t *rk, const rs_changelog_restore_args_t *a, part_ctx_t *c,
                      uint64_t t0, int64_t remaining)
{
    uint64_t ms = now_ms() - t0;
    c->done = 1;
    c->p->ms = ms;
    pending_drop(&c->pend);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, a->topic, c->p->partition);
    rd_kafka_pause_partitions(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (a->progress != NULL)
        a->progress(a->opaque, c->p->partition, c->p->records, remaining,
                    (int64_t)((uint64_t)c->p->records * 1000u / (ms + 1)), 1);
}

/* Record m of partition c (not past its high): kept with its group, or a
 * meta record that ends a group, whose records then join the window.
 * Takes m. 0, 1 when c is read to its end, -1 (errstr). */
static int restore_record(restore_writer_t *wr, const rs_changelog_restore_args_t *a,
                          part_ctx_t *pc, part_ctx_t *c, rd_kafka_message_t *m, char *errstr,
                          size_t errlen)
{
    int64_t moff = m->offset;
    const rs_changelog_restore_part_t *p = c->p;
    const char *k = m->key;
    c->next = moff + 1;
    if (k != NULL && m->key_len > 0 && (k[0] == 'c' || k[0] == 's' || k[0] == 'S')) {
        if (!contract_ok(m))
            goto corrupt;
        if (c->pend.n == c->pend.cap) {
            size_t cap = c->pend.cap ? c->pend.cap * 2 : 1024;
            rd_kafka_message_t **v = realloc(c->pend.v, cap * sizeof *v);
            if (v == NULL) {
                snprintf(errstr, errlen, "changelog restore: out of memory");
                rd_kafka_message_destroy(m);
                return -1;
            }
            c->pend.v = v;
            c->pend.cap = cap;
        }
        c->pend.v[c->pend.n++] = m; /* staged with its batch's final record */
        return c->next >= p->high;
    }
    int flags = meta_flags(m);
    if (flags < 0)
        goto corrupt;
    if (flags & F_PLAN) { /* a new batch: contracts before it never finished */
        pending_drop(&c->pend);
        if (moff == p->from)
            c->plan_at_from = 1;
    } else if (p->local_plan && c->plan_at_from && c->groups == 0 && moff == p->high - 1) {
        /* only our own unfinished batch: replay it */
        rd_kafka_message_destroy(m);
        return 1;
    } else {
        c->groups++;
    }
    /* the group's records join the window (a plan record has none) */
    for (size_t i = 0; i < c->pend.n; i++) {
        if (win_full(&wr->win[wr->cur]) && win_write(wr, a, pc, 0, errstr, errlen) != 0) {
            rd_kafka_message_destroy(m);
            return -1;
        }
        win_add(&wr->win[wr->cur], c->pend.v[i]);
        c->pend.v[i] = NULL;
    }
    c->pend.n = 0;
    meta_note(&c->ms, m);
    /* big writes, at group boundaries only (each sets changelog/N) */
    if (win_full(&wr->win[wr->cur]) && win_write(wr, a, pc, 0, errstr, errlen) != 0)
        return -1;
    return c->next >= p->high;
corrupt:
    snprintf(errstr, errlen, "changelog %s[%d] offset %lld: corrupt record", a->topic,
             (int)p->partition, (long long)moff);
    rd_kafka_message_destroy(m);
    return -1;
}

int rs_changelog_restore(rs_state_t *st, rs_changelog_restore_args_t *a, int64_t *records,
                         char *errstr, size_t errlen)
{
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *tpl = NULL;
    rs_state_batch_t *b = NULL; /* the markers' commit */
    restore_writer_t wr = {.st = st};
    part_ctx_t *pc = NULL;
    int32_t *slot = NULL; /* partition number -> index into pc + 1 (0 none) */
    int32_t maxp = 0;
    char kerr[512];
    int rc = -1;
    size_t left = a->nparts;
    int64_t total = 0, done = 0;
    uint64_t t0 = now_ms(), last = t0, deadline = t0 + (uint64_t)a->timeout_ms;
    /* the restore consumer fetches big and waits little; an offset the
     * changelog no longer holds (deleted after the caller read the low
     * watermark: a restore racing retention or the broker's trimming) is an
     * error, never a reset to the end or the start (librdkafka's default
     * resets to the end: the restore then read nothing and succeeded) */
    static const char *const settings[][2] = {
        {"enable.partition.eof", "true"},
        {"enable.auto.commit", "false"},
        {"max.partition.fetch.bytes", "16777216"},
        {"fetch.max.bytes", "67108864"},
        {"queued.min.messages", "200000"},
        {"fetch.wait.max.ms", "10"},
        {"auto.offset.reset", "error"},
    };

    *records = 0;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (rd_kafka_conf_set(a->conf, settings[i][0], settings[i][1], kerr, sizeof kerr) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(a->conf);
            snprintf(errstr, errlen, "changelog restore: %s", kerr);
            goto out;
        }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, a->conf, kerr, sizeof kerr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(a->conf);
        snprintf(errstr, errlen, "changelog restore: consumer: %s", kerr);
        goto out;
    }
    if (a->nparts == 0) {
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < a->nparts; i++) {
        if (a->parts[i].partition < 0 || a->parts[i].from < 0 ||
            a->parts[i].high <= a->parts[i].from) {
            snprintf(errstr, errlen, "changelog restore: %s[%d]: bad range %lld..%lld",
                     a->topic, (int)a->parts[i].partition, (long long)a->parts[i].from,
                     (long long)a->parts[i].high);
            goto out;
        }
        if (a->parts[i].partition > maxp)
            maxp = a->parts[i].partition;
        total += a->parts[i].high - a->parts[i].from;
    }
    pc = calloc(a->nparts, sizeof *pc);
    slot = calloc((size_t)maxp + 1, sizeof *slot);
    if (pc == NULL || slot == NULL || win_init(&wr.win[0]) != 0 || win_init(&wr.win[1]) != 0) {
        snprintf(errstr, errlen, "changelog restore: out of memory");
        goto out;
    }
    for (size_t i = 0; i < a->nparts; i++) {
        rs_changelog_restore_part_t *p = &a->parts[i];
        if (slot[p->partition] != 0) {
            snprintf(errstr, errlen, "changelog restore: %s[%d] given twice", a->topic,
                     (int)p->partition);
            goto out;
        }
        slot[p->partition] = (int32_t)i + 1;
        p->records = 0;
        p->ms = 0;
        pc[i].p = p;
        pc[i].next = p->from;
        pc[i].ms = (meta_state_t){NULL, NULL, {-1, -1, -1, -1}};
    }
    if (rs_state_batch_new(&b, errstr, errlen) != 0 ||
        rs_state_bulk_new(&wr.bulk[0], errstr, errlen) != 0 ||
        rs_state_bulk_new(&wr.bulk[1], errstr, errlen) != 0)
        goto out;
    /* R2: set before the first restored record is written, cleared after the last */
    if (mark_restoring(st, b, a, errstr, errlen) != 0)
        goto out;
    {
        /* the topic's metadata first: a partition assigned before its leader
         * is known waits for librdkafka's 1 s topic scan (seen: 1 restore in
         * 16 took 1 s more, all of it before the first record) */
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, a->topic, NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rkt != NULL &&
            rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(md);
        if (rkt != NULL)
            rd_kafka_topic_destroy(rkt);
    }
    tpl = rd_kafka_topic_partition_list_new((int)a->nparts);
    for (size_t i = 0; i < a->nparts; i++)
        rd_kafka_topic_partition_list_add(tpl, a->topic, a->parts[i].partition)->offset =
            a->parts[i].from;
    rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, tpl);
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errlen, "changelog restore: assign %s: %s", a->topic,
                 rd_kafka_err2str(aerr));
        goto out;
    }
    while (left > 0) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            for (size_t i = 0; i < a->nparts; i++)
                if (!pc[i].done) {
                    snprintf(errstr, errlen,
                             "changelog restore of %s[%d]: timed out at offset %lld of %lld "
                             "(no record for %ld ms)",
                             a->topic, (int)pc[i].p->partition, (long long)pc[i].next,
                             (long long)pc[i].p->high, a->timeout_ms);
                    break;
                }
            goto out;
        }
        if (a->progress != NULL && now - last >= 2000) {
            last = now;
            a->progress(a->opaque, -1, done, total - done,
                        (int64_t)((uint64_t)done * 1000u / (now - t0 + 1)), 0);
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        part_ctx_t *c = m->partition >= 0 && m->partition <= maxp && slot[m->partition] != 0
                            ? &pc[slot[m->partition] - 1]
                            : NULL;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
            m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            snprintf(errstr, errlen, "changelog restore of %s[%d]: %s", a->topic,
                     (int)m->partition, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            goto out;
        }
        if (c == NULL || c->done) { /* not ours, or past its end */
            rd_kafka_message_destroy(m);
            continue;
        }
        int end = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* below high: not yet visible, keep polling until the deadline */
            c->next = m->offset > c->next ? m->offset : c->next;
            end = c->next >= c->p->high;
            rd_kafka_message_destroy(m);
        } else if (m->offset >= c->p->high) {
            end = 1;
            rd_kafka_message_destroy(m);
        } else {
            int64_t before = c->next;
            deadline = now + (uint64_t)a->timeout_ms;
            c->p->records++;
            (*records)++;
            end = restore_record(&wr, a, pc, c, m, errstr, errlen);
            if (end < 0)
                goto out;
            done += c->next - before;
        }
        if (end) {
            done += c->p->high - c->next > 0 ? c->p->high - c->next : 0;
            left--;
            part_done(rk, a, c, t0, total - done);
        }
    }
    if (win_write(&wr, a, pc, 1, errstr, errlen) != 0)
        goto out;
    if (!a->defer_finish) {
        int32_t *ns = calloc(a->nparts, sizeof *ns);
        if (ns == NULL) {
            snprintf(errstr, errlen, "changelog restore: out of memory");
            goto out;
        }
        for (size_t i = 0; i < a->nparts; i++)
            ns[i] = a->parts[i].partition;
        int frc = rs_changelog_restore_finish(st, ns, a->nparts, errstr, errlen);
        free(ns);
        if (frc != 0)
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; pc != NULL && i < a->nparts; i++) {
        pending_drop(&pc[i].pend);
        free(pc[i].pend.v);
        meta_clear(&pc[i].ms);
    }
    free(pc);
    free(slot);
    if (wr.busy) { /* failed with a write in flight: wait for it */
        char e[8];
        writer_join(&wr, e, sizeof e);
    }
    win_free(&wr.win[0]);
    win_free(&wr.win[1]);
    if (tpl != NULL)
        rd_kafka_topic_partition_list_destroy(tpl);
    if (rk != NULL) {
        rd_kafka_assign(rk, NULL);
        /* never joined a group: nothing for a consumer close to do */
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    rs_state_bulk_destroy(wr.bulk[0]);
    rs_state_bulk_destroy(wr.bulk[1]);
    rs_state_batch_destroy(b);
    return rc;
}
