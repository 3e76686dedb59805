/* The runtime's sleep/wake mechanism (runtime_wait.c) without a link:
 * deadlines, wake-ups from another thread, coalescing, EINTR, the poller
 * list, and which core events wake a sleeper. Outcomes only, no timing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime.h"
#include "stack.h"
#include "timer.h"

static void lock(void) { rt_lock(); }
static void unlock(void) { rt_unlock(); }

/* The waiters live in the shared region: each test (its own process under
 * Criterion) attaches one of its own. */
static void attach(void)
{
    snprintf(rt.set.ifname, sizeof(rt.set.ifname), "unit%d", (int)(getpid() % 1000000));
    rt.set.addr = 0xc6120001;
    rt.set.shm_mb = 16;
    char err[256];
    cr_assert_eq(rt_attach(err, sizeof(err)), 0, "%s", err);
}

static void detach(void)
{
    shm_region_unlink(rt.reg_name);
}

static struct rt_waiter *waiter(void)
{
    lock();
    struct rt_waiter *w = rt_waiter_self();
    unlock();
    return w;
}

Test(runtime_wait, deadline_passes_with_eagain, .init = attach, .fini = detach)
{
    struct rt_waiter *w = waiter();
    cr_assert_not_null(w);
    cr_assert(tcpsm_rt_owns_fd(w->efd));
    lock();
    cr_assert_eq(rt_wait(w, rt_now() + 20 * 1000000ull), -EAGAIN);
    cr_assert_eq(rt_wait(w, rt_now()), -EAGAIN, "a deadline already passed");
    unlock();
}

static struct rt_waiter *target;
static atomic_int go;

static void *signaller(void *arg)
{
    (void)arg;
    while (!atomic_load(&go))
        sched_yield();
    lock();
    rt_signal(target);
    rt_signal(target);          /* coalesced with the first */
    unlock();
    return NULL;
}

Test(runtime_wait, wake_from_another_thread_is_not_lost, .init = attach, .fini = detach)
{
    struct rt_waiter *w = waiter();
    target = w;
    atomic_store(&go, 0);
    pthread_t t;
    pthread_create(&t, NULL, signaller, NULL);
    lock();
    atomic_store(&go, 1);       /* the signal may come before or during the sleep */
    int r = rt_wait(w, rt_now() + 10ull * 1000000000);
    unlock();
    pthread_join(t, NULL);
    cr_assert_eq(r, 0);
    cr_assert_not(w->signalled);
    uint64_t v;
    cr_assert_eq(read(w->efd, &v, sizeof(v)), -1, "drained: nothing left to read");
}

static void *signal_thrice(void *arg)
{
    lock();
    rt_signal(arg);
    rt_signal(arg);
    rt_signal(arg);
    unlock();
    return NULL;
}

Test(runtime_wait, coalesced_signal_writes_once, .init = attach, .fini = detach)
{
    struct rt_waiter *w = waiter();
    pthread_t t;
    pthread_create(&t, NULL, signal_thrice, w);
    pthread_join(t, NULL);
    uint64_t v = 0;
    cr_assert_eq(read(w->efd, &v, sizeof(v)), (ssize_t)sizeof(v));
    cr_assert_eq(v, 1);
    lock();
    w->signalled = w->written = false;
    unlock();
}

/* A thread that signals its own waiter (a leader whose link input readied
 * the socket it waits on) is awake: no eventfd write then and no read
 * after; but if it goes to sleep with the wake-up still pending (a poll
 * that did not see it), the eventfd shows it. */
Test(runtime_wait, own_wakeup_needs_no_eventfd_write, .init = attach, .fini = detach)
{
    struct rt_waiter *w = waiter();
    uint64_t v;
    lock();
    rt_signal(w);               /* outside the window: it may sleep on the eventfd next */
    cr_assert(w->signalled);
    cr_assert_eq(read(w->efd, &v, sizeof(v)), (ssize_t)sizeof(v), "written");
    cr_assert_eq(rt_wait(w, rt_now() + 10ull * 1000000000), 0, "pending: returns at once");
    rt_self_awake(true);        /* as the leader's input after its sleep */
    rt_signal(w);
    rt_self_awake(false);
    cr_assert(w->signalled);
    cr_assert_eq(read(w->efd, &v, sizeof(v)), -1, "not written");
    cr_assert_eq(rt_wait(w, rt_now() + 10ull * 1000000000), 0, "pending: returns at once");
    cr_assert_not(w->signalled);
    unlock();

    cr_assert_eq(tcpsm_poller_begin(), w->efd);
    lock();
    rt_self_awake(true);
    rt_signal(w);
    rt_self_awake(false);
    unlock();
    cr_assert_eq(read(w->efd, &v, sizeof(v)), -1, "not written while awake");
    int64_t tmo = -1;
    tcpsm_sleep_begin(&tmo);
    struct pollfd p = { .fd = w->efd, .events = POLLIN };
    cr_assert_eq(poll(&p, 1, 0), 1, "about to sleep with it pending: the eventfd shows it");
    tcpsm_sleep_end(false);
    cr_assert_eq(tcpsm_poller_begin(), w->efd, "a repeated begin drains");
    cr_assert_eq(poll(&p, 1, 0), 0);
    cr_assert_not(w->signalled);
    tcpsm_poller_end();
}

static void on_usr1(int sig) { (void)sig; }
static pthread_t sleeper;
static atomic_int sleeping_done;

static void *interrupter(void *arg)
{
    (void)arg;
    /* Bounded: at most 1000 signals, until the sleeper returns. */
    for (int i = 0; i < 1000 && !atomic_load(&sleeping_done); i++) {
        pthread_kill(sleeper, SIGUSR1);
        usleep(5000);
    }
    return NULL;
}

Test(runtime_wait, signal_handler_gives_eintr, .init = attach, .fini = detach)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;   /* poll-style waits are interrupted even so */
    sigaction(SIGUSR1, &sa, NULL);
    struct rt_waiter *w = waiter();
    sleeper = pthread_self();
    atomic_store(&sleeping_done, 0);
    pthread_t t;
    pthread_create(&t, NULL, interrupter, NULL);
    lock();
    int r = rt_wait(w, UINT64_MAX);
    unlock();
    atomic_store(&sleeping_done, 1);
    pthread_join(t, NULL);
    cr_assert_eq(r, -EINTR);
}

Test(runtime_wait, poller_list_wakes_and_unregisters, .init = attach, .fini = detach)
{
    struct rt_waiter *w = waiter();
    lock();
    rt_poller_add(w);
    rt_wake_pollers();
    cr_assert(w->signalled);
    unlock();
    cr_assert_eq(tcpsm_poller_begin(), w->efd, "begin returns the thread's eventfd");
    cr_assert_not(w->signalled, "begin drains a pending wake-up");
    cr_assert(w->polling);
    tcpsm_poller_end();
    cr_assert_not(w->polling);
    cr_assert_not(w->on_pollers);
    lock();
    rt_wake_pollers();
    cr_assert_not(w->signalled, "not on the list any more");
    unlock();
}

/* A core stack on a link that swallows frames, for real sockets. */
static unsigned swallow(struct tcpsm_netdev *d, const struct tcpsm_frame *f, unsigned n)
{
    (void)d;
    (void)f;
    return n;
}
static const struct tcpsm_netdev_ops swallow_ops = { .send = swallow };

Test(runtime_wait, sock_event_wakes_on_change_or_data_only, .init = attach, .fini = detach)
{
    struct tcpsm_netdev dev = { .ops = &swallow_ops, .mtu = 1500 };
    struct tcpsm_config cfg = { .addr = 0xc612000au, .prefix_len = 24,
                                .mac = { 2, 0x54, 0xc6, 0x12, 0, 10 } };
    struct tcpsm_stack *st = tcpsm_stack_new(&cfg, &dev, 1);
    cr_assert_not_null(st);
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(st, &sk), 0);
    struct rt_sock rs;
    memset(&rs, 0, sizeof(rs));
    rs.sk = sk;
    tcpsm_sock_set_user(sk, &rs);
    struct rt_waiter *w = waiter();
    struct rt_wqe q;
    lock();
    rt_sock_wait_add(&rs, &q, w);
    rt_note_seen(&rs);          /* the sleeper looked: CLOSED, its mask */
    unsigned seen = rs.last_events;

    rt_sock_event(NULL, sk, seen);
    cr_assert_not(w->signalled, "nothing changed: no wake-up");
    rt_sock_event(NULL, sk, seen | TCPSM_POLLERR);
    cr_assert(w->signalled, "a new bit wakes");
    w->signalled = false;
    rt_sock_event(NULL, sk, TCPSM_POLLIN);
    cr_assert(w->signalled, "changed");
    w->signalled = false;
    rt_sock_event(NULL, sk, TCPSM_POLLIN);
    cr_assert(w->signalled, "more data with POLLIN already set still wakes");
    w->signalled = false;

    rt_sock_wait_del(&q);
    cr_assert_null(rs.waiters);
    tcpsm_sock_set_user(sk, NULL);
    tcpsm_sock_close(sk, 2);
    unlock();
    tcpsm_stack_free(st);
}

/* Leader/follower: the first sleeper polls the link, the second follows;
 * link readiness wakes the leader alone, and a leader leaving hands the
 * link to the follower. The "link" is a pipe (no receive buffers: the
 * service step finds nothing), the core a stack on a swallowing link. */
static struct rt_waiter *lf_w[2];
static atomic_int lf_result[2];
static atomic_int lf_done[2];

static void *lf_sleeper(void *arg)
{
    int i = (int)(intptr_t)arg;
    lf_w[i] = waiter();
    lock();
    int r = rt_wait(lf_w[i], rt_now() + 10ull * 1000000000);
    atomic_store(&lf_result[i], r);
    rt_lead_leave(lf_w[i]);     /* as block_end does when the call returns */
    unlock();
    atomic_store(&lf_done[i], 1);
    return NULL;
}

static bool wait_until(bool (*cond)(void))
{
    for (int i = 0; i < 2000; i++) {        /* bounded: 10 s */
        lock();
        bool ok = cond();
        unlock();
        if (ok)
            return true;
        usleep(5000);
    }
    return false;
}
static bool a_leads(void) { return lf_w[0] && rt.leader == lf_w[0]; }
static bool b_follows(void) { return lf_w[1] && lf_w[1]->following; }

Test(runtime_wait, leader_polls_link_and_hands_over_to_follower, .init = attach, .fini = detach)
{
    struct tcpsm_netdev dev = { .ops = &swallow_ops, .mtu = 1500 };
    struct tcpsm_config cfg = { .addr = 0xc612000au, .prefix_len = 24,
                                .mac = { 2, 0x54, 0xc6, 0x12, 0, 10 } };
    int link[2];
    cr_assert_eq(pipe(link), 0);
    lock();
    rt.sh->st = tcpsm_stack_new(&cfg, &dev, 1);
    rt.np.fd = link[0];
    rt.started = true;
    unlock();
    pthread_t a, b;
    pthread_create(&a, NULL, lf_sleeper, (void *)0);
    cr_assert(wait_until(a_leads), "the first sleeper leads");
    pthread_create(&b, NULL, lf_sleeper, (void *)1);
    cr_assert(wait_until(b_follows), "the second follows");
    cr_assert(atomic_load(&rt.lead_active));

    cr_assert_eq(write(link[1], "x", 1), 1);        /* a frame on the link */
    pthread_join(a, NULL);
    cr_assert_eq(atomic_load(&lf_result[0]), 0, "the leader woke for the link");
    pthread_join(b, NULL);
    cr_assert_eq(atomic_load(&lf_result[1]), 0, "the follower was asked to lead when the leader left");
    lock();
    cr_assert_null(rt.leader);
    cr_assert_null(rt.followers);
    cr_assert_not(atomic_load(&rt.lead_active));
    rt.started = false;
    rt.np.fd = -1;
    tcpsm_stack_free(rt.sh->st);
    rt.sh->st = NULL;
    unlock();
    close(link[0]);
    close(link[1]);
}

/* What the shim's handler wrapper does when a handler runs inside a poll
 * section before the thread sleeps: the call must not sleep through it. */
Test(runtime_wait, handler_before_the_sleep_interrupts_and_withdraws, .init = attach, .fini = detach)
{
    int efd = tcpsm_poller_begin();
    cr_assert_geq(efd, 0);
    struct rt_waiter *w = waiter();
    unsigned seq0 = tcpsm_sigseq();
    cr_assert_not(tcpsm_signal_arrived(SIGUSR1, NULL), "not holding a lock: the handler runs now");
    cr_assert_neq(tcpsm_sigseq(), seq0, "the loop sees a handler ran (EINTR)");
    struct pollfd p = { .fd = efd, .events = POLLIN };
    cr_assert_eq(poll(&p, 1, 0), 1, "a sleep that starts now returns at once");
    cr_assert_not(w->polling, "registrations withdrawn before the handler (siglongjmp-safe)");
    cr_assert_eq(rt_t_in_wait, 0);
    tcpsm_poller_end();
    tcpsm_poller_begin();       /* drains */
    tcpsm_poller_end();
}

static atomic_int usr2_ran;
static void on_usr2(int sig) { (void)sig; atomic_fetch_add(&usr2_ran, 1); }

Test(runtime_wait, handler_is_deferred_while_the_lock_is_held, .init = attach, .fini = detach)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    lock();
    cr_assert(tcpsm_signal_arrived(SIGUSR2, NULL), "inside the stack lock: deferred");
    cr_assert_eq(atomic_load(&usr2_ran), 0);
    unlock();                   /* raised again on this thread as the lock goes */
    cr_assert_eq(atomic_load(&usr2_ran), 1, "the deferred handler ran after the unlock");
    tcpsm_sig_hold();
    cr_assert(tcpsm_signal_arrived(SIGUSR2, NULL), "inside a shim lock: deferred too");
    tcpsm_sig_release();
    cr_assert_eq(atomic_load(&usr2_ran), 2);
}

static siginfo_t rt1_info;
static atomic_int rt1_ran;
static void on_rt1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    rt1_info = *si;
    atomic_fetch_add(&rt1_ran, 1);
}

/* An F_SETSIG signal (SIGIO from a stack socket) that arrives while the
 * thread holds the lock is raised again with its siginfo: the handler
 * needs si_fd to know which socket (the plain re-raise lost it). */
Test(runtime_wait, deferred_handler_gets_the_original_siginfo, .init = attach, .fini = detach)
{
    int sig = SIGRTMIN + 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_rt1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, NULL);
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    si.si_signo = sig;
    si.si_code = POLL_IN;
    si.si_band = POLLIN | POLLRDNORM;
    si.si_fd = 42;
    lock();
    cr_assert(tcpsm_signal_arrived(sig, &si), "inside the stack lock: deferred");
    unlock();
    cr_assert_eq(atomic_load(&rt1_ran), 1, "the deferred handler ran after the unlock");
    cr_assert_eq(rt1_info.si_fd, 42, "si_fd kept: %d", rt1_info.si_fd);
    cr_assert_eq(rt1_info.si_code, POLL_IN, "si_code kept: %d", rt1_info.si_code);
    cr_assert_eq(rt1_info.si_band, POLLIN | POLLRDNORM);
    signal(sig, SIG_DFL);
}

/* Timers driven by the application's threads (rt_drive_cover): a stack on
 * a swallowing link, the "link" a pipe nobody writes to, and a bare timer
 * of no kind (timer_run drops it: it is run when it is no longer armed).
 * No service thread runs here: only the application's threads can run it. */
static int drv_link[2];
static struct tcpsm_timer drv_t;

static void drive_setup(void)
{
    attach();
    static struct tcpsm_netdev dev = { .ops = &swallow_ops, .mtu = 1500 };
    struct tcpsm_config cfg = { .addr = 0xc612000au, .prefix_len = 24,
                                .mac = { 2, 0x54, 0xc6, 0x12, 0, 10 } };
    cr_assert_eq(pipe(drv_link), 0);
    lock();
    rt.sh->st = tcpsm_stack_new(&cfg, &dev, 1);
    cr_assert_not_null(rt.sh->st);
    rt.np.fd = drv_link[0];
    rt.started = true;
    tcpsm_timer_init(&drv_t, TIMER_NONE);
    unlock();
}

static void drive_teardown(void)
{
    lock();
    timer_cancel(&rt.sh->st->timers, &drv_t);
    rt.started = false;
    rt.np.fd = -1;
    tcpsm_stack_free(rt.sh->st);
    rt.sh->st = NULL;
    rt.svc_sleep_until = 0;
    unlock();
    close(drv_link[0]);
    close(drv_link[1]);
    detach();
}

static void arm(uint64_t at)
{
    cr_assert_eq(timer_set(&rt.sh->st->timers, &drv_t, at), 0);
}

Test(runtime_wait, leader_sleep_ends_at_the_next_timer_and_runs_it, .init = drive_setup,
     .fini = drive_teardown)
{
    struct rt_waiter *w = waiter();
    lock();
    arm(rt_now() + 20 * 1000000ull);
    /* The caller would sleep 10 s; the stack's timer is due long before. */
    int r = rt_wait(w, rt_now() + 10ull * 1000000000);
    cr_assert_eq(r, 0, "the leader woke for the timer, not at its own deadline (%d)", r);
    cr_assert_not(tcpsm_timer_armed(&drv_t), "and ran it");
    cr_assert_null(rt.leader);
    cr_assert_eq(rt.lead_until, 0u);
    unlock();
}

Test(runtime_wait, sleep_begin_shortens_a_leaders_timeout, .init = drive_setup,
     .fini = drive_teardown)
{
    cr_assert_geq(tcpsm_poller_begin(), 0);
    lock();
    arm(rt_now() + 1000000000ull);
    unlock();
    int64_t tmo = 10ll * 1000000000;
    cr_assert_geq(tcpsm_sleep_begin(&tmo), 0, "leads");
    cr_assert_leq(tmo, 1000000000ll, "the sleep ends at the stack's timer");
    cr_assert_geq(tmo, 0);
    tcpsm_sleep_end(false);
    cr_assert(tcpsm_timer_armed(&drv_t), "not due yet: not run");
    tmo = -1;
    cr_assert_geq(tcpsm_sleep_begin(&tmo), 0);
    cr_assert(tmo >= 0 && tmo <= 1000000000ll, "no timeout of its own: the timer's");
    tcpsm_sleep_end(false);
    tcpsm_poller_end();
}

Test(runtime_wait, application_unlock_runs_due_timers, .init = drive_setup,
     .fini = drive_teardown)
{
    lock();
    arm(rt_now() - 1);
    rt_t_runtime = true;        /* the runtime's own threads leave them to the service thread */
    unlock();
    lock();
    cr_assert(tcpsm_timer_armed(&drv_t));
    rt_t_runtime = false;
    unlock();                   /* an application thread runs what is due as it leaves */
    lock();
    cr_assert_not(tcpsm_timer_armed(&drv_t));
    cr_assert_neq(atomic_load(&rt.drive_last), 0u, "and covers the timers for a while");
    unlock();
}

/* The service thread (this process's futex word) is woken for an earlier
 * deadline only when nobody else looks in time. */
Test(runtime_wait, service_thread_woken_only_when_not_covered, .init = drive_setup,
     .fini = drive_teardown)
{
    struct rt_proc *p = &rt.sh->procs[rt.me];
    lock();
    uint32_t v0 = atomic_load(&p->futex);
    rt.svc_sleep_until = rt_now() + RT_DRIVE_PARK_NS / 2;
    arm(rt_now() + RT_DRIVE_PARK_NS / 4);
    unlock();                   /* it looks again within the cover: not woken */
    cr_assert_eq(atomic_load(&p->futex), v0);
    cr_assert_neq(rt.svc_sleep_until, 0u);

    lock();
    rt.svc_sleep_until = rt_now() + 10ull * 1000000000;
    unlock();                   /* it would sleep past the cover: woken */
    cr_assert_neq(atomic_load(&p->futex), v0);
    cr_assert_eq(rt.svc_sleep_until, 0u);

    lock();
    p->kicked = false;
    uint32_t v1 = atomic_load(&p->futex);
    atomic_store(&rt.drive_last, 0);
    rt.svc_sleep_until = rt_now() + 10ull * 1000000000;
    rt_t_runtime = true;        /* e.g. the receive thread: covers nothing itself */
    unlock();
    rt_t_runtime = false;
    cr_assert_neq(atomic_load(&p->futex), v1, "an earlier deadline nobody covers wakes it");
}

Test(runtime_wait, drive_cover_rules, .init = drive_setup, .fini = drive_teardown)
{
    const uint64_t ms = 1000000, park = RT_DRIVE_PARK_NS;
    uint64_t t = rt_now() + 1000 * ms;
    lock();
    atomic_store(&rt.drive_last, t);
    cr_assert_eq(rt_drive_cover(t + ms / 2, t + ms), t + park, "a deadline within the park");
    cr_assert_eq(rt_drive_cover(t + ms / 2, t + 10 * park), t + park,
                 "a later one: looked at again when the park ends");
    cr_assert_eq(rt_drive_cover(t + park, t + park + ms), 0u, "nobody came back: not covered");
    struct rt_waiter *w = rt_waiter_self();
    rt.leader = w;
    rt.lead_until = t + 5 * park;
    cr_assert_eq(rt_drive_cover(t + 2 * park, t + 6 * park), t + 6 * park,
                 "a leader asleep until before the deadline covers it");
    cr_assert_eq(rt_drive_cover(t + 2 * park, t + 4 * park), 0u,
                 "one asleep past it does not");
    rt.leader = NULL;
    rt.lead_until = 0;
    atomic_store(&rt.drive_last, 0);
    unlock();
}

/* The service thread, while the application's threads cover the timers,
 * sleeps to the core's deadline when it falls past the cover: an event
 * loop that keeps coming back no longer costs it a wake-up per
 * RT_DRIVE_PARK_NS while nothing is due (before, it woke at every cover's
 * end whatever the deadline). */
Test(runtime_wait, service_thread_sleeps_to_a_deadline_past_the_cover, .init = drive_setup,
     .fini = drive_teardown)
{
    const uint64_t ms = 1000000, park = RT_DRIVE_PARK_NS;
    uint64_t t = rt_now() + 1000 * ms;
    bool past;
    lock();
    atomic_store(&rt.drive_last, t);
    cr_assert_eq(rt_svc_wake_at(t + ms / 4, t + 50 * park, &past), t + 50 * park,
                 "nothing due within the cover: wakes at the deadline");
    cr_assert(past, "and looks at the core then");
    cr_assert_eq(rt_svc_wake_at(t + ms / 4, UINT64_MAX, &past), UINT64_MAX,
                 "no deadline at all: until woken");
    cr_assert_eq(rt_svc_wake_at(t + ms / 4, t + park / 2, &past), t + park,
                 "one due within the cover: looked at at its end");
    cr_assert_not(past);
    cr_assert_eq(rt_svc_wake_at(t + park, t + park / 2, &past), 0u,
                 "nobody came back and it is due: run now");
    cr_assert_eq(rt_svc_wake_at(t + park, t + 3 * park, &past), t + 3 * park,
                 "not covered, not due: its deadline");
    cr_assert_not(past);
    atomic_store(&rt.drive_last, 0);
    unlock();
}

/* An application thread that arms a deadline before the one the service
 * thread sleeps to, past the cover, wakes it (it would sleep through it if
 * that thread stopped coming back); one the service thread looks at before
 * the cover ends does not. */
Test(runtime_wait, earlier_deadline_wakes_a_service_thread_asleep_past_the_cover,
     .init = drive_setup, .fini = drive_teardown)
{
    struct rt_proc *p = &rt.sh->procs[rt.me];
    lock();
    p->kicked = false;
    uint32_t v0 = atomic_load(&p->futex);
    uint64_t now = rt_now();
    atomic_store(&rt.drive_last, now);
    bool past;
    rt.svc_sleep_until = rt_svc_wake_at(now, now + 60ull * 1000000000, &past);
    cr_assert(past);
    arm(rt_now() + 200 * 1000000ull);
    unlock();
    cr_assert_neq(atomic_load(&p->futex), v0, "woken for the earlier deadline");
    cr_assert_eq(rt.svc_sleep_until, 0u);
}

/* A runtime thread (the receive or the service thread) trying the lock
 * with its lock_or_defer: whether it got it (it unlocks at once), and that
 * it returned. */
struct runtime_try {
    bool (*lock_or_defer)(void);
    atomic_int result;
    atomic_int tried;
};

static void *runtime_try_thread(void *arg)
{
    struct runtime_try *t = arg;
    rt_t_runtime = true;
    bool got = t->lock_or_defer();
    if (got)
        unlock();
    atomic_store(&t->result, got);
    atomic_store(&t->tried, 1);
    return arg;
}

/* A runtime thread's hold (timers, stats) is waited for: t does not return
 * while it lasts, then gets the lock and leaves nothing deferred. Asserts
 * only with the lock free: a failed one must not leave it held for the
 * teardown. */
static void runtime_hold_is_waited_for(struct runtime_try *t, atomic_bool *deferred)
{
    rt_t_runtime = true;                        /* now a runtime thread holds it */
    lock();
    atomic_store(&t->tried, 0);
    pthread_t th;
    pthread_create(&th, NULL, runtime_try_thread, t);
    usleep(20000);
    int tried = atomic_load(&t->tried);
    unlock();
    rt_t_runtime = false;
    pthread_join(th, NULL);
    cr_assert_eq(tried, 0, "waits for a runtime thread's lock");
    cr_assert_eq(atomic_load(&t->result), 1);
    cr_assert_not(atomic_load(deferred));
}

/* The receive thread does not sleep on the lock an application thread of
 * this process holds: it leaves the link's frames to the holder, whose
 * unlock takes them (rt.rx_deferred). A runtime thread's hold (timers,
 * stats) is waited for, as before. */
Test(runtime_wait, receive_thread_leaves_frames_to_an_application_holder, .init = attach,
     .fini = detach)
{
    static struct runtime_try rx = { .lock_or_defer = rt_rx_lock_or_defer };
    lock();                                     /* an application thread holds it */
    atomic_store(&rx.tried, 0);
    pthread_t t;
    pthread_create(&t, NULL, runtime_try_thread, &rx);
    pthread_join(t, NULL);                      /* returned without the lock: no sleep on it */
    cr_assert_eq(atomic_load(&rx.result), 0);
    cr_assert(atomic_load(&rt.rx_deferred), "left to the holder");
    unlock();
    cr_assert_not(atomic_load(&rt.rx_deferred), "the holder's unlock took it");

    runtime_hold_is_waited_for(&rx, &rt.rx_deferred);
}

/* The service thread, woken for a due timer, does not sleep on the lock an
 * application thread of this process holds either: it leaves the timers to
 * the holder (rt.svc_deferred), whose unlock runs them even when it does
 * not drive (a follower about to sleep); a runtime thread's hold is waited
 * for. */
Test(runtime_wait, service_thread_leaves_due_timers_to_an_application_holder,
     .init = drive_setup, .fini = drive_teardown)
{
    static struct runtime_try svc = { .lock_or_defer = rt_svc_lock_or_defer };
    /* Assertions only with the lock free: a failed one must not leave it
     * held for the teardown. */
    lock();                                     /* an application thread holds it */
    arm(rt_now() - 1);
    pthread_t t;
    pthread_create(&t, NULL, runtime_try_thread, &svc);
    pthread_join(t, NULL);                      /* returned without the lock */
    bool deferred = atomic_load(&rt.svc_deferred);
    rt_t_nodrive = true;                        /* a follower about to sleep drives nothing... */
    unlock();
    cr_assert_eq(atomic_load(&svc.result), 0, "did not wait for the holder");
    cr_assert(deferred, "left to the holder");
    cr_assert_not(atomic_load(&rt.svc_deferred), "the holder's unlock took it");
    cr_assert_not(tcpsm_timer_armed(&drv_t), "...but runs the timers left to it");

    lock();
    arm(rt_now() - 1);                          /* without the flag it leaves them */
    rt_t_nodrive = true;
    unlock();
    bool left = tcpsm_timer_armed(&drv_t);
    lock();
    timer_cancel(&rt.sh->st->timers, &drv_t);
    unlock();
    cr_assert(left);

    runtime_hold_is_waited_for(&svc, &rt.svc_deferred);
}

/* The clock is read once per hold of the stack lock (rt_clock): every later
 * use in the same hold sees that reading, a new hold (or a send on the
 * link, rt_clock_stale) reads it again, and outside a hold nothing is kept
 * for the next one. */
Test(runtime_wait, clock_read_once_per_lock_hold, .init = attach, .fini = detach)
{
    lock();
    uint64_t t1 = rt_clock();
    usleep(2000);
    cr_assert_eq(rt_clock(), t1, "the same hold reuses its reading");
    cr_assert_geq(rt_now(), t1 + 2000000ull, "rt_now reads afresh");
    rt_clock_stale();                   /* as after a send on the link */
    uint64_t t2 = rt_clock();
    cr_assert_geq(t2, t1 + 2000000ull, "read again after a link send");
    unlock();
    cr_assert_eq(rt_t_clock, 0, "nothing kept past the unlock");
    uint64_t o1 = rt_clock();
    usleep(2000);
    cr_assert_geq(rt_clock(), o1 + 2000000ull, "outside a hold: read afresh every time");
    cr_assert_eq(rt_t_clock, 0, "and nothing kept");
    rt_clock_stale();                   /* a link send after the unlock (deferred frames) */
    cr_assert_eq(rt_t_clock, 0, "does not open the cache");
    usleep(2000);
    lock();
    cr_assert_geq(rt_clock(), t2 + 2000000ull, "a new hold reads afresh");
    unlock();
}

/* The receive thread parked for an application thread that takes the
 * link's frames itself sleeps without a timer; the service thread, awake
 * while that thread drives anyway, bounds its own sleep by the receive
 * thread's resume time and wakes it then if nobody came back (before, the
 * receive thread woke every RX_PARK_NS to look). */
Test(runtime_wait, service_thread_watches_a_parked_receive_thread, .init = attach, .fini = detach)
{
    const uint64_t s60 = 60ull * 1000000000;
    struct rt_proc *p = &rt.sh->procs[rt.me];
    rt.rx_stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    cr_assert_geq(rt.rx_stop_efd, 0);
    uint64_t t = rt_now();
    atomic_store(&rt.app_rx_last, t);
    atomic_store(&rt.lead_last, 0);
    /* not watching: the service thread's sleep is its own */
    cr_assert_eq(rt_rx_watch_bound(t + s60), t + s60);
    /* the service thread awake (0): the receive thread parks without a kick */
    atomic_store(&rt.svc_sleep_until, 0);
    uint32_t v0 = atomic_load(&p->futex);
    rt_rx_watch_begin(t + RX_PARK_NS);
    cr_assert_eq(atomic_load(&p->futex), v0, "the service thread was not asleep: no kick");
    cr_assert_eq(rt_rx_watch_resume(), t + RX_PARK_NS);
    cr_assert_eq(rt_rx_watch_bound(t + s60), t + RX_PARK_NS, "sleeps no later than the resume");
    cr_assert_eq(atomic_load(&rt.svc_sleep_until), t + RX_PARK_NS);
    cr_assert_eq(rt_rx_watch_bound(t + 1000), t + 1000, "an earlier deadline stays");
    /* an application thread came back: the resume moves on, nothing is woken */
    atomic_store(&rt.app_rx_last, t + 1000000);
    cr_assert_eq(rt_rx_watch_resume(), t + 1000000 + RX_PARK_NS);
    rt_rx_watch_check(t + RX_PARK_NS);
    uint64_t v;
    cr_assert_eq(read(rt.rx_stop_efd, &v, sizeof(v)), -1, "woken while the program drives");
    cr_assert(atomic_load(&rt.rx_watch));
    /* nobody came back by then: woken once */
    rt_rx_watch_check(t + 1000000 + RX_PARK_NS);
    cr_assert_eq(read(rt.rx_stop_efd, &v, sizeof(v)), (ssize_t)sizeof(v));
    cr_assert_eq(v, 1u);
    cr_assert_not(atomic_load(&rt.rx_watch));
    cr_assert_not(atomic_load(&rt.rx_stop), "a kick, not a stop");
    rt_rx_watch_check(t + s60);
    cr_assert_eq(read(rt.rx_stop_efd, &v, sizeof(v)), -1, "once");
    /* The service thread asleep past the resume (it published that before
     * it could see the watch): the receive thread kicks it. */
    atomic_store(&rt.svc_sleep_until, t + s60);
    rt_rx_watch_begin(t + 2 * RX_PARK_NS);
    cr_assert_neq(atomic_load(&p->futex), v0, "kicked: it would have slept past the resume");
    atomic_store(&rt.rx_watch, false);
    atomic_store(&rt.svc_sleep_until, 0);
    atomic_store(&rt.app_rx_last, 0);
    close(rt.rx_stop_efd);
    rt.rx_stop_efd = -1;
}
