/* The receive thread and the timer thread.
 *
 * Receive: blocks in ppoll on the packet socket (and a stop eventfd), takes
 * up to NETDEV_PACKET_BATCH frames per recvmmsg, and hands the whole batch
 * to the core under one lock hold; wake-ups happen inside that hold.
 * Timers: sleeps on a CLOCK_MONOTONIC condition variable until the core's
 * next deadline; rt_unlock() signals it when an entry point moved the
 * deadline earlier. Both threads block every signal, so the application's
 * signal handlers run on its own threads (and interrupt its own waits). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* Service rounds (each up to 4 batches) before going back to ppoll, so stop requests are seen. */
#define RX_BATCHES_PER_WAKE 4
/* Link errors logged per process: a flapping link must not flood stderr. */
#define RX_WARN_MAX 10

/* The receive thread stays off the link while an application thread
 * polls it (runtime_wait.c, leader) and for this long after the last one
 * left, so that a thread that comes straight back is not raced for its
 * frames; past it, frames to idle sockets wait at most this long. */
#define RX_PARK_NS (1000u * 1000u)

static void *rx_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-rx");
    unsigned warnings = 0;
    struct pollfd p[2] = {
        { .fd = rt.np.fd, .events = POLLIN },
        { .fd = rt.rx_stop_efd, .events = POLLIN },
    };
    for (;;) {
        uint64_t now = rt_now();
        uint64_t last = atomic_load_explicit(&rt.lead_last, memory_order_relaxed);
        bool park = atomic_load_explicit(&rt.lead_active, memory_order_relaxed) ||
                    (last && now - last < RX_PARK_NS);
        struct timespec ts = { 0, RX_PARK_NS };
        if (park && last && now - last < RX_PARK_NS)
            ts.tv_nsec = (long)(RX_PARK_NS - (now - last));
        p[0].fd = park ? -1 : rt.np.fd;
        long r = syscall(SYS_ppoll, p, 2, park ? &ts : NULL, NULL, 8);
        if (r < 0 && errno != EINTR) {
            tcpsm_log(TCPSM_LOG_ERROR, "receive thread: ppoll: %s", strerror(errno));
            return NULL;
        }
        if (r <= 0)
            continue;
        if (p[1].revents)
            return NULL;
        if (p[0].revents & POLLERR) {
            /* A pending socket error (e.g. ENETDOWN): read it to clear it. */
            int e = 0;
            socklen_t el = sizeof(e);
            syscall(SYS_getsockopt, rt.np.fd, SOL_SOCKET, SO_ERROR, &e, &el);
            if (warnings < RX_WARN_MAX && ++warnings)
                tcpsm_log(TCPSM_LOG_WARN, "link %s: %s", rt.set.ifname, strerror(e));
        }
        /* Receive under the lock: the link's buffers are shared with the
         * leaders (an application thread that leads now takes it from here). */
        for (int b = 0; b < RX_BATCHES_PER_WAKE; b++) {
            rt_lock();
            unsigned n = rt.down || rt.leader ? 0 : rt_link_service();
            rt_unlock();
            if (n == 0)
                break;
        }
    }
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-timer");
    pthread_mutex_lock(&rt.lock);
    while (!rt.timer_stop) {
        uint64_t now = rt_now();
        uint64_t d = tcpsm_stack_next_deadline(rt.st);
        if (d <= now) {
            tcpsm_stack_timers(rt.st, now);
            continue;
        }
        rt.timer_sleep_until = d;
        if (d == UINT64_MAX) {
            pthread_cond_wait(&rt.timer_cond, &rt.lock);
        } else {
            struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u),
                                   .tv_nsec = (long)(d % 1000000000u) };
            pthread_cond_timedwait(&rt.timer_cond, &rt.lock, &ts);
        }
        rt.timer_sleep_until = 0;
    }
    pthread_mutex_unlock(&rt.lock);
    return NULL;
}

int rt_threads_start(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt.timer_cond, &ca);
    pthread_condattr_destroy(&ca);
    rt.timer_stop = false;
    rt.timer_sleep_until = 0;

    long efd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        return -errno;
    rt.rx_stop_efd = (int)efd;
    rt_fd_own(rt.rx_stop_efd);

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&rt.rx_thr, NULL, rx_main, NULL);
    if (e == 0) {
        e = pthread_create(&rt.timer_thr, NULL, timer_main, NULL);
        if (e != 0) {
            uint64_t one = 1;
            syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
            pthread_join(rt.rx_thr, NULL);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        rt_fd_disown(rt.rx_stop_efd);
        syscall(SYS_close, rt.rx_stop_efd);
        rt.rx_stop_efd = -1;
        return -e;
    }
    return 0;
}

void rt_threads_stop(void)
{
    pthread_mutex_lock(&rt.lock);
    rt.timer_stop = true;
    pthread_cond_signal(&rt.timer_cond);
    pthread_mutex_unlock(&rt.lock);
    uint64_t one = 1;
    syscall(SYS_write, rt.rx_stop_efd, &one, sizeof(one));
    pthread_join(rt.timer_thr, NULL);
    pthread_join(rt.rx_thr, NULL);
    rt_fd_disown(rt.rx_stop_efd);
    syscall(SYS_close, rt.rx_stop_efd);
    rt.rx_stop_efd = -1;
}
