"""The control sockets a killed supervisor left behind, found and removed; and a request to
a socket whose data dir may be gone. Apart from control.py: a supervisor binds, it never
sweeps, and `socket` would load selectors into every one."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from looop.home.sessionfiles import socket_file
from looop.sessions import protocol as proto


def home_sockets(data: str) -> list[str]:
    """Every control socket bound for sessions of this data dir's path, found from the
    runtime dir alone (the data dir may be gone): live ones and ones a killed supervisor
    left behind."""
    rooted = os.path.dirname(socket_file(data, "x"))
    try:
        names = sorted(os.listdir(rooted))
    except OSError:
        return []
    return [os.path.join(rooted, n) for n in names if n.endswith(".sock")]


def request_at(path: str, op: str, timeout_s: float) -> Any:
    """One control request to the supervisor on this socket path, with no session dir to
    check first (its data dir may be gone); None when nobody answers or it refuses."""
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.settimeout(2.0)
        sock.connect(path)
        sock.settimeout(timeout_s)
        sock.sendall(proto.request_line(op))
        reply = proto.reply_of(proto.read_reply(sock))
    except (OSError, ValueError):
        return None
    finally:
        sock.close()
    if reply is None or not reply.get("ok"):
        return None
    return reply.get("data") or {}


# A socket or folder of another home is swept only once this old: a supervisor of an older
# build binding there right now would get no second try (this build's binds again)
OTHERS_OLD_S = 600.0


def sweep_home_sockets(data: str) -> int:
    """Remove this home's control sockets that nobody listens on (a SIGKILLed supervisor's),
    then their folder once it is empty: run by `looop down` and by the home's session host as
    it starts. A live supervisor whose name is taken by mistake binds it again (dnotify tells
    it: sessions/control.SocketWatch). How many were removed."""
    return _sweep_folder(os.path.dirname(socket_file(data, "x")), None)


def sweep_all_sockets(now: float) -> int:
    """The same for every home of this user (data dirs removed without a `down`, a test
    run's), their sockets and folders older than OTHERS_OLD_S at wall time `now`: run by a
    session host as it starts. How many sockets were removed."""
    top = os.path.dirname(os.path.dirname(socket_file("/", "x")))
    try:
        names = os.listdir(top)
    except OSError:
        return 0
    hexdigits = "0123456789abcdef"
    return sum(
        _sweep_folder(os.path.join(top, n), now - OTHERS_OLD_S)
        for n in names
        if len(n) == 16 and all(c in hexdigits for c in n)
    )


def _sweep_folder(folder: str, older_than: float | None) -> int:
    """Dead sockets in `folder` (none newer than `older_than`, when given), then the folder
    if that left it empty."""
    removed = 0
    folder_old = _old(folder, older_than)  # before removing a socket makes it new
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    listening = listening_paths() if names else None
    for n in names:
        path = os.path.join(folder, n)
        if not n.endswith(".sock") or not _old(path, older_than):
            continue
        if listening is not None and path in listening:
            continue  # a live supervisor's: knocking to learn it would wake it for nothing
        if _dead_socket(path):
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed += 1
    if folder_old:
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # refused while anything is in it
    return removed


def _old(path: str, older_than: float | None) -> bool:
    if older_than is None:
        return True
    try:
        return os.lstat(path).st_mtime <= older_than
    except OSError:
        return False


def listening_paths(table: str = "/proc/net/unix") -> frozenset[str] | None:
    """The paths of the unix sockets listening now in this network namespace, as the kernel
    lists them; None where it cannot tell (no /proc): each socket is then knocked on. One
    not listed may still listen in another namespace, so it is knocked on before removal."""
    try:
        with open(table, "rb") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return None
    out = set()
    for row in rows:
        cols = row.split(None, 7)  # Num RefCount Protocol Flags Type St Inode Path
        if len(cols) == 8 and int(cols[3], 16) & ACCEPTING:
            out.add(cols[7].decode("utf-8", "surrogateescape"))
    return frozenset(out)


ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: a listening socket


def _dead_socket(path: str) -> bool:
    """A socket file whose connect is refused: bound by a process that is gone."""
    try:
        before = os.lstat(path)
    except OSError:
        return False
    if (before.st_mode & 0o170000) != 0o140000:  # not a socket: not ours to judge
        return False
    sock = socket.socket(socket.AF_UNIX)
    sock.setblocking(False)
    try:
        sock.connect(path)
    except ConnectionRefusedError:
        try:
            return os.lstat(path).st_ino == before.st_ino
        except OSError:
            return False
    except OSError:
        return False  # busy (a full backlog) or anything else: leave it
    finally:
        sock.close()
    return False
