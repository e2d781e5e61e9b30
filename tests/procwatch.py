"""Looking for leftover processes the way a user would: through /proc."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# the `zombies` fixture: zombie children that appeared during the test
Zombies = Callable[[], list[int]]


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw.rsplit(b")", 1)[1].split()[0].decode()


def tagged(key: str, value: str) -> list[int]:
    """Live (non-zombie) processes, other than this one, whose environment has key=value."""
    want = f"{key}={value}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if want in env.split(b"\0") and _state(int(entry)) not in (None, "Z", "X"):
            found.append(int(entry))
    return found


def children() -> list[int]:
    """This process's children (every thread's)."""
    kids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            kids += [int(p) for p in Path(f"/proc/self/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return kids


def zombie_children() -> list[int]:
    """Children of this process that exited and were never reaped."""
    return [p for p in children() if _state(p) == "Z"]


def kill_all(pids: list[int]) -> None:
    """Test cleanup: whatever escaped must not outlive the test either."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def describe(pids: list[int]) -> str:
    """pid, parent, state and command of each, for an assertion message."""
    rows = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rows.append(f"{pid} ppid={stat[1].decode()} {stat[0].decode()} {cmd.strip()}")
        except OSError:
            rows.append(f"{pid} gone")
    return "; ".join(rows)


def by_argv(tag: str) -> list[int]:
    """Live (non-zombie) processes, other than this one, with an argument starting with tag
    (found even when they cleared their environment)."""
    want = tag.encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(want) for a in argv) and _state(int(entry)) not in (None, "Z", "X"):
            found.append(int(entry))
    return found


def cgroups_here() -> bool:
    """Whether this process can make a cgroup (root, or a delegated subtree)."""
    from looop.core import cgroup  # lazy: most users of this module need none

    g = cgroup.make(f"probe-{os.getpid()}-{os.urandom(3).hex()}")
    if g is not None:
        g.remove()
    return g is not None


def cgroup_of(pid: int) -> str:
    """A process's v2 (or else v1 freezer) cgroup path, from /proc/<pid>/cgroup."""
    from looop.core import cgroup

    v2, v1 = cgroup.own_paths(Path(f"/proc/{pid}/cgroup").read_text())
    return v2 or v1 or ""
