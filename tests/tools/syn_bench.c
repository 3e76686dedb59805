/* syn_bench: how many spoofed SYNs per second the core's listener path
 * handles (parse, demux, SYN queue full, SYN cookie, SYN+ACK built and
 * handed to the link), on one core, with no link in the way: the frames go
 * in through tcpsm_stack_input in batches of 64, as the runtime hands them
 * over, and the SYN+ACKs go to a netdev that drops them.
 *
 *   syn_bench [--count N] [--batch B]     (default 2,000,000 SYNs, batch 64)
 *
 * Prints "syn_bench: syns=N seconds=T rate=R/s ns_per_syn=X cookies=C"
 * (a bench figure: nothing is asserted). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seg_build.h"
#include "tcpsm/core.h"

static unsigned sent;

static unsigned discard(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    (void)dev;
    (void)f;
    sent += n;
    return n;
}

static const struct tcpsm_netdev_ops ops = { .send = discard };

#define FLEN 74     /* Ethernet + IPv4 + TCP with a Linux SYN's 20 option bytes */

/* A Linux-like SYN from a pseudo-random source in 198.18.128.0/17. */
static void build_syn(uint8_t *f, uint32_t x)
{
    static const uint8_t us[6] = { 0x02, 0, 0, 0, 0, 0x01 }, them[6] = { 0x02, 0, 0, 0, 0, 0x02 };
    memset(f, 0, FLEN);
    memcpy(f, us, 6);
    memcpy(f + 6, them, 6);
    put16(f + 12, 0x0800);
    static const uint8_t opt[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7 };
    seg_build_v4(f + 14, 0, 0xC6128000u | (x & 0x7fff), (uint16_t)(1024 + (x >> 15) % 60000),
                 0xC6120001u, 80, x * 2654435761u, 0, 0x02, 64240, opt, sizeof(opt), NULL, 0);
}

int main(int argc, char **argv)
{
    long count = 2000000, batch = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count"))
            count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atol(argv[i + 1]);
    }
    if (count < 1 || batch < 1 || batch > 64) {
        fprintf(stderr, "usage: syn_bench [--count N] [--batch 1..64]\n");
        return 2;
    }
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = 0xC6120001u;
    c.prefix_len = 24;
    c.gateway = 0xC61200FEu;
    static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
    memcpy(c.mac, mac, 6);
    c.secret[0] = 0x1234;
    c.secret[1] = 0x5678;
    struct tcpsm_netdev dev = { .ops = &ops, .mtu = 1500 };
    uint64_t now = 1000000000ull;
    struct tcpsm_stack *st = tcpsm_stack_new(&c, &dev, now);
    struct tcpsm_sock *l;
    if (!st || tcpsm_sock_new(st, &l) < 0 || tcpsm_sock_bind(l, 0, 80) < 0 ||
        tcpsm_sock_listen(l, 511) < 0) {
        fprintf(stderr, "syn_bench: stack setup failed\n");
        return 1;
    }
    /* 4096 distinct SYNs, cycled: the source spread of a flood */
    enum { NF = 4096 };
    static uint8_t frames[NF][FLEN];
    for (unsigned i = 0; i < NF; i++)
        build_syn(frames[i], i * 2654435761u + 12345u);
    struct tcpsm_frame fr[64];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long done = 0;
    unsigned k = 0;
    while (done < count) {
        unsigned n = (unsigned)(count - done < batch ? count - done : batch);
        for (unsigned i = 0; i < n; i++, k = (k + 1) % NF)
            fr[i] = (struct tcpsm_frame){ .data = frames[k], .len = FLEN };
        now += 10000;                   /* 10 µs per batch of virtual time */
        tcpsm_stack_input(st, fr, n, now);
        done += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    const struct tcpsm_counters *k2 = tcpsm_stack_counters(st);
    printf("syn_bench: syns=%ld seconds=%.3f rate=%.0f/s ns_per_syn=%.0f cookies=%llu synacks=%u\n",
           done, secs, (double)done / secs, secs * 1e9 / (double)done,
           (unsigned long long)k2->tcp_syncookies_sent, sent);
    tcpsm_stack_free(st);
    return 0;
}
