/* In-memory link with a virtual clock and seeded impairments (netdev_mem.h). */
#include "netdev_mem.h"

#include <stdlib.h>
#include <string.h>

#include "gso_soft.h"
#include "stack.h"

#define DEF_MTU        1500
#define DEF_QUEUE_MAX  100000
#define RUN_MAX_EVENTS 50000000ull

struct mframe {
    uint64_t due, seq;          /* delivery order: due, then send order */
    uint32_t len;
    uint8_t *data;
};

/* Frames in flight toward one side: a min-heap on (due, seq). */
struct mqueue {
    struct mframe *v;
    uint32_t n, cap;
    uint64_t busy_until;        /* end of the serialization of the last frame */
};

struct mside {
    struct tcpsm_netdev dev;
    struct memlink *link;
    int idx;
    uint8_t **given;            /* frames handed out by the last memlink_deliver() */
    unsigned ngiven, capgiven;
};

struct memlink {
    struct memlink_params p;
    uint64_t rng, now, seq;
    struct mqueue q[2];         /* q[s]: toward side s */
    struct memlink_stats stats[2]; /* stats[s]: sent by side s */
    struct mside side[2];
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* xorshift64* */
static uint64_t rnd(struct memlink *l)
{
    uint64_t x = l->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    l->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static bool chance(struct memlink *l, double pct)
{
    if (pct <= 0)
        return false;
    return (double)(rnd(l) >> 11) * 0x1.0p-53 * 100.0 < pct;
}

static uint64_t uniform(struct memlink *l, uint64_t max)
{
    return max ? rnd(l) % (max + 1) : 0;
}

static bool before(const struct mframe *a, const struct mframe *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static bool heap_push(struct mqueue *q, struct mframe f)
{
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 256;
        struct mframe *v = realloc(q->v, (size_t)cap * sizeof(*v));
        if (!v)
            return false;
        q->v = v;
        q->cap = cap;
    }
    uint32_t i = q->n++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(&f, &q->v[p]))
            break;
        q->v[i] = q->v[p];
        i = p;
    }
    q->v[i] = f;
    return true;
}

static struct mframe heap_pop(struct mqueue *q)
{
    struct mframe top = q->v[0], last = q->v[--q->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && before(&q->v[c + 1], &q->v[c]))
            c++;
        if (!before(&q->v[c], &last))
            break;
        q->v[i] = q->v[c];
        i = c;
    }
    if (q->n)
        q->v[i] = last;
    return top;
}

/* Queues one copy of frame toward side dst, due at due. */
static bool enqueue_copy(struct memlink *l, int dst, const uint8_t *data, uint32_t len,
                         uint64_t due, bool corrupt)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return false;
    memcpy(copy, data, len);
    if (corrupt && len) {
        uint64_t bit = rnd(l) % ((uint64_t)len * 8);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    struct mframe f = { .due = due, .seq = l->seq++, .len = len, .data = copy };
    if (!heap_push(&l->q[dst], f)) {
        free(copy);
        return false;
    }
    return true;
}

static uint64_t due_time(struct memlink *l, uint64_t departure, struct memlink_stats *s)
{
    uint64_t due = departure + l->p.delay_ns + uniform(l, l->p.jitter_ns);
    if (chance(l, l->p.reorder_pct)) {
        due += l->p.reorder_delay_ns;
        s->reordered++;
    }
    return due;
}

/* One frame onto the wire toward dst, through the impairments. */
static void wire_send(struct memlink *l, int src, const uint8_t *data, uint32_t len)
{
    int dst = 1 - src;
    struct mqueue *q = &l->q[dst];
    struct memlink_stats *s = &l->stats[src];
    s->sent++;
    if (q->n >= l->p.queue_max) {
        s->queue_drop++;
        return;
    }
    if (len > (l->p.gso == MEMLINK_GSO_WHOLE ? MEMLINK_WHOLE_MAX : TCPSM_FRAME_MAX)) {
        s->oversize++;
        return;
    }
    if (l->p.drop_above && len > 14 && len - 14 > l->p.drop_above) {
        s->black_holed++;               /* after TSO cutting: what the wire carries */
        return;
    }
    if (chance(l, l->p.loss_pct)) {
        s->lost++;
        return;
    }
    uint64_t departure = l->now;
    if (l->p.bandwidth_bps) {
        uint64_t start = q->busy_until > l->now ? q->busy_until : l->now;
        q->busy_until = start + (uint64_t)len * 8 * 1000000000ull / l->p.bandwidth_bps;
        departure = q->busy_until;
    }
    bool corrupt = chance(l, l->p.corrupt_pct);
    if (corrupt)
        s->corrupted++;
    if (!enqueue_copy(l, dst, data, len, due_time(l, departure, s), corrupt)) {
        s->queue_drop++;
        return;
    }
    if (chance(l, l->p.dup_pct) && q->n < l->p.queue_max &&
        enqueue_copy(l, dst, data, len, due_time(l, departure, s), false))
        s->duplicated++;
}

struct seg_ctx {
    struct memlink *l;
    int src;
};

static void seg_emit(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct seg_ctx *c = ctx;
    wire_send(c->l, c->src, seg, len);
}

/* Software TSO (gso_soft.c, as Linux tcp_gso_segment): false (nothing
 * sent) for a frame that is not a TCP super-segment. */
static bool gso_segment(struct memlink *l, int src, const uint8_t *f, uint32_t len, uint32_t gso)
{
    uint8_t *scratch = malloc(GSO_SOFT_SCRATCH(gso));
    if (!scratch)
        return false;
    struct seg_ctx c = { .l = l, .src = src };
    unsigned n = gso_soft_segment(f, len, gso, scratch, seg_emit, &c);
    free(scratch);
    return n > 0;
}

static unsigned mem_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *frames, unsigned n)
{
    struct mside *me = dev->priv;
    struct memlink *l = me->link;
    struct mqueue *q = &l->q[1 - me->idx];
    struct memlink_stats *s = &l->stats[me->idx];

    for (unsigned i = 0; i < n; i++) {
        const struct tcpsm_frame *fr = &frames[i];
        if (q->n >= l->p.queue_max) {
            /* Drop-tail: this and the rest are not taken. */
            s->queue_drop += n - i;
            return i;
        }
        uint32_t len = tcpsm_frame_len(fr);
        if (fr->len == len && !fr->flags) {
            wire_send(l, me->idx, fr->data, len);
            continue;
        }
        /* Offloads (only offered with l->p.gso): gather the slices, then
         * do what the hardware would. */
        if (len > MEMLINK_WHOLE_MAX) {
            s->sent++;
            s->oversize++;
            continue;
        }
        uint8_t *lin = malloc(len ? len : 1);
        if (!lin) {
            s->sent++;
            s->queue_drop++;
            continue;
        }
        memcpy(lin, fr->data, fr->len);
        if (fr->plen[0])
            memcpy(lin + fr->len, fr->pay[0], fr->plen[0]);
        if (fr->plen[1])
            memcpy(lin + fr->len + fr->plen[0], fr->pay[1], fr->plen[1]);
        const uint16_t gso_flags = TCPSM_FRAME_GSO_TCPV4 | TCPSM_FRAME_GSO_TCPV6;
        if (fr->flags & gso_flags)
            s->gso_in++;
        if (!(fr->flags & gso_flags) || l->p.gso != MEMLINK_GSO_SEGMENT ||
            !gso_segment(l, me->idx, lin, len, fr->gso_size)) {
            if (fr->flags & TCPSM_FRAME_CSUM_PARTIAL)
                gso_soft_finish_csum(lin, len, fr->csum_start, fr->csum_offset);
            wire_send(l, me->idx, lin, len);
        }
        free(lin);
    }
    return n;
}

static const struct tcpsm_netdev_ops mem_ops = { .send = mem_send };

void memlink_set_drop_above(struct memlink *l, uint32_t ip_len)
{
    l->p.drop_above = ip_len;
}

static bool pct_ok(double v)
{
    return v >= 0 && v <= 100;
}

struct memlink *memlink_new(const struct memlink_params *p, uint64_t seed)
{
    if (!p || !pct_ok(p->loss_pct) || !pct_ok(p->dup_pct) || !pct_ok(p->reorder_pct) ||
        !pct_ok(p->corrupt_pct) || p->gso < MEMLINK_GSO_OFF || p->gso > MEMLINK_GSO_WHOLE ||
        p->gso_max > 65535)
        return NULL;
    struct memlink *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->p = *p;
    if (!l->p.mtu)
        l->p.mtu = DEF_MTU;
    if (!l->p.queue_max)
        l->p.queue_max = DEF_QUEUE_MAX;
    if (!l->p.reorder_delay_ns)
        l->p.reorder_delay_ns = 2 * (l->p.delay_ns + l->p.jitter_ns) + 1000000;
    uint64_t x = seed;
    l->rng = splitmix64(&x);
    if (!l->rng)
        l->rng = 1;
    for (int s = 0; s < 2; s++) {
        l->side[s].dev.ops = &mem_ops;
        l->side[s].dev.mtu = l->p.mtu;
        /* with offloads the link takes payload slices, leaves the TCP
         * checksum to the "hardware" and takes super-segments */
        l->side[s].dev.features = l->p.gso ? TCPSM_NETDEV_F_SG | TCPSM_NETDEV_F_TX_CSUM |
                                             TCPSM_NETDEV_F_TSO | TCPSM_NETDEV_F_TSO6 : 0;
        l->side[s].dev.gso_max = l->p.gso_max;
        l->side[s].dev.priv = &l->side[s];
        l->side[s].link = l;
        l->side[s].idx = s;
    }
    return l;
}

static void release_given(struct mside *s)
{
    for (unsigned i = 0; i < s->ngiven; i++)
        free(s->given[i]);
    s->ngiven = 0;
}

void memlink_free(struct memlink *l)
{
    if (!l)
        return;
    for (int s = 0; s < 2; s++) {
        for (uint32_t i = 0; i < l->q[s].n; i++)
            free(l->q[s].v[i].data);
        free(l->q[s].v);
        release_given(&l->side[s]);
        free(l->side[s].given);
    }
    free(l);
}

struct tcpsm_netdev *memlink_dev(struct memlink *l, int side)
{
    return side == 0 || side == 1 ? &l->side[side].dev : NULL;
}

void memlink_set_now(struct memlink *l, uint64_t now)
{
    if (now > l->now)
        l->now = now;
}

unsigned memlink_deliver(struct memlink *l, int side, uint64_t now, struct tcpsm_frame *out,
                         unsigned max)
{
    if (side != 0 && side != 1)
        return 0;
    memlink_set_now(l, now);
    struct mside *s = &l->side[side];
    struct mqueue *q = &l->q[side];
    release_given(s);
    if (s->capgiven < max) {
        uint8_t **g = realloc(s->given, (size_t)max * sizeof(*g));
        if (!g)
            return 0;
        s->given = g;
        s->capgiven = max;
    }
    unsigned k = 0;
    while (k < max && q->n && q->v[0].due <= now) {
        struct mframe f = heap_pop(q);
        out[k] = (struct tcpsm_frame){ .data = f.data, .len = f.len };
        s->given[s->ngiven++] = f.data;
        k++;
    }
    l->stats[1 - side].delivered += k;
    return k;
}

uint64_t memlink_next_due_side(const struct memlink *l, int side)
{
    if (side != 0 && side != 1)
        return UINT64_MAX;
    return l->q[side].n ? l->q[side].v[0].due : UINT64_MAX;
}

uint64_t memlink_next_due(const struct memlink *l)
{
    uint64_t a = memlink_next_due_side(l, 0), b = memlink_next_due_side(l, 1);
    return a < b ? a : b;
}

unsigned memlink_in_flight(const struct memlink *l, int side)
{
    return side == 0 || side == 1 ? l->q[side].n : 0;
}

const struct memlink_stats *memlink_stats(const struct memlink *l, int dir)
{
    return dir == 0 || dir == 1 ? &l->stats[dir] : NULL;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

bool memlink_run(struct memlink *l, struct tcpsm_stack *a, struct tcpsm_stack *b, uint64_t *now,
                 uint64_t until, bool (*done)(void *), void *arg)
{
    struct tcpsm_stack *st[2] = { a, b };
    struct tcpsm_frame fr[TCPSM_TX_BATCH];
    for (uint64_t ev = 0; ev < RUN_MAX_EVENTS; ev++) {
        if (done && done(arg))
            return true;
        uint64_t t = UINT64_MAX;
        for (int s = 0; s < 2; s++)
            if (st[s])
                t = min64(t, min64(memlink_next_due_side(l, s), tcpsm_stack_next_deadline(st[s])));
        if (t < *now)
            t = *now;
        if (t > until) {
            if (*now < until)
                *now = until;
            memlink_set_now(l, *now);
            return false;
        }
        *now = t;
        memlink_set_now(l, t);
        for (int s = 0; s < 2; s++) {
            if (!st[s])
                continue;
            unsigned k;
            while ((k = memlink_deliver(l, s, t, fr, TCPSM_TX_BATCH)) > 0)
                tcpsm_stack_input(st[s], fr, k, t);
        }
        for (int s = 0; s < 2; s++)
            if (st[s] && tcpsm_stack_next_deadline(st[s]) <= t)
                tcpsm_stack_timers(st[s], t);
    }
    return done && done(arg);
}
