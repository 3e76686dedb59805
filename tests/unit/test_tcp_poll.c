/* Readiness per state, exactly as Linux tcp_poll() reports it (core.h):
 * the shim hands these bits to poll/select/epoll unchanged. */
#include <errno.h>

#include "tcp_harness.h"

#define IN     TCPSM_POLLIN
#define OUT    TCPSM_POLLOUT
#define ERR    TCPSM_POLLERR
#define HUP    TCPSM_POLLHUP
#define RDHUP  TCPSM_POLLRDHUP

static void poll_is(struct tcpsm_sock *sk, unsigned want)
{
    unsigned got = tcpsm_sock_poll(sk);
    cr_assert_eq(got, want, "poll %#x, want %#x in %s", got, want,
                 tcpsm_state_name(tcpsm_sock_state(sk)));
}

Test(tcp_poll, fresh_socket)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), 0);
    /* Linux: an unconnected TCP socket is POLLOUT | POLLHUP. */
    poll_is(sk, OUT | HUP);
    tcpsm_sock_close(sk, h->now);
    h_free(h);
}

Test(tcp_poll, listener)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    poll_is(h->lsk, 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    poll_is(h->lsk, IN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    poll_is(h->lsk, 0);
    h_free(h);
}

Test(tcp_poll, connect_progress)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    poll_is(h->sk, 0);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    poll_is(h->sk, OUT);
    h->rseq = h->risn + 1;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x", .len = 1);
    poll_is(h->sk, IN | OUT);
    h_free(h);
}

Test(tcp_poll, refused)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lseq, .win = 0);
    poll_is(h->sk, IN | OUT | ERR | HUP | RDHUP);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNREFUSED);
    poll_is(h->sk, IN | OUT | HUP | RDHUP);
    h_free(h);
}

Test(tcp_poll, reset)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    poll_is(h->sk, IN | OUT | ERR | HUP | RDHUP);
    /* The error is reported once, then EOF; sending is a broken pipe. */
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), -ECONNRESET);
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0);
    cr_assert_eq(tcpsm_sock_send(h->sk, "x", 1, h->now), -EPIPE);
    h_free(h);
}

Test(tcp_poll, close_wait_and_last_ack)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    poll_is(h->sk, IN | OUT | RDHUP);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    poll_is(h->sk, IN | OUT | RDHUP | HUP);
    h_free(h);
}

Test(tcp_poll, half_closed_by_us)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    poll_is(h->sk, OUT);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    poll_is(h->sk, IN | OUT | RDHUP | HUP);
    h_free(h);
}

Test(tcp_poll, send_buffer_full)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    static uint8_t d[1 << 20];
    ssize_t total = 0, n;
    while ((n = tcpsm_sock_send(h->sk, d, sizeof d, h->now)) > 0)
        total += n;
    cr_assert_eq(n, -EAGAIN);
    cr_assert(total > 0);
    poll_is(h->sk, 0);
    h_free(h);
}
