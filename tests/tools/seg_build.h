/* seg_build: the byte-level helpers the packet-crafting test tools share
 * (synflood, tcp_attack, syn_bench): big-endian stores and loads, a seeded
 * xorshift PRNG, a monotonic clock, and one IPv4+TCP segment builder whose
 * checksums come from the stack's own csum.c (RFC 1071). */
#ifndef TCPSM_TOOLS_SEG_BUILD_H
#define TCPSM_TOOLS_SEG_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "csum.h"

static inline void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v); }
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

/* xorshift64; the state is the caller's so that each tool seeds its own. */
static inline uint32_t xorshift32(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One IPv4 (no options, DF, TTL 64) + TCP segment at p: option bytes (a multiple of
 * 4, at most 40) then payload. Returns the IP datagram's length. */
static inline size_t seg_build_v4(uint8_t *p, uint16_t ip_id, uint32_t src, uint16_t sport,
                                  uint32_t dst, uint16_t dport, uint32_t seq, uint32_t ack,
                                  uint8_t flags, uint16_t win, const uint8_t *opt, size_t optlen,
                                  const void *data, size_t len)
{
    size_t thl = 20 + optlen, tot = 20 + thl + len;
    memset(p, 0, 20 + thl);
    p[0] = 0x45;
    put16(p + 2, (uint32_t)tot);
    put16(p + 4, ip_id);
    put16(p + 6, 0x4000);
    p[8] = 64;
    p[9] = 6;
    put32(p + 12, src);
    put32(p + 16, dst);
    put16(p + 10, csum_fold(csum_partial(p, 20, 0)));
    uint8_t *t = p + 20;
    put16(t, sport);
    put16(t + 2, dport);
    put32(t + 4, seq);
    put32(t + 8, ack);
    t[12] = (uint8_t)((thl / 4) << 4);
    t[13] = flags;
    put16(t + 14, win);
    if (optlen)
        memcpy(t + 20, opt, optlen);
    if (len)
        memcpy(t + thl, data, len);
    put16(t + 16, csum_fold(csum_partial(t, thl + len, csum_pseudo(src, dst, 6, (uint16_t)(thl + len)))));
    return tot;
}

#endif
