"""`looop watch` and a worker away from home: listed with its host, its pane showing the
screen its backend gives, a host that is slow never holding the app up, one that does not
answer said in the pane. The backend is a second sessions root (tests/farhost.py); the real
SSH host is tests/hosts/test_remote_verbs.py's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.home.errors import LooopError
from looop.home.stamps import utc_stamp
from looop.sessions.client import send
from looop.sessions.spawner import spawn
from looop.tui.app import WatchApp
from tests.clocks import FixedClock
from tests.farhost import FarHost
from tests.helpers import kill_sessions
from tests.integration.test_watch import SIZE, pane, status, table_ids, until

FAR = "rw1"


class Fleet:
    """The home's view of its workers away from home: one on host h7."""

    def __init__(self, host: FarHost, started: float) -> None:
        self.host = host
        self.started = started
        self.health = "busy"
        self.broken = False

    def rows(self) -> list[dict[str, Any]]:
        if self.broken:
            raise LooopError("the hosts' records are unreadable")
        return [
            {
                "id": FAR,
                "host": "h7",
                "alive": True,
                "health": self.health,
                "state": "running",
                "label": "running",
                "started_at": utc_stamp(self.started),
                "last_output_unix": None,
                "verify": None,
                "note": None,
            }
        ]

    def backend(self, sid: str) -> FarHost | None:
        return self.host if sid == FAR else None


@pytest.fixture
def far(ctx: Ctx, tmp_path: Path) -> Iterator[FarHost]:
    root = tmp_path / "host"
    root.mkdir()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    spawn(
        root,
        FAR,
        ["/bin/sh", "-c", r"printf '\033[31mremote red\033[0m on h7\n'; exec cat"],
        cwd=root,
        env=env,
        size=(80, 24),
    )
    host = FarHost(root)
    try:
        yield host
    finally:
        host.gate.set()
        kill_sessions(root)
        kill_sessions(ctx.paths.data)


@pytest.mark.timeout(60)
def test_a_remote_worker_is_listed_shown_and_said_unreachable(ctx: Ctx, far: FarHost) -> None:
    data = ctx.paths.data
    spawn(data, "w1", ["/bin/sh", "-c", "echo local-one; exec cat"], cwd=data, env=dict(os.environ))
    fleet = Fleet(far, 1_000_000_000.0)

    async def scenario() -> None:
        app = WatchApp(ctx, far=fleet)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: FAR in table_ids(app), "the remote worker listed")
            assert table_ids(app) == [FAR, "w1"]  # the oldest first, as for local ones
            cells = [str(c) for c in app.table.get_row(FAR)]
            assert "@h7" in cells[0] and cells[1] == "busy"

            app.select(FAR)
            await until(pilot, lambda: "remote red" in pane(app), "the remote screen")
            red = [
                seg
                for y in range(app.term.size.height)
                for seg in app.term.render_line(y)
                if "remote red" in seg.text
            ]
            assert red and red[0].style is not None and red[0].style.color is not None
            assert red[0].style.color.number == 1  # its colours cross too
            assert f"▸ {FAR} @h7" in status(app) and "80×24" in status(app)
            send(far.inner.root, FAR, "typed far away")
            await until(pilot, lambda: "typed far away" in pane(app), "the screen followed")

            # a slow host: its look hangs, the app does not
            far.gate.clear()
            n = far.calls.count("screen")
            await until(pilot, lambda: far.calls.count("screen") > n, "a look in flight")
            await pilot.press("down")
            await until(pilot, lambda: "local-one" in pane(app), "a local pane meanwhile")
            await pilot.press("up")
            await until(
                pilot,
                lambda: "typed far away" in pane(app) or "asking" in pane(app),
                "back on the remote one",
            )
            far.down.set()
            far.gate.set()
            await until(pilot, lambda: "unreachable" in pane(app), "the pane saying unreachable")
            assert "not taken for dead" in pane(app) and "h7" in pane(app)
            assert "unreachable" in status(app)
            fleet.health = "unreachable"  # the fleet's next look says so too
            await until(
                pilot,
                lambda: str(app.table.get_row(FAR)[1]) == "unreachable",
                "the row unreachable",
                limit=15,
            )
            far.down.clear()  # back: the screen comes back by itself
            await until(pilot, lambda: "typed far away" in pane(app), "the screen back")
            assert "unreachable" not in pane(app)
            fleet.broken = True  # a fleet look that fails keeps the last rows
            await pilot.pause(0.5)
            assert FAR in table_ids(app)
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "q quitting")

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_quitting_while_a_host_is_asked_does_not_wait_for_it(ctx: Ctx, far: FarHost) -> None:
    fleet = Fleet(far, 1_000_000_000.0)
    far.gate.clear()  # every look hangs until the test ends

    async def scenario() -> None:
        app = WatchApp(ctx, FAR, far=fleet)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "asking host h7" in pane(app), "the remote pane")
            await until(pilot, lambda: "screen" in far.calls, "a look in flight")
            clock = FixedClock()
            t0 = clock.monotonic()
            await pilot.press("q")
            await until(pilot, lambda: not app.is_running, "q quitting", limit=5)
            assert clock.monotonic() - t0 < 5

    asyncio.run(scenario())
