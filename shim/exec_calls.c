/* The exec family and posix_spawn: each runs shim_exec_prepare first, so
 * that the new image can tell apart the stack sockets it inherits
 * (exec_fds.c). glibc's execvp, execl* and posix_spawn reach the kernel
 * through internal calls, never through execve's symbol: each public entry
 * is interposed. posix_spawn's child runs no fork handler: the runtime
 * registers it around the real call (tcpsm_rt_spawn_begin/end). system()
 * and popen() are not interposed: a shell does not use the program's
 * sockets. */
#include "shim.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    shim_exec_prepare(false);
    return REAL(execve)(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
    shim_exec_prepare(false);
    return REAL(execv)(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[])
{
    shim_exec_prepare(false);
    return REAL(execvp)(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    shim_exec_prepare(false);
    return REAL(execvpe)(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    shim_exec_prepare(false);
    return REAL(fexecve)(fd, argv, envp);
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                    int flags)
{
    shim_exec_prepare(false);
    if (!REAL(execveat)) {
        errno = ENOSYS;
        return -1;
    }
    return REAL(execveat)(dirfd, path, argv, envp, flags);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    pid_t own, *pp = pid ? pid : &own;
    shim_exec_prepare(true);
    int slot = tcpsm_rt_spawn_begin();
    int r = REAL(posix_spawn)(pp, path, fa, attr, argv, envp);
    tcpsm_rt_spawn_end(slot, r == 0 ? *pp : -1);
    return r;
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    pid_t own, *pp = pid ? pid : &own;
    shim_exec_prepare(true);
    int slot = tcpsm_rt_spawn_begin();
    int r = REAL(posix_spawnp)(pp, file, fa, attr, argv, envp);
    tcpsm_rt_spawn_end(slot, r == 0 ? *pp : -1);
    return r;
}

/* execl, execle, execlp: the argument list as an array (on the stack, as
 * glibc builds it), then the array form. */
#define ARGS_MAX 65536

static size_t count_args(const char *arg, va_list ap)
{
    size_t n = 0;
    if (arg) {
        va_list c;
        va_copy(c, ap);
        for (n = 1; n < ARGS_MAX && va_arg(c, char *); n++)
            ;
        va_end(c);
    }
    return n;
}

/* argv[0..n-1] from arg and the list, argv[n] NULL; consumes the list's NULL. */
static void fill_args(char **argv, size_t n, const char *arg, va_list *ap)
{
    if (n) {
        argv[0] = (char *)arg;
        for (size_t i = 1; i < n; i++)
            argv[i] = va_arg(*ap, char *);
        (void)va_arg(*ap, char *);
    }
    argv[n] = NULL;
}

#define EXECL_BODY(call)                                                              \
    va_list ap;                                                                       \
    va_start(ap, arg);                                                                \
    size_t n = count_args(arg, ap);                                                   \
    if (n >= ARGS_MAX) {                                                              \
        va_end(ap);                                                                   \
        errno = E2BIG;                                                                \
        return -1;                                                                    \
    }                                                                                 \
    char *argv[n + 1];                                                                \
    fill_args(argv, n, arg, &ap);                                                     \
    call;

EXPORT int execl(const char *path, const char *arg, ...)
{
    EXECL_BODY(va_end(ap));
    return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    EXECL_BODY(va_end(ap));
    return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    EXECL_BODY(char *const *envp = va_arg(ap, char *const *); va_end(ap));
    return execve(path, argv, envp);
}
