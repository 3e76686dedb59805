/* Per-TCB timers, consolidated into one heap entry whose deadline is the
 * earliest of: retransmission (RFC 6298, Karn, backoff, retry bound),
 * persist / zero-window probe (RFC 9293 3.8.6.1), delayed ACK (RFC 1122
 * 4.2.3.2), keepalive (RFC 1122 4.2.3.6), and the state timer (TIME-WAIT
 * 2*MSL, orphaned FIN-WAIT-2 timeout). */
#include <errno.h>

#include "tcp_int.h"

/* The earlier of the deadlines a and b, 0 meaning none: 0 - 1 wraps to the
 * largest value, so it loses every comparison (branch-free: this runs 4-5
 * times per request/response round trip). */
static inline uint64_t earliest(uint64_t a, uint64_t b)
{
    return a - 1 < b - 1 ? a : b;
}

void tcp_timer_update(struct tcpsm_sock *sk)
{
    uint64_t d = earliest(earliest(earliest(sk->rto_at, sk->persist_at),
                                   earliest(sk->dack_at, sk->ka_at)),
                          earliest(earliest(sk->state_at, sk->cork_at),
                                   earliest(earliest(sk->tlp_at, sk->rack.reo_at), sk->pace_at)));
    if (d == 0) {
        timer_cancel(&sk->st->timers, &sk->timer);
    } else if (!tcpsm_timer_armed(&sk->timer) || sk->timer.deadline != d) {
        if (timer_set(&sk->st->timers, &sk->timer, d) < 0) {
            /* no memory for the heap: keep the connection, poll again via
             * the next event; counted as a tx drop */
            sk->st->cnt.tx_drop++;
        }
    }
}

static uint64_t rto_ns(const struct tcpsm_sock *sk, unsigned shift)
{
    uint64_t r = (uint64_t)sk->rto_us << (shift > 20 ? 20 : shift);
    if (r > TCP_RTO_MAX_US)
        r = TCP_RTO_MAX_US;
    return r * 1000u;
}

/* RFC 8985 7.2: PTO = 2*SRTT, plus a delayed-ACK allowance with one
 * segment in flight, never beyond the RTO. Only with SACK (as Linux), so
 * the peer's answer to the probe shows what is missing. */
static void tlp_arm(struct tcpsm_sock *sk, uint64_t now)
{
    sk->tlp_at = 0;
    if (!sk->sack_ok || sk->in_recovery || sk->tlp_sent || sk->retries || !sk->srtt_us ||
        (sk->state != TCPSM_ESTABLISHED && sk->state != TCPSM_CLOSE_WAIT))
        return;
    uint64_t pto = 2ull * sk->srtt_us * 1000u;
    if (sk->snd_max - sk->snd_una <= tcp_send_mss(sk))
        pto += 200 * MS_NS;
    if (pto < 10 * MS_NS)
        pto = 10 * MS_NS;
    if (now + pto < sk->rto_at)
        sk->tlp_at = now + pto;
}

void tcp_rto_arm(struct tcpsm_sock *sk, uint64_t now)
{
    sk->rto_at = now + rto_ns(sk, sk->backoff);
    tlp_arm(sk, now);
    /* with TCP_USER_TIMEOUT, give up on time (Linux clamps the RTO too) */
    if (sk->user_timeout_ms && sk->first_rtx) {
        uint64_t end = sk->first_rtx + (uint64_t)sk->user_timeout_ms * MS_NS;
        if (end < sk->rto_at)
            sk->rto_at = end > now ? end : now;
    }
    tcp_timer_update(sk);
}

void tcp_rto_stop(struct tcpsm_sock *sk)
{
    if (sk->rto_at || sk->tlp_at || sk->rack.reo_at) {
        sk->rto_at = sk->tlp_at = sk->rack.reo_at = 0;
        tcp_timer_update(sk);
    }
}

/* RFC 6298 2.2-2.4, with Linux's 200 ms floor. */
void tcp_rtt_sample(struct tcpsm_sock *sk, uint32_t r)
{
    if (!sk->min_rtt_us || (r ? r : 1) < sk->min_rtt_us)
        sk->min_rtt_us = r ? r : 1;
    tcp_hystart_rtt(sk, r);
    if (!sk->srtt_us && !sk->rttvar_us) {
        sk->srtt_us = r;
        sk->rttvar_us = r / 2;
    } else {
        uint32_t d = sk->srtt_us > r ? sk->srtt_us - r : r - sk->srtt_us;
        sk->rttvar_us = (3 * sk->rttvar_us + d) / 4;
        sk->srtt_us = (7 * (uint64_t)sk->srtt_us + r) / 8;
    }
    uint64_t rto = (uint64_t)sk->srtt_us + (4 * (uint64_t)sk->rttvar_us > 1000 ? 4 * (uint64_t)sk->rttvar_us : 1000);
    if (rto < TCP_RTO_MIN_US)
        rto = TCP_RTO_MIN_US;
    if (rto > TCP_RTO_MAX_US)
        rto = TCP_RTO_MAX_US;
    sk->rto_us = (uint32_t)rto;
}

void tcp_delack_schedule(struct tcpsm_sock *sk, uint64_t now)
{
    if (!sk->dack_at) {
        sk->dack_at = now + TCP_DELACK_NS;
        tcp_timer_update(sk);
    }
}

static bool ka_state(int s)
{
    return s == TCPSM_ESTABLISHED || s == TCPSM_CLOSE_WAIT || s == TCPSM_FIN_WAIT_1 ||
           s == TCPSM_FIN_WAIT_2;
}

void tcp_ka_reset(struct tcpsm_sock *sk, uint64_t now)
{
    if (sk->keepalive && ka_state(sk->state)) {
        sk->ka_at = now + (uint64_t)sk->keepidle * SEC_NS;
        sk->ka_probes = 0;
    } else {
        sk->ka_at = 0;
    }
    tcp_timer_update(sk);
}

/* Zero window with data waiting and nothing in flight: probe (RFC 9293
 * 3.8.6.1, RFC 1122 4.2.2.17); a window that opened ends persisting. */
void tcp_persist_check(struct tcpsm_sock *sk, uint64_t now)
{
    if (sk->snd_wnd == 0 && tcp_unsent(sk) > 0 && sk->snd_nxt == sk->snd_una) {
        if (!sk->persist_at) {
            sk->persist_at = now + rto_ns(sk, sk->pbackoff);
            sk->rto_at = 0;
            tcp_timer_update(sk);
        }
    } else if (sk->persist_at) {
        sk->persist_at = 0;
        sk->probes = 0;
        sk->pbackoff = 0;
        if (sk->snd_una != sk->snd_max)
            sk->rto_at = now + rto_ns(sk, sk->backoff);
        tcp_timer_update(sk);
    }
}

void tcp_timewait_start(struct tcpsm_sock *sk, uint64_t now)
{
    uint32_t msl = sk->st->cfg.msl_ms ? sk->st->cfg.msl_ms : TCP_MSL_MS_DEF;
    sk->rto_at = sk->persist_at = sk->dack_at = sk->ka_at = sk->cork_at = sk->tlp_at = 0;
    sk->rack.reo_at = 0;
    sk->pace_at = 0;
    sk->state_at = now + 2ull * msl * MS_NS;
    tcp_release_buffers(sk);            /* TIME-WAIT keeps only the TCB */
    tcp_timer_update(sk);
}

static int timeout_err(const struct tcpsm_sock *sk)
{
    return sk->soft_err ? sk->soft_err : ETIMEDOUT;
}

/* Returns false if the TCB is gone. */
static bool on_rto(struct tcpsm_sock *sk, uint64_t now)
{
    bool syn = sk->state == TCPSM_SYN_SENT || sk->state == TCPSM_SYN_RECEIVED || !sk->syn_acked;
    if (!syn && sk->snd_una == sk->snd_max)
        return true;
    unsigned limit = TCP_RETRIES_DATA;
    if (sk->state == TCPSM_SYN_SENT)
        limit = TCP_RETRIES_SYN;
    else if (sk->state == TCPSM_SYN_RECEIVED && sk->passive)
        limit = TCP_RETRIES_SYNACK;
    bool expired = sk->retries >= limit;
    if (sk->user_timeout_ms && sk->first_rtx &&
        now - sk->first_rtx >= (uint64_t)sk->user_timeout_ms * MS_NS)
        expired = true;
    if (expired) {
        sk->st->cnt.tcp_conn_timeout++;
        tcp_done(sk, timeout_err(sk), "rto: retries exhausted", NULL);
        return false;
    }
    if (!sk->first_rtx) {
        /* the head was sent one RTO ago: the user timeout counts from there */
        uint64_t r = rto_ns(sk, sk->backoff);
        sk->first_rtx = now > r ? now - r : 1;
    }
    if (!sk->retries)
        sk->rtx_stamp_ms = (uint32_t)(now / MS_NS);
    sk->retries++;
    if (sk->backoff < 20)
        sk->backoff++;
    sk->st->cnt.tcp_rto++;
    if (sk->total_rto < UINT16_MAX)
        sk->total_rto++;
    if (!sk->rto_start) {               /* a new RTO episode (TCP_INFO total_rto_recoveries) */
        sk->rto_start = now;
        if (sk->total_rto_recoveries < UINT16_MAX)
            sk->total_rto_recoveries++;
    }
    sk->rtt_active = false;             /* Karn */
    if (!syn)
        tcp_plpmtud_rto(sk, now);       /* RFC 4821 black hole: smaller segments from here */
    if (syn) {
        tcp_retransmit_head(sk, now);
        return true;
    }
    tcp_cong_rto(sk);
    /* go back: resend from the first unacked byte (RACK connections send
     * the records tcp_cong_rto marked lost, SACKed ones stay; one whose
     * queue has nothing to resend, its records never made for want of
     * memory, goes back too and the queue is rebuilt as it sends) */
    if (!sk->loss_state || !sk->rtxq.lost)
        sk->snd_nxt = sk->snd_una;
    tcp_output(sk, now);
    if (!sk->rto_at && !sk->persist_at) {
        if (sk->snd_nxt == sk->snd_una)
            tcp_retransmit_head(sk, now);   /* window closed under us: probe the head */
        if (!sk->rto_at)
            tcp_rto_arm(sk, now);
    }
    return true;
}

/* RFC 8985 7.3: the probe is a new segment when there is unsent data the
 * peer's window takes (cwnd does not hold it back, as Linux
 * tcp_send_loss_probe), else the last segment sent again. Then the RTO,
 * not another probe, is armed from now. */
static void send_loss_probe(struct tcpsm_sock *sk, uint64_t now)
{
    uint32_t mss = tcp_send_mss(sk);
    uint32_t wnd_end = sk->snd_una + sk->snd_wnd;
    uint32_t room = seq_gt(wnd_end, sk->snd_nxt) ? wnd_end - sk->snd_nxt : 0;
    uint32_t before = sk->snd_nxt;
    if (tcp_unsent(sk) && sk->snd_nxt == sk->snd_max && room >= (tcp_unsent(sk) < mss ?
                                                                 tcp_unsent(sk) : mss)) {
        struct tcp_stack *ts = TS(sk);
        /* intent record (tcp_int.h struct tcp_stack.probe): the values to
         * restore are written before the TCB is named */
        ts->probe.cwnd = sk->cwnd;
        ts->probe.nodelay = sk->nodelay;
        ts->probe.cork = sk->cork;
        atomic_signal_fence(memory_order_seq_cst);
        ts->probe.sk = sk;
        atomic_signal_fence(memory_order_seq_cst);
        sk->cwnd = sk->snd_nxt - sk->snd_una + mss;     /* room for exactly one segment */
        sk->nodelay = true;
        sk->cork = false;
        tcp_output(sk, now);
        tcp_probe_restore(ts, sk);
        atomic_signal_fence(memory_order_seq_cst);
        ts->probe.sk = NULL;
    }
    if (sk->snd_nxt == before)
        tcp_retransmit_tail(sk, now);
    sk->rto_at = 0;
    tcp_rto_arm(sk, now);
    sk->tlp_at = 0;                     /* one probe per tail (tlp_sent) */
}

static bool on_persist(struct tcpsm_sock *sk, uint64_t now)
{
    if (sk->snd_wnd != 0) {
        sk->probes = 0;
        tcp_persist_check(sk, now);
        return true;
    }
    if (sk->probes >= TCP_RETRIES_DATA) {
        sk->st->cnt.tcp_conn_timeout++;
        tcp_done(sk, timeout_err(sk), "persist: no answer", NULL);
        return false;
    }
    /* An orphan (the application closed it) held open by a window that never
     * opens would pin the TCB for ever: once the probe interval has backed
     * off to the maximum, give up (RFC 6429; Linux tcp_orphan_retries). */
    if (!sk->user_ref && sk->pbackoff >= TCP_ORPHAN_PROBES &&
        rto_ns(sk, sk->pbackoff) >= (uint64_t)TCP_RTO_MAX_US * 1000u) {
        sk->st->cnt.tcp_conn_timeout++;
        tcp_done(sk, ETIMEDOUT, "persist: orphan", NULL);
        return false;
    }
    tcp_send_probe(sk, now);            /* SEG.SEQ = SND.UNA-1, no data (Linux) */
    sk->probes++;
    if (sk->pbackoff < 20)
        sk->pbackoff++;
    sk->persist_at = now + rto_ns(sk, sk->pbackoff);
    return true;
}

static bool on_keepalive(struct tcpsm_sock *sk, uint64_t now)
{
    if (!sk->keepalive || !ka_state(sk->state)) {
        sk->ka_at = 0;
        return true;
    }
    uint64_t idle_ns = (uint64_t)sk->keepidle * SEC_NS;
    if (sk->snd_una != sk->snd_max || tcp_unsent(sk) > 0) {
        sk->ka_at = now + idle_ns;      /* the retransmission timer watches the peer */
        return true;
    }
    uint64_t idle = now - sk->last_rcv;
    if (idle < idle_ns && sk->ka_probes == 0) {
        sk->ka_at = sk->last_rcv + idle_ns;
        return true;
    }
    if (sk->ka_probes >= sk->keepcnt) {
        sk->st->cnt.tcp_conn_timeout++;
        tcp_done(sk, timeout_err(sk), "keepalive: no answer", NULL);
        return false;
    }
    tcp_send_probe(sk, now);
    sk->ka_probes++;
    sk->ka_at = now + (uint64_t)sk->keepintvl * SEC_NS;
    return true;
}

void tcp_timer_fire(struct tcpsm_sock *sk, uint64_t now)
{
    sk->st->now = now;
    if (sk->state_at && now >= sk->state_at) {
        sk->state_at = 0;
        if (sk->state == TCPSM_TIME_WAIT) {
            tcp_done(sk, 0, "2msl", NULL);
            return;
        }
        if (sk->state == TCPSM_FIN_WAIT_2) {
            tcp_done(sk, 0, "fin-wait-2 timeout", NULL);
            return;
        }
    }
    if (sk->tlp_at && now >= sk->tlp_at) {
        sk->tlp_at = 0;
        if (sk->snd_una != sk->snd_max && !sk->in_recovery && sk->rto_at) {
            sk->tlp_sent = true;
            sk->st->cnt.tcp_tlp++;
            send_loss_probe(sk, now);
        }
    }
    if (sk->rack.reo_at && now >= sk->rack.reo_at) {
        /* RFC 8985 6.3: the reordering window passed with nothing delivered */
        sk->rack.reo_at = 0;
        if (tcp_rack_on(sk) && sk->syn_acked && tcp_synchronized(sk->state) &&
            sk->snd_una != sk->snd_max && tcp_rack_detect(sk, now)) {
            tcp_rate_ack_begin(sk);     /* no ACK: an empty rate sample */
            tcp_cong_rack_ack(sk, 0, 0);
            tcp_output(sk, now);
        }
    }
    if (sk->rto_at && now >= sk->rto_at) {
        sk->rto_at = 0;
        sk->tlp_at = 0;
        if (!on_rto(sk, now))
            return;
    }
    if (sk->persist_at && now >= sk->persist_at) {
        sk->persist_at = 0;
        if (!on_persist(sk, now))
            return;
    }
    if (sk->dack_at && now >= sk->dack_at) {
        sk->dack_at = 0;
        /* Linux tcp_delack_timer_handler: the reply did not come in time
         * (unless it came and was held: TCPSM_MSG_HOLD's bound) */
        if (!sk->out_held)
            sk->pingpong = false;
        /* a reply held for the application's next call goes now and
         * carries the ACK (TCPSM_MSG_HOLD) */
        uint32_t acked = sk->last_ack_sent;
        tcp_out_release(sk, now);
        if (sk->state != TCPSM_CLOSED && sk->state != TCPSM_LISTEN &&
            sk->state != TCPSM_SYN_SENT && (sk->last_ack_sent == acked || sk->rcv_nxt != sk->last_ack_sent))
            tcp_send_ack(sk, now);
    }
    if (sk->ka_at && now >= sk->ka_at) {
        sk->ka_at = 0;
        if (!on_keepalive(sk, now))
            return;
    }
    if (sk->pace_at && now >= sk->pace_at) {
        sk->pace_at = 0;                /* the paced output may go on */
        if (tcp_synchronized(sk->state))
            tcp_output(sk, now);
    }
    if (sk->cork_at && now >= sk->cork_at) {
        sk->cork_at = 0;
        sk->cork_push = true;
        tcp_output(sk, now);
        sk->cork_push = false;
    }
    tcp_timer_update(sk);
}
