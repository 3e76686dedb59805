/* Sender side of SACK (RFC 2018): the ranges the peer holds above
 * SND.UNA, as its blocks say (TCP_INFO, the congestion state). Loss
 * detection and recovery work on the retransmit queue's records
 * (tcp_rtxq.c, tcp_rack.c), which the same blocks mark. */
#include "tcp_int.h"

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
}

uint32_t tcp_sack_bytes(const struct tcpsm_sock *sk)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < sk->sacked.n; i++)
        n += sk->sacked.end[i] - sk->sacked.start[i];
    return n;
}
