"""git as a review reads a worker's change: where its branch stands, the commits since its
base, and the diff between them parsed into files and hunks. Read from the user's repo with the
hardened env (a clone's from inside it), never a program git could start on its own."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from looop.core.context import Ctx
from looop.workers.treegit import DIFF_FLAGS, GIT_TIMEOUT_S, git_env, run_git, tree_env, why_failed
from looop.workers.treerecord import Tree, WorktreeError

MAX_HUNK_LINES = 4000  # lines of one file's diff kept: a generated file is said, not shown
MAX_BLOB = 4 * 1024 * 1024  # bytes of a file read for a comment's context


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True)
class Hunk:
    header: str  # "@@ -1,3 +1,4 @@ …"
    new_start: int
    new_count: int
    lines: tuple[str, ...]  # each with its " ", "+" or "-" mark


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # "added", "deleted" or "modified"
    added: int  # -1: binary
    removed: int
    hunks: tuple[Hunk, ...]
    cut: bool = False  # more lines than MAX_HUNK_LINES: the rest not kept

    @property
    def binary(self) -> bool:
        return self.added < 0


def where(tree: Tree) -> tuple[str, Tree | None]:
    """The folder git runs in and the tree to harden for: a clone is read from inside (its
    own repo), a worktree's branch from the user's repo (the worktree may be gone)."""
    if tree.clone:
        if tree.removed or not os.path.isdir(tree.path):
            raise WorktreeError(
                f"worker {tree.wid}'s clone is gone: its branch {tree.branch} is at "
                f"{tree.origin} if it was pushed"
            )
        return tree.path, tree
    if not os.path.isdir(tree.repo):
        raise WorktreeError(f"worker {tree.wid}'s repo {tree.repo} is gone")
    return tree.repo, None


def git(ctx: Ctx, tree: Tree, *args: str) -> subprocess.CompletedProcess[str]:
    """git read-only in the branch's repo; text a worker wrote that is not UTF-8 is read
    with replacement characters, never a crash."""
    cwd, hard = where(tree)
    env = tree_env(ctx.env, hard) if hard is not None else git_env(ctx.env)
    argv = ["git", "--no-pager", "-C", cwd, *args]
    return run_git(argv, env, GIT_TIMEOUT_S, f"git {args[0]} in {cwd}", errors="replace")


def branch_tip(ctx: Ctx, tree: Tree) -> str:
    """The commit the worker's branch points at now; one line when it is gone."""
    done = git(
        ctx, tree, "rev-parse", "--verify", "--quiet", f"refs/heads/{tree.branch}^{{commit}}"
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise WorktreeError(
            f"worker {tree.wid}'s branch {tree.branch} is gone from {tree.repo} — nothing to review"
        )
    return done.stdout.strip()


def commits(ctx: Ctx, tree: Tree, since: str, tip: str) -> list[Commit]:
    """The commits on the branch after `since`, oldest first."""
    done = git(
        ctx,
        tree,
        "log",
        "--no-show-signature",
        "--reverse",
        "--format=%H %s",
        f"{since}..{tip}",
        "--",
    )
    if done.returncode != 0:
        raise WorktreeError(f"git log in {tree.repo}: {why_failed(done)}")
    out = []
    for line in done.stdout.splitlines():
        sha, _, subject = line.partition(" ")
        if sha:
            out.append(Commit(sha, subject))
    return out


def _numstat(ctx: Ctx, tree: Tree, base: str, tip: str) -> list[tuple[str, int, int]]:
    done = git(ctx, tree, "diff", *DIFF_FLAGS, "--no-renames", "--numstat", "-z", base, tip, "--")
    if done.returncode != 0:
        raise WorktreeError(f"git diff in {tree.repo}: {why_failed(done)}")
    out = []
    for row in done.stdout.split("\0"):
        added, _, rest = row.partition("\t")
        removed, _, path = rest.partition("\t")
        if not path:
            continue
        binary = added == "-"
        out.append((path, -1 if binary else int(added), 0 if binary else int(removed)))
    return out


def _hunk(header: str, body: list[str]) -> Hunk:
    new = header.split("+", 1)[1].split(" ", 1)[0] if "+" in header else "0"
    start, _, count = new.partition(",")
    return Hunk(header, int(start or 0), int(count) if count else 1, tuple(body))


class _Patch:
    """One file's part of a patch as it is read."""

    def __init__(self) -> None:
        self.status = "modified"
        self.hunks: list[Hunk] = []
        self.header = ""
        self.body: list[str] = []
        self.kept = 0
        self.cut = False

    def close(self) -> None:
        if self.header:
            self.hunks.append(_hunk(self.header, self.body))
        self.header, self.body = "", []


def _split_patch(text: str) -> list[_Patch]:
    """Each file's status and hunks of a `git diff` patch, in its order."""
    files: list[_Patch] = []
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            if files:
                files[-1].close()
            files.append(_Patch())
            continue
        if not files:
            continue
        f = files[-1]
        if not f.header and not f.hunks and line.startswith("new file mode"):
            f.status = "added"
        elif not f.header and not f.hunks and line.startswith("deleted file mode"):
            f.status = "deleted"
        elif line.startswith("@@"):
            f.close()
            f.header = line
        elif f.header and line[:1] in (" ", "+", "-", "\\"):
            f.kept += 1
            if f.kept > MAX_HUNK_LINES:
                f.cut = True
            else:
                f.body.append(line)
    if files:
        files[-1].close()
    return files


def changes(ctx: Ctx, tree: Tree, base: str, tip: str) -> list[FileChange]:
    """Every file the branch changed since its base, with its stats and hunks."""
    stats = _numstat(ctx, tree, base, tip)
    done = git(ctx, tree, "diff", *DIFF_FLAGS, "--no-renames", "--no-color", base, tip, "--")
    if done.returncode != 0:
        raise WorktreeError(f"git diff in {tree.repo}: {why_failed(done)}")
    patches = _split_patch(done.stdout)
    out = []
    for n, (path, added, removed) in enumerate(stats):
        p = patches[n] if n < len(patches) else _Patch()
        out.append(FileChange(path, p.status, added, removed, tuple(p.hunks), p.cut))
    return out


def file_lines(ctx: Ctx, tree: Tree, tip: str, path: str) -> list[str] | None:
    """The file's lines at `tip` (None: not a text file there)."""
    done = git(ctx, tree, "cat-file", "-s", f"{tip}:{path}")
    if done.returncode != 0 or int(done.stdout.strip() or 0) > MAX_BLOB:
        return None
    blob = git(ctx, tree, "cat-file", "blob", f"{tip}:{path}")
    if blob.returncode != 0 or "\0" in blob.stdout:
        return None
    return blob.stdout.splitlines()
