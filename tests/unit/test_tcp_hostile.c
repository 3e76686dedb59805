/* Hostile peer: from each state, thousands of seeded random segments
 * (flags, sequence and acknowledgment numbers near and far from the
 * connection's, windows, options, payloads) mixed with application calls
 * and time steps. The stack must never crash, leak (ASan) or grow without
 * bound; whatever state it ends in, freeing the stack cleans up.
 * HOSTILE_N (segments per state, default 3000) and HOSTILE_SEED vary a run. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_harness.h"

static uint64_t rng;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static uint32_t near(uint32_t base)
{
    switch (rnd() % 4) {
    case 0: return base;
    case 1: return base + (rnd() % 4096) - 2048;
    case 2: return base + (rnd() % 200000) - 100000;
    default: return rnd();
    }
}

static void w16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void w32(uint8_t *p, uint32_t v) { w16(p, v >> 16); w16(p + 2, v); }

/* A segment with raw option bytes: SACK blocks around the stack's
 * sequence space, or garbage (bad lengths, unknown kinds). */
static void send_raw_opts(struct harness *h, uint8_t flags, uint32_t seq, uint32_t ack)
{
    static const uint8_t hmac[6] = { 0x02, 0, 0, 0, 0, 0x01 }, pmac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
    uint8_t f[14 + 20 + 60 + 64];
    uint8_t opt[40];
    size_t olen;
    if (rnd() % 2) {
        unsigned nb = 1 + rnd() % 4;
        opt[0] = 1;
        opt[1] = 1;
        opt[2] = 5;
        opt[3] = (uint8_t)(2 + 8 * nb);
        for (unsigned i = 0; i < nb; i++) {
            uint32_t l = near(h->lseq - 20000);
            w32(opt + 4 + 8 * i, l);
            w32(opt + 8 + 8 * i, rnd() % 4 ? l + rnd() % 9000 : rnd());
        }
        olen = 4 + 8 * nb;
    } else {
        olen = 4 * (1 + rnd() % 10);
        for (size_t i = 0; i < olen; i++)
            opt[i] = (uint8_t)(rnd() % 4 ? rnd() % 10 : rnd());
    }
    size_t dlen = rnd() % 3 ? 0 : rnd() % 64;
    size_t thl = 20 + olen, l4 = thl + dlen;
    memcpy(f, hmac, 6);
    memcpy(f + 6, pmac, 6);
    w16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    w16(ip + 2, (uint32_t)(20 + l4));
    w16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    w32(ip + 12, H_PEER);
    w32(ip + 16, H_ADDR);
    w16(ip + 10, h_csum(ip, 20, 0));
    uint8_t *t = ip + 20;
    w16(t, H_RPORT);
    w16(t + 2, H_LPORT);
    w32(t + 4, seq);
    w32(t + 8, ack);
    t[12] = (uint8_t)((thl / 4) << 4);
    t[13] = flags;
    w16(t + 14, rnd());
    w16(t + 16, 0);
    w16(t + 18, 0);
    memcpy(t + 20, opt, olen);
    for (size_t i = 0; i < dlen; i++)
        t[thl + i] = (uint8_t)rnd();
    uint32_t ps = (H_PEER >> 16) + (H_PEER & 0xffff) + (H_ADDR >> 16) + (H_ADDR & 0xffff) + 6u +
                  (uint32_t)l4;
    w16(t + 16, h_csum(t, l4, ps));
    h_input(h, f, 14 + 20 + l4);
}

static void storm(struct harness *h, unsigned n)
{
    static uint8_t data[3000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)rnd();
    for (unsigned i = 0; i < n; i++) {
        struct seg s;
        memset(&s, 0, sizeof s);
        s.flags = (uint8_t)(rnd() & 0x3f);
        if (rnd() % 2)
            s.flags = (uint8_t)((s.flags & ~(SYN | RST)) | ACK);  /* mostly plausible */
        s.seq = near(h->rseq);
        s.ack = near(h->lseq);
        s.win = (uint16_t)(rnd() % 3 ? rnd() : 0);
        if (rnd() % 3 == 0) {
            s.len = rnd() % sizeof data;
            s.data = data;
        }
        if (rnd() % 4 == 0)
            s.mss = (uint16_t)rnd();
        if (rnd() % 4 == 0)
            s.wscale = (int)(rnd() % 20);
        s.sack_perm = rnd() % 4 == 0;
        if (rnd() % 3 == 0) {
            s.ts = true;
            s.tsval = rnd();
            s.tsecr = rnd();
        }
        if (rnd() % 50 == 0)
            s.sport = (uint16_t)(1 + rnd() % 65535);
        if (rnd() % 64 == 0)
            send_icmp_unreach(h, (uint8_t)(rnd() % 16), near(h->lseq));
        else if (rnd() % 4 == 0)
            send_raw_opts(h, (uint8_t)((s.flags & ~(SYN | RST)) | ACK), s.seq, s.ack);
        else
            send_seg(h, &s);
        if (rnd() % 8 == 0)
            h_advance(h, (uint64_t)(rnd() % 3000) * 1000000ull);
        if (h->sk && rnd() % 6 == 0) {
            uint8_t b[512];
            switch (rnd() % 5) {
            case 0: tcpsm_sock_send(h->sk, data, rnd() % 2000, h->now); break;
            case 1: tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now); break;
            case 2: tcpsm_sock_poll(h->sk); tcpsm_sock_error(h->sk); break;
            case 3: tcpsm_sock_shutdown(h->sk, (int)(rnd() % 3), h->now); break;
            default: {
                struct tcpsm_tcp_info in;
                tcpsm_sock_info(h->sk, &in);
                break;
            }
            }
        }
        if (h->lsk && rnd() % 16 == 0) {
            struct tcpsm_sock *c;
            if (tcpsm_sock_accept(h->lsk, &c) == 0)
                tcpsm_sock_close(c, h->now);
        }
        h_drain(h);
        cr_assert(tcpsm_stack_nsocks(h->st) <= 4096, "TCBs grow without bound");
    }
    /* let every timer run out: TIME-WAIT, retransmissions, orphans */
    if (h->sk && rnd() % 2)
        tcpsm_sock_close(h->sk, h->now), h->sk = NULL;
    for (int i = 0; i < 40; i++) {
        h_advance(h, 60ull * 1000000000ull);
        h_drain(h);
    }
}

#define HOSTILE(name, setup, seed)                                     \
    Test(tcp_hostile, name)                                            \
    {                                                                  \
        rng = (seed) ^ (getenv("HOSTILE_SEED") ? strtoull(getenv("HOSTILE_SEED"), 0, 0) : 0);                                                  \
        struct harness *h = h_new(NULL);                               \
        setup(h);                                                      \
        h_drain(h);                                                    \
        storm(h, getenv("HOSTILE_N") ? (unsigned)atoi(getenv("HOSTILE_N")) : 3000);                                                \
        h_free(h);                                                     \
    }

HOSTILE(listen, sock_listen, 0x1111)
HOSTILE(syn_sent, sock_syn_sent, 0x2222)
HOSTILE(syn_received, sock_syn_received, 0x3333)
HOSTILE(established, sock_established, 0x4444)
HOSTILE(established_passive, sock_established_passive, 0x5555)
HOSTILE(fin_wait_1, sock_fin_wait_1, 0x6666)
HOSTILE(fin_wait_2, sock_fin_wait_2, 0x7777)
HOSTILE(close_wait, sock_close_wait, 0x8888)
HOSTILE(closing, sock_closing, 0x9999)
HOSTILE(last_ack, sock_last_ack, 0xaaaa)
HOSTILE(time_wait, sock_time_wait, 0xbbbb)

/* Two desynchronized ends must not ACK each other forever: empty
 * out-of-window segments get at most one ACK per 500 ms (Linux
 * tcp_oow_rate_limited); segments with data or FIN are always answered. */
Test(tcp_hostile, out_of_window_ack_rate_limited)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq + 0x100000u, .ack = h->lseq, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    SEND(h, .flags = ACK, .seq = h->rseq + 0x100000u, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    SEND(h, .flags = ACK, .seq = h->rseq - 5000, .ack = h->lseq, .win = H_RWIN, .data = "x",
         .len = 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h_advance(h, MS(500));
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq + 0x100000u, .ack = h->lseq, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h_free(h);
}
