/* The control thread (see runtime_ops.h): serves the control socket and
 * rewrites the stats region once a second (the sockets listed in full only
 * on request). It blocks every signal, like the
 * stack's other threads, and takes the stack lock only inside
 * rt_stats_write(). Failing to set up the run directory or the socket is not
 * fatal: the program runs, only without `tcpsm stat`/`tcpsm capture` (one
 * info line says why). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "runtime_ops.h"

static pthread_t ctl_thr;
static bool ctl_running;
static int ctl_fd = -1, ctl_stop_efd = -1;
static char stat_path[300], sock_path[300];

static void ctl_close_fd(int *fd)
{
    if (*fd >= 0) {
        rt_fd_disown(*fd);
        syscall(SYS_close, *fd);
        *fd = -1;
    }
}

static void reply(int fd, const char *msg)
{
    syscall(SYS_sendto, fd, msg, strlen(msg), MSG_NOSIGNAL, NULL, 0);
}

/* One request: "stat" or "capture". The client writes it right after
 * connecting; a client that does not within a second is dropped. */
static void serve(int fd)
{
    struct timeval tv = { .tv_sec = 1 };
    syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char cmd[64];
    long n = syscall(SYS_recvfrom, fd, cmd, sizeof(cmd) - 1, 0, NULL, NULL);
    if (n <= 0) {
        ctl_close_fd(&fd);
        return;
    }
    cmd[n] = '\0';
    cmd[strcspn(cmd, "\r\n")] = '\0';
    if (strcmp(cmd, "stat") == 0) {
        int r = rt_stats_write(stat_path, RT_STATS_MAX_SOCKS);
        char msg[96];
        snprintf(msg, sizeof(msg), r == 0 ? "ok\n" : "error %s\n", strerror(-r));
        reply(fd, msg);
    } else if (strcmp(cmd, "capture") == 0) {
        int one = 1 << 20;      /* room for a burst; capped by net.core.wmem_max */
        syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
        /* The answer goes first: once added, the frames may follow at once. */
        if (rt_capture_slots() == 0) {
            reply(fd, "busy\n");
        } else {
            reply(fd, "ok\n");
            if (rt_capture_add(fd))
                return;         /* the capture owns fd now */
        }
    } else {
        reply(fd, "error unknown command (stat, capture)\n");
    }
    ctl_close_fd(&fd);
}

static uint64_t mono_ms(void)
{
    return rt_now() / 1000000u;
}

static void *ctl_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-ctl");
    rt_t_runtime = true;
    uint64_t next = 0;
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= next) {
            uint64_t t0 = rt_now();
            rt_stats_write(stat_path, RT_STATS_PERIODIC_SOCKS);
            /* With thousands of sockets a rewrite takes milliseconds (and
             * the lock for the copy): the period grows so that the periodic
             * rewrite costs at most 1% of a core. `tcpsm stat` still gets a
             * fresh one on request. */
            uint64_t took_ms = (rt_now() - t0) / 1000000u;
            next = now + (took_ms * 100 > RT_STATS_PERIOD_MS ? took_ms * 100 : RT_STATS_PERIOD_MS);
        }
        struct pollfd p[2 + RT_CAPTURE_CLIENTS];
        p[0] = (struct pollfd){ .fd = ctl_stop_efd, .events = POLLIN };
        p[1] = (struct pollfd){ .fd = ctl_fd, .events = POLLIN };
        int fds[RT_CAPTURE_CLIENTS];
        unsigned nc = rt_capture_fds(fds, RT_CAPTURE_CLIENTS);
        for (unsigned i = 0; i < nc; i++)
            p[2 + i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
        struct timespec ts = { .tv_sec = (time_t)((next - now) / 1000),
                               .tv_nsec = (long)((next - now) % 1000) * 1000000 };
        long r = syscall(SYS_ppoll, p, 2 + nc, &ts, NULL, 8);
        if (r < 0 && errno != EINTR)
            return NULL;
        if (r <= 0)
            continue;
        if (p[0].revents)
            return NULL;
        bool reap = false;
        for (unsigned i = 0; i < nc; i++)
            reap |= p[2 + i].revents != 0;
        if (reap)
            rt_capture_reap();
        if (p[1].revents & POLLIN) {
            long fd = syscall(SYS_accept4, ctl_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                rt_fd_own((int)fd);
                serve((int)fd);
            }
        }
    }
}

void rt_ctl_start(void)
{
    const char *dir = rt.set.run_dir;
    if (!dir[0] || ctl_running)
        return;
    int pid = (int)getpid();
    snprintf(stat_path, sizeof(stat_path), "%s/%d.json", dir, pid);
    snprintf(sock_path, sizeof(sock_path), "%s/%d.sock", dir, pid);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        tcpsm_log(TCPSM_LOG_INFO, "TCPSM_RUN_DIR=%s: path too long for a socket; no tcpsm "
                  "stat/capture", dir);
        return;
    }
    strcpy(sa.sun_path, sock_path);
    if (syscall(SYS_mkdirat, AT_FDCWD, dir, 0755) < 0 && errno != EEXIST) {
        tcpsm_log(TCPSM_LOG_INFO, "TCPSM_RUN_DIR=%s: %s; no tcpsm stat/capture", dir,
                  strerror(errno));
        return;
    }
    long fd = syscall(SYS_socket, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    ctl_fd = (int)fd;
    rt_fd_own(ctl_fd);
    syscall(SYS_unlinkat, AT_FDCWD, sock_path, 0);      /* left by an image this pid exec'd */
    /* 0600 from the start: no moment where another user could connect. */
    mode_t old = umask(0177);
    long r = syscall(SYS_bind, ctl_fd, &sa, sizeof(sa));
    umask(old);
    if (r < 0 || syscall(SYS_listen, ctl_fd, 8) < 0)
        goto fail;
    long efd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0)
        goto fail;
    ctl_stop_efd = (int)efd;
    rt_fd_own(ctl_stop_efd);
    int e = rt_thread_spawn(&ctl_thr, ctl_main);
    if (e != 0) {
        errno = e;
        goto fail;
    }
    ctl_running = true;
    return;
fail:
    tcpsm_log(TCPSM_LOG_INFO, "control socket %s: %s; no tcpsm stat/capture", sock_path,
              strerror(errno));
    ctl_close_fd(&ctl_fd);
    ctl_close_fd(&ctl_stop_efd);
    syscall(SYS_unlinkat, AT_FDCWD, sock_path, 0);
}

void rt_ctl_stop(void)
{
    if (!ctl_running)
        return;
    uint64_t one = 1;
    syscall(SYS_write, ctl_stop_efd, &one, sizeof(one));
    pthread_join(ctl_thr, NULL);
    ctl_running = false;
    rt_capture_close_all();
    ctl_close_fd(&ctl_fd);
    ctl_close_fd(&ctl_stop_efd);
    syscall(SYS_unlinkat, AT_FDCWD, sock_path, 0);
    syscall(SYS_unlinkat, AT_FDCWD, stat_path, 0);
}

/* fork child: the control thread stayed in the parent, and so do its
 * socket and files (named after the parent's pid): forget them here
 * without touching them (a forked child publishes no stats of its own). */
void rt_ctl_fork_child(void)
{
    if (!ctl_running)
        return;
    ctl_running = false;
    rt_fd_disown(ctl_fd);
    syscall(SYS_close, ctl_fd);
    ctl_fd = -1;
    rt_fd_disown(ctl_stop_efd);
    syscall(SYS_close, ctl_stop_efd);
    ctl_stop_efd = -1;
}
