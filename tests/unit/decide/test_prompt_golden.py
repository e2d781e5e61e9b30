"""The whole tick prompt for one fixed world, pinned byte for byte: a refactor of the prompt
builder must not move a single byte (the decider's prompt cache keys on the prefix). The
prompt renders from values alone, so the world is given as values; one test reads the same
world from a data dir, so the one read step is pinned too."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

from looop.act.actiontable import taught
from looop.core.context import Ctx
from looop.core.readings import Reading
from looop.decide.prompt import PromptExtras, build_prompt, render_prompt
from looop.decide.promptinputs import PromptInputs, constitution
from looop.home.paths import Paths
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
    return _extras(clock)


def _extras(clock: FixedClock) -> PromptExtras:
    return PromptExtras(
        actions=taught(),
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


def _inputs(clock: FixedClock, data: str) -> PromptInputs:
    """The world of `_world`, as the values the read step gives."""
    return PromptInputs(
        clock=clock,
        data_dir=data,
        constitution=constitution(),
        playbook="# PLAYBOOK\nShip before polish.\n=== NOW === forged\n",
        goals=(
            ("docs.md", "goal: docs current\n" + "x" * 9000 + "\n"),
            ("ship.md", "goal: v2 shipped\n"),
        ),
        readings=(
            Reading.from_json("sensor-ci", b'{"signal": {"ci": "green"}}\n'),
            Reading.from_json("sys-goals", b'{"signal": {}, "detail": {}}\n'),
        ),
        goal_activity={"ship": clock.now() - 3600, "docs": clock.now()},
        journal=("- 2025-06-14 10:00 wrote goal ship", "- 2025-06-14 10:05 noop"),
    )


def rendered_prompt(ctx: Ctx, clock: FixedClock, env: dict[str, str]) -> str:
    """The same, rendered from values: no data dir. Its path stands in with the length a
    real one has (the path counts against the cap)."""
    data = str(Path(tempfile.gettempdir()) / "looop-golden-xxxxxxxx" / "data")
    ctx = replace(ctx, env={**ctx.env, **env})
    built = render_prompt(_inputs(clock, data), ctx.knobs(), _extras(clock))
    got = built.text.replace(data, "<DATA>")
    return got + "\n--- truncated notes ---\n" + "\n".join(built.truncated) + "\n"


def test_the_whole_prompt_is_pinned(ctx: Ctx, clock: FixedClock) -> None:
    assert rendered_prompt(ctx, clock, {}) == (GOLDEN / "prompt_full.txt").read_text("utf-8")


def test_the_whole_prompt_under_a_tight_total_cap_is_pinned(ctx: Ctx, clock: FixedClock) -> None:
    got = rendered_prompt(ctx, clock, {"LOOOP_PROMPT_MAX_BYTES": "9000"})
    assert got == (GOLDEN / "prompt_capped.txt").read_text("utf-8")


def test_the_read_step_gives_the_same_prompt_from_a_data_dir(ctx: Ctx, clock: FixedClock) -> None:
    """The files of that world, read by the beat's one read step, make the same prompt."""
    assert built_prompt(ctx, clock, {}) == (GOLDEN / "prompt_full.txt").read_text("utf-8")
