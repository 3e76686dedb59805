/* libFuzzer target: arbitrary frames into tcpsm_stack_input().
 *
 * Input: byte 0 = flags (bits 0-1: frames - 1; bit 7: repair the IPv4
 * header, ICMP and TCP checksums first so mutations reach the deeper
 * parsers), byte 1 = time step in 10 ms units (timers run), then the frame
 * bytes, split evenly between the frames. One stack lives across inputs (so
 * ARP/neighbour/TCP state accumulates) and is renewed every 4096 inputs. It
 * has a listener on port 80 whose connections are accepted, read, written
 * and closed, and one active connection attempt to 198.18.0.2:80, so the
 * frames reach the TCP state machine in most states. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"
#include "stack.h"
#include "tcpsm/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned discard(struct tcpsm_netdev *dev, const struct tcpsm_frame *f, unsigned n)
{
    (void)dev;
    /* Touch every byte so the sanitizers check the frames built. */
    volatile uint8_t x = 0;
    for (unsigned i = 0; i < n; i++)
        for (uint32_t j = 0; j < f[i].len; j++)
            x ^= f[i].data[j];
    (void)x;
    return n;
}

static const struct tcpsm_netdev_ops ops = { .send = discard };
static struct tcpsm_netdev dev = { .ops = &ops, .mtu = 1500 };
static struct tcpsm_stack *st;
static uint64_t now;
static unsigned runs;

#define NCONN 8
static struct tcpsm_sock *lsn, *conn[NCONN];
static unsigned nconn;

static void sockets_free(void)
{
    /* tcpsm_stack_free() frees every TCB. */
    lsn = NULL;
    nconn = 0;
}

static void sockets_open(void)
{
    struct tcpsm_sock *cli;
    if (tcpsm_sock_new(st, &lsn) == 0 && (tcpsm_sock_bind(lsn, 0, 80) < 0 ||
                                          tcpsm_sock_listen(lsn, 8) < 0))
        abort();
    if (tcpsm_sock_new(st, &cli) == 0) {
        tcpsm_sock_connect(cli, 0xc6120002, 80, now);
        conn[nconn++] = cli;
    }
}

/* Plays the application: accept, read, answer, close the oldest. */
static void sockets_run(void)
{
    struct tcpsm_sock *sk;
    while (lsn && tcpsm_sock_accept(lsn, &sk) == 0) {
        if (nconn == NCONN) {
            tcpsm_sock_close(conn[0], now);
            memmove(conn, conn + 1, (NCONN - 1) * sizeof(conn[0]));
            nconn--;
        }
        conn[nconn++] = sk;
    }
    uint8_t buf[512];
    for (unsigned i = 0; i < nconn; i++) {
        while (tcpsm_sock_recv(conn[i], buf, sizeof(buf), 0, now) > 0)
            ;
        tcpsm_sock_send(conn[i], "hello\n", 6, now);
        tcpsm_sock_error(conn[i]);
    }
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* IPv6: payload length to the frame, the ICMPv6/TCP checksum (first header only) */
static void repair6(uint8_t *f, size_t n)
{
    if (n < 54 + 8)
        return;
    uint8_t *ip = f + 14;
    size_t l4len = n - 54;
    put16(ip + 4, (uint16_t)l4len);
    uint8_t *l4 = ip + 40;
    if (ip[6] == 58) {
        put16(l4 + 2, 0);
        put16(l4 + 2, csum_fold(csum_partial(l4, l4len, csum_pseudo6(ip + 8, ip + 24, 58,
                                                                     (uint32_t)l4len))));
    } else if (ip[6] == 6 && l4len >= 18) {
        put16(l4 + 16, 0);
        put16(l4 + 16, csum_fold(csum_partial(l4, l4len, csum_pseudo6(ip + 8, ip + 24, 6,
                                                                      (uint32_t)l4len))));
    }
}

static void repair(uint8_t *f, size_t n)
{
    if (n >= 14 && f[12] == 0x86 && f[13] == 0xdd) {
        repair6(f, n);
        return;
    }
    if (n < 34 || f[12] != 0x08 || f[13] != 0x00)
        return;
    uint8_t *ip = f + 14;
    size_t hl = (size_t)(ip[0] & 0xf) * 4;
    if (hl < 20 || 14 + hl > n)
        return;
    size_t tot = (size_t)(ip[2] << 8 | ip[3]);
    if (tot < hl || 14 + tot > n)
        tot = n - 14;
    put16(ip + 2, (uint16_t)tot);
    put16(ip + 10, 0);
    put16(ip + 10, csum_fold(csum_partial(ip, hl, 0)));
    uint8_t *l4 = ip + hl;
    size_t l4len = tot - hl;
    uint32_t src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 | (uint32_t)ip[14] << 8 | ip[15];
    uint32_t dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 | ip[19];
    if (ip[9] == 1 && l4len >= 4) {
        put16(l4 + 2, 0);
        put16(l4 + 2, csum_fold(csum_partial(l4, l4len, 0)));
    } else if (ip[9] == 6 && l4len >= 18) {
        put16(l4 + 16, 0);
        put16(l4 + 16, csum_fold(csum_partial(l4, l4len, csum_pseudo(src, dst, 6, (uint16_t)l4len))));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st || ++runs % 4096 == 0) {
        tcpsm_stack_free(st);
        sockets_free();
        struct tcpsm_config c;
        memset(&c, 0, sizeof(c));
        c.addr = 0xc6120001;            /* 198.18.0.1/24, gateway .254 */
        c.prefix_len = 24;
        c.gateway = 0xc61200fe;
        /* and 2001:2::1/64 with router fe80::fe: the IPv6, ICMPv6, ND and fragment parsers */
        static const uint8_t a6[16] = { 0x20, 0x01, 0, 0x02, [15] = 1 };
        static const uint8_t gw6[16] = { 0xfe, 0x80, [15] = 0xfe };
        memcpy(c.addr6, a6, 16);
        c.prefix6_len = 64;
        memcpy(c.gateway6, gw6, 16);
        c.neigh_max = 16;
        c.max_socks = 64;
        static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
        memcpy(c.mac, mac, 6);
        c.secret[0] = 1;
        c.secret[1] = 2;
        now = 0;
        st = tcpsm_stack_new(&c, &dev, now);
        if (!st)
            abort();
        sockets_open();
    }
    if (size < 2)
        return 0;
    unsigned nf = (data[0] & 3) + 1;
    bool fix = data[0] & 0x80;
    now += (uint64_t)data[1] * 10000000ull;
    data += 2;
    size -= 2;
    struct tcpsm_frame fr[4];
    size_t each = size / nf;
    for (unsigned i = 0; i < nf; i++) {
        size_t len = i + 1 == nf ? size - each * i : each;
        if (len > TCPSM_FRAME_MAX)
            len = TCPSM_FRAME_MAX;
        /* A heap copy of the exact length, so ASan sees any over-read. */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, data + each * i, len);
        if (fix)
            repair(copy, len);
        fr[i] = (struct tcpsm_frame){ .data = copy, .len = (uint32_t)len };
    }
    tcpsm_stack_input(st, fr, nf, now);
    tcpsm_stack_timers(st, now);
    sockets_run();
    for (unsigned i = 0; i < nf; i++)
        free(fr[i].data);
    return 0;
}
