/* Congestion control: RFC 5681 slow start and congestion avoidance with
 * RFC 6582 NewReno fast retransmit / fast recovery. The growth rule sits
 * behind struct congestion_ops so another algorithm (CUBIC) can replace it;
 * loss detection and recovery stay here. */
#include "tcp_int.h"

#define CWND_MAX (1u << 30)

static void reno_init(struct tcpsm_sock *sk)
{
    uint32_t mss = tcp_send_mss(sk);
    /* RFC 6928: IW = min(10*MSS, max(2*MSS, 14600)); one segment after a
     * lost SYN (RFC 5681 3.1) */
    uint32_t iw = 2 * mss > 14600 ? 2 * mss : 14600;
    if (iw > 10 * mss)
        iw = 10 * mss;
    sk->cwnd = sk->total_retrans ? mss : iw;
    sk->ssthresh = CWND_MAX;
    sk->cwnd_acc = 0;
}

static void reno_on_ack(struct tcpsm_sock *sk, uint32_t acked)
{
    uint32_t mss = tcp_send_mss(sk);
    if (sk->cwnd < sk->ssthresh) {
        /* RFC 3465 appropriate byte counting with L = 2: a stretch ACK
         * (one per GRO frame from a Linux receiver) grows cwnd by up to
         * two segments, not one */
        uint32_t lim = TCP_ABC_L * mss;
        sk->cwnd += acked < lim ? acked : lim;
    } else {
        sk->cwnd_acc += acked;                          /* RFC 5681 3.1 (3.3) */
        if (sk->cwnd_acc >= sk->cwnd) {
            sk->cwnd_acc -= sk->cwnd;
            sk->cwnd += mss;
        }
    }
    if (sk->cwnd > CWND_MAX)
        sk->cwnd = CWND_MAX;
}

static uint32_t reno_ssthresh(struct tcpsm_sock *sk)
{
    uint32_t flight = sk->snd_max - sk->snd_una;        /* RFC 5681 (4) */
    uint32_t two = 2 * tcp_send_mss(sk);
    return flight / 2 > two ? flight / 2 : two;
}

const struct congestion_ops tcp_newreno = {
    .name = "reno",
    .init = reno_init,
    .on_ack = reno_on_ack,
    .ssthresh = reno_ssthresh,
};

/* TCP_CONGESTION: NewReno (the default; Linux's "reno") or CUBIC. */
const struct congestion_ops *tcp_cong_ops(int which)
{
    return which == TCPSM_CC_CUBIC ? &tcp_cubic : &tcp_newreno;
}

void tcp_cong_init(struct tcpsm_sock *sk)
{
    sk->cc_algo = sk->cc_pref;
    sk->cc_on = true;
    tcp_cong_ops(sk->cc_algo)->init(sk);
    sk->dupacks = 0;
    sk->in_recovery = false;
    sk->undo_state = TCP_UNDO_OFF;
    sk->high_rxt = sk->snd_una;
    sk->recover = sk->iss;              /* RFC 6582 3.2 step 1 (not SND.UNA: first-data loss) */
}

/* RFC 6582 3.2 (2) / RFC 6675 5 (4): enter fast recovery. With SACK
 * information cwnd is not inflated: the pipe estimate paces sending. */
static void enter_recovery(struct tcpsm_sock *sk)
{
    uint32_t mss = tcp_send_mss(sk);
    /* retransmissions of the previous recovery still outstanding are not
     * sent again at once, and their echo would fake a spurious one */
    bool rtx_out = seq_gt(sk->high_rxt, sk->snd_una);
    sk->prior_cwnd = sk->cwnd;
    sk->prior_ssthresh = sk->ssthresh;
    sk->undo_state = sk->ts_ok && sk->sacked.n && !rtx_out ? TCP_UNDO_ARMED : TCP_UNDO_OFF;
    sk->ssthresh = tcp_cong_ops(sk->cc_algo)->ssthresh(sk);
    sk->recover = sk->snd_max;
    /* the kind of recovery is fixed here: a partial ACK may later empty
     * the scoreboard without making this a NewReno recovery */
    sk->sack_recovery = sk->sacked.n != 0;
    sk->cwnd = sk->sack_recovery ? sk->ssthresh : sk->ssthresh + 3 * mss;
    if (!rtx_out)
        sk->high_rxt = sk->snd_una;
    sk->in_recovery = true;
    sk->st->cnt.tcp_fast_retrans++;
}

/* RFC 3522 Eifel detection on the first ACK that covers the recovery's
 * first retransmission: an echoed TSval older than that retransmission
 * means the original arrived, the segment was reordered, not lost. The
 * RFC 4015 response restores cwnd and ssthresh; recovery goes on for any
 * other hole. */
void tcp_cong_undo_check(struct tcpsm_sock *sk, uint32_t tsecr)
{
    if (!sk->in_recovery || sk->undo_state != TCP_UNDO_STAMPED)
        return;
    sk->undo_state = TCP_UNDO_OFF;
    if (!seq_lt(tsecr, sk->undo_tsval))
        return;
    if (sk->cwnd < sk->prior_cwnd)
        sk->cwnd = sk->prior_cwnd;
    if (sk->ssthresh < sk->prior_ssthresh)
        sk->ssthresh = sk->prior_ssthresh;
    sk->undo_state = TCP_UNDO_DONE;
    sk->st->cnt.tcp_undo++;
}

/* The SACK scoreboard shows the first segment lost before three
 * duplicate ACKs came (RFC 6675 5 (2)). */
bool tcp_cong_sack_loss(struct tcpsm_sock *sk)
{
    if (sk->in_recovery || !sk->cc_on || !sk->sacked.n || !tcp_sack_head_lost(sk))
        return false;
    /* RFC 6582 guards against duplicate ACKs for data resent after an RTO;
     * SACKs of data sent after it are no such duplicates (RFC 6675 5.1) */
    if (!seq_ge(sk->snd_una, sk->recover) &&
        !seq_gt(sk->sacked.end[sk->sacked.n - 1], sk->recover))
        return false;
    enter_recovery(sk);
    return true;
}

bool tcp_cong_ack(struct tcpsm_sock *sk, uint32_t acked, bool dup, uint64_t now)
{
    (void)now;
    if (!sk->cc_on)
        tcp_cong_init(sk);              /* closed before ESTABLISHED (SYN-RECEIVED -> FIN-WAIT-1) */
    uint32_t mss = tcp_send_mss(sk);
    if (dup) {
        sk->dupacks++;
        if (sk->in_recovery) {
            if (!sk->sack_recovery)
                sk->cwnd += mss;                        /* RFC 6582 3.2 (3) */
            return sk->sack_recovery;                   /* SACK: NextSeg may have a hole */
        }
        /* RFC 5827 early retransmit: with fewer than four segments out and
         * nothing new to send, fewer duplicate ACKs can ever come */
        uint32_t out = (sk->snd_max - sk->snd_una + mss - 1) / mss;
        unsigned thresh = 3;
        if (out < 4 && out > 1 && tcp_unsent(sk) == 0)
            thresh = out - 1;           /* ER_thresh 0 (one segment out): no ER */
        /* RFC 6582 3.2 (2): the ACK must cover "recover", the highest
         * sequence number sent; sk->recover is one past it (SND.MAX) */
        if (sk->dupacks >= thresh && seq_ge(sk->snd_una, sk->recover)) {
            enter_recovery(sk);
            return true;
        }
        return false;
    }
    sk->dupacks = 0;
    if (sk->in_recovery) {
        if (seq_ge(sk->snd_una, sk->recover)) {
            /* full ACK, RFC 6582 3.2 (5) option 1 */
            uint32_t flight = sk->snd_max - sk->snd_una;
            uint32_t c = (flight > mss ? flight : mss) + mss;
            sk->cwnd = c < sk->ssthresh ? c : sk->ssthresh;
            if (sk->undo_state == TCP_UNDO_DONE && sk->cwnd < sk->prior_cwnd)
                sk->cwnd = sk->prior_cwnd;
            sk->undo_state = TCP_UNDO_OFF;
            sk->in_recovery = false;
            sk->dupacks = 0;
            return false;
        }
        if (sk->sack_recovery)
            return true;                /* RFC 6675: pipe paces, NextSeg finds the hole */
        /* partial ACK, RFC 6582 3.2 (4): retransmit the next hole, deflate */
        sk->cwnd = sk->cwnd > acked ? sk->cwnd - acked : 0;
        if (acked >= mss)
            sk->cwnd += mss;
        if (sk->cwnd < mss)
            sk->cwnd = mss;
        return true;
    }
    sk->dupacks = 0;
    tcp_cong_ops(sk->cc_algo)->on_ack(sk, acked);
    return false;
}

/* RFC 5681 (4)-(5) and RFC 6582 4: after a timeout, one segment. */
void tcp_cong_rto(struct tcpsm_sock *sk)
{
    if (!sk->cc_on)
        tcp_cong_init(sk);
    sk->ssthresh = tcp_cong_ops(sk->cc_algo)->ssthresh(sk);
    sk->cwnd = tcp_send_mss(sk);
    sk->cwnd_acc = 0;
    sk->in_recovery = false;
    sk->dupacks = 0;
    sk->recover = sk->snd_max;
    sk->undo_state = TCP_UNDO_OFF;
    sk->sacked.n = 0;                   /* RFC 2018 8: SACK state is advisory after an RTO */
    sk->high_rxt = sk->snd_una;
}
