"""A worker's memory bound where no cgroup holds it (a user who is not root: most SSH hosts):
its supervisor samples what the run holds — the resident memory of its tree and of what it
orphaned, which the supervisor adopted — every MEMORY_CHECK_S, and ends the run once past the
bound, named as the kernel's kill is ("hit its memory limit"). Late by up to a sample: a hog
faster than that can take more first, which the cgroup's bound never lets it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.core import procs

if TYPE_CHECKING:
    from looop.sessions.evloop import Loop
    from looop.sessions.lifecycle import Lifecycle
    from looop.sessions.oscalls import HostOS

MEMORY_CHECK_S = 2.0  # an idle fleet wakes seldom: one short walk of each run's tree
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident(roots: list[int]) -> int:
    """Bytes resident in every process of the trees under `roots` (each counted once)."""
    seen: set[int] = set()
    total = 0
    for root in roots:
        for pid in procs.tree(root):
            if pid in seen:
                continue
            seen.add(pid)
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * _PAGE
            except (OSError, ValueError, IndexError):
                continue
    return total


def arm(loop: Loop, life: Lifecycle, host: HostOS) -> None:
    """Sample the run's memory against `host.memory_watch` bytes until the session ends."""
    if host.memory_watch <= 0:
        return

    def check() -> None:
        if life.finishing:
            return
        child = life.child
        if child is not None and not child.done and not host.memory_hit:
            roots = sorted({child.pid, *host.contained(set())})
            if resident(roots) > host.memory_watch:
                host.memory_hit = True  # its status names the bound (supervisor)
                mib = host.memory_watch >> 20
                life.task(life.auto_kill(f"hit its memory limit ({mib} MiB)"))
                return
        loop.call_later(MEMORY_CHECK_S, check)

    loop.call_later(MEMORY_CHECK_S, check)
