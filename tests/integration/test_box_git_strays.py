"""What a box leaves in its worktree's git folders never hangs the host (real git, real
sessions): a FIFO at the admin folder's HEAD or index makes `worker diff`, `review` and
`land` answer at once in one line with the FIFO gone, and after `looop kill` the user's own
`git worktree list` answers and a new worker on the repo starts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.workers.treerecord import load
from tests.helpers import clean_env
from tests.integration.test_worktrees import LOOOP, git, make_repo, run_worker, wctx

__all__ = ["wctx"]
pytestmark = pytest.mark.timeout(120)
PROMPT = 10.0  # git's own timeout is 30 s: an answer under this never waited on a FIFO


def plant(gitdir: Path, name: str) -> Path:
    spot = gitdir / name
    spot.unlink(missing_ok=True)
    os.mkfifo(spot)
    return spot


def test_a_fifo_in_the_admin_folder_is_removed_in_one_line_and_hangs_nothing(
    wctx: Ctx, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    run_worker(wctx, tmp_path, "w1", repo, tail="true")
    tree = load(wctx, "w1")
    assert tree is not None
    gitdir = Path(tree.gitdir)
    env = clean_env(tmp_path, wctx.paths.data)

    def looop(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
        t = time.monotonic()
        done = subprocess.run(
            [LOOOP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        return done, time.monotonic() - t

    for verb in (("worker", "diff", "w1"), ("review", "w1"), ("land", "w1")):
        for name in ("HEAD", "index"):
            spot = plant(gitdir, name)
            done, took = looop(*verb)
            said = done.stderr.strip()
            assert took < PROMPT, (verb, took)
            assert done.returncode != 0 and "\n" not in said and "not a regular file" in said
            assert str(spot) in said and "Traceback" not in said
            assert not spot.exists() or spot.is_file()  # a FIFO no more
    # HEAD written back on its branch: the next look works
    done, _ = looop("worker", "diff", "w1")
    assert done.returncode == 0, done.stderr
    spot = plant(gitdir, "HEAD")
    done, _ = looop("kill", "w1")
    assert "Traceback" not in done.stderr
    assert not spot.exists() or spot.is_file()
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, timeout=10, check=True
    )
    assert b"checkouts/w1" in listed.stdout
    run_worker(wctx, tmp_path, "w2", repo, tail="true")  # a later worker on that repo starts
    assert "worker change" in git(repo, "log", "--oneline", "looop/w2")
