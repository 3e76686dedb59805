/* What the core tells the socket's owner (tcpsm_sock_take_async), at the
 * points where Linux calls sk_wake_async / sk_send_sigurg: the runtime
 * turns these into SIGIO (or F_SETSIG's signal) and SIGURG. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

#define A_URG TCPSM_ASYNC_URG
#define A_IN  TCPSM_ASYNC_IN
#define A_HUP TCPSM_ASYNC_HUP
#define A_OUT TCPSM_ASYNC_OUT
#define A_ERR TCPSM_ASYNC_ERR

static void async_is(struct tcpsm_sock *sk, unsigned want)
{
    unsigned got = tcpsm_sock_take_async(sk);
    cr_assert_eq(got, want, "async %#x, want %#x in %s", got, want,
                 tcpsm_state_name(tcpsm_sock_state(sk)));
}

Test(tcp_async, connected_is_pollout)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    async_is(h->sk, 0);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    async_is(h->sk, A_OUT);
    h_free(h);
}

Test(tcp_async, refused_is_error)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lseq, .win = 0);
    async_is(h->sk, A_ERR);
    h_free(h);
}

Test(tcp_async, reset_is_error)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    async_is(h->sk, A_OUT);
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    async_is(h->sk, A_ERR);
    h_free(h);
}

Test(tcp_async, data_in_order_only)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    async_is(h->sk, A_OUT);
    SEND(h, .flags = ACK, .seq = h->rseq + 10, .ack = h->lseq, .win = H_RWIN, .data = "later",
         .len = 5);
    async_is(h->sk, 0);         /* out of order: nothing to read (tcp_data_queue_ofo) */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "0123456789",
         .len = 10);
    async_is(h->sk, A_IN);      /* the hole filled */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "0123456789",
         .len = 10);
    async_is(h->sk, 0);         /* a duplicate brings nothing new */
    SEND(h, .flags = ACK, .seq = h->rseq + 15, .ack = h->lseq, .win = H_RWIN, .data = "more",
         .len = 4);
    async_is(h->sk, A_IN);      /* every arrival, readable before or not (sock_def_readable) */
    h_free(h);
}

Test(tcp_async, urgent_pointer)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    async_is(h->sk, A_OUT);
    /* URG with pointer 0 names the segment's first byte (Linux tcp_check_urg) */
    SEND(h, .flags = ACK | URG, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "Xab",
         .len = 3);
    async_is(h->sk, A_URG | A_IN);
    h_free(h);
}

Test(tcp_async, fin_half_close_is_in)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    async_is(h->sk, A_OUT);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    async_is(h->sk, A_IN);
    h_free(h);
}

Test(tcp_async, fin_after_our_shutdown_is_hup)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    tcpsm_sock_take_async(h->sk);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    async_is(h->sk, A_HUP | A_IN);      /* tcp_fin's POLL_HUP, then tcp_data_ready's */
    h_free(h);
}

Test(tcp_async, listener_gets_in_per_connection)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    async_is(h->lsk, 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    async_is(h->lsk, A_IN);
    h_free(h);
}

/* The peer ACKs what was sent, segment by segment as it leaves (cwnd
 * lets only part of a full buffer out at once), until upto is ACKed. */
static void ack_upto(struct harness *h, uint32_t upto)
{
    for (int i = 0; i < 1000 && h->lseq != upto; i++) {
        struct seg s;
        if (!recv_seg(h, &s)) {
            h_advance(h, MS(1));
            continue;
        }
        if (s.len && s.seq + (uint32_t)s.len - h->lseq <= upto - h->lseq) {
            h->lseq = s.seq + (uint32_t)s.len;
            SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
        }
    }
    cr_assert_eq(h->lseq, upto, "ACKed up to %u, want %u", h->lseq, upto);
}

/* POLL_OUT for room only after a send found none (sk_stream_write_space
 * with SOCKWQ_ASYNC_NOSPACE), once. */
Test(tcp_async, write_space_after_a_full_buffer)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    async_is(h->sk, A_OUT);
    static uint8_t buf[H_BUF];
    memset(buf, 'w', sizeof(buf));
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, 1000, h->now), 1000);
    ack_upto(h, h->lseq + 1000);
    async_is(h->sk, 0);         /* room all along: no POLL_OUT */
    uint32_t start = h->lseq;
    ssize_t n = tcpsm_sock_send(h->sk, buf, sizeof(buf), h->now);
    cr_assert_eq(n, H_BUF);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, 1, h->now), -EAGAIN);
    ack_upto(h, start + 1460);
    async_is(h->sk, 0);         /* not yet writable (a third of the queue free: Linux) */
    ack_upto(h, start + H_BUF);
    async_is(h->sk, A_OUT);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, 100, h->now), 100);
    ack_upto(h, h->lseq + 100);
    async_is(h->sk, 0);         /* once per time the buffer was found full */
    h_free(h);
}

/* An application's poll that finds no room arms POLL_OUT as a send does
 * (Linux tcp_poll); the core's own poll (wake-ups) does not. */
Test(tcp_async, poll_without_room_arms_write_space)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    tcpsm_sock_take_async(h->sk);
    static uint8_t buf[H_BUF];
    memset(buf, 'p', sizeof(buf));
    uint32_t start = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof(buf), h->now), H_BUF);
    cr_assert_eq(tcpsm_sock_poll(h->sk) & TCPSM_POLLOUT, 0);
    ack_upto(h, start + H_BUF);
    async_is(h->sk, 0);         /* nobody found it full */
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof(buf), h->now), H_BUF);
    cr_assert_eq(tcpsm_sock_poll_app(h->sk) & TCPSM_POLLOUT, 0);
    ack_upto(h, start + 2 * H_BUF);
    async_is(h->sk, A_OUT);
    h_free(h);
}
