"""Live events for SSE clients: one tailer per server reads what the loop appends to
events.jsonl and journal.md and hands each new line to every client's bounded queue. A client
too slow to keep its queue from filling is dropped (its browser reconnects and reloads the
state), so a stuck reader never holds memory or the other clients up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from looop.core.context import Ctx
from looop.web.reads import journal_row

QUEUE_MAX = 512  # lines a client may fall behind before it is dropped
READ_MAX = 1 << 20  # the most new bytes read from one file per poll
POLL_S = 0.2


class Tail:
    """New whole lines appended to one file since the last read; a rotated or truncated file
    is read from its start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ident: tuple[int, int] | None = None
        self.offset = 0
        self.partial = b""
        self.skip_to_end()

    def skip_to_end(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            return
        self.ident, self.offset = (st.st_dev, st.st_ino), st.st_size

    def lines(self) -> list[str]:
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        ident = (st.st_dev, st.st_ino)
        if ident != self.ident or st.st_size < self.offset:
            self.ident, self.offset, self.partial = ident, 0, b""
        if st.st_size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(min(READ_MAX, st.st_size - self.offset))
        except OSError:
            return []
        self.offset += len(chunk)
        *done, self.partial = (self.partial + chunk).split(b"\n")
        return [ln.decode("utf-8", "replace") for ln in done if ln.strip()]


class Hub:
    def __init__(self, ctx: Ctx, poll_s: float = POLL_S, queue_max: int = QUEUE_MAX) -> None:
        self.ctx, self.poll_s, self.queue_max = ctx, poll_s, queue_max
        self.clients: set[asyncio.Queue[str | None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.dropped = 0

    def subscribe(self) -> asyncio.Queue[str | None]:
        q: asyncio.Queue[str | None] = asyncio.Queue(self.queue_max)
        self.clients.add(q)
        if self.task is None or self.task.done():
            # the files' ends are taken now, so a line appended once a client has connected
            # is never skipped, however late the tailer's first turn comes
            tails = Tail(self.ctx.paths.events), Tail(self.ctx.paths.journal)
            self.task = asyncio.get_running_loop().create_task(self._run(*tails))
        return q

    def unsubscribe(self, q: asyncio.Queue[str | None]) -> None:
        self.clients.discard(q)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for q in list(self.clients):
            self._drop(q)

    def _drop(self, q: asyncio.Queue[str | None]) -> None:
        self.clients.discard(q)
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)  # the stream ends; the browser reconnects

    def publish(self, msg: str) -> None:
        for q in list(self.clients):
            try:
                q.put_nowait(msg)
            except asyncio.QueueFull:
                self.dropped += 1
                self._drop(q)

    async def _run(self, events: Tail, journal: Tail) -> None:
        while self.clients:
            for line in events.lines():
                obj = _event(line)
                if obj is not None:
                    self.publish(json.dumps({"kind": "event", "data": obj}, ensure_ascii=False))
            for line in journal.lines():
                row = journal_row(line)
                self.publish(json.dumps({"kind": "journal", "data": row}, ensure_ascii=False))
            await asyncio.sleep(self.poll_s)


def _event(line: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None  # a torn or hand-edited line
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    return obj
