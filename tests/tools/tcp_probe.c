/* tcp_probe — a small TCP client/server for the integration tests' error paths.
 *
 * It reports exactly what the socket API said (errno names, byte counts) and checks the
 * bytes against a position-dependent pattern, so a test can tell "reset after N good
 * bytes" from "clean EOF" or "corrupted data". Run it through build/tcpsm for the stack,
 * or plainly for the kernel.
 *
 *   tcp_probe connect HOST PORT [--connect-timeout MS] [--user-timeout MS]
 *             [--send BYTES [--pause-after BYTES --pause-file PATH]] [--recv]
 *             [--wait-file PATH] [--exit-after BYTES] [--rcvbuf BYTES] [--max-seconds N]
 *   tcp_probe serve PORT [--bind ADDR] [--send BYTES] [--rst-after BYTES] [--http]
 *             [--sink] [--close-exit] [--max-seconds N]
 *
 * --wait-file: before reading, print "waiting" and wait until PATH exists (an application
 * that stops reading, for flow-control tests).
 * --exit-after: once BYTES are received, exit(0) with the socket still open (what the
 * library does with connections a process leaves behind).
 * --rcvbuf: SO_RCVBUF before connect (a small window that a peer not reading closes soon).
 * --close-exit: serve only; once --send has been queued, close() and exit(0) at once: the
 * connection, its data maybe unsent, is an orphan the library must end at exit.
 * Output: one line "result=ok|error errno=NAME sent=N received=N pattern=ok|bad ...".
 * Exit status: 0 ok, 1 a socket call failed (errno printed), 2 usage, 3 time limit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t g_sent, g_received;
static int g_pattern_bad;
static uint64_t g_bad_at;

static uint8_t pattern_byte(uint64_t i)
{
    return (uint8_t)((i ^ (i >> 8) ^ (i >> 16) ^ (i >> 24)) * 167u + 13u);
}

static void fill(uint8_t *buf, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern_byte(off + i);
}

static void check(const uint8_t *buf, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n && !g_pattern_bad; i++)
        if (buf[i] != pattern_byte(off + i)) {
            g_pattern_bad = 1;
            g_bad_at = off + i;
        }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double g_t0;

static void report(const char *result, int err)
{
    char line[256];
    int n = snprintf(line, sizeof line,
                     "result=%s errno=%s sent=%llu received=%llu pattern=%s ms=%.0f\n", result,
                     err ? strerrorname_np(err) : "0", (unsigned long long)g_sent,
                     (unsigned long long)g_received, g_pattern_bad ? "bad" : "ok",
                     now_ms() - g_t0);
    if (g_pattern_bad)
        fprintf(stderr, "pattern mismatch at byte %llu\n", (unsigned long long)g_bad_at);
    if (n > 0 && write(1, line, (size_t)n) < 0)
        _exit(4);
}

static void on_alarm(int sig)
{
    report(sig == SIGALRM ? "time-limit" : "terminated", 0);
    _exit(3);
}

static int fail(const char *what, int err)
{
    fprintf(stderr, "tcp_probe: %s: %s\n", what, strerror(err));
    report("error", err);
    return 1;
}

static int usage_to(FILE *f)
{
    fputs("usage: tcp_probe connect HOST PORT [--connect-timeout MS] [--user-timeout MS]\n"
          "                 [--send BYTES [--pause-after BYTES --pause-file PATH]] [--recv]\n"
          "                 [--wait-file PATH] [--exit-after BYTES] [--rcvbuf BYTES]\n"
          "                 [--max-seconds N]\n"
          "       tcp_probe serve PORT [--bind ADDR] [--send BYTES] [--rst-after BYTES]\n"
          "                 [--http] [--sink] [--close-exit] [--max-seconds N]\n",
          f);
    return 2;
}

static int usage(void)
{
    return usage_to(stderr);
}

struct opts {
    long connect_timeout_ms, user_timeout_ms, max_seconds;
    unsigned long long send, pause_after, rst_after, exit_after;
    const char *pause_file, *bind_addr, *wait_file;
    int recv, http, sink, close_exit;
    long rcvbuf;
};

static unsigned long long num(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    else if (*end == 'G' || *end == 'g')
        v <<= 30, end++;
    if (*end) {
        fprintf(stderr, "tcp_probe: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

static int parse(int argc, char **argv, int i, struct opts *o)
{
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--recv")) o->recv = 1;
        else if (!strcmp(a, "--http")) o->http = 1;
        else if (!strcmp(a, "--sink")) o->sink = 1;
        else if (!strcmp(a, "--close-exit")) o->close_exit = 1;
        else if (!v) return -1;
        else if (!strcmp(a, "--connect-timeout")) o->connect_timeout_ms = (long)num(v), i++;
        else if (!strcmp(a, "--user-timeout")) o->user_timeout_ms = (long)num(v), i++;
        else if (!strcmp(a, "--max-seconds")) o->max_seconds = (long)num(v), i++;
        else if (!strcmp(a, "--send")) o->send = num(v), i++;
        else if (!strcmp(a, "--pause-after")) o->pause_after = num(v), i++;
        else if (!strcmp(a, "--rst-after")) o->rst_after = num(v), i++;
        else if (!strcmp(a, "--exit-after")) o->exit_after = num(v), i++;
        else if (!strcmp(a, "--pause-file")) o->pause_file = v, i++;
        else if (!strcmp(a, "--bind")) o->bind_addr = v, i++;
        else if (!strcmp(a, "--wait-file")) o->wait_file = v, i++;
        else if (!strcmp(a, "--rcvbuf")) o->rcvbuf = (long)num(v), i++;
        else return -1;
    }
    return 0;
}

/* Sends `total` pattern bytes; stops early at `stop_at` (0: never). Returns 0 or an errno. */
static int send_pattern(int fd, uint64_t total, uint64_t stop_at)
{
    static uint8_t buf[65536];
    while (g_sent < total && (!stop_at || g_sent < stop_at)) {
        uint64_t want = total - g_sent;
        if (stop_at && stop_at - g_sent < want)
            want = stop_at - g_sent;
        if (want > sizeof buf)
            want = sizeof buf;
        fill(buf, (size_t)want, g_sent);
        ssize_t n = send(fd, buf, (size_t)want, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        g_sent += (uint64_t)n;
    }
    return 0;
}

static uint64_t g_exit_after;

/* Reads to EOF (0) or an error (its errno), checking the pattern. */
static int recv_pattern(int fd, uint64_t base)
{
    static uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        check(buf, (size_t)n, g_received - base);
        g_received += (uint64_t)n;
        if (g_exit_after && g_received >= g_exit_after) {
            report("exit", 0);
            exit(0); /* the socket stays open: process exit must deal with it */
        }
    }
}

static int do_connect(const char *host, const char *port, struct opts *o)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)num(port)) };
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return usage();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return fail("socket", errno);
    if (o->rcvbuf) {
        int v = (int)o->rcvbuf;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) < 0)
            return fail("setsockopt SO_RCVBUF", errno);
    }
    if (o->user_timeout_ms) {
        unsigned v = (unsigned)o->user_timeout_ms;
        if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, sizeof v) < 0)
            return fail("setsockopt TCP_USER_TIMEOUT", errno);
    }
    if (o->connect_timeout_ms) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return fail("fcntl O_NONBLOCK", errno);
        if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
            if (errno != EINPROGRESS)
                return fail("connect", errno);
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int r = poll(&p, 1, (int)o->connect_timeout_ms);
            if (r < 0)
                return fail("poll", errno);
            if (r == 0) {
                fprintf(stderr, "tcp_probe: connect: no answer in %ld ms\n", o->connect_timeout_ms);
                report("connect-timeout", 0);
                return 1;
            }
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                return fail("getsockopt SO_ERROR", errno);
            if (err)
                return fail("connect (SO_ERROR)", err);
        }
        if (fcntl(fd, F_SETFL, fl) < 0)
            return fail("fcntl", errno);
    } else if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        return fail("connect", errno);
    }
    fprintf(stderr, "tcp_probe: connected in %.0f ms\n", now_ms() - g_t0);

    if (o->send) {
        int err = send_pattern(fd, o->send, o->pause_after);
        if (err)
            return fail("send", err);
        if (o->pause_after && g_sent < o->send) {
            printf("paused sent=%llu\n", (unsigned long long)g_sent);
            fflush(stdout);
            struct stat st;
            while (o->pause_file && stat(o->pause_file, &st) < 0)
                usleep(20000); /* bounded by --max-seconds */
            err = send_pattern(fd, o->send, 0);
            if (err)
                return fail("send", err);
        }
        if (shutdown(fd, SHUT_WR) < 0)
            return fail("shutdown", errno);
    }
    if (o->wait_file) {
        printf("waiting\n");
        fflush(stdout);
        struct stat st;
        while (stat(o->wait_file, &st) < 0)
            usleep(20000); /* bounded by --max-seconds */
    }
    if (o->recv || o->send) {
        int err = recv_pattern(fd, 0);
        if (err)
            return fail("recv", err);
    }
    if (close(fd) < 0)
        return fail("close", errno);
    report("ok", 0);
    return g_pattern_bad ? 1 : 0;
}

/* Reads an HTTP request head (up to the blank line); bounded. */
static int read_request(int fd)
{
    char buf[8192];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (n <= 0)
            return n == 0 ? ECONNABORTED : errno;
        have += (size_t)n;
        buf[have] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return EMSGSIZE;
}

static int do_serve(const char *port, struct opts *o)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)num(port)) };
    if (o->bind_addr && inet_pton(AF_INET, o->bind_addr, &sin.sin_addr) != 1)
        return usage();
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        return fail("socket", errno);
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return fail("setsockopt SO_REUSEADDR", errno);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0)
        return fail("bind", errno);
    if (listen(lfd, 8) < 0)
        return fail("listen", errno);
    printf("listening port=%s\n", port);
    fflush(stdout);
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return fail("accept", errno);
    g_t0 = now_ms();
    if (o->http) {
        int err = read_request(fd);
        if (err)
            return fail("read request", err);
        char head[128];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\nConnection: close\r\n\r\n",
                         (unsigned long long)o->send);
        if (send(fd, head, (size_t)n, MSG_NOSIGNAL) != n)
            return fail("send header", errno);
    }
    if (o->send) {
        int err = send_pattern(fd, o->send, o->rst_after);
        if (err)
            return fail("send", err);
        if (o->rst_after && g_sent < o->send) {
            /* Abortive close (RFC 9293 3.10.4 ABORT): SO_LINGER 0 makes close send RST. */
            struct linger lg = { .l_onoff = 1, .l_linger = 0 };
            if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
                return fail("setsockopt SO_LINGER", errno);
            close(fd);
            report("reset", 0);
            return 0;
        }
    }
    if (o->close_exit) {
        if (close(fd) < 0)
            return fail("close", errno);
        report("closed", 0);
        exit(0); /* the listener stays open too: process exit must deal with both */
    }
    if (o->sink) {
        int err = recv_pattern(fd, 0);
        if (err)
            return fail("recv", err);
    } else {
        shutdown(fd, SHUT_WR);
        char c;
        while (recv(fd, &c, 1, 0) > 0) /* wait for the client's close */
            ;
    }
    close(fd);
    close(lfd);
    report("ok", 0);
    return g_pattern_bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o = { 0 };
    g_t0 = now_ms();
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage_to(stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_alarm); /* a test stopping us still gets the counts */
    if (argc >= 4 && !strcmp(argv[1], "connect")) {
        if (parse(argc, argv, 4, &o) < 0)
            return usage();
        if (o.max_seconds) {
            signal(SIGALRM, on_alarm);
            alarm((unsigned)o.max_seconds);
        }
        g_exit_after = o.exit_after;
        return do_connect(argv[2], argv[3], &o);
    }
    if (argc >= 3 && !strcmp(argv[1], "serve")) {
        if (parse(argc, argv, 3, &o) < 0)
            return usage();
        if (o.max_seconds) {
            signal(SIGALRM, on_alarm);
            alarm((unsigned)o.max_seconds);
        }
        return do_serve(argv[2], &o);
    }
    return usage();
}
