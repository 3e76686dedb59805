/* Sleeping and waking: per-thread eventfds, per-socket waiter lists, the
 * poller list, and the registry of fds the runtime owns.
 *
 * Waiters and wait queue entries live in the shared region, so that a
 * socket event handled by any process of the stack reaches the waiters of
 * every process: a waiter of this process is woken through its eventfd at
 * once; a waiter of another process is marked `remote` and that process's
 * service thread is kicked (a futex word in its slot), which writes the
 * eventfd there (rt_relay_remote).
 *
 * No lost wake-ups: a thread puts itself on a waiter list under rt.lock
 * BEFORE it checks its condition; any later change runs rt_sock_event under
 * the same lock and signals it. Signals are coalesced: an eventfd is
 * written only when its `signalled` flag goes from false to true, and the
 * sleeper drains it and clears the flag under the lock. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* Fds below this are tracked in a bitmap (128 KiB of zero pages until used). */
#define OWNED_MAX (1u << 20)
static _Atomic uint64_t owned[OWNED_MAX / 64];

void rt_fd_own(int fd)
{
    if (fd >= 0 && (unsigned)fd < OWNED_MAX)
        atomic_fetch_or(&owned[fd / 64], 1ull << (fd % 64));
}

void rt_fd_disown(int fd)
{
    if (fd >= 0 && (unsigned)fd < OWNED_MAX)
        atomic_fetch_and(&owned[fd / 64], ~(1ull << (fd % 64)));
}

void tcpsm_rt_own_fd(int fd)
{
    rt_fd_own(fd);
}

bool tcpsm_rt_owns_fd(int fd)
{
    if (fd < 0 || (unsigned)fd >= OWNED_MAX)
        return false;
    return (atomic_load(&owned[fd / 64]) >> (fd % 64)) & 1;
}

static void unwatch_all(struct rt_waiter *w);

static pthread_key_t waiter_key;
static pthread_once_t waiter_once = PTHREAD_ONCE_INIT;
static __thread struct rt_waiter *self;
static __thread int self_efd = -1;

static void proc_list_del(struct rt_waiter *w)
{
    if (w->w_prev)
        w->w_prev->w_next = w->w_next;
    else if (rt.me >= 0 && rt.sh->procs[rt.me].waiters == w)
        rt.sh->procs[rt.me].waiters = w->w_next;
    if (w->w_next)
        w->w_next->w_prev = w->w_prev;
    w->w_next = w->w_prev = NULL;
}

/* Thread exit: leave the poller list, close the eventfd. A thread cannot
 * exit inside a blocking call, so it is on no socket list. */
static void waiter_destroy(void *p)
{
    struct rt_waiter *w = p;
    int efd = self_efd;         /* w itself may be gone with this process's slot */
    rt_lock();
    if (rt.me >= 0 && w->proc == rt.me) {
        unwatch_all(w);
        rt_poller_del(w);
        proc_list_del(w);
        rt_free(w->watch);
        rt_free(w);
    }
    rt_unlock();
    rt_fd_disown(efd);
    syscall(SYS_close, efd);
    self = NULL;
    self_efd = -1;
}

static void waiter_key_init(void)
{
    pthread_key_create(&waiter_key, waiter_destroy);
}

struct rt_waiter *rt_waiter_peek(void)
{
    return self;
}

struct rt_waiter *rt_waiter_self(void)
{
    if (self)
        return self;
    pthread_once(&waiter_once, waiter_key_init);
    if (rt.me < 0) {
        errno = ENETDOWN;
        return NULL;
    }
    struct rt_waiter *w = rt_alloc(sizeof(*w));
    if (!w) {
        errno = ENOBUFS;
        return NULL;
    }
    long fd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        rt_free(w);
        errno = e;
        return NULL;
    }
    w->efd = (int)fd;
    self_efd = w->efd;
    w->proc = (uint16_t)rt.me;
    struct rt_proc *p = &rt.sh->procs[rt.me];
    w->w_next = p->waiters;
    if (p->waiters)
        p->waiters->w_prev = w;
    p->waiters = w;
    rt_fd_own(w->efd);
    pthread_setspecific(waiter_key, w);
    self = w;
    return w;
}

static void efd_write(struct rt_waiter *w)
{
    w->written = true;
    uint64_t one = 1;
    syscall(SYS_write, w->efd, &one, sizeof(one));
}

/* Under lock: this thread's own pending wake-up, set without an eventfd
 * write (rt_signal), written now: it may be about to sleep (the timers its
 * unlock ran readied one of its sockets after it looked). */
void rt_self_flush(void)
{
    if (self && self->signalled && !self->written)
        efd_write(self);
}

/* Set while this thread takes frames or runs timers at a point after
 * which it looks at its own `signalled` before it sleeps
 * (rt_link_service_awake, the leader's lead_end). */
static __thread bool t_awake;

void rt_self_awake(bool on)
{
    t_awake = on;
}

unsigned rt_link_service_awake(void)
{
    t_awake = true;
    unsigned n = rt_link_service();
    t_awake = false;
    return n;
}

void rt_signal(struct rt_waiter *w)
{
    if (w->signalled)
        return;
    w->signalled = true;
    if (w->proc != rt.me) {
        w->remote = true;
        rt_kick(w->proc);
        return;
    }
    /* The calling thread's own waiter, inside a window after which it
     * looks at `signalled` before any sleep (the leader's input after its
     * sleep, a blocking call's first look): it is running, not asleep: a
     * write and a read saved per wake-up of a leader by its own input.
     * Anywhere else (an unlock that takes the receive thread's deferred
     * frames or runs due timers just before a sleep on the eventfd) the
     * eventfd is written. */
    if (w != self || !t_awake)
        efd_write(w);
}

void rt_relay_remote(void)
{
    struct rt_proc *p = &rt.sh->procs[rt.me];
    for (struct rt_waiter *w = p->waiters; w; w = w->w_next) {
        if (w->remote) {
            w->remote = false;
            efd_write(w);
        }
    }
    rt_ep_relay(p);
}

void rt_wake_sock(struct rt_sock *rs)
{
    for (struct rt_wqe *q = rs->waiters; q; q = q->next)
        rt_signal(q->w);
}

/* Linux's wake_up with nr_exclusive 1: processes (or threads) blocked in
 * accept() on one listener wait exclusively (inet_csk_wait_for_connect), so
 * a new connection wakes one of them, not every one. A woken waiter is off
 * the queue in Linux; here it is skipped while its wake-up is pending. */
void rt_wake_sock_event(struct rt_sock *rs)
{
    bool excl = false;
    for (struct rt_wqe *q = rs->waiters; q; q = q->next) {
        if (!q->exclusive) {
            rt_signal(q->w);
        } else if (!excl && !q->w->signalled) {
            rt_signal(q->w);
            excl = true;
        }
    }
}

void rt_sock_unref(struct rt_sock *rs)
{
    if (--rs->refs == 0 && !rs->sk)
        rt_free(rs);
}

void rt_wake_pollers(void)
{
    for (struct rt_waiter *w = rt.sh->pollers; w; w = w->p_next)
        rt_signal(w);
}

void rt_note_seen(struct rt_sock *rs)
{
    if (rs->sk) {
        rs->last_events = tcpsm_sock_poll(rs->sk);
        rs->last_state = tcpsm_sock_state(rs->sk);
    }
}

/* The core reports every ACK and segment; most change nothing a sleeper
 * waits for (a sender's ACK clock while the buffer stays below the POLLOUT
 * threshold), and waking for them costs a context switch each. So wake
 * when the readiness mask or the state changed since someone last looked,
 * or when data arrived (a reader that does not drain, and edge-triggered
 * epoll, expect every arrival, as on Linux). Every sleeper records what it
 * saw (rt_note_seen) under the lock before it sleeps, so a change it has
 * not seen always differs from the record. */
/* The owner F_SETOWN named gets its signal (runtime_sigio.c), from
 * whichever process of the stack took the segment in. */
static void owner_signal(const struct rt_sock *rs, int sig)
{
    rt_owner_signal(rs->owner_type, rs->owner_id, rs->owner_tgid, sig, NULL);
}

static void owner_sigio(const struct rt_sock *rs, int reason)
{
    rt_owner_sigio(rs->owner_type, rs->owner_id, rs->owner_tgid, rs->async_sig, rs->async_fd,
                   reason);
}

/* What the core said the owner is due (tcpsm_sock_take_async), as Linux
 * sk_send_sigurg and sock_wake_async deliver it. */
static void owner_notify(const struct rt_sock *rs, unsigned ev)
{
    if (!rs->owner_id)
        return;
    if (ev & TCPSM_ASYNC_URG) {
        owner_signal(rs, SIGURG);
        if (rs->async && rs->async_sig)         /* kill_fasync(SIGURG): only with F_SETSIG */
            owner_sigio(rs, POLL_PRI);
    }
    if (!rs->async)
        return;
    if ((ev & TCPSM_ASYNC_HUP) && !rs->readers)
        owner_sigio(rs, POLL_HUP);
    if ((ev & TCPSM_ASYNC_IN) && !rs->readers)
        owner_sigio(rs, POLL_IN);
    if (ev & TCPSM_ASYNC_OUT)
        owner_sigio(rs, POLL_OUT);
    if (ev & TCPSM_ASYNC_ERR)
        owner_sigio(rs, POLL_ERR);
}

void rt_sock_event(void *ctx, struct tcpsm_sock *sk, unsigned events)
{
    (void)ctx;
    struct rt_sock *rs = tcpsm_sock_user(sk);
    unsigned async = tcpsm_sock_take_async(sk);
    if (!rs)
        return;                 /* nobody holds it: nobody waits on it */
    if (async)
        owner_notify(rs, async);
    int state = tcpsm_sock_state(sk);
    /* What this event is about (the "key" of Linux's wake-ups): the bits
     * that changed, every current bit on a state change, POLLIN for an
     * arrival. Only the waiters of this socket hear of it. */
    unsigned key = (events ^ rs->last_events) | (events & TCPSM_POLLIN);
    if (state != rs->last_state)
        key |= events | TCPSM_POLLHUP;
    rs->last_events = events;
    rs->last_state = state;
    if (!key)
        return;
    if (key & (TCPSM_POLLHUP | TCPSM_POLLERR))
        rt_wake_sock(rs);       /* an error or hang-up is for every waiter */
    else
        rt_wake_sock_event(rs);
    if (rs->epitems)
        rt_ep_sock_event(rs, key);
}

void rt_sock_wait_add(struct rt_sock *rs, struct rt_wqe *q, struct rt_waiter *w)
{
    q->w = w;
    q->rs = rs;
    q->exclusive = false;
    q->prev = NULL;
    q->next = rs->waiters;
    if (rs->waiters)
        rs->waiters->prev = q;
    rs->waiters = q;
}

void rt_sock_wait_add_excl(struct rt_sock *rs, struct rt_wqe *q, struct rt_waiter *w)
{
    q->w = w;
    q->rs = rs;
    q->exclusive = true;
    q->next = NULL;
    struct rt_wqe *t = rs->waiters;
    while (t && t->next)
        t = t->next;
    q->prev = t;
    if (t)
        t->next = q;
    else
        rs->waiters = q;
}

void rt_sock_wait_del(struct rt_wqe *q)
{
    struct rt_sock *rs = q->rs;
    if (!rs)
        return;
    if (q->prev)
        q->prev->next = q->next;
    else
        rs->waiters = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->next = q->prev = NULL;
    q->rs = NULL;
}

/* Under lock: a polling thread looked at rs; from now until
 * tcpsm_poller_end, events of rs (and only of rs and the other sockets it
 * looked at) wake it, as poll_wait() queues a poll table entry. The entry
 * holds a reference, so a socket closed meanwhile stays valid until then. */
void rt_poll_watch(struct rt_sock *rs)
{
    struct rt_waiter *w = self;
    if (!w || !w->polling)
        return;
    for (struct rt_wqe *q = rs->waiters; q; q = q->next)
        if (q->w == w)
            return;             /* already watching */
    if (w->nwatch == w->capwatch) {
        unsigned cap = w->capwatch ? 2 * w->capwatch : 8;
        /* Entries are linked into socket lists: grow by moving them. */
        struct rt_wqe *nw = rt_alloc(cap * sizeof(*nw));
        if (!nw) {
            rt_poller_add(w);   /* no memory: fall back to hearing every connection end */
            return;
        }
        for (unsigned i = 0; i < w->nwatch; i++) {
            struct rt_wqe *o = &w->watch[i];
            struct rt_sock *ors = o->rs;
            rt_sock_wait_del(o);
            rt_sock_wait_add(ors, &nw[i], w);
        }
        rt_free(w->watch);
        w->watch = nw;
        w->capwatch = cap;
    }
    rt_sock_wait_add(rs, &w->watch[w->nwatch++], w);
    rs->refs++;
}

static void unwatch_all(struct rt_waiter *w)
{
    for (unsigned i = 0; i < w->nwatch; i++) {
        struct rt_sock *rs = w->watch[i].rs;
        rt_sock_wait_del(&w->watch[i]);
        rt_sock_unref(rs);
    }
    w->nwatch = 0;
}

/* Clears the pending wake-up; reads the eventfd if it was written for it,
 * or if `force` (it polled readable: a signal handler's write,
 * runtime_signal, sets no flag). */
static void drain(struct rt_waiter *w, bool force)
{
    if (w->written || force) {
        uint64_t v;
        while (syscall(SYS_read, w->efd, &v, sizeof(v)) < 0 && errno == EINTR)
            ;
    }
    w->written = false;
    w->signalled = false;
}

/* ------------------------------------------------------------ leader */

/* Whoever waits drives (design.md; Onload's stack lock, Linux busy poll):
 * of the threads asleep in the stack, one, the leader, also polls the
 * link; when frames come it receives a bounded batch itself, runs the due
 * timers, and the core's events wake only the threads whose sockets became
 * ready. A frame for a sleeping reader thus costs one wake-up, not two
 * (receive thread, then reader). The others follow: asleep on their own
 * eventfd. A leader leaving the stack for good hands the link to a
 * follower (rt_lead_leave). The receive thread is the backstop: it stays
 * off the link while a leader exists and for RX_PARK_NS after the last one
 * left (a request/response thread comes straight back), then polls it. */

#define LEAD_BATCHES 4
/* A held ACK survives the waits that return at once for this long (then
 * the next wait sends it; a sleep, or the receive thread, at once): well
 * inside a peer's tail-loss probe (2 RTT + 2 jiffies) and its RTO. One held
 * for a lone short segment survives them until the delayed-ACK timer
 * (tcpsm_stack_release_acks_before): the peer's probe allows a delayed ACK
 * for a flight of one. */
#define RT_ACK_GRACE_NS (1000u * 1000u)

/* Under lock. The quick ACKs that an application thread's input held for
 * its replies (tcpsm_stack_input_hold) leave when a thread comes back to
 * wait, or when the receive thread takes the link: a reply, if there was
 * one, has gone by then and carried them. */
void rt_release_acks(void)
{
    if (rt.started && !rt.down && rt.sh->st)
        tcpsm_stack_release_acks(rt.sh->st, rt_clock());
}

void rt_release_acks_aged(void)
{
    if (rt.started && !rt.down && rt.sh->st) {
        uint64_t now = rt_clock();
        tcpsm_stack_release_acks_before(rt.sh->st, now, now - RT_ACK_GRACE_NS);
    }
}

/* app: called by an application thread inside a socket call, which runs
 * the application right after (its input may hold quick ACKs); false for
 * the receive thread. */
unsigned rt_link_service_from(bool app)
{
    if (!rt.started || rt.down || rt.np.fd < 0 || !rt.np.rx)
        return 0;
    struct tcpsm_frame frames[NETDEV_PACKET_BATCH];
    unsigned total = 0;
    if (!app)
        rt_release_acks();
    for (int b = 0; b < LEAD_BATCHES; b++) {
        int n = netdev_packet_recv(&rt.np, frames, NETDEV_PACKET_BATCH);
        if (n <= 0)
            break;
        if (b)
            rt_clock_stale();   /* each batch's input at its own time */
        if (app)
            tcpsm_stack_input_hold(rt.sh->st, frames, (unsigned)n, rt_clock());
        else
            tcpsm_stack_input(rt.sh->st, frames, (unsigned)n, rt_clock());
        total += (unsigned)n;
        if (n < NETDEV_PACKET_BATCH)
            break;
    }
    netdev_packet_recv_done(&rt.np);    /* the frames' ring slots back to the kernel */
    uint64_t now = rt_clock();
    if (app)
        atomic_store_explicit(&rt.app_rx_last, now, memory_order_relaxed);
    if (tcpsm_stack_next_deadline(rt.sh->st) <= now)
        tcpsm_stack_timers(rt.sh->st, now);
    return total;
}

unsigned rt_link_service(void)
{
    return rt_link_service_from(true);
}

static void follower_add(struct rt_waiter *w)
{
    if (w->following)
        return;
    w->following = true;
    w->f_prev = NULL;
    w->f_next = rt.followers;
    if (rt.followers)
        rt.followers->f_prev = w;
    rt.followers = w;
}

static void follower_del(struct rt_waiter *w)
{
    if (!w->following)
        return;
    if (w->f_prev)
        w->f_prev->f_next = w->f_next;
    else
        rt.followers = w->f_next;
    if (w->f_next)
        w->f_next->f_prev = w->f_prev;
    w->f_next = w->f_prev = NULL;
    w->following = false;
}

/* Under lock, before sleeping: leader if the link is free, else follower.
 * Returns the link fd to poll, or -1. *wake (absolute, UINT64_MAX: none)
 * is when the sleep must end: a leader's ends at the core's next timer
 * deadline too, so that it runs the timers itself (rt_drive_cover) and the
 * service thread is not woken for them. */
static int lead_begin(struct rt_waiter *w, uint64_t *wake)
{
    if (!rt.leader && rt.started && !rt.down && rt.np.fd >= 0) {
        rt.leader = w;
        w->leading = true;
        atomic_store_explicit(&rt.lead_active, true, memory_order_relaxed);
        uint64_t d = tcpsm_stack_next_deadline(rt.sh->st);
        if (d < *wake)
            *wake = d;
        rt.lead_until = *wake;
        return rt.np.fd;
    }
    follower_add(w);
    rt_t_nodrive = true;        /* its unlock before the sleep: it does not come back */
    return -1;
}

/* Under lock, after the sleep: services the link if it was readable, and
 * the timers that came due meanwhile. */
static void lead_end(struct rt_waiter *w, bool link_ready)
{
    follower_del(w);
    if (!w->leading)
        return;
    t_awake = true;                 /* it looks at `signalled` before it sleeps */
    if (link_ready)
        rt_link_service();
    else
        rt_drive_timers(false);
    t_awake = false;
    w->leading = false;
    rt.leader = NULL;
    rt.lead_until = 0;
    atomic_store_explicit(&rt.lead_last, rt_clock(), memory_order_relaxed);
    atomic_store_explicit(&rt.lead_active, false, memory_order_relaxed);
}

void rt_cancel_waits(struct rt_waiter *w)
{
    rt_lock();
    rt_blockers_cancel(w);
    unwatch_all(w);
    lead_end(w, false);
    w->polling = false;
    rt_t_in_wait = 0;
    rt_lead_leave(w);
    rt_unlock();
}

void rt_lead_leave(struct rt_waiter *w)
{
    (void)w;
    if (!rt.leader && rt.followers)
        rt_signal(rt.followers);        /* it wakes, finds no leader, and leads */
}

/* Busy polling (TCPSM_SPIN_US): only the leader spins, so there is never
 * more than one spinner. The link's ring is looked at in memory and the
 * kernel asked only every SPIN_ASK_EVERY looks (the eventfds, the caller's
 * kernel fds: seen up to ~1 us later while spinning): a ppoll per look took
 * ~0.4 us of a ~12 us ping-pong and delayed the sight of the reply by as
 * much. Lock not held. */
#define SPIN_ASK_EVERY 16
int tcpsm_spin(struct pollfd *p, unsigned n, uint64_t deadline)
{
    /* One look in memory first, spinning or not: the frames the caller's
     * unlock just sent often come back answered inside the send (veth runs
     * the peer in the sendmmsg), and a reply already in the ring needs no
     * ppoll. */
    if (netdev_packet_peek(&rt.np) > 0)
        return -1;
    if (rt.set.spin_ns == 0)
        return 0;
    uint64_t end = rt_now() + rt.set.spin_ns;
    if (end > deadline)
        end = deadline;
    struct timespec zero = { 0, 0 };
    for (unsigned i = 0; rt_now() < end; i++) {
        int peek = i % SPIN_ASK_EVERY ? netdev_packet_peek(&rt.np) : -1;
        if (peek > 0)
            return -1;
        if (peek == 0) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        long r = syscall(SYS_ppoll, p, n, &zero, NULL, 8);
        if (r > 0)
            return (int)r;
        if (r < 0)
            break;      /* EINTR: the caller's own wait sees to it */
    }
    return 0;
}

int rt_wait(struct rt_waiter *w, uint64_t deadline)
{
    if (w->signalled) {
        drain(w, false);
        return 0;
    }
    if (rt_proc_ready() < 0)
        return -ENETDOWN;
    uint64_t now = rt_clock();
    if (deadline != UINT64_MAX && deadline <= now)
        return -EAGAIN;
    rt_release_acks();
    uint64_t wake = deadline;
    int lfd = lead_begin(w, &wake);
    struct timespec ts, *tsp = NULL;
    if (wake != UINT64_MAX) {
        uint64_t left = wake > now ? wake - now : 0;
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        tsp = &ts;
    }
    struct pollfd p[2] = { { .fd = w->efd, .events = POLLIN }, { .fd = lfd, .events = POLLIN } };
    rt_unlock_sleep();
    long r;
    int e = 0;
    int sr = lfd >= 0 ? tcpsm_spin(p, 2, wake) : 0;
    if (sr < 0) {
        /* seen in the ring: the link is read without asking the kernel (an
         * eventfd written meanwhile is seen at the next wait, or at once
         * through `signalled`) */
        r = 1;
        p[0].revents = 0;
        p[1].revents = POLLIN;
    } else if (sr > 0) {
        r = sr;
    } else {
        /* ppoll, not a libc poll(): inside the preloaded library poll() is the shim's. */
        r = syscall(SYS_ppoll, p, 2, tsp, NULL, 8);
        e = errno;
    }
    rt_lock();
    lead_end(w, r > 0 && (p[1].revents & (POLLIN | POLLERR)));
    bool efd_ready = r > 0 && (p[0].revents & POLLIN);
    if (w->signalled || efd_ready)
        drain(w, efd_ready);
    if (r < 0)
        return e == EINTR ? -EINTR : -e;
    if (r == 0)
        return deadline != UINT64_MAX && rt_clock() >= deadline ? -EAGAIN : 0;
    return 0;
}

/* On rt.pollers every socket event wakes w (under lock; idempotent). */
void rt_poller_add(struct rt_waiter *w)
{
    if (!w->on_pollers) {
        w->on_pollers = true;
        w->p_prev = NULL;
        w->p_next = rt.sh->pollers;
        if (rt.sh->pollers)
            rt.sh->pollers->p_prev = w;
        rt.sh->pollers = w;
    }
}

void rt_poller_del(struct rt_waiter *w)
{
    if (w->on_pollers) {
        if (w->p_prev)
            w->p_prev->p_next = w->p_next;
        else
            rt.sh->pollers = w->p_next;
        if (w->p_next)
            w->p_next->p_prev = w->p_prev;
        w->p_next = w->p_prev = NULL;
        w->on_pollers = false;
    }
}

int tcpsm_poller_begin(void)
{
    rt_lock();
    struct rt_waiter *w = rt.me < 0 || rt.down ? NULL : rt_waiter_self();
    if (!w) {
        int e = rt.me < 0 || rt.down ? ENETDOWN : errno;
        rt_unlock();
        return -e;
    }
    if (rt_proc_ready() < 0) {
        rt_unlock();
        return -ENETDOWN;
    }
    /* A repeated begin follows a wake-up: always drain then (a signal
     * handler's write, runtime_signal, does not set `signalled`). */
    if (w->signalled || w->polling)
        drain(w, w->polling);
    /* Only what an earlier pass held: this wait may return at once with
     * the events that pass left (a read, then the read that finds the end
     * of the stream), and the segment the application sends next (its
     * FIN) carries the rest. All of them go before a sleep. */
    rt_release_acks_aged();
    if (!w->polling) {
        rt_t_in_wait++;
        /* An event loop under load finds work ready at every wait and so
         * never sleeps, never leads: the receive thread would then take
         * every frame (a wake-up per frame, and the lock contended with
         * this thread). The wait takes what the link holds itself first,
         * and keeps the receive thread parked (RX_PARK_NS) while it comes
         * back this often: frames queue on the link meanwhile and are
         * taken here in batches. */
        if (!rt.leader && rt.started && !rt.down) {
            rt_link_service();
            atomic_store_explicit(&rt.lead_last, rt_clock(), memory_order_relaxed);
        }
    }
    w->polling = true;
    /* What the loop's last batch of events sent may wait on: if this wait
     * finds more events, their replies join it (out_keep); it goes when the
     * thread sleeps (tcpsm_sleep_begin). Flushed here, nginx under ab sent
     * ~3 frames a batch (one connection's) and gained nothing. */
    rt_unlock();
    return w->efd;
}

int tcpsm_sleep_begin(int64_t *tmo_ns)
{
    struct rt_waiter *w = self;
    if (!w || !w->polling)
        return -1;
    rt_lock();
    rt_release_acks();
    /* Signalled by itself since it last drained (rt_signal): the eventfd
     * must show it, or the sleep ahead would miss it. */
    if (w->signalled && !w->written)
        efd_write(w);
    uint64_t now = rt_clock();
    uint64_t wake = *tmo_ns < 0 ? UINT64_MAX : now + (uint64_t)*tmo_ns;
    int lfd = lead_begin(w, &wake);
    if (wake != UINT64_MAX)
        *tmo_ns = wake > now ? (int64_t)(wake - now) : 0;
    rt_unlock_sleep();
    return lfd;
}

void tcpsm_sleep_end(bool link_ready)
{
    struct rt_waiter *w = self;
    if (!w)
        return;
    rt_lock();
    lead_end(w, link_ready);
    rt_unlock();
}

void tcpsm_poller_end(void)
{
    struct rt_waiter *w = self;
    if (!w)
        return;
    rt_lock();
    if (rt.me >= 0 && w->proc == rt.me) {  /* after exit left the stack: gone */
        unwatch_all(w);
        rt_poller_del(w);
        if (w->polling)
            rt_t_in_wait--;
        w->polling = false;
        rt_lead_leave(w);
    }
    rt_unlock();
}

/* fork child: the thread that forked is the only one here; its waiter (and
 * every other thread's) belongs to the parent's slot. */
void rt_wait_fork_child(void)
{
    if (self) {
        rt_fd_disown(self_efd);
        syscall(SYS_close, self_efd);
        self = NULL;
        self_efd = -1;
        pthread_setspecific(waiter_key, NULL);
    }
}
