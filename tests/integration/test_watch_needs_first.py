"""`looop watch` puts the workers that need a human first and gives the fleet pane the
terminal's height: in a tall terminal every row of a dozen workers shows, and the one with
a pending ask sits first though it started last."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from looop.core.context import Ctx
from looop.human.mailbox import new_ask
from looop.sessions.spawner import spawn
from looop.tui.app import WatchApp
from tests.helpers import kill_sessions
from tests.integration.test_watch import table_ids, until

IDS = [f"w{n:02d}" for n in range(12)]


@pytest.fixture
def root(ctx: Ctx) -> Iterator[Path]:
    yield ctx.paths.data
    kill_sessions(ctx.paths.data)


@pytest.mark.timeout(90)
def test_the_worker_that_needs_you_comes_first_and_a_tall_terminal_shows_the_fleet(
    ctx: Ctx, root: Path
) -> None:
    env = dict(os.environ)
    for sid in IDS:  # started in order: the last is listed last, unless it needs you
        spawn(root, sid, ["/bin/sh", "-c", "exec cat"], cwd=root, env=env)
        ctx.clock.advance(1)  # type: ignore[attr-defined]
    new_ask(root / "asks", root / "answers", IDS[-1], "Ship it?", None, [], ctx.clock.now())

    async def scenario() -> None:
        app = WatchApp(ctx)
        async with app.run_test(size=(120, 50)) as pilot:
            await until(pilot, lambda: len(table_ids(app)) == len(IDS), "the fleet listed")
            assert table_ids(app) == [IDS[-1], *IDS[:-1]]  # no pulse runs: no pulse row
            await pilot.pause()
            assert app.table.size.height == 1 + len(app.rows)  # every row in view, no scroll

    asyncio.run(scenario())
