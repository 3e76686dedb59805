/* socket, socketpair, bind, listen, accept, accept4, connect, shutdown,
 * getsockname, getpeername: where a socket is decided to be the stack's or
 * the kernel's, and the address checks Linux makes (EFAULT, EINVAL for a
 * short length, EAFNOSUPPORT for another family). */
#include "shim.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "runtime_log.h"

#define EXPORT __attribute__((visibility("default")))

/* ::1, or IPv4 loopback in either form */
static bool is_loopback_addr(const struct tcpsm_addr *a)
{
    static const uint8_t lo6[16] = { [15] = 1 };
    if (addr_is_v4(a))
        return (addr_v4(a) >> 24) == 127;
    return memcmp(a->b, lo6, 16) == 0;
}

EXPORT int socket(int domain, int type, int protocol)
{
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (!atomic_load_explicit(&shim_on, memory_order_relaxed) ||
        (domain != AF_INET && domain != AF_INET6) || base != SOCK_STREAM ||
        (protocol != 0 && protocol != IPPROTO_TCP)) {
        int fd = REAL(socket)(domain, type, protocol);
        if (fd >= 0 && atomic_load_explicit(&shim_on, memory_order_relaxed))
            shim_fd_fresh(fd);  /* a stale entry of an fd closed behind our back */
        return fd;
    }
    /* A dup of the client template (placeholder.c); a kernel socket of its
     * own when there is none (the kernel's errno then) or no table slot. */
    int fd = shim_ph_client_dup(domain, type);
    bool shared = fd >= 0 && fd < shim_nslots;
    struct shim_sock *s = shared ? shim_sock_new() : NULL;
    if (!s) {
        if (fd >= 0)
            REAL(close)(fd);
        fd = REAL(socket)(domain, type, protocol);
        if (fd < 0)
            return fd;
        if (fd >= shim_nslots) {
            tcpsm_log(TCPSM_LOG_DEBUG, "fd %d beyond the fd table: socket left to the kernel", fd);
            return fd;
        }
        s = shim_sock_new();
        if (!s) {
            shim_fd_release(fd);
            tcpsm_log(TCPSM_LOG_DEBUG, "out of memory: socket fd %d left to the kernel", fd);
            return fd;
        }
        shared = false;
    }
    atomic_store(&s->nonblock, (type & SOCK_NONBLOCK) != 0);
    s->family = domain;
    if (domain == AF_INET6)
        shim_stack_setopt(s, TCPSM_OPT_IPV6, 1);    /* recorded until the stack socket exists */
    if (shared) {
        atomic_store(&s->shared_ph, true);
        atomic_store(&s->ph_undec, true);
        atomic_fetch_add(&shim_ph_live, 1);
    }
    shim_fd_install(fd, s);
    shim_sock_unref(s);
    return fd;
}

EXPORT int socketpair(int domain, int type, int protocol, int sv[2])
{
    int r = REAL(socketpair)(domain, type, protocol, sv);
    if (r == 0) {
        shim_fd_fresh(sv[0]);
        shim_fd_fresh(sv[1]);
    }
    return r;
}

/* Linux's checks of an AF_INET address argument (inet_bind/tcp_v4_connect). */
static int check_sin(const struct sockaddr *addr, socklen_t len, struct sockaddr_in *out,
                     bool allow_unspec_any)
{
    if (!addr)
        return -EFAULT;
    if (len < sizeof(struct sockaddr_in))
        return -EINVAL;
    memcpy(out, addr, sizeof(*out));
    if (out->sin_family == AF_INET)
        return 0;
    /* inet_bind accepts AF_UNSPEC with INADDR_ANY for old programs. */
    if (allow_unspec_any && out->sin_family == AF_UNSPEC && out->sin_addr.s_addr == htonl(INADDR_ANY)) {
        out->sin_family = AF_INET;
        return 0;
    }
    return -EAFNOSUPPORT;
}

/* Linux's checks of an AF_INET6 address argument (inet6_bind,
 * tcp_v6_connect); an IPv4 socket's address goes through check_sin. The
 * result as struct tcpsm_addr (IPv4 mapped, any = all zero) and port. */
static int check_addr(const struct shim_sock *s, const struct sockaddr *addr, socklen_t len,
                      bool for_bind, struct tcpsm_addr *a, uint16_t *port)
{
    memset(a, 0, sizeof(*a));
    if (s->family == AF_INET) {
        struct sockaddr_in sin;
        int r = check_sin(addr, len, &sin, for_bind);
        if (r < 0)
            return r;
        if (sin.sin_addr.s_addr != htonl(INADDR_ANY))
            *a = addr_from_v4(ntohl(sin.sin_addr.s_addr));
        *port = ntohs(sin.sin_port);
        return 0;
    }
    if (!addr)
        return -EFAULT;
    if (len < 24)               /* SIN6_LEN_RFC2133 */
        return -EINVAL;
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    memcpy(&sin6, addr, len < sizeof(sin6) ? len : sizeof(sin6));
    if (sin6.sin6_family != AF_INET6)
        return -EAFNOSUPPORT;
    memcpy(a->b, sin6.sin6_addr.s6_addr, 16);
    *port = ntohs(sin6.sin6_port);
    return 0;
}

EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return REAL(bind)(fd, addr, len);
    struct tcpsm_addr ta;
    uint16_t port;
    int r = check_addr(s, addr, len, true, &ta, &port);
    if (r < 0) {
        shim_sock_put(s);
        return (int)shim_ret(r);
    }
    /* An address may be the kernel's (loopback, not the stack's): the
     * hand-over below needs a kernel socket of its own. */
    if (!addr_is_any(&ta) && (r = shim_ph_own(s, fd)) < 0) {
        shim_sock_put(s);
        return (int)shim_ret(r);
    }
    shim_sock_lock(s);
    int st = shim_state(s);
    if (st == SHIM_UNDECIDED) {
        if (is_loopback_addr(&ta)) {
            shim_handover(s);
            st = SHIM_KERNEL;
        } else {
            r = shim_make_stack(s, fd);
            st = shim_state(s);
            if (r == 0 && st == SHIM_STACK) {
                r = tcpsm_bind_addr(s->sk, &ta, port);
                /* Not the stack's address: maybe the kernel's. The
                 * stack socket is new and unbound, so it can go. */
                if (r == -EADDRNOTAVAIL && !addr_is_any(&ta)) {
                    tcpsm_close(s->sk);
                    s->sk = NULL;
                    shim_handover(s);
                    st = SHIM_KERNEL;
                }
            }
        }
    } else if (st == SHIM_STACK) {
        r = tcpsm_bind_addr(s->sk, &ta, port);
    }
    shim_sock_unlock(s);
    shim_sock_put(s);
    if (st == SHIM_KERNEL)
        return REAL(bind)(fd, addr, len);
    return (int)shim_ret(r);
}

/* A listener on INADDR_ANY serves the stack's address; its placeholder
 * listens on the same port in the kernel so that loopback clients (which
 * are the kernel's) reach it too. If the kernel cannot have the port, the
 * listener is the stack's alone (debug line). */
static void kernel_listen_too(struct shim_sock *s, int fd, int backlog)
{
    struct tcpsm_addr ta;
    uint16_t port;
    if (tcpsm_sockname_addr(s->sk, &ta, &port) < 0 || !addr_is_any(&ta))
        return;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    int e = errno;
    shim_sock_lock(s);
    bool was = atomic_load(&s->klisten);
    bool ok = true;
    if (!was) {
        /* [::]:port for an IPv6 listener: IPV6_V6ONLY reached the
         * placeholder too (setsockopt goes there first), so 127.0.0.1
         * comes in exactly when the stack's listener takes IPv4 */
        struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = sin.sin_port };
        struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_port = sin.sin_port };
        ok = s->family == AF_INET6
                 ? REAL(bind)(fd, (struct sockaddr *)&any6, sizeof(any6)) == 0
                 : REAL(bind)(fd, (struct sockaddr *)&any, sizeof(any)) == 0;
    }
    ok = ok && REAL(listen)(fd, backlog) == 0;
    if (ok)
        atomic_store(&s->klisten, true);
    else
        tcpsm_log(TCPSM_LOG_DEBUG, "listener fd %d, port %u: not reachable from loopback (%s)", fd,
                  ntohs(sin.sin_port), strerror(errno));
    shim_sock_unlock(s);
    if (!was && ok)
        shim_epoll_klisten(s);
    errno = e;
}

EXPORT int listen(int fd, int backlog)
{
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return REAL(listen)(fd, backlog);
    int r = 0;
    shim_sock_lock(s);
    if (shim_state(s) == SHIM_UNDECIDED)
        r = shim_make_stack(s, fd);
    int st = shim_state(s);
    shim_sock_unlock(s);
    if (st == SHIM_STACK && r == 0) {
        r = tcpsm_listen(s->sk, backlog);
        /* the placeholder listens too: not the shared template */
        if (r == 0 && atomic_load(&s->shared_ph)) {
            shim_ph_lock();
            if (atomic_load(&s->shared_ph) && atomic_load(&shim_fds[fd]) == (uintptr_t)s &&
                shim_ph_replace(fd, s) < 0)
                tcpsm_log(TCPSM_LOG_DEBUG, "listener fd %d: no kernel socket of its own", fd);
            shim_ph_unlock();
        }
        if (r == 0 && !atomic_load(&s->shared_ph))
            kernel_listen_too(s, fd, backlog);
    }
    shim_sock_put(s);
    if (st == SHIM_KERNEL)
        return REAL(listen)(fd, backlog);
    return (int)shim_ret(r);
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return REAL(connect)(fd, addr, len);
    int st = shim_state(s);
    if (st == SHIM_KERNEL) {
        shim_sock_put(s);
        return REAL(connect)(fd, addr, len);
    }
    struct tcpsm_addr ta;
    uint16_t port;
    int r;
    if (addr && len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
        if (st == SHIM_UNDECIDED) {     /* nothing to disconnect: the kernel's answer */
            r = shim_ph_own(s, fd);     /* it may change the kernel socket */
            shim_sock_put(s);
            return r < 0 ? (int)shim_ret(r) : REAL(connect)(fd, addr, len);
        }
        tcpsm_log(TCPSM_LOG_DEBUG, "connect(AF_UNSPEC) (disconnect) on stack fd %d: not supported", fd);
        shim_sock_put(s);
        return (int)shim_ret(-EOPNOTSUPP);
    }
    r = check_addr(s, addr, len, false, &ta, &port);
    if (r < 0) {
        shim_sock_put(s);
        return (int)shim_ret(r);
    }
    bool kernel = is_loopback_addr(&ta) || !tcpsm_rt_routable_addr(&ta);
    if (kernel && (r = shim_ph_own(s, fd)) < 0) {      /* the kernel's from now on */
        shim_sock_put(s);
        return (int)shim_ret(r);
    }
    shim_sock_lock(s);
    if (shim_state(s) == SHIM_UNDECIDED) {
        if (kernel)
            shim_handover(s);
        else
            r = shim_make_stack(s, fd);
    }
    st = shim_state(s);
    shim_sock_unlock(s);
    if (st == SHIM_KERNEL) {
        shim_sock_put(s);
        return REAL(connect)(fd, addr, len);
    }
    if (r == 0) {
        r = tcpsm_connect_addr(s->sk, &ta, port, atomic_load(&s->nonblock),
                               atomic_load(&s->sndtimeo_ns));
        /* Linux: a connect that outlives SO_SNDTIMEO says EINPROGRESS. */
        if (r == -EAGAIN)
            r = -EINPROGRESS;
    }
    shim_sock_put(s);
    return (int)shim_ret(r);
}

/* Copies sin into (addr, *len) with Linux's truncation rules. */
static int put_sin(const struct sockaddr_in *sin, struct sockaddr *addr, socklen_t *len)
{
    if (!addr || !len)
        return -EFAULT;
    if ((int)*len < 0)
        return -EINVAL;
    size_t n = *len < sizeof(*sin) ? *len : sizeof(*sin);
    memcpy(addr, sin, n);
    *len = sizeof(*sin);
    return 0;
}

/* The socket's family form of (a, port): sockaddr_in, or sockaddr_in6 with
 * IPv4 peers as ::ffff:a.b.c.d, as Linux fills them in. */
static int put_addr(const struct shim_sock *s, const struct tcpsm_addr *a, uint16_t port,
                    struct sockaddr *addr, socklen_t *len)
{
    if (s->family == AF_INET) {
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
        sin.sin_addr.s_addr = htonl(addr_is_v4(a) ? addr_v4(a) : 0);
        return put_sin(&sin, addr, len);
    }
    if (!addr || !len)
        return -EFAULT;
    if ((int)*len < 0)
        return -EINVAL;
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    memcpy(sin6.sin6_addr.s6_addr, a->b, 16);
    size_t n = *len < sizeof(sin6) ? *len : sizeof(sin6);
    memcpy(addr, &sin6, n);
    *len = sizeof(sin6);
    return 0;
}

/* A listener in both places: wait until either has a connection. Returns 1
 * for the kernel's queue, 0 for the stack's (or "ask the stack": nonblocking),
 * or -errno (-EAGAIN at SO_RCVTIMEO, -EINTR). */
static __thread unsigned accept_turn;

static int accept_wait(struct shim_sock *s, int fd, bool nb)
{
    int64_t to = atomic_load(&s->rcvtimeo_ns);
    int64_t deadline = to >= 0 ? shim_now_ns() + to : -1;
    int efd = -1, ret;
    for (;;) {
        /* The stack's queue first, the kernel's (a system call) at least
         * every 16th accept, so that neither starves while the other is
         * busy: a server on 0.0.0.0 paid a poll per accept. */
        bool stack_ready = tcpsm_poll(s->sk) & (POLLIN | POLLERR | POLLHUP);
        if (stack_ready && (++accept_turn & 15)) {
            ret = 0;
            break;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (REAL(poll)(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
            ret = 1;
            break;
        }
        if (nb || stack_ready) {
            ret = 0;
            break;
        }
        if (efd < 0) {          /* register, then look again: no wake-up is lost */
            efd = tcpsm_poller_begin();
            if (efd < 0)
                return efd;
            continue;
        }
        int64_t left = deadline < 0 ? -1 : deadline - shim_now_ns();
        if (deadline >= 0 && left <= 0) {
            ret = -EAGAIN;
            break;
        }
        struct timespec ts = { left / 1000000000, left % 1000000000 };
        struct pollfd q[2] = { { .fd = fd, .events = POLLIN }, { .fd = efd, .events = POLLIN } };
        if (REAL(ppoll)(q, 2, left >= 0 ? &ts : NULL, NULL) < 0) {
            ret = -errno;
            break;
        }
        if (q[1].revents & POLLIN)
            tcpsm_poller_begin();       /* drains and re-arms */
    }
    if (efd >= 0)
        tcpsm_poller_end();
    return ret;
}

/* The placeholder of an accepted socket is a dup of the accept template
 * (placeholder.c). The shim serves every call on an accepted socket from the
 * stack, keeps O_NONBLOCK per socket object (and reports it so in F_GETFL,
 * fd_calls.c), and answers getsockopt itself; setsockopt only checks its
 * arguments on the template. fstat shows one inode for all of them, so a
 * program exec'd with one of them could not tell which socket it has: exec
 * gives each inherited one a placeholder of its own first
 * (shim_exec_prepare). */
static int placeholder_new(int family, int flags)
{
    return shim_ph_accept_dup(family, flags);
}

static int accept_once(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool is4)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        int k = is4 ? REAL(accept4)(fd, addr, len, flags) : REAL(accept)(fd, addr, len);
        shim_fd_fresh(k);               /* a stale entry of an fd closed behind our back */
        return k;
    }
    int r;
    int nfd = -1;
    struct tcpsm_sock *nsk = NULL;
    struct shim_sock *ns = NULL;
    bool nb = atomic_load(&s->nonblock);
    if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
        r = -EINVAL;
        goto out;
    }
    if (addr && (!len || (int)*len < 0)) {
        r = len ? -EINVAL : -EFAULT;
        goto out;
    }
    bool klisten = atomic_load(&s->klisten);
retry:
    if (klisten) {
        r = accept_wait(s, fd, nb);
        if (r < 0)
            goto out;
        if (r == 1) {           /* a loopback client: the kernel's connection */
            r = is4 ? REAL(accept4)(fd, addr, len, flags) : REAL(accept)(fd, addr, len);
            if (r < 0)
                r = -errno;
            else
                shim_fd_fresh(r);
            goto out;
        }
    }
    struct tcpsm_addr peer;
    uint16_t pport = 0;
    memset(&peer, 0, sizeof(peer));
    /* Nothing queued and must not wait: ask without making a placeholder
     * (this also gives EINVAL for a socket that does not listen). */
    if (nb && !(tcpsm_poll(s->sk) & (POLLIN | POLLERR | POLLHUP))) {
        r = tcpsm_accept_addr(s->sk, &nsk, &peer, &pport, 1, 0);
        if (r < 0)
            goto out;
    }
    /* The placeholder before the connection: at EMFILE the connection stays
     * queued, as in Linux (except in the race just above, where it is closed). */
    nfd = placeholder_new(s->family, flags);
    if (nfd < 0) {
        r = -errno;
        goto out;
    }
    ns = shim_sock_new();
    if (!ns || nfd >= shim_nslots) {
        REAL(close)(nfd);
        r = ns ? -EMFILE : -ENOBUFS;
        goto out;
    }
    /* Both are given back below; a siglongjmp out of the wait would leak them. */
    shim_inflight_fd(nfd);
    shim_inflight_sock(ns);
    if (!nsk) {
        /* Both queues were waited on already: the stack's must not block now. */
        r = tcpsm_accept_addr(s->sk, &nsk, &peer, &pport, nb || klisten,
                              atomic_load(&s->rcvtimeo_ns));
        if (r < 0) {
            shim_inflight_fd_done(nfd);
            REAL(close)(nfd);
            nfd = -1;
            if (r == -EAGAIN && klisten && !nb) {
                shim_sock_put(ns);
                ns = NULL;
                goto retry;     /* another thread took it */
            }
            goto out;
        }
    }
    shim_inflight_fd_done(nfd);
    ns->sk = nsk;
    atomic_store(&ns->shared_ph, true);     /* identified at exec only (shim_exec_prepare) */
    ns->family = s->family;
    atomic_store(&ns->state, SHIM_STACK);
    atomic_store(&ns->nonblock, (flags & SOCK_NONBLOCK) != 0);
    /* Linux's accepted socket inherits the listener's timeouts (sock_copy). */
    atomic_store(&ns->rcvtimeo_ns, atomic_load(&s->rcvtimeo_ns));
    atomic_store(&ns->sndtimeo_ns, atomic_load(&s->sndtimeo_ns));
    shim_fd_install(nfd, ns);
    if (addr)
        put_addr(s, &peer, pport, addr, len);
    r = nfd;
out:
    if (r < 0 && nsk)
        tcpsm_close(nsk);
    if (ns)
        shim_sock_put(ns);
    shim_sock_put(s);
    return (int)shim_ret(r);
}

/* A blocking accept on a stack listener interrupted by an SA_RESTART
 * handler starts again, as Linux's does (not with SO_RCVTIMEO). */
static int do_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool is4)
{
    for (;;) {
        int r = accept_once(fd, addr, len, flags, is4);
        if (r >= 0 || errno != EINTR)
            return r;
        struct shim_sock *s = shim_stack_lookup(fd);
        bool again = s && !atomic_load(&s->nonblock) && atomic_load(&s->rcvtimeo_ns) < 0 &&
                     shim_sa_restart();
        if (s)
            shim_sock_put(s);
        if (!again) {
            errno = EINTR;
            return -1;
        }
    }
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    return do_accept(fd, addr, len, 0, false);
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return do_accept(fd, addr, len, flags, true);
}

EXPORT int shutdown(int fd, int how)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        /* Linux marks even an unconnected socket shut down (inet_shutdown) */
        int r = shim_ph_own_fd(fd);
        return r < 0 ? (int)shim_ret(r) : REAL(shutdown)(fd, how);
    }
    int r = (how < SHUT_RD || how > SHUT_RDWR) ? -EINVAL : tcpsm_shutdown(s->sk, how);
    shim_sock_put(s);
    return (int)shim_ret(r);
}

EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(getsockname)(fd, addr, len);
    struct tcpsm_addr ta;
    uint16_t port = 0;
    memset(&ta, 0, sizeof(ta));
    int r = tcpsm_sockname_addr(s->sk, &ta, &port);
    if (r >= 0)
        r = put_addr(s, &ta, port, addr, len);
    shim_sock_put(s);
    return (int)shim_ret(r);
}

EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(getpeername)(fd, addr, len);
    struct tcpsm_addr ta;
    uint16_t port = 0;
    memset(&ta, 0, sizeof(ta));
    int r = tcpsm_peername_addr(s->sk, &ta, &port);
    if (r >= 0)
        r = put_addr(s, &ta, port, addr, len);
    shim_sock_put(s);
    return (int)shim_ret(r);
}
