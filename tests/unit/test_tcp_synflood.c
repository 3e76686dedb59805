/* The connection table under attack: SYN cookies when the SYN queue is
 * full (RFC 4987 3.6, Linux's encoding), listeners found apart from their
 * children, TIME-WAIT recycled when the table is full, SYN figures. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

/* Fill the SYN queue of a listener with backlog 2 from ports 1000, 1001. */
static void listen_full(struct harness *h)
{
    sock_listen(h);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 2), 0);
    for (uint16_t p = 1000; p < 1002; p++) {
        SEND(h, .flags = SYN, .seq = 7, .win = H_RWIN, .mss = H_RMSS, .sport = p);
        EXPECT_SEG(h, .flags = SYN | ACK, .dport = p);
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 3);
}

static struct tcpsm_tcp_info linfo(struct harness *h)
{
    struct tcpsm_tcp_info in;
    tcpsm_sock_info_at(h->lsk, &in, h->now);
    return in;
}

/* With the SYN queue full, the SYN+ACK carries a cookie and no TCB is
 * made; the ACK that returns it makes the connection, with the MSS, window
 * scale and SACK-permitted the SYN asked for (timestamps carry the last
 * two). */
Test(tcp_syncookie, full_synq_cookie_roundtrip)
{
    struct harness *h = h_new(NULL);
    listen_full(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = 5000, .mss = 1460, .wscale = WS(7),
         .sack_perm = true, .ts = true, .tsval = 4242, .tsecr = 0);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1, .ts = 1, .tsecr = 4242,
                              .sack_perm = 1);
    cr_assert_eq(s.mss, 1460);
    cr_assert_eq(s.tsval & 0x3f, 0x10 | 7, "options in the TSval: %#x", s.tsval & 0x3f);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 3, "a cookie SYN+ACK kept state");
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_syncookies_sent, 1);
    uint8_t data[300];
    h_pattern(data, sizeof(data), 1);
    h_advance(h, MS(5));
    SEND(h, .flags = ACK | PSH, .seq = h->risn + 1, .ack = s.seq + 1, .win = 1000, .ts = true,
         .tsval = 4250, .tsecr = s.tsval, .data = data, .len = sizeof(data));
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_syncookies_recv, 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 4);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    struct tcpsm_tcp_info in;
    tcpsm_sock_info_at(h->sk, &in, h->now);
    cr_assert(in.ts_ok && in.sack_ok && in.ws_ok);
    cr_assert_eq(in.snd_wscale, 7);
    cr_assert_eq(in.snd_wnd, 1000u << 7);
    cr_assert_eq(in.snd_mss, 1460 - 12);
    uint8_t got[300];
    h_app_recv(h, got, sizeof(got));
    cr_assert_arr_eq(got, data, sizeof(data));
    /* and the connection carries data back */
    h_drain(h);
    cr_assert_eq(tcpsm_sock_send(h->sk, "pong", 4, h->now), 4);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = s.seq + 1, .ack = h->risn + 1 + 300, .len = 4);
    struct tcpsm_tcp_info l = linfo(h);
    cr_assert_eq(l.syn_count, 3);
    cr_assert_eq(l.syn_cookies_sent, 1);
    cr_assert_eq(l.syn_cookies_ok, 1);
    cr_assert_eq(l.syn_queue, 2);
    h_free(h);
}

/* Without timestamps only the MSS survives (rounded down to the table). */
Test(tcp_syncookie, no_timestamps_mss_only)
{
    struct harness *h = h_new(NULL);
    listen_full(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = 5000, .mss = 1400, .wscale = WS(7),
         .sack_perm = true);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1);
    cr_assert_eq(s.mss, 1300);
    SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 1, .win = 1000);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    struct tcpsm_tcp_info in;
    tcpsm_sock_info_at(h->sk, &in, h->now);
    cr_assert(!in.ts_ok && !in.sack_ok && !in.ws_ok);
    cr_assert_eq(in.snd_mss, 1300);
    cr_assert_eq(in.snd_wnd, 1000);
    h_free(h);
}

/* A forged or stale cookie makes nothing: RST, counted. */
Test(tcp_syncookie, bad_and_stale_cookies_rejected)
{
    struct harness *h = h_new(NULL);
    listen_full(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = 5000, .mss = 1460);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK);
    SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 2, .win = 1000);
    EXPECT_SEG(h, .flags = RST, .seq = s.seq + 2);
    /* the peer's ISN enters the cookie linearly (as Linux's): a wrong one
     * shifts the MSS index out of the table */
    SEND(h, .flags = ACK, .seq = h->risn + 11, .ack = s.seq + 1, .win = 1000);
    EXPECT_SEG(h, .flags = RST);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_syncookies_failed, 2);
    /* the right cookie, two minutes later: too old */
    h_advance(h, SEC(121));
    h_drain(h);
    uint64_t before = tcpsm_stack_nsocks(h->st);
    SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 1, .win = 1000);
    EXPECT_SEG(h, .flags = RST);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), before);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), -EAGAIN);
    h_free(h);
}

/* A flood of spoofed SYNs: the SYN queue stays at its bound, the table
 * does not grow, and a real client still gets its connection. */
Test(tcp_syncookie, flood_then_real_client)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 64), 0);
    for (unsigned i = 0; i < 3000; i++) {
        SEND(h, .flags = SYN, .seq = i * 7919u, .win = 1024, .mss = 1460,
             .sport = (uint16_t)(2000 + i));
        h_drain(h);
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1 + 64);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = 1460, .ts = true, .tsval = 9,
         .sport = 60000);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = 60000);
    SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 1, .win = H_RWIN, .ts = true,
         .tsval = 10, .tsecr = s.tsval, .sport = 60000);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    struct tcpsm_tcp_info l = linfo(h);
    cr_assert_eq(l.syn_count, 3001);
    cr_assert_eq(l.syn_cookies_sent, 3001 - 64);
    cr_assert_eq(l.syn_rate, 0);
    h_advance(h, SEC(1));
    cr_assert_eq(linfo(h).syn_rate, 3001, "rate %u", linfo(h).syn_rate);
    cr_assert_eq(tcpsm_stack_syn_rate(h->st, h->now), 3001);
    h_advance(h, SEC(1));
    cr_assert_eq(tcpsm_stack_syn_rate(h->st, h->now), 0);
    h_free(h);
}

/* Many connections on the listener's port do not hide it (own table) and
 * do not slow the port chain's removals (doubly linked). */
Test(tcp_listen_table, listener_found_among_many_children)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 4096), 0);
    for (unsigned i = 0; i < 2000; i++) {
        uint16_t p = (uint16_t)(3000 + i);
        SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = 1460, .sport = p);
        struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = p);
        SEND(h, .flags = ACK, .seq = 101, .ack = s.seq + 1, .win = H_RWIN, .sport = p);
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2001);
    struct tcpsm_sock *c;
    unsigned n = 0;
    while (tcpsm_sock_accept(h->lsk, &c) == 0) {
        tcpsm_sock_abort(c, h->now);
        tcpsm_sock_close(c, h->now);
        n++;
    }
    cr_assert_eq(n, 2000);
    h_drain(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = 1460, .sport = 9999);
    EXPECT_SEG(h, .flags = SYN | ACK, .dport = 9999);
    h_free(h);
}

/* TIME-WAIT never blocks a new connection: at the table's limit the oldest
 * orphaned TIME-WAIT TCB goes (counted), as Linux past tcp_max_tw_buckets. */
Test(tcp_listen_table, time_wait_recycled_when_full)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.max_socks = 4;
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    /* three passive connections closed by us first: TIME-WAIT each */
    for (uint16_t p = 5000; p < 5003; p++) {
        SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = 1460, .sport = p);
        struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = p);
        SEND(h, .flags = ACK, .seq = 101, .ack = s.seq + 1, .win = H_RWIN, .sport = p);
        struct tcpsm_sock *c;
        cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0);
        tcpsm_sock_close(c, h->now);
        EXPECT_SEG(h, .flags = FIN | ACK, .dport = p);
        SEND(h, .flags = FIN | ACK, .seq = 101, .ack = s.seq + 2, .win = H_RWIN, .sport = p);
        EXPECT_SEG(h, .flags = ACK, .dport = p);
        ASSERT_STATE(c, TCPSM_TIME_WAIT);
        h_advance(h, MS(10));
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 4);
    /* a fourth client: the oldest TIME-WAIT (port 5000) makes room */
    SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = 1460, .sport = 6000);
    EXPECT_SEG(h, .flags = SYN | ACK, .dport = 6000);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_tw_recycled, 1);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_max_socks, 0);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 4);
    /* port 5000's TIME-WAIT is gone (a segment for it meets no TCB: RST),
     * 5001's is still there (it ACKs a retransmitted FIN) */
    SEND(h, .flags = ACK, .seq = 102, .ack = 1, .win = H_RWIN, .sport = 5000);
    EXPECT_SEG(h, .flags = RST, .dport = 5000);
    h_free(h);
}
