"""git as a review reads a worker's change: where its branch stands, the commits since its
base, and the diff between them parsed into files and hunks. Read from the user's repo with the
hardened env (a clone's from inside it), never a program git could start on its own."""

import contextlib
import itertools
import os
import select
import subprocess
import time
from collections.abc import Iterable, Iterator
from typing import NamedTuple

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
ERR_KEPT = 4096  # bytes of what git said on stderr kept (its last line is shown)


class Commit(NamedTuple):
    sha: str
    subject: str


class Hunk(NamedTuple):
    header: str  # "@@ -1,3 +1,4 @@ …"
    new_start: int
    new_count: int
    lines: tuple[str, ...]  # each with its " ", "+" or "-" mark


class FileChange(NamedTuple):
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


class Diff:
    """A change's diff read as git writes it, one `git diff`: every file's stat first (`stats`:
    its path, status and counts, no hunks), then each file whole with its hunks (`files()`),
    in that order, of each at most MAX_HUNK_LINES lines and MAX_FILE_BYTES kept: never held
    whole. git is killed once it kept its reader waiting GIT_TIMEOUT_S in all (the time the
    reader spends elsewhere, on a slow pipe or a pager, not counted), or once closed early."""

    def __init__(self, ctx: Ctx, tree: Tree, base: str, tip: str) -> None:
        args = ("diff", *DIFF_FLAGS, "--no-renames", "--no-color", "--raw", "--numstat", "-p")
        argv, env = _argv(ctx, tree, (*args, "-z", base, tip, "--"))
        self.repo, self.left, self.buf, self.pos = tree.repo, GIT_TIMEOUT_S, b"", 0
        # drained as it comes (its last ERR_KEPT bytes kept): git never blocks on what it says
        self.err, err_w = os.pipe()
        os.set_blocking(self.err, False)  # a child git left holding it never stalls a read
        self.said = b""
        try:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err_w
            )
        except FileNotFoundError:
            os.close(self.err)
            raise WorktreeError("git is not on PATH — install git") from None
        finally:
            os.close(err_w)
        assert self.proc.stdout is not None
        self.out, self.poll = self.proc.stdout, select.poll()
        self.poll.register(self.out, select.POLLIN)
        self.poll.register(self.err, select.POLLIN)
        self.stats, self.modes = self._stats()  # git's failure: closed, said

    def close(self) -> None:
        with self.proc:  # its pipe closed, it waited for
            self.proc.kill()  # nothing once it ended
        with contextlib.suppress(OSError):
            os.close(self.err)

    def _piece(self, sep: bytes) -> str | None:
        """The next piece up to `sep` as git writes it (None: its end), each wait on git
        counted; cut at MAX_LINE bytes ("…": the rest dropped as it was read)."""
        got, n = b"", 0
        while (i := self.buf.find(sep, self.pos)) < 0:
            rest = self.buf[self.pos :]
            got, n, t = got + rest[: max(MAX_LINE - n, 0)], n + len(rest), time.monotonic()
            ready = self._wait_out()
            self.left -= time.monotonic() - t
            self.buf, self.pos = os.read(self.out.fileno(), 1 << 16) if ready else b"", 0
            if not self.buf:
                self._end(bool(ready))
                return None
        got += self.buf[self.pos : min(i, self.pos + max(MAX_LINE - n, 0))]
        n, self.pos = n + i - self.pos, i + 1
        return got.decode("utf-8", "replace") + ("…" if n > MAX_LINE else "")

    def _wait_out(self) -> bool:
        """Until git's output can be read (True) or its time is up (False); what it says on
        stderr meanwhile is read as it comes."""
        end = time.monotonic() + max(self.left, 0)
        while True:
            ready = dict(self.poll.poll(max(end - time.monotonic(), 0) * 1000))
            if self.err in ready and not self._heard():
                self.poll.unregister(self.err)
            if ready.keys() - {self.err} or not ready:
                return bool(ready)

    def _heard(self) -> bool:
        """A piece of git's stderr read (its last ERR_KEPT bytes kept); False at its end, or
        when nothing more is there now."""
        try:
            got = os.read(self.err, 4096)
        except BlockingIOError:
            return False
        self.said = (self.said + got)[-ERR_KEPT:]
        return bool(got)

    def _stats(self) -> tuple[list[FileChange], list[tuple[str, str, str, str]]]:
        """Each file's modes and status (--raw), then its counts (--numstat), in one order: up
        to the empty word before the patch, or git's end."""
        raw: list[tuple[str, str, str, str]] = []  # its modes ("000000": none), status, path
        out: list[FileChange] = []
        while word := self._piece(b"\0"):
            if word[0] == ":":
                old, new, _, _, status = word[1:].split(" ")
                raw.append((old, new, status, self._piece(b"\0") or ""))
            elif len(out) < len(raw):  # "ADDED\tREMOVED\tPATH" ("-": binary)
                added, removed, _ = word.split("\t", 2)
                n = (-1, 0) if added == "-" else (int(added), int(removed))
                said = {"A": "added", "D": "deleted"}.get(raw[len(out)][2], "modified")
                out.append(FileChange(raw[len(out)][3], said, *n, ()))
        return out, raw

    def _end(self, ready: bool) -> None:
        """git's end (not `ready`: it took too long), its failure said in one line."""
        if not ready:
            self.proc.kill()
        try:  # its output ended: its exit is at hand, but bounded still
            code = self.proc.wait(max(self.left, 1.0))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if code:  # below 0: killed
            while self._heard():
                pass
            why = self.said.decode("utf-8", "replace").splitlines()
            self.close()
            late = f"took over {GIT_TIMEOUT_S:g}s" if code < 0 else (why or [f"exited {code}"])[-1]
            raise WorktreeError(f"git diff in {self.repo}: {late}")

    def files(self) -> Iterator[FileChange]:
        """Each file whole with its hunks as git writes it; git's failure said at its end.
        The diff closes once they are read (or they are no longer read)."""
        patches = _split_patch(iter(lambda: self._piece(b"\n"), None))
        try:
            for f, (old, new, status, _) in zip(self.stats, self.modes, strict=True):
                # a file made a link (or back) is two parts: the one gone and the one made
                got = [next(patches, ([], False)) for _ in range(2 if status == "T" else 1)]
                hunks = tuple(h for part, _ in got for h in part)
                cut = any(c for _, c in got)
                yield f._replace(hunks=hunks, cut=cut, note=_note(f.status, old, new, hunks))
            for _ in patches:  # nothing more: its end (its failure said)
                pass
        finally:
            self.close()


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


def _hunk(header: str, body: list[str]) -> Hunk:
    new = header.split("+", 1)[1].split(" ", 1)[0] if "+" in header else "0"
    start, _, count = new.partition(",")
    return Hunk(header, int(start or 0), int(count) if count else 1, tuple(body))


def _note(status: str, old: str, new: str, hunks: tuple[Hunk, ...]) -> str:
    """A change of what the file is (its modes `old` and `new`, "000000": none): a symlink and
    where it points, or its mode."""
    if "120000" in (old, new) and new in ("120000", "000000"):  # a link made, moved or gone
        mark = "-" if status == "deleted" else "+"
        got = (ln[1:] for h in hunks for ln in h.lines if ln[:1] == mark)
        return f"symlink → {next(got, '?')}"
    if status == "modified" and old != new:
        return f"mode {old} → {new}"
    return f"mode {new}" if status == "added" and new != "100644" else ""


def _split_patch(lines: Iterable[str]) -> Iterator[tuple[list[Hunk], bool]]:
    """Each file's hunks of a `git diff` patch and whether some were cut, in its order, each as
    soon as it is read: of each file at most MAX_HUNK_LINES lines and MAX_FILE_BYTES kept."""
    hunks: list[Hunk] = []
    body: list[str] = []
    header, kept, size, cut, begun = "", 0, 0, False, False
    for line in itertools.chain(lines, ["diff --git "]):  # the last: the last file's end
        if header and line.startswith(("diff --git ", "@@")):
            hunks.append(_hunk(header, body))
            header, body = "", []
        if line.startswith("diff --git "):
            if begun:
                yield hunks, cut
            hunks, kept, size, cut, begun = [], 0, 0, False, True
        elif line.startswith("@@"):
            header = line
        elif header and line[:1] in (" ", "+", "-", "\\"):
            kept, size = kept + 1, size + len(line)
            if kept > MAX_HUNK_LINES or size > MAX_FILE_BYTES:
                cut = True
            else:
                body.append(line)


def file_lines(ctx: Ctx, tree: Tree, tip: str, path: str) -> list[str] | None:
    """The file's lines at `tip` (None: not a text file there)."""
    done = git(ctx, tree, "cat-file", "-s", f"{tip}:{path}")
    if done.returncode != 0 or int(done.stdout.strip() or 0) > MAX_BLOB:
        return None
    blob = git(ctx, tree, "cat-file", "blob", f"{tip}:{path}")
    if blob.returncode != 0 or "\0" in blob.stdout:
        return None
    return blob.stdout.splitlines()
