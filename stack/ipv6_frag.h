/* IPv6 fragment reassembly, RFC 8200 4.5 (internal header).
 *
 * Limits: at most IP6_FRAG_MAX datagrams in reassembly at once (a fragment
 * of a new datagram beyond that is dropped, ip6_drop_frag); a datagram is
 * at most 65535 bytes of fragmentable part; IP6_FRAG_TIMEOUT_NS after its
 * first fragment arrived an incomplete datagram is dropped (ip6_drop_frag),
 * with a Time Exceeded (code 1) to its source if its first fragment came.
 * Overlapping fragments discard the whole datagram (RFC 5722); an exact
 * repeat of data already received is dropped alone. */
#ifndef TCPSM_IPV6_FRAG_H
#define TCPSM_IPV6_FRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

#define IP6_FRAG_MAX        8
#define IP6_FRAG_TIMEOUT_NS (60ull * 1000000000ull)   /* RFC 8200 4.5 */

/* The fragment whose Fragment header is at frag_off of pkt (tot bytes);
 * nh_at: offset of the Next Header field that names the Fragment header.
 * When it completes a datagram, the reassembled packet goes back to
 * ipv6_input. */
void ip6_frag_input(struct tcpsm_stack *st, const uint8_t *pkt, size_t tot, size_t nh_at,
                    size_t frag_off, uint64_t now);
void ip6_frag_fini(struct tcpsm_stack *st);

/* TIMER_IP6_FRAG: reassemblies that expired (ctx: the stack). */
struct tcpsm_timer;
void ip6_frag_timer_fire(void *ctx, struct tcpsm_timer *tm, uint64_t now);

/* After a lock holder died halfway (tcp_repair.c): checks each entry's
 * buffers and the table's timer; repair: forgets an entry whose buffers are
 * gone, sets the timer again. Returns the faults found. */
unsigned ip6_frag_check(struct tcpsm_stack *st, bool repair);

#endif
