/* Deadline timers for the protocol core: a binary min-heap keyed on
 * monotonic nanoseconds, O(log n) set/cancel, O(1) next deadline.
 * A timer is embedded in its owner (TCB, neighbour entry) and found back
 * with container_of-style arithmetic in the callback.
 *
 * A timer names its callback by kind (an index), not by address: the stack
 * may live in memory that several programs map, each with the library's
 * code elsewhere, so the kind is resolved through the table of the process
 * running the timers (stack.c's timer_fns). */
#ifndef TCPSM_TIMER_H
#define TCPSM_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcpsm_timer;
typedef void (*tcpsm_timer_fn)(void *ctx, struct tcpsm_timer *t, uint64_t now);

/* The callbacks, by kind (stack.c's timer_fns[] maps each to its function). */
enum tcpsm_timer_kind {
    TIMER_NONE = 0,
    TIMER_TCP,                  /* a TCB's timer (tcp_conn.c) */
    TIMER_NEIGH,                /* a neighbour entry's resolution (neigh.c) */
    TIMER_ND,                   /* DAD and router solicitation (nd.c) */
    TIMER_IP6_FRAG,             /* IPv6 reassembly expiry (ipv6_frag.c) */
    TIMER_NKINDS
};

struct tcpsm_timer {
    uint64_t deadline;
    uint32_t idx;               /* position in the heap, UINT32_MAX when not armed */
    uint8_t kind;               /* enum tcpsm_timer_kind */
};

struct tcpsm_timer_heap {
    struct tcpsm_timer **v;
    uint32_t n, cap;
};

static inline void tcpsm_timer_init(struct tcpsm_timer *t, enum tcpsm_timer_kind kind)
{
    t->deadline = 0;
    t->idx = UINT32_MAX;
    t->kind = (uint8_t)kind;
}
static inline bool tcpsm_timer_armed(const struct tcpsm_timer *t) { return t->idx != UINT32_MAX; }

void timer_heap_init(struct tcpsm_timer_heap *h);
void timer_heap_free(struct tcpsm_timer_heap *h);
/* Arm (or re-arm) t for deadline. Returns -ENOMEM if the heap cannot grow. */
int timer_set(struct tcpsm_timer_heap *h, struct tcpsm_timer *t, uint64_t deadline);
void timer_cancel(struct tcpsm_timer_heap *h, struct tcpsm_timer *t);
/* Earliest deadline, UINT64_MAX if empty. */
uint64_t timer_next(const struct tcpsm_timer_heap *h);
/* Pop and call every timer whose deadline <= now (a callback may re-arm):
 * fns[kind] for each; a kind without a function is dropped. */
void timer_run(struct tcpsm_timer_heap *h, const tcpsm_timer_fn fns[TIMER_NKINDS], void *ctx,
               uint64_t now);

/* Repair after a holder of the stack died halfway (tcp_repair.c): the
 * number of faults (slot/idx mismatch, heap order, bad pointer); the repair
 * keeps each valid timer that keep() accepts once and re-heapifies. Timers
 * dropped have idx left as it was: their owners re-arm them. */
unsigned timer_heap_audit(const struct tcpsm_timer_heap *h);
unsigned timer_heap_repair(struct tcpsm_timer_heap *h,
                           bool (*keep)(void *ctx, const struct tcpsm_timer *t), void *ctx);

#endif
