/* ICMPv6 for a host, RFC 4443 (internal header). */
#ifndef TCPSM_ICMP6_H
#define TCPSM_ICMP6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define ICMP6_DST_UNREACH   1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROB    4
#define ICMP6_ECHO_REQUEST  128
#define ICMP6_ECHO_REPLY    129
#define ICMP6_ERR_PER_SEC   100         /* errors sent per second at most (RFC 4443 2.4 f) */

/* An ICMPv6 message (msg, len) in the IPv6 packet ip6 (for its addresses
 * and hop limit), already accepted as addressed to us. Checksum checked
 * here; ND types go to nd.c, errors quoting our TCP segments to TCP. */
void icmp6_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *msg, size_t len,
                 uint64_t now);

/* An error about the packet pkt (pkt_len bytes from its IPv6 header):
 * type, code and the 32-bit parameter (pointer or MTU). Not sent in the
 * cases RFC 4443 2.4 (e) forbids (about an ICMPv6 error, from an
 * unspecified/multicast source, to a multicast destination unless
 * mcast_ok), and at most ICMP6_ERR_PER_SEC per second (icmp6_err_out). */
void icmp6_send_error(struct tcpsm_stack *st, uint8_t type, uint8_t code, uint32_t param,
                      const uint8_t *pkt, size_t pkt_len, bool mcast_ok);

/* Checksum of an ICMPv6 message being sent (RFC 4443 2.3). */
void icmp6_set_csum(uint8_t *msg, size_t len, const uint8_t *src, const uint8_t *dst);

#endif
