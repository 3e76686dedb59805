/* TCPSM_TRACE line formatting. */
#include <criterion/criterion.h>
#include <string.h>

#include "trace_log.h"

Test(trace_log, flags)
{
    char b[40];
    trace_flags(b, sizeof(b), TCPSM_SYN | TCPSM_ACK);
    cr_assert_str_eq(b, "SYN+ACK");
    trace_flags(b, sizeof(b), TCPSM_FIN | TCPSM_ACK | TCPSM_PSH);
    cr_assert_str_eq(b, "FIN+PSH+ACK");
    trace_flags(b, sizeof(b), TCPSM_RST);
    cr_assert_str_eq(b, "RST");
    trace_flags(b, sizeof(b), 0);
    cr_assert_str_eq(b, "none");
}

Test(trace_log, state_names)
{
    cr_assert_str_eq(trace_state_name(TCPSM_SYN_SENT), "SYN-SENT");
    cr_assert_str_eq(trace_state_name(TCPSM_TIME_WAIT), "TIME-WAIT");
    cr_assert_str_eq(trace_state_name(TCPSM_CLOSED), "CLOSED");
    cr_assert_str_eq(trace_state_name(-1), "?");
    cr_assert_str_eq(trace_state_name(TCPSM_NSTATES), "?");
}

Test(trace_log, line_with_segment)
{
    struct tcpsm_trace_event ev = {
        .now = 5000812345ull, .laddr = 0xc612000au, .raddr = 0xc6120002u, .lport = 40312,
        .rport = 80, .old_state = TCPSM_SYN_SENT, .new_state = TCPSM_ESTABLISHED,
        .why = "rcv SYN+ACK", .has_seg = true, .dir = '<', .seg_flags = TCPSM_SYN | TCPSM_ACK,
        .seg_seq = 123, .seg_ack = 456, .seg_len = 0, .seg_wnd = 64240,
    };
    char b[320];
    size_t n = trace_format(b, sizeof(b), &ev, 5000000000ull);
    const char *want = "tcpsm: 198.18.0.10:40312 > 198.18.0.2:80  SYN-SENT -> ESTABLISHED  "
                       "< SYN+ACK seq=123 ack=456 win=64240 len=0  +0.000812s\n";
    cr_assert_str_eq(b, want);
    cr_assert_eq(n, strlen(want));
}

Test(trace_log, line_without_segment)
{
    struct tcpsm_trace_event ev = {
        .now = 62000000000ull, .laddr = 0xc612000au, .raddr = 0xc6120001u, .lport = 5000,
        .rport = 40000, .old_state = TCPSM_TIME_WAIT, .new_state = TCPSM_CLOSED, .why = "2msl",
    };
    char b[320];
    trace_format(b, sizeof(b), &ev, 2000000000ull);
    cr_assert_str_eq(b, "tcpsm: 198.18.0.10:5000 > 198.18.0.1:40000  TIME-WAIT -> CLOSED  (2msl)"
                        "  +60.000000s\n");
}

Test(trace_log, truncation_is_bounded)
{
    struct tcpsm_trace_event ev = { .laddr = 1, .raddr = 2, .why = "x" };
    char b[16];
    size_t n = trace_format(b, sizeof(b), &ev, 0);
    cr_assert_eq(n, 15);
    cr_assert_eq(strlen(b), 15);
}
