/* The AF_PACKET link: a struct tcpsm_netdev on a real interface.
 *
 * Receives only what concerns the stack (a classic BPF filter: frames to our
 * MAC, broadcast ARP, IPv6 multicast for neighbour discovery), never its own
 * outgoing frames, in batches of up to NETDEV_PACKET_BATCH (recvmmsg); sends
 * in batches (sendmmsg), each frame as an iovec list (its headers, then the
 * payload slices that point into the connection's send buffer: no copy in
 * user space).
 *
 * With PACKET_VNET_HDR (the default; NETDEV_PACKET_NO_VNET or a kernel
 * that refuses it turn it off) a struct virtio_net_hdr precedes each frame
 * both ways: on send it carries checksum offload and TSO (TCP frames of up
 * to 64 KiB, cut at the MSS by the kernel or, on veth, by nobody: the peer
 * gets them whole), on receive the GSO size and checksum state of large
 * GRO/TSO frames, which are taken whole (64 KiB slots).
 *
 * Receive goes through a PACKET_RX_RING (TPACKET_V2) when the kernel gives
 * one: the kernel copies each frame into a slot of a ring mapped into the
 * process and we read it in place, so a batch of MTU-sized frames costs no
 * system call at all (recvmmsg's per-frame cost was most of the receive
 * path's CPU with the offloads off). A frame larger than a slot (a GRO/GSO
 * frame of up to 64 KiB) comes as a truncated slot marked TP_STATUS_COPY
 * plus the whole frame on the socket's queue (PACKET_COPY_THRESH), read
 * with recvmsg. Without a ring: recvmmsg into 64 KiB slots. */
#ifndef TCPSM_NETDEV_PACKET_H
#define TCPSM_NETDEV_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tcpsm/core.h"

#define NETDEV_PACKET_BATCH 64
/* Receive slot: a kernel peer on veth may hand us GSO frames up to 64 KiB. */
#define NETDEV_PACKET_SLOT  (65536u + 256u)

struct netdev_packet_rx;        /* receive buffers, netdev_packet.c */
struct netdev_packet_ring;      /* the receive ring's cursor, shared across fork */
struct netdev_packet_tx;        /* send scratch */
struct virtio_net_hdr;

/* netdev_packet_open flags */
#define NETDEV_PACKET_NO_VNET       0x1u    /* no PACKET_VNET_HDR: plain frames */
#define NETDEV_PACKET_NO_RING       0x2u    /* no receive ring: recvmmsg */

struct netdev_packet {
    struct tcpsm_netdev dev;    /* dev.priv points back here */
    int fd;                     /* the packet socket, -1 when closed */
    int ifindex;
    uint8_t mac[6];
    /* Called with every frame sent and received (TCPSM_PCAP); may be NULL. */
    void (*tap)(void *ctx, const uint8_t *data, uint32_t len);
    /* Whether tap wants frames now (NULL: always); asked once per batch. */
    bool (*tap_want)(void *ctx);
    void *tap_ctx;
    struct netdev_packet_rx *rx;
    struct netdev_packet_tx *tx;
    bool vnet;                  /* PACKET_VNET_HDR in use */
    /* The receive ring (NULL: none, recvmmsg instead): ring_len bytes of
     * ring_frames slots of frame_size, a power of two of each. */
    uint8_t *ring;
    size_t ring_len;
    uint32_t ring_frames, frame_size;
    /* Which slot comes next and which the last batch holds: in a page of
     * its own, shared with forked children (they read the same ring). */
    struct netdev_packet_ring *rc;
    uint64_t rx_frames, rx_trunc, rx_csum_fixed, rx_drops, tx_frames, tx_err;
    uint64_t rx_csum_partial;   /* frames whose sum a local sender left undone (trusted) */
    uint64_t rx_large;          /* frames above 1514 bytes (GRO/TSO) */
    uint64_t rx_copied;         /* frames larger than a ring slot, read from the queue */
    uint64_t tx_deferred;       /* frames sent after the stack lock (netdev_packet_defer_end) */
    uint64_t tx_batches;        /* sendmmsg calls for those */
    uint64_t tx_kept;           /* calls that left the batch waiting past their end (rt_unlock) */
    bool tx_refused;            /* a deferred frame's offload request was refused (EINVAL) */
    /* Under the stack lock: whether frames may wait for its release (this
     * process alone on the stack); NULL: never. */
    bool (*defer_ok)(void);
    /* Called after each send system call (NULL: nothing): the runtime's
     * clock reading of the lock hold is stale then (rt_clock_stale). It
     * must leave errno alone. */
    void (*sent)(void);
};

/* Sending after the stack lock (netdev_packet.c): a thread that takes the
 * lock calls netdev_packet_defer_begin; from then on the frames it sends
 * that fit a copy (headers, a reply of a segment or two) wait in the
 * process's batch, in order with everything sent by any thread. Before it
 * releases the lock, netdev_packet_defer_end (true: frames wait); after,
 * netdev_packet_defer_send sends them, or the runtime leaves them for a
 * later call (runtime.c rt_unlock); netdev_packet_defer_gen counts the
 * batches sent (how long one has waited). netdev_packet_defer_fork_child
 * in a forked child. */
void netdev_packet_defer_begin(void);
bool netdev_packet_defer_end(struct netdev_packet *np);
void netdev_packet_defer_send(struct netdev_packet *np);
uint64_t netdev_packet_defer_gen(const struct netdev_packet *np);
void netdev_packet_defer_fork_child(void);

/* Classic BPF program accepting frames whose destination is mac, and
 * broadcast ARP. Returns the number of instructions written (max 16). */
struct sock_filter;
unsigned netdev_packet_filter(struct sock_filter *prog, const uint8_t mac[6]);

/* Finishes a received frame whose L4 checksum the kernel left for the
 * hardware (TP_STATUS_CSUMNOTREADY: a partial sum from a local sender on
 * veth): computes the full TCP/UDP checksum in place. Returns 1 if fixed,
 * 0 if not IPv4 or IPv6 (no extension headers) TCP/UDP or malformed (left
 * alone for the core to drop). */
int netdev_packet_fix_csum(uint8_t *frame, uint32_t len);

/* The vnet header for sending fr: NEEDS_CSUM with csum_start/offset for a
 * CSUM_PARTIAL frame, GSO TCPV4 / TCPV6 with gso_size for a super-segment. */
void netdev_packet_vnet_tx(struct virtio_net_hdr *vh, const struct tcpsm_frame *fr);

/* Opens the socket on ifname for frames to mac (flags: NETDEV_PACKET_*).
 * With fanout, it joins the PACKET_FANOUT group *fanout (0: a new group,
 * whose number is stored in *fanout): each frame goes to one socket of the
 * group, so several processes' sockets share the frames of one stack.
 * 0, or -errno with a message in err. */
int netdev_packet_open(struct netdev_packet *np, const char *ifname, const uint8_t mac[6],
                       unsigned flags, uint16_t *fanout, char *err, size_t errlen);
/* A send-only packet socket on ifname (bound with protocol 0: it receives
 * nothing), with the vnet header unless flags say NETDEV_PACKET_NO_VNET
 * (*vnet says whether it is on). Needs CAP_NET_RAW. The fd, or -errno with
 * a message in err. */
int netdev_packet_tx_socket(const char *ifname, unsigned flags, bool *vnet, char *err,
                            size_t errlen);
/* Makes np's socket (from netdev_packet_tx_socket) receive the frames for
 * np->mac: filter, the receive ring unless flags say NETDEV_PACKET_NO_RING,
 * bind to ETH_P_ALL, the fanout group *fanout if fanout is not NULL (as
 * netdev_packet_open), promiscuous mode. No capability needed. 0 or -errno. */
int netdev_packet_rx_enable(struct netdev_packet *np, unsigned flags, uint16_t *fanout);
/* Back to send-only (bound with protocol 0), without a ring. */
void netdev_packet_rx_disable(struct netdev_packet *np);
/* Takes over a packet socket from netdev_packet_tx_socket (another process
 * opened it: handed over through SCM_RIGHTS, share.h): reads its offload
 * setting and the interface's. It receives once netdev_packet_rx_enable ran
 * on it. On failure fd is closed. 0, or -errno with a message in err. */
int netdev_packet_adopt(struct netdev_packet *np, int fd, const char *ifname,
                        const uint8_t mac[6], char *err, size_t errlen);
/* Replaces the socket (closing the old one, dropping this process's view
 * of its ring) by a send-only one with the same offloads: a forked child's
 * own (runtime_link.c). */
void netdev_packet_swap_fd(struct netdev_packet *np, int fd);
/* In a forked child (first thing): the ring is not inherited (MADV_DONTFORK);
 * keep: the child reads this socket, so it maps the ring again. 0 or -errno. */
int netdev_packet_fork_child(struct netdev_packet *np, bool keep);
/* Receives what is queued, without blocking: fills frames (valid until
 * netdev_packet_recv_done or the next call) and returns how many (0 if
 * none), or -errno. */
int netdev_packet_recv(struct netdev_packet *np, struct tcpsm_frame *frames, unsigned max);
/* Whether a frame waits on the link, read from memory (the ring's next
 * slot, no system call): 1 or 0, a hint for a reader that spins (it still
 * reads through netdev_packet_recv; the slot may hold a frame it skips);
 * -1 without a ring (only the kernel can tell). */
int netdev_packet_peek(const struct netdev_packet *np);
/* The frames of the last netdev_packet_recv are no longer used: their ring
 * slots go back to the kernel. (A batch a process could not return, being
 * killed meanwhile, is returned by the next receive.) */
void netdev_packet_recv_done(struct netdev_packet *np);
void netdev_packet_close(struct netdev_packet *np);
/* Frames the kernel dropped because our receive queue was full, since open
 * (PACKET_STATISTICS; reading resets the kernel's count, so it accumulates). */
uint64_t netdev_packet_drops(struct netdev_packet *np);

#endif
