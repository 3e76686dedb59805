/* The allocator seam (mem.h, tcpsm_set_allocator in core.h). */
#include "mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcpsm/core.h"

static void *std_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void std_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const struct tcpsm_allocator std_allocator = { .alloc = std_alloc, .free = std_free };
static struct tcpsm_allocator cur = { .alloc = std_alloc, .free = std_free };

void tcpsm_set_allocator(const struct tcpsm_allocator *a)
{
    cur = a ? *a : std_allocator;
}

void *mem_alloc(size_t n)
{
    return cur.alloc(cur.ctx, n ? n : 1);
}

void *mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_alloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void mem_free(void *p)
{
    if (p)
        cur.free(cur.ctx, p);
}

bool mem_valid(const void *p, size_t n)
{
    if (!p)
        return false;
    return cur.valid ? cur.valid(cur.ctx, p, n) : true;
}

void *mem_realloc(void *p, size_t old_n, size_t new_n)
{
    void *q = mem_alloc(new_n);
    if (!q)
        return NULL;
    if (p) {
        memcpy(q, p, old_n < new_n ? old_n : new_n);
        mem_free(p);
    }
    return q;
}
