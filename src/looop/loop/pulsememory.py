"""Where a long-running pulse's memory goes, for soaks: its allocations traced and dumped
every N beats (`LOOOP_TRACEMALLOC`), and the deliberate leak that proves a soak's memory
check can fail (`LOOOP_SOAK_LEAK_KB`). Apart from the pulse because it is a diagnosis aid,
off by default, that no beat reads: only `looop pulse`'s start (cli/lifecycle.py) and the
soak benches make one, and the pulse only ticks it once a beat."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TRACE_ENV = "LOOOP_TRACEMALLOC"
LEAK_ENV = "LOOOP_SOAK_LEAK_KB"
FRAMES = 8
TOP = 25


@dataclass
class MemTrace:
    """Where a long-running pulse's memory goes: `LOOOP_TRACEMALLOC=FILE[:EVERY]` makes `looop
    pulse` trace its allocations and, every EVERY beats (default 100), append to FILE the lines
    that grew most since the first dump. A diagnosis aid for soaks (bench/soak.py), off by default:
    tracing costs the pulse several times its memory and CPU.

    `LOOOP_SOAK_LEAK_KB=N` makes the pulse keep N kB more on every beat: the deliberate leak
    that proves the soak's memory check can fail (tests/integration/test_soak_breaks.py). Only
    the soak's tests set it.
    """

    out: Path | None  # None: no tracing (a leak alone)
    every: int
    base: tracemalloc.Snapshot | None = None
    dumps: int = 0
    leak_kb: int = 0
    _filters: list[tracemalloc.Filter] = field(default_factory=list)
    _kept: list[bytes] = field(default_factory=list)

    def start(self) -> None:
        if self.out is None:
            return
        tracemalloc.start(FRAMES)
        self._filters = [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        ]

    def beat(self, beats: int) -> None:
        if self.leak_kb:
            self._kept.append(b"\x01" * (self.leak_kb * 1024))  # written: resident, not lazy
        if self.out is None or beats % self.every:
            return
        snap = tracemalloc.take_snapshot().filter_traces(self._filters)
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"== beat {beats} pid {os.getpid()} traced {current} B (peak {peak} B)"]
        if self.base is None:
            self.base = snap
            lines.append("(baseline)")
        else:
            for stat in snap.compare_to(self.base, "traceback")[:TOP]:
                if stat.size_diff <= 0:
                    continue
                lines.append(f"{stat.size_diff:+d} B {stat.count_diff:+d} blocks")
                lines += [f"    {fr}" for fr in stat.traceback.format()[-FRAMES:]]
        self.dumps += 1
        with open(self.out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def _leak_kb(env: Mapping[str, str]) -> int:
    raw = env.get(LEAK_ENV, "").strip()
    if not raw:
        return 0
    try:
        kb = int(raw)
    except ValueError:
        raise ValueError(f"{LEAK_ENV}={raw}: give a whole number of kB a beat") from None
    if not 0 <= kb <= 1 << 20:
        raise ValueError(f"{LEAK_ENV}={raw}: give 0 to 1048576 kB a beat")
    return kb


def trace_from_env(env: Mapping[str, str]) -> MemTrace | None:
    """The trace (or soak leak) asked for in `env`, or None; a bad value is named, never
    guessed."""
    leak = _leak_kb(env)
    raw = env.get(TRACE_ENV, "").strip()
    if not raw:
        return MemTrace(None, 1, leak_kb=leak) if leak else None
    path, sep, every = raw.rpartition(":")
    if not sep:
        path, every = raw, ""
    try:
        n = int(every) if every else 100
    except ValueError:
        raise ValueError(f"{TRACE_ENV}={raw}: EVERY must be a whole number of beats") from None
    if n < 1:
        raise ValueError(f"{TRACE_ENV}={raw}: EVERY must be at least 1")
    return MemTrace(Path(path), n, leak_kb=leak)
