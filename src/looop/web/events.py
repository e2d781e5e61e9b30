"""Live events for SSE clients: one tailer per server reads what the loop appends to
events.jsonl and journal.md and hands each new line to every client's bounded queue; a change
to what `looop status` reads that no line tells (a worker's status, a goal, an ask) is pushed
as `{"kind": "changed"}`, so the page redraws on a change and never polls. The tailer sleeps
until the kernel says a file changed (web/cache.Changes), looking anyway every RESYNC_S; where
inotify is missing it looks every POLL_S. A client too slow to keep its queue from filling is
dropped (its browser reconnects and reloads the state), so a stuck reader never holds memory
or the other clients up. Each look's last message carries where the hub had read both
files (`id:`), so a browser that reconnects with Last-Event-ID is sent what it missed."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

from looop.act.journal import journal_row
from looop.core.context import Ctx
from looop.home import jsonio, store
from looop.web.cache import Changes

QUEUE_MAX = 512  # lines a client may fall behind before it is dropped
READ_MAX = 1 << 20  # the most new bytes read from one file per poll
POLL_S = 0.2  # without inotify: how often the files are looked at; with it, the least gap
# between two looks (a burst of appends is read in one go)
RESYNC_S = 60.0  # with inotify: a look with nothing said, in case a change went unseen
CHANGED = jsonio.dumps({"kind": "changed"})
MARK = re.compile(r"(\d+):(\d+)\.(\d+):(\d+)")  # an id: events' inode:offset.journal's
Sent = tuple[str, str | None]  # a message and, on a look's last one, its id


class Hub:
    def __init__(
        self,
        ctx: Ctx,
        poll_s: float = POLL_S,
        queue_max: int = QUEUE_MAX,
        changes: Changes | None = None,
        resync_s: float = RESYNC_S,
    ) -> None:
        self.ctx, self.poll_s, self.queue_max = ctx, poll_s, queue_max
        self.changes, self.resync_s = changes, resync_s
        self.clients: set[asyncio.Queue[Sent | None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.tails = _tail(ctx.paths.events), _tail(ctx.paths.journal)
        self.dropped = 0

    def subscribe(self, last_id: str | None = None) -> asyncio.Queue[Sent | None]:
        """A client's queue; with `last_id` (its Last-Event-ID) it first holds what the hub
        read since that id (at most READ_MAX of each file)."""
        q: asyncio.Queue[Sent | None] = asyncio.Queue(self.queue_max)
        self.clients.add(q)
        if self.task is None or self.task.done():
            # the files' ends are taken now, so a line appended once a client has connected
            # is never skipped, however late the tailer's first turn comes
            self.tails = _tail(self.ctx.paths.events), _tail(self.ctx.paths.journal)
            self.task = asyncio.get_running_loop().create_task(self._run(*self.tails))
        m = MARK.fullmatch(last_id or "")
        if m is not None:
            ev_inode, ev_at, j_inode, j_at = map(int, m.groups())
            events, journal = self.tails
            missed = _messages(_since(events, ev_inode, ev_at), _since(journal, j_inode, j_at))
            for n, msg in enumerate(missed[-self.queue_max :], 1):
                q.put_nowait((msg, self.mark() if n == min(len(missed), self.queue_max) else None))
        return q

    def mark(self) -> str:
        """Where the hub has read: every whole line before it has been published."""
        return ".".join(f"{(t.ident or (0, 0))[1]}:{_read(t)}" for t in self.tails)

    def unsubscribe(self, q: asyncio.Queue[Sent | None]) -> None:
        self.clients.discard(q)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        for q in list(self.clients):
            self._drop(q)

    def _drop(self, q: asyncio.Queue[Sent | None]) -> None:
        self.clients.discard(q)
        while not q.empty():
            q.get_nowait()
        q.put_nowait(None)  # the stream ends; the browser reconnects

    def publish(self, msg: str, at: str | None = None) -> None:
        for q in list(self.clients):
            try:
                q.put_nowait((msg, at))
            except asyncio.QueueFull:
                self.dropped += 1
                self._drop(q)

    async def _run(self, events: store.Follower, journal: store.Follower) -> None:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        changes = self.changes
        fd = changes.fileno() if changes is not None else None

        def ring() -> None:
            loop.call_soon_threadsafe(woken.set)

        seen = changes.now() if changes is not None else 0  # (its first watches set)
        if changes is not None and fd is not None:
            changes.bells.append(ring)
            loop.add_reader(fd, changes.now)  # reads the kernel's news; rings on a change
        try:
            while self.clients:
                woken.clear()  # before the look: a change during it wakes the next wait
                told = self._look(events, journal)
                if changes is not None:
                    count = changes.now()
                    # a line appended after the look is the change: told as itself
                    if count != seen and not told and not self._look(events, journal):
                        self.publish(CHANGED, self.mark())
                    seen = count
                if fd is None:
                    await asyncio.sleep(self.poll_s)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self.resync_s)
                await asyncio.sleep(self.poll_s)  # a burst is one look, not one per line
        finally:
            if changes is not None and fd is not None:
                changes.bells.remove(ring)
                with contextlib.suppress(ValueError, OSError):  # the descriptor closed first
                    loop.remove_reader(fd)

    def _look(self, events: store.Follower, journal: store.Follower) -> bool:
        """Publish the lines appended since the last look; whether there were any."""
        told = _messages(events.lines(), journal.lines())
        for n, msg in enumerate(told, 1):
            self.publish(msg, self.mark() if n == len(told) else None)
        return bool(told)


def _messages(events: list[str], journal: list[str]) -> list[str]:
    said = [{"kind": "event", "data": obj} for obj in map(_event, events) if obj is not None]
    said += [{"kind": "journal", "data": journal_row(line)} for line in journal]
    return [jsonio.dumps(obj, ensure_ascii=False) for obj in said]


def _read(f: store.Follower) -> int:
    return f.offset - len(f.partial)


def _since(tail: store.Follower, inode: int, offset: int) -> list[str]:
    """The whole lines between a client's mark in tail's file and where tail has read; a
    file replaced since the mark is read from its start."""
    if tail.ident is None:
        return []
    end = _read(tail)
    start = max(offset if inode == tail.ident[1] else 0, end - READ_MAX)
    if start >= end:
        return []
    return store.Follower(tail.path, (tail.ident, start), read_max=end - start).lines()


def _tail(path: Path) -> store.Follower:
    """The lines appended to path from now on."""
    f = store.Follower(path, read_max=READ_MAX)
    f.skip_to_end()
    return f


def _event(line: str) -> dict[str, Any] | None:
    try:
        obj = jsonio.loads(line)
    except ValueError:
        return None  # a torn or hand-edited line
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    return obj
