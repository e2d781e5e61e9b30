"""The server-sent event streams: live events and journal lines from the hub, and a
session's screen whenever it changes. A local worker's screen is looked at when the kernel
says its session wrote (core/watching.py: its output log, status, or its supervisor's lock
closed at its end), once more a moment later (the screen is drawn a little after the log is
written), and every SCREEN_RESYNC_S regardless; at most every SCREEN_POLL_S. A remote
worker's is polled, gently.

Live events for SSE clients: one tailer per server reads what the loop appends to
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
import hashlib
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from looop.act.journal import journal_row
from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home import jsonio, store
from looop.home.revive import PULSE, REVIVE_EVERY_S, Keeper, pending, reap
from looop.home.where import LOCKS, SESSIONS
from looop.web import reads
from looop.web.cache import Changes
from looop.web.reads import WebError

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


SCREEN_POLL_S = 0.25  # the least gap between two looks at a local screen
SCREEN_RESYNC_S = 10.0  # a look at a quiet local screen all the same
SCREEN_FILES = ("status.json", "lock")  # what a local session writes as it runs, and its
LOG_FILES = ("log/output.log", "output.log")  # output (output.log links into log/; an older
# session wrote it in place)
REMOTE_POLL_S = 1.0  # a remote worker's screen costs its host a round trip a poll
REMOTE_ALIVE_EVERY = 5  # and whether it is still alive is asked every few looks only
PING_S = 15.0
NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store"}


def sse(gen: AsyncIterator[str]) -> StreamingResponse:
    headers = {**NO_STORE, "X-Accel-Buffering": "no"}
    return StreamingResponse(gen, media_type="text/event-stream", headers=headers)


async def live_events(request: Request, hub: Hub) -> AsyncIterator[str]:
    q = hub.subscribe(request.headers.get("last-event-id"))
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                sent = await asyncio.wait_for(q.get(), PING_S)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if sent is None:
                return  # dropped as too slow: the browser reconnects
            msg, at = sent
            yield (f"id: {at}\n" if at else "") + f"data: {msg}\n\n"
    finally:
        hub.unsubscribe(q)


async def screen_changes(
    request: Request, ctx: Ctx, sid: str, first: dict[str, Any]
) -> AsyncIterator[str]:
    """The screen whenever its text or cursor changed; ends once the session has ended (a
    dead one's screen is its log replayed: sent once, never looked at again). A remote
    worker's is polled more gently through its backend (its end seen within a few looks);
    while its host does not answer the stream says so once (event `unreachable`) and goes
    on asking, sending the screen again once the host is back."""
    far = (await run_in_threadpool(reads.way, ctx, sid)).kind != "local"  # its files not here
    written = None if far else _written(ctx, sid)
    try:
        seen = request.headers.get("last-event-id")
        async for out in _screens(ctx, sid, first, far, written, seen):
            yield out
    finally:
        if written is not None:
            written.close()


async def _screens(
    ctx: Ctx,
    sid: str,
    first: dict[str, Any],
    far: bool,
    written: Written | None,
    seen: str | None = None,
) -> AsyncIterator[str]:
    """`seen`: the id of the screen a reconnecting browser last had (not sent again)."""
    shot: dict[str, Any] | None = first
    last: Any = seen
    looks = 0
    while True:
        if shot is not None:
            key = (shot.get("screen_hash"), jsonio.dumps(shot.get("cursor")), len(shot["lines"]))
            tag = hashlib.blake2s(repr(key).encode(), digest_size=8).hexdigest()
            if tag != last:
                last = tag
                yield f"id: {tag}\ndata: {jsonio.dumps(shot, ensure_ascii=False)}\n\n"
            if not shot.get("alive"):
                yield "event: ended\ndata: {}\n\n"
                return
        if written is None:
            await asyncio.sleep(REMOTE_POLL_S if far else SCREEN_POLL_S)
        else:
            await written.next()
        looks += 1
        ask_alive = not far or looks % REMOTE_ALIVE_EVERY == 0 or shot is None
        try:
            shot = await run_in_threadpool(reads.screen, ctx, sid, ask_alive)
        except WebError as e:
            if e.status != 503:
                return
            if last != "unreachable":
                yield f"event: unreachable\ndata: {jsonio.dumps({'error': e.message})}\n\n"
            shot, last = None, "unreachable"


class Written:
    """When the kernel says a watched file was written (a Watcher read by the event loop).
    `next`: when to look at a local session's screen again: its files written, a settle look
    a moment after, every SCREEN_RESYNC_S regardless; never sooner than SCREEN_POLL_S."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.woken = asyncio.Event()
        self.settle = False  # a look is owed a moment after the last wake
        self.fd = watcher.fileno()
        self.loop = asyncio.get_running_loop()
        if self.fd is not None:
            self.loop.add_reader(self.fd, self._heard)

    def _heard(self) -> None:
        if self.watcher.drain():
            self.woken.set()

    async def wait(self, timeout: float) -> bool:
        """Whether a change was heard within `timeout` (or before: each is heard once).
        asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel when the event is
        set at that moment, and the waiter would outlive what cancelled it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.woken.wait()
        heard = self.woken.is_set()
        self.woken.clear()
        return heard

    async def next(self) -> None:
        await asyncio.sleep(SCREEN_POLL_S)
        if self.settle or self.fd is None:
            self.settle = False
            return
        self.settle = await self.wait(SCREEN_RESYNC_S)

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(self.fd)
        self.watcher.close()


def _written(ctx: Ctx, sid: str) -> Written | None:
    """A watch on what the session writes as it runs; None (polled) where none can be had."""
    watcher = Watcher()
    sdir = os.path.join(os.fspath(ctx.paths.data), "sessions", sid)
    output = [watcher.watch(os.path.join(sdir, name)) for name in LOG_FILES]
    if not any(output) or not all(watcher.watch(os.path.join(sdir, n)) for n in SCREEN_FILES):
        watcher.close()
        return None
    return Written(watcher)


# ---- the pulse kept: the server brings back a pulse `up` still wants when its supervisor died
# (an OOM kill, a stray kill -9), as the session host does, with the verbs' backoff and cause
# (home/revive.py). It sleeps until the kernel says a file the look reads changed (`up`'s
# record, the beat's lock, the pulse session's lock and status: a lock reads closed when its
# holder dies); it looks every REVIVE_EVERY_S only while the pulse is wanted and lost, every
# PULSE_RESYNC_S otherwise (a change unseen), and every REVIVE_EVERY_S without inotify.
PULSE_RESYNC_S = 30.0  # the pulse's keeper: a look with nothing to tell


def watch_pulse(watcher: Watcher, data: str) -> None:
    """Watch anew what `pending` reads: the names in `.lock` and in the pulse's session, or
    the sessions folder while the pulse has none yet."""
    watcher.forget()
    lock_dir, sessions = os.path.join(data, LOCKS), os.path.join(data, SESSIONS)
    for name in ("wanted.json", "lock", "up"):
        watcher.watch(os.path.join(lock_dir, name))
    sdir = os.path.join(sessions, PULSE)
    if os.path.isdir(sdir):
        for name in ("lock", "status.json"):
            watcher.watch(os.path.join(sdir, name))
    else:
        watcher.watch(sdir)  # its name in the sessions folder: made later, a change


def look(keeper: Keeper, watcher: Watcher) -> bool:
    """One look (off the event loop): the watches renewed, the pulse revived if it is lost;
    whether to look again soon (wanted and still lost, or a revival not yet reaped)."""
    if watcher.usable:
        watch_pulse(watcher, keeper.data)
    keeper.tend()
    if not watcher.usable or keeper.started:
        return True
    return pending(keeper.data) is not None


async def _keep(keeper: Keeper, woken: Written, resync_s: float) -> None:
    while True:
        try:
            soon = await run_in_threadpool(look, keeper, woken.watcher)
        except Exception as e:  # a failed look never ends the server: the next one tries
            sys.stderr.write(f"looop web: pulse check failed: {e!r}\n")
            soon = True
        if await woken.wait(keeper.every_s if soon else resync_s):
            keeper.checked = None  # a change: look now, whatever the last look's time


@contextlib.asynccontextmanager
async def pulse_kept(
    ctx: Ctx, every_s: float = REVIVE_EVERY_S, resync_s: float = PULSE_RESYNC_S
) -> AsyncIterator[Keeper]:
    """While the server runs: its pulse looked after on a change to what says it is lost
    (every `every_s` while it is lost); what it started is reaped when it ends."""
    keeper = Keeper(str(ctx.paths.data), str(ctx.paths.config), ctx.env, ctx.clock, every_s)
    woken = Written(Watcher())
    task = asyncio.get_running_loop().create_task(_keep(keeper, woken, resync_s))
    try:
        yield keeper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        woken.close()
        reap(keeper.started)
