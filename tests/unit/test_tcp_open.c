/* Opening states of RFC 9293 3.10.7.1-3.10.7.4: CLOSED (no TCB), LISTEN,
 * SYN-SENT and SYN-RECEIVED, each driven by crafted segments. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

/* ------------------------------------------------------------ CLOSED (3.10.7.1) */

Test(tcp_closed, syn_rst_ack)
{
    struct harness *h = h_new(NULL);
    /* ACK off: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, the SYN counts as one. */
    SEND(h, .flags = SYN, .seq = 1000, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 1001, .len = 0, .sport = H_LPORT,
               .dport = H_RPORT);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rst_out, 1);
    h_free(h);
}

Test(tcp_closed, data_without_ack_rst_ack)
{
    struct harness *h = h_new(NULL);
    SEND(h, .flags = PSH, .seq = 7, .data = "hello", .len = 5, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 12, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_closed, syn_fin_counts_both)
{
    struct harness *h = h_new(NULL);
    SEND(h, .flags = FIN, .seq = 50, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 51, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_closed, ack_rst)
{
    struct harness *h = h_new(NULL);
    /* ACK on: <SEQ=SEG.ACK><CTL=RST>. */
    SEND(h, .flags = ACK, .seq = 1000, .ack = 0xdeadbeef, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = 0xdeadbeef, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_closed, data_ack_rst)
{
    struct harness *h = h_new(NULL);
    SEND(h, .flags = PSH | ACK, .seq = 1000, .ack = 77, .data = "abc", .len = 3, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = 77, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_closed, fin_ack_rst)
{
    struct harness *h = h_new(NULL);
    SEND(h, .flags = FIN | ACK, .seq = 1000, .ack = 5555, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = 5555, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_closed, rst_ignored)
{
    struct harness *h = h_new(NULL);
    SEND(h, .flags = RST, .seq = 1000, .win = 0);
    SEND(h, .flags = RST | ACK, .seq = 1000, .ack = 3, .win = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rst_out, 0);
    h_free(h);
}

Test(tcp_closed, unbound_socket_is_closed)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), 0);
    ASSERT_STATE(sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_bind(sk, 0, H_LPORT), 0);
    ASSERT_STATE(sk, TCPSM_CLOSED);
    /* A bound but closed socket is not a listener: the port answers RST. */
    SEND(h, .flags = SYN, .seq = 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 2);
    tcpsm_sock_close(sk, h->now);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

Test(tcp_closed, bad_checksum_dropped)
{
    struct harness *h = h_new(NULL);
    /* A TCP segment with a corrupted checksum never gets a reply. */
    uint8_t f[60] = { 0 };
    memcpy(f, (uint8_t[]){ 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00 }, 14);
    uint8_t *ip = f + 14, *t = f + 34;
    ip[0] = 0x45; ip[3] = 40; ip[6] = 0x40; ip[8] = 64; ip[9] = 6;
    ip[12] = 198; ip[13] = 18; ip[14] = 0; ip[15] = 2;
    ip[16] = 198; ip[17] = 18; ip[18] = 0; ip[19] = 1;
    uint16_t c = h_csum(ip, 20, 0);
    ip[10] = (uint8_t)(c >> 8); ip[11] = (uint8_t)c;
    t[0] = H_RPORT >> 8; t[1] = H_RPORT & 0xff; t[2] = H_LPORT >> 8; t[3] = H_LPORT & 0xff;
    t[7] = 1; t[12] = 0x50; t[13] = SYN; t[14] = 0xff; t[15] = 0xff;
    t[16] = 0x12; t[17] = 0x34;
    h_input(h, f, 54);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_csum, 1);
    h_free(h);
}

/* ------------------------------------------------------------ LISTEN (3.10.7.2) */

Test(tcp_listen, syn)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1, .len = 0, .wscale = 0,
                              .ts = 0, .sack_perm = 0);
    cr_assert(s.mss >= 536 && s.mss <= 1460, "SYN+ACK MSS %u", s.mss);
    cr_assert(s.win > 0);
    expect_no_seg(h);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);
    h_free(h);
}

Test(tcp_listen, syn_options_echoed)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    /* RFC 7323: window scale and timestamps are answered only when offered. */
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS, .wscale = WS(7),
         .ts = true, .tsval = 4242, .tsecr = 0, .sack_perm = true);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1, .len = 0, .ts = 1,
                              .tsecr = 4242);
    cr_assert(s.wscale > 0, "no window scale option in the SYN+ACK");
    cr_assert(s.wscale - 1 <= 14, "window scale %d > 14", s.wscale - 1);
    h_free(h);
}

Test(tcp_listen, rst_ignored)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = RST, .seq = h->risn, .win = 0);
    SEND(h, .flags = RST | ACK, .seq = h->risn, .ack = 1, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_listen, ack_rst)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = ACK, .seq = h->risn, .ack = 0x55555555, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = 0x55555555, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_listen, syn_ack_rst)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    /* A SYN+ACK carries an ACK, which nothing in LISTEN can acknowledge. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = 31337, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = 31337, .len = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_listen, fin_or_data_dropped)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    /* Neither SYN, RST nor ACK: "drop the segment and return". */
    SEND(h, .flags = FIN, .seq = h->risn, .win = H_RWIN);
    SEND(h, .flags = PSH, .seq = h->risn, .data = "x", .len = 1, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_listen, syn_rst_ignored)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = SYN | RST, .seq = h->risn, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_listen, other_port_rst)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = 9, .dport = H_LPORT + 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 10, .sport = H_LPORT + 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    h_free(h);
}

Test(tcp_listen, two_clients_two_connections)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = H_RMSS);
    struct seg a = EXPECT_SEG(h, .flags = SYN | ACK, .ack = 101, .dport = H_RPORT);
    SEND(h, .flags = SYN, .seq = 500, .sport = H_RPORT + 1, .win = H_RWIN, .mss = H_RMSS);
    struct seg b = EXPECT_SEG(h, .flags = SYN | ACK, .ack = 501, .dport = H_RPORT + 1);
    SEND(h, .flags = ACK, .seq = 101, .ack = a.seq + 1, .win = H_RWIN);
    SEND(h, .flags = ACK, .seq = 501, .ack = b.seq + 1, .sport = H_RPORT + 1, .win = H_RWIN);
    expect_no_seg(h);
    struct tcpsm_sock *c1, *c2, *c3;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c1), 0);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c2), 0);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c3), -EAGAIN);
    uint32_t addr;
    uint16_t p1, p2;
    cr_assert_eq(tcpsm_sock_peer(c1, &addr, &p1), 0);
    cr_assert_eq(addr, H_PEER);
    cr_assert_eq(tcpsm_sock_peer(c2, &addr, &p2), 0);
    cr_assert_eq(p1, H_RPORT);
    cr_assert_eq(p2, H_RPORT + 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 3);
    h_free(h);
}

/* RFC 9293 3.5, figure 8: an old duplicate SYN reaches the listener, which
 * answers SYN+ACK; the initiator (crafted here) knows no such connection and
 * answers RST; the listener goes back to LISTEN and accept() never yields a
 * connection for it. Then the real SYN opens exactly one connection. */
Test(tcp_listen, old_duplicate_syn)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = 90, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = 91);
    SEND(h, .flags = RST, .seq = 91, .win = 0);
    expect_no_seg(h);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    /* A late ACK for the dead half-open connection must not create one. */
    SEND(h, .flags = ACK, .seq = 91, .ack = s.seq + 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = s.seq + 1);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);

    SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = H_RMSS);
    s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = 101);
    SEND(h, .flags = ACK, .seq = 101, .ack = s.seq + 1, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0);
    ASSERT_STATE(c, TCPSM_ESTABLISHED);
    struct tcpsm_sock *c2;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c2), -EAGAIN);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    h_free(h);
}

Test(tcp_listen, close_listener_resets_embryos)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    tcpsm_sock_close(h->lsk, h->now);
    h_drain(h);
    h_advance(h, SEC(5));
    h_drain(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    /* The port is closed now. */
    SEND(h, .flags = SYN, .seq = 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 2);
    h_free(h);
}

Test(tcp_listen, api_errors)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), 0);
    cr_assert_eq(tcpsm_sock_bind(sk, 0, H_LPORT), -EADDRINUSE);
    cr_assert_eq(tcpsm_sock_bind(sk, 0x0A000001u, 1), -EADDRNOTAVAIL);
    cr_assert_eq(tcpsm_sock_connect(h->lsk, H_PEER, H_RPORT, h->now), -EINVAL);
    cr_assert_eq(tcpsm_sock_accept(sk, &sk), -EINVAL);
    tcpsm_sock_close(sk, h->now);
    h_free(h);
}

/* ------------------------------------------------------------ SYN-SENT (3.10.7.3) */

Test(tcp_syn_sent, syn_ack)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    cr_assert_eq(tcpsm_sock_poll(h->sk) & TCPSM_POLLOUT, 0);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->risn + 1, .len = 0);
    cr_assert(s.win > 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    cr_assert(tcpsm_sock_poll(h->sk) & TCPSM_POLLOUT);
    cr_assert_eq(tcpsm_sock_error(h->sk), 0);
    /* Linux: the first connect() after a non-blocking one completed says 0,
     * then EISCONN */
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), 0);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EISCONN);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_syn_sent, connect_again_ealready)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EALREADY);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_syn_sent, syn_ack_bad_ack_rst)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    /* SEG.ACK =< ISS: not acceptable: <SEQ=SEG.ACK><CTL=RST>, stay. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lisn, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = h->lisn, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    /* SEG.ACK > SND.NXT: same. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq + 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = h->lseq + 1, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    /* The right SYN+ACK still completes the handshake (figure 8, initiator side). */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->risn + 1);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_syn_sent, ack_bad_rst)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = ACK, .seq = h->risn, .ack = h->lisn - 1000, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = h->lisn - 1000, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    h_free(h);
}

Test(tcp_syn_sent, ack_good_without_syn_dropped)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    /* Acceptable ACK but neither SYN nor RST: drop. */
    SEND(h, .flags = ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    h_free(h);
}

Test(tcp_syn_sent, rst_ack_refused)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lseq, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert(tcpsm_sock_poll(h->sk) & TCPSM_POLLERR);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNREFUSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), 0);
    h_free(h);
}

Test(tcp_syn_sent, rst_without_ack_ignored)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST, .seq = h->risn, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    h_free(h);
}

Test(tcp_syn_sent, rst_bad_ack_ignored)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lseq + 10, .win = 0);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lisn, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    cr_assert_eq(tcpsm_sock_error(h->sk), 0);
    h_free(h);
}

Test(tcp_syn_sent, fin_dropped)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = FIN, .seq = h->risn, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    h_free(h);
}

/* Simultaneous open (RFC 9293 3.5 figure 7). */
Test(tcp_syn_sent, syn_simultaneous_open)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    /* <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> */
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->risn + 1, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_RECEIVED);
    h->rseq = h->risn + 1;
    /* The peer's own SYN+ACK (acking our SYN) completes it. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    /* Its SYN is old now: acknowledge it. */
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert_eq(s.flags & (SYN | RST | FIN), 0, "unexpected flags %#x", s.flags);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    cr_assert(tcpsm_sock_poll(h->sk) & TCPSM_POLLOUT);
    uint8_t d[10];
    h_pattern(d, sizeof d, 1);
    h_app_send(h, d, sizeof d);
    h_free(h);
}

Test(tcp_syn_sent, simultaneous_open_ack)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->risn + 1);
    h->rseq = h->risn + 1;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_syn_sent, simultaneous_open_rst)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->risn + 1);
    /* SYN-RECEIVED from an active OPEN: RST -> connection refused, CLOSED. */
    SEND(h, .flags = RST, .seq = h->risn + 1, .win = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNREFUSED);
    h_free(h);
}

Test(tcp_syn_sent, syn_ack_options)
{
    struct harness *h = h_new(NULL);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    struct seg s = EXPECT_SEG(h, .flags = SYN, .ack = 0, .len = 0, .dport = H_RPORT, .ts = 1,
                              .tsecr = 0);
    cr_assert(s.mss > 0 && s.wscale > 0, "SYN offers mss %u, ws %d", s.mss, s.wscale - 1);
    cr_assert(s.sport != 0);
    h_free(h);
}

Test(tcp_syn_sent, syn_ack_with_mss_limits_segments)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = 536);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 2);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 536, .data = d);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq + 536, .len = 464, .data = d + 536);
    expect_no_seg(h);
    h_free(h);
}

/* RFC 6298 2.1 and 5.5: the SYN goes again after the initial RTO of 1 s,
 * then with the timer doubled each time. */
Test(tcp_syn_sent, syn_retransmit_backoff)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    uint64_t rto = SEC(1);
    for (int i = 0; i < 4; i++) {
        uint64_t t = h_wait_seg(h, SEC(200));
        cr_assert_eq(t, rto, "retransmission %d after %llu ns, want %llu", i + 1,
                     (unsigned long long)t, (unsigned long long)rto);
        EXPECT_SEG(h, .flags = SYN, .seq = h->lisn, .ack = 0, .len = 0);
        expect_no_seg(h);
        rto *= 2;
    }
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_retrans >= 4);
    /* The answer to a retransmitted SYN still completes the handshake. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->risn + 1);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

Test(tcp_syn_sent, syn_timeout_etimedout)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    unsigned n = 0;
    struct seg s;
    while (n < 100 && h_wait_seg(h, SEC(600)) != UINT64_MAX) {
        while (recv_seg(h, &s))
            cr_assert_eq(s.flags & (SYN | RST), s.flags & SYN ? SYN : RST);
        n++;
    }
    cr_assert(n >= 3 && n < 100, "%u retransmissions", n);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ETIMEDOUT);
    cr_assert(tcpsm_stack_counters(h->st)->tcp_conn_timeout >= 1);
    h_free(h);
}

Test(tcp_syn_sent, close_aborts_silently)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    /* Not synchronized: nothing to reset (RFC 9293 3.10.4 CLOSE in SYN-SENT). */
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_advance(h, SEC(10));
    expect_no_seg(h);
    h_free(h);
}

/* ------------------------------------------------------------ SYN-RECEIVED (3.10.7.4) */

Test(tcp_syn_received, ack)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert(tcpsm_sock_poll(h->lsk) & TCPSM_POLLIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    uint32_t a;
    uint16_t p;
    cr_assert_eq(tcpsm_sock_peer(h->sk, &a, &p), 0);
    cr_assert_eq(a, H_PEER);
    cr_assert_eq(p, H_RPORT);
    tcpsm_sock_name(h->sk, &a, &p);
    cr_assert_eq(a, H_ADDR);
    cr_assert_eq(p, H_LPORT);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_passive_opens, 1);
    h_free(h);
}

Test(tcp_syn_received, ack_with_data)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "hello",
         .len = 5);
    h->rseq += 5;
    h_advance(h, MS(500));
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin - 5);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    char b[8];
    h_app_recv(h, b, 5);
    cr_assert(memcmp(b, "hello", 5) == 0);
    h_free(h);
}

Test(tcp_syn_received, ack_bad_rst)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    /* SEG.ACK outside SND.UNA < SEG.ACK =< SND.NXT: <SEQ=SEG.ACK><CTL=RST>. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lisn, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = h->lisn, .len = 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST, .seq = h->lseq + 1, .len = 0);
    expect_no_seg(h);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);
    /* Still half-open: the good ACK completes it. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0);
    h_free(h);
}

Test(tcp_syn_received, rst_back_to_listen)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);
    h_advance(h, SEC(10));
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_syn_received, rst_in_window_challenge_ack)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    /* RFC 5961 3.2 applies to every state but SYN-SENT: in-window, not exact. */
    SEND(h, .flags = RST, .seq = h->rseq + 100, .win = 0);
    struct seg s = EXPECT_SEG(h, .ack = h->rseq, .len = 0);
    cr_assert_eq(s.flags & (RST | FIN), 0);
    cr_assert(s.flags & ACK);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    h_free(h);
}

Test(tcp_syn_received, rst_outside_window_ignored)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = RST, .seq = h->rseq - 10, .win = 0);
    SEND(h, .flags = RST, .seq = h->rseq + 0x40000000u, .win = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    h_free(h);
}

Test(tcp_syn_received, syn_retransmitted)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    /* The peer lost our SYN+ACK and repeats its SYN: the reply must let it
     * complete (the SYN+ACK again, as BSD and Linux do) and create nothing new. */
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .ack = h->rseq, .len = 0);
    cr_assert(s.flags == (SYN | ACK) || s.flags == ACK, "flags %#x", s.flags);
    cr_assert_eq(s.seq, s.flags & SYN ? h->lisn : h->lseq);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EAGAIN);
    h_free(h);
}

Test(tcp_syn_received, unacceptable_seq_ack)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    /* Data far outside the window: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. */
    SEND(h, .flags = ACK, .seq = h->rseq + 0x10000000u, .ack = h->lseq, .win = H_RWIN,
         .data = "zz", .len = 2);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_syn_received, fin)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}

Test(tcp_syn_received, syn_ack_retransmit_backoff)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    uint64_t rto = SEC(1);
    for (int i = 0; i < 3; i++) {
        uint64_t t = h_wait_seg(h, SEC(100));
        cr_assert_eq(t, rto, "SYN+ACK retransmission %d after %llu ns", i + 1,
                     (unsigned long long)t);
        EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->rseq, .len = 0);
        expect_no_seg(h);
        rto *= 2;
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    h_free(h);
}

Test(tcp_syn_received, syn_ack_timeout)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    unsigned n = 0;
    while (n < 100 && h_wait_seg(h, SEC(600)) != UINT64_MAX) {
        h_drain(h);
        n++;
    }
    cr_assert(n >= 2 && n < 100);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1, "half-open connection not dropped");
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    h_free(h);
}

Test(tcp_syn_received, close_listener_rst)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    /* Closing a listener with an unaccepted connection resets it (Linux). */
    tcpsm_sock_close(h->lsk, h->now);
    h->lsk = NULL;
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 0);
    cr_assert(s.flags & RST, "flags %#x", s.flags);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

/* ------------------------------------------------------------ listener queue limits
 * Documented behaviour (Linux's): a SYN that finds the SYN queue full is
 * answered with a SYN cookie and leaves no state (test_tcp_synflood.c); one
 * that finds the accept queue full is dropped without a reply (the peer
 * retransmits it); a final ACK that finds the accept queue full is dropped
 * and the connection stays SYN-RECEIVED until a later ACK finds room. */

static struct seg syn_from(struct harness *h, uint16_t port, uint32_t isn)
{
    SEND(h, .flags = SYN, .seq = isn, .sport = port, .win = H_RWIN, .mss = H_RMSS);
    return EXPECT_SEG(h, .flags = SYN | ACK, .ack = isn + 1, .dport = port);
}

Test(tcp_listen, syn_queue_full)
{
    struct harness *h = h_new(NULL);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(h->lsk, 0, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 2), 0);
    struct seg a = syn_from(h, 1001, 100);
    syn_from(h, 1002, 200);
    SEND(h, .flags = SYN, .seq = 300, .sport = 1003, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .ack = 301, .dport = 1003);     /* a cookie */
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_synq_full, 1);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_syncookies_sent, 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 3);
    /* One completes: its slot in the SYN queue frees up. */
    SEND(h, .flags = ACK, .seq = 101, .ack = a.seq + 1, .sport = 1001, .win = H_RWIN);
    expect_no_seg(h);
    syn_from(h, 1003, 300);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 4);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0);
    uint32_t addr;
    uint16_t port;
    cr_assert_eq(tcpsm_sock_peer(c, &addr, &port), 0);
    cr_assert_eq(port, 1001);
    h_free(h);
}

/* listen(0): the accept queue holds one, as Linux's; a SYN while it is full
 * is dropped (the peer retransmits). */
Test(tcp_listen, accept_queue_full_syn_dropped)
{
    struct harness *h = h_new(NULL);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(h->lsk, 0, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 0), 0);
    struct seg a = syn_from(h, 1001, 100);
    SEND(h, .flags = ACK, .seq = 101, .ack = a.seq + 1, .sport = 1001, .win = H_RWIN);
    expect_no_seg(h);
    SEND(h, .flags = SYN, .seq = 500, .sport = 1002, .win = H_RWIN, .mss = H_RMSS);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_acceptq_full, 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0);
    /* Room again: the retransmitted SYN is answered (by a cookie: with
     * backlog 0 the SYN queue is always full, as Linux's). */
    syn_from(h, 1002, 500);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
    h_free(h);
}

/* The accept queue holds backlog + 1 (Linux sk_acceptq_is_full): with
 * backlog 2 the fourth final ACK is dropped, and lands once there is room. */
Test(tcp_listen, accept_queue_full_ack_dropped)
{
    struct harness *h = h_new(NULL);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(h->lsk, 0, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 2), 0);
    struct seg s1 = syn_from(h, 1001, 100);
    struct seg s2 = syn_from(h, 1002, 200);
    SEND(h, .flags = ACK, .seq = 101, .ack = s1.seq + 1, .sport = 1001, .win = H_RWIN);
    struct seg s3 = syn_from(h, 1003, 300);
    SEND(h, .flags = ACK, .seq = 201, .ack = s2.seq + 1, .sport = 1002, .win = H_RWIN);
    struct seg s4 = syn_from(h, 1004, 400);
    SEND(h, .flags = ACK, .seq = 301, .ack = s3.seq + 1, .sport = 1003, .win = H_RWIN);
    /* The accept queue holds 3 now: the fourth final ACK is dropped. */
    SEND(h, .flags = ACK, .seq = 401, .ack = s4.seq + 1, .sport = 1004, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_listen_overflow, 1);
    struct tcpsm_sock *c1, *c2, *c3, *c4;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c1), 0);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c2), 0);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c3), 0);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c4), -EAGAIN);
    /* The half-open one retransmits its SYN+ACK; the peer's next ACK lands. */
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = s4.seq, .ack = 401, .dport = 1004);
    SEND(h, .flags = ACK, .seq = 401, .ack = s4.seq + 1, .sport = 1004, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c4), 0);
    uint32_t addr;
    uint16_t port;
    cr_assert_eq(tcpsm_sock_peer(c4, &addr, &port), 0);
    cr_assert_eq(port, 1004);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 5);
    h_free(h);
}

/* ------------------------------------------------------------ ICMP errors (RFC 1122 4.2.3.9, RFC 5927) */

Test(tcp_syn_sent, icmp_port_unreachable_refused)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    /* A hard error while opening: the connection fails (Linux: ECONNREFUSED). */
    send_icmp_unreach(h, 3, h->lisn);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNREFUSED);
    h_free(h);
}

Test(tcp_syn_sent, icmp_wrong_seq_ignored)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    /* RFC 5927 4.1: the quoted seq must be within SND.UNA..SND.NXT-1. */
    send_icmp_unreach(h, 3, h->lisn + 12345);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    cr_assert_eq(tcpsm_sock_error(h->sk), 0);
    h_free(h);
}

Test(tcp_syn_sent, icmp_host_unreachable_soft)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    /* A soft error: keep trying; it is what the timeout reports. */
    send_icmp_unreach(h, 1, h->lisn);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    for (int i = 0; i < 100 && tcpsm_sock_state(h->sk) != TCPSM_CLOSED; i++) {
        if (!h_step(h, SEC(600)))
            break;
        h_drain(h);
    }
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), EHOSTUNREACH);
    h_free(h);
}

Test(tcp_established, icmp_port_unreachable_soft)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_app_send(h, "abc", 3);
    /* In a synchronized state hard errors are treated as soft (RFC 5461, Linux). */
    send_icmp_unreach(h, 3, h->lseq - 3);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_free(h);
}

/* SYN-SENT: "If there are other controls or text in the segment, then
 * continue processing at the sixth step" - data and FIN in the SYN+ACK. */
Test(tcp_syn_sent, syn_ack_with_data)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK | PSH, .seq = h->risn, .ack = h->lseq, .win = H_RWIN,
         .mss = H_RMSS, .data = "early", .len = 5);
    h->rseq = h->risn + 1 + 5;
    h_advance(h, MS(500));
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq, "ack %u, want %u", last, h->rseq);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 5);
    cr_assert(memcmp(b, "early", 5) == 0);
    h_free(h);
}

Test(tcp_syn_sent, syn_ack_with_fin)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK | FIN, .seq = h->risn, .ack = h->lseq, .win = H_RWIN,
         .mss = H_RMSS);
    h->rseq = h->risn + 2;
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq, "ack %u, want %u", last, h->rseq);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    h_free(h);
}
