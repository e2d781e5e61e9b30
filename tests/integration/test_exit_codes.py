"""Scripts can trust looop's exit codes and shapes, as real processes: `tick` on a broken
config fails even when the world is unchanged (the beat skips, but nothing can decide);
`tick --force` that a spend breaker stops fails; `up --json` prints one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from looop.core.context import Ctx
from tests.helpers import clean_env, wire

pytestmark = pytest.mark.timeout(120)


def _looop(ctx: Ctx, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    home = ctx.paths.data.parent
    env = clean_env(home, ctx.paths.data, LOOOP_INTERVAL="3600")
    return subprocess.run(
        [sys.executable, "-m", "looop", *args],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tick_on_a_broken_config_fails_even_when_the_world_is_unchanged(ctx: Ctx) -> None:
    wire(ctx, [])  # the scripted runner: every decision a noop
    first = _looop(ctx, "tick")
    assert first.returncode == 0, first.stderr
    again = _looop(ctx, "tick")
    assert again.returncode == 0 and "world unchanged" in again.stderr  # a skip is fine
    ctx.paths.config.write_text('{"default": "scripted", "runners": ')  # a half-saved edit
    broken = _looop(ctx, "tick")
    assert "world unchanged" in broken.stderr  # the beat itself still skipped…
    assert broken.returncode == 1  # …but a script must learn that nothing can decide
    said = [ln for ln in broken.stderr.splitlines() if str(ctx.paths.config) in ln]
    assert said and said[-1].startswith("looop: "), broken.stderr


def test_tick_force_stopped_by_a_breaker_fails(ctx: Ctx) -> None:
    wire(ctx, [])
    cap = {"LOOOP_MAX_DECIDES_PER_HOUR": "1"}
    first = _looop(ctx, "tick", "--force", **cap)
    assert first.returncode == 0, first.stderr
    forced = _looop(ctx, "tick", "--force", **cap)  # the hour's one decide is spent
    assert "hourly decide cap" in forced.stderr
    assert forced.returncode == 1, forced.stderr


def test_tick_force_stopped_by_the_budget_breaker_fails(ctx: Ctx) -> None:
    """The daily budget's fail-closed side: a runner that reports no cost while a budget is
    set opens the breaker after three runs, and a forced beat it stops fails too."""
    wire(ctx, [], max_daily_usd=5)  # the scripted runner reports no cost
    for _ in range(3):
        ran = _looop(ctx, "tick", "--force")
        assert ran.returncode == 0, ran.stderr
    forced = _looop(ctx, "tick", "--force")
    assert "reported no cost 3 runs in a row while a budget is set" in forced.stderr
    assert forced.returncode == 1, forced.stderr


def test_up_json_prints_json(ctx: Ctx) -> None:
    wire(ctx, [])
    try:
        up = _looop(ctx, "up", "--json")
        assert up.returncode == 0, up.stderr
        got = json.loads(up.stdout)  # the whole of stdout: one object
        assert got["pulse"]["state"] == "started" and int(got["pulse"]["pid"]) > 0
        again = json.loads(_looop(ctx, "up", "--json").stdout)
        assert again["pulse"]["state"] == "running"
        assert again["pulse"]["pid"] == got["pulse"]["pid"]
    finally:
        _looop(ctx, "down")
