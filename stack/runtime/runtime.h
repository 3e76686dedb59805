/* Runtime internals shared by runtime*.c (internal header).
 *
 * One mutex (rt.lock) protects the protocol core and everything below; the
 * core is only ever called with it held. Threads that wait sleep on their
 * own eventfd (struct rt_waiter) outside the lock; the core's sock_event
 * callback, run under the lock, writes to the eventfds of the threads
 * waiting on that socket and of every poller thread. */
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

/* runtime_thread.c */
int rt_threads_start(void);     /* under lock; 0 or -errno */
void rt_threads_stop(void);     /* called WITHOUT the lock held; joins */

/* runtime_exit.c */
void rt_atfork_install(void);

#endif
