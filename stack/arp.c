/* ARP for IPv4 over Ethernet (RFC 826), with the neighbour cache in neigh.c. */
#include "arp.h"

#include <string.h>

#include "eth.h"
#include "ipv4.h"
#include "neigh.h"
#include "wire.h"

/* Offsets inside the 28-byte packet. */
enum { A_HTYPE = 0, A_PTYPE = 2, A_HLEN = 4, A_PLEN = 5, A_OP = 6, A_SHA = 8, A_SPA = 14,
       A_THA = 18, A_TPA = 24 };

static void arp_build(struct tcpsm_stack *st, const uint8_t *eth_dst, uint16_t op,
                      const uint8_t *tha, uint32_t tpa)
{
    uint8_t *f = eth_tx_slot(st);
    eth_write_hdr(f, eth_dst, st->cfg.mac, ETH_TYPE_ARP);
    uint8_t *a = f + ETH_HDR_LEN;
    put16(a + A_HTYPE, 1);
    put16(a + A_PTYPE, ETH_TYPE_IPV4);
    a[A_HLEN] = ETH_ALEN;
    a[A_PLEN] = 4;
    put16(a + A_OP, op);
    memcpy(a + A_SHA, st->cfg.mac, ETH_ALEN);
    put32(a + A_SPA, st->cfg.addr);
    memcpy(a + A_THA, tha, ETH_ALEN);
    put32(a + A_TPA, tpa);
    eth_tx_push(st, f, ETH_HDR_LEN + ARP_LEN);
}

void arp_send_request(struct tcpsm_stack *st, uint32_t ip)
{
    static const uint8_t zero[ETH_ALEN];
    st->cnt.arp_req_out++;
    arp_build(st, eth_broadcast, ARP_REQUEST, zero, ip);
}

void arp_input(struct tcpsm_stack *st, const uint8_t *a, size_t len, uint64_t now)
{
    st->cnt.arp_in++;
    /* Trailing bytes are Ethernet padding. */
    if (len < ARP_LEN || get16(a + A_HTYPE) != 1 || get16(a + A_PTYPE) != ETH_TYPE_IPV4 ||
        a[A_HLEN] != ETH_ALEN || a[A_PLEN] != 4) {
        st->cnt.arp_drop_bad++;
        return;
    }
    uint16_t op = get16(a + A_OP);
    const uint8_t *sha = a + A_SHA;
    uint32_t spa = get32(a + A_SPA), tpa = get32(a + A_TPA);
    if ((op != ARP_REQUEST && op != ARP_REPLY) || eth_is_multicast(sha)) {
        st->cnt.arp_drop_bad++;
        return;
    }
    static const uint8_t zero[ETH_ALEN];
    bool sha_ok = memcmp(sha, zero, ETH_ALEN) != 0;

    /* RFC 826 "packet reception": merge the sender into an existing entry;
     * add it if the packet is for us. A gratuitous ARP (spa == tpa) thus
     * refreshes an entry we have without creating one. We only keep
     * on-link senders (the only next hops we use), never 0.0.0.0 (RFC 5227
     * probes) nor our own address (a conflicting host). */
    bool learnable = sha_ok && spa != st->cfg.addr && ipv4_on_link_host(st, spa);
    bool merged = learnable && neigh_update(st, spa, sha, now);
    if (tpa != st->cfg.addr)
        return;
    if (learnable && !merged)
        neigh_learn(st, spa, sha, now);
    if (op == ARP_REQUEST && sha_ok) {
        st->cnt.arp_reply_out++;
        arp_build(st, sha, ARP_REPLY, sha, spa);
    }
}
