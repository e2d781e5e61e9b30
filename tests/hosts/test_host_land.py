"""Review and land a worker on an SSH host from its home, as a worker at home: `looop review
ID` reads the change on the host (its satellite, the same review code), comments go back to the
worker (an ended one resumed there with them), and `looop land ID` lands in the host's
repository — a fast-forward, a merge commit per repository of several, or the branch pushed
from there to its remote with the request opened there — journaled at home with who approved
it, the host and the commit. A conflict is one line naming the repository; nothing lands."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tests.hosts.conftest import Home, Host
from tests.hosts.repos import git as _git
from tests.hosts.repos import host_repo
from tests.hosts.test_sandboxed_host import _second_home, _wait_gone
from tests.hosts.util import looop

WORK_ONE = """set -e
echo "by the worker" >> README
git add README
git -c user.name=w -c user.email=w@h commit -qm "a worker line"
mkdir -p "$LOOOP_REPORTS_DIR"
printf 'I added a line to README.\\n' > "$LOOOP_REPORTS_DIR/$LOOOP_SESSION_ID.md"
"""

WORK_BOTH = """set -e
for d in app lib; do
  (cd "$d" && echo "by the worker" >> README && git add README &&
   git -c user.name=w -c user.email=w@h commit -qm "worker in $d")
done
"""

GH = """#!/bin/sh
echo "$@" >> "$HOME/gh-argv.txt"
echo https://forge.example/o/app/pull/7
"""


def _host(home: Home, name: str) -> Host:
    return next(h for h in home.lab.hosts if h.name == name)


def _put(h: Host, name: str, text: str, mode: int = 0o644) -> Path:
    path = h.home / name
    path.write_text(text)
    path.chmod(mode)
    subprocess.run(["chown", f"{h.user}:{h.user}", str(path)], check=True)
    return path


def _rev(repo: Path, ref: str) -> str:
    return _git("-C", str(repo), "rev-parse", ref).strip()


def _one_line(done: subprocess.CompletedProcess[str], *said: str) -> str:
    err = done.stderr.strip()
    assert done.returncode != 0, done.stdout
    assert "\n" not in err and "Traceback" not in err, err
    for s in said:
        assert s in err, err
    return err


def _journal(data: Path) -> str:
    path = data / "journal.md"
    return path.read_text() if path.exists() else ""


def _settled(data: Path) -> None:
    assert not list((data / ".wal").glob("*.json")), "a landing's WAL record was left"


@pytest.mark.timeout(240)
def test_review_comment_and_land_a_worker_on_a_host_from_home(home: Home, tmp_path: Path) -> None:
    h1 = _host(home, "h1")
    app = host_repo(h1, "app")
    script = _put(h1, "land-one.sh", WORK_ONE)
    told = h1.home / "told-hl1.txt"
    told.unlink(missing_ok=True)
    runner = {
        "worker": f"bash {script} # {{{{prompt_file}}}} {{{{session_id}}}}",
        "resume": f"cat {{{{prompt_file}}}} >> {told} # {{{{session_id}}}}",
    }
    data = _second_home(tmp_path, home.lab, [h1], "off", runners={"sh": runner})
    start = looop(data, "worker", "start", "hl1", "x", "--host", "h1", "--repo", str(app))
    assert start.returncode == 0, start.stderr
    _wait_gone(data, "hl1")
    tip = _rev(app, "looop/hl1")

    # the review, read on the host: its commit, its hunk, the worker's own report
    shown = looop(data, "review", "hl1")
    assert shown.returncode == 0, shown.stderr
    assert "a worker line" in shown.stdout and "+by the worker" in shown.stdout, shown.stdout
    assert "I added a line to README." in shown.stdout, shown.stdout
    got = json.loads(looop(data, "review", "hl1", "--json").stdout)
    assert got["tip"] == tip and [f["path"] for f in got["files"]] == ["README"], got
    assert got["repo"] == str(app), got

    # comments: a line outside the change is one line; the rest go back in one message,
    # the ended worker resumed there with them (the lines around its line read on the host)
    _one_line(
        looop(data, "review", "hl1", "--comment", "nope.txt:1", "no"),
        "nope.txt is not part of worker hl1's change",
    )
    sent = looop(
        data, "review", "hl1", "--comment", "README:2", "say who you are",
        "--comment-all", "and add a test", "--send",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "round 1 sent to worker" in sent.stdout, sent.stdout
    assert "resumed" in sent.stdout, sent.stdout  # it ended there: not told into the void
    wait_until(lambda: told.exists() and "add a test" in told.read_text(), 30, "resumed, told")
    message = told.read_text()
    assert "README:2: say who you are" in message and ">    2 | by the worker" in message
    again = json.loads(looop(data, "review", "hl1", "--json").stdout)
    assert [r["n"] for r in again["rounds"]] == [1] and again["rounds"][0]["sent"], again
    assert "user (cli): sent review round 1 to hl1" in _journal(data)

    # land: a fast-forward of main in the host's repository, journaled here
    landed = looop(data, "land", "hl1", "--ff")
    assert landed.returncode == 0, landed.stderr
    assert f"fast-forwarded into main at {tip[:12]}" in landed.stdout, landed.stdout
    assert _rev(app, "main") == tip
    line = _journal(data).splitlines()[-1]
    assert "user (cli): landed worker hl1 on host h1:" in line and tip[:12] in line, line
    assert "fast-forward" in line, line
    _settled(data)
    _one_line(looop(data, "land", "hl1"), "on host h1:", "already holds worker hl1's branch")
    # bad asks, each one line from the host: an option for a base, a worker with no repo
    _one_line(looop(data, "land", "hl1", "--into", "-x"), "'into' must be a branch")
    bare = looop(
        data, "worker", "start", "hl0", "x", "--host", "h1", "--command", "true # {{prompt_file}}"
    )
    assert bare.returncode == 0, bare.stderr
    _wait_gone(data, "hl0")
    for verb in ("review", "land"):
        _one_line(looop(data, verb, "hl0"), "worker hl0 has no worktree")
    _settled(data)


@pytest.mark.timeout(240)
def test_a_worker_of_two_repos_on_a_host_lands_each_there_and_a_conflict_is_one_line(
    home: Home, tmp_path: Path
) -> None:
    h1 = _host(home, "h1")
    app, lib = host_repo(h1, "app"), host_repo(h1, "lib")
    for repo in (app, lib):  # who the user is there: a merge commit names them
        _git("-C", str(repo), "config", "user.name", "the user")
        _git("-C", str(repo), "config", "user.email", "user@h1")
    script = _put(h1, "land-both.sh", WORK_BOTH)
    runner = {"worker": f"bash {script} # {{{{prompt_file}}}}"}
    data = _second_home(tmp_path, home.lab, [h1], "off", runners={"sh": runner})
    start = looop(
        data, "worker", "start", "hl2", "x", "--host", "h1",
        "--repo", str(app), "--repo", str(lib),
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    _wait_gone(data, "hl2")
    got = json.loads(looop(data, "review", "hl2", "--json").stdout)
    assert [r["name"] for r in got["repos"]] == ["app", "lib"], got
    stat = looop(data, "worker", "diff", "hl2", "--stat")
    assert "app/README" in stat.stdout and "lib/README" in stat.stdout, stat.stdout

    # the user's own line on app's main conflicts: one line, nothing lands anywhere
    (app / "README").write_text("app\nthe user's line\n")
    _git("-C", str(app), "commit", "-qam", "a conflicting line")
    subprocess.run(["chown", "-R", f"{h1.user}:{h1.user}", str(app)], check=True)
    app_main, lib_main = _rev(app, "main"), _rev(lib, "main")
    _one_line(
        looop(data, "land", "hl2", "--merge"),
        "on host h1: repo app:",
        "conflicts with main",
        "nothing landed in any repository",
    )
    assert (_rev(app, "main"), _rev(lib, "main")) == (app_main, lib_main)
    assert "landed worker hl2" not in _journal(data)
    _settled(data)

    # the user takes the line back: each lands as a merge commit in its repository there
    _git("-C", str(app), "reset", "-q", "--hard", "HEAD~1")
    subprocess.run(["chown", "-R", f"{h1.user}:{h1.user}", str(app)], check=True)
    done = looop(data, "land", "hl2", "--merge", "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert [r["name"] for r in said["repos"]] == ["app", "lib"], said
    for repo in (app, lib):
        assert _rev(repo, "main^2") == _rev(repo, "looop/hl2")
    lines = [ln for ln in _journal(data).splitlines() if "landed worker hl2 on host h1" in ln]
    assert len(lines) == 2 and "repo app" in lines[0] and "repo lib" in lines[1], lines
    assert all("merge commit" in ln for ln in lines), lines
    _settled(data)


@pytest.mark.timeout(240)
def test_land_pr_pushes_from_the_host_and_opens_the_request_there(
    home: Home, tmp_path: Path
) -> None:
    h1 = _host(home, "h1")
    app = host_repo(h1, "app")
    bare = h1.home / "forge" / "app-pr.git"
    subprocess.run(["rm", "-rf", str(bare)], check=True)
    _git("init", "-q", "--bare", "-b", "main", str(bare))
    _git("-C", str(app), "remote", "add", "origin", str(bare))
    subprocess.run(["chown", "-R", f"{h1.user}:{h1.user}", str(h1.home / "forge")], check=True)
    subprocess.run(["chown", "-R", f"{h1.user}:{h1.user}", str(app)], check=True)
    gh = _put(h1, "gh-stand-in", GH, 0o755)
    (h1.home / "gh-argv.txt").unlink(missing_ok=True)
    script = _put(h1, "land-one.sh", WORK_ONE)
    runner = {"worker": f"bash {script} # {{{{prompt_file}}}}"}
    data = _second_home(tmp_path, home.lab, [h1], "off", runners={"sh": runner})
    cfg = json.loads((data / "config.json").read_text())
    cfg["land"] = {"pr_command": f"{gh} --head {{branch}} --base {{base}} --title {{title}}"}
    (data / "config.json").write_text(json.dumps(cfg))
    start = looop(data, "worker", "start", "hl3", "x", "--host", "h1", "--repo", str(app))
    assert start.returncode == 0, start.stderr
    _wait_gone(data, "hl3")
    tip = _rev(app, "looop/hl3")
    assert looop(data, "review", "hl3").returncode == 0  # what a plain land approves
    done = looop(data, "land", "hl3", "--pr")
    assert done.returncode == 0, done.stderr
    assert "https://forge.example/o/app/pull/7" in done.stdout, done.stdout
    assert _rev(bare, "refs/heads/looop/hl3") == tip  # pushed from the host
    argv = (h1.home / "gh-argv.txt").read_text().split("\n")[0]
    assert argv == "--head looop/hl3 --base main --title a worker line", argv
    assert _rev(app, "main") != tip  # a request, nothing merged
    line = _journal(data).splitlines()[-1]
    # a request is proposed until its base holds it
    assert "proposed worker hl3 on host h1:" in line and "pull request" in line, line
    assert "pull/7" in line, line
    _settled(data)
