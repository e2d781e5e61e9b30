"""A session's output as one stream of bytes across rotation.

The files live in the session's `log/` folder; `output.log` beside it is a symlink to
`log/output.log`, so every reader of that path reads on as before. The supervisor writes
`log/output.log`; once it holds `max_bytes` it is renamed `output.log.1` (the older ones shift
up: `.2`, `.3` …) and a new `output.log` is begun, so a session never holds more than
`max_files` log files of at most `max_bytes` each. The earlier runs of a reused id live in the
same numbered files (`reuse` shifts the last run's log to `.1`), so they count in the same cap
and are the first to go. Why a folder: a sandbox hides another worker's log by mounting over
what exists when it starts; a mount over a file stays with that file when it is renamed, so a
new `output.log` would be readable inside. Over the folder it holds whatever is renamed or
made within (docs/THREAT_MODEL.md).

Offsets are logical: the bytes this run wrote before, whatever file they are in now. Where
each of this run's files begins is in `output.pos`, one line rewritten by rename at start and
at every rotation: `<inode>:<start>` per file, newest (`output.log`) first. A reader checks
each file it opens against its inode there, so a rotation between its steps is seen (and the
read taken again), never read as the wrong bytes.

Standard library only (`os`): the supervisor writes through here and `looop log` reads.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from looop.home.store import AnyPath

LOG = "output.log"
POS = "output.pos"
DIR = "log"  # the folder that holds the files; a session made before it has them at the top
# Defaults (the knobs session_log_max_bytes / session_log_max_files): see home/knobs.py.
MAX_BYTES = 16 * 1024 * 1024
MAX_FILES = 4
MIN_BYTES = 64 * 1024
MIN_FILES = 2  # the file being written and the one before it
RETRIES = 200  # a reader that met a rotation half done looks again, up to this often …
RETRY_S = 0.002  # … this far apart (a rotation is a few renames)


def numbered(n: int) -> str:
    return LOG if n == 0 else f"{LOG}.{n}"


def files_dir(sdir: AnyPath) -> str:
    """Where a session's log files are: `log/`, or the session's own folder (made before)."""
    d = os.path.join(sdir, DIR)
    return d if os.path.isdir(d) else str(sdir)


def prepare(sdir: AnyPath) -> str:
    """At a supervisor's start: the `log/` folder (a plain output.log left at the top moves
    into it) and the `output.log` symlink to it; the folder's path."""
    d = os.path.join(sdir, DIR)
    top = os.path.join(sdir, LOG)
    if not os.path.isdir(d):
        os.mkdir(d, 0o700)
    if not os.path.islink(top):
        if os.path.exists(top):
            os.rename(top, os.path.join(d, LOG))
        os.symlink(os.path.join(DIR, LOG), top)
    return d


def read_pos(fdir: AnyPath) -> list[tuple[int, int]] | None:
    """(inode, start) per file of this run, newest first; None when unknown (no `output.pos`,
    or one that does not parse: read as a log that never rotated)."""
    try:
        with open(os.path.join(fdir, POS), "rb") as f:
            raw = f.read(4096)
    except OSError:
        return None
    out: list[tuple[int, int]] = []
    for word in raw.split():
        ino, sep, start = word.partition(b":")
        if not (sep and ino.isdigit() and start.isdigit()):
            return None
        out.append((int(ino), int(start)))
    return out or None


def write_pos(fdir: AnyPath, entries: list[tuple[int, int]]) -> None:
    """Replace `output.pos` (put_line)."""
    put_line(os.path.join(fdir, POS), " ".join(f"{ino}:{start}" for ino, start in entries) + "\n")


def put_line(path: str, line: str) -> None:
    """Replace the file at `path` by rename (a reader sees the old line or the new, never half)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def shift(fdir: AnyPath, keep: int) -> None:
    """`output.log` → `.1`, `.1` → `.2` …, keeping at most `keep` numbered files (the oldest
    go first, and any beyond `keep` left by a larger cap before). No `output.log` after."""
    try:
        names = os.listdir(fdir)
    except FileNotFoundError:
        return
    prefix = LOG + "."
    for name in names:
        tail = name[len(prefix) :] if name.startswith(prefix) else ""
        if tail.isdigit() and int(tail) >= keep:
            _unlink(os.path.join(fdir, name))
    for n in range(keep - 1, -1, -1):
        src = os.path.join(fdir, numbered(n))
        if keep == 0:
            _unlink(src)
            continue
        with contextlib.suppress(FileNotFoundError):
            os.rename(src, os.path.join(fdir, numbered(n + 1)))


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def open_log(fdir: AnyPath) -> int:
    """A fresh descriptor appending to `output.log` (made 0600 when absent)."""
    return os.open(
        os.path.join(fdir, LOG),
        os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
        0o600,
    )


class LogView:
    """This run's log files, open, as one range of logical offsets [start, end). `end` is
    where `output.log` ended when the view was made; reads past it get what is there."""

    def __init__(self, parts: list[tuple[int, int, int]]) -> None:
        self.parts = parts  # (fd, start, size), oldest first; the last is output.log
        self.start = parts[0][1] if parts else 0
        self.end = parts[-1][1] + parts[-1][2] if parts else 0

    def read(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes from logical `offset` (clipped to what is kept), across files."""
        offset = max(offset, self.start)
        out: list[bytes] = []
        parts = self.parts
        for i, (fd, start, length) in enumerate(parts):
            last = i == len(parts) - 1
            if size <= 0:
                break
            if not last and offset >= start + length:
                continue
            want = size if last else min(size, start + length - offset)
            data = os.pread(fd, want, offset - start)
            if not data:
                break
            out.append(data)
            offset += len(data)
            size -= len(data)
        return b"".join(out)

    def close(self) -> None:
        for fd, _start, _size in self.parts:
            os.close(fd)
        self.parts = []

    def __enter__(self) -> LogView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_view(sdir: AnyPath, since: int = 0) -> LogView:
    """This run's log from about logical `since` on (files wholly before it stay closed).
    A log that never rotated (or whose `output.pos` is missing) is `output.log` from 0."""
    fdir = files_dir(sdir)
    for _ in range(RETRIES):
        view = _try_view(fdir, since)
        if view is not None:
            return view
        time.sleep(RETRY_S)  # a rotation is half done: its renames take microseconds
    return _try_view(fdir, since, trust=True) or LogView([])


def output_at(sdir: AnyPath, since: int | None, most: int) -> tuple[int, int, bytes]:
    """A terminal's raw output by logical offsets: (where `data` starts, the log's end, data),
    the bytes from `since` (or the first still kept) to the end, at most the last `most` of
    them; `since` None: only the last `most`. A log not there reads as empty, ending at 0."""
    with open_view(sdir, since or 0) as view:
        end = view.end
        start = max(view.start, end - most, since or 0)
        return start, end, view.read(start, end - start) if start < end else b""


def _try_view(fdir: AnyPath, since: int, trust: bool = False) -> LogView | None:
    """The view, or None when a file is not the one `output.pos` names (a rotation is half
    done). `trust`: take the files as they are (a supervisor that died mid-rotation)."""
    pos = read_pos(fdir) or [(-1, 0)]  # no record: output.log alone, from 0
    parts: list[tuple[int, int, int]] = []
    ok = False
    try:
        for n, (ino, start) in enumerate(pos):
            try:
                fd = os.open(os.path.join(fdir, numbered(n)), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if n == 0 and ino >= 0 and not trust:
                    return None  # renamed away, the new one not yet made
                break  # no log yet, or the older files were pruned: the view starts later
            parts.append((fd, start, 0))
            st = os.fstat(fd)
            if ino >= 0 and st.st_ino != ino and not trust:
                return None
            parts[-1] = (fd, start, st.st_size)
            if start <= since:
                break  # the older files hold nothing from `since` on
        ok = True
    finally:
        if not ok:
            for fd, _start, _size in parts:
                os.close(fd)
    parts.reverse()
    return LogView(parts)


def tail(sdir: AnyPath, limit: int) -> bytes:
    """The last `limit` bytes of this run's log, across its rotated files."""
    with open_view(sdir) as view:
        limit = min(limit, view.end - view.start)
        return view.read(view.end - limit, limit)


def stat_log(sdir: AnyPath) -> tuple[int, int] | None:
    """(logical end, output.log's mtime in ns) without opening the files when no rotation is
    under way; None when there is no log."""
    fdir = files_dir(sdir)
    pos = read_pos(fdir)
    try:
        st = os.stat(os.path.join(fdir, LOG))
    except OSError:
        return None
    if pos is None or st.st_ino == pos[0][0]:
        return (pos[0][1] if pos else 0) + st.st_size, st.st_mtime_ns
    with open_view(sdir, 1 << 62) as view:  # a rotation is half done: wait it out
        return view.end, st.st_mtime_ns
