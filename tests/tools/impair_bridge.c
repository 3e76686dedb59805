/* impair_bridge — a user-space Ethernet bridge between two interfaces that impairs the
 * traffic it forwards: loss, delay with jitter, reordering, duplication, corruption.
 * This machine's kernel has no netem; the integration tests put this bridge in a middle
 * namespace (stack-ns <-> bridge-ns <-> peer-ns) instead.
 *
 * Each interface gets an AF_PACKET socket (ETH_P_ALL, promiscuous, own outgoing frames
 * ignored). Every frame read on one side is, per direction and from one seeded PRNG:
 *   dropped (--loss), or queued for now + delay +/- jitter; a reordered frame (--reorder)
 *   skips the delay (it overtakes the queue, as netem does; with no delay it is held back
 *   1 ms instead); a duplicate (--dup) is queued twice; a corrupted frame (--corrupt) has one
 *   bit flipped past the Ethernet header, so the IP or TCP checksum catches it.
 * Each direction's queue holds at most --queue frames; a frame that finds it full is
 * dropped and counted ("qfull"), like a router's tail drop.
 * The sockets carry a virtio-net header (PACKET_VNET_HDR), so a link with its offloads on
 * works as a wire would: a TCP super-segment (a local sender's TSO/GSO frame of up to
 * 64 KiB, "gso" in the counters) is cut into MSS-sized frames (gso_soft.c, as the kernel's
 * GSO) and each of them is impaired on its own; a frame whose checksum a local sender left
 * for the hardware (NEEDS_CSUM) gets it completed; frames leave plain.
 * Runs until SIGINT/SIGTERM or --max-seconds, then prints its counters on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/virtio_net.h>

#include "gso_soft.h"

#define MAX_FRAME (65536 + 512)   /* a 64 KiB IP packet and its Ethernet header */
#define RX_BATCH 256

struct frame {
    uint64_t due;      /* monotonic ns at which it leaves */
    uint64_t order;    /* arrival order: ties leave first in, first out */
    uint32_t len;
    uint8_t *data;
};

struct counters {
    uint64_t rx, tx, bytes, lost, delayed, reordered, duplicated, corrupted, qfull, txerr,
        oversize, gso, segs;
};

struct dir {
    const char *name;
    int in_fd, out_fd;
    int in_vnet, out_vnet;   /* the sockets carry a virtio-net header */
    struct frame *heap;  /* min-heap on (due, order) */
    size_t n, cap;
    struct counters c;
};

struct params {
    double loss, reorder, dup, corrupt; /* percent */
    double delay_ms, jitter_ms;
    size_t queue;
    long max_seconds;
    uint64_t seed;
    int verbose;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: small, seedable, good enough for impairment decisions. */
static uint64_t g_rng;

static uint64_t rnd(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static double rnd_unit(void) /* [0, 1) */
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int chance(double pct)
{
    return pct > 0 && rnd_unit() * 100.0 < pct;
}

static int before(const struct frame *a, const struct frame *b)
{
    return a->due < b->due || (a->due == b->due && a->order < b->order);
}

static void heap_push(struct dir *d, struct frame f)
{
    size_t i = d->n++;
    d->heap[i] = f;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&d->heap[i], &d->heap[p]))
            break;
        struct frame t = d->heap[i];
        d->heap[i] = d->heap[p];
        d->heap[p] = t;
        i = p;
    }
}

static struct frame heap_pop(struct dir *d)
{
    struct frame top = d->heap[0];
    d->heap[0] = d->heap[--d->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->n && before(&d->heap[l], &d->heap[m]))
            m = l;
        if (r < d->n && before(&d->heap[r], &d->heap[m]))
            m = r;
        if (m == i)
            break;
        struct frame t = d->heap[i];
        d->heap[i] = d->heap[m];
        d->heap[m] = t;
        i = m;
    }
    return top;
}

static uint64_t g_order;

static void enqueue(struct dir *d, const struct params *p, const uint8_t *buf, uint32_t len,
                    uint64_t now)
{
    if (d->n >= d->cap) {
        d->c.qfull++;
        return;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        d->c.qfull++;
        return;
    }
    memcpy(copy, buf, len);
    double delay = p->delay_ms;
    if (p->jitter_ms > 0)
        delay += (rnd_unit() * 2.0 - 1.0) * p->jitter_ms;
    if (chance(p->reorder)) {
        d->c.reordered++;
        delay = p->delay_ms > 0 ? 0 : 1.0;
    }
    if (delay < 0)
        delay = 0;
    if (delay > 0)
        d->c.delayed++;
    if (chance(p->corrupt) && len > ETH_HLEN) {
        uint32_t bit = (uint32_t)(rnd() % ((uint64_t)(len - ETH_HLEN) * 8));
        copy[ETH_HLEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        d->c.corrupted++;
    }
    struct frame f = { .due = now + (uint64_t)(delay * 1e6), .order = g_order++, .len = len,
                       .data = copy };
    heap_push(d, f);
}

/* One frame as the wire carries it: lost, or queued (and maybe duplicated). */
static void admit(struct dir *d, const struct params *p, const uint8_t *buf, uint32_t len)
{
    if (chance(p->loss)) {
        d->c.lost++;
        return;
    }
    uint64_t now = now_ns();
    enqueue(d, p, buf, len, now);
    if (chance(p->dup)) {
        d->c.duplicated++;
        enqueue(d, p, buf, len, now);
    }
}

struct seg_ctx {
    struct dir *d;
    const struct params *p;
};

static void admit_seg(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct seg_ctx *c = ctx;
    c->d->c.segs++;
    admit(c->d, c->p, seg, len);
}

static void receive(struct dir *d, const struct params *p)
{
    static uint8_t buf[MAX_FRAME], scratch[MAX_FRAME];
    for (int i = 0; i < RX_BATCH; i++) {
        struct sockaddr_ll from;
        struct virtio_net_hdr vh;
        memset(&vh, 0, sizeof vh);
        struct iovec iov[2] = { { &vh, sizeof vh }, { buf, sizeof buf } };
        struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from,
                            .msg_iov = d->in_vnet ? iov : iov + 1,
                            .msg_iovlen = d->in_vnet ? 2 : 1 };
        ssize_t n = recvmsg(d->in_fd, &m, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
            return;
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue; /* our own transmissions on this side */
        d->c.rx++;
        if (d->in_vnet) {
            if ((size_t)n < sizeof vh) {
                d->c.oversize++;
                continue;
            }
            n -= (ssize_t)sizeof vh;
        }
        if ((size_t)n > sizeof buf || (m.msg_flags & MSG_TRUNC)) {
            d->c.oversize++;
            continue;
        }
        uint8_t gso = vh.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
        if (gso == VIRTIO_NET_HDR_GSO_TCPV4 || gso == VIRTIO_NET_HDR_GSO_TCPV6) {
            /* A super-segment: the wire carries it as MSS-sized frames. */
            struct seg_ctx c = { d, p };
            if (vh.gso_size == 0 || GSO_SOFT_SCRATCH(vh.gso_size) > sizeof scratch ||
                gso_soft_segment(buf, (uint32_t)n, vh.gso_size, scratch, admit_seg, &c) == 0)
                d->c.oversize++;
            else
                d->c.gso++;
            continue;
        }
        if (gso != VIRTIO_NET_HDR_GSO_NONE) {
            d->c.oversize++; /* UDP fragmentation offload and the like: not forwarded */
            continue;
        }
        if ((vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
            !gso_soft_finish_csum(buf, (uint32_t)n, vh.csum_start, vh.csum_offset)) {
            d->c.oversize++;
            continue;
        }
        admit(d, p, buf, (uint32_t)n);
    }
}

static void transmit(struct dir *d, uint64_t now)
{
    while (d->n > 0 && d->heap[0].due <= now) {
        struct frame f = heap_pop(d);
        struct virtio_net_hdr vh;   /* all zero: a plain frame, its checksums done */
        memset(&vh, 0, sizeof vh);
        struct iovec iov[2] = { { &vh, sizeof vh }, { f.data, f.len } };
        struct msghdr m = { .msg_iov = d->out_vnet ? iov : iov + 1,
                            .msg_iovlen = d->out_vnet ? 2 : 1 };
        ssize_t want = (ssize_t)f.len + (d->out_vnet ? (ssize_t)sizeof vh : 0);
        if (sendmsg(d->out_fd, &m, 0) == want) {
            d->c.tx++;
            d->c.bytes += f.len;
        } else {
            d->c.txerr++;
        }
        free(f.data);
    }
}

static int open_if(const char *ifname, int *vnet)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx) {
        fprintf(stderr, "impair_bridge: no interface %s\n", ifname);
        return -1;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) {
        perror("impair_bridge: socket(AF_PACKET) (needs CAP_NET_RAW)");
        return -1;
    }
    int one = 1;
    /* Before bind: the offload state of each frame (GSO, partial checksum). A kernel
     * without it leaves us plain frames (and super-segments counted oversize). */
    *vnet = setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) == 0;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)idx };
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        perror("impair_bridge: bind");
        return -1;
    }
    struct packet_mreq mr = { .mr_ifindex = (int)idx, .mr_type = PACKET_MR_PROMISC };
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
        perror("impair_bridge: PACKET_MR_PROMISC");
        return -1;
    }
    /* Best effort (Linux >= 4.20); the PACKET_OUTGOING check covers older kernels. */
    (void)setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    int buf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    /* Frames queued before bind may belong to any interface: drain them. */
    static char junk[MAX_FRAME];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) >= 0)
        ;
    return fd;
}

static void usage(FILE *f)
{
    fputs("usage: impair_bridge [options] IF_A IF_B\n"
          "Forwards Ethernet frames between IF_A and IF_B (AF_PACKET, root), impairing them.\n"
          "  --loss PCT         drop PCT % of the frames (each direction)\n"
          "  --delay MS         delay every frame by MS milliseconds\n"
          "  --jitter MS        add a uniform random -MS..+MS to the delay\n"
          "  --reorder PCT      send PCT % of the frames without the delay (they overtake);\n"
          "                     with no --delay they are held back 1 ms instead\n"
          "  --dup PCT          send PCT % of the frames twice\n"
          "  --corrupt PCT      flip one bit past the Ethernet header in PCT % of the frames\n"
          "  --queue N          at most N frames waiting per direction (default 10000);\n"
          "                     a frame that finds the queue full is dropped (qfull)\n"
          "  --seed N           PRNG seed (default: from the clock; printed at start)\n"
          "  --max-seconds N    stop after N seconds (default: run until SIGINT/SIGTERM)\n"
          "  -v                 print the counters every second\n"
          "  --help             this text\n"
          "A TCP super-segment (TSO/GSO frame from a local sender, links with offloads on) is\n"
          "cut into MSS-sized frames, each impaired on its own (counters gso, segs); a partial\n"
          "checksum is completed. Counters are printed on stdout at exit.\n",
          f);
}

static int parse_num(const char *opt, const char *s, double *out)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || *end || v < 0) {
        fprintf(stderr, "impair_bridge: %s needs a non-negative number\n", opt);
        return -1;
    }
    *out = v;
    return 0;
}

static void print_counters(const struct dir *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct counters *c = &d[i].c;
        printf("%s: rx=%llu tx=%llu bytes=%llu lost=%llu delayed=%llu reordered=%llu "
               "duplicated=%llu corrupted=%llu qfull=%llu txerr=%llu oversize=%llu gso=%llu "
               "segs=%llu queued=%zu\n",
               d[i].name, (unsigned long long)c->rx, (unsigned long long)c->tx,
               (unsigned long long)c->bytes, (unsigned long long)c->lost,
               (unsigned long long)c->delayed, (unsigned long long)c->reordered,
               (unsigned long long)c->duplicated, (unsigned long long)c->corrupted,
               (unsigned long long)c->qfull, (unsigned long long)c->txerr,
               (unsigned long long)c->oversize, (unsigned long long)c->gso,
               (unsigned long long)c->segs, d[i].n);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct params p = { .queue = 10000, .seed = 0 };
    const char *ifs[2] = { NULL, NULL };
    int nifs = 0, have_seed = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v")) {
            p.verbose = 1;
        } else if (!strncmp(a, "--", 2)) {
            if (parse_num(a, v, &x) < 0)
                return 2;
            i++;
            if (!strcmp(a, "--loss")) p.loss = x;
            else if (!strcmp(a, "--delay")) p.delay_ms = x;
            else if (!strcmp(a, "--jitter")) p.jitter_ms = x;
            else if (!strcmp(a, "--reorder")) p.reorder = x;
            else if (!strcmp(a, "--dup")) p.dup = x;
            else if (!strcmp(a, "--corrupt")) p.corrupt = x;
            else if (!strcmp(a, "--queue")) p.queue = (size_t)x;
            else if (!strcmp(a, "--seed")) p.seed = (uint64_t)x, have_seed = 1;
            else if (!strcmp(a, "--max-seconds")) p.max_seconds = (long)x;
            else {
                fprintf(stderr, "impair_bridge: unknown option %s\n", a);
                usage(stderr);
                return 2;
            }
        } else if (nifs < 2) {
            ifs[nifs++] = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (nifs != 2 || p.queue == 0 || p.loss > 100 || p.reorder > 100 || p.dup > 100 ||
        p.corrupt > 100) {
        usage(stderr);
        return 2;
    }
    if (!have_seed)
        p.seed = now_ns();
    g_rng = p.seed ? p.seed : 0x9e3779b97f4a7c15ull;

    int va = 0, vb = 0;
    int fa = open_if(ifs[0], &va), fb = open_if(ifs[1], &vb);
    if (fa < 0 || fb < 0)
        return 1;
    struct dir d[2] = {
        { .name = "a->b", .in_fd = fa, .out_fd = fb, .in_vnet = va, .out_vnet = vb,
          .cap = p.queue },
        { .name = "b->a", .in_fd = fb, .out_fd = fa, .in_vnet = vb, .out_vnet = va,
          .cap = p.queue },
    };
    for (int i = 0; i < 2; i++) {
        d[i].heap = calloc(p.queue, sizeof *d[i].heap);
        if (!d[i].heap) {
            fprintf(stderr, "impair_bridge: out of memory for --queue %zu\n", p.queue);
            return 1;
        }
    }
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    printf("impair_bridge: %s <-> %s loss=%g%% delay=%gms jitter=%gms reorder=%g%% dup=%g%% "
           "corrupt=%g%% queue=%zu seed=%llu\n",
           ifs[0], ifs[1], p.loss, p.delay_ms, p.jitter_ms, p.reorder, p.dup, p.corrupt, p.queue,
           (unsigned long long)p.seed);
    fflush(stdout);

    uint64_t start = now_ns(), next_report = start + 1000000000ull;
    while (!g_stop) {
        uint64_t now = now_ns();
        if (p.max_seconds && now - start >= (uint64_t)p.max_seconds * 1000000000ull)
            break;
        transmit(&d[0], now);
        transmit(&d[1], now);
        if (p.verbose && now >= next_report) {
            print_counters(d, 2);
            next_report = now + 1000000000ull;
        }
        /* Sleep until a frame arrives or the next one is due (at most 100 ms). */
        uint64_t wait = 100000000ull;
        for (int i = 0; i < 2; i++)
            if (d[i].n > 0)
                wait = d[i].heap[0].due > now ? (d[i].heap[0].due - now < wait
                                                     ? d[i].heap[0].due - now : wait) : 0;
        struct pollfd pf[2] = { { .fd = fa, .events = POLLIN }, { .fd = fb, .events = POLLIN } };
        struct timespec ts = { .tv_sec = (time_t)(wait / 1000000000ull),
                               .tv_nsec = (long)(wait % 1000000000ull) };
        int r = ppoll(pf, 2, &ts, NULL);
        if (r < 0 && errno != EINTR) {
            perror("impair_bridge: ppoll");
            break;
        }
        if (r > 0) {
            if (pf[0].revents & POLLIN)
                receive(&d[0], &p);
            if (pf[1].revents & POLLIN)
                receive(&d[1], &p);
        }
    }
    print_counters(d, 2);
    for (int i = 0; i < 2; i++) {
        while (d[i].n > 0)
            free(heap_pop(&d[i]).data);
        free(d[i].heap);
    }
    close(fa);
    close(fb);
    return 0;
}
