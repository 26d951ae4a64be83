/*
 * rs_bytes — big-endian integers in byte buffers (state keys, the Confluent
 * wire header), and the UTF-8 byte-order mark. Header-only; the caller guarantees the buffer's
 * size.
 */
#ifndef RS_BYTES_H
#define RS_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline void rs_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t rs_get_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void rs_put_be64(unsigned char *p, uint64_t v)
{
    rs_put_be32(p, (uint32_t)(v >> 32));
    rs_put_be32(p + 4, (uint32_t)v);
}

static inline uint64_t rs_get_be64(const unsigned char *p)
{
    return ((uint64_t)rs_get_be32(p) << 32) | rs_get_be32(p + 4);
}

/* The length of a UTF-8 byte-order mark at the start of buf (3), or 0.
 * Readers of text files skip one at the start of a file: editors on
 * Windows write it, and it is not part of the first record. */
static inline size_t rs_utf8_bom_len(const char *buf, size_t len)
{
    return len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
                   (unsigned char)buf[2] == 0xBF
               ? 3
               : 0;
}

#endif
