/* CUBIC congestion control (RFC 9438), behind struct congestion_ops: the
 * window grows as a cubic function of the time since the last reduction,
 * concave up to the window before it (W_max), convex beyond; never slower
 * than Reno would grow (the Reno-friendly estimate W_est, 4.3). Slow start,
 * loss detection and recovery are tcp_cong.c's. Time is the stack's
 * current event time (no clock in the core); windows in segments as
 * doubles, as the RFC writes them. */
#include <string.h>

#include "tcp_int.h"

#define CUBIC_C     0.4                 /* RFC 9438 5 */
#define CUBIC_BETA  0.7
#define CWND_MAX    (1u << 30)

static double cube_root(double x)
{
    if (x <= 0)
        return 0;
    double r = x < 1 ? 1 : x / 3;
    for (int i = 0; i < 100; i++) {
        double n = (2 * r + x / (r * r)) / 3;
        double d = n > r ? n - r : r - n;
        r = n;
        if (d < 1e-9)
            break;
    }
    return r;
}

static void cubic_init(struct tcpsm_sock *sk)
{
    tcp_newreno.init(sk);               /* initial window and ssthresh as Reno */
    memset(&sk->cubic, 0, sizeof(sk->cubic));
}

/* 4.2: W_cubic(t) = C*(t - K)^3 + W_max, t and K in seconds. */
static double w_cubic(const struct tcpsm_sock *sk, double t)
{
    double d = t - sk->cubic.k;
    return CUBIC_C * d * d * d + sk->cubic.w_max;
}

static void cubic_on_ack(struct tcpsm_sock *sk, uint32_t acked)
{
    uint32_t mss = tcp_send_mss(sk);
    if (sk->cwnd < sk->ssthresh) {      /* slow start (4.10: as Reno) */
        /* as Reno (RFC 3465 ABC, RFC 9406 L and HyStart++) */
        sk->cwnd += tcp_hystart_ss_inc(sk, acked);
        if (sk->cwnd > CWND_MAX)
            sk->cwnd = CWND_MAX;
        return;
    }
    struct cubic_state *c = &sk->cubic;
    uint64_t now = sk->st->now;
    double cwnd = (double)sk->cwnd / mss;
    if (!c->epoch) {
        /* 4.2: a new congestion avoidance epoch; K from the window it
         * starts with (cwnd_epoch) */
        c->epoch = now ? now : 1;
        if (c->w_max < cwnd)
            c->w_max = cwnd;
        c->k = cube_root((c->w_max - cwnd) / CUBIC_C);
        c->w_est = cwnd;
        c->frac = 0;
    }
    double t = (double)(now - c->epoch) / 1e9;
    double rtt = sk->srtt_us ? sk->srtt_us / 1e6 : 0.1;
    double segs = (double)acked / mss;
    /* 4.3: the Reno-friendly estimate, alpha 3(1-beta)/(1+beta) until
     * it reaches W_max, then 1 */
    double alpha = c->w_est < c->w_max ? 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA) : 1;
    c->w_est += alpha * segs / cwnd;
    double grow;
    if (w_cubic(sk, t) < c->w_est) {
        grow = c->w_est - cwnd;         /* Reno-friendly region: cwnd = W_est */
    } else {
        /* 4.4/4.5: toward target = W_cubic(t + RTT), within [cwnd, 1.5 cwnd] */
        double target = w_cubic(sk, t + rtt);
        if (target < cwnd)
            target = cwnd;
        if (target > 1.5 * cwnd)
            target = 1.5 * cwnd;
        grow = (target - cwnd) / cwnd * segs;
    }
    if (grow < 0)
        grow = 0;
    c->frac += grow * mss;
    if (c->frac >= 1) {
        double add = c->frac > CWND_MAX ? CWND_MAX : c->frac;
        sk->cwnd += (uint32_t)add;
        c->frac -= (uint32_t)add;
    }
    if (sk->cwnd > CWND_MAX)
        sk->cwnd = CWND_MAX;
}

/* 4.6/4.7: on a congestion event, W_max with fast convergence, a new
 * epoch, ssthresh = cwnd * beta (at least two segments). */
static uint32_t cubic_ssthresh(struct tcpsm_sock *sk)
{
    uint32_t mss = tcp_send_mss(sk);
    struct cubic_state *c = &sk->cubic;
    double cwnd = (double)sk->cwnd / mss;
    if (cwnd < c->w_max)
        c->w_max = cwnd * (1 + CUBIC_BETA) / 2;     /* fast convergence */
    else
        c->w_max = cwnd;
    c->epoch = 0;
    uint64_t s = (uint64_t)(sk->cwnd * CUBIC_BETA);
    if (s < 2u * mss)
        s = 2u * mss;
    return (uint32_t)s;
}

const struct congestion_ops tcp_cubic = {
    .name = "cubic",
    .init = cubic_init,
    .on_ack = cubic_on_ack,
    .ssthresh = cubic_ssthresh,
};
