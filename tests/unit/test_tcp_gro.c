/* Software GRO (tcp_gro.c): which frames of one input batch are taken into
 * the in-order segment before them, per Linux's tcp_gro_receive rules, and
 * that the data always arrives exact, merged or not. Each test hands the
 * stack one batch (h_batch_begin/end), as the runtime does. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "tcp_harness.h"
#include "tcp_int.h"
#include "tcpsm/core.h"

#define SEG 1448u

static uint8_t d[32 * SEG];

static struct harness *est(void)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    h_no_quickack(h);
    h_pattern(d, sizeof d, 77);
    return h;
}

static uint64_t merged(struct harness *h)
{
    return tcpsm_stack_counters(h->st)->tcp_gro_frames;
}

/* Pushes segment i (SEG bytes of d at offset off, len bytes) into the batch. */
static void seg_at(struct harness *h, uint32_t off, uint32_t len, uint8_t flags, uint16_t win)
{
    SEND(h, .flags = flags, .seq = h->rseq + off, .ack = h->lseq, .win = win, .data = d + off,
         .len = len);
}

static void read_exact(struct harness *h, uint32_t n)
{
    static uint8_t b[sizeof d];
    h_app_recv(h, b, n);
    cr_assert(memcmp(b, d, n) == 0, "the data differs");
}

Test(tcp_gro, contiguous_in_order_frames_merged_and_acked_once)
{
    struct harness *h = est();
    uint64_t in0 = tcpsm_stack_counters(h->st)->tcp_in;
    h_batch_begin(h);
    for (uint32_t i = 0; i < 8; i++)
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h_batch_end(h);
    cr_assert_eq(merged(h), 7, "seven frames taken into the first");
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_in - in0, 8, "counted as frames");
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq + 8 * SEG, .len = 0);
    expect_no_seg(h);
    read_exact(h, 8 * SEG);
    h_free(h);
}

Test(tcp_gro, psh_ends_the_run_with_its_segment)
{
    struct harness *h = est();
    h_batch_begin(h);
    seg_at(h, 0, SEG, ACK, H_RWIN);
    seg_at(h, SEG, SEG, ACK | TCPSM_PSH, H_RWIN);
    seg_at(h, 2 * SEG, SEG, ACK, H_RWIN);
    seg_at(h, 3 * SEG, SEG, ACK, H_RWIN);
    h_batch_end(h);
    cr_assert_eq(merged(h), 2, "1+PSH, then 3+4: %llu", (unsigned long long)merged(h));
    read_exact(h, 4 * SEG);
    h_free(h);
}

Test(tcp_gro, shorter_segment_ends_the_run)
{
    struct harness *h = est();
    h_batch_begin(h);
    seg_at(h, 0, SEG, ACK, H_RWIN);
    seg_at(h, SEG, 500, ACK, H_RWIN);
    seg_at(h, SEG + 500, SEG, ACK, H_RWIN);
    h_batch_end(h);
    cr_assert_eq(merged(h), 1, "the 500-byte segment closes the first run");
    read_exact(h, 2 * SEG + 500);
    h_free(h);
}

Test(tcp_gro, header_differences_keep_frames_apart)
{
    struct harness *h = est();
    h_batch_begin(h);
    seg_at(h, 0, SEG, ACK, H_RWIN);
    seg_at(h, SEG, SEG, ACK, H_RWIN - 1);          /* another window */
    SEND(h, .flags = ACK, .seq = h->rseq + 2 * SEG, .ack = h->lseq - 1, .win = H_RWIN - 1,
         .data = d + 2 * SEG, .len = SEG);          /* another ACK number */
    seg_at(h, 3 * SEG, SEG, ACK | TCPSM_FIN, H_RWIN - 1); /* FIN: never merged */
    h_batch_end(h);
    cr_assert_eq(merged(h), 0);
    read_exact(h, 4 * SEG);
    h_free(h);
}

Test(tcp_gro, out_of_order_frames_not_merged)
{
    struct harness *h = est();
    h_batch_begin(h);
    for (uint32_t i = 1; i < 5; i++)                /* a hole at 0 */
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h_batch_end(h);
    cr_assert_eq(merged(h), 0, "nothing at RCV.NXT: no merge");
    h_drain(h);
    h_batch_begin(h);
    seg_at(h, 0, SEG, ACK, H_RWIN);
    h_batch_end(h);
    read_exact(h, 5 * SEG);
    h_free(h);
}

Test(tcp_gro, bad_checksum_ends_the_run_and_is_dropped)
{
    struct harness *h = est();
    h_batch_begin(h);
    for (uint32_t i = 0; i < 5; i++)
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h->batch[2].data[h->batch[2].len - 1] ^= 0x40; /* payload of the third */
    h_batch_end(h);
    cr_assert_eq(merged(h), 1, "first two merged; the bad one alone, then dropped");
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_csum, 1);
    h_drain(h);
    h_batch_begin(h);
    seg_at(h, 2 * SEG, SEG, ACK, H_RWIN);           /* the retransmission */
    h_batch_end(h);
    read_exact(h, 5 * SEG);
    h_free(h);
}

Test(tcp_gro, run_cut_at_the_receive_window)
{
    struct harness *h = est();
    uint32_t room = h->lwin;                        /* what the stack offered (no scaling yet) */
    cr_assert(room > 2 * SEG && room < sizeof d - SEG, "window %u", room);
    uint32_t n = room / SEG + 1;                    /* one frame past the right edge */
    h_batch_begin(h);
    for (uint32_t i = 0; i < n && i < 64; i++)
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h_batch_end(h);
    read_exact(h, room);
    h_free(h);
}

Test(tcp_gro, bad_ip_header_checksum_not_merged)
{
    struct harness *h = est();
    h_batch_begin(h);
    for (uint32_t i = 0; i < 3; i++)
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h->batch[1].data[14 + 4] ^= 0x01;               /* IP ID of the second: header sum wrong */
    /* as a link that validated the TCP sums hands them over: the IP header is still checked */
    struct tcpsm_frame fr[3];
    for (unsigned i = 0; i < 3; i++)
        fr[i] = (struct tcpsm_frame){ .data = h->batch[i].data, .len = h->batch[i].len,
                                      .flags = TCPSM_FRAME_CSUM_VALID };
    h->batching = false;
    tcpsm_stack_input(h->st, fr, 3, h->now);
    for (unsigned i = 0; i < 3; i++)
        free(h->batch[i].data);
    h->nbatch = 0;
    cr_assert_eq(merged(h), 0, "the second does not join; the third is out of order then");
    cr_assert_eq(tcpsm_stack_counters(h->st)->ip_drop_csum, 1);
    h_drain(h);
    h_batch_begin(h);
    seg_at(h, SEG, SEG, ACK, H_RWIN);
    h_batch_end(h);
    read_exact(h, 3 * SEG);
    h_free(h);
}

/* The TCP checksum of a merged frame is verified as its payload is copied
 * into the receive buffer: a frame cut by the window's right edge is still
 * summed whole, and a bad one is not taken, not even the part inside. */
Test(tcp_gro, bad_checksum_beyond_the_window_edge_not_taken)
{
    struct harness *h = est();
    uint32_t room = h->lwin;
    uint32_t edge = room / SEG;                     /* the frame the edge cuts */
    cr_assert(room % SEG != 0 && edge >= 2 && edge < 40, "window %u", room);
    h_batch_begin(h);
    for (uint32_t i = 0; i <= edge; i++)
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h->batch[edge].data[h->batch[edge].len - 1] ^= 0x01;   /* past the edge */
    h_batch_end(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_csum, 1);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .len = 0);
    cr_assert_eq(s.ack, h->rseq + edge * SEG, "ACK %u, the frames before the bad one",
                 s.ack - h->rseq);
    h_drain(h);
    read_exact(h, edge * SEG);
    h_free(h);
}

/* ... and a good one cut there is taken up to the edge, its sum checked
 * over all of it. */
Test(tcp_gro, good_frame_cut_at_the_window_edge_taken_in_part)
{
    struct harness *h = est();
    uint32_t room = h->lwin;
    uint32_t edge = room / SEG;
    cr_assert(room % SEG != 0 && edge >= 2 && edge < 40, "window %u", room);
    h_batch_begin(h);
    for (uint32_t i = 0; i <= edge; i++)
        seg_at(h, i * SEG, SEG, ACK, H_RWIN);
    h_batch_end(h);
    cr_assert_eq(tcpsm_stack_counters(h->st)->tcp_drop_csum, 0);
    cr_assert_eq(merged(h), edge);
    struct seg s = EXPECT_SEG(h, .flags = ACK, .len = 0);
    cr_assert_eq(s.ack, h->rseq + room, "ACK %u of %u", s.ack - h->rseq, room);
    h_drain(h);
    read_exact(h, room);
    h_free(h);
}

/* The fold's sum over a wrapping receive ring at any offset parity. */
Test(tcp_gro, ring_write_csum_wraps_at_any_parity)
{
    static uint8_t buf[1024], src[700];
    h_pattern(src, sizeof src, 5);
    for (uint32_t head = 1000; head < 1024; head += 3)
        for (uint32_t at = 0; at < 4; at++)
            for (uint32_t n = 1; n <= sizeof src; n += 67) {
                struct tcp_ring r = { .buf = buf, .cap = sizeof buf, .head = head, .len = 0 };
                memset(buf, 0, sizeof buf);
                uint32_t s = ring_write_csum_at(&r, 5, src, n, 0x55, at);
                cr_assert_eq(csum_fold(s), csum_fold(csum_partial_at(src, n, 0x55, at)),
                             "head %u at %u n %u",
                             head, at, n);
                uint8_t back[sizeof src];
                ring_read_at(&r, 5, back, n);
                cr_assert(memcmp(back, src, n) == 0, "head %u n %u", head, n);
            }
}
