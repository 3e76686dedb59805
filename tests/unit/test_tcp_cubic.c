/* CUBIC (RFC 9438) behind the congestion ops: the reduction to beta = 0.7,
 * the concave return to W_max at time K, convex growth beyond, fast
 * convergence, the Reno-friendly region; and TCP_CONGESTION. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"
#include "tcp_int.h"

/* Drive the algorithm as a sender with a fixed RTT whose whole window is
 * ACKed once per RTT, for ms milliseconds. */
static void run(struct harness *h, struct tcpsm_sock *sk, uint64_t rtt_ms, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += rtt_ms) {
        h->st->now += MS(rtt_ms);
        tcp_cubic.on_ack(sk, sk->cwnd);
    }
}

Test(tcp_cubic, reduction_concave_then_convex)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_CONGESTION, TCPSM_CC_CUBIC), 0);
    struct tcpsm_sock *sk = h->sk;
    cr_assert(sk->cc_on);
    cr_assert_eq(sk->cc_algo, TCPSM_CC_CUBIC);
    cr_assert_eq(tcp_cong_ops(sk->cc_algo), &tcp_cubic);
    uint32_t mss = tcp_send_mss(sk);
    sk->srtt_us = 100000;
    sk->cwnd = 100 * mss;
    sk->ssthresh = sk->cwnd = tcp_cubic.ssthresh(sk);   /* a loss at 100 segments */
    cr_assert_eq(sk->cwnd, 70 * mss, "beta 0.7: %u segments", sk->cwnd / mss);
    /* K = cbrt(W_max (1 - beta) / C) = cbrt(75) = 4.22 s */
    run(h, sk, 100, 1000);
    uint32_t after1 = sk->cwnd / mss;
    run(h, sk, 100, 1000);
    uint32_t after2 = sk->cwnd / mss;
    cr_assert(after1 > 70 && after2 > after1);
    cr_assert_gt(after1 - 70, after2 - after1, "concave: growth slows toward W_max (%u, %u)",
                 after1, after2);
    run(h, sk, 100, 2200);              /* t = K */
    uint32_t atk = sk->cwnd / mss;
    cr_assert(atk >= 95 && atk <= 106, "at K the window is back near W_max: %u", atk);
    run(h, sk, 100, 2000);
    uint32_t later = sk->cwnd / mss;
    run(h, sk, 100, 1000);
    uint32_t later2 = sk->cwnd / mss;
    cr_assert(later > atk + 3 && later2 - later > later - atk - (later - atk) / 2,
              "convex beyond W_max: %u, %u, %u", atk, later, later2);
    /* fast convergence: a loss below W_max remembers less than the window */
    sk->cwnd = 90 * mss;
    sk->cubic.w_max = 120;
    sk->ssthresh = sk->cwnd = tcp_cubic.ssthresh(sk);
    cr_assert_eq((int)(sk->cubic.w_max + 0.5), 77, "W_max %f", sk->cubic.w_max);
    h_free(h);
}

/* With a short RTT Reno's growth is faster than the cubic curve: CUBIC
 * then grows as Reno would (RFC 9438 4.3), never slower. */
Test(tcp_cubic, reno_friendly_region)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_CONGESTION, TCPSM_CC_CUBIC), 0);
    struct tcpsm_sock *sk = h->sk;
    uint32_t mss = tcp_send_mss(sk);
    sk->srtt_us = 1000;
    sk->cwnd = 20 * mss;
    sk->ssthresh = sk->cwnd = tcp_cubic.ssthresh(sk);
    run(h, sk, 1, 1000);                /* 1000 RTTs of 1 ms */
    uint32_t w = sk->cwnd / mss;
    /* W_est: 14 + 0.53 per RTT up to W_max 20, then 1 per RTT */
    cr_assert(w >= 900 && w <= 1100, "Reno-friendly growth: %u segments", w);
    h_free(h);
}

Test(tcp_cubic, congestion_option)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    int v = -1;
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_CONGESTION, &v), 0);
    cr_assert_eq(v, TCPSM_CC_CUBIC, "CUBIC is the default (RFC 9438, as Linux)");
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_CONGESTION, 7), -ENOENT);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_CONGESTION, TCPSM_CC_RENO), 0);
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_CONGESTION, &v), 0);
    cr_assert_eq(v, TCPSM_CC_RENO);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_CONGESTION, TCPSM_CC_CUBIC), 0);
    /* the window survives the switch, and data still flows */
    uint8_t d[500];
    h_pattern(d, sizeof(d), 1);
    h_app_send(h, d, sizeof(d));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_CONGESTION, TCPSM_CC_RENO), 0);
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_CONGESTION, &v), 0);
    cr_assert_eq(v, TCPSM_CC_RENO);
    h_app_send(h, d, sizeof(d));
    h_free(h);
}

/* New sockets take the configured default by Linux name (the runtime
 * passes the host's net.ipv4.tcp_congestion_control); a name the stack
 * lacks, or none, gives CUBIC. */
Test(tcp_cubic, default_by_host_name)
{
    cr_assert_eq(tcpsm_cc_by_name("reno"), TCPSM_CC_RENO);
    cr_assert_eq(tcpsm_cc_by_name("cubic"), TCPSM_CC_CUBIC);
    cr_assert_eq(tcpsm_cc_by_name("vegas"), -1);
    cr_assert_str_eq(tcpsm_cc_name(TCPSM_CC_CUBIC), "cubic");
    static const struct { const char *name; int want; } cases[] = {
        { "reno", TCPSM_CC_RENO }, { "cubic", TCPSM_CC_CUBIC }, { "vegas", TCPSM_CC_CUBIC },
        { "", TCPSM_CC_CUBIC },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tcpsm_config cfg;
        h_default_config(&cfg);
        memcpy(cfg.congestion, cases[i].name, strlen(cases[i].name));
        struct harness *h = h_new(&cfg);
        sock_established(h);
        int v = -1;
        cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_CONGESTION, &v), 0);
        cr_assert_eq(v, cases[i].want, "host %s: %d", cases[i].name, v);
        cr_assert_eq(h->sk->cc_algo, cases[i].want);
        h_free(h);
    }
}
