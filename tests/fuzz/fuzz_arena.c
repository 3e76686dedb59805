/* The snapshot arena (fuzz_arena.h). */
#include "fuzz_arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tcpsm/core.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#endif

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#define NOASAN __attribute__((no_sanitize("address")))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define NOASAN
#endif

#define ARENA_SIZE ((size_t)512 << 20)  /* virtual; pages are touched as used */
#define ALIGN      16u
#define LEFT       32u                  /* left redzone, the header in its last 16 bytes */
#define RIGHT      16u                  /* right redzone past the rounded size */
#define LIVE       0x4c495645u
#define FREED      0x46524545u

struct hdr {                            /* just below each block */
    uint64_t size;
    uint32_t magic;                     /* LIVE or FREED */
    uint32_t pad;
};

struct arena_snap {
    size_t top, live;
    size_t ncopy;
    size_t copy[2 * (ARENA_SCRATCH + 1)];   /* offset, length of what is restored */
    size_t nblk;
    size_t *blk;                        /* offset, size of each live block */
    uint8_t *mem;                       /* arena[0, top) */
};

static uint8_t *arena;
static size_t top, hwm, live;
static size_t nscratch, scratch[2 * ARENA_SCRATCH];    /* offset, length */

static size_t round_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

static void fail(const char *what, const void *p)
{
    fprintf(stderr, "fuzz_arena: %s (%p)\n", what, p);
    abort();
}

NOASAN static void *arena_alloc(void *ctx, size_t n)
{
    (void)ctx;
    size_t off = top + LEFT, end = off + round_up(n) + RIGHT;
    if (n > ARENA_SIZE || end > ARENA_SIZE)
        return NULL;                    /* out of memory: the core handles it */
    struct hdr *h = (struct hdr *)(arena + off - sizeof(struct hdr));
    h->size = n;
    h->magic = LIVE;
    if (end > hwm) {                    /* first use of these bytes: redzones */
        POISON(arena + hwm, end - hwm);
        hwm = end;
    }
    top = end;
    live++;
    UNPOISON(arena + off, n);
    return arena + off;
}

NOASAN static void arena_free(void *ctx, void *p)
{
    (void)ctx;
    uint8_t *b = p;
    if (b < arena + LEFT || b >= arena + top || (size_t)(b - arena) % ALIGN)
        fail("free of a pointer the arena did not give", p);
    struct hdr *h = (struct hdr *)(b - sizeof(struct hdr));
    if (h->magic == FREED)
        fail("double free", p);
    if (h->magic != LIVE)
        fail("free of a pointer the arena did not give", p);
    h->magic = FREED;
    POISON(b, round_up(h->size));
    live--;
}

void arena_init(void)
{
    if (arena)
        return;
    void *m = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        fail("mmap", NULL);
    arena = m;
    static const struct tcpsm_allocator a = { .alloc = arena_alloc, .free = arena_free };
    tcpsm_set_allocator(&a);
}

void arena_reset(void)
{
    POISON(arena, hwm);
    top = 0;
    live = 0;
    nscratch = 0;
}

void arena_scratch(const void *p, size_t len)
{
    const uint8_t *b = p;
    if (nscratch == ARENA_SCRATCH || b < arena || b + len > arena + top)
        fail("bad scratch range", p);
    /* kept sorted by offset; ranges do not overlap (distinct blocks) */
    size_t i = nscratch++;
    while (i > 0 && scratch[2 * (i - 1)] > (size_t)(b - arena)) {
        scratch[2 * i] = scratch[2 * (i - 1)];
        scratch[2 * i + 1] = scratch[2 * (i - 1) + 1];
        i--;
    }
    scratch[2 * i] = (size_t)(b - arena);
    scratch[2 * i + 1] = len;
}

void arena_poison(void *p, size_t n) { POISON(p, n); }
void arena_unpoison(void *p, size_t n) { UNPOISON(p, n); }

size_t arena_live(void) { return live; }
size_t arena_used(void) { return top; }

NOASAN struct arena_snap *arena_save(void)
{
    struct arena_snap *s = calloc(1, sizeof(*s));
    if (!s)
        fail("out of memory", NULL);
    s->top = top;
    s->live = live;
    size_t at = 0;
    for (size_t i = 0; i < nscratch; i++) {
        if (scratch[2 * i] > at) {
            s->copy[2 * s->ncopy] = at;
            s->copy[2 * s->ncopy + 1] = scratch[2 * i] - at;
            s->ncopy++;
        }
        at = scratch[2 * i] + scratch[2 * i + 1];
    }
    if (top > at) {
        s->copy[2 * s->ncopy] = at;
        s->copy[2 * s->ncopy + 1] = top - at;
        s->ncopy++;
    }
    s->blk = malloc((live ? live : 1) * 2 * sizeof(size_t));
    s->mem = malloc(top ? top : 1);
    if (!s->blk || !s->mem)
        fail("out of memory", NULL);
    for (size_t b = 0; b < top;) {
        size_t off = b + LEFT;
        const struct hdr *h = (const struct hdr *)(arena + off - sizeof(struct hdr));
        if (h->magic == LIVE) {
            s->blk[2 * s->nblk] = off;
            s->blk[2 * s->nblk + 1] = h->size;
            s->nblk++;
        }
        b = off + round_up(h->size) + RIGHT;
    }
    if (s->nblk != live)
        fail("live blocks miscounted", NULL);
    UNPOISON(arena, top);
    memcpy(s->mem, arena, top);
    POISON(arena, top);
    for (size_t i = 0; i < s->nblk; i++)
        UNPOISON(arena + s->blk[2 * i], s->blk[2 * i + 1]);
    return s;
}

void arena_restore(const struct arena_snap *s)
{
    size_t end = top > s->top ? top : s->top;
    UNPOISON(arena, s->top);
    for (size_t i = 0; i < s->ncopy; i++)
        memcpy(arena + s->copy[2 * i], s->mem + s->copy[2 * i], s->copy[2 * i + 1]);
    POISON(arena, end);
    for (size_t i = 0; i < s->nblk; i++)
        UNPOISON(arena + s->blk[2 * i], s->blk[2 * i + 1]);
    top = s->top;
    live = s->live;
}
