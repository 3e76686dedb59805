/* Congestion control: RFC 5681 slow start and congestion avoidance with
 * RFC 6582 NewReno fast retransmit / fast recovery. The growth rule sits
 * behind struct congestion_ops so another algorithm (CUBIC) can replace it;
 * loss detection and recovery stay here. */
#include <string.h>

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
        /* appropriate byte counting (RFC 3465) with RFC 9406's L = 8: a
         * stretch ACK (one per GRO frame from a Linux receiver) grows cwnd
         * by what it ACKs, up to eight segments; HyStart++ may slow it */
        sk->cwnd += tcp_hystart_ss_inc(sk, acked);
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

/* The algorithms by number (TCPSM_CC_*): a TCB names its algorithm by
 * number, as the region it lives in is shared by processes whose code sits
 * at other addresses. */
static const struct congestion_ops *const cc_table[TCPSM_CC_COUNT] = {
    [TCPSM_CC_RENO] = &tcp_newreno,
    [TCPSM_CC_CUBIC] = &tcp_cubic,
    [TCPSM_CC_BBR] = &tcp_bbr,
};

const struct congestion_ops *tcp_cong_ops(int which)
{
    return which >= 0 && which < TCPSM_CC_COUNT ? cc_table[which] : &tcp_newreno;
}

int tcpsm_cc_by_name(const char *name)
{
    for (int i = 0; i < TCPSM_CC_COUNT; i++)
        if (strcmp(cc_table[i]->name, name) == 0)
            return i;
    return -1;
}

const char *tcpsm_cc_name(int which)
{
    return tcp_cong_ops(which)->name;
}

/* The algorithm a connection runs for its preference: BBR reads the rate
 * samples of the retransmit queue, which only SACK connections keep; the
 * others run CUBIC. */
int tcp_cong_pick(const struct tcpsm_sock *sk, int pref)
{
    return pref == TCPSM_CC_BBR && !tcp_rack_on(sk) ? TCPSM_CC_CUBIC : pref;
}

void tcp_cong_init(struct tcpsm_sock *sk)
{
    sk->cc_algo = (uint8_t)tcp_cong_pick(sk, sk->cc_pref);
    sk->cc_on = true;
    sk->pacing_rate = 0;                /* the algorithm's init sets it if it paces */
    tcp_cong_ops(sk->cc_algo)->init(sk);
    sk->dupacks = 0;
    sk->in_recovery = false;
    sk->undo_state = TCP_UNDO_OFF;
    sk->undo_on = false;
    sk->undo_retrans = -1;
    sk->recover = sk->iss;              /* RFC 6582 3.2 step 1 (not SND.UNA: first-data loss) */
    sk->loss_state = false;
    tcp_rack_init(sk);
    tcp_hystart_init(sk);
}

/* RFC 6582 3.2 (2): enter NewReno fast recovery (connections without
 * SACK; SACK connections recover by RACK, tcp_cong_rack_ack). */
static void enter_recovery(struct tcpsm_sock *sk)
{
    uint32_t mss = tcp_send_mss(sk);
    sk->prior_cwnd = sk->cwnd;
    sk->prior_ssthresh = sk->ssthresh;
    /* Eifel (RFC 3522) with timestamps: the fast retransmit's TSval */
    sk->undo_state = sk->ts_ok ? TCP_UNDO_ARMED : TCP_UNDO_OFF;
    sk->ssthresh = tcp_cong_ops(sk->cc_algo)->ssthresh(sk);
    sk->recover = sk->snd_max;
    sk->cwnd = sk->ssthresh + 3 * mss;
    sk->in_recovery = true;
    sk->st->cnt.tcp_fast_retrans++;
}

/* Linux tcp_undo_cwnd_reduction: ssthresh as before the reduction; cwnd
 * too, or what the algorithm's undo_cwnd decides (BBR keeps its own and
 * restarts its pipe and policer detection). */
static void undo_cwnd_reduction(struct tcpsm_sock *sk)
{
    const struct congestion_ops *ops = tcp_cong_ops(sk->cc_algo);
    if (ops->undo_cwnd)
        ops->undo_cwnd(sk);
    else if (sk->cwnd < sk->prior_cwnd)
        sk->cwnd = sk->prior_cwnd;
    if (sk->ssthresh < sk->prior_ssthresh)
        sk->ssthresh = sk->prior_ssthresh;
}

/* RFC 3522 Eifel detection on the first ACK that covers the recovery's
 * first retransmission: an echoed TSval older than that retransmission
 * means the original arrived, the segment was reordered, not lost. The
 * RFC 4015 response restores cwnd and ssthresh; recovery goes on for any
 * other hole. */
static void loss_undo(struct tcpsm_sock *sk, bool frto);

void tcp_cong_undo_check(struct tcpsm_sock *sk, uint32_t tsecr)
{
    if (!sk->in_recovery || sk->undo_state != TCP_UNDO_STAMPED)
        return;
    sk->undo_state = TCP_UNDO_OFF;
    if (!seq_lt(tsecr, sk->undo_tsval))
        return;
    if (sk->loss_state) {
        loss_undo(sk, false);           /* an RTO's first ACK echoes the original */
        return;
    }
    undo_cwnd_reduction(sk);
    sk->undo_state = TCP_UNDO_DONE;
    sk->undo_on = false;                /* undone once, not again by its D-SACKs */
    sk->st->cnt.tcp_undo++;
    if (tcp_rack_on(sk)) {
        tcp_cong_undo_all(sk);
    } else {
        /* NewReno: the segment was overtaken by as many as the duplicate
         * ACKs before this one; one more is the threshold that would not
         * have fired (Linux raises tp->reordering on such an undo too).
         * A full ACK ends the recovery, which was reordering (RFC 4015:
         * on with new data); after a partial one NewReno repairs the
         * next hole as before, from the restored window. */
        tcp_reordering_seen(sk, sk->dupacks + 1);
        sk->reord_seen++;
        if (seq_ge(sk->snd_una, sk->recover)) {
            sk->in_recovery = false;
            sk->undo_state = TCP_UNDO_OFF;
        }
    }
}

/* Where a recovery starts, for the D-SACK undo (Linux tcp_init_undo):
 * retransmissions still in flight from before may bring D-SACKs too. */
static void undo_init(struct tcpsm_sock *sk)
{
    sk->undo_on = true;
    sk->undo_marker = sk->snd_una;
    sk->undo_retrans = sk->rtxq.retrans ? (int32_t)sk->rtxq.retrans : -1;
}

/* An RTO that was not needed (Linux tcp_try_undo_loss with
 * tcp_undo_cwnd_reduction): cwnd and ssthresh as before it (BBR's
 * undo_cwnd keeps its cwnd), nothing marked lost, the recovery over; the
 * retry count starts again. */
static void loss_undo(struct tcpsm_sock *sk, bool frto)
{
    undo_cwnd_reduction(sk);
    tcp_cong_undo_all(sk);
    sk->frto = sk->frto_new = false;
    sk->undo_on = false;
    sk->retries = 0;
    sk->st->cnt.tcp_undo++;
    if (frto)
        sk->st->cnt.tcp_spurious_rto++;
    else
        sk->st->cnt.tcp_loss_undo++;
}

/* An ACK while the RTO's losses are being repaired (RACK connections;
 * Linux tcp_process_loss): Eifel (RFC 3522/4015) was checked already
 * (tcp_cong_undo_check), D-SACKs are after (tcp_cong_dsack_undo); here
 * F-RTO, RFC 5682 3.1 (SACK-enhanced):
 *   step 2: the first ACK that advances, before new data went out: send
 *     new data (two segments as cwnd grows) rather than retransmit, if
 *     there is some and the window takes it; else conventional recovery;
 *   step 3.b: an ACK or SACK of data sent before the RTO and never
 *     retransmitted: the timeout was spurious, undone;
 *   step 3.a: after the new data, a SACK or duplicate ACK without that:
 *     the loss was real, conventional recovery (go on resending). */
void tcp_cong_loss_ack(struct tcpsm_sock *sk, bool advanced, bool sacked, bool dup)
{
    bool orig = sk->frto_orig;
    sk->frto_orig = false;
    sk->frto_new = false;
    if (!sk->loss_state || !sk->frto)
        return;
    if (orig) {
        loss_undo(sk, true);
        return;
    }
    if (seq_gt(sk->snd_nxt, sk->recover)) {
        if (sacked || dup)
            sk->frto = false;
    } else if (advanced && seq_lt(sk->snd_una, sk->recover)) {
        sk->recover = sk->snd_nxt;      /* Linux: high_seq = snd_nxt */
        if (tcp_unsent(sk) && seq_gt(sk->snd_una + sk->snd_wnd, sk->snd_nxt)) {
            sk->frto_new = true;        /* tcp_output: new data, not the lost (REXMIT_NEW) */
            return;
        }
        sk->frto = false;
    }
}

/* Without SACK, an ACK after an RTO (loss_state: SND.NXT went back to
 * SND.UNA and the data are sent again as cwnd grows; reno_rtx_end is how
 * far). As Linux tcp_process_loss for a Reno connection:
 *   the timestamps' echo of an ACK that advances older than the first
 *     retransmission (RFC 3522 Eifel; Linux tcp_try_undo_loss with
 *     tcp_packet_delayed): the timeout was spurious, undone;
 *   F-RTO (RFC 5682; Linux runs the SACK-enhanced steps for Reno too, the
 *   cumulative ACK standing in for SACK):
 *     3.b an ACK beyond reno_rtx_end, below recover (data sent before the
 *       RTO and never again; Linux FLAG_ORIG_SACK_ACKED): spurious, undone;
 *     2.b the first ACK that advances, with new data to send that the
 *       peer's window takes: new data (two segments as cwnd grows to two)
 *       instead of the next retransmission (SND.NXT to SND.MAX);
 *     3.a after that, a duplicate ACK or one that covers only resent
 *       data: the loss was real; the resending goes on where it was;
 *   SND.UNA at recover: the episode is over. */
void tcp_cong_reno_loss_ack(struct tcpsm_sock *sk, bool advanced, bool dup, bool ecr,
                            uint32_t tsecr)
{
    if (!sk->loss_state || tcp_rack_on(sk))
        return;
    bool undo = false, frto = false;
    if (advanced && ecr && sk->undo_state == TCP_UNDO_STAMPED && seq_lt(tsecr, sk->undo_tsval))
        undo = true;
    else if (sk->frto && advanced && seq_gt(sk->snd_una, sk->reno_rtx_end) &&
             seq_lt(sk->reno_rtx_end, sk->recover))
        undo = frto = true;
    if (undo) {
        loss_undo(sk, frto);
        if (seq_lt(sk->snd_nxt, sk->snd_max))
            sk->snd_nxt = sk->snd_max;  /* nothing more goes again */
        return;
    }
    bool recovered = seq_ge(sk->snd_una, sk->recover);
    if (sk->frto) {
        if (seq_gt(sk->snd_nxt, sk->recover)) {
            if (dup || advanced) {
                sk->frto = false;       /* step 3.a */
                uint32_t back = tcp_reno_resend_point(sk);
                if (!recovered && seq_lt(back, sk->recover))
                    sk->snd_nxt = back;
            }
        } else if (advanced && !recovered) {
            if (tcp_unsent(sk) && seq_gt(sk->snd_una + sk->snd_wnd, sk->snd_max)) {
                sk->snd_nxt = sk->snd_max;      /* step 2.b (Linux REXMIT_NEW) */
                sk->frto_new = true;
                return;
            }
            sk->frto = false;
        }
    }
    if (recovered) {
        sk->loss_state = false;
        sk->frto = sk->frto_new = false;
        sk->undo_state = TCP_UNDO_OFF;
    }
}

/* A D-SACK for [l, r) (RFC 2883): the part above the recovery's start was
 * a duplicate, one of our retransmissions that was not needed (Linux
 * tcp_check_dsack's counting, in bytes). */
void tcp_cong_dsack(struct tcpsm_sock *sk, uint32_t l, uint32_t r)
{
    if (!sk->undo_on || sk->undo_retrans <= 0 || !seq_gt(r, sk->undo_marker))
        return;
    if (seq_lt(l, sk->undo_marker))
        l = sk->undo_marker;
    uint32_t n = r - l;
    sk->undo_retrans = n >= (uint32_t)sk->undo_retrans ? 0 : sk->undo_retrans - (int32_t)n;
}

/* RFC 3708 (Linux tcp_try_undo_dsack): every byte retransmitted since the
 * recovery began came back as a duplicate, so nothing was lost: the
 * reduction is undone, during the recovery or after it ended (the D-SACK
 * of the last retransmission comes a round trip after it). */
void tcp_cong_dsack_undo(struct tcpsm_sock *sk)
{
    if (!sk->undo_on || sk->undo_retrans != 0)
        return;
    sk->undo_on = false;
    if (sk->loss_state) {
        loss_undo(sk, false);           /* after an RTO (Linux tcp_try_undo_loss) */
        sk->st->cnt.tcp_dsack_undo++;
        return;
    }
    undo_cwnd_reduction(sk);
    sk->st->cnt.tcp_undo++;
    sk->st->cnt.tcp_dsack_undo++;
    if (sk->in_recovery)
        tcp_cong_undo_all(sk);
    else
        sk->rack.reord = true;
}

/* RACK connections: an undone recovery ends, nothing stays marked lost,
 * and the reordering it was is remembered (Linux tcp_try_undo_recovery,
 * tcp_undo_cwnd_reduction, RFC 8985 6.2 step 3). */
void tcp_cong_undo_all(struct tcpsm_sock *sk)
{
    tcp_rtxq_clear_lost(sk);
    sk->rack.reord = true;
    sk->in_recovery = false;
    sk->loss_state = false;
    sk->undo_state = TCP_UNDO_OFF;
    tcp_rack_recovery_exit(sk);
}

/* RFC 6937 PRR: on each ACK in fast recovery, cwnd = pipe + what may be
 * sent for the data just delivered: proportionally (ssthresh/RecoverFS of
 * it) while pipe is above ssthresh, else slow start back up to ssthresh
 * (PRR-SSRB), at most what was delivered plus one segment ahead. */
static void prr_ack(struct tcpsm_sock *sk, uint32_t delivered)
{
    uint32_t mss = tcp_send_mss(sk);
    sk->prr_delivered += delivered;
    uint32_t pipe = tcp_rtxq_pipe(sk);
    int64_t sndcnt;
    if (pipe > sk->ssthresh) {
        uint64_t fs = sk->recover_fs ? sk->recover_fs : 1;
        sndcnt = (int64_t)(((uint64_t)sk->prr_delivered * sk->ssthresh + fs - 1) / fs) -
                 (int64_t)sk->prr_out;
    } else {
        int64_t lim = (int64_t)sk->prr_delivered - (int64_t)sk->prr_out;
        if (lim < (int64_t)delivered)
            lim = delivered;
        lim += mss;
        sndcnt = (int64_t)sk->ssthresh - pipe;
        if (sndcnt > lim)
            sndcnt = lim;
    }
    if (sndcnt < 0)
        sndcnt = 0;
    /* the fast retransmit goes at once (Linux tcp_cwnd_reduction) */
    if (!sk->prr_out && sndcnt < mss && sk->rtxq.lost)
        sndcnt = mss;
    /* whole segments: a partial one would be held back by SWS avoidance */
    sndcnt = (sndcnt + mss - 1) / mss * mss;
    uint64_t c = (uint64_t)pipe + (uint64_t)sndcnt;
    sk->cwnd = c > CWND_MAX ? CWND_MAX : (uint32_t)c;
}

/* RACK connections (RFC 8985 with RFC 6675's recovery and RFC 6937 PRR):
 * recovery starts when RACK (or the DupThresh fallback, or an RTO) marks a
 * segment lost and ends with the ACK of everything sent before it began.
 * acked: SND.UNA's advance; delivered: that plus the bytes newly SACKed. */
void tcp_cong_rack_ack(struct tcpsm_sock *sk, uint32_t acked, uint32_t delivered)
{
    if (!sk->cc_on)
        tcp_cong_init(sk);
    const struct congestion_ops *ops = tcp_cong_ops(sk->cc_algo);
    if (sk->in_recovery && seq_ge(sk->snd_una, sk->recover)) {
        /* RFC 6937 3.1: the window at the end of recovery is ssthresh
         * (an algorithm with its own cong_control restores its own) */
        if (!sk->loss_state && !ops->cong_control) {
            sk->cwnd = sk->ssthresh;
            if (sk->undo_state == TCP_UNDO_DONE && sk->cwnd < sk->prior_cwnd)
                sk->cwnd = sk->prior_cwnd;
        }
        sk->in_recovery = false;
        sk->loss_state = false;
        sk->undo_state = TCP_UNDO_OFF;
        sk->dupacks = 0;
        tcp_rack_recovery_exit(sk);
        acked = 0;                      /* this ACK's data was recovery's, not growth */
    }
    /* a lost MTU probe is no congestion signal (RFC 4821 7.5): its
     * records are sent again (tcp_output), cwnd stays */
    if (!sk->in_recovery && sk->rtxq.lost && sk->plp_on)
        tcp_plpmtud_dup_lost(sk);
    if (!sk->in_recovery && sk->rtxq.lost && !(sk->plp_repair && tcp_plpmtud_excused(sk))) {
        sk->prior_cwnd = sk->cwnd;
        sk->prior_ssthresh = sk->ssthresh;
        sk->undo_state = sk->ts_ok ? TCP_UNDO_ARMED : TCP_UNDO_OFF;
        undo_init(sk);
        sk->recover_fs = sk->snd_max - sk->snd_una;     /* RFC 6937: RecoverFS */
        sk->ssthresh = ops->ssthresh(sk);
        sk->recover = sk->snd_max;
        sk->in_recovery = true;
        sk->prr_delivered = sk->prr_out = 0;
        sk->hs.phase = TCP_HS_DONE;     /* RFC 9406 4.3: a loss ends slow start's probing */
        sk->st->cnt.tcp_fast_retrans++;
    }
    if (ops->cong_control) {
        ops->cong_control(sk, acked);   /* BBR: its own cwnd in and out of recovery */
        return;
    }
    if (sk->in_recovery && !sk->loss_state) {
        prr_ack(sk, delivered);
        return;
    }
    /* open, or after an RTO (slow start back up, as Linux in TCP_CA_Loss) */
    if (acked)
        ops->on_ack(sk, acked);
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
            sk->cwnd += mss;                            /* RFC 6582 3.2 (3) */
            return false;
        }
        /* RFC 5827 early retransmit: with fewer than four segments out and
         * nothing new to send, fewer duplicate ACKs can ever come */
        uint32_t out = tcp_segs(sk->snd_max - sk->snd_una, mss);
        unsigned thresh = tcp_dupthresh(sk);    /* 3, or the reordering seen */
        if (out < 4 && out > 1 && tcp_unsent(sk) == 0 && out - 1 < thresh)
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
            sk->in_recovery = false;
            sk->dupacks = 0;
            return false;
        }
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
    const struct congestion_ops *ops = tcp_cong_ops(sk->cc_algo);
    bool rack = tcp_rack_on(sk) && sk->syn_acked;
    /* A new loss episode (Linux tcp_enter_loss): not inside a fast recovery
     * that is still going, nor a repeated timeout of the same data, whose
     * ssthresh stays (RFC 5681 3.1: "held constant") and whose undo
     * information is the episode's. sk->retries counts this RTO already. */
    bool new_recovery = !sk->in_recovery && !sk->loss_state;   /* Linux ca_state < Recovery */
    bool fresh = new_recovery || seq_ge(sk->snd_una, sk->recover) ||
                 (sk->loss_state && sk->retries <= 1);
    /* F-RTO (RFC 5682) after a timeout outside a fast recovery, or a
     * repeated one (Linux: new_recovery || icsk_retransmits); not with an
     * MTU probe out (its loss is no congestion); with and without SACK
     * (Linux tcp_enter_loss) */
    bool frto = sk->syn_acked && (new_recovery || sk->retries > 1) && !sk->plp_probe;
    /* a timeout after DupThresh's worth of duplicates that the raised
     * threshold waited on: the reordering was over-estimated (Linux
     * tcp_enter_loss) */
    uint32_t mss = tcp_send_mss(sk);
    if (!sk->in_recovery && mss &&
        (sk->dupacks >= TCP_REORDER_INIT || sk->rtxq.sacked >= TCP_REORDER_INIT * mss) &&
        sk->reordering > TCP_REORDER_INIT)
        sk->reordering = TCP_REORDER_INIT;
    if (fresh) {
        uint32_t cur = sk->cwnd / 2 + sk->cwnd / 4;     /* tcp_current_ssthresh */
        sk->prior_cwnd = sk->cwnd;
        sk->prior_ssthresh = sk->in_recovery || sk->ssthresh > cur ? sk->ssthresh : cur;
        sk->ssthresh = ops->ssthresh(sk);
        /* the timestamps' and the D-SACKs' undo (RFC 3522/4015, RFC 3708)
         * of this episode: from its first retransmission */
        sk->undo_state = sk->ts_ok && sk->syn_acked ? TCP_UNDO_ARMED : TCP_UNDO_OFF;
        sk->undo_on = false;
        if (rack) {
            sk->undo_on = true;
            sk->undo_marker = sk->snd_una;
            sk->undo_retrans = -1;
        }
    }
    sk->cwnd = tcp_send_mss(sk);
    sk->cwnd_acc = 0;
    if (ops->on_loss)
        ops->on_loss(sk);
    sk->in_recovery = false;
    sk->dupacks = 0;
    sk->recover = sk->snd_max;
    sk->frto = frto;
    sk->frto_new = sk->frto_orig = false;
    sk->sacked.n = 0;                   /* RFC 2018 8: SACK state is advisory after an RTO */
    sk->hs.phase = TCP_HS_DONE;
    if (tcp_rack_on(sk)) {
        /* everything not SACKed is lost and is sent again from the queue
         * as cwnd grows back, SND.NXT stays (Linux tcp_enter_loss) */
        tcp_rtxq_mark_all_lost(sk);
        sk->in_recovery = true;
        sk->loss_state = true;
        sk->rack.reo_at = 0;
    } else if (sk->syn_acked) {
        /* without SACK: everything goes again from SND.UNA (tcp_timer.c
         * rewinds SND.NXT; Linux marks all lost), the duplicate ACKs
         * counted so far are forgotten (tcp_reset_reno_sack); what a
         * timeout before in the same episode resent stays resent (Linux
         * TCPCB_EVER_RETRANS) */
        if (!sk->loss_state || seq_lt(sk->reno_rtx_end, sk->snd_una) ||
            seq_gt(sk->reno_rtx_end, sk->snd_max))
            sk->reno_rtx_end = sk->snd_una;     /* a mark from no episode (0 at first) */
        sk->loss_state = true;
        sk->reno_sacked = 0;
    }
}
