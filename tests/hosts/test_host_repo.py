"""A worker on an SSH host in a checkout of its own, as a worker at home has one: a
repository on the host gets a `git worktree` on the worker's branch, a URL the host reaches is
cloned there (served here by `git daemon` on the home's side of the host's link: the host has
no other route), and bad inputs are refused in one line before anything starts."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hosts.conftest import Home, Host
from tests.hosts.repos import git as _git
from tests.hosts.repos import host_repo
from tests.hosts.util import looop

GIT_PORT = 9418


def _host(home: Home, name: str) -> Host:
    return next(h for h in home.lab.hosts if h.name == name)


def _row(d: Path, wid: str) -> dict[str, object]:
    rows = json.loads(looop(d, "ls", "-a", "--json").stdout)
    return next(r for r in rows if r["id"] == wid)


def _one_line_refusal(done: subprocess.CompletedProcess[str], said: str) -> None:
    assert done.returncode != 0, done.stdout
    err = done.stderr.strip()
    assert said in err and "\n" not in err and "Traceback" not in err, err


@pytest.fixture
def served(home: Home, tmp_path: Path) -> Iterator[str]:
    """A bare repo (main with two commits, and a branch `feat`) served read-only by `git
    daemon` on the home's address on h2's link: git://NET.2.1/app.git."""
    h2 = _host(home, "h2")
    here = h2.addr.rsplit(".", 1)[0] + ".1"
    src = tmp_path / "src"
    _git("init", "-q", "-b", "main", str(src))
    (src / "a.txt").write_text("a\n")
    _git("-C", str(src), "add", "a.txt")
    _git("-C", str(src), "commit", "-qm", "one")
    _git("-C", str(src), "branch", "feat")
    _git("-C", str(src), "commit", "-q", "--allow-empty", "-m", "two")  # main: one, two
    _git("-C", str(src), "checkout", "-q", "feat")
    _git("-C", str(src), "commit", "-q", "--allow-empty", "-m", "feat-tip")  # feat: one, feat-tip
    _git("-C", str(src), "checkout", "-q", "main")
    srv = tmp_path / "srv"
    srv.mkdir()
    _git("clone", "-q", "--bare", str(src), str(srv / "app.git"))
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            f"--listen={here}",
            f"--port={GIT_PORT}",
            f"--base-path={srv}",
            "--export-all",
            str(srv),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            ls = subprocess.run(["ss", "-Hltn", f"sport = :{GIT_PORT}"], capture_output=True)
            if here.encode() in ls.stdout:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("git daemon did not listen")
        yield f"git://{here}/app.git"
    finally:
        daemon.terminate()
        daemon.wait(10)


@pytest.mark.timeout(180)
def test_a_path_repo_on_the_host_gets_a_worktree_on_its_own_branch(home: Home) -> None:
    d = home.data
    h1 = _host(home, "h1")
    repo = host_repo(h1, "app")
    cmd = (
        "bash -c 'echo at=$(pwd) on=$(git branch --show-current); echo x > made.txt; "
        "git add made.txt; git -c user.name=w -c user.email=w@h commit -qm made-by-worker; "
        "echo untracked > loose.txt; echo COMMITTED; cat' # {{prompt_file}}"
    )
    start = looop(
        d, "worker", "start", "hr1", "x", "--host", "h1", "--repo", str(repo),
        "--branch", "feat/hr1", "--command", cmd,
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    assert looop(d, "expect", "hr1", "COMMITTED", "--timeout", "30s").returncode == 0
    log = looop(d, "log", "hr1").stdout
    where = next(w for w in log.split() if w.startswith("at="))[3:]
    # its checkout is on the host, in this home's satellite there, on its own branch
    assert where.startswith(str(h1.home / ".local/share/looop/satellite")), log
    assert where.endswith(".work/checkouts/hr1") and "on=feat/hr1" in log, log
    # the commit is on that branch of the host's repository; the main checkout is untouched
    assert _git("-C", str(repo), "log", "-1", "--format=%s", "feat/hr1").strip() == "made-by-worker"
    assert _git("-C", str(repo), "branch", "--show-current").strip() == "main"
    assert not (repo / "made.txt").exists()
    row = _row(d, "hr1")
    assert row["branch"] == "feat/hr1" and row["host"] == "h1" and row["alive"], row
    table = looop(d, "ls").stdout
    assert "BRANCH" in table and "feat/hr1" in table, table
    # its contract tells it where it is, and the home keeps that copy
    brief = (d / "prompts" / "hr1.md").read_text()
    assert "**Your worktree**" in brief and "feat/hr1" in brief and where in brief
    # worker diff shows what it did, from the host
    diff = looop(d, "worker", "diff", "hr1", "--stat")
    assert diff.returncode == 0 and "made.txt" in diff.stdout and "loose.txt" in diff.stdout, diff
    assert looop(d, "kill", "hr1").returncode == 0
    # the same id again while its worktree holds uncommitted work: refused, in one line
    again = looop(
        d, "worker", "start", "hr1", "x", "--host", "h1", "--repo", str(repo),
        "--branch", "feat/hr1", "--command", "cat # {{prompt_file}}",
    )  # fmt: skip
    _one_line_refusal(again, "holds uncommitted work")
    (Path(where) / "loose.txt").unlink()
    # clean now: the last worktree goes, the branch (and its commit) stays, a new one is made
    again = looop(
        d, "worker", "start", "hr1", "x", "--host", "h1", "--repo", str(repo),
        "--branch", "feat/hr1", "--command", "bash -c 'ls; echo LISTED; cat' # {{prompt_file}}",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert looop(d, "expect", "hr1", "LISTED", "--timeout", "30s").returncode == 0
    assert "made.txt" in looop(d, "log", "hr1").stdout  # the branch as the last worker left it
    looop(d, "kill", "hr1")


@pytest.mark.timeout(180)
def test_a_url_is_cloned_on_the_host_on_the_workers_branch(home: Home, served: str) -> None:
    d = home.data
    show = (
        "bash -c 'echo at=$(pwd) on=$(git branch --show-current) "
        "tip=$(git log -1 --format=%s) up=$(git rev-parse --abbrev-ref @{u} 2>/dev/null); cat'"
        " # {{prompt_file}}"
    )
    start = looop(d, "worker", "start", "hc1", "x", "--host", "h2", "--repo", served,
                  "--command", show)  # fmt: skip
    assert start.returncode == 0, start.stderr
    got = looop(d, "expect", "hc1", "tip=", "--timeout", "30s")
    assert got.returncode == 0, looop(d, "log", "hc1").stdout
    log = looop(d, "log", "hc1").stdout
    # no --branch: a branch of its own, looop/<id>, from the remote's default branch
    assert "on=looop/hc1" in log and "tip=two" in log, log
    assert ".work/checkouts/hc1" in log
    assert _row(d, "hc1")["branch"] == "looop/hc1"
    assert "**Your clone**" in (d / "prompts" / "hc1.md").read_text()
    # --branch naming a branch the remote has: that branch, tracking it
    start = looop(d, "worker", "start", "hc2", "x", "--host", "h2", "--repo", served,
                  "--branch", "feat", "--command", show)  # fmt: skip
    assert start.returncode == 0, start.stderr
    assert looop(d, "expect", "hc2", "tip=", "--timeout", "30s").returncode == 0
    log = looop(d, "log", "hc2").stdout
    assert "on=feat" in log and "tip=feat-tip" in log and "up=origin/feat" in log, log
    for wid in ("hc1", "hc2"):
        looop(d, "kill", wid)


@pytest.mark.timeout(240)
def test_bad_repo_inputs_are_refused_in_one_line_and_nothing_starts(
    home: Home, served: str
) -> None:
    d = home.data
    h1 = _host(home, "h1")
    repo = host_repo(h1, "bad")
    missing = served.replace("app.git", "nope.git")
    cases: list[tuple[list[str], str]] = [
        (["--repo", "src/app"], "not a URL host h1 can clone"),
        (["--repo", "~user/app"], "not a URL host h1 can clone"),
        (["--repo", "file:///srv/app.git"], "scheme 'file'"),
        (["--repo", "ext::sh -c touch% /tmp/x"], "spaces"),
        (["--repo", "ext::sh"], "transport helper"),
        (["--repo", "https://me:pw@example.com/a.git"], "credentials"),
        (["--repo", str(repo), "--branch", "a..b"], "not a usable git branch name"),
        (["--repo", str(repo), "--branch", "-x"], "not a usable git branch name"),
        (["--branch", "main"], "needs 'repo'"),
        (["--repo", "/nowhere/at/all"], "does not exist"),
        (["--repo", str(h1.home)], "not a git repository"),
        (["--host", "h2", "--repo", missing], "git clone"),
        (["--verify", "rm -rf ~"], "tripwire"),
    ]
    for i, (args, said) in enumerate(cases):
        wid = f"bad{i}"
        where = [] if "--host" in args else ["--host", "h1"]
        done = looop(
            d, "worker", "start", wid, "x", *where, "--command", "cat # {{prompt_file}}", *args
        )
        _one_line_refusal(done, said)
        assert not (d / "hosts" / "workers" / f"{wid}.json").exists(), args
    rows = json.loads(looop(d, "ls", "-a", "--json").stdout)
    assert not [r for r in rows if str(r["id"]).startswith("bad")], rows
    sat = list((h1.home / ".local/share/looop/satellite").glob("*/sessions/bad*"))
    assert not sat, sat  # nothing started on the host either
    assert not list((h1.home / ".local/share/looop/satellite").glob("*.work/checkouts/bad*"))
