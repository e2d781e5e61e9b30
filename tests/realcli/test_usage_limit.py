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
from looop.sessions.client import expect, screenshot
from looop.sessions.state import get_session
from looop.views.status import gather_status
from looop.workers.errors import StartHeld
from looop.workers.launch import start_worker
from looop.workers.resume import conversation, read_record
from looop.workers.started import StartRequest
from tests.helpers import kill_sessions
from tests.realcli.harness import Rig, answer_first_run_prompts
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


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cli", sorted(SAID))
def test_a_worker_at_its_usage_window_holds_starts_and_goes_on_at_the_reset(
    rig_for: RigFor, cli: str
) -> None:
    """The whole fleet (issue 54 item 5): a real worker TUI stops on its 429; the beat marks
    its account (the decide on it waits too); a new start on it is held as scheduled; past
    the reset the worker is continued on its recorded conversation and the held start made."""
    rig = rig_for(cli)
    answer_first_run_prompts(rig)
    if cli == "claude":
        _subscriber(rig)
    ctx, clock, root = rig.ctx, rig.ctx.clock, rig.ctx.paths.data
    reset = int(clock.now()) + 5400
    rig.server.scenario, rig.server.limit_reset = USAGE_LIMIT, reset
    try:
        start_worker(ctx, ctx.knobs(), StartRequest("w1", "Greet the fleet. ECHO:first"))
        code, _, _ = expect(root, "w1", "hit your", screen=True, timeout_s=90, clock=clock)
        assert code == 0, screenshot(root, "w1", "plain", trim=True).get("text")
        out = tick(ctx)
        assert out.status == "limited", (out.status, out.error)  # the decide waits too
        [win] = gather_status(ctx.paths, ctx.env, clock)["windows"]
        assert win["stopped"] == ["w1"] and win["seen_by"] == "worker w1"
        with pytest.raises(StartHeld):
            start_worker(ctx, ctx.knobs(), StartRequest("w2", "Later. ECHO:second"))
        rec = read_record(ctx, "w1")
        assert rec is not None
        conv = conversation(ctx, rec)  # claude's was given; codex's is found in its files
        assert conv is not None
        rig.server.scenario = DECIDE
        clock.advance(win["until"] - clock.now() + 1)  # type: ignore[attr-defined]
        tick(ctx)
        lines = ctx.paths.events.read_text().splitlines()
        recs = [json.loads(ln) for ln in lines]
        resumed = [r for r in recs if r.get("event") == "worker_resumed"]
        assert [(r["id"], r["conversation"]) for r in resumed] == [("w1", conv)]
        assert [r["id"] for r in recs if r.get("event") == "worker_started"] == ["w1", "w2"]
        assert get_session(root, "w2") is not None
    finally:
        kill_sessions(root)
