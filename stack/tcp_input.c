/* SEGMENT ARRIVES (RFC 9293 3.10.7), step by step, with RFC 5961
 * (blind RST/SYN/ACK defences), RFC 7323 (PAWS, RTTM) and RFC 6191
 * (SYN to TIME-WAIT). The RFC section numbers below are the map. */
#include <errno.h>
#include <string.h>

#include "csum.h"
#include "ipv4.h"
#include "tcp_int.h"

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t seg_space(const struct tcp_seg *s)
{
    return s->len + ((s->flags & TCPSM_SYN) ? 1 : 0) + ((s->flags & TCPSM_FIN) ? 1 : 0);
}

static void challenge_ack(struct tcpsm_sock *sk, uint64_t now)
{
    if (tcp_challenge_ok(sk, now))
        tcp_send_ack(sk, now);
}

static uint16_t our_mss(const struct tcpsm_sock *sk)
{
    uint32_t m = tcp_mtu_l4(sk) - 20;   /* MTU - 40 / - 60 (RFC 6691) */
    if (sk->user_mss && sk->user_mss < m)
        m = sk->user_mss;
    return (uint16_t)m;
}

/* Send MSS from the peer's option (RFC 9293 3.7.1: 536 if absent). */
static void set_mss(struct tcpsm_sock *sk, const struct tcp_opts *o)
{
    uint32_t m = o->mss_ok ? o->mss : TCP_MSS_DEF;
    uint32_t ours = our_mss(sk);
    if (m > ours)
        m = ours;
    /* what ICMP taught about this destination (RFC 1191 6.3) */
    uint32_t pm = pmtu_lookup(sk->st, &sk->raddr, sk->st->now);
    if (pm) {
        uint32_t hdr = addr_is_v4(&sk->raddr) ? 40u : 60u;
        sk->pmtu = pm;
        if (pm > hdr && m > pm - hdr)
            m = pm - hdr;
    }
    if (m < 64)
        m = 64;
    sk->mss = (uint16_t)m;
}

/* The segments a received one stands for: a GRO frame counts those it
 * merged (Linux segs_in: gso_segs), here by our MSS, which each of them
 * respected. */
static uint32_t tcp_seg_count(const struct tcpsm_sock *sk, const struct tcp_seg *seg)
{
    return tcp_segs_min1(seg->len, sk->rcv_mss);
}

static void established(struct tcpsm_sock *sk, uint64_t now)
{
    sk->syn_acked = true;
    /* our SYN (or SYN+ACK) was delivered: Linux counts it in tp->delivered
     * (tcp_ack for a SYN, tcp_rcv_state_process for a SYN+ACK) */
    sk->delivered_segs = 1;
    /* RFC 6298 5.7: a SYN (or SYN+ACK) timed out and no RTT was measured:
     * start the data phase with an RTO of 3 s */
    if (sk->retries && !sk->srtt_us && !sk->rttvar_us && sk->rto_us < 3000000u)
        sk->rto_us = 3000000u;
    tcp_cong_init(sk);
    tcp_plpmtud_start(sk, now);         /* tcp_mtu_probing = 2: from the base MSS up */
    /* Linux tcp_init_buffer_space: rcvq_space.space = min(rcv_ssthresh,
     * rcv_wnd, TCP_INIT_CWND x advmss) */
    {
        uint32_t sp = 10u * tcp_adv_mss(sk);
        uint32_t rs = tcp_rcv_space(sk);
        if (rs < sp)
            sp = rs;
        if (sk->rcv_wnd_last && sk->rcv_wnd_last < sp)
            sp = sk->rcv_wnd_last;
        sk->rcvq_space = sp;
    }
    /* Linux quick-ACK mode at the start (tcp_incr_quickack): the first
     * data is ACKed at once so the sender's slow start is not paced by
     * the 40 ms delayed-ACK timer */
    sk->quickacks = TCP_QUICKACKS;
    sk->done = true;
    sk->retries = sk->backoff = 0;
    sk->first_rtx = 0;
    sk->last_rcv = now;
    if (sk->keepalive) {                /* the state becomes ESTABLISHED right after */
        sk->ka_at = now + (uint64_t)sk->keepidle * SEC_NS;
        sk->ka_probes = 0;
        tcp_timer_update(sk);
    }
}

/* ---------------------------------------------------------------- LISTEN (3.10.7.2) */

/* The options a passive open agreed to, from the SYN or from a cookie. */
struct syn_params {
    uint32_t irs, iss;
    uint16_t wnd;                       /* the peer's window field */
    struct tcp_opts opt;
};

/* A new child of listener l for the connection seg belongs to, in
 * SYN-RECEIVED, on the SYN queue. NULL at the table's limit. */
static struct tcpsm_sock *child_new(struct tcpsm_sock *l, const struct tcp_seg *seg,
                                    const struct syn_params *p, uint64_t now)
{
    struct tcpsm_stack *st = l->st;
    struct tcpsm_sock *c = tcp_sock_alloc(st);
    if (!c)
        return NULL;
    tcp_init_from_listener(c, l);
    c->laddr = seg->dst;
    c->lport = seg->dport;
    c->raddr = seg->src;
    c->rport = seg->sport;
    c->parent = l;
    c->passive = true;
    c->irs = p->irs;
    c->rcv_nxt = p->irs + 1;
    c->rcv_mss = our_mss(c);
    set_mss(c, &p->opt);
    c->ws_ok = p->opt.ws_ok;
    c->snd_wscale = c->ws_ok ? p->opt.ws : 0;
    c->rcv_wscale = c->ws_ok ? tcp_rcv_wscale(c) : 0;
    c->ts_ok = p->opt.ts_ok;
    if (c->ts_ok) {
        c->ts_recent = p->opt.tsval;
        c->ts_recent_age = now;
        c->ts_off = (uint32_t)tcp_isn(c, 0) * 2654435761u;
    }
    c->sack_ok = p->opt.sack_ok;
    c->snd_wnd = p->wnd;                /* never scaled in a SYN (RFC 7323 2.2) */
    c->max_snd_wnd = c->snd_wnd;
    c->snd_wl1 = p->irs;
    c->iss = p->iss;
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->snd_wl2 = c->iss;
    c->snd_buf_seq = c->iss + 1;
    c->recover = c->iss;
    c->rtt_active = !c->ts_ok;
    c->rtt_seq = c->iss;
    c->rtt_start = now;
    tcp_ehash_add(c);
    tcp_bind_add(c);
    tcp_synq_add(l, c);
    st->cnt.tcp_passive_opens++;
    c->state = TCPSM_LISTEN;
    return c;
}

/* The largest MSS of Linux's cookie table the peer's MSS allows. */
static const uint16_t cookie_msstab[] = { 536, 1300, 1440, 1460 };

static unsigned cookie_mss_index(const struct tcp_opts *o)
{
    uint32_t m = o->mss_ok ? o->mss : TCP_MSS_DEF;
    unsigned i = sizeof(cookie_msstab) / sizeof(cookie_msstab[0]) - 1;
    while (i && m < cookie_msstab[i])
        i--;
    return i;
}

/* The SYN queue is full: answer with a SYN cookie and keep no state (RFC
 * 4987 3.6). The MSS index is in the ISN; window scale and SACK-permitted,
 * which the ACK would otherwise forget, ride in the low 6 bits of our
 * TSval (Linux cookie_init_timestamp: wscale or 0xf, SACK bit 4, ECN
 * bit 5 never set here), so they survive only with timestamps. */
static void send_cookie(struct tcpsm_sock *l, const struct tcp_seg *seg, uint64_t now)
{
    struct tcpsm_stack *st = l->st;
    struct tcp_stack *ts = st->tcp;
    unsigned mi = cookie_mss_index(&seg->opt);
    struct tcpsm_sock tmp;              /* a TCB for the builder only, never linked */
    memset(&tmp, 0, sizeof(tmp));
    tmp.st = st;
    tcp_init_from_listener(&tmp, l);
    tmp.laddr = seg->dst;
    tmp.lport = seg->dport;
    tmp.raddr = seg->src;
    tmp.rport = seg->sport;
    tmp.state = TCPSM_SYN_RECEIVED;
    tmp.rcv_nxt = seg->seq + 1;
    tmp.rcv_mss = our_mss(&tmp);
    if (tmp.rcv_mss > cookie_msstab[mi])
        tmp.rcv_mss = cookie_msstab[mi];
    tmp.ws_ok = seg->opt.ws_ok;
    tmp.rcv_wscale = tmp.ws_ok ? tcp_rcv_wscale(&tmp) : 0;
    tmp.sack_ok = seg->opt.sack_ok;
    tmp.ts_ok = seg->opt.ts_ok;
    if (tmp.ts_ok) {
        tmp.ts_recent = seg->opt.tsval;
        tmp.ts_off = (uint32_t)tcp_isn(&tmp, 0) * 2654435761u;
        uint32_t tnow = tcp_ts_now(&tmp, now);
        uint32_t o = (tmp.ws_ok ? (seg->opt.ws & 0xf) : 0xf) | (tmp.sack_ok ? 0x10 : 0);
        uint32_t tsv = (tnow & ~((1u << TCP_COOKIE_TSBITS) - 1)) | o;
        if (seq_gt(tsv, tnow))
            tsv -= 1u << TCP_COOKIE_TSBITS;
        tmp.ts_off += tsv - tnow;       /* the builder stamps tcp_ts_now(): make it tsv */
    }
    tmp.iss = tcp_cookie_make(ts, &seg->dst, seg->dport, &seg->src, seg->sport, seg->seq, mi, now);
    tcp_send_synack_stateless(&tmp, now);
    l->synq_overflow_at = now ? now : 1;
    l->syn.cookies_sent++;
    ts->syn.cookies_sent++;
    st->cnt.tcp_syncookies_sent++;
}

/* An ACK for no connection, to a listener that sent cookies lately (two
 * cookie periods, Linux tcp_synq_no_recent_overflow): if it carries a
 * valid cookie, the connection is made now (RFC 4987 3.6). Returns true if
 * the segment was taken. */
static void rcv_segment(struct tcpsm_sock *sk, struct tcp_seg *seg, uint64_t now);

static bool cookie_ack(struct tcpsm_sock *l, struct tcp_seg *seg, uint64_t now)
{
    struct tcpsm_stack *st = l->st;
    struct tcp_stack *ts = st->tcp;
    if ((seg->flags & (TCPSM_SYN | TCPSM_RST | TCPSM_ACK)) != TCPSM_ACK || !l->synq_overflow_at ||
        now - l->synq_overflow_at > 2 * TCP_COOKIE_PERIOD_NS)
        return false;
    int mi = tcp_cookie_check(ts, &seg->dst, seg->dport, &seg->src, seg->sport, seg->seq - 1,
                              seg->ack - 1, now);
    if (mi < 0 || mi >= (int)(sizeof(cookie_msstab) / sizeof(cookie_msstab[0]))) {
        l->syn.cookies_bad++;
        ts->syn.cookies_bad++;
        st->cnt.tcp_syncookies_failed++;
        return false;
    }
    if (tcp_acceptq_full(l)) {
        st->cnt.tcp_drop_acceptq_full++;
        return true;                    /* the peer retransmits its ACK (Linux drops too) */
    }
    struct syn_params p = { .irs = seg->seq - 1, .iss = seg->ack - 1, .wnd = 0 };
    p.opt.mss_ok = true;
    p.opt.mss = cookie_msstab[mi];
    if (seg->opt.ts_ok) {
        /* cookie_timestamp_decode: our echoed TSval carries the options */
        uint32_t o = seg->opt.tsecr & ((1u << TCP_COOKIE_TSBITS) - 1);
        p.opt.ts_ok = true;
        p.opt.tsval = seg->opt.tsval;
        p.opt.sack_ok = (o & 0x10) != 0;
        if ((o & 0xf) != 0xf) {
            p.opt.ws_ok = true;
            p.opt.ws = (uint8_t)((o & 0xf) > 14 ? 14 : (o & 0xf));
        }
    }
    struct tcpsm_sock *c = child_new(l, seg, &p, now);
    if (!c)
        return true;
    c->state = TCPSM_SYN_RECEIVED;      /* our SYN+ACK was the cookie */
    c->snd_nxt = c->snd_max = c->iss + 1;
    uint32_t w = tcp_rcv_space(c);
    c->rcv_adv = c->rcv_nxt + (w > 65535 ? 65535 : w);
    c->rcv_wnd_max = w > 65535 ? 65535 : w;
    c->rtt_active = false;
    l->syn.cookies_ok++;
    ts->syn.cookies_ok++;
    st->cnt.tcp_syncookies_recv++;
    rcv_segment(c, seg, now);
    if (c->state == TCPSM_SYN_RECEIVED) {
        /* refused by the checks (not an ACK of our cookie after all) */
        tcp_unlink_child(c);
        tcp_sock_free(c);
    }
    return true;
}

/* tw_iss: nonzero when the SYN ended a TIME-WAIT incarnation: the new ISN
 * lies beyond everything the old one sent (Linux tcp_tw_isn). */
static void listen_input(struct tcpsm_sock *l, struct tcp_seg *seg, uint64_t now,
                         uint32_t tw_iss)
{
    struct tcpsm_stack *st = l->st;
    struct tcp_stack *ts = st->tcp;
    if (seg->flags & TCPSM_RST)
        return;
    if (seg->flags & TCPSM_ACK) {
        if (!cookie_ack(l, seg, now))
            tcp_reply_rst(st, seg);
        return;
    }
    if (!(seg->flags & TCPSM_SYN))
        return;
    tcp_syn_count(&l->syn, now);
    tcp_syn_count(&ts->syn, now);
    st->cnt.tcp_listen_syns++;
    /* Linux behaviour at the limits: with the accept queue full, drop the
     * SYN (the peer retransmits); with the SYN queue (or the table) full,
     * answer with a cookie. */
    if (tcp_acceptq_full(l)) {
        st->cnt.tcp_drop_acceptq_full++;
        l->syn.dropped++;
        ts->syn.dropped++;
        return;
    }
    if (l->nsyn >= l->backlog) {
        st->cnt.tcp_drop_synq_full++;
        send_cookie(l, seg, now);
        return;
    }
    struct syn_params p = { .irs = seg->seq, .wnd = seg->wnd, .opt = seg->opt };
    p.iss = 0;
    struct tcpsm_sock *c = child_new(l, seg, &p, now);
    if (!c) {
        send_cookie(l, seg, now);       /* no TCB to spare: stateless */
        return;
    }
    c->iss = tw_iss ? tw_iss : tcp_isn(c, now);
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->snd_wl2 = c->iss;
    c->snd_buf_seq = c->iss + 1;
    c->recover = c->iss;
    c->rtt_seq = c->iss;
    tcp_send_syn(c, now);               /* <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> */
    tcp_set_state(c, TCPSM_SYN_RECEIVED, "rcv SYN", seg, false);
}

/* ---------------------------------------------------------------- SYN-SENT (3.10.7.3) */

static bool queue_data(struct tcpsm_sock *sk, struct tcp_seg *seg, bool fin, uint64_t now);

static void syn_sent_input(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint64_t now)
{
    bool ack_ok = false;
    if (seg->flags & TCPSM_ACK) {
        if (seq_le(seg->ack, sk->iss) || seq_gt(seg->ack, sk->snd_max)) {
            /* old duplicate SYN+ACK (RFC 9293 3.5 fig. 9): <SEQ=SEG.ACK><CTL=RST> */
            tcp_reply_rst(sk->st, seg);
            return;
        }
        ack_ok = true;
    }
    if (seg->flags & TCPSM_RST) {
        if (ack_ok) {                   /* RFC 5961 3.2: only if it ACKs our SYN */
            sk->st->cnt.tcp_rst_in++;
            tcp_done(sk, ECONNREFUSED, "rcv RST", seg);
        }
        return;
    }
    if (!(seg->flags & TCPSM_SYN))
        return;
    sk->irs = seg->seq;
    sk->rcv_nxt = seg->seq + 1;
    /* Our SYN set rcv_adv from rcv_nxt = 0 (the IRS was unknown): restart
     * it here, or the never-shrink rule keeps offering a window of garbage.
     * What the SYN offered (unscaled, rcv_wnd_max) is the window until our
     * first ACK, which may be held (tcp_syn_ack_hold): TCP_INFO's
     * tcpi_rcv_wnd and the acceptability test see it meanwhile. */
    sk->rcv_adv = sk->rcv_nxt + sk->rcv_wnd_max;
    set_mss(sk, &seg->opt);
    sk->ws_ok = sk->ws_ok && seg->opt.ws_ok;
    sk->snd_wscale = sk->ws_ok ? seg->opt.ws : 0;
    if (!sk->ws_ok)
        sk->rcv_wscale = 0;
    sk->ts_ok = sk->ts_ok && seg->opt.ts_ok;
    if (sk->ts_ok) {
        sk->ts_recent = seg->opt.tsval;
        sk->ts_recent_age = now;
    }
    sk->sack_ok = sk->sack_ok && seg->opt.sack_ok;
    sk->snd_wnd = seg->wnd;
    sk->max_snd_wnd = sk->snd_wnd;
    sk->snd_wl1 = seg->seq;
    sk->snd_wl2 = seg->ack;
    if (ack_ok) {
        sk->bytes_acked += seg->ack - sk->snd_una;  /* our SYN (Linux tcp_snd_una_update) */
        sk->snd_una = seg->ack;
        /* the SYN's own send time first: microseconds, where the
         * timestamps' millisecond made a 0 of a sub-millisecond RTT (and
         * the minimum RTT that RACK and BBR scale by with it) */
        if (sk->rtt_active)
            tcp_rtt_sample(sk, (uint32_t)((now - sk->rtt_start) / 1000u));
        else if (sk->ts_ok && seg->opt.tsecr)
            tcp_rtt_sample(sk, (tcp_ts_now(sk, now) - seg->opt.tsecr) * 1000u);
        sk->rtt_active = false;
        tcp_rto_stop(sk);
        established(sk, now);
        /* "If there are other controls or text in the segment, then continue
         * processing at the sixth step": data and FIN in the SYN+ACK. */
        bool fin = false;
        if (seg->len || (seg->flags & TCPSM_FIN)) {
            struct tcp_seg rest = *seg;
            rest.seq = seg->seq + 1;
            fin = queue_data(sk, &rest, (seg->flags & TCPSM_FIN) != 0, now);
            if (fin) {
                struct tcpsm_sock *outer = tcp_stream_begin(sk);
                sk->rcv_nxt++;
                sk->rcv_fin = true;
                sk->shutdown |= RCV_SHUTDOWN;
                tcp_stream_end(sk, outer);
            }
        }
        /* <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, unless the request the
         * application is about to write can carry it (tcp_syn_ack_hold) */
        if (seg->len || fin || !tcp_syn_ack_hold(sk, now))
            tcp_send_ack(sk, now);
        tcp_set_state(sk, TCPSM_ESTABLISHED, "rcv SYN+ACK", seg, false);
        if (fin)
            tcp_set_state(sk, TCPSM_CLOSE_WAIT, "rcv FIN", seg, false);
        sk->async_ev |= TCPSM_ASYNC_OUT;        /* connected (tcp_rcv_synsent_state_process) */
        tcp_wake(sk);
        tcp_output(sk, now);
        return;
    }
    /* simultaneous open (RFC 9293 3.5 fig. 7) */
    sk->state = TCPSM_SYN_RECEIVED;
    tcp_send_syn(sk, now);              /* <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> */
    sk->state = TCPSM_SYN_SENT;
    tcp_set_state(sk, TCPSM_SYN_RECEIVED, "rcv SYN (simultaneous open)", seg, false);
}

/* ---------------------------------------------------------------- other states (3.10.7.4) */

static bool acceptable(const struct tcpsm_sock *sk, uint32_t seq, uint32_t slen)
{
    uint32_t wnd = seq_gt(sk->rcv_adv, sk->rcv_nxt) ? sk->rcv_adv - sk->rcv_nxt : 0;
    uint32_t nxt = sk->rcv_nxt;
    if (slen == 0) {
        if (wnd == 0)
            return seq == nxt;
        return seq_in(seq, nxt, nxt + wnd);
    }
    if (wnd == 0)
        return false;
    return seq_in(seq, nxt, nxt + wnd) || seq_in(seq + slen - 1, nxt, nxt + wnd);
}

/* RFC 2883 (D-SACK): data [l, r) arrived again; the next ACK reports it as
 * its first SACK block (Linux tcp_dsack_set; SACK connections only). */
static void dsack_set(struct tcpsm_sock *sk, uint32_t l, uint32_t r)
{
    if (!sk->sack_ok || !seq_lt(l, r))
        return;
    sk->dsack_l = l;
    sk->dsack_r = r;
    sk->dsack = true;
}

/* Leave for good without an error: LAST-ACK done, passive child reset. */
static void close_quiet(struct tcpsm_sock *sk, const char *why, const struct tcp_seg *seg)
{
    tcp_done(sk, 0, why, seg);
}

/* A GRO segment's payload bytes [off, off + n) (its own, then its slices)
 * to the end of the receive ring; returns how many were written. A slice
 * whose TCP checksum is still to verify is summed as it is copied (the
 * rest of it, past n, summed alone): if the sum is bad the copy stops
 * before it, and the input batch takes it and the frames after it one by
 * one (st->gro_n cut to the slices taken): it is counted and dropped there,
 * the frames after it are out of order. */
static uint32_t write_slices(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint32_t off,
                             uint32_t n)
{
    uint32_t own = seg->len;
    for (unsigned i = 0; i < seg->nmore; i++)
        own -= seg->more[i].len;
    uint32_t at = sk->rcvq.len, done = 0;
    for (int i = -1; i < (int)seg->nmore && n; i++) {
        const uint8_t *p = i < 0 ? seg->data : seg->more[i].data;
        uint32_t l = i < 0 ? own : seg->more[i].len;
        if (off >= l) {
            off -= l;
            continue;
        }
        uint32_t k = l - off < n ? l - off : n;
        if (i >= 0 && seg->more[i].check) {
            uint32_t s = seg->more[i].hsum;
            if (off)
                s = csum_partial(p, off, s);
            s = ring_write_csum_at(&sk->rcvq, at, p + off, k, s, off);
            if (off + k < l)
                s = csum_partial_at(p + off + k, l - off - k, s, off + k);
            if (csum_fold(s) != 0) {
                if (sk->st->gro_n > (unsigned)i)
                    sk->st->gro_n = (unsigned)i;
                break;
            }
        } else {
            ring_write_at(&sk->rcvq, at, p + off, k);
        }
        at += k;
        done += k;
        n -= k;
        off = 0;
    }
    return done;
}

/* The receive text step (3.10.7.4 seventh): data at RCV.NXT goes to the
 * ring; later data is stored in place and remembered as a range. Returns
 * true if a FIN is now in order. */
static bool queue_data(struct tcpsm_sock *sk, struct tcp_seg *seg, bool fin, uint64_t now)
{
    struct tcpsm_stack *st = sk->st;
    uint32_t seq = seg->seq;
    const uint8_t *data = seg->data;
    uint32_t len = seg->len;
    if (seq_lt(seq, sk->rcv_nxt)) {
        uint32_t skip = sk->rcv_nxt - seq;
        if (skip > len) {
            skip = len;
        }
        if (skip) {
            /* the part below RCV.NXT came before: a D-SACK, at once */
            dsack_set(sk, seq, seq + skip);
            sk->ack_now = true;
        }
        data += skip;
        len -= skip;
        seq += skip;
    }
    /* right edge: the offered window, and never beyond the buffer */
    uint32_t space = tcp_rcv_space(sk);
    uint32_t edge = sk->rcv_nxt + space;
    if (seq_gt(edge, sk->rcv_adv) && seq_gt(sk->rcv_adv, sk->rcv_nxt))
        edge = sk->rcv_adv;
    if (seq_gt(seq + len, edge)) {
        uint32_t cut = seq + len - edge;
        if (cut > len)
            cut = len;
        len -= cut;
        fin = false;
        st->cnt.tcp_drop_rcvbuf++;
        sk->ack_now = true;
    }
    if (seq == sk->rcv_nxt) {
        if (len) {
            /* the ring holds in-order bytes only, and grows with them */
            if (tcp_ring_reserve(sk, &sk->rcvq, sk->rcvq.len + len, sk->rcvbuf, false) < 0) {
                st->cnt.tcp_drop_rcvbuf++;
                return false;
            }
            if (seg->nmore)
                len = write_slices(sk, seg, (uint32_t)(data - seg->data), len);
            else
                ring_write_at(&sk->rcvq, sk->rcvq.len, data, len);
            /* bytes written beyond the ring's length count for nothing
             * yet; from here the ring and RCV.NXT move together */
            struct tcpsm_sock *outer = tcp_stream_begin(sk);
            sk->rcvq.len += len;
            sk->rcv_nxt += len;
            sk->bytes_received += len;
            if (sk->ooo.n) {
                sk->rcv_nxt = tcp_ofo_pull(sk);
                sk->ack_now = true;     /* filled (part of) a hole: RFC 5681 4.2 */
            }
            tcp_stream_end(sk, outer);
            /* ACK every second full-sized segment (at the end of the
             * input batch), else within 40 ms (RFC 1122 4.2.3.2). A GRO
             * frame counts for the segments it carries: like Linux
             * (__tcp_ack_snd_check, more than one rcv_mss received) it
             * is ACKed at once, one ACK per frame at most. In quick-ACK
             * mode every segment is. */
            uint32_t segs = len / (sk->rcv_mss ? sk->rcv_mss : 1);
            sk->delack_segs += segs ? segs : 1;
            sk->ack_short = segs == 0;
            sk->last_data_rcv = now;
            /* Linux tcp_in_quickack_mode: quick ACKs unless interactive */
            if (sk->quickacks && !sk->pingpong) {
                sk->quickacks = sk->quickacks > segs ? (uint8_t)(sk->quickacks - (segs ? segs : 1)) : 0;
                tcp_batch_defer(sk, TCP_BATCH_ACK);
            } else if (sk->delack_segs >= 2) {
                tcp_batch_defer(sk, TCP_BATCH_ACK);
            } else {
                tcp_delack_schedule(sk, now);
            }
        }
        if (!fin && sk->ooo_fin && sk->rcv_nxt == sk->ooo_fin_seq) {
            fin = true;
            sk->ooo_fin = false;
        }
        return fin;
    }
    /* out of order */
    if (seg->nmore) {
        /* never: GRO merges only segments at RCV.NXT (tcp_gro.c) */
        st->cnt.tcp_drop_rcvbuf++;
        return false;
    }
    st->cnt.tcp_ooo_in++;
    sk->rcv_ooopack++;
    sk->ack_now = true;                 /* dup ACK at once (RFC 5681 4.2) */
    sk->dupack_now = true;
    if (TS(sk)->mem_pressure) {
        /* memory pressure: keep nothing out of order (Linux
         * tcp_prune_ofo_queue); the sender retransmits after the hole */
        if (sk->ofo_n)
            st->cnt.tcp_ofo_pruned += sk->ofo_n;
        tcp_ofo_purge(sk);
        st->cnt.tcp_drop_mem++;
        return false;
    }
    if (len) {
        for (unsigned i = 0; i < sk->ooo.n; i++)
            if (seq_le(sk->ooo.start[i], seq) && seq_le(seq + len, sk->ooo.end[i])) {
                /* held already: a D-SACK, its block second (RFC 2883 4) */
                dsack_set(sk, seq, seq + len);
                break;
            }
        struct tcp_ooo saved = sk->ooo;
        if (ooo_add(&sk->ooo, seq, seq + len) < 0 ||
            tcp_ofo_insert(sk, seq, data, len) < 0) {
            sk->ooo = saved;
            st->cnt.tcp_drop_rcvbuf++;
            return false;
        }
    }
    if (fin) {
        sk->ooo_fin = true;
        sk->ooo_fin_seq = seq + len;
    }
    return false;
}

/* A D-SACK's segments (Linux tcp_dsack_seen): a duplicate the peer got
 * was delivered too (tp->delivered); one wider than any window we were
 * offered, or more duplicates than we ever retransmitted, is dubious and
 * not counted. */
static void dsack_count(struct tcpsm_sock *sk, uint32_t l, uint32_t r)
{
    if (!seq_lt(l, r) || r - l > sk->max_snd_wnd)
        return;
    uint32_t n = tcp_segs_min1(r - l, tcp_send_mss(sk));
    sk->dsack_dups += n;
    if (sk->dsack_dups > sk->total_retrans)
        return;
    sk->delivered_segs += n;
}

/* RACK connections: the segment's SACK blocks on the retransmit queue
 * (RFC 2018, RFC 2883 D-SACK). Returns the bytes newly SACKed. */
static uint32_t rack_sack(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint64_t now)
{
    const struct tcp_opts *o = &seg->opt;
    /* RFC 2883 4: a first block below the ACK, or inside the second, is a
     * D-SACK: a segment arrived twice (a spurious retransmission) */
    bool dsack = o->nsack &&
                 (seq_le(o->sack_r[0], seg->ack) ||
                  (o->nsack > 1 && seq_ge(o->sack_l[0], o->sack_l[1]) &&
                   seq_le(o->sack_r[0], o->sack_r[1])));
    if (dsack) {
        dsack_count(sk, o->sack_l[0], o->sack_r[0]);
        tcp_rack_dsack(sk);
        tcp_cong_dsack(sk, o->sack_l[0], o->sack_r[0]);
    }
    else if (sk->rack.dsack_round_on && seq_ge(sk->snd_una, sk->rack.dsack_round))
        sk->rack.dsack_round_on = false;
    uint32_t got = 0;
    for (unsigned i = dsack ? 1 : 0; i < o->nsack; i++) {
        uint32_t l = o->sack_l[i], r = o->sack_r[i];
        /* blocks outside what is in flight are ignored */
        if (!seq_lt(l, r) || !seq_gt(r, sk->snd_una) || seq_gt(r, sk->snd_max))
            continue;
        got += tcp_rtxq_sack(sk, l, r, now);
    }
    return got;
}

/* What one ACK did (Linux tcp_ack's FLAG_*), for the steps that react. */
#define TCP_ACK_ADVANCED 1              /* SND.UNA moved: new data acknowledged */
#define TCP_ACK_DUP      2              /* a duplicate ACK (RFC 5681 2) */

/* Linux tcp_limit_reno_sacked / tcp_check_reno_reordering: the duplicate
 * ACKs counted as delivered segments ("Reno SACKs") never exceed those in
 * flight (out) less the hole; more of them than that means the network
 * reordered (or duplicated) segments: counted in reord_seen, and the
 * reordering is raised to out + addend. Linux assigns it, lowering it
 * too, which is harmless there because its DupThresh test counts the
 * clamped sacked_out; ours counts every duplicate (sk->dupacks), so a
 * lower threshold would make a duplicated ACK with one segment out a
 * fast retransmit: only raised here. */
static void reno_check_reordering(struct tcpsm_sock *sk, uint32_t out, uint32_t addend)
{
    /* the holes: Linux max(lost_out, 1); after an RTO everything below
     * recover (high_seq) not yet ACKed is marked lost (tcp_enter_loss) */
    uint32_t holes = 1;
    if (sk->loss_state && seq_lt(sk->snd_una, sk->recover))
        holes = tcp_segs(sk->recover - sk->snd_una, tcp_send_mss(sk));
    if (holes > out)
        holes = out;
    if (sk->reno_sacked + holes <= out)
        return;
    sk->reno_sacked = out - holes;
    tcp_reordering_seen(sk, out + addend);
    sk->reord_seen++;
}

/* One duplicate ACK without SACK (Linux tcp_add_reno_sack): a delivered
 * segment, at most all those in flight (as MSS-sized segments: no
 * per-segment records here) less the holes. */
static void reno_add_sack(struct tcpsm_sock *sk)
{
    uint32_t out = tcp_segs(sk->snd_max - sk->snd_una, tcp_send_mss(sk));
    uint32_t prior = sk->reno_sacked;
    sk->reno_sacked++;
    reno_check_reordering(sk, out, 0);
    if (sk->reno_sacked > prior)
        sk->delivered_segs += sk->reno_sacked - prior;
}

/* Without SACK, Linux counts each duplicate ACK as a delivered segment
 * (tcp_add_reno_sack: at most all but one of those in flight) and an ACK
 * that moves SND.UNA as what it covers less those (tcp_remove_reno_sacks:
 * "one ACK acked hole, the rest eat duplicate ACKs"), at least one. After
 * an RTO (loss_state) duplicate ACKs count only for new data sent since
 * (reno_loss_delivered, after the undo checks, as Linux in TCP_CA_Loss). */
static void reno_delivered(struct tcpsm_sock *sk, uint8_t flags, uint32_t acked)
{
    uint32_t mss = tcp_send_mss(sk);
    if (!mss)
        return;
    if (flags & TCP_ACK_ADVANCED) {
        uint32_t data = acked, from = sk->snd_una - acked;
        bool fin = sk->fin_sent && seq_lt(sk->fin_seq, sk->snd_una) && seq_ge(sk->fin_seq, from);
        if (seq_ge(sk->iss, from) && seq_lt(sk->iss, sk->snd_una))
            data--;                     /* our SYN: counted when the handshake ended */
        if (fin)
            data--;                     /* the FIN rides on the last segment */
        if (!data && !fin)
            return;
        uint32_t k = tcp_segs_min1(data, mss);
        sk->delivered_segs += k > sk->reno_sacked + 1 ? k - sk->reno_sacked : 1;
        sk->reno_sacked = k - 1 >= sk->reno_sacked ? 0 : sk->reno_sacked - (k - 1);
        if (sk->snd_una == sk->snd_max)
            sk->reno_sacked = 0;
        reno_check_reordering(sk, tcp_segs(sk->snd_max - sk->snd_una, mss), k);
    } else if ((flags & TCP_ACK_DUP) && !sk->loss_state) {
        reno_add_sack(sk);
    }
}

/* After an RTO, once the ACK's undo checks and F-RTO have run (Linux
 * tcp_process_loss's Reno tail, the episode still on): a duplicate ACK
 * after new data went out beyond recover (Linux after(snd_nxt, high_seq):
 * F-RTO's step 2.b) means that new data arrived, a delivered segment as
 * outside the loss state (tcp_add_reno_sack); an ACK that moves SND.UNA
 * forgets the count (tcp_reset_reno_sack). */
static void reno_loss_delivered(struct tcpsm_sock *sk, uint8_t flags)
{
    if (!tcp_send_mss(sk))
        return;
    if ((flags & TCP_ACK_DUP) && seq_gt(sk->snd_max, sk->recover))
        reno_add_sack(sk);
    else if (flags & TCP_ACK_ADVANCED)
        sk->reno_sacked = 0;
}
struct tcp_ack_res {
    uint8_t flags;
    uint32_t acked;                     /* SND.UNA's advance */
    uint32_t delivered;                 /* that plus the bytes newly SACKed (RACK connections) */
    uint32_t sacked;                    /* the bytes newly SACKed */
};

/* Fifth step, the ACK field for ESTABLISHED and the closing states: the
 * SACK blocks, SND.UNA and the send queue, the RTT, the send window
 * (3.10.7.4 fifth, SND.WL1/SND.WL2). Says what happened; ack_react acts. */
static struct tcp_ack_res ack_step(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint64_t now)
{
    struct tcp_ack_res res = { 0, 0, 0, 0 };
    uint32_t ack = seg->ack;
    uint32_t nwnd = (uint32_t)seg->wnd << sk->snd_wscale;
    bool rack = tcp_rack_on(sk) && sk->syn_acked;
    bool new_sack = seg->opt.nsack && tcp_sack_update(sk, &seg->opt);
    if (rack) {
        tcp_rate_ack_begin(sk);
        res.delivered = res.sacked = rack_sack(sk, seg, now);
    }
    if (seq_lt(sk->snd_una, ack) && seq_le(ack, sk->snd_max)) {
        res.flags |= TCP_ACK_ADVANCED;
        res.acked = ack - sk->snd_una;
        uint32_t end = sk->snd_buf_seq + sk->sndq.len;
        uint32_t upto = seq_lt(ack, end) ? ack : end;
        if (seq_gt(upto, sk->snd_buf_seq)) {
            uint32_t n = upto - sk->snd_buf_seq;
            struct tcpsm_sock *outer = tcp_stream_begin(sk);   /* the ring and its start */
            ring_drop(&sk->sndq, n);
            if (!sk->sndq.len)
                tcp_ring_release(sk, &sk->sndq);    /* all acknowledged */
            sk->snd_buf_seq += n;
            tcp_stream_end(sk, outer);
        }
        /* RFC 4898 tcpEStatsAppHCThruOctetsAcked as Linux counts it
         * (tcp_snd_una_update): the sequence space acknowledged, a FIN
         * too; a passive connection's SYN+ACK not (Linux's child starts
         * with SND.UNA past it) */
        sk->bytes_acked += res.acked - (sk->passive && sk->snd_una == sk->iss ? 1u : 0u);
        if (rack)
            res.delivered += res.acked - tcp_rtxq_ack(sk, ack, now);
        sk->snd_una = ack;
        sk->syn_acked = true;
        if (seq_lt(sk->snd_nxt, sk->snd_una))
            sk->snd_nxt = sk->snd_una;
        tcp_sack_prune(sk);
        /* RTT: the newest segment this ACK delivered, never resent (the
         * retransmit queue's send times, in microseconds, as Linux's
         * skb timestamps), else RFC 7323 4 (timestamps, in milliseconds:
         * a sub-millisecond RTT reads 0) or one timed segment (RFC 6298 3,
         * Karn) */
        bool sampled = false;
        if (rack && sk->rs.rtt_us >= 0) {
            tcp_rtt_sample(sk, sk->rs.rtt_us > UINT32_MAX ? UINT32_MAX : (uint32_t)sk->rs.rtt_us);
            sk->rtt_active = false;
            sampled = true;
        } else if (sk->ts_ok && seg->opt.ts_ok && seg->opt.tsecr) {
            /* an echo older than our last retransmission may time the
             * original send of a segment the peer had (the ACK was lost):
             * Karn's rule applied to timestamps */
            uint32_t ms = tcp_ts_now(sk, now) - seg->opt.tsecr;
            if (ms < 600000u && (!sk->total_retrans || seq_ge(seg->opt.tsecr, sk->rtx_tsval))) {
                tcp_rtt_sample(sk, ms * 1000u);
                sampled = true;
            }
        } else if (sk->rtt_active && seq_gt(ack, sk->rtt_seq)) {
            tcp_rtt_sample(sk, (uint32_t)((now - sk->rtt_start) / 1000u));
            sk->rtt_active = false;
            sampled = true;
        }
        /* RFC 6298 5.7 and Karn: the backed-off RTO stays until a valid
         * sample; an ACK of a retransmission proves nothing about the RTT */
        if (sampled)
            sk->backoff = 0;
        if (sk->rto_start) {
            sk->total_rto_ns += now - sk->rto_start;
            sk->rto_start = 0;
        }
        sk->last_ack_recv = now;
        sk->retries = 0;
        sk->first_rtx = 0;
        sk->soft_err = 0;
        sk->tlp_sent = false;
    } else if (ack == sk->snd_una && seg->len == 0 &&
               !(seg->flags & (TCPSM_SYN | TCPSM_FIN)) && (nwnd == sk->snd_wnd || new_sack) &&
               sk->snd_una != sk->snd_max && !sk->persist_at) {
        res.flags |= TCP_ACK_DUP;       /* RFC 5681 2, RFC 6675 2 */
    }
    /* send window update (3.10.7.4 fifth, SND.WL1/SND.WL2) */
    if (seq_le(sk->snd_una, ack) &&
        (seq_lt(sk->snd_wl1, seg->seq) || (sk->snd_wl1 == seg->seq && seq_le(sk->snd_wl2, ack)))) {
        sk->snd_wnd = nwnd;
        sk->snd_wl1 = seg->seq;
        sk->snd_wl2 = ack;
        if (nwnd > sk->max_snd_wnd)
            sk->max_snd_wnd = nwnd;
    }
    sk->probes = 0;
    return res;
}

/* What an ACK sets off: the undo check, the retransmission timer (RFC
 * 6298 5.2-5.3), loss detection and congestion control (RACK and PRR on
 * SACK connections, else NewReno's fast retransmit), and the wake-up of a
 * writer waiting for room. */
static void ack_react(struct tcpsm_sock *sk, const struct tcp_seg *seg, struct tcp_ack_res res,
                      uint64_t now)
{
    bool rack = tcp_rack_on(sk) && sk->syn_acked;
    bool rtx = false;
    if (!rack) {
        bool loss = sk->loss_state;
        reno_delivered(sk, res.flags, res.acked);
        /* after an RTO: undo, F-RTO (may move SND.NXT) */
        tcp_cong_reno_loss_ack(sk, (res.flags & TCP_ACK_ADVANCED) != 0,
                               (res.flags & TCP_ACK_DUP) != 0,
                               sk->ts_ok && seg->opt.ts_ok && seg->opt.tsecr, seg->opt.tsecr);
        if (loss && sk->loss_state)     /* neither undone nor recovered */
            reno_loss_delivered(sk, res.flags);
    }
    if (sk->rack.reord_ack) {
        sk->rack.reord_ack = false;
        sk->reord_seen++;               /* Linux tcp_check_sack_reordering */
    }
    if (res.flags & TCP_ACK_ADVANCED) {
        if (sk->ts_ok && seg->opt.ts_ok && seg->opt.tsecr)
            tcp_cong_undo_check(sk, seg->opt.tsecr);
        if (sk->plp_on)
            tcp_plpmtud_acked(sk);      /* a probe that got through raises the MSS */
        if (!rack)
            rtx = tcp_cong_ack(sk, res.acked, false, now);
        if (sk->snd_una == sk->snd_max) {
            tcp_rto_stop(sk);
            tcp_chrono_stop(sk, TCP_CHRONO_BUSY, now);  /* Linux tcp_clean_rtx_queue */
        } else {
            tcp_rto_arm(sk, now);       /* RFC 6298 5.3 */
        }
        tcp_batch_defer(sk, TCP_BATCH_WAKE);
        if (rack)
            sk->dupacks = 0;
    } else if (res.flags & TCP_ACK_DUP) {
        if (rack) {
            sk->dupacks++;
            tcp_rack_dupthresh(sk);
        } else if (sk->plp_probe && tcp_plpmtud_dup_lost(sk)) {
            /* the MTU probe at the head was lost: too big, not congestion
             * (RFC 4821 7.5); its bytes again at the current MSS */
            sk->dupacks = 0;
            tcp_retransmit_range(sk, sk->plp_repair_end, now);
        } else if (sk->plp_repair && tcp_plpmtud_excused(sk)) {
            /* more duplicates for the data after that probe: known */
        } else {
            rtx = tcp_cong_ack(sk, 0, true, now);
        }
    }
    if (rack) {
        /* F-RTO after an RTO (may undo it and clear the lost marks) */
        tcp_cong_loss_ack(sk, (res.flags & TCP_ACK_ADVANCED) != 0, res.sacked != 0,
                          (res.flags & TCP_ACK_DUP) != 0);
        /* RFC 8985 6.2 step 5: losses; then recovery, PRR or growth */
        uint32_t lost = sk->rtxq.lost;
        if (res.acked || res.delivered)
            tcp_rack_detect(sk, now);
        if (sk->rtxq.lost > lost)
            sk->rs.losses = sk->rtxq.lost - lost;
        tcp_rate_gen(sk, now);
        tcp_cong_dsack_undo(sk);
        tcp_cong_rack_ack(sk, res.acked, res.delivered);
    }
    if (rtx)
        tcp_retransmit_head(sk, now);   /* NewReno: fast retransmit, partial ACK */
}

static bool our_fin_acked(const struct tcpsm_sock *sk)
{
    return sk->fin_sent && seq_gt(sk->snd_una, sk->fin_seq);
}

/* TIME-WAIT and a new SYN (RFC 9293 3.10.7.4 note, RFC 6191): a SYN that
 * is newer (timestamp, or sequence number beyond RCV.NXT) ends the old
 * incarnation and goes to the listener, like Linux TCP_TW_SYN. Without a
 * listener it is handled as any segment (an ACK answers it). */
static bool timewait_syn(struct tcpsm_sock *sk, struct tcp_seg *seg, uint64_t now)
{
    bool newer;
    if (sk->ts_ok && seg->opt.ts_ok)
        newer = seq_gt(seg->opt.tsval, sk->ts_recent);
    else
        newer = seq_gt(seg->seq, sk->rcv_nxt);
    if (!newer)
        return false;
    struct tcpsm_sock *l = tcp_listener_find(TS(sk), &seg->dst, seg->dport);
    if (!l)
        return false;
    uint32_t iss = sk->snd_max + 65535 + 2;
    if (!iss)
        iss = 1;
    tcp_done(sk, 0, "rcv SYN in TIME-WAIT (reuse)", seg);
    listen_input(l, seg, now, iss);
    return true;
}

/* What the checks of RFC 9293 3.10.7.4 (first to fifth, up to the ACK
 * field's own tests) and RFC 7323 / RFC 5961 decide about a segment
 * (Linux tcp_validate_incoming). Those before TCP_V_IN_WINDOW refused it
 * before its sequence number was accepted; the others passed that check. */
enum tcp_verdict {
    TCP_V_PAWS,             /* RFC 7323 5.3: an old timestamp: a duplicate ACK, rate-limited */
    TCP_V_OOW,              /* not acceptable: an ACK (rate-limited if it is empty) */
    TCP_V_OOW_ACK,          /* refused by the window alone: its ACK field is processed as
                               a pure ACK at RCV.NXT first (3.10.7.4 "special allowance") */
    TCP_V_IN_WINDOW,        /* (the boundary: the sequence number was acceptable) */
    TCP_V_DROP,             /* no ACK bit: nothing more to do */
    TCP_V_CHALLENGE,        /* RFC 5961 3.2 / 4 / 5.2: a challenge ACK */
    TCP_V_RESET,            /* an exact RST: the connection is reset */
    TCP_V_SYN_RESET,        /* a SYN in a passive SYN-RECEIVED: back to LISTEN */
    TCP_V_ACCEPT,           /* go on: the ACK, the text, the FIN */
};

/* RFC 7323 5.3 allows a receiver to accept an old timestamp on a
 * segment that PAWS cannot be needed for. As Linux (tcp_disordered_ack):
 * a pure duplicate ACK at RCV.NXT that would not update the send window,
 * with a TSval at most one RTO older than TS.Recent, is an ACK the network
 * reordered. Dropping it would lose its SACK blocks, which are what loss
 * recovery through reordering runs on. TS.Recent is not moved back by it
 * (only a newer TSval updates it). */
static bool disordered_ack(const struct tcpsm_sock *sk, const struct tcp_seg *seg)
{
    uint32_t nwnd = (uint32_t)seg->wnd << sk->snd_wscale;
    if ((seg->flags & (TCPSM_ACK | TCPSM_SYN | TCPSM_FIN | TCPSM_RST)) != TCPSM_ACK ||
        seg->len || seg->seq != sk->rcv_nxt || seg->ack != sk->snd_una)
        return false;
    /* it would not update the window (Linux tcp_may_update_window) */
    if (seq_gt(seg->seq, sk->snd_wl1) ||
        (seg->seq == sk->snd_wl1 && (nwnd > sk->snd_wnd || !nwnd)))
        return false;
    /* within the replay window: one RTO, in TSval ticks (1 ms) */
    uint32_t replay = (uint32_t)((uint64_t)sk->rto_us * 1024u / 1000000u);
    return (int32_t)(sk->ts_recent - seg->opt.tsval) <= (int32_t)replay;
}

/* The checks alone: counters, no state changes, no segments sent. */
static enum tcp_verdict tcp_validate(const struct tcpsm_sock *sk, const struct tcp_seg *seg,
                                     uint64_t now)
{
    struct tcpsm_stack *st = sk->st;
    uint8_t fl = seg->flags;
    uint32_t slen = seg_space(seg);
    /* RFC 7323 5.3 PAWS */
    if (sk->ts_ok && seg->opt.ts_ok && !(fl & TCPSM_RST) &&
        seq_lt(seg->opt.tsval, sk->ts_recent) &&
        now - sk->ts_recent_age < 24ull * 86400 * SEC_NS) {
        if (!disordered_ack(sk, seg)) {
            st->cnt.tcp_drop_window++;
            return TCP_V_PAWS;
        }
        st->cnt.tcp_paws_disordered_ack++;
    }
    /* first: sequence number check */
    if (!acceptable(sk, seg->seq, slen)) {
        if (seq_le(seg->seq + slen, sk->rcv_nxt) && slen)
            st->cnt.tcp_dup_in++;
        else
            st->cnt.tcp_drop_window++;
        /* A segment that starts before RCV.NXT and covers it (the
         * retransmission of one cut at the window's edge) counts too, as in
         * Linux tcp_sequence, when its window is not older than the one we
         * hold (SND.WL1/WL2, 3.10.7.4 fifth): else the peer's window updates
         * could never reach a receiver whose own window stays closed. It is
         * then handled as the pure ACK at RCV.NXT it amounts to. */
        bool straddles = seq_lt(seg->seq, sk->rcv_nxt) && seq_gt(seg->seq + slen, sk->rcv_nxt) &&
                         (seq_lt(sk->snd_wl1, seg->seq) ||
                          (sk->snd_wl1 == seg->seq && seq_le(sk->snd_wl2, seg->ack)));
        if ((fl & TCPSM_ACK) && !(fl & (TCPSM_RST | TCPSM_SYN)) &&
            (seg->seq == sk->rcv_nxt || straddles) &&
            (sk->state == TCPSM_ESTABLISHED || sk->state == TCPSM_FIN_WAIT_1 ||
             sk->state == TCPSM_FIN_WAIT_2 || sk->state == TCPSM_CLOSE_WAIT))
            return TCP_V_OOW_ACK;
        return TCP_V_OOW;
    }
    /* second: RST (RFC 5961 3.2: exact match, else challenge ACK) */
    if (fl & TCPSM_RST)
        return seg->seq == sk->rcv_nxt ? TCP_V_RESET : TCP_V_CHALLENGE;
    /* fourth: SYN (RFC 9293 3.10.7.4, RFC 5961 4) */
    if (fl & TCPSM_SYN)
        return sk->state == TCPSM_SYN_RECEIVED && sk->passive ? TCP_V_SYN_RESET : TCP_V_CHALLENGE;
    /* fifth: ACK */
    if (!(fl & TCPSM_ACK))
        return TCP_V_DROP;
    /* RFC 5961 5.2 (SYN-RECEIVED has its stricter test, answered by a RST) */
    if (sk->state != TCPSM_SYN_RECEIVED &&
        (seq_gt(seg->ack, sk->snd_max) ||
         seq_lt(seg->ack, sk->snd_una - (sk->max_snd_wnd ? sk->max_snd_wnd : 1)))) {
        st->cnt.tcp_drop_window++;
        return TCP_V_CHALLENGE;
    }
    return TCP_V_ACCEPT;
}

/* SYN-RECEIVED and a SYN with the peer's ISN: a simultaneous open's
 * SYN+ACK, or the peer's SYN again (our SYN+ACK was lost). True if the
 * segment was that and is done with. */
static bool syn_received_syn(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint64_t now)
{
    uint8_t fl = seg->flags;
    if (sk->state != TCPSM_SYN_RECEIVED || !(fl & TCPSM_SYN) || (fl & TCPSM_RST) ||
        seg->seq != sk->irs)
        return false;
    if ((fl & TCPSM_ACK) && seg->ack == sk->snd_nxt && !sk->passive) {
        /* simultaneous open: the peer's SYN+ACK ACKs our SYN (fig. 7 line 6) */
        sk->bytes_acked += seg->ack - sk->snd_una;
        sk->snd_una = seg->ack;
        sk->snd_wnd = seg->wnd;
        sk->max_snd_wnd = sk->snd_wnd;
        sk->snd_wl1 = seg->seq;
        sk->snd_wl2 = seg->ack;
        tcp_rto_stop(sk);
        established(sk, now);
        tcp_set_state(sk, TCPSM_ESTABLISHED, "rcv SYN+ACK", seg, false);
        sk->async_ev |= TCPSM_ASYNC_OUT;
        tcp_wake(sk);
        tcp_output(sk, now);
        return true;
    }
    if (!(fl & TCPSM_ACK)) {
        /* the peer retransmitted its SYN: our SYN+ACK was lost (Linux) */
        tcp_send_syn(sk, now);
        return true;
    }
    return false;
}

/* An exact RST (RFC 9293 3.10.7.4 second). The TCB may be gone after. */
static void rcv_reset(struct tcpsm_sock *sk, const struct tcp_seg *seg)
{
    sk->st->cnt.tcp_rst_in++;
    switch (sk->state) {
    case TCPSM_SYN_RECEIVED:
        if (sk->passive) {
            /* back to LISTEN: the embryo goes away, nothing reaches accept() */
            tcp_set_state(sk, TCPSM_LISTEN, "rcv RST", seg, false);
            tcp_sock_free(sk);
        } else {
            tcp_done(sk, ECONNREFUSED, "rcv RST", seg);
        }
        return;
    case TCPSM_CLOSE_WAIT:
        tcp_done(sk, EPIPE, "rcv RST", seg);        /* Linux tcp_reset */
        return;
    case TCPSM_TIME_WAIT:
        /* RFC 9293: CLOSED (the RFC 1337 hazard is accepted, as Linux) */
        tcp_done(sk, 0, "rcv RST", seg);
        return;
    default:
        tcp_done(sk, ECONNRESET, "rcv RST", seg);
        return;
    }
}

/* SYN-RECEIVED and an acceptable ACK: ESTABLISHED, the child to the
 * accept queue. False if the segment is dropped (or answered by a RST). */
static bool syn_received_ack(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint64_t now)
{
    struct tcpsm_stack *st = sk->st;
    if (!(seq_lt(sk->snd_una, seg->ack) && seq_le(seg->ack, sk->snd_max))) {
        tcp_reply_rst(st, seg);         /* <SEQ=SEG.ACK><CTL=RST> */
        return false;
    }
    struct tcpsm_sock *l = sk->parent;
    if (sk->passive && l && tcp_acceptq_full(l)) {
        st->cnt.tcp_drop_listen_overflow++;  /* Linux: drop, the peer retransmits */
        return false;
    }
    sk->snd_wnd = (uint32_t)seg->wnd << sk->snd_wscale;
    sk->max_snd_wnd = sk->snd_wnd;
    sk->snd_wl1 = seg->seq;
    sk->snd_wl2 = seg->ack;
    established(sk, now);
    tcp_set_state(sk, TCPSM_ESTABLISHED, "rcv ACK", seg, false);
    if (sk->passive && l) {
        /* SYN queue -> accept queue */
        tcp_synq_del(l, sk);
        if (l->accq_tail)
            l->accq_tail->qnext = sk;
        else
            l->accq = sk;
        l->accq_tail = sk;
        l->nacc++;
        sk->in_acceptq = true;
        tcp_wake_listener(l);
    } else {
        /* a simultaneous open completed (tcp_rcv_state_process: POLL_OUT
         * to a socket that has a file) */
        if (!sk->passive)
            sk->async_ev |= TCPSM_ASYNC_OUT;
        tcp_wake(sk);
    }
    return true;
}

/* After the ACK: the closing states that it moves on (RFC 9293 3.10.7.4
 * fifth, the state-specific part). False if the TCB is done with the
 * segment (TIME-WAIT entered or the TCB freed). */
static bool ack_transitions(struct tcpsm_sock *sk, const struct tcp_seg *seg, uint64_t now)
{
    if (!our_fin_acked(sk))
        return true;
    switch (sk->state) {
    case TCPSM_FIN_WAIT_1:
        tcp_set_state(sk, TCPSM_FIN_WAIT_2, "rcv ACK of FIN", seg, false);
        if (!sk->user_ref) {
            sk->state_at = now + TCP_FIN_TIMEOUT_NS;
            tcp_timer_update(sk);
        }
        return true;
    case TCPSM_CLOSING:
        tcp_set_state(sk, TCPSM_TIME_WAIT, "rcv ACK of FIN", seg, false);
        tcp_timewait_start(sk, now);
        tcp_wake(sk);
        return false;
    case TCPSM_LAST_ACK:
        close_quiet(sk, "rcv ACK of FIN", seg);
        return false;
    default:
        return true;
    }
}

static void rcv_in_window(struct tcpsm_sock *sk, struct tcp_seg *seg, enum tcp_verdict v,
                          uint64_t now);

/* A segment for a synchronized or SYN-RECEIVED TCB: the checks
 * (tcp_validate), then what their verdict calls for. */
static void rcv_segment(struct tcpsm_sock *sk, struct tcp_seg *seg, uint64_t now)
{
    uint8_t fl = seg->flags;
    uint32_t slen = seg_space(seg);

    if (syn_received_syn(sk, seg, now))
        return;
    enum tcp_verdict v = tcp_validate(sk, seg, now);
    if (v > TCP_V_IN_WINDOW) {
        rcv_in_window(sk, seg, v, now);
        return;
    }
    if (v == TCP_V_PAWS) {
        /* a duplicate ACK, rate-limited (Linux tcp_validate_incoming) */
        if (!tcp_oow_rate_limited(sk, now))
            tcp_send_ack(sk, now);
        return;
    }
    if (v == TCP_V_OOW_ACK) {
        /* Only the zero window refused it: its ACK field is processed as
         * the pure ACK at RCV.NXT it amounts to (none of the states that
         * allow this can free the TCB on an ACK), then answered below */
        struct tcp_seg ack_only = *seg;
        ack_only.seq = sk->rcv_nxt;
        ack_only.len = 0;
        ack_only.flags &= (uint8_t)~TCPSM_FIN;
        enum tcp_verdict va = tcp_validate(sk, &ack_only, now);
        if (va > TCP_V_IN_WINDOW)
            rcv_in_window(sk, &ack_only, va, now);
    }
    if (sk->state == TCPSM_TIME_WAIT && (fl & TCPSM_FIN) && !(fl & TCPSM_RST) &&
        seg->seq + slen == sk->rcv_nxt)
        tcp_timewait_start(sk, now);    /* retransmitted FIN: ACK, restart 2*MSL */
    if (fl & TCPSM_RST)
        return;
    /* an empty out-of-window segment may be half of an ACK loop between
     * two desynchronized ends: answer at most one per 500 ms (Linux
     * tcp_oow_rate_limited) */
    if (slen == 0 && tcp_oow_rate_limited(sk, now))
        return;
    /* data wholly below RCV.NXT: a duplicate (Linux tcp_send_dupack) */
    if (seg->len && seq_le(seg->seq + seg->len, sk->rcv_nxt))
        dsack_set(sk, seg->seq, seg->seq + seg->len);
    tcp_send_ack(sk, now);
}

/* The rest of SEGMENT ARRIVES for a segment whose sequence number was
 * acceptable: the verdict's answer, or the ACK step (ack_step, ack_react,
 * then the state transitions it causes), URG, the text and the FIN. */
static void rcv_in_window(struct tcpsm_sock *sk, struct tcp_seg *seg, enum tcp_verdict v,
                          uint64_t now)
{
    uint8_t fl = seg->flags;
    /* the sequence number was acceptable: RFC 7323 4.3, remember the
     * timestamp to echo (the challenge ACKs below echo it too) */
    if (sk->ts_ok && seg->opt.ts_ok && seq_le(seg->seq, sk->last_ack_sent) &&
        seq_ge(seg->opt.tsval, sk->ts_recent)) {
        sk->ts_recent = seg->opt.tsval;
        sk->ts_recent_age = now;
    }
    /* the receiver's RTT, for buffer auto-tuning: new data echoing one of
     * our timestamps (Linux tcp_rcv_rtt_measure_ts) */
    if (sk->rcvbuf_max && seg->len && sk->ts_ok && seg->opt.ts_ok && seg->opt.tsecr) {
        uint32_t ms = tcp_ts_now(sk, now) - seg->opt.tsecr;
        if (ms < 60000u) {
            uint32_t us = ms ? ms * 1000u : 1000u;      /* 1 ms clock granularity */
            sk->rcv_rtt_us = sk->rcv_rtt_us ? sk->rcv_rtt_us - sk->rcv_rtt_us / 8 + us / 8 : us;
        }
    }
    switch (v) {
    case TCP_V_CHALLENGE:
        challenge_ack(sk, now);
        return;
    case TCP_V_RESET:
        rcv_reset(sk, seg);
        return;
    case TCP_V_SYN_RESET:
        tcp_set_state(sk, TCPSM_LISTEN, "rcv SYN", seg, false);
        tcp_sock_free(sk);
        return;
    case TCP_V_ACCEPT:
        break;
    default:                            /* TCP_V_DROP */
        return;
    }

    /* fifth: ACK */
    if (sk->state == TCPSM_SYN_RECEIVED && !syn_received_ack(sk, seg, now))
        return;
    /* the segment passed every check: the peer is alive (keepalive,
     * RFC 1122 4.2.3.6); a blind or stale one must not count */
    sk->last_rcv = now;
    sk->ka_probes = 0;
    if (seg->len) {
        sk->data_segs_in += tcp_seg_count(sk, seg);
        sk->last_data_recv = now;
        /* Linux tcp_measure_rcv_mss: the largest segment seen, at most ours */
        uint32_t adv = tcp_adv_mss(sk);
        uint32_t est = sk->rcv_mss_seen ? sk->rcv_mss_seen : (adv < 536 ? adv : 536);
        if (seg->len >= est)
            sk->rcv_mss_seen = (uint16_t)(seg->len < adv ? seg->len : adv);
    }
    ack_react(sk, seg, ack_step(sk, seg, now), now);
    if (!ack_transitions(sk, seg, now))
        return;

    /* sixth: URG (RFC 9293 3.10.7.4; Linux tcp_urg), in the states that
     * still take data */
    if ((fl & TCPSM_URG) && (sk->state == TCPSM_ESTABLISHED || sk->state == TCPSM_FIN_WAIT_1 ||
                             sk->state == TCPSM_FIN_WAIT_2))
        tcp_urg_input(sk, seg);

    /* seventh: segment text */
    bool fin = (fl & TCPSM_FIN) != 0;
    if (seg->len || fin) {
        switch (sk->state) {
        case TCPSM_ESTABLISHED:
        case TCPSM_FIN_WAIT_1:
        case TCPSM_FIN_WAIT_2:
            if ((sk->shutdown & RCV_SHUTDOWN) && !sk->user_ref && seg->len &&
                seq_gt(seg->seq + seg->len, sk->rcv_nxt)) {
                /* data for a closed socket: reset (Linux tcp_rcv_state_process) */
                tcp_send_rst_sk(sk, now);
                tcp_done(sk, ECONNRESET, "data after close", seg);
                return;
            }
            uint32_t nxt0 = sk->rcv_nxt;
            fin = queue_data(sk, seg, fin, now);
            if (seg->len)
                tcp_batch_defer(sk, TCP_BATCH_WAKE);
            if (sk->rcv_nxt != nxt0)
                sk->async_ev |= TCPSM_ASYNC_IN;  /* in-order data (tcp_data_ready) */
            if (sk->urg_data == TCP_URG_NOTYET)
                tcp_urg_capture(sk);
            break;
        default:
            /* CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer already sent
             * its FIN; text and FIN here are ignored (their retransmissions
             * fail the acceptability test and are ACKed there) */
            fin = false;
            break;
        }
    }

    /* eighth: FIN */
    if (fin) {
        /* RCV.NXT past the FIN and rcv_fin go together: one without the
         * other would ACK the FIN and never report the end of the stream */
        struct tcpsm_sock *outer = tcp_stream_begin(sk);
        sk->rcv_nxt++;
        sk->rcv_fin = true;
        sk->shutdown |= RCV_SHUTDOWN;
        tcp_stream_end(sk, outer);
        bool owed = sk->ack_now;        /* for another reason than the FIN */
        sk->ack_now = true;
        switch (sk->state) {
        case TCPSM_ESTABLISHED:
            tcp_set_state(sk, TCPSM_CLOSE_WAIT, "rcv FIN", seg, false);
            if (!owed && tcp_fin_ack_hold(sk, now))
                sk->ack_now = false;    /* the application's FIN will carry it */
            break;
        case TCPSM_FIN_WAIT_1:
            if (our_fin_acked(sk)) {
                tcp_set_state(sk, TCPSM_TIME_WAIT, "rcv FIN", seg, false);
                tcp_timewait_start(sk, now);
            } else {
                tcp_set_state(sk, TCPSM_CLOSING, "rcv FIN", seg, false);
            }
            break;
        case TCPSM_FIN_WAIT_2:
            tcp_set_state(sk, TCPSM_TIME_WAIT, "rcv FIN", seg, false);
            tcp_timewait_start(sk, now);
            break;
        default:
            break;
        }
        /* Linux tcp_fin: POLL_HUP once both directions are shut, else
         * POLL_IN; then tcp_data_ready for the FIN: POLL_IN */
        sk->async_ev |= TCPSM_ASYNC_IN;
        if (sk->shutdown == (RCV_SHUTDOWN | SEND_SHUTDOWN) || sk->state == TCPSM_CLOSED)
            sk->async_ev |= TCPSM_ASYNC_HUP;
        tcp_wake(sk);
    }

    /* A duplicate ACK for out-of-order data goes out as a pure ACK even
     * when data leaves in this pass: a data segment does not count as a
     * duplicate ACK at the peer (RFC 5681 2), whose fast retransmit would
     * wait for an RTO otherwise. */
    if (sk->dupack_now) {
        sk->dupack_now = false;
        tcp_send_ack(sk, now);
    }
    tcp_output(sk, now);
    if (sk->ack_now)
        tcp_send_ack(sk, now);
}

/* ---------------------------------------------------------------- entry points */

void tcp_input(struct tcpsm_stack *st, const struct tcpsm_addr *src, const struct tcpsm_addr *dst,
               const uint8_t *p, size_t len, uint64_t now)
{
    st->now = now;
    if (!st->tcp)
        return;
    if (len < 20 || len > 65535) {
        st->cnt.tcp_drop_hdr++;
        return;
    }
    size_t hl = (size_t)(p[12] >> 4) * 4;
    if (hl < 20 || hl > len) {
        st->cnt.tcp_drop_hdr++;
        return;
    }
    /* the link vouched for the data (checked, or from a local sender that
     * left the sum to the hardware): no second pass over a 64 KiB frame */
    bool v4 = addr_is_v4(src);
    uint32_t ps = v4 ? csum_pseudo(addr_v4(src), addr_v4(dst), IPPROTO_TCP_, (uint16_t)len)
                     : csum_pseudo6(src->b, dst->b, IPPROTO_TCP_, (uint32_t)len);
    if (!(st->rx_flags & (TCPSM_FRAME_CSUM_VALID | TCPSM_FRAME_CSUM_PARTIAL)) &&
        csum_fold(csum_partial(p, len, ps)) != 0) {
        st->cnt.tcp_drop_csum++;
        return;
    }
    /* RFC 1122 4.2.3.10: no connection with a broadcast/multicast peer
     * (ipv6.c already refused IPv6 multicast and unspecified sources) */
    uint32_t s4 = addr_v4(src);
    if (v4 && (s4 == 0 || s4 == 0xffffffffu || (s4 >> 28) == 0xe)) {
        st->cnt.tcp_drop_hdr++;
        return;
    }
    st->cnt.tcp_in++;
    struct tcp_seg seg = {
        .src = *src, .dst = *dst,
        .sport = get16(p), .dport = get16(p + 2),
        .seq = get32(p + 4), .ack = get32(p + 8),
        .flags = p[13] & 0x3f,
        .wnd = get16(p + 14),
        .data = p + hl, .len = (uint32_t)(len - hl),
        .urp = (p[13] & TCPSM_URG) ? get16(p + 18) : 0,
    };
    if (st->gro_n && p == st->gro_th) {
        /* the frames after this one continue it (tcp_gro.c) */
        seg.more = st->gro_more;
        seg.nmore = st->gro_n;
        seg.len += st->gro_bytes;
        st->gro_taken = true;
    }
    tcp_opt_parse(p + 20, hl - 20, (seg.flags & TCPSM_SYN) != 0, &seg.opt);
    if (seg.sport == 0 || seg.dport == 0) {
        st->cnt.tcp_drop_hdr++;
        return;
    }

    struct tcpsm_sock *sk = tcp_ehash_find(st->tcp, dst, seg.dport, src, seg.sport);
    if (!sk) {
        struct tcpsm_sock *l = tcp_listener_find(st->tcp, dst, seg.dport);
        if (l) {
            listen_input(l, &seg, now, 0);
        } else {
            st->cnt.tcp_drop_no_sock++;
            tcp_reply_rst(st, &seg);    /* RFC 9293 3.10.7.1 */
        }
        return;
    }
    sk->segs_in += tcp_seg_count(sk, &seg);
    if (sk->state == TCPSM_SYN_SENT) {
        syn_sent_input(sk, &seg, now);
        return;
    }
    if (sk->state == TCPSM_TIME_WAIT && (seg.flags & (TCPSM_SYN | TCPSM_ACK | TCPSM_RST)) ==
        TCPSM_SYN && timewait_syn(sk, &seg, now))
        return;
    rcv_segment(sk, &seg, now);
}

/* Path MTU (RFC 1191 for IPv4, RFC 8201 for IPv6; the IPv6 floor of 1280
 * is applied by icmp6.c): a smaller MTU lowers this connection's MSS and
 * what is in flight is sent again in the new size, as Linux
 * tcp_simple_retransmit. IPv4 MTUs below 552 (Linux min_pmtu) are not taken. */
void tcp_pmtu_update(struct tcpsm_sock *sk, uint32_t mtu, uint64_t now)
{
    bool v4 = addr_is_v4(&sk->raddr);
    /* below the floor (0 from a pre-RFC 1191 router included): the floor,
     * as Linux (ip_rt_min_pmtu 552; IPv6's minimum MTU, RFC 8201 4) */
    uint32_t floor = v4 ? 552u : 1280u;
    if (mtu < floor)
        mtu = floor;
    uint32_t link = tcp_mtu_l4(sk) + (v4 ? 20u : 40u);
    if (mtu >= link)
        return;                         /* no news: never above the link's MTU */
    pmtu_learn(sk->st, &sk->raddr, mtu, now);
    if (!sk->pmtu || mtu < sk->pmtu)
        sk->pmtu = mtu;
    uint32_t mss = mtu - (v4 ? 40u : 60u);
    tcp_plpmtud_icmp(sk, mss);          /* no probing above what ICMP said */
    if (mss >= sk->mss)
        return;
    sk->mss = (uint16_t)mss;
    if (sk->snd_una != sk->snd_nxt && tcp_synchronized(sk->state))
        tcp_retransmit_head(sk, now);
}

/* ICMP destination unreachable / time exceeded about one of our segments
 * (RFC 1122 4.2.3.9, RFC 5927): hard errors end a connection that is still
 * opening; everything else is a soft error, reported if it then times out. */
void tcp_icmp_error(struct tcpsm_stack *st, uint8_t type, uint8_t code, uint32_t mtu,
                    const struct tcpsm_addr *inner_src, const struct tcpsm_addr *inner_dst,
                    uint16_t inner_sport, uint16_t inner_dport, uint32_t inner_seq, uint64_t now)
{
    st->now = now;
    if (!st->tcp)
        return;
    struct tcpsm_sock *sk = tcp_ehash_find(st->tcp, inner_src, inner_sport, inner_dst, inner_dport);
    if (!sk)
        return;
    /* RFC 5927 4.1: the quoted sequence number must be in flight */
    if (!seq_in(inner_seq, sk->snd_una, sk->snd_max + 1))
        return;
    int err;
    bool hard = false;
    if (type == 3) {
        switch (code) {
        case 0: case 6: case 11: err = ENETUNREACH; break;
        case 1: case 12: err = EHOSTUNREACH; break;
        case 2: err = ECONNREFUSED; hard = true; break;     /* protocol unreachable */
        case 3: err = ECONNREFUSED; hard = true; break;     /* port unreachable */
        case 4:                                             /* PMTUD (RFC 1191, RFC 8201) */
            tcp_pmtu_update(sk, mtu, now);
            return;
        case 7: err = EHOSTDOWN; break;
        case 9: case 10: err = ECONNREFUSED; hard = true; break;
        case 13: err = EHOSTUNREACH; hard = true; break;    /* administratively prohibited */
        default: err = EHOSTUNREACH; break;
        }
    } else if (type == 11) {
        err = EHOSTUNREACH;
    } else {
        return;
    }
    if (hard && (sk->state == TCPSM_SYN_SENT || sk->state == TCPSM_SYN_RECEIVED)) {
        tcp_done(sk, err, "icmp unreachable", NULL);
        stack_tx_flush(st);
        return;
    }
    sk->soft_err = err;
}
