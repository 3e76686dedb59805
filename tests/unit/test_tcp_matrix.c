/* The events RFC 9293 3.10.7.4 treats alike in every synchronized state,
 * applied to each of them: an old SYN+ACK, an ACK of something never sent,
 * an old ACK, old (duplicate) data. The reply and the state are exact. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

/* SND.UNA in each fixture: everything is acknowledged except a FIN we sent
 * and the peer has not acknowledged (FIN-WAIT-1, CLOSING, LAST-ACK). */
static uint32_t snd_una(struct harness *h, int state)
{
    bool fin_out = state == TCPSM_FIN_WAIT_1 || state == TCPSM_CLOSING || state == TCPSM_LAST_ACK;
    return fin_out ? h->lseq - 1 : h->lseq;
}

/* The peer's SYN+ACK again (our ACK of it was lost): old, so ACK it. */
static void ev_syn_ack_old(struct harness *h, int state)
{
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lisn + 1, .win = H_RWIN,
         .mss = H_RMSS);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

/* SEG.ACK > SND.NXT: "send an ACK, drop the segment, and return". */
static void ev_ack_future(struct harness *h, int state)
{
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1000, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

/* SEG.ACK < SND.UNA (within the window): a duplicate, "it can be ignored". */
static void ev_ack_old(struct harness *h, int state)
{
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = snd_una(h, state) - 1, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

/* Data entirely before RCV.NXT: unacceptable, ACK it. */
static void ev_data_old(struct harness *h, int state)
{
    SEND(h, .flags = ACK, .seq = h->rseq - 10, .ack = snd_una(h, state), .win = H_RWIN,
         .data = "0123456789", .len = 10);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

/* Data far beyond the window: unacceptable, ACK it. */
static void ev_data_future(struct harness *h, int state)
{
    SEND(h, .flags = ACK, .seq = h->rseq + 0x100000u, .ack = snd_una(h, state), .win = H_RWIN,
         .data = "0123456789", .len = 10);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, state);
}

#define MATRIX(suite, fixture, STATE)                                                          \
    Test(suite, syn_ack_old)                                                                   \
    {                                                                                          \
        struct harness *h = h_new(NULL);                                                       \
        fixture(h);                                                                            \
        ev_syn_ack_old(h, STATE);                                                              \
        h_free(h);                                                                             \
    }                                                                                          \
    Test(suite, ack_future)                                                                    \
    {                                                                                          \
        struct harness *h = h_new(NULL);                                                       \
        fixture(h);                                                                            \
        ev_ack_future(h, STATE);                                                               \
        h_free(h);                                                                             \
    }                                                                                          \
    Test(suite, ack_old)                                                                       \
    {                                                                                          \
        struct harness *h = h_new(NULL);                                                       \
        fixture(h);                                                                            \
        ev_ack_old(h, STATE);                                                                  \
        h_free(h);                                                                             \
    }                                                                                          \
    Test(suite, data_old)                                                                      \
    {                                                                                          \
        struct harness *h = h_new(NULL);                                                       \
        fixture(h);                                                                            \
        ev_data_old(h, STATE);                                                                 \
        h_free(h);                                                                             \
    }                                                                                          \
    Test(suite, data_future)                                                                   \
    {                                                                                          \
        struct harness *h = h_new(NULL);                                                       \
        fixture(h);                                                                            \
        ev_data_future(h, STATE);                                                              \
        h_free(h);                                                                             \
    }

MATRIX(tcp_established, sock_established, TCPSM_ESTABLISHED)
MATRIX(tcp_fin_wait_1, sock_fin_wait_1, TCPSM_FIN_WAIT_1)
MATRIX(tcp_fin_wait_2, sock_fin_wait_2, TCPSM_FIN_WAIT_2)
MATRIX(tcp_close_wait, sock_close_wait, TCPSM_CLOSE_WAIT)
MATRIX(tcp_closing, sock_closing, TCPSM_CLOSING)
MATRIX(tcp_last_ack, sock_last_ack, TCPSM_LAST_ACK)
MATRIX(tcp_time_wait, sock_time_wait, TCPSM_TIME_WAIT)

/* New data after the peer's FIN (CLOSING, LAST-ACK; CLOSE-WAIT is in
 * test_tcp_close.c): "ignore the segment text". */
Test(tcp_closing, data_after_fin_ignored)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1, .win = H_RWIN, .data = "late",
         .len = 4);
    h_advance(h, MS(100));
    h_drain(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSING);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    h_free(h);
}

Test(tcp_last_ack, data_after_fin_ignored)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1, .win = H_RWIN, .data = "late",
         .len = 4);
    h_advance(h, MS(100));
    h_drain(h);
    ASSERT_STATE(h->sk, TCPSM_LAST_ACK);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    h_free(h);
}

Test(tcp_time_wait, data_after_fin_ignored)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "late",
         .len = 4);
    h_drain(h);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    h_free(h);
}

/* ------------------------------------------------------------ CLOSE / SHUTDOWN per state (3.10.4) */

Test(tcp_fin_wait_1, shutdown_again_no_second_fin)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    h_free(h);
}

Test(tcp_closing, close_then_ack_then_expire)
{
    struct harness *h = h_new(NULL);
    sock_closing(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);     /* TIME-WAIT */
    h_advance(h, SEC(60));
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_last_ack, close_then_ack_frees)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_last_ack, orphan_gives_up_after_retries)
{
    struct harness *h = h_new(NULL);
    sock_last_ack(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    /* The peer vanished: the FIN is retried, then the TCB is freed. */
    for (int i = 0; i < 100 && tcpsm_stack_nsocks(h->st) > 0; i++) {
        if (!h_step(h, SEC(3600)))
            break;
        h_drain(h);
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_syn_sent, simultaneous_open_shutdown_in_syn_received)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->risn + 1);
    h->rseq = h->risn + 1;
    ASSERT_STATE(h->sk, TCPSM_SYN_RECEIVED);
    /* RFC 9293 3.10.4 CLOSE in SYN-RECEIVED: FIN, FIN-WAIT-1 (it may also
     * wait for ESTABLISHED before the FIN leaves). */
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    struct seg s;
    bool fin = false;
    while (recv_seg(h, &s)) {
        cr_assert(!(s.flags & RST));
        if (s.flags & FIN) {
            cr_assert_eq(s.seq, h->lseq);
            fin = true;
        }
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    while (recv_seg(h, &s))
        if (s.flags & FIN) {
            cr_assert_eq(s.seq, h->lseq);
            fin = true;
        }
    cr_assert(fin, "no FIN after shutdown in SYN-RECEIVED");
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    /* The FIN is on the retransmission timer like any other. */
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_syn_sent, simultaneous_open_shutdown_then_rto)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->risn + 1);
    h->rseq = h->risn + 1;
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    h_drain(h);
    /* The peer's ACK of our SYN is lost: what the timer resends must still
     * be our SYN (seq ISS, with ACK), never data or a FIN before it. */
    uint64_t t = h_wait_seg(h, SEC(10));
    cr_assert_neq(t, UINT64_MAX, "nothing resent (next deadline %llu)",
                  (unsigned long long)tcpsm_stack_next_deadline(h->st));
    struct seg s = EXPECT_SEG(h, .seq = h->lisn, .ack = h->rseq);
    cr_assert(s.flags & SYN, "retransmission without SYN: flags %#x", s.flags);
    cr_assert(!(s.flags & RST));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    /* The FIN (sent at shutdown, or queued) is resent until acknowledged. */
    struct seg f;
    bool fin = false;
    for (int i = 0; i < 5 && !fin; i++) {
        while (recv_seg(h, &f))
            fin |= (f.flags & FIN) && f.seq == h->lseq;
        if (!fin)
            h_wait_seg(h, SEC(10));
    }
    cr_assert(fin, "FIN never (re)sent once our SYN was acknowledged");
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_syn_received, data_without_ack_dropped)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    /* "if the ACK bit is off, drop the segment and return" */
    SEND(h, .flags = PSH, .seq = h->rseq, .win = H_RWIN, .data = "early", .len = 5);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    h_free(h);
}

Test(tcp_established, fin_into_zero_window_then_accepted)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t d[65536], b[65536];
    h_pattern(d, h->lwin, 98);
    for (uint32_t off = 0; off < h->lwin;) {
        uint32_t n = h->lwin - off < 1000 ? h->lwin - off : 1000;
        SEND(h, .flags = ACK, .seq = h->rseq + off, .ack = h->lseq, .win = H_RWIN, .data = d + off,
             .len = n);
        off += n;
    }
    h->rseq += h->lwin;
    h_advance(h, MS(500));
    h_drain(h);
    /* A bare FIN with the window closed: refused (or taken, as Linux does);
     * either way, once the application reads, the FIN gets through. */
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h_drain(h);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), (ssize_t)h->lwin);
    cr_assert(memcmp(b, d, h->lwin) == 0);
    h_drain(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}
