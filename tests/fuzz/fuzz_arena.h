/* A snapshot arena for fuzz targets: the core's allocator (tcpsm_set_allocator)
 * placed in one mapping, so a whole stack can be saved once and restored per
 * input with a copy instead of being rebuilt.
 *
 * Allocation is a bump pointer that never reuses memory until the next
 * restore, with ASan redzones around every block and freed blocks poisoned:
 * an overflow, a use after free (no reuse: an infinite quarantine), a double
 * or invalid free are reported as with ASan's own allocator. The count of
 * live blocks is the leak check: after the stack is freed it must be zero. */
#ifndef FUZZ_ARENA_H
#define FUZZ_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct arena_snap;

/* ASan's manual poisoning (no-ops in a build without ASan). */
void arena_poison(void *p, size_t n);
void arena_unpoison(void *p, size_t n);
#define ARENA_POISON(p, n)   arena_poison((p), (n))
#define ARENA_UNPOISON(p, n) arena_unpoison((p), (n))

/* Map the arena and install it as the core's allocator (once per process). */
void arena_init(void);
/* Forget every block (the start of a fresh build). */
void arena_reset(void);
/* Blocks allocated and not freed. */
size_t arena_live(void);
/* Bytes of the arena in use (the bump pointer). */
size_t arena_used(void);
/* [p, p + len) is scratch that its owner writes before reading: the next
 * arena_save does not keep it (at most ARENA_SCRATCH ranges; arena_reset
 * forgets them). */
#define ARENA_SCRATCH 4
void arena_scratch(const void *p, size_t len);
/* Save the arena's content and its live blocks. */
struct arena_snap *arena_save(void);
/* Put the arena back as it was when s was saved. */
void arena_restore(const struct arena_snap *s);

#endif
