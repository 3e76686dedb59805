/* RACK loss detection (RFC 8985 6) on the retransmit queue (tcp_rtxq.c),
 * for connections with SACK: a segment is lost when one sent after it
 * has been delivered and more than the delivered segment's RTT plus a
 * reordering window has passed since it was sent. The window (6.2 step 4)
 * is a quarter of the minimum RTT, scaled up by D-SACK rounds and capped
 * at SRTT; zero until reordering is seen once DupThresh segments are
 * SACKed or in recovery, which keeps DupThresh's speed. The tail loss
 * probe (RFC 8985 7) is in tcp_timer.c. */
#include "tcp_int.h"


void tcp_rack_init(struct tcpsm_sock *sk)
{
    sk->rack = (struct tcp_rack){ .reo_mult = 1 };
}

/* Reordering of segs segments was seen: the threshold follows the
 * farthest (Linux tp->reordering, capped by tcp_max_reordering). */
void tcp_reordering_seen(struct tcpsm_sock *sk, uint32_t segs)
{
    if (segs > TCP_REORDER_MAX)
        segs = TCP_REORDER_MAX;
    if (segs > tcp_dupthresh(sk))
        sk->reordering = (uint16_t)segs;
}

/* 6.2 steps 2 and 3 for one newly delivered (ACKed or SACKed) record. */
void tcp_rack_delivered(struct tcpsm_sock *sk, const struct tcp_rtx *x, uint64_t now)
{
    struct tcp_rack *r = &sk->rack;
    /* step 3: delivered below the highest delivered end, never resent:
     * the network reordered it */
    if (!r->valid || seq_gt(x->end, r->fack))
        r->fack = x->end;
    else if (seq_lt(x->end, r->fack) && !(x->fl & TCP_RTX_EVER)) {
        r->reord = r->reord_ack = true;
        /* how far it was overtaken (Linux tcp_check_sack_reordering) */
        uint32_t mss = tcp_send_mss(sk);
        if (mss)
            tcp_reordering_seen(sk, tcp_segs(r->fack - x->end, mss));
    }
    /* F-RTO 3.b: data sent before the timeout, never sent again, arrived */
    if (sk->frto && !(x->fl & TCP_RTX_EVER) && seq_le(x->end, sk->recover))
        sk->frto_orig = true;
    uint64_t rtt = now > x->xmit ? (now - x->xmit) / 1000u : 0;
    /* step 2: an ACK of a retransmission quicker than the minimum RTT
     * was for the original (Linux tcp_rack_advance) */
    if ((x->fl & TCP_RTX_EVER) && rtt < sk->min_rtt_us)
        return;
    r->rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    if (!r->valid || tcp_sent_after(x->xmit, x->end, r->xmit, r->end_seq)) {
        r->xmit = x->xmit;
        r->end_seq = x->end;
        r->valid = true;
    }
}

/* 6.2 step 4, D-SACK part: one increase of the window per round trip
 * that brought a D-SACK (a spurious retransmission). Called on every ACK
 * with dsack set if it carried one. */
void tcp_rack_dsack(struct tcpsm_sock *sk)
{
    struct tcp_rack *r = &sk->rack;
    if (r->dsack_round_on && seq_ge(sk->snd_una, r->dsack_round))
        r->dsack_round_on = false;
    if (r->dsack_round_on)
        return;
    r->dsack_round_on = true;
    r->dsack_round = sk->snd_nxt;
    if (r->reo_mult < 255)
        r->reo_mult++;
    r->reo_persist = 16;
}

/* 6.2 step 4: leaving fast or RTO recovery; 16 of them without a D-SACK
 * bring the window back to one quarter of min RTT. */
void tcp_rack_recovery_exit(struct tcpsm_sock *sk)
{
    struct tcp_rack *r = &sk->rack;
    if (r->reo_persist && --r->reo_persist == 0)
        r->reo_mult = 1;
}

/* RACK.reo_wnd in microseconds (6.2 step 4). */
uint32_t tcp_rack_reo_wnd(const struct tcpsm_sock *sk)
{
    const struct tcp_rack *r = &sk->rack;
    if (!r->reord) {
        if (sk->in_recovery)
            return 0;
        if (sk->rtxq.sacked > (uint32_t)(tcp_dupthresh(sk) - 1) * tcp_send_mss(sk))
            return 0;
    }
    uint64_t w = (uint64_t)sk->min_rtt_us / 4 * r->reo_mult;
    if (sk->srtt_us && w > sk->srtt_us)
        w = sk->srtt_us;
    return (uint32_t)w;
}

/* 6.2 step 5 and the RACK timer (6.3): mark what is lost now; arm the
 * timer for what will be lost if nothing is delivered meanwhile. Returns
 * true if a record was newly marked. */
bool tcp_rack_detect(struct tcpsm_sock *sk, uint64_t now)
{
    struct tcp_rack *r = &sk->rack;
    bool had = r->reo_at != 0, lost = false;
    r->reo_at = 0;
    if (r->valid && sk->rtxq.n) {
        uint64_t allow = ((uint64_t)r->rtt_us + tcp_rack_reo_wnd(sk)) * 1000u;
        uint64_t timeout = 0;
        for (uint32_t i = 0; i < sk->rtxq.n; i++) {
            struct tcp_rtx *x = tcp_rtxq_at(sk, i);
            uint8_t f = x->fl & (TCP_RTX_SACKED | TCP_RTX_LOST | TCP_RTX_RETRANS);
            if (f & TCP_RTX_SACKED || f == TCP_RTX_LOST)
                continue;               /* delivered, or lost and not yet resent */
            if (!tcp_sent_after(r->xmit, r->end_seq, x->xmit, x->end))
                continue;
            uint64_t when = x->xmit + allow;
            if (when <= now) {
                tcp_rtxq_mark_lost(sk, x);
                sk->st->cnt.tcp_rack_lost++;
                lost = true;
            } else if (when - now > timeout) {
                timeout = when - now;
            }
        }
        if (timeout)
            r->reo_at = now + timeout;
    }
    if (had || r->reo_at)
        tcp_timer_update(sk);
    return lost;
}

/* The peer agreed to SACK but its duplicate ACKs carry no blocks: after
 * DupThresh of them the first segment is lost (RFC 5681 3.2 as the
 * fallback RACK cannot replace without SACK information). */
void tcp_rack_dupthresh(struct tcpsm_sock *sk)
{
    if (sk->dupacks < tcp_dupthresh(sk) || sk->rtxq.sacked || !sk->rtxq.n)
        return;
    struct tcp_rtx *x = tcp_rtxq_at(sk, 0);
    if (!(x->fl & (TCP_RTX_LOST | TCP_RTX_RETRANS)))    /* once: the RTO watches a resent one */
        tcp_rtxq_mark_lost(sk, x);
}
