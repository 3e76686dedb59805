/* The table of real libc functions (dlsym RTLD_NEXT), the library's
 * constructor (configuration), destructor (orderly stack shutdown) and the
 * fork handler. */
#include "shim.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime_log.h"

struct shim_real shim_real;
_Atomic bool shim_on;

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

#define RESOLVE(fn) (shim_real.fn = (__typeof__(shim_real.fn))dlsym(RTLD_NEXT, #fn))

/* dlsym may allocate (calloc) but calls none of the functions interposed
 * here, so resolving everything in one go cannot recurse into this table. */
static void resolve_all(void)
{
    RESOLVE(socket); RESOLVE(socketpair); RESOLVE(bind); RESOLVE(listen);
    RESOLVE(accept); RESOLVE(accept4); RESOLVE(connect); RESOLVE(getsockname);
    RESOLVE(getpeername); RESOLVE(setsockopt); RESOLVE(getsockopt); RESOLVE(shutdown);
    RESOLVE(close); RESOLVE(send); RESOLVE(sendto); RESOLVE(sendmsg); RESOLVE(recv);
    RESOLVE(recvfrom); RESOLVE(recvmsg); RESOLVE(read); RESOLVE(write); RESOLVE(readv);
    RESOLVE(writev); RESOLVE(pread); RESOLVE(fcntl); RESOLVE(ioctl); RESOLVE(dup);
    RESOLVE(dup2); RESOLVE(dup3); RESOLVE(poll); RESOLVE(ppoll); RESOLVE(select);
    RESOLVE(pselect); RESOLVE(epoll_create); RESOLVE(epoll_create1); RESOLVE(epoll_ctl);
    RESOLVE(epoll_wait); RESOLVE(epoll_pwait); RESOLVE(sendfile); RESOLVE(sendmmsg);
    RESOLVE(recvmmsg); RESOLVE(splice);
    RESOLVE(fclose); RESOLVE(syscall); RESOLVE(open); RESOLVE(open64); RESOLVE(openat);
    RESOLVE(openat64); RESOLVE(creat); RESOLVE(creat64); RESOLVE(pipe); RESOLVE(pipe2);
    RESOLVE(eventfd); RESOLVE(timerfd_create); RESOLVE(signalfd); RESOLVE(memfd_create);
    RESOLVE(inotify_init); RESOLVE(inotify_init1); RESOLVE(fanotify_init);
    RESOLVE(clone);
    RESOLVE(execve); RESOLVE(execv); RESOLVE(execvp); RESOLVE(execvpe); RESOLVE(fexecve);
    RESOLVE(execveat); RESOLVE(posix_spawn); RESOLVE(posix_spawnp);
    RESOLVE(fopen); RESOLVE(fopen64); RESOLVE(freopen); RESOLVE(freopen64); RESOLVE(tmpfile);
    RESOLVE(tmpfile64); RESOLVE(popen); RESOLVE(opendir); RESOLVE(mkstemp); RESOLVE(mkstemp64);
    RESOLVE(mkostemp); RESOLVE(mkostemp64); RESOLVE(mkstemps); RESOLVE(mkstemps64);
    RESOLVE(mkostemps); RESOLVE(mkostemps64);
    shim_real.open_2 = (__typeof__(shim_real.open_2))dlsym(RTLD_NEXT, "__open_2");
    shim_real.open64_2 = (__typeof__(shim_real.open64_2))dlsym(RTLD_NEXT, "__open64_2");
    shim_real.openat_2 = (__typeof__(shim_real.openat_2))dlsym(RTLD_NEXT, "__openat_2");
    shim_real.openat64_2 = (__typeof__(shim_real.openat64_2))dlsym(RTLD_NEXT, "__openat64_2");
}

void shim_resolve(void)
{
    pthread_once(&resolve_once, resolve_all);
}

static void shim_init_locked(void);

/* Runs fn with every signal blocked in this thread (held pending): fn takes
 * the shared stack lock, which a signal killing the process must not find
 * held halfway. */
static void signals_held(void (*fn)(void))
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    fn();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

__attribute__((constructor(101))) static void shim_init(void)
{
    shim_resolve();
    /* Attaching, and claiming the sockets an exec'd image inherits, take
     * the shared stack lock: a signal that kills the process in there (socat
     * SIGTERMs its EXEC child as soon as a connection ends, even before the
     * child's main) would leave the lock to be recovered from a dead holder,
     * halfway through. Held pending until the start is done. */
    signals_held(shim_init_locked);
}

static void shim_init_locked(void)
{
    int c = tcpsm_rt_config();
    if (c < 0)
        exit(1);        /* the runtime printed the line naming the variable */
    if (c == 0)
        return;         /* pass-through, silent */
    if (shim_fdtable_init() < 0) {
        tcpsm_log(TCPSM_LOG_ERROR, "cannot allocate the fd table; running on the kernel's TCP");
        return;
    }
    /* After tcpsm_rt_config registered the runtime's handlers: prepare
     * handlers run in reverse order, so the shim's locks are taken before
     * the runtime's (the lock order in shim.h). */
    pthread_atfork(shim_atfork_prepare, shim_atfork_parent, shim_atfork_child);
    if (tcpsm_rt_exec_pending())
        shim_exec_inherit();    /* before the program's main sees its fds */
    atomic_store(&shim_on, true);
    shim_signals_init();
}

__attribute__((destructor(101))) static void shim_fini(void)
{
    if (!atomic_load(&shim_on))
        return;
    /* The orderly end takes the stack lock (releasing this process's
     * sockets, closing them): a SIGTERM then (socat sends its EXEC child
     * one as a connection ends) would kill the process inside it, as at
     * start. The process is ending: the signal waits until it has. */
    signals_held(tcpsm_rt_shutdown);
}

int64_t shim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Linux raises SIGPIPE in the calling thread (send_sig(SIGPIPE, current)). */
void shim_sigpipe(void)
{
    pthread_kill(pthread_self(), SIGPIPE);
}

/* Linux restarts a blocking socket call (without SO_RCVTIMEO/SO_SNDTIMEO)
 * interrupted by a handler installed with SA_RESTART. The runtime only says
 * "a handler ran", not which: restart when every installed handler has
 * SA_RESTART, so that no handler without it is ever restarted over.
 * Handlers of the synchronous fault signals do not count: they run from a
 * faulting instruction, not during a blocked call, and crash handlers
 * (redis's, ASan's) are installed without SA_RESTART. */
static bool fault_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
           sig == SIGTRAP || sig == SIGSYS;
}

bool shim_sa_restart(void)
{
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || fault_signal(sig) || sigaction(sig, NULL, &sa) != 0)
            continue;
        if (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN))
            continue;
        if (!(sa.sa_flags & SA_RESTART))
            return false;
    }
    return true;
}
