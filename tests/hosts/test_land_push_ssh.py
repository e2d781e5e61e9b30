"""`looop land ID --pr` against a real remote over SSH: a bare repository on a lab host, added
to the user's repository as an ssh:// remote (reached with the lab's key and known_hosts, as
the repository's core.sshCommand or the user's $GIT_SSH_COMMAND says), gets the worker's
branch pushed, and the PR command (a recording stand-in of `gh`: no forge is reachable) is run
with the exact argv. A push the remote refuses (its pre-receive hook) is one line naming what
the remote said: nothing pushed, no PR command run, nothing journaled as landed, and the
landing's WAL record settled. A worker of two repositories lands each over SSH in turn; the
second's remote refusing leaves the first landed, said in that one line with how to go on."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.sessions.client import wait
from tests.helpers import clean_env
from tests.hosts.conftest import LOOOP, Host, Lab
from tests.hosts.repos import git as root_git

pytestmark = pytest.mark.timeout(180)

GH = """#!/usr/bin/env python3
import json, os, sys
rec = {"argv": sys.argv[1:], "cwd": os.getcwd()}
with open(os.environ["GH_RECORD"], "a") as f:
    f.write(json.dumps(rec) + "\\n")
print("https://forge.example/o/app/pull/1")
"""

WORK = """set -e
echo "by $LOOOP_SESSION_ID" >> README
git -c user.name=w -c user.email=w@lab commit -qam 'a line from the worker'
"""


class Land:
    """A user's home: its own HOME and data dir, a repository whose `origin` is a bare
    repository on lab host h1 over ssh://, and `gh` a recording stand-in on PATH."""

    def __init__(self, tmp: Path, lab: Lab, h: Host) -> None:
        self.tmp, self.h = tmp, h
        self.bare = h.home / "forge" / f"app-{os.getpid()}-{tmp.name}.git"
        root_git("init", "-q", "--bare", "-b", "main", str(self.bare))
        subprocess.run(["chown", "-R", f"{h.user}:{h.user}", str(h.home / "forge")], check=True)
        self.url = f"{h.url}{self.bare}"  # ssh://user@addr:port/abs/path
        home, data = tmp / "home", tmp / "data"
        (home / "bin").mkdir(parents=True)
        data.mkdir()
        gh = home / "bin" / "gh"
        gh.write_text(GH.replace("/usr/bin/env python3", sys.executable))
        gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
        self.record = tmp / "gh.jsonl"
        runner = {"tick": "true", "worker": "true {{prompt_file}}"}
        cfg = {"default": "sh", "runners": {"sh": runner}, "sandbox": "off"}
        (data / "config.json").write_text(json.dumps(cfg))
        self.data = data
        self.env = clean_env(home, data, GH_RECORD=str(self.record))
        self.env["PATH"] = f"{home / 'bin'}{os.pathsep}{self.env['PATH']}"
        self.ssh = f"ssh -F {shlex.quote(str(lab.ssh_config))}"
        self.repo = tmp / "app"
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main")
        (self.repo / "README").write_text("app\n")
        self.git("add", "README")
        self.git("-c", "user.name=t", "-c", "user.email=t@lab", "commit", "-qm", "first")
        self.git("remote", "add", "origin", self.url)
        self.git("push", "-q", "origin", "main", ssh=True)

    def git(self, *args: str, ssh: bool = False) -> str:
        env = {**self.env, "GIT_SSH_COMMAND": self.ssh} if ssh else self.env
        done = subprocess.run(
            ["git", "-C", str(self.repo), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def looop(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(LOOOP), *args],
            env={**self.env, **extra},
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def worker(self, wid: str) -> str:
        """Worker `wid` commits a line on its branch and ends; its branch's tip."""
        script = self.tmp / f"{wid}.sh"
        script.write_text(WORK)
        start = self.looop(
            "worker", "start", wid, "go", "--repo", str(self.repo),
            "--command", f"bash {script} # {{{{prompt_file}}}}",
        )  # fmt: skip
        assert start.returncode == 0, start.stderr
        assert wait(self.data, wid, 60, SystemClock()) == 0, self.looop("log", wid).stdout
        assert self.looop("review", wid).returncode == 0  # what a plain land approves
        return self.git("rev-parse", f"looop/{wid}").strip()

    def on_remote(self, branch: str) -> str:
        """The branch's commit in the bare repository on the host ("" when it has none)."""
        done = subprocess.run(
            ["git", "-c", "safe.directory=*", "-C", str(self.bare), "rev-parse", "--verify",
             "--quiet", f"refs/heads/{branch}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return done.stdout.strip()

    def journal(self) -> str:
        path = self.data / "journal.md"
        return path.read_text() if path.exists() else ""


def _h1(lab: Lab) -> Host:
    return next(h for h in lab.hosts if h.name == "h1")


@pytest.mark.parametrize("way", ["core.sshCommand", "GIT_SSH_COMMAND"])
def test_land_pr_pushes_over_ssh_to_a_bare_repo_on_a_host_and_runs_gh_exactly(
    lab: Lab, tmp_path: Path, way: str
) -> None:
    u = Land(tmp_path, lab, _h1(lab))
    tip = u.worker("w1")
    extra: dict[str, str] = {}
    if way == "core.sshCommand":  # the repository's config says how git reaches the host
        u.git("config", "core.sshCommand", u.ssh)
    else:  # the user's shell does
        extra["GIT_SSH_COMMAND"] = u.ssh
    done = u.looop("land", "w1", "--pr", **extra)
    assert done.returncode == 0, done.stderr
    assert "https://forge.example/o/app/pull/1" in done.stdout
    # the branch is on the host's bare repository, at the worker's tip; nothing merged here
    assert u.on_remote("looop/w1") == tip
    assert u.on_remote("main") == u.git("rev-parse", "main").strip()
    assert u.git("rev-parse", "main").strip() != tip
    (rec,) = [json.loads(x) for x in u.record.read_text().splitlines()]
    assert rec["argv"][:-1] == [
        "pr", "create", "--head", "looop/w1", "--base", "main",
        "--title", "a line from the worker", "--body-file",
    ]  # fmt: skip
    assert rec["cwd"] == str(u.repo)
    assert "as pull request" in u.journal() and "pull/1" in u.journal()
    assert not list((u.data / ".wal").glob("*.json"))


def test_a_push_the_remote_refuses_is_one_line_and_lands_nothing(lab: Lab, tmp_path: Path) -> None:
    u = Land(tmp_path, lab, _h1(lab))
    hook = u.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: pushes need a review here' >&2\nexit 1\n")
    hook.chmod(0o755)
    subprocess.run(["chown", f"{u.h.user}:{u.h.user}", str(hook)], check=True)
    u.worker("w2")
    done = u.looop("land", "w2", "--pr", GIT_SSH_COMMAND=u.ssh)
    assert done.returncode == 1, done.stdout
    err = done.stderr.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert "the push of looop/w2 to origin was refused" in err and "nothing landed" in err, err
    # what the remote said, not git's closing boilerplate
    assert "protected: pushes need a review here" in err and "pre-receive hook declined" in err
    assert "repository exists" not in err, err
    assert u.on_remote("looop/w2") == ""  # nothing half-landed on the host
    assert not u.record.exists()  # no PR command ran
    assert "landed worker w2" not in u.journal()
    # the landing's WAL record is settled: none left, and nothing reported interrupted
    assert not list((u.data / ".wal").glob("*.json"))
    again = u.looop("status")
    assert "interrupted" not in again.stdout + again.stderr
    # the hook gone, the same landing goes through (nothing was left to trip it)
    hook.unlink()
    ok = u.looop("land", "w2", "--pr", GIT_SSH_COMMAND=u.ssh)
    assert ok.returncode == 0, ok.stderr
    assert u.on_remote("looop/w2") == u.git("rev-parse", "looop/w2").strip()


WORK_BOTH = """set -e
for d in */; do
  (cd "$d" && echo "by $LOOOP_SESSION_ID" >> README &&
   git -c user.name=w -c user.email=w@lab commit -qam "a line in ${d%/}")
done
"""


def test_a_worker_of_two_repos_lands_each_over_ssh_and_a_refused_one_is_said_and_left(
    lab: Lab, tmp_path: Path
) -> None:
    """Two repositories, each with its bare remote on the host: the first is pushed and its
    request opened; the second's remote refuses, which is one line naming what landed and how
    to go on; with the hook gone, `--pr --repo NAME` lands the one left."""
    h = _h1(lab)
    app = Land(tmp_path, lab, h)
    lib_bare = h.home / "forge" / f"lib-{os.getpid()}-{tmp_path.name}.git"
    root_git("init", "-q", "--bare", "-b", "main", str(lib_bare))
    hook = lib_bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'lib is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    subprocess.run(["chown", "-R", f"{h.user}:{h.user}", str(h.home / "forge")], check=True)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "README").write_text("lib\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "README"],
        ["-c", "user.name=t", "-c", "user.email=t@lab", "commit", "-qm", "readme"],
        ["remote", "add", "origin", f"{h.url}{lib_bare}"],
    ):
        subprocess.run(["git", "-C", str(lib), *args], check=True, capture_output=True, timeout=30)
    script = tmp_path / "both.sh"
    script.write_text(WORK_BOTH)
    start = app.looop(
        "worker", "start", "w3", "go", "--repo", str(app.repo), "--repo", str(lib),
        "--command", f"bash {script} # {{{{prompt_file}}}}",
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    assert wait(app.data, "w3", 60, SystemClock()) == 0, app.looop("log", "w3").stdout
    assert app.looop("review", "w3").returncode == 0
    done = app.looop("land", "w3", "--pr", GIT_SSH_COMMAND=app.ssh)
    err = done.stderr.strip()
    assert done.returncode == 1 and "\n" not in err, err
    assert "repo lib:" in err and "lib is frozen" in err and "landed before it: app" in err, err
    assert "--pr --repo lib" in err, err
    assert app.on_remote("looop/w3") == app.git("rev-parse", "looop/w3").strip()
    assert not (lib_bare / "refs" / "heads" / "looop").exists()
    assert len(app.record.read_text().splitlines()) == 1  # the first request only
    assert not list((app.data / ".wal").glob("*.json"))  # every landing's record settled
    hook.unlink()
    again = app.looop("land", "w3", "--pr", "--repo", "lib", GIT_SSH_COMMAND=app.ssh)
    assert again.returncode == 0, again.stderr
    recs = [json.loads(x) for x in app.record.read_text().splitlines()]
    assert len(recs) == 2 and recs[1]["cwd"] == str(lib), recs
    assert recs[1]["argv"][:4] == ["pr", "create", "--head", "looop/w3"], recs
