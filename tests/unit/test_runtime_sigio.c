/* The runtime's SIGIO / F_SETSIG signals against the kernel's own for the
 * same owner (a pipe with O_ASYNC, F_SETOWN and F_SETSIG: Linux
 * send_sigio): to our own process the same si_code (POLL_IN, and SI_KERNEL
 * for plain SIGIO), si_band and si_fd; to a process group every member
 * gets si_band and si_fd (ourselves the kernel's si_code, another process
 * SI_QUEUE: Linux refuses a positive si_code to another process). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* sig (blocked) within s seconds: its number, or -1 */
static int timed_wait(int sig, int s, siginfo_t *si)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec ts = { s, 0 };
    memset(si, 0, sizeof(*si));
    return sigtimedwait(&set, si, &ts);
}

static siginfo_t wait_sig(int sig)
{
    siginfo_t si;
    cr_assert_eq(timed_wait(sig, 2, &si), sig, "no signal %d", sig);
    return si;
}

static void block(int sig)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
}

/* What the kernel sends owner (F_SETOWN's argument) with F_SETSIG sig when
 * a pipe's read end gets data. */
static siginfo_t kernel_sigio(int owner, int sig, int *fd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(fcntl(p[0], F_SETOWN, owner), 0);
    cr_assert_eq(fcntl(p[0], F_SETSIG, sig), 0);
    cr_assert_eq(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    siginfo_t si = wait_sig(sig ? sig : SIGIO);
    *fd = p[0];
    return si;                          /* left open: closing the writer signals again */
}

Test(runtime_sigio, f_setsig_to_self_as_the_kernel)
{
    cr_assert_eq(getpid(), (pid_t)syscall(SYS_gettid), "the test runs on the main thread");
    int sig = SIGRTMIN + 3, kfd;
    block(sig);
    siginfo_t k = kernel_sigio(getpid(), sig, &kfd);
    cr_assert_eq(k.si_code, POLL_IN);
    rt_owner_sigio(F_OWNER_PID, getpid(), 0, sig, 42, POLL_IN);
    siginfo_t s = wait_sig(sig);
    cr_assert_eq(s.si_code, k.si_code, "si_code %d, the kernel's %d", s.si_code, k.si_code);
    cr_assert_eq(s.si_band, k.si_band, "si_band %#lx, the kernel's %#lx", s.si_band, k.si_band);
    cr_assert_eq(k.si_fd, kfd);
    cr_assert_eq(s.si_fd, 42);
}

Test(runtime_sigio, plain_sigio_to_self_as_the_kernel)
{
    int kfd;
    block(SIGIO);
    siginfo_t k = kernel_sigio(getpid(), 0, &kfd);
    rt_owner_sigio(F_OWNER_PID, getpid(), 0, 0, 42, POLL_IN);
    siginfo_t s = wait_sig(SIGIO);
    cr_assert_eq(s.si_code, k.si_code, "si_code %d, the kernel's %d (SI_KERNEL)", s.si_code,
                 k.si_code);
}

/* A process group owner: us and a child in our own group. The kernel gives
 * both POLL_IN with band and fd; the runtime gives us the same, the child
 * SI_QUEUE with the same band and fd. */
Test(runtime_sigio, process_group_members_get_the_details)
{
    int sig = SIGRTMIN + 4, kfd;
    /* a group of our own, so the runner is not in it (the worker may be a
     * session leader already, which setpgid refuses) */
    if (getpgrp() != getpid())
        cr_assert_eq(setpgid(0, 0), 0);
    cr_assert_eq(getpgrp(), getpid());
    block(sig);
    int rep[2], go[2];
    cr_assert_eq(pipe(rep), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t c = fork();
    cr_assert_geq(c, 0);
    if (c == 0) {                       /* the child: report the two signals it gets */
        close(rep[0]);
        for (int i = 0; i < 2; i++) {
            siginfo_t si;
            if (i == 0 && write(go[1], "r", 1) != 1)
                _exit(2);
            if (timed_wait(sig, 3, &si) != sig)
                _exit(1);
            long v[3] = { si.si_code, si.si_band, si.si_fd };
            if (write(rep[1], v, sizeof(v)) != (ssize_t)sizeof(v))
                _exit(3);
        }
        _exit(0);
    }
    close(rep[1]);
    char r;
    cr_assert_eq(read(go[0], &r, 1), 1);
    siginfo_t k = kernel_sigio(-getpgrp(), sig, &kfd);
    long kc[3];
    cr_assert_eq(read(rep[0], kc, sizeof(kc)), (ssize_t)sizeof(kc));
    cr_assert_eq(kc[0], POLL_IN, "the kernel's to the child: %ld", kc[0]);
    rt_owner_sigio(F_OWNER_PGRP, getpgrp(), 0, sig, 42, POLL_IN);
    siginfo_t s = wait_sig(sig);
    cr_assert_eq(s.si_code, k.si_code, "ours to us: si_code %d, the kernel's %d", s.si_code,
                 k.si_code);
    cr_assert_eq(s.si_band, k.si_band);
    cr_assert_eq(s.si_fd, 42);
    long sc[3];
    cr_assert_eq(read(rep[0], sc, sizeof(sc)), (ssize_t)sizeof(sc));
    cr_assert_eq(sc[0], SI_QUEUE, "ours to the child: si_code %ld", sc[0]);
    cr_assert_eq(sc[1], kc[1], "the child's si_band %#lx, the kernel's %#lx", sc[1], kc[1]);
    cr_assert_eq(sc[2], 42);
    int st;
    cr_assert_eq(waitpid(c, &st, 0), c);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
}
