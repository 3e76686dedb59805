/* Software GRO (tcp.h: tcp_gro_run): the frames of one input batch that
 * continue an in-order TCP segment of an established connection are taken
 * with it as one larger segment, so TCP input runs once for the run
 * instead of once per 1500-byte frame (a link without offloads delivers
 * nothing larger). The rules are Linux's (tcp_gro_receive,
 * inet_gro_receive, ipv6_gro_receive): same Ethernet header; IPv4 without
 * options or fragmentation with the same TOS, TTL and DF, or IPv6 without
 * extension headers with the same traffic class, flow label and hop
 * limit; same addresses, ports, ACK number, window and option bytes
 * (timestamps included), contiguous sequence numbers, plain ACK flags (PSH
 * ends the run with its segment), every segment but the last as long as
 * the first, at most 64 KiB in all. Each continuation frame's IPv4 header
 * checksum is verified here; its TCP checksum (unless the link vouched for
 * it) as its payload is copied into the receive buffer, in the same pass
 * (tcp_input.c write_slices): a bad one ends the run there and goes its
 * own way, to be counted and dropped. Only segments at RCV.NXT are merged,
 * so the out-of-order path never sees a merged one. */
#include <string.h>

#include "csum.h"
#include "tcp.h"
#include "tcp_int.h"

#define GRO_MAX_PAYLOAD 65000u          /* below IPv4's 65535 with headers */
#define TH_ACK 0x10
#define TH_PSH 0x08

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) << 16 | rd16(p + 2); }

/* The IPv4 or IPv6 TCP frame's TCP header and payload length, or NULL if
 * it is not a plain one (IPv4 without options, not a fragment; IPv6 with
 * TCP as its first next header; TCP header complete). *iphl: the IP
 * header's length (20 or 40). */
static const uint8_t *tcp_of(const struct tcpsm_frame *f, uint32_t *paylen, uint32_t *iphl)
{
    const uint8_t *e = f->data;
    if (f->len < 14 + 20 + 20 || f->plen[0])
        return NULL;
    const uint8_t *ip = e + 14;
    uint32_t tot;
    if (rd16(e + 12) == 0x0800) {
        tot = rd16(ip + 2);
        if (ip[0] != 0x45 || ip[9] != 6 || (rd16(ip + 6) & 0x3fff) || tot > f->len - 14 ||
            tot < 40)
            return NULL;
        *iphl = 20;
    } else if (rd16(e + 12) == 0x86dd) {
        if (f->len < 14 + 40 + 20 || (ip[0] >> 4) != 6 || ip[6] != 6)
            return NULL;
        tot = 40u + rd16(ip + 4);
        if (tot > f->len - 14 || tot < 60)
            return NULL;
        *iphl = 40;
    } else {
        return NULL;
    }
    const uint8_t *th = ip + *iphl;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    if (thl < 20 || thl > tot - *iphl)
        return NULL;
    *paylen = tot - *iphl - thl;
    return th;
}

/* The IP headers of two frames agree as GRO needs (Linux inet_gro_receive,
 * ipv6_gro_receive): IPv4: TOS, TTL, DF and the addresses (its own header
 * checksum verified, as ipv4_input would); IPv6: version, traffic class
 * and flow label, hop limit, the addresses. */
static bool ip_same(const uint8_t *ip, const uint8_t *ip2, uint32_t iphl)
{
    if (iphl == 20)
        return ip2[1] == ip[1] && ip2[8] == ip[8] &&             /* TOS, TTL */
               (ip2[6] & 0x40) == (ip[6] & 0x40) &&               /* DF */
               memcmp(ip2 + 12, ip + 12, 8) == 0 &&               /* addresses */
               csum_fold(csum_partial(ip2, 20, 0)) == 0;
    return memcmp(ip2, ip, 4) == 0 && ip2[7] == ip[7] &&          /* class, flow, hops */
           memcmp(ip2 + 8, ip + 8, 32) == 0;                      /* addresses */
}

unsigned tcp_gro_run(struct tcpsm_stack *st, const struct tcpsm_frame *f, unsigned n,
                     struct tcp_slice *more, uint32_t *bytes)
{
    *bytes = 0;
    if (n < 2 || !st->tcp)
        return 0;
    uint32_t mss, iphl;
    const uint8_t *th = tcp_of(&f[0], &mss, &iphl);
    if (!th || mss == 0 || th[13] != TH_ACK)
        return 0;
    const uint8_t *ip = f[0].data + 14;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    struct tcpsm_addr src = iphl == 20 ? addr_from_v4(rd32(ip + 12)) : addr_from6(ip + 8);
    struct tcpsm_addr dst = iphl == 20 ? addr_from_v4(rd32(ip + 16)) : addr_from6(ip + 24);
    struct tcpsm_sock *sk = tcp_ehash_find(st->tcp, &dst, rd16(th + 2), &src, rd16(th));
    uint32_t seq = rd32(th + 4);
    if (!sk || sk->state != TCPSM_ESTABLISHED || seq != sk->rcv_nxt)
        return 0;
    uint32_t next = seq + mss, total = mss;
    unsigned k = 0;
    for (unsigned i = 1; i < n; i++) {
        uint32_t len, iphl2;
        const uint8_t *t = tcp_of(&f[i], &len, &iphl2);
        if (!t || iphl2 != iphl || len == 0 || len > mss || total + len > GRO_MAX_PAYLOAD)
            break;
        const uint8_t *ip2 = f[i].data + 14;
        uint8_t fl = t[13];
        if ((fl != TH_ACK && fl != (TH_ACK | TH_PSH)) || rd32(t + 4) != next ||
            memcmp(f[i].data, f[0].data, 14) != 0 ||            /* Ethernet header */
            memcmp(t, th, 4) != 0 ||                            /* ports */
            memcmp(t + 8, th + 8, 5) != 0 ||                    /* ACK number, data offset */
            rd16(t + 14) != rd16(th + 14) ||                    /* window */
            memcmp(t + 20, th + 20, thl - 20) != 0 ||           /* options */
            !ip_same(ip, ip2, iphl))
            break;
        /* TCP's sum unless the link vouched: the header's part now, the
         * payload's as it is copied into the receive buffer */
        struct tcp_slice sl = { .data = t + thl, .len = len };
        if (!(f[i].flags & (TCPSM_FRAME_CSUM_VALID | TCPSM_FRAME_CSUM_PARTIAL))) {
            uint32_t l4 = thl + len;
            uint32_t ps = iphl == 20 ? csum_pseudo(rd32(ip2 + 12), rd32(ip2 + 16), 6, (uint16_t)l4)
                                     : csum_pseudo6(ip2 + 8, ip2 + 24, 6, l4);
            sl.check = true;
            sl.hsum = csum_partial(t, thl, ps);
        }
        more[k++] = sl;
        next += len;
        total += len;
        if (len < mss || (fl & TH_PSH))
            break;
    }
    *bytes = total - mss;
    return k;
}
