/* conn_many: many connections held open at once (issue 10's 10,000-connection row).
 *
 *   conn_many server [-a ADDR] [-p PORT] -n N [-w WARM]
 *     A level-triggered epoll server: accepts, echoes what each connection sends
 *     (from one shared buffer: the program keeps no per-connection memory, so the
 *     growth measured is the stack's, the shim's and the kernel placeholder's
 *     share in the process). Prints "listening"; when WARM (default 100)
 *     connections have echoed once it records its memory, and when all N have
 *     echoed twice (the client's two phases) and a second passed with nothing
 *     to do (idle), it prints
 *       "mem n=N rss_kib=A anon_kib=B shmem_kib=C per_conn_bytes=D"
 *     (A, D: resident memory but the link's receive ring, and its growth from
 *     WARM to N connections, per connection). Exits 0
 *     once N connections have been accepted and all of them closed.
 *
 *   conn_many client -a HOST [-p PORT] -n N [-W INFLIGHT] [-b SRC,SRC...]
 *     Opens N connections (at most INFLIGHT, default 256, handshakes or first
 *     echoes pending at once; sources round-robin over -b addresses), sends
 *     64 bytes on each as soon as it is connected and waits for their echo:
 *     phase 1, "accept". Then, all N open, sends 64 bytes on every connection
 *     and waits for every echo: phase 2, "echo". Checks every echoed byte.
 *     Prints "accept_ms=X echo_ms=Y n=N echo_from=T1 echo_to=T2" (the echo phase on
 *     CLOCK_MONOTONIC, ms), holds them idle for -H SECS (default
 *     0) and then resets every connection (SO_LINGER 0: no TIME-WAIT left to
 *     the next round). Exits 1 on any error
 *     or a wrong byte, naming it. Bounded: -t SECS (default 120) for the whole run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64

static void die(const char *what)
{
    fprintf(stderr, "conn_many: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':')
            v = atol(line + kl + 1);
    if (f)
        fclose(f);
    return v;
}

/* Resident KiB of every mapping but the link's receive ring (the stack's mmap
 * of its AF_PACKET socket, "socket:[inode]" in smaps): a fixed 8 MiB whose
 * slots are touched as frames arrive, not memory per connection. */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long total = 0;
    bool skip = false;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long kib;
        if (sscanf(line, "Rss: %lu kB", &kib) == 1) {
            if (!skip)
                total += (long)kib;
        } else if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
            /* a mapping's header, "start-end perms offset dev inode [path]" (the
             * field lines start with a capital) */
            skip = strstr(line, " socket:[") != NULL;
        }
    }
    if (f)
        fclose(f);
    return f ? total : -1;
}

static void raise_nofile(long n)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < (rlim_t)n + 64) {
        r.rlim_cur = (rlim_t)n + 64;
        if (r.rlim_max < r.rlim_cur)
            r.rlim_max = r.rlim_cur;
        if (setrlimit(RLIMIT_NOFILE, &r) < 0)
            die("setrlimit(RLIMIT_NOFILE) (run as root or raise ulimit -n)");
    }
}

/* ------------------------------------------------------------ server */

static int server(const char *addr, int port, long n, long warm)
{
    raise_nofile(n);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (l < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        die("socket/address");
    if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        die("SO_REUSEADDR");
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4096) < 0)
        die("bind/listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = l };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        die("epoll");
    printf("listening on %s:%d\n", addr, port);
    fflush(stdout);
    /* one byte per fd: has this connection echoed yet? */
    long maxfd = n * 2 + 1024;
    unsigned char *echoed = calloc((size_t)maxfd, 1);
    if (!echoed)
        die("calloc");
    long accepted = 0, closed = 0, first = 0, second = 0, rss_warm = -1;
    bool reported = false;
    static char buf[4096];
    struct epoll_event evs[256];
    while (accepted < n || closed < accepted) {
        bool idle_wait = second >= n && !reported;
        int k = epoll_wait(ep, evs, 256, idle_wait ? 1000 : -1);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        if (k == 0 && idle_wait) {
            /* a second with nothing to do: buffers drained and released */
            long rss = rss_kib();
            printf("mem n=%ld rss_kib=%ld anon_kib=%ld shmem_kib=%ld per_conn_bytes=%ld\n", n, rss,
                   status_kib("RssAnon"), status_kib("RssShmem"),
                   rss_warm >= 0 && n > warm ? (rss - rss_warm) * 1024 / (n - warm) : -1);
            fflush(stdout);
            reported = true;
        }
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                for (int j = 0; j < 64; j++) {
                    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) {
                        if (errno == EAGAIN)
                            break;
                        if (errno == ECONNABORTED || errno == EINTR)
                            continue;
                        die("accept4");
                    }
                    if (c >= maxfd) {
                        errno = EMFILE;
                        die("fd beyond the table");
                    }
                    struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = c };
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
                        die("epoll_ctl ADD");
                    accepted++;
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r > 0) {
                ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
                if (w != r) {
                    /* 64-byte messages into an empty send buffer never block */
                    errno = w < 0 ? errno : EMSGSIZE;
                    die("send (short)");
                }
                /* each echo is one 64-byte message from the client's phases */
                if (echoed[fd] < 2 && ++echoed[fd] == 1) {
                    if (++first == warm)
                        rss_warm = rss_kib();
                } else if (echoed[fd] == 2) {
                    echoed[fd] = 3;
                    second++;
                }
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            /* EOF or reset: the client is done with it */
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            echoed[fd] = 0;
            closed++;
        }
    }
    printf("done accepted=%ld\n", accepted);
    free(echoed);
    close(ep);
    close(l);
    return 0;
}

/* ------------------------------------------------------------ client */

struct cc {
    int fd;
    int state;          /* 0 connecting, 1 waiting for echo 1, 2 idle, 3 waiting for echo 2 */
    int got;
    unsigned char seed;
};

static void fill(unsigned char *m, unsigned char seed, int round)
{
    for (int i = 0; i < MSG; i++)
        m[i] = (unsigned char)(seed * 31 + i * 7 + round * 101);
}

static int client(const char *host, int port, long n, int inflight, char *srcs, double limit_ms,
                  double hold)
{
    raise_nofile(n);
    struct in_addr src[64];
    int nsrc = 0;
    for (char *t = srcs ? strtok(srcs, ",") : NULL; t && nsrc < 64; t = strtok(NULL, ","))
        if (inet_pton(AF_INET, t, &src[nsrc]) == 1)
            nsrc++;
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
        fprintf(stderr, "conn_many: bad address %s\n", host);
        return 1;
    }
    struct cc *cs = calloc((size_t)n, sizeof(*cs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || ep < 0)
        die("setup");
    struct epoll_event evs[256];
    unsigned char msg[MSG], in[MSG];
    double t0 = now_ms(), deadline = t0 + limit_ms;
    long opened = 0, pending = 0, done1 = 0;
    /* phase 1: connect, send, wait for the echo; at most `inflight` pending */
    while (done1 < n) {
        while (opened < n && pending < inflight) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0)
                die("socket");
            int one = 1;
            if (nsrc) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr = src[opened % nsrc] };
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
                if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                    die("bind source");
            }
            if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 && errno != EINPROGRESS)
                die("connect");
            cs[opened] = (struct cc){ .fd = fd, .seed = (unsigned char)opened };
            struct epoll_event e = { .events = EPOLLOUT | EPOLLIN, .data.u64 = (uint64_t)opened };
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
                die("epoll_ctl");
            opened++;
            pending++;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "conn_many: timed out in phase 1 (%ld of %ld echoed)\n", done1, n);
            return 1;
        }
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < k; i++) {
            struct cc *c = &cs[evs[i].data.u64];
            if (c->state == 0) {
                int err = 0;
                socklen_t el = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    errno = err;
                    die("connect (async)");
                }
                if (!(evs[i].events & EPOLLOUT))
                    continue;
                fill(msg, c->seed, 1);
                if (send(c->fd, msg, MSG, MSG_NOSIGNAL) != MSG)
                    die("send 1");
                c->state = 1;
                struct epoll_event e = { .events = EPOLLIN, .data.u64 = evs[i].data.u64 };
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                continue;
            }
            ssize_t r = recv(c->fd, in, (size_t)(MSG - c->got), 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "conn_many: connection %ld closed in phase 1 (%s)\n",
                        (long)evs[i].data.u64, r == 0 ? "EOF" : strerror(errno));
                return 1;
            }
            fill(msg, c->seed, 1);
            if (memcmp(in, msg + c->got, (size_t)r) != 0) {
                fprintf(stderr, "conn_many: wrong bytes echoed on connection %ld\n",
                        (long)evs[i].data.u64);
                return 1;
            }
            c->got += (int)r;
            if (c->got == MSG) {
                c->got = 0;
                c->state = 2;
                pending--;
                done1++;
            }
        }
    }
    double t1 = now_ms();
    /* phase 2: every connection open; one echo each */
    for (long i = 0; i < n; i++) {
        fill(msg, cs[i].seed, 2);
        if (send(cs[i].fd, msg, MSG, MSG_NOSIGNAL) != MSG)
            die("send 2");
        cs[i].state = 3;
    }
    long done2 = 0;
    while (done2 < n) {
        if (now_ms() > deadline) {
            fprintf(stderr, "conn_many: timed out in phase 2 (%ld of %ld echoed)\n", done2, n);
            return 1;
        }
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < k; i++) {
            struct cc *c = &cs[evs[i].data.u64];
            ssize_t r = recv(c->fd, in, (size_t)(MSG - c->got), 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "conn_many: connection %ld closed in phase 2 (%s)\n",
                        (long)evs[i].data.u64, r == 0 ? "EOF" : strerror(errno));
                return 1;
            }
            fill(msg, c->seed, 2);
            if (c->state != 3 || memcmp(in, msg + c->got, (size_t)r) != 0) {
                fprintf(stderr, "conn_many: wrong bytes echoed on connection %ld\n",
                        (long)evs[i].data.u64);
                return 1;
            }
            c->got += (int)r;
            if (c->got == MSG) {
                c->got = 0;
                c->state = 2;
                done2++;
            }
        }
    }
    double t2 = now_ms();
    /* the phases on CLOCK_MONOTONIC too (ms), for profiles of one phase (perf -k CLOCK_MONOTONIC) */
    printf("accept_ms=%.1f echo_ms=%.1f n=%ld echo_from=%.3f echo_to=%.3f\n", t1 - t0, t2 - t1, n, t1,
           t2);
    fflush(stdout);
    if (hold > 0)
        usleep((useconds_t)(hold * 1e6));
    struct linger lg = { 1, 0 };
    for (long i = 0; i < n; i++) {
        setsockopt(cs[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(cs[i].fd);
    }
    free(cs);
    close(ep);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: conn_many server [-a ADDR] [-p PORT] -n N [-w WARM]\n"
                    "       conn_many client -a HOST [-p PORT] -n N [-W INFLIGHT] [-b SRC,...] [-t SECS] [-H SECS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    const char *addr = NULL;
    char *srcs = NULL;
    int port = 7100, inflight = 256, opt;
    long n = 0, warm = 100;
    double secs = 120, hold = 0;
    optind = 2;
    while ((opt = getopt(argc, argv, "a:p:n:w:W:b:t:H:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': n = atol(optarg); break;
        case 'w': warm = atol(optarg); break;
        case 'W': inflight = atoi(optarg); break;
        case 'b': srcs = optarg; break;
        case 't': secs = atof(optarg); break;
        case 'H': hold = atof(optarg); break;
        default: usage();
        }
    }
    if (n <= 0 || inflight <= 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "server") == 0)
        return server(addr ? addr : "0.0.0.0", port, n, warm);
    if (strcmp(mode, "client") == 0 && addr)
        return client(addr, port, n, inflight, srcs, secs * 1000, hold);
    usage();
    return 2;
}
