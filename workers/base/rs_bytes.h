/*
 * rs_bytes — big-endian integers in byte buffers (state keys, the Confluent
 * wire header). Header-only; the caller guarantees the buffer's size.
 */
#ifndef RS_BYTES_H
#define RS_BYTES_H

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

#endif
