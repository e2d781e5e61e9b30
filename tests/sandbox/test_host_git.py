"""git on the host never runs what a sandboxed worker wrote in its worktree (the real srt,
bubblewrap and git): the worker plants, from inside, the things git would run a command for —
a nested repo staged as a gitlink whose own config names core.fsmonitor, a `.gitattributes`
naming drivers the user's config defines — and looop's own git (`worker diff`, the dirtiness
behind sys-sessions, the reaping) runs none of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from looop.home.paths import Paths
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
    from looop.core.context import ctx_for
    from looop.home.clock import SystemClock
    from looop.sense.probes import probe_sessions
    from looop.sessions.state import prune_aged
    from looop.workers.worktree import end_generation

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
    assert (Paths.at(box.data).rooms / "w1" / "reports" / "planted-w1").read_text() == "planted\n"
    tree = Paths.at(box.data).checkouts / "w1"
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


# What a worker writes for git to run a program on: attributes naming the drivers the user's
# config defines, an untracked nested repo (its `.git` a file naming a git dir with an
# fsmonitor), an edit and a new file for the drivers to read.
ATTRIBUTES = r"""set -e
printf 'README filter=evil diff=evil merge=evil\nnew.txt filter=gevil\n' > .gitattributes
echo edited >> README
echo new > new.txt
git init -q --separate-git-dir=.evilgit nest
git -C nest config core.fsmonitor "touch $MARKS/nested-gitfile; :"
echo planted > "$LOOOP_REPORTS_DIR/planted-$LOOOP_SESSION_ID"
"""


def test_drivers_the_users_config_defines_and_its_git_variables_never_run_on_worker_files(
    tmp_path: Path, srt: Path
) -> None:
    """The user's repo and global config define filter and diff drivers, an fsmonitor, a
    pager and an external diff; the user's shell exports GIT_* variables naming more; the
    worker names the drivers in its `.gitattributes`. looop's git runs none of them."""
    box = Box(tmp_path, srt, "on")
    main = make_main(tmp_path / "main")
    marks = tmp_path / "marks"
    marks.mkdir()

    def cmd(name: str, tail: str = ":") -> str:
        return f"touch {marks / name}; {tail}"

    for key, value in {
        "filter.evil.clean": cmd("repo-clean", "cat"),
        "filter.evil.smudge": cmd("repo-smudge", "cat"),
        "filter.evil.required": "true",
        "diff.evil.textconv": cmd("repo-textconv", "cat"),
        "diff.evil.command": cmd("repo-diff-command"),
    }.items():
        git(main, "config", key, value)
    home_config = {
        "core.fsmonitor": cmd("global-fsmonitor"),
        "core.pager": cmd("global-pager", "cat"),
        "pager.diff": cmd("global-pager-diff", "cat"),
        "diff.external": cmd("global-external"),
        "filter.gevil.clean": cmd("global-clean", "cat"),
        "filter.gevil.process": cmd("global-process"),
    }
    xdg = box.home / ".config" / "git" / "config"
    xdg.parent.mkdir(parents=True)
    for key, value in home_config.items():
        git(main, "config", "--file", str(box.home / ".gitconfig"), key, value)
    git(main, "config", "--file", str(xdg), "core.hooksPath", str(tmp_path / "hooks"))
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "post-index-change"):
        (hooks / hook).write_text(f"#!/bin/sh\n{cmd('hook-' + hook)}\n")
        (hooks / hook).chmod(0o755)
    box.env.update(
        MARKS=str(marks),
        GIT_EXTERNAL_DIFF=cmd("env-external-diff"),
        GIT_PAGER=cmd("env-pager", "cat"),
        GIT_CONFIG_PARAMETERS=f"'core.fsmonitor'='{cmd('env-fsmonitor')}'",
        GIT_CONFIG_COUNT="1",
        GIT_CONFIG_KEY_0="filter.gevil.smudge",
        GIT_CONFIG_VALUE_0=cmd("env-smudge", "cat"),
    )
    box.start("w1", ATTRIBUTES, "--repo", str(main))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    assert (Paths.at(box.data).rooms / "w1" / "reports" / "planted-w1").read_text() == "planted\n"
    tree = Paths.at(box.data).checkouts / "w1"
    for stale in marks.iterdir():  # what the worker's own git ran inside (or the start)
        stale.unlink()

    # the traps are live: git as the user runs it there springs them
    naive = {**box.env, "GIT_EXTERNAL_DIFF": ""}
    for args in (("status",), ("diff", "--no-ext-diff", "HEAD")):
        subprocess.run(["git", "-C", str(tree), *args], env=naive, capture_output=True, timeout=30)
    subprocess.run(["git", "-C", str(tree), "diff"], env=box.env, capture_output=True, timeout=30)
    bare = {"PATH": box.env["PATH"], "HOME": str(tmp_path)}  # no config of the user's at all
    nested = ["git", "-C", str(tree / "nest"), "status"]
    subprocess.run(nested, env=bare, capture_output=True, timeout=30)
    sprung = {p.name for p in marks.iterdir()}
    want = {"env-fsmonitor", "repo-clean", "repo-textconv", "repo-diff-command", "nested-gitfile"}
    assert want <= sprung, sprung
    for stale in marks.iterdir():
        stale.unlink()

    diff = host_side(box, "w1")
    assert sorted(p.name for p in marks.iterdir()) == []
    assert "+edited" in diff and "+new" in diff, diff


# Symlinks out of the worktree, committed so the worktree is clean and removed on reaping.
LINKS = r"""set -e
ln -s "$OUTSIDE" out-dir
ln -s "$OUTSIDE/keep.txt" out-file
mkdir deep
ln -s "$OUTSIDE" deep/again
git add out-dir out-file deep/again
git commit -qm links
echo planted > "$LOOOP_REPORTS_DIR/planted-$LOOOP_SESSION_ID"
"""


def test_removing_a_worktree_never_follows_a_symlink_out_of_it(tmp_path: Path, srt: Path) -> None:
    box = Box(tmp_path, srt, "on")
    main = make_main(tmp_path / "main")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    box.env["OUTSIDE"] = str(outside)
    box.start("w1", LINKS, "--repo", str(main))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    assert (Paths.at(box.data).rooms / "w1" / "reports" / "planted-w1").read_text() == "planted\n"
    tree = Paths.at(box.data).checkouts / "w1"
    assert (tree / "out-dir").is_symlink()

    host_side(box, "w1")
    assert not tree.exists()  # clean: removed
    assert (outside / "keep.txt").read_text() == "mine\n"
    assert "links" in git(main, "log", "--oneline", "looop/w1")
