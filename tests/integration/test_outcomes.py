"""Every worker ends in a named outcome (issue 57, item 4): real workers in real PTYs end each
way a worker can — exit 0, exit 1, killed, verify passed or failed, held at its budget, stopped
on a usage window, with an ask unanswered, landed — and one beat records each once: the record,
`ls --json` and `ls`, journal.md and events.jsonl. The same failure three times in a row is
stalled, said once, and the decider's start of it refused until a human clears it."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from looop.act.executor import execute
from looop.act.outcome import ExecError
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.paths import Paths
from looop.human.mailbox import new_ask
from looop.loop.tick import tick
from looop.remote.fleet import fleet_rows
from looop.sense.probes import probe_sessions
from looop.sessions.client import kill, wait
from looop.sessions.state import get_session
from looop.spend import usagewindows
from looop.spend.spent import mark_over
from looop.views import outcomes
from looop.views.fleet import fleet_table
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import Cli, clean_env, process_ended, said, stop_sessions, wait_until, wire
from tests.integration.workerchange import git, repo, reviewed, stand_in, start, with_origin
from tests.integration.workerchange import wctx as repo_ctx

pytestmark = pytest.mark.timeout(120)
__all__ = ["repo", "repo_ctx"]  # the fixtures this module's tests take

NOOPS = [{"decision": {"action": "noop"}}] * 8


@pytest.fixture
def octx(tmp_path: Path, ctx: Ctx) -> Ctx:
    data = tmp_path / "home"
    data.mkdir()
    c = _own_events(replace(ctx, paths=Paths.at(data), clock=FixedClock(t=time.time())))
    wire(c, NOOPS)
    return c


def _own_events(c: Ctx) -> Ctx:
    """Its events.jsonl in its own data dir, where `looop` and /metrics read them."""
    em = Emitter(clock=c.clock, events_path=c.paths.events, stream=io.StringIO(), keep_seen=True)
    return replace(c, events=em)


def _start(c: Ctx, wid: str, line: str, verify: str | None = None) -> None:
    cmd = f"{line} # {{{{prompt_file}}}}"
    start_worker(c, c.knobs(), StartRequest(wid, "x", command=cmd, verify=verify))


def _records(c: Ctx, name: str) -> list[dict[str, Any]]:
    lines = c.paths.events.read_text().splitlines() if c.paths.events.exists() else []
    return [r for r in map(json.loads, lines) if r.get("event") == name]


def _outcomes(c: Ctx) -> dict[str, Any]:
    return {r["id"]: r["outcome"] for r in fleet_rows(c, True) if r["id"] != "pulse"}


def test_each_way_a_worker_ends_is_recorded_once(octx: Ctx) -> None:
    c, data = octx, octx.paths.data
    try:
        _start(c, "ok", "echo fine; exit 0")
        _start(c, "bad", "echo boom; exit 1")
        _start(c, "vpass", "exit 0", verify="true")
        _start(c, "vfail", "exit 0", verify="echo nope; false")
        _start(c, "window", "echo 'usage limit reached'; exit 1")
        for wid in ("killed", "budget", "asker", "stopped"):
            _start(c, wid, "sleep 600")
        new_ask(c.paths.asks, c.paths.answers, "asker", "may I deploy?", None, [], c.clock.now())
        mark_over(str(data), "budget", 5.2, 5.0, "stop")  # what the meter writes at the budget
        for wid in ("killed", "budget", "asker"):
            kill(data, wid)
        stop = decision_from_obj({"action": "kill_worker", "id": "stopped"})
        execute(c, c.knobs(), stop, actor="cli")  # `looop kill`: a human's choice
        for wid in ("ok", "bad", "vpass", "vfail", "window"):
            wait(data, wid, 30, c.clock)
        acct = usagewindows.Account("scripted", "x", "k")
        run = ("window", get_session(data, "window").started_at)
        usagewindows.mark(str(data), acct, c.clock.now() + 3600, "limit", "t", c.clock.now(), run)
        assert all(v is None for v in _outcomes(c).values())  # not recorded before a beat

        tick(c)
        got = _outcomes(c)
        assert got == {
            "ok": "exited",
            "bad": "failed",
            "vpass": "verified",
            "vfail": "failed_verify",
            "window": "limited",
            "killed": "killed",
            "budget": "over_budget",
            "asker": "needs_human",
            "stopped": "killed",
        }
        signal = {e["id"]: e for e in probe_sessions(c)["signal"]}  # what the decider sees
        assert signal["vfail"]["outcome"] == "failed_verify"
        ended = _records(c, "worker_ended")
        assert sorted(r["id"] for r in ended) == sorted(got)  # once each
        assert {r["id"]: r["exit_code"] for r in ended}["bad"] == 1
        assert "ended" not in c.paths.journal.read_text()  # an end is an event, not a move
        journal = said(c.paths.data)  # what `looop journal --all` shows besides the moves
        assert (
            "worker vfail ended: verify failed — verify failed (echo nope; false, exit 1)"
            in journal
        )
        assert "nope\n" not in journal and "boom" not in journal  # nothing the worker wrote
        assert "worker bad ended: failed — exit 1" in journal
        assert "worker stopped ended: killed — killed by the human's kill" in journal
        streaks = {r["id"]: r["streak"] for r in ended}
        assert streaks["stopped"] == 0 and streaks["killed"] == 1  # a choice is no failure
        table = fleet_table(fleet_rows(c, True))
        assert "OUTCOME" in table.splitlines()[0]
        assert any(ln.startswith("budget ") and "over budget" in ln for ln in table.splitlines())
        tick(c)
        assert len(_records(c, "worker_ended")) == len(got)  # a second beat says nothing again
        assert not _records(c, "worker_stalled")
    finally:
        stop_sessions(data)


def test_a_pending_verify_holds_the_outcome_until_it_ran(octx: Ctx) -> None:
    c = replace(octx, env={**octx.env, "LOOOP_VERIFY_BEAT_BUDGET_SECS": "1"})
    try:
        _start(c, "a-slow", "exit 0", verify="sleep 1.5")
        _start(c, "b-quick", "exit 0", verify="true")
        for wid in ("a-slow", "b-quick"):
            wait(c.paths.data, wid, 30, c.clock)
        tick(c)  # a-slow's verify spends the beat's verify budget: b-quick's waits
        assert _outcomes(c) == {"a-slow": "verified", "b-quick": None}
        tick(c)
        assert _outcomes(c) == {"a-slow": "verified", "b-quick": "verified"}
    finally:
        stop_sessions(c.paths.data)


def test_the_same_failure_three_times_is_stalled_once_and_refused_until_cleared(
    octx: Ctx, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, data = octx, octx.paths.data
    line = "echo 'Error: config.yaml not found'; exit 2"
    try:
        for _ in range(4):  # a human starts it again and again: never refused
            _start(c, "flaky", line)
            assert wait(data, "flaky", 30, c.clock) == 2
            tick(c)
        rec = outcomes.read_record(str(data), "flaky")
        assert rec is not None and rec["outcome"] == "stalled" and rec["streak"] == 4
        said = _records(c, "worker_stalled")
        assert len(said) == 1 and said[0]["streak"] == 3  # said once, at the third
        assert [r["outcome"] for r in _records(c, "worker_ended")] == [
            "failed",
            "failed",
            "stalled",
            "stalled",
        ]

        start = {"action": "start_worker", "id": "flaky", "prompt": "again"}
        start["command"] = f"{line} # {{{{prompt_file}}}}"
        wire(c, [{"decision": start}], worker="cat {{prompt_file}}")
        out = tick(c, force=True)
        assert out.status == "failed" and out.error is not None
        assert "worker flaky is stalled" in out.error and "looop worker unstall flaky" in out.error
        assert "ask a human, never the same work under another id" in out.error
        assert "\n" not in out.error
        assert not get_session(data, "flaky").alive  # nothing started
        wire(c, [{"decision": {"action": "restart_session", "id": "flaky"}}])
        out = tick(c, force=True, override_backoff=True)
        assert out.status == "failed" and out.error is not None
        assert "restart_session: worker flaky is stalled" in out.error and "\n" not in out.error
        assert not get_session(data, "flaky").alive
        for move in (start, {"action": "restart_session", "id": "flaky"}):
            with pytest.raises(ExecError, match="worker flaky is stalled"):  # a human's agent
                execute(c, c.knobs(), decision_from_obj(move), actor="mcp")
        assert not get_session(data, "flaky").alive

        cli = Cli(capsys, monkeypatch, data, clean_env(tmp_path, data), c.clock)
        code, out_text, err = cli("needs", "--json")  # it waits on a human: in the queue
        assert code == 0, err
        stalled = [n for n in json.loads(out_text) if n["kind"] == "stalled"]
        assert [(n["worker"], n["answer"]) for n in stalled] == [
            ("flaky", "looop worker unstall flaky")
        ]
        code, out_text, err = cli("worker", "unstall", "flaky")
        assert code == 0 and "no longer stalled" in out_text, err
        code, _, err = cli("worker", "unstall", "flaky")
        assert code == 1 and "is not stalled" in err and len(err.strip().splitlines()) == 1
        wire(c, [{"decision": start}], worker="cat {{prompt_file}}")
        out = tick(c, force=True, override_backoff=True)  # the refusal's backoff: a human's nudge
        assert out.status == "decided", out.error
        assert wait(data, "flaky", 30, c.clock) == 2
        tick(c)
        rec = outcomes.read_record(str(data), "flaky")
        assert rec is not None and rec["outcome"] == "failed" and rec["streak"] == 1
        code, out_text, _ = cli("needs", "--json")
        assert not [n for n in json.loads(out_text) if n["kind"] == "stalled"]
    finally:
        stop_sessions(data)


def test_a_landing_after_the_end_makes_it_landed(
    repo_ctx: Ctx, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    c = _own_events(repo_ctx)
    try:
        start(c, tmp_path, "w1", repo)
        tick(c)
        assert _outcomes(c)["w1"] == "exited"
        cli = Cli(capsys, monkeypatch, c.paths.data, clean_env(tmp_path, c.paths.data), c.clock)
        reviewed(cli, "w1")
        code, _, err = cli("land", "w1")
        assert code == 0, err
        assert git(repo, "log", "-1", "--format=%s").strip() == "add app and a README line"
        assert _outcomes(c)["w1"] == "landed"
        ended = _records(c, "worker_ended")
        assert [(r["outcome"], r.get("was")) for r in ended] == [
            ("exited", None),
            ("landed", "exited"),
        ]
        code, out, _ = cli("ls", "--all", "--json")
        rows = {r["id"]: r for r in json.loads(out)}
        assert rows["w1"]["outcome"] == "landed" and rows["pulse"]["outcome"] is None
    finally:
        stop_sessions(c.paths.data)


def test_a_landing_while_it_runs_makes_its_end_landed(
    repo_ctx: Ctx, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    c = _own_events(repo_ctx)
    try:
        start(c, tmp_path, "w2", repo, tail="sleep 600")
        cli = Cli(capsys, monkeypatch, c.paths.data, clean_env(tmp_path, c.paths.data), c.clock)
        reviewed(cli, "w2")
        code, _, err = cli("land", "w2")
        assert code == 0, err
        assert _outcomes(c)["w2"] is None  # it still runs: no outcome yet
        kill(c.paths.data, "w2")
        tick(c)
        assert _outcomes(c)["w2"] == "landed"  # not killed: it was landed before it ended
        assert [r["outcome"] for r in _records(c, "worker_ended")] == ["landed"]
    finally:
        stop_sessions(c.paths.data)


def test_a_failure_that_says_when_it_failed_stalls_all_the_same(octx: Ctx) -> None:
    """Real workers whose error line carries the time it failed (nanoseconds: never twice the
    same) and how long it took: the same failure, stalled at the third."""
    c, data = octx, octx.paths.data
    line = 'echo "$(date +%s%N) error: registry unreachable after $RANDOM.5s"; exit 4'
    try:
        for _ in range(3):
            _start(c, "noisy", line)
            assert wait(data, "noisy", 30, c.clock) == 4
            tick(c)
        rec = outcomes.read_record(str(data), "noisy")
        assert rec is not None and rec["outcome"] == "stalled", rec["signature"]
        assert rec["streak"] == 3
        stalled = _records(c, "worker_stalled")
        assert [r["id"] for r in stalled] == ["noisy"]
        journal = said(c.paths.data)
        assert "worker noisy ended: stalled — the same failure 3 times" in journal
    finally:
        stop_sessions(data)


def test_held_at_its_budget_three_times_is_stalled(octx: Ctx) -> None:
    """A worker held at its spend budget and ended, started again and held again: each start
    spends the budget anew, so the third is stalled and the decider may not start it."""
    c, data = octx, octx.paths.data
    try:
        for _ in range(3):
            _start(c, "spender", "sleep 600")
            mark_over(str(data), "spender", 5.2, 5.0, "pause")  # what the meter writes at it
            kill(data, "spender")  # it ends held (a signal, nobody's kill_worker)
            wait(data, "spender", 30, c.clock)
            tick(c)
        ended = _records(c, "worker_ended")
        assert [r["outcome"] for r in ended] == ["over_budget", "over_budget", "stalled"]
        assert [r["id"] for r in _records(c, "worker_stalled")] == ["spender"]
        start = {"action": "start_worker", "id": "spender", "prompt": "again"}
        start["command"] = "sleep 600 # {{prompt_file}}"
        wire(c, [{"decision": start}])
        out = tick(c, force=True)
        assert out.status == "failed" and out.error is not None
        assert "worker spender is stalled" in out.error and "spend budget" in out.error
        assert not get_session(data, "spender").alive
    finally:
        stop_sessions(data)


def test_an_archived_goal_says_why_who_and_how_its_worker_ended(
    octx: Ctx, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decider archives a goal done once its worker verified: the archive keeps the
    reason, the decider and the worker's outcome, and says them in the journal, `goal list
    --archived` and its --json; a human's archive of a goal no worker served says so."""
    c, data = octx, octx.paths.data
    cli = Cli(capsys, monkeypatch, data, clean_env(tmp_path, data), c.clock)
    try:
        for gid in ("ship", "tidy"):
            assert cli("goal", "write", gid, f"goal: {gid}")[0] == 0
        _start(c, "ship", "exit 0", verify="true")
        wait(data, "ship", 30, c.clock)
        tick(c)
        assert _outcomes(c)["ship"] == "verified"
        wire(c, [{"decision": {"action": "archive_goal", "id": "ship", "reason": "done"}}])
        out = tick(c, force=True)
        assert out.status == "decided", out.error
        assert "archive-goal ship (done) (its worker ship ended verified)" in (
            c.paths.journal.read_text()
        )
        code, _, err = cli("goal", "rm", "tidy")
        assert code == 0, err
        code, text, _ = cli("goal", "list", "--archived", "--json")
        rows = {r["id"]: r for r in json.loads(text)}
        assert (rows["ship"]["reason"], rows["ship"]["by"]) == ("done", "decider")
        assert rows["ship"]["worker_outcome"] == "verified"
        assert (rows["tidy"]["reason"], rows["tidy"]["by"]) == ("dropped", "cli")
        assert rows["tidy"]["worker_outcome"] is None
        code, text, _ = cli("goal", "list", "--archived")
        lines = {ln.split()[0]: ln.split() for ln in text.splitlines()}
        assert lines["ship"][:4] == ["ship", "done", "verified", "decider"]
        assert lines["tidy"][:4] == ["tidy", "dropped", "—", "cli"]
        said = {r["id"]: r for r in _records(c, "goal_archived")}
        assert said["ship"]["worker_outcome"] == "verified" and said["tidy"]["by"] == "cli"
    finally:
        stop_sessions(data)


def test_a_worker_whose_supervisor_died_ends_killed_once(octx: Ctx) -> None:
    """The OOM killer's way: its supervisor dies with no end written; the next beat settles
    it killed and records that outcome once, a failure toward a stall (nobody asked)."""
    c, data = octx, octx.paths.data
    try:
        _start(c, "orphan", "sleep 600")
        sup = get_session(data, "orphan").supervisor_pid
        assert sup is not None
        os.kill(sup, signal.SIGKILL)
        wait_until(lambda: process_ended(sup), 10, "the supervisor's death")
        wait_until(lambda: not get_session(data, "orphan").alive, 10, "its lock released")
        assert _outcomes(c)["orphan"] is None
        tick(c)
        assert _outcomes(c)["orphan"] == "killed"
        tick(c)
        ended = _records(c, "worker_ended")
        assert [(r["id"], r["outcome"], r["streak"]) for r in ended] == [("orphan", "killed", 1)]
        assert "worker orphan ended: killed — killed (exit 137)" in said(c.paths.data)
    finally:
        stop_sessions(data)


def test_a_pull_request_is_proposed_until_its_base_holds_it(
    repo_ctx: Ctx, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    c = _own_events(repo_ctx)
    try:
        origin = with_origin(tmp_path, repo, "origin.git")
        start(c, tmp_path, "w3", repo)
        tick(c)
        cli = Cli(capsys, monkeypatch, c.paths.data, clean_env(tmp_path, c.paths.data), c.clock)
        stand_in(tmp_path, cli, "gh", "#!/bin/sh\necho https://github.example/o/r/pull/7\n")
        reviewed(cli, "w3")
        code, _, err = cli("land", "w3", "--pr")
        assert code == 0, err
        tick(c)  # main holds none of it: still proposed
        assert _outcomes(c)["w3"] == "proposed"
        assert "proposed worker w3:" in c.paths.journal.read_text()
        code, out, _ = cli("ls", "--all")
        assert "proposed" in out and "landed" not in out
        git(origin, "fetch", "-q", str(repo), "looop/w3:main")  # the PR merged on the forge
        git(repo, "fetch", "-q", "origin")
        tick(c)
        assert _outcomes(c)["w3"] == "landed"
        ended = [(r["outcome"], r.get("was")) for r in _records(c, "worker_ended")]
        assert ended == [("exited", None), ("proposed", "exited"), ("landed", "proposed")]
    finally:
        stop_sessions(c.paths.data)
