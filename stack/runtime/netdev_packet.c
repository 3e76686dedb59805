/* AF_PACKET netdev (see netdev_packet.h). Raw system calls throughout: in
 * the preloaded library, libc's socket functions are the shim's. */
#include "netdev_packet.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "csum.h"
#include "runtime_log.h"

#ifndef PACKET_FANOUT_FLAG_IGNORE_OUTGOING
#define PACKET_FANOUT_FLAG_IGNORE_OUTGOING 0x4000
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* Socket buffers: the receive queue holds a few windows' worth of 64 KiB
 * frames while the stack is busy; the send side must take a whole batch
 * of super-segments (64 x 64 KiB) without EAGAIN. FORCE (CAP_NET_ADMIN)
 * passes net.core.[rw]mem_max; without it the kernel clamps silently. */
#define RCVBUF_BYTES (16 * 1024 * 1024)
#define SNDBUF_BYTES (8 * 1024 * 1024)
#define CMSG_SPACE_AUX CMSG_SPACE(sizeof(struct tpacket_auxdata))

/* The receive ring: slots of 2 KiB for a 1500-byte MTU (the smallest power
 * of two that holds the slot header, the vnet header and the frame), 64 KiB
 * blocks, while the socket's queue (RCVBUF_BYTES) takes the larger frames.
 * The ring is the one queue in front of every connection the socket
 * receives for: a burst from many connections at once (10,000 clients
 * sending together, with their ACKs) must fit, or the kernel drops and
 * each sender waits out its loss probe or RTO (200 ms and more); 4096 slots
 * overflowed on exactly that. So 16384 slots (32 MiB) for the socket that
 * opens a stack's fanout group, at most 64 MiB for larger MTUs; a process
 * joining the group (a forked worker, an exec'd program) shares the load
 * by flow and gets 4096 (8 MiB each: a server forking per connection
 * would otherwise pin 32 MiB of kernel memory per child). */
#define RING_SLOTS       16384u
#define RING_SLOTS_JOIN  4096u
#define RING_MAX_BYTES   (64u * 1024 * 1024)
#define RING_BLOCK  (64u * 1024)
_Static_assert(!(RING_SLOTS & (RING_SLOTS - 1)) && !(RING_SLOTS_JOIN & (RING_SLOTS_JOIN - 1)) &&
               !(RING_MAX_BYTES & (RING_MAX_BYTES - 1)) && !(RING_BLOCK & (RING_BLOCK - 1)),
               "ring_slot and ring_at need powers of two");
#define RING_SLOT_OVERHEAD 128u         /* tpacket2_hdr, sockaddr_ll, alignment, vnet header */

struct netdev_packet_ring {
    uint32_t head;              /* the next slot to read */
    uint32_t held_from, held_n; /* the slots of the batch in use, not yet returned */
};

/* Send-side scratch: per frame the vnet header and up to four iovecs
 * (vnet header, headers, two payload slices); a linear copy for the tap. */
struct netdev_packet_tx {
    struct mmsghdr msgs[NETDEV_PACKET_BATCH];
    struct iovec iov[NETDEV_PACKET_BATCH][4];
    struct virtio_net_hdr vh[NETDEV_PACKET_BATCH];
    uint8_t lin[NETDEV_PACKET_SLOT];
};

struct netdev_packet_rx {
    struct mmsghdr msgs[NETDEV_PACKET_BATCH];
    struct iovec iov[NETDEV_PACKET_BATCH][2];
    struct virtio_net_hdr vh[NETDEV_PACKET_BATCH];
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
    if (len < 14 + 20)
        return 0;
    uint8_t *ip = f + 14;
    uint8_t *l4;
    uint32_t l4len, pseudo;
    uint8_t proto;
    if (f[12] == 0x08 && f[13] == 0x00) {
        uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
        uint32_t tot = (uint32_t)ip[2] << 8 | ip[3];
        if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || tot > len - 14)
            return 0;
        proto = ip[9];
        l4 = ip + ihl;
        l4len = tot - ihl;
        uint32_t src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 | (uint32_t)ip[14] << 8 | ip[15];
        uint32_t dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 | ip[19];
        pseudo = csum_pseudo(src, dst, proto, (uint16_t)l4len);
    } else if (f[12] == 0x86 && f[13] == 0xdd) {
        /* IPv6 with the L4 header right after it (no extension headers) */
        if (len < 14 + 40 || (ip[0] >> 4) != 6)
            return 0;
        l4len = (uint32_t)ip[4] << 8 | ip[5];
        if (l4len > len - 14 - 40)
            return 0;
        proto = ip[6];
        l4 = ip + 40;
        pseudo = csum_pseudo6(ip + 8, ip + 24, proto, l4len);
    } else {
        return 0;
    }
    uint32_t off;
    if (proto == IPPROTO_TCP)
        off = 16;
    else if (proto == IPPROTO_UDP)
        off = 6;
    else
        return 0;
    if (l4len < off + 2)
        return 0;
    l4[off] = l4[off + 1] = 0;
    uint16_t c = csum_fold(csum_partial(l4, l4len, pseudo));
    if (c == 0 && proto == IPPROTO_UDP)
        c = 0xffff;             /* RFC 768 / RFC 8200 8.1: zero means "no checksum" */
    l4[off] = (uint8_t)(c >> 8);
    l4[off + 1] = (uint8_t)c;
    return 1;
}

/* Length of the Ethernet + IP + TCP headers of f, 0 if it is not IPv4/TCP
 * or IPv6/TCP without extension headers. */
static uint32_t tcp_hdr_len(const uint8_t *f, uint32_t len)
{
    if (len >= 14 + 40 + 20 && f[12] == 0x86 && f[13] == 0xdd && f[14 + 6] == IPPROTO_TCP)
        return 14 + 40 + (uint32_t)(f[14 + 40 + 12] >> 4) * 4;
    if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != IPPROTO_TCP)
        return 0;
    uint32_t ihl = (uint32_t)(f[14] & 0x0f) * 4;
    if (ihl < 20 || len < 14 + ihl + 20)
        return 0;
    return 14 + ihl + (uint32_t)(f[14 + ihl + 12] >> 4) * 4;
}

/* The frame as the tap (pcap) should see it: gathered, checksum finished. */
static void tap_frame(struct netdev_packet *np, const struct tcpsm_frame *fr)
{
    uint32_t len = tcpsm_frame_len(fr);
    if (fr->len == len && !(fr->flags & TCPSM_FRAME_CSUM_PARTIAL)) {
        np->tap(np->tap_ctx, fr->data, fr->len);
        return;
    }
    if (len > sizeof(np->tx->lin))
        return;
    uint8_t *b = np->tx->lin;
    memcpy(b, fr->data, fr->len);
    if (fr->plen[0])
        memcpy(b + fr->len, fr->pay[0], fr->plen[0]);
    if (fr->plen[1])
        memcpy(b + fr->len + fr->plen[0], fr->pay[1], fr->plen[1]);
    if (fr->flags & TCPSM_FRAME_CSUM_PARTIAL)
        netdev_packet_fix_csum(b, len);
    np->tap(np->tap_ctx, b, len);
}

void netdev_packet_vnet_tx(struct virtio_net_hdr *vh, const struct tcpsm_frame *fr)
{
    memset(vh, 0, sizeof(*vh));
    vh->gso_type = VIRTIO_NET_HDR_GSO_NONE;
    if (!(fr->flags & TCPSM_FRAME_CSUM_PARTIAL))
        return;
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->csum_start = fr->csum_start;
    vh->csum_offset = fr->csum_offset;
    uint32_t hl = tcp_hdr_len(fr->data, fr->len);
    vh->hdr_len = (uint16_t)(hl ? hl : (uint32_t)fr->csum_start + fr->csum_offset + 2);
    /* The kernel rejects GSO for a frame that fits one segment: the core
     * marks only payloads larger than gso_size. */
    if ((fr->flags & TCPSM_FRAME_GSO_TCPV4) && hl) {
        vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
        vh->gso_size = fr->gso_size;
    } else if ((fr->flags & TCPSM_FRAME_GSO_TCPV6) && hl) {
        vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
        vh->gso_size = fr->gso_size;
    }
}

/* ------------------------------------------------- sending after the lock
 *
 * A frame made under the stack lock (headers, and a payload of up to
 * DEFER_BYTES: a reply of a segment or two) is copied into the process's
 * batch and sent after the lock is released (netdev_packet_defer_end/_send):
 * its sendmmsg runs the peer's TCP on veth (its receive, its next
 * transmissions, its wake-up), which held the stack lock against this
 * process's other threads for all that time. The runtime may also leave
 * the batch waiting past the end of the call (a busy event loop's replies
 * go in one sendmmsg when it sleeps: one wake-up of the peer for them all;
 * runtime.c out_keep has the bounds).
 *
 * Order: one batch for the process, under tx_order, and every send takes
 * tx_order and sends the batch first: the link sees the frames in the
 * order the stack made them, whichever thread sends. Only while this
 * process is alone on the stack (defer_ok): another process's sends would
 * not send ours first. Bounded: DEFER_MAX frames; a full batch, or a frame
 * too large to copy, is sent under the lock, the batch first. The batch is
 * sent on np->fd: closing or replacing it sends the batch first
 * (defer_barrier), and only the stack lock's holder adds to it. */
#define DEFER_MAX 32
#define DEFER_BYTES 2048        /* the largest frame copied: Ethernet + IP + TCP + two small segments */

struct defer_batch {
    unsigned n;                 /* written under tx_order, read as a hint without it */
    uint64_t flushes;           /* batches sent (netdev_packet_defer_gen) */
    struct mmsghdr msgs[DEFER_MAX];
    struct iovec iov[DEFER_MAX];
    /* the vnet header (if any) and the frame, in one piece */
    uint8_t buf[DEFER_MAX][sizeof(struct virtio_net_hdr) + DEFER_BYTES];
};
static struct defer_batch held;         /* the process's; under tx_order */
static __thread bool t_defer_on;        /* this thread holds the stack lock (netdev_packet_defer_begin) */
static pthread_mutex_t tx_order = PTHREAD_MUTEX_INITIALIZER;

static bool deferrable(const struct tcpsm_frame *fr)
{
    return (size_t)fr->len + fr->plen[0] + fr->plen[1] <= DEFER_BYTES;
}

/* Under tx_order. */
static void defer_add(struct netdev_packet *np, const struct tcpsm_frame *fr)
{
    struct defer_batch *b = &held;
    unsigned i = b->n;
    size_t len = 0;
    if (np->vnet) {
        struct virtio_net_hdr vh;
        netdev_packet_vnet_tx(&vh, fr);
        memcpy(b->buf[i], &vh, sizeof(vh));
        len = sizeof(vh);
    }
    memcpy(b->buf[i] + len, fr->data, fr->len);
    len += fr->len;
    for (int j = 0; j < 2; j++)
        if (fr->plen[j]) {
            memcpy(b->buf[i] + len, fr->pay[j], fr->plen[j]);
            len += fr->plen[j];
        }
    b->iov[i] = (struct iovec){ .iov_base = b->buf[i], .iov_len = len };
    memset(&b->msgs[i], 0, sizeof(b->msgs[i]));
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    __atomic_store_n(&b->n, i + 1, __ATOMIC_RELAXED);
    np->tx_frames++;
    np->tx_deferred++;
}

/* sendmmsg, or for one frame sendmsg, or sendto when it is in one piece
 * (a copied frame): the kernel's loop over the vector and its write-back
 * of msg_len, then its copies of the message header and the iovec array,
 * cost a ping-pong's lone request ~0.04 and ~0.03 us a round trip. Returns
 * the messages sent, or -1 with errno. */
static long send_msgs(int fd, struct mmsghdr *m, unsigned n)
{
    if (n != 1)
        return syscall(SYS_sendmmsg, fd, m, n, MSG_DONTWAIT);
    const struct msghdr *h = &m->msg_hdr;
    long r = h->msg_iovlen == 1 && !h->msg_name && !h->msg_control
                 ? syscall(SYS_sendto, fd, h->msg_iov[0].iov_base, h->msg_iov[0].iov_len,
                           MSG_DONTWAIT, NULL, 0)
                 : syscall(SYS_sendmsg, fd, h, MSG_DONTWAIT);
    return r < 0 ? r : 1;
}

/* The batch, with tx_order held (under the stack lock or after it). A
 * failure is counted and logged; the frames are gone (TCP recovers them,
 * as from a full queue). */
static void defer_flush(struct netdev_packet *np)
{
    struct defer_batch *b = &held;
    unsigned done = 0;
    while (done < b->n) {
        long r = send_msgs(np->fd, &b->msgs[done], b->n - done);
        if (np->sent)
            np->sent();
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            if (__atomic_fetch_add(&np->tx_err, 1, __ATOMIC_RELAXED) == 0)
                tcpsm_log(TCPSM_LOG_INFO, "link: send failed (%s), frame dropped",
                          e ? strerror(e) : "nothing sent");
            /* the kernel refused the offload request: the holder of the
             * stack lock turns the features off (packet_send) */
            if (e == EINVAL && np->vnet)
                __atomic_store_n(&np->tx_refused, true, __ATOMIC_RELAXED);
            done++;
            continue;
        }
        done += (unsigned)r;
    }
    __atomic_fetch_add(&np->tx_batches, 1, __ATOMIC_RELAXED);  /* also outside the stack lock */
    __atomic_store_n(&b->n, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->flushes, b->flushes + 1, __ATOMIC_RELAXED);
}

void netdev_packet_defer_begin(void)
{
    t_defer_on = true;
}

bool netdev_packet_defer_end(struct netdev_packet *np)
{
    (void)np;
    t_defer_on = false;
    return __atomic_load_n(&held.n, __ATOMIC_RELAXED) != 0;
}

uint64_t netdev_packet_defer_gen(const struct netdev_packet *np)
{
    (void)np;
    return __atomic_load_n(&held.flushes, __ATOMIC_RELAXED);
}

void netdev_packet_defer_send(struct netdev_packet *np)
{
    if (__atomic_load_n(&held.n, __ATOMIC_RELAXED) == 0)
        return;
    pthread_mutex_lock(&tx_order);
    if (held.n)
        defer_flush(np);
    pthread_mutex_unlock(&tx_order);
}

void netdev_packet_defer_fork_child(void)
{
    /* another thread of the parent may have held it at the fork */
    pthread_mutex_init(&tx_order, NULL);
    held.n = 0;                 /* the parent's to send */
    t_defer_on = false;
}

/* Before the link socket is closed or replaced (under the stack lock): the
 * waiting frames go out on it now, so none is sent later on a closed or
 * reused descriptor. */
static void defer_barrier(struct netdev_packet *np)
{
    pthread_mutex_lock(&tx_order);
    if (held.n)
        defer_flush(np);
    pthread_mutex_unlock(&tx_order);
}

static unsigned packet_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *frames, unsigned n)
{
    struct netdev_packet *np = dev->priv;
    struct netdev_packet_tx *tx = np->tx;
    /* Captured before the send: an answer can arrive (and be captured by
     * the receive thread) before sendmmsg returns. */
    if (np->tap && (!np->tap_want || np->tap_want(np->tap_ctx)))
        for (unsigned i = 0; i < n; i++)
            tap_frame(np, &frames[i]);
    const uint32_t offl = TCPSM_NETDEV_F_TSO | TCPSM_NETDEV_F_TSO6 | TCPSM_NETDEV_F_TX_CSUM;
    if (__builtin_expect(__atomic_load_n(&np->tx_refused, __ATOMIC_RELAXED), 0)) {
        __atomic_store_n(&np->tx_refused, false, __ATOMIC_RELAXED);
        if (dev->features & offl) {
            dev->features &= ~offl;
            tcpsm_log(TCPSM_LOG_WARN, "link: the kernel refused an offloaded frame: "
                      "checksum offload and TSO off");
        }
    }
    unsigned done = 0, sent = 0;
    bool defer = t_defer_on && np->defer_ok && np->defer_ok();
    pthread_mutex_lock(&tx_order);
    /* Copied, in front: after the lock (see above). */
    if (defer) {
        while (done < n && held.n < DEFER_MAX && deferrable(&frames[done]))
            defer_add(np, &frames[done++]);
        sent = done;
        if (done == n) {
            pthread_mutex_unlock(&tx_order);
            return sent;
        }
    }
    if (held.n)
        defer_flush(np);        /* the earlier frames go first */
    while (done < n) {
        unsigned k = n - done < NETDEV_PACKET_BATCH ? n - done : NETDEV_PACKET_BATCH;
        for (unsigned i = 0; i < k; i++) {
            const struct tcpsm_frame *fr = &frames[done + i];
            struct iovec *v = tx->iov[i];
            unsigned nv = 0;
            if (np->vnet) {
                netdev_packet_vnet_tx(&tx->vh[i], fr);
                v[nv++] = (struct iovec){ .iov_base = &tx->vh[i], .iov_len = sizeof(tx->vh[i]) };
            }
            /* no copy: the headers from their slot, the payload from the
             * connection's send buffer */
            v[nv++] = (struct iovec){ .iov_base = fr->data, .iov_len = fr->len };
            for (int j = 0; j < 2; j++)
                if (fr->plen[j])
                    v[nv++] = (struct iovec){ .iov_base = (void *)fr->pay[j], .iov_len = fr->plen[j] };
            memset(&tx->msgs[i], 0, sizeof(tx->msgs[i]));
            tx->msgs[i].msg_hdr.msg_iov = v;
            tx->msgs[i].msg_hdr.msg_iovlen = nv;
        }
        /* Never block under the stack lock: a full queue drops, TCP retransmits. */
        long r = send_msgs(np->fd, tx->msgs, k);
        if (np->sent)
            np->sent();
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            if (__atomic_fetch_add(&np->tx_err, 1, __ATOMIC_RELAXED) == 0)
                tcpsm_log(TCPSM_LOG_INFO, "link: send failed (%s), frame of %u bytes dropped",
                          e ? strerror(e) : "nothing sent", tcpsm_frame_len(&frames[done]));
            /* The kernel refuses the offload request itself (an old or odd
             * virtio_net_hdr_to_skb): stop asking; TCP resends the frame
             * as plain segments with our own checksums. */
            if (e == EINVAL && np->vnet && (frames[done].flags & (TCPSM_FRAME_GSO_TCPV4 |
                                                                   TCPSM_FRAME_GSO_TCPV6 |
                                                                   TCPSM_FRAME_CSUM_PARTIAL)) &&
                (dev->features & offl)) {
                dev->features &= ~offl;
                tcpsm_log(TCPSM_LOG_WARN, "link: the kernel refused an offloaded frame (%s): "
                          "checksum offload and TSO off", strerror(e));
            }
            /* Skip the frame that failed so one bad frame does not stall the rest. */
            done++;
            continue;
        }
        done += (unsigned)r;
        sent += (unsigned)r;
        np->tx_frames += (uint64_t)r;
    }
    pthread_mutex_unlock(&tx_order);
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


/* Slot i: the blocks are adjacent in the mapping and whole frames fill
 * each (powers of two, ring_open), so the ring is an array of slots. */
static struct tpacket2_hdr *ring_slot(const struct netdev_packet *np, uint32_t i)
{
    return (struct tpacket2_hdr *)(np->ring + (size_t)i * np->frame_size);
}

/* (i + k) modulo the ring: ring_frames is a power of two (ring_open). */
static uint32_t ring_at(const struct netdev_packet *np, uint32_t i, uint32_t k)
{
    return (i + k) & (np->ring_frames - 1);
}

static void ring_unmap(struct netdev_packet *np)
{
    if (np->ring)
        munmap(np->ring, np->ring_len);
    if (np->rc)
        munmap(np->rc, sizeof(*np->rc));
    np->ring = NULL;
    np->rc = NULL;
}

/* After PACKET_VNET_HDR and before bind (nothing is queued yet). Best
 * effort: without a ring the link receives with recvmmsg. */
static void ring_open(struct netdev_packet *np, const char *ifname, uint32_t slots)
{
    int v = TPACKET_V2, one = 1;
    uint32_t fs = 2048;
    while (fs < np->dev.mtu + 14 + RING_SLOT_OVERHEAD)
        fs <<= 1;
    /* powers of two: a block holds whole frames and the ring a power of
     * two of them (ring_slot, ring_at) */
    uint32_t bs = fs > RING_BLOCK ? fs : RING_BLOCK;
    uint64_t want = (uint64_t)slots * fs;
    uint32_t bytes = (uint32_t)(want < RING_MAX_BYTES ? want : RING_MAX_BYTES);
    struct tpacket_req req = { .tp_block_size = bs, .tp_block_nr = bytes / bs,
                               .tp_frame_size = fs, .tp_frame_nr = bytes / bs * (bs / fs) };
    const char *what = "PACKET_VERSION";
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
        goto fail;
    /* Frames larger than a slot: also queued whole on the socket. */
    what = "PACKET_COPY_THRESH";
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof(one)) < 0)
        goto fail;
    what = "PACKET_RX_RING";
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
        goto fail;
    what = "mmap";
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, np->fd, 0);
    void *c = mmap(NULL, sizeof(*np->rc), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED || c == MAP_FAILED) {
        int e = errno;
        if (m != MAP_FAILED)
            munmap(m, bytes);
        if (c != MAP_FAILED)
            munmap(c, sizeof(*np->rc));
        struct tpacket_req none = { 0 };
        (void)sys_setsockopt(np->fd, SOL_PACKET, PACKET_RX_RING, &none, sizeof(none));
        errno = e;
        goto fail;
    }
    /* Not copied into forked children: the ring's pages are inserted
     * (VM_MIXEDMAP), so fork would copy its page table entries (8192 for 32 MiB) each
     * time (most of a fork's cost to a forking server); a child that reads
     * this socket maps it again (netdev_packet_fork_child). */
    (void)madvise(m, bytes, MADV_DONTFORK);
    np->ring = m;
    np->ring_len = bytes;
    np->rc = c;
    np->ring_frames = req.tp_frame_nr;
    np->frame_size = fs;
    return;
fail:
    tcpsm_log(TCPSM_LOG_INFO, "TCPSM_IF=%s: no receive ring (%s: %s): recvmmsg instead",
              ifname, what, strerror(errno));
}

/* The interface's index and MTU, through the packet socket. */
static int if_info(struct netdev_packet *np, const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (syscall(SYS_ioctl, np->fd, SIOCGIFINDEX, &ifr) < 0)
        return -1;
    np->ifindex = ifr.ifr_ifindex;
    if (syscall(SYS_ioctl, np->fd, SIOCGIFMTU, &ifr) < 0)
        return -1;
    np->dev.mtu = ifr.ifr_mtu > 0 && ifr.ifr_mtu <= 9000 ? (uint32_t)ifr.ifr_mtu : 1500;
    if (syscall(SYS_ioctl, np->fd, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
        tcpsm_log(TCPSM_LOG_WARN, "TCPSM_IF=%s: the interface is down; nothing will be sent "
                  "until it is up", ifname);
    return 0;
}

static int buffers_init(struct netdev_packet *np, const uint8_t mac[6])
{
    memset(np, 0, sizeof(*np));
    np->fd = -1;
    np->dev.ops = &packet_ops;
    np->dev.priv = np;
    memcpy(np->mac, mac, 6);
    np->rx = malloc(sizeof(*np->rx));
    np->tx = malloc(sizeof(*np->tx));
    if (!np->rx || !np->tx) {
        errno = ENOMEM;
        return -1;
    }
    for (unsigned i = 0; i < NETDEV_PACKET_BATCH; i++) {
        np->rx->iov[i][0].iov_base = &np->rx->vh[i];
        np->rx->iov[i][0].iov_len = sizeof(np->rx->vh[i]);
        np->rx->iov[i][1].iov_base = np->rx->data[i];
        np->rx->iov[i][1].iov_len = NETDEV_PACKET_SLOT;
    }
    return 0;
}

static void vnet_features(struct netdev_packet *np)
{
    np->dev.features = TCPSM_NETDEV_F_SG;
    if (np->vnet) {
        np->dev.features |= TCPSM_NETDEV_F_TX_CSUM | TCPSM_NETDEV_F_TSO | TCPSM_NETDEV_F_TSO6;
        np->dev.gso_max = 65535;
    }
}

int netdev_packet_tx_socket(const char *ifname, unsigned flags, bool *vnet, char *err,
                            size_t errlen)
{
    /* Protocol 0: nothing is queued until the filter is in place and bind()
     * selects ETH_P_ALL on the interface (netdev_packet_rx_enable). */
    const char *what = "AF_PACKET socket (needs CAP_NET_RAW)";
    int fd = (int)syscall(SYS_socket, AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    what = "interface index";
    if (syscall(SYS_ioctl, fd, SIOCGIFINDEX, &ifr) < 0)
        goto fail;
    /* Offloads through a struct virtio_net_hdr before each frame (set
     * before the ring): checksum offload and TSO on send (veth hands a
     * 64 KiB frame to its peer whole; a link without TSO has the kernel
     * segment it), GRO'd frames and the checksum state on receive. A kernel
     * that refuses it leaves us with plain frames, software checksums and
     * MSS-sized segments. */
    int one = 1;
    *vnet = false;
    if (!(flags & NETDEV_PACKET_NO_VNET) &&
        sys_setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) == 0) {
        *vnet = true;
    } else if (!(flags & NETDEV_PACKET_NO_VNET)) {
        tcpsm_log(TCPSM_LOG_INFO, "TCPSM_IF=%s: PACKET_VNET_HDR refused (%s): no offloads",
                  ifname, strerror(errno));
    }
    int sz = SNDBUF_BYTES;
    if (sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)sys_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    /* No PACKET_QDISC_BYPASS: veth has no qdisc (noqueue) to bypass, and
     * the bypass would also skip the taps of other packet sockets on the
     * way out (tcpdump on the interface would miss our frames). */
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = ifr.ifr_ifindex;
    what = "bind";
    if (syscall(SYS_bind, fd, &sll, sizeof(sll)) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    if (fd >= 0)
        syscall(SYS_close, fd);
    snprintf(err, errlen, "TCPSM_IF=%s: %s: %s", ifname, what, strerror(e));
    return -e;
}

int netdev_packet_rx_enable(struct netdev_packet *np, unsigned flags, uint16_t *fanout)
{
    char ifname[IF_NAMESIZE] = "?";
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_ifindex = np->ifindex;
    if (syscall(SYS_ioctl, np->fd, SIOCGIFNAME, &ifr) == 0)
        snprintf(ifname, sizeof(ifname), "%s", ifr.ifr_name);
    struct sock_filter prog[16];
    struct sock_fprog fprog = { .len = (unsigned short)netdev_packet_filter(prog, np->mac),
                                .filter = prog };
    /* A fanout group is joined once bound: until then the socket would get
     * copies of frames the group's sockets get too; it takes none. */
    struct sock_filter none[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
    struct sock_fprog fnone = { .len = 1, .filter = none };
    if (sys_setsockopt(np->fd, SOL_SOCKET, SO_ATTACH_FILTER, fanout ? &fnone : &fprog,
                       sizeof(fprog)) < 0)
        return -errno;
    int one = 1;
    /* Our own frames would loop back to us as PACKET_OUTGOING (Linux >= 4.20
     * can drop them in the kernel; recv also checks sll_pkttype). */
    (void)sys_setsockopt(np->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)) < 0)
        return -errno;
    int sz = RCVBUF_BYTES;
    if (sys_setsockopt(np->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
        (void)sys_setsockopt(np->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    if (!(flags & NETDEV_PACKET_NO_RING))
        ring_open(np, ifname, fanout && *fanout ? RING_SLOTS_JOIN : RING_SLOTS);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = np->ifindex;
    if (syscall(SYS_bind, np->fd, &sll, sizeof(sll)) < 0)
        return -errno;
    if (fanout) {
        /* Hash by flow (a connection's frames keep their order on one
         * socket); roll over to another socket of the group when the chosen
         * one's queue is full. The group receives through its own hook,
         * which ignores the socket's PACKET_IGNORE_OUTGOING: without the
         * group's flag every frame we send (64 KiB super-segments) would be
         * cloned back to the group and filtered out, at a cost of a quarter
         * more CPU per byte sent. Id 0: a new group with a number the kernel
         * picks (FLAG_UNIQUEID), read back for the others to join. */
        int type = PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_ROLLOVER |
                   PACKET_FANOUT_FLAG_IGNORE_OUTGOING;
        if (!*fanout)
            type |= PACKET_FANOUT_FLAG_UNIQUEID;
        int arg = type << 16 | *fanout;         /* packet(7): id | type_flags << 16 */
        socklen_t al = sizeof(arg);
        if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0 ||
            syscall(SYS_getsockopt, np->fd, SOL_PACKET, PACKET_FANOUT, &arg, &al) < 0 ||
            sys_setsockopt(np->fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0)
            return -errno;
        *fanout = (uint16_t)(arg & 0xffff);
    }
    /* Our MAC is not the interface's: without promiscuous mode the NIC (and
     * veth) drops unicast frames to it before we can see them. The
     * membership ends with the socket. */
    struct packet_mreq mr;
    memset(&mr, 0, sizeof(mr));
    mr.mr_ifindex = np->ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (sys_setsockopt(np->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0)
        return -errno;
    return 0;
}

void netdev_packet_rx_disable(struct netdev_packet *np)
{
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = np->ifindex;
    syscall(SYS_bind, np->fd, &sll, sizeof(sll));
    ring_unmap(np);
}

int netdev_packet_open(struct netdev_packet *np, const char *ifname, const uint8_t mac[6],
                       unsigned flags, uint16_t *fanout, char *err, size_t errlen)
{
    if (buffers_init(np, mac) < 0)
        return fail(np, err, errlen, ifname, "receive buffers");
    int fd = netdev_packet_tx_socket(ifname, flags, &np->vnet, err, errlen);
    if (fd < 0) {
        netdev_packet_close(np);
        return fd;
    }
    np->fd = fd;
    vnet_features(np);
    if (if_info(np, ifname) < 0)
        return fail(np, err, errlen, ifname, "interface index and MTU");
    int r = netdev_packet_rx_enable(np, flags, fanout);
    if (r < 0) {
        errno = -r;
        return fail(np, err, errlen, ifname, "receive set-up (filter, bind, PACKET_FANOUT, "
                    "promiscuous mode)");
    }
    return 0;
}

int netdev_packet_adopt(struct netdev_packet *np, int fd, const char *ifname,
                        const uint8_t mac[6], char *err, size_t errlen)
{
    int domain = 0, type = 0, vnet = 0;
    socklen_t l1 = sizeof(domain), l2 = sizeof(type), l3 = sizeof(vnet);
    if (buffers_init(np, mac) < 0) {
        syscall(SYS_close, fd);
        return fail(np, err, errlen, ifname, "receive buffers");
    }
    np->fd = fd;
    if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &domain, &l1) < 0 ||
        syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 ||
        domain != AF_PACKET || type != SOCK_RAW) {
        errno = ENOTSOCK;
        return fail(np, err, errlen, ifname, "the link socket handed over");
    }
    if (if_info(np, ifname) < 0)
        return fail(np, err, errlen, ifname, "interface index and MTU");
    /* Whoever opened it chose the offloads (netdev_packet_tx_socket): follow it. */
    np->vnet = syscall(SYS_getsockopt, fd, SOL_PACKET, PACKET_VNET_HDR, &vnet, &l3) == 0 && vnet;
    vnet_features(np);
    return 0;
}

int netdev_packet_fork_child(struct netdev_packet *np, bool keep)
{
    if (!np->ring)
        return 0;
    np->ring = NULL;            /* MADV_DONTFORK: not in this process (never munmap it) */
    if (!keep)
        return 0;
    void *m = mmap(NULL, np->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, np->fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    (void)madvise(m, np->ring_len, MADV_DONTFORK);
    np->ring = m;
    return 0;
}

void netdev_packet_swap_fd(struct netdev_packet *np, int fd)
{
    defer_barrier(np);
    ring_unmap(np);             /* this process's view of the old socket's ring */
    if (np->fd >= 0)
        syscall(SYS_close, np->fd);
    np->fd = fd;
}

/* The checksum state of a frame read with recvmsg: a local sender on veth
 * leaves the sum to the hardware (partial: the data never left memory), a
 * checking device says so; either way the core skips its own pass. */
static uint16_t msg_csum_flags(const struct netdev_packet *np, const struct virtio_net_hdr *vh,
                               struct msghdr *h)
{
    uint16_t fl = 0;
    if (np->vnet) {
        if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            fl = TCPSM_FRAME_CSUM_PARTIAL;
        else if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID)
            fl = TCPSM_FRAME_CSUM_VALID;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
            continue;
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        if (aux.tp_status & TP_STATUS_CSUMNOTREADY)
            fl = TCPSM_FRAME_CSUM_PARTIAL;
        else if ((aux.tp_status & TP_STATUS_CSUM_VALID) && !fl)
            fl = TCPSM_FRAME_CSUM_VALID;
    }
    return fl;
}

/* A received frame, checked: to the capture and into frames[*n]. */
static void take(struct netdev_packet *np, struct tcpsm_frame *frames, unsigned *n, uint8_t *data,
                 uint32_t len, uint16_t fl, bool tap)
{
    /* the capture shows the finished sum (only then is it computed) */
    if ((fl & TCPSM_FRAME_CSUM_PARTIAL) && tap && netdev_packet_fix_csum(data, len))
        np->rx_csum_fixed++;
    if (tap)
        np->tap(np->tap_ctx, data, len);
    if (fl & TCPSM_FRAME_CSUM_PARTIAL)
        np->rx_csum_partial++;
    if (len > 14 + 1500)
        np->rx_large++;
    frames[*n] = (struct tcpsm_frame){ .data = data, .len = len, .flags = fl };
    (*n)++;
}

/* The whole frames of the next k ring slots marked TP_STATUS_COPY, from the
 * socket's queue (the kernel queues each before it hands its slot over, in
 * slot order), into rx->data[at...], with one recvmmsg: lens[j] and fls[j]
 * per frame, 0 for one that did not come whole. */
static void queue_recv(struct netdev_packet *np, unsigned at, unsigned k, uint32_t *lens,
                       uint16_t *fls)
{
    struct netdev_packet_rx *rx = np->rx;
    for (unsigned j = 0; j < k; j++) {
        struct msghdr *h = &rx->msgs[at + j].msg_hdr;
        memset(h, 0, sizeof(*h));
        h->msg_iov = np->vnet ? rx->iov[at + j] : &rx->iov[at + j][1];
        h->msg_iovlen = np->vnet ? 2 : 1;
        h->msg_control = rx->cmsg[at + j].buf;
        h->msg_controllen = sizeof(rx->cmsg[at + j].buf);
        rx->msgs[at + j].msg_len = 0;
        lens[j] = 0;
    }
    long r;
    do
        r = syscall(SYS_recvmmsg, np->fd, &rx->msgs[at], k, MSG_DONTWAIT | MSG_TRUNC, NULL);
    while (r < 0 && errno == EINTR);
    for (long j = 0; j < r; j++) {
        struct msghdr *h = &rx->msgs[at + j].msg_hdr;
        uint32_t len = rx->msgs[at + j].msg_len;
        if (np->vnet)
            len = len >= sizeof(rx->vh[0]) ? len - (uint32_t)sizeof(rx->vh[0]) : 0;
        if ((h->msg_flags & MSG_TRUNC) || len > NETDEV_PACKET_SLOT)
            len = 0;
        lens[j] = len;
        fls[j] = msg_csum_flags(np, &rx->vh[at + j], h);
    }
}

void netdev_packet_recv_done(struct netdev_packet *np)
{
    struct netdev_packet_ring *rc = np->rc;
    if (!rc)
        return;
    /* release: our reads of the slots happen before the kernel reuses them */
    for (uint32_t k = 0; k < rc->held_n; k++)
        __atomic_store_n(&ring_slot(np, ring_at(np, rc->held_from, k))->tp_status,
                         TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    rc->held_n = 0;
}

/* From the ring: the frames in place, no system call (but one recvmsg per
 * frame too large for a slot). */
static int ring_recv(struct netdev_packet *np, struct tcpsm_frame *frames, unsigned max, bool tap)
{
    struct netdev_packet_ring *rc = np->rc;
    netdev_packet_recv_done(np);
    rc->held_from = rc->head;
    unsigned n = 0, ncopy = 0, next = 0, at = 0, used = 0;   /* used: rx->data slots taken */
    uint32_t clen[NETDEV_PACKET_BATCH];
    uint16_t cfl[NETDEV_PACKET_BATCH];
    while (n < max && rc->held_n < np->ring_frames) {
        struct tpacket2_hdr *h = ring_slot(np, rc->head);
        /* acquire: the frame's bytes are read after the kernel's status */
        uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
        if (!(st & TP_STATUS_USER))
            break;
        if ((st & TP_STATUS_COPY) && next == ncopy) {
            /* this and the following ready slots' copies in one call */
            unsigned k = 0, room = max - n < NETDEV_PACKET_BATCH - used ? max - n
                                                                       : NETDEV_PACKET_BATCH - used;
            if (room == 0)
                break;          /* every buffer holds a frame of this batch: the rest next time */
            for (uint32_t i = 0; k < room && rc->held_n + i < np->ring_frames; i++) {
                uint32_t s2 = __atomic_load_n(&ring_slot(np, ring_at(np, rc->head, i))->tp_status,
                                              __ATOMIC_ACQUIRE);
                if (!(s2 & TP_STATUS_USER))
                    break;
                if (s2 & TP_STATUS_COPY)
                    k++;
            }
            at = used;
            used += k;
            queue_recv(np, at, k, clen, cfl);
            ncopy = k;
            next = 0;
        }
        rc->head = ring_at(np, rc->head, 1);
        rc->held_n++;           /* recorded at once: a process killed here leaves it to the next */
        const struct sockaddr_ll *sll =
            (const struct sockaddr_ll *)((uint8_t *)h + TPACKET_ALIGN(sizeof(*h)));
        uint8_t *data;
        uint32_t len;
        uint16_t fl = 0;
        if (st & TP_STATUS_COPY) {
            data = np->rx->data[at + next];
            len = clen[next];
            fl = cfl[next];
            next++;
            np->rx_copied++;
        } else {
            data = (uint8_t *)h + h->tp_mac;
            len = h->tp_snaplen < h->tp_len ? 0 : h->tp_snaplen;
            if (st & TP_STATUS_CSUMNOTREADY)
                fl = TCPSM_FRAME_CSUM_PARTIAL;
            else if (st & TP_STATUS_CSUM_VALID)
                fl = TCPSM_FRAME_CSUM_VALID;
        }
        if (sll->sll_pkttype == PACKET_OUTGOING)
            continue;
        if (len == 0) {
            /* larger than a slot and no room on the queue for the copy */
            np->rx_trunc++;
            continue;
        }
        take(np, frames, &n, data, len, fl, tap);
    }
    np->rx_frames += n;
    /* The next frames land in the next slots, which a 32 MiB ring has let
     * go cold (cache and TLB) since their last turn: warmed now, while the
     * peer works, for the kernel's write and our read (make bench's pinned
     * ping-pong: ~0.1 us of a ~2.9 us p50). */
    for (uint32_t i = 0; rc->held_n && i < 2; i++) {   /* only when the head moved */
        uint8_t *nx = (uint8_t *)ring_slot(np, ring_at(np, rc->head, i));
        __builtin_prefetch(nx, 1, 3);
        __builtin_prefetch(nx + 64, 1, 3);
        __builtin_prefetch(nx + 128, 1, 3);
        /* The fanout group's rollover asks, for each frame, whether the
         * slot a quarter of the ring ahead is free (__packet_rcv_has_room):
         * one more cold line (~0.07 us of the same p50). */
        __builtin_prefetch(ring_slot(np, ring_at(np, rc->head, i + (np->ring_frames >> 2))),
                           0, 3);
    }
    return (int)n;
}

int netdev_packet_peek(const struct netdev_packet *np)
{
    if (!np->ring)
        return -1;
    uint32_t head = __atomic_load_n(&np->rc->head, __ATOMIC_RELAXED);
    return (__atomic_load_n(&ring_slot(np, head)->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}

int netdev_packet_recv(struct netdev_packet *np, struct tcpsm_frame *frames, unsigned max)
{
    struct netdev_packet_rx *rx = np->rx;
    if (max > NETDEV_PACKET_BATCH)
        max = NETDEV_PACKET_BATCH;
    bool tap = np->tap && (!np->tap_want || np->tap_want(np->tap_ctx));
    if (np->ring)
        return ring_recv(np, frames, max, tap);
    for (unsigned i = 0; i < max; i++) {
        struct msghdr *h = &rx->msgs[i].msg_hdr;
        memset(h, 0, sizeof(*h));
        h->msg_name = &rx->from[i];
        h->msg_namelen = sizeof(rx->from[i]);
        /* with the vnet header the kernel writes it first */
        h->msg_iov = np->vnet ? rx->iov[i] : &rx->iov[i][1];
        h->msg_iovlen = np->vnet ? 2 : 1;
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
        if (np->vnet) {
            if (len < sizeof(rx->vh[i])) {
                np->rx_trunc++;
                continue;
            }
            len -= (uint32_t)sizeof(rx->vh[i]);
        }
        if ((h->msg_flags & MSG_TRUNC) || len > NETDEV_PACKET_SLOT) {
            np->rx_trunc++;
            continue;
        }
        take(np, frames, &n, rx->data[i], len, msg_csum_flags(np, &rx->vh[i], h), tap);
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
    defer_barrier(np);
    ring_unmap(np);
    if (np->fd >= 0)
        syscall(SYS_close, np->fd);
    np->fd = -1;
    free(np->rx);
    np->rx = NULL;
    free(np->tx);
    np->tx = NULL;
}
