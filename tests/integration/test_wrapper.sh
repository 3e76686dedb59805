#!/usr/bin/env bash
# The wrapper's command line (no network): a subcommand name as the first word runs the
# subcommand, `tcpsm -- NAME` runs the program NAME; --profile sets its documented values only
# for variables that no option and no environment set; an unknown profile is a usage error;
# a bad TCPSM_SNDBUF stops the program at its first socket call with one line naming it.
# timeout: 30
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
need_cmd python3
t=$TCPSM_BUILD/tcpsm
TMPD_ERR=$(mktemp /tmp/tcpsm-wrapper.XXXXXX)
trap 'rm -f "$TMPD_ERR"' EXIT
envof() { "$t" "$@" -- env | grep -E '^TCPSM_(SNDBUF|RCVBUF|RCVBUF_MAX|SPIN_US)=' | sort | tr '\n' ' '; }

"$t" stat --help | grep -q 'usage: tcpsm stat' || die "tcpsm stat is not the subcommand"
"$t" ladder --help | grep -q 'usage: tcpsm ladder' || die "tcpsm ladder is not the subcommand"
"$t" capture --help | grep -q 'usage: tcpsm capture' || die "tcpsm capture is not the subcommand"
"$t" -- stat --version | grep -q 'GNU coreutils' || die "tcpsm -- stat did not run the program stat"

e=$(env -u TCPSM_SNDBUF -u TCPSM_RCVBUF -u TCPSM_RCVBUF_MAX bash -c "$(declare -f envof); t=$t; envof --profile throughput")
[ "$e" = "TCPSM_RCVBUF=1M TCPSM_RCVBUF_MAX=16M TCPSM_SNDBUF=1M " ] || die "throughput profile: $e"
e=$(TCPSM_SNDBUF=2M envof --rcvbuf 512K --profile=throughput)
[ "$e" = "TCPSM_RCVBUF=512K TCPSM_RCVBUF_MAX=16M TCPSM_SNDBUF=2M " ] ||
    die "profile must not override the environment or an option: $e"
e=$(env -u TCPSM_SPIN_US -u TCPSM_RCVBUF_MAX bash -c "$(declare -f envof); t=$t; envof --profile latency")
[ "$e" = "TCPSM_RCVBUF_MAX=1M TCPSM_SPIN_US=50 " ] || die "latency profile: $e"
e=$(envof --spin 5 --profile latency | grep -o 'TCPSM_SPIN_US=[^ ]*')
[ "$e" = "TCPSM_SPIN_US=5" ] || die "latency profile over --spin: $e"
[ -z "$(envof --profile default)" ] || die "the default profile set something"
if "$t" --profile fast -- true 2>"$TMPD_ERR"; then die "unknown profile accepted"; fi
grep -q "unknown profile 'fast'" "$TMPD_ERR" || die "unknown profile message: $(cat "$TMPD_ERR")"

# A bad size stops the program at its first socket call, naming the variable.
set +e
out=$("$t" --if lo --addr 198.18.0.99/24 --sndbuf 1G -- python3 -c \
      'import socket; socket.socket(); print("ran")' 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'TCPSM_SNDBUF=1G: expected a size in bytes from 4K to 16M' <<<"$out" &&
    ! grep -q ran <<<"$out" || die "bad TCPSM_SNDBUF: rc $rc, output: $out"
log "wrapper: subcommands, -- PROGRAM, profiles and a bad size as documented"
