/* setsockopt/getsockopt on stack sockets. setsockopt goes to the kernel
 * placeholder first: the kernel checks the arguments exactly as Linux does
 * (EFAULT, EINVAL for a short optlen, EDOM, ranges), and a later hand-over
 * to the kernel then needs no replay. What the stack models is applied to
 * the stack socket (or recorded until it exists); the rest is ENOPROTOOPT
 * with a debug line, never a silent no-op. */
#include "shim.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include "runtime_log.h"

#define EXPORT __attribute__((visibility("default")))
#define TCP_CA_NAME_MAX 16      /* include/net/tcp.h */

/* Accepted and ignored on stack sockets, because ignoring them only changes
 * timing, never results: TCP_QUICKACK (a hint Linux itself forgets) and
 * TCP_DEFER_ACCEPT (accept returns at the handshake instead of at the first
 * data; the program's read then waits or says EAGAIN as it must anyway). */

static int tcp_opt(int name)
{
    switch (name) {
    case TCP_NODELAY: return TCPSM_OPT_NODELAY;
    case TCP_CORK: return TCPSM_OPT_CORK;
    case TCP_KEEPIDLE: return TCPSM_OPT_KEEPIDLE;
    case TCP_KEEPINTVL: return TCPSM_OPT_KEEPINTVL;
    case TCP_KEEPCNT: return TCPSM_OPT_KEEPCNT;
    case TCP_MAXSEG: return TCPSM_OPT_MAXSEG;
    case TCP_USER_TIMEOUT: return TCPSM_OPT_USER_TIMEOUT;
    default: return -1;
    }
}

static int sol_opt(int name)
{
    switch (name) {
    case SO_REUSEADDR: return TCPSM_OPT_REUSEADDR;
    case SO_KEEPALIVE: return TCPSM_OPT_KEEPALIVE;
    case SO_SNDBUF: case SO_SNDBUFFORCE: return TCPSM_OPT_SNDBUF;
    case SO_RCVBUF: case SO_RCVBUFFORCE: return TCPSM_OPT_RCVBUF;
    case SO_OOBINLINE: return TCPSM_OPT_OOBINLINE;
    default: return -1;
    }
}

static int stack_set(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
    int v = len >= sizeof(int) ? *(const int *)val : 0;
    int o;
    if (level == SOL_SOCKET) {
        if ((o = sol_opt(name)) >= 0) {
            if (o == TCPSM_OPT_REUSEADDR || o == TCPSM_OPT_KEEPALIVE || o == TCPSM_OPT_OOBINLINE)
                v = v != 0;
            return shim_stack_setopt(s, (enum tcpsm_opt)o, v);
        }
        switch (name) {
        case SO_REUSEPORT:      /* one stack per process: nothing else to share the port with */
            s->reuseport = v != 0;
            return 0;
        case SO_LINGER: {
            const struct linger *l = val;
            return shim_stack_setopt(s, TCPSM_OPT_LINGER, l->l_onoff ? (l->l_linger < 0 ? 0 : l->l_linger) : -1);
        }
        case SO_RCVTIMEO_OLD:
        case SO_RCVTIMEO_NEW:
            atomic_store(&s->rcvtimeo_ns, shim_tv_to_ns(val));
            return 0;
        case SO_SNDTIMEO_OLD:
        case SO_SNDTIMEO_NEW:
            atomic_store(&s->sndtimeo_ns, shim_tv_to_ns(val));
            return 0;
        default:
            break;
        }
    } else if (level == IPPROTO_IP || level == IPPROTO_IPV6) {
        /* The kernel placeholder has checked the value and the family. */
        switch (level == IPPROTO_IP ? name : -name) {
        case IP_TOS:
        case -IPV6_TCLASS:
            return shim_stack_setopt(s, TCPSM_OPT_TOS, v);
        case IP_TTL:
        case -IPV6_UNICAST_HOPS:
            return shim_stack_setopt(s, TCPSM_OPT_TTL, v);
        case -IPV6_V6ONLY:
            return shim_stack_setopt(s, TCPSM_OPT_V6ONLY, v != 0);
        case IP_MTU_DISCOVER:
        case -IPV6_MTU_DISCOVER:
            /* The stack always sends DF and follows ICMP (RFC 1191, 8201):
             * "want" and "do" are what it does; no other mode is honoured. */
            if (v != IP_PMTUDISC_WANT && v != IP_PMTUDISC_DO)
                break;
            s->pmtudisc = v;
            return 0;
        case IP_RECVERR:
        case -IPV6_RECVERR:
            /* No error queue: only "off", the default, is true of the stack. */
            if (v != 0)
                break;
            return 0;
        default:
            break;
        }
    } else if (level == IPPROTO_TCP) {
        if ((o = tcp_opt(name)) >= 0) {
            if (o == TCPSM_OPT_NODELAY || o == TCPSM_OPT_CORK)
                v = v != 0;
            return shim_stack_setopt(s, (enum tcpsm_opt)o, v);
        }
        switch (name) {
        case TCP_QUICKACK:
            s->quickack = v;
            return 0;
        case TCP_DEFER_ACCEPT:
            s->defer_accept = v < 0 ? 0 : v;
            return 0;
        case TCP_CONGESTION: {
            /* by Linux name: the algorithms the core has (tcpsm_cc_by_name) */
            char name_buf[TCP_CA_NAME_MAX + 1];
            size_t n = len < TCP_CA_NAME_MAX ? len : TCP_CA_NAME_MAX;
            memcpy(name_buf, val, n);
            name_buf[n] = 0;
            int cc = tcpsm_cc_by_name(name_buf);
            if (cc < 0)
                return -ENOENT;
            return shim_stack_setopt(s, TCPSM_OPT_CONGESTION, cc);
        }
        default:
            break;
        }
    }
    tcpsm_log(TCPSM_LOG_DEBUG, "setsockopt(level %d, option %d) is not supported on stack sockets",
              level, name);
    return -ENOPROTOOPT;
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    struct shim_sock *s = shim_lookup(fd);
    if (!s)
        return REAL(setsockopt)(fd, level, name, val, len);
    if (shim_state(s) == SHIM_KERNEL) {
        shim_sock_put(s);
        return REAL(setsockopt)(fd, level, name, val, len);
    }
    /* Before connect: the kernel socket changes (placeholder.c); a stack
     * socket on a shared placeholder has the arguments checked on its scratch. */
    int r = shim_ph_own(s, fd);
    if (r < 0) {
        shim_sock_put(s);
        return (int)shim_ret(r);
    }
    r = REAL(setsockopt)(shim_ph_scratch(s, fd), level, name, val, len);
    if (r == 0) {
        shim_sock_lock(s);
        if (shim_state(s) != SHIM_KERNEL)
            r = (int)shim_ret(stack_set(s, level, name, val, len));
        shim_sock_unlock(s);
    }
    shim_sock_put(s);
    return r;
}

/* Linux's socket-state numbering (include/net/tcp_states.h). */
static uint8_t linux_state(int st)
{
    static const uint8_t map[TCPSM_NSTATES] = {
        [TCPSM_CLOSED] = 7, [TCPSM_LISTEN] = 10, [TCPSM_SYN_SENT] = 2,
        [TCPSM_SYN_RECEIVED] = 3, [TCPSM_ESTABLISHED] = 1, [TCPSM_FIN_WAIT_1] = 4,
        [TCPSM_FIN_WAIT_2] = 5, [TCPSM_CLOSE_WAIT] = 8, [TCPSM_CLOSING] = 11,
        [TCPSM_LAST_ACK] = 9, [TCPSM_TIME_WAIT] = 6,
    };
    return st >= 0 && st < TCPSM_NSTATES ? map[st] : 7;
}

/* Linux's struct tcp_info as of 6.7: <linux/tcp.h> of this system may end
 * earlier (at tcpi_snd_wnd); the fields after it follow without padding.
 * Linux copies min(optlen, sizeof) and reports the size: so do we. */
struct shim_tcp_info {
    struct tcp_info ti;
    __u32 tcpi_rcv_wnd;
    __u32 tcpi_rehash;
    __u16 tcpi_total_rto;
    __u16 tcpi_total_rto_recoveries;
    __u32 tcpi_total_rto_time;
};
_Static_assert(offsetof(struct tcp_info, tcpi_snd_wnd) == 228 && sizeof(struct tcp_info) == 232,
               "struct tcp_info layout");
_Static_assert(offsetof(struct shim_tcp_info, tcpi_total_rto_time) == 244 &&
               sizeof(struct shim_tcp_info) == 248, "struct tcp_info (6.7) layout");

static void fill_tcp_info(struct shim_sock *s, struct shim_tcp_info *full)
{
    struct tcpsm_tcp_info in;
    memset(&in, 0, sizeof(in));
    memset(full, 0, sizeof(*full));
    struct tcp_info *ti = &full->ti;
    if (tcpsm_info(s->sk, &in) < 0)
        in.state = TCPSM_CLOSED;
    ti->tcpi_state = linux_state(in.state);
    ti->tcpi_ca_state = in.ca_state;
    ti->tcpi_retransmits = in.retransmits;
    ti->tcpi_probes = in.probes;
    ti->tcpi_backoff = in.backoff;
    ti->tcpi_options = (in.ts_ok ? TCPI_OPT_TIMESTAMPS : 0) | (in.sack_ok ? TCPI_OPT_SACK : 0) |
                       (in.ws_ok ? TCPI_OPT_WSCALE : 0);
    ti->tcpi_snd_wscale = in.snd_wscale & 0xf;
    ti->tcpi_rcv_wscale = in.rcv_wscale & 0xf;
    ti->tcpi_rto = in.rto_us;
    ti->tcpi_ato = in.ato_us;
    ti->tcpi_snd_mss = in.snd_mss;
    ti->tcpi_rcv_mss = in.rcv_mss;
    ti->tcpi_unacked = in.unacked;
    ti->tcpi_sacked = in.sacked;
    ti->tcpi_lost = in.lost;
    ti->tcpi_retrans = in.retrans;
    ti->tcpi_last_data_sent = in.last_data_sent_ms;
    ti->tcpi_last_data_recv = in.last_data_recv_ms;
    ti->tcpi_last_ack_recv = in.last_ack_recv_ms;
    ti->tcpi_pmtu = in.pmtu;
    ti->tcpi_rcv_ssthresh = in.rcv_ssthresh;
    ti->tcpi_rtt = in.rtt_us;
    ti->tcpi_rttvar = in.rttvar_us;
    ti->tcpi_snd_ssthresh = in.snd_ssthresh;
    ti->tcpi_snd_cwnd = in.snd_cwnd;
    ti->tcpi_advmss = in.advmss;
    ti->tcpi_reordering = in.reordering;
    ti->tcpi_rcv_rtt = in.rcv_rtt_us;
    ti->tcpi_rcv_space = in.rcv_space;
    ti->tcpi_total_retrans = in.total_retrans;
    /* not pacing (CUBIC, Reno): Linux reports ~0 there */
    ti->tcpi_pacing_rate = in.pacing_rate ? in.pacing_rate : ~0ull;
    ti->tcpi_max_pacing_rate = ~0ull;
    ti->tcpi_delivery_rate = in.delivery_rate;
    ti->tcpi_delivery_rate_app_limited = in.delivery_rate_app_limited;
    ti->tcpi_delivered = in.delivered_segs;
    ti->tcpi_bytes_acked = in.bytes_acked;
    ti->tcpi_bytes_received = in.bytes_received;
    ti->tcpi_segs_out = in.segs_out;
    ti->tcpi_segs_in = in.segs_in;
    ti->tcpi_notsent_bytes = in.notsent_bytes;
    ti->tcpi_min_rtt = in.min_rtt_us ? in.min_rtt_us : ~0u;
    ti->tcpi_data_segs_in = in.data_segs_in;
    ti->tcpi_data_segs_out = in.data_segs_out;
    ti->tcpi_bytes_sent = in.bytes_sent;
    ti->tcpi_bytes_retrans = in.bytes_retrans;
    ti->tcpi_rcv_ooopack = in.rcv_ooopack;
    ti->tcpi_dsack_dups = in.dsack_dups;
    ti->tcpi_reord_seen = in.reord_seen;
    ti->tcpi_snd_wnd = in.snd_wnd;
    ti->tcpi_busy_time = in.busy_time_us;
    ti->tcpi_rwnd_limited = in.rwnd_limited_us;
    ti->tcpi_sndbuf_limited = in.sndbuf_limited_us;
    full->tcpi_rcv_wnd = in.rcv_wnd;
    full->tcpi_total_rto = in.total_rto;
    full->tcpi_total_rto_recoveries = in.total_rto_recoveries;
    full->tcpi_total_rto_time = in.total_rto_time_ms;
}

static int put_val(void *val, socklen_t *len, const void *v, size_t vlen)
{
    size_t n = *len < vlen ? *len : vlen;
    if (n && !val)
        return -EFAULT;
    memcpy(val, v, n);
    *len = (socklen_t)n;
    return 0;
}

static int stack_get(struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
    int v = 0, o, r;
    if (level == SOL_SOCKET) {
        if ((o = sol_opt(name)) >= 0) {
            if ((r = tcpsm_getopt(s->sk, (enum tcpsm_opt)o, &v)) < 0)
                return r;
            return put_val(val, len, &v, sizeof(v));
        }
        switch (name) {
        case SO_ERROR: v = tcpsm_error(s->sk); break;
        case SO_TYPE: v = SOCK_STREAM; break;
        case SO_DOMAIN: v = s->family; break;
        case SO_PROTOCOL: v = IPPROTO_TCP; break;
        case SO_ACCEPTCONN: v = tcpsm_state(s->sk) == TCPSM_LISTEN; break;
        case SO_REUSEPORT: v = s->reuseport; break;
        case SO_LINGER: {
            if ((r = tcpsm_getopt(s->sk, TCPSM_OPT_LINGER, &v)) < 0)
                return r;
            struct linger l = { .l_onoff = v >= 0, .l_linger = v >= 0 ? v : 0 };
            return put_val(val, len, &l, sizeof(l));
        }
        case SO_RCVTIMEO_OLD:
        case SO_RCVTIMEO_NEW:
        case SO_SNDTIMEO_OLD:
        case SO_SNDTIMEO_NEW: {
            bool rcv = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW;
            int64_t ns = atomic_load(rcv ? &s->rcvtimeo_ns : &s->sndtimeo_ns);
            struct timeval tv = { 0, 0 };
            if (ns > 0) {
                tv.tv_sec = ns / 1000000000;
                tv.tv_usec = (ns % 1000000000) / 1000;
            }
            return put_val(val, len, &tv, sizeof(tv));
        }
        default:
            goto unsupported;
        }
        return put_val(val, len, &v, sizeof(v));
    }
    if (level == IPPROTO_IP || level == IPPROTO_IPV6) {
        /* IPv6 options on an IPv4 socket: Linux's ENOPROTOOPT (and the
         * IPv4 ones on an IPv6 socket are Linux's too: they work) */
        if (level == IPPROTO_IPV6 && s->family != AF_INET6)
            goto unsupported;
        switch (level == IPPROTO_IP ? name : -name) {
        case IP_TOS:
        case -IPV6_TCLASS:
            o = TCPSM_OPT_TOS;
            break;
        case IP_TTL:
        case -IPV6_UNICAST_HOPS:
            o = TCPSM_OPT_TTL;
            break;
        case -IPV6_V6ONLY:
            o = TCPSM_OPT_V6ONLY;
            break;
        case IP_MTU:
        case -IPV6_MTU:
            o = TCPSM_OPT_MTU;
            break;
        case IP_MTU_DISCOVER:
        case -IPV6_MTU_DISCOVER:
            v = s->pmtudisc;
            return put_val(val, len, &v, sizeof(v));
        case IP_RECVERR:
        case -IPV6_RECVERR:
            v = 0;
            return put_val(val, len, &v, sizeof(v));
        default:
            goto unsupported;
        }
        if ((r = tcpsm_getopt(s->sk, (enum tcpsm_opt)o, &v)) < 0)
            return r;
        return put_val(val, len, &v, sizeof(v));
    }
    if (level == IPPROTO_TCP) {
        if ((o = tcp_opt(name)) >= 0 && name != TCP_MAXSEG) {
            if ((r = tcpsm_getopt(s->sk, (enum tcpsm_opt)o, &v)) < 0)
                return r;
            return put_val(val, len, &v, sizeof(v));
        }
        switch (name) {
        case TCP_MAXSEG: {
            /* Linux: the current MSS once connected, else the user's clamp, else 536. */
            struct tcpsm_tcp_info in;
            memset(&in, 0, sizeof(in));
            tcpsm_info(s->sk, &in);
            int st = in.state;
            if (st != TCPSM_CLOSED && st != TCPSM_LISTEN && in.snd_mss)
                v = (int)in.snd_mss;
            else if (tcpsm_getopt(s->sk, TCPSM_OPT_MAXSEG, &v) < 0 || v == 0)
                v = 536;
            return put_val(val, len, &v, sizeof(v));
        }
        case TCP_INFO: {
            struct shim_tcp_info ti;
            fill_tcp_info(s, &ti);
            return put_val(val, len, &ti, sizeof(ti));
        }
        case TCP_DEFER_ACCEPT:
            v = s->defer_accept;
            return put_val(val, len, &v, sizeof(v));
        case TCP_CONGESTION: {
            char name_buf[TCP_CA_NAME_MAX] = { 0 };
            if (tcpsm_getopt(s->sk, TCPSM_OPT_CONGESTION, &v) != 0)
                v = TCPSM_CC_RENO;
            const char *nm = tcpsm_cc_name(v);
            size_t nl = strlen(nm);
            memcpy(name_buf, nm, nl < sizeof(name_buf) ? nl : sizeof(name_buf) - 1);
            return put_val(val, len, name_buf, sizeof(name_buf));
        }
        default:
            break;
        }
    }
unsupported:
    tcpsm_log(TCPSM_LOG_DEBUG, "getsockopt(level %d, option %d) is not supported on stack sockets",
              level, name);
    return -ENOPROTOOPT;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    struct shim_sock *s = shim_stack_lookup(fd);
    if (!s)
        return REAL(getsockopt)(fd, level, name, val, len);
    int r;
    if (!len)
        r = -EFAULT;
    else if ((int)*len < 0)
        r = -EINVAL;
    else
        r = stack_get(s, level, name, val, len);
    shim_sock_put(s);
    return (int)shim_ret(r);
}
