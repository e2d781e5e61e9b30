"""`looop watch` snapshot tests (pytest-textual-snapshot): what the screen shows, as SVG.

Sessions are written to disk as a finished supervisor leaves them (meta, status, output.log),
at a fixed data dir and fixed times under a fixed clock, so every run paints the same screen.
Update the snapshots after an intended change with `pytest --snapshot-update`."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from looop.core.context import Ctx
from looop.core.events import Emitter
from looop.home.errors import LooopError
from looop.home.paths import Paths
from looop.home.stamps import utc_stamp
from looop.tui.app import WatchApp
from tests.clocks import FixedClock

# one fixed data dir (the status line shows it, so the snapshots pin it): the module's tests
# take turns on one xdist worker, or one test's set-up removes another's data dir mid-run
pytestmark = [pytest.mark.timeout(60), pytest.mark.xdist_group("watch-snapshots")]

ROOT = Path("/tmp/looop-watch-snapshots")  # fixed: the status line shows the data dir
NOW = 1_750_000_000.0
SIZE = (110, 36)


@pytest.fixture
def ctx() -> Iterator[Ctx]:
    shutil.rmtree(ROOT, ignore_errors=True)
    paths = Paths.at(ROOT / "data")
    paths.data.mkdir(parents=True)
    paths.config.write_text(json.dumps({"max_daily_usd": 0}))
    clock = FixedClock(NOW)
    em = Emitter(clock=clock, events_path=None, stream=io.StringIO())
    yield Ctx(paths=paths, clock=clock, env={"HOME": str(ROOT)}, events=em, bin="looop")
    shutil.rmtree(ROOT, ignore_errors=True)


def _session(
    ctx: Ctx, sid: str, output: bytes, size: tuple[int, int], started_ago: float, idle: float
) -> None:
    """A finished session, exactly as its supervisor leaves it on disk."""
    d = ctx.paths.data / "sessions" / sid
    d.mkdir(parents=True)
    cols, rows = size
    started, ended = NOW - started_ago, NOW - idle
    meta: dict[str, Any] = {
        "v": 1,
        "id": sid,
        "cmd": ["/bin/sh", "-c", "agent"],
        "cwd": str(ctx.paths.data),
        "started_at": utc_stamp(started),
        "supervisor_pid": 1,
        "pid_start": 1,
    }
    status: dict[str, Any] = {
        "v": 1,
        "state": "exited",
        "exit_code": 0,
        "signaled": False,
        "child_pid": None,
        "cols": cols,
        "rows": rows,
        "error": None,
        "last_change": utc_stamp(ended),
    }
    (d / "meta.json").write_text(json.dumps(meta))
    (d / "status.json").write_text(json.dumps(status))
    (d / "lock").touch()
    log = d / "output.log"
    log.write_bytes(output)
    os.utime(log, (ended, ended))


Compare = Callable[..., bool]


def test_a_tall_session_opens_on_its_text(ctx: Ctx, snap_compare: Compare) -> None:
    # 60 rows in a pane of about 30: the text is at the top, the bottom rows are blank
    out = b"".join(b"line %d of the worker's screen\r\n" % i for i in range(1, 8))
    _session(ctx, "tall", b"\x1b[1mtop-line\x1b[0m\r\n" + out, (100, 60), 3600, 60)
    assert snap_compare(WatchApp(ctx, "tall"), terminal_size=SIZE)


def test_a_cleared_tall_session_opens_on_what_it_shows_now(ctx: Ctx, snap_compare: Compare) -> None:
    history = b"".join(b"old %d\r\n" % i for i in range(1, 101))
    _session(ctx, "cleared", history + b"\x1b[H\x1b[2Jafter-clear\r\n", (100, 60), 7200, 5)
    _session(ctx, "other", b"\x1b[32mgreen\x1b[0m done\r\n", (80, 24), 600, 300)
    assert snap_compare(WatchApp(ctx, "cleared"), terminal_size=SIZE)


def test_no_sessions(ctx: Ctx, snap_compare: Compare) -> None:
    assert snap_compare(WatchApp(ctx), terminal_size=SIZE)


class _Far:
    """Two workers away from home: one shown from a fixed screenshot, one whose host does
    not answer."""

    def __init__(self, shot: dict[str, Any]) -> None:
        self.shot = shot

    def rows(self) -> list[dict[str, Any]]:
        base = {"state": "running", "label": "running", "verify": None, "note": None}
        return [
            {
                **base,
                "id": "rw1",
                "host": "gpu1",
                "alive": True,
                "health": "busy",
                "started_at": utc_stamp(NOW - 5400),
                "last_output_unix": NOW - 3,
            },
            {
                **base,
                "id": "rw2",
                "host": "gpu2",
                "alive": True,
                "health": "unreachable",
                "state": "unreachable",
                "label": "unreachable",
                "started_at": utc_stamp(NOW - 600),
                "last_output_unix": None,
            },
        ]

    def backend(self, sid: str) -> _Shot:
        return _Shot(self.shot if sid == "rw1" else None)


class _Shot:
    def __init__(self, shot: dict[str, Any] | None) -> None:
        self.shot = shot

    def screen(self, sid: str, fmt: str = "plain", trim: bool = True) -> dict[str, Any]:
        if self.shot is None:
            raise LooopError("host gpu2 does not answer: Connection timed out")
        return self.shot


def _far_shot() -> dict[str, Any]:
    from looop.sessions.screen import render, replay

    out = b"\x1b[1mremote agent\x1b[0m on gpu1\r\n\x1b[32m3 tests pass\x1b[0m\r\n> "
    return render(replay(out, 90, 20), "json", False)


async def _shown(pilot: Any, what: str) -> None:
    for _ in range(200):
        if what in "".join(seg.text for y in range(30) for seg in pilot.app.term.render_line(y)):
            return
        await pilot.pause(0.05)
    raise AssertionError(f"{what!r} never shown")


def test_a_remote_worker_shows_its_host_and_screen(ctx: Ctx, snap_compare: Compare) -> None:
    _session(ctx, "local", b"here\r\n", (80, 24), 300, 30)

    async def ready(pilot: Any) -> None:
        await _shown(pilot, "3 tests pass")

    app = WatchApp(ctx, "rw1", show_all=True, far=_Far(_far_shot()))  # type: ignore[arg-type]
    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_a_remote_worker_whose_host_is_silent(ctx: Ctx, snap_compare: Compare) -> None:
    async def ready(pilot: Any) -> None:
        await _shown(pilot, "not taken for dead")

    app = WatchApp(ctx, "rw2", far=_Far(_far_shot()))  # type: ignore[arg-type]
    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
