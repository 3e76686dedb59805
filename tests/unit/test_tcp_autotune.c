/* Receive buffer auto-tuning (cfg.rcvbuf_max): the buffer doubles when the
 * reader drains more than a quarter of it per round trip, never beyond the
 * ceiling; the window scale in the SYN covers the ceiling; a slow reader
 * keeps its buffer; SO_RCVBUF turns auto-tuning off. */
#include <errno.h>

#include "tcp_harness.h"

#define BUF0 (32u * 1024u)
#define BUFMAX (4u * BUF0)

static struct harness *established(uint32_t rcvbuf_max, int peer_ws)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.rcvbuf = BUF0;
    cfg.rcvbuf_max = rcvbuf_max;
    struct harness *h = h_new(&cfg);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .wscale = peer_ws);
    h->rseq = h->risn + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h->lwin = s.win;
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    return h;
}

static int rcvbuf(struct harness *h)
{
    int v = 0;
    cr_assert_eq(tcpsm_sock_getopt(h->sk, TCPSM_OPT_RCVBUF, &v), 0);
    return v;
}

/* The peer sends n bytes in segments of 1024 and the application reads
 * them at once; then time moves on by gap. n: a multiple of 1024. */
static void round_trip(struct harness *h, uint32_t n, uint64_t gap)
{
    static uint8_t d[1024];
    for (uint32_t off = 0; off < n; off += sizeof d) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d,
             .len = sizeof d);
        h->rseq += sizeof d;
    }
    uint8_t buf[BUFMAX];
    cr_assert_eq(tcpsm_sock_recv(h->sk, buf, sizeof buf, 0, h->now), (ssize_t)n);
    h_drain(h);
    h_advance(h, gap);
}

Test(tcp_autotune, syn_window_scale_covers_the_ceiling)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.rcvbuf = BUF0;
    cfg.rcvbuf_max = 4u << 20;
    struct harness *h = h_new(&cfg);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_bind(h->sk, H_ADDR, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    /* 4 MiB needs a shift of 7 (4 MiB >> 6 = 65536 > 65535) */
    EXPECT_SEG(h, .flags = SYN, .wscale = WS(7));
    h_free(h);
}

Test(tcp_autotune, fast_reader_grows_buffer_up_to_ceiling)
{
    struct harness *h = established(BUFMAX, WS(0));
    cr_assert_eq(rcvbuf(h), (int)BUF0);
    /* no timestamps, no RTT sample: a round trip counts as 1 ms; the reader
     * takes half the buffer per round trip */
    round_trip(h, BUF0 / 2, MS(1));
    round_trip(h, BUF0 / 2, MS(1));
    cr_assert_eq(rcvbuf(h), (int)(2 * BUF0));
    /* the larger window is announced: the next ACK offers more than the
     * old buffer could */
    uint8_t d[1000];
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 1000);
    h->rseq += 1000;
    cr_assert_neq(h_wait_seg(h, MS(500)), UINT64_MAX);     /* the delayed ACK */
    struct seg s = EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    uint8_t ws = 0;
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    ws = info.rcv_wscale;
    cr_assert_gt((uint32_t)s.win << ws, BUF0, "window %u << %u", s.win, ws);
    cr_assert_eq(tcpsm_sock_recv(h->sk, d, sizeof d, 0, h->now), 1000);
    for (int i = 0; i < 10; i++)
        round_trip(h, BUF0, MS(1));
    cr_assert_eq(rcvbuf(h), (int)BUFMAX, "never beyond the ceiling");
    h_free(h);
}

Test(tcp_autotune, slow_reader_keeps_buffer)
{
    struct harness *h = established(BUFMAX, WS(0));
    /* half the buffer per 100 ms: far below a quarter per round trip */
    for (int i = 0; i < 5; i++)
        round_trip(h, BUF0 / 2, MS(100));
    cr_assert_eq(rcvbuf(h), (int)BUF0);
    h_free(h);
}

Test(tcp_autotune, so_rcvbuf_turns_it_off)
{
    struct harness *h = established(BUFMAX, WS(0));
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_RCVBUF, (int)BUF0), 0);
    int set = rcvbuf(h);
    for (int i = 0; i < 5; i++)
        round_trip(h, BUF0 / 2, MS(1));
    cr_assert_eq(rcvbuf(h), set);
    h_free(h);
}

Test(tcp_autotune, off_without_ceiling)
{
    struct harness *h = established(0, WS(0));
    for (int i = 0; i < 5; i++)
        round_trip(h, BUF0 / 2, MS(1));
    cr_assert_eq(rcvbuf(h), (int)BUF0);
    h_free(h);
}
