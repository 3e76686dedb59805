/* Builds inputs for the `tcpsm ladder` tests from two real stacks: A
 * (198.18.0.1, client) and B (198.18.0.2, server on port 80) over the
 * in-memory link on a virtual clock (10 ms one way), one connection with a
 * request and a reply, then a close. It writes into DIR:
 *   cap.pcap  every frame as seen at A: sent by A (dropped ones included,
 *             as TCPSM_PCAP records a frame before the wire loses it) and
 *             delivered to A, stamped with the virtual time
 *   a.trace   A's TCPSM_TRACE lines (trace_format), b.trace the same for B
 * Scenarios:
 *   simclose  A and B close at the same instant: the FINs cross
 *             (RFC 9293 3.6, simultaneous close: both CLOSING, then TIME-WAIT)
 *   synloss   A's first SYN is lost; the RTO retransmits it; A closes
 *             first, B closes on end of file (the ordinary four-way close)
 * Usage: ladder_pair simclose|synloss DIR */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev_mem.h"
#include "pcap_writer.h"
#include "tcpsm/core.h"
#include "trace_log.h"

#define A_ADDR 0xC6120001u      /* 198.18.0.1 */
#define B_ADDR 0xC6120002u      /* 198.18.0.2 */
#define PORT 80
#define T0 1000000000ull
#define MSEC 1000000ull
#define REALTIME_BASE 1700000000000000000ull  /* pcap stamps: a fixed date + virtual time */

static struct memlink *L;
static struct pcap_writer *PCAP;
static uint64_t NOW;
static bool drop_first_syn, syn_dropped;

struct tracefile { FILE *f; };

static void on_trace(void *ctx, const struct tcpsm_trace_event *ev)
{
    char line[320];
    size_t n = trace_format(line, sizeof(line), ev, T0);
    fwrite(line, 1, n, ((struct tracefile *)ctx)->f);
}

/* A's device: records every frame A sends, then hands it to the link
 * (except the first SYN in the synloss scenario). */
static unsigned a_send(struct tcpsm_netdev *dev, const struct tcpsm_frame *frames, unsigned n)
{
    (void)dev;
    struct tcpsm_netdev *link = memlink_dev(L, 0);
    for (unsigned i = 0; i < n; i++) {
        pcap_writer_frame_at(PCAP, REALTIME_BASE + NOW, frames[i].data, frames[i].len);
        const uint8_t *f = frames[i].data;
        /* Ethernet(14) + IPv4 (IHL) + TCP flags at offset 13 */
        bool is_syn = frames[i].len > 34 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 6 &&
                      frames[i].len > 14u + (f[14] & 15u) * 4 + 13 &&
                      (f[14 + (f[14] & 15) * 4 + 13] & TCPSM_SYN);
        if (drop_first_syn && is_syn && !syn_dropped) {
            syn_dropped = true;
            continue;
        }
        link->ops->send(link, &frames[i], 1);
    }
    return n;
}
static const struct tcpsm_netdev_ops a_ops = { .send = a_send };

static struct tcpsm_stack *mkstack(uint32_t addr, struct tcpsm_netdev *dev, struct tracefile *tf)
{
    struct tcpsm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = addr;
    cfg.prefix_len = 24;
    cfg.mac[0] = 2;
    cfg.mac[5] = (uint8_t)addr;
    cfg.secret[0] = 0x1234 + addr;
    cfg.secret[1] = 0x5678;
    cfg.trace = on_trace;
    cfg.cb_ctx = tf;
    return tcpsm_stack_new(&cfg, dev, NOW);
}

static struct tcpsm_stack *A, *B;

/* Advances virtual time to the next event (a frame due or a timer) no later
 * than until, and handles it. Returns false when nothing is due by until. */
static bool step(uint64_t until)
{
    uint64_t t = memlink_next_due(L);
    uint64_t d = tcpsm_stack_next_deadline(A);
    if (d < t)
        t = d;
    d = tcpsm_stack_next_deadline(B);
    if (d < t)
        t = d;
    if (t > until) {
        NOW = until;
        memlink_set_now(L, NOW);
        return false;
    }
    if (t > NOW)
        NOW = t;
    memlink_set_now(L, NOW);
    struct tcpsm_frame fr[64];
    unsigned n = memlink_deliver(L, 0, NOW, fr, 64);
    for (unsigned i = 0; i < n; i++)
        pcap_writer_frame_at(PCAP, REALTIME_BASE + NOW, fr[i].data, fr[i].len);
    if (n)
        tcpsm_stack_input(A, fr, n, NOW);
    n = memlink_deliver(L, 1, NOW, fr, 64);
    if (n)
        tcpsm_stack_input(B, fr, n, NOW);
    tcpsm_stack_timers(A, NOW);
    tcpsm_stack_timers(B, NOW);
    return true;
}

static void run_for(uint64_t ns)
{
    uint64_t until = NOW + ns;
    for (int guard = 0; guard < 100000 && step(until); guard++)
        ;
}

static void die(const char *what)
{
    fprintf(stderr, "ladder_pair: %s\n", what);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "simclose") && strcmp(argv[1], "synloss"))) {
        fprintf(stderr, "usage: ladder_pair simclose|synloss DIR\n");
        return 2;
    }
    bool simclose = !strcmp(argv[1], "simclose");
    drop_first_syn = !simclose;
    char path[4096];
    snprintf(path, sizeof(path), "%s/cap.pcap", argv[2]);
    PCAP = pcap_writer_open(path);
    if (!PCAP)
        die(strerror(errno));
    struct tracefile ta, tb;
    snprintf(path, sizeof(path), "%s/a.trace", argv[2]);
    ta.f = fopen(path, "w");
    snprintf(path, sizeof(path), "%s/b.trace", argv[2]);
    tb.f = fopen(path, "w");
    if (!ta.f || !tb.f)
        die(strerror(errno));

    struct memlink_params p = { .delay_ns = 10 * MSEC };
    L = memlink_new(&p, 1);
    NOW = T0;
    memlink_set_now(L, NOW);
    struct tcpsm_netdev adev = *memlink_dev(L, 0);
    adev.ops = &a_ops;
    A = mkstack(A_ADDR, &adev, &ta);
    B = mkstack(B_ADDR, memlink_dev(L, 1), &tb);
    if (!A || !B)
        die("stack");

    struct tcpsm_sock *lsk, *csk, *ssk = NULL;
    if (tcpsm_sock_new(B, &lsk) || tcpsm_sock_bind(lsk, 0, PORT) || tcpsm_sock_listen(lsk, 8))
        die("listen");
    if (tcpsm_sock_new(A, &csk) || tcpsm_sock_connect(csk, B_ADDR, PORT, NOW) != -EINPROGRESS)
        die("connect");
    for (int i = 0; i < 100 && !ssk; i++) {
        run_for(100 * MSEC);
        if (tcpsm_sock_accept(lsk, &ssk) < 0)
            ssk = NULL;
    }
    if (!ssk || tcpsm_sock_state(csk) != TCPSM_ESTABLISHED)
        die("no connection");

    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[4096], reply[1000];
    memset(reply, 'x', sizeof(reply));
    if (tcpsm_sock_send(csk, req, sizeof(req) - 1, NOW) != (ssize_t)sizeof(req) - 1)
        die("send request");
    run_for(100 * MSEC);
    if (tcpsm_sock_recv(ssk, buf, sizeof(buf), 0, NOW) != (ssize_t)sizeof(req) - 1)
        die("request not received");
    if (tcpsm_sock_send(ssk, reply, sizeof(reply), NOW) != (ssize_t)sizeof(reply))
        die("send reply");
    run_for(100 * MSEC);
    if (tcpsm_sock_recv(csk, buf, sizeof(buf), 0, NOW) != (ssize_t)sizeof(reply))
        die("reply not received");

    if (simclose) {
        /* Both applications close in the same instant: each FIN leaves
         * before the other arrives. */
        tcpsm_sock_close(csk, NOW);
        tcpsm_sock_close(ssk, NOW);
        run_for(1000 * MSEC);
    } else {
        tcpsm_sock_close(csk, NOW);
        run_for(100 * MSEC);
        if (tcpsm_sock_recv(ssk, buf, sizeof(buf), 0, NOW) != 0)
            die("no end of file at B");
        tcpsm_sock_close(ssk, NOW);
        run_for(1000 * MSEC);
    }
    tcpsm_sock_close(lsk, NOW);
    tcpsm_stack_free(A);
    tcpsm_stack_free(B);
    memlink_free(L);
    pcap_writer_close(PCAP);
    fclose(ta.f);
    fclose(tb.f);
    return 0;
}
