/* A stack may live in memory that several programs map, each with the
 * library's code at another address (issue 6): the stack holds no address
 * of code or of a process's own memory, and each process runs it through
 * its own host (tcpsm_stack_bind). Two stacks over the in-memory link:
 *  - every block the core allocated is walked, word by word, for a value
 *    that points into any loaded image (code, constants, static data) or
 *    into the objects this process owns (the links, the thread's stack):
 *    timer callbacks, congestion-control ops, the netdev and the event
 *    callbacks once were such words;
 *  - a stack left without a host ("another process" that has not bound
 *    it) sends nothing and reports nothing; bound to another link and other
 *    callbacks, it goes on with the same connection, byte-exact. */
#include <criterion/criterion.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev_mem.h"
#include "tcpsm/core.h"

#define A_ADDR 0xC6120001u      /* 198.18.0.1 */
#define B_ADDR 0xC6120002u      /* 198.18.0.2 */
#define PORT 5001
#define T0  1000000000ull
#define SEC 1000000000ull

/* ------------------------------------------------ an allocator that keeps a list */

#define MAX_BLOCKS 200000
static struct blk { void *p; size_t n; } blocks[MAX_BLOCKS];
static size_t nblocks;

static void *track_alloc(void *ctx, size_t n)
{
    (void)ctx;
    if (nblocks == MAX_BLOCKS)
        return NULL;
    void *p = malloc(n);
    if (p)
        blocks[nblocks++] = (struct blk){ p, n };
    return p;
}

static void track_free(void *ctx, void *p)
{
    (void)ctx;
    for (size_t i = nblocks; i-- > 0;) {
        if (blocks[i].p == p) {
            blocks[i] = blocks[--nblocks];
            break;
        }
    }
    free(p);
}

/* ------------------------------------------------ forbidden ranges */

#define MAX_RANGES 256
static struct { uintptr_t lo, hi; char what[64]; } ranges[MAX_RANGES];
static unsigned nranges;

static void range_add(uintptr_t lo, uintptr_t hi, const char *what)
{
    if (nranges == MAX_RANGES)
        return;
    ranges[nranges].lo = lo;
    ranges[nranges].hi = hi;
    snprintf(ranges[nranges].what, sizeof(ranges[0].what), "%s", what);
    nranges++;
}

static int image_cb(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size; (void)ctx;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        range_add(lo, lo + ph->p_memsz, info->dlpi_name[0] ? info->dlpi_name : "the program");
    }
    return 0;
}

/* Returns how many words of live core blocks point into a forbidden range. */
static unsigned audit(void)
{
    unsigned bad = 0;
    for (size_t b = 0; b < nblocks; b++) {
        const unsigned char *p = blocks[b].p;
        for (size_t off = 0; off + sizeof(uintptr_t) <= blocks[b].n; off += sizeof(uintptr_t)) {
            uintptr_t v;
            memcpy(&v, p + off, sizeof(v));
            for (unsigned r = 0; r < nranges; r++) {
                if (v >= ranges[r].lo && v < ranges[r].hi) {
                    if (bad++ < 10)
                        cr_log_error("block %p (%zu bytes) + %zu holds %#lx: into %s", (void *)p,
                                     blocks[b].n, off, (unsigned long)v, ranges[r].what);
                }
            }
        }
    }
    return bad;
}

/* ------------------------------------------------ two stacks */

struct relay {                  /* "another process's" link: forwards to the memlink */
    struct tcpsm_netdev dev;
    struct tcpsm_netdev *inner;
    unsigned frames;
};

static unsigned relay_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    struct relay *r = dev->priv;
    r->frames += n;
    return r->inner->ops->send(r->inner, f, n);
}
static const struct tcpsm_netdev_ops relay_ops = { .send = relay_send };

static unsigned events_first, events_second;
static void ev_first(void *ctx, struct tcpsm_sock *sk, unsigned ev)
{
    (void)ctx; (void)sk; (void)ev;
    events_first++;
}
static void ev_second(void *ctx, struct tcpsm_sock *sk, unsigned ev)
{
    (void)ctx; (void)sk; (void)ev;
    events_second++;
}
static unsigned traces;
static void on_trace(void *ctx, const struct tcpsm_trace_event *ev)
{
    (void)ctx; (void)ev;
    traces++;
}

static struct memlink *link_;
static struct tcpsm_stack *sa, *sb;
static struct tcpsm_sock *ca, *cb, *lb;
static uint64_t now;
static struct tcpsm_config cfg_a;

static struct tcpsm_config mkcfg(uint32_t addr, uint8_t macl)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = addr;
    c.prefix_len = 24;
    memcpy(c.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 0, macl }, 6);
    /* IPv6 too: duplicate address detection and router solicitation arm
     * the stack's own timer */
    uint8_t a6[16] = { 0x20, 0x01, 0, 0x02, [15] = macl };
    memcpy(c.addr6, a6, 16);
    c.prefix6_len = 64;
    c.secret[0] = 0x1111u * macl;
    c.msl_ms = 1000;
    return c;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static void run_for(uint64_t ns)
{
    memlink_run(link_, sa, sb, &now, now + ns, never, NULL);
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(1 + (i * 7) % 251);        /* no address-like words in the payload */
}

static size_t sent, got;
static uint8_t buf[65536];

/* A sends up to total bytes of the pattern; B reads and checks them. */
static void transfer(size_t total)
{
    for (int round = 0; round < 2000 && got < total; round++) {
        while (sent < total) {
            size_t n = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = pattern(sent + i);
            memlink_set_now(link_, now);
            ssize_t r = tcpsm_sock_send(ca, buf, n, now);
            if (r == -EAGAIN)
                break;
            cr_assert_gt(r, 0, "send: %zd", r);
            sent += (size_t)r;
        }
        run_for(SEC / 100);
        for (;;) {
            memlink_set_now(link_, now);
            ssize_t r = tcpsm_sock_recv(cb, buf, sizeof(buf), 0, now);
            if (r == -EAGAIN)
                break;
            cr_assert_gt(r, 0, "recv: %zd", r);
            for (ssize_t i = 0; i < r; i++)
                cr_assert_eq(buf[i], pattern(got + (size_t)i), "byte %zu differs", got + (size_t)i);
            got += (size_t)r;
        }
    }
    cr_assert_eq(got, total, "B got %zu of %zu bytes", got, total);
}

static void setup(void)
{
    struct tcpsm_allocator a = { .alloc = track_alloc, .free = track_free };
    tcpsm_set_allocator(&a);
    struct memlink_params lp = { 0 };
    link_ = memlink_new(&lp, 42);
    now = T0;
    memlink_set_now(link_, now);
    cfg_a = mkcfg(A_ADDR, 1);
    cfg_a.sock_event = ev_first;
    cfg_a.trace = on_trace;
    struct tcpsm_config cb_cfg = mkcfg(B_ADDR, 2);
    sa = tcpsm_stack_new(&cfg_a, memlink_dev(link_, 0), now);
    sb = tcpsm_stack_new(&cb_cfg, memlink_dev(link_, 1), now);
    cr_assert(sa && sb);
    cr_assert_eq(tcpsm_sock_new(sb, &lb), 0);
    cr_assert_eq(tcpsm_sock_bind(lb, 0, PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(lb, 8), 0);
    cr_assert_eq(tcpsm_sock_new(sa, &ca), 0);
    cr_assert_eq(tcpsm_sock_setopt(ca, TCPSM_OPT_CONGESTION, TCPSM_CC_CUBIC), 0);
    cr_assert_eq(tcpsm_sock_connect(ca, B_ADDR, PORT, now), -EINPROGRESS);
    for (int i = 0; i < 100 && !cb; i++) {
        run_for(SEC / 100);
        if (tcpsm_sock_accept(lb, &cb) != 0)
            cb = NULL;
    }
    cr_assert_not_null(cb, "no connection");
    cr_assert_eq(tcpsm_sock_state(ca), TCPSM_ESTABLISHED);
    sent = got = 0;
}

static void teardown(void)
{
    tcpsm_stack_free(sa);
    tcpsm_stack_free(sb);
    memlink_free(link_);
    tcpsm_set_allocator(NULL);
    nblocks = 0;
    nranges = 0;
}

Test(stack_host, core_memory_holds_no_process_address, .init = setup, .fini = teardown)
{
    transfer(300000);
    /* unacknowledged data, a retransmission timer and a delayed ACK armed */
    memlink_set_now(link_, now);
    cr_assert_gt(tcpsm_sock_send(ca, "xyz", 3, now), 0);
    cr_assert_gt(nblocks, 10);
    dl_iterate_phdr(image_cb, NULL);
    cr_assert_gt(nranges, 0);
    int dummy;
    range_add((uintptr_t)link_, (uintptr_t)link_ + 1, "the memlink");
    range_add((uintptr_t)memlink_dev(link_, 0), (uintptr_t)memlink_dev(link_, 0) + sizeof(struct tcpsm_netdev), "link side 0");
    range_add((uintptr_t)memlink_dev(link_, 1), (uintptr_t)memlink_dev(link_, 1) + sizeof(struct tcpsm_netdev), "link side 1");
    range_add((uintptr_t)&dummy - (1u << 20), (uintptr_t)&dummy + (1u << 20), "the thread's stack");
    cr_assert_eq(audit(), 0, "the core's memory holds addresses of this process (see the log)");
}

Test(stack_host, unbound_stack_is_silent_then_runs_with_the_new_host, .init = setup,
     .fini = teardown)
{
    transfer(100000);
    run_for(SEC);               /* every ACK in: nothing in flight (no Nagle wait below) */
    unsigned ev0 = events_first, tr0 = traces;
    cr_assert_gt(ev0, 0, "the first host's callbacks were called");

    /* As another process sees it before binding: nothing goes out. */
    tcpsm_stack_unbind(sa);
    uint64_t drops = tcpsm_stack_counters(sa)->tx_drop;
    memlink_set_now(link_, now);
    cr_assert_gt(tcpsm_sock_send(ca, buf, 1000, now), 0);
    tcpsm_stack_timers(sa, now);
    cr_assert_gt(tcpsm_stack_counters(sa)->tx_drop, drops, "an unbound stack's frames are dropped");
    cr_assert_eq(events_first, ev0);

    /* Bound to "its" link and callbacks, the same connection goes on. */
    struct relay r = { .dev = { .ops = &relay_ops, .mtu = 1500, .priv = &r },
                       .inner = memlink_dev(link_, 0) };
    r.dev.features = r.inner->features;
    r.dev.gso_max = r.inner->gso_max;
    struct tcpsm_config cb2;
    memset(&cb2, 0, sizeof cb2);
    cb2.sock_event = ev_second;
    cr_assert_eq(tcpsm_stack_bind(sa, &cb2, &r.dev), 0);
    sent = got = 0;
    /* the 1000 bytes sent while unbound arrive first (retransmitted) */
    for (int i = 0; i < 500 && got < 1000; i++) {
        run_for(SEC / 10);
        memlink_set_now(link_, now);
        ssize_t n = tcpsm_sock_recv(cb, buf, 1000 - got, 0, now);
        if (n > 0)
            got += (size_t)n;
    }
    cr_assert_eq(got, 1000, "the data sent while unbound was retransmitted");
    sent = got = 0;
    transfer(200000);
    cr_assert_gt(r.frames, 0, "frames leave through the new host's link");
    cr_assert_gt(events_second, 0, "events reach the new host's callbacks");
    cr_assert_eq(events_first, ev0, "and no longer the old ones");
    cr_assert_eq(traces, tr0, "the new host has no trace callback");

    /* One process, one stack per host index: another stack cannot take it. */
    cr_assert_eq(tcpsm_stack_bind(sb, &cb2, NULL), -EINVAL);
}
