/* Consistency of the TCP state after a process died holding the stack lock
 * halfway through an operation (kill -9; core.h tcpsm_stack_audit/_repair,
 * README "Process model").
 *
 * What is primary and what is derived. The TCBs (on the doubly linked list
 * ts->all) and each TCB's own fields are primary; the connection hash, the
 * port and listener tables, the TIME-WAIT list, the timer heap, the listen
 * queues and the counts (nsocks, mem_used, nsyn, nacc) are indexes over
 * them. The repair walks the list (a half-done insertion or removal leaves
 * it whole forwards: the back links are rewritten from the walk; a node
 * that is not a TCB of this stack ends it), rebuilds every index from the
 * TCBs' own flags (hashed, bound, lpprev, twpprev, parent + in_acceptq,
 * the timer deadlines), recounts, and resets any connection whose own
 * fields fail a check (a buffer ring out of bounds or in freed memory, a
 * broken out-of-order list, sequence variables out of order): RST to the
 * peer, ECONNRESET to the application, as Linux does to a connection it
 * cannot continue. Three intent records: ts->dying, the TCB tcp_sock_free
 * was taking apart, is finished; ts->stream_busy, the TCB whose byte stream
 * was being changed (tcp_int.h tcp_stream_begin), is reset; ts->probe, a
 * loss probe's temporary cwnd/nodelay/cork, is undone.
 *
 * The neighbour cache and IP reassembly are checked and rebuilt by their own
 * files (neigh_check, ipv4_frag_check, ip6_frag_check: chains, free list
 * and counts from the entries' states; a datagram whose pieces are not
 * whole is dropped), and the PMTU table by pmtu.c (pmtu_check: the entry
 * being written, named by its intent record, and entries out of bounds are
 * dropped). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fault_note.h"
#include "ipv4_frag.h"
#include "ipv6_frag.h"
#include "mem.h"
#include "neigh.h"
#include "pmtu.h"
#include "tcp_int.h"


static bool live(const struct tcp_stack *ts, const struct tcpsm_sock *sk)
{
    return mem_valid(sk, sizeof(*sk)) && sk->audit_gen == ts->audit_gen;
}

/* Walks ts->all: marks every TCB with a new generation; repair: rewrites
 * back links, cuts the list at a node that is not a TCB of st, recounts. */
static void walk_all(struct tcpsm_stack *st, struct fault_note *c, bool repair)
{
    struct tcp_stack *ts = st->tcp;
    if (++ts->audit_gen == 0)
        ts->audit_gen = 1;
    struct tcpsm_sock *prev = NULL;
    size_t n = 0;
    for (struct tcpsm_sock *sk = ts->all; sk; prev = sk, sk = sk->anext) {
        if (!mem_valid(sk, sizeof(*sk)) || sk->st != st || sk->audit_gen == ts->audit_gen) {
            FAULT_NOTE(c, "list of TCBs: node %p after %p is not a TCB of the stack (or a cycle)",
                       (void *)sk, (void *)prev);
            if (repair) {
                if (prev)
                    prev->anext = NULL;
                else
                    ts->all = NULL;
            }
            break;
        }
        sk->audit_gen = ts->audit_gen;
        if (sk->aprev != prev) {
            FAULT_NOTE(c, "list of TCBs: %p's back link is %p, not %p", (void *)sk,
                       (void *)sk->aprev, (void *)prev);
            if (repair)
                sk->aprev = prev;
        }
        n++;
    }
    if (n != ts->nsocks) {
        FAULT_NOTE(c, "nsocks %zu, %zu TCBs on the list", ts->nsocks, n);
        if (repair)
            ts->nsocks = n;
    }
}

static bool ring_ok(const struct tcp_ring *r)
{
    if (!r->buf)
        return r->cap == 0 && r->len == 0 && r->head == 0;
    return r->cap > 0 && r->head < r->cap && r->len <= r->cap && mem_valid(r->buf, r->cap);
}

static bool seq_ok(const struct tcpsm_sock *sk)
{
    if (!tcp_synchronized(sk->state) && sk->state != TCPSM_SYN_RECEIVED)
        return true;
    /* RFC 9293 3.3.1: SND.UNA =< SND.NXT; snd_max: the highest sent */
    if (seq_gt(sk->snd_una, sk->snd_nxt) || seq_gt(sk->snd_nxt, sk->snd_max))
        return false;
    /* the send ring starts at or before SND.UNA's data */
    return !seq_gt(sk->snd_buf_seq, sk->snd_una + 1);
}

/* One TCB's own fields. Repair: what would be followed into freed memory
 * is dropped; counts that follow from a list are recounted. Returns false
 * if the connection cannot go on (to be reset). */
static bool sock_check(struct tcpsm_sock *sk, struct fault_note *c, bool repair)
{
    bool ok = true;
    if (sk->state < 0 || sk->state >= TCPSM_NSTATES) {
        FAULT_NOTE(c, "TCB %p: state %d", (void *)sk, sk->state);
        if (repair)
            sk->state = TCPSM_CLOSED;
        ok = false;
    }
    struct tcp_ring *rings[2] = { &sk->sndq, &sk->rcvq };
    for (int i = 0; i < 2; i++)
        if (!ring_ok(rings[i])) {
            FAULT_NOTE(c, "TCB %p: %s ring buf %p cap %u head %u len %u", (void *)sk,
                       i ? "receive" : "send", (void *)rings[i]->buf, rings[i]->cap, rings[i]->head,
                       rings[i]->len);
            if (repair) {
                /* a buffer that is still a whole block in use goes back (only its
                 * indices were off); one that is not is left (freed memory, or
                 * reclaimed by shm_reclaim_journal) */
                if (rings[i]->buf && rings[i]->cap && mem_valid(rings[i]->buf, rings[i]->cap))
                    mem_free(rings[i]->buf);
                memset(rings[i], 0, sizeof(*rings[i]));
            }
            ok = false;
        }
    struct tcp_rtxq *q = &sk->rtxq;
    if (q->r ? (q->cap == 0 || q->cap > TCP_RTXQ_MAX || q->head + q->n > q->cap ||
                !mem_valid(q->r, (size_t)q->cap * sizeof(*q->r)))
             : (q->n != 0 || q->cap != 0)) {
        FAULT_NOTE(c, "TCB %p: retransmit queue r %p cap %u head %u n %u", (void *)sk, (void *)q->r,
                   q->cap, q->head, q->n);
        if (repair)
            memset(q, 0, sizeof(*q));
        ok = false;
    } else if (q->r) {
        /* its byte counts follow from the records' flags (tcp_rtxq.c
         * unflag/reflag around each change: cut between, they are off, and
         * the congestion control's estimate of what is in flight with them) */
        uint32_t sacked = 0, lost = 0, retrans = 0;
        for (uint32_t i = 0; i < q->n; i++) {
            const struct tcp_rtx *x = &q->r[q->head + i];
            uint32_t len = x->end - x->seq;
            if (x->fl & TCP_RTX_SACKED)
                sacked += len;
            else {
                lost += (x->fl & TCP_RTX_LOST) ? len : 0;
                retrans += (x->fl & TCP_RTX_RETRANS) ? len : 0;
            }
        }
        if (sacked != q->sacked || lost != q->lost || retrans != q->retrans) {
            FAULT_NOTE(c, "TCB %p: retransmit queue counts sacked %u/%u lost %u/%u retrans %u/%u",
                       (void *)sk, q->sacked, sacked, q->lost, lost, q->retrans, retrans);
            if (repair) {
                q->sacked = sacked;
                q->lost = lost;
                q->retrans = retrans;
            }
        }
    }
    if (sk->ooo.n > TCP_OOO_MAX || sk->sacked.n > TCP_OOO_MAX) {
        FAULT_NOTE(c, "TCB %p: %u out-of-order / %u SACKed ranges", (void *)sk, sk->ooo.n,
                   sk->sacked.n);
        if (repair)
            sk->ooo.n = sk->sacked.n = 0;
        ok = false;
    }
    /* the out-of-order queue: the list is primary, its counts follow */
    uint32_t n = 0, bytes = 0;
    struct tcp_ofo *last = NULL;
    for (struct tcp_ofo **pp = &sk->ofo; *pp; pp = &(*pp)->next) {
        struct tcp_ofo *o = *pp;
        if (n >= TCP_OFO_SEGS_MAX || !mem_valid(o, sizeof(*o)) || o->len > TCP_BUF_MAX ||
            !mem_valid(o, sizeof(*o) + o->len)) {
            FAULT_NOTE(c, "TCB %p: out-of-order segment %u at %p", (void *)sk, n, (void *)o);
            if (repair)
                *pp = NULL;
            ok = false;
            break;
        }
        n++;
        bytes += o->len;
        last = o;
    }
    if (n != sk->ofo_n || bytes != sk->ofo_bytes || last != sk->ofo_tail) {
        FAULT_NOTE(c, "TCB %p: out-of-order count %u/%u bytes %u/%u", (void *)sk, sk->ofo_n, n,
                   sk->ofo_bytes, bytes);
        if (repair) {
            sk->ofo_n = n;
            sk->ofo_bytes = bytes;
            sk->ofo_tail = last;
        }
    }
    /* The ranges we SACK (sk->ooo) are the union of the out-of-order
     * queue's segments: queue_data cut between ooo_add and tcp_ofo_insert
     * (or tcp_ofo_pull inside its rebuild) leaves a range that holds
     * nothing, or data held that is not SACKed. A SACKed range we do not
     * hold is not sent again before an RTO (RFC 2018 8 allows the
     * reneging, at that cost). Rebuilt from the queue (the union, touching
     * ranges merged, does not depend on the order of insertion). */
    if (sk->ooo.n <= TCP_OOO_MAX) {
        struct tcp_ooo u;
        memset(&u, 0, sizeof(u));
        bool fits = true;
        for (const struct tcp_ofo *o = sk->ofo; o && fits; o = o->next)
            fits = ooo_add(&u, o->seq, o->seq + o->len) == 0;
        if (!fits || u.n != sk->ooo.n ||
            memcmp(u.start, sk->ooo.start, u.n * sizeof(u.start[0])) != 0 ||
            memcmp(u.end, sk->ooo.end, u.n * sizeof(u.end[0])) != 0) {
            FAULT_NOTE(c, "TCB %p: %u SACK ranges, the out-of-order queue makes %u", (void *)sk,
                       sk->ooo.n, u.n);
            if (repair) {
                if (!fits)
                    tcp_ofo_purge(sk);  /* more disjoint pieces than ranges: dropped */
                else {
                    u.last = sk->ooo.last;
                    sk->ooo = u;
                }
            }
        }
    }
    /* An ACK's processing (tcp_input.c ack_step) cut after it dropped the
     * acknowledged bytes from the send ring (the ring now starts past
     * SND.UNA) and before SND.UNA moved: the peer did acknowledge up to the
     * ring's start, so the step is finished (SND.UNA there, the retransmit
     * queue trimmed to it) rather than the connection reset. */
    if (ok && tcp_synchronized(sk->state) && seq_gt(sk->snd_buf_seq, sk->snd_una + 1) &&
        !seq_gt(sk->snd_buf_seq, sk->snd_max)) {
        FAULT_NOTE(c, "TCB %p: SND.UNA %u behind the send ring's start %u (an ACK cut short)",
                   (void *)sk, sk->snd_una, sk->snd_buf_seq);
        if (repair) {
            uint32_t ack = sk->snd_buf_seq;
            tcp_rtxq_ack(sk, ack, sk->st->now);
            sk->snd_una = ack;
            sk->syn_acked = true;
            if (seq_lt(sk->snd_nxt, sk->snd_una))
                sk->snd_nxt = sk->snd_una;
            tcp_sack_prune(sk);
        }
    }
    /* tcp_output cut after SND.NXT moved past SND.MAX and before SND.MAX
     * followed it (its loop may send many segments, flushing batches, before
     * the end): the bytes up to SND.NXT are in the send ring (and the FIN,
     * if sent), so SND.MAX is brought up; what never left is resent by the
     * retransmission timer (armed below, tcpsm_stack_repair). */
    if (ok && tcp_synchronized(sk->state) && seq_gt(sk->snd_nxt, sk->snd_max) &&
        !seq_gt(sk->snd_una, sk->snd_nxt) &&
        !seq_gt(sk->snd_nxt, sk->snd_buf_seq + sk->sndq.len + (sk->fin_sent ? 1u : 0u))) {
        FAULT_NOTE(c, "TCB %p: SND.NXT %u past snd_max %u (an output cut short)", (void *)sk,
                   sk->snd_nxt, sk->snd_max);
        if (repair)
            sk->snd_max = sk->snd_nxt;
    }
    /* cork_push is true only inside the cork timer's output (tcp_timer.c):
     * cut there, it would leave TCP_CORK / MSG_MORE without effect for good */
    if (sk->cork_push) {
        FAULT_NOTE(c, "TCB %p: cork_push left set (a cork timer's output cut short)", (void *)sk);
        if (repair)
            sk->cork_push = false;
    }
    if (!seq_ok(sk)) {
        FAULT_NOTE(c, "TCB %p (%s): SND.UNA %u SND.NXT %u snd_max %u ring from %u", (void *)sk,
                   tcpsm_state_name(sk->state), sk->snd_una, sk->snd_nxt, sk->snd_max,
                   sk->snd_buf_seq);
        ok = false;
    }
    return ok;
}

/* The indexes against the TCBs (marked by walk_all). */
static void check_indexes(struct tcpsm_stack *st, struct fault_note *c)
{
    struct tcp_stack *ts = st->tcp;
    size_t hashed = 0, bound = 0, listening = 0, tw = 0, in_e = 0, in_b = 0, in_l = 0, in_tw = 0;
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        hashed += sk->hashed;
        bound += sk->bound;
        listening += sk->lpprev != NULL;
        tw += sk->twpprev != NULL;
    }
    size_t lim = ts->nsocks + 1;
    for (uint32_t i = 0; i <= ts->emask; i++)
        for (struct tcpsm_sock *sk = ts->ehash[i]; sk; sk = sk->enext) {
            if (!live(ts, sk) || !sk->hashed || tcp_ehash_idx(sk) != i || ++in_e > lim) {
                FAULT_NOTE(c, "connection hash %u: %p is not a hashed TCB of its bucket", i,
                           (void *)sk);
                break;
            }
        }
    for (uint32_t i = 0; i <= ts->bmask; i++) {
        struct tcpsm_sock **pp = &ts->bhash[i];
        for (struct tcpsm_sock *sk = *pp; sk; pp = &sk->bnext, sk = sk->bnext)
            if (!live(ts, sk) || !sk->bound || sk->bpprev != pp || (sk->lport & ts->bmask) != i ||
                ++in_b > lim) {
                FAULT_NOTE(c, "port table %u: %p is not a bound TCB linked back", i, (void *)sk);
                break;
            }
        pp = &ts->lhash[i];
        for (struct tcpsm_sock *sk = *pp; sk; pp = &sk->lnext, sk = sk->lnext)
            if (!live(ts, sk) || sk->lpprev != pp || (sk->lport & ts->bmask) != i ||
                ++in_l > lim) {
                FAULT_NOTE(c, "listener table %u: %p is not a listener linked back", i, (void *)sk);
                break;
            }
    }
    struct tcpsm_sock **pp = &ts->tw_head;
    for (struct tcpsm_sock *sk = *pp; sk; pp = &sk->twnext, sk = sk->twnext)
        if (!live(ts, sk) || sk->twpprev != pp || ++in_tw > lim) {
            FAULT_NOTE(c, "TIME-WAIT list: %p is not a TCB linked back", (void *)sk);
            break;
        }
    if (ts->tw_tail != pp)
        FAULT_NOTE(c, "TIME-WAIT list: the tail link is not the last TCB's");
    if (hashed != in_e || bound != in_b || listening != in_l || tw != in_tw)
        FAULT_NOTE(c, "indexes: %zu/%zu hashed, %zu/%zu bound, %zu/%zu listeners, %zu/%zu "
                   "TIME-WAIT (flags/linked)", hashed, in_e, bound, in_b, listening, in_l, tw,
                   in_tw);
}

static void rebuild_indexes(struct tcpsm_stack *st)
{
    struct tcp_stack *ts = st->tcp;
    memset(ts->ehash, 0, ((size_t)ts->emask + 1) * sizeof(*ts->ehash));
    memset(ts->bhash, 0, ((size_t)ts->bmask + 1) * sizeof(*ts->bhash));
    memset(ts->lhash, 0, ((size_t)ts->bmask + 1) * sizeof(*ts->lhash));
    ts->tw_head = NULL;
    ts->tw_tail = &ts->tw_head;
    struct tcpsm_sock *last = ts->all;
    while (last && last->anext)
        last = last->anext;
    /* oldest first: each table pushes at the head, as when they were made */
    for (struct tcpsm_sock *sk = last; sk; sk = sk->aprev) {
        sk->enext = sk->bnext = sk->lnext = sk->twnext = NULL;
        sk->bpprev = NULL;
        if (sk->hashed) {
            sk->hashed = false;
            tcp_ehash_add(sk);
        }
        if (sk->bound) {
            sk->bound = false;
            tcp_bind_add(sk);
        }
        if (sk->lpprev) {
            sk->lpprev = NULL;
            tcp_lhash_add(sk);
        }
        if (sk->twpprev) {
            sk->twpprev = NULL;
            tcp_tw_add(sk);
        }
    }
}

/* Which of its listener's queues an unaccepted child belongs in, from its
 * own state: the handshake done (ESTABLISHED, or CLOSE-WAIT once the peer's
 * FIN came), the accept queue; otherwise the SYN queue. The state is
 * primary, in_acceptq follows it: the step that completes a handshake
 * (tcp_input.c) sets ESTABLISHED first and moves the child and its flag
 * after, and accept (tcpsm_sock_accept) clears the flag before the parent,
 * so a holder that died between them left a child that has finished its
 * handshake with in_acceptq false; taken from the flag it would go back on
 * the SYN queue, where accept never looks (the listener then keeps a
 * connection nobody can accept). */
static bool belongs_in_accq(const struct tcpsm_sock *c)
{
    return tcp_synchronized(c->state);
}

/* A child between its making and its SYN+ACK (state LISTEN: child_new, then
 * listen_input) or between CLOSED and leaving its queue (tcp_done): a state
 * no queue holds between operations. Dropped by the repair. */
static bool child_unfinished(const struct tcpsm_sock *c)
{
    return c->parent && c->state != TCPSM_SYN_RECEIVED && !tcp_synchronized(c->state);
}

/* A TCB the application no longer holds (user_ref false, on no listener's
 * queue) in a state its close leaves behind at once: the close (the core's
 * tcpsm_sock_close: user_ref is cleared first, then the FIN, RST or stop of
 * a listener, then the free of a CLOSED one) was cut short by a holder that
 * died. Left so, nobody would ever end the connection: an ESTABLISHED or
 * CLOSE-WAIT orphan waits for a close that has been and gone. */
static bool close_unfinished(const struct tcpsm_sock *sk)
{
    if (sk->user_ref || sk->parent)
        return false;
    switch (sk->state) {
    case TCPSM_CLOSED:
    case TCPSM_LISTEN:
    case TCPSM_SYN_SENT:
    case TCPSM_SYN_RECEIVED:
    case TCPSM_ESTABLISHED:
    case TCPSM_CLOSE_WAIT:
        return true;
    default:
        return false;
    }
}

/* A listener's SYN and accept queues against its children. */
static bool queues_ok(struct tcp_stack *ts, struct tcpsm_sock *l)
{
    uint32_t ns = 0, na = 0, kids = 0;
    size_t lim = ts->nsocks;
    struct tcpsm_sock **pp = &l->synq;
    for (struct tcpsm_sock *c = *pp; c; pp = &c->qnext, c = c->qnext)
        if (!live(ts, c) || c->parent != l || c->in_acceptq || belongs_in_accq(c) ||
            c->qpprev != pp || ++ns > lim)
            return false;
    struct tcpsm_sock *last = NULL;
    for (struct tcpsm_sock *c = l->accq; c; last = c, c = c->qnext)
        if (!live(ts, c) || c->parent != l || !c->in_acceptq || !belongs_in_accq(c) ||
            ++na > lim)
            return false;
    for (struct tcpsm_sock *c = ts->all; c; c = c->anext)
        kids += c->parent == l;
    return ns == l->nsyn && na == l->nacc && last == l->accq_tail && kids == ns + na;
}

static void rebuild_queues(struct tcp_stack *ts, struct tcpsm_sock *l)
{
    l->synq = l->accq = l->accq_tail = NULL;
    l->nsyn = l->nacc = 0;
    struct tcpsm_sock *last = ts->all;
    while (last && last->anext)
        last = last->anext;
    for (struct tcpsm_sock *c = last; c; c = c->aprev) {     /* oldest first */
        if (c->parent != l)
            continue;
        c->qnext = NULL;
        c->qpprev = NULL;
        c->in_acceptq = belongs_in_accq(c);
        if (c->in_acceptq) {
            if (l->accq_tail)
                l->accq_tail->qnext = c;
            else
                l->accq = c;
            l->accq_tail = c;
            l->nacc++;
        } else {
            tcp_synq_add(l, c);
        }
    }
}

static bool keep_timer(void *ctx, const struct tcpsm_timer *t)
{
    const struct tcp_stack *ts = ctx;
    if (t->kind != TIMER_TCP)
        return true;
    const struct tcpsm_sock *sk =
        (const struct tcpsm_sock *)(const void *)((const char *)t -
                                                  offsetof(struct tcpsm_sock, timer));
    return live(ts, sk);
}

static size_t mem_of(const struct tcpsm_sock *sk)
{
    size_t m = (size_t)sk->sndq.cap + sk->rcvq.cap + (size_t)sk->rtxq.cap * sizeof(struct tcp_rtx);
    for (const struct tcp_ofo *o = sk->ofo; o; o = o->next)
        m += sizeof(*o) + o->len;
    return m;
}

/* A cached ring buffer that is also a connection's ring, or an earlier
 * cache entry: tcp_ring_release cut after it cached the buffer and before
 * it cleared the ring, or ring_from_cache after it took the buffer and
 * before it removed the entry. The connection's ring is primary (the entry
 * is dropped), or the buffer would serve two rings. */
static bool cache_entry_taken(const struct tcp_stack *ts, unsigned i)
{
    const uint8_t *b = ts->ring_cache[i].buf;
    for (unsigned j = 0; j < i; j++)
        if (ts->ring_cache[j].buf == b)
            return true;
    for (const struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext)
        if (sk->sndq.buf == b || sk->rcvq.buf == b)
            return true;
    return false;
}

/* A FIN queued in a state that sends none (tcp_send_fin, tcp_sock.c, cut
 * between fin_queued and the state change, its output in between): the
 * stack never rests there. Left so, the FIN (sent or not) is never accounted
 * for: the peer's ACK of it arrives in ESTABLISHED or CLOSE-WAIT, and the
 * later close waits in FIN-WAIT-1 or LAST-ACK for an ACK that came already,
 * with no timer. Reached when the socket has another holder (a shutdown
 * from the dead process); without one, the unfinished close covers it. */
static bool fin_unfinished(const struct tcpsm_sock *sk)
{
    return sk->fin_queued && (sk->state == TCPSM_ESTABLISHED || sk->state == TCPSM_SYN_RECEIVED ||
                              sk->state == TCPSM_CLOSE_WAIT);
}

/* Data (or a FIN) in flight with neither the retransmission nor the persist
 * timer armed: nothing would ever send it again. An output cut after it
 * moved SND.NXT and before it armed the RTO (its frames, batched, dropped
 * by the repair), or a timer pass cut after it disarmed the RTO and before
 * on_rto armed it again, leaves this; RFC 6298 5.1: the timer runs while
 * data is outstanding. */
static bool rto_missing(const struct tcpsm_sock *sk)
{
    return tcp_synchronized(sk->state) && sk->state != TCPSM_TIME_WAIT &&
           sk->snd_una != sk->snd_max && !sk->rto_at && !sk->persist_at;
}

/* The rest of the stack-wide state: timers, counts, batches, the cache. */
static void check_rest(struct tcpsm_stack *st, struct fault_note *c)
{
    struct tcp_stack *ts = st->tcp;
    unsigned tf = timer_heap_audit(&st->timers);
    if (tf)
        FAULT_NOTE(c, "timer heap: %u faults", tf);
    size_t mem = 0;
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        if (tcpsm_timer_armed(&sk->timer) &&
            (tf || sk->timer.idx >= st->timers.n || st->timers.v[sk->timer.idx] != &sk->timer))
            FAULT_NOTE(c, "TCB %p: timer armed at slot %u, not in the heap there", (void *)sk,
                       sk->timer.idx);
        if (sk->parent && (!live(ts, sk->parent) || sk->parent->state != TCPSM_LISTEN))
            FAULT_NOTE(c, "TCB %p: its listener %p is gone", (void *)sk, (void *)sk->parent);
        if (rto_missing(sk))
            FAULT_NOTE(c, "TCB %p (%s): %u bytes in flight, no retransmission timer", (void *)sk,
                       tcpsm_state_name(sk->state), sk->snd_max - sk->snd_una);
        if ((sk->state == TCPSM_LISTEN || sk->synq || sk->accq || sk->nsyn || sk->nacc) &&
            !queues_ok(ts, sk))
            FAULT_NOTE(c, "listener %p: SYN/accept queues do not match its children", (void *)sk);
        if (child_unfinished(sk))
            FAULT_NOTE(c, "TCB %p: a child of listener %p in state %s", (void *)sk,
                       (void *)sk->parent, tcpsm_state_name(sk->state));
        if (fin_unfinished(sk))
            FAULT_NOTE(c, "TCB %p: FIN queued in %s (a shutdown cut before its state change)",
                       (void *)sk, tcpsm_state_name(sk->state));
        if (close_unfinished(sk))
            FAULT_NOTE(c, "TCB %p: in %s, closed by the application (an unfinished close)",
                       (void *)sk, tcpsm_state_name(sk->state));
        if (sk->batch_work && !ts->nbatch)
            FAULT_NOTE(c, "TCB %p: batch work with no batch", (void *)sk);
        mem += mem_of(sk);
    }
    if (mem != ts->mem_used)
        FAULT_NOTE(c, "buffer memory: mem_used %zu, the TCBs hold %zu", ts->mem_used, mem);
    if (ts->nbatch || ts->nheld > TCP_HELD_MAX)
        FAULT_NOTE(c, "an input batch's deferred work left (%u) / held ACKs %u beyond their bound",
                   ts->nbatch, ts->nheld);
    for (unsigned i = 0; i < ts->nheld && i < TCP_HELD_MAX; i++)
        if (ts->held[i] && (!live(ts, ts->held[i]) || !ts->held[i]->ack_held))
            FAULT_NOTE(c, "held ACK %u: %p is not a TCB holding one", i, (void *)ts->held[i]);
    size_t cache = 0;
    for (unsigned i = 0; i < ts->nring_cache && i < TCP_RING_CACHE; i++) {
        if (!mem_valid(ts->ring_cache[i].buf, ts->ring_cache[i].cap))
            FAULT_NOTE(c, "ring cache %u: %p is not a block of %u bytes", i,
                       (void *)ts->ring_cache[i].buf, ts->ring_cache[i].cap);
        else if (cache_entry_taken(ts, i))
            FAULT_NOTE(c, "ring cache %u: %p is a connection's ring too (or cached twice)", i,
                       (void *)ts->ring_cache[i].buf);
        cache += ts->ring_cache[i].cap;
    }
    if (ts->nring_cache > TCP_RING_CACHE || cache != ts->ring_cache_bytes)
        FAULT_NOTE(c, "ring cache: %u buffers, %zu bytes counted %zu", ts->nring_cache, cache,
                   ts->ring_cache_bytes);
    if (st->ntx || st->tx_pinned)
        FAULT_NOTE(c, "%u frames batched between operations", st->ntx);
}

unsigned tcpsm_stack_audit(struct tcpsm_stack *st, char *why, size_t whylen)
{
    struct fault_note c = { .why = why, .whylen = whylen };
    if (why && whylen)
        why[0] = 0;
    if (!st->tcp)
        return 0;
    walk_all(st, &c, false);
    if (c.n)
        return c.n;        /* the rest walks the list: not past a broken one */
    for (struct tcpsm_sock *sk = st->tcp->all; sk; sk = sk->anext)
        sock_check(sk, &c, false);
    check_indexes(st, &c);
    check_rest(st, &c);
    if (st->tcp->dying)
        FAULT_NOTE(&c, "a TCB was being freed (%p)", (void *)st->tcp->dying);
    if (st->tcp->stream_busy)
        FAULT_NOTE(&c, "a connection's byte stream was being changed (%p)",
                   (void *)st->tcp->stream_busy);
    if (st->tcp->probe.sk)
        FAULT_NOTE(&c, "a loss probe was being sent (%p)", (void *)st->tcp->probe.sk);
    unsigned nf = neigh_check(st, false), f4 = ipv4_frag_check(st, false),
             f6 = ip6_frag_check(st, false), fp = pmtu_check(st, false);
    if (nf)
        FAULT_NOTE(&c, "neighbour cache: %u faults", nf);
    if (fp)
        FAULT_NOTE(&c, "PMTU table: %u faults", fp);
    if (f4 || f6)
        FAULT_NOTE(&c, "IP reassembly: %u IPv4, %u IPv6 faults", f4, f6);
    return c.n;
}

bool tcpsm_stack_sock_live(struct tcpsm_stack *st, const struct tcpsm_sock *sk)
{
    return st->tcp && live(st->tcp, sk);
}

unsigned tcpsm_stack_repair(struct tcpsm_stack *st, uint64_t now)
{
    struct tcp_stack *ts = st->tcp;
    if (!ts)
        return 0;
    struct fault_note c = { 0 };
    st->now = now;
    /* Frames the dead holder batched may point into buffers it was
     * changing: dropped (TCP retransmits). GRO state lives within one input. */
    if (st->ntx || st->tx_pinned)
        FAULT_NOTE(&c, "frames batched");
    st->ntx = 0;
    st->tx_pinned = 0;
    st->txp_on = false;
    st->gro_more = NULL;
    st->gro_n = 0;
    st->gro_taken = false;

    walk_all(st, &c, true);
    /* A walk in steps (tcp_walk.c) between two of its steps: ended, its
     * walker starts again (its cursor is not looked at: the lists are
     * being rebuilt). */
    tcp_walk_end(ts);
    struct tcpsm_sock *dying = ts->dying, *finish = NULL;
    ts->dying = NULL;
    if (dying) {
        FAULT_NOTE(&c, "a TCB was being freed");
        if (live(ts, dying))
            finish = dying;             /* still listed: free it once the tables hold */
        else if (mem_valid(dying, sizeof(*dying)) && dying->st == st)
            mem_free(dying);            /* unlinked, its buffers released, not yet freed */
    }
    /* The byte stream a holder was changing (tcp_stream_begin): its ring
     * and the sequence number it is read against may disagree by the bytes
     * of one step, which no check can see (a consistent-looking ring at the
     * wrong offset). Reset, not finished: the record names the TCB only, not
     * how far the step went, and which of the two stores came first is the
     * compiler's choice; a reset is what Linux gives a connection it cannot
     * continue, and the spans are a few instructions (a ring's growth: one
     * copy) wide, so few kills land in one. */
    struct tcpsm_sock *busy = ts->stream_busy;
    ts->stream_busy = NULL;
    if (busy) {
        FAULT_NOTE(&c, "a connection's byte stream was being changed");
        if (!live(ts, busy))
            busy = NULL;                /* not a TCB on the list: nothing to reset */
    }
    /* A loss probe cut inside its output: the TCB's cwnd, TCP_NODELAY and
     * TCP_CORK back to what they were (what the probe restores as it ends). */
    struct tcpsm_sock *probe = ts->probe.sk;
    ts->probe.sk = NULL;
    if (probe) {
        FAULT_NOTE(&c, "a loss probe was being sent");
        if (live(ts, probe))
            tcp_probe_restore(ts, probe);
    }
    unsigned bad = 0;
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        sk->batch_work = 0;
        bool ok = sock_check(sk, &c, true);
        if (sk == busy) {
            st->cnt.repair_stream_resets++;
            ok = false;
        }
        if (!ok) {
            sk->repair_reset = true;
            bad++;
        }
    }
    check_indexes(st, &c);
    rebuild_indexes(st);
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        if (sk->parent && (!live(ts, sk->parent) || sk->parent->state != TCPSM_LISTEN)) {
            FAULT_NOTE(&c, "listener gone");
            sk->parent = NULL;
            sk->in_acceptq = false;
            sk->qnext = NULL;
            sk->qpprev = NULL;
            if (!sk->repair_reset) {
                sk->repair_reset = true;
                bad++;
            }
        }
    }
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext)
        if (child_unfinished(sk) && !sk->repair_reset) {
            FAULT_NOTE(&c, "child half made or half done");
            sk->repair_reset = true;
            bad++;
        }
    for (struct tcpsm_sock *l = ts->all; l; l = l->anext)
        if (!queues_ok(ts, l)) {
            FAULT_NOTE(&c, "listen queues");
            rebuild_queues(ts, l);
        }
    /* timers: the heap keeps valid timers of live owners once; each TCB's
     * timer is then re-armed from its deadlines */
    c.n += timer_heap_repair(&st->timers, keep_timer, ts);
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        if (tcpsm_timer_armed(&sk->timer) &&
            (sk->timer.idx >= st->timers.n || st->timers.v[sk->timer.idx] != &sk->timer)) {
            FAULT_NOTE(&c, "timer");
            sk->timer.idx = UINT32_MAX;
        }
        if (rto_missing(sk)) {
            FAULT_NOTE(&c, "no retransmission timer");
            tcp_rto_arm(sk, now);       /* calls tcp_timer_update */
        }
        tcp_timer_update(sk);
    }
    /* the neighbour cache and IP reassembly (after the heap: their timers
     * are checked against it) */
    if (neigh_check(st, true))
        FAULT_NOTE(&c, "neighbour cache");
    if (ipv4_frag_check(st, true) + ip6_frag_check(st, true))
        FAULT_NOTE(&c, "IP reassembly");
    if (pmtu_check(st, true))
        FAULT_NOTE(&c, "PMTU table");
    /* counts and per-pass arrays */
    if (ts->nbatch)
        FAULT_NOTE(&c, "batch");
    ts->nbatch = 0;
    unsigned nh = 0;
    if (ts->nheld > TCP_HELD_MAX) {
        FAULT_NOTE(&c, "held ACKs");
        ts->nheld = TCP_HELD_MAX;
    }
    for (unsigned i = 0; i < ts->nheld; i++) {
        if (!ts->held[i])
            continue;                   /* a TCB freed while its ACK was held */
        if (live(ts, ts->held[i]) && ts->held[i]->ack_held)
            ts->held[nh++] = ts->held[i];
        else
            FAULT_NOTE(&c, "held ACKs");
    }
    ts->nheld = nh;
    /* a reply held (out_held) off the list is released by its delayed-ACK
     * timer, armed within TCP_REPLY_HOLD_NS when it was held */
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext)
        if (sk->ack_held) {
            bool found = false;
            for (unsigned i = 0; i < nh && !found; i++)
                found = ts->held[i] == sk;
            sk->ack_held = found;
        }
    unsigned nc = 0;
    size_t cache = 0;
    for (unsigned i = 0; i < ts->nring_cache && i < TCP_RING_CACHE; i++)
        if (mem_valid(ts->ring_cache[i].buf, ts->ring_cache[i].cap) &&
            !cache_entry_taken(ts, i)) {
            ts->ring_cache[nc++] = ts->ring_cache[i];
            cache += ts->ring_cache[i].cap;
        }
    if (nc != ts->nring_cache || cache != ts->ring_cache_bytes)
        FAULT_NOTE(&c, "ring cache");
    ts->nring_cache = nc;
    ts->ring_cache_bytes = cache;
    if (finish)
        tcp_sock_free(finish);
    size_t mem = 0;
    uint32_t waiters = 0;
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        mem += mem_of(sk);
        waiters += sk->snd_mem_wait;
    }
    if (mem != ts->mem_used)
        FAULT_NOTE(&c, "mem_used");
    ts->mem_used = mem;
    ts->snd_mem_waiters = waiters;
    ts->snd_mem_wake = waiters > 0;
    /* Connections that cannot go on: reset, one at a time (tcp_done may
     * free a TCB, a listener's children with it). */
    while (bad) {
        struct tcpsm_sock *sk = ts->all;
        while (sk && !sk->repair_reset)
            sk = sk->anext;
        if (!sk)
            break;
        bad--;
        sk->repair_reset = false;
        st->cnt.repair_resets++;
        if (tcp_synchronized(sk->state) && sk->state != TCPSM_TIME_WAIT)
            tcp_send_rst_sk(sk, now);
        tcp_done(sk, ECONNRESET, "reset: its state was left inconsistent by a process that "
                 "died holding the stack", NULL);
    }
    /* Closes cut short are finished (as the application asked: FIN, or RST
     * with unread data or SO_LINGER 0; a listener stops). Each leaves its TCB
     * in a later state or frees it; bounded all the same. */
    for (size_t k = 0, lim = ts->nsocks; k <= lim; k++) {
        struct tcpsm_sock *sk = ts->all;
        while (sk && !close_unfinished(sk))
            sk = sk->anext;
        if (!sk)
            break;
        FAULT_NOTE(&c, "unfinished close");
        tcpsm_sock_close(sk, now);
    }
    /* A FIN queued without its state change gets it (fin_unfinished).
     * Bytes queued and not sent, nothing in flight and no timer that would
     * send them (a send cut after its copy and before its output; an output
     * whose frames the repair dropped is covered by the RTO armed above):
     * they would wait for the next event on the connection, for ever if
     * none comes. Output now, as that event would (Nagle, cork, the window
     * and the congestion window still decide). This one is not a fault:
     * a state the stack also reaches between operations is not told apart. */
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext) {
        if (fin_unfinished(sk)) {
            FAULT_NOTE(&c, "FIN without its state change");
            tcp_send_fin(sk, "FIN queued by a process that died (repair)", now);
        }
        if (tcp_synchronized(sk->state) && sk->state != TCPSM_TIME_WAIT && tcp_unsent(sk) &&
            sk->snd_nxt == sk->snd_una && !sk->rto_at && !sk->persist_at && !sk->cork_at &&
            !sk->pace_at && !sk->out_held)
            tcp_output(sk, now);
    }
    stack_tx_flush(st);
    if (c.n) {
        st->cnt.repair_passes++;
        st->cnt.repair_faults += c.n;
    }
    return c.n;
}

void tcpsm_stack_repair_count(struct tcpsm_stack *st, unsigned faults, unsigned leaks,
                              bool core_found)
{
    if (!faults && !leaks)
        return;
    st->cnt.repair_passes += !core_found;
    st->cnt.repair_faults += faults;
    st->cnt.repair_leaks += leaks;
}

void tcpsm_stack_census(const struct tcpsm_stack *st, size_t *per_state, size_t *mem,
                        size_t *ring_cache)
{
    const struct tcp_stack *ts = st->tcp;
    memset(per_state, 0, TCPSM_NSTATES * sizeof(*per_state));
    for (const struct tcpsm_sock *sk = ts ? ts->all : NULL; sk; sk = sk->anext)
        if (sk->state >= 0 && sk->state < TCPSM_NSTATES)
            per_state[sk->state]++;
    *mem = ts ? ts->mem_used : 0;
    *ring_cache = ts ? ts->ring_cache_bytes : 0;
}
