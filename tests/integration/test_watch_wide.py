"""`looop watch` at 80 columns on a worker whose screen is wider (v1.0 replays at 80×24; here
a session keeps its own width): ← → scroll it side to side, and the key legend says so and
where the pane is."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Static

from looop.core.context import Ctx
from looop.sessions.spawner import spawn
from looop.tui.app import WatchApp
from tests.helpers import kill_sessions
from tests.integration.test_watch import pane, until

NARROW = (80, 24)


@pytest.fixture
def root(ctx: Ctx) -> Iterator[Path]:
    yield ctx.paths.data
    kill_sessions(ctx.paths.data)


def _start(root: Path, tmp_path: Path, sid: str, cols: int, script: str) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    spawn(root, sid, ["/bin/sh", "-c", script], cwd=root, env=env, size=(cols, 24))


def legend(app: WatchApp) -> str:
    return str(app.query_one("#keys", Static).content)


@pytest.mark.timeout(40)
def test_a_wide_screen_scrolls_side_to_side_at_80_columns(
    ctx: Ctx, root: Path, tmp_path: Path
) -> None:
    # 148 columns: its left edge, a run of zeros, its right end
    _start(root, tmp_path, "wide", 160, "printf 'left-edge%0130dRIGHT-END\\n' 0; exec cat")
    _start(root, tmp_path, "slim", 60, "echo slim-screen; exec cat")

    async def scenario() -> None:
        app = WatchApp(ctx, "wide")
        async with app.run_test(size=NARROW) as pilot:
            await until(pilot, lambda: "left-edge" in pane(app), "the wide screen")
            assert "RIGHT-END" not in pane(app)
            await until(pilot, lambda: "← →" in legend(app), "the legend naming ← →")
            assert "cols 1–" in legend(app) and " of 160" in legend(app)
            assert len(legend(app)) <= 80

            await pilot.press("right")
            await until(pilot, lambda: "left-edge" not in pane(app), "half a pane right")
            await pilot.press("right")
            await until(pilot, lambda: "RIGHT-END" in pane(app), "the right end")
            await pilot.press("right", "right")  # past the end it stays at the end
            await until(pilot, lambda: "–160 of 160" in legend(app), "the last column shown")
            assert "RIGHT-END" in pane(app)

            await pilot.press("left", "left", "left")
            await until(pilot, lambda: "left-edge" in pane(app), "back to the left edge")
            assert "cols 1–" in legend(app)

            await pilot.press("down")  # a screen that fits: the usual legend, ← → do nothing
            await until(pilot, lambda: "slim-screen" in pane(app), "the slim screen")
            await until(pilot, lambda: "← →" not in legend(app), "the usual legend")
            assert "f follow" in legend(app)
            before = pane(app)
            await pilot.press("right")
            await pilot.pause(0.1)
            assert pane(app) == before
            await pilot.press("q")

    asyncio.run(scenario())
