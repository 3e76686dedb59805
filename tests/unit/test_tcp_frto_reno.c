/* Connections without SACK after an RTO, as Linux's Reno (tcp_enter_loss,
 * tcp_process_loss): F-RTO (RFC 5682, the cumulative ACK standing in for
 * SACK), the timestamps' undo of a timeout (RFC 3522, tcp_try_undo_loss),
 * and the duplicate ACKs counted as delivered segments never more than
 * those in flight less the hole, more of them being reordering
 * (tcp_limit_reno_sacked / tcp_check_reno_reordering). */
#include <string.h>

#include "tcp_harness.h"
#include "tcp_int.h"

/* the MSS of the connection under test: 1460, with timestamps 1448 */
static uint32_t M = 1460;

/* ESTABLISHED without SACK (with timestamps if ts), an RTT of 20 ms. */
static struct harness *established(bool ts)
{
    struct harness *h = h_new(NULL);
    SOCK_ESTABLISHED_WITH(h, .ts = ts, .tsval = 100, .tsecr = ts ? 1 : 0);
    cr_assert_not(h->sk->sack_ok);
    cr_assert_eq(h->sk->ts_ok, ts);
    M = tcp_send_mss(h->sk);
    h->sk->min_rtt_us = h->sk->srtt_us = 20000;
    h->sk->rttvar_us = 5000;
    h->sk->rto_us = 200000;
    return h;
}

static const struct tcpsm_counters *cnt(struct harness *h)
{
    return tcpsm_stack_counters(h->st);
}

/* 20 segments queued, the initial window's 10 sent; returns the first and
 * the first's TSval. */
static uint32_t flight_of_ten(struct harness *h, uint32_t *tsval)
{
    static uint8_t d[20 * 1460];
    h_pattern(d, sizeof(d), 9);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, 20 * M, h->now), (ssize_t)(20 * M));
    for (uint32_t i = 0; i < 10; i++) {
        struct seg s = EXPECT_SEG(h, .seq = b + i * M, .len = M);
        if (!i && tsval)
            *tsval = s.tsval;
    }
    expect_no_seg(h);
    return b;
}

/* No tail loss probe without SACK: the RTO resends the head alone. */
static struct seg rto_resends_head(struct harness *h, uint32_t b)
{
    cr_assert_neq(h_wait_seg(h, SEC(2)), UINT64_MAX, "no RTO");
    struct seg s = EXPECT_SEG(h, .seq = b, .len = M);
    expect_no_seg(h);
    cr_assert_eq(cnt(h)->tcp_rto, 1);
    return s;
}

/* After an undo: what goes out is new data (from end on), nothing of the
 * old flight (from b) again. */
static void nothing_resent_below(struct harness *h, uint32_t b, uint32_t end)
{
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.len == 0 || seq_ge(s.seq, end), "resent %u after the undo", s.seq - b);
}

static void ack(struct harness *h, uint32_t a)
{
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = a, .win = H_RWIN);
}

/* The flight was only delayed: the first ACK after the RTO covers the
 * head; F-RTO sends two new segments instead of resending the second
 * (step 2.b), and the ACK of the second, never sent again, shows the
 * timeout was spurious (3.b): cwnd and ssthresh as before, the rest of
 * the old flight not resent. Linux does the same for a Reno connection
 * (tp->frto is set whatever SACK; FLAG_ORIG_SACK_ACKED from the
 * cumulative ACK); before, tcpsm resent the whole flight (go-back-N). */
Test(tcp_frto_reno, spurious_timeout_undone)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h, NULL);
    uint32_t cwnd0 = h->sk->cwnd, ssthresh0 = h->sk->ssthresh;
    rto_resends_head(h, b);
    cr_assert_lt(h->sk->cwnd, cwnd0);
    cr_assert(h->sk->loss_state && h->sk->frto, "loss %d frto %d", h->sk->loss_state, h->sk->frto);
    ack(h, b + M);
    EXPECT_SEG(h, .seq = b + 10 * M, .len = M);
    EXPECT_SEG(h, .seq = b + 11 * M, .len = M);
    expect_no_seg(h);
    ack(h, b + 2 * M);                  /* the second segment: sent once */
    cr_assert_eq(cnt(h)->tcp_spurious_rto, 1);
    cr_assert_eq(cnt(h)->tcp_undo, 1);
    cr_assert_not(h->sk->loss_state);
    cr_assert_geq(h->sk->cwnd, cwnd0, "cwnd %u, before the RTO %u", h->sk->cwnd, cwnd0);
    cr_assert_eq(h->sk->ssthresh, ssthresh0);
    nothing_resent_below(h, b, b + 12 * M);
    /* everything arrives; the connection is fine */
    ack(h, h->sk->snd_max);
    cr_assert_eq(cnt(h)->tcp_retrans, 1, "only the RTO's one retransmission");
    h_free(h);
}

/* The first ACK after the RTO already covers data never sent again:
 * spurious at once (Linux checks FLAG_ORIG_SACK_ACKED before step 2). */
Test(tcp_frto_reno, ack_beyond_the_resent_head_undoes)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h, NULL);
    uint32_t cwnd0 = h->sk->cwnd;
    rto_resends_head(h, b);
    ack(h, b + 4 * M);
    cr_assert_eq(cnt(h)->tcp_spurious_rto, 1);
    cr_assert_geq(h->sk->cwnd, cwnd0);
    nothing_resent_below(h, b, b + 10 * M);
    h_free(h);
}

/* The flight was lost: after the two new segments a duplicate ACK comes
 * (they arrived, the old data did not): the loss was real (3.a), the
 * resending goes on from the second segment, nothing undone. */
Test(tcp_frto_reno, real_loss_goes_on)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h, NULL);
    rto_resends_head(h, b);
    ack(h, b + M);
    EXPECT_SEG(h, .seq = b + 10 * M, .len = M);
    EXPECT_SEG(h, .seq = b + 11 * M, .len = M);
    ack(h, b + M);                      /* duplicate: step 3.a */
    cr_assert_not(h->sk->frto);
    cr_assert_eq(cnt(h)->tcp_undo, 0);
    struct seg s = EXPECT_SEG(h, .len = M);
    cr_assert_eq(s.seq, b + M, "the next old one resent, got %u", s.seq - b);
    cr_assert(h->sk->loss_state);
    /* the go-back goes on as ACKs come, and the data all gets there */
    ack(h, b + 2 * M);
    cr_assert_eq(cnt(h)->tcp_undo, 0, "an ACK of resent data proves nothing");
    h_free(h);
}

/* After F-RTO's new data, duplicate ACKs say that new data arrived: each
 * a delivered segment (tcpi_delivered), as Linux's tcp_process_loss counts
 * them for Reno (after(snd_nxt, high_seq) && num_dupack: tcp_add_reno_sack),
 * at most the two new ones (everything below high_seq is lost: lost_out
 * holes); a third is reordering (tcp_check_reno_reordering). Before, tcpsm
 * counted no duplicate ACK after an RTO. */
Test(tcp_frto_reno, dupacks_after_frto_new_data_are_delivered)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h, NULL);
    rto_resends_head(h, b);
    struct tcpsm_tcp_info i;
    tcpsm_sock_info(h->sk, &i);
    uint32_t d0 = i.delivered_segs, r0 = i.reord_seen;
    ack(h, b + M);                      /* the head: step 2.b, two new ones */
    EXPECT_SEG(h, .seq = b + 10 * M, .len = M);
    EXPECT_SEG(h, .seq = b + 11 * M, .len = M);
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, d0 + 1, "the head: got %u", i.delivered_segs - d0);
    ack(h, b + M);                      /* step 3.a: the first new one arrived */
    h_drain(h);
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, d0 + 2, "a duplicate after the new data: got %u",
                 i.delivered_segs - d0);
    cr_assert(h->sk->loss_state);
    ack(h, b + M);                      /* the second new one */
    h_drain(h);
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, d0 + 3, "got %u", i.delivered_segs - d0);
    cr_assert_eq(i.reord_seen, r0);
    ack(h, b + M);                      /* more than the new data: reordering */
    h_drain(h);
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, d0 + 3, "got %u", i.delivered_segs - d0);
    cr_assert_eq(i.reord_seen, r0 + 1);
    /* an ACK of resent data: what it covers less the two counted ("the
     * rest eat duplicate ACKs"), then the count is forgotten */
    ack(h, b + 4 * M);
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, d0 + 4, "got %u", i.delivered_segs - d0);
    cr_assert_eq(h->sk->reno_sacked, 0);
    h_free(h);
}

/* Timestamps: the first ACK after the timeout echoes the original head's
 * TSval, older than the retransmission's (Eifel, Linux tcp_packet_delayed):
 * the timeout is undone at once, nothing more resent. */
Test(tcp_frto_reno, timestamps_undo_timeout)
{
    struct harness *h = established(true);
    uint32_t tv0 = 0;
    uint32_t b = flight_of_ten(h, &tv0);
    uint32_t cwnd0 = h->sk->cwnd, ssthresh0 = h->sk->ssthresh;
    struct seg again = rto_resends_head(h, b);
    cr_assert(seq_gt(again.tsval, tv0), "the retransmission's TSval is newer");
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + M, .win = H_RWIN, .ts = true, .tsval = 200,
         .tsecr = tv0);
    cr_assert_eq(cnt(h)->tcp_loss_undo, 1);
    cr_assert_not(h->sk->loss_state);
    cr_assert_geq(h->sk->cwnd, cwnd0);
    cr_assert_eq(h->sk->ssthresh, ssthresh0);
    nothing_resent_below(h, b, b + 10 * M);
    h_free(h);
}

/* A repeated timeout of the same data keeps the first one's ssthresh and
 * its undo information (RFC 5681 3.1 "held constant", Linux tcp_enter_loss
 * in TCP_CA_Loss with icsk_retransmits): the undo after the second RTO
 * gives back the window from before the first. */
Test(tcp_frto_reno, repeated_timeout_keeps_ssthresh)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h, NULL);
    uint32_t cwnd0 = h->sk->cwnd;
    rto_resends_head(h, b);
    uint32_t ss1 = h->sk->ssthresh;
    cr_assert_neq(h_wait_seg(h, SEC(2)), UINT64_MAX, "no second RTO");
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert_eq(cnt(h)->tcp_rto, 2);
    cr_assert_eq(h->sk->ssthresh, ss1, "ssthresh %u, after the first RTO %u", h->sk->ssthresh, ss1);
    ack(h, b + 3 * M);                  /* originals: the timeouts were spurious */
    cr_assert_eq(cnt(h)->tcp_spurious_rto, 1);
    cr_assert_geq(h->sk->cwnd, cwnd0);
    h_free(h);
}

/* More duplicate ACKs than segments in flight less the hole (a network
 * that duplicates): Linux counts at most packets_out - 1 as delivered and
 * takes the excess as reordering (tp->reordering = packets_out, reord_seen
 * once per such ACK). Four segments out, five duplicates. */
Test(tcp_frto_reno, more_dupacks_than_in_flight_is_reordering)
{
    struct harness *h = established(false);
    static uint8_t d[4 * 1460];
    memset(d, 'r', sizeof(d));
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    h_drain(h);
    for (int i = 0; i < 5; i++) {
        ack(h, b);
        h_drain(h);
    }
    struct tcpsm_tcp_info i;
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, 1 + 3, "the SYN and three of the five: got %u", i.delivered_segs);
    cr_assert_eq(i.reord_seen, 2, "the fourth and fifth duplicates: got %u", i.reord_seen);
    cr_assert_eq(i.reordering, 4, "packets_out: got %u", i.reordering);
    /* the cumulative ACK: all four delivered once, none twice */
    ack(h, b + 4 * M);
    tcpsm_sock_info(h->sk, &i);
    cr_assert_eq(i.delivered_segs, 1 + 4, "got %u", i.delivered_segs);
    h_free(h);
}

/* A timeout inside a fast recovery (the loss state entered from outside):
 * the resend mark of no episode (0 at first, far from a window past 2^31:
 * the fuzzer's reno_snd_nxt findings) is not taken; SND.NXT never leaves
 * [SND.UNA, SND.MAX], nor does what goes out. */
Test(tcp_frto_reno, stale_resend_mark_not_taken_at_an_rto_in_fast_recovery)
{
    struct harness *h = established(false);
    uint32_t b = flight_of_ten(h, NULL);
    for (int i = 0; i < 3; i++)
        ack(h, b);                          /* fast recovery */
    struct seg s;
    while (recv_seg(h, &s))
        ;
    cr_assert(h->sk->in_recovery);
    h->sk->reno_rtx_end = h->sk->snd_una + 0x7fffff00u;    /* a stale mark */
    cr_assert_neq(h_wait_seg(h, SEC(3)), UINT64_MAX, "no RTO");
    cr_assert(h->sk->loss_state);
    cr_assert(seq_ge(h->sk->reno_rtx_end, h->sk->snd_una) &&
              seq_le(h->sk->reno_rtx_end, h->sk->snd_max), "mark %u past SND.UNA",
              h->sk->reno_rtx_end - h->sk->snd_una);
    for (uint32_t a = b + M; seq_le(a, b + 4 * M); a += M) {
        ack(h, a);
        cr_assert(seq_ge(h->sk->snd_nxt, h->sk->snd_una) && seq_le(h->sk->snd_nxt, h->sk->snd_max),
                  "SND.NXT %u past SND.UNA", h->sk->snd_nxt - h->sk->snd_una);
        while (recv_seg(h, &s))
            cr_assert(s.len == 0 || (seq_ge(s.seq, b) && seq_le(s.seq + s.len, b + 20 * M)),
                      "sent %u", s.seq - b);
    }
    h_free(h);
}
