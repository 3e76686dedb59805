#!/usr/bin/env python3
"""iperf3_check.py DIR CLIENT_JSON SERVER_JSON [REMOTE_PREFIX]

Byte accounting of one iperf3 test from both ends' JSON: the receiver got at least 1 MiB,
never more than the sender sent, and no more than 16 MiB less (what can be in flight when the
test ends: the sender's socket buffer, up to 4 MiB on Linux, the receiver's, up to 6 MiB, and
frames queued on the link socket when the machine is loaded); each end's own count agrees with
what the other end reports for it. DIR "reverse" means the server sent (-R). With
REMOTE_PREFIX, the client's connection must have gone to an address starting with it (the
address family under test). Exit status non-zero with the reason on failure."""
import json
import sys

d, cf, sf = sys.argv[1:4]
prefix = sys.argv[4] if len(sys.argv) > 4 else None
c = json.load(open(cf))
s = json.load(open(sf))
for name, j in (("client", c), ("server", s)):
    if "error" in j:
        sys.exit(f"{name} error: {j['error']}")
ce = c["end"]
se = s["end"]
if d != "reverse":
    sent, recvd = ce["sum_sent"]["bytes"], se["sum_received"]["bytes"]
    mirror = (ce["sum_received"]["bytes"], recvd)        # the client's copy of the server's count
else:
    sent, recvd = se["sum_sent"]["bytes"], ce["sum_received"]["bytes"]
    mirror = (ce["sum_sent"]["bytes"], sent)
remote = c["start"]["connected"][0]["remote_host"]
secs = ce["sum_received"].get("seconds") or 3
gbps = recvd * 8 / secs / 1e9
print(f"{d}: {remote}: sent {sent} received {recvd} ({gbps:.2f} Gbit/s)", file=sys.stderr)
if prefix and not remote.startswith(prefix):
    sys.exit(f"{d} connected to {remote}, expected {prefix}...")
if recvd < (1 << 20):
    sys.exit(f"only {recvd} bytes received")
if recvd > sent:
    sys.exit(f"received {recvd} > sent {sent}")
if sent - recvd > (16 << 20):
    sys.exit(f"{sent - recvd} bytes sent but never received")
if mirror[0] != mirror[1]:
    sys.exit(f"the two ends disagree: {mirror[0]} vs {mirror[1]}")
