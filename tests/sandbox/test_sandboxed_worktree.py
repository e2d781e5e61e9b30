"""A sandboxed worker in its own git worktree (the real srt, bubblewrap and git): it commits on
its branch from inside, and nothing else of the main repo is writable — its checkout, config,
hooks, HEAD, packs, other branches — nor is another worker's worktree readable."""

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


PROBES = r"""
r="$LOOOP_REPORTS_DIR/results-$LOOOP_SESSION_ID"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
M="$MAIN"
t cwd_is_worktree test "$PWD" = "$LOOOP_WORKSPACE"
t edit sh -c 'echo inside >> README'
t commit git commit -qam 'from inside'
t second_commit sh -c 'echo two > two.txt && git add two.txt && git commit -qm two'
t status git status --porcelain
t main_checkout sh -c 'echo pwned >> "$0/README"' "$M"
t main_config sh -c 'echo "[core] fsmonitor = evil" >> "$0/.git/config"' "$M"
t main_hook sh -c 'echo evil > "$0/.git/hooks/post-commit"' "$M"
t main_head sh -c 'echo ref: refs/heads/evil > "$0/.git/HEAD"' "$M"
t main_index sh -c 'echo x >> "$0/.git/index"' "$M"
t main_branch git -C "$M" branch evil
t main_move git update-ref refs/heads/main HEAD
t other_branch git update-ref refs/heads/looop/other HEAD
t pack_delete sh -c 'rm -f "$0"/.git/objects/pack/*' "$M"
t alternates sh -c 'echo /tmp > "$0/.git/objects/info/alternates"' "$M"
A=$(git rev-parse --absolute-git-dir)
t admin_commondir sh -c 'echo /tmp > "$0/commondir"' "$A"
t admin_gitdir sh -c 'echo /tmp/x/.git > "$0/gitdir"' "$A"
t admin_config sh -c 'printf "[core]\n\tfsmonitor = evil\n" > "$0/config.worktree"' "$A"
t gitfile sh -c 'echo "gitdir: /tmp" > .git'
t other_tree_read cat "$LOOOP_DATA_DIR/worktrees/other/README"
t other_tree_write sh -c 'echo forged >> "$0/worktrees/other/README"' "$LOOOP_DATA_DIR"
echo end >> "$r"
"""


def results(box: Box, wid: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (
        (Paths.at(box.data).rooms / wid / "reports" / f"results-{wid}").read_text().splitlines()
    ):
        k, _, v = line.partition("=")
        out[k] = v
    return out


def test_a_sandboxed_worker_commits_in_its_worktree_and_touches_nothing_else(
    tmp_path: Path, srt: Path
) -> None:
    box = Box(tmp_path, srt, "on")
    main = tmp_path / "main repo"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    git(main, "config", "user.name", "Test")
    git(main, "config", "user.email", "test@example.invalid")
    (main / "README").write_text("hello\n")
    git(main, "add", "README")
    git(main, "commit", "-qm", "start")
    git(main, "gc", "-q")  # history in a pack, as in any real clone
    (main / ".git" / "objects" / "info").mkdir(exist_ok=True)
    packs = sorted((main / ".git" / "objects" / "pack").iterdir())
    assert packs
    main_tip = git(main, "rev-parse", "main")
    # another worker with its own worktree and branch, which this one goes after
    other = box.looop(
        "worker",
        "start",
        "other",
        "x",
        "--command",
        "sleep 600 # {{prompt_file}}",
        "--repo",
        str(main),
    )
    assert other.returncode == 0, other.stderr
    other_tip = git(main, "rev-parse", "looop/other")

    box.env["MAIN"] = str(main)
    box.start("w1", PROBES, "--repo", str(main))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    got = results(box, "w1")
    assert got.pop("end") == ""
    for key in ("cwd_is_worktree", "edit", "commit", "second_commit", "status"):
        assert got.pop(key) == "ok", (key, box.looop("log", "w1").stdout)
    # a hidden folder is an empty throwaway inside (srt mounts over it): a write there may
    # "work" and lands nowhere — the real file is checked below
    got.pop("other_tree_write")
    assert got == dict.fromkeys(got, "no"), got

    # its commits are on its branch, as seen from the main repo outside
    log = git(main, "log", "--oneline", "looop/w1")
    assert "from inside" in log and "two" in log
    git(main, "fsck", "--no-progress")  # the repo is whole
    # and nothing else moved
    assert (main / "README").read_text() == "hello\n"
    assert git(main, "rev-parse", "main") == main_tip
    assert git(main, "rev-parse", "looop/other") == other_tip
    assert git(main, "branch", "--list", "evil") == ""
    assert "fsmonitor" not in (main / ".git" / "config").read_text()
    assert not (main / ".git" / "hooks" / "post-commit").exists()
    assert sorted((main / ".git" / "objects" / "pack").iterdir()) == packs
    assert not (main / ".git" / "objects" / "info" / "alternates").exists()
    assert "forged" not in (Paths.at(box.data).checkouts / "other" / "README").read_text()
    # `worker diff` shows what it did
    diff = box.looop("worker", "diff", "w1")
    assert diff.returncode == 0 and "+inside" in diff.stdout and "+two" in diff.stdout
    box.looop("kill", "other")


TAMPER = r"""
admin=$(git rev-parse --absolute-git-dir)
if echo /tmp > "$admin/commondir" 2>/dev/null; then echo planted; else echo refused; fi \
  > "$LOOOP_REPORTS_DIR/tampered-$LOOOP_SESSION_ID"
"""


def test_git_on_the_host_never_runs_what_a_worker_planted_in_its_git_dirs(
    tmp_path: Path, srt: Path
) -> None:
    """A worker cannot repoint its admin folder's `commondir` from inside; planted anyway (a
    git dir whose config runs a command, core.fsmonitor), `worker diff`, sys-sessions and the
    reaping all run git on the host in that worktree, and none of them runs it."""
    from looop.core.context import ctx_for
    from looop.home.clock import SystemClock
    from looop.sense.probes import probe_sessions
    from looop.sessions.state import prune_aged
    from looop.workers.worktree import end_generation

    box = Box(tmp_path, srt, "on")
    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    git(
        main,
        "-c",
        "user.name=T",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "s",
    )
    mark = tmp_path / "planted-command-ran"
    box.start("w1", TAMPER, "--repo", str(main))
    assert box.wait("w1") == 0, box.looop("log", "w1").stdout
    assert (
        Paths.at(box.data).rooms / "w1" / "reports" / "tampered-w1"
    ).read_text() == "refused\n"  # locked inside
    tree = Paths.at(box.data).checkouts / "w1"
    # planted anyway (as if through some other hole): a git dir whose config runs a command
    evil = tmp_path / "evil"
    git(tmp_path, "init", "-q", "--bare", str(evil))
    git(evil, "config", "core.fsmonitor", f"touch {mark}; :")  # ':' takes git's arguments
    admin = Path(git(tree, "rev-parse", "--absolute-git-dir").strip())
    (admin / "commondir").write_text(f"{evil}\n")

    diff = box.looop("worker", "diff", "w1")
    assert diff.returncode == 0, diff.stderr
    ctx = ctx_for(box.env, SystemClock(), None)
    detail = probe_sessions(ctx)["detail"]["workers"]["w1"]
    assert detail["branch"] == "looop/w1" and detail["uncommitted"] is False
    assert not mark.exists()
    # the trap is live: git run the usual way in that worktree springs it
    naive = ["git", "--no-optional-locks", "-C", str(tree), "status"]  # it writes nothing
    subprocess.run(naive, capture_output=True, timeout=30, check=False)
    assert mark.exists()
    mark.unlink()
    # reaping removes the (clean) worktree without springing it
    assert prune_aged(box.data, 0, ctx.clock.now()) == ["w1"]
    end_generation(ctx, "w1")
    assert not mark.exists()
    assert not tree.exists()
    assert "looop/w1" in git(main, "branch", "--list")


# The tool and shell settings srt write-protects, as the main repo has them: these must stay
# read-only inside; the ones the repo lacks must not appear anywhere.
SETTINGS_FILES = (".mcp.json", ".vscode/settings.json", "docs/.bashrc", ".claude/commands/go.md")

# what srt 0.0.83 protects where it starts, and mounts an empty file or folder over if missing
SRT_NAMES = (
    ".gitconfig",
    ".gitmodules",
    ".bashrc",
    ".bash_profile",
    ".zshrc",
    ".zprofile",
    ".profile",
    ".ripgreprc",
    ".mcp.json",
    ".vscode",
    ".idea",
    ".claude",
)

LIVE = r"""
r="$LOOOP_REPORTS_DIR/live-$LOOOP_SESSION_ID"
t() {
  k=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$k=ok" >> "$r"; else echo "$k=no" >> "$r"; fi
}
t cwd_is_worktree test "$PWD" = "$LOOOP_WORKSPACE"
echo "inside_ls=$(ls -A | tr '\n' ' ')" >> "$r"
echo "inside_status=$(git status --porcelain --untracked-files=all | tr '\n' ' ')" >> "$r"
git add -A
echo "inside_staged=$(git diff --cached --name-only | tr '\n' ' ')" >> "$r"
t write_mcp sh -c 'echo evil >> .mcp.json'
t write_vscode sh -c 'echo evil >> .vscode/settings.json'
t write_nested_rc sh -c 'echo evil >> docs/.bashrc'
t write_command sh -c 'echo evil >> .claude/commands/go.md'
t write_code sh -c 'echo ok >> README'
git checkout -q -- README
echo "ready" >> "$r"
echo LIVE-AND-WAITING
exec sleep 600
"""


def test_srts_placeholders_never_land_in_a_sandboxed_workers_worktree(
    tmp_path: Path, srt: Path
) -> None:
    """srt mounts empty files over the shell and tool settings missing where it starts; a
    sandboxed repo worker's worktree holds none of them — not on disk, not in `git status`
    inside (an agent's `git add -A` stages nothing), not in `worker diff` or the dirtiness —
    while the settings the repo has stay read-only inside; killed with no changes, its
    worktree goes at the reap."""
    from looop.core.context import ctx_for
    from looop.home.clock import SystemClock
    from looop.sense.probes import probe_sessions
    from looop.sessions.client import expect

    box = Box(tmp_path, srt, "on")
    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "README").write_text("hello\n")
    for name in SETTINGS_FILES:
        (main / name).parent.mkdir(parents=True, exist_ok=True)
        (main / name).write_text("{}\n")
    git(main, "add", "-A")
    git(main, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "s")
    tracked = set(git(main, "ls-files").split())

    box.start("w1", LIVE, "--repo", str(main))
    clock = SystemClock()
    code, _, _ = expect(box.data, "w1", "LIVE-AND-WAITING", timeout_s=60, clock=clock)
    assert code == 0, box.looop("log", "w1").stdout
    tree = Paths.at(box.data).checkouts / "w1"
    got = results_named(box, "live-w1")
    assert got.pop("ready") == ""
    assert got.pop("cwd_is_worktree") == "ok"
    assert got.pop("write_code") == "ok"  # the worktree is its to write
    assert got.pop("inside_status") == "" and got.pop("inside_staged") == "", got
    assert set(got.pop("inside_ls").split()) == {
        ".git",
        "README",
        ".mcp.json",
        ".vscode",
        "docs",
        ".claude",
    }
    assert got == dict.fromkeys(got, "no"), got  # the repo's settings stay read-only
    # on the host, while it runs: only what git tracks, and nothing to show or keep
    on_disk = {
        str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file() and p.name != ".git"
    }
    assert on_disk == tracked
    assert git(tree, "status", "--porcelain", "--untracked-files=all", "--ignored") == ""
    diff = box.looop("worker", "diff", "w1")
    assert diff.returncode == 0 and diff.stdout == "", diff.stdout
    ctx = ctx_for(box.env, clock, None)
    assert probe_sessions(ctx)["detail"]["workers"]["w1"]["uncommitted"] is False
    for name in SETTINGS_FILES:
        assert (tree / name).read_text() == "{}\n"
    # srt started in the data dir, which it cannot write: nothing landed there either
    assert not [n for n in SRT_NAMES if (box.data / n).exists()]

    # killed with no changes: its worktree goes at the reap, its branch stays
    assert box.looop("kill", "w1").returncode == 0
    box.wait("w1")
    pruned = box.looop("prune")
    assert pruned.returncode == 0, pruned.stderr
    assert not tree.exists(), sorted(p.name for p in tree.iterdir())
    assert "looop/w1" in git(main, "branch", "--list")
    events = (box.data / "events.jsonl").read_text()
    assert '"worktree_removed"' in events and '"worktree_kept"' not in events


def results_named(box: Box, name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    (found,) = Paths.at(box.data).rooms.glob(f"*/reports/{name}")  # its worker's room
    for line in found.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out
