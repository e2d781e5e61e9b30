"""The server-sent event streams: live events and journal lines from the hub, and a
session's screen whenever it changes (polled; a remote worker's more gently)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse

from looop.core.context import Ctx
from looop.home import jsonio
from looop.web import reads
from looop.web.errors import WebError
from looop.web.events import Hub

SCREEN_POLL_S = 0.25
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
    q = hub.subscribe()
    try:
        yield "retry: 2000\n\n"
        while True:
            try:
                msg = await asyncio.wait_for(q.get(), PING_S)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if msg is None:
                return  # dropped as too slow: the browser reconnects
            yield f"data: {msg}\n\n"
    finally:
        hub.unsubscribe(q)


async def screen_changes(
    request: Request, ctx: Ctx, sid: str, first: dict[str, Any]
) -> AsyncIterator[str]:
    """The screen whenever its text or cursor changed, polled; ends once the session has
    ended (a dead one's screen is its log replayed: sent once, never polled). A remote
    worker's is polled more gently through its backend (its end seen within a few looks);
    while its host does not answer the stream says so once (event `unreachable`) and goes
    on asking, sending the screen again once the host is back."""
    far = await run_in_threadpool(reads.remote, ctx, sid) is not None
    shot: dict[str, Any] | None = first
    last: Any = None
    looks = 0
    while True:
        if shot is not None:
            key = (shot.get("screen_hash"), jsonio.dumps(shot.get("cursor")), len(shot["lines"]))
            if key != last:
                last = key
                yield f"data: {jsonio.dumps(shot, ensure_ascii=False)}\n\n"
            if not shot.get("alive"):
                yield "event: ended\ndata: {}\n\n"
                return
        await asyncio.sleep(REMOTE_POLL_S if far else SCREEN_POLL_S)
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
