/* sigio_check: SIGIO / SIGURG on TCP sockets (F_SETOWN, F_SETOWN_EX,
 * F_SETSIG, O_ASYNC) as a program sees them, as a transcript to compare
 * between the kernel's TCP and the stack (test_sigio.sh runs the same
 * steps on both and diffs the transcripts).
 *
 *   sigio_check async MYADDR PEERADDR PORT   the socket owner: a listener on
 *       MYADDR:PORT+1 and a client of PEERADDR:PORT, both O_ASYNC with an
 *       F_SETSIG real-time signal, step by step; then a client of the closed
 *       PEERADDR:PORT+2 owned by its process group with plain SIGIO
 *   sigio_check peer MYADDR ASYNCADDR PORT   the other side (no signals)
 *
 * Every signal is blocked and taken with sigtimedwait, so nothing depends
 * on where a handler would run. Each step prints the set of what arrived:
 * SIGURG, plain SIGIO, and the F_SETSIG signal's bands (si_band as
 * in/out/pri/err/hup) with whether si_fd named the right socket. Counts are
 * not printed: they follow segmentation (one POLL_IN per segment queued).
 * Exit status 0 when the steps ran (the transcript is what is checked). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int rtsig;

static void fail(const char *what)
{
    fprintf(stderr, "sigio_check: %s: %s\n", what, strerror(errno));
    exit(2);
}

static struct sockaddr_in addr_of(const char *a, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, a, &sa.sin_addr) != 1) {
        fprintf(stderr, "sigio_check: bad address %s\n", a);
        exit(2);
    }
    return sa;
}

/* What arrived since the last step, as a set. fds[0..nfd) name the
 * sockets si_fd may name (printed as letters). first_ms: how long to wait
 * for the first signal; then until 300 ms pass without one. */
static void collect(const char *step, const int *fds, const char *names, int nfd, int first_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    sigaddset(&set, SIGURG);
    sigaddset(&set, rtsig);
    int urg = 0, io = 0;
    unsigned bands = 0;
    char fdseen[16] = "";
    int wait_ms = first_ms;
    for (int i = 0; i < 10000; i++) {
        struct timespec ts = { wait_ms / 1000, (wait_ms % 1000) * 1000000L };
        siginfo_t si;
        int s = sigtimedwait(&set, &si, &ts);
        if (s < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        wait_ms = 300;
        if (s == SIGURG) {
            urg = 1;
        } else if (s == SIGIO) {
            io = 1;
        } else {
            bands |= (unsigned)si.si_band;
            char n = '?';
            for (int k = 0; k < nfd; k++)
                if (si.si_fd == fds[k])
                    n = names[k];
            if (!strchr(fdseen, n) && strlen(fdseen) < sizeof(fdseen) - 1)
                strncat(fdseen, &n, 1);
        }
    }
    printf("%s: sigurg %d sigio %d rt {%s%s%s%s%s} fd {%s}\n", step, urg, io,
           bands & POLLIN ? " in" : "", bands & POLLOUT ? " out" : "",
           bands & POLLPRI ? " pri" : "", bands & POLLERR ? " err" : "",
           bands & POLLHUP ? " hup" : "", fdseen);
    fflush(stdout);
}

static void show_fcntl(const char *what, int fd)
{
    struct f_owner_ex o = { 0 };
    int own = fcntl(fd, F_GETOWN);
    if (fcntl(fd, F_GETOWN_EX, &o) < 0)
        fail("F_GETOWN_EX");
    int sig = fcntl(fd, F_GETSIG);
    int fl = fcntl(fd, F_GETFL);
    const char *who = own == getpid() ? "self" : own == -getpgrp() ? "-pgrp" : own == 0 ? "0" : "other";
    const char *t = o.type == F_OWNER_PID ? "pid" : o.type == F_OWNER_PGRP ? "pgrp" : o.type == F_OWNER_TID ? "tid" : "?";
    printf("%s: getown %s getown_ex %s/%s getsig %s async %d nonblock %d\n", what, who, t,
           o.pid == getpid() ? "self" : o.pid == getpgrp() ? "pgrp" : o.pid == 0 ? "0" : "other",
           sig == rtsig ? "rt" : sig == 0 ? "0" : "other", (fl & O_ASYNC) != 0, (fl & O_NONBLOCK) != 0);
    fflush(stdout);
}

static void make_async(int fd, int owner, int sig)
{
    if (fcntl(fd, F_SETOWN, owner) < 0)
        fail("F_SETOWN");
    if (fcntl(fd, F_SETSIG, sig) < 0)
        fail("F_SETSIG");
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) < 0)
        fail("F_SETFL O_ASYNC");
}

static void wait_for(int fd, short ev)
{
    struct pollfd p = { .fd = fd, .events = ev };
    if (poll(&p, 1, 5000) != 1)
        fail("poll: not ready in 5 s");
}

static void read_show(const char *what, int fd, int flags)
{
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, flags);
    if (n < 0) {
        printf("%s: read -> %s\n", what, strerror(errno));
    } else {
        buf[n] = 0;
        printf("%s: read -> \"%s\"\n", what, buf);
    }
    fflush(stdout);
}

static void put(int fd, const char *s, int flags)
{
    if (send(fd, s, strlen(s), flags) != (ssize_t)strlen(s))
        fail("send");
}

static int run_async(const char *me, const char *peer, int port)
{
    if (getpgrp() != getpid() && setpgid(0, 0) < 0)
        fail("setpgid");        /* SIGIO to our group reaches nobody else */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGIO);
    sigaddset(&set, SIGURG);
    sigaddset(&set, rtsig);
    sigprocmask(SIG_BLOCK, &set, NULL);

    /* listener L: O_ASYNC before bind/listen */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0)
        fail("socket");
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    make_async(l, getpid(), rtsig);
    struct sockaddr_in la = addr_of(me, port + 1);
    if (bind(l, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(l, 4) < 0)
        fail("bind/listen");
    show_fcntl("listener", l);

    /* client C: owner, signal and O_ASYNC set before connect */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0)
        fail("socket");
    make_async(c, getpid(), rtsig);
    struct sockaddr_in pa = addr_of(peer, port);
    if (connect(c, (struct sockaddr *)&pa, sizeof(pa)) == 0 || errno != EINPROGRESS)
        fail("connect: not EINPROGRESS");
    printf("sigio_check: ready\n");
    fflush(stdout);
    int fds[3] = { c, l, -1 };
    collect("connect", fds, "CL", 2, 5000);
    show_fcntl("client", c);
    collect("data", fds, "CL", 2, 5000);
    read_show("data", c, 0);

    put(c, "U", 0);
    collect("urgent", fds, "CL", 2, 5000);
    read_show("urgent", c, 0);
    read_show("urgent oob", c, MSG_OOB);

    if (fcntl(c, F_SETSIG, 0) < 0)
        fail("F_SETSIG 0");
    put(c, "P", 0);
    collect("plain", fds, "CL", 2, 5000);
    read_show("plain", c, 0);
    if (fcntl(c, F_SETSIG, rtsig) < 0)
        fail("F_SETSIG");

    /* fill the send buffer while the peer does not read: POLL_OUT once it
     * drains (only because a send found no room) */
    put(c, "F", 0);
    static char big[65536];
    memset(big, 'f', sizeof(big));
    long total = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t n = send(c, big, sizeof(big), 0);
        if (n < 0) {
            if (errno != EAGAIN)
                fail("send (fill)");
            break;
        }
        total += n;
    }
    printf("fill: EAGAIN after some data: %s\n", total > 0 ? "yes" : "no");
    collect("space", fds, "CL", 2, 5000);

    shutdown(c, SHUT_WR);
    collect("fin", fds, "CL", 2, 5000);
    read_show("fin", c, 0);
    close(c);

    /* the peer connects to L: POLL_IN on the listener; the accepted socket
     * has no owner and no O_ASYNC (a new file on Linux) */
    collect("accept", fds, "CL", 2, 5000);
    int a = accept(l, NULL, NULL);
    if (a < 0)
        fail("accept");
    show_fcntl("accepted", a);
    wait_for(a, POLLIN);
    int fds2[3] = { a, l, -1 };
    collect("accepted data", fds2, "AL", 2, 500);
    read_show("accepted", a, 0);
    close(a);
    close(l);

    /* C2: owned by our process group, plain SIGIO: a refused connect */
    int c2 = socket(AF_INET, SOCK_STREAM, 0);
    if (c2 < 0)
        fail("socket");
    make_async(c2, -getpgrp(), 0);
    struct sockaddr_in ca = addr_of(peer, port + 2);
    if (connect(c2, (struct sockaddr *)&ca, sizeof(ca)) == 0 || errno != EINPROGRESS)
        fail("connect c2: not EINPROGRESS");
    int fds3[1] = { c2 };
    collect("refused", fds3, "R", 1, 5000);
    show_fcntl("refused", c2);
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(c2, SOL_SOCKET, SO_ERROR, &err, &el);
    printf("refused: SO_ERROR %s\n", strerror(err));
    close(c2);
    printf("sigio_check: done\n");
    return 0;
}

static int run_peer(const char *me, const char *async_addr, int port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in la = addr_of(me, port);
    if (bind(l, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(l, 4) < 0)
        fail("peer bind/listen");
    printf("sigio_check: ready\n");
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0)
        fail("peer accept");
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    usleep(1000000);            /* the connect step is over */
    put(c, "hello", 0);
    char cmd;
    static char sink[65536];
    for (;;) {
        ssize_t n = recv(c, &cmd, 1, 0);
        if (n != 1)
            fail("peer: command");
        if (cmd == 'U') {
            put(c, "x", 0);
            put(c, "!", MSG_OOB);
        } else if (cmd == 'P') {
            put(c, "plain", 0);
        } else if (cmd == 'F') {
            usleep(500000);     /* let the other side fill its buffer */
            long got = 0;
            while ((n = recv(c, sink, sizeof(sink), 0)) > 0)
                got += n;
            if (n < 0)
                fail("peer: drain");
            usleep(200000);
            close(c);
            break;
        }
    }
    close(l);
    usleep(500000);
    int d = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in aa = addr_of(async_addr, port + 1);
    if (connect(d, (struct sockaddr *)&aa, sizeof(aa)) < 0)
        fail("peer connect");
    usleep(800000);             /* the accept step is over */
    put(d, "z", 0);
    char b;
    while (recv(d, &b, 1, 0) > 0)
        ;
    close(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: sigio_check async|peer MYADDR OTHERADDR PORT\n");
        return 2;
    }
    rtsig = SIGRTMIN + 1;
    int port = atoi(argv[4]);
    if (!strcmp(argv[1], "async"))
        return run_async(argv[2], argv[3], port);
    if (!strcmp(argv[1], "peer"))
        return run_peer(argv[2], argv[3], port);
    fprintf(stderr, "sigio_check: async or peer\n");
    return 2;
}
