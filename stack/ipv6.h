/* IPv6 input and output for a host, RFC 8200 (internal header). */
#ifndef TCPSM_IPV6_H
#define TCPSM_IPV6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define IPV6_HDR_LEN     40
#define IPV6_MIN_MTU     1280   /* RFC 8200 5 */
#define IPV6_HLIM_DEF    64
#define IPPROTO_ICMPV6_  58
#define IPV6_MAX_EXTHDRS 8      /* extension headers walked per packet; more: dropped (counted) */

/* Called by eth.c for an EtherType 0x86DD payload; l2_mcast: the frame's
 * destination MAC was a multicast one. */
void ipv6_input(struct tcpsm_stack *st, const uint8_t *pkt, size_t len, bool l2_mcast,
                uint64_t now);

/* Output, one frame being built at a time as for IPv4:
 * ipv6_out_begin() returns where the L4 header goes (room for l4_len), or
 * NULL if l4_len exceeds the IPv6 MTU (counted tx_drop). ipv6_out_commit()
 * writes the IPv6 and Ethernet headers and sends it: multicast straight to
 * its mapped MAC (RFC 2464 7), unicast through the neighbour cache.
 * src NULL: the stack's address for dst (link-local for link-local and
 * multicast destinations, else the global one). hlim 0: 64. */
uint8_t *ipv6_out_begin(struct tcpsm_stack *st, size_t l4_len);
/* The same up to ipv6_max_l4, for TCP only: beyond the MTU the frame holds
 * the headers and the payload rides in st->txp's slices (a super-segment),
 * never copied into the slot. */
uint8_t *ipv6_out_begin_gso(struct tcpsm_stack *st, size_t l4_len);
void ipv6_out_commit(struct tcpsm_stack *st, const uint8_t *src, const uint8_t *dst, uint8_t proto,
                     size_t l4_len, uint8_t tclass, uint8_t hlim);

/* The same, to a known Ethernet address (ND probes, RFC 4861 7.3.3). */
void ipv6_out_commit_mac(struct tcpsm_stack *st, const uint8_t *src, const uint8_t *dst,
                         uint8_t proto, size_t l4_len, uint8_t hlim, const uint8_t *mac);

/* The on-link next hop for dst (dst itself on-link, else the default
 * router); false when dst is not routable. nexthop may be NULL. */
bool ipv6_route(const struct tcpsm_stack *st, const uint8_t *dst, uint8_t *nexthop);
/* The source the stack uses toward dst (NULL: IPv6 off or address duplicate). */
const uint8_t *ipv6_src_for(const struct tcpsm_stack *st, const uint8_t *dst);
/* One of the stack's unicast addresses, in use (not duplicate). */
bool ipv6_is_ours(const struct tcpsm_stack *st, const uint8_t *a);
/* Largest L4 payload+header one frame carries (IPv6 MTU - 40). */
uint32_t ipv6_mtu_l4(const struct tcpsm_stack *st);
/* The netdev takes IPv6 TCP super-segments (TSO6 with SG and checksum offload). */
bool ipv6_can_gso(const struct tcpsm_stack *st);
/* Largest L4 length ipv6_out_begin accepts: ipv6_mtu_l4, or with GSO the
 * netdev's gso_max - 40 (at most 65495). */
uint32_t ipv6_max_l4(const struct tcpsm_stack *st);
/* Derive the link-local address and start DAD / router solicitation. */
int ipv6_init(struct tcpsm_stack *st, uint64_t now);
void ipv6_fini(struct tcpsm_stack *st);

#endif
