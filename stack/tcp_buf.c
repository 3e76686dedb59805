/* Byte rings for the send queue (starting at the oldest unacknowledged
 * byte) and the receive queue (in-order bytes, with out-of-order data
 * stored in place beyond them), and the out-of-order range list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "tcp_int.h"

int ring_alloc(struct tcp_ring *r, uint32_t cap)
{
    r->buf = mem_alloc(cap);
    if (!r->buf)
        return -ENOMEM;
    r->cap = cap;
    r->head = r->len = 0;
    return 0;
}

void ring_free(struct tcp_ring *r)
{
    mem_free(r->buf);
    memset(r, 0, sizeof(*r));
}

/* Grow to cap, keeping every byte slot (in-order and beyond) in place
 * relative to head. */
int ring_grow(struct tcp_ring *r, uint32_t cap)
{
    if (!r->buf)
        return ring_alloc(r, cap);
    if (cap <= r->cap)
        return 0;
    uint8_t *b = mem_alloc(cap);
    if (!b)
        return -ENOMEM;
    uint32_t first = r->cap - r->head;
    memcpy(b, r->buf + r->head, first);
    memcpy(b + first, r->buf, r->head);
    mem_free(r->buf);
    r->buf = b;
    r->cap = cap;
    r->head = 0;
    return 0;
}

void ring_write_at(struct tcp_ring *r, uint32_t off, const void *src, uint32_t n)
{
    const uint8_t *s = src;
    uint32_t pos = (r->head + off) % r->cap;
    uint32_t first = r->cap - pos < n ? r->cap - pos : n;
    memcpy(r->buf + pos, s, first);
    memcpy(r->buf, s + first, n - first);
}

/* Make room for need bytes from head, growing by doubling (from
 * TCP_RING_INIT) but never beyond limit: a connection that moves little
 * data keeps a small buffer. */
int ring_reserve(struct tcp_ring *r, uint32_t need, uint32_t limit)
{
    if (need > limit)
        need = limit;
    if (r->buf && need <= r->cap)
        return 0;
    uint32_t cap = r->cap ? r->cap : TCP_RING_INIT;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    if (cap > limit)
        cap = limit;
    if (r->buf && cap <= r->cap)
        return 0;
    return ring_grow(r, cap);
}

/* Append up to n bytes; returns how many fit. */
uint32_t ring_write(struct tcp_ring *r, const void *src, uint32_t n)
{
    uint32_t room = r->cap - r->len;
    if (n > room)
        n = room;
    if (n)
        ring_write_at(r, r->len, src, n);
    r->len += n;
    return n;
}

void ring_read_at(const struct tcp_ring *r, uint32_t off, void *dst, uint32_t n)
{
    uint8_t *d = dst;
    uint32_t pos = (r->head + off) % r->cap;
    uint32_t first = r->cap - pos < n ? r->cap - pos : n;
    memcpy(d, r->buf + pos, first);
    memcpy(d + first, r->buf, n - first);
}

void ring_drop(struct tcp_ring *r, uint32_t n)
{
    if (n > r->len)
        n = r->len;
    r->len -= n;
    if (r->cap)
        r->head = (r->head + n) % r->cap;   /* never reset: out-of-order bytes sit beyond len */
}

/* Insert [start, end) and merge; -ENOBUFS when TCP_OOO_MAX disjoint ranges
 * are already held (the caller drops the segment and counts it). */
int ooo_add(struct tcp_ooo *o, uint32_t start, uint32_t end)
{
    unsigned i = 0;
    while (i < o->n && seq_lt(o->end[i], start))
        i++;
    /* i: first range that ends at or after start */
    unsigned j = i;
    while (j < o->n && seq_le(o->start[j], end))
        j++;
    /* ranges i..j-1 overlap or touch [start, end) */
    if (i == j) {
        if (o->n == TCP_OOO_MAX)
            return -ENOBUFS;
        memmove(&o->start[i + 1], &o->start[i], (o->n - i) * sizeof(uint32_t));
        memmove(&o->end[i + 1], &o->end[i], (o->n - i) * sizeof(uint32_t));
        o->start[i] = start;
        o->end[i] = end;
        o->n++;
    } else {
        uint32_t s = seq_min(start, o->start[i]);
        uint32_t e = seq_max(end, o->end[j - 1]);
        o->start[i] = s;
        o->end[i] = e;
        unsigned gone = j - i - 1;
        if (gone) {
            memmove(&o->start[i + 1], &o->start[j], (o->n - j) * sizeof(uint32_t));
            memmove(&o->end[i + 1], &o->end[j], (o->n - j) * sizeof(uint32_t));
            o->n -= gone;
        }
    }
    o->last = start;
    return 0;
}

/* rcv_nxt moved: drop ranges now below it; returns the new rcv_nxt
 * extended over a range that starts at or before it. */
uint32_t ooo_advance(struct tcp_ooo *o, uint32_t rcv_nxt)
{
    while (o->n && seq_le(o->start[0], rcv_nxt)) {
        if (seq_gt(o->end[0], rcv_nxt))
            rcv_nxt = o->end[0];
        memmove(&o->start[0], &o->start[1], (o->n - 1) * sizeof(uint32_t));
        memmove(&o->end[0], &o->end[1], (o->n - 1) * sizeof(uint32_t));
        o->n--;
    }
    return rcv_nxt;
}
