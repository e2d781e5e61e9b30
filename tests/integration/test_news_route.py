"""News routed to its owner (issue 57): a worker on branch looop/w1 of a real git repository,
the pack's `tests` sensor going red in that worker's checkout, and one beat whose (scripted)
decider tells w1 — the prompt it got shows the red reading in w1's own item, and the worker's
terminal gets the line. A worker that has exited is resumed on its conversation instead, the
line its first message. The same through the pack's `github` sensor: among several open pull
requests, w1's own going red is its news, the others' left out."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.loop.tick import tick
from looop.seed.pack import render
from looop.sessions.client import expect, kill, wait
from looop.sessions.logs import read_log
from looop.sessions.state import SessionError, get_session
from looop.views import outcomes
from looop.workers import treerecord
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import wire

pytestmark = pytest.mark.timeout(120)

TELL = "CI is red on your branch: make test_math pass"
RED = '"news":{"sensor-tests.json":{"failing":["test_suite.py::test_math"],"result":"fail"}}'
SUITE = "def test_ok():\n    assert True\n\ndef test_math():\n    assert 1 + 1 == 3\n"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, timeout=30, check=True)


@pytest.fixture
def rctx(ctx: Ctx, tmp_path: Path) -> Ctx:
    """A real clock and a repository whose suite has one failing test on main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Test")
    _git(repo, "config", "user.email", "test@example.invalid")
    (repo / "test_suite.py").write_text(SUITE)
    _git(repo, "add", "test_suite.py")
    _git(repo, "commit", "-qm", "suite")
    return replace(ctx, clock=FixedClock(t=time.time()))


def _configure(c: Ctx, worker: str, resume: str | None = None) -> None:
    """The scripted decider: tell w1 only when the prompt shows its red news."""
    wire(c, [{"when": RED, "decision": {"action": "steer_session", "id": "w1", "input": TELL}}])
    cfg: dict[str, Any] = json.loads(c.paths.config.read_text())
    cfg["runners"]["scripted"]["worker"] = worker
    if resume is not None:
        cfg["runners"]["scripted"]["resume"] = resume
    store.write_json(c.paths.config, cfg)


def _tests_sensor(c: Ctx, checkout: str) -> None:
    cmd = f"{sys.executable} -m pytest -q -p no:cacheprovider test_suite.py"
    c.paths.sensors.mkdir(exist_ok=True)
    script = c.paths.sensors / "tests.sh"
    script.write_text(render("tests", {"cmd": cmd, "dir": checkout}, checkout))
    script.chmod(0o755)


def _w1_item(prompt: str) -> dict[str, Any]:
    late = prompt[prompt.index("=== READINGS THAT MOVE") :]
    return dict(json.loads(late.split("--- sys-sessions.json worker w1\n")[1].splitlines()[0]))


def _beat(c: Ctx, repo: Path) -> str:
    """One beat; the prompt the decider got."""
    out = tick(c, force=True)
    assert out.status == "decided", (out.status, out.error)
    assert out.prompt_path is not None
    return out.prompt_path.read_text()


def test_a_red_test_on_a_workers_branch_reaches_that_worker_in_one_beat(
    rctx: Ctx, tmp_path: Path
) -> None:
    listen = 'while IFS= read -r line; do echo "told: $line"; done # {{prompt_file}}'
    _configure(rctx, listen)
    start_worker(rctx, rctx.knobs(), StartRequest("w1", "work", repo=str(tmp_path / "repo")))
    try:
        tree = treerecord.load(rctx, "w1")
        assert tree is not None and tree.branch == "looop/w1"
        _tests_sensor(rctx, tree.path)
        prompt = _beat(rctx, tmp_path / "repo")
        w1 = _w1_item(prompt)
        assert w1["news"]["sensor-tests.json"]["result"] == "fail"
        assert w1["signal"]["id"] == "w1"
        code, _, _ = expect(rctx.paths.data, "w1", f"told: {TELL}", timeout_s=20, clock=rctx.clock)
        assert code == 0, read_log(rctx.paths.data, "w1", 0, False)[0]
    finally:
        kill(rctx.paths.data, "w1")
        wait(rctx.paths.data, "w1", 20, rctx.clock)


def test_an_exited_worker_told_its_news_is_resumed_on_its_conversation(
    rctx: Ctx, tmp_path: Path
) -> None:
    _configure(
        rctx,
        "echo first run; exec sleep 600 # {{prompt_file}}",
        resume="cat {{prompt_file}}; exec sleep 600",
    )
    start_worker(rctx, rctx.knobs(), StartRequest("w1", "work", repo=str(tmp_path / "repo")))
    try:
        assert expect(rctx.paths.data, "w1", "first run", timeout_s=20, clock=rctx.clock)[0] == 0
        kill(rctx.paths.data, "w1")
        wait(rctx.paths.data, "w1", 20, rctx.clock)
        tree = treerecord.load(rctx, "w1")
        assert tree is not None
        _tests_sensor(rctx, tree.path)
        prompt = _beat(rctx, tmp_path / "repo")
        assert _w1_item(prompt)["news"]["sensor-tests.json"]["result"] == "fail"
        code, _, _ = expect(
            rctx.paths.data, "w1", f"to tell you: {TELL}", timeout_s=20, clock=rctx.clock
        )
        assert code == 0, read_log(rctx.paths.data, "w1", 0, False)[0]
    finally:
        kill(rctx.paths.data, "w1")
        wait(rctx.paths.data, "w1", 20, rctx.clock)


def test_a_stalled_exited_worker_is_not_resumed_by_a_tell(rctx: Ctx, tmp_path: Path) -> None:
    """As restart_session: a decision's tell starts no stalled worker again (one line)."""
    _configure(rctx, "exit 0 # {{prompt_file}}", resume="cat {{prompt_file}}; exec sleep 600")
    steer = {"action": "steer_session", "id": "w1", "input": TELL}
    wire_steps = [{"decision": {"action": "noop", "reason": "quiet"}}, {"decision": steer}]
    (rctx.paths.data.parent / "script.json").write_text(json.dumps(wire_steps))
    start_worker(rctx, rctx.knobs(), StartRequest("w1", "work", repo=str(tmp_path / "repo")))
    try:
        wait(rctx.paths.data, "w1", 20, rctx.clock)
        assert tick(rctx, force=True).status == "decided"  # its end is recorded
        data = str(rctx.paths.data)
        rec = outcomes.read_record(data, "w1")
        assert rec is not None
        outcomes.write_record(data, {**rec, "stalled": True, "why": "the same failure again"})
        tree = treerecord.load(rctx, "w1")
        assert tree is not None
        _tests_sensor(rctx, tree.path)
        out = tick(rctx, force=True, override_backoff=True)
        assert out.status == "failed" and out.error is not None
        assert "steer_session: worker w1 is stalled" in out.error and "\n" not in out.error
        assert not get_session(rctx.paths.data, "w1").alive
    finally:
        with contextlib.suppress(SessionError):  # resumed only if the refusal failed
            kill(rctx.paths.data, "w1")


# a stand-in for gh (no forge is reachable here): `gh pr list … --jq Q` runs jq on prs.json
GH = """#!/usr/bin/env bash
here=$(dirname "$0")
prev=""
for a in "$@"; do [ "$prev" = --jq ] && q=$a; prev=$a; done
[ "$1" = pr ] && exec jq -r "$q" "$here/prs.json"
echo '[]' | exec jq -r "$q"
"""


def _pr(number: int, branch: str, conclusion: str) -> dict[str, Any]:
    check = {"name": "ci", "status": "COMPLETED", "conclusion": conclusion}
    return {
        "number": number,
        "title": f"PR {number}",
        "headRefName": branch,
        "isDraft": False,
        "reviewDecision": "",
        "statusCheckRollup": [check],
    }


def test_a_red_check_on_a_workers_pull_request_reaches_that_worker(
    rctx: Ctx, tmp_path: Path
) -> None:
    """Pull request 3 (someone's) sorts first; w1's own, 9, fails: the decider, scripted to
    tell w1 only when w1's news is its own red pull request first, tells it."""
    gh_dir = tmp_path / "gh-bin"
    gh_dir.mkdir()
    (gh_dir / "gh").write_text(GH)
    (gh_dir / "gh").chmod(0o755)
    prs = [_pr(3, "feature/other", "SUCCESS"), _pr(9, "looop/w1", "FAILURE")]
    (gh_dir / "prs.json").write_text(json.dumps(prs))
    c = replace(rctx, env={**rctx.env, "PATH": f"{gh_dir}{os.pathsep}{rctx.env['PATH']}"})
    listen = 'while IFS= read -r line; do echo "told: $line"; done # {{prompt_file}}'
    own = '"news":{"sensor-github.json":{"assigned_issues":[],"pull_requests":[{"branch":"looop/w1"'
    steer = {"action": "steer_session", "id": "w1", "input": TELL}
    wire(c, [{"when": own, "decision": steer}], worker=listen)
    start_worker(c, c.knobs(), StartRequest("w1", "work", repo=str(tmp_path / "repo")))
    try:
        c.paths.sensors.mkdir(exist_ok=True)
        script = c.paths.sensors / "github.sh"
        script.write_text(render("github", {"repo": "acme/shop", "dir": str(tmp_path)}, "/"))
        script.chmod(0o755)
        news = _w1_item(_beat(c, tmp_path / "repo"))["news"]["sensor-github.json"]
        assert [(p["number"], p["checks"]) for p in news["pull_requests"]] == [(9, "fail")]
        code, _, _ = expect(c.paths.data, "w1", f"told: {TELL}", timeout_s=20, clock=c.clock)
        assert code == 0, read_log(c.paths.data, "w1", 0, False)[0]
    finally:
        kill(c.paths.data, "w1")
        wait(c.paths.data, "w1", 20, c.clock)
