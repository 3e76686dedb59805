/* syscall(2): programs that make system calls through libc's syscall()
 * (libuv closes every fd with syscall(SYS_close)) must reach the same
 * handlers as the libc wrappers, or the shim would not see a stack socket
 * closed, read or written, and a stale fd-table entry would capture the
 * next file opened on that number. The numbers that take an fd the shim
 * may track go to the interposed wrapper (same return and errno
 * convention); the numbers that create an fd pass through and drop a stale
 * entry of the new number; everything else passes through unchanged, with
 * all six arguments (as libc's syscall reads them). */
#include "shim.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

int close_range(unsigned first, unsigned last, int flags);
int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);

#define P(i) ((void *)a[i])
#define I(i) ((int)a[i])
#define U(i) ((unsigned)a[i])
#define Z(i) ((size_t)a[i])

/* Linux's kernel sigset is 8 bytes (_NSIG / 8) on every 64-bit target. */
#define KSIGSET 8

static long routed(long nr, const long *a, bool *done)
{
    *done = true;
    switch (nr) {
    /* fd lifetime */
    case SYS_close: return close(I(0));
#ifdef SYS_close_range
    case SYS_close_range: return close_range(U(0), U(1), I(2));
#endif
    case SYS_dup: return dup(I(0));
#ifdef SYS_dup2
    case SYS_dup2: return dup2(I(0), I(1));
#endif
    case SYS_dup3: return dup3(I(0), I(1), I(2));
    case SYS_fcntl: return fcntl(I(0), I(1), a[2]);
    case SYS_ioctl: return ioctl(I(0), (unsigned long)a[1], P(2));
    /* data */
    case SYS_read: return read(I(0), P(1), Z(2));
    case SYS_write: return write(I(0), P(1), Z(2));
    case SYS_readv: return readv(I(0), P(1), I(2));
    case SYS_writev: return writev(I(0), P(1), I(2));
    case SYS_sendto: return sendto(I(0), P(1), Z(2), I(3), P(4), (socklen_t)a[5]);
    case SYS_recvfrom: return recvfrom(I(0), P(1), Z(2), I(3), P(4), P(5));
    case SYS_sendmsg: return sendmsg(I(0), P(1), I(2));
    case SYS_recvmsg: return recvmsg(I(0), P(1), I(2));
    case SYS_sendmmsg: return sendmmsg(I(0), P(1), U(2), I(3));
    case SYS_recvmmsg: return recvmmsg(I(0), P(1), U(2), I(3), P(4));
    case SYS_sendfile: return sendfile(I(0), I(1), P(2), Z(3));
    case SYS_splice: return splice(I(0), P(1), I(2), P(3), Z(4), U(5));
    /* exec: the new image must tell its stack sockets apart (exec_calls.c) */
    case SYS_execve: return execve(P(0), P(1), P(2));
#ifdef SYS_execveat
    case SYS_execveat: return execveat(I(0), P(1), P(2), P(3), I(4));
#endif
    /* sockets */
    case SYS_socket: return socket(I(0), I(1), I(2));
    case SYS_socketpair: return socketpair(I(0), I(1), I(2), P(3));
    case SYS_bind: return bind(I(0), P(1), (socklen_t)a[2]);
    case SYS_listen: return listen(I(0), I(1));
#ifdef SYS_accept
    case SYS_accept: return accept(I(0), P(1), P(2));
#endif
    case SYS_accept4: return accept4(I(0), P(1), P(2), I(3));
    case SYS_connect: return connect(I(0), P(1), (socklen_t)a[2]);
    case SYS_shutdown: return shutdown(I(0), I(1));
    case SYS_getsockname: return getsockname(I(0), P(1), P(2));
    case SYS_getpeername: return getpeername(I(0), P(1), P(2));
    case SYS_setsockopt: return setsockopt(I(0), I(1), I(2), P(3), (socklen_t)a[4]);
    case SYS_getsockopt: return getsockopt(I(0), I(1), I(2), P(3), P(4));
    /* waiting */
#ifdef SYS_poll
    case SYS_poll: return poll(P(0), (nfds_t)a[1], I(2));
#endif
    case SYS_ppoll:
        if (a[3] && a[4] != KSIGSET) {
            errno = EINVAL;
            return -1;
        }
        return ppoll(P(0), (nfds_t)a[1], P(2), P(3));
#ifdef SYS_select
    case SYS_select: return select(I(0), P(1), P(2), P(3), P(4));
#endif
    case SYS_pselect6: {
        /* The sixth argument: { const sigset_t *ss; size_t ss_len; } or NULL. */
        const sigset_t *mask = NULL;
        if (a[5]) {
            const unsigned long *d = P(5);
            if (d[0] && d[1] != KSIGSET) {
                errno = EINVAL;
                return -1;
            }
            mask = (const sigset_t *)d[0];
        }
        return pselect(I(0), P(1), P(2), P(3), P(4), mask);
    }
#ifdef SYS_epoll_create
    case SYS_epoll_create: return epoll_create(I(0));
#endif
    case SYS_epoll_create1: return epoll_create1(I(0));
    case SYS_epoll_ctl: return epoll_ctl(I(0), I(1), I(2), P(3));
#ifdef SYS_epoll_wait
    case SYS_epoll_wait: return epoll_wait(I(0), P(1), I(2), I(3));
#endif
    case SYS_epoll_pwait:
        if (a[4] && a[5] != KSIGSET) {
            errno = EINVAL;
            return -1;
        }
        return epoll_pwait(I(0), P(1), I(2), I(3), P(4));
    /* A raw fork would skip the fork handlers; a raw vfork child would
     * share the table (see vfork in fd_calls.c). */
#ifdef SYS_fork
    case SYS_fork:
#endif
#ifdef SYS_vfork
    case SYS_vfork:
#endif
        return fork();
    default:
        *done = false;
        return 0;
    }
}

/* Numbers whose result (when >= 0) is a new fd. */
static bool creates_fd(long nr)
{
    switch (nr) {
#ifdef SYS_open
    case SYS_open:
#endif
#ifdef SYS_creat
    case SYS_creat:
#endif
#ifdef SYS_eventfd
    case SYS_eventfd:
#endif
#ifdef SYS_signalfd
    case SYS_signalfd:
#endif
#ifdef SYS_inotify_init
    case SYS_inotify_init:
#endif
#ifdef SYS_openat2
    case SYS_openat2:
#endif
#ifdef SYS_pidfd_open
    case SYS_pidfd_open:
#endif
#ifdef SYS_pidfd_getfd
    case SYS_pidfd_getfd:
#endif
#ifdef SYS_memfd_secret
    case SYS_memfd_secret:
#endif
#ifdef SYS_open_tree
    case SYS_open_tree:
#endif
#ifdef SYS_fsopen
    case SYS_fsopen:
#endif
#ifdef SYS_fsmount
    case SYS_fsmount:
#endif
#ifdef SYS_fspick
    case SYS_fspick:
#endif
#ifdef SYS_landlock_create_ruleset
    case SYS_landlock_create_ruleset:
#endif
    case SYS_openat:
    case SYS_eventfd2:
    case SYS_timerfd_create:
    case SYS_signalfd4:
    case SYS_memfd_create:
    case SYS_inotify_init1:
    case SYS_fanotify_init:
    case SYS_userfaultfd:
    case SYS_perf_event_open:
    case SYS_io_uring_setup:
    case SYS_open_by_handle_at:
    case SYS_mq_open:
        return true;
    default:
        return false;
    }
}

/* This library's own code (the runtime makes its system calls through
 * syscall() precisely to bypass the shim) is recognised by the return
 * address: from the start of the library's image to the end of its text
 * (symbols the linker defines for every object it links). */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char __etext[] __attribute__((visibility("hidden")));

static bool from_this_library(const void *ra)
{
    return (const char *)ra >= __ehdr_start && (const char *)ra < __etext;
}

/* Six arguments are read whatever the number, as libc's syscall does: the
 * ones a caller did not pass are whatever its registers and stack slot
 * hold, a read AddressSanitizer would flag in the caller's frame. */
EXPORT __attribute__((no_sanitize_address)) long syscall(long nr, ...)
{
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (!shim_nslots || from_this_library(__builtin_return_address(0)))
        return REAL(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    bool done;
    long r = routed(nr, a, &done);
    if (done)
        return r;
    r = REAL(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (r >= 0) {
        if (creates_fd(nr)) {
            shim_fd_fresh((int)r);
        } else if (r == 0 && (nr == SYS_pipe2
#ifdef SYS_pipe
                              || nr == SYS_pipe
#endif
                              )) {
            const int *fds = P(0);
            shim_fd_fresh(fds[0]);
            shim_fd_fresh(fds[1]);
        }
    }
    return r;
}
