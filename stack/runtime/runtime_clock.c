/* The runtime's clock: the only place time is read for the protocol core. */
#include <time.h>

#include "runtime.h"

uint64_t rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
