"""Issue 55's proof, end to end with the real claude as a worker against the scripted model, plain
and in its sandbox: it commits a change in its own worktree and asks to land; the human reviews
it, comments on a line and sends the round; the worker reads the comment (`looop told`), fixes
it, commits and asks again; the human approves and lands it with a fast-forward. The base
branch holds both commits, and the journal and events.jsonl say each step, in order."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from looop.sessions.client import kill, screenshot
from looop.sessions.state import get_session
from tests.helpers import said
from tests.realcli.harness import Rig, answer_first_run_prompts, git, git_repo
from tests.realcli.model_server import PROBE_MARK
from tests.sandbox.install import install

RigFor = Callable[[str], Rig]
WID = "e2e"
COMMENT = "typo: helo should read hello"
# what the scripted model has claude run, one Bash call per answer (model_server.worker_steps)
ASK = 'answer=$("$LOOOP_BIN" ask --prompt "{q}" --options yes,no); echo "human said: $answer"'
STEPS = [
    "printf 'def greet():\\n    return \"helo\"\\n' > greet.py && git add greet.py"
    " && git commit -qm 'add greet' && " + ASK.format(q="ready to land?") + ' && "$LOOOP_BIN" told',
    "sed -i s/helo/hello/ greet.py && git commit -qam 'fix the greeting typo' && "
    + ASK.format(q="fixed the review comment; ready to land?"),
]


def _until(cond: Callable[[], object], secs: float, what: str, rig: Rig) -> None:
    deadline = time.monotonic() + secs
    while not cond():
        if time.monotonic() > deadline:
            shot = screenshot(rig.ctx.paths.data, WID, "plain").get("text", "")
            raise AssertionError(f"timed out waiting for {what}\n{shot}")
        time.sleep(0.2)


def _pending_asks(rig: Rig) -> list[dict[str, object]]:
    done = rig.looop("asks", "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    items = got if isinstance(got, list) else got.get("asks", [])
    return [a for a in items if a.get("worker") == WID]


def _the_ask(rig: Rig, question: str) -> str:
    """Wait until the worker asks `question`; its id."""
    found: list[dict[str, object]] = []

    def asked() -> bool:
        found[:] = [a for a in _pending_asks(rig) if a.get("prompt") == question]
        return bool(found)

    _until(asked, 120, f"the worker to ask {question!r}", rig)
    assert found[0]["status"] == "LIVE", found  # the worker waits on it
    return str(found[0]["id"])


def _trust(rig: Rig, folder: Path) -> None:
    """claude asks once per folder whether to trust it: the worktree was answered before."""
    path = rig.home / ".claude.json"
    state = json.loads(path.read_text())
    state["projects"][str(folder)] = {"hasTrustDialogAccepted": True}
    path.write_text(json.dumps(state, indent=2) + "\n")


@pytest.mark.timeout(360)
@pytest.mark.parametrize("boxed", [False, True], ids=["plain", "sandboxed"])
def test_a_worker_change_is_reviewed_fixed_and_landed(
    rig_for: RigFor, tmp_path: Path, boxed: bool
) -> None:
    rig = rig_for("claude")
    answer_first_run_prompts(rig)
    box: list[str] = []
    if boxed:  # in srt, reaching only the model server; its contract verbs through the door
        rig.use_preset(sandbox={"domains": [f"127.0.0.1:{rig.server.port}"]})
        rig.ctx = replace(rig.ctx, env={**rig.ctx.env, "LOOOP_SRT": str(install())})
        box = ["--sandbox"]
    ctx, root = rig.ctx, rig.ctx.paths.data
    repo = git_repo(tmp_path / "app", "README.md", "a project\n")
    _trust(rig, Path(f"{root}.work") / "checkouts" / WID)
    rig.server.worker_steps = list(STEPS)
    brief = f"{PROBE_MARK} Add a greet() function, then ask to land it."
    started = rig.looop("worker", "start", WID, brief, "--repo", str(repo), *box)
    assert started.returncode == 0, started.stderr
    assert (root / "sandbox" / WID / "srt.json").is_file() == boxed
    try:
        first = _the_ask(rig, "ready to land?")
        shown = rig.looop("review", WID)
        assert shown.returncode == 0, shown.stderr
        assert "greet.py" in shown.stdout and '+    return "helo"' in shown.stdout, shown.stdout
        assert "add greet" in shown.stdout

        sent = rig.looop("review", WID, "--comment", "greet.py:2", COMMENT, "--send")
        assert sent.returncode == 0, sent.stderr
        told = rig.looop("answer", first, "no")
        assert told.returncode == 0, told.stderr

        second = _the_ask(rig, "fixed the review comment; ready to land?")
        # the model was shown the comment (the worker's `looop told`) before it fixed it
        assert any(
            COMMENT in c.text() and "greet.py:2" in c.text() for c in rig.server.model_calls()
        )
        again = rig.looop("review", WID)
        assert '+    return "hello"' in again.stdout and "fix the greeting typo" in again.stdout
        assert COMMENT in again.stdout  # the round sent shows in the review

        approved = rig.looop("answer", second, "yes")
        assert approved.returncode == 0, approved.stderr
        landed = rig.looop("land", WID, "--ff")
        assert landed.returncode == 0, landed.stderr + landed.stdout
        assert f"landed worker {WID}: looop/{WID} fast-forwarded into main" in landed.stdout
    finally:
        if get_session(root, WID).alive:
            kill(root, WID)

    subjects = git(repo, "log", "--format=%s", "main").split("\n")
    assert subjects[:3] == ["fix the greeting typo", "add greet", "start"], subjects
    assert (repo / "greet.py").read_text() == 'def greet():\n    return "hello"\n'
    tip = git(repo, "rev-parse", "main").strip()
    journal = ctx.paths.journal.read_text()
    steps = [
        f"start-worker {WID}",
        f"user (cli): sent review round 1 to {WID} (1 comment(s), told",
        f"user (cli): landed worker {WID}: looop/{WID} into main as fast-forward at {tip[:12]}",
    ]
    at = [journal.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), journal  # each move, in the order it happened
    answers = said(ctx.paths.data)  # answers are events beside the moves (RULE 1)
    at = [
        answers.find(f"user (cli): answered {first}: no"),
        answers.find(f"answered {second}: yes"),
    ]
    assert -1 not in at and at == sorted(at), answers
    kinds = [json.loads(ln).get("event") for ln in ctx.paths.events.read_text().splitlines()]
    assert "review_sent" in kinds and "worker_landed" in kinds, kinds
