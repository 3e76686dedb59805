/* Each process's two threads: the receive thread and the service thread.
 *
 * Receive: sleeps in ppoll on the packet socket (and a stop eventfd) unless
 * an application thread of this process leads (polls the link itself,
 * runtime_wait.c), and hands what it receives to the core under the lock
 * (rt_link_service). After fork several processes read the same packet
 * socket; any process may process any frame: the stack is shared.
 *
 * Service: sleeps on this process's futex word in the shared region until
 * the core's next deadline; then runs the due timers, unless an
 * application thread of this process drives them (rt_drive_cover): then it
 * sleeps until that thread has not come back for RT_DRIVE_PARK_NS, or to the
 * deadline if that is later (rt_svc_wake_at). It is woken early
 * when an entry point moved the deadline earlier (rt_unlock), or when
 * another process signalled a waiter of this one (it writes that waiter's
 * eventfd: rt_relay_remote). With other processes attached it also looks,
 * once a second, for processes that died without leaving (rt_reap).
 *
 * Both threads block every signal, so the application's signal handlers
 * run on its own threads (and interrupt its own waits). */
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "runtime_ops.h"

/* Service rounds (each up to 4 batches) before going back to ppoll, so stop requests are seen. */
#define RX_BATCHES_PER_WAKE 4
/* Link errors logged per process: a flapping link must not flood stderr. */
#define RX_WARN_MAX 10
/* Due-timer wake-ups in a row that the service thread leaves to an
 * application thread holding the lock (each a park long) before it waits
 * for the lock itself. */
#define SVC_DEFER_MAX 16
/* How often a process looks for others that died, when there are others. */
#define REAP_EVERY_NS 1000000000ull


/* Onload's deferred work on its stack lock: a runtime thread that finds
 * the lock held by an application thread of this process raises *flag and
 * leaves the work to it instead of sleeping on the lock. The flag is
 * raised before the second try, so a holder that unlocks in between finds
 * the lock free to this thread or the flag to it. */
static bool lock_or_defer(_Atomic bool *flag)
{
    if (rt_trylock())
        return true;
    if (!atomic_load_explicit(&rt.owner_app, memory_order_relaxed)) {
        rt_lock();      /* another process, or a runtime thread: it takes none */
        return true;
    }
    atomic_store(flag, true);
    if (!rt_trylock())
        return false;
    atomic_store(flag, false);
    return true;
}

bool rt_rx_lock_or_defer(void)
{
    return lock_or_defer(&rt.rx_deferred);
}

bool rt_svc_lock_or_defer(void)
{
    return lock_or_defer(&rt.svc_deferred);
}

/* The parked receive thread's watch (rt.rx_watch). When it must look at
 * the link again: RX_PARK_NS after an application thread last took frames
 * or left leading, or later if it said so when it parked (frames it left
 * to a holder). */
uint64_t rt_rx_watch_resume(void)
{
    uint64_t last = atomic_load_explicit(&rt.lead_last, memory_order_relaxed);
    uint64_t app = atomic_load_explicit(&rt.app_rx_last, memory_order_relaxed);
    uint64_t r = atomic_load(&rt.rx_resume);
    if (app > last)
        last = app;
    return last + RX_PARK_NS > r ? last + RX_PARK_NS : r;
}

/* The service thread, about to sleep to d: no later than the parked
 * receive thread's resume time. svc_sleep_until is published before
 * rx_watch is read, and the receive thread sets rx_watch before it reads
 * svc_sleep_until (both sequentially consistent): one of the two sees the
 * other, so the receive thread kicks a service thread that would sleep
 * past its resume time. */
uint64_t rt_rx_watch_bound(uint64_t d)
{
    atomic_store(&rt.svc_sleep_until, d);
    if (atomic_load(&rt.rx_watch)) {
        uint64_t r = rt_rx_watch_resume();
        if (r < d) {
            d = r;
            atomic_store(&rt.svc_sleep_until, d);
        }
    }
    return d;
}

/* The service thread, awake at now: wake the parked receive thread if no
 * application thread came back by its resume time. */
void rt_rx_watch_check(uint64_t now)
{
    if (atomic_load(&rt.rx_watch) && now >= rt_rx_watch_resume() &&
        atomic_exchange(&rt.rx_watch, false)) {
        uint64_t one = 1;
        syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
    }
}

/* The receive thread, parking until resume: asks the service thread to
 * watch, kicking it if it sleeps past that time. */
void rt_rx_watch_begin(uint64_t resume)
{
    atomic_store(&rt.rx_resume, resume);
    atomic_store(&rt.rx_watch, true);
    uint64_t s = atomic_load(&rt.svc_sleep_until);
    int me = *(volatile int *)&rt.me;   /* read once: the slot goes as the process leaves */
    if (s != 0 && s > resume && me >= 0 && me < RT_MAX_PROCS) {
        struct rt_proc *p = &rt.sh->procs[me];
        atomic_fetch_add(&p->futex, 1);
        syscall(SYS_futex, &p->futex, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
}

static void *rx_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-rx");
    rt_t_runtime = true;
    unsigned warnings = 0;
    uint64_t deferred_until = 0;        /* frames left to the lock's holder: off the link until */
    struct pollfd p[2] = {
        { .fd = rt.np.fd, .events = POLLIN },
        { .fd = rt.rx_stop_efd, .events = POLLIN },
    };
    for (;;) {
        uint64_t now = rt_now();
        uint64_t last = atomic_load_explicit(&rt.lead_last, memory_order_relaxed);
        uint64_t app_last = atomic_load_explicit(&rt.app_rx_last, memory_order_relaxed);
        if (app_last > last)
            last = app_last;
        if (deferred_until > now && deferred_until - RX_PARK_NS > last)
            last = deferred_until - RX_PARK_NS;
        bool leading = atomic_load_explicit(&rt.lead_active, memory_order_relaxed);
        bool park = leading || (last && now - last < RX_PARK_NS);
        struct timespec ts = { 0, RX_PARK_NS };
        /* Parked for an application thread that takes the frames itself:
         * the service thread watches (rt_rx_watch_*); a leader asleep on the
         * link: looked at again every RX_PARK_NS, as before. */
        bool watched = park && !leading;
        if (watched) {
            rt_rx_watch_begin(last + RX_PARK_NS);
            ts = (struct timespec){ 0, RX_WATCH_MAX_NS };
        } else if (park && last && now - last < RX_PARK_NS) {
            ts.tv_nsec = (long)(RX_PARK_NS - (now - last));
        }
        p[0].fd = park ? -1 : rt.np.fd;
        /* Unparked, nobody keeps frames waiting past a call (out_keep);
         * those kept before go now, should their thread not be back. */
        if (!park)
            netdev_packet_defer_send(&rt.np);
        long r = syscall(SYS_ppoll, p, 2, park ? &ts : NULL, NULL, 8);
        if (r < 0 && errno != EINTR) {
            tcpsm_log(TCPSM_LOG_ERROR, "receive thread: ppoll: %s", strerror(errno));
            return NULL;
        }
        bool kicked = false;
        if (r > 0 && p[1].revents) {
            if (atomic_load(&rt.rx_stop))
                return NULL;
            uint64_t v;
            syscall(SYS_read, rt.rx_stop_efd, &v, sizeof(v));     /* the watch's kick */
            kicked = true;
        }
        if (watched)
            atomic_store(&rt.rx_watch, false);
        if ((r == 0 || kicked) && park &&
            rt_now() - atomic_load_explicit(&rt.lead_last, memory_order_relaxed) >= RX_PARK_NS &&
            rt_rx_lock_or_defer()) {
            /* No application thread came back to the stack for
             * RX_PARK_NS: the quick ACKs its input held for replies
             * leave now, not at the delayed-ACK timer. Not by sleeping on
             * the lock of an application thread of this process: it is
             * back, and sends them before its next sleep. */
            rt_release_acks();
            rt_unlock();
        }
        if (r <= 0 || kicked)
            continue;
        if (p[0].revents & POLLERR) {
            /* A pending socket error (e.g. ENETDOWN): read it to clear it. */
            int e = 0;
            socklen_t el = sizeof(e);
            syscall(SYS_getsockopt, rt.np.fd, SOL_SOCKET, SO_ERROR, &e, &el);
            if (warnings < RX_WARN_MAX && ++warnings)
                tcpsm_log(TCPSM_LOG_WARN, "link %s: %s", rt.set.ifname, strerror(e));
        }
        /* Receive under the lock: the link's buffers are shared with the
         * leaders (an application thread that leads now takes it from here).
         * Taken by another thread of this process: the frames are left to
         * it (rt_unlock takes them), and this thread stays off the link for
         * RX_PARK_NS / 2 rather than sleep on the lock and wake for it,
         * twice, per batch (an event loop answering requests holds the lock
         * for every send). The flag is raised before the second try, so a
         * holder that unlocks in between finds the lock free to this one or
         * the flag to it; one that looked at the flag just before it is
         * raised leaves the frames waiting at most until this thread's next
         * look. */
        for (int b = 0; b < RX_BATCHES_PER_WAKE; b++) {
            if (!rt_rx_lock_or_defer()) {
                deferred_until = rt_now() + RX_PARK_NS / 2;
                break;
            }
            unsigned n = rt.down || rt.leader ? 0 : rt_link_service_from(false);
            rt_unlock();
            if (n == 0)
                break;
        }
    }
}

__thread bool rt_t_nodrive;

uint64_t rt_drive_timers(bool flush)
{
    uint64_t now = rt_clock();
    if (rt.started && !rt.down && tcpsm_stack_next_deadline(rt.sh->st) <= now) {
        tcpsm_stack_timers(rt.sh->st, now);
        if (flush)
            rt_self_flush();
    }
    return now;
}

/* Whoever waits drives, the timers too (design.md): an application thread
 * that released the lock at drive_last ran every timer due then, and one
 * that comes back that often runs the later ones itself; a leader asleep
 * wakes at the core's next deadline at the latest (lead_until) and runs
 * them. The service thread leaves the timers to them, but looks again
 * RT_DRIVE_PARK_NS past the last sign of such a thread (the backstop for
 * one that does not come back): returns that time, 0 if no application
 * thread covers a deadline d. While they cover one due within the cover,
 * the service thread wakes at most every RT_DRIVE_PARK_NS and the
 * application's threads never wake it for an earlier deadline; one due past
 * the cover it sleeps to (rt_svc_wake_at), and an earlier deadline armed
 * meanwhile wakes it (rt_unlock). */
uint64_t rt_drive_cover(uint64_t now, uint64_t d)
{
    uint64_t c = 0;
    uint64_t last = atomic_load_explicit(&rt.drive_last, memory_order_relaxed);
    if (last && (int64_t)(now - last) < (int64_t)RT_DRIVE_PARK_NS)
        c = last + RT_DRIVE_PARK_NS;
    if (rt.leader && rt.lead_until <= d && rt.lead_until + RT_DRIVE_PARK_NS > c)
        c = rt.lead_until + RT_DRIVE_PARK_NS;
    return c > now ? c : 0;
}

/* When the service thread, awake at `now` with the core's next deadline
 * d, looks again: 0 if d is due and no application thread covers it (it
 * runs the timers now); else d, or the end of the cover if one is due by
 * then (it looks whether they came back). *past_cover: it sleeps to a
 * deadline past the cover, and takes the lock to look at the core when
 * it wakes. Before, it woke at every cover's end (each RT_DRIVE_PARK_NS)
 * whatever the deadline: an event loop serving connections keeps coming
 * back, and that was a context switch per millisecond on a core it needs.
 * A deadline armed meanwhile before the one it sleeps to wakes it
 * (rt_unlock), as when it sleeps alone. */
uint64_t rt_svc_wake_at(uint64_t now, uint64_t d, bool *past_cover)
{
    uint64_t cover = rt_drive_cover(now, d);
    *past_cover = cover && d > cover;
    if (cover)
        return d > cover ? d : cover;
    return d <= now ? 0 : d;
}

void rt_kick(int proc)
{
    struct rt_proc *p = &rt.sh->procs[proc];
    if (p->kicked)
        return;
    p->kicked = true;
    atomic_fetch_add(&p->futex, 1);
    syscall(SYS_futex, &p->futex, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void rt_svc_reap_soon(void)
{
    /* Asleep until a deadline past the next check (or none: it slept
     * alone): it would never look at the new slot's process. */
    if (rt.started && rt.me >= 0 && rt.svc_sleep_until > rt_now() + REAP_EVERY_NS) {
        rt.svc_sleep_until = 0;
        rt_kick(rt.me);
    }
}

static void *svc_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-svc");
    rt_t_runtime = true;
    uint64_t next_reap = 0;
    rt_lock();
    while (!rt.svc_stop && rt.me >= 0) {
        struct rt_proc *p = &rt.sh->procs[rt.me];
        uint32_t v = atomic_load(&p->futex);
        p->kicked = false;
        rt_relay_remote();
        uint64_t now = rt_now();
        uint64_t d = tcpsm_stack_next_deadline(rt.sh->st);
        /* Covered: the application's threads run them (rt_svc_wake_at). */
        bool past_cover;
        bool cover = rt_drive_cover(now, d) != 0;
        d = rt_svc_wake_at(now, d, &past_cover);
        if (d == 0) {
            tcpsm_stack_timers(rt.sh->st, now);
            continue;
        }
        if (rt_others_attached()) {
            if (now >= next_reap) {
                rt_reap();
                next_reap = now + REAP_EVERY_NS;
            }
            if (d > next_reap)
                d = next_reap;
        }
        uint64_t share_next = rt_share_poll(now);       /* TCPSM_SHARE takeover */
        uint64_t bound = share_next < next_reap || !rt_others_attached() ? share_next : next_reap;
        if (d > share_next)
            d = share_next;
        rt.svc_sleep_until = d;         /* under the lock: rt_unlock reads it */
        rt_unlock();
        for (;;) {
            d = rt_rx_watch_bound(d);
            struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u),
                                   .tv_nsec = (long)(d % 1000000000u) };
            /* FUTEX_WAIT_BITSET: an absolute CLOCK_MONOTONIC deadline. Not
             * private: the word is shared with the other processes. */
            syscall(SYS_futex, &p->futex, FUTEX_WAIT_BITSET, v, d == UINT64_MAX ? NULL : &ts,
                    NULL, FUTEX_BITSET_MATCH_ANY);
            rt_rx_watch_check(rt_now());
            /* Not kicked, at the end of a cover (not at a deadline past
             * it: the core is looked at again, under the lock), and an
             * application thread came back meanwhile (it ran what was due): sleep on, without
             * the lock, which that thread likely holds (a wake-up here
             * every RT_DRIVE_PARK_NS while it drives, nothing more). */
            if (!cover || past_cover || atomic_load(&p->futex) != v)
                break;
            now = rt_now();
            uint64_t last = atomic_load_explicit(&rt.drive_last, memory_order_relaxed);
            if (!last || (int64_t)(now - last) >= (int64_t)RT_DRIVE_PARK_NS ||
                last + RT_DRIVE_PARK_NS > bound)
                break;
            d = last + RT_DRIVE_PARK_NS;
        }
        /* Woken for a timer (not kicked: a kick may be another process's
         * relay, which needs the lock): with the lock held by an
         * application thread of this process, the holder runs the due
         * timers as it unlocks, and this thread looks again a park later
         * rather than sleep on the lock. Bounded: after SVC_DEFER_MAX
         * deferrals in a row it waits for the lock. */
        bool locked = false;
        for (unsigned n = 0; n < SVC_DEFER_MAX && atomic_load(&p->futex) == v; n++) {
            if (rt_svc_lock_or_defer()) {
                locked = true;
                break;
            }
            /* within the holder's cover: not kicked */
            uint64_t until = rt_rx_watch_bound(rt_now() + RT_DRIVE_PARK_NS);
            struct timespec ts = { .tv_sec = (time_t)(until / 1000000000u),
                                   .tv_nsec = (long)(until % 1000000000u) };
            syscall(SYS_futex, &p->futex, FUTEX_WAIT_BITSET, v, &ts, NULL,
                    FUTEX_BITSET_MATCH_ANY);
            rt_rx_watch_check(rt_now());
        }
        if (!locked)
            rt_lock();
        rt.svc_sleep_until = 0;
    }
    rt_unlock();
    return NULL;
}

/* The spawner waits until the thread runs its own code: a fork() right
 * after (a server forking workers after listen(), which started the
 * runtime) must not copy a thread caught in its start-up, inside the
 * allocator (ASan's thread set-up callocs; its allocator, unlike glibc's
 * malloc, takes no fork handlers on this toolchain): the child inherits
 * that lock held, its own runtime threads hang in their set-up, and its
 * exit in joining them (test_epoll_fork under SAN=1, 2 runs in 15). */
struct spawn {
    void *(*fn)(void *);
    sem_t up;
};

static void *spawned(void *arg)
{
    struct spawn *sp = arg;
    void *(*fn)(void *) = sp->fn;
    sem_post(&sp->up);                  /* sp (the spawner's) is not touched after */
    return fn(NULL);
}

int rt_thread_spawn(pthread_t *t, void *(*fn)(void *))
{
    struct spawn sp = { .fn = fn };
    if (sem_init(&sp.up, 0, 0) != 0)
        return errno;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(t, NULL, spawned, &sp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e == 0)
        while (sem_wait(&sp.up) != 0 && errno == EINTR)
            ;
    sem_destroy(&sp.up);
    return e;
}

int rt_threads_start(void)
{
    rt.svc_stop = false;
    rt.svc_sleep_until = 0;
    atomic_store(&rt.rx_watch, false);
    atomic_store(&rt.rx_stop, false);

    long efd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return -errno;
    rt.rx_stop_efd = (int)efd;
    rt_fd_own(rt.rx_stop_efd);

    int e = rt_thread_spawn(&rt.rx_thr, rx_main);
    if (e == 0) {
        e = rt_thread_spawn(&rt.svc_thr, svc_main);
        if (e != 0) {
            uint64_t one = 1;
            atomic_store(&rt.rx_stop, true);
            syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
            pthread_join(rt.rx_thr, NULL);
        }
    }
    if (e != 0) {
        rt_fd_disown(rt.rx_stop_efd);
        syscall(SYS_close, rt.rx_stop_efd);
        rt.rx_stop_efd = -1;
        return -e;
    }
    rt.sh->procs[rt.me].driving = true;
    return 0;
}

void rt_threads_stop(void)
{
    rt_lock();
    rt.svc_stop = true;
    if (rt.me >= 0)
        rt_kick(rt.me);
    rt_unlock();
    uint64_t one = 1;
    atomic_store(&rt.rx_stop, true);
    syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
    /* The service thread also stops when this process's slot is gone
     * (rt.me < 0): it cannot be kicked then, so its sleep is bounded by the
     * deadline or the reap interval; a futex wake on the old word ends it. */
    pthread_join(rt.svc_thr, NULL);
    pthread_join(rt.rx_thr, NULL);
    rt_fd_disown(rt.rx_stop_efd);
    syscall(SYS_close, rt.rx_stop_efd);
    rt.rx_stop_efd = -1;
}

void rt_fork_child_reset(int parent)
{
    (void)parent;
    rt_wait_fork_child();
    /* The parent's threads' descriptors: the child makes its own. */
    if (rt.rx_stop_efd >= 0) {
        rt_fd_disown(rt.rx_stop_efd);
        syscall(SYS_close, rt.rx_stop_efd);
        rt.rx_stop_efd = -1;
    }
    /* The parent's leader and followers are its threads. */
    rt.leader = rt.followers = NULL;
    atomic_store(&rt.lead_active, false);
    atomic_store(&rt.rx_watch, false);         /* the parent's receive thread's */
    atomic_store(&rt.rx_deferred, false);      /* the parent's receive thread's */
    atomic_store(&rt.svc_deferred, false);     /* and service thread's */
    atomic_store(&rt.owner_app, false);
    rt.svc_sleep_until = 0;
    rt.need_threads = rt.started;
    rt_ctl_fork_child();
    rt_share_fork_child();
    /* One capture and one trace per file (and the tcpsm capture clients):
     * they stay with the parent. */
    rt.np.tap = NULL;
    if (rt.pcap) {
        rt_fd_disown(pcap_writer_fd(rt.pcap));
        syscall(SYS_close, pcap_writer_fd(rt.pcap));
        rt.pcap = NULL;
    }
    if (rt.trace && trace_log_fd(rt.trace) > 2) {
        rt_fd_disown(trace_log_fd(rt.trace));
        syscall(SYS_close, trace_log_fd(rt.trace));
    }
    rt.trace = NULL;
}
