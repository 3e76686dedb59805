/* sig_check: signal handlers and blocking stack calls, run on the stack
 * against a kernel echo server at PEER:PORT (tests/integration/test_signals.sh).
 *   sig_check longjmp PEER PORT   alarm + siglongjmp out of a blocked recv (wget's connect
 *                                 timeout does this), 20 times; after each, the same socket and
 *                                 a fresh one must still echo (a registration left behind by
 *                                 the jump corrupts the socket's wait queue or the link's lead)
 *   sig_check jumpfree PEER PORT BLACKHOLE
 *                                 siglongjmp out of 10 blocked reads, accepts and connects each,
 *                                 closing the socket after each jump: what the abandoned call
 *                                 held must be released by that close. Each read's connection
 *                                 must end (the test's peer counts the FINs it sees), the
 *                                 listener's port and the connecting socket's bound port must be
 *                                 free again (bind without SO_REUSEADDR), and no fd may be left
 *                                 over (an accept's placeholder). BLACKHOLE: an address that
 *                                 never answers (connect blocks in SYN-SENT)
 *   sig_check busy PEER PORT SECS echoes numbered messages over one connection for SECS seconds
 *                                 (0: until killed), each checked byte for byte: the stack calls
 *                                 a process makes while others on the same stack are killed
 *                                 (tests/integration/test_kill_midcall.sh); SIG_CHECK_STOP=FILE:
 *                                 also stop once FILE exists
 *   sig_check handler PEER PORT   a handler that writes to and closes stack sockets, fired at
 *                                 a thread busy in stack calls, for 3 s: no deadlock on the
 *                                 stack lock (a watchdog fails the run after 10 s without
 *                                 progress), every byte echoed
 * Prints "ok MODE" and exits 0, or names the failure and exits 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in peer;

static void fail(const char *what)
{
    fprintf(stderr, "sig_check: FAIL: %s (errno %s)\n", what, strerror(errno));
    exit(1);
}

static int connect_peer(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
        fail("connect");
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void echo(int fd, const char *msg)
{
    size_t n = strlen(msg);
    if (write(fd, msg, n) != (ssize_t)n)
        fail("write");
    char buf[64];
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) {
            /* what the connection looks like: data waiting unread, or never
             * received, or ours never acknowledged */
            int e = errno, inq = -1, outq = -1;
            struct tcp_info ti;
            socklen_t tl = sizeof(ti);
            memset(&ti, 0, sizeof(ti));
            ioctl(fd, FIONREAD, &inq);
            ioctl(fd, TIOCOUTQ, &outq);
            getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
            fprintf(stderr, "sig_check: no echo after %zu of %zu bytes: unread %d, unsent+unacked %d, "
                    "state %u, unacked %u, retransmits %u, backoff %u, rto %u us, "
                    "last data sent %u ms, last data received %u ms, last ack %u ms ago\n",
                    got, n, inq, outq, ti.tcpi_state, ti.tcpi_unacked, ti.tcpi_retransmits,
                    ti.tcpi_backoff, ti.tcpi_rto, ti.tcpi_last_data_sent, ti.tcpi_last_data_recv,
                    ti.tcpi_last_ack_recv);
            errno = e;
            fail("no echo (read timed out or failed)");
        }
        got += (size_t)r;
    }
    if (memcmp(buf, msg, n) != 0)
        fail("echo differs");
}

/* ------------------------------------------------------------ longjmp */

static sigjmp_buf jb;

static void on_alarm(int sig)
{
    (void)sig;
    siglongjmp(jb, 1);
}

static void mode_longjmp(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* volatile: live across sigsetjmp/siglongjmp. */
    for (volatile int i = 0; i < 20; i++) {
        volatile int fd = connect_peer();
        if (sigsetjmp(jb, 1) == 0) {
            struct itimerval it = { { 0, 0 }, { 0, 50 * 1000 } };
            setitimer(ITIMER_REAL, &it, NULL);
            char c;
            read(fd, &c, 1);    /* nothing comes: the alarm jumps out of the wait */
            fail("read returned although the peer sent nothing");
        }
        /* Back here by siglongjmp, out of the middle of the blocked read. */
        echo(fd, "after the jump");
        int fd2 = connect_peer();
        echo(fd2, "a fresh socket");
        echo(fd, "and the old one again");
        close(fd2);
        close(fd);
    }
}

/* ------------------------------------------------------------ jumpfree */

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

static void arm(void)
{
    struct itimerval it = { { 0, 0 }, { 0, 50 * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static int bound_socket(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        fail("bind (the port is still held by a socket an abandoned call kept)");
    return fd;
}

static void mode_jumpfree(const char *blackhole)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    struct sockaddr_in bh = { .sin_family = AF_INET, .sin_port = htons(9) };
    if (inet_pton(AF_INET, blackhole, &bh.sin_addr) != 1)
        fail("blackhole address");
    /* Counted after the first round: the runtime opens its own fds on first use. */
    volatile int fds0 = -1;
    for (volatile int i = 0; i < 10; i++) {
        if (i == 1)
            fds0 = count_fds();
        /* A read: the peer sees the FIN of the close after the jump. */
        volatile int fd = connect_peer();
        if (sigsetjmp(jb, 1) == 0) {
            arm();
            char c;
            read(fd, &c, 1);
            fail("read returned although the peer sent nothing");
        }
        close(fd);
        /* An accept on a stack listener (bound to the stack's address by routing: any). */
        fd = bound_socket(7400);
        if (listen(fd, 4) < 0)
            fail("listen");
        if (sigsetjmp(jb, 1) == 0) {
            arm();
            accept(fd, NULL, NULL);
            fail("accept returned although nobody connected");
        }
        close(fd);
        /* A connect that gets no answer: the socket must be gone after close. */
        fd = bound_socket(7401);
        if (sigsetjmp(jb, 1) == 0) {
            arm();
            connect(fd, (struct sockaddr *)&bh, sizeof(bh));
            fail("connect to the blackhole returned");
        }
        close(fd);
    }
    /* The ports are free again: nothing holds the listener or the connecting socket. */
    close(bound_socket(7400));
    close(bound_socket(7401));
    int fds1 = count_fds();
    if (fds1 != fds0) {
        fprintf(stderr, "sig_check: %d fds before, %d after\n", fds0, fds1);
        fail("fds left over by abandoned calls");
    }
}

/* ------------------------------------------------------------ busy */

static double now_s(void);

static void mode_busy(int secs)
{
    int fd = connect_peer();
    double end = now_s() + secs;
    long n = 0;
    /* SIG_CHECK_STOP=FILE: also stop once FILE exists (looked at every 256 messages) */
    const char *stop = getenv("SIG_CHECK_STOP");
    while (secs == 0 || now_s() < end) {
        if (stop && (n & 255) == 0 && access(stop, F_OK) == 0)
            break;
        char msg[64];
        snprintf(msg, sizeof(msg), "message %ld from %d", n++, (int)getpid());
        echo(fd, msg);
    }
    printf("busy: %ld messages echoed\n", n);
    close(fd);
}

/* ------------------------------------------------------------ handler */

static int h_fd = -1;           /* the socket the handler writes to */
static atomic_long h_writes, h_progress;
static atomic_int h_stop;
static pthread_t busy_thr;

static void on_usr1(int sig)
{
    (void)sig;
    int e = errno;
    /* Stack calls from a handler that interrupted a stack call. */
    if (write(h_fd, "h", 1) == 1)
        atomic_fetch_add(&h_writes, 1);
    int d = dup(h_fd);
    if (d >= 0)
        close(d);
    errno = e;
}

static void *busy(void *arg)
{
    int fd = *(int *)arg;
    char buf[256];
    memset(buf, 'b', sizeof(buf));
    while (!atomic_load(&h_stop)) {
        ssize_t w = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
        if (w < 0 && errno != EINTR)
            fail("send in the busy thread");
        char in[4096];
        ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            fail("recv in the busy thread");
        atomic_fetch_add(&h_progress, 1);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void mode_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    h_fd = connect_peer();
    int fd = connect_peer();
    pthread_create(&busy_thr, NULL, busy, &fd);
    double end = now_s() + 3, last_t = now_s();
    long last_p = -1, signals = 0;
    while (now_s() < end) {
        pthread_kill(busy_thr, SIGUSR1);
        signals++;
        usleep(200);
        long p = atomic_load(&h_progress);
        if (p != last_p) {
            last_p = p;
            last_t = now_s();
        } else if (now_s() - last_t > 10) {
            fail("no progress for 10 s: deadlock in a stack call made from a signal handler");
        }
    }
    atomic_store(&h_stop, 1);
    /* The busy thread may still be stuck: join with a bound. */
    for (int i = 0; i < 1000; i++) {
        if (pthread_tryjoin_np(busy_thr, NULL) == 0)
            goto joined;
        usleep(10000);
    }
    fail("the busy thread did not finish: deadlock in a stack call made from a signal handler");
joined:;
    long writes = atomic_load(&h_writes);
    /* Every byte the handler wrote comes back through the echo server. */
    shutdown(h_fd, SHUT_WR);
    long got = 0;
    char buf[4096];
    ssize_t r;
    while ((r = read(h_fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < r; i++)
            if (buf[i] != 'h')
                fail("the handler's bytes came back altered");
        got += r;
    }
    printf("handler: %ld signals, %ld writes from the handler, %ld echoed, %ld busy rounds\n",
           signals, writes, got, atomic_load(&h_progress));
    if (got != writes || writes == 0)
        fail("the handler's writes did not all come back");
    close(fd);
    close(h_fd);
}

int main(int argc, char **argv)
{
    if (argc != 4 && !(argc == 5 && (!strcmp(argv[1], "jumpfree") || !strcmp(argv[1], "busy"))))
        goto usage;
    peer.sin_family = AF_INET;
    peer.sin_port = htons((uint16_t)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &peer.sin_addr) != 1)
        goto usage;
    if (!strcmp(argv[1], "longjmp"))
        mode_longjmp();
    else if (!strcmp(argv[1], "busy"))
        mode_busy(atoi(argv[4]));
    else if (!strcmp(argv[1], "jumpfree"))
        mode_jumpfree(argv[4]);
    else if (!strcmp(argv[1], "handler"))
        mode_handler();
    else
        goto usage;
    printf("ok %s\n", argv[1]);
    return 0;
usage:
    fprintf(stderr, "usage: sig_check longjmp|handler PEER PORT | jumpfree PEER PORT BLACKHOLE | busy PEER PORT SECS\n");
    return 2;
}
