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
 * Each instance owns an eventfd that is readable while its ready list is
 * non-empty and someone may sleep on it (a thread in epoll_wait, counted;
 * or a watcher the stack cannot count: tcpsm_ep_expose). The shim puts it in the real epoll instance, so a
 * thread sleeping in the kernel's epoll_wait wakes when a stack socket
 * becomes ready (also one added by another thread's epoll_ctl), and an
 * epoll fd nested in another epoll set, poll or select reports readiness
 * there through the kernel.
 *
 * Instances and items live in the shared region (an event may be handled
 * by any process of the stack). An instance is held by the processes that
 * have its fd: the one that made it and, as on Linux, its forked children
 * (the fd and the eventfd inside it are inherited: one instance, one ready
 * list, one eventfd, shared). Every holder may wait on it, collect from it
 * (the kernel wakes one waiter of an epoll fd per event) and add, change and
 * delete its items: an item is found by (instance, socket, fd number), as
 * Linux's (file, fd) key, never through a pointer a process kept (a forked
 * child's copy of the shim's records may name items another holder has
 * since deleted). An item goes when it is deleted, with its instance, or
 * when its socket's last reference in any process goes (rt_ep_sock_gone;
 * Linux's eventpoll_release at the last fput): a process closing its fd
 * while a forked relative still holds the socket leaves the item in place.
 * A process that does not hold
 * the instance cannot write the eventfd: it marks the instance pending on a
 * holder and kicks that process's service thread, which writes it
 * (rt_ep_relay). The instance and its items go with its last holder.
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
    struct tcpsm_epitem *i_next, *i_prev;       /* ep->items */
    struct rt_sock *rs;
    int fd;                     /* the fd number it was added as (with ep and rs, its key) */
    uint32_t events;            /* EPOLL* interest and flags */
    uint64_t data;
    bool ready;                 /* on ep's ready list */
    bool disarmed;              /* EPOLLONESHOT fired; EPOLL_CTL_MOD re-arms */
    struct tcpsm_epitem *r_next, *r_prev;       /* ep's ready list */
    struct tcpsm_epitem *s_next, *s_prev;       /* rs->epitems */
};

struct tcpsm_ep {
    int efd;                    /* readable while the ready list is non-empty */
    uint64_t holders[RT_MAX_PROCS / 64];        /* processes with its fd: maker, forked children */
    bool pending;               /* on a holder's ep_pending list: efd to be written */
    uint16_t pend_proc;         /* that holder */
    struct tcpsm_ep *pend_next;
    struct tcpsm_ep *e_next, *e_prev;   /* rt_shared.eps */
    struct tcpsm_epitem *items;         /* every item of the instance */
    bool efd_set;               /* efd written (readable) */
    unsigned sleeping;          /* threads waiting on this instance (EPOLLEXCLUSIVE) */
    unsigned ksleeping;         /* threads asleep on the real set alone */
    /* Watched where sleepers are not counted (tcpsm_ep_expose): efd is
     * written for every non-empty list. Otherwise only while someone
     * sleeps: a thread that collects before it sleeps needs no write (and
     * no read to clear it), which saved two system calls per readiness
     * change of an event loop's own sockets. */
    bool exposed;
    unsigned nitems;
    struct tcpsm_epitem *rd_head, *rd_tail;
};

#define EP_FLAGS (EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP)

static bool holds(const struct tcpsm_ep *ep, int proc)
{
    return proc >= 0 && proc < RT_MAX_PROCS && ((ep->holders[proc / 64] >> (proc % 64)) & 1);
}

static void hold_set(struct tcpsm_ep *ep, int proc, bool on)
{
    if (on)
        ep->holders[proc / 64] |= 1ull << (proc % 64);
    else
        ep->holders[proc / 64] &= ~(1ull << (proc % 64));
}

static int first_holder(const struct tcpsm_ep *ep, bool driving)
{
    for (int w = 0; w < RT_MAX_PROCS / 64; w++)
        for (uint64_t b = ep->holders[w]; b; b &= b - 1) {
            int i = w * 64 + __builtin_ctzll(b);
            if (!driving || rt.sh->procs[i].driving)
                return i;
        }
    return -1;
}

/* This process has the instance's fd: it may wait on it and collect. */
static bool held(const struct tcpsm_ep *ep)
{
    return ep && holds(ep, rt.me);
}

/* Makes efd readable (the caller set efd_set). */
static void efd_raise(struct tcpsm_ep *ep)
{
    if (!holds(ep, rt.me)) {
        if (ep->pending)
            return;             /* a holder will write it */
        /* A holder whose service thread runs; one that has none is not
         * asleep on the instance and collects before it sleeps. */
        int h = first_holder(ep, true);
        if (h < 0)
            return;
        struct rt_proc *p = &rt.sh->procs[h];
        ep->pending = true;
        ep->pend_proc = (uint16_t)h;
        ep->pend_next = p->ep_pending;
        p->ep_pending = ep;
        rt_kick(h);
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
        if (ep->efd_set && holds(ep, rt.me)) {
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
    if (!ep->efd_set && (ep->sleeping || ep->ksleeping || ep->exposed)) {
        ep->efd_set = true;
        efd_raise(ep);
    }
}

/* Someone may sleep on efd from now on: it must show a non-empty list. */
static void efd_owed(struct tcpsm_ep *ep)
{
    if (ep->rd_head && !ep->efd_set) {
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
    if (ep->efd_set && !ep->rd_head && holds(ep, rt.me)) {
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
    hold_set(ep, rt.me, true);
    ep->e_next = rt.sh->eps;
    if (rt.sh->eps)
        rt.sh->eps->e_prev = ep;
    rt.sh->eps = ep;
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
    if (it->i_prev)
        it->i_prev->i_next = it->i_next;
    else
        it->ep->items = it->i_next;
    if (it->i_next)
        it->i_next->i_prev = it->i_prev;
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
    uint32_t m = tcpsm_sock_poll_app(it->rs->sk);
    if (m & EPOLLIN)
        m |= EPOLLRDNORM;
    if (m & EPOLLOUT)
        m |= EPOLLWRNORM;
    return m & ((it->events & ~(uint32_t)EP_FLAGS) | EPOLLERR | EPOLLHUP);
}

/* The item of (ep, rs, fd), or NULL. A socket is in few instances: its
 * own list is short. */
static struct tcpsm_epitem *item_find(const struct tcpsm_ep *ep, const struct rt_sock *rs, int fd)
{
    for (struct tcpsm_epitem *it = rs->epitems; it; it = it->s_next)
        if (it->ep == ep && it->fd == fd)
            return it;
    return NULL;
}

/* Under lock: the socket's runtime state if this process may change ep's
 * items for it (it holds ep; the socket is open), else NULL. */
static struct rt_sock *ctl_sock(const struct tcpsm_ep *ep, struct tcpsm_sock *sk)
{
    struct rt_sock *rs = sk ? tcpsm_sock_user(sk) : NULL;
    if (!rs || !rs->sk || rt.down || !held(ep))
        return NULL;
    return rs;
}

int tcpsm_ep_add(struct tcpsm_ep *ep, struct tcpsm_sock *sk, int fd, uint32_t events,
                 uint64_t data)
{
    if (!ep)
        return -EBADF;
    rt_lock();
    struct rt_sock *rs = rt.me < 0 ? NULL : ctl_sock(ep, sk);
    if (!rs) {
        rt_unlock();
        return -EBADF;
    }
    if (item_find(ep, rs, fd)) {
        rt_unlock();
        return -EEXIST;
    }
    struct tcpsm_epitem *it = rt_alloc(sizeof(*it));
    if (!it) {
        rt_unlock();
        return -ENOMEM;
    }
    it->ep = ep;
    it->rs = rs;
    it->fd = fd;
    it->events = events;
    it->data = data;
    rs->refs++;
    it->s_next = rs->epitems;
    if (rs->epitems)
        rs->epitems->s_prev = it;
    rs->epitems = it;
    it->i_next = ep->items;
    if (ep->items)
        ep->items->i_prev = it;
    ep->items = it;
    ep->nitems++;
    /* Like ep_insert: a socket ready now is reported (and wakes waiters). */
    if (item_poll(it))
        rd_add(it);
    rt_unlock();
    return 0;
}

int tcpsm_ep_mod(struct tcpsm_ep *ep, struct tcpsm_sock *sk, int fd, uint32_t events,
                 uint64_t data)
{
    if (!ep)
        return -EBADF;
    rt_lock();
    struct rt_sock *rs = rt.me < 0 ? NULL : ctl_sock(ep, sk);
    struct tcpsm_epitem *it = rs ? item_find(ep, rs, fd) : NULL;
    if (!it || (it->events & EPOLLEXCLUSIVE)) {
        rt_unlock();
        return !rs ? -EBADF : it ? -EINVAL : -ENOENT;  /* Linux: no MOD of an exclusive item */
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

int tcpsm_ep_del(struct tcpsm_ep *ep, struct tcpsm_sock *sk, int fd)
{
    if (!ep)
        return -EBADF;
    rt_lock();
    struct rt_sock *rs = rt.me < 0 ? NULL : ctl_sock(ep, sk);
    struct tcpsm_epitem *it = rs ? item_find(ep, rs, fd) : NULL;
    if (!it) {
        rt_unlock();
        return rs ? -ENOENT : -EBADF;
    }
    item_unlink(it);
    efd_sync(ep);
    rt_free(it);
    rt_unlock();
    return 0;
}

/* Under lock: rs's last reference in any process is gone: it leaves every
 * instance (Linux eventpoll_release). Called while rs->sk is still set, so
 * the items' references cannot free rs here. */
void rt_ep_sock_gone(struct rt_sock *rs)
{
    while (rs->epitems) {
        struct tcpsm_epitem *it = rs->epitems;
        struct tcpsm_ep *ep = it->ep;
        item_unlink(it);
        efd_sync(ep);
        rt_free(it);
    }
}

/* Off every list and freed, with its items (its last holder let go). */
static void ep_destroy(struct tcpsm_ep *ep)
{
    while (ep->items) {
        struct tcpsm_epitem *it = ep->items;
        item_unlink(it);
        rt_free(it);
    }
    if (ep->pending) {
        struct tcpsm_ep **pp = &rt.sh->procs[ep->pend_proc].ep_pending;
        while (*pp && *pp != ep)
            pp = &(*pp)->pend_next;
        if (*pp)
            *pp = ep->pend_next;
    }
    if (ep->e_prev)
        ep->e_prev->e_next = ep->e_next;
    else if (rt.sh->eps == ep)
        rt.sh->eps = ep->e_next;
    if (ep->e_next)
        ep->e_next->e_prev = ep->e_prev;
    rt_free(ep);
}

void tcpsm_ep_free(struct tcpsm_ep *ep)
{
    if (!ep)
        return;
    rt_lock();
    int efd = rt.me >= 0 && holds(ep, rt.me) ? ep->efd : -1;
    if (efd >= 0) {
        if (ep->pending && ep->pend_proc == rt.me) {
            /* Raised by another process for this one to relay: relay it
             * now (the eventfd is the same file in every holder). */
            struct tcpsm_ep **pp = &rt.sh->procs[rt.me].ep_pending;
            while (*pp && *pp != ep)
                pp = &(*pp)->pend_next;
            if (*pp)
                *pp = ep->pend_next;
            ep->pending = false;
            if (ep->efd_set) {
                uint64_t one = 1;
                syscall(SYS_write, ep->efd, &one, sizeof(one));
            }
        }
        hold_set(ep, rt.me, false);
        if (first_holder(ep, false) < 0)
            ep_destroy(ep);
    }
    rt_unlock();
    /* This process's copy of the eventfd (the others keep theirs). */
    if (efd >= 0 && tcpsm_rt_owns_fd(efd)) {
        rt_fd_disown(efd);
        syscall(SYS_close, efd);
    }
}

void tcpsm_ep_kick(struct tcpsm_ep *ep)
{
    if (!ep)
        return;
    rt_lock();
    if (!held(ep)) {
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
    if (!held(ep)) {
        rt_unlock();
        return;
    }
    ep->sleeping = (unsigned)((int)ep->sleeping + delta);
    if (delta > 0) {
        rt_proc_ready();        /* only a process with a service thread can be woken */
        efd_owed(ep);
    }
    rt_unlock();
}

void tcpsm_ep_ksleeping(struct tcpsm_ep *ep, int delta)
{
    if (!ep)
        return;
    rt_lock();
    if (held(ep)) {
        ep->ksleeping = (unsigned)((int)ep->ksleeping + delta);
        if (delta > 0)
            efd_owed(ep);
    }
    rt_unlock();
}

void tcpsm_ep_expose(struct tcpsm_ep *ep)
{
    if (!ep)
        return;
    rt_lock();
    ep->exposed = true;
    if (held(ep))
        efd_owed(ep);
    rt_unlock();
}

int tcpsm_ep_collect(struct tcpsm_ep *ep, struct epoll_event *ev, int max)
{
    int n = 0;
    if (!ep)
        return 0;
    rt_lock();
    if (!held(ep)) {
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
            ev[n].data.u64 = it->data;
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

/* Under lock: process `proc` is gone (or left): it holds no instance any
 * more (its slot may be reused). An instance nobody else holds goes, with
 * its items, when its holder died; when the process leaves itself (exit)
 * its own instances stay, never raised again: a straggling thread of it
 * may still be inside epoll_wait. */
void rt_ep_orphan_proc(int proc)
{
    struct rt_proc *p = &rt.sh->procs[proc];
    for (struct tcpsm_ep *ep = p->ep_pending; ep; ep = ep->pend_next)
        ep->pending = false;
    p->ep_pending = NULL;
    struct tcpsm_ep *next;
    for (struct tcpsm_ep *ep = rt.sh->eps; ep; ep = next) {
        next = ep->e_next;
        if (!holds(ep, proc))
            continue;
        hold_set(ep, proc, false);
        if (first_holder(ep, false) < 0 && proc != rt.me)
            ep_destroy(ep);
    }
}

void rt_ep_fork(int parent, int child)
{
    for (struct tcpsm_ep *ep = rt.sh->eps; ep; ep = ep->e_next)
        if (holds(ep, parent))
            hold_set(ep, child, true);
}

/* ---------------------------------------------------------------- repair */

#define EP_LIST_MAX (4u * RT_MAX_IDS)   /* bound of any walk: longer is a cycle */

static bool ep_ok(const struct tcpsm_ep *ep)
{
    return shm_valid(rt.reg, ep, sizeof(*ep));
}

static bool item_ok(const struct tcpsm_epitem *it)
{
    return shm_valid(rt.reg, it, sizeof(*it)) && ep_ok(it->ep) &&
           shm_valid(rt.reg, it->rs, sizeof(*it->rs));
}

/* One instance: its items (the primary list), their count, and the ready
 * list, rebuilt from the items' ready flags when it does not match. */
static unsigned ep_check(struct tcpsm_ep *ep, bool fix)
{
    unsigned f = 0, n = 0, nready = 0;
    struct tcpsm_epitem *prev = NULL;
    for (struct tcpsm_epitem **pp = &ep->items; *pp;) {
        struct tcpsm_epitem *it = *pp;
        if (!shm_valid(rt.reg, it, sizeof(*it)) || n >= EP_LIST_MAX) {
            f++;
            if (fix)
                *pp = NULL;
            break;
        }
        if (it->ep != ep || !shm_valid(rt.reg, it->rs, sizeof(*it->rs))) {
            f++;                        /* not this instance's, or its socket is gone */
            if (fix) {
                *pp = it->i_next;
                continue;
            }
        }
        if (it->i_prev != prev) {
            f++;
            if (fix)
                it->i_prev = prev;
        }
        n++;
        nready += it->ready;
        prev = it;
        pp = &it->i_next;
    }
    if (n != ep->nitems) {
        f++;
        if (fix)
            ep->nitems = n;
    }
    bool rd_bad = false;
    unsigned k = 0;
    struct tcpsm_epitem *rp = NULL;
    for (struct tcpsm_epitem *it = ep->rd_head; it; rp = it, it = it->r_next)
        if (!shm_valid(rt.reg, it, sizeof(*it)) || it->ep != ep || !it->ready ||
            it->r_prev != rp || ++k > n) {
            rd_bad = true;
            break;
        }
    if (rd_bad || rp != ep->rd_tail || k != nready) {
        f++;
        if (fix) {
            ep->rd_head = ep->rd_tail = NULL;
            for (struct tcpsm_epitem *it = ep->items; it; it = it->i_next)
                if (it->ready) {
                    it->ready = false;
                    rd_add(it);
                }
        }
    }
    if (fix && ep->rd_head) {
        ep->efd_set = false;            /* written again: every sleeper looks */
        efd_owed(ep);
    }
    return f;
}

unsigned rt_ep_check(bool fix)
{
    unsigned f = 0, n = 0;
    /* The instances each process is to write for others: emptied when
     * fixing (every instance with a ready list is raised again below,
     * which queues it on a holder anew). */
    for (int p = 0; p < RT_MAX_PROCS; p++) {
        unsigned k = 0;
        for (struct tcpsm_ep **pp = &rt.sh->procs[p].ep_pending; *pp; pp = &(*pp)->pend_next)
            if (!ep_ok(*pp) || !(*pp)->pending || ++k > EP_LIST_MAX) {
                f++;
                break;
            }
        if (fix)
            rt.sh->procs[p].ep_pending = NULL;
    }
    if (fix)
        for (struct tcpsm_ep *ep = rt.sh->eps; ep && ep_ok(ep); ep = ep->e_next)
            ep->pending = false;
    struct tcpsm_ep *prev = NULL;
    for (struct tcpsm_ep **pp = &rt.sh->eps; *pp;) {
        struct tcpsm_ep *ep = *pp;
        if (!ep_ok(ep) || ++n > EP_LIST_MAX) {
            f++;
            if (fix)
                *pp = NULL;
            break;
        }
        if (ep->e_prev != prev) {
            f++;
            if (fix)
                ep->e_prev = prev;
        }
        f += ep_check(ep, fix);
        prev = ep;
        pp = &ep->e_next;
    }
    /* each socket's list of items */
    for (uint32_t i = 0; i < RT_MAX_IDS; i++) {
        struct rt_sock *rs = rt.sh->socks[i];
        if (!rs || !shm_valid(rt.reg, rs, sizeof(*rs)))
            continue;
        struct tcpsm_epitem *sp = NULL;
        unsigned k = 0;
        for (struct tcpsm_epitem **pp = &rs->epitems; *pp; pp = &(*pp)->s_next) {
            struct tcpsm_epitem *it = *pp;
            if (!item_ok(it) || it->rs != rs || ++k > EP_LIST_MAX) {
                f++;
                if (fix)
                    *pp = NULL;
                break;
            }
            if (it->s_prev != sp) {
                f++;
                if (fix)
                    it->s_prev = sp;
            }
            sp = it;
        }
    }
    return f;
}
