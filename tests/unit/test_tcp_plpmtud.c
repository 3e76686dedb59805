/* Packetization-layer path MTU discovery over the in-memory link (RFC 4821
 * / RFC 8899, as Linux's tcp_mtu_probing = 1): a path that silently drops
 * IP datagrams over N bytes (no ICMP) makes the sender find the black hole
 * by its RTOs, then probe upward to the largest MSS that passes; the
 * probes' losses cost no cwnd. When the path gets better (N raised), the
 * search starts again after the probe interval and the MSS comes back up.
 * Every byte is checked end to end; counted properties only, never time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "netdev_mem.h"
#include "tcpsm/core.h"

#define P_A    0xC6120101u              /* 198.18.1.1 */
#define P_B    0xC6120102u              /* 198.18.1.2 */
#define P_PORT 5003
#define P_SEC  1000000000ull

struct pl {
    struct memlink *l;
    struct tcpsm_stack *a, *b;
    struct tcpsm_sock *lsk, *cs, *ss;
    uint64_t now, target, sent, got;
    unsigned bad;
};

static uint8_t pbyte(uint64_t off)
{
    return (uint8_t)(off * 2654435761u >> 11);
}

static uint8_t mtu_probing;             /* tcpsm_config.mtu_probing of the stacks made */

static struct tcpsm_stack *mk(struct tcpsm_netdev *dev, uint32_t addr, uint8_t m, uint64_t now)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = addr;
    c.prefix_len = 24;
    memcpy(c.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 2, m }, 6);
    c.secret[0] = 0x5555u * m;
    c.secret[1] = 0x6666u * m;
    c.msl_ms = 1000;
    c.rcvbuf = 64 * 1024;
    c.plpmtu_interval_s = 30;           /* Linux: 600 */
    c.mtu_probing = mtu_probing;
    struct tcpsm_stack *st = tcpsm_stack_new(&c, dev, now);
    cr_assert_not_null(st);
    return st;
}

/* Sends until target bytes went out, reads and checks what arrives;
 * done when B has all of them. */
static bool pump(void *arg)
{
    struct pl *p = arg;
    if (!p->ss)
        tcpsm_sock_accept(p->lsk, &p->ss);
    if (tcpsm_sock_state(p->cs) == TCPSM_ESTABLISHED) {
        uint8_t buf[16384];
        while (p->sent < p->target) {
            size_t n = p->target - p->sent < sizeof buf ? (size_t)(p->target - p->sent) : sizeof buf;
            for (size_t k = 0; k < n; k++)
                buf[k] = pbyte(p->sent + k);
            ssize_t r = tcpsm_sock_send(p->cs, buf, n, p->now);
            if (r <= 0) {
                cr_assert_eq(r, -EAGAIN, "send: %zd", r);
                break;
            }
            p->sent += (uint64_t)r;
        }
    }
    if (p->ss) {
        uint8_t buf[65536];
        ssize_t r;
        while ((r = tcpsm_sock_recv(p->ss, buf, sizeof buf, 0, p->now)) > 0) {
            for (ssize_t k = 0; k < r; k++)
                p->bad += buf[k] != pbyte(p->got + (uint64_t)k);
            p->got += (uint64_t)r;
        }
    }
    return p->got == p->target;
}

/* target bytes more from A to B, within an hour of virtual time. */
static void transfer(struct pl *p, uint64_t bytes)
{
    p->target += bytes;
    uint64_t end = p->now + 3600 * P_SEC;
    bool ok = false;
    while (!ok && p->now < end)
        ok = memlink_run(p->l, p->a, p->b, &p->now, end, pump, p);
    cr_assert(ok, "transfer did not finish: sent %llu, got %llu", (unsigned long long)p->sent,
              (unsigned long long)p->got);
    cr_assert_eq(p->bad, 0, "%u bytes differ", p->bad);
}

static struct pl *pl_new(const struct memlink_params *lp, uint64_t seed)
{
    struct pl *p = calloc(1, sizeof *p);
    cr_assert_not_null(p);
    p->l = memlink_new(lp, seed);
    cr_assert_not_null(p->l);
    p->now = P_SEC;
    memlink_set_now(p->l, p->now);
    p->a = mk(memlink_dev(p->l, 0), P_A, 1, p->now);
    p->b = mk(memlink_dev(p->l, 1), P_B, 2, p->now);
    cr_assert_eq(tcpsm_sock_new(p->b, &p->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(p->lsk, 0, P_PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(p->lsk, 4), 0);
    cr_assert_eq(tcpsm_sock_new(p->a, &p->cs), 0);
    cr_assert_eq(tcpsm_sock_connect(p->cs, P_B, P_PORT, p->now), -EINPROGRESS);
    return p;
}

static void pl_free(struct pl *p)
{
    tcpsm_stack_free(p->a);
    tcpsm_stack_free(p->b);
    memlink_free(p->l);
    free(p);
}

static int path_mtu(struct tcpsm_sock *sk)
{
    int v = 0;
    cr_assert_eq(tcpsm_sock_getopt(sk, TCPSM_OPT_MTU, &v), 0);
    return v;
}

/* Datagrams over 1200 bytes vanish: the black hole drops the MSS to 1024
 * (a 1076-byte datagram with timestamps), then probes find 1200 within
 * the search's 8-byte threshold; the lost probes are repaired without a
 * fast recovery or another RTO. The path then takes 1500 again: after the
 * probe interval the search restarts and the MSS is the full one. */
static void probe_up_and_back(int gso)
{
    struct memlink_params lp = { .delay_ns = 5000000, .bandwidth_bps = 50000000,
                                 .drop_above = 1200, .gso = gso };
    struct pl *p = pl_new(&lp, 7);
    const struct tcpsm_counters *c = tcpsm_stack_counters(p->a);
    transfer(p, 4u << 20);
    cr_assert_eq(c->tcp_pmtu_blackhole, 1);
    uint64_t rto = c->tcp_rto;
    cr_assert(memlink_stats(p->l, 0)->black_holed > 0);
    int mtu = path_mtu(p->cs);
    cr_assert(mtu > 1200 - 8 && mtu <= 1200,
              "path MTU %d after probing (probes %llu, ok %llu, lost %llu)", mtu,
              (unsigned long long)c->tcp_pmtu_probes, (unsigned long long)c->tcp_pmtu_probe_ok,
              (unsigned long long)c->tcp_pmtu_probe_lost);
    cr_assert(c->tcp_pmtu_probe_ok >= 1 && c->tcp_pmtu_probe_lost >= 1);
    /* a lost probe is no congestion signal: no recovery was entered */
    cr_assert_eq(c->tcp_fast_retrans, 0, "%llu fast recoveries (probes lost %llu)",
                 (unsigned long long)c->tcp_fast_retrans,
                 (unsigned long long)c->tcp_pmtu_probe_lost);
    /* more data through the same path: no more RTOs, no more probes lost */
    uint64_t lost = c->tcp_pmtu_probe_lost;
    transfer(p, 2u << 20);
    cr_assert_eq(c->tcp_rto, rto);
    cr_assert_eq(c->tcp_pmtu_probe_lost, lost);
    cr_assert_eq(c->tcp_fast_retrans, 0);

    /* the path is clear now; past the probe interval the MSS comes back */
    memlink_set_drop_above(p->l, 0);
    uint64_t idle = p->now + 31 * P_SEC;
    memlink_run(p->l, p->a, p->b, &p->now, idle, NULL, NULL);
    transfer(p, 4u << 20);
    cr_assert_eq(path_mtu(p->cs), 1500, "path MTU %d (probes %llu, ok %llu, lost %llu)",
                 path_mtu(p->cs), (unsigned long long)c->tcp_pmtu_probes,
                 (unsigned long long)c->tcp_pmtu_probe_ok,
                 (unsigned long long)c->tcp_pmtu_probe_lost);
    cr_assert_eq(c->tcp_rto, rto);
    cr_assert_eq(c->tcp_fast_retrans, 0);
    pl_free(p);
}

Test(tcp_plpmtud, probes_up_to_the_path_mtu_and_back_to_full)
{
    probe_up_and_back(MEMLINK_GSO_OFF);
}

/* With TSO the probe is still one frame of its own size (the link cuts
 * super-segments at the current MSS, which would make it no probe). */
Test(tcp_plpmtud, probes_with_tso)
{
    probe_up_and_back(MEMLINK_GSO_SEGMENT);
}

/* With random loss on top of the black hole, probes are lost with other
 * segments and by chance: whatever the search concludes, the MSS never
 * ends above what the path passes (a probe whose bytes were sent again
 * proves nothing), and every byte arrives. */
Test(tcp_plpmtud, random_loss_never_raises_past_the_hole)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct memlink_params lp = { .delay_ns = 5000000, .bandwidth_bps = 50000000,
                                     .drop_above = 1200, .loss_pct = 2 };
        struct pl *p = pl_new(&lp, seed);
        const struct tcpsm_counters *c = tcpsm_stack_counters(p->a);
        transfer(p, 4u << 20);
        cr_assert_geq(c->tcp_pmtu_blackhole, 1);
        cr_assert(c->tcp_pmtu_probes >= 1, "seed %llu: no probe", (unsigned long long)seed);
        int mtu = path_mtu(p->cs);
        cr_assert(mtu <= 1200, "seed %llu: path MTU %d through a 1200-byte hole",
                  (unsigned long long)seed, mtu);
        pl_free(p);
    }
}

/* tcp_mtu_probing = 2 (RFC 4821 / RFC 8899 from the start): the connection
 * starts at the base MSS and probes up; over a clean path it reaches the
 * full MSS, over a 1200-byte black hole the largest that passes, and the
 * hole costs no RTO (with probing only after a black hole: those of 3 s). */
Test(tcp_plpmtud, probing_from_the_start)
{
    mtu_probing = 2;
    struct memlink_params clean = { .delay_ns = 5000000, .bandwidth_bps = 50000000 };
    struct pl *p = pl_new(&clean, 3);
    const struct tcpsm_counters *c = tcpsm_stack_counters(p->a);
    transfer(p, 2u << 20);
    cr_assert_eq(path_mtu(p->cs), 1500, "path MTU %d (probes %llu, ok %llu)", path_mtu(p->cs),
                 (unsigned long long)c->tcp_pmtu_probes, (unsigned long long)c->tcp_pmtu_probe_ok);
    cr_assert_geq(c->tcp_pmtu_probe_ok, 1);
    cr_assert_eq(c->tcp_rto, 0);
    pl_free(p);

    struct memlink_params hole = { .delay_ns = 5000000, .bandwidth_bps = 50000000,
                                   .drop_above = 1200 };
    p = pl_new(&hole, 7);
    c = tcpsm_stack_counters(p->a);
    transfer(p, 4u << 20);
    int mtu = path_mtu(p->cs);
    cr_assert(mtu > 1200 - 8 && mtu <= 1200, "path MTU %d (probes %llu, ok %llu, lost %llu)",
              mtu, (unsigned long long)c->tcp_pmtu_probes,
              (unsigned long long)c->tcp_pmtu_probe_ok, (unsigned long long)c->tcp_pmtu_probe_lost);
    cr_assert_eq(c->tcp_pmtu_blackhole, 0, "found by probing, not by its RTOs");
    cr_assert_eq(c->tcp_rto, 0, "%llu RTOs", (unsigned long long)c->tcp_rto);
    cr_assert_eq(c->tcp_fast_retrans, 0);
    pl_free(p);
    mtu_probing = 0;
}
