/* ARP for IPv4 over Ethernet, RFC 826 (internal header). */
#ifndef TCPSM_ARP_H
#define TCPSM_ARP_H

#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define ARP_LEN      28   /* Ethernet/IPv4 ARP packet */
#define ARP_REQUEST  1
#define ARP_REPLY    2

/* An ARP packet (after the Ethernet header). Malformed or foreign-protocol
 * packets count arp_drop_bad. */
void arp_input(struct tcpsm_stack *st, const uint8_t *pkt, size_t len, uint64_t now);

/* Broadcast a request for ip (arp_req_out). */
void arp_send_request(struct tcpsm_stack *st, uint32_t ip);

#endif
