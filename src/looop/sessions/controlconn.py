"""One accepted connection of the control socket on the supervisor's loop: non-blocking,
buffered both ways, with deadlines on its reads and its drain; and a session's attached
clients: each one's bounded queue of output, drained by its own writer task, and the wait
at a session's end until each has what it is owed. Apart from control.py, which parses each
request and answers it, because this is the bytes' plumbing alone: it knows no op and no
session; the pump only pushes output to the clients."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from typing import TYPE_CHECKING

from looop.sessions import protocol as proto
from looop.sessions.evloop import Event, Future, Loop, within

if TYPE_CHECKING:
    from looop.sessions.evloop import Task

READ_CHUNK = 65536
HIGH_WATER = 64 * 1024  # a drain waits while more than this is unsent …
LOW_WATER = 16 * 1024  # … until it is down to this


class Closed(ConnectionError):
    """The peer went away (or the connection was closed) before the bytes came."""


class Conn:
    """One accepted connection. Reads and drains are awaited inside a `Task`."""

    def __init__(self, loop: Loop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.rbuf = bytearray()
        self.eof = False
        self.out = bytearray()
        self.closing = False  # close once `out` is sent
        self.closed = False
        self.lost = False  # a write failed: the peer is gone
        self._rwait: Future | None = None
        self._dwait: Future | None = None
        self._dlow = LOW_WATER  # what `drain` waits for the unsent bytes to fall to

    # ---- reading
    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self.rbuf += data
        else:
            self.eof = True
        f = self._rwait
        if f is not None and not f.done():
            f.set_result(None)

    async def _more(self, deadline: float | None) -> None:
        """Wait for the next read (or EOF); TimeoutError past `deadline`."""
        if self.closed or self.eof:
            raise Closed("connection closed")
        f = self._rwait = self.loop.future()
        self.loop.add_reader(self.fd, self._readable)
        try:
            if not await within(self.loop, f, deadline and deadline - self.loop.time()):
                raise TimeoutError
        finally:
            self._rwait = None
            if not self.closed:
                self.loop.remove_reader(self.fd)

    async def readline(self, limit: int, timeout: float) -> bytes:
        """One line with its newline, or what came before EOF; ValueError past `limit`."""
        deadline = self.loop.time() + timeout
        buf = self.rbuf
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i >= 0:
                if i + 1 > limit:
                    raise ValueError("line too long")
                line = bytes(buf[: i + 1])
                del buf[: i + 1]
                return line
            if len(buf) > limit:
                raise ValueError("line too long")
            if self.eof or self.closed:
                line = bytes(buf)
                buf.clear()
                return line
            start = len(buf)
            await self._more(deadline)

    async def readexactly(self, n: int) -> bytes:
        buf = self.rbuf
        while len(buf) < n:
            await self._more(None)  # Closed at EOF: a cut-off frame ends the attach
        data = bytes(buf[:n])
        del buf[:n]
        return data

    # ---- writing
    def write(self, data: bytes) -> None:
        if self.closed or self.closing or self.lost or not data:
            return
        if not self.out:
            try:
                n = os.write(self.fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._lose()
                return
            if n == len(data):
                return
            data = data[n:]
            self.loop.add_writer(self.fd, self._writable)
        self.out += data

    def _writable(self) -> None:
        out = self.out
        while out:
            try:
                n = os.write(self.fd, out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._lose()
                return
            del out[:n]
        f = self._dwait
        if f is not None and len(out) <= self._dlow and not f.done():
            f.set_result(None)
        if not out:
            self.loop.remove_writer(self.fd)
            if self.closing:
                self._close_now()

    def _lose(self) -> None:
        self.lost = True
        self.out.clear()
        self._close_now()

    async def drain(self, timeout: float | None = None, everything: bool = False) -> None:
        """Wait until the unsent bytes are few (none: `everything`); Closed when the peer is
        gone."""
        if self.lost:
            raise Closed("connection lost")
        if len(self.out) <= (0 if everything else HIGH_WATER):
            return
        self._dlow = 0 if everything else LOW_WATER
        f = self._dwait = self.loop.future()
        try:
            if not await within(self.loop, f, timeout):
                raise TimeoutError
        finally:
            self._dwait = None
        if self.lost:
            raise Closed("connection lost")

    # ---- ending
    def close(self) -> None:
        """Close once what was written is sent (at once when nothing waits)."""
        if self.closed:
            return
        self.closing = True
        if not self.out:
            self._close_now()

    def abort(self) -> None:
        """Close now, unsent bytes dropped."""
        self.out.clear()
        self._close_now()

    def _close_now(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.eof = True
        self.loop.remove_reader(self.fd)
        self.loop.remove_writer(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        for f in (self._rwait, self._dwait):
            if f is not None and not f.done():
                f.set_result(None)


class AttachClient:
    """An attached connection: a bounded queue drained by its own writer task."""

    def __init__(self, writer: Conn) -> None:
        self.writer = writer
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.wake = Event(writer.loop)
        self.end: bytes | None = None  # the EXIT or DETACHED frame to send after the queue
        self.dropped = False
        self.task: Task | None = None

    def push(self, data: bytes) -> None:
        if self.dropped or self.end is not None:
            return
        if self.queued + len(data) > proto.CLIENT_QUEUE_MAX:
            self.drop()
            return
        self.queue.append(data)
        self.queued += len(data)
        self.wake.set()

    def finish(self, end: bytes) -> None:
        if self.end is None and not self.dropped:
            self.end = end
            self.wake.set()

    def drop(self) -> None:
        """Too slow a reader: forget its queue, tell it DETACHED, never block the pump."""
        if self.dropped:
            return
        self.dropped = True
        self.queue.clear()
        self.queued = 0
        if self.task is not None:
            self.task.cancel()
        self.writer.write(proto.frame(proto.DETACHED))
        self.writer.close()


STILL_S = 2.0  # at a session's end, an attached client that takes nothing this long is left
DELIVER_MAX_S = 30.0  # however steadily it reads, the end waits no longer for it


async def delivered(loop: Loop, clients: tuple[AttachClient, ...]) -> None:
    """Until each client has what it is owed (its output, then EXIT): one still taking its
    queue gets more time, up to DELIVER_MAX_S; one that took nothing for STILL_S is left. A
    loaded machine slows a watcher; it does not lose it the end of the output."""
    deadline = loop.time() + DELIVER_MAX_S
    owed = sum(c.queued + len(c.writer.out) for c in clients)
    while True:
        going = [c for c in clients if c.task is not None and not c.task.done()]
        wait = min(STILL_S, deadline - loop.time())
        if not going or wait <= 0:
            return
        await within(loop, [c.task for c in going if c.task is not None], wait)
        left = sum(c.queued + len(c.writer.out) for c in going)
        if left >= owed:
            return
        owed = left
