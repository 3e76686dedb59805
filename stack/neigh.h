/* Neighbour cache: IPv4 or IPv6 next hop -> Ethernet address (internal
 * header). IPv4 entries are resolved by ARP, IPv6 ones by neighbour
 * solicitations (RFC 4861 7.2); both are keyed by struct tcpsm_addr.
 *
 * States (RFC 1122 2.3.2.1, RFC 4861 7.3.2, Linux-like):
 *   INCOMPLETE  an ARP request / multicast NS is out; frames to the neighbour wait in its
 *               queue. Requests are repeated every NEIGH_RETRY_NS, at most
 *               NEIGH_TRIES in all; then the entry and its queue are dropped
 *               (each frame counted in neigh_queue_drop). TCP retransmits.
 *   REACHABLE   confirmed by ARP within NEIGH_REACHABLE_NS; used as is.
 *   PROBE       used after NEIGH_REACHABLE_NS without a new confirmation
 *               (or after an unsolicited NA/NS made it STALE, RFC 4861
 *               7.3.3; STALE goes to PROBE on first use, without DELAY):
 *               frames still go to the known address while ARP requests /
 *               unicast NS (neighbour unreachability detection) re-resolve
 *               it (same retry rule); no answer removes the entry.
 *
 * Limits:
 *   - cfg.neigh_max entries. A new entry evicts the least recently used
 *     entry that is not INCOMPLETE; if all are INCOMPLETE the frame (or the
 *     ARP learning) is dropped and neigh_full counted.
 *   - per INCOMPLETE neighbour at most NEIGH_QUEUE_FRAMES frames and
 *     NEIGH_QUEUE_BYTES bytes wait; at the limit the OLDEST frames are
 *     dropped (neigh_queue_drop) to make room for the new one.
 */
#ifndef TCPSM_NEIGH_H
#define TCPSM_NEIGH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eth.h"
#include "stack.h"

#define NEIGH_DEFAULT_MAX   256
#define NEIGH_RETRY_NS      1000000000ull    /* 1 s between ARP requests */
#define NEIGH_TRIES         3
#define NEIGH_REACHABLE_NS  30000000000ull   /* 30 s */
/* A server's first burst of SYN-ACKs to one client address waits here
 * (256 connections at once: 256 SYN-ACKs); with 16, all but the last 16
 * waited a 1 s retransmission. Linux queues 212,992 bytes of truesize. */
#define NEIGH_QUEUE_FRAMES  256
#define NEIGH_QUEUE_BYTES   65536

enum neigh_state { NEIGH_NONE = 0, NEIGH_INCOMPLETE, NEIGH_REACHABLE, NEIGH_PROBE };

/* The table (neigh.c; here for the repair's unit tests): a fixed array of
 * entries, hash chains and a free list through `next`. */
struct neigh_frame {
    struct neigh_frame *next;           /* the queue, oldest first */
    uint32_t len;
    uint8_t data[];
};

struct neigh {
    struct tcpsm_timer timer;           /* ARP retry */
    struct tcpsm_addr ip;
    uint8_t mac[ETH_ALEN];
    uint8_t state;                      /* enum neigh_state */
    bool stale;                         /* unconfirmed: probe on next use */
    uint8_t tries;                      /* requests sent in this round */
    uint64_t confirmed, used;
    int32_t next;                       /* hash chain or free list */
    struct neigh_frame *qhead, *qtail;  /* frames waiting while INCOMPLETE */
    uint16_t qn;
    uint32_t qbytes;
};

struct neigh_table {
    uint32_t max, nbuckets, count;
    int32_t free;
    int32_t *bucket;
    struct neigh e[];
};

/* 0 or -ENOMEM. max >= 1. */
int neigh_init(struct tcpsm_stack *st, uint32_t max);
/* Frees every entry and queued frame; sends nothing. */
void neigh_fini(struct tcpsm_stack *st);

/* Send a complete Ethernet frame (source MAC and EtherType written) to the
 * on-link next hop ip: fills in the destination MAC and pushes it to the tx
 * batch, or queues a copy while ARP resolves ip. frame may be the current
 * tx slot (see eth_tx_push). */
void neigh_output(struct tcpsm_stack *st, uint32_t ip, uint8_t *frame, size_t len, uint64_t now);

/* ARP said ip is at mac (RFC 826 merge step): updates an existing entry
 * (and sends its queue). Returns true if an entry existed. */
bool neigh_update(struct tcpsm_stack *st, uint32_t ip, const uint8_t *mac, uint64_t now);
/* Like neigh_update, but creates the entry when absent (RFC 826: the
 * sender of a packet addressed to us). */
void neigh_learn(struct tcpsm_stack *st, uint32_t ip, const uint8_t *mac, uint64_t now);

/* The same for any family (IPv6 entries are resolved by nd.c). stale:
 * learnt without confirmation (RFC 4861 7.2.3/7.2.5 STALE). */
void neigh_output_addr(struct tcpsm_stack *st, const struct tcpsm_addr *ip, uint8_t *frame,
                       size_t len, uint64_t now);
bool neigh_update_addr(struct tcpsm_stack *st, const struct tcpsm_addr *ip, const uint8_t *mac,
                       bool stale, uint64_t now);
void neigh_learn_addr(struct tcpsm_stack *st, const struct tcpsm_addr *ip, const uint8_t *mac,
                      bool stale, uint64_t now);
enum neigh_state neigh_lookup_addr(const struct tcpsm_stack *st, const struct tcpsm_addr *ip,
                                   uint8_t *mac);

/* Introspection for tests: state of ip and, when known, its MAC (mac may be NULL). */
enum neigh_state neigh_lookup(const struct tcpsm_stack *st, uint32_t ip, uint8_t *mac);
/* Frames waiting for ip. */
unsigned neigh_queued(const struct tcpsm_stack *st, uint32_t ip);
/* Entries in use. */
unsigned neigh_count(const struct tcpsm_stack *st);

/* TIMER_NEIGH: an entry's resolution retry or expiry (ctx: the stack). */
struct tcpsm_timer;
void neigh_timer_fire(void *ctx, struct tcpsm_timer *tm, uint64_t now);

/* After a lock holder died halfway (tcp_repair.c): checks the table (chains,
 * free list, count, timers, waiting queues) against the entries' states;
 * repair: rebuilds it from them. Returns the faults found. */
unsigned neigh_check(struct tcpsm_stack *st, bool repair);

#endif
