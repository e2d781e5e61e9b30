"""The server-sent event streams: live events and journal lines from the hub, and a
session's screen whenever it changes. A local worker's screen is looked at when the kernel
says its session wrote (core/watching.py: its output log, status, or its supervisor's lock
closed at its end), once more a moment later (the screen is drawn a little after the log is
written), and every SCREEN_RESYNC_S regardless; at most every SCREEN_POLL_S. A remote
worker's is polled, gently."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home import jsonio
from looop.web import reads
from looop.web.errors import WebError
from looop.web.events import Hub

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
    return StreamingResponse(
        gen,
        media_type="text/event-stream",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )


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
    """When to look at a local session's screen again: its files written, a settle look a
    moment after, every SCREEN_RESYNC_S regardless; never sooner than SCREEN_POLL_S."""

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

    async def next(self) -> None:
        await asyncio.sleep(SCREEN_POLL_S)
        if self.settle or self.fd is None:
            self.settle = False
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.woken.wait(), SCREEN_RESYNC_S)
        self.settle = self.woken.is_set()
        self.woken.clear()

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
