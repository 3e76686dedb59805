/* AF_PACKET netdev (see netdev_packet.h). Raw system calls throughout: in
 * the preloaded library, libc's socket functions are the shim's. */
#include "netdev_packet.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "csum.h"
#include "runtime_log.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define RCVBUF_BYTES (8 * 1024 * 1024)
#define CMSG_SPACE_AUX CMSG_SPACE(sizeof(struct tpacket_auxdata))

struct netdev_packet_rx {
    struct mmsghdr msgs[NETDEV_PACKET_BATCH];
    struct iovec iov[NETDEV_PACKET_BATCH];
    struct sockaddr_ll from[NETDEV_PACKET_BATCH];
    union { struct cmsghdr align; char buf[CMSG_SPACE_AUX]; } cmsg[NETDEV_PACKET_BATCH];
    uint8_t data[NETDEV_PACKET_BATCH][NETDEV_PACKET_SLOT];
};

static long sys_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    return syscall(SYS_setsockopt, fd, level, name, val, len);
}

unsigned netdev_packet_filter(struct sock_filter *prog, const uint8_t mac[6])
{
    uint32_t hi = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
    uint32_t lo = (uint32_t)mac[4] << 8 | mac[5];
    const struct sock_filter p[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),              /* dst MAC bytes 0..3 */
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 0, 2),
        /* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),              /* dst MAC bytes 4..5 */
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, lo, 9, 10),     /* ours: accept */
        /* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 4),
        /* 5 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 4),
        /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffff, 0, 7),   /* broadcast... */
        /* 7 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),             /* ...and EtherType ARP */
        /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 4, 5),
        /* 9 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0),
        /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x3333, 0, 3), /* IPv6 multicast (RFC 2464 7)... */
        /* 11 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),            /* ...as IPv6: ND's groups */
        /* 12 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 0, 1),
        /* 13 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),                /* accept the whole frame */
        /* 14 */ BPF_STMT(BPF_RET | BPF_K, 0),                      /* reject */
    };
    memcpy(prog, p, sizeof(p));
    return sizeof(p) / sizeof(p[0]);
}

int netdev_packet_fix_csum(uint8_t *f, uint32_t len)
{
    if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
        return 0;
    uint8_t *ip = f + 14;
    uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
    uint32_t tot = (uint32_t)ip[2] << 8 | ip[3];
    if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > len - 14)
        return 0;
    uint32_t off;
    if (ip[9] == IPPROTO_TCP)
        off = 16;
    else if (ip[9] == IPPROTO_UDP)
        off = 6;
    else
        return 0;
    uint8_t *l4 = ip + ihl;
    uint32_t l4len = tot - ihl;
    if (l4len < off + 2)
        return 0;
    uint32_t src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 | (uint32_t)ip[14] << 8 | ip[15];
    uint32_t dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 | ip[19];
    l4[off] = l4[off + 1] = 0;
    uint16_t c = csum_fold(csum_partial(l4, l4len, csum_pseudo(src, dst, ip[9], (uint16_t)l4len)));
    if (c == 0 && ip[9] == IPPROTO_UDP)
        c = 0xffff;             /* RFC 768: zero means "no checksum" */
    l4[off] = (uint8_t)(c >> 8);
    l4[off + 1] = (uint8_t)c;
    return 1;
}

static unsigned packet_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *frames, unsigned n)
{
    struct netdev_packet *np = dev->priv;
    struct mmsghdr msgs[NETDEV_PACKET_BATCH];
    struct iovec iov[NETDEV_PACKET_BATCH];
    /* Captured before the send: an answer can arrive (and be captured by
     * the receive thread) before sendmmsg returns. */
    if (np->tap)
        for (unsigned i = 0; i < n; i++)
            np->tap(np->tap_ctx, frames[i].data, frames[i].len);
    unsigned done = 0, sent = 0;
    while (done < n) {
        unsigned k = n - done < NETDEV_PACKET_BATCH ? n - done : NETDEV_PACKET_BATCH;
        memset(msgs, 0, sizeof(msgs[0]) * k);
        for (unsigned i = 0; i < k; i++) {
            iov[i].iov_base = frames[done + i].data;
            iov[i].iov_len = frames[done + i].len;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        /* Never block under the stack lock: a full queue drops, TCP retransmits. */
        long r = syscall(SYS_sendmmsg, np->fd, msgs, k, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            np->tx_err++;
            /* Skip the frame that failed so one bad frame does not stall the rest. */
            done++;
            continue;
        }
        done += (unsigned)r;
        sent += (unsigned)r;
        np->tx_frames += (uint64_t)r;
    }
    return sent;
}

static const struct tcpsm_netdev_ops packet_ops = { .send = packet_send };

static int fail(struct netdev_packet *np, char *err, size_t errlen, const char *ifname,
                const char *what)
{
    int e = errno;
    snprintf(err, errlen, "TCPSM_IF=%s: %s: %s", ifname, what, strerror(e));
    netdev_packet_close(np);
    return -e;
}

int netdev_packet_open(struct netdev_packet *np, const char *ifname, const uint8_t mac[6],
                       char *err, size_t errlen)
{
    memset(np, 0, sizeof(*np));
    np->fd = -1;
    np->dev.ops = &packet_ops;
    np->dev.priv = np;
    memcpy(np->mac, mac, 6);

    np->rx = malloc(sizeof(*np->rx));
    if (!np->rx) {
        errno = ENOMEM;
        return fail(np, err, errlen, ifname, "receive buffers");
    }
    /* Protocol 0: nothing is queued until the filter is in place and bind()
     * selects ETH_P_ALL on the interface. */
    long fd = syscall(SYS_socket, AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(np, err, errlen, ifname, "AF_PACKET socket (needs CAP_NET_RAW)");
    np->fd = (int)fd;

    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (syscall(SYS_ioctl, np->fd, SIOCGIFINDEX, &ifr) < 0)
        return fail(np, err, errlen, ifname, "interface index");
    np->ifindex = ifr.ifr_ifindex;
    if (syscall(SYS_ioctl, np->fd, SIOCGIFMTU, &ifr) < 0)
        return fail(np, err, errlen, ifname, "interface MTU");
    np->dev.mtu = ifr.ifr_mtu > 0 && ifr.ifr_mtu <= 9000 ? (uint32_t)ifr.ifr_mtu : 1500;
    np->dev.features = 0;
    if (syscall(SYS_ioctl, np->fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
        tcpsm_log(TCPSM_LOG_WARN, "TCPSM_IF=%s: the interface is down; nothing will be sent "
                  "until it is up", ifname);

    struct sock_filter prog[16];
    struct sock_fprog fprog = { .len = (unsigned short)netdev_packet_filter(prog, mac),
                                .filter = prog };
    if (sys_setsockopt(np->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0)
        return fail(np, err, errlen, ifname, "SO_ATTACH_FILTER");

    int one = 1;
    /* Our own frames would loop back to us as PACKET_OUTGOING (Linux >= 4.20
     * can drop them in the kernel; recv also checks sll_pkttype). */
    (void)sys_setsockopt(np->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
        return fail(np, err, errlen, ifname, "PACKET_AUXDATA");
    int sz = RCVBUF_BYTES;
    if (sys_setsockopt(np->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)sys_setsockopt(np->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (sys_setsockopt(np->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)sys_setsockopt(np->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));

    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = np->ifindex;
    if (syscall(SYS_bind, np->fd, &sll, sizeof(sll)) < 0)
        return fail(np, err, errlen, ifname, "bind");

    /* Our MAC is not the interface's: without promiscuous mode the NIC (and
     * veth) drops unicast frames to it before we can see them. The
     * membership ends with the socket. */
    struct packet_mreq mr;
    memset(&mr, 0, sizeof(mr));
    mr.mr_ifindex = np->ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
        return fail(np, err, errlen, ifname, "promiscuous mode");

    for (unsigned i = 0; i < NETDEV_PACKET_BATCH; i++) {
        np->rx->iov[i].iov_base = np->rx->data[i];
        np->rx->iov[i].iov_len = NETDEV_PACKET_SLOT;
    }
    return 0;
}

int netdev_packet_recv(struct netdev_packet *np, struct tcpsm_frame *frames, unsigned max)
{
    struct netdev_packet_rx *rx = np->rx;
    if (max > NETDEV_PACKET_BATCH)
        max = NETDEV_PACKET_BATCH;
    for (unsigned i = 0; i < max; i++) {
        struct msghdr *h = &rx->msgs[i].msg_hdr;
        memset(h, 0, sizeof(*h));
        h->msg_name = &rx->from[i];
        h->msg_namelen = sizeof(rx->from[i]);
        h->msg_iov = &rx->iov[i];
        h->msg_iovlen = 1;
        h->msg_control = rx->cmsg[i].buf;
        h->msg_controllen = sizeof(rx->cmsg[i].buf);
        rx->msgs[i].msg_len = 0;
    }
    long r;
    do
        r = syscall(SYS_recvmmsg, np->fd, rx->msgs, max, MSG_DONTWAIT | MSG_TRUNC, NULL);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;

    unsigned n = 0;
    for (long i = 0; i < r; i++) {
        struct msghdr *h = &rx->msgs[i].msg_hdr;
        uint32_t len = rx->msgs[i].msg_len;
        if (rx->from[i].sll_pkttype == PACKET_OUTGOING)
            continue;
        if ((h->msg_flags & MSG_TRUNC) || len > NETDEV_PACKET_SLOT) {
            np->rx_trunc++;
            continue;
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
            if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
                continue;
            struct tpacket_auxdata aux;
            memcpy(&aux, CMSG_DATA(c), sizeof(aux));
            if ((aux.tp_status & TP_STATUS_CSUMNOTREADY) &&
                netdev_packet_fix_csum(rx->data[i], len))
                np->rx_csum_fixed++;
        }
        if (np->tap)
            np->tap(np->tap_ctx, rx->data[i], len);
        frames[n].data = rx->data[i];
        frames[n].len = len;
        n++;
    }
    np->rx_frames += n;
    return (int)n;
}

uint64_t netdev_packet_drops(struct netdev_packet *np)
{
    struct tpacket_stats ps;
    socklen_t len = sizeof(ps);
    if (np->fd >= 0 && syscall(SYS_getsockopt, np->fd, SOL_PACKET, PACKET_STATISTICS, &ps, &len) == 0)
        np->rx_drops += ps.tp_drops;
    return np->rx_drops;
}

void netdev_packet_close(struct netdev_packet *np)
{
    if (np->fd >= 0)
        syscall(SYS_close, np->fd);
    np->fd = -1;
    free(np->rx);
    np->rx = NULL;
}
