/* Path MTU per destination (pmtu.h). A small table scanned linearly: it is
 * read once per new connection and written once per validated ICMP error. */
#include <string.h>

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
    slot->dst = *dst;
    slot->mtu = mtu;
    slot->expires = now + PMTU_EXPIRE_NS;
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
