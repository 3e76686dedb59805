/* Urgent data (RFC 9293 3.8.5, RFC 6093) as Linux treats it: one urgent
 * byte per pointer, the pointer naming the byte after it (Linux's default,
 * tcp_stdurg = 0: what every stack sends), the byte taken out of the
 * stream unless SO_OOBINLINE and read with recv(MSG_OOB); reads stop at the
 * mark; SIOCATMARK tells when the reader is there; POLLPRI while the byte
 * waits. After tcp_check_urg / tcp_urg / tcp_recv_urg in Linux's
 * tcp_input.c and tcp.c. */
#include "tcp_int.h"

/* The sequence number of the next byte the application reads: the
 * in-order unread bytes are the receive ring (RCV.NXT counts the FIN). */
uint32_t tcp_copied_seq(const struct tcpsm_sock *sk)
{
    return sk->rcv_nxt - sk->rcvq.len - (sk->rcv_fin ? 1u : 0u);
}

/* A segment with URG (Linux tcp_check_urg): a new urgent pointer is
 * remembered; the byte itself is picked up when it is in order. */
void tcp_urg_input(struct tcpsm_sock *sk, const struct tcp_seg *seg)
{
    uint32_t ptr = seg->urp;
    if (ptr)
        ptr--;                          /* the pointer names the byte after the urgent one */
    ptr += seg->seq;
    uint32_t copied = tcp_copied_seq(sk);
    if (seq_gt(copied, ptr))
        return;                         /* already read */
    if (seq_lt(ptr, sk->rcv_nxt))
        return;                         /* do not replay an old pointer */
    if (sk->urg_data && !seq_gt(ptr, sk->urg_seq))
        return;                         /* the same pointer again, or an older one */
    /* A newer pointer while the reader sits on the unread urgent byte: that
     * byte is dropped (Linux); elsewhere the old byte becomes ordinary
     * data: only the latest pointer counts (RFC 6093 4: "the urgent
     * pointer ... updated"). */
    if (sk->urg_data && sk->urg_seq == copied && !sk->urginline && sk->rcvq.len) {
        struct tcpsm_sock *outer = tcp_stream_begin(sk);   /* length and head */
        ring_drop(&sk->rcvq, 1);
        if (!sk->rcvq.len)
            tcp_ring_release(sk, &sk->rcvq);
        tcp_stream_end(sk, outer);
    }
    sk->urg_data = TCP_URG_NOTYET;
    sk->urg_seq = ptr;
    /* tell the world (Linux sk_send_sigurg): the runtime signals the
     * socket's owner (F_SETOWN) at the wake-up */
    sk->async_ev |= TCPSM_ASYNC_URG;
    tcp_batch_defer(sk, TCP_BATCH_WAKE);
}

/* After data went in order: the urgent byte, if it has arrived, is kept
 * for recv(MSG_OOB) and POLLPRI. */
void tcp_urg_capture(struct tcpsm_sock *sk)
{
    if (sk->urg_data != TCP_URG_NOTYET)
        return;
    uint32_t off = sk->urg_seq - tcp_copied_seq(sk);
    if (off >= sk->rcvq.len)
        return;
    uint8_t b;
    ring_read_at(&sk->rcvq, off, &b, 1);
    sk->urg_data = TCP_URG_VALID | b;
    tcp_batch_defer(sk, TCP_BATCH_WAKE);
}

/* How many of the n bytes wanted a read may return (Linux tcp_recvmsg): a
 * read stops before the mark; one that starts on it passes over the urgent
 * byte (*skip = 1) unless it is inline. */
uint32_t tcp_urg_read_limit(struct tcpsm_sock *sk, uint32_t n, bool peek, uint32_t *skip)
{
    (void)peek;
    *skip = 0;
    if (!sk->urg_data)
        return n;
    uint32_t off = sk->urg_seq - tcp_copied_seq(sk);
    if (off == 0) {
        if (sk->urginline)
            return n;
        *skip = 1;
        uint32_t rest = sk->rcvq.len ? sk->rcvq.len - 1 : 0;
        return n < rest ? n : rest;
    }
    return off < n ? off : n;
}

/* Once the reader has passed the mark, the urgent state is over. */
void tcp_urg_after_read(struct tcpsm_sock *sk)
{
    if (sk->urg_data && seq_gt(tcp_copied_seq(sk), sk->urg_seq))
        sk->urg_data = 0;
}

/* The receive ring holds only the out-of-band byte, at the reader's
 * position: nothing to read in the stream (Linux tcp_stream_is_readable). */
bool tcp_urg_hides_rcvq(const struct tcpsm_sock *sk)
{
    return sk->urg_data && !sk->urginline && sk->rcvq.len == 1 &&
           sk->urg_seq == tcp_copied_seq(sk);
}

int tcpsm_sock_atmark(const struct tcpsm_sock *sk)
{
    return sk->urg_data && sk->urg_seq == tcp_copied_seq(sk);
}

/* The urgent pointer of a segment we send at seq (Linux
 * __tcp_transmit_skb): while our urgent byte is not ACKed, every segment
 * before it says where it is, 0xFFFF when it is farther than 64 KiB. */
void tcp_urg_out(struct tcpsm_sock *sk, uint8_t *th, uint32_t seq)
{
    if (!sk->urg_mode)
        return;
    if (!tcp_urg_sending(sk)) {
        sk->urg_mode = false;           /* ACKed */
        return;
    }
    if (!seq_lt(seq, sk->snd_up))
        return;
    uint32_t up = sk->snd_up - seq;
    if (up < 0x10000u) {
        th[18] = (uint8_t)(up >> 8);
        th[19] = (uint8_t)up;
        th[13] |= TCPSM_URG;
    } else if (seq_gt(seq + 0xFFFFu, sk->snd_nxt)) {
        th[18] = th[19] = 0xFF;
        th[13] |= TCPSM_URG;
    }
}
