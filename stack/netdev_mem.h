/* In-memory link for tests: two endpoints (side 0 = A, side 1 = B) joined by
 * a pipe with a VIRTUAL clock and seeded impairments.
 *
 * Each endpoint is a struct tcpsm_netdev; its send() copies frames into
 * flight toward the other side. Frames become due at
 *     departure + delay + uniform[0, jitter] (+ reorder_delay if held back),
 * where departure follows the previous frame's serialization when a
 * bandwidth is set. Impairments come from one xorshift-style PRNG seeded by
 * memlink_new(): the same seed and the same sends give the same run.
 *
 * The link's clock is the latest time given to memlink_set_now(),
 * memlink_deliver() or memlink_run(); send() stamps frames with it. Callers
 * driving stacks by hand call memlink_set_now() before each stack call.
 *
 * Limits: at most queue_max frames in flight per direction (queued for the
 * bandwidth plus propagating); beyond that new frames are dropped (drop-tail,
 * counted in queue_drop). Frames longer than TCPSM_FRAME_MAX are dropped
 * and counted in oversize (MEMLINK_WHOLE_MAX with MEMLINK_GSO_WHOLE).
 *
 * Offloads (params.gso): MEMLINK_GSO_OFF offers none. Otherwise both
 * devices offer payload slices, checksum offload and TSO, and the link
 * gathers each frame and finishes its checksum as a NIC would; a
 * super-segment is then either cut into MSS segments in software
 * (MEMLINK_GSO_SEGMENT: each segment goes through the impairments on its
 * own, so one segment of a 64 KiB frame can be lost) or delivered whole
 * (MEMLINK_GSO_WHOLE: as veth hands a TSO frame to a GRO receiver). */
#ifndef TCPSM_NETDEV_MEM_H
#define TCPSM_NETDEV_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "tcpsm/core.h"

enum memlink_gso { MEMLINK_GSO_OFF = 0, MEMLINK_GSO_SEGMENT, MEMLINK_GSO_WHOLE };
#define MEMLINK_WHOLE_MAX (14u + 65535u)

struct memlink_params {
    uint32_t mtu;               /* IP MTU of both devices; 0 = 1500 */
    int gso;                    /* enum memlink_gso */
    uint32_t gso_max;           /* netdev gso_max (largest super-segment datagram); 0 = 65535 */
    double loss_pct;            /* 0..100: frame dropped */
    double dup_pct;             /* 0..100: frame delivered twice */
    double reorder_pct;         /* 0..100: frame held back by reorder_delay_ns */
    double corrupt_pct;         /* 0..100: one random bit flipped */
    uint64_t delay_ns;          /* fixed one-way delay */
    uint64_t jitter_ns;         /* plus uniform [0, jitter_ns] (may reorder too) */
    uint64_t reorder_delay_ns;  /* extra hold-back; 0 = 2 * (delay + jitter) + 1 ms */
    uint64_t bandwidth_bps;     /* 0 = unlimited */
    uint32_t queue_max;         /* frames in flight per direction; 0 = 100000 */
    uint32_t drop_above;        /* a path MTU black hole: IP datagrams longer than this
                                   vanish without a word (no ICMP), counted in
                                   black_holed; 0 = none (memlink_set_drop_above) */
};

/* Counters per direction: dir[0] = frames sent by A toward B, dir[1] = B toward A. */
struct memlink_stats {
    uint64_t sent, delivered, lost, duplicated, reordered, corrupted, queue_drop, oversize,
             black_holed;
    uint64_t gso_in;            /* super-segments handed to the link (before cutting) */
};

struct memlink;

/* NULL on bad parameters (a percentage outside 0..100) or no memory. */
struct memlink *memlink_new(const struct memlink_params *p, uint64_t seed);
void memlink_free(struct memlink *l);
/* The netdev of side 0 (A) or 1 (B). */
struct tcpsm_netdev *memlink_dev(struct memlink *l, int side);
void memlink_set_now(struct memlink *l, uint64_t now);
/* Moves the black hole (params.drop_above) while the link runs: 0 removes it. */
void memlink_set_drop_above(struct memlink *l, uint32_t ip_len);
/* Moves up to max frames due at side by now (earliest first) into out.
 * Their data stays valid until the next memlink_deliver() for that side or
 * memlink_free(). */
unsigned memlink_deliver(struct memlink *l, int side, uint64_t now, struct tcpsm_frame *out,
                         unsigned max);
/* Earliest due time of a frame in flight (either direction), UINT64_MAX if none. */
uint64_t memlink_next_due(const struct memlink *l);
/* Same, for frames toward side only. */
uint64_t memlink_next_due_side(const struct memlink *l, int side);
/* Frames in flight toward side. */
unsigned memlink_in_flight(const struct memlink *l, int side);
/* dir 0: A->B, 1: B->A. */
const struct memlink_stats *memlink_stats(const struct memlink *l, int dir);

/* Runs the two stacks against each other in virtual time: repeatedly takes
 * the earliest event (a frame due, or a stack deadline), sets *now to it,
 * delivers the due frames and runs the due timers, until done(arg) returns
 * true (checked before each event; done may be NULL) or the next event is
 * after until (then *now = until). a or b may be NULL (frames toward a NULL
 * side stay in flight). Stops after 50 million events as a guard against a
 * livelock. Returns true if done() said so. */
bool memlink_run(struct memlink *l, struct tcpsm_stack *a, struct tcpsm_stack *b, uint64_t *now,
                 uint64_t until, bool (*done)(void *), void *arg);

#endif
