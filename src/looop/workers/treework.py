"""What a worker's checkout holds: uncommitted work (`git status`; many trees at once are the
sys-sessions probe's, sense/probes.py), a clone's commits its remote lacks, and the git
commands `worker diff` runs to show its changes."""

import os
import subprocess
from collections.abc import Mapping
from typing import NamedTuple

from looop.core.context import Ctx
from looop.workers.treerecord import (
    DIFF_FLAGS,
    GIT_TIMEOUT_S,
    NO_NESTED,
    Strays,
    Tree,
    WorktreeError,
    git_env,
    git_in,
    load,
    load_all,
    run_git,
    tree_env,
)

Seen = list[dict[str, str]]  # git's env in a worktree, once read (treerecord.tree_env)

# `git status` asking only whether a worktree holds anything uncommitted: an untracked
# folder is one line (not one per file inside it), the same yes/no for less work. A nested
# repo is never entered (its config is the worker's): an untracked one is one line, a staged
# gitlink alone reads as clean, and removal refuses a worktree holding one (git's own check)
STATUS_ARGS = (
    "--no-optional-locks",  # never take the index lock the worker's own git may want
    "status",
    "--porcelain",
    "--untracked-files=normal",
    "--ignore-submodules=all",
)


def setups(tree: Tree, name: str) -> bool:
    """The untracked `name` is what the worktree's setup left before the agent's first turn."""
    return name in tree.setup_left or any(
        d.endswith("/") and name.startswith(d) for d in tree.setup_left
    )


def left_untracked(env: Mapping[str, str], tree: Tree) -> tuple[str, ...]:
    """The untracked files (a folder whole: `dir/`) in the worktree now, not ignored."""
    argv = ("ls-files", "--others", "--exclude-standard", "--directory", "-z")
    done = git_in(env, tree.path, *argv, tree=tree)
    return tuple(n for n in done.stdout.split("\0") if n) if done.returncode == 0 else ()


def _git_out(
    env: Mapping[str, str], tree: Tree, args: list[str], what: str, timeout: float, seen: Seen
) -> str | None:
    """git's stdout in the worktree; None: unknown (a stray in its git folder is said, raised).
    `seen`: git's env there as a call before read it (its config read once), else read now."""
    try:
        seen[:] = seen or [tree_env(env, tree, timeout)]
        argv = ["git", "--no-pager", "-C", tree.path, *args]
        done = run_git(argv, seen[0], timeout, f"{what} in {tree.path}")
    except Strays:
        raise
    except WorktreeError:
        return None
    return done.stdout if done.returncode == 0 else None


def uncommitted(
    env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S, *, seen: Seen
) -> list[str] | None:
    """The paths the worktree holds uncommitted, less what its setup left; None: unknown.
    `seen`: git's env there as read before ([]: none yet, read now)."""
    out = _git_out(env, tree, [*STATUS_ARGS, "-z", "--no-renames"], "git status", timeout, seen)
    if out is None:
        return None
    got = [e for e in out.split("\0") if e]
    return [e[3:] for e in got if not (e.startswith("?? ") and setups(tree, e[3:]))]


def is_dirty(env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S) -> bool | None:
    """True when the worktree holds uncommitted changes, untracked files (not its setup's) or
    a nested repo at a gitlink (which status never enters, and removal would take whole);
    None: unknown."""
    seen: Seen = []  # status's env serves ls-files too: it reads the index, runs no driver
    left = uncommitted(env, tree, timeout, seen=seen)
    if left is None or left:
        return None if left is None else True
    staged = _git_out(env, tree, ["ls-files", "-z", "--stage"], "ls-files", timeout, seen)
    if staged is None:
        return None
    links = (e.partition("\t")[2] for e in staged.split("\0") if e.startswith("160000 "))
    return any(os.path.lexists(os.path.join(tree.path, name, ".git")) for name in links)


def unpushed(env: Mapping[str, str], tree: Tree, timeout: float = GIT_TIMEOUT_S) -> bool | None:
    """True when a clone holds commits (on a branch, or stashed) that none of its
    remote-tracking branches has: removing it would lose them. None: unknown."""
    try:
        # --glob=refs/stas[h]: refs/stash itself (a glob without a wildcard means dir/*)
        ahead = ("rev-list", "-n", "1", "--branches", "--glob=refs/stas[h]", "--not", "--remotes")
        done = git_in(env, tree.path, *ahead, timeout=timeout, tree=tree)
    except WorktreeError:
        return None
    if done.returncode != 0:
        return None
    return bool(done.stdout.strip())


def holds_work(env: Mapping[str, str], tree: Tree) -> bool | None:
    """Whether removing the checkout would lose anything: uncommitted work, and for a clone
    also commits its remote lacks (None: unknown)."""
    dirty = is_dirty(env, tree)
    if dirty is not False or not tree.clone:
        return dirty
    return unpushed(env, tree)


def diff_runs(
    ctx: Ctx, wid: str, extra: tuple[str, ...] = ()
) -> list[tuple[list[str], dict[str, str]]]:
    """The git commands (argv, env) that show a worker's changes: everything since its base
    (commits on its branch and uncommitted edits), then each untracked file as a new file.
    `extra`: options for git diff (--stat, --color=always, …). A worker of several repos:
    each one's, its paths under its checkout's folder name (as from the worker's folder)."""
    tree = load(ctx, wid)
    if tree is None:
        raise WorktreeError(
            f"worker {wid} has no worktree — only a worker started with --repo has one"
        )
    if not tree.parts:
        return tree_diff_runs(ctx, tree, extra)
    out: list[tuple[list[str], dict[str, str]]] = []
    for each in load_all(ctx, wid):
        under = (f"--src-prefix=a/{each.part}/", f"--dst-prefix=b/{each.part}/")
        out += tree_diff_runs(ctx, each, (*extra, *under))
    return out


def between(
    ctx: Ctx, wid: str, other: str, extra: tuple[str, ...] = ()
) -> list[tuple[list[str], dict[str, str]]]:
    """Where two workers' branches differ as committed (two attempts at one task)."""
    a, b = load(ctx, wid), load(ctx, other)
    if a is None or b is None or a.repo != b.repo:
        raise WorktreeError(
            f"workers {wid} and {other} have no branches in one repository to compare — "
            "attempts at one task do (`looop review ID` lists them)"
        )
    ends = (f"refs/heads/{a.branch}", f"refs/heads/{b.branch}")
    argv = ["git", "--no-pager", "-C", a.repo, "diff", *DIFF_FLAGS, *extra, *ends, "--"]
    return [(argv, git_env(ctx.env))]


def tree_diff_runs(
    ctx: Ctx, tree: Tree, extra: tuple[str, ...] = ()
) -> list[tuple[list[str], dict[str, str]]]:
    """diff_runs of one checkout."""
    wid = tree.wid
    head = ["git", "--no-pager"]
    flags = (*DIFF_FLAGS, *extra)
    if tree.clone and (tree.removed or not os.path.isdir(tree.path)):
        raise WorktreeError(
            f"worker {wid}'s clone is gone (removed with nothing its remote lacked): its "
            f"branch {tree.branch} is at {tree.origin} if it was pushed"
        )
    if tree.removed or not os.path.isdir(tree.path):
        # the worktree went with the session; its branch holds what was committed
        ends = (tree.base, f"refs/heads/{tree.branch}")
        return [([*head, "-C", tree.repo, "diff", *flags, *ends, "--"], git_env(ctx.env))]
    env = tree_env(ctx.env, tree)
    out = [([*head, "-C", tree.path, "diff", *flags, NO_NESTED, tree.base, "--"], env)]
    if links := gitlinks(ctx.env, tree):
        # the nested repos' recorded commits, read from the index alone (never the repos)
        cached = ("--cached", "--ignore-submodules=none")
        paths = [f":(literal){name}" for name in links]
        argv = [*head, "-C", tree.path, "diff", *flags, *cached, tree.base, "--", *paths]
        out.append((argv, env))
    done = git_in(ctx.env, tree.path, "ls-files", "--others", "--exclude-standard", "-z", tree=tree)
    # a name ending in / is a nested repo, shown by status, never read
    for name in sorted(
        n for n in done.stdout.split("\0") if n and not n.endswith("/") and not setups(tree, n)
    ):
        argv = [*head, "-C", tree.path, "diff", *flags, "--no-index", "--", "/dev/null", name]
        out.append((argv, env))
    return out


def gitlinks(env: Mapping[str, str], tree: Tree) -> list[str]:
    """Paths whose gitlink (a nested repo's commit) differs between the worker's base and its
    index: `--ignore-submodules=all` hides them from the diff, so they are shown apart."""
    index = ("diff-index", "--cached", "-z", "--no-renames", "--ignore-submodules=none")
    done = git_in(env, tree.path, *index, tree.base, "--", tree=tree)
    fields = done.stdout.split("\0")
    pairs = zip(fields[0::2], fields[1::2], strict=False)
    return [name for meta, name in pairs if name and "160000" in meta.lstrip(":").split(" ")[:2]]


# -- `looop worker diff --stat` of a worker of several repositories: git's own --stat names a
# file by its path in its repository alone, so `README` of two checkouts read the same. Each
# file is read as git's --numstat counts it (the runs `worker diff` makes) and named
# `REPO/PATH` (REPO its checkout's folder), drawn as git draws a stat, then one total line.

BAR = 50  # columns of the widest bar, as git's default


class Counted(NamedTuple):
    path: str  # REPO/PATH
    added: int  # -1: binary
    removed: int


def counted(ctx: Ctx, wid: str) -> list[Counted]:
    """Every changed file of every checkout, in the worker's order, with git's counts."""
    out: list[Counted] = []
    for tree in load_all(ctx, wid):
        text = diff_out(tree_diff_runs(ctx, tree, ("--numstat",))).decode("utf-8", "replace")
        out += [_line(tree.part, ln) for ln in text.splitlines() if ln.strip()]
    return out


def diff_out(
    runs: list[tuple[list[str], dict[str, str]]], most: int = 0, timeout: float = GIT_TIMEOUT_S
) -> bytes:
    """What the diff runs print, one after another (past `most` bytes, if given, the rest
    not run); WorktreeError in one line when git cannot run or fails."""
    out: list[bytes] = []
    for argv, env in runs:
        try:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise WorktreeError(f"git diff did not run: {e}") from None
        if done.returncode > 1:  # 1 is `git diff --no-index` saying the files differ
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            raise WorktreeError(f"git diff failed: {why[0]}")
        out.append(done.stdout)
        if most and sum(map(len, out)) > most:
            break
    return b"".join(out)


def _line(part: str, line: str) -> Counted:
    added, _, rest = line.partition("\t")
    removed, _, path = rest.partition("\t")
    path = path.removeprefix("/dev/null => ")  # a new file, shown by `--no-index` as such
    if added == "-":  # binary
        return Counted(f"{part}/{path}", -1, 0)
    return Counted(f"{part}/{path}", int(added or 0), int(removed or 0))


def render_stat(files: list[Counted]) -> str:
    """git's --stat drawing of `files` (text), ending in the total line."""
    if not files:
        return ""
    width = max(len(f.path) for f in files)
    most = max((f.added + f.removed for f in files if f.added >= 0), default=0)
    digits = len(str(most)) if most else 1
    lines: list[str] = []
    for f in files:
        if f.added < 0:
            lines.append(f" {f.path.ljust(width)} | Bin")
            continue
        total = f.added + f.removed
        plus, minus = f.added, f.removed
        if most > BAR:  # scaled as git scales: every change keeps at least one mark
            plus = max(1, plus * BAR // most) if plus else 0
            minus = max(1, minus * BAR // most) if minus else 0
        bar = "+" * plus + "-" * minus
        lines.append(f" {f.path.ljust(width)} | {str(total).rjust(digits)} {bar}".rstrip())
    lines.append(_total(files))
    return "\n".join(lines)


def _total(files: list[Counted]) -> str:
    added = sum(f.added for f in files if f.added >= 0)
    removed = sum(f.removed for f in files)
    n = len(files)
    said = f" {n} file{'s' if n != 1 else ''} changed"
    if added:
        said += f", {added} insertion{'s' if added != 1 else ''}(+)"
    if removed:
        said += f", {removed} deletion{'s' if removed != 1 else ''}(-)"
    return said
