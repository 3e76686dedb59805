/* Data transfer details: options (RFC 7323 window scale and timestamps with
 * PAWS, RFC 2018 SACK, RFC 6691 MSS), fast retransmit (RFC 5681 3.2,
 * RFC 6582), ISNs (RFC 6528) and our own sequence numbers wrapping 2^32. */
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"
#include "tcp_seq.h"

/* Active open answered by a SYN+ACK carrying the given options. */
static struct seg established_with(struct harness *h, int ws, bool ts, bool sack)
{
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .wscale = ws, .ts = ts, .tsval = 1000, .tsecr = 0, .sack_perm = sack);
    h->rseq = h->risn + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0,
                              .ts = ts, .mss = 0, .wscale = 0);
    h->lwin = s.win;
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    return s;
}

Test(tcp_options, window_scale)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.rcvbuf = 1u << 20;
    struct harness *h = h_new(&cfg);
    sock_syn_sent(h);
    struct tcpsm_tcp_info info;
    /* The SYN's own window is never scaled (RFC 7323 2.2). */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = 1000, .mss = H_RMSS,
         .wscale = WS(2));
    h->rseq = h->risn + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    tcpsm_sock_info(h->sk, &info);
    cr_assert(info.rcv_wscale > 0, "1 MiB receive buffer without window scaling");
    cr_assert_eq(info.snd_wscale, 2);
    cr_assert_eq(info.snd_wnd, 1000);
    /* Our window field is the offer shifted by our scale. */
    cr_assert_eq(s.win, info.rcv_wnd >> info.rcv_wscale, "win %u, rcv_wnd %u >> %u", s.win,
                 info.rcv_wnd, info.rcv_wscale);
    /* After the SYN the peer's window is scaled: 100 << 2 = 400 bytes. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 100);
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_wnd, 400);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 30);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 1000);
    cr_assert(h_wait_seg(h, SEC(1)) != UINT64_MAX, "window never used");   /* SWS override */
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 400, .data = d);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_options, window_scale_only_if_both)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.rcvbuf = 1u << 20;
    struct harness *h = h_new(&cfg);
    sock_syn_sent(h);
    /* The peer did not offer window scaling: neither side scales. */
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = 1000, .mss = H_RMSS);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .win = 65535);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.rcv_wscale, 0);
    cr_assert_eq(info.snd_wscale, 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 100);
    uint8_t d[1000];
    h_pattern(d, sizeof d, 31);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 1000);
    cr_assert(h_wait_seg(h, SEC(1)) != UINT64_MAX, "window never used");   /* SWS override */
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .len = 100, .data = d);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_options, timestamps_echo_and_mss)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, true, false);
    struct seg s;
    /* RFC 7323 3: every segment carries TSopt, TSecr = TS.Recent. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 2000, .tsecr = 0, .data = "ab", .len = 2);
    h->rseq += 2;
    h_advance(h, MS(500));
    s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .ts = 1, .tsecr = 2000);
    /* The 12 option bytes come out of the MSS: 1460 - 12 = 1448 per segment. */
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t d[3000];
    h_pattern(d, sizeof d, 32);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 3000);
    struct seg a = EXPECT_SEG(h, .seq = h->lseq, .len = 1448, .data = d, .ts = 1, .tsecr = 2000);
    EXPECT_SEG(h, .seq = h->lseq + 1448, .len = 1448, .data = d + 1448, .ts = 1);
    EXPECT_SEG(h, .seq = h->lseq + 2896, .len = 104, .data = d + 2896, .ts = 1);
    /* TSval is monotonic. */
    cr_assert((int32_t)(a.tsval - s.tsval) >= 0);
    h_free(h);
}

Test(tcp_options, paws_drops_old_timestamp)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, true, false);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 5000, .data = "new", .len = 3);
    h->rseq += 3;
    h_advance(h, MS(500));
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .tsecr = 5000);
    /* RFC 7323 5.3: TSval older than TS.Recent: drop, ACK. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 4000, .data = "old", .len = 3);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .ts = 1, .tsecr = 5000);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 3);
    /* RFC 7323 5.2: RSTs are acceptable regardless of their timestamp. */
    SEND(h, .flags = RST, .seq = h->rseq, .win = 0);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    h_free(h);
}

Test(tcp_options, no_timestamps_unless_offered)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, false, false);
    h_app_send(h, "abc", 3);
    h_free(h);
}

Test(tcp_options, sack_blocks_for_out_of_order)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, false, true);
    uint8_t d[300];
    h_pattern(d, sizeof d, 33);
    SEND(h, .flags = ACK, .seq = h->rseq + 100, .ack = h->lseq, .win = H_RWIN, .data = d + 100,
         .len = 100);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(s.nsack, 1, "%u SACK blocks", s.nsack);
    cr_assert_eq(s.sack[0][0], h->rseq + 100);
    cr_assert_eq(s.sack[0][1], h->rseq + 200);
    SEND(h, .flags = ACK, .seq = h->rseq + 250, .ack = h->lseq, .win = H_RWIN, .data = d + 250,
         .len = 50);
    s = EXPECT_SEG(h, .flags = ACK, .ack = h->rseq);
    /* RFC 2018 4: the first block reports the most recent segment. */
    cr_assert_eq(s.nsack, 2);
    cr_assert_eq(s.sack[0][0], h->rseq + 250);
    cr_assert_eq(s.sack[0][1], h->rseq + 300);
    cr_assert_eq(s.sack[1][0], h->rseq + 100);
    cr_assert_eq(s.sack[1][1], h->rseq + 200);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    s = EXPECT_SEG(h, .flags = ACK, .ack = h->rseq + 200);
    cr_assert_eq(s.nsack, 1);
    cr_assert_eq(s.sack[0][0], h->rseq + 250);
    h_free(h);
}

Test(tcp_options, syn_ack_mss_clamp_option)
{
    struct harness *h = h_new(NULL);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_MAXSEG, 1000), 0);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    EXPECT_SEG(h, .flags = SYN, .mss = 1000);
    h_free(h);
}

/* RFC 5681 3.2: the third duplicate ACK retransmits the missing segment at
 * once; RFC 6582: a partial ACK retransmits the next hole. */
Test(tcp_established, fast_retransmit_newreno)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[6 * 1460];
    h_pattern(d, sizeof d, 34);
    uint32_t base = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    for (int i = 0; i < 6; i++)
        EXPECT_SEG(h, .seq = base + 1460u * (uint32_t)i, .len = 1460);
    expect_no_seg(h);
    /* Segments 0 and 2 were lost: 1, 3, 4, 5 arrive, each making a dup ACK. */
    for (int i = 0; i < 2; i++) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN);
        expect_no_seg(h);
    }
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = base, .len = 1460, .data = d);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_fast_retrans, 1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN);
    /* Partial ACK (up to the second hole): retransmit it at once. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base + 2 * 1460, .win = H_RWIN);
    struct seg s;
    bool found = false;
    while (recv_seg(h, &s))
        if (s.seq == base + 2 * 1460 && s.len == 1460) {
            cr_assert(memcmp(s.data, d + 2 * 1460, 1460) == 0);
            found = true;
        }
    cr_assert(found, "no retransmission after a partial ACK (RFC 6582 3.2 step 5)");
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base + sizeof d, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h_free(h);
}

Test(tcp_established, dup_ack_with_data_or_window_change_not_counted)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[4 * 1460];
    h_pattern(d, sizeof d, 35);
    uint32_t base = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    for (int i = 0; i < 4; i++)
        EXPECT_SEG(h, .seq = base + 1460u * (uint32_t)i, .len = 1460);
    /* RFC 5681 2: an ACK that changes the window is not a duplicate. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN - 1);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN - 2);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN - 3);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_fast_retrans, 0);
    h_free(h);
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a clock; the same tuple later
 * gets a later ISN, another tuple an unrelated one. */
static uint32_t syn_isn(struct harness *h, uint16_t lport)
{
    struct tcpsm_sock *sk;
    cr_assert_eq(tcpsm_sock_new(h->st, &sk), 0);
    cr_assert_eq(tcpsm_sock_bind(sk, 0, lport), 0);
    cr_assert_eq(tcpsm_sock_connect(sk, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    struct seg s = EXPECT_SEG(h, .flags = SYN);
    tcpsm_sock_close(sk, h->now);
    h_drain(h);
    return s.seq;
}

Test(tcp_isn, rfc6528)
{
    struct harness *h = h_new(NULL);
    uint32_t a0 = syn_isn(h, 1111), b0 = syn_isn(h, 2222);
    cr_assert_neq(a0, b0);
    h_advance(h, SEC(1));
    uint32_t a1 = syn_isn(h, 1111);
    cr_assert(seq_gt(a1, a0), "ISN did not advance with time");
    cr_assert(a1 - a0 < 0x10000000u, "ISN jumped by %u in 1 s", a1 - a0);
    h_free(h);

    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.secret[0] ^= 1;
    h = h_new(&cfg);
    uint32_t c0 = syn_isn(h, 1111);
    cr_assert_neq(c0, a0, "the ISN does not depend on the secret");
    h_free(h);
}

/* Our own sequence numbers across 2^32: the ISN is a clock plus a hash, so
 * connect at the virtual time that puts it 1000 bytes before the wrap. */
Test(tcp_established, seq_wraparound_send)
{
    struct harness *h = h_new(NULL);
    uint32_t s0 = syn_isn(h, H_LPORT);
    h_advance(h, SEC(1));
    uint32_t s1 = syn_isn(h, H_LPORT);
    uint32_t rate = s1 - s0;                    /* ISN ticks per second */
    cr_assert(rate > 0);
    uint32_t target = 0xFFFFFFFFu - 1000;
    uint64_t ticks = (uint32_t)(target - s1);
    h_advance(h, ticks * SEC(1) / rate);
    sock_established(h);
    int32_t miss = (int32_t)(h->lisn - target);
    cr_assert(miss >= -2 && miss <= 2, "ISN %#x, aimed at %#x", h->lisn, target);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[4000];
    h_pattern(d, sizeof d, 36);
    uint32_t base = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), 4000);
    uint32_t off = 0;
    struct seg s;
    while (recv_seg(h, &s)) {
        cr_assert_eq(s.seq, base + off);
        cr_assert(memcmp(s.data, d + off, s.len) == 0);
        off += (uint32_t)s.len;
    }
    cr_assert_eq(off, 4000);
    cr_assert(base + off < base, "did not cross 2^32");
    /* Partial ACK across the wrap, then the rest. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base + 2000, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 2000);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base + 4000, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    h->lseq = base + 4000;
    /* And the close, with the FIN past the wrap. */
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq + 1, .ack = h->rseq + 1);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_free(h);
}

/* RFC 5827: with fewer than four segments out and nothing new to send, the
 * threshold drops to ceil(ownd/SMSS)-1 duplicate ACKs; with one segment out
 * it would be 0 and early retransmit is not used. */
Test(tcp_established, early_retransmit_two_segments)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[2 * 1460];
    h_pattern(d, sizeof d, 37);
    uint32_t base = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    EXPECT_SEG(h, .seq = base, .len = 1460);
    EXPECT_SEG(h, .seq = base + 1460, .len = 1460);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = base, .win = H_RWIN);
    EXPECT_SEG(h, .flags = ACK, .seq = base, .len = 1460, .data = d);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_established, one_segment_dup_ack_no_retransmit)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_app_send(h, "single", 6);
    /* A duplicated pure ACK (the network copied it) is no loss signal. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 6, .win = H_RWIN);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq - 6, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_fast_retrans, 0);
    h_free(h);
}

/* RFC 6675: with SACK, the holes are resent once the scoreboard says they
 * are lost, and SACKed segments are never resent. */
Test(tcp_options, sack_recovery_resends_holes_only)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, false, true);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[6 * 1460];
    h_pattern(d, sizeof d, 70);
    uint32_t b = h->lseq;
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    for (int i = 0; i < 6; i++)
        EXPECT_SEG(h, .seq = b + 1460u * (uint32_t)i, .len = 1460);
    /* Segments 0 and 2 lost; 1, 3, 4, 5 arrive and are SACKed one by one. */
    uint8_t o[40];
    const uint32_t M = 1460;
    uint32_t s1[1][2] = { { b + M, b + 2 * M } };
    uint32_t s3[2][2] = { { b + 3 * M, b + 4 * M }, { b + M, b + 2 * M } };
    uint32_t s4[2][2] = { { b + 3 * M, b + 5 * M }, { b + M, b + 2 * M } };
    uint32_t s5[2][2] = { { b + 3 * M, b + 6 * M }, { b + M, b + 2 * M } };
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .raw_opts = o,
         .raw_optlen = h_sack_opt(o, 1, s1));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .raw_opts = o,
         .raw_optlen = h_sack_opt(o, 2, s3));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .raw_opts = o,
         .raw_optlen = h_sack_opt(o, 2, s4));
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b, .win = H_RWIN, .raw_opts = o,
         .raw_optlen = h_sack_opt(o, 2, s5));
    bool hole0 = false, hole2 = false;
    struct seg s;
    while (recv_seg(h, &s)) {
        if (!s.len)
            continue;
        cr_assert(s.seq == b || s.seq == b + 2 * M, "resent SACKed data at +%u", s.seq - b);
        cr_assert(memcmp(s.data, d + (s.seq - b), s.len) == 0);
        hole0 |= s.seq == b;
        hole2 |= s.seq == b + 2 * M;
    }
    cr_assert(hole0, "first hole not retransmitted before the RTO");
    /* The ACK for the first hole (SACK still covering the rest) brings the second. */
    if (!hole2) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 2 * M, .win = H_RWIN, .raw_opts = o,
             .raw_optlen = h_sack_opt(o, 1, (const uint32_t (*)[2])s5));
        while (recv_seg(h, &s)) {
            cr_assert(!s.len || s.seq == b + 2 * M, "resent SACKed data at +%u", s.seq - b);
            hole2 |= s.len && s.seq == b + 2 * M;
        }
    }
    cr_assert(hole2, "second hole not retransmitted before the RTO");
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 6 * M, .win = H_RWIN);
    cr_assert_eq(tcpsm_sock_txqueued(h->sk), 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_rto, 0);
    h_free(h);
}

/* RFC 7323 4.3: with delayed ACKs, the ACK echoes the TSval of the earliest
 * unacknowledged segment (TS.Recent moves only when SEG.SEQ <= Last.ACK.sent). */
Test(tcp_options, timestamp_echo_with_delayed_ack)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, true, false);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 3000, .data = "a", .len = 1);
    SEND(h, .flags = ACK, .seq = h->rseq + 1, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 3100, .data = "b", .len = 1);
    h->rseq += 2;
    h_advance(h, MS(500));
    struct seg s, last = { 0 };
    unsigned acks = 0;
    while (recv_seg(h, &s)) {
        last = s;
        acks++;
    }
    cr_assert_eq(last.ack, h->rseq);
    cr_assert(last.ts);
    /* One delayed ACK for both echoes 3000; had the first byte been ACKed at
     * once, the second ACK would rightly echo 3100. */
    cr_assert_eq(last.tsecr, acks == 1 ? 3000u : 3100u, "tsecr %u after %u ACKs", last.tsecr,
                 acks);
    h_free(h);
}

/* RFC 7323 5.5: TS.Recent older than 24 days is invalidated, so an idle
 * connection's old timestamps do not make PAWS drop the peer forever. */
Test(tcp_options, paws_24_day_idle)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, true, false);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 0x70000000u, .data = "x", .len = 1);
    h->rseq += 1;
    h_advance(h, MS(500));
    h_drain(h);
    h_advance(h, SEC(25ull * 86400));
    h_drain(h);
    /* The peer's clock wrapped meanwhile: a TSval "older" than TS.Recent. */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 5, .data = "y", .len = 1);
    h->rseq += 1;
    h_advance(h, MS(500));
    struct seg s;
    uint32_t last = 0;
    while (recv_seg(h, &s))
        last = s.ack;
    cr_assert_eq(last, h->rseq, "segment dropped by PAWS after 25 idle days");
    cr_assert_eq(tcpsm_sock_rxavail(h->sk), 2);
    h_free(h);
}

/* RFC 5681 3.1 / RFC 6928: the initial window is min(10*MSS, max(2*MSS,
 * 14600)) = 10 segments of 1460; slow start adds one MSS per ACK, so ten
 * ACKs, each for one segment, release twenty new segments. */
Test(tcp_established, initial_window_and_slow_start)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.sndbuf = 1u << 20;
    struct harness *h = h_new(&cfg);
    sock_established(h);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    static uint8_t d[60 * 1460];
    h_pattern(d, sizeof d, 80);
    cr_assert_eq(tcpsm_sock_send(h->sk, d, sizeof d, h->now), (ssize_t)sizeof d);
    uint32_t b = h->lseq;
    unsigned n = 0;
    struct seg s;
    while (recv_seg(h, &s)) {
        cr_assert_eq(s.seq, b + 1460u * n);
        cr_assert_eq(s.len, 1460);
        n++;
    }
    cr_assert_eq(n, 10, "initial window of %u segments", n);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_cwnd, 10);
    unsigned more = 0;
    for (unsigned i = 1; i <= 10; i++) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = b + 1460u * i, .win = H_RWIN);
        while (recv_seg(h, &s)) {
            cr_assert_eq(s.seq, b + 1460u * (10 + more));
            more++;
        }
    }
    cr_assert_eq(more, 20, "%u segments after ten ACKs in slow start", more);
    tcpsm_sock_info(h->sk, &info);
    cr_assert_eq(info.snd_cwnd, 20);
    h_free(h);
}

/* The window we advertise is honoured: a peer that sends exactly up to the
 * latest advertised right edge (ACK + window << scale), in odd sizes, with
 * the application reading slowly, never has a byte dropped; the edge on the
 * wire recedes by less than one scale unit at most (RFC 7323 appendix F),
 * and never creeps past the receive buffer. */
Test(tcp_options, advertised_window_is_honoured)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.rcvbuf = 300000;
    struct harness *h = h_new(&cfg);
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS,
         .wscale = WS(0));
    h->rseq = h->risn + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK);
    struct tcpsm_tcp_info info;
    tcpsm_sock_info(h->sk, &info);
    unsigned ws = info.rcv_wscale;
    cr_assert(ws > 0);
    uint32_t edge = s.ack + ((uint32_t)s.win << ws);
    static uint8_t d[1460], b[5000];
    h_pattern(d, sizeof d, 95);
    uint32_t x = 12345, acked = 0;
    bool zero = false;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        uint32_t n = 1 + x % 1460;
        uint32_t room = (int32_t)(edge - h->rseq) > 0 ? edge - h->rseq : 0;
        if (n > room)
            n = room;
        if (n)
            SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d,
                 .len = n);
        h->rseq += n;
        if (x % 7 == 0)
            tcpsm_sock_recv(h->sk, b, 1 + (x >> 8) % sizeof b, 0, h->now);
        if (x % 5 == 0)
            h_advance(h, MS(50));
        while (recv_seg(h, &s)) {
            uint32_t e = s.ack + ((uint32_t)s.win << ws);
            cr_assert((int32_t)(edge - e) < (1 << ws), "step %d: right edge receded by %d", i,
                      (int32_t)(edge - e));
            cr_assert(e - s.ack <= cfg.rcvbuf, "window %u beyond the buffer", e - s.ack);
            edge = e;
            zero |= s.win == 0;
            acked = s.ack;
        }
        cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_rcvbuf, 0,
                     "step %d: data inside the advertised window dropped", i);
    }
    cr_assert(zero, "the window never closed: the test missed the interesting cases");
    h_advance(h, MS(500));
    while (recv_seg(h, &s))
        acked = s.ack;
    cr_assert_eq(acked, h->rseq, "ACK at +%u of +%u", acked - h->risn, h->rseq - h->risn);
    h_free(h);
}

/* RFC 6191: in TIME-WAIT with timestamps, a SYN whose TSval is newer may
 * reopen the connection even if its sequence number is not; an older TSval
 * gets the ACK instead. */
static void time_wait_with_ts(struct harness *h)
{
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS, .ts = true,
         .tsval = 100);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1, .ts = 1, .tsecr = 100);
    h->lseq = s.seq + 1;
    h->rseq = h->risn + 1;
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 101, .tsecr = s.tsval);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    s = EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ts = 1);
    h->lseq++;
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .ts = true,
         .tsval = 102, .tsecr = s.tsval);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .tsecr = 102);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
}

Test(tcp_time_wait, syn_with_newer_timestamp_reopens)
{
    struct harness *h = h_new(NULL);
    time_wait_with_ts(h);
    SEND(h, .flags = SYN, .seq = h->rseq - 5000, .win = H_RWIN, .mss = H_RMSS, .ts = true,
         .tsval = 200);
    struct seg s = EXPECT_SEG(h, .ack = h->rseq - 5000 + 1);
    cr_assert_eq(s.flags, SYN | ACK, "flags %#x", s.flags);
    cr_assert(seq_gt(s.seq, h->lseq), "new ISN %u not beyond the old SND.NXT %u", s.seq, h->lseq);
    h_free(h);
}

Test(tcp_time_wait, syn_with_older_timestamp_acked)
{
    struct harness *h = h_new(NULL);
    time_wait_with_ts(h);
    SEND(h, .flags = SYN, .seq = h->rseq + 5000, .win = H_RWIN, .mss = H_RMSS, .ts = true,
         .tsval = 50);
    struct seg s = EXPECT_SEG(h, .seq = h->lseq, .ack = h->rseq);
    cr_assert_eq(s.flags, ACK, "flags %#x", s.flags);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
    h_free(h);
}

/* RFC 2883: a segment received twice is reported once, as the first SACK
 * block of the ACK it draws (below the ACK: wholly or partly old data), or
 * followed by the block that holds it (a duplicate above a hole). */
Test(tcp_options, dsack_reports_duplicates_once)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, false, true);
    uint8_t d[400];
    h_pattern(d, sizeof d, 34);
    uint32_t r0 = h->rseq;
    SEND(h, .flags = ACK, .seq = r0, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    h_drain(h);
    /* wholly old: D-SACK [r0, r0 + 100) */
    SEND(h, .flags = ACK, .seq = r0, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .ack = r0 + 100, .len = 0);
    cr_assert_eq(s.nsack, 1, "%u SACK blocks", s.nsack);
    cr_assert_eq(s.sack[0][0], r0);
    cr_assert_eq(s.sack[0][1], r0 + 100);
    /* partly old: D-SACK of the old part, the new part taken */
    SEND(h, .flags = ACK, .seq = r0 + 50, .ack = h->lseq, .win = H_RWIN, .data = d + 50,
         .len = 100);
    s = EXPECT_SEG(h, .flags = ACK, .ack = r0 + 150, .len = 0);
    cr_assert_eq(s.nsack, 1, "%u SACK blocks", s.nsack);
    cr_assert_eq(s.sack[0][0], r0 + 50);
    cr_assert_eq(s.sack[0][1], r0 + 100);
    /* above a hole, then the same again: D-SACK first, its block second */
    SEND(h, .flags = ACK, .seq = r0 + 200, .ack = h->lseq, .win = H_RWIN, .data = d + 200,
         .len = 100);
    s = EXPECT_SEG(h, .flags = ACK, .ack = r0 + 150, .len = 0);
    cr_assert_eq(s.nsack, 1);
    cr_assert_eq(s.sack[0][0], r0 + 200);
    SEND(h, .flags = ACK, .seq = r0 + 250, .ack = h->lseq, .win = H_RWIN, .data = d + 250,
         .len = 50);
    s = EXPECT_SEG(h, .flags = ACK, .ack = r0 + 150, .len = 0);
    cr_assert_eq(s.nsack, 2, "%u SACK blocks", s.nsack);
    cr_assert_eq(s.sack[0][0], r0 + 250);
    cr_assert_eq(s.sack[0][1], r0 + 300);
    cr_assert_eq(s.sack[1][0], r0 + 200);
    cr_assert_eq(s.sack[1][1], r0 + 300);
    /* reported once: the hole's filling is ACKed without it */
    SEND(h, .flags = ACK, .seq = r0 + 150, .ack = h->lseq, .win = H_RWIN, .data = d + 150,
         .len = 50);
    s = EXPECT_SEG(h, .flags = ACK, .ack = r0 + 300, .len = 0);
    cr_assert_eq(s.nsack, 0, "%u SACK blocks", s.nsack);
    h_drain(h);
    uint8_t got[300];
    h_app_recv(h, got, sizeof got);
    cr_assert_arr_eq(got, d, sizeof got);
    h_free(h);
}

Test(tcp_options, no_dsack_without_sack)
{
    struct harness *h = h_new(NULL);
    established_with(h, 0, false, false);
    uint8_t d[100];
    h_pattern(d, sizeof d, 35);
    uint32_t r0 = h->rseq;
    SEND(h, .flags = ACK, .seq = r0, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    h_drain(h);
    SEND(h, .flags = ACK, .seq = r0, .ack = h->lseq, .win = H_RWIN, .data = d, .len = 100);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .ack = r0 + 100, .len = 0);
    cr_assert_eq(s.nsack, 0);
    h_free(h);
}
