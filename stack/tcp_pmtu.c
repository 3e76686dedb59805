/* Packetization-layer path MTU discovery (RFC 4821 / RFC 8899, as Linux's
 * tcp_mtu_probing = 1). ICMP-based discovery (RFC 1191 / 8201) is
 * tcp_pmtu_update() with the per-destination table in pmtu.c; this file is
 * for paths where ICMP is filtered.
 *
 * Black hole (RFC 4821 7.2, Linux tcp_mtu_probing): a path that silently
 * drops large packets shows as repeated RTOs of full-sized segments; then
 * the MSS falls to TCP_BASE_MSS, and halves again at every further RTO
 * down to the family's floor, so the retransmissions get through.
 *
 * Probing upward (RFC 4821 7.3-7.6, Linux tcp_mtu_probe): from then on the
 * connection searches between the largest MSS known to get through (low)
 * and the largest that may (high, at first the MSS of the handshake): a
 * probe is one segment of new data of the size halfway, sent with enough
 * data after it that its loss shows as duplicate ACKs or SACKs. Its ACK
 * raises the MSS to the probe's size (low = probe); its loss lowers high
 * and is repaired at the current MSS without any congestion response (RFC
 * 4821 7.5: a lost probe says nothing about congestion). The search ends
 * when high - low < TCP_PROBE_THRESHOLD; after the probe interval (Linux
 * tcp_probe_interval, 600 s, tcpsm_config.plpmtu_interval_s) it starts
 * again from the current MSS up to the handshake's, so a path that got
 * better gives the connection its MSS back. */
#include "tcp_int.h"

/* A black hole is declared at an RTO (not the first of the run) that fires
 * at least this long after the run's first one, as Linux tcp_write_timeout:
 * retransmits_timed_out(tcp_retries1 = 3), the time three RTOs doubling
 * from TCP_RTO_MIN (200 ms) take: (2^4 - 1) x 200 ms. With a 200 ms RTO
 * that is the fifth RTO (2.8 s after the first is not yet 3 s), with
 * 215 ms or more the fourth, from the initial 1 s RTO the third. The peer
 * must have been silent since the first retransmission too (our addition:
 * with 10 % loss each way a run of lost RTO rounds is not rare, and a
 * black hole answers nothing). */
#define TCP_BLACKHOLE_MS    (15u * 200u)
#define TCP_BASE_MSS        1024    /* RFC 4821 7.2, Linux tcp_base_mss */
#define TCP_PROBE_THRESHOLD 8       /* bytes: the search ends closer than this (Linux
                                       tcp_probe_threshold) */
#define TCP_PROBE_DUPS      3       /* segments of data after a probe: its loss is seen
                                       by DupThresh (RFC 5681) without an RTO */

static uint32_t hdr_len(const struct tcpsm_sock *sk)
{
    return addr_is_v4(&sk->raddr) ? 40u : 60u;
}

static uint64_t interval_ns(const struct tcpsm_sock *sk)
{
    uint32_t s = sk->st->cfg.plpmtu_interval_s;
    return (uint64_t)(s ? s : 600u) * 1000000000ull;
}

/* The MSS is mss from now on (a black hole, a probe that got through). */
static void set_mss(struct tcpsm_sock *sk, uint32_t mss)
{
    sk->mss = (uint16_t)mss;
    sk->pmtu = mss >= sk->plp_max ? 0 : mss + hdr_len(sk);
}

/* tcp_mtu_probing = 2 (RFC 4821 7.2 / RFC 8899 5.1.2): the connection
 * starts at the base MSS, which any path of the family takes, and the
 * search probes upward from the first data (Linux tcp_mtup_init with
 * search_low at tcp_base_mss). */
void tcp_plpmtud_start(struct tcpsm_sock *sk, uint64_t now)
{
    if (sk->st->cfg.mtu_probing != 2 || sk->plp_on)
        return;
    uint32_t floor = addr_is_v4(&sk->raddr) ? TCP_MSS_DEF : 1280u - 60u;
    uint32_t base = TCP_BASE_MSS > floor ? TCP_BASE_MSS : floor;
    if (sk->mss <= base)
        return;
    sk->plp_on = true;
    sk->plp_max = sk->plp_high = sk->mss;
    sk->plp_low = (uint16_t)base;
    sk->plp_stamp = now;
    sk->plp_probe = 0;
    set_mss(sk, base);
}

void tcp_plpmtud_rto(struct tcpsm_sock *sk, uint64_t now)
{
    /* a probe at the head of the queue timed out: it was too big (its
     * RTO is still an RTO: the congestion response stays, as Linux) */
    if (sk->plp_probe && seq_le(sk->snd_una, sk->plp_probe_seq))
        tcp_plpmtud_probe_lost(sk);
    /* sk->retries counts this RTO already */
    if (sk->retries < 2 || (uint32_t)(now / MS_NS) - sk->rtx_stamp_ms < TCP_BLACKHOLE_MS ||
        !tcp_synchronized(sk->state))
        return;
    bool v4 = addr_is_v4(&sk->raddr);
    /* RFC 9293 3.7.1's 536 (a 576-byte datagram); IPv6's 1280-byte minimum MTU */
    uint32_t floor = v4 ? TCP_MSS_DEF : 1280u - 60u;
    if (sk->mss <= floor)
        return;
    /* a black hole swallows everything the peer would answer: if it spoke
     * (a duplicate ACK, SACK, data) since the first retransmission, the
     * losses are something else */
    if (sk->first_rtx && sk->last_rcv > sk->first_rtx)
        return;
    /* only when what is lost is bigger than the next size tried */
    uint32_t unacked = sk->snd_max - sk->snd_una;
    uint32_t target = sk->mss > TCP_BASE_MSS ? TCP_BASE_MSS : sk->mss / 2u;
    if (target < floor)
        target = floor;
    if (unacked <= target)
        return;
    if (!sk->plp_on) {
        sk->plp_on = true;
        sk->plp_max = sk->mss;
        sk->plp_high = sk->mss;
    }
    sk->plp_low = (uint16_t)target;
    sk->plp_stamp = now;
    sk->plp_probe = 0;
    set_mss(sk, target);
    sk->st->cnt.tcp_pmtu_blackhole++;
}

/* ICMP taught a path MTU (MSS mss): nothing above it is worth probing. */
void tcp_plpmtud_icmp(struct tcpsm_sock *sk, uint32_t mss)
{
    if (!sk->plp_on)
        return;
    if (sk->plp_probe && sk->plp_probe > mss)
        tcp_plpmtud_probe_lost(sk);
    if (sk->plp_high > mss)
        sk->plp_high = (uint16_t)mss;
    if (sk->plp_low > mss)
        sk->plp_low = (uint16_t)mss;
}

/* From tcp_output, before new data goes out: the payload of a probe to
 * send now at SND.NXT, 0 for none. unsent, usable: the bytes queued and
 * what the send window and cwnd allow now; mss: the current send MSS. */
uint32_t tcp_plpmtud_probe_len(struct tcpsm_sock *sk, uint32_t unsent, uint32_t usable,
                               uint32_t mss, uint64_t now)
{
    if (sk->plp_probe || sk->plp_repair || sk->in_recovery || sk->loss_state || sk->dupacks ||
        sk->snd_nxt != sk->snd_max || sk->rtxq.lost || sk->state != TCPSM_ESTABLISHED)
        return 0;
    uint32_t probe = (sk->plp_low + sk->plp_high + 1u) / 2u;
    if (sk->plp_high < sk->plp_low + TCP_PROBE_THRESHOLD) {
        /* close enough: the top itself when it never failed (the full
         * MSS back, not 8 bytes short of it), else the search is over
         * until the interval has passed (Linux tcp_mtu_check_reprobe)
         * and starts again from here up to the handshake's MSS */
        probe = sk->plp_high;
        if (sk->plp_high != sk->plp_max || sk->mss >= sk->plp_max) {
            if (now - sk->plp_stamp < interval_ns(sk) || sk->plp_max <= sk->mss)
                return 0;
            sk->plp_low = sk->mss;
            sk->plp_high = sk->plp_max;
            sk->plp_stamp = now;
            probe = (sk->plp_low + sk->plp_high + 1u) / 2u;
        }
    }
    if (probe <= sk->mss)
        return 0;
    uint32_t len = probe - (sk->mss - mss);  /* the options take their share */
    /* data to follow it, so that its loss shows (Linux size_needed);
     * the windows need room for the probe itself now, the rest follows as
     * the ACKs of what went before open them */
    uint32_t need = len + TCP_PROBE_DUPS * mss;
    if (unsent < need || usable < len || sk->snd_wnd < need)
        return 0;
    return len;
}

/* The probe went out: [seq, seq + len). */
void tcp_plpmtud_probe_sent(struct tcpsm_sock *sk, uint32_t seq, uint32_t len, uint32_t mss)
{
    sk->plp_probe = (uint16_t)(len + (sk->mss - mss));
    sk->plp_probe_seq = seq;
    sk->plp_probe_end = seq + len;
    sk->st->cnt.tcp_pmtu_probes++;
}

/* From the ACK processing, SND.UNA having moved: the probe arrived (RFC
 * 4821 7.6.1) and its size is the MSS from now on. */
void tcp_plpmtud_acked(struct tcpsm_sock *sk)
{
    if (sk->plp_repair && seq_ge(sk->snd_una, sk->plp_repair_end))
        sk->plp_repair = false;
    if (!sk->plp_probe || seq_lt(sk->snd_una, sk->plp_probe_end))
        return;
    uint32_t probe = sk->plp_probe;
    sk->plp_probe = 0;
    if (probe > sk->plp_low)
        sk->plp_low = (uint16_t)probe;
    if (probe > sk->mss)
        set_mss(sk, probe);
    if (sk->plp_high < sk->plp_low)
        sk->plp_high = sk->plp_low;
    sk->st->cnt.tcp_pmtu_probe_ok++;
}

/* The probe was lost (RFC 4821 7.6.2): too big. Its bytes go again at the
 * current MSS; until they are ACKed their loss is no congestion signal
 * (tcp_plpmtud_excused). */
void tcp_plpmtud_probe_lost(struct tcpsm_sock *sk)
{
    if (!sk->plp_probe)
        return;
    uint32_t probe = sk->plp_probe;
    sk->plp_probe = 0;
    if (probe - 1u < sk->plp_high)
        sk->plp_high = (uint16_t)(probe - 1u);
    if (sk->plp_high < sk->plp_low)
        sk->plp_high = sk->plp_low;
    sk->plp_repair = true;
    sk->plp_repair_end = sk->plp_probe_end;
    sk->st->cnt.tcp_pmtu_probe_lost++;
}

/* Duplicate ACKs with the probe at the head of the queue (NewReno: the
 * DupThresh'th; RACK: its record marked lost): true when that is the
 * probe's loss, which the caller then repairs without reducing cwnd. */
bool tcp_plpmtud_dup_lost(struct tcpsm_sock *sk)
{
    if (!sk->plp_probe || sk->snd_una != sk->plp_probe_seq)
        return false;
    /* NewReno: called with the duplicate ACK not yet counted */
    bool lost = tcp_rack_on(sk) && sk->syn_acked ? tcp_rtxq_lost_at(sk, sk->plp_probe_seq)
                                                 : sk->dupacks + 1u >= TCP_PROBE_DUPS;
    if (!lost)
        return false;
    tcp_plpmtud_probe_lost(sk);
    return true;
}

/* A loss that congestion control should not see: a lost probe's bytes
 * are being repaired and (RACK connections) nothing else is marked lost. */
bool tcp_plpmtud_excused(const struct tcpsm_sock *sk)
{
    if (!sk->plp_repair || !seq_lt(sk->snd_una, sk->plp_repair_end))
        return false;
    return !(tcp_rack_on(sk) && sk->syn_acked) || tcp_rtxq_lost_below(sk, sk->plp_repair_end);
}
