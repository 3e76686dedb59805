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
        send_seg(h, &s);
        if (rnd() % 8 == 0)
            h_advance(h, (uint64_t)(rnd() % 3000) * 1000000ull);
        if (h->sk && rnd() % 16 == 0) {
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
