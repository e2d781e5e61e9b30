"""The web server brings back a pulse `up` still wants when its supervisor died (an OOM kill,
a stray kill -9): a looop of the home that lives on looks on a timer of its own, as the
session host does, with the verbs' backoff and cause (home/revive.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from looop.core.context import Ctx
from looop.home.revive import REVIVE_EVERY_S, Keeper, reap


async def _keep(keeper: Keeper) -> None:
    while True:
        try:
            await run_in_threadpool(keeper.tend)
        except Exception as e:  # a failed look never ends the server: the next one tries again
            sys.stderr.write(f"looop web: pulse check failed: {e!r}\n")
        await asyncio.sleep(keeper.every_s)


@contextlib.asynccontextmanager
async def pulse_kept(ctx: Ctx, every_s: float = REVIVE_EVERY_S) -> AsyncIterator[Keeper]:
    """While the server runs: its pulse looked after every `every_s`; what it started is
    reaped when it ends."""
    keeper = Keeper(str(ctx.paths.data), str(ctx.paths.config), ctx.env, ctx.clock, every_s)
    task = asyncio.get_running_loop().create_task(_keep(keeper))
    try:
        yield keeper
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        reap(keeper.started)
