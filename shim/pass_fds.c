/* Stack sockets passed over AF_UNIX (SCM_RIGHTS).
 *
 * The kernel carries the socket's placeholder; the runtime
 * (stack/runtime/runtime_pass.c) knows it by its identity (st_dev,
 * st_ino). Before a sendmsg on a kernel socket, each stack socket among the
 * passed fds gets a placeholder of its own if it shares the accept
 * template's (socket_calls.c), and the message a reference to it, so that
 * the sender may close its copy at once. After a recvmsg, each received
 * socket fd whose identity is in flight becomes that stack socket (the
 * process's existing object if it holds the socket already, as a dup). */
#include "shim.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "runtime_log.h"

#define each_rights_fd(msg, fd, ...)                                                      \
    for (struct cmsghdr *c_ = CMSG_FIRSTHDR((struct msghdr *)(msg)); c_;                 \
         c_ = CMSG_NXTHDR((struct msghdr *)(msg), c_)) {                                  \
        if (c_->cmsg_level != SOL_SOCKET || c_->cmsg_type != SCM_RIGHTS ||                \
            c_->cmsg_len < CMSG_LEN(0))                                                   \
            continue;                                                                     \
        size_t n_ = (c_->cmsg_len - CMSG_LEN(0)) / sizeof(int);                           \
        for (size_t i_ = 0; i_ < n_; i_++) {                                              \
            int fd;                                                                       \
            __builtin_memcpy(&fd, CMSG_DATA(c_) + i_ * sizeof(int), sizeof(int));         \
            __VA_ARGS__                                                                   \
        }                                                                                 \
    }

static bool has_control(const struct msghdr *msg)
{
    return shim_nslots && msg && msg->msg_control && msg->msg_controllen >= sizeof(struct cmsghdr);
}

/* fd's placeholder becomes a kernel socket of its own (same fd number and
 * close-on-exec flag): an accepted socket's is a dup of the template. */
static void own_placeholder(int fd, struct shim_sock *s)
{
    int ph = shim_placeholder_new(s);
    if (ph < 0)
        return;
    int fdfl = REAL(fcntl)(fd, F_GETFD);
    if (fdfl >= 0 && REAL(dup3)(ph, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) >= 0 &&
        atomic_load(&s->fd_refs) == 1)
        atomic_store(&s->shared_ph, false);     /* its only fd: no longer the template's */
    REAL(close)(ph);
}

void shim_pass_prepare(const struct msghdr *msg, struct shim_pass *ps)
{
    ps->n = 0;
    if (!has_control(msg))
        return;
    each_rights_fd(msg, fd, {
        shim_epoll_expose(fd);  /* the receiver may wait on it where we cannot count it */
        shim_ph_own_fd(fd);     /* an unconnected one: a kernel socket of its own */
        struct shim_sock *s = shim_stack_lookup(fd);
        if (!s)
            continue;
        if (atomic_load(&s->shared_ph))
            own_placeholder(fd, s);
        struct stat st;
        if (ps->n < SHIM_PASS_MAX && fstat(fd, &st) == 0) {
            int r = tcpsm_pass_send(s->sk, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
            if (r == 0) {
                ps->e[ps->n].dev = (uint64_t)st.st_dev;
                ps->e[ps->n].ino = (uint64_t)st.st_ino;
                ps->n++;
            } else if (r == -ENOBUFS) {
                tcpsm_log(TCPSM_LOG_WARN, "sendmsg: too many stack sockets in flight: fd %d "
                          "arrives as the stack's only while this process still holds it", fd);
            }
        }
        shim_sock_put(s);
    })
}

void shim_pass_sent(const struct shim_pass *ps, bool ok)
{
    if (ok)
        return;
    int e = errno;
    for (unsigned i = 0; i < ps->n; i++)
        tcpsm_pass_cancel(ps->e[i].dev, ps->e[i].ino);
    errno = e;
}

/* This process's object for sk, referenced, if one of its fds holds it. */
struct find {
    struct tcpsm_sock *sk;
    struct shim_sock *s;
};

static void find_sk(int fd, struct shim_sock *s, void *arg)
{
    (void)fd;
    struct find *f = arg;
    if (!f->s && s->sk == f->sk && atomic_load(&s->state) == SHIM_STACK) {
        atomic_fetch_add(&s->refs, 1);
        f->s = s;
    }
}

void shim_pass_recv(const struct msghdr *msg)
{
    if (!has_control(msg))
        return;
    each_rights_fd(msg, fd, {
        struct stat st;
        if (fd < 0 || fd >= shim_nslots || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
            continue;
        struct tcpsm_sock *sk = tcpsm_pass_recv((uint64_t)st.st_dev, (uint64_t)st.st_ino);
        if (!sk)
            continue;
        struct find f = { sk, NULL };
        shim_fd_each_sock(find_sk, &f);
        struct shim_sock *s = f.s ? f.s : shim_sock_from_placeholder(fd, sk);
        if (!s) {
            tcpsm_log(TCPSM_LOG_WARN, "recvmsg: fd %d: out of memory; its stack socket is lost", fd);
            tcpsm_close(sk);
            continue;
        }
        shim_fd_install(fd, s);
        shim_sock_unref(s);    /* the fd holds its own reference */
        tcpsm_log(TCPSM_LOG_DEBUG, "recvmsg: fd %d is a stack socket passed by SCM_RIGHTS", fd);
    })
}
