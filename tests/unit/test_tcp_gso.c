/* The fast path in the core, deterministically: super-segments (TSO) over
 * the in-memory link's software segmentation, partial retransmission and
 * partial SACK of one, large (GRO) segments received and ACKed at once,
 * checksum offload, plus Linux's slow start (RFC 3465 ABC, L = 2) and
 * quick-ACK start. Two stacks run on a virtual clock; the test moves every
 * frame itself so it can look at (and drop) exactly the one it wants. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "netdev_mem.h"
#include "stack.h"
#include "tcp_harness.h"
#include "tcpsm/core.h"

#define A_ADDR 0xC6120001u      /* 198.18.0.1 */
#define B_ADDR 0xC6120002u      /* 198.18.0.2 */
#define PORT   5001
#define T0     1000000000ull
#define SECN   1000000000ull
#define MSS_TS 1448u            /* 1500 - 40 - 12 (timestamps) */
#define MSS6_TS 1428u           /* 1500 - 60 - 12 (timestamps) */

/* 2001:2::1 and ::2; the pair runs over IPv6 when g_v6 is set. */
static const struct tcpsm_addr A6 = { { 0x20, 0x01, 0, 0x02, [15] = 1 } };
static const struct tcpsm_addr B6 = { { 0x20, 0x01, 0, 0x02, [15] = 2 } };
static bool g_v6;

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One frame seen on the link toward a side, parsed. */
struct wseg {
    uint32_t tot;               /* IP total length (IPv6: 40 + payload length) */
    uint32_t seq, ack, len;     /* TCP */
    uint8_t flags;
    bool csum_ok, ip_ok;
};

static bool parse6(const uint8_t *f, uint32_t flen, struct wseg *w)
{
    if (flen < 14 + 40 + 20 || f[14 + 6] != 6)
        return false;
    const uint8_t *ip = f + 14;
    uint32_t l4 = g16(ip + 4);
    w->tot = 40 + l4;
    const uint8_t *th = ip + 40;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    w->seq = g32(th + 4);
    w->ack = g32(th + 8);
    w->flags = th[13];
    w->len = l4 - thl;
    w->ip_ok = (ip[0] >> 4) == 6 && 14 + 40 + l4 <= flen;
    w->csum_ok = w->ip_ok &&
                 csum_fold(csum_partial(th, l4, csum_pseudo6(ip + 8, ip + 24, 6, l4))) == 0;
    return true;
}

static bool parse(const uint8_t *f, uint32_t flen, struct wseg *w)
{
    if (flen >= 14 && g16(f + 12) == 0x86DD)
        return parse6(f, flen, w);
    if (flen < 14 + 20 + 20 || g16(f + 12) != 0x0800 || f[14 + 9] != 6)
        return false;
    const uint8_t *ip = f + 14;
    uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
    w->tot = g16(ip + 2);
    const uint8_t *th = ip + ihl;
    uint32_t thl = (uint32_t)(th[12] >> 4) * 4;
    w->seq = g32(th + 4);
    w->ack = g32(th + 8);
    w->flags = th[13];
    w->len = w->tot - ihl - thl;
    w->ip_ok = csum_fold(csum_partial(ip, ihl, 0)) == 0;
    uint32_t l4 = w->tot - ihl;
    w->csum_ok = csum_fold(csum_partial(th, l4, csum_pseudo(g32(ip + 12), g32(ip + 16), 6,
                                                           (uint16_t)l4))) == 0;
    return true;
}

struct gpair {
    struct memlink *l;
    struct tcpsm_stack *st[2];
    struct tcpsm_sock *lsk, *sk[2];
    uint64_t now;
    /* what crossed the link toward each side */
    unsigned nframes[2], nbig[2], nbad_csum[2], maxtot[2];
    /* drop the drop_nth-th data frame toward B (1-based; 0 = none) */
    unsigned drop_nth, data_to_b;
    uint32_t dropped_seq, dropped_len;
    /* data frames toward B that resend bytes already seen (retransmissions) */
    unsigned rtx_frames;
    uint32_t rtx_seq[16], rtx_len[16];
    uint32_t b_top;             /* highest sequence end seen toward B */
    bool b_top_set;
    /* ACKs from B: at which time each data frame toward B was input, and
     * the latest delay from a data frame's arrival to the next ACK */
    uint64_t last_data_in, max_ack_delay;
    bool awaiting_ack;
    /* the stream */
    uint64_t total, sent, got;
    uint8_t *src, *dst;
};

static struct tcpsm_stack *mkstack(struct tcpsm_netdev *dev, uint32_t addr, uint8_t macl,
                                   uint64_t now)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = addr;
    c.prefix_len = 24;
    memcpy(c.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 0, macl }, 6);
    c.secret[0] = 0x1111u * macl;
    c.secret[1] = 0x2222u * macl;
    c.msl_ms = 1000;
    c.sndbuf = 1u << 20;
    c.rcvbuf = 1u << 20;
    if (g_v6) {
        memcpy(c.addr6, addr == A_ADDR ? A6.b : B6.b, 16);
        c.prefix6_len = 64;
    }
    struct tcpsm_stack *st = tcpsm_stack_new(&c, dev, now);
    cr_assert_not_null(st);
    return st;
}

static struct gpair *gpair_new_lp(const struct memlink_params *lp, uint64_t seed, uint64_t total)
{
    struct gpair *g = calloc(1, sizeof *g);
    cr_assert_not_null(g);
    g->l = memlink_new(lp, seed);
    cr_assert_not_null(g->l);
    g->now = T0;
    memlink_set_now(g->l, g->now);
    g->st[0] = mkstack(memlink_dev(g->l, 0), A_ADDR, 1, g->now);
    g->st[1] = mkstack(memlink_dev(g->l, 1), B_ADDR, 2, g->now);
    g->total = total;
    g->src = malloc(total);
    g->dst = malloc(total);
    cr_assert(g->src && g->dst);
    h_pattern(g->src, total, 99);
    return g;
}

static struct gpair *gpair_new(int gso, uint64_t total)
{
    struct memlink_params lp = { .gso = gso, .delay_ns = 1000000 };
    return gpair_new_lp(&lp, 7, total);
}

static void gpair_free(struct gpair *g)
{
    tcpsm_stack_free(g->st[0]);
    tcpsm_stack_free(g->st[1]);
    memlink_free(g->l);
    free(g->src);
    free(g->dst);
    free(g);
}

/* Looks at (and maybe drops) one frame toward side; true to deliver it. */
static bool inspect(struct gpair *g, int side, const struct tcpsm_frame *f)
{
    struct wseg w;
    if (!parse(f->data, f->len, &w))
        return true;
    g->nframes[side]++;
    if (!w.csum_ok || !w.ip_ok)
        g->nbad_csum[side]++;
    if (w.tot > 1500)
        g->nbig[side]++;
    if (w.tot > g->maxtot[side])
        g->maxtot[side] = w.tot;
    if (side != 1 || !w.len)
        return true;
    if (g->b_top_set && (int32_t)(w.seq + w.len - g->b_top) <= 0 && g->rtx_frames < 16) {
        g->rtx_seq[g->rtx_frames] = w.seq;
        g->rtx_len[g->rtx_frames] = w.len;
        g->rtx_frames++;
    }
    if (!g->b_top_set || (int32_t)(w.seq + w.len - g->b_top) > 0) {
        g->b_top = w.seq + w.len;
        g->b_top_set = true;
    }
    if (++g->data_to_b == g->drop_nth) {
        g->dropped_seq = w.seq;
        g->dropped_len = w.len;
        return false;
    }
    return true;
}

static void pump_app(struct gpair *g)
{
    if (!g->sk[1] && g->lsk) {
        struct tcpsm_sock *c;
        if (tcpsm_sock_accept(g->lsk, &c) == 0)
            g->sk[1] = c;
    }
    if (g->sk[0] && tcpsm_sock_state(g->sk[0]) == TCPSM_ESTABLISHED && g->sent < g->total) {
        ssize_t r = tcpsm_sock_send(g->sk[0], g->src + g->sent, g->total - g->sent, g->now);
        if (r > 0)
            g->sent += (uint64_t)r;
        else
            cr_assert_eq(r, -EAGAIN);
    }
    if (g->sk[1]) {
        for (;;) {
            ssize_t r = tcpsm_sock_recv(g->sk[1], g->dst + g->got, g->total - g->got, 0, g->now);
            if (r <= 0)
                break;
            g->got += (uint64_t)r;
        }
    }
}

/* Runs until the whole stream arrived or limit (virtual) passed. */
static bool run(struct gpair *g, uint64_t limit)
{
    uint64_t end = g->now + limit;
    struct tcpsm_frame fr[TCPSM_TX_BATCH], keep[TCPSM_TX_BATCH];
    while (g->now < end) {
        pump_app(g);
        if (g->got == g->total && g->total)
            return true;
        uint64_t t = memlink_next_due(g->l);
        for (int s = 0; s < 2; s++) {
            uint64_t d = tcpsm_stack_next_deadline(g->st[s]);
            if (d < t)
                t = d;
        }
        if (t == UINT64_MAX)
            return false;
        if (t > g->now)
            g->now = t;
        memlink_set_now(g->l, g->now);
        for (int s = 0; s < 2; s++) {
            unsigned k;
            while ((k = memlink_deliver(g->l, s, g->now, fr, TCPSM_TX_BATCH)) > 0) {
                unsigned n = 0;
                bool data = false;
                for (unsigned i = 0; i < k; i++) {
                    if (inspect(g, s, &fr[i]))
                        keep[n++] = fr[i];
                    struct wseg w;
                    if (s == 1 && parse(fr[i].data, fr[i].len, &w) && w.len)
                        data = true;
                }
                unsigned before = memlink_in_flight(g->l, 0);
                tcpsm_stack_input(g->st[s], keep, n, g->now);
                if (s == 1 && data && memlink_in_flight(g->l, 0) == before) {
                    if (!g->awaiting_ack)
                        g->last_data_in = g->now;
                    g->awaiting_ack = true;
                } else if (s == 1 && memlink_in_flight(g->l, 0) > before) {
                    g->awaiting_ack = false;
                }
            }
        }
        for (int s = 0; s < 2; s++) {
            if (tcpsm_stack_next_deadline(g->st[s]) <= g->now) {
                unsigned before = memlink_in_flight(g->l, 0);
                tcpsm_stack_timers(g->st[s], g->now);
                if (s == 1 && g->awaiting_ack && memlink_in_flight(g->l, 0) > before) {
                    uint64_t d = g->now - g->last_data_in;
                    if (d > g->max_ack_delay)
                        g->max_ack_delay = d;
                    g->awaiting_ack = false;
                }
            }
        }
        pump_app(g);
    }
    return g->got == g->total;
}

static void connect_pair(struct gpair *g)
{
    cr_assert_eq(tcpsm_sock_new(g->st[1], &g->lsk), 0);
    if (g_v6) {
        static const struct tcpsm_addr any;
        cr_assert_eq(tcpsm_sock_setopt(g->lsk, TCPSM_OPT_IPV6, 1), 0);
        cr_assert_eq(tcpsm_sock_bind_addr(g->lsk, &any, PORT), 0);
    } else {
        cr_assert_eq(tcpsm_sock_bind(g->lsk, 0, PORT), 0);
    }
    cr_assert_eq(tcpsm_sock_listen(g->lsk, 4), 0);
    cr_assert_eq(tcpsm_sock_new(g->st[0], &g->sk[0]), 0);
    if (g_v6) {
        cr_assert_eq(tcpsm_sock_setopt(g->sk[0], TCPSM_OPT_IPV6, 1), 0);
        cr_assert_eq(tcpsm_sock_connect_addr(g->sk[0], &B6, PORT, g->now), -EINPROGRESS);
    } else {
        cr_assert_eq(tcpsm_sock_connect(g->sk[0], B_ADDR, PORT, g->now), -EINPROGRESS);
    }
}

static void check_stream(struct gpair *g)
{
    cr_assert_eq(g->got, g->total, "received %llu of %llu", (unsigned long long)g->got,
                 (unsigned long long)g->total);
    cr_assert(memcmp(g->src, g->dst, g->total) == 0, "the stream differs");
}

/* The netdev of a memlink with offloads offers all three features. */
Test(tcp_gso, memlink_offers_offloads_only_when_asked)
{
    struct memlink_params off = { 0 }, on = { .gso = MEMLINK_GSO_SEGMENT };
    struct memlink *a = memlink_new(&off, 1), *b = memlink_new(&on, 1);
    cr_assert_eq(memlink_dev(a, 0)->features, 0);
    cr_assert_eq(memlink_dev(b, 1)->features,
                 TCPSM_NETDEV_F_SG | TCPSM_NETDEV_F_TX_CSUM | TCPSM_NETDEV_F_TSO |
                     TCPSM_NETDEV_F_TSO6);
    struct memlink_params bad = { .gso = 3 };
    cr_assert_null(memlink_new(&bad, 1));
    memlink_free(a);
    memlink_free(b);
}

/* Delivered whole (as veth to a GRO receiver): frames far above the MTU,
 * whole segments each, checksums finished by the "hardware", the stream
 * exact, and the receiver ACKs each large frame at once. */
Test(tcp_gso, super_segments_delivered_whole)
{
    struct gpair *g = gpair_new(MEMLINK_GSO_WHOLE, 2u << 20);
    connect_pair(g);
    cr_assert(run(g, 60 * SECN));
    check_stream(g);
    const struct tcpsm_counters *c = tcpsm_stack_counters(g->st[0]);
    cr_assert_gt(c->tcp_gso_out, 0);
    cr_assert_gt(c->tcp_gso_segs, 2 * c->tcp_gso_out);
    cr_assert_gt(g->nbig[1], 0, "no frame above the MTU reached B");
    cr_assert_leq(g->maxtot[1], 65535);
    cr_assert_gt(g->maxtot[1], 32768, "largest datagram %u", g->maxtot[1]);
    cr_assert_eq(g->nbad_csum[1], 0);
    cr_assert_eq(g->nbad_csum[0], 0);
    cr_assert_eq(g->nbig[0], 0, "pure ACKs only toward A");
    cr_assert_gt(memlink_stats(g->l, 0)->gso_in, 0);
    /* B never left a received large frame to the 40 ms delayed-ACK timer */
    cr_assert_lt(g->max_ack_delay, 40000000ull, "an ACK waited %llu ns",
                 (unsigned long long)g->max_ack_delay);
    cr_assert_eq(tcpsm_stack_counters(g->st[1])->tcp_drop_csum, 0);
    gpair_free(g);
}

/* Cut by the link (software TSO): only MTU-sized frames on the wire, each
 * with valid checksums, and the same bytes. */
Test(tcp_gso, super_segments_cut_at_the_mss)
{
    struct gpair *g = gpair_new(MEMLINK_GSO_SEGMENT, 1u << 20);
    connect_pair(g);
    cr_assert(run(g, 60 * SECN));
    check_stream(g);
    cr_assert_gt(memlink_stats(g->l, 0)->gso_in, 0, "A sent no super-segment");
    cr_assert_eq(g->nbig[1], 0);
    cr_assert_leq(g->maxtot[1], 1500);
    cr_assert_eq(g->nbad_csum[1], 0);
    cr_assert_eq(g->nbad_csum[0], 0);
    cr_assert_eq(tcpsm_stack_counters(g->st[0])->tcp_retrans, 0);
    gpair_free(g);
}

/* One segment in the middle of a super-segment is lost: SACK reports the
 * segments after it (part of the super-segment), and exactly the lost
 * segment goes again, not the whole 64 KiB frame; no RTO. */
static void partial_loss(int gso)
{
    struct gpair *g = gpair_new(gso, 256u << 10);
    g->drop_nth = 5;            /* inside the first flight (IW10 = one super-segment) */
    connect_pair(g);
    cr_assert(run(g, 60 * SECN));
    check_stream(g);
    if (gso)
        cr_assert_gt(memlink_stats(g->l, 0)->gso_in, 0);
    cr_assert_gt(g->dropped_len, 0, "nothing was dropped");
    cr_assert_eq(g->rtx_frames, 1, "%u retransmitted frames", g->rtx_frames);
    cr_assert_eq(g->rtx_seq[0], g->dropped_seq);
    cr_assert_eq(g->rtx_len[0], g->dropped_len, "resent %u bytes for a lost %u",
                 g->rtx_len[0], g->dropped_len);
    const struct tcpsm_counters *c = tcpsm_stack_counters(g->st[0]);
    cr_assert_eq(c->tcp_rto, 0);
    cr_assert_eq(c->tcp_retrans, 1);
    cr_assert_eq(g->nbad_csum[1], 0);
    gpair_free(g);
}

Test(tcp_gso, partial_retransmission_cut_at_the_mss)
{
    partial_loss(MEMLINK_GSO_SEGMENT);
}

/* The same without offloads: the segment-at-a-time path behaves alike. */
Test(tcp_gso, partial_retransmission_reference_without_offloads)
{
    partial_loss(MEMLINK_GSO_OFF);
}

/* Loss, reordering and duplication of segments cut from super-segments. */
Test(tcp_gso, impaired_link_stream_exact)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct memlink_params lp = { .gso = MEMLINK_GSO_SEGMENT, .loss_pct = 2, .reorder_pct = 3,
                                     .dup_pct = 1, .delay_ns = 2000000, .jitter_ns = 500000 };
        struct gpair *p = gpair_new_lp(&lp, seed, 1u << 20);
        connect_pair(p);
        cr_assert(run(p, 600 * SECN), "seed %llu: %llu of %llu", (unsigned long long)seed,
                  (unsigned long long)p->got, (unsigned long long)p->total);
        check_stream(p);
        cr_assert_gt(memlink_stats(p->l, 0)->lost, 0);
        cr_assert_gt(tcpsm_stack_counters(p->st[0])->tcp_gso_out, 0);
        gpair_free(p);
    }
}

/* csum_partial_at chains slices at any offset parity to the sum of the whole. */
Test(tcp_gso, checksum_of_scattered_slices)
{
    uint8_t b[301];
    h_pattern(b, sizeof b, 3);
    uint32_t whole = csum_partial(b, sizeof b, 0x1234);
    for (size_t cut1 = 0; cut1 < 40; cut1++) {
        for (size_t cut2 = cut1; cut2 < sizeof b; cut2 += 37) {
            uint32_t s = csum_partial(b, cut1 & ~(size_t)1, 0x1234);
            size_t at = cut1 & ~(size_t)1;
            s = csum_partial_at(b + at, cut2 - at, s, at);
            s = csum_partial_at(b + cut2, sizeof b - cut2, s, cut2);
            cr_assert_eq(csum_fold(s), csum_fold(whole), "cuts %zu %zu", cut1, cut2);
        }
    }
}

/* ------------------------------------------------ IPv6 super-segments */

/* A crafted IPv6/TCP super-segment of pay bytes (32-byte TCP header),
 * handed to side 0 of l as the core hands one: headers in data, the
 * payload in two slices, CSUM_PARTIAL with the pseudo-header sum over
 * the whole L4 length (as Linux seeds it), GSO_TCPV6 with gso. */
static void send_super6(struct memlink *l, const uint8_t *pay, uint32_t n, uint16_t gso,
                        uint8_t flags)
{
    static uint8_t h[14 + 40 + 32];
    memset(h, 0, sizeof h);
    h[12] = 0x86;
    h[13] = 0xdd;
    uint8_t *ip = h + 14, *th = ip + 40;
    ip[0] = 0x60;
    ip[4] = (uint8_t)((32 + n) >> 8);
    ip[5] = (uint8_t)(32 + n);
    ip[6] = 6;
    ip[7] = 64;
    memcpy(ip + 8, A6.b, 16);
    memcpy(ip + 24, B6.b, 16);
    th[0] = 0x13, th[1] = 0x89, th[2] = 0x13, th[3] = 0x8a;
    th[4] = 0xff, th[5] = 0xff, th[6] = 0xf0, th[7] = 0x00;    /* wraps mid-frame */
    th[12] = 8 << 4;
    th[13] = flags;
    th[14] = 0xff;
    uint16_t seed = (uint16_t)~csum_fold(csum_pseudo6(ip + 8, ip + 24, 6, 32 + n));
    th[16] = (uint8_t)(seed >> 8);
    th[17] = (uint8_t)seed;
    uint32_t cut = n / 3 | 1;   /* odd: the second slice starts at an odd offset */
    struct tcpsm_frame f = { .data = h, .len = sizeof h, .gso_size = gso,
                             .flags = TCPSM_FRAME_CSUM_PARTIAL | TCPSM_FRAME_GSO_TCPV6,
                             .csum_start = 14 + 40, .csum_offset = 16,
                             .pay = { pay, pay + cut }, .plen = { cut, n - cut } };
    cr_assert_eq(memlink_dev(l, 0)->ops->send(memlink_dev(l, 0), &f, 1), 1);
}

/* Software segmentation of an IPv6 super-segment: segments of exactly
 * gso bytes but the last, each with its own payload length, sequence
 * number (across the 2^32 wrap) and valid checksum; PSH/FIN on the last
 * only, CWR on the first only; the bytes in order. */
Test(tcp_gso6, memlink_cuts_at_gso_size)
{
    static const uint32_t sizes[] = { 1429, 2 * MSS6_TS, 2 * MSS6_TS + 1, 45 * MSS6_TS + 700,
                                      65495 - 32 };
    static uint8_t pay[65535];
    h_pattern(pay, sizeof pay, 5);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint32_t n = sizes[k];
        struct memlink_params lp = { .gso = MEMLINK_GSO_SEGMENT };
        struct memlink *l = memlink_new(&lp, 1);
        cr_assert_not_null(l);
        memlink_set_now(l, T0);
        send_super6(l, pay, n, MSS6_TS, 0x10 | 0x08 | 0x01 | 0x80);   /* ACK PSH FIN CWR */
        struct tcpsm_frame fr[TCPSM_TX_BATCH];
        uint32_t off = 0, nseg = 0, want = (n + MSS6_TS - 1) / MSS6_TS;
        unsigned got;
        while ((got = memlink_deliver(l, 1, UINT64_MAX / 2, fr, TCPSM_TX_BATCH)) > 0) {
            for (unsigned i = 0; i < got; i++, nseg++) {
                struct wseg w;
                cr_assert(parse(fr[i].data, fr[i].len, &w));
                uint32_t exp = n - off < MSS6_TS ? n - off : MSS6_TS;
                cr_assert_eq(w.len, exp, "size %u segment %u: %u bytes", n, nseg, w.len);
                cr_assert_eq(fr[i].len, 14 + 40 + 32 + exp);
                cr_assert(w.csum_ok, "size %u segment %u: bad checksum", n, nseg);
                cr_assert_eq(w.seq, 0xfffff000u + off);
                bool last = off + exp == n;
                cr_assert_eq(w.flags & 0x09, last ? 0x09 : 0, "PSH/FIN on the last only");
                cr_assert_eq(w.flags & 0x80, nseg == 0 ? 0x80 : 0, "CWR on the first only");
                cr_assert(memcmp(fr[i].data + 14 + 40 + 32, pay + off, exp) == 0);
                off += exp;
            }
        }
        cr_assert_eq(off, n, "size %u: %u bytes delivered", n, off);
        cr_assert_eq(nseg, want);
        cr_assert_eq(memlink_stats(l, 0)->gso_in, 1);
        memlink_free(l);
    }
}

/* Delivered whole (as veth to a GRO receiver), the checksum finished over
 * the super-segment from the seed the core wrote: it verifies against the
 * pseudo-header with the whole payload length. */
Test(tcp_gso6, memlink_whole_checksum_from_full_length_seed)
{
    static uint8_t pay[40000];
    h_pattern(pay, sizeof pay, 6);
    struct memlink_params lp = { .gso = MEMLINK_GSO_WHOLE };
    struct memlink *l = memlink_new(&lp, 1);
    memlink_set_now(l, T0);
    send_super6(l, pay, sizeof pay, MSS6_TS, 0x10);
    struct tcpsm_frame fr[4];
    cr_assert_eq(memlink_deliver(l, 1, UINT64_MAX / 2, fr, 4), 1);
    struct wseg w;
    cr_assert(parse(fr[0].data, fr[0].len, &w));
    cr_assert_eq(w.tot, 40 + 32 + sizeof pay);
    cr_assert(w.csum_ok);
    memlink_free(l);
}

/* Two stacks over IPv6 on the segmenting link: the sender builds
 * super-segments (GSO_TCPV6), only MTU-sized frames reach B, all with
 * valid checksums, the stream exact, no retransmission. */
Test(tcp_gso6, bulk_transfer_cut_at_the_mss)
{
    g_v6 = true;
    struct gpair *g = gpair_new(MEMLINK_GSO_SEGMENT, 2u << 20);
    connect_pair(g);
    cr_assert(run(g, 60 * SECN));
    check_stream(g);
    const struct tcpsm_counters *c = tcpsm_stack_counters(g->st[0]);
    cr_assert_gt(c->tcp_gso_out, 0, "A sent no super-segment");
    cr_assert_gt(c->tcp_gso_segs, 2 * c->tcp_gso_out);
    cr_assert_gt(memlink_stats(g->l, 0)->gso_in, 0);
    cr_assert_gt(c->ip6_out, 0);
    cr_assert_eq(c->ip_out, 0, "no IPv4 on an IPv6 connection");
    cr_assert_eq(g->nbig[1], 0);
    cr_assert_leq(g->maxtot[1], 1500);
    cr_assert_gt(g->nframes[1], (2u << 20) / MSS6_TS);
    cr_assert_eq(g->nbad_csum[1], 0);
    cr_assert_eq(g->nbad_csum[0], 0);
    cr_assert_eq(c->tcp_retrans, 0);
    cr_assert_eq(tcpsm_stack_counters(g->st[1])->tcp_drop_csum, 0);
    gpair_free(g);
}

/* The same delivered whole: IPv6 frames far above the MTU with a payload
 * length of at most 65535, the checksum valid over the whole frame. */
Test(tcp_gso6, bulk_transfer_delivered_whole)
{
    g_v6 = true;
    struct gpair *g = gpair_new(MEMLINK_GSO_WHOLE, 2u << 20);
    connect_pair(g);
    cr_assert(run(g, 60 * SECN));
    check_stream(g);
    cr_assert_gt(tcpsm_stack_counters(g->st[0])->tcp_gso_out, 0);
    cr_assert_gt(g->nbig[1], 0, "no frame above the MTU reached B");
    cr_assert_leq(g->maxtot[1], 65535);
    cr_assert_gt(g->maxtot[1], 32768, "largest datagram %u", g->maxtot[1]);
    cr_assert_eq(g->nbad_csum[1], 0);
    cr_assert_eq(g->nbig[0], 0, "pure ACKs only toward A");
    cr_assert_eq(tcpsm_stack_counters(g->st[1])->tcp_drop_csum, 0);
    gpair_free(g);
}

/* One segment inside an IPv6 super-segment lost: exactly it goes again. */
Test(tcp_gso6, partial_retransmission_cut_at_the_mss)
{
    g_v6 = true;
    partial_loss(MEMLINK_GSO_SEGMENT);
}

/* ------------------------------------------------ one stack, crafted peer */

/* Linux quick-ACK start: the first 16 data segments are ACKed at once,
 * after that the delayed ACK (every second segment or 40 ms) returns. */
Test(tcp_quickack, first_segments_acked_at_once)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    for (unsigned i = 0; i < 16; i++) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x", .len = 1);
        h->rseq += 1;
        EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "y", .len = 1);
    h->rseq += 1;
    expect_no_seg(h);                   /* delayed now */
    h_advance(h, 50000000ull);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h_free(h);
}

/* RFC 3465 with RFC 9406's L = 8 for a sender that does not pace: in
 * slow start a stretch ACK of ten segments grows cwnd by eight segments
 * (not one, as RFC 5681 counting per ACK would, and not ten). */
Test(tcp_abc, stretch_ack_grows_cwnd_by_at_most_eight_segments)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    struct tcpsm_tcp_info in;
    tcpsm_sock_info(h->sk, &in);
    uint32_t mss = in.snd_mss, cw0 = in.snd_cwnd;
    cr_assert_eq(cw0, 10);
    static uint8_t d[40000];
    h_pattern(d, sizeof d, 4);
    cr_assert_gt(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)(12 * mss));
    h_drain(h);
    /* one ACK for the whole first flight */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 10 * mss, .win = H_RWIN);
    tcpsm_sock_info(h->sk, &in);
    cr_assert_eq(in.snd_cwnd, cw0 + 8, "cwnd %u segments", in.snd_cwnd);
    /* an ACK of one segment grows it by one */
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 11 * mss, .win = H_RWIN);
    tcpsm_sock_info(h->sk, &in);
    cr_assert_eq(in.snd_cwnd, cw0 + 9, "cwnd %u segments", in.snd_cwnd);
    h_free(h);
}

/* A GRO frame of many segments from the peer is taken whole and ACKed at
 * once (Linux __tcp_ack_snd_check: more than one full segment). */
Test(tcp_gro, large_segment_acked_at_once)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_no_quickack(h);
    static uint8_t d[8 * 1448];
    h_pattern(d, sizeof d, 8);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d,
         .len = sizeof d);
    h->rseq += sizeof d;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    uint8_t b[sizeof d];
    h_app_recv(h, b, sizeof b);
    cr_assert(memcmp(b, d, sizeof d) == 0);
    h_free(h);
}
