"""Cold start of the hot verbs against a bare interpreter, interleaved pair by pair in the
same run: each round times `python -c pass` (the same venv's python) and the verb, in
alternating order, as whole commands (the installed console script, a new process each)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 25
TARGET = 1.5
# In round order: claim then unclaim (each does its real write), tell then told (each round's
# told reads the message just told), against a live worker `w1` running cat.
VERBS = [
    ["version"],
    ["status"],
    ["ls"],
    ["claim", "bench-lease", "--session", "w1"],
    ["unclaim", "bench-lease", "--session", "w1"],
    ["tell", "w1", "keep going"],
    ["told", "w1"],
    ["cost", "report", "session", "w1", "claude", "0.01"],
]


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def run() -> list[dict[str, object]]:
    # An installed wheel is byte-compiled once by pip; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would recompile on every start, which no user pays.
    import looop
    from looop.core.clock import SystemClock
    from looop.sessions import kill, spawn, wait

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(looop.__file__).parent)], check=True
    )
    looop_bin = str(Path(sys.executable).parent / "looop")
    base_cmd = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        data.mkdir()
        env = dict(os.environ, LOOOP_DATA_DIR=str(data))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        spawn(data, "w1", ["cat"], cwd=data, env=env)
        try:
            ours: dict[int, list[float]] = {i: [] for i in range(len(VERBS))}
            base: dict[int, list[float]] = {i: [] for i in range(len(VERBS))}
            for _ in range(2):  # warm the page cache for both programs
                _time(base_cmd, env)
                for verb in VERBS:
                    _time([looop_bin, *verb], env)
            for r in range(ROUNDS):
                for i, verb in enumerate(VERBS):
                    pair = [(base[i], base_cmd), (ours[i], [looop_bin, *verb])]
                    for sink, cmd in pair if r % 2 else reversed(pair):
                        sink.append(_time(cmd, env))
        finally:
            kill(data, "w1")
            wait(data, "w1", 30, SystemClock())
    rows: list[dict[str, object]] = []
    for i, verb in enumerate(VERBS):
        med, bmed = statistics.median(ours[i]), statistics.median(base[i])
        ratio = med / bmed
        rows.append(
            {
                "name": f"looop {' '.join(verb[:2] if verb[0] == 'cost' else verb[:1])} cold",
                "value": med * 1000,
                "min": min(ours[i]) * 1000,
                "max": max(ours[i]) * 1000,
                "unit": "ms",
                "baseline": bmed * 1000,
                "ratio": ratio,
                "target": f"ratio <= {TARGET}",
                "ok": ratio <= TARGET,
            }
        )
    rows[0]["note"] = (
        f"cli: {ROUNDS} interleaved rounds per verb, each pairing the verb with `python -c "
        "pass` (same venv python) in alternating order; ratio = median / median. Each run is "
        "a new process of the installed console script, byte-compiled once first as pip does "
        "at install; tell/told/claim/unclaim run against a live worker (cat) and do their real "
        "writes every round"
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
