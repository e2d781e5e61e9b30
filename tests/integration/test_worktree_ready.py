"""A worktree ready to work in (real git, real sessions): `.worktreeinclude` copies the
ignored files a worker needs before it starts, and nothing outside either tree is read or
written through it."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.home.paths import Paths
from looop.sessions.client import wait
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.clocks import FixedClock
from tests.helpers import wire
from tests.integration.test_worktrees import git, make_repo

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def wctx(tmp_path: Path, ctx: Ctx) -> Ctx:
    data = tmp_path / "data dir"
    data.mkdir()
    c = replace(ctx, paths=Paths.at(data), clock=FixedClock(t=time.time()))
    wire(c, [])
    return c


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "my repo")


# the worker reads what it was given before its first word
READS = """set -e
mkdir -p "$LOOOP_REPORTS_DIR"
cat .env config/local.json > "$LOOOP_REPORTS_DIR/{wid}.txt"
"""


def start(c: Ctx, tmp: Path, wid: str, repo: Path, script: str, **kw: str) -> Path:
    path = tmp / f"{wid}.sh"
    path.write_text(script.format(wid=wid))
    start_worker(
        c,
        c.knobs(),
        StartRequest(
            wid, "work", command=f"bash '{path}' # {{{{prompt_file}}}}", repo=str(repo), **kw
        ),
    )
    code = wait(c.paths.data, wid, 30, c.clock)
    assert code == 0, (c.paths.sessions / wid / "output.log").read_text()
    return c.paths.checkouts / wid


def said(c: Ctx) -> list[str]:
    return [
        str(f["msg"])
        for name, f in c.events.seen
        if name == "worktree.include"  # type: ignore[attr-defined]
    ]


def ignored_files(repo: Path, outside: Path) -> None:
    (repo / ".gitignore").write_text(".env\nconfig/local.json\nsecret-link\ncache/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    (repo / ".env").write_text("TOKEN=abc\n")
    os.chmod(repo / ".env", 0o600)
    (repo / "config").mkdir()
    (repo / "config" / "local.json").write_text('{"port": 1}\n')
    (repo / "cache").mkdir()
    (repo / "cache" / "big").write_text("not named\n")
    (repo / "untracked.txt").write_text("matches, but git does not ignore it\n")
    outside.write_text("outside the repo\n")
    os.symlink(outside, repo / "secret-link")


def test_worktreeinclude_copies_only_named_ignored_files_before_the_worker_starts(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    ignored_files(repo, outside)
    (repo / ".worktreeinclude").write_text(
        "# what a worker needs\n.env\nconfig/*.json\nuntracked.txt\nsecret-link\n"
        f"../outside.txt\n~/.ssh/id_rsa\n{outside}\n"
    )
    tree = start(wctx, tmp_path, "w1", repo, READS)
    # the worker read them at its start
    assert (wctx.paths.reports / "w1.txt").read_text() == 'TOKEN=abc\n{"port": 1}\n'
    assert (tree / ".env").stat().st_mode & 0o777 == 0o600
    # matched but not ignored, ignored but not named, a symlink: none copied
    for name in ("untracked.txt", "cache", "secret-link"):
        assert not os.path.lexists(tree / name), name
    lines = said(wctx)
    assert len(lines) == 4, lines
    assert any("'../outside.txt'" in ln and "outside the repository" in ln for ln in lines)
    assert any("'~/.ssh/id_rsa'" in ln and "home folder" in ln for ln in lines)
    assert any(f"'{outside}'" in ln and "absolute path" in ln for ln in lines)
    assert any("secret-link" in ln and "symlink" in ln for ln in lines)
    # the user's checkout is as it was
    assert (repo / ".env").read_text() == "TOKEN=abc\n"
    assert git(repo, "status", "--porcelain") == "?? .worktreeinclude\n?? untracked.txt\n"


def test_a_symlink_in_the_branch_is_never_written_through(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    ignored_files(repo, tmp_path / "outside.txt")
    (repo / ".worktreeinclude").write_text(".env\nconfig/local.json\n")
    # a branch (a worker could have made it) where `config` is a symlink out of the tree
    away = tmp_path / "away"
    away.mkdir()
    git(repo, "checkout", "-q", "-b", "linked")
    (repo / "config" / "local.json").rename(tmp_path / "local.json")
    (repo / "config").rmdir()
    os.symlink(away, repo / "config")
    git(repo, "add", "config")
    git(repo, "commit", "-qm", "config is a link")
    git(repo, "checkout", "-q", "main")
    # main does not track it: checking main out took the link away
    (repo / "config").mkdir()
    (tmp_path / "local.json").rename(repo / "config" / "local.json")
    tree = start(wctx, tmp_path, "w2", repo, "true\n", branch="linked")
    assert (tree / ".env").read_text() == "TOKEN=abc\n"
    assert os.listdir(away) == []  # nothing written through the link
    lines = said(wctx)
    assert len(lines) == 1 and "config/local.json" in lines[0] and "symlink" in lines[0]


def test_a_symlinked_or_missing_list_copies_nothing(wctx: Ctx, repo: Path, tmp_path: Path) -> None:
    ignored_files(repo, tmp_path / "outside.txt")
    tree = start(wctx, tmp_path, "w3", repo, "true\n")
    assert not (tree / ".env").exists() and said(wctx) == []
    listing = tmp_path / "list"
    listing.write_text(".env\n")
    os.symlink(listing, repo / ".worktreeinclude")
    tree = start(wctx, tmp_path, "w4", repo, "true\n")
    assert not (tree / ".env").exists()
    assert [ln for ln in said(wctx) if "symlink" in ln and "plain file" in ln]
