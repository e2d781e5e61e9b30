"""The supervisor's side of home/lastoutput.py: `log/output.last` says when the run last
printed, on the monotonic and boot clocks, so `stuck` is judged by time a wall-clock step
does not move. Written when output comes after a second's quiet and once more a second
after output, never more often: a worker printing all the time costs one small rename a
second, a quiet one nothing. The look a second after output that finds none since is the
moment output went quiet: `quiet(True)` is told then, `quiet(False)` at the next output.
Every INDEX_EVERY_S of output it also appends `<wall time> <offset>` to `log/output.times`,
so `looop log --since 10m` finds where the output of a moment begins (home/logs.offset_at)."""

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
        if now - self.indexed < INDEX_EVERY_S and not quiet:
            return
        self.indexed = now
        path = os.path.join(self.fdir, INDEX)
        with contextlib.suppress(OSError):  # no index: `log --since` reads from the start
            if os.path.getsize(path) > INDEX_MAX:
                os.replace(path, f"{path}.1")
        with contextlib.suppress(OSError), open(path, "a", encoding="ascii") as f:
            f.write(f"{now} {self.offset()}\n")

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
