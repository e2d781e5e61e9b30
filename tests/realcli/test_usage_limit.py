"""The REAL claude and codex at a spent provider usage window: the scripted server answers
429 with the reset each provider sends (Anthropic: unified rate-limit headers; OpenAI: a
`usage_limit_reached` error with `resets_at`), the CLI prints its own limit message, and
looop waits for the reset (a schedule) instead of backing off and retrying."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from looop.loop import guards
from looop.loop.tick import tick
from tests.realcli.harness import Rig
from tests.realcli.model_server import DECIDE, USAGE_LIMIT

RigFor = Callable[[str], Rig]

# What each CLI printed (0.169.0 / 2.1.330); looop's parser reads these words.
SAID = {
    "codex": "hit your usage limit",
    "claude": "hit your 5-hour limit · resets",
}


def _subscriber(rig: Rig) -> None:
    """claude shows a usage window only to a subscription login, never to an API key: give
    it an OAuth token instead (the scripted server takes any)."""
    env = {k: v for k, v in rig.ctx.env.items() if k != "ANTHROPIC_API_KEY"}
    env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-scripted"
    rig.ctx = replace(rig.ctx, env=env)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("cli", sorted(SAID))
def test_a_spent_usage_window_waits_for_its_reset(rig_for: RigFor, cli: str) -> None:
    rig = rig_for(cli)
    if cli == "claude":
        _subscriber(rig)
    ctx, clock = rig.ctx, rig.ctx.clock
    reset = int(clock.now()) + 5400
    rig.server.scenario, rig.server.limit_reset = USAGE_LIMIT, reset
    out = tick(ctx)
    assert out.status == "limited", (out.status, out.error, rig.raw[-5:])
    assert SAID[cli] in (out.error or ""), out.error
    calls = len(rig.server.model_calls())
    # no failure counted, and the wake is at the reset (the CLIs say it to the minute)
    assert guards.read_backoff(ctx.paths, clock.now()) is None
    at = json.loads((ctx.paths.schedules / "provider-limit.json").read_text())["at"]
    assert reset <= at <= reset + 60
    # a changed world before the reset costs no call
    ctx.paths.goals.mkdir(parents=True, exist_ok=True)
    (ctx.paths.goals / "more.md").write_text("goal: more\n")
    clock.advance(600)  # type: ignore[attr-defined]
    assert tick(ctx).status == "limited"
    assert len(rig.server.model_calls()) == calls
    # past the reset the same CLI decides again, and is told what happened
    rig.server.scenario = DECIDE
    clock.advance(at - clock.now() + 1)  # type: ignore[attr-defined]
    out = tick(ctx)
    assert out.status == "decided", (out.status, out.error, rig.raw[-5:])
    prompt = (ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert "=== PROVIDER LIMIT ===" in prompt and SAID[cli] in prompt


@pytest.mark.timeout(120)
def test_claude_with_an_api_key_gives_no_reset_so_looop_backs_off(rig_for: RigFor) -> None:
    """An API key's 429 names no reset time: looop does not guess one."""
    rig = rig_for("claude")
    rig.server.scenario = USAGE_LIMIT
    out = tick(rig.ctx)
    assert out.status == "failed" and "429" in (out.error or "")
    back = guards.read_backoff(rig.ctx.paths, rig.ctx.clock.now())
    assert back is not None and back.fails == 1
    assert not (rig.ctx.paths.schedules / "provider-limit.json").exists()
