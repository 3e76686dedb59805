/* The in-memory link: impairments with a fixed seed, reproducibility, and
 * two stacks talking over it in virtual time. */
#include <criterion/criterion.h>

#include "icmp.h"
#include "ipv4.h"
#include "net_helpers.h"
#include "netdev_mem.h"

#define NFR 20000

/* Sends NFR numbered 100-byte frames from side 0, one per microsecond, and
 * collects what arrives at side 1 (sequence numbers in arrival order). */
struct run {
    uint32_t got[3 * NFR];
    uint64_t at[3 * NFR];
    unsigned n, corrupt;
};

static void pump(struct memlink *l, struct run *r)
{
    struct tcpsm_netdev *a = memlink_dev(l, 0);
    struct tcpsm_frame out[64];
    uint8_t buf[100];
    r->n = r->corrupt = 0;
    uint64_t now = 0;
    for (uint32_t i = 0; i < NFR; i++, now += 1000) {
        memset(buf, 0xa5, sizeof(buf));
        wr32(buf, i);
        wr32(buf + 96, i);
        struct tcpsm_frame f = { .data = buf, .len = sizeof(buf) };
        memlink_set_now(l, now);
        a->ops->send(a, &f, 1);
        unsigned k;
        while ((k = memlink_deliver(l, 1, now, out, 64)) > 0)
            for (unsigned j = 0; j < k; j++) {
                cr_assert_eq(out[j].len, 100);
                uint8_t ok[100];
                memset(ok, 0xa5, 100);
                memcpy(ok, out[j].data, 4);
                memcpy(ok + 96, out[j].data + 96, 4);
                if (memcmp(ok, out[j].data, 100) || rd32(out[j].data) != rd32(out[j].data + 96))
                    r->corrupt++;
                r->at[r->n] = now;
                r->got[r->n++] = rd32(out[j].data);
            }
    }
    for (int guard = 0; memlink_next_due(l) != UINT64_MAX && guard < 1000000; guard++) {
        now = memlink_next_due(l);
        unsigned k = memlink_deliver(l, 1, now, out, 64);
        for (unsigned j = 0; j < k; j++) {
            r->at[r->n] = now;
            r->got[r->n++] = rd32(out[j].data);
        }
    }
}

static struct run r1, r2;

Test(memlink, clean_link_is_fifo_and_exact)
{
    struct memlink_params p = { .delay_ns = 5000 };
    struct memlink *l = memlink_new(&p, 1);
    pump(l, &r1);
    cr_assert_eq(r1.n, NFR);
    for (unsigned i = 0; i < NFR; i++)
        cr_assert_eq(r1.got[i], i);
    cr_assert_eq(r1.corrupt, 0);
    const struct memlink_stats *s = memlink_stats(l, 0);
    cr_assert_eq(s->sent, NFR);
    cr_assert_eq(s->delivered, NFR);
    memlink_free(l);
}

Test(memlink, loss_rate_near_setting)
{
    struct memlink_params p = { .loss_pct = 10 };
    struct memlink *l = memlink_new(&p, 42);
    pump(l, &r1);
    const struct memlink_stats *s = memlink_stats(l, 0);
    cr_assert_eq(s->lost + r1.n, NFR);
    cr_assert(s->lost > NFR * 9 / 100 && s->lost < NFR * 11 / 100, "lost %lu", (unsigned long)s->lost);
    memlink_free(l);
}

Test(memlink, duplication_rate_near_setting)
{
    struct memlink_params p = { .dup_pct = 5 };
    struct memlink *l = memlink_new(&p, 7);
    pump(l, &r1);
    const struct memlink_stats *s = memlink_stats(l, 0);
    cr_assert_eq(r1.n, NFR + s->duplicated);
    cr_assert(s->duplicated > NFR * 4 / 100 && s->duplicated < NFR * 6 / 100);
    memlink_free(l);
}

Test(memlink, reordering_holds_frames_back)
{
    struct memlink_params p = { .reorder_pct = 5, .delay_ns = 2000, .reorder_delay_ns = 10000 };
    struct memlink *l = memlink_new(&p, 9);
    pump(l, &r1);
    const struct memlink_stats *s = memlink_stats(l, 0);
    cr_assert_eq(r1.n, NFR);
    cr_assert(s->reordered > NFR * 4 / 100 && s->reordered < NFR * 6 / 100);
    unsigned late = 0;
    for (unsigned i = 1; i < r1.n; i++)
        late += r1.got[i] < r1.got[i - 1];
    cr_assert(late > 0 && late <= s->reordered);
    memlink_free(l);
}

Test(memlink, corruption_flips_one_bit)
{
    struct memlink_params p = { .corrupt_pct = 3 };
    struct memlink *l = memlink_new(&p, 11);
    struct tcpsm_netdev *a = memlink_dev(l, 0);
    uint8_t buf[200] = { 0 };
    unsigned flipped = 0;
    for (unsigned i = 0; i < NFR; i++) {
        struct tcpsm_frame f = { .data = buf, .len = sizeof(buf) }, out;
        a->ops->send(a, &f, 1);
        cr_assert_eq(memlink_deliver(l, 1, 0, &out, 1), 1);
        unsigned bits = 0;
        for (unsigned j = 0; j < sizeof(buf); j++)
            bits += (unsigned)__builtin_popcount(out.data[j]);
        cr_assert(bits <= 1);
        flipped += bits;
    }
    cr_assert_eq(flipped, memlink_stats(l, 0)->corrupted);
    cr_assert(flipped > NFR * 2 / 100 && flipped < NFR * 4 / 100);
    memlink_free(l);
}

Test(memlink, delay_and_jitter_bounds)
{
    struct memlink_params p = { .delay_ns = 100000, .jitter_ns = 50000 };
    struct memlink *l = memlink_new(&p, 3);
    struct tcpsm_netdev *a = memlink_dev(l, 0);
    uint8_t buf[60] = { 0 };
    struct tcpsm_frame f = { .data = buf, .len = 60 }, out;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (unsigned i = 0; i < 1000; i++) {
        uint64_t t0 = i * 1000000ull;
        memlink_set_now(l, t0);
        a->ops->send(a, &f, 1);
        uint64_t due = memlink_next_due(l);
        cr_assert_eq(memlink_deliver(l, 1, due - 1, &out, 1), 0);
        cr_assert_eq(memlink_deliver(l, 1, due, &out, 1), 1);
        lo = due - t0 < lo ? due - t0 : lo;
        hi = due - t0 > hi ? due - t0 : hi;
    }
    cr_assert(lo >= 100000 && hi <= 150000 && hi - lo > 40000);
    memlink_free(l);
}

Test(memlink, bandwidth_serializes_and_queue_drops_tail)
{
    /* 8 Mbit/s: a 1000-byte frame takes 1 ms. */
    struct memlink_params p = { .bandwidth_bps = 8000000, .queue_max = 10 };
    struct memlink *l = memlink_new(&p, 5);
    struct tcpsm_netdev *a = memlink_dev(l, 0);
    static uint8_t buf[1000];
    struct tcpsm_frame f[15];
    for (unsigned i = 0; i < 15; i++)
        f[i] = (struct tcpsm_frame){ .data = buf, .len = 1000 };
    cr_assert_eq(a->ops->send(a, f, 15), 10, "drop-tail at queue_max");
    cr_assert_eq(memlink_stats(l, 0)->queue_drop, 5);
    struct tcpsm_frame out[16];
    for (unsigned i = 1; i <= 10; i++) {
        cr_assert_eq(memlink_next_due(l), i * 1000000ull);
        cr_assert_eq(memlink_deliver(l, 1, i * 1000000ull, out, 16), 1);
    }
    memlink_free(l);
}

Test(memlink, same_seed_same_run_other_seed_differs)
{
    struct memlink_params p = { .loss_pct = 5, .dup_pct = 2, .reorder_pct = 3, .corrupt_pct = 1,
                                .delay_ns = 3000, .jitter_ns = 2000 };
    struct memlink *l = memlink_new(&p, 1234);
    pump(l, &r1);
    memlink_free(l);
    l = memlink_new(&p, 1234);
    pump(l, &r2);
    memlink_free(l);
    cr_assert_eq(r1.n, r2.n);
    cr_assert_arr_eq(r1.got, r2.got, r1.n * sizeof(uint32_t));
    cr_assert_arr_eq(r1.at, r2.at, r1.n * sizeof(uint64_t));
    l = memlink_new(&p, 1235);
    pump(l, &r2);
    memlink_free(l);
    cr_assert(r1.n != r2.n || memcmp(r1.got, r2.got, r1.n * sizeof(uint32_t)) != 0);
}

Test(memlink, bad_params_rejected)
{
    struct memlink_params p = { .loss_pct = 101 };
    cr_assert_null(memlink_new(&p, 1));
    p.loss_pct = -1;
    cr_assert_null(memlink_new(&p, 1));
    cr_assert_null(memlink_new(NULL, 1));
}

/* ---- two stacks over the link */

struct pair {
    struct memlink *l;
    struct tcpsm_stack *a, *b;
    uint64_t now;
};

static void pair_new(struct pair *p, const struct memlink_params *lp, uint64_t seed)
{
    p->l = memlink_new(lp, seed);
    cr_assert_not_null(p->l);
    struct tcpsm_config ca = test_cfg(), cb = test_cfg();
    cb.addr = ADDR_PEER;
    memcpy(cb.mac, MAC_PEER, 6);
    p->now = 0;
    p->a = tcpsm_stack_new(&ca, memlink_dev(p->l, 0), 0);
    p->b = tcpsm_stack_new(&cb, memlink_dev(p->l, 1), 0);
    cr_assert(p->a && p->b);
}

static void pair_free(struct pair *p)
{
    tcpsm_stack_free(p->a);
    tcpsm_stack_free(p->b);
    memlink_free(p->l);
}

static void ping(struct pair *p, uint16_t seq, size_t dlen)
{
    uint8_t data[1400];
    memset(data, (int)seq, sizeof(data));
    memlink_set_now(p->l, p->now);
    uint8_t *m = ipv4_out_begin(p->a, 8 + dlen);
    cr_assert_not_null(m);
    mk_echo(m, ICMP_ECHO, 77, seq, data, dlen);
    ipv4_out_commit(p->a, ADDR_PEER, 1, 8 + dlen);
    stack_tx_flush(p->a);
}

static struct pair *cur;
static uint64_t want_replies;
static bool replies_in(void *arg)
{
    (void)arg;
    return tcpsm_stack_counters(cur->a)->icmp_in >= want_replies;
}

Test(memlink_run, ping_resolves_arp_and_gets_reply)
{
    struct memlink_params lp = { .delay_ns = 50000 };
    struct pair p;
    pair_new(&p, &lp, 1);
    cur = &p;
    ping(&p, 1, 56);
    want_replies = 1;
    cr_assert(memlink_run(p.l, p.a, p.b, &p.now, 10 * SEC, replies_in, NULL));
    /* request, ARP reply, echo: B then replies straight away (it learned A). */
    cr_assert_eq(p.now, 4 * 50000);
    cr_assert_eq(tcpsm_stack_counters(p.b)->icmp_echo_reply_out, 1);
    cr_assert_eq(tcpsm_stack_counters(p.b)->arp_reply_out, 1);
    cr_assert_eq(tcpsm_stack_counters(p.b)->arp_req_out, 0);
    pair_free(&p);
}

Test(memlink_run, runs_until_deadline_when_not_done)
{
    struct memlink_params lp = { .loss_pct = 100 };
    struct pair p;
    pair_new(&p, &lp, 1);
    cur = &p;
    ping(&p, 1, 8);
    want_replies = 1;
    cr_assert_not(memlink_run(p.l, p.a, p.b, &p.now, 60 * SEC, replies_in, NULL));
    cr_assert_eq(p.now, 60 * SEC);
    cr_assert_eq(tcpsm_stack_counters(p.a)->arp_req_out, 3);
    cr_assert_eq(tcpsm_stack_counters(p.a)->neigh_queue_drop, 1);
    pair_free(&p);
}

Test(memlink_run, many_pings_through_impairments)
{
    struct memlink_params lp = { .delay_ns = 20000, .jitter_ns = 5000, .loss_pct = 2,
                                 .dup_pct = 2, .reorder_pct = 2, .corrupt_pct = 2 };
    struct pair p;
    pair_new(&p, &lp, 99);
    cur = &p;
    for (unsigned i = 0; i < 5000; i++) {
        ping(&p, (uint16_t)i, 1400);
        want_replies = UINT64_MAX;
        memlink_run(p.l, p.a, p.b, &p.now, p.now + 100000, NULL, NULL);
    }
    memlink_run(p.l, p.a, p.b, &p.now, p.now + 10 * SEC, NULL, NULL);
    const struct tcpsm_counters *ca = tcpsm_stack_counters(p.a), *cb = tcpsm_stack_counters(p.b);
    /* Corrupted frames fail a checksum or a filter somewhere; the rest are answered. */
    cr_assert(cb->icmp_echo_reply_out > 4500);
    cr_assert(ca->icmp_in > 4300);
    cr_assert(cb->ip_drop_csum + cb->icmp_drop_bad + cb->eth_drop_not_us + cb->eth_drop_proto +
              cb->ip_drop_hdr + cb->ip_drop_not_us + cb->ip_drop_frag + cb->ip_drop_proto > 0);
    cr_assert_eq(memlink_next_due(p.l), UINT64_MAX);
    pair_free(&p);
}

Test(memlink_run, null_side_keeps_its_frames_in_flight)
{
    struct memlink_params lp = { .delay_ns = 1000 };
    struct pair p;
    pair_new(&p, &lp, 1);
    cur = &p;
    ping(&p, 1, 8);                         /* A broadcasts an ARP request toward B */
    cr_assert_eq(memlink_in_flight(p.l, 1), 1);
    cr_assert_not(memlink_run(p.l, p.a, NULL, &p.now, 500000, NULL, NULL));
    cr_assert_eq(p.now, 500000);
    cr_assert_eq(memlink_in_flight(p.l, 1), 1, "nobody took it");
    cr_assert_eq(memlink_next_due_side(p.l, 1), 1000);
    cr_assert_eq(memlink_next_due_side(p.l, 0), UINT64_MAX);
    pair_free(&p);
}
