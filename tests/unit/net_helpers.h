/* Helpers shared by the link/network unit tests: a netdev that records
 * what the stack sends, and builders for crafted frames. */
#ifndef TCPSM_TEST_NET_HELPERS_H
#define TCPSM_TEST_NET_HELPERS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "stack.h"
#include "tcpsm/core.h"

#define CAP_MAX 512

struct capdev {
    struct tcpsm_netdev dev;
    unsigned n;
    uint32_t len[CAP_MAX];
    uint8_t data[CAP_MAX][TCPSM_FRAME_MAX];
    unsigned refuse;            /* frames to refuse at the next send() */
};

static inline unsigned cap_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    struct capdev *c = dev->priv;
    unsigned take = n > c->refuse ? n - c->refuse : 0;
    c->refuse = 0;
    for (unsigned i = 0; i < take && c->n < CAP_MAX; i++) {
        memcpy(c->data[c->n], f[i].data, f[i].len);
        c->len[c->n++] = f[i].len;
    }
    return take;
}

static const struct tcpsm_netdev_ops cap_ops = { .send = cap_send };

static inline struct capdev *cap_new(void)
{
    struct capdev *c = calloc(1, sizeof(*c));
    c->dev.ops = &cap_ops;
    c->dev.mtu = 1500;
    c->dev.priv = c;
    return c;
}

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define SEC 1000000000ull

static const uint8_t MAC_US[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t MAC_PEER[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t MAC_GW[6] = { 0x02, 0, 0, 0, 0, 0xfe };
static inline const uint8_t *eth_bcast_mac(void)
{
    static const uint8_t b[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    return b;
}
#define ADDR_US   IP(198, 18, 0, 1)
#define ADDR_PEER IP(198, 18, 0, 2)
#define ADDR_GW   IP(198, 18, 0, 254)

static inline struct tcpsm_config test_cfg(void)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof(c));
    c.addr = ADDR_US;
    c.prefix_len = 24;
    memcpy(c.mac, MAC_US, 6);
    return c;
}

static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An ARP packet in an Ethernet frame (42 bytes) at f. */
static inline size_t mk_arp(uint8_t *f, const uint8_t *edst, const uint8_t *esrc, uint16_t op,
                            const uint8_t *sha, uint32_t spa, const uint8_t *tha, uint32_t tpa)
{
    memcpy(f, edst, 6);
    memcpy(f + 6, esrc, 6);
    wr16(f + 12, 0x0806);
    uint8_t *a = f + 14;
    wr16(a, 1);
    wr16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    wr16(a + 6, op);
    memcpy(a + 8, sha, 6);
    wr32(a + 14, spa);
    memcpy(a + 18, tha, 6);
    wr32(a + 24, tpa);
    return 42;
}

/* An IPv4 datagram with payload pl/plen in an Ethernet frame at f; returns
 * the frame length. ihl in 32-bit words (options are NOPs). */
static inline size_t mk_ip(uint8_t *f, const uint8_t *edst, const uint8_t *esrc, uint32_t src,
                           uint32_t dst, uint8_t proto, unsigned ihl, const uint8_t *pl,
                           size_t plen)
{
    memcpy(f, edst, 6);
    memcpy(f + 6, esrc, 6);
    wr16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    size_t hl = ihl * 4;
    memset(ip, 0, hl);
    ip[0] = (uint8_t)(0x40 | ihl);
    wr16(ip + 2, (uint16_t)(hl + plen));
    wr16(ip + 4, 0x1234);
    wr16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = proto;
    wr32(ip + 12, src);
    wr32(ip + 16, dst);
    for (size_t i = 20; i < hl; i++)
        ip[i] = 1; /* NOP */
    wr16(ip + 10, csum_fold(csum_partial(ip, hl, 0)));
    memcpy(ip + hl, pl, plen);
    return 14 + hl + plen;
}

/* ICMP echo request (type 8) with id, seq and data; returns its length. */
static inline size_t mk_echo(uint8_t *m, uint8_t type, uint16_t id, uint16_t seq,
                             const uint8_t *data, size_t dlen)
{
    m[0] = type;
    m[1] = 0;
    wr16(m + 2, 0);
    wr16(m + 4, id);
    wr16(m + 6, seq);
    memcpy(m + 8, data, dlen);
    wr16(m + 2, csum_fold(csum_partial(m, 8 + dlen, 0)));
    return 8 + dlen;
}

static inline void feed(struct tcpsm_stack *st, const uint8_t *f, size_t len, uint64_t now)
{
    struct tcpsm_frame fr = { .data = (uint8_t *)f, .len = (uint32_t)len };
    tcpsm_stack_input(st, &fr, 1, now);
}

#endif
