/* Each process's two threads: the receive thread and the service thread.
 *
 * Receive: sleeps in epoll_wait on the packet socket (and a stop eventfd),
 * takes up to NETDEV_PACKET_BATCH frames per recvmmsg, and hands the whole
 * batch to the core under one lock hold; wake-ups happen inside that hold.
 * After fork several processes read the same packet socket: it is in each
 * process's epoll set with EPOLLEXCLUSIVE, so a frame wakes one of them.
 * Any process may process any frame: the stack is shared.
 *
 * Service: sleeps on this process's futex word in the shared region until
 * the core's next deadline; then runs the due timers. It is woken early
 * when an entry point moved the deadline earlier (rt_unlock), or when
 * another process signalled a waiter of this one (it writes that waiter's
 * eventfd: rt_relay_remote). With other processes attached it also looks,
 * once a second, for processes that died without leaving (rt_reap).
 *
 * Both threads block every signal, so the application's signal handlers
 * run on its own threads (and interrupt its own waits). */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "runtime_ops.h"

/* Batches handled before going back to epoll_wait, so stop requests are seen. */
#define RX_BATCHES_PER_WAKE 16
/* Link errors logged per process: a flapping link must not flood stderr. */
#define RX_WARN_MAX 10
/* How often a process looks for others that died, when there are others. */
#define REAP_EVERY_NS 1000000000ull

static void *rx_main(void *arg)
{
    int ep = (int)(intptr_t)arg;
    pthread_setname_np(pthread_self(), "tcpsm-rx");
    struct tcpsm_frame frames[NETDEV_PACKET_BATCH];
    unsigned warnings = 0;
    for (;;) {
        struct epoll_event ev[2];
        long r = syscall(SYS_epoll_pwait, ep, ev, 2, -1, NULL, 8);
        if (r < 0 && errno != EINTR) {
            tcpsm_log(TCPSM_LOG_ERROR, "receive thread: epoll_wait: %s", strerror(errno));
            break;
        }
        bool stop = false, in = false, err = false;
        for (long i = 0; i < r; i++) {
            if (ev[i].data.u32 == 1)
                stop = true;
            else {
                in = true;
                err = err || (ev[i].events & EPOLLERR);
            }
        }
        if (stop)
            break;
        if (!in)
            continue;
        if (err) {
            /* A pending socket error (e.g. ENETDOWN): read it to clear it. */
            int e = 0;
            socklen_t el = sizeof(e);
            syscall(SYS_getsockopt, rt.np.fd, SOL_SOCKET, SO_ERROR, &e, &el);
            if (warnings < RX_WARN_MAX && ++warnings)
                tcpsm_log(TCPSM_LOG_WARN, "link %s: %s", rt.set.ifname, strerror(e));
        }
        for (int b = 0; b < RX_BATCHES_PER_WAKE; b++) {
            int n = netdev_packet_recv(&rt.np, frames, NETDEV_PACKET_BATCH);
            if (n < 0) {
                if (n != -EAGAIN && warnings < RX_WARN_MAX && ++warnings)
                    tcpsm_log(TCPSM_LOG_WARN, "link %s: receive: %s", rt.set.ifname,
                              strerror(-n));
                break;
            }
            if (n == 0)
                break;
            rt_lock();
            if (!rt.down)
                tcpsm_stack_input(rt.sh->st, frames, (unsigned)n, rt_now());
            rt_unlock();
        }
    }
    syscall(SYS_close, ep);
    return NULL;
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

static void *svc_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-svc");
    uint64_t next_reap = 0;
    rt_lock();
    while (!rt.svc_stop && rt.me >= 0) {
        struct rt_proc *p = &rt.sh->procs[rt.me];
        uint32_t v = atomic_load(&p->futex);
        p->kicked = false;
        rt_relay_remote();
        if (rt.sh->deferred && rt_native())
            rt_run_deferred();
        uint64_t now = rt_now();
        uint64_t d = tcpsm_stack_next_deadline(rt.sh->st);
        if (d <= now) {
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
        rt.svc_sleep_until = d;
        rt_unlock();
        struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u),
                               .tv_nsec = (long)(d % 1000000000u) };
        /* FUTEX_WAIT_BITSET: an absolute CLOCK_MONOTONIC deadline. Not
         * private: the word is shared with the other processes. */
        syscall(SYS_futex, &p->futex, FUTEX_WAIT_BITSET, v, d == UINT64_MAX ? NULL : &ts, NULL,
                FUTEX_BITSET_MATCH_ANY);
        rt_lock();
        rt.svc_sleep_until = 0;
    }
    rt_unlock();
    return NULL;
}

int rt_threads_start(void)
{
    rt.svc_stop = false;
    rt.svc_sleep_until = 0;

    long efd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return -errno;
    long ep = syscall(SYS_epoll_create1, EPOLL_CLOEXEC);
    if (ep < 0) {
        int e = errno;
        syscall(SYS_close, efd);
        return -e;
    }
    struct epoll_event pev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 0 };
    struct epoll_event sev = { .events = EPOLLIN, .data.u32 = 1 };
    if (syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, rt.np.fd, &pev) < 0 ||
        syscall(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, efd, &sev) < 0) {
        int e = errno;
        syscall(SYS_close, efd);
        syscall(SYS_close, ep);
        return -e;
    }
    rt.rx_stop_efd = (int)efd;
    rt_fd_own(rt.rx_stop_efd);
    rt_fd_own((int)ep);

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&rt.rx_thr, NULL, rx_main, (void *)(intptr_t)ep);
    if (e == 0) {
        e = pthread_create(&rt.svc_thr, NULL, svc_main, NULL);
        if (e != 0) {
            uint64_t one = 1;
            syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
            pthread_join(rt.rx_thr, NULL);
        }
    } else {
        syscall(SYS_close, ep);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        rt_fd_disown((int)ep);
        rt_fd_disown(rt.rx_stop_efd);
        syscall(SYS_close, rt.rx_stop_efd);
        rt.rx_stop_efd = -1;
        return -e;
    }
    rt.rx_ep = (int)ep;
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
    syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
    /* The service thread also stops when this process's slot is gone
     * (rt.me < 0): it cannot be kicked then, so its sleep is bounded by the
     * deadline or the reap interval; a futex wake on the old word ends it. */
    pthread_join(rt.svc_thr, NULL);
    pthread_join(rt.rx_thr, NULL);
    rt_fd_disown(rt.rx_ep);
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
        rt_fd_disown(rt.rx_ep);
        syscall(SYS_close, rt.rx_ep);
    }
    rt.svc_sleep_until = 0;
    rt.need_threads = rt.started;
    rt_ctl_fork_child();
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
