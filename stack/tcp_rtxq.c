/* The retransmit queue: one record per segment sent and not yet
 * cumulatively acknowledged, over the send ring (Linux's rtx queue of skbs
 * and their sacked bits): the sequence range, when it was last sent, and
 * whether the peer SACKed it, it is deemed lost, or a retransmission of it
 * is in flight. RACK (tcp_rack.c) decides losses on it, tcp_output resends
 * the lost records, and the RFC 6675 pipe is kept as byte counts
 * (Linux: packets_out - (sacked_out + lost_out) + retrans_out).
 *
 * Records are contiguous from SND.UNA in sequence order, held in an array
 * that grows by doubling. Bound: TCP_RTXQ_MAX records per connection (or
 * what memory gives); at the bound, or if memory runs out, the newest
 * record grows to cover the new data instead (loss is then detected for it
 * as one unit; nothing is dropped). */
#include <string.h>

#include "mem.h"
#include "tcp_int.h"

struct tcp_rtx *tcp_rtxq_at(const struct tcpsm_sock *sk, uint32_t i)
{
    return &sk->rtxq.r[sk->rtxq.head + i];
}

void tcp_rtxq_free(struct tcpsm_sock *sk)
{
    struct tcp_rtxq *q = &sk->rtxq;
    if (q->r) {
        tcp_mem_uncharge(TS(sk), (size_t)q->cap * sizeof(*q->r));
        mem_free(q->r);
    }
    memset(q, 0, sizeof(*q));
}

static uint32_t rlen(const struct tcp_rtx *x)
{
    return x->end - x->seq;
}

/* Room for one more record at the back (or, with at_idx, anywhere). */
static bool room(struct tcpsm_sock *sk)
{
    struct tcp_rtxq *q = &sk->rtxq;
    if (q->head + q->n < q->cap)
        return true;
    if (q->head > 0 && q->n < q->cap / 2 + 1) {
        memmove(q->r, q->r + q->head, (size_t)q->n * sizeof(*q->r));
        q->head = 0;
        if (q->n < q->cap)
            return true;
    }
    if (q->n >= TCP_RTXQ_MAX)
        return false;
    uint32_t cap = q->cap ? q->cap * 2 : TCP_RTXQ_FIRST;
    if (cap > TCP_RTXQ_MAX)
        cap = TCP_RTXQ_MAX;
    struct tcp_rtx *r = mem_alloc((size_t)cap * sizeof(*r));
    if (!r)
        return false;
    tcp_mem_charge(TS(sk), (size_t)cap * sizeof(*r), true);
    if (q->r) {
        memcpy(r, q->r + q->head, (size_t)q->n * sizeof(*r));
        tcp_mem_uncharge(TS(sk), (size_t)q->cap * sizeof(*q->r));
        mem_free(q->r);
    }
    q->r = r;
    q->cap = cap;
    q->head = 0;
    return true;
}

/* Flag bookkeeping: counts follow the flags. */
static void unflag(struct tcp_rtxq *q, struct tcp_rtx *x)
{
    uint32_t n = rlen(x);
    if (x->fl & TCP_RTX_SACKED)
        q->sacked -= n;
    else {
        if (x->fl & TCP_RTX_LOST)
            q->lost -= n;
        if (x->fl & TCP_RTX_RETRANS)
            q->retrans -= n;
    }
}

static void reflag(struct tcp_rtxq *q, struct tcp_rtx *x)
{
    uint32_t n = rlen(x);
    if (x->fl & TCP_RTX_SACKED)
        q->sacked += n;
    else {
        if (x->fl & TCP_RTX_LOST)
            q->lost += n;
        if (x->fl & TCP_RTX_RETRANS)
            q->retrans += n;
    }
}

/* Split record i at sequence at (inside it): [seq, at) stays i, [at, end)
 * becomes i+1 with the same flags and time. false if no room. */
static bool split(struct tcpsm_sock *sk, uint32_t i, uint32_t at)
{
    if (!room(sk))
        return false;
    struct tcp_rtxq *q = &sk->rtxq;
    struct tcp_rtx *x = &q->r[q->head + i];
    memmove(x + 2, x + 1, (size_t)(q->n - i - 1) * sizeof(*x));
    x[1] = x[0];
    x[0].end = at;
    x[0].fl &= (uint8_t)~TCP_RTX_FIN;
    x[1].seq = at;
    q->n++;
    return true;
}

/* Index of the record holding seq (q->n if none). */
static uint32_t find(const struct tcpsm_sock *sk, uint32_t seq)
{
    const struct tcp_rtxq *q = &sk->rtxq;
    uint32_t lo = 0, hi = q->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct tcp_rtx *x = &q->r[q->head + mid];
        if (seq_lt(seq, x->seq))
            hi = mid;
        else if (seq_ge(seq, x->end))
            lo = mid + 1;
        else
            return mid;
    }
    return q->n;
}

/* xmit() sent [seq, seq+len) (len counts a FIN, fin says it is in it): a
 * retransmission of records already held updates their time and flags,
 * new data gets records of at most one MSS each. */
void tcp_rtxq_sent(struct tcpsm_sock *sk, uint32_t seq, uint32_t len, bool fin, uint64_t now)
{
    struct tcp_rtxq *q = &sk->rtxq;
    uint32_t end = seq + len;
    if (seq_lt(seq, sk->snd_una))
        seq = sk->snd_una;
    if (!seq_lt(seq, end))
        return;
    uint32_t tail = q->n ? q->r[q->head + q->n - 1].end : sk->snd_una;
    if (!q->n)                          /* a flight starts (tcp_rate.c) */
        sk->rate.first_tx = sk->rate.delivered_at = now;
    /* the part already in the queue: a retransmission */
    if (seq_lt(seq, tail)) {
        uint32_t stop = seq_lt(end, tail) ? end : tail;
        uint32_t i = find(sk, seq);
        if (i < q->n && q->r[q->head + i].seq != seq && split(sk, i, seq))
            i++;
        for (; i < q->n; i++) {
            struct tcp_rtx *x = &q->r[q->head + i];
            if (!seq_lt(x->seq, stop))
                break;
            if (seq_gt(x->end, stop) && split(sk, i, stop))
                x = &q->r[q->head + i];
            unflag(q, x);
            x->fl |= TCP_RTX_RETRANS | TCP_RTX_EVER;
            x->xmit = now;
            tcp_rate_sent(sk, x, now);
            reflag(q, x);
        }
        seq = stop;
    }
    if (!seq_lt(seq, end))
        return;
    if (seq_gt(seq, tail))
        seq = tail;                     /* data sent untracked (before the SYN was ACKed) */
    uint32_t mss = tcp_send_mss(sk);
    while (seq_lt(seq, end)) {
        uint32_t n = end - seq < mss ? end - seq : mss;
        if (!room(sk)) {
            /* at the bound: the newest record covers the rest */
            if (!q->n)
                return;
            struct tcp_rtx *x = &q->r[q->head + q->n - 1];
            unflag(q, x);
            x->end = end;
            x->xmit = now;
            x->fl = fin ? TCP_RTX_FIN : 0;
            tcp_rate_sent(sk, x, now);
            reflag(q, x);
            sk->st->cnt.tcp_rtxq_full++;
            return;
        }
        struct tcp_rtx *x = &q->r[q->head + q->n++];
        x->seq = seq;
        x->end = seq + n;
        x->xmit = now;
        x->fl = fin && x->end == end ? TCP_RTX_FIN : 0;
        tcp_rate_sent(sk, x, now);
        seq += n;
    }
}

/* SND.UNA moved to ack: drop what it covers, trim a record it cuts.
 * Records not SACKed before are newly delivered (RACK). Returns the bytes
 * that were SACKed before and are acknowledged now. */
uint32_t tcp_rtxq_ack(struct tcpsm_sock *sk, uint32_t ack, uint64_t now)
{
    struct tcp_rtxq *q = &sk->rtxq;
    uint32_t was_sacked = 0;
    while (q->n) {
        struct tcp_rtx *x = &q->r[q->head];
        if (!seq_gt(x->end, ack)) {
            if (x->fl & TCP_RTX_SACKED)
                was_sacked += rlen(x);
            else {
                tcp_rack_delivered(sk, x, now);
                tcp_rate_delivered(sk, x, now);
            }
            unflag(q, x);
            q->head++;
            q->n--;
            continue;
        }
        if (seq_gt(ack, x->seq)) {
            /* a partial ACK of one record (the peer took part of it) */
            unflag(q, x);
            if (x->fl & TCP_RTX_SACKED)
                was_sacked += ack - x->seq;
            else
                sk->rate.delivered += ack - x->seq;     /* tcp_rate.c counts the rest later */
            x->seq = ack;
            reflag(q, x);
        }
        break;
    }
    if (!q->n)
        tcp_rtxq_free(sk);              /* all acknowledged: an idle connection holds none */
    return was_sacked;
}

/* A SACK block [l, r): mark the records inside it (split at its edges).
 * Returns the bytes newly SACKed. */
uint32_t tcp_rtxq_sack(struct tcpsm_sock *sk, uint32_t l, uint32_t r, uint64_t now)
{
    struct tcp_rtxq *q = &sk->rtxq;
    if (!q->n || !seq_lt(l, r))
        return 0;
    if (seq_lt(l, q->r[q->head].seq))
        l = q->r[q->head].seq;
    uint32_t i = find(sk, l);
    if (i >= q->n)
        return 0;
    if (q->r[q->head + i].seq != l) {
        if (q->r[q->head + i].fl & TCP_RTX_SACKED)
            i++;                        /* already SACKed: no split needed */
        else if (split(sk, i, l))
            i++;
        else
            i++;                        /* no room: the partly SACKed record stays unSACKed */
    }
    uint32_t got = 0;
    for (; i < q->n; i++) {
        struct tcp_rtx *x = &q->r[q->head + i];
        if (!seq_lt(x->seq, r))
            break;
        if (x->fl & TCP_RTX_SACKED)
            continue;
        if (seq_gt(x->end, r)) {
            if (!split(sk, i, r))
                break;
            x = &q->r[q->head + i];
        }
        unflag(q, x);
        tcp_rack_delivered(sk, x, now);
        tcp_rate_delivered(sk, x, now);
        x->fl = (uint8_t)((x->fl & (TCP_RTX_EVER | TCP_RTX_FIN)) | TCP_RTX_SACKED);
        reflag(q, x);
        got += rlen(x);
    }
    return got;
}

/* RFC 6675 pipe: bytes sent, minus SACKed, minus lost, plus retransmitted
 * (the SYN and data before the queue's first record are not counted). */
uint32_t tcp_rtxq_pipe(const struct tcpsm_sock *sk)
{
    const struct tcp_rtxq *q = &sk->rtxq;
    uint32_t out = seq_gt(sk->snd_nxt, sk->snd_una) ? sk->snd_nxt - sk->snd_una : 0;
    uint32_t gone = q->sacked + q->lost;
    uint32_t p = out > gone ? out - gone : 0;
    return p + q->retrans;
}

void tcp_rtxq_mark_lost(struct tcpsm_sock *sk, struct tcp_rtx *x)
{
    struct tcp_rtxq *q = &sk->rtxq;
    if (x->fl & TCP_RTX_SACKED)
        return;
    unflag(q, x);
    /* a retransmission deemed lost too: no longer in flight (Linux
     * tcp_mark_skb_lost) */
    x->fl = (uint8_t)((x->fl & ~TCP_RTX_RETRANS) | TCP_RTX_LOST);
    reflag(q, x);
}

/* RTO: everything not SACKed is lost (Linux tcp_timeout_mark_lost; the
 * SACKed records stay, as Linux keeps them unless the peer reneged: the
 * head record SACKed means it did, and then every mark goes). */
void tcp_rtxq_mark_all_lost(struct tcpsm_sock *sk)
{
    struct tcp_rtxq *q = &sk->rtxq;
    bool reneged = q->n && (q->r[q->head].fl & TCP_RTX_SACKED);
    for (uint32_t i = 0; i < q->n; i++) {
        struct tcp_rtx *x = &q->r[q->head + i];
        if (reneged && (x->fl & TCP_RTX_SACKED)) {
            unflag(q, x);
            x->fl &= (uint8_t)~TCP_RTX_SACKED;
            reflag(q, x);
        }
        tcp_rtxq_mark_lost(sk, x);
    }
}

/* An undone recovery: nothing is lost after all (Linux
 * tcp_undo_cwnd_reduction clears TCPCB_LOST). */
void tcp_rtxq_clear_lost(struct tcpsm_sock *sk)
{
    struct tcp_rtxq *q = &sk->rtxq;
    for (uint32_t i = 0; i < q->n && q->lost; i++) {
        struct tcp_rtx *x = &q->r[q->head + i];
        if ((x->fl & TCP_RTX_LOST) && !(x->fl & TCP_RTX_SACKED)) {
            unflag(q, x);
            x->fl &= (uint8_t)~TCP_RTX_LOST;
            reflag(q, x);
        }
    }
}

/* The first record that is lost and not yet retransmitted: its range, at
 * most mss bytes of data (a record from a larger MSS is split), the FIN
 * counted in len. */
bool tcp_rtxq_next_lost(struct tcpsm_sock *sk, uint32_t mss, uint32_t *seq, uint32_t *len)
{
    struct tcp_rtxq *q = &sk->rtxq;
    if (!q->lost)
        return false;
    for (uint32_t i = 0; i < q->n; i++) {
        struct tcp_rtx *x = &q->r[q->head + i];
        if ((x->fl & (TCP_RTX_SACKED | TCP_RTX_LOST | TCP_RTX_RETRANS)) != TCP_RTX_LOST)
            continue;
        uint32_t data = rlen(x) - ((x->fl & TCP_RTX_FIN) ? 1 : 0);
        if (data > mss && split(sk, i, x->seq + mss))
            x = &q->r[q->head + i];
        *seq = x->seq;
        *len = rlen(x);
        return true;
    }
    return false;
}

/* The head record starts at seq and is marked lost (not SACKed). */
bool tcp_rtxq_lost_at(const struct tcpsm_sock *sk, uint32_t seq)
{
    const struct tcp_rtxq *q = &sk->rtxq;
    if (!q->n)
        return false;
    const struct tcp_rtx *x = &q->r[q->head];
    return x->seq == seq && (x->fl & (TCP_RTX_LOST | TCP_RTX_SACKED)) == TCP_RTX_LOST;
}

/* Every byte marked lost lies before end (a lost MTU probe's, tcp_pmtu.c):
 * walks the records before end only. */
bool tcp_rtxq_lost_below(const struct tcpsm_sock *sk, uint32_t end)
{
    const struct tcp_rtxq *q = &sk->rtxq;
    uint32_t below = 0;
    for (uint32_t i = 0; i < q->n; i++) {
        const struct tcp_rtx *x = &q->r[q->head + i];
        if (!seq_lt(x->seq, end))
            break;
        if ((x->fl & (TCP_RTX_LOST | TCP_RTX_SACKED)) == TCP_RTX_LOST)
            below += rlen(x);
    }
    return below >= q->lost;
}
