/* The stats region (`tcpsm stat`): one JSON document per stack with the
 * stack (address, interface, process), every TCB (state, addresses, queues,
 * rtt, cwnd, retransmissions, SACK) and the counters, in the manner of
 * `ss -tin` and onload_stackdump. The stack lock is held only to copy the
 * numbers (at most RT_STATS_MAX_SOCKS sockets, the rest counted), and for
 * the sockets in steps (list_socks); the text is formatted and written
 * without it, to a temporary file renamed over the
 * region so a reader always sees one whole snapshot. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "counter_names.h"
#include "runtime.h"
#include "runtime_ops.h"

struct sock_snap {
    struct tcpsm_addr laddr, raddr;
    uint16_t lport, rport;
    bool held;
    uint32_t recv_q, send_q, sacked;
    struct tcpsm_tcp_info info;
};

struct snap {
    struct sock_snap *s;
    size_t n, total, max;
    uint64_t now;
};

static void take(void *ctx, const struct tcpsm_sock *sk)
{
    struct snap *sn = ctx;
    uint64_t now = sn->now;
    if (sn->n >= sn->max)
        return;
    struct sock_snap *x = &sn->s[sn->n++];
    tcpsm_sock_name_addr(sk, &x->laddr, &x->lport);
    if (tcpsm_sock_peer_addr(sk, &x->raddr, &x->rport) < 0) {
        memset(&x->raddr, 0, sizeof(x->raddr));
        x->rport = 0;
    }
    x->held = tcpsm_sock_held(sk);
    x->recv_q = (uint32_t)tcpsm_sock_rxavail(sk);
    x->send_q = (uint32_t)tcpsm_sock_txqueued(sk);
    x->sacked = tcpsm_sock_sacked_bytes(sk);
    tcpsm_sock_info_at(sk, &x->info, now);
}

/* The sockets, RT_STATS_SOCKS_STEP at a time under the lock (a step took
 * at most 0.15 ms; the whole table in one hold took 1.7-2.4 ms on a quiet
 * machine, 7-29 ms under load, with 16,000 TCBs mostly in TIME-WAIT: a
 * stall of every thread of the stack).
 * Between steps the lock is let go and this thread sleeps briefly: a
 * waiter woken by the unlock would otherwise find it taken again at once.
 * The list is what the walk found (sockets freed meanwhile are left out,
 * new ones not added; nsocks is the count at the start); a walk ended by
 * another one (another process's writer) lists what it had. */
static void list_socks(struct snap *sn, uint32_t walk)
{
    for (;;) {
        rt_lock();
        if (!rt.started || rt.down || !rt.sh || !rt.sh->st) {
            rt_unlock();
            return;
        }
        sn->now = rt_now();
        size_t max = sn->max - sn->n;
        if (max > RT_STATS_SOCKS_STEP)
            max = RT_STATS_SOCKS_STEP;
        int r = tcpsm_stack_walk_step(rt.sh->st, walk, max, take, sn);
        rt_unlock();
        if (r != 0 || sn->n >= sn->max)
            return;
        struct timespec ts = { .tv_nsec = 20000 };
        nanosleep(&ts, NULL);
    }
}

/* A growing text buffer; on allocation failure it stops growing and the
 * write is abandoned (ok = false). */
struct out {
    char *p;
    size_t len, cap;
    bool ok;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        if (!o->ok)
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->ok = false;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->ok = false;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

static void put_str(struct out *o, const char *s)
{
    put(o, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            put(o, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            put(o, "\\u%04x", c);
        else
            put(o, "%c", c);
    }
    put(o, "\"");
}

/* a.b.c.d:port for IPv4 (and IPv4-mapped) addresses, [v6]:port for IPv6,
 * as ss prints them. */
static void put_ep(struct out *o, const char *key, const struct tcpsm_addr *a, uint16_t p)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const uint8_t zero[16];
    const uint8_t *b = a->b;
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero, 16) == 0) {
        put(o, "\"%s\": \"%u.%u.%u.%u:%u\"", key, b[12], b[13], b[14], b[15], p);
        return;
    }
    char txt[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b, txt, sizeof(txt));
    put(o, "\"%s\": \"[%s]:%u\"", key, txt, p);
}

static void comm(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    long n = syscall(SYS_read, fd, buf, len - 1);
    syscall(SYS_close, fd);
    if (n > 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
    }
}

static int write_file(const char *path, const char *data, size_t len)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    long fd = syscall(SYS_openat, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int e = 0;
    for (size_t off = 0; off < len && !e;) {
        long w = syscall(SYS_write, fd, data + off, len - off);
        if (w < 0 && errno != EINTR)
            e = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    syscall(SYS_close, fd);
    if (!e && syscall(SYS_renameat, AT_FDCWD, tmp, AT_FDCWD, path) < 0)
        e = -errno;
    if (e)
        syscall(SYS_unlinkat, AT_FDCWD, tmp, 0);
    return e;
}

/* The buffers of the write in progress. Only the control thread writes
 * (runtime_ctl.c). They are held in static storage, not on that thread's
 * stack, because a fork() while it waits for the stack lock (which the
 * forking thread holds) copies them into a child without that thread: there
 * they stay reachable instead of reading as a leak at the child's exit. */
static struct snap w_sn;
static struct out w_o;

static int stats_write(const char *path, size_t max_socks);

int rt_stats_write(const char *path, size_t max_socks)
{
    rt_fork_gate_enter();               /* fork() waits for these allocations */
    int r = stats_write(path, max_socks > RT_STATS_MAX_SOCKS ? RT_STATS_MAX_SOCKS : max_socks);
    free(w_sn.s);
    free(w_o.p);
    w_sn = (struct snap){ 0 };
    w_o = (struct out){ 0 };
    rt_fork_gate_leave();
    return r;
}

static int stats_write(const char *path, size_t max_socks)
{
    struct snap sn = { .max = max_socks };
    w_sn.s = calloc(max_socks ? max_socks : 1, sizeof(struct sock_snap));
    if (!w_sn.s)
        return -ENOMEM;
    sn.s = w_sn.s;
    struct tcpsm_counters cnt;
    uint64_t link[9];
    rt_lock();
    if (!rt.started || rt.down || !rt.sh || !rt.sh->st) {
        rt_unlock();
        return -ENETDOWN;
    }
    sn.now = rt_now();
    sn.total = tcpsm_stack_nsocks(rt.sh->st);
    uint32_t walk = tcpsm_stack_walk_begin(rt.sh->st);
    cnt = *tcpsm_stack_counters(rt.sh->st);
    size_t mem_max = 0;
    bool mem_pressure = false;
    size_t mem_used = tcpsm_stack_mem(rt.sh->st, &mem_max, &mem_pressure);
    uint32_t syn_rate = tcpsm_stack_syn_rate(rt.sh->st, rt_now());
    uint64_t up_ns = rt_now() - rt.sh->t0;
    uint64_t reg_used = rt.reg->bytes_used, reg_peak = rt.reg->bytes_peak, reg_size = rt.reg->size;
    uint64_t lock_rec = rt.sh->lock_recovered, lock_clean = rt.sh->lock_recovered_clean;
    uint64_t reaped = rt.sh->procs_reaped;
    /* every process attached to the shared stack (Process model), not only this one */
    int pids[RT_MAX_PROCS];
    unsigned npids = 0;
    for (int i = 0; i < RT_MAX_PROCS; i++) {
        int pid = atomic_load(&rt.sh->procs[i].pid);
        if (pid > 0 && !rt.sh->procs[i].left)
            pids[npids++] = pid;
    }
    /* The link counters change under the lock (the sends and receives of
     * whoever drives the link): read there too (make tsan found the race). */
    link[0] = rt.np.rx_frames, link[1] = rt.np.tx_frames, link[2] = rt.np.rx_drops;
    link[3] = rt.np.rx_trunc, link[4] = __atomic_load_n(&rt.np.tx_err, __ATOMIC_RELAXED), link[5] = rt.np.rx_csum_fixed;
    link[6] = rt.np.tx_deferred;
    link[7] = __atomic_load_n(&rt.np.tx_batches, __ATOMIC_RELAXED), link[8] = rt.np.tx_kept;
    rt_unlock();
    list_socks(&sn, walk);
    unsigned cap_clients;
    uint64_t cap_frames, cap_dropped;
    rt_capture_counts(&cap_clients, &cap_frames, &cap_dropped);

    struct out *o = &w_o;       /* grows by realloc: always reached from w_o */
    *o = (struct out){ .p = malloc(65536), .cap = 65536, .ok = true };
    if (!o->p)
        return -ENOMEM;
    const struct rt_settings *s = &rt.set;
    char name[64];
    comm(name, sizeof(name));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    put(o, "{\n \"version\": 1,\n \"pid\": %d,\n \"pids\": [", (int)getpid());
    for (unsigned i = 0; i < npids; i++)
        put(o, "%s%d", i ? ", " : "", pids[i]);
    put(o, "],\n \"comm\": ");
    put_str(o, name);
    put(o, ",\n \"interface\": ");
    put_str(o, s->ifname);
    put(o, ",\n \"address\": \"%u.%u.%u.%u\",\n \"prefix_len\": %u,\n", s->addr >> 24,
        (s->addr >> 16) & 255, (s->addr >> 8) & 255, s->addr & 255, s->prefix_len);
    static const uint8_t none6[16];
    if (memcmp(s->addr6, none6, 16) != 0) {
        char a6[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, s->addr6, a6, sizeof(a6));
        put(o, " \"address6\": \"%s\",\n \"prefix6_len\": %u,\n", a6, s->prefix6_len);
    }
    put(o, " \"mac\": \"%02x:%02x:%02x:%02x:%02x:%02x\",\n", s->mac[0], s->mac[1], s->mac[2],
        s->mac[3], s->mac[4], s->mac[5]);
    if (s->gateway)
        put(o, " \"gateway\": \"%u.%u.%u.%u\",\n", s->gateway >> 24, (s->gateway >> 16) & 255,
            (s->gateway >> 8) & 255, s->gateway & 255);
    put(o, " \"time\": %lld.%03ld,\n \"uptime_s\": %.3f,\n", (long long)now.tv_sec,
        now.tv_nsec / 1000000, (double)up_ns / 1e9);
    put(o, " \"link\": {\"rx_frames\": %llu, \"tx_frames\": %llu, \"rx_queue_drops\": %llu, "
        "\"rx_truncated\": %llu, \"tx_errors\": %llu, \"rx_csum_completed\": %llu, "
        "\"tx_after_lock\": %llu, \"tx_batches\": %llu, \"tx_kept\": %llu},\n",
        (unsigned long long)link[0], (unsigned long long)link[1], (unsigned long long)link[2],
        (unsigned long long)link[3], (unsigned long long)link[4], (unsigned long long)link[5],
        (unsigned long long)link[6], (unsigned long long)link[7], (unsigned long long)link[8]);
    put(o, " \"capture\": {\"clients\": %u, \"frames\": %llu, \"dropped\": %llu},\n",
        cap_clients, (unsigned long long)cap_frames, (unsigned long long)cap_dropped);
    put(o, " \"counters\": {");
    for (size_t i = 0; i < counter_names_n; i++)
        put(o, "%s\"%s\": %llu", i ? ", " : "", counter_names[i].name,
            (unsigned long long)counter_value(&cnt, i));
    put(o, "},\n \"tcp_mem\": {\"used\": %zu, \"max\": %zu, \"pressure\": %s},", mem_used,
        mem_max, mem_pressure ? "true" : "false");
    put(o, "\n \"region\": {\"used\": %llu, \"peak\": %llu, \"size\": %llu},",
        (unsigned long long)reg_used, (unsigned long long)reg_peak, (unsigned long long)reg_size);
    /* the stack lock taken over from processes that died holding it:
     * halfway through an operation (repaired: the repair_* counters) or
     * between operations (a fatal signal, runtime.h 6) */
    put(o, "\n \"lock\": {\"recovered\": %llu, \"recovered_clean\": %llu, \"procs_reaped\": "
        "%llu},", (unsigned long long)lock_rec, (unsigned long long)lock_clean,
        (unsigned long long)reaped);
    put(o, "\n \"syn_rate\": %u,", syn_rate);
    put(o, "\n \"nsocks\": %zu,\n \"listed\": %zu,\n \"sockets\": [", sn.total, sn.n);
    for (size_t i = 0; i < sn.n; i++) {
        const struct sock_snap *x = &sn.s[i];
        const struct tcpsm_tcp_info *in = &x->info;
        put(o, "%s\n  {\"state\": \"%s\", ", i ? "," : "", trace_state_name(in->state));
        put_ep(o, "local", &x->laddr, x->lport);
        put(o, ", ");
        put_ep(o, "remote", &x->raddr, x->rport);
        static const char *const ca[] = { "open", "disorder", "cwr", "recovery", "loss" };
        put(o, ", \"held\": %s, \"recv_q\": %u, \"send_q\": %u, \"notsent\": %u, "
            "\"rto_us\": %u, \"ato_us\": %u, \"rtt_us\": %u, \"rttvar_us\": %u, "
            "\"min_rtt_us\": %u, \"rcv_rtt_us\": %u, \"mss\": %u, \"rcv_mss\": %u, "
            "\"advmss\": %u, \"pmtu\": %u, \"cwnd\": %u, \"ssthresh\": %u, "
            "\"ca_state\": \"%s\", \"reordering\": %u, \"snd_wnd\": %u, \"rcv_wnd\": %u, "
            "\"rcv_space\": %u, \"unacked\": %u, \"sacked\": %u, \"lost\": %u, "
            "\"retrans\": %u, \"retransmits\": %u, \"probes\": %u, \"backoff\": %u, "
            "\"total_retrans\": %u, \"total_rto\": %u, \"sack\": %s, \"sacked_bytes\": %u, "
            "\"timestamps\": %s, \"wscale\": [%u, %u], \"bytes_sent\": %llu, "
            "\"bytes_retrans\": %llu, \"bytes_acked\": %llu, \"bytes_received\": %llu, "
            "\"segs_out\": %u, \"segs_in\": %u, \"data_segs_out\": %u, \"data_segs_in\": %u, "
            "\"rcv_ooopack\": %u, \"last_send_ms\": %u, \"last_recv_ms\": %u, "
            "\"last_ack_ms\": %u",
            x->held ? "true" : "false", x->recv_q, x->send_q, in->notsent_bytes, in->rto_us,
            in->ato_us, in->rtt_us, in->rttvar_us, in->min_rtt_us, in->rcv_rtt_us, in->snd_mss,
            in->rcv_mss, in->advmss, in->pmtu, in->snd_cwnd, in->snd_ssthresh,
            in->ca_state < sizeof(ca) / sizeof(ca[0]) ? ca[in->ca_state] : "?", in->reordering,
            in->snd_wnd, in->rcv_wnd, in->rcv_space, in->unacked, in->sacked, in->lost,
            in->retrans, in->retransmits, in->probes, in->backoff, in->total_retrans,
            in->total_rto, in->sack_ok ? "true" : "false", x->sacked,
            in->ts_ok ? "true" : "false", in->snd_wscale, in->rcv_wscale,
            (unsigned long long)in->bytes_sent, (unsigned long long)in->bytes_retrans,
            (unsigned long long)in->bytes_acked, (unsigned long long)in->bytes_received,
            in->segs_out, in->segs_in, in->data_segs_out, in->data_segs_in, in->rcv_ooopack,
            in->last_data_sent_ms, in->last_data_recv_ms, in->last_ack_recv_ms);
        if (in->state == TCPSM_LISTEN)
            put(o, ", \"syn_queue\": %u, \"accept_queue\": %u, \"syns\": %llu, "
                "\"syn_rate\": %u, \"syn_cookies_sent\": %llu, \"syn_cookies_ok\": %llu, "
                "\"syn_cookies_bad\": %llu, \"syn_dropped\": %llu",
                in->syn_queue, in->accept_queue, (unsigned long long)in->syn_count, in->syn_rate,
                (unsigned long long)in->syn_cookies_sent, (unsigned long long)in->syn_cookies_ok,
                (unsigned long long)in->syn_cookies_bad, (unsigned long long)in->syn_dropped);
        put(o, "}");
    }
    put(o, "\n ]\n}\n");
    return o->ok ? write_file(path, o->p, o->len) : -ENOMEM;
}
