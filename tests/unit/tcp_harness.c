/* Test harness for the TCP state machine (see tcp_harness.h). */
#include "tcp_harness.h"
#include "tcp_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t H_MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t P_MAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };

#define ETH_LEN 14
#define IP_LEN  20
#define MIN_FRAME 60    /* Ethernet minimum without FCS: short frames arrive padded */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint16_t h_csum(const void *p, size_t len, uint32_t sum)
{
    const uint8_t *b = p;
    uint64_t s = sum;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (len & 1)
        s += (uint32_t)b[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)~s;
}

static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint16_t l4len)
{
    return (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + 6u + l4len;
}

void h_pattern(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

/* ---------------------------------------------------------------- capture netdev */

static unsigned cap_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *frames, unsigned n)
{
    struct harness *h = dev->priv;
    for (unsigned i = 0; i < n; i++) {
        if (h->qlen == H_QMAX) {
            h->qoverflow = true;
            return i;
        }
        struct h_frame *f = &h->q[(h->qhead + h->qlen) % H_QMAX];
        f->data = malloc(frames[i].len ? frames[i].len : 1);
        cr_assert_not_null(f->data);
        memcpy(f->data, frames[i].data, frames[i].len);
        f->len = frames[i].len;
        h->qlen++;
    }
    return n;
}

static const struct tcpsm_netdev_ops cap_ops = { .send = cap_send };

static bool pop_frame(struct harness *h, struct h_frame *f)
{
    if (h->qlen == 0)
        return false;
    *f = h->q[h->qhead];
    h->qhead = (h->qhead + 1) % H_QMAX;
    h->qlen--;
    return true;
}

unsigned h_queued(struct harness *h) { return h->qlen; }

void h_drain(struct harness *h)
{
    struct h_frame f;
    while (pop_frame(h, &f))
        free(f.data);
}

/* ---------------------------------------------------------------- frames in */

static void seg_str(char *b, size_t n, const struct seg *s);

void h_input(struct harness *h, const void *frame, size_t len)
{
    uint8_t buf[MIN_FRAME];
    struct tcpsm_frame fr = { .data = (uint8_t *)frame, .len = (uint32_t)len };
    if (len < MIN_FRAME) {
        memset(buf, 0, sizeof buf);
        memcpy(buf, frame, len);
        fr.data = buf;
        fr.len = MIN_FRAME;
    }
    if (h->batching) {
        cr_assert_lt(h->nbatch, sizeof h->batch / sizeof h->batch[0], "batch full");
        struct h_frame *b = &h->batch[h->nbatch++];
        b->data = malloc(fr.len);
        cr_assert_not_null(b->data);
        memcpy(b->data, fr.data, fr.len);
        b->len = fr.len;
        return;
    }
    if (h->hold)
        tcpsm_stack_input_hold(h->st, &fr, 1, h->now);
    else
        tcpsm_stack_input(h->st, &fr, 1, h->now);
#ifdef H_AUDIT_EACH
    h_audit(h, __FILE__, __LINE__);
#endif
}

void h_batch_begin(struct harness *h)
{
    h->batching = true;
    h->nbatch = 0;
}

void h_batch_end(struct harness *h)
{
    struct tcpsm_frame fr[sizeof h->batch / sizeof h->batch[0]];
    for (unsigned i = 0; i < h->nbatch; i++)
        fr[i] = (struct tcpsm_frame){ .data = h->batch[i].data, .len = h->batch[i].len };
    h->batching = false;
    tcpsm_stack_input(h->st, fr, h->nbatch, h->now);
    for (unsigned i = 0; i < h->nbatch; i++)
        free(h->batch[i].data);
    h->nbatch = 0;
}

static void send_arp(struct harness *h, uint16_t op, const uint8_t *tha, uint32_t tpa)
{
    uint8_t f[42];
    memcpy(f, op == 1 ? (const uint8_t[6]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } : H_MAC, 6);
    memcpy(f + 6, P_MAC, 6);
    put16(f + 12, 0x0806);
    uint8_t *a = f + ETH_LEN;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, P_MAC, 6);
    put32(a + 14, H_PEER);
    memcpy(a + 18, tha, 6);
    put32(a + 24, tpa);
    h_input(h, f, sizeof f);
}

void send_seg(struct harness *h, const struct seg *s)
{
    static uint8_t f[ETH_LEN + IP_LEN + 60 + 65536];
    uint8_t opt[40];
    size_t olen = 0;
    if (s->mss) {
        opt[olen++] = 2; opt[olen++] = 4;
        put16(opt + olen, s->mss); olen += 2;
    }
    if (s->sack_perm) {
        opt[olen++] = 4; opt[olen++] = 2;
    }
    if (s->ts) {
        opt[olen++] = 8; opt[olen++] = 10;
        put32(opt + olen, s->tsval); olen += 4;
        put32(opt + olen, s->tsecr); olen += 4;
    }
    if (s->wscale) {
        opt[olen++] = 1;
        opt[olen++] = 3; opt[olen++] = 3; opt[olen++] = (uint8_t)(s->wscale - 1);
    }
    if (s->raw_optlen) {
        cr_assert(olen + s->raw_optlen <= 40, "too many option bytes");
        memcpy(opt + olen, s->raw_opts, s->raw_optlen);
        olen += s->raw_optlen;
    }
    while (olen % 4)
        opt[olen++] = 0;
    cr_assert(s->len <= 65536, "segment too large for the harness");
    size_t thl = 20 + olen, l4 = thl + s->len, tot = IP_LEN + l4;

    memcpy(f, H_MAC, 6);
    memcpy(f + 6, P_MAC, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + ETH_LEN;
    memset(ip, 0, IP_LEN);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)tot);
    put16(ip + 4, 0x1234);
    put16(ip + 6, 0x4000);          /* DF */
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, H_PEER);
    put32(ip + 16, H_ADDR);
    put16(ip + 10, h_csum(ip, IP_LEN, 0));

    uint8_t *t = ip + IP_LEN;
    put16(t, s->sport ? s->sport : H_RPORT);
    put16(t + 2, s->dport ? s->dport : H_LPORT);
    put32(t + 4, s->seq);
    put32(t + 8, s->ack);
    t[12] = (uint8_t)((s->doff ? s->doff : thl / 4) << 4);
    t[13] = s->flags;
    put16(t + 14, s->win);
    put16(t + 16, 0);
    put16(t + 18, 0);
    memcpy(t + 20, opt, olen);
    if (s->len)
        memcpy(t + thl, s->data, s->len);
    put16(t + 16, h_csum(t, l4, pseudo_sum(H_PEER, H_ADDR, (uint16_t)l4)));
    if (getenv("H_TRACE")) {
        char b[200];
        struct seg c = *s;
        c.sport = get16(t);
        c.dport = get16(t + 2);
        seg_str(b, sizeof b, &c);
        fprintf(stderr, "  %10.6f < %s\n", (double)(h->now - H_T0) / 1e9, b);
    }
    h_input(h, f, ETH_LEN + tot);
}

void send_icmp_unreach(struct harness *h, uint8_t code, uint32_t seq)
{
    uint8_t f[ETH_LEN + IP_LEN + 8 + IP_LEN + 8];
    memset(f, 0, sizeof f);
    memcpy(f, H_MAC, 6);
    memcpy(f + 6, P_MAC, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + ETH_LEN;
    ip[0] = 0x45;
    put16(ip + 2, IP_LEN + 8 + IP_LEN + 8);
    ip[8] = 64;
    ip[9] = 1;
    put32(ip + 12, H_PEER);
    put32(ip + 16, H_ADDR);
    put16(ip + 10, h_csum(ip, IP_LEN, 0));
    uint8_t *ic = ip + IP_LEN;
    ic[0] = 3;
    ic[1] = code;
    /* The quoted datagram: our segment as we sent it. */
    uint8_t *qip = ic + 8;
    qip[0] = 0x45;
    put16(qip + 2, 40);
    put16(qip + 6, 0x4000);
    qip[8] = 64;
    qip[9] = 6;
    put32(qip + 12, H_ADDR);
    put32(qip + 16, H_PEER);
    put16(qip + 10, h_csum(qip, IP_LEN, 0));
    uint8_t *qt = qip + IP_LEN;
    put16(qt, H_LPORT);
    put16(qt + 2, H_RPORT);
    put32(qt + 4, seq);
    put16(ic + 2, h_csum(ic, 8 + IP_LEN + 8, 0));
    h_input(h, f, sizeof f);
}

/* ---------------------------------------------------------------- frames out */

static void parse_opts(const uint8_t *o, size_t n, struct seg *s)
{
    size_t i = 0;
    while (i < n) {
        uint8_t kind = o[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        cr_assert(i + 1 < n && o[i + 1] >= 2 && i + o[i + 1] <= n, "malformed TCP option list");
        uint8_t l = o[i + 1];
        switch (kind) {
        case 2: cr_assert_eq(l, 4); s->mss = get16(o + i + 2); break;
        case 3: cr_assert_eq(l, 3); s->wscale = o[i + 2] + 1; break;
        case 4: cr_assert_eq(l, 2); s->sack_perm = true; break;
        case 5:
            cr_assert((l - 2) % 8 == 0 && l <= 34, "bad SACK option length %u", l);
            s->nsack = (l - 2u) / 8;
            for (unsigned k = 0; k < s->nsack; k++) {
                s->sack[k][0] = get32(o + i + 2 + 8 * k);
                s->sack[k][1] = get32(o + i + 6 + 8 * k);
            }
            break;
        case 8:
            cr_assert_eq(l, 10);
            s->ts = true;
            s->tsval = get32(o + i + 2);
            s->tsecr = get32(o + i + 6);
            break;
        default: break;
        }
        i += l;
    }
}

/* Returns true and fills s for a TCP segment; answers ARP requests for the
 * peer (outside the stack's send callback) and skips other frames. */
static bool parse_frame(struct harness *h, const struct h_frame *f, struct seg *s)
{
    cr_assert(f->len >= ETH_LEN, "runt frame (%u bytes)", f->len);
    const uint8_t *d = f->data;
    uint16_t type = get16(d + 12);
    if (type == 0x0806) {
        cr_assert(f->len >= ETH_LEN + 28);
        const uint8_t *a = d + ETH_LEN;
        if (get16(a + 6) == 1 && get32(a + 24) == H_PEER)
            send_arp(h, 2, H_MAC, H_ADDR);
        return false;
    }
    if (type != 0x0800)
        return false;
    cr_assert(memcmp(d, P_MAC, 6) == 0, "IPv4 frame not addressed to the peer's MAC");
    cr_assert(memcmp(d + 6, H_MAC, 6) == 0, "IPv4 frame not from the stack's MAC");
    const uint8_t *ip = d + ETH_LEN;
    cr_assert(f->len >= ETH_LEN + IP_LEN);
    cr_assert_eq(ip[0] >> 4, 4);
    size_t ihl = (ip[0] & 15u) * 4u, tot = get16(ip + 2);
    cr_assert(ihl >= IP_LEN && tot >= ihl && ETH_LEN + tot <= f->len, "bad IPv4 lengths");
    cr_assert_eq(h_csum(ip, ihl, 0), 0, "bad IPv4 header checksum");
    if (ip[9] != 6)
        return false;
    cr_assert_eq(get32(ip + 12), H_ADDR, "TCP from a foreign source address");
    cr_assert_eq(get32(ip + 16), H_PEER, "TCP to a foreign destination address");
    const uint8_t *t = ip + ihl;
    size_t l4 = tot - ihl;
    cr_assert(l4 >= 20);
    size_t thl = (t[12] >> 4) * 4u;
    cr_assert(thl >= 20 && thl <= l4, "bad TCP data offset");
    cr_assert_eq(h_csum(t, l4, pseudo_sum(H_ADDR, H_PEER, (uint16_t)l4)), 0, "bad TCP checksum");
    memset(s, 0, sizeof *s);
    s->sport = get16(t);
    s->dport = get16(t + 2);
    s->seq = get32(t + 4);
    s->ack = get32(t + 8);
    s->flags = t[13];
    s->win = get16(t + 14);
    s->urp = get16(t + 18);
    parse_opts(t + 20, thl - 20, s);
    s->len = l4 - thl;
    memcpy(h->rx, t + thl, s->len);
    s->data = h->rx;
    return true;
}

bool recv_seg(struct harness *h, struct seg *out)
{
    struct h_frame f;
    cr_assert(!h->qoverflow, "capture queue overflowed");
    while (pop_frame(h, &f)) {
        bool tcp = parse_frame(h, &f, out);
        free(f.data);
        if (tcp) {
            /* H_TRACE=1 in the environment prints every segment the stack sent. */
            if (getenv("H_TRACE")) {
                char b[200];
                seg_str(b, sizeof b, out);
                fprintf(stderr, "  %10.6f > %s\n", (double)(h->now - H_T0) / 1e9, b);
            }
            return true;
        }
    }
    return false;
}

static int flagstr(char *b, size_t n, int fl)
{
    return snprintf(b, n, "%s%s%s%s%s%s", fl & SYN ? "S" : "", fl & FIN ? "F" : "",
                    fl & RST ? "R" : "", fl & PSH ? "P" : "", fl & ACK ? "." : "",
                    fl & URG ? "U" : "");
}

static void seg_str(char *b, size_t n, const struct seg *s)
{
    char fl[8];
    flagstr(fl, sizeof fl, s->flags);
    snprintf(b, n, "[%s] seq=%u ack=%u win=%u len=%zu mss=%u ws=%d sackp=%d ts=%d(%u,%u) %u>%u",
             fl, s->seq, s->ack, s->win, s->len, s->mss, s->wscale - 1, s->sack_perm, s->ts,
             s->tsval, s->tsecr, s->sport, s->dport);
}

void expect_no_seg_at(struct harness *h, const char *file, int line)
{
    struct seg s;
    if (recv_seg(h, &s)) {
        char b[200];
        seg_str(b, sizeof b, &s);
        cr_assert_fail("%s:%d: expected no segment, got %s", file, line, b);
    }
}

#define CHECK(field, fmt)                                                                      \
    cr_assert(m->field == -1 || m->field == (int64_t)s.field,                                 \
              "%s:%d: " #field " is " fmt ", want %lld; got %s", file, line, s.field,         \
              (long long)m->field, b)

struct seg h_expect_seg(struct harness *h, const struct seg_match *m, const char *file, int line)
{
    struct seg s;
    char b[200];
    cr_assert(recv_seg(h, &s), "%s:%d: expected a segment, none was sent", file, line);
    seg_str(b, sizeof b, &s);
    if (m->flags != -1) {
        int mask = (m->flags & PSH) ? 0xFF : (0xFF & ~PSH);
        char want[8];
        flagstr(want, sizeof want, m->flags);
        cr_assert((s.flags & mask) == (m->flags & mask), "%s:%d: flags want [%s]; got %s", file,
                  line, want, b);
    }
    CHECK(seq, "%u");
    CHECK(ack, "%u");
    CHECK(win, "%u");
    CHECK(len, "%zu");
    CHECK(mss, "%u");
    CHECK(wscale, "%d");
    CHECK(sack_perm, "%d");
    CHECK(ts, "%d");
    CHECK(tsval, "%u");
    CHECK(tsecr, "%u");
    CHECK(sport, "%u");
    CHECK(dport, "%u");
    if (m->data) {
        cr_assert(m->len >= 0, "%s:%d: .data needs .len", file, line);
        cr_assert(memcmp(s.data, m->data, (size_t)m->len) == 0, "%s:%d: payload differs; got %s",
                  file, line, b);
    }
    return s;
}

/* ---------------------------------------------------------------- time */

void h_advance(struct harness *h, uint64_t ns)
{
    uint64_t target = h->now + ns;
    for (unsigned i = 0; i < 1000000; i++) {
        uint64_t d = tcpsm_stack_next_deadline(h->st);
        if (d > target) {
            h->now = target;
            return;
        }
        if (d > h->now)
            h->now = d;
        tcpsm_stack_timers(h->st, h->now);
#ifdef H_AUDIT_EACH
        h_audit(h, __FILE__, __LINE__);
#endif
    }
    cr_assert_fail("timers never settle (deadline stuck at %llu, now %llu)",
                   (unsigned long long)tcpsm_stack_next_deadline(h->st),
                   (unsigned long long)h->now);
}

uint64_t h_wait_seg(struct harness *h, uint64_t limit)
{
    uint64_t start = h->now, target = h->now + limit;
    for (unsigned i = 0; i < 1000000; i++) {
        if (h->qlen)
            return h->now - start;
        uint64_t d = tcpsm_stack_next_deadline(h->st);
        if (d > target) {
            h->now = target;
            return UINT64_MAX;
        }
        if (d > h->now)
            h->now = d;
        tcpsm_stack_timers(h->st, h->now);
    }
    cr_assert_fail("timers never settle");
    return UINT64_MAX;
}

bool h_step(struct harness *h, uint64_t limit)
{
    uint64_t d = tcpsm_stack_next_deadline(h->st);
    if (d == UINT64_MAX || d > h->now + limit)
        return false;
    if (d > h->now)
        h->now = d;
    tcpsm_stack_timers(h->st, h->now);
    return true;
}

/* ---------------------------------------------------------------- life cycle */

void h_default_config(struct tcpsm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->addr = H_ADDR;
    cfg->prefix_len = 24;
    memcpy(cfg->mac, H_MAC, 6);
    cfg->secret[0] = 0x0123456789abcdefull;
    cfg->secret[1] = 0xfedcba9876543210ull;
    cfg->sndbuf = H_BUF;
    cfg->rcvbuf = H_BUF;
    cfg->msl_ms = 30000;
}

struct harness *h_new(const struct tcpsm_config *cfg)
{
    struct harness *h = calloc(1, sizeof *h);
    cr_assert_not_null(h);
    if (cfg)
        h->cfg = *cfg;
    else
        h_default_config(&h->cfg);
    h->dev.ops = &cap_ops;
    h->dev.mtu = 1500;
    h->dev.features = 0;
    h->dev.priv = h;
    h->now = H_T0;
    h->risn = H_RISN;
    h->st = tcpsm_stack_new(&h->cfg, &h->dev, h->now);
    cr_assert_not_null(h->st, "tcpsm_stack_new failed");
    /* Teach the stack the peer's MAC: an ARP request from the peer for the
     * stack's address (RFC 826: the target merges the sender); swallow the reply. */
    send_arp(h, 1, (const uint8_t[6]){ 0 }, H_ADDR);
    h_drain(h);
    return h;
}

/* Every invariant the repair after a dead lock holder relies on
 * (tcpsm_stack_audit) holds between operations: checked as each test's
 * stack goes (and after each input and timer pass with H_AUDIT_EACH). */
void h_audit(struct harness *h, const char *file, int line)
{
    char why[256];
    unsigned f = tcpsm_stack_audit(h->st, why, sizeof why);
    cr_assert_eq(f, 0, "%s:%d: stack audit: %u faults: %s", file, line, f, why);
}

void h_free(struct harness *h)
{
    if (!h)
        return;
    h_audit(h, __FILE__, __LINE__);
    tcpsm_stack_free(h->st);
    h_drain(h);
    free(h);
}

void h_assert_state_at(struct tcpsm_sock *sk, int want, const char *file, int line)
{
    cr_assert_not_null(sk, "%s:%d: no socket", file, line);
    int got = tcpsm_sock_state(sk);
    cr_assert_eq(got, want, "%s:%d: state %s, want %s", file, line, tcpsm_state_name(got),
                 tcpsm_state_name(want));
}

/* ---------------------------------------------------------------- fixtures */

void sock_listen(struct harness *h)
{
    cr_assert_eq(tcpsm_sock_new(h->st, &h->lsk), 0);
    cr_assert_eq(tcpsm_sock_bind(h->lsk, 0, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_listen(h->lsk, 8), 0);
    ASSERT_STATE(h->lsk, TCPSM_LISTEN);
    expect_no_seg(h);
}

void sock_syn_sent(struct harness *h)
{
    cr_assert_eq(tcpsm_sock_new(h->st, &h->sk), 0);
    cr_assert_eq(tcpsm_sock_bind(h->sk, 0, H_LPORT), 0);
    cr_assert_eq(tcpsm_sock_connect(h->sk, H_PEER, H_RPORT, h->now), -EINPROGRESS);
    struct seg s = EXPECT_SEG(h, .flags = SYN, .ack = 0, .len = 0, .sport = H_LPORT,
                              .dport = H_RPORT);
    cr_assert(s.mss > 0, "SYN without an MSS option");
    h->lisn = s.seq;
    h->lmss = s.mss;
    h->lseq = s.seq + 1;
    h->rseq = h->risn;
    ASSERT_STATE(h->sk, TCPSM_SYN_SENT);
}

void sock_syn_received(struct harness *h)
{
    sock_listen(h);
    SEND(h, .flags = SYN, .seq = h->risn, .win = H_RWIN, .mss = H_RMSS);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = h->risn + 1, .len = 0,
                              .sport = H_LPORT, .dport = H_RPORT, .wscale = 0, .ts = 0);
    cr_assert(s.mss > 0, "SYN+ACK without an MSS option");
    h->lisn = s.seq;
    h->lmss = s.mss;
    h->lseq = s.seq + 1;
    h->rseq = h->risn + 1;
    h->lwin = s.win;
    h->sk = NULL;
    cr_assert_eq(tcpsm_stack_nsocks(h->st), 2);
}

void sock_established(struct harness *h)
{
    sock_syn_sent(h);
    SEND(h, .flags = SYN | ACK, .seq = h->risn, .ack = h->lseq, .win = H_RWIN, .mss = H_RMSS);
    h->rseq = h->risn + 1;
    struct seg s = EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    h->lwin = s.win;
    cr_assert(h->lwin > 0, "zero window after the handshake");
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
}

void h_peer_data(struct harness *h, const void *data, uint32_t len)
{
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = data,
         .len = len);
    h->rseq += len;
}

void sock_established_with(struct harness *h, const struct seg *synack)
{
    sock_syn_sent(h);
    struct seg s = *synack;
    s.flags = SYN | ACK;
    s.seq = h->risn;
    s.ack = h->lseq;
    s.win = H_RWIN;
    s.mss = H_RMSS;
    send_seg(h, &s);
    h->rseq = h->risn + 1;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
    cr_assert_eq(tcpsm_sock_setopt(h->sk, TCPSM_OPT_NODELAY, 1), 0);
}

void h_no_quickack(struct harness *h)
{
    h->sk->quickacks = 0;
}

void sock_established_passive(struct harness *h)
{
    sock_syn_received(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    cr_assert_eq(tcpsm_sock_accept(h->lsk, &h->sk), 0);
    ASSERT_STATE(h->sk, TCPSM_ESTABLISHED);
}

void sock_fin_wait_1(struct harness *h)
{
    sock_established(h);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    h->lseq++;
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_1);
}

void sock_fin_wait_2(struct harness *h)
{
    sock_fin_wait_1(h);
    SEND(h, .flags = ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    expect_no_seg(h);
    ASSERT_STATE(h->sk, TCPSM_FIN_WAIT_2);
}

void sock_close_wait(struct harness *h)
{
    sock_established(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    ASSERT_STATE(h->sk, TCPSM_CLOSE_WAIT);
}

void sock_closing(struct harness *h)
{
    sock_fin_wait_1(h);
    /* The remote's FIN crossed ours: it does not acknowledge our FIN. */
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq - 1, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    ASSERT_STATE(h->sk, TCPSM_CLOSING);
}

void sock_last_ack(struct harness *h)
{
    sock_close_wait(h);
    cr_assert_eq(tcpsm_sock_shutdown(h->sk, 1, h->now), 0);
    EXPECT_SEG(h, .flags = FIN | ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    h->lseq++;
    ASSERT_STATE(h->sk, TCPSM_LAST_ACK);
}

void sock_time_wait(struct harness *h)
{
    sock_fin_wait_2(h);
    SEND(h, .flags = FIN | ACK, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq++;
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = 0, .win = h->lwin);
    ASSERT_STATE(h->sk, TCPSM_TIME_WAIT);
}

void h_app_send(struct harness *h, const void *buf, size_t len)
{
    cr_assert_eq(tcpsm_sock_send(h->sk, buf, len, h->now), (ssize_t)len);
    EXPECT_SEG(h, .flags = ACK, .seq = h->lseq, .ack = h->rseq, .len = (int64_t)len, .data = buf);
    h->lseq += (uint32_t)len;
}

void h_app_recv(struct harness *h, void *buf, size_t len)
{
    cr_assert_eq(tcpsm_sock_recv(h->sk, buf, len, 0, h->now), (ssize_t)len);
}

size_t h_sack_opt(uint8_t *buf, unsigned n, const uint32_t (*blk)[2])
{
    buf[0] = 1;
    buf[1] = 1;
    buf[2] = 5;
    buf[3] = (uint8_t)(2 + 8 * n);
    for (unsigned i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) {
            uint32_t v = blk[i][j];
            uint8_t *p = buf + 4 + 8 * i + 4 * j;
            p[0] = (uint8_t)(v >> 24);
            p[1] = (uint8_t)(v >> 16);
            p[2] = (uint8_t)(v >> 8);
            p[3] = (uint8_t)v;
        }
    return 4 + 8 * n;
}

void h_ack_sack(struct harness *h, uint32_t ack, uint32_t l, uint32_t r)
{
    uint8_t o[40];
    uint32_t blk[1][2] = { { l, r } };
    if (l == r)
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = ack, .win = H_RWIN);
    else
        SEND(h, .flags = ACK, .seq = h->rseq, .ack = ack, .win = H_RWIN, .raw_opts = o,
             .raw_optlen = h_sack_opt(o, 1, blk));
}
