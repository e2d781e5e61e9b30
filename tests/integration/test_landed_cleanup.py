"""A landed worktree's cleanup (real git, real sessions): `looop land` of a worker that ended
removes its worktree at once, its branch kept; a live worker keeps its worktree; a pull
request (not landed yet) keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.sessions.client import kill, wait
from tests.helpers import Cli
from tests.integration.workerchange import cli, git, repo, reviewed, start, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take


def test_landing_an_ended_worker_removes_its_worktree_and_keeps_its_branch(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w1", repo)
    reviewed(cli, "w1")
    assert tree.is_dir()
    code, _, err = cli("land", "w1")
    assert code == 0, err
    assert not tree.exists()
    assert "looop/w1" in git(repo, "branch", "--list", "looop/w1")
    assert str(tree) not in git(repo, "worktree", "list")
    code, out, _ = cli("review", "w1")  # what it made is still there to read
    assert code == 0 and "committed" in out


def test_a_live_worker_keeps_its_worktree_after_landing(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    tree = start(wctx, tmp_path, "w2", repo, tail="sleep 600")
    reviewed(cli, "w2")
    code, _, err = cli("land", "w2")
    assert code == 0, err
    assert tree.is_dir()
    kill(wctx.paths.data, "w2")
    wait(wctx.paths.data, "w2", 20, wctx.clock)
