/* Defects of issue 11, each a crafted-segment test that failed before its
 * fix: Karn's rule for the RTO backoff (RFC 6298 5.7), keepalive refreshed
 * only by acceptable segments, connect() after an asynchronous outcome
 * (Linux __inet_stream_connect), the tail loss probe (RFC 8985 7.3),
 * duplicate ACKs and SACK blocks when data leaves in the same pass,
 * MSG_MORE, TCP_INFO, and the RFC 5961 7 rate limits. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

static struct tcpsm_tcp_info info(struct harness *h)
{
    struct tcpsm_tcp_info in;
    tcpsm_sock_info_at(h->sk, &in, h->now);
    return in;
}

/* ESTABLISHED (active) with SACK permitted, an RTT sample of rtt. */
static void established_sack(struct harness *h, uint64_t rtt)
{
    sock_syn_sent(h);
    h_advance(h, rtt);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .sack_perm = true);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
}

/* RFC 6298 5.7 / Karn: an ACK that covers only retransmitted data gives no
 * RTT sample, so the backed-off RTO stays for the next segment. Before:
 * every ACK reset the backoff, and a peer whose RTT exceeds the RTO kept
 * the sender retransmitting at the short RTO for ever. */
Test(tcp_defects, rto_backoff_kept_without_rtt_sample)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t a[100], b[100];
    h_pattern(a, sizeof(a), 1);
    h_pattern(b, sizeof(b), 2);
    h_app_send(h, a, sizeof(a));
    uint32_t rto = info(h).rto_us;
    uint64_t w = h_wait_seg(h, SEC(5));
    cr_assert(w != UINT64_MAX);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 100, .len = 100);
    cr_assert_eq(info(h).backoff, 1);
    /* the peer ACKs the retransmission: ambiguous, no sample */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(info(h).backoff, 1, "backoff reset by an ACK of retransmitted data");
    cr_assert_eq(info(h).retransmits, 0);
    h_app_send(h, b, sizeof(b));
    w = h_wait_seg(h, SEC(10));
    cr_assert(w != UINT64_MAX);
    cr_assert_geq(w, US(2ull * rto), "next RTO after %llu ns, RTO %u us: backoff lost",
                  (unsigned long long)w, rto);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 100, .len = 100);
    /* a valid sample (the new segment, ACKed before any retransmission of
     * it... here after one, so still none) */
    h_free(h);
}

/* After a valid sample the backoff is gone. */
Test(tcp_defects, rto_backoff_reset_by_rtt_sample)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t a[100], b[100];
    h_pattern(a, sizeof(a), 1);
    h_pattern(b, sizeof(b), 2);
    h_app_send(h, a, sizeof(a));
    cr_assert(h_wait_seg(h, SEC(5)) != UINT64_MAX);
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h_app_send(h, b, sizeof(b));
    h_advance(h, MS(30));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);   /* timed: a sample */
    cr_assert_eq(info(h).backoff, 0);
    h_free(h);
}

/* Keepalive (RFC 1122 4.2.3.6) counts only segments that pass the checks:
 * out-of-window segments (blind or stale) must not keep a dead peer alive. */
Test(tcp_defects, keepalive_ignores_out_of_window_segments)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_KEEPIDLE, 10), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_KEEPALIVE, 1), 0);
    for (int i = 0; i < 4; i++) {
        h_advance(h, SEC(2));
        SEND(h, .flags = ACK, .seq = h->rseq + 1000000, .ack = h->lseq, .win = H_RWIN);
        h_drain(h);
    }
    uint64_t w = h_wait_seg(h, SEC(3));
    cr_assert(w != UINT64_MAX, "no keepalive probe: out-of-window segments refreshed it");
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq - 1, .len = 0);
    /* an acceptable answer does refresh it */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(h_wait_seg(h, SEC(9)), UINT64_MAX);
    h_free(h);
}

/* Linux: connect() on a socket whose attempt failed asynchronously reports
 * that error (once) and sends nothing; the next one starts over. */
Test(tcp_defects, connect_after_async_failure_reports_error)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lseq);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -ECONNREFUSED);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    EXPECT_SEG(h, .flags = SYN, .len = 0);
    h_free(h);
}

/* The error already taken by SO_ERROR: ECONNABORTED (Linux), then anew. */
Test(tcp_defects, connect_after_error_read_econnaborted)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = RST | ACK, .seq = 0, .ack = h->lseq);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNREFUSED);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -ECONNABORTED);
    expect_no_seg(h);
    h_free(h);
}

/* A connection that was established and then reset stays "connected" for
 * connect() (Linux SS_CONNECTED): EISCONN, no new handshake. */
Test(tcp_defects, connect_after_reset_eisconn)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), 0);
    SEND(h, .flags = RST, .seq = h->rseq);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EISCONN);
    expect_no_seg(h);
    h_free(h);
}

/* RFC 8985 7.3: the probe is new data when some is queued and the peer's
 * window takes it, and the RTO is armed again from the probe. */
Test(tcp_defects, tlp_sends_new_data_and_rearms_rto)
{
    struct harness *h = h_new(NULL);
    established_sack(h, MS(50));
    static uint8_t buf[30000];
    h_pattern(buf, sizeof(buf), 3);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof(buf), h->now), (ssize_t)sizeof(buf));
    struct seg s;
    uint32_t end = h->lseq;
    unsigned n = 0;
    while (recv_seg(h, &s)) {
        cr_assert_eq(s.seq, end);
        end += (uint32_t)s.len;
        n++;
    }
    cr_assert(n >= 2 && end - h->lseq < sizeof(buf), "cwnd should hold data back (%u segs)", n);
    uint64_t w = h_wait_seg(h, SEC(1));
    cr_assert(w != UINT64_MAX);
    cr_assert_lt(w, MS(190), "the probe should come at 2*SRTT, came after %llu ns",
                 (unsigned long long)w);
    s = EXPECT_SEG(h, .flags = ACK);
    cr_assert_eq(s.seq, end, "TLP resent old data (seq %u) though new data was queued (%u)",
                 s.seq, end);
    cr_assert(s.len > 0);
    uint32_t rto = info(h).rto_us;
    w = h_wait_seg(h, SEC(5));
    cr_assert(w != UINT64_MAX);
    cr_assert_geq(w, US(rto), "RTO not re-armed after the probe: fired %llu ns later, RTO %u us",
                  (unsigned long long)w, rto);
    s = EXPECT_SEG(h, .flags = ACK);
    cr_assert_eq(s.seq, h->lseq, "the RTO resends the head");
    h_free(h);
}

/* Without queued data the probe is the last segment, and still re-arms. */
Test(tcp_defects, tlp_resends_tail_without_new_data)
{
    struct harness *h = h_new(NULL);
    established_sack(h, MS(50));
    uint8_t buf[3000];
    h_pattern(buf, sizeof(buf), 4);
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, sizeof(buf), h->now), (ssize_t)sizeof(buf));
    h_drain(h);
    uint64_t w = h_wait_seg(h, SEC(1));
    cr_assert(w != UINT64_MAX);
    struct seg s = EXPECT_SEG(h, .flags = ACK);
    cr_assert_eq(s.seq + s.len, h->lseq + sizeof(buf));
    uint32_t rto = info(h).rto_us;
    w = h_wait_seg(h, SEC(5));
    cr_assert_geq(w, US(rto));
    h_free(h);
}

/* Out-of-order data whose ACK field also lets our own data go: the
 * duplicate ACK leaves as a pure ACK first (RFC 5681 2: a segment with data
 * is no duplicate ACK), then the data. Before: only the data segment. */
Test(tcp_defects, dupack_not_lost_when_data_leaves)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t a[100], b[100], ooo[100];
    h_pattern(a, sizeof(a), 5);
    h_pattern(b, sizeof(b), 6);
    h_pattern(ooo, sizeof(ooo), 7);
    h_app_send(h, a, sizeof(a));
    cr_assert_eq(tcpsm_sock_send(h->sk, b, sizeof(b), h->now), 100);
    expect_no_seg(h);                   /* Nagle: one small segment in flight */
    SEND(h, .flags = ACK, .seq = h->rseq + 1000, .ack = h->lseq, .win = H_RWIN, .data = ooo,
         .len = sizeof(ooo));
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 100, .data = b);
    expect_no_seg(h);
    h_free(h);
}

/* SACK blocks ride on data segments too (RFC 2018 4), within the MSS. */
Test(tcp_defects, sack_blocks_on_data_segments)
{
    struct harness *h = h_new(NULL);
    established_sack(h, MS(10));
    uint8_t ooo[100];
    h_pattern(ooo, sizeof(ooo), 8);
    SEND(h, .flags = ACK, .seq = h->rseq + 1000, .ack = h->lseq, .win = H_RWIN, .data = ooo,
         .len = sizeof(ooo));
    struct seg s = EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    cr_assert_eq(s.nsack, 1);
    static uint8_t big[4000];
    h_pattern(big, sizeof(big), 9);
    cr_assert_eq(tcpsm_sock_send(h->sk, big, sizeof(big), h->now), (ssize_t)sizeof(big));
    unsigned n = 0;
    while (recv_seg(h, &s)) {
        cr_assert(s.len > 0);
        cr_assert_eq(s.nsack, 1, "data segment %u without the SACK block", n);
        cr_assert_eq(s.sack[0][0], h->rseq + 1000);
        cr_assert_eq(s.sack[0][1], h->rseq + 1100);
        cr_assert_leq(s.len + 12, H_RMSS, "payload + SACK option beyond the MSS");
        n++;
    }
    cr_assert_geq(n, 3);
    h_free(h);
}

/* MSG_MORE holds this call's partial segment like TCP_CORK: the next send
 * without it carries both; alone, it leaves at the 200 ms cork ceiling. */
Test(tcp_defects, msg_more_corks_one_call)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t buf[200];
    h_pattern(buf, sizeof(buf), 10);
    cr_assert_eq(tcpsm_sock_sendf(h->sk, buf, 100, TCPSM_MSG_MORE, h->now), 100);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_sendf(h->sk, buf + 100, 100, 0, h->now), 100);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 200, .data = buf);
    h->lseq += 200;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_sendf(h->sk, buf, 50, TCPSM_MSG_MORE, h->now), 50);
    expect_no_seg(h);
    uint64_t w = h_wait_seg(h, SEC(1));
    cr_assert(w != UINT64_MAX && w <= MS(200));
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 50, .data = buf);
    /* and it was one call only: the next small send goes at once */
    h->lseq += 50;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_sendf(h->sk, buf, 10, 0, h->now), 10);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 10);
    h_free(h);
}

/* TCP_INFO: the fields Linux fills that the stack knows. */
Test(tcp_defects, tcp_info_fields)
{
    struct harness *h = h_new(NULL);
    established_sack(h, MS(20));
    uint8_t a[300], r[200];
    h_pattern(a, sizeof(a), 11);
    h_pattern(r, sizeof(r), 12);
    h_app_send(h, a, sizeof(a));
    h_advance(h, MS(20));
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = r,
         .len = sizeof(r));
    h->rseq += sizeof(r);
    SEND(h, .flags = ACK, .seq = h->rseq + 500, .ack = h->lseq, .win = H_RWIN, .data = r,
         .len = 10);
    h_advance(h, MS(7));
    struct tcpsm_tcp_info in = info(h);
    cr_assert_eq(in.bytes_sent, 300);
    cr_assert_eq(in.bytes_acked, 301, "the SYN and 300 bytes (Linux)");
    cr_assert_eq(in.bytes_received, 200);
    cr_assert_eq(in.data_segs_out, 1);
    cr_assert_eq(in.data_segs_in, 2);
    cr_assert_eq(in.rcv_ooopack, 1);
    cr_assert(in.sack_ok && in.ws_ok == false);
    cr_assert_eq(in.last_data_recv_ms, 7);
    cr_assert_eq(in.last_data_sent_ms, 27);
    cr_assert_eq(in.last_ack_recv_ms, 7);
    cr_assert(in.min_rtt_us > 0 && in.min_rtt_us <= 20000);
    cr_assert_eq(in.pmtu, 1500);
    cr_assert_eq(in.advmss, 1460);
    cr_assert_eq(in.rcv_mss, 536, "segments below 536 leave Linux's first estimate");
    cr_assert_eq(in.ca_state, 0);
    cr_assert_eq(in.total_rto, 0);
    h_free(h);
}

/* A connection set up by fixture, with 100 bytes of pattern sent
 * (one segment, taken off the link). */
static struct harness *open_and_send_100(void (*fixture)(struct harness *))
{
    struct harness *h = h_new(NULL);
    fixture(h);
    uint8_t a[100];
    h_pattern(a, sizeof(a), 13);
    h_app_send(h, a, sizeof(a));
    return h;
}

Test(tcp_defects, tcp_info_rto_figures)
{
    struct harness *h = open_and_send_100(sock_established);
    cr_assert(h_wait_seg(h, SEC(5)) != UINT64_MAX);
    h_drain(h);
    cr_assert(h_wait_seg(h, SEC(5)) != UINT64_MAX);
    h_drain(h);
    struct tcpsm_tcp_info in = info(h);
    cr_assert_eq(in.total_rto, 2, "total_rto %u", in.total_rto);
    cr_assert_eq(in.total_rto_recoveries, 1);
    cr_assert_eq(in.ca_state, 4);
    cr_assert_eq(in.bytes_retrans, 200);
    h_advance(h, MS(10));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    in = info(h);
    cr_assert(in.total_rto_time_ms > 0);
    cr_assert_eq(in.ca_state, 0);
    h_free(h);
}

/* RFC 5961 7 + CVE-2016-5696: challenge ACKs are limited per connection,
 * so a burst of blind RSTs draws one answer, not one each. */
Test(tcp_defects, challenge_ack_per_socket_limit)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    for (int i = 0; i < 20; i++)
        SEND(h, .flags = RST, .seq = h->rseq + 10 + (uint32_t)i);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_advance(h, MS(600));
    SEND(h, .flags = SYN, .seq = h->rseq + 7);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    for (int i = 0; i < 20; i++)
        SEND(h, .flags = SYN, .seq = h->rseq + 7);
    expect_no_seg(h);
    cr_assert_geq(tcpsm_stack_counters(h->st)->tcp_ack_skipped, 39);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    h_free(h);
}

/* The stack-wide budget is random in [limit/2, 3*limit/2) per second. */
Test(tcp_defects, challenge_ack_global_budget_randomised)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.max_socks = 4000;
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 4096), 0);
    enum { N = 1600 };
    /* N passive connections from distinct ports, left unaccepted */
    for (int i = 0; i < N; i++) {
        uint16_t port = (uint16_t)(20000 + i);
        SEND(h, .flags = SYN, .seq = 1000, .win = H_RWIN, .mss = H_RMSS, .sport = port);
        struct seg s = EXPECT_SEG(h, .flags = SYN | ACK);
        SEND(h, .flags = ACK, .seq = 1001, .ack = s.seq + 1, .win = H_RWIN, .sport = port);
    }
    h_drain(h);
    h_advance(h, SEC(1));
    unsigned answered[2];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++)
            SEND(h, .flags = RST, .seq = 5000, .sport = (uint16_t)(20000 + i));
        answered[round] = h_queued(h);
        h_drain(h);
        h_advance(h, SEC(1));
    }
    for (int round = 0; round < 2; round++)
        cr_assert(answered[round] >= 500 && answered[round] < 1500, "budget %u",
                  answered[round]);
    cr_assert_neq(answered[0], answered[1], "the same budget two seconds running");
    h_free(h);
}

/* PAWS failures (RFC 7323 5.3) are answered at most once per 500 ms. */
Test(tcp_defects, paws_ack_rate_limited)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .ts = true, .tsval = 1000, .tsecr = 1);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .len = 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 2000, .tsecr = 1);
    for (int i = 0; i < 10; i++)
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
             .tsval = 500, .tsecr = 1, .data = "x", .len = 1);
    EXPECT_SEG(h, .flags = ACK, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

/* tcpi_bytes_acked as Linux (tcp_snd_una_update): the sequence space the
 * peer acknowledged, our FIN too; a passive connection's SYN+ACK not (the
 * active opener's SYN is counted: tcp_info_fields). */
Test(tcp_defects, tcp_info_bytes_acked_passive_with_fin)
{
    struct harness *h = open_and_send_100(sock_established_passive);
    cr_assert_eq(info(h).bytes_acked, 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(info(h).bytes_acked, 100, "not the SYN+ACK of a passive open");
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    cr_assert_eq(info(h).bytes_acked, 101, "the FIN is acknowledged sequence space");
    h_free(h);
}
