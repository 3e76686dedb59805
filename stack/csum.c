/* Internet checksum (RFC 1071).
 *
 * The one's complement sum is byte-order independent (RFC 1071 2.(B)): we
 * add native 64-bit words, fold, and swap once at the end. Partial sums
 * passed between calls are in network-order value (as csum_pseudo makes
 * them), so only the last chunk of a chained sum may have odd length. */
#include "csum.h"

#include <string.h>

static uint32_t fold64(uint64_t s)
{
    s = (s & 0xffffffffu) + (s >> 32);
    s = (s & 0xffffffffu) + (s >> 32);
    return (uint32_t)s;
}

static uint16_t fold16(uint64_t s)
{
    uint32_t v = fold64(s);
    v = (v & 0xffff) + (v >> 16);
    v = (v & 0xffff) + (v >> 16);
    return (uint16_t)v;
}

uint32_t csum_partial(const void *p, size_t len, uint32_t sum)
{
    const uint8_t *b = p;
    uint64_t s = 0;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        s += w >> 32;
        s += w & 0xffffffffu;
        b += 8;
        len -= 8;
    }
    while (len >= 2) {
        uint16_t w;
        memcpy(&w, b, 2);
        s += w;
        b += 2;
        len -= 2;
    }
    if (len) {
        /* The odd byte is the high byte of a network-order word. */
        uint8_t last[2] = { b[0], 0 };
        uint16_t w;
        memcpy(&w, last, 2);
        s += w;
    }
    uint16_t n = fold16(s);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    n = (uint16_t)(n << 8 | n >> 8);
#endif
    uint64_t t = (uint64_t)sum + n;
    return fold64(t);
}

uint32_t csum_partial_at(const void *p, size_t len, uint32_t sum, size_t at)
{
    uint32_t s = csum_partial(p, len, 0);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    if (at & 1)
        s = ((s & 0xff) << 8) | (s >> 8);
    return fold64((uint64_t)sum + s);
}

uint16_t csum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

uint32_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len)
{
    uint64_t s = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + l4_len;
    return fold64(s);
}

uint32_t csum_pseudo6(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len)
{
    uint32_t s = csum_partial(src, 16, 0);
    s = csum_partial(dst, 16, s);
    uint64_t t = (uint64_t)s + (l4_len >> 16) + (l4_len & 0xffff) + proto;
    return fold64(t);
}
