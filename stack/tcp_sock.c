/* The socket API of the core (core.h tcpsm_sock_*): the user calls of
 * RFC 9293 3.10.1-3.10.6 with Linux's errors and readiness. */
#include <errno.h>
#include <string.h>

#include "ipv4.h"
#include "ipv6.h"
#include "tcp_int.h"

static void flush(struct tcpsm_sock *sk)
{
    tcp_mem_wake_senders(sk->st);
    stack_tx_flush(sk->st);
}

int tcpsm_sock_new(struct tcpsm_stack *st, struct tcpsm_sock **out)
{
    if (!st || !out)
        return -EINVAL;
    struct tcpsm_sock *sk = tcp_sock_alloc(st);
    if (!sk)
        return -ENOBUFS;
    sk->user_ref = true;
    *out = sk;
    return 0;
}

int tcpsm_sock_bind(struct tcpsm_sock *sk, uint32_t addr, uint16_t port)
{
    struct tcpsm_addr a = addr_from_v4(addr);
    if (addr == 0)
        memset(&a, 0, sizeof(a));
    return tcpsm_sock_bind_addr(sk, &a, port);
}

int tcpsm_sock_bind_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port)
{
    struct tcpsm_stack *st = sk->st;
    static const struct tcpsm_addr any;
    if (sk->user_bound || sk->lport || sk->state != TCPSM_CLOSED)
        return -EINVAL;
    struct tcpsm_addr a = *addr;
    if (addr_is_v4(&a)) {
        /* Linux: a v6-only socket cannot take an IPv4-mapped address */
        if (sk->ipv6 && sk->v6only)
            return -EINVAL;
        if (addr_v4(&a) == 0)
            a = any;
        else if (addr_v4(&a) != st->cfg.addr || !st->cfg.addr)
            return -EADDRNOTAVAIL;
    } else if (!addr_is_any(&a)) {
        if (!sk->ipv6)
            return -EAFNOSUPPORT;
        if (!ipv6_is_ours(st, a.b))
            return -EADDRNOTAVAIL;
    }
    sk->laddr = a;
    if (port == 0) {
        int r = tcp_pick_ephemeral(sk, false);
        if (r < 0) {
            sk->laddr = any;
            return -EADDRINUSE;
        }
    } else {
        if (tcp_port_conflict(st->tcp, sk, &a, port)) {
            sk->laddr = any;
            return -EADDRINUSE;
        }
        sk->lport = port;
        tcp_bind_add(sk);
    }
    sk->user_bound = true;
    return 0;
}

int tcpsm_sock_listen(struct tcpsm_sock *sk, int backlog)
{
    /* Linux: a backlog above somaxconn (4096), or negative (taken as
     * unsigned), is somaxconn; 0 stays 0 (the accept queue still holds one). */
    if (backlog < 0 || backlog > 4096)
        backlog = 4096;
    if (sk->state == TCPSM_LISTEN) {
        sk->backlog = (uint32_t)backlog;
        return 0;
    }
    if (sk->state != TCPSM_CLOSED)
        return -EINVAL;
    if (!sk->lport) {
        if (tcp_pick_ephemeral(sk, false) < 0)
            return -EADDRINUSE;
        sk->user_bound = true;
    } else {
        if ((!addr_is_any(&sk->laddr) && tcp_listener_find(sk->st->tcp, &sk->laddr, sk->lport)) ||
            tcp_port_conflict(sk->st->tcp, sk, &sk->laddr, sk->lport))
            return -EADDRINUSE;
        tcp_bind_add(sk);
    }
    sk->backlog = (uint32_t)backlog;
    sk->err = 0;
    sk->shutdown = 0;
    tcp_set_state(sk, TCPSM_LISTEN, "app listen", NULL, false);
    tcp_lhash_add(sk);
    return 0;
}

/* Fresh connection state for connect() (also after a failed attempt). */
static void reset_conn(struct tcpsm_sock *sk)
{
    sk->err = sk->soft_err = 0;
    sk->shutdown = 0;
    sk->fin_queued = sk->fin_sent = false;
    sk->rcv_fin = sk->ooo_fin = false;
    tcp_ofo_purge(sk);
    tcp_ring_release(sk, &sk->sndq);
    tcp_ring_release(sk, &sk->rcvq);
    sk->retries = sk->backoff = sk->probes = sk->ka_probes = 0;
    sk->first_rtx = 0;
    sk->srtt_us = sk->rttvar_us = 0;
    sk->rto_us = TCP_RTO_INIT_US;
    sk->total_retrans = 0;
    sk->syn_acked = false;
    sk->delack_segs = 0;
    sk->ack_now = false;
    sk->rcv_nxt = sk->rcv_adv = sk->irs = 0;
    sk->rcv_wnd_max = 0;
    sk->snd_wnd = sk->max_snd_wnd = 0;
}

int tcpsm_sock_connect(struct tcpsm_sock *sk, uint32_t addr, uint16_t port, uint64_t now)
{
    struct tcpsm_addr a = addr_from_v4(addr);
    return tcpsm_sock_connect_addr(sk, &a, port, now);
}

bool tcpsm_stack_routable_addr(const struct tcpsm_stack *st, const struct tcpsm_addr *dst)
{
    if (addr_is_v4(dst))
        return tcpsm_stack_routable(st, addr_v4(dst));
    return ipv6_route(st, dst->b, NULL);
}

int tcpsm_sock_connect_addr(struct tcpsm_sock *sk, const struct tcpsm_addr *addr, uint16_t port,
                            uint64_t now)
{
    struct tcpsm_stack *st = sk->st;
    static const struct tcpsm_addr any;
    st->now = now;
    /* Linux __inet_stream_connect: while connecting, a call reports how the
     * attempt went (once): still going, its error, or success (0, and
     * EISCONN from then on). A new handshake only from a socket that is
     * neither connecting nor connected. */
    if (sk->conn == TCP_CONN_CONNECTED)
        return -EISCONN;
    if (sk->conn == TCP_CONN_CONNECTING) {
        if (sk->state == TCPSM_SYN_SENT || sk->state == TCPSM_SYN_RECEIVED)
            return -EALREADY;
        if (sk->state == TCPSM_CLOSED) {
            sk->conn = TCP_CONN_NONE;
            int e = sk->err;
            sk->err = 0;
            return e ? -e : -ECONNABORTED;
        }
        sk->conn = TCP_CONN_CONNECTED;
        return 0;
    }
    switch (sk->state) {
    case TCPSM_CLOSED:
        break;
    case TCPSM_LISTEN:
        return -EINVAL;
    case TCPSM_SYN_SENT:
    case TCPSM_SYN_RECEIVED:
        return -EALREADY;
    default:
        return -EISCONN;
    }
    bool v4 = addr_is_v4(addr);
    /* an IPv4 socket reaches IPv4 only; a v6-only one IPv6 only (Linux: ENETUNREACH) */
    if ((!v4 && !sk->ipv6) || (v4 && sk->ipv6 && sk->v6only))
        return sk->ipv6 ? -ENETUNREACH : -EAFNOSUPPORT;
    if (!tcpsm_stack_routable_addr(st, addr))
        return -ENETUNREACH;
    struct tcpsm_addr la;
    if (!tcp_local_addr(st, addr, &la))
        return -EADDRNOTAVAIL;
    /* bound to an address of the other family: no route from it */
    if (!addr_is_any(&sk->laddr) && addr_is_v4(&sk->laddr) != v4)
        return -ENETUNREACH;
    reset_conn(sk);
    if (addr_is_any(&sk->laddr))
        sk->laddr = la;
    sk->raddr = *addr;
    sk->rport = port;
    if (!sk->lport) {
        if (tcp_pick_ephemeral(sk, true) < 0) {
            sk->raddr = any;
            sk->rport = 0;
            return -EADDRNOTAVAIL;
        }
    } else {
        if (tcp_ehash_find(st->tcp, &sk->laddr, sk->lport, addr, port)) {
            sk->raddr = any;
            sk->rport = 0;
            return -EADDRNOTAVAIL;
        }
        tcp_bind_add(sk);
    }
    sk->passive = false;
    sk->rcv_mss = (uint16_t)(tcp_mtu_l4(sk) - 20);
    if (sk->user_mss && sk->user_mss < sk->rcv_mss)
        sk->rcv_mss = sk->user_mss;
    sk->mss = TCP_MSS_DEF;
    sk->ws_ok = sk->ts_ok = sk->sack_ok = true;      /* offered in the SYN */
    sk->rcv_wscale = tcp_rcv_wscale(sk);
    sk->snd_wscale = 0;
    sk->iss = tcp_isn(sk, now);
    sk->ts_off = (uint32_t)tcp_isn(sk, 0) * 2654435761u;
    sk->snd_una = sk->snd_max = sk->iss;
    sk->snd_buf_seq = sk->iss + 1;
    sk->recover = sk->iss;
    sk->rtt_active = true;
    sk->rtt_seq = sk->iss;
    sk->rtt_start = now;
    sk->done = true;
    tcp_ehash_add(sk);
    sk->conn = TCP_CONN_CONNECTING;
    st->cnt.tcp_active_opens++;
    tcp_send_syn(sk, now);
    tcp_set_state(sk, TCPSM_SYN_SENT, "app connect", NULL, true);
    flush(sk);
    return -EINPROGRESS;
}

int tcpsm_sock_accept(struct tcpsm_sock *sk, struct tcpsm_sock **out)
{
    if (sk->state != TCPSM_LISTEN)
        return -EINVAL;
    struct tcpsm_sock *c = sk->accq;
    if (!c)
        return -EAGAIN;
    sk->accq = c->qnext;
    if (!sk->accq)
        sk->accq_tail = NULL;
    sk->nacc--;
    c->qnext = NULL;
    c->in_acceptq = false;
    c->parent = NULL;
    c->user_ref = true;
    c->conn = TCP_CONN_CONNECTED;
    *out = c;
    return 0;
}

ssize_t tcpsm_sock_send(struct tcpsm_sock *sk, const void *buf, size_t len, uint64_t now)
{
    return tcpsm_sock_sendf(sk, buf, len, 0, now);
}

/* TCPSM_MSG_HOLD (core.h): the reply to a request whose quick ACK is held
 * for it, with nothing in flight, waits for the application's next call,
 * which may be its close: a response and its FIN then leave as one segment
 * (Linux sends them as two; RFC 9293 3.10.4 lets a FIN go with the data
 * before it). The peer sent data (a request), so the ACK held is not the
 * one completing our active open; no urgent data; the delayed-ACK timer
 * is armed (the bound on the wait); a reply of at most TCP_REPLY_HOLD_MAX
 * (a larger one is bulk: it goes at once, with what was held). Never with
 * TCP_NODELAY: the program asked for its data to leave at once. */
static bool reply_hold(const struct tcpsm_sock *sk, int flags)
{
    return (flags & TCPSM_MSG_HOLD) && !(flags & TCPSM_MSG_OOB) && !sk->nodelay && sk->ack_held &&
           sk->dack_at && sk->rcv_nxt - sk->irs > 1 && sk->snd_nxt == sk->snd_una &&
           sk->sndq.len <= TCP_REPLY_HOLD_MAX &&
           !sk->fin_queued && tcp_synchronized(sk->state);
}

ssize_t tcpsm_sock_sendf(struct tcpsm_sock *sk, const void *buf, size_t len, int flags,
                         uint64_t now)
{
    sk->st->now = now;
    if (sk->err) {
        int e = sk->err;
        sk->err = 0;
        return -e;
    }
    if (sk->shutdown & SEND_SHUTDOWN)
        return -EPIPE;
    switch (sk->state) {
    case TCPSM_ESTABLISHED:
    case TCPSM_CLOSE_WAIT:
        break;
    case TCPSM_SYN_SENT:
    case TCPSM_SYN_RECEIVED:
        return -EAGAIN;                 /* Linux waits for the connection */
    case TCPSM_CLOSED:
    case TCPSM_LISTEN:
        return sk->done ? -EPIPE : -ENOTCONN;
    default:
        return -EPIPE;
    }
    if (len == 0)
        return 0;
    uint32_t room = sk->sndbuf > sk->sndq.len ? sk->sndbuf - sk->sndq.len : 0;
    if (room == 0) {
        sk->async_nospace = true;       /* POLL_OUT when room comes (sk_stream_wait_memory) */
        return -EAGAIN;
    }
    uint32_t want = len < room ? (uint32_t)len : room;
    /* The send queue is bounded by SO_SNDBUF and by the stack's memory cap
     * (Linux sk_wmem_schedule under tcp_mem[2]): at the cap the queue grows
     * only below TCP_WMEM_MIN (tcp_wmem[0], so every socket can make
     * progress), else the call takes what its ring already has room for,
     * or refuses: -EAGAIN (a blocking caller waits for POLLOUT, which
     * returns once memory is freed, as sk_stream_wait_memory). */
    int rc = tcp_ring_reserve(sk, &sk->sndq, sk->sndq.len + want, sk->sndbuf, false);
    if (rc == -ENOBUFS && sk->sndq.len < TCP_WMEM_MIN) {
        uint32_t need = sk->sndq.len + want < TCP_WMEM_MIN ? sk->sndq.len + want : TCP_WMEM_MIN;
        rc = tcp_ring_reserve(sk, &sk->sndq, need, sk->sndbuf, true);
    }
    if (rc == -ENOMEM)
        return -ENOMEM;
    uint32_t n;
    if (flags & TCPSM_MSG_OOB) {
        /* The bytes and their urgent mark go together (the byte-stream
         * intent record: cut between them, the urgent byte would go as
         * data). The last byte taken is urgent (Linux tcp_mark_urg). */
        struct tcpsm_sock *outer = tcp_stream_begin(sk);
        n = ring_write(&sk->sndq, buf, want);
        if (n) {
            sk->snd_up = sk->snd_buf_seq + sk->sndq.len;
            sk->urg_mode = true;
        }
        tcp_stream_end(sk, outer);
    } else {
        n = ring_write(&sk->sndq, buf, want);
    }
    if (n == 0) {
        if (rc == -ENOBUFS && !sk->snd_mem_wait) {
            sk->snd_mem_wait = true;
            TS(sk)->snd_mem_waiters++;
        }
        sk->async_nospace = true;
        return -EAGAIN;
    }
    sk->snd_mem_wait = false;
    tcp_chrono_start(sk, TCP_CHRONO_BUSY, now);  /* Linux tcp_add_write_queue_tail */
    /* MSG_MORE: this call's tail waits like TCP_CORK (Linux tcp_push with
     * TCP_NAGLE_CORK), for the next send or the 200 ms cork ceiling */
    sk->more = (flags & TCPSM_MSG_MORE) != 0;
    if (reply_hold(sk, flags)) {
        if (!sk->out_held) {
            sk->out_held = true;
            sk->st->cnt.tcp_replies_held++;
            /* bounded: a thread that blocks outside the stack after its
             * send (a worker pool's condition variable) delays the reply
             * by TCP_REPLY_HOLD_NS, not by the 40 ms delayed ACK */
            if (sk->dack_at > now + TCP_REPLY_HOLD_NS) {
                sk->dack_at = now + TCP_REPLY_HOLD_NS;
                tcp_timer_update(sk);
            }
        }
    } else {
        tcp_out_release(sk, now);
        tcp_output(sk, now);
    }
    sk->more = false;
    flush(sk);
    return n;
}

/* Receive buffer auto-tuning, after Linux tcp_rcv_space_adjust: when the
 * reader drains more than a quarter of the buffer per round trip, the
 * window, not the reader, may be what limits the sender: double the
 * buffer, up to rcvbuf_max. A reader that pauses keeps its buffer (the
 * rate is measured over the whole interval). The most read in one such
 * interval is Linux's rcvq_space.space (tcpi_rcv_space). */
static void rcvbuf_tune(struct tcpsm_sock *sk, uint32_t n, uint64_t now)
{
    if (!sk->rcvq_time) {
        sk->rcvq_time = now;
        sk->rcvq_copied = 0;
    }
    sk->rcvq_copied += n;
    uint64_t rtt = (uint64_t)(sk->rcv_rtt_us ? sk->rcv_rtt_us : sk->srtt_us) * 1000u;
    if (rtt < MS_NS)
        rtt = MS_NS;
    uint64_t elapsed = now - sk->rcvq_time;
    if (elapsed < rtt)
        return;
    if (sk->rcvq_copied > sk->rcvq_space)
        sk->rcvq_space = sk->rcvq_copied;
    if (sk->rcvbuf_max > sk->rcvbuf && !TS(sk)->mem_pressure &&
        (uint64_t)sk->rcvq_copied * rtt > (uint64_t)(sk->rcvbuf / 4) * elapsed) {
        uint32_t b = sk->rcvbuf > sk->rcvbuf_max / 2 ? sk->rcvbuf_max : sk->rcvbuf * 2;
        sk->rcvbuf = b;
    }
    sk->rcvq_time = now;
    sk->rcvq_copied = 0;
}

/* recv(MSG_OOB) (Linux tcp_recv_urg): the urgent byte, once; never waits. */
static ssize_t recv_urg(struct tcpsm_sock *sk, void *buf, size_t len, int flags)
{
    if (sk->urginline || !sk->urg_data || sk->urg_data == TCP_URG_READ)
        return -EINVAL;
    if (sk->state == TCPSM_CLOSED && !sk->done)
        return -ENOTCONN;
    if (sk->urg_data & TCP_URG_VALID) {
        if (len == 0)
            return 0;
        *(uint8_t *)buf = (uint8_t)sk->urg_data;
        if (!(flags & TCPSM_MSG_PEEK))
            sk->urg_data = TCP_URG_READ;
        return 1;
    }
    if (sk->state == TCPSM_CLOSED || (sk->shutdown & RCV_SHUTDOWN))
        return 0;
    return -EAGAIN;
}

ssize_t tcpsm_sock_recv(struct tcpsm_sock *sk, void *buf, size_t len, int flags, uint64_t now)
{
    sk->st->now = now;
    if (sk->state == TCPSM_LISTEN)
        return -ENOTCONN;
    if (flags & TCPSM_MSG_OOB)
        return recv_urg(sk, buf, len, flags);
    if (len == 0)
        return 0;
    if (sk->rcvq.len) {
        bool peek = flags & TCPSM_MSG_PEEK;
        uint32_t skip, n = sk->rcvq.len < len ? sk->rcvq.len : (uint32_t)len;
        n = tcp_urg_read_limit(sk, n, peek, &skip);
        if (n)
            ring_read_at(&sk->rcvq, skip, buf, n);
        if (!peek && n + skip) {
            struct tcpsm_sock *outer = tcp_stream_begin(sk);   /* length and head */
            ring_drop(&sk->rcvq, n + skip);
            tcp_urg_after_read(sk);
            if (!sk->rcvq.len)
                tcp_ring_release(sk, &sk->rcvq);    /* drained: memory follows data */
            tcp_stream_end(sk, outer);
            rcvbuf_tune(sk, n + skip, now);
            tcp_window_update(sk, now);
            flush(sk);
        }
        if (n)
            return n;
        /* only the out-of-band byte was there: as if nothing were */
    }
    /* Linux tcp_recvmsg order: FIN seen, pending error, shutdown, CLOSED */
    if (sk->rcv_fin)
        return 0;
    if (sk->err) {
        int e = sk->err;
        sk->err = 0;
        return -e;
    }
    if (sk->shutdown & RCV_SHUTDOWN)
        return 0;
    if (sk->state == TCPSM_CLOSED)
        return -ENOTCONN;
    return -EAGAIN;
}

/* Queue our FIN (RFC 9293 3.10.4 CLOSE): ESTABLISHED -> FIN-WAIT-1,
 * CLOSE-WAIT -> LAST-ACK. */
void tcp_send_fin(struct tcpsm_sock *sk, const char *why, uint64_t now)
{
    int next;
    switch (sk->state) {
    case TCPSM_ESTABLISHED:
    case TCPSM_SYN_RECEIVED:
        next = TCPSM_FIN_WAIT_1;
        break;
    case TCPSM_CLOSE_WAIT:
        next = TCPSM_LAST_ACK;
        break;
    default:
        return;
    }
    sk->fin_queued = true;
    tcp_output(sk, now);
    tcp_set_state(sk, next, why, NULL, sk->fin_sent);
    if (!sk->fin_sent)
        tcp_output(sk, now);            /* from SYN-RECEIVED: FIN-WAIT-1 may send it now */
    if (!sk->rto_at && sk->fin_sent)
        tcp_rto_arm(sk, now);
}

/* A listener stops: unaccepted connections are reset (Linux
 * inet_csk_listen_stop), embryonic ones dropped. */
static void listener_stop(struct tcpsm_sock *sk, uint64_t now)
{
    while (sk->accq) {
        struct tcpsm_sock *c = sk->accq;
        tcp_unlink_child(c);
        if (c->state != TCPSM_CLOSED && c->state != TCPSM_TIME_WAIT)
            tcp_send_rst_sk(c, now);
        tcp_done(c, ECONNRESET, "listener closed", NULL);
    }
    while (sk->synq) {
        struct tcpsm_sock *c = sk->synq;
        tcp_unlink_child(c);
        tcp_done(c, 0, "listener closed", NULL);
    }
    tcp_set_state(sk, TCPSM_CLOSED, "app close", NULL, false);
    if (!sk->user_bound)
        tcp_bind_del(sk);
}

int tcpsm_sock_shutdown(struct tcpsm_sock *sk, int how, uint64_t now)
{
    sk->st->now = now;
    if (how < 0 || how > 2)
        return -EINVAL;
    uint8_t bits = (uint8_t)(how + 1);  /* SHUT_RD=1, SHUT_WR=2, both=3 */
    int r = 0;
    switch (sk->state) {
    case TCPSM_CLOSED:
        sk->shutdown |= bits;
        r = -ENOTCONN;
        break;
    case TCPSM_LISTEN:
        if (bits & RCV_SHUTDOWN)
            listener_stop(sk, now);     /* Linux: disconnect; the bound port stays */
        break;
    case TCPSM_SYN_SENT:
        tcp_done(sk, 0, "app shutdown", NULL);
        sk->shutdown = 0;
        break;
    default:
        sk->shutdown |= bits;
        if (bits & SEND_SHUTDOWN)
            tcp_send_fin(sk, "app shutdown", now);
        break;
    }
    tcp_wake(sk);
    flush(sk);
    return r;
}

void tcpsm_sock_close(struct tcpsm_sock *sk, uint64_t now)
{
    struct tcpsm_stack *st = sk->st;
    st->now = now;
    sk->user_ref = false;
    switch (sk->state) {
    case TCPSM_LISTEN:
        listener_stop(sk, now);
        break;
    case TCPSM_CLOSED:
        break;
    case TCPSM_SYN_SENT:
        tcp_done(sk, 0, "app close", NULL);
        return;
    default: {
        bool unread = sk->rcvq.len > 0;
        bool open = sk->state <= TCPSM_CLOSE_WAIT;  /* SYN-RECEIVED .. CLOSE-WAIT */
        if (open && (unread || sk->linger == 0 || sk->state == TCPSM_SYN_RECEIVED)) {
            /* RFC 9293 3.10.4 / Linux tcp_close: reset instead of FIN */
            tcp_send_rst_sk(sk, now);
            tcp_done(sk, 0, unread ? "app close, unread data" : "app close, linger 0", NULL);
            stack_tx_flush(st);         /* sk is gone */
            return;
        }
        sk->shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
        if (!open) {
            /* CLOSING, LAST-ACK, TIME-WAIT: unread data is dropped, the
             * send queue may still need retransmitting */
            tcp_ring_release(sk, &sk->rcvq);
            tcp_ofo_purge(sk);
        }
        tcp_send_fin(sk, "app close", now);
        if (sk->state == TCPSM_FIN_WAIT_2) {
            sk->state_at = now + TCP_FIN_TIMEOUT_NS;
            tcp_timer_update(sk);
        }
        stack_tx_flush(st);
        return;
    }
    }
    stack_tx_flush(st);
    tcp_maybe_free(sk);
}

/* RFC 9293 3.10.5 ABORT; rst_after_fin also resets CLOSING and LAST-ACK,
 * whose peer may still wait for our unsent data or FIN. May free sk (an
 * orphan, or an unaccepted child); frees no other TCB unless sk listens. */
static void abort_tcb(struct tcpsm_sock *sk, bool rst_after_fin, const char *why, uint64_t now)
{
    switch (sk->state) {
    case TCPSM_LISTEN:
        listener_stop(sk, now);
        break;
    case TCPSM_CLOSED:
        break;
    case TCPSM_CLOSING:
    case TCPSM_LAST_ACK:
        if (rst_after_fin)
            tcp_send_rst_sk(sk, now);
        tcp_done(sk, 0, why, NULL);
        break;
    case TCPSM_SYN_RECEIVED:
    case TCPSM_ESTABLISHED:
    case TCPSM_FIN_WAIT_1:
    case TCPSM_FIN_WAIT_2:
    case TCPSM_CLOSE_WAIT:
        tcp_send_rst_sk(sk, now);       /* <SEQ=SND.NXT><CTL=RST> */
        /* fall through */
    default:
        tcp_done(sk, 0, why, NULL);
        break;
    }
}

void tcpsm_sock_abort(struct tcpsm_sock *sk, uint64_t now)
{
    sk->st->now = now;
    abort_tcb(sk, false, "app abort", now);
    flush(sk);
}

/* Every connection the stack has, held or orphaned (stack shutdown). The
 * connections go first: a listener's unaccepted children are on the list
 * too, and stopping the listener before them would free them under the
 * walk. Aborting a non-listener frees at most itself. */
void tcp_abort_all(struct tcpsm_stack *st, uint64_t now)
{
    struct tcpsm_sock *sk, *next;
    for (sk = st->tcp->all; sk; sk = next) {
        next = sk->anext;
        if (sk->state != TCPSM_LISTEN)
            abort_tcb(sk, true, "stack abort", now);
    }
    for (sk = st->tcp->all; sk; sk = next) {
        next = sk->anext;
        if (sk->state == TCPSM_LISTEN)
            abort_tcb(sk, true, "stack abort", now);
    }
}

/* Linux tcp_poll(). */
unsigned tcpsm_sock_poll(const struct tcpsm_sock *sk)
{
    int s = sk->state;
    if (s == TCPSM_LISTEN)
        return sk->accq ? TCPSM_POLLIN : 0;
    unsigned m = 0;
    if (sk->shutdown == (RCV_SHUTDOWN | SEND_SHUTDOWN) || s == TCPSM_CLOSED)
        m |= TCPSM_POLLHUP;
    if (sk->shutdown & RCV_SHUTDOWN)
        m |= TCPSM_POLLIN | TCPSM_POLLRDHUP;
    if (s != TCPSM_SYN_SENT && s != TCPSM_SYN_RECEIVED) {
        if (sk->rcvq.len && !tcp_urg_hides_rcvq(sk))
            m |= TCPSM_POLLIN;
        if (sk->urg_data & TCP_URG_VALID)
            m |= TCPSM_POLLPRI;         /* the urgent byte waits (Linux tcp_poll) */
        if (!(sk->shutdown & SEND_SHUTDOWN)) {
            uint32_t queued = sk->sndq.len;
            uint32_t cap = sk->sndbuf;
            /* refused at the memory cap: writable again when memory frees
             * or its own ring has room */
            bool mem = !sk->snd_mem_wait || sk->sndq.cap > sk->sndq.len;
            if (cap > queued && cap - queued >= queued / 2 && mem)
                m |= TCPSM_POLLOUT;
        } else {
            m |= TCPSM_POLLOUT;
        }
    }
    if (sk->err)
        m |= TCPSM_POLLERR;
    return m;
}

unsigned tcpsm_sock_poll_app(struct tcpsm_sock *sk)
{
    unsigned m = tcpsm_sock_poll(sk);
    if (!(m & TCPSM_POLLOUT) && sk->state != TCPSM_LISTEN && !(sk->shutdown & SEND_SHUTDOWN))
        sk->async_nospace = true;       /* Linux tcp_poll: "send SIGIO later" */
    return m;
}

unsigned tcpsm_sock_take_async(struct tcpsm_sock *sk)
{
    unsigned v = sk->async_ev;
    sk->async_ev = 0;
    return v;
}

int tcpsm_sock_error(struct tcpsm_sock *sk)
{
    int e = sk->err;
    sk->err = 0;
    return e;
}

int tcpsm_sock_state(const struct tcpsm_sock *sk)
{
    return sk->state;
}

void tcpsm_sock_name(const struct tcpsm_sock *sk, uint32_t *addr, uint16_t *port)
{
    if (addr)
        *addr = addr_is_v4(&sk->laddr) ? addr_v4(&sk->laddr) : 0;
    if (port)
        *port = sk->lport;
}

void tcpsm_sock_name_addr(const struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port)
{
    if (addr)
        *addr = sk->laddr;
    if (port)
        *port = sk->lport;
}

int tcpsm_sock_peer_addr(const struct tcpsm_sock *sk, struct tcpsm_addr *addr, uint16_t *port)
{
    uint32_t a4;
    int r = tcpsm_sock_peer(sk, &a4, port);
    if (r == 0 && addr)
        *addr = sk->raddr;
    return r;
}

int tcpsm_sock_peer(const struct tcpsm_sock *sk, uint32_t *addr, uint16_t *port)
{
    if (!sk->rport || sk->state == TCPSM_CLOSED || sk->state == TCPSM_SYN_SENT ||
        sk->state == TCPSM_LISTEN)
        return -ENOTCONN;
    if (addr)
        *addr = addr_is_v4(&sk->raddr) ? addr_v4(&sk->raddr) : 0;
    if (port)
        *port = sk->rport;
    return 0;
}

size_t tcpsm_sock_rxavail(const struct tcpsm_sock *sk)
{
    /* Linux tcp_inq: up to the mark while an urgent byte is pending */
    if (sk->urg_data && !sk->urginline) {
        uint32_t off = sk->urg_seq - tcp_copied_seq(sk);
        if (off < sk->rcvq.len)
            return off;
    }
    return sk->rcvq.len;
}

size_t tcpsm_sock_txqueued(const struct tcpsm_sock *sk)
{
    return sk->sndq.len;
}

static uint32_t clamp_buf(int val, uint32_t min)
{
    uint64_t v = val < 0 ? 0 : (uint64_t)val * 2;   /* Linux doubles for overhead */
    if (v < min)
        v = min;
    if (v > TCP_BUF_MAX)
        v = TCP_BUF_MAX;
    return (uint32_t)v;
}

int tcpsm_sock_setopt(struct tcpsm_sock *sk, enum tcpsm_opt opt, int val)
{
    uint64_t now = sk->st->now;
    switch (opt) {
    case TCPSM_OPT_NODELAY:
        sk->nodelay = val != 0;
        if (sk->nodelay) {
            tcp_output(sk, now);        /* Linux pushes pending frames */
            flush(sk);
        }
        return 0;
    case TCPSM_OPT_CORK:
        sk->cork = val != 0;
        if (!sk->cork) {
            tcp_output(sk, now);
            flush(sk);
        }
        return 0;
    case TCPSM_OPT_KEEPALIVE:
        sk->keepalive = val != 0;
        sk->last_rcv = now;
        tcp_ka_reset(sk, now);
        return 0;
    case TCPSM_OPT_KEEPIDLE:
        if (val < 1 || val > 32767)
            return -EINVAL;
        sk->keepidle = val;
        if (sk->keepalive)
            tcp_ka_reset(sk, now);
        return 0;
    case TCPSM_OPT_KEEPINTVL:
        if (val < 1 || val > 32767)
            return -EINVAL;
        sk->keepintvl = val;
        return 0;
    case TCPSM_OPT_KEEPCNT:
        if (val < 1 || val > 127)
            return -EINVAL;
        sk->keepcnt = val;
        return 0;
    case TCPSM_OPT_SNDBUF: {
        uint32_t b = clamp_buf(val, TCP_SNDBUF_MIN);
        /* queued bytes stay; the ring grows up to the new size on demand */
        sk->sndbuf = b > sk->sndq.cap ? b : sk->sndq.cap;
        tcp_wake(sk);
        return 0;
    }
    case TCPSM_OPT_RCVBUF: {
        uint32_t b = clamp_buf(val, TCP_RCVBUF_MIN);
        /* never below what the ring already holds (in order and beyond) */
        sk->rcvbuf = b > sk->rcvq.cap ? b : sk->rcvq.cap;
        sk->rcvbuf_max = 0;             /* set by the user: no auto-tuning (Linux) */
        return 0;
    }
    case TCPSM_OPT_LINGER:
        if (val < -1)
            return -EINVAL;
        sk->linger = val;
        return 0;
    case TCPSM_OPT_MAXSEG:
        if (val < 88 || val > 65535)
            return -EINVAL;
        sk->user_mss = (uint16_t)val;
        return 0;
    case TCPSM_OPT_REUSEADDR:
        sk->reuseaddr = val != 0;
        return 0;
    case TCPSM_OPT_OOBINLINE:
        sk->urginline = val != 0;
        return 0;
    case TCPSM_OPT_USER_TIMEOUT:
        if (val < 0)
            return -EINVAL;
        sk->user_timeout_ms = (uint32_t)val;
        return 0;
    case TCPSM_OPT_CONGESTION:
        if (val < 0 || val >= TCPSM_CC_COUNT)
            return -ENOENT;             /* Linux: no such algorithm */
        sk->cc_pref = (uint8_t)val;
        if (sk->cc_on && sk->cc_algo != tcp_cong_pick(sk, val)) {
            /* a live connection keeps its window; the new algorithm
             * starts its own state (Linux tcp_reinit_congestion_control) */
            uint32_t cwnd = sk->cwnd, ssthresh = sk->ssthresh;
            sk->cc_algo = (uint8_t)tcp_cong_pick(sk, val);
            memset(&sk->cubic, 0, sizeof(sk->cubic));
            sk->pacing_rate = 0;
            if (sk->cc_algo == TCPSM_CC_BBR) {
                tcp_cong_ops(sk->cc_algo)->init(sk);
                sk->cwnd = cwnd;
                sk->ssthresh = ssthresh;
            }
        }
        return 0;
    case TCPSM_OPT_IPV6:
        /* the socket's family: only before bind/connect */
        if (sk->lport || sk->state != TCPSM_CLOSED)
            return -EINVAL;
        sk->ipv6 = val != 0;
        return 0;
    case TCPSM_OPT_V6ONLY:
        /* Linux: EINVAL once bound; meaningless on an IPv4 socket */
        if (!sk->ipv6)
            return -ENOPROTOOPT;
        if (sk->lport || sk->state != TCPSM_CLOSED)
            return -EINVAL;
        sk->v6only = val != 0;
        return 0;
    case TCPSM_OPT_TOS:
        if (val < -1 || val > 255)
            return -EINVAL;
        /* Linux IP_TOS keeps the ECN bits its own (RFC 3168 6.1.1.1) */
        sk->tos = val < 0 ? 0 : (val & 0xfc);
        return 0;
    case TCPSM_OPT_TTL:
        if (val == 0 || val < -1 || val > 255)
            return -EINVAL;
        sk->ttl = val;
        return 0;
    case TCPSM_OPT_MTU:
        return -ENOPROTOOPT;
    }
    return -ENOPROTOOPT;
}

int tcpsm_sock_getopt(const struct tcpsm_sock *sk, enum tcpsm_opt opt, int *val)
{
    switch (opt) {
    case TCPSM_OPT_NODELAY: *val = sk->nodelay; return 0;
    case TCPSM_OPT_CORK: *val = sk->cork; return 0;
    case TCPSM_OPT_KEEPALIVE: *val = sk->keepalive; return 0;
    case TCPSM_OPT_KEEPIDLE: *val = sk->keepidle; return 0;
    case TCPSM_OPT_KEEPINTVL: *val = sk->keepintvl; return 0;
    case TCPSM_OPT_KEEPCNT: *val = sk->keepcnt; return 0;
    case TCPSM_OPT_SNDBUF: *val = (int)sk->sndbuf; return 0;
    case TCPSM_OPT_RCVBUF: *val = (int)sk->rcvbuf; return 0;
    case TCPSM_OPT_LINGER: *val = sk->linger; return 0;
    case TCPSM_OPT_MAXSEG:
        if (tcp_synchronized(sk->state) || sk->state == TCPSM_SYN_RECEIVED)
            *val = (int)tcp_send_mss(sk);
        else
            *val = sk->user_mss ? sk->user_mss : TCP_MSS_DEF;
        return 0;
    case TCPSM_OPT_REUSEADDR: *val = sk->reuseaddr; return 0;
    case TCPSM_OPT_OOBINLINE: *val = sk->urginline; return 0;
    case TCPSM_OPT_USER_TIMEOUT: *val = (int)sk->user_timeout_ms; return 0;
    case TCPSM_OPT_CONGESTION: *val = sk->cc_pref; return 0;
    case TCPSM_OPT_IPV6: *val = sk->ipv6; return 0;
    case TCPSM_OPT_V6ONLY: *val = sk->v6only; return 0;
    case TCPSM_OPT_TOS: *val = sk->tos; return 0;
    case TCPSM_OPT_TTL: *val = sk->ttl < 0 ? 64 : sk->ttl; return 0;
    case TCPSM_OPT_MTU: {
        if (!tcp_synchronized(sk->state) && sk->state != TCPSM_SYN_SENT &&
            sk->state != TCPSM_SYN_RECEIVED)
            return -ENOTCONN;
        uint32_t hdr = addr_is_v4(&sk->raddr) ? 20u : 40u;
        uint32_t link = addr_is_v4(&sk->raddr) ? stack_dev(sk->st)->mtu : sk->st->v6.mtu;
        *val = (int)(sk->pmtu && sk->pmtu < link ? sk->pmtu : link);
        (void)hdr;
        return 0;
    }
    }
    return -ENOPROTOOPT;
}

/* Linux tcp_ca_state */
static uint8_t ca_state(const struct tcpsm_sock *sk)
{
    if ((sk->retries || sk->loss_state) && sk->snd_una != sk->snd_max)
        return 4;                       /* TCP_CA_Loss: after an RTO */
    if (sk->in_recovery)
        return 3;                       /* TCP_CA_Recovery */
    if (sk->dupacks || sk->sacked.n || sk->rtxq.sacked)
        return 1;                       /* TCP_CA_Disorder */
    return 0;                           /* TCP_CA_Open */
}

static uint32_t ms_since(uint64_t now, uint64_t t)
{
    if (!t || now < t)
        return 0;
    uint64_t ms = (now - t) / MS_NS;
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* Linux tcp_get_info(): every field the stack keeps. */
void tcpsm_sock_info(const struct tcpsm_sock *sk, struct tcpsm_tcp_info *i)
{
    tcpsm_sock_info_at(sk, i, sk->st->now);
}

void tcpsm_sock_info_at(const struct tcpsm_sock *sk, struct tcpsm_tcp_info *i, uint64_t now)
{
    memset(i, 0, sizeof(*i));
    uint32_t mss = tcp_send_mss(sk);
    i->state = (uint8_t)sk->state;
    i->ca_state = ca_state(sk);
    i->retransmits = sk->retries;
    i->probes = sk->probes > sk->ka_probes ? sk->probes : sk->ka_probes;
    i->backoff = sk->backoff;
    i->snd_wscale = sk->ws_ok ? sk->snd_wscale : 0;
    i->rcv_wscale = sk->ws_ok ? sk->rcv_wscale : 0;
    i->ws_ok = sk->ws_ok && tcp_synchronized(sk->state);
    i->ts_ok = sk->ts_ok && tcp_synchronized(sk->state);
    i->sack_ok = sk->sack_ok && tcp_synchronized(sk->state);
    i->rto_us = sk->rto_us;
    i->ato_us = (uint32_t)(TCP_DELACK_NS / 1000u);
    i->rtt_us = sk->srtt_us;
    i->rttvar_us = sk->rttvar_us;
    i->min_rtt_us = sk->min_rtt_us;
    i->pacing_rate = sk->pacing_rate;
    i->delivery_rate = sk->rate.rate;
    i->delivery_rate_app_limited = sk->rate.rate_app_limited;
    i->delivered = sk->rate.delivered;
    i->delivered_segs = sk->delivered_segs;
    i->dsack_dups = sk->dsack_dups;
    i->reord_seen = sk->reord_seen;
    i->rcv_rtt_us = sk->rcv_rtt_us;
    i->snd_mss = mss;
    /* the peer's segment size as Linux estimates it (icsk_ack.rcv_mss:
     * tcp_initialize_rcv_mss's 536 at most, then the largest seen) */
    /* tp->advmss: before the handshake ends, what we advertise */
    uint32_t adv = tcp_synchronized(sk->state) ? tcp_adv_mss(sk) : sk->rcv_mss;
    i->rcv_mss = sk->rcv_mss_seen ? sk->rcv_mss_seen : (adv < 536 ? adv : 536);
    i->advmss = adv;
    bool v4 = addr_is_v4(&sk->raddr) || (!sk->ipv6 && addr_is_any(&sk->raddr));
    i->pmtu = tcp_mtu_l4(sk) + (v4 ? 20u : 40u);
    if (sk->pmtu && sk->pmtu < i->pmtu)
        i->pmtu = sk->pmtu;
    i->snd_cwnd = mss ? sk->cwnd / mss : 0;
    i->snd_ssthresh = mss ? (sk->ssthresh > (1u << 29) ? 0x7fffffff : sk->ssthresh / mss) : 0;
    i->reordering = tcp_dupthresh(sk);  /* tp->reordering */
    i->snd_wnd = sk->snd_wnd;
    /* Linux tp->rcv_wnd: the window last advertised (the SYN's until an
     * ACK goes: the handshake's may wait for the request), not what is
     * left of it */
    i->rcv_wnd = sk->rcv_wnd_last;
    i->rcv_space = sk->rcvq_space;
    i->rwnd_limited_us = tcp_chrono_us(sk, TCP_CHRONO_RWND, now);
    i->sndbuf_limited_us = tcp_chrono_us(sk, TCP_CHRONO_SNDBUF, now);
    i->busy_time_us = tcp_chrono_us(sk, TCP_CHRONO_BUSY, now) + i->rwnd_limited_us +
                      i->sndbuf_limited_us;
    i->rcv_ssthresh = tcp_rcv_space(sk);
    i->unacked = tcp_segs(sk->snd_max - sk->snd_una, mss);
    if (tcp_rack_on(sk) && sk->rtxq.n)
        i->unacked = sk->rtxq.n;        /* segments in flight (tp->packets_out) */
    if (tcp_rack_on(sk)) {              /* the retransmit queue's counts */
        i->sacked = tcp_segs(sk->rtxq.sacked, mss);
        i->lost = tcp_segs(sk->rtxq.lost, mss);
        i->retrans = tcp_segs(sk->rtxq.retrans, mss);
    } else {
        i->retrans = sk->in_recovery ? 1 : 0;   /* NewReno: one retransmission at a time */
    }
    i->total_retrans = sk->total_retrans;
    i->last_data_sent_ms = ms_since(now, sk->last_data_sent);
    i->last_data_recv_ms = ms_since(now, sk->last_data_recv);
    i->last_ack_recv_ms = ms_since(now, sk->last_ack_recv);
    i->notsent_bytes = tcp_unsent(sk);
    i->bytes_acked = sk->bytes_acked;
    i->bytes_received = sk->bytes_received;
    i->bytes_sent = sk->bytes_sent;
    i->bytes_retrans = sk->bytes_retrans;
    i->segs_out = sk->segs_out;
    i->segs_in = sk->segs_in;
    i->data_segs_out = sk->data_segs_out;
    i->data_segs_in = sk->data_segs_in;
    i->rcv_ooopack = sk->rcv_ooopack;
    i->total_rto = sk->total_rto;
    i->total_rto_recoveries = sk->total_rto_recoveries;
    uint64_t rto_ns = sk->total_rto_ns + (sk->rto_start && now > sk->rto_start ?
                                          now - sk->rto_start : 0);
    i->total_rto_time_ms = rto_ns / MS_NS > UINT32_MAX ? UINT32_MAX : (uint32_t)(rto_ns / MS_NS);
    if (sk->state == TCPSM_LISTEN) {
        const struct tcp_syn_stats *y = &sk->syn;
        i->syn_count = y->syns;
        i->syn_rate = tcp_syn_rate(y, now);
        i->syn_cookies_sent = y->cookies_sent;
        i->syn_cookies_ok = y->cookies_ok;
        i->syn_cookies_bad = y->cookies_bad;
        i->syn_dropped = y->dropped;
        i->syn_queue = sk->nsyn;
        i->accept_queue = sk->nacc;
    }
}

void tcpsm_sock_set_user(struct tcpsm_sock *sk, void *user)
{
    sk->user = user;
}

void *tcpsm_sock_user(const struct tcpsm_sock *sk)
{
    return sk->user;
}
