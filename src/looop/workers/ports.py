"""$LOOOP_PORT: a TCP port of its own for each worker here (its dev server, its test
database), leased for its life from worker_port_base .. + worker_ports.

A lease is a file, <data>/ports/<port>, naming the worker. It holds while that worker's
session lives: a worker that ended (or never started) holds nothing, so no release can be
missed. A port is leased only when it is free of other live workers' leases AND this
machine lets it be bound now (another program may have it); a new start of an id takes its
last port again when it can. Leasing is done under an flock on <data>/ports/.lock, so two
starts at once never get one port. None free: the start is refused in one line."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Collection
from pathlib import Path

from looop.home import store
from looop.home.config import Knobs
from looop.home.where import PORTS
from looop.workers.errors import WorkerError


def folder(data: Path) -> Path:
    return data / PORTS


def holder(data: Path, port: int) -> str:
    """The worker a port's lease names ("" when none, or when no regular file is there: a FIFO
    in a lease's place would hang a plain open)."""
    try:
        return store.read_regular(folder(data) / str(port), 200).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def leases(data: Path) -> dict[int, str]:
    """Each port a lease here names, and its worker: the folder listed once (a start used to
    open every port's file of the range, 1,000 by default, to find the few there are)."""
    try:
        names = os.listdir(folder(data))
    except OSError:
        return {}
    ports = [int(n) for n in names if n.isascii() and n.isdigit() and str(int(n)) == n]
    return {port: who for port in ports if (who := holder(data, port))}


def bindable(port: int) -> bool:
    """Whether this machine lets the port be bound now, on every address (as a server would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
    return True


def lease(data: Path, wid: str, live: Collection[str], knobs: Knobs, held: bool = False) -> int:
    """A port for worker `wid` (its last one first) in the knobs' range, written as its lease;
    `live`: the ids of the other workers that run now, whose leases hold; `held`: its own last
    run still lives (a resume ends it), so its last port is bound by it and is taken unchecked."""
    base, count = knobs.num("worker_port_base"), knobs.num("worker_ports")
    top = folder(data)
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ports = range(base, min(base + count, 65536))
        held_by = leases(data)
        mine = sorted(p for p, who in held_by.items() if who == wid and p in ports)
        for port in [*mine, *(p for p in ports if p not in mine)]:
            who = held_by.get(port, "")
            if who and who != wid and who in live:
                continue
            if not (held and port in mine) and not bindable(port):
                continue
            for old in mine:
                if old != port:
                    store.remove(top / str(old))
            store.atomic_write(top / str(port), wid + "\n")
            return port
    finally:
        os.close(fd)  # the flock goes with it
    raise WorkerError(
        f"worker {wid}: no free port for $LOOOP_PORT in {base}-{base + count - 1} (each is "
        "leased to a live worker or bound by another program) — end a worker, or widen "
        "worker_port_base / worker_ports"
    )
