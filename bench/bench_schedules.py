"""Beat cost of durable time: the sys-schedules probe over many schedules, cron included."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from looop.home.clock import SystemClock
from looop.human import schedules

RUNS = 7
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")


def _probe_times(folder: Path, clock: SystemClock) -> list[float]:
    schedules.probe(folder, clock)  # warm-up: imports and zone files
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        schedules.probe(folder, clock)
        times.append(time.perf_counter() - t0)
    return times


def run() -> list[dict[str, object]]:
    clock = SystemClock()
    with tempfile.TemporaryDirectory(prefix="looop-bench-") as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        empty.mkdir()
        for i in range(100):
            cron = f"{i % 60} {i % 24} * * {'MON-FRI' if i % 2 else '*'}"
            rec = schedules.build(clock, cron=cron, tz=ZONES[i % len(ZONES)])
            schedules.write(full, f"cron{i:03d}", rec)
            schedules.write(full, f"every{i:03d}", schedules.build(clock, every_s=60 + i))
        base = statistics.median(_probe_times(empty, clock))
        times = _probe_times(full, clock)
        value = statistics.median(times)
    return [
        {
            "name": "sys-schedules probe, 100 cron + 100 every",
            "value": round(value * 1000, 2),
            "min": round(min(times) * 1000, 2),
            "max": round(max(times) * 1000, 2),
            "unit": "ms",
            "baseline": round(base * 1000, 3),
            "ratio": None,
            "target": "<= 100 ms",
            "ok": value <= 0.1,
            "note": "schedules: baseline = the same probe over an empty schedules/ dir",
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
