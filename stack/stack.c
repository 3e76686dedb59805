/* The stack object: creation with validated config, the public entry
 * points, and the tx batch flush. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "eth.h"
#include "addr.h"
#include "ipv4.h"
#include "ipv4_frag.h"
#include "ipv6.h"
#include "ipv6_frag.h"
#include "nd.h"
#include "neigh.h"
#include "stack.h"
#include "tcp.h"
#include "wire.h"

#define DEF_MAX_SOCKS 65536
#define DEF_BUF       (256u * 1024)
#define DEF_MSL_MS    30000
#define MIN_MTU       68        /* RFC 791: every host must accept 68-byte datagrams */

/* Hosts of the stacks this process runs (see stack.h). Process memory, not
 * the stack's: another program mapping the same stack has its own. */
struct stack_host stack_hosts[TCPSM_MAX_HOSTS];

static unsigned null_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    (void)dev; (void)f; (void)n;
    return 0;
}
static const struct tcpsm_netdev_ops null_ops = { .send = null_send };
/* What a process that has not bound the stack reaches: a link that takes
 * nothing, a common MTU, no offloads, no callbacks. */
static struct tcpsm_netdev null_dev = { .ops = &null_ops, .mtu = 1500 };
const struct stack_host stack_host_none = { .dev = &null_dev };

/* The timers' callbacks by kind (timer.h), resolved in this process. */
static const tcpsm_timer_fn timer_fns[TIMER_NKINDS] = {
    [TIMER_TCP] = tcp_conn_timer_fire,
    [TIMER_NEIGH] = neigh_timer_fire,
    [TIMER_ND] = nd_timer_fire,
    [TIMER_IP6_FRAG] = ip6_frag_timer_fire,
};

static bool dev_ok(const struct tcpsm_netdev *dev)
{
    return dev && dev->ops && dev->ops->send && dev->mtu >= MIN_MTU;
}

static void host_set(struct stack_host *h, const struct tcpsm_stack *st,
                     const struct tcpsm_config *cfg, struct tcpsm_netdev *dev)
{
    h->dev = dev;
    h->sock_event = cfg->sock_event;
    h->trace = cfg->trace;
    h->cb_ctx = cfg->cb_ctx;
    h->st = st;
}

int tcpsm_stack_bind(struct tcpsm_stack *st, const struct tcpsm_config *cfg,
                     struct tcpsm_netdev *dev)
{
    if (!st || !cfg || !dev_ok(dev) || st->host >= TCPSM_MAX_HOSTS)
        return -EINVAL;
    struct stack_host *h = &stack_hosts[st->host];
    if (h->st && h->st != st)
        return -EBUSY;
    host_set(h, st, cfg, dev);
    return 0;
}

void tcpsm_stack_unbind(struct tcpsm_stack *st)
{
    if (st && st->host < TCPSM_MAX_HOSTS && stack_hosts[st->host].st == st)
        memset(&stack_hosts[st->host], 0, sizeof(stack_hosts[0]));
}

static bool config_ok(const struct tcpsm_config *c, const struct tcpsm_netdev *dev)
{
    static const uint8_t zero[6];
    if (!c || !dev_ok(dev))
        return false;
    bool v6 = !addr6_is_zero(c->addr6);
    if (c->addr == 0 && !v6)
        return false;
    if (c->addr != 0) {
        if (c->prefix_len < 1 || c->prefix_len > 32)
            return false;
        uint8_t top = (uint8_t)(c->addr >> 24);
        if (top == 127 || top >= 224)
            return false;
    }
    if (v6) {
        /* a unicast global address; the IPv6 link MTU is at least 1280 (RFC 8200 5) */
        struct tcpsm_addr a = addr_from6(c->addr6);
        if (c->prefix6_len < 1 || c->prefix6_len > 128 || addr6_is_multicast(c->addr6) ||
            addr6_is_loopback(c->addr6) || addr6_is_linklocal(c->addr6) || addr_is_v4(&a) ||
            dev->mtu < IPV6_MIN_MTU)
            return false;
        if (!addr6_is_zero(c->gateway6) && (addr6_is_multicast(c->gateway6) ||
            memcmp(c->gateway6, c->addr6, 16) == 0 ||
            !(addr6_is_linklocal(c->gateway6) ||
              addr6_prefix_eq(c->gateway6, c->addr6, c->prefix6_len))))
            return false;
    }
    if ((c->mac[0] & 1) || memcmp(c->mac, zero, 6) == 0)
        return false;
    return true;
}

struct tcpsm_stack *tcpsm_stack_new(const struct tcpsm_config *cfg, struct tcpsm_netdev *dev,
                                    uint64_t now)
{
    if (!config_ok(cfg, dev))
        return NULL;
    unsigned hi = 0;
    while (hi < TCPSM_MAX_HOSTS && stack_hosts[hi].st)
        hi++;
    if (hi == TCPSM_MAX_HOSTS)
        return NULL;
    /* Zeroed up to the tx slots only: they are scratch, written before
     * every read, and 128 KiB of zeroes per stack is most of the cost of
     * creating one (the fuzzer makes one per input). */
    struct tcpsm_stack *st = mem_alloc(sizeof(*st));
    if (!st)
        return NULL;
    memset(st, 0, offsetof(struct tcpsm_stack, txbuf));
    st->cfg = *cfg;
    st->cfg.sock_event = NULL;          /* code addresses: in the host only */
    st->cfg.trace = NULL;
    st->cfg.cb_ctx = NULL;
    st->host = hi;
    host_set(&stack_hosts[hi], st, cfg, dev);
    st->now = now;
    st->netmask = cfg->prefix_len >= 32 ? 0xffffffffu :
                  cfg->prefix_len == 0 ? 0 : ~(0xffffffffu >> cfg->prefix_len);
    if (!st->cfg.max_socks)
        st->cfg.max_socks = DEF_MAX_SOCKS;
    if (!st->cfg.sndbuf)
        st->cfg.sndbuf = DEF_BUF;
    if (!st->cfg.rcvbuf)
        st->cfg.rcvbuf = DEF_BUF;
    if (!st->cfg.msl_ms)
        st->cfg.msl_ms = DEF_MSL_MS;
    if (!st->cfg.neigh_max)
        st->cfg.neigh_max = NEIGH_DEFAULT_MAX;
    /* A gateway must be an on-link host, or we could never ARP for it. */
    if (st->cfg.gateway &&
        (!cfg->addr || st->cfg.gateway == cfg->addr || !ipv4_on_link_host(st, st->cfg.gateway))) {
        tcpsm_stack_unbind(st);
        mem_free(st);
        return NULL;
    }
    timer_heap_init(&st->timers);
    if (neigh_init(st, st->cfg.neigh_max) < 0) {
        tcpsm_stack_unbind(st);
        mem_free(st);
        return NULL;
    }
    if (tcp_init(st) < 0) {
        neigh_fini(st);
        timer_heap_free(&st->timers);
        tcpsm_stack_unbind(st);
        mem_free(st);
        return NULL;
    }
    if (ipv6_init(st, now) < 0 || ipv4_frag_init(st) < 0) {
        tcpsm_stack_free(st);
        return NULL;
    }
    /* the DAD probes and router solicitation */
    stack_tx_flush(st);
    return st;
}

void tcpsm_stack_free(struct tcpsm_stack *st)
{
    if (!st)
        return;
    tcp_fini(st);
    ipv4_frag_fini(st);
    ipv6_fini(st);
    neigh_fini(st);
    timer_heap_free(&st->timers);
    tcpsm_stack_unbind(st);
    mem_free(st);
}

void stack_tx_flush(struct tcpsm_stack *st)
{
    if (st->ntx == 0)
        return;
    unsigned n = st->ntx;
    struct tcpsm_netdev *dev = stack_host(st)->dev;
    unsigned sent = dev->ops->send(dev, st->tx, n);
    if (sent > n)
        sent = n;
    for (unsigned i = 0; i < sent; i++) {
        st->cnt.eth_out++;
        uint16_t type = get16(st->tx[i].data + 12);
        if (type == ETH_TYPE_IPV4)
            st->cnt.ip_out++;
        else if (type == ETH_TYPE_IPV6)
            st->cnt.ip6_out++;
    }
    st->cnt.tx_drop += n - sent;
    st->ntx = 0;
    st->tx_pinned = 0;
}

void tcpsm_stack_input(struct tcpsm_stack *st, const struct tcpsm_frame *frames, unsigned n,
                       uint64_t now)
{
    st->now = now;
    struct tcp_slice more[TCPSM_GRO_MAX];
    for (unsigned i = 0; i < n; i++) {
        /* software GRO: the frames that continue this one's segment */
        unsigned left = n - i < TCPSM_GRO_MAX + 1 ? n - i : TCPSM_GRO_MAX + 1;
        st->gro_n = tcp_gro_run(st, &frames[i], left, more, &st->gro_bytes);
        st->gro_more = more;
        bool v6 = frames[i].len >= 14 && get16(frames[i].data + 12) == ETH_TYPE_IPV6;
        st->gro_th = frames[i].data + 14 + (v6 ? 40 : 20);
        st->gro_taken = false;
        st->rx_flags = frames[i].flags & (TCPSM_FRAME_CSUM_PARTIAL | TCPSM_FRAME_CSUM_VALID);
        eth_input(st, frames[i].data, frames[i].len, now);
        if (st->gro_n && st->gro_taken) {
            /* taken by TCP input: counted as the frames they were */
            st->cnt.eth_in += st->gro_n;
            if (v6)
                st->cnt.ip6_in += st->gro_n;
            else
                st->cnt.ip_in += st->gro_n;
            st->cnt.tcp_in += st->gro_n;
            st->cnt.tcp_gro_frames += st->gro_n;
            i += st->gro_n;
        }
        st->gro_n = 0;
    }
    st->gro_more = NULL;        /* no process address stays in the shared stack */
    st->gro_th = NULL;
    st->rx_flags = 0;
    tcp_input_batch_end(st, now);
    tcp_mem_wake_senders(st);
    stack_tx_flush(st);
}

void tcpsm_stack_input_hold(struct tcpsm_stack *st, const struct tcpsm_frame *frames,
                            unsigned n, uint64_t now)
{
    tcp_hold_acks(st, true);
    tcpsm_stack_input(st, frames, n, now);
    tcp_hold_acks(st, false);
}

unsigned tcpsm_stack_release_acks(struct tcpsm_stack *st, uint64_t now)
{
    return tcpsm_stack_release_acks_before(st, now, UINT64_MAX);
}

unsigned tcpsm_stack_release_acks_before(struct tcpsm_stack *st, uint64_t now,
                                         uint64_t held_before)
{
    if (!tcp_acks_held(st))
        return 0;
    st->now = now;
    unsigned n = tcp_release_acks(st, now, held_before);
    stack_tx_flush(st);
    return n;
}

unsigned tcpsm_stack_release_output(struct tcpsm_stack *st, uint64_t now)
{
    unsigned n = tcp_release_output(st, now);
    if (n) {
        st->now = now;
        tcp_mem_wake_senders(st);
        stack_tx_flush(st);
    }
    return n;
}

void tcpsm_stack_timers(struct tcpsm_stack *st, uint64_t now)
{
    st->now = now;
    timer_run(&st->timers, timer_fns, st, now);
    tcp_mem_wake_senders(st);
    stack_tx_flush(st);
}

void tcpsm_stack_abort_all(struct tcpsm_stack *st, uint64_t now)
{
    st->now = now;
    tcp_abort_all(st, now);
    stack_tx_flush(st);
}

uint64_t tcpsm_stack_next_deadline(const struct tcpsm_stack *st)
{
    return timer_next(&st->timers);
}

const struct tcpsm_counters *tcpsm_stack_counters(const struct tcpsm_stack *st)
{
    return &st->cnt;
}

uint32_t tcpsm_stack_addr(const struct tcpsm_stack *st)
{
    return st->cfg.addr;
}

size_t tcpsm_stack_nsocks(const struct tcpsm_stack *st)
{
    return tcp_nsocks(st);
}
