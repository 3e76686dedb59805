/* close, dup, dup2, dup3, fcntl, ioctl: fd bookkeeping (dup'ed fds share
 * one socket object, as they share one file description), O_NONBLOCK, and
 * the socket ioctls (FIONBIO, FIONREAD/SIOCINQ, SIOCOUTQ, SIOCATMARK). */
#include "shim.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_log.h"

#define EXPORT __attribute__((visibility("default")))

/* The runtime's own fds (link socket, eventfds) must survive programs that
 * close every fd they did not open (daemons do, also after fork, where the
 * child drives the shared stack with the link socket it inherited): close()
 * of one returns 0 and leaves it open; dup2/dup3 over one fails with EBADF. */
static bool guarded(int fd)
{
    return atomic_load_explicit(&shim_on, memory_order_relaxed) && fd >= 0 &&
           tcpsm_rt_owns_fd(fd);
}

/* Ends a close made under ph_mu (placeholder.c): its errno survives. */
static int ph_unlock_ret(int r)
{
    int e = errno;
    shim_ph_unlock();
    errno = e;
    return r;
}

EXPORT int close(int fd)
{
    if (!atomic_load_explicit(&shim_on, memory_order_relaxed))
        return REAL(close)(fd);
    if (guarded(fd)) {
        tcpsm_log(TCPSM_LOG_DEBUG, "close(%d): fd belongs to the tcpsm runtime, left open", fd);
        return 0;
    }
    /* Forget the fd before the number can be reused by another thread. */
    if (atomic_load_explicit(&shim_ph_live, memory_order_relaxed)) {
        shim_ph_lock();         /* not while a placeholder is replaced on it */
        shim_fd_release(fd);
        return ph_unlock_ret(REAL(close)(fd));
    }
    shim_fd_release(fd);
    return REAL(close)(fd);
}

/* glibc's other name for close (some libraries call it). */
int __close(int fd);
EXPORT int __close(int fd)
{
    return close(fd);
}

/* fclose closes the fd with glibc's internal close, which is not
 * interposed: forget the fd first (a socket used through fdopen). */
EXPORT int fclose(FILE *fp)
{
    if (fp && shim_nslots) {
        int fd = fileno(fp);
        if (fd >= 0 && !guarded(fd) && atomic_load_explicit(&shim_ph_live, memory_order_relaxed)) {
            shim_ph_lock();
            shim_fd_release(fd);
            return ph_unlock_ret(REAL(fclose)(fp));
        }
        if (fd >= 0 && !guarded(fd))
            shim_fd_release(fd);
    }
    return REAL(fclose)(fp);
}

/* A vfork child shares the parent's memory, fd table included: a close or
 * dup2 there (before exec) would change the parent's table and close its
 * connections. vfork is fork here (POSIX allows it): the child gets its own
 * copy of the table, and the fork handlers run. posix_spawn, system and
 * popen clone with CLONE_VM|CLONE_VFORK too, but their child only makes
 * glibc-internal calls (never these), so they keep their speed. */
pid_t __vfork(void);
EXPORT pid_t vfork(void)
{
    return fork();
}

EXPORT pid_t __vfork(void)
{
    return fork();
}

/* clone(CLONE_VM|CLONE_VFORK) made by the program itself (a hand-written
 * spawn): the child runs through a trampoline that marks it (fdtable.c,
 * "vfork-like children") so that its closes and dups leave the parent's
 * table alone. The trampoline's record sits at the top of the child's
 * stack. Other clones pass through unchanged. */
struct vm_tramp {
    int (*fn)(void *);
    void *arg;
    int slot;
};

static int vm_child_start(void *p)
{
    struct vm_tramp *t = p;
    shim_vm_child_enter(t->slot);
    return t->fn(t->arg);
}

#define VFORK_LIKE (CLONE_VM | CLONE_VFORK)

/* The optional arguments are read whatever the flags, as glibc's clone
 * passes them on; ones the caller did not pass are never used by the
 * kernel (it reads them only for the flags that name them). */
EXPORT __attribute__((no_sanitize_address)) int clone(int (*fn)(void *), void *stack, int flags,
                                                       void *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    va_end(ap);
    int slot = -1;
    if (shim_nslots && fn && stack && (flags & VFORK_LIKE) == VFORK_LIKE &&
        !(flags & (CLONE_THREAD | CLONE_FILES)))
        slot = shim_vm_child_reserve();
    if (slot < 0)
        return REAL(clone)(fn, stack, flags, arg, ptid, tls, ctid);
    uintptr_t top = ((uintptr_t)stack - sizeof(struct vm_tramp)) & ~(uintptr_t)15;
    struct vm_tramp *t = (struct vm_tramp *)top;
    t->fn = fn;
    t->arg = arg;
    t->slot = slot;
    /* CLONE_VFORK: back here only once the child has exec'd or exited. */
    int r = REAL(clone)(vm_child_start, (void *)top, flags, t, ptid, tls, ctid);
    shim_vm_child_done(slot);
    return r;
}

/* close_range/closefrom (daemons close every fd they did not open): the
 * runtime's fds are skipped, every closed fd is forgotten (also with
 * CLOSE_RANGE_UNSHARE, which closes them in the caller's new table).
 * CLOSE_RANGE_CLOEXEC passes through: nothing closes. */
static int close_span(unsigned a, unsigned b, unsigned flags)
{
    return (int)syscall(SYS_close_range, a, b, flags);
}

static int close_range_unlocked(unsigned first, unsigned last, int flags);

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    if (!atomic_load_explicit(&shim_ph_live, memory_order_relaxed))
        return close_range_unlocked(first, last, flags);
    shim_ph_lock();
    return ph_unlock_ret(close_range_unlocked(first, last, flags));
}

static int close_range_unlocked(unsigned first, unsigned last, int flags)
{
    /* 2: CLOSE_RANGE_UNSHARE, 4: CLOSE_RANGE_CLOEXEC */
    if (!atomic_load_explicit(&shim_on, memory_order_relaxed) || (flags & ~6) || (flags & 4) ||
        first > last)
        return close_span(first, last, (unsigned)flags);
    /* Runtime fds and table slots both live below 2^20 (SHIM_MAX_FDS). */
    unsigned top = last < SHIM_MAX_FDS ? last : SHIM_MAX_FDS - 1;
    unsigned run = first;
    for (unsigned fd = first; fd <= top; fd++) {
        if (guarded((int)fd)) {
            if (fd > run && close_span(run, fd - 1, (unsigned)flags) < 0)
                return -1;
            run = fd + 1;
            continue;
        }
        shim_fd_release((int)fd);
    }
    if (run <= last && close_span(run, last, (unsigned)flags) < 0)
        return -1;
    return 0;
}

EXPORT void closefrom(int lowfd)
{
    close_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u, 0);
}

EXPORT int dup(int oldfd)
{
    /* dups of one socket on the client template would share it with all */
    int r = shim_ph_own_fd(oldfd);
    if (r < 0)
        return (int)shim_ret(r);
    int fd = REAL(dup)(oldfd);
    if (fd >= 0 && atomic_load_explicit(&shim_on, memory_order_relaxed))
        shim_fd_clone(oldfd, fd);
    return fd;
}

static int dup23(int oldfd, int newfd, int flags, bool is3)
{
    if (guarded(newfd) && newfd != oldfd) {
        tcpsm_log(TCPSM_LOG_DEBUG, "dup2/dup3 over fd %d: it belongs to the tcpsm runtime", newfd);
        errno = EBADF;
        return -1;
    }
    int r = oldfd != newfd ? shim_ph_own_fd(oldfd) : 0;
    if (r < 0)
        return (int)shim_ret(r);
    /* newfd closes: not while a placeholder is replaced on it */
    bool lk = atomic_load_explicit(&shim_ph_live, memory_order_relaxed) != 0;
    if (lk)
        shim_ph_lock();
    r = is3 ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
    if (r >= 0 && oldfd != newfd && atomic_load_explicit(&shim_on, memory_order_relaxed))
        shim_fd_clone(oldfd, newfd);
    return lk ? ph_unlock_ret(r) : r;
}

EXPORT int dup2(int oldfd, int newfd)
{
    return dup23(oldfd, newfd, 0, false);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    return dup23(oldfd, newfd, flags, true);
}

static int do_fcntl(int fd, int cmd, unsigned long arg)
{
    if (!atomic_load_explicit(&shim_on, memory_order_relaxed))
        return REAL(fcntl)(fd, cmd, arg);
    switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int r = shim_ph_own_fd(fd);
        if (r < 0)
            return (int)shim_ret(r);
        int nfd = REAL(fcntl)(fd, cmd, arg);
        if (nfd >= 0)
            shim_fd_clone(fd, nfd);
        return nfd;
    }
    case F_SETFL: {
        struct shim_sock *s = shim_lookup(fd);
        if (!s)
            return REAL(fcntl)(fd, cmd, arg);
        /* O_ASYNC of a stack socket is the stack socket's (SIGIO from the
         * runtime); a placeholder shared by accepted sockets must not
         * carry it to the others */
        bool stack = shim_state(s) == SHIM_STACK;
        int r = 0;
        /* On the client template (placeholder.c) O_NONBLOCK is the object's
         * alone; Linux's setfl checks only the other flags. */
        if (atomic_load(&s->ph_undec) && !(arg & (O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME))) {
            atomic_store(&s->nonblock, (arg & O_NONBLOCK) != 0);
            shim_sock_put(s);
            return 0;
        }
        if ((r = shim_ph_own(s, fd)) < 0) {
            shim_sock_put(s);
            return (int)shim_ret(r);
        }
        unsigned long karg = stack && atomic_load(&s->shared_ph) ? arg & ~(unsigned long)O_ASYNC : arg;
        r = REAL(fcntl)(shim_ph_scratch(s, fd), cmd, karg);
        if (!stack && (arg & O_ASYNC))
            atomic_store(&s->async_set, true);  /* for shim_make_stack */
        if (r == 0) {
            atomic_store(&s->nonblock, (arg & O_NONBLOCK) != 0);
            if (stack)
                tcpsm_set_async(s->sk, (arg & O_ASYNC) != 0, -1, fd);
        }
        shim_sock_put(s);
        return r;
    }
    case F_SETOWN:
    case F_SETOWN_EX:
    case F_SETSIG: {
        /* The placeholder checks the argument (ESRCH, EINVAL, EFAULT) and
         * keeps it until the socket is the stack's (shim_make_stack); the
         * stack socket needs it to signal (Linux send_sigio/send_sigurg) */
        struct shim_sock *s = shim_lookup(fd);
        int r = s ? shim_ph_own(s, fd) : 0;     /* it goes to the kernel socket */
        if (r < 0) {
            shim_sock_put(s);
            return (int)shim_ret(r);
        }
        r = REAL(fcntl)(s ? shim_ph_scratch(s, fd) : fd, cmd, arg);
        if (s && r != 0) {
            shim_sock_put(s);
            s = NULL;
        }
        if (s && shim_state(s) != SHIM_STACK) {
            atomic_store(&s->async_set, true);  /* for shim_make_stack */
            shim_sock_put(s);
            s = NULL;
        }
        if (s) {
            if (cmd == F_SETSIG) {
                tcpsm_set_async(s->sk, -1, (int)arg, fd);
            } else {
                int type = F_OWNER_PID, id = (int)arg;
                if (cmd == F_SETOWN_EX) {
                    const struct f_owner_ex *o = (const struct f_owner_ex *)arg;
                    type = o->type;
                    id = o->pid;
                } else if (id < 0) {
                    type = F_OWNER_PGRP;
                    id = -id;
                }
                tcpsm_set_owner(s->sk, type, id);
            }
            shim_sock_put(s);
        }
        return r;
    }
    case F_GETOWN:
    case F_GETOWN_EX:
    case F_GETSIG: {
        /* from the stack socket: an accepted one's placeholder is shared */
        struct shim_sock *s = shim_stack_lookup(fd);
        if (!s)
            return REAL(fcntl)(fd, cmd, arg);
        int type = 0, id = 0, on = 0, sig = 0, r = 0;
        if (cmd == F_GETSIG) {
            r = tcpsm_get_async(s->sk, &on, &sig);
        } else {
            r = tcpsm_get_owner(s->sk, &type, &id);
            if (r == 0 && cmd == F_GETOWN_EX) {
                struct f_owner_ex *o = (struct f_owner_ex *)arg;
                if (!o)
                    r = -EFAULT;
                else
                    *o = (struct f_owner_ex){ .type = type, .pid = id };
            }
        }
        shim_sock_put(s);
        if (r < 0)
            return (int)shim_ret(r);
        if (cmd == F_GETSIG)
            return sig;
        if (cmd == F_GETOWN)
            return type == F_OWNER_PGRP ? -id : id;
        return 0;
    }
    case F_GETFL: {
        /* An accepted socket's placeholder shares its file description
         * with the others (socket_calls.c): O_NONBLOCK and O_ASYNC are
         * the object's. */
        int r = REAL(fcntl)(fd, cmd, arg);
        struct shim_sock *s = r >= 0 && atomic_load_explicit(&shim_ph_live, memory_order_relaxed)
                                  ? shim_lookup(fd) : NULL;
        if (s && atomic_load(&s->ph_undec))
            r = (r & ~O_NONBLOCK) | (atomic_load(&s->nonblock) ? O_NONBLOCK : 0);
        if (s)
            shim_sock_put(s);
        s = r >= 0 ? shim_stack_lookup(fd) : NULL;
        if (s) {
            int on = 0, sig = 0;
            tcpsm_get_async(s->sk, &on, &sig);
            r = (r & ~(O_NONBLOCK | O_ASYNC)) | (atomic_load(&s->nonblock) ? O_NONBLOCK : 0) |
                (on ? O_ASYNC : 0);
            shim_sock_put(s);
        }
        return r;
    }
    default:
        return REAL(fcntl)(fd, cmd, arg);
    }
}

/* Every fcntl argument is an int or a pointer: both fit an unsigned long
 * in the x86-64 and aarch64 calling conventions. */
EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return do_fcntl(fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    return do_fcntl(fd, cmd, arg);
}

static int put_int(void *p, int v)
{
    if (!p)
        return -EFAULT;
    *(int *)p = v;
    return 0;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return REAL(ioctl)(fd, req, arg);
    int st = shim_state(s);
    int r;
    if (req == FIONBIO) {       /* the file description's flag, whatever the state */
        r = REAL(ioctl)(fd, req, arg);
        if (r == 0 && arg)
            atomic_store(&s->nonblock, *(int *)arg != 0);
        shim_sock_put(s);
        return r;
    }
    if (st != SHIM_STACK) {
        /* on the client template only what changes no kernel socket */
        if (req != FIOCLEX && req != FIONCLEX && (r = shim_ph_own(s, fd)) < 0) {
            shim_sock_put(s);
            return (int)shim_ret(r);
        }
        if (req == FIOASYNC || req == FIOSETOWN || req == SIOCSPGRP)
            atomic_store(&s->async_set, true);  /* for shim_make_stack */
        shim_sock_put(s);
        return REAL(ioctl)(fd, req, arg);
    }
    switch (req) {
    case FIONREAD:              /* == SIOCINQ; Linux: EINVAL on a listener */
        r = tcpsm_state(s->sk) == TCPSM_LISTEN ? -EINVAL : put_int(arg, tcpsm_rxavail(s->sk));
        break;
    case SIOCOUTQ:
        r = tcpsm_state(s->sk) == TCPSM_LISTEN ? -EINVAL : put_int(arg, tcpsm_txqueued(s->sk));
        break;
    case SIOCATMARK:            /* the next byte read is the urgent mark */
        r = put_int(arg, tcpsm_atmark(s->sk));
        break;
    case FIOCLEX:
    case FIONCLEX:
        shim_sock_put(s);
        return REAL(ioctl)(fd, req, arg);
    default:
        /* Interface and routing ioctls (SIOCGIF*, SIOCADDRT...) ask the
         * kernel about the host, not about this socket. */
        if (req >= SIOCADDRT && req < SIOCPROTOPRIVATE && req != SIOCOUTQNSD) {
            shim_sock_put(s);
            return REAL(ioctl)(fd, req, arg);
        }
        tcpsm_log(TCPSM_LOG_DEBUG, "ioctl(%d, %#lx) on a stack socket is not supported", fd, req);
        r = -ENOTTY;
        break;
    }
    shim_sock_put(s);
    return (int)shim_ret(r);
}
