/* ICMP for a host, RFC 792 and RFC 1122 3.2.2 (internal header). */
#ifndef TCPSM_ICMP_H
#define TCPSM_ICMP_H

#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define ICMP_ECHO_REPLY    0
#define ICMP_DEST_UNREACH  3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_ECHO          8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12

/* An ICMP message from src (host order) addressed to us. Echo requests are
 * answered; errors quoting a TCP segment we sent go to tcp_icmp_error(). */
void icmp_input(struct tcpsm_stack *st, uint32_t src, const uint8_t *msg, size_t len, uint64_t now);

#endif
