/* Shim internals shared by the shim/ files: the table of real libc
 * functions, the fd table and the socket objects it points to.
 *
 * A socket object is what a Linux "open file description" of an AF_INET
 * stream socket is: dup'ed fds share one. Every such fd is also a real
 * kernel socket (the placeholder) so that fd numbers, close-on-exec,
 * fstat and O_NONBLOCK stay honest. The object is in one of three states:
 *   UNDECIDED  no stack socket yet: everything but bind/listen/connect/
 *              setsockopt/epoll goes to the placeholder, which answers
 *              exactly as an unconnected Linux socket does;
 *   STACK      served by a tcpsm socket (sk);
 *   KERNEL     handed to the kernel (loopback, unroutable): pass-through.
 */
#ifndef TCPSM_SHIM_H
#define TCPSM_SHIM_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "tcpsm/tcpsm.h"

/* ------------------------------------------------------------ real libc */

struct shim_real {
    int (*socket)(int, int, int);
    int (*socketpair)(int, int, int, int *);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*shutdown)(int, int);
    int (*close)(int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*pread)(int, void *, size_t, off_t);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
    ssize_t (*splice)(int, loff_t *, int, loff_t *, size_t, unsigned int);
    /* fd lifetime the shim watches but does not serve (fd_calls.c,
     * fdcreate_calls.c, syscall_calls.c) */
    int (*fclose)(FILE *);
    long (*syscall)(long, ...);
    int (*open)(const char *, int, ...);
    int (*open64)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*openat64)(int, const char *, int, ...);
    int (*open_2)(const char *, int);
    int (*open64_2)(const char *, int);
    int (*openat_2)(int, const char *, int);
    int (*openat64_2)(int, const char *, int);
    int (*creat)(const char *, mode_t);
    int (*creat64)(const char *, mode_t);
    int (*pipe)(int *);
    int (*pipe2)(int *, int);
    int (*eventfd)(unsigned int, int);
    int (*timerfd_create)(int, int);
    int (*signalfd)(int, const sigset_t *, int);
    int (*memfd_create)(const char *, unsigned int);
    int (*inotify_init)(void);
    int (*inotify_init1)(int);
    int (*fanotify_init)(unsigned int, unsigned int);
    int (*clone)(int (*)(void *), void *, int, void *, ...);
    FILE *(*fopen)(const char *, const char *);
    FILE *(*fopen64)(const char *, const char *);
    FILE *(*freopen)(const char *, const char *, FILE *);
    FILE *(*freopen64)(const char *, const char *, FILE *);
    FILE *(*tmpfile)(void);
    FILE *(*tmpfile64)(void);
    FILE *(*popen)(const char *, const char *);
    struct __dirstream *(*opendir)(const char *);
    int (*mkstemp)(char *);
    int (*mkstemp64)(char *);
    int (*mkostemp)(char *, int);
    int (*mkostemp64)(char *, int);
    int (*mkstemps)(char *, int);
    int (*mkstemps64)(char *, int);
    int (*mkostemps)(char *, int, int);
    int (*mkostemps64)(char *, int, int);
    /* exec (exec_calls.c) */
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *, char *const[],
                       char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *, char *const[],
                        char *const[]);
};

extern struct shim_real shim_real;
/* Resolves the table (once, thread-safe). Called by the constructor and by
 * any interposed function that runs before it. */
void shim_resolve(void);
#define REAL(fn) (__builtin_expect(shim_real.fn != NULL, 1) ? shim_real.fn : (shim_resolve(), shim_real.fn))

/* True when the stack is configured and enabled in this process (also in
 * a forked child, which keeps the fd table for the sockets it inherited and
 * uses the shared stack as its parent does). */
extern _Atomic bool shim_on;

/* Sets errno from a -errno result and returns -1, or returns r. */
static inline long shim_ret(long r)
{
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

/* ------------------------------------------------------------ sockets */

enum shim_state { SHIM_UNDECIDED, SHIM_STACK, SHIM_KERNEL };

#define SHIM_NOPTS TCPSM_OPT_COUNT     /* every enum tcpsm_opt value can be recorded */
_Static_assert(SHIM_NOPTS <= 32, "opt_set is a 32-bit mask");

struct shim_epitem;

struct shim_sock {
    atomic_int refs;            /* fd slots + calls in flight */
    atomic_int fd_refs;         /* fd slots only */
    pthread_mutex_t mu;         /* state changes and option records: shim_sock_lock */
    _Atomic int state;          /* enum shim_state */
    struct tcpsm_sock *sk;      /* set once, before state becomes STACK */
    atomic_bool nonblock;       /* O_NONBLOCK of the shared file description */
    _Atomic int64_t rcvtimeo_ns, sndtimeo_ns;   /* -1: none */
    uint32_t opt_set;           /* options recorded before sk exists */
    int opt_val[SHIM_NOPTS];
    int reuseport, defer_accept, quickack;
    int family;                 /* AF_INET or AF_INET6 */
    int pmtudisc;               /* IP(V6)_MTU_DISCOVER as set (the stack always does PMTUD) */
    /* A stack listener on INADDR_ANY also listens on its placeholder, so
     * that loopback clients (the kernel's) reach it too. */
    atomic_bool klisten;
    /* The placeholder is a dup of the accept template (socket_calls.c): its
     * identity is not this socket's until exec preparation gives it its own. */
    atomic_bool shared_ph;
    /* UNDECIDED on the client template (placeholder.c): counted in shim_ph_live. */
    atomic_bool ph_undec;
    /* While UNDECIDED: F_SETOWN/F_SETSIG/O_ASYNC (or their ioctls) reached
     * the placeholder, or a fork since socket() may have let another process
     * set them on it: shim_make_stack reads them back (three fcntl calls per
     * connect otherwise spent for nothing). */
    atomic_bool async_set;
    unsigned fork_gen;          /* shim_fork_gen at socket() */
    struct shim_epitem *items;  /* epoll interest items, under the epoll lock */
};
/* Forks (parent and child side) so far: see shim_sock.async_set. */
extern _Atomic unsigned shim_fork_gen;

struct shim_ep;

/* The fd table: one word per fd number (up to the hard RLIMIT_NOFILE, at
 * most SHIM_MAX_FDS; sockets with a larger fd stay the kernel's): 0 when
 * the shim knows nothing of the fd, else the socket object, or the epoll
 * object with bit 0 set (one kernel file is never both).
 *
 * An entry must never outlive the kernel fd it describes: a stale entry
 * would capture the next file opened on that number. Every close the shim
 * can see releases it (close, __close, close_range, closefrom, fclose,
 * dup2/dup3 over it, syscall(SYS_close...)), and every call that returns a
 * new fd number drops whatever the slot still holds (shim_fd_fresh). */
#define SHIM_MAX_FDS (1 << 20)
#define SHIM_FD_EP 1u
extern int shim_nslots;                 /* 0 while the shim is off */
extern _Atomic(uintptr_t) *shim_fds;

int shim_fdtable_init(void);
struct shim_sock *shim_sock_get_slow(int fd);

/* The socket object behind fd with a reference, or NULL (not ours). */
static inline struct shim_sock *shim_lookup(int fd)
{
    if ((unsigned)fd >= (unsigned)shim_nslots)
        return NULL;
    uintptr_t v = atomic_load_explicit(&shim_fds[fd], memory_order_acquire);
    if (!v || (v & SHIM_FD_EP))
        return NULL;
    return shim_sock_get_slow(fd);
}
/* Does fd (maybe) refer to a socket object? One load, no reference. */
static inline bool shim_fd_has_sock(int fd)
{
    if ((unsigned)fd >= (unsigned)shim_nslots)
        return false;
    uintptr_t v = atomic_load_explicit(&shim_fds[fd], memory_order_relaxed);
    return v && !(v & SHIM_FD_EP);
}
/* The epoll object behind epfd, or NULL. It stays valid only while the
 * epoll lock or a reference is held: another thread may close epfd. */
static inline struct shim_ep *shim_ep_at(int epfd)
{
    if ((unsigned)epfd >= (unsigned)shim_nslots)
        return NULL;
    uintptr_t v = atomic_load_explicit(&shim_fds[epfd], memory_order_acquire);
    return (v & SHIM_FD_EP) ? (struct shim_ep *)(v & ~(uintptr_t)SHIM_FD_EP) : NULL;
}
static inline int shim_state(const struct shim_sock *s)
{
    return atomic_load_explicit(&s->state, memory_order_acquire);
}
/* Like shim_lookup, but only sockets the stack serves (state STACK). */
struct shim_sock *shim_stack_lookup(int fd);

struct shim_sock *shim_sock_new(void);
/* Gives back a reference taken by shim_lookup/shim_stack_lookup (a call's). */
void shim_sock_put(struct shim_sock *s);
/* Gives back any other reference (an fd slot's, an epoll item's, a new object's). */
void shim_sock_unref(struct shim_sock *s);
/* Makes fd refer to s (takes an fd reference); whatever fd referred to
 * before (a stale entry of an fd closed behind our back) is released. */
void shim_fd_install(int fd, struct shim_sock *s);
/* Makes epfd refer to ep (takes over the caller's reference), likewise. */
void shim_fd_install_ep(int epfd, struct shim_ep *ep);
/* Forgets what fd refers to (socket object or epoll object). */
void shim_fd_release(int fd);
/* newfd now refers to what oldfd refers to (dup). */
void shim_fd_clone(int oldfd, int newfd);
/* fd was just returned by a call that creates an fd (open, pipe, eventfd,
 * accept of a kernel socket, a received SCM_RIGHTS fd, ...): the kernel
 * chose a free number, so anything the slot holds is stale. The common
 * case costs one array load. */
static inline void shim_fd_fresh(int fd)
{
    if ((unsigned)fd < (unsigned)shim_nslots &&
        atomic_load_explicit(&shim_fds[fd], memory_order_relaxed))
        shim_fd_release(fd);
}

/* Inside a child of clone(CLONE_VM|CLONE_VFORK) (fdtable.c): the table is
 * the parent's and is left alone. */
extern _Atomic int shim_vm_children;
bool shim_vm_child_slow(void);
static inline bool shim_vm_child(void)
{
    return atomic_load_explicit(&shim_vm_children, memory_order_relaxed) && shim_vm_child_slow();
}
int shim_vm_child_reserve(void);
void shim_vm_child_enter(int slot);
void shim_vm_child_done(int slot);

/* Creates the stack socket for an UNDECIDED object on fd (its placeholder;
 * caller holds s->mu) and replays recorded options. Returns 0 or -errno. */
int shim_make_stack(struct shim_sock *s, int fd);
/* UNDECIDED -> KERNEL (caller holds s->mu). */
void shim_handover(struct shim_sock *s);

/* Readiness of a STACK socket as poll(2) reports it (POLLRDNORM/WRNORM added). */
unsigned shim_stack_poll(struct shim_sock *s);
/* Readiness of any socket object (UNDECIDED: the placeholder's). */
unsigned shim_sock_poll(struct shim_sock *s, int fd);

/* ------------------------------------------------------------ epoll */

/* Drops s from every epoll interest list (last fd of s closed). */
void shim_epoll_forget(struct shim_sock *s);
/* s was handed to the kernel: moves its interest items to the real epoll fds. */
void shim_epoll_handover(struct shim_sock *s);
/* s (a stack listener) now also listens on its placeholder fd: its interest
 * items are mirrored into the real epoll instances. */
void shim_epoll_klisten(struct shim_sock *s);
/* s became the stack's (state STACK): its interest items start hearing its events. */
void shim_epoll_attach(struct shim_sock *s);
void shim_ep_unref(struct shim_ep *ep);
void shim_ep_ref(struct shim_ep *ep);
/* fd (if one of our epoll fds) is watched where sleepers are not counted:
 * nested in another set, in poll or select, sent to another process, kept
 * over exec. Its eventfd then always follows its ready list. */
void shim_epoll_expose(int fd);
void shim_epoll_expose_all(void);       /* every one (exec) */

/* ------------------------------------------------------------ fork
 *
 * Lock order: ph_mu (placeholder.c) -> table_mu -> socket mu (with the
 * fork lock, shim_sock_lock) -> epoll lock -> the runtime's lock. ph_mu is
 * never taken with another shim lock held, table_mu only under ph_mu, nor
 * is a socket mu under the epoll lock. At fork the prepare handlers take
 * ph_mu (giving sockets on the client template their own first), table_mu, the fork lock for writing (so
 * no socket mu is held), the epoll lock, then (the shim's handlers are
 * registered after the runtime's) the runtime's lock, and the parent and
 * child handlers release them: a child never finds a lock held by a thread
 * that did not follow it (closing fds before exec, setsockopt, epoll_ctl). */
/* A socket's mu, taken for a state change or an option record (with the
 * fork lock read-held and signal handlers deferred). */
void shim_sock_lock(struct shim_sock *s);
void shim_sock_unlock(struct shim_sock *s);
void shim_atfork_prepare(void);
void shim_atfork_parent(void);
void shim_atfork_child(void);
void shim_epoll_atfork_prepare(void);
void shim_epoll_atfork_parent(void);
void shim_epoll_atfork_child(void);

/* ------------------------------------------------------------ calls in flight (inflight.c)
 *
 * What a call holds (a socket reference, an epoll object reference, a
 * placeholder fd) is recorded per thread until the call gives it back, so
 * that a siglongjmp out of the call (wget's connect timeout) does not leak
 * it: see inflight.c. */
void shim_inflight_check(void);         /* releases what abandoned calls held */
void shim_inflight_sock(struct shim_sock *s);
void shim_inflight_sock_done(struct shim_sock *s);
void shim_inflight_ep(struct shim_ep *ep);
void shim_inflight_ep_done(struct shim_ep *ep);
void shim_inflight_fd(int fd);
void shim_inflight_fd_done(int fd);
/* Around a program's signal handler (signal_calls.c). */
struct shim_sig_scope {
    unsigned depth, nmarks;
};
struct shim_sig_scope shim_inflight_sig_enter(void);
void shim_inflight_sig_leave(struct shim_sig_scope sc);

/* Catches the signals the program leaves at a default action that ends the
 * process (signal_calls.c); at start, once the shim is on. */
void shim_signals_init(void);

/* ------------------------------------------------------------ exports */

/* Interposed entry points that libc's headers do not declare. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                       struct sockaddr *from, socklen_t *fromlen);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask,
                size_t fdslen);

/* Drops stale entries of the fds a successful recvmsg received (SCM_RIGHTS). */
void shim_fresh_cmsg(const struct msghdr *msg);

/* ------------------------------------------------------------ exec */

/* At start, in an image exec'd by a process that held stack sockets: every
 * inherited fd whose placeholder is one of them becomes that socket again;
 * the rest of them are released (exec_fds.c). */
void shim_exec_inherit(void);
/* Before exec: every inherited fd (not close-on-exec; with all, every fd:
 * posix_spawn's file actions may dup any) of an accepted stack socket gets
 * a placeholder of its own, recorded as that socket's, so the new image can
 * tell its sockets apart (exec_fds.c). */
void shim_exec_prepare(bool all);
/* The socket object for fd, an inherited or received placeholder of sk:
 * O_NONBLOCK, the timeouts, the family read back from it (exec_fds.c). */
struct shim_sock *shim_sock_from_placeholder(int fd, struct tcpsm_sock *sk);
/* A fresh kernel socket standing for s (its family, O_NONBLOCK, timeouts),
 * close-on-exec; -1 on error. */
int shim_placeholder_new(struct shim_sock *s);

/* ------------------------------------------------------------ placeholders (placeholder.c) */

/* A dup of the family's accept / client template (flags: SOCK_CLOEXEC); -1 and errno. */
int shim_ph_accept_dup(int family, int flags);
int shim_ph_client_dup(int family, int flags);
/* Where setsockopt and fcntl(F_SETOWN...) check their arguments for s on
 * fd: a shared placeholder's scratch (the accept template), else fd. */
int shim_ph_scratch(struct shim_sock *s, int fd);
/* UNDECIDED sockets on the client template (ph_undec) in this process. */
extern atomic_int shim_ph_live;
/* fd (of s) gets a kernel socket of its own if it is on the client template;
 * 0 or -errno. Never with s->mu (shim_sock_lock) or the table lock held. */
int shim_ph_own(struct shim_sock *s, int fd);
int shim_ph_own_fd(int fd);
/* The same with the table walk or ph_mu held (exec preparation, fork). */
int shim_ph_replace(int fd, struct shim_sock *s);
void shim_ph_undec_done(struct shim_sock *s);
/* Held around a close of an fd number while shim_ph_live (see placeholder.c). */
void shim_ph_lock(void);
void shim_ph_unlock(void);
void shim_ph_atfork_prepare(void);
void shim_ph_atfork_parent(void);
void shim_ph_atfork_child(void);

/* ------------------------------------------------------------ SCM_RIGHTS */

/* Stack sockets among the fds a sendmsg on a kernel socket passes: each
 * gets a placeholder identity of its own and the message a reference
 * (pass_fds.c); shim_pass_sent then cancels them if the sendmsg failed. */
#define SHIM_PASS_MAX 253       /* SCM_MAX_FD */
struct shim_pass {
    unsigned n;
    struct {
        uint64_t dev, ino;
    } e[SHIM_PASS_MAX];
};
void shim_pass_prepare(const struct msghdr *msg, struct shim_pass *ps);
void shim_pass_sent(const struct shim_pass *ps, bool ok);
/* After a recvmsg: each received fd that is a stack socket in flight
 * becomes that socket. */
void shim_pass_recv(const struct msghdr *msg);

/* Calls fn for each fd holding a socket object, under the table lock (fn
 * makes only real system calls: no shim lock, no stack lock). */
void shim_fd_each_sock(void (*fn)(int fd, struct shim_sock *s, void *arg), void *arg);

/* ------------------------------------------------------------ misc */

int64_t shim_now_ns(void);
/* Socket timeout from a struct timeval option value; -1 = none. */
int64_t shim_tv_to_ns(const struct timeval *tv);
void shim_sigpipe(void);
/* After -EINTR from a blocking call: should it be restarted (SA_RESTART)? */
bool shim_sa_restart(void);
/* Applies an option to the stack socket or records it for later (s->mu held). */
int shim_stack_setopt(struct shim_sock *s, enum tcpsm_opt opt, int val);

#endif
