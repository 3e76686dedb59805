/* IPv4 reassembly (RFC 791 3.2, RFC 815), bounded: at most IP_FRAG_QUEUES
 * datagrams in progress and IP_FRAG_MEM bytes held for all of them (Linux
 * ipfrag_high_thresh 4 MiB); a datagram not complete IP_FRAG_TIMEOUT after
 * its first fragment is dropped (Linux ipfrag_time 30 s). At either limit
 * the oldest datagram in progress makes room. Overlapping fragments drop
 * the whole datagram (as Linux since 2018, RFC 5722's rule for IPv6): no
 * teardrop, no ambiguity about which copy wins. Expiry is checked when a
 * fragment arrives (the table is small, the scan bounded). */
#include "mem.h"
#include "ipv4_frag.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int ipv4_frag_init(struct tcpsm_stack *st)
{
    /* out is scratch, written before it is read: not zeroed (64 KiB) */
    st->reasm = mem_alloc(sizeof(*st->reasm));
    if (!st->reasm)
        return -1;
    memset(st->reasm, 0, offsetof(struct ipv4_reasm, out));
    return 0;
}

static void q_free(struct ipv4_reasm *r, struct frag_queue *q)
{
    while (q->pieces) {
        struct frag_piece *p = q->pieces;
        q->pieces = p->next;
        r->mem -= sizeof(*p) + p->len;
        mem_free(p);
    }
    memset(q, 0, sizeof(*q));
}

void ipv4_frag_fini(struct tcpsm_stack *st)
{
    if (!st->reasm)
        return;
    for (unsigned i = 0; i < IP_FRAG_QUEUES; i++)
        q_free(st->reasm, &st->reasm->q[i]);
    mem_free(st->reasm);
    st->reasm = NULL;
}

size_t ipv4_frag_mem(const struct tcpsm_stack *st)
{
    return st->reasm ? st->reasm->mem : 0;
}

const void *ipv4_frag_scratch(const struct tcpsm_stack *st, size_t *len)
{
    *len = st->reasm ? sizeof(st->reasm->out) : 0;
    return st->reasm ? st->reasm->out : NULL;
}

static struct frag_queue *oldest(struct ipv4_reasm *r)
{
    struct frag_queue *o = NULL;
    for (unsigned i = 0; i < IP_FRAG_QUEUES; i++)
        if (r->q[i].used && (!o || r->q[i].first < o->first))
            o = &r->q[i];
    return o;
}

static void drop(struct tcpsm_stack *st, struct frag_queue *q, uint64_t *counter)
{
    (*counter)++;
    q_free(st->reasm, q);
}

const uint8_t *ipv4_frag_input(struct tcpsm_stack *st, const uint8_t *p, size_t ihl, size_t tot,
                               uint64_t now, size_t *out_len)
{
    struct ipv4_reasm *r = st->reasm;
    st->cnt.ip_frag_in++;
    if (!r) {
        st->cnt.ip_drop_frag++;
        return NULL;
    }
    uint32_t src = get32(p + 12), dst = get32(p + 16);
    uint16_t id = get16(p + 4), fo = get16(p + 6);
    uint8_t proto = p[9];
    bool mf = (fo & 0x2000) != 0;
    uint32_t off = (uint32_t)(fo & 0x1fff) * 8, len = (uint32_t)(tot - ihl);
    /* expire, and find this datagram's queue */
    struct frag_queue *q = NULL, *freeq = NULL;
    for (unsigned i = 0; i < IP_FRAG_QUEUES; i++) {
        struct frag_queue *x = &r->q[i];
        if (x->used && now - x->first >= IP_FRAG_TIMEOUT)
            drop(st, x, &st->cnt.ip_reasm_timeout);
        if (!x->used) {
            if (!freeq)
                freeq = x;
        } else if (x->src == src && x->dst == dst && x->id == id && x->proto == proto) {
            q = x;
        }
    }
    /* RFC 791: all fragments but the last carry a multiple of 8 bytes */
    if (off + len > IP_MAXPACKET - ihl || (mf && (len == 0 || (len & 7)))) {
        st->cnt.ip_drop_frag++;
        if (q)
            drop(st, q, &st->cnt.ip_reasm_fail);
        return NULL;
    }
    if (!q) {
        if (!freeq) {
            freeq = oldest(r);
            drop(st, freeq, &st->cnt.ip_reasm_fail);
        }
        q = freeq;
        q->used = true;
        q->src = src;
        q->dst = dst;
        q->id = id;
        q->proto = proto;
        q->first = now;
    }
    if (!mf) {
        if (q->total && q->total != off + len) {
            drop(st, q, &st->cnt.ip_reasm_fail);      /* two different ends */
            return NULL;
        }
        q->total = off + len;
    }
    if ((q->total && off + len > q->total) || q->npieces >= IP_FRAG_PIECES) {
        drop(st, q, &st->cnt.ip_reasm_fail);
        return NULL;
    }
    /* overlap with a piece held: the whole datagram goes */
    struct frag_piece **pp = &q->pieces;
    while (*pp && (*pp)->off + (*pp)->len <= off)
        pp = &(*pp)->next;
    if (*pp && (*pp)->off < off + len) {
        drop(st, q, &st->cnt.ip_reasm_fail);
        return NULL;
    }
    while (r->mem + sizeof(struct frag_piece) + len > IP_FRAG_MEM) {
        struct frag_queue *o = oldest(r);
        if (!o || o == q) {
            drop(st, q, &st->cnt.ip_reasm_fail);
            return NULL;
        }
        drop(st, o, &st->cnt.ip_reasm_fail);
    }
    struct frag_piece *n = mem_alloc(sizeof(*n) + len);
    if (!n) {
        drop(st, q, &st->cnt.ip_reasm_fail);
        return NULL;
    }
    n->off = (uint16_t)off;
    n->len = (uint16_t)len;
    memcpy(n->data, p + ihl, len);
    n->next = *pp;
    *pp = n;
    q->npieces++;
    q->have += len;
    r->mem += sizeof(*n) + len;
    if (off == 0) {
        memcpy(q->hdr, p, ihl);
        q->hdrlen = (uint8_t)ihl;
    }
    if (!q->total || q->have != q->total || !q->hdrlen)
        return NULL;
    /* complete (no overlaps, so the bytes held cover 0..total exactly) */
    uint8_t *o = r->out;
    memcpy(o, q->hdr, q->hdrlen);
    o[2] = (uint8_t)((q->hdrlen + q->total) >> 8);
    o[3] = (uint8_t)(q->hdrlen + q->total);
    o[6] = o[7] = 0;
    for (struct frag_piece *x = q->pieces; x; x = x->next)
        memcpy(o + q->hdrlen + x->off, x->data, x->len);
    *out_len = q->hdrlen + q->total;
    st->cnt.ip_reasm_ok++;
    q_free(r, q);
    return o;
}

/* After a holder died halfway (tcp_repair.c): each queue's list of pieces
 * is primary (a piece is linked whole, and unlinked before it is freed);
 * the counts follow from it. A list that runs into memory that is not a
 * piece drops its datagram (the sender's TCP resends). Returns the faults;
 * repair false: only counts. */
unsigned ipv4_frag_check(struct tcpsm_stack *st, bool repair)
{
    struct ipv4_reasm *r = st->reasm;
    if (!r)
        return 0;
    unsigned faults = 0;
    size_t mem = 0;
    for (unsigned i = 0; i < IP_FRAG_QUEUES; i++) {
        struct frag_queue *q = &r->q[i];
        if (!q->used)
            continue;
        unsigned n = 0;
        uint32_t have = 0;
        size_t qm = 0;
        bool whole = true;
        for (struct frag_piece **pp = &q->pieces; *pp; pp = &(*pp)->next) {
            struct frag_piece *p = *pp;
            if (n >= IP_FRAG_PIECES || !mem_valid(p, sizeof(*p)) ||
                !mem_valid(p, sizeof(*p) + p->len)) {
                whole = false;
                if (repair)
                    *pp = NULL;         /* cut there: what follows is not ours to free */
                break;
            }
            n++;
            have += p->len;
            qm += sizeof(*p) + p->len;
        }
        if (whole && n == q->npieces && have == q->have) {
            mem += qm;
            continue;
        }
        faults++;
        if (!repair)
            continue;
        if (whole) {
            q->npieces = n;
            q->have = have;
            mem += qm;
        } else {
            st->cnt.ip_reasm_fail++;
            q_free(r, q);
        }
    }
    if (mem != r->mem) {
        faults++;
        if (repair)
            r->mem = mem;
    }
    return faults;
}
