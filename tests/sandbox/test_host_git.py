"""git on the host never runs what a sandboxed worker wrote in its worktree (the real srt,
bubblewrap and git): the worker plants, from inside, the things git would run a command for —
a nested repo staged as a gitlink whose own config names core.fsmonitor, a `.gitattributes`
naming drivers the user's config defines — and looop's own git (`worker diff`, the dirtiness
behind sys-sessions, the reaping) runs none of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.sandbox.test_sandboxed_worker import Box

pytestmark = pytest.mark.timeout(120)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def make_main(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "T")
    git(path, "config", "user.email", "t@t")
    (path / "README").write_text("hello\n")
    git(path, "add", "README")
    git(path, "commit", "-qm", "start")
    return path


# A nested repo in the worktree, its config naming a command as fsmonitor, staged as a
# gitlink: git status / git diff in the worktree recurse into it and run that command.
GITLINK = r"""set -e
mkdir sub
cd sub
git init -q
git -c user.name=w -c user.email=w@w commit -q --allow-empty -m nested
git config core.fsmonitor "touch $MARK; :"
h=$(git rev-parse HEAD)
cd ..
git update-index --add --cacheinfo "160000,$h,sub"
echo planted > "$LOOOP_REPORTS_DIR/planted-$LOOOP_SESSION_ID"
"""


def host_side(box: Box, wid: str) -> str:
    """Every way looop runs git on the host in a worker's worktree: `worker diff`, the
    dirtiness probe behind sys-sessions, and the reaping; `worker diff`'s output."""
    from looop.cli.ctxbuild import ctx_for
    from looop.core.clock import SystemClock
    from looop.sense.probes import probe_sessions
    from looop.sessions import prune_aged
    from looop.workers.launch import end_generation

    diff = box.looop("worker", "diff", wid)
    assert diff.returncode == 0, diff.stderr
    box.looop("worker", "diff", wid, "--stat")
    box.looop("ls")
    ctx = ctx_for(box.env, SystemClock(), None)
    probe_sessions(ctx)
    assert prune_aged(box.data, 0, ctx.clock.now()) == [wid]
    end_generation(ctx, wid)
    return diff.stdout


def test_a_gitlink_to_a_nested_repo_with_an_fsmonitor_never_runs_on_the_host(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    main = make_main(tmp_path / "main")
    mark = tmp_path / "fsmonitor-ran"
    box.env["MARK"] = str(mark)
    box.start("w1", GITLINK, "--repo", str(main))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    assert (box.data / "reports" / "planted-w1").read_text() == "planted\n"
    tree = box.data / "worktrees" / "w1"
    assert not mark.exists()  # inside, the command could not write it

    # the trap is live: git run the usual way in that worktree springs it
    naive = ["git", "--no-optional-locks", "-C", str(tree), "status"]
    subprocess.run(naive, capture_output=True, timeout=30, check=False)
    assert mark.exists()
    mark.unlink()

    diff = host_side(box, "w1")
    assert not mark.exists()
    # the gitlink is still shown (its commit, from the index), and the worktree with the
    # nested repo kept: removing it would take the nested repo's commits with it
    assert "+Subproject commit" in diff, diff
    assert (tree / "sub" / ".git").is_dir()
    kept = (box.data / "events.jsonl").read_text()
    assert "worktree_kept" in kept
