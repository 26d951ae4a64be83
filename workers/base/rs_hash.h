/*
 * rs_hash — FNV-1a 64, the one byte hash of the project (event digests,
 * contract slots, event and journal ids derived from text, dead-letter
 * identities, in-memory tables), and FNV-1a 32 for small in-memory tables.
 * Header-only; libc only.
 *
 * Invariants: the values are FNV-1a exactly (byte by byte: h ^= byte,
 * h *= the prime, modulo 2^64 or 2^32), independent of the machine's
 * endianness; several are stored (on disk, in exported files, in ids), so
 * they never change. rs_fnv1a64_update continues a hash: hashing "ab" is
 * updating the hash of "a" with "b". RS_FNV1A64_SHORT_BASIS is the offset
 * basis with its last digit missing (1469598103934665603, not
 * 14695981039346656037): the journal numbers of exports, the Postgres
 * sink's dead-letter identities and the changelog's seen-pack keys are
 * stored made with it, so they keep it (and the in-memory tables that used
 * it keep their values too); new code starts from RS_FNV1A64_BASIS.
 *
 * Ownership: none; pure functions of their arguments.
 */
#ifndef RS_HASH_H
#define RS_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RS_FNV1A64_BASIS 0xcbf29ce484222325ULL /* 14695981039346656037 */
#define RS_FNV1A64_PRIME 0x100000001b3ULL      /* 1099511628211 */
#define RS_FNV1A64_SHORT_BASIS 1469598103934665603ULL

/* The hash h continued over the n bytes at p. */
static inline uint64_t rs_fnv1a64_update(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * RS_FNV1A64_PRIME;
    return h;
}

/* The hash h continued over the bytes of the string s (not its NUL). */
static inline uint64_t rs_fnv1a64_update_str(uint64_t h, const char *s)
{
    for (const unsigned char *b = (const unsigned char *)s; *b; b++)
        h = (h ^ *b) * RS_FNV1A64_PRIME;
    return h;
}

/* FNV-1a 64 of the n bytes at p. */
static inline uint64_t rs_fnv1a64(const void *p, size_t n)
{
    return rs_fnv1a64_update(RS_FNV1A64_BASIS, p, n);
}

/* FNV-1a 32 (in-memory tables keyed by short strings: product names,
 * a sub-batch's contracts, the contract cache). */
#define RS_FNV1A32_BASIS 0x811c9dc5u /* 2166136261 */
#define RS_FNV1A32_PRIME 0x01000193u /* 16777619 */

/* FNV-1a 32 of the n bytes at p. */
static inline uint32_t rs_fnv1a32(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = RS_FNV1A32_BASIS;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * RS_FNV1A32_PRIME;
    return h;
}

/* FNV-1a 32 of the bytes of the string s (not its NUL). */
static inline uint32_t rs_fnv1a32_str(const char *s)
{
    uint32_t h = RS_FNV1A32_BASIS;
    for (const unsigned char *b = (const unsigned char *)s; *b; b++)
        h = (h ^ *b) * RS_FNV1A32_PRIME;
    return h;
}

#endif
