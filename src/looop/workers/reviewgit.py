"""git as a review reads a worker's change: where its branch stands, the commits since its
base, and the diff between them parsed into files and hunks. Read from the user's repo with the
hardened env (a clone's from inside it), never a program git could start on its own."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from looop.core.context import Ctx
from looop.workers.treerecord import (
    DIFF_FLAGS,
    GIT_TIMEOUT_S,
    Tree,
    WorktreeError,
    git_env,
    run_git,
    tree_env,
    why_failed,
)

MAX_HUNK_LINES = 4000  # lines of one file's diff kept: a generated file is said, not shown
MAX_FILE_BYTES = 256 << 10  # bytes of one file's diff kept: a huge file is cut as it is read
MAX_LINE = 8 << 10  # bytes of one diff line kept (a minified file's one line is cut)
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
    cut: bool = False  # over MAX_HUNK_LINES or MAX_FILE_BYTES: the rest not kept
    note: str = ""  # what the file is changed to: "symlink → TARGET", "mode 100644 → 100755"

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


def _argv(ctx: Ctx, tree: Tree, args: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """git's argv and env to read the branch in its repo, hardened for a clone."""
    cwd, hard = where(tree)
    env = tree_env(ctx.env, hard) if hard is not None else git_env(ctx.env)
    return ["git", "--no-pager", "-C", cwd, *args], env


def git(ctx: Ctx, tree: Tree, *args: str) -> subprocess.CompletedProcess[str]:
    """git read-only in the branch's repo; text a worker wrote that is not UTF-8 is read
    with replacement characters, never a crash."""
    argv, env = _argv(ctx, tree, args)
    what = f"git {args[0]} in {argv[3]}"
    return run_git(argv, env, GIT_TIMEOUT_S, what, errors="replace")


def _lines(out: IO[bytes]) -> Iterator[str]:
    """Lines as git writes them, each cut at MAX_LINE bytes: a stream never held whole."""
    while got := out.readline(MAX_LINE):
        over = len(got) == MAX_LINE and not got.endswith(b"\n")
        rest = got
        while over and rest and not rest.endswith(b"\n"):  # an overlong line's rest: dropped
            rest = out.readline(MAX_LINE)
        yield got.rstrip(b"\n").decode("utf-8", "replace") + ("…" if over else "")


def _read_patch(ctx: Ctx, tree: Tree, *args: str) -> list[_Patch]:
    """`git diff ARGS` split into files as it is read, each kept to its bounds."""
    argv, env = _argv(ctx, tree, args)
    with tempfile.TemporaryFile() as err:  # a file: git never blocks on what it says there
        try:
            proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err
            )
        except FileNotFoundError:
            raise WorktreeError("git is not on PATH — install git") from None
        timer = threading.Timer(GIT_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            files = _split_patch(_lines(proc.stdout))
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        why = err.read(4096).decode("utf-8", "replace").strip().splitlines()[-1:]
    if code != 0:  # below 0: killed by the timer
        late = f"took over {GIT_TIMEOUT_S:g}s" if code < 0 else (why or [f"exited {code}"])[0]
        raise WorktreeError(f"git diff in {tree.repo}: {late}")
    return files


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
    log = ("log", "--no-show-signature", "--reverse", "--format=%H %s")
    done = git(ctx, tree, *log, f"{since}..{tip}", "--")
    if done.returncode != 0:
        raise WorktreeError(f"git log in {tree.repo}: {why_failed(done)}")
    rows = (line.partition(" ") for line in done.stdout.splitlines())
    return [Commit(sha, subject) for sha, _, subject in rows if sha]


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
        self.modes = ["", ""]  # its mode before and after ("": the file was not there)
        self.hunks: list[Hunk] = []
        self.header = ""
        self.body: list[str] = []
        self.kept = self.size = 0
        self.cut = False

    def close(self) -> None:
        if self.header:
            self.hunks.append(_hunk(self.header, self.body))
        self.header, self.body = "", []

    def head(self, line: str) -> None:
        """A line of its extended header: what the file was and is."""
        word, _, mode = line.rpartition(" ")
        if word in ("new file mode", "deleted file mode"):
            self.status = "added" if word[0] == "n" else "deleted"
            self.modes[word[0] == "n"] = mode
        elif word in ("old mode", "new mode"):
            self.modes[word[0] == "n"] = mode
        elif line.startswith("index ") and line.count(" ") == 2:  # both: the mode it kept
            self.modes = [m or mode for m in self.modes]

    def note(self) -> str:
        """A change of what the file is: a symlink and where it points, or its mode."""
        old, new = self.modes
        if "120000" in self.modes:
            mark = "-" if self.status == "deleted" else "+"
            got = (ln[1:] for h in self.hunks for ln in h.lines if ln[:1] == mark)
            return f"symlink → {next(got, '?')}"
        if old and new and old != new:
            return f"mode {old} → {new}"
        return f"mode {new}" if self.status == "added" and new != "100644" else ""


def _split_patch(lines: Iterable[str]) -> list[_Patch]:
    """Each file's status and hunks of a `git diff` patch, in its order, as it is read: of
    each file at most MAX_HUNK_LINES lines and MAX_FILE_BYTES kept."""
    files: list[_Patch] = []
    for line in lines:
        if line.startswith("diff --git "):
            if files:
                files[-1].close()
            files.append(_Patch())
            continue
        if not files:
            continue
        f = files[-1]
        if not f.header and not f.hunks and not line.startswith("@@"):
            f.head(line)
        elif line.startswith("@@"):
            f.close()
            f.header = line
        elif f.header and line[:1] in (" ", "+", "-", "\\"):
            f.kept += 1
            f.size += len(line)
            if f.kept > MAX_HUNK_LINES or f.size > MAX_FILE_BYTES:
                f.cut = True
            else:
                f.body.append(line)
    if files:
        files[-1].close()
    return files


def changes(ctx: Ctx, tree: Tree, base: str, tip: str) -> list[FileChange]:
    """Every file the branch changed since its base, with its stats and hunks."""
    stats = _numstat(ctx, tree, base, tip)
    patches = _read_patch(ctx, tree, "diff", *DIFF_FLAGS, "--no-renames", "--no-color", base,
                          tip, "--")  # fmt: skip
    out = []
    for n, (path, added, removed) in enumerate(stats):
        p = patches[n] if n < len(patches) else _Patch()
        out.append(FileChange(path, p.status, added, removed, tuple(p.hunks), p.cut, p.note()))
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
