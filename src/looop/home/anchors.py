"""Where a home's preloaded hosts listen and how one host of a key is kept single: abstract
unix sockets (Linux), named by the user, the runtime dir and the host's key.

An abstract name has no file: a tmp cleaner or an `rm -rf` of the runtime dir cannot take it,
so a host stays reachable (and `looop down` can stop it) and a second host of the same home
cannot start beside it. The kernel frees the name when its last holder exits, so a crashed
host leaves nothing to sweep. What a file's 0700 folder gave the old names the peer check
gives these: both sides read the other's uid (SO_PEERCRED) before anything is said, and
another user who takes a name first only makes looop run without that host.
"""

from __future__ import annotations

import errno
import os
import socket

from looop.home.hashing import fnv1a_128
from looop.home.where import runtime_dir

_LISTENING = 0x00010000  # /proc/net/unix's Flags of a listening socket (__SO_ACCEPTCON)


def anchor(base: str, name: str) -> str:
    """The abstract address of `name` (a host's `host-KEY`, `beat-KEY`, a `.lock` guard) for
    this user and runtime dir: a test run's or a second install's never meets yours."""
    where = fnv1a_128(runtime_dir(base).encode("utf-8", "surrogateescape"))[:16]
    return f"\0looop-{os.geteuid()}-{where}-{name}"


def shown(address: str) -> str:
    """An address as `ss -x` and /proc/net/unix show it: `@name` for an abstract one."""
    return "@" + address[1:] if address.startswith("\0") else address


def hold(address: str) -> int | None:
    """Bind `address` and keep it: the fd while this process holds it, None when another
    does (EADDRINUSE). The name is the guard; nothing ever connects to it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            return None
        raise
    fd: int = sock.detach()
    os.set_inheritable(fd, False)
    return fd


def listening(base: str, prefix: str) -> list[str]:
    """The abstract addresses of this user and runtime dir that start with `prefix` and
    have a listener, from /proc/net/unix (a test run's end stops every host it started)."""
    head = anchor(base, prefix)[1:]
    found: set[str] = set()
    try:
        with open("/proc/net/unix", "rb") as f:
            lines = f.read().decode("utf-8", "surrogateescape").splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        parts = line.split(None, 7)
        if len(parts) < 8 or not parts[7].startswith("@" + head):
            continue
        try:
            flags = int(parts[3], 16)
        except ValueError:
            continue
        if flags & _LISTENING:
            found.add("\0" + parts[7][1:])
    return sorted(found)
