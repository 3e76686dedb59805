/* HyStart++ (RFC 9406): leave slow start before it overshoots. Per round
 * trip the minimum RTT is compared with the previous round's; a rise of
 * more than RttThresh means a queue is building: Conservative Slow Start
 * (CSS) then grows a quarter as fast for up to CSS_ROUNDS rounds and ends
 * in congestion avoidance, unless the RTT falls back (a spurious exit).
 * Only the first slow start uses it; after a loss or an RTO, plain slow
 * start (4.3). Called by the congestion control's slow-start branch. */
#include "tcp_int.h"

#define HS_MIN_RTT_THRESH_US 4000u      /* RFC 9406 4.3 constants */
#define HS_MAX_RTT_THRESH_US 16000u
#define HS_MIN_RTT_DIVISOR   8u
#define HS_N_RTT_SAMPLE      8u
#define HS_CSS_GROWTH_DIV    4u
#define HS_CSS_ROUNDS        5u
#define HS_NONE              UINT32_MAX

void tcp_hystart_init(struct tcpsm_sock *sk)
{
    sk->hs = (struct tcp_hystart){ .phase = TCP_HS_SS, .round_end = sk->snd_nxt,
                                   .last_min_rtt = HS_NONE, .cur_min_rtt = HS_NONE };
}

/* Each RTT sample (tcp_rtt_sample). */
void tcp_hystart_rtt(struct tcpsm_sock *sk, uint32_t rtt_us)
{
    struct tcp_hystart *h = &sk->hs;
    if (h->phase == TCP_HS_DONE)
        return;
    if (rtt_us < h->cur_min_rtt)
        h->cur_min_rtt = rtt_us;
    h->rtt_samples++;
}

/* New data ACKed in slow start: the bytes cwnd grows by (RFC 3465 ABC,
 * at most L = 8 segments, 4.3; in CSS a quarter of it). 0 and ssthresh = cwnd when CSS ends. */
uint32_t tcp_hystart_ss_inc(struct tcpsm_sock *sk, uint32_t acked)
{
    struct tcp_hystart *h = &sk->hs;
    uint32_t lim = TCP_ABC_L * tcp_send_mss(sk);
    uint32_t inc = acked < lim ? acked : lim;
    if (h->phase == TCP_HS_DONE)
        return inc;
    bool round_over = seq_ge(sk->snd_una, h->round_end);
    if (h->rtt_samples >= HS_N_RTT_SAMPLE && h->cur_min_rtt != HS_NONE &&
        h->last_min_rtt != HS_NONE) {
        if (h->phase == TCP_HS_SS) {
            uint32_t thresh = h->last_min_rtt / HS_MIN_RTT_DIVISOR;
            if (thresh > HS_MAX_RTT_THRESH_US)
                thresh = HS_MAX_RTT_THRESH_US;
            if (thresh < HS_MIN_RTT_THRESH_US)
                thresh = HS_MIN_RTT_THRESH_US;
            if (h->cur_min_rtt >= h->last_min_rtt + thresh) {
                h->phase = TCP_HS_CSS;  /* 4.2: delay increase, enter CSS */
                h->css_baseline = h->cur_min_rtt;
                h->css_rounds = 0;
            }
        } else if (h->cur_min_rtt < h->css_baseline) {
            h->phase = TCP_HS_SS;       /* 4.2: the rise was spurious, back to slow start */
        }
    }
    if (round_over) {
        /* 4.2: a new round: this one's minimum becomes the last */
        h->last_min_rtt = h->cur_min_rtt;
        h->cur_min_rtt = HS_NONE;
        h->rtt_samples = 0;
        h->round_end = sk->snd_nxt;
        if (h->phase == TCP_HS_CSS && ++h->css_rounds >= HS_CSS_ROUNDS) {
            h->phase = TCP_HS_DONE;     /* CSS done: congestion avoidance from here */
            sk->ssthresh = sk->cwnd;
            return 0;
        }
    }
    if (h->phase == TCP_HS_CSS)
        inc /= HS_CSS_GROWTH_DIV;
    return inc;
}
