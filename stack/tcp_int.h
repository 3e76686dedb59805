/* TCP internals shared by the tcp_*.c files (internal header).
 * One TCB (struct tcpsm_sock) per endpoint; the module state (struct
 * tcp_stack) holds the connection hash, the port table and the counts. */
#ifndef TCPSM_TCP_INT_H
#define TCPSM_TCP_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack.h"
#include "tcp.h"
#include "tcp_seq.h"
#include "timer.h"

#define MS_NS       1000000ull
#define SEC_NS      1000000000ull

/* Limits and defaults (README "Limits"). */
#define TCP_MAX_SOCKS_DEF   65536u
#define TCP_BUF_DEF         (256u * 1024u)
#define TCP_MSL_MS_DEF      30000u
#define TCP_REPLY_HOLD_MAX  16384u      /* a reply held for the next call (TCPSM_MSG_HOLD) */
#define TCP_REPLY_HOLD_NS   (1 * MS_NS) /* and at most this long (the delayed-ACK timer, pulled in) */
#define TCP_SNDBUF_MIN      4608u       /* Linux SOCK_MIN_SNDBUF */
#define TCP_RCVBUF_MIN      2292u       /* Linux SOCK_MIN_RCVBUF */
#define TCP_BUF_MAX         (16u * 1024u * 1024u)
#define TCP_MSS_DEF         536u        /* RFC 9293 3.7.1 / RFC 6691 */
#define TCP_RTO_INIT_US     1000000u    /* RFC 6298 2.1 */
#define TCP_RTO_MIN_US      200000u     /* Linux TCP_RTO_MIN */
#define TCP_RTO_MAX_US      120000000u  /* Linux TCP_RTO_MAX */
#define TCP_RETRIES_DATA    15          /* Linux tcp_retries2 */
#define TCP_RETRIES_SYN     6           /* Linux tcp_syn_retries */
#define TCP_RETRIES_SYNACK  5           /* Linux tcp_synack_retries */
#define TCP_ORPHAN_PROBES   8           /* Linux tcp_orphan_retries: zero-window probes of an orphan */
#define TCP_DELACK_NS       (40 * MS_NS)
#define TCP_QUICKACKS       16          /* Linux TCP_MAX_QUICKACKS: ACK at once at the start */
#define TCP_ABC_L           8           /* slow start grows <= L*SMSS per ACK: RFC 9406 4.3
                                           (L = 8 without pacing; RFC 3465 said 2) */
#define TCP_CORK_NS         (200 * MS_NS)   /* TCP_CORK ceiling, as Linux */
#define TCP_OOW_ACK_NS      (500 * MS_NS)   /* Linux tcp_invalid_ratelimit */
#define TCP_FIN_TIMEOUT_NS  (60 * SEC_NS)   /* orphan FIN-WAIT-2, Linux tcp_fin_timeout */
#define TCP_OOO_MAX         32          /* out-of-order ranges kept */
#define TCP_BATCH_MAX       64          /* connections with work deferred to the end of an input batch */
/* quick ACKs held for the application's reply (tcp_ack_hold): an event loop
 * answering a burst of requests on thousands of connections holds one per
 * request not yet answered (beyond it, the ACK leaves at once) */
#define TCP_HELD_MAX        4096
#define TCP_RING_INIT       512u            /* first allocation of a buffer ring (grows by doubling) */
#define TCP_RING_CACHE      8               /* released ring buffers kept for reuse */
#define TCP_RING_CACHE_BYTES (16u * 1024u * 1024u)
#define TCP_MEM_MAX_DEF     (128u << 20)    /* buffer memory of the whole stack (README) */
#define TCP_WMEM_MIN        4096u       /* Linux tcp_wmem[0]: send queue a socket may always fill */
/* Out-of-order segments held per connection: a window's worth (1024 full-size segments is
 * 1.4 MiB above a hole; 64 dropped data whenever a sender's window passed 64 segments). */
#define TCP_OFO_SEGS_MAX    1024
#define TCP_CHALLENGE_PER_S 1000
#define TCP_COOKIE_BITS     24          /* Linux syncookies.c: low 24 bits data + hash */
#define TCP_COOKIE_PERIOD_NS (60 * SEC_NS)  /* cookie counter tick (Linux 60 s) */
#define TCP_COOKIE_MAX_AGE  2           /* ticks a cookie stays valid */
#define TCP_COOKIE_TSBITS   6           /* option bits in the low bits of the TSval */        /* RFC 5961 7: challenge ACK limit, Linux default */
#define TCP_EPH_LO          32768u      /* Linux ip_local_port_range */
#define TCP_EPH_HI          60999u
#define TCP_EPH_PERTURB     256u        /* RFC 6056 3.3.4 table size (Linux: 2^16) */

/* Received urgent data (Linux tp->urg_data): the byte in the low bits. */
#define TCP_URG_VALID  0x0100
#define TCP_URG_NOTYET 0x0200
#define TCP_URG_READ   0x0400

/* Linux sk_shutdown bits. */
#define RCV_SHUTDOWN  1
#define SEND_SHUTDOWN 2

/* Byte ring. */
struct tcp_ring {
    uint8_t *buf;
    uint32_t cap, head, len;
};

/* Out-of-order ranges [start, end) in sequence space, sorted. */
struct tcp_ooo {
    uint32_t start[TCP_OOO_MAX], end[TCP_OOO_MAX];
    unsigned n;
    uint32_t last;                      /* start of the latest segment (RFC 2018 4) */
};

/* One out-of-order segment, held apart from the receive ring (Linux's
 * out-of-order queue): memory follows the data held, not its offset. */
struct tcp_ofo {
    struct tcp_ofo *next;               /* by sequence */
    uint32_t seq, len;
    uint8_t data[];
};

/* Parsed options of one segment. */
struct tcp_opts {
    bool mss_ok, ws_ok, sack_ok, ts_ok;
    uint16_t mss;
    uint8_t ws;
    uint32_t tsval, tsecr;
    unsigned nsack;
    uint32_t sack_l[4], sack_r[4];
};

/* One received segment, after header parse. */
struct tcp_seg {
    struct tcpsm_addr src, dst;
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t wnd;                       /* raw */
    const uint8_t *data;
    uint32_t len;                       /* payload bytes (data, then the slices) */
    /* Software GRO: the payload goes on in these slices of later frames
     * (only for in-order data; queue_data reads them) */
    const struct tcp_slice *more;
    unsigned nmore;
    uint16_t urp;                       /* urgent pointer (with URG) */
    struct tcp_opts opt;
};

struct congestion_ops;

/* One segment sent and not yet cumulatively acknowledged (tcp_rtxq.c;
 * Linux's rtx queue skb with its TCP_SKB_CB sacked bits). */
#define TCP_RTX_SACKED  1               /* the peer SACKed it */
#define TCP_RTX_LOST    2               /* deemed lost (RACK, RTO, DupThresh): to send again */
#define TCP_RTX_RETRANS 4               /* a retransmission of it is in flight */
#define TCP_RTX_EVER    8               /* was retransmitted at least once */
#define TCP_RTX_FIN     16              /* its last sequence number is our FIN */
#define TCP_RTXQ_MAX    16384u          /* records per connection; beyond, the newest grows */
/* The first array: a reply of a few segments. Every connection with data
 * in flight holds one (10,000 echoing at once: 64 records were 4 KiB
 * each, touched and then resident); bulk transfers double it. */
#define TCP_RTXQ_FIRST  4u
struct tcp_rtx {
    uint32_t seq, end;                  /* [seq, end), a FIN included */
    uint64_t xmit;                      /* last (re)transmission */
    uint8_t fl;
    bool app_limited;                   /* delivery-rate state when it was sent (tcp_rate.c) */
    uint64_t delivered;                 /* ... the connection's delivered count, */
    uint64_t delivered_at;              /* ... the time of that count (0: sampled already), */
    uint64_t first_tx;                  /* ... and the send time of the flight's first */
};

/* Delivery-rate estimation (tcp_rate.c, draft-cheng-iccrg-delivery-rate-
 * estimation, Linux tcp_rate.c): the connection's side. */
struct tcp_rate {
    uint64_t delivered;                 /* bytes delivered (ACKed or SACKed), ever */
    uint64_t delivered_at;              /* when delivered last grew */
    uint64_t first_tx;                  /* send time of the newest delivered's flight start */
    uint64_t app_limited;               /* delivered mark until which samples are app-limited,
                                           0 = not app-limited */
    uint64_t rate;                      /* the last sample kept (bytes/s), for TCP_INFO */
    bool rate_app_limited;
};

/* One ACK's rate sample (filled while the ACK is processed). */
struct tcp_rs {
    uint64_t prior_delivered;           /* delivered when the newest delivered one was sent */
    uint64_t prior_at;                  /* ... and its time (0: no sample) */
    uint64_t last_xmit;                 /* the newest delivered one's send time */
    uint64_t send_ns;                   /* its flight's send phase */
    uint64_t interval_ns;               /* max(send phase, ACK phase), 0 = invalid */
    int64_t delivered;                  /* bytes delivered in the interval, -1 = invalid */
    int64_t rtt_us;                     /* RTT of the newest delivered, never resent; -1 none */
    uint32_t last_end;
    uint32_t acked_sacked;              /* bytes this ACK delivered */
    uint32_t losses;                    /* bytes this ACK's loss detection marked lost */
    uint32_t prior_in_flight;           /* pipe before the ACK */
    bool app_limited;
};

/* BBR v1's state (tcp_bbr.c). Gains in 1/256. */
#define TCP_BBR_BW_ROUNDS 10
struct tcp_bbr {
    uint8_t mode;                       /* TCP_BBR_STARTUP, _DRAIN, _PROBE_BW, _PROBE_RTT */
    uint8_t cycle_idx;                  /* PROBE_BW gain phase */
    uint8_t full_bw_cnt;
    bool full_bw_reached, round_start, packet_conservation, prev_recovery;
    bool probe_rtt_round_done, idle_restart;
    /* long-term sampling for token-bucket policers (Linux bbr_lt_bw_*):
     * rounds in the interval, sampling, the policed rate in use; the
     * interval's start (ms, delivered and lost mod 2^32); the rate of the
     * last interval or the policed one (bytes/s, clamped); laid out in the
     * alignment holes (struct tcpsm_sock must stay within 2 KiB) */
    uint8_t lt_rtt_cnt;
    uint16_t pacing_gain, cwnd_gain;
    bool lt_is_sampling, lt_use_bw;
    uint32_t rtt_cnt;                   /* packet-timed round trips */
    uint32_t lt_last_stamp_ms;
    uint64_t next_rtt_delivered;
    /* windowed max of the delivery rate (bytes/s): the max of each of the
     * last TCP_BBR_BW_ROUNDS rounds */
    uint64_t bw_max[TCP_BBR_BW_ROUNDS];
    uint32_t bw_round[TCP_BBR_BW_ROUNDS];
    uint64_t full_bw;
    uint32_t min_rtt_us;                /* UINT32_MAX = none */
    uint32_t lost;                      /* bytes marked lost, ever, mod 2^32 (Linux tp->lost) */
    uint64_t min_rtt_at;
    uint64_t probe_rtt_done_at;
    uint64_t cycle_at;
    uint32_t prior_cwnd;
    uint32_t lt_last_delivered, lt_last_lost, lt_bw;
};
#define TCP_BBR_STARTUP   0
#define TCP_BBR_DRAIN     1
#define TCP_BBR_PROBE_BW  2
#define TCP_BBR_PROBE_RTT 3
/* The records in sequence order, contiguous from SND.UNA, in r[head..head+n). */
struct tcp_rtxq {
    struct tcp_rtx *r;
    uint32_t cap, head, n;
    /* bytes: SACKed; LOST and not SACKed; RETRANS and not SACKed */
    uint32_t sacked, lost, retrans;
};

/* RACK-TLP state (RFC 8985 6.1, tcp_rack.c). */
struct tcp_rack {
    uint64_t xmit;                      /* RACK.xmit_ts: latest send time delivered */
    uint32_t end_seq;                   /* RACK.end_seq */
    uint32_t rtt_us;                    /* RACK.rtt */
    uint32_t fack;                      /* RACK.fack: highest end delivered */
    bool valid;                         /* xmit/end_seq set */
    bool reord;                         /* RACK.reordering_seen */
    bool reord_ack;                     /* this ACK revealed reordering (reord_seen) */
    bool dsack_round_on;
    uint8_t reo_mult, reo_persist;      /* RACK.reo_wnd_mult, RACK.reo_wnd_persist */
    uint32_t dsack_round;
    uint64_t reo_at;                    /* the RACK reordering timer, 0 = off */
};

/* HyStart++ (RFC 9406) per-connection state (tcp_hystart.c). */
struct tcp_hystart {
    uint8_t phase;                      /* TCP_HS_SS, TCP_HS_CSS, TCP_HS_DONE */
    uint8_t css_rounds;
    uint32_t round_end;                 /* windowEnd: SND.NXT at the round's start */
    uint32_t last_min_rtt, cur_min_rtt; /* us, UINT32_MAX = none */
    uint32_t rtt_samples;
    uint32_t css_baseline;              /* cssBaselineMinRtt */
};
#define TCP_HS_SS   0
#define TCP_HS_CSS  1
#define TCP_HS_DONE 2

/* CUBIC's state (tcp_cubic.c), windows in segments, times in seconds. */
struct cubic_state {
    double w_max;                       /* window before the last reduction */
    double k;                           /* time to get back to it */
    double w_est;                       /* Reno-friendly estimate (RFC 9438 4.3) */
    double frac;                        /* growth not yet a whole byte */
    uint64_t epoch;                     /* start of this congestion avoidance epoch, 0 = none */
};

/* SYNs seen by a listener (and by the stack): counts, and the rate over
 * the last whole second. */
struct tcp_syn_stats {
    uint64_t syns, cookies_sent, cookies_ok, cookies_bad, dropped;
    uint64_t sec;                       /* second the current count belongs to, + 1 */
    uint32_t this_sec, last_sec;        /* SYNs in it / in the one before */
};

struct tcpsm_sock {
    struct tcpsm_stack *st;
    struct tcpsm_sock *enext;           /* connection hash chain */
    struct tcpsm_sock *bnext;           /* port table chain */
    struct tcpsm_sock **bpprev;         /* ... and the link that points here: O(1) removal */
    struct tcpsm_sock *lnext, **lpprev; /* listener table chain (LISTEN only) */
    struct tcpsm_sock *twnext, **twpprev;   /* TIME-WAIT list, oldest first */
    struct tcpsm_sock *anext, *aprev;   /* every TCB, for tcp_fini */
    struct tcpsm_sock *qnext;           /* SYN queue / accept queue link */
    struct tcpsm_sock **qpprev;         /* SYN queue: the link that points here */
    struct tcpsm_sock *parent;          /* listener of an unaccepted child */
    void *user;

    int state;
    bool hashed, bound, user_bound;     /* in ehash / in port table / bind() called */
    bool user_ref;                      /* the application holds the socket */
    bool passive;                       /* came from a listener (RFC 9293 3.10.7.4 SYN-RECEIVED) */
    bool done;                          /* was connected or tried (recv returns 0, not ENOTCONN) */
    bool in_acceptq;
    bool syn_acked;                     /* our SYN was acknowledged */
    uint8_t conn;                       /* TCP_CONN_*: Linux sock->state, for connect() */
    uint8_t shutdown;                   /* RCV_SHUTDOWN | SEND_SHUTDOWN */
    int err;                            /* pending error, positive errno */
    int soft_err;                       /* ICMP soft error, reported on timeout */

    struct tcpsm_addr laddr, raddr;     /* IPv4 as ::ffff:a.b.c.d; laddr :: = any */
    uint16_t lport, rport;
    bool ipv6;                          /* made as AF_INET6: TCPSM_OPT_IPV6 */
    bool v6only;                        /* IPV6_V6ONLY: an IPv6 socket that takes no IPv4 */
    int tos;                            /* IP_TOS / IPV6_TCLASS of the packets sent */
    int ttl;                            /* IP_TTL / IPV6_UNICAST_HOPS, -1 = default 64 */
    uint32_t pmtu;                      /* path MTU learnt from ICMP, 0 = the link's */
    /* PLPMTUD (tcp_pmtu.c), on after a black hole; sizes are MSS values */
    bool plp_on;
    bool plp_repair;                    /* a lost probe's bytes are being sent again */
    uint16_t plp_max;                   /* the MSS before the black hole (the re-search's top) */
    uint16_t plp_low, plp_high;         /* largest known to pass, largest that may */
    uint16_t plp_probe;                 /* the probe in flight, 0 = none */
    uint32_t plp_probe_seq, plp_probe_end;  /* its sequence space */
    uint32_t plp_repair_end;            /* plp_repair: up to here */
    /* Without SACK, after an RTO (loss_state; SND.NXT went back to SND.UNA):
     * how far the resending has gone below recover. Data sent before the
     * RTO above it was never sent twice: an ACK beyond it shows the RTO was
     * spurious (Linux FLAG_ORIG_SACK_ACKED). */
    uint32_t reno_rtx_end;
    uint64_t plp_stamp;                 /* the search (re)started: re-probe interval from here */

    /* listener */
    struct tcpsm_sock *synq, *accq, *accq_tail;
    uint32_t nsyn, nacc, backlog;
    /* tcp_chrono.c (fields spread over alignment holes, the struct stays
     * within 2 KiB): what limits sending now (TCP_CHRONO_*), since when
     * (ms), and the ms spent busy, receiver-limited, sender-buffer-limited */
    uint32_t chrono_busy_ms;
    struct tcp_syn_stats syn;           /* SYN figures of this listener */
    uint64_t synq_overflow_at;          /* last SYN answered by a cookie (0 = never) */

    /* send sequence space (RFC 9293 3.3.1) */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, max_snd_wnd;
    uint32_t snd_buf_seq;               /* sequence of sndq's first byte */
    uint32_t snd_sml;                   /* end of the last small segment (Minshall's Nagle) */
    bool fin_queued, fin_sent;          /* FIN after the data / FIN transmitted */
    uint32_t fin_seq;
    /* receive sequence space */
    uint32_t irs, rcv_nxt, rcv_adv, last_ack_sent;
    uint32_t rcv_wnd_max;               /* the largest window offered (bytes) */
    bool rcv_fin;                       /* FIN received (in order) */
    bool ooo_fin;                       /* FIN seen beyond a hole */
    uint32_t ooo_fin_seq;

    /* options */
    uint16_t mss;                       /* send MSS (payload with no options) */
    uint16_t rcv_mss;                   /* MSS we advertise */
    uint16_t user_mss;                  /* TCP_MAXSEG, 0 = none */
    uint8_t snd_wscale, rcv_wscale;
    bool ws_ok, ts_ok, sack_ok;
    uint32_t ts_recent, ts_off;
    uint32_t rtx_tsval;                 /* our TSval at the last retransmission */
    uint32_t rtx_stamp_ms;              /* when the first RTO of a run fired (ms; Linux
                                           retrans_stamp): black-hole detection's clock */
    uint64_t ts_recent_age;

    /* buffers */
    struct tcp_ring sndq, rcvq;
    struct tcp_ooo ooo;                 /* ranges held out of order (SACK blocks) */
    /* RFC 2883: a duplicate range received, reported once as the first
     * SACK block of the next ACK (Linux tcp_dsack_set) */
    uint32_t dsack_l, dsack_r;
    bool dsack;
    struct tcp_ofo *ofo;                /* ... and their bytes */
    struct tcp_ofo *ofo_tail;           /* the highest: most arrivals go after it */
    uint32_t ofo_n, ofo_bytes;
    uint32_t sndbuf, rcvbuf;
    /* receive buffer auto-tuning (tcp_sock.c): ceiling (0 = fixed, e.g.
     * after SO_RCVBUF), bytes read since rcvq_time, receiver's RTT */
    uint32_t rcvbuf_max, rcvq_copied, rcv_rtt_us;
    /* Linux rcvq_space.space (tcpi_rcv_space): the most the reader took in
     * one round trip, at first the initial window's worth */
    uint32_t rcvq_space;
    uint64_t rcvq_time;

    /* timers: one heap entry, earliest of the deadlines below (0 = off) */
    struct tcpsm_timer timer;
    uint64_t rto_at, persist_at, dack_at, ka_at, state_at;
    uint64_t tlp_at;                    /* tail loss probe (RFC 8985 7), SACK connections */
    bool tlp_sent;                      /* one probe per tail, until new data is ACKed */
    uint32_t srtt_us, rttvar_us, rto_us;
    bool rtt_active;                    /* timing one segment (Karn, no timestamps) */
    uint32_t rtt_seq;
    uint64_t rtt_start;
    uint8_t retries, backoff, probes, ka_probes;
    uint8_t pbackoff;                   /* persist backoff, reset when the window opens */
    uint8_t chrono_type;                /* tcp_chrono.c */
    uint64_t first_rtx;                 /* time of the first unanswered retransmission */
    unsigned delack_segs;               /* full segments not yet ACKed */
    uint8_t quickacks;                  /* segments still ACKed at once (quick-ACK mode) */
    /* Interactive (Linux's pingpong mode, tcp_event_data_sent): data went
     * out within the delayed-ACK time of the last data in, so the next
     * reply is likely to carry the ACK: no quick ACKs. Ends when the
     * delayed-ACK timer fires (no reply came in time). */
    bool pingpong;
    uint64_t last_data_rcv;             /* when in-order data last arrived */
    bool ack_now;
    uint8_t batch_work;                 /* TCP_BATCH_ACK | TCP_BATCH_WAKE, on tcp_stack.batch */
    bool ack_short;                     /* the last in-order data was shorter than rcv_mss */
    bool ack_held;                      /* on tcp_stack.held (tcp_ack_hold) */
    bool ack_single;                    /* held for one short segment alone (tcp_release_acks) */
    bool out_held;                      /* and a reply held with it (TCPSM_MSG_HOLD) */
    uint64_t ack_held_at;               /* when it went there */
    uint64_t last_rcv;                  /* for keepalive */
    uint64_t oow_ack_at;                /* last reflexive ACK (out-of-window, PAWS, challenge):
                                           Linux last_oow_ack_time */
    bool dupack_now;                    /* out-of-order data arrived: a pure duplicate ACK is
                                           owed even if data leaves in the same pass */
    bool more;                          /* MSG_MORE: this send is corked (tcp_output) */
    /* urgent data (tcp_urg.c, RFC 9293 3.8.5 / RFC 6093 as Linux) */
    uint32_t urg_seq;                   /* the received urgent byte's sequence number */
    uint16_t urg_data;                  /* TCP_URG_* | the byte */
    bool urginline;                     /* SO_OOBINLINE */
    uint8_t async_ev;                   /* TCPSM_ASYNC_*: what the owner is due to hear
                                           (tcpsm_sock_take_async) */
    bool async_nospace;                 /* a send or a poll found no room: POLL_OUT is due
                                           when there is (Linux SOCKWQ_ASYNC_NOSPACE) */
    bool urg_mode;                      /* sending: snd_up is ahead of snd_una */
    uint32_t snd_up;                    /* sequence just past our urgent byte */
    bool snd_mem_wait;                  /* a send was refused at the memory cap: not writable
                                           until memory frees (Linux SOCK_NOSPACE) */

    /* congestion (tcp_cong.c) */
    /* The algorithm by number, not by its ops' address: the TCB may be in
     * memory that programs with this code elsewhere share (tcp_cong_ops). */
    uint8_t cc_algo;                    /* TCPSM_CC_* in use, once cc_on */
    bool cc_on;                         /* tcp_cong_init ran */
    uint8_t cc_pref;                    /* TCPSM_CC_*: TCP_CONGESTION */
    struct cubic_state cubic;
    struct tcp_bbr bbr;
    struct tcp_rate rate;               /* delivery-rate estimation (tcp_rate.c) */
    struct tcp_rs rs;                   /* the rate sample of the ACK in hand */
    /* pacing (BBR): bytes per second (0 = none) and the earliest time the
     * next data may leave (Linux tcp_wstamp_ns) */
    uint64_t pacing_rate, pace_next;
    uint64_t pace_at;                   /* timer: output waits for pace_next */
    bool pace_waited;                   /* ... and did since the last data sent */
    uint32_t cwnd, ssthresh, recover, cwnd_acc;
    uint32_t chrono_rwnd_ms;            /* tcp_chrono.c */
    struct tcp_rtxq rtxq;               /* segments in flight (tcp_rtxq.c) */
    struct tcp_rack rack;               /* RACK-TLP loss detection (tcp_rack.c) */
    struct tcp_hystart hs;              /* HyStart++ (tcp_hystart.c) */
    bool loss_state;                    /* recovering after an RTO (Linux TCP_CA_Loss) */
    /* PRR (RFC 6937): bytes delivered and sent since recovery began, and
     * the flight then (RecoverFS) */
    uint32_t prr_delivered, prr_out, recover_fs;
    struct tcp_ooo sacked;              /* SACK scoreboard above snd_una (tcp_sack.c) */
    uint32_t prior_cwnd, prior_ssthresh;    /* before the recovery, for an undo */
    /* F-RTO (RFC 5682 3.1, SACK-enhanced, as Linux tcp_frto=2): after an
     * RTO outside a fast recovery, the first ACK that advances sends new
     * data instead of the next retransmission (frto_new), and an ACK of
     * data sent before the RTO and never retransmitted (frto_orig, below
     * recover) shows the timeout was spurious: undone. */
    bool frto, frto_new, frto_orig;
    uint32_t undo_tsval;                /* TSval of the recovery's first retransmission */
    uint8_t undo_state;                 /* TCP_UNDO_* */
    /* D-SACK undo (RFC 3708 with RFC 2883, Linux undo_marker/undo_retrans):
     * from the start of the last recovery (SND.UNA then), the bytes
     * retransmitted that no D-SACK has shown to be duplicates yet; -1 none
     * sent. All of them reported back: the recovery was reordering. */
    bool undo_on;
    uint32_t undo_marker;
    int32_t undo_retrans;
    unsigned dupacks;
    bool in_recovery;

    /* socket options */
    bool nodelay, cork, keepalive, reuseaddr;
    bool cork_push;                     /* the cork ceiling passed: send partial segments */
    uint64_t cork_at;
    int keepidle, keepintvl, keepcnt;   /* seconds / count */
    int linger;                         /* -1 off */
    uint32_t user_timeout_ms;

    /* the last segment sent, for the trace of a transition it caused */
    uint8_t tx_flags;
    bool tx_rst;                        /* a RST just went out: tcp_done traces it */
    uint32_t tx_seq, tx_ack, tx_len, tx_wnd;

    /* statistics (TCP_INFO) */
    uint32_t total_retrans, segs_in, segs_out, data_segs_in, data_segs_out, rcv_ooopack;
    /* Linux tp->delivered: segments ACKed or SACKed (each counted once, a
     * super-segment's record by its MSS segments), the SYN, D-SACKed
     * duplicates, and without SACK duplicate ACKs as Linux's Reno sacks */
    uint32_t delivered_segs;
    uint32_t reno_sacked;               /* without SACK: duplicate ACKs counted (tp->sacked_out) */
    uint32_t dsack_dups;                /* segments the peer reported twice (tp->dsack_dups) */
    uint32_t reord_seen;                /* ACKs that revealed reordering (tp->reord_seen) */
    /* Linux tp->reordering: how far segments were seen overtaken, in
     * segments (TCP_REORDER_INIT at first, at most TCP_REORDER_MAX): the
     * DupThresh of NewReno and of RACK before it saw reordering */
    uint16_t reordering;
    uint32_t rcv_wnd_last;              /* the window last advertised, bytes (Linux tp->rcv_wnd:
                                           TCP_INFO tcpi_rcv_wnd) */
    uint16_t rcv_mss_seen;              /* the peer's segment size, as Linux estimates it
                                           (icsk_ack.rcv_mss: 536 at most until a larger
                                           segment comes; 0 = none yet) */
    uint32_t chrono_sndbuf_ms, chrono_start_ms;     /* tcp_chrono.c */
    uint64_t bytes_acked, bytes_received, bytes_sent, bytes_retrans;
    uint64_t last_data_sent, last_data_recv, last_ack_recv;
    uint32_t min_rtt_us;
    uint16_t total_rto, total_rto_recoveries;
    uint64_t rto_start;                 /* start of the current RTO episode, for total_rto_time */
    uint64_t total_rto_ns;
    uint32_t audit_gen;                 /* == tcp_stack.audit_gen: on the list of TCBs */
    bool repair_reset;                  /* tcpsm_stack_repair: to be reset */
};

struct tcp_stack {
    struct tcpsm_stack *st;
    struct tcpsm_sock **ehash;          /* by 4-tuple */
    struct tcpsm_sock **bhash;          /* by local port: every bound TCB */
    struct tcpsm_sock **lhash;          /* by local port: listeners only (O(1) SYN demux) */
    uint32_t emask, bmask;
    /* RFC 6056 3.3.4 (Linux table_perturb): each pick for a destination
     * starts past the previous one, so a closed connection's port is not
     * reused at once while the peer may still hold it in TIME-WAIT */
    uint32_t eph_perturb[TCP_EPH_PERTURB];
    struct tcpsm_sock *tw_head, **tw_tail;  /* TIME-WAIT TCBs, oldest first */
    struct tcp_syn_stats syn;           /* all listeners */
    struct tcpsm_sock *all;
    size_t nsocks;
    /* The walk in steps (tcp_walk.c): the next TCB it visits (moved on as
     * that TCB is freed) and the number of the walk in progress. */
    struct tcpsm_sock *walk_next;
    uint32_t walk_id;                   /* never 0: 0 names no walk */
    uint32_t max_socks;
    /* connections owing an ACK or a wake-up at the end of the input batch */
    struct tcpsm_sock *batch[TCP_BATCH_MAX];
    unsigned nbatch;
    /* quick ACKs held while the application may still answer (tcp_ack_hold) */
    struct tcpsm_sock *held[TCP_HELD_MAX];
    unsigned nheld;
    bool hold_acks;                     /* this input batch may hold them */
    /* buffer memory (Linux tcp_mem): bytes in rings and out-of-order
     * segments; pressure from 3/4 of mem_max down to 1/2 */
    size_t mem_used, mem_max;
    bool mem_pressure;
    /* sockets whose send was refused at the cap (snd_mem_wait); woken at the
     * end of the pass once usage is back under 15/16 of the cap */
    uint32_t snd_mem_waiters;
    bool snd_mem_wake;
    /* Buffers of rings released empty, kept for the next ring that needs
     * one (tcp_buf.c): a bulk reader drains its receive ring on nearly
     * every read, and freeing it each time made every refill a malloc,
     * page faults and a chain of doubling copies. Not charged to
     * mem_used (no connection holds them); at most TCP_RING_CACHE
     * buffers and TCP_RING_CACHE_BYTES in all; emptied under pressure. */
    struct { uint8_t *buf; uint32_t cap; } ring_cache[TCP_RING_CACHE];
    unsigned nring_cache;
    size_t ring_cache_bytes;
    /* RFC 5961 7 challenge ACK rate limit: a budget drawn at random in
     * [limit/2, 3*limit/2) each second (Linux after CVE-2016-5696) */
    uint64_t chal_sec;
    uint32_t chal_left;
    uint8_t cc_default;                 /* TCPSM_CC_* of new sockets (cfg.congestion) */
    /* Repair (tcp_repair.c): the TCB tcp_sock_free is taking apart (an
     * intent record: a holder that dies between unlinking it from the list
     * of TCBs and freeing it leaves it here), and the mark of the last
     * walk over the TCBs (tcpsm_sock.audit_gen). */
    struct tcpsm_sock *dying;
    /* The second intent record: the TCB whose byte stream is being changed
     * (tcp_stream_begin/_end), around the few steps that move a ring and
     * the sequence number it is read against; the repair resets it. */
    struct tcpsm_sock *stream_busy;
    /* The third: a loss probe's output runs with the TCB's cwnd, nodelay
     * and cork set for one segment (tcp_timer.c send_loss_probe); a holder
     * killed inside it would leave the application's TCP_NODELAY on and
     * TCP_CORK off for good. Their values to restore, and the TCB (NULL:
     * none). */
    struct {
        struct tcpsm_sock *sk;
        uint32_t cwnd;
        bool nodelay, cork;
    } probe;
    uint32_t audit_gen;
};

/* Spurious fast retransmit detection (tcp_cong.c): armed on entering SACK
 * recovery, stamped by the first retransmission, checked by the first ACK. */
#define TCP_UNDO_OFF     0
#define TCP_UNDO_ARMED   1
#define TCP_UNDO_STAMPED 2
#define TCP_UNDO_DONE    3

/* What connect() sees (Linux sock->state: SS_UNCONNECTED, SS_CONNECTING,
 * SS_CONNECTED), apart from the TCP state. */
#define TCP_CONN_NONE       0
#define TCP_CONN_CONNECTING 1
#define TCP_CONN_CONNECTED  2

#define TCP_BATCH_ACK  1
#define TCP_BATCH_WAKE 2

/* tcp_conn.c */
struct tcpsm_sock *tcp_sock_alloc(struct tcpsm_stack *st);
void tcp_sock_free(struct tcpsm_sock *sk);
void tcp_ehash_add(struct tcpsm_sock *sk);
uint32_t tcp_ehash_idx(const struct tcpsm_sock *sk);
void tcp_tw_add(struct tcpsm_sock *sk);
void tcp_ehash_del(struct tcpsm_sock *sk);
struct tcpsm_sock *tcp_ehash_find(struct tcp_stack *ts, const struct tcpsm_addr *laddr,
                                  uint16_t lport, const struct tcpsm_addr *raddr, uint16_t rport);
struct tcpsm_sock *tcp_listener_find(struct tcp_stack *ts, const struct tcpsm_addr *laddr,
                                     uint16_t lport);
void tcp_bind_add(struct tcpsm_sock *sk);
void tcp_bind_del(struct tcpsm_sock *sk);
bool tcp_port_conflict(struct tcp_stack *ts, const struct tcpsm_sock *sk,
                       const struct tcpsm_addr *addr, uint16_t port);
/* The stack's own address toward raddr's family; false if it has none. */
bool tcp_local_addr(const struct tcpsm_stack *st, const struct tcpsm_addr *raddr,
                    struct tcpsm_addr *out);
/* The families a socket bound to laddr takes: 1 IPv4, 2 IPv6, 3 both. */
unsigned tcp_sock_families(const struct tcpsm_sock *sk);
/* MTU-derived L4 room and the MSS we advertise toward raddr's family
 * (RFC 6691: MTU - 40 for IPv4, MTU - 60 for IPv6). */
uint32_t tcp_mtu_l4(const struct tcpsm_sock *sk);
int tcp_pick_ephemeral(struct tcpsm_sock *sk, bool for_connect);
uint32_t tcp_isn(struct tcpsm_sock *sk, uint64_t now);
void tcp_set_state(struct tcpsm_sock *sk, int state, const char *why, const struct tcp_seg *in,
                   bool out_seg);
void tcp_done(struct tcpsm_sock *sk, int err, const char *why, const struct tcp_seg *in);
void tcp_maybe_free(struct tcpsm_sock *sk);
void tcp_release_buffers(struct tcpsm_sock *sk);
void tcp_wake(struct tcpsm_sock *sk);
void tcp_batch_defer(struct tcpsm_sock *sk, uint8_t work);
bool tcp_ack_hold(struct tcpsm_sock *sk, uint64_t now);
void tcp_out_release(struct tcpsm_sock *sk, uint64_t now);     /* a reply held goes */
bool tcp_fin_ack_hold(struct tcpsm_sock *sk, uint64_t now);
bool tcp_syn_ack_hold(struct tcpsm_sock *sk, uint64_t now);
void tcp_wake_listener(struct tcpsm_sock *lsk);
void tcp_unlink_child(struct tcpsm_sock *child);
void tcp_synq_add(struct tcpsm_sock *l, struct tcpsm_sock *c);
void tcp_synq_del(struct tcpsm_sock *l, struct tcpsm_sock *c);
void tcp_lhash_add(struct tcpsm_sock *l);
void tcp_syn_count(struct tcp_syn_stats *s, uint64_t now);
uint32_t tcp_syn_rate(const struct tcp_syn_stats *s, uint64_t now);
uint32_t tcp_cookie_make(struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                         const struct tcpsm_addr *ra, uint16_t rp,
                         uint32_t peer_isn, uint32_t data, uint64_t now);
int tcp_cookie_check(struct tcp_stack *ts, const struct tcpsm_addr *la, uint16_t lp,
                     const struct tcpsm_addr *ra, uint16_t rp,
                     uint32_t peer_isn, uint32_t cookie, uint64_t now);
void tcp_init_from_listener(struct tcpsm_sock *child, const struct tcpsm_sock *lsk);
bool tcp_challenge_ok(struct tcpsm_sock *sk, uint64_t now);
bool tcp_oow_rate_limited(struct tcpsm_sock *sk, uint64_t now);
uint8_t tcp_pick_wscale(uint32_t rcvbuf);
uint8_t tcp_rcv_wscale(const struct tcpsm_sock *sk);

/* tcp_opt.c */
void tcp_opt_parse(const uint8_t *p, size_t len, bool syn, struct tcp_opts *o);
size_t tcp_opt_build(const struct tcpsm_sock *sk, uint8_t *p, uint8_t flags, uint64_t now,
                     bool with_sack);
size_t tcp_opt_len(const struct tcpsm_sock *sk, uint8_t flags, bool with_sack);
uint32_t tcp_ts_now(const struct tcpsm_sock *sk, uint64_t now);

/* tcp_buf.c */
bool tcp_mem_charge(struct tcp_stack *ts, size_t n, bool force);
/* Urgent data (tcp_urg.c). */
uint32_t tcp_copied_seq(const struct tcpsm_sock *sk);
void tcp_urg_input(struct tcpsm_sock *sk, const struct tcp_seg *seg);
void tcp_urg_capture(struct tcpsm_sock *sk);
uint32_t tcp_urg_read_limit(struct tcpsm_sock *sk, uint32_t n, bool peek, uint32_t *skip);
void tcp_urg_after_read(struct tcpsm_sock *sk);
bool tcp_urg_hides_rcvq(const struct tcpsm_sock *sk);
void tcp_urg_out(struct tcpsm_sock *sk, uint8_t *th, uint32_t seq);
static inline bool tcp_urg_sending(const struct tcpsm_sock *sk)
{
    return sk->urg_mode && seq_gt(sk->snd_up, sk->snd_una);
}

void tcp_mem_uncharge(struct tcp_stack *ts, size_t n);
void tcp_ring_cache_drain(struct tcp_stack *ts);
int tcp_ring_reserve(struct tcpsm_sock *sk, struct tcp_ring *r, uint32_t need, uint32_t limit,
                     bool force);
void tcp_ring_release(struct tcpsm_sock *sk, struct tcp_ring *r);
int tcp_ofo_insert(struct tcpsm_sock *sk, uint32_t seq, const uint8_t *data, uint32_t len);
uint32_t tcp_ofo_pull(struct tcpsm_sock *sk);
void tcp_ofo_purge(struct tcpsm_sock *sk);
int ring_alloc(struct tcp_ring *r, uint32_t cap);
void ring_free(struct tcp_ring *r);
int ring_grow(struct tcp_ring *r, uint32_t cap);
int ring_reserve(struct tcp_ring *r, uint32_t need, uint32_t limit);
uint32_t ring_write(struct tcp_ring *r, const void *src, uint32_t n);
void ring_write_at(struct tcp_ring *r, uint32_t off, const void *src, uint32_t n);
uint32_t ring_write_csum_at(struct tcp_ring *r, uint32_t off, const void *src, uint32_t n,
                            uint32_t sum, uint32_t at);
void ring_read_at(const struct tcp_ring *r, uint32_t off, void *dst, uint32_t n);
void ring_drop(struct tcp_ring *r, uint32_t n);
int ooo_add(struct tcp_ooo *o, uint32_t start, uint32_t end);
uint32_t ooo_advance(struct tcp_ooo *o, uint32_t rcv_nxt);

/* tcp_output.c */
void tcp_output(struct tcpsm_sock *sk, uint64_t now);
void tcp_send_ack(struct tcpsm_sock *sk, uint64_t now);
void tcp_send_syn(struct tcpsm_sock *sk, uint64_t now);
void tcp_send_synack_stateless(struct tcpsm_sock *sk, uint64_t now);
void tcp_send_rst_sk(struct tcpsm_sock *sk, uint64_t now);
void tcp_send_probe(struct tcpsm_sock *sk, uint64_t now);
void tcp_retransmit_head(struct tcpsm_sock *sk, uint64_t now);
void tcp_pmtu_update(struct tcpsm_sock *sk, uint32_t mtu, uint64_t now);   /* tcp_input.c */
/* tcp_pmtu.c: RFC 4821 / 8899 black holes and probing upward */
void tcp_plpmtud_rto(struct tcpsm_sock *sk, uint64_t now);
void tcp_plpmtud_start(struct tcpsm_sock *sk, uint64_t now);
void tcp_plpmtud_icmp(struct tcpsm_sock *sk, uint32_t mss);
uint32_t tcp_plpmtud_probe_len(struct tcpsm_sock *sk, uint32_t unsent, uint32_t usable,
                               uint32_t mss, uint64_t now);
void tcp_plpmtud_probe_sent(struct tcpsm_sock *sk, uint32_t seq, uint32_t len, uint32_t mss);
void tcp_plpmtud_acked(struct tcpsm_sock *sk);
void tcp_plpmtud_probe_lost(struct tcpsm_sock *sk);
bool tcp_plpmtud_dup_lost(struct tcpsm_sock *sk);
bool tcp_plpmtud_excused(const struct tcpsm_sock *sk);
void tcp_retransmit_range(struct tcpsm_sock *sk, uint32_t end, uint64_t now);
void tcp_retransmit_tail(struct tcpsm_sock *sk, uint64_t now);
void tcp_reply_rst(struct tcpsm_stack *st, const struct tcp_seg *seg);
uint32_t tcp_rcv_wnd_offer(struct tcpsm_sock *sk);
uint32_t tcp_rcv_space(const struct tcpsm_sock *sk);
uint32_t tcp_send_mss(const struct tcpsm_sock *sk);
/* The MSS we advertised less the timestamp option's room (Linux
 * tp->advmss, which loses it once timestamps are agreed); before the
 * handshake ends ts_ok says only that we offered them. */
static inline uint32_t tcp_adv_mss(const struct tcpsm_sock *sk)
{
    return sk->rcv_mss - (sk->ts_ok ? 12u : 0u);
}
/* The MSS-sized segments bytes fill (Linux DIV_ROUND_UP(len, mss)): 0 for
 * no bytes or no MSS. */
static inline uint32_t tcp_segs(uint32_t bytes, uint32_t mss)
{
    return mss ? (uint32_t)(((uint64_t)bytes + mss - 1) / mss) : 0;
}
/* The segments a segment or record stands for (Linux tcp_skb_pcount): at
 * least one, whatever its length (a bare FIN, no MSS yet). */
static inline uint32_t tcp_segs_min1(uint32_t bytes, uint32_t mss)
{
    uint32_t n = tcp_segs(bytes, mss);
    return n ? n : 1;
}
void tcp_window_update(struct tcpsm_sock *sk, uint64_t now);
uint32_t tcp_unsent(const struct tcpsm_sock *sk);
/* Queue our FIN and make its state change (ESTABLISHED/SYN-RECEIVED ->
 * FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK; any other state: nothing): shutdown,
 * close, and the kill -9 repair of a FIN cut before its state change. */
void tcp_send_fin(struct tcpsm_sock *sk, const char *why, uint64_t now);
/* Ends the walk in steps in progress, if any (tcp_walk.c): its number is
 * not valid again, and a new one starts from a fresh number. */
static inline void tcp_walk_end(struct tcp_stack *ts)
{
    ts->walk_next = NULL;
    if (++ts->walk_id == 0)
        ts->walk_id = 1;
}
/* A loss probe's temporary cwnd, TCP_NODELAY and TCP_CORK back to the
 * values its intent record holds (tcp_timer.c send_loss_probe; the repair
 * after a holder cut inside it). */
static inline void tcp_probe_restore(struct tcp_stack *ts, struct tcpsm_sock *sk)
{
    sk->cwnd = ts->probe.cwnd;
    sk->nodelay = ts->probe.nodelay;
    sk->cork = ts->probe.cork;
}
/* Without SACK after an RTO: where the resending had got (reno_rtx_end),
 * never outside [SND.UNA, SND.MAX] whatever the mark holds. */
static inline uint32_t tcp_reno_resend_point(const struct tcpsm_sock *sk)
{
    return seq_gt(sk->reno_rtx_end, sk->snd_una) && seq_le(sk->reno_rtx_end, sk->snd_max)
               ? sk->reno_rtx_end
               : sk->snd_una;
}

/* tcp_chrono.c (Linux enum tcp_chrono: a higher one takes precedence) */
#define TCP_CHRONO_NONE    0
#define TCP_CHRONO_BUSY    1            /* data queued or in flight */
#define TCP_CHRONO_RWND    2            /* the peer's window stops the next segment */
#define TCP_CHRONO_SNDBUF  3            /* everything sent, the program waits for room */
void tcp_chrono_start(struct tcpsm_sock *sk, uint8_t type, uint64_t now);
void tcp_chrono_stop(struct tcpsm_sock *sk, uint8_t type, uint64_t now);
uint64_t tcp_chrono_us(const struct tcpsm_sock *sk, uint8_t type, uint64_t now);

/* tcp_timer.c */
void tcp_timer_update(struct tcpsm_sock *sk);
void tcp_rto_arm(struct tcpsm_sock *sk, uint64_t now);
void tcp_rto_stop(struct tcpsm_sock *sk);
void tcp_rtt_sample(struct tcpsm_sock *sk, uint32_t rtt_us);
void tcp_delack_schedule(struct tcpsm_sock *sk, uint64_t now);
void tcp_ka_reset(struct tcpsm_sock *sk, uint64_t now);
void tcp_persist_check(struct tcpsm_sock *sk, uint64_t now);
void tcp_timewait_start(struct tcpsm_sock *sk, uint64_t now);
void tcp_timer_fire(struct tcpsm_sock *sk, uint64_t now);

/* tcp_sack.c */
bool tcp_sack_update(struct tcpsm_sock *sk, const struct tcp_opts *o);
void tcp_sack_prune(struct tcpsm_sock *sk);
uint32_t tcp_sack_bytes(const struct tcpsm_sock *sk);

/* tcp_rtxq.c */
void tcp_rtxq_free(struct tcpsm_sock *sk);
void tcp_rtxq_sent(struct tcpsm_sock *sk, uint32_t seq, uint32_t len, bool fin, uint64_t now);
uint32_t tcp_rtxq_ack(struct tcpsm_sock *sk, uint32_t ack, uint64_t now);
uint32_t tcp_rtxq_sack(struct tcpsm_sock *sk, uint32_t l, uint32_t r, uint64_t now);
uint32_t tcp_rtxq_pipe(const struct tcpsm_sock *sk);
bool tcp_rtxq_next_lost(struct tcpsm_sock *sk, uint32_t mss, uint32_t *seq, uint32_t *len);
bool tcp_rtxq_lost_at(const struct tcpsm_sock *sk, uint32_t seq);
bool tcp_rtxq_lost_below(const struct tcpsm_sock *sk, uint32_t end);
void tcp_rtxq_mark_lost(struct tcpsm_sock *sk, struct tcp_rtx *x);
void tcp_rtxq_mark_all_lost(struct tcpsm_sock *sk);
void tcp_rtxq_clear_lost(struct tcpsm_sock *sk);
struct tcp_rtx *tcp_rtxq_at(const struct tcpsm_sock *sk, uint32_t i);

/* tcp_rack.c */
#define TCP_REORDER_INIT 3              /* net.ipv4.tcp_reordering, RFC 5681's DupThresh */
#define TCP_REORDER_MAX  300            /* net.ipv4.tcp_max_reordering */
static inline bool tcp_rack_on(const struct tcpsm_sock *sk) { return sk->sack_ok; }
static inline uint32_t tcp_dupthresh(const struct tcpsm_sock *sk)
{
    return sk->reordering ? sk->reordering : TCP_REORDER_INIT;
}
void tcp_rack_init(struct tcpsm_sock *sk);
void tcp_reordering_seen(struct tcpsm_sock *sk, uint32_t segs);
void tcp_rack_delivered(struct tcpsm_sock *sk, const struct tcp_rtx *x, uint64_t now);
void tcp_rack_dsack(struct tcpsm_sock *sk);
void tcp_rack_recovery_exit(struct tcpsm_sock *sk);
uint32_t tcp_rack_reo_wnd(const struct tcpsm_sock *sk);
bool tcp_rack_detect(struct tcpsm_sock *sk, uint64_t now);
void tcp_rack_dupthresh(struct tcpsm_sock *sk);

/* tcp_rate.c */
void tcp_rate_sent(struct tcpsm_sock *sk, struct tcp_rtx *x, uint64_t now);
void tcp_rate_ack_begin(struct tcpsm_sock *sk);
void tcp_rate_delivered(struct tcpsm_sock *sk, struct tcp_rtx *x, uint64_t now);
uint32_t tcp_rtx_segs(const struct tcpsm_sock *sk, const struct tcp_rtx *x);
void tcp_rate_gen(struct tcpsm_sock *sk, uint64_t now);
void tcp_rate_check_app_limited(struct tcpsm_sock *sk);

/* tcp_bbr.c: the bandwidth estimate (bytes/s); pacing (the output path asks) */
uint64_t tcp_bbr_max_bw(const struct tcpsm_sock *sk);
uint32_t tcp_pace_burst(const struct tcpsm_sock *sk, uint32_t mss, uint32_t seg_max);
void tcp_pace_sent(struct tcpsm_sock *sk, uint32_t len, uint64_t now);
static inline bool tcp_pacing(const struct tcpsm_sock *sk) { return sk->pacing_rate != 0; }

/* tcp_hystart.c */
void tcp_hystart_init(struct tcpsm_sock *sk);
void tcp_hystart_rtt(struct tcpsm_sock *sk, uint32_t rtt_us);
uint32_t tcp_hystart_ss_inc(struct tcpsm_sock *sk, uint32_t acked);

/* tcp_cong.c: RFC 5681 + RFC 6582 NewReno behind an ops table. */
struct congestion_ops {
    const char *name;
    void (*init)(struct tcpsm_sock *sk);
    void (*on_ack)(struct tcpsm_sock *sk, uint32_t acked);     /* new data ACKed, not in recovery */
    uint32_t (*ssthresh)(struct tcpsm_sock *sk);                /* on loss */
    /* optional (Linux cong_control): sets cwnd and pacing itself from each
     * ACK's rate sample (sk->rs), in and out of recovery (no PRR) */
    void (*cong_control)(struct tcpsm_sock *sk, uint32_t acked);
    void (*on_loss)(struct tcpsm_sock *sk);                     /* optional: an RTO */
    /* optional (Linux undo_cwnd): a reduction was undone; sets the cwnd
     * itself (without it: cwnd as before the reduction) */
    void (*undo_cwnd)(struct tcpsm_sock *sk);
};
extern const struct congestion_ops tcp_newreno, tcp_cubic, tcp_bbr;
/* This process's ops of algorithm TCPSM_CC_* which (NewReno for unknown ones). */
const struct congestion_ops *tcp_cong_ops(int which);
void tcp_cong_init(struct tcpsm_sock *sk);
int tcp_cong_pick(const struct tcpsm_sock *sk, int pref);
/* ACK processing; returns true if the caller should retransmit the head now. */
bool tcp_cong_ack(struct tcpsm_sock *sk, uint32_t acked, bool dup, uint64_t now);
void tcp_cong_rto(struct tcpsm_sock *sk);
void tcp_cong_rack_ack(struct tcpsm_sock *sk, uint32_t acked, uint32_t delivered);
void tcp_cong_undo_all(struct tcpsm_sock *sk);
void tcp_cong_loss_ack(struct tcpsm_sock *sk, bool advanced, bool sacked, bool dup);
void tcp_cong_reno_loss_ack(struct tcpsm_sock *sk, bool advanced, bool dup, bool ecr,
                            uint32_t tsecr);
void tcp_cong_undo_check(struct tcpsm_sock *sk, uint32_t tsecr);
void tcp_cong_dsack(struct tcpsm_sock *sk, uint32_t l, uint32_t r);
void tcp_cong_dsack_undo(struct tcpsm_sock *sk);

/* RFC 8985 6.2: was (t1, s1) sent after (t2, s2)? */
static inline bool tcp_sent_after(uint64_t t1, uint32_t s1, uint64_t t2, uint32_t s2)
{
    return t1 > t2 || (t1 == t2 && seq_gt(s1, s2));
}

static inline struct tcp_stack *TS(const struct tcpsm_sock *sk) { return sk->st->tcp; }
static inline bool tcp_synchronized(int s) { return s >= TCPSM_ESTABLISHED; }

/* Intent record of a byte stream (struct tcp_stack.stream_busy). Some
 * updates of a connection's byte stream take several stores that no check
 * can tell from a consistent state when cut between them: dropping
 * acknowledged bytes from the send ring and moving its start (snd_buf_seq),
 * adding received bytes to the receive ring and advancing RCV.NXT (also a
 * FIN's RCV.NXT + 1 and rcv_fin), a ring's length and head in ring_drop, a
 * ring's buffer, capacity and head in ring_grow. Each such span is bracketed:
 * a holder killed inside one (SIGKILL) leaves the TCB named here, and the
 * repair (tcp_repair.c) resets that connection rather than let its stream
 * run off by a segment.
 *
 * Ordering: a SIGKILL stops the thread at an instruction boundary, so the
 * stores it did are those program-before that point, and the kernel's exit
 * path (the robust-futex hand-over, full barriers) makes them visible to the
 * next taker of the lock, which acquires it after EOWNERDEAD. Only the
 * compiler could move the span's stores across the record's: a signal fence
 * (no instruction) forbids that, as for a signal handler in the same thread.
 * Hot path cost: a load and two plain stores per span. Spans nest (a ring
 * grown while RCV.NXT's span is open): begin returns the outer record, end
 * restores it. The pointer is the TCB's address: the region maps at one
 * fixed address in every process (README "Process model"). */
static inline struct tcpsm_sock *tcp_stream_begin(struct tcpsm_sock *sk)
{
    struct tcp_stack *ts = TS(sk);
    struct tcpsm_sock *outer = ts->stream_busy;
    ts->stream_busy = sk;
    atomic_signal_fence(memory_order_seq_cst);
    return outer;
}

static inline void tcp_stream_end(struct tcpsm_sock *sk, struct tcpsm_sock *outer)
{
    atomic_signal_fence(memory_order_seq_cst);
    TS(sk)->stream_busy = outer;
}
/* Linux sk_acceptq_is_full: the accept queue holds backlog + 1 connections. */
static inline bool tcp_acceptq_full(const struct tcpsm_sock *l) { return l->nacc > l->backlog; }

#endif
