"""The log writer: output.log written on a thread of its own while a burst lasts (see
pump.py for when one starts and ends), and the gap of a log that could not be written (the
disk full) until it could again.
"""

from __future__ import annotations

import _thread  # not `threading`: built in, and all the writer thread needs
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable
else:
    from _collections import deque  # not `collections`: the package imports far more


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to `fd` (a short write goes on where it stopped); OSError as os.write."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogWriter:
    """Writes output.log on a thread of its own while a burst lasts, so the loop goes on
    reading the PTY while the kernel copies the last batch into the page cache (the loop
    would otherwise leave the PTY unread meanwhile). While it runs only it writes the log,
    in the order chunks were handed over; it does nothing but `os.write`, and the pump ends
    it once output has been quiet for pump.LOG_IDLE_S, so a quiet supervisor holds no thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.items: deque[Any] = deque()  # bytes to write, a flush marker (a lock), or None
        self.wake = _thread.allocate_lock()  # held while the thread may sleep on it
        self.wake.acquire()
        self.ended = _thread.allocate_lock()  # released as the thread ends
        self.ended.acquire()
        self.sent = 0  # bytes handed over (only the loop's thread changes it)
        self.done = 0  # bytes written or given up on (only the writer thread changes it)
        self.error: str | None = None  # the first failed write (set by the writer thread)
        self.lost = 0  # bytes not written: the failed write's and every one after it
        _thread.start_new_thread(self._run, ())

    def _hand(self, item: Any) -> None:
        self.items.append(item)
        if self.wake.locked():  # only this (the loop's) thread releases it: never twice
            self.wake.release()

    def put(self, data: bytes) -> None:
        self.sent += len(data)
        self._hand(data)

    def _run(self) -> None:
        items = self.items
        try:
            while True:
                while not items:
                    self.wake.acquire()
                item = items.popleft()
                if item is None:
                    return
                if isinstance(item, _thread.LockType):  # a flush marker: all before is out
                    item.release()
                    continue
                if self.error is None:
                    try:
                        write_all(self.fd, item)
                    except OSError as e:
                        self.error = f"output.log write failed: {e.strerror}"
                    except BaseException as e:  # never die with work queued behind
                        self.error = f"output.log write failed: {e!r}"
                if self.error is not None:
                    self.lost += len(item)
                self.done += len(item)
        finally:
            self.ended.release()

    def flush(self) -> None:
        """Wait until everything handed over is written."""
        marker = _thread.allocate_lock()
        marker.acquire()
        self._hand(marker)
        marker.acquire()

    def stop(self) -> None:
        """Write what is queued, then end the thread; returns once it has."""
        self._hand(None)
        self.ended.acquire()


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
