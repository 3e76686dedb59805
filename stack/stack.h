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
#define TCPSM_FRAME_MAX  2048   /* raised when TSO arrives; nothing else assumes 1514 */

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
    uint8_t txbuf[TCPSM_TX_BATCH][TCPSM_FRAME_MAX];
};

/* Flush the tx batch to the netdev. Every public entry point calls it last. */
void stack_tx_flush(struct tcpsm_stack *st);

#endif
