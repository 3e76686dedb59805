/* SACK loss recovery (RFC 6675, RACK, PRR) in corner cases, through the harness:
 * a partial ACK that covers every SACKed block and leaves the scoreboard
 * empty keeps cwnd near ssthresh (no NewReno deflation to one segment) and
 * retransmits the next hole as one whole segment; after an RTO, SACKs of
 * data sent after it start fast recovery (no second RTO). */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

static void established_sack(struct harness *h)
{
    SOCK_ESTABLISHED_WITH(h, .sack_perm = true);
}

Test(tcp_sack_recovery, partial_ack_emptying_scoreboard_keeps_cwnd)
{
    struct harness *h = h_new(NULL);
    established_sack(h);
    const uint32_t M = 1460;
    static uint8_t d[8 * 1460];
    h_pattern(d, sizeof d, 91);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    for (int i = 0; i < 8; i++)
        EXPECT_SEG(h, .seq = b + M * (uint32_t)i, .len = M);
    /* Segments 0 and 4 lost; 1, 2, 3 arrive and are SACKed one round
     * trip later: 0 is lost. */
    h->now += MS(20);
    uint8_t o[40];
    for (uint32_t k = 2; k <= 4; k++) {
        uint32_t blk[1][2] = { { b + M, b + k * M } };
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .raw_opts = o,
             .raw_optlen = h_sack_opt(o, 1, blk));
    }
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_fast_retrans, 1);
    struct seg s;
    bool hole0 = false;
    while (recv_seg(h, &s))
        if (s.len) {
            cr_assert(s.seq != b + M && s.seq != b + 2 * M && s.seq != b + 3 * M,
                      "resent SACKed data at +%u", s.seq - b);
            hole0 |= s.seq == b && s.len == M;
        }
    cr_assert(hole0, "the first hole was not retransmitted as a whole segment");
    struct tcpsm_tcp_info in;
    tcpsm_sock_info(h->sk, &in);
    uint32_t ssthresh = in.snd_ssthresh;
    cr_assert(ssthresh >= 2);
    /* The retransmission arrives one round trip later: ACK up to the next
     * hole, no SACK block left. (RACK: an ACK of a retransmission sooner
     * than the minimum RTT would be taken for the original's.) */
    h->now += MS(20);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 4 * M, .win = H_RWIN);
    tcpsm_sock_info(h->sk, &in);
    /* RACK: 4-7 were sent before the retransmission that was just
     * delivered and are not SACKed: lost, pipe is 0. PRR-SSRB (RFC 6937)
     * then allows what was delivered and not yet sent, plus one segment:
     * four segments, never the NewReno deflation to one */
    cr_assert(in.snd_cwnd >= 4 && in.snd_cwnd <= ssthresh,
              "cwnd %u segments after a partial ACK, ssthresh %u", in.snd_cwnd, ssthresh);
    bool hole4 = false;
    while (recv_seg(h, &s))
        if (s.len) {
            cr_assert(s.len == M || s.seq + s.len == b + sizeof d, "a %u-byte segment", s.len);
            hole4 |= s.seq == b + 4 * M;
        }
    cr_assert(hole4, "the next hole was not retransmitted");
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + sizeof d, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rto, 0);
    h_free(h);
}

Test(tcp_sack_recovery, fast_retransmit_after_rto_on_sacks_of_new_data)
{
    struct harness *h = h_new(NULL);
    established_sack(h);
    const uint32_t M = 1460;
    static uint8_t d[8 * 1460];
    h_pattern(d, sizeof d, 92);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, 2 * M, h->now), (ssize_t)(2 * M));
    EXPECT_SEG(h, .seq = b, .len = M);
    EXPECT_SEG(h, .seq = b + M, .len = M);
    /* Both lost: the RTO resends the first. */
    cr_assert_neq(h_wait_seg(h, SEC(5)), UINT64_MAX);
    EXPECT_SEG(h, .seq = b, .len = M);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rto, 1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + M, .win = H_RWIN);
    EXPECT_SEG(h, .seq = b + M, .len = M);         /* go-back-N, lost again */
    cr_assert_eq(tcpsm_sock_send(h->sk, d + 2 * M, 6 * M, h->now), (ssize_t)(6 * M));
    EXPECT_SEG(h, .seq = b + 2 * M, .len = M);     /* new data, above the RTO's recover */
    /* New data arrives and is SACKed; limited transmit sends more. */
    uint8_t o[40];
    for (uint32_t k = 3; k <= 5; k++) {
        uint32_t blk[1][2] = { { b + 2 * M, b + k * M } };
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + M, .win = H_RWIN, .raw_opts = o,
             .raw_optlen = h_sack_opt(o, 1, blk));
    }
    struct seg s;
    bool rtx = false;
    while (recv_seg(h, &s))
        rtx |= s.seq == b + M && s.len == M;
    cr_assert(rtx, "SACKs of new data after an RTO did not retransmit the hole");
    /* RACK marks the hole lost inside the RTO's recovery (Linux TCP_CA_Loss):
     * resent with no second RTO */
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rto, 1);
    cr_assert_geq(tcpsm_stack_counters(h->st)->tcp_rack_lost, 1);
    h_free(h);
}
