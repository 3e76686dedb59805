/* sigaction and signal: the program's handlers run through a wrapper that
 * first tells the runtime a handler is about to run on this thread
 * (tcpsm_signal_arrived, runtime_signal.c), as Onload wraps them:
 *   - inside the stack lock (or a shim lock) the handler is deferred until
 *     the lock is released, so a handler that closes or writes a stack fd
 *     cannot deadlock and one that siglongjmps cannot leave a lock held;
 *   - inside a blocking stack call the call's registrations are withdrawn
 *     first (siglongjmp leaves nothing dangling) and the call returns EINTR
 *     even if the handler ran before it went to sleep;
 *   - the references the interrupted calls hold are released once the
 *     handler is known to have been left by a jump (inflight.c).
 * Reading an action back gives the program's own handler. Synchronous fault
 * signals (SEGV, BUS, FPE, ILL, TRAP, SYS) are not wrapped: they must run
 * where they happen. Only the handler table is shared between threads:
 * racing sigaction calls on one signal are the program's business, as in libc. */
#include "shim.h"

#include <dlfcn.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static struct sigaction app_act[NSIG];

static int resolve(void)
{
    if (!real_sigaction)
        real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
    return real_sigaction ? 0 : -1;
}

static bool wrappable(int sig)
{
    return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV &&
           sig != SIGBUS && sig != SIGFPE && sig != SIGILL && sig != SIGTRAP && sig != SIGSYS;
}

static void wrapper(int sig, siginfo_t *info, void *uc)
{
    int e = errno;
    bool defer = tcpsm_signal_arrived(sig);
    errno = e;
    if (defer)
        return;
    const struct sigaction *a = &app_act[sig];
    /* Whether the handler returns or jumps out of the calls in progress
     * (shim/inflight.c: what they hold is released after a jump). */
    struct shim_sig_scope sc = shim_inflight_sig_enter();
    if (a->sa_flags & SA_SIGINFO) {
        if (a->sa_sigaction)
            a->sa_sigaction(sig, info, uc);
    } else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
        a->sa_handler(sig);
    }
    shim_inflight_sig_leave(sc);
}

static bool is_wrapper(const struct sigaction *k)
{
    return (k->sa_flags & SA_SIGINFO) && k->sa_sigaction == wrapper;
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (resolve() < 0) {
        errno = ENOSYS;
        return -1;
    }
    if (!wrappable(sig) || !atomic_load_explicit(&shim_on, memory_order_relaxed))
        return real_sigaction(sig, act, old);
    struct sigaction k;
    if (real_sigaction(sig, NULL, &k) < 0)
        return -1;
    struct sigaction prev = is_wrapper(&k) ? app_act[sig] : k;
    if (act) {
        bool handler = (act->sa_flags & SA_SIGINFO) ||
                       (act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN);
        if (!handler) {
            if (real_sigaction(sig, act, NULL) < 0)
                return -1;
        } else {
            struct sigaction w = *act;
            w.sa_flags |= SA_SIGINFO;
            w.sa_sigaction = wrapper;
            app_act[sig] = *act;        /* before the kernel can call the wrapper with it */
            if (real_sigaction(sig, &w, NULL) < 0)
                return -1;
        }
    }
    if (old)
        *old = prev;
    return 0;
}

/* glibc's signal(): BSD semantics (SA_RESTART, the signal blocked in its handler). */
EXPORT sighandler_t signal(int sig, sighandler_t h)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, sig);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, &old) < 0)
        return SIG_ERR;
    /* sa_handler and sa_sigaction share storage: the previous handler's address either way. */
    return old.sa_handler;
}
