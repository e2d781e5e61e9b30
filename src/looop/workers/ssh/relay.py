"""The home end of a host's contract channel: a small server on a private unix socket that
the host's SSH master forwards to the satellite (`ssh -O forward -R remote.sock:home.sock`).

A request is one JSON object (a remote worker's verb: ask, claim, unclaim, tell, told, cost);
it runs as the home's own `looop` verb against the home data dir, as that worker
(LOOOP_SESSION_ID), and the answer is its stdout, stderr and exit code. Only workers the
home started on THIS host may speak here. A request's key makes it once-only: a retry after
a dropped link waits for the same run (an ask keeps waiting for the same question)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from looop.core import store
from looop.workers.ssh import hosts as reg
from looop.workers.ssh.shim import RELAYED

if TYPE_CHECKING:
    from looop.core.context import Ctx
    from looop.workers.ssh.link import Link

MAX_REQUEST = 1 << 20
KEEP_DONE = 512  # answers kept for retries of requests that already ran


class _Run:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: dict[str, Any] = {}


class Relay:
    def __init__(self, ctx: Ctx, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.runs: dict[str, _Run] = {}
        self.order: list[str] = []
        self.lock = threading.Lock()

    def refuse(self, why: str) -> dict[str, Any]:
        return {"out": "", "err": f"looop: {why}\n", "code": 2}

    def run(self, req: Any) -> dict[str, Any]:
        if not isinstance(req, dict) or req.get("v") != 1:
            return self.refuse("the home relay speaks protocol 1")
        argv, worker, key = req.get("argv"), req.get("worker"), req.get("key")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            return self.refuse("no verb")
        if argv[0] not in RELAYED:
            return self.refuse(f"`{argv[0]}` is not a contract verb the home answers")
        if not isinstance(worker, str) or reg.host_of(self.ctx.paths.data, worker) != self.name:
            return self.refuse(f"{worker!r} is no worker the home started on host {self.name}")
        if not isinstance(key, str) or not 8 <= len(key) <= 64:
            return self.refuse("a request needs its key")
        stdin = req.get("stdin")
        with self.lock:
            run = self.runs.get(key)
            fresh = run is None
            if run is None:
                run = self.runs[key] = _Run()
                self.order.append(key)
                while len(self.order) > KEEP_DONE:
                    old = self.order.pop(0)
                    if self.runs[old].done.is_set():
                        del self.runs[old]
                    else:
                        self.order.append(old)
                        break
        if fresh:
            env = {
                **self.ctx.env,
                "LOOOP_DATA_DIR": str(self.ctx.paths.data),
                "LOOOP_CONFIG": str(self.ctx.paths.config),
                "LOOOP_SESSION_ID": worker,
            }
            try:
                done = subprocess.run(
                    [self.ctx.bin, *argv],
                    input=stdin.encode() if isinstance(stdin, str) else None,
                    stdin=None if isinstance(stdin, str) else subprocess.DEVNULL,
                    capture_output=True,
                    env=env,
                    cwd=str(self.ctx.paths.data),
                )
                run.answer = {
                    "out": done.stdout.decode(errors="replace"),
                    "err": done.stderr.decode(errors="replace"),
                    "code": done.returncode,
                }
            except OSError as e:
                run.answer = self.refuse(f"the home cannot run looop: {e}")
            run.done.set()
        run.done.wait()
        return run.answer

    def serve_one(self, conn: socket.socket) -> None:
        try:
            buf = b""
            while len(buf) <= MAX_REQUEST:
                got = conn.recv(65536)
                if not got:
                    break
                buf += got
            try:
                req = json.loads(buf.decode())
            except ValueError:
                req = None
            answer = self.run(req)
            conn.sendall(json.dumps(answer).encode())
        except OSError:
            pass  # the link dropped: the worker asks again with the same key
        finally:
            conn.close()


def serve(ctx: Ctx, name: str, path: str) -> int:
    """Until the host is removed from the registry. One relay per host: the flock decides."""
    lock = store.try_flock(str(ctx.paths.data / "hosts" / f".{name}.relay.lock"))
    if lock is None:
        return 0  # another relay serves this host
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        srv.bind(path)
    finally:
        os.umask(old)
    srv.listen(64)
    srv.settimeout(2.0)
    relay = Relay(ctx, name)
    hostfile = reg.host_file(ctx.paths.data, name)
    while hostfile.exists():
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        threading.Thread(target=relay.serve_one, args=(conn,), daemon=True).start()
    srv.close()
    try:
        os.unlink(path)
    except OSError:
        pass
    return 0


def accepting(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def ensure_running(lk: Link) -> None:
    """Start this host's relay when none answers, and wait until it does."""
    path = lk.relay_socket
    if accepting(path):
        return
    env = dict(os.environ if lk.env is None else lk.env)  # the home's own: the relay runs verbs
    env["LOOOP_DATA_DIR"] = str(lk.data)
    errlog = lk.data / "hosts" / f".{lk.host.name}.relay.err"
    with open(errlog, "ab") as err:
        subprocess.Popen(
            [lk.bin, "host", "relay", lk.host.name, path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            env=env,
            cwd=str(lk.data),
        )
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if accepting(path):
            return
        time.sleep(0.05)
    sys.stderr.write(f"looop: the relay for host {lk.host.name} did not start (see {errlog})\n")
