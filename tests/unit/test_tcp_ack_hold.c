/* Quick ACKs held for the application's reply (tcpsm_stack_input_hold,
 * tcpsm_stack_release_acks): a request received by an application thread
 * is acknowledged by the response it sends at once, not by an ACK of its
 * own; without a reply the ACK leaves when the runtime releases it (the
 * thread is back to wait) or at the delayed-ACK timer. Bulk data is never
 * held. And the window update after a read (RFC 1122 4.2.3.3) is not sent
 * for a fresh connection whose window is still the SYN's: the reply
 * carries the larger window. */
#include "tcp_harness.h"

/* A passive connection in quick-ACK mode (fresh), input as an application
 * thread's. */
static struct harness *fresh(void)
{
    struct harness *h = h_new(NULL);
    sock_established_passive(h);
    h_drain(h);
    h->hold = true;
    return h;
}

static const char req[] = "GET / HTTP/1.0\r\n\r\n";

Test(tcp_ack_hold, reply_carries_the_ack)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    expect_no_seg(h);                   /* held: no ACK of its own */
    char got[64];
    h_app_recv(h, got, sizeof req - 1);
    cr_assert(memcmp(got, req, sizeof req - 1) == 0);
    expect_no_seg(h);                   /* no window update for a fresh connection */
    uint8_t resp[300];
    h_pattern(resp, sizeof resp, 3);
    h_app_send(h, resp, sizeof resp);   /* the response, ACKing the request */
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the reply carried it");
    expect_no_seg(h);
    h_advance(h, MS(100));
    /* only the response's retransmission timer remains: no lone ACK */
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.len > 0, "a pure ACK after the reply carried it");
    h_free(h);
}

Test(tcp_ack_hold, released_without_reply)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "released once");
    h_advance(h, MS(100));
    expect_no_seg(h);                   /* the delayed-ACK timer went with it */
    h_free(h);
}

Test(tcp_ack_hold, delayed_ack_timer_backstop)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    expect_no_seg(h);
    /* nobody releases it: RFC 1122 4.2.3.2's delayed ACK */
    uint64_t waited = h_wait_seg(h, MS(500));
    cr_assert(waited <= MS(40), "held ACK after %llu ns", (unsigned long long)waited);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the timer sent it");
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, full_segment_acked_at_once)
{
    struct harness *h = fresh();
    size_t mss = h->lmss < 1460 ? h->lmss : 1460;
    uint8_t d[1460];
    h_pattern(d, sizeof d, 5);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = mss);
    h->rseq += (uint32_t)mss;
    /* bulk data in quick-ACK mode: the sender's slow start needs it now */
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, not_held_without_hold_input)
{
    struct harness *h = fresh();
    h->hold = false;                    /* the receive thread's input */
    h_peer_data(h, req, sizeof req - 1);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0);
    h_free(h);
}

Test(tcp_ack_hold, connection_gone_before_release)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    expect_no_seg(h);
    /* the peer resets; the application closes: the TCB is freed while held */
    SEND(h, .flags = RST, .seq = h->rseq);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    h_drain(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0);
    expect_no_seg(h);
    h_free(h);
}

/* A second small segment before the release: two segments owed, ACKed at
 * the end of that batch as before (never more than one held back). */
Test(tcp_ack_hold, second_segment_not_held)
{
    struct harness *h = fresh();
    h_peer_data(h, "abc", 3);
    expect_no_seg(h);
    h_peer_data(h, "def", 3);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0);
    expect_no_seg(h);
    h_free(h);
}

/* The peer closes first: the application's close sends the FIN that
 * carries the ACK of the peer's (Linux delays that ACK too). */
Test(tcp_ack_hold, peer_fin_acked_by_our_fin)
{
    struct harness *h = fresh();
    SEND(h, .flags = ACK | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq += 1;
    expect_no_seg(h);
    h_assert_state_at(h->sk, TCPSM_CLOSE_WAIT, __FILE__, __LINE__);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, b, sizeof b, 0, h->now), 0, "end of stream");
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    EXPECT_SEG(h, .flags = ACK | FIN, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the FIN carried it");
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, peer_fin_acked_at_release)
{
    struct harness *h = fresh();
    SEND(h, .flags = ACK | PSH | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
         .data = req, .len = sizeof req - 1);
    h->rseq += sizeof req;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, peer_fin_timer_backstop)
{
    struct harness *h = fresh();
    SEND(h, .flags = ACK | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq += 1;
    expect_no_seg(h);
    uint64_t waited = h_wait_seg(h, MS(500));
    cr_assert(waited <= MS(40), "held FIN ACK after %llu ns", (unsigned long long)waited);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    h_free(h);
}

/* The receive thread's input: the FIN is ACKed at once, as before. */
Test(tcp_ack_hold, peer_fin_not_held_without_hold_input)
{
    struct harness *h = fresh();
    h->hold = false;
    SEND(h, .flags = ACK | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq += 1;
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    h_free(h);
}

/* Active open, the SYN+ACK taken in by an application thread (Linux
 * tcp_rcv_synsent_state_process with a write pending): the request the
 * client writes next carries the ACK that completes the handshake. */
static struct harness *syn_sent_held(void)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    h->hold = true;
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    h->rseq = h->risn + 1;
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    return h;
}

Test(tcp_ack_hold, request_carries_handshake_ack)
{
    struct harness *h = syn_sent_held();
    expect_no_seg(h);                   /* no lone ACK */
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_synack_acks_held, 1);
    h_app_send(h, req, sizeof req - 1); /* the request, ACKing the SYN+ACK */
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the request carried it");
    expect_no_seg(h);
    h_free(h);
}

/* While the ACK is held the SYN's window is the one offered (Linux
 * tcpi_rcv_wnd), and data the server sends at once is taken. */
Test(tcp_ack_hold, handshake_ack_held_window_is_the_syns)
{
    struct harness *h = syn_sent_held();
    expect_no_seg(h);
    struct tcpsm_tcp_info ti;
    tcpsm_sock_info(h->sk, &ti);
    cr_assert_gt(ti.rcv_wnd, 0, "no receive window while the handshake's ACK is held");
    h_peer_data(h, req, sizeof req - 1);
    char got[64];
    h_app_recv(h, got, sizeof req - 1);
    cr_assert(memcmp(got, req, sizeof req - 1) == 0);
    h_free(h);
}

Test(tcp_ack_hold, handshake_ack_released_without_request)
{
    struct harness *h = syn_sent_held();
    expect_no_seg(h);
    /* the client waits for the server to speak first */
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h_advance(h, MS(100));
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, handshake_ack_timer_backstop)
{
    struct harness *h = syn_sent_held();
    uint64_t waited = h_wait_seg(h, MS(500));
    cr_assert(waited <= MS(40), "held handshake ACK after %llu ns", (unsigned long long)waited);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, handshake_ack_not_held_for_receive_thread)
{
    struct harness *h = h_new(NULL);
    sock_established(h);                /* input not an application thread's: ACK at once */
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_synack_acks_held, 0);
    h_free(h);
}

Test(tcp_ack_hold, synack_with_data_acked_at_once)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    h->hold = true;
    SEND(h, .flags = SYN | ACK | PSH, .seq = h->risn, .ack = h->lseq, .win = H_RWIN,
         .mss = H_RMSS, .data = req, .len = sizeof req - 1);
    h->rseq = h->risn + 1 + sizeof req - 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h_free(h);
}

/* A response in two short segments, the second with the FIN (nginx's
 * header, then its body and FIN): less than two full-sized segments owed
 * (RFC 1122 4.2.3.2), so the client's FIN acknowledges all of it. */
Test(tcp_ack_hold, response_and_fin_acked_by_our_fin)
{
    struct harness *h = fresh();
    uint8_t a[234], b[1386];
    h_pattern(a, sizeof a, 1);
    h_pattern(b, sizeof b, 2);
    h_peer_data(h, a, sizeof a);
    expect_no_seg(h);                   /* a short segment's quick ACK, held */
    SEND(h, .flags = ACK | PSH | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = b,
         .len = sizeof b);
    h->rseq += sizeof b + 1;
    expect_no_seg(h);                   /* the second segment and the FIN: still held */
    h_assert_state_at(h->sk, TCPSM_CLOSE_WAIT, __FILE__, __LINE__);
    uint8_t got[sizeof a + sizeof b];
    h_app_recv(h, got, sizeof got);     /* the client reads the response... */
    cr_assert(memcmp(got, a, sizeof a) == 0 && memcmp(got + sizeof a, b, sizeof b) == 0);
    expect_no_seg(h);
    tcpsm_sock_close(h->sk, h->now);    /* ...and closes */
    h->sk = NULL;
    EXPECT_SEG(h, .flags = ACK | FIN, .seq = h->lseq, .ack = h->rseq, .len = 0);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the FIN carried it");
    expect_no_seg(h);
    h_free(h);
}

/* Two full-sized segments and a FIN: ACKed at once (RFC 1122 4.2.3.2). */
Test(tcp_ack_hold, two_full_segments_and_fin_acked_at_once)
{
    struct harness *h = fresh();
    uint32_t mss = h->lmss;
    static uint8_t d[2 * 1460];
    cr_assert(mss <= 1460);
    h_pattern(d, 2 * mss, 4);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = d, .len = mss);
    h->rseq += mss;
    SEND(h, .flags = ACK | PSH | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
         .data = d + mss, .len = mss);
    h->rseq += mss + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK, .len = 0);
    cr_assert(s.ack == h->rseq || s.ack == h->rseq - 1 - mss, "ACK %u", s.ack);
    h_free(h);
}

/* Linux's interactive (pingpong) mode, whichever thread took the request:
 * a reply sent within the delayed-ACK time of the request it answers makes
 * the connection interactive, and the next request is not quick-ACKed even
 * in quick-ACK mode (its reply carries the ACK); the delayed-ACK timer
 * firing (no reply in time) ends it. */
static void request(struct harness *h)
{
    h_peer_data(h, req, sizeof req - 1);
}

static void reply(struct harness *h)
{
    char got[64];
    h_app_recv(h, got, sizeof req - 1);
    cr_assert(memcmp(got, req, sizeof req - 1) == 0);
    uint8_t resp[100];
    h_pattern(resp, sizeof resp, 7);
    h_app_send(h, resp, sizeof resp);   /* it carries the ACK of the request */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
}

Test(tcp_ack_hold, interactive_request_not_quick_acked)
{
    struct harness *h = fresh();
    h->hold = false;                    /* the receive thread's input: nothing held */
    request(h);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);  /* quick-ACK mode */
    reply(h);                           /* at once: interactive from now on */
    request(h);
    expect_no_seg(h);                   /* no ACK of its own: the reply carries it */
    reply(h);
    h_free(h);
}

Test(tcp_ack_hold, interactive_ends_when_the_delayed_ack_fires)
{
    struct harness *h = fresh();
    h->hold = false;
    request(h);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    reply(h);
    request(h);
    expect_no_seg(h);
    uint64_t waited = h_wait_seg(h, MS(500));       /* no reply: the delayed ACK */
    cr_assert(waited <= MS(40), "delayed ACK after %llu ns", (unsigned long long)waited);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    request(h);                         /* quick-ACK mode again */
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    h_free(h);
}

/* TCPSM_MSG_HOLD (the runtime's flag for an application thread's send): a
 * reply to a request whose quick ACK is held waits for the application's
 * next call; when that call is the close, the reply, the FIN and the ACK
 * leave as one segment (nginx answering an HTTP/1.0 request: headers, file,
 * close), not three frames (ACK-carrying headers, file, FIN). */
static void hold_send(struct harness *h, const void *buf, size_t len)
{
    cr_assert_eq(tcpsm_sock_sendf(h->sk, buf, len, TCPSM_MSG_HOLD, h->now), (ssize_t)len);
}

static struct harness *requested(void)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    expect_no_seg(h);                   /* the request's quick ACK, held */
    char got[64];
    h_app_recv(h, got, sizeof req - 1);
    return h;
}

Test(tcp_ack_hold, held_reply_and_fin_in_one_segment)
{
    struct harness *h = requested();
    uint8_t r[234 + 1000];              /* within the harness's MSS: one segment */
    h_pattern(r, sizeof r, 5);
    uint64_t held0 = tcpsm_stack_counters(h->st)->tcp_replies_held;
    hold_send(h, r, 234);
    expect_no_seg(h);                   /* the headers wait */
    hold_send(h, r + 234, 1000);
    expect_no_seg(h);                   /* and the file */
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_replies_held, held0 + 1, "one reply held");
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    EXPECT_SEG(h, .flags = ACK | PSH | FIN, .seq = h->lseq, .ack = h->rseq,
               .len = (int64_t)sizeof r, .data = r);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the reply carried the ACK");
    cr_assert_eq(tcpsm_stack_release_output(h->st, h->now), 0, "nothing left held");
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, held_reply_released_by_the_next_call)
{
    struct harness *h = requested();
    uint8_t r[300];
    h_pattern(r, sizeof r, 6);
    hold_send(h, r, sizeof r);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_output(h->st, h->now), 1);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r,
               .data = r);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "the reply carried the ACK");
    expect_no_seg(h);
    h_free(h);
}

/* A wait releases the held ACKs of an earlier pass only (the 1 ms grace);
 * a held reply goes whatever its age. */
Test(tcp_ack_hold, held_reply_released_by_a_wait_whatever_its_age)
{
    struct harness *h = requested();
    uint8_t r[300];
    h_pattern(r, sizeof r, 7);
    hold_send(h, r, sizeof r);
    expect_no_seg(h);
    tcpsm_stack_release_acks_before(h->st, h->now, h->now - MS(1));
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r);
    expect_no_seg(h);
    h_free(h);
}

Test(tcp_ack_hold, held_reply_delayed_ack_timer_backstop)
{
    struct harness *h = requested();
    uint8_t r[300];
    h_pattern(r, sizeof r, 8);
    hold_send(h, r, sizeof r);
    /* a thread that blocks outside the stack delays it by 1 ms, not 40 */
    uint64_t waited = h_wait_seg(h, MS(500));
    cr_assert(waited <= MS(1), "held reply after %llu ns", (unsigned long long)waited);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r);
    expect_no_seg(h);                   /* no lone ACK beside it */
    h_free(h);
}

/* TCP_NODELAY: the program asked for its data to leave at once. */
Test(tcp_ack_hold, reply_not_held_with_nodelay)
{
    struct harness *h = requested();
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
    uint8_t r[300];
    h_pattern(r, sizeof r, 12);
    hold_send(h, r, sizeof r);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r,
               .data = r);
    cr_assert_eq(tcpsm_stack_release_output(h->st, h->now), 0);
    h_free(h);
}

/* A reply held to its bound is no sign of a bulk peer: interactive mode
 * (Linux pingpong) stays, so the next request's ACK still waits for its reply. */
Test(tcp_ack_hold, held_reply_bound_keeps_interactive_mode)
{
    struct harness *h = requested();
    uint8_t r[300];
    h_pattern(r, sizeof r, 13);
    hold_send(h, r, sizeof r);
    h_wait_seg(h, MS(500));
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r);
    h->lseq += sizeof r;
    h_peer_data(h, req, sizeof req - 1);
    expect_no_seg(h);                   /* interactive: the ACK waits for the reply */
    h_free(h);
}

/* No ACK held for it (the receive thread took the request, or it was
 * released): the reply goes at once, as without the flag. */
Test(tcp_ack_hold, reply_not_held_without_a_held_ack)
{
    struct harness *h = requested();
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 1);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    uint8_t r[300];
    h_pattern(r, sizeof r, 9);
    hold_send(h, r, sizeof r);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r);
    cr_assert_eq(tcpsm_stack_release_output(h->st, h->now), 0);
    h_free(h);
}

/* A send without the flag on a connection whose reply is held sends both. */
Test(tcp_ack_hold, unflagged_send_sends_a_held_reply)
{
    struct harness *h = requested();
    uint8_t r[600];
    h_pattern(r, sizeof r, 10);
    hold_send(h, r, 300);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_send(h->sk, r + 300, 300, h->now), 300);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)sizeof r,
               .data = r);
    expect_no_seg(h);
    h_free(h);
}

/* A reply past TCP_REPLY_HOLD_MAX is bulk: it goes at once, with what was held. */
Test(tcp_ack_hold, large_reply_not_held)
{
    struct harness *h = requested();
    static uint8_t r[20000];
    h_pattern(r, sizeof r, 11);
    hold_send(h, r, 300);
    expect_no_seg(h);
    hold_send(h, r + 300, sizeof r - 300);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 1460, .data = r);
    h_free(h);
}

/* An event loop still working through a burst (its waits return at once
 * with more events) keeps a lone request's ACK past the runtime's grace:
 * the peer allows a delayed ACK for a flight of one (RFC 8985 7.2), and
 * the reply, sent when the loop reaches it, carries it. */
Test(tcp_ack_hold, lone_request_outlives_the_grace)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    h_advance(h, MS(2));
    cr_assert_eq(tcpsm_stack_release_acks_before(h->st, h->now, h->now - MS(1)), 0,
                 "a lone request's ACK waits for the reply");
    expect_no_seg(h);
    char got[64];
    h_app_recv(h, got, sizeof req - 1);
    uint8_t resp[100];
    h_pattern(resp, sizeof resp, 5);
    h_app_send(h, resp, sizeof resp);
    cr_assert_eq(tcpsm_stack_release_acks_before(h->st, h->now, h->now - MS(1)), 0,
                 "the reply carried it");
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 0, "and the entry is gone");
    h_advance(h, MS(100));
    struct seg s;
    while (recv_seg(h, &s))
        cr_assert(s.len > 0, "a pure ACK after the reply carried it");
    h_free(h);
}

/* ...and the full release (the loop sleeps) or the delayed-ACK timer sends it. */
Test(tcp_ack_hold, lone_request_acked_at_sleep)
{
    struct harness *h = fresh();
    h_peer_data(h, req, sizeof req - 1);
    h_advance(h, MS(2));
    cr_assert_eq(tcpsm_stack_release_acks_before(h->st, h->now, h->now - MS(1)), 0);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks(h->st, h->now), 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    h_free(h);
}

/* A FIN's held ACK (the peer may have data and the FIN in flight, so its
 * probe comes after 2 RTT + 2 jiffies) leaves after the grace. */
Test(tcp_ack_hold, peer_fin_acked_after_the_grace)
{
    struct harness *h = fresh();
    SEND(h, .flags = ACK | PSH | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
         .data = req, .len = sizeof req - 1);
    h->rseq += sizeof req;
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_release_acks_before(h->st, h->now, h->now - MS(1)), 0, "young");
    h_advance(h, MS(2));
    cr_assert_eq(tcpsm_stack_release_acks_before(h->st, h->now, h->now - MS(1)), 1);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    expect_no_seg(h);
    h_free(h);
}
