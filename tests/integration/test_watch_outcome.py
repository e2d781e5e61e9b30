"""`looop watch` shows how each ended worker ended (issue 57, item 4): its outcome in the
STATE cell, once the beat recorded it — a worker here (a real session that exited, its
outcome recorded by the beat's own step) and one away from home (its far row as the remote
wing gives it), side by side; a live worker keeps its state."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home.stamps import utc_stamp
from looop.loop import fleetwork
from looop.sessions.client import wait
from looop.sessions.spawner import spawn
from looop.sessions.state import list_sessions
from looop.tui.app import WatchApp
from looop.views import outcomes
from tests.helpers import kill_sessions
from tests.integration.test_watch import SIZE, table_ids, until


class EndedAway:
    """The home's view of one worker away from home that ended and was verified there."""

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "rw1",
                "host": "h7",
                "alive": False,
                "health": "dead",
                "state": "exited",
                "label": "exited",
                "exit_code": 0,
                "started_at": utc_stamp(1_000_000_000.0),
                "last_output_unix": None,
                "verify": "pass",
                "note": None,
                "outcome": "verified",
            }
        ]

    def backend(self, sid: str) -> None:
        return None


@pytest.fixture
def root(ctx: Ctx) -> Iterator[Path]:
    yield ctx.paths.data
    kill_sessions(ctx.paths.data)


@pytest.mark.timeout(60)
def test_watch_shows_the_outcome_of_ended_workers_near_and_far(ctx: Ctx, root: Path) -> None:
    env = dict(os.environ)
    spawn(root, "w1", ["/bin/sh", "-c", "echo done; exit 3"], cwd=root, env=env)
    spawn(root, "w2", ["/bin/sh", "-c", "exec cat"], cwd=root, env=env)
    assert wait(root, "w1", 30, ctx.clock) == 3
    fleetwork.ended(ctx, ctx.knobs(), None, list_sessions(root))  # the beat's: w1's outcome
    rec = outcomes.read_record(str(root), "w1")
    assert rec is not None and rec["outcome"] == "failed", rec

    async def scenario() -> None:
        app = WatchApp(ctx, show_all=True, far=EndedAway())
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "rw1" in table_ids(app), "the far worker listed")
            await until(pilot, lambda: "w1" in table_ids(app), "the ended worker listed")
            state = {k: str(app.table.get_row(k)[2]) for k in ("w1", "w2", "rw1")}
            assert state == {"w1": "failed 3", "w2": "running", "rw1": "verified"}, state

    asyncio.run(scenario())
