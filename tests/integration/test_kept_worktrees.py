"""A reaped worker's dirty worktree (real git, real sessions): listed by `looop worktrees`,
warned 2 days before worktree_keep_days, then its work saved as a patch and only then
removed — never lost silently (issue 51, item 5)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.sessions.state import prune_aged
from looop.workers.kepttrees import DAY, expire_kept, kept_trees
from looop.workers.treerecord import load
from looop.workers.worktree import end_generation
from tests.clocks import FixedClock
from tests.helpers import clean_env
from tests.integration.test_worktrees import LOOOP, git, repo, run_worker, wctx

pytestmark = pytest.mark.timeout(90)
__all__ = ["repo", "wctx"]  # fixtures


def _said(c: Ctx, name: str) -> list[str]:
    return [str(m["msg"]) for n, m in c.events.seen if n == name]  # type: ignore[attr-defined]


def test_a_kept_dirty_worktree_is_listed_warned_saved_then_removed(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    clock = wctx.clock
    assert isinstance(clock, FixedClock)
    tree = run_worker(wctx, tmp_path, "w1", repo)
    clean = run_worker(wctx, tmp_path, "w2", repo, tail="true", branch="w2-branch")
    assert clean.is_dir()
    prune_aged(wctx.paths.data, 0, clock.now())
    end_generation(wctx, "w1")  # dirty: kept
    kept_at = int(clock.now())
    rec = load(wctx, "w1")
    assert rec is not None and rec.kept_at == kept_at and not rec.removed

    rows = {k.tree.wid: k for k in kept_trees(wctx, wctx.knobs())}
    assert rows["w1"].state == "dirty" and rows["w1"].expires_at == kept_at + 14 * DAY
    # the CLI says the same, in its own process
    env = clean_env(tmp_path, wctx.paths.data)
    done = subprocess.run(
        [LOOOP, "worktrees", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    (row,) = [r for r in json.loads(done.stdout) if r["id"] == "w1"]
    assert row["path"] == str(tree) and row["branch"] == "looop/w1"
    assert row["state"] == "dirty" and row["expires_at"] == kept_at + 14 * DAY
    done = subprocess.run([LOOOP, "worktrees"], env=env, capture_output=True, text=True, timeout=30)
    assert "w1" in done.stdout and "dirty" in done.stdout and "expires in 13d" in done.stdout

    clock.advance(11 * DAY)
    expire_kept(wctx, wctx.knobs())
    assert _said(wctx, "worktree.expiring") == [] and tree.is_dir()
    clock.advance(1 * DAY)  # 2 days before the end: said once
    expire_kept(wctx, wctx.knobs())
    expire_kept(wctx, wctx.knobs())
    (warn,) = _said(wctx, "worktree.expiring")
    assert "w1" in warn and "2 day(s)" in warn and "patch" in warn and tree.is_dir()

    clock.advance(2 * DAY)
    expire_kept(wctx, wctx.knobs())
    patch = wctx.paths.worktrees / f"w1-{kept_at}.patch"
    assert not tree.exists() and patch.is_file()
    (gone,) = _said(wctx, "worktree.expired")
    assert str(patch) in gone
    assert "w1" not in {k.tree.wid for k in kept_trees(wctx, wctx.knobs())}
    # the work is whole in the patch: applied to its branch's base it gives the worker's files
    base = load(wctx, "w1")
    assert base is not None and base.removed
    check = tmp_path / "check"
    git(repo, "worktree", "add", "-q", "--detach", str(check), base.base)
    git(check, "apply", str(patch))
    assert (check / "README").read_text() == "hello\ncommitted\nuncommitted\n"
    assert (check / "new.txt").read_text() == "brand-new\n"
    assert "worker change" in git(repo, "log", "--oneline", "looop/w1")  # the branch stays


def test_a_patch_that_cannot_be_written_keeps_the_worktree(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    clock = wctx.clock
    assert isinstance(clock, FixedClock)
    tree = run_worker(wctx, tmp_path, "w1", repo)
    prune_aged(wctx.paths.data, 0, clock.now())
    end_generation(wctx, "w1")
    kept_at = load(wctx, "w1").kept_at  # type: ignore[union-attr]
    (wctx.paths.worktrees / f"w1-{kept_at}.patch").mkdir()  # in the patch's place
    clock.advance(15 * DAY)
    expire_kept(wctx, wctx.knobs())
    assert tree.is_dir() and (tree / "new.txt").is_file()
    said = _said(wctx, "worktree.kept")
    assert any("could not be saved" in m for m in said), said
