/* A close during a simultaneous open (SYN-RECEIVED from SYN-SENT): the
 * FIN is queued (RFC 9293 3.10.4: SYN-RECEIVED -> FIN-WAIT-1); until our
 * SYN is acknowledged, the retransmission timer resends the SYN+ACK, then
 * the FIN. */
#include <criterion/criterion.h>
#include <errno.h>

#include "tcp_harness.h"

Test(tcp_syn_received, shutdown_in_simultaneous_open)
{
    struct harness *h = h_new(NULL);
    sock_syn_sent(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->rseq, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_SYN_RECEIVED);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    /* nothing answers: the SYN+ACK goes again */
    cr_assert_neq(h_wait_seg(h, SEC(5)), UINT64_MAX);
    EXPECT_SEG(h, .flags = SYN | ACK, .seq = h->lisn, .ack = h->rseq, .len = 0);
    /* the peer acknowledges our SYN only: the FIN is still owed */
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
    h_drain(h);
    cr_assert_neq(h_wait_seg(h, SEC(10)), UINT64_MAX);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + 1, .win = H_RWIN);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
    h_free(h);
}
