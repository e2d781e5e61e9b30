"""The home end of a host's contract channel: a small server on a private unix socket that
the host's SSH master forwards to the satellite (`ssh -O forward -R remote.sock:home.sock`).

A request is one JSON object (a remote worker's verb: ask, claim, unclaim, tell, told, cost),
answered by contract/requests.py: run as the home's own `looop` verb against the home data dir,
as that worker, once per key even across a restart of this relay. Only workers the home
started on THIS host may speak here. A process of its own (`looop host relay`), started by
the link (link.start_relay): a verb over the link never loads this server."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from looop.contract.requests import Answerer, Home
from looop.home import jsonio, locks
from looop.remote import hosts as reg
from looop.remote.callhome import read_all

if TYPE_CHECKING:
    from looop.core.context import Ctx

MAX_REQUEST = 1 << 20


def answerer(ctx: Ctx, name: str) -> Answerer:
    """The contract as host `name`'s relay answers it: its own workers only, each for itself
    alone (no `told OTHER`, no `claim --session OTHER`: a worker, boxed or not, is no
    other worker's voice)."""

    def allowed(worker: str) -> str | None:
        if reg.host_of(ctx.paths.data, worker) != name:
            return f"{worker!r} is no worker the home started on host {name}"
        return None

    return Answerer(Home.of(ctx), allowed, self_only=True)


def serve_one(ans: Answerer, conn: socket.socket) -> None:
    try:
        try:
            req = jsonio.loads(read_all(conn, MAX_REQUEST).decode())
        except ValueError:
            req = None
        conn.sendall(jsonio.dumps(ans.run(req)).encode())
    except OSError:
        pass  # the link dropped: the worker asks again with the same key
    finally:
        conn.close()


def _lock(data: Path, name: str) -> str:
    return str(data / "hosts" / f".{name}.relay.lock")


def _leave(signum: int, frame: object) -> None:
    raise SystemExit(0)  # its socket goes with it (serve's finally)


def serve(ctx: Ctx, name: str, path: str) -> int:
    """Until the host is removed from the registry or `looop down` (stop). One relay per host:
    the flock decides, and holds its pid for `stop`."""
    lock = locks.try_flock(_lock(ctx.paths.data, name))
    if lock is None:
        return 0  # another relay serves this host
    os.ftruncate(lock, 0)
    os.write(lock, str(os.getpid()).encode())
    signal.signal(signal.SIGTERM, _leave)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        srv.bind(path)
    finally:
        os.umask(old)
    srv.listen(64)
    srv.settimeout(2.0)
    ans = answerer(ctx, name)
    hostfile = reg.host_file(ctx.paths.data, name)
    try:
        while hostfile.exists():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=serve_one, args=(ans, conn), daemon=True).start()
    finally:
        srv.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
    return 0


def stop(data: Path, name: str, wait_s: float = 5.0) -> bool:
    """`looop down`: host `name`'s relay, when one serves, told to go (SIGTERM through a pidfd
    taken while it still holds its lock, so no other process is signalled) and waited for."""
    lock = _lock(data, name)
    try:
        with open(lock, "rb") as f:
            pid = int(f.read(16) or b"0")
        fd = os.pidfd_open(pid)
    except (OSError, ValueError):
        return False
    try:
        if not locks.flock_held(lock):
            return False
        signal.pidfd_send_signal(fd, signal.SIGTERM)
        select.select([fd], [], [], wait_s)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
