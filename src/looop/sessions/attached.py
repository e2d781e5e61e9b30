"""The clients attached to a session's output (`looop attach`, a watcher): each with a
bounded queue its own writer task drains, so a slow reader is dropped (told DETACHED) and
never holds the pump back; at a session's end, each is given what it is owed."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

from looop.sessions import protocol as proto
from looop.sessions.evloop import Event, Loop, within

if TYPE_CHECKING:
    from looop.sessions.evloop import Task

    class Writer(Protocol):
        """Where an attached client's frames go (control.Conn, one accepted connection)."""

        loop: Loop
        out: bytearray  # written, not yet taken by the peer

        def write(self, data: bytes) -> None: ...

        def close(self) -> None: ...

        async def drain(self, timeout: float | None = None, everything: bool = False) -> None: ...


class AttachClient:
    """An attached connection: a bounded queue drained by its own writer task."""

    def __init__(self, writer: Writer) -> None:
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
