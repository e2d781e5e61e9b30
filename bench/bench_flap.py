"""Decides bought by a scripted trace: 3 real changes and 7 flaps of a toggling sensor, each
beat a whole `looop tick` (the installed console script) with an instant runner. The
baseline is the same trace in the same run with flap damping off (LOOOP_FLAP_STREAK=0:
every signal change wakes the loop, as before damping existed)."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET = 4
CALM_AFTER = 10  # calm beats at the end: a settling sensor's last word is counted too
# (beat, file, value): the real sensor moves 3 times, the flapper toggles 7 times
TRACE: list[tuple[int, str, str]] = [
    (1, "real", "1"),
    (2, "flap", "1"),
    (3, "flap", "0"),
    (4, "flap", "1"),
    (5, "flap", "0"),
    (6, "real", "2"),
    (7, "flap", "1"),
    (8, "flap", "0"),
    (9, "flap", "1"),
    (15, "real", "3"),
]


def _sensor(data: Path, name: str, file: str) -> None:
    p = data / "sensors" / f"{name}.sh"
    p.write_text(f'#!/usr/bin/env bash\nprintf \'{{"signal":{{"v":"%s"}}}}\' "$(cat {file})"\n')
    p.chmod(0o755)


def _setup(data: Path) -> dict[str, str]:
    from looop.home.paths import Paths
    from looop.seed import ensure_data_dir

    paths = Paths.at(data)
    ensure_data_dir(paths)
    for f in paths.sensors.glob("*"):
        f.unlink()  # only the trace's sensors: the starter's today.sh would add its own wakes
    (data / "real").write_text("0")
    (data / "flap").write_text("0")
    _sensor(data, "real", "real")
    _sensor(data, "flap", "flap")
    runner = 'printf \'{"action":"noop","reason":"bench"}\' > .decision.json'
    cfg = {"tick_command": runner, "worker_command": "x {{prompt_file}}", "max_daily_usd": 0}
    paths.config.write_text(json.dumps(cfg))
    return dict(os.environ, LOOOP_DATA_DIR=str(data), LOOOP_NOOP_TTL="0")


def decides(damped: bool) -> tuple[int, list[str]]:
    """Runs the whole trace: the number of beats that called the runner (the first, on an
    empty record, not counted) and every prompt, in order."""
    looop = str(Path(sys.executable).parent / "looop")
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        env = _setup(data)
        if not damped:
            env["LOOOP_FLAP_STREAK"] = "0"
        at = dict((b, (f, v)) for b, f, v in TRACE)
        last = max(at) + CALM_AFTER
        subprocess.run([looop, "tick"], env=env, capture_output=True, check=True)
        for beat in range(1, last + 1):
            if beat in at:
                f, v = at[beat]
                (data / f).write_text(v)
            subprocess.run([looop, "tick"], env=env, capture_output=True, check=True)
        runs = sorted(p for p in (data / "runs").iterdir() if p.is_dir())
        return len(runs) - 1, [(p / "prompt.md").read_text() for p in runs]


def shared_prefix(a: str, b: str) -> float:
    """The share of `b` (the later prompt) that repeats `a` byte for byte from the start."""
    x, y = a.encode(), b.encode()
    n = 0
    for n, (p, q) in enumerate(zip(x, y, strict=False)):  # noqa: B007
        if p != q:
            break
    else:
        n = min(len(x), len(y))
    return n / len(y) if y else 1.0


def run() -> list[dict[str, object]]:
    (ours, prompts), (base, _) = decides(True), decides(False)
    shares = [shared_prefix(a, b) for a, b in itertools.pairwise(prompts)]
    med = statistics.median(shares)
    return [
        {
            "name": "decides on a trace of 3 real changes and 7 flaps",
            "value": ours,
            "min": ours,
            "max": ours,
            "unit": "decides",
            "baseline": base,
            "ratio": ours / base if base else None,
            "target": f"<= {TARGET}",
            "ok": ours <= TARGET,
            "note": (
                "flap: one deterministic trace (a figure, not a timing), 25 beats of a whole "
                "`looop tick` each; baseline = the same trace with damping off "
                "(LOOOP_FLAP_STREAK=0), as every change woke the loop before"
            ),
        },
        {
            "name": "shared prefix of consecutive prompts (provider cache)",
            "value": med * 100,
            "min": min(shares) * 100,
            "max": max(shares) * 100,
            "unit": "%",
            "baseline": None,
            "ratio": None,
            "target": ">= 50 %",
            "ok": min(shares) >= 0.5,
            "note": (
                "prefix: bytes each decide's prompt repeats from the previous one, from the "
                f"start, over the {len(shares)} consecutive pairs of the flap trace (the "
                "starter PLAYBOOK and goals, two sensors)"
            ),
        },
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
