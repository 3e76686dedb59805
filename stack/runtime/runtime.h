/* Runtime internals shared by runtime*.c (internal header).
 *
 * THE LOCK. One mutex (the stack lock: a robust process-shared mutex in the
 * shared region, rt_lock) protects the protocol core and everything below;
 * the core is only ever called with it held. Lock order: the shim's
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
 * The receive and timer threads are the backstop (runtime_thread.c). The
 * receive thread never sleeps on a lock that an application thread of its
 * own process holds: it leaves the link's frames to it (rt.rx_deferred),
 * and that thread's rt_unlock takes them. The service thread, woken for a
 * due timer, does the same (rt.svc_deferred): the holder runs the timers.
 * The timers too: a leader's sleep ends at the core's next deadline, and an
 * application thread runs the due timers as it releases the lock; while
 * one comes back within RT_DRIVE_PARK_NS the timer thread leaves them to
 * it.
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
 *      handler leaves nothing that points into the abandoned frame. What the
 *      shim's side of the call holds (socket and epoll references, an
 *      accept's placeholder fd) is recorded per thread and released at the
 *      thread's next socket call or close once the handler is seen to have
 *      been left by a jump (shim/inflight.c).
 *   4. fork(): the stack lock is taken around fork (runtime_procs.c); the child has
 *      no stack threads, no leader and no followers.
 *   5. The receive and timer threads block every signal.
 *   6. A signal that ends the process by its default action (SIGTERM,
 *      SIGINT, SIGHUP, SIGPIPE, ...: the shim catches them while the program
 *      leaves them at SIG_DFL) is deferred like a handler while its thread
 *      holds a lock; otherwise the thread takes the stack lock before the
 *      process dies (tcpsm_signal_fatal), so no other thread of the process
 *      is halfway through a change to the shared region, and marks it left
 *      clean: the next holder recovers it (EOWNERDEAD) with nothing to
 *      suspect. SIGKILL (and _exit while another thread is in the stack)
 *      still can end a process halfway through: the next taker gets
 *      EOWNERDEAD, counts it (lock_recovered) and repairs the region before
 *      anything else runs on it (runtime_repair.c).
 *
 * SHARED MEMORY (runtime_procs.c, shm_region.c; README "Process model").
 * The stack is shared by every process on its address (forked, exec'd or
 * started separately): the core's memory and everything a socket event can reach (rt_sock, waiters, wait
 * queue entries, epoll instances and items, the process table) lives in a
 * region mapped at the same fixed address in every process, so plain
 * pointers stay valid. A waiter's or instance's eventfd is valid only in
 * its process: another process marks it and kicks that process's service
 * thread (a futex word in its slot), which writes it. The region holds no
 * address of code or of a process's own memory. Per process: the fd
 * table, the link socket (inherited by fork), the threads, the leader and
 * followers, signal state (TLS), and the host of the core (its link and
 * callbacks: the core keeps only an index, tcpsm_stack_bind), so any process
 * with the library at any address runs the core once it has started.
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
#include "shm_region.h"
#include "tcpsm/tcpsm.h"
#include "trace_log.h"

/* Processes sharing one stack, at most (a slot each in the region). */
#define RT_MAX_PROCS 256
/* Sockets the applications hold at once, over all processes. */
#define RT_MAX_IDS 65536u

struct rt_sock;

/* One registration of a waiter on one socket's wait queue (Linux's
 * wait_queue_entry): a blocked call has one, a poll/select thread one per
 * stack socket it watches. */
struct rt_wqe {
    struct rt_waiter *w;
    struct rt_sock *rs;         /* NULL when not queued */
    bool exclusive;             /* a blocked accept: one such waiter is woken per event */
    struct rt_wqe *next, *prev;
};

/* A thread's wait handle, in the shared region: one eventfd per thread
 * (valid in its own process only), created on first use. A signal from
 * another process cannot write that eventfd: it marks the waiter `remote`
 * and kicks the owner's service thread, which writes it. */
struct rt_waiter {
    int efd;
    uint16_t proc;              /* owner's slot in rt_shared.procs */
    bool remote;                /* signalled from another process, not yet relayed */
    struct rt_waiter *w_next, *w_prev;  /* on its process's list */
    struct rt_wqe bq;           /* the entry of its blocking call (one at a time) */
    bool signalled;             /* a wake-up is pending (under the lock) */
    /* The eventfd was written for it. A thread that signals its own waiter
     * inside rt_link_service_awake (the leader whose link input readied its
     * socket) is awake and only sets `signalled`; it writes the eventfd
     * itself only if it goes to sleep before clearing it (tcpsm_sleep_begin). */
    bool written;
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

/* The runtime's side of a socket some application holds (tcpsm_sock_user),
 * in the shared region. */
struct rt_sock {
    struct tcpsm_sock *sk;      /* NULL once closed everywhere: blocked callers get -EBADF */
    uint32_t id;                /* index in rt_shared.socks and the held bitmaps */
    unsigned users;             /* processes holding it (an open file description each) */
    struct rt_wqe *waiters;     /* wait queue: blocked calls and poll/select threads */
    struct tcpsm_epitem *epitems;       /* epoll items watching this socket */
    unsigned refs;              /* blocked calls, poll entries and epoll items (any process) */
    /* What the last observer saw (rt_note_seen) or the last event reported:
     * an event that changes neither, and brings no data, wakes nobody. */
    unsigned last_events;
    int last_state;
    /* Its placeholder kernel socket (tcpsm_placeholder): how a program
     * exec'd by a process that holds it finds it on an inherited fd. */
    uint64_t ph_dev, ph_ino;
    /* F_SETOWN / F_SETOWN_EX (tcpsm_set_owner): who gets SIGURG when a new
     * urgent pointer arrives, and SIGIO with O_ASYNC; owner_id 0 = nobody.
     * Kept with the socket, as Linux keeps them with its one file. */
    int owner_type;             /* F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP */
    int owner_id;
    int owner_tgid;             /* F_OWNER_TID: the process the thread was in when set */
    bool async;                 /* O_ASYNC (tcpsm_set_async) */
    int async_sig;              /* F_SETSIG: 0 = plain SIGIO */
    int async_fd;               /* the fd O_ASYNC was set through: si_fd */
    unsigned readers;           /* threads asleep in recv: no POLL_IN (SOCK_WAKE_WAITD) */
};

/* A stack socket sent over AF_UNIX and not yet received: the message's
 * reference (one of rs->users), found by the placeholder's identity. */
#define RT_MAX_PASSES 256u
#define RT_PASS_NS (60ull * 1000000000ull)
struct rt_pass {
    bool used;
    struct rt_sock *rs;
    uint32_t id;                /* rs's id: rs is valid while socks[id] is still rs */
    uint64_t dev, ino;
    uint64_t at;                /* when it was sent */
};

/* One process attached to the stack. */
struct rt_proc {
    _Atomic int pid;            /* 0 free; -1 reserved by a fork in progress */
    _Atomic uint32_t futex;     /* bumped to wake the service thread */
    bool kicked;                /* a kick is pending (under the lock) */
    bool left;                  /* exited normally; the slot waits for the pid to go */
    bool driving;               /* its receive and service threads run */
    bool link;                  /* has a link socket open (its own or one inherited by fork) */
    uint32_t nheld;             /* bits set in held */
    uint64_t reserved_at;       /* when a fork reserved the slot */
    struct rt_waiter *waiters;  /* every waiter of this process */
    struct tcpsm_ep *ep_pending;        /* epoll instances it holds that others made ready */
    uint64_t held[RT_MAX_IDS / 64];     /* the sockets it holds */
};

/* The runtime's state shared by every process of the stack (region root). */
struct rt_shared {
    struct tcpsm_stack *st;     /* made by the first process to start */
    /* The PACKET_FANOUT group of the stack's link sockets: each process
     * that drives the stack reads its own member (a forked child its
     * parent's until it drives: runtime_link.c), so that every frame is
     * received once, by one of them (any process may process any frame). */
    uint16_t fanout_id;
    uint64_t t0;
    struct rt_proc procs[RT_MAX_PROCS];
    /* Every slot ever taken is below this (slot_take raises it, under the
     * lock; it never falls): the scans that run often (rt_live_others,
     * rt_others_attached: the service thread's every pass, the link's
     * check every 10 ms) stop there instead of reading 256 slots, one in
     * use for a single program (1% of a stack-side nginx's samples). */
    _Atomic int procs_hi;
    struct rt_sock *socks[RT_MAX_IDS];
    uint32_t next_id;           /* where the search for a free id starts */
    uint32_t nsocks;
    struct rt_waiter *pollers;
    long nactive;               /* connections not yet closed (from trace events) */
    uint64_t lock_recovered;    /* lock taken over from a holder that died halfway */
    /* Lock taken over from a process that died of a signal's default action
     * holding it on purpose, between operations (tcpsm_signal_fatal). */
    uint64_t lock_recovered_clean;
    bool lock_left_clean;       /* set by such a holder before it dies */
    uint64_t procs_reaped;      /* processes gone without leaving (kill -9) */
    uint64_t no_id;             /* socket creations refused: RT_MAX_IDS */
    struct tcpsm_ep *eps;       /* every epoll instance (runtime_epoll.c) */
    /* Stack sockets in flight in AF_UNIX messages (runtime_pass.c). */
    struct rt_pass passes[RT_MAX_PASSES];
    unsigned npasses;
    uint64_t pass_full, pass_expired;
    int share_pid;              /* the process serving the socket file (TCPSM_SHARE), 0 none */
};

struct rt_state {
    pthread_mutex_t cfg_lock;   /* the configuration, before the region exists */
    _Atomic unsigned long owner;        /* pthread_self() of the rt_lock() holder, 0 if none */
    _Atomic bool owner_app;             /* ... and it is an application thread of this process */
    int config_result;          /* tcpsm_rt_config(): 1, 0, -1; -2 not yet read */
    struct rt_settings set;
    uint32_t kaddr[64];         /* the kernel's own IPv4 addresses (host order), for routing */
    unsigned nkaddr;
    uint8_t kaddr6[32][16];     /* and IPv6 ones */
    unsigned nkaddr6;

    struct shm_region *reg;     /* mapped at config time */
    struct rt_shared *sh;       /* reg->root */
    char reg_name[128];
    int me;                     /* this process's slot in sh->procs, -1 before attach */
    /* Exec'd by a process that held stack sockets (rt_attach): the ids
     * claimed through inherited placeholders (runtime_exec.c), until
     * tcpsm_rt_exec_end; NULL otherwise. */
    uint64_t *exec_claimed;
    int fork_slot;              /* slot reserved for the child of a fork in progress */

    /* This process's threads and link run (started); a forked child starts
     * its own on first use (need_threads). */
    bool started, start_failed, down, need_threads;
    /* Exit has begun: it closes (and the core may free) sockets the application still holds,
     * so from here on the application's handles are not dereferenced. */
    bool exiting;
    struct netdev_packet np;
    /* A link socket the stack's owner handed over (share.h), until start
     * adopts it; -1 if none. */
    int link_given;
    /* np's socket receives for this process (opened by or for it, or its
     * parent's when it could get none); link_tx: it is a send-only socket
     * of its own, got at fork, that rt_link_own makes receive. */
    bool link_own, link_tx;
    struct pcap_writer *pcap;
    struct trace_log *trace;

    pthread_t rx_thr, svc_thr;
    int rx_stop_efd, rx_ep;
    /* Deadline the service thread sleeps to, 0 when awake (written without
     * the lock while it sleeps on, runtime_thread.c). */
    _Atomic uint64_t svc_sleep_until;
    bool svc_stop;

    /* Leader/follower receive (runtime_wait.c), within this process: the
     * thread polling the link while it sleeps, the others asleep, and when
     * the last leader left (the receive thread stays off the link for
     * RX_PARK_NS after it). */
    struct rt_waiter *leader, *followers;
    _Atomic bool lead_active;
    _Atomic uint64_t lead_last;
    /* When an application thread last took frames from the link itself
     * (a blocking call's first look, a non-blocking call about to say
     * EAGAIN, an event loop's wait): the receive thread stays off the link
     * for RX_PARK_NS after it too, as after a leader (a request/response
     * thread that finds its reply at its first look never leads). */
    _Atomic uint64_t app_rx_last;
    /* The receive thread found frames and the lock taken by a thread of
     * this process: it leaves them to the holder, which takes them before
     * it unlocks (rt_unlock), instead of sleeping on the lock and waking
     * for it (Onload's deferred work on its stack lock). */
    _Atomic bool rx_deferred;
    /* The same for the service thread: it woke for a due timer (not for a
     * kick) and found the lock taken by a thread of this process; the
     * holder runs the due timers as it unlocks (rt_unlock), and the
     * service thread looks again RT_DRIVE_PARK_NS later instead of
     * sleeping on the lock (a futex wake-up from the holder's unlock and a
     * context switch on each side, ~0.1 per connection of nginx under ab). */
    _Atomic bool svc_deferred;
    /* Timers driven by the application's threads (runtime_thread.c,
     * rt_drive_cover): when one of them last released the lock (it ran the
     * timers due then) and will soon be back; and the time the leader
     * asleep now wakes at the latest (its sleep ends at the core's next
     * deadline), UINT64_MAX if unbounded. */
    _Atomic uint64_t drive_last;
    uint64_t lead_until;
    /* The receive thread parked because an application thread took the
     * link's frames itself (not for a leader): it sleeps without a timer
     * and the service thread, which wakes while they drive anyway, wakes
     * it (rx_stop_efd, rx_stop unset) once none came back by rx_resume
     * (runtime_thread.c rt_rx_watch_*). Before, it woke every RX_PARK_NS to
     * look: nginx under ab, 0.1-0.2 context switches per connection. */
    _Atomic bool rx_watch, rx_stop;
    _Atomic uint64_t rx_resume;
};

extern struct rt_state rt;

/* The receive thread stays off the link while an application thread
 * polls it (runtime_wait.c, leader) and for this long after the last one
 * left or took frames itself, so that a thread that comes straight back is
 * not raced for its frames; past it, frames to idle sockets wait at most
 * this long. */
#define RX_PARK_NS (2000u * 1000u)
/* The receive thread's longest sleep while the service thread watches for
 * it (rx_watch): a bound should it never be woken. */
#define RX_WATCH_MAX_NS (50u * 1000u * 1000u)
/* runtime_thread.c: the parked receive thread's watch (rt.rx_watch) */
uint64_t rt_rx_watch_resume(void);      /* when it must look at the link again */
uint64_t rt_rx_watch_bound(uint64_t d); /* service thread: its sleep to d, bounded by that */
void rt_rx_watch_check(uint64_t now);   /* service thread, awake: wake it if due */
void rt_rx_watch_begin(uint64_t resume);        /* receive thread, parking */

/* runtime_clock.c */
uint64_t rt_now(void);          /* CLOCK_MONOTONIC, ns */
/* Under the stack lock: rt_now() read once per hold, again after the
 * link's system calls (rt_clock_stale). A round trip of a request/response
 * program took 12-16 clock reads (~85 ns each on this project's VM), now
 * 3-4. Outside a hold it reads afresh every time (nothing is kept: the
 * hold's begin and end are the only places that open and close the cache).
 * Never for a loop that waits for time to pass under the lock. */
uint64_t rt_clock(void);
/* 0: not in a hold (no caching); 1: in a hold, not read yet; else the reading */
extern __thread uint64_t rt_t_clock;
static inline void rt_clock_hold_begin(void) { rt_t_clock = 1; }
static inline void rt_clock_hold_end(void) { rt_t_clock = 0; }
static inline void rt_clock_stale(void)
{
    if (rt_t_clock)
        rt_t_clock = 1;
}

/* runtime.c */
void rt_lock(void);
/* rt_lock() with a bound, for the exit path: false if the lock could not
 * be had (held by this very thread — exit() from a signal handler that
 * interrupted a stack call — or by another thread for too long). */
bool rt_lock_for_exit(void);
/* rt_lock() if free at once: false if another thread holds it. */
bool rt_trylock(void);
/* The receive thread's lock: taken (true), or, held by an application
 * thread of this process, left to it with rt.rx_deferred raised (false):
 * its rt_unlock takes the link's frames. */
bool rt_rx_lock_or_defer(void);
/* The service thread's, for due timers: taken (true), or, held by an
 * application thread of this process, left to it with rt.svc_deferred
 * raised (false): its rt_unlock runs the due timers. */
bool rt_svc_lock_or_defer(void);
/* Set in the runtime's own threads (receive, service, control, share): their
 * unlock does not take the receive thread's deferred frames, nor run the
 * timers (they do not drive: rt_drive_cover). */
extern __thread bool rt_t_runtime;
/* Unlocks. An application thread first runs the timers that are due (it
 * drives the stack's timers while it comes back often: rt_drive_cover).
 * Then re-arms the timer thread if the core's next deadline moved earlier
 * than the one it sleeps to and nobody else will see it in time. */
void rt_unlock(void);
int rt_proc_ready(void);        /* under lock: see runtime.c */
/* Under lock: this process starts on the stack (its link, its threads) if it
 * has not yet (an exec'd image); 0 or -ENETDOWN. */
int rt_start(void);

/* runtime_wait.c */
struct rt_waiter *rt_waiter_self(void);         /* NULL with errno if no eventfd */
void rt_signal(struct rt_waiter *w);            /* under lock; coalesced */
void rt_self_flush(void);       /* under lock: this thread's pending wake-up onto its eventfd */
void rt_wake_sock(struct rt_sock *rs);          /* under lock: every waiter of rs */
/* Under lock: rs's waiters for an event: every one, except that of the
 * exclusive ones (blocked accepts) only the first not yet woken. */
void rt_wake_sock_event(struct rt_sock *rs);
void rt_wake_pollers(void);                     /* under lock */
void rt_poller_add(struct rt_waiter *w);               /* under lock */
void rt_poller_del(struct rt_waiter *w);               /* under lock */
void rt_poll_watch(struct rt_sock *rs);                /* under lock: see runtime_wait.c */
void rt_sock_wait_add(struct rt_sock *rs, struct rt_wqe *q, struct rt_waiter *w);
/* The same for an exclusive waiter, queued behind the others (Linux's
 * add_wait_queue_exclusive: the longest waiting is woken first). */
void rt_sock_wait_add_excl(struct rt_sock *rs, struct rt_wqe *q, struct rt_waiter *w);
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
/* rt_link_service() where the caller looks at its own waiter's `signalled`
 * before any sleep: a wake-up of its own waiter then writes no eventfd. */
unsigned rt_link_service_awake(void);
/* The same window around other code (tests). */
void rt_self_awake(bool on);
/* The same; app false for the receive thread (it holds no quick ACK and
 * first sends the ones held: see tcpsm_stack_input_hold). */
unsigned rt_link_service_from(bool app);
/* Under lock: sends the quick ACKs held for replies that did not come. */
void rt_release_acks(void);
void rt_release_acks_aged(void);      /* those held over RT_ACK_GRACE_NS ago */
/* Under lock: w leaves the stack call: if nobody leads, ask a follower to. */
void rt_lead_leave(struct rt_waiter *w);
void rt_fd_own(int fd);
void rt_fd_disown(int fd);
/* Under lock: a thread is about to sleep having seen rs's readiness. */
void rt_note_seen(struct rt_sock *rs);
/* The core's sock_event callback. */
void rt_sock_event(void *ctx, struct tcpsm_sock *sk, unsigned events);
/* runtime_sigio.c: sig (info: F_SETSIG's siginfo with its POLL_* si_code;
 * NULL: plain) to an F_SETOWN owner (F_OWNER_PID / _PGRP / _TID, its id,
 * and a thread's process); false when the signal queue was full. And
 * SIGIO or async_sig for one POLL_* reason, as Linux send_sigio. */
bool rt_owner_signal(int type, int id, int tgid, int sig, const siginfo_t *info);
void rt_owner_sigio(int type, int id, int tgid, int async_sig, int fd, int reason);
/* Under lock, in the service thread: write the eventfds of this process's
 * waiters and epoll instances that other processes signalled. */
void rt_relay_remote(void);
void rt_wait_fork_child(void);  /* fork child: forget the parent's waiter */

/* runtime_epoll.c */
/* Under lock, from rt_sock_event: `key` holds the bits that changed (and
 * POLLIN for an arrival); queues the items that care on their instances'
 * ready lists (Linux ep_poll_callback). */
void rt_ep_sock_event(struct rt_sock *rs, unsigned key);
struct rt_proc;
/* Under lock, in the service thread: write the eventfds of this process's
 * instances that other processes made ready. */
void rt_ep_relay(struct rt_proc *p);
void rt_ep_orphan_proc(int proc);       /* under lock: that process is gone */
/* Under lock, after a holder died halfway (runtime_repair.c): checks the
 * instances, their items and ready lists, each socket's item list and the
 * pending lists; fix: cuts what points at no live block, rewrites back
 * links and counts, rebuilds the ready lists from the items' flags and
 * raises every instance with one. Returns the faults found. */
unsigned rt_ep_check(bool fix);
void rt_ep_sock_gone(struct rt_sock *rs);  /* under lock: its last reference went: off every instance */
void rt_ep_fork(int parent, int child); /* under lock: the child holds the parent's instances */

/* runtime_signal.c */
extern __thread volatile unsigned rt_t_sigseq;  /* handlers that ran on this thread */
extern __thread volatile int rt_t_hold;         /* > 0: handlers are deferred */
extern __thread volatile int rt_t_in_wait;      /* registrations to withdraw on a signal */
/* A reply this thread sent is held (TCPSM_MSG_HOLD): 1 during that call,
 * 2 after it; the end of its next stack call (rt_unlock) sends it. */
extern __thread unsigned char rt_t_out_held;
extern __thread struct tcpsm_sock *rt_t_out_sk;     /* the socket of that reply */
extern __thread bool rt_t_nodrive;      /* the next unlock is a follower's, before its sleep */
/* rt_unlock before the thread sleeps: the frames waiting (runtime.c
 * out_keep) go now, and a cycle of its loop ends. */
void rt_unlock_sleep(void);
/* At most this long a batch of frames waits past the call that made it. */
#define RT_OUT_HOLD_NS (500u * 1000u)
void rt_sig_reraise(void);
bool rt_sig_deferred(void);

/* runtime_wait.c: a handler interrupted w inside a blocking call: withdraw
 * every registration (takes the lock; the thread does not hold it). */
void rt_cancel_waits(struct rt_waiter *w);
struct rt_waiter *rt_waiter_peek(void);         /* the thread's waiter, NULL if none yet */
/* runtime.c: withdraws the blocking calls in progress on w (under lock). */
void rt_blockers_cancel(struct rt_waiter *w);

/* runtime_procs.c: held around a runtime thread's allocations outside the
 * stack lock (the stats file): fork() waits for them. */
void rt_fork_gate_enter(void);
void rt_fork_gate_leave(void);

/* runtime_thread.c */
/* A runtime thread running fn(NULL), all signals blocked in it (they are
 * the application's); returns once it has started (its C library's and a
 * sanitizer's set-up done), 0 or the pthread_create error. */
int rt_thread_spawn(pthread_t *t, void *(*fn)(void *));
int rt_threads_start(void);     /* under lock; 0 or -errno */
void rt_threads_stop(void);     /* called WITHOUT the lock held; joins */
void rt_kick(int proc);         /* under lock: wake that process's service thread */
/* The service thread leaves the timers to the application's threads for
 * this long after one of them last released the lock (or after the leader
 * asleep now wakes): a thread that comes back that often runs them itself
 * (rt_unlock, a leader's sleep), and a timer waits at most this long more
 * when none comes back (a descheduled thread on a loaded machine). 1 ms:
 * the lateness tcp_pace_sent earns back (max(SRTT, 1 ms)), and within the
 * granularity of Linux's own TCP timers (jiffies) but pacing's. */
#define RT_DRIVE_PARK_NS (1000u * 1000u)
/* Under lock: until when the application's threads cover a timer due at d
 * (0: they do not; the service thread must wake at d). */
uint64_t rt_drive_cover(uint64_t now, uint64_t d);
/* Under lock: when the service thread looks again, the core's next
 * deadline being d (0: now); *past_cover: it sleeps past the cover, to d
 * (runtime_thread.c). */
uint64_t rt_svc_wake_at(uint64_t now, uint64_t d, bool *past_cover);
/* Under lock: runs the core's timers if one is due (an application thread
 * that drives); returns the time it looked. flush: the thread may sleep
 * next without looking again, so a wake-up of its own that the timers
 * caused goes onto its eventfd (rt_self_flush). */
uint64_t rt_drive_timers(bool flush);
/* fork child (the parent holds the lock): this process has no threads yet
 * (started on first use, with the inherited link socket). */
void rt_fork_child_reset(int parent);

/* runtime_link.c: this process's link socket */
/* Config time, before the region: a process without CAP_NET_RAW gets a
 * link socket (and the region's fd, *region_fd, -1 if none) from the
 * stack's owner. 0, or -1 with the reason in err. */
int rt_link_fetch(int *region_fd, char *err, size_t errlen);
int rt_link_open(char *err, size_t errlen);     /* under lock, at start: open or adopt, join */
void rt_link_own(void);         /* under lock, threads start: this process's member receives */
void rt_link_fork_child(void);  /* fork child: a send-only socket of its own for the parent's */

/* runtime_share.c: a privileged process serving the socket file (TCPSM_SHARE) */
void rt_share_start(void);      /* at start, after the link: a no-op without TCPSM_SHARE */
void rt_share_stop(void);       /* at exit, without the lock */
void rt_share_fork_child(void); /* the child closes its copy of the listener */
/* Under lock, from the service thread: takes over serving the socket file
 * when its owner is gone and this process stands by; returns when to look
 * again (UINT64_MAX: only when kicked). */
uint64_t rt_share_poll(uint64_t now);

/* runtime_procs.c: process slots, held sockets, fork, dead processes */
int rt_attach(char *err, size_t errlen);        /* config time: map the region, take a slot */
void rt_alloc_install(void);    /* the core allocates from the region */
void *rt_alloc(size_t n);       /* under lock: zeroed region memory, NULL when exhausted */
void rt_free(void *p);
bool rt_held(const struct rt_sock *rs);
void rt_hold(struct rt_sock *rs);       /* this process now holds rs */
int rt_id_new(struct rt_sock *rs);      /* -1 when all RT_MAX_IDS are in use */
void rt_id_free(struct rt_sock *rs);
/* Under lock: drop this process's reference to rs; the last reference
 * anywhere closes the socket (abort: with a reset). */
void rt_release(struct rt_sock *rs, bool abort);
/* Under lock: one of rs's users that is no process (a pass) goes; the last closes it. */
void rt_users_drop(struct rt_sock *rs, bool abort);
void rt_pass_sweep(void);
/* Under lock: another process slot was just taken (fork, posix_spawn): this
 * process's service thread, if it sleeps past its next check for dead
 * processes (it slept alone), wakes to schedule one (runtime_thread.c). */
void rt_svc_reap_soon(void);       /* under lock: passes not received in time expire */
void rt_reap(void);             /* under lock: forget processes that died */
int rt_live_others(void);       /* under lock: other processes keeping the stack alive */
bool rt_others_attached(void);  /* under lock: any other slot in use */
/* Under lock, before opening this process's link: the fanout group to
 * join (0: none alive, make one and rt_fanout_set its id). */
uint16_t rt_fanout_get(void);
void rt_fanout_set(uint16_t id);
void rt_leave(void);            /* under lock: this process detaches */
/* runtime_audit.c, under lock: logs words of the region that point into
 * this process's loaded images (TCPSM_LOG=debug, at exit). */
void rt_region_audit(void);
/* runtime_repair.c, under lock. rt_repair: after a holder died halfway
 * (EOWNERDEAD): the allocator, the runtime's shared lists, the core
 * (tcpsm_stack_repair), then the dead holder's unreferenced allocations;
 * every waiter and instance is woken to look again. rt_audit: checks the
 * same without changing anything; the faults found, the first in why. */
void rt_repair(void);
unsigned rt_audit(char *why, size_t whylen);
void rt_audit_report(void);     /* TCPSM_AUDIT=1: rt_audit's result on stderr */
void rt_atfork_install(void);

#endif
