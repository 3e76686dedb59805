/* Runtime internals shared by runtime*.c (internal header).
 *
 * THE LOCK. One mutex (rt.lock) protects the protocol core and everything
 * below; the core is only ever called with it held. Lock order: the shim's
 * locks (table, epoll), then rt.lock; nothing is taken while rt.lock is
 * held except the kernel's.
 *
 * WAITING AND WAKING (runtime_wait.c, runtime_epoll.c). Each thread that
 * waits has one eventfd (struct rt_waiter). A blocked call queues one entry
 * (struct rt_wqe) on its socket's wait queue; a poll/select thread one per
 * stack socket it looked at; an epoll instance one item per socket. The
 * core's sock_event callback, under the lock, computes the event's key
 * (bits that changed, POLLIN for an arrival) and reaches exactly those:
 * waiters are signalled (coalesced eventfd writes), epoll items that care
 * go on their instance's ready list, whose own eventfd is readable while
 * the list is non-empty. Registration always precedes the check, under the
 * lock, so no wake-up is lost.
 *
 * WHOEVER WAITS DRIVES. Of the threads asleep in the stack one leads: it
 * polls the link beside its eventfd and processes what comes (bounded),
 * the others follow; a leader that leaves hands the link to a follower.
 * The receive and timer threads are the backstop (runtime_thread.c).
 *
 * LOCKS AND SIGNALS (runtime_signal.c; the shim wraps every handler the
 * program installs, shim/signal_calls.c):
 *   1. No handler runs while its thread holds rt.lock or a shim lock marked
 *      with tcpsm_sig_hold: it is deferred and raised again on the same
 *      thread as the last such lock is released (rt_t_hold counts them; it
 *      is raised before a lock is taken and dropped after it is released).
 *      So a handler may make any stack call (close, write, epoll_ctl) and
 *      may siglongjmp: it never leaves a lock held, never self-deadlocks.
 *   2. A handler that runs anywhere inside a blocking stack call makes that
 *      call return EINTR (SA_RESTART restarts recv/send/accept, never poll,
 *      select or epoll, as Linux): the wrapper counts it (rt_t_sigseq) and
 *      writes the thread's eventfd, so a sleep that starts later returns at
 *      once, and the call compares the count with the one it started with.
 *   3. Before a handler runs inside a blocking call (rt_t_in_wait), every
 *      registration of the thread is withdrawn under the lock (wait-queue
 *      entries, poll watches, the link's lead): a siglongjmp out of the
 *      handler leaves nothing that points into the abandoned frame.
 *   4. fork(): rt.lock is taken around fork (runtime_exit.c); the child has
 *      no stack threads, no leader and no followers.
 *   5. The receive and timer threads block every signal.
 *
 * DESIGN FOR SHARED MEMORY (the processes issue: one stack shared by the
 * processes that use its address). What has to move into the shared region
 * and how it can, without raw per-process pointers:
 *   - rt.lock becomes a robust process-shared lock word (futex; owner tid +
 *     FUTEX_OWNER_DIED recovery), with Onload-style deferred-work flags in
 *     the same word: a thread that cannot take the lock sets "rx pending" /
 *     "timers due" and leaves the work to the holder instead of sleeping.
 *   - The leader is a word in the region (tid of the thread polling the
 *     link, 0 if none) taken with compare-and-swap; followers are counted,
 *     not listed. The link socket itself is per process (an fd), so each
 *     process that attaches opens its own AF_PACKET socket on the same
 *     fanout group (PACKET_FANOUT_HASH keeps a flow on one socket) or one
 *     process owns the link and the others only ever follow.
 *   - Wait queues: an entry names its waiter by (process index, waiter
 *     index) into a per-region waiter table, not by pointer; a waiter's
 *     wake-up is a futex word in that table (FUTEX_WAKE across processes)
 *     instead of an eventfd, or an eventfd the owning process reads, with
 *     a per-process relay thread turning futex wake-ups into eventfd writes
 *     for the threads that sleep in poll/epoll with kernel fds.
 *   - Socket handles (rt_sock) and epoll items become indices into region
 *     tables with generation counters (an index whose generation moved is
 *     stale: EBADF), so references survive mapping at other addresses.
 *   - The epoll ready list is a list of item indices in the region; each
 *     instance's "non-empty" notification is a futex word plus, per process
 *     holding the epoll fd, an eventfd in its real epoll set (a relay), since
 *     eventfds cannot be written from another process without passing them.
 *   - Signals stay per process and per thread (TLS: rt_t_hold, rt_t_sigseq,
 *     rt_t_in_wait); a dead process's registrations are found by its process
 *     index and dropped when the robust lock reports its death.
 * Today all of this is single-process: pointers, one mutex, eventfds.
 */
#ifndef TCPSM_RUNTIME_H
#define TCPSM_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "netdev_packet.h"
#include "pcap_writer.h"
#include "tcpsm/tcpsm.h"
#include "trace_log.h"

struct rt_sock;

/* One registration of a waiter on one socket's wait queue (Linux's
 * wait_queue_entry): a blocked call has one, a poll/select thread one per
 * stack socket it watches. */
struct rt_wqe {
    struct rt_waiter *w;
    struct rt_sock *rs;         /* NULL when not queued */
    struct rt_wqe *next, *prev;
};

/* A thread's wait handle: one eventfd per thread, created on first use. */
struct rt_waiter {
    int efd;
    bool signalled;             /* an eventfd write is pending (under rt.lock) */
    bool polling;               /* between tcpsm_poller_begin and _end */
    bool leading;               /* polls the link for everyone (rt.leader == this) */
    bool following;             /* on rt.followers: asleep, may be asked to lead */
    struct rt_waiter *f_next, *f_prev;  /* on rt.followers */
    bool on_pollers;            /* on rt.pollers: every connection end wakes it */
    struct rt_waiter *p_next, *p_prev;  /* on rt.pollers */
    /* Poll registrations: tcpsm_poll() of a socket while polling queues one
     * entry on that socket (freed at tcpsm_poller_end). */
    struct rt_wqe *watch;
    unsigned nwatch, capwatch;
    /* The blocking call in progress (struct blocker in runtime.c, on its
     * C stack), for rt_cancel_waits; NULL outside one. */
    void *blocker;
};

/* The runtime's side of a socket the application holds (tcpsm_sock_user). */
struct rt_sock {
    struct tcpsm_sock *sk;      /* NULL once closed: blocked callers then return -EBADF */
    struct rt_sock *next, *prev;        /* rt.socks */
    struct rt_wqe *waiters;     /* wait queue: blocked calls and poll/select threads */
    struct tcpsm_epitem *epitems;       /* epoll items watching this socket */
    unsigned refs;              /* blocked calls and epoll items (the application's own is sk != NULL) */
    /* What the last observer saw (rt_note_seen) or the last event reported:
     * an event that changes neither, and brings no data, wakes nobody. */
    unsigned last_events;
    int last_state;
};

struct rt_state {
    pthread_mutex_t lock;
    _Atomic unsigned long owner;        /* pthread_self() of the rt_lock() holder, 0 if none */
    int config_result;          /* tcpsm_rt_config(): 1, 0, -1; -2 not yet read */
    struct rt_settings set;
    uint32_t kaddr[64];         /* the kernel's own IPv4 addresses (host order), for routing */
    unsigned nkaddr;
    uint8_t kaddr6[32][16];     /* and IPv6 ones */
    unsigned nkaddr6;

    bool started, start_failed, down, child;
    /* Exit has begun: it closes (and the core may free) sockets the application still holds,
     * so from here on the application's handles are not dereferenced. */
    bool exiting;
    struct tcpsm_stack *st;
    struct netdev_packet np;
    struct pcap_writer *pcap;
    struct trace_log *trace;
    uint64_t t0;

    pthread_t rx_thr, timer_thr;
    int rx_stop_efd;
    pthread_cond_t timer_cond;  /* CLOCK_MONOTONIC */
    uint64_t timer_sleep_until; /* deadline the timer thread sleeps to, 0 when awake */
    bool timer_stop;

    struct rt_sock *socks;      /* held by the application */
    struct rt_waiter *pollers;
    /* Leader/follower receive (runtime_wait.c): the thread polling the link
     * while it sleeps, the others asleep, and when the last leader left
     * (the receive thread stays off the link for RX_PARK_NS after it). */
    struct rt_waiter *leader, *followers;
    _Atomic bool lead_active;
    _Atomic uint64_t lead_last;
    long nactive;               /* connections not yet closed (from trace events) */
};

extern struct rt_state rt;

/* runtime_clock.c */
uint64_t rt_now(void);          /* CLOCK_MONOTONIC, ns */

/* runtime.c */
void rt_lock(void);
/* rt_lock() with a bound, for the exit path: false if the lock could not
 * be had (held by this very thread — exit() from a signal handler that
 * interrupted a stack call — or by another thread for too long). */
bool rt_lock_for_exit(void);
/* Unlocks; first re-arms the timer thread if the core's next deadline moved
 * earlier than the one it sleeps to. */
void rt_unlock(void);

/* runtime_wait.c */
struct rt_waiter *rt_waiter_self(void);         /* NULL with errno if no eventfd */
void rt_signal(struct rt_waiter *w);            /* under lock; coalesced */
void rt_wake_sock(struct rt_sock *rs);          /* under lock: every waiter of rs */
void rt_wake_pollers(void);                     /* under lock */
void rt_poller_add(struct rt_waiter *w);               /* under lock */
void rt_poller_del(struct rt_waiter *w);               /* under lock */
void rt_poll_watch(struct rt_sock *rs);                /* under lock: see runtime_wait.c */
void rt_sock_wait_add(struct rt_sock *rs, struct rt_wqe *q, struct rt_waiter *w);
void rt_sock_wait_del(struct rt_wqe *q);        /* no-op if q is not queued */
/* Under lock: drops a reference on rs (blocked call or epoll item); frees
 * it when the application has closed it and nothing else holds it. */
void rt_sock_unref(struct rt_sock *rs);
/* Under lock: sleeps (lock released) until signalled, deadline (monotonic
 * ns, UINT64_MAX = none) or a signal handler. 0 woken, -EAGAIN deadline
 * passed, -EINTR. Returns at once if already signalled. */
int rt_wait(struct rt_waiter *w, uint64_t deadline);
/* Under lock: receives a bounded batch from the link, hands it to the core
 * and runs due timers. Returns the frames taken. */
unsigned rt_link_service(void);
/* Under lock: w leaves the stack call: if nobody leads, ask a follower to. */
void rt_lead_leave(struct rt_waiter *w);
void rt_fd_own(int fd);
void rt_fd_disown(int fd);
/* Under lock: a thread is about to sleep having seen rs's readiness. */
void rt_note_seen(struct rt_sock *rs);
/* The core's sock_event callback. */
void rt_sock_event(void *ctx, struct tcpsm_sock *sk, unsigned events);

/* runtime_epoll.c */
/* Under lock, from rt_sock_event: `key` holds the bits that changed (and
 * POLLIN for an arrival); queues the items that care on their instances'
 * ready lists (Linux ep_poll_callback). */
void rt_ep_sock_event(struct rt_sock *rs, unsigned key);

/* runtime_signal.c */
extern __thread volatile unsigned rt_t_sigseq;  /* handlers that ran on this thread */
extern __thread volatile int rt_t_hold;         /* > 0: handlers are deferred */
extern __thread volatile int rt_t_in_wait;      /* registrations to withdraw on a signal */
void rt_sig_reraise(void);
bool rt_sig_deferred(void);

/* runtime_wait.c: a handler interrupted w inside a blocking call: withdraw
 * every registration (takes the lock; the thread does not hold it). */
void rt_cancel_waits(struct rt_waiter *w);
struct rt_waiter *rt_waiter_peek(void);         /* the thread's waiter, NULL if none yet */
/* runtime.c: withdraws the blocking calls in progress on w (under lock). */
void rt_blockers_cancel(struct rt_waiter *w);

/* runtime_thread.c */
int rt_threads_start(void);     /* under lock; 0 or -errno */
void rt_threads_stop(void);     /* called WITHOUT the lock held; joins */

/* runtime_exit.c */
void rt_atfork_install(void);

#endif
