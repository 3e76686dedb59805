/* ESTABLISHED (RFC 9293 3.10.7.4): acceptable, old and future data and
 * ACKs, FIN, RST and SYN per RFC 5961, windows, and sequence numbers that
 * wrap around 2^32. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

Test(tcp_established, data)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "0123456789",
         .len = 10);
    h->rseq += 10;
    h_advance(h, MS(500));
    /* The window's right edge stays put while the data sits unread. */
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 10);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 10);
    cr_assert(tcpsm_sock_poll(h->sk) & TCPSM_POLLIN);
    char b[16];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, 4, TCPSM_MSG_PEEK, h->now), 4);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 10);
    cr_assert(memcmp(b, "0123456789", 10) == 0);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), -EAGAIN);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, data_two_full_segments_ack_at_once)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_no_quickack(h);
    uint8_t d[2 * 1460];
    h_pattern(d, sizeof d, 5);
    size_t mss = h->lmss < 1460 ? h->lmss : 1460;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = mss);
    SEND(h, .flags = ACK, .seq = h->rseq + (uint32_t)mss, .ack = h->lseq, .win = H_RWIN,
         .data = d + mss, .len = mss);
    h->rseq += 2 * (uint32_t)mss;
    /* RFC 5681 4.2: at least every second full-sized segment is ACKed. */
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0,
               .win = h->lwin - 2 * mss);
    h_advance(h, MS(500));
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, data_old_duplicate_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "abcd", .len = 4);
    h->rseq += 4;
    h_advance(h, MS(500));
    h_drain(h);
    /* The same segment again: entirely old, unacceptable -> ACK at once. */
    SEND(h, .flags = ACK, .seq = h->rseq - 4, .ack = h->lseq, .win = H_RWIN, .data = "abcd",
         .len = 4);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 4);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 4);
    h_free(h);
}

Test(tcp_established, data_partly_old_trimmed)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "abcd", .len = 4);
    h->rseq += 4;
    /* Overlaps the 4 bytes already received and adds 4 new ones. */
    SEND(h, .flags = ACK, .seq = h->rseq - 4, .ack = h->lseq, .win = H_RWIN, .data = "abcdefgh",
         .len = 8);
    h->rseq += 4;
    h_advance(h, MS(500));
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq);
    char b[16];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 8);
    cr_assert(memcmp(b, "abcdefgh", 8) == 0);
    h_free(h);
}

Test(tcp_established, data_out_of_order)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* A hole: the later segment is held and a duplicate ACK goes at once (RFC 5681 4.2). */
    SEND(h, .flags = ACK, .seq = h->rseq + 4, .ack = h->lseq, .win = H_RWIN, .data = "EFGH",
         .len = 4);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    /* Filling the hole delivers both and acknowledges both at once. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "ABCD", .len = 4);
    h->rseq += 8;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 8);
    char b[16];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 8);
    cr_assert(memcmp(b, "ABCDEFGH", 8) == 0);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_ooo_in >= 1);
    h_free(h);
}

/* A sender's window of 300 segments behind one hole: every one is held (the
 * per-connection bound is a window's worth, not 64), whatever order they
 * come in, and filling the hole delivers the whole stream in order. */
Test(tcp_established, data_out_of_order_window_held)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    enum { SEG = 100, N = 300 };
    static uint8_t d[SEG * (N + 1)], got[SEG * (N + 1)];
    h_pattern(d, sizeof d, 7);
    /* in order, then reversed in groups of 8, then a duplicate of each */
    for (int pass = 0; pass < 2; pass++) {
        for (int g = 1; g <= N; g += 8) {
            for (int k = 7; k >= 0; k--) {
                int i = g + (pass ? k : 7 - k);
                if (i > N)
                    continue;
                SEND(h, .flags = ACK, .seq = h->rseq + (uint32_t)(i * SEG), .ack = h->lseq,
                     .win = H_RWIN, .data = d + i * SEG, .len = SEG);
                h_drain(h);
            }
        }
    }
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = SEG);
    h->rseq += SEG * (N + 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), sizeof d);
    h_app_recv(h, got, sizeof got);
    cr_assert(memcmp(got, d, sizeof d) == 0);
    h_free(h);
}

Test(tcp_established, data_beyond_window_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq + h->lwin, .ack = h->lseq, .win = H_RWIN, .data = "X",
         .len = 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, ack_acceptable)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[100];
    h_pattern(d, sizeof d, 6);
    h_app_send(h, d, 100);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 100);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 40, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 40);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_free(h);
}

Test(tcp_established, ack_old_ignored)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[100];
    h_pattern(d, sizeof d, 7);
    h_app_send(h, d, 100);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    /* A duplicate of an earlier ACK: "it can be ignored". */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 100, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, ack_future_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* SEG.ACK > SND.NXT: send an ACK, drop the segment (its data too). */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq + 1000, .win = H_RWIN,
         .data = "nope", .len = 4);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, ack_too_old_challenge)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* RFC 5961 5.2: SEG.ACK < SND.UNA - MAX.SND.WND: ACK and drop. */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq - 0x40000000u, .win = H_RWIN,
         .data = "nope", .len = 4);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    h_free(h);
}

Test(tcp_established, no_ack_bit_dropped)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* "if the ACK bit is off, drop the segment and return" */
    SEND(h, .flags = PSH, .seq = h->rseq, .win = H_RWIN, .data = "noack", .len = 5);
    h_advance(h, MS(500));
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 0);
    h_free(h);
}

Test(tcp_established, fin)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}

Test(tcp_established, fin_with_data)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = FIN | ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
         .data = "bye", .len = 3);
    h->rseq += 4;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 3);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 3);
    cr_assert(memcmp(b, "bye", 3) == 0);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}

Test(tcp_established, fin_out_of_order_waits)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* A FIN beyond a hole is not processed until the hole is filled. */
    SEND(h, .flags = FIN | ACK, .seq = h->rseq + 2, .ack = h->lseq, .win = H_RWIN, .data = "cd",
         .len = 2);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "ab", .len = 2);
    h->rseq += 5;
    h_advance(h, MS(500));
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 4);
    cr_assert(memcmp(b, "abcd", 4) == 0);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}

Test(tcp_established, rst_exact)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    unsigned ev = tcpsm_sock_poll(h->sk);
    cr_assert(ev & TCPSM_POLLERR);
    cr_assert(ev & TCPSM_POLLHUP);
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), -ECONNRESET);
    h_free(h);
}

Test(tcp_established, rst_ack_exact)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = RST | ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNRESET);
    h_free(h);
}

Test(tcp_established, rst_in_window_challenge_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = RST, .seq = h->rseq + 1000, .win = 0);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_challenge_ack, 1);
    /* The peer that really reset answers the challenge with an exact RST. */
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNRESET);
    h_free(h);
}

Test(tcp_established, rst_outside_ignored)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = RST, .seq = h->rseq - 1, .win = 0);
    SEND(h, .flags = RST, .seq = h->rseq + h->lwin, .win = 0);
    SEND(h, .flags = RST | ACK, .seq = h->rseq + 0x80000000u, .ack = h->lseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, syn_challenge_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* RFC 5961 4.2: a SYN in a synchronized state, in window or not. */
    SEND(h, .flags = SYN, .seq = h->rseq, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, send_segments_by_mss)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[3000];
    h_pattern(d, sizeof d, 8);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 3000);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 1460, .data = d);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq + 1460, .ack = h->rseq, .len = 1460,
               .data = d + 1460);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq + 2920, .ack = h->rseq, .len = 80, .data = d + 2920);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, send_respects_peer_window)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 1000);
    uint8_t d[3000];
    h_pattern(d, sizeof d, 9);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 3000);
    /* A sub-MSS window with more data waiting: sender SWS avoidance may hold
     * it until its override timeout (RFC 9293 3.8.6.2.1: 0.1-1 s). */
    cr_assert(h_wait_seg(h, SEC(1)) != UINT64_MAX, "window never used");
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 1000, .data = d);
    expect_no_seg(h);
    h->lseq += 1000;
    /* The window slides: 1000 more. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 1000);
    cr_assert(h_wait_seg(h, SEC(1)) != UINT64_MAX, "window never used");
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 1000, .data = d + 1000);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, nagle_holds_small_segment)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[20];
    h_pattern(d, sizeof d, 10);
    h_app_send(h, d, 10);
    /* RFC 1122 4.2.3.4: small data waits while data is unacknowledged. */
    cr_assert_eq(tcpsm_sock_send(h->sk, d + 10, 10, h->now), 10);
    expect_no_seg(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 10, .data = d + 10);
    h_free(h);
}

Test(tcp_established, nodelay_sends_at_once)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t d[20];
    h_pattern(d, sizeof d, 11);
    h_app_send(h, d, 10);
    h_app_send(h, d + 10, 10);
    h_free(h);
}

Test(tcp_established, window_update_after_read)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* Fill the receive window completely. */
    static uint8_t d[65536];
    h_pattern(d, h->lwin, 12);
    uint32_t off = 0;
    while (off < h->lwin) {
        uint32_t n = h->lwin - off < 1000 ? h->lwin - off : 1000;
        SEND(h, .flags = ACK, .seq = h->rseq + off, .ack = h->lseq, .win = H_RWIN, .data = d + off,
             .len = n);
        off += n;
    }
    h->rseq += h->lwin;
    h_advance(h, MS(500));
    struct seg s;
    struct seg last = { 0 };
    while (recv_seg(h, &s))
        last = s;
    cr_assert_eq(last.ack, h->rseq);
    cr_assert_eq(last.win, 0, "window %u with a full buffer", last.win);
    /* More data is outside the zero window: ACK, not accepted. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x", .len = 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = 0);
    /* Reading it all opens the window again with an update (RFC 1122 4.2.3.3). */
    static uint8_t b[65536];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), (ssize_t)h->lwin);
    cr_assert(memcmp(b, d, h->lwin) == 0);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    expect_no_seg(h);
    h_free(h);
}

/* RFC 9293 3.4: sequence numbers wrap around 2^32; the remote ISN sits
 * 16 bytes before the wrap so data crosses it. */
Test(tcp_established, seq_wraparound_receive)
{
    struct harness *h = h_new(NULL);
    h->risn = 0xFFFFFFF0u;
    sock_established(h);
    uint8_t d[3000], b[3000];
    h_pattern(d, sizeof d, 13);
    for (uint32_t off = 0; off < sizeof d; off += 1000) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d + off,
             .len = 1000);
        h->rseq += 1000;
    }
    cr_assert(h->rseq < 0x1000u, "did not wrap");
    h_advance(h, MS(500));
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 3000);
    cr_assert(memcmp(b, d, sizeof d) == 0);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    h_free(h);
}

Test(tcp_established, seq_wraparound_out_of_order)
{
    struct harness *h = h_new(NULL);
    h->risn = 0xFFFFFFF0u;
    sock_established(h);
    /* rseq = 0xFFFFFFF1: the second segment starts after the wrap. */
    uint8_t d[64];
    h_pattern(d, sizeof d, 14);
    SEND(h, .flags = ACK, .seq = h->rseq + 32, .ack = h->lseq, .win = H_RWIN, .data = d + 32,
         .len = 32);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 32);
    h->rseq += 64;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .win = h->lwin - 64);
    uint8_t b[64];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 64);
    cr_assert(memcmp(b, d, 64) == 0);
    /* A RST exactly at RCV.NXT past the wrap still resets. */
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_established, passive_open_data_both_ways)
{
    struct harness *h = h_new(NULL);
    sock_established_passive(h);
    h_no_quickack(h);                   /* past the start: no ACK before the response */
    uint8_t d[200];
    h_pattern(d, sizeof d, 15);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d,
         .len = 100);
    h->rseq += 100;
    uint8_t b[100];
    h_app_recv(h, b, 100);
    cr_assert(memcmp(b, d, 100) == 0);
    cr_assert_eq(tcpsm_sock_send(h->sk, d + 100, 100, h->now), 100);
    /* The ACK of the request rides on the response. */
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 100, .data = d + 100);
    h->lseq += 100;
    h_free(h);
}

Test(tcp_established, send_errors)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), 0);
    cr_assert_eq(tcpsm_sock_send(sk, "x", 1, h->now), -ENOTCONN);
    char b[2];
    cr_assert_eq(tcpsm_sock_recv(sk, b, 1, 0, h->now), -ENOTCONN);
    cr_assert_eq(tcpsm_sock_shutdown(sk, 1, h->now), -ENOTCONN);
    cr_assert_eq(tcpsm_sock_setopt(sk, TCPSM_OPT_KEEPCNT, 0), -EINVAL);
    cr_assert_eq(tcpsm_sock_setopt(sk, (enum tcpsm_opt)999, 1), -ENOPROTOOPT);
    tcpsm_sock_close(sk, h->now);
    h_free(h);
}

/* RFC 9293 3.10.7.4: "If the RCV.WND is zero, no segments will be
 * acceptable, but special allowance should be made to accept valid ACKs". */
Test(tcp_established, zero_receive_window_still_takes_acks)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t d[65536];
    h_pattern(d, h->lwin, 60);
    for (uint32_t off = 0; off < h->lwin;) {
        uint32_t n = h->lwin - off < 1000 ? h->lwin - off : 1000;
        SEND(h, .flags = ACK, .seq = h->rseq + off, .ack = h->lseq, .win = H_RWIN, .data = d + off,
             .len = n);
        off += n;
    }
    h->rseq += h->lwin;
    h_advance(h, MS(500));
    h_drain(h);
    uint8_t out[300];
    h_pattern(out, sizeof out, 61);
    h_app_send(h, out, 300);
    /* A pure ACK at RCV.NXT is acceptable with a zero window. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 200, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 200);
    /* Data that does not fit is refused, but its ACK field still counts. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "z", .len = 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = 0);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_free(h);
}

/* The same for a segment that starts before RCV.NXT and runs past it (the
 * retransmission of a segment the full buffer cut): its window update
 * counts, or two ends with closed windows would wait for each other. */
Test(tcp_established, zero_receive_window_acks_from_straddling_segment)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t d[65536];
    h_pattern(d, h->lwin + 500, 62);
    uint32_t fill = h->lwin - 500;
    for (uint32_t off = 0; off < fill;) {
        uint32_t n = fill - off < 1000 ? fill - off : 1000;
        SEND(h, .flags = ACK, .seq = h->rseq + off, .ack = h->lseq, .win = H_RWIN, .data = d + off,
             .len = n);
        off += n;
    }
    /* 1000 bytes where 500 fit, and the peer's own window closes */
    SEND(h, .flags = ACK, .seq = h->rseq + fill, .ack = h->lseq, .win = 0, .data = d + fill,
         .len = 1000);
    h->rseq += h->lwin;
    h_advance(h, MS(500));
    h_drain(h);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_wnd, 0);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), h->lwin);
    uint8_t out[300];
    h_pattern(out, sizeof out, 63);
    cr_assert_eq(tcpsm_sock_send(h->sk, out, sizeof out, h->now), 300);
    expect_no_seg(h);
    /* its retransmission, with the peer's window open again */
    SEND(h, .flags = ACK, .seq = h->rseq - 500, .ack = h->lseq, .win = H_RWIN,
         .data = d + fill, .len = 1000);
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_wnd, H_RWIN, "window update lost: snd_wnd %u", info.snd_wnd);
    /* the data we held back goes out; the new bytes were not taken */
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .len = 300);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), h->lwin);
    h_free(h);
}

/* URG with pointer 0 names the segment's first byte (Linux tcp_check_urg:
 * the pointer is decremented unless 0). Out of band by default: the
 * stream lacks it, recv(MSG_OOB) returns it once, POLLPRI until then. */
Test(tcp_established, urgent_data_out_of_band)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK | URG, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "urgent",
         .len = 6);
    SEND(h, .flags = ACK, .seq = h->rseq + 6, .ack = h->lseq, .win = H_RWIN, .data = "!", .len = 1);
    h->rseq += 7;
    cr_assert_neq(tcpsm_sock_poll(h->sk) & TCPSM_POLLPRI, 0);
    cr_assert_eq(tcpsm_sock_atmark(h->sk), 1);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, 1, TCPSM_MSG_OOB, h->now), 1);
    cr_assert_eq(b[0], 'u');
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, 1, TCPSM_MSG_OOB, h->now), -EINVAL);
    cr_assert_eq(tcpsm_sock_poll(h->sk) & TCPSM_POLLPRI, 0);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 6);
    cr_assert(memcmp(b, "rgent!", 6) == 0);
    cr_assert_eq(tcpsm_sock_atmark(h->sk), 0);
    h_advance(h, MS(500));
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq);
    h_free(h);
}

/* SO_OOBINLINE: the urgent byte stays in the stream; MSG_OOB is EINVAL. */
Test(tcp_established, urgent_data_inline)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_OOBINLINE, 1), 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "ab", .len = 2);
    SEND(h, .flags = ACK | URG, .seq = h->rseq + 2, .ack = h->lseq, .win = H_RWIN,
         .data = "urgent", .len = 6);
    h->rseq += 8;
    char b[8];
    /* a read stops at the mark */
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 2);
    cr_assert_eq(tcpsm_sock_atmark(h->sk), 1);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, 1, TCPSM_MSG_OOB, h->now), -EINVAL);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 6);
    cr_assert(memcmp(b, "urgent", 6) == 0);
    h_free(h);
}

/* MSG_OOB on send: the segments carry URG with the pointer just past the
 * last byte of that call (Linux), until it is ACKed; Nagle does not hold it. */
Test(tcp_established, urgent_data_sent)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_send(h->sk, "abc", 3, h->now), 3);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .len = 3);
    /* with "abc" unacknowledged, Nagle would hold a small segment */
    cr_assert_eq(tcpsm_sock_sendf(h->sk, "X", 1, TCPSM_MSG_OOB, h->now), 1);
    struct seg s;
    cr_assert(recv_seg(h, &s));
    cr_assert_eq(s.flags & URG, URG, "no URG flag");
    cr_assert_eq(s.seq, h->lseq + 3);
    cr_assert_eq(s.len, 1);
    cr_assert_eq(s.urp, 1, "urgent pointer %u", s.urp);
    h->lseq += 4;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_send(h->sk, "d", 1, h->now), 1);
    cr_assert(recv_seg(h, &s));
    cr_assert_eq(s.flags & URG, 0, "URG after the urgent byte was ACKed");
    h_free(h);
}

Test(tcp_established, peer_shrinks_window)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[5000];
    h_pattern(d, sizeof d, 62);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, 3000, h->now), 3000);
    h_drain(h);
    /* The peer takes back its window (RFC 9293 3.8.6.2.2 discourages it, but a
     * sender must cope): nothing beyond the new edge goes out, nothing breaks. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1000, .win = 500);
    cr_assert_eq(tcpsm_sock_send(h->sk, d + 3000, 2000, h->now), 2000);
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert((int32_t)(s.seq + (uint32_t)s.len - (h->lseq + 3000)) <= 0, "sent past the shrunk window");
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 3000, .win = H_RWIN);
    uint32_t got = 0;
    for (int i = 0; i < 10 && got < 2000; i++) {
        while (recv_seg(h, &s))
            if (s.len && s.seq == h->lseq + 3000 + got) {
                cr_assert(memcmp(s.data, d + 3000 + got, s.len) == 0);
                got += (uint32_t)s.len;
            }
        if (got < 2000)
            h_wait_seg(h, SEC(5));
    }
    cr_assert_eq(got, 2000);
    h_free(h);
}

/* Reassembly: the same 30000 bytes cut into random overlapping pieces, sent
 * in random order with duplicates (more holes than the out-of-order table
 * holds), then once more in order as retransmissions would: every byte
 * arrives once, in order, and the ACK covers exactly the stream. */
Test(tcp_established, reassembly_random_overlaps)
{
    for (uint32_t seed = 1; seed <= 20; seed++) {
        struct harness *h = h_new(NULL);
        sock_established(h);
        enum { N = 30000, P = 120 };
        static uint8_t d[N], b[N + 1];
        h_pattern(d, N, 100 + seed);
        uint32_t x = seed * 2654435761u;
        uint32_t off[P], len[P];
        for (int i = 0; i < P; i++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            off[i] = x % N;
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            len[i] = 1 + x % 1400;
            if (off[i] + len[i] > N)
                len[i] = N - off[i];
        }
        for (int i = 0; i < P; i++) {
            SEND(h, .flags = ACK, .seq = h->rseq + off[i], .ack = h->lseq, .win = H_RWIN,
                 .data = d + off[i], .len = len[i]);
            if (i % 7 == 0)
                SEND(h, .flags = ACK, .seq = h->rseq + off[i], .ack = h->lseq, .win = H_RWIN,
                     .data = d + off[i], .len = len[i]);
        }
        for (uint32_t o = 0; o < N; o += 1000)
            SEND(h, .flags = ACK, .seq = h->rseq + o, .ack = h->lseq, .win = H_RWIN,
                 .data = d + o, .len = N - o < 1000 ? N - o : 1000);
        h_advance(h, MS(500));
        struct seg s;
        uint32_t last = 0;
        while (recv_seg(h, &s)) {
            cr_assert_eq(s.flags & (SYN | FIN | RST), 0);
            last = s.ack;
        }
        cr_assert_eq(last, h->rseq + N, "seed %u: ack at +%u", seed, last - h->rseq);
        cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), N, "seed %u", seed);
        cr_assert(memcmp(b, d, N) == 0, "seed %u: stream corrupted", seed);
        cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), -EAGAIN);
        h_free(h);
    }
}

/* RFC 5961 7: challenge ACKs are rate-limited (1000 per second, as Linux),
 * so a blind RST flood cannot make us flood back. */
Test(tcp_established, challenge_ack_rate_limit)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    for (uint32_t i = 1; i <= 3000; i++)
        SEND(h, .flags = RST, .seq = h->rseq + i, .win = 0);
    unsigned acks = 0;
    struct seg s;
    while (recv_seg(h, &s)) {
        cr_assert_eq(s.flags, ACK);
        acks++;
    }
    cr_assert(acks >= 1 && acks <= 1000, "%u challenge ACKs for 3000 RSTs in one instant", acks);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    /* A second later the budget is back. */
    h_advance(h, SEC(1));
    SEND(h, .flags = RST, .seq = h->rseq + 5, .win = 0);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    h_free(h);
}

/* RFC 1122 4.2.3.4 / RFC 9293 3.8.6.2.1 sender SWS avoidance: with data in
 * flight, a usable window below both an MSS and half the largest window seen
 * is not filled with a runt; the next ACK opens room for a full segment. */
Test(tcp_established, sender_sws_avoidance)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[6000];
    h_pattern(d, sizeof d, 90);
    uint32_t b = h->lseq;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = 2920);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, 5920, h->now), 5920);
    EXPECT_SEG(h, .seq = b, .len = 1460);
    EXPECT_SEG(h, .seq = b + 1460, .len = 1460);
    expect_no_seg(h);
    /* 1460 still in flight, window 2000: 540 usable. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 1460, .win = 2000);
    expect_no_seg(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 2920, .win = 2000);
    EXPECT_SEG(h, .seq = b + 2920, .len = 1460, .data = d + 2920);
    expect_no_seg(h);           /* the 540 left over wait too */
    h_free(h);
}
