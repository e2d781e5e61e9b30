"""A worker of several repositories on an SSH host, as at home: each `--repo` a path of a
repository on the host gets a `git worktree` there, side by side in the worker's workspace on
the worker's branch; the worker starts in that folder and its brief (the host's and the home's
copy) names every checkout; `worker diff` shows both. Sandboxed there too: from inside it
commits in each checkout, and the folder holding them and the main checkouts stay read-only.
A URL among several, or a missing repository, is one line and nothing starts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.hosts.conftest import Home, Host
from tests.hosts.repos import git as _git
from tests.hosts.repos import host_repo
from tests.hosts.test_sandboxed_host import _second_home, _wait_gone
from tests.hosts.util import looop

# the worker: where it is, then a commit in each checkout, then what it could write
WORK = r"""
echo "at=$(pwd) ws=$LOOOP_WORKSPACE"
for d in app lib; do
  (cd "$d" && echo "by the worker" >> README && git add README &&
   git -c user.name=w -c user.email=w@h commit -qm "worker in $d") && echo "commit_$d=ok"
done
if echo x > stray.txt 2>/dev/null; then echo top=ok; else echo top=no; fi
if echo x >> "$APP_MAIN/README" 2>/dev/null; then echo main=ok; else echo main=no; fi
echo DONE
"""


def _host(home: Home, name: str) -> Host:
    return next(h for h in home.lab.hosts if h.name == name)


def _script(h: Host, repo: Path) -> Path:
    path = h.home / "several.sh"
    path.write_text(f"APP_MAIN={repo}\n" + WORK)
    subprocess.run(["chown", f"{h.user}:{h.user}", str(path)], check=True)
    return path


def _said(log: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in log.split() if "=" in ln and " " not in ln)


@pytest.mark.timeout(180)
def test_two_repos_on_a_host_get_a_worktree_each_side_by_side(home: Home) -> None:
    d = home.data
    h1 = _host(home, "h1")
    app, lib = host_repo(h1, "app"), host_repo(h1, "lib")
    script = _script(h1, app)
    start = looop(
        d, "worker", "start", "hs1", "x", "--host", "h1", "--no-sandbox",
        "--repo", str(app), "--repo", str(lib), "--branch", "feat/hs1",
        "--command", f"bash {script}; cat # {{{{prompt_file}}}}",
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    assert looop(d, "expect", "hs1", "DONE", "--timeout", "30s").returncode == 0
    log = looop(d, "log", "hs1").stdout
    got = _said(log)
    where = got["at"]
    # it starts in its workspace there, which holds a checkout of each
    assert where.startswith(str(h1.home / ".local/share/looop/satellite")), log
    assert where.endswith(".work/checkouts/hs1") and got["ws"] == where, log
    assert got["commit_app"] == "ok" and got["commit_lib"] == "ok", log
    for r in (app, lib):  # each commit on that branch of the host's repository
        assert _git("-C", str(r), "log", "-1", "--format=%s", "feat/hs1").strip() == (
            f"worker in {r.name}"
        )
        assert _git("-C", str(r), "branch", "--show-current").strip() == "main"
    # the brief kept at home names both checkouts and where they are
    brief = (d / "prompts" / "hs1.md").read_text()
    assert "**Your worktrees**" in brief and where in brief, brief
    for r in (app, lib):
        assert f"`{r.name}/`: a git worktree of {r}, on branch `feat/hs1`" in brief
    row = next(r for r in json.loads(looop(d, "ls", "-a", "--json").stdout) if r["id"] == "hs1")
    assert row["branch"] == "feat/hs1" and row["host"] == "h1", row
    diff = looop(d, "worker", "diff", "hs1")  # from the host, each under its folder
    assert diff.returncode == 0, diff.stderr
    assert "a/app/README" in diff.stdout and "a/lib/README" in diff.stdout, diff.stdout
    # its checkouts are on the host: review reads both there (tests/hosts/test_host_land.py)
    done = looop(d, "review", "hs1", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in json.loads(done.stdout)["repos"]] == ["app", "lib"]
    assert looop(d, "kill", "hs1").returncode == 0


@pytest.mark.timeout(240)
def test_a_sandboxed_worker_of_two_repos_on_a_host_commits_in_each_and_nothing_else(
    home: Home, tmp_path: Path
) -> None:
    h2 = _host(home, "h2")
    data = _second_home(tmp_path, home.lab, [h2], "on")
    app, lib = host_repo(h2, "app"), host_repo(h2, "lib")
    script = _script(h2, app)
    start = looop(
        data, "worker", "start", "hs2", "x", "--host", "h2",
        "--repo", str(app), "--repo", str(lib), "--command", f"bash {script} # {{{{prompt_file}}}}",
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    _wait_gone(data, "hs2")
    log = looop(data, "log", "hs2").stdout
    got = _said(log)
    assert got["commit_app"] == "ok" and got["commit_lib"] == "ok", log
    assert got["main"] == "no", log  # a main checkout: read-only
    assert got["at"].endswith(".work/checkouts/hs2"), log
    # the folder holding the checkouts is in the hidden satellite: a write there lands nowhere
    assert not (Path(got["at"]) / "stray.txt").exists()
    for r in (app, lib):
        assert _git("-C", str(r), "log", "-1", "--format=%s", "looop/hs2").strip() == (
            f"worker in {r.name}"
        )
        assert (r / "README").read_text() == "app\n"


@pytest.mark.timeout(120)
def test_a_url_among_several_or_a_missing_repo_is_one_line_and_nothing_starts(
    home: Home,
) -> None:
    d = home.data
    h1 = _host(home, "h1")
    app = host_repo(h1, "app")
    cases = [
        (["--repo", "https://example.com/lib.git"], "is a URL — clone it there first"),
        (["--repo", "/nowhere/lib"], "does not exist"),
        (["--repo", str(app)], "give each repository once"),
    ]
    for i, (more, said) in enumerate(cases):
        wid = f"hsbad{i}"
        done = looop(
            d, "worker", "start", wid, "x", "--host", "h1", "--no-sandbox", "--repo", str(app),
            *more, "--command", "cat # {{prompt_file}}",
        )  # fmt: skip
        err = done.stderr.strip()
        assert done.returncode != 0 and said in err and "\n" not in err, err
        assert not (d / "hosts" / "workers" / f"{wid}.json").exists()
    sat = h1.home / ".local/share/looop/satellite"
    assert not list(sat.glob("*.work/checkouts/hsbad*"))


RESUMED = r"""
echo "again_at=$(pwd) again_ws=$LOOOP_WORKSPACE"
echo RESUMED
"""


@pytest.mark.timeout(180)
def test_a_far_worker_of_two_repos_resumes_in_its_workspace_there(
    home: Home, tmp_path: Path
) -> None:
    """`looop restart ID` of an ended worker of two repos on a host resumes its conversation
    there, in the folder holding both checkouts (as it started), not in its first repo."""
    h1 = _host(home, "h1")
    app, lib = host_repo(h1, "app"), host_repo(h1, "lib")
    script = _script(h1, app)
    resumed = h1.home / "resumed.sh"
    resumed.write_text(RESUMED)
    subprocess.run(["chown", f"{h1.user}:{h1.user}", str(resumed)], check=True)
    runner = {
        "worker": f"bash {script} # {{{{prompt_file}}}} {{{{session_id}}}}",
        "resume": f"bash {resumed}; cat # {{{{prompt_file}}}} {{{{session_id}}}}",
    }
    data = _second_home(tmp_path, home.lab, [h1], "off", runners={"sh": runner})
    start = looop(
        data, "worker", "start", "hs3", "x", "--host", "h1",
        "--repo", str(app), "--repo", str(lib),
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    _wait_gone(data, "hs3")
    at = _said(looop(data, "log", "hs3").stdout)["at"]
    again = looop(data, "restart", "hs3")
    assert again.returncode == 0, again.stderr
    assert looop(data, "expect", "hs3", "RESUMED", "--timeout", "30s").returncode == 0
    got = _said(looop(data, "log", "hs3").stdout)
    assert got["again_at"] == at and got["again_ws"] == at, got
    looop(data, "kill", "hs3")
