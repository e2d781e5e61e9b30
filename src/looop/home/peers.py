"""The caller's side of a preloaded host's unix socket: connect, the peer's credentials, and
the limits a forked run must take from its caller. Whether that caller stands where the host
stands is the host's question (core/sameworld.py)."""

from __future__ import annotations

import os
import resource
import socket
import sys

# The limits a caller's own run would have had and a forked one would take from the host:
# `ulimit` and `nice` given to the caller still apply (see `caller_limits`).
LIMITS = ("RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CPU")
_INT = 4  # SO_PEERCRED's pid, uid, gid are C ints


def connect(path: str) -> socket.socket | None:
    """A connected unix stream socket, or None when nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of a connected unix socket's other end, as the kernel knows them."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 3 * _INT)
    pid, uid = (int.from_bytes(raw[i : i + _INT], sys.byteorder, signed=True) for i in (0, _INT))
    return pid, uid


def holder(address: str) -> int | None:
    """The pid of the process of this user listening on `address`, or None."""
    sock = connect(address)
    if sock is None:
        return None
    try:
        pid, uid = peer(sock)
    finally:
        sock.close()
    return pid if uid == os.geteuid() and pid > 0 else None


def caller_limits() -> dict[str, list[int]]:
    """This process's LIMITS as {name: [soft, hard]}, to hand to a host that forks for it."""
    out: dict[str, list[int]] = {}
    for name in LIMITS:
        which = getattr(resource, name, None)
        if which is not None:
            out[name] = list(resource.getrlimit(which))
    return out
