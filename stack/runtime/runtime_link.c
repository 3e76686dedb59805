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
 * nothing.
 *
 * Every member must be read: a frame the group hands to a socket nobody
 * reads is lost. So a forked child does not keep its parent's member (the
 * parent may exit while the child, not yet driving, still holds it: nginx
 * daemonizing, its master never sleeping on the stack): at fork it swaps it
 * for a send-only socket of its own (bound with protocol 0: it receives
 * nothing), opened there (the child still has the parent's privileges; no
 * capability: the stack's owner gives one), and makes that socket receive
 * and join the group when it first sleeps on the stack and starts its
 * threads (rt_proc_ready; neither needs a capability, so nginx workers that
 * drop root after fork still get theirs). A child that can get no socket of
 * its own keeps and reads its parent's: correct, only not spread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
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
    if (share_fetch(share_file, true, &link, region_fd, why, sizeof(why)) < 0) {
        ip_text(ip, sizeof(ip));
        snprintf(err, errlen, "cannot use the stack on %s %s: %s", rt.set.ifname, ip, why);
        return -1;
    }
    rt.link_given = link;
    rt_fd_own(link);
    return 0;
}

/* netdev_packet's defer_ok (under the lock): frames of headers only may be
 * sent after the lock while no other process runs the core (another
 * process's sends would not wait for them; one that only attached, as
 * timeout(1) around the program, sends nothing: rt_live_others). Looked at
 * again every DEFER_RECHECK_NS, not per send (a scan of the process
 * table): a process that began to run the core meanwhile may see a pure
 * ACK of ours overtaken by a newer one, which the peer takes as the old
 * ACK it is. */
#define DEFER_RECHECK_NS 10000000ull
static bool link_defer_ok(void)
{
    static uint64_t checked_at;
    static bool alone;
    uint64_t now = rt_clock();
    if (checked_at == 0 || now - checked_at >= DEFER_RECHECK_NS) {
        alone = rt_live_others() == 0;
        checked_at = now;
    }
    return alone && !rt.down;
}

int rt_link_open(char *err, size_t errlen)
{
    int r;
    uint16_t fanout = rt_fanout_get();
    if (rt.link_given >= 0) {
        int fd = rt.link_given;
        rt.link_given = -1;
        r = netdev_packet_adopt(&rt.np, fd, rt.set.ifname, rt.set.mac, err, errlen);
        if (r < 0) {
            rt_fd_disown(fd);
            return r;
        }
        r = netdev_packet_rx_enable(&rt.np, 0, &fanout);
        if (r < 0) {
            snprintf(err, errlen, "TCPSM_IF=%s: the link socket handed over cannot receive: %s",
                     rt.set.ifname, strerror(-r));
            rt_fd_disown(rt.np.fd);
            netdev_packet_close(&rt.np);
            return r;
        }
    } else {
        r = netdev_packet_open(&rt.np, rt.set.ifname, rt.set.mac,
                               rt.set.offload ? 0 : NETDEV_PACKET_NO_VNET, &fanout, err, errlen);
        if (r < 0)
            return r;
    }
    rt.np.defer_ok = link_defer_ok;
    rt.np.sent = rt_clock_stale;
    rt.link_own = true;
    rt.link_tx = false;
    rt_fanout_set(fanout);
    return 0;
}

/* The child reads its parent's link socket: its ring is mapped again here
 * (fork did not copy it). */
static void keep_parents(void)
{
    int r = netdev_packet_fork_child(&rt.np, true);
    if (r < 0)
        tcpsm_log(TCPSM_LOG_WARN, "fork: the link's receive ring cannot be mapped in the child "
                  "(%s): it receives nothing itself", strerror(-r));
}

void rt_link_fork_child(void)
{
    rt.link_own = false;
    rt.link_tx = false;
    if (!rt.started || rt.np.fd < 0) {
        (void)netdev_packet_fork_child(&rt.np, false);
        return;
    }
    if (rt.sh->fanout_id == 0) {
        keep_parents();         /* no group: parent and child read one socket */
        return;
    }
    int fd = -1;
    bool vnet = false;
    char err[400];
    if (share_have_net_raw()) {
        fd = netdev_packet_tx_socket(rt.set.ifname, rt.np.vnet ? 0 : NETDEV_PACKET_NO_VNET,
                                     &vnet, err, sizeof(err));
    } else if (share_file[0] && access(share_file, F_OK) == 0 &&
               share_fetch(share_file, false, &fd, NULL, err, sizeof(err)) == 0) {
        int v = 0;
        socklen_t l = sizeof(v);
        vnet = syscall(SYS_getsockopt, fd, SOL_PACKET, PACKET_VNET_HDR, &v, &l) == 0 && v;
    }
    if (fd >= 0 && vnet != rt.np.vnet) {
        syscall(SYS_close, fd);         /* frames would not match the stack's offloads */
        fd = -1;
    }
    if (fd < 0) {
        keep_parents();         /* reads the parent's (rt_link_own says so) */
        return;
    }
    (void)netdev_packet_fork_child(&rt.np, false);
    rt_fd_disown(rt.np.fd);
    netdev_packet_swap_fd(&rt.np, fd);
    rt_fd_own(fd);
    rt.link_tx = true;
    rt.sh->procs[rt.me].link = false;   /* no member of the group until it receives */
}

void rt_link_own(void)
{
    if (rt.link_own || rt.np.fd < 0)
        return;
    rt.link_own = true;
    if (!rt.link_tx) {
        if (rt.sh->fanout_id)
            tcpsm_log(TCPSM_LOG_INFO, "process %d reads its parent's link socket (no capability "
                      "and no stack owner to get one of its own)", (int)getpid());
        return;
    }
    rt.link_tx = false;
    uint16_t fanout = rt_fanout_get();
    int r = netdev_packet_rx_enable(&rt.np, 0, &fanout);
    if (r < 0) {
        /* Never a receiver beside the group (each frame would come twice):
         * it still sends; the other processes receive for it. */
        netdev_packet_rx_disable(&rt.np);
        tcpsm_log(TCPSM_LOG_WARN, "process %d: its link socket cannot receive (%s): the other "
                  "processes receive for it", (int)getpid(), strerror(-r));
        return;
    }
    rt_fanout_set(fanout);
}
