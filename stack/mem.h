/* The core's memory: every allocation of the protocol core goes through
 * here, so the runtime can place the whole stack (TCBs, buffers, queues,
 * tables) in the shared region that several processes map (design.md),
 * while unit tests keep plain malloc. A NULL result is an ordinary
 * allocation failure: callers report -ENOMEM / -ENOBUFS or count a drop. */
#ifndef TCPSM_MEM_H
#define TCPSM_MEM_H

#include <stdbool.h>
#include <stddef.h>

void *mem_alloc(size_t n);
void *mem_calloc(size_t n, size_t size);
void mem_free(void *p);
/* Like realloc, but the caller says how many bytes of p are live (the
 * allocator seam carries no size queries). */
void *mem_realloc(void *p, size_t old_n, size_t new_n);

/* Does [p, p + n) lie inside one allocated block? (The allocator's own
 * answer; true for any non-NULL p under one that cannot tell.) For the
 * repair of a stack whose last holder died halfway (tcp_repair.c). */
bool mem_valid(const void *p, size_t n);

#endif
