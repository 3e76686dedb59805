/* epoll_echo: an edge-triggered, non-blocking echo server, the way event
 * loops (nginx, redis) drive their sockets: accept4 until EAGAIN, read
 * until EAGAIN, write until EAGAIN and then wait for EPOLLOUT.
 *     epoll_echo [-a ADDR] [-p PORT] [-n CONNS]
 * ADDR defaults to 0.0.0.0, PORT to 7000; with -n it exits 0 after CONNS
 * connections have closed. Prints "listening" once ready, one line per
 * closed connection with its byte count, and exits 1 on any unexpected error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXC 1024
#define BUFSZ (256 * 1024)

struct conn {
    int fd;
    char *buf;                  /* bytes read but not yet echoed */
    size_t off, len;
    unsigned long long total;
    int rd_eof;
};

static struct conn *conns[MAXC];

static void die(const char *what)
{
    fprintf(stderr, "epoll_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void conn_close(int ep, struct conn *c, long *closed)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    printf("closed fd=%d bytes=%llu\n", c->fd, c->total);
    fflush(stdout);
    conns[c->fd] = NULL;
    free(c->buf);
    free(c);
    (*closed)++;
}

/* Echo what is buffered; returns 0 when all was written, 1 if the socket is
 * full (EPOLLOUT will come), -1 on error. */
static int flush_out(struct conn *c)
{
    while (c->off < c->len) {
        ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN ? 1 : -1;
        c->off += (size_t)w;
    }
    c->off = c->len = 0;
    return 0;
}

/* Runs on every edge: read until EAGAIN (or the buffer is full and must be
 * written first), write until EAGAIN. Returns -1 to close. */
static int serve(struct conn *c)
{
    for (;;) {
        int f = flush_out(c);
        if (f < 0)
            return -1;
        if (f > 0)
            return 0;           /* wait for EPOLLOUT; reading more would only grow the buffer */
        if (c->rd_eof)
            return -1;          /* all echoed, the peer is done sending */
        ssize_t n = recv(c->fd, c->buf, BUFSZ, 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0) {
            c->rd_eof = 1;
            continue;
        }
        c->len = (size_t)n;
        c->total += (unsigned long long)n;
    }
}

int main(int argc, char **argv)
{
    const char *addr = "0.0.0.0";
    int port = 7000, opt;
    long want = -1, closed = 0;
    while ((opt = getopt(argc, argv, "a:p:n:")) != -1) {
        switch (opt) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': want = atol(optarg); break;
        default:
            fprintf(stderr, "usage: epoll_echo [-a ADDR] [-p PORT] [-n CONNS]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (l < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        die("socket/address");
    if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        die("SO_REUSEADDR");
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 128) < 0)
        die("bind/listen");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = l };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) < 0)
        die("epoll");
    printf("listening on %s:%d\n", addr, port);
    fflush(stdout);
    struct epoll_event evs[64];
    while (want < 0 || closed < want) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                for (;;) {
                    int c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (c < 0) {
                        if (errno == EAGAIN)
                            break;
                        if (errno == ECONNABORTED || errno == EINTR)
                            continue;
                        die("accept4");
                    }
                    if (c >= MAXC) {
                        close(c);
                        continue;
                    }
                    struct conn *cn = calloc(1, sizeof(*cn));
                    if (!cn || !(cn->buf = malloc(BUFSZ)))
                        die("malloc");
                    cn->fd = c;
                    conns[c] = cn;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event cev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                               .data.fd = c };
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
                        die("epoll_ctl ADD");
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (!c)
                continue;
            if (serve(c) < 0)
                conn_close(ep, c, &closed);
        }
    }
    close(ep);
    close(l);
    return 0;
}
