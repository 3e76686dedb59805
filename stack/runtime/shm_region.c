/* The shared region: file, fixed mapping, robust lock, buddy allocator
 * (see shm_region.h). */
#include "shm_region.h"

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
#define SHM_VERSION 1u
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
