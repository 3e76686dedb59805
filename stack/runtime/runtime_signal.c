/* Signal handlers and the stack (see "Locks and signals" in runtime.h).
 *
 * The shim runs every handler the program installs through a wrapper that
 * first calls tcpsm_signal_arrived() on the thread the signal interrupted:
 *   - it counts the signal (t_sigseq) and writes the thread's eventfd, so a
 *     blocking stack call that had not yet gone to sleep returns at once
 *     and, seeing the count moved, returns EINTR: the kernel's window for
 *     "handler ran just before the sleep" is a few instructions, ours would
 *     be the whole call;
 *   - if the thread holds the stack lock (or a shim lock marked with
 *     tcpsm_sig_hold), the program's handler is deferred: the signal is
 *     raised again on this thread right after the lock is released, so a
 *     handler that calls close()/write() on a stack fd never deadlocks and
 *     a handler that siglongjmps never leaves the lock held (the re-raised
 *     signal carries the original's siginfo: si_fd and si_band of an
 *     F_SETSIG signal, the sender of a kill; of several of one number
 *     deferred at once, one is raised again, the first's);
 *   - if the thread is inside a blocking stack call, its registrations
 *     (socket wait queues, poll watches, the link's lead) are withdrawn
 *     before the program's handler runs, so leaving by siglongjmp leaves
 *     nothing dangling; the call itself, if the handler returns, gives EINTR.
 */
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

__thread volatile unsigned rt_t_sigseq;
__thread volatile int rt_t_hold;        /* stack lock or shim locks held: defer handlers */
__thread volatile int rt_t_in_wait;     /* inside a blocking call or a poller section */
static __thread _Atomic uint64_t t_deferred;
static __thread siginfo_t t_definfo[64];        /* the first of each deferred signal */

static void defer(int sig, const siginfo_t *info)
{
    if (sig <= 0 || sig > 64)
        return;
    uint64_t bit = 1ull << (sig - 1);
    if (!(atomic_load(&t_deferred) & bit)) {
        if (info)
            t_definfo[sig - 1] = *info;
        else
            t_definfo[sig - 1].si_signo = 0;
    }
    atomic_fetch_or(&t_deferred, bit);
}

bool tcpsm_signal_arrived(int sig, const siginfo_t *info)
{
    rt_t_sigseq++;
    struct rt_waiter *w = rt_waiter_peek();
    if (w) {
        uint64_t one = 1;
        syscall(SYS_write, w->efd, &one, sizeof(one));
    }
    if (rt_t_hold > 0) {
        defer(sig, info);
        return true;
    }
    if (rt_t_in_wait && w)
        rt_cancel_waits(w);
    return false;
}

bool tcpsm_signal_fatal_defer(int sig)
{
    if (rt_t_hold <= 0)
        return false;
    defer(sig, NULL);
    return true;
}

void tcpsm_signal_fatal(void)
{
    /* Not attached, or the lock not had within its bound: die as before. */
    if (!rt.reg || !rt.sh || !rt_lock_for_exit())
        return;
    rt.sh->lock_left_clean = true;      /* read by the next holder (lock_recovered) */
}

void rt_sig_reraise(void)
{
    uint64_t d = atomic_exchange(&t_deferred, 0);
    for (int sig = 1; d && sig <= 64; sig++) {
        if (d & (1ull << (sig - 1))) {
            d &= ~(1ull << (sig - 1));
            pid_t tid = (pid_t)syscall(SYS_gettid);
            siginfo_t si = t_definfo[sig - 1];
            /* to this very thread any siginfo may be queued (rt_tgsigqueueinfo) */
            if (si.si_signo != sig ||
                syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si) < 0)
                syscall(SYS_tgkill, getpid(), tid, sig);
        }
    }
}

bool rt_sig_deferred(void)
{
    return atomic_load_explicit(&t_deferred, memory_order_relaxed) != 0;
}

void tcpsm_sig_hold(void)
{
    rt_t_hold++;
}

void tcpsm_sig_release(void)
{
    if (--rt_t_hold == 0 && rt_sig_deferred())
        rt_sig_reraise();
}

unsigned tcpsm_sigseq(void)
{
    return rt_t_sigseq;
}
