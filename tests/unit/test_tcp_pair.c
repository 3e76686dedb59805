/* Two stacks over the in-memory link (netdev_mem.h) on a virtual clock:
 * handshake, bulk transfer both ways with a byte-exact check and a 64-bit
 * FNV-1a hash of each stream, both close orders, simultaneous open and
 * close, TIME-WAIT expiry, then the same transfer through seeded loss,
 * reordering, duplication, delay with jitter and corruption. No timing is
 * asserted: only what arrives, in order, once. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netdev_mem.h"
#include "tcpsm/core.h"

#define A_ADDR 0xC6120001u      /* 198.18.0.1 */
#define B_ADDR 0xC6120002u      /* 198.18.0.2 */
#define SRV_PORT 5001
/* 2001:2::1 and 2001:2::2 (RFC 5180 benchmarking prefix) */
static const struct tcpsm_addr A6 = { { 0x20, 0x01, 0, 0x02, [15] = 1 } };
static const struct tcpsm_addr B6 = { { 0x20, 0x01, 0, 0x02, [15] = 2 } };
/* The tcp_pair6 tests give both stacks an IPv6 address too. */
static bool pair_dual;
#define P_T0   1000000000ull
#define P_SEC  1000000000ull

struct peer {
    struct tcpsm_stack *st;
    struct tcpsm_sock *lsk, *sk;
    uint32_t seed;              /* of the stream this side sends */
    uint32_t rseed;             /* of the stream it receives */
    uint64_t tx_total, tx_done;
    uint8_t chunk[16384];       /* the next bytes to send, from offset chunk_off */
    uint64_t chunk_off;
    size_t chunk_len;
    bool tx_shut;
    uint64_t rx_done, rx_hash, rx_first_bad;
    bool rx_eof;
    int err;
    /* slow reader: at most read_chunk bytes every read_every ns (0 = greedy) */
    size_t read_chunk;
    uint64_t read_every, next_read;
    size_t max_queued;          /* most bytes seen waiting to be read */
};

struct pair {
    struct memlink *l;
    struct peer p[2];
    uint64_t now;
    /* Who may shut down its sending side once all is sent:
     * 0 = A first, 1 = B first, 2 = both independently. */
    int close_first;
    /* for state_reached(): side and state to wait for */
    int wait_side, wait_state;
};

/* Byte at offset off of the stream with this seed: position-addressable,
 * so the receiver checks every byte without a copy of the stream. */
static uint8_t stream_byte(uint32_t seed, uint64_t off)
{
    uint64_t z = (off >> 3) * 0x9e3779b97f4a7c15ull + seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint8_t)(z >> ((off & 7) * 8));
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t stream_hash(uint32_t seed, uint64_t len)
{
    uint64_t h = FNV_INIT;
    uint8_t b[4096];
    for (uint64_t off = 0; off < len;) {
        size_t n = len - off < sizeof b ? (size_t)(len - off) : sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = stream_byte(seed, off + i);
        h = fnv1a(h, b, n);
        off += n;
    }
    return h;
}

static void peer_pump(struct pair *pr, int i)
{
    struct peer *p = &pr->p[i];
    if (!p->sk && p->lsk) {
        struct tcpsm_sock *c;
        if (tcpsm_sock_accept(p->lsk, &c) == 0)
            p->sk = c;
    }
    if (!p->sk || p->err)
        return;
    int st = tcpsm_sock_state(p->sk);
    if (st == TCPSM_SYN_SENT || st == TCPSM_SYN_RECEIVED)
        return;
    static uint8_t buf[65536];
    while (p->tx_done < p->tx_total) {
        if (p->tx_done >= p->chunk_off + p->chunk_len) {
            p->chunk_off = p->tx_done;
            p->chunk_len = p->tx_total - p->tx_done < sizeof p->chunk
                               ? (size_t)(p->tx_total - p->tx_done) : sizeof p->chunk;
            for (size_t k = 0; k < p->chunk_len; k++)
                p->chunk[k] = stream_byte(p->seed, p->chunk_off + k);
        }
        size_t at = (size_t)(p->tx_done - p->chunk_off), n = p->chunk_len - at;
        ssize_t r = tcpsm_sock_send(p->sk, p->chunk + at, n, pr->now);
        if (r == -EAGAIN)
            break;
        if (r <= 0) {
            p->err = (int)-r;
            return;
        }
        p->tx_done += (uint64_t)r;
    }
    size_t q = tcpsm_sock_rxavail(p->sk);
    if (q > p->max_queued)
        p->max_queued = q;
    for (;;) {
        size_t want = sizeof buf;
        if (p->read_chunk) {
            if (pr->now < p->next_read)
                break;
            p->next_read = pr->now + p->read_every;
            want = p->read_chunk;
        }
        ssize_t r = tcpsm_sock_recv(p->sk, buf, want, 0, pr->now);
        if (r == -EAGAIN)
            break;
        if (r == 0) {
            p->rx_eof = true;
            break;
        }
        if (r < 0) {
            p->err = (int)-r;
            return;
        }
        for (ssize_t k = 0; k < r; k++)
            if (!p->rx_first_bad && buf[k] != stream_byte(p->rseed, p->rx_done + (uint64_t)k))
                p->rx_first_bad = p->rx_done + (uint64_t)k + 1;
        p->rx_hash = fnv1a(p->rx_hash, buf, (size_t)r);
        p->rx_done += (uint64_t)r;
        if (p->read_chunk)
            break;
    }
    /* The second closer closes once it has seen the first one's FIN. */
    bool my_turn = pr->close_first == 2 || pr->close_first == i || p->rx_eof;
    if (!p->tx_shut && p->tx_done == p->tx_total && my_turn) {
        cr_assert_eq(tcpsm_sock_shutdown(p->sk, 1, pr->now), 0);
        p->tx_shut = true;
    }
}

static bool pump(void *arg)
{
    struct pair *pr = arg;
    peer_pump(pr, 0);
    peer_pump(pr, 1);
    cr_assert_eq(pr->p[0].err, 0, "A: error %d", pr->p[0].err);
    cr_assert_eq(pr->p[1].err, 0, "B: error %d", pr->p[1].err);
    return pr->p[0].rx_eof && pr->p[1].rx_eof && pr->p[0].tx_shut && pr->p[1].tx_shut;
}

static struct tcpsm_stack *mkstack(struct tcpsm_netdev *dev, uint32_t addr, uint8_t macl,
                                   uint64_t now)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = addr;
    c.prefix_len = 24;
    memcpy(c.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 0, macl }, 6);
    c.secret[0] = 0x1111u * macl;
    c.secret[1] = 0x2222u * macl;
    c.msl_ms = 1000;
    if (pair_dual) {
        memcpy(c.addr6, addr == A_ADDR ? A6.b : B6.b, 16);
        c.prefix6_len = 64;
    }
    struct tcpsm_stack *st = tcpsm_stack_new(&c, dev, now);
    cr_assert_not_null(st);
    return st;
}

static struct pair *pair_new(const struct memlink_params *lp, uint64_t seed)
{
    struct pair *pr = calloc(1, sizeof *pr);
    cr_assert_not_null(pr);
    struct memlink_params def = { 0 };
    pr->l = memlink_new(lp ? lp : &def, seed);
    cr_assert_not_null(pr->l);
    pr->now = P_T0;
    memlink_set_now(pr->l, pr->now);
    pr->p[0].st = mkstack(memlink_dev(pr->l, 0), A_ADDR, 1, pr->now);
    pr->p[1].st = mkstack(memlink_dev(pr->l, 1), B_ADDR, 2, pr->now);
    pr->p[0].seed = pr->p[1].rseed = 0xA11CE;
    pr->p[1].seed = pr->p[0].rseed = 0xB0B;
    pr->p[0].rx_hash = pr->p[1].rx_hash = FNV_INIT;
    return pr;
}

static void pair_free(struct pair *pr)
{
    tcpsm_stack_free(pr->p[0].st);
    tcpsm_stack_free(pr->p[1].st);
    memlink_free(pr->l);
    free(pr);
}

static bool run_until(struct pair *pr, uint64_t limit, bool (*done)(void *))
{
    uint64_t end = pr->now + limit;
    while (pr->now < end) {
        if (memlink_run(pr->l, pr->p[0].st, pr->p[1].st, &pr->now, end, done, pr))
            return true;
    }
    return done(pr);
}

/* B listens, A connects. */
static void pair_connect(struct pair *pr)
{
    struct peer *a = &pr->p[0], *b = &pr->p[1];
    cr_assert_eq(tcpsm_sock_new(b->st, &b->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(b->lsk, 0, SRV_PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(b->lsk, 16), 0);
    cr_assert_eq(tcpsm_sock_new(a->st, &a->sk), 0);
    memlink_set_now(pr->l, pr->now);
    cr_assert_eq(tcpsm_sock_connect(a->sk, B_ADDR, SRV_PORT, pr->now), -EINPROGRESS);
}

static bool established(void *arg)
{
    struct pair *pr = arg;
    peer_pump(pr, 1);
    return pr->p[1].sk && tcpsm_sock_state(pr->p[0].sk) == TCPSM_ESTABLISHED &&
           tcpsm_sock_state(pr->p[1].sk) == TCPSM_ESTABLISHED;
}

static bool state_reached(void *arg)
{
    struct pair *pr = arg;
    return tcpsm_sock_state(pr->p[pr->wait_side].sk) == pr->wait_state;
}

static void wait_state(struct pair *pr, int side, int state)
{
    pr->wait_side = side;
    pr->wait_state = state;
    cr_assert(run_until(pr, 60 * P_SEC, state_reached), "%c in %s, want %s", "AB"[side],
              tcpsm_state_name(tcpsm_sock_state(pr->p[side].sk)), tcpsm_state_name(state));
}

static bool all_closed(void *arg)
{
    struct pair *pr = arg;
    return tcpsm_stack_nsocks(pr->p[0].st) == 0 && tcpsm_stack_nsocks(pr->p[1].st) == 0;
}

/* Transfer a->b and b->a, then close in the given order; checks every byte. */
static void transfer(struct pair *pr, uint64_t a_bytes, uint64_t b_bytes, int close_first,
                     uint64_t limit)
{
    pr->p[0].tx_total = a_bytes;
    pr->p[1].tx_total = b_bytes;
    pr->close_first = close_first;
    bool ok = run_until(pr, limit, pump);
    struct peer *a = &pr->p[0], *b = &pr->p[1];
    cr_assert(ok, "transfer did not finish: A sent %llu/%llu got %llu eof %d, B sent %llu/%llu "
              "got %llu eof %d", (unsigned long long)a->tx_done, (unsigned long long)a_bytes,
              (unsigned long long)a->rx_done, a->rx_eof, (unsigned long long)b->tx_done,
              (unsigned long long)b_bytes, (unsigned long long)b->rx_done, b->rx_eof);
    cr_assert_eq(b->rx_first_bad, 0, "A->B stream differs at byte %llu",
                 (unsigned long long)b->rx_first_bad - 1);
    cr_assert_eq(a->rx_first_bad, 0, "B->A stream differs at byte %llu",
                 (unsigned long long)a->rx_first_bad - 1);
    cr_assert_eq(b->rx_done, a_bytes, "B received %llu of %llu bytes",
                 (unsigned long long)b->rx_done, (unsigned long long)a_bytes);
    cr_assert_eq(a->rx_done, b_bytes, "A received %llu of %llu bytes",
                 (unsigned long long)a->rx_done, (unsigned long long)b_bytes);
    cr_assert_eq(b->rx_hash, stream_hash(a->seed, a_bytes));
    cr_assert_eq(a->rx_hash, stream_hash(b->seed, b_bytes));
}

/* Close the handles and the listener; run until TIME-WAIT is over. */
static void finish(struct pair *pr)
{
    tcpsm_sock_close(pr->p[0].sk, pr->now);
    tcpsm_sock_close(pr->p[1].sk, pr->now);
    if (pr->p[1].lsk)
        tcpsm_sock_close(pr->p[1].lsk, pr->now);
    pr->p[0].sk = pr->p[1].sk = pr->p[1].lsk = NULL;
    cr_assert(run_until(pr, 600 * P_SEC, all_closed), "sockets left: A %zu, B %zu",
              tcpsm_stack_nsocks(pr->p[0].st), tcpsm_stack_nsocks(pr->p[1].st));
}

/* The bulk transfer of the clean tests, through impairments; checks that the
 * link really impaired it (the test could not pass vacuously). */
static void bulk(const struct memlink_params *lp, uint64_t seed)
{
    struct pair *pr = pair_new(lp, seed);
    pair_connect(pr);
    cr_assert(run_until(pr, 600 * P_SEC, established), "no connection");
    transfer(pr, 4u << 20, 3u << 20, 0, 7200 * P_SEC);
    finish(pr);
    const struct memlink_stats *ab = memlink_stats(pr->l, 0), *ba = memlink_stats(pr->l, 1);
    if (lp->loss_pct > 0) {
        cr_assert(ab->lost > 0 && ba->lost > 0);
        cr_assert(tcpsm_stack_counters(pr->p[0].st)->tcp_retrans > 0);
        cr_assert(tcpsm_stack_counters(pr->p[1].st)->tcp_retrans > 0);
    }
    if (lp->dup_pct > 0)
        cr_assert(ab->duplicated > 0 && ba->duplicated > 0);
    if (lp->reorder_pct > 0)
        cr_assert(ab->reordered > 0 && ba->reordered > 0);
    if (lp->corrupt_pct > 0)
        cr_assert(ab->corrupted > 0 && ba->corrupted > 0);
    pair_free(pr);
}

Test(tcp_pair, handshake)
{
    struct pair *pr = pair_new(NULL, 1);
    pair_connect(pr);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    uint32_t addr;
    uint16_t port;
    cr_assert_eq(tcpsm_sock_peer(pr->p[1].sk, &addr, &port), 0);
    cr_assert_eq(addr, A_ADDR);
    uint16_t aport;
    tcpsm_sock_name(pr->p[0].sk, &addr, &aport);
    cr_assert_eq(addr, A_ADDR);
    cr_assert_eq(port, aport);
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[0].st), 1);
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[1].st), 2);
    pair_free(pr);
}

Test(tcp_pair, transfer_both_ways_a_closes_first)
{
    struct pair *pr = pair_new(NULL, 2);
    pair_connect(pr);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    transfer(pr, 4u << 20, 3u << 20, 0, 600 * P_SEC);
    /* A closed first: A waits in TIME-WAIT, B goes through LAST-ACK to CLOSED. */
    wait_state(pr, 1, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_state(pr->p[0].sk), TCPSM_TIME_WAIT, "A in %s",
                 tcpsm_state_name(tcpsm_sock_state(pr->p[0].sk)));
    cr_assert_eq(tcpsm_sock_error(pr->p[1].sk), 0);
    finish(pr);
    pair_free(pr);
}

Test(tcp_pair, transfer_both_ways_b_closes_first)
{
    struct pair *pr = pair_new(NULL, 3);
    pair_connect(pr);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    transfer(pr, 3u << 20, 4u << 20, 1, 600 * P_SEC);
    wait_state(pr, 0, TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_state(pr->p[1].sk), TCPSM_TIME_WAIT, "B in %s",
                 tcpsm_state_name(tcpsm_sock_state(pr->p[1].sk)));
    cr_assert_eq(tcpsm_sock_error(pr->p[0].sk), 0);
    finish(pr);
    pair_free(pr);
}

Test(tcp_pair, time_wait_expiry)
{
    struct pair *pr = pair_new(NULL, 4);
    pair_connect(pr);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    transfer(pr, 1000, 1000, 0, 60 * P_SEC);
    tcpsm_sock_close(pr->p[0].sk, pr->now);
    tcpsm_sock_close(pr->p[1].sk, pr->now);
    pr->p[0].sk = pr->p[1].sk = NULL;
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[0].st), 1, "A's TIME-WAIT TCB is gone early");
    /* msl_ms = 1000: TIME-WAIT lasts 2 s of virtual time. */
    cr_assert(run_until(pr, 3 * P_SEC, all_closed) || tcpsm_stack_nsocks(pr->p[0].st) == 0);
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[0].st), 0);
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[1].st), 1);     /* the listener */
    tcpsm_sock_close(pr->p[1].lsk, pr->now);
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[1].st), 0);
    pair_free(pr);
}

static bool both_time_wait(void *arg)
{
    struct pair *pr = arg;
    return tcpsm_sock_state(pr->p[0].sk) == TCPSM_TIME_WAIT &&
           tcpsm_sock_state(pr->p[1].sk) == TCPSM_TIME_WAIT;
}

Test(tcp_pair, simultaneous_close)
{
    struct pair *pr = pair_new(NULL, 5);
    pair_connect(pr);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    /* Both FINs leave before either arrives: FIN-WAIT-1 -> CLOSING -> TIME-WAIT on both. */
    cr_assert_eq(tcpsm_sock_shutdown(pr->p[0].sk, 1, pr->now), 0);
    cr_assert_eq(tcpsm_sock_shutdown(pr->p[1].sk, 1, pr->now), 0);
    cr_assert_eq(tcpsm_sock_state(pr->p[0].sk), TCPSM_FIN_WAIT_1);
    cr_assert_eq(tcpsm_sock_state(pr->p[1].sk), TCPSM_FIN_WAIT_1);
    cr_assert(run_until(pr, 10 * P_SEC, both_time_wait), "A in %s, B in %s",
              tcpsm_state_name(tcpsm_sock_state(pr->p[0].sk)),
              tcpsm_state_name(tcpsm_sock_state(pr->p[1].sk)));
    char b[4];
    cr_assert_eq(tcpsm_sock_recv(pr->p[0].sk, b, sizeof b, 0, pr->now), 0);
    cr_assert_eq(tcpsm_sock_recv(pr->p[1].sk, b, sizeof b, 0, pr->now), 0);
    finish(pr);
    pair_free(pr);
}

Test(tcp_pair, simultaneous_open)
{
    struct pair *pr = pair_new(NULL, 6);
    struct peer *a = &pr->p[0], *b = &pr->p[1];
    cr_assert_eq(tcpsm_sock_new(a->st, &a->sk), 0);
    cr_assert_eq(tcpsm_sock_new(b->st, &b->sk), 0);
    cr_assert_eq(tcpsm_sock_bind(a->sk, 0, 7001), 0);
    cr_assert_eq(tcpsm_sock_bind(b->sk, 0, 7002), 0);
    /* Both SYNs are in flight before either arrives. */
    cr_assert_eq(tcpsm_sock_connect(a->sk, B_ADDR, 7002, pr->now), -EINPROGRESS);
    cr_assert_eq(tcpsm_sock_connect(b->sk, A_ADDR, 7001, pr->now), -EINPROGRESS);
    cr_assert(run_until(pr, 60 * P_SEC, established), "A in %s, B in %s",
              tcpsm_state_name(tcpsm_sock_state(a->sk)), tcpsm_state_name(tcpsm_sock_state(b->sk)));
    cr_assert_eq(tcpsm_sock_error(a->sk), 0);
    cr_assert_eq(tcpsm_sock_error(b->sk), 0);
    cr_assert_eq(tcpsm_stack_nsocks(a->st), 1);
    cr_assert_eq(tcpsm_stack_nsocks(b->st), 1);
    transfer(pr, 200000, 300000, 2, 600 * P_SEC);
    finish(pr);
    pair_free(pr);
}

Test(tcp_pair, refused)
{
    struct pair *pr = pair_new(NULL, 7);
    struct peer *a = &pr->p[0];
    cr_assert_eq(tcpsm_sock_new(a->st, &a->sk), 0);
    cr_assert_eq(tcpsm_sock_connect(a->sk, B_ADDR, 9, pr->now), -EINPROGRESS);
    run_until(pr, 5 * P_SEC, all_closed);
    cr_assert_eq(tcpsm_sock_state(a->sk), TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(a->sk), ECONNREFUSED);
    pair_free(pr);
}

/* The same transfer through impairments: every byte in order, once. */

Test(tcp_pair, loss_1pct)
{
    bulk(&(struct memlink_params){ .loss_pct = 1, .delay_ns = 1000000 }, 11);
}

Test(tcp_pair, loss_5pct)
{
    bulk(&(struct memlink_params){ .loss_pct = 5, .delay_ns = 1000000 }, 12);
}

Test(tcp_pair, loss_20pct)
{
    bulk(&(struct memlink_params){ .loss_pct = 20, .delay_ns = 1000000 }, 13);
}

Test(tcp_pair, reordering)
{
    bulk(&(struct memlink_params){ .reorder_pct = 10, .delay_ns = 2000000 }, 14);
}

Test(tcp_pair, duplication)
{
    bulk(&(struct memlink_params){ .dup_pct = 10, .delay_ns = 1000000 }, 15);
}

Test(tcp_pair, delay_jitter)
{
    bulk(&(struct memlink_params){ .delay_ns = 20000000, .jitter_ns = 10000000 }, 16);
}

Test(tcp_pair, corruption)
{
    bulk(&(struct memlink_params){ .corrupt_pct = 5, .delay_ns = 1000000 }, 17);
}

Test(tcp_pair, everything_at_once)
{
    bulk(&(struct memlink_params){ .loss_pct = 3, .dup_pct = 3, .reorder_pct = 3,
                                   .corrupt_pct = 1, .delay_ns = 5000000, .jitter_ns = 2000000,
                                   .bandwidth_bps = 100000000 }, 18);
}

/* Thirty seeded mixes of every impairment, both directions, every close
 * order: each stream arrives whole, in order, once. */
static uint64_t mix_rng;
static double mix(double max)
{
    mix_rng ^= mix_rng << 13;
    mix_rng ^= mix_rng >> 7;
    mix_rng ^= mix_rng << 17;
    return (double)(mix_rng % 1000000) / 1000000.0 * max;
}

Test(tcp_pair, mixed_impairments_30_seeds)
{
    for (uint64_t seed = 1; seed <= 30; seed++) {
        mix_rng = 88172645463325252ull + seed * 7919;
        struct memlink_params lp = {
            .loss_pct = mix(10), .dup_pct = mix(10), .reorder_pct = mix(20),
            .corrupt_pct = mix(5), .delay_ns = (uint64_t)mix(20e6), .jitter_ns = (uint64_t)mix(10e6),
            .bandwidth_bps = mix(1) < 0.5 ? 0 : (uint64_t)(1e6 + mix(1e9)),
        };
        struct pair *pr = pair_new(&lp, seed);
        pair_connect(pr);
        cr_assert(run_until(pr, 3600 * P_SEC, established), "seed %llu: no connection",
                  (unsigned long long)seed);
        transfer(pr, 100000 + (uint64_t)mix(300000), 100000 + (uint64_t)mix(300000),
                 (int)mix(3), 36000 * P_SEC);
        finish(pr);
        pair_free(pr);
    }
}

/* Fifty connections at once through one listener, each carrying its own
 * stream both ways under loss and reordering; all complete and close. */
enum { NCONN = 50, CBYTES = 50000 };
struct multi {
    struct pair *pr;
    struct tcpsm_sock *c[NCONN];       /* A's clients */
    struct tcpsm_sock *s[NCONN];       /* B's accepted, by client port order */
    uint16_t cport[NCONN];
    uint64_t ctx[NCONN], crx[NCONN], stx[NCONN], srx[NCONN];
    bool cshut[NCONN], sshut[NCONN], ceof[NCONN], seof[NCONN];
    unsigned bad;
};

static int multi_idx(struct multi *m, struct tcpsm_sock *sk)
{
    uint32_t a;
    uint16_t p;
    if (tcpsm_sock_peer(sk, &a, &p) < 0)
        return -1;
    for (int i = 0; i < NCONN; i++)
        if (m->cport[i] == p)
            return i;
    return -1;
}

/* Stream i: byte k is (i * 131 + k * 7) & 0xff, a different one each way. */
static void multi_io(struct multi *m, struct tcpsm_sock *sk, int i, uint64_t *tx, uint64_t *rx,
                     bool *shut, bool *eof, int dir, uint64_t now)
{
    uint8_t buf[8192];
    while (*tx < CBYTES) {
        size_t n = CBYTES - *tx < sizeof buf ? (size_t)(CBYTES - *tx) : sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)(i * 131 + (*tx + k) * 7 + dir);
        ssize_t r = tcpsm_sock_send(sk, buf, n, now);
        if (r <= 0)
            break;
        *tx += (uint64_t)r;
    }
    if (*tx == CBYTES && !*shut) {
        tcpsm_sock_shutdown(sk, 1, now);
        *shut = true;
    }
    for (;;) {
        ssize_t r = tcpsm_sock_recv(sk, buf, sizeof buf, 0, now);
        if (r == 0)
            *eof = true;
        if (r <= 0)
            break;
        for (ssize_t k = 0; k < r; k++)
            if (buf[k] != (uint8_t)(i * 131 + (*rx + (uint64_t)k) * 7 + (1 - dir)))
                m->bad++;
        *rx += (uint64_t)r;
    }
}

static bool multi_pump(void *arg)
{
    struct multi *m = arg;
    struct pair *pr = m->pr;
    struct tcpsm_sock *c;
    while (tcpsm_sock_accept(pr->p[1].lsk, &c) == 0) {
        int i = multi_idx(m, c);
        cr_assert(i >= 0 && !m->s[i], "accepted an unknown or second connection");
        m->s[i] = c;
    }
    bool done = true;
    for (int i = 0; i < NCONN; i++) {
        if (tcpsm_sock_state(m->c[i]) != TCPSM_SYN_SENT)
            multi_io(m, m->c[i], i, &m->ctx[i], &m->crx[i], &m->cshut[i], &m->ceof[i], 0, pr->now);
        if (m->s[i])
            multi_io(m, m->s[i], i, &m->stx[i], &m->srx[i], &m->sshut[i], &m->seof[i], 1,
                     pr->now);
        done = done && m->ceof[i] && m->seof[i] && m->cshut[i] && m->sshut[i];
    }
    return done;
}

Test(tcp_pair, fifty_connections)
{
    static struct multi m;
    memset(&m, 0, sizeof m);
    m.pr = pair_new(&(struct memlink_params){ .loss_pct = 2, .reorder_pct = 5,
                                              .delay_ns = 2000000 }, 21);
    struct pair *pr = m.pr;
    cr_assert_eq(tcpsm_sock_new(pr->p[1].st, &pr->p[1].lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(pr->p[1].lsk, 0, SRV_PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(pr->p[1].lsk, 64), 0);
    for (int i = 0; i < NCONN; i++) {
        cr_assert_eq(tcpsm_sock_new(pr->p[0].st, &m.c[i]), 0);
        cr_assert_eq(tcpsm_sock_connect(m.c[i], B_ADDR, SRV_PORT, pr->now), -EINPROGRESS);
        uint32_t a;
        tcpsm_sock_name(m.c[i], &a, &m.cport[i]);
    }
    uint64_t end = pr->now + 3600 * P_SEC;
    bool ok = false;
    while (!ok && pr->now < end)
        ok = memlink_run(pr->l, pr->p[0].st, pr->p[1].st, &pr->now, end, multi_pump, &m);
    cr_assert(ok || multi_pump(&m), "not all streams completed");
    cr_assert_eq(m.bad, 0, "%u bytes differ", m.bad);
    for (int i = 0; i < NCONN; i++) {
        cr_assert_eq(m.crx[i], CBYTES);
        cr_assert_eq(m.srx[i], CBYTES);
        tcpsm_sock_close(m.c[i], pr->now);
        tcpsm_sock_close(m.s[i], pr->now);
    }
    tcpsm_sock_close(pr->p[1].lsk, pr->now);
    pr->p[1].lsk = NULL;
    cr_assert(run_until(pr, 600 * P_SEC, all_closed), "sockets left: A %zu, B %zu",
              tcpsm_stack_nsocks(pr->p[0].st), tcpsm_stack_nsocks(pr->p[1].st));
    pair_free(pr);
}

/* Slow readers on both sides: receive buffers fill, windows close and open
 * in small steps (zero-window probes, window updates, SWS avoidance on
 * both ends, ACKs taken through a closed window) and still every byte
 * arrives. Time advances in 10 ms steps so the readers get their turns. */
Test(tcp_pair, slow_readers_both_ways)
{
    struct pair *pr = pair_new(&(struct memlink_params){ .delay_ns = 1000000, .loss_pct = 1 }, 31);
    pair_connect(pr);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    for (int i = 0; i < 2; i++) {
        pr->p[i].read_chunk = 3000 + 1000 * (size_t)i;
        pr->p[i].read_every = 1000000;
        pr->p[i].next_read = pr->now;
    }
    pr->p[0].tx_total = 1u << 20;
    pr->p[1].tx_total = 3u << 19;
    pr->close_first = 0;
    uint64_t end = pr->now + 3600 * P_SEC;
    bool ok = false;
    while (!ok && pr->now < end)
        ok = memlink_run(pr->l, pr->p[0].st, pr->p[1].st, &pr->now, pr->now + 10000000, pump, pr);
    cr_assert(ok, "slow transfer did not finish: B got %llu, A got %llu",
              (unsigned long long)pr->p[1].rx_done, (unsigned long long)pr->p[0].rx_done);
    cr_assert_eq(pr->p[1].rx_first_bad, 0);
    cr_assert_eq(pr->p[0].rx_first_bad, 0);
    cr_assert_eq(pr->p[1].rx_done, pr->p[0].tx_total);
    cr_assert_eq(pr->p[0].rx_done, pr->p[1].tx_total);
    cr_assert_eq(pr->p[1].rx_hash, stream_hash(pr->p[0].seed, pr->p[0].tx_total));
    cr_assert_eq(pr->p[0].rx_hash, stream_hash(pr->p[1].seed, pr->p[1].tx_total));
    /* The buffers really filled up (256 KiB default). */
    cr_assert(pr->p[0].max_queued > 200000 && pr->p[1].max_queued > 200000,
              "most queued: A %zu, B %zu", pr->p[0].max_queued, pr->p[1].max_queued);
    finish(pr);
    pair_free(pr);
}

/* ---------------------------------------------------------------- IPv6 */

static bool a6_eq(const struct tcpsm_addr *x, const struct tcpsm_addr *y)
{
    return memcmp(x->b, y->b, 16) == 0;
}

/* B listens on an IPv6 socket bound to :: (v6only as given), A connects to dst. */
static int pair_connect6(struct pair *pr, const struct tcpsm_addr *dst, bool a_ipv6, bool v6only)
{
    struct peer *a = &pr->p[0], *b = &pr->p[1];
    static const struct tcpsm_addr any;
    cr_assert_eq(tcpsm_sock_new(b->st, &b->lsk), 0);
    cr_assert_eq(tcpsm_sock_setopt(b->lsk, TCPSM_OPT_IPV6, 1), 0);
    cr_assert_eq(tcpsm_sock_setopt(b->lsk, TCPSM_OPT_V6ONLY, v6only), 0);
    cr_assert_eq(tcpsm_sock_bind_addr(b->lsk, &any, SRV_PORT), 0);
    cr_assert_eq(tcpsm_sock_listen(b->lsk, 16), 0);
    cr_assert_eq(tcpsm_sock_new(a->st, &a->sk), 0);
    if (a_ipv6)
        cr_assert_eq(tcpsm_sock_setopt(a->sk, TCPSM_OPT_IPV6, 1), 0);
    memlink_set_now(pr->l, pr->now);
    return tcpsm_sock_connect_addr(a->sk, dst, SRV_PORT, pr->now);
}

Test(tcp_pair6, handshake_names_transfer_and_close)
{
    pair_dual = true;
    struct pair *pr = pair_new(NULL, 11);
    /* DAD finishes (optimistic addresses are usable at once, RFC 4429) */
    cr_assert_eq(pair_connect6(pr, &B6, true, false), -EINPROGRESS);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    struct tcpsm_addr a;
    uint16_t port, aport;
    cr_assert_eq(tcpsm_sock_peer_addr(pr->p[1].sk, &a, &port), 0);
    cr_assert(a6_eq(&a, &A6));
    tcpsm_sock_name_addr(pr->p[1].sk, &a, NULL);
    cr_assert(a6_eq(&a, &B6));
    tcpsm_sock_name_addr(pr->p[0].sk, &a, &aport);
    cr_assert(a6_eq(&a, &A6));
    cr_assert_eq(port, aport);
    /* MSS from the IPv6 MTU: 1500 - 40 - 20 (RFC 6691) */
    struct tcpsm_tcp_info ti;
    tcpsm_sock_info(pr->p[0].sk, &ti);
    cr_assert_eq(ti.advmss, ti.ts_ok ? 1428u : 1440u);
    transfer(pr, 4u << 20, 3u << 20, 0, 600 * P_SEC);
    finish(pr);
    const struct tcpsm_counters *k = tcpsm_stack_counters(pr->p[0].st);
    cr_assert_gt(k->ip6_out, 1000);
    cr_assert_eq(k->ip_out, 0, "no IPv4 on an IPv6 connection");
    cr_assert_gt(k->nd_ns_out, 0);
    cr_assert_eq(k->nd_dad_dup, 0);
    pair_free(pr);
    pair_dual = false;
}

Test(tcp_pair6, dual_stack_listener_takes_ipv4_as_mapped)
{
    pair_dual = true;
    struct pair *pr = pair_new(NULL, 12);
    struct tcpsm_addr b4 = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 } };
    cr_assert_eq(pair_connect6(pr, &b4, false, false), -EINPROGRESS);
    cr_assert(run_until(pr, 10 * P_SEC, established));
    struct tcpsm_addr a;
    uint16_t port;
    cr_assert_eq(tcpsm_sock_peer_addr(pr->p[1].sk, &a, &port), 0);
    struct tcpsm_addr a4 = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 1 } };
    cr_assert(a6_eq(&a, &a4), "the IPv4 peer as ::ffff:198.18.0.1");
    int v;
    cr_assert_eq(tcpsm_sock_getopt(pr->p[1].sk, TCPSM_OPT_IPV6, &v), 0);
    cr_assert_eq(v, 1, "accepted from an IPv6 listener: an IPv6 socket");
    transfer(pr, 1u << 20, 1u << 20, 1, 600 * P_SEC);
    finish(pr);
    cr_assert_eq(tcpsm_stack_counters(pr->p[1].st)->ip6_out,
                 tcpsm_stack_counters(pr->p[1].st)->nd_ns_out + tcpsm_stack_counters(pr->p[1].st)->nd_rs_out,
                 "only ND went out over IPv6");
    pair_free(pr);
    pair_dual = false;
}

Test(tcp_pair6, v6only_listener_refuses_ipv4)
{
    pair_dual = true;
    struct pair *pr = pair_new(NULL, 13);
    struct tcpsm_addr b4 = { { [10] = 0xff, [11] = 0xff, 198, 18, 0, 2 } };
    cr_assert_eq(pair_connect6(pr, &b4, false, true), -EINPROGRESS);
    pr->wait_side = 0;
    pr->wait_state = TCPSM_CLOSED;
    cr_assert(run_until(pr, 10 * P_SEC, state_reached));
    cr_assert_eq(tcpsm_sock_error(pr->p[0].sk), ECONNREFUSED);
    /* an IPv4 socket cannot reach an IPv6 address, a v6-only one no IPv4 */
    struct tcpsm_sock *s;
    cr_assert_eq(tcpsm_sock_new(pr->p[0].st, &s), 0);
    cr_assert_eq(tcpsm_sock_connect_addr(s, &B6, 80, pr->now), -EAFNOSUPPORT);
    cr_assert_eq(tcpsm_sock_setopt(s, TCPSM_OPT_IPV6, 1), 0);
    cr_assert_eq(tcpsm_sock_setopt(s, TCPSM_OPT_V6ONLY, 1), 0);
    cr_assert_eq(tcpsm_sock_connect_addr(s, &b4, 80, pr->now), -ENETUNREACH);
    struct tcpsm_addr off = { { 0x20, 0x01, 0, 0x02, 0, 9, [15] = 1 } };
    cr_assert_eq(tcpsm_sock_connect_addr(s, &off, 80, pr->now), -ENETUNREACH,
                 "off-link, and no router advertised");
    tcpsm_sock_close(s, pr->now);
    tcpsm_sock_close(pr->p[0].sk, pr->now);
    tcpsm_sock_close(pr->p[1].lsk, pr->now);
    cr_assert_eq(tcpsm_stack_nsocks(pr->p[0].st), 0);
    pair_free(pr);
    pair_dual = false;
}

Test(tcp_pair6, bind_conflicts_across_families)
{
    pair_dual = true;
    struct pair *pr = pair_new(NULL, 14);
    struct tcpsm_stack *st = pr->p[1].st;
    static const struct tcpsm_addr any;
    struct tcpsm_sock *s4, *s6, *s6b;
    cr_assert_eq(tcpsm_sock_new(st, &s4), 0);
    cr_assert_eq(tcpsm_sock_bind(s4, 0, 8080), 0);
    cr_assert_eq(tcpsm_sock_new(st, &s6), 0);
    cr_assert_eq(tcpsm_sock_setopt(s6, TCPSM_OPT_IPV6, 1), 0);
    cr_assert_eq(tcpsm_sock_bind_addr(s6, &any, 8080), -EADDRINUSE, "dual-stack :: vs 0.0.0.0");
    cr_assert_eq(tcpsm_sock_new(st, &s6b), 0);
    cr_assert_eq(tcpsm_sock_setopt(s6b, TCPSM_OPT_IPV6, 1), 0);
    cr_assert_eq(tcpsm_sock_setopt(s6b, TCPSM_OPT_V6ONLY, 1), 0);
    cr_assert_eq(tcpsm_sock_bind_addr(s6b, &any, 8080), 0, "v6-only :: beside 0.0.0.0");
    cr_assert_eq(tcpsm_sock_setopt(s6b, TCPSM_OPT_V6ONLY, 0), -EINVAL, "after bind");
    cr_assert_eq(tcpsm_sock_bind_addr(s6, &A6, 8081), -EADDRNOTAVAIL, "not this stack's");
    tcpsm_sock_close(s4, pr->now);
    tcpsm_sock_close(s6, pr->now);
    tcpsm_sock_close(s6b, pr->now);
    pair_free(pr);
    pair_dual = false;
}

static const struct memlink_params impaired6 = {
    .loss_pct = 2, .reorder_pct = 2, .dup_pct = 1, .corrupt_pct = 1,
};

Test(tcp_pair6, bulk_through_loss_reorder_dup_corruption)
{
    pair_dual = true;
    struct pair *pr = pair_new(&impaired6, 15);
    cr_assert_eq(pair_connect6(pr, &B6, true, false), -EINPROGRESS);
    cr_assert(run_until(pr, 600 * P_SEC, established), "no connection");
    transfer(pr, 2u << 20, 1u << 20, 0, 7200 * P_SEC);
    finish(pr);
    cr_assert(tcpsm_stack_counters(pr->p[0].st)->tcp_retrans > 0);
    pair_free(pr);
    pair_dual = false;
}
