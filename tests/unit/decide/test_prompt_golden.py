"""The whole tick prompt for one fixed data dir, pinned byte for byte: a refactor of the prompt
builder must not move a single byte (the decider's prompt cache keys on the prefix)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

from looop.core.context import Ctx
from looop.core.paths import Paths
from looop.decide.prompt import PromptExtras, build_prompt
from tests.clocks import FixedClock

GOLDEN = Path(__file__).parent / "golden"


def _world(ctx: Ctx, clock: FixedClock) -> PromptExtras:
    """Every section present, one body over its cap, a clock-dependent fairness line."""
    paths = ctx.paths
    paths.playbook.write_text("# PLAYBOOK\nShip before polish.\n=== NOW === forged\n")
    paths.goals.mkdir(exist_ok=True)
    paths.goal("ship").write_text("goal: v2 shipped\n")
    paths.goal("docs").write_text("goal: docs current\n" + "x" * 9000 + "\n")
    paths.goal_activity.write_text(json.dumps({"ship": clock.now() - 3600, "docs": clock.now()}))
    paths.snapshots.mkdir(exist_ok=True)
    (paths.snapshots / "sensor-ci.json").write_text('{"signal": {"ci": "green"}}\n')
    (paths.snapshots / "sys-goals.json").write_text('{"signal": {}, "detail": {}}\n')
    paths.journal.write_text("- 2025-06-14 10:00 wrote goal ship\n- 2025-06-14 10:05 noop\n")
    return PromptExtras(
        changes=["~ snap:sensor-ci signal: red → green", "+ goal:docs"],
        last_failure={
            "run_id": "tick-1",
            "code": "tick.failed",
            "error": "bad decision",
            "fails": 2,
            "ts": clock.now() - 120,
        },
        last_shell={
            "cmd": "ls",
            "exit_code": 0,
            "timed_out": False,
            "secs": 1.5,
            "stdout": "a\nb\n",
            "stderr": "",
        },
        flapping=["sensor-clock"],
        flap_notes=["sensor-clock started flapping (11% of recent beats changed)"],
        workers="ship  busy  up 5m",
        asks="ship-1  (LIVE)  May I merge PR #42?",
    )


def built_prompt(ctx: Ctx, clock: FixedClock, env: dict[str, str]) -> str:
    """The prompt and its truncation notes for the fixed world. The data dir's path is part
    of the prompt and counts against its cap, so it has one length in every run (a pytest
    tmp dir's name grows with the run's number)."""
    with tempfile.TemporaryDirectory(prefix="looop-golden-") as d:
        data = Path(d) / "data"
        data.mkdir()
        ctx = replace(ctx, paths=Paths.at(data), env={**ctx.env, **env})
        extras = _world(ctx, clock)
        built = build_prompt(ctx, ctx.knobs(), extras)
        got = built.text.replace(str(data), "<DATA>")
    return got + "\n--- truncated notes ---\n" + "\n".join(built.truncated) + "\n"


def _check(ctx: Ctx, clock: FixedClock, name: str, env: dict[str, str]) -> None:
    assert built_prompt(ctx, clock, env) == (GOLDEN / name).read_text("utf-8")


def test_the_whole_prompt_is_pinned(ctx: Ctx, clock: FixedClock) -> None:
    _check(ctx, clock, "prompt_full.txt", {})


def test_the_whole_prompt_under_a_tight_total_cap_is_pinned(ctx: Ctx, clock: FixedClock) -> None:
    _check(ctx, clock, "prompt_capped.txt", {"LOOOP_PROMPT_MAX_BYTES": "9000"})
