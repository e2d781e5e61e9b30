"""File primitives: atomic writes, appends, typed fail-closed reads (the locks: locks.py).

Plain os calls on a path or its string, no pathlib and no json package: the hot verbs
(claim, told, tell, cost report) run on this module alone."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from typing import TYPE_CHECKING, Any

from looop.home import jsonio
from looop.home.errors import CorruptState

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    # every function takes a Path or its string
    AnyPath = str | os.PathLike[str]


def encode(text: str) -> bytes:
    """UTF-8 that never raises: a lone surrogate (from JSON `\\ud800` or a non-UTF-8 argument)
    is written as its escape, which a JSON reader reads back as the same string."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def mkdirs(d: str) -> None:
    """Make directory `d` and its parents unless it exists."""
    if d and not os.path.isdir(d):  # the usual case costs one stat, not a caught exception
        os.makedirs(d, exist_ok=True)


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _temp_copy(path: AnyPath, data: bytes | str, mode: int | None, durable: bool) -> str:
    """`data` written whole (fsynced when `durable`) to a new file of its own beside `path`,
    for a rename or link into place; its path."""
    raw = encode(data) if isinstance(data, str) else data
    parent, name = os.path.split(os.fspath(path))
    mkdirs(parent)
    tmp = os.path.join(parent, f".{name}.tmp.{os.getpid()}.{os.urandom(3).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644 if mode is None else mode)
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
        if mode is not None:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    return tmp


def atomic_write(
    path: AnyPath, data: bytes | str, mode: int | None = None, *, durable: bool = True
) -> None:
    """temp + fsync + rename: readers see the old file or the new one, never a torn one.
    durable=False skips the fsync, for a file that means nothing after a crash (a pid file
    removed when its holder ends)."""
    tmp = _temp_copy(path, data, mode, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def create_new(path: AnyPath, data: bytes | str, mode: int | None = None) -> bool:
    """Write `path` whole, only if it does not exist yet (False then): written under a name of
    its own, then hard-linked in, so the name is taken like O_EXCL and no reader that polls
    for it ever sees it half written."""
    tmp = _temp_copy(path, data, mode, True)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        _unlink_quietly(tmp)
    return True


def move_aside(src: AnyPath, dst_dir: AnyPath, stem: str, ext: str) -> str:
    """Move `src` into `dst_dir` as `stem + ext`, or `stem~2 + ext`, `stem~3 + ext`… when that
    name is taken: an archive keeps every earlier copy (`~` is in no id looop makes). A link
    claims the name (it never replaces), then `src` goes; the new path. FileNotFoundError when
    `src` is gone, also when it went meanwhile (another mover got it; our link is undone)."""
    mkdirs(os.fspath(dst_dir))
    n = 1
    while True:
        name = os.path.join(dst_dir, f"{stem}{ext}" if n == 1 else f"{stem}~{n}{ext}")
        try:
            os.link(src, name)
        except FileExistsError:
            n += 1
            continue
        break
    try:
        os.unlink(src)
    except FileNotFoundError:
        _unlink_quietly(name)
        raise
    return name


def write_if_changed(path: AnyPath, data: bytes) -> bool:
    """atomic_write unless the file already holds exactly these bytes; whether it wrote.

    A beat re-senses a mostly unchanged world: comparing first spares the fsync and the rename
    (and the disk's wear) for every reading that did not move."""
    if _holds(path, data):
        return False
    atomic_write(path, data)
    return True


def _holds(path: AnyPath, data: bytes) -> bool:
    """Does the regular file at `path` hold exactly `data`? Raw reads: a beat asks this of
    every snapshot, and never blocks on a FIFO in a file's place."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False  # missing or unreadable: write it
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(data):
            return False
        got = b""
        while len(got) <= len(data):
            chunk = os.read(fd, len(data) + 1 - len(got))
            if not chunk:
                break
            got += chunk
        return got == data
    except OSError:
        return False
    finally:
        os.close(fd)


def write_json(path: AnyPath, obj: Any, *, durable: bool = True) -> None:
    atomic_write(path, jsonio.canonical(obj) + "\n", durable=durable)


_APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | os.O_NOFOLLOW


def append_line(path: AnyPath, line: str) -> None:
    """One os.write on an O_APPEND fd, so concurrent appenders never interleave a line."""
    if not line.endswith("\n"):
        line += "\n"
    mkdirs(os.path.dirname(os.fspath(path)))
    # non-blocking: a FIFO in the file's place must not hang the writer
    try:
        fd = os.open(path, _APPEND_FLAGS, 0o644)
    except OSError as e:
        if e.errno == errno.ENXIO:  # a FIFO with no reader
            raise NotRegular(errno.ENXIO, "not a regular file", str(path)) from None
        if e.errno == errno.ELOOP:  # never written through: a box may have put it there
            raise NotRegular(errno.ELOOP, "a symlink, not a file", str(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegular(errno.EINVAL, "not a regular file", str(path))
        os.write(fd, encode(line))
    finally:
        os.close(fd)


class NotRegular(OSError):
    """A path that should hold a file holds a FIFO, a device, a socket or a directory."""


def open_regular(path: AnyPath, *, follow: bool = True) -> BinaryIO:
    """A regular file opened for reading without ever blocking (see read_regular)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow:
            raise NotRegular(errno.ELOOP, "a symlink, not a file", str(path)) from None
        if e.errno == errno.ENXIO:  # a socket, or a FIFO-like device with no peer
            raise NotRegular(errno.ENXIO, "not a regular file", str(path)) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise NotRegular(errno.EINVAL, kind, str(path))
    return os.fdopen(fd, "rb")


def read_regular(path: AnyPath, limit: int | None = None, *, follow: bool = True) -> bytes:
    """A regular file's bytes (at most limit + 1 of them), without ever blocking.

    A FIFO in a file's place would hang a plain open() forever and a device could act on being
    opened: the open is non-blocking (no-follow when asked) and anything but a regular file
    raises NotRegular. FileNotFoundError when missing, like open()."""
    with open_regular(path, follow=follow) as f:
        if limit is None:
            return f.read()
        # read(n) allocates n bytes up front: a 16 MB limit on a 300-byte file cost a 16 MB
        # buffer (and its mmap) per read, in every state read of every beat and verb
        want = min(limit + 1, os.fstat(f.fileno()).st_size + 1)
        got = f.read(want)
        if len(got) < want or want == limit + 1:
            return got
        return got + f.read(limit + 1 - want)  # it grew since the fstat


def read_text(path: AnyPath) -> str | None:
    """Lossy UTF-8 text, or None when the file does not exist."""
    try:
        return read_regular(path).decode("utf-8", "replace")
    except FileNotFoundError:
        return None


# A ts a row of looop's own writes (`"ts":"2026-06-21T10:00:00Z"`): key, then 20 bytes.
_TS_KEY = b'"ts":"'


def _canonical(ts: bytes) -> bool:
    """`YYYY-MM-DDTHH:MM:SSZ`'s separators in place (then stamps compare as their times)."""
    return ts[4] == ts[7] == 45 and ts[10] == 84 and ts[13] == ts[16] == 58 and ts[19] == 90


SINCE_MAX = 16 * 1024 * 1024  # the most bytes of a ledger's tail read_since reads


def read_since(path: AnyPath, stamp: str, chunk: int = 16384, limit: int = SINCE_MAX) -> str | None:
    """The tail of an append-only JSON-lines file whose rows carry their UTC `ts` in time
    order (the cost ledger), lossily decoded, from a line start; None when missing.

    Read backwards a chunk at a time, it stops at the first chunk whose whole lines carry
    stamps (in looop's own spelling) that are all older than `stamp`: a reader of today's
    rows then costs the size of the last days, not the file's whole history. Rows older than
    that chunk are not looked at, so a row stamped later can only be missed behind a chunk of
    older ones (the clock set back by days); lines with no such stamp never stop it. Never
    more than `limit` bytes are read, and a line over LINE_MAX is left out (a box can write
    the ledger: one endless line must not cost a reader the file)."""
    try:
        f = open_regular(path, follow=False)
    except FileNotFoundError:
        return None
    cut, pos, parts = stamp.encode("ascii"), 0, []
    with f:
        for pos, data in _backwards(f, chunk, limit):
            parts.append(data)
            if pos and _all_older(data, cut):
                parts[-1] = data[data.find(b"\n") + 1 :]
                pos = 0
                break
    lines = b"".join(reversed(parts)).split(b"\n")
    if pos > 0:
        lines[0] = b""  # cut by the limit: part of a line
    kept = [ln for ln in lines if len(ln) <= LINE_MAX]
    return b"\n".join(kept).decode("utf-8", "replace")


def _backwards(f: BinaryIO, chunk: int, limit: int) -> Iterator[tuple[int, bytes]]:
    """`f`'s chunks from its end back, each with where it starts: at most `limit` bytes."""
    pos = f.seek(0, os.SEEK_END)
    while pos > 0 and limit > 0:
        step = min(chunk, pos, limit)
        pos, limit = pos - step, limit - step
        f.seek(pos)
        yield pos, f.read(step)


def _all_older(data: bytes, cut: bytes) -> bool:
    """Whether the whole lines of `data` (after its first newline, before its last) carry
    at least one stamp and every stamp is older than `cut`."""
    start, end = data.find(b"\n"), data.rfind(b"\n")
    if start < 0 or end <= start:
        return False
    seen = False
    at = data.find(_TS_KEY, start, end)
    while at >= 0:
        ts = data[at + 6 : at + 26]
        if len(ts) == 20 and data[at + 26 : at + 27] == b'"' and _canonical(ts):
            if ts >= cut:
                return False
            seen = True
        at = data.find(_TS_KEY, at + 6, end)
    return seen


def read_json(path: AnyPath) -> Any:
    """Parsed JSON, None when missing; CorruptState when present but unreadable."""
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CorruptState(f"cannot read {path}: {e.strerror}; delete it to reset") from e
    return json_of(raw, path)


def json_of(raw: bytes, where: AnyPath) -> Any:
    """A state file's bytes parsed (strict JSON); CorruptState naming `where` when not JSON."""
    try:
        return jsonio.safe_loads(raw.decode("utf-8"), max_int_digits=4000)
    except ValueError as e:
        raise CorruptState(f"{where} is not valid JSON ({e}); delete it to reset") from e


SETTLED_S = 2.0  # a file changed this recently may change again within its mtime's tick


def settled(path: AnyPath) -> tuple[int, int, int] | None:
    """The (inode, mtime, ctime) a reader may remember `path` by, to skip reading it while it
    stays the same (a folder: any file made, renamed in or removed changes it); None while it
    changed too lately to tell a change since by its stamp, or cannot be stat'ed; (0, 0, 0)
    while there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0, 0, 0
    except OSError:
        return None
    fresh = time.time() - st.st_mtime <= SETTLED_S  # the kernel's clock stamps files
    return None if fresh else (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


# What json_objects read of each folder, under its settled stamp then: a reader's memory.
Folders = dict[str, tuple[tuple[int, int, int], dict[str, dict[str, Any]]]]


def json_objects(folder: str, memo: Folders | None = None) -> dict[str, dict[str, Any]]:
    """Each `<name>.json` object in `folder` by name (a dot file or an unreadable one left
    out); `memo`: the caller's (the pulse's): while the folder stays as it was, none is read
    again."""
    stamp, (was, got) = settled(folder), (memo or {}).get(folder, (None, None))
    if memo is None or stamp is None or was != stamp or got is None:
        got = {}
        with contextlib.suppress(OSError):
            for n in sorted(n for n in os.listdir(folder) if n.endswith(".json") and n[0] != "."):
                with contextlib.suppress(CorruptState, OSError):
                    if (rec := read_json_object(os.path.join(folder, n))) is not None:
                        got[n[:-5]] = rec
    if memo is not None:
        memo.pop(folder, None)
        memo.update({folder: (stamp, got)} if stamp is not None else {})
    return got


def read_json_object(path: AnyPath) -> dict[str, Any] | None:
    """Like read_json, but a non-object counts as corrupt."""
    v = read_json(path)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise CorruptState(f"{path} does not hold a JSON object; delete it to reset")
    return v


def remove(path: AnyPath) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


TAIL_MAX = 4 * 1024 * 1024  # the most bytes a tail reads back (a box can write the ledgers)
LINE_MAX = 256 * 1024  # a longer line is skipped, with a note in its place


LONG_LINE_NOTE = f"(a line over {LINE_MAX} bytes skipped)"


def tail_lines(
    path: AnyPath, n: int, chunk: int = 65536, *, limit: int = TAIL_MAX, follow: bool = True
) -> list[str]:
    """The last n non-blank lines, read backwards a chunk at a time: linear in what it reads,
    and never more than `limit` bytes (a line longer than LINE_MAX becomes LONG_LINE_NOTE)."""
    raw = tail_raw(path, n, chunk, limit=limit, follow=follow)
    lines = [_line(r) for r in raw.split(b"\n") if r.strip()]
    return lines[-n:]


def tail_raw(
    path: AnyPath, n: int, chunk: int = 65536, *, limit: int = TAIL_MAX, follow: bool = True
) -> bytes:
    """tail_lines' bytes, undecoded: at least the last n lines where the file and `limit`
    hold them, from a line's start (a first line longer than LINE_MAX kept whole, so a
    caller can tell it apart); b"" for a missing file. For a reader that looks for a few
    lines by their bytes and decodes only those (beatlog.paused_at)."""
    if n <= 0:
        return b""
    try:
        f = open_regular(path, follow=follow)
    except FileNotFoundError:
        return b""
    pos, parts, newlines = 0, [], 0
    with f:
        for got in _backwards(f, chunk, limit):
            pos, data = got  # where the last chunk read starts: 0, the file's start
            parts.append(data)
            newlines += data.count(b"\n")
            if newlines > n + 1:
                break
    raw = b"".join(reversed(parts))
    cut = raw.find(b"\n")
    if cut < 0:
        cut = len(raw)
    if pos > 0 and cut <= LINE_MAX:
        raw = raw[cut:]  # the first piece began before what was read: part of a line
    return raw


def _line(raw: bytes) -> str:
    return LONG_LINE_NOTE if len(raw) > LINE_MAX else raw.decode("utf-8", "replace")


class Follower:
    """tail -f without blocking: the whole non-blank lines appended to a file since the last
    call. A file replaced (another inode) or truncated is read from its start; a half-written
    last line waits until it is complete; a missing or unreadable file gives no lines yet.
    start: ((st_dev, st_ino), offset) to follow from; None: the file's start."""

    def __init__(
        self,
        path: AnyPath,
        start: tuple[tuple[int, int], int] | None = None,
        read_max: int | None = None,
    ) -> None:
        self.path = path
        self.ident: tuple[int, int] | None = start[0] if start is not None else None
        self.offset = start[1] if start is not None else 0
        self.read_max = read_max  # the most new bytes one call reads; None: all of them
        self.partial = b""

    def skip_to_end(self) -> None:
        """Follow from the file's end as it is now: lines already there are not given."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        self.ident, self.offset, self.partial = (st.st_dev, st.st_ino), st.st_size, b""

    def lines(self) -> list[str]:
        try:
            st = os.stat(self.path)  # one stat per poll while nothing changes
        except OSError:
            return []
        ident = (st.st_dev, st.st_ino)
        if ident != self.ident or st.st_size < self.offset:
            self.ident, self.offset, self.partial = ident, 0, b""
        want = st.st_size - self.offset
        if want <= 0:
            return []
        if self.read_max is not None:
            want = min(want, self.read_max)
        try:
            with open_regular(self.path) as f:
                now = os.fstat(f.fileno())
                if (now.st_dev, now.st_ino) != ident:
                    return []  # replaced since the stat: the next call starts it afresh
                f.seek(self.offset)
                chunk = f.read(want)
        except OSError:
            return []
        self.offset += len(chunk)
        *done, rest = chunk.split(b"\n")
        if done:
            done[0], self.partial = self.partial + done[0], b""
        if len(self.partial) + len(rest) > LINE_MAX:  # a line with no end (a box can write)
            self.partial = b"x" * (LINE_MAX + 1)  # said once it ends; never grown further
        else:
            self.partial += rest
        return [_line(raw) for raw in done if raw.strip()]
