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
 * Signals the program leaves at their default action that end the process
 * (SIGTERM, SIGINT, ...) are caught too: the process ends between stack
 * operations, never halfway through one that other processes would see.
 * Reading an action back gives the program's own handler. Synchronous fault
 * signals (SEGV, BUS, FPE, ILL, TRAP, SYS) are not wrapped: they must run
 * where they happen. Only the handler table is shared between threads:
 * racing sigaction calls on one signal are the program's business, as in libc. */
#include "shim.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* ThreadSanitizer's start (make tsan) installs its handlers through this
 * sigaction before its own state exists: nothing on that path may be
 * instrumented. */
#ifdef __SANITIZE_THREAD__
#define NO_TSAN __attribute__((no_sanitize_thread))
#else
#define NO_TSAN
#endif

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static struct sigaction app_act[NSIG];

NO_TSAN static int resolve(void)
{
    if (!real_sigaction)
        real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "sigaction");
    return real_sigaction ? 0 : -1;
}

NO_TSAN static bool wrappable(int sig)
{
    return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV &&
           sig != SIGBUS && sig != SIGFPE && sig != SIGILL && sig != SIGTRAP && sig != SIGSYS;
}

/* Signals whose default action ends the process (not the synchronous
 * faults, nor SIGABRT: abort() must end where it is called). */
NO_TSAN static bool fatal_default(int sig)
{
    switch (sig) {
    case SIGHUP: case SIGINT: case SIGQUIT: case SIGPIPE: case SIGALRM: case SIGTERM:
    case SIGUSR1: case SIGUSR2: case SIGPROF: case SIGVTALRM: case SIGXCPU: case SIGXFSZ:
    case SIGIO: case SIGPWR: case SIGSTKFLT:
        return true;
    default:
        return false;
    }
}

NO_TSAN static bool is_default(const struct sigaction *a)
{
    return !(a->sa_flags & SA_SIGINFO) && a->sa_handler == SIG_DFL;
}

/* The program leaves sig at its default action and it arrived: the
 * process ends, but not while one of its threads is halfway through a
 * change of the shared stack (runtime.h, "Locks and signals" 6). */
static void fatal(int sig)
{
    if (tcpsm_signal_fatal_defer(sig))
        return;                 /* raised again once this thread's lock is released */
    tcpsm_signal_fatal();
    struct sigaction d;
    memset(&d, 0, sizeof(d));
    d.sa_handler = SIG_DFL;
    real_sigaction(sig, &d, NULL);
    /* Pending until this handler returns (sig is blocked in it): then the
     * default action ends the process, holding the stack lock. */
    syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
}

static void wrapper(int sig, siginfo_t *info, void *uc)
{
    if (is_default(&app_act[sig])) {
        int e = errno;
        fatal(sig);
        errno = e;
        return;
    }
    int e = errno;
    bool defer = tcpsm_signal_arrived(sig, info);
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

NO_TSAN static bool is_wrapper(const struct sigaction *k)
{
    return (k->sa_flags & SA_SIGINFO) && k->sa_sigaction == wrapper;
}

EXPORT NO_TSAN int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
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
        if (!handler && is_default(act) && fatal_default(sig)) {
            /* Still caught, to end the process between stack operations. */
            struct sigaction w = *act;
            w.sa_flags = SA_SIGINFO | SA_RESTART;
            w.sa_sigaction = wrapper;
            app_act[sig] = *act;
            if (real_sigaction(sig, &w, NULL) < 0)
                return -1;
        } else if (!handler) {
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

void shim_signals_init(void)
{
    if (resolve() < 0)
        return;
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction k;
        if (!fatal_default(sig) || real_sigaction(sig, NULL, &k) < 0 || !is_default(&k))
            continue;           /* an inherited SIG_IGN stays the kernel's */
        struct sigaction w = k;
        w.sa_flags = SA_SIGINFO | SA_RESTART;
        w.sa_sigaction = wrapper;
        app_act[sig] = k;
        real_sigaction(sig, &w, NULL);
    }
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
