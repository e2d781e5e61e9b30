"""Whether a process on the other end of a unix socket stands where we stand.

looop's preloaded host (the session host) forks work on behalf of a caller: the forked child
must have exactly the powers and the view the caller would have had running it itself. Same uid
is not enough: a caller in a sandbox (bubblewrap, a container, `unshare`), in another cgroup
(but one of looop's own run groups, which set no limit: `cgroup.in_own_run`), with other groups,
capabilities, a seccomp filter or no_new_privs must run its work itself, or a host started
outside would lift those limits for it.
"""

from __future__ import annotations

import os

from looop.core import cgroup

NAMESPACES = ("mnt", "pid", "net", "user", "ipc", "uts", "cgroup", "time")
# /proc/<pid>/status lines that carry a process's powers and limits
_STATUS = "Uid: Gid: Groups: NoNewPrivs: Seccomp: Seccomp_filters: CapInh: CapPrm: CapEff: CapBnd:"
_STATUS_KEYS = (*_STATUS.split(), "CapAmb:")


def _status(pid: int | str) -> list[str]:
    with open(f"/proc/{pid}/status", "rb") as f:
        text = f.read().decode("utf-8", "replace")
    return [line.rstrip() for line in text.splitlines() if line.startswith(_STATUS_KEYS)]


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None  # not on this kernel (an LSM without attr/current, no time namespace)


class Here:
    """This process's own side of the comparison, read once: a host's namespaces, root,
    cgroup, label and powers do not change while it serves, and each request then reads only
    its caller's (half the /proc reads on a kill's path)."""

    def __init__(self) -> None:
        self.ns = [_link(f"/proc/self/ns/{ns}") for ns in NAMESPACES]
        st = os.stat("/")
        self.root = (st.st_dev, st.st_ino)
        self.cgroup = _read("/proc/self/cgroup")
        self.label = _label("self")
        self.status = _status("self")


def same_world(pid: int, here: Here | None = None) -> bool:
    """`pid` (a peer from SO_PEERCRED) sees and may do exactly what this process may: same
    namespaces, root, cgroup, credentials, capabilities, seccomp and no_new_privs, LSM label.
    False on any doubt (it has gone, /proc hides it, a pid outside our pid namespace)."""
    if pid <= 0:
        return False
    try:
        own = here if here is not None else Here()
        for ns, mine in zip(NAMESPACES, own.ns, strict=True):
            if _link(f"/proc/{pid}/ns/{ns}") != mine:
                return False
        there = os.stat(f"/proc/{pid}/root")
        if (there.st_dev, there.st_ino) != own.root:
            return False
        # a run group of looop's own (the pulse's, a worker's) sets no limit: same world
        if not cgroup.in_own_run(_read(f"/proc/{pid}/cgroup"), own.cgroup):
            return False
        if _label(pid) != own.label:
            return False
        return _status(pid) == own.status
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
