/* ICMP for a host: echo reply (RFC 792, RFC 1122 3.2.2.6) and the errors
 * that concern TCP connections (RFC 1122 3.2.2.1, 4.2.3.9). */
#include "icmp.h"

#include <string.h>

#include "csum.h"
#include "ipv4.h"
#include "tcp.h"
#include "wire.h"

static void echo_reply(struct tcpsm_stack *st, uint32_t src, const uint8_t *msg, size_t len)
{
    uint8_t *out = ipv4_out_begin(st, len);
    if (!out)
        return;
    /* Same identifier, sequence number and data (RFC 792). */
    memcpy(out, msg, len);
    out[0] = ICMP_ECHO_REPLY;
    out[1] = 0;
    put16(out + 2, 0);
    put16(out + 2, csum_fold(csum_partial(out, len, 0)));
    st->cnt.icmp_echo_reply_out++;
    ipv4_out_commit(st, src, IPPROTO_ICMP_, len);
}

/* An error quotes the IP header and at least 8 bytes of the datagram that
 * caused it (RFC 792); for TCP these hold the ports and sequence number. */
static void error_to_tcp(struct tcpsm_stack *st, uint8_t type, uint8_t code, const uint8_t *q,
                         size_t qlen, uint64_t now)
{
    if (qlen < IPV4_HDR_LEN || (q[0] >> 4) != 4) {
        st->cnt.icmp_drop_bad++;
        return;
    }
    size_t ihl = (size_t)(q[0] & 0xf) * 4;
    if (ihl < IPV4_HDR_LEN || qlen < ihl + 8) {
        st->cnt.icmp_drop_bad++;
        return;
    }
    uint32_t isrc = get32(q + 12), idst = get32(q + 16);
    /* Only datagrams we sent can be about our connections. */
    if (q[9] != IPPROTO_TCP_ || isrc != st->cfg.addr) {
        st->cnt.icmp_drop_bad++;
        return;
    }
    const uint8_t *t = q + ihl;
    struct tcpsm_addr s = addr_from_v4(isrc), d = addr_from_v4(idst);
    /* RFC 1191: the next-hop MTU of "fragmentation needed" (ICMP bytes 6-7) */
    uint32_t mtu = type == ICMP_DEST_UNREACH && code == 4 ? get16(q - 2) : 0;
    tcp_icmp_error(st, type, code, mtu, &s, &d, get16(t), get16(t + 2), get32(t + 4), now);
}

void icmp_input(struct tcpsm_stack *st, uint32_t src, const uint8_t *msg, size_t len, uint64_t now)
{
    st->cnt.icmp_in++;
    if (len < 8 || csum_fold(csum_partial(msg, len, 0)) != 0) {
        st->cnt.icmp_drop_bad++;
        return;
    }
    uint8_t type = msg[0], code = msg[1];
    switch (type) {
    case ICMP_ECHO:
        if (code == 0)
            echo_reply(st, src, msg, len);
        else
            st->cnt.icmp_drop_bad++;
        break;
    case ICMP_DEST_UNREACH:
        st->cnt.icmp_unreach_in++;
        error_to_tcp(st, type, code, msg + 8, len - 8, now);
        break;
    case ICMP_TIME_EXCEEDED:
    case ICMP_PARAM_PROBLEM:
        error_to_tcp(st, type, code, msg + 8, len - 8, now);
        break;
    default:
        /* Echo replies (we send no requests), source quench (RFC 6633:
         * ignored), redirects (a host with one gateway needs none) etc. */
        break;
    }
}
