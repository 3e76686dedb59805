/* api_peer: the kernel-side peer for api_check (runs WITHOUT the library, in
 * the peer namespace). Listens on ADDR at BASE..BASE+3, one behaviour per
 * port, a child process per connection:
 *   BASE+0 echo everything back until EOF
 *   BASE+1 read one byte, then close with SO_LINGER 0 (the peer sees RST)
 *   BASE+2 send "hello", then close (the peer sees data, then EOF)
 *   BASE+3 send nothing, read until EOF, then close
 * Exits (and every child with it) after SECONDS.
 * Usage: api_peer ADDR BASE SECONDS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NPORTS 4

static void serve(int kind, int c)
{
    char buf[65536];
    ssize_t n;
    switch (kind) {
    case 0:
        while ((n = read(c, buf, sizeof(buf))) > 0) {
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(c, buf + off, (size_t)(n - off));
                if (w <= 0)
                    return;
                off += w;
            }
        }
        return;
    case 1: {
        if (read(c, buf, 1) != 1)
            return;
        struct linger l = { 1, 0 };
        setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        return;
    }
    case 2:
        if (write(c, "hello", 5) != 5)
            return;
        return;
    default:
        while (read(c, buf, sizeof(buf)) > 0)
            ;
        return;
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: api_peer ADDR BASE SECONDS\n");
        return 2;
    }
    int base = atoi(argv[2]);
    unsigned secs = (unsigned)atoi(argv[3]);
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    alarm(secs);
    struct pollfd p[NPORTS];
    for (int i = 0; i < NPORTS; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(base + i)) };
        if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 ||
            bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 64) < 0) {
            fprintf(stderr, "api_peer: port %d: %s\n", base + i, strerror(errno));
            return 1;
        }
        p[i].fd = s;
        p[i].events = POLLIN;
    }
    printf("api_peer: ready\n");
    fflush(stdout);
    for (;;) {
        if (poll(p, NPORTS, -1) < 0 && errno != EINTR)
            return 1;
        for (int i = 0; i < NPORTS; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            int c = accept(p[i].fd, NULL, NULL);
            if (c < 0)
                continue;
            pid_t pid = fork();
            if (pid == 0) {
                alarm(secs);
                for (int j = 0; j < NPORTS; j++)
                    close(p[j].fd);
                serve(i, c);
                close(c);
                _exit(0);
            }
            close(c);
        }
    }
}
