/* The runtime's part of the repair after a lock holder died halfway
 * (runtime_repair.c, holders_check): who holds each application socket,
 * counted again from the process slots. Each test leaves the socket table
 * as a holder killed between two steps of one lock hold would, checks the
 * audit sees it, repairs, and checks the socket went as a dead process's
 * does (closed with a reset) and the audit is clean. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"
#include "tcp_harness.h"

static void region_attach(void)
{
    snprintf(rt.set.ifname, sizeof(rt.set.ifname), "unitr%d", (int)(getpid() % 1000000));
    rt.set.addr = 0xc6120002;
    rt.set.shm_mb = 16;
    char err[256];
    cr_assert_eq(rt_attach(err, sizeof(err)), 0, "%s", err);
}

static void region_detach(void)
{
    shm_region_unlink(rt.reg_name);
}

TestSuite(runtime_repair, .init = region_attach, .fini = region_detach);

/* wrap() (runtime.c) stopped after rt_id_new, or release_in (runtime_procs.c)
 * after `users--` reached 0: a socket in the table with no holder. */
static struct rt_sock *held_by_nobody(struct harness *h, unsigned users)
{
    struct rt_sock *rs = rt_alloc(sizeof(*rs));
    cr_assert_not_null(rs);
    cr_assert_eq(rt_id_new(rs), 0);
    rs->sk = h->sk;
    rs->users = users;
    tcpsm_sock_set_user(h->sk, rs);
    return rs;
}

/* A socket held by nobody with this count: the audit sees it, the repair
 * closes it as a dead process's socket is (reset), out of the table. */
static void nobody_holds(unsigned users)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    rt_lock();
    uint32_t n0 = rt.sh->nsocks;
    struct rt_sock *rs = held_by_nobody(h, users);
    uint32_t id = rs->id;
    char why[256];
    cr_assert_gt(rt_audit(why, sizeof why), 0, "the audit does not see a socket nobody holds");
    rt_repair();
    cr_assert_null(rt.sh->socks[id], "the socket nobody holds is still in the table");
    cr_assert_eq(rt.sh->nsocks, n0);
    unsigned f = rt_audit(why, sizeof why);
    cr_assert_eq(f, 0, "after the repair: %u faults: %s", f, why);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = h->lseq);
    cr_assert_null(tcpsm_sock_user(h->sk));
    rt_unlock();
    h_free(h);
}

/* Killed after `users--` made 0 and before final_close: users and holders
 * agree (0 = 0), so a check of the count alone saw nothing (the socket, and
 * its ESTABLISHED connection, stayed for good: kill9_repair's leftover
 * socket). */
Test(runtime_repair, socket_with_no_count_and_no_holder_is_closed)
{
    nobody_holds(0);
}

/* Killed after rt_id_new and `users = 1`, before rt_hold recorded the
 * holder: counted once, held by nobody. */
Test(runtime_repair, socket_counted_but_held_by_nobody_is_closed)
{
    nobody_holds(1);
}

/* And no false alarm: a socket this process holds once, counted once. */
Test(runtime_repair, held_socket_is_left_alone)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    rt_lock();
    struct rt_sock *rs = held_by_nobody(h, 1);
    rt_hold(rs);
    char why[256];
    cr_assert_eq(rt_audit(why, sizeof why), 0, "%s", why);
    rt_repair();
    cr_assert_eq(rt.sh->socks[rs->id], rs);
    cr_assert_eq(rs->users, 1);
    cr_assert_eq(tcpsm_sock_user(h->sk), rs);
    expect_no_seg(h);
    /* as close() would: the last holder's release closes it (FIN) */
    rt_release(rs, false);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq);
    rt_unlock();
    h_free(h);
}

/* Between two lock holds of one call: accept made and recorded the
 * connection's socket under the lock (tcpsm_accept_addr: wrap, rt_hold) and
 * the process died after the unlock, before the shim put it on an fd (or a
 * close took the fd away and died before tcpsm_close). No repair runs (the
 * lock was free); the dead process's slot still names the socket, so the
 * reaper releases it as the kernel closes a dead process's descriptors:
 * reset, out of the table. */
Test(runtime_repair, dead_process_between_holds_is_reaped)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    cr_assert_gt(dead, 0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    rt_lock();
    uint32_t n0 = rt.sh->nsocks;
    int slot = -1;
    for (int i = 0; i < RT_MAX_PROCS && slot < 0; i++)
        if (atomic_load(&rt.sh->procs[i].pid) == 0)
            slot = i;
    cr_assert_geq(slot, 0);
    atomic_store(&rt.sh->procs[slot].pid, (int)dead);
    int me = rt.me;
    rt.me = slot;                       /* as the dead process's accept did */
    struct rt_sock *rs = held_by_nobody(h, 1);
    rt_hold(rs);
    rt.me = me;
    uint32_t id = rs->id;
    char why[256];
    cr_assert_eq(rt_audit(why, sizeof why), 0, "%s", why);
    rt.started = true;                  /* only a process with a link reaps held sockets */
    rt_reap();
    rt.started = false;
    cr_assert_null(rt.sh->socks[id]);
    cr_assert_eq(rt.sh->nsocks, n0);
    cr_assert_eq(atomic_load(&rt.sh->procs[slot].pid), 0);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = h->lseq);
    rt_unlock();
    h_free(h);
}

/* A blocked accept chosen for a new connection's wake-up (exclusive: one
 * waiter per event) in a process that died before it took the lock to
 * accept (outside the lock: no repair). When the reaper forgets the dead
 * waiter, the wake-up goes on to the next exclusive waiter; before, the
 * others slept with the connection queued until another one came. */
Test(runtime_repair, dead_acceptors_wakeup_is_handed_on)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.sock_event = rt_sock_event;
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    rt_lock();
    struct rt_sock *rs = rt_alloc(sizeof(*rs));
    cr_assert_not_null(rs);
    rs->sk = h->lsk;
    rs->last_state = tcpsm_sock_state(h->lsk);  /* as an observer saw it (rt_note_seen) */
    tcpsm_sock_set_user(h->lsk, rs);
    int slot = -1;
    for (int i = 0; i < RT_MAX_PROCS && slot < 0; i++)
        if (atomic_load(&rt.sh->procs[i].pid) == 0)
            slot = i;
    cr_assert_geq(slot, 0);
    atomic_store(&rt.sh->procs[slot].pid, (int)dead);
    struct rt_waiter *wd = rt_alloc(sizeof(*wd));    /* the dead process's blocked accept */
    cr_assert_not_null(wd);
    wd->efd = -1;
    wd->proc = (uint16_t)slot;
    rt.sh->procs[slot].waiters = wd;
    rt_sock_wait_add_excl(rs, &wd->bq, wd);
    rs->refs++;
    struct rt_waiter *me = rt_waiter_self();    /* ours, waiting after it */
    cr_assert_not_null(me);
    rt_sock_wait_add_excl(rs, &me->bq, me);
    rs->refs++;
    rt_unlock();
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1);
    SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 1, .win = H_RWIN);
    rt_lock();
    cr_assert(tcpsm_sock_poll(h->lsk) & TCPSM_POLLIN, "no connection queued");
    cr_assert(wd->signalled, "the first exclusive waiter was not the one woken (me %d)", me->signalled);
    cr_assert_not(me->signalled, "an exclusive wake-up woke two");
    rt_reap();
    cr_assert_eq(atomic_load(&rt.sh->procs[slot].pid), 0);
    cr_assert(me->signalled, "the dead acceptor's wake-up was not handed on");
    rt_sock_wait_del(&me->bq);
    rs->refs--;
    tcpsm_sock_set_user(h->lsk, NULL);
    rt_unlock();
    h_free(h);
}

/* Killed inside rt_kick (runtime_thread.c) after `kicked = true`, before the
 * futex wake: the other process's service thread sleeps on, and every
 * later kick, the repair's own wake-up of everyone too, saw `kicked` and
 * returned: that process's blocked reads never woke (kill9_repair's
 * survivor without its echo, its 512 bytes unread). */
Test(runtime_repair, undelivered_kick_does_not_silence_a_process)
{
    rt_lock();
    int slot = -1;
    for (int i = 0; i < RT_MAX_PROCS && slot < 0; i++)
        if (i != rt.me && atomic_load(&rt.sh->procs[i].pid) == 0)
            slot = i;
    cr_assert_geq(slot, 0);
    struct rt_proc *p = &rt.sh->procs[slot];
    atomic_store(&p->pid, (int)getpid());   /* a live process */
    struct rt_waiter *w = rt_alloc(sizeof(*w));     /* its blocked read */
    cr_assert_not_null(w);
    w->efd = -1;
    w->proc = (uint16_t)slot;
    p->waiters = w;
    w->signalled = w->remote = true;    /* the dead holder's rt_signal ... */
    p->kicked = true;                   /* ... and rt_kick up to here */
    uint32_t f0 = atomic_load(&p->futex);
    rt_repair();
    cr_assert_neq(atomic_load(&p->futex), f0, "the process was never kicked: its waiters sleep on");
    cr_assert(w->signalled && w->remote, "its waiter is not to be woken");
    p->waiters = NULL;
    rt_free(w);
    /* and a process with no waiter (asleep in epoll_wait on an instance
     * the repair queued for it to raise) is kicked too */
    p->kicked = true;
    f0 = atomic_load(&p->futex);
    rt_repair();
    cr_assert_neq(atomic_load(&p->futex), f0, "a process without waiters was never kicked");
    p->kicked = false;
    atomic_store(&p->pid, 0);
    rt_unlock();
}
