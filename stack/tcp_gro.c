/* Software GRO (tcp.h: tcp_gro_run): the frames of one input batch that
 * continue an in-order TCP segment of an established connection are taken
 * with it as one larger segment, so TCP input runs once for the run
 * instead of once per 1500-byte frame (a link without offloads delivers
 * nothing larger). The rules are Linux's (tcp_gro_receive, inet_gro_receive):
 * same Ethernet header, IPv4 without options or fragmentation, same TOS,
 * TTL and DF, same ports, ACK number, window and option bytes (timestamps
 * included), contiguous sequence numbers, plain ACK flags (PSH ends the run
 * with its segment), every segment but the last as long as the first, at
 * most 64 KiB in all. Each continuation frame's IP header checksum is
 * verified here; its TCP checksum (unless the link vouched for it) as its
 * payload is copied into the receive buffer, in the same pass (tcp_input.c
 * write_slices): a bad one ends the run there and goes its own way, to be
 * counted and dropped. Only segments at
 * RCV.NXT are merged, so the out-of-order path never sees a merged one. */
#include <string.h>

#include "csum.h"
#include "tcp.h"
#include "tcp_int.h"

#define GRO_MAX_PAYLOAD 65000u          /* below IPv4's 65535 with headers */
#define TH_ACK 0x10
#define TH_PSH 0x08

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) << 16 | rd16(p + 2); }

/* The IPv4/TCP frame's TCP header and payload length, or NULL if it is not
 * a plain one (options-free IPv4, not a fragment, TCP header complete). */
static const uint8_t *tcp4_of(const struct tcpsm_frame *f, uint32_t *paylen)
{
    const uint8_t *e = f->data;
    if (f->len < 14 + 20 + 20 || f->plen[0] || rd16(e + 12) != 0x0800)
        return NULL;
    const uint8_t *ip = e + 14;
    uint32_t tot = rd16(ip + 2);
    if (ip[0] != 0x45 || ip[9] != 6 || (rd16(ip + 6) & 0x3fff) || tot > f->len - 14 || tot < 40)
        return NULL;
    const uint8_t *th = ip + 20;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    if (thl < 20 || thl > tot - 20)
        return NULL;
    *paylen = tot - 20 - thl;
    return th;
}

unsigned tcp_gro_run(struct tcpsm_stack *st, const struct tcpsm_frame *f, unsigned n,
                     struct tcp_slice *more, uint32_t *bytes)
{
    *bytes = 0;
    if (n < 2 || !st->tcp)
        return 0;
    uint32_t mss;
    const uint8_t *th = tcp4_of(&f[0], &mss);
    if (!th || mss == 0 || th[13] != TH_ACK)
        return 0;
    const uint8_t *ip = f[0].data + 14;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    struct tcpsm_addr src = addr_from_v4(rd32(ip + 12)), dst = addr_from_v4(rd32(ip + 16));
    struct tcpsm_sock *sk = tcp_ehash_find(st->tcp, &dst, rd16(th + 2), &src, rd16(th));
    uint32_t seq = rd32(th + 4);
    if (!sk || sk->state != TCPSM_ESTABLISHED || seq != sk->rcv_nxt)
        return 0;
    uint32_t next = seq + mss, total = mss;
    unsigned k = 0;
    for (unsigned i = 1; i < n; i++) {
        uint32_t len;
        const uint8_t *t = tcp4_of(&f[i], &len);
        if (!t || len == 0 || len > mss || total + len > GRO_MAX_PAYLOAD)
            break;
        const uint8_t *ip2 = f[i].data + 14;
        uint8_t fl = t[13];
        if ((fl != TH_ACK && fl != (TH_ACK | TH_PSH)) || rd32(t + 4) != next ||
            memcmp(f[i].data, f[0].data, 14) != 0 ||            /* Ethernet header */
            ip2[1] != ip[1] || ip2[8] != ip[8] ||                /* TOS, TTL */
            (ip2[6] & 0x40) != (ip[6] & 0x40) ||                /* DF */
            memcmp(ip2 + 12, ip + 12, 8) != 0 ||                /* addresses */
            memcmp(t, th, 4) != 0 ||                            /* ports */
            memcmp(t + 8, th + 8, 5) != 0 ||                    /* ACK number, data offset */
            rd16(t + 14) != rd16(th + 14) ||                    /* window */
            memcmp(t + 20, th + 20, thl - 20) != 0)             /* options */
            break;
        /* the IP header as ipv4_input checks it */
        if (csum_fold(csum_partial(ip2, 20, 0)) != 0)
            break;
        /* TCP's sum unless the link vouched: the header's part now, the
         * payload's as it is copied into the receive buffer */
        struct tcp_slice sl = { .data = t + thl, .len = len };
        if (!(f[i].flags & (TCPSM_FRAME_CSUM_VALID | TCPSM_FRAME_CSUM_PARTIAL))) {
            uint32_t l4 = thl + len;
            sl.check = true;
            sl.hsum = csum_partial(t, thl, csum_pseudo(rd32(ip2 + 12), rd32(ip2 + 16), 6,
                                                       (uint16_t)l4));
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
