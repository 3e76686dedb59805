#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_tcp (tests/fuzz/corpus_tcp/): one input per
scenario with a few typical records (in-order data, out-of-order data, the
application sending and reading, the peer's FIN). Record layout: fuzz_tcp.c play()."""
import os, struct, sys

ACK, PSH, FIN, SYN, RST, URG = 0x10, 0x08, 0x01, 0x02, 0x04, 0x20

def rec(flags=ACK, soff=0, shift=0, ackbase=0, aoff=0, x16=False, sack=False, urg=False,
        win=65535, plen=0, ms=1, app=0, amount=0, port=0, raw=0):
    b3 = shift | (ackbase << 3) | (0x20 if x16 else 0) | (0x40 if sack else 0) | (0x80 if urg else 0)
    return struct.pack('>BhBhHBBBB', flags, soff, b3, aoff, win, plen, ms, app | (amount << 3),
                       port | (raw << 2))

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus_tcp')
os.makedirs(out, exist_ok=True)
flow = [
    rec(ACK | PSH, plen=100, app=1, amount=10),            # in order, read
    rec(ACK | PSH, soff=300, plen=100),                    # a hole, then data beyond it
    rec(ACK | PSH, soff=100, plen=200, app=1, amount=20),  # the hole filled
    rec(ACK, app=2, amount=30),                            # the application sends
    rec(ACK, ms=40),                                       # the peer ACKs it
    rec(ACK | PSH, plen=50, urg=True),                     # urgent data
    rec(ACK | FIN, app=1, amount=31),                      # the peer closes
    rec(ACK, app=5),                                       # the application closes
]
for scen in range(8):
    for opts in (0x38, 0x00):
        with open(os.path.join(out, 'scen%d_%02x' % (scen, opts)), 'wb') as f:
            f.write(bytes([scen | opts]) + b''.join(flow))
# path MTU: data in flight, then ICMP frag-needed quoting it (flags 0xff), more data
with open(os.path.join(out, 'pmtu'), 'wb') as f:
    f.write(bytes([0x38]) + rec(ACK, app=2, amount=31) + rec(0xff, aoff=-1000, win=1200)
            + rec(ACK, ms=63, app=2, amount=31) + rec(ACK, ms=63))
# attacks: a blind RST and SYN at guessed sequence numbers, old timestamps
with open(os.path.join(out, 'blind'), 'wb') as f:
    f.write(bytes([0x38]) + rec(RST, soff=5000) + rec(SYN, soff=-3) + rec(ACK, ms=64 | 128, plen=10)
            + rec(ACK, ackbase=2, aoff=1234) + rec(ACK | PSH, soff=1, shift=7, plen=20, x16=True))
# urgent pointers (pointer 0: the segment's first byte), each newer one while
# the reader sits on the last urgent byte, which it drops (Linux tcp_check_urg):
# two bytes gone between two reads (a false alarm of the harness, 2026-11-30)
with open(os.path.join(out, 'urg_newer'), 'wb') as f:
    f.write(bytes([0x00]) + rec(ACK | PSH | URG, plen=1) + rec(ACK | PSH | URG, plen=1)
            + rec(ACK | PSH | URG, plen=1) + rec(ACK, app=1, amount=10))
