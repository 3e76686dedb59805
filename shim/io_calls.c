/* Data transfer on stack sockets: send/sendto/sendmsg/sendmmsg/write/
 * writev, recv/recvfrom/recvmsg/recvmmsg/read/readv, sendfile, splice
 * (refused), and the _FORTIFY_SOURCE variants. Blocking follows the file description's O_NONBLOCK, MSG_DONTWAIT
 * and SO_RCVTIMEO/SO_SNDTIMEO; EPIPE raises SIGPIPE unless MSG_NOSIGNAL. */
#include "shim.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "runtime_log.h"

#define EXPORT __attribute__((visibility("default")))

extern void __chk_fail(void) __attribute__((noreturn));

static int check_iov(const struct iovec *iov, int cnt)
{
    if (cnt < 0 || cnt > IOV_MAX)
        return -EINVAL;
    if (cnt > 0 && !iov)
        return -EFAULT;
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
        if (iov[i].iov_len && !iov[i].iov_base)
            return -EFAULT;
    }
    return 0;
}

static ssize_t stack_send(struct shim_sock *s, const struct iovec *iov, int cnt, int flags)
{
    int r = check_iov(iov, cnt);
    if (r < 0)
        return r;
    int nb = atomic_load(&s->nonblock) || (flags & MSG_DONTWAIT);
    int64_t to = atomic_load(&s->sndtimeo_ns);
    ssize_t n;
    do
        n = tcpsm_sendf(s->sk, iov, cnt, flags & (MSG_MORE | MSG_OOB), nb, to);
    while (n == -EINTR && !nb && to < 0 && shim_sa_restart());
    if (n == -EPIPE && !(flags & MSG_NOSIGNAL))
        shim_sigpipe();
    return n;
}

static ssize_t stack_recv(struct shim_sock *s, const struct iovec *iov, int cnt, int flags)
{
    if (flags & MSG_ERRQUEUE)
        return -EAGAIN;         /* the stack queues no errors */
    if (flags & MSG_TRUNC) {
        tcpsm_log(TCPSM_LOG_DEBUG, "recv(MSG_TRUNC) on a stack socket is not supported");
        return -EOPNOTSUPP;
    }
    int r = check_iov(iov, cnt);
    if (r < 0)
        return r;
    int nb = atomic_load(&s->nonblock) || (flags & MSG_DONTWAIT);
    int64_t to = atomic_load(&s->rcvtimeo_ns);
    ssize_t n;
    do
        n = tcpsm_recv(s->sk, iov, cnt, flags & (MSG_PEEK | MSG_WAITALL | MSG_OOB), nb, to);
    while (n == -EINTR && !nb && to < 0 && shim_sa_restart());
    return n;
}

EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(send)(fd, buf, len, flags);
    struct iovec iov = { (void *)buf, len };
    ssize_t r = stack_send(s, &iov, 1, flags);
    shim_sock_put(s);
    return shim_ret(r);
}

/* TCP ignores the destination of a sendto on a connected socket. */
EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                      socklen_t tolen)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        /* a fast-open connect changes the kernel socket (placeholder.c) */
        ssize_t r = (flags & MSG_FASTOPEN) ? shim_ph_own_fd(fd) : 0;
        return r < 0 ? shim_ret(r) : REAL(sendto)(fd, buf, len, flags, to, tolen);
    }
    struct iovec iov = { (void *)buf, len };
    ssize_t r = stack_send(s, &iov, 1, flags);
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        ssize_t r = (flags & MSG_FASTOPEN) ? shim_ph_own_fd(fd) : 0;
        if (r < 0)
            return shim_ret(r);
        if (!msg || !msg->msg_control || !msg->msg_controllen)
            return REAL(sendmsg)(fd, msg, flags);
        struct shim_pass ps;    /* stack sockets passed (SCM_RIGHTS): pass_fds.c */
        shim_pass_prepare(msg, &ps);
        ssize_t k = REAL(sendmsg)(fd, msg, flags);
        shim_pass_sent(&ps, k >= 0);
        return k;
    }
    ssize_t r;
    if (!msg)
        r = -EFAULT;
    else if (msg->msg_iovlen > IOV_MAX)
        r = -EMSGSIZE;
    else
        r = stack_send(s, msg->msg_iov, (int)msg->msg_iovlen, flags);
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(write)(fd, buf, len);
    struct iovec iov = { (void *)buf, len };
    ssize_t r = stack_send(s, &iov, 1, 0);
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(writev)(fd, iov, cnt);
    ssize_t r = stack_send(s, iov, cnt, 0);
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(recv)(fd, buf, len, flags);
    struct iovec iov = { buf, len };
    ssize_t r = stack_recv(s, &iov, 1, flags);
    shim_sock_put(s);
    return shim_ret(r);
}

/* A TCP recvfrom names no source: Linux sets *fromlen to 0. */
EXPORT ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                        socklen_t *fromlen)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(recvfrom)(fd, buf, len, flags, from, fromlen);
    struct iovec iov = { buf, len };
    ssize_t r = stack_recv(s, &iov, 1, flags);
    if (r >= 0 && from && fromlen)
        *fromlen = 0;
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        ssize_t k = REAL(recvmsg)(fd, msg, flags);
        if (k >= 0) {
            shim_fresh_cmsg(msg);       /* fds received (SCM_RIGHTS) are new numbers */
            shim_pass_recv(msg);        /* and some may be stack sockets */
        }
        return k;
    }
    ssize_t r;
    if (!msg)
        r = -EFAULT;
    else if (msg->msg_iovlen > IOV_MAX)
        r = -EMSGSIZE;
    else {
        r = stack_recv(s, msg->msg_iov, (int)msg->msg_iovlen, flags);
        if (r >= 0) {
            msg->msg_namelen = 0;
            msg->msg_controllen = 0;
            msg->msg_flags = r > 0 ? (flags & MSG_OOB) : 0;     /* Linux tcp_recv_urg */
        }
    }
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t read(int fd, void *buf, size_t len)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(read)(fd, buf, len);
    struct iovec iov = { buf, len };
    ssize_t r = stack_recv(s, &iov, 1, 0);
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(readv)(fd, iov, cnt);
    ssize_t r = stack_recv(s, iov, cnt, 0);
    shim_sock_put(s);
    return shim_ret(r);
}

/* _FORTIFY_SOURCE entry points: the size check, then the plain call. */
EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
    if (len > buflen)
        __chk_fail();
    return read(fd, buf, len);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
    if (len > buflen)
        __chk_fail();
    return recv(fd, buf, len, flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
                              struct sockaddr *from, socklen_t *fromlen)
{
    if (len > buflen)
        __chk_fail();
    return recvfrom(fd, buf, len, flags, from, fromlen);
}

#define SENDFILE_CHUNK (64 * 1024)

/* sendfile from a file to a stack socket: read a chunk (pread at *offset,
 * or read at the file position), send it, and give back what the socket
 * did not take (the file position moves only by what was sent, as in Linux). */
static ssize_t stack_sendfile(struct shim_sock *s, int in_fd, off_t *offset, size_t count)
{
    struct shim_sock *in = shim_stack_lookup(in_fd);
    if (in) {                   /* a socket is not a source Linux's sendfile reads */
        shim_sock_put(in);
        return -EINVAL;
    }
    if (offset && *offset < 0)
        return -EINVAL;
    /* What the socket does not take is given back by seeking: the source
     * must be seekable (a file), or bytes would be lost. */
    if (!offset && lseek(in_fd, 0, SEEK_CUR) < 0) {
        tcpsm_log(TCPSM_LOG_DEBUG, "sendfile to a stack socket from unseekable fd %d", in_fd);
        return errno == EBADF ? -EBADF : -EINVAL;
    }
    char *buf = malloc(SENDFILE_CHUNK);
    if (!buf)
        return -ENOMEM;
    size_t done = 0;
    ssize_t err = 0;
    off_t pos = offset ? *offset : 0;
    int64_t timeout = atomic_load(&s->sndtimeo_ns);
    while (done < count) {
        size_t want = count - done < SENDFILE_CHUNK ? count - done : SENDFILE_CHUNK;
        ssize_t n = offset ? REAL(pread)(in_fd, buf, want, pos) : REAL(read)(in_fd, buf, want);
        if (n < 0) {
            err = -errno;
            break;
        }
        if (n == 0)
            break;
        /* After the first bytes went out, never sleep again: return the count. */
        struct iovec iov = { buf, (size_t)n };
        int nb = atomic_load(&s->nonblock) || done > 0;
        ssize_t w = tcpsm_send(s->sk, &iov, 1, nb, timeout);
        ssize_t sent = w > 0 ? w : 0;
        if (!offset && sent < n)
            lseek(in_fd, sent - n, SEEK_CUR);
        pos += sent;
        done += (size_t)sent;
        if (w < 0) {
            err = w;
            break;
        }
        if (w < n)
            break;
    }
    free(buf);
    if (offset)
        *offset = pos;
    if (done > 0)
        return (ssize_t)done;
    if (err == -EPIPE)
        shim_sigpipe();
    return err;
}

EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    struct shim_sock *s = shim_stack_lookup(out_fd);
    if (!s) {
        struct shim_sock *in = shim_stack_lookup(in_fd);
        if (in) {               /* a socket is not a source Linux's sendfile reads */
            shim_sock_put(in);
            return shim_ret(-EINVAL);
        }
        return REAL(sendfile)(out_fd, in_fd, offset, count);
    }
    ssize_t r = stack_sendfile(s, in_fd, offset, count);
    shim_sock_put(s);
    return shim_ret(r);
}

EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
    return sendfile(out_fd, in_fd, offset, count);
}

/* sendmmsg/recvmmsg on a stream socket: one sendmsg/recvmsg per entry, as
 * Linux does; an error after the first entry ends the batch with the count.
 * recvmmsg's timeout is not applied (Linux checks it only between entries). */
EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        int r = (flags & MSG_FASTOPEN) ? shim_ph_own_fd(fd) : 0;
        return r < 0 ? (int)shim_ret(r) : REAL(sendmmsg)(fd, vec, vlen, flags);
    }
    long n = 0;
    if (vlen > 0 && !vec)
        n = -EFAULT;
    for (unsigned i = 0; n >= 0 && i < vlen && i < 1024; i++) {     /* UIO_MAXIOV entries */
        struct msghdr *m = &vec[i].msg_hdr;
        ssize_t r = m->msg_iovlen > IOV_MAX ? -EMSGSIZE
                                            : stack_send(s, m->msg_iov, (int)m->msg_iovlen, flags);
        if (r < 0) {
            n = n > 0 ? n : r;
            break;
        }
        vec[i].msg_len = (unsigned)r;
        n++;
    }
    shim_sock_put(s);
    return (int)shim_ret(n);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *tmo)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s) {
        int k = REAL(recvmmsg)(fd, vec, vlen, flags, tmo);
        for (int i = 0; i < k; i++) {
            shim_fresh_cmsg(&vec[i].msg_hdr);
            shim_pass_recv(&vec[i].msg_hdr);
        }
        return k;
    }
    long n = 0;
    if (vlen > 0 && !vec)
        n = -EFAULT;
    for (unsigned i = 0; n >= 0 && i < vlen && i < 1024; i++) {
        int f = flags & ~MSG_WAITFORONE;
        if (n > 0 && (flags & MSG_WAITFORONE))
            f |= MSG_DONTWAIT;
        struct msghdr *m = &vec[i].msg_hdr;
        ssize_t r = m->msg_iovlen > IOV_MAX ? -EMSGSIZE
                                            : stack_recv(s, m->msg_iov, (int)m->msg_iovlen, f);
        if (r < 0) {
            n = n > 0 ? n : r;
            break;
        }
        vec[i].msg_len = (unsigned)r;
        m->msg_namelen = 0;
        m->msg_controllen = 0;
        m->msg_flags = 0;
        n++;
        if (r == 0)
            break;              /* EOF */
    }
    shim_sock_put(s);
    return (int)shim_ret(n);
}

/* splice needs the kernel's socket buffers: a stack socket cannot be an end. */
EXPORT ssize_t splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                      unsigned int flags)
{
    struct shim_sock *a = shim_stack_lookup(fd_in), *b = shim_stack_lookup(fd_out);
    if (!a && !b)
        return REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags);
    if (a)
        shim_sock_put(a);
    if (b)
        shim_sock_put(b);
    tcpsm_log(TCPSM_LOG_DEBUG, "splice with a stack socket (fd %d -> fd %d) is not supported", fd_in,
              fd_out);
    return shim_ret(-EINVAL);
}
