/* rt_smoke: drives the runtime (tcpsm.h) directly, without the shim, over a
 * real interface (TCPSM_IF/TCPSM_ADDR). Used by tests/tools/rt_smoke.sh.
 *
 *   rt_smoke echo A.B.C.D PORT BYTES   connect, send BYTES of seeded data while a
 *                                      second thread reads the echo; compare FNV-1a
 *   rt_smoke serve PORT                accept one connection, echo until EOF, close
 *   rt_smoke errors A.B.C.D OPENPORT CLOSEDPORT
 *                                      ECONNREFUSED, recv timeout (-EAGAIN),
 *                                      EINTR from a signal, non-blocking connect
 *   rt_smoke hold SECONDS              start the stack and stay up (for ping/ARP checks)
 *   rt_smoke fork A.B.C.D ECHOPORT     fork with a connected socket: the child echoes through
 *                                      the inherited socket (the stack is shared), closes its
 *                                      copy and exits; the parent's connection still echoes
 *   rt_smoke linger A.B.C.D ECHOPORT STALLPORT
 *                                      SO_LINGER=1: close waits for the FIN's ACK (echo
 *                                      peer, fast) or at most 1 s (a peer that never reads)
 *   rt_smoke parallel A.B.C.D ECHOPORT THREADS BYTES
 *                                      THREADS threads, each with its own connection, echo
 *                                      BYTES at once (lock and wake-up contention)
 *   rt_smoke send-exit A.B.C.D PORT BYTES
 *                                      send BYTES (fnv printed), then exit WITHOUT closing:
 *                                      the exit path must deliver them and end the
 *                                      connection (FIN, or RST after the grace time)
 * Prints one "ok ..." line per check, or "FAIL ..." and exits 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcpsm/tcpsm.h"

#define CHUNK 65536

static void die(const char *what, long r)
{
    printf("FAIL %s: %ld (%s)\n", what, r, r < 0 ? strerror((int)-r) : "");
    tcpsm_rt_shutdown();
    exit(1);
}

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Deterministic data: xorshift stream. */
static void fill(uint8_t *p, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        p[i] = (uint8_t)x;
    }
}

static struct sockaddr_in sin_of(const char *a, int port)
{
    struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, a, &s.sin_addr) != 1) {
        printf("FAIL bad address %s\n", a);
        exit(2);
    }
    return s;
}

struct reader {
    struct tcpsm_sock *sk;
    size_t want, got;
    uint64_t hash;
    long err;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    uint8_t *buf = malloc(CHUNK);
    rd->hash = 0xcbf29ce484222325ull;
    while (rd->got < rd->want) {
        struct iovec iov = { buf, CHUNK };
        ssize_t r = tcpsm_recv(rd->sk, &iov, 1, 0, 0, 30LL * 1000000000);
        if (r <= 0) {
            rd->err = r;
            break;
        }
        rd->hash = fnv(rd->hash, buf, (size_t)r);
        rd->got += (size_t)r;
    }
    free(buf);
    return NULL;
}

static int do_echo(const char *addr, int port, size_t bytes)
{
    struct tcpsm_sock *sk;
    long r = tcpsm_socket(&sk);
    if (r < 0)
        die("socket", r);
    struct sockaddr_in dst = sin_of(addr, port);
    if (!tcpsm_rt_routable(dst.sin_addr.s_addr))
        die("routable", 0);
    r = tcpsm_connect(sk, &dst, 0, 10LL * 1000000000);
    if (r < 0)
        die("connect", r);
    printf("ok connect state=%d\n", tcpsm_state(sk));
    struct reader rd = { .sk = sk, .want = bytes };
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &rd);
    uint8_t *buf = malloc(CHUNK * 4);
    uint64_t seed = 0x9e3779b97f4a7c15ull, h = 0xcbf29ce484222325ull;
    size_t sent = 0;
    while (sent < bytes) {
        size_t n = bytes - sent < CHUNK * 4 ? bytes - sent : CHUNK * 4;
        fill(buf, n, &seed);
        h = fnv(h, buf, n);
        /* Two iovecs to exercise the scatter path. */
        struct iovec iov[2] = { { buf, n / 2 }, { buf + n / 2, n - n / 2 } };
        ssize_t w = tcpsm_send(sk, iov, 2, 0, 30LL * 1000000000);
        if (w != (ssize_t)n)
            die("send (blocking send must take all)", w);
        sent += n;
    }
    pthread_join(t, NULL);
    if (rd.got != bytes)
        die("echo length", rd.err ? rd.err : (long)rd.got);
    if (rd.hash != h)
        die("echo checksum mismatch", 0);
    printf("ok echo %zu bytes fnv=%016llx\n", bytes, (unsigned long long)h);
    struct tcpsm_tcp_info ti;
    tcpsm_info(sk, &ti);
    printf("ok info rtt_us=%u cwnd=%u retrans=%u rcv_wscale=%u rcv_wnd=%u\n", ti.rtt_us, ti.snd_cwnd,
           ti.total_retrans, ti.rcv_wscale, ti.rcv_wnd);
    /* Half-close, then the echo server's EOF. */
    tcpsm_shutdown(sk, SHUT_WR);
    uint8_t c;
    struct iovec one = { &c, 1 };
    r = tcpsm_recv(sk, &one, 1, 0, 0, 10LL * 1000000000);
    if (r != 0)
        die("EOF after shutdown", r);
    printf("ok eof\n");
    free(buf);
    tcpsm_close(sk);
    tcpsm_rt_shutdown();
    return 0;
}

static int do_serve(int port)
{
    struct tcpsm_sock *ls, *sk;
    long r = tcpsm_socket(&ls);
    if (r < 0)
        die("socket", r);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if ((r = tcpsm_bind(ls, &any)) < 0)
        die("bind", r);
    if ((r = tcpsm_listen(ls, 16)) < 0)
        die("listen", r);
    printf("ok listening %d\n", port);
    fflush(stdout);
    struct sockaddr_in peer;
    r = tcpsm_accept(ls, &sk, &peer, 0, 30LL * 1000000000);
    if (r < 0)
        die("accept", r);
    char pa[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, pa, sizeof(pa));
    printf("ok accepted %s:%u\n", pa, ntohs(peer.sin_port));
    uint8_t *buf = malloc(CHUNK);
    size_t total = 0;
    for (;;) {
        struct iovec iov = { buf, CHUNK };
        ssize_t n = tcpsm_recv(sk, &iov, 1, 0, 0, 30LL * 1000000000);
        if (n == 0)
            break;
        if (n < 0)
            die("serve recv", n);
        iov.iov_len = (size_t)n;
        ssize_t w = tcpsm_send(sk, &iov, 1, 0, 30LL * 1000000000);
        if (w != n)
            die("serve send", w);
        total += (size_t)n;
    }
    printf("ok served %zu bytes\n", total);
    free(buf);
    tcpsm_close(sk);
    tcpsm_close(ls);
    tcpsm_rt_shutdown();
    return 0;
}

static void on_alarm(int sig) { (void)sig; }

static int do_errors(const char *addr, int open_port, int closed_port)
{
    struct tcpsm_sock *sk;
    long r = tcpsm_socket(&sk);
    if (r < 0)
        die("socket", r);
    struct sockaddr_in dst = sin_of(addr, closed_port);
    r = tcpsm_connect(sk, &dst, 0, 5LL * 1000000000);
    if (r != -ECONNREFUSED)
        die("connect to a closed port must give -ECONNREFUSED", r);
    tcpsm_close(sk);
    printf("ok ECONNREFUSED\n");

    /* SO_SNDTIMEO on a blocking connect to a host that never answers
     * (nobody has 198.18.0.99): -EINPROGRESS, as on Linux. */
    tcpsm_socket(&sk);
    struct sockaddr_in none = sin_of("198.18.0.99", open_port);
    r = tcpsm_connect(sk, &none, 0, 300LL * 1000000);
    if (r != -EINPROGRESS)
        die("blocking connect hitting its timeout must give -EINPROGRESS", r);
    tcpsm_close(sk);
    printf("ok connect timeout EINPROGRESS\n");

    /* Non-blocking connect: -EINPROGRESS, then writable and SO_ERROR 0. */
    tcpsm_socket(&sk);
    dst = sin_of(addr, open_port);
    r = tcpsm_connect(sk, &dst, 1, -1);
    if (r != -EINPROGRESS)
        die("non-blocking connect must give -EINPROGRESS", r);
    int efd = tcpsm_poller_begin();
    if (efd < 0)
        die("poller_begin", efd);
    for (int i = 0; i < 100 && !(tcpsm_poll(sk) & TCPSM_POLLOUT); i++) {
        struct pollfd p = { .fd = efd, .events = POLLIN };
        poll(&p, 1, 100);
        uint64_t v;
        if (p.revents && read(efd, &v, sizeof(v)) < 0)
            break;
    }
    tcpsm_poller_end();
    if (!(tcpsm_poll(sk) & TCPSM_POLLOUT) || tcpsm_error(sk) != 0)
        die("non-blocking connect completion", tcpsm_poll(sk));
    printf("ok non-blocking connect\n");

    /* The server sends nothing: recv with a 200 ms timeout gives -EAGAIN. */
    uint8_t buf[16];
    struct iovec iov = { buf, sizeof(buf) };
    r = tcpsm_recv(sk, &iov, 1, 0, 0, 200LL * 1000000);
    if (r != -EAGAIN)
        die("recv timeout must give -EAGAIN", r);
    printf("ok recv timeout EAGAIN\n");
    r = tcpsm_recv(sk, &iov, 1, 0, 1, -1);
    if (r != -EAGAIN)
        die("non-blocking recv must give -EAGAIN", r);
    printf("ok non-blocking recv EAGAIN\n");

    /* A signal handler interrupts a blocking recv with -EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    r = tcpsm_recv(sk, &iov, 1, 0, 0, 20LL * 1000000000);
    if (r != -EINTR)
        die("recv interrupted by a signal must give -EINTR", r);
    printf("ok recv EINTR\n");
    tcpsm_close(sk);
    tcpsm_rt_shutdown();
    tcpsm_rt_shutdown();        /* idempotent */
    printf("ok shutdown twice\n");
    return 0;
}

static int do_hold(int seconds)
{
    struct tcpsm_sock *sk;
    long r = tcpsm_socket(&sk);
    if (r < 0)
        die("socket", r);
    printf("ok up\n");
    fflush(stdout);
    sleep((unsigned)seconds);
    tcpsm_close(sk);
    tcpsm_rt_shutdown();
    return 0;
}

static int do_send_exit(const char *addr, int port, size_t bytes)
{
    struct tcpsm_sock *sk;
    long r = tcpsm_socket(&sk);
    if (r < 0)
        die("socket", r);
    struct sockaddr_in dst = sin_of(addr, port);
    if ((r = tcpsm_connect(sk, &dst, 0, 10LL * 1000000000)) < 0)
        die("connect", r);
    uint8_t *buf = malloc(bytes ? bytes : 1);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    fill(buf, bytes, &seed);
    /* Non-blocking: whatever fits in the send buffer is left for the exit path. */
    size_t sent = 0;
    while (sent < bytes) {
        struct iovec iov = { buf + sent, bytes - sent };
        ssize_t w = tcpsm_send(sk, &iov, 1, 0, 10LL * 1000000000);
        if (w <= 0)
            die("send", w);
        sent += (size_t)w;
    }
    printf("ok sent %zu bytes fnv=%016llx queued=%d\n", bytes,
           (unsigned long long)fnv(0xcbf29ce484222325ull, buf, bytes), tcpsm_txqueued(sk));
    free(buf);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    tcpsm_rt_shutdown();        /* what the shim's destructor does at exit */
    clock_gettime(CLOCK_MONOTONIC, &b);
    double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("ok exit path took %.3fs\n", el);
    return 0;
}

static struct tcpsm_sock *connected(const char *addr, int port)
{
    struct tcpsm_sock *sk;
    long r = tcpsm_socket(&sk);
    if (r < 0)
        die("socket", r);
    struct sockaddr_in dst = sin_of(addr, port);
    if ((r = tcpsm_connect(sk, &dst, 0, 10LL * 1000000000)) < 0)
        die("connect", r);
    return sk;
}

/* One request/response over an echo connection. */
static void echo_once(struct tcpsm_sock *sk, const char *what)
{
    char out[64], in[64];
    int n = snprintf(out, sizeof(out), "ping %s", what);
    struct iovec o = { out, (size_t)n }, i = { in, (size_t)n };
    long r = tcpsm_send(sk, &o, 1, 0, 5LL * 1000000000);
    if (r != n)
        die("echo send", r);
    r = tcpsm_recv(sk, &i, 1, MSG_WAITALL, 0, 5LL * 1000000000);
    if (r != n || memcmp(in, out, (size_t)n) != 0)
        die("echo reply", r);
}

struct par {
    const char *addr;
    int port;
    size_t bytes;
    uint64_t seed;
    long err;
    pthread_t t;
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    struct tcpsm_sock *sk;
    long r = tcpsm_socket(&sk);
    if (r < 0) {
        p->err = r;
        return NULL;
    }
    struct sockaddr_in dst = sin_of(p->addr, p->port);
    if ((r = tcpsm_connect(sk, &dst, 0, 10LL * 1000000000)) < 0) {
        p->err = r;
        tcpsm_close(sk);
        return NULL;
    }
    /* Send a chunk, read its echo back, compare: one thread per connection. */
    uint8_t *out = malloc(CHUNK), *in = malloc(CHUNK);
    uint64_t seed = p->seed;
    for (size_t done = 0; done < p->bytes && !p->err;) {
        size_t n = p->bytes - done < CHUNK ? p->bytes - done : CHUNK;
        fill(out, n, &seed);
        struct iovec o = { out, n }, i = { in, n };
        if ((r = tcpsm_send(sk, &o, 1, 0, 20LL * 1000000000)) != (long)n)
            p->err = r < 0 ? r : -EIO;
        else if ((r = tcpsm_recv(sk, &i, 1, MSG_WAITALL, 0, 20LL * 1000000000)) != (long)n)
            p->err = r < 0 ? r : -EIO;
        else if (memcmp(in, out, n) != 0)
            p->err = -EBADMSG;
        done += n;
    }
    free(out);
    free(in);
    tcpsm_close(sk);
    return NULL;
}

static int do_parallel(const char *addr, int port, int nthreads, size_t bytes)
{
    struct par *ps = calloc((size_t)nthreads, sizeof(*ps));
    for (int i = 0; i < nthreads; i++) {
        ps[i] = (struct par){ .addr = addr, .port = port, .bytes = bytes,
                              .seed = 0x1234567ull * (uint64_t)(i + 1) };
        pthread_create(&ps[i].t, NULL, par_main, &ps[i]);
    }
    int bad = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(ps[i].t, NULL);
        if (ps[i].err) {
            printf("FAIL parallel thread %d: %ld (%s)\n", i, ps[i].err, strerror((int)-ps[i].err));
            bad = 1;
        }
    }
    free(ps);
    tcpsm_rt_shutdown();
    if (bad)
        return 1;
    printf("ok parallel %d connections x %zu bytes echoed intact\n", nthreads, bytes);
    return 0;
}

static int do_fork(const char *addr, int port)
{
    struct tcpsm_sock *sk = connected(addr, port);
    echo_once(sk, "before fork");
    pid_t pid = fork();
    if (pid == 0) {
        /* The child shares the stack and the connection: it echoes through
         * it, makes a socket of its own, closes both and leaves; none of
         * that ends the parent's connection. */
        echo_once(sk, "in the child");
        struct tcpsm_sock *n;
        int bad = !tcpsm_rt_enabled() || tcpsm_socket(&n) != 0 || tcpsm_close(n) != 0 ||
                  tcpsm_close(sk) != 0;
        tcpsm_rt_shutdown();
        _exit(bad);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("child: echo through the inherited socket, a new socket, close", status);
    printf("ok fork child: echoed through the inherited socket, closed its copy\n");
    echo_once(sk, "after fork");
    printf("ok fork parent connection intact\n");
    tcpsm_close(sk);
    tcpsm_rt_shutdown();
    return 0;
}

static double secs_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static int do_linger(const char *addr, int echo_port, int stall_port)
{
    struct tcpsm_sock *sk = connected(addr, echo_port);
    echo_once(sk, "linger");
    tcpsm_setopt(sk, TCPSM_OPT_LINGER, 1);
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (tcpsm_close(sk) != 0)
        die("close with linger", -1);
    double t = secs_since(&a);
    if (t > 0.5)
        die("linger close on a live peer took too long (ms)", (long)(t * 1000));
    printf("ok linger close, FIN acked in %.3fs\n", t);

    /* A peer that never reads: the data cannot drain, close gives up after 1 s. */
    sk = connected(addr, stall_port);
    static uint8_t buf[4 << 20];
    struct iovec iov = { buf, sizeof(buf) };
    long r = tcpsm_send(sk, &iov, 1, 1, -1);
    if (r <= 0)
        die("fill", r);
    tcpsm_setopt(sk, TCPSM_OPT_LINGER, 1);
    clock_gettime(CLOCK_MONOTONIC, &a);
    tcpsm_close(sk);
    t = secs_since(&a);
    if (t < 0.9 || t > 3)
        die("linger close on a stalled peer must wait about 1 s (ms)", (long)(t * 1000));
    printf("ok linger close gave up after %.3fs\n", t);
    tcpsm_rt_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int c = tcpsm_rt_config();
    if (c < 0)
        return 1;
    if (c == 0) {
        printf("FAIL TCPSM_IF is not set\n");
        return 2;
    }
    if (argc == 5 && strcmp(argv[1], "echo") == 0)
        return do_echo(argv[2], atoi(argv[3]), (size_t)strtoull(argv[4], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return do_serve(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "errors") == 0)
        return do_errors(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "send-exit") == 0)
        return do_send_exit(argv[2], atoi(argv[3]), (size_t)strtoull(argv[4], NULL, 10));
    if (argc == 6 && strcmp(argv[1], "parallel") == 0)
        return do_parallel(argv[2], atoi(argv[3]), atoi(argv[4]),
                           (size_t)strtoull(argv[5], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "fork") == 0)
        return do_fork(argv[2], atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "linger") == 0)
        return do_linger(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 3 && strcmp(argv[1], "hold") == 0)
        return do_hold(atoi(argv[2]));
    fprintf(stderr, "usage: rt_smoke echo ADDR PORT BYTES | serve PORT | "
                    "errors ADDR OPENPORT CLOSEDPORT | hold SECONDS | send-exit ADDR PORT BYTES | "
                    "fork ADDR ECHOPORT | linger ADDR ECHOPORT STALLPORT | "
                    "parallel ADDR ECHOPORT THREADS BYTES\n");
    return 2;
}
