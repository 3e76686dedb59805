/* IPv4 for a host (RFC 791, RFC 1122 3.2.1): input validation, output
 * framing and the route (connected subnet + default gateway).
 *
 * Fragments are reassembled (ipv4_frag.c, bounded); we never fragment:
 * every datagram leaves with DF, and TCP follows the path MTU (RFC 1191). */
#include "ipv4.h"

#include <string.h>

#include "csum.h"
#include "eth.h"
#include "icmp.h"
#include "ipv4_frag.h"
#include "neigh.h"
#include "tcp.h"
#include "wire.h"

#define IP_DF      0x4000
#define IP_MF      0x2000
#define IP_OFFMASK 0x1fff
#define IP_TTL     64

static bool is_martian(uint32_t a)
{
    /* 0/8 "this network", 127/8 loopback, 224/4 multicast and 240/4 with the
     * limited broadcast: never a unicast peer (RFC 1122 3.2.1.3). */
    return (a >> 24) == 0 || (a >> 24) == 127 || (a >> 28) >= 0xe;
}

bool ipv4_on_link_host(const struct tcpsm_stack *st, uint32_t ip)
{
    if (!st->cfg.addr)
        return false;           /* an IPv6-only stack */
    if (((ip ^ st->cfg.addr) & st->netmask) != 0)
        return false;
    if (st->cfg.prefix_len >= 31)
        return true;
    uint32_t host = ip & ~st->netmask;
    return host != 0 && host != ~st->netmask;
}

uint32_t ipv4_route(const struct tcpsm_stack *st, uint32_t dst)
{
    /* Our own address is not routable: the stack has no loopback. */
    if (is_martian(dst) || dst == st->cfg.addr || !st->cfg.addr)
        return 0;
    if (((dst ^ st->cfg.addr) & st->netmask) == 0)
        return ipv4_on_link_host(st, dst) ? dst : 0;
    return st->cfg.gateway;
}

bool tcpsm_stack_routable(const struct tcpsm_stack *st, uint32_t dst)
{
    return ipv4_route(st, dst) != 0;
}

uint32_t ipv4_mtu_l4(const struct tcpsm_stack *st)
{
    uint32_t max = TCPSM_FRAME_MAX - ETH_HDR_LEN;
    uint32_t dmtu = stack_dev(st)->mtu;
    uint32_t mtu = dmtu > max ? max : dmtu;
    return mtu - IPV4_HDR_LEN;
}

bool ipv4_can_gso(const struct tcpsm_stack *st)
{
    const uint32_t need = TCPSM_NETDEV_F_TSO | TCPSM_NETDEV_F_SG | TCPSM_NETDEV_F_TX_CSUM;
    return (stack_dev(st)->features & need) == need;
}

uint32_t ipv4_max_l4(const struct tcpsm_stack *st)
{
    if (!ipv4_can_gso(st))
        return ipv4_mtu_l4(st);
    uint32_t gmax = stack_dev(st)->gso_max;
    uint32_t g = gmax && gmax < TCPSM_GSO_MAX ? gmax : TCPSM_GSO_MAX;
    uint32_t m = ipv4_mtu_l4(st) + IPV4_HDR_LEN;
    return (g > m ? g : m) - IPV4_HDR_LEN;
}

void ipv4_input(struct tcpsm_stack *st, const uint8_t *p, size_t len, uint64_t now)
{
    st->cnt.ip_in++;
    if (len < IPV4_HDR_LEN || (p[0] >> 4) != 4) {
        st->cnt.ip_drop_hdr++;
        return;
    }
    size_t ihl = (size_t)(p[0] & 0xf) * 4;
    size_t tot = get16(p + 2);
    /* Bytes past the total length are Ethernet padding. */
    if (ihl < IPV4_HDR_LEN || ihl > tot || tot > len) {
        st->cnt.ip_drop_hdr++;
        return;
    }
    if (csum_fold(csum_partial(p, ihl, 0)) != 0) {
        st->cnt.ip_drop_csum++;
        return;
    }
    uint32_t src = get32(p + 12), dst = get32(p + 16);
    if (dst != st->cfg.addr) {
        /* Other hosts' and broadcast datagrams: nothing here listens. */
        st->cnt.ip_drop_not_us++;
        return;
    }
    /* RFC 1122 3.2.1.3: discard datagrams from an invalid source. */
    if (is_martian(src) || src == st->cfg.addr) {
        st->cnt.ip_drop_hdr++;
        return;
    }
    uint16_t frag = get16(p + 6);
    if ((frag & IP_MF) || (frag & IP_OFFMASK)) {
        size_t whole;
        p = ipv4_frag_input(st, p, ihl, tot, now, &whole);
        if (!p)
            return;                     /* held, or dropped and counted */
        ihl = (size_t)(p[0] & 0xf) * 4;
        tot = whole;
    }
    /* Options (ihl > 5) are skipped: none changes what a host does here. */
    const uint8_t *l4 = p + ihl;
    size_t l4len = tot - ihl;
    switch (p[9]) {
    case IPPROTO_ICMP_:
        icmp_input(st, src, l4, l4len, now);
        break;
    case IPPROTO_TCP_:
        {
            struct tcpsm_addr s = addr_from_v4(src), d = addr_from_v4(dst);
            tcp_input(st, &s, &d, l4, l4len, now);
        }
        break;
    default:
        st->cnt.ip_drop_proto++;
        break;
    }
}

uint8_t *ipv4_out_begin(struct tcpsm_stack *st, size_t l4_len)
{
    st->txp_on = false;
    if (l4_len > ipv4_max_l4(st)) {
        st->cnt.tx_drop++;
        return NULL;
    }
    return eth_tx_slot(st) + ETH_HDR_LEN + IPV4_HDR_LEN;
}

void ipv4_out_commit(struct tcpsm_stack *st, uint32_t dst, uint8_t proto, size_t l4_len)
{
    ipv4_out_commit_tos(st, dst, proto, l4_len, 0, 0);
}

void ipv4_out_commit_tos(struct tcpsm_stack *st, uint32_t dst, uint8_t proto, size_t l4_len,
                         uint8_t tos, uint8_t ttl)
{
    uint32_t nexthop = ipv4_route(st, dst);
    if (nexthop == 0 || st->ntx >= TCPSM_TX_BATCH) {
        st->cnt.ip_drop_noroute++;
        st->txp_on = false;
        return;
    }
    uint8_t *f = st->txbuf[st->ntx];
    uint8_t *ip = f + ETH_HDR_LEN;
    size_t tot = IPV4_HDR_LEN + l4_len;
    ip[0] = 0x45;
    ip[1] = tos;
    put16(ip + 2, (uint16_t)tot);
    put16(ip + 4, st->ip_id++);
    put16(ip + 6, IP_DF);
    ip[8] = ttl ? ttl : IP_TTL;
    ip[9] = proto;
    put16(ip + 10, 0);
    put32(ip + 12, st->cfg.addr);
    put32(ip + 16, dst);
    put16(ip + 10, csum_fold(csum_partial(ip, IPV4_HDR_LEN, 0)));
    static const uint8_t unknown[ETH_ALEN];
    eth_write_hdr(f, unknown, st->cfg.mac, ETH_TYPE_IPV4);
    neigh_output(st, nexthop, f, ETH_HDR_LEN + tot, st->now);
    st->txp_on = false;
}
