/* Neighbour discovery (RFC 4861) and duplicate address detection
 * (RFC 4862, optimistic as RFC 4429) for the stack's IPv6 addresses. */
#include "nd.h"

#include <string.h>

#include "addr.h"
#include "eth.h"
#include "icmp6.h"
#include "ipv6.h"
#include "neigh.h"
#include "wire.h"

#define OPT_SLLA 1
#define OPT_TLLA 2
#define OPT_MTU  5
#define ND_HLIM  255

static const uint8_t all_nodes[16] = { 0xff, 0x02, [15] = 1 };
static const uint8_t all_routers[16] = { 0xff, 0x02, [15] = 2 };
static const uint8_t unspec[16];

bool nd_is_our_group(const struct tcpsm_stack *st, const uint8_t *g)
{
    if (!st->v6.on)
        return false;
    if (memcmp(g, all_nodes, 16) == 0)
        return true;
    uint8_t sn[16];
    addr6_solicited(st->cfg.addr6, sn);
    if (memcmp(g, sn, 16) == 0)
        return true;
    addr6_solicited(st->v6.ll, sn);
    return memcmp(g, sn, 16) == 0;
}

/* Index of our address a (0 global, 1 link-local) in any DAD state, or -1. */
static int our_index(const struct tcpsm_stack *st, const uint8_t *a)
{
    if (memcmp(a, st->cfg.addr6, 16) == 0)
        return 0;
    if (memcmp(a, st->v6.ll, 16) == 0)
        return 1;
    return -1;
}

/* Finds the link-layer address option of type want in opts. Returns -1 for
 * malformed options (RFC 4861 7.1.1: a zero length option), 0 if absent, 1
 * with *mac set if found. *mtu receives an MTU option when mtu != NULL. */
static int parse_opts(const uint8_t *o, size_t len, uint8_t want, const uint8_t **mac,
                      uint32_t *mtu)
{
    int found = 0;
    while (len > 0) {
        if (len < 2 || o[1] == 0 || (size_t)o[1] * 8 > len)
            return -1;
        size_t ol = (size_t)o[1] * 8;
        if (o[0] == want && ol >= 8 && !eth_is_multicast(o + 2)) {
            *mac = o + 2;
            found = 1;
        }
        if (o[0] == OPT_MTU && mtu && ol == 8)
            *mtu = get32(o + 4);
        o += ol;
        len -= ol;
    }
    return found;
}

void nd_send_ns(struct tcpsm_stack *st, const uint8_t *target, const uint8_t *mac)
{
    const uint8_t *src = ipv6_src_for(st, target);
    if (!src)
        return;
    /* RFC 4429 3.3 would leave the source link-layer option out while the
     * address is optimistic, but Linux does not answer such a solicitation
     * (ndisc_recv_ns makes no neighbour entry without it), which would hold
     * every first connection for the whole DAD time. The option is sent:
     * the risk RFC 4429 avoids (overriding a cache entry of the address's
     * real owner) is a duplicate address, which DAD reports within 1 s. */
    bool slla = true;
    size_t len = 24 + (slla ? 8 : 0);
    uint8_t *m = ipv6_out_begin(st, len);
    if (!m)
        return;
    memset(m, 0, len);
    m[0] = ND_NS;
    memcpy(m + 8, target, 16);
    if (slla) {
        m[24] = OPT_SLLA;
        m[25] = 1;
        memcpy(m + 26, st->cfg.mac, ETH_ALEN);
    }
    uint8_t dst[16];
    if (mac)
        memcpy(dst, target, 16);
    else
        addr6_solicited(target, dst);
    icmp6_set_csum(m, len, src, dst);
    st->cnt.nd_ns_out++;
    if (mac)
        ipv6_out_commit_mac(st, src, dst, IPPROTO_ICMPV6_, len, ND_HLIM, mac);
    else
        ipv6_out_commit(st, src, dst, IPPROTO_ICMPV6_, len, 0, ND_HLIM);
}

/* DAD probe (RFC 4862 5.4.2): from ::, to the solicited-node group, no option. */
static void send_dad(struct tcpsm_stack *st, const uint8_t *target)
{
    uint8_t *m = ipv6_out_begin(st, 24);
    if (!m)
        return;
    memset(m, 0, 24);
    m[0] = ND_NS;
    memcpy(m + 8, target, 16);
    uint8_t dst[16];
    addr6_solicited(target, dst);
    icmp6_set_csum(m, 24, unspec, dst);
    st->cnt.nd_ns_out++;
    ipv6_out_commit(st, unspec, dst, IPPROTO_ICMPV6_, 24, 0, ND_HLIM);
}

static void send_rs(struct tcpsm_stack *st)
{
    /* RFC 4429 3.2: from the optimistic link-local address without SLLA;
     * once preferred, with it (RFC 4861 6.3.7). */
    bool slla = st->v6.dad[1] == ND_ADDR_PREFERRED;
    const uint8_t *src = st->v6.dad[1] == ND_ADDR_DUPLICATE ? unspec : st->v6.ll;
    if (src == unspec)
        slla = false;
    size_t len = 8 + (slla ? 8 : 0);
    uint8_t *m = ipv6_out_begin(st, len);
    if (!m)
        return;
    memset(m, 0, len);
    m[0] = ND_RS;
    if (slla) {
        m[8] = OPT_SLLA;
        m[9] = 1;
        memcpy(m + 10, st->cfg.mac, ETH_ALEN);
    }
    icmp6_set_csum(m, len, src, all_routers);
    st->cnt.nd_rs_out++;
    st->v6.rs_sent++;
    ipv6_out_commit(st, src, all_routers, IPPROTO_ICMPV6_, len, 0, ND_HLIM);
}

static void send_na(struct tcpsm_stack *st, const uint8_t *target, const uint8_t *dst,
                    uint8_t flags)
{
    uint8_t *m = ipv6_out_begin(st, 32);
    if (!m)
        return;
    memset(m, 0, 32);
    m[0] = ND_NA;
    m[4] = flags;
    memcpy(m + 8, target, 16);
    m[24] = OPT_TLLA;
    m[25] = 1;
    memcpy(m + 26, st->cfg.mac, ETH_ALEN);
    icmp6_set_csum(m, 32, target, dst);
    st->cnt.nd_na_out++;
    ipv6_out_commit(st, target, dst, IPPROTO_ICMPV6_, 32, 0, ND_HLIM);
}

static bool router_wanted(const struct tcpsm_stack *st)
{
    return addr6_is_zero(st->cfg.gateway6) &&
           (addr6_is_zero(st->v6.router) || st->now >= st->v6.router_until);
}

static void rearm(struct tcpsm_stack *st)
{
    uint64_t at = UINT64_MAX;
    if (st->v6.dad_at && st->v6.dad_at < at)
        at = st->v6.dad_at;
    if (st->v6.rs_at && st->v6.rs_at < at)
        at = st->v6.rs_at;
    if (at == UINT64_MAX)
        timer_cancel(&st->timers, &st->v6.timer);
    else
        timer_set(&st->timers, &st->v6.timer, at);
}

void nd_timer_fire(void *ctx, struct tcpsm_timer *tm, uint64_t now)
{
    struct tcpsm_stack *st = ctx;
    (void)tm;
    if (st->v6.dad_at && now >= st->v6.dad_at) {
        /* RFC 4862 5.4: DupAddrDetectTransmits = 1, no conflict seen */
        for (int i = 0; i < 2; i++)
            if (st->v6.dad[i] == ND_ADDR_TENTATIVE)
                st->v6.dad[i] = ND_ADDR_PREFERRED;
        st->v6.dad_at = 0;
    }
    if (st->v6.rs_at && now >= st->v6.rs_at) {
        st->v6.rs_at = 0;
        if (router_wanted(st) && st->v6.rs_sent < ND_MAX_RS) {
            send_rs(st);
            if (st->v6.rs_sent < ND_MAX_RS)
                st->v6.rs_at = now + ND_RS_INTERVAL;
        }
    }
    rearm(st);
}

int nd_start(struct tcpsm_stack *st, uint64_t now)
{
    struct ipv6_state *v = &st->v6;
    tcpsm_timer_init(&v->timer, TIMER_ND);
    v->dad[0] = v->dad[1] = ND_ADDR_TENTATIVE;
    send_dad(st, st->cfg.addr6);
    send_dad(st, v->ll);
    v->dad_at = now + ND_RETRANS_NS;
    if (router_wanted(st)) {
        send_rs(st);
        v->rs_at = now + ND_RS_INTERVAL;
    }
    if (timer_set(&st->timers, &v->timer, v->dad_at) < 0)
        return -12;     /* -ENOMEM */
    return 0;
}

static void dad_conflict(struct tcpsm_stack *st, int i)
{
    st->cnt.nd_dad_dup++;
    st->v6.dad[i] = ND_ADDR_DUPLICATE;
}

static void ns_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *m, size_t len,
                     uint64_t now)
{
    const uint8_t *src = ip6 + 8, *dst = ip6 + 24, *target = m + 8;
    const uint8_t *slla = NULL;
    bool from_unspec = addr6_is_zero(src);
    int o = parse_opts(m + 24, len - 24, OPT_SLLA, &slla, NULL);
    /* RFC 4861 7.1.1 */
    if (addr6_is_multicast(target) || o < 0 ||
        (from_unspec && (o > 0 || dst[0] != 0xff || dst[11] != 1 || dst[12] != 0xff))) {
        st->cnt.nd_drop_bad++;
        return;
    }
    int i = our_index(st, target);
    if (i < 0 || st->v6.dad[i] == ND_ADDR_DUPLICATE)
        return;                         /* not ours: silently ignored */
    if (st->v6.dad[i] == ND_ADDR_TENTATIVE) {
        /* RFC 4862 5.4.3: another node's DAD probe for our tentative address.
         * (Our own probes do not come back: the link filters our MAC.) */
        if (from_unspec) {
            dad_conflict(st, i);
        } else {
            /* RFC 4429 3.1: an optimistic address still answers, without Override */
            if (slla) {
                struct tcpsm_addr a = addr_from6(src);
                neigh_learn_addr(st, &a, slla, true, now);
            }
            send_na(st, target, src, ND_NA_SOLICITED);
        }
        return;
    }
    if (from_unspec) {
        /* RFC 4861 7.2.4: to all-nodes, not solicited */
        send_na(st, target, all_nodes, ND_NA_OVERRIDE);
        return;
    }
    /* RFC 4861 7.2.3: the sender's link-layer address, STALE */
    if (slla) {
        struct tcpsm_addr a = addr_from6(src);
        neigh_learn_addr(st, &a, slla, true, now);
    }
    send_na(st, target, src, ND_NA_SOLICITED | ND_NA_OVERRIDE);
}

static void na_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *m, size_t len,
                     uint64_t now)
{
    const uint8_t *dst = ip6 + 24, *target = m + 8;
    const uint8_t *tlla = NULL;
    uint8_t flags = m[4];
    int o = parse_opts(m + 24, len - 24, OPT_TLLA, &tlla, NULL);
    /* RFC 4861 7.1.2 */
    if (addr6_is_multicast(target) || o < 0 ||
        (addr6_is_multicast(dst) && (flags & ND_NA_SOLICITED))) {
        st->cnt.nd_drop_bad++;
        return;
    }
    int i = our_index(st, target);
    if (i >= 0) {
        /* RFC 4862 5.4.4: someone holds our tentative address. For a
         * preferred one there is nothing to do but count it. */
        if (st->v6.dad[i] == ND_ADDR_TENTATIVE)
            dad_conflict(st, i);
        else
            st->cnt.nd_dad_dup++;
        return;
    }
    struct tcpsm_addr a = addr_from6(target);
    uint8_t cur[ETH_ALEN];
    enum neigh_state ns = neigh_lookup_addr(st, &a, cur);
    if (ns == NEIGH_NONE)
        return;                         /* RFC 4861 7.2.5: no entry, no action */
    bool solicited = flags & ND_NA_SOLICITED;
    if (ns == NEIGH_INCOMPLETE) {
        if (tlla)
            neigh_update_addr(st, &a, tlla, !solicited, now);
        return;
    }
    bool same = !tlla || memcmp(tlla, cur, ETH_ALEN) == 0;
    if (!(flags & ND_NA_OVERRIDE) && !same)
        return;                         /* keep the cached address; NUD decides */
    const uint8_t *mac = tlla ? tlla : cur;
    if (solicited)
        neigh_update_addr(st, &a, mac, false, now);
    else if (!same)
        neigh_update_addr(st, &a, mac, true, now);
    /* RFC 4861 7.2.5: a router that says it no longer is one */
    if (!(flags & ND_NA_ROUTER) && addr6_is_zero(st->cfg.gateway6) &&
        memcmp(st->v6.router, target, 16) == 0)
        memset(st->v6.router, 0, 16);
}

static void ra_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *m, size_t len,
                     uint64_t now)
{
    const uint8_t *src = ip6 + 8;
    const uint8_t *slla = NULL;
    uint32_t mtu = 0;
    /* RFC 4861 6.1.2 */
    if (len < 16 || !addr6_is_linklocal(src) || parse_opts(m + 16, len - 16, OPT_SLLA, &slla, &mtu) < 0) {
        st->cnt.nd_drop_bad++;
        return;
    }
    st->cnt.nd_ra_in++;
    struct tcpsm_addr a = addr_from6(src);
    if (slla)
        neigh_learn_addr(st, &a, slla, true, now);       /* RFC 4861 6.3.4 */
    if (mtu >= IPV6_MIN_MTU && mtu <= stack_dev(st)->mtu)
        st->v6.mtu = mtu;
    if (!addr6_is_zero(st->cfg.gateway6))
        return;                         /* the user's router wins */
    uint16_t life = get16(m + 6);
    if (life) {
        if (addr6_is_zero(st->v6.router) || st->now >= st->v6.router_until ||
            memcmp(st->v6.router, src, 16) == 0) {
            memcpy(st->v6.router, src, 16);
            st->v6.router_until = now + (uint64_t)life * 1000000000ull;
        }
    } else if (memcmp(st->v6.router, src, 16) == 0) {
        memset(st->v6.router, 0, 16);
    }
}

void nd_input(struct tcpsm_stack *st, const uint8_t *ip6, const uint8_t *m, size_t len,
              uint64_t now)
{
    /* RFC 4861 6.1, 7.1: hop limit 255 proves the sender is on-link */
    if (ip6[7] != ND_HLIM || m[1] != 0) {
        st->cnt.nd_drop_bad++;
        return;
    }
    switch (m[0]) {
    case ND_NS:
        st->cnt.nd_ns_in++;
        if (len < 24) {
            st->cnt.nd_drop_bad++;
            return;
        }
        ns_input(st, ip6, m, len, now);
        break;
    case ND_NA:
        st->cnt.nd_na_in++;
        if (len < 24) {
            st->cnt.nd_drop_bad++;
            return;
        }
        na_input(st, ip6, m, len, now);
        break;
    case ND_RA:
        ra_input(st, ip6, m, len, now);
        break;
    default:
        /* RS: for routers (RFC 4861 6.2.6). Redirect: not followed; a host
         * with one router gains nothing from it. */
        break;
    }
}
