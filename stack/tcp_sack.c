/* Sender side of SACK (RFC 2018, RFC 6675, simplified): a scoreboard of
 * the ranges the peer holds above SND.UNA, the loss estimate derived from
 * it (DupThresh * SMSS bytes SACKed above a hole), the "pipe" of bytes
 * still in the network, and NextSeg for loss recovery. Without SACK blocks
 * the scoreboard stays empty and recovery is plain NewReno (tcp_cong.c). */
#include "tcp_int.h"

#define DUPTHRESH 3

/* Record the peer's blocks; returns true if they SACK bytes not seen before. */
bool tcp_sack_update(struct tcpsm_sock *sk, const struct tcp_opts *o)
{
    if (!sk->sack_ok)
        return false;
    uint32_t before = tcp_sack_bytes(sk);
    for (unsigned i = 0; i < o->nsack; i++) {
        uint32_t l = o->sack_l[i], r = o->sack_r[i];
        /* ignore D-SACK and blocks outside what is in flight */
        if (!seq_lt(l, r) || !seq_gt(r, sk->snd_una) || seq_gt(r, sk->snd_max))
            continue;
        if (seq_lt(l, sk->snd_una))
            l = sk->snd_una;
        ooo_add(&sk->sacked, l, r);     /* full scoreboard: the block is skipped */
    }
    return tcp_sack_bytes(sk) != before;
}

/* SND.UNA moved: forget what is now cumulatively acknowledged. */
void tcp_sack_prune(struct tcpsm_sock *sk)
{
    struct tcp_ooo *s = &sk->sacked;
    unsigned k = 0;
    for (unsigned i = 0; i < s->n; i++) {
        if (seq_le(s->end[i], sk->snd_una))
            continue;
        s->start[k] = seq_lt(s->start[i], sk->snd_una) ? sk->snd_una : s->start[i];
        s->end[k] = s->end[i];
        k++;
    }
    s->n = k;
    if (seq_lt(sk->high_rxt, sk->snd_una))
        sk->high_rxt = sk->snd_una;     /* HighRxt never lags: no stale compare after a wrap */
}

uint32_t tcp_sack_bytes(const struct tcpsm_sock *sk)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < sk->sacked.n; i++)
        n += sk->sacked.end[i] - sk->sacked.start[i];
    return n;
}

/* Everything below the returned sequence number that is not SACKed is
 * lost (RFC 6675 IsLost: DupThresh discontiguous SACKed ranges, or more
 * than (DupThresh - 1) * SMSS bytes SACKed, above it). In recovery the
 * first unacknowledged segment always counts as lost (RFC 6675 5 (4.3),
 * RFC 6582 3.2 (4)): the whole segment, up to SMSS or the first SACKed
 * byte, never a sliver of it. */
static uint32_t lost_edge(const struct tcpsm_sock *sk)
{
    uint32_t mss = tcp_send_mss(sk), acc = 0;
    uint32_t edge = sk->snd_una;
    for (unsigned i = sk->sacked.n; i-- > 0;) {
        acc += sk->sacked.end[i] - sk->sacked.start[i];
        if (acc > (DUPTHRESH - 1) * mss || sk->sacked.n - i >= DUPTHRESH) {
            edge = sk->sacked.start[i];
            break;
        }
    }
    if (sk->in_recovery) {
        uint32_t head = sk->snd_una + mss;
        if (sk->sacked.n && seq_lt(sk->sacked.start[0], head))
            head = sk->sacked.start[0];
        if (seq_lt(edge, head))
            edge = head;
    }
    return edge;
}

bool tcp_sack_head_lost(const struct tcpsm_sock *sk)
{
    return sk->sacked.n && seq_gt(lost_edge(sk), sk->snd_una);
}

/* Bytes of holes (not SACKed) in [from, to). */
static uint32_t holes(const struct tcpsm_sock *sk, uint32_t from, uint32_t to)
{
    if (!seq_lt(from, to))
        return 0;
    uint32_t n = to - from;
    for (unsigned i = 0; i < sk->sacked.n; i++) {
        uint32_t a = seq_max(sk->sacked.start[i], from), b = seq_min(sk->sacked.end[i], to);
        if (seq_lt(a, b))
            n -= b - a;
    }
    return n;
}

/* Bytes the scoreboard counts as lost (for TCP_INFO). */
uint32_t tcp_sack_lost_bytes(const struct tcpsm_sock *sk)
{
    if (!sk->sacked.n)
        return 0;
    uint32_t edge = lost_edge(sk);
    if (seq_gt(edge, sk->snd_max))
        edge = sk->snd_max;
    return holes(sk, sk->snd_una, edge);
}

/* RFC 6675 pipe: in flight = not SACKed and not lost, plus retransmitted. */
uint32_t tcp_sack_pipe(const struct tcpsm_sock *sk)
{
    uint32_t edge = lost_edge(sk);
    uint32_t out = sk->snd_nxt - sk->snd_una;
    if (seq_gt(edge, sk->snd_nxt))
        edge = sk->snd_nxt;
    uint32_t sacked = tcp_sack_bytes(sk);
    uint32_t lost = holes(sk, sk->snd_una, edge);
    uint32_t rxt = holes(sk, sk->snd_una, seq_min(seq_max(sk->high_rxt, sk->snd_una), edge));
    uint32_t p = out > sacked ? out - sacked : 0;
    p = p > lost ? p - lost : 0;
    return p + rxt;
}

/* A retransmission is lost when DupThresh segments' worth sent after it
 * has been SACKed (RFC 8985 RACK's rule, with DupThresh as the reordering
 * allowance): rewind HighRxt so NextSeg sends the holes again instead of
 * waiting for the RTO, which RFC 6675 alone would do. Returns true if so. */
bool tcp_sack_rtx_lost(struct tcpsm_sock *sk)
{
    if (!sk->in_recovery || !sk->sacked.n || !seq_gt(sk->high_rxt, sk->snd_una))
        return false;
    uint32_t mss = tcp_send_mss(sk), after = 0;
    unsigned blocks = 0;
    for (unsigned i = 0; i < sk->sacked.n; i++) {
        uint32_t a = seq_max(sk->sacked.start[i], sk->rxt_snd_max);
        if (seq_lt(a, sk->sacked.end[i])) {
            after += sk->sacked.end[i] - a;
            blocks++;
        }
    }
    if (after <= (DUPTHRESH - 1) * mss && blocks < DUPTHRESH)
        return false;
    sk->high_rxt = sk->snd_una;
    sk->rxt_snd_max = sk->snd_max;
    return true;
}

/* RFC 6675 NextSeg rule 1: the first lost byte not yet retransmitted in
 * this recovery. Returns its length (0: none), at most mss. */
uint32_t tcp_sack_next_hole(const struct tcpsm_sock *sk, uint32_t *seq)
{
    uint32_t edge = lost_edge(sk);
    uint32_t s = seq_max(sk->high_rxt, sk->snd_una);
    while (seq_lt(s, edge)) {
        bool inside = false;
        for (unsigned i = 0; i < sk->sacked.n; i++)
            if (seq_le(sk->sacked.start[i], s) && seq_lt(s, sk->sacked.end[i])) {
                s = sk->sacked.end[i];
                inside = true;
                break;
            }
        if (inside)
            continue;
        uint32_t end = edge;
        for (unsigned i = 0; i < sk->sacked.n; i++)
            if (seq_gt(sk->sacked.start[i], s) && seq_lt(sk->sacked.start[i], end))
                end = sk->sacked.start[i];
        uint32_t len = end - s, mss = tcp_send_mss(sk);
        *seq = s;
        return len < mss ? len : mss;
    }
    return 0;
}
