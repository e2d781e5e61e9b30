"""Whether a process on the other end of a unix socket stands where we stand.

looop's preloaded hosts (the beat host, the session host) fork work on behalf of a caller: the
forked child must have exactly the powers and the view the caller would have had running it
itself. Same uid is not enough: a caller in a sandbox (bubblewrap, a container, `unshare`), in
another cgroup (but one of looop's own run groups, which set no limit: `cgroup.in_own_run`),
with other groups, capabilities, a seccomp filter or no_new_privs must run its work itself, or a
host started outside would lift those limits for it.
"""

from __future__ import annotations

import os

from looop.core import cgroup

NAMESPACES = ("mnt", "pid", "net", "user", "ipc", "uts", "cgroup", "time")
# /proc/<pid>/status lines that carry a process's powers and limits
_STATUS_KEYS = (
    "Uid:",
    "Gid:",
    "Groups:",
    "NoNewPrivs:",
    "Seccomp:",
    "Seccomp_filters:",
    "CapInh:",
    "CapPrm:",
    "CapEff:",
    "CapBnd:",
    "CapAmb:",
)


def _status(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        return [line.rstrip() for line in f if line.startswith(_STATUS_KEYS)]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None  # not on this kernel (an LSM without attr/current, no time namespace)


def same_world(pid: int) -> bool:
    """`pid` (a peer from SO_PEERCRED) sees and may do exactly what this process may: same
    namespaces, root, cgroup, credentials, capabilities, seccomp and no_new_privs, LSM label.
    False on any doubt (it has gone, /proc hides it, a pid outside our pid namespace)."""
    if pid <= 0:
        return False
    try:
        for ns in NAMESPACES:
            theirs = _link(f"/proc/{pid}/ns/{ns}")
            if theirs != _link(f"/proc/self/ns/{ns}"):
                return False
        there, here = os.stat(f"/proc/{pid}/root"), os.stat("/")
        if (there.st_dev, there.st_ino) != (here.st_dev, here.st_ino):
            return False
        # a run group of looop's own (the pulse's, a worker's) sets no limit: same world
        if not cgroup.in_own_run(_read(f"/proc/{pid}/cgroup"), _read("/proc/self/cgroup")):
            return False
        if _label(pid) != _label("self"):
            return False
        return _status(pid) == _status("self")
    except OSError:
        return False


def _label(pid: int | str) -> str | None:
    """The LSM label (AppArmor, SELinux); None where no LSM answers (EINVAL without one)."""
    try:
        return _read(f"/proc/{pid}/attr/current")
    except OSError:
        return None


def _link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except FileNotFoundError:
        return None  # a namespace this kernel does not have: the same for both
