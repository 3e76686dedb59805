/* IPv4 reassembly (RFC 791 3.2): fragments in any order make the datagram,
 * overlaps drop it, a datagram incomplete after 30 s is dropped, and the
 * memory held stays bounded. The datagrams are ICMP echo requests: a
 * complete one is answered, byte-exact. */
#include <criterion/criterion.h>

#include "icmp.h"
#include "ipv4_frag.h"
#include "neigh.h"
#include "net_helpers.h"

static struct capdev *cap;
static struct tcpsm_stack *st;

static void setup(void)
{
    cap = cap_new();
    struct tcpsm_config c = test_cfg();
    st = tcpsm_stack_new(&c, &cap->dev, 0);
    cr_assert_not_null(st);
    neigh_learn(st, ADDR_PEER, MAC_PEER, 0);
}
static void teardown(void)
{
    tcpsm_stack_free(st);
    free(cap);
}

TestSuite(ipv4_frag, .init = setup, .fini = teardown);

static uint8_t msg[1208];
static size_t msglen;

static void make_echo(uint16_t seq)
{
    uint8_t data[1200];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + seq);
    msglen = mk_echo(msg, ICMP_ECHO, 0x77, seq, data, sizeof(data));
}

/* Fragment [off, off+len) of msg, with MF unless it is the end. */
static void frag(uint16_t id, size_t off, size_t len, uint64_t now)
{
    uint8_t f[1600];
    size_t n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, msg + off, len);
    uint8_t *ip = f + 14;
    wr16(ip + 4, id);
    wr16(ip + 6, (uint16_t)((off + len < msglen ? 0x2000 : 0) | (off / 8)));
    wr16(ip + 10, 0);
    wr16(ip + 10, csum_fold(csum_partial(ip, 20, 0)));
    feed(st, f, n, now);
}

static void expect_reply(uint16_t seq)
{
    cr_assert_eq(cap->n, 1, "%u frames out", cap->n);
    const uint8_t *ip = cap->data[0] + 14;
    cr_assert_eq(rd16(ip + 2), 20 + msglen);
    const uint8_t *m = ip + 20;
    cr_assert_eq(m[0], 0);                      /* echo reply */
    cr_assert_eq(rd16(m + 6), seq);
    cr_assert_arr_eq(m + 8, msg + 8, msglen - 8, "reply data differs");
    cap->n = 0;
}

Test(ipv4_frag, out_of_order_fragments_reassembled)
{
    make_echo(1);
    frag(100, 800, msglen - 800, 0);
    frag(100, 0, 400, 1);
    cr_assert_eq(cap->n, 0);
    frag(100, 400, 400, 2);
    expect_reply(1);
    const struct tcpsm_counters *c = tcpsm_stack_counters(st);
    cr_assert_eq(c->ip_frag_in, 3);
    cr_assert_eq(c->ip_reasm_ok, 1);
    cr_assert_eq(ipv4_frag_mem(st), 0);
}

Test(ipv4_frag, overlap_drops_the_datagram)
{
    make_echo(2);
    frag(200, 0, 400, 0);
    frag(200, 392 / 8 * 8, 400, 0);     /* overlaps the first by 8 bytes */
    frag(200, 800, msglen - 800, 0);
    cr_assert_eq(cap->n, 0);
    cr_assert_geq(tcpsm_stack_counters(st)->ip_reasm_fail, 1);
    /* the same id, whole and clean, afterwards: fine */
    frag(201, 0, 400, 1);
    frag(201, 400, 400, 1);
    frag(201, 800, msglen - 800, 1);
    expect_reply(2);
}

Test(ipv4_frag, incomplete_after_30s_dropped)
{
    make_echo(3);
    frag(300, 0, 400, 0);
    frag(300, 400, 400, 1000000000ull);
    frag(300, 800, msglen - 800, 31000000000ull);
    cr_assert_eq(cap->n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->ip_reasm_timeout, 1);
    cr_assert_gt(ipv4_frag_mem(st), 0);         /* the late last fragment waits alone */
    neigh_learn(st, ADDR_PEER, MAC_PEER, 31000000000ull);     /* the reply's neighbour, fresh */
    frag(300, 0, 400, 31000000001ull);
    frag(300, 400, 400, 31000000002ull);
    expect_reply(3);
}

Test(ipv4_frag, bad_fragments_counted)
{
    make_echo(4);
    frag(400, 0, 404, 0);                       /* not a multiple of 8, more to come */
    cr_assert_eq(tcpsm_stack_counters(st)->ip_drop_frag, 1);
    /* an end beyond 65535 */
    uint8_t f[200];
    size_t n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, msg, 100);
    wr16(f + 14 + 6, 0x1fff);
    wr16(f + 14 + 10, 0);
    wr16(f + 14 + 10, csum_fold(csum_partial(f + 14, 20, 0)));
    feed(st, f, n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->ip_drop_frag, 2);
    cr_assert_eq(cap->n, 0);
}

/* A flood of first fragments that never complete: the memory held stays
 * at its bound (4 MiB), the oldest datagrams make room, and a real one
 * still gets through. */
Test(ipv4_frag, flood_bounded)
{
    make_echo(5);
    for (uint16_t id = 1000; id < 1400; id++)
        for (size_t off = 0; off < 40 * 1200; off += 1200) {
            uint8_t f[1300];
            size_t n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, msg, 1200);
            uint8_t *ip = f + 14;
            wr16(ip + 4, id);
            wr16(ip + 6, (uint16_t)(0x2000 | (off / 8)));
            wr16(ip + 10, 0);
            wr16(ip + 10, csum_fold(csum_partial(ip, 20, 0)));
            feed(st, f, n, 0);
            cr_assert_leq(ipv4_frag_mem(st), 4u << 20);
        }
    cr_assert_gt(tcpsm_stack_counters(st)->ip_reasm_fail, 300);
    frag(2000, 0, 400, 1);
    frag(2000, 400, 400, 1);
    frag(2000, 800, msglen - 800, 1);
    expect_reply(5);
}

/* The repair after a holder died halfway (ipv4_frag_check): the insert of a
 * piece stopped after linking it, before the counts (pieces, bytes held,
 * memory) were raised: the datagram would never be seen complete. The audit
 * sees it; the repair recounts from the list and the datagram completes. */
Test(ipv4_frag, repair_recounts_a_piece_linked_but_not_counted)
{
    make_echo(9);
    frag(0x4242, 0, 600, 0);
    struct frag_queue *q = NULL;
    for (unsigned i = 0; i < IP_FRAG_QUEUES; i++)
        if (st->reasm->q[i].used)
            q = &st->reasm->q[i];
    cr_assert_not_null(q);
    cr_assert_eq(q->npieces, 1);
    q->npieces--;
    q->have -= 600;
    st->reasm->mem -= sizeof(struct frag_piece) + 600;
    char why[256];
    cr_assert_gt(tcpsm_stack_audit(st, why, sizeof why), 0, "the audit does not see it");
    cr_assert_gt(tcpsm_stack_repair(st, 0), 0);
    cr_assert_eq(tcpsm_stack_audit(st, why, sizeof why), 0, "%s", why);
    cr_assert_eq(q->npieces, 1);
    frag(0x4242, 600, msglen - 600, 0);
    expect_reply(9);
    cr_assert_eq(ipv4_frag_mem(st), 0);
}
