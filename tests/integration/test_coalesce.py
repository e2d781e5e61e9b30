"""Change coalescing: changes within the `coalesce` window make one decide (injected clock,
whole beats with the scripted runner, no sleeps)."""

from __future__ import annotations

import json

import pytest

from looop.core.context import Ctx
from looop.home.config import parse_config
from looop.home.errors import LooopError
from looop.loop.pulse import Pulse
from looop.loop.tick import tick
from tests.clocks import FixedClock
from tests.helpers import clean_env, events, run_cli, runner_calls, wire

pytestmark = pytest.mark.timeout(60)


def _setup(ctx: Ctx, **cfg: object) -> object:
    ctx.paths.sensors.mkdir(parents=True, exist_ok=True)
    for name in ("ci", "inbox"):
        (ctx.paths.data / name).write_text("0")
        p = ctx.paths.sensor(name)
        p.write_text(f'#!/usr/bin/env bash\nprintf \'{{"signal":{{"v":"%s"}}}}\' "$(cat {name})"\n')
        p.chmod(0o755)
    script = wire(ctx, [{"decision": {"action": "noop", "reason": "seen"}}] * 5, **cfg)
    assert tick(ctx).status == "decided"  # the first decision on record
    return script


def _prompt(ctx: Ctx, run_id: str | None) -> str:
    return (ctx.paths.run_dir(run_id or "") / "prompt.md").read_text()


def test_changes_within_the_window_make_one_decide_at_its_end(ctx: Ctx, clock: FixedClock) -> None:
    script = _setup(ctx, coalesce=5, interval=2)
    (ctx.paths.data / "ci").write_text("1")  # a push flips CI …
    clock.advance(2)
    first = tick(ctx, slept=2)
    # the change arrived after the last beat, 2 s ago at most: 3 s of the window are left
    assert first.status == "coalesce" and first.coalesce_s == 3
    assert Pulse(ctx).choose_sleep(first) == (3, "coalescing changes", False)
    (ctx.paths.data / "inbox").write_text("1")  # … and a mail lands a moment later
    clock.advance(2)
    second = tick(ctx, slept=2)
    assert second.status == "coalesce" and second.coalesce_s == 1  # the window never grows
    clock.advance(1)
    out = tick(ctx, slept=1)
    assert out.status == "decided" and runner_calls(script) == 2
    changed = _prompt(ctx, out.run_id).split("=== WHAT CHANGED ===")[1]
    assert "snap:sensor-ci" in changed and "snap:sensor-inbox" in changed
    assert events(ctx).count("tick.coalesce") == 2
    # the window closed with the decide: the next change opens a new one (a goal: a third
    # change of one sensor within a few beats would count as flapping)
    (ctx.paths.goals / "g.md").write_text("goal\n")
    clock.advance(2)
    assert tick(ctx, slept=2).coalesce_s == 3


def test_a_change_that_undoes_itself_within_the_window_decides_nothing(
    ctx: Ctx, clock: FixedClock
) -> None:
    script = _setup(ctx, coalesce=10)
    (ctx.paths.data / "ci").write_text("1")
    clock.advance(1)
    assert tick(ctx, slept=1).status == "coalesce"
    (ctx.paths.data / "ci").write_text("0")
    clock.advance(1)
    assert tick(ctx, slept=1).status == "skip"
    clock.advance(30)
    assert tick(ctx, slept=30).status == "skip" and runner_calls(script) == 1
    assert not ctx.paths.state(".coalesce.json").exists()


def test_a_slow_beat_a_forced_beat_and_coalesce_0_decide_at_once(
    ctx: Ctx, clock: FixedClock
) -> None:
    script = _setup(ctx, coalesce=5)
    # goals change here: one sensor changing every beat would count as flapping
    steps: list[dict[str, object]] = [{"slept": 60}, {"slept": 5}, {"slept": 1, "force": True}, {}]
    for n, kw in enumerate(steps):
        (ctx.paths.goals / f"g{n}.md").write_text("goal\n")
        clock.advance(1)
        out = tick(ctx, **kw)  # type: ignore[arg-type]
        assert out.status == "decided", kw
        assert runner_calls(script) == n + 2
    cfg = json.loads(ctx.paths.config.read_text())
    ctx.paths.config.write_text(json.dumps({**cfg, "coalesce": 0}))
    (ctx.paths.goals / "off.md").write_text("goal\n")
    clock.advance(1)
    assert tick(ctx, slept=1).status == "decided"


def test_a_window_survives_a_restart_of_the_beat(ctx: Ctx, clock: FixedClock) -> None:
    script = _setup(ctx, coalesce=6)
    (ctx.paths.data / "ci").write_text("1")
    clock.advance(2)
    assert tick(ctx, slept=2).coalesce_s == 4
    # a new process (a beat host, a restarted pulse's later beat) reads the same window
    clock.advance(4)
    assert tick(ctx, slept=1).status == "decided" and runner_calls(script) == 2


def test_the_coalesce_key_is_bounded() -> None:
    assert parse_config({"tick_command": "x", "coalesce": 60}, "c").raw["coalesce"] == 60
    for bad in (61, -1, "soon", 2.5):
        with pytest.raises(LooopError) as e:
            parse_config({"tick_command": "x", "coalesce": bad}, "c")
        assert "key 'coalesce' must be an integer from 0 to 60" in str(e.value)


def test_status_says_a_change_is_coalescing_and_a_bad_window_file_reopens(
    ctx: Ctx, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    _setup(ctx, coalesce=8)
    (ctx.paths.data / "ci").write_text("1")
    clock.advance(2)
    assert tick(ctx, slept=2).coalesce_s == 6
    env = clean_env(ctx.paths.data.parent, ctx.paths.data)
    code, out, _ = run_cli(capsys, "status", env=env, clock=clock)
    beat = next(ln for ln in out.splitlines() if ln.startswith("last beat:"))
    assert code == 0 and "coalescing: world changed — one decide in 6s" in beat
    # a torn or hand-edited window (or one stamped in the future): a new window, never a hang
    for bad in ("{nope", json.dumps({"v": 1, "since": clock.now() + 9999})):
        ctx.paths.state(".coalesce.json").write_text(bad)
        clock.advance(1)
        assert tick(ctx, slept=1).coalesce_s == 7
