/* The counters' names, in the order of struct tcpsm_counters. */
#include "counter_names.h"

#define C(f) { #f, offsetof(struct tcpsm_counters, f) }
const struct counter_name counter_names[] = {
    C(eth_in), C(eth_out), C(eth_drop_short), C(eth_drop_not_us), C(eth_drop_proto), C(tx_drop),
    C(arp_in), C(arp_req_out), C(arp_reply_out), C(arp_drop_bad), C(neigh_queue_drop),
    C(neigh_full), C(ip_in), C(ip_out), C(ip_drop_hdr), C(ip_drop_csum), C(ip_drop_not_us),
    C(ip_drop_frag), C(ip_drop_proto), C(ip_drop_noroute), C(icmp_in), C(icmp_echo_reply_out),
    C(icmp_unreach_in), C(icmp_drop_bad), C(tcp_in), C(tcp_out), C(tcp_retrans),
    C(tcp_fast_retrans), C(tcp_rto), C(tcp_drop_hdr), C(tcp_drop_csum), C(tcp_drop_no_sock),
    C(tcp_drop_window), C(tcp_drop_listen_overflow), C(tcp_drop_synq_full),
    C(tcp_drop_acceptq_full), C(tcp_drop_rcvbuf), C(tcp_ooo_in), C(tcp_dup_in), C(tcp_rst_in),
    C(tcp_rst_out), C(tcp_challenge_ack), C(tcp_conn_timeout), C(tcp_active_opens),
    C(tcp_passive_opens), C(tcp_drop_max_socks), C(tcp_undo), C(tcp_ack_skipped),
    C(tcp_listen_syns), C(tcp_syncookies_sent), C(tcp_syncookies_recv), C(tcp_syncookies_failed),
    C(tcp_tw_recycled), C(tcp_drop_mem), C(tcp_mem_pressure), C(tcp_ofo_pruned), C(ip6_in),
    C(ip6_out), C(ip6_drop_hdr), C(ip6_drop_not_us), C(ip6_drop_frag), C(ip6_drop_proto),
    C(ip6_drop_noroute), C(ip6_drop_exthdr), C(icmp6_in), C(icmp6_echo_reply_out),
    C(icmp6_unreach_in), C(icmp6_ptb_in), C(icmp6_err_out), C(icmp6_drop_bad), C(nd_ns_in),
    C(nd_ns_out), C(nd_na_in), C(nd_na_out), C(nd_rs_out), C(nd_ra_in), C(nd_drop_bad),
    C(nd_dad_dup), C(ip6_reasm_ok), C(ip_frag_in), C(ip_reasm_ok), C(ip_reasm_fail),
    C(ip_reasm_timeout), C(tcp_gso_out), C(tcp_gso_segs), C(tcp_rack_lost), C(tcp_tlp),
    C(tcp_rtxq_full), C(pmtu_learned), C(pmtu_evicted), C(tcp_pmtu_blackhole), C(tcp_gro_frames),
    C(tcp_pmtu_probes), C(tcp_pmtu_probe_ok), C(tcp_pmtu_probe_lost),
    C(tcp_dsack_undo), C(tcp_paws_disordered_ack), C(tcp_spurious_rto), C(tcp_loss_undo),
    C(tcp_acks_held), C(tcp_synack_acks_held), C(tcp_replies_held),
    C(repair_passes), C(repair_faults), C(repair_resets), C(repair_leaks),
    C(repair_stream_resets), C(repair_pmtu_dropped),
};
#undef C

const size_t counter_names_n = sizeof(counter_names) / sizeof(counter_names[0]);

/* A counter added to the struct without a name here fails the build. */
_Static_assert(sizeof(counter_names) / sizeof(counter_names[0]) ==
                   sizeof(struct tcpsm_counters) / sizeof(uint64_t),
               "struct tcpsm_counters and counter_names[] differ");
