"""How a verb's failure reaches the user: one line on stderr and an exit code, never a
traceback; a bug also leaves a crash file, which the interpreter's own printer writes, so a
contract verb loads this with nothing it has not loaded already."""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import NoReturn, TextIO

from looop.home import where
from looop.home.errors import LooopError, UsageMistake
from looop.home.store import NotRegular
from looop.home.terminal import line_for_terminal

# A write or read the user can fix (a path, space, permissions): one line, not a crash.
# EEXIST: a file stands where looop makes a directory; ENOENT: a directory on the way is
# gone, or cannot hold files (/proc)
_ERRNO_NAMES = (
    "EROFS EACCES EPERM ENOSPC EDQUOT ENOTDIR EISDIR ENAMETOOLONG ELOOP EMFILE ENFILE EIO EEXIST "
    "ENOENT"
)
_USER_ERRNOS = frozenset(getattr(errno, name) for name in _ERRNO_NAMES.split())


def fail(msg: str, code: int = 1) -> NoReturn:
    """`looop: msg` (made safe: messages may quote untrusted text) and exit."""
    sys.stderr.write(f"looop: {line_for_terminal(msg)}\n")
    raise SystemExit(code)


def fail_for(e: Exception, env: dict[str, str]) -> NoReturn:
    """The one line for an exception a verb raised (called from inside its except block)."""
    if isinstance(e, NotRegular):
        fail(
            f"{e.filename} is {e.strerror} — something else stands where looop keeps a "
            "file; move it away (looop recreates what it needs)"
        )
    if isinstance(e, OSError) and e.errno == errno.EEXIST and e.filename:
        fail(
            f"cannot use {e.filename}: a file stands where looop keeps a directory — move it "
            "away (looop recreates what it needs)"
        )
    if isinstance(e, OSError) and e.errno in _USER_ERRNOS:
        place = e.filename or "the data dir"
        # no claim about side effects here: a move may have run before the write failed
        fail(
            f"cannot use {place}: {e.strerror} — check the path, free space or fix "
            "permissions (or point LOOOP_DATA_DIR elsewhere)"
        )
    if isinstance(e, LooopError) and not isinstance(e, OSError):
        fail(str(e), 2 if isinstance(e, UsageMistake) else 1)
    crash_report(e, env)


def crash_report(exc: BaseException, env: dict[str, str]) -> NoReturn:
    """A bug, not bad input: one line for the user, the traceback in a file for a developer."""

    if env.get("LOOOP_DEBUG", "").strip() not in ("", "0"):
        raise exc
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    there = "nowhere (could not write a crash file)"
    dirs: list[str] = []
    try:
        dirs.append(where.join(where.resolve(env, os.getcwd())[0], "crash"))
    except Exception:
        pass  # no data dir to be had: the temp dir only
    dirs.append(env.get("TMPDIR") or "/tmp")  # tempfile's first choice, without its import
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, name)
            with open(path, "x", encoding="utf-8", errors="backslashreplace") as f:
                _print_trace(exc, f)
            there = path
            break
        except Exception:
            continue
    first = " ".join(str(exc).split())[:200]
    fail(
        f"internal error ({type(exc).__name__}: {first}) — this is a bug in looop; the details "
        f"are in {there} (set LOOOP_DEBUG=1 to see them here)",
        70,
    )


def _print_trace(exc: BaseException, f: TextIO) -> None:
    """The traceback as an uncaught exception prints it (chained causes too), into `f`."""
    err, sys.stderr = sys.stderr, f
    try:
        sys.__excepthook__(type(exc), exc, exc.__traceback__)
    finally:
        sys.stderr = err
