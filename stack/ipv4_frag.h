/* IPv4 fragment reassembly (internal header; see ipv4_frag.c). */
#ifndef TCPSM_IPV4_FRAG_H
#define TCPSM_IPV4_FRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"

/* The reassembly state (ipv4_frag.c; here for the repair's unit tests). */
#define IP_FRAG_QUEUES   64
#define IP_FRAG_MEM      (4u << 20)
#define IP_FRAG_TIMEOUT  (30ull * 1000000000ull)
#define IP_FRAG_PIECES   64             /* fragments of one datagram */
#define IP_MAXPACKET     65535

struct frag_piece {
    struct frag_piece *next;            /* by offset */
    uint16_t off, len;
    uint8_t data[];
};

struct frag_queue {
    bool used;
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto;
    uint64_t first;                     /* arrival of the first fragment */
    uint32_t total;                     /* payload length once the last fragment came, else 0 */
    uint32_t have;                      /* payload bytes held */
    unsigned npieces;
    uint8_t hdr[60];                    /* the first fragment's header (offset 0) */
    uint8_t hdrlen;
    struct frag_piece *pieces;
};

struct ipv4_reasm {
    struct frag_queue q[IP_FRAG_QUEUES];
    size_t mem;
    uint8_t out[IP_MAXPACKET + 60];     /* the datagram being delivered; last (not zeroed) */
};

int ipv4_frag_init(struct tcpsm_stack *st);      /* 0 or -1 (no memory) */
void ipv4_frag_fini(struct tcpsm_stack *st);
/* One fragment (p: its header, ihl and tot from it, checked). Returns the
 * whole datagram (header with offset 0, total length set; valid until the
 * next call) and its length once complete, else NULL. */
const uint8_t *ipv4_frag_input(struct tcpsm_stack *st, const uint8_t *p, size_t ihl, size_t tot,
                               uint64_t now, size_t *out_len);
/* Bytes held for datagrams in progress. */
size_t ipv4_frag_mem(const struct tcpsm_stack *st);
/* The delivery buffer (scratch, written before it is read) and its size:
 * a snapshot of the stack need not keep it (tests/fuzz/fuzz_tcp.c). */
const void *ipv4_frag_scratch(const struct tcpsm_stack *st, size_t *len);

/* After a lock holder died halfway (tcp_repair.c): checks each datagram's
 * pieces and the counts; repair: recounts, drops a datagram whose list is
 * not whole. Returns the faults found. */
unsigned ipv4_frag_check(struct tcpsm_stack *st, bool repair);

#endif
