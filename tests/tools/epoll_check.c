/* epoll_check: epoll defects of the shim, one mode each, run on the stack
 * against a kernel peer (tests/integration/test_epoll_semantics.sh).
 *   epoll_check wake PEER PORT      epoll_ctl(ADD) from another thread wakes a thread already
 *                                   in epoll_wait on an instance that had no stack socket
 *   epoll_check nested PEER PORT    an epoll fd holding a stack socket reports readiness
 *                                   through poll() and through an outer epoll set
 *   epoll_check etlisten PORT N     an EPOLLET listener reports an edge per new connection
 *                                   while earlier ones are still queued (prints "edge I")
 *   epoll_check many PEER PORT N    N level-triggered sockets ready at once (N > the shim's
 *                                   old batch of 64): one epoll_wait reports each exactly once;
 *                                   smaller calls go round the ready list (Linux moves a
 *                                   reported item to the tail), none twice in one call
 *   epoll_check race PEER PORT SECS the stress: threads doing epoll_ctl(ADD/MOD/DEL), epoll_wait,
 *                                   non-blocking send/recv and poll() on the same sockets while
 *                                   another closes and replaces them, for SECS seconds (under
 *                                   SAN=1, ASan checks every access)
 * PEER:PORT is an echo server. Prints "ok MODE" and exits 0, or names the failure and exits 1.
 * Every wait is bounded (a missing wake-up shows as a timeout, never a hang). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in peer;

static void fail(const char *what)
{
    fprintf(stderr, "epoll_check: FAIL: %s (errno %s)\n", what, strerror(errno));
    exit(1);
}

static int connect_peer(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail("socket");
    if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0)
        fail("connect");
    return fd;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ wake */

static int wake_ep;
static atomic_int wake_result = -2;
static struct epoll_event wake_ev;

static void *wake_waiter(void *arg)
{
    (void)arg;
    atomic_store(&wake_result, epoll_wait(wake_ep, &wake_ev, 1, 10000));
    return NULL;
}

static void mode_wake(void)
{
    wake_ep = epoll_create1(0);
    if (wake_ep < 0)
        fail("epoll_create1");
    pthread_t t;
    pthread_create(&t, NULL, wake_waiter, NULL);
    usleep(300 * 1000);         /* let it sleep in epoll_wait (correct either way) */
    int fd = connect_peer();
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = 0x5eed };
    if (epoll_ctl(wake_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail("epoll_ctl ADD");
    pthread_join(t, NULL);
    int r = atomic_load(&wake_result);
    if (r != 1 || wake_ev.data.u64 != 0x5eed || !(wake_ev.events & EPOLLOUT)) {
        fprintf(stderr, "epoll_check: epoll_wait gave %d (data %llx)\n", r,
                (unsigned long long)wake_ev.data.u64);
        fail("the waiting thread was not woken by epoll_ctl(ADD) of a writable socket");
    }
    close(fd);
    close(wake_ep);
}

/* ------------------------------------------------------------ nested */

static void mode_nested(void)
{
    int fd = connect_peer();
    int inner = epoll_create1(0), outer = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    if (inner < 0 || outer < 0 || epoll_ctl(inner, EPOLL_CTL_ADD, fd, &ev) < 0)
        fail("inner epoll set");
    ev.data.fd = inner;
    if (epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev) < 0)
        fail("outer epoll set");
    struct pollfd p = { .fd = inner, .events = POLLIN };
    if (poll(&p, 1, 0) != 0)
        fail("inner epoll fd readable with nothing ready");
    if (write(fd, "ping", 4) != 4)
        fail("write");
    /* The echo comes back: the inner set has a ready stack socket. */
    if (poll(&p, 1, 10000) != 1 || !(p.revents & POLLIN))
        fail("poll() on the epoll fd did not report the stack socket's readiness");
    struct epoll_event got;
    if (epoll_wait(outer, &got, 1, 10000) != 1 || got.data.fd != inner)
        fail("the outer epoll set did not report the inner one");
    if (epoll_wait(inner, &got, 1, 0) != 1 || got.data.fd != fd)
        fail("the inner set does not report the socket");
    char buf[8];
    if (read(fd, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4) != 0)
        fail("echo");
    if (epoll_wait(inner, &got, 1, 0) != 0 || poll(&p, 1, 0) != 0)
        fail("still readable after draining");
    close(fd);
    close(inner);
    close(outer);
}

/* ------------------------------------------------------------ etlisten */

static void mode_etlisten(int port, int n)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0)
        fail("bind/listen");
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = l };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        fail("epoll_ctl");
    printf("listening\n");
    fflush(stdout);
    for (int i = 1; i <= n; i++) {
        struct epoll_event got;
        int r = epoll_wait(ep, &got, 1, 15000);
        if (r != 1) {
            fprintf(stderr, "epoll_check: connection %d: epoll_wait gave %d\n", i, r);
            fail("no edge for a new connection while earlier ones are queued (nothing accepted)");
        }
        printf("edge %d\n", i);
        fflush(stdout);
    }
    int accepted = 0;
    double end = now_s() + 10;
    while (accepted < n && now_s() < end) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            accepted++;
            close(c);
        } else if (errno == EAGAIN) {
            usleep(10000);
        } else {
            fail("accept");
        }
    }
    if (accepted != n)
        fail("not every connection was queued");
    close(ep);
    close(l);
}

/* ------------------------------------------------------------ many */

#define MANY_MAX 512

/* One epoll_wait of up to max events: each item's data (its index) at
 * most once in the call; counts what it reported into seen[]. */
static int many_wait(int ep, int max, int n, int *seen)
{
    static struct epoll_event got[MANY_MAX * 2];
    static int mark[MANY_MAX];
    int r = epoll_wait(ep, got, max, 5000);
    if (r < 0)
        fail("epoll_wait");
    memset(mark, 0, sizeof(mark));
    for (int i = 0; i < r; i++) {
        uint64_t k = got[i].data.u64;
        if (k >= (uint64_t)n || !(got[i].events & EPOLLOUT))
            fail("an event that was never registered");
        if (mark[k]++) {
            fprintf(stderr, "epoll_check: socket %d reported twice in one call of %d events\n",
                    (int)k, r);
            fail("one epoll_wait reported an item twice (Linux: once per call)");
        }
        seen[k]++;
    }
    return r;
}

static void mode_many(int n)
{
    if (n < 1 || n > MANY_MAX)
        fail("N out of range");
    int fds[MANY_MAX], seen[MANY_MAX] = { 0 };
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        fds[i] = connect_peer();
        struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = (uint64_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
            fail("epoll_ctl ADD");
    }
    /* all writable: one call with room for twice as many reports each once */
    if (many_wait(ep, 2 * n, n, seen) != n)
        fail("one epoll_wait did not report every ready socket");
    /* calls of a third: level-triggered items rotate, so three calls cover all */
    int third = (n + 2) / 3;
    memset(seen, 0, sizeof(seen));
    for (int c = 0; c < 3; c++)
        if (many_wait(ep, third, n, seen) != third)
            fail("a call of max events did not fill (every socket is ready)");
    for (int i = 0; i < n; i++)
        if (!seen[i]) {
            fprintf(stderr, "epoll_check: socket %d not reported in 3 calls of %d\n", i, third);
            fail("the ready list did not rotate (Linux moves a reported item to the tail)");
        }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    close(ep);
}

/* ------------------------------------------------------------ race */

#define RACE_FDS 8
static _Atomic int race_fd[RACE_FDS];
static atomic_int race_stop;
static int race_ep;
static atomic_long race_ops;

static void *race_ctl(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&race_stop)) {
        int i = (int)(rand_r(&seed) % RACE_FDS);
        int fd = atomic_load(&race_fd[i]);
        if (fd < 0)
            continue;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | (rand_r(&seed) & 1 ? EPOLLET : 0),
                                  .data.u64 = (uint64_t)i };
        int op = (int)(rand_r(&seed) % 3) + 1;      /* ADD, DEL, MOD */
        int r = epoll_ctl(race_ep, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev);
        if (r < 0 && errno != EEXIST && errno != ENOENT && errno != EBADF && errno != EPERM)
            fail("epoll_ctl in the race: unexpected errno");
        atomic_fetch_add(&race_ops, 1);
    }
    return NULL;
}

static void *race_wait(void *arg)
{
    (void)arg;
    struct epoll_event evs[16];
    while (!atomic_load(&race_stop)) {
        int n = epoll_wait(race_ep, evs, 16, 20);
        if (n < 0 && errno != EINTR)
            fail("epoll_wait in the race");
        for (int i = 0; i < n; i++)
            if (evs[i].data.u64 >= RACE_FDS)
                fail("epoll_wait returned data that was never registered");
    }
    return NULL;
}

static atomic_long race_io;

/* Non-blocking I/O on whatever the slots hold: data for the echo server,
 * and what comes back (the fd may be closed under us: EBADF is fine). */
static void *race_io_thread(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    char buf[512];
    memset(buf, 'r', sizeof(buf));
    while (!atomic_load(&race_stop)) {
        int fd = atomic_load(&race_fd[rand_r(&seed) % RACE_FDS]);
        if (fd < 0)
            continue;
        ssize_t w = send(fd, buf, 1 + rand_r(&seed) % sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EBADF && errno != EPIPE && errno != ENOTCONN &&
            errno != ECONNRESET && errno != ENOTSOCK)
            fail("send in the race: unexpected errno");
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r < 0 && errno != EAGAIN && errno != EBADF && errno != ECONNRESET && errno != ENOTSOCK &&
            errno != ENOTCONN)
            fail("recv in the race: unexpected errno");
        atomic_fetch_add(&race_io, 1);
    }
    return NULL;
}

/* poll() on a few slots at once, short timeouts. */
static void *race_poll(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&race_stop)) {
        struct pollfd p[4];
        for (int i = 0; i < 4; i++) {
            p[i].fd = atomic_load(&race_fd[rand_r(&seed) % RACE_FDS]);
            p[i].events = POLLIN | POLLOUT;
        }
        int n = poll(p, 4, 5);
        if (n < 0 && errno != EINTR)
            fail("poll in the race");
        atomic_fetch_add(&race_io, 1);
    }
    return NULL;
}

static void mode_race(int secs)
{
    race_ep = epoll_create1(0);
    for (int i = 0; i < RACE_FDS; i++)
        atomic_store(&race_fd[i], connect_peer());
    pthread_t t[6];
    pthread_create(&t[0], NULL, race_ctl, (void *)1);
    pthread_create(&t[1], NULL, race_ctl, (void *)2);
    pthread_create(&t[2], NULL, race_wait, NULL);
    pthread_create(&t[3], NULL, race_io_thread, (void *)4);
    pthread_create(&t[4], NULL, race_io_thread, (void *)5);
    pthread_create(&t[5], NULL, race_poll, (void *)6);
    double end = now_s() + secs;
    long closes = 0;
    unsigned seed = 3;
    while (now_s() < end) {
        int i = (int)(rand_r(&seed) % RACE_FDS);
        int fd = atomic_exchange(&race_fd[i], -1);
        close(fd);              /* the ctl threads may hold this number right now */
        closes++;
        atomic_store(&race_fd[i], connect_peer());
        usleep(2000);
    }
    atomic_store(&race_stop, 1);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < RACE_FDS; i++)
        close(atomic_load(&race_fd[i]));
    close(race_ep);
    printf("race: %ld closes, %ld epoll_ctl calls, %ld send/recv/poll rounds\n", closes,
           atomic_load(&race_ops), atomic_load(&race_io));
    if (atomic_load(&race_ops) == 0 || atomic_load(&race_io) == 0)
        fail("the race threads made no progress");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        goto usage;
    const char *mode = argv[1];
    if (argc >= 4 && strcmp(mode, "etlisten") != 0) {
        peer.sin_family = AF_INET;
        peer.sin_port = htons((uint16_t)atoi(argv[3]));
        if (inet_pton(AF_INET, argv[2], &peer.sin_addr) != 1)
            goto usage;
    }
    if (!strcmp(mode, "wake") && argc == 4)
        mode_wake();
    else if (!strcmp(mode, "nested") && argc == 4)
        mode_nested();
    else if (!strcmp(mode, "etlisten") && argc == 4)
        mode_etlisten(atoi(argv[2]), atoi(argv[3]));
    else if (!strcmp(mode, "many") && argc == 5)
        mode_many(atoi(argv[4]));
    else if (!strcmp(mode, "race") && argc == 5)
        mode_race(atoi(argv[4]));
    else
        goto usage;
    printf("ok %s\n", mode);
    return 0;
usage:
    fprintf(stderr, "usage: epoll_check wake|nested PEER PORT | etlisten PORT N | many PEER PORT N |\n"
                    "       race PEER PORT SECS\n");
    return 2;
}
