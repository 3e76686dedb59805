/* Path MTU per destination (RFC 1191 6.3, RFC 8201 5.2): what ICMP
 * "fragmentation needed" / Packet Too Big taught about a destination,
 * shared by its connections and aged out. */
#ifndef TCPSM_PMTU_H
#define TCPSM_PMTU_H

#include <stdbool.h>
#include <stdint.h>

#include "tcpsm/core.h"

#define PMTU_MAX       128              /* destinations remembered */
#define PMTU_EXPIRE_NS (600ull * 1000000000ull) /* RFC 1191 6.3 / RFC 8201 5.3: 10 minutes,
                                                   Linux ip_rt_mtu_expires */

struct pmtu_entry {
    struct tcpsm_addr dst;
    uint32_t mtu;
    uint64_t expires;                   /* 0 = free */
};

struct pmtu_cache {
    struct pmtu_entry e[PMTU_MAX];
    /* Intent record: 1 + the index of the entry pmtu_learn is writing (0:
     * none). An entry is three stores (dst, mtu, expires): a holder killed
     * between them over a live entry would leave the new destination with
     * the old one's MTU, which no bound can tell from a right one. The
     * repair drops the entry named (pmtu_check). */
    uint32_t busy;
};

struct tcpsm_stack;

/* Remember mtu for dst (a lower value replaces a higher one; a higher one
 * waits for the entry to expire, RFC 1191 6.3). When the table is full the
 * entry closest to expiry makes room. */
void pmtu_learn(struct tcpsm_stack *st, const struct tcpsm_addr *dst, uint32_t mtu, uint64_t now);
/* The path MTU known for dst, 0 = none (the link's MTU applies). */
uint32_t pmtu_lookup(const struct tcpsm_stack *st, const struct tcpsm_addr *dst, uint64_t now);
/* Audit (repair false: counts the faults) or repair the table after a
 * holder of the stack lock died (tcpsm_stack_audit/_repair): the entry
 * being written (the intent record) and every live entry out of bounds (an
 * MTU below the floor, 552 for IPv4, 1280 for IPv6, or above the link's; an
 * expiry beyond now + 2 * PMTU_EXPIRE_NS; a destination held twice) is dropped.
 * Dropping is always safe: the path falls back to the link's MTU and is
 * learnt again from the next ICMP (or PLPMTUD probe). The table is a fixed
 * array aged by each entry's expiry against now, with no index, chain, free
 * list, count or timer to rebuild. Returns the faults found. */
unsigned pmtu_check(struct tcpsm_stack *st, bool repair);

#endif
