/* IPv6 fragment reassembly (RFC 8200 4.5, RFC 5722), bounded: see ipv6_frag.h. */
#include "mem.h"
#include "ipv6_frag.h"

#include <stdlib.h>
#include <string.h>

#include "icmp6.h"
#include "ipv6.h"
#include "wire.h"

#define FRAG_MAXLEN   65535u
#define FRAG_BLOCKS   ((FRAG_MAXLEN + 7) / 8)
#define QUOTE_MAX     (IPV6_MIN_MTU - IPV6_HDR_LEN - 8)

struct ip6_frag {
    bool used;
    uint8_t src[16], dst[16];
    uint32_t id;
    uint64_t deadline;
    uint32_t total;                     /* fragmentable length, 0 until the last fragment came */
    uint32_t have;                      /* bytes received */
    uint32_t max_end;                   /* end of the furthest fragment received */
    uint8_t *data;                      /* the fragmentable part, FRAG_MAXLEN bytes */
    uint8_t map[(FRAG_BLOCKS + 7) / 8]; /* 8-byte blocks received */
    /* from the first fragment: its headers before the Fragment header, the
     * Next Header its Fragment header names, and the fragment for a quote */
    uint8_t *first;                     /* the first fragment as received (QUOTE_MAX bytes at most) */
    uint32_t first_len, unfrag_len, nh_at;
    uint8_t nh;
};

struct ip6_frag_table {
    struct tcpsm_timer timer;
    struct ip6_frag e[IP6_FRAG_MAX];
    unsigned depth;                     /* reassembled packets being processed (no nesting) */
};

static void entry_free(struct ip6_frag *f)
{
    mem_free(f->data);
    mem_free(f->first);
    memset(f, 0, sizeof(*f));
}

static void rearm(struct tcpsm_stack *st, struct ip6_frag_table *t)
{
    uint64_t at = UINT64_MAX;
    for (unsigned i = 0; i < IP6_FRAG_MAX; i++)
        if (t->e[i].used && t->e[i].deadline < at)
            at = t->e[i].deadline;
    if (at == UINT64_MAX)
        timer_cancel(&st->timers, &t->timer);
    else
        timer_set(&st->timers, &t->timer, at);
}

void ip6_frag_timer_fire(void *ctx, struct tcpsm_timer *tm, uint64_t now)
{
    struct tcpsm_stack *st = ctx;
    struct ip6_frag_table *t = (struct ip6_frag_table *)tm;     /* timer is the first member */
    for (unsigned i = 0; i < IP6_FRAG_MAX; i++) {
        struct ip6_frag *f = &t->e[i];
        if (!f->used || f->deadline > now)
            continue;
        st->cnt.ip6_drop_frag++;
        /* RFC 8200 4.5: Time Exceeded, code 1, if the first fragment came */
        if (f->first)
            icmp6_send_error(st, ICMP6_TIME_EXCEEDED, 1, 0, f->first, f->first_len, false);
        entry_free(f);
    }
    rearm(st, t);
}

static struct ip6_frag_table *table(struct tcpsm_stack *st)
{
    if (!st->v6.frag) {
        st->v6.frag = mem_calloc(1, sizeof(struct ip6_frag_table));
        if (st->v6.frag)
            tcpsm_timer_init(&st->v6.frag->timer, TIMER_IP6_FRAG);
    }
    return st->v6.frag;
}

void ip6_frag_fini(struct tcpsm_stack *st)
{
    struct ip6_frag_table *t = st->v6.frag;
    if (!t)
        return;
    timer_cancel(&st->timers, &t->timer);
    for (unsigned i = 0; i < IP6_FRAG_MAX; i++)
        entry_free(&t->e[i]);
    mem_free(t);
    st->v6.frag = NULL;
}

static bool bit(const struct ip6_frag *f, uint32_t b) { return f->map[b / 8] & (1u << (b % 8)); }

/* Drops datagram f (counted once for the fragment that ended it). */
static void discard(struct tcpsm_stack *st, struct ip6_frag_table *t, struct ip6_frag *f)
{
    st->cnt.ip6_drop_frag++;
    entry_free(f);
    rearm(st, t);
}

void ip6_frag_input(struct tcpsm_stack *st, const uint8_t *p, size_t tot, size_t nh_at,
                    size_t fo, uint64_t now)
{
    const uint8_t *fh = p + fo;
    uint16_t offm = get16(fh + 2);
    uint32_t off = offm & 0xfff8u;
    bool more = offm & 1;
    uint32_t id = get32(fh + 4);
    const uint8_t *frag = fh + 8;
    size_t len = tot - fo - 8;
    /* RFC 8200 4.5: every fragment but the last is a multiple of 8 bytes
     * long; nothing reaches beyond 65535 */
    if (more && (len % 8 != 0 || len == 0)) {
        st->cnt.ip6_drop_frag++;
        icmp6_send_error(st, ICMP6_PARAM_PROB, 0, 4, p, tot, false);
        return;
    }
    if (off + len > FRAG_MAXLEN) {
        st->cnt.ip6_drop_frag++;
        icmp6_send_error(st, ICMP6_PARAM_PROB, 0, (uint32_t)(fo + 2), p, tot, false);
        return;
    }
    struct ip6_frag_table *t = table(st);
    if (!t || t->depth) {
        st->cnt.ip6_drop_frag++;        /* no memory, or a fragment inside a reassembled packet */
        return;
    }
    struct ip6_frag *f = NULL, *free_e = NULL;
    for (unsigned i = 0; i < IP6_FRAG_MAX; i++) {
        struct ip6_frag *e = &t->e[i];
        if (!e->used) {
            if (!free_e)
                free_e = e;
        } else if (e->id == id && memcmp(e->src, p + 8, 16) == 0 &&
                   memcmp(e->dst, p + 24, 16) == 0) {
            f = e;
            break;
        }
    }
    if (!f) {
        if (!free_e) {
            st->cnt.ip6_drop_frag++;    /* the table is full: the newcomer waits its turn */
            return;
        }
        f = free_e;
        f->data = mem_alloc(FRAG_MAXLEN);
        if (!f->data) {
            st->cnt.ip6_drop_frag++;
            return;
        }
        f->used = true;
        memcpy(f->src, p + 8, 16);
        memcpy(f->dst, p + 24, 16);
        f->id = id;
        f->deadline = now + IP6_FRAG_TIMEOUT_NS;
        rearm(st, t);
    }
    uint32_t end = off + (uint32_t)len;
    if (!more) {
        /* the last fragment fixes the length; another, or data beyond it, is inconsistent */
        if ((f->total && f->total != end) || f->max_end > end) {
            discard(st, t, f);
            return;
        }
        f->total = end;
    } else if (f->total && end > f->total) {
        discard(st, t, f);
        return;
    }
    /* blocks already there: all of them is a duplicate, some an overlap */
    uint32_t b0 = off / 8, b1 = (end + 7) / 8, seen = 0;
    for (uint32_t b = b0; b < b1; b++)
        seen += bit(f, b);
    if (len && seen == b1 - b0) {
        st->cnt.ip6_drop_frag++;        /* a repeat (RFC 8200 4.5 allows keeping the rest) */
        return;
    }
    if (seen) {
        discard(st, t, f);              /* RFC 5722 */
        return;
    }
    memcpy(f->data + off, frag, len);
    for (uint32_t b = b0; b < b1; b++)
        f->map[b / 8] |= (uint8_t)(1u << (b % 8));
    f->have += (uint32_t)len;
    if (end > f->max_end)
        f->max_end = end;
    if (off == 0) {
        size_t q = tot < QUOTE_MAX ? tot : QUOTE_MAX;
        f->first = mem_alloc(q > fo ? q : fo);
        if (!f->first) {
            discard(st, t, f);
            return;
        }
        memcpy(f->first, p, q > fo ? q : fo);
        f->first_len = (uint32_t)(q > fo ? q : fo);
        f->unfrag_len = (uint32_t)fo;
        f->nh_at = (uint32_t)nh_at;
        f->nh = fh[0];
    }
    if (!f->total || f->have != f->total || !f->first)
        return;
    /* Complete: the first fragment's headers, its Fragment header's Next
     * Header in their last Next Header field, then the data (RFC 8200 4.5). */
    size_t plen = f->unfrag_len - IPV6_HDR_LEN + f->total;
    if (plen > 65535) {
        discard(st, t, f);
        return;
    }
    uint8_t *pkt = mem_alloc(f->unfrag_len + f->total);
    if (!pkt) {
        discard(st, t, f);
        return;
    }
    memcpy(pkt, f->first, f->unfrag_len);
    pkt[f->nh_at] = f->nh;
    put16(pkt + 4, (uint16_t)plen);
    memcpy(pkt + f->unfrag_len, f->data, f->total);
    size_t n = f->unfrag_len + f->total;
    entry_free(f);
    rearm(st, t);
    st->cnt.ip6_reasm_ok++;
    t->depth++;
    ipv6_input(st, pkt, n, false, now);
    t->depth--;
    mem_free(pkt);
}

/* After a holder died halfway (tcp_repair.c): an entry whose buffers are
 * not blocks in use (entry_free cut between its frees and its memset) is
 * forgotten, its datagram lost (the sender's TCP resends); the table's
 * timer is set again from the entries. Returns the faults; repair false:
 * only counts. */
unsigned ip6_frag_check(struct tcpsm_stack *st, bool repair)
{
    struct ip6_frag_table *t = st->v6.frag;
    if (!t)
        return 0;
    unsigned faults = 0;
    uint64_t at = UINT64_MAX;
    for (unsigned i = 0; i < IP6_FRAG_MAX; i++) {
        struct ip6_frag *f = &t->e[i];
        if (!f->used)
            continue;
        bool data_ok = !f->data || mem_valid(f->data, FRAG_MAXLEN);
        bool first_ok = !f->first || mem_valid(f->first, f->first_len ? f->first_len : 1);
        if (data_ok && first_ok) {
            if (f->deadline < at)
                at = f->deadline;
            continue;
        }
        faults++;
        if (repair) {
            if (!data_ok)
                f->data = NULL;
            if (!first_ok)
                f->first = NULL;
            st->cnt.ip6_drop_frag++;
            entry_free(f);
        }
    }
    struct tcpsm_timer *tm = &t->timer;
    bool in_heap = tcpsm_timer_armed(tm) && tm->idx < st->timers.n && st->timers.v[tm->idx] == tm;
    if ((tcpsm_timer_armed(tm) && !in_heap) || (at != UINT64_MAX && !in_heap)) {
        faults++;
        if (repair) {
            if (!in_heap)
                tm->idx = UINT32_MAX;
            rearm(st, t);
        }
    }
    return faults;
}
