/* The shared region: one file in /dev/shm per (network namespace,
 * interface, address), mapped MAP_SHARED at the same fixed address in every
 * process that uses that stack (fork, exec or started separately), so that
 * the pointers inside it mean the same thing everywhere.
 *
 * It holds a process-shared robust mutex (the stack lock) and a bounded
 * buddy allocator from which the core (through tcpsm_set_allocator) and the
 * runtime's shared objects take their memory. Every allocator call is made
 * with the stack lock held. Exhaustion returns NULL and is counted; an
 * invalid free is counted and ignored, never followed. */
#ifndef TCPSM_SHM_REGION_H
#define TCPSM_SHM_REGION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where the region is mapped in every process: far from the heap, the
 * libraries and the stack on x86-64 and inside ASan's high memory. */
#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer (make tsan) accepts application mappings only in its
 * application ranges: this one is in the low one (below 0x008000000000).
 * Only processes of the same build share a stack. */
#define SHM_REGION_ADDR   ((uintptr_t)0x007000000000ull)
#else
#define SHM_REGION_ADDR   ((uintptr_t)0x3c5a00000000ull)
#endif
#define SHM_REGION_MB_DEF 512u
#define SHM_REGION_MB_MIN 16u
#define SHM_REGION_MB_MAX 65536u

#define SHM_MIN_SHIFT 6u                /* smallest block: 64 bytes */
#define SHM_MAX_ORDER 18u               /* largest block: 64 B << 18 = 16 MiB */
#define SHM_JOURNAL   64u               /* allocations remembered per lock hold */

struct shm_region {
    uint64_t magic;
    uint32_t version;
    _Atomic uint32_t ready;             /* the creator finished initialising */
    uint64_t size;                      /* bytes mapped */
    uintptr_t base;                     /* == SHM_REGION_ADDR */
    pthread_mutex_t lock;               /* PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST */
    /* Set under the lock by the last process to leave, just before it
     * unlinks the name: a process that opened the file a moment earlier
     * must not attach to it. */
    uint32_t dead;
    void *root;                         /* the runtime's shared state (runtime.h) */

    /* the allocator */
    uint64_t heap_off, heap_blocks;     /* heap start (offset), size in 64-byte units */
    uint64_t meta_off;                  /* one byte per 64-byte unit (block heads) */
    void *free_head[SHM_MAX_ORDER + 1];
    uint64_t bytes_used, bytes_peak, alloc_fail, bad_free;

    /* The blocks allocated since the stack lock was last taken (offsets
     * from the region's base), for the repair after a holder that died
     * halfway (shm_reclaim_journal): a block it allocated and had not yet
     * linked anywhere is referenced by no word of the region. Cleared as
     * the lock is taken; jr_over: more than SHM_JOURNAL, the rest unknown. */
    uint64_t jr_off[SHM_JOURNAL];
    uint32_t jr_n;
    bool jr_over;
    /* Repairs after a holder died halfway (shm_repair, shm_reclaim_journal). */
    uint64_t rep_lists, rep_leaks;
};

/* The region's file name for a stack, e.g. "tcpsm-4026532296-veth0-198.18.0.10". */
void shm_region_name(char *buf, size_t len, const char *ifname, uint32_t addr);
/* Opens or creates the region at SHM_REGION_ADDR (size_mb when created).
 * *created says which. given_fd >= 0: the region's file, opened by someone
 * else (the stack's owner, share.h; left open), instead of the name.
 * Returns the mapped region, or NULL with a message in err. The stack lock
 * is NOT held on return. */
struct shm_region *shm_region_attach(const char *name, unsigned size_mb, int given_fd,
                                     bool *created, char *err, size_t errlen);
/* Removes the name (the last process leaving); the mapping stays. */
void shm_region_unlink(const char *name);

/* The allocator (stack lock held). */
void *shm_alloc(struct shm_region *r, size_t n);
void *shm_calloc(struct shm_region *r, size_t n);
void shm_free(struct shm_region *r, void *p);
/* The usable size of the block in use that starts at p, 0 if p is not the
 * start of a block in use (stack lock held). */
size_t shm_block_size(struct shm_region *r, const void *p);
/* Does [p, p + n) lie inside one block in use? */
bool shm_valid(struct shm_region *r, const void *p, size_t n);
/* The lock is taken: the journal starts empty. */
static inline void shm_journal_reset(struct shm_region *r)
{
    r->jr_n = 0;
    r->jr_over = false;
}

/* After a holder died halfway (EOWNERDEAD), stack lock held.
 * shm_audit: checks the allocator's invariants (every free list doubly
 * linked and made of free heads of its order, every head's order in
 * bounds and aligned, the blocks tile the heap, bytes_used = the used
 * blocks' bytes); returns the number of faults, the first described in why.
 * shm_repair: rebuilds the free lists, the head bytes and bytes_used from
 * the heads of the blocks in use (the primary state: a block is in use
 * once its head says so, the last step of shm_alloc): a block being split
 * or merged when the holder died goes back to the free lists. Returns the
 * number of faults it mended (0 if the allocator was consistent).
 * shm_reclaim_journal: frees each block the dead holder allocated that no
 * word of any other block in use points into (conservative: a payload
 * word that happens to match keeps it); returns how many. */
unsigned shm_audit(struct shm_region *r, char *why, size_t whylen);
unsigned shm_repair(struct shm_region *r);
unsigned shm_reclaim_journal(struct shm_region *r);

/* Calls fn for every block in use (stack lock held), in address order. */
void shm_each_used(struct shm_region *r, void (*fn)(void *ctx, const void *p, size_t n),
                   void *ctx);

#endif
