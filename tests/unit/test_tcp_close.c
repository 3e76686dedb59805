/* Closing states of RFC 9293 (3.6, 3.10.4, 3.10.7.4): FIN-WAIT-1,
 * FIN-WAIT-2, CLOSE-WAIT, CLOSING, LAST-ACK and TIME-WAIT, with the
 * RFC 5961 rules for RST and SYN in each of them. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

/* RST with SEG.SEQ == RCV.NXT resets the connection (RFC 5961 3.2 case 2). */
static void rst_exact(struct harness *h, int err_a, int err_b)
{
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    int e = tcpsm_sock_error(h->sk);
    cr_assert(e == err_a || e == err_b, "SO_ERROR %d after RST", e);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rst_in, 1);
}

/* In window but not exact: challenge ACK <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. */
static void rst_in_window(struct harness *h, int state)
{
    SEND(h, .flags = RST, .seq = h->rseq + 1, .win = 0);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_challenge_ack >= 1);
}

/* Outside the window: silently dropped. */
static void rst_outside(struct harness *h, int state)
{
    SEND(h, .flags = RST, .seq = h->rseq - 1, .win = 0);
    SEND(h, .flags = RST, .seq = h->rseq + 0x20000000u, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

/* SYN in a synchronized state: challenge ACK, whatever its seq (RFC 5961 4.2). */
static void syn_challenge(struct harness *h, int state)
{
    SEND(h, .flags = SYN, .seq = h->rseq + 5, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

/* ------------------------------------------------------------ ESTABLISHED: CLOSE */

Test(tcp_established, close_sends_fin)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h->lseq++;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    /* The whole four-way close, then TIME-WAIT expiry frees the TCB. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_advance(h, SEC(60) - 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1, "TIME-WAIT shorter than 2*MSL");
    h_advance(h, 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0, "TIME-WAIT not over after 2*MSL");
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, close_with_unread_data_rst)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "unread",
         .len = 6);
    h->rseq += 6;
    h_advance(h, MS(500));
    h_drain(h);
    /* RFC 9293 3.10.4 / RFC 2525: data would be lost, so the peer learns it. */
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 0);
    cr_assert(s.flags & RST, "flags %#x", s.flags);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_established, abort_rst)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    tcpsm_sock_abort(h->sk, h->now);
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 0);
    cr_assert(s.flags & RST, "flags %#x", s.flags);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, linger_zero_close_rst)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_LINGER, 0), 0);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 0);
    cr_assert(s.flags & RST, "flags %#x", s.flags);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_established, close_after_data_fin_follows_data)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[100];
    h_pattern(d, sizeof d, 3);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 100);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    /* Data then FIN, possibly in one segment. */
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .ack = h->rseq, .len = 100, .data = d);
    h->lseq += 100;
    if (!(s.flags & FIN)) {
        EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .len = 0);
    }
    h->lseq++;
    expect_no_seg(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_advance(h, SEC(61));
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

/* ------------------------------------------------------------ FIN-WAIT-1 */

Test(tcp_fin_wait_1, ack)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_fin_wait_1, ack_not_covering_fin)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    h_free(h);
}

Test(tcp_fin_wait_1, fin_closing)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    /* Simultaneous close: FIN crosses ours. */
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq - 1, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSING);
    h_free(h);
}

Test(tcp_fin_wait_1, fin_ack_time_wait)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_free(h);
}

Test(tcp_fin_wait_1, data_received)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "more",
         .len = 4);
    h->rseq += 4;
    h_advance(h, MS(500));
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 4);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    char b[4];
    h_app_recv(h, b, 4);
    cr_assert(memcmp(b, "more", 4) == 0);
    h_free(h);
}

Test(tcp_fin_wait_1, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    rst_exact(h, ECONNRESET, ECONNRESET);
    h_free(h);
}

Test(tcp_fin_wait_1, rst_in_window)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    rst_in_window(h, TCPSM_FIN_WAIT_1);
    h_free(h);
}

Test(tcp_fin_wait_1, rst_outside)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    rst_outside(h, TCPSM_FIN_WAIT_1);
    h_free(h);
}

Test(tcp_fin_wait_1, syn)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    syn_challenge(h, TCPSM_FIN_WAIT_1);
    h_free(h);
}

Test(tcp_fin_wait_1, send_after_shutdown_epipe)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    cr_assert_eq(tcpsm_sock_send(h->sk, "x", 1, h->now), -EPIPE);
    expect_no_seg(h);
    h_free(h);
}

/* ------------------------------------------------------------ FIN-WAIT-2 */

Test(tcp_fin_wait_2, fin)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}

Test(tcp_fin_wait_2, data_received)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "half",
         .len = 4);
    h->rseq += 4;
    h_advance(h, MS(500));
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 4);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    char b[4];
    h_app_recv(h, b, 4);
    cr_assert(memcmp(b, "half", 4) == 0);
    h_free(h);
}

Test(tcp_fin_wait_2, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    rst_exact(h, ECONNRESET, ECONNRESET);
    h_free(h);
}

Test(tcp_fin_wait_2, rst_in_window)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    rst_in_window(h, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_fin_wait_2, rst_outside)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    rst_outside(h, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_fin_wait_2, syn)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    syn_challenge(h, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_fin_wait_2, old_data_ack)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    /* A duplicate of data already received is unacceptable: ACK it. */
    SEND(h, .flags = ACK, .seq = h->rseq - 3, .ack = h->lseq, .win = H_RWIN, .data = "abc",
         .len = 3);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_fin_wait_2, orphan_data_rst)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    /* RFC 1122 4.2.2.13: new data after CLOSE cannot be delivered: RST. */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "late",
         .len = 4);
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 0);
    cr_assert(s.flags & RST, "flags %#x", s.flags);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

/* ------------------------------------------------------------ CLOSE-WAIT */

Test(tcp_close_wait, recv_eof)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    unsigned ev = tcpsm_sock_poll(h->sk);
    cr_assert(ev & TCPSM_POLLIN);
    cr_assert(ev & TCPSM_POLLRDHUP);
    cr_assert(ev & TCPSM_POLLOUT);
    cr_assert_eq(ev & TCPSM_POLLHUP, 0);
    h_free(h);
}

Test(tcp_close_wait, data_out_half_close)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    uint8_t d[300];
    h_pattern(d, sizeof d, 4);
    /* Half-close: the peer's FIN does not stop our sending. */
    h_app_send(h, d, 300);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_app_send(h, d + 100, 50);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    h_free(h);
}

Test(tcp_close_wait, close_last_ack)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h->lseq++;
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_close_wait, fin_retransmitted_ack)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq - 1, .ack = h->lseq, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    h_free(h);
}

Test(tcp_close_wait, data_after_fin_ignored)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    /* "This should not occur ... Ignore the segment text." */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "bogus",
         .len = 5);
    h_advance(h, MS(500));
    h_drain(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}

Test(tcp_close_wait, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    /* Linux reports EPIPE here, RFC 9293 "connection reset". */
    rst_exact(h, ECONNRESET, EPIPE);
    h_free(h);
}

Test(tcp_close_wait, rst_in_window)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    rst_in_window(h, TCPSM_CLOSE_WAIT);
    h_free(h);
}

Test(tcp_close_wait, rst_outside)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    rst_outside(h, TCPSM_CLOSE_WAIT);
    h_free(h);
}

Test(tcp_close_wait, syn)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    syn_challenge(h, TCPSM_CLOSE_WAIT);
    h_free(h);
}

/* ------------------------------------------------------------ CLOSING */

Test(tcp_closing, ack_time_wait)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_advance(h, SEC(60));
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_closing, fin_retransmitted_ack)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq - 1, .ack = h->lseq - 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSING);
    h_free(h);
}

Test(tcp_closing, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_closing, rst_in_window)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    rst_in_window(h, TCPSM_CLOSING);
    h_free(h);
}

Test(tcp_closing, rst_outside)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    rst_outside(h, TCPSM_CLOSING);
    h_free(h);
}

Test(tcp_closing, syn)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    syn_challenge(h, TCPSM_CLOSING);
    h_free(h);
}

Test(tcp_closing, fin_retransmit_on_rto)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    uint64_t t = h_wait_seg(h, SEC(120));
    cr_assert_neq(t, UINT64_MAX, "FIN never retransmitted in CLOSING");
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq - 1, .ack = h->rseq, .len = 0);
    h_free(h);
}

/* ------------------------------------------------------------ LAST-ACK */

Test(tcp_last_ack, ack_closed)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_advance(h, SEC(120));
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_last_ack, old_ack_ignored)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_LAST_ACK);
    h_free(h);
}

Test(tcp_last_ack, fin_retransmitted_ack)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq - 1, .ack = h->lseq - 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_LAST_ACK);
    h_free(h);
}

Test(tcp_last_ack, fin_retransmit_backoff)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    uint64_t rto = US(info.rto_us);
    for (int i = 0; i < 3; i++) {
        uint64_t t = h_wait_seg(h, SEC(200));
        cr_assert_eq(t, rto, "FIN retransmission %d after %llu ns, want %llu", i + 1,
                     (unsigned long long)t, (unsigned long long)rto);
        EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq - 1, .ack = h->rseq, .len = 0);
        expect_no_seg(h);
        rto *= 2;
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_last_ack, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_last_ack, rst_in_window)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    rst_in_window(h, TCPSM_LAST_ACK);
    h_free(h);
}

Test(tcp_last_ack, rst_outside)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    rst_outside(h, TCPSM_LAST_ACK);
    h_free(h);
}

Test(tcp_last_ack, syn)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    syn_challenge(h, TCPSM_LAST_ACK);
    h_free(h);
}

/* ------------------------------------------------------------ TIME-WAIT */

Test(tcp_time_wait, expire)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    h_advance(h, SEC(60) - 1);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_advance(h, 1);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_error(h->sk), 0);
    h_free(h);
}

Test(tcp_time_wait, expire_orphan_frees)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_advance(h, SEC(60));
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_time_wait, msl_config)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.msl_ms = 1000;
    struct harness *h = h_new(&cfg);
    sock_time_wait(h);
    h_advance(h, MS(2000) - 1);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_advance(h, 1);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_time_wait, fin_retransmitted_ack_restarts_2msl)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    h_advance(h, SEC(40));
    /* Our last ACK was lost: the peer repeats its FIN. */
    SEND(h, .flags = FIN | ACK, .seq = h->rseq - 1, .ack = h->lseq, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    /* RFC 9293: "Acknowledge it, and restart the 2 MSL timeout." */
    h_advance(h, SEC(60) - 1);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_advance(h, 1);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_time_wait, ack_ignored)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_free(h);
}

Test(tcp_time_wait, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    /* RFC 9293 3.10.7.4: TIME-WAIT + RST -> CLOSED (RFC 1337 hazard accepted, as Linux). */
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_time_wait, rst_outside)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    rst_outside(h, TCPSM_TIME_WAIT);
    h_free(h);
}

Test(tcp_time_wait, syn)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    /* No timestamps, no reopening: challenge ACK (RFC 9293 3.10.7.4 fourth). */
    syn_challenge(h, TCPSM_TIME_WAIT);
    h_free(h);
}

Test(tcp_time_wait, data_ack)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    SEND(h, .flags = ACK, .seq = h->rseq - 4, .ack = h->lseq, .win = H_RWIN, .data = "dupl",
         .len = 4);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_free(h);
}

Test(tcp_time_wait, rst_in_window)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    rst_in_window(h, TCPSM_TIME_WAIT);
    h_free(h);
}

Test(tcp_fin_wait_2, orphan_timeout)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    /* Linux tcp_fin_timeout: an orphan does not wait forever for the peer's FIN. */
    h_advance(h, SEC(60));
    h_drain(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_fin_wait_2, with_handle_waits)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    /* Half-closed by shutdown(): the application still reads; no timeout. */
    h_advance(h, SEC(3600));
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}
