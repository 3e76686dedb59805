/* Path MTU per destination (pmtu.h). A small table scanned linearly: it is
 * read once per new connection and written once per validated ICMP error. */
#include <stdatomic.h>
#include <string.h>

#include "addr.h"
#include "eth.h"
#include "ipv4.h"
#include "ipv6.h"
#include "pmtu.h"
#include "stack.h"

static bool live(const struct pmtu_entry *e, uint64_t now)
{
    return e->expires && e->expires > now;
}

void pmtu_learn(struct tcpsm_stack *st, const struct tcpsm_addr *dst, uint32_t mtu, uint64_t now)
{
    struct pmtu_cache *c = &st->pmtu;
    struct pmtu_entry *slot = NULL;
    for (unsigned i = 0; i < PMTU_MAX; i++) {
        struct pmtu_entry *e = &c->e[i];
        if (live(e, now) && memcmp(&e->dst, dst, sizeof(*dst)) == 0) {
            if (mtu < e->mtu) {
                e->mtu = mtu;
                e->expires = now + PMTU_EXPIRE_NS;
            }
            return;
        }
        /* a free or expired entry, else the one that expires first */
        if (!slot || (live(slot, now) && (!live(e, now) || e->expires < slot->expires)))
            slot = e;
    }
    if (live(slot, now))
        st->cnt.pmtu_evicted++;
    /* the intent record around the entry's three stores (pmtu.h); the
     * signal fences keep the compiler from moving them across it (the
     * ordering argument of tcp_int.h tcp_stream_begin) */
    c->busy = (uint32_t)(slot - c->e) + 1;
    atomic_signal_fence(memory_order_seq_cst);
    slot->dst = *dst;
    slot->mtu = mtu;
    slot->expires = now + PMTU_EXPIRE_NS;
    atomic_signal_fence(memory_order_seq_cst);
    c->busy = 0;
    st->cnt.pmtu_learned++;
}

uint32_t pmtu_lookup(const struct tcpsm_stack *st, const struct tcpsm_addr *dst, uint64_t now)
{
    for (unsigned i = 0; i < PMTU_MAX; i++) {
        const struct pmtu_entry *e = &st->pmtu.e[i];
        if (live(e, now) && memcmp(&e->dst, dst, sizeof(*dst)) == 0)
            return e->mtu;
    }
    return 0;
}

/* An expiry is at most PMTU_EXPIRE_NS ahead of the time it was learnt;
 * the check allows as much again, since an entry point may run with a time
 * read a little before another's. */

/* The link's MTU for a family, as tcp_pmtu_update bounds what it learns;
 * in a process that has not bound the stack to its link, the largest
 * frame. */
static uint32_t link_mtu(const struct tcpsm_stack *st, bool v4)
{
    if (!v4)
        return ipv6_mtu_l4(st) + IPV6_HDR_LEN;
    if (stack_host(st) == &stack_host_none)
        return TCPSM_FRAME_MAX - ETH_HDR_LEN;   /* its device's MTU is not known here */
    return ipv4_mtu_l4(st) + IPV4_HDR_LEN;
}

static bool entry_ok(const struct tcpsm_stack *st, const struct pmtu_entry *e, unsigned i)
{
    bool v4 = addr_is_v4(&e->dst);
    uint32_t floor = v4 ? 552u : 1280u;   /* tcp_pmtu_update's floors */
    if (e->mtu < floor || e->mtu > link_mtu(st, v4) || e->expires > st->now + 2 * PMTU_EXPIRE_NS)
        return false;
    for (unsigned j = 0; j < i; j++)
        if (live(&st->pmtu.e[j], st->now) && memcmp(&st->pmtu.e[j].dst, &e->dst, sizeof(e->dst)) == 0)
            return false;               /* the second of a destination held twice */
    return true;
}

unsigned pmtu_check(struct tcpsm_stack *st, bool repair)
{
    struct pmtu_cache *c = &st->pmtu;
    unsigned faults = 0;
    uint32_t busy = c->busy;
    if (busy) {
        faults++;
        if (repair) {
            if (busy <= PMTU_MAX && c->e[busy - 1].expires) {
                c->e[busy - 1].expires = 0;
                st->cnt.repair_pmtu_dropped++;
            }
            c->busy = 0;
        }
    }
    for (unsigned i = 0; i < PMTU_MAX; i++) {
        struct pmtu_entry *e = &c->e[i];
        if (!live(e, st->now) || entry_ok(st, e, i))
            continue;
        faults++;
        if (repair) {
            e->expires = 0;
            st->cnt.repair_pmtu_dropped++;
        }
    }
    return faults;
}
