"""A worker's clone (an SSH host's checkout) holds its own `.git/config`, which the worker can
write: looop's git in it (dirtiness, unpushed commits, `worker diff`, reaping) runs none of
the programs such a config names (real git; the config is planted as the worker would)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home import store
from looop.sense import probes
from looop.workers import treework
from looop.workers import worktree as wt
from looop.workers.treerecord import Tree

pytestmark = pytest.mark.timeout(60)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def test_a_clone_config_the_worker_wrote_runs_nothing_on_the_host(ctx: Ctx, tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "README").write_text("hello\n")
    git(origin, "add", "README")
    git(origin, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "start")
    path = ctx.paths.checkouts / "w1"
    path.parent.mkdir(parents=True)
    git(tmp_path, "clone", "-q", str(origin), str(path))
    base = git(path, "rev-parse", "HEAD").strip()
    dot = str(path / ".git")
    tree = Tree("w1", str(path), "main", base, str(path), dot, dot, True, origin="https://x/y")
    store.atomic_write(ctx.paths.worktrees / "w1.json", __import__("json").dumps(tree._asdict()))

    marks = tmp_path / "marks"
    marks.mkdir()

    def cmd(name: str, tail: str = ":") -> str:
        return f"touch {marks / name}; {tail}"

    included = tmp_path / "included.cfg"
    git(path, "config", "--file", str(included), "filter.inc.clean", cmd("include-clean", "cat"))
    for key, value in {
        "core.fsmonitor": cmd("fsmonitor"),
        "core.pager": cmd("pager", "cat"),
        "diff.external": cmd("external"),
        "filter.evil.clean": cmd("clean", "cat"),
        "filter.evil.required": "true",
        "diff.evil.textconv": cmd("textconv", "cat"),
        "diff.evil.command": cmd("diff-command"),
        "protocol.ext.allow": "always",
        "remote.origin.url": f"ext::sh -c {marks / 'ext'}",
        "remote.origin.promisor": "true",
        "extensions.partialClone": "origin",
        "include.path": str(included),
    }.items():
        git(path, "config", key, value)
    (path / ".gitattributes").write_text("README filter=evil diff=evil\nnew.txt filter=inc\n")
    (path / "README").write_text("edited\n")
    (path / "new.txt").write_text("new\n")
    # the traps are live: git as anyone runs it in that clone springs them
    subprocess.run(["git", "-C", str(path), "diff"], capture_output=True, timeout=30)
    subprocess.run(["git", "-C", str(path), "add", "-A"], capture_output=True, timeout=30)
    sprung = {p.name for p in marks.iterdir()}
    assert {"fsmonitor", "clean", "include-clean"} <= sprung, sprung
    for p in marks.iterdir():
        p.unlink()

    assert treework.is_dirty(ctx.env, tree) is True
    assert treework.unpushed(ctx.env, tree) is False
    assert treework.holds_work(ctx.env, tree) is True
    shown = ""
    for argv, env in treework.diff_runs(ctx, "w1", ("--stat",)) + treework.diff_runs(ctx, "w1"):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode in (0, 1), done.stderr
        shown += done.stdout
    assert "+edited" in shown and "+new" in shown
    assert probes.sensed(ctx, {"w1": tree._asdict()})["w1"]["uncommitted"] is True
    wt.release(ctx, "w1")  # holds work: kept
    assert path.exists()
    assert sorted(p.name for p in marks.iterdir()) == []
