/* IPv4 input and output (internal header). */
#ifndef TCPSM_IPV4_H
#define TCPSM_IPV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_  6
#define IPV4_HDR_LEN  20
#define ETH_HDR_LEN   14

/* Called by eth.c for an EtherType 0x0800 payload. */
void ipv4_input(struct tcpsm_stack *st, const uint8_t *pkt, size_t len, uint64_t now);

/* Output: at most one frame is being built at a time. Between begin and
 * commit, tcp output may describe payload slices and offloads in st->txp
 * (st->txp_on); the l4_len given then counts the slices too.
 * ipv4_out_begin() returns where the L4 header goes inside a tx slot, with
 * room for l4_len bytes, or NULL if l4_len exceeds the MTU (counted).
 * ipv4_out_commit() writes the IPv4 header (source = stack address, DF,
 * TTL 64) and the Ethernet header; if the next hop is not resolved yet the
 * frame is queued behind ARP (bounded, see neigh.h). */
uint8_t *ipv4_out_begin(struct tcpsm_stack *st, size_t l4_len);
void ipv4_out_commit(struct tcpsm_stack *st, uint32_t dst, uint8_t proto, size_t l4_len);
/* The same with the TOS byte and a TTL (0: 64) of the sender's choosing. */
void ipv4_out_commit_tos(struct tcpsm_stack *st, uint32_t dst, uint8_t proto, size_t l4_len,
                         uint8_t tos, uint8_t ttl);

/* True if ip is a host address of the connected subnet (not its network
 * or broadcast address, except in /31 and /32, RFC 3021). */
bool ipv4_on_link_host(const struct tcpsm_stack *st, uint32_t ip);
/* The on-link next hop for dst: dst itself in the connected subnet, else
 * the gateway; 0 when dst is not routable (tcpsm_stack_routable). */
uint32_t ipv4_route(const struct tcpsm_stack *st, uint32_t dst);

/* Largest L4 payload+header one frame can carry to dst (MTU - 20): what
 * the MSS derives from. */
uint32_t ipv4_mtu_l4(const struct tcpsm_stack *st);
/* The netdev takes TCP super-segments (TSO with SG and checksum offload). */
bool ipv4_can_gso(const struct tcpsm_stack *st);
/* Largest L4 length ipv4_out_begin accepts: ipv4_mtu_l4, or with GSO the
 * netdev's gso_max - 20 (at most 65515: the IPv4 total length is 16 bits). */
uint32_t ipv4_max_l4(const struct tcpsm_stack *st);

#endif
