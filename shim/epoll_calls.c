/* epoll over stack sockets. The kernel epoll fd stays real and holds the
 * kernel fds; stack (and not yet decided) sockets are never added to it.
 * Per epoll instance the shim keeps the interest items of those sockets:
 *   STACK sockets: a runtime item (tcpsm_ep_*, runtime_epoll.c) that the
 *     stack queues on the instance's ready list when an event it cares
 *     about happens (Linux ep_poll_callback): level-triggered, EPOLLET (an
 *     edge per event: each arrival, each new connection), EPOLLONESHOT,
 *     EPOLLEXCLUSIVE and EPOLLRDHUP as Linux; epoll_wait costs O(ready);
 *   UNDECIDED sockets (no stack socket yet: they poll as the placeholder,
 *     always HUP): looked at on each wait until connect/listen makes them
 *     the stack's (shim_epoll_attach) or the kernel's (hand-over).
 * The runtime instance's eventfd, readable while its ready list is
 * non-empty, sits in the real epoll set under a key (ep_key) that no
 * caller sees: epoll_wait sleeps in the kernel's epoll_wait alone, an
 * epoll_ctl from another thread wakes it, and the epoll fd nested in
 * another epoll set, poll or select reports stack readiness there.
 * Items hold a reference on their socket object: an ADD racing close() of
 * the same fd either fails with EBADF or is removed by that close.
 * For a stack socket the runtime's item is the truth, found by (instance,
 * socket, fd) in any process holding the instance (its maker and the
 * children forked after, which may all change it, as on Linux); the record
 * here only holds the socket object. A record may outlive its runtime item
 * (another process deleted it, or the socket's last reference elsewhere
 * went) and an item may have no record here (added by another process):
 * epoll_ctl on a stack socket asks the runtime, and closing this process's
 * last fd on a socket drops only the records (the item goes with the
 * socket's last reference in any process, Linux's eventpoll_release).
 * Lock order: ep_mu, then the stack's. */
#include "shim.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "runtime_log.h"

#define EXPORT __attribute__((visibility("default")))

struct shim_epitem {
    struct shim_ep *ep;
    struct shim_sock *sock;     /* referenced */
    int fd;
    uint32_t events;
    epoll_data_t data;
    bool stack;                 /* the runtime has (had) an item: the socket is the stack's */
    bool armed;                 /* undecided only: EPOLLONESHOT */
    bool reported;              /* undecided only: EPOLLET edge given */
    struct shim_epitem *next, *prev;    /* in ep */
    struct shim_epitem *sk_next;        /* in sock->items */
};

struct shim_ep {
    int refs;                   /* fd numbers referring to it, and epoll_wait calls in it */
    int fd;                     /* the fd it was created as (a hint for the hand-over) */
    unsigned nitems, nundecided;
    struct shim_epitem *head, *tail;
    struct tcpsm_ep *rep;       /* the runtime instance: ready list and its eventfd */
    atomic_uint turn;           /* stack-first or kernel-first, alternating */
    /* The real set may hold fds other than the runtime eventfd (a kernel fd
     * was added, a socket handed over, a listener mirrored); never cleared,
     * as the kernel drops closed fds silently. While false, epoll_wait
     * does not ask the kernel's set unless it sleeps there. */
    atomic_bool kfds;
    atomic_bool exposed;        /* tcpsm_ep_expose done */
};

static pthread_mutex_t ep_mu = PTHREAD_MUTEX_INITIALIZER;

/* A signal handler that runs while this thread holds ep_mu and calls
 * epoll_ctl or close() on a stack socket would deadlock: handlers wait
 * until it is released (tcpsm_sig_hold, runtime_signal.c). */
static void ep_lock(void)
{
    tcpsm_sig_hold();
    pthread_mutex_lock(&ep_mu);
}

static void ep_unlock(void)
{
    pthread_mutex_unlock(&ep_mu);
    tcpsm_sig_release();
}
/* The real epoll set reports the runtime eventfd with this data: random
 * per process, so that no caller's own data can be taken for it. */
static uint64_t ep_key;

static void ep_link(struct shim_ep *ep, struct shim_epitem *it)
{
    it->prev = ep->tail;
    it->next = NULL;
    if (ep->tail)
        ep->tail->next = it;
    else
        ep->head = it;
    ep->tail = it;
    ep->nitems++;
}

static void ep_unlink(struct shim_ep *ep, struct shim_epitem *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        ep->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        ep->tail = it->prev;
    ep->nitems--;
}

static void sk_unlink(struct shim_epitem *it)
{
    struct shim_epitem **pp = &it->sock->items;
    while (*pp && *pp != it)
        pp = &(*pp)->sk_next;
    if (*pp)
        *pp = it->sk_next;
}

/* The record, unlinked everywhere and freed; ep_mu held. The runtime's
 * item is not touched (see the top). */
static void item_free(struct shim_epitem *it)
{
    ep_unlink(it->ep, it);
    sk_unlink(it);
    if (!it->stack)
        it->ep->nundecided--;
    shim_sock_unref(it->sock);
    free(it);
}

void shim_ep_ref(struct shim_ep *ep)
{
    ep_lock();
    ep->refs++;
    ep_unlock();
}

void shim_ep_unref(struct shim_ep *ep)
{
    ep_lock();
    if (--ep->refs == 0) {
        /* This process's last fd on it: the instance and its items go with
         * its last holder (a forked relative keeps them: Linux's open file
         * description lives on). */
        while (ep->head)
            item_free(ep->head);
        tcpsm_ep_free(ep->rep);
        free(ep);
    }
    ep_unlock();
}

void shim_epoll_forget(struct shim_sock *s)
{
    ep_lock();
    while (s->items)
        item_free(s->items);
    ep_unlock();
}

/* An fd number of ep's real epoll instance (the hint, else a table scan), -1 if none; ep_mu held. */
static int ep_real_fd(struct shim_ep *ep)
{
    for (int i = -1; i < shim_nslots; i++) {
        int epfd = i < 0 ? ep->fd : i;
        if (shim_ep_at(epfd) == ep)
            return epfd;
    }
    return -1;
}

/* Adds the item to the real epoll instance it belongs to; ep_mu held. */
static void item_to_kernel(struct shim_epitem *it, const char *why)
{
    int epfd = ep_real_fd(it->ep);
    if (epfd < 0)
        return;
    bool armed = it->stack ? true : it->armed;
    struct epoll_event ev = { .events = armed ? it->events : 0, .data = it->data };
    atomic_store(&it->ep->kfds, true);
    if (REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, it->fd, &ev) < 0)
        tcpsm_log(TCPSM_LOG_WARN, "epoll %s of fd %d failed: %s", why, it->fd, strerror(errno));
}

/* The socket went to the kernel: its interest items become real ones. */
void shim_epoll_handover(struct shim_sock *s)
{
    ep_lock();
    while (s->items) {
        struct shim_epitem *it = s->items;
        item_to_kernel(it, "hand-over");
        item_free(it);
    }
    ep_unlock();
}

/* Makes an undecided item the runtime's; ep_mu held. */
static int item_attach(struct shim_epitem *it)
{
    uint32_t events = it->events;
    if ((events & EPOLLONESHOT) && !it->armed)
        events &= ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP | EPOLLRDNORM | EPOLLWRNORM);
    int r = tcpsm_ep_add(it->ep->rep, it->sock->sk, it->fd, events, it->data.u64);
    if (r == 0 || r == -EEXIST) {
        it->stack = true;
        it->ep->nundecided--;
        r = 0;
    }
    return r;
}

/* s became the stack's (connect, listen): its items start hearing its events. */
void shim_epoll_attach(struct shim_sock *s)
{
    ep_lock();
    for (struct shim_epitem *it = s->items; it; it = it->sk_next)
        if (!it->stack && item_attach(it) < 0)
            tcpsm_log(TCPSM_LOG_WARN, "epoll: fd %d cannot be watched on the stack", it->fd);
    ep_unlock();
}

/* The kernel reports the placeholder's own (loopback) connections with the
 * item's data; the stack's are reported from the item as before. */
void shim_epoll_klisten(struct shim_sock *s)
{
    ep_lock();
    for (struct shim_epitem *it = s->items; it; it = it->sk_next)
        item_to_kernel(it, "mirror");
    ep_unlock();
}

/* The instance behind epfd. It stays valid only while ep_mu is held or a reference is:
 * another thread may close epfd at any time. */
static struct shim_ep *ep_get(int epfd)
{
    return shim_ep_at(epfd);
}

static int ep_new(int epfd)
{
    if (epfd < 0 || !atomic_load_explicit(&shim_on, memory_order_relaxed))
        return epfd;
    if (epfd >= shim_nslots)
        return epfd;            /* beyond the table: kernel fds only (a debug line at ctl) */
    int e = 0;
    struct shim_ep *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        e = ENOMEM;
        goto fail;
    }
    ep_lock();
    while (ep_key == 0 && getrandom(&ep_key, sizeof(ep_key), 0) != (ssize_t)sizeof(ep_key))
        ;
    ep_unlock();
    int r = tcpsm_ep_new(&ep->rep);
    if (r < 0) {
        e = -r;
        goto fail;
    }
    struct epoll_event kev = { .events = EPOLLIN, .data.u64 = ep_key };
    if (REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, tcpsm_ep_fd(ep->rep), &kev) < 0) {
        e = errno;
        goto fail;
    }
    ep->refs = 1;
    ep->fd = epfd;
    shim_fd_install_ep(epfd, ep);       /* drops a stale entry of an fd closed behind our back */
    return epfd;
fail:
    if (ep)
        tcpsm_ep_free(ep->rep);
    free(ep);
    REAL(close)(epfd);
    errno = e;
    return -1;
}

EXPORT int epoll_create(int size)
{
    return ep_new(REAL(epoll_create)(size));
}

EXPORT int epoll_create1(int flags)
{
    return ep_new(REAL(epoll_create1)(flags));
}

static struct shim_epitem *find_item(struct shim_ep *ep, struct shim_sock *s, int fd)
{
    for (struct shim_epitem *it = s->items; it; it = it->sk_next)
        if (it->ep == ep && it->fd == fd)
            return it;
    return NULL;
}

static int ctl_add(struct shim_ep *ep, struct shim_sock *s, int fd, struct epoll_event *ev)
{
    struct shim_epitem *old = find_item(ep, s, fd);
    if (old && !old->stack)
        return -EEXIST;
    /* Linux: EPOLLEXCLUSIVE takes no EPOLLONESHOT (nor any flag but wakeup/ET). */
    if ((ev->events & EPOLLEXCLUSIVE) && (ev->events & EPOLLONESHOT))
        return -EINVAL;
    if (old) {
        /* A record whose item another process may have deleted: the
         * runtime says whether it still exists. */
        int r = tcpsm_ep_add(ep->rep, s->sk, fd, ev->events, ev->data.u64);
        if (r == 0) {
            old->events = ev->events;
            old->data = ev->data;
        }
        return r;
    }
    /* close() of the last fd of s has begun (and forgets s's items under
     * ep_mu): an item added now would outlive it. */
    if (atomic_load(&s->fd_refs) == 0)
        return -EBADF;
    if ((int)ep->nitems >= shim_nslots)
        return -ENOSPC;
    struct shim_epitem *it = calloc(1, sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->ep = ep;
    it->sock = s;
    it->fd = fd;
    it->events = ev->events;
    it->data = ev->data;
    it->armed = true;
    if (shim_state(s) == SHIM_STACK) {
        int r = tcpsm_ep_add(ep->rep, s->sk, fd, ev->events, ev->data.u64);
        if (r < 0) {
            free(it);
            return r;
        }
        it->stack = true;
    } else {
        ep->nundecided++;
        tcpsm_ep_kick(ep->rep);         /* it polls as ready (HUP): wake a waiter to look */
    }
    atomic_fetch_add(&s->refs, 1);
    ep_link(ep, it);
    it->sk_next = s->items;
    s->items = it;
    /* connect/listen may have made it the stack's just now (before or after
     * the state check): shim_epoll_attach waits for ep_mu, so look again. */
    if (!it->stack && shim_state(s) == SHIM_STACK && s->sk)
        item_attach(it);
    return 0;
}

/* A kernel fd goes into the real set of epfd (if it is ours). */
static void note_kernel_fd(int epfd)
{
    if (!shim_ep_at(epfd))
        return;
    ep_lock();
    struct shim_ep *ep = ep_get(epfd);
    if (ep)
        atomic_store(&ep->kfds, true);
    ep_unlock();
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    struct shim_sock *s = shim_lookup(fd);
    if (!s) {
        if (op == EPOLL_CTL_ADD) {
            note_kernel_fd(epfd);
            shim_epoll_expose(fd);      /* one of our epoll fds nested in another set */
        }
        return REAL(epoll_ctl)(epfd, op, fd, ev);
    }
    int r = 0;
    ep_lock();
    struct shim_ep *ep = ep_get(epfd);
    if (shim_state(s) == SHIM_KERNEL) {
        if (ep && op == EPOLL_CTL_ADD)
            atomic_store(&ep->kfds, true);
        ep_unlock();
        shim_sock_put(s);
        return REAL(epoll_ctl)(epfd, op, fd, ev);
    }
    if (!ep) {
        /* EBADF for a closed epfd, EINVAL for an fd that is not (our) epoll. */
        r = REAL(fcntl)(epfd, F_GETFD) < 0 ? -EBADF : -EINVAL;
        if (r == -EINVAL && epfd >= shim_nslots)
            tcpsm_log(TCPSM_LOG_DEBUG, "epoll fd %d is beyond the fd table", epfd);
        goto out;
    }
    if (epfd == fd) {
        r = -EINVAL;
        goto out;
    }
    if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && !ev) {
        r = -EFAULT;
        goto out;
    }
    struct shim_epitem *it = find_item(ep, s, fd);
    switch (op) {
    case EPOLL_CTL_ADD:
        r = ctl_add(ep, s, fd, ev);
        break;
    case EPOLL_CTL_MOD:
        if (ev->events & EPOLLEXCLUSIVE) {
            r = -EINVAL;
            break;
        }
        if (shim_state(s) == SHIM_STACK && (!it || it->stack)) {
            /* The runtime's item, whichever process added it (EINVAL
             * for an EPOLLEXCLUSIVE one, ENOENT if none). */
            r = tcpsm_ep_mod(ep->rep, s->sk, fd, ev->events, ev->data.u64);
            if (r == 0 && it) {
                it->events = ev->events;
                it->data = ev->data;
            }
            break;
        }
        if (!it) {
            r = -ENOENT;
            break;
        }
        if (it->events & EPOLLEXCLUSIVE) {
            r = -EINVAL;
            break;
        }
        /* Like the kernel, MOD re-evaluates: a ready socket is reported again. */
        it->events = ev->events;
        it->data = ev->data;
        it->armed = true;
        it->reported = false;
        tcpsm_ep_kick(ep->rep);
        break;
    case EPOLL_CTL_DEL:
        if (shim_state(s) == SHIM_STACK && (!it || it->stack)) {
            r = tcpsm_ep_del(ep->rep, s->sk, fd);
            if (it)
                item_free(it);  /* its item is gone, here or by another process */
            break;
        }
        if (!it) {
            r = -ENOENT;
            break;
        }
        item_free(it);
        break;
    default:
        r = -EINVAL;
        break;
    }
    /* A listener that also listens in the kernel: mirror the change there
     * (errors only mean it was never mirrored). */
    if (r == 0 && atomic_load(&s->klisten)) {
        int e = errno;
        atomic_store(&ep->kfds, true);
        REAL(epoll_ctl)(epfd, op, fd, ev);
        errno = e;
    }
out:
    ep_unlock();
    shim_sock_put(s);
    return (int)shim_ret(r);
}

/* Undecided items ready now into ev[0..max) (the placeholder's readiness). */
static int collect_undecided(struct shim_ep *ep, struct epoll_event *ev, int max)
{
    int n = 0;
    ep_lock();
    for (struct shim_epitem *it = ep->head; it && ep->nundecided && n < max; it = it->next) {
        if (it->stack || !it->armed)
            continue;
        uint32_t want = (it->events & ~(uint32_t)(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE |
                                                  EPOLLWAKEUP)) | EPOLLERR | EPOLLHUP;
        uint32_t rev = shim_sock_poll(it->sock, it->fd) & want;
        if (!rev || ((it->events & EPOLLET) && it->reported))
            continue;
        it->reported = true;
        if (it->events & EPOLLONESHOT)
            it->armed = false;
        ev[n].events = rev;
        ev[n].data = it->data;
        n++;
    }
    ep_unlock();
    return n;
}

/* Drops the runtime eventfd's events from what the kernel returned. */
static int filter_key(struct epoll_event *ev, int k, bool *stack_ready)
{
    int j = 0;
    for (int i = 0; i < k; i++) {
        if (ev[i].data.u64 == ep_key) {
            *stack_ready = true;
            continue;
        }
        if (j != i)
            ev[j] = ev[i];
        j++;
    }
    return j;
}

/* An epoll fd of ours watched where the stack does not count sleepers
 * (another epoll set, poll, select, another process, an exec'd image). */
static void expose(struct shim_ep *ep)
{
    if (ep && ep->rep && !atomic_load_explicit(&ep->exposed, memory_order_relaxed)) {
        atomic_store(&ep->exposed, true);
        tcpsm_ep_expose(ep->rep);
    }
}

void shim_epoll_expose(int fd)
{
    if (!shim_ep_at(fd))
        return;
    ep_lock();
    expose(ep_get(fd));
    ep_unlock();
}

void shim_epoll_expose_all(void)
{
    int n = shim_nslots;
    for (int fd = 0; fd < n; fd++)
        if (shim_ep_at(fd))
            shim_epoll_expose(fd);
}

static int kernel_wait(int epfd, struct epoll_event *ev, int max, int ms, const sigset_t *mask,
                       bool *stack_ready)
{
    int k = REAL(epoll_pwait)(epfd, ev, max, ms, mask);
    if (k < 0)
        return -errno;
    return filter_key(ev, k, stack_ready);
}

static int do_wait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask,
                   bool pwait)
{
    unsigned seq0 = tcpsm_sigseq();     /* a handler from here on gives EINTR */
    ep_lock();
    struct shim_ep *ep = ep_get(epfd);
    bool empty = false;
    if (ep) {
        ep->refs++;     /* held while waiting: another thread may close epfd meanwhile */
        empty = ep->nitems == 0;
    }
    ep_unlock();
    if (!ep)
        goto passthrough;
    shim_inflight_ep(ep);       /* a siglongjmp out of the wait would leak the reference */
    int ret;
    if (max <= 0 || max > (int)(INT32_MAX / sizeof(struct epoll_event))) {
        ret = -EINVAL;
        goto out;
    }
    if (!ev) {
        ret = -EFAULT;
        goto out;
    }
    int64_t deadline = timeout >= 0 ? shim_now_ns() + (int64_t)timeout * 1000000 : -1;
    if (empty) {
        /* No stack socket in the set: the kernel's epoll_wait alone. The runtime eventfd in
         * the set wakes it if another thread adds a ready one meanwhile: then the full path. */
        if (tcpsm_sigseq() != seq0) {
            ret = -EINTR;
            goto out;
        }
        bool stack_ready = false;
        tcpsm_rt_flush_output();        /* a wait: what earlier calls left goes now */
        tcpsm_ep_ksleeping(ep->rep, 1);
        ret = kernel_wait(epfd, ev, max, timeout, mask, &stack_ready);
        tcpsm_ep_ksleeping(ep->rep, -1);
        if (ret != 0 || !stack_ready)
            goto out;
    }
    /* Registered as a poller: this thread may lead (poll the link) while it sleeps. */
    int efd = tcpsm_rt_enabled() ? tcpsm_poller_begin() : -1;
    for (;;) {
        int n = 0;
        bool stack_ready = false;
        /* Only the runtime eventfd in the real set: nothing to ask it (a system
         * call saved per wait); a sleep below still watches it. With a signal
         * mask the kernel is asked anyway: a signal it unblocks is delivered. */
        bool kfds = mask || atomic_load_explicit(&ep->kfds, memory_order_relaxed);
        bool kernel_first = kfds && (atomic_fetch_add(&ep->turn, 1) & 1) != 0;
        if (kernel_first) {
            n = kernel_wait(epfd, ev, max, 0, mask, &stack_ready);
            if (n < 0) {
                ret = n;
                break;
            }
        }
        if (ep->nundecided && n < max)
            n += collect_undecided(ep, ev + n, max - n);
        /* One collect, one pass: a level-triggered item goes back to the
         * ready list's tail as it is reported; a second pass in the same
         * call would report it twice (Linux ep_send_events). */
        if (n < max)
            n += tcpsm_ep_collect(ep->rep, ev + n, max - n);
        if (kfds && !kernel_first && n < max) {
            int k = kernel_wait(epfd, ev + n, max - n, 0, mask, &stack_ready);
            if (k < 0) {
                ret = k;
                break;
            }
            n += k;
        }
        int64_t left = deadline < 0 ? -1 : deadline - shim_now_ns();
        if (n == 0 && deadline >= 0 && left <= 0)
            tcpsm_rt_flush_output();    /* a loop that finds nothing to do (a busy poller) */
        if (n > 0 || (deadline >= 0 && left <= 0)) {
            ret = n;
            break;
        }
        if (tcpsm_sigseq() != seq0) {
            ret = -EINTR;       /* a handler ran inside this call: do not sleep through it */
            break;
        }
        /* Sleep in the kernel's epoll_wait: the runtime eventfd is in the set. */
        int ms = left < 0 ? -1 : (int)((left + 999999) / 1000000 > INT32_MAX ? INT32_MAX
                                                                             : (left + 999999) / 1000000);
        tcpsm_ep_sleeping(ep->rep, 1);
        int k;
        int64_t tmo = left;     /* a leader's sleep ends at the stack's next timer too */
        int lfd = efd >= 0 ? tcpsm_sleep_begin(&tmo) : -1;
        if (efd < 0) {
            k = kernel_wait(epfd, ev, max, ms, mask, &stack_ready);
        } else {
            /* The real epoll fd, this thread's eventfd (a hand-over of the
             * link, a signal handler) and, if it leads, the link itself. */
            struct pollfd p[3] = { { .fd = epfd, .events = POLLIN }, { .fd = efd, .events = POLLIN },
                                   { .fd = lfd, .events = POLLIN } };
            struct timespec ts, *tsp = NULL;
            if (tmo >= 0) {
                ts.tv_sec = tmo / 1000000000;
                ts.tv_nsec = tmo % 1000000000;
                tsp = &ts;
            }
            /* Busy polling (TCPSM_SPIN_US): the leader looks without sleeping
             * first; the ppoll below returns at once if anything came. */
            if (lfd >= 0)
                (void)tcpsm_spin(p, 3, deadline < 0 ? UINT64_MAX : (uint64_t)deadline);
            k = REAL(ppoll)(p, 3, tsp, mask);
            k = k < 0 ? -errno : 0;
            /* Awake, and collecting before it sleeps again: what the link
             * brings now needs no eventfd write for this thread. */
            tcpsm_ep_sleeping(ep->rep, -1);
            tcpsm_sleep_end(k == 0 && (p[2].revents & (POLLIN | POLLERR)));
            if (k == 0 && (p[1].revents & POLLIN))
                tcpsm_poller_begin();   /* drains the eventfd */
            if (k == 0 && (p[0].revents & POLLIN))
                k = kernel_wait(epfd, ev, max, 0, NULL, &stack_ready);
        }
        if (efd < 0)
            tcpsm_ep_sleeping(ep->rep, -1);
        if (k < 0) {
            ret = k;
            break;
        }
        if (k > 0) {
            ret = k + (k < max ? tcpsm_ep_collect(ep->rep, ev + k, max - k) : 0);
            break;
        }
    }
    if (efd >= 0)
        tcpsm_poller_end();
out:
    shim_inflight_ep_done(ep);
    shim_ep_unref(ep);
    return (int)shim_ret(ret);
passthrough:
    tcpsm_rt_flush_output();
    return pwait ? REAL(epoll_pwait)(epfd, ev, max, timeout, mask) : REAL(epoll_wait)(epfd, ev, max, timeout);
}

EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    return do_wait(epfd, ev, max, timeout, NULL, false);
}

EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask)
{
    return do_wait(epfd, ev, max, timeout, mask, true);
}

/* fork (shim.h): the epoll lock comes after table_mu and the socket locks. */
void shim_epoll_atfork_prepare(void)
{
    pthread_mutex_lock(&ep_mu);
}

void shim_epoll_atfork_parent(void)
{
    pthread_mutex_unlock(&ep_mu);
}

void shim_epoll_atfork_child(void)
{
    pthread_mutex_unlock(&ep_mu);
}
