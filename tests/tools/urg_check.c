/* urg_check: urgent data (MSG_OOB, SO_OOBINLINE, SIOCATMARK, POLLPRI and
 * EPOLLPRI) seen by a receiver, as a transcript to compare between the
 * kernel's TCP and the stack (test_urgent.sh runs the same scenario on both
 * and diffs the transcripts).
 *
 *   urg_check recv ADDR PORT SCENARIO [inline]   accept one connection, wait for
 *       the sender's FIN (POLLRDHUP: every byte has arrived, so the transcript
 *       does not depend on timing), then read, printing each step
 *   urg_check send ADDR PORT SCENARIO            connect, send the scenario's
 *       pieces, shutdown(SHUT_WR), wait for EOF
 *
 * Scenarios: 1 "abc", OOB "X", "def"       one urgent byte
 *            2 "ab", OOB "1", "cd", OOB "2", "ef"   a second pointer replaces the first
 *            3 OOB "Z" alone                the urgent byte is the only data
 *            4 as 1, and the receiver owns the socket (F_SETOWN): it prints how
 *              many SIGURG it got, then reads with MSG_WAITALL (which stops at
 *              the mark, as every read does once it has data)
 * Exit status 0 when the steps ran (the transcript is what is checked). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct piece { const char *s; int oob; };

static const struct piece scen1[] = { { "abc", 0 }, { "X", 1 }, { "def", 0 }, { NULL, 0 } };
static const struct piece scen2[] = { { "ab", 0 }, { "1", 1 }, { "cd", 0 }, { "2", 1 },
                                      { "ef", 0 }, { NULL, 0 } };
static const struct piece scen3[] = { { "Z", 1 }, { NULL, 0 } };

static const struct piece *scenario(int n)
{
    return n == 1 || n == 4 ? scen1 : n == 2 ? scen2 : n == 3 ? scen3 : NULL;
}

static void fail(const char *what)
{
    fprintf(stderr, "urg_check: %s: %s\n", what, strerror(errno));
    exit(2);
}

static struct sockaddr_in addr_of(const char *a, const char *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
    if (inet_pton(AF_INET, a, &sa.sin_addr) != 1) {
        fprintf(stderr, "urg_check: bad address %s\n", a);
        exit(2);
    }
    return sa;
}

static void show_poll(int fd, int ep)
{
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLPRI | POLLRDHUP };
    poll(&p, 1, 0);
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, 0);
    printf("poll:%s%s%s epoll:%s%s\n", p.revents & POLLIN ? " in" : "",
           p.revents & POLLPRI ? " pri" : "", p.revents & POLLRDHUP ? " rdhup" : "",
           n == 1 && (ev.events & EPOLLIN) ? " in" : "", n == 1 && (ev.events & EPOLLPRI) ? " pri" : "");
}

static void show_mark(int fd)
{
    int m = -1, q = -1;
    if (ioctl(fd, SIOCATMARK, &m) < 0)
        fail("SIOCATMARK");
    if (ioctl(fd, FIONREAD, &q) < 0)
        fail("FIONREAD");
    printf("atmark %d fionread %d\n", m, q);
}

static void show_read(int fd, int flags, size_t len)
{
    char buf[64];
    ssize_t n = recv(fd, buf, len, flags | MSG_DONTWAIT);
    const char *what = flags & MSG_OOB ? (flags & MSG_PEEK ? "oob-peek" : "oob") : "read";
    if (n < 0)
        printf("%s -> %s\n", what, errno == EINVAL ? "EINVAL" : errno == EAGAIN ? "EAGAIN"
                                                  : strerror(errno));
    else
        printf("%s -> %zd \"%.*s\"\n", what, n, (int)n, buf);
}

static volatile sig_atomic_t sigurgs;

static void on_sigurg(int sig)
{
    (void)sig;
    sigurgs++;
}

static int do_recv(const char *a, const char *port, int scen, int inl)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (inl && setsockopt(l, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)) < 0)
        fail("SO_OOBINLINE");
    struct sockaddr_in sa = addr_of(a, port);
    if (bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 4) < 0)
        fail("bind/listen");
    fprintf(stderr, "urg_check: ready\n");
    int c = accept(l, NULL, NULL);
    if (c < 0)
        fail("accept");
    if (scen == 4) {
        struct sigaction act = { .sa_handler = on_sigurg, .sa_flags = SA_RESTART };
        sigemptyset(&act.sa_mask);
        if (sigaction(SIGURG, &act, NULL) < 0 || fcntl(c, F_SETOWN, getpid()) < 0)
            fail("F_SETOWN");
        printf("owner %s\n", fcntl(c, F_GETOWN) == getpid() ? "me" : "other");
    }
    int v = -1;
    socklen_t vl = sizeof(v);
    getsockopt(c, SOL_SOCKET, SO_OOBINLINE, &v, &vl);
    printf("oobinline %d\n", v);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLPRI, .data.fd = c };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
        fail("epoll_ctl");
    /* every byte and the FIN have arrived */
    for (int i = 0; i < 1000; i++) {
        struct pollfd p = { .fd = c, .events = POLLRDHUP };
        if (poll(&p, 1, 10) == 1 && (p.revents & POLLRDHUP))
            break;
    }
    if (scen == 4) {
        printf("sigurg %d\n", (int)sigurgs);
        char buf[64];
        ssize_t n = recv(c, buf, sizeof(buf), MSG_WAITALL);
        printf("waitall -> %zd \"%.*s\"\n", n, n > 0 ? (int)n : 0, buf);
    }
    show_poll(c, ep);
    show_mark(c);
    show_read(c, MSG_OOB | MSG_PEEK, 1);
    for (int step = 0; step < 4; step++) {
        show_read(c, 0, 64);
        show_mark(c);
        show_poll(c, ep);
        show_read(c, MSG_OOB, 1);
        show_read(c, MSG_OOB, 1);
        show_poll(c, ep);
    }
    if (write(c, "k", 1) != 1)
        fail("write");
    close(c);
    close(l);
    return 0;
}

static int do_send(const char *a, const char *port, int scen)
{
    const struct piece *p = scenario(scen);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = addr_of(a, port);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        fail("connect");
    for (; p->s; p++) {
        if (send(s, p->s, strlen(p->s), p->oob ? MSG_OOB : 0) != (ssize_t)strlen(p->s))
            fail("send");
        /* one segment per piece, as far as timing goes (the transcript
         * does not depend on it: the receiver waits for the FIN) */
        nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
    }
    shutdown(s, SHUT_WR);
    char b[16];
    while (read(s, b, sizeof(b)) > 0)
        ;
    close(s);
    printf("sent\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && !strcmp(argv[1], "recv") && scenario(atoi(argv[4])))
        return do_recv(argv[2], argv[3], atoi(argv[4]), argc > 5 && !strcmp(argv[5], "inline"));
    if (argc >= 5 && !strcmp(argv[1], "send") && scenario(atoi(argv[4])))
        return do_send(argv[2], argv[3], atoi(argv[4]));
    fprintf(stderr, "usage: urg_check recv ADDR PORT 1|2|3|4 [inline] | send ADDR PORT 1|2|3|4\n");
    return 2;
}
