/* IPv6 neighbour discovery for a host, RFC 4861, and duplicate address
 * detection, RFC 4862 (internal header). The neighbour cache itself is
 * neigh.c, shared with ARP.
 *
 * The stack's two addresses (cfg.addr6 and the link-local one) are usable
 * at once as optimistic addresses (RFC 4429; but our solicitations carry
 * the source link-layer option even then, see nd_send_ns) while one DAD
 * probe is out;
 * after ND_RETRANS_NS without a conflict they are preferred. A conflict (a
 * DAD probe or advertisement for a tentative address) makes the address
 * DUPLICATE: it is no longer used or answered for (nd_dad_dup).
 * Without TCPSM_GW's IPv6 router the stack sends up to ND_MAX_RS router
 * solicitations and takes the default router from advertisements
 * (one router; its lifetime honoured); an RA's MTU option lowers the IPv6
 * MTU. Prefix information is not used (the address is configured). */
#ifndef TCPSM_ND_H
#define TCPSM_ND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define ND_NS          135
#define ND_NA          136
#define ND_RS          133
#define ND_RA          134
#define ND_REDIRECT    137
#define ND_RETRANS_NS  1000000000ull    /* RetransTimer, RFC 4861 10 */
#define ND_RS_INTERVAL 4000000000ull    /* RTR_SOLICITATION_INTERVAL */
#define ND_MAX_RS      3                /* MAX_RTR_SOLICITATIONS */

#define ND_NA_ROUTER    0x80
#define ND_NA_SOLICITED 0x40
#define ND_NA_OVERRIDE  0x20

/* Send the first DAD probes and router solicitation; 0 or -ENOMEM. */
int nd_start(struct tcpsm_stack *st, uint64_t now);
/* An ND message (types 133-137), checksum already verified. */
void nd_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *msg, size_t len,
              uint64_t now);
/* Neighbour solicitation for target: to its solicited-node group, or
 * unicast to mac (reachability probe). */
void nd_send_ns(struct tcpsm_stack *st, const uint8_t *target, const uint8_t *mac);
/* A multicast group the stack listens to: all-nodes, or the
 * solicited-node group of one of its addresses. */
bool nd_is_our_group(const struct tcpsm_stack *st, const uint8_t *group);

/* TIMER_ND: the DAD and router solicitation rounds (ctx: the stack). */
struct tcpsm_timer;
void nd_timer_fire(void *ctx, struct tcpsm_timer *tm, uint64_t now);

#endif
