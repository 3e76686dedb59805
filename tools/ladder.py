#!/usr/bin/env python3
"""tcpsm ladder: the sequence diagram of one TCP connection, as textbooks
draw it: two vertical time axes (client, server), one arrow per segment
labelled with its flags and relative seq/ack (SYN=1 seq=x, ACK=1 ack=x+1),
and each side's RFC 9293 state beside its axis at every change.

Input: a pcap (TCPSM_PCAP, `tcpsm capture`, tcpdump/tshark -w: classic pcap,
Ethernet or Linux cooked) or a TCPSM_TRACE file. A pcap shows every
segment; a trace shows only those that changed the stack's state, and gives
the stack side's states as the stack recorded them.

States the capture does not record are inferred from the segments with the
RFC 9293 3.10 rules. Where the capture point makes the order ambiguous
(the two FINs of a simultaneous close cross on the wire), the acknowledgment
numbers decide: a side that sent a segment acking up to N had received
everything below N, and had not received what lies above. A segment
retransmitted before anything from the other side acknowledged it is drawn
as lost.
"""
import argparse
import bisect
import json
import re
import struct
import sys

STATES = ["CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
          "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"]
FIN, SYN, RST, PSH, ACK, URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
FLAG_NAMES = [(SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"),
              (URG, "URG")]
M32 = 0xFFFFFFFF


def seq_ge(a, b):
    return ((a - b) & M32) < 0x80000000


def seq_gt(a, b):
    return a != b and seq_ge(a, b)


class Seg:
    """One TCP segment between endpoints (addr, port) src and dst."""
    def __init__(self, t, src, dst, flags, seq, ack, length, win):
        self.t, self.src, self.dst = t, src, dst
        self.flags, self.seq, self.ack, self.len, self.win = flags, seq, ack, length, win
        self.side = 0           # 0 client, 1 server (set once the connection is chosen)
        self.i = 0              # capture order
        self.lost = False
        self.local_state = None  # trace input: the stack side's new state

    @property
    def end(self):
        """Sequence number after this segment (RFC 9293 3.4: SYN and FIN count)."""
        return (self.seq + self.len + (1 if self.flags & SYN else 0) +
                (1 if self.flags & FIN else 0)) & M32

    @property
    def occupies(self):
        return self.len > 0 or self.flags & (SYN | FIN)


# ------------------------------------------------------------------ input

def read_pcap(data):
    if len(data) < 24:
        raise ValueError("too short for a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("not a classic pcap file (pcapng: convert with editcap -F pcap)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    off, segs = 24, []
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(e + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        t = sec + frac / (1e9 if nano else 1e6)
        s = parse_frame(frame, linktype, t)
        if s:
            segs.append(s)
    return segs


def parse_frame(f, linktype, t):
    if linktype == 1:           # Ethernet
        if len(f) < 14:
            return None
        et, p = struct.unpack("!H", f[12:14])[0], 14
        while et in (0x8100, 0x88A8) and len(f) >= p + 4:
            et, p = struct.unpack("!H", f[p + 2:p + 4])[0], p + 4
    elif linktype == 113:       # Linux cooked (tshark -i any)
        if len(f) < 16:
            return None
        et, p = struct.unpack("!H", f[14:16])[0], 16
    elif linktype == 101:       # raw IP
        et = 0x0800 if f and f[0] >> 4 == 4 else 0x86DD
        p = 0
    else:
        return None
    if et == 0x0800:
        if len(f) < p + 20 or f[p + 9] != 6:
            return None
        ihl = (f[p] & 15) * 4
        total = struct.unpack("!H", f[p + 2:p + 4])[0]
        src = ".".join(str(b) for b in f[p + 12:p + 16])
        dst = ".".join(str(b) for b in f[p + 16:p + 20])
        l4, l4end = p + ihl, p + total
    elif et == 0x86DD:
        if len(f) < p + 40 or f[p + 6] != 6:
            return None
        import ipaddress
        src = str(ipaddress.IPv6Address(bytes(f[p + 8:p + 24])))
        dst = str(ipaddress.IPv6Address(bytes(f[p + 24:p + 40])))
        l4, l4end = p + 40, p + 40 + struct.unpack("!H", f[p + 4:p + 6])[0]
    else:
        return None
    if len(f) < l4 + 20:
        return None
    sport, dport, seq, ack, doff, flags, win = struct.unpack("!HHIIBBH", f[l4:l4 + 16])
    hl = (doff >> 4) * 4
    return Seg(t, (src, sport), (dst, dport), flags & 0x3F, seq, ack, max(0, l4end - l4 - hl), win)


TRACE_RE = re.compile(
    r"tcpsm: (\S+):(\d+) > (\S+):(\d+)\s+(\S+) -> (\S+)\s+"
    r"(?:([<>]) (\S+) seq=(\d+) ack=(\d+) win=(\d+) len=(\d+)|\((.*?)\))\s+\+([\d.]+)s")


def split_ep(a, p):
    return (a.strip("[]"), int(p))


def read_trace(text):
    """Returns (segments, notes): a segment per line that names one, and the
    transitions without a segment (timeouts, application calls)."""
    segs, notes = [], []
    for line in text.splitlines():
        m = TRACE_RE.search(line)
        if not m:
            continue
        l, r = split_ep(m.group(1), m.group(2)), split_ep(m.group(3), m.group(4))
        old, new, t = m.group(5), m.group(6), float(m.group(14))
        if r[1] == 0:           # a listener's own LISTEN line
            continue
        if m.group(7):
            flags = 0
            for bit, name in FLAG_NAMES:
                if name in m.group(8).split("+"):
                    flags |= bit
            src, dst = (l, r) if m.group(7) == ">" else (r, l)
            s = Seg(t, src, dst, flags, int(m.group(9)), int(m.group(10)), int(m.group(12)),
                    int(m.group(11)))
            p = segs[-1] if segs else None
            if p and (p.t, p.src, p.dst, p.flags, p.seq, p.ack, p.len) == \
                    (s.t, s.src, s.dst, s.flags, s.seq, s.ack, s.len):
                p.local_state[2].append(new)    # one segment, two transitions
                continue
            s.local_state = (l, old, [new])
            segs.append(s)
        else:
            notes.append((t, l, r, old, new, m.group(13)))
    return segs, notes


# ------------------------------------------------------------------ the model

class Side:
    """What RFC 9293 3.10 says one endpoint's state becomes when it sends or
    receives a segment. path: the states one event passed through (a FIN
    that also acknowledges ours takes FIN-WAIT-1 to FIN-WAIT-2, then
    TIME-WAIT)."""
    def __init__(self, state):
        self.state = state
        self.iss = None
        self.fin_end = None     # sequence after our FIN
        self.path = []

    def go(self, new):
        if new != self.state:
            self.state = new
            self.path.append(new)

    def fin_acked(self, s):
        return self.fin_end is not None and s.flags & ACK and seq_ge(s.ack, self.fin_end)

    def on_send(self, s):
        if s.flags & RST:
            self.go("CLOSED")
            return
        if s.flags & SYN and self.iss is None:
            self.iss = s.seq
        if s.flags & SYN and not s.flags & ACK and self.state == "CLOSED":
            self.go("SYN-SENT")
        if s.flags & FIN:
            self.fin_end = s.end
            self.go({"ESTABLISHED": "FIN-WAIT-1", "SYN-RECEIVED": "FIN-WAIT-1",
                     "CLOSE-WAIT": "LAST-ACK"}.get(self.state, self.state))

    def on_recv(self, s):
        st = self.state
        if s.flags & RST:
            if st not in ("LISTEN", "CLOSED", "TIME-WAIT"):
                self.go("CLOSED")
            return
        if s.flags & SYN:
            if st in ("LISTEN", "CLOSED") and not s.flags & ACK:
                self.go("SYN-RECEIVED")
            elif st == "SYN-SENT" and s.flags & ACK:
                self.go("ESTABLISHED")
            elif st == "SYN-SENT":
                self.go("SYN-RECEIVED")             # simultaneous open
            elif st == "SYN-RECEIVED" and s.flags & ACK:
                self.go("ESTABLISHED")
            if not s.flags & FIN:
                return
        if self.state == "SYN-RECEIVED" and s.flags & ACK and self.iss is not None and \
                seq_gt(s.ack, self.iss):
            self.go("ESTABLISHED")
        if self.fin_acked(s):
            self.go({"FIN-WAIT-1": "FIN-WAIT-2", "CLOSING": "TIME-WAIT",
                     "LAST-ACK": "CLOSED"}.get(self.state, self.state))
        if s.flags & FIN:
            self.go({"ESTABLISHED": "CLOSE-WAIT", "SYN-RECEIVED": "CLOSE-WAIT",
                     "FIN-WAIT-1": "CLOSING", "FIN-WAIT-2": "TIME-WAIT"}.get(self.state,
                                                                            self.state))


def choose(segs, tuple_arg):
    """Keeps the segments of one connection; returns (segs, client, server)."""
    if tuple_arg:
        a, b = tuple_arg
        segs = [s for s in segs if {s.src, s.dst} == {a, b}]
    elif segs:
        first = next((s for s in segs if s.flags & SYN and not s.flags & ACK), segs[0])
        pair = {first.src, first.dst}
        segs = [s for s in segs if {s.src, s.dst} == pair]
    if not segs:
        raise ValueError("no TCP segment of the chosen connection in the input")
    syn = next((s for s in segs if s.flags & SYN and not s.flags & ACK), segs[0])
    client, server = syn.src, syn.dst
    for i, s in enumerate(segs):
        s.i, s.side, s.lost = i, 0 if s.src == client else 1, False
    return segs, client, server


class AckIndex:
    """Per side: its sends in capture order, their capture indices, and the
    running maximum of their acknowledgment numbers, unwrapped relative to
    the other side's first sequence number: "the first send of r that
    acknowledges N" and "had r acknowledged N by capture index i" become
    binary searches (O(n log n) for a whole capture)."""
    def __init__(self, segs):
        self.sends = [[s for s in segs if s.side == 0], [s for s in segs if s.side == 1]]
        self.idx = [[x.i for x in self.sends[r]] for r in (0, 1)]
        self.seq0 = [next((x.seq for x in self.sends[k]), 0) for k in (0, 1)]
        self.acked = []
        for r in (0, 1):
            run, out = None, []
            for x in self.sends[r]:
                if x.flags & ACK:
                    a = self.unwrap(x.ack, 1 - r)
                    run = a if run is None or a > run else run
                out.append(run if run is not None else float("-inf"))
            self.acked.append(out)

    def unwrap(self, v, k):
        d = (v - self.seq0[k]) & M32
        return d - (1 << 32) if d >= 0x80000000 else d

    def first_acking(self, r, m):
        """Index in sends[r] of r's first send acknowledging all of m, or None."""
        k = bisect.bisect_left(self.acked[r], self.unwrap(m.end, m.side))
        return k if k < len(self.sends[r]) else None

    def acked_before(self, r, m, i):
        """Had r acknowledged all of m in a send captured before index i?"""
        j = bisect.bisect_left(self.idx[r], i) - 1
        return j >= 0 and self.acked[r][j] >= self.unwrap(m.end, m.side)


def mark_lost(segs, ai):
    """A segment that occupies sequence space and is sent again before
    anything from the other side acknowledged it never arrived."""
    later = {}
    for m in reversed(segs):
        if not m.occupies:
            continue
        key = (m.side, m.seq, m.flags & (SYN | FIN))
        m2 = later.get(key)
        if m2 is not None and seq_ge(m2.end, m.end) and \
                not ai.acked_before(1 - m.side, m, m2.i):
            m.lost = True
        later[key] = m


def timeline(segs, ai):
    """Orders every send and delivery (see the module comment). Returns a
    list of (kind, seg) with kind 'send', 'recv' or 'lost'."""
    sends, idx = ai.sends, ai.idx
    slots = [[[] for _ in range(len(sends[r]) + 1)] for r in (0, 1)]
    last = [0, 0]
    for m in segs:
        if m.lost:
            continue
        r = 1 - m.side
        slot = None
        if m.occupies:
            slot = ai.first_acking(r, m)
        if slot is None:
            slot = bisect.bisect_left(idx[r], m.i)
        slot = max(slot, last[r])
        last[r] = slot
        slots[r][slot].append(m)
    queues = []
    for r in (0, 1):
        q = []
        for k in range(len(sends[r]) + 1):
            q += [("recv", m) for m in slots[r][k]]
            if k < len(sends[r]):
                q.append(("send", sends[r][k]))
        queues.append(q)
    out, sent, pos = [], set(), [0, 0]

    def key(ev):
        return ev[1].i + (0.5 if ev[0] == "recv" else 0)

    while pos[0] < len(queues[0]) or pos[1] < len(queues[1]):
        heads = [queues[r][pos[r]] if pos[r] < len(queues[r]) else None for r in (0, 1)]
        ok = [h is not None and (h[0] == "send" or h[1].i in sent) for h in heads]
        cand = [r for r in (0, 1) if ok[r]]
        if not cand:            # inconsistent input: take a send, else anything
            cand = [r for r in (0, 1) if heads[r] is not None]
        r = min(cand, key=lambda r: key(heads[r]))
        kind, m = heads[r]
        pos[r] += 1
        if kind == "send":
            sent.add(m.i)
            out.append(("lost" if m.lost else "send", m))
        else:
            out.append(("recv", m))
    return out


def label(s, base):
    """SYN=1 ACK=1 seq=y ack=x+1 (len=N): relative to each side's ISN."""
    names = {0: "x", 1: "y"}

    def rel(v, side):
        if base[side] is None:
            return str(v)
        d = (v - base[side]) & M32
        return names[side] + ("+%d" % d if d else "")
    parts = ["%s=1" % n for bit, n in FLAG_NAMES if s.flags & bit]
    parts.append("seq=" + rel(s.seq, s.side))
    if s.flags & ACK:
        parts.append("ack=" + rel(s.ack, 1 - s.side))
    if s.len:
        parts.append("len=%d" % s.len)
    return " ".join(parts)


def build(segs, client, server, notes=(), local=None):
    """Runs the model over the timeline. Returns rows: dicts with the event,
    and each side's new state when it changed at that row. local: the
    stack's endpoint when the input is a trace (its states come from it)."""
    ai = AckIndex(segs)
    mark_lost(segs, ai)
    first_from_server = next((s for s in segs if s.side == 1), None)
    server_listens = bool(segs and segs[0].side == 0 and segs[0].flags == SYN and
                          (first_from_server is None or first_from_server.flags & SYN))
    sides = [Side("CLOSED"), Side("LISTEN" if server_listens else "CLOSED")]
    local_side = None if local is None else (0 if local == client else 1)
    if local_side is not None:
        first = next((s.local_state for s in segs if s.local_state), None)
        if first:
            sides[local_side].state = first[1]
    base = [None, None]
    for s in segs:
        if s.flags & SYN and base[s.side] is None:
            base[s.side] = s.seq
    for side in (0, 1):
        # No SYN from this side (a trace holds only the segments that changed
        # the stack's state): the other side's first ACK acknowledged it.
        if base[side] is None and base[1 - side] is not None:
            a = next((s.ack for s in segs if s.side != side and s.flags & ACK), None)
            if a is not None:
                base[side] = (a - 1) & M32
        if base[side] is None:  # no SYN seen: the first sequence number is the origin
            base[side] = next((s.seq for s in segs if s.side == side), None)
    rows = [{"kind": "start", "states": [sides[0].state, sides[1].state], "t": None}]
    pending = sorted(notes, key=lambda n: n[0])
    for kind, s in timeline(segs, ai):
        while pending and pending[0][0] < s.t and local_side is not None:
            n = pending.pop(0)
            rows.append(note_row(sides, local_side, n))
        before = [sides[0].state, sides[1].state]
        sides[0].path, sides[1].path = [], []
        who = s.side if kind in ("send", "lost") else 1 - s.side
        if kind in ("send", "lost"):
            sides[who].on_send(s)
        else:
            sides[who].on_recv(s)
        if local_side is not None and who == local_side:
            # The stack's states are the ones its trace recorded for the
            # segment the trace lines name, at this event ('>' sent, '<' received).
            sides[who].state, sides[who].path = before[who], []
            dir_local = "send" if s.src == local else "recv"
            if s.local_state and (kind in ("send", "lost")) == (dir_local == "send"):
                for new in s.local_state[2]:
                    sides[who].go(new)
        row = {"kind": kind, "seg": s, "t": s.t, "label": label(s, base),
               "states": [sides[0].path or None, sides[1].path or None]}
        rows.append(row)
    for n in pending:
        if local_side is not None:
            rows.append(note_row(sides, local_side, n))
    return rows


def note_row(sides, local_side, n):
    t, _, _, old, new, why = n
    sides[local_side].state = new
    st = [None, None]
    st[local_side] = [new]
    return {"kind": "note", "t": t, "why": why, "states": st}


# ------------------------------------------------------------------ output

def ep(e):
    return ("[%s]:%d" if ":" in e[0] else "%s:%d") % e


def _st(v):
    return ">".join(v) if v else ""


def _plain(r, rows, i):
    """A data or ACK segment that changes no state and arrives at once."""
    if r["kind"] != "send" or r["seg"].flags & (SYN | FIN | RST) or any(r["states"]):
        return False
    nxt = rows[i + 1] if i + 1 < len(rows) else None
    return bool(nxt and nxt["kind"] == "recv" and nxt["seg"] is r["seg"] and
                not any(nxt["states"]))


def _human(n):
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return ("%d %s" if unit == "bytes" else "%.1f %s") % (n, unit)
        n /= 1000.0


def collapse(rows, keep=2, longer_than=6):
    """Replaces each run of more than longer_than segments that change no
    state by its first and last keep segments around one note row that says
    what was left out (segments each way, bytes)."""
    out, i = [rows[0]], 1
    while i < len(rows):
        j, run = i, []
        while j < len(rows) and _plain(rows[j], rows, j):
            run.append(j)
            j += 2
        if len(run) > longer_than:
            hidden = run[keep:-keep]
            n, nbytes = [0, 0], 0
            for k in hidden:
                sg = rows[k]["seg"]
                n[sg.side] += 1
                nbytes += sg.len
            what = ", ".join("%d %s" % (n[d], arrow) for d, arrow in ((0, "->"), (1, "<-"))
                             if n[d])
            out += rows[run[0]:hidden[0]]
            out.append({"kind": "note", "t": None, "states": [None, None],
                        "why": "%d more: %s, %s" % (len(hidden), what,
                                                            _human(nbytes))})
            out += rows[hidden[-1] + 2:j]
            i = j
        else:
            out.append(rows[i])
            i += 1
    return out


def render_text(rows, client, server, width=46):
    """The ladder for a terminal: one row per segment (arrows drawn level),
    states beside the axes."""
    labels = [r["label"] for r in rows if "label" in r]
    width = max(width, max((len(x) for x in labels), default=0) + 8)
    sts = [_st(r["states"][0]) for r in rows] + [rows[0]["states"][0]]
    lw = max(13, max(len(x) for x in sts)) + 1
    out = ["%9s %-*s %s" % ("", lw + width + 1, "client " + ep(client),
                            "server " + ep(server))]
    st = rows[0]["states"]
    out.append("%9s %-*s|%s| %s" % ("", lw, st[0], " " * width, st[1]))
    t0 = next((r["t"] for r in rows if r["t"] is not None), 0.0)

    def line(tcol, ls, mid, rs):
        out.append("%9s %-*s|%s| %s" % (tcol, lw, ls, mid, rs))

    i = 1
    while i < len(rows):
        r = rows[i]
        ls, rs = _st(r["states"][0]), _st(r["states"][1])
        tcol = "+%.3fs" % (r["t"] - t0) if r["t"] is not None and r["kind"] != "recv" else ""
        if r["kind"] in ("send", "lost"):
            s = r["seg"]
            lab = " " + r["label"] + " "
            # The receiver's state, when its delivery is the next row, goes
            # on the arrow's row as at the arrow's head.
            nxt = rows[i + 1] if i + 1 < len(rows) else None
            if r["kind"] == "send" and nxt and nxt["kind"] == "recv" and nxt["seg"] is s:
                if 1 - s.side == 0:
                    ls = _st(nxt["states"][0]) or ls
                else:
                    rs = _st(nxt["states"][1]) or rs
                i += 1
            body = width - 2
            if r["kind"] == "lost":
                half = body // 2 + 4
                seg = (lab.center(half, "-") + "X").ljust(body) if s.side == 0 else \
                    ("X" + lab.center(half, "-")).rjust(body)
                arrow = "-" + seg + " " if s.side == 0 else " " + seg + "-"
            elif s.side == 0:
                arrow = "-" + lab.center(body, "-") + ">"
            else:
                arrow = "<" + lab.center(body, "-") + "-"
            line(tcol, ls, arrow, rs)
        elif ls or rs or r["kind"] == "note":
            what = ("(%s)" % r["why"])[:width] if r["kind"] == "note" else \
                "(arrives: %s)" % r["label"] if r["kind"] == "recv" else ""
            line(tcol, ls, what.center(width), rs)
        i += 1
    return "\n".join(out) + "\n"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_svg(rows, client, server):
    xl, xr, top, dy = 230, 650, 90, 30
    # Rows: every event gets one; a delivery right after its send shares the
    # send's next row so the arrow slopes down one row, as textbooks draw it.
    ys, y = [], top
    for r in rows[1:]:
        ys.append(y)
        y += dy if r["kind"] != "recv" or r["states"][0] or r["states"][1] else dy * 0.6
    height = int(y + 40)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="900" height="%d" '
         'font-family="monospace" font-size="13">' % height,
         '<defs><marker id="a" markerWidth="10" markerHeight="8" refX="9" refY="4" '
         'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#222"/></marker></defs>',
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="30" text-anchor="middle" font-weight="bold">client %s</text>'
         % (xl, esc(ep(client))),
         '<text x="%d" y="30" text-anchor="middle" font-weight="bold">server %s</text>'
         % (xr, esc(ep(server))),
         '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-width="2"/>'
         % (xl, top - 30, xl, height - 20),
         '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-width="2"/>'
         % (xr, top - 30, xr, height - 20)]
    st = rows[0]["states"]
    o.append('<text x="%d" y="%d" text-anchor="end" fill="#05a">%s</text>' % (xl - 8, top - 40,
                                                                             st[0]))
    o.append('<text x="%d" y="%d" fill="#05a">%s</text>' % (xr + 8, top - 40, st[1]))
    t0 = next((r["t"] for r in rows if r["t"] is not None), 0.0)
    sent_y = {}
    for r, yy in zip(rows[1:], ys):
        if r["states"][0]:
            o.append('<text x="%d" y="%d" text-anchor="end" fill="#05a">%s</text>'
                     % (xl - 8, yy + 4, esc(" > ".join(r["states"][0]))))
        if r["states"][1]:
            o.append('<text x="%d" y="%d" fill="#05a">%s</text>'
                     % (xr + 8, yy + 4, esc(" > ".join(r["states"][1]))))
        if r["kind"] == "note":
            o.append('<text x="%d" y="%d" text-anchor="middle" fill="#777">(%s)</text>'
                     % ((xl + xr) // 2, yy + 4, esc(r["why"])))
        if r["kind"] in ("send", "lost"):
            s = r["seg"]
            sent_y[s.i] = yy
            o.append('<text x="10" y="%d" fill="#777">+%.3fs</text>' % (yy + 4, r["t"] - t0))
            if r["kind"] == "lost":
                x0 = xl if s.side == 0 else xr
                x1 = (xl + xr) / 2 + (60 if s.side == 0 else -60)
                y1 = yy + dy * 0.6
                o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#b00" '
                         'stroke-dasharray="4,3"/>' % (x0, yy, x1, y1))
                o.append('<text x="%d" y="%d" fill="#b00" text-anchor="middle" '
                         'font-size="16">&#x2715;</text>' % (x1, y1 + 5))
                o.append('<text x="%d" y="%d" text-anchor="middle" fill="#b00">%s (lost)</text>'
                         % ((x0 + x1) / 2, (yy + y1) / 2 - 6, esc(r["label"])))
        if r["kind"] == "recv":
            s = r["seg"]
            y0 = sent_y.get(s.i, yy)
            x0, x1 = (xl, xr) if s.side == 0 else (xr, xl)
            o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#222" '
                     'marker-end="url(#a)"/>' % (x0, y0, x1, yy))
            o.append('<text x="%d" y="%d" text-anchor="middle" paint-order="stroke" '
                     'stroke="white" stroke-width="4">%s</text>'
                     % ((xl + xr) / 2, (y0 + yy) / 2 - 4, esc(r["label"])))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def state_lists(rows):
    out = [[rows[0]["states"][0]], [rows[0]["states"][1]]]
    for r in rows[1:]:
        for k in (0, 1):
            for st in r["states"][k] or ():
                if st != out[k][-1]:
                    out[k].append(st)
    return out


def parse_ep(s):
    m = re.match(r"^\[?([0-9a-fA-F:.]+?)\]?:(\d+)$", s)
    if not m:
        raise argparse.ArgumentTypeError("expected ADDR:PORT, got %r" % s)
    return (m.group(1), int(m.group(2)))


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="tcpsm ladder",
        description="Draw one TCP connection as a ladder (sequence) diagram: a text "
                    "rendering on stdout, SVG with --svg.")
    ap.add_argument("input", help="a pcap (TCPSM_PCAP, tcpsm capture, tcpdump -w) or a "
                                  "TCPSM_TRACE file; - for stdin")
    ap.add_argument("--conn", nargs=2, metavar=("A:PORT", "B:PORT"), type=parse_ep,
                    help="the connection's two endpoints (default: the first connection)")
    ap.add_argument("--svg", metavar="FILE", help="also write the diagram as SVG to FILE")
    ap.add_argument("--json", action="store_true",
                    help="print the segments and each side's states as JSON instead")
    ap.add_argument("--width", type=int, default=46, help="arrow width in the text (46)")
    ap.add_argument("--full", action="store_true",
                    help="every segment (default: a run of more than 6 segments that change "
                         "no state is shown as its first 2, a note and its last 2)")
    a = ap.parse_args(argv)
    notes, local = (), None
    try:
        data = sys.stdin.buffer.read() if a.input == "-" else open(a.input, "rb").read()
        if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                        b"\xa1\xb2\x3c\x4d"):
            segs = read_pcap(data)
        else:
            segs, notes = read_trace(data.decode("utf-8", "replace"))
        segs, client, server = choose(segs, a.conn)
        if segs[0].local_state:
            local = segs[0].local_state[0]
            notes = [n for n in notes if n[1] == local and {n[1], n[2]} == {client, server}]
        rows = build(segs, client, server, notes, local)
        shown = rows if a.full else collapse(rows)
    except (OSError, ValueError, struct.error) as e:
        print("tcpsm ladder: %s: %s" % (a.input, e), file=sys.stderr)
        return 1
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(render_svg(shown, client, server))
    if a.json:
        sl = state_lists(rows)
        json.dump({"client": ep(client), "server": ep(server),
                   "states": {"client": sl[0], "server": sl[1]},
                   "segments": [{"from": "client" if r["seg"].side == 0 else "server",
                                 "label": r["label"], "lost": r["kind"] == "lost"}
                                for r in rows if r["kind"] in ("send", "lost")]},
                  sys.stdout, indent=1)
        print()
    else:
        sys.stdout.write(render_text(shown, client, server, max(30, a.width)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
