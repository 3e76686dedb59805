/* Socket-level semantics around the state machine (Linux breaks ties):
 * ports held by TIME-WAIT, SO_REUSEADDR, ephemeral ports. */
#include <errno.h>

#include "tcp_harness.h"

Test(tcp_api, time_wait_holds_port)
{
    struct harness *h = h_new(NULL);
    sock_time_wait(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    struct tcpsm_sock *a, *b;
    cr_assert_eq(tcpsm_sock_new(h->st, &a), 0);
    cr_assert_eq(tcpsm_sock_bind(a, 0, H_LPORT), -EADDRINUSE);
    cr_assert_eq(tcpsm_sock_new(h->st, &b), 0);
    cr_assert_eq(tcpsm_sock_setopt(b, TCPSM_OPT_REUSEADDR, 1), 0);
    cr_assert_eq(tcpsm_sock_bind(b, 0, H_LPORT), 0);
    /* Once TIME-WAIT is over the port is free for anyone. */
    h_advance(h, SEC(60));
    cr_assert_eq(tcpsm_sock_bind(a, 0, H_LPORT + 1), 0);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_new(h->st, &c), 0);
    tcpsm_sock_close(b, h->now);
    cr_assert_eq(tcpsm_sock_bind(c, 0, H_LPORT), 0);
    h_free(h);
}

Test(tcp_api, ephemeral_ports)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *a, *b;
    cr_assert_eq(tcpsm_sock_new(h->st, &a), 0);
    cr_assert_eq(tcpsm_sock_new(h->st, &b), 0);
    cr_assert_eq(tcpsm_sock_connect(a, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    cr_assert_eq(tcpsm_sock_connect(b, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    uint32_t addr;
    uint16_t pa, pb;
    tcpsm_sock_name(a, &addr, &pa);
    cr_assert_eq(addr, H_ADDR);
    tcpsm_sock_name(b, &addr, &pb);
    cr_assert(pa >= 32768 && pa <= 60999, "port %u", pa);
    cr_assert(pb >= 32768 && pb <= 60999, "port %u", pb);
    cr_assert_neq(pa, pb);
    struct seg s1 = EXPECT_SEG(h, .flags = SYN, .sport = pa);
    struct seg s2 = EXPECT_SEG(h, .flags = SYN, .sport = pb);
    cr_assert_neq(s1.seq, s2.seq);
    h_free(h);
}

/* RFC 6056 3.3.4: a closed connection's port is not picked again for the
 * next connection to the same destination (the peer may hold it in
 * TIME-WAIT, and a SYN within its timestamp tick would be refused). */
Test(tcp_api, ephemeral_port_not_reused_at_once)
{
    struct harness *h = h_new(NULL);
    uint16_t prev = 0;
    for (int i = 0; i < 8; i++) {
        struct tcpsm_sock *a;
        cr_assert_eq(tcpsm_sock_new(h->st, &a), 0);
        cr_assert_eq(tcpsm_sock_connect(a, H_PEER, H_RPORT, h->now), -EINPROGRESS);
        uint32_t addr;
        uint16_t p;
        tcpsm_sock_name(a, &addr, &p);
        cr_assert_neq(p, prev, "connection %d took the port just freed (%u)", i, p);
        EXPECT_SEG(h, .flags = SYN, .sport = p);
        tcpsm_sock_abort(a, h->now);    /* frees the port at once */
        tcpsm_sock_close(a, h->now);
        h_drain(h);
        prev = p;
    }
    h_free(h);
}

Test(tcp_api, connect_errors)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *a;
    cr_assert_eq(tcpsm_sock_new(h->st, &a), 0);
    /* Not routable from 198.18.0.1/24 without a gateway. */
    cr_assert_eq(tcpsm_sock_connect(a, 0x08080808u, 80, h->now), -ENETUNREACH);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_connect(a, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    EXPECT_SEG(h, .flags = SYN);
    h_free(h);
}

Test(tcp_api, syn_to_bound_connecting_port_rst)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    /* Same local port, another remote port: no TCB, no listener. */
    SEND(h, .flags = SYN, .seq = 42, .sport = H_RPORT + 7, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = 0, .ack = 43, .dport = H_RPORT + 7);
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
    h_free(h);
}

Test(tcp_api, accepted_socket_inherits_options)
{
    struct harness *h = h_new(NULL);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->lsk), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->lsk, TCPSM_OPT_NODELAY, 1), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->lsk, TCPSM_OPT_KEEPALIVE, 1), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->lsk, TCPSM_OPT_KEEPIDLE, 33), 0);
    cr_assert_eq(tcpsm_sock_bind(h->lsk, 0, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 4), 0);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK);
    SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 1, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    int v;
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_NODELAY, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_KEEPALIVE, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_KEEPIDLE, &v), 0);
    cr_assert_eq(v, 33);
    /* And keepalive runs on it: the first probe after 33 idle seconds. */
    h->rseq = h->risn + 1;
    h->lseq = s.seq + 1;
    uint64_t t = h_wait_seg(h, SEC(60));
    cr_assert_eq(t, SEC(33), "first keepalive after %llu ns", (unsigned long long)t);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 1, .ack = h->rseq);
    h_free(h);
}

/* RFC 9293 3.10.5 ABORT: RST only from the synchronized states that can
 * still talk (ESTABLISHED .. CLOSE-WAIT); CLOSING, LAST-ACK and TIME-WAIT
 * just delete the TCB, as do LISTEN and SYN-SENT. */
Test(tcp_api, abort_per_state)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    tcpsm_sock_abort(h->sk, h->now);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    tcpsm_sock_close(h->sk, h->now);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);

    h = h_new(NULL);
    sock_listen(h);
    tcpsm_sock_abort(h->lsk, h->now);
    expect_no_seg(h);
    ASSERT_STATE(h->lsk, TCPSM_CLOSED);
    SEND(h, .flags = SYN, .seq = 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = RST | ACK, .ack = 2);
    h_free(h);

    h = h_new(NULL);
    sock_time_wait(h);
    tcpsm_sock_abort(h->sk, h->now);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);

    h = h_new(NULL);
    sock_close_wait(h);
    tcpsm_sock_abort(h->sk, h->now);
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .len = 0);
    cr_assert(s.flags & RST);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}
