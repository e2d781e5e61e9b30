"""A worker away from home ends in a named outcome too (issue 57, item 4): the beat derives it
from what the home's fleet rows saw of its end — an SSH host's satellite answering `ls` (how
it ended, its exit code, a bound it was at), a Kubernetes Job's status — with the home's own
facts (its verify record, its spend budget, its asks), records it once in outcomes/<id>.json,
and `ls --json` shows it on the far row. What the host says is outside input: a state that is
not an end reads as exited."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home import store
from looop.human.mailbox import new_ask
from looop.loop import fleetwork
from looop.remote import engine
from looop.remote import hosts as reg
from looop.remote.fleet import remote_rows
from looop.remote.ssh import link
from looop.spend.spent import mark_over
from looop.views import outcomes
from looop.views.fleet import fleet_rows_at

STARTED = "2026-01-01T00:00:00Z"


def _host_says(ctx: Ctx, monkeypatch: pytest.MonkeyPatch, row: dict[str, Any] | None) -> None:
    """The SSH host h1 runs w1; its satellite answers `ls` with `row` (None: no such worker)."""
    data = ctx.paths.data
    if not reg.record_file(data, "w1").exists():
        reg.add(data, "h1", "ssh://u@h1.example", 1)
        reg.write_record(data, "w1", "h1", started_at=STARTED, over=False)
    monkeypatch.setattr(link, "_answers", lambda _path: True)  # the master is up
    body = json.dumps({"workers": [row] if row else []}).encode()
    monkeypatch.setattr(
        link.subprocess, "run", lambda argv, **_: subprocess.CompletedProcess(argv, 0, body, b"")
    )


def _ls(ctx: Ctx) -> dict[str, Any]:
    rows = fleet_rows_at(str(ctx.paths.data), ctx.clock, 900, True, dict(ctx.env), far=remote_rows)
    [got] = [r for r in rows if r["id"] == "w1"]
    return got


def _beat(ctx: Ctx) -> None:
    """The beat's two reads of the fleet: its rows (the sensor), then the outcomes recorded."""
    _ls(ctx)
    fleetwork.ended(ctx, ctx.knobs(), None, [])


def _ends(ctx: Ctx) -> list[dict[str, Any]]:
    lines = ctx.paths.events.read_text().splitlines() if ctx.paths.events.exists() else []
    recs = [json.loads(ln) for ln in lines]
    return [r for r in recs if r.get("event") == "worker_ended"]


def _verify(ctx: Ctx, passed: bool) -> None:
    v = {"cmd": "make test", "pass": passed, "exit_code": 0 if passed else 2, "output": "x"}
    store.write_json(ctx.paths.data / "verify" / "w1.json", v)


@pytest.mark.parametrize(
    ("said", "home", "want"),
    [
        ({"state": "exited", "exit_code": 0}, None, "exited"),
        ({"state": "exited", "exit_code": 3}, None, "failed"),
        ({"state": "killed", "exit_code": 137}, None, "killed"),
        ({"state": "running", "exit_code": 137}, None, "killed"),  # its supervisor died there
        ({"state": "killed", "exit_code": 137, "limit": "memory"}, None, "limited"),
        ({"state": "exited", "exit_code": 0}, "verified", "verified"),
        ({"state": "exited", "exit_code": 0}, "failed", "failed_verify"),
        ({"state": "exited", "exit_code": 1}, "budget", "over_budget"),
        ({"state": "exited", "exit_code": 1}, "ask", "needs_human"),
        ({"state": "landed", "exit_code": 0}, None, "exited"),  # a crafted state: not an end
        ({"state": ["killed"], "exit_code": "x"}, None, "exited"),
    ],
)
def test_an_ssh_workers_end_is_recorded_once_and_shown(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, said: dict[str, Any], home: str | None, want: str
) -> None:
    _host_says(ctx, monkeypatch, {"id": "w1", "alive": True, "state": "running"})
    _beat(ctx)
    assert _ls(ctx)["outcome"] is None and outcomes.read_record(str(ctx.paths.data), "w1") is None
    if home in ("verified", "failed"):
        _verify(ctx, home == "verified")
    if home == "budget":
        mark_over(str(ctx.paths.data), "w1", 5.0, 4.0, "pause")
    if home == "ask":
        new_ask(ctx.paths.asks, ctx.paths.answers, "w1", "ship?", None, [], ctx.clock.now())
    _host_says(ctx, monkeypatch, {"id": "w1", "alive": False, **said})
    _beat(ctx)
    rec = outcomes.read_record(str(ctx.paths.data), "w1")
    assert rec is not None and rec["outcome"] == want and rec["gen"] == STARTED, rec
    assert _ls(ctx)["outcome"] == want
    _beat(ctx)  # once: a later beat says nothing again
    assert [e.get("outcome") for e in _ends(ctx)] == [want]


def test_a_worker_gone_from_its_host_and_a_kill_from_home(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its host no longer lists it: over, how unknown (exited, no code). Killed from home:
    the record says killed (its host cannot say it once the session is gone)."""
    _host_says(ctx, monkeypatch, None)
    _beat(ctx)
    rec = outcomes.read_record(str(ctx.paths.data), "w1")
    assert rec is not None and (rec["outcome"], rec["exit_code"]) == ("exited", None), rec
    data = ctx.paths.data
    reg.write_record(data, "w1", "h1", started_at="2026-01-02T00:00:00Z", over=False)
    reg.mark_over(data, "w1", None, "killed")  # what SshBackend.kill and HostedKube.kill do
    fleetwork.ended(ctx, ctx.knobs(), None, [])
    rec = outcomes.read_record(str(data), "w1")
    assert rec is not None and rec["outcome"] == "killed" and rec["gen"].startswith("2026-01-02")


def test_a_pending_verify_waits_for_its_result(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    (ctx.paths.data / "verify").mkdir(parents=True)
    (ctx.paths.data / "verify" / "w1.cmd").write_text("make test")
    _host_says(ctx, monkeypatch, {"id": "w1", "alive": False, "state": "exited", "exit_code": 0})
    _beat(ctx)
    assert outcomes.read_record(str(ctx.paths.data), "w1") is None  # its verify runs first
    _verify(ctx, False)
    _beat(ctx)
    assert _ls(ctx)["outcome"] == "failed_verify"


def test_a_pod_workers_end_from_its_jobs_status(ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Kubernetes Job's status gives its exit code (and OOMKilled, a bound): the outcome
    follows from those as from an SSH host's answer."""
    data: Path = ctx.paths.data
    reg.save(data, reg.kube_host(data, "k1", "k8s://ctx/team-a", image="img:1"))
    reg.write_record(data, "p1", "k1", started_at=STARTED, over=False)
    reg.write_record(data, "p2", "k1", started_at=STARTED, over=False)
    ended = {"alive": False, "state": "exited", "started_at": STARTED}
    listing = {"p1": {**ended, "exit_code": 4}, "p2": {**ended, "exit_code": 137}}
    monkeypatch.setattr(engine, "_listing", lambda _b: listing)
    monkeypatch.setattr(engine, "keep_limit", _oom_for("p2"))
    rows = {r["id"]: r for r in remote_rows(str(data), ctx.clock, 900, dict(ctx.env))}
    assert rows["p1"]["outcome"] is None  # seen over; the beat has not recorded it yet
    fleetwork.ended(ctx, ctx.knobs(), None, [])
    rows = {r["id"]: r for r in remote_rows(str(data), ctx.clock, 900, dict(ctx.env))}
    assert (rows["p1"]["outcome"], rows["p2"]["outcome"]) == ("failed", "limited"), rows


def _oom_for(wid: str) -> Any:
    def keep(data: Path, w: str, _row: Any) -> None:
        if w == wid:  # what remote/ssh/backend.keep_limit keeps of a Job's OOMKilled
            rec = reg.record(data, w) or {}
            store.write_json(reg.record_file(data, w), {**rec, "limit": "memory"})

    return keep


@pytest.mark.parametrize(("actor", "by"), [("cli", "human"), ("pulse", "decider")])
def test_a_kill_asked_for_a_far_worker_is_a_choice_not_a_failure(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch, actor: str, by: str
) -> None:
    """`looop kill` (or the decider's kill_worker) of a worker on an SSH host: killed, said
    whose kill it was, and no step toward a stall — as for a worker here."""
    _host_says(ctx, monkeypatch, {"id": "w1", "alive": True, "state": "running"})
    execute(ctx, ctx.knobs(), decision_from_obj({"action": "kill_worker", "id": "w1"}), actor=actor)
    fleetwork.ended(ctx, ctx.knobs(), None, [])
    rec = outcomes.read_record(str(ctx.paths.data), "w1")
    assert rec is not None and rec["outcome"] == "killed", rec
    assert f"by the {by}'s kill" in rec["why"] and rec["streak"] == 0, rec
