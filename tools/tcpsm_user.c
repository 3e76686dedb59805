/* tcpsm-user NAME PROGRAM [ARGS...]: `tcpsm --user NAME`'s helper (run as
 * root by the wrapper, never with the library preloaded).
 *
 * It becomes the stack's owner: it serves the socket file next to the
 * shared region (stack/runtime/share.h), owned by NAME (or as TCPSM_SHARE
 * says), then runs PROGRAM as NAME (setgroups to NAME's groups, setgid,
 * setuid: no capability is left) with the library preloaded. The program
 * lacks CAP_NET_RAW, so its library asks this process for a link socket,
 * which it opens (configured from the same TCPSM_* settings) and hands over;
 * so does every later process of NAME's on that stack without the
 * capability (an exec'd program, a forked child that wants its own member of
 * the fanout group). It forwards the usual termination signals to PROGRAM,
 * and exits with PROGRAM's status when PROGRAM ends, removing the socket
 * file: processes still attached keep their link sockets. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "netdev_packet.h"
#include "runtime_log.h"
#include "share.h"
#include "shm_region.h"

static struct rt_settings set;

static void die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "tcpsm: --user: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    exit(2);
}

/* A fresh send-only link socket for one client; it makes it receive and
 * joins the stack's fanout group itself (no capability needed for that). */
static int open_link(void *ctx)
{
    (void)ctx;
    char err[256];
    bool vnet;
    int fd = netdev_packet_tx_socket(set.ifname, set.offload ? 0 : NETDEV_PACKET_NO_VNET, &vnet,
                                     err, sizeof(err));
    if (fd < 0)
        tcpsm_log(TCPSM_LOG_WARN, "--user: %s", err);
    return fd;
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        die("usage: tcpsm-user NAME PROGRAM [ARGS...]%s%s", "", "");
    if (geteuid() != 0)
        die("needs root (it opens the link, then runs %s as %s)", argv[2], argv[1]);
    struct passwd *pw = getpwnam(argv[1]);
    if (!pw)
        die("no user named '%s'%s", argv[1], "");
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    char err[512];
    int c = config_from_env(env_get, &set, err, sizeof(err));
    if (c == 0)
        die("TCPSM_IF is not set (give --if)%s%s", "", "");
    if (c < 0 || config_check_host(&set, err, sizeof(err)) < 0)
        die("%s%s", err, "");
    tcpsm_log_set_level(set.log_level);

    char reg[128], region_path[200], path[200];
    shm_region_name(reg, sizeof(reg), set.ifname, set.addr);
    snprintf(region_path, sizeof(region_path), "/dev/shm/%s", reg);
    share_path(path, sizeof(path), reg);
    struct share_perm perm = { .uid = uid, .gid = gid, .mode = 0600 };
    const char *spec = getenv("TCPSM_SHARE");
    if (spec && *spec && share_parse_perm(spec, &perm, err, sizeof(err)) < 0)
        die("%s%s", err, "");
    /* The link can be opened here at all (a clear error now, not in the program). */
    int probe = open_link(NULL);
    if (probe < 0)
        die("cannot open the link on %s: %s", set.ifname, strerror(-probe));
    close(probe);
    int lfd = share_listen(path, &perm, err, sizeof(err));
    if (lfd < 0)
        die("%s%s", err, "");
    struct stat mine;
    stat(path, &mine);

    /* Signals to forward, taken through a signalfd; SIGCHLD ends the wait. */
    sigset_t ss, old;
    sigemptyset(&ss);
    int fwd[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };
    for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
        sigaddset(&ss, fwd[i]);
    sigaddset(&ss, SIGCHLD);
    sigprocmask(SIG_BLOCK, &ss, &old);
    int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
    if (sfd < 0)
        die("signalfd: %s%s", strerror(errno), "");

    const char *preload = getenv("TCPSM_USER_PRELOAD");
    pid_t child = fork();
    if (child < 0)
        die("fork: %s%s", strerror(errno), "");
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (initgroups(pw->pw_name, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
            die("cannot become %s: %s", argv[1], strerror(errno));
        if (uid != 0 && setuid(0) == 0)
            die("dropping root as %s did not hold%s", argv[1], "");
        if (preload && *preload)
            setenv("LD_PRELOAD", preload, 1);
        unsetenv("TCPSM_USER_PRELOAD");
        unsetenv("TCPSM_SHARE");        /* the program serves nothing itself */
        execvp(argv[2], argv + 2);
        fprintf(stderr, "tcpsm: --user: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status = 0;
    for (;;) {
        struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            share_serve_one(lfd, open_link, NULL, region_path);
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
                continue;
            if ((int)si.ssi_signo != SIGCHLD) {
                kill(child, (int)si.ssi_signo);
                continue;
            }
            pid_t w = waitpid(child, &status, WNOHANG);
            if (w == child)
                break;
        }
    }
    /* Remove the socket file if it is still ours (not a successor's). */
    struct stat now;
    if (stat(path, &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev)
        unlink(path);
    close(lfd);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
