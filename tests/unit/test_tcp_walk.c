/* The walk over the TCBs in steps (tcp_walk.c): what an observer that lets
 * go of the stack's lock between steps (the stats region) sees when the
 * stack changes meanwhile. */
#include <errno.h>

#include "tcp_harness.h"

#define NSK 10

struct seen {
    const struct tcpsm_sock *v[64];
    unsigned n;
};

static void see(void *ctx, const struct tcpsm_sock *sk)
{
    struct seen *s = ctx;
    cr_assert_lt(s->n, 64u);
    s->v[s->n++] = sk;
}

static bool was_seen(const struct seen *s, const struct tcpsm_sock *sk)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->v[i] == sk)
            return true;
    return false;
}

/* Each test: NSK TCBs (new ones enter at the head: the walk meets them
 * newest first), what the walk saw, and at the end every TCB still in the
 * stack closed, whichever the test closed itself. */
static struct harness *h;
static struct tcpsm_sock *sk[NSK];
static struct seen s;

static void setup(void)
{
    h = h_new(NULL);
    for (int i = 0; i < NSK; i++)
        cr_assert_eq(tcpsm_sock_new(h->st, &sk[i]), 0);
    s.n = 0;
}

static void teardown(void)
{
    struct seen all = { 0 };
    tcpsm_stack_walk(h->st, see, &all);
    for (unsigned i = 0; i < all.n; i++)
        tcpsm_sock_close((struct tcpsm_sock *)all.v[i], h->now);
    h_free(h);
}

TestSuite(tcp_walk, .init = setup, .fini = teardown);

Test(tcp_walk, steps_visit_every_tcb_once)
{
    uint32_t w = tcpsm_stack_walk_begin(h->st);
    cr_assert_neq(w, 0u);
    int r, steps = 0;
    while ((r = tcpsm_stack_walk_step(h->st, w, 3, see, &s)) == 0)
        steps++;
    cr_assert_eq(r, 1);
    cr_assert_eq(steps, 3);             /* 3 + 3 + 3, then the last one */
    cr_assert_eq(s.n, (unsigned)NSK);
    for (int i = 0; i < NSK; i++)
        cr_assert(was_seen(&s, sk[i]));
    /* complete: the number is spent */
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w, 3, see, &s), -ESTALE);
}

/* The TCB the walk would visit next is freed between two steps: the walk
 * goes on past it (without the cursor's move in tcp_sock_free it would
 * visit freed memory). */
Test(tcp_walk, tcb_freed_between_steps_is_skipped)
{
    uint32_t w = tcpsm_stack_walk_begin(h->st);
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w, 3, see, &s), 0);
    cr_assert_eq(s.n, 3u);
    cr_assert_eq(s.v[0], sk[NSK - 1]);
    cr_assert_eq(s.v[2], sk[NSK - 3]);
    /* the next two (the cursor and the one after it), and one already seen */
    tcpsm_sock_close(sk[NSK - 4], h->now);
    tcpsm_sock_close(sk[NSK - 5], h->now);
    tcpsm_sock_close(sk[NSK - 1], h->now);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), (size_t)NSK - 3);
    /* made after the walk began: not visited */
    struct tcpsm_sock *late;
    cr_assert_eq(tcpsm_sock_new(h->st, &late), 0);
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w, 100, see, &s), 1);
    cr_assert_eq(s.n, (unsigned)NSK - 2);
    for (int i = 0; i < NSK - 5; i++)
        cr_assert(was_seen(&s, sk[i]), "sk[%d] not visited", i);
    for (unsigned i = 3; i < s.n; i++) {
        cr_assert_neq(s.v[i], sk[NSK - 4]);
        cr_assert_neq(s.v[i], sk[NSK - 5]);
        cr_assert_neq(s.v[i], late);
    }
}

/* One walk at a time: a second begin ends the first (its next step says
 * so, and touches nothing); so does a repair of the stack. */
Test(tcp_walk, a_new_walk_or_a_repair_ends_the_old_one)
{
    uint32_t w1 = tcpsm_stack_walk_begin(h->st);
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w1, 2, see, &s), 0);
    uint32_t w2 = tcpsm_stack_walk_begin(h->st);
    cr_assert_neq(w1, w2);
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w1, 2, see, &s), -ESTALE);
    cr_assert_eq(s.n, 2u);
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w2, 2, see, &s), 0);
    cr_assert_eq(s.n, 4u);
    tcpsm_stack_repair(h->st, h->now);
    cr_assert_eq(tcpsm_stack_walk_step(h->st, w2, 2, see, &s), -ESTALE);
    cr_assert_eq(s.n, 4u);
}
