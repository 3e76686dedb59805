/* Path MTU: ICMP "fragmentation needed" validated against the connection's
 * sequence space lowers its MSS and is remembered per destination for new
 * connections, aged out after 10 minutes, in a bounded table (RFC 1191,
 * RFC 8201, RFC 5927); black-hole detection (RFC 4821 / 8899) where ICMP
 * never comes. */
#include <criterion/criterion.h>
#include <string.h>

#include "addr.h"
#include "stack.h"
#include "tcp_harness.h"

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* ICMP type 3 code 4 from a router (198.18.0.254) quoting our segment to
 * the peer with sequence number seq, next-hop MTU mtu. */
static void frag_needed(struct harness *h, uint16_t mtu, uint32_t seq, uint16_t lport,
                        uint16_t rport)
{
    static const uint8_t hm[6] = { 0x02, 0, 0, 0, 0, 0x01 }, pm[6] = { 0x02, 0, 0, 0, 0, 0x02 };
    uint8_t f[14 + 20 + 8 + 20 + 8];
    memset(f, 0, sizeof f);
    memcpy(f, hm, 6);
    memcpy(f + 6, pm, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    put16(ip + 2, 20 + 8 + 20 + 8);
    ip[8] = 64;
    ip[9] = 1;
    put32(ip + 12, 0xC61200FEu);
    put32(ip + 16, H_ADDR);
    put16(ip + 10, h_csum(ip, 20, 0));
    uint8_t *ic = ip + 20;
    ic[0] = 3;
    ic[1] = 4;
    put16(ic + 6, mtu);
    uint8_t *q = ic + 8;
    q[0] = 0x45;
    put16(q + 2, 1500);
    put16(q + 6, 0x4000);
    q[8] = 64;
    q[9] = 6;
    put32(q + 12, H_ADDR);
    put32(q + 16, H_PEER);
    put16(q + 10, h_csum(q, 20, 0));
    put16(q + 20, lport);
    put16(q + 22, rport);
    put32(q + 24, seq);
    put16(ic + 2, h_csum(ic, 8 + 20 + 8, 0));
    h_input(h, f, sizeof f);
}

static int ip_mtu(struct tcpsm_sock *sk)
{
    int v = 0;
    cr_assert_eq(tcpsm_sock_getopt(sk, TCPSM_OPT_MTU, &v), 0);
    return v;
}

/* Active opens to the peer from port lport: returns the connected socket
 * and the MSS its first full segment has. */
static struct tcpsm_sock *connect_from(struct harness *h, uint16_t lport, uint32_t *lisn)
{
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), 0);
    cr_assert_eq(tcpsm_sock_bind(sk, 0, lport), 0);
    tcpsm_sock_connect(sk, H_PEER, H_RPORT, h->now);
    struct seg s = EXPECT_SEG(h, .flags = SYN, .sport = lport);
    *lisn = s.seq;
    SEND(h, .flags = SYN | ACK, .seq = 5000, .ack = s.seq + 1, .win = H_RWIN, .mss = 1460,
         .dport = lport);
    EXPECT_SEG(h, .flags = ACK, .dport = H_RPORT, .sport = lport);
    return sk;
}

static uint32_t first_seg_len(struct harness *h, struct tcpsm_sock *sk)
{
    static uint8_t buf[8000];
    h_pattern(buf, sizeof buf, 7);
    cr_assert_eq(tcpsm_sock_send(sk, buf, sizeof buf, h->now), (ssize_t)sizeof buf);
    struct seg s;
    cr_assert(recv_seg(h, &s));
    h_drain(h);
    return (uint32_t)s.len;
}

Test(tcp_pmtu, icmp_lowers_mss_and_is_remembered_per_destination)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t buf[6000];
    h_pattern(buf, sizeof buf, 1);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof buf, h->now), (ssize_t)sizeof buf);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 1460);
    h_drain(h);
    /* a sequence number not in flight: ignored (RFC 5927 4.1) */
    frag_needed(h, 1200, h->lseq + 100000, H_LPORT, H_RPORT);
    cr_assert_eq(ip_mtu(h->sk), 1500);
    cr_assert_eq(tcpsm_stack_counters(h->st)->pmtu_learned, 0);
    /* in flight: the MSS follows (MTU - 40) and the head goes again at once */
    frag_needed(h, 1200, s.seq, H_LPORT, H_RPORT);
    cr_assert_eq(ip_mtu(h->sk), 1200);
    s = EXPECT_SEG(h, .seq = h->lseq);
    cr_assert_leq(s.len, 1160u, "resent %zu bytes", s.len);
    cr_assert_eq(tcpsm_stack_counters(h->st)->pmtu_learned, 1);
    h_drain(h);
    /* a new connection to the same destination starts at that MTU */
    uint32_t isn;
    struct tcpsm_sock *b = connect_from(h, 40001, &isn);
    cr_assert_eq(ip_mtu(b), 1200);
    cr_assert_leq(first_seg_len(h, b), 1160u);
    /* 10 minutes later the entry has aged out (RFC 1191 6.3) */
    h->now += SEC(601);
    struct tcpsm_sock *c = connect_from(h, 40002, &isn);
    cr_assert_eq(ip_mtu(c), 1500);
    cr_assert_eq(first_seg_len(h, c), 1460u);
    h_free(h);
}

/* An MTU below the floor is taken as the floor (Linux min_pmtu 552), not
 * lower: a forged ICMP cannot shrink segments to nothing. */
Test(tcp_pmtu, tiny_mtu_clamped)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t buf[3000];
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof buf, h->now), (ssize_t)sizeof buf);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 1460);
    h_drain(h);
    frag_needed(h, 68, s.seq, H_LPORT, H_RPORT);
    cr_assert_eq(ip_mtu(h->sk), 552);
    h_free(h);
}

/* The table is bounded: PMTU_MAX destinations; a full table gives up the
 * entry closest to expiry (pmtu_evicted); a higher MTU does not replace a
 * lower one before it expires (RFC 1191 6.3). */
Test(tcp_pmtu, table_bounded)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_addr a;
    for (uint32_t i = 0; i < PMTU_MAX + 10; i++) {
        a = addr_from_v4(0xC6130000u + i);      /* 198.19.0.0/16 */
        pmtu_learn(h->st, &a, 1400, h->now + i);
    }
    cr_assert_eq(tcpsm_stack_counters(h->st)->pmtu_evicted, 10);
    unsigned kept = 0;
    for (uint32_t i = 0; i < PMTU_MAX + 10; i++) {
        a = addr_from_v4(0xC6130000u + i);
        kept += pmtu_lookup(h->st, &a, h->now + PMTU_MAX + 10) == 1400;
    }
    cr_assert_eq(kept, PMTU_MAX);
    /* the oldest ones went */
    a = addr_from_v4(0xC6130000u);
    cr_assert_eq(pmtu_lookup(h->st, &a, h->now + PMTU_MAX + 10), 0);
    a = addr_from_v4(0xC6130000u + PMTU_MAX + 9);
    pmtu_learn(h->st, &a, 1450, h->now + 200);
    cr_assert_eq(pmtu_lookup(h->st, &a, h->now + 200), 1400);
    pmtu_learn(h->st, &a, 1300, h->now + 200);
    cr_assert_eq(pmtu_lookup(h->st, &a, h->now + 200), 1300);
    h_free(h);
}

/* A path that silently drops full-sized segments: after 3 s of RTOs in a
 * row with the peer silent the MSS falls to 1024 (RFC 4821 7.2 / Linux tcp_base_mss) and the
 * retransmissions that fit get through; the connection goes on. */
Test(tcp_pmtu, black_hole_lowers_mss)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t buf[6000];
    h_pattern(buf, sizeof buf, 3);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof buf, h->now), (ssize_t)sizeof buf);
    h_drain(h);                         /* every full segment vanishes */
    uint32_t smallest = 100000;
    for (int i = 0; i < 10 && smallest > 1024; i++) {
        cr_assert_neq(h_wait_seg(h, SEC(60)), UINT64_MAX);
        struct seg s;
        while (recv_seg(h, &s))
            if (s.len && s.len < smallest)
                smallest = (uint32_t)s.len;
    }
    cr_assert_leq(smallest, 1024u, "still %u-byte segments after the RTOs", smallest);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_pmtu_blackhole, 1);
    cr_assert_eq(ip_mtu(h->sk), 1064);
    /* small segments are ACKed: the data gets through, and the state is fine */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1024, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

/* When the black hole is declared, as Linux tcp_write_timeout with
 * tcp_mtu_probing = 1: at the first RTO that fires 3 s or more after the
 * first retransmission (retransmits_timed_out(tcp_retries1 = 3): 15 x
 * TCP_RTO_MIN), and not before; each RTO before it resends the head at
 * full size. */
Test(tcp_pmtu, black_hole_after_linux_retries1_time)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t buf[6000];
    h_pattern(buf, sizeof buf, 4);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_pmtu_blackhole, 0);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof buf, h->now), (ssize_t)sizeof buf);
    uint32_t head = h->lseq;
    struct seg s;
    uint32_t full = 0;
    while (recv_seg(h, &s))
        if (s.len > full)
            full = (uint32_t)s.len;
    cr_assert_gt(full, 1024u);
    uint64_t first = 0;
    unsigned rtos = 0;
    bool small = false;
    for (int i = 0; i < 20 && !small; i++) {
        cr_assert_neq(h_wait_seg(h, SEC(60)), UINT64_MAX);
        while (recv_seg(h, &s)) {
            if (s.seq != head || !s.len)
                continue;               /* a loss probe of the tail */
            rtos++;
            if (!first)
                first = h->now;
            if (h->now - first < MS(3000))
                cr_assert_eq((uint32_t)s.len, full, "RTO %u at +%llu ms: %u bytes, Linux keeps the MSS",
                             rtos, (unsigned long long)((h->now - first) / 1000000u), (unsigned)s.len);
            else {
                cr_assert_leq((uint32_t)s.len, 1024u, "RTO %u at +%llu ms still %u bytes", rtos,
                              (unsigned long long)((h->now - first) / 1000000u), (unsigned)s.len);
                small = true;
            }
        }
    }
    cr_assert(small);
    cr_assert_geq(rtos, 4u);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_pmtu_blackhole, 1);
    h_free(h);
}
