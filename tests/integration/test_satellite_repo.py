"""The host end of a remote worker's checkout, driven as the home drives it (`looop satellite
KEY spawn|verify`, JSON in and out) in a HOME of the test's own: a worktree of a repository
on the host, a clone of a URL (served by `git daemon` on 127.0.0.1), the last clone of an id
kept while it holds commits its remote lacks, and a verify that waits for its worker."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.home.paths import Paths
from looop.remote.ssh.link import PROTOCOL

LOOOP = Path(sys.executable).parent / "looop"
KEY = "0123456789abcdef"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@x"]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _satellite(env: dict[str, str], op: str, req: dict[str, object]) -> dict[str, object]:
    done = subprocess.run(
        [str(LOOOP), "satellite", KEY, op],
        input=json.dumps({"v": PROTOCOL, **req}),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert isinstance(out, dict), out
    return out


def _spawn(env: dict[str, str], sid: str, line: str, **more: object) -> dict[str, object]:
    req = {"id": sid, "line": line, "prompt": "TASK\n", "contract": "# C\n- a rule\n\n---\n\n"}
    return _satellite(env, "spawn", {**req, "env": {}, **more})


def _log(env: dict[str, str], sid: str) -> str:
    assert _satellite(env, "wait", {"id": sid, "timeout": 20}).get("code") is not None
    return str(_satellite(env, "log", {"id": sid})["text"])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C"}


def _repo(at: Path) -> Path:
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(at)], check=True)
    subprocess.run(
        [*GIT, "-C", str(at), "commit", "-q", "--allow-empty", "-m", "first"], check=True
    )
    return at


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    srv = tmp_path / "srv"
    srv.mkdir()
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(_repo(tmp_path / "src")), str(srv / "a.git")],
        check=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
         f"--base-path={srv}", "--export-all", "--enable=receive-pack", str(srv)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with socket.socket() as c:
                if c.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/a.git"
    finally:
        daemon.terminate()
        daemon.wait(10)


@pytest.mark.timeout(120)
def test_a_path_repo_gets_a_worktree_and_its_note(env: dict[str, str], tmp_path: Path) -> None:
    repo = _repo(tmp_path / "app")
    line = "sh -c 'pwd; git branch --show-current; echo \"R=$LOOOP_REPORTS_DIR\"'"
    got = _spawn(env, "p1", line, repo=str(repo), branch="b1")
    tree = got["trees"][0]
    assert isinstance(tree, dict) and tree["branch"] == "b1" and tree["repo"] == str(repo)
    text = _log(env, "p1")
    assert tree["path"] in text and "b1" in text, text
    sat = Path(env["HOME"]) / ".local/share/looop/satellite" / KEY
    assert f"R={sat / 'reports'}" in text and (sat / "reports").is_dir()  # the note's reports
    brief = (sat / "prompts" / "p1.md").read_text()
    assert brief.startswith("# C\n- a rule\n- **Your worktree**") and brief.endswith("TASK\n")
    # a second start of the id while its branch's checkout holds work: one line, nothing made
    (Path(str(tree["path"])) / "new.txt").write_text("x")
    again = _spawn(env, "p1", "true", repo=str(repo), branch="b1")
    assert "holds uncommitted work" in str(again.get("error")) and "\n" not in str(again["error"])


@pytest.mark.timeout(120)
def test_a_url_is_cloned_and_a_clone_with_unpushed_commits_is_kept(
    env: dict[str, str], url: str
) -> None:
    got = _spawn(env, "c1", "sh -c 'git branch --show-current; git log -1 --format=%s'", repo=url)
    tree = got["trees"][0]
    assert isinstance(tree, dict) and tree["origin"] == url and tree["branch"] == "looop/c1"
    assert _log(env, "c1").split() == ["looop/c1", "first"]
    where = str(tree["path"])
    subprocess.run([*GIT, "-C", where, "commit", "-q", "--allow-empty", "-m", "mine"], check=True)
    kept = _spawn(env, "c1", "true", repo=url)
    assert "commits not pushed" in str(kept.get("error")), kept
    assert (Path(where) / ".git").is_dir()  # nothing removed
    subprocess.run([*GIT, "-C", where, "push", "-q", "origin", "looop/c1"], check=True)
    fresh = _spawn(env, "c1", "sh -c 'git log -1 --format=%s'", repo=url)  # pushed: replaced
    assert "trees" in fresh and "mine" in _log(env, "c1")  # the remote's branch, tracked again


@pytest.mark.timeout(120)
def test_bad_checkouts_are_one_line_and_leave_nothing(env: dict[str, str], tmp_path: Path) -> None:
    for more, said in (
        ({"repo": str(tmp_path)}, "not a git repository"),
        ({"repo": str(tmp_path / "none")}, "does not exist"),
        ({"repo": "relative/app"}, "not a URL this host can clone"),
        ({"repo": "file:///x"}, "scheme 'file'"),
        ({"repo": "git://127.0.0.1:1/none.git"}, "git clone"),
        ({"branch": "b"}, "a branch needs a repo"),
        ({"repo": str(_repo(tmp_path / "r")), "branch": "a..b"}, "not a usable git branch"),
    ):
        got = _spawn(env, "x1", "true", **more)
        err = str(got.get("error"))
        assert said in err and "\n" not in err, (more, err)
    sat = Path(env["HOME"]) / ".local/share/looop/satellite" / KEY
    assert not (sat / "sessions" / "x1").exists() and not (Paths.at(sat).checkouts / "x1").exists()


@pytest.mark.timeout(120)
def test_a_verify_waits_while_its_worker_lives(env: dict[str, str]) -> None:
    _spawn(env, "v1", "cat")
    runs = {"runs": [{"id": "v1", "cmd": "echo checked"}], "timeout": 10, "wait": 0}
    assert _satellite(env, "verify", runs)["verify"] == {"v1": {"state": "alive"}}
    _satellite(env, "kill", {"id": "v1"})
    got = _satellite(env, "verify", {**runs, "wait": 20})["verify"]
    assert isinstance(got, dict) and got["v1"]["state"] == "done" and got["v1"]["pass"] is True


@pytest.mark.timeout(120)
def test_a_start_whose_asker_went_away_during_the_clone_starts_nothing(
    env: dict[str, str], url: str
) -> None:
    """The home gave up (its ssh ended: our stdout's reader is gone) while the host cloned:
    the home has taken its record back, so the host takes the clone back and starts no one."""
    req = {"v": PROTOCOL, "id": "g1", "line": "cat", "prompt": "", "env": {}, "repo": url}
    proc = subprocess.Popen(
        [str(LOOOP), "satellite", KEY, "spawn"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.close()  # gone before the host could answer
    proc.stdin.write(json.dumps(req).encode())
    proc.stdin.close()
    proc.wait(60)
    sat = Path(env["HOME"]) / ".local/share/looop/satellite" / KEY
    assert not (Paths.at(sat).checkouts / "g1").exists()
    assert not (sat / "worktrees" / "g1.json").exists()
    status = sat / "sessions" / "g1"
    assert not status.exists(), list(status.iterdir()) if status.exists() else None
