/* Path MTU per destination (RFC 1191 6.3, RFC 8201 5.2): what ICMP
 * "fragmentation needed" / Packet Too Big taught about a destination,
 * shared by its connections and aged out. */
#ifndef TCPSM_PMTU_H
#define TCPSM_PMTU_H

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
};

struct tcpsm_stack;

/* Remember mtu for dst (a lower value replaces a higher one; a higher one
 * waits for the entry to expire, RFC 1191 6.3). When the table is full the
 * entry closest to expiry makes room. */
void pmtu_learn(struct tcpsm_stack *st, const struct tcpsm_addr *dst, uint32_t mtu, uint64_t now);
/* The path MTU known for dst, 0 = none (the link's MTU applies). */
uint32_t pmtu_lookup(const struct tcpsm_stack *st, const struct tcpsm_addr *dst, uint64_t now);

#endif
