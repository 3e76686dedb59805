/* Malformed TCP input: a counted drop or a defined answer,
 * never a crash, a hang or a corrupted connection. Plus the corners of the
 * RFC 9293 3.10.7 rules the state tests do not reach. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

/* The connection still works after the abuse. */
static void still_works(struct harness *h)
{
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "ok",
         .len = 2);
    h->rseq += 2;
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 2);
    cr_assert(memcmp(b, "ok", 2) == 0);
    h_advance(h, MS(500));
    h_drain(h);
    h_app_send(h, "fine", 4);
}

Test(tcp_malformed, data_offset_too_small)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .doff = 4, .data = "xx",
         .len = 2);
    expect_no_seg(h);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_drop_hdr >= 1);
    still_works(h);
    h_free(h);
}

Test(tcp_malformed, data_offset_past_end)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .doff = 15, .data = "xx",
         .len = 2);
    expect_no_seg(h);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_drop_hdr >= 1);
    still_works(h);
    h_free(h);
}

Test(tcp_malformed, option_length_zero_and_overrun)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    /* kind 2 with length 0 would loop forever in a naive parser; kind 8
     * claiming 40 bytes runs past the header. */
    SEND(h, .flags = SYN, .seq = 1, .sport = 1001, .win = H_RWIN,
         .raw_opts = (const uint8_t[]){ 2, 0, 5, 0 }, .raw_optlen = 4);
    SEND(h, .flags = SYN, .seq = 1, .sport = 1002, .win = H_RWIN,
         .raw_opts = (const uint8_t[]){ 8, 40, 0, 0 }, .raw_optlen = 4);
    SEND(h, .flags = SYN, .seq = 1, .sport = 1003, .win = H_RWIN,
         .raw_opts = (const uint8_t[]){ 3, 1 }, .raw_optlen = 2);
    /* Whatever the answers (a SYN+ACK ignoring the bad options, or a drop),
     * each is well-formed and the listener survives. */
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.flags == (SYN | ACK) || (s.flags & RST), "flags %#x", s.flags);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    h_free(h);
}

Test(tcp_malformed, wscale_above_14_clamped)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.rcvbuf = 1u << 20;
    struct harness *h = h_new(&cfg);
    sock_syn_sent(h);
    /* RFC 7323 2.3: a shift above 14 is used as 14. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = 1000, .mss = H_RMSS,
         .wscale = WS(30));
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_wscale, 14);
    h_free(h);
}

Test(tcp_malformed, mss_zero_or_tiny)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN,
         .raw_opts = (const uint8_t[]){ 2, 4, 0, 0 }, .raw_optlen = 4);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    /* An MSS of 0 must not stall or loop: data still goes, in sane pieces. */
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t d[200];
    h_pattern(d, sizeof d, 40);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 200);
    struct seg s;
    size_t got = 0;
    for (int i = 0; i < 300 && recv_seg(h, &s); i++) {
        cr_assert(s.len > 0, "empty data segment");
        cr_assert_eq(s.seq, h->lseq + got);
        got += s.len;
    }
    cr_assert(got > 0, "nothing sent with MSS 0");
    h_free(h);
}

Test(tcp_malformed, sack_blocks_garbage)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .sack_perm = true);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    h_app_send(h, "abcdef", 6);
    /* SACK blocks for data never sent, inverted, and spanning 2^31. */
    uint8_t o[2 + 3 * 8] = { 5, 26 };
    uint32_t e[6] = { h->lseq + 1000, h->lseq + 2000, h->lseq, h->lseq - 6,
                      h->lseq - 0x7FFFFFFF, h->lseq + 0x7FFFFFFF };
    for (int i = 0; i < 6; i++) {
        o[2 + 4 * i] = (uint8_t)(e[i] >> 24);
        o[3 + 4 * i] = (uint8_t)(e[i] >> 16);
        o[4 + 4 * i] = (uint8_t)(e[i] >> 8);
        o[5 + 4 * i] = (uint8_t)e[i];
    }
    for (int i = 0; i < 4; i++)
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 6, .win = H_RWIN, .raw_opts = o,
             .raw_optlen = sizeof o);
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_malformed, truncated_ip_payload)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    /* An IPv4 header whose total length cuts the TCP header short. */
    uint8_t f[60] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 };
    uint8_t *ip = f + 14;
    ip[0] = 0x45; ip[3] = 30; ip[8] = 64; ip[9] = 6;
    ip[12] = 198; ip[13] = 18; ip[15] = 2;
    ip[16] = 198; ip[17] = 18; ip[19] = 1;
    uint16_t c = h_csum(ip, 20, 0);
    ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
    h_input(h, f, sizeof f);
    expect_no_seg(h);
    still_works(h);
    h_free(h);
}

Test(tcp_malformed, syn_fin_to_listener)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    /* SYN+FIN (a scanner's probe): Linux drops it; whatever happens, no
     * connection may reach the accept queue in a half-closed state by magic. */
    SEND(h, .flags = SYN | FIN, .seq = 77, .win = H_RWIN, .mss = H_RMSS);
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(!(s.flags & FIN), "FIN in answer to SYN+FIN");
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);
    h_free(h);
}

Test(tcp_malformed, syn_flood_bounded)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);     /* backlog 8 */
    for (uint16_t p = 1; p <= 200; p++)
        SEND(h, .flags = SYN, .seq = p * 1000u, .sport = p, .win = H_RWIN, .mss = H_RMSS);
    unsigned synacks = 0;
    struct seg s;
    while (recv_seg(h, &s))
        synacks += s.flags == (SYN | ACK);
    /* 8 embryos, then stateless SYN cookies */
    cr_assert_eq(synacks, 200);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 9);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_synq_full, 192);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_syncookies_sent, 192);
    /* The embryos time out; the listener is whole again. */
    for (int i = 0; i < 1000 && tcpsm_stack_nsocks(h->st) > 1; i++) {
        if (!h_step(h, SEC(600)))
            break;
        h_drain(h);
    }
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_malformed, max_socks_limit)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.max_socks = 3;
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = 10, .sport = 1, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK);
    SEND(h, .flags = SYN, .seq = 10, .sport = 2, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK);
    /* The fourth TCB is refused (counted): the SYN gets a cookie instead. */
    SEND(h, .flags = SYN, .seq = 10, .sport = 3, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .ack = 11);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_syncookies_sent, 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 3);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_drop_max_socks >= 1);
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), -ENOBUFS);
    h_free(h);
}

/* ------------------------------------------------------------ RFC corners */

Test(tcp_syn_received, syn_in_window_resets)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    /* RFC 9293 3.10.7.4 fourth: a (new) SYN in SYN-RECEIVED from a passive
     * OPEN returns the connection to LISTEN (Linux also answers RST). */
    SEND(h, .flags = SYN, .seq = h->rseq + 10, .win = H_RWIN, .mss = H_RMSS);
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.flags & RST, "flags %#x", s.flags);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    h_free(h);
}

Test(tcp_listen, syn_without_mss_uses_536)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    /* RFC 9293 3.7.1 / RFC 6691: no MSS option means 536. */
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1);
    h->lseq = s.seq + 1;
    h->rseq = h->risn + 1;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 41);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 1000);
    EXPECT_SEG(h, .seq = h->lseq, .len = 536, .data = d);
    EXPECT_SEG(h, .seq = h->lseq + 536, .len = 464, .data = d + 536);
    h_free(h);
}

Test(tcp_established, window_update_rule_wl1_wl2)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    struct tcpsm_tcp_info info;
    /* A later segment (higher SEG.SEQ) with window 100, then an earlier one
     * (reordered) with window 5000: RFC 9293 3.10.7.4 keeps 100. */
    SEND(h, .flags = ACK, .seq = h->rseq + 10, .ack = h->lseq, .win = 100, .data = "0123456789",
         .len = 10);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 5000, .data = "abcdefghij",
         .len = 10);
    h->rseq += 20;
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_wnd, 100, "snd_wnd %u", info.snd_wnd);
    /* The next in-order segment updates it. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 5000);
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_wnd, 5000);
    h_free(h);
}

Test(tcp_closed, segment_after_reset_rst)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    /* The TCB is gone even though the application holds the handle: the
     * peer's next segment meets a closed port. */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x",
         .len = 1);
    EXPECT_SEG(h, .flags = RST, .seq = h->lseq, .len = 0);
    h_free(h);
}

Test(tcp_time_wait, syn_reopens_with_listener)
{
    struct harness *h = h_new(NULL);
    sock_established_passive(h);
    /* We close first: TIME-WAIT on the listener's port. */
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq);
    h->lseq++;
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    /* RFC 6191 / RFC 1122 4.2.2.13: a new SYN above RCV.NXT may reopen. */
    SEND(h, .flags = SYN, .seq = h->rseq + 100000, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .ack = h->rseq + 100001);
    cr_assert_eq(s.flags, SYN | ACK, "flags %#x", s.flags);
    SEND(h, .flags = ACK, .seq = h->rseq + 100001, .ack = s.seq + 1, .win = H_RWIN);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0);
    ASSERT_STATE(c, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_established, receiver_sws_avoidance)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    static uint8_t d[65536];
    h_pattern(d, h->lwin, 42);
    for (uint32_t off = 0; off < h->lwin;) {
        uint32_t n = h->lwin - off < 1000 ? h->lwin - off : 1000;
        SEND(h, .flags = ACK, .seq = h->rseq + off, .ack = h->lseq, .win = H_RWIN, .data = d + off,
             .len = n);
        off += n;
    }
    h->rseq += h->lwin;
    h_advance(h, MS(500));
    h_drain(h);
    /* RFC 1122 4.2.3.3: reading a little must not advertise a tiny window. */
    uint8_t b[100];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 100);
    h_advance(h, MS(500));
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.win == 0 || s.win >= h->lmss, "window of %u advertised", s.win);
    h_free(h);
}
