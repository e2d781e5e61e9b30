"""Woken by a change: the kernel's inotify tells a sleeping pulse, or a worker's waiting `ask`,
that a file it reads changed, so neither polls. inotify_simple is the whole binding: a
descriptor to select on beside a bell, no thread and no timer of its own. Where inotify is
missing or out of watches, what cannot be watched is not, and the caller's own timeout (the
pulse's interval, the ask's poll) is the fallback."""

from __future__ import annotations

import contextlib
import errno
import os
import select

from inotify_simple import INotify, flags

# what a reader would see differ: written, made, renamed in or out, removed
CHANGES = (
    flags.CREATE
    | flags.MODIFY
    | flags.CLOSE_WRITE
    | flags.MOVED_TO
    | flags.MOVED_FROM
    | flags.DELETE
    | flags.DELETE_SELF
    | flags.MOVE_SELF
    | flags.ATTRIB
)
_CAME = flags.CREATE | flags.MOVED_TO
_WENT = flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED  # a watched folder itself went
_ALL: frozenset[str] = frozenset({"*"})  # a folder watched whole: any name in it


class Watcher:
    """One inotify descriptor over some files and folders, and a bell: `wait` returns True on
    a change to a watched path, False when the time ran out, the bell rang or only an
    unwatched neighbour changed (its caller loops on its own clock)."""

    def __init__(self) -> None:
        try:
            self._ino: INotify | None = INotify(nonblocking=True)
        except OSError:  # no inotify here (or out of instances): the timeout alone wakes
            self._ino = None
        self._names: dict[int, frozenset[str]] = {}  # a watch's names of interest
        self._bell_r, self._bell_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.refused: list[str] = []  # paths that could not be watched, with why
        self.used_up = False  # the kernel's inotify watches ran out (ENOSPC): a clock wakes
        # a folder came into a watched one, or a watched folder went: the watches no longer
        # cover what is there (its caller watches anew and clears this)
        self.stale = False

    @property
    def usable(self) -> bool:
        return self._ino is not None

    def fileno(self) -> int | None:
        """The descriptor an event loop waits on (readable when a change is queued); None
        without inotify."""
        return self._ino.fileno() if self._ino is not None else None

    def watch(self, path: str, itself: bool = False) -> bool:
        """A folder: any entry in it made, written, renamed or removed. A file: that name in
        its folder (an atomic replace is a new file under the old name; a file made later
        counts; a name ending in `*` stands for every name it begins); `itself`: that file
        alone, not its busy neighbours (a replace unlinks it: watch it anew after each wake;
        not there yet: its name in its folder). False (and said in `refused`) when it cannot
        be watched."""
        if self._ino is None:
            return False
        path = os.path.abspath(path)
        if (itself and os.path.exists(path)) or os.path.isdir(path):
            where, name = path, "*"
        else:
            where, name = os.path.dirname(path), os.path.basename(path)
        try:
            wd = self._ino.add_watch(where, CHANGES)
        except OSError as e:  # missing folder, no permission, ENOSPC (out of watches)
            self.refused.append(f"{path}: {e.strerror or e}")
            self.used_up = self.used_up or e.errno == errno.ENOSPC
            return False
        had = self._names.get(wd, frozenset())
        self._names[wd] = _ALL if "*" in had or name == "*" else had | {name}
        return True

    def forget(self) -> None:
        """Drop every watch (the pulse watches anew for each sleep: sensors and workers come
        and go)."""
        if self._ino is None:
            return
        for wd in list(self._names):
            with contextlib.suppress(OSError):  # its folder went: the kernel dropped it
                self._ino.rm_watch(wd)
        self._names.clear()
        self.refused.clear()
        self.used_up = False
        self.drain()
        self.stale = False

    def ring(self) -> None:
        """Wake a `wait` now (safe in a signal handler: one write to a pipe)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._bell_w, b"!")

    def wait(self, timeout: float | None) -> bool:
        """Sleep until something happens: True for a watched path's change; False for the
        timeout, the bell, or a change to a neighbour of a watched file."""
        fds = [self._bell_r] + ([self._ino.fileno()] if self._ino is not None else [])
        ready, _, _ = select.select(fds, [], [], timeout)
        if self._bell_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._bell_r, 512)
            return False
        return bool(ready) and self.drain()

    def drain(self) -> bool:
        """Read what inotify queued; True if any of it concerns a watched name."""
        if self._ino is None:
            return False
        hit = False
        try:
            events = self._ino.read(timeout=0)
        except OSError:
            return False
        for ev in events:
            names = self._names.get(ev.wd)
            if ev.mask & flags.Q_OVERFLOW:
                hit = self.stale = True  # lost some: assume a change, and watch anew
                continue
            if names is None:
                continue
            if ev.mask & _WENT:
                hit = self.stale = True
            elif names is _ALL or "*" in names or not ev.name or _named(ev.name, names):
                hit = True
                if ev.mask & flags.ISDIR and ev.mask & _CAME:
                    self.stale = True  # a folder came in: what is in it is not watched yet
        return hit

    def close(self) -> None:
        if self._ino is not None:
            self._ino.close()
            self._ino = None
        for fd in (self._bell_r, self._bell_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _named(name: str, names: frozenset[str]) -> bool:
    """Whether an event's name is one of a watch's names (or begins one ending in `*`)."""
    return name in names or any(n[-1] == "*" and name.startswith(n[:-1]) for n in names if n)
