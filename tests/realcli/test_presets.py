"""Whole beats with the REAL claude, codex, pi, opencode and gemini CLIs as the tick runner,
each run with looop's own preset command and pointed at the scripted model server, offline."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from looop.home.config import Runner
from looop.loop import guards
from looop.loop.beat import TickOutcome
from looop.loop.tick import tick
from looop.runners.presets import PRESETS
from looop.spend.meter import CostMeter
from tests.realcli.harness import CLIS, Rig
from tests.realcli.model_server import (
    AUTH,
    DECIDE,
    FINAL_TEXT,
    HTTP_500,
    IDLE_TEXT,
    NO_DECISION,
    STREAM_ERROR,
    Recorded,
)

RigFor = Callable[[str], Rig]

# How each CLI's own tool call shows in output.log (codex reports a shell command, whatever
# its tool is called).
TOOL_LINE = {
    "claude": "  → Bash: printf",
    "codex": "  → shell: /bin/bash -lc",
    "pi": "  → bash: printf",
    "opencode": "  → bash: printf",
    "gemini": "  → run_shell_command: printf",
}
# The line that closes a successful run.
DONE_LINE = {
    "claude": "  ✓ done in ",
    "codex": "  ✓ turn done · ",
    "pi": "  ✓ done · ",
    "opencode": "  ✓ step done · ",
    "gemini": "  ✓ done · ",
}


def _decision(cli: str) -> dict[str, Any]:
    return {
        "action": "write_goal",
        "id": f"real-{cli}",
        "body": f"goal: proven with the real {cli}",
        "journal": f"{cli} set a goal",
    }


def _journal(rig: Rig) -> list[str]:
    p = rig.ctx.paths.journal
    return [ln for ln in p.read_text().splitlines() if ln.strip()] if p.exists() else []


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def _tick_calls(rig: Rig) -> list[Recorded]:
    return [r for r in rig.server.model_calls() if "=== CONSTITUTION" in r.text()]


def _events(rig: Rig) -> list[dict[str, Any]]:
    out = []
    for line in rig.raw:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    return out


def _reported_cost(rig: Rig) -> float:
    """The money (or, for codex and gemini, tokens) the CLI itself put in its stream."""
    evs = _events(rig)
    if rig.cli == "claude":
        return sum(float(e.get("total_cost_usd") or 0) for e in evs if e.get("type") == "result")
    if rig.cli == "pi":
        return sum(
            float(e["message"]["usage"]["cost"]["total"])
            for e in evs
            if e.get("type") == "message_end" and e["message"].get("role") == "assistant"
        )
    if rig.cli == "opencode":
        return sum(float(e["part"].get("cost") or 0) for e in evs if e.get("type") == "step_finish")
    if rig.cli == "gemini":
        return sum(float(e["stats"]["input_tokens"]) for e in evs if e.get("type") == "result")
    return sum(float(e["usage"]["input_tokens"]) for e in evs if e.get("type") == "turn.completed")


def _metered(rig: Rig) -> float | None:
    meter = CostMeter(Runner(rig.cli, PRESETS[rig.cli]["tick"], PRESETS[rig.cli]["worker"]))
    for line in rig.raw:
        meter.feed(line)
    return meter.total()


def _assert_decided(rig: Rig, out: TickOutcome) -> str:
    cli = rig.cli
    decision = _decision(cli)
    assert out.status == "decided", (out.error, rig.raw[-20:])
    assert out.executed is not None and out.executed.kind == "goal"
    goal = rig.ctx.paths.goals / f"real-{cli}.md"
    assert goal.read_text() == decision["body"] + "\n"
    assert _journal(rig)[-1].endswith(" " + decision["journal"])
    assert not rig.ctx.paths.decision.exists()
    assert not rig.ctx.paths.backoff.exists() and not rig.ctx.paths.last_failure.exists()
    assert rig.server.failures == []
    log = rig.output_log(out.run_id)
    assert TOOL_LINE[cli] in log and ".decision.json" in log, log
    assert FINAL_TEXT.format(journal=decision["journal"]) in log, log
    assert DONE_LINE[cli] in log, log
    return log


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cli", CLIS)
def test_preset_decides_a_whole_beat(rig_for: RigFor, cli: str) -> None:
    rig = rig_for(cli)
    rig.server.decision = _decision(cli)
    out = tick(rig.ctx)
    rig.save_stream(DECIDE)
    log = _assert_decided(rig, out)

    # the prompt reached the model whole, through the preset's own way of passing it
    prompt = (rig.ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    calls = _tick_calls(rig)
    assert calls, [r.path for r in rig.server.requests]
    sent = "\n".join(_strings(calls[0].body))
    assert prompt.strip()[:300] in sent and prompt.strip()[-300:] in sent
    # two model turns: the tool call, then the closing text after its result
    assert len(calls) >= 2
    # offline: nothing tried to reach past the local server, and every call was answered
    assert rig.server.outbound() == []
    assert rig.server.not_found == []
    # the run is metered from what the CLI itself reported
    assert _reported_cost(rig) > 0
    metered = _metered(rig)
    assert metered is not None and metered > 0
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", ln) for ln in log.splitlines())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cli", CLIS)
def test_preset_passes_a_prompt_bigger_than_one_argument(rig_for: RigFor, cli: str) -> None:
    """Linux caps one argv string at 128 KiB; looop's prompt may reach 256 KiB. A preset that
    splices "$(cat {{prompt_file}})" into the command line fails with "Argument list too long"."""
    rig = rig_for(cli)
    rig.server.decision = _decision(cli)
    rig.ctx.paths.goals.mkdir(parents=True, exist_ok=True)
    for i in range(20):
        line = f"goal {i:02d}: keep the big prompt moving. "
        (rig.ctx.paths.goals / f"big-{i:02d}.md").write_text(line * (7800 // len(line)))
    out = tick(rig.ctx)
    prompt = (rig.ctx.paths.run_dir(out.run_id or "") / "prompt.md").read_text()
    assert len(prompt.encode()) > 131072
    _assert_decided(rig, out)
    sent = "\n".join(_strings(_tick_calls(rig)[0].body))
    assert prompt.strip()[-300:] in sent


# (cli, scenario) -> failure code, and words the one-line LAST FAILURE must contain.
FAILURES: dict[tuple[str, str], tuple[str, list[str]]] = {
    ("claude", AUTH): ("tick.failed", ["exited 1", "Invalid API key", "401"]),
    ("claude", HTTP_500): ("tick.failed", ["exited 1", "500", "scripted internal server error"]),
    ("claude", NO_DECISION): ("tick.no_decision", ["no .decision.json"]),
    ("claude", STREAM_ERROR): ("tick.failed", ["exited 1", "scripted stream failure"]),
    ("codex", AUTH): ("tick.failed", ["exited 1", "401 Unauthorized"]),
    # codex words every 5xx as "high demand"; that is all it prints
    ("codex", HTTP_500): ("tick.failed", ["exited 1", "high demand"]),
    ("codex", NO_DECISION): ("tick.no_decision", ["no .decision.json"]),
    ("codex", STREAM_ERROR): ("tick.failed", ["exited 1", "scripted stream failure"]),
    # pi exits 0 whatever happened; the error is only in its stream ("stopReason":"error")
    ("pi", AUTH): ("tick.no_decision", ["no .decision.json", "401 authentication_error"]),
    ("pi", HTTP_500): ("tick.no_decision", ["no .decision.json", "500 api_error"]),
    ("pi", NO_DECISION): ("tick.no_decision", ["no .decision.json"]),
    ("pi", STREAM_ERROR): ("tick.no_decision", ["no .decision.json", "scripted stream failure"]),
    ("opencode", AUTH): ("tick.failed", ["exited 1", "APIError 401", "invalid x-api-key"]),
    ("opencode", HTTP_500): ("tick.failed", ["exited 1", "APIError 500"]),
    ("opencode", NO_DECISION): ("tick.no_decision", ["no .decision.json"]),
    ("opencode", STREAM_ERROR): ("tick.failed", ["exited 1", "scripted stream failure"]),
    ("gemini", AUTH): ("tick.failed", ["exited", "401 UNAUTHENTICATED: invalid x-api-key"]),
    ("gemini", HTTP_500): ("tick.failed", ["exited", "500 INTERNAL"]),
    ("gemini", NO_DECISION): ("tick.no_decision", ["no .decision.json"]),
    # gemini exits 0 when its model's stream breaks; the error is only in its stream
    ("gemini", STREAM_ERROR): ("tick.no_decision", ["no .decision.json", "without a finish"]),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("cli", "scenario"), sorted(FAILURES))
def test_preset_failure_fails_the_beat_with_one_clear_line(
    rig_for: RigFor, cli: str, scenario: str
) -> None:
    code, needles = FAILURES[(cli, scenario)]
    rig = rig_for(cli)
    rig.server.scenario = scenario
    rig.server.decision = _decision(cli)
    before = _journal(rig)
    out = tick(rig.ctx)
    rig.save_stream(scenario)

    assert out.status == "failed", (out.status, out.error, rig.raw[-10:])
    lf = guards.read_last_failure(rig.ctx.paths)
    assert lf is not None and lf["code"] == code, lf
    error = lf["error"]
    assert "\n" not in error and len(error) <= 600, error
    for needle in needles:
        assert needle in error, (needle, error)
    # nothing was decided or journaled, and the next beat waits out the backoff
    assert not (rig.ctx.paths.goals / f"real-{cli}.md").exists()
    assert _journal(rig) == before and guards.read_last_hash(rig.ctx.paths) == ""
    b = guards.read_backoff(rig.ctx.paths, rig.ctx.clock.now())
    assert b is not None and b.fails == 1
    calls = len(rig.server.model_calls())
    assert tick(rig.ctx).status == "backoff"
    assert len(rig.server.model_calls()) == calls  # no model call while backing off
    # output.log tells the story too
    log = rig.output_log(out.run_id)
    if scenario == NO_DECISION:
        assert IDLE_TEXT in log, log
    else:
        assert "✗" in log, log
