"""`looop land ID` on real git: a worker's branch fast-forwarded or merged into its base in the
user's checkout, or pushed to a real (bare) remote with a pull request opened by a recording
stand-in of `gh` whose exact argv is checked; journaled with who approved it and the commit it
made. Every refusal is one line and lands nothing: a branch that moved under the worker, a base
that is gone, a dirty checkout, a conflict, a refused push, a PR command that fails or hangs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from looop.act.wal import check_interrupted
from looop.core.context import Ctx
from looop.sessions.client import wait
from looop.workers.launch import start_worker
from looop.workers.started import StartRequest
from tests.helpers import Cli
from tests.integration.workerchange import (
    LOOOP,
    cli,
    git,
    head,
    journal,
    refused,
    repo,
    reviewed,
    stand_in,
    start,
    wctx,
    with_origin,
)

pytestmark = pytest.mark.timeout(90)
__all__ = ["cli", "repo", "wctx"]  # the fixtures this module's tests take

# gh as a recording stand-in: its argv and the body file it was handed, then what MODE says
GH = """#!/usr/bin/env python3
import json, os, sys, time
rec = {"argv": sys.argv[1:], "cwd": os.getcwd(), "pid": os.getpid()}
if "--body-file" in sys.argv:
    rec["body"] = open(sys.argv[sys.argv.index("--body-file") + 1]).read()
with open(os.environ["GH_RECORD"], "a") as f:
    f.write(json.dumps(rec) + "\\n")
mode = os.environ.get("GH_MODE", "ok")
if mode == "fail":
    print("GraphQL: no permission to open a pull request", file=sys.stderr)
    sys.exit(1)
if mode == "hang":
    time.sleep(600)
print("https://github.example/o/r/pull/7")
"""
NONE = "echo half > notes.txt # {{prompt_file}}"  # a worker that commits nothing


def config(c: Ctx, land: dict[str, object]) -> None:
    obj = json.loads(c.paths.config.read_text())
    obj["land"] = land
    c.paths.config.write_text(json.dumps(obj))


@pytest.fixture
def gh(tmp_path: Path, cli: Cli) -> Path:
    return stand_in(tmp_path, cli, "gh", GH)


@pytest.fixture
def origin(tmp_path: Path, repo: Path) -> Path:
    return with_origin(tmp_path, repo, "origin.git")


def test_land_fast_forwards_the_checkout_and_journals_who_approved_it(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w1", repo)
    reviewed(cli, "w1")
    tip = head(repo, "looop/w1")
    code, out, err = cli("land", "w1")
    assert code == 0, err
    assert head(repo) == tip and f"at {tip[:12]}" in out
    assert (repo / "README").read_text() == "hello\ncommitted\n"  # the checkout moved too
    assert git(repo, "status", "--porcelain") == ""
    line = journal(wctx).splitlines()[-1]
    assert "user (cli): landed worker w1: looop/w1 into main as fast-forward" in line
    assert tip[:12] in line
    events = [json.loads(x) for x in wctx.paths.events.read_text().splitlines()]
    landed = [e for e in events if e.get("event") == "worker_landed"]
    assert landed and landed[-1]["commit"] == tip and landed[-1]["actor"] == "user (cli)"
    assert not list((wctx.paths.data / ".wal").glob("*.json"))
    assert "nothing to land" in refused(cli, "w1")  # a second time


def test_review_and_land_ask_git_each_thing_once(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    """Issue 68: a review runs git 6 times (it ran 8, then 7: the stats and the patch are one
    `git diff`), a fast-forward landing with its worktree's removal 11 (it ran 22, then 16,
    then 12: the worktree found clean once, its ended worker not run since; a base that did
    not move is not asked whether it holds the worker's start; the checkout's branch and its
    commit read by one git)."""
    start(wctx, tmp_path, "w9", repo)
    real = shutil.which("git")
    record = stand_in(
        tmp_path, cli, "git", f'#!/bin/sh\necho "$1" >> "$GH_RECORD"\nexec {real} "$@"\n'
    )
    reviewed(cli, "w9")
    assert len(record.read_text().splitlines()) == 6, record.read_text()
    record.write_text("")
    code, out, err = cli("land", "w9", "--ff")
    assert code == 0 and "fast-forwarded into main" in out, err
    assert len(record.read_text().splitlines()) == 11, record.read_text()
    assert head(repo) == head(repo, "looop/w9") and not (wctx.paths.checkouts / "w9").exists()


def test_a_moved_base_needs_merge_which_makes_one_merge_commit(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w2", repo)
    reviewed(cli, "w2")
    (repo / "other.txt").write_text("mine\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "the user's own work")
    old, tip = head(repo), head(repo, "looop/w2")
    assert "cannot fast-forward — land with --merge" in refused(cli, "w2")
    assert head(repo) == old
    code, out, err = cli("land", "w2", "--merge")
    assert code == 0, err
    new = head(repo)
    assert f"looop/w2 merged into main at {new[:12]}" in out
    assert git(repo, "rev-list", "--parents", "-n1", new).split()[1:] == [old, tip]
    assert (repo / "app.py").exists() and (repo / "other.txt").exists()
    assert git(repo, "status", "--porcelain") == ""
    assert f"as merge commit at {new[:12]}" in journal(wctx)


def test_the_configured_mode_is_used_and_the_base_need_not_be_checked_out(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    git(repo, "branch", "release")
    start(wctx, tmp_path, "w3", repo)
    reviewed(cli, "w3")
    config(wctx, {"merge": "merge"})
    before = head(repo)
    code, _, err = cli("land", "w3", "--into", "release")
    assert code == 0, err
    assert head(repo) == before  # the checkout's branch untouched
    assert git(repo, "rev-list", "--count", "--merges", "main..release").strip() == "1"


def test_a_conflict_a_dirty_checkout_a_moved_branch_and_a_gone_base_land_nothing(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    start(wctx, tmp_path, "w4", repo)
    reviewed(cli, "w4")
    (repo / "README").write_text("hello\nthe user's line\n")
    git(repo, "commit", "-qam", "a conflicting line")
    old = head(repo)
    err = refused(cli, "w4", "--merge")
    assert "conflicts with main in README" in err and "looop review w4 --comment-all" in err
    assert head(repo) == old and git(repo, "status", "--porcelain") == ""
    assert not (repo / ".git" / "MERGE_HEAD").exists()

    (repo / "README").write_text("an edit not committed\n")
    assert "has uncommitted changes" in refused(cli, "w4", "--merge")
    git(repo, "checkout", "-q", "README")

    left = wctx.paths.checkouts / "w4" / "notes.txt"  # the worker's own, never committed
    left.write_text("half done\n")
    assert "holds uncommitted work that would not land" in refused(cli, "w4", "--merge")
    left.unlink()

    assert "base branch nope is gone" in refused(cli, "w4", "--into", "nope")
    git(repo, "checkout", "-q", "--detach")
    assert "is on no branch" in refused(cli, "w4")
    git(repo, "checkout", "-q", "main")

    tip = head(repo, "looop/w4")
    tree = git(repo, "rev-parse", f"{tip}^{{tree}}").strip()
    planted = git(repo, "commit-tree", tree, "-p", tip, "-m", "not the worker's").strip()
    git(repo, "update-ref", "refs/heads/looop/w4", planted)
    assert "moved under it" in refused(cli, "w4", "--merge")
    assert head(repo) == old
    assert "landed" not in journal(wctx)


def test_pr_pushes_the_branch_and_runs_the_command_with_exact_argv(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, gh: Path, origin: Path
) -> None:
    start(wctx, tmp_path, "w5", repo)
    reviewed(cli, "w5")
    tip = head(repo, "looop/w5")
    code, out, err = cli("land", "w5", "--pr")
    assert code == 0, err
    assert "https://github.example/o/r/pull/7" in out
    assert git(origin, "rev-parse", "refs/heads/looop/w5").strip() == tip
    (rec,) = [json.loads(x) for x in gh.read_text().splitlines()]
    argv = rec["argv"]
    assert argv[:-1] == [
        "pr",
        "create",
        "--head",
        "looop/w5",
        "--base",
        "main",
        "--title",
        "add app and a README line",
        "--body-file",
    ]
    assert tip[:12] in rec["body"] and "I added f; it returns x." in rec["body"]
    assert not Path(argv[-1]).exists()  # the body file does not outlive the landing
    assert head(repo) == git(origin, "rev-parse", "main").strip()  # nothing merged here
    assert "as pull request" in journal(wctx) and "pull/7" in journal(wctx)


def test_a_failing_or_hanging_pr_command_takes_the_push_back(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, gh: Path, origin: Path
) -> None:
    start(wctx, tmp_path, "w6", repo)
    reviewed(cli, "w6")
    cli.env["GH_MODE"] = "fail"
    err = refused(cli, "w6", "--pr")
    assert "gh failed (exit 1): GraphQL: no permission" in err
    assert "taken back" in err and "nothing landed" in err
    assert git(origin, "branch", "--list", "looop/w6") == ""
    cli.env["GH_MODE"] = "hang"
    config(wctx, {"pr_timeout_s": 1})
    err = refused(cli, "w6", "--pr")
    assert "gh took over 1s (land.pr_timeout_s)" in err and "taken back" in err
    assert git(origin, "branch", "--list", "looop/w6") == ""
    assert len(gh.read_text().splitlines()) == 2
    assert "landed" not in journal(wctx)


def test_a_refused_push_runs_no_pr_command(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, gh: Path, origin: Path
) -> None:
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: no pushes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    start(wctx, tmp_path, "w7", repo)
    reviewed(cli, "w7")
    err = refused(cli, "w7", "--pr")
    assert "the push of looop/w7 to origin was refused" in err and "nothing landed" in err
    assert not gh.exists()
    hook.unlink()  # a PR command that is not there is said before anything is pushed
    config(wctx, {"pr_command": "no-such-forge mr create --source-branch {branch}"})
    assert "no-such-forge is not on PATH" in refused(cli, "w7", "--pr")
    assert git(origin, "branch", "--list", "looop/w7") == ""


def test_bad_land_config_is_one_line(wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path) -> None:
    start(wctx, tmp_path, "w8", repo)
    reviewed(cli, "w8")
    for bad, said in [
        ({"merge": "squash"}, 'land.merge must be "ff" or "merge"'),
        ({"pr_command": ""}, "land.pr_command must be a command line"),
        ({"pr_timeout_s": 0}, "land.pr_timeout_s must be seconds"),
    ]:
        config(wctx, bad)
        assert said in refused(cli, "w8")


def test_a_landing_cut_mid_way_is_reported_once_by_the_wal_and_never_rerun(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, gh: Path, origin: Path
) -> None:
    start(wctx, tmp_path, "w9", repo)
    reviewed(cli, "w9")
    env = {**cli.env, "GH_MODE": "hang"}
    proc = subprocess.Popen([LOOOP, "land", "w9", "--pr"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not gh.exists() or not gh.read_text().endswith("\n"):  # gh is running
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        records = list((wctx.paths.data / ".wal").glob("*.json"))
        assert len(records) == 1 and "land worker w9" in records[0].read_text()
        os.kill(proc.pid, signal.SIGKILL)  # the landing dies with its record held
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(OSError, ValueError):
            os.kill(json.loads(gh.read_text().splitlines()[0])["pid"], signal.SIGKILL)
    said = check_interrupted(wctx, wctx.knobs())
    assert [r["action"] for r in said] == ["land"]
    assert "interrupted · land worker w9 (looop/w9 into main, pr)" in journal(wctx)
    assert check_interrupted(wctx, wctx.knobs()) == []  # once


def test_a_remote_that_never_answers_is_named_with_its_repository_in_one_line(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path, gh: Path
) -> None:
    start(wctx, tmp_path, "w10", repo)
    reviewed(cli, "w10")
    git(repo, "remote", "add", "far", "ssh://nowhere.invalid/r.git")
    # the transport never answers, as a dead host's can (and ends with git: its input closes)
    cli.env["GIT_SSH_COMMAND"] = "sh -c 'cat >/dev/null'"
    config(wctx, {"remote": "far", "pr_timeout_s": 1})
    err = refused(cli, "w10", "--pr")
    assert f"git ls-remote in {repo} took over 1s" in err
    assert not gh.exists() and "landed" not in journal(wctx)


def test_what_its_setup_left_never_blocks_a_landing_and_a_refusal_names_files(
    wctx: Ctx, cli: Cli, repo: Path, tmp_path: Path
) -> None:
    obj = json.loads(wctx.paths.config.read_text())
    setup = "echo log > setup.log; mkdir -p build && touch build/out"
    obj["worktree"] = {"setup": {str(repo): setup}}
    wctx.paths.config.write_text(json.dumps(obj))
    work = start(wctx, tmp_path, "w9", repo)
    assert (work / "setup.log").exists() and (work / "build" / "out").exists()
    reviewed(cli, "w9")
    (work / "notes.txt").write_text("half done\n")  # the worker's own, never committed
    err = refused(cli, "w9")
    assert "(notes.txt)" in err and "--comment-all 'commit notes.txt'" in err
    assert "setup.log" not in err and "build" not in err
    (work / "notes.txt").unlink()
    code, _, err = cli("land", "w9")
    assert code == 0, err
    assert git(repo, "ls-tree", "-r", "--name-only", "main").split() == ["README", "app.py"]
    code, out, _ = cli("review", "w9")
    assert "landed into main at" in out and "nothing left to land" in out

    start_worker(wctx, wctx.knobs(), StartRequest("w8", "x", command=NONE, repo=str(repo)))
    assert wait(wctx.paths.data, "w8", 30, wctx.clock) == 0
    assert "nothing to land" in refused(cli, "w8")  # no commits: said before its leftovers
