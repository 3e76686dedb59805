/* BBR (tcp_bbr.c) and the delivery-rate samples it runs on (tcp_rate.c):
 * the bandwidth filter's window of 10 rounds, the min RTT filter and
 * PROBE_RTT, STARTUP -> DRAIN -> PROBE_BW on a bandwidth plateau, pacing
 * in the output path; and whole uploads over the in-memory link with a
 * bottleneck, in virtual time: the model finds the link's rate and RTT,
 * and random loss does not cut the rate as it cuts CUBIC's. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netdev_mem.h"
#include "tcp_harness.h"
#include "tcp_int.h"

#define M 1460u

/* ESTABLISHED with SACK and BBR chosen, an RTT of 20 ms as if measured. */
static struct harness *established_bbr(void)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    memcpy(cfg.congestion, "bbr", 3);
    cfg.sndbuf = 256 * 1024;
    struct harness *h = h_new(&cfg);
    SOCK_ESTABLISHED_WITH(h, .sack_perm = true, .wscale = WS(7));
    h->sk->min_rtt_us = h->sk->srtt_us = 20000;
    cr_assert_eq(h->sk->cc_algo, TCPSM_CC_BBR);
    h->sk->bbr.min_rtt_us = 20000;      /* as if the handshake had measured it */
    return h;
}

/* One ACK's rate sample, as tcp_rate.c would make it: bytes delivered
 * over interval, sent when prior_delivered had been delivered, lost bytes
 * marked lost by it; stamp: the delivery time moves with the clock. */
static void sample_full(struct harness *h, uint64_t delivered, uint64_t interval_ns,
                        uint32_t rtt_us, bool app_limited, uint32_t lost, bool stamp)
{
    struct tcpsm_sock *sk = h->sk;
    struct tcp_rs *rs = &sk->rs;
    memset(rs, 0, sizeof(*rs));
    rs->prior_delivered = sk->rate.delivered;
    sk->rate.delivered += delivered;
    rs->delivered = (int64_t)delivered;
    rs->interval_ns = interval_ns;
    rs->acked_sacked = (uint32_t)delivered;
    rs->rtt_us = rtt_us;
    rs->app_limited = app_limited;
    rs->losses = lost;
    rs->prior_at = 1;
    h->st->now += interval_ns;
    if (stamp)
        sk->rate.delivered_at = h->st->now;
    tcp_bbr.cong_control(sk, 0);
}

static void sample(struct harness *h, uint64_t delivered, uint64_t interval_ns, uint32_t rtt_us,
                   bool app_limited)
{
    sample_full(h, delivered, interval_ns, rtt_us, app_limited, 0, false);
}

/* bytes/s of d bytes in ns */
static uint64_t rate(uint64_t d, uint64_t ns)
{
    return d * 1000000000ull / ns;
}

/* The filter keeps the max of the last 10 rounds: a high sample is
 * forgotten 10 rounds after, app-limited samples below the max do not
 * count, one above it does. */
Test(tcp_bbr, bandwidth_filter_window)
{
    struct harness *h = established_bbr();
    /* each sample starts a round: prior_delivered >= next_rtt_delivered */
    sample(h, 100000, MS(20), 20000, false);                 /* 5 MB/s */
    cr_assert_eq(tcp_bbr_max_bw(h->sk), rate(100000, MS(20)));
    for (int i = 0; i < 9; i++)
        sample(h, 50000, MS(20), 20000, false);              /* 2.5 MB/s */
    cr_assert_eq(tcp_bbr_max_bw(h->sk), rate(100000, MS(20)), "forgot the max too soon");
    sample(h, 50000, MS(20), 20000, false);
    cr_assert_eq(tcp_bbr_max_bw(h->sk), rate(50000, MS(20)), "the max outlived 10 rounds");
    sample(h, 20000, MS(20), 20000, true);                   /* app-limited, lower */
    cr_assert_eq(tcp_bbr_max_bw(h->sk), rate(50000, MS(20)));
    sample(h, 80000, MS(20), 20000, true);                   /* app-limited, higher */
    cr_assert_eq(tcp_bbr_max_bw(h->sk), rate(80000, MS(20)));
    h_free(h);
}

/* STARTUP while the bandwidth grows; three rounds without 25 % growth:
 * DRAIN (pacing below the rate), then PROBE_BW once the flight is down to
 * one BDP; cwnd follows 2 x BDP there. */
Test(tcp_bbr, startup_drain_probe_bw)
{
    struct harness *h = established_bbr();
    struct tcpsm_sock *sk = h->sk;
    cr_assert_eq(sk->bbr.mode, TCP_BBR_STARTUP);
    uint64_t d = 20000;
    for (int i = 0; i < 6; i++, d *= 2) {
        sample(h, d, MS(20), 20000, false);
        cr_assert_eq(sk->bbr.mode, TCP_BBR_STARTUP, "left STARTUP while growing (round %d)", i);
    }
    cr_assert_gt(sk->pacing_rate, tcp_bbr_max_bw(sk) * 2, "STARTUP paces at 2/ln2");
    d /= 2;                             /* the last rate */
    for (int i = 0; i < 3; i++)
        sample(h, d, MS(20), 20000, false);                  /* plateau */
    cr_assert(sk->bbr.full_bw_reached);
    /* nothing in flight (the harness's queue holds no unacked data): DRAIN
     * ends at once */
    cr_assert_eq(sk->bbr.mode, TCP_BBR_PROBE_BW);
    uint64_t bw = tcp_bbr_max_bw(sk);
    uint64_t bdp = bw * 20000 / 1000000;
    for (int i = 0; i < 40; i++)
        sample(h, d, MS(20), 20000, false);
    cr_assert(sk->cwnd >= 2 * bdp && sk->cwnd <= 2 * bdp + 200 * 1024,
              "cwnd %u for a BDP of %llu", sk->cwnd, (unsigned long long)bdp);
    cr_assert(sk->pacing_rate <= bw * 5 / 4 && sk->pacing_rate >= bw * 3 / 4 * 98 / 100,
              "pacing %llu for bw %llu", (unsigned long long)sk->pacing_rate,
              (unsigned long long)bw);
    h_free(h);
}

/* min RTT: a lower sample replaces it at once; 10 s without one, PROBE_RTT
 * (cwnd 4 segments) for 200 ms and a round, then back with cwnd restored. */
Test(tcp_bbr, min_rtt_and_probe_rtt)
{
    struct harness *h = established_bbr();
    struct tcpsm_sock *sk = h->sk;
    uint32_t mss = tcp_send_mss(sk);
    sample(h, 50000, MS(20), 30000, false);
    cr_assert_eq(sk->bbr.min_rtt_us, 20000, "the handshake's 20 ms");
    sample(h, 50000, MS(20), 15000, false);
    cr_assert_eq(sk->bbr.min_rtt_us, 15000);
    for (int i = 0; i < 60; i++)
        sample(h, 50000, MS(100), 25000, false);            /* 6 s at a higher RTT */
    cr_assert_eq(sk->bbr.min_rtt_us, 15000);
    cr_assert_neq(sk->bbr.mode, TCP_BBR_PROBE_RTT);
    uint32_t before = sk->cwnd;
    for (int i = 0; i < 41 && sk->bbr.mode != TCP_BBR_PROBE_RTT; i++)
        sample(h, 50000, MS(100), 25000, false);
    cr_assert_eq(sk->bbr.mode, TCP_BBR_PROBE_RTT, "no PROBE_RTT after 10 s");
    cr_assert_eq(sk->bbr.min_rtt_us, 25000, "the expired min RTT was not replaced");
    cr_assert_eq(sk->cwnd, 4 * mss);
    /* the flight is small (nothing in flight here): 200 ms and a round */
    sample(h, 5000, MS(100), 25000, false);
    cr_assert_eq(sk->bbr.mode, TCP_BBR_PROBE_RTT);
    sample(h, 5000, MS(150), 25000, false);
    cr_assert_neq(sk->bbr.mode, TCP_BBR_PROBE_RTT, "PROBE_RTT did not end");
    cr_assert_geq(sk->cwnd, before < 4 * mss ? 4 * mss : before);
    h_free(h);
}

/* The output is paced: after the first ten segments, each burst waits
 * len / pacing_rate after the one before; bursts are about 1 ms of data. */
Test(tcp_bbr, pacing_spaces_bursts)
{
    struct harness *h = established_bbr();
    struct tcpsm_sock *sk = h->sk;
    static uint8_t d[128 * M];
    h_pattern(d, sizeof d, 3);
    sk->cwnd = 200 * M;
    sk->pacing_rate = 10 * M * 1024;    /* 10 segments per 1/1024 s */
    cr_assert_eq(tcpsm_sock_send(sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    cr_assert_eq(tcp_pace_burst(sk, M, 44 * M), 10 * M);
    struct seg s;
    unsigned n = 0;
    uint32_t bytes = 0;
    while (recv_seg(h, &s)) {
        n++;
        bytes += (uint32_t)s.len;
    }
    cr_assert(bytes <= 20 * M, "%u bytes unpaced", bytes);
    uint64_t t0 = h->now;
    uint64_t waited = h_wait_seg(h, MS(10));
    cr_assert_neq(waited, UINT64_MAX, "the paced output never went");
    uint32_t b2 = 0;
    while (recv_seg(h, &s))
        b2 += (uint32_t)s.len;
    cr_assert(b2 > 0 && b2 <= 10 * M, "burst of %u", b2);
    cr_assert(h->now - t0 <= MS(1), "waited %llu ns", (unsigned long long)(h->now - t0));
    /* from then on the gap is the previous burst's length at the rate (the
     * harness's link has no TSO: one segment a burst) */
    for (int i = 0; i < 5; i++) {
        uint64_t gap = h_wait_seg(h, MS(10));
        uint32_t len = 0;
        while (recv_seg(h, &s))
            len += (uint32_t)s.len;
        cr_assert_eq(len, M);
        uint64_t want = (uint64_t)M * SEC(1) / sk->pacing_rate;
        cr_assert(gap + 1 >= want && gap <= want + 1, "gap %llu ns, want %llu",
                  (unsigned long long)gap, (unsigned long long)want);
    }
    h_free(h);
}

/* ---- whole uploads over the in-memory link ---- */

#define R_A 0xC6120101u
#define R_B 0xC6120102u
#define R_PORT 5003
#define R_SEC 1000000000ull

struct up {
    struct memlink *l;
    struct tcpsm_stack *a, *b;
    struct tcpsm_sock *lsk, *cs, *ss;
    uint64_t now, total, sent, got;
    unsigned bad;
    bool shut, eof;
};

static uint8_t ubyte(uint64_t off)
{
    return (uint8_t)(off * 2654435761u >> 13);
}

static struct tcpsm_stack *mk(struct tcpsm_netdev *dev, uint32_t addr, uint8_t m, uint64_t now,
                              const char *cc)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = addr;
    c.prefix_len = 24;
    memcpy(c.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 2, m }, 6);
    c.secret[0] = 0x5555u * m;
    c.secret[1] = 0x6666u * m;
    c.msl_ms = 1000;
    c.rcvbuf = 1024 * 1024;
    memcpy(c.congestion, cc, strlen(cc));
    struct tcpsm_stack *st = tcpsm_stack_new(&c, dev, now);
    cr_assert_not_null(st);
    return st;
}

static bool up_pump(void *arg)
{
    struct up *u = arg;
    if (!u->ss)
        tcpsm_sock_accept(u->lsk, &u->ss);
    int st = tcpsm_sock_state(u->cs);
    if (st != TCPSM_SYN_SENT && st != TCPSM_SYN_RECEIVED) {
        uint8_t buf[16384];
        while (u->sent < u->total) {
            size_t n = u->total - u->sent < sizeof buf ? (size_t)(u->total - u->sent) : sizeof buf;
            for (size_t k = 0; k < n; k++)
                buf[k] = ubyte(u->sent + k);
            ssize_t r = tcpsm_sock_send(u->cs, buf, n, u->now);
            if (r <= 0)
                break;
            u->sent += (uint64_t)r;
        }
        if (u->sent == u->total && !u->shut) {
            cr_assert_eq(tcpsm_sock_shutdown(u->cs, 1, u->now), 0);
            u->shut = true;
        }
    }
    if (u->ss) {
        uint8_t buf[65536];
        ssize_t r;
        while ((r = tcpsm_sock_recv(u->ss, buf, sizeof buf, 0, u->now)) > 0) {
            for (ssize_t k = 0; k < r; k++)
                u->bad += buf[k] != ubyte(u->got + (uint64_t)k);
            u->got += (uint64_t)r;
        }
        if (r == 0)
            u->eof = true;
    }
    return u->eof;
}

/* A uploads total bytes to B with congestion control cc; the socket is
 * kept (u->cs) for its state. Returns the virtual time it took. */
static uint64_t upload(struct up *u, const struct memlink_params *lp, uint64_t seed,
                       uint64_t total, const char *cc)
{
    memset(u, 0, sizeof *u);
    u->l = memlink_new(lp, seed);
    cr_assert_not_null(u->l);
    u->now = R_SEC;
    memlink_set_now(u->l, u->now);
    u->a = mk(memlink_dev(u->l, 0), R_A, 1, u->now, cc);
    u->b = mk(memlink_dev(u->l, 1), R_B, 2, u->now, "cubic");
    u->total = total;
    cr_assert_eq(tcpsm_sock_new(u->b, &u->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(u->lsk, 0, R_PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(u->lsk, 4), 0);
    cr_assert_eq(tcpsm_sock_new(u->a, &u->cs), 0);
    cr_assert_eq(tcpsm_sock_connect(u->cs, R_B, R_PORT, u->now), -EINPROGRESS);
    uint64_t t0 = u->now, end = u->now + 3600 * R_SEC;
    bool ok = false;
    while (!ok && u->now < end)
        ok = memlink_run(u->l, u->a, u->b, &u->now, end, up_pump, u);
    cr_assert(ok, "upload did not finish: sent %llu, got %llu", (unsigned long long)u->sent,
              (unsigned long long)u->got);
    cr_assert_eq(u->got, total);
    cr_assert_eq(u->bad, 0, "%u bytes differ", u->bad);
    return u->now - t0;
}

static void up_free(struct up *u)
{
    tcpsm_stack_free(u->a);
    tcpsm_stack_free(u->b);
    memlink_free(u->l);
}

/* 20 Mbit/s, 10 ms each way, a queue of 120 frames (about 60 over the
 * BDP): BBR finds the rate and the RTT, and its queue stays small enough
 * that after STARTUP the bottleneck drops little. */
Test(tcp_bbr, upload_finds_bottleneck)
{
    struct memlink_params lp = { .delay_ns = 10000000, .bandwidth_bps = 20000000,
                                 .queue_max = 120 };
    struct up u;
    uint64_t t = upload(&u, &lp, 1, 8u << 20, "bbr");
    struct tcpsm_sock *sk = u.cs;
    cr_assert_eq(sk->cc_algo, TCPSM_CC_BBR);
    uint64_t bw = tcp_bbr_max_bw(sk), link = 20000000 / 8;
    cr_assert(bw >= link * 85 / 100 && bw <= link * 110 / 100, "bandwidth %llu for a link of %llu",
              (unsigned long long)bw, (unsigned long long)link);
    cr_assert(sk->bbr.min_rtt_us >= 20000 && sk->bbr.min_rtt_us < 24000, "min RTT %u us",
              sk->bbr.min_rtt_us);
    cr_assert_eq(sk->bbr.mode == TCP_BBR_PROBE_BW || sk->bbr.mode == TCP_BBR_PROBE_RTT, true,
                 "mode %u", sk->bbr.mode);
    /* TCP_INFO's pacing and delivery rates (the shim maps them to Linux's) */
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(sk, &info);
    cr_assert(info.pacing_rate > link / 2 && info.pacing_rate < link * 2, "pacing %llu",
              (unsigned long long)info.pacing_rate);
    cr_assert(info.delivery_rate > link / 4 && info.delivery_rate <= link * 11 / 10,
              "delivery rate %llu", (unsigned long long)info.delivery_rate);
    cr_assert_geq(info.delivered, (8u << 20) / 100 * 99, "delivered %llu",
                  (unsigned long long)info.delivered);
    /* 8 MiB at 20 Mbit/s is 3.4 s of virtual time */
    cr_assert_lt(t, 5 * R_SEC, "took %llu ms", (unsigned long long)(t / 1000000));
    const struct memlink_stats *s = memlink_stats(u.l, 0);
    cr_assert_lt(s->queue_drop, s->sent / 50, "%llu of %llu dropped at the queue",
                 (unsigned long long)s->queue_drop, (unsigned long long)s->sent);
    up_free(&u);
}

/* 2 % random loss on the same link: BBR keeps the rate (its model is not
 * cut by loss) where CUBIC backs off at every loss. Virtual time. */
Test(tcp_bbr, random_loss_keeps_rate)
{
    struct memlink_params lp = { .delay_ns = 10000000, .bandwidth_bps = 20000000,
                                 .queue_max = 120, .loss_pct = 2 };
    struct up u;
    uint64_t tb = upload(&u, &lp, 2, 4u << 20, "bbr");
    up_free(&u);
    uint64_t tc = upload(&u, &lp, 2, 4u << 20, "cubic");
    cr_assert_eq(u.cs->cc_algo, TCPSM_CC_CUBIC);
    up_free(&u);
    cr_assert_lt(tb, 3 * R_SEC, "BBR took %llu ms for 1.7 s of data",
                 (unsigned long long)(tb / 1000000));
    cr_assert_lt(tb * 2, tc, "BBR %llu ms, CUBIC %llu ms", (unsigned long long)(tb / 1000000),
                 (unsigned long long)(tc / 1000000));
}

/* A rate sample with losses (bytes this ACK marked lost), the delivery
 * time moving with the virtual clock. */
static void sample_lost(struct harness *h, uint64_t delivered, uint64_t interval_ns, uint32_t lost)
{
    sample_full(h, delivered, interval_ns, 20000, false, lost, true);
}

/* A token-bucket policer (Linux bbr_lt_bw_sampling): after 2 MB/s in
 * STARTUP, the path delivers a steady 1 MB/s and loses 25 %: two sampling
 * intervals of 4 rounds, from the first loss, at the same rate make that
 * rate the model's (pacing at gain 1, below the 2 MB/s the max filter
 * still holds), for 48 rounds; then the max filter again. */
Test(tcp_bbr, policer_rate_used)
{
    struct harness *h = established_bbr();
    struct tcpsm_sock *sk = h->sk;
    uint64_t d = 5000;
    for (int i = 0; i < 4; i++, d *= 2)
        sample(h, d, MS(20), 20000, false);
    for (int i = 0; i < 4; i++)
        sample(h, 40000, MS(20), 20000, false);             /* 2 MB/s plateau */
    cr_assert_eq(sk->bbr.mode, TCP_BBR_PROBE_BW);
    cr_assert_eq(tcp_bbr_max_bw(sk), rate(40000, MS(20)));
    for (int i = 0; i < 8; i++) {
        cr_assert_not(sk->bbr.lt_use_bw, "policed after %d rounds", i);
        sample_lost(h, 20000, MS(20), 5000);                /* 1 MB/s, 25 % lost */
    }
    cr_assert(sk->bbr.lt_use_bw, "no policer found");
    cr_assert_eq(sk->bbr.lt_bw, rate(20000, MS(20)), "lt_bw %llu",
                 (unsigned long long)sk->bbr.lt_bw);
    cr_assert_eq(tcp_bbr_max_bw(sk), rate(40000, MS(20)), "the max filter still has 2 MB/s");
    cr_assert_leq(sk->pacing_rate, rate(20000, MS(20)), "pacing %llu above the policed rate",
                  (unsigned long long)sk->pacing_rate);
    /* 48 rounds later the policed rate is dropped and probing resumes */
    for (int i = 0; i < 48; i++)
        sample(h, 20000, MS(20), 20000, false);
    cr_assert_not(sk->bbr.lt_use_bw);
    h_free(h);
}

/* Random loss at a steady rate is no policer when the loss rate is low
 * (under 20 %): the model keeps the max filter. */
Test(tcp_bbr, low_loss_is_no_policer)
{
    struct harness *h = established_bbr();
    struct tcpsm_sock *sk = h->sk;
    uint64_t d = 5000;
    for (int i = 0; i < 4; i++, d *= 2)
        sample(h, d, MS(20), 20000, false);
    for (int i = 0; i < 4; i++)
        sample(h, 40000, MS(20), 20000, false);
    for (int i = 0; i < 16; i++)
        sample_lost(h, 40000, MS(20), 2000);                /* 5 % */
    cr_assert_not(sk->bbr.lt_use_bw);
    h_free(h);
}

/* An RTO undone (F-RTO: the ACK of original data never sent again) resets
 * what the episode began, as Linux's bbr_undo_cwnd does: the policer's
 * sampling that the RTO's losses started (bbr_reset_lt_bw_sampling) and
 * the full-pipe detection (full_bw, full_bw_cnt); before, the sampling
 * went on counting the data the timeout wrongly took as lost. */
Test(tcp_bbr, rto_undo_resets_lt_sampling)
{
    struct harness *h = established_bbr();
    struct tcpsm_sock *sk = h->sk;
    sk->rttvar_us = 5000;
    sk->rto_us = 200000;
    static uint8_t d[20 * M];
    h_pattern(d, sizeof(d), 5);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    h_drain(h);
    for (int i = 0; i < 8 && !tcpsm_stack_counters(h->st)->tcp_rto; i++) {
        cr_assert_neq(h_wait_seg(h, SEC(2)), UINT64_MAX, "no RTO");
        h_drain(h);
    }
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rto, 1);
    cr_assert(sk->loss_state);
    cr_assert(sk->bbr.lt_is_sampling, "the RTO's losses start the policer's sampling");
    sk->bbr.lt_bw = 123456;             /* a first interval's rate, as if measured */
    sk->bbr.full_bw = 654321;
    sk->bbr.full_bw_cnt = 2;
    sk->pace_next = 0;                  /* the pacing lets the new data go now */
    h_ack_sack(h, b + M, b, b);         /* the original head: F-RTO step 2, new data */
    h_drain(h);
    cr_assert(sk->loss_state);
    h_ack_sack(h, b + 5 * M, b, b);     /* originals never sent again: spurious */
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_spurious_rto, 1);
    cr_assert_not(sk->loss_state);
    cr_assert_not(sk->bbr.lt_is_sampling, "the sampling goes on after the undo");
    cr_assert_eq(sk->bbr.lt_bw, 0);
    cr_assert_not(sk->bbr.lt_use_bw);
    cr_assert_eq(sk->bbr.full_bw_cnt, 0);
    cr_assert_lt(sk->bbr.full_bw, 654321u, "full_bw %llu", (unsigned long long)sk->bbr.full_bw);
    h_free(h);
}
