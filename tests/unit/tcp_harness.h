/* Test harness for the TCP state machine, after smoltcp's socket tests:
 * one stack under test on a capture netdev (its send() records frames),
 * a virtual clock, and a crafted remote peer. A test pushes one segment in
 * with SEND(h, .flags = ..., ...) and asserts what comes out with
 * EXPECT_SEG(h, .flags = ..., ...), which compares only the fields given.
 *
 *   stack under test: 198.18.0.1/24, 02:00:00:00:00:01, port H_LPORT
 *   remote peer:      198.18.0.2,    02:00:00:00:00:02, port H_RPORT
 *
 * H_TRACE=1 in the environment prints every segment in and out, with the
 * virtual time, e.g. H_TRACE=1 build/unit_tests --filter 'tcp_listen/syn'.
 */
#ifndef TCPSM_TCP_HARNESS_H
#define TCPSM_TCP_HARNESS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpsm/core.h"

/* EXPECT_SEG fills every field with "don't care" and lets the test's
 * designated initializers override some of them. */
#pragma GCC diagnostic ignored "-Woverride-init"

#define FIN TCPSM_FIN
#define SYN TCPSM_SYN
#define RST TCPSM_RST
#define PSH TCPSM_PSH
#define ACK TCPSM_ACK
#define URG TCPSM_URG

#define H_ADDR   0xC6120001u    /* 198.18.0.1 */
#define H_PEER   0xC6120002u    /* 198.18.0.2 */
#define H_LPORT  8080
#define H_RPORT  49152
#define H_RISN   0x12345678u    /* the remote's ISN; tests may set h->risn first */
#define H_RWIN   65535          /* the remote's advertised window */
#define H_RMSS   1460           /* the remote's MSS option in its SYN */
#define H_BUF    32768          /* sndbuf and rcvbuf of the stack under test */
#define H_T0     1000000000ull  /* virtual time at creation: 1 s */
#define H_QMAX   4096

#define NS(x)  ((uint64_t)(x))
#define US(x)  ((uint64_t)(x) * 1000ull)
#define MS(x)  ((uint64_t)(x) * 1000000ull)
#define SEC(x) ((uint64_t)(x) * 1000000000ull)

/* Window scale option value in a struct seg: 0 = no option, else shift + 1. */
#define WS(shift) ((shift) + 1)

/* One TCP segment as the remote sends it or as the stack emitted it.
 * In a template, sport/dport 0 mean H_RPORT/H_LPORT and mss 0 means no
 * MSS option. For a parsed segment, data points into the harness and stays
 * valid until the next recv_seg(). */
struct seg {
    uint8_t flags;
    uint32_t seq, ack;
    uint16_t win;
    const void *data;
    size_t len;
    uint16_t mss;
    int wscale;
    bool sack_perm;
    bool ts;
    uint32_t tsval, tsecr;
    uint16_t sport, dport;
    const void *raw_opts;           /* template only: option bytes sent as given (padded) */
    size_t raw_optlen;
    uint8_t doff;                   /* template only: data offset in words, 0 = computed */
    unsigned nsack;                 /* parsed only: SACK blocks present */
    uint32_t sack[4][2];            /* parsed only: their left and right edges */
    uint16_t urp;                   /* parsed only: the urgent pointer field */
};

/* What EXPECT_SEG compares: -1 (or NULL data) = don't care.
 * flags are compared exactly, except that PSH is ignored unless given. */
struct seg_match {
    int flags;
    int64_t seq, ack;
    int32_t win;
    const void *data;
    int64_t len;
    int32_t mss;
    int wscale;
    int sack_perm, ts;
    int64_t tsval, tsecr;
    int32_t sport, dport;
};
#define SEG_MATCH_ANY_ .flags = -1, .seq = -1, .ack = -1, .win = -1, .data = NULL, .len = -1, \
    .mss = -1, .wscale = -1, .sack_perm = -1, .ts = -1, .tsval = -1, .tsecr = -1,             \
    .sport = -1, .dport = -1

struct h_frame {
    uint8_t *data;
    uint32_t len;
};

struct harness {
    struct tcpsm_stack *st;
    struct tcpsm_netdev dev;
    struct tcpsm_config cfg;
    uint64_t now;

    struct h_frame q[H_QMAX];       /* frames the stack emitted, FIFO */
    unsigned qhead, qlen;
    bool qoverflow;

    struct tcpsm_sock *lsk;         /* listener, if any */
    struct tcpsm_sock *sk;          /* the connection under test, if a handle exists */
    uint32_t risn;                  /* remote ISN (fixed) */
    uint32_t lisn;                  /* local ISN, read from the stack's SYN or SYN+ACK */
    uint32_t lseq;                  /* next seq the stack sends (its SND.NXT as we track it) */
    uint32_t rseq;                  /* next seq the remote sends (the stack's RCV.NXT) */
    uint16_t lwin;                  /* window the stack advertised after the handshake */
    uint16_t lmss;                  /* MSS option in the stack's SYN or SYN+ACK */

    uint8_t rx[65536 + 64];         /* payload of the last parsed segment */

    bool hold;                      /* input as an application thread's (tcpsm_stack_input_hold) */
    bool batching;                  /* h_batch_begin: frames held, not yet input */
    struct h_frame batch[64];
    unsigned nbatch;
};

/* Life cycle. cfg NULL: the defaults above. h_free frees the stack and
 * every captured frame (sockets are freed by tcpsm_stack_free). */
struct harness *h_new(const struct tcpsm_config *cfg);
void h_free(struct harness *h);
void h_audit(struct harness *h, const char *file, int line);
void h_default_config(struct tcpsm_config *cfg);

/* Push a segment from the remote into the stack at h->now. */
void send_seg(struct harness *h, const struct seg *s);
#define SEND(h, ...) send_seg((h), &(struct seg){ __VA_ARGS__ })
/* ICMP destination unreachable (type 3) from the peer quoting a TCP
 * segment H_LPORT -> H_RPORT with this sequence number. */
void send_icmp_unreach(struct harness *h, uint8_t code, uint32_t seq);
/* Push a raw Ethernet frame. */
void h_input(struct harness *h, const void *frame, size_t len);
/* Between h_batch_begin and h_batch_end the frames pushed (at most 64) are
 * held, then handed to the stack in ONE tcpsm_stack_input call, as the
 * runtime hands it a receive batch. */
void h_batch_begin(struct harness *h);
void h_batch_end(struct harness *h);

/* Pop the next TCP segment the stack emitted (answering its ARP requests
 * for the peer on the way). False if none is queued. Checks the IPv4 and
 * TCP checksums and the addresses. */
bool recv_seg(struct harness *h, struct seg *out);
void expect_no_seg_at(struct harness *h, const char *file, int line);
#define expect_no_seg(h) expect_no_seg_at((h), __FILE__, __LINE__)
struct seg h_expect_seg(struct harness *h, const struct seg_match *m, const char *file, int line);
#define EXPECT_SEG(h, ...) \
    h_expect_seg((h), &(struct seg_match){ SEG_MATCH_ANY_, __VA_ARGS__ }, __FILE__, __LINE__)
/* Discard everything queued. */
void h_drain(struct harness *h);
unsigned h_queued(struct harness *h);

/* Virtual time. h_advance runs every timer due up to now+ns, in deadline
 * order, and leaves now at now+ns. h_wait_seg does the same but stops at
 * the first deadline that makes the stack emit a frame; it returns the time
 * waited, or UINT64_MAX if nothing was emitted within limit. */
void h_advance(struct harness *h, uint64_t ns);
uint64_t h_wait_seg(struct harness *h, uint64_t limit);
/* Advance to the next deadline (if within limit of now) and run it. */
bool h_step(struct harness *h, uint64_t limit);

/* State of the connection under test, with names on failure. */
void h_assert_state_at(struct tcpsm_sock *sk, int want, const char *file, int line);
#define ASSERT_STATE(sk, want) h_assert_state_at((sk), (want), __FILE__, __LINE__)

/* Fixtures: leave the connection under test in the named state, with
 * h->lseq/h->rseq tracking both sides. Active opens bind H_LPORT and
 * connect to H_PEER:H_RPORT; passive ones listen on H_LPORT. */
void sock_listen(struct harness *h);
void sock_syn_sent(struct harness *h);
void sock_syn_received(struct harness *h);       /* passive: no handle (h->sk NULL) */
/* A SACK option with n blocks [l, r) into buf: two NOPs, then kind 5
 * (RFC 2018). Returns its length, 4 + 8n. */
size_t h_sack_opt(uint8_t *buf, unsigned n, const uint32_t (*blk)[2]);
/* The peer ACKs ack and SACKs [l, r) (a plain ACK if l == r). */
void h_ack_sack(struct harness *h, uint32_t ack, uint32_t l, uint32_t r);
/* The peer sends len bytes at RCV.NXT (ACK | PSH, acknowledging all we
 * sent, the full window); h->rseq moves past them. */
void h_peer_data(struct harness *h, const void *data, uint32_t len);
void sock_established(struct harness *h);       /* active open */
/* Active open, the peer's SYN+ACK carrying the options of the template
 * (.sack_perm, .ts/.tsval/.tsecr, .wscale; flags, numbers, window and MSS
 * are filled in), our ACK checked, TCP_NODELAY set: the data-phase set-up
 * of the loss-recovery tests. */
void sock_established_with(struct harness *h, const struct seg *synack);
#define SOCK_ESTABLISHED_WITH(h, ...) sock_established_with((h), &(struct seg){ __VA_ARGS__ })
/* Ends the quick-ACK start of h->sk (Linux ACKs the first segments of a
 * connection at once): for tests of the steady-state delayed ACK. */
void h_no_quickack(struct harness *h);
void sock_established_passive(struct harness *h);/* passive open, then accept() */
void sock_fin_wait_1(struct harness *h);         /* shutdown(SHUT_WR) keeps the handle */
void sock_fin_wait_2(struct harness *h);
void sock_close_wait(struct harness *h);
void sock_closing(struct harness *h);
void sock_last_ack(struct harness *h);
void sock_time_wait(struct harness *h);

/* Send len bytes from the application and expect them as one segment. */
void h_app_send(struct harness *h, const void *buf, size_t len);
/* Read exactly len bytes now; asserts they are there. */
void h_app_recv(struct harness *h, void *buf, size_t len);
/* Deterministic test pattern. */
void h_pattern(uint8_t *buf, size_t len, uint32_t seed);
/* RFC 1071 checksum helper used to build and check frames. */
uint16_t h_csum(const void *p, size_t len, uint32_t sum);

#endif
