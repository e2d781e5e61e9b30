"""What the pump notes about a run's output beside its bytes: `OutputMark` keeps
log/output.last (when the run last printed: `stuck`) and log/output.times (where the output of
a moment begins: `log --since`); `Gap` counts what output.log lost while it could not be
written and words the one line that says so. Apart from pump.py because neither touches the
output itself: they read the clocks and write their own small files."""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING

from looop.home.clock import boottime as boot_clock
from looop.home.lastoutput import drop_mark, write_mark
from looop.sessions.logs import INDEX, INDEX_MAX

if TYPE_CHECKING:
    from collections.abc import Callable

    from looop.sessions.evloop import Handle, Loop


MARK_EVERY_S = 1.0  # the mark is at most this far behind the last output
INDEX_EVERY_S = 10  # the index says where output began to within this (and a mark's second)


class OutputMark:
    """One session's mark, from the run's start at `at`; `said(at)` on every output (and
    each later run's start)."""

    def __init__(
        self,
        loop: Loop,
        fdir: str,
        at: float,
        boottime: Callable[[], float] = boot_clock,
        offset: Callable[[], int] = lambda: 0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.loop = loop
        self.fdir = fdir  # the log folder ("" : no mark is kept)
        self.boottime = boottime
        self.offset, self.wall = offset, wall  # the log's logical end; the wall clock
        self.indexed = 0  # the wall time of the index's last line
        self.ended = -1  # the offset of its last line
        if fdir:  # offsets are this run's: an earlier run's index says nothing of them
            for name in (INDEX, f"{INDEX}.1"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(fdir, name))
        self.at = -1.0  # the last output, on the loop's (monotonic) clock
        self.written = -1.0  # the `at` the file holds
        self.handle: Handle | None = None
        self.quiet: Callable[[bool], None] | None = None  # told when output stops and comes
        self.hushed = False  # told quiet, no output since
        self.said(at)

    def said(self, at: float) -> None:
        self.at = at
        if self.handle is None and self.fdir:
            if self.hushed and self.quiet is not None:
                self.quiet(False)
            self.hushed = False
            self.write()

    def write(self) -> None:
        """The file to the last output, then a look again in a second if it changed."""
        self.handle = None
        if self.at == self.written:
            self.index(True)
            self.hushed = True
            if self.quiet is not None:
                self.quiet(True)
            return
        boot = self.boottime() - (self.loop.time() - self.at)  # the same moment, boot clock
        try:
            write_mark(self.fdir, self.at, boot)
        except OSError:
            drop_mark(self.fdir)  # a stale mark would age a worker that prints: none at all
            self.written = -1.0
        else:
            self.written = self.at
        self.handle = self.loop.call_later(MARK_EVERY_S, self.write)
        self.index(False)

    def index(self, quiet: bool) -> None:
        """A line in the index every INDEX_EVERY_S of output, and where output went quiet."""
        now = -int(-self.wall() // 1)  # rounded up: what came before it is in `offset`
        offset = self.offset()
        if (now - self.indexed < INDEX_EVERY_S and not quiet) or (quiet and offset == self.ended):
            return  # a quiet line where the last said that offset would add nothing
        self.indexed, self.ended = now, offset
        path = os.path.join(self.fdir, INDEX)
        with contextlib.suppress(OSError):  # no index: `log --since` reads from the start
            if os.path.getsize(path) > INDEX_MAX:
                os.replace(path, f"{path}.1")
        with contextlib.suppress(OSError), open(path, "a", encoding="ascii") as f:
            f.write(f"{now} {offset}\n")

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


# A log that failed (the disk full) is tried again on the first output this long after, then
# twice as long after each failure, never longer apart than RETRY_MAX_S.
RETRY_S = 1.0
RETRY_MAX_S = 30.0


class Gap:
    """Output that output.log lost: since when (wall time, for the note), how many bytes,
    when to try the log again (monotonic) and how long to wait after that try fails too."""

    def __init__(self, wall: Callable[[], float], monotonic: Callable[[], float]) -> None:
        self.wall, self.monotonic = wall, monotonic
        self.since: float | None = None
        self.lost = 0
        self.retry_at = 0.0
        self.wait = RETRY_S

    def failed(self) -> None:
        """The log failed (again): the next try is further off."""
        if self.since is None:
            self.since = self.wall()
        self.retry_at = self.monotonic() + self.wait
        self.wait = min(self.wait * 2, RETRY_MAX_S)

    def due(self) -> bool:
        return self.since is not None and self.monotonic() >= self.retry_at

    def said(self, why: str) -> str:
        """The one line that says what the log lost, so far."""
        t1, t2 = stamp(self.since if self.since is not None else self.wall()), stamp(self.wall())
        lost = f"output.log lost {self.lost} bytes of output between {t1} and {t2}"
        return lost + (f" ({why})" if why else "")

    def closed(self) -> None:
        """The log is written again: the next failure is a gap of its own."""
        self.since, self.lost, self.wait = None, 0, RETRY_S


def stamp(t: float) -> str:
    """A wall time as the records say it (UTC, to the second)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
