/* The shared region's allocator after a lock holder died halfway
 * (shm_region.c: shm_audit, shm_repair, shm_reclaim_journal): free lists
 * cut, a block unlinked but not yet marked, a free stopped before its
 * merge, a count off; blocks the dead holder allocated and linked nowhere.
 * Each test process maps its own 16 MiB region. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm_region.h"

static struct shm_region *r;
static char name[64];

static void setup(void)
{
    snprintf(name, sizeof name, "tcpsm-unit-repair-%d", (int)getpid());
    bool created = false;
    char err[256];
    r = shm_region_attach(name, 16, -1, &created, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    cr_assert(created);
}

static void teardown(void)
{
    shm_region_unlink(name);
}

static uint64_t heap_bytes(void)
{
    return r->heap_blocks << SHM_MIN_SHIFT;
}

/* Everything still free can be allocated, and adds up with what is used:
 * nothing was lost from the lists, nothing is on them twice. */
static void all_memory_there(void)
{
    uint64_t got = 0;
    for (size_t sz = (size_t)1 << (SHM_MAX_ORDER + SHM_MIN_SHIFT); sz >= 64; sz >>= 1)
        while (shm_alloc(r, sz))
            got += sz;
    cr_assert_eq(got + 0, heap_bytes() - (r->bytes_used - got),
                 "free %llu + used %llu != heap %llu", (unsigned long long)got,
                 (unsigned long long)(r->bytes_used - got), (unsigned long long)heap_bytes());
    cr_assert_eq(r->bytes_used, heap_bytes());
}

static void repaired(void)
{
    char why[256];
    cr_assert_gt(shm_audit(r, why, sizeof why), 0, "the audit does not see the fault");
    cr_assert_gt(shm_repair(r), 0);
    unsigned f = shm_audit(r, why, sizeof why);
    cr_assert_eq(f, 0, "after the repair: %u faults: %s", f, why);
}

static void some_blocks(void *p[8])
{
    static const size_t sz[8] = { 64, 100, 4096, 64, 70000, 300, 64, 1 << 20 };
    for (int i = 0; i < 8; i++)
        cr_assert_not_null(p[i] = shm_alloc(r, sz[i]));
    shm_free(r, p[1]);
    shm_free(r, p[4]);
    p[1] = p[4] = NULL;
}

Test(shm_repair, clean_region, .init = setup, .fini = teardown)
{
    void *p[8];
    some_blocks(p);
    char why[256];
    cr_assert_eq(shm_audit(r, why, sizeof why), 0, "%s", why);
    cr_assert_eq(shm_repair(r), 0);
    all_memory_there();
}

Test(shm_repair, free_list_cut, .init = setup, .fini = teardown)
{
    void *p[8];
    some_blocks(p);
    unsigned o = 0;
    while (o <= SHM_MAX_ORDER && !r->free_head[o])
        o++;
    cr_assert_leq(o, SHM_MAX_ORDER);
    r->free_head[o] = NULL;             /* the whole list of order o lost */
    uint64_t used = r->bytes_used;
    repaired();
    cr_assert_eq(r->bytes_used, used);
    cr_assert_neq(shm_block_size(r, p[0]), 0, "a block in use was freed");
    all_memory_there();
}

/* shm_alloc stopped right after taking a block off its list, before
 * marking it used: it is free again. */
Test(shm_repair, alloc_interrupted_after_unlink, .init = setup, .fini = teardown)
{
    void *p[8];
    some_blocks(p);
    unsigned o = SHM_MAX_ORDER;
    while (!r->free_head[o])
        o--;
    struct blk { struct blk *next, *prev; } *b = r->free_head[o];
    r->free_head[o] = b->next;
    if (b->next)
        b->next->prev = NULL;
    repaired();
    all_memory_there();
}

/* shm_free stopped after clearing the block's head byte, before it was
 * merged and listed: the block belongs to nobody. */
Test(shm_repair, free_interrupted_before_merge, .init = setup, .fini = teardown)
{
    void *p[8];
    some_blocks(p);
    uint8_t *meta = (uint8_t *)r + r->meta_off;
    uint64_t unit = (uint64_t)((uint8_t *)p[2] - ((uint8_t *)r + r->heap_off)) >> SHM_MIN_SHIFT;
    size_t sz = shm_block_size(r, p[2]);
    meta[unit] = 0;
    r->bytes_used -= sz;
    repaired();
    cr_assert_eq(shm_block_size(r, p[2]), 0);
    all_memory_there();
}

Test(shm_repair, count_off, .init = setup, .fini = teardown)
{
    void *p[8];
    some_blocks(p);
    uint64_t used = r->bytes_used;
    r->bytes_used += 64;
    repaired();
    cr_assert_eq(r->bytes_used, used);
    all_memory_there();
}

/* The journal: of the blocks allocated since the lock was taken, those no
 * other block points into are freed; a block pointed at only from one of
 * those goes too; one pointed into (interior pointer) from a block made
 * before stays. */
Test(shm_repair, journal_reclaims_unlinked_blocks, .init = setup, .fini = teardown)
{
    void **old = shm_calloc(r, 256);    /* linked before: the stack's tables */
    r->root = old;
    shm_journal_reset(r);               /* the dead holder takes the lock */
    void **lost = shm_calloc(r, 128);   /* allocated, linked nowhere */
    void *via_lost = shm_calloc(r, 64); /* linked only from lost */
    lost[0] = via_lost;
    char *kept = shm_calloc(r, 512);
    old[3] = kept + 100;                /* an interior pointer (a pprev link) */
    void *kept2 = shm_calloc(r, 64);
    ((void **)kept)[0] = kept2;
    uint64_t used = r->bytes_used;
    cr_assert_eq(shm_reclaim_journal(r), 2);
    cr_assert_eq(shm_block_size(r, lost), 0);
    cr_assert_eq(shm_block_size(r, via_lost), 0);
    cr_assert_neq(shm_block_size(r, kept), 0);
    cr_assert_neq(shm_block_size(r, kept2), 0);
    cr_assert_neq(shm_block_size(r, old), 0);
    cr_assert_eq(r->bytes_used, used - 128 - 64);
    cr_assert_eq(r->jr_n, 0);
    char why[256];
    cr_assert_eq(shm_audit(r, why, sizeof why), 0, "%s", why);
}

Test(shm_repair, valid_ranges, .init = setup, .fini = teardown)
{
    char *p = shm_alloc(r, 200);        /* a 256-byte block */
    cr_assert(shm_valid(r, p, 256));
    cr_assert(shm_valid(r, p + 100, 156));
    cr_assert_not(shm_valid(r, p + 100, 157));
    shm_free(r, p);
    cr_assert_not(shm_valid(r, p, 1));
    cr_assert_not(shm_valid(r, r, 1));
}
