"""The attached clients of a session: each one's bounded queue of output, drained by its own
writer task, and the wait at a session's end until each has what it is owed. Apart from the
pump, which only pushes output to them, because a client is the control socket's side of an
attach: its queue, its end frame and its drop, never the PTY's."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from looop.sessions import protocol as proto
from looop.sessions.evloop import Event, within

if TYPE_CHECKING:
    from looop.sessions.controlconn import Conn
    from looop.sessions.evloop import Loop, Task


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
