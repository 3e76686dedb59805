/* This process's link socket: opened here (CAP_NET_RAW), or handed over by
 * the stack's owner (share.h); and per-process receive.
 *
 * Per-process receive: the link sockets of the processes that drive the
 * stack form one PACKET_FANOUT group (hash of the flow, rollover when one
 * queue is full), so each frame reaches exactly one process, which
 * processes it under the stack lock whoever holds the connection (any
 * process may process any frame: the stack is shared; a waiter in another
 * process is woken through its service thread). Without it every process's
 * receive thread and leader would wake for every frame, all but one for
 * nothing. A forked child inherits its parent's socket and uses it until
 * it first sleeps on the stack (rt_proc_ready); then it opens its own
 * member (or asks the owner for one) and closes its copy of the parent's,
 * so that no socket of the group outlives the process that reads it. A
 * child that cannot get its own (no capability and no owner) keeps reading
 * the parent's: correct, only not spread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"
#include "share.h"

static char share_file[200];

static void ip_text(char *buf, size_t len)
{
    uint32_t a = rt.set.addr;
    snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

int rt_link_fetch(int *region_fd, char *err, size_t errlen)
{
    *region_fd = -1;
    share_path(share_file, sizeof(share_file), rt.reg_name);
    if (share_have_net_raw())
        return 0;               /* it opens the link itself at start */
    char why[400], ip[32];
    int link = -1;
    if (share_fetch(share_file, 0, true, &link, region_fd, why, sizeof(why)) < 0) {
        ip_text(ip, sizeof(ip));
        snprintf(err, errlen, "cannot use the stack on %s %s: %s", rt.set.ifname, ip, why);
        return -1;
    }
    rt.link_given = link;
    rt_fd_own(link);
    return 0;
}

/* Does a process other than this one read a member of the group? */
static bool group_alive(void)
{
    for (int i = 0; i < RT_MAX_PROCS; i++)
        if (i != rt.me && atomic_load(&rt.sh->procs[i].pid) > 0 && rt.sh->procs[i].driving)
            return true;
    return false;
}

static void join(void)
{
    /* With no member left the id may since have gone to another stack's
     * group (on this interface, its frames would come to us): start a new one. */
    uint16_t id = group_alive() ? rt.sh->fanout_id : 0;
    int r = netdev_packet_fanout(rt.np.fd, &id);
    if (r < 0) {
        tcpsm_log(TCPSM_LOG_INFO, "PACKET_FANOUT: %s: processes share one link socket",
                  strerror(-r));
        return;
    }
    rt.sh->fanout_id = id;
}

int rt_link_open(char *err, size_t errlen)
{
    int r;
    if (rt.link_given >= 0) {
        int fd = rt.link_given;
        rt.link_given = -1;
        r = netdev_packet_adopt(&rt.np, fd, rt.set.ifname, rt.set.mac, err, errlen);
        if (r < 0)
            rt_fd_disown(fd);
    } else {
        r = netdev_packet_open(&rt.np, rt.set.ifname, rt.set.mac,
                               rt.set.offload ? 0 : NETDEV_PACKET_NO_VNET, err, errlen);
    }
    if (r < 0)
        return r;
    rt.link_own = true;
    join();
    return 0;
}

void rt_link_own(void)
{
    if (rt.link_own || rt.np.fd < 0 || rt.sh->fanout_id == 0)
        return;
    int fd = -1;
    char err[400];
    if (share_have_net_raw()) {
        struct netdev_packet np;
        if (netdev_packet_open(&np, rt.set.ifname, rt.set.mac,
                               rt.np.vnet ? 0 : NETDEV_PACKET_NO_VNET, err, sizeof(err)) == 0) {
            fd = np.fd;
            np.fd = -1;
            netdev_packet_close(&np);
        }
    } else if (access(share_file, F_OK) == 0) {
        share_fetch(share_file, 0, false, &fd, NULL, err, sizeof(err));
    } else {
        snprintf(err, sizeof(err), "no CAP_NET_RAW and no owner at %s", share_file);
    }
    rt.link_own = true;         /* tried once: the parent's socket is it otherwise */
    if (fd < 0) {
        tcpsm_log(TCPSM_LOG_INFO, "process %d reads its parent's link socket (%s)",
                  (int)getpid(), err);
        return;
    }
    uint16_t id = rt.sh->fanout_id;
    int r = netdev_packet_fanout(fd, &id);
    if (r < 0) {
        tcpsm_log(TCPSM_LOG_INFO, "process %d reads its parent's link socket (PACKET_FANOUT: %s)",
                  (int)getpid(), strerror(-r));
        syscall(SYS_close, fd);
        return;
    }
    rt_fd_disown(rt.np.fd);
    netdev_packet_swap_fd(&rt.np, fd);
    rt_fd_own(fd);
}
