/* Packetization-layer path MTU discovery, the black-hole half (RFC 4821 /
 * RFC 8899 as Linux's tcp_mtu_probing = 1): where ICMP is filtered, a path
 * that silently drops large packets shows as repeated RTOs of full-sized
 * segments; then the MSS falls to TCP_BASE_MSS, and halves again at every
 * further RTO down to the family's floor, so the retransmissions get
 * through instead of the connection timing out. ICMP-based discovery
 * (RFC 1191 / 8201) is tcp_pmtu_update() with the per-destination table
 * in pmtu.c. After PMTU_RAISE_NS the full MSS is tried again (RFC 8899
 * 5.1.1 PMTU_RAISE_TIMER): a black hole still there costs another few
 * RTOs; one gone gives the connection its MSS back. */
#include "tcp_int.h"

/* RTOs in a row first, with the peer silent all along. Linux
 * tcp_retries1 is 3; more here because the stack does not probe upward
 * within the connection, so a false alarm costs the full MSS until the
 * raise timer: with 10 % loss each way an RTO round fails with p = 0.19,
 * three in a row happened in the unit tests' lossy uploads, six have
 * p = 5e-5. The price: a real black hole is found after about 13 s
 * (RTO 200 ms doubling) instead of 1.4 s. */
#define TCP_BLACKHOLE_RTOS 6
#define TCP_BASE_MSS       1024 /* RFC 4821 7.2, Linux tcp_base_mss */

void tcp_plpmtud_rto(struct tcpsm_sock *sk, uint64_t now)
{
    (void)now;
    if (sk->retries < TCP_BLACKHOLE_RTOS || !tcp_synchronized(sk->state))
        return;
    bool v4 = addr_is_v4(&sk->raddr);
    uint32_t hdr = v4 ? 40u : 60u;
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
    if (!sk->plpmtu_raise_at)
        sk->mss_full = sk->mss;
    sk->plpmtu_raise_at = now + PMTU_EXPIRE_NS;
    sk->mss = (uint16_t)target;
    sk->pmtu = target + hdr;
    sk->st->cnt.tcp_pmtu_blackhole++;
}

/* From tcp_output: the raise timer has run out, try the full size again. */
void tcp_plpmtud_raise(struct tcpsm_sock *sk, uint64_t now)
{
    if (now < sk->plpmtu_raise_at)
        return;
    sk->plpmtu_raise_at = 0;
    sk->mss = sk->mss_full;
    sk->pmtu = 0;
}
