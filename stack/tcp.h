/* Entry points of the TCP module used by the rest of the core (internal header).
 * The module's own internals live in tcp_*.h. */
#ifndef TCPSM_TCP_H
#define TCPSM_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "stack.h"

int tcp_init(struct tcpsm_stack *st);     /* 0 or -ENOMEM */
void tcp_fini(struct tcpsm_stack *st);    /* frees every TCB, sends nothing */

/* A TCP segment from IPv4 (v4-mapped addresses) or IPv6; the checksum is
 * not yet verified. */
void tcp_input(struct tcpsm_stack *st, const struct tcpsm_addr *src, const struct tcpsm_addr *dst,
               const uint8_t *seg, size_t len, uint64_t now);

/* ICMP error about a TCP segment we sent (RFC 1122 4.2.3.9, RFC 5927):
 * type/code of the ICMP message; inner_* from the quoted headers; inner_seq
 * is the quoted sequence number (host order), used to validate it. */
/* ICMPv6 errors come translated to their ICMPv4 type/code (icmp6.c); mtu
 * is the next-hop MTU of "fragmentation needed" / Packet Too Big (0 = none). */
void tcp_icmp_error(struct tcpsm_stack *st, uint8_t type, uint8_t code, uint32_t mtu,
                    const struct tcpsm_addr *inner_src, const struct tcpsm_addr *inner_dst,
                    uint16_t inner_sport, uint16_t inner_dport, uint32_t inner_seq, uint64_t now);

/* At most this many frames join one (software GRO). */
#define TCPSM_GRO_MAX 63

/* A slice of a segment's payload in another frame (software GRO). */
struct tcp_slice {
    const uint8_t *data;
    uint32_t len;
    /* check: the TCP checksum is still to verify, folded into the copy
     * into the receive buffer (tcp_input.c write_slices); hsum is the
     * partial sum of the pseudo-header and the frame's TCP header */
    bool check;
    uint32_t hsum;
};

/* Software GRO (tcp_gro.c): how many of f[1..n) continue the in-order
 * segment in f[0] of an established connection (0: none, or f[0] is not
 * such a segment); their payloads go to more[], their byte count to
 * *bytes. Pure: nothing changes until tcp_input takes them
 * (st->gro_more). */
struct tcpsm_frame;
unsigned tcp_gro_run(struct tcpsm_stack *st, const struct tcpsm_frame *f, unsigned n,
                     struct tcp_slice *more, uint32_t *bytes);

/* End of an input batch: the ACKs and wake-ups deferred while its frames
 * were processed (tcp_batch_defer) go out now. */
void tcp_input_batch_end(struct tcpsm_stack *st, uint64_t now);
/* Quick ACKs held for an application's reply (tcp_ack_hold): send those
 * still owed; returns how many. */
unsigned tcp_release_acks(struct tcpsm_stack *st, uint64_t now, uint64_t held_before);
unsigned tcp_release_output(struct tcpsm_stack *st, uint64_t now);
/* Whether the input batch being run may hold quick ACKs. */
void tcp_hold_acks(struct tcpsm_stack *st, bool on);
bool tcp_acks_held(const struct tcpsm_stack *st);
/* Wake the senders refused at the memory cap once memory has freed. */
void tcp_mem_wake_senders(struct tcpsm_stack *st);

size_t tcp_nsocks(const struct tcpsm_stack *st);

/* tcpsm_stack_abort_all without the tx flush. */
void tcp_abort_all(struct tcpsm_stack *st, uint64_t now);

/* TIMER_TCP: a TCB's timer (ctx: the stack). */
struct tcpsm_timer;
void tcp_conn_timer_fire(void *ctx, struct tcpsm_timer *t, uint64_t now);

#endif
