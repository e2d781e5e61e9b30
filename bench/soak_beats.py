"""The pulse's memory per beat, fast: many beats in this one process, no sleep between them.

`python bench/soak_beats.py [BEATS]` (default 3000): a throwaway home like bench/soak_memory.py's
(a sensor whose reading changes on every beat, the scripted runner answering a noop; flap
damping and coalescing off, so every beat decides), beaten by the real `Pulse` (its watcher
armed before each beat, its cadence and journal as under `looop up`) with the rest between
beats cut to nothing. Every SAMPLE beats it prints glibc's heap (taken, in use, kept free,
mapped alone), RSS, the Python heap (`sys.getallocatedblocks`), gc-tracked objects, modules,
threads and open descriptors, and at the end the slope of each per 1,000 beats over the
second half.
`--trim` calls glibc's malloc_trim(0) before each sample (what stays is not free-but-kept
arena memory); `--runner instant` decides with a shell printf instead of the Python runner;
`--workers N` starts N idle workers first (their rows are read every beat).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from looop.core import gcpolicy
from looop.core.context import ctx_for
from looop.home.clock import SystemClock
from looop.loop.heartbeat import MemTrace
from looop.loop.pulse import Pulse
from looop.seed import ensure_data_dir

SAMPLE = 100
COUNTER = '#!/bin/sh\nn=$(cat "$0.n" 2>/dev/null || echo 0)\necho $((n+1)) > "$0.n"\n' + (
    'echo "{\\"signal\\":{\\"n\\":$n}}"\n'
)


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def mallinfo() -> dict[str, int]:
    """glibc's heap figures, in kB (and its free chunks: fragments)."""
    h = gcpolicy.heap_figures()
    if not h:
        return {}
    return {
        "c_heap_kb": h["heap"] // 1024,  # taken from the kernel by brk
        "c_used_kb": h["used"] // 1024,  # in use in it
        "c_free_kb": h["free"] // 1024,  # free in it, kept
        "c_mmap_kb": h["mapped"] // 1024,  # big blocks mapped on their own
        "c_chunks": h["chunks"],  # free chunks: fragments
    }


def sample() -> dict[str, int]:
    return {
        **mallinfo(),
        "rss_kb": status_kb("VmRSS"),
        "heap_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "modules": len(sys.modules),
        "threads": threading.active_count(),
        "fds": len(os.listdir("/proc/self/fd")),
    }


def setup(root: Path, beats: int, runner: str) -> dict[str, str]:
    data = root / "data"
    data.mkdir()
    script = root / "script.json"
    script.write_text(json.dumps([{"decision": {"action": "noop", "reason": "beats"}}] * beats))
    tick = f"{sys.executable} -m looop.demo.runner --script {script}"
    if runner == "instant":
        tick = 'printf \'{"action":"noop","reason":"beats"}\' > .decision.json'
    cfg = {
        "default": "scripted",
        "runners": {"scripted": {"tick": tick, "worker": "sleep 1000000"}},
        "max_daily_usd": 0,
        "interval": 2,
        "flap_high": 0,  # every beat's change decides (the counter would flap) …
        "coalesce": 0,  # … at once, not held for the changes after it
    }
    (data / "config.json").write_text(json.dumps(cfg))
    (data / "sensors").mkdir()
    sensor = data / "sensors" / "counter.sh"
    sensor.write_text(COUNTER)
    sensor.chmod(0o755)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "LOOOP_DATA_DIR": str(data),
        "LOOOP_MAX_DECIDES_PER_HOUR": "0",
        "LOOOP_MAX_WORKERS": "100",
        "LOOOP_EVENTS_MAX_BYTES": "200000",
        "LOOOP_JOURNAL_MAX_BYTES": "20000",
        "LOOOP_RUNS_KEEP": "20",
    }


class Beating(Pulse):
    """The real pulse whose rest is nothing: it samples instead, and stops after `total`."""

    total: int = 0
    trim: bool = False
    rows: list[tuple[int, dict[str, int]]]

    def _rest(self, secs: float) -> bool:
        if self.beats % SAMPLE == 0:
            if self.trim:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            row = sample()
            self.rows.append((self.beats, row))
            print(self.beats, " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        if self.beats >= self.total:
            self.stop.set()
        return False


def slope(rows: list[tuple[int, dict[str, int]]], key: str) -> float:
    """Least squares slope of `key` per 1,000 beats over the second half of the rows."""
    half = rows[len(rows) // 2 :]
    xs = [float(b) for b, _ in half]
    ys = [float(r[key]) for _, r in half]
    if len(xs) < 3:
        return 0.0
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("beats", type=int, nargs="?", default=3000)
    ap.add_argument("--trim", action="store_true")
    ap.add_argument("--runner", choices=("scripted", "instant"), default="scripted")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--trace", metavar="FILE", help="tracemalloc growth every 500 beats to FILE")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="looop-beats-"))
    env = setup(root, args.beats + 100, args.runner)
    ctx = ctx_for(env, SystemClock(), events_to=None)
    ensure_data_dir(ctx.paths)
    looop = str(Path(sys.executable).parent / "looop")
    for i in range(args.workers):
        cmd = [looop, "worker", "start", f"w{i}", "x", "--no-sandbox"]
        cmd += ["--command", "sleep 1000000 # {{prompt_file}}"]
        subprocess.run(cmd, env=env, capture_output=True, timeout=60, check=True)
    pulse = Beating(ctx)
    pulse.total, pulse.trim, pulse.rows = args.beats, args.trim, []
    if args.trace:
        pulse.memtrace = MemTrace(Path(args.trace), 500)
        pulse.memtrace.start()
    try:
        pulse.run()
    finally:
        if args.workers:
            subprocess.run([looop, "down"], env=env, capture_output=True, timeout=120)
    if not pulse.rows:
        print(
            f"soak_beats: {args.beats} beats take no sample: give {SAMPLE} or more", file=sys.stderr
        )
        return 2
    print(f"beats in {root}: slope per 1,000 beats over the second half")
    for key in pulse.rows[0][1]:
        print(f"  {key:12} {slope(pulse.rows, key):+10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
