"""What the supervisor judges a run by from outside it: the watchdog's heartbeat (`HeartWatch`,
a file the run rewrites with the seconds until its next sign) and the memory its process trees
hold where no cgroup bounds them (`resident`). Apart from supervisor.py, the wiring that arms
them on its loop, because each only reads what the run leaves (a file, /proc): testable alone."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from looop.core import procs

if TYPE_CHECKING:
    from collections.abc import Callable


MAX_PROMISE_S = 7 * 86400.0
SIGN_BYTES = 128  # a heartbeat's text is one short line


class HeartWatch:
    """Judges one session's runs: `begin` at each run's start, `late` on every check."""

    def __init__(self, path: str, grace: float, clock: Callable[[], float]) -> None:
        self.path = path
        self.grace = grace
        self.clock = clock
        self.sign: bytes | None = None  # the text last seen
        self.seen_at = clock()  # when it last changed (or the run began)
        self.promise = 0.0  # seconds the run said its next sign may take

    def read(self) -> bytes | None:
        try:
            with open(self.path, "rb") as f:
                return f.read(SIGN_BYTES)
        except OSError:
            return None  # not there (yet, or its dir was wiped): no sign, no harm

    def begin(self) -> None:
        """A new run: the run before's last sign is not this one's; it owes its first soon."""
        self.sign, self.seen_at, self.promise = self.read(), self.clock(), 0.0

    def late(self) -> float | None:
        """Seconds since the last sign of life, when past its promise plus the grace."""
        now = self.clock()
        sign = self.read()
        if sign is not None and sign != self.sign:
            self.sign, self.seen_at = sign, now
            self.promise = _promise(sign)
        quiet = now - self.seen_at
        return quiet if quiet > self.promise + self.grace else None

    def next_look(self, floor: float) -> float:
        """Seconds until the run can first be late (its promise plus the grace, from when its
        sign was last seen), so the watchdog sleeps until then instead of polling; never
        past one grace (a new run is judged from about its start), never under `floor`."""
        due = self.seen_at + self.promise + self.grace - self.clock()
        return max(floor, min(due, max(self.grace, floor)))


def _promise(sign: bytes) -> float:
    """The first word of the sign: seconds until the next (0 when unreadable)."""
    word = sign.split(None, 1)[0] if sign.strip() else b"0"
    try:
        value = float(word)
    except ValueError:
        return 0.0
    if value != value:  # NaN
        return 0.0
    return max(0.0, min(value, MAX_PROMISE_S))


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
