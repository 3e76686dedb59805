/* IPv6 for a host (RFC 8200): input validation, extension headers, output
 * framing, the route (on-link prefix, link-local, default router) and the
 * source address choice.
 *
 * Extension headers (RFC 8200 4): Hop-by-Hop (first only) and Destination
 * Options are walked option by option and unknown options acted on by
 * their two high bits (4.2); a Routing header with Segments Left 0 is
 * skipped, any other is answered with a Parameter Problem (4.4; type 0 is
 * deprecated, RFC 5095); an atomic fragment (offset 0, M 0) is processed as
 * a whole datagram (RFC 6946); other fragments are reassembled
 * (ipv6_frag.c, bounded). */
#include "ipv6.h"

#include <string.h>

#include "addr.h"
#include "eth.h"
#include "icmp6.h"
#include "ipv4.h"
#include "ipv6_frag.h"
#include "nd.h"
#include "neigh.h"
#include "tcp.h"
#include "wire.h"

#define NH_HOPOPTS  0
#define NH_TCP      6
#define NH_ROUTING  43
#define NH_FRAGMENT 44
#define NH_NONE     59
#define NH_DSTOPTS  60

bool ipv6_is_ours(const struct tcpsm_stack *st, const uint8_t *a)
{
    if (!st->v6.on)
        return false;
    if (memcmp(a, st->cfg.addr6, 16) == 0)
        return st->v6.dad[0] != ND_ADDR_DUPLICATE;
    if (memcmp(a, st->v6.ll, 16) == 0)
        return st->v6.dad[1] != ND_ADDR_DUPLICATE;
    return false;
}

const uint8_t *ipv6_src_for(const struct tcpsm_stack *st, const uint8_t *dst)
{
    if (!st->v6.on)
        return NULL;
    /* RFC 6724 rule 2 (scope) for the two addresses a host has. */
    bool ll = addr6_is_linklocal(dst) || (addr6_is_multicast(dst) && (dst[1] & 0xf) <= 2);
    int i = ll ? 1 : 0;
    if (st->v6.dad[i] == ND_ADDR_DUPLICATE)
        return NULL;
    return i ? st->v6.ll : st->cfg.addr6;
}

bool ipv6_route(const struct tcpsm_stack *st, const uint8_t *dst, uint8_t *nexthop)
{
    if (!st->v6.on || addr6_is_zero(dst) || addr6_is_multicast(dst) || addr6_is_loopback(dst) ||
        ipv6_is_ours(st, dst) || memcmp(dst, st->cfg.addr6, 16) == 0)
        return false;
    /* IPv4-mapped addresses are IPv4's */
    struct tcpsm_addr a = addr_from6(dst);
    if (addr_is_v4(&a))
        return false;
    const uint8_t *hop;
    if (addr6_is_linklocal(dst) || addr6_prefix_eq(dst, st->cfg.addr6, st->cfg.prefix6_len))
        hop = dst;
    else if (!addr6_is_zero(st->v6.router) && st->now < st->v6.router_until)
        hop = st->v6.router;
    else
        return false;
    if (nexthop)
        memcpy(nexthop, hop, 16);
    return true;
}

uint32_t ipv6_mtu_l4(const struct tcpsm_stack *st)
{
    uint32_t max = TCPSM_FRAME_MAX - ETH_HDR_LEN;
    uint32_t mtu = st->v6.mtu > max ? max : st->v6.mtu;
    return mtu - IPV6_HDR_LEN;
}

bool ipv6_can_gso(const struct tcpsm_stack *st)
{
    const uint32_t need = TCPSM_NETDEV_F_TSO6 | TCPSM_NETDEV_F_SG | TCPSM_NETDEV_F_TX_CSUM;
    return (stack_dev(st)->features & need) == need;
}

uint32_t ipv6_max_l4(const struct tcpsm_stack *st)
{
    if (!ipv6_can_gso(st))
        return ipv6_mtu_l4(st);
    /* gso_max bounds the whole datagram (40 + payload length): at most
     * 65495 L4 bytes, so the 16-bit payload length always holds it (no
     * jumbogram, RFC 2675). */
    uint32_t gmax = stack_dev(st)->gso_max;
    uint32_t g = gmax && gmax < TCPSM_GSO_MAX ? gmax : TCPSM_GSO_MAX;
    uint32_t m = ipv6_mtu_l4(st) + IPV6_HDR_LEN;
    return (g > m ? g : m) - IPV6_HDR_LEN;
}

/* Hop-by-Hop / Destination options (RFC 8200 4.2). Returns false when the
 * packet is to be discarded (an ICMP error sent where the option says so). */
static bool walk_options(struct tcpsm_stack *st, const uint8_t *pkt, size_t off, size_t hlen,
                         bool dst_mcast)
{
    size_t i = off + 2, end = off + hlen;
    while (i < end) {
        uint8_t type = pkt[i];
        if (type == 0) {                /* Pad1 */
            i++;
            continue;
        }
        if (i + 2 > end || i + 2 + pkt[i + 1] > end) {
            st->cnt.ip6_drop_exthdr++;
            return false;
        }
        if (type != 1) {                /* PadN is skipped; we implement no other option */
            switch (type >> 6) {
            case 0:
                break;
            case 1:
                st->cnt.ip6_drop_exthdr++;
                return false;
            case 3:
                if (dst_mcast) {
                    st->cnt.ip6_drop_exthdr++;
                    return false;
                }
                /* fall through */
            case 2:
                st->cnt.ip6_drop_exthdr++;
                icmp6_send_error(st, ICMP6_PARAM_PROB, 2, (uint32_t)i, pkt, end, true);
                return false;
            }
        }
        i += 2 + (size_t)pkt[i + 1];
    }
    return true;
}

void ipv6_input(struct tcpsm_stack *st, const uint8_t *p, size_t len, bool l2_mcast, uint64_t now)
{
    st->cnt.ip6_in++;
    if (!st->v6.on) {
        st->cnt.ip6_drop_not_us++;
        return;
    }
    if (len < IPV6_HDR_LEN || (p[0] >> 4) != 6) {
        st->cnt.ip6_drop_hdr++;
        return;
    }
    /* Bytes past the payload length are Ethernet padding. A zero payload
     * length is a jumbogram (RFC 2675), which a 1500-byte link never carries. */
    size_t plen = get16(p + 4);
    if (plen == 0 || IPV6_HDR_LEN + plen > len) {
        st->cnt.ip6_drop_hdr++;
        return;
    }
    size_t tot = IPV6_HDR_LEN + plen;
    const uint8_t *src = p + 8, *dst = p + 24;
    /* RFC 4291 2.5.3, 2.7: never from loopback or a multicast address */
    if (addr6_is_multicast(src) || addr6_is_loopback(src)) {
        st->cnt.ip6_drop_hdr++;
        return;
    }
    bool dst_mcast = addr6_is_multicast(dst);
    if (dst_mcast ? !nd_is_our_group(st, dst) : !ipv6_is_ours(st, dst)) {
        st->cnt.ip6_drop_not_us++;
        return;
    }
    /* A unicast packet in a link-layer multicast frame is not for us (RFC 4861 7.1.1 spirit). */
    if (l2_mcast && !dst_mcast) {
        st->cnt.ip6_drop_not_us++;
        return;
    }
    uint8_t nh = p[6];
    size_t nh_at = 6;                   /* where the current Next Header value sits */
    size_t off = IPV6_HDR_LEN;
    for (int n = 0;; n++) {
        if (n > IPV6_MAX_EXTHDRS) {
            st->cnt.ip6_drop_exthdr++;
            return;
        }
        switch (nh) {
        case NH_TCP:
            if (dst_mcast || addr6_is_zero(src)) {  /* RFC 1122 4.2.3.10 as for IPv4 */
                st->cnt.ip6_drop_hdr++;
                return;
            }
            {
                struct tcpsm_addr s = addr_from6(src), d = addr_from6(dst);
                tcp_input(st, &s, &d, p + off, tot - off, now);
            }
            return;
        case IPPROTO_ICMPV6_:
            icmp6_input(st, p, p + off, tot - off, now);
            return;
        case NH_NONE:
            return;                     /* RFC 8200 4.7: nothing follows */
        case NH_HOPOPTS:
        case NH_DSTOPTS:
        case NH_ROUTING:
        case NH_FRAGMENT: {
            if (nh == NH_HOPOPTS && off != IPV6_HDR_LEN) {
                /* RFC 8200 4.1: Hop-by-Hop only right after the IPv6 header */
                st->cnt.ip6_drop_exthdr++;
                icmp6_send_error(st, ICMP6_PARAM_PROB, 1, (uint32_t)nh_at, p, tot, false);
                return;
            }
            if (off + 8 > tot) {
                st->cnt.ip6_drop_exthdr++;
                return;
            }
            size_t hlen = nh == NH_FRAGMENT ? 8 : ((size_t)p[off + 1] + 1) * 8;
            if (off + hlen > tot) {
                st->cnt.ip6_drop_exthdr++;
                return;
            }
            if ((nh == NH_HOPOPTS || nh == NH_DSTOPTS) && !walk_options(st, p, off, hlen, dst_mcast))
                return;
            if (nh == NH_ROUTING && p[off + 3] != 0) {
                /* RFC 8200 4.4: unknown type with segments left */
                st->cnt.ip6_drop_exthdr++;
                icmp6_send_error(st, ICMP6_PARAM_PROB, 0, (uint32_t)(off + 2), p, tot, false);
                return;
            }
            if (nh == NH_FRAGMENT && (get16(p + off + 2) & 0xfff9) != 0) {
                /* offset or M set: a real fragment (RFC 6946: atomic ones pass) */
                ip6_frag_input(st, p, tot, nh_at, off, now);
                return;
            }
            nh_at = off;
            nh = p[off];
            off += hlen;
            break;
        }
        default:
            /* RFC 8200 4: unrecognised Next Header */
            st->cnt.ip6_drop_proto++;
            icmp6_send_error(st, ICMP6_PARAM_PROB, 1, (uint32_t)nh_at, p, tot, false);
            return;
        }
    }
}

uint8_t *ipv6_out_begin(struct tcpsm_stack *st, size_t l4_len)
{
    if (l4_len > ipv6_mtu_l4(st)) {
        st->cnt.tx_drop++;
        return NULL;
    }
    return eth_tx_slot(st) + ETH_HDR_LEN + IPV6_HDR_LEN;
}

uint8_t *ipv6_out_begin_gso(struct tcpsm_stack *st, size_t l4_len)
{
    if (l4_len > ipv6_max_l4(st)) {
        st->cnt.tx_drop++;
        return NULL;
    }
    return eth_tx_slot(st) + ETH_HDR_LEN + IPV6_HDR_LEN;
}

static uint8_t *write_hdr(struct tcpsm_stack *st, const uint8_t *src, const uint8_t *dst,
                          uint8_t proto, size_t l4_len, uint8_t tclass, uint8_t hlim)
{
    uint8_t *f = st->txbuf[st->ntx];
    uint8_t *ip = f + ETH_HDR_LEN;
    put32(ip, 6u << 28 | (uint32_t)tclass << 20);  /* flow label 0 */
    put16(ip + 4, (uint16_t)l4_len);
    ip[6] = proto;
    ip[7] = hlim ? hlim : IPV6_HLIM_DEF;
    memcpy(ip + 8, src, 16);
    memcpy(ip + 24, dst, 16);
    return f;
}

void ipv6_out_commit(struct tcpsm_stack *st, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                     size_t l4_len, uint8_t tclass, uint8_t hlim)
{
    uint8_t nexthop[16];
    bool mcast = addr6_is_multicast(dst);
    if (!src)
        src = ipv6_src_for(st, dst);
    if (!src || (!mcast && !ipv6_route(st, dst, nexthop)) || st->ntx >= TCPSM_TX_BATCH) {
        st->cnt.ip6_drop_noroute++;
        return;
    }
    uint8_t *f = write_hdr(st, src, dst, proto, l4_len, tclass, hlim);
    size_t flen = ETH_HDR_LEN + IPV6_HDR_LEN + l4_len;
    if (mcast) {
        /* RFC 2464 7: 33:33 and the low 32 bits of the group */
        uint8_t mac[ETH_ALEN] = { 0x33, 0x33, dst[12], dst[13], dst[14], dst[15] };
        eth_write_hdr(f, mac, st->cfg.mac, ETH_TYPE_IPV6);
        eth_tx_push(st, f, flen);
        return;
    }
    static const uint8_t unknown[ETH_ALEN];
    eth_write_hdr(f, unknown, st->cfg.mac, ETH_TYPE_IPV6);
    struct tcpsm_addr nh = addr_from6(nexthop);
    neigh_output_addr(st, &nh, f, flen, st->now);
}

void ipv6_out_commit_mac(struct tcpsm_stack *st, const uint8_t *src, const uint8_t *dst,
                         uint8_t proto, size_t l4_len, uint8_t hlim, const uint8_t *mac)
{
    if (st->ntx >= TCPSM_TX_BATCH) {
        st->cnt.ip6_drop_noroute++;
        return;
    }
    uint8_t *f = write_hdr(st, src, dst, proto, l4_len, 0, hlim);
    eth_write_hdr(f, mac, st->cfg.mac, ETH_TYPE_IPV6);
    eth_tx_push(st, f, ETH_HDR_LEN + IPV6_HDR_LEN + l4_len);
}

int ipv6_init(struct tcpsm_stack *st, uint64_t now)
{
    if (addr6_is_zero(st->cfg.addr6))
        return 0;
    struct ipv6_state *v = &st->v6;
    v->on = true;
    /* RFC 4291 2.5.1 / appendix A: modified EUI-64, universal/local bit inverted */
    static const uint8_t ll_pfx[8] = { 0xfe, 0x80 };
    memcpy(v->ll, ll_pfx, 8);
    const uint8_t *m = st->cfg.mac;
    uint8_t iid[8] = { (uint8_t)(m[0] ^ 0x02), m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5] };
    memcpy(v->ll + 8, iid, 8);
    v->mtu = stack_dev(st)->mtu;
    if (!addr6_is_zero(st->cfg.gateway6)) {
        memcpy(v->router, st->cfg.gateway6, 16);
        v->router_until = UINT64_MAX;
    }
    return nd_start(st, now);
}

void ipv6_fini(struct tcpsm_stack *st)
{
    if (st->v6.on)
        timer_cancel(&st->timers, &st->v6.timer);
    ip6_frag_fini(st);
}
