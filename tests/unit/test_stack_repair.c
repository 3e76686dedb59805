/* The core's repair after a lock holder died halfway (tcp_repair.c): each
 * test leaves a structure as an interrupted operation would (a half-linked
 * node, an index entry missing, a count off, a timer in two heap slots, a
 * TCB half freed, a ring out of bounds), checks that the audit sees it,
 * repairs, checks the audit is clean and the stack still works. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_harness.h"
#include "tcp_int.h"

static unsigned audit(struct harness *h)
{
    char why[256];
    return tcpsm_stack_audit(h->st, why, sizeof why);
}

static void repaired(struct harness *h)
{
    cr_assert_gt(audit(h), 0, "the audit does not see the fault");
    cr_assert_gt(tcpsm_stack_repair(h->st, h->now), 0);
    char why[256];
    unsigned f = tcpsm_stack_audit(h->st, why, sizeof why);
    cr_assert_eq(f, 0, "after the repair: %u faults: %s", f, why);
    cr_assert_eq(tcpsm_stack_repair(h->st, h->now), 0, "a second repair finds more");
    cr_assert_geq(tcpsm_stack_counters(h->st)->repair_passes, 1);
}

/* The usual start: an ESTABLISHED connection (active open). */
static struct harness *established(void)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    return h;
}

/* ESTABLISHED, holding len bytes of the peer's unread (our ACK of them
 * taken off the link). */
static struct harness *established_holding(const char *data, uint32_t len)
{
    struct harness *h = established();
    h_peer_data(h, data, len);
    h_drain(h);
    return h;
}

/* ESTABLISHED, "hello" sent and ACKed by the peer: nothing in flight. */
static struct harness *established_hello_acked(void)
{
    struct harness *h = established();
    h_app_send(h, "hello", 5);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    return h;
}

/* tcpsm_sock_close stopped after `user_ref = false`, before anything else:
 * the socket (*skp, then NULL: its holder is gone) is nobody's. */
static struct tcpsm_sock *h_cut_close(struct tcpsm_sock **skp)
{
    struct tcpsm_sock *sk = *skp;
    sk->user_ref = false;
    *skp = NULL;
    return sk;
}

/* The peer's data still reaches the application, and is ACKed. */
static void data_flows(struct harness *h)
{
    h_peer_data(h, "hello", 5);
    h_advance(h, MS(200));
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq);
    char buf[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, buf, sizeof buf, 0, h->now), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
}

/* The peer ACKs all we sent (up to h->lseq): nothing is left in flight,
 * and the peer's data still flows. */
static void all_acked_and_data_flows(struct harness *h)
{
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(h->sk->snd_una, h->sk->snd_max);
    data_flows(h);
}

/* A send (tcpsm_sock_sendf) cut after its copy into the send ring, before
 * its output. */
static void h_cut_send(struct tcpsm_sock *sk, const char *data, uint32_t len)
{
    cr_assert_eq(tcp_ring_reserve(sk, &sk->sndq, sk->sndq.len + len, sk->sndbuf, false), 0);
    cr_assert_eq(ring_write(&sk->sndq, data, len), len);
}

Test(stack_repair, clean_stack_has_nothing_to_repair)
{
    struct harness *h = established();
    cr_assert_eq(audit(h), 0);
    cr_assert_eq(tcpsm_stack_repair(h->st, h->now), 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_passes, 0);
    data_flows(h);
    h_free(h);
}

/* tcp_sock_alloc stopped after `all->aprev = sk`, before `all = sk`. */
Test(stack_repair, tcb_list_half_linked)
{
    struct harness *h = established();
    struct tcp_stack *ts = h->st->tcp;
    struct tcpsm_sock *x = calloc(1, sizeof *x);
    x->anext = ts->all;
    ts->all->aprev = x;
    repaired(h);
    cr_assert_null(ts->all->aprev);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    data_flows(h);
    free(x);
    h_free(h);
}

/* tcp_ehash_add stopped after `hashed = true`: the connection is in no
 * bucket, so its segments would find nothing and draw resets. */
Test(stack_repair, connection_hash_entry_missing)
{
    struct harness *h = established();
    struct tcp_stack *ts = h->st->tcp;
    uint32_t i = tcp_ehash_idx(h->sk);
    cr_assert_eq(ts->ehash[i], h->sk);
    ts->ehash[i] = h->sk->enext;
    repaired(h);
    cr_assert_eq(tcp_ehash_find(ts, &h->sk->laddr, h->sk->lport, &h->sk->raddr, h->sk->rport),
                 h->sk);
    data_flows(h);
    h_free(h);
}

/* tcp_bind_del stopped after `*bpprev = bnext`: the port table skips the
 * socket while the socket says it is bound. */
Test(stack_repair, port_table_half_unlinked)
{
    struct harness *h = established();
    struct tcp_stack *ts = h->st->tcp;
    *h->sk->bpprev = h->sk->bnext;
    repaired(h);
    cr_assert_eq(ts->bhash[H_LPORT & ts->bmask], h->sk);
    cr_assert_eq(h->sk->bpprev, &ts->bhash[H_LPORT & ts->bmask]);
    data_flows(h);
    h_free(h);
}

Test(stack_repair, counts_off)
{
    struct harness *h = established();
    data_flows(h);
    struct tcp_stack *ts = h->st->tcp;
    size_t mem = ts->mem_used;
    ts->nsocks += 3;
    ts->mem_used += 4096;
    repaired(h);
    cr_assert_eq(ts->nsocks, 1);
    cr_assert_eq(ts->mem_used, mem);
    h_free(h);
}

/* A listener's accept queue cut (tcp_unlink_child stopped halfway) and
 * its count off: rebuilt from the children, in the order they came. */
Test(stack_repair, accept_queue_rebuilt)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    for (uint16_t k = 0; k < 3; k++) {
        SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS,
             .sport = (uint16_t)(H_RPORT + k));
        struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = H_RPORT + k);
        SEND(h, .flags = ACK, .seq = h->risn + 1, .ack = s.seq + 1, .win = H_RWIN,
             .sport = (uint16_t)(H_RPORT + k));
    }
    cr_assert_eq(h->lsk->nacc, 3);
    h->lsk->accq->qnext = NULL;         /* the second and third lost from the queue */
    h->lsk->nacc = 5;
    repaired(h);
    cr_assert_eq(h->lsk->nacc, 3);
    for (uint16_t k = 0; k < 3; k++) {
        struct tcpsm_sock *c;
        cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), 0, "accept %u", k);
        cr_assert_eq(c->rport, H_RPORT + k, "accepted out of order");
    }
    h_free(h);
}

/* A timer in two heap slots (a sift stopped between two moves): one
 * timer is lost from the heap while its TCB thinks it armed. After the
 * repair both connections' retransmission timers fire. */
Test(stack_repair, timer_heap_half_sifted)
{
    struct harness *h = established();
    struct tcpsm_sock *a = h->sk;
    h_app_send(h, "a", 1);
    cr_assert_eq(tcpsm_sock_new(h->st, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT + 1, h->now), -EINPROGRESS);
    h_drain(h);
    struct tcpsm_timer_heap *th = &h->st->timers;
    cr_assert_geq(th->n, 2);
    struct tcpsm_timer *lost = th->v[1];
    th->v[1] = th->v[0];
    repaired(h);
    cr_assert(tcpsm_timer_armed(lost), "the lost timer was not re-armed");
    cr_assert_eq(th->v[lost->idx], lost);
    /* both time out and retransmit: the data and the SYN */
    h_advance(h, SEC(4));
    bool data = false, syn = false;
    struct seg s;
    while (recv_seg(h, &s)) {
        data = data || (s.len == 1 && s.dport == H_RPORT);
        syn = syn || ((s.flags & SYN) && s.dport == H_RPORT + 1);
    }
    cr_assert(data && syn, "retransmissions: data %d syn %d", data, syn);
    (void)a;
    h_free(h);
}

/* tcp_sock_free stopped after unlinking the child from its listener's SYN
 * queue, before it left the list of TCBs: the intent record finishes it. */
Test(stack_repair, half_freed_tcb_finished)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    struct tcp_stack *ts = h->st->tcp;
    struct tcpsm_sock *c = h->lsk->synq;
    cr_assert_not_null(c);
    ts->dying = c;
    tcp_unlink_child(c);
    repaired(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    cr_assert_eq(h->lsk->nsyn, 0);
    cr_assert_null(ts->dying);
    h_free(h);
}

/* A receive ring whose length passed its capacity (a copy stopped
 * halfway): the connection cannot go on; it is reset: RST to the peer,
 * ECONNRESET to the application. The other connection is untouched. */
Test(stack_repair, broken_ring_resets_the_connection)
{
    struct harness *h = established_holding("abc", 3);
    cr_assert_not_null(h->sk->rcvq.buf);
    h->sk->rcvq.len = h->sk->rcvq.cap + 7;
    repaired(h);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = h->lseq);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNRESET);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 1);
    h_free(h);
}

/* Sequence variables out of order (SND.UNA past SND.NXT): reset. */
Test(stack_repair, sequence_space_out_of_order_resets)
{
    struct harness *h = established();
    h->sk->snd_una = h->sk->snd_nxt + 100;
    repaired(h);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 1);
    h_free(h);
}

/* A child whose handshake has completed but which is on neither queue: the
 * queues with their counts agree, so only the child's own state says where
 * it belongs. */
static struct tcpsm_sock *child_off_the_queues(struct harness *h)
{
    sock_syn_received(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    struct tcpsm_sock *c = h->lsk->accq;
    cr_assert_not_null(c);
    ASSERT_STATE(c, TCPSM_ESTABLISHED);
    h->lsk->accq = h->lsk->accq_tail = NULL;
    h->lsk->nacc = 0;
    c->qnext = NULL;
    c->in_acceptq = false;
    return c;
}

/* The final ACK's processing (tcp_input.c) stopped after ESTABLISHED and
 * the SYN queue's unlink, before the accept queue's append and in_acceptq:
 * the repair must put the child on the accept queue (from the flag alone it
 * went back on the SYN queue, where accept never looks: the listener kept a
 * connection nobody could accept). */
Test(stack_repair, handshake_done_child_goes_to_accept_queue)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *c = child_off_the_queues(h);
    repaired(h);
    cr_assert_eq(h->lsk->nacc, 1);
    cr_assert_eq(h->lsk->nsyn, 0);
    cr_assert(tcpsm_sock_poll(h->lsk) & TCPSM_POLLIN);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    cr_assert_eq(h->sk, c);
    data_flows(h);
    h_free(h);
}

/* tcpsm_sock_accept stopped after `in_acceptq = false`, before the parent
 * link is cleared and the child marked held: the connection stays the
 * listener's to hand out (the accepting process died, nobody got it). */
Test(stack_repair, accept_cut_short_requeues_the_child)
{
    struct harness *h = h_new(NULL);
    struct tcpsm_sock *c = child_off_the_queues(h);
    SEND(h, .flags = ACK | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    ASSERT_STATE(c, TCPSM_CLOSE_WAIT);
    h_drain(h);
    repaired(h);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    cr_assert_eq(h->sk, c);
    tcpsm_sock_close(h->sk, h->now);    /* the new holder closes: FIN, LAST-ACK */
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq);
    ASSERT_STATE(c, TCPSM_LAST_ACK);
    h_free(h);
}

/* child_new stopped before the child's SYN+ACK and SYN-RECEIVED (it is in
 * the SYN queue in state LISTEN): dropped; the peer's next SYN makes one. */
Test(stack_repair, half_made_child_dropped)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    h->lsk->synq->state = TCPSM_LISTEN;
    repaired(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    cr_assert_eq(h->lsk->nsyn, 0);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1);
    cr_assert_eq(h->lsk->nsyn, 1);
    h_free(h);
}

/* tcpsm_sock_close stopped after `user_ref = false`, before the FIN: an
 * ESTABLISHED connection nobody holds and nobody will ever close. The
 * repair finishes the close: the FIN goes out. */
Test(stack_repair, close_cut_short_is_finished)
{
    struct harness *h = established();
    struct tcpsm_sock *sk = h_cut_close(&h->sk);
    repaired(h);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq);
    ASSERT_STATE(sk, TCPSM_FIN_WAIT_1);
    h_free(h);
}

/* tcp_send_fin (a shutdown(SHUT_WR) of a socket another process holds too) cut
 * after its output sent the FIN and before ESTABLISHED became FIN-WAIT-1:
 * the repair makes the state change, and the peer's ACK of the FIN then
 * moves the connection on as it should (left in ESTABLISHED, that ACK was
 * taken as a plain one and a later close waited in FIN-WAIT-1 for ever). */
Test(stack_repair, shutdown_cut_after_its_fin_is_finished)
{
    struct harness *h = established();
    struct tcpsm_sock *sk = h->sk;
    sk->fin_queued = true;
    tcp_output(sk, h->now);             /* the FIN batched (the repair may drop it) */
    cr_assert(sk->fin_sent);
    ASSERT_STATE(sk, TCPSM_ESTABLISHED);
    repaired(h);
    ASSERT_STATE(sk, TCPSM_FIN_WAIT_1);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 0);
    h_drain(h);
    h_advance(h, SEC(3));               /* the RTO sends it again */
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq);
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    ASSERT_STATE(sk, TCPSM_FIN_WAIT_2);
    SEND(h, .flags = ACK | FIN, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    ASSERT_STATE(sk, TCPSM_TIME_WAIT);
    h_free(h);
}

/* The same from CLOSE-WAIT, cut before the output: the FIN goes out and
 * the connection is in LAST-ACK; the peer's ACK ends it. */
Test(stack_repair, close_wait_fin_cut_before_its_output_is_sent)
{
    struct harness *h = h_new(NULL);
    sock_close_wait(h);
    struct tcpsm_sock *sk = h->sk;
    sk->fin_queued = true;
    repaired(h);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq);
    ASSERT_STATE(sk, TCPSM_LAST_ACK);
    cr_assert_neq(sk->rto_at, 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    ASSERT_STATE(sk, TCPSM_CLOSED);
    h_free(h);
}

/* The same with SO_LINGER 0, stopped after the RST was batched (the repair
 * drops batched frames) and before tcp_done: the RST goes out, the TCB goes. */
Test(stack_repair, reset_close_cut_short_is_finished)
{
    struct harness *h = established();
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_LINGER, 0), 0);
    h_cut_close(&h->sk);
    repaired(h);
    EXPECT_SEG(h, .flags = RST | ACK, .seq = h->lseq);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}

/* A listener's close stopped after `user_ref = false`: the listener stops
 * (its port is free again: a SYN draws a reset). */
Test(stack_repair, listener_close_cut_short_is_finished)
{
    struct harness *h = h_new(NULL);
    sock_listen(h);
    h_cut_close(&h->lsk);
    repaired(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    EXPECT_SEG(h, .flags = RST | ACK, .ack = h->risn + 1);
    h_free(h);
}

/* An ACK's processing (ack_step) stopped after the acknowledged bytes left
 * the send ring (its start moved past SND.UNA), before SND.UNA moved: the
 * step is finished, not the connection reset, and data goes on both ways. */
Test(stack_repair, ack_cut_short_is_finished)
{
    struct harness *h = established_hello_acked();
    cr_assert_eq(h->sk->snd_una, h->lseq);
    h->sk->snd_una -= 5;
    repaired(h);
    cr_assert_eq(h->sk->snd_una, h->lseq);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 0);
    h_app_send(h, "world", 5);
    data_flows(h);
    h_free(h);
}

/* ---------------------------------------------------------------- byte-stream intent record */

/* A holder killed inside a span tcp_stream_begin opened leaves the TCB
 * named in ts->stream_busy; what it had done of the span is done by hand
 * below, as the interrupted operation would have left it. */
static void stream_reset(struct harness *h)
{
    repaired(h);
    cr_assert_null(h->st->tcp->stream_busy);
    EXPECT_SEG(h, .flags = RST | ACK);
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(h->sk), ECONNRESET);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 1);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_stream_resets, 1);
}

/* ack_step cut after ring_drop took the acknowledged bytes off the send ring
 * and before the ring's start (snd_buf_seq) moved: the ring's first byte
 * now stands for a later sequence number than snd_buf_seq says, and every
 * check passes (ring in bounds, SND.UNA =< SND.NXT, the ring from SND.UNA).
 * Without the record, a retransmission would send "lo" for "hel". */
Test(stack_repair, ack_cut_inside_the_ring_drop_resets)
{
    struct harness *h = established();
    h_app_send(h, "hello", 5);
    h_drain(h);
    struct tcpsm_sock *sk = h->sk;
    cr_assert_eq(sk->sndq.len, 5);
    cr_assert_eq(sk->snd_buf_seq, sk->snd_una);
    tcp_stream_begin(sk);               /* the ACK of 3 bytes, cut short */
    ring_drop(&sk->sndq, 3);
    stream_reset(h);
    h_free(h);
}

/* queue_data cut after the receive ring's length took a segment and before
 * RCV.NXT moved: the peer (never ACKed) sends it again and it would be
 * queued twice ("abcabc" read). */
Test(stack_repair, receive_cut_before_rcv_nxt_resets)
{
    struct harness *h = established_holding("abc", 3);
    struct tcpsm_sock *sk = h->sk;
    cr_assert_eq(sk->rcvq.len, 3);
    tcp_stream_begin(sk);               /* the next segment, "abc" again, cut short */
    ring_write_at(&sk->rcvq, sk->rcvq.len, "abc", 3);
    sk->rcvq.len += 3;
    stream_reset(h);
    h_free(h);
}

/* A FIN cut after RCV.NXT passed it and before rcv_fin: the FIN's
 * retransmission is below RCV.NXT (ACKed as a duplicate), and the reader
 * would never see the end of the stream. */
Test(stack_repair, fin_cut_before_rcv_fin_resets)
{
    struct harness *h = established();
    tcp_stream_begin(h->sk);
    h->sk->rcv_nxt++;
    stream_reset(h);
    h_free(h);
}

/* recv cut inside ring_drop (the length taken down, the head not moved):
 * the next read would return the bytes just read again. */
Test(stack_repair, read_cut_inside_the_ring_drop_resets)
{
    struct harness *h = established_holding("abcdef", 6);
    struct tcpsm_sock *sk = h->sk;
    tcp_stream_begin(sk);
    sk->rcvq.len -= 2;                  /* ring_drop's first store */
    stream_reset(h);
    h_free(h);
}

/* The record is cleared by every span that ends: after traffic both ways
 * nothing is named, and a repair resets nothing. */
Test(stack_repair, finished_spans_leave_no_record)
{
    struct harness *h = established_hello_acked();
    data_flows(h);
    cr_assert_null(h->st->tcp->stream_busy);
    cr_assert_eq(tcpsm_stack_repair(h->st, h->now), 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_stream_resets, 0);
    h_free(h);
}

/* tcp_ring_release cut after it cached the emptied buffer and before it
 * cleared the ring: the buffer is both a connection's ring and in the
 * cache, and would serve two rings. The cache's entry goes. */
Test(stack_repair, ring_both_cached_and_in_use)
{
    struct harness *h = established_holding("abc", 3);
    struct tcpsm_sock *sk = h->sk;
    struct tcp_stack *ts = h->st->tcp;
    char buf[4];
    cr_assert_eq(tcpsm_sock_recv(sk, buf, sizeof buf, TCPSM_MSG_PEEK, h->now), 3);
    ring_drop(&sk->rcvq, 3);            /* as the read did */
    unsigned n0 = ts->nring_cache;
    ts->ring_cache[ts->nring_cache].buf = sk->rcvq.buf;
    ts->ring_cache[ts->nring_cache].cap = sk->rcvq.cap;
    ts->nring_cache++;
    ts->ring_cache_bytes += sk->rcvq.cap;
    repaired(h);
    cr_assert_eq(ts->nring_cache, n0);
    for (unsigned i = 0; i < ts->nring_cache; i++)
        cr_assert_neq(ts->ring_cache[i].buf, sk->rcvq.buf);
    ASSERT_STATE(sk, TCPSM_ESTABLISHED);
    data_flows(h);
    h_free(h);
}

/* ---------------------------------------------------------------- PMTU table */

static struct tcpsm_addr v4addr(unsigned i)
{
    struct tcpsm_addr a;
    memset(&a, 0, sizeof a);
    a.b[10] = a.b[11] = 0xff;
    a.b[12] = 198;
    a.b[13] = 18;
    a.b[14] = (uint8_t)(i >> 8);
    a.b[15] = (uint8_t)i;
    return a;
}

/* A full table, each entry learnt a millisecond after the one before. */
static void pmtu_fill(struct harness *h)
{
    for (unsigned i = 0; i < PMTU_MAX; i++) {
        struct tcpsm_addr a = v4addr(i + 1);
        pmtu_learn(h->st, &a, 1400, h->now);
        h_advance(h, MS(1));
    }
    cr_assert_eq(audit(h), 0);
}

/* pmtu_learn of a new destination into a full table, cut after it wrote
 * the destination over the entry that expires first (entry 0) and before
 * its MTU and expiry: the new destination would have the old one's MTU for
 * up to 10 minutes, within every bound. The entry is dropped (the path
 * falls back to the link's MTU and is learnt again); the others stay. */
Test(stack_repair, pmtu_insert_cut_short_drops_the_entry)
{
    struct harness *h = established();
    pmtu_fill(h);
    struct tcpsm_addr b = v4addr(1000);
    cr_assert_eq(pmtu_lookup(h->st, &b, h->now), 0);
    h->st->pmtu.busy = 1;               /* as pmtu_learn set it */
    h->st->pmtu.e[0].dst = b;
    cr_assert_eq(pmtu_lookup(h->st, &b, h->now), 1400);    /* the wrong MTU */
    repaired(h);
    cr_assert_eq(pmtu_lookup(h->st, &b, h->now), 0);
    for (unsigned i = 1; i < PMTU_MAX; i++) {
        struct tcpsm_addr a = v4addr(i + 1);
        cr_assert_eq(pmtu_lookup(h->st, &a, h->now), 1400);
    }
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_pmtu_dropped, 1);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 0);
    data_flows(h);
    h_free(h);
}

/* Entries out of bounds (a half-written or stray MTU below the IPv4 floor
 * or above the link's, an expiry far beyond any learnt, a destination held
 * twice) are dropped; the rest stay. */
Test(stack_repair, pmtu_entries_out_of_bounds_dropped)
{
    struct harness *h = established();
    pmtu_fill(h);
    struct pmtu_entry *e = h->st->pmtu.e;
    e[3].mtu = 100;
    e[4].mtu = 60000;
    e[5].expires = h->now + 100 * PMTU_EXPIRE_NS;
    e[7].dst = e[6].dst;
    repaired(h);
    struct tcpsm_addr a;
    for (unsigned i = 3; i <= 5; i++) {
        a = v4addr(i + 1);
        cr_assert_eq(pmtu_lookup(h->st, &a, h->now), 0, "entry %u kept", i);
    }
    a = v4addr(7);
    cr_assert_eq(pmtu_lookup(h->st, &a, h->now), 1400);     /* the first of the two */
    a = v4addr(9);
    cr_assert_eq(pmtu_lookup(h->st, &a, h->now), 1400);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_pmtu_dropped, 4);
    h_free(h);
}

/* ---------------------------------------------------------------- output and its timer */

/* tcp_output cut after its loop moved SND.NXT over a segment (the frame
 * batched, then dropped by the repair) and before SND.MAX followed and the
 * RTO was armed: SND.MAX is brought up rather than the connection reset
 * (SND.NXT past SND.MAX fails the sequence check), and the RTO resends. */
Test(stack_repair, output_cut_before_snd_max_is_finished)
{
    struct harness *h = established_hello_acked();
    struct tcpsm_sock *sk = h->sk;
    cr_assert_eq(sk->snd_una, sk->snd_max);
    cr_assert_eq(sk->rto_at, 0);
    h_cut_send(sk, "world", 5);
    sk->snd_nxt += 5;                   /* the output loop's step, its frame lost */
    repaired(h);
    ASSERT_STATE(sk, TCPSM_ESTABLISHED);
    cr_assert_eq(sk->snd_max, sk->snd_nxt);
    cr_assert_neq(sk->rto_at, 0);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 0);
    h_advance(h, SEC(3));
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .len = 5, .data = "world");
    h_drain(h);
    h->lseq += 5;
    all_acked_and_data_flows(h);
    h_free(h);
}

/* The timer pass cut after it disarmed the RTO and the loss probe (on_rto
 * not yet run). */
static void h_cut_timer_pass(struct tcpsm_sock *sk)
{
    sk->rto_at = sk->tlp_at = 0;
    tcp_timer_update(sk);
}

/* The timer pass cut after it disarmed the RTO (on_rto not yet run), or an
 * output cut before it armed it: data in flight and no timer, so nothing
 * would ever send it again (its frames dropped with the batch). The repair
 * arms the RTO, which resends. */
Test(stack_repair, data_in_flight_without_rto_gets_one)
{
    struct harness *h = established();
    struct tcpsm_sock *sk = h->sk;
    h_app_send(h, "hello", 5);
    cr_assert_neq(sk->rto_at, 0);
    h_cut_timer_pass(sk);
    repaired(h);
    cr_assert_neq(sk->rto_at, 0);
    h_advance(h, SEC(3));
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq - 5, .len = 5, .data = "hello");
    h_drain(h);                         /* and a later retransmission, backed off */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    cr_assert_eq(sk->snd_una, sk->snd_max);
    ASSERT_STATE(sk, TCPSM_ESTABLISHED);
    data_flows(h);
    h_free(h);
}

/* queue_data cut after ooo_add took a new out-of-order range and before
 * tcp_ofo_insert held its bytes: we would SACK bytes we do not hold, and
 * the peer would not resend them before an RTO. The ranges are rebuilt
 * from the queue. */
Test(stack_repair, sack_range_without_its_segment_rebuilt)
{
    struct harness *h = established();
    struct tcpsm_sock *sk = h->sk;
    SEND(h, .flags = ACK | PSH, .seq = h->rseq + 10, .ack = h->lseq, .win = H_RWIN,
         .data = "klmno", .len = 5);
    h_drain(h);
    cr_assert_eq(sk->ooo.n, 1);
    cr_assert_eq(ooo_add(&sk->ooo, h->rseq + 20, h->rseq + 25), 0);   /* the cut insertion */
    repaired(h);
    cr_assert_eq(sk->ooo.n, 1);
    cr_assert_eq(sk->ooo.start[0], h->rseq + 10);
    cr_assert_eq(sk->ooo.end[0], h->rseq + 15);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
         .data = "abcdefghij", .len = 10);
    h->rseq += 15;
    cr_assert_eq(sk->rcv_nxt, h->rseq);
    char buf[16];
    cr_assert_eq(tcpsm_sock_recv(sk, buf, sizeof buf, 0, h->now), 15);
    cr_assert_eq(memcmp(buf, "abcdefghijklmno", 15), 0);
    h_drain(h);
    data_flows(h);
    h_free(h);
}

/* A loss probe (send_loss_probe) cut inside its output, with cwnd, nodelay
 * and cork set for the one segment: they go back to what they were, or the
 * application's TCP_NODELAY would stay on (TCP_CORK off) for good. */
Test(stack_repair, loss_probe_cut_short_restores_cwnd_and_options)
{
    struct harness *h = established();
    struct tcpsm_sock *sk = h->sk;
    struct tcp_stack *ts = h->st->tcp;
    uint32_t cwnd = sk->cwnd;
    cr_assert_not(sk->nodelay);
    ts->probe.cwnd = cwnd;              /* as send_loss_probe records them */
    ts->probe.nodelay = false;
    ts->probe.cork = false;
    ts->probe.sk = sk;
    sk->cwnd = 1460;
    sk->nodelay = true;
    repaired(h);
    cr_assert_null(ts->probe.sk);
    cr_assert_eq(sk->cwnd, cwnd);
    cr_assert_not(sk->nodelay);
    ASSERT_STATE(sk, TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_stack_counters(h->st)->repair_resets, 0);
    data_flows(h);
    h_free(h);
}

/* A send cut after its copy raised the ring's length and before its output:
 * the bytes are queued, nothing in flight, no timer. The repair outputs
 * them, as the next event on the connection would have (none might come). */
Test(stack_repair, send_cut_before_its_output_is_sent)
{
    struct harness *h = established();
    struct tcpsm_sock *sk = h->sk;
    h_cut_send(sk, "hello", 5);
    tcpsm_stack_repair(h->st, h->now);
    EXPECT_SEG(h, .flags = ACK | PSH, .seq = h->lseq, .len = 5, .data = "hello");
    h->lseq += 5;
    all_acked_and_data_flows(h);
    h_free(h);
}

/* The cork timer's output cut short leaves cork_push set: TCP_CORK would
 * have no effect any more. Cleared. */
Test(stack_repair, cork_push_left_set_cleared)
{
    struct harness *h = established();
    h->sk->cork_push = true;
    repaired(h);
    cr_assert_not(h->sk->cork_push);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    data_flows(h);
    h_free(h);
}

/* tcp_rtxq.c cut between a record's unflag and reflag (a SACK marking it,
 * an ACK trimming it): the queue's byte counts disagree with its records'
 * flags, and the congestion control's estimate of what is in flight with
 * them. Recounted from the records. */
Test(stack_repair, retransmit_queue_counts_recounted)
{
    struct harness *h = h_new(NULL);
    SOCK_ESTABLISHED_WITH(h, .sack_perm = true);
    struct tcpsm_sock *sk = h->sk;
    h_app_send(h, "hello", 5);
    cr_assert_gt(sk->rtxq.n, 0);
    cr_assert_eq(sk->rtxq.lost, 0);
    sk->rtxq.lost += 5;                 /* reflag done, unflag not undone */
    repaired(h);
    cr_assert_eq(sk->rtxq.lost, 0);
    ASSERT_STATE(sk, TCPSM_ESTABLISHED);
    all_acked_and_data_flows(h);
    h_free(h);
}
