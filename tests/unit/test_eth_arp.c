/* Ethernet input filter, ARP (RFC 826) and the neighbour cache. */
#include <criterion/criterion.h>

#include "addr.h"
#include "ipv4.h"
#include "neigh.h"
#include "net_helpers.h"

static struct capdev *cap;
static struct tcpsm_stack *st;

static void setup_n(uint32_t neigh_max)
{
    cap = cap_new();
    struct tcpsm_config c = test_cfg();
    c.neigh_max = neigh_max;
    c.gateway = ADDR_GW;
    st = tcpsm_stack_new(&c, &cap->dev, 0);
    cr_assert_not_null(st);
}
static void setup(void) { setup_n(0); }
static void teardown(void)
{
    tcpsm_stack_free(st);
    free(cap);
}

/* Sends a small IPv4 datagram (proto 253, 4 bytes) to dst at now. */
static void send_ip(uint32_t dst, uint64_t now)
{
    tcpsm_stack_timers(st, now); /* sets the stack time */
    uint8_t *p = ipv4_out_begin(st, 4);
    cr_assert_not_null(p);
    memcpy(p, "abcd", 4);
    ipv4_out_commit(st, dst, 253, 4);
    stack_tx_flush(st);
}

static void arp_reply_from(uint32_t ip, const uint8_t *mac, uint64_t now)
{
    uint8_t f[64];
    size_t n = mk_arp(f, MAC_US, mac, 2, mac, ip, MAC_US, ADDR_US);
    feed(st, f, n, now);
}

TestSuite(arp, .init = setup, .fini = teardown);

Test(arp, request_for_us_gets_byte_exact_reply)
{
    uint8_t f[64];
    static const uint8_t zero[6];
    size_t n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, MAC_PEER, ADDR_PEER, zero, ADDR_US);
    feed(st, f, n, 0);
    cr_assert_eq(cap->n, 1);
    static const uint8_t want[42] = {
        0x02, 0, 0, 0, 0, 0x02,  0x02, 0, 0, 0, 0, 0x01,  0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02,
        0x02, 0, 0, 0, 0, 0x01,  198, 18, 0, 1,
        0x02, 0, 0, 0, 0, 0x02,  198, 18, 0, 2,
    };
    cr_assert_eq(cap->len[0], 42);
    cr_assert_arr_eq(cap->data[0], want, 42);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_reply_out, 1);
    /* RFC 826: the requester is learned. */
    uint8_t mac[6];
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, mac), NEIGH_REACHABLE);
    cr_assert_arr_eq(mac, MAC_PEER, 6);
}

Test(arp, request_for_other_host_ignored_and_not_learned)
{
    uint8_t f[64];
    static const uint8_t zero[6];
    size_t n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, MAC_PEER, ADDR_PEER, zero, IP(198, 18, 0, 9));
    feed(st, f, n, 0);
    cr_assert_eq(cap->n, 0);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_NONE);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_in, 1);
}

Test(arp, gratuitous_updates_existing_entry_only)
{
    static const uint8_t newmac[6] = { 0x02, 0, 0, 0, 0, 0x22 };
    uint8_t f[64];
    /* Unknown host announcing itself: not created. */
    size_t n = mk_arp(f, eth_bcast_mac(), newmac, 1, newmac, IP(198, 18, 0, 7), eth_bcast_mac(),
                      IP(198, 18, 0, 7));
    feed(st, f, n, 0);
    cr_assert_eq(neigh_lookup(st, IP(198, 18, 0, 7), NULL), NEIGH_NONE);
    /* Known host moving to a new MAC: merged. */
    arp_reply_from(ADDR_PEER, MAC_PEER, 0);
    n = mk_arp(f, eth_bcast_mac(), newmac, 1, newmac, ADDR_PEER, eth_bcast_mac(), ADDR_PEER);
    feed(st, f, n, SEC);
    uint8_t mac[6];
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, mac), NEIGH_REACHABLE);
    cr_assert_arr_eq(mac, newmac, 6);
    cr_assert_eq(cap->n, 0);
}

Test(arp, malformed_counted)
{
    uint8_t f[64];
    static const uint8_t zero[6];
    size_t n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, MAC_PEER, ADDR_PEER, zero, ADDR_US);
    feed(st, f, 14 + 27, 0);               /* short */
    f[14 + 0] = 1;                         /* htype 0x0101 */
    feed(st, f, n, 0);
    n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 3, MAC_PEER, ADDR_PEER, zero, ADDR_US); /* op 3 */
    feed(st, f, n, 0);
    n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, eth_bcast_mac(), ADDR_PEER, zero, ADDR_US);
    feed(st, f, n, 0);                     /* multicast sender */
    cr_assert_eq(tcpsm_stack_counters(st)->arp_drop_bad, 4);
    cr_assert_eq(cap->n, 0);
}

Test(arp, off_link_or_own_sender_not_learned)
{
    uint8_t f[64];
    static const uint8_t zero[6];
    size_t n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, MAC_PEER, IP(10, 0, 0, 1), zero, ADDR_US);
    feed(st, f, n, 0);
    n = mk_arp(f, eth_bcast_mac(), MAC_PEER, 1, MAC_PEER, ADDR_US, zero, ADDR_US);
    feed(st, f, n, 0);
    cr_assert_eq(neigh_count(st), 0);
}

Test(arp, unresolved_frame_queued_then_sent_on_reply)
{
    send_ip(ADDR_PEER, 0);
    cr_assert_eq(cap->n, 1);
    static const uint8_t want_req[42] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  0x02, 0, 0, 0, 0, 0x01,  0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
        0x02, 0, 0, 0, 0, 0x01,  198, 18, 0, 1,
        0, 0, 0, 0, 0, 0,  198, 18, 0, 2,
    };
    cr_assert_eq(cap->len[0], 42);
    cr_assert_arr_eq(cap->data[0], want_req, 42);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_INCOMPLETE);
    cr_assert_eq(neigh_queued(st, ADDR_PEER), 1);
    send_ip(ADDR_PEER, 1000);
    cr_assert_eq(cap->n, 1, "no second request while one is out");
    cr_assert_eq(neigh_queued(st, ADDR_PEER), 2);

    arp_reply_from(ADDR_PEER, MAC_PEER, 2000);
    cr_assert_eq(cap->n, 3);
    for (unsigned i = 1; i < 3; i++) {
        cr_assert_eq(cap->len[i], 14 + 20 + 4);
        cr_assert_arr_eq(cap->data[i], MAC_PEER, 6);
        cr_assert_arr_eq(cap->data[i] + 6, MAC_US, 6);
        cr_assert_eq(rd16(cap->data[i] + 14 + 4), i - 1, "queue order kept (IP id)");
    }
    cr_assert_eq(neigh_queued(st, ADDR_PEER), 0);
    cr_assert_eq(tcpsm_stack_counters(st)->ip_out, 2);
    cr_assert_eq(tcpsm_stack_counters(st)->eth_out, 3);
}

Test(arp, retries_then_drops_queue)
{
    send_ip(ADDR_PEER, 0);
    send_ip(ADDR_PEER, 1);
    tcpsm_stack_timers(st, SEC - 1);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_req_out, 1);
    cr_assert_eq(tcpsm_stack_next_deadline(st), SEC);
    tcpsm_stack_timers(st, SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_req_out, 2);
    tcpsm_stack_timers(st, 2 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_req_out, 3);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_INCOMPLETE);
    tcpsm_stack_timers(st, 3 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_req_out, 3, "3 tries in all");
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_NONE);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_queue_drop, 2);
    cr_assert_eq(tcpsm_stack_next_deadline(st), UINT64_MAX);
    cr_assert_eq(cap->n, 3);
    /* A later send starts over. */
    send_ip(ADDR_PEER, 10 * SEC);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_req_out, 4);
}

Test(arp, queue_limit_drops_oldest)
{
    for (unsigned i = 0; i < NEIGH_QUEUE_FRAMES + 4; i++)
        send_ip(ADDR_PEER, i);
    cr_assert_eq(neigh_queued(st, ADDR_PEER), NEIGH_QUEUE_FRAMES);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_queue_drop, 4);
    arp_reply_from(ADDR_PEER, MAC_PEER, 100);
    cr_assert_eq(cap->n, 1 + NEIGH_QUEUE_FRAMES);
    /* The newest NEIGH_QUEUE_FRAMES survive: IP ids 4.. */
    cr_assert_eq(rd16(cap->data[1] + 14 + 4), 4);
    cr_assert_eq(rd16(cap->data[NEIGH_QUEUE_FRAMES] + 14 + 4), NEIGH_QUEUE_FRAMES + 3);
}

/* A server's first burst to one client address while ARP resolves it: 256
 * connections at once (conn_many's 256 handshakes in flight) make 256
 * SYN-ACKs. All of them wait and leave with the reply; with a queue of 16
 * the rest waited for TCP's 1 s retransmission. */
Test(arp, burst_of_256_waits_whole)
{
    for (unsigned i = 0; i < 256; i++)
        send_ip(ADDR_PEER, i);
    cr_assert_eq(neigh_queued(st, ADDR_PEER), 256);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_queue_drop, 0);
    arp_reply_from(ADDR_PEER, MAC_PEER, 1000);
    cr_assert_eq(cap->n, 1 + 256);
    for (unsigned i = 0; i < 256; i++)
        cr_assert_eq(rd16(cap->data[1 + i] + 14 + 4), i, "in order");
}

Test(arp, reachable_expires_to_probe_then_removed)
{
    /* RFC 826: a reply addressed to us adds its sender. */
    arp_reply_from(ADDR_PEER, MAC_PEER, 0);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_REACHABLE);
    send_ip(ADDR_PEER, NEIGH_REACHABLE_NS - 1);
    cr_assert_eq(cap->n, 1, "sent directly, no request");
    send_ip(ADDR_PEER, NEIGH_REACHABLE_NS);
    /* The frame still goes out, followed by a request to revalidate. */
    cr_assert_eq(cap->n, 3);
    cr_assert_eq(rd16(cap->data[1] + 12), 0x0800);
    cr_assert_eq(rd16(cap->data[2] + 12), 0x0806);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_PROBE);
    /* A reply confirms it again. */
    arp_reply_from(ADDR_PEER, MAC_PEER, NEIGH_REACHABLE_NS + 1);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_REACHABLE);
    cr_assert_eq(tcpsm_stack_next_deadline(st), UINT64_MAX);
    /* Expire again; this time nobody answers. */
    uint64_t t = 2 * NEIGH_REACHABLE_NS + 1;
    send_ip(ADDR_PEER, t);
    tcpsm_stack_timers(st, t + SEC);
    tcpsm_stack_timers(st, t + 2 * SEC);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_PROBE);
    tcpsm_stack_timers(st, t + 3 * SEC);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_NONE);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_queue_drop, 0);
}

Test(arp, gateway_resolved_for_off_link)
{
    send_ip(IP(203, 0, 113, 5), 0);
    cr_assert_eq(neigh_lookup(st, ADDR_GW, NULL), NEIGH_INCOMPLETE);
    cr_assert_eq(rd32(cap->data[0] + 14 + 24), ADDR_GW);
    arp_reply_from(ADDR_GW, MAC_GW, 1);
    cr_assert_eq(cap->n, 2);
    cr_assert_arr_eq(cap->data[1], MAC_GW, 6);
    cr_assert_eq(rd32(cap->data[1] + 14 + 16), IP(203, 0, 113, 5));
}

static void setup_small(void) { setup_n(3); }
TestSuite(neigh_full, .init = setup_small, .fini = teardown);

Test(neigh_full, evicts_lru_resolved_entry)
{
    for (unsigned i = 0; i < 3; i++) {
        uint8_t mac[6] = { 0x02, 0, 0, 0, 1, (uint8_t)i };
        send_ip(IP(198, 18, 0, 10 + i), i * 10);
        arp_reply_from(IP(198, 18, 0, 10 + i), mac, i * 10 + 1);
    }
    send_ip(IP(198, 18, 0, 10), 100); /* .10 is now the most recently used */
    cr_assert_eq(neigh_count(st), 3);
    send_ip(IP(198, 18, 0, 20), 200);
    cr_assert_eq(neigh_count(st), 3);
    cr_assert_eq(neigh_lookup(st, IP(198, 18, 0, 11), NULL), NEIGH_NONE, "LRU evicted");
    cr_assert_eq(neigh_lookup(st, IP(198, 18, 0, 10), NULL), NEIGH_REACHABLE);
    cr_assert_eq(neigh_lookup(st, IP(198, 18, 0, 20), NULL), NEIGH_INCOMPLETE);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_full, 0);
}

Test(neigh_full, all_incomplete_counts_full)
{
    for (unsigned i = 0; i < 3; i++)
        send_ip(IP(198, 18, 0, 10 + i), i);
    send_ip(IP(198, 18, 0, 20), 10);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_full, 1);
    cr_assert_eq(neigh_lookup(st, IP(198, 18, 0, 20), NULL), NEIGH_NONE);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_req_out, 3);
}

TestSuite(eth, .init = setup, .fini = teardown);

Test(eth, drops_counted_by_reason)
{
    uint8_t f[128];
    static const uint8_t other[6] = { 0x02, 9, 9, 9, 9, 9 };
    static const uint8_t zero[6];
    uint8_t pl[8] = { 0 };
    feed(st, f, 13, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->eth_drop_short, 1);

    size_t n = mk_ip(f, other, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, pl, 8);
    feed(st, f, n, 0);                                  /* another host's MAC */
    n = mk_ip(f, MAC_US, MAC_US, ADDR_PEER, ADDR_US, 1, 5, pl, 8);
    feed(st, f, n, 0);                                  /* our own frame looped back */
    n = mk_ip(f, eth_bcast_mac(), MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, pl, 8);
    feed(st, f, n, 0);                                  /* broadcast IPv4 */
    n = mk_arp(f, eth_bcast_mac(), MAC_US, 1, MAC_PEER, ADDR_PEER, zero, ADDR_US);
    feed(st, f, n, 0);                                  /* broadcast ARP, our source */
    cr_assert_eq(tcpsm_stack_counters(st)->eth_drop_not_us, 4);

    n = mk_ip(f, MAC_US, MAC_PEER, ADDR_PEER, ADDR_US, 1, 5, pl, 8);
    wr16(f + 12, 0x88cc);                               /* LLDP */
    feed(st, f, n, 0);
    wr16(f + 12, 0x8100);                               /* 802.1Q tag */
    feed(st, f, n, 0);
    wr16(f + 12, 0x0040);                               /* 802.3 length */
    feed(st, f, n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->eth_drop_proto, 3);
    cr_assert_eq(tcpsm_stack_counters(st)->eth_in, 8);
    cr_assert_eq(tcpsm_stack_counters(st)->ip_in, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_in, 0);
    cr_assert_eq(cap->n, 0);
}

Test(eth, tx_refused_counts_tx_drop)
{
    arp_reply_from(ADDR_PEER, MAC_PEER, 0);
    cap->refuse = 1;
    uint8_t f[64];
    static const uint8_t zero[6];
    size_t n = mk_arp(f, MAC_US, MAC_PEER, 1, MAC_PEER, ADDR_PEER, zero, ADDR_US);
    feed(st, f, n, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->tx_drop, 1);
    cr_assert_eq(tcpsm_stack_counters(st)->eth_out, 0);
}

Test(eth, batch_larger_than_tx_batch_is_flushed_in_parts)
{
    arp_reply_from(ADDR_PEER, MAC_PEER, 0);
    uint8_t f[64];
    static const uint8_t zero[6];
    size_t n = mk_arp(f, MAC_US, MAC_PEER, 1, MAC_PEER, ADDR_PEER, zero, ADDR_US);
    struct tcpsm_frame fr[TCPSM_TX_BATCH + 10];
    for (unsigned i = 0; i < TCPSM_TX_BATCH + 10; i++)
        fr[i] = (struct tcpsm_frame){ .data = f, .len = (uint32_t)n };
    tcpsm_stack_input(st, fr, TCPSM_TX_BATCH + 10, 0);
    cr_assert_eq(cap->n, TCPSM_TX_BATCH + 10);
    cr_assert_eq(tcpsm_stack_counters(st)->arp_reply_out, TCPSM_TX_BATCH + 10);
}

/* The repair after a holder died halfway (neigh_check): neigh_remove stopped
 * after unlinking an entry from its hash chain, before marking it free: in
 * use, found by no lookup (a second entry would be made for the address),
 * and its timer or the LRU eviction would have walked its chain past the
 * end. The audit sees it; the repair relinks it from its state. */
TestSuite(neigh_repair, .init = setup, .fini = teardown);

Test(neigh_repair, entry_off_its_chain_relinked)
{
    send_ip(ADDR_PEER, 0);
    arp_reply_from(ADDR_PEER, MAC_PEER, 0);
    send_ip(IP(198, 18, 0, 7), 0);
    arp_reply_from(IP(198, 18, 0, 7), MAC_PEER, 0);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_REACHABLE);
    struct neigh_table *t = st->neigh;
    cr_assert_eq(t->count, 2);
    int32_t idx = -1;
    for (uint32_t i = 0; i < t->max; i++)
        if (t->e[i].state != NEIGH_NONE && addr_is_v4(&t->e[i].ip) &&
            addr_v4(&t->e[i].ip) == ADDR_PEER)
            idx = (int32_t)i;
    cr_assert_geq(idx, 0);
    for (uint32_t b = 0; b < t->nbuckets; b++)
        for (int32_t *pp = &t->bucket[b]; *pp >= 0; pp = &t->e[*pp].next)
            if (*pp == idx) {
                *pp = t->e[idx].next;
                break;
            }
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_NONE);
    char why[256];
    cr_assert_gt(tcpsm_stack_audit(st, why, sizeof why), 0, "the audit does not see it");
    cr_assert_gt(tcpsm_stack_repair(st, 0), 0);
    cr_assert_eq(tcpsm_stack_audit(st, why, sizeof why), 0, "%s", why);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_REACHABLE);
    cr_assert_eq(neigh_lookup(st, IP(198, 18, 0, 7), NULL), NEIGH_REACHABLE);
    cr_assert_eq(t->count, 2);
}

/* enqueue linked a frame and was cut before counting it: the queue is not
 * whole (count and bytes short by one). The audit sees it; the repair frees
 * every linked frame (no block left behind) and empties the queue. */
Test(neigh_repair, queue_cut_after_linking_is_freed)
{
    for (unsigned i = 0; i < 3; i++)
        send_ip(ADDR_PEER, i);
    struct neigh_table *t = st->neigh;
    struct neigh *n = NULL;
    for (uint32_t i = 0; i < t->max; i++)
        if (t->e[i].state == NEIGH_INCOMPLETE)
            n = &t->e[i];
    cr_assert_not_null(n);
    cr_assert_eq(n->qn, 3);
    n->qn--;                                /* the cut: linked, not counted */
    n->qbytes -= n->qtail->len;
    uint64_t drops = tcpsm_stack_counters(st)->neigh_queue_drop;
    char why[256];
    cr_assert_gt(tcpsm_stack_audit(st, why, sizeof why), 0, "the audit does not see it");
    cr_assert_gt(tcpsm_stack_repair(st, 0), 0);
    cr_assert_eq(tcpsm_stack_audit(st, why, sizeof why), 0, "%s", why);
    cr_assert_null(n->qhead);
    cr_assert_null(n->qtail);
    cr_assert_eq(n->qn, 0);
    cr_assert_eq(tcpsm_stack_counters(st)->neigh_queue_drop, drops + 3, "all 3 frames freed");
    /* the entry still resolves; later frames wait and leave as before */
    send_ip(ADDR_PEER, 5);
    arp_reply_from(ADDR_PEER, MAC_PEER, 6);
    cr_assert_eq(neigh_lookup(st, ADDR_PEER, NULL), NEIGH_REACHABLE);
}
