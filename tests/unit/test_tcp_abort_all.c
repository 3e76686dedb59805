/* tcpsm_stack_abort_all (process exit): every connection, held or orphaned,
 * ends in CLOSED; the ones whose peer may still talk get
 * <SEQ=SND.NXT><CTL=RST> (RFC 9293 3.10.4), TIME-WAIT, LISTEN and SYN-SENT
 * none; only held handles survive. */
#include <errno.h>

#include "tcp_harness.h"

static void expect_rst(struct harness *h)
{
    EXPECT_SEG(h, .flags = RST | ACK, .seq = h->lseq, .len = 0);
    expect_no_seg(h);
}

/* The handle survives, CLOSED, as the only TCB; close frees it silently. */
static void expect_held_closed(struct harness *h)
{
    ASSERT_STATE(h->sk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    cr_assert_eq(tcpsm_sock_send(h->sk, "x", 1, h->now), -EPIPE);
    tcpsm_sock_close(h->sk, h->now);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
}

struct held_case {
    const char *name;
    void (*fixture)(struct harness *h);
    bool rst;
};

Test(tcp_abort_all, held_per_state)
{
    static const struct held_case cases[] = {
        { "SYN-SENT", sock_syn_sent, false },
        { "ESTABLISHED", sock_established, true },
        { "ESTABLISHED passive", sock_established_passive, true },
        { "FIN-WAIT-1", sock_fin_wait_1, true },
        { "FIN-WAIT-2", sock_fin_wait_2, true },
        { "CLOSE-WAIT", sock_close_wait, true },
        { "CLOSING", sock_closing, true },
        { "LAST-ACK", sock_last_ack, true },
        { "TIME-WAIT", sock_time_wait, false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct harness *h = h_new(NULL);
        cases[i].fixture(h);
        if (h->lsk) {                   /* the passive case: drop the listener first */
            tcpsm_sock_close(h->lsk, h->now);
            h->lsk = NULL;
        }
        h_drain(h);
        tcpsm_stack_abort_all(h->st, h->now);
        if (cases[i].rst)
            expect_rst(h);
        else
            expect_no_seg(h);
        cr_assert_eq(tcpsm_sock_state(h->sk), TCPSM_CLOSED, "%s", cases[i].name);
        expect_held_closed(h);
        h_free(h);
    }
}

/* Orphans: the application closed them, nobody holds them; all are freed. */
Test(tcp_abort_all, orphans_per_state)
{
    static const struct held_case cases[] = {
        { "FIN-WAIT-1", sock_fin_wait_1, true },
        { "FIN-WAIT-2", sock_fin_wait_2, true },
        { "CLOSING", sock_closing, true },
        { "LAST-ACK", sock_last_ack, true },
        { "TIME-WAIT", sock_time_wait, false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct harness *h = h_new(NULL);
        cases[i].fixture(h);
        tcpsm_sock_close(h->sk, h->now);
        h->sk = NULL;
        expect_no_seg(h);
        cr_assert_eq(tcpsm_stack_nsocks(h->st), 1, "%s: the orphan is alive", cases[i].name);
        tcpsm_stack_abort_all(h->st, h->now);
        if (cases[i].rst)
            expect_rst(h);
        else
            expect_no_seg(h);
        cr_assert_eq(tcpsm_stack_nsocks(h->st), 0, "%s: orphan left", cases[i].name);
        h_free(h);
    }
}

/* The exit case: the application sent data the peer never accepts (zero
 * window), then closed. The orphan sits in FIN-WAIT-1 with data and FIN
 * unsent; the RST carries SND.NXT, the first byte never sent. */
Test(tcp_abort_all, orphan_zero_window_unsent_data)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = 0);
    expect_no_seg(h);
    static const char data[] = "never sent";
    cr_assert_eq(tcpsm_sock_send(h->sk, data, sizeof(data), h->now), (ssize_t)sizeof(data));
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    expect_no_seg(h);                   /* neither the data nor the FIN fit */
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    tcpsm_stack_abort_all(h->st, h->now);
    expect_rst(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    cr_assert_eq(tcpsm_stack_next_deadline(h->st), UINT64_MAX, "a timer outlived its TCB");
    h_free(h);
}

/* A listener with an unaccepted ESTABLISHED child and a SYN-RECEIVED one:
 * both children are reset and freed, the listener stops (no RST of its
 * own), only its handle is left. */
Test(tcp_abort_all, listener_and_children)
{
    struct harness *h = h_new(NULL);
    sock_syn_received(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    uint32_t est_nxt = h->lseq;
    SEND(h, .flags = SYN, .seq = 777, .win = H_RWIN, .mss = H_RMSS, .sport = H_RPORT + 1);
    struct seg sa = EXPECT_SEG(h, .flags = SYN | ACK, .ack = 778, .dport = H_RPORT + 1);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 3);

    tcpsm_stack_abort_all(h->st, h->now);
    bool seen_est = false, seen_synrcvd = false;
    for (int i = 0; i < 2; i++) {
        struct seg r = EXPECT_SEG(h, .flags = RST | ACK, .len = 0);
        if (r.dport == H_RPORT) {
            cr_assert_eq(r.seq, est_nxt);
            seen_est = true;
        } else {
            cr_assert_eq(r.dport, H_RPORT + 1);
            cr_assert_eq(r.seq, sa.seq + 1);
            seen_synrcvd = true;
        }
    }
    cr_assert(seen_est && seen_synrcvd);
    expect_no_seg(h);
    ASSERT_STATE(h->lsk, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 1);
    struct tcpsm_sock *c;
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &c), -EINVAL);
    tcpsm_sock_close(h->lsk, h->now);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    expect_no_seg(h);
    h_free(h);
}

/* One RST per connection: a second call sends nothing. */
Test(tcp_abort_all, idempotent)
{
    struct harness *h = h_new(NULL);
    sock_fin_wait_2(h);
    tcpsm_sock_close(h->sk, h->now);
    h->sk = NULL;
    tcpsm_stack_abort_all(h->st, h->now);
    expect_rst(h);
    tcpsm_stack_abort_all(h->st, h->now);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 0);
    h_free(h);
}
