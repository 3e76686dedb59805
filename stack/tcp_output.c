/* What to send and when: segment builder, segmentation to the MSS (or
 * super-segments of up to 64 KiB the link cuts to the MSS, TSO), Nagle /
 * NODELAY / CORK (RFC 896, RFC 1122 4.2.3.4), sender and receiver SWS
 * avoidance (RFC 1122 4.2.3.3-4), ACKs, SYNs, RSTs (RFC 9293 3.10.7.1).
 *
 * The payload is copied once, from the send ring into the frame, or not at
 * all on a link that takes payload slices (TCPSM_NETDEV_F_SG): the frame
 * then points into the ring, which stays put until the batch is flushed
 * (stack_tx_unpin before it moves). */
#include <string.h>

#include "csum.h"
#include "ipv4.h"
#include "ipv6.h"
#include "tcp_int.h"

#define TCP_HDR 20

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void fill_hdr(uint8_t *p, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
                     size_t hl, uint8_t flags, uint16_t wnd)
{
    put16(p, sport);
    put16(p + 2, dport);
    put32(p + 4, seq);
    put32(p + 8, ack);
    p[12] = (uint8_t)((hl / 4) << 4);
    p[13] = flags;
    put16(p + 14, wnd);
    put16(p + 16, 0);
    put16(p + 18, 0);
}

/* Room for a segment of l4_len bytes toward dst's family. */
static uint8_t *out_begin(struct tcpsm_stack *st, const struct tcpsm_addr *dst, size_t l4_len)
{
    st->txp_on = false;
    return addr_is_v4(dst) ? ipv4_out_begin(st, l4_len) : ipv6_out_begin_gso(st, l4_len);
}

/* Checksum and hand to IP. tos is the TOS / traffic class byte, ttl the
 * TTL / hop limit (-1: default). The segment's len bytes are the header
 * (and a copied payload) at p, or the header at p and the payload in
 * st->txp's slices when txp_on. gso: the segment size of a super-segment,
 * else 0. Checksum offload is used for both families when offered; the
 * pseudo-header sum covers the whole (super-)segment's L4 length, as
 * Linux seeds CHECKSUM_PARTIAL (its GSO adjusts it per segment). */
static void finish(struct tcpsm_stack *st, const struct tcpsm_addr *src,
                   const struct tcpsm_addr *dst, uint8_t *p, size_t len, int tos, int ttl,
                   uint32_t gso)
{
    bool v4 = addr_is_v4(dst);
    uint32_t pseudo = v4 ? csum_pseudo(addr_v4(src), addr_v4(dst), IPPROTO_TCP_, (uint16_t)len)
                         : csum_pseudo6(src->b, dst->b, IPPROTO_TCP_, (uint32_t)len);
    if (stack_dev(st)->features & TCPSM_NETDEV_F_TX_CSUM) {
        /* Linux CHECKSUM_PARTIAL: the field holds the folded pseudo-header
         * sum, the link sums the segment (each one of a super-segment) */
        put16(p + 16, (uint16_t)~csum_fold(pseudo));
        if (!st->txp_on) {
            memset(&st->txp, 0, sizeof(st->txp));
            st->txp_on = true;
        }
        st->txp.flags = TCPSM_FRAME_CSUM_PARTIAL |
                        (gso ? (v4 ? TCPSM_FRAME_GSO_TCPV4 : TCPSM_FRAME_GSO_TCPV6) : 0);
        st->txp.gso_size = (uint16_t)gso;
        /* the stack sends no IPv6 extension headers */
        st->txp.csum_start = ETH_HDR_LEN + (v4 ? IPV4_HDR_LEN : IPV6_HDR_LEN);
        st->txp.csum_offset = 16;
    } else if (st->txp_on) {
        size_t hl = len - st->txp.plen[0] - st->txp.plen[1];
        uint32_t s = csum_partial(p, hl, pseudo);
        s = csum_partial_at(st->txp.pay[0], st->txp.plen[0], s, hl);
        s = csum_partial_at(st->txp.pay[1], st->txp.plen[1], s, hl + st->txp.plen[0]);
        put16(p + 16, csum_fold(s));
    } else {
        put16(p + 16, csum_fold(csum_partial(p, len, pseudo)));
    }
    if (v4)
        ipv4_out_commit_tos(st, addr_v4(dst), IPPROTO_TCP_, len, (uint8_t)tos,
                            ttl < 0 ? 0 : (uint8_t)ttl);
    else
        ipv6_out_commit(st, src->b, dst->b, IPPROTO_TCP_, len, (uint8_t)tos,
                        ttl < 0 ? 0 : (uint8_t)ttl);
    st->txp_on = false;
    st->cnt.tcp_out++;
}

uint32_t tcp_send_mss(const struct tcpsm_sock *sk)
{
    uint32_t m = sk->mss;
    if (sk->ts_ok)
        m -= 12;
    /* SACK blocks ride on data segments too (RFC 2018 4): leave them room,
     * as Linux tcp_current_mss does */
    unsigned nb = sk->ooo.n + (sk->dsack ? 1u : 0u);
    if (sk->sack_ok && nb) {
        unsigned b = nb < (sk->ts_ok ? 3u : 4u) ? nb : (sk->ts_ok ? 3u : 4u);
        m -= 4 + 8 * b;
    }
    return m < 8 ? 8 : m;
}

static uint32_t rcv_cap(const struct tcpsm_sock *sk)
{
    return sk->rcvbuf;
}

/* Free receive space (the in-order bytes not yet read take the rest;
 * out-of-order bytes live inside this space). */
uint32_t tcp_rcv_space(const struct tcpsm_sock *sk)
{
    return rcv_cap(sk) - sk->rcvq.len;
}

/* The window field to send (scaled), moving rcv_adv. Never shrinks the
 * window (RFC 9293 3.8.6.2.2); grows it only by at least
 * min(buffer/2, MSS) (receiver SWS avoidance, RFC 1122 4.2.3.3). */
uint32_t tcp_rcv_wnd_offer(struct tcpsm_sock *sk)
{
    uint8_t s = sk->ws_ok ? sk->rcv_wscale : 0;
    /* a FIN took a sequence number but no buffer space: measure from the
     * end of the data */
    uint32_t nxt = sk->rcv_nxt - (sk->rcv_fin ? 1 : 0);
    uint32_t cur = seq_gt(sk->rcv_adv, nxt) ? sk->rcv_adv - nxt : 0;
    uint32_t space = tcp_rcv_space(sk);
    uint32_t max = (uint32_t)65535 << s;
    if (space > max)
        space = max;
    uint32_t thresh = rcv_cap(sk) / 2 < sk->rcv_mss ? rcv_cap(sk) / 2 : sk->rcv_mss;
    uint32_t field;
    /* an empty buffer is never a silly window (and a FIN took a sequence
     * number, not buffer space) */
    if (space > cur && (space - cur >= thresh || sk->rcvq.len == 0)) {
        field = space >> s;
    } else {
        field = (uint32_t)(((uint64_t)cur + (1u << s) - 1) >> s);
        /* Rounding up must not promise more than the buffer holds, or the
         * edge creeps by up to 2^s-1 bytes per ACK and data inside it is
         * dropped. Round down then: the edge on the wire recedes by less
         * than 2^s (RFC 7323 appendix F), rcv_adv stays where it was. */
        if (((uint64_t)field << s) > space)
            field = space >> s;
    }
    if (field > 65535)
        field = 65535;
    uint32_t edge = nxt + (field << s);
    if (seq_gt(edge, sk->rcv_adv) || !seq_gt(sk->rcv_adv, nxt))
        sk->rcv_adv = edge;
    if (field << s > sk->rcv_wnd_max)
        sk->rcv_wnd_max = field << s;
    sk->rcv_wnd_last = field << s;
    return field;
}

uint32_t tcp_unsent(const struct tcpsm_sock *sk)
{
    uint32_t off = sk->snd_nxt - sk->snd_buf_seq;
    if ((int32_t)off < 0)
        off = 0;
    return off < sk->sndq.len ? sk->sndq.len - off : 0;
}

/* Build and queue one segment of this connection. Payload: len bytes of
 * the send ring starting at sequence seq. whole: never a super-segment
 * (an MTU probe is one segment bigger than the MSS). */
static bool xmit_seg(struct tcpsm_sock *sk, uint32_t seq, uint8_t flags, uint32_t len, bool whole,
                     uint64_t now)
{
    struct tcpsm_stack *st = sk->st;
    bool sack = !(flags & (TCPSM_SYN | TCPSM_RST));
    size_t optlen = tcp_opt_len(sk, flags, sack);
    if (sack && len && TCP_HDR + optlen + len > tcp_mtu_l4(sk) &&
        !(addr_is_v4(&sk->raddr) ? ipv4_can_gso(st) : ipv6_can_gso(st))) {
        sack = false;                   /* sized before the blocks appeared */
        optlen = tcp_opt_len(sk, flags, false);
    }
    size_t hl = TCP_HDR + optlen;
    uint8_t *p = out_begin(st, &sk->raddr, hl + len);
    if (!p)
        return false;
    uint16_t wnd;
    if (flags & TCPSM_RST) {
        wnd = 0;
    } else if (flags & TCPSM_SYN) {
        /* RFC 7323 2.2: the window in a SYN is never scaled */
        uint32_t w = tcp_rcv_space(sk);
        wnd = (uint16_t)(w > 65535 ? 65535 : w);
        sk->rcv_adv = sk->rcv_nxt + wnd;
        sk->rcv_wnd_max = wnd;
        sk->rcv_wnd_last = wnd;
    } else {
        wnd = (uint16_t)tcp_rcv_wnd_offer(sk);
    }
    uint32_t ack = (flags & TCPSM_ACK) ? sk->rcv_nxt : 0;
    fill_hdr(p, sk->lport, sk->rport, seq, ack, hl, flags, wnd);
    if (!(flags & (TCPSM_SYN | TCPSM_RST)))
        tcp_urg_out(sk, p, seq);
    tcp_opt_build(sk, p + TCP_HDR, flags, now, sack);
    if (sack && sk->sack_ok)
        sk->dsack = false;              /* RFC 2883: reported once */
    if (len && (stack_dev(st)->features & TCPSM_NETDEV_F_SG)) {
        /* point at the ring: one slice, two where it wraps */
        const struct tcp_ring *r = &sk->sndq;
        uint32_t pos = (r->head + (seq - sk->snd_buf_seq)) % r->cap;
        uint32_t first = r->cap - pos < len ? r->cap - pos : len;
        memset(&st->txp, 0, sizeof(st->txp));
        st->txp.pay[0] = r->buf + pos;
        st->txp.plen[0] = first;
        if (len > first) {
            st->txp.pay[1] = r->buf;
            st->txp.plen[1] = len - first;
        }
        st->txp_on = true;
    } else if (len) {
        ring_read_at(&sk->sndq, seq - sk->snd_buf_seq, p + hl, len);
    }
    uint32_t mss = tcp_send_mss(sk);
    bool gso = len > mss && !whole &&
               (addr_is_v4(&sk->raddr) ? ipv4_can_gso(st) : ipv6_can_gso(st));
    if (gso) {
        st->cnt.tcp_gso_out++;
        st->cnt.tcp_gso_segs += tcp_segs(len, mss);
    }
    finish(st, &sk->laddr, &sk->raddr, p, hl + len, sk->tos, sk->ttl, gso ? mss : 0);
    /* Linux counts a super-segment by its segments (tcp_skb_pcount) */
    uint32_t pcount = gso ? tcp_segs(len, mss) : 1;
    sk->segs_out += pcount;
    if ((len || (flags & TCPSM_FIN)) && sk->syn_acked && tcp_rack_on(sk) &&
        !(flags & (TCPSM_SYN | TCPSM_RST)) && !seq_lt(seq, sk->snd_una)) {
        /* the retransmit queue learns every data segment and FIN sent
         * (SACK connections: without SACK, NewReno needs no records) */
        bool fin = (flags & TCPSM_FIN) != 0;
        tcp_rtxq_sent(sk, seq, len + (fin ? 1 : 0), fin, now);
        if (sk->in_recovery && !sk->loss_state)
            sk->prr_out += len + (fin ? 1 : 0);     /* RFC 6937 prr_out */
    }
    if (sk->loss_state && !tcp_rack_on(sk) && (len || (flags & TCPSM_FIN)) &&
        seq_lt(seq, sk->recover)) {
        /* without SACK after an RTO: resent up to here (F-RTO, tcp_cong.c) */
        uint32_t end = seq + len + ((flags & TCPSM_FIN) ? 1u : 0u);
        if (seq_gt(end, sk->recover))
            end = sk->recover;
        if (seq_gt(end, sk->reno_rtx_end))
            sk->reno_rtx_end = end;
    }
    if (len) {
        tcp_pace_sent(sk, len, now);
        sk->data_segs_out += pcount;
        sk->bytes_sent += len;
        sk->last_data_sent = now;
        /* Linux tcp_event_data_sent: a reply within the delayed-ACK time
         * of the data it answers makes the connection interactive */
        if (!seq_lt(seq, sk->snd_max) && sk->last_data_rcv && now - sk->last_data_rcv < TCP_DELACK_NS)
            sk->pingpong = true;
        if (seq_lt(seq, sk->snd_max)) {
            sk->bytes_retrans += len;
            /* Linux tcp_retransmit_skb: undo_retrans counts every one */
            if (sk->undo_retrans < 0)
                sk->undo_retrans = 0;
            sk->undo_retrans += (int32_t)len;
        }
    }
    sk->tx_flags = flags;
    sk->tx_seq = seq;
    sk->tx_ack = ack;
    sk->tx_len = len;
    sk->tx_wnd = wnd;
    if (flags & TCPSM_ACK) {
        sk->last_ack_sent = sk->rcv_nxt;
        sk->delack_segs = 0;
        sk->ack_now = false;
        if (sk->dack_at) {
            sk->dack_at = 0;
            tcp_timer_update(sk);
        }
    }
    if (flags & TCPSM_RST)
        st->cnt.tcp_rst_out++;
    return true;
}

static bool xmit(struct tcpsm_sock *sk, uint32_t seq, uint8_t flags, uint32_t len, uint64_t now)
{
    return xmit_seg(sk, seq, flags, len, false, now);
}

/* <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, where SND.NXT is the highest ever
 * sent: after an RTO rewinds snd_nxt, an older sequence number would fail
 * the peer's acceptability test and the ACK would be lost with it. */
void tcp_send_ack(struct tcpsm_sock *sk, uint64_t now)
{
    xmit(sk, sk->snd_max, TCPSM_ACK, 0, now);
}

/* SYN (SYN-SENT) or SYN+ACK (SYN-RECEIVED), first or retransmitted. */
void tcp_send_syn(struct tcpsm_sock *sk, uint64_t now)
{
    uint8_t fl = TCPSM_SYN;
    if (sk->state != TCPSM_SYN_SENT && sk->state != TCPSM_CLOSED)
        fl |= TCPSM_ACK;                /* the peer's SYN is known */
    xmit(sk, sk->iss, fl, 0, now);
    sk->snd_nxt = sk->iss + 1;
    if (seq_lt(sk->snd_max, sk->snd_nxt))
        sk->snd_max = sk->snd_nxt;
    tcp_rto_arm(sk, now);
}

/* A SYN+ACK from a TCB that keeps no state (a SYN cookie): no timer. */
void tcp_send_synack_stateless(struct tcpsm_sock *sk, uint64_t now)
{
    xmit(sk, sk->iss, TCPSM_SYN | TCPSM_ACK, 0, now);
}

/* RFC 9293 3.10.5 ABORT: <SEQ=SND.NXT><CTL=RST> (with ACK, like Linux). */
void tcp_send_rst_sk(struct tcpsm_sock *sk, uint64_t now)
{
    sk->tx_rst = xmit(sk, sk->snd_max, TCPSM_RST | TCPSM_ACK, 0, now);
}

/* Keepalive probe (RFC 1122 4.2.3.6): SEG.SEQ = SND.NXT-1, no data, so the
 * peer answers with an ACK. */
void tcp_send_probe(struct tcpsm_sock *sk, uint64_t now)
{
    xmit(sk, sk->snd_una - 1, TCPSM_ACK, 0, now);
}

static void count_rtx(struct tcpsm_sock *sk, uint32_t seq, uint64_t now)
{
    if (seq_lt(seq, sk->snd_max)) {
        sk->rtx_tsval = tcp_ts_now(sk, now);
        if (sk->undo_state == TCP_UNDO_ARMED) {
            sk->undo_tsval = sk->rtx_tsval;
            sk->undo_state = TCP_UNDO_STAMPED;
        }
        sk->st->cnt.tcp_retrans++;
        sk->total_retrans++;
        if (sk->rtt_active && seq_le(seq, sk->rtt_seq))
            sk->rtt_active = false;         /* Karn's rule */
        /* an MTU probe's bytes sent again (another loss, an RTO's go-back,
         * a tail probe): its ACK no longer proves that its size passes */
        if (sk->plp_probe && seq_lt(seq, sk->plp_probe_end))
            sk->plp_probe = 0;
    }
}

/* Send len bytes of the queue from seq again (SACK recovery). */
static bool send_data(struct tcpsm_sock *sk, uint32_t seq, uint32_t len, uint64_t now)
{
    uint32_t off = seq - sk->snd_buf_seq;
    uint32_t avail = off < sk->sndq.len ? sk->sndq.len - off : 0;
    if (len > avail)
        len = avail;
    if (!len)
        return false;
    uint8_t fl = TCPSM_ACK;
    if (len == avail)
        fl |= TCPSM_PSH;
    if (sk->fin_sent && seq + len == sk->fin_seq && seq_gt(sk->snd_max, sk->fin_seq))
        fl |= TCPSM_FIN;
    count_rtx(sk, seq, now);
    if (!xmit(sk, seq, fl, len, now))
        return false;
    if (!sk->rto_at)
        tcp_rto_arm(sk, now);
    return true;
}

/* One record of the retransmit queue that is lost, again: len bytes of
 * sequence space from seq, the last of them our FIN if it is. */
static bool send_lost(struct tcpsm_sock *sk, uint32_t seq, uint32_t len, uint64_t now)
{
    bool fin = sk->fin_sent && seq + len == sk->fin_seq + 1;
    uint32_t data = len - (fin ? 1 : 0);
    uint32_t off = seq - sk->snd_buf_seq;
    uint32_t avail = off < sk->sndq.len ? sk->sndq.len - off : 0;
    if (data > avail)
        return false;                   /* cannot happen: the queue holds what was sent */
    uint8_t fl = TCPSM_ACK;
    if (data && data == avail)
        fl |= TCPSM_PSH;
    if (fin)
        fl |= TCPSM_FIN;
    count_rtx(sk, seq, now);
    if (!xmit(sk, seq, fl, data, now))
        return false;
    if (!sk->rto_at)
        tcp_rto_arm(sk, now);
    return true;
}

/* Tail loss probe: the last segment sent, again (RFC 8985 7.3). */
void tcp_retransmit_tail(struct tcpsm_sock *sk, uint64_t now)
{
    uint32_t data_end = sk->fin_sent && seq_gt(sk->snd_max, sk->fin_seq) ? sk->fin_seq : sk->snd_max;
    uint32_t len = data_end - sk->snd_una, mss = tcp_send_mss(sk);
    if (len > mss)
        len = mss;
    if (!len || !send_data(sk, data_end - len, len, now))
        tcp_retransmit_head(sk, now);
}

/* A lost MTU probe (tcp_pmtu.c), connections without SACK: its bytes,
 * from SND.UNA up to end, again at the current MSS (Linux
 * tcp_simple_retransmit), without moving SND.NXT. */
void tcp_retransmit_range(struct tcpsm_sock *sk, uint32_t end, uint64_t now)
{
    uint32_t mss = tcp_send_mss(sk);
    for (uint32_t seq = sk->snd_una; seq_lt(seq, end);) {
        uint32_t len = end - seq < mss ? end - seq : mss;
        if (!send_data(sk, seq, len, now))
            break;
        seq += len;
    }
}

/* Retransmit the first unacknowledged segment (fast retransmit, NewReno
 * partial ACK, zero-window probe), without moving SND.NXT. */
void tcp_retransmit_head(struct tcpsm_sock *sk, uint64_t now)
{
    if (sk->state == TCPSM_SYN_SENT || sk->state == TCPSM_SYN_RECEIVED || !sk->syn_acked) {
        /* our SYN is not acknowledged yet (also after a close in SYN-RECEIVED) */
        count_rtx(sk, sk->iss, now);
        uint32_t nxt = sk->snd_nxt;
        tcp_send_syn(sk, now);
        if (seq_gt(nxt, sk->snd_nxt))
            sk->snd_nxt = nxt;
        return;
    }
    uint32_t seq = sk->snd_una;
    uint32_t off = seq - sk->snd_buf_seq;
    uint32_t avail = off < sk->sndq.len ? sk->sndq.len - off : 0;
    uint32_t len = tcp_send_mss(sk);
    if (len > avail)
        len = avail;
    uint32_t limit = sk->snd_max - seq;
    if (len > limit)
        len = limit;
    uint8_t fl = TCPSM_ACK;
    if (len && len == avail)
        fl |= TCPSM_PSH;
    if (sk->fin_sent && seq + len == sk->fin_seq && seq_gt(sk->snd_max, sk->fin_seq))
        fl |= TCPSM_FIN;
    if (!len && !(fl & TCPSM_FIN))
        return;
    count_rtx(sk, seq, now);
    xmit(sk, seq, fl, len, now);
    tcp_rto_arm(sk, now);
}

/* Pacing (BBR): true if the next data must wait; the timer is set for
 * when it may go. */
static bool pace_wait(struct tcpsm_sock *sk, uint64_t now)
{
    if (!tcp_pacing(sk) || now >= sk->pace_next)
        return false;
    sk->pace_waited = true;
    if (sk->pace_at != sk->pace_next) {
        sk->pace_at = sk->pace_next;
        tcp_timer_update(sk);
    }
    return true;
}

/* New data the send window and cwnd allow now (RFC 9293 3.8.6, RFC 5681). */
static uint32_t send_usable(const struct tcpsm_sock *sk, uint32_t mss, bool rack)
{
    /* RFC 3042 limited transmit: a new segment for each of the first
     * two duplicate ACKs */
    uint32_t cw = sk->cwnd;
    if (!rack && !sk->in_recovery && sk->dupacks && sk->dupacks <= 2)
        cw += sk->dupacks * mss;        /* (RACK: pipe leaves SACKed data out) */
    uint32_t rend = sk->snd_una + sk->snd_wnd;
    uint32_t usable = seq_gt(rend, sk->snd_nxt) ? rend - sk->snd_nxt : 0;
    uint32_t infl = rack ? tcp_rtxq_pipe(sk) : sk->snd_nxt - sk->snd_una;
    if (!rack && sk->loss_state && seq_ge(sk->snd_nxt, sk->recover)) {
        /* F-RTO's new data without SACK: what was resent and the new data
         * are in flight, not the old flight (RFC 5682 2.1 step 2b) */
        infl = sk->snd_nxt - sk->recover;
        infl += tcp_reno_resend_point(sk) - sk->snd_una;
    }
    uint32_t cusable = cw > infl ? cw - infl : 0;
    return usable < cusable ? usable : cusable;
}

/* What limited this pass (Linux tcp_write_xmit and tcp_cwnd_validation):
 * with room in cwnd, the next segment (up to an MSS of what is unsent) did
 * not fit the peer's window: receiver-limited; data went, all of it, and
 * the program found the send buffer full: sender-buffer-limited. */
static void chrono_after_output(struct tcpsm_sock *sk, uint32_t mss, bool rack, bool sent,
                                uint64_t now)
{
    uint32_t unsent = tcp_unsent(sk);
    uint32_t infl = rack ? tcp_rtxq_pipe(sk) : sk->snd_nxt - sk->snd_una;
    bool cwnd_room = infl < sk->cwnd;
    uint32_t next = unsent < mss ? unsent : mss;
    if (unsent && cwnd_room && seq_gt(sk->snd_nxt + next, sk->snd_una + sk->snd_wnd))
        tcp_chrono_start(sk, TCP_CHRONO_RWND, now);
    else
        tcp_chrono_stop(sk, TCP_CHRONO_RWND, now);
    if (sent && cwnd_room && !unsent && sk->async_nospace &&
        (sk->state == TCPSM_ESTABLISHED || sk->state == TCPSM_CLOSE_WAIT))
        tcp_chrono_start(sk, TCP_CHRONO_SNDBUF, now);
}

/* Send what the windows, Nagle and SWS avoidance allow (RFC 9293 3.8.6,
 * RFC 1122 4.2.3.4, RFC 5681 cwnd). */
void tcp_output(struct tcpsm_sock *sk, uint64_t now)
{
    switch (sk->state) {
    case TCPSM_ESTABLISHED:
    case TCPSM_CLOSE_WAIT:
    case TCPSM_FIN_WAIT_1:
    case TCPSM_CLOSING:
    case TCPSM_LAST_ACK:
        break;
    default:
        return;
    }
    uint32_t mss = tcp_send_mss(sk);
    /* With TSO a frame carries as many whole segments as fit in 64 KiB;
     * the link cuts it at the MSS, so each segment on the wire is what
     * the segment-at-a-time path would have sent. */
    uint32_t seg_max = mss;
    bool v4 = addr_is_v4(&sk->raddr);
    if (v4 ? ipv4_can_gso(sk->st) : ipv6_can_gso(sk->st)) {
        uint32_t room = (v4 ? ipv4_max_l4(sk->st) : ipv6_max_l4(sk->st)) - TCP_HDR -
                        (uint32_t)tcp_opt_len(sk, TCPSM_ACK, false);
        if (room / mss > 1)
            seg_max = room / mss * mss;
    }
    /* urgent mode: one segment per frame, each with its own pointer (a
     * super-segment's header would be copied to every piece) */
    bool urg = tcp_urg_sending(sk);
    if (urg)
        seg_max = mss;
    else if (tcp_pacing(sk))
        seg_max = tcp_pace_burst(sk, mss, seg_max);    /* ~1 ms of data a frame */
    bool sent = false;
    bool rack = tcp_rack_on(sk) && sk->syn_acked;
    /* RACK: the records deemed lost go first, as cwnd - pipe allows
     * (RFC 6675 5 (C) with RFC 6937's cwnd); the first always can */
    /* F-RTO step 2 (RFC 5682): new data this time, not the lost records */
    bool frto_new = sk->frto_new;
    sk->frto_new = false;
    while (rack && sk->rtxq.lost && !frto_new) {
        uint32_t seq, len;
        if (!tcp_rtxq_next_lost(sk, mss, &seq, &len))
            break;
        uint32_t pipe = tcp_rtxq_pipe(sk);
        if (pipe && pipe + len > sk->cwnd)
            break;
        if (pace_wait(sk, now))
            break;
        if (!send_lost(sk, seq, len, now))
            break;
        sent = true;
    }
    if (sk->plp_on && !urg && !sk->cork && !sk->more) {
        /* RFC 4821 7.3: a probe of the next size up, new data, then the
         * rest as usual (enough of it after the probe to show its loss) */
        uint32_t avail = tcp_unsent(sk);
        uint32_t plen = tcp_plpmtud_probe_len(sk, avail, send_usable(sk, mss, rack), mss, now);
        if (plen && plen < avail) {
            uint32_t seq = sk->snd_nxt;
            if (!sk->ts_ok && !sk->rtt_active) {
                sk->rtt_active = true;
                sk->rtt_seq = seq;
                sk->rtt_start = now;
            }
            if (xmit_seg(sk, seq, TCPSM_ACK, plen, true, now)) {
                sk->snd_nxt += plen;
                sk->snd_max = sk->snd_nxt;
                tcp_plpmtud_probe_sent(sk, seq, plen, mss);
                sent = true;
            }
        }
    }
    for (;;) {
        uint32_t off = sk->snd_nxt - sk->snd_buf_seq;
        uint32_t avail = off < sk->sndq.len ? sk->sndq.len - off : 0;
        uint32_t usable = send_usable(sk, mss, rack);
        if (!avail) {
            /* FIN after the last byte (first time, or again after an RTO) */
            if (sk->fin_queued && (!sk->fin_sent || sk->snd_nxt == sk->fin_seq) &&
                sk->snd_nxt == sk->snd_buf_seq + sk->sndq.len) {
                count_rtx(sk, sk->snd_nxt, now);
                sk->fin_seq = sk->snd_nxt;
                sk->fin_sent = true;
                xmit(sk, sk->snd_nxt, TCPSM_FIN | TCPSM_ACK, 0, now);
                sk->snd_nxt++;
                sent = true;
            }
            break;
        }
        uint32_t len = avail < seg_max ? avail : seg_max;
        if (len > usable)
            len = usable;
        if (!len)
            break;
        bool in_flight = sk->snd_nxt != sk->snd_una;
        if (len > mss && len % mss) {
            /* A super-segment ends on a segment boundary unless its short
             * last segment is the end of the data and Nagle / CORK let it
             * go now (Linux tcp_mss_split_point); the rest waits. */
            bool hold = len < avail || (!sk->fin_queued &&
                        ((sk->cork && !sk->cork_push) ||
                         (!sk->nodelay && in_flight && seq_gt(sk->snd_sml, sk->snd_una))));
            if (hold)
                len -= len % mss;
        }
        if (len < mss) {
            if (len < avail) {
                /* window-limited: RFC 1122 4.2.3.4 sender SWS avoidance */
                if (in_flight && len < sk->max_snd_wnd / 2)
                    break;
            } else if (!sk->fin_queued) {
                if ((sk->cork || sk->more) && !sk->cork_push) {
                    /* Linux: corked output waits at most 200 ms */
                    if (!sk->cork_at) {
                        sk->cork_at = now + TCP_CORK_NS;
                        tcp_timer_update(sk);
                    }
                    break;
                }
                if (!sk->nodelay && !urg && in_flight && seq_gt(sk->snd_sml, sk->snd_una))
                    break;              /* Nagle (Minshall): one small segment in flight;
                                           urgent data goes at once (Linux tcp_nagle_test) */
            }
        }
        if (pace_wait(sk, now))
            break;
        uint8_t fl = TCPSM_ACK;
        if (len == avail)
            fl |= TCPSM_PSH;
        if (len == avail && sk->fin_queued && (!sk->fin_sent || sk->snd_nxt + len == sk->fin_seq)) {
            fl |= TCPSM_FIN;
            sk->fin_seq = sk->snd_nxt + len;
            sk->fin_sent = true;
        }
        count_rtx(sk, sk->snd_nxt, now);
        if (!sk->ts_ok && !sk->rtt_active && sk->snd_nxt == sk->snd_max) {
            sk->rtt_active = true;
            sk->rtt_seq = sk->snd_nxt;
            sk->rtt_start = now;
        }
        if (!xmit(sk, sk->snd_nxt, fl, len, now))
            break;
        sk->snd_nxt += len + ((fl & TCPSM_FIN) ? 1 : 0);
        if (len % mss)
            sk->snd_sml = sk->snd_nxt;      /* ended with a small segment */
        sent = true;
    }
    if (seq_gt(sk->snd_nxt, sk->snd_max))
        sk->snd_max = sk->snd_nxt;
    if (frto_new && !seq_gt(sk->snd_nxt, sk->recover)) {
        /* no new data went (Nagle, pacing): conventional recovery, the
         * lost records now (Linux tcp_xmit_recovery clears frto); without
         * SACK back to where the resending had got */
        sk->frto = false;
        if (!rack && sk->loss_state)
            sk->snd_nxt = tcp_reno_resend_point(sk);
        tcp_output(sk, now);
        return;
    }
    if (sent && !sk->rto_at)
        tcp_rto_arm(sk, now);
    chrono_after_output(sk, mss, rack, sent, now);
    if (rack)
        tcp_rate_check_app_limited(sk);
    tcp_persist_check(sk, now);
}

/* After the application read: announce a window that opened by at least
 * min(2*MSS, buffer/2) (RFC 1122 4.2.3.3), if the window the peer has was
 * at most half the largest one offered so far (so unread data shrank it:
 * the peer may soon stall). Like Linux tcp_cleanup_rbuf, whose offers grow
 * from the initial window (rcv_ssthresh): a request read from a fresh
 * connection, whose window is still the SYN's unscaled 64 KiB, is not
 * worth an ACK of its own; the response carries the larger window. */
void tcp_window_update(struct tcpsm_sock *sk, uint64_t now)
{
    switch (sk->state) {
    case TCPSM_ESTABLISHED:
    case TCPSM_FIN_WAIT_1:
    case TCPSM_FIN_WAIT_2:
        break;
    default:
        return;
    }
    uint32_t cur = seq_gt(sk->rcv_adv, sk->rcv_nxt) ? sk->rcv_adv - sk->rcv_nxt : 0;
    uint32_t space = tcp_rcv_space(sk);
    uint32_t thresh = 2u * sk->rcv_mss;
    if (thresh > rcv_cap(sk) / 2)
        thresh = rcv_cap(sk) / 2;
    /* like Linux tcp_cleanup_rbuf: only a window that had shrunk to half
     * the buffer or less is worth an immediate update */
    uint32_t ref = sk->rcv_wnd_max < rcv_cap(sk) ? sk->rcv_wnd_max : rcv_cap(sk);
    if (cur <= ref / 2 && space > cur && space - cur >= thresh)
        tcp_send_ack(sk, now);
}

/* RFC 9293 3.10.7.1: the reply to a segment for no connection. Never to a RST. */
void tcp_reply_rst(struct tcpsm_stack *st, const struct tcp_seg *seg)
{
    if (seg->flags & TCPSM_RST)
        return;
    uint8_t *p = out_begin(st, &seg->src, TCP_HDR);
    if (!p)
        return;
    if (seg->flags & TCPSM_ACK) {
        fill_hdr(p, seg->dport, seg->sport, seg->ack, 0, TCP_HDR, TCPSM_RST, 0);
    } else {
        uint32_t ack = seg->seq + seg->len + ((seg->flags & TCPSM_SYN) ? 1 : 0) +
                       ((seg->flags & TCPSM_FIN) ? 1 : 0);
        fill_hdr(p, seg->dport, seg->sport, 0, ack, TCP_HDR, TCPSM_RST | TCPSM_ACK, 0);
    }
    finish(st, &seg->dst, &seg->src, p, TCP_HDR, 0, -1, 0);
    st->cnt.tcp_rst_out++;
}
