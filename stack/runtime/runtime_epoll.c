/* Epoll instances over stack sockets, after Linux fs/eventpoll.c.
 *
 * Readiness flows by callback: rt_sock_event (under rt.lock) hands each
 * socket event with its key (the bits it is about) to the items watching
 * that socket, and each interested item goes on its instance's ready list
 * (ep_poll_callback and rdllist). Collecting costs O(ready), never a scan of
 * the interest list: an item is polled once when collected; level-triggered
 * items still ready go back on the list (ep_send_events), edge-triggered
 * ones wait for the next event, one-shot ones are disarmed until modified.
 *
 * Each instance owns an eventfd that is readable exactly while its ready
 * list is non-empty. The shim puts it in the real epoll instance, so a
 * thread sleeping in the kernel's epoll_wait wakes when a stack socket
 * becomes ready (also one added by another thread's epoll_ctl), and an
 * epoll fd nested in another epoll set, poll or select reports readiness
 * there through the kernel.
 *
 * Instances and items live in the shared region (an event may be handled
 * by any process of the stack); the eventfd is valid only in the process
 * that made the instance, so another process marks the instance pending
 * and kicks that process's service thread, which writes it (rt_ep_relay).
 *
 * Everything here is under the stack lock. Items hold a reference on their
 * socket's rt_sock, so a socket closed while an item exists stays valid
 * until the item goes (it is then never reported). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

struct tcpsm_epitem {
    struct tcpsm_ep *ep;
    struct rt_sock *rs;
    uint32_t events;            /* EPOLL* interest and flags */
    uint64_t data;
    bool ready;                 /* on ep's ready list */
    bool disarmed;              /* EPOLLONESHOT fired; EPOLL_CTL_MOD re-arms */
    struct tcpsm_epitem *r_next, *r_prev;       /* ep's ready list */
    struct tcpsm_epitem *s_next, *s_prev;       /* rs->epitems */
};

struct tcpsm_ep {
    int efd;                    /* readable while the ready list is non-empty */
    uint16_t proc;              /* the process whose fd efd is */
    bool pending;               /* on its process's ep_pending list: efd to be written */
    struct tcpsm_ep *pend_next;
    struct tcpsm_ep *e_next, *e_prev;   /* its process's instances */
    bool efd_set;
    unsigned sleeping;          /* threads waiting on this instance (EPOLLEXCLUSIVE) */
    unsigned nitems;
    struct tcpsm_epitem *rd_head, *rd_tail;
};

#define EP_FLAGS (EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP)

/* An instance belongs to the process that made it: after fork the child's
 * copy of the epoll fd finds the same instance, but only its maker may
 * change or free it (the child's copies of the shim's records would
 * otherwise free what the parent still uses). In another process every
 * call below is a no-op: an epoll instance inherited across fork reports
 * stack sockets only in the process that made it. */
static bool mine(const struct tcpsm_ep *ep)
{
    return ep && rt.me >= 0 && ep->proc == rt.me;
}

/* Makes efd readable (the caller set efd_set). */
static void efd_raise(struct tcpsm_ep *ep)
{
    if (ep->proc >= RT_MAX_PROCS)
        return;                 /* its process is gone */
    if (ep->proc != rt.me) {
        struct rt_proc *p = &rt.sh->procs[ep->proc];
        if (!ep->pending) {
            ep->pending = true;
            ep->pend_next = p->ep_pending;
            p->ep_pending = ep;
        }
        rt_kick(ep->proc);
        return;
    }
    uint64_t one = 1;
    syscall(SYS_write, ep->efd, &one, sizeof(one));
}

void rt_ep_relay(struct rt_proc *p)
{
    while (p->ep_pending) {
        struct tcpsm_ep *ep = p->ep_pending;
        p->ep_pending = ep->pend_next;
        ep->pending = false;
        if (ep->efd_set) {
            uint64_t one = 1;
            syscall(SYS_write, ep->efd, &one, sizeof(one));
        }
    }
}

static void rd_add(struct tcpsm_epitem *it)
{
    struct tcpsm_ep *ep = it->ep;
    if (it->ready)
        return;
    it->ready = true;
    it->r_next = NULL;
    it->r_prev = ep->rd_tail;
    if (ep->rd_tail)
        ep->rd_tail->r_next = it;
    else
        ep->rd_head = it;
    ep->rd_tail = it;
    if (!ep->efd_set) {
        ep->efd_set = true;
        efd_raise(ep);
    }
}

static void rd_del(struct tcpsm_epitem *it)
{
    struct tcpsm_ep *ep = it->ep;
    if (!it->ready)
        return;
    it->ready = false;
    if (it->r_prev)
        it->r_prev->r_next = it->r_next;
    else
        ep->rd_head = it->r_next;
    if (it->r_next)
        it->r_next->r_prev = it->r_prev;
    else
        ep->rd_tail = it->r_prev;
    it->r_next = it->r_prev = NULL;
}

/* The eventfd follows the list: cleared once it is empty. */
static void efd_sync(struct tcpsm_ep *ep)
{
    if (ep->efd_set && !ep->rd_head && ep->proc == rt.me) {
        uint64_t v;
        syscall(SYS_read, ep->efd, &v, sizeof(v));
        ep->efd_set = false;
    }
}

void rt_ep_sock_event(struct rt_sock *rs, unsigned key)
{
    bool exclusive_woken = false;
    for (struct tcpsm_epitem *it = rs->epitems; it; it = it->s_next) {
        if (it->disarmed || !(key & (it->events | EPOLLERR | EPOLLHUP)))
            continue;
        /* EPOLLEXCLUSIVE: the instances with exclusive items are woken in
         * turn until one with a thread waiting has been (Linux wakes one
         * exclusive waiter; the others are not queued). */
        if (it->events & EPOLLEXCLUSIVE) {
            if (exclusive_woken)
                continue;
            if (it->ep->sleeping > 0)
                exclusive_woken = true;
        }
        rd_add(it);
    }
}

int tcpsm_ep_new(struct tcpsm_ep **out)
{
    rt_lock();
    struct tcpsm_ep *ep = rt.me < 0 ? NULL : rt_alloc(sizeof(*ep));
    rt_unlock();
    if (!ep)
        return -ENOMEM;
    long fd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        rt_lock();
        rt_free(ep);
        rt_unlock();
        return -e;
    }
    ep->efd = (int)fd;
    rt_lock();
    ep->proc = (uint16_t)rt.me;
    struct rt_proc *p = &rt.sh->procs[rt.me];
    ep->e_next = p->eps;
    if (p->eps)
        p->eps->e_prev = ep;
    p->eps = ep;
    rt_unlock();
    rt_fd_own(ep->efd);
    *out = ep;
    return 0;
}

int tcpsm_ep_fd(const struct tcpsm_ep *ep)
{
    return ep->efd;
}

static void item_unlink(struct tcpsm_epitem *it)
{
    rd_del(it);
    struct rt_sock *rs = it->rs;
    if (it->s_prev)
        it->s_prev->s_next = it->s_next;
    else
        rs->epitems = it->s_next;
    if (it->s_next)
        it->s_next->s_prev = it->s_prev;
    it->ep->nitems--;
    rt_sock_unref(rs);
}

/* Linux ep_item_poll: the current readiness the item reports, 0 if none. */
static uint32_t item_poll(const struct tcpsm_epitem *it)
{
    if (!it->rs->sk || rt.down)
        return 0;
    uint32_t m = tcpsm_sock_poll(it->rs->sk);
    if (m & EPOLLIN)
        m |= EPOLLRDNORM;
    if (m & EPOLLOUT)
        m |= EPOLLWRNORM;
    return m & ((it->events & ~(uint32_t)EP_FLAGS) | EPOLLERR | EPOLLHUP);
}

int tcpsm_ep_add(struct tcpsm_ep *ep, struct tcpsm_sock *sk, uint32_t events, uint64_t data,
                 struct tcpsm_epitem **out)
{
    if (!ep)
        return -EBADF;
    rt_lock();
    struct tcpsm_epitem *it = rt.me < 0 ? NULL : rt_alloc(sizeof(*it));
    if (!it) {
        rt_unlock();
        return -ENOMEM;
    }
    struct rt_sock *rs = sk ? tcpsm_sock_user(sk) : NULL;
    if (!rs || !rs->sk || rt.down || !mine(ep)) {
        rt_free(it);
        rt_unlock();
        return -EBADF;
    }
    it->ep = ep;
    it->rs = rs;
    it->events = events;
    it->data = data;
    rs->refs++;
    it->s_next = rs->epitems;
    if (rs->epitems)
        rs->epitems->s_prev = it;
    rs->epitems = it;
    ep->nitems++;
    /* Like ep_insert: a socket ready now is reported (and wakes waiters). */
    if (item_poll(it))
        rd_add(it);
    rt_unlock();
    *out = it;
    return 0;
}

int tcpsm_ep_mod(struct tcpsm_epitem *it, uint32_t events, uint64_t data)
{
    rt_lock();
    if (!mine(it->ep)) {
        rt_unlock();
        return -EBADF;
    }
    it->events = events;
    it->data = data;
    it->disarmed = false;
    /* ep_modify re-polls: a ready socket is reported again, even EPOLLET. */
    if (item_poll(it))
        rd_add(it);
    rt_unlock();
    return 0;
}

void tcpsm_ep_del(struct tcpsm_epitem *it)
{
    rt_lock();
    if (!mine(it->ep)) {
        rt_unlock();
        return;
    }
    struct tcpsm_ep *ep = it->ep;
    item_unlink(it);
    efd_sync(ep);
    rt_free(it);
    rt_unlock();
}

void tcpsm_ep_free(struct tcpsm_ep *ep)
{
    if (!ep)
        return;
    rt_lock();
    if (!mine(ep)) {
        /* A copy inherited across fork: only this process's fd goes. */
        int fd = ep->proc == UINT16_MAX || rt.me < 0 ? -1 : ep->efd;
        rt_unlock();
        if (fd >= 0 && tcpsm_rt_owns_fd(fd)) {
            rt_fd_disown(fd);
            syscall(SYS_close, fd);
        }
        return;
    }
    /* Items left (the shim deletes its own first) are found only from
     * their sockets; an instance freed with items would leave them
     * dangling, so this is a caller's bug: they stay leaked, never freed twice. */
    bool empty = ep->nitems == 0;
    int efd = ep->efd;
    if (empty && ep->proc < RT_MAX_PROCS) {
        /* off its process's lists first */
        struct rt_proc *p = &rt.sh->procs[ep->proc];
        if (ep->pending) {
            struct tcpsm_ep **pp = &p->ep_pending;
            while (*pp && *pp != ep)
                pp = &(*pp)->pend_next;
            if (*pp)
                *pp = ep->pend_next;
        }
        if (ep->e_prev)
            ep->e_prev->e_next = ep->e_next;
        else if (p->eps == ep)
            p->eps = ep->e_next;
        if (ep->e_next)
            ep->e_next->e_prev = ep->e_prev;
        rt_free(ep);
    } else if (empty) {
        rt_free(ep);
    }
    rt_unlock();
    if (!empty)
        return;
    rt_fd_disown(efd);
    syscall(SYS_close, efd);
}

void tcpsm_ep_kick(struct tcpsm_ep *ep)
{
    if (!ep)
        return;
    rt_lock();
    if (!mine(ep)) {
        rt_unlock();
        return;
    }
    if (!ep->efd_set) {
        ep->efd_set = true;
        efd_raise(ep);
    }
    rt_unlock();
}

void tcpsm_ep_sleeping(struct tcpsm_ep *ep, int delta)
{
    if (!ep)
        return;
    rt_lock();
    ep->sleeping = (unsigned)((int)ep->sleeping + delta);
    if (delta > 0)
        rt_proc_ready();        /* only a process with a service thread can be woken */
    rt_unlock();
}

int tcpsm_ep_collect(struct tcpsm_ep *ep, struct tcpsm_ep_event *ev, int max)
{
    int n = 0;
    if (!ep)
        return 0;
    rt_lock();
    if (!mine(ep)) {
        rt_unlock();
        return 0;
    }
    /* One pass over what is queued now: items put back go to the tail and
     * are not looked at twice in one call. */
    struct tcpsm_epitem *last = ep->rd_tail;
    while (n < max && ep->rd_head) {
        struct tcpsm_epitem *it = ep->rd_head;
        bool was_last = it == last;
        rd_del(it);
        uint32_t m = it->disarmed ? 0 : item_poll(it);
        if (m) {
            ev[n].events = m;
            ev[n].data = it->data;
            n++;
            if (it->events & EPOLLONESHOT)
                it->disarmed = true;
            else if (!(it->events & EPOLLET))
                rd_add(it);     /* level-triggered: looked at again next time */
        }
        if (was_last)
            break;
    }
    efd_sync(ep);
    rt_unlock();
    return n;
}

/* Under lock: process `proc` is gone (or left): its instances' eventfds
 * mean nothing any more, and its slot may be reused. They stay (their
 * items are still linked from sockets) but are never raised again. */
void rt_ep_orphan_proc(int proc)
{
    struct rt_proc *p = &rt.sh->procs[proc];
    for (struct tcpsm_ep *ep = p->eps; ep; ep = ep->e_next) {
        ep->proc = UINT16_MAX;
        ep->pending = false;
    }
    p->eps = NULL;
    p->ep_pending = NULL;
}
