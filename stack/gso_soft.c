/* Software segmentation and checksum completion (gso_soft.h). */
#include "gso_soft.h"

#include <string.h>

#include "csum.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

bool gso_soft_finish_csum(uint8_t *f, uint32_t len, uint32_t start, uint32_t off)
{
    if (start > len || off + 2 > len - start)
        return false;
    uint32_t pseudo = rd16(f + start + off);
    wr16(f + start + off, 0);
    wr16(f + start + off, csum_fold(csum_partial(f + start, len - start, pseudo)));
    return true;
}

/* One segment cut from a super-segment (Linux tcp_gso_segment): its
 * sequence number; FIN and PSH on the last segment only, CWR on the first
 * only; the checksum field cleared for the caller to fill. */
static void tcp_seg_fixup(uint8_t *th, uint32_t seq, bool first, bool last)
{
    th[4] = (uint8_t)(seq >> 24);
    th[5] = (uint8_t)(seq >> 16);
    th[6] = (uint8_t)(seq >> 8);
    th[7] = (uint8_t)seq;
    if (!last)
        th[13] &= (uint8_t)~(0x01 | 0x08);
    if (!first)
        th[13] &= (uint8_t)~0x80;
    wr16(th + 16, 0);
}

unsigned gso_soft_segment(const uint8_t *f, uint32_t len, uint32_t gso, uint8_t *scratch,
                          gso_soft_emit_fn emit, void *ctx)
{
    if (gso == 0 || len < 14 + 20 + 20)
        return 0;
    const uint8_t *ip = f + 14;
    bool v6 = rd16(f + 12) == 0x86DD;
    uint32_t ihl, l4len;
    if (rd16(f + 12) == 0x0800) {
        uint32_t tot = rd16(ip + 2);
        ihl = (uint32_t)(ip[0] & 0xf) * 4;
        if ((ip[0] >> 4) != 4 || ip[9] != 6 || ihl < 20 || tot > len - 14 || tot < ihl + 20)
            return 0;
        l4len = tot - ihl;
    } else if (v6) {
        ihl = 40;
        if (len < 14 + 40 + 20 || (ip[0] >> 4) != 6 || ip[6] != 6)
            return 0;
        l4len = rd16(ip + 4);
        if (l4len > len - 14 - 40 || l4len < 20)
            return 0;
    } else {
        return 0;
    }
    const uint8_t *th = ip + ihl;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    if (thl < 20 || thl >= l4len)
        return 0;               /* no payload: nothing to cut */
    uint32_t hl = 14 + ihl + thl, pay = l4len - thl;
    uint32_t seq0 = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
    uint16_t id0 = v6 ? 0 : rd16(ip + 4);
    unsigned i = 0;
    for (uint32_t off = 0; off < pay; off += gso, i++) {
        uint32_t n = pay - off < gso ? pay - off : gso;
        memcpy(scratch, f, hl);
        memcpy(scratch + hl, f + hl + off, n);
        uint8_t *sip = scratch + 14, *sth = sip + ihl;
        uint32_t pseudo;
        if (v6) {
            wr16(sip + 4, thl + n);
            pseudo = csum_pseudo6(sip + 8, sip + 24, 6, thl + n);
        } else {
            wr16(sip + 2, ihl + thl + n);
            wr16(sip + 4, (uint16_t)(id0 + i));
            wr16(sip + 10, 0);
            wr16(sip + 10, csum_fold(csum_partial(sip, ihl, 0)));
            uint32_t s = (uint32_t)rd16(sip + 12) << 16 | rd16(sip + 14);
            uint32_t d = (uint32_t)rd16(sip + 16) << 16 | rd16(sip + 18);
            pseudo = csum_pseudo(s, d, 6, (uint16_t)(thl + n));
        }
        tcp_seg_fixup(sth, seq0 + off, i == 0, off + n == pay);
        wr16(sth + 16, csum_fold(csum_partial(sth, thl + n, pseudo)));
        emit(ctx, scratch, hl + n);
    }
    return i;
}
