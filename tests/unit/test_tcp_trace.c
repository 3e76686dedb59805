/* The trace hook (TCPSM_TRACE): one event per state transition, with the
 * segment that caused it, so the seed's timeline can be read back:
 * SYN, SYN+ACK, ACK; FIN, ACK, FIN, ACK; TIME-WAIT over. */
#include <string.h>

#include "tcp_harness.h"

struct rec {
    unsigned n;
    struct tcpsm_trace_event ev[32];
};
static struct rec R;

static void on_trace(void *ctx, const struct tcpsm_trace_event *ev)
{
    struct rec *r = ctx;
    if (r->n < 32)
        r->ev[r->n++] = *ev;
}

static struct harness *traced(void)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.trace = on_trace;
    cfg.cb_ctx = &R;
    memset(&R, 0, sizeof R);
    return h_new(&cfg);
}

static void ev_is(unsigned i, int from, int to, char dir, uint8_t flags)
{
    cr_assert(i < R.n, "only %u trace events", R.n);
    const struct tcpsm_trace_event *e = &R.ev[i];
    cr_assert_eq(e->old_state, from, "event %u: from %s, want %s", i,
                 tcpsm_state_name(e->old_state), tcpsm_state_name(from));
    cr_assert_eq(e->new_state, to, "event %u: to %s, want %s", i, tcpsm_state_name(e->new_state),
                 tcpsm_state_name(to));
    cr_assert_not_null(e->why);
    if (dir) {
        cr_assert(e->has_seg, "event %u (%s) without its segment", i, e->why);
        cr_assert_eq(e->dir, dir, "event %u: dir %c", i, e->dir);
        cr_assert_eq(e->seg_flags & ~PSH, flags, "event %u: flags %#x", i, e->seg_flags);
    }
    cr_assert_eq(e->laddr, H_ADDR);
}

Test(tcp_trace, active_open_and_close_timeline)
{
    struct harness *h = traced();
    sock_time_wait(h);
    h_advance(h, SEC(60));
    unsigned i = 0;
    ev_is(i++, TCPSM_CLOSED, TCPSM_SYN_SENT, '>', SYN);
    ev_is(i++, TCPSM_SYN_SENT, TCPSM_ESTABLISHED, '<', SYN | ACK);
    ev_is(i++, TCPSM_ESTABLISHED, TCPSM_FIN_WAIT_1, '>', FIN | ACK);
    ev_is(i++, TCPSM_FIN_WAIT_1, TCPSM_FIN_WAIT_2, '<', ACK);
    ev_is(i++, TCPSM_FIN_WAIT_2, TCPSM_TIME_WAIT, '<', FIN | ACK);
    ev_is(i++, TCPSM_TIME_WAIT, TCPSM_CLOSED, 0, 0);
    cr_assert_eq(R.n, i, "%u events, want %u", R.n, i);
    cr_assert_eq(R.ev[1].seg_seq, h->risn);
    cr_assert_eq(R.ev[1].seg_ack, h->lisn + 1);
    cr_assert_eq(R.ev[5].now, R.ev[4].now + SEC(60));
    h_free(h);
}

Test(tcp_trace, passive_open_and_close_timeline)
{
    struct harness *h = traced();
    sock_established_passive(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    h_drain(h);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    h_drain(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    /* The listener's own LISTEN transition may come first. */
    unsigned i = 0;
    while (i < R.n && R.ev[i].new_state == TCPSM_LISTEN && R.ev[i].old_state == TCPSM_CLOSED &&
           R.ev[i].lport == H_LPORT && R.ev[i].rport == 0)
        i++;
    /* The child is born in SYN-RECEIVED from the SYN. */
    cr_assert(i < R.n);
    cr_assert_eq(R.ev[i].new_state, TCPSM_SYN_RECEIVED);
    cr_assert(R.ev[i].has_seg && R.ev[i].dir == '<' && (R.ev[i].seg_flags & SYN));
    i++;
    ev_is(i++, TCPSM_SYN_RECEIVED, TCPSM_ESTABLISHED, '<', ACK);
    ev_is(i++, TCPSM_ESTABLISHED, TCPSM_CLOSE_WAIT, '<', FIN | ACK);
    ev_is(i++, TCPSM_CLOSE_WAIT, TCPSM_LAST_ACK, '>', FIN | ACK);
    ev_is(i++, TCPSM_LAST_ACK, TCPSM_CLOSED, '<', ACK);
    cr_assert_eq(R.n, i, "%u events, want %u", R.n, i);
    cr_assert_eq(R.ev[i - 1].rport, H_RPORT);
    h_free(h);
}
