/* Sender loss recovery (RFC 6675 SACK, RFC 6582 NewReno) over the
 * in-memory link with seeded loss, reordering and delay: a one-way bulk
 * upload from A to B, with every frame A sends inspected on the way out.
 * Counted properties only, never time: retransmissions are whole segments
 * (none shorter than the MSS except the tail of the stream), and losses
 * are repaired by fast retransmit far more often than by the RTO; a
 * recovery caused by reordering alone is undone, one after a real loss not. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netdev_mem.h"
#include "tcp_seq.h"
#include "tcpsm/core.h"

#define R_A 0xC6120101u         /* 198.18.1.1 */
#define R_B 0xC6120102u         /* 198.18.1.2 */
#define R_PORT 5002
#define R_T0 1000000000ull
#define R_SEC 1000000000ull

/* A's netdev: looks at each TCP data segment, then hands it to the link. */
struct tap {
    struct tcpsm_netdev dev;
    struct tcpsm_netdev *inner;
    bool have_max;
    uint32_t max_end;           /* highest sequence number sent + 1 */
    uint32_t mss_seen;          /* longest payload sent */
    unsigned rtx, short_rtx;    /* retransmitted data segments / of them shorter than mss_seen */
    uint32_t short_end[4096];   /* where each short retransmission ended */
};

static unsigned tap_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    struct tap *t = dev->priv;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = f[i].data;
        if (f[i].len < 14 + 20 || p[12] != 0x08 || p[13] != 0x00 || p[14 + 9] != 6)
            continue;
        size_t ihl = (size_t)(p[14] & 15) * 4;
        size_t tot = (size_t)p[16] << 8 | p[17];
        const uint8_t *tcp = p + 14 + ihl;
        size_t thl = (size_t)(tcp[12] >> 4) * 4;
        uint32_t len = (uint32_t)(tot - ihl - thl);
        if (!len)
            continue;
        uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 | (uint32_t)tcp[6] << 8 |
                       tcp[7];
        if (len > t->mss_seen)
            t->mss_seen = len;
        if (t->have_max && seq_lt(seq, t->max_end)) {
            t->rtx++;
            if (len < t->mss_seen && t->short_rtx < 4096)
                t->short_end[t->short_rtx++] = seq + len;
        }
        if (!t->have_max || seq_gt(seq + len, t->max_end))
            t->max_end = seq + len;
        t->have_max = true;
    }
    return t->inner->ops->send(t->inner, f, n);
}

static const struct tcpsm_netdev_ops tap_ops = { .send = tap_send };

struct up {
    struct memlink *l;
    struct tap tap;
    struct tcpsm_stack *a, *b;
    struct tcpsm_sock *lsk, *cs, *ss;
    uint64_t now, total, sent, got;
    unsigned bad;
    bool shut, eof;
};

static uint8_t ubyte(uint64_t off)
{
    return (uint8_t)(off * 2654435761u >> 13);
}

static struct tcpsm_stack *mk(struct tcpsm_netdev *dev, uint32_t addr, uint8_t m, uint64_t now)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = addr;
    c.prefix_len = 24;
    memcpy(c.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 1, m }, 6);
    c.secret[0] = 0x3333u * m;
    c.secret[1] = 0x4444u * m;
    c.msl_ms = 1000;
    /* a window (64 KiB, 45 segments) the receiver's out-of-order queue
     * (TCP_OFO_SEGS_MAX, 64 segments) can hold: else it drops data above a
     * hole and a loss-free link loses segments */
    c.rcvbuf = 64 * 1024;
    struct tcpsm_stack *st = tcpsm_stack_new(&c, dev, now);
    cr_assert_not_null(st);
    return st;
}

static bool up_pump(void *arg)
{
    struct up *u = arg;
    if (!u->ss)
        tcpsm_sock_accept(u->lsk, &u->ss);
    int st = tcpsm_sock_state(u->cs);
    if (st != TCPSM_SYN_SENT && st != TCPSM_SYN_RECEIVED) {
        uint8_t buf[16384];
        while (u->sent < u->total) {
            size_t n = u->total - u->sent < sizeof buf ? (size_t)(u->total - u->sent) : sizeof buf;
            for (size_t k = 0; k < n; k++)
                buf[k] = ubyte(u->sent + k);
            ssize_t r = tcpsm_sock_send(u->cs, buf, n, u->now);
            if (r <= 0) {
                cr_assert_eq(r, -EAGAIN, "send: %zd", r);
                break;
            }
            u->sent += (uint64_t)r;
        }
        if (u->sent == u->total && !u->shut) {
            cr_assert_eq(tcpsm_sock_shutdown(u->cs, 1, u->now), 0);
            u->shut = true;
        }
    }
    if (u->ss) {
        uint8_t buf[65536];
        ssize_t r;
        while ((r = tcpsm_sock_recv(u->ss, buf, sizeof buf, 0, u->now)) > 0) {
            for (ssize_t k = 0; k < r; k++)
                u->bad += buf[k] != ubyte(u->got + (uint64_t)k);
            u->got += (uint64_t)r;
        }
        if (r == 0)
            u->eof = true;
        else
            cr_assert_eq(r, -EAGAIN, "recv: %zd", r);
    }
    return u->eof;
}

/* A uploads total bytes to B through the link; checks every byte. */
static struct up *upload(const struct memlink_params *lp, uint64_t seed, uint64_t total)
{
    struct up *u = calloc(1, sizeof *u);
    cr_assert_not_null(u);
    u->l = memlink_new(lp, seed);
    cr_assert_not_null(u->l);
    u->now = R_T0;
    memlink_set_now(u->l, u->now);
    u->tap.inner = memlink_dev(u->l, 0);
    u->tap.dev = (struct tcpsm_netdev){ .ops = &tap_ops, .mtu = u->tap.inner->mtu,
                                        .features = 0, .priv = &u->tap };
    u->a = mk(&u->tap.dev, R_A, 1, u->now);
    u->b = mk(memlink_dev(u->l, 1), R_B, 2, u->now);
    u->total = total;
    cr_assert_eq(tcpsm_sock_new(u->b, &u->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(u->lsk, 0, R_PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(u->lsk, 4), 0);
    cr_assert_eq(tcpsm_sock_new(u->a, &u->cs), 0);
    cr_assert_eq(tcpsm_sock_connect(u->cs, R_B, R_PORT, u->now), -EINPROGRESS);
    uint64_t end = u->now + 3600 * R_SEC;
    bool ok = false;
    while (!ok && u->now < end)
        ok = memlink_run(u->l, u->a, u->b, &u->now, end, up_pump, u);
    cr_assert(ok, "upload did not finish: sent %llu, got %llu", (unsigned long long)u->sent,
              (unsigned long long)u->got);
    cr_assert_eq(u->got, total);
    cr_assert_eq(u->bad, 0, "%u bytes differ", u->bad);
    return u;
}

static void up_free(struct up *u)
{
    tcpsm_stack_free(u->a);
    tcpsm_stack_free(u->b);
    memlink_free(u->l);
    free(u);
}

/* Retransmissions shorter than a full segment that are not the stream's tail. */
static unsigned short_rtx_mid(const struct up *u)
{
    unsigned n = 0;
    for (unsigned i = 0; i < u->tap.short_rtx; i++)
        n += u->tap.short_end[i] != u->tap.max_end;
    return n;
}

/* The capture's conditions: loss 10 %, reordering 20 %, delay 5 +- 3 ms. */
static const struct memlink_params lossy = {
    .loss_pct = 10, .reorder_pct = 20, .delay_ns = 5000000, .jitter_ns = 3000000,
};

Test(tcp_recovery, retransmits_whole_segments)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct up *u = upload(&lossy, seed, 2u << 20);
        const struct tcpsm_counters *c = tcpsm_stack_counters(u->a);
        cr_assert(memlink_stats(u->l, 0)->lost > 50, "the link lost too little to test");
        cr_assert(u->tap.rtx > 50, "seed %llu: only %u retransmissions",
                  (unsigned long long)seed, u->tap.rtx);
        cr_assert_eq(short_rtx_mid(u), 0,
                     "seed %llu: %u of %u retransmissions shorter than %u bytes mid-stream "
                     "(rto %llu, fast %llu)", (unsigned long long)seed, short_rtx_mid(u),
                     u->tap.rtx, u->tap.mss_seen, (unsigned long long)c->tcp_rto,
                     (unsigned long long)c->tcp_fast_retrans);
        up_free(u);
    }
}

/* Fast retransmit repairs most losses; the RTO is the exception (RFC 6675
 * 5, RFC 5681 3.2): no more RTOs than half the fast recoveries. */
Test(tcp_recovery, fast_retransmit_not_rto)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct up *u = upload(&lossy, seed, 2u << 20);
        const struct tcpsm_counters *c = tcpsm_stack_counters(u->a);
        cr_assert(c->tcp_fast_retrans > 10, "seed %llu: fast %llu", (unsigned long long)seed,
                  (unsigned long long)c->tcp_fast_retrans);
        cr_assert(c->tcp_rto * 2 <= c->tcp_fast_retrans,
                  "seed %llu: rto %llu vs fast retransmits %llu (retransmitted segs %u)",
                  (unsigned long long)seed, (unsigned long long)c->tcp_rto,
                  (unsigned long long)c->tcp_fast_retrans, u->tap.rtx);
        up_free(u);
    }
}

/* Reordering without loss: every fast retransmit is spurious. The
 * timestamps show it (RFC 3522) and the cwnd reduction is undone
 * (RFC 4015) for most of them, counted in tcp_undo. */
Test(tcp_recovery, reordering_undoes_cwnd_reduction)
{
    struct memlink_params lp = { .reorder_pct = 10, .delay_ns = 5000000, .jitter_ns = 2000000 };
    for (uint64_t seed = 1; seed <= 2; seed++) {
        struct up *u = upload(&lp, seed, 2u << 20);
        const struct tcpsm_counters *c = tcpsm_stack_counters(u->a);
        /* the receiver's D-SACKs widen the sender's reordering window
         * (RFC 8985 6.2 step 4), so a few recoveries are left: 8-10 */
        cr_assert(c->tcp_fast_retrans >= 5, "seed %llu: only %llu recoveries",
                  (unsigned long long)seed, (unsigned long long)c->tcp_fast_retrans);
        cr_assert(c->tcp_undo * 2 >= c->tcp_fast_retrans && c->tcp_undo <= c->tcp_fast_retrans,
                  "seed %llu: %llu of %llu spurious recoveries undone", (unsigned long long)seed,
                  (unsigned long long)c->tcp_undo, (unsigned long long)c->tcp_fast_retrans);
        cr_assert_eq(c->tcp_rto, 0, "seed %llu: %llu RTOs (fast %llu, undo %llu, rack %llu, tlp %llu)",
                     (unsigned long long)seed, (unsigned long long)c->tcp_rto,
                     (unsigned long long)c->tcp_fast_retrans, (unsigned long long)c->tcp_undo,
                     (unsigned long long)c->tcp_rack_lost, (unsigned long long)c->tcp_tlp);
        up_free(u);
    }
}

/* Loss without reordering: the fast retransmissions repaired real losses,
 * the original never arrived, none is undone. An RTO may be: when the ACK
 * of a retransmission is lost, the timestamps of the next ACK show the
 * data had arrived (Eifel, RFC 3522/4015; Linux tcp_try_undo_loss). */
Test(tcp_recovery, real_loss_not_undone)
{
    struct memlink_params lp = { .loss_pct = 3, .delay_ns = 5000000 };
    struct up *u = upload(&lp, 5, 2u << 20);
    const struct tcpsm_counters *c = tcpsm_stack_counters(u->a);
    cr_assert(c->tcp_fast_retrans > 10);
    uint64_t rto_undo = c->tcp_loss_undo + c->tcp_spurious_rto;
    cr_assert_eq(c->tcp_undo - rto_undo, 0, "%llu recoveries undone (rto %llu, of them undone %llu)",
                 (unsigned long long)(c->tcp_undo - rto_undo), (unsigned long long)c->tcp_rto,
                 (unsigned long long)rto_undo);
    cr_assert_leq(rto_undo, c->tcp_rto);
    up_free(u);
}
