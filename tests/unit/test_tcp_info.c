/* TCP_INFO fields against Linux's meaning of them (tcp_get_info): the
 * delivered segments (tp->delivered: the SYN, every segment ACKed or
 * SACKed once whatever its size, D-SACKed duplicates, Reno's duplicate
 * ACKs), D-SACK duplicates, the peer's segment size estimate. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

static struct tcpsm_tcp_info info_of(struct harness *h)
{
    struct tcpsm_tcp_info i;
    tcpsm_sock_info(h->sk, &i);
    return i;
}

static void established(struct harness *h, bool sack)
{
    SOCK_ESTABLISHED_WITH(h, .sack_perm = sack);
}

/* n short writes, each its own segment; returns the first's sequence */
static uint32_t send_small(struct harness *h, unsigned n, size_t len)
{
    uint32_t first = h->lseq;
    uint8_t d[100];
    memset(d, 'd', sizeof(d));
    for (unsigned i = 0; i < n; i++) {
        cr_assert_eq(tcpsm_sock_send(h->sk, d, len, h->now), (ssize_t)len);
        EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .len = (int64_t)len);
        h->lseq += (uint32_t)len;
    }
    return first;
}

Test(tcp_info, delivered_counts_the_syn_and_each_segment)
{
    struct harness *h = h_new(NULL);
    established(h, true);
    cr_assert_eq(info_of(h).delivered_segs, 1, "the SYN (Linux tcp_ack)");
    send_small(h, 3, 100);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    /* 300 bytes in three segments: three, not 300/MSS rounded up */
    cr_assert_eq(info_of(h).delivered_segs, 4, "got %u", info_of(h).delivered_segs);
    h_free(h);
}

Test(tcp_info, delivered_counts_sacked_once)
{
    struct harness *h = h_new(NULL);
    established(h, true);
    uint32_t s0 = send_small(h, 3, 100);
    uint8_t opt[40];
    const uint32_t blk[1][2] = { { s0 + 100, s0 + 300 } };
    size_t ol = h_sack_opt(opt, 1, blk);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = s0, .win = H_RWIN, .raw_opts = opt,
         .raw_optlen = ol);
    cr_assert_eq(info_of(h).delivered_segs, 3, "SYN + two SACKed");
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(info_of(h).delivered_segs, 4, "the ACK adds only the hole");
    h_free(h);
}

/* A D-SACK for a retransmission the peer already had: a duplicate
 * delivered (Linux tcp_dsack_seen), counted in tcpi_dsack_dups too. */
Test(tcp_info, dsack_counts_the_duplicate)
{
    struct harness *h = h_new(NULL);
    established(h, true);
    uint32_t s0 = send_small(h, 1, 100);
    /* no ACK: the RTO sends it again */
    cr_assert_neq(h_wait_seg(h, SEC(5)), UINT64_MAX);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = s0, .len = 100);
    uint8_t opt[40];
    const uint32_t blk[1][2] = { { s0, s0 + 100 } };
    size_t ol = h_sack_opt(opt, 1, blk);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .raw_opts = opt,
         .raw_optlen = ol);
    struct tcpsm_tcp_info i = info_of(h);
    cr_assert_eq(i.dsack_dups, 1);
    cr_assert_eq(i.delivered_segs, 3, "SYN, the segment, its duplicate: got %u", i.delivered_segs);
    /* a D-SACK for more than was ever retransmitted is dubious: not delivered */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .raw_opts = opt,
         .raw_optlen = ol);
    i = info_of(h);
    cr_assert_eq(i.dsack_dups, 2);
    cr_assert_eq(i.delivered_segs, 3);
    h_free(h);
}

/* Without SACK (Linux tcp_add_reno_sack / tcp_remove_reno_sacks). */
Test(tcp_info, delivered_without_sack_counts_duplicate_acks)
{
    struct harness *h = h_new(NULL);
    established(h, false);
    static uint8_t d[4 * 1460];
    memset(d, 'b', sizeof(d));
    uint32_t s0 = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    h_drain(h);
    h->lseq += sizeof(d);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = s0, .win = H_RWIN);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = s0, .win = H_RWIN);
    cr_assert_eq(info_of(h).delivered_segs, 3, "SYN + two duplicate ACKs: got %u",
                 info_of(h).delivered_segs);
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(info_of(h).delivered_segs, 5, "four segments in all, each once: got %u",
                 info_of(h).delivered_segs);
    h_free(h);
}

/* tcpi_rcv_mss is the peer's segment size as seen (icsk_ack.rcv_mss),
 * tcpi_advmss ours. */
Test(tcp_info, rcv_mss_is_what_the_peer_sends)
{
    struct harness *h = h_new(NULL);
    established(h, true);
    struct tcpsm_tcp_info i = info_of(h);
    cr_assert_eq(i.rcv_mss, 536, "Linux tcp_initialize_rcv_mss: %u", i.rcv_mss);
    cr_assert_eq(i.advmss, 1460, "no timestamps: the MSS we advertised");
    static uint8_t d[1200];
    memset(d, 'r', sizeof(d));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 1200);
    h->rseq += 1200;
    cr_assert_eq(info_of(h).rcv_mss, 1200);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    cr_assert_eq(info_of(h).rcv_mss, 1200, "the largest seen");
    h_free(h);
}

/* tcpi_rcv_wnd is the window last advertised (Linux tp->rcv_wnd), also
 * before the first ACK after the handshake went out (the SYN's). */
Test(tcp_info, rcv_wnd_is_the_last_window_offered)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    struct tcpsm_tcp_info i = info_of(h);
    cr_assert_gt(i.rcv_wnd, 0, "the SYN's window");
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    h->rseq = h->risn + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    i = info_of(h);
    cr_assert_eq(i.rcv_wnd, (uint32_t)s.win << i.rcv_wscale, "rcv_wnd %u, offered %u << %u",
                 i.rcv_wnd, s.win, i.rcv_wscale);
    h_free(h);
}

/* tcpi_rcv_space is Linux's rcvq_space.space: at first min(rcv_ssthresh,
 * rcv_wnd, 10 x advmss) (tcp_init_buffer_space), then the most the reader
 * took in one round trip when that is more (tcp_rcv_space_adjust); not the
 * receive buffer. */
Test(tcp_info, rcv_space_is_what_the_reader_takes_per_rtt)
{
    struct harness *h = h_new(NULL);
    established(h, true);
    struct tcpsm_tcp_info i = info_of(h);
    cr_assert_eq(i.rcv_space, 10 * 1460, "10 x advmss: got %u", i.rcv_space);
    static uint8_t d[1460], got[20 * 1460];
    memset(d, 'q', sizeof(d));
    for (int k = 0; k < 15; k++) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 1460);
        h->rseq += 1460;
    }
    h_app_recv(h, got, 15 * 1460);      /* the measurement starts */
    h_advance(h, MS(30));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    h->rseq += 100;
    h_app_recv(h, got, 100);            /* a round trip later: 15 x 1460 + 100 in it */
    i = info_of(h);
    cr_assert_eq(i.rcv_space, 15 * 1460 + 100, "got %u", i.rcv_space);
    h_free(h);
}

/* tcpi_busy_time and tcpi_rwnd_limited (Linux tcp_chrono): busy from the
 * write until everything is ACKed, of it limited by the peer's window while
 * the next segment does not fit it; idle time is not busy. */
Test(tcp_info, busy_and_rwnd_limited_time)
{
    struct harness *h = h_new(NULL);
    established(h, true);
    static uint8_t d[4 * 1460];
    memset(d, 'w', sizeof(d));
    /* the peer's window takes one segment */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 1460);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof(d), h->now), (ssize_t)sizeof(d));
    EXPECT_SEG(h, .seq = h->lseq, .len = 1460);
    h->lseq += 1460;
    h_advance(h, MS(10));
    /* ACKed, the window still one segment: the next one goes, the rest waits */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 1460);
    EXPECT_SEG(h, .seq = h->lseq, .len = 1460);
    h->lseq += 1460;
    h_advance(h, MS(20));
    /* the window opens: the rest goes */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h_drain(h);
    h->lseq += 2 * 1460;
    h_advance(h, MS(5));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h_advance(h, MS(100));              /* idle */
    struct tcpsm_tcp_info i = info_of(h);
    cr_assert_eq(i.busy_time_us, 35000, "busy %llu us", (unsigned long long)i.busy_time_us);
    cr_assert_eq(i.rwnd_limited_us, 30000, "rwnd-limited %llu us",
                 (unsigned long long)i.rwnd_limited_us);
    cr_assert_eq(i.sndbuf_limited_us, 0);
    h_free(h);
}
