/* The stack object shared by the protocol modules (internal header).
 * Owned by stack.c; each module keeps its own state behind one pointer. */
#ifndef TCPSM_STACK_H
#define TCPSM_STACK_H

#include "tcpsm/core.h"
#include "pmtu.h"
#include "timer.h"

struct neigh_table;             /* arp.c / neigh.c */
struct tcp_stack;               /* tcp_*.c */
struct tcp_slice;               /* tcp.h: software GRO */
struct ipv4_reasm;              /* ipv4_frag.c */

/* Output frames are built in place in fixed slots and handed to the netdev
 * in batches (design.md). A slot holds one Ethernet frame. */
#define TCPSM_TX_BATCH   64
#define TCPSM_FRAME_MAX  2048   /* a slot; super-segments keep only their headers here and
                                   point at the payload (TCPSM_NETDEV_F_SG) */
#define TCPSM_GSO_MAX    65535  /* largest IPv4 datagram of a super-segment */

struct ip6_frag_table;          /* ipv6_frag.c */

/* IPv6 state of the stack (ipv6.c, icmp6.c, nd.c, ipv6_frag.c). */
#define ND_ADDR_TENTATIVE 0     /* DAD running; usable (optimistic, RFC 4429) */
#define ND_ADDR_PREFERRED 1
#define ND_ADDR_DUPLICATE 2     /* another node has it: not used (RFC 4862 5.4.5) */
struct ipv6_state {
    bool on;                    /* cfg.addr6 set */
    uint8_t ll[16];             /* fe80::/64 + modified EUI-64 of the MAC (RFC 4291 2.5.1, RFC 4862 5.3) */
    uint8_t dad[2];             /* ND_ADDR_* of [0] cfg.addr6, [1] ll */
    uint8_t dad_sent;           /* DAD probes sent */
    uint8_t rs_sent;            /* router solicitations sent (RFC 4861 6.3.7) */
    uint8_t router[16];         /* default router: cfg.gateway6 or the advertised one, zero = none */
    uint64_t router_until;      /* end of the advertised router lifetime; UINT64_MAX if configured */
    uint32_t mtu;               /* IPv6 link MTU: the device's, lowered by an RA MTU option */
    struct tcpsm_timer timer;   /* DAD and router solicitation rounds */
    uint64_t dad_at, rs_at;     /* end of DAD, next solicitation (0 = none pending) */
    struct ip6_frag_table *frag;    /* datagrams in reassembly, made on the first fragment */
    uint64_t err_sec;           /* ICMPv6 error rate limit (RFC 4443 2.4 f) */
    uint32_t err_count;
};

/* This process's host of a stack (stack.c): the link and the event
 * callbacks, which are addresses valid in one process only; the stack
 * keeps the index of its entry (tcpsm_stack_new, tcpsm_stack_bind). */
struct stack_host {
    const struct tcpsm_stack *st;       /* whose entry this is; NULL: free */
    struct tcpsm_netdev *dev;
    void (*sock_event)(void *ctx, struct tcpsm_sock *sk, unsigned events);
    void (*trace)(void *ctx, const struct tcpsm_trace_event *ev);
    void *cb_ctx;
};
extern struct stack_host stack_hosts[TCPSM_MAX_HOSTS];
extern const struct stack_host stack_host_none;    /* a stack this process has not bound */

struct tcpsm_stack {
    struct tcpsm_config cfg;    /* sock_event, trace and cb_ctx are zero: see stack_host */
    uint32_t host;              /* index in stack_hosts of every process that runs it */
    struct tcpsm_counters cnt;
    uint32_t netmask;           /* from cfg.prefix_len, host order */
    uint16_t ip_id;             /* next IPv4 identification */
    uint64_t now;               /* time of the entry point being run (for modules without an argument) */

    struct tcpsm_timer_heap timers;
    struct neigh_table *neigh;
    struct tcp_stack *tcp;
    struct ipv4_reasm *reasm;
    struct ipv6_state v6;
    struct pmtu_cache pmtu;     /* path MTU per destination */

    /* tx batch: frames ready for dev->ops->send */
    struct tcpsm_frame tx[TCPSM_TX_BATCH];
    unsigned ntx;
    /* Offload metadata and payload slices of the frame being built (set by
     * tcp output between ipv4_out_begin and ipv4_out_commit; txp_on says it
     * applies). tx_pinned: frames in the batch pointing into a send buffer,
     * which must go out before that buffer moves (stack_tx_unpin). */
    struct tcpsm_frame txp;
    bool txp_on;
    unsigned tx_pinned;
    /* TCPSM_FRAME_* flags of the frame being received */
    uint16_t rx_flags;
    /* Software GRO (tcp_gro_run): the payload slices of the frames that
     * continue the one being received, whose TCP header is gro_th; tcp
     * input takes them (gro_taken) or they are received one by one. Valid
     * during tcpsm_stack_input only. */
    const struct tcp_slice *gro_more;
    const uint8_t *gro_th;
    unsigned gro_n;
    uint32_t gro_bytes;
    bool gro_taken;
    /* Last: tcpsm_stack_new zeroes everything before it, not the slots. */
    uint8_t txbuf[TCPSM_TX_BATCH][TCPSM_FRAME_MAX];
};

/* This process's host of st (stack_host_none if it has not bound one). */
static inline const struct stack_host *stack_host(const struct tcpsm_stack *st)
{
    const struct stack_host *h = &stack_hosts[st->host];
    return __builtin_expect(h->st == st, 1) ? h : &stack_host_none;
}
/* The link, as this process reaches it. */
static inline const struct tcpsm_netdev *stack_dev(const struct tcpsm_stack *st)
{
    return stack_host(st)->dev;
}

/* Flush the tx batch to the netdev. Every public entry point calls it last. */
void stack_tx_flush(struct tcpsm_stack *st);
/* Flush if a frame of the batch points into a send buffer: called before a
 * send buffer is freed or reallocated. */
static inline void stack_tx_unpin(struct tcpsm_stack *st)
{
    if (st->tx_pinned)
        stack_tx_flush(st);
}

#endif
