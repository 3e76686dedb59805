#!/usr/bin/env bash
# make install into a temporary DESTDIR (PREFIX=/usr/local): the installed wrapper (which finds
# the installed library beside itself) runs curl on the stack against nginx on the kernel, the
# page arrives intact and the preloaded library is the installed one; its subcommands run
# (tcpsm ladder on the connection's pcap); both man pages render with man -l and tcpsm(1)
# names every TCPSM_* variable the library reads; a program built against the installed core
# through pkg-config creates and frees a stack; make uninstall removes every file.
# timeout: 180
set -euo pipefail
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/../lib/http.sh"
stack_mode || skip "installs the stack"
[ "${TCPSM_SAN:-0}" = 1 ] && skip "make install installs the normal build"
need_cmd curl nginx ethtool man pkg-config gcc python3
netns_setup
root=$TCPSM_ROOT
dest=$TMPD/dest
make -C "$root" --no-print-directory -s install DESTDIR="$dest" PREFIX=/usr/local >"$TMPD/install.log" 2>&1 ||
    { cat "$TMPD/install.log" >&2; die "make install failed"; }
p=$dest/usr/local
for f in bin/tcpsm lib/tcpsm/libtcpsm.so lib/tcpsm/ladder.py lib/tcpsm/stat.py \
         lib/tcpsm/capture.py share/man/man1/tcpsm.1 share/man/man7/tcpsm.7 \
         lib/libtcpsm-core.a include/tcpsm/core.h lib/pkgconfig/tcpsm-core.pc; do
    [ -s "$p/$f" ] || die "not installed: $f"
done
grep -qx 'libdir=/usr/local/lib/tcpsm' "$p/bin/tcpsm" || die "the wrapper does not name PREFIX's library"
"$p/bin/tcpsm" --version | grep -q '^tcpsm ' || die "installed tcpsm --version"

# The installed wrapper, from the staged tree, with curl.
mkdir -p "$TMPD/www"
mkfile "$TMPD/www/page.bin" 300000
nginx_peer "$TMPD/www"
pre=$(on_kstack "$p/bin/tcpsm" --if "$IF_S" --addr "$STACK_IP/$PREFIX" -- sh -c 'echo "$LD_PRELOAD"')
[ "$pre" = "$(cd "$p/lib/tcpsm" && pwd)/libtcpsm.so" ] || die "LD_PRELOAD is '$pre'"
on_kstack "$p/bin/tcpsm" --if "$IF_S" --addr "$STACK_IP/$PREFIX" --pcap "$TMPD/c.pcap" -- \
    curl -sS --fail --max-time 20 -o "$TMPD/got.bin" "http://$PEER_IP:8080/page.bin" ||
    die "curl through the installed wrapper failed"
same_file "$TMPD/www/page.bin" "$TMPD/got.bin"
"$p/bin/tcpsm" ladder --json "$TMPD/c.pcap" >"$TMPD/ladder.json" || die "installed tcpsm ladder"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
assert d['states']['client'][:3] == ['CLOSED','SYN-SENT','ESTABLISHED'], d['states']" \
    "$TMPD/ladder.json" || die "installed ladder: wrong states"

# Man pages: render without warnings; tcpsm(1) documents every TCPSM_* variable the library reads.
for m in 1 7; do
    MANWIDTH=80 man -l "$p/share/man/man$m/tcpsm.$m" >"$TMPD/man$m.txt" 2>"$TMPD/man$m.err" ||
        die "man -l tcpsm.$m failed"
    [ ! -s "$TMPD/man$m.err" ] || { cat "$TMPD/man$m.err" >&2; die "man -l tcpsm.$m warned"; }
    [ "$(wc -l <"$TMPD/man$m.txt")" -gt 40 ] || die "tcpsm.$m rendered too short"
done
grep -q 'PROCESS MODEL' "$TMPD/man7.txt" && grep -q 'LIMITS' "$TMPD/man7.txt" || die "tcpsm(7) sections"
vars=$(grep -oh '"TCPSM_[A-Z_]*"' "$root"/stack/runtime/*.c | tr -d '"' | sort -u)
[ -n "$vars" ] || die "found no TCPSM_* variable in the runtime"
for v in $vars; do
    grep -q "$v" "$TMPD/man1.txt" || die "tcpsm(1) does not document $v"
done
log "man pages render; tcpsm(1) documents: $(echo $vars)"

# The core, embedded through pkg-config.
cat >"$TMPD/embed.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <tcpsm/core.h>
static unsigned tx(struct tcpsm_netdev *d, const struct tcpsm_frame *f, unsigned n)
{ (void)d; (void)f; return n; }
static const struct tcpsm_netdev_ops ops = { .send = tx };
int main(void)
{
    struct tcpsm_netdev dev = { .ops = &ops, .mtu = 1500 };
    struct tcpsm_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.addr = 0xC612000Au; cfg.prefix_len = 24; cfg.mac[0] = 2; cfg.mac[5] = 10;
    struct tcpsm_stack *st = tcpsm_stack_new(&cfg, &dev, 1);
    if (!st) return 1;
    struct tcpsm_sock *sk;
    int r = tcpsm_sock_new(st, &sk);
    if (r == 0) r = tcpsm_sock_listen(sk, 8);
    printf("%s %d\n", r == 0 ? tcpsm_state_name(tcpsm_sock_state(sk)) : "error", r);
    tcpsm_stack_free(st);
    return r != 0;
}
C
flags=$(PKG_CONFIG_PATH=$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs tcpsm-core) ||
    die "pkg-config tcpsm-core"
gcc -std=c11 -o "$TMPD/embed" "$TMPD/embed.c" $flags || die "cannot build against the installed core ($flags)"
out=$("$TMPD/embed") || die "the embedded core failed: $out"
[ "$out" = "LISTEN 0" ] || die "embedded core: '$out'"

make -C "$root" --no-print-directory -s uninstall DESTDIR="$dest" PREFIX=/usr/local >/dev/null 2>&1 ||
    die "make uninstall failed"
left=$(find "$dest" -type f)
[ -z "$left" ] || die "make uninstall left: $left"
log "install: wrapper, library, subcommands, man pages and the core work from DESTDIR; uninstall clean"
