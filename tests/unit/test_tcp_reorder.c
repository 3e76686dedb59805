/* Reordering is not loss: a reordered duplicate ACK passes PAWS (RFC 7323
 * 5.3, Linux tcp_disordered_ack) so its SACK blocks count, and a recovery
 * whose every retransmission comes back as a D-SACK (RFC 2883) has its
 * cwnd reduction undone (RFC 3708, Linux tcp_try_undo_dsack), during the
 * recovery or after it ended. Crafted segments, virtual time. */
#include <string.h>

#include "tcp_harness.h"
#include "tcp_int.h"

#define M 1460u

/* The peer ACKs ack and reports the block [l, r): a SACK above ack, a
 * D-SACK (RFC 2883 4) at or below it. */
static void ack_blk(struct harness *h, uint32_t ack, uint32_t l, uint32_t r, bool ts,
                    uint32_t tsval)
{
    uint8_t o[40];
    uint32_t blk[1][2] = { { l, r } };
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = ack, .win = H_RWIN, .ts = ts, .tsval = tsval,
         .raw_opts = o, .raw_optlen = h_sack_opt(o, 1, blk));
}

/* ESTABLISHED with SACK (and timestamps if ts), NODELAY, an RTT of 20 ms
 * as if measured, room for 32 segments. */
static struct harness *established(bool ts)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.sndbuf = 64 * M;
    struct harness *h = h_new(&cfg);
    SOCK_ESTABLISHED_WITH(h, .sack_perm = true, .ts = ts, .tsval = 1000);
    h->sk->min_rtt_us = h->sk->srtt_us = 20000;
    h->sk->rttvar_us = 5000;
    h->sk->rto_us = 200000;
    return h;
}

static void send_segs(struct harness *h, uint32_t n, uint32_t mss)
{
    static uint8_t d[32 * M];
    cr_assert(n <= 32);
    h_pattern(d, n * mss, 9);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, n * mss, h->now), (ssize_t)(n * mss));
}

static const struct tcpsm_counters *cnt(struct harness *h)
{
    return tcpsm_stack_counters(h->st);
}

/* A pure duplicate ACK whose TSval is a little older than TS.Recent (the
 * network swapped two ACKs) is processed: its SACK block counts and no
 * duplicate ACK answers it. One older than the replay window (one RTO)
 * is still refused by PAWS. */
Test(tcp_reorder, paws_passes_disordered_dup_ack)
{
    struct harness *h = established(true);
    uint32_t mss = M - 12;              /* the timestamp option's room */
    uint32_t b = h->lseq;
    send_segs(h, 4, mss);
    h_drain(h);
    h_advance(h, MS(20));
    ack_blk(h, b, b + mss, b + 2 * mss, true, 2000);
    cr_assert_eq(h->sk->rtxq.sacked, mss);
    cr_assert_eq(h->sk->ts_recent, 2000);
    uint64_t drops = cnt(h)->tcp_drop_window;
    ack_blk(h, b, b + 2 * mss, b + 3 * mss, true, 1990);    /* sent before the last one */
    cr_assert_eq(h->sk->rtxq.sacked, 2 * mss, "the reordered ACK's SACK block was dropped");
    cr_assert_eq(cnt(h)->tcp_drop_window, drops);
    cr_assert_eq(cnt(h)->tcp_paws_disordered_ack, 1);
    cr_assert_eq(h->sk->ts_recent, 2000, "TS.Recent moved back");
    expect_no_seg(h);
    /* 1000 ticks older: beyond one RTO (200 ms), PAWS drops it and answers */
    ack_blk(h, b, b + 3 * mss, b + 4 * mss, true, 1000);
    cr_assert_eq(h->sk->rtxq.sacked, 2 * mss);
    cr_assert_eq(cnt(h)->tcp_drop_window, drops + 1);
    EXPECT_SEG(h, .flags = ACK, .len = 0, .tsecr = 2000);
    /* data with an old timestamp is not an ACK PAWS may let through */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .ts = true, .tsval = 1995,
         .data = "x", .len = 1);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    cr_assert_eq(cnt(h)->tcp_drop_window, drops + 2);
    h_free(h);
}

/* Segment 0 is late, not lost: three SACKed segments start a recovery
 * that reduces cwnd (to 0.7 of it with CUBIC) and resends 0. Then everything is
 * ACKed and the peer reports the resent 0 as a duplicate: the reduction
 * is undone after the recovery has ended. */
Test(tcp_reorder, dsack_undoes_after_recovery)
{
    struct harness *h = established(false);
    struct tcpsm_sock *sk = h->sk;
    uint32_t b = h->lseq;
    send_segs(h, 10, M);
    h_drain(h);
    h_advance(h, MS(20));
    uint32_t before = sk->cwnd;
    ack_blk(h, b, b + M, b + 4 * M, false, 0);
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert(sk->in_recovery);
    h_drain(h);
    h_advance(h, MS(20));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 10 * M, .win = H_RWIN);
    cr_assert(!sk->in_recovery);
    cr_assert_lt(sk->cwnd, before, "no reduction to undo");
    ack_blk(h, b + 10 * M, b, b + M, false, 0);        /* D-SACK of the resent 0 */
    cr_assert_geq(sk->cwnd, before, "cwnd %u not restored to %u", sk->cwnd, before);
    cr_assert_eq(cnt(h)->tcp_dsack_undo, 1);
    cr_assert_eq(cnt(h)->tcp_undo, 1);
    cr_assert(sk->rack.reord);
    h_free(h);
}

/* The D-SACK arrives while the recovery goes on: the recovery ends at
 * once, cwnd and ssthresh are back and nothing stays marked lost. */
Test(tcp_reorder, dsack_undoes_during_recovery)
{
    struct harness *h = established(false);
    struct tcpsm_sock *sk = h->sk;
    uint32_t b = h->lseq;
    send_segs(h, 10, M);
    h_drain(h);
    h_advance(h, MS(20));
    uint32_t before = sk->cwnd, ss = sk->ssthresh;
    ack_blk(h, b, b + M, b + 4 * M, false, 0);
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert(sk->in_recovery);
    h_drain(h);
    ack_blk(h, b + 4 * M, b, b + M, false, 0);         /* 0 came twice, 1-3 ACKed */
    cr_assert(!sk->in_recovery, "still in recovery after a D-SACK undo");
    cr_assert_geq(sk->cwnd, before);
    cr_assert_eq(sk->ssthresh, ss);
    cr_assert_eq(sk->rtxq.lost, 0);
    cr_assert_eq(cnt(h)->tcp_dsack_undo, 1);
    h_free(h);
}

/* Two segments resent, only one reported back as a duplicate: the other
 * was a real loss, the reduction stays. */
Test(tcp_reorder, partial_dsack_not_undone)
{
    struct harness *h = established(false);
    struct tcpsm_sock *sk = h->sk;
    uint32_t b = h->lseq;
    send_segs(h, 10, M);
    h_drain(h);
    h_advance(h, MS(20));
    uint32_t blk[2][2] = { { b + 2 * M, b + 6 * M } };
    uint8_t o[40];
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .raw_opts = o,
         .raw_optlen = h_sack_opt(o, 1, blk));
    EXPECT_SEG(h, .seq = b, .len = M);
    EXPECT_SEG(h, .seq = b + M, .len = M);
    cr_assert(sk->in_recovery);
    uint32_t reduced = sk->ssthresh;
    h_drain(h);
    h_advance(h, MS(20));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 10 * M, .win = H_RWIN);
    ack_blk(h, b + 10 * M, b, b + M, false, 0);        /* 0 was a duplicate, 1 was lost */
    cr_assert_eq(cnt(h)->tcp_dsack_undo, 0);
    cr_assert_eq(sk->ssthresh, reduced);
    cr_assert_lt(sk->cwnd, 10 * M);
    h_free(h);
}

/* Sub-millisecond RTTs: the timestamps' millisecond reads 0 for them, and
 * the minimum RTT (RACK's reordering window, BBR's BDP) became 1 us. The
 * SYN's send time and the retransmit queue's give microseconds. */
Test(tcp_reorder, rtt_in_microseconds)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    struct harness *h = h_new(&cfg);
    sock_syn_sent(h);
    h_advance(h, US(400));
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .sack_perm = true, .ts = true, .tsval = 1000, .tsecr = 0);
    h->rseq = h->risn + 1;
    struct seg a = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    struct tcpsm_sock *sk = h->sk;
    cr_assert(sk->min_rtt_us >= 399 && sk->min_rtt_us <= 401, "handshake min RTT %u us",
              sk->min_rtt_us);
    cr_assert_eq(tcpsm_sock_setopt(sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 5);
    cr_assert_eq(tcpsm_sock_send(sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = sizeof d);
    h_advance(h, US(300));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + (uint32_t)sizeof d, .win = H_RWIN,
         .ts = true, .tsval = 1001, .tsecr = s.tsval);
    cr_assert(sk->min_rtt_us >= 299 && sk->min_rtt_us <= 301, "data min RTT %u us", sk->min_rtt_us);
    (void)a;
    h_free(h);
}

/* SACK: a segment ACKed below what was SACKed, never sent again, was
 * overtaken: tp->reordering follows the distance (Linux
 * tcp_check_sack_reordering; TCP_INFO tcpi_reordering, tcpi_reord_seen). */
Test(tcp_reorder, sack_reordering_distance)
{
    struct harness *h = established(false);
    uint32_t b = h->lseq;
    send_segs(h, 6, M);
    h_drain(h);
    struct tcpsm_tcp_info i;
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.reordering, 3);
    /* 5-6 arrive first (two: below DupThresh, RACK waits its window) */
    ack_blk(h, b, b + 4 * M, b + 6 * M, false, 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 6 * M, .win = H_RWIN);  /* then 1-4 */
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.reordering, 5, "segment 1 was 5 segments behind the highest: %u", i.reordering);
    cr_assert_eq(i.reord_seen, 1);
    cr_assert_eq(cnt(h)->tcp_fast_retrans, 0, "no time passed: RACK waited");
    h_free(h);
}

/* ESTABLISHED without SACK, with timestamps, NODELAY, RTT 20 ms. */
static struct harness *established_reno(void)
{
    struct harness *h = h_new(NULL);
    SOCK_ESTABLISHED_WITH(h, .ts = true, .tsval = 1000);
    cr_assert(!h->sk->sack_ok && h->sk->ts_ok);
    h->sk->min_rtt_us = h->sk->srtt_us = 20000;
    h->sk->rttvar_us = 5000;
    h->sk->rto_us = 200000;
    return h;
}

static void reno_dupack(struct harness *h, uint32_t ack, uint32_t *tsval, uint32_t tsecr)
{
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = ack, .win = H_RWIN, .ts = true,
         .tsval = ++*tsval, .tsecr = tsecr);
}

/* Without SACK: a fast retransmit that the timestamps show was spurious
 * (the original arrived after three others) raises DupThresh to four
 * (Linux raises tp->reordering on such an undo; here to the duplicates
 * seen plus one): the same reordering again costs no retransmission. */
Test(tcp_reorder, reno_dupthresh_follows_reordering)
{
    struct harness *h = established_reno();
    uint32_t m = tcp_send_mss(h->sk), tv = 1000;
    uint32_t b = h->lseq;
    send_segs(h, 8, m);
    struct seg first = EXPECT_SEG(h, .seq = b, .len = m);
    h_drain(h);
    h_advance(h, MS(20));
    for (int k = 0; k < 3; k++)
        reno_dupack(h, b, &tv, first.tsval);
    EXPECT_SEG(h, .seq = b, .len = m);          /* fast retransmit at three */
    cr_assert_eq(cnt(h)->tcp_fast_retrans, 1);
    h_drain(h);
    reno_dupack(h, b + 8 * m, &tv, first.tsval); /* the original's echo: it arrived */
    cr_assert_eq(cnt(h)->tcp_undo, 1);
    struct tcpsm_tcp_info i;
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.reordering, 4, "reordering %u", i.reordering);
    /* the same again: three duplicates are reordering now, the fourth a loss */
    b = h->lseq = b + 8 * m;
    send_segs(h, 8, m);
    first = EXPECT_SEG(h, .seq = b, .len = m);
    h_drain(h);
    h_advance(h, MS(20));
    for (int k = 0; k < 3; k++)
        reno_dupack(h, b, &tv, first.tsval);
    expect_no_seg(h);
    cr_assert_eq(cnt(h)->tcp_fast_retrans, 1);
    reno_dupack(h, b, &tv, first.tsval);
    EXPECT_SEG(h, .seq = b, .len = m);
    cr_assert_eq(cnt(h)->tcp_fast_retrans, 2);
    h_free(h);
}
