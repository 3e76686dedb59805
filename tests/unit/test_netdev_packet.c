/* The AF_PACKET link's pure parts: the classic BPF receive filter (run by
 * the kernel on an AF_UNIX datagram pair, which applies socket filters the
 * same way) and the checksum completion of TP_STATUS_CSUMNOTREADY frames. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "csum.h"
#include "netdev_packet.h"
#include <linux/virtio_net.h>

static const uint8_t our_mac[6] = { 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0a };

static void frame(uint8_t *f, const uint8_t dst[6], uint16_t type)
{
    memset(f, 0, 60);
    memcpy(f, dst, 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    f[12] = (uint8_t)(type >> 8);
    f[13] = (uint8_t)type;
}

/* Sends f through a filtered datagram pair; true if the filter let it in. */
static bool passes(int s[2], const uint8_t *f, size_t len)
{
    cr_assert_eq(send(s[0], f, len, 0), (ssize_t)len);
    uint8_t buf[128];
    ssize_t r = recv(s[1], buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0) {
        cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
        return false;
    }
    cr_assert_eq((size_t)r, len);
    return true;
}

Test(netdev_packet, bpf_filter_accepts_ours_and_broadcast_arp_only)
{
    int s[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, s), 0);
    struct sock_filter prog[16];
    struct sock_fprog fp = { .len = (unsigned short)netdev_packet_filter(prog, our_mac),
                             .filter = prog };
    cr_assert_leq(fp.len, 16);
    cr_assert_eq(setsockopt(s[1], SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)), 0);

    static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t other[6] = { 0x02, 0x54, 0xc6, 0x12, 0x00, 0x0b };
    static const uint8_t near_hi[6] = { 0x02, 0x54, 0xc6, 0x13, 0x00, 0x0a };
    static const uint8_t bcast_lo[6] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x0a };
    static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    uint8_t f[60];
    frame(f, our_mac, 0x0800);   cr_assert(passes(s, f, 60), "IPv4 to our MAC");
    frame(f, our_mac, 0x0806);   cr_assert(passes(s, f, 60), "ARP to our MAC");
    frame(f, our_mac, 0x86dd);   cr_assert(passes(s, f, 60), "anything to our MAC");
    frame(f, bcast, 0x0806);     cr_assert(passes(s, f, 60), "broadcast ARP");
    frame(f, bcast, 0x0800);     cr_assert_not(passes(s, f, 60), "broadcast IPv4");
    frame(f, other, 0x0800);     cr_assert_not(passes(s, f, 60), "another MAC (low bytes)");
    frame(f, near_hi, 0x0800);   cr_assert_not(passes(s, f, 60), "another MAC (high bytes)");
    frame(f, bcast_lo, 0x0806);  cr_assert_not(passes(s, f, 60), "half broadcast");
    frame(f, mcast, 0x0800);     cr_assert_not(passes(s, f, 60), "multicast");
    static const uint8_t sn6[6] = { 0x33, 0x33, 0xff, 0x00, 0x00, 0x10 };
    static const uint8_t near6[6] = { 0x33, 0x32, 0xff, 0x00, 0x00, 0x10 };
    frame(f, sn6, 0x86dd);       cr_assert(passes(s, f, 60), "IPv6 multicast (ND)");
    frame(f, sn6, 0x0800);       cr_assert_not(passes(s, f, 60), "IPv6 multicast MAC, not IPv6");
    frame(f, near6, 0x86dd);     cr_assert_not(passes(s, f, 60), "not 33:33");
    cr_assert_not(passes(s, f, 5), "runt");
    close(s[0]);
    close(s[1]);
}

/* An IPv4/TCP frame whose checksum field holds only the pseudo-header sum,
 * as a local sender with checksum offload leaves it. */
static size_t tcp_frame(uint8_t *f, size_t payload)
{
    memset(f, 0, 14 + 20 + 20 + payload);
    frame(f, our_mac, 0x0800);
    uint8_t *ip = f + 14, *tcp = ip + 20;
    uint16_t tot = (uint16_t)(20 + 20 + payload);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(tot >> 8);
    ip[3] = (uint8_t)tot;
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, "\xc6\x12\x00\x01\xc6\x12\x00\x0a", 8);
    tcp[0] = 0x1f; tcp[1] = 0x90; tcp[2] = 0x9d; tcp[3] = 0x78;
    tcp[12] = 0x50;
    tcp[13] = 0x18;
    for (size_t i = 0; i < payload; i++)
        tcp[20 + i] = (uint8_t)(i * 7 + 3);
    uint16_t partial = (uint16_t)~csum_fold(csum_pseudo(0xc6120001u, 0xc612000au, 6,
                                                        (uint16_t)(20 + payload)));
    tcp[16] = (uint8_t)(partial >> 8);
    tcp[17] = (uint8_t)partial;
    return 14 + 20 + 20 + payload;
}

Test(netdev_packet, fix_csum_completes_tcp_checksum)
{
    uint8_t f[200];
    for (size_t payload = 0; payload < 6; payload++) {
        size_t len = tcp_frame(f, payload);
        cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len), 1);
        /* A correct checksum sums (with the pseudo-header) to 0xffff. */
        uint32_t s = csum_partial(f + 34, 20 + payload,
                                  csum_pseudo(0xc6120001u, 0xc612000au, 6, (uint16_t)(20 + payload)));
        cr_assert_eq(csum_fold(s), 0, "payload %zu", payload);
    }
}

Test(netdev_packet, fix_csum_leaves_other_frames_alone)
{
    uint8_t f[200];
    size_t len = tcp_frame(f, 4);
    uint8_t copy[200];
    memcpy(copy, f, len);
    f[23] = 1;                  /* ICMP: not a checksum the kernel defers */
    cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len), 0);
    memcpy(f, copy, len);
    cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len - 10), 0, "IP length beyond the frame");
    memcpy(f, copy, len);
    f[12] = 0x86; f[13] = 0xdd;
    cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len), 0, "an IPv4 packet labelled IPv6");
    memcpy(f, copy, len);
    f[14] = 0x44;
    cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len), 0, "IHL < 5");
    cr_assert_eq(netdev_packet_fix_csum(f, 20), 0, "runt");
}

/* The virtio-net header for each kind of frame the core sends. */
Test(netdev_packet, vnet_header_for_plain_partial_and_super_segments)
{
    uint8_t f[14 + 20 + 32];
    memset(f, 0, sizeof f);
    f[12] = 0x08;
    f[14] = 0x45;
    f[14 + 9] = 6;                      /* TCP */
    f[14 + 20 + 12] = 8 << 4;           /* 32-byte TCP header (timestamps) */
    struct virtio_net_hdr vh;

    struct tcpsm_frame plain = { .data = f, .len = sizeof f };
    netdev_packet_vnet_tx(&vh, &plain);
    cr_assert_eq(vh.flags, 0);
    cr_assert_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);

    static uint8_t pay[3 * 1448];
    struct tcpsm_frame part = { .data = f, .len = sizeof f, .flags = TCPSM_FRAME_CSUM_PARTIAL,
                                .csum_start = 34, .csum_offset = 16,
                                .pay = { pay }, .plen = { 100 } };
    netdev_packet_vnet_tx(&vh, &part);
    cr_assert_eq(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    cr_assert_eq(vh.csum_start, 34);
    cr_assert_eq(vh.csum_offset, 16);
    cr_assert_eq(vh.hdr_len, 14 + 20 + 32);
    cr_assert_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE, "one segment: no GSO");

    struct tcpsm_frame gso = part;
    gso.flags |= TCPSM_FRAME_GSO_TCPV4;
    gso.gso_size = 1448;
    gso.plen[0] = sizeof pay;
    netdev_packet_vnet_tx(&vh, &gso);
    cr_assert_eq(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    cr_assert_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
    cr_assert_eq(vh.gso_size, 1448);
    cr_assert_eq(vh.hdr_len, 14 + 20 + 32);
}

/* An IPv6/TCP frame (no extension headers) with a 32-byte TCP header and
 * the pseudo-header sum over its L4 length in the checksum field. */
static size_t tcp6_frame(uint8_t *f, size_t payload)
{
    memset(f, 0, 14 + 40 + 32 + payload);
    f[12] = 0x86; f[13] = 0xdd;
    uint8_t *ip = f + 14, *tcp = ip + 40;
    ip[0] = 0x60;
    ip[4] = (uint8_t)((32 + payload) >> 8);
    ip[5] = (uint8_t)(32 + payload);
    ip[6] = 6;
    ip[7] = 64;
    ip[8] = 0x20; ip[9] = 0x01; ip[11] = 0x02; ip[23] = 1;       /* 2001:2::1 */
    ip[24] = 0x20; ip[25] = 0x01; ip[27] = 0x02; ip[39] = 2;     /* 2001:2::2 */
    tcp[12] = 8 << 4;
    tcp[13] = 0x18;
    for (size_t i = 0; i < payload; i++)
        tcp[32 + i] = (uint8_t)(i * 5 + 1);
    uint16_t partial = (uint16_t)~csum_fold(csum_pseudo6(ip + 8, ip + 24, 6,
                                                         (uint32_t)(32 + payload)));
    tcp[16] = (uint8_t)(partial >> 8);
    tcp[17] = (uint8_t)partial;
    return 14 + 40 + 32 + payload;
}

Test(netdev_packet, fix_csum_completes_tcp6_checksum)
{
    static uint8_t f[14 + 40 + 32 + 3000];
    for (size_t payload = 0; payload < 3000; payload += 997) {
        size_t len = tcp6_frame(f, payload);
        cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len), 1);
        uint32_t s = csum_partial(f + 54, 32 + payload,
                                  csum_pseudo6(f + 22, f + 38, 6, (uint32_t)(32 + payload)));
        cr_assert_eq(csum_fold(s), 0, "payload %zu", payload);
    }
    size_t len = tcp6_frame(f, 100);
    cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len - 1), 0, "payload length beyond the frame");
    f[14 + 6] = 0;              /* a Hop-by-Hop header first: not ours to finish */
    cr_assert_eq(netdev_packet_fix_csum(f, (uint32_t)len), 0);
}

/* An IPv6 super-segment: GSO TCPV6, csum_start past the 40-byte header,
 * hdr_len covering Ethernet + IPv6 + TCP headers. */
Test(netdev_packet, vnet_header_for_ipv6_super_segments)
{
    uint8_t f[14 + 40 + 32];
    tcp6_frame(f, 0);
    static uint8_t pay[3 * 1428];
    struct virtio_net_hdr vh;
    struct tcpsm_frame part = { .data = f, .len = sizeof f, .flags = TCPSM_FRAME_CSUM_PARTIAL,
                                .csum_start = 54, .csum_offset = 16,
                                .pay = { pay }, .plen = { 100 } };
    netdev_packet_vnet_tx(&vh, &part);
    cr_assert_eq(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    cr_assert_eq(vh.csum_start, 54);
    cr_assert_eq(vh.csum_offset, 16);
    cr_assert_eq(vh.hdr_len, 14 + 40 + 32);
    cr_assert_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_NONE);

    struct tcpsm_frame gso = part;
    gso.flags |= TCPSM_FRAME_GSO_TCPV6;
    gso.gso_size = 1428;
    gso.plen[0] = sizeof pay;
    netdev_packet_vnet_tx(&vh, &gso);
    cr_assert_eq(vh.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    cr_assert_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_TCPV6);
    cr_assert_eq(vh.gso_size, 1428);
    cr_assert_eq(vh.hdr_len, 14 + 40 + 32);
}

/* ---- frames sent after the stack lock, and after the call (the batch)
 * A real packet socket on the loopback of a network namespace of the
 * test's own (Criterion runs each test in its own process): frames of an
 * experimental EtherType, seen by a second packet socket as they leave. */
#define XTYPE 0x88b5            /* IEEE 802 local experimental */

static bool always(void)
{
    return true;
}

/* A namespace with lo up, np on it, and a watcher of what leaves; false
 * (the test skips) without the privileges for it. */
static bool link_up_flags(struct netdev_packet *np, int *watch, unsigned flags)
{
    if (unshare(CLONE_NEWNET) != 0)
        return false;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    cr_assert(ioctl(s, SIOCGIFFLAGS, &ifr) == 0);
    ifr.ifr_flags |= IFF_UP;
    cr_assert(ioctl(s, SIOCSIFFLAGS, &ifr) == 0);
    close(s);
    char err[256];
    cr_assert(netdev_packet_open(np, "lo", our_mac, flags, NULL, err, sizeof(err)) == 0, "%s", err);
    np->defer_ok = always;
    *watch = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    cr_assert(*watch >= 0);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex("lo") };
    cr_assert(bind(*watch, (struct sockaddr *)&sll, sizeof(sll)) == 0);
    return true;
}

static bool link_up(struct netdev_packet *np, int *watch)
{
    return link_up_flags(np, watch, NETDEV_PACKET_NO_VNET | NETDEV_PACKET_NO_RING);
}

/* The next frame seen leaving (its first payload byte, its length), -1: none. */
static int left(int watch, size_t *len)
{
    uint8_t buf[4096];
    for (;;) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof(from);
        ssize_t r = recvfrom(watch, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (r < 0)
            return -1;
        if (from.sll_pkttype != PACKET_OUTGOING || r <= 14 || buf[12] != (XTYPE >> 8) ||
            buf[13] != (XTYPE & 0xff))
            continue;           /* the loopback's copy coming in, or not ours */
        *len = (size_t)r;
        return buf[14];
    }
}

/* A frame of 14 header bytes and plen payload bytes, all `tag`. */
static void xframe(struct tcpsm_frame *fr, uint8_t *hdr, uint8_t *pay, uint8_t tag, uint32_t plen)
{
    frame(hdr, (const uint8_t *)"\0\0\0\0\0\0", XTYPE);
    memset(pay, tag, plen);
    memset(fr, 0, sizeof(*fr));
    fr->data = hdr;
    fr->len = 14;
    fr->pay[0] = pay;
    fr->plen[0] = plen;
}

Test(netdev_packet, batch_waits_copied_and_keeps_the_order)
{
    struct netdev_packet np;
    int watch;
    if (!link_up(&np, &watch))
        cr_skip_test("no network namespace (needs CAP_SYS_ADMIN)");
    static uint8_t hdr[40][64], pay[40][3000];
    struct tcpsm_frame fr[40];
    size_t len;
    uint64_t gen = netdev_packet_defer_gen(&np);

    /* Under the lock: a small frame waits, as a copy. */
    netdev_packet_defer_begin();
    xframe(&fr[0], hdr[0], pay[0], 1, 100);
    cr_assert_eq(np.dev.ops->send(&np.dev, &fr[0], 1), 1u);
    memset(pay[0], 0xee, 100);          /* the send buffer moves on */
    cr_assert(netdev_packet_defer_end(&np), "a frame waits");
    cr_assert_eq(left(watch, &len), -1, "nothing left yet");

    /* A later call (the runtime kept the batch): another small one joins
     * it, then one too large to copy sends the batch first. */
    netdev_packet_defer_begin();
    xframe(&fr[1], hdr[1], pay[1], 2, 1000);
    xframe(&fr[2], hdr[2], pay[2], 3, 2900);
    cr_assert_eq(np.dev.ops->send(&np.dev, &fr[1], 2), 2u);
    cr_assert_not(netdev_packet_defer_end(&np), "nothing waits after a direct send");
    cr_assert_eq(left(watch, &len), 1);
    cr_assert_eq(len, 114u, "the copy, not the buffer's new bytes");
    cr_assert_eq(left(watch, &len), 2);
    cr_assert_eq(len, 1014u);
    cr_assert_eq(left(watch, &len), 3);
    cr_assert_eq(len, 2914u);
    cr_assert_eq(left(watch, &len), -1);
    cr_assert_eq(netdev_packet_defer_gen(&np), gen + 1, "one batch sent");

    /* Full: 32 wait, the 33rd sends them first, itself and the 34th
     * after them under the lock. Then one waits and defer_send sends it. */
    netdev_packet_defer_begin();
    for (unsigned i = 0; i < 35; i++)
        xframe(&fr[i], hdr[i], pay[i], (uint8_t)(10 + i), 60);
    cr_assert_eq(np.dev.ops->send(&np.dev, fr, 34), 34u);
    cr_assert_not(netdev_packet_defer_end(&np));
    cr_assert_eq(netdev_packet_defer_gen(&np), gen + 2);
    netdev_packet_defer_begin();
    cr_assert_eq(np.dev.ops->send(&np.dev, &fr[34], 1), 1u);
    cr_assert(netdev_packet_defer_end(&np));
    netdev_packet_defer_send(&np);
    for (unsigned i = 0; i < 35; i++)
        cr_assert_eq(left(watch, &len), (int)(10 + i), "frame %u in order", i);
    cr_assert_eq(left(watch, &len), -1);
    cr_assert_not(netdev_packet_defer_end(&np));
    cr_assert_eq(netdev_packet_defer_gen(&np), gen + 3);
    cr_assert_eq(np.tx_frames, 38u);
    cr_assert_eq(np.tx_deferred, 35u, "all but the large one and the two past a full batch");
    cr_assert_eq(np.tx_batches, 3u);
    netdev_packet_close(&np);
    close(watch);
}

Test(netdev_packet, batch_not_used_when_not_alone)
{
    struct netdev_packet np;
    int watch;
    if (!link_up(&np, &watch))
        cr_skip_test("no network namespace (needs CAP_SYS_ADMIN)");
    np.defer_ok = NULL;         /* another process on the stack: it would not send ours first */
    static uint8_t hdr[64], pay[100];
    struct tcpsm_frame fr;
    size_t len;
    netdev_packet_defer_begin();
    xframe(&fr, hdr, pay, 7, 100);
    cr_assert_eq(np.dev.ops->send(&np.dev, &fr, 1), 1u);
    cr_assert_not(netdev_packet_defer_end(&np));
    cr_assert_eq(left(watch, &len), 7, "sent under the lock");
    cr_assert_eq(np.tx_deferred, 0u);
    netdev_packet_close(&np);
    close(watch);
}

/* The spinning leader's look at the ring (runtime_wait.c spin) agrees with
 * the kernel's poll: nothing before a frame for us arrives, something after,
 * nothing once it is read; without a ring it cannot tell. */
Test(netdev_packet, peek_sees_the_ring_as_poll_does)
{
    struct netdev_packet np;
    int watch;
    if (!link_up_flags(&np, &watch, NETDEV_PACKET_NO_VNET))
        cr_skip_test("no network namespace (needs CAP_SYS_ADMIN)");
    cr_assert(np.ring != NULL, "the ring is on by default");
    struct pollfd p = { .fd = np.fd, .events = POLLIN };
    cr_assert_eq(poll(&p, 1, 0), 0);
    cr_assert_eq(netdev_packet_peek(&np), 0);
    uint8_t f[60];
    frame(f, our_mac, XTYPE);
    f[14] = 42;
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex("lo"),
                              .sll_halen = 6 };
    memcpy(to.sll_addr, our_mac, 6);
    cr_assert_eq(sendto(watch, f, sizeof(f), 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)sizeof(f));
    cr_assert_eq(poll(&p, 1, 2000), 1, "the frame to our MAC arrives");
    cr_assert_eq(netdev_packet_peek(&np), 1);
    struct tcpsm_frame fr[4];
    int n = netdev_packet_recv(&np, fr, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(fr[0].data[14], 42);
    netdev_packet_recv_done(&np);
    cr_assert_eq(netdev_packet_peek(&np), 0);
    cr_assert_eq(poll(&p, 1, 0), 0);
    netdev_packet_close(&np);
    close(watch);

    struct netdev_packet plain;
    if (!link_up(&plain, &watch))
        cr_assert_fail("a second namespace");
    cr_assert_eq(netdev_packet_peek(&plain), -1, "no ring: only the kernel can tell");
    netdev_packet_close(&plain);
    close(watch);
}
