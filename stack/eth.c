/* Ethernet II input filter and the tx batch slots. */
#include "eth.h"

#include <string.h>

#include "arp.h"
#include "ipv4.h"
#include "ipv6.h"
#include "wire.h"

const uint8_t eth_broadcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

void eth_input(struct tcpsm_stack *st, const uint8_t *frame, size_t len, uint64_t now)
{
    st->cnt.eth_in++;
    if (len < ETH_HDR_LEN) {
        st->cnt.eth_drop_short++;
        return;
    }
    const uint8_t *dst = frame, *src = frame + 6;
    uint16_t type = get16(frame + 12);
    bool to_us = memcmp(dst, st->cfg.mac, ETH_ALEN) == 0;
    bool bcast = memcmp(dst, eth_broadcast, ETH_ALEN) == 0;
    /* IPv6 multicast (RFC 2464 7): ipv6.c keeps the groups it listens to */
    bool mcast6 = dst[0] == 0x33 && dst[1] == 0x33 && type == ETH_TYPE_IPV6;

    /* Our own frames looped back by the link (AF_PACKET sees outgoing
     * frames too) and frames for other hosts are not ours. Broadcast is
     * only useful for ARP: we hold no broadcast IPv4 service. */
    if (memcmp(src, st->cfg.mac, ETH_ALEN) == 0 ||
        !(to_us || mcast6 || (bcast && type == ETH_TYPE_ARP))) {
        st->cnt.eth_drop_not_us++;
        return;
    }
    switch (type) {
    case ETH_TYPE_IPV4:
        ipv4_input(st, frame + ETH_HDR_LEN, len - ETH_HDR_LEN, now);
        break;
    case ETH_TYPE_IPV6:
        ipv6_input(st, frame + ETH_HDR_LEN, len - ETH_HDR_LEN, mcast6, now);
        break;
    case ETH_TYPE_ARP:
        arp_input(st, frame + ETH_HDR_LEN, len - ETH_HDR_LEN, now);
        break;
    default:
        /* 802.1Q tags, LLC lengths (< 0x600) and the rest. */
        st->cnt.eth_drop_proto++;
        break;
    }
}

void eth_write_hdr(uint8_t *frame, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    memcpy(frame, dst, ETH_ALEN);
    memcpy(frame + 6, src, ETH_ALEN);
    put16(frame + 12, type);
}

uint8_t *eth_tx_slot(struct tcpsm_stack *st)
{
    if (st->ntx == TCPSM_TX_BATCH)
        stack_tx_flush(st);
    return st->txbuf[st->ntx];
}

void eth_tx_push(struct tcpsm_stack *st, const uint8_t *frame, size_t len)
{
    uint8_t *slot = eth_tx_slot(st);
    struct tcpsm_frame *f = &st->tx[st->ntx];
    if (st->txp_on) {
        /* len counts the payload slices; only the headers are in the slot */
        *f = st->txp;
        len -= f->plen[0] + f->plen[1];
        if (f->plen[0])
            st->tx_pinned++;
    } else {
        memset(f, 0, sizeof(*f));
    }
    if (slot != frame)
        memcpy(slot, frame, len);
    f->data = slot;
    f->len = (uint32_t)len;
    st->ntx++;
}
