/* Deadline timers for the protocol core: a binary min-heap keyed on
 * monotonic nanoseconds, O(log n) set/cancel, O(1) next deadline.
 * A timer is embedded in its owner (TCB, neighbour entry) and found back
 * with container_of-style arithmetic in the callback. */
#ifndef TCPSM_TIMER_H
#define TCPSM_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcpsm_timer;
typedef void (*tcpsm_timer_fn)(void *ctx, struct tcpsm_timer *t, uint64_t now);

struct tcpsm_timer {
    uint64_t deadline;
    uint32_t idx;               /* position in the heap, UINT32_MAX when not armed */
    tcpsm_timer_fn fn;
};

struct tcpsm_timer_heap {
    struct tcpsm_timer **v;
    uint32_t n, cap;
};

#define TCPSM_TIMER_INIT(f) { .deadline = 0, .idx = UINT32_MAX, .fn = (f) }

static inline void tcpsm_timer_init(struct tcpsm_timer *t, tcpsm_timer_fn fn)
{
    t->deadline = 0;
    t->idx = UINT32_MAX;
    t->fn = fn;
}
static inline bool tcpsm_timer_armed(const struct tcpsm_timer *t) { return t->idx != UINT32_MAX; }

void timer_heap_init(struct tcpsm_timer_heap *h);
void timer_heap_free(struct tcpsm_timer_heap *h);
/* Arm (or re-arm) t for deadline. Returns -ENOMEM if the heap cannot grow. */
int timer_set(struct tcpsm_timer_heap *h, struct tcpsm_timer *t, uint64_t deadline);
void timer_cancel(struct tcpsm_timer_heap *h, struct tcpsm_timer *t);
/* Earliest deadline, UINT64_MAX if empty. */
uint64_t timer_next(const struct tcpsm_timer_heap *h);
/* Pop and call every timer whose deadline <= now (a callback may re-arm). */
void timer_run(struct tcpsm_timer_heap *h, void *ctx, uint64_t now);

#endif
