/* Binary min-heap of deadlines (see timer.h). */
#include "mem.h"
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

void timer_heap_init(struct tcpsm_timer_heap *h)
{
    h->v = NULL;
    h->n = h->cap = 0;
}

void timer_heap_free(struct tcpsm_timer_heap *h)
{
    for (uint32_t i = 0; i < h->n; i++)
        h->v[i]->idx = UINT32_MAX;
    mem_free(h->v);
    timer_heap_init(h);
}

static void place(struct tcpsm_timer_heap *h, uint32_t i, struct tcpsm_timer *t)
{
    h->v[i] = t;
    t->idx = i;
}

static void sift_up(struct tcpsm_timer_heap *h, uint32_t i)
{
    struct tcpsm_timer *t = h->v[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (h->v[p]->deadline <= t->deadline)
            break;
        place(h, i, h->v[p]);
        i = p;
    }
    place(h, i, t);
}

static void sift_down(struct tcpsm_timer_heap *h, uint32_t i)
{
    struct tcpsm_timer *t = h->v[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->deadline < h->v[c]->deadline)
            c++;
        if (t->deadline <= h->v[c]->deadline)
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, t);
}

int timer_set(struct tcpsm_timer_heap *h, struct tcpsm_timer *t, uint64_t deadline)
{
    if (tcpsm_timer_armed(t)) {
        uint64_t old = t->deadline;
        t->deadline = deadline;
        if (deadline < old)
            sift_up(h, t->idx);
        else
            sift_down(h, t->idx);
        return 0;
    }
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 64;
        struct tcpsm_timer **v = mem_realloc(h->v, (size_t)h->cap * sizeof(*v), (size_t)cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->deadline = deadline;
    place(h, h->n++, t);
    sift_up(h, t->idx);
    return 0;
}

void timer_cancel(struct tcpsm_timer_heap *h, struct tcpsm_timer *t)
{
    if (!tcpsm_timer_armed(t))
        return;
    uint32_t i = t->idx;
    t->idx = UINT32_MAX;
    struct tcpsm_timer *last = h->v[--h->n];
    if (i == h->n)
        return;
    place(h, i, last);
    if (i > 0 && h->v[(i - 1) / 2]->deadline > last->deadline)
        sift_up(h, i);
    else
        sift_down(h, i);
}

uint64_t timer_next(const struct tcpsm_timer_heap *h)
{
    return h->n ? h->v[0]->deadline : UINT64_MAX;
}

void timer_run(struct tcpsm_timer_heap *h, const tcpsm_timer_fn fns[TIMER_NKINDS], void *ctx,
               uint64_t now)
{
    while (h->n && h->v[0]->deadline <= now) {
        struct tcpsm_timer *t = h->v[0];
        timer_cancel(h, t);
        if (t->kind < TIMER_NKINDS && fns[t->kind])
            fns[t->kind](ctx, t, now);
    }
}

/* ---------------------------------------------------------------- repair */

unsigned timer_heap_audit(const struct tcpsm_timer_heap *h)
{
    unsigned faults = 0;
    if (h->n > h->cap || (h->cap && !mem_valid(h->v, (size_t)h->cap * sizeof(*h->v))))
        return 1;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct tcpsm_timer *t = h->v[i];
        if (!mem_valid(t, sizeof(*t))) {
            faults++;
            continue;
        }
        faults += t->idx != i || t->kind >= TIMER_NKINDS;
        faults += i > 0 && h->v[(i - 1) / 2]->deadline > t->deadline;
    }
    return faults;
}

unsigned timer_heap_repair(struct tcpsm_timer_heap *h,
                           bool (*keep)(void *ctx, const struct tcpsm_timer *t), void *ctx)
{
    unsigned faults = timer_heap_audit(h);
    if (!faults)
        return 0;
    if (h->n > h->cap || (h->cap && !mem_valid(h->v, (size_t)h->cap * sizeof(*h->v)))) {
        /* the array itself is gone (a grow cut short): every owner re-arms */
        h->v = NULL;
        h->n = h->cap = 0;
        return faults;
    }
    /* Keep each timer once (an interrupted sift may have left one in two
     * slots: the one its idx names wins), then heapify (Floyd). */
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        struct tcpsm_timer *t = h->v[i];
        if (!mem_valid(t, sizeof(*t)) || t->kind >= TIMER_NKINDS || !keep(ctx, t))
            continue;
        if (t->idx != i && t->idx < h->n && h->v[t->idx] == t)
            continue;
        h->v[n] = t;
        t->idx = n++;
    }
    h->n = n;
    for (uint32_t i = n / 2; i-- > 0;)
        sift_down(h, i);
    return faults;
}
