/* struct tcpsm_addr helpers (internal header): IPv4 lives in the
 * IPv4-mapped form ::ffff:a.b.c.d (RFC 4291 2.5.5.2); all zero is "any". */
#ifndef TCPSM_ADDR_H
#define TCPSM_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tcpsm/core.h"

static inline bool addr_is_v4(const struct tcpsm_addr *a)
{
    static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a->b, pfx, 12) == 0;
}

static inline uint32_t addr_v4(const struct tcpsm_addr *a)
{
    return (uint32_t)a->b[12] << 24 | (uint32_t)a->b[13] << 16 | (uint32_t)a->b[14] << 8 |
           a->b[15];
}

static inline struct tcpsm_addr addr_from_v4(uint32_t v)
{
    struct tcpsm_addr a = { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, (uint8_t)(v >> 24),
                              (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v } };
    return a;
}

static inline struct tcpsm_addr addr_from6(const uint8_t b[16])
{
    struct tcpsm_addr a;
    memcpy(a.b, b, 16);
    return a;
}

static inline bool addr_eq(const struct tcpsm_addr *a, const struct tcpsm_addr *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static inline bool addr6_is_zero(const uint8_t *a)
{
    static const uint8_t z[16];
    return memcmp(a, z, 16) == 0;
}

static inline bool addr_is_any(const struct tcpsm_addr *a) { return addr6_is_zero(a->b); }

/* RFC 4291 2.4 */
static inline bool addr6_is_multicast(const uint8_t *a) { return a[0] == 0xff; }
static inline bool addr6_is_linklocal(const uint8_t *a) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }
static inline bool addr6_is_loopback(const uint8_t *a)
{
    static const uint8_t lo[16] = { [15] = 1 };
    return memcmp(a, lo, 16) == 0;
}

/* Same first plen bits. */
static inline bool addr6_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned plen)
{
    unsigned n = plen / 8, r = plen % 8;
    if (memcmp(a, b, n) != 0)
        return false;
    if (r == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - r));
    return (a[n] & m) == (b[n] & m);
}

/* The solicited-node multicast address ff02::1:ffXX:XXXX of a (RFC 4291 2.7.1). */
static inline void addr6_solicited(const uint8_t *a, uint8_t out[16])
{
    static const uint8_t pfx[13] = { 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff };
    memcpy(out, pfx, 13);
    memcpy(out + 13, a + 13, 3);
}

#endif
