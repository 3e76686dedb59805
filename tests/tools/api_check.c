/* api_check: POSIX socket semantics that real programs do not exercise,
 * checked through the shim. Run it under the library (build/tcpsm) in the
 * stack namespace against build/tools/api_peer on the kernel peer:
 *     api_check PEER_IP BASE
 * (api_peer's ports: BASE echo, BASE+1 reset, BASE+2 hello+EOF, BASE+3 idle;
 * BASE+9 must have no listener). One PASS/FAIL line per check; the exit
 * status is 1 if any check failed. Nothing depends on timing except upper
 * bounds that only turn a hang into a FAIL. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
static volatile sig_atomic_t got_sig;
static void on_sig(int sig)
{
    got_sig = sig;
}
static struct in_addr peer_ip;
static int base;

#define CHECK(name, cond, ...)                                                                     \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("PASS %s\n", name);                                                             \
        } else {                                                                                   \
            printf("FAIL %s: ", name);                                                             \
            printf(__VA_ARGS__);                                                                   \
            printf(" (errno %d %s)\n", errno, strerror(errno));                                    \
            failures++;                                                                            \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

static struct sockaddr_in peer(int port_off)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(base + port_off)),
                             .sin_addr = peer_ip };
    return a;
}

/* A blocking connection to the peer's port BASE+off (exits on failure: the
 * checks after it would all fail for the same reason). The test script
 * bounds the whole run with timeout(1). */
static int conn(int off)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = peer(off);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        printf("FAIL connect to port %d: %s\n", base + off, strerror(errno));
        exit(1);
    }
    return s;
}

static bool send_all(int s, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(s, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static bool recv_all(int s, void *buf, size_t n)
{
    return recv(s, buf, n, MSG_WAITALL) == (ssize_t)n;
}

static short poll1(int fd, short ev, int ms)
{
    struct pollfd p = { .fd = fd, .events = ev };
    int r = poll(&p, 1, ms);
    return r == 1 ? p.revents : (short)(r == 0 ? 0 : -1);
}


/* Is NAME in the kernel's tcp_available_congestion_control (space-separated)? */
static bool cc_available(const char *name)
{
    char buf[512] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
    if (!f)
        return !strcmp(name, "reno") || !strcmp(name, "cubic");
    bool ok = false;
    if (fgets(buf, sizeof(buf), f))
        for (char *save, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
            ok |= !strcmp(t, name);
    fclose(f);
    return ok;
}
static void check_nonblocking_connect(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = peer(0);
    int r = connect(s, (struct sockaddr *)&a, sizeof(a));
    CHECK("nonblocking connect returns EINPROGRESS", r == -1 && errno == EINPROGRESS, "r=%d", r);
    short rev = poll1(s, POLLOUT, 5000);
    CHECK("nonblocking connect: POLLOUT when established", rev == POLLOUT, "revents=%#x", rev);
    int err = -1;
    socklen_t len = sizeof(err);
    r = getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    CHECK("nonblocking connect: SO_ERROR 0", r == 0 && err == 0 && len == sizeof(int), "err=%d", err);
    /* Linux reports the completion once more (0), then EISCONN. */
    r = connect(s, (struct sockaddr *)&a, sizeof(a));
    CHECK("connect again after completion: 0 once", r == 0, "r=%d errno=%d", r, errno);
    r = connect(s, (struct sockaddr *)&a, sizeof(a));
    CHECK("connect again: EISCONN", r == -1 && errno == EISCONN, "r=%d", r);

    struct sockaddr_in me, them;
    socklen_t ml = sizeof(me), tl = sizeof(them);
    getsockname(s, (struct sockaddr *)&me, &ml);
    getpeername(s, (struct sockaddr *)&them, &tl);
    CHECK("getsockname: AF_INET, an address and a port", ml == sizeof(me) && me.sin_family == AF_INET &&
          me.sin_addr.s_addr != 0 && me.sin_port != 0, "len=%u", ml);
    CHECK("getpeername: the peer's address and port", tl == sizeof(them) &&
          them.sin_addr.s_addr == peer_ip.s_addr && them.sin_port == a.sin_port, "len=%u", tl);
    char small[4] = { 0 };
    socklen_t sl = sizeof(small);
    r = getsockname(s, (struct sockaddr *)small, &sl);
    CHECK("getsockname truncates and returns the full length", r == 0 && sl == sizeof(struct sockaddr_in) &&
          memcmp(small, &me, 4) == 0, "len=%u", sl);

    struct tcp_info ti;
    socklen_t til = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    r = getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &til);
    CHECK("TCP_INFO: ESTABLISHED, an MSS", r == 0 && ti.tcpi_state == TCP_ESTABLISHED && ti.tcpi_snd_mss > 0,
          "state=%u mss=%u", ti.tcpi_state, ti.tcpi_snd_mss);
    /* The kernel's full struct tcp_info (programs built against
     * <linux/tcp.h> ask for all of it): Linux 6.7+ is 248 bytes, ending
     * with tcpi_snd_wnd at 228 and tcpi_rcv_wnd at 232. */
    unsigned char full[512];
    socklen_t fl = sizeof(full);
    memset(full, 0xee, sizeof(full));
    r = getsockopt(s, IPPROTO_TCP, TCP_INFO, full, &fl);
    uint32_t snd_wnd = 0, rcv_wnd = 0;
    memcpy(&snd_wnd, full + 228, 4);
    memcpy(&rcv_wnd, full + 232, 4);
    CHECK("TCP_INFO full size: >= 248 bytes, snd_wnd and rcv_wnd set",
          r == 0 && fl >= 248 && fl <= sizeof(full) && full[0] == TCP_ESTABLISHED && snd_wnd > 0 &&
          snd_wnd != 0xeeeeeeeeu && rcv_wnd > 0 && rcv_wnd != 0xeeeeeeeeu,
          "r=%d len=%u snd_wnd=%u rcv_wnd=%u", r, fl, snd_wnd, rcv_wnd);
    char cc[16] = "";
    socklen_t ccl = sizeof(cc);
    r = getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &ccl);
    /* the stack's default is cubic; the kernel's is its sysctl (cubic, bbr, ...): either way a
     * name the kernel lists as available */
    CHECK("TCP_CONGESTION: a default", r == 0 && cc[0] && cc_available(cc), "r=%d cc=%s", r, cc);
    r = setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5);
    ccl = sizeof(cc);
    memset(cc, 0, sizeof(cc));
    int r2 = getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &ccl);
    CHECK("TCP_CONGESTION: cubic set and read back", r == 0 && r2 == 0 && strcmp(cc, "cubic") == 0,
          "r=%d r2=%d cc=%s", r, r2, cc);
    r = setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
    ccl = sizeof(cc);
    memset(cc, 0, sizeof(cc));
    r2 = getsockopt(s, IPPROTO_TCP, TCP_CONGESTION, cc, &ccl);
    CHECK("TCP_CONGESTION: reno set and read back", r == 0 && r2 == 0 && strcmp(cc, "reno") == 0,
          "r=%d r2=%d cc=%s", r, r2, cc);
    r = setsockopt(s, IPPROTO_TCP, TCP_CONGESTION, "nosuchcc", 8);
    CHECK("TCP_CONGESTION: an unknown name ENOENT", r == -1 && errno == ENOENT, "r=%d", r);
    int mss = 0;
    len = sizeof(mss);
    r = getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, &len);
    CHECK("TCP_MAXSEG once connected", r == 0 && mss > 0 && mss < 65536, "mss=%d", mss);
    close(s);
}

static void check_refused(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = peer(9);
    int r = connect(s, (struct sockaddr *)&a, sizeof(a));
    CHECK("blocking connect to a closed port: ECONNREFUSED", r == -1 && errno == ECONNREFUSED, "r=%d", r);
    close(s);

    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    r = connect(s, (struct sockaddr *)&a, sizeof(a));
    short rev = poll1(s, POLLOUT, 5000);
    CHECK("nonblocking refused connect: POLLERR|POLLHUP", r == -1 && errno == EINPROGRESS &&
          (rev & POLLERR) && (rev & POLLHUP), "revents=%#x", rev);
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    CHECK("nonblocking refused connect: SO_ERROR ECONNREFUSED", err == ECONNREFUSED, "err=%d", err);
    err = -1;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    CHECK("SO_ERROR is cleared by reading it", err == 0, "err=%d", err);
    close(s);
}

static void check_mixed_poll(void)
{
    int s = conn(0);
    int pfd[2];
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t ul = sizeof(ua);
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    if (pipe(pfd) < 0 || u < 0 || t < 0 || bind(u, (struct sockaddr *)&ua, sizeof(ua)) < 0 ||
        getsockname(u, (struct sockaddr *)&ua, &ul) < 0) {
        CHECK("mixed poll setup", 0, "pipe/udp/timerfd");
        return;
    }
    /* Nothing ready for reading yet: a bounded wait returns 0. */
    struct pollfd p[4] = { { pfd[0], POLLIN, 0 }, { u, POLLIN, 0 }, { t, POLLIN, 0 }, { s, POLLIN, 0 } };
    int r = poll(p, 4, 50);
    CHECK("mixed poll: nothing ready -> 0", r == 0, "r=%d", r);

    /* The stack socket becomes readable while poll sleeps: it must wake. */
    send_all(s, "ping", 4);
    p[3].revents = 0;
    r = poll(p, 4, 10000);
    CHECK("mixed poll: woken by stack data, exactly POLLIN", r == 1 && p[3].revents == POLLIN &&
          !p[0].revents && !p[1].revents && !p[2].revents, "r=%d revents=%#x", r, p[3].revents);

    /* Every member ready: exact revents per kind. */
    if (write(pfd[1], "x", 1) != 1 ||
        sendto(u, "y", 1, 0, (struct sockaddr *)&ua, sizeof(ua)) != 1) {
        CHECK("mixed poll: make ready", 0, "write");
        return;
    }
    struct itimerspec its = { .it_value = { 0, 1000000 } };
    timerfd_settime(t, 0, &its, NULL);
    poll1(t, POLLIN, 5000);     /* expired before the mixed poll looks */
    struct pollfd q[4] = { { pfd[0], POLLIN, 0 }, { u, POLLIN | POLLOUT, 0 }, { t, POLLIN, 0 },
                           { s, POLLIN | POLLOUT, 0 } };
    r = poll(q, 4, 5000);
    CHECK("mixed poll: pipe POLLIN", q[0].revents == POLLIN, "%#x", q[0].revents);
    CHECK("mixed poll: udp POLLIN|POLLOUT", q[1].revents == (POLLIN | POLLOUT), "%#x", q[1].revents);
    CHECK("mixed poll: timerfd POLLIN", q[2].revents == POLLIN, "%#x", q[2].revents);
    CHECK("mixed poll: stack POLLIN|POLLOUT", q[3].revents == (POLLIN | POLLOUT), "%#x", q[3].revents);
    CHECK("mixed poll: count 4", r == 4, "r=%d", r);

    /* select over the same set. */
    fd_set rd, wr;
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    int fds[4] = { pfd[0], u, t, s };
    int maxfd = 0;
    for (int i = 0; i < 4; i++) {
        FD_SET(fds[i], &rd);
        if (fds[i] > maxfd)
            maxfd = fds[i];
    }
    FD_SET(s, &wr);
    struct timeval tv = { 5, 0 };
    r = select(maxfd + 1, &rd, &wr, NULL, &tv);
    CHECK("select over the mixed set", r == 5 && FD_ISSET(pfd[0], &rd) && FD_ISSET(u, &rd) &&
          FD_ISSET(t, &rd) && FD_ISSET(s, &rd) && FD_ISSET(s, &wr), "r=%d", r);

    /* epoll over the same set (level-triggered). */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < 4; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fds[i] };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    struct epoll_event evs[8];
    r = epoll_wait(ep, evs, 8, 5000);
    int seen = 0;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < 4; j++)
            if (evs[i].data.fd == fds[j] && evs[i].events == EPOLLIN)
                seen |= 1 << j;
    CHECK("epoll over the mixed set: 4 x EPOLLIN", r == 4 && seen == 15, "r=%d seen=%#x", r, seen);
    struct epoll_event ev = { .events = EPOLLIN };
    CHECK("epoll_ctl ADD twice: EEXIST", epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) == -1 && errno == EEXIST, "-");
    CHECK("epoll_ctl DEL", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == 0, "-");
    CHECK("epoll_ctl DEL again: ENOENT", epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL) == -1 && errno == ENOENT, "-");
    CHECK("epoll_ctl MOD absent: ENOENT", epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev) == -1 && errno == ENOENT, "-");
    CHECK("epoll_ctl on a non-epoll fd: EINVAL",
          epoll_ctl(pfd[0], EPOLL_CTL_ADD, s, &ev) == -1 && errno == EINVAL, "-");
    close(ep);
    close(pfd[0]);
    close(pfd[1]);
    close(u);
    close(t);
    close(s);
}

static void check_eof_and_reset(void)
{
    int s = conn(2);
    char buf[16];
    CHECK("EOF peer: data first", recv_all(s, buf, 5) && memcmp(buf, "hello", 5) == 0, "-");
    short rev = poll1(s, POLLIN | POLLRDHUP, 5000);
    CHECK("EOF: POLLIN|POLLRDHUP", rev == (POLLIN | POLLRDHUP), "revents=%#x", rev);
    CHECK("EOF: recv 0", recv(s, buf, sizeof(buf), 0) == 0, "-");
    int state = 0;
    struct tcp_info ti;
    socklen_t til = sizeof(ti);
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &til) == 0)
        state = ti.tcpi_state;
    CHECK("TCP_INFO after the peer's FIN: CLOSE_WAIT", state == TCP_CLOSE_WAIT, "state=%d", state);
    close(s);

    s = conn(1);
    send_all(s, "x", 1);
    rev = poll1(s, POLLIN, 5000);
    CHECK("RST: POLLERR and POLLHUP", (rev & POLLERR) && (rev & POLLHUP), "revents=%#x", rev);
    ssize_t r = recv(s, buf, sizeof(buf), 0);
    CHECK("RST: recv ECONNRESET", r == -1 && errno == ECONNRESET, "r=%zd", r);
    r = send(s, "z", 1, MSG_NOSIGNAL);
    CHECK("RST: then send EPIPE", r == -1 && errno == EPIPE, "r=%zd", r);
    close(s);
}

static void check_sigpipe_and_eintr(void)
{
    int s = conn(3);
    shutdown(s, SHUT_WR);
    got_sig = 0;
    ssize_t r = send(s, "a", 1, 0);
    CHECK("send after SHUT_WR: EPIPE and SIGPIPE", r == -1 && errno == EPIPE && got_sig == SIGPIPE,
          "r=%zd sig=%d", r, (int)got_sig);
    got_sig = 0;
    r = send(s, "a", 1, MSG_NOSIGNAL);
    CHECK("MSG_NOSIGNAL: EPIPE without SIGPIPE", r == -1 && errno == EPIPE && got_sig == 0, "sig=%d",
          (int)got_sig);
    close(s);

    s = conn(3);
    struct itimerval it = { .it_value = { 0, 100000 } };
    got_sig = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    char c;
    r = recv(s, &c, 1, 0);
    CHECK("SIGALRM during a blocking recv: EINTR", r == -1 && errno == EINTR && got_sig == SIGALRM,
          "r=%zd", r);

    struct timeval tv = { 0, 200000 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct timeval back = { 0, 0 };
    socklen_t bl = sizeof(back);
    getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &back, &bl);
    CHECK("SO_RCVTIMEO reads back", back.tv_sec == 0 && back.tv_usec == 200000, "%ld.%06ld",
          (long)back.tv_sec, (long)back.tv_usec);
    r = recv(s, &c, 1, 0);
    CHECK("SO_RCVTIMEO: EAGAIN", r == -1 && errno == EAGAIN, "r=%zd", r);
    close(s);
}

static void check_fd_calls(void)
{
    int s = conn(0);
    int d = dup(s);
    char buf[64];
    CHECK("dup: send on the copy, receive on the original",
          d >= 0 && send_all(d, "dup!", 4) && recv_all(s, buf, 4) && memcmp(buf, "dup!", 4) == 0, "-");
    close(s);
    CHECK("dup: the copy works after closing the original",
          send_all(d, "two", 3) && recv_all(d, buf, 3) && memcmp(buf, "two", 3) == 0, "-");
    int pfd[2];
    if (pipe(pfd) < 0)
        return;
    int r = dup2(d, pfd[0]);
    CHECK("dup2 over a pipe fd: it becomes the socket",
          r == pfd[0] && send_all(pfd[0], "p", 1) && recv_all(d, buf, 1) && buf[0] == 'p', "r=%d", r);
    close(pfd[0]);
    close(pfd[1]);
    int c = fcntl(d, F_DUPFD_CLOEXEC, 100);
    CHECK("F_DUPFD_CLOEXEC: >= 100, FD_CLOEXEC, works",
          c >= 100 && (fcntl(c, F_GETFD) & FD_CLOEXEC) && send_all(c, "c", 1) && recv_all(c, buf, 1), "c=%d", c);
    close(c);

    int fl = fcntl(d, F_GETFL);
    CHECK("F_GETFL: O_RDWR, blocking", fl >= 0 && (fl & O_ACCMODE) == O_RDWR && !(fl & O_NONBLOCK), "fl=%#x", fl);
    fcntl(d, F_SETFL, fl | O_NONBLOCK);
    ssize_t n = recv(d, buf, sizeof(buf), 0);
    CHECK("O_NONBLOCK via F_SETFL: EAGAIN", n == -1 && errno == EAGAIN && (fcntl(d, F_GETFL) & O_NONBLOCK),
          "n=%zd", n);
    int off = 0;
    ioctl(d, FIONBIO, &off);
    struct itimerval it = { .it_value = { 0, 100000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    n = recv(d, buf, sizeof(buf), 0);
    CHECK("FIONBIO 0: blocking again (woken by a signal)", n == -1 && errno == EINTR, "n=%zd", n);
    n = recv(d, buf, sizeof(buf), MSG_DONTWAIT);
    CHECK("MSG_DONTWAIT: EAGAIN", n == -1 && errno == EAGAIN, "n=%zd", n);

    send_all(d, "abcdef", 6);
    short rev = poll1(d, POLLIN, 5000);
    int avail = -1;
    for (int i = 0; i < 100 && avail < 6; i++) {
        ioctl(d, FIONREAD, &avail);
        if (avail < 6)
            poll(NULL, 0, 10);
    }
    CHECK("FIONREAD", rev == POLLIN && avail == 6, "avail=%d", avail);
    n = recv(d, buf, 3, MSG_PEEK);
    CHECK("MSG_PEEK", n == 3 && memcmp(buf, "abc", 3) == 0, "n=%zd", n);
    n = recv(d, buf, 6, MSG_WAITALL);
    CHECK("MSG_WAITALL after a peek", n == 6 && memcmp(buf, "abcdef", 6) == 0, "n=%zd", n);

    struct iovec iov[2] = { { "wri", 3 }, { "tev", 3 } };
    CHECK("writev", writev(d, iov, 2) == 6, "-");
    char a[2], b[4];
    struct iovec rv[2] = { { a, 2 }, { b, 4 } };
    n = 0;
    while (n < 6) {
        ssize_t k = readv(d, rv, 2);
        if (k <= 0)
            break;
        n += k;
        if (n < 6) {            /* keep the test simple: the rest goes into b */
            rv[0].iov_len = 0;
            rv[1].iov_base = b + (n - 2);
            rv[1].iov_len = (size_t)(6 - n);
        }
    }
    CHECK("readv", n == 6 && memcmp(a, "wr", 2) == 0 && memcmp(b, "itev", 4) == 0, "n=%zd", n);

    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    CHECK("sendmsg", sendmsg(d, &mh, MSG_NOSIGNAL) == 6, "-");
    char m[6];
    struct iovec mi = { m, 6 };
    struct msghdr rh = { .msg_iov = &mi, .msg_iovlen = 1 };
    CHECK("recvmsg (MSG_WAITALL)", recvmsg(d, &rh, MSG_WAITALL) == 6 && memcmp(m, "writev", 6) == 0, "-");

    struct iovec m1 = { "ab", 2 }, m2 = { "cd", 2 };
    struct mmsghdr mm[2] = { { .msg_hdr = { .msg_iov = &m1, .msg_iovlen = 1 } },
                             { .msg_hdr = { .msg_iov = &m2, .msg_iovlen = 1 } } };
    int km = sendmmsg(d, mm, 2, MSG_NOSIGNAL);
    CHECK("sendmmsg: two entries", km == 2 && mm[0].msg_len == 2 && mm[1].msg_len == 2 &&
          recv_all(d, buf, 4) && memcmp(buf, "abcd", 4) == 0, "k=%d", km);
    send_all(d, "xy", 2);
    avail = 0;
    for (int i = 0; i < 500 && avail < 2; i++) {
        ioctl(d, FIONREAD, &avail);
        if (avail < 2)
            poll(NULL, 0, 10);
    }
    char r2[2];
    struct iovec ri = { r2, 2 };
    struct mmsghdr rm = { .msg_hdr = { .msg_iov = &ri, .msg_iovlen = 1 } };
    km = recvmmsg(d, &rm, 1, 0, NULL);
    CHECK("recvmmsg: one entry", km == 1 && rm.msg_len == 2 && memcmp(r2, "xy", 2) == 0, "k=%d", km);
    if (getenv("TCPSM_IF")) {   /* the kernel's sockets splice, the stack's cannot */
        int sp[2];
        if (pipe(sp) == 0) {
            ssize_t z = splice(d, NULL, sp[1], NULL, 10, SPLICE_F_NONBLOCK);
            CHECK("splice from a stack socket: EINVAL", z == -1 && errno == EINVAL, "z=%zd", z);
            close(sp[0]);
            close(sp[1]);
        }
    }

    /* sendfile: *offset advances, the file position does not. */
    char path[] = "/tmp/api_check.XXXXXX";
    int f = mkstemp(path);
    static char data[100000], back[100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7 + 3);
    if (f >= 0 && write(f, data, sizeof(data)) == (ssize_t)sizeof(data)) {
        lseek(f, 0, SEEK_SET);
        off_t o = 0;
        ssize_t total = 0;
        while (total < (ssize_t)sizeof(data)) {
            ssize_t k = sendfile(d, f, &o, sizeof(data) - (size_t)total);
            if (k <= 0)
                break;
            total += k;
        }
        bool ok = total == (ssize_t)sizeof(data) && o == (off_t)sizeof(data) &&
                  lseek(f, 0, SEEK_CUR) == 0 && recv_all(d, back, sizeof(back)) &&
                  memcmp(back, data, sizeof(data)) == 0;
        CHECK("sendfile with an offset: data, *offset, file position", ok, "total=%zd", total);
        lseek(f, 10, SEEK_SET);
        ssize_t k1 = sendfile(d, f, NULL, 1000);
        ok = k1 == 1000 && lseek(f, 0, SEEK_CUR) == 1010 && recv_all(d, back, 1000) &&
             memcmp(back, data + 10, 1000) == 0;
        CHECK("sendfile without an offset: data, the file position moves", ok, "k=%zd", k1);
        int sp[2];
        if (pipe(sp) == 0) {
            k1 = sendfile(d, sp[0], NULL, 10);
            CHECK("sendfile from a pipe: an error, nothing sent", k1 == -1, "k=%zd", k1);
            close(sp[0]);
            close(sp[1]);
        }
    }
    if (f >= 0) {
        close(f);
        unlink(path);
    }
    close(d);
}

static void check_oneshot_and_et(void)
{
    int s = conn(0);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 42 }, out[4];
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    send_all(s, "1", 1);
    int r = epoll_wait(ep, out, 4, 5000);
    CHECK("EPOLLONESHOT: first event", r == 1 && out[0].data.u64 == 42 && out[0].events == EPOLLIN, "r=%d", r);
    r = epoll_wait(ep, out, 4, 100);
    CHECK("EPOLLONESHOT: disarmed", r == 0, "r=%d", r);
    epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev);
    r = epoll_wait(ep, out, 4, 5000);
    CHECK("EPOLLONESHOT: re-armed by MOD", r == 1 && out[0].events == EPOLLIN, "r=%d", r);
    char buf[8];
    recv(s, buf, sizeof(buf), 0);

    ev.events = EPOLLIN | EPOLLET;
    epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev);
    r = epoll_wait(ep, out, 4, 100);
    CHECK("EPOLLET: nothing to read, no event", r == 0, "r=%d", r);
    send_all(s, "2", 1);
    r = epoll_wait(ep, out, 4, 5000);
    CHECK("EPOLLET: new data, one event", r == 1 && out[0].events == EPOLLIN, "r=%d", r);
    r = epoll_wait(ep, out, 4, 100);
    CHECK("EPOLLET: not drained, but no new edge", r == 0, "r=%d", r);
    send_all(s, "3", 1);
    r = epoll_wait(ep, out, 4, 5000);
    CHECK("EPOLLET: more data, another event", r == 1, "r=%d", r);
    close(ep);
    close(s);
}

static void check_bad_args(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    CHECK("bind with a short addrlen: EINVAL", bind(s, (struct sockaddr *)&a, 4) == -1 && errno == EINVAL, "-");
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
    CHECK("connect with AF_INET6 on an AF_INET socket: EAFNOSUPPORT",
          connect(s, (struct sockaddr *)&a6, sizeof(a6)) == -1 && errno == EAFNOSUPPORT, "-");
    char c;
    CHECK("recv on a closed fd: EBADF", recv(987, &c, 1, 0) == -1 && errno == EBADF, "-");
    int pfd[2];
    if (pipe(pfd) == 0) {
        CHECK("recv on a pipe: ENOTSOCK", recv(pfd[0], &c, 1, 0) == -1 && errno == ENOTSOCK, "-");
        close(pfd[0]);
        close(pfd[1]);
    }
    int v = 0;
    socklen_t l = sizeof(v);
    int type = 0;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &l);
    CHECK("SO_TYPE", type == SOCK_STREAM, "type=%d", type);
    close(s);

    s = conn(3);
    l = sizeof(v);
    CHECK("accept on a connected socket: EINVAL", accept(s, NULL, NULL) == -1 && errno == EINVAL, "-");
    CHECK("unknown getsockopt: ENOPROTOOPT",
          getsockopt(s, SOL_SOCKET, 9999, &v, &l) == -1 && errno == ENOPROTOOPT, "-");
    v = 65536;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    l = sizeof(v);
    v = 0;
    getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &l);
    CHECK("SO_RCVBUF reads back doubled", v == 131072, "v=%d", v);
    v = 1;
    CHECK("TCP_NODELAY set", setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)) == 0, "-");
    v = 0;
    l = sizeof(v);
    getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &l);
    CHECK("TCP_NODELAY reads back", v == 1, "v=%d", v);
    v = 1;
    CHECK("SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT",
          setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)) == 0 &&
          setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &(int){ 30 }, sizeof(int)) == 0 &&
          setsockopt(s, IPPROTO_TCP, TCP_KEEPINTVL, &(int){ 5 }, sizeof(int)) == 0 &&
          setsockopt(s, IPPROTO_TCP, TCP_KEEPCNT, &(int){ 3 }, sizeof(int)) == 0, "-");
    CHECK("TCP_KEEPIDLE 0: EINVAL",
          setsockopt(s, IPPROTO_TCP, TCP_KEEPIDLE, &(int){ 0 }, sizeof(int)) == -1 && errno == EINVAL, "-");
    CHECK("setsockopt with a short optlen: EINVAL",
          setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, 1) == -1 && errno == EINVAL, "-");
    close(s);
}

/* A loopback listener and client in this process: both the kernel's. */
static void check_loopback(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0) {
        CHECK("loopback listener", 0, "bind/listen");
        return;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof(a));
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    char buf[4];
    CHECK("loopback: connect, accept4, data (kernel)",
          r == 0 && s >= 0 && send_all(c, "lo!", 3) && recv_all(s, buf, 3) && memcmp(buf, "lo!", 3) == 0 &&
          (fcntl(s, F_GETFD) & FD_CLOEXEC), "r=%d s=%d", r, s);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    getsockname(c, (struct sockaddr *)&me, &ml);
    CHECK("loopback: the client's address is 127.0.0.1", me.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "-");
    close(s);
    close(c);
    close(l);
}

/* SA_RESTART: a blocking recv interrupted by such a handler goes on and
 * returns the data that comes after the signal (a helper thread sends it
 * once the handler has run). */
static int restart_sock;
static void *restart_sender(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);     /* the signal is for the main thread */
    for (int i = 0; i < 500 && !got_sig; i++)
        poll(NULL, 0, 10);
    send_all(restart_sock, "R", 1);
    return NULL;
}

static void check_sa_restart(void)
{
    struct sigaction sa = { .sa_handler = on_sig, .sa_flags = SA_RESTART }, old_alrm, old_pipe;
    sigaction(SIGALRM, &sa, &old_alrm);
    sigaction(SIGPIPE, &sa, &old_pipe);
    restart_sock = conn(0);
    got_sig = 0;
    pthread_t th;
    pthread_create(&th, NULL, restart_sender, NULL);
    struct itimerval it = { .it_value = { 0, 100000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    char c = 0;
    ssize_t r = recv(restart_sock, &c, 1, 0);
    CHECK("SA_RESTART handler during a blocking recv: restarted, then the data",
          r == 1 && c == 'R' && got_sig == SIGALRM, "r=%zd sig=%d", r, (int)got_sig);
    pthread_join(th, NULL);
    close(restart_sock);
    sigaction(SIGALRM, &old_alrm, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
}

/* A listener on INADDR_ANY: loopback clients reach it as well (the shim
 * listens on the placeholder in the kernel too); poll, epoll and accept4
 * see them. */
static void check_any_listener(void)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof(a);
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &al) < 0) {
        CHECK("INADDR_ANY listener", 0, "bind/listen");
        return;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 }, out[2];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    int n = accept(l, NULL, NULL);
    CHECK("INADDR_ANY listener: accept with nothing queued: EAGAIN", n == -1 && errno == EAGAIN, "n=%d", n);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    int r = connect(c, (struct sockaddr *)&a, sizeof(a));
    CHECK("INADDR_ANY listener: a loopback client connects", r == 0, "r=%d", r);
    r = epoll_wait(ep, out, 2, 5000);
    CHECK("INADDR_ANY listener: epoll reports it", r >= 1 && out[0].data.u64 == 7 && (out[0].events & EPOLLIN),
          "r=%d", r);
    short rev = poll1(l, POLLIN, 5000);
    CHECK("INADDR_ANY listener: poll reports it", rev == POLLIN, "revents=%#x", rev);
    int s = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    char buf[4];
    CHECK("INADDR_ANY listener: accept4 and data", s >= 0 && send_all(c, "any", 3) &&
          poll1(s, POLLIN, 5000) == POLLIN && recv(s, buf, 3, 0) == 3 && memcmp(buf, "any", 3) == 0 &&
          (fcntl(s, F_GETFL) & O_NONBLOCK), "s=%d", s);
    n = accept(l, NULL, NULL);
    CHECK("INADDR_ANY listener: queue empty again: EAGAIN", n == -1 && errno == EAGAIN, "n=%d", n);
    close(s);
    close(c);
    close(ep);
    close(l);
}

/* fork: the child shares the connection (one open file description, as on
 * Linux): it uses it, then closes its copy; the parent's goes on. */
static void check_fork(void)
{
    int s = conn(0);
    pid_t pid = fork();
    if (pid == 0) {
        char cb[5];
        int ok = send_all(s, "child", 5) && recv_all(s, cb, 5) && memcmp(cb, "child", 5) == 0;
        ok &= close(s) == 0;
        _exit(ok ? 0 : 1);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK("fork: the child echoes through the inherited connection, then closes its copy",
          WIFEXITED(st) && WEXITSTATUS(st) == 0, "status=%#x", st);
    char buf[8];
    CHECK("fork: the parent's connection still works after the child closed it",
          send_all(s, "parent", 6) && recv_all(s, buf, 6) && memcmp(buf, "parent", 6) == 0, "-");
    close(s);
}

/* Threads: each opens, uses and closes its own connections while the
 * others do the same (fd numbers are reused across threads all the time);
 * one of them waits in epoll, one in poll, the rest block in recv. */
#define MT_THREADS 4
#define MT_CONNS 40
static void *mt_worker(void *arg)
{
    long id = (long)arg;
    long ok = 0;
    char out[1000], in[1000];
    for (int i = 0; i < MT_CONNS; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = peer(0);
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
            close(s);
            continue;
        }
        memset(out, (int)('a' + (id * MT_CONNS + i) % 26), sizeof(out));
        bool good = send_all(s, out, sizeof(out));
        if (good && id == 0) {
            int ep = epoll_create1(0);
            struct epoll_event ev = { .events = EPOLLIN, .data.fd = s }, o;
            epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
            good = epoll_wait(ep, &o, 1, 10000) == 1 && o.data.fd == s;
            close(ep);
        } else if (good && id == 1) {
            good = poll1(s, POLLIN, 10000) & POLLIN;
        }
        good = good && recv_all(s, in, sizeof(in)) && memcmp(in, out, sizeof(in)) == 0;
        ok += good;
        close(s);
    }
    return (void *)ok;
}

static void check_threads(void)
{
    pthread_t th[MT_THREADS];
    for (long i = 0; i < MT_THREADS; i++)
        pthread_create(&th[i], NULL, mt_worker, (void *)i);
    long total = 0;
    for (int i = 0; i < MT_THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (long)r;
    }
    CHECK("threads: 4 x 40 connections echo concurrently", total == MT_THREADS * MT_CONNS, "%ld ok",
          total);
}

/* Another thread closes the epoll fd and the socket this round's waiters are in (epoll_wait;
 * recv with SO_RCVTIMEO, which a close does not wake, as on Linux): the waits end, nothing is
 * freed under them (the sanitizer build turns a use-after-free into a failure), and a new
 * connection, likely on the same fd numbers, works. */
static void *close_race_epoll(void *a)
{
    struct epoll_event ev[4];
    for (int i = 0; i < 3; i++)
        epoll_wait((int)(long)a, ev, 4, 20);
    return NULL;
}

static void *close_race_recv(void *a)
{
    char b[8];
    recv((int)(long)a, b, sizeof(b), 0);
    return NULL;
}

static void check_close_while_waiting(void)
{
    int ok = 0;
    for (int i = 0; i < 40; i++) {
        int s = conn(0);
        struct timeval tv = { .tv_usec = 50000 };
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = s };
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
        pthread_t a, b;
        pthread_create(&a, NULL, close_race_epoll, (void *)(long)ep);
        pthread_create(&b, NULL, close_race_recv, (void *)(long)s);
        usleep((useconds_t)(i * 150));      /* vary where the closes land */
        close(ep);
        close(s);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        int t = conn(0);
        char buf[4];
        if (send_all(t, "abc", 3) && recv_all(t, buf, 3) && memcmp(buf, "abc", 3) == 0)
            ok++;
        close(t);
    }
    CHECK("close of an epoll fd and a socket while other threads wait in them (40 rounds)",
          ok == 40, "%d of 40 ok", ok);
}

/* closefrom(3), as daemons do: every fd of ours goes, the runtime's stay,
 * so the stack keeps working. */
static int sockopt_int(int fd, int level, int name)
{
    int v = -1;
    socklen_t l = sizeof(v);
    return getsockopt(fd, level, name, &v, &l) == 0 ? v : -100 - errno;
}

static bool unbound(int fd)
{
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    memset(&a, 0xff, sizeof(a));
    return getsockname(fd, (struct sockaddr *)&a, &l) == 0 && a.sin_family == AF_INET &&
           a.sin_port == 0 && a.sin_addr.s_addr == 0;
}

/* Unconnected sockets: under the library they share one kernel socket until
 * a call needs one of their own (shim/placeholder.c); each must still behave
 * as a socket of its own, and what one does must not show on another. */
static void check_unconnected(void)
{
    int probe = open("/dev/null", O_RDONLY);
    close(probe);
    int a = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK("unconnected: socket() takes the lowest free number", a == probe, "a=%d lowest=%d", a, probe);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    int ref = socket(AF_INET, SOCK_STREAM, 0);
    short ref_ev = poll1(ref, POLLIN | POLLOUT | POLLRDHUP | POLLPRI, 0);
    struct stat st;
    CHECK("unconnected: fstat is a socket", fstat(a, &st) == 0 && S_ISSOCK(st.st_mode), "fstat");
    CHECK("unconnected: SO_TYPE, SO_DOMAIN, SO_PROTOCOL, SO_ERROR, SO_ACCEPTCONN",
          sockopt_int(a, SOL_SOCKET, SO_TYPE) == SOCK_STREAM &&
              sockopt_int(a, SOL_SOCKET, SO_DOMAIN) == AF_INET &&
              sockopt_int(a, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP &&
              sockopt_int(a, SOL_SOCKET, SO_ERROR) == 0 && sockopt_int(a, SOL_SOCKET, SO_ACCEPTCONN) == 0,
          "type %d domain %d", sockopt_int(a, SOL_SOCKET, SO_TYPE), sockopt_int(a, SOL_SOCKET, SO_DOMAIN));
    CHECK("unconnected: getsockname 0.0.0.0:0", unbound(a), "getsockname");
    /* O_NONBLOCK is each socket's own */
    CHECK("unconnected: SOCK_NONBLOCK on one only", (fcntl(a, F_GETFL) & O_NONBLOCK) &&
          !(fcntl(b, F_GETFL) & O_NONBLOCK), "a %#x b %#x", fcntl(a, F_GETFL), fcntl(b, F_GETFL));
    int r1 = fcntl(b, F_SETFL, O_NONBLOCK), r2 = fcntl(a, F_SETFL, 0);
    CHECK("unconnected: F_SETFL on each, no crosstalk", r1 == 0 && r2 == 0 &&
          (fcntl(b, F_GETFL) & O_NONBLOCK) && !(fcntl(a, F_GETFL) & O_NONBLOCK) &&
          !(fcntl(ref, F_GETFL) & O_NONBLOCK), "a %#x b %#x", fcntl(a, F_GETFL), fcntl(b, F_GETFL));
    int one = 1;
    r1 = ioctl(a, FIONBIO, &one);
    CHECK("unconnected: FIONBIO on one, no crosstalk", r1 == 0 && (fcntl(a, F_GETFL) & O_NONBLOCK) &&
          !(fcntl(ref, F_GETFL) & O_NONBLOCK), "a %#x ref %#x", fcntl(a, F_GETFL), fcntl(ref, F_GETFL));
    r1 = accept(ref, NULL, NULL);
    CHECK("unconnected: accept EINVAL", r1 == -1 && errno == EINVAL, "r=%d", r1);
    r1 = (int)recv(ref, &one, 1, 0);
    CHECK("unconnected: recv ENOTCONN", r1 == -1 && errno == ENOTCONN, "r=%d", r1);
    /* options are each socket's own; a dup shares them */
    r1 = setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    CHECK("unconnected: TCP_NODELAY on one only", r1 == 0 && sockopt_int(a, IPPROTO_TCP, TCP_NODELAY) == 1 &&
          sockopt_int(b, IPPROTO_TCP, TCP_NODELAY) == 0 && sockopt_int(ref, IPPROTO_TCP, TCP_NODELAY) == 0,
          "a %d b %d", sockopt_int(a, IPPROTO_TCP, TCP_NODELAY), sockopt_int(b, IPPROTO_TCP, TCP_NODELAY));
    CHECK("unconnected: O_NONBLOCK kept when it got its own socket", (fcntl(a, F_GETFL) & O_NONBLOCK),
          "a %#x", fcntl(a, F_GETFL));
    int d = dup(b);
    r1 = setsockopt(d, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    r2 = fcntl(d, F_SETFL, 0);
    CHECK("unconnected: a dup shares options and O_NONBLOCK", r1 == 0 && r2 == 0 &&
          sockopt_int(b, SOL_SOCKET, SO_KEEPALIVE) == 1 && !(fcntl(b, F_GETFL) & O_NONBLOCK) &&
          sockopt_int(ref, SOL_SOCKET, SO_KEEPALIVE) == 0, "b keepalive %d fl %#x",
          sockopt_int(b, SOL_SOCKET, SO_KEEPALIVE), fcntl(b, F_GETFL));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    r1 = shutdown(c, SHUT_RDWR);
    int f = socket(AF_INET, SOCK_STREAM, 0);
    short ev = poll1(f, POLLIN | POLLOUT | POLLRDHUP | POLLPRI, 0);
    CHECK("unconnected: shutdown ENOTCONN, another socket's poll unchanged",
          r1 == -1 && errno == ENOTCONN && ev == ref_ev, "r=%d revents %#x, before %#x", r1, ev, ref_ev);
    r1 = fcntl(c, F_SETOWN, getpid());
    CHECK("unconnected: F_SETOWN on one only", r1 == 0 && fcntl(c, F_GETOWN) == getpid() &&
          fcntl(f, F_GETOWN) == 0, "c %d f %d", fcntl(c, F_GETOWN), fcntl(f, F_GETOWN));
    /* the kernel's (loopback) listener and client, then a fork sharing one */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t ll = sizeof(lo);
    r1 = bind(l, (struct sockaddr *)&lo, sizeof(lo));
    r2 = listen(l, 8);
    getsockname(l, (struct sockaddr *)&lo, &ll);
    int x = socket(AF_INET, SOCK_STREAM, 0);
    int r3 = connect(x, (struct sockaddr *)&lo, sizeof(lo));
    int y = accept(l, NULL, NULL);
    char m = 'q', got = 0;
    bool echo = y >= 0 && send(x, &m, 1, 0) == 1 && recv(y, &got, 1, 0) == 1 && got == 'q';
    CHECK("unconnected: loopback listener and client (the kernel's)", r1 == 0 && r2 == 0 && r3 == 0 && echo,
          "bind %d listen %d connect %d accept %d", r1, r2, r3, y);
    int z = socket(AF_INET, SOCK_STREAM, 0);
    CHECK("unconnected: a new socket is unbound and not listening", unbound(z) &&
          sockopt_int(z, SOL_SOCKET, SO_ACCEPTCONN) == 0, "getsockname/SO_ACCEPTCONN");
    int u = socket(AF_INET, SOCK_STREAM, 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(connect(u, (struct sockaddr *)&lo, sizeof(lo)) == 0 ? 0 : 1);
    int wst = -1;
    waitpid(pid, &wst, 0);
    int v = accept(l, NULL, NULL);
    struct sockaddr_in pa, ua;
    socklen_t pl = sizeof(pa), ul = sizeof(ua);
    r1 = getpeername(u, (struct sockaddr *)&pa, &pl);
    r2 = getsockname(u, (struct sockaddr *)&ua, &ul);
    CHECK("unconnected: connected in a forked child, connected in the parent too",
          WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && v >= 0 && r1 == 0 && r2 == 0 &&
              pa.sin_port == lo.sin_port && ua.sin_port != 0,
          "child %#x accept %d getpeername %d", wst, v, r1);
    int fds[] = { a, b, ref, d, c, f, l, x, y, z, u, v };
    for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void check_closefrom(void)
{
    int s = conn(0);
    closefrom(3);
    CHECK("closefrom(3) closed our socket", fcntl(s, F_GETFD) == -1 && errno == EBADF, "-");
    int t = conn(0);
    char buf[4];
    CHECK("after closefrom(3): a new connection works",
          send_all(t, "new", 3) && recv_all(t, buf, 3) && memcmp(buf, "new", 3) == 0, "-");
    close(t);
}

/* Left running when main returns: exit() (the library's destructor closes every connection)
 * while these threads are inside send, recv, poll, epoll_wait and close on stack sockets. The
 * process must end cleanly (its exit status; under the sanitizer build, no report): the
 * destructor once freed sockets these calls still used. */
static void *exit_busy_worker(void *a)
{
    long k = (long)a;
    char b[4096] = { 0 };
    for (;;) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in to = peer(0);
        if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) {
            if (s >= 0)
                close(s);
            return NULL;        /* the stack is going down (ENETDOWN): exit has begun */
        }
        int ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = s };
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
        for (int i = 0; i < 20; i++) {
            send(s, b, sizeof(b), MSG_NOSIGNAL);
            if (k & 1) {
                struct epoll_event e[2];
                epoll_wait(ep, e, 2, 5);
            } else {
                poll1(s, POLLIN, 5);
            }
            recv(s, b, sizeof(b), MSG_DONTWAIT);
        }
        close(ep);
        close(s);
    }
    return NULL;
}

static void exit_while_busy(void)
{
    pthread_t th;
    for (long i = 0; i < 4; i++)
        pthread_create(&th, NULL, exit_busy_worker, (void *)i);
    usleep(100000);
}

int main(int argc, char **argv)
{
    if (argc != 3 || inet_pton(AF_INET, argv[1], &peer_ip) != 1) {
        fprintf(stderr, "usage: api_check PEER_IP BASE\n");
        return 2;
    }
    base = atoi(argv[2]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Handlers without SA_RESTART, so that a signal interrupts a blocking call. */
    struct sigaction sa = { .sa_handler = on_sig };
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    check_nonblocking_connect();
    check_refused();
    check_mixed_poll();
    check_eof_and_reset();
    check_fd_calls();
    check_oneshot_and_et();
    check_sigpipe_and_eintr();
    check_sa_restart();
    check_bad_args();
    check_loopback();
    check_any_listener();
    check_fork();
    check_threads();
    check_close_while_waiting();
    check_closefrom();
    check_unconnected();
    printf("%s: %d failed\n", failures ? "FAIL" : "PASS", failures);
    exit_while_busy();
    return failures ? 1 : 0;
}
