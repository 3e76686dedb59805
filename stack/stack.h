/* The stack object shared by the protocol modules (internal header).
 * Owned by stack.c; each module keeps its own state behind one pointer. */
#ifndef TCPSM_STACK_H
#define TCPSM_STACK_H

#include "tcpsm/core.h"
#include "timer.h"

struct neigh_table;             /* arp.c / neigh.c */
struct tcp_stack;               /* tcp_*.c */

/* Output frames are built in place in fixed slots and handed to the netdev
 * in batches (design.md). A slot holds one Ethernet frame. */
#define TCPSM_TX_BATCH   64
#define TCPSM_FRAME_MAX  2048   /* a slot; super-segments keep only their headers here and
                                   point at the payload (TCPSM_NETDEV_F_SG) */
#define TCPSM_GSO_MAX    65535  /* largest IPv4 datagram of a super-segment */

struct tcpsm_stack {
    struct tcpsm_config cfg;
    struct tcpsm_netdev *dev;
    struct tcpsm_counters cnt;
    uint32_t netmask;           /* from cfg.prefix_len, host order */
    uint16_t ip_id;             /* next IPv4 identification */
    uint64_t now;               /* time of the entry point being run (for modules without an argument) */

    struct tcpsm_timer_heap timers;
    struct neigh_table *neigh;
    struct tcp_stack *tcp;

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
    uint8_t txbuf[TCPSM_TX_BATCH][TCPSM_FRAME_MAX];
};

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
