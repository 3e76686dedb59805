/* Software segmentation (gso_soft.c): what the in-memory link's TSO mode and
 * the impairment bridge do with a super-segment, checked segment by segment
 * against what Linux's tcp_gso_segment produces. */
#include <criterion/criterion.h>
#include <string.h>

#include "csum.h"
#include "gso_soft.h"

#define PAY 5000u
#define GSO 1448u

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p) { return (uint32_t)g16(p) << 16 | g16(p + 2); }

struct segs {
    unsigned n;
    uint8_t f[8][14 + 60 + 60 + GSO];
    uint32_t len[8];
};

static void collect(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct segs *s = ctx;
    cr_assert_lt(s->n, 8u);
    memcpy(s->f[s->n], seg, len);
    s->len[s->n++] = len;
}

/* Ethernet + IPv4 (id 0x1234) + TCP with 12 option bytes, seq 0xfffff000
 * (wraps inside the frame), flags CWR|PSH|ACK|FIN, payload i & 0xff. */
static uint32_t super4(uint8_t *f)
{
    memset(f, 0, 14 + 20 + 32 + PAY);
    f[12] = 0x08;
    uint8_t *ip = f + 14, *th = ip + 20;
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + 32 + PAY) >> 8), ip[3] = (uint8_t)(20 + 32 + PAY);
    ip[4] = 0x12, ip[5] = 0x34, ip[8] = 64, ip[9] = 6;
    memcpy(ip + 12, "\xc6\x12\x00\x01\xc6\x12\x00\x0a", 8);
    th[0] = 0x1f, th[1] = 0x90, th[2] = 0xc0, th[3] = 0x00;
    memcpy(th + 4, "\xff\xff\xf0\x00", 4);
    th[12] = 8 << 4;
    th[13] = 0x80 | 0x10 | 0x08 | 0x01;
    th[14] = 0xff;
    th[20] = 1, th[21] = 1, th[22] = 8, th[23] = 10;  /* NOP NOP TS */
    for (uint32_t i = 0; i < PAY; i++)
        th[32 + i] = (uint8_t)i;
    return 14 + 20 + 32 + PAY;
}

Test(gso_soft, ipv4_cut_at_gso_size_like_linux)
{
    static uint8_t f[14 + 20 + 32 + PAY], scratch[GSO_SOFT_SCRATCH(GSO)];
    static struct segs s;
    s.n = 0;
    uint32_t len = super4(f);
    cr_assert_eq(gso_soft_segment(f, len, GSO, scratch, collect, &s), 4u);
    cr_assert_eq(s.n, 4u);
    uint32_t off = 0;
    for (unsigned i = 0; i < s.n; i++) {
        const uint8_t *ip = s.f[i] + 14, *th = ip + 20;
        uint32_t n = i < 3 ? GSO : PAY - 3 * GSO;
        cr_assert_eq(s.len[i], 14 + 20 + 32 + n);
        cr_assert_eq(g16(ip + 2), 20 + 32 + n, "IP total length");
        cr_assert_eq(g16(ip + 4), 0x1234 + i, "IP ID advances per segment");
        cr_assert_eq(csum_fold(csum_partial(ip, 20, 0)), 0, "IP header checksum");
        cr_assert_eq(g32(th + 4), 0xfffff000u + off, "sequence number (wraps)");
        uint8_t fl = th[13];
        cr_assert_eq(!!(fl & 0x80), i == 0, "CWR on the first only");
        cr_assert_eq(!!(fl & 0x08), i == 3, "PSH on the last only");
        cr_assert_eq(!!(fl & 0x01), i == 3, "FIN on the last only");
        cr_assert(fl & 0x10);
        cr_assert_eq(memcmp(th + 20, f + 14 + 20 + 20, 12), 0, "options copied");
        cr_assert_eq(memcmp(th + 32, f + 14 + 20 + 32 + off, n), 0, "payload slice");
        uint32_t ps = csum_pseudo(g32(ip + 12), g32(ip + 16), 6, (uint16_t)(32 + n));
        cr_assert_eq(csum_fold(csum_partial(th, 32 + n, ps)), 0, "TCP checksum");
        off += n;
    }
}

Test(gso_soft, ipv6_cut_at_gso_size)
{
    static uint8_t f[14 + 40 + 20 + PAY], scratch[GSO_SOFT_SCRATCH(GSO)];
    static struct segs s;
    s.n = 0;
    memset(f, 0, sizeof(f));
    f[12] = 0x86, f[13] = 0xdd;
    uint8_t *ip = f + 14, *th = ip + 40;
    ip[0] = 0x60;
    ip[4] = (uint8_t)((20 + PAY) >> 8), ip[5] = (uint8_t)(20 + PAY);
    ip[6] = 6, ip[7] = 64;
    ip[8] = 0x20, ip[9] = 0x01, ip[11] = 2, ip[23] = 1;
    ip[24] = 0x20, ip[25] = 0x01, ip[27] = 2, ip[39] = 0x10;
    th[7] = 1, th[12] = 5 << 4, th[13] = 0x18;
    for (uint32_t i = 0; i < PAY; i++)
        th[20 + i] = (uint8_t)(i * 7);
    cr_assert_eq(gso_soft_segment(f, sizeof(f), GSO, scratch, collect, &s), 4u);
    uint32_t off = 0;
    for (unsigned i = 0; i < s.n; i++) {
        const uint8_t *sip = s.f[i] + 14, *sth = sip + 40;
        uint32_t n = i < 3 ? GSO : PAY - 3 * GSO;
        cr_assert_eq(g16(sip + 4), 20 + n, "payload length");
        cr_assert_eq(g32(sth + 4), 1 + off);
        cr_assert_eq(!!(sth[13] & 0x08), i == 3, "PSH on the last only");
        cr_assert_eq(memcmp(sth + 20, th + 20 + off, n), 0);
        uint32_t ps = csum_pseudo6(sip + 8, sip + 24, 6, 20 + n);
        cr_assert_eq(csum_fold(csum_partial(sth, 20 + n, ps)), 0, "TCP checksum");
        off += n;
    }
}

Test(gso_soft, refuses_what_is_not_a_tcp_super_segment)
{
    static uint8_t f[14 + 20 + 32 + PAY], scratch[GSO_SOFT_SCRATCH(GSO)];
    static struct segs s;
    s.n = 0;
    uint32_t len = super4(f);
    cr_assert_eq(gso_soft_segment(f, len, 0, scratch, collect, &s), 0u, "gso size 0");
    cr_assert_eq(gso_soft_segment(f, len - 1, GSO, scratch, collect, &s), 0u,
                 "IP length past the frame");
    f[14 + 9] = 17;
    cr_assert_eq(gso_soft_segment(f, len, GSO, scratch, collect, &s), 0u, "UDP");
    len = super4(f);
    f[14 + 2] = 0, f[14 + 3] = 20 + 32;
    cr_assert_eq(gso_soft_segment(f, len, GSO, scratch, collect, &s), 0u, "no payload");
    cr_assert_eq(s.n, 0u, "nothing emitted");
}

Test(gso_soft, finish_csum_completes_a_partial_sum)
{
    static uint8_t f[14 + 20 + 32 + PAY];
    uint32_t len = super4(f);
    uint8_t *ip = f + 14, *th = ip + 20;
    uint16_t ps = csum_fold(csum_pseudo(g32(ip + 12), g32(ip + 16), 6, 32 + PAY));
    /* CHECKSUM_PARTIAL: the field holds the (uncomplemented) pseudo-header sum */
    ps = (uint16_t)~ps;
    th[16] = (uint8_t)(ps >> 8), th[17] = (uint8_t)ps;
    cr_assert(gso_soft_finish_csum(f, len, 34, 16));
    uint32_t full = csum_pseudo(g32(ip + 12), g32(ip + 16), 6, 32 + PAY);
    cr_assert_eq(csum_fold(csum_partial(th, 32 + PAY, full)), 0);
    cr_assert_not(gso_soft_finish_csum(f, 40, 34, 16), "field past the frame");
    cr_assert_not(gso_soft_finish_csum(f, 40, 60, 0), "start past the frame");
}
