/* Ethernet II framing and the tx batch slots (internal header). */
#ifndef TCPSM_ETH_H
#define TCPSM_ETH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define ETH_ALEN       6
#define ETH_TYPE_IPV4  0x0800
#define ETH_TYPE_ARP   0x0806
#define ETH_TYPE_IPV6  0x86dd
#define ETH_TYPE_VLAN  0x8100   /* 802.1Q: not supported, counted as eth_drop_proto */
#define ETH_TYPE_QINQ  0x88a8

extern const uint8_t eth_broadcast[ETH_ALEN];

static inline bool eth_is_multicast(const uint8_t *mac) { return mac[0] & 1; }

/* One received frame: counts eth_in, drops (counted) what is not for us,
 * dispatches IPv4 and ARP. The frame is read-only. */
void eth_input(struct tcpsm_stack *st, const uint8_t *frame, size_t len, uint64_t now);

/* Writes the 14-byte header at frame. */
void eth_write_hdr(uint8_t *frame, const uint8_t *dst, const uint8_t *src, uint16_t type);

/* The next free tx slot (TCPSM_FRAME_MAX bytes), flushing the batch first
 * if it is full. Nothing is sent until eth_tx_push(). */
uint8_t *eth_tx_slot(struct tcpsm_stack *st);
/* Appends a complete frame to the tx batch. frame may be the slot returned
 * by eth_tx_slot() (no copy) or any other buffer (copied). len must be at
 * most TCPSM_FRAME_MAX, plus the payload slices of st->txp when txp_on
 * (their metadata goes with the frame). */
void eth_tx_push(struct tcpsm_stack *st, const uint8_t *frame, size_t len);

#endif
