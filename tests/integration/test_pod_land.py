"""A Kubernetes pod worker's change reviewed, commented on and landed from its home, with real
git throughout: the stand-in cluster's kubelet runs the pod's clone step (an init container:
`git clone` of a bare repository served by `git daemon` on 127.0.0.1) and then its `looop pod
run`; the worker commits in its clone; the home reads the change by an exec of `looop pod
change` in the pod, sends a comment round through the pod's way home, and lands the change
— the bare repository's base then holds the commit. Bad inputs are each one line with nothing
landed; a pod whose Job ended is refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from looop.act.executor import execute
from looop.act.parse import decision_from_obj
from looop.core.context import Ctx
from tests import helpers
from tests.helpers import clean_env, until
from tests.unit.remote.kube.fakecluster import LOOOP, FakeCluster

pytestmark = [
    pytest.mark.process,
    # a whole review-to-land story of ~40 CLI calls: ~65 s of CPU quiet, 4x that on a suite's
    # five workers sharing two cores
    pytest.mark.timeout(480),
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@x", "-c", "init.defaultBranch=main"]

# the worker: in each clone (its start folder, or each beside the others) commits one line on
# the branch it was cloned on, then reads what it is told
AGENT = """#!/bin/sh
for d in . */; do
  [ -d "$d/.git" ] || continue
  (cd "$d" && git config user.name w && git config user.email w@x &&
   printf 'three\\n' >> app.py && git commit -qam "add three") || exit 1
done
echo committed
while :; do
  got=$("$LOOOP_BIN" told)
  if [ -n "$got" ]; then printf 'TOLD[%s]\\n' "$got"; fi
  sleep 0.2
done
"""

RECORDER = """#!/bin/sh
if [ -e "{out}.fail" ]; then echo "gh: not logged in" >&2; exit 1; fi
for a in "$@"; do printf '%s\\n' "$a"; done > "{out}"
echo https://forge.example/pr/7
"""


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([*GIT, *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"git {args}: {done.stderr}"
    return done.stdout.strip()


def _bare(srv: Path, name: str, lines: list[str]) -> Path:
    work = srv.parent / f"{name}-seed"
    _git("init", "-q", str(work))
    (work / "app.py").write_text("".join(f"{ln}\n" for ln in lines))
    _git("add", "app.py", cwd=work)
    _git("commit", "-qm", "first", cwd=work)
    bare = srv / f"{name}.git"
    _git("clone", "-q", "--bare", str(work), str(bare))
    return bare


def _push_to(bare: Path, lines: list[str]) -> str:
    """Someone else moves `main` at the origin: app.py made `lines`; the new commit."""
    work = bare.parent.parent / f"other-{time.monotonic_ns()}"
    _git("clone", "-q", str(bare), str(work))
    (work / "app.py").write_text("".join(f"{ln}\n" for ln in lines))
    _git("commit", "-qam", "theirs", cwd=work)
    _git("push", "-q", "origin", "main", cwd=work)
    return _git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """Bare repositories under a folder `git daemon` serves (pushes allowed): the folder and
    its git:// URL's start."""
    root = tmp_path / "srv"
    root.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={root}", "--export-all", "--enable=receive-pack", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def listening() -> bool:
        with socket.socket() as c:
            return c.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert until(listening, 10, 0.05), "git daemon did not listen"
        yield root, f"git://127.0.0.1:{port}"
    finally:
        daemon.terminate()
        daemon.wait(10)


class Home:
    def __init__(self, tmp: Path, cluster: FakeCluster) -> None:
        self.data = tmp / "data"
        self.data.mkdir(exist_ok=True)  # the `ctx` fixture's data dir too
        self.cluster = cluster
        self.env = clean_env(tmp / "user", self.data)
        self.web: subprocess.Popen[str] | None = None
        self.agent = tmp / "agent.sh"
        self.base = self.token = ""

    def looop(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOOOP, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def ok(self, *args: str) -> str:
        r = self.looop(*args)
        assert r.returncode == 0, f"looop {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def refused(self, *args: str) -> str:
        """The one line a refusal says."""
        r = self.looop(*args)
        assert r.returncode != 0, f"looop {' '.join(args)} was not refused: {r.stdout}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        return lines[0]

    def config(self, **more: object) -> None:
        cfg = {
            "default": "agent",
            "runners": {"agent": {"tick": "true", "worker": f"{self.agent} {{{{prompt_file}}}}"}},
            "max_daily_usd": 0,
            **more,
        }
        (self.data / "config.json").write_text(json.dumps(cfg))

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [LOOOP, "web", "--port", "0"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.web.stdout is not None
        line = self.web.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:"), line
        self.base, _, self.token = line.partition("/?token=")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """The web API as a script calls it (Bearer, no Origin)."""
        req = urllib.request.Request(
            f"{self.base}/api/v1{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop_web(self) -> None:
        if self.web is not None and self.web.poll() is None:
            os.killpg(self.web.pid, signal.SIGTERM)
            self.web.communicate(timeout=20)

    def start(self, wid: str, *repos: str) -> None:
        flags = [w for url in repos for w in ("--repo", url)]
        self.ok("worker", "start", wid, "change app.py", "--host", "k1", *flags)
        assert until(lambda: "committed" in self.looop("log", wid).stdout, 60, 0.2), self.looop(
            "log", wid
        ).stdout

    def journal(self) -> str:
        return (self.data / "journal.md").read_text()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    (tmp_path / "cluster").mkdir()
    cluster = FakeCluster(tmp_path / "cluster", inits=True)
    cluster.up()
    h = Home(tmp_path, cluster)
    h.agent.write_text(AGENT)
    h.agent.chmod(h.agent.stat().st_mode | stat.S_IXUSR)
    h.config()
    h.ok("host", "add", "k1", "k8s://stand-in/team-a", "--image", "ghcr.io/example/looop:t",
         "--kubeconfig", str(cluster.kubeconfig))  # fmt: skip
    h.start_web()  # the pod's way home: its worker reads its review rounds through it
    try:
        yield h
    finally:
        h.looop("down")
        h.stop_web()
        cluster.close()


def test_a_pod_workers_change_is_reviewed_commented_on_and_landed_from_home(
    ctx: Ctx, home: Home, srv: tuple[Path, str], tmp_path: Path
) -> None:
    h, (root, url) = home, srv
    bare = _bare(root, "app", ["one", "two"])
    base = _git("--git-dir", str(bare), "rev-parse", "main")
    h.start("w1", f"{url}/app.git")

    r = json.loads(h.ok("review", "w1", "--json"))
    assert r["base"] == base and r["branch"] == "main" and r["repo"].endswith("workspace/repo")
    assert [c["subject"] for c in r["commits"]] == ["add three"]
    (f,) = r["files"]
    assert (f["path"], f["added"], f["removed"]) == ("app.py", 1, 0)
    assert "+three" in f["hunks"][0]["lines"]
    assert "+three" in h.ok("worker", "diff", "w1")
    assert "app.py | +1 -0" in h.ok("worker", "diff", "w1", "--stat")

    # the decider proposes landing it (an ask carrying the change read in the pod)
    move = {"action": "propose_land", "id": "w1", "reason": "done"}
    assert "propose-land w1" in execute(ctx, ctx.knobs(), decision_from_obj(move)).journal
    proposal = json.loads(h.ok("review", "w1", "--json"))["proposal"]
    assert proposal is not None and proposal["reason"] == "done", proposal

    # the web's review panel reads the same, through the worker's Backend
    code, web = h.api("GET", "/workers/w1/review")
    assert code == 200 and web["tip"] == r["tip"] and web["files"][0]["path"] == "app.py", web

    # a comment on FILE:LINE takes its lines from the pod; the round reaches the worker
    h.ok("review", "w1", "--comment", "app.py:3", "why three?")
    code, got = h.api("POST", "/workers/w1/review/comments", {"text": "and 2?", "file": "app.py",
                                                               "line": 2})  # fmt: skip
    assert code == 200 and got["comments"] == 2, got
    (rd,) = json.loads(h.ok("review", "w1", "--json"))["rounds"]
    assert rd["comments"][0]["context"] == ["     1 | one", "     2 | two", ">    3 | three"]
    assert rd["comments"][1]["context"][1] == ">    2 | two"
    assert "bad.py is not part of" in h.refused("review", "w1", "--comment", "bad.py:1", "x")
    assert "sent to worker" in h.ok("review", "w1", "--send")
    assert until(lambda: "why three?" in h.looop("log", "w1").stdout, 60, 0.2)

    # bad inputs, each one line, the origin's main untouched
    gone = h.refused("land", "w1", "--into", "nope")
    assert "the base branch nope is gone from" in gone, gone
    assert "{repo}" in h.refused("land", "w1", "--pr")  # the home has no checkout to run it in
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    said = h.refused("land", "w1", "--ff")
    assert "was refused: main is frozen" in said and "nothing landed" in said, said
    hook.unlink()
    assert _git("--git-dir", str(bare), "rev-parse", "main") == base

    # a pull request: the branch pushed from the pod, the command run here with its argv
    argv_file = tmp_path / "argv.txt"
    gh = tmp_path / "bin" / "gh"
    gh.parent.mkdir()
    gh.write_text(RECORDER.format(out=argv_file))
    gh.chmod(0o755)
    h.env["PATH"] = f"{gh.parent}:{h.env['PATH']}"
    pr = "gh pr create --repo {repo} --head {branch} --base {base} --title {title}"
    h.config(land={"pr_command": pr})
    Path(f"{argv_file}.fail").touch()  # the forge's CLI fails: the pushed branch taken back
    said = h.refused("land", "w1", "--pr")
    assert "gh failed (exit 1): gh: not logged in; the pushed branch was taken back" in said
    heads = _git("--git-dir", str(bare), "for-each-ref", "--format=%(refname)", "refs/heads")
    assert heads.split() == ["refs/heads/main"]
    Path(f"{argv_file}.fail").unlink()
    out = h.ok("land", "w1", "--pr")
    assert "https://forge.example/pr/7" in out, out
    tip = r["tip"]
    assert argv_file.read_text().splitlines() == [
        "pr", "create", "--repo", f"{url}/app.git", "--head", "looop/w1", "--base", "main",
        "--title", "add three",
    ]  # fmt: skip
    assert _git("--git-dir", str(bare), "rev-parse", "looop/w1") == tip

    # landed: the origin's main now holds the worker's commit, journaled with the pod
    out = h.ok("land", "w1", "--ff")
    assert f"fast-forwarded into main at {tip[:12]}" in out, out
    assert _git("--git-dir", str(bare), "rev-parse", "main") == tip
    journal = h.journal()
    assert "user (cli): landed worker w1 in pod job/" in journal and tip[:12] in journal
    # the proposal answered: an event beside the journal (looop journal --all)
    assert f"answered the landing proposal {proposal['ask']}" in helpers.said(h.data)
    assert "nothing to land" in h.refused("land", "w1")

    # its Job ended: no checkouts any more, each step refused in one line
    h.ok("kill", "w1")
    for args in (
        ("review", "w1"),
        ("review", "w1", "--comment-all", "more", "--send"),
        ("land", "w1"),
        ("worker", "diff", "w1"),
    ):
        said = h.refused(*args)
        assert "pod has ended" in said and "wherever it pushed it" in said, said
    assert "not-a-worker" in h.refused("review", "not-a-worker")


def test_a_change_across_two_repositories_lands_each_and_a_conflict_lands_none(
    home: Home, srv: tuple[Path, str]
) -> None:
    h, (root, url) = home, srv
    a, b = _bare(root, "a", ["one", "two"]), _bare(root, "b", ["one", "two"])
    h.start("w2", f"{url}/a.git", f"{url}/b.git")
    r = json.loads(h.ok("review", "w2", "--json"))
    assert [(x["name"], [f["path"] for f in x["files"]]) for x in r["repos"]] == [
        ("a", ["app.py"]),
        ("b", ["app.py"]),
    ]
    text = h.ok("review", "w2")
    assert "2 repositories" in text and "── a/app.py" in text and "── b/app.py" in text
    h.ok("review", "w2", "--comment", "b/app.py:3", "and here?")
    (rd,) = json.loads(h.ok("review", "w2", "--json"))["rounds"]
    assert (
        rd["comments"][0]["file"] == "b/app.py" and ">    3 | three" in rd["comments"][0]["context"]
    )

    a_main = _push_to(a, ["one", "two", "other"])  # a conflict with the worker's line
    b_main = _push_to(b, ["ONE", "two"])  # b moved apart from it
    assert "cannot fast-forward" in h.refused("land", "w2", "--ff")
    said = h.refused("land", "w2", "--merge")
    assert said.startswith("looop: repo a:") and "conflicts with main in app.py" in said, said
    assert "nothing landed in any repository" in said
    # the conflict goes back to the worker as the refusal says, a round told to its pod
    back = said.split("`")[1].removeprefix("looop ").split(" --comment-all ")
    assert back[0] == "review w2", said
    comment = back[1].removesuffix(" --send").strip("'")
    assert "sent to worker" in h.ok("review", "w2", "--comment-all", comment, "--send")
    assert until(lambda: "conflicts in app.py" in h.looop("log", "w2").stdout, 60, 0.2)
    assert _git("--git-dir", str(a), "rev-parse", "main") == a_main
    assert _git("--git-dir", str(b), "rev-parse", "main") == b_main

    out = h.ok("land", "w2", "--merge", "--repo", "b")
    assert "repo b: landed worker w2: main merged into main" in out, out
    b_tip = r["repos"][1]["tip"]
    assert _git("--git-dir", str(b), "rev-parse", "main^1", "main^2").split() == [b_main, b_tip]
    assert _git("--git-dir", str(b), "show", "main:app.py").split() == ["ONE", "two", "three"]
    assert _git("--git-dir", str(a), "rev-parse", "main") == a_main
    assert "repo b (" in h.journal()


COUNTING_GH = """#!/bin/sh
n=$(ls "{out}" | grep -c argv); n=$((n + 1))
for a in "$@"; do printf '%s\\n' "$a"; done > "{out}/$n.argv"
prev=""; for a in "$@"; do [ "$prev" = "--body-file" ] && cp "$a" "{out}/$n.body"; prev="$a"; done
[ "$2" = "create" ] && echo "https://forge.example/pr/$n"
exit 0
"""


def test_pull_requests_across_two_repositories_each_link_the_other(
    home: Home, srv: tuple[Path, str], tmp_path: Path
) -> None:
    h, (root, url) = home, srv
    a, b = _bare(root, "a", ["one", "two"]), _bare(root, "b", ["one", "two"])
    h.start("w3", f"{url}/a.git", f"{url}/b.git")
    calls = tmp_path / "gh-calls"
    calls.mkdir()
    gh = tmp_path / "bin" / "gh"
    gh.parent.mkdir()
    gh.write_text(COUNTING_GH.format(out=calls))
    gh.chmod(0o755)
    h.env["PATH"] = f"{gh.parent}:{h.env['PATH']}"
    pr = "gh pr create --repo {repo} --head {branch} --base {base} --title {title}"
    h.config(land={"pr_command": pr + " --body-file {body}"})
    h.ok("review", "w3")  # what a plain `looop land` approves
    out = h.ok("land", "w3", "--pr")
    assert "https://forge.example/pr/1" in out and "https://forge.example/pr/2" in out, out
    argvs = [(calls / f"{n}.argv").read_text().splitlines() for n in (1, 2, 3)]
    assert [x[:2] for x in argvs] == [["pr", "create"], ["pr", "create"], ["pr", "edit"]]
    assert argvs[0][3] == f"{url}/a.git" and argvs[1][3] == f"{url}/b.git"
    # the first request, opened before the second had an address, is told it afterwards
    assert argvs[2][2] == "https://forge.example/pr/1"
    told = (calls / "3.body").read_text()
    assert f"`b` ({url}/b.git), branch `looop/w3`: https://forge.example/pr/2" in told, told
    assert "https://forge.example/pr/2" not in (calls / "1.body").read_text()
    assert "https://forge.example/pr/1" in (calls / "2.body").read_text()
    for bare in (a, b):  # each branch pushed, neither base touched
        assert _git("--git-dir", str(bare), "rev-parse", "looop/w3")
    assert not (h.data / "reviews" / "w3.a.pr.md").exists()  # no body file outlives it
