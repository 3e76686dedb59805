/* One epoll instance shared across fork (issue 6), the Linux way.
 *
 *   ep_fork PORT N
 *
 * The parent listens on PORT, makes an epoll instance with the listener in
 * it, forks, then closes its own copy of the listener and waits for the
 * child. The listener's item stays in the instance (Linux removes an item
 * only when the last fd on its open file description closes: the child
 * still holds it). The child serves N connections one at a time through
 * the inherited instance: it ADDs each accepted connection to it, echoes
 * what arrives, and at EOF checks MOD (0), DEL (0) and DEL again (ENOENT)
 * on it, then closes it. Prints "ok N" and exits 0; any failure: a line on
 * stderr and exit 1. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *what)
{
    fprintf(stderr, "ep_fork: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fail("write");
        }
        b += w;
        n -= (size_t)w;
    }
}

static int child(int ep, int l, int go, int n)
{
    char c;
    if (read(go, &c, 1) != 1)   /* the parent has closed its listener */
        fail("read go");
    int served = 0, conn = -1;
    static char buf[65536];
    while (served < n) {
        struct epoll_event ev[4];
        int k = epoll_wait(ep, ev, 4, 20000);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            errno = k == 0 ? ETIMEDOUT : errno;
            fail("epoll_wait (the listener's item left with the parent's close?)");
        }
        for (int i = 0; i < k; i++) {
            if (ev[i].data.fd == l) {
                if (conn >= 0)
                    continue;   /* one at a time: the next one waits in the queue */
                conn = accept(l, NULL, NULL);
                if (conn < 0)
                    fail("accept");
                struct epoll_event e = { .events = EPOLLIN, .data.fd = conn };
                if (epoll_ctl(ep, EPOLL_CTL_ADD, conn, &e) < 0)
                    fail("child's EPOLL_CTL_ADD on the inherited instance");
                if (epoll_ctl(ep, EPOLL_CTL_ADD, conn, &e) == 0 || errno != EEXIST)
                    fail("second EPOLL_CTL_ADD (want EEXIST)");
            } else if (ev[i].data.fd == conn) {
                ssize_t r = read(conn, buf, sizeof(buf));
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                    continue;
                if (r < 0)
                    fail("read");
                if (r > 0) {
                    write_all(conn, buf, (size_t)r);
                    continue;
                }
                struct epoll_event e = { .events = EPOLLIN | EPOLLOUT, .data.fd = conn };
                if (epoll_ctl(ep, EPOLL_CTL_MOD, conn, &e) < 0)
                    fail("child's EPOLL_CTL_MOD");
                if (epoll_ctl(ep, EPOLL_CTL_DEL, conn, NULL) < 0)
                    fail("child's EPOLL_CTL_DEL");
                if (epoll_ctl(ep, EPOLL_CTL_DEL, conn, NULL) == 0 || errno != ENOENT)
                    fail("second EPOLL_CTL_DEL (want ENOENT)");
                close(conn);
                conn = -1;
                served++;
            }
        }
    }
    printf("ok %d\n", served);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ep_fork PORT N\n");
        return 2;
    }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (l < 0)
        fail("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 16) < 0)
        fail("bind/listen");
    int ep = epoll_create1(0);
    if (ep < 0)
        fail("epoll_create1");
    struct epoll_event e = { .events = EPOLLIN, .data.fd = l };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, l, &e) < 0)
        fail("EPOLL_CTL_ADD listener");
    int go[2];
    if (pipe(go) < 0)
        fail("pipe");
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        close(go[1]);
        return child(ep, l, go[0], n);
    }
    close(go[0]);
    close(l);                   /* the child's copy keeps the listener and its item */
    printf("listening\n");
    fflush(stdout);
    if (write(go[1], "g", 1) != 1)
        fail("write go");
    int st;
    if (waitpid(pid, &st, 0) < 0)
        fail("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
