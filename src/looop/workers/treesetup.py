"""A repo worker's new worktree made ready: what `.worktreeinclude` names copied in (below),
then its setup: the config's "worktree" object names, per repository, a command run
in the worker's new worktree before its agent starts (`npm ci`, `make venv`):

    "worktree": {"setup": {"~/src/app": "npm ci"}, "setup_timeout_s": 600}

It lives in the config, never in the repository: a script in the repository is what a worker
can write on its branch, and a start would run it. It runs as the worker would — with the
worker's env (its $LOOOP_PORT too), inside the worker's own sandbox when the worker is
sandboxed (it runs the branch's code: a package's install scripts, a Makefile) — its output
the first thing in the worker's log. A failure, or a run past setup_timeout_s (its whole
process group killed), is the start's error in one line and the worktree is taken back."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from looop.home import logfiles
from looop.home.sessionfiles import read_meta
from looop.home.where import expand
from looop.workers.errors import WorkerError
from looop.workers.treerecord import Tree, WorktreeError, git_in, why_failed

DEFAULT_TIMEOUT_S = 600.0


class Setup(NamedTuple):
    line: str
    timeout_s: float = DEFAULT_TIMEOUT_S


def _bad(key: str, want: str, got: object) -> WorkerError:
    return WorkerError(f"config: worktree.{key} must be {want}, not {got!r} — fix the config")


def setup_for(raw: Mapping[str, Any], repo: str, home: str | None) -> Setup | None:
    """The setup the config names for the repository at `repo` (its top folder), if any."""
    obj = raw.get("worktree", {})
    if not isinstance(obj, dict):
        raise WorkerError(f"config: 'worktree' must be an object, not {obj!r} — fix the config")
    setups = obj.get("setup", {})
    want = 'an object of repository path -> command line, e.g. {"~/src/app": "npm ci"}'
    if not isinstance(setups, dict):
        raise _bad("setup", want, setups)
    limit = obj.get("setup_timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 1 <= limit <= 3600:
        raise _bad("setup_timeout_s", "seconds from 1 to 3600", limit)
    top = os.path.realpath(repo)
    for key, line in setups.items():
        if not isinstance(line, str) or not line.strip():
            raise _bad(f"setup.{key}", "a command line", line)
        where = expand(key, home)
        if where is not None and os.path.isabs(where) and os.path.realpath(where) == top:
            return Setup(line.strip(), float(limit))
    return None


def log_dir(sessions: Path, wid: str) -> str:
    """The worker's log folder, made before its session is: the setup's output opens it. Its
    last session was reaped just before, so a log here is a failed setup's: begun again."""
    sdir = sessions / wid
    sdir.mkdir(parents=True, exist_ok=True)
    logs = logfiles.prepare(sdir)
    if read_meta(sdir) is None:
        with contextlib.suppress(FileNotFoundError):
            os.truncate(os.path.join(logs, logfiles.LOG), 0)
    return logs


def run_setup(
    wid: str, setup: Setup, argv: list[str], env: Mapping[str, str], cwd: str, logs: str
) -> None:
    """The setup run to its end in `cwd`, its output appended to the worker's log; raises
    WorkerError (one line) when it fails, cannot start or outlasts its time."""
    where = os.path.join(logs, logfiles.LOG)
    fd = logfiles.open_log(logs)
    try:
        os.write(fd, f"looop: setup: {setup.line}\n".encode())
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: all of it goes at the end
            )
        except OSError as e:
            raise WorkerError(f"worker {wid}: its setup could not start: {e.strerror}") from None
        try:
            code = proc.wait(timeout=setup.timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        _end_group(proc)
        if code is None:
            os.write(fd, b"looop: setup timed out\n")
            raise WorkerError(
                f"worker {wid}: its setup `{setup.line}` took over {setup.timeout_s:g}s "
                f"(worktree.setup_timeout_s) and was stopped — see {where}"
            )
        if code != 0:
            os.write(fd, f"looop: setup failed (exit {code})\n".encode())
            raise WorkerError(
                f"worker {wid}: its setup `{setup.line}` failed (exit {code}) — see {where}, "
                "fix the command (config worktree.setup) or the repository, and start it again"
            )
        os.write(fd, b"looop: setup done\n")
    finally:
        os.close(fd)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """Nothing the setup left behind outlives it (a server it forgot, a hung child)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# -- `.worktreeinclude`: the files a repository ignores but a worker needs (`.env`, local
# config), copied from the user's checkout into a new worktree before the worker starts. The
# file sits at the top of the user's checkout and holds gitignore-style patterns; a file is
# copied only when it matches them AND git ignores it (git itself matches both, inside the
# repository only). A line naming `..`, a home folder (`~`) or an absolute path outside the
# repository, a file that is a symlink or not a plain file, or a place in the worktree that
# is a symlink is skipped with one line each: nothing is ever followed out of either tree,
# and nothing in the worktree is overwritten.

INCLUDE_FILE = ".worktreeinclude"
_MAX_BYTES = 64 * 1024  # a pattern list, not a data file
_MAX_FILES = 10_000  # files copied per start: a bound, not a count we expect
_CHUNK = 1 << 20


def patterns(repo: str, text: str) -> tuple[list[str], list[str]]:
    """The lines of a `.worktreeinclude` git may match, and one line per line skipped."""
    kept: list[str] = []
    said: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r").rstrip(" ")
        if not line or line.startswith("#"):
            continue
        body = line[1:] if line.startswith("!") else line
        if why := _outside(repo, body):
            said.append(f"{INCLUDE_FILE}: skipped '{line}': {why}")
            continue
        kept.append(line)
    return kept, said


def _outside(repo: str, body: str) -> str:
    """Why a pattern names something outside the repository ("" when it does not)."""
    if ".." in body.replace("\\", "/").split("/"):
        return "it names a path outside the repository (..) — name files inside it"
    if body.startswith("~"):
        return "it names a home folder, outside the repository — name files inside it"
    # a leading / anchors a pattern at the top, as in .gitignore; one that names something
    # on this machine and nothing in the repository was meant as an absolute path
    if body.startswith("/") and body.strip("/"):
        first = body.strip("/").split("/", 1)[0]
        if os.path.lexists("/" + first) and not os.path.lexists(os.path.join(repo, first)):
            return "it is an absolute path outside the repository — name files inside it"
    return ""


def copy_included(env: Mapping[str, str], tree: Tree) -> tuple[int, list[str]]:
    """Copy what the user's checkout's `.worktreeinclude` names into the worker's worktree:
    how many files were copied, and one line per thing skipped."""
    text, said = _read_list(tree.repo)
    if text is None:
        return 0, said
    kept, skipped = patterns(tree.repo, text)
    said += skipped
    if not kept:
        return 0, said
    excludes = [f"--exclude={p}" for p in kept]
    try:
        listed = git_in(env, tree.repo, "ls-files", "-z", "--others", "--ignored", *excludes)
        if listed.returncode != 0:
            raise WorktreeError(f"git ls-files: {why_failed(listed)}")
        # a nested repository is listed as its folder: never copied
        wanted = [n for n in listed.stdout.split("\0") if n and not n.endswith("/")]
        ignored = _ignored(env, tree.repo, wanted)
    except WorktreeError as e:
        return 0, [*said, f"{INCLUDE_FILE}: nothing copied: {e}"]
    copied = 0
    for name in wanted:
        if name not in ignored:
            continue  # matches but git does not ignore it: not ours to copy
        if copied >= _MAX_FILES:
            said.append(f"{INCLUDE_FILE}: copied the first {_MAX_FILES} files, the rest skipped")
            break
        if why := _copy_one(tree.repo, tree.path, name):
            said.append(f"{INCLUDE_FILE}: skipped {name}: {why}")
        else:
            copied += 1
    return copied, said


def _read_list(repo: str) -> tuple[str | None, list[str]]:
    """The pattern list's text (None: there is none, or it is refused with a line)."""
    path = os.path.join(repo, INCLUDE_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None, []
    except OSError as e:
        if os.path.islink(path):
            return None, [f"{INCLUDE_FILE} is a symlink: not followed — make it a plain file"]
        return None, [f"{INCLUDE_FILE}: cannot read it ({e.strerror}) — nothing copied"]
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, [f"{INCLUDE_FILE} is not a plain file — nothing copied"]
        data = f.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        return None, [f"{INCLUDE_FILE} is over {_MAX_BYTES // 1024} KiB — nothing copied"]
    return data.decode("utf-8", errors="replace"), []


def _ignored(env: Mapping[str, str], repo: str, names: list[str]) -> set[str]:
    """The names git ignores (its .gitignore files, info/exclude, core.excludesFile)."""
    if not names:
        return set()
    got = git_in(env, repo, "check-ignore", "-z", "--stdin", stdin="\0".join(names) + "\0")
    return {n for n in got.stdout.split("\0") if n} if got.returncode in (0, 1) else set()


@contextmanager
def _folder(top: str, parts: list[str], make: bool) -> Iterator[int]:
    """An fd of the folder `parts` below `top`, never through a symlink (`make`: made)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        yield fd
    finally:
        os.close(fd)


def _copy_one(src_top: str, dst_top: str, name: str) -> str:
    """One file copied, its mode kept; why it was not ("" when it was)."""
    *parts, leaf = name.split("/")
    try:
        with _folder(src_top, parts, make=False) as sdir:
            src = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=sdir)
    except OSError:
        if os.path.islink(os.path.join(src_top, name)):
            return "it is a symlink — not followed"
        return "it could not be read"
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            return "it is not a plain file"
        return _write_below(dst_top, parts, leaf, src, st)
    finally:
        os.close(src)


def _write_below(dst_top: str, parts: list[str], leaf: str, src: int, st: os.stat_result) -> str:
    try:
        with _folder(dst_top, parts, make=True) as ddir:
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                dst = os.open(leaf, flags, st.st_mode & 0o777, dir_fd=ddir)
            except FileExistsError:
                return "the worktree has it already (kept as it is)"
            try:
                _copy_data(src, dst, st.st_size)
            except OSError:
                os.unlink(leaf, dir_fd=ddir)  # nothing half-written
                raise
            finally:
                os.close(dst)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            return "a folder on its way in the worktree is a symlink or a file — not followed"
        return f"it could not be written in the worktree ({e.strerror or e})"
    return ""


def _copy_data(src: int, dst: int, size: int) -> None:
    """The file's bytes, its holes left holes: a sparse file stays as small on disk."""
    at = 0
    while at < size:
        try:
            at = os.lseek(src, at, os.SEEK_DATA)
            end = os.lseek(src, at, os.SEEK_HOLE)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise
            break  # nothing but a hole is left
        os.lseek(dst, at, os.SEEK_SET)
        while at < end and (chunk := os.pread(src, min(_CHUNK, end - at), at)):
            view = memoryview(chunk)
            while view:
                view = view[os.write(dst, view) :]
            at += len(chunk)
        if at < end:  # it shrank meanwhile
            break
    os.ftruncate(dst, size)
