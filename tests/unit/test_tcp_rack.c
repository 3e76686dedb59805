/* Loss recovery on the retransmit queue, through the harness: RACK's
 * decisions (RFC 8985 6: the reordering window and its timer, DupThresh
 * speed when no reordering was seen, the window kept once it was, a lost
 * retransmission found without an RTO), PRR's sending budget (RFC 6937)
 * and HyStart++'s exit from slow start (RFC 9406). Virtual time only. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"
#include "tcp_int.h"

#define M 1460u

/* ESTABLISHED with SACK, no timestamps, and an RTT of 20 ms as if
 * measured: RACK's reordering window is min_rtt / 4 = 5 ms. */
static struct harness *established_rack(uint32_t sndbuf)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    if (sndbuf)
        cfg.sndbuf = sndbuf;
    struct harness *h = h_new(&cfg);
    SOCK_ESTABLISHED_WITH(h, .sack_perm = true);
    h->sk->min_rtt_us = h->sk->srtt_us = 20000;
    h->sk->rttvar_us = 5000;
    return h;
}

static void send_segs(struct harness *h, uint32_t n)
{
    static uint8_t d[64 * M];
    cr_assert(n <= 64);
    h_pattern(d, n * M, 7);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, n * M, h->now), (ssize_t)(n * M));
}

static const struct tcpsm_counters *cnt(struct harness *h)
{
    return tcpsm_stack_counters(h->st);
}

/* One segment SACKed above a hole, no reordering seen: the hole is lost
 * only when the reordering window (5 ms) has passed since it should have
 * arrived; the RACK timer sends it then. */
Test(tcp_rack, waits_reordering_window_then_timer)
{
    struct harness *h = established_rack(0);
    uint32_t b = h->lseq;
    send_segs(h, 4);
    for (uint32_t i = 0; i < 4; i++)
        EXPECT_SEG(h, .seq = b + i * M, .len = M);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b + M, b + 2 * M);
    expect_no_seg(h);
    cr_assert_eq(cnt(h)->tcp_rack_lost, 0);
    cr_assert_neq(h->sk->rack.reo_at, 0, "no RACK timer");
    uint64_t waited = h_wait_seg(h, MS(50));
    cr_assert(waited >= MS(4) && waited <= MS(6), "RACK timer after %llu us",
              (unsigned long long)(waited / 1000));
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert_eq(cnt(h)->tcp_rack_lost, 1);
    cr_assert_eq(cnt(h)->tcp_fast_retrans, 1);
    cr_assert_eq(cnt(h)->tcp_rto, 0);
    h_free(h);
}

/* DupThresh segments SACKed and no reordering seen: the window is zero,
 * the hole goes at once (RFC 8985 6.2 step 4). */
Test(tcp_rack, dupthresh_sacked_retransmits_at_once)
{
    struct harness *h = established_rack(0);
    uint32_t b = h->lseq;
    send_segs(h, 5);
    h_drain(h);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b + M, b + 4 * M);
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert_eq(cnt(h)->tcp_rack_lost, 1, "only the hole is lost");
    cr_assert(h->sk->in_recovery);
    h_free(h);
}

/* Once a segment arrived late (delivered below the highest delivered,
 * never resent), three SACKed segments no longer mean loss: the window
 * applies, and the hole goes only when it passed. */
Test(tcp_rack, reordering_seen_keeps_window)
{
    struct harness *h = established_rack(0);
    uint32_t b = h->lseq;
    send_segs(h, 6);
    h_drain(h);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b + M, b + 2 * M);
    h_ack_sack(h, b + 2 * M, b + 2 * M, b + 2 * M);      /* 0 arrives late: reordering */
    cr_assert(h->sk->rack.reord, "reordering not seen");
    expect_no_seg(h);
    h_ack_sack(h, b + 2 * M, b + 3 * M, b + 6 * M);      /* 3 SACKed above the hole at 2 */
    expect_no_seg(h);
    cr_assert_eq(cnt(h)->tcp_rack_lost, 0);
    cr_assert_neq(h_wait_seg(h, MS(50)), UINT64_MAX);
    EXPECT_SEG(h, .seq = b + 2 * M, .len = M);
    cr_assert_eq(cnt(h)->tcp_rack_lost, 1);
    h_free(h);
}

/* A retransmission that is lost again is found when data sent after it
 * is delivered: resent without waiting for the RTO (RFC 8985 3.3.3). */
Test(tcp_rack, lost_retransmission_without_rto)
{
    struct harness *h = established_rack(128 * 1024);
    uint32_t b = h->lseq;
    send_segs(h, 14);
    for (uint32_t i = 0; i < 10; i++)                  /* IW10 */
        EXPECT_SEG(h, .seq = b + i * M, .len = M);
    expect_no_seg(h);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b + M, b + 10 * M);                     /* 0 lost, the rest arrived */
    EXPECT_SEG(h, .seq = b, .len = M);                 /* the retransmission */
    struct seg s;
    bool new10 = false;
    while (recv_seg(h, &s))
        new10 |= s.seq == b + 10 * M;
    cr_assert(new10, "PRR sent no new data after the retransmission");
    h_advance(h, MS(20));
    /* the retransmission is lost; segment 10, sent after it, arrives */
    h_ack_sack(h, b, b + M, b + 11 * M);
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert_eq(cnt(h)->tcp_rack_lost, 2);
    cr_assert_eq(cnt(h)->tcp_rto, 0);
    h_ack_sack(h, b + 14 * M, b + 14 * M, b + 14 * M);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_free(h);
}

/* PRR (RFC 6937 3): while pipe is above ssthresh, each ACK lets out
 * ssthresh/RecoverFS of the data it delivered (about 0.7 of it with
 * CUBIC), never a burst; at the end of
 * recovery cwnd is ssthresh. */
Test(tcp_rack, prr_sends_in_proportion)
{
    struct harness *h = established_rack(256 * 1024);
    struct tcpsm_sock *sk = h->sk;
    uint32_t b = h->lseq;
    sk->cwnd = 20 * M;
    send_segs(h, 40);
    for (uint32_t i = 0; i < 20; i++)
        EXPECT_SEG(h, .seq = b + i * M, .len = M);
    expect_no_seg(h);
    h_advance(h, MS(20));
    /* 1, 2, 3 SACKed one by one: the pipe leaves SACKed data out, so
     * each of the first two lets a new segment out; at the third, 0 is lost */
    h_ack_sack(h, b, b + M, b + 2 * M);
    EXPECT_SEG(h, .seq = b + 20 * M, .len = M);
    h_ack_sack(h, b, b + M, b + 3 * M);
    EXPECT_SEG(h, .seq = b + 21 * M, .len = M);
    expect_no_seg(h);
    h_ack_sack(h, b, b + M, b + 4 * M);
    cr_assert(sk->in_recovery);
    cr_assert_eq(sk->ssthresh, 14 * M, "CUBIC's beta 0.7 of 20 segments: %u", sk->ssthresh / M);
    cr_assert_eq(sk->recover_fs, 22 * M);
    unsigned sent = 0;
    struct seg s;
    while (recv_seg(h, &s))
        sent++;
    cr_assert_eq(sent, 1, "the fast retransmit alone (%u segments)", sent);
    /* eight more ACKs, one segment delivered each: PRR lets out
     * ceil(9 * 14 / 22) = 6 in all, at most one per ACK */
    for (uint32_t k = 4; k < 12; k++) {
        h_ack_sack(h, b, b + M, b + (k + 1) * M);
        unsigned now = 0;
        while (recv_seg(h, &s))
            now++;
        cr_assert_leq(now, 1, "a burst of %u segments on one ACK", now);
        sent += now;
    }
    cr_assert_eq(sent, 6, "PRR sent %u segments for 9 delivered", sent);
    /* everything arrives: recovery ends at ssthresh */
    h_advance(h, MS(20));
    h_ack_sack(h, sk->snd_max, sk->snd_max, sk->snd_max);
    cr_assert(!sk->in_recovery);
    cr_assert_eq(sk->cwnd, 14 * M, "cwnd %u after recovery", sk->cwnd / M);
    h_free(h);
}

/* Feed HyStart++ one round: 8 RTT samples and ACKs, then the ACK that
 * ends the round. Returns cwnd's growth in the round. */
static uint32_t hs_round(struct tcpsm_sock *sk, uint32_t rtt_us)
{
    uint32_t mss = tcp_send_mss(sk), before = sk->cwnd;
    for (int i = 0; i < 8; i++) {
        tcp_hystart_rtt(sk, rtt_us);
        sk->cwnd += tcp_hystart_ss_inc(sk, mss);
    }
    sk->snd_una = sk->hs.round_end;
    sk->snd_nxt = sk->snd_una + sk->cwnd;
    sk->cwnd += tcp_hystart_ss_inc(sk, mss);
    return sk->cwnd - before;
}

/* RFC 9406 4.2: a round whose minimum RTT is RttThresh (here 4 ms) above
 * the last one's enters Conservative Slow Start (a quarter of the
 * growth); an RTT back below the baseline returns to slow start; five CSS
 * rounds end slow start with ssthresh = cwnd. */
Test(tcp_hystart, delay_increase_then_css_then_exit)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    struct tcpsm_sock *sk = h->sk;
    uint32_t mss = tcp_send_mss(sk);
    sk->ssthresh = 1u << 30;
    tcp_hystart_init(sk);
    sk->snd_una = sk->hs.round_end;     /* the first round ends at once */
    cr_assert_eq(hs_round(sk, 10000), 9 * mss, "slow start: one MSS per MSS ACKed");
    cr_assert_eq(hs_round(sk, 11000), 9 * mss, "1 ms more is below RttThresh");
    cr_assert_eq(sk->hs.phase, TCP_HS_SS);
    uint32_t g = hs_round(sk, 16000);   /* 5 ms above the last round's 11 */
    cr_assert_eq(sk->hs.phase, TCP_HS_CSS);
    cr_assert(g < 9 * mss && g >= 2 * mss, "CSS growth %u", g);
    /* an RTT below the CSS baseline: the increase was jitter */
    hs_round(sk, 9000);
    cr_assert_eq(sk->hs.phase, TCP_HS_SS, "spurious CSS not undone");
    hs_round(sk, 9000);
    hs_round(sk, 20000);
    cr_assert_eq(sk->hs.phase, TCP_HS_CSS);
    /* the round CSS began in was its first; three more grow by a
     * quarter MSS per ACK; the fifth one's last ACK ends slow start */
    for (int r = 0; r < 4; r++)
        cr_assert_eq(hs_round(sk, 20000), (r < 3 ? 9 : 8) * (mss / 4), "CSS round %d", r + 2);
    cr_assert_eq(sk->hs.phase, TCP_HS_DONE);
    cr_assert_eq(sk->ssthresh, sk->cwnd, "slow start ends with ssthresh = cwnd");
    /* the rounds moved the sequence variables by hand: back in order for
     * the audit h_free runs */
    sk->snd_nxt = sk->snd_max = sk->snd_una;
    h_free(h);
}

/* A loss ends HyStart++ for the connection: after recovery, plain slow
 * start or congestion avoidance (RFC 9406 4.3). */
Test(tcp_hystart, loss_ends_it)
{
    struct harness *h = established_rack(0);
    uint32_t b = h->lseq;
    cr_assert_eq(h->sk->hs.phase, TCP_HS_SS);
    send_segs(h, 5);
    h_drain(h);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b + M, b + 4 * M);
    cr_assert(h->sk->in_recovery);
    cr_assert_eq(h->sk->hs.phase, TCP_HS_DONE);
    h_free(h);
}

/* The peer agreed to SACK but its duplicate ACKs carry no blocks: three of
 * them still mark the first segment lost (the DupThresh fallback). */
Test(tcp_rack, dupthresh_fallback_without_blocks)
{
    struct harness *h = established_rack(0);
    uint32_t b = h->lseq;
    send_segs(h, 6);
    h_drain(h);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b, b);
    h_ack_sack(h, b, b, b);
    expect_no_seg(h);
    h_ack_sack(h, b, b, b);
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert(h->sk->in_recovery);
    cr_assert_eq(cnt(h)->tcp_rto, 0);
    h_free(h);
}

/* After an RTO the segments the peer SACKed are not sent again (the RTO
 * marks only the others lost, Linux tcp_timeout_mark_lost), and SND.NXT is
 * not rewound: the holes go one by one as cwnd grows from one segment. */
Test(tcp_rack, rto_resends_only_what_was_not_sacked)
{
    struct harness *h = established_rack(0);
    uint32_t b = h->lseq;
    send_segs(h, 4);
    h_drain(h);
    h_advance(h, MS(20));
    h_ack_sack(h, b, b + 2 * M, b + 4 * M);                  /* 0 and 1 missing */
    struct seg s;
    /* the RACK timer: 0 and 1 lost; nothing in flight, PRR lets one go */
    cr_assert_neq(h_wait_seg(h, MS(50)), UINT64_MAX);
    EXPECT_SEG(h, .seq = b, .len = M);
    expect_no_seg(h);
    /* that retransmission is lost too, and no ACK comes: the RTO */
    cr_assert_neq(h_wait_seg(h, SEC(2)), UINT64_MAX);
    cr_assert_eq(cnt(h)->tcp_rto, 1);
    EXPECT_SEG(h, .seq = b, .len = M);
    expect_no_seg(h);                                  /* cwnd: one segment */
    cr_assert_eq(h->sk->snd_nxt, b + 4 * M, "SND.NXT rewound");
    h_ack_sack(h, b + M, b + 2 * M, b + 4 * M);
    EXPECT_SEG(h, .seq = b + M, .len = M);
    while (recv_seg(h, &s))
        cr_assert(!s.len || s.seq + s.len <= b + 2 * M, "SACKed data at +%u sent again",
                  s.seq - b);
    h_ack_sack(h, b + 4 * M, b + 4 * M, b + 4 * M);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    expect_no_seg(h);
    h_free(h);
}
