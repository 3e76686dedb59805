/* Sequence-number arithmetic modulo 2^32 (RFC 9293 3.4), including the
 * wrap-around from 0xFFFFFFFF to 0 and the half-space boundary. */
#include <criterion/criterion.h>

#include "tcp_seq.h"

Test(tcp_seq, lt_le_gt_ge_plain)
{
    cr_assert(seq_lt(1, 2));
    cr_assert(!seq_lt(2, 1));
    cr_assert(!seq_lt(5, 5));
    cr_assert(seq_le(5, 5));
    cr_assert(seq_le(4, 5));
    cr_assert(!seq_le(6, 5));
    cr_assert(seq_gt(2, 1));
    cr_assert(!seq_gt(1, 2));
    cr_assert(!seq_gt(7, 7));
    cr_assert(seq_ge(7, 7));
    cr_assert(seq_ge(8, 7));
    cr_assert(!seq_ge(6, 7));
}

Test(tcp_seq, across_wrap)
{
    /* 0xFFFFFFF0 comes before 0x10: the numbers wrapped, they did not go back. */
    cr_assert(seq_lt(0xFFFFFFF0u, 0x10u));
    cr_assert(seq_le(0xFFFFFFF0u, 0x10u));
    cr_assert(seq_gt(0x10u, 0xFFFFFFF0u));
    cr_assert(seq_ge(0x10u, 0xFFFFFFF0u));
    cr_assert(!seq_gt(0xFFFFFFF0u, 0x10u));
    cr_assert(!seq_lt(0x10u, 0xFFFFFFF0u));
    cr_assert(seq_lt(0xFFFFFFFFu, 0u));
    cr_assert(seq_gt(0u, 0xFFFFFFFFu));
    cr_assert(seq_le(0xFFFFFFFFu, 0xFFFFFFFFu));
    cr_assert(seq_ge(0u, 0u));
}

Test(tcp_seq, half_space_boundary)
{
    /* Up to 2^31-1 ahead is "later"; exactly 2^31 apart is "earlier"
     * (signed difference INT32_MIN), the documented asymmetry. */
    cr_assert(seq_gt(0x7FFFFFFFu, 0u));
    cr_assert(seq_lt(0u, 0x7FFFFFFFu));
    cr_assert(seq_lt(0x80000000u, 0u));
    cr_assert(seq_gt(0xFFFFFFF0u + 0x7FFFFFFFu, 0xFFFFFFF0u));
}

Test(tcp_seq, in_window)
{
    cr_assert(seq_in(100, 100, 200));
    cr_assert(seq_in(199, 100, 200));
    cr_assert(!seq_in(200, 100, 200));
    cr_assert(!seq_in(99, 100, 200));
    /* An empty window holds nothing. */
    cr_assert(!seq_in(100, 100, 100));
}

Test(tcp_seq, in_window_across_wrap)
{
    uint32_t lo = 0xFFFFFFF0u, hi = 0x10u;
    cr_assert(seq_in(0xFFFFFFF0u, lo, hi));
    cr_assert(seq_in(0xFFFFFFFFu, lo, hi));
    cr_assert(seq_in(0u, lo, hi));
    cr_assert(seq_in(0xFu, lo, hi));
    cr_assert(!seq_in(0x10u, lo, hi));
    cr_assert(!seq_in(0xFFFFFFEFu, lo, hi));
    cr_assert(!seq_in(0x80000000u, lo, hi));
}

Test(tcp_seq, min_max_across_wrap)
{
    cr_assert_eq(seq_max(0xFFFFFFF0u, 0x10u), 0x10u);
    cr_assert_eq(seq_min(0xFFFFFFF0u, 0x10u), 0xFFFFFFF0u);
    cr_assert_eq(seq_max(3, 9), 9u);
    cr_assert_eq(seq_min(3, 9), 3u);
    cr_assert_eq(seq_max(4, 4), 4u);
}

Test(tcp_seq, sum_and_difference_wrap)
{
    /* Advancing past 2^32 and measuring distances stays consistent. */
    uint32_t isn = 0xFFFFFFF0u;
    uint32_t after = isn + 1 + 100;
    cr_assert_eq(after, 0x55u);
    cr_assert_eq(after - isn, 101u);
    cr_assert(seq_gt(after, isn));
    cr_assert(seq_in(isn + 50, isn, after));
}
