/*
 * rs_state_offsets.c — the 0x30 values (a contract's applied offsets), the
 * "rs_offsets" merge operator (rs_state_offsets.h), and
 * rs_state_get_contract_offset, one topic through the read of a contract's
 * topics (rs_state_get_contract_topic_offsets, rs_state.c).
 *
 * Invariants: an entry is u8 topic length (1..RS_STATE_MAX_TOPIC_LEN),
 * topic, BE64 offset <= INT64_MAX; a value is whole entries, nothing after
 * the last. Parsing never reads past a value's length; whatever does not
 * parse is reported (-1, a failed merge), never repaired.
 *
 * The operator also merges the 0x51 keys (a contract's seen ids, state
 * layout 3; rs_state_seen.c): it dispatches on the key's first byte. It
 * keeps its name "rs_offsets" (the name stores were created with).
 *
 * Ownership: a merge result is malloc'd here and freed by RocksDB through
 * merge_free; the operator has no state.
 */
#include "rs_state_offsets.h"
#include "rs_bytes.h"
#include "rs_err.h"
#include "rs_state_keys.h"
#include "rs_state_seen.h"

#include <stdlib.h>
#include <string.h>

/* Append one entry at p; returns its length. */
size_t rs_state_off_entry(unsigned char *p, const char *topic, size_t tlen, int64_t offset)
{
    p[0] = (unsigned char)tlen;
    memcpy(p + 1, topic, tlen);
    rs_put_be64(p + 1 + tlen, (uint64_t)offset);
    return 1 + tlen + 8;
}

/* The next entry of v[0..len) at *pos: 1 one read (*topic, *tlen, *offset,
 * *pos advanced), 0 at the end, -1 malformed. */
static int off_next(const unsigned char *v, size_t len, size_t *pos,
                    const unsigned char **topic, size_t *tlen, uint64_t *offset)
{
    if (*pos == len)
        return 0;
    size_t t = v[*pos];
    if (t == 0 || len - *pos < 1 + t + 8)
        return -1;
    *topic = v + *pos + 1;
    *tlen = t;
    *offset = rs_get_be64(v + *pos + 1 + t);
    *pos += 1 + t + 8;
    return *offset > (uint64_t)INT64_MAX ? -1 : 1;
}

/* Find topic in the value: 1 found (*offset), 0 not, -1 malformed. */
int rs_state_off_find(const unsigned char *v, size_t len, const char *topic, size_t tlen,
                      int64_t *offset)
{
    size_t pos = 0, n = 0;
    const unsigned char *t = NULL;
    uint64_t u = 0;
    int r;
    while ((r = off_next(v, len, &pos, &t, &n, &u)) == 1)
        if (n == tlen && memcmp(t, topic, tlen) == 0) {
            *offset = (int64_t)u;
            return 1;
        }
    return r;
}

/* The merge: base (may be NULL) then the operands in order; per topic the
 * last entry wins. Entries are few (one per input topic), so a quadratic
 * search is fine. Returns a malloc'd value or NULL (malformed, no memory). */
static char *off_merge(const char *base, size_t baselen, const char *const *ops,
                       const size_t *oplens, int nops, size_t *outlen)
{
    size_t cap = baselen;
    for (int i = 0; i < nops; i++)
        cap += oplens[i];
    unsigned char *out = malloc(cap ? cap : 1);
    size_t n = 0;
    if (out == NULL)
        return NULL;
    for (int i = -1; i < nops; i++) {
        const unsigned char *v = (const unsigned char *)(i < 0 ? base : ops[i]);
        size_t len = i < 0 ? baselen : oplens[i], pos = 0, tlen = 0;
        const unsigned char *topic = NULL;
        uint64_t u = 0;
        int r;
        if (v == NULL)
            continue;
        while ((r = off_next(v, len, &pos, &topic, &tlen, &u)) == 1) {
            size_t q = 0, qt = 0;
            const unsigned char *t2 = NULL;
            uint64_t u2 = 0;
            for (size_t at = 0; off_next(out, n, &q, &t2, &qt, &u2) == 1; at = q)
                if (qt == tlen && memcmp(t2, topic, tlen) == 0) {
                    rs_put_be64(out + at + 1 + tlen, u); /* same topic: replace */
                    goto next;
                }
            n += rs_state_off_entry(out + n, (const char *)topic, tlen, (int64_t)u);
        next:;
        }
        if (r < 0) {
            free(out);
            return NULL;
        }
    }
    *outlen = n;
    return (char *)out;
}

static int is_seen_key(const char *key, size_t klen)
{
    return klen > 0 && (unsigned char)key[0] == K_SEEN_SET;
}

static char *merge_full(void *state, const char *key, size_t klen, const char *base,
                        size_t baselen, const char *const *ops, const size_t *oplens, int nops,
                        unsigned char *success, size_t *outlen)
{
    (void)state;
    char *v = is_seen_key(key, klen)
                  ? (char *)rs_state_seen_merge((const unsigned char *)base, baselen, ops,
                                                oplens, nops, outlen)
                  : off_merge(base, baselen, ops, oplens, nops, outlen);
    *success = v != NULL;
    return v;
}

/* A seen key's operands are records applied in order: their
 * concatenation is the one operand that does what they do. */
static char *seen_concat(const char *const *ops, const size_t *oplens, int nops, size_t *outlen)
{
    size_t len = 0;
    for (int i = 0; i < nops; i++)
        len += oplens[i];
    char *v = malloc(len ? len : 1);
    if (v == NULL)
        return NULL;
    len = 0;
    for (int i = 0; i < nops; i++) {
        memcpy(v + len, ops[i], oplens[i]);
        len += oplens[i];
    }
    *outlen = len;
    return v;
}

static char *merge_partial(void *state, const char *key, size_t klen, const char *const *ops,
                           const size_t *oplens, int nops, unsigned char *success,
                           size_t *outlen)
{
    if (is_seen_key(key, klen)) {
        char *v = seen_concat(ops, oplens, nops, outlen);
        *success = v != NULL;
        return v;
    }
    return merge_full(state, key, klen, NULL, 0, ops, oplens, nops, success, outlen);
}

static void merge_free(void *state, const char *v, size_t len)
{
    (void)state;
    (void)len;
    free((void *)v);
}

static void merge_destroy(void *state)
{
    (void)state;
}

static const char *merge_name(void *state)
{
    (void)state;
    return "rs_offsets";
}

rocksdb_mergeoperator_t *rs_state_offsets_merge_operator(void)
{
    return rocksdb_mergeoperator_create(NULL, merge_destroy, merge_full, merge_partial,
                                        merge_free, merge_name);
}

/* One topic: the read of all a contract's topics, for one (the CLI's use). */
int rs_state_get_contract_offset(rs_state_t *st, const char *contract_id, const char *topic,
                                 int64_t *offset, char *errstr, size_t errlen)
{
    const char *const topics[1] = {topic};
    if (!offset) {
        rs_errorf(errstr, errlen, "rs_state_get_contract_offset: NULL argument");
        return -1;
    }
    int rc =
        rs_state_get_contract_topic_offsets(st, contract_id, topics, 1, offset, errstr, errlen);
    return rc == 0 && *offset < 0 ? 1 : rc;
}
