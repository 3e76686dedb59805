/* IPv6 (RFC 8200), ICMPv6 (RFC 4443) and neighbour discovery / DAD
 * (RFC 4861, RFC 4862, RFC 4429) with crafted frames: what the stack
 * answers, byte by byte, and what it drops (counted). */
#include <criterion/criterion.h>
#include <errno.h>

#include "addr.h"
#include "csum.h"
#include "icmp6.h"
#include "ipv6.h"
#include "ipv6_frag.h"
#include "nd.h"
#include "neigh.h"
#include "net_helpers.h"

static struct capdev *cap;
static struct tcpsm_stack *st;

/* 2001:2::1 us, 2001:2::2 the peer, fe80::1 a router */
static const uint8_t US6[16] = { 0x20, 0x01, 0, 0x02, [15] = 1 };
static const uint8_t PEER6[16] = { 0x20, 0x01, 0, 0x02, [15] = 2 };
static const uint8_t RTR6[16] = { 0xfe, 0x80, [15] = 1 };
static const uint8_t OFFLINK6[16] = { 0x20, 0x01, 0, 0x02, 0, 7, [15] = 9 };
static const uint8_t UNSPEC6[16];
/* the stack's link-local address from MAC_US 02:00:00:00:00:01 (RFC 4291 2.5.1) */
static const uint8_t LL_US[16] = { 0xfe, 0x80, [8] = 0x00, 0, 0, 0xff, 0xfe, 0, 0, 0x01 };

static struct tcpsm_config cfg6(void)
{
    struct tcpsm_config c = test_cfg();
    memcpy(c.addr6, US6, 16);
    c.prefix6_len = 64;
    return c;
}

static void setup(void)
{
    cap = cap_new();
    struct tcpsm_config c = cfg6();
    st = tcpsm_stack_new(&c, &cap->dev, SEC);
    cr_assert_not_null(st);
}
static void teardown(void)
{
    tcpsm_stack_free(st);
    free(cap);
}

TestSuite(ipv6, .init = setup, .fini = teardown);

/* Reference checksum, byte by byte (RFC 1071 as written), over the
 * pseudo-header and the message: independent of csum.c. */
static uint16_t ref_csum6(const uint8_t *src, const uint8_t *dst, uint8_t nh, const uint8_t *m,
                          size_t len)
{
    uint32_t s = 0;
    for (int i = 0; i < 16; i += 2)
        s += (uint32_t)(src[i] << 8 | src[i + 1]) + (uint32_t)(dst[i] << 8 | dst[i + 1]);
    s += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff) + nh;
    for (size_t i = 0; i < len; i += 2)
        s += (uint32_t)(m[i] << 8 | (i + 1 < len ? m[i + 1] : 0));
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* An IPv6 packet (40-byte header, then pl) in an Ethernet frame. */
static size_t mk_ip6(uint8_t *f, const uint8_t *edst, const uint8_t *src, const uint8_t *dst,
                     uint8_t nh, uint8_t hlim, const uint8_t *pl, size_t plen)
{
    memcpy(f, edst, 6);
    memcpy(f + 6, MAC_PEER, 6);
    wr16(f + 12, 0x86dd);
    uint8_t *ip = f + 14;
    wr32(ip, 6u << 28);
    wr16(ip + 4, (uint16_t)plen);
    ip[6] = nh;
    ip[7] = hlim;
    memcpy(ip + 8, src, 16);
    memcpy(ip + 24, dst, 16);
    memcpy(ip + 40, pl, plen);
    return 54 + plen;
}

/* An ICMPv6 message: the checksum filled in for src -> dst. */
static size_t mk_icmp6(uint8_t *f, const uint8_t *edst, const uint8_t *src, const uint8_t *dst,
                       uint8_t hlim, uint8_t *m, size_t len)
{
    wr16(m + 2, 0);
    wr16(m + 2, ref_csum6(src, dst, 58, m, len));
    return mk_ip6(f, edst, src, dst, 58, hlim, m, len);
}

static void mcast_mac(const uint8_t *g, uint8_t mac[6])
{
    uint8_t m[6] = { 0x33, 0x33, g[12], g[13], g[14], g[15] };
    memcpy(mac, m, 6);
}

/* The sent frame i as IPv6: checks the Ethernet type, the payload length
 * and the ICMPv6/TCP checksum with the reference sum; returns the IPv6 header. */
static const uint8_t *sent6(unsigned i)
{
    cr_assert_lt(i, cap->n, "frame %u not sent (%u)", i, cap->n);
    const uint8_t *f = cap->data[i];
    cr_assert_eq(rd16(f + 12), 0x86dd);
    const uint8_t *ip = f + 14;
    cr_assert_eq(ip[0] >> 4, 6);
    size_t plen = rd16(ip + 4);
    cr_assert_eq(cap->len[i], 54 + plen);
    if (ip[6] == 58 || ip[6] == 6)
        cr_assert_eq(ref_csum6(ip + 8, ip + 24, ip[6], ip + 40, plen), 0, "checksum");
    return ip;
}

static void run_to(uint64_t t)
{
    tcpsm_stack_timers(st, t);
}

Test(ipv6, csum_pseudo6_matches_the_reference)
{
    uint8_t m[61];
    for (size_t i = 0; i < sizeof m; i++)
        m[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 1; len <= sizeof m; len += 7) {
        uint16_t c = csum_fold(csum_partial(m, len, csum_pseudo6(US6, PEER6, 58, (uint32_t)len)));
        cr_assert_eq(c, ref_csum6(US6, PEER6, 58, m, len), "len %zu", len);
    }
}

Test(ipv6, start_sends_dad_probes_and_a_router_solicitation)
{
    /* stack created in setup: the frames are in cap */
    cr_assert_eq(cap->n, 3);
    uint8_t sn[16], mac[6];
    for (int i = 0; i < 2; i++) {
        const uint8_t *ip = sent6((unsigned)i);
        const uint8_t *target = i == 0 ? US6 : LL_US;
        addr6_solicited(target, sn);
        mcast_mac(sn, mac);
        cr_assert_arr_eq(cap->data[i], mac, 6);
        cr_assert_arr_eq(ip + 8, UNSPEC6, 16, "DAD from ::");
        cr_assert_arr_eq(ip + 24, sn, 16);
        cr_assert_eq(ip[7], 255);
        cr_assert_eq(ip[40], ND_NS);
        cr_assert_arr_eq(ip + 48, target, 16);
        cr_assert_eq(rd16(ip + 4), 24, "no source link-layer option");
    }
    const uint8_t *rs = sent6(2);
    cr_assert_eq(rs[40], ND_RS);
    cr_assert_arr_eq(rs + 8, LL_US, 16);
    cr_assert_eq(rs[24], 0xff);
    cr_assert_eq(rs[39], 2, "to all-routers");
    /* two more solicitations 4 s apart, then none (RFC 4861 6.3.7) */
    cap->n = 0;
    run_to(SEC + 4 * SEC);
    run_to(SEC + 8 * SEC);
    run_to(SEC + 30 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->nd_rs_out, 3);
    cr_assert_eq(cap->n, 2);
}

/* A neighbour solicitation from the peer for target, with its SLLA. */
static size_t ns_frame(uint8_t *f, const uint8_t *src, const uint8_t *target, bool slla)
{
    uint8_t m[32] = { ND_NS };
    memcpy(m + 8, target, 16);
    size_t len = 24;
    if (slla) {
        m[24] = 1;
        m[25] = 1;
        memcpy(m + 26, MAC_PEER, 6);
        len = 32;
    }
    uint8_t dst[16], mac[6];
    addr6_solicited(target, dst);
    mcast_mac(dst, mac);
    return mk_icmp6(f, mac, src, dst, 255, m, len);
}

Test(ipv6, ns_is_answered_with_our_mac_and_the_sender_learnt)
{
    run_to(3 * SEC);                    /* DAD over */
    cap->n = 0;
    uint8_t f[256];
    size_t n = ns_frame(f, PEER6, US6, true);
    feed(st, f, n, 3 * SEC);
    /* the NA, then a unicast probe of the STALE entry (RFC 4861 7.3.3;
     * no DELAY state here: it probes on first use) */
    cr_assert_eq(cap->n, 2);
    const uint8_t *pr = sent6(1);
    cr_assert_eq(pr[40], ND_NS);
    cr_assert_arr_eq(cap->data[1], MAC_PEER, 6);
    cr_assert_arr_eq(pr + 24, PEER6, 16, "unicast");
    const uint8_t *ip = sent6(0);
    cr_assert_arr_eq(cap->data[0], MAC_PEER, 6, "unicast to the SLLA");
    cr_assert_arr_eq(ip + 8, US6, 16);
    cr_assert_arr_eq(ip + 24, PEER6, 16);
    cr_assert_eq(ip[7], 255);
    cr_assert_eq(ip[40], ND_NA);
    cr_assert_eq(ip[44], ND_NA_SOLICITED | ND_NA_OVERRIDE);
    cr_assert_arr_eq(ip + 48, US6, 16);
    cr_assert_eq(ip[64], 2, "target link-layer option");
    cr_assert_arr_eq(ip + 66, MAC_US, 6);
    struct tcpsm_addr p = addr_from6(PEER6);
    uint8_t mac[6];
    cr_assert_eq(neigh_lookup_addr(st, &p, mac), NEIGH_PROBE);
    cr_assert_arr_eq(mac, MAC_PEER, 6);
    cr_assert_eq(tcpsm_stack_counters(st)->nd_na_out, 1);

    /* for another host's address, or with hop limit 254: no answer */
    n = ns_frame(f, PEER6, OFFLINK6, true);
    feed(st, f, n, 3 * SEC);
    n = ns_frame(f, PEER6, US6, true);
    f[14 + 7] = 254;
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 2);
    cr_assert_eq(tcpsm_stack_counters(st)->nd_drop_bad, 1);
}

Test(ipv6, dad_probe_from_another_node_makes_the_address_duplicate)
{
    cap->n = 0;
    uint8_t f[256];
    size_t n = ns_frame(f, UNSPEC6, US6, false);
    feed(st, f, n, SEC + 1000);
    cr_assert_eq(tcpsm_stack_counters(st)->nd_dad_dup, 1);
    cr_assert_not(ipv6_is_ours(st, US6));
    run_to(3 * SEC);
    cap->n = 0;
    n = ns_frame(f, PEER6, US6, true);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 0, "a duplicate address is not defended");
    /* the link-local one is still fine */
    cr_assert(ipv6_is_ours(st, LL_US));
}

Test(ipv6, na_resolves_a_waiting_neighbour_and_sends_the_queue)
{
    run_to(3 * SEC);
    cap->n = 0;
    /* an echo request from the peer before we know its MAC: the reply waits */
    uint8_t m[64] = { ICMP6_ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 1, 'h', 'i' };
    uint8_t f[256];
    size_t n = mk_icmp6(f, MAC_US, PEER6, US6, 64, m, 10);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 1, "a multicast NS");
    const uint8_t *ns = sent6(0);
    cr_assert_eq(ns[40], ND_NS);
    cr_assert_arr_eq(ns + 48, PEER6, 16);
    cr_assert_eq(rd16(ns + 4), 32, "with our SLLA once preferred");
    /* the NA */
    uint8_t na[32] = { ND_NA, 0, 0, 0, ND_NA_SOLICITED | ND_NA_OVERRIDE };
    memcpy(na + 8, PEER6, 16);
    na[24] = 2;
    na[25] = 1;
    memcpy(na + 26, MAC_PEER, 6);
    n = mk_icmp6(f, MAC_US, PEER6, US6, 255, na, 32);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 2);
    const uint8_t *rep = sent6(1);
    cr_assert_arr_eq(cap->data[1], MAC_PEER, 6);
    cr_assert_eq(rep[40], ICMP6_ECHO_REPLY);
    cr_assert_arr_eq(rep + 44, m + 4, 6, "same id, sequence and data");
    cr_assert_eq(rd16(rep + 4), 10);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp6_echo_reply_out, 1);
}

static void learn_peer(void)
{
    struct tcpsm_addr p = addr_from6(PEER6);
    neigh_learn_addr(st, &p, MAC_PEER, false, 3 * SEC);
    run_to(3 * SEC);
    cap->n = 0;
}

Test(ipv6, unknown_next_header_gets_a_parameter_problem)
{
    learn_peer();
    uint8_t pl[16] = { 1, 2, 3 };
    uint8_t f[256];
    size_t n = mk_ip6(f, MAC_US, PEER6, US6, 253, 64, pl, sizeof pl);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_proto, 1);
    const uint8_t *ip = sent6(0);
    cr_assert_eq(ip[40], ICMP6_PARAM_PROB);
    cr_assert_eq(ip[41], 1);
    cr_assert_eq(rd32(ip + 44), 6, "points at the Next Header field");
    cr_assert_arr_eq(ip + 48, f + 14, n - 14, "quotes the packet");
}

Test(ipv6, extension_headers_per_rfc8200)
{
    learn_peer();
    uint8_t f[256], pl[64];
    /* Destination options with PadN, then an echo request: answered */
    memset(pl, 0, sizeof pl);
    pl[0] = 58;
    pl[1] = 0;
    pl[2] = 1;                          /* PadN */
    pl[3] = 4;
    uint8_t *m = pl + 8;
    m[0] = ICMP6_ECHO_REQUEST;
    m[4] = 1;
    wr16(m + 2, ref_csum6(PEER6, US6, 58, m, 8));
    size_t n = mk_ip6(f, MAC_US, PEER6, US6, 60, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 1);
    cr_assert_eq(sent6(0)[40], ICMP6_ECHO_REPLY);

    /* unknown option, action 10: parameter problem code 2 at the option */
    pl[2] = 0x80;
    n = mk_ip6(f, MAC_US, PEER6, US6, 60, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 2);
    const uint8_t *ip = sent6(1);
    cr_assert_eq(ip[40], ICMP6_PARAM_PROB);
    cr_assert_eq(ip[41], 2);
    cr_assert_eq(rd32(ip + 44), 42);
    /* action 01: silently dropped */
    pl[2] = 0x40;
    n = mk_ip6(f, MAC_US, PEER6, US6, 60, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(cap->n, 2);

    /* Routing header with segments left: parameter problem at its type */
    memset(pl, 0, 8);
    pl[0] = 58;
    pl[2] = 0;                          /* type 0, deprecated (RFC 5095) */
    pl[3] = 1;
    n = mk_ip6(f, MAC_US, PEER6, US6, 43, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    ip = sent6(2);
    cr_assert_eq(ip[41], 0);
    cr_assert_eq(rd32(ip + 44), 42);
    /* ... and with none left it is skipped */
    pl[3] = 0;
    n = mk_ip6(f, MAC_US, PEER6, US6, 43, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(sent6(3)[40], ICMP6_ECHO_REPLY);

    /* Hop-by-Hop after another header: parameter problem code 1 */
    pl[0] = 0;
    n = mk_ip6(f, MAC_US, PEER6, US6, 60, 64, pl, 16);
    pl[0] = 58;
    feed(st, f, n, 3 * SEC);
    ip = sent6(4);
    cr_assert_eq(ip[41], 1);
    cr_assert_eq(rd32(ip + 44), 40);

    /* an atomic fragment (RFC 6946) is processed; a real fragment dropped */
    memset(pl, 0, 8);
    pl[0] = 58;
    n = mk_ip6(f, MAC_US, PEER6, US6, 44, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(sent6(5)[40], ICMP6_ECHO_REPLY);
    pl[3] = 1;                          /* M: held for reassembly (ipv6_frag.c) */
    n = mk_ip6(f, MAC_US, PEER6, US6, 44, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_frag, 0);
    cr_assert_eq(cap->n, 6);

    /* a header running past the payload */
    pl[0] = 58;
    pl[1] = 3;                          /* 32 bytes, only 16 there */
    n = mk_ip6(f, MAC_US, PEER6, US6, 60, 64, pl, 16);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_exthdr, 5);
    cr_assert_eq(cap->n, 6);
}

Test(ipv6, malformed_and_foreign_packets_are_counted)
{
    learn_peer();
    uint8_t f[256], pl[8] = { 0 };
    size_t n = mk_ip6(f, MAC_US, PEER6, OFFLINK6, 58, 64, pl, 8);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_not_us, 1);
    n = mk_ip6(f, MAC_US, PEER6, US6, 58, 64, pl, 8);
    wr16(f + 18, 100);                  /* payload length beyond the frame */
    feed(st, f, n, 3 * SEC);
    f[14] = 0x45;                       /* version 4 */
    feed(st, f, n, 3 * SEC);
    uint8_t mc[16] = { 0xff, 0x02, [15] = 1 };
    n = mk_ip6(f, MAC_US, mc, US6, 58, 64, pl, 8);
    feed(st, f, n, 3 * SEC);            /* multicast source */
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_hdr, 3);
    /* another host's solicited-node group */
    uint8_t sn[16], mac[6];
    addr6_solicited(OFFLINK6, sn);
    mcast_mac(sn, mac);
    n = ns_frame(f, PEER6, OFFLINK6, true);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_not_us, 2);
    /* a bad ICMPv6 checksum */
    uint8_t m[8] = { ICMP6_ECHO_REQUEST };
    n = mk_icmp6(f, MAC_US, PEER6, US6, 64, m, 8);
    f[n - 1] ^= 1;
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp6_drop_bad, 1);
    cr_assert_eq(cap->n, 0);
}

Test(ipv6, router_advertisement_gives_the_default_route)
{
    run_to(3 * SEC);
    cr_assert_not(ipv6_route(st, OFFLINK6, NULL));
    cr_assert(ipv6_route(st, PEER6, NULL), "on-link");
    uint8_t ra[32] = { ND_RA, 0, 0, 0, 64, 0, 0, 30 };  /* lifetime 30 s */
    ra[16] = 1;                          /* SLLA */
    ra[17] = 1;
    memcpy(ra + 18, MAC_GW, 6);
    ra[24] = 5;                          /* MTU 1400 */
    ra[25] = 1;
    wr32(ra + 28, 1400);
    uint8_t all[16] = { 0xff, 0x02, [15] = 1 }, mac[6], f[256];
    mcast_mac(all, mac);
    size_t n = mk_icmp6(f, mac, RTR6, all, 255, ra, 32);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->nd_ra_in, 1);
    uint8_t hop[16];
    cr_assert(ipv6_route(st, OFFLINK6, hop));
    cr_assert_arr_eq(hop, RTR6, 16);
    cr_assert_eq(ipv6_mtu_l4(st), 1400 - 40);
    struct tcpsm_addr r = addr_from6(RTR6);
    cr_assert_neq(neigh_lookup_addr(st, &r, NULL), NEIGH_NONE, "router's MAC learnt");
    /* the lifetime runs out */
    st->now = 3 * SEC + 31 * SEC;
    cr_assert_not(ipv6_route(st, OFFLINK6, NULL));
    /* an RA from a global address is not valid (RFC 4861 6.1.2) */
    n = mk_icmp6(f, mac, PEER6, all, 255, ra, 32);
    feed(st, f, n, 40 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->nd_drop_bad, 1);
}

Test(ipv6, configured_router_and_config_checks)
{
    struct capdev *c2 = cap_new();
    struct tcpsm_config c = cfg6();
    memcpy(c.gateway6, RTR6, 16);
    struct tcpsm_stack *s2 = tcpsm_stack_new(&c, &c2->dev, 0);
    cr_assert_not_null(s2);
    cr_assert_eq(tcpsm_stack_counters(s2)->nd_rs_out, 0, "no solicitation with a router given");
    cr_assert(ipv6_route(s2, OFFLINK6, NULL));
    tcpsm_stack_free(s2);
    /* IPv6 alone */
    c = cfg6();
    c.addr = 0;
    s2 = tcpsm_stack_new(&c, &c2->dev, 0);
    cr_assert_not_null(s2);
    cr_assert_not(tcpsm_stack_routable(s2, ADDR_PEER));
    tcpsm_stack_free(s2);
    /* refused: a link-local or multicast address, a bad prefix, an off-link router, MTU < 1280 */
    c = cfg6();
    memcpy(c.addr6, LL_US, 16);
    cr_assert_null(tcpsm_stack_new(&c, &c2->dev, 0));
    c = cfg6();
    c.prefix6_len = 0;
    cr_assert_null(tcpsm_stack_new(&c, &c2->dev, 0));
    c = cfg6();
    memcpy(c.gateway6, OFFLINK6, 16);
    cr_assert_null(tcpsm_stack_new(&c, &c2->dev, 0));
    c = cfg6();
    c2->dev.mtu = 1200;
    cr_assert_null(tcpsm_stack_new(&c, &c2->dev, 0));
    free(c2);
}

Test(ipv6, no_ipv6_configured_means_no_ipv6_frames)
{
    struct capdev *c2 = cap_new();
    struct tcpsm_config c = test_cfg();
    struct tcpsm_stack *s2 = tcpsm_stack_new(&c, &c2->dev, 0);
    cr_assert_eq(c2->n, 0);
    uint8_t f[256];
    size_t n = ns_frame(f, PEER6, US6, true);
    feed(s2, f, n, 0);
    cr_assert_eq(c2->n, 0);
    cr_assert_eq(tcpsm_stack_counters(s2)->ip6_drop_not_us, 1);
    tcpsm_stack_free(s2);
    free(c2);
}

/* ---------------------------------------------------------------- ICMPv6 errors and TCP */

/* A TCP segment from the peer (port 80) to us, no payload; opt: MSS 1440 in a SYN. */
static size_t mk_tcp6(uint8_t *f, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags)
{
    uint8_t t[24] = { 0 };
    size_t hl = (flags & TCPSM_SYN) ? 24 : 20;
    wr16(t, 80);
    wr16(t + 2, dport);
    wr32(t + 4, seq);
    wr32(t + 8, ack);
    t[12] = (uint8_t)((hl / 4) << 4);
    t[13] = flags;
    wr16(t + 14, 65535);
    if (hl == 24) {
        t[20] = 2;
        t[21] = 4;
        wr16(t + 22, 1440);
    }
    wr16(t + 16, ref_csum6(PEER6, US6, 6, t, hl));
    return mk_ip6(f, MAC_US, PEER6, US6, 6, 64, t, hl);
}

/* An IPv6 socket connected to [PEER6]:80 by crafted frames; returns its ISS. */
static uint32_t connect6(struct tcpsm_sock **out, uint16_t *port)
{
    learn_peer();
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(st, &sk), 0);
    cr_assert_eq(tcpsm_sock_setopt(sk, TCPSM_OPT_IPV6, 1), 0);
    struct tcpsm_addr p = addr_from6(PEER6);
    cr_assert_eq(tcpsm_sock_connect_addr(sk, &p, 80, 3 * SEC), -EINPROGRESS);
    const uint8_t *syn = sent6(cap->n - 1);
    cr_assert_eq(syn[6], 6);
    cr_assert_arr_eq(syn + 8, US6, 16, "from our global address");
    *port = rd16(syn + 40);
    *out = sk;
    return rd32(syn + 44);
}

Test(ipv6, packet_too_big_lowers_the_mss_and_resends)
{
    struct tcpsm_sock *sk;
    uint16_t port;
    uint32_t iss = connect6(&sk, &port);
    uint8_t f[1600];
    size_t n = mk_tcp6(f, port, 1000, iss + 1, TCPSM_SYN | TCPSM_ACK);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_sock_state(sk), TCPSM_ESTABLISHED);
    struct tcpsm_tcp_info ti;
    tcpsm_sock_info(sk, &ti);
    cr_assert_eq(ti.snd_mss, 1440);
    static uint8_t data[4000];
    memset(data, 'x', sizeof data);
    cap->n = 0;
    cr_assert_eq(tcpsm_sock_send(sk, data, sizeof data, 3 * SEC), (ssize_t)sizeof data);
    cr_assert_geq(cap->n, 1);
    const uint8_t *first = sent6(0);
    cr_assert_eq(rd16(first + 4), 20 + 1440, "a full-sized segment");
    /* a router says 1280: quote as much of the segment as fits (RFC 4443 2.4 c) */
    uint8_t m[1240] = { ICMP6_PACKET_TOO_BIG };
    wr32(m + 4, 1280);
    memcpy(m + 8, first, sizeof m - 8);
    n = mk_icmp6(f, MAC_US, OFFLINK6, US6, 64, m, sizeof m);
    cap->n = 0;
    feed(st, f, n, 3 * SEC + 1000);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp6_ptb_in, 1);
    tcpsm_sock_info(sk, &ti);
    cr_assert_eq(ti.snd_mss, 1280 - 60, "MSS from the path MTU (RFC 8201)");
    int mtu;
    cr_assert_eq(tcpsm_sock_getopt(sk, TCPSM_OPT_MTU, &mtu), 0);
    cr_assert_eq(mtu, 1280);
    cr_assert_geq(cap->n, 1, "what was in flight goes again");
    const uint8_t *re = sent6(0);
    cr_assert_eq(rd32(re + 44), iss + 1);
    cr_assert_leq(rd16(re + 4), 20 + 1220);
    /* a smaller MTU than IPv6's minimum counts as 1280; a larger one changes nothing */
    wr32(m + 4, 600);
    memcpy(m + 8, first, 8);
    n = mk_icmp6(f, MAC_US, OFFLINK6, US6, 64, m, sizeof m);
    feed(st, f, n, 3 * SEC + 2000);
    tcpsm_sock_info(sk, &ti);
    cr_assert_eq(ti.snd_mss, 1220);
    tcpsm_sock_abort(sk, 4 * SEC);
    tcpsm_sock_close(sk, 4 * SEC);
}

Test(ipv6, port_unreachable_refuses_a_connect_and_foreign_quotes_are_ignored)
{
    struct tcpsm_sock *sk;
    uint16_t port;
    uint32_t iss = connect6(&sk, &port);
    const uint8_t *syn = sent6(cap->n - 1);
    uint8_t m[8 + 40 + 20] = { ICMP6_DST_UNREACH, 4 };
    memcpy(m + 8, syn, 60);
    uint8_t f[256];
    /* the quoted sequence number must be in flight (RFC 5927 4.1) */
    wr32(m + 8 + 40 + 4, iss + 100000);
    size_t n = mk_icmp6(f, MAC_US, PEER6, US6, 64, m, sizeof m);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_sock_state(sk), TCPSM_SYN_SENT);
    wr32(m + 8 + 40 + 4, iss);
    n = mk_icmp6(f, MAC_US, PEER6, US6, 64, m, sizeof m);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp6_unreach_in, 2);
    cr_assert_eq(tcpsm_sock_state(sk), TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(sk), ECONNREFUSED);
    tcpsm_sock_close(sk, 4 * SEC);
}

/* ---------------------------------------------------------------- fragments (RFC 8200 4.5) */

/* One fragment of datagram id: data[off, off+len) of the fragmentable part. */
static size_t mk_frag(uint8_t *f, uint32_t id, uint32_t off, bool more, const uint8_t *data,
                      size_t len)
{
    uint8_t pl[1500];
    pl[0] = 58;
    pl[1] = 0;
    wr16(pl + 2, (uint16_t)(off | (more ? 1 : 0)));
    wr32(pl + 4, id);
    memcpy(pl + 8, data + off, len);
    return mk_ip6(f, MAC_US, PEER6, US6, 44, 64, pl, 8 + len);
}

/* An echo request of n bytes (the fragmentable part of the tests' datagrams). */
static void echo_msg(uint8_t *m, size_t n)
{
    memset(m, 0, n);
    m[0] = ICMP6_ECHO_REQUEST;
    wr16(m + 4, 0x77);
    wr16(m + 6, 9);
    for (size_t i = 8; i < n; i++)
        m[i] = (uint8_t)(i * 7);
    wr16(m + 2, ref_csum6(PEER6, US6, 58, m, n));
}

Test(ipv6, fragments_are_reassembled_in_any_order_repeats_ignored)
{
    learn_peer();
    static uint8_t m[1400], f[1600];
    echo_msg(m, sizeof m);
    size_t n = mk_frag(f, 5, 512, true, m, 512);
    feed(st, f, n, 3 * SEC);
    n = mk_frag(f, 5, 1024, false, m, 376);
    feed(st, f, n, 3 * SEC);
    feed(st, f, n, 3 * SEC);            /* an exact repeat: dropped alone */
    cr_assert_eq(cap->n, 0);
    n = mk_frag(f, 5, 0, true, m, 512);
    feed(st, f, n, 3 * SEC);
    const struct tcpsm_counters *k = tcpsm_stack_counters(st);
    cr_assert_eq(k->ip6_reasm_ok, 1);
    cr_assert_eq(k->ip6_drop_frag, 1);
    cr_assert_eq(cap->n, 1);
    const uint8_t *ip = sent6(0);
    cr_assert_eq(ip[40], ICMP6_ECHO_REPLY);
    cr_assert_eq(rd16(ip + 4), sizeof m);
    cr_assert_arr_eq(ip + 44, m + 4, sizeof m - 4, "the whole datagram, in order");
}

Test(ipv6, overlapping_fragments_discard_the_datagram)
{
    learn_peer();
    static uint8_t m[1400], f[1600];
    echo_msg(m, sizeof m);
    feed(st, f, mk_frag(f, 6, 0, true, m, 512), 3 * SEC);
    feed(st, f, mk_frag(f, 6, 504, true, m, 512), 3 * SEC);     /* 8 bytes over the first */
    feed(st, f, mk_frag(f, 6, 1016, false, m, 384), 3 * SEC);   /* a new datagram, never complete */
    feed(st, f, mk_frag(f, 6, 512, true, m, 504), 3 * SEC);
    cr_assert_eq(cap->n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_reasm_ok, 0);
    cr_assert_geq(tcpsm_stack_counters(st)->ip6_drop_frag, 1);
}

Test(ipv6, incomplete_datagram_times_out_with_time_exceeded)
{
    learn_peer();
    static uint8_t m[1400], f[1600];
    echo_msg(m, sizeof m);
    size_t n = mk_frag(f, 7, 0, true, m, 512);
    feed(st, f, n, 3 * SEC);
    feed(st, f, mk_frag(f, 8, 512, true, m, 512), 3 * SEC);     /* no first fragment: no ICMP */
    run_to(3 * SEC + 59 * SEC);         /* router solicitations meanwhile */
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_frag, 0);
    cap->n = 0;
    run_to(3 * SEC + 60 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_frag, 2);
    cr_assert_geq(cap->n, 1, "one Time Exceeded (then a NUD probe of the peer)");
    cr_assert_eq(tcpsm_stack_counters(st)->icmp6_err_out, 1, "only for the datagram whose first fragment came");
    const uint8_t *ip = sent6(0);
    cr_assert_eq(ip[40], ICMP6_TIME_EXCEEDED);
    cr_assert_eq(ip[41], 1, "fragment reassembly time exceeded");
    cr_assert_arr_eq(ip + 24, PEER6, 16);
    mk_frag(f, 7, 0, true, m, 512);
    cr_assert_arr_eq(ip + 48, f + 14, 40 + 8 + 512, "quotes the first fragment");
}

Test(ipv6, bad_fragments_get_a_parameter_problem_and_the_table_is_bounded)
{
    learn_peer();
    static uint8_t m[1400], f[1600];
    echo_msg(m, sizeof m);
    /* not a multiple of 8 with more to come: pointer to the payload length */
    feed(st, f, mk_frag(f, 9, 0, true, m, 500), 3 * SEC);
    cr_assert_eq(cap->n, 1);
    const uint8_t *ip = sent6(0);
    cr_assert_eq(ip[40], ICMP6_PARAM_PROB);
    cr_assert_eq(ip[41], 0);
    cr_assert_eq(rd32(ip + 44), 4);
    /* beyond 65535: pointer to the fragment offset */
    feed(st, f, mk_frag(f, 10, 65528, false, m, 16), 3 * SEC);
    cr_assert_eq(cap->n, 2);
    cr_assert_eq(rd32(sent6(1) + 44), 42);
    /* IP6_FRAG_MAX datagrams at once; the next one's fragments are dropped */
    uint64_t before = tcpsm_stack_counters(st)->ip6_drop_frag;
    for (uint32_t id = 100; id < 100 + IP6_FRAG_MAX + 1; id++)
        feed(st, f, mk_frag(f, id, 0, true, m, 512), 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_drop_frag, before + 1);
    /* the held ones still complete */
    feed(st, f, mk_frag(f, 100, 512, false, m, 888), 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->ip6_reasm_ok, 1);
}

/* A data segment from [PEER6]:80 (no options), its TCP checksum filled in. */
static size_t mk_tcp6_data(uint8_t *f, uint16_t dport, uint32_t seq, uint32_t ack,
                           const uint8_t *d, size_t len)
{
    static uint8_t t[20 + 1500];
    memset(t, 0, 20);
    wr16(t, 80);
    wr16(t + 2, dport);
    wr32(t + 4, seq);
    wr32(t + 8, ack);
    t[12] = 5 << 4;
    t[13] = TCPSM_ACK;
    wr16(t + 14, 65535);
    memcpy(t + 20, d, len);
    wr16(t + 16, ref_csum6(PEER6, US6, 6, t, 20 + len));
    return mk_ip6(f, MAC_US, PEER6, US6, 6, 64, t, 20 + len);
}

/* Software GRO over IPv6 (tcp_gro.c, as Linux ipv6_gro_receive): a batch
 * of in-order frames goes through TCP input as one segment, counted as the
 * frames it was; a frame with a bad TCP checksum stops the run there and
 * is dropped, the data arrives exact once it is sent again; a frame with
 * another flow label or hop limit does not join. */
Test(ipv6, gro_merges_in_order_frames_and_checks_each_sum)
{
    struct tcpsm_sock *sk;
    uint16_t port;
    uint32_t iss = connect6(&sk, &port);
    uint8_t f[1600];
    size_t n = mk_tcp6(f, port, 1000, iss + 1, TCPSM_SYN | TCPSM_ACK);
    feed(st, f, n, 3 * SEC);
    cr_assert_eq(tcpsm_sock_state(sk), TCPSM_ESTABLISHED);
    enum { N = 8, SEG6 = 1200 };
    static uint8_t data[3 * N * SEG6], fr[N][1600];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    struct tcpsm_frame b[N];
    uint32_t seq = 1001;
    /* 1: N in order, all merged */
    for (unsigned i = 0; i < N; i++) {
        b[i] = (struct tcpsm_frame){ .data = fr[i],
            .len = (uint32_t)mk_tcp6_data(fr[i], port, seq + i * SEG6, iss + 1,
                                          data + i * SEG6, SEG6) };
    }
    uint64_t in6 = tcpsm_stack_counters(st)->ip6_in;
    tcpsm_stack_input(st, b, N, 3 * SEC + 100);
    const struct tcpsm_counters *c = tcpsm_stack_counters(st);
    cr_assert_eq(c->tcp_gro_frames, N - 1, "%llu merged", (unsigned long long)c->tcp_gro_frames);
    cr_assert_eq(c->ip6_in - in6, N, "counted as the frames they were");
    seq += N * SEG6;
    /* 2: the third's payload corrupted: two taken, it dropped, the rest held */
    for (unsigned i = 0; i < N; i++)
        b[i] = (struct tcpsm_frame){ .data = fr[i],
            .len = (uint32_t)mk_tcp6_data(fr[i], port, seq + i * SEG6, iss + 1,
                                          data + (N + i) * SEG6, SEG6) };
    fr[2][b[2].len - 3] ^= 0x10;
    tcpsm_stack_input(st, b, N, 3 * SEC + 200);
    cr_assert_eq(c->tcp_drop_csum, 1);
    cr_assert_eq(c->tcp_gro_frames, N - 1 + 1);
    b[0] = (struct tcpsm_frame){ .data = fr[0],
        .len = (uint32_t)mk_tcp6_data(fr[0], port, seq + 2 * SEG6, iss + 1,
                                      data + (N + 2) * SEG6, SEG6) };
    tcpsm_stack_input(st, b, 1, 3 * SEC + 300);
    seq += N * SEG6;
    /* 3: another hop limit, then another flow label: neither joins */
    for (unsigned i = 0; i < 3; i++)
        b[i] = (struct tcpsm_frame){ .data = fr[i],
            .len = (uint32_t)mk_tcp6_data(fr[i], port, seq + i * SEG6, iss + 1,
                                          data + (2 * N + i) * SEG6, SEG6) };
    fr[1][14 + 7] = 63;
    fr[2][14 + 3] = 0x5;
    uint64_t g0 = c->tcp_gro_frames;
    tcpsm_stack_input(st, b, 3, 3 * SEC + 400);
    cr_assert_eq(c->tcp_gro_frames, g0);
    size_t total = (2 * N + 3) * SEG6;
    static uint8_t got[sizeof data];
    cr_assert_eq(tcpsm_sock_recv(sk, got, sizeof got, 0, 3 * SEC + 500), (ssize_t)total);
    cr_assert_arr_eq(got, data, total);
    tcpsm_sock_abort(sk, 4 * SEC);
    tcpsm_sock_close(sk, 4 * SEC);
}
