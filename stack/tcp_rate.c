/* Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation;
 * Linux tcp_rate.c shows the way): each segment sent remembers how much
 * the connection had delivered then, and when; an ACK that delivers it
 * gives a sample: the data delivered since, over the longer of the send
 * and the ACK phases. Samples taken while the application left cwnd unused
 * are marked app-limited: they say the path can do at least that much.
 * Runs on the retransmit queue (SACK connections) for every algorithm;
 * BBR (tcp_bbr.c) is what reads the samples. */
#include <string.h>

#include "tcp_int.h"

/* Sending x (first time or again). An empty flight starts a new one. */
void tcp_rate_sent(struct tcpsm_sock *sk, struct tcp_rtx *x, uint64_t now)
{
    struct tcp_rate *r = &sk->rate;
    x->first_tx = r->first_tx;
    x->delivered = r->delivered;
    x->delivered_at = r->delivered_at ? r->delivered_at : now;
    x->app_limited = r->app_limited != 0;
}

/* A new ACK: an empty sample, and the pipe before it. */
void tcp_rate_ack_begin(struct tcpsm_sock *sk)
{
    memset(&sk->rs, 0, sizeof(sk->rs));
    sk->rs.delivered = -1;
    sk->rs.rtt_us = -1;
    sk->rs.prior_in_flight = tcp_rtxq_pipe(sk);
}

/* The segments a record stands for (Linux tcp_skb_pcount): its data in
 * MSS-sized pieces, at least one (a FIN alone). */
uint32_t tcp_rtx_segs(const struct tcpsm_sock *sk, const struct tcp_rtx *x)
{
    uint32_t len = x->end - x->seq - ((x->fl & TCP_RTX_FIN) ? 1u : 0u);
    return tcp_segs_min1(len, tcp_send_mss(sk));
}

/* x is newly ACKed or SACKed: the sample follows the most recently sent
 * of the segments this ACK delivered (draft 3.3 "UpdateRateSample"). */
void tcp_rate_delivered(struct tcpsm_sock *sk, struct tcp_rtx *x, uint64_t now)
{
    struct tcp_rate *r = &sk->rate;
    struct tcp_rs *rs = &sk->rs;
    r->delivered += x->end - x->seq;
    rs->acked_sacked += x->end - x->seq;
    sk->delivered_segs += tcp_rtx_segs(sk, x);
    if (!x->delivered_at)
        return;
    if (!rs->prior_at || tcp_sent_after(x->xmit, x->end, rs->last_xmit, rs->last_end)) {
        rs->prior_delivered = x->delivered;
        rs->prior_at = x->delivered_at;
        rs->app_limited = x->app_limited;
        rs->last_xmit = x->xmit;
        rs->last_end = x->end;
        rs->send_ns = x->xmit > x->first_tx ? x->xmit - x->first_tx : 0;
        rs->rtt_us = (x->fl & TCP_RTX_EVER) ? -1 : (int64_t)((now - x->xmit) / 1000u);
        r->first_tx = x->xmit;          /* the next flight starts here */
    }
    x->delivered_at = 0;                /* a SACKed one is not sampled again at its ACK */
}

/* After the ACK's deliveries (draft 3.3 "GenerateRateSample"). */
void tcp_rate_gen(struct tcpsm_sock *sk, uint64_t now)
{
    struct tcp_rate *r = &sk->rate;
    struct tcp_rs *rs = &sk->rs;
    if (r->app_limited && r->delivered > r->app_limited)
        r->app_limited = 0;             /* the app-limited flight was delivered */
    if (rs->acked_sacked)
        r->delivered_at = now;
    rs->interval_ns = 0;
    if (!rs->prior_at) {
        rs->delivered = -1;
        return;
    }
    rs->delivered = (int64_t)(r->delivered - rs->prior_delivered);
    uint64_t ack_ns = now > rs->prior_at ? now - rs->prior_at : 0;
    uint64_t iv = rs->send_ns > ack_ns ? rs->send_ns : ack_ns;
    /* shorter than the minimum RTT: an ACK of a retransmission's original,
     * or ACK compression: no sample (the draft's "interval < min_rtt") */
    if (iv < (uint64_t)sk->min_rtt_us * 1000u)
        return;
    rs->interval_ns = iv;
    /* TCP_INFO's delivery rate: the latest sample, an app-limited one only
     * if it is higher (Linux tcp_rate_gen) */
    uint64_t bps = (uint64_t)rs->delivered * SEC_NS / iv;
    if (!rs->app_limited || bps >= r->rate) {
        r->rate = bps;
        r->rate_app_limited = rs->app_limited;
    }
}

/* Nothing left to send and cwnd not full: what is delivered until this
 * flight is out says nothing about the path's limit (draft 3.4). */
void tcp_rate_check_app_limited(struct tcpsm_sock *sk)
{
    uint32_t pipe = tcp_rtxq_pipe(sk);
    if (tcp_unsent(sk) < tcp_send_mss(sk) && pipe < sk->cwnd && !sk->rtxq.lost) {
        uint64_t mark = sk->rate.delivered + pipe;
        sk->rate.app_limited = mark ? mark : 1;
    }
}
