/* Segments that reach the stack in one receive batch (one tcpsm_stack_input
 * call): in-order data is acknowledged once, at the end of the batch, and
 * the owner is woken once; out-of-order data still gets its duplicate ACK
 * at once (RFC 5681 4.2). */
#include "tcp_harness.h"

static unsigned events;

static void count_event(void *ctx, struct tcpsm_sock *sk, unsigned ev)
{
    (void)ctx;
    (void)sk;
    (void)ev;
    events++;
}

static struct harness *established(void)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.sock_event = count_event;
    struct harness *h = h_new(&cfg);
    sock_established(h);
    h_no_quickack(h);                   /* the steady state: delayed ACKs */
    h_drain(h);
    events = 0;
    return h;
}

static size_t mss_of(const struct harness *h)
{
    return h->lmss < 1460 ? h->lmss : 1460;
}

Test(tcp_batch, in_order_segments_one_ack_at_batch_end)
{
    struct harness *h = established();
    size_t mss = mss_of(h);
    uint8_t d[6 * 1460];
    h_pattern(d, sizeof d, 7);
    h_batch_begin(h);
    for (unsigned i = 0; i < 6; i++)
        SEND(h, .flags = ACK, .seq = h->rseq + i * (uint32_t)mss, .ack = h->lseq, .win = H_RWIN,
             .data = d + i * mss, .len = mss);
    h_batch_end(h);
    h->rseq += 6 * (uint32_t)mss;
    /* one cumulative ACK for all six, sent before the input call returns */
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0,
               .win = h->lwin - 6 * mss);
    expect_no_seg(h);
    cr_assert_eq(events, 1, "one wake-up per batch, got %u", events);
    h_advance(h, MS(500));
    expect_no_seg(h);
    uint8_t got[6 * 1460];
    h_app_recv(h, got, 6 * mss);
    cr_assert_arr_eq(got, d, 6 * mss);
    h_free(h);
}

Test(tcp_batch, single_segment_batch_still_delayed)
{
    struct harness *h = established();
    h_batch_begin(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "abcd", .len = 4);
    h_batch_end(h);
    h->rseq += 4;
    /* one segment: the delayed-ACK timer, not the batch end (RFC 1122 4.2.3.2) */
    expect_no_seg(h);
    cr_assert_eq(events, 1);
    uint64_t waited = h_wait_seg(h, MS(500));
    cr_assert(waited <= MS(40), "delayed ACK after %llu ns", (unsigned long long)waited);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    h_free(h);
}

Test(tcp_batch, out_of_order_in_batch_dup_ack_each)
{
    struct harness *h = established();
    size_t mss = mss_of(h);
    uint8_t d[4 * 1460];
    h_pattern(d, sizeof d, 9);
    uint32_t base = h->rseq;
    h_batch_begin(h);
    /* segment 0 in order, 2 and 3 beyond a hole at 1 */
    SEND(h, .flags = ACK, .seq = base, .ack = h->lseq, .win = H_RWIN, .data = d, .len = mss);
    SEND(h, .flags = ACK, .seq = base + 2 * (uint32_t)mss, .ack = h->lseq, .win = H_RWIN,
         .data = d + 2 * mss, .len = mss);
    SEND(h, .flags = ACK, .seq = base + 3 * (uint32_t)mss, .ack = h->lseq, .win = H_RWIN,
         .data = d + 3 * mss, .len = mss);
    h_batch_end(h);
    /* a duplicate ACK for each out-of-order segment, none held back */
    EXPECT_SEG(h, .flags = ACK, .ack = base + (uint32_t)mss, .len = 0);
    EXPECT_SEG(h, .flags = ACK, .ack = base + (uint32_t)mss, .len = 0);
    expect_no_seg(h);
    /* the hole filled, in a batch with one more in-order segment: one ACK
     * at once (a filled hole is ACKed immediately, RFC 5681 4.2) */
    h_batch_begin(h);
    SEND(h, .flags = ACK, .seq = base + (uint32_t)mss, .ack = h->lseq, .win = H_RWIN,
         .data = d + mss, .len = mss);
    h_batch_end(h);
    EXPECT_SEG(h, .flags = ACK, .ack = base + 4 * (uint32_t)mss, .len = 0);
    expect_no_seg(h);
    uint8_t got[4 * 1460];
    h_app_recv(h, got, 4 * mss);
    cr_assert_arr_eq(got, d, 4 * mss);
    h_free(h);
}

Test(tcp_batch, separate_inputs_ack_every_second_segment)
{
    struct harness *h = established();
    size_t mss = mss_of(h);
    uint8_t d[4 * 1460];
    h_pattern(d, sizeof d, 11);
    for (unsigned i = 0; i < 4; i++) {
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
             .data = d + i * mss, .len = mss);
        h->rseq += (uint32_t)mss;
        if (i % 2)
            EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
        else
            expect_no_seg(h);
    }
    cr_assert_eq(events, 4);
    h_free(h);
}
