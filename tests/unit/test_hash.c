/*
 * test_hash — rs_fnv1a64 and rs_fnv1a32 (workers/base/rs_hash.h): FNV-1a's
 * published vectors, a hash continued piece by piece equals the hash of the
 * whole, the string variants equal the byte variants, and the short offset
 * basis some stored values were made with.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "rs_hash.h"

Test(hash, fnv1a64_known_vectors)
{
    cr_assert_eq(rs_fnv1a64("", 0), 0xcbf29ce484222325ULL);
    cr_assert_eq(rs_fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
    cr_assert_eq(rs_fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
    cr_assert_eq(RS_FNV1A64_BASIS, 14695981039346656037ULL);
    cr_assert_eq(RS_FNV1A64_PRIME, 1099511628211ULL);
    /* a NUL inside the bytes is hashed like any byte */
    cr_assert_neq(rs_fnv1a64("a\0b", 3), rs_fnv1a64("ab", 2));
}

Test(hash, update_continues_a_hash)
{
    const char *text = "contract-42/line-7";
    size_t n = strlen(text);
    uint64_t whole = rs_fnv1a64(text, n);
    for (size_t cut = 0; cut <= n; cut++) {
        uint64_t h = rs_fnv1a64_update(RS_FNV1A64_BASIS, text, cut);
        cr_assert_eq(rs_fnv1a64_update(h, text + cut, n - cut), whole, "cut at %zu", cut);
    }
    cr_assert_eq(rs_fnv1a64_update_str(RS_FNV1A64_BASIS, text), whole);
    cr_assert_eq(rs_fnv1a64_update_str(12345, ""), 12345);
    cr_assert_eq(rs_fnv1a64_update_str(12345, "x"), rs_fnv1a64_update(12345, "x", 1));
}

/* The offset basis without its last digit: journal numbers of exports and
 * dead-letter identities are stored made with it. */
Test(hash, short_basis_values)
{
    cr_assert_eq(RS_FNV1A64_SHORT_BASIS, 1469598103934665603ULL);
    cr_assert_eq(rs_fnv1a64_update_str(RS_FNV1A64_SHORT_BASIS, "a"), 0x44bd8ad473cd9906ULL);
    cr_assert_eq(rs_fnv1a64_update_str(RS_FNV1A64_SHORT_BASIS, "CONTRACT-WITH-A-LONG-ID#1"),
                 0xacd331f8116f1177ULL);
}

Test(hash, fnv1a32_known_vectors)
{
    cr_assert_eq(rs_fnv1a32("", 0), 0x811c9dc5u);
    cr_assert_eq(rs_fnv1a32("a", 1), 0xe40c292cu);
    cr_assert_eq(rs_fnv1a32("foobar", 6), 0xbf9cf968u);
    cr_assert_eq(rs_fnv1a32_str("foobar"), 0xbf9cf968u);
    cr_assert_eq(rs_fnv1a32_str(""), RS_FNV1A32_BASIS);
}
