/* Neighbour cache (see neigh.h for states and limits).
 *
 * Entries live in one array sized cfg.neigh_max, found by an address-keyed
 * hash with chaining. Eviction scans for the least recently used entry; it
 * only runs when the table is full, so lookups stay O(1). */
#include "mem.h"
#include "neigh.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "arp.h"
#include "csum.h"
#include "eth.h"
#include "nd.h"

static uint32_t hash_ip(const struct neigh_table *t, const struct tcpsm_addr *a)
{
    uint32_t h = 0;
    for (int i = 0; i < 16; i += 4)
        h = (h ^ ((uint32_t)a->b[i] << 24 | (uint32_t)a->b[i + 1] << 16 |
                  (uint32_t)a->b[i + 2] << 8 | a->b[i + 3])) * 0x9e3779b1u;
    return (h ^ (h >> 16)) & (t->nbuckets - 1);
}

int neigh_init(struct tcpsm_stack *st, uint32_t max)
{
    if (max == 0 || max > (1u << 24))
        return -EINVAL;
    struct neigh_table *t = mem_calloc(1, sizeof(*t) + (size_t)max * sizeof(struct neigh));
    if (!t)
        return -ENOMEM;
    uint32_t nb = 1;
    while (nb < 2 * max)
        nb <<= 1;
    t->bucket = mem_alloc((size_t)nb * sizeof(int32_t));
    if (!t->bucket) {
        mem_free(t);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nb; i++)
        t->bucket[i] = -1;
    t->max = max;
    t->nbuckets = nb;
    for (uint32_t i = 0; i < max; i++)
        t->e[i].next = i + 1 < max ? (int32_t)(i + 1) : -1;
    t->free = 0;
    st->neigh = t;
    return 0;
}

/* The oldest waiting frame, unlinked (NULL: none). */
static struct neigh_frame *queue_pop(struct neigh *n)
{
    struct neigh_frame *f = n->qhead;
    if (!f)
        return NULL;
    n->qhead = f->next;
    if (!n->qhead)
        n->qtail = NULL;
    n->qn--;
    n->qbytes -= f->len;
    return f;
}

static void queue_clear(struct neigh *n, uint64_t *dropcnt)
{
    struct neigh_frame *f;
    while ((f = queue_pop(n))) {
        mem_free(f);
        if (dropcnt)
            (*dropcnt)++;
    }
}

void neigh_fini(struct tcpsm_stack *st)
{
    struct neigh_table *t = st->neigh;
    if (!t)
        return;
    for (uint32_t i = 0; i < t->max; i++) {
        if (t->e[i].state == NEIGH_NONE)
            continue;
        timer_cancel(&st->timers, &t->e[i].timer);
        queue_clear(&t->e[i], NULL);
    }
    mem_free(t->bucket);
    mem_free(t);
    st->neigh = NULL;
}

static struct neigh *find(const struct neigh_table *t, const struct tcpsm_addr *ip)
{
    for (int32_t i = t->bucket[hash_ip(t, ip)]; i >= 0; i = t->e[i].next)
        if (addr_eq(&t->e[i].ip, ip))
            return (struct neigh *)&t->e[i];
    return NULL;
}

/* Unlinks n, drops its queue (counted) and returns it to the free list. */
static void neigh_remove(struct tcpsm_stack *st, struct neigh *n)
{
    struct neigh_table *t = st->neigh;
    int32_t idx = (int32_t)(n - t->e);
    int32_t *pp = &t->bucket[hash_ip(t, &n->ip)];
    while (*pp != idx)
        pp = &t->e[*pp].next;
    *pp = n->next;
    timer_cancel(&st->timers, &n->timer);
    queue_clear(n, &st->cnt.neigh_queue_drop);
    n->state = NEIGH_NONE;
    n->next = t->free;
    t->free = idx;
    t->count--;
}


/* A fresh entry for ip, evicting the LRU non-INCOMPLETE entry when full. */
static struct neigh *neigh_alloc(struct tcpsm_stack *st, const struct tcpsm_addr *ip, uint64_t now)
{
    struct neigh_table *t = st->neigh;
    if (t->free < 0) {
        struct neigh *victim = NULL;
        for (uint32_t i = 0; i < t->max; i++) {
            struct neigh *n = &t->e[i];
            if (n->state != NEIGH_INCOMPLETE && (!victim || n->used < victim->used))
                victim = n;
        }
        if (!victim)
            return NULL;
        neigh_remove(st, victim);
    }
    int32_t idx = t->free;
    struct neigh *n = &t->e[idx];
    t->free = n->next;
    memset(n, 0, sizeof(*n));
    tcpsm_timer_init(&n->timer, TIMER_NEIGH);
    n->ip = *ip;
    n->used = now;
    uint32_t h = hash_ip(t, ip);
    n->next = t->bucket[h];
    t->bucket[h] = idx;
    t->count++;
    return n;
}

/* One ARP request, or one NS: multicast while INCOMPLETE, unicast to the
 * cached address in PROBE (RFC 4861 7.2.2, 7.3.3). */
static void solicit(struct tcpsm_stack *st, const struct neigh *n)
{
    if (addr_is_v4(&n->ip))
        arp_send_request(st, addr_v4(&n->ip));
    else
        nd_send_ns(st, n->ip.b, n->state == NEIGH_PROBE ? n->mac : NULL);
}

/* Starts a round of requests (INCOMPLETE or PROBE). */
static bool start_resolve(struct tcpsm_stack *st, struct neigh *n, uint64_t now)
{
    n->tries = 1;
    if (timer_set(&st->timers, &n->timer, now + NEIGH_RETRY_NS) < 0)
        return false;
    solicit(st, n);
    return true;
}

void neigh_timer_fire(void *ctx, struct tcpsm_timer *tm, uint64_t now)
{
    struct tcpsm_stack *st = ctx;
    struct neigh *n = (struct neigh *)((char *)tm - offsetof(struct neigh, timer));
    if (n->tries < NEIGH_TRIES && timer_set(&st->timers, &n->timer, now + NEIGH_RETRY_NS) == 0) {
        n->tries++;
        solicit(st, n);
        return;
    }
    /* No answer: forget the neighbour; waiting frames are dropped and
     * counted, TCP's retransmission will ask again. */
    neigh_remove(st, n);
}

/* Finishes the TCP checksum the link was to complete (CSUM_PARTIAL). */
static void finish_csum(uint8_t *frame, const struct tcpsm_frame *m, size_t len)
{
    uint8_t *c = frame + m->csum_start + m->csum_offset;
    uint32_t start = (uint32_t)c[0] << 8 | c[1];     /* the pseudo-header sum */
    c[0] = c[1] = 0;
    uint16_t v = csum_fold(csum_partial(frame + m->csum_start, len - m->csum_start, start));
    c[0] = (uint8_t)(v >> 8);
    c[1] = (uint8_t)v;
}

static void enqueue(struct tcpsm_stack *st, struct neigh *n, const uint8_t *frame, size_t len)
{
    /* A super-segment never waits (at most one MTU per queued frame); TCP
     * sends it again once the neighbour is known. */
    if (len > NEIGH_QUEUE_BYTES || (st->txp_on && (st->txp.flags & (TCPSM_FRAME_GSO_TCPV4 | TCPSM_FRAME_GSO_TCPV6)))) {
        st->cnt.neigh_queue_drop++;
        return;
    }
    while (n->qhead && (n->qn == NEIGH_QUEUE_FRAMES || n->qbytes + len > NEIGH_QUEUE_BYTES)) {
        mem_free(queue_pop(n));
        st->cnt.neigh_queue_drop++;
    }
    struct neigh_frame *f = mem_alloc(sizeof(*f) + len);
    if (!f) {
        st->cnt.neigh_queue_drop++;
        return;
    }
    f->next = NULL;
    f->len = (uint32_t)len;
    if (st->txp_on) {
        /* queued frames are plain: copy the payload slices, finish the sum */
        const struct tcpsm_frame *m = &st->txp;
        size_t hl = len - m->plen[0] - m->plen[1];
        memcpy(f->data, frame, hl);
        if (m->plen[0])
            memcpy(f->data + hl, m->pay[0], m->plen[0]);
        if (m->plen[1])
            memcpy(f->data + hl + m->plen[0], m->pay[1], m->plen[1]);
        if (m->flags & TCPSM_FRAME_CSUM_PARTIAL)
            finish_csum(f->data, m, len);
    } else {
        memcpy(f->data, frame, len);
    }
    /* linked last: a holder cut before it leaves a whole queue without f
     * (neigh_check); after it, a count short by one (dropped there) */
    if (n->qtail)
        n->qtail->next = f;
    else
        n->qhead = f;
    n->qtail = f;
    n->qn++;
    n->qbytes += (uint32_t)len;
}

void neigh_output_addr(struct tcpsm_stack *st, const struct tcpsm_addr *ip, uint8_t *frame,
                       size_t len, uint64_t now)
{
    struct neigh *n = find(st->neigh, ip);
    if (!n) {
        n = neigh_alloc(st, ip, now);
        if (!n) {
            st->cnt.neigh_full++;
            return;
        }
        n->state = NEIGH_INCOMPLETE;
        enqueue(st, n, frame, len);
        st->txp_on = false;             /* the frame's offloads are not the ARP request's */
        if (!start_resolve(st, n, now))
            neigh_remove(st, n);
        return;
    }
    n->used = now;
    if (n->state == NEIGH_INCOMPLETE) {
        enqueue(st, n, frame, len);
        return;
    }
    memcpy(frame, n->mac, ETH_ALEN);
    eth_tx_push(st, frame, len);
    st->txp_on = false;
    /* RFC 1122 2.3.2.1: revalidate an old entry while still using it. */
    if (n->state == NEIGH_REACHABLE && (n->stale || now - n->confirmed >= NEIGH_REACHABLE_NS)) {
        n->state = NEIGH_PROBE;
        if (!start_resolve(st, n, now))
            neigh_remove(st, n);
    }
}

static void confirm(struct tcpsm_stack *st, struct neigh *n, const uint8_t *mac, bool stale,
                    uint64_t now)
{
    memcpy(n->mac, mac, ETH_ALEN);
    n->state = NEIGH_REACHABLE;
    n->stale = stale;
    n->confirmed = now;
    n->tries = 0;
    timer_cancel(&st->timers, &n->timer);
    struct neigh_frame *f;
    while ((f = queue_pop(n))) {
        memcpy(f->data, mac, ETH_ALEN);
        eth_tx_push(st, f->data, f->len);
        mem_free(f);
    }
}

bool neigh_update_addr(struct tcpsm_stack *st, const struct tcpsm_addr *ip, const uint8_t *mac,
                       bool stale, uint64_t now)
{
    struct neigh *n = find(st->neigh, ip);
    if (!n)
        return false;
    /* RFC 4861 7.2.5: a STALE report of the address we already have
     * changes nothing (a probe in progress goes on). */
    if (stale && n->state != NEIGH_INCOMPLETE && memcmp(n->mac, mac, ETH_ALEN) == 0)
        return true;
    confirm(st, n, mac, stale, now);
    return true;
}

void neigh_learn_addr(struct tcpsm_stack *st, const struct tcpsm_addr *ip, const uint8_t *mac,
                      bool stale, uint64_t now)
{
    if (neigh_update_addr(st, ip, mac, stale, now))
        return;
    struct neigh *n = neigh_alloc(st, ip, now);
    if (!n) {
        st->cnt.neigh_full++;
        return;
    }
    confirm(st, n, mac, stale, now);
}

enum neigh_state neigh_lookup_addr(const struct tcpsm_stack *st, const struct tcpsm_addr *ip,
                                   uint8_t *mac)
{
    const struct neigh *n = find(st->neigh, ip);
    if (!n)
        return NEIGH_NONE;
    if (mac && n->state != NEIGH_INCOMPLETE)
        memcpy(mac, n->mac, ETH_ALEN);
    return (enum neigh_state)n->state;
}

/* IPv4 forms */
void neigh_output(struct tcpsm_stack *st, uint32_t ip, uint8_t *frame, size_t len, uint64_t now)
{
    struct tcpsm_addr a = addr_from_v4(ip);
    neigh_output_addr(st, &a, frame, len, now);
}

bool neigh_update(struct tcpsm_stack *st, uint32_t ip, const uint8_t *mac, uint64_t now)
{
    struct tcpsm_addr a = addr_from_v4(ip);
    struct neigh *n = find(st->neigh, &a);
    if (!n)
        return false;
    confirm(st, n, mac, false, now);
    return true;
}

void neigh_learn(struct tcpsm_stack *st, uint32_t ip, const uint8_t *mac, uint64_t now)
{
    struct tcpsm_addr a = addr_from_v4(ip);
    neigh_learn_addr(st, &a, mac, false, now);
}

enum neigh_state neigh_lookup(const struct tcpsm_stack *st, uint32_t ip, uint8_t *mac)
{
    struct tcpsm_addr a = addr_from_v4(ip);
    return neigh_lookup_addr(st, &a, mac);
}

unsigned neigh_queued(const struct tcpsm_stack *st, uint32_t ip)
{
    struct tcpsm_addr a = addr_from_v4(ip);
    const struct neigh *n = find(st->neigh, &a);
    return n ? n->qn : 0;
}

unsigned neigh_count(const struct tcpsm_stack *st)
{
    return st->neigh->count;
}

/* After a holder died halfway (tcp_repair.c): each entry's state is
 * primary; the hash chains, the free list and the count follow from the
 * states. neigh_alloc and neigh_remove move an entry between the free list
 * and its chain in several steps: a holder cut between them left an entry
 * on neither (lost to both), or linked with state NONE, or in use and on no
 * chain with its timer still armed, which neigh_remove (at the timer, or as
 * the LRU victim) would have chased down its chain past the end. A timer
 * that is not where the heap has it (neigh_alloc's memset before its
 * timer_init) is disarmed; a waiting queue that is not whole is dropped
 * (its frames are the datagrams lost; TCP resends). Returns the faults;
 * repair false: only counts. */
unsigned neigh_check(struct tcpsm_stack *st, bool repair)
{
    struct neigh_table *t = st->neigh;
    if (!t)
        return 0;
    unsigned faults = 0;
    uint32_t inuse = 0, linked = 0, nfree = 0;
    bool chains = true;
    for (uint32_t b = 0; b < t->nbuckets && chains; b++)
        for (int32_t i = t->bucket[b]; i >= 0; i = t->e[i].next)
            if ((uint32_t)i >= t->max || t->e[i].state == NEIGH_NONE ||
                hash_ip(t, &t->e[i].ip) != b || ++linked > t->max) {
                chains = false;
                break;
            }
    for (int32_t i = t->free; i >= 0 && chains; i = t->e[i].next)
        if ((uint32_t)i >= t->max || t->e[i].state != NEIGH_NONE || ++nfree > t->max)
            chains = false;
    for (uint32_t i = 0; i < t->max; i++) {
        struct neigh *n = &t->e[i];
        if (n->state > NEIGH_PROBE) {
            faults++;
            if (repair)
                n->state = NEIGH_NONE;
        }
        inuse += n->state != NEIGH_NONE;
        struct tcpsm_timer *tm = &n->timer;
        /* (a free entry's timer is made again when it is taken: not looked at) */
        if (n->state != NEIGH_NONE && tcpsm_timer_armed(tm) &&
            (tm->idx >= st->timers.n || st->timers.v[tm->idx] != tm)) {
            faults++;
            if (repair)
                tm->idx = UINT32_MAX;
        }
        /* whole: valid frames (one more than the limit: a holder cut after
         * linking a frame, before counting it), counted and summed right,
         * the tail the last one */
        bool walk_ok = true;
        unsigned k = 0;
        uint32_t bytes = 0;
        const struct neigh_frame *last = NULL;
        for (const struct neigh_frame *f = n->qhead; f; f = f->next) {
            walk_ok = ++k <= NEIGH_QUEUE_FRAMES + 1 && mem_valid(f, sizeof(*f)) &&
                      mem_valid(f, sizeof(*f) + f->len);
            if (!walk_ok)
                break;
            bytes += f->len;
            last = f;
        }
        bool q_ok = walk_ok && k == n->qn && bytes == n->qbytes && n->qtail == last;
        /* frames wait only while INCOMPLETE (confirm sends them) */
        if (!q_ok || (n->state != NEIGH_INCOMPLETE && n->qn)) {
            faults++;
            if (repair) {
                /* the frames are the datagrams lost (TCP resends): freed
                 * along the links (walked whole above) whatever the count
                 * says; a list not walkable is left to the journal's reclaim */
                if (walk_ok)
                    queue_clear(n, &st->cnt.neigh_queue_drop);
                n->qhead = n->qtail = NULL;
                n->qn = 0;
                n->qbytes = 0;
            }
        }
        /* resolving with no timer: it would never ask again nor give up */
        if ((n->state == NEIGH_INCOMPLETE || n->state == NEIGH_PROBE) && !tcpsm_timer_armed(tm)) {
            faults++;
            if (repair && timer_set(&st->timers, tm, st->now + NEIGH_RETRY_NS) < 0)
                n->state = NEIGH_NONE;  /* no room for its timer: forgotten (rebuilt below) */
        }
    }
    if (!chains || linked != inuse || nfree + inuse != t->max || t->count != inuse) {
        faults++;
        if (repair) {
            for (uint32_t b = 0; b < t->nbuckets; b++)
                t->bucket[b] = -1;
            t->free = -1;
            for (uint32_t i = t->max; i-- > 0;) {
                struct neigh *n = &t->e[i];
                if (n->state == NEIGH_NONE) {
                    n->next = t->free;
                    t->free = (int32_t)i;
                } else {
                    uint32_t h = hash_ip(t, &n->ip);
                    n->next = t->bucket[h];
                    t->bucket[h] = (int32_t)i;
                }
            }
            t->count = inuse;
        }
    }
    return faults;
}
