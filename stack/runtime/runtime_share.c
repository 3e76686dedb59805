/* A privileged program as the stack's owner (TCPSM_SHARE, share.h): when
 * a process that can open the link (CAP_NET_RAW) starts on the stack with
 * TCPSM_SHARE set, a thread of it serves the socket file next to the region
 * with the owner, group and mode TCPSM_SHARE gives (default: this process's
 * user and group, 0600), handing processes without the capability a link
 * socket of their own (send-only; they make it receive) and the region's fd.
 * One owner per stack (its pid in the region, share_pid): a process that
 * finds a live one serves nothing but stands by. The file goes when the
 * owner leaves the stack; processes attached through it keep their link
 * sockets, and a process standing by (TCPSM_SHARE set, CAP_NET_RAW still
 * held: checked when it takes over) takes over when its service thread
 * sees the owner gone: the owner leaving, or another process reaping it
 * when it died (rt_reap, within a second), clears share_pid and kicks
 * every process. A forked child does not serve
 * its parent's file (the thread is the parent's; the child closes its copy
 * of the listening socket) but stands by as its parent did. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"
#include "share.h"

static int lfd = -1, stop_efd = -1;
static pthread_t thr;
static struct stat mine;
static char path[200], region_path[200];
static struct share_perm perm;
static bool standby;            /* TCPSM_SHARE set and valid: serve when nobody does */
static uint64_t next_try;       /* takeover attempts, at most one a second */

#define TRY_EVERY_NS 1000000000ull

static int open_link(void *ctx)
{
    (void)ctx;
    bool vnet;
    char err[256];
    int fd = netdev_packet_tx_socket(rt.set.ifname, rt.np.vnet ? 0 : NETDEV_PACKET_NO_VNET,
                                     &vnet, err, sizeof(err));
    if (fd < 0)
        tcpsm_log(TCPSM_LOG_WARN, "TCPSM_SHARE: %s", err);
    return fd;
}

static void *serve(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tcpsm-share");
    rt_t_runtime = true;
    for (;;) {
        struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = stop_efd, .events = POLLIN } };
        if (syscall(SYS_ppoll, p, 2, NULL, NULL, 8) < 0 && errno != EINTR)
            return NULL;
        if (p[1].revents)
            return NULL;
        if (p[0].revents & POLLIN)
            share_serve_one(lfd, open_link, NULL, region_path);
    }
}

/* Under lock: serve the socket file if nobody else does. */
static void serve_start(const char *how)
{
    int owner = rt.sh->share_pid;
    if (owner > 0 && owner != (int)getpid() && !(kill(owner, 0) < 0 && errno == ESRCH))
        return;                 /* a live owner (it clears share_pid as it leaves) */
    char err[512];
    int fd = share_listen(path, &perm, err, sizeof(err));
    if (fd < 0) {
        tcpsm_log(TCPSM_LOG_INFO, "TCPSM_SHARE: %s", err);
        return;
    }
    long efd = syscall(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        syscall(SYS_close, fd);
        unlink(path);
        return;
    }
    lfd = fd;
    stop_efd = (int)efd;
    rt_fd_own(lfd);
    rt_fd_own(stop_efd);
    stat(path, &mine);
    int e = rt_thread_spawn(&thr, serve);
    if (e != 0) {
        tcpsm_log(TCPSM_LOG_WARN, "TCPSM_SHARE: thread: %s", strerror(e));
        rt_share_fork_child();          /* the same clean-up, and the file goes */
        unlink(path);
        return;
    }
    rt.sh->share_pid = (int)getpid();
    tcpsm_log(TCPSM_LOG_INFO, "TCPSM_SHARE: %s %s (owner %u, group %u, mode %04o)", how, path,
              (unsigned)perm.uid, (unsigned)perm.gid, (unsigned)perm.mode);
}

void rt_share_start(void)
{
    const char *spec = getenv("TCPSM_SHARE");
    if (!spec || !*spec || lfd >= 0 || standby || !share_have_net_raw())
        return;
    perm = (struct share_perm){ .uid = geteuid(), .gid = getegid(), .mode = 0600 };
    char err[512];
    if (share_parse_perm(spec, &perm, err, sizeof(err)) < 0) {
        tcpsm_log(TCPSM_LOG_WARN, "%s: serving no socket file", err);
        return;
    }
    share_path(path, sizeof(path), rt.reg_name);
    snprintf(region_path, sizeof(region_path), "/dev/shm/%s", rt.reg_name);
    standby = true;
    next_try = rt_now() + TRY_EVERY_NS;
    serve_start("serving");
}

uint64_t rt_share_poll(uint64_t now)
{
    if (!standby || lfd >= 0 || rt.down || rt.me < 0)
        return UINT64_MAX;
    int owner = rt.sh->share_pid;
    if (owner > 0 && owner != (int)getpid())
        return UINT64_MAX;      /* until kicked: the owner leaving or reaped clears share_pid */
    if (now < next_try)
        return next_try;
    next_try = now + TRY_EVERY_NS;
    if (!share_have_net_raw()) {
        standby = false;        /* dropped since (an nginx worker): for good */
        return UINT64_MAX;
    }
    serve_start("taking over: serving");
    return lfd >= 0 ? UINT64_MAX : next_try;
}

void rt_share_fork_child(void)
{
    if (lfd < 0)
        return;
    rt_fd_disown(lfd);
    rt_fd_disown(stop_efd);
    syscall(SYS_close, lfd);
    syscall(SYS_close, stop_efd);
    lfd = stop_efd = -1;
}

void rt_share_stop(void)
{
    if (lfd < 0)
        return;
    uint64_t one = 1;
    syscall(SYS_write, stop_efd, &one, sizeof(one));
    pthread_join(thr, NULL);
    struct stat now;
    if (stat(path, &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev)
        unlink(path);
    rt_share_fork_child();
    /* Another process standing by may serve now (this one's leaving kicks
     * every service thread). */
    rt_lock();
    if (rt.sh && rt.sh->share_pid == (int)getpid())
        rt.sh->share_pid = 0;
    rt_unlock();
}
