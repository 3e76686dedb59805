/* BBR v1 congestion control (Cardwell et al., "BBR: Congestion-Based
 * Congestion Control", ACM Queue 2016; draft-cardwell-iccrg-bbr-congestion-
 * control-00; Linux tcp_bbr.c is the reference behaviour). A model of the
 * path from two filters: the bottleneck bandwidth (the windowed max of the
 * delivery rate, tcp_rate.c, over 10 round trips) and the propagation delay
 * (the min RTT over 10 s, refreshed by PROBE_RTT). The sender paces at
 * gain x bandwidth and keeps cwnd at about 2 BDP:
 *   STARTUP   gain 2/ln2 until the bandwidth stops growing by 25 % for 3 rounds
 *   DRAIN     1/gain until the queue STARTUP made is gone
 *   PROBE_BW  cycle of 8 phases: 5/4 (probe), 3/4 (drain what it queued), 1 x 6
 *   PROBE_RTT every 10 s without a lower RTT: cwnd 4 segments for 200 ms + 1 round
 * Random loss does not reduce the model: recovery keeps packet conservation
 * for one round and restores cwnd after. A token-bucket policer (steady
 * delivery with a high loss rate over two intervals of 4-16 rounds) is
 * modelled by its long-term rate, used for 48 rounds (Linux bbr_lt_bw_*).
 * Not built: the idle-restart pacing tweak. Windows in bytes, rates in bytes/s,
 * gains in 1/256. Pacing (Linux's internal pacing, tcp_update_skb_after_send
 * and tcp_tso_autosize) is at the end: the output path asks it. */
#include <string.h>

#include "tcp_int.h"

#define UNIT            256u
#define HIGH_GAIN       739u            /* 2/ln(2) */
#define DRAIN_GAIN      88u             /* 1/HIGH_GAIN */
#define CWND_GAIN       512u
#define CYCLE_LEN       8
#define FULL_BW_THRESH  320u            /* 5/4: the bandwidth still grows */
#define FULL_BW_CNT     3
#define MIN_RTT_WIN_NS  (10 * SEC_NS)
#define PROBE_RTT_NS    (200 * MS_NS)
#define CWND_MIN_SEGS   4u
#define INIT_CWND_SEGS  10u
#define PACING_MARGIN   99u             /* pace 1 % below the estimate */
#define LT_INTVL_MIN_RTTS 4u            /* rounds in a long-term sampling interval, at least */
#define LT_LOSS_THRESH    50u           /* a loss rate of 50/256 = 20 % */
#define LT_BW_RATIO       (UNIT / 8)    /* two intervals' rates within 1/8 ... */
#define LT_BW_DIFF        (4000u / 8)   /* ... or 4 kbit/s (bytes/s) */
#define LT_BW_MAX_RTTS    48u           /* rounds the policed rate is used */

static const uint16_t cycle_gain[CYCLE_LEN] = { 320, 192, 256, 256, 256, 256, 256, 256 };

/* The bandwidth filter's max over the last TCP_BBR_BW_ROUNDS rounds. */
uint64_t tcp_bbr_max_bw(const struct tcpsm_sock *sk)
{
    const struct tcp_bbr *b = &sk->bbr;
    uint64_t m = 0;
    for (unsigned i = 0; i < TCP_BBR_BW_ROUNDS; i++)
        if (b->rtt_cnt - b->bw_round[i] < TCP_BBR_BW_ROUNDS && b->bw_max[i] > m)
            m = b->bw_max[i];
    return m;
}

static void bw_filter_add(struct tcpsm_sock *sk, uint64_t bw)
{
    struct tcp_bbr *b = &sk->bbr;
    unsigned i = b->rtt_cnt % TCP_BBR_BW_ROUNDS;
    if (b->bw_round[i] != b->rtt_cnt || bw > b->bw_max[i]) {
        if (b->bw_round[i] != b->rtt_cnt)
            b->bw_max[i] = 0;
        b->bw_round[i] = b->rtt_cnt;
        if (bw > b->bw_max[i])
            b->bw_max[i] = bw;
    }
}

/* Bytes per burst (Linux tcp_tso_autosize): about 1 ms at the pacing rate
 * (sk_pacing_shift 10), plus 64 KiB >> (min RTT in us >> 9) (tcp_tso_rtt_log
 * 9: a path under 512 us gets whole 64 KiB super-segments, one of 8 ms
 * almost nothing more), at least two segments (one below 1.2 Mbit/s, as
 * bbr_min_tso_segs), whole segments, at most seg_max. BBR's cwnd holds
 * three bursts more than the BDP, so on a short path this is also what
 * keeps enough in flight. */
uint32_t tcp_pace_burst(const struct tcpsm_sock *sk, uint32_t mss, uint32_t seg_max)
{
    uint64_t bytes = sk->pacing_rate >> 10;
    uint32_t r = sk->min_rtt_us >> 9;
    if (sk->min_rtt_us && r < 32)       /* (no RTT yet: nothing more) */
        bytes += 65536u >> r;
    uint64_t min = sk->pacing_rate < 150000u ? mss : 2u * mss;
    if (bytes < min)
        bytes = min;
    if (bytes > seg_max)
        bytes = seg_max;
    return bytes > mss ? (uint32_t)(bytes / mss * mss) : mss;
}

/* The send after len bytes of data may not leave before len / rate later
 * (Linux tcp_update_skb_after_send). Unlike the kernel's hrtimer, the timer
 * that releases paced output here is a thread, late by milliseconds on a
 * busy machine: when output had to wait (pace_waited), the time the
 * wake-up came late (up to one smoothed RTT, at least 1 ms) is earned back
 * by sending at once what it would have let out, else the rate BBR
 * measures falls with each late wake-up and the model shrinks. Output
 * that did not wait (after idle, app-limited) earns nothing back. The
 * first ten segments go unpaced, as in Linux. */
void tcp_pace_sent(struct tcpsm_sock *sk, uint32_t len, uint64_t now)
{
    if (!sk->pacing_rate || sk->data_segs_out < 10)
        return;
    uint64_t t = sk->pace_next;
    if (t < now) {
        uint64_t cap = (uint64_t)sk->srtt_us * 1000u;
        if (cap < MS_NS)
            cap = MS_NS;
        t = !sk->pace_waited ? now : now - t <= cap ? t : now - cap;
    }
    sk->pace_waited = false;
    sk->pace_next = t + (uint64_t)len * SEC_NS / sk->pacing_rate;
}

static uint32_t burst_bytes(const struct tcpsm_sock *sk)
{
    uint32_t mss = tcp_send_mss(sk);
    return tcp_pace_burst(sk, mss, 65536u / mss * mss);
}

/* gain x the estimated BDP, in bytes (the initial window before an RTT). */
static uint64_t bdp(const struct tcpsm_sock *sk, uint64_t bw, uint32_t gain)
{
    uint32_t mss = tcp_send_mss(sk);
    if (sk->bbr.min_rtt_us == UINT32_MAX)
        return (uint64_t)INIT_CWND_SEGS * mss;
    uint64_t w = bw * sk->bbr.min_rtt_us / 1000000u;
    return (w * gain + UNIT - 1) / UNIT;
}

/* The cwnd for gain: BDP plus room for the bursts in flight at each end
 * (bbr_quantization_budget: three bursts), plus two segments while probing. */
static uint64_t inflight(const struct tcpsm_sock *sk, uint64_t bw, uint32_t gain)
{
    uint64_t w = bdp(sk, bw, gain) + 3u * burst_bytes(sk);
    if (sk->bbr.mode == TCP_BBR_PROBE_BW && sk->bbr.cycle_idx == 0)
        w += 2u * tcp_send_mss(sk);
    return w;
}

static void set_pacing_rate(struct tcpsm_sock *sk, uint64_t bw, uint32_t gain)
{
    uint64_t rate = bw * gain / UNIT * PACING_MARGIN / 100u;
    if (!rate)
        return;
    if (sk->bbr.full_bw_reached || rate > sk->pacing_rate)
        sk->pacing_rate = rate;
}

/* Before any sample: high_gain x the initial window over the RTT (1 ms
 * without one), as bbr_init_pacing_rate_from_rtt. */
static void init_pacing_rate(struct tcpsm_sock *sk)
{
    uint64_t rtt_us = sk->srtt_us ? sk->srtt_us : 1000u;
    uint64_t bw = (uint64_t)sk->cwnd * 1000000u / rtt_us;
    sk->pacing_rate = bw * HIGH_GAIN / UNIT * PACING_MARGIN / 100u;
    if (!sk->pacing_rate)
        sk->pacing_rate = 1;
}

/* Long-term bandwidth sampling (Linux bbr_lt_bw_sampling): a token-bucket
 * policer shows as two sampling intervals in a row, each of 4 to 16
 * rounds and ending at a loss with at least 20 % of what was delivered
 * lost, that deliver at rates within 1/8 (or 4 kbit/s) of each other;
 * then their mean is the policed rate, which BBR paces at (gain 1) and
 * sizes cwnd from for 48 rounds instead of the max filter. Sampling
 * starts at the first loss (the bucket's tokens are spent by then) and
 * restarts when the program runs out of data (app-limited). */
static void lt_reset_interval(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    b->lt_last_stamp_ms = (uint32_t)(sk->rate.delivered_at / MS_NS);
    b->lt_last_delivered = (uint32_t)sk->rate.delivered;
    b->lt_last_lost = b->lost;
    b->lt_rtt_cnt = 0;
}

static void lt_reset(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    b->lt_bw = 0;
    b->lt_use_bw = false;
    b->lt_is_sampling = false;
    lt_reset_interval(sk);
}

static void lt_interval_done(struct tcpsm_sock *sk, uint64_t bw)
{
    struct tcp_bbr *b = &sk->bbr;
    if (b->lt_bw) {
        uint64_t diff = bw > b->lt_bw ? bw - b->lt_bw : b->lt_bw - bw;
        if (diff * UNIT <= (uint64_t)LT_BW_RATIO * b->lt_bw || diff <= LT_BW_DIFF) {
            b->lt_bw = (uint32_t)((bw + b->lt_bw) / 2);
            b->lt_use_bw = true;
            b->pacing_gain = UNIT;      /* try to avoid drops */
            b->lt_rtt_cnt = 0;
            return;
        }
    }
    b->lt_bw = bw > UINT32_MAX ? UINT32_MAX : (uint32_t)bw;
    lt_reset_interval(sk);
}

static void enter_mode(struct tcpsm_sock *sk, uint8_t mode);

static void lt_sampling(struct tcpsm_sock *sk, uint32_t losses, bool app_limited)
{
    struct tcp_bbr *b = &sk->bbr;
    if (b->lt_use_bw) {
        if (b->mode == TCP_BBR_PROBE_BW && b->round_start && ++b->lt_rtt_cnt >= LT_BW_MAX_RTTS) {
            lt_reset(sk);               /* the policer may be gone: probe again */
            enter_mode(sk, TCP_BBR_PROBE_BW);
        }
        return;
    }
    if (!b->lt_is_sampling) {
        if (!losses)
            return;
        lt_reset_interval(sk);
        b->lt_is_sampling = true;
    }
    if (app_limited) {
        lt_reset(sk);
        return;
    }
    if (b->round_start && b->lt_rtt_cnt < UINT8_MAX)
        b->lt_rtt_cnt++;
    if (b->lt_rtt_cnt < LT_INTVL_MIN_RTTS)
        return;
    if (b->lt_rtt_cnt > 4 * LT_INTVL_MIN_RTTS) {
        lt_reset(sk);                   /* too long */
        return;
    }
    if (!losses)
        return;                         /* an interval ends at a loss */
    /* mod 2^32, as Linux's u32 counters: an interval is at most 16 rounds */
    uint64_t lost = (uint32_t)(b->lost - b->lt_last_lost);
    uint64_t delivered = (uint32_t)((uint32_t)sk->rate.delivered - b->lt_last_delivered);
    if (!delivered || lost * UNIT < (uint64_t)LT_LOSS_THRESH * delivered)
        return;
    int32_t t = (int32_t)((uint32_t)(sk->rate.delivered_at / MS_NS) - b->lt_last_stamp_ms);
    if (t < 1)
        return;                         /* under a millisecond: wait */
    lt_interval_done(sk, delivered * 1000u / (uint32_t)t);
}

/* The bandwidth the model uses: the policed rate when one was found. */
static uint64_t bbr_bw(const struct tcpsm_sock *sk)
{
    return sk->bbr.lt_use_bw ? sk->bbr.lt_bw : tcp_bbr_max_bw(sk);
}

static void bbr_init(struct tcpsm_sock *sk)
{
    tcp_newreno.init(sk);               /* the initial window (RFC 6928) */
    struct tcp_bbr *b = &sk->bbr;
    memset(b, 0, sizeof(*b));
    b->mode = TCP_BBR_STARTUP;
    b->pacing_gain = HIGH_GAIN;
    b->cwnd_gain = HIGH_GAIN;
    b->min_rtt_us = sk->min_rtt_us ? sk->min_rtt_us : UINT32_MAX;
    b->min_rtt_at = sk->st->now;
    b->next_rtt_delivered = sk->rate.delivered;
    for (unsigned i = 0; i < TCP_BBR_BW_ROUNDS; i++)
        b->bw_round[i] = (uint32_t)-TCP_BBR_BW_ROUNDS;
    init_pacing_rate(sk);
    sk->pace_next = 0;
    lt_reset(sk);
}

/* Loss or RTO begins: remember cwnd for after the recovery; ssthresh does
 * not change (BBR does not reduce on loss). */
static uint32_t bbr_ssthresh(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    if (!b->prev_recovery && b->mode != TCP_BBR_PROBE_RTT)
        b->prior_cwnd = sk->cwnd;
    else if (sk->cwnd > b->prior_cwnd)
        b->prior_cwnd = sk->cwnd;
    return sk->ssthresh;
}

/* After an RTO (Linux bbr_set_state TCP_CA_Loss): no packet conservation
 * round, the bandwidth plateau count starts over. */
static void bbr_on_loss(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    b->prev_recovery = true;
    b->full_bw = 0;
    b->round_start = true;
    /* what the RTO marks lost (Linux tcp_enter_loss counts it in tp->lost),
     * and the policer check as for a loss (bbr_set_state TCP_CA_Loss) */
    uint32_t out = sk->snd_max - sk->snd_una, gone = sk->rtxq.sacked + sk->rtxq.lost;
    uint32_t lost = out > gone ? out - gone : 1;
    b->lost += lost;                    /* mod 2^32 */
    lt_sampling(sk, lost, false);
}

/* A loss episode undone (Linux bbr_undo_cwnd): the slow-down was spurious,
 * so the full-pipe detection starts over, and so does the policer's
 * sampling, whose interval the (not) lost data began; cwnd stays BBR's. */
static void bbr_undo_cwnd(struct tcpsm_sock *sk)
{
    sk->bbr.full_bw = 0;
    sk->bbr.full_bw_cnt = 0;
    lt_reset(sk);
}

static void enter_mode(struct tcpsm_sock *sk, uint8_t mode)
{
    struct tcp_bbr *b = &sk->bbr;
    b->mode = mode;
    switch (mode) {
    case TCP_BBR_STARTUP:
        b->pacing_gain = b->cwnd_gain = HIGH_GAIN;
        break;
    case TCP_BBR_DRAIN:
        b->pacing_gain = DRAIN_GAIN;
        b->cwnd_gain = HIGH_GAIN;
        break;
    case TCP_BBR_PROBE_BW:
        /* a random phase other than the 3/4 one (bbr_reset_probe_bw_mode),
         * from the connection's own numbers: deterministic per connection */
        b->cwnd_gain = CWND_GAIN;
        b->cycle_idx = (uint8_t)((CYCLE_LEN - 1 - (sk->iss + b->rtt_cnt) % (CYCLE_LEN - 1) + 1) %
                                 CYCLE_LEN);
        b->pacing_gain = cycle_gain[b->cycle_idx];
        b->cycle_at = sk->rate.delivered_at;
        break;
    case TCP_BBR_PROBE_RTT:
        b->pacing_gain = b->cwnd_gain = UNIT;
        break;
    }
}

/* New round trip and the bandwidth sample (bbr_update_bw). */
static void update_bw(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    const struct tcp_rs *rs = &sk->rs;
    b->round_start = false;
    if (rs->delivered < 0 || !rs->interval_ns)
        return;
    if (rs->prior_delivered >= b->next_rtt_delivered) {
        b->next_rtt_delivered = sk->rate.delivered;
        b->rtt_cnt++;
        b->round_start = true;
        b->packet_conservation = false;
    }
    lt_sampling(sk, rs->losses, rs->app_limited);
    uint64_t bw = (uint64_t)rs->delivered * SEC_NS / rs->interval_ns;
    /* an app-limited sample counts only if it is higher than the estimate */
    if (!rs->app_limited || bw >= tcp_bbr_max_bw(sk))
        bw_filter_add(sk, bw);
}

/* PROBE_BW: the next phase after one min RTT, or sooner/later as the
 * inflight reached its goal (bbr_is_next_cycle_phase). */
static void update_cycle_phase(struct tcpsm_sock *sk, uint64_t now)
{
    struct tcp_bbr *b = &sk->bbr;
    if (b->mode != TCP_BBR_PROBE_BW)
        return;
    const struct tcp_rs *rs = &sk->rs;
    bool full = now - b->cycle_at > (uint64_t)b->min_rtt_us * 1000u;
    uint64_t bw = tcp_bbr_max_bw(sk);
    bool next;
    if (b->pacing_gain == UNIT)
        next = full;
    else if (b->pacing_gain > UNIT)
        next = full && (rs->losses || rs->prior_in_flight >= inflight(sk, bw, b->pacing_gain));
    else
        next = full || rs->prior_in_flight <= inflight(sk, bw, UNIT);
    if (next) {
        b->cycle_idx = (uint8_t)((b->cycle_idx + 1) % CYCLE_LEN);
        b->cycle_at = now;
        b->pacing_gain = cycle_gain[b->cycle_idx];
    }
}

/* STARTUP ends when three rounds in a row grew the bandwidth by less than
 * 25 % (the pipe is full). */
static void check_full_bw(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    if (b->full_bw_reached || !b->round_start || sk->rs.app_limited)
        return;
    uint64_t bw = tcp_bbr_max_bw(sk);
    if (bw >= b->full_bw * FULL_BW_THRESH / UNIT) {
        b->full_bw = bw;
        b->full_bw_cnt = 0;
        return;
    }
    if (++b->full_bw_cnt >= FULL_BW_CNT)
        b->full_bw_reached = true;
}

static void check_drain(struct tcpsm_sock *sk)
{
    struct tcp_bbr *b = &sk->bbr;
    if (b->mode == TCP_BBR_STARTUP && b->full_bw_reached) {
        enter_mode(sk, TCP_BBR_DRAIN);
        uint64_t s = inflight(sk, tcp_bbr_max_bw(sk), UNIT);
        sk->ssthresh = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
    }
    if (b->mode == TCP_BBR_DRAIN && tcp_rtxq_pipe(sk) <= inflight(sk, tcp_bbr_max_bw(sk), UNIT))
        enter_mode(sk, TCP_BBR_PROBE_BW);
}

/* The min RTT filter and PROBE_RTT (bbr_update_min_rtt). */
static void update_min_rtt(struct tcpsm_sock *sk, uint64_t now)
{
    struct tcp_bbr *b = &sk->bbr;
    const struct tcp_rs *rs = &sk->rs;
    bool expired = now > b->min_rtt_at + MIN_RTT_WIN_NS;
    if (rs->rtt_us >= 0 && ((uint64_t)rs->rtt_us < b->min_rtt_us || expired)) {
        b->min_rtt_us = rs->rtt_us ? (uint32_t)rs->rtt_us : 1;
        b->min_rtt_at = now;
    }
    if (expired && !b->idle_restart && b->mode != TCP_BBR_PROBE_RTT) {
        enter_mode(sk, TCP_BBR_PROBE_RTT);
        bbr_ssthresh(sk);               /* keeps cwnd for after */
        b->probe_rtt_done_at = 0;
    }
    if (b->mode == TCP_BBR_PROBE_RTT) {
        /* what is delivered meanwhile is not the path's limit */
        uint64_t mark = sk->rate.delivered + tcp_rtxq_pipe(sk);
        sk->rate.app_limited = mark ? mark : 1;
        if (!b->probe_rtt_done_at && tcp_rtxq_pipe(sk) <= CWND_MIN_SEGS * tcp_send_mss(sk)) {
            b->probe_rtt_done_at = now + PROBE_RTT_NS;
            b->probe_rtt_round_done = false;
            b->next_rtt_delivered = sk->rate.delivered;
        } else if (b->probe_rtt_done_at) {
            if (b->round_start)
                b->probe_rtt_round_done = true;
            if (b->probe_rtt_round_done && now > b->probe_rtt_done_at) {
                b->min_rtt_at = now;
                if (sk->cwnd < b->prior_cwnd)
                    sk->cwnd = b->prior_cwnd;
                enter_mode(sk, b->full_bw_reached ? TCP_BBR_PROBE_BW : TCP_BBR_STARTUP);
            }
        }
    }
    if (rs->delivered > 0)
        b->idle_restart = false;
}

/* cwnd: grow toward gain x BDP by what was delivered (faster in STARTUP);
 * packet conservation for the first round of a recovery, the old cwnd
 * back after it (bbr_set_cwnd, bbr_set_cwnd_to_recover_or_restore). */
static void set_cwnd(struct tcpsm_sock *sk, uint64_t bw, uint32_t gain)
{
    struct tcp_bbr *b = &sk->bbr;
    const struct tcp_rs *rs = &sk->rs;
    uint32_t mss = tcp_send_mss(sk);
    uint64_t acked = rs->acked_sacked;
    uint64_t cwnd = sk->cwnd;
    uint64_t pipe = tcp_rtxq_pipe(sk);
    bool recovery = sk->in_recovery;
    if (acked) {
        bool hold = false;
        if (rs->losses)
            cwnd = cwnd > rs->losses + mss ? cwnd - rs->losses : mss;
        if (recovery && !b->prev_recovery) {
            b->packet_conservation = true;
            b->next_rtt_delivered = sk->rate.delivered;
            cwnd = pipe + acked;
        } else if (!recovery && b->prev_recovery) {
            if (cwnd < b->prior_cwnd)
                cwnd = b->prior_cwnd;
            b->packet_conservation = false;
        }
        b->prev_recovery = recovery;
        if (b->packet_conservation) {
            if (cwnd < pipe + acked)
                cwnd = pipe + acked;
            hold = true;
        }
        if (!hold) {
            uint64_t target = inflight(sk, bw, gain);
            if (b->full_bw_reached) {
                cwnd += acked;
                if (cwnd > target)
                    cwnd = target;
            } else if (cwnd < target || sk->rate.delivered < (uint64_t)INIT_CWND_SEGS * mss) {
                cwnd += acked;
            }
            if (cwnd < CWND_MIN_SEGS * mss)
                cwnd = CWND_MIN_SEGS * mss;
        }
    }
    if (b->mode == TCP_BBR_PROBE_RTT && cwnd > CWND_MIN_SEGS * mss)
        cwnd = CWND_MIN_SEGS * mss;
    if (cwnd > (1u << 30))
        cwnd = 1u << 30;
    sk->cwnd = (uint32_t)cwnd;
}

/* Every ACK (RACK connections): the model, then pacing and cwnd. */
static void bbr_main(struct tcpsm_sock *sk, uint32_t acked)
{
    (void)acked;                        /* BBR counts what was delivered, SACKs too */
    struct tcp_bbr *b = &sk->bbr;
    uint64_t now = sk->st->now;
    b->lost += sk->rs.losses;
    update_bw(sk);
    update_cycle_phase(sk, now);
    check_full_bw(sk);
    check_drain(sk);
    update_min_rtt(sk, now);
    if (b->mode == TCP_BBR_PROBE_BW && b->lt_use_bw)
        b->pacing_gain = UNIT;          /* bbr_update_gains: no probing at a policer */
    uint64_t bw = bbr_bw(sk);
    if (bw)
        set_pacing_rate(sk, bw, b->pacing_gain);
    set_cwnd(sk, bw, b->cwnd_gain);
}

/* Used only without SACK, where BBR is not chosen (tcp_cong_init): Reno. */
static void bbr_on_ack(struct tcpsm_sock *sk, uint32_t acked)
{
    tcp_newreno.on_ack(sk, acked);
}

const struct congestion_ops tcp_bbr = {
    .name = "bbr",
    .init = bbr_init,
    .on_ack = bbr_on_ack,
    .ssthresh = bbr_ssthresh,
    .cong_control = bbr_main,
    .on_loss = bbr_on_loss,
    .undo_cwnd = bbr_undo_cwnd,
};
