"""Cold start of the hottest read verbs against a bare interpreter, in the same run."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _median(cmd: list[str], env: dict[str, str], n: int = 15) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> list[dict[str, object]]:
    # An installed wheel is byte-compiled once by pip; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would recompile on every start, which no user pays.
    import looop

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    looop_bin = str(Path(sys.executable).parent / "looop")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, LOOOP_DATA_DIR=d)
        base = _median([sys.executable, "-c", "pass"], env)
        rows = []
        for verb in (["version"], ["status"], ["status", "--json"]):
            t = _median([looop_bin, *verb], env)
            rows.append(
                {
                    "name": f"looop {' '.join(verb)} cold",
                    "value": t * 1000,
                    "unit": "ms",
                    "baseline": base * 1000,
                    "ratio": t / base,
                    "target": "ratio <= 5",
                    "ok": t / base <= 5,
                }
            )
        rows[0]["note"] = (
            "cli: each run is a new process; looop is byte-compiled once first, as pip does at "
            "install (under PYTHONDONTWRITEBYTECODE=1 without it, status measured 3.6-4.3x)"
        )
        return rows


if __name__ == "__main__":
    for r in run():
        print(r)
