/* The shared region holds no address of code or of one process's own
 * memory (runtime.h, README "Process model"): every program on the stack
 * has the library, and everything else, at its own addresses. With
 * TCPSM_LOG=debug each process checks it as it leaves: every word of every
 * block in use is compared with the ranges of the images loaded in this
 * process (code, constants, static data: dl_iterate_phdr), and what points
 * into one is logged. Payload bytes could match by chance (one word in
 * about 10^12 for random data). */
#include <link.h>
#include <string.h>

#include "runtime.h"

#define AUDIT_RANGES 512
#define AUDIT_SHOW   5

struct audit {
    struct { uintptr_t lo, hi; const char *name; } r[AUDIT_RANGES];
    unsigned nr;
    uint64_t words, hits;
};

static int add_image(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    struct audit *a = ctx;
    for (int i = 0; i < info->dlpi_phnum && a->nr < AUDIT_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        a->r[a->nr].lo = lo;
        a->r[a->nr].hi = lo + ph->p_memsz;
        a->r[a->nr].name = info->dlpi_name[0] ? info->dlpi_name : "the program";
        a->nr++;
    }
    return 0;
}

static void scan(void *ctx, const void *p, size_t n)
{
    struct audit *a = ctx;
    const unsigned char *b = p;
    for (size_t off = 0; off + sizeof(uintptr_t) <= n; off += sizeof(uintptr_t)) {
        uintptr_t v;
        memcpy(&v, b + off, sizeof(v));
        a->words++;
        if (v < 4096 || (v >> 47))
            continue;           /* not a user-space address (most payload words) */
        for (unsigned i = 0; i < a->nr; i++) {
            if (v >= a->r[i].lo && v < a->r[i].hi) {
                if (a->hits++ < AUDIT_SHOW)
                    tcpsm_log(TCPSM_LOG_ERROR, "region audit: block %p + %zu holds %#lx, an "
                              "address in %s", p, off, (unsigned long)v, a->r[i].name);
                break;
            }
        }
    }
}

void rt_region_audit(void)
{
    static struct audit a;      /* large: not on the stack of a thread at exit */
    memset(&a, 0, sizeof(a));
    dl_iterate_phdr(add_image, &a);
    shm_each_used(rt.reg, scan, &a);
    tcpsm_log(a.hits ? TCPSM_LOG_ERROR : TCPSM_LOG_DEBUG,
              "region audit: %llu words in use, %llu hold an address of this process's images",
              (unsigned long long)a.words, (unsigned long long)a.hits);
}
