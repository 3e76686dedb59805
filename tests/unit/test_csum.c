/* Internet checksum (RFC 1071) against known vectors and a byte-wise reference. */
#include <criterion/criterion.h>

#include "net_helpers.h"

/* Straightforward RFC 1071 sum, one 16-bit word at a time. */
static uint16_t ref_csum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

Test(csum, rfc1071_example)
{
    /* RFC 1071 section 3: the sum of these bytes is ddf2, so the checksum is 220d. */
    static const uint8_t b[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
    cr_assert_eq(csum_fold(csum_partial(b, 8, 0)), 0x220d);
}

Test(csum, captured_ipv4_header)
{
    /* A captured UDP datagram's header (192.168.0.1 -> 192.168.0.199), checksum b861. */
    uint8_t h[20] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                      0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
    cr_assert_eq(csum_fold(csum_partial(h, 20, 0)), 0, "a correct header sums to zero");
    h[10] = h[11] = 0;
    cr_assert_eq(csum_fold(csum_partial(h, 20, 0)), 0xb861);
}

Test(csum, tcp_syn_with_options)
{
    /* 198.18.0.1:50000 -> 198.18.0.2:80 SYN, MSS 1460, SACK-permitted,
     * timestamps, window scale 7; checksum field zero. Expected value from an
     * independent (Python) RFC 1071 implementation. */
    static const uint8_t seg[40] = {
        0xc3, 0x50, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
        0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07 };
    uint32_t ph = csum_pseudo(IP(198, 18, 0, 1), IP(198, 18, 0, 2), 6, sizeof(seg));
    cr_assert_eq(csum_fold(csum_partial(seg, sizeof(seg), ph)), 0xfd44);
}

Test(csum, tcp_odd_length_payload)
{
    uint8_t seg[25] = { 0x00, 0x50, 0xc3, 0x50, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x07, 0xd0,
                        0x50, 0x18, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00 };
    memcpy(seg + 20, "hello", 5);
    uint32_t ph = csum_pseudo(IP(198, 18, 0, 1), IP(198, 18, 0, 2), 6, sizeof(seg));
    cr_assert_eq(csum_fold(csum_partial(seg, sizeof(seg), ph)), 0x1075);
    /* Chained: header, then payload (only the last chunk is odd). */
    uint32_t s = csum_partial(seg, 20, ph);
    cr_assert_eq(csum_fold(csum_partial(seg + 20, 5, s)), 0x1075);
    /* Verifying with the checksum in place gives zero. */
    wr16(seg + 16, 0x1075);
    cr_assert_eq(csum_fold(csum_partial(seg, sizeof(seg), ph)), 0);
}

Test(csum, matches_reference_any_length_and_alignment)
{
    static uint8_t buf[4096 + 8];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len < 300; len++)
            cr_assert_eq(csum_fold(csum_partial(buf + off, len, 0)), ref_csum(buf + off, len),
                         "off %zu len %zu", off, len);
    cr_assert_eq(csum_fold(csum_partial(buf + 3, 4096, 0)), ref_csum(buf + 3, 4096));
    /* frame-sized payloads, through the vector loop and its tails */
    for (size_t len = 1400; len < 1600; len++)
        cr_assert_eq(csum_fold(csum_partial(buf + 5, len, 0)), ref_csum(buf + 5, len),
                     "len %zu", len);
    /* All-ones data: sums must not lose carries. */
    memset(buf, 0xff, sizeof(buf));
    cr_assert_eq(csum_fold(csum_partial(buf, 4096, 0)), ref_csum(buf, 4096));
    cr_assert_eq(csum_fold(csum_partial(buf, 4096, 0xffffffffu)),
                 csum_fold(csum_partial(buf, 4096, 0xffff)), "partial sums fold the same");
}

/* The sum folded into the copy: the same sum as csum_partial and the same
 * bytes as memcpy, for every length and both ends misaligned; nothing
 * written past the end; chunks chained at odd offsets (a wrapping ring). */
Test(csum, copy_matches_sum_and_memcpy)
{
    static uint8_t src[2048 + 16], dst[2048 + 32];
    uint64_t x = 1234567891011ull;
    for (size_t i = 0; i < sizeof(src); i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        src[i] = (uint8_t)x;
    }
    size_t lens[] = { 0, 1, 2, 3, 7, 8, 9, 15, 63, 64, 65, 127, 128, 129, 1447, 1448, 1449, 2048 };
    for (size_t so = 0; so < 8; so++)
        for (size_t doff = 0; doff < 8; doff++)
            for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
                size_t len = lens[k];
                memset(dst, 0xa5, sizeof(dst));
                uint32_t s = csum_copy(dst + doff, src + so, len, 0x1234);
                cr_assert_eq(s, csum_partial(src + so, len, 0x1234), "so %zu do %zu len %zu",
                             so, doff, len);
                cr_assert(memcmp(dst + doff, src + so, len) == 0, "copy so %zu do %zu len %zu",
                          so, doff, len);
                for (size_t i = 0; i < doff; i++)
                    cr_assert_eq(dst[i], 0xa5, "written before the start");
                for (size_t i = doff + len; i < sizeof(dst); i++)
                    cr_assert_eq(dst[i], 0xa5, "written past the end (len %zu)", len);
            }
    /* split anywhere, odd or even: the chained sum is the whole one */
    for (size_t cut = 0; cut <= 301; cut += 7) {
        uint32_t s = csum_copy_at(dst, src + 1, cut, 0, 0);
        s = csum_copy_at(dst + cut, src + 1 + cut, 301 - cut, s, cut);
        cr_assert_eq(csum_fold(s), ref_csum(src + 1, 301), "cut %zu", cut);
        cr_assert(memcmp(dst, src + 1, 301) == 0);
    }
}

Test(csum, pseudo_header)
{
    /* 0xc612 + 0x0001 + 0xc612 + 0x0002 + 6 + 40 */
    cr_assert_eq(csum_pseudo(IP(198, 18, 0, 1), IP(198, 18, 0, 2), 6, 40),
                 0xc612u + 1 + 0xc612u + 2 + 6 + 40);
}
