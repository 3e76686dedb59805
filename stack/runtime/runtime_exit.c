/* Process exit.
 *
 * tcpsm_rt_shutdown (the shim calls it from a destructor; idempotent).
 * While other processes are attached to the stack, exit is what it is on
 * Linux: every socket this process holds is closed (a FIN, or a RST when
 * unread data remains; the connection goes on if another process holds it
 * too), the other processes keep driving the orphans, and this process
 * leaves the stack. The last process to leave ends everything:
 *  1. every connection the application still holds gets its FIN after the
 *     queued data (shutdown SHUT_WR); listeners, unfinished handshakes and
 *     sockets with unread data are closed at once (the core resets the
 *     latter, RFC 9293 3.10.4);
 *  2. it waits, at most EXIT_GRACE_NS, until no connection is left open —
 *     including the ones the application closed itself before exiting;
 *  3. every connection still open, held or orphaned (closed by the
 *     application, its data or FIN still unacknowledged), is reset (RST,
 *     tcpsm_stack_abort_all) so that no peer is left half-open; TIME-WAIT
 *     ones vanish silently. Then the threads are stopped and joined, the
 *     packet socket is closed, the pcap flushed, and the shared region's
 *     name removed.
 * After it, every call returns -ENETDOWN (close returns 0).
 *
 * fork() is in runtime_procs.c. */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counter_names.h"
#include "runtime.h"
#include "runtime_ops.h"

#define EXIT_GRACE_NS 1000000000ull

static bool done_closing(int s)
{
    return s == TCPSM_CLOSED || s == TCPSM_TIME_WAIT;
}

/* Every non-zero core counter, for TCPSM_LOG=debug. */
static void log_counters(const struct tcpsm_counters *c)
{
    char line[400];
    size_t n = 0;
    line[0] = '\0';
    for (size_t i = 0; i < counter_names_n; i++) {
        uint64_t v = counter_value(c, i);
        if (v == 0)
            continue;
        int m = snprintf(line + n, sizeof(line) - n, " %s=%llu", counter_names[i].name, (unsigned long long)v);
        if (m < 0 || (size_t)m >= sizeof(line) - n) {
            line[n] = '\0';
            tcpsm_log(TCPSM_LOG_DEBUG, "counters:%s", line);
            n = 0;
            m = snprintf(line, sizeof(line), " %s=%llu", counter_names[i].name, (unsigned long long)v);
        }
        n += (size_t)m;
    }
    if (n)
        tcpsm_log(TCPSM_LOG_DEBUG, "counters:%s", line);
}

/* Under lock: each socket this process holds, in id order. */
#define FOR_HELD(rs_) \
    for (uint32_t w_ = 0; w_ < RT_MAX_IDS / 64; w_++) \
        for (uint64_t b_ = rt.sh->procs[rt.me].held[w_]; b_; b_ &= b_ - 1) \
            if (((rs_) = rt.sh->socks[w_ * 64 + (uint32_t)__builtin_ctzll(b_)]) != NULL)

static void log_exit(unsigned aborted, long orphans)
{
    const struct tcpsm_counters *c = tcpsm_stack_counters(rt.sh->st);
    netdev_packet_drops(&rt.np);
    tcpsm_log(TCPSM_LOG_INFO, "exit: frames in %llu out %llu (link: rx %llu tx %llu, tx errors %llu, "
              "rx queue drops %llu, truncated %llu, checksums completed %llu, checksums trusted %llu, "
              "large frames in %llu, of them read whole past the ring %llu; sent after the lock %llu, "
              "in %llu batches, %llu left waiting past their call); tcp segs in %llu out %llu, super-segments out %llu, "
              "retransmits %llu, resets out %llu; at exit %u held and %ld orphan connection(s) reset; "
              "shared region %llu KiB peak, %llu allocations refused, lock recovered %llu times, "
              "%llu processes reaped, sockets passed over AF_UNIX: %llu expired unreceived, "
              "%llu beyond the in-flight bound",
              (unsigned long long)c->eth_in, (unsigned long long)c->eth_out,
              (unsigned long long)rt.np.rx_frames, (unsigned long long)rt.np.tx_frames,
              (unsigned long long)rt.np.tx_err, (unsigned long long)rt.np.rx_drops,
              (unsigned long long)rt.np.rx_trunc,
              (unsigned long long)rt.np.rx_csum_fixed, (unsigned long long)rt.np.rx_csum_partial,
              (unsigned long long)rt.np.rx_large, (unsigned long long)rt.np.rx_copied,
              (unsigned long long)rt.np.tx_deferred,
              (unsigned long long)__atomic_load_n(&rt.np.tx_batches, __ATOMIC_RELAXED),
              (unsigned long long)rt.np.tx_kept,
              (unsigned long long)c->tcp_in,
              (unsigned long long)c->tcp_out, (unsigned long long)c->tcp_gso_out,
              (unsigned long long)c->tcp_retrans,
              (unsigned long long)c->tcp_rst_out, aborted, orphans > 0 ? orphans : 0L,
              (unsigned long long)(rt.reg->bytes_peak >> 10),
              (unsigned long long)rt.reg->alloc_fail,
              (unsigned long long)rt.sh->lock_recovered, (unsigned long long)rt.sh->procs_reaped,
              (unsigned long long)rt.sh->pass_expired, (unsigned long long)rt.sh->pass_full);
    if (tcpsm_log_level() >= TCPSM_LOG_DEBUG)
        log_counters(c);
}

/* The last process: graceful close for a bounded time, then resets. */
static void end_all(void)
{
    uint64_t now = rt_now();
    uint64_t deadline = now + EXIT_GRACE_NS;
    struct rt_sock *rs;
    FOR_HELD(rs) {
        struct tcpsm_sock *sk = rs->sk;
        int s = tcpsm_sock_state(sk);
        if ((s == TCPSM_ESTABLISHED || s == TCPSM_CLOSE_WAIT) && tcpsm_sock_rxavail(sk) == 0)
            tcpsm_sock_shutdown(sk, 1, now);
        else if (s == TCPSM_LISTEN || s == TCPSM_CLOSED || s == TCPSM_SYN_SENT ||
                 s == TCPSM_SYN_RECEIVED || s == TCPSM_ESTABLISHED || s == TCPSM_CLOSE_WAIT)
            rt_release(rs, false);
    }

    /* Wait as a poller: every socket event and every connection end wakes us. */
    struct rt_waiter *w = rt_waiter_self();
    if (w) {
        bool was_polling = w->on_pollers;
        rt_poller_add(w);
        while (rt.sh->nactive > 0) {
            int r = rt_wait(w, deadline);
            if (r == -EAGAIN)
                break;          /* -EINTR: a signal at exit; keep waiting until the deadline */
        }
        if (!was_polling)
            rt_poller_del(w);
    }

    now = rt_now();
    unsigned aborted = 0;
    FOR_HELD(rs)
        aborted += rs->sk && !done_closing(tcpsm_sock_state(rs->sk));
    long orphans = rt.sh->nactive - (long)aborted;
    tcpsm_stack_abort_all(rt.sh->st, now);
    FOR_HELD(rs)
        rt_release(rs, false);
    log_exit(aborted, orphans);
}

/* Another process stays: close what this one holds, as the kernel closes a
 * dying process's descriptors. */
static void leave_others(void)
{
    struct rt_sock *rs;
    FOR_HELD(rs)
        rt_release(rs, false);
    /* Counted out of the live processes in this same hold: one that exits
     * after it (before rt_leave here marks this slot gone, past the threads'
     * join) must see itself last and end the orphans. Else two processes
     * exiting together each saw the other live, both left, and the orphans
     * (closed, their data or FIN unacknowledged) were driven by nobody: no
     * retransmission, no RST, the peer waiting for ever (test_scm_rights,
     * the worker and the master exiting on each other's heels, once). */
    rt.sh->procs[rt.me].driving = false;
    if (rt.started)
        tcpsm_log(TCPSM_LOG_INFO, "exit: process %d leaves the stack to the others; its link "
                  "socket received %llu frames", (int)getpid(), (unsigned long long)rt.np.rx_frames);
}

void tcpsm_rt_shutdown(void)
{
    if (rt.config_result != 1 || !rt.reg)
        return;
    /* Never hang at exit: if the stack lock cannot be had, leave the
     * connections as they are (the process is ending anyway). */
    if (!rt_lock_for_exit()) {
        tcpsm_log(TCPSM_LOG_WARN, "exit: the stack is busy (exit from a signal handler?); "
                  "connections left without FIN or RST");
        return;
    }
    if (rt.down || rt.me < 0) {
        rt_unlock();
        return;
    }
    /* The loops below close sockets whose handles other threads of the program may still use
     * while we wait (the lock is released): those calls now fail instead (a use-after-free of
     * the core socket before, found by ASan). */
    /* An exec'd image that holds inherited sockets but never used them:
     * their FINs need this process's link. */
    if (!rt.started && rt.sh->procs[rt.me].nheld)
        (void)rt_start();
    rt.exiting = true;
    rt_reap();
    bool last = rt_live_others() == 0;
    /* The last one ends the connections; it needs its link and threads
     * for that (a forked child that never used the stack starts them). */
    if (last && rt.started && rt.need_threads && rt_threads_start() == 0)
        rt.need_threads = false;
    if (last && rt.sh->st && rt.started && !rt.need_threads)
        end_all();
    else
        leave_others();
    rt.down = true;
    rt_wake_pollers();
    bool threads = rt.started && !rt.need_threads;
    rt_unlock();

    if (threads)
        rt_threads_stop();
    rt_ctl_stop();
    rt_share_stop();

    /* The threads are gone and rt.down keeps every caller out of the core.
     * The stack itself is not freed: a straggling application thread may
     * still hold a socket pointer into it while the process ends. */
    rt_lock();
    if (tcpsm_log_level() >= TCPSM_LOG_DEBUG)
        rt_region_audit();
    rt_leave();
    /* Asked again, not only when this process ended the connections: of
     * processes that exit together (a service's processes all sent SIGTERM
     * at once), each may have seen the others still there at the start;
     * the one that leaves last removes the region. */
    rt_reap();
    last = rt_live_others() == 0;
    if (last)
        rt.reg->dead = 1;       /* nobody attaches to it any more */
    if (rt.started) {
        rt_fd_disown(rt.np.fd);
        netdev_packet_close(&rt.np);
    }
    if (rt.pcap) {
        rt_fd_disown(pcap_writer_fd(rt.pcap));
        pcap_writer_close(rt.pcap);
        rt.pcap = NULL;
    }
    if (rt.trace) {
        rt_fd_disown(trace_log_fd(rt.trace));
        trace_log_close(rt.trace);
        rt.trace = NULL;
    }
    rt_unlock();
    if (last)
        shm_region_unlink(rt.reg_name);
}
