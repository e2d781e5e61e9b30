"""The names of a home's session host, shared by the host process and its clients: its build
key, the home's identity, its socket (an abstract name: home/anchors.py) and the `--flag
value` parse of its command line (a supervisor's too).

Only `os` and the runtime dir: the host process (host.py) imports this, never
`spawner`, which starts hosts and runs subprocesses (pathlib and subprocess would cost
every forked supervisor their pages).
"""

from __future__ import annotations

import contextlib
import os
import sys

from looop.home.anchors import anchor
from looop.home.hashing import fnv1a_64

HOST_IDLE_S = 300.0  # the knob's default: see host.HOMELESS_IDLE_S
# the rooms whose modules the session host loads: an edit to any of them is a new build
HOST_ROOMS = ("sessions", "contract", "human", "spend", "core", "runners", "home")
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def host_key(executable: str = sys.executable) -> str:
    """Interpreter + every module file the host preloads (path, size, mtime): an edited or
    upgraded looop gets a new host; the old one idles out."""
    parts = [executable, _PACKAGE]
    with contextlib.suppress(OSError):
        st = os.stat(os.path.join(_PACKAGE, "__init__.py"))  # the version lives there
        parts.append(f"__init__.py:{st.st_size}:{st.st_mtime_ns}")
    for room in HOST_ROOMS:
        d = os.path.join(_PACKAGE, room)
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(d)):
                if name.endswith(".py"):
                    st = os.stat(os.path.join(d, name))
                    parts.append(f"{room}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return fnv1a_64("\n".join(parts).encode())[:12]


def home_id(root: str) -> str:
    """A data dir's identity: its real path and inode (one removed and made again under the
    same name is another home, and so is a symlink's target moved)."""
    real = os.path.realpath(root)
    try:
        st = os.stat(real)
    except OSError:
        return real
    return f"{real}\0{st.st_dev}:{st.st_ino}"


def home_key(root: str, build: str | None = None) -> str:
    """The socket name of the host serving the data dir `root` for this build."""
    return fnv1a_64(f"{build or host_key()}\n{home_id(root)}".encode())


def host_socket(key: str, base: str = "/tmp") -> str:
    """Where the host of `key` listens: an abstract name no tmp cleaner can remove."""
    return anchor(base, f"host-{key}")


def options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """`--flag value` (or `--flag=value`, or a bare `--flag`) pairs, and the command: a
    supervisor's or a preloaded host's command line."""
    opts: dict[str, str] = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return opts, argv[i + 1 :]
        if not a.startswith("--"):
            return opts, argv[i:]
        key, eq, value = a.partition("=")
        i += 1
        if not eq and i < len(argv) and not argv[i].startswith("--"):
            value = argv[i]
            i += 1
        opts[key] = value  # an unknown one is never read
    return opts, []
