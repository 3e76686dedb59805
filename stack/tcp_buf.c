/* Byte rings for the send queue (starting at the oldest unacknowledged
 * byte) and the receive queue (in-order bytes), the out-of-order range
 * list and queue, and the stack-wide accounting of their memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "csum.h"
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

/* Grow to cap, keeping the len bytes from head (a ring holds nothing
 * beyond them: out-of-order data lives in the out-of-order queue), so a
 * ring freed when drained regrows at the cost of the data it holds. */
int ring_grow(struct tcp_ring *r, uint32_t cap)
{
    if (!r->buf)
        return ring_alloc(r, cap);
    if (cap <= r->cap)
        return 0;
    uint8_t *b = mem_alloc(cap);
    if (!b)
        return -ENOMEM;
    uint32_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
    memcpy(b, r->buf + r->head, first);
    memcpy(b + first, r->buf, r->len - first);
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

/* ring_write_at, summing the bytes on the way (csum_copy): returns sum
 * with them added, src being at byte offset `at` of the summed data (as
 * csum_partial_at). */
uint32_t ring_write_csum_at(struct tcp_ring *r, uint32_t off, const void *src, uint32_t n,
                            uint32_t sum, uint32_t at)
{
    const uint8_t *s = src;
    uint32_t pos = (r->head + off) % r->cap;
    uint32_t first = r->cap - pos < n ? r->cap - pos : n;
    sum = csum_copy_at(r->buf + pos, s, first, sum, at);
    if (n > first)
        sum = csum_copy_at(r->buf, s + first, n - first, sum, at + first);
    return sum;
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
        r->head = (r->head + n) % r->cap;
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

/* ---------------------------------------------------------------- stack-wide memory */

/* Charge n bytes of buffer memory. Refused (false) past mem_max unless
 * force (data that is only moving, e.g. out-of-order bytes into the ring).
 * Pressure starts at 3/4 of mem_max and ends below 1/2 (Linux tcp_mem's
 * hysteresis); under pressure out-of-order data is not kept and receive
 * buffers do not auto-tune. */
bool tcp_mem_charge(struct tcp_stack *ts, size_t n, bool force)
{
    if (!force && ts->mem_used + n > ts->mem_max) {
        ts->st->cnt.tcp_drop_mem++;
        return false;
    }
    ts->mem_used += n;
    if (!ts->mem_pressure && ts->mem_used > ts->mem_max / 4 * 3) {
        ts->mem_pressure = true;
        ts->st->cnt.tcp_mem_pressure++;
    }
    return true;
}

void tcp_mem_uncharge(struct tcp_stack *ts, size_t n)
{
    ts->mem_used = n > ts->mem_used ? 0 : ts->mem_used - n;
    if (ts->mem_pressure && ts->mem_used < ts->mem_max / 2)
        ts->mem_pressure = false;
    /* the wake-ups wait for the end of the pass (this may run deep in a
     * socket's teardown); a margin keeps senders from waking per byte */
    if (ts->snd_mem_waiters && ts->mem_used < ts->mem_max - ts->mem_max / 16)
        ts->snd_mem_wake = true;
}

/* Senders refused at the cap may write again: wake them (end of an input
 * batch, a timer pass or a socket call). One walk per time the cap was hit
 * and then left. */
void tcp_mem_wake_senders(struct tcpsm_stack *st)
{
    struct tcp_stack *ts = st->tcp;
    if (!ts || !ts->snd_mem_wake)
        return;
    ts->snd_mem_wake = false;
    ts->snd_mem_waiters = 0;
    for (struct tcpsm_sock *sk = ts->all; sk; sk = sk->anext)
        if (sk->snd_mem_wait) {
            sk->snd_mem_wait = false;
            tcp_wake(sk);
        }
}

/* Frees every cached ring buffer (stack end, memory pressure). */
void tcp_ring_cache_drain(struct tcp_stack *ts)
{
    while (ts->nring_cache) {
        ts->nring_cache--;
        mem_free(ts->ring_cache[ts->nring_cache].buf);
    }
    ts->ring_cache_bytes = 0;
}

/* A cached buffer of at least need bytes and at most limit for an empty
 * ring with no buffer (the smallest that fits), charged like a new one. */
static bool ring_from_cache(struct tcpsm_sock *sk, struct tcp_ring *r, uint32_t need,
                            uint32_t limit, bool force)
{
    struct tcp_stack *ts = TS(sk);
    unsigned best = ts->nring_cache;
    for (unsigned i = 0; i < ts->nring_cache; i++) {
        uint32_t c = ts->ring_cache[i].cap;
        if (c >= need && c <= limit && (best == ts->nring_cache || c < ts->ring_cache[best].cap))
            best = i;
    }
    if (best == ts->nring_cache || !tcp_mem_charge(ts, ts->ring_cache[best].cap, force))
        return false;
    r->buf = ts->ring_cache[best].buf;
    r->cap = ts->ring_cache[best].cap;
    r->head = r->len = 0;
    ts->ring_cache_bytes -= r->cap;
    ts->ring_cache[best] = ts->ring_cache[--ts->nring_cache];
    return true;
}

/* ring_reserve with the bytes charged to the stack. */
int tcp_ring_reserve(struct tcpsm_sock *sk, struct tcp_ring *r, uint32_t need, uint32_t limit,
                     bool force)
{
    uint32_t old = r->buf ? r->cap : 0;
    if (need > limit)
        need = limit;
    if (r->buf && need <= r->cap)
        return 0;
    if (!r->buf) {
        /* the buffer, capacity, head and the cache's entry move together */
        struct tcpsm_sock *outer = tcp_stream_begin(sk);
        bool got = ring_from_cache(sk, r, need, limit, force);
        tcp_stream_end(sk, outer);
        if (got)
            return 0;
    }
    uint32_t cap = r->cap ? r->cap : TCP_RING_INIT;
    while (cap < need)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    if (cap > limit)
        cap = limit;
    if (r->buf && cap <= r->cap)
        return 0;
    if (!tcp_mem_charge(TS(sk), cap - old, force))
        return -ENOBUFS;
    if (r == &sk->sndq)
        stack_tx_unpin(sk->st);         /* frames of the batch may point into it */
    /* ring_grow moves the bytes to a new buffer and then sets buf, cap and
     * head: cut between those, the ring reads from the wrong place */
    struct tcpsm_sock *outer = tcp_stream_begin(sk);
    int rc = ring_grow(r, cap);
    tcp_stream_end(sk, outer);
    if (rc < 0) {
        tcp_mem_uncharge(TS(sk), cap - old);
        return -ENOMEM;
    }
    return 0;
}

/* Free a ring (empty, or no longer wanted): an idle connection holds no
 * buffer memory. */
void tcp_ring_release(struct tcpsm_sock *sk, struct tcp_ring *r)
{
    if (r == &sk->sndq)
        stack_tx_unpin(sk->st);         /* frames of the batch may point into it */
    struct tcp_stack *ts = TS(sk);
    if (r->buf)
        tcp_mem_uncharge(ts, r->cap);
    if (ts->mem_pressure && ts->nring_cache)
        tcp_ring_cache_drain(ts);
    /* an empty ring's buffer is kept for the next refill (not under
     * pressure, not one holding out-of-order bytes beyond len) */
    if (r->buf && r->len == 0 && !ts->mem_pressure && ts->nring_cache < TCP_RING_CACHE &&
        ts->ring_cache_bytes + r->cap <= TCP_RING_CACHE_BYTES) {
        ts->ring_cache[ts->nring_cache].buf = r->buf;
        ts->ring_cache[ts->nring_cache].cap = r->cap;
        ts->nring_cache++;
        ts->ring_cache_bytes += r->cap;
        memset(r, 0, sizeof(*r));
        return;
    }
    ring_free(r);
}

/* ---------------------------------------------------------------- out-of-order queue */

/* Keep len bytes at seq (beyond RCV.NXT) until the hole before them fills.
 * Bounded per connection by TCP_OFO_SEGS_MAX segments (the window bounds
 * the bytes) and stack-wide by mem_max; -ENOBUFS when refused (the caller
 * drops the segment and counts it: the peer retransmits). Overlaps with
 * held segments are kept (the pull skips what is already in order). */
int tcp_ofo_insert(struct tcpsm_sock *sk, uint32_t seq, const uint8_t *data, uint32_t len)
{
    struct tcp_stack *ts = TS(sk);
    if (sk->ofo_n >= TCP_OFO_SEGS_MAX)
        return -ENOBUFS;
    size_t sz = sizeof(struct tcp_ofo) + len;
    if (!tcp_mem_charge(ts, sz, false))
        return -ENOBUFS;
    struct tcp_ofo *o = mem_alloc(sz);
    if (!o) {
        tcp_mem_uncharge(ts, sz);
        return -ENOMEM;
    }
    o->seq = seq;
    o->len = len;
    memcpy(o->data, data, len);
    /* Sorted by seq. Behind a hole the segments arrive in order: append
     * after the tail in O(1); only a retransmission into a gap walks. */
    struct tcp_ofo **pp = &sk->ofo;
    if (sk->ofo_tail && seq_le(sk->ofo_tail->seq, seq))
        pp = &sk->ofo_tail->next;
    while (*pp && seq_le((*pp)->seq, seq))
        pp = &(*pp)->next;
    o->next = *pp;
    *pp = o;
    if (!o->next)
        sk->ofo_tail = o;
    sk->ofo_n++;
    sk->ofo_bytes += len;
    return 0;
}

static void ofo_free_one(struct tcpsm_sock *sk, struct tcp_ofo *o)
{
    sk->ofo_n--;
    sk->ofo_bytes -= o->len;
    tcp_mem_uncharge(TS(sk), sizeof(*o) + o->len);
    mem_free(o);
}

/* RCV.NXT moved: the held segments it reached go into the ring, in order.
 * Returns the new RCV.NXT. Should the ring not grow (no memory), the
 * segments are dropped instead: SACKed data may be discarded (RFC 2018 8),
 * the sender keeps it until it is cumulatively ACKed. */
uint32_t tcp_ofo_pull(struct tcpsm_sock *sk)
{
    uint32_t nxt = sk->rcv_nxt;
    while (sk->ofo && seq_le(sk->ofo->seq, nxt)) {
        struct tcp_ofo *o = sk->ofo;
        sk->ofo = o->next;
        if (!sk->ofo)
            sk->ofo_tail = NULL;
        uint32_t end = o->seq + o->len;
        if (seq_gt(end, nxt)) {
            uint32_t skip = nxt - o->seq, n = o->len - skip;
            if (tcp_ring_reserve(sk, &sk->rcvq, sk->rcvq.len + n, UINT32_MAX, true) < 0) {
                ofo_free_one(sk, o);
                tcp_ofo_purge(sk);
                break;
            }
            ring_write_at(&sk->rcvq, sk->rcvq.len, o->data + skip, n);
            sk->rcvq.len += n;
            sk->bytes_received += n;
            nxt = end;
        }
        ofo_free_one(sk, o);
    }
    uint32_t last = sk->ooo.last;
    sk->ooo.n = 0;                      /* rebuilt from what is still held */
    for (struct tcp_ofo *o = sk->ofo; o; o = o->next)
        ooo_add(&sk->ooo, o->seq, o->seq + o->len);
    sk->ooo.last = last;
    return nxt;
}

/* Drop every held out-of-order segment (pressure, close, reset). */
void tcp_ofo_purge(struct tcpsm_sock *sk)
{
    while (sk->ofo) {
        struct tcp_ofo *o = sk->ofo;
        sk->ofo = o->next;
        ofo_free_one(sk, o);
    }
    sk->ofo_tail = NULL;
    sk->ooo.n = 0;
    sk->ooo_fin = false;
}
