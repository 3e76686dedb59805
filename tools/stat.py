#!/usr/bin/env python3
"""tcpsm stat: the tcpsm stacks running on this machine and their sockets,
like `ss -tin`: per stack its address, interface and process; per socket its
state, addresses, queues, rtt/rttvar, cwnd/ssthresh, retransmissions and
SACK state; then the stack's non-zero counters (all of them with --all)."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcpsmrun  # noqa: E402

SHORT = {"ESTABLISHED": "ESTAB", "SYN-SENT": "SYN-SENT", "SYN-RECEIVED": "SYN-RECV",
         "FIN-WAIT-1": "FIN-WAIT-1", "FIN-WAIT-2": "FIN-WAIT-2", "CLOSE-WAIT": "CLOSE-WAIT",
         "LAST-ACK": "LAST-ACK", "TIME-WAIT": "TIME-WAIT", "CLOSING": "CLOSING",
         "LISTEN": "LISTEN", "CLOSED": "CLOSED"}


def ms(us):
    return ("%.3f" % (us / 1000.0)).rstrip("0").rstrip(".")


def render(st, show_all):
    o = []
    addrs = []
    if st["address"] != "0.0.0.0":
        addrs.append("%s/%s" % (st["address"], st["prefix_len"]))
    if "address6" in st:
        addrs.append("%s/%s" % (st["address6"], st["prefix6_len"]))
    o.append("stack %s on %s (mac %s%s), pid %s (%s), up %.1fs, %d socket(s)%s" % (
        " ".join(addrs), st["interface"], st["mac"],
        ", gw " + st["gateway"] if "gateway" in st else "",
        ",".join(str(p) for p in st["pids"]), st["comm"], st["uptime_s"], st["nsocks"],
        " (%d listed)" % st["listed"] if st["listed"] < st["nsocks"] else ""))
    o.append("%-11s %7s %7s %-22s %-22s" % ("State", "Recv-Q", "Send-Q", "Local Address:Port",
                                            "Peer Address:Port"))
    for s in st["sockets"]:
        remote = s["remote"] if s["state"] != "LISTEN" else "*:*"
        o.append("%-11s %7d %7d %-22s %-22s%s" % (SHORT.get(s["state"], s["state"]), s["recv_q"],
                                                  s["send_q"], s["local"], remote,
                                                  "" if s["held"] else " orphan"))
        if s["state"] == "LISTEN":
            if "syn_queue" in s:
                o.append("\t syn_queue:%d accept_queue:%d syns:%d syn_rate:%d/s cookies:%d "
                         "sent/%d ok/%d bad syn_dropped:%d" % (
                             s["syn_queue"], s["accept_queue"], s["syns"], s["syn_rate"],
                             s["syn_cookies_sent"], s["syn_cookies_ok"], s["syn_cookies_bad"],
                             s["syn_dropped"]))
            continue
        if s["state"] == "CLOSED":
            continue
        g = s.get
        d = ["sack" if s["sack"] else "", "ts" if s["timestamps"] else "",
             "wscale:%d,%d" % tuple(s["wscale"]),
             "rto:%s" % ms(s["rto_us"]), "rtt:%s/%s" % (ms(s["rtt_us"]), ms(s["rttvar_us"])),
             "minrtt:%s" % ms(g("min_rtt_us", 0)) if g("min_rtt_us") else "",
             "mss:%d" % s["mss"], "rcvmss:%d" % s["rcv_mss"], "cwnd:%d" % s["cwnd"],
             ("ssthresh:%d" % s["ssthresh"]) if s["ssthresh"] < 0x7fffffff else "",
             "ca:%s" % g("ca_state") if g("ca_state", "open") != "open" else "",
             "bytes_sent:%d" % g("bytes_sent", 0) if g("bytes_sent") else "",
             "bytes_retrans:%d" % g("bytes_retrans", 0) if g("bytes_retrans") else "",
             "bytes_acked:%d" % s["bytes_acked"], "bytes_received:%d" % s["bytes_received"],
             "segs_out:%d" % s["segs_out"], "segs_in:%d" % s["segs_in"],
             "snd_wnd:%d" % s["snd_wnd"], "rcv_wnd:%d" % s["rcv_wnd"],
             "notsent:%d" % g("notsent", 0) if g("notsent") else "",
             "unacked:%d" % s["unacked"] if s["unacked"] else "",
             "retrans:%d/%d" % (s["retransmits"], s["total_retrans"]),
             "lost:%d" % s["lost"] if s["lost"] else "",
             "sacked:%d" % g("sacked", 0) if g("sacked") else "",
             "reordering:%d" % g("reordering", 0) if g("reordering", 3) != 3 else "",
             "rcv_ooopack:%d" % g("rcv_ooopack", 0) if g("rcv_ooopack") else "",
             "backoff:%d" % s["backoff"] if s["backoff"] else "",
             "lastsnd:%d lastrcv:%d lastack:%d" % (g("last_send_ms", 0), g("last_recv_ms", 0),
                                                   g("last_ack_ms", 0))
             if "last_send_ms" in s else ""]
        o.append("\t " + " ".join(x for x in d if x))
    c = st["counters"]
    shown = [(k, v) for k, v in c.items() if v or show_all]
    line = "counters:"
    for k, v in shown:
        item = " %s=%d" % (k, v)
        if len(line) + len(item) > 100:
            o.append(line)
            line = "         "
        line += item
    o.append(line)
    lk = st.get("lock", {})
    if lk.get("recovered") or lk.get("recovered_clean") or lk.get("procs_reaped"):
        o.append("lock: taken over from a holder that died halfway %d times (repaired: "
                 "repair_* counters), between operations %d times; processes reaped %d" % (
                     lk.get("recovered", 0), lk.get("recovered_clean", 0),
                     lk.get("procs_reaped", 0)))
    ln, cap = st["link"], st["capture"]
    o.append("link: rx %d tx %d frames (%d of them after the stack lock, in %d batches, %d "
             "calls left them waiting), rx queue drops %d, "
             "truncated %d, tx errors %d; capture: %d client(s), %d frames, %d dropped" % (
                 ln["rx_frames"], ln["tx_frames"], ln.get("tx_after_lock", 0),
                 ln.get("tx_batches", 0), ln.get("tx_kept", 0),
                 ln["rx_queue_drops"], ln["rx_truncated"],
                 ln["tx_errors"], cap["clients"], cap["frames"], cap["dropped"]))
    return "\n".join(o)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tcpsm stat", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print every stack as one JSON array")
    ap.add_argument("--watch", nargs="?", const=1.0, type=float, metavar="SECS",
                    help="refresh every SECS seconds (1) until interrupted")
    ap.add_argument("--all", action="store_true", help="show zero counters too")
    ap.add_argument("--addr", help="only the stack with this address")
    ap.add_argument("--pid", type=int, help="only the stack of this process")
    ap.add_argument("--run-dir", help="where stacks publish (TCPSM_RUN_DIR, default %s)"
                    % tcpsmrun.DEFAULT_RUN_DIR)
    a = ap.parse_args(argv)
    d = tcpsmrun.run_dir(a.run_dir)
    while True:
        sts = [s for s in tcpsmrun.stacks(d)
               if (not a.addr or a.addr in (s["address"], s.get("address6"))) and (not a.pid or s["pid"] == a.pid)]
        if a.json:
            for s in sts:
                s.pop("_base", None)
            text = json.dumps(sts, indent=1)
        elif not sts:
            text = "no tcpsm stack running (looked in %s)" % d
        else:
            text = "\n\n".join(render(s, a.all) for s in sts)
        if tcpsmrun.unreadable and not a.json:
            text += "\n(%d more stack(s) not readable by this user: pid %s; their regions are " \
                    "mode 0600)" % (len(tcpsmrun.unreadable),
                                    ", ".join(map(str, tcpsmrun.unreadable)))
        if a.watch:
            sys.stdout.write("\033[H\033[J" + time.strftime("%H:%M:%S ") + text + "\n")
            sys.stdout.flush()
            time.sleep(max(0.1, a.watch))
            continue
        print(text)
        return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, BrokenPipeError):
        sys.exit(0)
