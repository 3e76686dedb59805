/* TCB life cycle and lookup: allocation against max_socks, the 4-tuple
 * hash, the port table (listeners and bind conflicts), ephemeral ports,
 * RFC 6528 ISNs, state transitions with their trace, and wake-ups. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "ipv4.h"
#include "ipv6.h"
#include "tcp_int.h"

/* ---------------------------------------------------------------- SipHash-2-4 */

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND                                                                          \
    do {                                                                                  \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                         \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                             \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                             \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                         \
    } while (0)

/* SipHash-2-4 over two 64-bit words (the 4-tuple and a domain tag). */
static uint64_t siphash2(const uint64_t k[2], uint64_t m0, uint64_t m1)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
    uint64_t m[3] = { m0, m1, (uint64_t)16 << 56 };
    for (int i = 0; i < 3; i++) {
        v3 ^= m[i];
        SIPROUND; SIPROUND;
        v0 ^= m[i];
    }
    v2 ^= 0xff;
    SIPROUND; SIPROUND; SIPROUND; SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t w64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* IPv4 tuples hash as before the 16-byte addresses (same ISNs and ports);
 * IPv6 ones fold the address halves in first (a second SipHash round). */
static uint64_t tuple_hash(const struct tcpsm_stack *st, const struct tcpsm_addr *la, uint16_t lp,
                           const struct tcpsm_addr *ra, uint16_t rp, uint64_t tag)
{
    uint64_t ports = ((uint64_t)lp << 48) | ((uint64_t)rp << 32) | tag;
    if (addr_is_v4(la) && addr_is_v4(ra))
        return siphash2(st->cfg.secret, ((uint64_t)addr_v4(la) << 32) | addr_v4(ra), ports);
    uint64_t h = siphash2(st->cfg.secret, w64(la->b) ^ w64(ra->b + 8),
                          w64(la->b + 8) ^ rotl(w64(ra->b), 17));
    return siphash2(st->cfg.secret, h ^ w64(ra->b) ^ rotl(w64(la->b), 29), ports ^ (1ull << 31));
}

uint32_t tcp_mtu_l4(const struct tcpsm_sock *sk)
{
    /* an unconnected IPv6 socket takes the smaller IPv6 room */
    if (addr_is_v4(&sk->raddr) || (!sk->ipv6 && addr_is_any(&sk->raddr)))
        return ipv4_mtu_l4(sk->st);
    return ipv6_mtu_l4(sk->st);
}

unsigned tcp_sock_families(const struct tcpsm_sock *sk)
{
    if (!addr_is_any(&sk->laddr))
        return addr_is_v4(&sk->laddr) ? 1u : 2u;
    if (!sk->ipv6)
        return 1u;
    return sk->v6only ? 2u : 3u;
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a 4 microsecond clock. */
uint32_t tcp_isn(struct tcpsm_sock *sk, uint64_t now)
{
    uint32_t f = (uint32_t)tuple_hash(sk->st, &sk->laddr, sk->lport, &sk->raddr, sk->rport, 1);
    return f + (uint32_t)(now / 4000u);
}

/* ---------------------------------------------------------------- tables */

static uint32_t ehash_idx(const struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                          const struct tcpsm_addr *ra, uint16_t rp)
{
    return (uint32_t)tuple_hash(ts->st, la, lp, ra, rp, 2) & ts->emask;
}

int tcp_init(struct tcpsm_stack *st)
{
    struct tcp_stack *ts = mem_calloc(1, sizeof(*ts));
    if (!ts)
        return -ENOMEM;
    ts->st = st;
    ts->max_socks = st->cfg.max_socks ? st->cfg.max_socks : TCP_MAX_SOCKS_DEF;
    ts->mem_max = st->cfg.mem_max ? st->cfg.mem_max : TCP_MEM_MAX_DEF;
    /* as Linux, the host's choice (tcp_congestion_control); CUBIC (RFC 9438)
     * when it names one the stack lacks */
    char cc[sizeof(st->cfg.congestion) + 1] = { 0 };
    memcpy(cc, st->cfg.congestion, sizeof(st->cfg.congestion));
    int which = tcpsm_cc_by_name(cc);
    ts->cc_default = (uint8_t)(which < 0 ? TCPSM_CC_CUBIC : which);
    uint32_t n = 256;
    while (n < ts->max_socks && n < (1u << 20))
        n <<= 1;
    ts->emask = n - 1;
    ts->bmask = 1023;
    ts->ehash = mem_calloc(n, sizeof(*ts->ehash));
    ts->bhash = mem_calloc(ts->bmask + 1, sizeof(*ts->bhash));
    ts->lhash = mem_calloc(ts->bmask + 1, sizeof(*ts->lhash));
    if (!ts->ehash || !ts->bhash || !ts->lhash) {
        mem_free(ts->ehash);
        mem_free(ts->bhash);
        mem_free(ts->lhash);
        mem_free(ts);
        return -ENOMEM;
    }
    ts->tw_tail = &ts->tw_head;
    st->tcp = ts;
    return 0;
}

void tcp_fini(struct tcpsm_stack *st)
{
    struct tcp_stack *ts = st->tcp;
    if (!ts)
        return;
    while (ts->all)
        tcp_sock_free(ts->all);
    tcp_ring_cache_drain(ts);
    mem_free(ts->ehash);
    mem_free(ts->bhash);
    mem_free(ts->lhash);
    mem_free(ts);
    st->tcp = NULL;
}

size_t tcp_nsocks(const struct tcpsm_stack *st)
{
    return st->tcp ? st->tcp->nsocks : 0;
}

uint32_t tcp_syn_rate(const struct tcp_syn_stats *y, uint64_t now)
{
    uint64_t sec = now / SEC_NS + 1;
    return sec == y->sec + 1 ? y->this_sec : sec == y->sec ? y->last_sec : 0;
}

uint32_t tcpsm_stack_syn_rate(const struct tcpsm_stack *st, uint64_t now)
{
    return st->tcp ? tcp_syn_rate(&st->tcp->syn, now) : 0;
}

size_t tcpsm_stack_mem(const struct tcpsm_stack *st, size_t *max, bool *pressure)
{
    const struct tcp_stack *ts = st->tcp;
    if (max)
        *max = ts ? ts->mem_max : 0;
    if (pressure)
        *pressure = ts && ts->mem_pressure;
    return ts ? ts->mem_used : 0;
}

const char *tcpsm_state_name(int state)
{
    static const char *const names[TCPSM_NSTATES] = {
        "CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
        "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
    };
    if (state < 0 || state >= TCPSM_NSTATES)
        return "?";
    return names[state];
}

uint8_t tcp_pick_wscale(uint32_t rcvbuf)
{
    uint8_t s = 0;
    while (s < 14 && (rcvbuf >> s) > 65535)
        s++;
    return s;
}

/* The shift is fixed at the SYN (RFC 7323 2.2): cover the buffer's
 * auto-tuning ceiling, not only its size now. */
uint8_t tcp_rcv_wscale(const struct tcpsm_sock *sk)
{
    return tcp_pick_wscale(sk->rcvbuf_max > sk->rcvbuf ? sk->rcvbuf_max : sk->rcvbuf);
}

static void lhash_del(struct tcpsm_sock *sk);

static void tw_del(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    if (!sk->twpprev)
        return;
    *sk->twpprev = sk->twnext;
    if (sk->twnext)
        sk->twnext->twpprev = sk->twpprev;
    else
        ts->tw_tail = sk->twpprev;
    sk->twnext = NULL;
    sk->twpprev = NULL;
}

void tcp_tw_add(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    if (sk->twpprev)
        return;
    sk->twnext = NULL;
    sk->twpprev = ts->tw_tail;
    *ts->tw_tail = sk;
    ts->tw_tail = &sk->twnext;
}

/* The table is full: the oldest orphaned TIME-WAIT TCB makes room, as
 * Linux does past tcp_max_tw_buckets (it kills the TIME-WAIT state early
 * rather than refusing a connection; the RFC 1337 hazard this reopens is
 * the one Linux accepts). Counted in tcp_tw_recycled. */
static bool tw_recycle(struct tcp_stack *ts)
{
    for (struct tcpsm_sock *sk = ts->tw_head; sk; sk = sk->twnext)
        if (!sk->user_ref) {
            ts->st->cnt.tcp_tw_recycled++;
            tcp_done(sk, 0, "time-wait recycled (table full)", NULL);
            return true;
        }
    return false;
}

/* The shared region's buddy allocator rounds up to a power of two: one
 * byte over 2 KiB makes every connection take 4 KiB (test_idle_memory,
 * test_many_conns: 4096 bytes per idle connection at most). New fields go
 * into the struct's alignment holes (gdb: ptype /o struct tcpsm_sock). */
_Static_assert(sizeof(struct tcpsm_sock) <= 2048, "struct tcpsm_sock outgrew its 2 KiB block");

struct tcpsm_sock *tcp_sock_alloc(struct tcpsm_stack *st)
{
    struct tcp_stack *ts = st->tcp;
    if (ts->nsocks >= ts->max_socks && !tw_recycle(ts)) {
        st->cnt.tcp_drop_max_socks++;
        return NULL;
    }
    struct tcpsm_sock *sk = mem_calloc(1, sizeof(*sk));
    if (!sk)
        return NULL;
    sk->st = st;
    sk->state = TCPSM_CLOSED;
    tcpsm_timer_init(&sk->timer, TIMER_TCP);
    sk->sndbuf = st->cfg.sndbuf ? st->cfg.sndbuf : TCP_BUF_DEF;
    sk->rcvbuf = st->cfg.rcvbuf ? st->cfg.rcvbuf : TCP_BUF_DEF;
    sk->rcvbuf_max = st->cfg.rcvbuf_max > sk->rcvbuf ?
                     (st->cfg.rcvbuf_max < TCP_BUF_MAX ? st->cfg.rcvbuf_max : TCP_BUF_MAX) : 0;
    sk->ttl = -1;
    sk->keepidle = 7200;
    sk->keepintvl = 75;
    sk->keepcnt = 9;
    sk->linger = -1;
    sk->rto_us = TCP_RTO_INIT_US;
    sk->mss = TCP_MSS_DEF;
    sk->cc_pref = ts->cc_default;
    sk->anext = ts->all;
    if (ts->all)
        ts->all->aprev = sk;
    ts->all = sk;
    ts->nsocks++;
    return sk;
}

void tcp_init_from_listener(struct tcpsm_sock *c, const struct tcpsm_sock *l)
{
    c->sndbuf = l->sndbuf;
    c->rcvbuf = l->rcvbuf;
    c->rcvbuf_max = l->rcvbuf_max;
    c->nodelay = l->nodelay;
    c->cork = l->cork;
    c->keepalive = l->keepalive;
    c->keepidle = l->keepidle;
    c->keepintvl = l->keepintvl;
    c->keepcnt = l->keepcnt;
    c->linger = l->linger;
    c->user_mss = l->user_mss;
    c->user_timeout_ms = l->user_timeout_ms;
    c->cc_pref = l->cc_pref;
    c->reuseaddr = l->reuseaddr;
    c->urginline = l->urginline;
    c->ipv6 = l->ipv6;
    c->v6only = l->v6only;
    c->tos = l->tos;
    c->ttl = l->ttl;
}

bool tcp_local_addr(const struct tcpsm_stack *st, const struct tcpsm_addr *raddr,
                    struct tcpsm_addr *out)
{
    if (addr_is_v4(raddr)) {
        if (!st->cfg.addr)
            return false;
        *out = addr_from_v4(st->cfg.addr);
        return true;
    }
    const uint8_t *s = ipv6_src_for(st, raddr->b);
    if (!s)
        return false;
    *out = addr_from6(s);
    return true;
}

/* The SYN queue is doubly linked: an embryo leaves it in O(1) however
 * long the queue is (a flood fills it). */
void tcp_synq_add(struct tcpsm_sock *l, struct tcpsm_sock *c)
{
    c->qnext = l->synq;
    if (l->synq)
        l->synq->qpprev = &c->qnext;
    c->qpprev = &l->synq;
    l->synq = c;
    l->nsyn++;
}

void tcp_synq_del(struct tcpsm_sock *l, struct tcpsm_sock *c)
{
    if (!c->qpprev)
        return;
    *c->qpprev = c->qnext;
    if (c->qnext)
        c->qnext->qpprev = c->qpprev;
    c->qnext = NULL;
    c->qpprev = NULL;
    l->nsyn--;
}

/* Take an unaccepted child off its listener's queues. */
void tcp_unlink_child(struct tcpsm_sock *c)
{
    struct tcpsm_sock *l = c->parent;
    if (!l)
        return;
    if (c->in_acceptq) {
        struct tcpsm_sock *prev = NULL;
        for (struct tcpsm_sock *x = l->accq; x; prev = x, x = x->qnext)
            if (x == c) {
                if (prev)
                    prev->qnext = c->qnext;
                else
                    l->accq = c->qnext;
                if (l->accq_tail == c)
                    l->accq_tail = prev;
                break;
            }
        l->nacc--;
        c->in_acceptq = false;
    } else {
        tcp_synq_del(l, c);
    }
    c->qnext = NULL;
    c->parent = NULL;
}

void tcp_sock_free(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    /* a listener's children die with it (tcp_fini, or close already reset them) */
    while (sk->synq)
        tcp_sock_free(sk->synq);
    while (sk->accq)
        tcp_sock_free(sk->accq);
    ts->dying = sk;                     /* intent: tcp_repair.c finishes it */
    tcp_unlink_child(sk);
    if (sk->batch_work) {
        for (unsigned i = 0; i < ts->nbatch; i++)
            if (ts->batch[i] == sk)
                ts->batch[i] = NULL;
    }
    if (sk->ack_held) {
        for (unsigned i = 0; i < ts->nheld; i++)
            if (ts->held[i] == sk)
                ts->held[i] = NULL;
    }
    timer_cancel(&sk->st->timers, &sk->timer);
    tcp_ehash_del(sk);
    tcp_bind_del(sk);
    lhash_del(sk);
    tw_del(sk);
    tcp_ring_release(sk, &sk->sndq);    /* flushes frames that point into it */
    tcp_ring_release(sk, &sk->rcvq);
    tcp_ofo_purge(sk);
    tcp_rtxq_free(sk);
    if (ts->walk_next == sk)
        ts->walk_next = sk->anext;      /* a walk in steps goes on past it */
    if (sk->aprev)
        sk->aprev->anext = sk->anext;
    else
        ts->all = sk->anext;
    if (sk->anext)
        sk->anext->aprev = sk->aprev;
    ts->nsocks--;
    mem_free(sk);
    ts->dying = NULL;
}

void tcp_ehash_add(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    if (sk->hashed)
        return;
    uint32_t i = ehash_idx(ts, &sk->laddr, sk->lport, &sk->raddr, sk->rport);
    sk->enext = ts->ehash[i];
    ts->ehash[i] = sk;
    sk->hashed = true;
}

uint32_t tcp_ehash_idx(const struct tcpsm_sock *sk)
{
    return ehash_idx(TS(sk), &sk->laddr, sk->lport, &sk->raddr, sk->rport);
}

void tcp_ehash_del(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    if (!sk->hashed)
        return;
    uint32_t i = ehash_idx(ts, &sk->laddr, sk->lport, &sk->raddr, sk->rport);
    for (struct tcpsm_sock **pp = &ts->ehash[i]; *pp; pp = &(*pp)->enext)
        if (*pp == sk) {
            *pp = sk->enext;
            break;
        }
    sk->enext = NULL;
    sk->hashed = false;
}

struct tcpsm_sock *tcp_ehash_find(struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                                  const struct tcpsm_addr *ra, uint16_t rp)
{
    for (struct tcpsm_sock *sk = ts->ehash[ehash_idx(ts, la, lp, ra, rp)]; sk; sk = sk->enext)
        if (sk->lport == lp && sk->rport == rp && addr_eq(&sk->laddr, la) &&
            addr_eq(&sk->raddr, ra))
            return sk;
    return NULL;
}

void tcp_bind_add(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    if (sk->bound)
        return;
    uint32_t i = sk->lport & ts->bmask;
    sk->bnext = ts->bhash[i];
    if (sk->bnext)
        sk->bnext->bpprev = &sk->bnext;
    sk->bpprev = &ts->bhash[i];
    ts->bhash[i] = sk;
    sk->bound = true;
}

/* O(1): every connection of a busy port is on its chain. */
void tcp_bind_del(struct tcpsm_sock *sk)
{
    if (!sk->bound)
        return;
    *sk->bpprev = sk->bnext;
    if (sk->bnext)
        sk->bnext->bpprev = sk->bpprev;
    sk->bnext = NULL;
    sk->bpprev = NULL;
    sk->bound = false;
}

/* Listeners have a table of their own, so that a SYN finds its listener in
 * O(1) however many connections share the port (Linux lhash2). */
void tcp_lhash_add(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    if (sk->lpprev)
        return;
    uint32_t i = sk->lport & ts->bmask;
    sk->lnext = ts->lhash[i];
    if (sk->lnext)
        sk->lnext->lpprev = &sk->lnext;
    sk->lpprev = &ts->lhash[i];
    ts->lhash[i] = sk;
}

static void lhash_del(struct tcpsm_sock *sk)
{
    if (!sk->lpprev)
        return;
    *sk->lpprev = sk->lnext;
    if (sk->lnext)
        sk->lnext->lpprev = sk->lpprev;
    sk->lnext = NULL;
    sk->lpprev = NULL;
}

/* A listener bound to la itself wins over a wildcard one (Linux scoring);
 * a wildcard listener takes the families tcp_sock_families() says. */
struct tcpsm_sock *tcp_listener_find(struct tcp_stack *ts, const struct tcpsm_addr *la,
                                     uint16_t lp)
{
    unsigned fam = addr_is_v4(la) ? 1u : 2u;
    struct tcpsm_sock *any = NULL;
    for (struct tcpsm_sock *sk = ts->lhash[lp & ts->bmask]; sk; sk = sk->lnext) {
        if (sk->state != TCPSM_LISTEN || sk->lport != lp)
            continue;
        if (addr_eq(&sk->laddr, la))
            return sk;
        if (addr_is_any(&sk->laddr) && (tcp_sock_families(sk) & fam) && !any)
            any = sk;
    }
    return any;
}

/* Linux inet_csk_bind_conflict, simplified: a port is shared only when both
 * sockets set SO_REUSEADDR and the other is not listening, or the other is
 * in TIME-WAIT and the new one set SO_REUSEADDR. */
bool tcp_port_conflict(struct tcp_stack *ts, const struct tcpsm_sock *sk,
                       const struct tcpsm_addr *addr, uint16_t port)
{
    /* the families sk would take when bound to addr */
    struct tcpsm_sock probe = { .laddr = *addr, .ipv6 = sk->ipv6, .v6only = sk->v6only };
    unsigned fam = tcp_sock_families(&probe);
    for (struct tcpsm_sock *o = ts->bhash[port & ts->bmask]; o; o = o->bnext) {
        if (o == sk || o->lport != port)
            continue;
        /* Linux inet_bind_conflict: different specific addresses, or
         * families that do not overlap (a v6-only :: beside 0.0.0.0) */
        if (!addr_is_any(addr) && !addr_is_any(&o->laddr) && !addr_eq(addr, &o->laddr))
            continue;
        if (!(fam & tcp_sock_families(o)))
            continue;
        if (sk->reuseaddr && o->state == TCPSM_TIME_WAIT)
            continue;
        if (sk->reuseaddr && o->reuseaddr && o->state != TCPSM_LISTEN)
            continue;
        return true;
    }
    return false;
}

static bool port_used(struct tcp_stack *ts, uint16_t port)
{
    for (struct tcpsm_sock *o = ts->bhash[port & ts->bmask]; o; o = o->bnext)
        if (o->lport == port)
            return true;
    return false;
}

/* RFC 6056 3.3.4 (double-hash, as Linux __inet_hash_connect): start at a
 * keyed hash of the destination plus a per-bucket counter that each pick
 * advances, walk the range. For connect, a port already bound may be
 * shared when the 4-tuple is unique. */
int tcp_pick_ephemeral(struct tcpsm_sock *sk, bool for_connect)
{
    struct tcp_stack *ts = TS(sk);
    uint32_t range = TCP_EPH_HI - TCP_EPH_LO + 1;
    struct tcpsm_addr la = sk->laddr;
    if (addr_is_any(&la))
        tcp_local_addr(sk->st, &sk->raddr, &la);
    uint32_t *perturb = &ts->eph_perturb[(uint32_t)tuple_hash(sk->st, &la, 0, &sk->raddr,
                                                              sk->rport, 4) % TCP_EPH_PERTURB];
    uint32_t off = (uint32_t)tuple_hash(sk->st, &la, 0, &sk->raddr, sk->rport, 3) + *perturb;
    for (int pass = 0; pass < (for_connect ? 2 : 1); pass++) {
        for (uint32_t i = 0; i < range; i++) {
            uint16_t p = (uint16_t)(TCP_EPH_LO + (off + i) % range);
            if (pass == 0) {
                if (port_used(ts, p))
                    continue;
            } else {
                /* shared with other connections from ephemeral ports only */
                if (tcp_listener_find(ts, &la, p) ||
                    tcp_ehash_find(ts, &la, p, &sk->raddr, sk->rport))
                    continue;
                bool shared_ok = true;
                for (struct tcpsm_sock *o = ts->bhash[p & ts->bmask]; o; o = o->bnext)
                    if (o->lport == p && (o->state == TCPSM_LISTEN || o->state == TCPSM_CLOSED ||
                                          o->user_bound))
                        shared_ok = false;
                if (!shared_ok)
                    continue;
            }
            *perturb += i + 2;  /* Linux: past the port taken, by an even step */
            sk->lport = p;
            tcp_bind_add(sk);
            return 0;
        }
    }
    return -EADDRNOTAVAIL;
}

/* ---------------------------------------------------------------- state, trace, wake */

void tcp_set_state(struct tcpsm_sock *sk, int state, const char *why, const struct tcp_seg *in,
                   bool out_seg)
{
    int old = sk->state;
    if (old == state)
        return;
    sk->state = state;
    if (old == TCPSM_LISTEN)
        lhash_del(sk);
    if (state == TCPSM_TIME_WAIT)
        tcp_tw_add(sk);
    else if (old == TCPSM_TIME_WAIT)
        tw_del(sk);
    const struct stack_host *cfg = stack_host(sk->st);
    tcp_wake(sk);                       /* readiness may change with the state */
    if (!cfg->trace)
        return;
    struct tcpsm_trace_event ev = {
        .now = sk->st->now, .laddr = addr_is_v4(&sk->laddr) ? addr_v4(&sk->laddr) : 0,
        .raddr = addr_is_v4(&sk->raddr) ? addr_v4(&sk->raddr) : 0, .lport = sk->lport,
        .v6 = !addr_is_v4(&sk->raddr) && !addr_is_any(&sk->raddr), .laddr6 = sk->laddr,
        .raddr6 = sk->raddr,
        .rport = sk->rport, .old_state = old, .new_state = state, .why = why,
    };
    if (in) {
        ev.has_seg = true;
        ev.dir = '<';
        ev.seg_flags = in->flags;
        ev.seg_seq = in->seq;
        ev.seg_ack = in->ack;
        ev.seg_len = in->len;
        ev.seg_wnd = in->wnd;
    } else if (out_seg) {
        ev.has_seg = true;
        ev.dir = '>';
        ev.seg_flags = sk->tx_flags;
        ev.seg_seq = sk->tx_seq;
        ev.seg_ack = sk->tx_ack;
        ev.seg_len = sk->tx_len;
        ev.seg_wnd = sk->tx_wnd;
    }
    cfg->trace(cfg->cb_ctx, &ev);
}

void tcp_wake(struct tcpsm_sock *sk)
{
    const struct stack_host *cfg = stack_host(sk->st);
    if (!sk->user_ref)
        return;
    unsigned m = tcpsm_sock_poll(sk);
    /* room again after a send or a poll found none (Linux
     * sk_stream_write_space: SOCK_WAKE_SPACE, not after SHUT_WR) */
    if (sk->async_nospace && (m & TCPSM_POLLOUT)) {
        sk->async_nospace = false;
        tcp_chrono_stop(sk, TCP_CHRONO_SNDBUF, sk->st->now);    /* Linux tcp_check_space */
        if (!(sk->shutdown & SEND_SHUTDOWN))
            sk->async_ev |= TCPSM_ASYNC_OUT;
    }
    if (cfg->sock_event)
        cfg->sock_event(cfg->cb_ctx, sk, m);
}

/* Work a segment caused that can wait for the end of the input batch: the
 * frames of one batch arrived together, so one ACK for all the in-order
 * data among them acknowledges it as early as an ACK per second segment
 * would (all of those would leave in the same flush), the way Linux ACKs a
 * GRO super-packet once; and one wake-up per socket and batch spares the
 * woken reader a lock it cannot have until the batch is done. With the
 * list full, the work is done at once. */
void tcp_batch_defer(struct tcpsm_sock *sk, uint8_t work)
{
    struct tcp_stack *ts = TS(sk);
    if ((sk->batch_work & work) == work)
        return;
    if (!sk->batch_work) {
        if (ts->nbatch == TCP_BATCH_MAX) {
            if (work & TCP_BATCH_ACK)
                sk->ack_now = true;
            if (work & TCP_BATCH_WAKE)
                tcp_wake(sk);
            return;
        }
        ts->batch[ts->nbatch++] = sk;
    }
    sk->batch_work |= work;
}

static bool can_ack(const struct tcpsm_sock *sk)
{
    switch (sk->state) {
    case TCPSM_ESTABLISHED:
    case TCPSM_FIN_WAIT_1:
    case TCPSM_FIN_WAIT_2:
    case TCPSM_CLOSE_WAIT:
    case TCPSM_CLOSING:
    case TCPSM_LAST_ACK:
    case TCPSM_TIME_WAIT:
        return true;
    default:
        return false;
    }
}

void tcp_input_batch_end(struct tcpsm_stack *st, uint64_t now)
{
    struct tcp_stack *ts = st->tcp;
    if (!ts)
        return;
    for (unsigned i = 0; i < ts->nbatch; i++) {
        struct tcpsm_sock *sk = ts->batch[i];
        if (!sk)
            continue;
        ts->batch[i] = NULL;
        uint8_t work = sk->batch_work;
        sk->batch_work = 0;
        /* an ACK sent meanwhile (data, a window update) reset delack_segs */
        if ((work & TCP_BATCH_ACK) && sk->delack_segs && can_ack(sk) && !tcp_ack_hold(sk, now))
            tcp_send_ack(sk, now);
        if (work & TCP_BATCH_WAKE)
            tcp_wake(sk);
    }
    ts->nbatch = 0;
}

/* A quick ACK for one short segment (a request, a command) received by an
 * application thread that is about to run the application (the runtime's
 * input for a thread inside a socket call, tcpsm_stack_input_hold): the
 * reply it is likely to send at once carries the ACK, as a delayed ACK
 * would let it (RFC 1122 4.2.3.2), without the 40 ms wait a lone request
 * could suffer behind a sender's Nagle. Held until the runtime releases
 * it (the thread is back in the stack to wait: tcpsm_stack_release_acks)
 * or the delayed-ACK timer fires (40 ms); a segment
 * sent meanwhile with the ACK ends it. Saves a frame per request on both
 * sides of a request/response exchange. Bulk data (full segments, two or
 * more unacknowledged) is never held. */
static bool ack_hold(struct tcpsm_sock *sk, uint64_t now, bool single)
{
    struct tcp_stack *ts = TS(sk);
    if (!sk->ack_held) {
        if (ts->nheld == TCP_HELD_MAX)
            return false;
        ts->held[ts->nheld++] = sk;
        sk->ack_held = true;
        sk->ack_held_at = now;
        sk->ack_single = single;
        sk->st->cnt.tcp_acks_held++;
    } else {
        sk->ack_single = sk->ack_single && single;
    }
    tcp_delack_schedule(sk, now);
    return true;
}

bool tcp_ack_hold(struct tcpsm_sock *sk, uint64_t now)
{
    if (!TS(sk)->hold_acks || sk->ack_now)
        return false;
    if (sk->ack_held && sk->rcv_fin)
        return true;                    /* the FIN's ACK, held with its data (tcp_fin_ack_hold) */
    if (!sk->ack_short || sk->delack_segs != 1)
        return false;
    return ack_hold(sk, now, true);
}

/* A FIN that ends ESTABLISHED (the peer closed first): the application,
 * told of the end of the stream, usually closes at once, and its FIN
 * carries the ACK, as Linux delays this ACK (tcp_fin enters pingpong
 * mode). The data that came with it is acknowledged by the same segment
 * when it is less than two full-sized segments (RFC 1122 4.2.3.2 asks an
 * ACK for every second full-sized one; the peer has sent all it will, so
 * no congestion window waits on this ACK): a response and its FIN cost
 * the client one frame, its own FIN+ACK. Nothing out of order owed. */
bool tcp_fin_ack_hold(struct tcpsm_sock *sk, uint64_t now)
{
    uint32_t mss = sk->rcv_mss ? sk->rcv_mss : 536;
    uint32_t owed = sk->rcv_nxt - 1 - sk->last_ack_sent;        /* data bytes, not the FIN */
    if (!TS(sk)->hold_acks || sk->dupack_now || owed >= 2 * mss)
        return false;
    return ack_hold(sk, now, false);
}

/* The ACK that completes our active open, when the SYN+ACK came in through
 * an application thread about to return from its connect or wait: as Linux
 * holds it while a write is pending (tcp_rcv_synsent_state_process, "Save
 * one ACK. Data will be ready after several ticks"), the request the
 * application writes next carries it (RFC 9293 3.5: the handshake completes
 * on any segment with the ACK). A client that writes nothing first has it
 * sent when it next waits, by the receive thread, or at the delayed-ACK
 * timer, well inside the peer's SYN+ACK retransmission timeout (1 s). */
bool tcp_syn_ack_hold(struct tcpsm_sock *sk, uint64_t now)
{
    if (!TS(sk)->hold_acks)
        return false;
    sk->delack_segs = 1;                /* owed: tcp_release_acks sends it */
    if (ack_hold(sk, now, false)) {
        sk->st->cnt.tcp_synack_acks_held++;
        return true;
    }
    return false;
}

void tcp_hold_acks(struct tcpsm_stack *st, bool on)
{
    if (st->tcp)
        st->tcp->hold_acks = on;
}

bool tcp_acks_held(const struct tcpsm_stack *st)
{
    return st->tcp && st->tcp->nheld;
}

/* A reply held (TCPSM_MSG_HOLD, tcpsm_sock_sendf) goes now, with what
 * the application added since (its FIN): what the windows allow. */
void tcp_out_release(struct tcpsm_sock *sk, uint64_t now)
{
    if (!sk->out_held)
        return;
    sk->out_held = false;
    if (tcp_synchronized(sk->state))
        tcp_output(sk, now);
}

unsigned tcp_release_output(struct tcpsm_stack *st, uint64_t now)
{
    struct tcp_stack *ts = st->tcp;
    unsigned n = 0;
    if (!ts)
        return 0;
    st->now = now;
    /* a reply held is on the held list (reply_hold wants ack_held); the
     * list is bounded (TCP_HELD_MAX) and walked only by a thread that held
     * one, so no count of them is kept beside the TCBs' out_held */
    for (unsigned i = 0; i < ts->nheld; i++) {
        struct tcpsm_sock *sk = ts->held[i];
        if (sk && sk->out_held) {
            tcp_out_release(sk, now);
            n++;
        }
    }
    return n;
}

unsigned tcp_release_acks(struct tcpsm_stack *st, uint64_t now, uint64_t held_before)
{
    struct tcp_stack *ts = st->tcp;
    unsigned sent = 0, kept = 0;
    if (!ts)
        return 0;
    for (unsigned i = 0; i < ts->nheld; i++) {
        struct tcpsm_sock *sk = ts->held[i];
        if (!sk)
            continue;
        ts->held[i] = NULL;
        if (sk->ack_held_at > held_before && !sk->out_held) {
            ts->held[kept++] = sk;      /* younger: its reply may still come */
            continue;
        }
        tcp_out_release(sk, now);       /* a reply held: it carries the ACK */
        /* a segment sent meanwhile carried it (delack_segs reset,
         * last_ack_sent moved up) */
        bool owed = sk->delack_segs || sk->last_ack_sent != sk->rcv_nxt;
        /* Held over the grace for one short segment with nothing else
         * unacknowledged: the peer has one segment in flight, for which it
         * allows a delayed ACK (its probe timeout adds the worst-case
         * delayed ACK, 200 ms: RFC 8985 7.2, Linux tcp_schedule_loss_probe),
         * so an event loop still working through a burst of requests
         * answers this one with its reply; the full release (the thread
         * sleeps, the receive thread takes the link) or the delayed-ACK
         * timer (tcp_ack_hold) sends it otherwise. */
        if (owed && sk->ack_single && held_before != UINT64_MAX && sk->delack_segs == 1) {
            ts->held[kept++] = sk;
            continue;
        }
        sk->ack_held = false;
        if (owed && can_ack(sk)) {
            tcp_send_ack(sk, now);
            sent++;
        }
    }
    ts->nheld = kept;
    return sent;
}

void tcp_wake_listener(struct tcpsm_sock *l)
{
    l->async_ev |= TCPSM_ASYNC_IN;      /* sock_def_readable on the listener */
    tcp_wake(l);
}

/* Nothing more will be sent; unread data stays readable for its owner. */
void tcp_release_buffers(struct tcpsm_sock *sk)
{
    tcp_ring_release(sk, &sk->sndq);    /* flushes frames that point into it */
    if (!sk->user_ref || sk->rcvq.len == 0)
        tcp_ring_release(sk, &sk->rcvq);
    tcp_ofo_purge(sk);
    tcp_rtxq_free(sk);
}

/* Free a TCB that reached CLOSED and that nobody references any more. */
void tcp_maybe_free(struct tcpsm_sock *sk)
{
    if (sk->state == TCPSM_CLOSED && !sk->user_ref)
        tcp_sock_free(sk);
}

/* The connection is over (RST, timeout, abort): CLOSED with an error
 * (Linux tcp_done). The application's socket stays until close(). */
void tcp_done(struct tcpsm_sock *sk, int err, const char *why, const struct tcp_seg *in)
{
    if (err) {
        sk->err = err;
        sk->async_ev |= TCPSM_ASYNC_ERR;        /* Linux sk_error_report */
    }
    sk->shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN;
    sk->done = true;
    bool rst_out = sk->tx_rst;
    sk->tx_rst = false;
    tcp_set_state(sk, TCPSM_CLOSED, why, in, !in && rst_out);
    sk->rto_at = sk->persist_at = sk->dack_at = sk->ka_at = sk->state_at = sk->cork_at = 0;
    sk->tlp_at = sk->rack.reo_at = 0;
    timer_cancel(&sk->st->timers, &sk->timer);
    tcp_ehash_del(sk);
    if (!sk->user_bound)
        tcp_bind_del(sk);
    tcp_release_buffers(sk);
    if (sk->parent) {
        /* an unaccepted child: nobody will ever see it */
        tcp_unlink_child(sk);
        sk->user_ref = false;
    }
    tcp_wake(sk);
    tcp_maybe_free(sk);
}

/* A reflexive ACK (to an out-of-window segment, a PAWS failure, a
 * challenge) at most once per 500 ms per connection: two ends out of sync
 * cannot ping-pong, and a blind attacker cannot make us a reflector (Linux
 * tcp_oow_rate_limited). Counted when skipped. */
bool tcp_oow_rate_limited(struct tcpsm_sock *sk, uint64_t now)
{
    if (sk->oow_ack_at && now - sk->oow_ack_at < TCP_OOW_ACK_NS) {
        sk->st->cnt.tcp_ack_skipped++;
        return true;
    }
    sk->oow_ack_at = now ? now : 1;
    return false;
}

/* RFC 5961 7: challenge ACKs are limited per connection (above) and
 * stack-wide. The stack-wide budget is drawn at random each second in
 * [limit/2, 3*limit/2) so that its exhaustion reveals nothing an off-path
 * attacker can count (CVE-2016-5696; Linux tcp_send_challenge_ack). The
 * randomness is a keyed hash of the second: no clock or RNG in the core. */
bool tcp_challenge_ok(struct tcpsm_sock *sk, uint64_t now)
{
    struct tcp_stack *ts = TS(sk);
    if (tcp_oow_rate_limited(sk, now))
        return false;
    uint64_t sec = now / SEC_NS;
    if (sec + 1 != ts->chal_sec) {       /* chal_sec holds sec + 1: 0 = never drawn */
        uint32_t half = (TCP_CHALLENGE_PER_S + 1) / 2;
        struct tcpsm_addr lo = addr_from_v4((uint32_t)sec), hi = addr_from_v4((uint32_t)(sec >> 32));
        uint32_t r = (uint32_t)tuple_hash(ts->st, &lo, 0, &hi, 0, 4);
        ts->chal_sec = sec + 1;
        ts->chal_left = half + r % TCP_CHALLENGE_PER_S;
    }
    if (!ts->chal_left) {
        ts->st->cnt.tcp_ack_skipped++;
        return false;
    }
    ts->chal_left--;
    ts->st->cnt.tcp_challenge_ack++;
    return true;
}

/* ---------------------------------------------------------------- SYN cookies */

/* RFC 4987 3.6, with Linux's construction (net/ipv4/syncookies.c):
 *   cookie = H0(4-tuple) + peer ISN + (count << 24)
 *          + ((H1(4-tuple, count) + data) mod 2^24)
 * count ticks once a minute; data is the MSS table index. The keyed
 * hashes are SipHash with the stack's secret, as Linux's. */
static uint32_t cookie_hash(struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                            const struct tcpsm_addr *ra, uint16_t rp, uint32_t count, uint32_t c)
{
    return (uint32_t)tuple_hash(ts->st, la, lp, ra, rp, ((uint64_t)count << 8) | (5 + c));
}

uint32_t tcp_cookie_make(struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                         const struct tcpsm_addr *ra, uint16_t rp,
                         uint32_t peer_isn, uint32_t data, uint64_t now)
{
    uint32_t count = (uint32_t)(now / TCP_COOKIE_PERIOD_NS);
    uint32_t mask = (1u << TCP_COOKIE_BITS) - 1;
    return cookie_hash(ts, la, lp, ra, rp, 0, 0) + peer_isn + (count << TCP_COOKIE_BITS) +
           ((cookie_hash(ts, la, lp, ra, rp, count, 1) + data) & mask);
}

/* Returns the data (>= 0) of a valid cookie younger than
 * TCP_COOKIE_MAX_AGE ticks, -1 otherwise. */
int tcp_cookie_check(struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                     const struct tcpsm_addr *ra, uint16_t rp,
                     uint32_t peer_isn, uint32_t cookie, uint64_t now)
{
    uint32_t count = (uint32_t)(now / TCP_COOKIE_PERIOD_NS);
    uint32_t mask = (1u << TCP_COOKIE_BITS) - 1;
    cookie -= cookie_hash(ts, la, lp, ra, rp, 0, 0) + peer_isn;
    uint32_t diff = (count - (cookie >> TCP_COOKIE_BITS)) & (UINT32_MAX >> TCP_COOKIE_BITS);
    if (diff >= TCP_COOKIE_MAX_AGE)
        return -1;
    return (int)((cookie - cookie_hash(ts, la, lp, ra, rp, count - diff, 1)) & mask);
}

/* One SYN more in these figures; the rate is the count of the last whole
 * second. */
void tcp_syn_count(struct tcp_syn_stats *s, uint64_t now)
{
    uint64_t sec = now / SEC_NS + 1;
    if (sec != s->sec) {
        s->last_sec = sec == s->sec + 1 ? s->this_sec : 0;
        s->this_sec = 0;
        s->sec = sec;
    }
    s->syns++;
    s->this_sec++;
}

void tcp_conn_timer_fire(void *ctx, struct tcpsm_timer *t, uint64_t now)
{
    (void)ctx;
    struct tcpsm_sock *sk = (struct tcpsm_sock *)((char *)t - offsetof(struct tcpsm_sock, timer));
    tcp_timer_fire(sk, now);
}
