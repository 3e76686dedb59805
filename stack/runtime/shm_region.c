/* The shared region: file, fixed mapping, robust lock, buddy allocator
 * (see shm_region.h). */
#include "shm_region.h"

#include "fault_note.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC   0x6d73706374ull     /* "tcpsm" */
#define SHM_VERSION 2u          /* 2: the allocation journal */
#define SHM_DIR     "/dev/shm/"

#define META_FREE 0x40u
#define META_USED 0x80u
#define META_ORDER(m) ((m) & 0x3fu)

struct free_blk {
    struct free_blk *next, *prev;
};

void shm_region_name(char *buf, size_t len, const char *ifname, uint32_t addr)
{
    /* The network namespace's identity: /dev/shm is shared by every
     * namespace of the machine, and the same interface name and address
     * may be in use in several of them at once. */
    struct stat ns;
    unsigned long long nsid = stat("/proc/self/ns/net", &ns) == 0 ? (unsigned long long)ns.st_ino : 0;
    snprintf(buf, len, "tcpsm-%llu-%s-%u.%u.%u.%u", nsid, ifname, addr >> 24, (addr >> 16) & 255,
             (addr >> 8) & 255, addr & 255);
}

static uint8_t *meta(struct shm_region *r)
{
    return (uint8_t *)r + r->meta_off;
}

static uint8_t *heap(struct shm_region *r)
{
    return (uint8_t *)r + r->heap_off;
}

static void push(struct shm_region *r, uint64_t unit, unsigned order)
{
    struct free_blk *b = (struct free_blk *)(heap(r) + (unit << SHM_MIN_SHIFT));
    b->prev = NULL;
    b->next = r->free_head[order];
    if (b->next)
        b->next->prev = b;
    r->free_head[order] = b;
    meta(r)[unit] = (uint8_t)(META_FREE | order);
}

static void unlink_blk(struct shm_region *r, struct free_blk *b, unsigned order)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        r->free_head[order] = b->next;
    if (b->next)
        b->next->prev = b->prev;
}

static void init_heap(struct shm_region *r)
{
    uint64_t hdr = (sizeof(*r) + 4095) & ~4095ull;
    uint64_t avail = r->size - hdr;
    /* units + meta bytes: each 64-byte unit needs one byte of metadata */
    uint64_t units = avail / ((1u << SHM_MIN_SHIFT) + 1);
    r->meta_off = hdr;
    r->heap_off = (hdr + units + 4095) & ~4095ull;
    units = (r->size - r->heap_off) >> SHM_MIN_SHIFT;
    r->heap_blocks = units;
    memset(meta(r), 0, units);
    /* Carve the heap into the largest aligned blocks that fit. */
    uint64_t u = 0;
    while (u < units) {
        unsigned o = SHM_MAX_ORDER;
        while (o > 0 && ((u & ((1ull << o) - 1)) != 0 || u + (1ull << o) > units))
            o--;
        push(r, u, o);
        u += 1ull << o;
    }
}

void *shm_alloc(struct shm_region *r, size_t n)
{
    unsigned order = 0;
    while (order <= SHM_MAX_ORDER && ((size_t)1 << (order + SHM_MIN_SHIFT)) < n)
        order++;
    unsigned o = order;
    while (o <= SHM_MAX_ORDER && !r->free_head[o])
        o++;
    if (o > SHM_MAX_ORDER) {
        r->alloc_fail++;
        return NULL;
    }
    struct free_blk *b = r->free_head[o];
    /* Journalled before anything changes: a holder that dies from here on
     * leaves either a free block (repaired back into the lists) or one in
     * use that the journal names (shm_reclaim_journal). */
    if (r->jr_n < SHM_JOURNAL)
        r->jr_off[r->jr_n++] = (uint64_t)((uint8_t *)b - (uint8_t *)r);
    else
        r->jr_over = true;
    unlink_blk(r, b, o);
    uint64_t unit = (uint64_t)((uint8_t *)b - heap(r)) >> SHM_MIN_SHIFT;
    while (o > order) {         /* split: the upper halves go back */
        o--;
        push(r, unit + (1ull << o), o);
    }
    meta(r)[unit] = (uint8_t)(META_USED | order);
    r->bytes_used += (uint64_t)1 << (order + SHM_MIN_SHIFT);
    if (r->bytes_used > r->bytes_peak)
        r->bytes_peak = r->bytes_used;
    return b;
}

void *shm_calloc(struct shm_region *r, size_t n)
{
    void *p = shm_alloc(r, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void shm_free(struct shm_region *r, void *p)
{
    if (!p)
        return;
    uint8_t *q = p;
    if (q < heap(r) || q >= heap(r) + (r->heap_blocks << SHM_MIN_SHIFT) ||
        ((uintptr_t)(q - heap(r)) & ((1u << SHM_MIN_SHIFT) - 1))) {
        r->bad_free++;
        return;
    }
    uint64_t unit = (uint64_t)(q - heap(r)) >> SHM_MIN_SHIFT;
    uint8_t m = meta(r)[unit];
    if (!(m & META_USED)) {
        r->bad_free++;
        return;
    }
    unsigned o = META_ORDER(m);
    r->bytes_used -= (uint64_t)1 << (o + SHM_MIN_SHIFT);
    meta(r)[unit] = 0;
    while (o < SHM_MAX_ORDER) { /* merge with a free buddy of the same order */
        uint64_t buddy = unit ^ (1ull << o);
        if (buddy + (1ull << o) > r->heap_blocks || meta(r)[buddy] != (META_FREE | o))
            break;
        unlink_blk(r, (struct free_blk *)(heap(r) + (buddy << SHM_MIN_SHIFT)), o);
        meta(r)[buddy] = 0;
        unit = unit < buddy ? unit : buddy;
        o++;
    }
    push(r, unit, o);
}

size_t shm_block_size(struct shm_region *r, const void *p)
{
    const uint8_t *q = p;
    if (q < heap(r) || q >= heap(r) + (r->heap_blocks << SHM_MIN_SHIFT) ||
        ((uintptr_t)(q - heap(r)) & ((1u << SHM_MIN_SHIFT) - 1)))
        return 0;
    uint8_t m = meta(r)[(uint64_t)(q - heap(r)) >> SHM_MIN_SHIFT];
    return (m & META_USED) ? (size_t)1 << (META_ORDER(m) + SHM_MIN_SHIFT) : 0;
}

bool shm_valid(struct shm_region *r, const void *p, size_t n)
{
    const uint8_t *q = p;
    if (q < heap(r) || q >= heap(r) + (r->heap_blocks << SHM_MIN_SHIFT))
        return false;
    uint64_t u = (uint64_t)(q - heap(r)) >> SHM_MIN_SHIFT, k = u;
    /* the head of the block holding q: the nearest head byte at or below */
    while (meta(r)[k] == 0 && k > 0 && u - k < (1ull << SHM_MAX_ORDER))
        k--;
    uint8_t m = meta(r)[k];
    if (!(m & META_USED) || (m & META_FREE))
        return false;
    const uint8_t *end = heap(r) + ((k + (1ull << META_ORDER(m))) << SHM_MIN_SHIFT);
    return q < end && n <= (size_t)(end - q);
}

/* ---------------------------------------------------------------- repair */

unsigned shm_audit(struct shm_region *r, char *why, size_t whylen)
{
    struct fault_note f = { .why = why, .whylen = whylen };
    if (why && whylen)
        why[0] = 0;
    uint64_t units = r->heap_blocks, listed[SHM_MAX_ORDER + 1] = { 0 };
    for (unsigned o = 0; o <= SHM_MAX_ORDER; o++) {
        const struct free_blk *prev = NULL;
        for (const struct free_blk *b = r->free_head[o]; b; prev = b, b = b->next) {
            const uint8_t *q = (const uint8_t *)b;
            if (q < heap(r) || q >= heap(r) + (units << SHM_MIN_SHIFT) ||
                ((uintptr_t)(q - heap(r)) & (((uintptr_t)1 << (o + SHM_MIN_SHIFT)) - 1))) {
                FAULT_NOTE(&f, "free list %u: node %p outside the heap or misaligned", o,
                           (void *)b);
                break;
            }
            uint64_t u = (uint64_t)(q - heap(r)) >> SHM_MIN_SHIFT;
            if (meta(r)[u] != (META_FREE | o))
                FAULT_NOTE(&f, "free list %u: block at unit %llu has head %#x", o,
                           (unsigned long long)u, meta(r)[u]);
            if (b->prev != prev)
                FAULT_NOTE(&f, "free list %u: block at unit %llu has a wrong back link", o,
                           (unsigned long long)u);
            if (++listed[o] > units) {
                FAULT_NOTE(&f, "free list %u: a cycle", o);
                break;
            }
        }
    }
    uint64_t heads[SHM_MAX_ORDER + 1] = { 0 }, used = 0, u = 0;
    while (u < units) {
        uint8_t m = meta(r)[u];
        unsigned o = META_ORDER(m);
        if (!(m & (META_USED | META_FREE)) || o > SHM_MAX_ORDER || (u & ((1ull << o) - 1)) ||
            u + (1ull << o) > units || (m & META_USED && m & META_FREE)) {
            FAULT_NOTE(&f, "heap unit %llu: head %#x (not a block, or misplaced)",
                       (unsigned long long)u, m);
            u++;
            continue;
        }
        for (uint64_t k = u + 1; k < u + (1ull << o); k++)
            if (meta(r)[k]) {
                FAULT_NOTE(&f, "heap unit %llu: head %#x inside the block at %llu",
                           (unsigned long long)k, meta(r)[k], (unsigned long long)u);
                break;
            }
        if (m & META_USED) {
            used += 1ull << (o + SHM_MIN_SHIFT);
        } else {
            heads[o]++;
            uint64_t buddy = u ^ (1ull << o);
            if (o < SHM_MAX_ORDER && buddy + (1ull << o) <= units && meta(r)[buddy] == m)
                FAULT_NOTE(&f, "heap unit %llu: free buddies of order %u not merged",
                           (unsigned long long)u, o);
        }
        u += 1ull << o;
    }
    for (unsigned o = 0; o <= SHM_MAX_ORDER; o++)
        if (heads[o] != listed[o])
            FAULT_NOTE(&f, "order %u: %llu free blocks, %llu on the free list", o,
                       (unsigned long long)heads[o], (unsigned long long)listed[o]);
    if (used != r->bytes_used)
        FAULT_NOTE(&f, "bytes_used %llu, the blocks in use hold %llu",
                   (unsigned long long)r->bytes_used, (unsigned long long)used);
    return f.n;
}

unsigned shm_repair(struct shm_region *r)
{
    unsigned faults = shm_audit(r, NULL, 0);
    if (!faults)
        return 0;
    uint64_t units = r->heap_blocks, used = 0;
    /* 1. The blocks in use stay; every other head byte goes. */
    uint64_t u = 0;
    while (u < units) {
        uint8_t m = meta(r)[u];
        unsigned o = META_ORDER(m);
        if ((m & META_USED) && !(m & META_FREE) && o <= SHM_MAX_ORDER &&
            !(u & ((1ull << o) - 1)) && u + (1ull << o) <= units) {
            memset(meta(r) + u + 1, 0, (1ull << o) - 1);
            used += 1ull << (o + SHM_MIN_SHIFT);
            u += 1ull << o;
        } else {
            meta(r)[u++] = 0;
        }
    }
    /* 2. The runs between them, carved into the largest aligned blocks
     * (as init_heap: no two free buddies of one order are left apart). */
    for (unsigned o = 0; o <= SHM_MAX_ORDER; o++)
        r->free_head[o] = NULL;
    u = 0;
    while (u < units) {
        if (meta(r)[u] & META_USED) {
            u += 1ull << META_ORDER(meta(r)[u]);
            continue;
        }
        uint64_t end = u;
        while (end < units && !(meta(r)[end] & META_USED))
            end++;
        while (u < end) {
            unsigned o = SHM_MAX_ORDER;
            while (o > 0 && ((u & ((1ull << o) - 1)) != 0 || u + (1ull << o) > end))
                o--;
            push(r, u, o);
            u += 1ull << o;
        }
    }
    r->bytes_used = used;
    r->rep_lists++;
    return faults;
}

struct reclaim {
    struct shm_region *r;
    const uint8_t *lo[SHM_JOURNAL], *hi[SHM_JOURNAL];
    const uint8_t *min, *max;
    unsigned n;
    bool ext[SHM_JOURNAL];                      /* pointed at from outside the candidates */
    uint64_t edge[SHM_JOURNAL];                 /* candidate i points into candidate j */
};

static int cand_of(const struct reclaim *c, const uint8_t *p)
{
    if (p < c->min || p >= c->max)
        return -1;
    for (unsigned i = 0; i < c->n; i++)
        if (p >= c->lo[i] && p < c->hi[i])
            return (int)i;
    return -1;
}

static void scan_refs(struct reclaim *c, const uint8_t *p, size_t n, int from)
{
    for (size_t off = 0; off + sizeof(uintptr_t) <= n; off += sizeof(uintptr_t)) {
        uintptr_t v;
        memcpy(&v, p + off, sizeof(v));
        int j = cand_of(c, (const uint8_t *)v);
        if (j < 0 || j == from)
            continue;
        if (from < 0)
            c->ext[j] = true;
        else
            c->edge[from] |= 1ull << j;
    }
}

static void scan_block(void *ctx, const void *p, size_t n)
{
    struct reclaim *c = ctx;
    if (cand_of(c, p) < 0)
        scan_refs(c, p, n, -1);
}

unsigned shm_reclaim_journal(struct shm_region *r)
{
    static struct reclaim c;            /* large-ish: not on a thread's stack */
    memset(&c, 0, sizeof(c));
    c.r = r;
    for (uint32_t i = 0; i < r->jr_n && i < SHM_JOURNAL; i++) {
        const uint8_t *p = (const uint8_t *)r + r->jr_off[i];
        size_t sz = shm_block_size(r, p);
        if (!sz || cand_of(&c, p) >= 0)
            continue;                   /* freed since, or listed twice */
        c.lo[c.n] = p;
        c.hi[c.n] = p + sz;
        if (!c.min || p < c.min)
            c.min = p;
        if (p + sz > c.max)
            c.max = p + sz;
        c.n++;
    }
    shm_journal_reset(r);
    if (!c.n)
        return 0;
    /* The header (root) and every other block in use; then the candidates
     * among themselves: one reached from a reached one is reached. */
    scan_refs(&c, (const uint8_t *)r, sizeof(*r), -1);
    shm_each_used(r, scan_block, &c);
    for (unsigned i = 0; i < c.n; i++)
        scan_refs(&c, c.lo[i], (size_t)(c.hi[i] - c.lo[i]), (int)i);
    for (bool more = true; more;) {
        more = false;
        for (unsigned i = 0; i < c.n; i++)
            if (c.ext[i])
                for (unsigned j = 0; j < c.n; j++)
                    if (!c.ext[j] && (c.edge[i] >> j & 1))
                        c.ext[j] = more = true;
    }
    unsigned freed = 0;
    for (unsigned i = 0; i < c.n; i++)
        if (!c.ext[i]) {
            shm_free(r, (void *)c.lo[i]);
            freed++;
        }
    r->rep_leaks += freed;
    return freed;
}

void shm_each_used(struct shm_region *r, void (*fn)(void *ctx, const void *p, size_t n),
                   void *ctx)
{
    /* Every block starts with a head byte (free or used, with its order);
     * the bytes of a block's other units are 0. */
    uint64_t u = 0;
    while (u < r->heap_blocks) {
        uint8_t m = meta(r)[u];
        if (!(m & (META_USED | META_FREE))) {
            u++;
            continue;
        }
        uint64_t units = 1ull << META_ORDER(m);
        if (m & META_USED)
            fn(ctx, heap(r) + (u << SHM_MIN_SHIFT), (size_t)(units << SHM_MIN_SHIFT));
        u += units;
    }
}

static int init_lock(struct shm_region *r)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    int e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (e == 0)
        e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (e == 0)
        e = pthread_mutex_init(&r->lock, &a);
    pthread_mutexattr_destroy(&a);
    return e;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000 };
    nanosleep(&ts, NULL);
}

static void *map_fixed(int fd, uint64_t size)
{
    return mmap((void *)SHM_REGION_ADDR, size, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
}

struct shm_region *shm_region_attach(const char *name, unsigned size_mb, int given_fd,
                                     bool *created, char *err, size_t errlen)
{
    char path[256];
    snprintf(path, sizeof(path), SHM_DIR "%s", name);
    for (int attempt = 0; attempt < 200; attempt++) {
        bool mine = false;
        int fd = given_fd >= 0 ? (int)syscall(SYS_fcntl, given_fd, F_DUPFD_CLOEXEC, 0) :
                 (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT) {
            fd = (int)syscall(SYS_openat, AT_FDCWD, path,
                              O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0 && errno == EEXIST)
                continue;
            mine = fd >= 0;
        }
        if (fd < 0) {
            snprintf(err, errlen, "shared memory %s: %s", path, strerror(errno));
            return NULL;
        }
        uint64_t size;
        if (mine) {
            size = (uint64_t)size_mb << 20;
            if (ftruncate(fd, (off_t)size) < 0) {
                snprintf(err, errlen, "shared memory %s: cannot size it to %u MiB: %s", path,
                         size_mb, strerror(errno));
                syscall(SYS_close, fd);
                unlink(path);
                return NULL;
            }
        } else {
            struct stat stt;
            if (fstat(fd, &stt) < 0 || (uint64_t)stt.st_size < sizeof(struct shm_region)) {
                syscall(SYS_close, fd);       /* its creator is still sizing it */
                sleep_ms(5);
                continue;
            }
            size = (uint64_t)stt.st_size;
        }
        void *p = map_fixed(fd, size);
        int e = errno;
        syscall(SYS_close, fd);
        if (p == MAP_FAILED || p != (void *)SHM_REGION_ADDR) {
            if (p != MAP_FAILED)
                munmap(p, size);        /* a kernel without MAP_FIXED_NOREPLACE */
            if (mine)
                unlink(path);
            snprintf(err, errlen, "shared memory %s: cannot map it at %#llx: %s", path,
                     (unsigned long long)SHM_REGION_ADDR, p == MAP_FAILED ? strerror(e) :
                     "address taken");
            return NULL;
        }
        struct shm_region *r = p;
        if (mine) {
            r->magic = SHM_MAGIC;
            r->version = SHM_VERSION;
            r->size = size;
            r->base = SHM_REGION_ADDR;
            e = init_lock(r);
            if (e != 0) {
                munmap(p, size);
                unlink(path);
                snprintf(err, errlen, "shared memory: robust process-shared mutex: %s",
                         strerror(e));
                return NULL;
            }
            init_heap(r);
            atomic_store_explicit(&r->ready, 1, memory_order_release);
            *created = true;
            return r;
        }
        /* Someone else created it: wait (bounded) until it is initialised. */
        int waited = 0;
        while (!atomic_load_explicit(&r->ready, memory_order_acquire) && waited++ < 400)
            sleep_ms(5);
        if (!atomic_load_explicit(&r->ready, memory_order_acquire) || r->magic != SHM_MAGIC ||
            r->version != SHM_VERSION || r->size != size) {
            munmap(p, size);
            snprintf(err, errlen, "shared memory %s: not a tcpsm region of this version "
                     "(remove it if no tcpsm program runs)", path);
            return NULL;
        }
        *created = false;
        return r;
    }
    snprintf(err, errlen, "shared memory %s: cannot open or create it (busy)", path);
    return NULL;
}

void shm_region_unlink(const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), SHM_DIR "%s", name);
    unlink(path);
}
