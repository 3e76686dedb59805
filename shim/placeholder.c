/* Placeholders: the kernel fd behind every stack socket's number.
 *
 * Two templates per family, unbound kernel sockets made on first use and
 * kept for the process (owned by the runtime, so programs that close every
 * fd leave them alone); a placeholder is a dup of one of them, which costs
 * one fd slot, where a fresh socket() and its close cost a kernel socket's
 * allocation and release for every connection (about a tenth of ab's CPU):
 *   accept template  accepted sockets (STACK from the start). The shim serves
 *                    every call on them itself; the template only checks
 *                    the arguments of setsockopt and fcntl(F_SETOWN...) for
 *                    every shared placeholder (shim_ph_scratch), so its state
 *                    is never read.
 *   client template  sockets from socket(), while UNDECIDED (ph_undec): the
 *                    kernel answers for them from the template exactly as
 *                    for any unconnected socket (getsockopt, getsockname,
 *                    read/write errors, poll), so the template must never
 *                    change. Every call that would change the kernel socket
 *                    first gives the fd a kernel socket of its own
 *                    (shim_ph_own: setsockopt, bind to an address, connect
 *                    to loopback, shutdown, dup, F_SETFL beyond O_NONBLOCK,
 *                    F_SETOWN, ioctl, MSG_FASTOPEN, SCM_RIGHTS, fork, exec);
 *                    O_NONBLOCK is the object's, never the template's. A
 *                    connect to the stack's side keeps the dup: the socket
 *                    is then STACK with a shared placeholder, as an accepted
 *                    one.
 * What a program can tell: fstat shows one inode for all sockets sharing a
 * template (exec and SCM_RIGHTS give each one its own first, so the runtime
 * can tell them apart); an option set before connect, at the fd limit, fails
 * with EMFILE (the socket of its own needs a slot for a moment).
 *
 * Replacing the file behind a number (dup3) while another thread closes
 * that number and opens something else on it would hit the new file: close,
 * dup2/dup3 onto a number and close_range hold ph_mu while any UNDECIDED
 * socket shares the client template (shim_ph_live), and shim_ph_own checks
 * under it that the number still names the socket. */
#include "shim.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime_log.h"

static _Atomic int accept_tmpl[2] = { -1, -1 };
static _Atomic int client_tmpl[2] = { -1, -1 };
static pthread_mutex_t tmpl_mu = PTHREAD_MUTEX_INITIALIZER;

/* Serializes replacing a client-template dup with closes of fd numbers. */
static pthread_mutex_t ph_mu = PTHREAD_MUTEX_INITIALIZER;
atomic_int shim_ph_live;

/* A template sits high (below 1024 and the soft fd limit, as the kernel's
 * fd table then stays small): the program's own sockets and accepts get the
 * lowest free numbers, as on Linux (systemd-socket-activate asserts that its
 * first socket is fd 3). */
static int move_high(int t)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return t;
    rlim_t top = rl.rlim_cur < 1024 ? rl.rlim_cur : 1024;
    if (top < 64 || (rlim_t)t >= top - 16)
        return t;
    int h = REAL(fcntl)(t, F_DUPFD_CLOEXEC, (int)(top - 16));
    if (h < 0)
        return t;
    REAL(close)(t);
    return h;
}

static int tmpl_get(_Atomic int *slot, int family)
{
    int i = family == AF_INET6;
    int t = atomic_load_explicit(&slot[i], memory_order_acquire);
    if (t >= 0)
        return t;
    pthread_mutex_lock(&tmpl_mu);
    t = atomic_load(&slot[i]);
    if (t < 0) {
        t = REAL(socket)(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (t >= 0) {
            t = move_high(t);
            tcpsm_rt_own_fd(t);
            atomic_store_explicit(&slot[i], t, memory_order_release);
        }
    }
    pthread_mutex_unlock(&tmpl_mu);
    return t;
}

int shim_ph_accept_dup(int family, int flags)
{
    int t = tmpl_get(accept_tmpl, family);
    if (t < 0)
        return -1;
    return REAL(fcntl)(t, (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
}

int shim_ph_client_dup(int family, int flags)
{
    /* the accept template too: the scratch of every shared placeholder */
    if (tmpl_get(accept_tmpl, family) < 0)
        return -1;
    int t = tmpl_get(client_tmpl, family);
    if (t < 0)
        return -1;
    return REAL(fcntl)(t, (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
}

int shim_ph_scratch(struct shim_sock *s, int fd)
{
    if (!atomic_load(&s->shared_ph))
        return fd;
    int t = atomic_load(&accept_tmpl[s->family == AF_INET6]);
    return t >= 0 ? t : fd;
}

void shim_ph_undec_done(struct shim_sock *s)
{
    if (atomic_exchange(&s->ph_undec, false))
        atomic_fetch_sub(&shim_ph_live, 1);
}

void shim_ph_lock(void)
{
    tcpsm_sig_hold();           /* a handler's close() would wait for this thread */
    pthread_mutex_lock(&ph_mu);
}

void shim_ph_unlock(void)
{
    pthread_mutex_unlock(&ph_mu);
    tcpsm_sig_release();
}

/* fd (of s) onto a fresh kernel socket of its own; ph_mu or the table walk
 * held. */
int shim_ph_replace(int fd, struct shim_sock *s)
{
    int fdfl = REAL(fcntl)(fd, F_GETFD);
    if (fdfl < 0)
        return -errno;
    int ph = shim_placeholder_new(s);
    if (ph < 0)
        return -errno;
    int r = 0;
    if (REAL(dup3)(ph, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
        r = -errno;
    REAL(close)(ph);
    /* A vfork-like child has its own fd table but the parent's objects,
     * whose fds still hold the template. */
    if (r == 0 && !shim_vm_child()) {
        if (s->sk)              /* identified from now on (exec, SCM_RIGHTS) */
            tcpsm_placeholder(s->sk, fd);
        atomic_store(&s->shared_ph, false);
        shim_ph_undec_done(s);
    }
    return r;
}

int shim_ph_own(struct shim_sock *s, int fd)
{
    if (!atomic_load(&s->ph_undec))
        return 0;
    int r = 0;
    shim_ph_lock();
    /* the number still names s (not closed meanwhile), and still shared */
    if (atomic_load(&s->ph_undec) && (unsigned)fd < (unsigned)shim_nslots &&
        atomic_load(&shim_fds[fd]) == (uintptr_t)s)
        r = shim_ph_replace(fd, s);
    shim_ph_unlock();
    if (r < 0)
        tcpsm_log(TCPSM_LOG_DEBUG, "fd %d: no kernel socket of its own: %s", fd, strerror(-r));
    return r;
}

int shim_ph_own_fd(int fd)
{
    if (!atomic_load_explicit(&shim_ph_live, memory_order_relaxed))
        return 0;
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return 0;
    int r = shim_ph_own(s, fd);
    shim_sock_put(s);
    return r;
}

/* fork: every UNDECIDED socket on the client template gets its own kernel
 * socket first, so that parent and child share it as on Linux (a kernel
 * hand-over in one is seen by the other). ph_mu is held across the fork. */
static void own_each(int fd, struct shim_sock *s, void *arg)
{
    (void)arg;
    if (atomic_load(&s->ph_undec) && shim_ph_replace(fd, s) < 0)
        tcpsm_log(TCPSM_LOG_WARN, "fork: fd %d keeps the shared placeholder", fd);
}

void shim_ph_atfork_prepare(void)
{
    shim_ph_lock();
    if (atomic_load(&shim_ph_live))
        shim_fd_each_sock(own_each, NULL);
}

void shim_ph_atfork_parent(void)
{
    shim_ph_unlock();
}

void shim_ph_atfork_child(void)
{
    /* held by the forking thread, which is this one in the child too */
    shim_ph_unlock();
}
