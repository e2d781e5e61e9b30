"""Worker metering: what reading 30 workers' spend from their CLIs' own records adds to a beat.

A data dir with 30 workers, each with a resume record and a claude project session file as
claude writes it (assistant lines with usage, user lines with tool results, ~200 KB each). (a)
busy: before each pass every file gets one more assistant message, so each pass opens and reads
all 30 files' new bytes and records 30 ledger rows; (b) quiet: nothing was written since the
last pass (30 stats). Each pass is the beat's own hook (loop/fleetwork meter, with a
daily budget on, so the fleet is checked against it), in-process. Baseline: a whole skip beat
(`looop tick`, world unchanged) of the same data dir in the same run, so the ratio is the share
of a beat the meter adds."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLEET = 30
ROUNDS = 25
TARGET_MS = 5.0


def _assistant(n: int) -> str:
    msg = {
        "id": f"msg_{n}",
        "model": "claude-sonnet-4-5-20250929",
        "role": "assistant",
        "content": [{"type": "text", "text": "working on it " * 20}],
        "usage": {
            "input_tokens": 1200 + n,
            "output_tokens": 300,
            "cache_read_input_tokens": 20000,
            "cache_creation_input_tokens": 500,
        },
    }
    return json.dumps({"type": "assistant", "message": msg}) + "\n"


def _user(n: int) -> str:
    body = {"role": "user", "content": [{"type": "tool_result", "content": "x" * 4000}]}
    return json.dumps({"type": "user", "n": n, "message": body}) + "\n"


def _spread(xs: list[float]) -> dict[str, float]:
    return {
        "value": round(statistics.median(xs) * 1000, 2),
        "min": round(min(xs) * 1000, 2),
        "max": round(max(xs) * 1000, 2),
    }


def run() -> list[dict[str, object]]:
    from looop.cli.commands import process_clock
    from looop.core.context import ctx_for
    from looop.home.paths import Paths
    from looop.loop.fleetwork import meter
    from looop.seed import ensure_data_dir
    from looop.sessions.state import list_sessions

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data, home = tmp / "data", tmp / "home"
        paths = Paths.at(data)
        ensure_data_dir(paths)
        for f in paths.sensors.glob("*"):
            f.unlink()
        runner = 'printf \'{"action":"noop","reason":"bench"}\' > .decision.json'
        # a daily budget far above the fleet's spend: each pass also checks the fleet against it
        paths.config.write_text(json.dumps({"tick_command": runner, "max_daily_usd": 10_000}))
        (data / "resume").mkdir()
        proj = home / ".claude" / "projects" / "-work-repo"
        proj.mkdir(parents=True)
        files = []
        for i in range(FLEET):
            conv = f"00000000-0000-4000-8000-{i:012d}"
            rec = {
                "v": 1,
                "id": f"w{i}",
                "runner": "claude",
                "resume": "claude --resume {{session_id}}",
                "conversation": conv,
                "started": time.time() - 60,
            }
            (data / "resume" / f"w{i}.json").write_text(json.dumps(rec))
            f = proj / f"{conv}.jsonl"
            f.write_text("".join(_user(n) + _assistant(n) for n in range(48)))
            files.append(f)
        env = dict(os.environ, HOME=str(home), LOOOP_DATA_DIR=str(data), LOOOP_NOOP_TTL="0")
        ctx = ctx_for(env, process_clock(env), None)
        cfg = ctx.config()
        knobs = ctx.knobs(cfg)  # the beat's own, read once as it starts
        listed = list_sessions(ctx.paths.data)  # the beat's one listing
        meter(ctx, cfg, knobs, listed)  # the first pass reads each whole file once
        looop = str(Path(sys.executable).parent / "looop")
        subprocess.run([looop, "tick"], env=env, capture_output=True, check=True)
        busy: list[float] = []
        quiet: list[float] = []
        beats: list[float] = []
        for r in range(ROUNDS):
            for f in files:
                with f.open("a") as fh:
                    fh.write(_user(100 + r) + _assistant(100 + r))
            t0 = time.perf_counter()
            meter(ctx, cfg, knobs, listed)
            busy.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            meter(ctx, cfg, knobs, listed)
            quiet.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            subprocess.run([looop, "tick"], env=env, capture_output=True, check=True)
            beats.append(time.perf_counter() - t0)
        rows = json.loads("[" + ",".join(paths.cost_ledger.read_text().splitlines()) + "]")
        assert sum(1 for x in rows if x["kind"] == "worker") >= FLEET * (ROUNDS + 1)
    base = statistics.median(beats) * 1000
    out: list[dict[str, object]] = []
    for label, xs in (("each wrote a message", busy), ("none wrote anything", quiet)):
        s = _spread(xs)
        out.append(
            {
                "name": f"worker metering, {FLEET} claude workers, {label}",
                **s,
                "unit": "ms",
                "baseline": round(base, 1),
                "ratio": round(s["value"] / base, 3),
                "target": f"<= {TARGET_MS:g} ms",
                "ok": s["value"] <= TARGET_MS,
                "note": (
                    "worker metering: one in-process pass of the beat's meter hook over 30 "
                    "workers' claude session files (busy: one new message each, read and "
                    "recorded; quiet: nothing new, 30 stats), with a daily budget on so each "
                    "pass also checks the fleet against it; baseline = a whole skip beat "
                    "(`looop tick`) of the same data dir in the same run"
                ),
            }
        )
    return out
