"""Finding the stacks running on this machine: each publishes
<run dir>/<pid>.json (its stats region) and <pid>.sock (its control socket),
see stack/runtime/runtime_ops.h. The run directory is TCPSM_RUN_DIR, by
default /run/tcpsm. Files of processes that are gone are removed."""
import errno
import glob
import json
import os
import socket

DEFAULT_RUN_DIR = "/run/tcpsm"


def run_dir(arg=None):
    return arg or os.environ.get("TCPSM_RUN_DIR") or DEFAULT_RUN_DIR


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _remove(path):
    for p in (path + ".json", path + ".sock", path + ".json.tmp"):
        try:
            os.unlink(p)
        except OSError:
            pass


def request(sock_path, cmd, timeout=2.0):
    """Connects to a control socket and sends cmd; returns (socket, first
    reply line). Raises OSError (ECONNREFUSED: nobody serves it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.send(cmd.encode())
        r = s.recv(256).decode(errors="replace").strip()
    except OSError:
        s.close()
        raise
    return s, r


# pids of live stacks whose region this user may not read (mode 0600: the
# stack's own user and root), filled by stacks().
unreadable = []


def stacks(directory, fresh=True):
    """The live stacks' regions, parsed, oldest pid first. fresh: ask each
    stack to rewrite its region first (else it is at most a second old)."""
    out = []
    del unreadable[:]
    for sock in sorted(glob.glob(os.path.join(directory, "*.sock")) +
                       glob.glob(os.path.join(directory, "*.json"))):
        base = sock.rsplit(".", 1)[0]
        if any(base == o["_base"] for o in out):
            continue
        try:
            pid = int(os.path.basename(base))
        except ValueError:
            continue
        if not _alive(pid):
            _remove(base)
            continue
        if fresh and os.path.exists(base + ".sock"):
            try:
                s, _ = request(base + ".sock", "stat")
                s.close()
            except socket.timeout:
                pass            # a stopped process: its last region stands
            except OSError as e:
                if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    _remove(base)   # the pid lives on (exec), the stack does not
                    continue
        try:
            with open(base + ".json") as f:
                d = json.load(f)
        except PermissionError:
            unreadable.append(pid)
            continue
        except (OSError, ValueError):
            continue
        d["_base"] = base
        out.append(d)
    out.sort(key=lambda d: d.get("pid", 0))
    return out
