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
