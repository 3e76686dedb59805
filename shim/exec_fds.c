/* Stack sockets inherited across exec (stack/runtime/runtime_exec.c).
 *
 * Runs in the library's constructor of an image exec'd by a process that
 * held stack sockets, before the program's own code: each open fd that is a
 * socket is looked up by its identity (st_dev, st_ino) among the sockets
 * the process held before exec; a match becomes that stack socket again
 * (dup'd fds share one socket object, as they share one file description).
 * What the shim kept per socket that the kernel also has is read back from
 * the placeholder, which got every fcntl and setsockopt: O_NONBLOCK,
 * SO_RCVTIMEO/SO_SNDTIMEO, the family, and whether it also listens for
 * loopback clients. The sockets no fd claimed are then released. */
#include "shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_log.h"

/* fds claimed so far: dup'd ones find their socket object here */
#define CLAIM_MAX 1024
struct claim {
    uint64_t dev, ino;
    struct shim_sock *s;
};

struct shim_sock *shim_sock_from_placeholder(int fd, struct tcpsm_sock *sk)
{
    struct shim_sock *s = shim_sock_new();
    if (!s)
        return NULL;
    s->sk = sk;
    int v = 0;
    socklen_t vl = sizeof(v);
    if (REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) == 0)
        s->family = v;
    int fl = REAL(fcntl)(fd, F_GETFL);
    atomic_store(&s->nonblock, fl >= 0 && (fl & O_NONBLOCK));
    struct timeval tv;
    socklen_t tl = sizeof(tv);
    if (REAL(getsockopt)(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &tl) == 0)
        atomic_store(&s->rcvtimeo_ns, shim_tv_to_ns(&tv));
    tl = sizeof(tv);
    if (REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tl) == 0)
        atomic_store(&s->sndtimeo_ns, shim_tv_to_ns(&tv));
    v = 0;
    vl = sizeof(v);
    if (REAL(getsockopt)(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0 && v)
        atomic_store(&s->klisten, true);
    atomic_store(&s->state, SHIM_STACK);
    return s;
}

static void claim_fd(int fd, struct claim *c, unsigned *nc)
{
    struct stat st;
    if (fd < 0 || fd >= shim_nslots || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    for (unsigned i = 0; i < *nc; i++) {
        if (c[i].ino == (uint64_t)st.st_ino && c[i].dev == (uint64_t)st.st_dev) {
            shim_fd_install(fd, c[i].s);
            return;
        }
    }
    struct tcpsm_sock *sk = tcpsm_rt_exec_claim((uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (!sk)
        return;
    struct shim_sock *s = shim_sock_from_placeholder(fd, sk);
    if (!s) {
        tcpsm_log(TCPSM_LOG_WARN, "exec: fd %d: out of memory; its stack socket is lost", fd);
        return;
    }
    shim_fd_install(fd, s);
    tcpsm_log(TCPSM_LOG_DEBUG, "exec: fd %d is the stack socket it was before exec", fd);
    if (*nc < CLAIM_MAX)
        c[(*nc)++] = (struct claim){ (uint64_t)st.st_dev, (uint64_t)st.st_ino, s };
    else
        shim_sock_unref(s);     /* a dup of it beyond the list gets no entry: rare */
}

/* The open fds, from /proc/self/fd (getdents64: no allocation, no
 * interposed call); without /proc, every number below the soft limit. */
static void each_fd(struct claim *c, unsigned *nc)
{
    int dfd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/fd",
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 0; fd < max && fd < shim_nslots; fd++)
            claim_fd((int)fd, c, nc);
        return;
    }
    char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            int fd = atoi(d->d_name);
            if (fd != dfd)
                claim_fd(fd, c, nc);
        }
    }
    syscall(SYS_close, dfd);
}

void shim_exec_inherit(void)
{
    struct claim *c = calloc(CLAIM_MAX, sizeof(*c));
    unsigned nc = 0;
    if (c) {
        each_fd(c, &nc);
        for (unsigned i = 0; i < nc; i++)
            shim_sock_unref(c[i].s);    /* the fds hold their own references */
        free(c);
    }
    tcpsm_rt_exec_end();
}

/* ------------------------------------------------------------ before exec */

/* An accepted socket's placeholder is a dup of one template socket shared
 * by all of them (socket_calls.c): by identity alone the new image could not
 * tell them apart. Each one the new image inherits gets a fresh kernel
 * socket of its own on the same fd numbers (its dups keep sharing one),
 * with the O_NONBLOCK and timeouts the new image reads back; close-on-exec
 * fds are left alone (they go away), except before posix_spawn, whose file
 * actions may dup any of them into the child. The fresh identities are recorded
 * after the table walk, outside the shim's table lock. */
#define PREP_MAX 1024
struct prep {
    unsigned n;
    bool full, all;
    struct {
        struct shim_sock *s;
        int ph;
        uint64_t dev, ino;
    } e[PREP_MAX];
};

static void set_timeo(int fd, int opt, int64_t ns)
{
    if (ns < 0)
        return;
    struct timeval tv = { .tv_sec = ns / 1000000000, .tv_usec = ns % 1000000000 / 1000 };
    REAL(setsockopt)(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

int shim_placeholder_new(struct shim_sock *s)
{
    int ph = REAL(socket)(s->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ph < 0)
        return -1;
    if (atomic_load(&s->nonblock))
        REAL(fcntl)(ph, F_SETFL, O_NONBLOCK);
    set_timeo(ph, SO_RCVTIMEO, atomic_load(&s->rcvtimeo_ns));
    set_timeo(ph, SO_SNDTIMEO, atomic_load(&s->sndtimeo_ns));
    return ph;
}

static void prep_fd(int fd, struct shim_sock *s, void *arg)
{
    struct prep *p = arg;
    if (atomic_load(&s->ph_undec)) {
        /* unconnected, on the client template: inherited by the new image
         * as a kernel socket, which must not be the template (placeholder.c) */
        int fdfl = REAL(fcntl)(fd, F_GETFD);
        if (fdfl >= 0 && (!(fdfl & FD_CLOEXEC) || p->all) && shim_ph_replace(fd, s) < 0)
            tcpsm_log(TCPSM_LOG_WARN, "exec: fd %d keeps the shared placeholder", fd);
        return;
    }
    if (!atomic_load(&s->shared_ph) || atomic_load(&s->state) != SHIM_STACK)
        return;
    int fdfl = REAL(fcntl)(fd, F_GETFD);
    if (fdfl < 0 || ((fdfl & FD_CLOEXEC) && !p->all))
        return;
    unsigned i = 0;
    while (i < p->n && p->e[i].s != s)
        i++;
    if (i == p->n) {
        if (p->n == PREP_MAX) {
            p->full = true;
            return;
        }
        int ph = shim_placeholder_new(s);
        struct stat st;
        if (ph < 0 || fstat(ph, &st) < 0) {
            if (ph >= 0)
                REAL(close)(ph);
            return;
        }
        p->e[i].s = s;
        p->e[i].ph = ph;
        p->e[i].dev = (uint64_t)st.st_dev;
        p->e[i].ino = (uint64_t)st.st_ino;
        p->n++;
    }
    if (REAL(dup3)(p->e[i].ph, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
        tcpsm_log(TCPSM_LOG_WARN, "exec: fd %d keeps a shared placeholder: %s", fd, strerror(errno));
}

void shim_exec_prepare(bool all)
{
    tcpsm_rt_flush_output();    /* the new image would not send them */
    if (!shim_nslots)
        return;
    shim_epoll_expose_all();    /* the new image may wait on an inherited epoll fd */
    struct prep *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->all = all;
    shim_fd_each_sock(prep_fd, p);
    for (unsigned i = 0; i < p->n; i++) {
        REAL(close)(p->e[i].ph);
        tcpsm_placeholder_id(p->e[i].s->sk, p->e[i].dev, p->e[i].ino);
        tcpsm_log(TCPSM_LOG_DEBUG, "exec: an accepted socket gets placeholder %llu",
                  (unsigned long long)p->e[i].ino);
        /* In a vfork-like child the object is the parent's, whose fds
         * still hold the template. */
        if (!shim_vm_child())
            atomic_store(&p->e[i].s->shared_ph, false);
    }
    if (p->full)
        tcpsm_log(TCPSM_LOG_WARN, "exec: more than %d accepted stack sockets inherited; the "
                  "new image may not find the rest", PREP_MAX);
    free(p);
}
