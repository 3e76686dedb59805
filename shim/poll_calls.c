/* poll, ppoll, select, pselect over sets that mix stack sockets and kernel
 * fds. With no stack socket in the set: the real call, untouched. Otherwise
 * (registration first, so no wake-up is lost):
 *   efd = tcpsm_poller_begin()
 *   loop: stack readiness from tcpsm_poll; kernel readiness from a real
 *         poll with timeout 0; anything ready or time up -> done;
 *         else sleep in a real ppoll over the kernel fds + efd.
 *   tcpsm_poller_end()
 * efd readable: tcpsm_poller_begin() again drains and re-arms it.
 * A signal during the sleep gives -1/EINTR, as the kernel's poll does. */
#include "shim.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

extern void __chk_fail(void) __attribute__((noreturn));

#define SMALL 64

/* Does the set hold a stack socket? Fills socks[i] (referenced) if so. */
static bool find_stack(struct pollfd *fds, nfds_t n, struct shim_sock **socks)
{
    bool any = false;
    for (nfds_t i = 0; i < n; i++) {
        socks[i] = fds[i].fd >= 0 ? shim_stack_lookup(fds[i].fd) : NULL;
        any |= socks[i] != NULL;
        if (!socks[i] && fds[i].fd >= 0 && shim_ep_at(fds[i].fd))
            shim_epoll_expose(fds[i].fd);       /* an epoll fd of ours, polled */
    }
    return any;
}

/* tmo_ns < 0: no timeout. Returns the number of ready entries or -errno.
 * The kernel part: every kernel fd, plus the placeholder of each stack
 * listener that also listens in the kernel (its POLLIN is merged in). */
static int mixed_poll(struct pollfd *fds, nfds_t n, struct shim_sock **socks, int64_t tmo_ns,
                      const sigset_t *mask, unsigned seq0)
{
    struct pollfd kbuf[SMALL + 2];
    nfds_t kidx_buf[SMALL];
    struct pollfd *k = kbuf;
    nfds_t *kidx = kidx_buf;
    if (n > SMALL) {
        k = malloc((n + 2) * sizeof(*k));
        kidx = malloc(n * sizeof(*kidx));
        if (!k || !kidx) {
            free(k);
            free(kidx);
            return -ENOMEM;
        }
    }
    nfds_t nk = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (!socks[i]) {
            k[nk] = fds[i];
            kidx[nk++] = i;
        } else if (atomic_load(&socks[i]->klisten)) {
            k[nk].fd = fds[i].fd;
            k[nk].events = POLLIN;
            kidx[nk++] = i;
        }
    }
    int efd = tcpsm_poller_begin();
    int ret;
    if (efd < 0) {
        ret = efd;
        goto out;
    }
    int64_t deadline = tmo_ns >= 0 ? shim_now_ns() + tmo_ns : -1;
    for (;;) {
        ret = 0;
        for (nfds_t i = 0; i < n; i++) {
            if (!socks[i])
                continue;
            unsigned m = shim_stack_poll(socks[i]);
            fds[i].revents = (short)(m & ((unsigned short)fds[i].events | POLLERR | POLLHUP));
        }
        if (nk > 0) {
            struct timespec zero = { 0, 0 };
            int r = REAL(ppoll)(k, nk, &zero, mask);
            if (r < 0) {
                ret = -errno;
                break;
            }
            for (nfds_t j = 0; j < nk; j++) {
                nfds_t i = kidx[j];
                if (!socks[i])
                    fds[i].revents = k[j].revents;
                else if (k[j].revents & POLLIN)
                    fds[i].revents |= (short)(fds[i].events & (POLLIN | POLLRDNORM));
            }
        }
        for (nfds_t i = 0; i < n; i++)
            ret += fds[i].fd >= 0 && fds[i].revents != 0;
        int64_t left = deadline < 0 ? -1 : deadline - shim_now_ns();
        if (ret == 0 && deadline >= 0 && left <= 0)
            tcpsm_rt_flush_output();    /* a loop that finds nothing to do (a busy poller) */
        if (ret > 0 || (deadline >= 0 && left <= 0))
            break;
        if (tcpsm_sigseq() != seq0) {
            ret = -EINTR;       /* a handler ran inside this call: the kernel's poll gives EINTR */
            break;
        }
        k[nk].fd = efd;
        k[nk].events = POLLIN;
        k[nk].revents = 0;
        /* Whoever waits drives: this thread may poll the link for the
         * stack (its sleep then ends at the stack's next timer, too). */
        int64_t tmo = left;
        k[nk + 1].fd = tcpsm_sleep_begin(&tmo);
        k[nk + 1].events = POLLIN;
        k[nk + 1].revents = 0;
        struct timespec ts, *tsp = NULL;
        if (tmo >= 0) {
            ts.tv_sec = tmo / 1000000000;
            ts.tv_nsec = tmo % 1000000000;
            tsp = &ts;
        }
        /* Busy polling (TCPSM_SPIN_US), as in epoll_wait: the leader looks
         * without sleeping first (the kernel fds too, every 16th look). */
        int r = k[nk + 1].fd >= 0 ? tcpsm_spin(k, nk + 2, deadline < 0 ? UINT64_MAX
                                                                       : (uint64_t)deadline) : 0;
        if (r < 0)
            r = 0;              /* a frame in the ring: the ppoll below returns at once */
        if (r == 0)
            r = REAL(ppoll)(k, nk + 2, tsp, mask);
        tcpsm_sleep_end(r > 0 && (k[nk + 1].revents & (POLLIN | POLLERR)));
        if (r < 0) {
            ret = -errno;
            break;
        }
        /* The runtime coalesces wake-ups until the eventfd is drained by
         * tcpsm_poller_begin (a repeated begin only re-arms). */
        if (k[nk].revents & POLLIN)
            tcpsm_poller_begin();
    }
    tcpsm_poller_end();
out:
    if (k != kbuf) {
        free(k);
        free(kidx);
    }
    return ret;
}

static void put_all(struct shim_sock **socks, nfds_t n)
{
    for (nfds_t i = n; i-- > 0;)        /* last taken first: inflight.c's records are a stack */
        if (socks[i])
            shim_sock_put(socks[i]);
}

/* A timeout in nanoseconds, or -1 (none) when it does not fit in 63 bits
 * (about 292 years): Linux saturates such a timeout, which is as good as
 * infinite (poll_select_set_timeout, timespec64_add_safe). sec and nsec
 * are checked non-negative, nsec below one second, by the caller. */
static int64_t ts_ns(int64_t sec, int64_t nsec)
{
    if (sec > (INT64_MAX - nsec) / 1000000000)
        return -1;
    return sec * 1000000000 + nsec;
}

static int do_poll(struct pollfd *fds, nfds_t n, int64_t tmo_ns, const struct timespec *ts,
                   const sigset_t *mask, int ms, bool is_ppoll)
{
    /* From here a signal handler that runs makes the call return EINTR. */
    unsigned seq0 = tcpsm_sigseq();
    if (!atomic_load_explicit(&shim_on, memory_order_relaxed) || n == 0 || !fds)
        goto passthrough;
    struct shim_sock *sbuf[SMALL];
    struct shim_sock **socks = n > SMALL ? calloc(n, sizeof(*socks)) : sbuf;
    if (!socks) {
        errno = ENOMEM;
        return -1;
    }
    if (!find_stack(fds, n, socks)) {
        if (socks != sbuf)
            free(socks);
        goto passthrough;
    }
    int r = mixed_poll(fds, n, socks, tmo_ns, mask, seq0);
    put_all(socks, n);
    if (socks != sbuf)
        free(socks);
    return (int)shim_ret(r);
passthrough:
    tcpsm_rt_flush_output();    /* a wait: what earlier calls left goes now */
    return is_ppoll ? REAL(ppoll)(fds, n, ts, mask) : REAL(poll)(fds, n, ms);
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
    return do_poll(fds, n, timeout < 0 ? -1 : (int64_t)timeout * 1000000, NULL, NULL, timeout, false);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
    if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)) {
        errno = EINVAL;
        return -1;
    }
    int64_t t = ts ? ts_ns(ts->tv_sec, ts->tv_nsec) : -1;
    return do_poll(fds, n, t, ts, mask, 0, true);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n)
        __chk_fail();
    return poll(fds, n, timeout);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                       const sigset_t *mask, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n)
        __chk_fail();
    return ppoll(fds, n, ts, mask);
}

/* ------------------------------------------------------------ select */

#define NBITS (8 * sizeof(unsigned long))
static bool bit(const fd_set *s, int fd)
{
    return s && (((const unsigned long *)s)[fd / NBITS] >> (fd % NBITS)) & 1;
}
static void setbit(fd_set *s, int fd)
{
    ((unsigned long *)s)[fd / NBITS] |= 1UL << (fd % NBITS);
}
static void clear_set(fd_set *s, int nfds)
{
    if (s)
        memset(s, 0, ((size_t)nfds + NBITS - 1) / NBITS * sizeof(unsigned long));
}

/* select in terms of poll, with Linux's POLLIN_SET/POLLOUT_SET/POLLEX_SET. */
static int mixed_select(int nfds, fd_set *r, fd_set *w, fd_set *e, int64_t tmo_ns,
                        const sigset_t *mask, bool *used)
{
    unsigned seq0 = tcpsm_sigseq();
    *used = false;
    if (!atomic_load_explicit(&shim_on, memory_order_relaxed) || nfds <= 0)
        return 0;
    nfds_t n = 0;
    bool any = false;
    for (int fd = 0; fd < nfds; fd++) {
        if (bit(r, fd) || bit(w, fd) || bit(e, fd)) {
            n++;
            if (shim_ep_at(fd))
                shim_epoll_expose(fd);  /* an epoll fd of ours, selected */
            if (!any && shim_fd_has_sock(fd)) {
                struct shim_sock *s = shim_stack_lookup(fd);
                if (s) {
                    any = true;
                    shim_sock_put(s);
                }
            }
        }
    }
    if (!any)
        return 0;
    *used = true;
    struct pollfd pbuf[SMALL];
    struct shim_sock *sbuf[SMALL];
    struct pollfd *p = pbuf;
    struct shim_sock **socks = sbuf;
    if (n > SMALL) {
        p = calloc(n, sizeof(*p));
        socks = calloc(n, sizeof(*socks));
        if (!p || !socks) {
            free(p);
            free(socks);
            return -ENOMEM;
        }
    }
    memset(p, 0, n * sizeof(*p));
    nfds_t i = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = (short)((bit(r, fd) ? POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR : 0) |
                           (bit(w, fd) ? POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR : 0) |
                           (bit(e, fd) ? POLLPRI : 0));
        if (ev) {
            p[i].fd = fd;
            p[i++].events = ev;
        }
    }
    find_stack(p, n, socks);
    int ret = mixed_poll(p, n, socks, tmo_ns, mask, seq0);
    put_all(socks, n);
    if (ret >= 0) {
        for (i = 0; i < n; i++)
            if (p[i].revents & POLLNVAL)
                ret = -EBADF;
    }
    if (ret >= 0) {
        clear_set(r, nfds);
        clear_set(w, nfds);
        clear_set(e, nfds);
        ret = 0;
        for (i = 0; i < n; i++) {
            short rv = p[i].revents;
            int fd = p[i].fd;
            if (r && (p[i].events & POLLIN) && (rv & (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR))) {
                setbit(r, fd);
                ret++;
            }
            if (w && (p[i].events & POLLOUT) && (rv & (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR))) {
                setbit(w, fd);
                ret++;
            }
            if (e && (p[i].events & POLLPRI) && (rv & POLLPRI)) {
                setbit(e, fd);
                ret++;
            }
        }
    }
    if (p != pbuf) {
        free(p);
        free(socks);
    }
    return ret;
}

EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    if (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
        errno = EINVAL;
        return -1;
    }
    /* Linux folds whole seconds of tv_usec into tv_sec (kern_select). */
    int64_t t = -1;
    if (tv) {
        int64_t sec = tv->tv_sec, extra = tv->tv_usec / 1000000;
        t = sec > INT64_MAX - extra ? -1 : ts_ns(sec + extra, (tv->tv_usec % 1000000) * 1000);
    }
    int64_t start = t >= 0 ? shim_now_ns() : 0;
    bool used;
    int ret = mixed_select(nfds, r, w, e, t, NULL, &used);
    if (!used) {
        tcpsm_rt_flush_output();
        return REAL(select)(nfds, r, w, e, tv);
    }
    if (tv && t >= 0) {   /* Linux writes back the time not slept (an "infinite" one stays) */
        int64_t left = t - (shim_now_ns() - start);
        if (left < 0)
            left = 0;
        tv->tv_sec = left / 1000000000;
        tv->tv_usec = (left % 1000000000) / 1000;
    }
    return (int)shim_ret(ret);
}

EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                   const sigset_t *mask)
{
    if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)) {
        errno = EINVAL;
        return -1;
    }
    int64_t t = ts ? ts_ns(ts->tv_sec, ts->tv_nsec) : -1;
    bool used;
    int ret = mixed_select(nfds, r, w, e, t, mask, &used);
    if (!used) {
        tcpsm_rt_flush_output();
        return REAL(pselect)(nfds, r, w, e, ts, mask);
    }
    return (int)shim_ret(ret);
}
