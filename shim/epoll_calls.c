/* epoll over stack sockets. The kernel epoll fd stays real and holds the
 * kernel fds; stack (and not yet decided) sockets are never added to it.
 * The shim keeps, per epoll instance, the interest list of those sockets
 * and merges their readiness into epoll_wait:
 *   level-triggered: reported whenever ready;
 *   EPOLLET: reported when a readiness bit appeared since the last look,
 *            or new data arrived / data was acknowledged (byte counters
 *            from tcpsm_info), so a reader that does not drain still sees
 *            each arrival as the kernel would report it;
 *   EPOLLONESHOT: disarmed after one report until EPOLL_CTL_MOD.
 * One lock guards every interest list (lock order: this lock, then the
 * stack's). An instance with no stack items costs one table load. */
#include "shim.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime_log.h"

#define EXPORT __attribute__((visibility("default")))

struct shim_epitem {
    struct shim_ep *ep;
    struct shim_sock *sock;
    int fd;
    uint32_t events;
    epoll_data_t data;
    bool armed;
    unsigned last;              /* EPOLLET: readiness at the last look */
    int last_state;             /* EPOLLET: shim_state at the last look */
    uint64_t last_rx, last_acked;
    struct shim_epitem *next, *prev;    /* in ep */
    struct shim_epitem *sk_next;        /* in sock->items */
};

struct shim_ep {
    int refs;                   /* fd numbers referring to it, and epoll_wait calls in it */
    int fd;                     /* the fd it was created as (a hint for the hand-over) */
    unsigned nitems;
    struct shim_epitem *head, *tail;
    atomic_uint turn;           /* stack-first or kernel-first, alternating */
};

static pthread_mutex_t ep_mu = PTHREAD_MUTEX_INITIALIZER;

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

/* Both unlinks and free; ep_mu held. */
static void item_free(struct shim_epitem *it)
{
    ep_unlink(it->ep, it);
    sk_unlink(it);
    free(it);
}

void shim_ep_ref(struct shim_ep *ep)
{
    pthread_mutex_lock(&ep_mu);
    ep->refs++;
    pthread_mutex_unlock(&ep_mu);
}

void shim_ep_unref(struct shim_ep *ep)
{
    pthread_mutex_lock(&ep_mu);
    if (--ep->refs == 0) {
        while (ep->head)
            item_free(ep->head);
        free(ep);
    }
    pthread_mutex_unlock(&ep_mu);
}

void shim_epoll_forget(struct shim_sock *s)
{
    pthread_mutex_lock(&ep_mu);
    while (s->items)
        item_free(s->items);
    pthread_mutex_unlock(&ep_mu);
}

/* Adds the item to the real epoll instance it belongs to, found again
 * through the table (the item keeps no fd of it); ep_mu held. */
static void item_to_kernel(struct shim_epitem *it, const char *why)
{
    int hint = it->ep->fd;
    for (int i = -1; i < shim_nslots; i++) {
        int epfd = i < 0 ? hint : i;
        if (shim_ep_at(epfd) != it->ep)
            continue;
        struct epoll_event ev = { .events = it->armed ? it->events : 0, .data = it->data };
        if (REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, it->fd, &ev) < 0)
            tcpsm_log(TCPSM_LOG_WARN, "epoll %s of fd %d failed: %s", why, it->fd, strerror(errno));
        return;
    }
}

/* The socket went to the kernel: its interest items become real ones. */
void shim_epoll_handover(struct shim_sock *s)
{
    pthread_mutex_lock(&ep_mu);
    while (s->items) {
        struct shim_epitem *it = s->items;
        item_to_kernel(it, "hand-over");
        item_free(it);
    }
    pthread_mutex_unlock(&ep_mu);
}

/* The kernel reports the placeholder's own (loopback) connections with the
 * item's data; the stack's are reported from the item as before. */
void shim_epoll_klisten(struct shim_sock *s)
{
    pthread_mutex_lock(&ep_mu);
    for (struct shim_epitem *it = s->items; it; it = it->sk_next)
        item_to_kernel(it, "mirror");
    pthread_mutex_unlock(&ep_mu);
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
    struct shim_ep *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        REAL(close)(epfd);
        errno = ENOMEM;
        return -1;
    }
    ep->refs = 1;
    ep->fd = epfd;
    shim_fd_install_ep(epfd, ep);       /* drops a stale entry of an fd closed behind our back */
    return epfd;
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

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return REAL(epoll_ctl)(epfd, op, fd, ev);
    int r = 0;
    pthread_mutex_lock(&ep_mu);
    struct shim_ep *ep = ep_get(epfd);
    if (shim_state(s) == SHIM_KERNEL) {
        pthread_mutex_unlock(&ep_mu);
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
        if (it) {
            r = -EEXIST;
            break;
        }
        if ((int)ep->nitems >= shim_nslots) {
            r = -ENOSPC;
            break;
        }
        it = calloc(1, sizeof(*it));
        if (!it) {
            r = -ENOMEM;
            break;
        }
        it->ep = ep;
        it->sock = s;
        it->fd = fd;
        it->events = ev->events;
        it->data = ev->data;
        it->armed = true;
        ep_link(ep, it);
        it->sk_next = s->items;
        s->items = it;
        break;
    case EPOLL_CTL_MOD:
        if (!it) {
            r = -ENOENT;
            break;
        }
        if ((ev->events & EPOLLEXCLUSIVE) || (it->events & EPOLLEXCLUSIVE)) {
            r = -EINVAL;
            break;
        }
        /* Like the kernel, MOD re-evaluates: a ready socket is reported again. */
        it->events = ev->events;
        it->data = ev->data;
        it->armed = true;
        it->last = 0;
        it->last_rx = it->last_acked = 0;
        break;
    case EPOLL_CTL_DEL:
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
        REAL(epoll_ctl)(epfd, op, fd, ev);
        errno = e;
    }
out:
    pthread_mutex_unlock(&ep_mu);
    shim_sock_put(s);
    return (int)shim_ret(r);
}

/* One item's events to report now (0: none); ep_mu held. */
static uint32_t item_check(struct shim_epitem *it)
{
    struct shim_sock *s = it->sock;
    unsigned m = shim_sock_poll(s, it->fd);
    uint32_t want = (it->events & ~(uint32_t)(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP)) |
                    EPOLLERR | EPOLLHUP;
    uint32_t rev = m & want;
    if (!(it->events & EPOLLET))
        return rev;
    int st = shim_state(s);
    if (st != it->last_state) {         /* connect/listen made it the stack's: a new socket */
        it->last_state = st;
        it->last = 0;
    }
    uint32_t fresh = rev & ~it->last;
    it->last = rev;
    if (st == SHIM_STACK && (rev & (EPOLLIN | EPOLLOUT))) {
        struct tcpsm_tcp_info in;
        memset(&in, 0, sizeof(in));
        if (tcpsm_info(s->sk, &in) == 0) {
            if ((rev & EPOLLIN) && in.bytes_received != it->last_rx)
                fresh |= EPOLLIN;
            if ((rev & EPOLLOUT) && in.bytes_acked != it->last_acked)
                fresh |= EPOLLOUT;
            it->last_rx = in.bytes_received;
            it->last_acked = in.bytes_acked;
        }
    }
    /* The kernel reports the whole current mask with an edge. */
    return fresh ? rev : 0;
}

/* Ready stack items into ev[0..max); rotates the list so that a busy item
 * cannot starve the others. */
static int collect(struct shim_ep *ep, struct epoll_event *ev, int max)
{
    int n = 0;
    pthread_mutex_lock(&ep_mu);
    struct shim_epitem *it = ep->head, *last_reported = NULL;
    unsigned todo = ep->nitems;
    while (it && todo-- && n < max) {
        struct shim_epitem *next = it->next;
        if (it->armed) {
            atomic_fetch_add(&it->sock->refs, 1);
            uint32_t rev = item_check(it);
            shim_sock_put(it->sock);
            if (rev) {
                ev[n].events = rev;
                ev[n].data = it->data;
                n++;
                if (it->events & EPOLLONESHOT)
                    it->armed = false;
                last_reported = it;
            }
        }
        it = next;
    }
    /* Next time, start after the last item reported. */
    if (last_reported && last_reported->next) {
        struct shim_epitem *h = ep->head;
        ep->head = last_reported->next;
        ep->head->prev = NULL;
        last_reported->next = NULL;
        ep->tail->next = h;
        h->prev = ep->tail;
        ep->tail = last_reported;
    }
    pthread_mutex_unlock(&ep_mu);
    return n;
}

static int do_wait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask,
                   bool pwait)
{
    pthread_mutex_lock(&ep_mu);
    struct shim_ep *ep = ep_get(epfd);
    bool mine = ep && ep->nitems > 0;
    if (mine)
        ep->refs++;     /* held while waiting: another thread may close epfd meanwhile */
    pthread_mutex_unlock(&ep_mu);
    if (!mine)
        goto passthrough;
    int ret;
    if (max <= 0 || max > (int)(INT32_MAX / sizeof(struct epoll_event))) {
        ret = -EINVAL;
        goto out;
    }
    if (!ev) {
        ret = -EFAULT;
        goto out;
    }
    int efd = tcpsm_poller_begin();
    if (efd < 0) {
        ret = efd;
        goto out;
    }
    int64_t deadline = timeout >= 0 ? shim_now_ns() + (int64_t)timeout * 1000000 : -1;
    for (;;) {
        int n = 0;
        bool kernel_first = (atomic_fetch_add(&ep->turn, 1) & 1) != 0;
        if (kernel_first) {
            n = REAL(epoll_pwait)(epfd, ev, max, 0, mask);
            if (n < 0) {
                ret = -errno;
                break;
            }
        }
        n += collect(ep, ev + n, max - n);
        if (!kernel_first && n < max) {
            int k = REAL(epoll_pwait)(epfd, ev + n, max - n, 0, mask);
            if (k < 0) {
                ret = -errno;
                break;
            }
            n += k;
        }
        int64_t left = deadline < 0 ? -1 : deadline - shim_now_ns();
        if (n > 0 || (deadline >= 0 && left <= 0)) {
            ret = n;
            break;
        }
        struct pollfd p[2] = { { .fd = epfd, .events = POLLIN }, { .fd = efd, .events = POLLIN } };
        struct timespec ts, *tsp = NULL;
        if (left >= 0) {
            ts.tv_sec = left / 1000000000;
            ts.tv_nsec = left % 1000000000;
            tsp = &ts;
        }
        if (REAL(ppoll)(p, 2, tsp, mask) < 0) {
            ret = -errno;
            break;
        }
        if (p[1].revents & POLLIN)
            tcpsm_poller_begin();       /* drains and re-arms the coalesced wake-up */
    }
    tcpsm_poller_end();
out:
    shim_ep_unref(ep);
    return (int)shim_ret(ret);
passthrough:
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
