"""The log writer: output.log written on a thread of its own while a burst lasts (see
pump.py for when one starts and ends), and the gap of a log that could not be written (the
disk full) until it could again.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


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
        import threading  # lazy: in the session host it costs each fork ~200 kB (after-fork hook)

        self.fd = fd
        self.items: deque[Any] = deque()  # bytes to write, a flush marker, or None
        self.ready = threading.Semaphore(0)  # one release per item
        self.marker = threading.Event
        self.sent = 0  # bytes handed over (only the loop's thread changes it)
        self.done = 0  # bytes written or given up on (only the writer thread changes it)
        self.error: str | None = None  # the first failed write (set by the writer thread)
        self.lost = 0  # bytes not written: the failed write's and every one after it
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _hand(self, item: Any) -> None:
        self.items.append(item)
        self.ready.release()

    def put(self, data: bytes) -> None:
        self.sent += len(data)
        self._hand(data)

    def _run(self) -> None:
        while self.ready.acquire() and (item := self.items.popleft()) is not None:
            if callable(item):  # a flush marker: all before is out
                item()
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

    def flush(self) -> None:
        """Wait until everything handed over is written."""
        marker = self.marker()
        self._hand(marker.set)
        marker.wait()

    def stop(self) -> None:
        """Write what is queued, then end the thread; returns once it has."""
        self._hand(None)
        self.thread.join()


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
