#!/usr/bin/env python3
"""tcpsm capture: attach to a running tcpsm stack and write its frames (sent
and received, from the moment of attaching) to stdout as a pcap stream:

    tcpsm capture 198.18.0.10 port 80 | tshark -r -
    tcpsm capture 198.18.0.10 -w trace.pcap --seconds 30

FILTER is a small subset of the BPF/tcpdump syntax: primitives
`host A` (IPv4 or IPv6), `src host A`, `dst host A`, `port N`, `src port N`, `dst port N`,
`tcp`, `udp`, `icmp`, `arp`, `ip`, each optionally preceded by `not`, joined
by `and` / `or` (evaluated left to right). A stack sends at most
RT_CAPTURE_CLIENTS streams at once; a reader too slow for the stack loses
frames (counted in `tcpsm stat` as capture dropped), the stack never waits."""
import argparse
import ipaddress
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tcpsmrun  # noqa: E402


class FilterError(ValueError):
    pass


def parse_filter(words):
    """Returns a predicate over a decoded frame (dict), or None for 'all'."""
    toks = " ".join(words).split()
    if not toks:
        return None
    prims, ops, i = [], [], 0

    def prim():
        nonlocal i
        neg = False
        while i < len(toks) and toks[i] in ("not", "!"):
            neg, i = not neg, i + 1
        if i >= len(toks):
            raise FilterError("filter ends early")
        d = None
        if toks[i] in ("src", "dst"):
            d, i = toks[i], i + 1
        if i >= len(toks):
            raise FilterError("filter ends early")
        kw = toks[i]
        i += 1
        if kw in ("host", "port"):
            if i >= len(toks):
                raise FilterError("%s needs a value" % kw)
            val = toks[i]
            i += 1
            if kw == "port":
                if not val.isdigit() or int(val) > 65535:
                    raise FilterError("bad port %r" % val)
                val = int(val)
            else:
                try:
                    val = str(ipaddress.ip_address(val))
                except ValueError:
                    raise FilterError("bad IP address %r" % val)
            key = "addr" if kw == "host" else "port"

            def f(p, key=key, val=val, d=d):
                if key not in ("addr", "port") or p.get("src" + key) is None:
                    return False
                if d == "src":
                    return p["src" + key] == val
                if d == "dst":
                    return p["dst" + key] == val
                return val in (p["src" + key], p["dst" + key])
        elif kw in ("tcp", "udp", "icmp", "arp", "ip") and d is None:
            def f(p, kw=kw):
                return p["proto"] == kw or (kw == "ip" and p["proto"] in ("tcp", "udp", "icmp",
                                                                          "ip"))
        else:
            raise FilterError("unknown filter word %r" % kw)
        return (lambda p: not f(p)) if neg else f

    prims.append(prim())
    while i < len(toks):
        if toks[i] not in ("and", "or", "&&", "||"):
            raise FilterError("expected and/or, got %r" % toks[i])
        ops.append(toks[i] in ("and", "&&"))
        i += 1
        prims.append(prim())

    def pred(p):
        v = prims[0](p)
        for is_and, q in zip(ops, prims[1:]):
            v = (v and q(p)) if is_and else (v or q(p))
        return v
    return pred


def decode(frame):
    p = {"proto": "other", "srcaddr": None, "dstaddr": None, "srcport": None, "dstport": None}
    if len(frame) < 14:
        return p
    et = struct.unpack("!H", frame[12:14])[0]
    if et == 0x0806:
        p["proto"] = "arp"
        if len(frame) >= 42:
            p["srcaddr"] = socket.inet_ntoa(frame[28:32])
            p["dstaddr"] = socket.inet_ntoa(frame[38:42])
        return p
    if et == 0x86DD and len(frame) >= 54:
        nh = frame[20]
        p["srcaddr"] = str(ipaddress.IPv6Address(bytes(frame[22:38])))
        p["dstaddr"] = str(ipaddress.IPv6Address(bytes(frame[38:54])))
        p["proto"] = {6: "tcp", 17: "udp", 58: "icmp"}.get(nh, "ip")
        if nh in (6, 17) and len(frame) >= 58:
            p["srcport"], p["dstport"] = struct.unpack("!HH", frame[54:58])
        return p
    if et != 0x0800 or len(frame) < 34:
        return p
    ihl = (frame[14] & 15) * 4
    proto = frame[23]
    p["srcaddr"] = socket.inet_ntoa(frame[26:30])
    p["dstaddr"] = socket.inet_ntoa(frame[30:34])
    p["proto"] = {6: "tcp", 17: "udp", 1: "icmp"}.get(proto, "ip")
    l4 = 14 + ihl
    if proto in (6, 17) and len(frame) >= l4 + 4:
        p["srcport"], p["dstport"] = struct.unpack("!HH", frame[l4:l4 + 4])
    return p


def find_stack(target, directory):
    sts = tcpsmrun.stacks(directory, fresh=False)
    if target.startswith("pid:") or target.isdigit():
        pid = int(target.split(":")[-1])
        m = [s for s in sts if s["pid"] == pid]
    else:
        m = [s for s in sts if target in (s["address"], s.get("address6"))]
    if not m:
        raise SystemExit("tcpsm capture: no running stack %s %s (in %s; see tcpsm stat)" % (
            "of pid" if target[:1].isdigit() or target.startswith("pid:") else "with address",
            target, directory))
    if len(m) > 1:
        raise SystemExit("tcpsm capture: %d stacks have address %s (pids %s): name one as "
                         "pid:N" % (len(m), target, ", ".join(str(s["pid"]) for s in m)))
    return m[0]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tcpsm capture",
                                 description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("stack", metavar="ADDR|pid:N", help="the stack's address, or pid:N")
    ap.add_argument("filter", nargs="*", help="e.g. host 198.18.0.1 and port 80")
    ap.add_argument("-w", "--write", metavar="FILE", help="write to FILE instead of stdout")
    ap.add_argument("-c", "--count", type=int, help="stop after N frames (after the filter)")
    ap.add_argument("--seconds", type=float, help="stop after this many seconds")
    ap.add_argument("--run-dir", help="where stacks publish (TCPSM_RUN_DIR, default %s)"
                    % tcpsmrun.DEFAULT_RUN_DIR)
    a = ap.parse_args(argv)
    try:
        pred = parse_filter(a.filter)
    except FilterError as e:
        print("tcpsm capture: %s" % e, file=sys.stderr)
        return 2
    st = find_stack(a.stack, tcpsmrun.run_dir(a.run_dir))
    try:
        s, r = tcpsmrun.request(st["_base"] + ".sock", "capture")
    except OSError as e:
        print("tcpsm capture: cannot attach to pid %d: %s" % (st["pid"], e), file=sys.stderr)
        return 1
    if r != "ok":
        print("tcpsm capture: pid %d refused: %s" % (st["pid"], r), file=sys.stderr)
        return 1
    out = open(a.write, "wb") if a.write else sys.stdout.buffer
    # The classic pcap header in native order, microseconds, Ethernet; the
    # records come from the stack whole (stack/runtime/pcap_writer.c).
    out.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    out.flush()
    print("tcpsm capture: attached to pid %d (%s on %s)%s" % (
        st["pid"], st["address"], st["interface"],
        ", filter: " + " ".join(a.filter) if a.filter else ""), file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    deadline = time.monotonic() + a.seconds if a.seconds else None
    n = seen = 0
    try:
        while a.count is None or n < a.count:
            timeout = None
            if deadline:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
            s.settimeout(timeout)
            try:
                msg = s.recv(70000)
            except socket.timeout:
                break
            if not msg:
                print("tcpsm capture: the stack stopped", file=sys.stderr)
                break
            seen += 1
            if pred and not pred(decode(msg[16:])):
                continue
            out.write(msg)
            out.flush()
            n += 1
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        s.close()
        print("tcpsm capture: %d frame(s) written, %d seen" % (n, seen), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
