"""`looop web` sleeps until something changes (issue 56, item 3): the live stream's tailer and
the pulse's keeper are woken by the kernel's word on the files they read, not by a timer; a
change no event line tells is pushed to the page as `changed`; uvicorn's own housekeeping
wakes once a second, and at once for a stop."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home import store
from looop.home.revive import Keeper
from looop.web import streams
from looop.web.cache import Changes
from looop.web.server import Server
from looop.web.streams import Hub

QUIET_S = 0.6  # long enough for the old timers (0.2 s, 2 s at every_s=0.05, 0.1 s) to fire


def _append(path: os.PathLike[str], line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


async def _next(q: asyncio.Queue[tuple[str, str | None] | None]) -> dict[str, object]:
    msg = await asyncio.wait_for(q.get(), 5)
    assert msg is not None
    got = json.loads(msg[0])  # (the message, the stream's id on a look's last one)
    assert isinstance(got, dict)
    return got


@pytest.mark.timeout(30)
def test_the_live_stream_sleeps_until_a_file_changes_then_tells_at_once(ctx: Ctx) -> None:
    sdir = ctx.paths.data / "sessions" / "w1"
    sdir.mkdir(parents=True)
    store.write_json(sdir / "status.json", {"state": "running"})
    changes = Changes.open(ctx.paths, ctx.env)
    assert changes is not None, "inotify is there on Linux"

    async def go() -> tuple[int, dict[str, object], dict[str, object], int]:
        hub = Hub(ctx, poll_s=0.01, changes=changes, resync_s=60)
        looks = 0
        look = hub._look

        def counted(events: store.Follower, journal: store.Follower) -> bool:
            nonlocal looks
            looks += 1
            return look(events, journal)

        hub._look = counted  # type: ignore[method-assign]
        q = hub.subscribe()
        await asyncio.sleep(QUIET_S)  # nothing changes: the tailer sleeps
        quiet = looks
        _append(ctx.paths.events, json.dumps({"event": "tick_start"}))
        event = await _next(q)  # an appended line is the push itself
        store.write_json(sdir / "status.json", {"state": "exited"})  # no line tells this
        changed = await _next(q)
        await hub.close()
        return quiet, event, changed, len(hub.clients)

    try:
        quiet, event, changed, left = asyncio.run(go())
    finally:
        changes.close()
    assert quiet <= 1, f"the tailer looked {quiet} times with nothing changed"
    assert event == {"kind": "event", "data": {"event": "tick_start"}}
    assert changed == {"kind": "changed"}
    assert left == 0


@pytest.mark.timeout(30)
def test_the_pulse_keeper_looks_on_a_change_not_on_a_timer(
    ctx: Ctx, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.paths.lock_dir.mkdir(parents=True)
    looked = asyncio.Queue[None]()
    look = streams.look

    def counted(keeper: Keeper, watcher: Watcher) -> bool:
        soon = look(keeper, watcher)
        loop.call_soon_threadsafe(looked.put_nowait, None)
        return soon

    monkeypatch.setattr(streams, "look", counted)

    async def go() -> tuple[int, bool]:
        async with streams.pulse_kept(ctx, every_s=0.05, resync_s=60):
            await asyncio.wait_for(looked.get(), 5)  # the first look, at start
            await asyncio.sleep(QUIET_S)  # nothing changes: no look
            quiet = looked.qsize()
            (ctx.paths.lock_dir / "up").write_text("")  # a file the look reads: one at once
            await asyncio.wait_for(looked.get(), 5)
            return quiet, True

    loop = asyncio.new_event_loop()
    try:
        quiet, woke = loop.run_until_complete(go())
    finally:
        loop.close()
    assert quiet == 0, f"the keeper looked {quiet} times with nothing changed"
    assert woke


@pytest.mark.timeout(30)
def test_the_server_ticks_once_a_second_and_stops_at_once_on_a_signal() -> None:
    config = uvicorn.Config(Starlette(), log_level="warning", lifespan="off")
    config.load()
    server = Server(config)
    ticks = 0
    tick = server.on_tick

    async def counted(counter: int) -> bool:
        nonlocal ticks
        ticks += 1
        return await tick(counter)

    server.on_tick = counted  # type: ignore[method-assign]

    async def go() -> tuple[int, float]:
        task = asyncio.ensure_future(server.main_loop())
        await asyncio.sleep(QUIET_S)
        quiet = ticks
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        server.handle_exit(signal.SIGTERM, None)
        await asyncio.wait_for(task, 5)
        return quiet, loop.time() - t0

    quiet, stop_s = asyncio.run(go())
    assert quiet <= 2, f"{quiet} housekeeping ticks in {QUIET_S}s"  # uvicorn's own: 6
    assert stop_s < 0.5
    assert server.server_state.default_headers  # the Date header was drawn


def test_watcher_says_when_its_watches_no_longer_cover_the_folders(tmp_path: Path) -> None:
    """What a long-lived reader needs of core/watching.py to sleep in an event loop: a
    descriptor to wait on, and word when its watches no longer cover the folders."""
    with Watcher() as w:
        assert w.watch(str(tmp_path))
        fd = w.fileno()
        assert fd is not None
        assert select.select([fd], [], [], 0)[0] == []  # nothing yet
        (tmp_path / "x").write_text("1")
        assert select.select([fd], [], [], 0)[0] == [fd]  # an event loop is woken
        assert w.drain() and not w.stale  # a file: the watches still cover it
        (tmp_path / "sub").mkdir()
        assert w.drain() and w.stale  # a folder came: what is in it is not watched
        w.forget()
        assert not w.stale
        assert w.watch(str(tmp_path / "sub"))
        (tmp_path / "sub").rmdir()
        assert w.drain() and w.stale  # the watched folder itself went


def test_the_heartbeat_of_a_sleeping_pulse_is_no_change_to_the_page(ctx: Ctx) -> None:
    """The pulse writes its heartbeat beside its registry entry while it sleeps: no view
    shows it, so it neither pushes the page nor spoils the kept answers; an entry does."""
    from looop.home import homes
    from looop.home.where import runtime_base
    from looop.loop.heartbeat import heartbeat_path

    folder = Path(homes.home_folder(runtime_base(ctx.env), str(ctx.paths.data)))
    assert heartbeat_path(ctx).parent == folder
    changes = Changes.open(ctx.paths, ctx.env)
    assert changes is not None
    try:
        first = changes.now()
        store.atomic_write(heartbeat_path(ctx), "60.000 1 1\n", durable=False)
        assert changes.now() == first
        store.atomic_write(folder / "pulse-4242.json", "{}\n", durable=False)
        assert changes.now() > first  # an entry `strays` reads
    finally:
        changes.close()


@pytest.mark.timeout(60)
def test_a_quiet_workers_screen_is_not_looked_at_until_it_writes(
    authed: TestClient, ctx: Ctx, worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open tab streams the selected worker's screen: while the worker says nothing the
    stream sleeps, and what it then writes reaches the page at once."""
    from looop.sessions.client import send
    from looop.web import reads

    looks: list[float] = []
    screen = reads.screen

    def counted(ctx: Ctx, sid: str, ask_alive: bool = True) -> dict[str, object]:
        looks.append(time.monotonic())
        return screen(ctx, sid, ask_alive)

    monkeypatch.setattr(reads, "screen", counted)
    with authed.stream("GET", f"/api/v1/sessions/{worker}/screen/stream") as r:
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith("data: {"))  # the first screen
        before = len(looks)
        time.sleep(QUIET_S * 2)  # `cat` says nothing: no look (a poll looked ~5 times)
        quiet = len(looks) - before
        send(ctx.paths.data, worker, "hello from cat\r", False)
        t0 = time.monotonic()
        for line in lines:
            if line.startswith("data: {") and "hello from cat" in line:
                break
        took = time.monotonic() - t0
    assert quiet == 0, f"{quiet} looks at a quiet screen"
    assert took < 5
