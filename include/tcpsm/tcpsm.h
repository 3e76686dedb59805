/* tcpsm runtime API: what the shim calls.
 *
 * Thread-safe (one stack lock inside), blocking where asked, and POSIX in
 * its results: every function returns >= 0 on success or -errno, with the
 * errno a Linux TCP socket gives. The runtime owns the threads (receive,
 * timers), the clock and the AF_PACKET link; it is configured from the
 * TCPSM_* environment variables (README) on first use.
 *
 * Blocking: `nonblock` nonzero means never sleep (-EAGAIN / -EINPROGRESS);
 * otherwise sleep until done, until timeout_ns elapses (-EAGAIN, as
 * SO_RCVTIMEO/SO_SNDTIMEO do; timeout_ns < 0 means no timeout), or until a
 * signal handler runs (-EINTR). Sleeps are wake-ups from the stack, never
 * polling loops.
 */
#ifndef TCPSM_TCPSM_H
#define TCPSM_TCPSM_H

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tcpsm/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the environment once. Returns 1 if the stack is enabled (TCPSM_IF
 * set and every TCPSM_* valid), 0 if disabled (TCPSM_IF unset: pure
 * pass-through, silent), -1 on a bad value (one line on stderr naming the
 * variable and the expected form has been printed; the caller exits 1).
 * Threads and the link start lazily on the first tcpsm_socket(). */
int tcpsm_rt_config(void);
bool tcpsm_rt_enabled(void);
/* Should a connect to dst (network byte order) go through the stack?
 * False for loopback and anything the stack cannot route. */
bool tcpsm_rt_routable(in_addr_t dst);
/* The same for either family (IPv4 as ::ffff:a.b.c.d): false for
 * loopback, the kernel's own addresses and anything the stack cannot route. */
bool tcpsm_rt_routable_addr(const struct tcpsm_addr *dst);
/* Orderly end for process exit: graceful close of open connections for a
 * bounded time, then RST for the rest; stops the threads. Idempotent. */
void tcpsm_rt_shutdown(void);
/* Sends the frames this process's calls left waiting (runtime.c
 * out_keep): before a wait that goes to the kernel alone, before exec.
 * Cheap when none wait; the stack lock need not be held. */
void tcpsm_rt_flush_output(void);

/* Sockets across exec (runtime_exec.c). Each stack socket has a placeholder
 * kernel socket on its fd number; the runtime keeps the placeholder's
 * identity (st_dev, st_ino) with the socket, so that a program exec'd by a
 * process that held it finds it again on the same fd: */
/* Records fd as sk's placeholder (after it became the stack's, or was accepted). */
void tcpsm_placeholder(struct tcpsm_sock *sk, int fd);
/* The same with the placeholder's identity given (the shim's exec preparation). */
void tcpsm_placeholder_id(struct tcpsm_sock *sk, uint64_t dev, uint64_t ino);
/* This process is an exec'd image of one that held stack sockets: the
 * caller walks its fds and claims each placeholder, then ends the claim. */
bool tcpsm_rt_exec_pending(void);
/* The stack socket whose placeholder is (dev, ino), held by this process
 * before exec, or NULL. The same socket may be claimed for several fds (dup). */
struct tcpsm_sock *tcpsm_rt_exec_claim(uint64_t dev, uint64_t ino);
/* Releases every socket held before exec that no fd claimed (its fds were
 * close-on-exec, or closed): the last reference anywhere closes it. */
void tcpsm_rt_exec_end(void);
/* posix_spawn (runtime_procs.c): begin reserves the child's slot, holding
 * every socket this process holds, and returns it with the stack lock held
 * (or -1, nothing held: no lock); end, after the real posix_spawn, gives the
 * slot the child's pid (or frees it, pid <= 0) and unlocks. */
int tcpsm_rt_spawn_begin(void);
void tcpsm_rt_spawn_end(int slot, int pid);

/* Stack sockets passed over AF_UNIX (SCM_RIGHTS, runtime_pass.c), found by
 * the identity (st_dev, st_ino) of the placeholder that travels:
 * send: before the sendmsg, the message takes a reference of its own (the
 * sender may close its copy at once); -ENOBUFS: too many in flight.
 * cancel: the sendmsg failed: that reference goes.
 * recv: the stack socket whose placeholder arrived (the message's
 * reference is now this process's), or NULL. */
int tcpsm_pass_send(struct tcpsm_sock *sk, uint64_t dev, uint64_t ino);
void tcpsm_pass_cancel(uint64_t dev, uint64_t ino);
struct tcpsm_sock *tcpsm_pass_recv(uint64_t dev, uint64_t ino);

/* Fds the runtime holds (AF_PACKET socket, eventfds): the shim must not
 * let the program close or reuse them. */
bool tcpsm_rt_owns_fd(int fd);
/* Adds fd to them (the shim's accept template socket). */
void tcpsm_rt_own_fd(int fd);

int tcpsm_socket(struct tcpsm_sock **out);      /* -ENOBUFS, -ENETDOWN if the link cannot start */
int tcpsm_bind(struct tcpsm_sock *sk, const struct sockaddr_in *sin);
int tcpsm_listen(struct tcpsm_sock *sk, int backlog);
/* Both families: struct tcpsm_addr (core.h) and a host-order port. The
 * sockaddr_in forms above and below are IPv4-only wrappers of these. */
int tcpsm_bind_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port);
int tcpsm_connect_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port,
                       int nonblock, int64_t timeout_ns);
int tcpsm_accept_addr(struct tcpsm_sock *sk, struct tcpsm_sock **out, struct tcpsm_addr *peer,
                      uint16_t *peer_port, int nonblock, int64_t timeout_ns);
int tcpsm_sockname_addr(struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port);
int tcpsm_peername_addr(struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port);
int tcpsm_connect(struct tcpsm_sock *sk, const struct sockaddr_in *sin, int nonblock,
                  int64_t timeout_ns);
/* peer may be NULL. */
int tcpsm_accept(struct tcpsm_sock *sk, struct tcpsm_sock **out, struct sockaddr_in *peer,
                 int nonblock, int64_t timeout_ns);
/* flags: MSG_DONTWAIT is the caller's business (pass nonblock);
 * MSG_NOSIGNAL/SIGPIPE is the caller's business too (-EPIPE comes back). */
ssize_t tcpsm_send(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, int nonblock,
                   int64_t timeout_ns);
/* The same; flags: MSG_MORE (the partial segment waits as with TCP_CORK). */
ssize_t tcpsm_sendf(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, int flags,
                    int nonblock, int64_t timeout_ns);
/* flags: MSG_PEEK, MSG_WAITALL (sleeps until iov full, EOF or error). */
ssize_t tcpsm_recv(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, int flags,
                   int nonblock, int64_t timeout_ns);
int tcpsm_shutdown(struct tcpsm_sock *sk, int how);
/* Drops the reference (SO_LINGER > 0 makes it wait, bounded by the linger time). */
int tcpsm_close(struct tcpsm_sock *sk);

int tcpsm_setopt(struct tcpsm_sock *sk, enum tcpsm_opt opt, int val);
int tcpsm_getopt(struct tcpsm_sock *sk, enum tcpsm_opt opt, int *val);
int tcpsm_info(struct tcpsm_sock *sk, struct tcpsm_tcp_info *info);
int tcpsm_sockname(struct tcpsm_sock *sk, struct sockaddr_in *sin);
int tcpsm_peername(struct tcpsm_sock *sk, struct sockaddr_in *sin);   /* -ENOTCONN */
int tcpsm_error(struct tcpsm_sock *sk);          /* SO_ERROR: positive errno or 0, cleared */
int tcpsm_state(struct tcpsm_sock *sk);
int tcpsm_rxavail(struct tcpsm_sock *sk);        /* FIONREAD */
int tcpsm_atmark(struct tcpsm_sock *sk);         /* SIOCATMARK */
/* F_SETOWN / F_SETOWN_EX: SIGURG goes to this owner when a new urgent
 * pointer arrives, and SIGIO with O_ASYNC (type F_OWNER_TID, F_OWNER_PID,
 * F_OWNER_PGRP; id 0 = nobody). Kept with the socket, for every process
 * that holds it. tcpsm_get_owner: F_GETOWN_EX (F_OWNER_TID, 0 when never set). */
int tcpsm_set_owner(struct tcpsm_sock *sk, int type, int id);
int tcpsm_get_owner(struct tcpsm_sock *sk, int *type, int *id);
/* O_ASYNC (on: 1/0, -1 = keep; fd = the fd it is set through, si_fd) and
 * F_SETSIG (sig: 0 = SIGIO, -1 = keep): SIGIO (or sig, with si_band and
 * si_fd) to the owner as Linux sock_wake_async sends it (core.h,
 * TCPSM_ASYNC_*). */
int tcpsm_set_async(struct tcpsm_sock *sk, int on, int sig, int fd);
int tcpsm_get_async(struct tcpsm_sock *sk, int *on, int *sig);
int tcpsm_txqueued(struct tcpsm_sock *sk);       /* SIOCOUTQ */
unsigned tcpsm_poll(struct tcpsm_sock *sk);      /* POLL* bits, see core.h */

/* Waiting on many sockets at once (poll/select/epoll in the shim):
 *   int efd = tcpsm_poller_begin();   // registers this thread; efd is its eventfd
 *   ... check tcpsm_poll() of each stack socket ...
 *   ... if none ready: real poll() over the kernel fds plus efd ...
 *   ... efd readable means "some stack socket changed": check again ...
 *   tcpsm_poller_end();
 * Registration comes before the check, so no wake-up is lost. A thread may
 * be registered once at a time. Returns -errno if no eventfd could be made. */
int tcpsm_poller_begin(void);
void tcpsm_poller_end(void);
/* Whoever waits drives: a poller about to sleep calls tcpsm_sleep_begin(&tmo)
 * with its timeout in ns (-1: none); >= 0 means it now polls the link for the
 * whole stack: add that fd (POLLIN) to its sleep set and sleep at most the
 * *tmo it got back (shortened to the stack's next timer deadline, which it
 * then runs). After the sleep, tcpsm_sleep_end(link fd readable) receives
 * what came and runs the timers due (waking the threads whose sockets
 * became ready) and gives the lead up; a sleep that ended early at the
 * shortened timeout is a spurious wake-up: look and sleep again. -1:
 * another thread leads; sleep as before (*tmo unchanged). */
int tcpsm_sleep_begin(int64_t *tmo);
void tcpsm_sleep_end(bool link_ready);
/* The leader's look at the link before it sleeps: the ring in memory once,
 * then (TCPSM_SPIN_US; none when it is 0) a busy poll until the sooner of
 * that and deadline (ns, CLOCK_MONOTONIC; UINT64_MAX: none): p (its sleep
 * set, the link among them) asked of the kernel with no timeout now and
 * then, the link's ring looked at in memory in between. As ppoll when the kernel reported
 * something (revents set); -1 when the ring holds a frame (p not asked:
 * the sleep's ppoll returns at once); 0 when the time passed or ppoll failed. */
int tcpsm_spin(struct pollfd *p, unsigned n, uint64_t deadline);

/* Signals (the shim wraps the program's handlers; see runtime.h):
 * tcpsm_signal_arrived() is the first thing the wrapper calls; true means
 * "defer": do not run the program's handler now (this thread holds a stack
 * or shim lock; the signal is raised again, with info, when it is released).
 * tcpsm_sig_hold/_release bracket a shim lock that a handler's own stack
 * call could need. tcpsm_sigseq(): how many handlers ran on this thread; a
 * poll/epoll loop notes it when it starts and returns EINTR instead of
 * sleeping once it moved (a handler ran inside the call). */
bool tcpsm_signal_arrived(int sig, const siginfo_t *info);
/* A signal whose action is the default one, to end the process (SIGTERM,
 * SIGINT, ...; the shim catches these too): tcpsm_signal_fatal_defer()
 * true means this thread holds a stack or shim lock: the signal is raised
 * again when it is released. Otherwise tcpsm_signal_fatal() takes the stack
 * lock (bounded), so that no thread of this process is halfway through a
 * change of the shared stack when the process dies, and marks it left in a
 * consistent state: the process then dies holding it, and the next process
 * to take it recovers it without suspicion. */
bool tcpsm_signal_fatal_defer(int sig);
void tcpsm_signal_fatal(void);
void tcpsm_sig_hold(void);
void tcpsm_sig_release(void);
unsigned tcpsm_sigseq(void);

/* Epoll instances over stack sockets (Linux fs/eventpoll.c semantics).
 * Events are Linux's EPOLL* bits (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLPRI,
 * EPOLLERR, EPOLLHUP; flags EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE). A
 * socket event puts the items that care about it on their instance's
 * ready list; tcpsm_ep_collect costs O(ready). tcpsm_ep_fd() is an eventfd
 * readable exactly while the ready list is non-empty: put it in a kernel
 * epoll set (or poll it) to sleep until a stack socket is ready. An item
 * keeps its socket's runtime state alive; delete items before freeing the
 * instance. A socket may be in several instances. */
struct tcpsm_ep;
int tcpsm_ep_new(struct tcpsm_ep **out);        /* -ENOMEM, -EMFILE */
int tcpsm_ep_fd(const struct tcpsm_ep *ep);
/* This process lets go of ep (its last fd on it closed): ep and its items
 * go with the last process holding it (a forked child holds its parent's
 * instances, as it holds a copy of their fds). */
void tcpsm_ep_free(struct tcpsm_ep *ep);
/* Items are keyed by (ep, sk, fd), as Linux's by (file, fd), and may be
 * added, changed and deleted by any process holding ep (its maker and the
 * children forked after). An item goes when deleted, with ep, or when sk's
 * last reference in any process goes (closing one process's fd while
 * another holds sk leaves it).
 * add: -EBADF if the socket is closed or ep not held here, -EEXIST if the
 * item exists. A socket ready now is queued at once. */
int tcpsm_ep_add(struct tcpsm_ep *ep, struct tcpsm_sock *sk, int fd, uint32_t events,
                 uint64_t data);
/* Re-arms (EPOLLONESHOT) and re-evaluates: a ready socket is reported
 * again. -ENOENT if there is no such item (mod and del). */
int tcpsm_ep_mod(struct tcpsm_ep *ep, struct tcpsm_sock *sk, int fd, uint32_t events,
                 uint64_t data);
int tcpsm_ep_del(struct tcpsm_ep *ep, struct tcpsm_sock *sk, int fd);
/* Up to max ready events (data.u64 as given to add/mod), never blocking; in
 * any process holding ep. One pass over the ready list, as Linux's
 * ep_send_events: an item appears at most once per call, so a caller
 * wanting max events must ask for them in one call. */
int tcpsm_ep_collect(struct tcpsm_ep *ep, struct epoll_event *ev, int max);
/* Makes the eventfd readable until the next collect (something outside
 * the stack, e.g. a socket not yet the stack's, needs a waiter to look). */
void tcpsm_ep_kick(struct tcpsm_ep *ep);
/* A thread starts (+1) or stops (-1) sleeping on ep: EPOLLEXCLUSIVE
 * prefers instances with a sleeper. The eventfd is written only while some
 * thread may sleep on it (it is made readable as one starts, if the list
 * is not empty): a thread that wakes for the link and collects next says -1
 * before it processes what woke it. */
void tcpsm_ep_sleeping(struct tcpsm_ep *ep, int delta);
/* The same for a thread asleep in the kernel's epoll_wait on the real set
 * alone (no stack item when it started; no lead of the link). */
void tcpsm_ep_ksleeping(struct tcpsm_ep *ep, int delta);
/* ep's fd is watched where the stack cannot count the sleepers (another
 * epoll set, poll, select, another process, an exec'd image): from now on
 * its eventfd always follows its ready list. */
void tcpsm_ep_expose(struct tcpsm_ep *ep);

#ifdef __cplusplus
}
#endif
#endif
