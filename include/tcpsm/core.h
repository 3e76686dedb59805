/* tcpsm protocol core: the public, pure API.
 *
 * Everything here is single-threaded and makes no system call: the caller
 * (runtime.c in the library, or a unit test) owns the lock, the clock and the
 * link. Time is monotonic nanoseconds passed in as `now`. Frames leave through
 * struct tcpsm_netdev; frames arrive through tcpsm_stack_input().
 *
 * Errors are negative errno values (-EAGAIN, -ECONNRESET, ...), exactly the
 * errno a Linux TCP socket would give for the same situation.
 * Addresses and ports in this API are in HOST byte order.
 */
#ifndef TCPSM_CORE_H
#define TCPSM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- link */

/* One frame. On receive and for most frames sent, data/len is the whole
 * Ethernet frame and the other fields are zero. A frame sent on a netdev
 * that offers the matching TCPSM_NETDEV_F_* feature may also carry:
 *  - payload slices (F_SG): pay[0..1] follow data on the wire; the frame is
 *    data[0..len) + pay[0][0..plen[0]) + pay[1][0..plen[1]). They point into
 *    a connection's send buffer (no copy into a frame first).
 *  - TCPSM_FRAME_CSUM_PARTIAL (F_TX_CSUM): the L4 checksum field at
 *    csum_start + csum_offset holds the pseudo-header sum (not inverted,
 *    as Linux CHECKSUM_PARTIAL); the link sums [csum_start, end) into it.
 *  - TCPSM_FRAME_GSO_TCPV4 (F_TSO): an IPv4/TCP super-segment whose payload
 *    exceeds gso_size; the link (or its peer) cuts it into segments of
 *    gso_size payload bytes, each with the headers copied, the sequence
 *    number, IP ID, lengths and checksums advanced, PSH/FIN on the last.
 *  - TCPSM_FRAME_GSO_TCPV6 (F_TSO6): the same for IPv6/TCP (no extension
 *    headers; the payload length is the whole super-segment's, <= 65535).
 *    With both GSO flags the TCP checksum field holds the pseudo-header sum
 *    over the super-segment's whole L4 length, as Linux seeds it
 *    (__tcp_v4/v6_send_check with skb->len; tcp_gso_segment adjusts it per
 *    segment).
 * On receive a link may set TCPSM_FRAME_CSUM_PARTIAL (a local sender left
 * the checksum to the hardware) or TCPSM_FRAME_CSUM_VALID (checked by the
 * link): the core then trusts the data without summing it again. */
#define TCPSM_FRAME_CSUM_PARTIAL 0x1u
#define TCPSM_FRAME_CSUM_VALID   0x2u
#define TCPSM_FRAME_GSO_TCPV4    0x4u
#define TCPSM_FRAME_GSO_TCPV6    0x8u

struct tcpsm_frame {
    uint8_t *data;      /* starts at the Ethernet header */
    uint32_t len;       /* bytes at data */
    uint16_t flags;     /* TCPSM_FRAME_* */
    uint16_t gso_size;  /* TCP payload bytes per segment with GSO_TCPV4/V6 */
    uint16_t csum_start;    /* from data: the L4 header, with CSUM_PARTIAL */
    uint16_t csum_offset;   /* the checksum field in it (16 for TCP) */
    const uint8_t *pay[2];  /* payload slices after data (F_SG), or NULL */
    uint32_t plen[2];
};

/* Bytes of the whole frame on the wire. */
static inline uint32_t tcpsm_frame_len(const struct tcpsm_frame *f)
{
    return f->len + f->plen[0] + f->plen[1];
}

struct tcpsm_netdev;

struct tcpsm_netdev_ops {
    /* Hand n frames to the link. Returns how many were taken; the core
     * counts the rest as tx drops (TCP recovers them by retransmission).
     * The frames' memory (payload slices included) is only valid during
     * the call. */
    unsigned (*send)(struct tcpsm_netdev *dev, const struct tcpsm_frame *frames, unsigned n);
};

/* Offload features a netdev may offer (none is required). */
#define TCPSM_NETDEV_F_TX_CSUM 0x1u   /* may leave L4 checksum to the link (CSUM_PARTIAL) */
#define TCPSM_NETDEV_F_TSO     0x2u   /* accepts TCP super-segments (GSO_TCPV4, needs
                                         F_SG and F_TX_CSUM too) up to gso_max bytes */
#define TCPSM_NETDEV_F_SG      0x4u   /* accepts payload slices (pay/plen) */
#define TCPSM_NETDEV_F_TSO6    0x8u   /* the same for IPv6 (GSO_TCPV6) */

struct tcpsm_netdev {
    const struct tcpsm_netdev_ops *ops;
    uint32_t mtu;       /* IP MTU, e.g. 1500 */
    uint32_t features;  /* TCPSM_NETDEV_F_* */
    uint32_t gso_max;   /* F_TSO/F_TSO6: largest IP datagram (IPv4 total length,
                           IPv6 40 + payload length) of a super-segment
                           (<= 65535; 0 = 65535) */
    void *priv;
};

/* ---------------------------------------------------------------- addresses */

/* An address of either family in one 16-byte form: IPv6 as on the wire,
 * IPv4 as the IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 2.5.5.2),
 * as Linux reports IPv4 peers of dual-stack sockets. All zero = any. */
struct tcpsm_addr {
    uint8_t b[16];
};

/* ---------------------------------------------------------------- stack */

struct tcpsm_stack;
struct tcpsm_sock;

enum tcpsm_tcp_state {
    TCPSM_CLOSED = 0,
    TCPSM_LISTEN,
    TCPSM_SYN_SENT,
    TCPSM_SYN_RECEIVED,
    TCPSM_ESTABLISHED,
    TCPSM_FIN_WAIT_1,
    TCPSM_FIN_WAIT_2,
    TCPSM_CLOSE_WAIT,
    TCPSM_CLOSING,
    TCPSM_LAST_ACK,
    TCPSM_TIME_WAIT,
    TCPSM_NSTATES
};
const char *tcpsm_state_name(int state); /* "ESTABLISHED", ... */

/* TCP header flag bits, as on the wire. */
#define TCPSM_FIN 0x01
#define TCPSM_SYN 0x02
#define TCPSM_RST 0x04
#define TCPSM_PSH 0x08
#define TCPSM_ACK 0x10
#define TCPSM_URG 0x20

/* One state transition, for TCPSM_TRACE. seg_* describe the segment that
 * caused it when has_seg (dir says whether it came in or went out). */
struct tcpsm_trace_event {
    uint64_t now;
    uint32_t laddr, raddr;      /* IPv4 connections */
    uint16_t lport, rport;
    bool v6;                    /* an IPv6 connection: laddr6/raddr6 hold the addresses */
    struct tcpsm_addr laddr6, raddr6;
    int old_state, new_state;
    const char *why;            /* short cause: "rcv SYN", "app close", "rto", "2msl" ... */
    bool has_seg;
    char dir;                   /* '<' received, '>' sent */
    uint8_t seg_flags;
    uint32_t seg_seq, seg_ack, seg_len;
    uint32_t seg_wnd;           /* as on the wire (unscaled) */
};

/* Readiness bits, same values as <poll.h> so the shim passes them through. */
#define TCPSM_POLLIN    0x001
#define TCPSM_POLLPRI   0x002
#define TCPSM_POLLOUT   0x004
#define TCPSM_POLLERR   0x008
#define TCPSM_POLLHUP   0x010
#define TCPSM_POLLRDHUP 0x2000

struct tcpsm_config {
    uint32_t addr;              /* the stack's own IPv4 address, 0 = no IPv4 */
    uint8_t prefix_len;         /* connected subnet */
    uint32_t gateway;           /* default gateway, 0 = none */
    /* IPv6 (RFC 8200): the stack's global address (all zero = no IPv6: then
     * no link-local address either and every IPv6 frame is dropped), its
     * on-link prefix, and the default router (all zero = the one router
     * advertisements announce, RFC 4861 6.3.4). At least one family. */
    uint8_t addr6[16];
    uint8_t prefix6_len;        /* 1..128 */
    uint8_t gateway6[16];
    uint8_t mac[6];
    uint64_t secret[2];         /* key for RFC 6528 ISNs and ephemeral ports; from the caller's RNG */

    /* Limits; 0 means the documented default (see README "Limits"). */
    uint32_t max_socks;         /* all TCBs incl. TIME-WAIT, default 65536 */
    uint32_t sndbuf;            /* default per-socket send buffer, bytes (default 256 KiB) */
    uint32_t rcvbuf;            /* default per-socket receive buffer, bytes (default 256 KiB) */
    uint32_t rcvbuf_max;        /* receive buffers grow with their reader up to this (Linux
                                   tcp_rmem[2]); 0 or <= rcvbuf: no auto-tuning */
    uint32_t msl_ms;            /* MSL; TIME-WAIT lasts 2*MSL (default 30000) */
    uint32_t neigh_max;         /* neighbour cache entries (default 256) */
    uint64_t mem_max;           /* TCP buffer memory of the stack, bytes (default 128 MiB):
                                   pressure from 3/4 (no out-of-order data kept, no
                                   auto-tuning), receive data refused beyond it */
    uint32_t plpmtu_interval_s; /* after a black hole, the MSS search starts again this
                                   long after it ended (default 600, Linux
                                   tcp_probe_interval) */
    /* Linux tcp_mtu_probing: 2 = every connection starts at the base MSS
     * (1024; IPv6 1220) and probes upward to the handshake's at once (RFC
     * 4821 / RFC 8899), so a black hole costs no RTO; anything else (the
     * default) = probing only after a black hole (Linux 1). */
    uint8_t mtu_probing;
    /* Congestion control of new sockets by Linux name, as the host's
     * net.ipv4.tcp_congestion_control (the runtime reads it): see
     * tcpsm_cc_by_name; empty or one the stack lacks = "cubic". */
    char congestion[16];

    /* Called (under the caller's lock) when a socket's readiness may have
     * changed; events is the new tcpsm_sock_poll() value. */
    void (*sock_event)(void *ctx, struct tcpsm_sock *sk, unsigned events);
    /* Called on every TCP state transition, if set. */
    void (*trace)(void *ctx, const struct tcpsm_trace_event *ev);
    void *cb_ctx;
};

struct tcpsm_counters {
    /* link / Ethernet */
    uint64_t eth_in, eth_out, eth_drop_short, eth_drop_not_us, eth_drop_proto, tx_drop;
    /* ARP and the neighbour cache */
    uint64_t arp_in, arp_req_out, arp_reply_out, arp_drop_bad, neigh_queue_drop, neigh_full;
    /* IPv4 */
    uint64_t ip_in, ip_out, ip_drop_hdr, ip_drop_csum, ip_drop_not_us, ip_drop_frag,
             ip_drop_proto, ip_drop_noroute;
    /* ICMP */
    uint64_t icmp_in, icmp_echo_reply_out, icmp_unreach_in, icmp_drop_bad;
    /* TCP */
    uint64_t tcp_in, tcp_out, tcp_retrans, tcp_fast_retrans, tcp_rto, tcp_drop_hdr, tcp_drop_csum,
             tcp_drop_no_sock, tcp_drop_window, tcp_drop_listen_overflow, tcp_drop_synq_full,
             tcp_drop_acceptq_full, tcp_drop_rcvbuf, tcp_ooo_in, tcp_dup_in, tcp_rst_in, tcp_rst_out,
             tcp_challenge_ack, tcp_conn_timeout, tcp_active_opens, tcp_passive_opens,
             tcp_drop_max_socks, tcp_undo,
             tcp_ack_skipped,           /* reflexive ACKs withheld by the rate limits (RFC 5961 7) */
             tcp_listen_syns,           /* SYNs that reached a listener */
             tcp_syncookies_sent, tcp_syncookies_recv, tcp_syncookies_failed,
             tcp_tw_recycled,           /* TIME-WAIT TCBs ended early: the table was full */
             tcp_drop_mem,              /* data refused: buffer memory at its cap or pressure */
             tcp_mem_pressure,          /* times the stack entered memory pressure */
             tcp_ofo_pruned;            /* out-of-order segments dropped under pressure */
    /* IPv6 (appended: the IPv4 names above keep their meaning) */
    uint64_t ip6_in, ip6_out, ip6_drop_hdr, ip6_drop_not_us, ip6_drop_frag, ip6_drop_proto,
             ip6_drop_noroute, ip6_drop_exthdr;
    /* ICMPv6 and neighbour discovery */
    uint64_t icmp6_in, icmp6_echo_reply_out, icmp6_unreach_in, icmp6_ptb_in, icmp6_err_out,
             icmp6_drop_bad, nd_ns_in, nd_ns_out, nd_na_in, nd_na_out, nd_rs_out, nd_ra_in,
             nd_drop_bad, nd_dad_dup,
             ip6_reasm_ok;              /* datagrams reassembled from fragments */
    /* IPv4 reassembly: fragments in, datagrams made, given up (overlap, bound, eviction),
     * expired (30 s) */
    uint64_t ip_frag_in, ip_reasm_ok, ip_reasm_fail, ip_reasm_timeout;
    /* TCP super-segments (TSO frames) sent, and the segments they carried */
    uint64_t tcp_gso_out, tcp_gso_segs;
    /* Loss recovery: segments RACK deemed lost (RFC 8985), tail loss probes
     * sent, retransmit-queue records that had to grow at the queue's bound */
    uint64_t tcp_rack_lost, tcp_tlp, tcp_rtxq_full;
    /* path MTU: destinations learnt from ICMP (RFC 1191 / 8201) and entries evicted by a full
     * table; black holes found (RFC 4821 / 8899: the MSS lowered after repeated RTOs) */
    uint64_t pmtu_learned, pmtu_evicted, tcp_pmtu_blackhole;
    /* Software GRO: frames taken into the in-order segment before them */
    uint64_t tcp_gro_frames;
    /* PLPMTUD probes upward (RFC 4821 7.3): sent, acknowledged (the MSS rose), lost */
    uint64_t tcp_pmtu_probes, tcp_pmtu_probe_ok, tcp_pmtu_probe_lost;
    /* Reordering: recoveries undone because every retransmission came back
     * as a D-SACK (RFC 2883 / 3708; also counted in tcp_undo), and reordered
     * pure ACKs that PAWS let through (RFC 7323 5.3, Linux tcp_disordered_ack) */
    uint64_t tcp_dsack_undo, tcp_paws_disordered_ack;
    /* RTOs undone (also in tcp_undo): found spurious by F-RTO (RFC 5682,
     * tcp_spurious_rto), or by the timestamps or D-SACKs (tcp_loss_undo) */
    uint64_t tcp_spurious_rto, tcp_loss_undo;
    /* ACKs held for the application's next segment to carry: a request's or
     * a FIN's quick ACK (tcp_ack_hold), and of those the ACKs that complete
     * an active open (tcp_syn_ack_hold) */
    uint64_t tcp_acks_held, tcp_synack_acks_held;
    /* replies held for the application's next call (TCPSM_MSG_HOLD) */
    uint64_t tcp_replies_held;
    /* Repair after a process died holding the stack lock halfway through an
     * operation (tcpsm_stack_repair): passes that found a fault, faults
     * mended (links, indexes, counts), sockets reset because their own state
     * failed a check, memory blocks reclaimed that the dead holder had
     * allocated and linked nowhere */
    uint64_t repair_passes, repair_faults, repair_resets, repair_leaks;
    /* of repair_resets, the connections reset because the dead holder was
     * changing their byte stream (the intent record, tcp_stream_begin);
     * PMTU entries dropped (being written, or out of bounds) */
    uint64_t repair_stream_resets, repair_pmtu_dropped;
};

/* Where the core's memory comes from (process-wide; NULL restores malloc).
 * The runtime points it at the shared region so that every TCB, buffer and
 * table lives where all processes of the stack can reach it. Set it before
 * the first stack is made and never while one lives under another allocator.
 * alloc returns NULL when out of memory (the core then fails the operation
 * with -ENOBUFS/-ENOMEM or counts a drop). */
struct tcpsm_allocator {
    void *(*alloc)(void *ctx, size_t n);
    void (*free)(void *ctx, void *p);
    void *ctx;
    /* Optional, for tcpsm_stack_audit/_repair: does [p, p + n) lie inside
     * one block in use? (NULL: every non-NULL pointer is believed.) */
    bool (*valid)(void *ctx, const void *p, size_t n);
};
void tcpsm_set_allocator(const struct tcpsm_allocator *a);

/* Consistency after a process died holding the lock that guards the stack
 * (README "Process model", stack/tcp_repair.c). Neither sends nor reads a
 * clock except as stated.
 * tcpsm_stack_audit: checks every invariant the repair relies on (the
 * list of TCBs, the connection/port/listener/TIME-WAIT indexes, listen
 * queues, the timer heap, buffer accounting, each TCB's own fields);
 * returns the number of faults, the first described in why (may be NULL).
 * tcpsm_stack_repair: rebuilds the indexes and counts from the TCBs, drops
 * what points at freed memory, and resets (RST to the peer, ECONNRESET to
 * the application) every connection whose own state fails a check; frames
 * batched by the dead holder are dropped (TCP retransmits). Returns the
 * faults found (0: nothing was wrong); counted in repair_*.
 * tcpsm_stack_sock_live: after an audit or repair, is sk a TCB of st? */
unsigned tcpsm_stack_audit(struct tcpsm_stack *st, char *why, size_t whylen);
unsigned tcpsm_stack_repair(struct tcpsm_stack *st, uint64_t now);
bool tcpsm_stack_sock_live(struct tcpsm_stack *st, const struct tcpsm_sock *sk);
/* Faults the runtime mended around the core (its allocator and lists) and
 * blocks it reclaimed, into the same counters (a pass if the core's own
 * repair found none). */
/* What the stack holds, for tests that check nothing leaked: TCBs by
 * state (TCPSM_NSTATES counts), buffer bytes charged, bytes of the ring
 * cache. */
void tcpsm_stack_census(const struct tcpsm_stack *st, size_t *per_state, size_t *mem,
                        size_t *ring_cache);
void tcpsm_stack_repair_count(struct tcpsm_stack *st, unsigned faults, unsigned leaks,
                              bool core_found);

/* Create a stack bound to dev. Returns NULL on bad config or no memory.
 *
 * The stack keeps no address of code or of the caller's memory: dev and the
 * callbacks of cfg (sock_event, trace, cb_ctx) are the calling process's
 * "host" of the stack, held in a table of this process (at most
 * TCPSM_MAX_HOSTS stacks per process) of which the stack records the index.
 * So a stack made in memory that several programs map (each with this code
 * at another address) can be run by any of them once it has bound its own
 * host (tcpsm_stack_bind). A process that runs a stack it has not bound
 * sends nothing (counted as tx_drop) and reports no events. */
#define TCPSM_MAX_HOSTS 1024
struct tcpsm_stack *tcpsm_stack_new(const struct tcpsm_config *cfg, struct tcpsm_netdev *dev,
                                    uint64_t now);
/* Binds this process's host of st: the link (dev, whose mtu and features
 * should be those of the creator's) and cfg's sock_event, trace and cb_ctx
 * (the other fields are ignored). Rebinding replaces the host. -EINVAL for
 * a bad dev, -EBUSY if this process has another stack at st's index. */
int tcpsm_stack_bind(struct tcpsm_stack *st, const struct tcpsm_config *cfg,
                     struct tcpsm_netdev *dev);
/* Forgets this process's host of st (the stack itself is untouched). */
void tcpsm_stack_unbind(struct tcpsm_stack *st);
/* Frees every socket and TCB without sending anything (and unbinds). */
void tcpsm_stack_free(struct tcpsm_stack *st);
/* Process received frames (read-only; copied as needed). */
void tcpsm_stack_input(struct tcpsm_stack *st, const struct tcpsm_frame *frames, unsigned n,
                       uint64_t now);
/* The same, from a thread that runs the application as soon as this
 * returns (it is inside one of the application's socket calls): a quick
 * ACK owed for one short segment (a request), for a FIN (with less than
 * two full-sized segments of data before it) or for a SYN+ACK (the
 * handshake's last ACK) may be held for the application's next segment to
 * carry it, until tcpsm_stack_release_acks or the delayed-ACK timer (40 ms,
 * RFC 1122 4.2.3.2) at the latest. */
void tcpsm_stack_input_hold(struct tcpsm_stack *st, const struct tcpsm_frame *frames,
                            unsigned n, uint64_t now);
/* Sends the held ACKs that no reply carried (the application is back to
 * wait, or another thread takes the link); returns how many. O(1) when
 * none is held. */
unsigned tcpsm_stack_release_acks(struct tcpsm_stack *st, uint64_t now);
/* The same for the ACKs held at or before held_before only: an event loop
 * that comes back to wait with more events ready (a read, then the next
 * read that finds the end of the stream, then close) keeps the ones its
 * last pass held, for the segment it is about to send. An ACK held for one
 * short segment alone (a request, nothing else unacknowledged) stays held
 * here whatever its age: the peer allows it a delayed ACK, and an event
 * loop working through a burst of requests answers it with its reply
 * (tcpsm_stack_release_acks or the delayed-ACK timer send it otherwise). */
unsigned tcpsm_stack_release_acks_before(struct tcpsm_stack *st, uint64_t now,
                                         uint64_t held_before);
/* Both send the replies held (TCPSM_MSG_HOLD) whatever their age. This one
 * sends them and nothing else (their held ACKs ride on them); returns how
 * many sockets had one. O(1) when none is held. */
unsigned tcpsm_stack_release_output(struct tcpsm_stack *st, uint64_t now);
/* Run every timer that is due at now. */
void tcpsm_stack_timers(struct tcpsm_stack *st, uint64_t now);
/* Ends every connection at once (process exit): RST (RFC 9293 3.10.4,
 * <SEQ=SND.NXT><CTL=RST>) from SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1/2,
 * CLOSE-WAIT, CLOSING and LAST-ACK; none from TIME-WAIT, LISTEN, SYN-SENT.
 * Every TCB ends in CLOSED: the held ones as tcpsm_sock_abort leaves them
 * (the handle stays until tcpsm_sock_close), orphans and unaccepted
 * connections are freed. Listeners stop (their port stays bound). */
void tcpsm_stack_abort_all(struct tcpsm_stack *st, uint64_t now);
/* Earliest pending deadline, UINT64_MAX if none. O(1). */
uint64_t tcpsm_stack_next_deadline(const struct tcpsm_stack *st);
/* True if dst is reachable through the link (connected subnet or gateway),
 * false for loopback, multicast, broadcast, 0.0.0.0 and the unroutable. */
bool tcpsm_stack_routable(const struct tcpsm_stack *st, uint32_t dst);
/* Both families: IPv6 by the on-link prefix, link-local, or the default router. */
bool tcpsm_stack_routable_addr(const struct tcpsm_stack *st, const struct tcpsm_addr *dst);
const struct tcpsm_counters *tcpsm_stack_counters(const struct tcpsm_stack *st);
uint32_t tcpsm_stack_addr(const struct tcpsm_stack *st);
/* Number of TCBs alive (any state, incl. TIME-WAIT and unaccepted). */
size_t tcpsm_stack_nsocks(const struct tcpsm_stack *st);
/* TCP buffer memory in use (rings and out-of-order segments), bytes; the
 * cap (mem_max) and whether the stack is under pressure, if asked. */
size_t tcpsm_stack_mem(const struct tcpsm_stack *st, size_t *max, bool *pressure);
/* SYNs that reached any listener in the last whole second before now (the
 * per-listener figure is in tcpsm_sock_info; totals in the counters). */
uint32_t tcpsm_stack_syn_rate(const struct tcpsm_stack *st, uint64_t now);

/* ---------------------------------------------------------------- sockets
 *
 * A tcpsm_sock is one TCP endpoint (a TCB). The application holds a reference
 * from tcpsm_sock_new()/tcpsm_sock_accept() until tcpsm_sock_close(); after
 * that the core frees the TCB itself once it reaches CLOSED (TIME-WAIT
 * included). Every call below except _close() requires the reference. */

int tcpsm_sock_new(struct tcpsm_stack *st, struct tcpsm_sock **out);   /* -ENOBUFS at max_socks */
/* addr 0 = any (i.e. the stack address); port 0 = ephemeral.
 * -EADDRINUSE, -EADDRNOTAVAIL (addr not ours), -EINVAL (already bound). */
int tcpsm_sock_bind(struct tcpsm_sock *sk, uint32_t addr, uint16_t port);
/* backlog is clamped to [1, 4096]. -EINVAL if connected. Binds ephemeral if unbound. */
int tcpsm_sock_listen(struct tcpsm_sock *sk, int backlog);
/* Sends the SYN and returns -EINPROGRESS; completion shows as POLLOUT and
 * tcpsm_sock_error(). Called again while connecting (Linux): -EALREADY
 * during the handshake, then once its outcome: 0, or the pending error
 * (-ECONNABORTED if SO_ERROR already took it); -EISCONN once connected.
 * -ENETUNREACH, -EADDRNOTAVAIL (no ephemeral port), -EINVAL (listening). */
int tcpsm_sock_connect(struct tcpsm_sock *sk, uint32_t addr, uint16_t port, uint64_t now);
/* -EAGAIN when the accept queue is empty, -EINVAL if not listening. */
int tcpsm_sock_accept(struct tcpsm_sock *sk, struct tcpsm_sock **out);
/* Copies up to len bytes into the send buffer and transmits what the
 * windows allow. Returns bytes taken (may be short), -EAGAIN when the buffer
 * is full, -EPIPE after shutdown(SHUT_WR)/a reset, -ENOTCONN before
 * ESTABLISHED, or the pending error (-ECONNRESET, -ETIMEDOUT...). */
ssize_t tcpsm_sock_send(struct tcpsm_sock *sk, const void *buf, size_t len, uint64_t now);
/* The same with flags: TCPSM_MSG_MORE holds this call's partial segment as
 * TCP_CORK would (until the next send without it, or 200 ms);
 * TCPSM_MSG_OOB makes the last byte taken urgent (RFC 9293 3.8.5: the
 * urgent pointer goes out with the segments until it is ACKed).
 * TCPSM_MSG_HOLD (the runtime, for an application thread): a reply to a
 * request whose quick ACK is held (tcp_ack_hold), sent with nothing in
 * flight, is held too, so that the application's next call may add to it:
 * its FIN when it closes next (one segment: reply, FIN and ACK), or more of
 * the reply. It leaves at that close or shutdown, at
 * tcpsm_stack_release_output (the runtime: at the end of the thread's
 * next stack call), whenever the held ACKs are released (the thread waits,
 * tcpsm_stack_release_acks*, whatever its age), or at the delayed-ACK
 * timer at the latest. */
#define TCPSM_MSG_MORE 0x8000
#define TCPSM_MSG_OOB  0x1
#define TCPSM_MSG_HOLD 0x10000
ssize_t tcpsm_sock_sendf(struct tcpsm_sock *sk, const void *buf, size_t len, int flags,
                         uint64_t now);
/* Flags: TCPSM_MSG_PEEK. Returns bytes, 0 at EOF (FIN received), -EAGAIN,
 * -ENOTCONN, or the pending error. Consuming data may send a window update.
 * A read stops at the urgent mark; without SO_OOBINLINE the urgent byte is
 * not in the stream. TCPSM_MSG_OOB reads the urgent byte as Linux does: 1,
 * -EINVAL (none, already read, or OOBINLINE), -EAGAIN (not arrived yet), 0
 * after the peer's FIN. */
#define TCPSM_MSG_PEEK 0x2
ssize_t tcpsm_sock_recv(struct tcpsm_sock *sk, void *buf, size_t len, int flags, uint64_t now);
/* SIOCATMARK: 1 when the next byte read is the urgent mark. */
int tcpsm_sock_atmark(const struct tcpsm_sock *sk);
/* What the socket's owner is to be told of (Linux sk_wake_async and
 * sk_send_sigurg): the events since the last call, cleared by it. The
 * runtime turns them into SIGURG, and into SIGIO (or F_SETSIG's signal)
 * for sockets with O_ASYNC.
 *   URG  a new urgent pointer (SIGURG; POLL_PRI to an F_SETSIG signal)
 *   IN   in-order data queued, a connection ready to accept, the peer's FIN
 *        (POLL_IN; Linux sock_def_readable, tcp_fin); skipped by Linux
 *        while a reader waits in recv (SOCK_WAKE_WAITD)
 *   HUP  the peer's FIN when both directions are now shut (POLL_HUP)
 *   OUT  an active open completed, or room to write again after a send
 *        or an application's poll found none (POLL_OUT; tcp_rcv_synsent_
 *        state_process, sk_stream_write_space with SOCKWQ_ASYNC_NOSPACE)
 *   ERR  the connection failed: reset, timeout, hard ICMP (POLL_ERR;
 *        sk_error_report) */
#define TCPSM_ASYNC_URG 0x01
#define TCPSM_ASYNC_IN  0x02
#define TCPSM_ASYNC_HUP 0x04
#define TCPSM_ASYNC_OUT 0x08
#define TCPSM_ASYNC_ERR 0x10
unsigned tcpsm_sock_take_async(struct tcpsm_sock *sk);
/* An application's poll: as tcpsm_sock_poll, and a socket found not
 * writable owes POLL_OUT once it is (Linux tcp_poll sets NOSPACE). */
unsigned tcpsm_sock_poll_app(struct tcpsm_sock *sk);
/* how: 0 SHUT_RD, 1 SHUT_WR, 2 SHUT_RDWR. -ENOTCONN if not connected. */
int tcpsm_sock_shutdown(struct tcpsm_sock *sk, int how, uint64_t now);
/* Drops the application's reference. Graceful FIN close; RST instead when
 * unread data remains (RFC 9293 3.10.4 / Linux) or SO_LINGER is 0. */
void tcpsm_sock_close(struct tcpsm_sock *sk, uint64_t now);
/* Sends RST (if synchronized) and moves to CLOSED at once. */
void tcpsm_sock_abort(struct tcpsm_sock *sk, uint64_t now);

/* Readiness, exactly as Linux tcp_poll() reports it (POLL* bits above). */
unsigned tcpsm_sock_poll(const struct tcpsm_sock *sk);
/* SO_ERROR: returns the pending error as a positive errno (0 if none) and clears it. */
int tcpsm_sock_error(struct tcpsm_sock *sk);
int tcpsm_sock_state(const struct tcpsm_sock *sk);
/* Local name (0.0.0.0:0 if unbound). */
void tcpsm_sock_name(const struct tcpsm_sock *sk, uint32_t *addr, uint16_t *port);
/* Peer name; -ENOTCONN if none. */
int tcpsm_sock_peer(const struct tcpsm_sock *sk, uint32_t *addr, uint16_t *port);
/* The same for both families (struct tcpsm_addr): an IPv4 socket takes and
 * gives IPv4-mapped addresses; an IPv6 socket (TCPSM_OPT_IPV6) takes both,
 * IPv4 peers as ::ffff:a.b.c.d unless TCPSM_OPT_V6ONLY. The uint32_t forms
 * above are IPv4 only (0 for an IPv6 address). */
int tcpsm_sock_bind_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port);
int tcpsm_sock_connect_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port,
                            uint64_t now);
void tcpsm_sock_name_addr(const struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port);
int tcpsm_sock_peer_addr(const struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port);
/* Bytes readable now (FIONREAD / SIOCINQ). */
size_t tcpsm_sock_rxavail(const struct tcpsm_sock *sk);
/* Bytes in the send buffer not yet acknowledged (SIOCOUTQ). */
size_t tcpsm_sock_txqueued(const struct tcpsm_sock *sk);

enum tcpsm_opt {
    TCPSM_OPT_NODELAY,      /* bool */
    TCPSM_OPT_CORK,         /* bool */
    TCPSM_OPT_KEEPALIVE,    /* bool */
    TCPSM_OPT_KEEPIDLE,     /* seconds, 1..32767, default 7200 */
    TCPSM_OPT_KEEPINTVL,    /* seconds, 1..32767, default 75 */
    TCPSM_OPT_KEEPCNT,      /* 1..127, default 9 */
    TCPSM_OPT_SNDBUF,       /* bytes; clamped like Linux (doubled, min 4608) */
    TCPSM_OPT_RCVBUF,       /* bytes; clamped like Linux (doubled, min 2292) */
    TCPSM_OPT_LINGER,       /* seconds; -1 = off; 0 = reset on close */
    TCPSM_OPT_MAXSEG,       /* MSS clamp, 88..65535, before connect */
    TCPSM_OPT_REUSEADDR,    /* bool: bind may reuse a port held by TIME-WAIT */
    TCPSM_OPT_USER_TIMEOUT, /* ms, 0 = default retry bound */
    TCPSM_OPT_IPV6,         /* bool: an AF_INET6 socket (before bind/connect) */
    TCPSM_OPT_V6ONLY,       /* bool: IPV6_V6ONLY (before bind), IPv6 sockets only */
    TCPSM_OPT_TOS,          /* IP_TOS / IPV6_TCLASS, 0..255 (-1: 0); the ECN bits stay 0 */
    TCPSM_OPT_TTL,          /* IP_TTL / IPV6_UNICAST_HOPS, 1..255, -1 = default (64) */
    TCPSM_OPT_MTU,          /* get only: IP_MTU / IPV6_MTU, the path MTU; -ENOTCONN unconnected */
    TCPSM_OPT_CONGESTION,   /* TCP_CONGESTION: TCPSM_CC_* (the default: the config's
                               congestion); -ENOENT for another */
    TCPSM_OPT_OOBINLINE,    /* bool: SO_OOBINLINE, the urgent byte stays in the stream */
};
#define TCPSM_OPT_COUNT (TCPSM_OPT_OOBINLINE + 1)      /* number of options */
#define TCPSM_CC_RENO  0
#define TCPSM_CC_CUBIC 1
#define TCPSM_CC_BBR   2
#define TCPSM_CC_COUNT 3
/* Congestion control by Linux name ("reno", "cubic"): TCPSM_CC_*, or -1
 * for one the stack lacks. tcpsm_cc_name: the name of TCPSM_CC_* which. */
int tcpsm_cc_by_name(const char *name);
const char *tcpsm_cc_name(int which);
/* -EINVAL for a value out of range, -ENOPROTOOPT for an unknown option. */
int tcpsm_sock_setopt(struct tcpsm_sock *sk, enum tcpsm_opt opt, int val);
int tcpsm_sock_getopt(const struct tcpsm_sock *sk, enum tcpsm_opt opt, int *val);

/* Linux's struct tcp_info, every field the stack keeps (the shim maps it
 * to the kernel's layout). Times in microseconds unless _ms. */
struct tcpsm_tcp_info {
    uint8_t state;              /* enum tcpsm_tcp_state */
    uint8_t ca_state;           /* Linux TCP_CA_Open 0, Disorder 1, Recovery 3, Loss 4 */
    uint8_t retransmits;        /* consecutive RTOs of the current segment */
    uint8_t probes;             /* unanswered zero-window or keepalive probes */
    uint8_t backoff;
    uint8_t snd_wscale, rcv_wscale;
    bool ws_ok, ts_ok, sack_ok;
    uint32_t rto_us, ato_us, rtt_us, rttvar_us, min_rtt_us, rcv_rtt_us;
    uint32_t snd_mss, rcv_mss, advmss, pmtu;
    uint32_t snd_cwnd;          /* segments */
    uint32_t snd_ssthresh;      /* segments */
    uint32_t reordering;
    uint32_t snd_wnd;           /* bytes, peer's window */
    uint32_t rcv_wnd;           /* bytes, advertised */
    uint32_t rcv_space, rcv_ssthresh;
    uint32_t unacked, sacked, lost, retrans;    /* segments */
    uint32_t total_retrans;
    uint32_t last_data_sent_ms, last_data_recv_ms, last_ack_recv_ms;
    uint32_t notsent_bytes;
    uint64_t bytes_acked, bytes_received, bytes_sent, bytes_retrans;
    uint32_t segs_out, segs_in, data_segs_out, data_segs_in;
    uint32_t rcv_ooopack;
    uint16_t total_rto, total_rto_recoveries;
    uint32_t total_rto_time_ms;
    /* a listener's SYN figures (0 otherwise): SYNs received, in the last
     * whole second, answered by a cookie, cookies that came back valid or
     * not, SYNs dropped (accept queue full); the SYN and accept queues */
    uint64_t syn_count, syn_cookies_sent, syn_cookies_ok, syn_cookies_bad, syn_dropped;
    uint32_t syn_rate, syn_queue, accept_queue;
    /* pacing rate, bytes/s (0: not pacing), and the last delivery-rate
     * sample (bytes/s, SACK connections) and whether it was app-limited;
     * bytes delivered (ACKed or SACKed) */
    uint64_t pacing_rate, delivery_rate, delivered;
    bool delivery_rate_app_limited;
    /* Linux tcpi_delivered, tcpi_dsack_dups, tcpi_reord_seen (segments,
     * segments, events; see tcp_int.h) */
    uint32_t delivered_segs, dsack_dups, reord_seen;
    /* Linux tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited (us):
     * time with data queued or in flight, of it limited by the peer's
     * window, and by the send buffer (tcp_chrono) */
    uint64_t busy_time_us, rwnd_limited_us, sndbuf_limited_us;
};
void tcpsm_sock_info(const struct tcpsm_sock *sk, struct tcpsm_tcp_info *info);
/* The same with the time now (the last_* ages; tcpsm_sock_info uses the
 * time of the stack's latest event). */
void tcpsm_sock_info_at(const struct tcpsm_sock *sk, struct tcpsm_tcp_info *info, uint64_t now);

/* Observers (stack/tcp_walk.c): calls fn for every TCB of the stack, held
 * or orphaned (closed by the application, still in FIN-WAIT/TIME-WAIT...),
 * listeners included; fn must not change the stack. */
void tcpsm_stack_walk(const struct tcpsm_stack *st,
                      void (*fn)(void *ctx, const struct tcpsm_sock *sk), void *ctx);
/* The same in steps, for an observer that must not hold the stack's lock
 * over a large table at once (the stats region: 15,000 TIME-WAIT TCBs took
 * 7-29 ms in one hold). begin starts a walk and returns its number; each
 * step calls fn for at most max TCBs from where the previous step stopped,
 * and returns 1 when the walk is complete, 0 when there is more, -ESTALE
 * when the walk is no longer current (another walk began: one at a time
 * per stack; or a repair ended it). Between steps the stack may change: a
 * TCB freed meanwhile is skipped (the cursor moves past it as it is freed),
 * one made after begin is not visited (it enters at the head), as Linux's
 * inet_diag dumps a table in parts. */
uint32_t tcpsm_stack_walk_begin(struct tcpsm_stack *st);
int tcpsm_stack_walk_step(struct tcpsm_stack *st, uint32_t walk, size_t max,
                          void (*fn)(void *ctx, const struct tcpsm_sock *sk), void *ctx);
bool tcpsm_sock_held(const struct tcpsm_sock *sk);     /* the application holds it */
uint32_t tcpsm_sock_sacked_bytes(const struct tcpsm_sock *sk);  /* SACKed above snd_una */

/* An opaque pointer the runtime hangs its wait state on. */
void tcpsm_sock_set_user(struct tcpsm_sock *sk, void *user);
void *tcpsm_sock_user(const struct tcpsm_sock *sk);

#ifdef __cplusplus
}
#endif
#endif
