/* The runtime: configuration, lazy start, and the thread-safe blocking
 * socket API of tcpsm.h over the pure core (see runtime.h for the locking
 * and wake-up scheme, runtime_wait.c for sleeping). */
#include "runtime.h"
#include "runtime_ops.h"

#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RT_RCVBUF_MAX (4u << 20)   /* receive buffer auto-tuning ceiling */

struct rt_state rt = {
    .cfg_lock = PTHREAD_MUTEX_INITIALIZER,
    .config_result = -2,
    .rx_stop_efd = -1,
    .rx_ep = -1,
    .me = -1,
    .fork_slot = -1,
    .link_given = -1,
};

/* The holder died (kill -9) with the lock: whatever it was doing may be
 * half done; the region is repaired before anything else runs on it
 * (runtime_repair.c), then the processes that are gone are cleaned up. */
static void lock_recovered(void)
{
    pthread_mutex_consistent(&rt.reg->lock);
    atomic_store_explicit(&rt.owner, (unsigned long)pthread_self(), memory_order_relaxed);
    if (rt.sh->lock_left_clean) {
        /* It took the lock to die between operations (tcpsm_signal_fatal). */
        rt.sh->lock_left_clean = false;
        rt.sh->lock_recovered_clean++;
        tcpsm_log(TCPSM_LOG_DEBUG, "the stack lock's holder died of a signal between operations");
        shm_journal_reset(rt.reg);
    } else {
        rt.sh->lock_recovered++;
        tcpsm_log(TCPSM_LOG_WARN, "the stack lock's holder died: lock recovered");
        rt_repair();
    }
    rt_reap();
}

__thread bool rt_t_runtime;

/* The lock was just taken (e: the locking call's result): who holds it,
 * and after a holder that died, the repair (lock_recovered). The allocation
 * journal starts empty for this holder (shm_region.h). */
static void took_lock(int e)
{
    atomic_store_explicit(&rt.owner, (unsigned long)pthread_self(), memory_order_relaxed);
    atomic_store_explicit(&rt.owner_app, !rt_t_runtime, memory_order_relaxed);
    rt_clock_hold_begin();      /* this hold reads the clock afresh */
    netdev_packet_defer_begin();
    if (__builtin_expect(e == EOWNERDEAD, 0)) {
        if (!rt.sh)
            rt.sh = rt.reg->root;       /* attaching: the region is made already */
        if (rt.sh)
            lock_recovered();
        else
            pthread_mutex_consistent(&rt.reg->lock);
    }
    shm_journal_reset(rt.reg);
}

/* rt_t_hold is raised before the lock is taken and dropped after it is
 * released: a signal handler never runs while this thread holds it. */
void rt_lock(void)
{
    rt_t_hold++;
    int e = pthread_mutex_lock(&rt.reg->lock);
    took_lock(e);
}

bool rt_trylock(void)
{
    rt_t_hold++;
    int e = pthread_mutex_trylock(&rt.reg->lock);
    if (e != 0 && e != EOWNERDEAD) {
        rt_t_hold--;
        return false;
    }
    took_lock(e);
    return true;
}

bool rt_lock_for_exit(void)
{
    if (atomic_load_explicit(&rt.owner, memory_order_relaxed) == (unsigned long)pthread_self())
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    rt_t_hold++;
    int e = pthread_mutex_timedlock(&rt.reg->lock, &ts);
    if (e != 0 && e != EOWNERDEAD) {
        rt_t_hold--;
        return false;
    }
    took_lock(e);
    return true;
}

static __thread bool t_out_flush;       /* this unlock is the last before a sleep */

/* Under the lock, frames waiting at the end of a call: whether they may
 * wait for a later one. An event loop under load answers every request its
 * wait returned, waits again and finds more: its replies, FINs and ACKs
 * leave together when it sleeps (rt_unlock_sleep) or a wait finds nothing
 * (the shim: tcpsm_rt_flush_output), the batch is full, or
 * the oldest has waited RT_OUT_HOLD_NS: one sendmmsg and one wake-up of
 * the peer for many (on veth the sender runs the peer's receive and its
 * wake-up; nginx under ab: ~16 frames a batch, not 3). Only an application thread, only
 * while the receive thread is parked for it (it took the link's frames
 * within RX_PARK_NS, so it comes back often), with no other thread asleep
 * in the stack (it would not send them), only once the thread has made
 * more than one frame since it last slept, now or in its previous cycle (a
 * client's request and its wait, a ping-pong, have nothing to join them:
 * held, the request would leave only after the wait's own work, a few
 * microseconds of a pinned ping-pong's ~11 us), and for at most RT_OUT_HOLD_NS:
 * a thread that keeps coming back without waiting sends them then; one
 * that does not come back has them sent by the receive thread when its
 * park ends (RX_PARK_NS after its last look, rx_main). */
static bool out_keep(bool waiting)
{
    static uint64_t gen, since, mark, prev;     /* under the lock */
    uint64_t made = rt.np.tx_deferred - mark;   /* frames since the last sleep */
    if (t_out_flush && !rt_t_runtime) {
        prev = made;            /* a cycle of the loop ends */
        mark = rt.np.tx_deferred;
    }
    if (!waiting || rt_t_runtime || t_out_flush || !rt.started || rt.down || rt.exiting ||
        rt.leader || rt.followers || !atomic_load_explicit(&rt.rx_watch, memory_order_relaxed) ||
        (made < 2 && prev < 2))
        return false;
    uint64_t now = rt_clock(), g = netdev_packet_defer_gen(&rt.np);
    if (g != gen) {
        gen = g;                /* a new batch: its first frames wait from now */
        since = now;
    }
    if (now - since >= RT_OUT_HOLD_NS)
        return false;
    rt.np.tx_kept++;
    return true;
}

__thread unsigned char rt_t_out_held;
__thread struct tcpsm_sock *rt_t_out_sk;

/* Under lock: the reply this thread's previous call held goes now. */
static void out_held_send(void)
{
    rt_t_out_held = 0;
    rt_t_out_sk = NULL;
    tcpsm_stack_release_output(rt.sh->st, rt_clock());
}

void rt_unlock(void)
{
    /* The receive thread left the link's frames to this holder. */
    if (__builtin_expect(atomic_load_explicit(&rt.rx_deferred, memory_order_relaxed), 0) &&
        !rt_t_runtime && atomic_exchange(&rt.rx_deferred, false) && !rt.leader)
        rt_link_service();
    if (rt.started && !rt.down) {
        /* An application thread drives the timers while it comes back
         * often (rt_drive_cover): it runs what is due as it leaves, so
         * the service thread need not be woken for a deadline it would
         * cover (a paced burst every few hundred microseconds was a
         * futex wake-up and a contended lock each). A follower about to
         * sleep does not come back on its own: it drives nothing. */
        bool drives = !rt_t_runtime && !rt_t_nodrive;
        rt_t_nodrive = false;
        /* A reply held by this thread's previous call (its FIN, had it
         * closed, would have joined it) leaves as this call ends. */
        if (rt_t_out_held && !rt_t_runtime) {
            if (rt_t_out_held == 2) {
                out_held_send();
            } else {
                rt_t_out_held = 2;
            }
        }
        /* The service thread woke for a due timer and left it to this
         * holder (rt_svc_lock_or_defer): run it even if this thread does
         * not drive (a follower about to sleep). */
        bool svc_left = __builtin_expect(atomic_load_explicit(&rt.svc_deferred,
                                                              memory_order_relaxed), 0) &&
                        !rt_t_runtime && atomic_exchange(&rt.svc_deferred, false);
        uint64_t now = 0;
        if (drives || svc_left)
            now = rt_drive_timers(true);
        if (drives)
            atomic_store_explicit(&rt.drive_last, now, memory_order_relaxed);
        /* The service thread must look again before the new deadline,
         * unless it does before the application's threads stop covering
         * it (never woken by a thread that drives: it sleeps at most
         * RT_DRIVE_PARK_NS while they do). */
        uint64_t d = tcpsm_stack_next_deadline(rt.sh->st);
        if (rt.svc_sleep_until != 0 && d < rt.svc_sleep_until) {
            uint64_t c = rt_drive_cover(now ? now : rt_clock(), d);
            if (!c || rt.svc_sleep_until > c) {
                rt.svc_sleep_until = 0;
                rt_kick(rt.me);
            }
        }
    }
    /* The frames made under the lock go out after it (netdev_packet.h),
     * still before a deferred signal handler runs, or wait for a later
     * call (out_keep). */
    bool deferred = netdev_packet_defer_end(&rt.np);
    if (out_keep(deferred))
        deferred = false;
    atomic_store_explicit(&rt.owner_app, false, memory_order_relaxed);
    atomic_store_explicit(&rt.owner, 0, memory_order_relaxed);
    rt_clock_hold_end();
    pthread_mutex_unlock(&rt.reg->lock);
    if (deferred)
        netdev_packet_defer_send(&rt.np);
    if (--rt_t_hold == 0 && rt_sig_deferred())
        rt_sig_reraise();       /* handlers deferred while the lock was held run now */
}

void rt_unlock_sleep(void)
{
    t_out_flush = true;
    rt_unlock();
    t_out_flush = false;
}

void tcpsm_rt_flush_output(void)
{
    netdev_packet_defer_send(&rt.np);   /* nothing to do before the link exists */
}

/* ------------------------------------------------------------ config */

static const char *env_get(const char *name)
{
    return getenv(name);
}

static void snapshot_kernel_addrs(void)
{
    struct ifaddrs *ifa0;
    rt.nkaddr = 0;
    rt.nkaddr6 = 0;
    if (getifaddrs(&ifa0) < 0)
        return;
    for (struct ifaddrs *ifa = ifa0; ifa; ifa = ifa->ifa_next) {
        if (rt.nkaddr6 < sizeof(rt.kaddr6) / sizeof(rt.kaddr6[0]) && ifa->ifa_addr &&
            ifa->ifa_addr->sa_family == AF_INET6)
            memcpy(rt.kaddr6[rt.nkaddr6++],
                   ((struct sockaddr_in6 *)(void *)ifa->ifa_addr)->sin6_addr.s6_addr, 16);
        if (rt.nkaddr < sizeof(rt.kaddr) / sizeof(rt.kaddr[0]) && ifa->ifa_addr &&
            ifa->ifa_addr->sa_family == AF_INET)
            rt.kaddr[rt.nkaddr++] =
                ntohl(((struct sockaddr_in *)(void *)ifa->ifa_addr)->sin_addr.s_addr);
    }
    freeifaddrs(ifa0);
}

int tcpsm_rt_config(void)
{
    pthread_mutex_lock(&rt.cfg_lock);
    if (rt.config_result != -2) {
        int r = rt.config_result;
        pthread_mutex_unlock(&rt.cfg_lock);
        return r;
    }
    char err[512];
    int r = config_from_env(env_get, &rt.set, err, sizeof(err));
    if (r == 1 && (config_check_host(&rt.set, err, sizeof(err)) < 0 ||
                   config_check_files(&rt.set, err, sizeof(err)) < 0))
        r = -1;
    /* The stack belongs to the address: attach to its shared region now,
     * so that every lock from here on is the region's. */
    if (r == 1 && rt_attach(err, sizeof(err)) < 0)
        r = -1;
    if (r < 0) {
        tcpsm_log(TCPSM_LOG_ERROR, "%s", err);
    } else {
        tcpsm_log_set_level(rt.set.log_level);
        if (r == 1) {
            snapshot_kernel_addrs();
            rt_alloc_install();
            rt_atfork_install();
        }
    }
    rt.config_result = r;
    pthread_mutex_unlock(&rt.cfg_lock);
    return r;
}

bool tcpsm_rt_enabled(void)
{
    if (rt.config_result == -2)
        tcpsm_rt_config();
    return rt.config_result == 1 && rt.me >= 0;
}

/* ------------------------------------------------------------ start */

static void pcap_tap(void *ctx, const uint8_t *data, uint32_t len)
{
    (void)ctx;
    if (rt.pcap)
        pcap_writer_frame(rt.pcap, data, len);
    rt_capture_frame(data, len);        /* tcpsm capture (runtime_capture.c) */
}

/* Gathering a 64 KiB frame and finishing its checksum for the tap costs a
 * copy: done only while someone listens. */
static bool tap_want(void *ctx)
{
    (void)ctx;
    return rt.pcap || rt_capture_active();
}

/* Connections not yet closed, counted from the state transitions so the
 * exit path can wait for orphans (closed by the application, still sending
 * their FIN) that it holds no reference to. */
static bool active_state(int s)
{
    return s == TCPSM_SYN_SENT || s == TCPSM_SYN_RECEIVED || s == TCPSM_ESTABLISHED ||
           s == TCPSM_FIN_WAIT_1 || s == TCPSM_FIN_WAIT_2 || s == TCPSM_CLOSE_WAIT ||
           s == TCPSM_CLOSING || s == TCPSM_LAST_ACK;
}

static void on_trace(void *ctx, const struct tcpsm_trace_event *ev)
{
    (void)ctx;
    rt.sh->nactive += (long)active_state(ev->new_state) - (long)active_state(ev->old_state);
    if (rt.trace)
        trace_log_event(rt.trace, ev);
    if (!active_state(ev->new_state))
        rt_wake_pollers();      /* the exit path waits as a poller */
}

static int stack_make(uint64_t now);

/* This process's callbacks for the core (tcpsm_stack_bind). */
static void host_callbacks(struct tcpsm_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->sock_event = rt_sock_event;
    cfg->trace = on_trace;
}

static int start_locked(void)
{
    char err[512];
    uint64_t now = rt_now();
    int r = rt_link_open(err, sizeof(err));
    if (r < 0) {
        tcpsm_log(TCPSM_LOG_ERROR, "%s", err);
        return r;
    }
    rt_fd_own(rt.np.fd);
    if (rt.set.pcap_path[0]) {
        rt.pcap = pcap_writer_open(rt.set.pcap_path);
        if (!rt.pcap) {
            tcpsm_log(TCPSM_LOG_ERROR, "TCPSM_PCAP=%s: %s", rt.set.pcap_path, strerror(errno));
            r = -errno;
            goto fail;
        }
        rt_fd_own(pcap_writer_fd(rt.pcap));
    }
    if (rt.pcap || rt.set.run_dir[0]) {
        rt.np.tap = pcap_tap;
        rt.np.tap_want = tap_want;
    }
    if (rt.set.trace_stderr || rt.set.trace_path[0]) {
        rt.trace = trace_log_open(rt.set.trace_stderr ? NULL : rt.set.trace_path, now);
        if (!rt.trace) {
            tcpsm_log(TCPSM_LOG_ERROR, "TCPSM_TRACE=%s: %s", rt.set.trace_path, strerror(errno));
            r = -errno;
            goto fail;
        }
        rt_fd_own(trace_log_fd(rt.trace));
    }

    bool made = false;
    if (!rt.sh->st) {
        r = stack_make(now);
        if (r < 0)
            goto fail;
        made = true;
    } else {
        /* Made by another process (maybe another program, its code
         * elsewhere): this process's link and callbacks become its host here. */
        struct tcpsm_config cb;
        host_callbacks(&cb);
        r = tcpsm_stack_bind(rt.sh->st, &cb, &rt.np.dev);
        if (r < 0) {
            tcpsm_log(TCPSM_LOG_ERROR, "cannot run the shared stack: %s", strerror(-r));
            goto fail;
        }
    }
    r = rt_threads_start();
    if (r < 0) {
        tcpsm_log(TCPSM_LOG_ERROR, "cannot start the stack threads: %s", strerror(-r));
        if (made) {
            tcpsm_stack_free(rt.sh->st);
            rt.sh->st = NULL;
        }
        goto fail;
    }
    rt.started = true;
    rt_ctl_start();             /* tcpsm stat / tcpsm capture (runtime_ctl.c) */
    rt_share_start();           /* TCPSM_SHARE: the owner's socket file (runtime_share.c) */
    char a6[INET6_ADDRSTRLEN] = "-";
    if (rt.set.prefix6_len)
        inet_ntop(AF_INET6, rt.set.addr6, a6, sizeof(a6));
    tcpsm_log(TCPSM_LOG_INFO, "stack %s on %s: %u.%u.%u.%u/%u %s/%u mac "
              "%02x:%02x:%02x:%02x:%02x:%02x mtu %u offloads %s, receive %s, shared region %s",
              made ? "up" : "joined", rt.set.ifname, rt.set.addr >> 24,
              (rt.set.addr >> 16) & 255, (rt.set.addr >> 8) & 255, rt.set.addr & 255,
              rt.set.prefix_len, a6, rt.set.prefix6_len, rt.set.mac[0], rt.set.mac[1],
              rt.set.mac[2], rt.set.mac[3], rt.set.mac[4], rt.set.mac[5], rt.np.dev.mtu,
              rt.np.vnet ? "on (vnet header: csum, tso)" : "off",
              rt.np.ring ? "ring (TPACKET_V2)" : "recvmmsg", rt.reg_name);
    return 0;
fail:
    rt.sh->procs[rt.me].link = false;
    if (rt.trace) {
        rt_fd_disown(trace_log_fd(rt.trace));
        trace_log_close(rt.trace);
        rt.trace = NULL;
    }
    if (rt.pcap) {
        rt_fd_disown(pcap_writer_fd(rt.pcap));
        pcap_writer_close(rt.pcap);
        rt.pcap = NULL;
    }
    rt_fd_disown(rt.np.fd);
    netdev_packet_close(&rt.np);
    return r;
}

/* read(2) of exactly len bytes from a regular file of ours, mode 0600. */
static bool key_read(int fd, void *key, size_t len)
{
    struct stat stt;
    if (syscall(SYS_fstat, fd, &stt) < 0 || !S_ISREG(stt.st_mode) || (stt.st_mode & 077) ||
        stt.st_uid != geteuid())
        return false;
    return syscall(SYS_read, fd, key, len) == (long)len;
}

/* The stack's secret (ISNs, timestamp offsets, ephemeral ports) is kept in
 * TCPSM_RUN_DIR/secret, made once (mode 0600) and shared by every stack of
 * the user that uses that directory, as Linux keeps one per boot: a stack
 * started again on the same address then continues the same ISN and
 * timestamp clocks for each 4-tuple (RFC 6528, RFC 7323 5.3), so a peer
 * still holding a reused port in TIME-WAIT takes the new SYN instead of
 * rejecting it by PAWS (with a fresh random key, half of them were: each
 * ab run on the stack as a client is a new stack, and a run after 15,000
 * connections stalled on 1 s SYN retransmissions). Without a usable run
 * directory the key is random per stack, as before. */
static bool run_dir_secret(void *key, size_t len)
{
    const char *dir = rt.set.run_dir;
    if (!dir[0])
        return false;
    char path[sizeof(rt.set.run_dir) + 16], tmp[sizeof(rt.set.run_dir) + 40];
    snprintf(path, sizeof(path), "%s/secret", dir);
    for (int tries = 0; tries < 2; tries++) {
        long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
            bool ok = key_read((int)fd, key, len);
            syscall(SYS_close, fd);
            return ok;
        }
        if (errno != ENOENT)
            return false;
        /* Made whole under another name, then linked into place: a reader
         * never sees a short file, and of two makers the first wins. */
        if (syscall(SYS_mkdirat, AT_FDCWD, dir, 0755) < 0 && errno != EEXIST)
            return false;
        if (getrandom(key, len, 0) != (ssize_t)len)
            return false;
        snprintf(tmp, sizeof(tmp), "%s/secret.%d", dir, (int)getpid());
        fd = syscall(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     0600);
        if (fd < 0)
            return false;
        bool written = syscall(SYS_write, fd, key, len) == (long)len;
        syscall(SYS_close, fd);
        long l = written ? syscall(SYS_linkat, AT_FDCWD, tmp, AT_FDCWD, path, 0) : -1;
        int e = errno;
        syscall(SYS_unlinkat, AT_FDCWD, tmp, 0);
        if (l == 0)
            return true;
        if (!written || e != EEXIST)
            return false;
        /* another stack made it meanwhile: read that one */
    }
    return false;
}

/* The host's default congestion control (net.ipv4.tcp_congestion_control),
 * as Linux gives its own sockets; left empty if it cannot be read (the
 * core then takes CUBIC, as for a name it lacks). */
static void host_congestion(char *out, size_t size)
{
    memset(out, 0, size);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/net/ipv4/tcp_congestion_control",
                          O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char buf[32];
    long n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
    syscall(SYS_close, fd);
    if (n <= 0)
        return;
    size_t i = 0;
    while (i < (size_t)n && i + 1 < size && buf[i] > ' ')
        i++;
    memcpy(out, buf, i);
}

/* The first process to start makes the stack, in the shared region. */
static int stack_make(uint64_t now)
{
    struct tcpsm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = rt.set.addr;
    cfg.prefix_len = rt.set.prefix_len;
    cfg.gateway = rt.set.gateway;
    memcpy(cfg.addr6, rt.set.addr6, 16);
    cfg.prefix6_len = rt.set.prefix6_len;
    memcpy(cfg.gateway6, rt.set.gateway6, 16);
    memcpy(cfg.mac, rt.set.mac, 6);
    /* RFC 6528: the ISN key must be secret and unpredictable. */
    if (!run_dir_secret(cfg.secret, sizeof(cfg.secret)) &&
        getrandom(cfg.secret, sizeof(cfg.secret), 0) != (ssize_t)sizeof(cfg.secret)) {
        tcpsm_log(TCPSM_LOG_ERROR, "getrandom: %s", strerror(errno));
        return -EIO;
    }
    /* Linux grows a bulk receiver's buffer (tcp_rmem[2]); with the core's
     * fixed 256 KiB a kernel sender on veth stalls on a full window
     * whenever the reader or the receive thread is descheduled a moment. */
    cfg.rcvbuf_max = rt.set.rcvbuf_max ? rt.set.rcvbuf_max : RT_RCVBUF_MAX;
    cfg.mem_max = rt.set.mem_max;
    cfg.mtu_probing = rt.set.mtu_probing;       /* TCPSM_MTU_PROBING */
    cfg.sndbuf = rt.set.sndbuf;         /* TCPSM_SNDBUF/TCPSM_RCVBUF; 0: the core's default */
    cfg.rcvbuf = rt.set.rcvbuf;
    host_congestion(cfg.congestion, sizeof(cfg.congestion));
    if (cfg.congestion[0] && tcpsm_cc_by_name(cfg.congestion) < 0)
        tcpsm_log(TCPSM_LOG_INFO, "the host's congestion control %s is not in the stack: "
                  "cubic", cfg.congestion);
    struct tcpsm_config cb;
    host_callbacks(&cb);
    cfg.sock_event = cb.sock_event;
    cfg.trace = cb.trace;
    rt.sh->st = tcpsm_stack_new(&cfg, &rt.np.dev, now);
    if (!rt.sh->st) {
        tcpsm_log(TCPSM_LOG_ERROR, "cannot create the stack: shared region too small "
                  "(TCPSM_SHM_MB=%u)", rt.set.shm_mb);
        return -ENOBUFS;
    }
    rt.sh->t0 = now;
    return 0;
}

/* ------------------------------------------------------------ helpers */

/* Under lock, before this process sleeps on the stack (rt_wait, a poller,
 * an epoll instance): a forked child starts its own threads then (it has
 * the link socket already: the parent's, inherited). Only a process with a
 * service thread can be woken by another process, and one that never
 * sleeps needs none: a child that forks, works a moment and _exit()s does
 * not leave threads to die inside the stack lock. */
int rt_proc_ready(void)
{
    if (__builtin_expect(rt.need_threads, 0)) {
        if (rt.down || rt.exiting || rt.me < 0)
            return -ENETDOWN;
        rt_link_own();
        int r = rt_threads_start();
        if (r < 0) {
            tcpsm_log(TCPSM_LOG_ERROR, "cannot start the stack threads: %s", strerror(-r));
            return -ENETDOWN;
        }
        rt.need_threads = false;
    }
    return 0;
}

/* Under lock: the socket is usable (stack up, this process attached and
 * holding it). */
static int usable(const struct tcpsm_sock *sk)
{
    if (!sk)
        return -EBADF;
    if (rt.down || rt.exiting || rt.me < 0)
        return -ENETDOWN;
    if (__builtin_expect(!rt.started, 0))
        return rt_start();      /* sockets inherited across exec: first use */
    return 0;
}

int rt_start(void)
{
    if (rt.started)
        return 0;
    if (rt.down || rt.exiting || rt.me < 0 || rt.start_failed)
        return -ENETDOWN;
    if (start_locked() < 0) {
        rt.start_failed = true;
        return -ENETDOWN;
    }
    return 0;
}

static struct rt_sock *wrap(struct tcpsm_sock *sk)
{
    struct rt_sock *rs = rt_alloc(sizeof(*rs));
    if (!rs)
        return NULL;
    if (rt_id_new(rs) < 0) {
        rt_free(rs);
        return NULL;
    }
    rs->sk = sk;
    rs->users = 1;
    rt_hold(rs);
    tcpsm_sock_set_user(sk, rs);
    return rs;
}

static uint64_t deadline_of(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return UINT64_MAX;
    uint64_t now = rt_now();
    return (uint64_t)timeout_ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + (uint64_t)timeout_ns;
}

/* A blocking call in progress on rs: holds rs alive and keeps the calling
 * thread on its waiter list (registered before any check). */
struct blocker {
    struct rt_sock *rs;
    struct rt_waiter *w;
    bool active;                /* registered: block_end has work to do */
    bool excl;                  /* an accept: waits exclusively (rt_wake_sock_event) */
    bool reader;                /* a recv: counted in rs->readers while registered */
    unsigned seq0;              /* rt_t_sigseq at registration: a handler since gives EINTR */
    struct blocker *outer;      /* w->blocker before (a handler's call inside a call) */
};

static int block_begin(struct blocker *b, struct tcpsm_sock *sk)
{
    b->rs = tcpsm_sock_user(sk);
    b->w = rt_waiter_self();
    if (!b->w)
        return -ENOMEM;
    if (!b->rs)
        return -EBADF;
    b->rs->refs++;
    /* The entry lives in the waiter (shared region): another process's
     * event walks rs's queue. */
    if (b->excl)
        rt_sock_wait_add_excl(b->rs, &b->w->bq, b->w);
    else
        rt_sock_wait_add(b->rs, &b->w->bq, b->w);
    b->active = true;
    if (b->reader)
        b->rs->readers++;
    b->seq0 = rt_t_sigseq;
    b->outer = b->w->blocker;
    b->w->blocker = b;
    rt_t_in_wait++;
    /* Before the first sleep, the reply this thread's previous call held
     * goes (the sleep would send it; nothing of this call can join it),
     * under the lock and after the batch, as a full batch does; then take
     * what the link has (nobody may be polling it): on veth the answer to
     * what was just sent is often there (a ping-pong's client), and the
     * retry that follows succeeds at once. */
    if (rt_t_out_held == 2 && !rt_t_runtime && rt.started && !rt.down) {
        out_held_send();
        netdev_packet_defer_send(&rt.np);
    }
    if (!rt.leader)
        rt_link_service_awake();        /* the retry, then rt_wait, look at `signalled` */
    return 0;
}

/* Sleep once; afterwards -EBADF if another thread closed the socket. */
static int block_wait(struct blocker *b, uint64_t deadline)
{
    if (!b->active || rt_t_sigseq != b->seq0)
        return -EINTR;          /* a handler ran inside this call, maybe before the sleep */
    rt_note_seen(b->rs);
    int r = rt_wait(b->w, deadline);
    if (!b->active)
        return -EINTR;          /* a handler withdrew the registration (rt_blockers_cancel) */
    if (!b->rs->sk || rt.down)
        return rt.down ? -ENETDOWN : -EBADF;
    if (r == 0 && rt_t_sigseq != b->seq0)
        return -EINTR;
    return r;
}

static void block_end(struct blocker *b)
{
    if (!b->active)
        return;
    b->active = false;
    if (b->reader)
        b->rs->readers--;
    rt_sock_wait_del(&b->w->bq);
    /* An exclusive waiter that leaves with connections still queued (it
     * took one of several, or a signal or its timeout ended the wait
     * after it was chosen) hands the wake-up on, so none is left waiting
     * with sleepers on the queue. */
    if (b->excl && b->rs->sk && (tcpsm_sock_poll(b->rs->sk) & TCPSM_POLLIN))
        rt_wake_sock_event(b->rs);
    rt_sock_unref(b->rs);
    rt_lead_leave(b->w);
    b->w->blocker = b->outer;
    rt_t_in_wait--;
}

void rt_blockers_cancel(struct rt_waiter *w)
{
    while (w->blocker)
        block_end(w->blocker);
}

/* One step of a blocking loop whose last try said "not yet": the first step
 * registers the thread and returns 0 so the caller tries again (no wake-up
 * can be lost in between), later steps sleep. Negative: stop with it. */
static int block_step(struct blocker *b, struct tcpsm_sock *sk, uint64_t deadline)
{
    return b->active ? block_wait(b, deadline) : block_begin(b, sk);
}

/* Under lock, after the application changed readiness itself (a send
 * that filled the buffer, a read that drained it, an accept that emptied
 * the queue): the core reports only what the network does, so record the
 * new mask here, or the next transition back (space freed: POLLOUT) would
 * look like no change and wake no one (EPOLLET writers wait for exactly it). */
static void note_app_change(struct blocker *b, struct tcpsm_sock *sk)
{
    if (!sk || usable(sk) < 0)
        return;
    /* After a sleep another thread may have closed sk (b->rs->sk NULL). */
    struct rt_sock *rs = b->active ? b->rs : tcpsm_sock_user(sk);
    if (rs && rs->sk)
        rt_note_seen(rs);
}

/* ------------------------------------------------------------ API */

bool tcpsm_rt_routable(in_addr_t dst_be)
{
    uint32_t dst = ntohl(dst_be);
    if ((dst >> 24) == 127 || !tcpsm_rt_enabled())
        return false;
    for (unsigned i = 0; i < rt.nkaddr; i++)
        if (rt.kaddr[i] == dst)
            return false;
    rt_lock();
    bool ok;
    if (rt.started && !rt.down) {
        ok = tcpsm_stack_routable(rt.sh->st, dst);
    } else {
        /* Same rule as the core, from the configuration alone. */
        uint32_t mask = rt.set.prefix_len ? ~0u << (32 - rt.set.prefix_len) : 0;
        ok = rt.set.addr != 0 && (dst >> 24) != 0 && (dst >> 28) < 0xe && dst != rt.set.addr &&
             (((dst & mask) == (rt.set.addr & mask) && (dst & ~mask) != ~mask) ||
              rt.set.gateway != 0);
    }
    rt_unlock();
    return ok;
}

bool tcpsm_rt_routable_addr(const struct tcpsm_addr *dst)
{
    if (addr_is_v4(dst))
        return tcpsm_rt_routable(htonl(addr_v4(dst)));
    if (!tcpsm_rt_enabled() || !rt.set.prefix6_len)
        return false;
    for (unsigned i = 0; i < rt.nkaddr6; i++)
        if (memcmp(rt.kaddr6[i], dst->b, 16) == 0)
            return false;
    rt_lock();
    bool ok;
    if (rt.started && !rt.down) {
        ok = tcpsm_stack_routable_addr(rt.sh->st, dst);
    } else {
        /* from the configuration alone: on-link, link-local, or any with a
         * router (given, or to come from an advertisement) */
        const uint8_t *d = dst->b;
        ok = !addr6_is_zero(d) && !addr6_is_multicast(d) && !addr6_is_loopback(d) &&
             memcmp(d, rt.set.addr6, 16) != 0;
    }
    rt_unlock();
    return ok;
}

int tcpsm_socket(struct tcpsm_sock **out)
{
    if (!out)
        return -EFAULT;
    if (!tcpsm_rt_enabled())
        return -ENETDOWN;
    rt_lock();
    int r = 0;
    if (rt.down || rt.me < 0)
        r = -ENETDOWN;
    else
        r = rt_start();
    struct tcpsm_sock *sk = NULL;
    if (r == 0)
        r = tcpsm_sock_new(rt.sh->st, &sk);
    if (r == 0 && !wrap(sk)) {
        tcpsm_sock_close(sk, rt_now());
        r = -ENOBUFS;
    }
    rt_unlock();
    if (r == 0)
        *out = sk;
    return r;
}

int tcpsm_bind(struct tcpsm_sock *sk, const struct sockaddr_in *sin)
{
    if (!sin)
        return -EFAULT;
    if (sin->sin_family != AF_INET)
        return -EAFNOSUPPORT;
    struct tcpsm_addr a = addr_from_v4(ntohl(sin->sin_addr.s_addr));
    return tcpsm_bind_addr(sk, &a, ntohs(sin->sin_port));
}

int tcpsm_bind_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port)
{
    rt_lock();
    int r = usable(sk);
    if (r == 0)
        r = tcpsm_sock_bind_addr(sk, addr, port);
    rt_unlock();
    return r;
}

int tcpsm_listen(struct tcpsm_sock *sk, int backlog)
{
    rt_lock();
    int r = usable(sk);
    if (r == 0)
        r = tcpsm_sock_listen(sk, backlog);
    rt_unlock();
    return r;
}

static bool handshaking(int s)
{
    return s == TCPSM_SYN_SENT || s == TCPSM_SYN_RECEIVED;
}

int tcpsm_connect(struct tcpsm_sock *sk, const struct sockaddr_in *sin, int nonblock,
                  int64_t timeout_ns)
{
    if (!sin)
        return -EFAULT;
    if (sin->sin_family != AF_INET)
        return -EAFNOSUPPORT;
    struct tcpsm_addr a = addr_from_v4(ntohl(sin->sin_addr.s_addr));
    return tcpsm_connect_addr(sk, &a, ntohs(sin->sin_port), nonblock, timeout_ns);
}

int tcpsm_connect_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port,
                       int nonblock, int64_t timeout_ns)
{
    uint64_t deadline = deadline_of(timeout_ns);
    rt_lock();
    int r = usable(sk);
    if (r == 0)
        r = tcpsm_sock_connect_addr(sk, addr, port, rt_now());
    if (r != -EINPROGRESS || nonblock) {
        rt_unlock();
        return r;
    }
    struct blocker b = { 0 };
    r = block_begin(&b, sk);
    if (r < 0) {
        rt_unlock();
        return r;
    }
    for (;;) {
        if (!handshaking(tcpsm_sock_state(sk))) {
            /* the core reports the outcome (0 or the error) and leaves
             * the connecting state, as Linux's blocking connect does */
            r = tcpsm_sock_connect_addr(sk, addr, port, rt_now());
            break;
        }
        r = block_wait(&b, deadline);
        /* SO_SNDTIMEO on a blocking connect gives EINPROGRESS, as on Linux;
         * the handshake goes on in the background. */
        if (r == -EAGAIN)
            r = -EINPROGRESS;
        if (r < 0)
            break;
    }
    block_end(&b);
    rt_unlock();
    return r;
}

int tcpsm_accept(struct tcpsm_sock *sk, struct tcpsm_sock **out, struct sockaddr_in *peer,
                 int nonblock, int64_t timeout_ns)
{
    struct tcpsm_addr a;
    uint16_t p = 0;
    int r = tcpsm_accept_addr(sk, out, peer ? &a : NULL, &p, nonblock, timeout_ns);
    if (r == 0 && peer) {
        memset(peer, 0, sizeof(*peer));
        peer->sin_family = AF_INET;
        peer->sin_addr.s_addr = htonl(addr_is_v4(&a) ? addr_v4(&a) : 0);
        peer->sin_port = htons(p);
    }
    return r;
}

int tcpsm_accept_addr(struct tcpsm_sock *sk, struct tcpsm_sock **out, struct tcpsm_addr *peer,
                      uint16_t *peer_port, int nonblock, int64_t timeout_ns)
{
    if (!out)
        return -EFAULT;
    uint64_t deadline = deadline_of(timeout_ns);
    rt_lock();
    int r = usable(sk);
    struct blocker b = { .excl = true };
    struct tcpsm_sock *child = NULL;
    while (r == 0) {
        r = tcpsm_sock_accept(sk, &child);
        if (r != -EAGAIN || nonblock)
            break;
        r = block_step(&b, sk, deadline);
    }
    note_app_change(&b, sk);
    block_end(&b);
    if (r == 0) {
        if (!wrap(child)) {
            tcpsm_sock_abort(child, rt_now());
            tcpsm_sock_close(child, rt_now());
            r = -ENOBUFS;
        } else {
            if (peer) {
                memset(peer, 0, sizeof(*peer));
                tcpsm_sock_peer_addr(child, peer, peer_port);
            }
            *out = child;
        }
    }
    rt_unlock();
    return r;
}

static int check_iov(const struct iovec *iov, int iovcnt, size_t *total)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    if (iovcnt > 0 && !iov)
        return -EFAULT;
    size_t t = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - t)
            return -EINVAL;
        if (iov[i].iov_len && !iov[i].iov_base)
            return -EFAULT;
        t += iov[i].iov_len;
    }
    *total = t;
    return 0;
}

/* Copies from iov starting at byte offset off; returns bytes taken (>0),
 * or the core's error for the first byte. */
static ssize_t send_from(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, size_t off,
                         int cflags)
{
    ssize_t done = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t len = iov[i].iov_len - off;
        ssize_t r = tcpsm_sock_sendf(sk, (const char *)iov[i].iov_base + off, len, cflags,
                                     rt_clock());
        off = 0;
        if (r < 0)
            return done > 0 ? done : r;
        done += r;
        if ((size_t)r < len)
            break;
    }
    return done;
}

ssize_t tcpsm_send(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, int nonblock,
                   int64_t timeout_ns)
{
    return tcpsm_sendf(sk, iov, iovcnt, 0, nonblock, timeout_ns);
}

ssize_t tcpsm_sendf(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, int flags,
                    int nonblock, int64_t timeout_ns)
{
    int cflags = ((flags & MSG_MORE) ? TCPSM_MSG_MORE : 0) | ((flags & MSG_OOB) ? TCPSM_MSG_OOB : 0);
    /* An application thread's reply may wait for its next call (its close:
     * one segment for the reply and the FIN); rt_unlock sends it then. */
    if (!rt_t_runtime) {
        cflags |= TCPSM_MSG_HOLD;
        /* More of the reply held (nginx: the headers, then the file)
         * holds it on; one held on another socket by the previous call
         * still goes at this call's end. */
        if (!rt_t_out_held || rt_t_out_sk == sk) {
            rt_t_out_held = 1;
            rt_t_out_sk = sk;
        }
    }
    size_t total;
    int v = check_iov(iov, iovcnt, &total);
    if (v < 0)
        return v;
    uint64_t deadline = deadline_of(timeout_ns);
    rt_lock();
    ssize_t r = usable(sk);
    if (r < 0) {
        rt_unlock();
        return r;
    }
    size_t sent = 0;
    bool drained = false;
    struct blocker b = { 0 };
    for (;;) {
        r = send_from(sk, iov, iovcnt, sent, cflags);
        if (r > 0)
            sent += (size_t)r;
        if (sent == total || (r < 0 && r != -EAGAIN))
            break;
        if (total == 0) {
            r = 0;
            break;
        }
        if (r > 0)
            continue;           /* the buffer took some; try for more at once */
        if (nonblock) {
            /* veth delivers the ACKs that free the buffer synchronously:
             * take them now rather than report a full buffer. */
            if (!drained && !rt.leader && rt_link_service() > 0) {
                drained = true;
                continue;
            }
            break;
        }
        r = block_step(&b, sk, deadline);
        if (r < 0)
            break;
    }
    note_app_change(&b, sk);
    block_end(&b);
    rt_unlock();
    /* A partial send reports its count; the error shows on the next call. */
    return sent > 0 ? (ssize_t)sent : r;
}

/* Reads into iov starting at byte offset off. Returns bytes (>0), 0 at EOF,
 * or the core's error when nothing was read. */
static ssize_t recv_into(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, size_t off)
{
    ssize_t done = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            continue;
        }
        size_t len = iov[i].iov_len - off;
        ssize_t r = tcpsm_sock_recv(sk, (char *)iov[i].iov_base + off, len, 0, rt_clock());
        off = 0;
        if (r < 0)
            return done > 0 ? done : r;
        done += r;
        if ((size_t)r < len)
            break;
    }
    return done;
}

/* MSG_PEEK copies the head of the queue without consuming it, so a
 * scattered peek goes through one contiguous buffer. */
static ssize_t peek_into(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, size_t total)
{
    if (iovcnt == 1)
        return tcpsm_sock_recv(sk, iov[0].iov_base, iov[0].iov_len, TCPSM_MSG_PEEK, rt_now());
    size_t avail = tcpsm_sock_rxavail(sk);
    size_t len = avail < total ? avail : total;
    if (len == 0) {
        char c;     /* nothing queued: EOF (0), -EAGAIN or the pending error */
        return tcpsm_sock_recv(sk, &c, 1, TCPSM_MSG_PEEK, rt_now());
    }
    char *tmp = malloc(len);
    if (!tmp)
        return -ENOMEM;
    ssize_t r = tcpsm_sock_recv(sk, tmp, len, TCPSM_MSG_PEEK, rt_now());
    size_t off = 0;
    for (int i = 0; r > 0 && i < iovcnt && off < (size_t)r; i++) {
        size_t n = iov[i].iov_len < (size_t)r - off ? iov[i].iov_len : (size_t)r - off;
        memcpy(iov[i].iov_base, tmp + off, n);
        off += n;
    }
    free(tmp);
    return r;
}

ssize_t tcpsm_recv(struct tcpsm_sock *sk, const struct iovec *iov, int iovcnt, int flags,
                   int nonblock, int64_t timeout_ns)
{
    size_t total;
    int v = check_iov(iov, iovcnt, &total);
    if (v < 0)
        return v;
    bool peek = flags & MSG_PEEK;
    bool waitall = (flags & MSG_WAITALL) && !peek;
    uint64_t deadline = deadline_of(timeout_ns);
    rt_lock();
    ssize_t r = usable(sk);
    if (r == 0 && (flags & MSG_OOB)) {
        /* the urgent byte: never waits (Linux tcp_recv_urg) */
        uint8_t c = 0;
        r = tcpsm_sock_recv(sk, &c, total ? 1 : 0, TCPSM_MSG_OOB | (peek ? TCPSM_MSG_PEEK : 0),
                            rt_now());
        rt_unlock();
        if (r == 1) {
            for (int i = 0; i < iovcnt; i++)
                if (iov[i].iov_len) {
                    *(uint8_t *)iov[i].iov_base = c;
                    break;
                }
        }
        return r;
    }
    if (r < 0 || total == 0) {
        rt_unlock();
        return r;
    }
    size_t got = 0;
    bool drained = false;
    struct blocker b = { .reader = true };
    for (;;) {
        /* at the urgent mark with something read: stop there, MSG_WAITALL
         * or not (Linux tcp_recvmsg) */
        if (got > 0 && tcpsm_sock_atmark(sk))
            break;
        r = peek ? peek_into(sk, iov, iovcnt, total) : recv_into(sk, iov, iovcnt, got);
        if (r > 0) {
            got += (size_t)r;
            if (peek || !waitall || got == total)
                break;
            continue;
        }
        if (r == -EAGAIN && nonblock && !drained && !rt.leader && rt_link_service() > 0) {
            drained = true;     /* frames were waiting on the link: look again */
            continue;
        }
        if (r == 0 || r != -EAGAIN || nonblock)
            break;
        if (got > 0 && !waitall)
            break;
        r = block_step(&b, sk, deadline);
        if (r < 0)
            break;
    }
    note_app_change(&b, sk);
    block_end(&b);
    rt_unlock();
    return got > 0 ? (ssize_t)got : r;
}

int tcpsm_shutdown(struct tcpsm_sock *sk, int how)
{
    rt_lock();
    int r = usable(sk);
    if (r == 0)
        r = tcpsm_sock_shutdown(sk, how, rt_now());
    rt_unlock();
    return r;
}

/* Our FIN is still waiting to be acknowledged. */
static bool fin_unacked(int s)
{
    return s == TCPSM_FIN_WAIT_1 || s == TCPSM_CLOSING || s == TCPSM_LAST_ACK;
}

int tcpsm_close(struct tcpsm_sock *sk)
{
    if (!sk)
        return -EBADF;
    rt_lock();
    /* From the start of exit the runtime closes them (and a process
     * without a slot holds nothing): only forget the socket. */
    struct rt_sock *rs = rt.down || rt.exiting || rt.me < 0 ? NULL : tcpsm_sock_user(sk);
    if (!rs || !rt_held(rs)) {
        rt_unlock();
        return 0;
    }
    if (rs->users > 1) {
        /* Another process holds it too (fork): the connection goes on. */
        rt_release(rs, false);
        rt_unlock();
        return 0;
    }
    int linger = -1;
    tcpsm_sock_getopt(sk, TCPSM_OPT_LINGER, &linger);
    int s = tcpsm_sock_state(sk);
    /* SO_LINGER > 0: send the FIN now and wait, at most the linger time,
     * until it and the data before it are acknowledged (socket(7)). */
    if (linger > 0 && rs && (s == TCPSM_ESTABLISHED || s == TCPSM_CLOSE_WAIT) &&
        tcpsm_sock_rxavail(sk) == 0) {
        uint64_t deadline = deadline_of((int64_t)linger * 1000000000);
        struct blocker b = { 0 };
        if (tcpsm_sock_shutdown(sk, 1, rt_now()) == 0 && block_begin(&b, sk) == 0) {
            while (fin_unacked(tcpsm_sock_state(sk)) && block_wait(&b, deadline) == 0)
                ;
            /* Another thread may have closed it while we slept: then it is
             * not ours to close (and rs may go with block_end). */
            bool gone = !rs->sk || !rt_held(rs);
            block_end(&b);
            if (gone) {
                rt_unlock();
                return 0;
            }
        }
    }
    rt_release(rs, false);
    rt_unlock();
    return 0;
}

#define LOCKED_CALL(expr_) do { rt_lock(); int r_ = usable(sk); if (r_ == 0) r_ = (expr_); \
        rt_unlock(); return r_; } while (0)

int tcpsm_setopt(struct tcpsm_sock *sk, enum tcpsm_opt opt, int val)
{
    LOCKED_CALL(tcpsm_sock_setopt(sk, opt, val));
}

int tcpsm_getopt(struct tcpsm_sock *sk, enum tcpsm_opt opt, int *val)
{
    if (!val)
        return -EFAULT;
    LOCKED_CALL(tcpsm_sock_getopt(sk, opt, val));
}

int tcpsm_info(struct tcpsm_sock *sk, struct tcpsm_tcp_info *info)
{
    if (!info)
        return -EFAULT;
    LOCKED_CALL((tcpsm_sock_info_at(sk, info, rt_now()), 0));
}

int tcpsm_sockname_addr(struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port)
{
    if (!addr || !port)
        return -EFAULT;
    rt_lock();
    int r = usable(sk);
    if (r == 0)
        tcpsm_sock_name_addr(sk, addr, port);
    rt_unlock();
    return r;
}

int tcpsm_peername_addr(struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port)
{
    if (!addr || !port)
        return -EFAULT;
    rt_lock();
    int r = usable(sk);
    if (r == 0)
        r = tcpsm_sock_peer_addr(sk, addr, port);
    rt_unlock();
    return r;
}

/* The IPv4-only forms of the two above: an IPv6 socket has no sockaddr_in
 * (-EAFNOSUPPORT). */
static int to_sin(int r, const struct tcpsm_addr *a, uint16_t p, struct sockaddr_in *sin)
{
    if (r < 0)
        return r;
    if (!addr_is_v4(a) && !addr_is_any(a))
        return -EAFNOSUPPORT;
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(addr_is_any(a) ? 0 : addr_v4(a));
    sin->sin_port = htons(p);
    return 0;
}

int tcpsm_sockname(struct tcpsm_sock *sk, struct sockaddr_in *sin)
{
    struct tcpsm_addr a;
    uint16_t p = 0;
    if (!sin)
        return -EFAULT;
    return to_sin(tcpsm_sockname_addr(sk, &a, &p), &a, p, sin);
}

int tcpsm_peername(struct tcpsm_sock *sk, struct sockaddr_in *sin)
{
    struct tcpsm_addr a;
    uint16_t p = 0;
    if (!sin)
        return -EFAULT;
    return to_sin(tcpsm_peername_addr(sk, &a, &p), &a, p, sin);
}

int tcpsm_error(struct tcpsm_sock *sk)
{
    LOCKED_CALL(tcpsm_sock_error(sk));
}

int tcpsm_state(struct tcpsm_sock *sk)
{
    LOCKED_CALL(tcpsm_sock_state(sk));
}

int tcpsm_rxavail(struct tcpsm_sock *sk)
{
    LOCKED_CALL((int)(tcpsm_sock_rxavail(sk) > INT_MAX ? INT_MAX : tcpsm_sock_rxavail(sk)));
}

int tcpsm_atmark(struct tcpsm_sock *sk)
{
    LOCKED_CALL(tcpsm_sock_atmark(sk));
}

int tcpsm_set_owner(struct tcpsm_sock *sk, int type, int id)
{
    if (type != F_OWNER_TID && type != F_OWNER_PID && type != F_OWNER_PGRP)
        return -EINVAL;
    rt_lock();
    int r = usable(sk);
    struct rt_sock *rs = r == 0 ? tcpsm_sock_user(sk) : NULL;
    if (rs) {
        rs->owner_type = type;  /* F_OWNER_TID is 0: owner_id says whether there is one */
        rs->owner_id = id;
        rs->owner_tgid = getpid();
    }
    rt_unlock();
    return r;
}

int tcpsm_get_owner(struct tcpsm_sock *sk, int *type, int *id)
{
    rt_lock();
    int r = usable(sk);
    struct rt_sock *rs = r == 0 ? tcpsm_sock_user(sk) : NULL;
    /* never set: F_OWNER_TID and 0, as Linux's fresh file (PIDTYPE_PID) */
    *type = rs ? rs->owner_type : F_OWNER_TID;
    *id = rs ? rs->owner_id : 0;
    rt_unlock();
    return r;
}

int tcpsm_set_async(struct tcpsm_sock *sk, int on, int sig, int fd)
{
    if (sig > 64)
        return -EINVAL;
    rt_lock();
    int r = usable(sk);
    struct rt_sock *rs = r == 0 ? tcpsm_sock_user(sk) : NULL;
    if (rs) {
        if (on >= 0) {
            if (on && !rs->async)
                rs->async_fd = fd;      /* Linux fasync_helper records the fd */
            rs->async = on;
        }
        if (sig >= 0)
            rs->async_sig = sig;
    }
    rt_unlock();
    return r;
}

int tcpsm_get_async(struct tcpsm_sock *sk, int *on, int *sig)
{
    rt_lock();
    int r = usable(sk);
    struct rt_sock *rs = r == 0 ? tcpsm_sock_user(sk) : NULL;
    *on = rs ? rs->async : 0;
    *sig = rs ? rs->async_sig : 0;
    rt_unlock();
    return r;
}

int tcpsm_txqueued(struct tcpsm_sock *sk)
{
    LOCKED_CALL((int)(tcpsm_sock_txqueued(sk) > INT_MAX ? INT_MAX : tcpsm_sock_txqueued(sk)));
}

unsigned tcpsm_poll(struct tcpsm_sock *sk)
{
    rt_lock();
    unsigned ev = TCPSM_POLLERR | TCPSM_POLLHUP;
    if (usable(sk) == 0) {
        ev = tcpsm_sock_poll_app(sk);
        struct rt_sock *rs = tcpsm_sock_user(sk);
        if (rs) {
            rt_note_seen(rs);   /* a poller may sleep on what it saw */
            rt_poll_watch(rs);  /* ... and is woken by this socket's events */
        }
    }
    rt_unlock();
    return ev;
}
