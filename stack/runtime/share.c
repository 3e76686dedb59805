/* The socket file through which a stack's owner hands the link socket and
 * the region to processes without CAP_NET_RAW (see share.h). Raw system
 * calls for sockets: inside the preloaded library, libc's are the shim's. */
#include "share.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SHARE_MAGIC   0x68736374u       /* "tcsh" */
#define SHARE_VERSION 1u
#define SHARE_REQ_REGION 0x1u           /* request: the region's fd too */
#define SHARE_REP_REGION 0x1u           /* reply: the region's fd follows the link's */
/* A client that connects and says nothing must not stall the owner. */
#define SHARE_IO_TIMEOUT_MS 2000

struct share_req {
    uint32_t magic, version, flags;
    uint32_t reserved;
};

struct share_rep {
    uint32_t magic, version;
    int32_t status;                     /* 0, or the errno of opening the link */
    uint32_t flags;
};

void share_path(char *buf, size_t len, const char *reg_name)
{
    snprintf(buf, len, "/dev/shm/%s.sock", reg_name);
}

bool share_have_net_raw(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) < 0)
        return geteuid() == 0;
    return (d[CAP_NET_RAW / 32].effective >> (CAP_NET_RAW % 32)) & 1;
}

static void set_timeout(int fd)
{
    struct timeval tv = { .tv_sec = SHARE_IO_TIMEOUT_MS / 1000,
                          .tv_usec = (SHARE_IO_TIMEOUT_MS % 1000) * 1000 };
    syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    syscall(SYS_setsockopt, fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa->sun_path, path);
    return 0;
}

static const char *who(uid_t uid, char *buf, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(buf, len, "%s (uid %u)", pw->pw_name, (unsigned)uid);
    else
        snprintf(buf, len, "uid %u", (unsigned)uid);
    return buf;
}

int share_fetch(const char *path, bool want_region, int *link_fd, int *region_fd, char *err,
                size_t errlen)
{
    *link_fd = -1;
    if (region_fd)
        *region_fd = -1;
    char me[64];
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "no CAP_NET_RAW to open the link, and no stack owner serves %s "
                 "(%s): run the program as root, or under `tcpsm --user`", path, strerror(errno));
        return -1;
    }
    struct sockaddr_un sa;
    if (fill_addr(&sa, path) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    set_timeout(fd);
    if (syscall(SYS_connect, fd, &sa, sizeof(sa)) < 0) {
        int e = errno;
        char o[64];
        syscall(SYS_close, fd);
        if (e == EACCES || e == EPERM)
            snprintf(err, errlen, "permission denied on %s (owner %s, group %u, mode %04o): the "
                     "stack's owner does not let %s attach (see TCPSM_SHARE)", path,
                     who(st.st_uid, o, sizeof(o)), (unsigned)st.st_gid,
                     (unsigned)(st.st_mode & 07777), who(geteuid(), me, sizeof(me)));
        else if (e == ECONNREFUSED)
            snprintf(err, errlen, "no stack owner running behind %s (a stale socket file): "
                     "run the program as root, or under `tcpsm --user`", path);
        else
            snprintf(err, errlen, "cannot reach the stack's owner at %s: %s", path, strerror(e));
        return -1;
    }
    /* Anyone may create a file in /dev/shm: take fds only from root or
     * from this very user. */
    struct ucred cr;
    socklen_t cl = sizeof(cr);
    if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
        (cr.uid != 0 && cr.uid != geteuid())) {
        char o[64];
        syscall(SYS_close, fd);
        snprintf(err, errlen, "%s is served by %s, neither root nor this user: not trusted",
                 path, who(cr.uid, o, sizeof(o)));
        return -1;
    }
    struct share_req rq = { .magic = SHARE_MAGIC, .version = SHARE_VERSION,
                            .flags = want_region ? SHARE_REQ_REGION : 0 };
    struct share_rep rp;
    union { struct cmsghdr align; char buf[CMSG_SPACE(2 * sizeof(int))]; } cm;
    struct iovec iov = { .iov_base = &rp, .iov_len = sizeof(rp) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                         .msg_controllen = sizeof(cm.buf) };
    long n = -1;
    if (syscall(SYS_sendto, fd, &rq, sizeof(rq), MSG_NOSIGNAL, NULL, 0) == (long)sizeof(rq)) {
        do
            n = syscall(SYS_recvmsg, fd, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
    }
    int e = errno;
    syscall(SYS_close, fd);
    int fds[2] = { -1, -1 }, nfds = 0;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (nfds < 2)
                    fds[nfds++] = f;
                else
                    syscall(SYS_close, f);
            }
        }
    }
    bool ok = n == (long)sizeof(rp) && rp.magic == SHARE_MAGIC && rp.version == SHARE_VERSION &&
              rp.status == 0 && nfds == 1 + ((rp.flags & SHARE_REP_REGION) ? 1 : 0);
    if (!ok) {
        for (int i = 0; i < nfds; i++)
            syscall(SYS_close, fds[i]);
        if (n == (long)sizeof(rp) && rp.magic == SHARE_MAGIC && rp.status != 0)
            snprintf(err, errlen, "the stack's owner at %s could not open a link socket: %s",
                     path, strerror(rp.status));
        else
            snprintf(err, errlen, "no usable answer from the stack's owner at %s (%s)", path,
                     n < 0 ? strerror(e) : "malformed or wrong version");
        return -1;
    }
    *link_fd = fds[0];
    if (nfds == 2) {
        if (region_fd)
            *region_fd = fds[1];
        else
            syscall(SYS_close, fds[1]);
    }
    return 0;
}

static int parse_id(const char *s, size_t n, bool user, unsigned *out)
{
    char buf[256];
    if (n == 0 || n >= sizeof(buf))
        return n == 0 ? 1 : -1;         /* 1: empty, keep the default */
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    unsigned long v = strtoul(buf, &end, 10);
    if (*end == '\0' && v < 0xffffffffu) {
        *out = (unsigned)v;
        return 0;
    }
    if (user) {
        struct passwd *pw = getpwnam(buf);
        if (!pw)
            return -1;
        *out = pw->pw_uid;
    } else {
        struct group *gr = getgrnam(buf);
        if (!gr)
            return -1;
        *out = gr->gr_gid;
    }
    return 0;
}

int share_parse_perm(const char *spec, struct share_perm *p, char *err, size_t errlen)
{
    const char *c1 = strchr(spec, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ':')) {
        snprintf(err, errlen, "TCPSM_SHARE=%s: expected OWNER:GROUP:MODE (parts may be empty), "
                 "e.g. www-data::0600 or :tcpsm:0660", spec);
        return -1;
    }
    unsigned v;
    int r = parse_id(spec, (size_t)(c1 - spec), true, &v);
    if (r < 0) {
        snprintf(err, errlen, "TCPSM_SHARE=%s: unknown user '%.*s'", spec, (int)(c1 - spec), spec);
        return -1;
    }
    if (r == 0)
        p->uid = v;
    r = parse_id(c1 + 1, (size_t)(c2 - c1 - 1), false, &v);
    if (r < 0) {
        snprintf(err, errlen, "TCPSM_SHARE=%s: unknown group '%.*s'", spec, (int)(c2 - c1 - 1),
                 c1 + 1);
        return -1;
    }
    if (r == 0)
        p->gid = v;
    if (c2[1]) {
        char *end;
        unsigned long m = strtoul(c2 + 1, &end, 8);
        if (*end || m > 0777) {
            snprintf(err, errlen, "TCPSM_SHARE=%s: the mode is octal, 0000..0777", spec);
            return -1;
        }
        p->mode = (mode_t)m;
    }
    return 0;
}

/* Is someone accepting on path? */
static bool live(const char *path)
{
    struct sockaddr_un sa;
    if (fill_addr(&sa, path) < 0)
        return false;
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool up = syscall(SYS_connect, fd, &sa, sizeof(sa)) == 0;
    syscall(SYS_close, fd);
    return up;
}

int share_listen(const char *path, const struct share_perm *p, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || live(path)) {
            snprintf(err, errlen, "%s: %s", path, S_ISSOCK(st.st_mode) ?
                     "another stack owner serves this stack already" : "exists and is not a socket");
            return -1;
        }
    }
    char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    struct sockaddr_un sa;
    fill_addr(&sa, tmp);
    int fd = (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    unlink(tmp);
    const char *what = "bind";
    if (syscall(SYS_bind, fd, &sa, sizeof(sa)) < 0)
        goto fail;
    what = "chown";
    if (chown(tmp, p->uid, p->gid) < 0)
        goto fail;
    what = "chmod";
    if (chmod(tmp, p->mode) < 0)
        goto fail;
    what = "listen";
    if (syscall(SYS_listen, fd, 64) < 0)
        goto fail;
    what = "rename";
    if (rename(tmp, path) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    syscall(SYS_close, fd);
    unlink(tmp);
    snprintf(err, errlen, "%s: %s: %s", path, what, strerror(e));
    return -1;
}

int share_serve_one(int lfd, share_open_link_fn open_link, void *ctx, const char *region_path)
{
    int c = (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return -1;
    set_timeout(c);
    struct share_req rq;
    long n = syscall(SYS_recvfrom, c, &rq, sizeof(rq), MSG_WAITALL, NULL, NULL);
    if (n != (long)sizeof(rq) || rq.magic != SHARE_MAGIC || rq.version != SHARE_VERSION) {
        syscall(SYS_close, c);          /* a probe (share_listen's live()) or garbage */
        return 0;
    }
    struct share_rep rp = { .magic = SHARE_MAGIC, .version = SHARE_VERSION };
    int fds[2], nfds = 0;
    int lk = open_link(ctx);
    if (lk < 0) {
        rp.status = -lk;
    } else {
        fds[nfds++] = lk;
        int rf = -1;
        if ((rq.flags & SHARE_REQ_REGION) && region_path)
            rf = (int)syscall(SYS_openat, AT_FDCWD, region_path,
                              O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (rf >= 0) {
            fds[nfds++] = rf;
            rp.flags |= SHARE_REP_REGION;
        }
    }
    union { struct cmsghdr align; char buf[CMSG_SPACE(2 * sizeof(int))]; } cm;
    memset(&cm, 0, sizeof(cm));
    struct iovec iov = { .iov_base = &rp, .iov_len = sizeof(rp) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
        ch->cmsg_level = SOL_SOCKET;
        ch->cmsg_type = SCM_RIGHTS;
        ch->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(ch), fds, (size_t)nfds * sizeof(int));
    }
    syscall(SYS_sendmsg, c, &mh, MSG_NOSIGNAL);
    for (int i = 0; i < nfds; i++)
        syscall(SYS_close, fds[i]);
    syscall(SYS_close, c);
    return 0;
}
