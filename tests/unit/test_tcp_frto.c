/* Spurious retransmission timeouts and their undo (SACK connections),
 * through the harness: F-RTO (RFC 5682 3.1, SACK-enhanced, as Linux with
 * tcp_frto=2), the timestamps' Eifel detection of a timeout (RFC 3522 with
 * the RFC 4015 response, Linux tcp_try_undo_loss), the D-SACK undo of one
 * (RFC 3708), and the ssthresh of a repeated timeout (RFC 5681 3.1). */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"
#include "tcp_int.h"

#define M 1460u

/* ESTABLISHED with SACK (and timestamps if ts), an RTT of 20 ms. */
static struct harness *established(bool ts)
{
    struct harness *h = h_new(NULL);
    SOCK_ESTABLISHED_WITH(h, .sack_perm = true, .ts = ts, .tsval = 100, .tsecr = ts ? 1 : 0);
    cr_assert_eq(h->sk->ts_ok, ts);
    h->sk->min_rtt_us = h->sk->srtt_us = 20000;
    h->sk->rttvar_us = 5000;
    h->sk->rto_us = 200000;
    return h;
}

/* 20 segments queued, the initial window's 10 sent; returns the first. */
static uint32_t flight_of_ten(struct harness *h)
{
    static uint8_t d[20 * M];
    h_pattern(d, sizeof(d), 3);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    for (uint32_t i = 0; i < 10; i++)
        EXPECT_SEG(h, .seq = b + i * M, .len = M);
    expect_no_seg(h);
    return b;
}

static const struct tcpsm_counters *cnt(struct harness *h)
{
    return tcpsm_stack_counters(h->st);
}

/* The tail loss probe (RFC 8985 7: new data, 2 SRTT after the flight)
 * goes first, then the timeout fires and the head goes again alone.
 * Returns the head's retransmission. */
static struct seg rto_resends_head(struct harness *h, uint32_t b)
{
    struct seg s;
    for (int i = 0; i < 4; i++) {
        cr_assert_neq(h_wait_seg(h, SEC(2)), UINT64_MAX, "no RTO");
        cr_assert(recv_seg(h, &s));
        if (s.seq == b)
            break;                      /* else the probe */
    }
    cr_assert_eq(s.seq, b, "the head after the RTO");
    expect_no_seg(h);
    cr_assert_eq(cnt(h)->tcp_rto, 1);
    cr_assert(h->sk->loss_state);
    return s;
}

/* The flight was only delayed (the ACKs come late): after the RTO the
 * first ACK covers the head; F-RTO sends new data instead of the next
 * retransmission, and the ACK of original data never sent again shows
 * the timeout was spurious: cwnd and ssthresh as before, nothing resent. */
Test(tcp_frto, spurious_timeout_undone)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h);
    uint32_t cwnd0 = h->sk->cwnd, ssthresh0 = h->sk->ssthresh;
    rto_resends_head(h, b);
    cr_assert_lt(h->sk->cwnd, cwnd0);
    h_ack_sack(h, b + M, b, b);           /* the (delayed) ACK of the original head */
    /* step 2: new data, the two segments cwnd now allows, from SND.MAX
     * (the tail probe sent the 11th) */
    EXPECT_SEG(h, .seq = b + 11 * M, .len = M);
    EXPECT_SEG(h, .seq = b + 12 * M, .len = M);
    expect_no_seg(h);
    h_ack_sack(h, b + 5 * M, b, b);       /* originals 2-5, never sent again */
    cr_assert_eq(cnt(h)->tcp_spurious_rto, 1);
    cr_assert_eq(cnt(h)->tcp_undo, 1);
    cr_assert_not(h->sk->loss_state);
    cr_assert_not(h->sk->in_recovery);
    cr_assert_geq(h->sk->cwnd, cwnd0, "cwnd %u, before the RTO %u", h->sk->cwnd, cwnd0);
    cr_assert_eq(h->sk->ssthresh, ssthresh0);
    cr_assert_eq(h->sk->rtxq.lost, 0, "nothing left marked lost");
    /* what goes next is new data, no retransmission of 6-10 */
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.len == 0 || seq_ge(s.seq, b + 13 * M), "resent %u after the undo",
                  s.seq - b);
    h_free(h);
}

/* The flight was lost: after the new data, the peer's SACKs show them
 * arrive while the old segments do not: conventional recovery, the lost
 * ones are sent again, nothing undone. */
Test(tcp_frto, real_loss_goes_on)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h);
    rto_resends_head(h, b);
    h_ack_sack(h, b + M, b, b);           /* the head's retransmission arrived */
    EXPECT_SEG(h, .seq = b + 11 * M, .len = M);
    EXPECT_SEG(h, .seq = b + 12 * M, .len = M);
    h_ack_sack(h, b + M, b + 11 * M, b + 12 * M);     /* step 3.a: the loss was real */
    cr_assert_not(h->sk->frto);
    cr_assert_eq(cnt(h)->tcp_undo, 0);
    struct seg s = EXPECT_SEG(h, .len = M);
    cr_assert_eq(s.seq, b + M, "the next lost one resent, got %u", s.seq - b);
    cr_assert(h->sk->loss_state);
    h_free(h);
}

/* Timestamps: the first ACK after the timeout echoes the original head's
 * TSval, older than the retransmission's: the original arrived (Eifel),
 * the timeout is undone at once. */
Test(tcp_frto, timestamps_undo_timeout)
{
    struct harness *h = established(true);
    uint32_t b = h->lseq;
    static uint8_t d[10 * M];
    h_pattern(d, sizeof(d), 5);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    struct seg first = EXPECT_SEG(h, .seq = b);
    h_drain(h);
    uint32_t cwnd0 = h->sk->cwnd;
    struct seg again = rto_resends_head(h, b);
    cr_assert(seq_gt(again.tsval, first.tsval), "the retransmission's TSval is newer");
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + first.len, .win = H_RWIN, .ts = true,
         .tsval = 200, .tsecr = first.tsval);
    cr_assert_eq(cnt(h)->tcp_loss_undo, 1);
    cr_assert_not(h->sk->loss_state);
    cr_assert_geq(h->sk->cwnd, cwnd0);
    h_free(h);
}

/* Without F-RTO's evidence and with the retransmission's echo: no undo. */
Test(tcp_frto, timestamps_of_the_retransmission_keep_it)
{
    struct harness *h = established(true);
    uint32_t b = h->lseq;
    static uint8_t d[10 * M];
    h_pattern(d, sizeof(d), 5);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    struct seg first = EXPECT_SEG(h, .seq = b);
    h_drain(h);
    struct seg again = rto_resends_head(h, b);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + first.len, .win = H_RWIN, .ts = true,
         .tsval = 200, .tsecr = again.tsval);
    cr_assert_eq(cnt(h)->tcp_undo, 0);
    cr_assert(h->sk->loss_state);
    h_free(h);
}

/* RFC 5681 3.1: a second timeout of the same data leaves ssthresh as the
 * first set it (its cwnd of one segment would halve it to the minimum). */
Test(tcp_frto, repeated_timeout_keeps_ssthresh)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h);
    rto_resends_head(h, b);
    uint32_t ss1 = h->sk->ssthresh;
    cr_assert_neq(h_wait_seg(h, SEC(2)), UINT64_MAX, "no second RTO");
    EXPECT_SEG(h, .seq = b, .len = M);
    expect_no_seg(h);
    cr_assert_eq(cnt(h)->tcp_rto, 2);
    cr_assert_eq(h->sk->ssthresh, ss1, "ssthresh %u after the second RTO, %u after the first",
                 h->sk->ssthresh, ss1);
    h_free(h);
}
