/* kill9_load: processes SIGKILLed at random moments while they work on a
 * shared stack (tests/integration/test_kill9_repair.sh).
 *
 *   kill9_load PEER PORT LPORT ITER SEED
 *
 * The parent listens on LPORT (on the stack), then ITER times: forks a
 * child that works until it is killed, sleeps 2-40 ms (a seeded draw) and
 * kills it with SIGKILL. A child, in two threads, as fast as it can:
 *   - connects (non-blocking, completion through epoll) to the kernel echo
 *     server at PEER:PORT, sends 1-6000 bytes, reads them back through
 *     epoll, checks them, and closes with a reset (SO_LINGER 0: no
 *     TIME-WAIT left behind) or, one time in four, gracefully;
 *   - accepts connections on the inherited listener (kernel clients) and
 *     echoes one message on each.
 * Many short operations, each one a few acquisitions of the stack lock, so
 * that a kill lands inside the lock often (the parent prints how often the
 * lock was taken over: lock_recovered in the audit line of the test).
 * A child that reads back other bytes than it sent prints "MISMATCH".
 * KILL9_GO=FILE: the parent starts killing once FILE exists; KILL9_END=FILE:
 * after "final ok" it keeps its listener until FILE exists.
 * Then the parent prints "done N kills", serves what is left in the accept
 * queue and then a connection whose message starts with FINAL (the stack
 * still accepts), prints "final ok" and exits 0 (or, with no FINAL within
 * 60 s, says what it served and exits 1). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in peer;
static int lfd;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(uint8_t *b, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(rnd(&seed) >> 24);
}

/* One round trip to the kernel echo server; false on a network error
 * (allowed: not a corruption), exits on wrong bytes. */
static bool round_trip(uint64_t *s)
{
    static uint8_t out[6000], in[6000];
    size_t n = 1 + rnd(s) % sizeof(out);
    fill(out, n, rnd(s));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return false;
    int ep = epoll_create1(0);
    bool ok = false;
    struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        goto out;
    if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) < 0 && errno != EINPROGRESS)
        goto out;
    if (epoll_wait(ep, &ev, 1, 3000) != 1)
        goto out;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err)
        goto out;
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    size_t sent = 0, got = 0;
    while (sent < n) {
        ssize_t w = send(fd, out + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0)
            sent += (size_t)w;
        else if (errno != EAGAIN)
            goto out;
        else
            usleep(100);
    }
    while (got < n) {
        if (epoll_wait(ep, &ev, 1, 3000) != 1)
            goto out;
        ssize_t r = recv(fd, in + got, n - got, 0);
        if (r <= 0 && !(r < 0 && errno == EAGAIN))
            goto out;
        if (r > 0)
            got += (size_t)r;
    }
    if (memcmp(in, out, n) != 0) {
        fprintf(stderr, "kill9_load: MISMATCH: %zu bytes echoed differ\n", n);
        _exit(3);
    }
    ok = true;
out:
    if (rnd(s) % 4) {
        struct linger lg = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
    if (ep >= 0)
        close(ep);
    return ok;
}

/* Echo one message on each accepted connection (the client closes first).
 * True if it said FINAL. */
static bool serve_one(int c)
{
    uint8_t buf[8192];
    bool final = false;
    struct pollfd p = { .fd = c, .events = POLLIN };
    if (poll(&p, 1, 2000) == 1) {
        ssize_t r = recv(c, buf, sizeof(buf), 0);
        if (r > 0)
            send(c, buf, (size_t)r, MSG_NOSIGNAL);
        final = r >= 5 && memcmp(buf, "FINAL", 5) == 0;
        p.events = POLLIN;
        if (poll(&p, 1, 2000) == 1)
            (void)recv(c, buf, sizeof(buf), 0);         /* the client's FIN */
    }
    close(c);
    return final;
}

static void *acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (poll(&p, 1, 50) != 1)
            continue;
        int c = accept4(lfd, NULL, NULL, 0);
        if (c >= 0)
            serve_one(c);
    }
    return NULL;
}

static void child(uint64_t seed)
{
    pthread_t t;
    pthread_create(&t, NULL, acceptor, NULL);
    for (;;)
        round_trip(&seed);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: kill9_load PEER PORT LPORT ITER SEED\n");
        return 2;
    }
    peer.sin_family = AF_INET;
    peer.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &peer.sin_addr) != 1)
        return 2;
    int iter = atoi(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 0) | 1;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 128) < 0) {
        perror("kill9_load: listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    /* KILL9_GO: a file the test creates once it has its baseline */
    const char *go = getenv("KILL9_GO");
    for (int w = 0; go && access(go, F_OK) != 0 && w < 600; w++)
        usleep(50000);
    int kills = 0;
    for (int i = 0; i < iter; i++) {
        uint64_t cs = rnd(&seed);
        pid_t pid = fork();
        if (pid < 0) {
            perror("kill9_load: fork");
            return 1;
        }
        if (pid == 0)
            child(cs);
        struct timespec ts = { 0, (long)(2 + rnd(&seed) % 39) * 1000000L };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            kills++;
        else
            fprintf(stderr, "kill9_load: child %d ended by itself (status %#x)\n", i, st);
    }
    printf("done %d kills\n", kills);
    fflush(stdout);
    /* Connections left in the accept queue by the kernel clients are
     * served (they end), until the final one, whose message says FINAL.
     * Bounded in time, not in connections: up to a full accept queue (129)
     * of the clients' connections may wait ahead of the final one. */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int served = 0, idle = 0, perr = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec >= 60)
            break;
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        int pr = poll(&p, 1, 100);
        if (pr < 0 && perr++ < 5)
            fprintf(stderr, "kill9_load: poll after the kills: %s\n", strerror(errno));
        if (pr != 1) {
            idle += pr == 0;
            if (pr < 0)
                usleep(100000);
            continue;
        }
        int c = accept4(lfd, NULL, NULL, 0);
        if (c < 0)
            fprintf(stderr, "kill9_load: accept after the kills: %s (poll revents %#x)\n",
                    strerror(errno), (unsigned)p.revents);
        served += c >= 0;
        if (c >= 0 && serve_one(c)) {
            printf("final ok\n");
            fflush(stdout);
            /* KILL9_END: the listener stays until the test has audited */
            const char *end = getenv("KILL9_END");
            for (int k = 0; end && access(end, F_OK) != 0 && k < 1200; k++)
                usleep(50000);
            close(lfd);
            return 0;
        }
    }
    fprintf(stderr, "kill9_load: no final connection (in 60 s: %d connections served, %d idle "
            "polls, %d poll errors)\n", served, idle, perr);
    return 1;
    close(lfd);
    return 0;
}
