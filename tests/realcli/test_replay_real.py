"""Issue 69's replay proof with real deciders: two beats decided by the real claude against the
scripted model are replayed to the real codex (`looop runs replay --last 2 --runner codex`),
which the model answers one way for both, so it agrees on one beat and not on the other.
Nothing is executed; each replay is metered and kept under runs/ as a real decide is."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from looop.loop.tick import tick
from looop.runners.presets import PRESETS
from tests.realcli.harness import _CONFIGURE, Rig

RigFor = Callable[[str], Rig]

SHIP = {"action": "write_goal", "id": "ship", "body": "ship v2", "journal": "set ship"}
DOCS = {"action": "write_goal", "id": "docs", "body": "write the docs", "journal": "set docs"}


@pytest.mark.timeout(300)
def test_beats_decided_by_claude_are_replayed_to_codex_and_compared(rig_for: RigFor) -> None:
    rig: Rig = rig_for("claude")
    rig.ctx = replace(rig.ctx, env={**rig.ctx.env, **_CONFIGURE["codex"](rig.home, rig.server)})
    runners = {cli: dict(PRESETS[cli]) for cli in ("claude", "codex")}
    rig.ctx.paths.config.write_text(json.dumps({"default": "claude", "runners": runners}) + "\n")
    for decision in (SHIP, DOCS):  # two beats, each a real claude decide
        rig.server.decision = decision
        out = tick(rig.ctx, force=True)
        assert out.status == "decided", out
    goals = sorted(p.name for p in rig.ctx.paths.goals.glob("*.md"))
    assert goals == ["docs.md", "ship.md"]

    rig.server.decision = {**SHIP, "body": "ship it now"}  # codex's answer to every beat
    done = rig.looop("runs", "replay", "--last", "2", "--runner", "codex", "--json", timeout=240)
    assert done.returncode == 0, done.stderr + done.stdout
    rep = json.loads(done.stdout)
    assert [(r["recorded"], r["replayed"], r["verdict"]) for r in rep["rows"]] == [
        ("write_goal ship", "write_goal ship", "same"),
        ("write_goal docs", "write_goal ship", "same action, other target"),
    ]
    assert (rep["runner"], rep["replayed"], rep["same"], rep["agreement"]) == ("codex", 2, 1, 0.5)
    assert all(r["secs"] > 0 and r["cost_usd"] is not None for r in rep["rows"]), rep
    assert rep["cost_usd"] == round(sum(r["cost_usd"] for r in rep["rows"]), 6)
    assert sorted(p.name for p in rig.ctx.paths.goals.glob("*.md")) == goals  # none executed
    assert "ship it now" not in (rig.ctx.paths.goals / "ship.md").read_text()
    kept = json.loads(rig.looop("runs", "--json").stdout)
    replays = [r for r in kept if r["run_id"].startswith("replay-")]
    assert len(replays) == 2 and all(r["status"] == "replayed" for r in replays), replays
