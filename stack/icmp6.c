/* ICMPv6 for a host (RFC 4443): echo replies, the errors we send
 * (parameter problems from ipv6.c), and the errors about our TCP segments
 * handed to TCP as for IPv4 (RFC 5927), Packet Too Big as path MTU
 * (RFC 8201). Neighbour discovery messages go to nd.c. */
#include "icmp6.h"

#include <string.h>

#include "addr.h"
#include "csum.h"
#include "ipv4.h"
#include "ipv6.h"
#include "nd.h"
#include "tcp.h"
#include "wire.h"

void icmp6_set_csum(uint8_t *msg, size_t len, const uint8_t *src, const uint8_t *dst)
{
    put16(msg + 2, 0);
    put16(msg + 2, csum_fold(csum_partial(msg, len, csum_pseudo6(src, dst, IPPROTO_ICMPV6_,
                                                                  (uint32_t)len))));
}

static void echo_reply(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *msg, size_t len)
{
    /* RFC 4443 4.2: to a multicast request, reply from a unicast address
     * of ours; a unicast request is answered from the address it was sent to. */
    const uint8_t *dst = ip6 + 8;
    const uint8_t *src = addr6_is_multicast(ip6 + 24) ? ipv6_src_for(st, dst) : ip6 + 24;
    if (!src || addr6_is_zero(dst))
        return;
    uint8_t *out = ipv6_out_begin(st, len);
    if (!out)
        return;
    memcpy(out, msg, len);
    out[0] = ICMP6_ECHO_REPLY;
    out[1] = 0;
    icmp6_set_csum(out, len, src, dst);
    st->cnt.icmp6_echo_reply_out++;
    ipv6_out_commit(st, src, dst, IPPROTO_ICMPV6_, len, 0, 0);
}

/* The quoted packet of an error: the IPv6 header, then (after any
 * extension headers) at least the TCP ports and sequence number. */
static void error_to_tcp(struct tcpsm_stack *st, uint8_t type, uint8_t code, uint32_t mtu,
                         const uint8_t *q, size_t qlen, uint64_t now)
{
    if (qlen < IPV6_HDR_LEN + 8 || (q[0] >> 4) != 6 || !ipv6_is_ours(st, q + 8)) {
        st->cnt.icmp6_drop_bad++;
        return;
    }
    uint8_t nh = q[6];
    size_t off = IPV6_HDR_LEN;
    /* The stack sends no extension headers; skip any a middlebox added. */
    for (int n = 0; nh != IPPROTO_TCP_ && n < IPV6_MAX_EXTHDRS; n++) {
        if ((nh != 0 && nh != 43 && nh != 60 && nh != 44) || off + 8 > qlen) {
            st->cnt.icmp6_drop_bad++;
            return;
        }
        size_t hl = nh == 44 ? 8 : ((size_t)q[off + 1] + 1) * 8;
        nh = q[off];
        off += hl;
    }
    if (nh != IPPROTO_TCP_ || off + 8 > qlen) {
        st->cnt.icmp6_drop_bad++;
        return;
    }
    /* As the equivalent ICMPv4 error (RFC 4443 3.1 vs RFC 792), so TCP has
     * one table: no route -> net unreachable, prohibited/policy/reject ->
     * administratively prohibited, port -> port unreachable, others host
     * unreachable; Packet Too Big -> fragmentation needed with the MTU. */
    uint8_t t4 = 3, c4;
    switch (type) {
    case ICMP6_DST_UNREACH:
        c4 = code == 0 ? 0 : code == 4 ? 3 : (code == 1 || code == 5 || code == 6) ? 13 : 1;
        break;
    case ICMP6_PACKET_TOO_BIG:
        c4 = 4;
        /* RFC 8201 4: never below the IPv6 minimum MTU */
        if (mtu < IPV6_MIN_MTU)
            mtu = IPV6_MIN_MTU;
        break;
    case ICMP6_TIME_EXCEEDED:
        t4 = 11;
        c4 = code;
        break;
    default:
        t4 = 12;
        c4 = code;
        break;
    }
    const uint8_t *t = q + off;
    struct tcpsm_addr s = addr_from6(q + 8), d = addr_from6(q + 24);
    tcp_icmp_error(st, t4, c4, mtu, &s, &d, get16(t), get16(t + 2), get32(t + 4), now);
}

void icmp6_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *msg, size_t len,
                 uint64_t now)
{
    st->cnt.icmp6_in++;
    if (len < 4 || csum_fold(csum_partial(msg, len, csum_pseudo6(ip6 + 8, ip6 + 24, IPPROTO_ICMPV6_,
                                                                  (uint32_t)len))) != 0) {
        st->cnt.icmp6_drop_bad++;
        return;
    }
    uint8_t type = msg[0], code = msg[1];
    if (type >= 133 && type <= 137) {
        nd_input(st, ip6, msg, len, now);
        return;
    }
    if (addr6_is_zero(ip6 + 8)) {       /* only DAD may come from :: */
        st->cnt.icmp6_drop_bad++;
        return;
    }
    switch (type) {
    case ICMP6_ECHO_REQUEST:
        if (code == 0 && len >= 8)
            echo_reply(st, ip6, msg, len);
        else
            st->cnt.icmp6_drop_bad++;
        break;
    case ICMP6_DST_UNREACH:
    case ICMP6_PACKET_TOO_BIG:
    case ICMP6_TIME_EXCEEDED:
    case ICMP6_PARAM_PROB:
        if (len < 8) {
            st->cnt.icmp6_drop_bad++;
            break;
        }
        if (type == ICMP6_DST_UNREACH)
            st->cnt.icmp6_unreach_in++;
        if (type == ICMP6_PACKET_TOO_BIG)
            st->cnt.icmp6_ptb_in++;
        error_to_tcp(st, type, code, get32(msg + 4), msg + 8, len - 8, now);
        break;
    default:
        /* RFC 4443 2.4 (b): unknown informational messages are discarded;
         * (a)/(d): unknown errors are passed up, but concern no TCP segment
         * we can identify. Echo replies: we send no requests. */
        break;
    }
}

void icmp6_send_error(struct tcpsm_stack *st, uint8_t type, uint8_t code, uint32_t param,
                      const uint8_t *pkt, size_t pkt_len, bool mcast_ok)
{
    const uint8_t *osrc = pkt + 8, *odst = pkt + 24;
    /* RFC 4443 2.4 (e) */
    if (addr6_is_zero(osrc) || addr6_is_multicast(osrc) || (addr6_is_multicast(odst) && !mcast_ok))
        return;
    if (pkt[6] == IPPROTO_ICMPV6_ && pkt_len > IPV6_HDR_LEN &&
        (pkt[IPV6_HDR_LEN] < 128 || pkt[IPV6_HDR_LEN] == 137))
        return;                         /* about an error or a redirect */
    uint64_t sec = st->now / 1000000000ull;
    if (sec != st->v6.err_sec) {
        st->v6.err_sec = sec;
        st->v6.err_count = 0;
    }
    if (st->v6.err_count >= ICMP6_ERR_PER_SEC)
        return;
    st->v6.err_count++;
    const uint8_t *src = addr6_is_multicast(odst) ? ipv6_src_for(st, osrc) : odst;
    if (!src)
        return;
    /* RFC 4443 2.4 (c): as much of the packet as fits in the minimum MTU */
    size_t q = pkt_len;
    if (q > IPV6_MIN_MTU - IPV6_HDR_LEN - 8)
        q = IPV6_MIN_MTU - IPV6_HDR_LEN - 8;
    uint8_t *out = ipv6_out_begin(st, 8 + q);
    if (!out)
        return;
    out[0] = type;
    out[1] = code;
    put32(out + 4, param);
    memcpy(out + 8, pkt, q);
    icmp6_set_csum(out, 8 + q, src, osrc);
    st->cnt.icmp6_err_out++;
    ipv6_out_commit(st, src, osrc, IPPROTO_ICMPV6_, 8 + q, 0, 0);
}
