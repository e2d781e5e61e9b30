"""Decide-path overhead: a whole deciding beat minus the runner's own time, instant runner."""

from __future__ import annotations

import io
import json
import statistics
import tempfile
from pathlib import Path

from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.clock import SystemClock
from looop.home.paths import Paths
from looop.loop.tick import tick
from looop.seed import ensure_data_dir


def run() -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory() as d:
        paths = Paths.at(Path(d) / "data")
        ensure_data_dir(paths)  # the real starter: PLAYBOOK, two goals, today.sh
        runner = 'printf \'{"action":"noop","reason":"bench"}\' > .decision.json'
        paths.config.write_text(
            json.dumps(
                {"tick_command": runner, "worker_command": "x {{prompt_file}}", "max_daily_usd": 0}
            )
        )
        clock = SystemClock()
        ctx = Ctx(
            paths=paths,
            clock=clock,
            env={"PATH": "/usr/bin:/bin"},
            events=Emitter(clock=clock, events_path=paths.events, stream=io.StringIO()),
        )
        overheads, runners = [], []
        for _ in range(25):
            t0 = clock.monotonic()
            out = tick(ctx, force=True)
            total = clock.monotonic() - t0
            assert out.status == "decided", out.error
            res = json.loads((paths.run_dir(out.run_id or "") / "result.json").read_text())
            runners.append(res["secs"])
            overheads.append(total - res["secs"])
        med = statistics.median(overheads)
        base = statistics.median(runners)
        return [
            {
                "name": "decide-path overhead (all but the runner)",
                "value": med * 1000,
                "min": min(overheads) * 1000,
                "max": max(overheads) * 1000,
                "unit": "ms",
                "baseline": base * 1000,
                "ratio": med / base if base else None,
                "target": "<= 100 ms",
                "ok": med <= 0.1,
                "note": (
                    "decide: 25 forced beats; baseline = the instant runner's own wall time "
                    "(bash printf)"
                ),
            }
        ]


if __name__ == "__main__":
    for r in run():
        print(r)
