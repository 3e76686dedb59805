/* Timers on the virtual clock: retransmission (RFC 6298), the bound on
 * retries (RFC 9293 3.8.3, ETIMEDOUT), zero-window probing (3.8.6.1),
 * delayed ACK (RFC 1122 4.2.3.2, RFC 5681 4.2) and keepalive (RFC 1122
 * 4.2.3.6). */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

static uint64_t rto_now(struct harness *h)
{
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    return US(info.rto_us);
}

Test(tcp_established, retransmit_rto_backoff)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[100];
    h_pattern(d, sizeof d, 20);
    uint64_t rto = rto_now(h);
    cr_assert(rto >= MS(200) && rto <= SEC(3), "initial RTO %llu ns", (unsigned long long)rto);
    h_app_send(h, d, 100);
    /* RFC 6298 5.5: back off the timer on each expiry (Karn: no new sample). */
    for (int i = 0; i < 5; i++) {
        uint64_t t = h_wait_seg(h, SEC(300));
        cr_assert_eq(t, rto, "retransmission %d after %llu ns, want %llu", i + 1,
                     (unsigned long long)t, (unsigned long long)rto);
        EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 100, .ack = h->rseq, .len = 100, .data = d);
        expect_no_seg(h);
        rto *= 2;
    }
    cr_assert(tcpsm_stack_counters(h->st)->tcp_rto >= 5);
    /* The ACK ends it; nothing more is sent. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h_advance(h, SEC(600));
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, retransmit_resets_cwnd_one_segment)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t d[4000];
    h_pattern(d, sizeof d, 21);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, 2920, h->now), 2920);
    EXPECT_SEG(h, .seq = h->lseq, .len = 1460);
    EXPECT_SEG(h, .seq = h->lseq + 1460, .len = 1460);
    expect_no_seg(h);
    /* RFC 5681 3.1: after an RTO only one segment is resent (cwnd = 1 MSS). */
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 1460, .data = d);
    expect_no_seg(h);
    /* Its ACK lets the second go. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1460, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq + 1460, .len = 1460, .data = d + 1460);
    h_free(h);
}

Test(tcp_established, retransmit_timeout_etimedout)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[10] = "timeout!!";
    h_app_send(h, d, 10);
    unsigned n = 0;
    struct seg s;
    while (n < 100 && h_wait_seg(h, SEC(3600)) != UINT64_MAX) {
        while (recv_seg(h, &s)) {
            if (s.flags & RST)
                continue;
            cr_assert_eq(s.seq, h->lseq - 10);
            cr_assert_eq(s.len, 10);
        }
        n++;
    }
    cr_assert(n >= 3 && n < 100, "%u retransmissions before giving up", n);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ETIMEDOUT);
    cr_assert(tcpsm_sock_poll(h->sk) & TCPSM_POLLHUP);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_conn_timeout >= 1);
    h_free(h);
}

Test(tcp_established, user_timeout)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_USER_TIMEOUT, 5000), 0);
    uint64_t start = h->now;
    h_app_send(h, "abc", 3);
    for (int i = 0; i < 1000 && tcpsm_sock_state(h->sk) != TCPSM_CLOSED; i++) {
        if (!h_step(h, SEC(60)))
            break;
        h_drain(h);
    }
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ETIMEDOUT);
    /* Gives up when the user timeout is over (Linux clamps the RTO to it). */
    cr_assert_eq(h->now - start, SEC(5), "gave up after %llu ms",
                 (unsigned long long)((h->now - start) / 1000000));
    h_free(h);
}

Test(tcp_fin_wait_1, fin_retransmit_backoff)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_1(h);
    uint64_t rto = rto_now(h);
    for (int i = 0; i < 3; i++) {
        uint64_t t = h_wait_seg(h, SEC(300));
        cr_assert_eq(t, rto, "FIN retransmission %d after %llu ns, want %llu", i + 1,
                     (unsigned long long)t, (unsigned long long)rto);
        EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq - 1, .ack = h->rseq, .len = 0);
        expect_no_seg(h);
        rto *= 2;
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

/* A zero window is probed (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17): with one
 * octet of new data, or (as Linux does) with SEG.SEQ = SND.UNA-1 and no data,
 * either way eliciting an ACK with the current window; probes back off. */
static void expect_probe(struct harness *h, const uint8_t *d)
{
    struct seg s = EXPECT_SEG(h, .ack = h->rseq);
    cr_assert(s.flags & ACK);
    cr_assert_eq(s.flags & (SYN | FIN | RST), 0);
    if (s.len == 0)
        cr_assert_eq(s.seq, h->lseq - 1, "zero-length probe seq %u, want SND.UNA-1 %u", s.seq,
                     h->lseq - 1);
    else {
        cr_assert_eq(s.len, 1, "probe of %zu bytes into a zero window", s.len);
        cr_assert_eq(s.seq, h->lseq);
        cr_assert_eq(((const uint8_t *)s.data)[0], d[0]);
    }
}

Test(tcp_established, zero_window_probe)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    expect_no_seg(h);
    uint8_t d[100];
    h_pattern(d, sizeof d, 22);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 100);
    expect_no_seg(h);
    uint64_t prev = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t t = h_wait_seg(h, SEC(300));
        cr_assert_neq(t, UINT64_MAX, "no zero-window probe %d", i + 1);
        expect_probe(h, d);
        expect_no_seg(h);
        if (i > 0)
            cr_assert(t >= prev, "probe interval shrank: %llu after %llu", (unsigned long long)t,
                      (unsigned long long)prev);
        if (i > 1)
            cr_assert(t > prev, "probes do not back off");
        prev = t;
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
        expect_no_seg(h);
    }
    /* The window never opened: the connection is still alive (probes are
     * answered, RFC 1122 4.2.2.17 says keep probing indefinitely). */
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    /* The window opens: all the data goes, from SND.UNA. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    size_t got = s.len;
    cr_assert(memcmp(s.data, d, s.len) == 0);
    while (got < 100 && recv_seg(h, &s)) {
        cr_assert_eq(s.seq, h->lseq + got);
        cr_assert(memcmp(s.data, d + got, s.len) == 0);
        got += s.len;
    }
    cr_assert_eq(got, 100);
    h_free(h);
}

Test(tcp_established, delayed_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_no_quickack(h);
    /* Let any initial quick-ACK phase pass with a few exchanges. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "a", .len = 1);
    h->rseq += 1;
    uint64_t t = h_wait_seg(h, SEC(1));
    cr_assert(t != UINT64_MAX && t < MS(500), "ACK delayed %llu ns (RFC 1122: < 0.5 s)",
              (unsigned long long)t);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "b", .len = 1);
    h->rseq += 1;
    /* RFC 1122 4.2.3.2 / RFC 5681 4.2: a lone small segment's ACK is delayed... */
    expect_no_seg(h);
    t = h_wait_seg(h, SEC(1));
    /* ...but by less than 500 ms. */
    cr_assert(t != UINT64_MAX && t > 0 && t < MS(500), "ACK delayed %llu ns",
              (unsigned long long)t);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 2);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, delayed_ack_piggybacked)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_no_quickack(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "q", .len = 1);
    h->rseq += 1;
    /* A reply within the delay carries the ACK; no separate pure ACK. */
    uint8_t r[1] = { 'r' };
    cr_assert_eq(tcpsm_sock_send(h->sk, r, 1, h->now), 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 1, .data = r);
    h->lseq += 1;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h_advance(h, SEC(1));
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, keepalive)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_KEEPIDLE, 10), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_KEEPINTVL, 5), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_KEEPCNT, 3), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_KEEPALIVE, 1), 0);
    int v;
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_KEEPIDLE, &v), 0);
    cr_assert_eq(v, 10);
    /* Idle for KEEPIDLE: a probe with SEG.SEQ = SND.NXT-1 (RFC 1122 4.2.3.6). */
    uint64_t t = h_wait_seg(h, SEC(60));
    cr_assert_eq(t, SEC(10), "first keepalive after %llu ns", (unsigned long long)t);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 1, .ack = h->rseq);
    cr_assert(s.len <= 1);
    expect_no_seg(h);
    /* The answer restarts the idle time. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    t = h_wait_seg(h, SEC(60));
    cr_assert_eq(t, SEC(10), "keepalive after an answer: %llu ns", (unsigned long long)t);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 1, .ack = h->rseq);
    /* Unanswered: KEEPINTVL apart, KEEPCNT probes in all, then ETIMEDOUT. */
    for (int i = 0; i < 2; i++) {
        t = h_wait_seg(h, SEC(60));
        cr_assert_eq(t, SEC(5), "keepalive retry after %llu ns", (unsigned long long)t);
        EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 1, .ack = h->rseq);
    }
    h_advance(h, SEC(5));
    h_drain(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ETIMEDOUT);
    h_free(h);
}

Test(tcp_established, keepalive_off_by_default)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_advance(h, SEC(3 * 3600));
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, idle_no_timers_fire)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* An idle connection with nothing in flight sends nothing. */
    h_advance(h, SEC(600));
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

/* RFC 6298 2.2-2.3 with exact numbers: a 100 ms handshake gives SRTT 100,
 * RTTVAR 50, RTO 100 + 4*50 = 300 ms; a second 100 ms sample gives RTTVAR
 * 37.5 and RTO 250 ms. */
Test(tcp_established, rtt_estimator)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    h_advance(h, MS(100));
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.rtt_us, 100000, "srtt %u us", info.rtt_us);
    cr_assert_eq(info.rttvar_us, 50000, "rttvar %u us", info.rttvar_us);
    cr_assert_eq(info.rto_us, 300000, "rto %u us", info.rto_us);
    h_app_send(h, "ping", 4);
    h_advance(h, MS(100));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.rtt_us, 100000, "srtt %u us", info.rtt_us);
    cr_assert_eq(info.rttvar_us, 37500, "rttvar %u us", info.rttvar_us);
    cr_assert_eq(info.rto_us, 250000, "rto %u us", info.rto_us);
    /* And the timer uses it. */
    h_app_send(h, "pong", 4);
    cr_assert_eq(h_wait_seg(h, SEC(5)), MS(250));
    EXPECT_SEG(h, .seq = h->lseq - 4, .len = 4);
    h_free(h);
}

/* RFC 6298 5.3: an ACK of new data restarts the timer for what is left. */
Test(tcp_established, rto_restarts_on_new_ack)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    uint64_t rto = US(info.rto_us);
    h_app_send(h, "aaaa", 4);
    h_advance(h, rto / 2);
    h_app_send(h, "bbbb", 4);
    h_advance(h, rto / 4);
    /* The first is ACKed at 3/4 RTO: the second gets a full RTO from now. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 4, .win = H_RWIN);
    tcpsm_sock_info(h->sk, &info);
    uint64_t t = h_wait_seg(h, SEC(10));
    cr_assert_eq(t, US(info.rto_us), "retransmitted %llu ns after the ACK, RTO %u us",
                 (unsigned long long)t, info.rto_us);
    EXPECT_SEG(h, .seq = h->lseq - 4, .len = 4, .data = "bbbb");
    h_free(h);
}

Test(tcp_established, partial_ack_inside_segment)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 50);
    h_app_send(h, d, 1000);
    /* The peer acknowledges the first 300 bytes only; the RTO resends the rest. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 700, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 700);
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 700, .len = 700, .data = d + 300);
    h_free(h);
}

Test(tcp_fin_wait_1, data_and_fin_retransmitted)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[100];
    h_pattern(d, sizeof d, 51);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 100);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 100, .data = d);
    if (!(s.flags & FIN))
        EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq + 100, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    /* Nothing acknowledged: the RTO resends the data, then the FIN. */
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    s = EXPECT_SEG(h, .seq = h->lseq, .len = 100, .data = d);
    uint32_t fin_seq = h->lseq + 100;
    if (!(s.flags & FIN)) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = fin_seq, .win = H_RWIN);
        EXPECT_SEG(h, .flags = FIN | ACK, .seq = fin_seq, .len = 0);
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = fin_seq + 1, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

Test(tcp_established, fin_waits_for_zero_window)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    uint8_t d[50];
    h_pattern(d, sizeof d, 52);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 50);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    /* The FIN comes after the data, so not before the window opens. */
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(!(s.flags & FIN), "FIN sent ahead of unsent data");
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    s = EXPECT_SEG(h, .seq = h->lseq, .len = 50, .data = d);
    if (!(s.flags & FIN))
        EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq + 50);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 51, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}

/* After an RTO SND.NXT goes back to SND.UNA; a late ACK for everything sent
 * before (up to SND.MAX) is still acceptable and ends the recovery. */
Test(tcp_established, late_ack_after_rto_go_back)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[3 * 1460];
    h_pattern(d, sizeof d, 99);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    for (int i = 0; i < 3; i++)
        EXPECT_SEG(h, .seq = b + 1460u * (uint32_t)i, .len = 1460);
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    EXPECT_SEG(h, .seq = b, .len = 1460);
    expect_no_seg(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + sizeof d, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_challenge_ack, 0);
    h_advance(h, SEC(120));
    expect_no_seg(h);
    h_free(h);
}

/* The receiver closes its window with our data still in flight and keeps
 * answering every probe or retransmission with "window 0": RFC 1122
 * 4.2.2.17 / RFC 9293 3.8.6.1, the connection MUST stay open (Linux:
 * "receiver dastardly shrinks window", no timeout). */
Test(tcp_established, window_shrunk_to_zero_answered_stays_open)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 97);
    h_app_send(h, d, sizeof d);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1000, .win = 0);
    unsigned answered = 0;
    uint64_t start = h->now;
    while (h->now - start < SEC(2 * 3600) && tcpsm_sock_state(h->sk) == TCPSM_ESTABLISHED) {
        if (h_wait_seg(h, SEC(600)) == UINT64_MAX)
            break;
        struct seg s;
        while (recv_seg(h, &s))
            cr_assert(!(s.flags & RST), "connection reset while the peer answers");
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1000, .win = 0);
        answered++;
    }
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    cr_assert(answered >= 10, "only %u probes in two hours", answered);
    /* The window opens: the data is delivered and acknowledged. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 1000, .win = H_RWIN);
    for (int i = 0; i < 5 && tcpsm_sock_txqueued(h->sk); i++) {
        h_wait_seg(h, SEC(200));
        h_drain(h);
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    }
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_free(h);
}

/* An orphan whose peer answers every probe with "window 0" for ever is
 * still freed, once the probes have backed off to the maximum interval
 * (RFC 6429 allows it; Linux tcp_orphan_retries): else any peer could pin
 * TCBs up to max_socks. With the handle held it never gives up (above). */
Test(tcp_established, orphan_in_zero_window_freed)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    uint8_t d[1000] = { 0 };
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 1000);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    uint64_t start = h->now;
    while (h->now - start < SEC(3600) && tcpsm_stack_nsocks(h->st)) {
        if (h_wait_seg(h, SEC(600)) == UINT64_MAX)
            break;
        h_drain(h);
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0, "orphan still alive after an hour of window 0");
    h_free(h);
}
