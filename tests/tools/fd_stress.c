/* fd_stress: several threads open and close files, pipes, stack listeners
 * and stack connections (to api_peer's echo port) as fast as they can, for
 * a bounded time, closing through close(), syscall(SYS_close),
 * close_range(), dup2 over the fd, and a raw system call the shim cannot
 * see (a stale fd-table entry is left behind, as io_uring would). After
 * every step each thread checks every fd it holds: the kernel's identity
 * (fstat: device and inode as recorded at creation) and the shim's (a read
 * of the file's tag byte, a byte through the pipe, getsockname's port of a
 * listener, an echo on a connection, all through the interposed calls).
 * Run it under the library (ASan build included):
 *     fd_stress PEER_IP BASE SECONDS [THREADS]
 * Prints the operation count; exit status 1 on any identity failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "raw_syscall.h"

#define MAXHELD 12
#define NFILES 8

enum kind { K_FILE, K_PIPE, K_LISTEN, K_CONN };

struct held {
    enum kind kind;
    int fd, fd2;                /* fd2: a pipe's write end */
    dev_t dev;
    ino_t ino;
    int tag;                    /* file: its tag byte; listener: its port */
};

static struct in_addr peer_ip;
static int base;
static char dir[] = "/tmp/fd_stress.XXXXXX";
static atomic_int failures;
static atomic_long ops;
static atomic_bool stop;

static void fail(const char *what, const struct held *h)
{
    fprintf(stderr, "fd_stress: FAIL %s: kind %d fd %d (errno %d %s)\n", what, h->kind, h->fd, errno,
            strerror(errno));
    atomic_fetch_add(&failures, 1);
}

static bool record(struct held *h)
{
    struct stat st;
    if (h->fd < 0 || fstat(h->fd, &st) != 0)
        return false;
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    return true;
}

static bool make(struct held *h, unsigned *seed)
{
    memset(h, 0, sizeof(*h));
    h->fd2 = -1;
    int r = (int)(rand_r(seed) % 10);
    if (r < 4) {
        h->kind = K_FILE;
        h->tag = (int)(rand_r(seed) % NFILES);
        char p[64];
        snprintf(p, sizeof(p), "%s/f%d", dir, h->tag);
        h->fd = open(p, O_RDONLY | O_CLOEXEC);
    } else if (r < 6) {
        int p[2];
        h->kind = K_PIPE;
        if (pipe2(p, O_CLOEXEC) != 0)
            return false;
        h->fd = p[0];
        h->fd2 = p[1];
    } else if (r < 9 || base == 0) {
        h->kind = K_LISTEN;
        h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t al = sizeof(a);
        if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(h->fd, 2) < 0 ||
            getsockname(h->fd, (struct sockaddr *)&a, &al) < 0) {
            if (h->fd >= 0)
                close(h->fd);
            return false;
        }
        h->tag = ntohs(a.sin_port);
    } else {
        h->kind = K_CONN;
        h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)base), .sin_addr = peer_ip };
        if (h->fd < 0 || connect(h->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
            if (h->fd >= 0)
                close(h->fd);
            return false;
        }
    }
    return record(h);
}

static bool full_read(int fd, char *b, size_t n, bool via_syscall)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = via_syscall ? syscall(SYS_read, fd, b + got, n - got) : read(fd, b + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* Both identities of one held fd; false (and a FAIL line) if either is wrong. */
static bool check(const struct held *h, unsigned *seed)
{
    struct stat st;
    if (fstat(h->fd, &st) != 0 || st.st_dev != h->dev || st.st_ino != h->ino) {
        fail("fstat: the fd is no longer what was opened", h);
        return false;
    }
    bool sys = rand_r(seed) & 1;
    switch (h->kind) {
    case K_FILE: {
        char b = 0;
        if (lseek(h->fd, 0, SEEK_SET) != 0 || !full_read(h->fd, &b, 1, sys) || b != 'A' + h->tag) {
            fail("file read through the shim", h);
            return false;
        }
        return true;
    }
    case K_PIPE: {
        char b = 0;
        if (write(h->fd2, "q", 1) != 1 || !full_read(h->fd, &b, 1, sys) || b != 'q') {
            fail("pipe byte through the shim", h);
            return false;
        }
        return true;
    }
    case K_LISTEN: {
        struct sockaddr_in a;
        socklen_t al = sizeof(a);
        memset(&a, 0, sizeof(a));
        if (getsockname(h->fd, (struct sockaddr *)&a, &al) != 0 || ntohs(a.sin_port) != h->tag) {
            fail("listener's port through the shim", h);
            return false;
        }
        return true;
    }
    case K_CONN: {
        char out[4], in[4];
        for (int i = 0; i < 4; i++)
            out[i] = (char)rand_r(seed);
        ssize_t w = sys ? syscall(SYS_write, h->fd, out, 4) : write(h->fd, out, 4);
        if (w != 4 || !full_read(h->fd, in, 4, !sys) || memcmp(in, out, 4) != 0) {
            fail("echo through the shim", h);
            return false;
        }
        return true;
    }
    }
    return false;
}

static void drop(struct held *h, unsigned *seed)
{
    int how = (int)(rand_r(seed) % 5);
    int fds[2] = { h->fd, h->fd2 };
    for (int i = 0; i < 2; i++) {
        int fd = fds[i];
        if (fd < 0)
            continue;
        switch (how) {
        case 0:
            close(fd);
            break;
        case 1:
            syscall(SYS_close, fd);
            break;
        case 2:
            raw_close(fd);      /* behind the shim's back: a stale entry stays */
            break;
        case 3:
            syscall(SYS_close_range, fd, fd, 0);
            break;
        case 4: {               /* dup2 a file over it, then close that */
            int f = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (f >= 0 && dup2(f, fd) == fd)
                close(fd);
            else
                close(fd);
            close(f);
            break;
        }
        }
    }
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
    struct held held[MAXHELD];
    int n = 0;
    while (!atomic_load(&stop) && atomic_load(&failures) == 0) {
        bool add = n == 0 || (n < MAXHELD && (rand_r(&seed) % 3) != 0);
        if (add) {
            if (make(&held[n], &seed))
                n++;
        } else {
            int i = (int)(rand_r(&seed) % (unsigned)n);
            drop(&held[i], &seed);
            held[i] = held[--n];
        }
        atomic_fetch_add(&ops, 1);
        for (int i = 0; i < n; i++)
            if (!check(&held[i], &seed))
                break;
    }
    for (int i = 0; i < n; i++)
        drop(&held[i], &seed);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4 || inet_pton(AF_INET, argv[1], &peer_ip) != 1) {
        fprintf(stderr, "usage: fd_stress PEER_IP BASE SECONDS [THREADS] (BASE 0: no connections)\n");
        return 2;
    }
    base = atoi(argv[2]);
    int secs = atoi(argv[3]);
    int nth = argc > 4 ? atoi(argv[4]) : 4;
    if (secs < 1 || secs > 600 || nth < 1 || nth > 32) {
        fprintf(stderr, "fd_stress: SECONDS 1..600, THREADS 1..32\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    for (int i = 0; i < NFILES; i++) {
        char p[64];
        snprintf(p, sizeof(p), "%s/f%d", dir, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char c = (char)('A' + i);
        if (fd < 0 || write(fd, &c, 1) != 1) {
            perror("fd_stress: files");
            return 2;
        }
        close(fd);
    }
    pthread_t t[32];
    for (int i = 0; i < nth; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int s = 0; s < secs * 10 && atomic_load(&failures) == 0; s++)
        usleep(100 * 1000);
    atomic_store(&stop, true);
    for (int i = 0; i < nth; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NFILES; i++) {
        char p[64];
        snprintf(p, sizeof(p), "%s/f%d", dir, i);
        unlink(p);
    }
    rmdir(dir);
    printf("fd_stress: %ld operations in %d thread(s), %d failure(s)\n", atomic_load(&ops), nth,
           atomic_load(&failures));
    return atomic_load(&failures) ? 1 : 0;
}
