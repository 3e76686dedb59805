/* Buffer memory: rings sized by the data held and freed when drained,
 * out-of-order data held apart and bounded, a stack-wide cap with pressure
 * (Linux tcp_mem), and blind injection that never kills a transfer. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcp_harness.h"

#define TCP_WMEM_MIN_TEST 4096u    /* Linux tcp_wmem[0], tcp_int.h TCP_WMEM_MIN */

static bool seq_gt_test(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

static size_t mem(struct harness *h)
{
    return tcpsm_stack_mem(h->st, NULL, NULL);
}

/* One byte far ahead of a hole costs about one byte, not the ring up to
 * its offset (before: the ring grew to the offset, 24 KB per connection
 * in the measurement). */
Test(tcp_memory, out_of_order_memory_follows_data)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    cr_assert_eq(mem(h), 0);
    SEND(h, .flags = ACK, .seq = h->rseq + 30000, .ack = h->lseq, .win = H_RWIN, .data = "z",
         .len = 1);
    EXPECT_SEG(h, .flags = ACK, .ack = h->rseq, .len = 0);
    cr_assert_lt(mem(h), 128, "one out-of-order byte costs %zu bytes", mem(h));
    /* the hole fills: the data comes out in order, byte-exact */
    static uint8_t fill[30001];
    h_pattern(fill, 30000, 1);
    fill[30000] = 'z';
    for (uint32_t off = 0; off < 30000; off += 1000)
        SEND(h, .flags = ACK, .seq = h->rseq + off, .ack = h->lseq, .win = H_RWIN,
             .data = fill + off, .len = 1000);
    static uint8_t got[30001];
    h_app_recv(h, got, sizeof(got));
    cr_assert_arr_eq(got, fill, sizeof(got));
    h_free(h);
}

/* An idle connection holds no buffer: rings go when drained and ACKed. */
Test(tcp_memory, idle_connection_holds_no_buffers)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    uint8_t a[3000], b[2000];
    h_pattern(a, sizeof(a), 2);
    h_pattern(b, sizeof(b), 3);
    cr_assert_eq(tcpsm_sock_send(h->sk, a, sizeof(a), h->now), (ssize_t)sizeof(a));
    h_drain(h);
    cr_assert_gt(mem(h), 0);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq + sizeof(a), .win = H_RWIN, .data = b,
         .len = sizeof(b));
    h->lseq += sizeof(a);
    h->rseq += sizeof(b);
    uint8_t got[2000];
    h_app_recv(h, got, sizeof(got));
    cr_assert_arr_eq(got, b, sizeof(b));
    cr_assert_eq(mem(h), 0, "an idle connection still holds %zu bytes", mem(h));
    h_free(h);
}

/* Many connections sending only out-of-order data: the stack's buffer
 * memory stays under its cap; under pressure nothing more is kept out of
 * order; a connection sending in order still gets through. */
Test(tcp_memory, out_of_order_flood_bounded_by_cap)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.mem_max = 256 * 1024;
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 1024), 0);
    static uint8_t junk[1000];
    h_pattern(junk, sizeof(junk), 4);
    size_t peak = 0, cap = 0;
    for (unsigned c = 0; c < 300; c++) {
        uint16_t port = (uint16_t)(10000 + c);
        SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = 1460, .sport = port);
        struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = port);
        SEND(h, .flags = ACK, .seq = 101, .ack = s.seq + 1, .win = H_RWIN, .sport = port);
        for (unsigned k = 0; k < 10; k++) {
            SEND(h, .flags = ACK, .seq = 101 + 2000 + k * 2000, .ack = s.seq + 1, .win = H_RWIN,
                 .sport = port, .data = junk, .len = sizeof(junk));
            size_t m = tcpsm_stack_mem(h->st, &cap, NULL);
            if (m > peak)
                peak = m;
        }
        h_drain(h);
    }
    cr_assert_eq(cap, 256 * 1024);
    cr_assert_leq(peak, cap, "peak %zu over the cap %zu", peak, cap);
    const struct tcpsm_counters *k = tcpsm_stack_counters(h->st);
    cr_assert_geq(k->tcp_mem_pressure, 1);
    cr_assert_gt(k->tcp_drop_mem, 0);
    /* without a cap this would hold 300 * 10 * 1000 bytes */
    cr_assert_lt(peak, 300u * 10u * 1000u / 4);
    /* an honest connection still moves data in order */
    SEND(h, .flags = SYN, .seq = 100, .win = H_RWIN, .mss = 1460, .sport = 30000);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = 30000);
    SEND(h, .flags = ACK, .seq = 101, .ack = s.seq + 1, .win = H_RWIN, .sport = 30000);
    uint8_t d[8000];
    h_pattern(d, sizeof(d), 5);
    for (uint32_t off = 0; off < sizeof(d); off += 1000)
        SEND(h, .flags = ACK, .seq = 101 + off, .ack = s.seq + 1, .win = H_RWIN, .sport = 30000,
             .data = d + off, .len = 1000);
    struct tcpsm_sock *c = NULL, *x;
    while (tcpsm_sock_accept(h->lsk, &x) == 0) {
        uint32_t a;
        uint16_t p;
        tcpsm_sock_peer(x, &a, &p);
        if (p == 30000)
            c = x;
    }
    cr_assert_not_null(c);
    uint8_t got[8000];
    cr_assert_eq(tcpsm_sock_recv(c, got, sizeof(got), 0, h->now), (ssize_t)sizeof(got));
    cr_assert_arr_eq(got, d, sizeof(d));
    h_free(h);
}

/* Per connection, out-of-order data is bounded by segments held. */
Test(tcp_memory, out_of_order_segments_bounded)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    for (uint32_t i = 0; i < 500; i++)
        SEND(h, .flags = ACK, .seq = h->rseq + 10 + i * 20, .ack = h->lseq, .win = H_RWIN,
             .data = "q", .len = 1);
    cr_assert_lt(mem(h), 64 * 64, "%zu bytes for 500 one-byte segments", mem(h));
    cr_assert_gt(tcpsm_stack_counters(h->st)->tcp_drop_rcvbuf, 0);
    h_free(h);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* 10^5 blind RSTs, SYNs and data segments at guessed sequence and
 * acknowledgment numbers (RFC 5961), interleaved with a 1 MB transfer:
 * the transfer completes byte-exact and the connection lives. */
Test(tcp_memory, blind_injection_does_not_kill_transfer, .timeout = 60)
{
    struct harness *h = h_new(NULL);
    sock_established(h);
    enum { TOTAL = 1 << 20, SEG = 1000 };
    static uint8_t data[TOTAL], got[TOTAL];
    h_pattern(data, sizeof(data), 6);
    size_t sent = 0, rcvd = 0;
    unsigned inj = 0;
    while (rcvd < TOTAL) {
        uint32_t n = TOTAL - sent < SEG ? (uint32_t)(TOTAL - sent) : SEG;
        if (n) {
            SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN,
                 .data = data + sent, .len = n);
            h->rseq += n;
            sent += n;
        }
        for (int k = 0; k < 100 && inj < 100000; k++, inj++) {
            uint32_t seq = h->rseq + (rnd() % 2 ? rnd() % 65536 : rnd() * 65537u);
            if (seq == h->rseq)
                seq++;                  /* a blind attacker does not know RCV.NXT */
            uint32_t ack = rnd() * 2654435761u;
            switch (rnd() % 3) {
            case 0: SEND(h, .flags = RST, .seq = seq); break;
            case 1: SEND(h, .flags = SYN, .seq = seq, .win = 1000); break;
            default:
                SEND(h, .flags = ACK, .seq = seq, .ack = ack, .win = 1000, .data = "evil",
                     .len = 4);
                break;
            }
        }
        ssize_t r = tcpsm_sock_recv(h->sk, got + rcvd, TOTAL - rcvd, 0, h->now);
        if (r > 0)
            rcvd += (size_t)r;
        h_drain(h);
        h_advance(h, MS(1));
        cr_assert_eq(tcpsm_sock_state(h->sk), TCPSM_ESTABLISHED, "killed after %u injections", inj);
    }
    cr_assert_eq(inj, 100000);
    cr_assert_arr_eq(got, data, TOTAL);
    h_free(h);
}

/* The send side at the stack's memory cap (Linux tcp_mem[2] with
 * sk_wmem_schedule): send() refuses with EAGAIN instead of growing the
 * queue past the cap (each socket may still queue TCP_WMEM_MIN), the
 * refused socket is not writable, and it becomes writable again, and
 * sends, once another connection's ACKed data frees memory. */
Test(tcp_memory, send_refused_at_cap_then_resumes)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.mem_max = 128 * 1024;
    struct harness *h = h_new(&cfg);
    sock_listen(h);
    enum { N = 12 };
    struct tcpsm_sock *c[N];
    uint32_t iss[N];
    for (unsigned i = 0; i < N; i++) {
        uint16_t port = (uint16_t)(20000 + i);
        SEND(h, .flags = SYN, .seq = 100, .win = 0, .mss = 1460, .sport = port);
        struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .dport = port);
        iss[i] = s.seq;
        /* a zero window: nothing leaves, every byte written stays queued */
        SEND(h, .flags = ACK, .seq = 101, .ack = s.seq + 1, .win = 0, .sport = port);
        cr_assert_eq(tcpsm_sock_accept(h->lsk, &c[i]), 0);
    }
    static uint8_t buf[H_BUF];
    h_pattern(buf, sizeof(buf), 9);
    size_t queued[N], peak = 0, cap = 0;
    unsigned refused = 0, refused_at = N;
    for (unsigned i = 0; i < N; i++) {
        queued[i] = 0;
        for (;;) {
            ssize_t n = tcpsm_sock_send(c[i], buf, sizeof(buf) - queued[i], h->now);
            if (n == -EAGAIN)
                break;
            cr_assert_gt(n, 0, "send: %zd", n);
            queued[i] += (size_t)n;
            if (queued[i] == sizeof(buf))
                break;
        }
        size_t m = tcpsm_stack_mem(h->st, &cap, NULL);
        if (m > peak)
            peak = m;
        cr_assert_geq(queued[i], TCP_WMEM_MIN_TEST, "connection %u queued only %zu", i, queued[i]);
        if (queued[i] < sizeof(buf)) {
            refused++;
            if (refused_at == N)
                refused_at = i;
            cr_assert_eq(tcpsm_sock_poll(c[i]) & TCPSM_POLLOUT, 0,
                         "refused at the cap but reported writable");
        }
        h_drain(h);
    }
    cr_assert_gt(refused, 0, "no send was refused: %zu bytes under a cap of %zu", peak, cap);
    /* the cap holds, apart from the TCP_WMEM_MIN every socket may queue */
    cr_assert_leq(peak, cap + N * TCP_WMEM_MIN_TEST, "peak %zu over the cap %zu", peak, cap);
    /* the first two connections' peers open their windows and ACK everything */
    for (unsigned i = 0; i < 2; i++) {
        uint16_t port = (uint16_t)(20000 + i);
        uint32_t end = iss[i] + 1, stop = iss[i] + 1 + (uint32_t)queued[i];
        for (unsigned round = 0; end != stop; round++) {
            cr_assert_lt(round, 100, "the data did not leave");
            SEND(h, .flags = ACK, .seq = 101, .ack = end, .win = H_RWIN, .sport = port);
            struct seg o;
            while (recv_seg(h, &o))
                if (o.dport == port && seq_gt_test(o.seq + (uint32_t)o.len, end))
                    end = o.seq + (uint32_t)o.len;
        }
        SEND(h, .flags = ACK, .seq = 101, .ack = end, .win = H_RWIN, .sport = port);
        h_drain(h);
    }
    cr_assert_lt(tcpsm_stack_mem(h->st, NULL, NULL), cap - cap / 16, "mem %zu peak %zu q0 %zu q1 %zu q2 %zu", tcpsm_stack_mem(h->st, NULL, NULL), peak, queued[0], queued[1], queued[2]);
    unsigned r = refused_at;
    cr_assert_neq(tcpsm_sock_poll(c[r]) & TCPSM_POLLOUT, 0, "not writable after memory freed");
    ssize_t n = tcpsm_sock_send(c[r], buf, sizeof(buf) - queued[r], h->now);
    cr_assert_gt(n, 0, "send after memory freed: %zd", n);
    h_free(h);
}
