/* excl_check MODE PORT NPROC NCONN: N processes share one listener, each
 * waiting in epoll_wait on an instance of its own, or all on one instance
 * made before fork, and serve NCONN connections (echo until EOF).
 *
 * MODE: excl    each process's own instance, EPOLLIN|EPOLLEXCLUSIVE (nginx's
 *               accept_mutex off): Linux wakes one exclusive waiter per event
 *       shared  NPROC processes wait on ONE instance created before fork,
 *               level-triggered: the instance is shared, as on Linux
 *       plain   each process's own instance, no EPOLLEXCLUSIVE (a
 *               wake-up for every process per connection; for comparison)
 *
 * The listener is non-blocking; after each wake-up a process accepts until
 * EAGAIN and serves what it got. Prints one line: connections accepted,
 * distinct peers (ip:port), wake-ups, wake-ups that found nothing to
 * accept, and per process how many it accepted. Exit 0 when every
 * connection was accepted exactly once (accepted == distinct == NCONN);
 * the bounds on wake-ups are the caller's to check. Runs on the stack
 * through the wrapper, or on the kernel (the same semantics). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXP 32
#define MAXC 4096

struct shared {
    _Atomic int stop;
    _Atomic int accepted;
    _Atomic long wakeups, empty;
    _Atomic int per[MAXP];
    _Atomic uint64_t peers[MAXC];       /* ip << 16 | port, in accept order */
};

static struct shared *sh;

static void serve(int c)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(c, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    close(c);
}

static void child(int idx, int lfd, int shared_ep, bool excl)
{
    int ep = shared_ep;
    if (ep < 0) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN | (excl ? EPOLLEXCLUSIVE : 0), .data.fd = lfd };
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
            perror("excl_check: epoll");
            _exit(2);
        }
    }
    while (!atomic_load(&sh->stop)) {
        struct epoll_event evs[4];
        int n = epoll_wait(ep, evs, 4, 100);
        if (n < 0 && errno != EINTR) {
            perror("excl_check: epoll_wait");
            _exit(2);
        }
        if (n <= 0)
            continue;
        atomic_fetch_add(&sh->wakeups, 1);
        int got = 0;
        for (;;) {
            struct sockaddr_in sa;
            socklen_t sl = sizeof(sa);
            int c = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
            if (c < 0)
                break;
            got++;
            int k = atomic_fetch_add(&sh->accepted, 1);
            if (k < MAXC)
                atomic_store(&sh->peers[k], (uint64_t)ntohl(sa.sin_addr.s_addr) << 16 |
                                            ntohs(sa.sin_port));
            atomic_fetch_add(&sh->per[idx], 1);
            serve(c);
        }
        if (!got)
            atomic_fetch_add(&sh->empty, 1);
    }
    exit(0);        /* the library's destructor runs: this process leaves the stack */
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: excl_check excl|shared|plain PORT NPROC NCONN\n");
        return 2;
    }
    const char *mode = argv[1];
    int port = atoi(argv[2]), np = atoi(argv[3]), nc = atoi(argv[4]);
    if (np < 1 || np > MAXP || nc < 1 || nc > MAXC ||
        (strcmp(mode, "excl") && strcmp(mode, "shared") && strcmp(mode, "plain"))) {
        fprintf(stderr, "excl_check: bad arguments\n");
        return 2;
    }
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 2;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
        perror("excl_check: listen");
        return 2;
    }
    int shared_ep = -1;
    if (!strcmp(mode, "shared")) {
        shared_ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
        if (shared_ep < 0 || epoll_ctl(shared_ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
            perror("excl_check: epoll");
            return 2;
        }
    }
    pid_t pids[MAXP];
    for (int i = 0; i < np; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("excl_check: fork");
            return 2;
        }
        if (pids[i] == 0)
            child(i, lfd, shared_ep, !strcmp(mode, "excl"));
    }
    printf("ready\n");
    fflush(stdout);
    /* Until every connection was accepted and served (bounded: 120 s). */
    for (int t = 0; t < 12000 && atomic_load(&sh->accepted) < nc; t++) {
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
    struct timespec ts = { 0, 300000000 };
    nanosleep(&ts, NULL);
    atomic_store(&sh->stop, 1);
    int bad = 0;
    for (int i = 0; i < np; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    int acc = atomic_load(&sh->accepted), n = acc < MAXC ? acc : MAXC;
    static uint64_t p[MAXC];
    for (int i = 0; i < n; i++)
        p[i] = atomic_load(&sh->peers[i]);
    qsort(p, (size_t)n, sizeof(p[0]), cmp);
    int distinct = n > 0;
    for (int i = 1; i < n; i++)
        distinct += p[i] != p[i - 1];
    printf("mode %s procs %d conns %d accepted %d distinct %d wakeups %ld empty %ld per-process",
           mode, np, nc, acc, distinct, atomic_load(&sh->wakeups), atomic_load(&sh->empty));
    for (int i = 0; i < np; i++)
        printf(" %d", atomic_load(&sh->per[i]));
    printf("%s\n", bad ? " (a child failed)" : "");
    return acc == nc && distinct == nc && !bad ? 0 : 1;
}
