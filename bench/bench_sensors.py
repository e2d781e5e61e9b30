"""Beat cost of sensing: concurrent sensors cost the slowest one, and spawning stays cheap."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from looop.core.clock import SystemClock
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.core.paths import Paths
from looop.sense import sense

RUNS = 5
SLEEPY = '#!/bin/sh\nsleep 0.1\necho \'{"signal":{"ok":true}}\'\n'
TRIVIAL = "#!/bin/sh\necho '{\"signal\":{}}'\n"


def _ctx(data: Path, count: int, body: str) -> Ctx:
    """A fresh data dir holding `count` copies of one sensor."""
    paths = Paths.at(data)
    paths.sensors.mkdir(parents=True)
    for i in range(count):
        script = paths.sensors / f"s{i:03d}.sh"
        script.write_text(body)
        script.chmod(0o755)
    clock = SystemClock()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(data)}
    return Ctx(paths=paths, clock=clock, env=env, events=Emitter(clock=clock, events_path=None))


def _median_beat(ctx: Ctx) -> float:
    """Median wall seconds of sense() over RUNS beats, after one warm-up beat."""
    knobs = ctx.knobs()
    sense(ctx, knobs)
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        readings = sense(ctx, knobs)
        times.append(time.perf_counter() - t0)
        bad = [r.name for r in readings if not r.ok]
        if bad:
            raise RuntimeError(f"benchmark sensors failed: {', '.join(bad)}")
    return statistics.median(times)


def _row(name: str, value: float, baseline: float, target: str, ok: bool) -> dict[str, object]:
    return {
        "name": name,
        "value": round(value, 4),
        "unit": "s",
        "baseline": round(baseline, 4),
        "ratio": round(value / baseline, 2) if baseline > 0 else None,
        "target": target,
        "ok": ok,
    }


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as tmp:
        root = Path(tmp)
        # (a) 20 sensors sleeping 0.1 s vs one of them alone: concurrency means ~1x, not 20x.
        # All 20 are identical, so the slowest single sensor is any one of them.
        solo = _median_beat(_ctx(root / "solo", 1, SLEEPY))
        many = _median_beat(_ctx(root / "many", 20, SLEEPY))
        ratio = many / solo
        # (b) 100 trivial sensors: spawn overhead must keep the beat under a second.
        one = _median_beat(_ctx(root / "one", 1, TRIVIAL))
        hundred_ctx = _ctx(root / "hundred", 100, TRIVIAL)
        hundred = _median_beat(hundred_ctx)
        # (c) an unchanged world: how many snapshots a beat rewrites (a new inode = a rename)
        snaps = hundred_ctx.paths.snapshots
        before = {p.name: p.stat().st_ino for p in snaps.glob("*.json")}
        sense(hundred_ctx, hundred_ctx.knobs())
        rewritten = sum(1 for p in snaps.glob("*.json") if before.get(p.name) != p.stat().st_ino)
    return [
        _row("sense_20_sleepy_sensors", many, solo, "ratio <= 1.5", ratio <= 1.5),
        _row("sense_100_trivial_sensors", hundred, one, "value <= 1.0 s", hundred <= 1.0),
        {
            "name": f"snapshots rewritten by a beat on an unchanged world (of {len(before)})",
            "value": rewritten,
            "unit": "",
            "baseline": None,
            "ratio": None,
            "target": "0 (no fsync, no rename)",
            "ok": rewritten == 0,
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
