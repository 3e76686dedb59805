/* The runtime's clock: the only place time is read for the protocol core. */
#include <time.h>

#include "runtime.h"

uint64_t rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One reading per stack-lock hold (runtime.h: 0 outside a hold, 1 not read
 * yet). took_lock opens it, rt_unlock closes it, and every system call the
 * link makes under the lock makes it stale (a send on veth runs the peer's
 * TCP in it): so a wait never starts from a stale time, and a segment sent
 * after another one in the same hold reads the clock again. Linux keeps its
 * tcp_mstamp the same way (refreshed per input and per transmit pass, not
 * per use). */
__thread uint64_t rt_t_clock;

uint64_t rt_clock(void)
{
    uint64_t t = rt_t_clock;
    if (t > 1)
        return t;
    uint64_t now = rt_now();
    if (t)
        rt_t_clock = now;
    return now;
}
