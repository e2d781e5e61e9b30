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
from looop.sessions.state import list_sessions
from looop.workers.errors import WorkerError
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


# --- the config's setup, run in the new worktree before the worker starts


def with_setup(c: Ctx, repo: Path, line: str, **more: object) -> None:
    wire(c, [], worktree={"setup": {str(repo): line}, **more})


def test_the_setup_runs_in_the_new_worktree_before_the_worker_and_its_output_is_logged(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    ignored_files(repo, tmp_path / "outside.txt")
    (repo / ".worktreeinclude").write_text(".env\n")
    # the copied .env is there when the setup runs; what it makes is there for the worker
    with_setup(
        wctx,
        repo,
        'echo "setting up in $PWD"; cat .env > ready.txt; echo "$LOOOP_PORT" >> ready.txt',
    )
    script = (
        'set -e\nmkdir -p "$LOOOP_REPORTS_DIR"\ncat ready.txt > "$LOOOP_REPORTS_DIR/{wid}.txt"\n'
        'echo "$LOOOP_PORT" >> "$LOOOP_REPORTS_DIR/{wid}.txt"\n'
    )
    tree = start(wctx, tmp_path, "s1", repo, script)
    # the setup saw the .env and the same $LOOOP_PORT the worker has
    token, setup_port, worker_port = (wctx.paths.reports / "s1.txt").read_text().splitlines()
    assert token == "TOKEN=abc" and setup_port == worker_port and worker_port.isdigit()
    log = (wctx.paths.sessions / "s1" / "output.log").read_text()
    assert log.index("looop: setup: echo") < log.index(f"setting up in {tree}")
    assert log.index(f"setting up in {tree}") < log.index("looop: setup done")


def test_a_failing_setup_is_a_start_error_and_takes_the_worktree_back(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    with_setup(wctx, repo, "echo the install broke >&2; exit 3")
    script = tmp_path / "never.sh"
    script.write_text('touch "$LOOOP_REPORTS_DIR/ran"\n')
    with pytest.raises(WorkerError) as got:
        start_worker(
            wctx,
            wctx.knobs(),
            StartRequest(
                "s2", "work", command=f"bash '{script}' # {{{{prompt_file}}}}", repo=str(repo)
            ),
        )
    msg = str(got.value)
    assert "\n" not in msg and "setup" in msg and "exit 3" in msg, msg
    assert not (wctx.paths.checkouts / "s2").exists()
    assert "looop/s2" not in git(repo, "branch", "--list")
    assert not list_sessions(wctx.paths.data)  # the worker never started
    assert "the install broke" in (wctx.paths.sessions / "s2" / "output.log").read_text()
    # fixed, the same id starts: its log begins again with this run's setup
    with_setup(wctx, repo, "echo fixed")
    start(wctx, tmp_path, "s2", repo, "true\n")
    log = (wctx.paths.sessions / "s2" / "output.log").read_text()
    assert "fixed" in log and "the install broke" not in log


def test_a_hanging_setup_is_stopped_at_its_timeout_with_all_it_started(
    wctx: Ctx, repo: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "bg.pid"
    with_setup(wctx, repo, f"sleep 300 & echo $! > '{pid_file}'; sleep 300", setup_timeout_s=1)
    with pytest.raises(WorkerError) as got:
        start_worker(
            wctx,
            wctx.knobs(),
            StartRequest("s3", "work", command="true # {{prompt_file}}", repo=str(repo)),
        )
    assert "took over 1s" in str(got.value) and "setup_timeout_s" in str(got.value)
    assert not (wctx.paths.checkouts / "s3").exists()
    left = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive(left):
        time.sleep(0.05)  # SIGKILL is sent; its reaping by init is not ours to await
    assert not alive(left)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][:1] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    "worktree",
    [
        {"setup": "npm ci"},
        {"setup": {"/x": ""}},
        {"setup": {}, "setup_timeout_s": 0},
        {"setup": {}, "setup_timeout_s": "10"},
        [],
    ],
)
def test_a_bad_setup_config_is_refused_before_anything_changes(
    wctx: Ctx, repo: Path, worktree: object
) -> None:
    wire(wctx, [], worktree=worktree)
    with pytest.raises(WorkerError) as got:
        start_worker(
            wctx,
            wctx.knobs(),
            StartRequest("s4", "work", command="true # {{prompt_file}}", repo=str(repo)),
        )
    assert "\n" not in str(got.value) and "worktree" in str(got.value)
    assert not (wctx.paths.checkouts / "s4").exists()
    assert "looop/s4" not in git(repo, "branch", "--list")


def test_a_sparse_file_is_copied_sparse(wctx: Ctx, repo: Path, tmp_path: Path) -> None:
    """A 3 GB file that is mostly a hole (a disk image, a database) takes no more room in the
    worker's worktree than in the user's checkout."""
    (repo / ".gitignore").write_text("disk.img\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")
    (repo / ".worktreeinclude").write_text("disk.img\n")
    with open(repo / "disk.img", "wb") as f:
        f.write(b"head")
        f.seek(3 << 30)
        f.write(b"tail")
    tree = start(wctx, tmp_path, "w1", repo, "true\n")
    copy = tree / "disk.img"
    assert copy.stat().st_size == (3 << 30) + 4
    assert copy.stat().st_blocks * 512 < 1 << 20, copy.stat().st_blocks
    with open(copy, "rb") as f:
        assert f.read(4) == b"head"
        f.seek(3 << 30)
        assert f.read() == b"tail"
    assert said(wctx) == []
