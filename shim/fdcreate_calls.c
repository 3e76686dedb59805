/* Calls that create an fd the shim does not serve (files, pipes, eventfd,
 * timerfd, signalfd, memfd, inotify, fanotify; and glibc's fopen, freopen,
 * tmpfile, popen, opendir, mkstemp family): pass-through, and the new
 * number's slot is checked for a stale entry (an fd closed behind the
 * shim's back, e.g. by io_uring or a raw system call). The check is one
 * array load (shim_fd_fresh); sockets, accept, dup, epoll_create and
 * SCM_RIGHTS do the same where they are interposed. */
#include "shim.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

#ifndef __OPEN_NEEDS_MODE
#define __OPEN_NEEDS_MODE(f) (((f) & O_CREAT) != 0 || ((f) & O_TMPFILE) == O_TMPFILE)
#endif

static int fresh(int fd)
{
    shim_fd_fresh(fd);
    return fd;
}

/* The mode argument exists only with O_CREAT or O_TMPFILE (as glibc reads it). */
#define MODE_ARG(flags)                                                                            \
    mode_t mode = 0;                                                                               \
    if (__OPEN_NEEDS_MODE(flags)) {                                                                \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = va_arg(ap, mode_t);                                                                 \
        va_end(ap);                                                                                \
    }

EXPORT int open(const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return fresh(REAL(open)(path, flags, mode));
}

EXPORT int open64(const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return fresh(REAL(open64)(path, flags, mode));
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return fresh(REAL(openat)(dirfd, path, flags, mode));
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    MODE_ARG(flags);
    return fresh(REAL(openat64)(dirfd, path, flags, mode));
}

/* _FORTIFY_SOURCE variants (no mode argument: they abort on O_CREAT). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

EXPORT int __open_2(const char *path, int flags)
{
    return fresh(REAL(open_2)(path, flags));
}

EXPORT int __open64_2(const char *path, int flags)
{
    return fresh(REAL(open64_2)(path, flags));
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return fresh(REAL(openat_2)(dirfd, path, flags));
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return fresh(REAL(openat64_2)(dirfd, path, flags));
}

EXPORT int creat(const char *path, mode_t mode)
{
    return fresh(REAL(creat)(path, mode));
}

EXPORT int creat64(const char *path, mode_t mode)
{
    return fresh(REAL(creat64)(path, mode));
}

EXPORT int pipe(int fds[2])
{
    int r = REAL(pipe)(fds);
    if (r == 0) {
        shim_fd_fresh(fds[0]);
        shim_fd_fresh(fds[1]);
    }
    return r;
}

EXPORT int pipe2(int fds[2], int flags)
{
    int r = REAL(pipe2)(fds, flags);
    if (r == 0) {
        shim_fd_fresh(fds[0]);
        shim_fd_fresh(fds[1]);
    }
    return r;
}

EXPORT int eventfd(unsigned int initval, int flags)
{
    return fresh(REAL(eventfd)(initval, flags));
}

EXPORT int timerfd_create(int clockid, int flags)
{
    return fresh(REAL(timerfd_create)(clockid, flags));
}

/* With fd != -1 it changes an existing signalfd: that number cannot hold a
 * live socket entry either. */
EXPORT int signalfd(int fd, const sigset_t *mask, int flags)
{
    return fresh(REAL(signalfd)(fd, mask, flags));
}

EXPORT int memfd_create(const char *name, unsigned int flags)
{
    return fresh(REAL(memfd_create)(name, flags));
}

EXPORT int inotify_init(void)
{
    return fresh(REAL(inotify_init)());
}

EXPORT int inotify_init1(int flags)
{
    return fresh(REAL(inotify_init1)(flags));
}

EXPORT int fanotify_init(unsigned int flags, unsigned int event_f_flags)
{
    return fresh(REAL(fanotify_init)(flags, event_f_flags));
}

void shim_fresh_cmsg(const struct msghdr *msg)
{
    if (!shim_nslots || !msg || !msg->msg_control || msg->msg_controllen < sizeof(struct cmsghdr))
        return;
    for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *p = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            __builtin_memcpy(&fd, p + i * sizeof(int), sizeof(int));
            shim_fd_fresh(fd);
        }
    }
}

/* ------------------------------------------------------------ glibc's own opens
 * These open their fd with glibc-internal calls the shim cannot see:
 * the new number is checked after the call instead. */

static FILE *fresh_file(FILE *f)
{
    if (f)
        shim_fd_fresh(fileno(f));
    return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
    return fresh_file(REAL(fopen)(path, mode));
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    return fresh_file(REAL(fopen64)(path, mode));
}

/* freopen closes the stream's fd (internally) before opening the new one. */
EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
    if (stream && shim_nslots)
        shim_fd_release(fileno(stream));
    return fresh_file(REAL(freopen)(path, mode, stream));
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
    if (stream && shim_nslots)
        shim_fd_release(fileno(stream));
    return fresh_file(REAL(freopen64)(path, mode, stream));
}

EXPORT FILE *tmpfile(void)
{
    return fresh_file(REAL(tmpfile)());
}

EXPORT FILE *tmpfile64(void)
{
    return fresh_file(REAL(tmpfile64)());
}

EXPORT FILE *popen(const char *cmd, const char *type)
{
    return fresh_file(REAL(popen)(cmd, type));
}

EXPORT DIR *opendir(const char *name)
{
    DIR *d = REAL(opendir)(name);
    if (d)
        shim_fd_fresh(dirfd(d));
    return d;
}

EXPORT int mkstemp(char *tmpl)
{
    return fresh(REAL(mkstemp)(tmpl));
}

EXPORT int mkstemp64(char *tmpl)
{
    return fresh(REAL(mkstemp64)(tmpl));
}

EXPORT int mkostemp(char *tmpl, int flags)
{
    return fresh(REAL(mkostemp)(tmpl, flags));
}

EXPORT int mkostemp64(char *tmpl, int flags)
{
    return fresh(REAL(mkostemp64)(tmpl, flags));
}

EXPORT int mkstemps(char *tmpl, int suffixlen)
{
    return fresh(REAL(mkstemps)(tmpl, suffixlen));
}

EXPORT int mkstemps64(char *tmpl, int suffixlen)
{
    return fresh(REAL(mkstemps64)(tmpl, suffixlen));
}

EXPORT int mkostemps(char *tmpl, int suffixlen, int flags)
{
    return fresh(REAL(mkostemps)(tmpl, suffixlen, flags));
}

EXPORT int mkostemps64(char *tmpl, int suffixlen, int flags)
{
    return fresh(REAL(mkostemps64)(tmpl, suffixlen, flags));
}
