"""A sandboxed worker on an SSH host: the same srt policy as at home, built by the host's own
looop against its satellite data dir (sandbox/worker.py), and its way home from inside.

Inside srt a process may not make a unix socket (srt's seccomp filter), so the relay socket a
remote worker's `looop` speaks to is out of reach. A sandboxed worker's contract verbs go
through a drop box instead: its `looop` (remote/shim.py) writes the request into a folder
of its own (`<satellite>.work/rooms/<id>/callhome/KEY.req`, in its room beside the satellite:
no box writes a data dir), and this host's bridge — one process per satellite, outside every
box — takes it (`KEY.taken`), sends it home
over the relay socket as that worker (the folder says who: never the request) and puts the
answer beside it (`KEY.ans`). The key is kept across retries, so the home runs a verb once
however often the link drops."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from looop.home import jsonio, locks, store
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.sandboxpolicy import SandboxPolicy
from looop.home.store import NotRegular
from looop.remote.shim import over_socket, script
from looop.remote.ssh.satellite import RELAY
from looop.sandbox import srt
from looop.sessions.state import SessionError, get_session
from looop.workers.bridge import BRIDGE_LOCK

if TYPE_CHECKING:
    from looop.core.context import Ctx

# where `looop host install` puts srt on a host (its npm package as the home has it)
SRT_DIR = ".local/share/looop/srt"
SRT_CLI = f"{SRT_DIR}/dist/cli.js"
# the shim a sandboxed worker runs as `looop`: outside every satellite (all of them are hidden
# from a box), the same for every home
SHIM_DIR = ".local/share/looop/shim"
SATELLITES = ".local/share/looop/satellite"
CALLHOME = "callhome"
KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_REQUEST = 2 << 20
POLL_S = 0.05
IDLE_EXIT_S = 30.0  # the bridge ends when no sandboxed worker has lived this long
RETRY_S = 1.0
MAX_IN_FLIGHT = 16  # requests of one worker carried at once (a worker makes one at a time)


def srt_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with LOOOP_SRT naming the srt `host install` brought, when there is one and the
    user named none: it comes before any srt on PATH (the home's version, with its deps)."""
    out = dict(env)
    home = env.get("HOME", "")
    mine = os.path.join(home, SRT_CLI)
    if not env.get("LOOOP_SRT", "").strip() and home.startswith("/") and os.access(mine, os.X_OK):
        out["LOOOP_SRT"] = mine
    return out


def missing(env: dict[str, str]) -> list[str]:
    """What keeps srt from running on this host, one phrase each with its fix ([]: ready)."""
    return srt.missing(srt_env(env))


def require(env: dict[str, str], sid: str, host: str) -> str:
    """srt's path on this host, or one line naming the host, what is missing and the fix."""
    gone = missing(env)
    if gone:
        names = ", ".join(g.split(" ", 1)[0] for g in gone)
        raise LooopError(
            f"its sandbox cannot run on host {host}: missing {names} — run "
            f"`looop host install {host}` (`looop host check {host}` says what is missing), or "
            f"start worker {sid} with --no-sandbox to run it unsandboxed there"
        )
    prog = srt.srt_program(srt_env(env))
    assert prog is not None
    return prog


def callhome_dir(root: Path, sid: str) -> Path:
    """The worker's drop box: in its room beside the satellite, never in its data dir."""
    return Paths.at(root).rooms / sid / CALLHOME


def host_policy(policy: SandboxPolicy, root: Path, sid: str, home: str) -> SandboxPolicy:
    """The worker's policy on this host: the home's, plus its drop box (written), and every
    satellite on this host hidden (other homes' workers and this one's state alike; what of
    its own data dir the worker reads comes back as at home)."""
    box = str(callhome_dir(root, sid))
    sats = os.path.join(home, SATELLITES)
    return SandboxPolicy(
        True,
        write=(*policy.write, box),
        deny_read=(*policy.deny_read, sats),
        domains=policy.domains,
    )


def shim(folder: str) -> str:
    """A remote worker's `looop` (remote/shim.py under this python) written in `folder`: the
    folder, for PATH. A sandboxed worker's is in the host's SHIM_DIR (readable inside: outside
    every satellite)."""
    path = os.path.join(folder, "looop")
    store.write_if_changed(path, script(sys.executable).encode())
    os.chmod(path, 0o755)
    return folder


def _boxes(root: Path) -> list[tuple[str, Path]]:
    out = []
    try:
        names = os.listdir(Paths.at(root).rooms)
    except OSError:
        return []
    for sid in names:
        d = callhome_dir(root, sid)
        if not sid.startswith(("+", ".")) and d.is_dir() and not d.is_symlink():
            out.append((sid, d))
    return out


def _any_alive(root: Path, sids: list[str]) -> bool:

    for sid in sids:
        try:
            if get_session(root, sid).alive:
                return True
        except SessionError:
            continue
    return False


def _take(root: Path, sid: str, box: Path, name: str, relay: str) -> None:
    """One request: sent home as worker `sid` until the home answers; the answer put back."""

    key = name[: -len(".taken")]
    taken = box / name
    try:
        raw = store.read_regular(taken, MAX_REQUEST, follow=False)
        req = jsonio.loads(raw.decode())
    except (OSError, NotRegular, ValueError):
        store.remove(taken)
        return
    if not isinstance(req, dict) or len(raw) > MAX_REQUEST:
        store.remove(taken)
        return
    req["worker"] = sid  # the folder says who asks, never the request
    req["key"] = key
    body = jsonio.dumps(req).encode()
    while True:
        got = over_socket(relay, body)
        if got is not None:
            break
        if not _any_alive(root, [sid]):
            store.remove(taken)  # the worker is over: no one waits for the answer
            return
        time.sleep(RETRY_S)
    try:
        store.atomic_write(box / f"{key}.ans", jsonio.dumps(got), durable=False)
    except OSError:
        pass  # its folder went with the worker
    store.remove(taken)


def bridge_verb(ctx: Ctx, root: Path, op: str, req: dict[str, Any], version: str) -> dict[str, Any]:
    """The satellite's `bridge` op: long-lived, it reads no request and ends the process."""
    raise SystemExit(serve(root, str(root / RELAY)))


def serve(root: Path, relay: str, idle_exit_s: float = IDLE_EXIT_S) -> int:
    """Until no sandboxed worker of this satellite has lived for IDLE_EXIT_S. One bridge per
    satellite: the flock decides. A request left taken by a bridge that died is taken again
    (the home answers a key once)."""
    lock = locks.try_flock(str(root / BRIDGE_LOCK))
    if lock is None:
        return 0
    busy: dict[tuple[str, str], threading.Thread] = {}
    idle_since = time.monotonic()
    last_alive_check = 0.0
    while True:
        boxes = _boxes(root)
        for sid, box in boxes:
            try:
                # never a folder (nothing to read, and it could not be removed after)
                names = [e.name for e in os.scandir(box) if not e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            for n in names:
                key, dot, ext = n.rpartition(".")
                if not dot or not KEY_RE.fullmatch(key) or ext not in ("req", "taken"):
                    continue
                if (sid, key) in busy:
                    continue
                if sum(1 for w, _ in busy if w == sid) >= MAX_IN_FLIGHT:
                    break  # a worker flooding its box waits its turn, others go on
                if ext == "req":
                    try:
                        os.replace(box / n, box / f"{key}.taken")
                    except OSError:
                        continue
                t = threading.Thread(
                    target=_take, args=(root, sid, box, f"{key}.taken", relay), daemon=True
                )
                busy[(sid, key)] = t
                t.start()
        for ident in [i for i, t in busy.items() if not t.is_alive()]:
            del busy[ident]
        now = time.monotonic()
        if now - last_alive_check >= 1.0:
            last_alive_check = now
            if busy or _any_alive(root, [sid for sid, _ in boxes]):
                idle_since = now
            elif now - idle_since > idle_exit_s:
                return 0
        time.sleep(POLL_S)
