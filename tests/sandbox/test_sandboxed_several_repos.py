"""A sandboxed worker of several repositories (the real srt, bubblewrap and git): `worker start
--repo A --repo B --sandbox` gives it one worktree of each side by side; from inside it commits
in both, on its branch, while the folder that holds them, each main checkout, each main repo's
config and other branches stay read-only. Its box's write list gains each checkout (and what
git needs to commit from it) and nothing else; its verify runs in the same walls."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from looop.home.clock import SystemClock
from looop.home.paths import Paths
from looop.sessions.client import wait
from tests.sandbox.test_sandboxed_verify import Home
from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(150)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.invalid")
    (path / "README").write_text(f"{path.name}\n")
    git(path, "add", "README")
    git(path, "commit", "-qm", "start")
    git(path, "branch", "keep")  # a branch the worker must not move
    return path


PROBES = r"""
r="$LOOOP_REPORTS_DIR/results-$LOOOP_SESSION_ID"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
t cwd_is_workspace test "$PWD" = "$LOOOP_WORKSPACE"
for d in app lib; do
  t "edit_$d" sh -c 'echo "inside $0" >> "$0/README"' "$d"
  t "commit_$d" git -C "$d" commit -qam "from inside $d"
done
t workspace_top sh -c 'echo x > "$LOOOP_WORKSPACE/stray.txt"'
t main_app sh -c 'echo pwned >> "$0/README"' "$APP"
t main_lib sh -c 'echo pwned >> "$0/README"' "$LIB"
t config_lib sh -c 'echo "[core] fsmonitor = evil" >> "$0/.git/config"' "$LIB"
t move_keep git -C lib update-ref refs/heads/keep HEAD
t hooks_app sh -c 'echo evil > "$0/.git/hooks/post-commit"' "$APP"
echo end >> "$r"
"""


def results(box: Box, wid: str) -> dict[str, str]:
    out: dict[str, str] = {}
    path = Paths.at(box.data).rooms / wid / "reports" / f"results-{wid}"
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def test_a_sandboxed_worker_of_two_repos_commits_in_each_and_writes_nothing_else(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    app, lib = make_repo(tmp_path / "app"), make_repo(tmp_path / "lib")
    box.env["APP"], box.env["LIB"] = str(app), str(lib)
    tips = {r: git(r, "rev-parse", "main", "keep") for r in (app, lib)}
    box.start("w1", PROBES, "--repo", str(app), "--repo", str(lib))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = results(box, "w1")
    assert got.pop("end") == ""
    for key in ("cwd_is_workspace", "edit_app", "commit_app", "edit_lib", "commit_lib"):
        assert got.pop(key) == "ok", (key, box.looop("log", "w1").stdout)
    assert got == dict.fromkeys(got, "no"), got

    home = Paths.at(box.data).checkouts / "w1"
    for r in (app, lib):  # each commit on its branch, seen from outside; nothing else moved
        assert git(r, "log", "-1", "--format=%s", "looop/w1").strip() == f"from inside {r.name}"
        assert git(r, "rev-parse", "main", "keep") == tips[r]
        assert (r / "README").read_text() == f"{r.name}\n"
        assert "fsmonitor" not in (r / ".git" / "config").read_text()
        git(r, "fsck", "--no-progress")
    assert not (home / "stray.txt").exists()
    assert not (app / ".git" / "hooks" / "post-commit").exists()

    # the box's write list: each checkout and its git parts, its own room and its runner's
    # state — never the folder that holds the checkouts, nor a main checkout
    conf = json.loads((Paths.at(box.data).sandbox / "w1" / "srt.json").read_text())
    write = set(conf["filesystem"]["allowWrite"])
    git_parts = set()
    for r in (app, lib):
        common = r / ".git"
        admin = Path(git(home / r.name, "rev-parse", "--absolute-git-dir").strip())
        git_parts |= {
            str(home / r.name),
            str(admin),
            str(common / "objects"),
            str(common / "refs" / "heads" / "looop"),
            str(common / "logs" / "refs" / "heads" / "looop"),
        }
    assert git_parts <= write, write
    room = str(Paths.at(box.data).rooms / "w1")
    rest = {w for w in write - git_parts if not w.startswith(room + os.sep)}
    assert all(w.startswith(str(box.home) + os.sep) for w in rest), rest  # runner state
    assert str(home) not in write and str(app) not in write and str(lib) not in write

    # review shows one change across both
    review = json.loads(box.looop("review", "w1", "--json").stdout)
    assert [c["name"] for c in review["repos"]] == ["app", "lib"], review
    assert all(c["commits"] for c in review["repos"]), review


def test_its_verify_runs_in_the_walls_of_both_checkouts(tmp_path: Path, srt: Path) -> None:
    """A human's verify of that worker runs in its box: it writes each checkout, never a
    main checkout."""
    box = Home(tmp_path, srt)
    app, lib = make_repo(tmp_path / "app"), make_repo(tmp_path / "lib")
    home = Paths.at(box.data).checkouts / "w2"
    verify = (
        f"touch {home}/app/v.txt {home}/lib/v.txt && "
        f"if touch {app}/v.txt 2>/dev/null || touch {home}/v.txt 2>/dev/null; then exit 3; fi"
    )
    done = box.looop(
        "worker", "start", "w2", "go", "--command", "true # {{prompt_file}}",
        "--repo", str(app), "--repo", str(lib), "--verify", verify,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert wait(box.data, "w2", 60, SystemClock()) == 0
    ran = box.looop("tick", "--force")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert box.result("w2")["pass"] is True, box.result("w2")
    assert (home / "app" / "v.txt").exists() and (home / "lib" / "v.txt").exists()
    assert not (app / "v.txt").exists() and not (home / "v.txt").exists()


RESUMED = r"""
r="$LOOOP_REPORTS_DIR/resumed"
{ echo "at=$PWD ws=$LOOOP_WORKSPACE"
  for d in app lib; do
    if git -C "$d" commit -q --allow-empty -m "after review $d"
    then echo "$d=ok"; else echo "$d=no"; fi
  done
  if echo x >> "$APP/README"; then echo main=ok; else echo main=no; fi
} > "$r" 2>&1
"""


def test_comments_sent_to_it_resume_it_in_the_same_folder_and_walls(
    tmp_path: Path, srt: Path
) -> None:
    """The reviewer sends comments to the ended worker: it is resumed on its conversation in
    the folder holding both checkouts, sandboxed as it started, and commits in each again."""
    box = Box(tmp_path, srt, "on")
    app, lib = make_repo(tmp_path / "app"), make_repo(tmp_path / "lib")
    box.env["APP"] = str(app)
    resumed = box.home / "resumed.sh"
    resumed.write_text(RESUMED)
    cfg = json.loads((box.data / "config.json").read_text())
    cfg["runners"]["claude"]["resume"] = f"bash {resumed} # {{{{prompt_file}}}} {{{{session_id}}}}"
    (box.data / "config.json").write_text(json.dumps(cfg))
    start = box.looop(
        "worker", "start", "w3", "go", "--repo", str(app), "--repo", str(lib),
        "--command", "true # {{prompt_file}} {{session_id}}",  # a conversation to resume
    )  # fmt: skip
    assert start.returncode == 0, start.stderr
    assert box.wait("w3") == 0, box.looop("log", "w3").stdout
    sent = box.looop("review", "w3", "--comment-all", "one more commit each", "--send")
    assert sent.returncode == 0, sent.stderr
    assert box.wait("w3") == 0, box.looop("log", "w3").stdout
    home = Paths.at(box.data).checkouts / "w3"
    got = (Paths.at(box.data).rooms / "w3" / "reports" / "resumed").read_text()
    assert f"at={home} ws={home}" in got, got
    assert "app=ok" in got and "lib=ok" in got and "main=no" in got, got
    for r in (app, lib):
        assert git(r, "log", "-1", "--format=%s", "looop/w3").strip() == f"after review {r.name}"
    assert (app / "README").read_text() == "app\n"
