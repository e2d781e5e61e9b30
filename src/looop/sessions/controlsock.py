"""A session's control socket bound at its name in the runtime dir, and bound again when that
name is removed under a live session (a tmp cleaner, an `rm -rf` of /tmp/looop-<uid>).

Only `os` and `_socket`: every supervisor loads this.
"""

from __future__ import annotations

import os
import socket

from looop.home.sessionfiles import ensure_socket_file


def bind_at(root: str, sid: str) -> tuple[socket.socket, str, int]:
    """A non-blocking listener at the session's socket name (its folders made): (socket,
    path, inode). A stale name (a crashed run's) is replaced; a folder a sweeper removed
    between its making and the bind is made once more."""
    for tries_left in (1, 0):
        path = ensure_socket_file(root, sid)
        try:
            os.unlink(path)  # a stale socket of a crashed run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind(path)
            sock.listen(128)
            os.chmod(path, 0o600)
            return sock, path, os.stat(path).st_ino
        except FileNotFoundError:
            sock.close()
            if not tries_left:
                raise
        except BaseException:
            sock.close()
            raise
    raise AssertionError("unreachable")


def gone(path: str | None) -> bool:
    """Whether a bound socket's name was removed: it must be bound again. A name that is
    there is never taken back, ours or not (a data dir made anew at this path may run a
    session of the same id)."""
    return path is not None and not os.path.lexists(path)
