/* TCP smoke tests: two stacks over the in-memory link in virtual time.
 * Handshake, a few MB each way with a checksum, both close orders,
 * TIME-WAIT expiry, and the same transfer under seeded impairments. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "netdev_mem.h"
#include "tcpsm/core.h"

#define A_ADDR 0xC6120001u  /* 198.18.0.1 */
#define B_ADDR 0xC6120002u  /* 198.18.0.2 */
#define MSEC 1000000ull
#define SECS 1000000000ull

struct pair {
    struct memlink *link;
    struct tcpsm_stack *a, *b;
    uint64_t now;
    unsigned trace_n;
    struct tcpsm_trace_event ev[64];
};

static void count_trace(void *ctx, const struct tcpsm_trace_event *ev)
{
    struct pair *p = ctx;
    if (p->trace_n < 64)
        p->ev[p->trace_n] = *ev;
    p->trace_n++;
}

static struct tcpsm_config cfg_for(uint32_t addr, uint8_t last, struct pair *p)
{
    struct tcpsm_config c;
    memset(&c, 0, sizeof(c));
    c.addr = addr;
    c.prefix_len = 24;
    c.mac[0] = 0x02;
    c.mac[5] = last;
    c.secret[0] = 0x1234 + last;
    c.secret[1] = 0x9876;
    c.msl_ms = 1000;
    c.trace = count_trace;
    c.cb_ctx = p;
    return c;
}

static void pair_init(struct pair *p, const struct memlink_params *lp, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->now = 1 * SECS;
    p->link = memlink_new(lp, seed);
    cr_assert_not_null(p->link);
    struct tcpsm_config ca = cfg_for(A_ADDR, 1, p), cb = cfg_for(B_ADDR, 2, p);
    p->a = tcpsm_stack_new(&ca, memlink_dev(p->link, 0), p->now);
    p->b = tcpsm_stack_new(&cb, memlink_dev(p->link, 1), p->now);
    cr_assert_not_null(p->a);
    cr_assert_not_null(p->b);
}

static void pair_fini(struct pair *p)
{
    tcpsm_stack_free(p->a);
    tcpsm_stack_free(p->b);
    memlink_free(p->link);
}

static void run_for(struct pair *p, uint64_t ns)
{
    memlink_run(p->link, p->a, p->b, &p->now, p->now + ns, NULL, NULL);
}

struct conn {
    struct pair *p;
    struct tcpsm_sock *lsn, *srv, *cli;
};

static bool accepted(void *arg)
{
    struct conn *c = arg;
    if (!c->srv)
        tcpsm_sock_accept(c->lsn, &c->srv);
    return c->srv && tcpsm_sock_state(c->cli) == TCPSM_ESTABLISHED;
}

static void connect_pair(struct pair *p, struct conn *c)
{
    memset(c, 0, sizeof(*c));
    c->p = p;
    cr_assert_eq(tcpsm_sock_new(p->a, &c->lsn), 0);
    cr_assert_eq(tcpsm_sock_bind(c->lsn, 0, 8080), 0);
    cr_assert_eq(tcpsm_sock_listen(c->lsn, 16), 0);
    cr_assert_eq(tcpsm_sock_new(p->b, &c->cli), 0);
    cr_assert_eq(tcpsm_sock_connect(c->cli, A_ADDR, 8080, p->now), -EINPROGRESS);
    cr_assert_eq(tcpsm_sock_state(c->cli), TCPSM_SYN_SENT);
    cr_assert(memlink_run(p->link, p->a, p->b, &p->now, p->now + 120 * SECS, accepted, c),
              "handshake did not complete");
    cr_assert_eq(tcpsm_sock_state(c->srv), TCPSM_ESTABLISHED);
    cr_assert(tcpsm_sock_poll(c->cli) & TCPSM_POLLOUT);
    cr_assert_eq(tcpsm_sock_error(c->cli), 0);
}

struct xfer {
    struct pair *p;
    struct tcpsm_sock *tx, *rx;
    size_t total, sent, got;
    uint32_t sum_tx, sum_rx;
    uint8_t buf[65536];
};

static uint8_t pattern(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static bool pump(void *arg)
{
    struct xfer *x = arg;
    while (x->sent < x->total) {
        size_t n = x->total - x->sent;
        if (n > 40000)
            n = 40000;
        uint8_t tmp[40000];
        for (size_t i = 0; i < n; i++)
            tmp[i] = pattern(x->sent + i);
        ssize_t r = tcpsm_sock_send(x->tx, tmp, n, x->p->now);
        if (r <= 0) {
            cr_assert_eq(r, -EAGAIN, "send: %zd", r);
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            x->sum_tx = x->sum_tx * 31 + tmp[i];
        x->sent += (size_t)r;
    }
    for (;;) {
        ssize_t r = tcpsm_sock_recv(x->rx, x->buf, sizeof(x->buf), 0, x->p->now);
        if (r <= 0) {
            cr_assert(r == -EAGAIN || r == 0, "recv: %zd", r);
            break;
        }
        for (ssize_t i = 0; i < r; i++) {
            cr_assert_eq(x->buf[i], pattern(x->got + (size_t)i), "byte %zu differs",
                         x->got + (size_t)i);
            x->sum_rx = x->sum_rx * 31 + x->buf[i];
        }
        x->got += (size_t)r;
    }
    return x->got == x->total;
}

static void transfer(struct pair *p, struct tcpsm_sock *tx, struct tcpsm_sock *rx, size_t total,
                     uint64_t limit)
{
    struct xfer *x = calloc(1, sizeof(*x));
    x->p = p;
    x->tx = tx;
    x->rx = rx;
    x->total = total;
    bool ok = memlink_run(p->link, p->a, p->b, &p->now, p->now + limit, pump, x);
    if (!ok) {
        struct tcpsm_tcp_info it, ir;
        tcpsm_sock_info(tx, &it);
        tcpsm_sock_info(rx, &ir);
        cr_log_error("tx: state %d una? unacked %u cwnd %u wnd %u rto %u retr %u; rx: state %d "
                     "rcv_wnd %u; next A %lu B %lu now %lu",
                     it.state, it.unacked, it.snd_cwnd, it.snd_wnd, it.rto_us, it.retransmits,
                     ir.state, ir.rcv_wnd,
                     (unsigned long)tcpsm_stack_next_deadline(p->a),
                     (unsigned long)tcpsm_stack_next_deadline(p->b), (unsigned long)p->now);
    }
    cr_assert(ok, "transfer incomplete: sent %zu got %zu of %zu", x->sent, x->got, total);
    cr_assert_eq(x->sum_tx, x->sum_rx);
    free(x);
}

static bool eof_seen(void *arg)
{
    struct tcpsm_sock *s = arg;
    return (tcpsm_sock_poll(s) & TCPSM_POLLRDHUP) != 0;
}

Test(tcp_smoke, handshake_transfer_client_closes_first)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 1);
    struct conn c;
    connect_pair(&p, &c);
    transfer(&p, c.cli, c.srv, 3u << 20, 60 * SECS);
    transfer(&p, c.srv, c.cli, 2u << 20, 60 * SECS);

    tcpsm_sock_close(c.cli, p.now);   /* FIN-WAIT-1 */
    cr_assert(memlink_run(p.link, p.a, p.b, &p.now, p.now + 10 * SECS, eof_seen, c.srv));
    cr_assert_eq(tcpsm_sock_state(c.srv), TCPSM_CLOSE_WAIT);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(c.srv, b, sizeof(b), 0, p.now), 0);
    /* half-close: the server may still send in CLOSE-WAIT; the closed
     * client answers data with RST (Linux) */
    tcpsm_sock_close(c.srv, p.now);   /* LAST-ACK */
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 1, "client TIME-WAIT TCB remains");
    run_for(&p, 3 * SECS);            /* 2*MSL = 2 s */
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 1);   /* the listener */
    tcpsm_sock_close(c.lsn, p.now);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 0);
    cr_assert_eq(tcpsm_stack_counters(p.a)->tcp_retrans, 0);
    pair_fini(&p);
}

Test(tcp_smoke, server_closes_first_half_close)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 2 * MSEC };
    pair_init(&p, &lp, 2);
    struct conn c;
    connect_pair(&p, &c);
    cr_assert_eq(tcpsm_sock_shutdown(c.srv, 1, p.now), 0);     /* SHUT_WR */
    cr_assert_eq(tcpsm_sock_send(c.srv, "x", 1, p.now), -EPIPE);
    cr_assert(memlink_run(p.link, p.a, p.b, &p.now, p.now + 10 * SECS, eof_seen, c.cli));
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_state(c.cli), TCPSM_CLOSE_WAIT);
    cr_assert_eq(tcpsm_sock_state(c.srv), TCPSM_FIN_WAIT_2);
    /* data still flows from CLOSE-WAIT to FIN-WAIT-2 */
    transfer(&p, c.cli, c.srv, 1u << 20, 60 * SECS);
    tcpsm_sock_close(c.cli, p.now);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_state(c.srv), TCPSM_TIME_WAIT);
    tcpsm_sock_close(c.srv, p.now);
    tcpsm_sock_close(c.lsn, p.now);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    run_for(&p, 3 * SECS);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 0);
    pair_fini(&p);
}

/* SMOKE_SEED varies the impairment pattern of a run. */
static void impaired(double loss, double reorder, double dup, uint64_t seed)
{
    if (getenv("SMOKE_SEED"))
        seed ^= strtoull(getenv("SMOKE_SEED"), NULL, 0) << 8;
    struct pair p;
    struct memlink_params lp = { .delay_ns = 5 * MSEC, .jitter_ns = 1 * MSEC, .loss_pct = loss,
                                 .reorder_pct = reorder, .dup_pct = dup };
    pair_init(&p, &lp, seed);
    struct conn c;
    connect_pair(&p, &c);
    transfer(&p, c.cli, c.srv, 2u << 20, 3600 * SECS);
    transfer(&p, c.srv, c.cli, 1u << 20, 3600 * SECS);
    tcpsm_sock_close(c.cli, p.now);
    tcpsm_sock_close(c.srv, p.now);
    tcpsm_sock_close(c.lsn, p.now);
    run_for(&p, 600 * SECS);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 0);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    pair_fini(&p);
}

Test(tcp_smoke, loss_1pct) { impaired(1, 0, 0, 11); }
Test(tcp_smoke, loss_5pct_reorder_dup) { impaired(5, 5, 2, 12); }
Test(tcp_smoke, loss_20pct) { impaired(20, 0, 0, 13); }

Test(tcp_smoke, bulk_64mb_no_delay)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 50000 };
    pair_init(&p, &lp, 3);
    struct conn c;
    connect_pair(&p, &c);
    transfer(&p, c.cli, c.srv, 64u << 20, 600 * SECS);
    pair_fini(&p);
}

/* A reader that stops: the window closes, the sender persists with
 * probes, and everything arrives once the reader resumes. */
Test(tcp_smoke, zero_window_then_resume)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 4);
    struct conn c;
    memset(&c, 0, sizeof(c));
    c.p = &p;
    cr_assert_eq(tcpsm_sock_new(p.a, &c.lsn), 0);
    cr_assert_eq(tcpsm_sock_setopt(c.lsn, TCPSM_OPT_RCVBUF, 4096), 0);
    cr_assert_eq(tcpsm_sock_bind(c.lsn, 0, 8080), 0);
    cr_assert_eq(tcpsm_sock_listen(c.lsn, 16), 0);
    cr_assert_eq(tcpsm_sock_new(p.b, &c.cli), 0);
    cr_assert_eq(tcpsm_sock_connect(c.cli, A_ADDR, 8080, p.now), -EINPROGRESS);
    cr_assert(memlink_run(p.link, p.a, p.b, &p.now, p.now + 10 * SECS, accepted, &c));
    static uint8_t big[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = pattern(i);
    size_t sent = 0;
    for (int i = 0; i < 100 && sent < sizeof(big); i++) {
        ssize_t r = tcpsm_sock_send(c.cli, big + sent, sizeof(big) - sent, p.now);
        if (r > 0)
            sent += (size_t)r;
        run_for(&p, 50 * MSEC);
    }
    /* nobody reads for a minute: the peer's buffer is full, probes go on */
    run_for(&p, 60 * SECS);
    cr_assert_eq(tcpsm_sock_state(c.cli), TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_sock_rxavail(c.srv), 8192);
    struct tcpsm_tcp_info in;
    tcpsm_sock_info(c.cli, &in);
    cr_assert_eq(in.snd_wnd, 0, "peer window %u", in.snd_wnd);
    size_t got = 0;
    static uint8_t rb[200000];
    for (int i = 0; i < 100000 && got < sizeof(big); i++) {
        ssize_t r = tcpsm_sock_recv(c.srv, rb + got, sizeof(rb) - got, 0, p.now);
        if (r > 0)
            got += (size_t)r;
        if (sent < sizeof(big)) {
            r = tcpsm_sock_send(c.cli, big + sent, sizeof(big) - sent, p.now);
            if (r > 0)
                sent += (size_t)r;
        }
        run_for(&p, 10 * MSEC);
    }
    cr_assert_eq(got, sizeof(big));
    cr_assert(memcmp(rb, big, sizeof(big)) == 0);
    pair_fini(&p);
}

Test(tcp_smoke, refused_and_reset)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 5);
    struct tcpsm_sock *s;
    cr_assert_eq(tcpsm_sock_new(p.b, &s), 0);
    cr_assert_eq(tcpsm_sock_connect(s, A_ADDR, 9, p.now), -EINPROGRESS);
    run_for(&p, 1 * SECS);
    cr_assert_eq(tcpsm_sock_state(s), TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_poll(s), TCPSM_POLLIN | TCPSM_POLLRDHUP | TCPSM_POLLOUT |
                                         TCPSM_POLLHUP | TCPSM_POLLERR);
    cr_assert_eq(tcpsm_sock_error(s), ECONNREFUSED);
    tcpsm_sock_close(s, p.now);

    /* close with unread data resets the peer (RFC 9293 3.10.4, Linux) */
    struct conn c;
    connect_pair(&p, &c);
    cr_assert_eq(tcpsm_sock_send(c.cli, "hello", 5, p.now), 5);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_rxavail(c.srv), 5);
    tcpsm_sock_close(c.srv, p.now);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_state(c.cli), TCPSM_CLOSED);
    char b[8];
    cr_assert_eq(tcpsm_sock_recv(c.cli, b, sizeof(b), 0, p.now), -ECONNRESET);
    cr_assert_eq(tcpsm_sock_recv(c.cli, b, sizeof(b), 0, p.now), 0);
    cr_assert_eq(tcpsm_sock_send(c.cli, "x", 1, p.now), -EPIPE);
    tcpsm_sock_close(c.cli, p.now);
    tcpsm_sock_close(c.lsn, p.now);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 0);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    pair_fini(&p);
}

/* The peer disappears: retransmissions, then ETIMEDOUT; keepalive finds
 * an idle dead peer. */
Test(tcp_smoke, peer_vanishes_timeout_and_keepalive)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 6);
    struct conn c, k;
    connect_pair(&p, &c);
    struct tcpsm_sock *lsn2, *cli2, *srv2 = NULL;
    cr_assert_eq(tcpsm_sock_new(p.a, &lsn2), 0);
    cr_assert_eq(tcpsm_sock_bind(lsn2, 0, 8081), 0);
    cr_assert_eq(tcpsm_sock_listen(lsn2, 4), 0);
    cr_assert_eq(tcpsm_sock_new(p.b, &cli2), 0);
    cr_assert_eq(tcpsm_sock_setopt(cli2, TCPSM_OPT_KEEPALIVE, 1), 0);
    cr_assert_eq(tcpsm_sock_setopt(cli2, TCPSM_OPT_KEEPIDLE, 10), 0);
    cr_assert_eq(tcpsm_sock_setopt(cli2, TCPSM_OPT_KEEPINTVL, 2), 0);
    cr_assert_eq(tcpsm_sock_setopt(cli2, TCPSM_OPT_KEEPCNT, 3), 0);
    cr_assert_eq(tcpsm_sock_connect(cli2, A_ADDR, 8081, p.now), -EINPROGRESS);
    run_for(&p, 1 * SECS);
    cr_assert_eq(tcpsm_sock_accept(lsn2, &srv2), 0);
    /* keepalive probes are answered while A lives */
    run_for(&p, 60 * SECS);
    cr_assert_eq(tcpsm_sock_state(cli2), TCPSM_ESTABLISHED);
    (void)k;
    /* A vanishes (frames toward it stay in flight forever) */
    cr_assert_eq(tcpsm_sock_send(c.cli, "data", 4, p.now), 4);
    memlink_run(p.link, NULL, p.b, &p.now, p.now + 20 * SECS, NULL, NULL);
    cr_assert_eq(tcpsm_sock_state(cli2), TCPSM_CLOSED, "keepalive did not end it");
    cr_assert_eq(tcpsm_sock_error(cli2), ETIMEDOUT);
    memlink_run(p.link, NULL, p.b, &p.now, p.now + 1200 * SECS, NULL, NULL);
    cr_assert_eq(tcpsm_sock_state(c.cli), TCPSM_CLOSED);
    cr_assert_eq(tcpsm_sock_error(c.cli), ETIMEDOUT);
    cr_assert(tcpsm_stack_counters(p.b)->tcp_conn_timeout >= 2);
    pair_fini(&p);
}

/* A listener with backlog 0 (its accept queue holds one, as Linux's): the
 * second client's SYN is dropped (counted) until the first is accepted; its
 * SYN retransmission then gets through. */
Test(tcp_smoke, backlog_full_then_accept)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 7);
    struct tcpsm_sock *l, *c1, *c2, *s1 = NULL, *s2 = NULL;
    cr_assert_eq(tcpsm_sock_new(p.a, &l), 0);
    cr_assert_eq(tcpsm_sock_bind(l, 0, 80), 0);
    cr_assert_eq(tcpsm_sock_listen(l, 0), 0);
    cr_assert_eq(tcpsm_sock_new(p.b, &c1), 0);
    cr_assert_eq(tcpsm_sock_new(p.b, &c2), 0);
    cr_assert_eq(tcpsm_sock_connect(c1, A_ADDR, 80, p.now), -EINPROGRESS);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_connect(c2, A_ADDR, 80, p.now), -EINPROGRESS);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_state(c1), TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_sock_state(c2), TCPSM_SYN_SENT);
    cr_assert(tcpsm_stack_counters(p.a)->tcp_drop_acceptq_full >= 1);
    cr_assert_eq(tcpsm_sock_poll(l), TCPSM_POLLIN);
    cr_assert_eq(tcpsm_sock_accept(l, &s1), 0);
    cr_assert_eq(tcpsm_sock_accept(l, &s2), -EAGAIN);
    run_for(&p, 3 * SECS);
    cr_assert_eq(tcpsm_sock_state(c2), TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_sock_accept(l, &s2), 0);
    pair_fini(&p);
}

Test(tcp_smoke, max_socks_enobufs)
{
    struct pair p;
    struct memlink_params lp = { 0 };
    memset(&p, 0, sizeof(p));
    p.link = memlink_new(&lp, 1);
    struct tcpsm_config ca = cfg_for(A_ADDR, 1, &p);
    ca.max_socks = 3;
    p.a = tcpsm_stack_new(&ca, memlink_dev(p.link, 0), 0);
    struct tcpsm_sock *s[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tcpsm_sock_new(p.a, &s[i]), 0);
    cr_assert_eq(tcpsm_sock_new(p.a, &s[3]), -ENOBUFS);
    tcpsm_sock_close(s[0], 0);
    cr_assert_eq(tcpsm_sock_new(p.a, &s[3]), 0);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 3);
    tcpsm_stack_free(p.a);
    memlink_free(p.link);
}

/* The server closed first and holds TIME-WAIT; the client comes back from
 * the same port: the newer SYN ends TIME-WAIT and opens a new connection
 * (RFC 6191, RFC 9293 3.10.7.4 note). */
Test(tcp_smoke, syn_reopens_time_wait)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 8);
    struct tcpsm_sock *l, *c, *s = NULL;
    cr_assert_eq(tcpsm_sock_new(p.a, &l), 0);
    cr_assert_eq(tcpsm_sock_bind(l, 0, 80), 0);
    cr_assert_eq(tcpsm_sock_listen(l, 4), 0);
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(tcpsm_sock_new(p.b, &c), 0);
        cr_assert_eq(tcpsm_sock_bind(c, 0, 40000), 0);
        cr_assert_eq(tcpsm_sock_connect(c, A_ADDR, 80, p.now), -EINPROGRESS);
        run_for(&p, 100 * MSEC);
        cr_assert_eq(tcpsm_sock_state(c), TCPSM_ESTABLISHED, "round %d", round);
        cr_assert_eq(tcpsm_sock_accept(l, &s), 0);
        cr_assert_eq(tcpsm_sock_send(s, "bye", 3, p.now), 3);
        tcpsm_sock_close(s, p.now);             /* server closes first */
        run_for(&p, 100 * MSEC);
        char b[8];
        cr_assert_eq(tcpsm_sock_recv(c, b, sizeof(b), 0, p.now), 3);
        cr_assert_eq(tcpsm_sock_recv(c, b, sizeof(b), 0, p.now), 0);
        tcpsm_sock_close(c, p.now);
        run_for(&p, 100 * MSEC);
        cr_assert_eq(tcpsm_stack_nsocks(p.a), 2, "listener + TIME-WAIT");
        cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    }
    cr_assert_eq(tcpsm_stack_counters(p.a)->tcp_passive_opens, 2);
    pair_fini(&p);
}

/* TCPSM_TRACE's material: every transition with the segment that caused
 * it, so the textbook timeline reads SYN, SYN+ACK, ACK; FIN, ACK, FIN, ACK. */
Test(tcp_smoke, trace_timeline)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 9);
    struct conn c;
    connect_pair(&p, &c);
    tcpsm_sock_close(c.cli, p.now);
    run_for(&p, 100 * MSEC);
    tcpsm_sock_close(c.srv, p.now);
    run_for(&p, 3 * SECS);
    static const struct {
        uint32_t laddr;
        int from, to;
        char dir;
        uint8_t flags;
    } want[] = {
        { 0, TCPSM_CLOSED, TCPSM_LISTEN, 0, 0 },     /* bound to any address */
        { B_ADDR, TCPSM_CLOSED, TCPSM_SYN_SENT, '>', TCPSM_SYN },
        { A_ADDR, TCPSM_LISTEN, TCPSM_SYN_RECEIVED, '<', TCPSM_SYN },
        { B_ADDR, TCPSM_SYN_SENT, TCPSM_ESTABLISHED, '<', TCPSM_SYN | TCPSM_ACK },
        { A_ADDR, TCPSM_SYN_RECEIVED, TCPSM_ESTABLISHED, '<', TCPSM_ACK },
        { B_ADDR, TCPSM_ESTABLISHED, TCPSM_FIN_WAIT_1, '>', TCPSM_FIN | TCPSM_ACK },
        { A_ADDR, TCPSM_ESTABLISHED, TCPSM_CLOSE_WAIT, '<', TCPSM_FIN | TCPSM_ACK },
        { B_ADDR, TCPSM_FIN_WAIT_1, TCPSM_FIN_WAIT_2, '<', TCPSM_ACK },
        { A_ADDR, TCPSM_CLOSE_WAIT, TCPSM_LAST_ACK, '>', TCPSM_FIN | TCPSM_ACK },
        { B_ADDR, TCPSM_FIN_WAIT_2, TCPSM_TIME_WAIT, '<', TCPSM_FIN | TCPSM_ACK },
        { A_ADDR, TCPSM_LAST_ACK, TCPSM_CLOSED, '<', TCPSM_ACK },
        { B_ADDR, TCPSM_TIME_WAIT, TCPSM_CLOSED, 0, 0 },
    };
    cr_assert_eq(p.trace_n, sizeof(want) / sizeof(want[0]), "%u transitions", p.trace_n);
    for (unsigned i = 0; i < p.trace_n; i++) {
        const struct tcpsm_trace_event *e = &p.ev[i];
        cr_assert_eq(e->laddr, want[i].laddr, "event %u", i);
        cr_assert_eq(e->old_state, want[i].from, "event %u: from %s", i,
                     tcpsm_state_name(e->old_state));
        cr_assert_eq(e->new_state, want[i].to, "event %u: to %s", i,
                     tcpsm_state_name(e->new_state));
        cr_assert_eq(e->has_seg, want[i].dir != 0, "event %u", i);
        if (e->has_seg) {
            cr_assert_eq(e->dir, want[i].dir, "event %u", i);
            cr_assert_eq(e->seg_flags & ~TCPSM_PSH, want[i].flags, "event %u: flags %#x", i,
                         e->seg_flags);
        }
    }
    /* the handshake's numbers: SYN seq=x; SYN+ACK ack=x+1 */
    cr_assert_eq(p.ev[3].seg_ack, p.ev[1].seg_seq + 1);
    cr_assert_eq(p.ev[4].seg_seq, p.ev[1].seg_seq + 1);
    cr_assert_eq(p.ev[4].seg_ack, p.ev[3].seg_seq + 1);
    pair_fini(&p);
}

/* close() in TIME-WAIT with data never read: nothing to reset any more;
 * the data is dropped and TIME-WAIT runs its course. */
Test(tcp_smoke, close_in_time_wait_with_unread_data)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 10);
    struct conn c;
    connect_pair(&p, &c);
    cr_assert_eq(tcpsm_sock_shutdown(c.cli, 1, p.now), 0);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_state(c.cli), TCPSM_FIN_WAIT_2);
    cr_assert_eq(tcpsm_sock_send(c.srv, "late", 4, p.now), 4);
    tcpsm_sock_close(c.srv, p.now);
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_state(c.cli), TCPSM_TIME_WAIT);
    cr_assert_eq(tcpsm_sock_rxavail(c.cli), 4);
    uint64_t rst = tcpsm_stack_counters(p.b)->tcp_rst_out;
    tcpsm_sock_close(c.cli, p.now);
    cr_assert_eq(tcpsm_stack_counters(p.b)->tcp_rst_out, rst);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 1);
    run_for(&p, 3 * SECS);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    pair_fini(&p);
}

/* TCP_CORK holds a partial segment, at most 200 ms (Linux); uncorking
 * sends it at once. */
Test(tcp_smoke, cork_ceiling)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 1 * MSEC };
    pair_init(&p, &lp, 11);
    struct conn c;
    connect_pair(&p, &c);
    cr_assert_eq(tcpsm_sock_setopt(c.cli, TCPSM_OPT_CORK, 1), 0);
    cr_assert_eq(tcpsm_sock_send(c.cli, "corked", 6, p.now), 6);
    run_for(&p, 150 * MSEC);
    cr_assert_eq(tcpsm_sock_rxavail(c.srv), 0, "partial segment left while corked");
    run_for(&p, 100 * MSEC);
    cr_assert_eq(tcpsm_sock_rxavail(c.srv), 6, "cork held data beyond 200 ms");
    cr_assert_eq(tcpsm_sock_send(c.cli, "again", 5, p.now), 5);
    run_for(&p, 10 * MSEC);
    cr_assert_eq(tcpsm_sock_rxavail(c.srv), 6);
    cr_assert_eq(tcpsm_sock_setopt(c.cli, TCPSM_OPT_CORK, 0), 0);
    run_for(&p, 10 * MSEC);
    cr_assert_eq(tcpsm_sock_rxavail(c.srv), 11);
    pair_fini(&p);
}

/* Simultaneous open over the link, then shutdown(SHUT_WR) while one end
 * may still be in SYN-RECEIVED: both ends finish the close. */
Test(tcp_smoke, simultaneous_open_then_close)
{
    struct pair p;
    struct memlink_params lp = { .delay_ns = 5 * MSEC };
    pair_init(&p, &lp, 12);
    struct tcpsm_sock *a, *b;
    cr_assert_eq(tcpsm_sock_new(p.a, &a), 0);
    cr_assert_eq(tcpsm_sock_new(p.b, &b), 0);
    cr_assert_eq(tcpsm_sock_bind(a, 0, 7000), 0);
    cr_assert_eq(tcpsm_sock_bind(b, 0, 7001), 0);
    cr_assert_eq(tcpsm_sock_connect(a, B_ADDR, 7001, p.now), -EINPROGRESS);
    cr_assert_eq(tcpsm_sock_connect(b, A_ADDR, 7000, p.now), -EINPROGRESS);
    run_for(&p, 7 * MSEC);              /* SYNs crossed: both in SYN-RECEIVED */
    cr_assert_eq(tcpsm_sock_state(a), TCPSM_SYN_RECEIVED);
    cr_assert_eq(tcpsm_sock_shutdown(a, 1, p.now), 0);
    cr_assert_eq(tcpsm_sock_state(a), TCPSM_FIN_WAIT_1);
    run_for(&p, 1 * SECS);
    cr_assert_eq(tcpsm_sock_state(b), TCPSM_CLOSE_WAIT);
    char buf[4];
    cr_assert_eq(tcpsm_sock_recv(b, buf, sizeof(buf), 0, p.now), 0);
    tcpsm_sock_close(b, p.now);
    run_for(&p, 1 * SECS);
    cr_assert_eq(tcpsm_sock_state(a), TCPSM_TIME_WAIT);
    tcpsm_sock_close(a, p.now);
    run_for(&p, 3 * SECS);
    cr_assert_eq(tcpsm_stack_nsocks(p.a), 0);
    cr_assert_eq(tcpsm_stack_nsocks(p.b), 0);
    pair_fini(&p);
}
