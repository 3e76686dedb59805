/* IPv4 input validation (RFC 791, RFC 1122 3.2.1), output framing, routing,
 * stack configuration, and ICMP echo (RFC 792). */
#include <criterion/criterion.h>
#include <errno.h>

#include "icmp.h"
#include "ipv4.h"
#include "neigh.h"
#include "net_helpers.h"

static struct capdev *cap;
static struct tcpsm_stack *st;

static void setup(void)
{
    cap = cap_new();
    struct tcpsm_config c = test_cfg();
    c.gateway = ADDR_GW;
    st = tcpsm_stack_new(&c, &cap->dev, 0);
    cr_assert_not_null(st);
    neigh_learn(st, ADDR_PEER, MAC_PEER, 0);
    neigh_learn(st, ADDR_GW, MAC_GW, 0);
}
static void teardown(void)
{
    tcpsm_stack_free(st);
    free(cap);
}

TestSuite(ipv4, .init = setup, .fini = teardown);

static const uint8_t echo_data[] = "0123456789abcdefghijklmnopqrstuvwxyz!";

/* An echo request from the peer, as an Ethernet frame. */
static size_t echo_frame(uint8_t *f, unsigned ihl)
{
    uint8_t m[128];
    size_t ml = mk_echo(m, ICMP_ECHO, 0x4242, 7, echo_data, sizeof(echo_data));
    return mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, ihl, m, ml);
}

Test(ipv4, echo_request_gets_byte_exact_reply)
{
    uint8_t f[256];
    size_t n = echo_frame(f, 5);
    feed(st, f, n, 0);
    cr_assert_eq(cap->n, 1);
    cr_assert_eq(cap->len[0], n);
    uint8_t want[256];
    uint8_t m[128];
    size_t ml = mk_echo(m, ICMP_ECHO_REPLY, 0x4242, 7, echo_data, sizeof(echo_data));
    mk_ip(want, MAC_PEER, MAC_US, ADDR_US, ADDR_PEER, 1, 5, m, ml);
    /* Our header: id 0 (first datagram), DF, TTL 64. */
    wr16(want + 14 + 4, 0);
    wr16(want + 14 + 10, 0);
    wr16(want + 14 + 10, csum_fold(csum_partial(want + 14, 20, 0)));
    cr_assert_arr_eq(cap->data[0], want, n);
    const struct tcpsm_counters *c = tcpsm_stack_counters(st);
    cr_assert_eq(c->icmp_in, 1);
    cr_assert_eq(c->icmp_echo_reply_out, 1);
    cr_assert_eq(c->ip_out, 1);
}

Test(ipv4, options_skipped_and_padding_trimmed)
{
    uint8_t f[256];
    size_t n = echo_frame(f, 7);            /* 8 bytes of NOP options */
    memset(f + n, 0xee, 20);                /* Ethernet padding */
    feed(st, f, n + 20, 0);
    cr_assert_eq(cap->n, 1);
    /* The reply carries no options and no padding. */
    cr_assert_eq(cap->len[0], n - 8);
    cr_assert_eq(rd16(cap->data[0] + 14 + 2), n - 8 - 14);
    cr_assert_arr_eq(cap->data[0] + 14 + 20 + 8, echo_data, sizeof(echo_data));
}

Test(ipv4, each_drop_reason_counted)
{
    uint8_t f[256], g[256];
    size_t n = echo_frame(f, 5);
    const struct tcpsm_counters *c = tcpsm_stack_counters(st);
    uint8_t *ip = g + 14;

#define MUTATE(expr)                                                          \
    do {                                                                      \
        memcpy(g, f, n);                                                      \
        expr;                                                                 \
    } while (0)
#define RECSUM() (wr16(ip + 10, 0), wr16(ip + 10, csum_fold(csum_partial(ip, (ip[0] & 0xf) * 4u, 0))))

    feed(st, f, 14 + 19, 0);                                    /* shorter than a header */
    MUTATE((ip[0] = 0x65, RECSUM())); feed(st, g, n, 0);        /* version 6 */
    MUTATE((ip[0] = 0x44, RECSUM())); feed(st, g, n, 0);        /* IHL 4 */
    MUTATE((wr16(ip + 2, 19), RECSUM())); feed(st, g, n, 0);    /* total < IHL */
    MUTATE((wr16(ip + 2, (uint16_t)(n - 14 + 1)), RECSUM())); feed(st, g, n, 0); /* total > frame */
    MUTATE((ip[0] = 0x46, wr16(ip + 2, 22), RECSUM())); feed(st, g, n, 0); /* IHL 24 > total 22 */
    cr_assert_eq(c->ip_drop_hdr, 6);

    MUTATE(ip[10] ^= 1); feed(st, g, n, 0);
    cr_assert_eq(c->ip_drop_csum, 1);

    MUTATE((wr32(ip + 16, IP(198, 18, 0, 3)), RECSUM())); feed(st, g, n, 0);
    MUTATE((wr32(ip + 16, IP(198, 18, 0, 255)), RECSUM())); feed(st, g, n, 0);
    MUTATE((wr32(ip + 16, 0xffffffffu), RECSUM())); feed(st, g, n, 0);
    cr_assert_eq(c->ip_drop_not_us, 3);

    MUTATE((wr32(ip + 12, IP(127, 0, 0, 1)), RECSUM())); feed(st, g, n, 0);
    MUTATE((wr32(ip + 12, IP(224, 0, 0, 1)), RECSUM())); feed(st, g, n, 0);
    MUTATE((wr32(ip + 12, ADDR_US), RECSUM())); feed(st, g, n, 0);
    cr_assert_eq(c->ip_drop_hdr, 9, "invalid sources (RFC 1122 3.2.1.3)");

    MUTATE((wr16(ip + 6, 0x2000), RECSUM())); feed(st, g, n, 0); /* MF, odd length: bad */
    MUTATE((wr16(ip + 6, 0x0001), RECSUM())); feed(st, g, n, 0); /* offset 8: held (ipv4_frag.c) */
    cr_assert_eq(c->ip_drop_frag, 1);
    cr_assert_eq(c->ip_frag_in, 2);

    MUTATE((ip[9] = 17, RECSUM())); feed(st, g, n, 0);          /* UDP */
    cr_assert_eq(c->ip_drop_proto, 1);

    cr_assert_eq(c->ip_in, 16);
    cr_assert_eq(c->icmp_in, 0);
    cr_assert_eq(cap->n, 0);
}

Test(ipv4, ttl_irrelevant_on_input)
{
    uint8_t f[256];
    size_t n = echo_frame(f, 5);
    f[14 + 8] = 0;
    wr16(f + 14 + 10, 0);
    wr16(f + 14 + 10, csum_fold(csum_partial(f + 14, 20, 0)));
    feed(st, f, n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp_echo_reply_out, 1);
}

Test(ipv4, icmp_bad_messages_counted)
{
    uint8_t f[256], m[64];
    size_t ml = mk_echo(m, ICMP_ECHO, 1, 1, echo_data, 10);
    m[5] ^= 0x10;                                              /* checksum now wrong */
    size_t n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, m, ml);
    feed(st, f, n, 0);
    n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, m, 7); /* shorter than 8 */
    feed(st, f, n, 0);
    /* A destination unreachable quoting a UDP datagram: not TCP's business. */
    uint8_t q[64];
    memset(q, 0, sizeof(q));
    q[0] = 3; q[1] = 3;
    q[8] = 0x45; q[8 + 9] = 17;
    wr32(q + 8 + 12, ADDR_US); wr32(q + 8 + 16, ADDR_PEER);
    wr16(q + 2, csum_fold(csum_partial(q, 36, 0)));
    n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, q, 36);
    feed(st, f, n, 0);
    /* One quoting a TCP header cut short (fewer than 8 bytes). */
    memset(q, 0, sizeof(q));
    q[0] = 3; q[1] = 3;
    q[8] = 0x45; q[8 + 9] = 6;
    wr32(q + 8 + 12, ADDR_US); wr32(q + 8 + 16, ADDR_PEER);
    wr16(q + 2, csum_fold(csum_partial(q, 34, 0)));
    n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, q, 34);
    feed(st, f, n, 0);
    const struct tcpsm_counters *c = tcpsm_stack_counters(st);
    cr_assert_eq(c->icmp_in, 4);
    cr_assert_eq(c->icmp_drop_bad, 4);
    cr_assert_eq(c->icmp_unreach_in, 2);
    cr_assert_eq(cap->n, 0);
}

Test(ipv4, icmp_source_quench_and_echo_reply_ignored)
{
    uint8_t f[256], m[64];
    size_t ml = mk_echo(m, ICMP_SOURCE_QUENCH, 0, 0, echo_data, 28);
    size_t n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, m, ml);
    feed(st, f, n, 0);
    ml = mk_echo(m, ICMP_ECHO_REPLY, 0, 0, echo_data, 8);
    n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, m, ml);
    feed(st, f, n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp_in, 2);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp_drop_bad, 0);
    cr_assert_eq(cap->n, 0);
}

Test(ipv4, output_header_and_ids)
{
    for (unsigned i = 0; i < 3; i++) {
        uint8_t *p = ipv4_out_begin(st, 10);
        memset(p, (int)i, 10);
        ipv4_out_commit(st, ADDR_PEER, 200, 10);
    }
    stack_tx_flush(st);
    cr_assert_eq(cap->n, 3);
    for (unsigned i = 0; i < 3; i++) {
        const uint8_t *ip = cap->data[i] + 14;
        cr_assert_eq(cap->len[i], 44);
        cr_assert_eq(ip[0], 0x45);
        cr_assert_eq(rd16(ip + 2), 30);
        cr_assert_eq(rd16(ip + 4), i);
        cr_assert_eq(rd16(ip + 6), 0x4000, "DF set");
        cr_assert_eq(ip[8], 64);
        cr_assert_eq(ip[9], 200);
        cr_assert_eq(rd32(ip + 12), ADDR_US);
        cr_assert_eq(rd32(ip + 16), ADDR_PEER);
        cr_assert_eq(csum_fold(csum_partial(ip, 20, 0)), 0);
    }
}

Test(ipv4, output_size_limit)
{
    cr_assert_eq(ipv4_mtu_l4(st), 1480);
    cr_assert_not_null(ipv4_out_begin(st, 1480));
    cr_assert_null(ipv4_out_begin(st, 1481));
    cr_assert_eq(tcpsm_stack_counters(st)->tx_drop, 1);
    /* TSO alone (no payload slices, no checksum offload) changes nothing */
    cap->dev.features = TCPSM_NETDEV_F_TSO;
    cr_assert_eq(ipv4_mtu_l4(st), 1480);
    cr_assert_eq(ipv4_max_l4(st), 1480);
    /* with all three: super-segments up to the IPv4 limit; the MSS still
     * comes from the MTU */
    cap->dev.features = TCPSM_NETDEV_F_TSO | TCPSM_NETDEV_F_SG | TCPSM_NETDEV_F_TX_CSUM;
    cr_assert_eq(ipv4_mtu_l4(st), 1480);
    cr_assert_eq(ipv4_max_l4(st), 65535 - 20);
    cap->dev.gso_max = 16384;
    cr_assert_eq(ipv4_max_l4(st), 16384 - 20);
    cap->dev.features = 0;
}

Test(ipv4, output_routes_via_gateway_or_drops)
{
    uint8_t *p = ipv4_out_begin(st, 4);
    ipv4_out_commit(st, IP(8, 8, 8, 8), 6, 4);
    p = ipv4_out_begin(st, 4);
    ipv4_out_commit(st, IP(127, 0, 0, 1), 6, 4);
    p = ipv4_out_begin(st, 4);
    ipv4_out_commit(st, IP(198, 18, 0, 255), 6, 4);
    (void)p;
    stack_tx_flush(st);
    cr_assert_eq(cap->n, 1);
    cr_assert_arr_eq(cap->data[0], MAC_GW, 6);
    cr_assert_eq(rd32(cap->data[0] + 14 + 16), IP(8, 8, 8, 8));
    cr_assert_eq(tcpsm_stack_counters(st)->ip_drop_noroute, 2);
}

Test(ipv4, routable_rules)
{
    cr_assert(tcpsm_stack_routable(st, ADDR_PEER));
    cr_assert(tcpsm_stack_routable(st, IP(198, 18, 0, 254)));
    cr_assert(tcpsm_stack_routable(st, IP(8, 8, 8, 8)), "via the gateway");
    cr_assert_not(tcpsm_stack_routable(st, ADDR_US), "no loopback in the stack");
    cr_assert_not(tcpsm_stack_routable(st, IP(198, 18, 0, 0)), "subnet network address");
    cr_assert_not(tcpsm_stack_routable(st, IP(198, 18, 0, 255)), "subnet broadcast");
    cr_assert_not(tcpsm_stack_routable(st, 0));
    cr_assert_not(tcpsm_stack_routable(st, IP(0, 1, 2, 3)));
    cr_assert_not(tcpsm_stack_routable(st, IP(127, 0, 0, 1)));
    cr_assert_not(tcpsm_stack_routable(st, IP(224, 0, 0, 1)));
    cr_assert_not(tcpsm_stack_routable(st, IP(239, 255, 255, 250)));
    cr_assert_not(tcpsm_stack_routable(st, 0xffffffffu));
}

Test(stack_cfg, routable_without_gateway_and_small_prefixes)
{
    struct capdev *c = cap_new();
    struct tcpsm_config cfg = test_cfg();
    struct tcpsm_stack *s = tcpsm_stack_new(&cfg, &c->dev, 0);
    cr_assert(tcpsm_stack_routable(s, ADDR_PEER));
    cr_assert_not(tcpsm_stack_routable(s, IP(8, 8, 8, 8)));
    tcpsm_stack_free(s);
    cfg.prefix_len = 31;                     /* RFC 3021: both addresses are hosts */
    cfg.addr = IP(198, 18, 0, 0);
    s = tcpsm_stack_new(&cfg, &c->dev, 0);
    cr_assert(tcpsm_stack_routable(s, IP(198, 18, 0, 1)));
    cr_assert_not(tcpsm_stack_routable(s, IP(198, 18, 0, 2)));
    tcpsm_stack_free(s);
    cfg.prefix_len = 32;
    s = tcpsm_stack_new(&cfg, &c->dev, 0);
    cr_assert_not(tcpsm_stack_routable(s, IP(198, 18, 0, 1)));
    tcpsm_stack_free(s);
    free(c);
}

Test(stack_cfg, rejects_bad_config_and_applies_defaults)
{
    struct capdev *c = cap_new();
    struct tcpsm_config cfg = test_cfg();
    struct tcpsm_config bad;
    bad = cfg; bad.addr = 0;                cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.prefix_len = 0;          cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.prefix_len = 33;         cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.mac[0] = 0x01;           cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; memset(bad.mac, 0, 6);       cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.addr = IP(127, 0, 0, 1); cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.addr = IP(224, 0, 0, 1); cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.gateway = IP(10, 0, 0, 1); cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    bad = cfg; bad.gateway = ADDR_US;       cr_assert_null(tcpsm_stack_new(&bad, &c->dev, 0));
    cr_assert_null(tcpsm_stack_new(NULL, &c->dev, 0));
    cr_assert_null(tcpsm_stack_new(&cfg, NULL, 0));
    c->dev.mtu = 67;
    cr_assert_null(tcpsm_stack_new(&cfg, &c->dev, 0));
    c->dev.mtu = 1500;

    struct tcpsm_stack *s = tcpsm_stack_new(&cfg, &c->dev, 5);
    cr_assert_not_null(s);
    cr_assert_eq(s->cfg.max_socks, 65536);
    cr_assert_eq(s->cfg.sndbuf, 256 * 1024);
    cr_assert_eq(s->cfg.rcvbuf, 256 * 1024);
    cr_assert_eq(s->cfg.msl_ms, 30000);
    cr_assert_eq(s->cfg.neigh_max, 256);
    cr_assert_eq(s->netmask, 0xffffff00u);
    cr_assert_eq(tcpsm_stack_addr(s), ADDR_US);
    cr_assert_eq(tcpsm_stack_next_deadline(s), UINT64_MAX);
    tcpsm_stack_free(s);
    free(c);
}

/* An ICMP error quoting the SYN the stack sent (IP header + first 8 TCP bytes). */
static void icmp_about_last_frame(uint8_t type, uint8_t code)
{
    uint8_t q[8 + 28], f[128];
    memset(q, 0, 8);
    q[0] = type;
    q[1] = code;
    memcpy(q + 8, cap->data[cap->n - 1] + 14, 28);
    wr16(q + 2, csum_fold(csum_partial(q, sizeof(q), 0)));
    size_t n = mk_ip(f, MAC_US, MAC_GW, ADDR_GW, ADDR_US, 1, 5, q, sizeof(q));
    feed(st, f, n, 0);
}

Test(ipv4, icmp_port_unreachable_aborts_syn_sent)
{
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(st, &sk), 0);
    cr_assert_eq(tcpsm_sock_connect(sk, ADDR_PEER, 80, 0), -EINPROGRESS);
    cr_assert_eq(cap->n, 1);
    cr_assert_eq(cap->data[0][14 + 9], 6, "the SYN went out");
    /* A soft error (network unreachable) is only recorded (RFC 1122 4.2.3.9). */
    icmp_about_last_frame(ICMP_DEST_UNREACH, 0);
    cr_assert_eq(tcpsm_sock_state(sk), TCPSM_SYN_SENT);
    /* A hard one (port unreachable) aborts the connection attempt. */
    icmp_about_last_frame(ICMP_DEST_UNREACH, 3);
    cr_assert_eq(tcpsm_sock_state(sk), TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(sk), ECONNREFUSED);
    cr_assert_eq(tcpsm_stack_counters(st)->icmp_unreach_in, 2);
    tcpsm_sock_close(sk, 0);
}
