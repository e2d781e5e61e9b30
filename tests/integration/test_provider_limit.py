"""A runner at its provider's usage limit: looop waits for the reset (a schedule the user can
see and drop), burns no backoff, tells status, the prompt and the human once."""

from __future__ import annotations

import json

import pytest

from looop.core.context import Ctx
from looop.human import schedules
from looop.loop import guards
from looop.loop.tick import tick
from tests.clocks import FixedClock
from tests.helpers import clean_env, events, run_cli, runner_calls, wire

pytestmark = pytest.mark.timeout(60)

NOOP = {"decision": {"action": "noop", "reason": "seen"}}


def _goal(ctx: Ctx, name: str) -> None:
    ctx.paths.goals.mkdir(parents=True, exist_ok=True)
    (ctx.paths.goals / f"{name}.md").write_text(f"goal: {name}\n")


def _alerts(ctx: Ctx) -> list[dict[str, object]]:
    lines = ctx.paths.events.read_text().splitlines()
    recs = [json.loads(ln) for ln in lines]
    return [r for r in recs if r.get("event") == "alerted" and r.get("key") == "limit"]


def _limited_run(ctx: Ctx, clock: FixedClock, reset_in: int = 3600) -> object:
    said = f"Claude AI usage limit reached|{int(clock.now()) + reset_in}"
    script = wire(ctx, [NOOP, {"exit": 1, "stderr": said}, NOOP, NOOP, NOOP])
    assert tick(ctx).status == "decided"
    _goal(ctx, "a")
    out = tick(ctx)
    assert out.status == "limited" and runner_calls(script) == 2
    return script


def test_a_limit_waits_for_its_reset_without_backoff_then_decides_once_told(
    ctx: Ctx, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _limited_run(ctx, clock)
    # no failure counted: no backoff, no LAST FAILURE
    assert guards.read_backoff(ctx.paths, clock.now()) is None
    assert not ctx.paths.last_failure.exists()
    # the durable wake: a one-shot schedule at the reset
    rec = json.loads((ctx.paths.schedules / "provider-limit.json").read_text())
    assert rec["at"] == int(clock.now()) + 3600
    # a changed world before the reset calls nothing
    _goal(ctx, "b")
    clock.advance(600)
    assert tick(ctx).status == "limited" and runner_calls(script) == 2
    assert events(ctx).count("tick.limited") == 2
    assert len(_alerts(ctx)) == 1  # the human is told once
    env = clean_env(ctx.paths.data.parent, ctx.paths.data)
    code, out, _ = run_cli(capsys, "status", env=env, clock=clock)
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("limited:"))
    assert "scripted until" in line and "in 50m" in line and "schedule drop provider-limit" in line
    code, out, _ = run_cli(capsys, "schedule", "ls", env=env, clock=clock)
    assert code == 0 and "provider-limit" in out
    # the reset: the schedule falls due, the runner is called again and told once
    clock.advance(3001)
    out = tick(ctx)
    assert out.status == "decided" and runner_calls(script) == 3
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    told = prompt.split("=== PROVIDER LIMIT ===")[1]
    assert "Runner scripted hit its provider usage limit" in told
    assert "Claude AI usage limit reached|" in told
    _goal(ctx, "c")
    out = tick(ctx)
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert out.status == "decided" and "PROVIDER LIMIT" not in prompt
    code, out_text, _ = run_cli(capsys, "status", env=env, clock=clock)
    assert not [ln for ln in out_text.splitlines() if ln.startswith("limited:")]


def test_dropping_the_schedule_retries_on_the_next_change(ctx: Ctx, clock: FixedClock) -> None:
    script = _limited_run(ctx, clock)
    assert schedules.drop(ctx.paths.schedules, "provider-limit")
    _goal(ctx, "b")
    out = tick(ctx)
    assert out.status == "decided" and runner_calls(script) == 3
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert "until you dropped its schedule" in prompt


def test_a_forced_tick_runs_despite_the_limit_and_a_limit_again_re_arms(
    ctx: Ctx, clock: FixedClock
) -> None:
    script = _limited_run(ctx, clock)
    assert tick(ctx, force=True, override_backoff=True).status == "decided"
    assert runner_calls(script) == 3
    # a second limit later alerts the human again
    said = f"You've hit your usage limit. Try again at {_hhmm(clock, 7200)}."
    script = wire(ctx, [{"exit": 1, "stderr": said}])
    _goal(ctx, "b")
    assert tick(ctx).status == "limited"
    assert len(_alerts(ctx)) == 2


def test_a_limit_without_a_reset_time_is_an_ordinary_failure(ctx: Ctx, clock: FixedClock) -> None:
    script = wire(ctx, [NOOP, {"exit": 1, "stderr": "API Error: 429 rate_limit_error"}])
    assert tick(ctx).status == "decided"
    _goal(ctx, "a")
    assert tick(ctx).status == "failed" and runner_calls(script) == 2
    back = guards.read_backoff(ctx.paths, clock.now())
    assert back is not None and back.fails == 1
    assert not (ctx.paths.schedules / "provider-limit.json").exists()


def _hhmm(clock: FixedClock, ahead: int) -> str:
    t = clock.local(clock.now() + ahead)
    return f"{t.hour % 12 or 12}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


@pytest.mark.timeout(60)
def test_a_worker_at_its_limit_shows_limited_until_in_ls(ctx: Ctx) -> None:
    """A real session whose screen ends on claude's limit message (drawn as a TUI draws it:
    colours, cursor moves for gaps): `looop ls` says when it resets, not busy or stuck."""
    import subprocess
    import sys
    import time as _time

    from looop.home.clock import SystemClock
    from looop.sessions.client import expect, kill
    from looop.sessions.spawner import spawn

    reset = _time.gmtime(_time.time() + 2 * 3600)
    hh = f"{reset.tm_hour % 12 or 12}:{reset.tm_min:02d}{'am' if reset.tm_hour < 12 else 'pm'}"
    screen = (
        "\x1b[2K\x1b[31mYou've\x1b[1Chit\x1b[1Cyour\x1b[1C5-hour\x1b[1Climit\x1b[39m"
        f" \u00b7 resets {hh} (UTC)\r\n"
    )
    (ctx.paths.data / "screen.bin").write_text(screen)
    env = clean_env(ctx.paths.data.parent, ctx.paths.data, TZ="UTC")
    argv = ["bash", "-c", "cat screen.bin; exec sleep 60"]
    spawn(ctx.paths.data, "w1", argv, cwd=ctx.paths.data, env=env, host_idle_s=0)
    try:
        code, _, _ = expect(ctx.paths.data, "w1", "resets", timeout_s=20, clock=SystemClock())
        assert code == 0, "the worker never drew its screen"
        got = subprocess.run(
            [sys.executable, "-m", "looop", "ls", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        rows = {r["id"]: r for r in json.loads(got.stdout)}
        assert rows["w1"]["health"] == f"limited until {reset.tm_hour:02d}:{reset.tm_min:02d}"
        table = subprocess.run(
            [sys.executable, "-m", "looop", "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        assert "limited until" in table
    finally:
        kill(ctx.paths.data, "w1")


def test_a_torn_limit_record_costs_one_call_never_a_stuck_loop(
    ctx: Ctx, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _limited_run(ctx, clock)
    ctx.paths.state(".provider-limit.json").write_text("{torn")
    env = clean_env(ctx.paths.data.parent, ctx.paths.data)
    code, out, _ = run_cli(capsys, "status", env=env, clock=clock)
    assert code == 0 and not [ln for ln in out.splitlines() if ln.startswith("limited:")]
    _goal(ctx, "b")
    assert tick(ctx).status == "decided" and runner_calls(script) == 3
    assert not ctx.paths.state(".provider-limit.json").exists()
