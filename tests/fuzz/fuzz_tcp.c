/* libFuzzer target: one TCP connection driven into a chosen state, then the
 * fuzz input played as a sequence of segments from the peer (and of calls
 * from the application), with invariants checked after every step.
 *
 * Unlike fuzz_input.c (raw frames: mostly the parsers), the segments here
 * are built by the harness with valid checksums and with sequence and
 * acknowledgment numbers relative to the connection (the peer's next
 * sequence number, the stack's SND.NXT as last seen), so most mutations stay
 * near the window and reach the state machine's deep paths.
 *
 * Input: byte 0 = scenario (low 3 bits: the state to reach, see setup(); 6
 * and 7 as 0 and 1 with SO_OOBINLINE;
 * bit 3: timestamps, bit 4: SACK-permitted, bit 5: window scaling, bit 6:
 * a small stack-wide memory cap, bit 7: the peer's MSS 536), then records of
 * REC bytes (see play()). Each input starts from a copy of its start state,
 * built once per process (see start()): the stack lives in an arena
 * (fuzz_arena.c), so no state leaks from one input to the next, and the
 * stack is freed at the end of every input, so leaks are checked per input.
 *
 * Invariants (abort() on violation, so libFuzzer records the input):
 *  - every byte the application reads is the byte the peer sent at that
 *    stream offset (the peer's stream is a fixed pattern of the offset), and
 *    never beyond what the peer sent; only an urgent byte (out of band) is
 *    ever passed over;
 *  - every byte the stack sends is the byte the application wrote at that
 *    stream offset (retransmissions included);
 *  - every frame out has a valid IPv4 header and TCP checksum;
 *  - the stack's buffer memory stays within its cap plus the bytes it
 *    promised the application (the send queues) and one segment;
 *  - once the stack is freed, the arena holds no block of it (no leak);
 *  - ASan/UBSan: no memory error, no undefined behaviour. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "fuzz_arena.h"
#include "ipv4_frag.h"
#include "stack.h"
#include "addr.h"
#include "tcp_int.h"
#include "tcpsm/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ADDR   0xc6120001u      /* 198.18.0.1: the stack */
#define PEER   0xc6120002u      /* 198.18.0.2: the fuzzed peer */
#define LPORT  8080
#define RPORT  49152
#define RISN   0x7ffffff0u      /* the peer's ISN: its stream wraps past 2^31 early */
#define BUF    16384            /* sndbuf and rcvbuf of the stack */
#define REC    12               /* bytes per record */

static const uint8_t MAC[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t PMAC[6] = { 0x02, 0, 0, 0, 0, 0x02 };

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_tcp: invariant failed: %s (%s:%d)\n", #c,       \
                    __FILE__, __LINE__);                                          \
            abort();                                                              \
        }                                                                         \
    } while (0)

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

/* The per-byte loops of the harness (filling and checking payloads) carry no
 * coverage instrumentation: a comparison hook per byte was a fifth of the
 * time per input and its feedback says nothing about the stack. ASan still
 * checks every access. */
#define NOCOV __attribute__((no_sanitize("coverage"), noinline))

/* The two byte streams: a function of the stream offset, so any byte can be
 * checked wherever it turns up. Both repeat (with periods 2^16 and 2^17),
 * so each is a table one period long plus the longest payload, and a fill
 * or a check is a copy or a compare at the offset modulo the period. */
#define PEER_PERIOD (1u << 16)
#define APP_PERIOD  (1u << 17)
#define MAXRUN      4096u           /* the longest payload filled or checked at once */
static uint8_t peer_tab[PEER_PERIOD + MAXRUN], app_tab[APP_PERIOD + MAXRUN];

static uint8_t peer_byte(uint32_t off) { return (uint8_t)(off * 7u + (off >> 8) + 3u); }
static uint8_t app_byte(uint32_t off) { return (uint8_t)(off * 13u + (off >> 9) + 101u); }

/* The checksum of a payload that is a stretch of a stream, from prefix
 * sums (the checksum is a sum: the stretch's is a difference), instead of
 * a pass over its bytes: sum[0][i] adds the bytes before table offset i
 * as 16-bit words that start at an even offset, sum[1][i] at an odd one.
 * Kept mod 2^32: a stretch of at most MAXRUN bytes sums to < 2^32, so the
 * difference is exact. The harness summed every payload twice (the
 * peer's to build its segments, the stack's to check them): ~7 % of an
 * execution's instructions. */
static uint32_t peer_sum[2][PEER_PERIOD + MAXRUN + 1], app_sum[2][APP_PERIOD + MAXRUN + 1];

static void sums_init(const uint8_t *tab, uint32_t n, uint32_t *even, uint32_t *odd)
{
    even[0] = odd[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        even[i + 1] = even[i] + ((uint32_t)tab[i] << ((i & 1) ? 0 : 8));
        odd[i + 1] = odd[i] + ((uint32_t)tab[i] << ((i & 1) ? 8 : 0));
    }
}

static void streams_init(void)
{
    for (uint32_t i = 0; i < sizeof(peer_tab); i++)
        peer_tab[i] = peer_byte(i);
    for (uint32_t i = 0; i < sizeof(app_tab); i++)
        app_tab[i] = app_byte(i);
    sums_init(peer_tab, sizeof(peer_tab), peer_sum[0], peer_sum[1]);
    sums_init(app_tab, sizeof(app_tab), app_sum[0], app_sum[1]);
}

static uint32_t peer_csum(uint32_t off, uint32_t len, uint32_t init);
static uint32_t app_csum(uint32_t off, uint32_t len, uint32_t init);

/* The sums against csum_partial over the bytes, at both parities, short
 * and long stretches and across the period (once per process). */
static void sums_check(void)
{
    uint32_t x = 1;
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t off = x >> 7, len = i < 64 ? (uint32_t)i : (x >> 3) % (MAXRUN + 1);
        uint32_t init = i & 1 ? x : 0;
        if (csum_fold(peer_csum(off, len, init)) !=
                csum_fold(csum_partial(peer_tab + (off & (PEER_PERIOD - 1)), len, init)) ||
            csum_fold(app_csum(off, len, init)) !=
                csum_fold(csum_partial(app_tab + (off & (APP_PERIOD - 1)), len, init))) {
            fprintf(stderr, "fuzz_tcp: stream sums wrong at %u+%u\n", off, len);
            abort();
        }
    }
}

/* csum_partial(stretch, len, init) for the len <= MAXRUN bytes of a
 * stream's table from offset at, summed as data that starts at an even
 * offset (its first byte the high one). */
static uint32_t stretch_csum(const uint32_t *even, const uint32_t *odd, uint32_t at,
                             uint32_t len, uint32_t init)
{
    const uint32_t *s = (at & 1) ? odd : even;
    uint64_t v = (uint64_t)init + (uint32_t)(s[at + len] - s[at]);
    v = (v & 0xffffffffu) + (v >> 32);
    return (uint32_t)(v + (v >> 32));
}

static uint32_t peer_csum(uint32_t off, uint32_t len, uint32_t init)
{
    CHECK(len <= MAXRUN);
    uint32_t at = off & (PEER_PERIOD - 1);
    return stretch_csum(peer_sum[0], peer_sum[1], at, len, init);
}

static uint32_t app_csum(uint32_t off, uint32_t len, uint32_t init)
{
    CHECK(len <= MAXRUN);
    uint32_t at = off & (APP_PERIOD - 1);
    return stretch_csum(app_sum[0], app_sum[1], at, len, init);
}

static const uint8_t *peer_at(uint32_t off, uint32_t len)
{
    CHECK(len <= MAXRUN);
    return peer_tab + (off & (PEER_PERIOD - 1));
}

static const uint8_t *app_at(uint32_t off, uint32_t len)
{
    CHECK(len <= MAXRUN);
    return app_tab + (off & (APP_PERIOD - 1));
}

/* p[0..len) is the stream from its offset (no comparison hooks: their
 * feedback says nothing about the stack). */
NOCOV static bool stream_is(const uint8_t *p, uint32_t len, const uint8_t *stream)
{
    uint64_t diff = 0;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t a, b;
        __builtin_memcpy(&a, p + i, 8);
        __builtin_memcpy(&b, stream + i, 8);
        diff |= a ^ b;
    }
    for (; i < len; i++)
        diff |= (uint64_t)(p[i] ^ stream[i]);
    return diff == 0;
}

/* The stack's memcmp: run.sh compiles the stack with -Dmemcmp=fuzz_memcmp.
 * Under -fsanitize=fuzzer every memcmp call reaches libFuzzer's
 * interceptor, which records the operands of each unequal comparison for
 * its mutations: here MAC and IP addresses and 4-tuples that the harness
 * builds, nothing a mutation can use, and ~4 % of the time of an
 * execution in perf (the comparison hooks are off for the same reason). */
int fuzz_memcmp(const void *a, const void *b, size_t n);
NOCOV int fuzz_memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {        /* up to the first word that differs */
        uint64_t x, y;
        __builtin_memcpy(&x, p + i, 8);
        __builtin_memcpy(&y, q + i, 8);
        if (x != y)
            break;
    }
    for (; i < n; i++)
        if (p[i] != q[i])
            return p[i] - q[i];
    return 0;
}

/* ---------------------------------------------------------------- the world */

static struct world {
    struct tcpsm_stack *st;
    struct tcpsm_netdev dev;
    uint64_t now;
    bool arp_pending;

    struct tcpsm_sock *lsk, *sk;        /* listener, the connection under test */
    uint16_t rport;                     /* the peer's port of the connection under test */
    bool have_lisn;
    uint32_t lisn;                      /* the stack's ISN */
    uint32_t lnxt;                      /* highest seq+len the stack sent */
    uint32_t rnxt;                      /* the peer's next sequence number */
    uint32_t rmax;                      /* highest seq+len the peer sent (its stream's end) */
    uint32_t tsval, tsrecent;           /* the peer's clock; the stack's last TSval */
    uint32_t app_sent, app_read;
    uint32_t app_sending;               /* bytes of the send() call under way */
    bool app_oob;                       /* the next send is MSG_OOB */        /* stream offsets: written by the app, read by it */
    bool ts, sack, ws;
    bool inl;                           /* SO_OOBINLINE (scenarios 6 and 7) */
    bool stale;                         /* the stack restarted the connection: data unchecked */
    bool taken;                         /* the application accepted its connection */
    size_t mem_max;
} w;

static unsigned cap_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n);
static const struct tcpsm_netdev_ops ops = { .send = cap_send };

static bool check_tcp_data(const uint8_t *t, size_t thl, uint32_t len, uint32_t *off);

/* The stack's side of a TCP segment it sent to the connection under test. */
static void check_tcp_out(const uint8_t *ip, size_t ihl, size_t tot)
{
    const uint8_t *t = ip + ihl;
    size_t l4 = tot - ihl;
    CHECK(l4 >= 20);
    uint32_t src = get32(ip + 12), dst = get32(ip + 16);
    CHECK(src == ADDR && dst == PEER);
    size_t thl = (size_t)(t[12] >> 4) * 4;
    CHECK(thl >= 20 && thl <= l4);
    /* the checksum: the header's, then the payload's, from the stream's
     * sums when check_tcp_data found it to be the application's bytes */
    uint32_t sum = csum_partial(t, thl, csum_pseudo(src, dst, 6, (uint16_t)l4));
    uint32_t off, len = (uint32_t)(l4 - thl);
    if (check_tcp_data(t, thl, len, &off) && len <= MAXRUN)
        sum = app_csum(off, len, sum);
    else
        sum = csum_partial(t + thl, len, sum);
    CHECK(csum_fold(sum) == 0);
}

/* The stack's segment to the peer (header of thl bytes, len bytes of
 * payload): its options are well formed, its data is the application's at
 * its offset, and was written. True if the payload was checked to be the
 * application's stream at offset *off. */
static bool check_tcp_data(const uint8_t *t, size_t thl, uint32_t len, uint32_t *off)
{
    uint8_t fl = t[13];
    uint32_t seq = get32(t + 4);
    /* options: well formed, and remember the stack's TSval for our TSecr */
    for (size_t i = 20; i < thl;) {
        uint8_t k = t[i];
        if (k == 0)
            break;
        if (k == 1) {
            i++;
            continue;
        }
        CHECK(i + 1 < thl && t[i + 1] >= 2 && i + t[i + 1] <= thl);
        if (k == 8 && t[i + 1] == 10)
            w.tsrecent = get32(t + i + 2);
        i += t[i + 1];
    }
    if (get16(t) != LPORT || get16(t + 2) != w.rport)
        return false;                   /* another connection (listener scenario) */
    if (fl & TCPSM_SYN) {
        /* a new incarnation (a SYN the fuzzer sent to TIME-WAIT or after a
         * reset): its bytes are no longer the tracked stream */
        if (w.have_lisn && seq != w.lisn)
            w.stale = true;
        if (!w.have_lisn) {
            w.have_lisn = true;
            w.lisn = seq;
            w.lnxt = seq + 1;
        }
        return false;
    }
    if (!w.have_lisn || w.stale || (fl & TCPSM_RST))
        return false;
    /* a new incarnation without a SYN-ACK of its own: a SYN cookie the
     * peer shifted (its MSS bits are malleable, as Linux's) made a new TCB */
    struct tcpsm_addr la = addr_from_v4(ADDR), ra = addr_from_v4(PEER);
    struct tcpsm_sock *tcb = tcp_ehash_find(w.st->tcp, &la, LPORT, &ra, w.rport);
    if (tcb && tcb->iss != w.lisn) {
        w.stale = true;
        return false;
    }
    /* every data byte is the application's byte at that offset */
    for (uint32_t at = 0; at < len; at += MAXRUN) {
        uint32_t n = len - at < MAXRUN ? len - at : MAXRUN;
        CHECK(stream_is(t + thl + at, n, app_at(seq - (w.lisn + 1) + at, n)));
    }
    /* data only from what was written; a pure ACK may sit past the FIN, or
     * one before SND.UNA (a keepalive, RFC 9293 3.8.4) */
    if (len)
        CHECK(seq + len - (w.lisn + 1) <= w.app_sent + w.app_sending);
    else
        CHECK(seq - w.lisn <= w.app_sent + w.app_sending + 2u);
    uint32_t end = seq + len + ((fl & TCPSM_FIN) ? 1u : 0u);
    if ((int32_t)(end - w.lnxt) > 0)
        w.lnxt = end;
    *off = seq - (w.lisn + 1);
    return true;
}

static void check_frame(const uint8_t *d, uint32_t len)
{
    CHECK(len >= 14);
    uint16_t type = get16(d + 12);
    if (type == 0x0806) {
        CHECK(len >= 42);
        if (get16(d + 20) == 1 && get32(d + 38) == PEER)
            w.arp_pending = true;
        return;
    }
    if (type != 0x0800)
        return;
    CHECK(memcmp(d + 6, MAC, 6) == 0);
    const uint8_t *ip = d + 14;
    CHECK(len >= 34 && ip[0] >> 4 == 4);
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = get16(ip + 2);
    CHECK(ihl >= 20 && tot >= ihl && 14 + tot <= len);
    CHECK(csum_fold(csum_partial(ip, ihl, 0)) == 0);
    if (ip[9] == 6)
        check_tcp_out(ip, ihl, tot);
}

/* FUZZ_TCP_VERIFY: a hash of everything the stack sent (and its counters at
 * the end), to compare a run from a snapshot with a run from scratch. */
static bool verify;
static uint64_t out_hash;

NOCOV static void hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        out_hash = (out_hash ^ b[i]) * 0x100000001b3ull;
}

static unsigned cap_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    (void)dev;
    for (unsigned i = 0; i < n; i++) {
        check_frame(f[i].data, f[i].len);
        if (verify)
            hash(f[i].data, f[i].len);
    }
    return n;
}

/* Each frame goes in from the end of a buffer whose other bytes are
 * poisoned, so ASan sees any read past its length (or before it) as it
 * would with a heap copy of the exact length, without an allocation per
 * frame; it is poisoned again once the stack returns (a freed copy). */
#define FRAME_ROOM 8192
static uint8_t frame_room[FRAME_ROOM] __attribute__((aligned(16)));

static void input(const uint8_t *frame, size_t len)
{
    uint8_t pad[60];
    if (len < sizeof pad) {
        memset(pad, 0, sizeof pad);
        memcpy(pad, frame, len);
        frame = pad;
        len = sizeof pad;
    }
    CHECK(len <= FRAME_ROOM - 16);
    uint8_t *c = frame_room + ((FRAME_ROOM - len) & ~(size_t)7);
    ARENA_UNPOISON(frame_room, FRAME_ROOM);
    memcpy(c, frame, len);
    ARENA_POISON(frame_room, (size_t)(c - frame_room));
    ARENA_POISON(c + len, FRAME_ROOM - (size_t)(c - frame_room) - len);
    struct tcpsm_frame fr = { .data = c, .len = (uint32_t)len };
    tcpsm_stack_input(w.st, &fr, 1, w.now);
    ARENA_POISON(frame_room, FRAME_ROOM);   /* as freed: the stack keeps no pointer into it */
}

/* Answers the stack's ARP requests for the peer (outside its send callback). */
static void arp_answer(void)
{
    while (w.arp_pending) {
        w.arp_pending = false;
        uint8_t f[42];
        memcpy(f, MAC, 6);
        memcpy(f + 6, PMAC, 6);
        put16(f + 12, 0x0806);
        uint8_t *a = f + 14;
        put16(a, 1);
        put16(a + 2, 0x0800);
        a[4] = 6;
        a[5] = 4;
        put16(a + 6, 2);
        memcpy(a + 8, PMAC, 6);
        put32(a + 14, PEER);
        memcpy(a + 18, MAC, 6);
        put32(a + 24, ADDR);
        input(f, sizeof f);
    }
}

struct seg {
    uint8_t flags;
    uint32_t seq, ack;
    uint16_t win, urp, sport;
    uint32_t len;                       /* payload: the peer's stream at seq */
    const uint8_t *opts;                /* raw option bytes (padded here) */
    size_t olen;
};

/* The connection under test's TCB, accepted or not; NULL once the
 * application closed it or the stack started a new incarnation. */
static struct tcpsm_sock *conn(void)
{
    if (w.sk)
        return w.sk;
    if (w.taken || w.stale || !w.have_lisn)
        return NULL;
    struct tcpsm_addr la = addr_from_v4(ADDR), ra = addr_from_v4(PEER);
    struct tcpsm_sock *tcb = tcp_ehash_find(w.st->tcp, &la, LPORT, &ra, w.rport);
    return tcb && tcb->iss == w.lisn ? tcb : NULL;
}

static void send_seg(const struct seg *s)
{
    static uint8_t f[14 + 20 + 60 + 4096];
    size_t olen = s->olen > 40 ? 40 : s->olen;
    size_t oplen = (olen + 3) & ~(size_t)3;
    uint32_t len = s->len > 4000 ? 4000 : s->len;
    size_t thl = 20 + oplen, l4 = thl + len, tot = 20 + l4;
    memcpy(f, MAC, 6);
    memcpy(f + 6, PMAC, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    memset(ip, 0, 20);
    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)tot);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    put32(ip + 12, PEER);
    put32(ip + 16, ADDR);
    put16(ip + 10, csum_fold(csum_partial(ip, 20, 0)));
    uint8_t *t = ip + 20;
    put16(t, s->sport ? s->sport : w.rport);
    put16(t + 2, LPORT);
    put32(t + 4, s->seq);
    put32(t + 8, s->ack);
    t[12] = (uint8_t)(thl / 4 << 4);
    t[13] = s->flags;
    put16(t + 14, s->win);
    put16(t + 16, 0);
    put16(t + 18, s->urp);
    memset(t + 20, 0, oplen);
    if (olen)
        memcpy(t + 20, s->opts, olen);
    memcpy(t + thl, peer_at(s->seq - (RISN + 1), len), len);
    uint32_t sum = csum_partial(t, thl, csum_pseudo(PEER, ADDR, 6, (uint16_t)l4));
    put16(t + 16, csum_fold(peer_csum(s->seq - (RISN + 1), len, sum)));
    /* A newer urgent pointer while the reader sits on the unread urgent
     * byte drops that byte (tcp_urg.c, as Linux's tcp_check_urg): the
     * reader's position moves on by one, once per such segment, so any
     * number of bytes between two reads. */
    struct tcpsm_sock *c = NULL;
    uint32_t copied = 0;
    if ((s->flags & TCPSM_URG) && (s->sport == 0 || s->sport == w.rport) && (c = conn()))
        copied = tcp_copied_seq(c);
    input(f, 14 + tot);
    if (c && conn() == c) {             /* the arena never reuses a freed TCB's address */
        uint32_t d = tcp_copied_seq(c) - copied;
        CHECK(d <= 1);
        w.app_read += d;
    }
    if ((s->sport == 0 || s->sport == w.rport) && len) {
        uint32_t end = s->seq + len;
        if ((int32_t)(end - w.rmax) > 0)
            w.rmax = end;           /* the furthest byte of the stream sent */
    }
    arp_answer();
}

/* ICMP type 3 code 4 from 198.18.0.254 quoting a segment of ours to the
 * peer with sequence number seq (RFC 1191; validated by the stack). */
static void icmp_frag_needed(uint32_t seq, uint16_t mtu)
{
    uint8_t f[14 + 20 + 8 + 20 + 8];
    memset(f, 0, sizeof f);
    memcpy(f, MAC, 6);
    memcpy(f + 6, PMAC, 6);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    put16(ip + 2, 20 + 8 + 20 + 8);
    ip[8] = 64;
    ip[9] = 1;
    put32(ip + 12, 0xc61200feu);
    put32(ip + 16, ADDR);
    put16(ip + 10, csum_fold(csum_partial(ip, 20, 0)));
    uint8_t *ic = ip + 20;
    ic[0] = 3;
    ic[1] = 4;
    put16(ic + 6, mtu);
    uint8_t *q = ic + 8;
    q[0] = 0x45;
    put16(q + 2, 1500);
    put16(q + 6, 0x4000);
    q[8] = 64;
    q[9] = 6;
    put32(q + 12, ADDR);
    put32(q + 16, PEER);
    put16(q + 10, csum_fold(csum_partial(q, 20, 0)));
    put16(q + 20, LPORT);
    put16(q + 22, w.rport);
    put32(q + 24, seq);
    put16(ic + 2, csum_fold(csum_partial(ic, 8 + 20 + 8, 0)));
    input(f, sizeof f);
    arp_answer();
}

/* Options of a handshake segment, or the timestamp of a later one. */
static size_t opts_syn(uint8_t *o, uint16_t mss)
{
    size_t n = 0;
    o[n++] = 2; o[n++] = 4; put16(o + n, mss); n += 2;
    if (w.sack) { o[n++] = 4; o[n++] = 2; }
    if (w.ts) { o[n++] = 8; o[n++] = 10; put32(o + n, w.tsval); put32(o + n + 4, 0); n += 8; }
    if (w.ws) { o[n++] = 1; o[n++] = 3; o[n++] = 3; o[n++] = 7; }
    return n;
}

static size_t opts_ts(uint8_t *o)
{
    if (!w.ts)
        return 0;
    o[0] = 1; o[1] = 1; o[2] = 8; o[3] = 10;
    put32(o + 4, w.tsval);
    put32(o + 8, w.tsrecent);
    return 12;
}

/* ---------------------------------------------------------------- the application */

static void app_recv(size_t max, int flags)
{
    if (!w.sk)
        return;
    uint8_t buf[4096];
    if (max > sizeof buf)
        max = sizeof buf;
    /* Urgent data out of band: a read on the mark passes over the urgent
     * byte, and a newer pointer drops an unread one at the reader's
     * position (tcp_urg.c; counted in send_seg): the application's stream
     * lacks those bytes. */
    uint32_t at = tcp_copied_seq(w.sk) - (RISN + 1);
    CHECK(at - w.app_read <= 1);
    w.app_read = at;
    uint32_t skip = tcpsm_sock_atmark(w.sk) && !w.inl && w.sk->rcvq.len ? 1 : 0;
    ssize_t n = tcpsm_sock_recv(w.sk, buf, max, flags, w.now);
    if (!(flags & TCPSM_MSG_PEEK))
        CHECK(tcp_copied_seq(w.sk) - (RISN + 1) == w.app_read + (n > 0 ? (uint32_t)n : 0) + skip);
    if (n <= 0) {
        if (!(flags & TCPSM_MSG_PEEK))
            w.app_read += skip;
        return;
    }
    CHECK(stream_is(buf, (uint32_t)n, peer_at(w.app_read + skip, (uint32_t)n)));
    if (!(flags & TCPSM_MSG_PEEK))
        w.app_read += skip;
    CHECK(w.app_read + (uint32_t)n <= w.rmax - (RISN + 1));
    if (!(flags & TCPSM_MSG_PEEK))
        w.app_read += (uint32_t)n;
}

static void app_send(size_t n)
{
    if (!w.sk)
        return;
    uint8_t buf[4096];
    if (n > sizeof buf)
        n = sizeof buf;
    memcpy(buf, app_at(w.app_sent, (uint32_t)n), n);
    w.app_sending = (uint32_t)n;
    ssize_t r = tcpsm_sock_sendf(w.sk, buf, n, w.app_oob ? TCPSM_MSG_OOB : 0, w.now);
    w.app_sending = 0;
    CHECK(r <= (ssize_t)n);
    if (r > 0)
        w.app_sent += (uint32_t)r;
    arp_answer();
}

static void app_accept(void)
{
    struct tcpsm_sock *c;
    while (w.lsk && tcpsm_sock_accept(w.lsk, &c) == 0) {
        uint16_t p;
        uint32_t a;
        if (tcpsm_sock_peer(c, &a, &p) == 0 && p == w.rport && !w.taken && !w.stale) {
            w.sk = c;
            tcpsm_sock_setopt(c, TCPSM_OPT_OOBINLINE, w.inl);
            w.taken = true;
        }
        else
            tcpsm_sock_close(c, w.now);
    }
}

static void advance(uint64_t ns)
{
    w.now += ns;
    w.tsval += (uint32_t)(ns / 1000000u);
    tcpsm_stack_timers(w.st, w.now);
    arp_answer();
}

static void check_mem(void)
{
    size_t max;
    size_t used = tcpsm_stack_mem(w.st, &max, NULL);
    /* the send queues are charged without a cap (what send() accepted);
     * the receive side may exceed it by one segment in flight */
    CHECK(used <= max + 2u * BUF + 8192u);
}

/* ---------------------------------------------------------------- scenarios */

/* The peer's SYN, the stack's SYN-ACK, the peer's ACK: ESTABLISHED. */
static void handshake_passive(uint16_t mss)
{
    uint8_t o[40];
    w.rport = RPORT;
    send_seg(&(struct seg){ .flags = TCPSM_SYN, .seq = RISN, .win = 65535, .opts = o,
                            .olen = opts_syn(o, mss) });
    advance(1000000);
    if (!w.have_lisn)
        return;
    send_seg(&(struct seg){ .flags = TCPSM_ACK, .seq = w.rnxt, .ack = w.lnxt, .win = 65535,
                            .opts = o, .olen = opts_ts(o) });
    app_accept();
}

static void handshake_active(uint16_t mss)
{
    uint8_t o[40];
    w.rport = RPORT;
    if (tcpsm_sock_new(w.st, &w.sk) < 0)
        abort();
    w.taken = true;
    tcpsm_sock_setopt(w.sk, TCPSM_OPT_OOBINLINE, w.inl);
    tcpsm_sock_setopt(w.sk, TCPSM_OPT_SNDBUF, BUF / 2);
    tcpsm_sock_setopt(w.sk, TCPSM_OPT_RCVBUF, BUF / 2);
    CHECK(tcpsm_sock_bind(w.sk, 0, LPORT) == 0);
    int rc = tcpsm_sock_connect(w.sk, PEER, RPORT, w.now);
    CHECK(rc == 0 || rc == -EINPROGRESS);
    arp_answer();
    if (!w.have_lisn)
        return;
    send_seg(&(struct seg){ .flags = TCPSM_SYN | TCPSM_ACK, .seq = RISN, .ack = w.lnxt,
                            .win = 65535, .opts = o, .olen = opts_syn(o, mss) });
    advance(1000000);
}

/* The peer's FIN (the stack's connection enters CLOSE-WAIT). */
static void peer_fin(void)
{
    uint8_t o[40];
    send_seg(&(struct seg){ .flags = TCPSM_FIN | TCPSM_ACK, .seq = w.rnxt, .ack = w.lnxt,
                            .win = 65535, .opts = o, .olen = opts_ts(o) });
    w.rnxt++;
}

static void setup(unsigned scen, uint16_t mss)
{
    uint8_t o[40];
    switch (scen) {
    case 0:                             /* ESTABLISHED, passive open */
    case 6:
        handshake_passive(mss);
        break;
    case 1:                             /* ESTABLISHED, active open */
    case 7:
        handshake_active(mss);
        break;
    case 2:                             /* LISTEN with half-open and unaccepted children */
        for (uint16_t i = 1; i <= 6; i++)
            send_seg(&(struct seg){ .flags = TCPSM_SYN, .seq = RISN + i * 1000u, .win = 65535,
                                    .sport = (uint16_t)(RPORT + i), .opts = o,
                                    .olen = opts_syn(o, mss) });
        handshake_passive(mss);         /* the connection under test, not yet accepted */
        if (w.sk) {
            /* handed back: the records decide when the application accepts */
        }
        break;
    case 3:                             /* FIN-WAIT-1 (then -2 once the FIN is ACKed) */
        handshake_passive(mss);
        app_send(100);
        if (w.sk)
            tcpsm_sock_shutdown(w.sk, 1, w.now);
        arp_answer();
        break;
    case 4:                             /* TIME-WAIT */
        handshake_active(mss);
        if (w.sk)
            tcpsm_sock_close(w.sk, w.now);
        w.sk = NULL;
        arp_answer();
        send_seg(&(struct seg){ .flags = TCPSM_ACK, .seq = w.rnxt, .ack = w.lnxt, .win = 65535,
                                .opts = o, .olen = opts_ts(o) });
        peer_fin();
        break;
    case 5:                             /* CLOSE-WAIT (LAST-ACK once the application closes) */
        handshake_passive(mss);
        peer_fin();
        break;
    }
}

/* One record:
 *  r[0]     TCP flags as sent (0xff: an ICMP frag-needed instead, quoting
 *           the ack below as our sequence number, the window as the MTU)
 *  r[1..2]  seq: signed offset from the peer's next sequence number, times
 *           2^(r[3] & 7) (0 and small values: in order and in window)
 *  r[3]     bits 3-4: ack base (0 the stack's highest seq sent, 1 its ISN +1,
 *           2 raw r[4..5] << 16, 3 as 0 minus 65536); bit 5: payload length
 *           times 16; bit 6: append a SACK block; bit 7: an urgent pointer
 *  r[4..5]  ack: signed offset from the base
 *  r[6..7]  window
 *  r[8]     payload length (bytes of the peer's stream at seq)
 *  r[9]     time step: low 6 bits in ms, times 250 if bit 6, then bit 7:
 *           the timestamp goes back 2^31 (PAWS)
 *  r[10]    application: low 3 bits = action, high bits = amount
 *  r[11]    low 2 bits: the segment's source port (0: the connection,
 *           else a listener child / stranger); bits 2-7: raw option bytes
 *           taken from the next record's start (count) */
static void play(const uint8_t *r, const uint8_t *next, size_t nextlen)
{
    uint8_t o[60];
    size_t olen = 0;
    int32_t soff = (int16_t)get16(r + 1);
    uint32_t seq = w.rnxt + (uint32_t)(soff * (1 << (r[3] & 7)));
    int32_t aoff = (int16_t)get16(r + 4);
    uint32_t ack;
    switch ((r[3] >> 3) & 3) {
    case 0: ack = w.lnxt + (uint32_t)aoff; break;
    case 1: ack = w.lisn + 1 + (uint32_t)aoff; break;
    case 2: ack = (uint32_t)get16(r + 4) << 16; break;
    default: ack = w.lnxt + (uint32_t)aoff - 65536u; break;
    }
    uint32_t len = r[8] * ((r[3] & 0x20) ? 16u : 1u);
    uint64_t step = (uint64_t)(r[9] & 63) * 1000000u * ((r[9] & 64) ? 250u : 1u);
    advance(step);
    if (w.ts) {
        uint32_t tv = (r[9] & 128) ? w.tsval - 0x80000000u : w.tsval;
        o[olen++] = 1; o[olen++] = 1; o[olen++] = 8; o[olen++] = 10;
        put32(o + olen, tv); put32(o + olen + 4, w.tsrecent);
        olen += 8;
    }
    if (r[3] & 0x40) {
        o[olen++] = 1; o[olen++] = 1; o[olen++] = 5; o[olen++] = 10;
        put32(o + olen, seq + len + (uint32_t)(r[6] << 4));
        put32(o + olen + 4, seq + len + (uint32_t)(r[6] << 4) + (uint32_t)(r[7] << 4) + 1);
        olen += 8;
    }
    size_t raw = (size_t)(r[11] >> 2);
    if (raw > nextlen)
        raw = nextlen;
    if (olen + raw > 40)
        raw = 40 - olen;
    memcpy(o + olen, next, raw);
    olen += raw;
    if (r[0] == 0xff) {
        /* all flags set: instead, ICMP "fragmentation needed" from a router
         * quoting our segment at ack (MTU from the window field) */
        icmp_frag_needed(ack, get16(r + 6));
        check_mem();
        return;
    }
    uint16_t ports[4] = { 0, (uint16_t)(RPORT + 1), (uint16_t)(RPORT + 3), 1 };
    struct seg s = { .flags = r[0], .seq = seq, .ack = ack, .win = get16(r + 6),
                     .urp = (r[3] & 0x80) ? (uint16_t)(r[8] + 1) : 0,
                     .sport = ports[r[11] & 3], .len = len, .opts = o, .olen = olen };
    send_seg(&s);
    /* an in-order segment moves the peer's next sequence number on */
    if (!(r[0] & TCPSM_RST) && s.sport == 0 && soff == 0) {
        w.rnxt += len + ((r[0] & TCPSM_SYN) ? 1u : 0u) + ((r[0] & TCPSM_FIN) ? 1u : 0u);
    }
    unsigned amount = r[10] >> 3;
    switch (r[10] & 7) {
    case 0: break;
    case 1: app_recv((size_t)amount * 64 + 1, 0); break;
    case 2:
        w.app_oob = amount & 1;
        app_send((size_t)amount * 64 + 1);
        w.app_oob = false;
        break;
    case 3:
        if (amount & 1) {
            uint8_t c;
            if (w.sk)
                tcpsm_sock_recv(w.sk, &c, 1, TCPSM_MSG_OOB | ((amount & 2) ? TCPSM_MSG_PEEK : 0),
                                w.now);
        } else {
            app_recv(4096, TCPSM_MSG_PEEK);
        }
        break;
    case 4:
        if (w.sk)
            tcpsm_sock_shutdown(w.sk, amount & 1 ? 1 : 0, w.now);
        arp_answer();
        break;
    case 5:
        if (w.sk) {
            if (amount & 1) {
                tcpsm_sock_setopt(w.sk, TCPSM_OPT_LINGER, 0);
            }
            tcpsm_sock_close(w.sk, w.now);
            w.sk = NULL;
        }
        arp_answer();
        break;
    case 6:
        app_accept();
        if (w.sk) {
            tcpsm_sock_poll(w.sk);
            tcpsm_sock_error(w.sk);
            struct tcpsm_tcp_info ti;
            tcpsm_sock_info_at(w.sk, &ti, w.now);
        }
        break;
    case 7:
        if (w.sk)
            tcpsm_sock_setopt(w.sk, (amount & 1) ? TCPSM_OPT_CORK : TCPSM_OPT_NODELAY,
                              (amount >> 1) & 1);
        app_send(amount * 8 + 1);
        break;
    }
    check_mem();
}

/* ---------------------------------------------------------------- start states */

/* A start state (scenario byte) is built once per process, then saved: the
 * arena that holds the whole stack, the process's host table and the world
 * above. Each input starts from a copy of it, which is what the stack would
 * be after building it again (FUZZ_TCP_VERIFY=1 checks that on every input:
 * the same input run both ways must send the same frames). */
struct start {
    struct arena_snap *arena;
    struct stack_host host;             /* the stack's entry of stack_hosts (the others are free) */
    struct world w;
    uint64_t hash;                      /* of the frames the build sent */
};
static struct start *starts[256];
static bool fresh_only;                 /* FUZZ_TCP_FRESH=1: build every input's start afresh */

static void build(uint8_t b)
{
    arena_reset();
    memset(&w, 0, sizeof w);
    unsigned scen = b & 7;
    w.inl = scen >= 6;
    w.ts = b & 0x08;
    w.sack = b & 0x10;
    w.ws = b & 0x20;
    uint16_t mss = (b & 0x80) ? 536 : 1460;
    w.rport = RPORT;
    w.rnxt = RISN + 1;
    w.rmax = RISN + 1;
    w.tsval = 1000;
    w.now = 1000000000ull;

    struct tcpsm_config c;
    memset(&c, 0, sizeof c);
    c.addr = ADDR;
    c.prefix_len = 24;
    memcpy(c.mac, MAC, 6);
    c.secret[0] = 1;
    c.secret[1] = 2;
    c.max_socks = 32;
    c.neigh_max = 8;
    c.sndbuf = BUF;
    c.rcvbuf = BUF;
    c.rcvbuf_max = 4 * BUF;
    c.mem_max = (b & 0x40) ? (1u << 20) : 0;     /* 1 MiB: the floor */
    w.dev.ops = &ops;
    w.dev.mtu = 1500;
    w.st = tcpsm_stack_new(&c, &w.dev, w.now);
    CHECK(w.st);
    if (scen != 1 && scen != 4 && scen != 7) {
        CHECK(tcpsm_sock_new(w.st, &w.lsk) == 0);
        CHECK(tcpsm_sock_bind(w.lsk, 0, LPORT) == 0);
        CHECK(tcpsm_sock_listen(w.lsk, 4) == 0);
    }
    setup(scen, mss);
    check_mem();
}

static void start(uint8_t b, bool fresh)
{
    struct start *s = starts[b];
    if (fresh || !s) {
        build(b);
        if (fresh)
            return;
        s = calloc(1, sizeof(*s));
        CHECK(s);
        /* the tx slots and the reassembly's delivery buffer are scratch,
         * written before they are read */
        arena_scratch(w.st->txbuf, sizeof(w.st->txbuf));
        size_t n;
        const void *r = ipv4_frag_scratch(w.st, &n);
        if (r)
            arena_scratch(r, n);
        s->arena = arena_save();
        /* the previous input's stack was freed: its entry is free again,
         * so the table holds this stack's entry only (1 of 1024: 40 bytes
         * copied back, not 40 KiB) */
        for (uint32_t i = 0; i < TCPSM_MAX_HOSTS; i++)
            CHECK(i == w.st->host ? stack_hosts[i].st == w.st : stack_hosts[i].st == NULL);
        s->host = stack_hosts[w.st->host];
        s->w = w;
        s->hash = out_hash;
        starts[b] = s;
        return;
    }
    arena_restore(s->arena);
    CHECK(stack_hosts[s->w.st->host].st == NULL);
    stack_hosts[s->w.st->host] = s->host;
    w = s->w;
    out_hash = s->hash;
}

static uint64_t run(const uint8_t *data, size_t size, bool fresh)
{
    out_hash = 0xcbf29ce484222325ull;
    start(data[0], fresh);
    data++;
    size--;
    for (size_t i = 0; i + REC <= size; i += REC)
        play(data + i, data + i + REC, size - i - REC);
    /* and a quiet end: the timers run out (retransmissions, TIME-WAIT) */
    for (int i = 0; i < 4; i++) {
        app_recv(4096, 0);
        advance(30ull * 1000000000u);
    }
    check_mem();
    if (verify)
        hash(&w.st->cnt, sizeof(w.st->cnt));
    tcpsm_stack_free(w.st);
    /* the leak check: the stack freed all it held (the arena counts blocks) */
    CHECK(arena_live() == 0);
    return out_hash;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *e = getenv("FUZZ_TCP_VERIFY");
    verify = e && *e == '1';
    e = getenv("FUZZ_TCP_FRESH");
    fresh_only = e && *e == '1';
    arena_init();
    streams_init();
    sums_check();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (verify) {
        uint64_t a = run(data, size, true);
        uint64_t b = run(data, size, false);
        CHECK(a == b);
        return 0;
    }
    run(data, size, fresh_only);
    return 0;
}
