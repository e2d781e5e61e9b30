"""The web server brings back a pulse `up` still wants when its supervisor died (an OOM kill,
a stray kill -9), as the session host does, with the verbs' backoff and cause
(home/revive.py). It polls nothing: it sleeps until the kernel says a file the look reads
changed (core/watching.py: `up`'s record, the beat's lock, the pulse session's lock and status
— a lock is reported closed when its holder dies), looks every REVIVE_EVERY_S only while the
pulse is wanted and lost (a revival backing off or under way), and every RESYNC_S otherwise in
case a change went unseen. Without inotify it looks every REVIVE_EVERY_S."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from looop.core.context import Ctx
from looop.core.watching import Watcher
from looop.home.revive import PULSE, REVIVE_EVERY_S, Keeper, pending, reap
from looop.home.where import LOCKS, SESSIONS
from looop.web.streams import Written

RESYNC_S = 30.0  # a look with nothing to tell


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
    ctx: Ctx, every_s: float = REVIVE_EVERY_S, resync_s: float = RESYNC_S
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
