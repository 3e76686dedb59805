/* Sending SIGIO, F_SETSIG's signal and SIGURG to the owner F_SETOWN named,
 * as Linux's send_sigio / send_sigurg do, within what Linux lets a process
 * do from user space.
 *
 * The kernel gives an F_SETSIG signal si_code = the POLL_* reason, si_band
 * and si_fd, and plain SIGIO / SIGURG si_code SI_KERNEL; a process group
 * owner gets that in every member. From user space a siginfo whose si_code
 * is >= 0 (the kernel's own codes) can only be queued to oneself
 * (kernel/signal.c do_rt_sigqueueinfo / do_rt_tgsigqueueinfo: EPERM unless
 * the target id is the calling thread's). So:
 *   - to our own process, from its main thread (whose id is the pid):
 *     rt_sigqueueinfo with the kernel's si_code, process-directed: exactly
 *     Linux's signal;
 *   - to our own process from another thread that does not block the
 *     signal: rt_tgsigqueueinfo to that thread, the kernel's si_code (a
 *     thread the kernel might have picked for a process-directed signal);
 *   - a thread owner (F_OWNER_TID) that is the calling thread: exactly;
 *   - otherwise (another process, or the runtime's own threads, which block
 *     every signal): si_code SI_QUEUE with the same si_band and si_fd, and
 *     plain SIGIO / SIGURG by kill (SI_USER);
 *   - a process group owner: each member found in /proc (pgrp field of
 *     /proc/PID/stat; at most RT_PGRP_SCAN entries looked at) gets the
 *     signal as above, one by one as Linux's send_sigio does; if /proc
 *     cannot be read, kill(-pgrp) (no siginfo). */
#include <ctype.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

#define RT_PGRP_SCAN 65536              /* /proc entries read for a group, at most */

/* Queue si to ourselves with the kernel's si_code (see above): tid 0 for
 * the process. Returns 1 if sent, 0 if not possible from this thread, -1
 * on error (errno: EAGAIN when the queue is full). */
static int queue_self(pid_t pid, pid_t tid, int sig, siginfo_t *si)
{
    pid_t me = getpid(), self = (pid_t)syscall(SYS_gettid);
    if (pid != me)
        return 0;
    if (tid) {
        if (tid != self)
            return 0;
        return syscall(SYS_rt_tgsigqueueinfo, me, self, sig, si) < 0 ? -1 : 1;
    }
    if (self == me)
        return syscall(SYS_rt_sigqueueinfo, me, sig, si) < 0 ? -1 : 1;
    sigset_t cur;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0 || sigismember(&cur, sig))
        return 0;
    return syscall(SYS_rt_tgsigqueueinfo, me, self, sig, si) < 0 ? -1 : 1;
}

/* One process or thread: si (the kernel's si_code in it) if it can be
 * ours, else si_code SI_QUEUE; si NULL: plain sig. False if the queue was
 * full. */
static bool send_one(pid_t pid, pid_t tid, int sig, const siginfo_t *info)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (info)
        si = *info;
    else {
        si.si_signo = sig;
        si.si_code = SI_KERNEL;         /* Linux SEND_SIG_PRIV */
    }
    int r = queue_self(pid, tid, sig, &si);
    if (r)
        return !(r < 0 && errno == EAGAIN);
    long rc;
    if (!info)
        rc = tid ? syscall(SYS_tgkill, pid, tid, sig) : kill(pid, sig);
    else {
        si.si_code = SI_QUEUE;
        rc = tid ? syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si)
                 : syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
    }
    return !(rc < 0 && errno == EAGAIN);
}

/* The process group of pid from /proc/PID/stat (after the command's ')'),
 * or -1. */
static pid_t proc_pgrp(const char *pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%s/stat", pid);
    /* raw calls: the shim's interposed ones are not for the runtime */
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    char state;
    int ppid, pgrp;
    if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
        return -1;
    return pgrp;
}

struct rt_dirent64 {                    /* getdents64's record */
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static bool send_pgrp(pid_t pgrp, int sig, const siginfo_t *info)
{
    long dfd = syscall(SYS_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return kill(-pgrp, sig) == 0 || errno != EAGAIN;
    bool ok = true;
    unsigned seen = 0;
    _Alignas(8) char buf[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (long off = 0; off < n && seen < RT_PGRP_SCAN; seen++) {
            const struct rt_dirent64 *e = (const struct rt_dirent64 *)(buf + off);
            off += e->d_reclen;
            if (!isdigit((unsigned char)e->d_name[0]) || proc_pgrp(e->d_name) != pgrp)
                continue;
            if (!send_one((pid_t)atoi(e->d_name), 0, sig, info))
                ok = false;
        }
        if (seen >= RT_PGRP_SCAN)
            break;
    }
    syscall(SYS_close, dfd);
    return ok;
}

bool rt_owner_signal(int type, int id, int tgid, int sig, const siginfo_t *info)
{
    switch (type) {
    case F_OWNER_PID:
        return send_one(id, 0, sig, info);
    case F_OWNER_PGRP:
        return send_pgrp(id, sig, info);
    case F_OWNER_TID:
        if (syscall(SYS_tgkill, tgid, id, 0) < 0 && errno == ESRCH) {
            /* a thread of another process (set there, shared socket) */
            if (info)
                return true;
            syscall(SYS_tkill, id, sig);
            return true;
        }
        return send_one(tgid, id, sig, info);
    default:
        return true;
    }
}

void rt_owner_sigio(int type, int id, int tgid, int async_sig, int fd, int reason)
{
    if (!async_sig) {
        rt_owner_signal(type, id, tgid, SIGIO, NULL);
        return;
    }
    long band;
    switch (reason) {                   /* Linux send_sigio's band_table */
    case POLL_OUT: band = POLLOUT | POLLWRNORM | POLLWRBAND; break;
    case POLL_ERR: band = POLLERR; break;
    case POLL_PRI: band = POLLPRI | POLLRDBAND; break;
    case POLL_HUP: band = POLLHUP | POLLERR; break;
    case POLL_MSG: band = POLLIN | POLLRDNORM | POLLMSG; break;
    default:       band = POLLIN | POLLRDNORM; break;      /* POLL_IN (no POLLMSG) */
    }
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    si.si_signo = async_sig;
    si.si_code = reason;
    si.si_band = band;
    si.si_fd = fd;
    if (!rt_owner_signal(type, id, tgid, async_sig, &si))
        rt_owner_signal(type, id, tgid, SIGIO, NULL);   /* queue full: Linux falls back */
}
