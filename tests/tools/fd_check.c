/* fd_check: the shim's fd-table lifetime, checked through the library (run
 * it under build/tcpsm in the stack namespace, against build/tools/api_peer
 * on the kernel peer, whose port BASE echoes):
 *     fd_check PEER_IP BASE [SECTION,...]
 * (sections: syscall stale vfork locks timeouts; default all)
 * - syscall(2): the numbers that touch a tracked fd reach the same handlers
 *   as the libc wrappers (data through the stack, O_NONBLOCK, dup, close);
 * - a socket closed behind the shim's back (a raw system call, as io_uring
 *   or another unseen path would) never captures the next fd opened on its
 *   number, whichever call creates it; fclose of an fdopen'ed socket;
 * - vfork (and a program's own clone(CLONE_VM|CLONE_VFORK), and posix_spawn):
 *   a child closing a socket leaves the parent's table and connection;
 * - fork while other threads hold the shim's locks: the children never hang;
 * - ppoll/select/pselect timeouts too large for nanoseconds wait, not wrap.
 * One PASS/FAIL line per check; exit status 1 if any failed. Time bounds
 * only turn a hang into a FAIL. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_syscall.h"

extern char **environ;

static int failures;
static struct in_addr peer_ip;
static int base;
static char tmpdir[] = "/tmp/fd_check.XXXXXX";
static char fpath[300];
static const char fcontent[] = "file content, not a socket\n";

#define CHECK(name, cond, ...)                                                                     \
    do {                                                                                           \
        int e_ = errno;                                                                            \
        if (cond) {                                                                                \
            printf("PASS %s\n", name);                                                             \
        } else {                                                                                   \
            printf("FAIL %s: ", name);                                                             \
            printf(__VA_ARGS__);                                                                   \
            printf(" (errno %d %s)\n", e_, strerror(e_));                                          \
            failures++;                                                                            \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static void on_alarm(int sig)
{
    (void)sig;
}

/* Turns a hang into EINTR: SIGALRM without SA_RESTART. */
static void arm(unsigned secs)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(secs);
}

static int echo_conn(void)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)base), .sin_addr = peer_ip };
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("fd_check: connect to the echo port");
        exit(2);
    }
    return c;
}

/* A stack socket that needs no peer: a listener on INADDR_ANY, port 0. */
static int stack_listener(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0) {
        perror("fd_check: stack listener");
        exit(2);
    }
    return l;
}

static bool read_all(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* fd reads back as the test file (through the interposed read). */
static bool is_the_file(int fd)
{
    char buf[sizeof(fcontent)] = { 0 };
    lseek(fd, 0, SEEK_SET);
    ssize_t r = read(fd, buf, sizeof(fcontent) - 1);
    return r == (ssize_t)sizeof(fcontent) - 1 && memcmp(buf, fcontent, sizeof(fcontent) - 1) == 0;
}

/* ------------------------------------------------------------ syscall(2) */

static void check_syscall_routes(void)
{
    int c = echo_conn();
    char out[3000], in[3000];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (char)('a' + i % 26);

    arm(10);
    long w = syscall(SYS_write, c, out, 1000);
    bool ok = w == 1000 && read_all(c, in, 1000) && memcmp(in, out, 1000) == 0;
    CHECK("syscall_write_read", ok, "SYS_write gave %ld or the echo differed", w);

    w = syscall(SYS_sendto, c, out, 500, MSG_NOSIGNAL, NULL, 0);
    long r = 0;
    size_t got = 0;
    while (w == 500 && got < 500 && (r = syscall(SYS_recvfrom, c, in + got, 500 - got, 0, NULL, NULL)) > 0)
        got += (size_t)r;
    CHECK("syscall_sendto_recvfrom", w == 500 && got == 500 && memcmp(in, out, 500) == 0,
          "sendto %ld, got %zu (last %ld)", w, got, r);

    struct iovec iv[2] = { { out, 300 }, { out + 300, 400 } };
    w = syscall(SYS_writev, c, iv, 2);
    struct iovec rv[2] = { { in, 350 }, { in + 350, 350 } };
    r = w == 700 ? syscall(SYS_readv, c, rv, 2) : -1;
    got = r > 0 ? (size_t)r : 0;
    ok = w == 700 && r > 0 && read_all(c, in + got, 700 - got) && memcmp(in, out, 700) == 0;
    CHECK("syscall_writev_readv", ok, "writev %ld readv %ld", w, r);

    struct msghdr m = { .msg_iov = iv, .msg_iovlen = 2 };
    w = syscall(SYS_sendmsg, c, &m, 0);
    struct msghdr mr = { .msg_iov = rv, .msg_iovlen = 2 };
    r = w == 700 ? syscall(SYS_recvmsg, c, &mr, 0) : -1;
    got = r > 0 ? (size_t)r : 0;
    ok = w == 700 && r > 0 && read_all(c, in + got, 700 - got) && memcmp(in, out, 700) == 0;
    CHECK("syscall_sendmsg_recvmsg", ok, "sendmsg %ld recvmsg %ld", w, r);

    struct sockaddr_in la, sa;
    socklen_t ll = sizeof(la), sl = sizeof(sa);
    memset(&la, 0, sizeof(la));
    memset(&sa, 0, sizeof(sa));
    getsockname(c, (struct sockaddr *)&la, &ll);
    r = syscall(SYS_getsockname, c, &sa, &sl);
    CHECK("syscall_getsockname", r == 0 && sa.sin_port == la.sin_port && sa.sin_port != 0 &&
          sa.sin_addr.s_addr == la.sin_addr.s_addr, "SYS_getsockname %ld: port %u vs %u", r,
          ntohs(sa.sin_port), ntohs(la.sin_port));

    /* O_NONBLOCK through SYS_fcntl must reach the socket object. */
    r = syscall(SYS_fcntl, c, F_SETFL, O_NONBLOCK);
    errno = 0;
    ssize_t n = read(c, in, 10);
    CHECK("syscall_fcntl_nonblock", r == 0 && n < 0 && errno == EAGAIN, "SYS_fcntl %ld, read %zd", r, n);
    fcntl(c, F_SETFL, 0);

    struct pollfd p = { .fd = c, .events = POLLIN };
    syscall(SYS_write, c, "x", 1);
    r = syscall(SYS_ppoll, &p, 1, NULL, NULL, 8);
    CHECK("syscall_ppoll", r == 1 && (p.revents & POLLIN), "SYS_ppoll %ld revents %#x", r, p.revents);
    read(c, in, 1);

    long d = syscall(SYS_dup, c);
    w = d >= 0 ? write((int)d, out, 200) : -1;
    ok = w == 200 && read_all(c, in, 200) && memcmp(in, out, 200) == 0;
    CHECK("syscall_dup", ok, "SYS_dup %ld, write %ld", d, w);
    if (d >= 0)
        syscall(SYS_close, d);
    /* The dup's close left the socket open. */
    w = write(c, out, 10);
    CHECK("syscall_close_of_dup", w == 10 && read_all(c, in, 10), "write after closing the dup: %ld", w);

    r = syscall(SYS_shutdown, c, SHUT_WR);
    char one;
    n = r == 0 ? read(c, &one, 1) : -1;
    CHECK("syscall_shutdown", r == 0 && n == 0, "SYS_shutdown %ld, then read %zd (want EOF)", r, n);
    alarm(0);

    /* Closed through syscall(SYS_close): the next file on that number is a file. */
    r = syscall(SYS_close, c);
    int f = open(fpath, O_RDONLY);
    CHECK("syscall_close_then_open", r == 0 && f == c && is_the_file(f),
          "SYS_close %ld; open gave fd %d (socket was %d), read it as the file: %d", r, f, c,
          f >= 0 && is_the_file(f));
    close(f);

    /* Everything else passes through with its six arguments. */
    void *mp = (void *)syscall(SYS_mmap, NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ok = mp != MAP_FAILED;
    if (ok) {
        memset(mp, 7, 8192);
        ok = ((char *)mp)[8191] == 7 && munmap(mp, 8192) == 0;
    }
    CHECK("syscall_six_args", ok, "SYS_mmap through syscall()");
    CHECK("syscall_getpid", syscall(SYS_getpid) == getpid(), "SYS_getpid");
}

/* ------------------------------------------------------------ stale entries */

enum kind { K_FILE, K_PIPE, K_EVENTFD, K_TIMERFD, K_SIGNALFD, K_MEMFD, K_INOTIFY, K_EPOLL, K_UNIX,
            K_KTCP };

struct made {
    int fd, other;
    enum kind kind;
};

/* Is fd what it was made as, seen through the interposed calls? */
static bool identity(const struct made *m)
{
    int fd = m->fd;
    switch (m->kind) {
    case K_FILE:
        return is_the_file(fd);
    case K_PIPE: {      /* fd is the read end, other the write end */
        char b = 0;
        return write(m->other, "p", 1) == 1 && read(fd, &b, 1) == 1 && b == 'p';
    }
    case K_EVENTFD: {
        uint64_t v = 5, got = 0;
        return write(fd, &v, 8) == 8 && read(fd, &got, 8) == 8 && got == 5;
    }
    case K_TIMERFD: {
        struct itimerspec its = { .it_value = { 0, 1000 } };
        uint64_t exp = 0;
        return timerfd_settime(fd, 0, &its, NULL) == 0 && read(fd, &exp, 8) == 8 && exp >= 1;
    }
    case K_SIGNALFD: {
        struct signalfd_siginfo si;
        memset(&si, 0, sizeof(si));
        raise(SIGUSR2);
        return read(fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo == SIGUSR2;
    }
    case K_MEMFD: {
        char b[4] = { 0 };
        return write(fd, "memf", 4) == 4 && lseek(fd, 0, SEEK_SET) == 0 && read(fd, b, 4) == 4 &&
               memcmp(b, "memf", 4) == 0;
    }
    case K_INOTIFY: {
        int n = -1;
        return ioctl(fd, FIONREAD, &n) == 0 && n == 0;      /* a stack listener: EINVAL */
    }
    case K_EPOLL: {     /* other: a pipe's read end made readable */
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 77 }, out;
        return epoll_ctl(fd, EPOLL_CTL_ADD, m->other, &ev) == 0 && epoll_wait(fd, &out, 1, 2000) == 1 &&
               out.data.u32 == 77;
    }
    case K_UNIX: {      /* fd and other: a connected AF_UNIX pair */
        struct sockaddr_un su;
        socklen_t sl = sizeof(su);
        char b = 0;
        return getsockname(fd, (struct sockaddr *)&su, &sl) == 0 && su.sun_family == AF_UNIX &&
               write(m->other, "u", 1) == 1 && read(fd, &b, 1) == 1 && b == 'u';
    }
    case K_KTCP: {      /* an accepted loopback connection (the kernel's); other: its client */
        char b = 0;
        return write(m->other, "k", 1) == 1 && read(fd, &b, 1) == 1 && b == 'k';
    }
    }
    return false;
}

static void check_stale(const char *name, struct made (*make)(void))
{
    int l = stack_listener();
    raw_close(l);               /* the shim still holds an entry for l */
    struct made m = make();
    bool same = m.fd == l;
    bool ok = same && identity(&m);
    CHECK(name, ok, "new fd %d on the stale socket's number %d: %s", m.fd, l,
          same ? "taken for the socket" : "another number (the check proves nothing)");
    close(m.fd);
    if (m.other >= 0)
        close(m.other);
}

static struct made mk_open(void) { return (struct made){ open(fpath, O_RDONLY), -1, K_FILE }; }
static struct made mk_open64(void) { return (struct made){ open64(fpath, O_RDONLY), -1, K_FILE }; }
static struct made mk_openat(void) { return (struct made){ openat(AT_FDCWD, fpath, O_RDONLY), -1, K_FILE }; }
static struct made mk_sys_openat(void)
{
    return (struct made){ (int)syscall(SYS_openat, AT_FDCWD, fpath, O_RDONLY), -1, K_FILE };
}
static struct made mk_pipe(void)
{
    int p[2] = { -1, -1 };
    pipe(p);
    return (struct made){ p[0], p[1], K_PIPE };
}
static struct made mk_pipe2(void)
{
    int p[2] = { -1, -1 };
    pipe2(p, O_CLOEXEC);
    return (struct made){ p[0], p[1], K_PIPE };
}
static struct made mk_sys_pipe2(void)
{
    int p[2] = { -1, -1 };
    syscall(SYS_pipe2, p, 0);
    return (struct made){ p[0], p[1], K_PIPE };
}
static struct made mk_eventfd(void) { return (struct made){ eventfd(0, 0), -1, K_EVENTFD }; }
static struct made mk_sys_eventfd(void) { return (struct made){ (int)syscall(SYS_eventfd2, 0, 0), -1, K_EVENTFD }; }
static struct made mk_timerfd(void) { return (struct made){ timerfd_create(CLOCK_MONOTONIC, 0), -1, K_TIMERFD }; }
static struct made mk_signalfd(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    sigprocmask(SIG_BLOCK, &s, NULL);
    return (struct made){ signalfd(-1, &s, 0), -1, K_SIGNALFD };
}
static struct made mk_memfd(void) { return (struct made){ memfd_create("fd_check", 0), -1, K_MEMFD }; }
static struct made mk_inotify(void) { return (struct made){ inotify_init1(IN_NONBLOCK), -1, K_INOTIFY }; }
static struct made mk_epoll(void)
{
    int ep = epoll_create1(0);
    int p[2] = { -1, -1 };
    pipe(p);
    write(p[1], "e", 1);
    close(p[1]);
    return (struct made){ ep, p[0], K_EPOLL };
}
static struct made mk_socketpair(void)
{
    int sv[2] = { -1, -1 };
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    return (struct made){ sv[0], sv[1], K_UNIX };
}
/* Checks whose creation needs an fd made before the stale number. */
static void check_stale_dup(void)
{
    int f = open(fpath, O_RDONLY);
    int l = stack_listener();
    raw_close(l);
    int d = dup(f);
    CHECK("stale_dup", d == l && is_the_file(d), "dup gave %d (stale %d)", d, l);
    close(d);
    close(f);
}

static void check_stale_scm_rights(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    int f = open(fpath, O_RDONLY);
    int l = stack_listener();
    raw_close(l);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof(cbuf));
    char x = 'x';
    struct iovec iv = { &x, 1 };
    struct msghdr m = { .msg_iov = &iv, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &f, sizeof(int));
    int got = -1;
    if (sendmsg(sv[0], &m, 0) == 1) {
        memset(cbuf, 0, sizeof(cbuf));
        m.msg_controllen = sizeof(cbuf);
        if (recvmsg(sv[1], &m, 0) == 1 && (c = CMSG_FIRSTHDR(&m)) && c->cmsg_type == SCM_RIGHTS)
            memcpy(&got, CMSG_DATA(c), sizeof(int));
    }
    CHECK("stale_scm_rights", got == l && is_the_file(got), "received fd %d (stale %d)", got, l);
    close(got);
    close(f);
    close(sv[0]);
    close(sv[1]);
}

static void check_stale_kernel_accept(void)
{
    int k = socket(AF_INET, SOCK_STREAM, 0);     /* bound to loopback: the kernel's */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int cl = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = bind(k, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(k, 4) == 0 &&
              getsockname(k, (struct sockaddr *)&a, &al) == 0 &&
              connect(cl, (struct sockaddr *)&a, sizeof(a)) == 0;
    int l = stack_listener();
    raw_close(l);
    int s = ok ? accept(k, NULL, NULL) : -1;
    struct made m = { s, cl, K_KTCP };
    CHECK("stale_kernel_accept", s == l && identity(&m), "accept gave %d (stale %d)", s, l);
    close(s);
    close(cl);
    close(k);
}

/* glibc opens these fds with its internal calls. */
static void check_stale_stdio(void)
{
    int l = stack_listener();
    raw_close(l);
    FILE *fp = fopen(fpath, "r");
    int fd = fp ? fileno(fp) : -1;
    CHECK("stale_fopen", fd == l && is_the_file(fd), "fopen's fd %d (stale %d)", fd, l);
    if (fp)
        fclose(fp);

    l = stack_listener();
    raw_close(l);
    DIR *d = opendir(tmpdir);
    fd = d ? dirfd(d) : -1;
    char b[8];
    errno = 0;
    ssize_t n = fd >= 0 ? read(fd, b, 1) : 0;
    CHECK("stale_opendir", fd == l && n == -1 && errno == EISDIR, "opendir's fd %d (stale %d), read %zd",
          fd, l, n);
    if (d)
        closedir(d);

    l = stack_listener();
    raw_close(l);
    char t[320];
    snprintf(t, sizeof(t), "%s/mkstempXXXXXX", tmpdir);
    fd = mkstemp(t);
    n = fd >= 0 ? write(fd, fcontent, sizeof(fcontent) - 1) : -1;
    CHECK("stale_mkstemp", fd == l && n == (ssize_t)sizeof(fcontent) - 1 && is_the_file(fd),
          "mkstemp gave %d (stale %d), write %zd", fd, l, n);
    close(fd);

    l = stack_listener();
    raw_close(l);
    fp = tmpfile();
    fd = fp ? fileno(fp) : -1;
    n = fd >= 0 ? write(fd, fcontent, sizeof(fcontent) - 1) : -1;
    CHECK("stale_tmpfile", fd == l && n == (ssize_t)sizeof(fcontent) - 1 && is_the_file(fd),
          "tmpfile's fd %d (stale %d), write %zd", fd, l, n);
    if (fp)
        fclose(fp);

    l = stack_listener();
    raw_close(l);
    fp = popen("echo popen", "r");
    fd = fp ? fileno(fp) : -1;
    memset(b, 0, sizeof(b));
    n = fd >= 0 ? read(fd, b, 6) : -1;
    CHECK("stale_popen", fd == l && n == 6 && memcmp(b, "popen\n", 6) == 0, "popen's fd %d (stale %d), read %zd",
          fd, l, n);
    if (fp)
        pclose(fp);

    /* close_range with CLOSE_RANGE_UNSHARE closes too (in a child: the
     * unshared table would leave the runtime's threads behind). */
    l = stack_listener();
    pid_t pid = fork();
    if (pid == 0) {
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        if (close_range((unsigned)l, (unsigned)l, CLOSE_RANGE_UNSHARE) != 0)
            _exit(2);
        errno = 0;
        _exit(getsockname(l, (struct sockaddr *)&a, &al) == -1 && errno == EBADF ? 0 : 1);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK("close_range_unshare", WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "getsockname of the fd closed by close_range(CLOSE_RANGE_UNSHARE) in the child: status %#x", st);
    close(l);
}

/* fclose of an fdopen'ed socket closes it with glibc's internal close. */
static void check_fclose(void)
{
    int l = stack_listener();
    FILE *fp = fdopen(l, "r+");
    int rc = fp ? fclose(fp) : -1;
    int f = open(fpath, O_RDONLY);
    CHECK("fclose_of_fdopen_socket", rc == 0 && f == l && is_the_file(f),
          "fclose %d; open gave %d (socket was %d)", rc, f, l);
    close(f);
}

/* ------------------------------------------------------------ vfork, fork */

struct clone_args_fd {
    int c, c2, f;
};

/* Returns (its status) rather than _exit: a noreturn call on this
 * borrowed stack makes ASan warn. */
static int vm_child(void *p)
{
    const struct clone_args_fd *a = p;
    close(a->c);
    return dup2(a->f, a->c2) == a->c2 ? 0 : 3;
}

static void check_vfork(void)
{
    int c = echo_conn();
    char in[100];
    arm(10);
    pid_t pid = vfork();
    if (pid == 0) {
        close(c);               /* the child's copy only */
        _exit(0);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    ssize_t w = write(c, "after vfork", 11);
    bool ok = pid > 0 && WIFEXITED(st) && w == 11 && read_all(c, in, 11) && memcmp(in, "after vfork", 11) == 0;
    CHECK("vfork_child_close", ok, "the parent's connection after the vfork child closed it: write %zd", w);

    /* A hand-written spawn: clone(CLONE_VM|CLONE_VFORK), the child closes
     * the socket and dups a file over another of the parent's sockets. */
    int c2 = echo_conn();
    static char cstack[64 * 1024] __attribute__((aligned(16)));
    struct clone_args_fd ca = { c, c2, open(fpath, O_RDONLY) };
    pid = clone(vm_child, cstack + sizeof(cstack), CLONE_VM | CLONE_VFORK | SIGCHLD, &ca);
    st = -1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    w = write(c, "after clone", 11);
    ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && w == 11 && read_all(c, in, 11) &&
         memcmp(in, "after clone", 11) == 0;
    ssize_t w2 = write(c2, "second sock", 11);
    ok = ok && w2 == 11 && read_all(c2, in, 11) && memcmp(in, "second sock", 11) == 0;
    CHECK("clone_vm_vfork_child_close", ok, "clone %d status %#x, then write %zd / %zd", (int)pid, st, w, w2);
    close(ca.f);
    close(c2);

    /* posix_spawn's child closes the fd too (file action), with glibc's own calls. */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, c);
    char *argv[] = { "true", NULL };
    int e = posix_spawnp(&pid, "true", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    st = -1;
    if (e == 0)
        waitpid(pid, &st, 0);
    w = write(c, "after spawn", 11);
    ok = e == 0 && WIFEXITED(st) && w == 11 && read_all(c, in, 11) && memcmp(in, "after spawn", 11) == 0;
    CHECK("posix_spawn_child_close", ok, "spawn %d, then write %zd", e, w);
    alarm(0);
    close(c);
}

static atomic_bool stop;
static int shared_und;          /* an undecided socket every thread and child touches */
static int shared_stack;

static void *hammer_sockets(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        struct sockaddr_in a = { .sin_family = AF_INET };
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(shared_und, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        bind(s, (struct sockaddr *)&a, sizeof(a));
        listen(s, 1);
        close(s);
    }
    return NULL;
}

static void *hammer_epoll(void *arg)
{
    (void)arg;
    int ep = epoll_create1(0);
    while (!atomic_load(&stop)) {
        struct epoll_event ev = { .events = EPOLLIN };
        epoll_ctl(ep, EPOLL_CTL_ADD, shared_stack, &ev);
        epoll_wait(ep, &ev, 1, 0);
        epoll_ctl(ep, EPOLL_CTL_DEL, shared_stack, NULL);
    }
    close(ep);
    return NULL;
}

static void *hammer_dup(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        int d = dup(shared_stack);
        close(d);
    }
    return NULL;
}

/* The child touches every shim lock: a socket's (setsockopt on an undecided
 * socket), the epoll lock, the table lock (close of every fd). */
static void fork_child(void)
{
    int one = 1;
    setsockopt(shared_und, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN };
    epoll_ctl(ep, EPOLL_CTL_ADD, shared_und, &ev);
    for (int fd = 3; fd < 256; fd++)
        close(fd);
    _exit(0);
}

static void check_fork_locks(void)
{
    shared_und = socket(AF_INET, SOCK_STREAM, 0);
    shared_stack = stack_listener();
    pthread_t t[3];
    pthread_create(&t[0], NULL, hammer_sockets, NULL);
    pthread_create(&t[1], NULL, hammer_epoll, NULL);
    pthread_create(&t[2], NULL, hammer_dup, NULL);
    int hung = 0, forks = 0, bad = 0;
    time_t end = time(NULL) + 8;
    for (int i = 0; i < 300 && time(NULL) < end; i++) {
        pid_t pid = fork();
        if (pid == 0)
            fork_child();
        if (pid < 0)
            break;
        forks++;
        int st = 0;
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) {
                bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
                break;
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec >= 5) {
                hung++;
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                break;
            }
            usleep(1000);
        }
        if (hung)
            break;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK("fork_with_locks_held", hung == 0 && bad == 0 && forks >= 20,
          "%d forks: %d child(ren) hung (a lock held by another thread at fork), %d failed", forks,
          hung, bad);
    close(shared_und);
    close(shared_stack);
}

/* ------------------------------------------------------------ timeouts */

static int late_pipe[2];
static void *write_late(void *arg)
{
    (void)arg;
    usleep(1200 * 1000);
    write(late_pipe[1], "t", 1);
    return NULL;
}

/* 18446744074 s is 2^64 ns plus 0.29 s: an unchecked tv_sec * 1e9 wraps to
 * 0.29 s and the call returns 0 long before the pipe becomes readable. */
#define HUGE_SEC 18446744074L

static void check_timeouts(void)
{
    int c = echo_conn();        /* idle stack socket: never readable here */
    for (int k = 0; k < 3; k++) {
        pipe(late_pipe);
        pthread_t t;
        pthread_create(&t, NULL, write_late, NULL);
        int r;
        const char *name;
        if (k == 0) {
            name = "ppoll_huge_timeout";
            struct pollfd p[2] = { { .fd = c, .events = POLLIN }, { .fd = late_pipe[0], .events = POLLIN } };
            struct timespec ts = { HUGE_SEC, 0 };
            r = ppoll(p, 2, &ts, NULL);
            r = r == 1 && (p[1].revents & POLLIN) ? 1 : -100 - r;
        } else {
            fd_set rs;
            FD_ZERO(&rs);
            FD_SET(c, &rs);
            FD_SET(late_pipe[0], &rs);
            int n = (c > late_pipe[0] ? c : late_pipe[0]) + 1;
            if (k == 1) {
                name = "select_huge_timeout";
                struct timeval tv = { HUGE_SEC, 0 };
                r = select(n, &rs, NULL, NULL, &tv);
            } else {
                name = "pselect_huge_timeout";
                struct timespec ts = { HUGE_SEC, 0 };
                r = pselect(n, &rs, NULL, NULL, &ts, NULL);
            }
            r = r == 1 && FD_ISSET(late_pipe[0], &rs) ? 1 : -100 - r;
        }
        pthread_join(t, NULL);
        CHECK(name, r == 1, "returned %d before the pipe was written (timeout wrapped)", -100 - r);
        close(late_pipe[0]);
        close(late_pipe[1]);
    }
    /* The largest time_t: no overflow, the call waits as for an infinite one. */
    struct pollfd p = { .fd = c, .events = POLLIN };
    struct timespec tmax = { INT64_MAX, 999999999 };
    pipe(late_pipe);
    pthread_t t;
    pthread_create(&t, NULL, write_late, NULL);
    struct pollfd pp[2] = { p, { .fd = late_pipe[0], .events = POLLIN } };
    int r = ppoll(pp, 2, &tmax, NULL);
    pthread_join(t, NULL);
    CHECK("ppoll_max_timeout", r == 1 && (pp[1].revents & POLLIN), "ppoll gave %d", r);
    close(late_pipe[0]);
    close(late_pipe[1]);
    /* Negative: EINVAL, as Linux. */
    struct timespec neg = { -1, 0 };
    errno = 0;
    r = ppoll(&p, 1, &neg, NULL);
    CHECK("ppoll_negative_timeout", r == -1 && errno == EINVAL, "ppoll gave %d", r);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(c, &rs);
    struct timeval tvn = { -1, 0 };
    errno = 0;
    r = select(c + 1, &rs, NULL, NULL, &tvn);
    CHECK("select_negative_timeout", r == -1 && errno == EINVAL, "select gave %d", r);
    FD_ZERO(&rs);
    FD_SET(c, &rs);
    errno = 0;
    r = pselect(c + 1, &rs, NULL, NULL, &neg, NULL);
    CHECK("pselect_negative_timeout", r == -1 && errno == EINVAL, "pselect gave %d", r);
    /* tv_usec beyond a second counts as seconds (Linux folds it in). */
    FD_ZERO(&rs);
    FD_SET(c, &rs);
    struct timeval tvu = { 0, 1200000 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = select(c + 1, &rs, NULL, NULL, &tvu);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK("select_usec_over_a_second", r == 0 && el >= 1.1, "select gave %d after %.2f s", r, el);
    close(c);
}

static void check_stale_all(void)
{
    check_stale("stale_open", mk_open);
    check_stale("stale_open64", mk_open64);
    check_stale("stale_openat", mk_openat);
    check_stale("stale_syscall_openat", mk_sys_openat);
    check_stale("stale_pipe", mk_pipe);
    check_stale("stale_pipe2", mk_pipe2);
    check_stale("stale_syscall_pipe2", mk_sys_pipe2);
    check_stale("stale_eventfd", mk_eventfd);
    check_stale("stale_syscall_eventfd2", mk_sys_eventfd);
    check_stale("stale_timerfd", mk_timerfd);
    check_stale("stale_signalfd", mk_signalfd);
    check_stale("stale_memfd", mk_memfd);
    check_stale("stale_inotify", mk_inotify);
    check_stale("stale_epoll_create", mk_epoll);
    check_stale("stale_socketpair", mk_socketpair);
    {
        /* creat: the number is checked, then the file by its path */
        int l = stack_listener();
        raw_close(l);
        char p[320];
        snprintf(p, sizeof(p), "%s/creat", tmpdir);
        int fd = creat(p, 0600);
        ssize_t w = write(fd, fcontent, sizeof(fcontent) - 1);
        int r = open(p, O_RDONLY);
        CHECK("stale_creat", fd == l && w == (ssize_t)sizeof(fcontent) - 1 && is_the_file(r),
              "creat gave %d (stale %d), write %zd", fd, l, w);
        close(r);
        close(fd);
    }
    check_stale_dup();
    check_stale_scm_rights();
    check_stale_kernel_accept();
    check_stale_stdio();
    check_fclose();
}

int main(int argc, char **argv)
{
    if ((argc != 3 && argc != 4) || inet_pton(AF_INET, argv[1], &peer_ip) != 1) {
        fprintf(stderr, "usage: fd_check PEER_IP BASE [syscall,stale,vfork,locks,timeouts]\n");
        return 2;
    }
    base = atoi(argv[2]);
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(fpath, sizeof(fpath), "%s/file", tmpdir);
    FILE *fp = fopen(fpath, "w");
    if (!fp || fputs(fcontent, fp) < 0 || fclose(fp) != 0) {
        perror("fd_check: test file");
        return 2;
    }

    const char *only = argc == 4 ? argv[3] : NULL;
#define SECTION(n) (!only || strstr(only, n))
    if (SECTION("syscall"))
        check_syscall_routes();
    if (SECTION("stale"))
        check_stale_all();
    if (SECTION("vfork"))
        check_vfork();
    if (SECTION("locks"))
        check_fork_locks();
    if (SECTION("timeouts"))
        check_timeouts();

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "fd_check: could not remove %s\n", tmpdir);
    printf("PASS: %d failed\n", failures);
    return failures ? 1 : 0;
}
